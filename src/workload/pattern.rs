//! Load that changes over time (`load --pattern`): a linear ramp (and back down), steps held
//! for a while each, bursts on a steady base, or one long steady soak. A pattern is a request
//! rate as a function of time; arrivals follow it by time rescaling: a unit-rate arrival
//! process (constant, Poisson or gamma) in "expected arrivals" time, mapped onto real time
//! through the pattern's integrated rate.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::arrival::{trim_number, ArrivalKind, ArrivalProcess};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pattern {
    /// From `from` to `to` req/s linearly over `duration_s`; with `down`, back to `from`
    /// over another `duration_s`.
    Ramp {
        from: f64,
        to: f64,
        duration_s: f64,
        down: bool,
    },
    /// `steps` levels from `from` to `to` (evenly spaced), each held `step_duration_s`.
    Step {
        from: f64,
        to: f64,
        steps: u32,
        step_duration_s: f64,
    },
    /// `base` req/s, with bursts of `spike_rate` lasting `spike_duration_s` every `every_s`
    /// (the first after one period), for `duration_s`.
    Spike {
        base: f64,
        spike_rate: f64,
        spike_duration_s: f64,
        every_s: f64,
        duration_s: f64,
    },
    /// Steady `rate` for `duration_s`, watched window by window for drift.
    Soak { rate: f64, duration_s: f64 },
    /// A trace's requests at its own offsets, `speed` times faster.
    Replay {
        trace: String,
        speed: f64,
        requests: u64,
        /// The trace's first to last request, on its own clock.
        span_s: f64,
        /// Each request's offset on the trace's clock (not written to results).
        #[serde(skip)]
        offsets: std::sync::Arc<Vec<f64>>,
    },
}

/// Rates are taken as piecewise constant over steps this long when arrivals are placed.
const STEP_S: f64 = 1e-3;

fn check_rate(flag: &str, rate: f64) -> Result<()> {
    if !rate.is_finite() || rate < 0.0 {
        bail!("{flag} {rate}: a rate in requests per second, 0 or above");
    }
    Ok(())
}

fn check_duration(flag: &str, seconds: f64) -> Result<()> {
    if !seconds.is_finite() || seconds <= 0.0 {
        bail!("{flag}: give a duration above zero, e.g. 30s");
    }
    Ok(())
}

impl Pattern {
    /// Every value usable: rates finite and not negative, some load at some point, durations
    /// above zero. Errors name the flag.
    pub fn check(&self) -> Result<()> {
        match *self {
            Pattern::Ramp {
                from,
                to,
                duration_s,
                ..
            } => {
                check_rate("--from", from)?;
                check_rate("--to", to)?;
                check_duration("--duration", duration_s)?;
                if from == 0.0 && to == 0.0 {
                    bail!("--from 0 --to 0: a ramp needs some load at one end");
                }
            }
            Pattern::Step {
                from,
                to,
                steps,
                step_duration_s,
            } => {
                check_rate("--from", from)?;
                check_rate("--to", to)?;
                check_duration("--step-duration", step_duration_s)?;
                if steps == 0 {
                    bail!("--steps 0: give at least 1 level");
                }
                if from == 0.0 && to == 0.0 {
                    bail!("--from 0 --to 0: the steps need some load");
                }
            }
            Pattern::Spike {
                base,
                spike_rate,
                spike_duration_s,
                every_s,
                duration_s,
            } => {
                check_rate("--rate", base)?;
                check_rate("--spike-rate", spike_rate)?;
                check_duration("--spike-duration", spike_duration_s)?;
                check_duration("--spike-every", every_s)?;
                check_duration("--duration", duration_s)?;
                if spike_duration_s >= every_s {
                    bail!("--spike-duration must be shorter than --spike-every");
                }
                if spike_rate <= base {
                    bail!("--spike-rate {spike_rate}: a burst is above the base --rate {base}");
                }
            }
            Pattern::Soak { rate, duration_s } => {
                check_rate("--rate", rate)?;
                check_duration("--duration", duration_s)?;
                if rate == 0.0 {
                    bail!("--rate 0: a soak needs some load");
                }
            }
            Pattern::Replay { speed, .. } => {
                if !speed.is_finite() || speed <= 0.0 {
                    bail!("--replay-speed {speed}: a factor above 0 (2 replays twice as fast)");
                }
            }
        }
        Ok(())
    }

    /// How long the pattern lasts.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(match *self {
            Pattern::Ramp {
                duration_s, down, ..
            } => duration_s * if down { 2.0 } else { 1.0 },
            Pattern::Step {
                steps,
                step_duration_s,
                ..
            } => steps as f64 * step_duration_s,
            Pattern::Spike { duration_s, .. } | Pattern::Soak { duration_s, .. } => duration_s,
            // A moment past the last request, which is due at the end of the span.
            Pattern::Replay { span_s, speed, .. } => span_s / speed + 1e-3,
        })
    }

    /// The rate the pattern asks for `t` seconds in (req/s).
    pub fn rate_at(&self, t: f64) -> f64 {
        match *self {
            Pattern::Ramp {
                from,
                to,
                duration_s,
                down,
            } => {
                let x = if down && t > duration_s {
                    2.0 - t / duration_s
                } else {
                    t / duration_s
                };
                from + (to - from) * x.clamp(0.0, 1.0)
            }
            Pattern::Step {
                from,
                to,
                steps,
                step_duration_s,
            } => {
                let level = ((t / step_duration_s).floor() as u32).min(steps - 1);
                if steps == 1 {
                    from
                } else {
                    from + (to - from) * level as f64 / (steps - 1) as f64
                }
            }
            Pattern::Spike {
                base,
                spike_rate,
                spike_duration_s,
                every_s,
                ..
            } => {
                if t >= every_s && t % every_s < spike_duration_s {
                    spike_rate
                } else {
                    base
                }
            }
            Pattern::Soak { rate, .. } => rate,
            Pattern::Replay { .. } => self.mean_rate(),
        }
    }

    /// The same pattern with every rate multiplied by `factor` (a worker's share).
    pub fn scaled(&self, factor: f64) -> Pattern {
        let mut p = self.clone();
        match &mut p {
            Pattern::Ramp { from, to, .. } | Pattern::Step { from, to, .. } => {
                *from *= factor;
                *to *= factor;
            }
            Pattern::Spike {
                base, spike_rate, ..
            } => {
                *base *= factor;
                *spike_rate *= factor;
            }
            Pattern::Soak { rate, .. } => *rate *= factor,
            // One clock: workers cannot split a trace (refused before it runs).
            Pattern::Replay { .. } => {}
        }
        p
    }

    /// The highest rate the pattern reaches (req/s, or users).
    pub fn max_rate(&self) -> f64 {
        match *self {
            Pattern::Ramp { from, to, .. } | Pattern::Step { from, to, .. } => from.max(to),
            Pattern::Spike { spike_rate, .. } => spike_rate,
            Pattern::Soak { rate, .. } => rate,
            Pattern::Replay { .. } => self.mean_rate(),
        }
    }

    /// The pattern's mean rate over its duration (req/s).
    pub fn mean_rate(&self) -> f64 {
        let end = self.duration().as_secs_f64();
        if let Pattern::Replay { requests, .. } = self {
            return *requests as f64 / end;
        }
        let n = 1000;
        (0..n)
            .map(|i| self.rate_at((i as f64 + 0.5) * end / n as f64))
            .sum::<f64>()
            / n as f64
    }

    /// Two shares of one pattern added: the rates summed.
    pub fn added(&self, other: &Pattern) -> Pattern {
        let mut p = self.clone();
        match (&mut p, other) {
            (Pattern::Ramp { from, to, .. }, Pattern::Ramp { from: f, to: t, .. })
            | (Pattern::Step { from, to, .. }, Pattern::Step { from: f, to: t, .. }) => {
                *from += f;
                *to += t;
            }
            (
                Pattern::Spike {
                    base, spike_rate, ..
                },
                Pattern::Spike {
                    base: b,
                    spike_rate: s,
                    ..
                },
            ) => {
                *base += b;
                *spike_rate += s;
            }
            (Pattern::Soak { rate, .. }, Pattern::Soak { rate: r, .. }) => *rate += r,
            _ => {}
        }
        p
    }

    /// "ramp1-100", "ramp-down1-100", "step1-50x5", "spike10+100", "soak50".
    pub fn label(&self) -> String {
        let n = |x: f64| trim_number(x);
        match *self {
            Pattern::Ramp { from, to, down, .. } => {
                let kind = if down { "ramp-down" } else { "ramp" };
                format!("{kind}{}-{}", n(from), n(to))
            }
            Pattern::Step {
                from, to, steps, ..
            } => format!("step{}-{}x{steps}", n(from), n(to)),
            Pattern::Spike {
                base, spike_rate, ..
            } => format!("spike{}+{}", n(base), n(spike_rate)),
            Pattern::Soak { rate, .. } => format!("soak{}", n(rate)),
            Pattern::Replay {
                ref trace, speed, ..
            } => {
                let stem = Path::new(trace)
                    .file_stem()
                    .map_or("trace".into(), |s| s.to_string_lossy().to_string());
                if speed == 1.0 {
                    format!("replay-{stem}")
                } else {
                    format!("replay-{stem}-x{}", n(speed))
                }
            }
        }
    }

    /// When each request is due, from the start, following the pattern, until it ends.
    pub fn arrivals(
        &self,
        kind: ArrivalKind,
        burstiness: f64,
        seed: u64,
    ) -> Result<Box<dyn Iterator<Item = Duration> + Send>> {
        if let Pattern::Replay { offsets, speed, .. } = self {
            let (offsets, speed) = (offsets.clone(), *speed);
            return Ok(Box::new(
                (0..offsets.len()).map(move |i| Duration::from_secs_f64(offsets[i] / speed)),
            ));
        }
        let unit = ArrivalProcess {
            kind,
            rate: 1.0,
            burstiness,
        }
        .gaps(seed)?;
        Ok(Box::new(Rescaled {
            pattern: self.clone(),
            unit,
            target: 0.0,
            t: 0.0,
            integrated: 0.0,
            end: self.duration().as_secs_f64(),
            first: true,
        }))
    }
}

/// Arrivals of a unit-rate process placed where the pattern's integrated rate reaches them.
struct Rescaled {
    pattern: Pattern,
    unit: Box<dyn Iterator<Item = Duration> + Send>,
    /// The next arrival's place in expected-arrivals time.
    target: f64,
    t: f64,
    /// Expected arrivals from the start to `t`.
    integrated: f64,
    end: f64,
    first: bool,
}

impl Iterator for Rescaled {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        // The first arrival comes when the pattern first has load, as a steady run's does.
        if !self.first {
            self.target += self.unit.next()?.as_secs_f64();
        }
        let first = std::mem::replace(&mut self.first, false);
        while self.t < self.end {
            let rate = self.pattern.rate_at(self.t);
            if first && rate > 0.0 {
                return Some(Duration::from_secs_f64(self.t));
            }
            let mut step_end = ((self.t / STEP_S).floor() + 1.0) * STEP_S;
            if step_end <= self.t {
                step_end += STEP_S; // t sat on a step's end, rounded below it
            }
            let step_end = step_end.min(self.end);
            let gain = rate * (step_end - self.t);
            if rate > 0.0 && self.integrated + gain >= self.target {
                self.t += (self.target - self.integrated) / rate;
                self.integrated = self.target;
                return Some(Duration::from_secs_f64(self.t));
            }
            self.integrated += gain;
            self.t = step_end;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arrivals counted per second.
    fn per_second(p: &Pattern, kind: ArrivalKind) -> Vec<usize> {
        let mut counts = vec![0; p.duration().as_secs_f64().ceil() as usize];
        for at in p.arrivals(kind, 1.0, 9).unwrap() {
            counts[at.as_secs() as usize] += 1;
        }
        counts
    }

    #[test]
    fn a_ramp_rises_linearly_and_comes_back_down() {
        let p = Pattern::Ramp {
            from: 100.0,
            to: 1100.0,
            duration_s: 10.0,
            down: true,
        };
        p.check().unwrap();
        assert_eq!(p.duration(), Duration::from_secs(20));
        let c = per_second(&p, ArrivalKind::Constant);
        // Second k of the way up averages from + 100 (k + 0.5) req/s.
        for (k, &n) in c.iter().enumerate().take(10) {
            let want = 100.0 + 100.0 * (k as f64 + 0.5);
            assert!((n as f64 - want).abs() <= 2.0, "second {k}: {n} vs {want}");
        }
        assert!((c[19] as f64 - 150.0).abs() <= 2.0, "{c:?}");
        assert_eq!(p.label(), "ramp-down100-1100");
    }

    #[test]
    fn steps_hold_each_level_and_spikes_burst_on_the_base() {
        let steps = Pattern::Step {
            from: 10.0,
            to: 50.0,
            steps: 3,
            step_duration_s: 2.0,
        };
        assert_eq!(
            per_second(&steps, ArrivalKind::Constant),
            [10, 10, 30, 30, 50, 50]
        );
        let spike = Pattern::Spike {
            base: 20.0,
            spike_rate: 200.0,
            spike_duration_s: 1.0,
            every_s: 3.0,
            duration_s: 9.0,
        };
        spike.check().unwrap();
        let c = per_second(&spike, ArrivalKind::Constant);
        assert_eq!(c, [20, 20, 20, 200, 20, 20, 200, 20, 20], "{c:?}");
    }

    #[test]
    fn poisson_arrivals_follow_the_pattern_on_average() {
        let p = Pattern::Ramp {
            from: 0.0,
            to: 2000.0,
            duration_s: 4.0,
            down: false,
        };
        let c = per_second(&p, ArrivalKind::Poisson);
        for (k, want) in [250.0, 750.0, 1250.0, 1750.0].iter().enumerate() {
            assert!(
                (c[k] as f64 - want).abs() < 4.0 * want.sqrt(),
                "second {k}: {} vs {want}",
                c[k]
            );
        }
    }

    #[test]
    fn bad_values_name_their_flag() {
        let soak = Pattern::Soak {
            rate: 5.0,
            duration_s: 0.0,
        };
        assert!(soak.check().unwrap_err().to_string().contains("--duration"));
        let neg = Pattern::Ramp {
            from: -1.0,
            to: 5.0,
            duration_s: 1.0,
            down: false,
        };
        assert!(neg.check().unwrap_err().to_string().contains("--from -1"));
        let spike = Pattern::Spike {
            base: 5.0,
            spike_rate: 50.0,
            spike_duration_s: 10.0,
            every_s: 5.0,
            duration_s: 60.0,
        };
        assert!(spike
            .check()
            .unwrap_err()
            .to_string()
            .contains("--spike-every"));
        let scaled = spike.scaled(0.5);
        assert!(
            matches!(scaled, Pattern::Spike { base, spike_rate, .. } if base == 2.5 && spike_rate == 25.0)
        );
    }
}

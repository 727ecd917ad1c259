//! What the machine did while a benchmark ran. Energy comes from the hardware's cumulative
//! counters (NVML's GPU energy, RAPL's CPU package energy) read at phase boundaries; a
//! background sampler records power, utilisation, memory, temperature, clocks and throttle
//! reasons for the curve, and stands in for a missing GPU counter by integrating power. Nothing
//! is invented: a source that is missing says why.

pub mod counter;
pub mod gpu;
pub mod host_memory;
pub mod rapl;
pub mod sampler;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::metrics::Reading;
use gpu::GpuSource;
use rapl::{Rapl, RaplReading};
use sampler::{Sample, Sampler, SharedGpu};

/// Default sampling interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

/// The telemetry sources of one run.
pub struct Telemetry {
    gpu: Result<SharedGpu, String>,
    /// Why the GPU's energy counter cannot be used, if it cannot.
    gpu_counter: Result<(), String>,
    cpu: Result<Rapl, String>,
    sampler: Option<Sampler>,
}

/// The sources' state at one instant: a phase boundary.
pub struct Checkpoint {
    at: Instant,
    gpu_mj: Result<u64, String>,
    cpu: Result<RaplReading, String>,
    samples: usize,
}

/// What one phase cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTelemetry {
    pub phase: String,
    pub duration_s: f64,
    pub gpu_energy_joules: Reading<f64>,
    pub cpu_energy_joules: Reading<f64>,
    pub gpu_power_mean_w: Reading<f64>,
    pub gpu_power_peak_w: Reading<f64>,
    /// Device-wide memory in use (NVML), the highest sample.
    pub gpu_memory_peak_bytes: Reading<u64>,
    pub gpu_util_mean_percent: Option<f64>,
    pub gpu_temperature_max_c: Option<u32>,
    pub sm_clock_mean_mhz: Option<f64>,
    /// Every throttle reason seen during the phase.
    pub throttle_reasons: Vec<String>,
    /// The process's resident memory, the highest sample.
    pub host_rss_peak_bytes: Reading<u64>,
    pub samples: usize,
    /// Caveats, e.g. a sampler that stalled.
    pub notes: Vec<String>,
}

impl Telemetry {
    /// Sources for a run on `device_name` ("cpu" or "cuda:N"); `interval` zero: no sampler.
    pub fn for_device(device_name: &str, interval: Duration) -> Telemetry {
        let gpu = match device_name.strip_prefix("cuda:").map(str::parse::<u32>) {
            Some(Ok(index)) => gpu::open(index),
            _ => Err("CPU run: no GPU".to_string()),
        };
        Telemetry::start(gpu, Rapl::open(), interval)
    }

    pub fn start(
        gpu: Result<Box<dyn GpuSource>, String>,
        cpu: Result<Rapl, String>,
        interval: Duration,
    ) -> Telemetry {
        let mut gpu = gpu;
        let gpu_counter = match &mut gpu {
            Ok(g) => g.energy_mj().map(|_| ()),
            Err(why) => Err(why.clone()),
        };
        let gpu: Result<SharedGpu, String> = gpu.map(|g| Arc::new(Mutex::new(g)));
        let sampler = (!interval.is_zero()).then(|| Sampler::start(gpu.clone().ok(), interval));
        Telemetry {
            gpu,
            gpu_counter,
            cpu,
            sampler,
        }
    }

    /// Whether a GPU was opened (NVML built in and a device present).
    pub fn has_gpu(&self) -> bool {
        self.gpu.is_ok()
    }

    /// One line on each source, for the log.
    pub fn describe(&self) -> String {
        let gpu = match &self.gpu {
            Ok(g) => {
                let name = g.lock().map(|g| g.describe()).unwrap_or_default();
                match &self.gpu_counter {
                    Ok(()) => format!("{name}, energy counter"),
                    Err(why) => format!("{name}, power samples only ({why})"),
                }
            }
            Err(why) => format!("unavailable ({why})"),
        };
        let cpu = match &self.cpu {
            Ok(r) => format!("RAPL {}", r.zone_names().join(", ")),
            Err(why) => format!("unavailable ({why})"),
        };
        let sampler = self.sampler.as_ref().map_or("off".to_string(), |s| {
            format!("every {} ms", s.interval().as_millis())
        });
        format!("GPU energy: {gpu}; CPU energy: {cpu}; sampler: {sampler}")
    }

    pub fn checkpoint(&self) -> Checkpoint {
        let gpu_mj = match (&self.gpu, &self.gpu_counter) {
            (Ok(g), Ok(())) => g
                .lock()
                .map_err(|_| "GPU source poisoned".to_string())
                .and_then(|mut g| g.energy_mj()),
            (_, Err(why)) => Err(why.clone()),
            (Err(why), _) => Err(why.clone()),
        };
        Checkpoint {
            at: Instant::now(),
            gpu_mj,
            cpu: self.cpu.as_ref().map_err(Clone::clone).and_then(Rapl::read),
            samples: self.sampler.as_ref().map_or(0, Sampler::len),
        }
    }

    /// What happened between two checkpoints.
    pub fn between(&self, phase: &str, a: &Checkpoint, b: &Checkpoint) -> PhaseTelemetry {
        let window = self
            .sampler
            .as_ref()
            .map(|s| s.window(a.samples, b.samples))
            .unwrap_or_default();
        let duration_s = (b.at - a.at).as_secs_f64();
        let mut notes = Vec::new();
        if let Some(s) = &self.sampler {
            let start_s = (a.at - s.started()).as_secs_f64();
            let end_s = (b.at - s.started()).as_secs_f64();
            if let Some(note) = stall_note(&window, start_s, end_s, s.interval()) {
                notes.push(note);
            }
        }
        let gpu_samples: Vec<&gpu::GpuSample> =
            window.iter().filter_map(|s| s.gpu.as_ref()).collect();
        let power: Vec<(f64, f64)> = gpu_samples
            .iter()
            .filter_map(|g| g.power_w.map(|w| (g.at_s, w)))
            .collect();
        PhaseTelemetry {
            phase: phase.into(),
            duration_s,
            gpu_energy_joules: self.gpu_energy(a, b, &power),
            cpu_energy_joules: match (&self.cpu, &a.cpu, &b.cpu) {
                (Ok(rapl), Ok(x), Ok(y)) => match rapl.joules_between(x, y) {
                    Ok(j) => Reading::Measured { value: j },
                    Err(why) => Reading::unavailable(why),
                },
                (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => {
                    Reading::unavailable(why.clone())
                }
            },
            gpu_power_mean_w: self.gpu_stat(&power, |p| {
                p.iter().map(|x| x.1).sum::<f64>() / p.len() as f64
            }),
            gpu_power_peak_w: self
                .gpu_stat(&power, |p| p.iter().map(|x| x.1).fold(f64::MIN, f64::max)),
            gpu_memory_peak_bytes: match gpu_samples
                .iter()
                .filter_map(|g| g.memory_used_bytes)
                .max()
            {
                Some(v) => Reading::Measured { value: v },
                None => Reading::unavailable(self.no_samples_reason()),
            },
            gpu_util_mean_percent: mean(
                gpu_samples
                    .iter()
                    .filter_map(|g| g.gpu_util_percent.map(f64::from)),
            ),
            gpu_temperature_max_c: gpu_samples.iter().filter_map(|g| g.temperature_c).max(),
            sm_clock_mean_mhz: mean(
                gpu_samples
                    .iter()
                    .filter_map(|g| g.sm_clock_mhz.map(f64::from)),
            ),
            throttle_reasons: {
                let mut r: Vec<String> = gpu_samples
                    .iter()
                    .flat_map(|g| g.throttle_reasons.iter().cloned())
                    .collect();
                r.sort();
                r.dedup();
                r
            },
            host_rss_peak_bytes: match window.iter().filter_map(|s| s.host_rss_bytes).max() {
                Some(v) => Reading::Measured { value: v },
                None => Reading::unavailable(if self.sampler.is_none() {
                    "sampler off"
                } else {
                    "phase shorter than the sampling interval"
                }),
            },
            samples: window.len(),
            notes,
        }
    }

    /// GPU energy: the counter when it works, else the integral of the power samples.
    fn gpu_energy(&self, a: &Checkpoint, b: &Checkpoint, power: &[(f64, f64)]) -> Reading<f64> {
        let counter_problem = match (&a.gpu_mj, &b.gpu_mj) {
            (Ok(x), Ok(y)) => match counter::counter_delta(*x, *y, None) {
                Ok(mj) => {
                    return Reading::Measured {
                        value: mj as f64 / 1e3,
                    }
                }
                Err(why) => why,
            },
            (Err(why), _) | (_, Err(why)) => why.clone(),
        };
        if self.gpu.is_err() {
            return Reading::unavailable(counter_problem);
        }
        match counter::integrate_power(power) {
            Some(j) => Reading::Estimated {
                value: j,
                method: format!(
                    "integrated from {} power samples (no usable energy counter: {counter_problem})",
                    power.len()
                ),
            },
            None => Reading::unavailable(format!(
                "no usable energy counter ({counter_problem}) and fewer than 2 power samples in the phase"
            )),
        }
    }

    fn gpu_stat(&self, power: &[(f64, f64)], f: impl Fn(&[(f64, f64)]) -> f64) -> Reading<f64> {
        if power.is_empty() {
            Reading::unavailable(self.no_samples_reason())
        } else {
            Reading::Measured { value: f(power) }
        }
    }

    fn no_samples_reason(&self) -> String {
        match (&self.gpu, &self.sampler) {
            (Err(why), _) => why.clone(),
            (Ok(_), None) => "sampler off".into(),
            (Ok(_), Some(_)) => "no GPU sample in the phase (shorter than the interval?)".into(),
        }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// A note when the samples of a phase have a gap of more than three intervals.
fn stall_note(window: &[Sample], start_s: f64, end_s: f64, interval: Duration) -> Option<String> {
    let mut times: Vec<f64> = vec![start_s];
    times.extend(window.iter().map(|s| s.at_s));
    times.push(end_s);
    let longest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
    let limit = 3.0 * interval.as_secs_f64();
    (end_s - start_s > limit && longest > limit).then(|| {
        format!(
            "sampler stalled: a {:.0} ms gap between samples (interval {} ms); curves and integrated energy are coarse there",
            longest * 1e3,
            interval.as_millis()
        )
    })
}

/// The sum of two energies: measured only if both were, unavailable if either was.
pub fn add_readings(a: &Reading<f64>, b: &Reading<f64>) -> Reading<f64> {
    match (a, b) {
        (Reading::Unavailable { reason }, _) | (_, Reading::Unavailable { reason }) => {
            Reading::unavailable(reason.clone())
        }
        (Reading::Measured { value: x }, Reading::Measured { value: y }) => {
            Reading::Measured { value: x + y }
        }
        (Reading::Estimated { value: x, method }, other)
        | (other, Reading::Estimated { value: x, method }) => Reading::Estimated {
            value: x + other.value().unwrap_or(0.0),
            method: method.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu::GpuSample;

    /// A scripted GPU: a counter that follows `energy` readings in turn (or is missing),
    /// constant power, and an optional stall on one sample.
    struct FakeGpu {
        energy: Vec<Result<u64, String>>,
        reads: usize,
        power_w: f64,
        stall_on: Option<(usize, Duration)>,
        samples: usize,
    }

    impl GpuSource for FakeGpu {
        fn describe(&self) -> String {
            "Fake GPU (GPU 0)".into()
        }
        fn energy_mj(&mut self) -> Result<u64, String> {
            let r = self.energy[self.reads.min(self.energy.len() - 1)].clone();
            self.reads += 1;
            r
        }
        fn sample(&mut self) -> GpuSample {
            self.samples += 1;
            if let Some((n, d)) = self.stall_on {
                if self.samples == n {
                    std::thread::sleep(d);
                }
            }
            GpuSample {
                power_w: Some(self.power_w),
                memory_used_bytes: Some(1 << 30),
                gpu_util_percent: Some(90),
                throttle_reasons: vec!["SW_POWER_CAP".into()],
                ..GpuSample::default()
            }
        }
    }

    fn fake(energy: Vec<Result<u64, String>>) -> Result<Box<dyn GpuSource>, String> {
        Ok(Box::new(FakeGpu {
            energy,
            reads: 0,
            power_w: 200.0,
            stall_on: None,
            samples: 0,
        }))
    }

    #[test]
    fn counter_gives_measured_energy() {
        // Reads: start() probes once, then the two checkpoints.
        let t = Telemetry::start(
            fake(vec![Ok(1_000), Ok(1_000), Ok(4_500)]),
            Err("RAPL not present".into()),
            Duration::ZERO,
        );
        let (a, b) = (t.checkpoint(), t.checkpoint());
        let p = t.between("decode", &a, &b);
        assert_eq!(p.gpu_energy_joules, Reading::Measured { value: 3.5 });
        assert_eq!(
            p.cpu_energy_joules,
            Reading::unavailable("RAPL not present")
        );
        assert!(t.describe().contains("energy counter"), "{}", t.describe());
    }

    #[test]
    fn missing_counter_integrates_power_samples() {
        let t = Telemetry::start(
            fake(vec![Err("NVML energy counter: NotSupported".into())]),
            Err("RAPL not present".into()),
            Duration::from_millis(10),
        );
        let a = t.checkpoint();
        std::thread::sleep(Duration::from_millis(300));
        let b = t.checkpoint();
        let p = t.between("decode", &a, &b);
        match &p.gpu_energy_joules {
            Reading::Estimated { value, method } => {
                // 200 W over the span the samples cover: a little under the phase's duration
                // (bounds loose enough for a loaded machine that delays the sampler).
                assert!(
                    *value > 0.0 && *value <= 200.0 * p.duration_s * 1.01,
                    "{value}"
                );
                assert!(method.contains("power samples") && method.contains("NotSupported"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.gpu_power_peak_w, Reading::Measured { value: 200.0 });
        assert_eq!(
            p.gpu_memory_peak_bytes,
            Reading::Measured { value: 1 << 30 }
        );
        assert_eq!(p.throttle_reasons, ["SW_POWER_CAP"]);
        assert!(p.samples >= 3, "{}", p.samples);
        assert!(p.host_rss_peak_bytes.value().is_some());
    }

    #[test]
    fn a_counter_going_backwards_falls_back_to_power() {
        let t = Telemetry::start(
            fake(vec![Ok(9_000), Ok(9_000), Ok(100)]),
            Err("RAPL not present".into()),
            Duration::from_millis(10),
        );
        let a = t.checkpoint();
        std::thread::sleep(Duration::from_millis(100));
        let b = t.checkpoint();
        match t.between("x", &a, &b).gpu_energy_joules {
            Reading::Estimated { method, .. } => assert!(method.contains("backwards"), "{method}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stalled_sampler_is_noted() {
        let gpu = Box::new(FakeGpu {
            energy: vec![Ok(0)],
            reads: 0,
            power_w: 100.0,
            stall_on: Some((3, Duration::from_millis(250))),
            samples: 0,
        });
        let t = Telemetry::start(Ok(gpu), Err("none".into()), Duration::from_millis(20));
        let a = t.checkpoint();
        std::thread::sleep(Duration::from_millis(450));
        let b = t.checkpoint();
        let p = t.between("x", &a, &b);
        assert!(
            p.notes.iter().any(|n| n.contains("sampler stalled")),
            "{:?}",
            p.notes
        );
    }

    #[test]
    fn no_gpu_says_why_everywhere() {
        let t = Telemetry::start(
            Err("CPU run: no GPU".into()),
            Err("RAPL not present".into()),
            Duration::from_millis(10),
        );
        let a = t.checkpoint();
        std::thread::sleep(Duration::from_millis(200));
        let p = t.between("x", &a, &t.checkpoint());
        for r in [&p.gpu_energy_joules, &p.gpu_power_mean_w] {
            assert_eq!(r, &Reading::unavailable("CPU run: no GPU"));
        }
        assert_eq!(
            p.gpu_memory_peak_bytes,
            Reading::unavailable("CPU run: no GPU")
        );
        assert!(p.host_rss_peak_bytes.value().unwrap() > 0);
    }

    #[test]
    fn sums_of_readings_keep_their_kind() {
        let m = |v| Reading::Measured { value: v };
        assert_eq!(add_readings(&m(1.0), &m(2.0)), m(3.0));
        let e = Reading::Estimated {
            value: 1.0,
            method: "power".into(),
        };
        assert_eq!(
            add_readings(&m(1.0), &e),
            Reading::Estimated {
                value: 2.0,
                method: "power".into()
            }
        );
        assert!(add_readings(&m(1.0), &Reading::unavailable("x"))
            .value()
            .is_none());
    }
}

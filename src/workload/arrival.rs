//! When an open-loop run sends each request: constant gaps, Poisson arrivals, or gamma
//! arrivals whose burstiness factor makes them burstier (< 1) or steadier (> 1) than Poisson
//! at the same mean rate, as vLLM's `--burstiness`.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp, Gamma};

#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    Constant,
    Poisson,
    Gamma,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArrivalProcess {
    pub kind: ArrivalKind,
    /// Mean requests per second; infinite sends everything at once.
    pub rate: f64,
    /// Gamma shape: 1 is Poisson, below 1 burstier.
    pub burstiness: f64,
}

impl ArrivalProcess {
    /// Seeded gaps between consecutive arrivals, endless.
    pub fn gaps(&self, seed: u64) -> anyhow::Result<Box<dyn Iterator<Item = Duration> + Send>> {
        if self.rate.is_nan() || self.rate <= 0.0 {
            anyhow::bail!("--rate must be above 0, got {}", self.rate);
        }
        if self.rate.is_infinite() {
            return Ok(Box::new(std::iter::repeat(Duration::ZERO)));
        }
        let mean = 1.0 / self.rate;
        let mut rng = StdRng::seed_from_u64(seed);
        Ok(match self.kind {
            ArrivalKind::Constant => Box::new(std::iter::repeat(Duration::from_secs_f64(mean))),
            ArrivalKind::Poisson => {
                let exp = Exp::new(self.rate)?;
                Box::new(std::iter::from_fn(move || {
                    Some(Duration::from_secs_f64(exp.sample(&mut rng)))
                }))
            }
            ArrivalKind::Gamma => {
                if self.burstiness.is_nan()
                    || self.burstiness <= 0.0
                    || self.burstiness.is_infinite()
                {
                    anyhow::bail!("--burstiness must be above 0, got {}", self.burstiness);
                }
                let gamma = Gamma::new(self.burstiness, mean / self.burstiness)?;
                Box::new(std::iter::from_fn(move || {
                    Some(Duration::from_secs_f64(gamma.sample(&mut rng)))
                }))
            }
        })
    }

    /// When each request is due, from the start: the first at once, then the gaps.
    pub fn arrivals(&self, seed: u64) -> anyhow::Result<Box<dyn Iterator<Item = Duration> + Send>> {
        let mut at = Duration::ZERO;
        let gaps = self.gaps(seed)?;
        Ok(Box::new(std::iter::once(Duration::ZERO).chain(gaps.map(
            move |gap| {
                at += gap;
                at
            },
        ))))
    }

    /// "rate8-poisson", "rate8-gamma0.5", "rate-inf".
    pub fn label(&self) -> String {
        if self.rate.is_infinite() {
            return "rate-inf".into();
        }
        let rate = trim_number(self.rate);
        match self.kind {
            ArrivalKind::Constant => format!("rate{rate}-constant"),
            ArrivalKind::Poisson => format!("rate{rate}-poisson"),
            ArrivalKind::Gamma => format!("rate{rate}-gamma{}", trim_number(self.burstiness)),
        }
    }
}

/// 8 -> "8", 2.5 -> "2.5".
pub fn trim_number(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(kind: ArrivalKind, burstiness: f64) -> (f64, f64) {
        let p = ArrivalProcess {
            kind,
            rate: 10.0,
            burstiness,
        };
        let gaps: Vec<f64> = p
            .gaps(7)
            .unwrap()
            .take(20_000)
            .map(|d| d.as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn every_process_keeps_the_mean_rate_and_its_own_spread() {
        let (mean, cv) = stats(ArrivalKind::Constant, 1.0);
        assert!((mean - 0.1).abs() < 1e-9 && cv < 1e-6);
        let (mean, cv) = stats(ArrivalKind::Poisson, 1.0);
        assert!(
            (mean - 0.1).abs() < 0.005 && (cv - 1.0).abs() < 0.05,
            "{mean} {cv}"
        );
        // Gamma shape k has coefficient of variation 1/sqrt(k).
        let (mean, cv) = stats(ArrivalKind::Gamma, 0.25);
        assert!(
            (mean - 0.1).abs() < 0.006 && (cv - 2.0).abs() < 0.15,
            "{mean} {cv}"
        );
    }

    #[test]
    fn same_seed_same_schedule_and_bad_rates_refused() {
        let p = ArrivalProcess {
            kind: ArrivalKind::Poisson,
            rate: 3.0,
            burstiness: 1.0,
        };
        let a: Vec<_> = p.gaps(1).unwrap().take(5).collect();
        let b: Vec<_> = p.gaps(1).unwrap().take(5).collect();
        assert_eq!(a, b);
        let bad = ArrivalProcess { rate: 0.0, ..p };
        assert!(bad.gaps(1).is_err());
        assert_eq!(p.label(), "rate3-poisson");
    }
}

//! Token lengths drawn from a distribution, for synthetic workloads whose prompts and answers
//! vary as real traffic does: a fixed length, uniform around a mean (`--input-spread 0.5` is
//! ±50%, vLLM's `--random-range-ratio`), or normal (`normal:512:128`).

use std::fmt;

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Normal};

/// Longest prompt or answer a workload may ask for (tokens): larger is a typo, and the text
/// for it would be built in memory before any request.
pub const MAX_TOKENS: u32 = 1 << 20;

/// A length in tokens from a flag, refused above MAX_TOKENS before anything is built.
pub fn check_tokens(flag: &str, tokens: f64) -> Result<()> {
    if tokens > MAX_TOKENS as f64 {
        bail!("{flag}: {tokens} tokens is more than the {MAX_TOKENS} a workload may ask for");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LengthDist {
    Fixed(u32),
    /// Uniform over [mean × (1 - spread), mean × (1 + spread)].
    Uniform {
        mean: u32,
        spread: f64,
    },
    /// Normal, rounded, at least 1.
    Normal {
        mean: f64,
        sd: f64,
    },
}

impl LengthDist {
    /// From `--X-tokens N` and `--X-spread S` (0 when not given).
    pub fn around(mean: u32, spread: f64, flag: &str) -> Result<Self> {
        if !(0.0..1.0).contains(&spread) {
            bail!("{flag}-spread {spread}: a share below 1 (0.5 is ±50%)");
        }
        let dist = if spread == 0.0 {
            LengthDist::Fixed(mean)
        } else {
            LengthDist::Uniform { mean, spread }
        };
        check_tokens(&format!("{flag}-tokens {mean}"), dist.max() as f64)?;
        Ok(dist)
    }

    /// `fixed:N`, `uniform:MIN:MAX` or `normal:MEAN:SD`, as `--input-dist` takes it.
    pub fn parse(text: &str, flag: &str) -> Result<Self> {
        let bad = |why: &str| {
            anyhow::anyhow!(
                "{flag} {text}: {why} (give fixed:N, uniform:MIN:MAX or normal:MEAN:SD, e.g. normal:512:128)"
            )
        };
        let parts: Vec<&str> = text.split(':').collect();
        let number = |s: &str| -> Result<f64> {
            match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(bad(&format!("`{s}` is not a length"))),
            }
        };
        let dist = match parts.as_slice() {
            ["fixed", n] => LengthDist::Fixed(number(n)? as u32),
            ["uniform", lo, hi] => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo > hi {
                    return Err(bad("the minimum is above the maximum"));
                }
                let mean = (lo + hi) / 2.0;
                let spread = if mean > 0.0 { (hi - mean) / mean } else { 0.0 };
                LengthDist::Uniform {
                    mean: mean.round() as u32,
                    spread,
                }
            }
            ["normal", mean, sd] => LengthDist::Normal {
                mean: number(mean)?,
                sd: number(sd)?,
            },
            _ => return Err(bad("not a distribution")),
        };
        if dist.mean() < 1.0 {
            return Err(bad("the mean length must be at least 1 token"));
        }
        let longest = match dist {
            LengthDist::Normal { mean, sd } => mean + 6.0 * sd,
            _ => dist.max() as f64,
        };
        check_tokens(&format!("{flag} {text}"), longest)?;
        Ok(dist)
    }

    pub fn mean(&self) -> f64 {
        match *self {
            LengthDist::Fixed(n) => n as f64,
            LengthDist::Uniform { mean, .. } => mean as f64,
            LengthDist::Normal { mean, .. } => mean,
        }
    }

    /// The longest length `sample` can return (normal: mean + 6 sd, where it is cut).
    pub fn max(&self) -> u32 {
        match *self {
            LengthDist::Fixed(n) => n.max(1),
            LengthDist::Uniform { mean, spread } => {
                ((mean as f64 * (1.0 + spread)).floor() as u32).max(1)
            }
            LengthDist::Normal { mean, sd } => ((mean + 6.0 * sd).round() as u32).max(1),
        }
    }

    /// One length, at least 1.
    pub fn sample(&self, rng: &mut StdRng) -> u32 {
        let x = match *self {
            LengthDist::Fixed(n) => n as f64,
            LengthDist::Uniform { mean, spread } => {
                let (lo, hi) = (mean as f64 * (1.0 - spread), mean as f64 * (1.0 + spread));
                rng.random_range(lo.ceil()..=hi.floor())
            }
            LengthDist::Normal { mean, sd } => match Normal::new(mean, sd) {
                Ok(n) => n
                    .sample(rng)
                    .clamp(mean - 6.0 * sd, mean + 6.0 * sd)
                    .round(),
                Err(_) => mean,
            },
        };
        (x as u32).clamp(1, self.max())
    }
}

impl fmt::Display for LengthDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LengthDist::Fixed(n) => write!(f, "{n}"),
            LengthDist::Uniform { mean, spread } => {
                write!(f, "{mean} ±{}%", (spread * 100.0).round())
            }
            LengthDist::Normal { mean, sd } => write!(f, "normal({mean}, sd {sd})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn draws(d: LengthDist) -> Vec<u32> {
        let mut rng = StdRng::seed_from_u64(3);
        (0..20_000).map(|_| d.sample(&mut rng)).collect()
    }

    #[test]
    fn uniform_spread_stays_in_its_range_and_keeps_the_mean() {
        let d = LengthDist::around(512, 0.5, "--input").unwrap();
        let x = draws(d);
        assert!(x.iter().all(|&n| (256..=768).contains(&n)));
        let mean = x.iter().map(|&n| n as f64).sum::<f64>() / x.len() as f64;
        assert!((mean - 512.0).abs() < 5.0, "{mean}");
        assert!(x.iter().any(|&n| n < 300) && x.iter().any(|&n| n > 720));
        assert_eq!(
            LengthDist::around(64, 0.0, "--input").unwrap(),
            LengthDist::Fixed(64)
        );
    }

    #[test]
    fn normal_keeps_mean_and_sd_and_never_gives_zero() {
        let x = draws(LengthDist::parse("normal:512:128", "--input-dist").unwrap());
        let mean = x.iter().map(|&n| n as f64).sum::<f64>() / x.len() as f64;
        let sd =
            (x.iter().map(|&n| (n as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        assert!(
            (mean - 512.0).abs() < 4.0 && (sd - 128.0).abs() < 4.0,
            "{mean} {sd}"
        );
        let wide = draws(LengthDist::parse("normal:4:20", "--x").unwrap());
        assert!(wide.iter().all(|&n| n >= 1));
    }

    #[test]
    fn bad_distributions_name_the_flag_and_the_value() {
        for (text, want) in [
            ("normal:512", "not a distribution"),
            ("poisson:3", "not a distribution"),
            ("uniform:9:3", "minimum is above"),
            ("normal:abc:3", "`abc` is not a length"),
            ("normal:-5:3", "not a length"),
            ("fixed:0", "at least 1"),
        ] {
            let err = LengthDist::parse(text, "--input-dist")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--input-dist") && err.contains(want),
                "{text}: {err}"
            );
        }
        assert!(LengthDist::around(8, 1.0, "--output").is_err());
        for text in ["fixed:5000000", "normal:1e12:1", "uniform:1:99999999"] {
            let err = LengthDist::parse(text, "--input-dist")
                .unwrap_err()
                .to_string();
            assert!(err.contains("more than the 1048576"), "{text}: {err}");
        }
        assert!(LengthDist::around(4_000_000_000, 0.0, "--input").is_err());
        assert_eq!(
            LengthDist::parse("uniform:100:300", "--x").unwrap(),
            LengthDist::Uniform {
                mean: 200,
                spread: 0.5
            }
        );
    }
}

//! Picking the next token from logits: greedy, or temperature / top-p with a seed.

use anyhow::{bail, Result};
use candle_core::{Tensor, D};
use candle_transformers::generation::{LogitsProcessor, Sampling};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f64,
    /// Nucleus sampling threshold in (0, 1]; 1 keeps every token.
    pub top_p: f64,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            seed: 299792458,
        }
    }
}

impl SamplingParams {
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            bail!(
                "--temperature {}: must be 0 (greedy) or positive",
                self.temperature
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            bail!("--top-p {}: must be in (0, 1]", self.top_p);
        }
        Ok(())
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }
}

/// Top-p values below this sample the top token.
const TOP_TOKEN_ONLY: f64 = 1e-6;

/// One sampler per batch row, each seeded apart so rows differ but runs repeat.
pub struct BatchSampler {
    params: SamplingParams,
    rows: Vec<LogitsProcessor>,
}

impl BatchSampler {
    pub fn new(params: SamplingParams, batch: usize) -> Self {
        // A nucleus below one in a million holds only the top token (whose probability is at
        // least 1/vocabulary); candle's top-p works in f32, where 1e-300 is 0 and keeps none.
        let sampling = if params.is_greedy() || params.top_p < TOP_TOKEN_ONLY {
            Sampling::ArgMax
        } else if params.top_p < 1.0 {
            Sampling::TopP {
                p: params.top_p,
                temperature: params.temperature,
            }
        } else {
            Sampling::All {
                temperature: params.temperature,
            }
        };
        let rows = (0..batch as u64)
            .map(|row| {
                LogitsProcessor::from_sampling(params.seed.wrapping_add(row), sampling.clone())
            })
            .collect();
        BatchSampler { params, rows }
    }

    /// Next token of every row from `logits` (batch, vocab).
    pub fn sample(&mut self, logits: &Tensor) -> Result<Vec<u32>> {
        if self.params.is_greedy() {
            // One argmax over the whole batch: a single device round trip.
            return Ok(logits.argmax(D::Minus1)?.to_vec1::<u32>()?);
        }
        let logits = logits.to_dtype(candle_core::DType::F32)?;
        self.rows
            .iter_mut()
            .enumerate()
            .map(|(row, sampler)| Ok(sampler.sample(&logits.get(row)?)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn logits() -> Tensor {
        Tensor::new(
            &[[0.1f32, 5.0, 0.2, 0.3], [3.0, 0.0, 0.0, 4.0]],
            &Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn a_vanishing_nucleus_samples_the_top_token() {
        for top_p in [1e-300, f64::MIN_POSITIVE, 1e-9] {
            let p = SamplingParams {
                temperature: 1.0,
                top_p,
                seed: 1,
            };
            let mut s = BatchSampler::new(p, 2);
            assert_eq!(s.sample(&logits()).unwrap(), vec![1, 3], "{top_p}");
        }
    }

    #[test]
    fn greedy_takes_the_argmax_of_each_row() {
        let mut s = BatchSampler::new(SamplingParams::default(), 2);
        assert_eq!(s.sample(&logits()).unwrap(), vec![1, 3]);
    }

    #[test]
    fn seeded_sampling_repeats_and_stays_in_vocab() {
        let p = SamplingParams {
            temperature: 1.5,
            top_p: 0.9,
            seed: 7,
        };
        let draw = || {
            let mut s = BatchSampler::new(p, 2);
            (0..20)
                .flat_map(|_| s.sample(&logits()).unwrap())
                .collect::<Vec<_>>()
        };
        let a = draw();
        assert_eq!(a, draw());
        assert!(a.iter().all(|t| *t < 4));
    }

    #[test]
    fn rejects_bad_parameters() {
        let bad_t = SamplingParams {
            temperature: -1.0,
            ..Default::default()
        };
        assert!(bad_t.validate().is_err());
        let bad_p = SamplingParams {
            top_p: 0.0,
            ..Default::default()
        };
        assert!(bad_p.validate().is_err());
    }
}

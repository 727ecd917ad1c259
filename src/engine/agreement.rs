//! Do two set-ups of one model give the same greedy answer? The tested one (e.g. the GGUF on
//! CUDA) and a reference (e.g. the same file dequantised to f32 on the CPU) read the same
//! prompt and are fed the same tokens; at every step each picks its top token. The first step
//! where they pick differently is reported with all four logits, so a reader can tell a
//! near-tie (a numerics difference) from a broken kernel (a wide gap).

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::model::CausalLm;

/// One side of the comparison: a loaded model and where it runs.
pub struct Side<'a> {
    pub model: &'a mut dyn CausalLm,
    pub device: &'a Device,
}

/// A token one side chose, with both sides' logits for it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Choice {
    pub token: u32,
    pub tested_logit: f32,
    pub reference_logit: f32,
}

/// The first step where the two sides chose differently.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Divergence {
    /// Generated tokens before it (0: the first generated token differs).
    pub position: usize,
    pub tested: Choice,
    pub reference: Choice,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    /// The tokens both sides chose alike, in order.
    pub agreed: Vec<u32>,
    pub divergence: Option<Divergence>,
}

/// Greedy generation on both sides in lockstep, up to `max_tokens` or an end-of-sequence
/// token both chose.
pub fn compare_greedy(
    tested: Side,
    reference: Side,
    prompt: &[u32],
    max_tokens: usize,
    eos_token_ids: &[u32],
) -> Result<Agreement> {
    if prompt.is_empty() {
        bail!("the prompt has no tokens");
    }
    tested.model.clear_cache();
    reference.model.clear_cache();
    let mut agreed = Vec::new();
    let mut input = prompt.to_vec();
    let mut position = 0;
    while agreed.len() < max_tokens {
        let step = agreed.len();
        let a = logits(tested.model, tested.device, &input, position)
            .with_context(|| format!("the tested model at generated token {step}"))?;
        let b = logits(reference.model, reference.device, &input, position)
            .with_context(|| format!("the reference model at generated token {step}"))?;
        if a.len() != b.len() {
            bail!(
                "the two models have different vocabularies ({} and {} logits)",
                a.len(),
                b.len()
            );
        }
        let (ta, tb) = (argmax(&a), argmax(&b));
        if ta != tb {
            let choice = |t: u32| Choice {
                token: t,
                tested_logit: a[t as usize],
                reference_logit: b[t as usize],
            };
            return Ok(Agreement {
                agreed,
                divergence: Some(Divergence {
                    position: step,
                    tested: choice(ta),
                    reference: choice(tb),
                }),
            });
        }
        if eos_token_ids.contains(&ta) {
            break;
        }
        agreed.push(ta);
        position += input.len();
        input = vec![ta];
    }
    Ok(Agreement {
        agreed,
        divergence: None,
    })
}

/// The logits of the last position after feeding `tokens` at `position`.
fn logits(
    model: &mut dyn CausalLm,
    device: &Device,
    tokens: &[u32],
    position: usize,
) -> Result<Vec<f32>> {
    let input = Tensor::from_vec(tokens.to_vec(), (1, tokens.len()), device)?;
    let out = model.forward(&input, position)?;
    Ok(out
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// The index of the largest logit; the first of equals, and NaN never wins.
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose logits are a fixed table by position: the test decides every choice.
    struct Scripted {
        table: Vec<Vec<f32>>,
        cleared: usize,
    }

    impl CausalLm for Scripted {
        fn forward(&mut self, tokens: &Tensor, position: usize) -> candle_core::Result<Tensor> {
            let (_, seq) = tokens.dims2()?;
            let row = &self.table[(position + seq - 1).min(self.table.len() - 1)];
            Tensor::from_vec(row.clone(), (1, row.len()), &Device::Cpu)
        }
        fn clear_cache(&mut self) {
            self.cleared += 1;
        }
    }

    fn scripted(winners: &[usize]) -> Scripted {
        // Position p's logits: token winners[p] at 2.0, the others at 0.0 (token 3 at 1.9).
        let table = winners
            .iter()
            .map(|&w| {
                let mut row = vec![0.0, 0.0, 0.0, 1.9];
                row[w] = 2.0;
                row
            })
            .collect();
        Scripted { table, cleared: 0 }
    }

    fn run(a: &mut Scripted, b: &mut Scripted, max: usize) -> Agreement {
        let cpu = Device::Cpu;
        compare_greedy(
            Side {
                model: a,
                device: &cpu,
            },
            Side {
                model: b,
                device: &cpu,
            },
            &[0, 0],
            max,
            &[2],
        )
        .unwrap()
    }

    #[test]
    fn equal_choices_agree_until_max_tokens_or_a_shared_end_of_sequence() {
        // The prompt has two tokens: its last position is 1.
        let (mut a, mut b) = (scripted(&[0, 1, 0, 1, 0]), scripted(&[0, 1, 0, 1, 0]));
        let got = run(&mut a, &mut b, 3);
        assert_eq!(got.agreed, vec![1, 0, 1]);
        assert_eq!(got.divergence, None);
        assert_eq!((a.cleared, b.cleared), (1, 1));
        let (mut a, mut b) = (scripted(&[0, 1, 2, 1]), scripted(&[0, 1, 2, 1]));
        assert_eq!(run(&mut a, &mut b, 10).agreed, vec![1], "stops at EOS (2)");
    }

    #[test]
    fn the_first_different_choice_is_reported_with_all_four_logits() {
        let (mut a, mut b) = (scripted(&[0, 1, 0, 1]), scripted(&[0, 1, 3, 1]));
        let got = run(&mut a, &mut b, 10);
        assert_eq!(got.agreed, vec![1]);
        let d = got.divergence.unwrap();
        assert_eq!(d.position, 1);
        assert_eq!(
            d.tested,
            Choice {
                token: 0,
                tested_logit: 2.0,
                reference_logit: 0.0
            }
        );
        assert_eq!(
            d.reference,
            Choice {
                token: 3,
                tested_logit: 1.9,
                reference_logit: 2.0
            }
        );
    }

    #[test]
    fn argmax_takes_the_first_of_equals_and_never_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.2]), 1);
    }
}

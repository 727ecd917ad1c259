//! Generation: prefill a batch of equal-length prompts, then decode with the KV cache,
//! timestamping every step with the device synchronised first.

pub mod agreement;
pub mod memory;
pub mod profile;
pub mod sampling;
pub mod timeline;

use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::model::CausalLm;
pub use sampling::{BatchSampler, SamplingParams};
pub use timeline::Timeline;

#[derive(Debug, Clone)]
pub struct GenerationParams {
    /// Most tokens to generate per row (>= 1).
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    /// Keep generating past EOS, for fixed output lengths in benchmarks.
    pub ignore_eos: bool,
    /// Tokens that end a row.
    pub eos_token_ids: Vec<u32>,
    /// Positions the model can attend to; prompt + output must fit.
    pub context_length: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Eos,
    MaxTokens,
}

/// What one generation produced, and when.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated tokens of each row, EOS excluded.
    pub tokens: Vec<Vec<u32>>,
    pub finish: Vec<FinishReason>,
    pub prompt_tokens: usize,
    pub timeline: Timeline,
}

impl Generation {
    pub fn batch(&self) -> usize {
        self.tokens.len()
    }

    /// Prompt tokens processed per second of prefill (all rows).
    pub fn prefill_tokens_per_second(&self) -> Option<f64> {
        let t = self.timeline.ttft()?.as_secs_f64();
        (t > 0.0).then(|| (self.prompt_tokens * self.batch()) as f64 / t)
    }
}

/// Check a batch before any work: equal, non-empty prompts that fit the context with the output.
pub fn validate_batch(prompts: &[Vec<u32>], params: &GenerationParams) -> Result<usize> {
    let first = prompts
        .first()
        .ok_or_else(|| anyhow!("batch size must be at least 1"))?;
    if params.max_tokens == 0 {
        bail!("max_tokens must be at least 1");
    }
    if first.is_empty() {
        bail!("the prompt is empty after tokenisation");
    }
    if let Some((i, p)) = prompts
        .iter()
        .enumerate()
        .find(|(_, p)| p.len() != first.len())
    {
        bail!(
            "prompts in a batch must have equal token lengths: row 0 has {}, row {i} has {}",
            first.len(),
            p.len()
        );
    }
    let needed = first.len() + params.max_tokens;
    if needed > params.context_length {
        bail!(
            "prompt ({} tokens) + max_tokens ({}) = {needed} exceeds the model's context length {}",
            first.len(),
            params.max_tokens,
            params.context_length
        );
    }
    params.sampling.validate()?;
    Ok(first.len())
}

/// Generate for a batch of equal-length prompts. `on_step` sees each step's new tokens
/// (None for rows already finished), e.g. to stream text.
pub fn generate(
    model: &mut dyn CausalLm,
    device: &Device,
    prompts: &[Vec<u32>],
    params: &GenerationParams,
    mut on_step: impl FnMut(&[Option<u32>]),
) -> Result<Generation> {
    generate_while(model, device, prompts, params, |step| {
        on_step(step);
        true
    })
}

/// As `generate`, but `on_step` returning false stops the generation after that step (a
/// server whose client went away); the rows then end as MaxTokens.
pub fn generate_while(
    model: &mut dyn CausalLm,
    device: &Device,
    prompts: &[Vec<u32>],
    params: &GenerationParams,
    mut on_step: impl FnMut(&[Option<u32>]) -> bool,
) -> Result<Generation> {
    let prompt_len = validate_batch(prompts, params)?;
    let batch = prompts.len();
    let flat: Vec<u32> = prompts.iter().flatten().copied().collect();
    let input = Tensor::from_vec(flat, (batch, prompt_len), device)?;
    let mut sampler = BatchSampler::new(params.sampling, batch);
    let mut tokens: Vec<Vec<u32>> = vec![Vec::with_capacity(params.max_tokens); batch];
    let mut finish: Vec<Option<FinishReason>> = vec![None; batch];
    let mut timeline = Timeline::default();

    model.clear_cache();
    crate::device::synchronize(device)?;
    let start = Instant::now();
    let logits = model.forward(&input, 0).context("prefill")?;
    let mut next = sampler
        .sample(&logits)
        .context("sampling the first token")?;
    crate::device::synchronize(device)?;
    let mut now = start.elapsed();

    for step in 0..params.max_tokens {
        let mut emitted: Vec<Option<u32>> = vec![None; batch];
        let mut live = 0;
        for row in 0..batch {
            if finish[row].is_some() {
                continue;
            }
            let tok = next[row];
            if !params.ignore_eos && params.eos_token_ids.contains(&tok) {
                finish[row] = Some(FinishReason::Eos);
                continue;
            }
            tokens[row].push(tok);
            emitted[row] = Some(tok);
            live += 1;
        }
        let mut go_on = true;
        if live > 0 {
            timeline.push(now, live);
            go_on = on_step(&emitted);
        }
        let all_done = finish.iter().all(Option::is_some);
        if all_done || !go_on || step + 1 == params.max_tokens {
            break;
        }
        let input = Tensor::from_vec(next.clone(), (batch, 1), device)?;
        let logits = model
            .forward(&input, prompt_len + step)
            .with_context(|| format!("decode step {}", step + 1))?;
        next = sampler.sample(&logits)?;
        crate::device::synchronize(device)?;
        now = start.elapsed();
    }
    let finish = finish
        .into_iter()
        .map(|f| f.unwrap_or(FinishReason::MaxTokens))
        .collect();
    Ok(Generation {
        tokens,
        finish,
        prompt_tokens: prompt_len,
        timeline,
    })
}

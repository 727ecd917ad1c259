//! Whether a batch fits in memory, estimated from the model's shape before any tensor is
//! made: a batch of a million, or prompts of a million tokens, is refused with the figures
//! instead of aborting the process when an allocation fails.

use anyhow::{bail, Result};

use crate::device::gib;
use crate::model::ModelInfo;

/// Bytes a generation of `batch` rows of `prompt + output` tokens holds at its peak, at most
/// (f32 everywhere; every head a KV head).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchMemory {
    /// Keys and values of every layer for every token of every row.
    pub kv_cache: u64,
    /// Prefill: hidden states and MLP activations of every prompt token, attention scores of
    /// every head (64-wide heads assumed), logits of every row.
    pub activations: u64,
}

impl BatchMemory {
    pub fn of(info: &ModelInfo, batch: usize, prompt: usize, output: usize) -> BatchMemory {
        let [b, p, o, layers, hidden, vocab] = [
            batch,
            prompt,
            output,
            info.layers,
            info.hidden_size,
            info.vocab_size,
        ]
        .map(|v| v as u64);
        let f32s = |n: u64| n.saturating_mul(4);
        let heads = (hidden / 64).max(1);
        let kv_cache = f32s(
            2u64.saturating_mul(layers)
                .saturating_mul(b)
                .saturating_mul(p.saturating_add(o))
                .saturating_mul(hidden),
        );
        let states = b
            .saturating_mul(p)
            .saturating_mul(hidden)
            .saturating_mul(12);
        let scores = b.saturating_mul(heads).saturating_mul(p.saturating_mul(p));
        let logits = b.saturating_mul(vocab).saturating_mul(2);
        BatchMemory {
            kv_cache,
            activations: f32s(states.saturating_add(scores).saturating_add(logits)),
        }
    }

    pub fn total(&self) -> u64 {
        self.kv_cache.saturating_add(self.activations)
    }

    /// Refuse, with the figures, a batch that cannot fit in `available` bytes.
    pub fn check(&self, available: Option<u64>, info: &ModelInfo, what: &str) -> Result<()> {
        let Some(available) = available else {
            return Ok(());
        };
        if self.total() > available {
            bail!(
                "{what} needs about {:.1} GiB ({:.1} GiB of KV cache, {:.1} GiB of activations) \
                 with this model ({} layers, hidden size {}, vocabulary {}), but only {:.1} GiB \
                 is available: lower the batch size or the lengths",
                gib(self.total()),
                gib(self.kv_cache),
                gib(self.activations),
                info.layers,
                info.hidden_size,
                info.vocab_size,
                gib(available)
            );
        }
        Ok(())
    }
}

/// Check a batch against the host's available memory (CPU runs; a GPU's memory is its own).
pub fn check_batch(
    info: &ModelInfo,
    device: &candle_core::Device,
    batch: usize,
    prompt: usize,
    output: usize,
) -> Result<()> {
    if !device.is_cpu() {
        return Ok(());
    }
    let what = format!("batch {batch} × (prompt {prompt} + output {output} tokens)");
    BatchMemory::of(info, batch, prompt, output).check(
        crate::device::available_memory(),
        info,
        &what,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smollm() -> ModelInfo {
        ModelInfo {
            name: "smollm".into(),
            path: String::new(),
            format: "gguf".into(),
            architecture: "llama".into(),
            dtype: "Q8_0".into(),
            parameters: 135_000_000,
            vocab_size: 49152,
            context_length: 8192,
            layers: 30,
            hidden_size: 576,
            load_seconds: 0.0,
            prefill: String::new(),
            footprint: None,
        }
    }

    #[test]
    fn the_quick_preset_fits_and_a_million_rows_do_not() {
        let info = smollm();
        let quick = BatchMemory::of(&info, 8, 128, 64);
        assert!(gib(quick.total()) < 0.5, "{quick:?}");
        assert!(quick.check(Some(2 << 30), &info, "b8").is_ok());
        let huge = BatchMemory::of(&info, 1_000_000, 16, 128);
        let err = huge
            .check(Some(20 << 30), &info, "batch 1000000")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("batch 1000000")
                && err.contains("GiB of KV cache")
                && err.contains("30 layers"),
            "{err}"
        );
        // Nothing overflows, whatever the sizes.
        let absurd = BatchMemory::of(&info, usize::MAX, usize::MAX, usize::MAX);
        assert_eq!(absurd.total(), u64::MAX);
    }
}

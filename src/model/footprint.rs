//! What a token costs a model: the bytes of the weights a decode step reads, the KV bytes
//! of a position, the parameter counts behind a prefill's FLOPs. Recorded at load from the
//! shapes and the weights as held; `crate::roofline` sets it against the measured rates.
//!
//! The formulas, for a batch of B rows, a prompt of P tokens and G generated tokens:
//! - a decode step reads the weights once (the rows share them), and each row reads the
//!   cached K and V of every position it attends over and writes its new position's K and V;
//!   decode step j (1..G-1) attends over P + j positions, so the G-1 steps move
//!   (G-1)·W + B·KV·((G-1)·P + (G-1)·G/2) + B·(G-1)·KV bytes (W weight bytes a step, KV the
//!   bytes of one position's K and V over all layers);
//! - a prefill computes 2·P·L FLOPs per row through the layers' projections (L their
//!   parameters), 2·H on the last position through the output projection (H its
//!   parameters), and 2·A·P·(P+1) per layer for causal attention's scores and weighted sum
//!   (A = query heads × head dimension), the FLOPs that count: a kernel that also computes the
//!   masked half does more work than this says.

use serde::{Deserialize, Serialize};

/// What a token costs a model, from its shapes and its weights as held in memory.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of the weights every decode step reads: every layer's projections and norms,
    /// the final norm and the output projection, as held (after any repack), plus one row
    /// of the embedding table per token.
    pub step_weight_bytes: u64,
    /// Parameters of the layers' projections: multiply-adds per token through them.
    pub layer_matmul_params: u64,
    /// Parameters of the output projection (applied to each row's last position only).
    pub head_params: u64,
    /// Bytes of K and V for one position over all layers, as cached.
    pub kv_bytes_per_position: u64,
    pub layers: u64,
    /// Query heads × head dimension: the width of attention's dot products.
    pub attention_width: u64,
}

impl Footprint {
    /// Bytes moved by the G-1 decode steps that follow a prefill of P tokens, B rows.
    pub fn decode_bytes(&self, batch: u64, prompt: u64, generated: u64) -> f64 {
        let steps = generated.saturating_sub(1) as f64;
        let (b, p, kv) = (
            batch as f64,
            prompt as f64,
            self.kv_bytes_per_position as f64,
        );
        // Positions attended over, summed over the steps: sum of P + j for j = 1..G-1.
        let attended = steps * p + steps * (steps + 1.0) / 2.0;
        steps * self.step_weight_bytes as f64 + b * kv * attended + b * steps * kv
    }

    /// The mean bytes of one decode step (see [`Footprint::decode_bytes`]).
    pub fn bytes_per_decode_step(&self, batch: u64, prompt: u64, generated: u64) -> f64 {
        let steps = generated.saturating_sub(1);
        if steps == 0 {
            return 0.0;
        }
        self.decode_bytes(batch, prompt, generated) / steps as f64
    }

    /// FLOPs of a prefill of P tokens over B rows, the first token's logits included.
    pub fn prefill_flops(&self, batch: u64, prompt: u64) -> f64 {
        let (b, p) = (batch as f64, prompt as f64);
        let projections = 2.0 * p * self.layer_matmul_params as f64;
        let head = 2.0 * self.head_params as f64;
        let attention = 2.0 * (self.layers * self.attention_width) as f64 * p * (p + 1.0);
        b * (projections + head + attention)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A toy model: 1 MB of weights a step, 1,000 projection parameters, a 100-parameter
    /// head, 10 bytes of KV a position, 2 layers, attention width 4.
    pub(crate) fn toy() -> Footprint {
        Footprint {
            step_weight_bytes: 1_000_000,
            layer_matmul_params: 1_000,
            head_params: 100,
            kv_bytes_per_position: 10,
            layers: 2,
            attention_width: 4,
        }
    }

    #[test]
    fn decode_bytes_count_the_weights_once_a_step_and_the_cache_per_row() {
        let f = toy();
        // P = 4, G = 3: steps attend over 5 and 6 positions and write one each.
        let one = f.decode_bytes(1, 4, 3);
        assert_eq!(one, 2.0 * 1e6 + 10.0 * (5.0 + 6.0) + 2.0 * 10.0);
        // Batch 8 reads the weights once, the cache eight times.
        let eight = f.decode_bytes(8, 4, 3);
        assert_eq!(eight, 2.0 * 1e6 + 8.0 * (10.0 * 11.0 + 20.0));
        assert_eq!(f.bytes_per_decode_step(1, 4, 3), one / 2.0);
        // One generated token: no decode step, nothing moved.
        assert_eq!(f.decode_bytes(1, 4, 1), 0.0);
        assert_eq!(f.bytes_per_decode_step(1, 4, 1), 0.0);
    }

    #[test]
    fn prefill_flops_are_projections_head_and_causal_attention() {
        let f = toy();
        // P = 3: 2·3·1000 + 2·100 + 2·(2·4)·3·4 per row.
        assert_eq!(f.prefill_flops(1, 3), 6000.0 + 200.0 + 192.0);
        assert_eq!(f.prefill_flops(2, 3), 2.0 * 6392.0);
    }
}

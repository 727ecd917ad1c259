//! Roofline figures: the bytes a decode step moves and the FLOPs a prefill computes, from the
//! model's shapes and its weights as held in memory, and how close a measured rate comes to
//! this machine's measured peaks (`inferbench info --peaks`). Decode at small batch is bound
//! by memory (every step reads all the weights once), prefill by arithmetic.
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

use crate::peaks::Peaks;

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

/// A run's roofline: what it moved and computed, at what rate, and the share of the peaks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Roofline {
    /// Mean bytes a decode step moved (weights + KV cache read + written).
    pub decode_bytes_per_step: f64,
    /// Those bytes over the decode time.
    pub decode_bytes_per_s: Option<f64>,
    /// Of this machine's measured bandwidth (None when the peaks are not measured yet).
    pub decode_bandwidth_share: Option<f64>,
    /// FLOPs of the prefill (all rows).
    pub prefill_flops: f64,
    pub prefill_flops_per_s: Option<f64>,
    /// Of this machine's measured f32 GEMM FLOP/s (CPU only; None on a GPU or unmeasured).
    pub prefill_flops_share: Option<f64>,
    /// Which peaks the shares are of ("% of the CPU's STREAM triad ..."), or why none.
    pub peaks: String,
}

/// The bandwidth and FLOP peaks a run on `device` is held against, and what they are.
pub struct Ceiling {
    pub bandwidth: Option<f64>,
    pub flops: Option<f64>,
    pub what: String,
}

impl Ceiling {
    /// The ceiling from cached peaks: the all-thread triad and GEMM on a CPU, the measured
    /// copy (else the nominal figure) on GPU `gpu`.
    pub fn of(peaks: Option<&Peaks>, gpu: Option<u32>) -> Ceiling {
        let Some(p) = peaks else {
            return Ceiling {
                bandwidth: None,
                flops: None,
                what: "no peaks measured on this machine yet: inferbench info --peaks".into(),
            };
        };
        match gpu {
            None => Ceiling {
                bandwidth: Some(p.cpu.triad_bytes_per_s).filter(|v| v.is_finite() && *v > 0.0),
                flops: Some(p.cpu.gemm_f32_flops).filter(|v| v.is_finite() && *v > 0.0),
                what: format!(
                    "% of the CPU's STREAM triad and f32 GEMM on {} threads, from info --peaks",
                    p.cpu.threads
                ),
            },
            Some(index) => {
                let g = p.gpus.iter().find(|g| g.index == index);
                let copy = g.and_then(|g| g.copy_bytes_per_s.value());
                let nominal = g.and_then(|g| g.nominal_bandwidth_bytes_per_s);
                Ceiling {
                    bandwidth: copy.or(nominal.map(|v| v as f64)),
                    flops: None,
                    what: match (copy, nominal) {
                        (Some(_), _) => format!("% of GPU {index}'s measured device copy"),
                        (None, Some(_)) => format!("% of GPU {index}'s nominal bandwidth (NVML)"),
                        (None, None) => format!("no bandwidth known for GPU {index}"),
                    },
                }
            }
        }
    }

    /// The ceiling of a run on the device named `device` ("cpu", "cuda:N") on this machine,
    /// from the peaks cache (nothing is measured here).
    pub fn here(machine: &crate::device::MachineInfo, device: &str) -> Ceiling {
        let gpu = device
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .or_else(|| (device == "cuda").then_some(0));
        Ceiling::of(crate::peaks::cached_here(machine).as_ref(), gpu)
    }

    /// The roofline of a generation: B rows, P prompt tokens, G generated, with the time to
    /// first token and the decode time (first token to last) it took.
    pub fn roofline(
        &self,
        footprint: &Footprint,
        shape: (u64, u64, u64),
        ttft_s: f64,
        decode_s: f64,
    ) -> Roofline {
        let (batch, prompt, generated) = shape;
        let per_s = |amount: f64, secs: f64| (secs > 0.0 && amount > 0.0).then(|| amount / secs);
        let share = |rate: Option<f64>, peak: Option<f64>| Some(rate? / peak?);
        let decode_bytes_per_s = per_s(footprint.decode_bytes(batch, prompt, generated), decode_s);
        let prefill_flops = footprint.prefill_flops(batch, prompt);
        let prefill_flops_per_s = per_s(prefill_flops, ttft_s);
        Roofline {
            decode_bytes_per_step: footprint.bytes_per_decode_step(batch, prompt, generated),
            decode_bytes_per_s,
            decode_bandwidth_share: share(decode_bytes_per_s, self.bandwidth),
            prefill_flops,
            prefill_flops_per_s,
            prefill_flops_share: share(prefill_flops_per_s, self.flops),
            peaks: self.what.clone(),
        }
    }
}

impl Roofline {
    /// One line for people: "decode 98.2 MB/step, 7.4 GB/s = 41% of ...; prefill ...".
    pub fn text(&self) -> String {
        let pct = |s: Option<f64>| s.map_or(String::new(), |v| format!(" = {:.0}%", v * 100.0));
        let decode = match self.decode_bytes_per_s {
            Some(r) => format!(
                "decode {:.1} MB/step, {:.2} GB/s{}",
                self.decode_bytes_per_step / 1e6,
                r / 1e9,
                pct(self.decode_bandwidth_share)
            ),
            None => format!("decode {:.1} MB/step", self.decode_bytes_per_step / 1e6),
        };
        let prefill = match self.prefill_flops_per_s {
            Some(r) => format!(
                "prefill {:.2} GFLOP, {:.1} GFLOP/s{}",
                self.prefill_flops / 1e9,
                r / 1e9,
                pct(self.prefill_flops_share)
            ),
            None => format!("prefill {:.2} GFLOP", self.prefill_flops / 1e9),
        };
        format!("{decode} | {prefill} ({})", self.peaks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy model: 1 MB of weights a step, 1,000 projection parameters, a 100-parameter
    /// head, 10 bytes of KV a position, 2 layers, attention width 4.
    fn toy() -> Footprint {
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

    #[test]
    fn shares_need_a_rate_and_a_peak() {
        let ceiling = Ceiling {
            bandwidth: Some(4e6),
            flops: Some(1e6),
            what: "test".into(),
        };
        // P = 4, G = 3 over 1 s of decode: 2,000,130 bytes, half the 4 MB/s peak.
        let r = ceiling.roofline(&toy(), (1, 4, 3), 0.01, 1.0);
        assert!((r.decode_bandwidth_share.unwrap() - 0.5000325).abs() < 1e-9);
        // P = 4: 8000 + 200 + 320 FLOPs in 10 ms = 852 kFLOP/s of a 1 MFLOP/s peak.
        assert!((r.prefill_flops_share.unwrap() - 0.852).abs() < 1e-9);
        assert!(
            r.text().contains("= 50%") && r.text().contains("= 85%"),
            "{}",
            r.text()
        );
        let none = Ceiling::of(None, None).roofline(&toy(), (1, 4, 3), 0.01, 0.0);
        assert_eq!(
            (none.decode_bytes_per_s, none.decode_bandwidth_share),
            (None, None)
        );
        assert!(
            none.text().contains("inferbench info --peaks"),
            "{}",
            none.text()
        );
    }
}

//! Roofline figures: the bytes a decode step moves and the FLOPs a prefill computes, from the
//! model's shapes and its weights as held in memory, and how close a measured rate comes to
//! this machine's measured peaks (`inferbench info --peaks`). Decode at small batch is bound
//! by memory (every step reads all the weights once), prefill by arithmetic.
//!
//! The formulas are in `crate::model::footprint`.

use serde::{Deserialize, Serialize};

pub use crate::model::footprint::Footprint;
use crate::peaks::Peaks;

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
    /// The table cell of the decode rate: "16.80 (34%)", or the GB/s alone without a peak.
    pub fn decode_cell(&self) -> String {
        giga_with_share(self.decode_bytes_per_s, self.decode_bandwidth_share)
    }

    /// The table cell of the prefill rate, in GFLOP/s, likewise.
    pub fn prefill_cell(&self) -> String {
        giga_with_share(self.prefill_flops_per_s, self.prefill_flops_share)
    }

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

/// A rate in units of 1e9 with its share of the peak when known; "-" without a rate.
fn giga_with_share(rate: Option<f64>, share: Option<f64>) -> String {
    match (rate, share) {
        (Some(r), Some(s)) => format!("{:.2} ({:.0}%)", r / 1e9, s * 100.0),
        (Some(r), None) => format!("{:.2}", r / 1e9),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::footprint::tests::toy;

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

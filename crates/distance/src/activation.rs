//! SwiGLU's elementwise half, silu(gate) · up, in one pass with the vectorised `exp`.
//!
//! candle computes it as two ops (silu, then a product into a new tensor) with libm's scalar
//! `exp`: a tenth of a 32-token SmolLM2 prefill once its matmuls were fast.

use crate::attention::exp;

/// `out[i] = gate[i] / (1 + e^-gate[i]) · up[i]`.
pub fn silu_mul(gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(
        gate.len() == out.len() && up.len() == out.len(),
        "silu_mul: lengths {}, {}, {}",
        gate.len(),
        up.len(),
        out.len()
    );
    #[cfg(target_arch = "x86_64")]
    match crate::isa() {
        // SAFETY: isa() detected the features each copy is compiled for.
        crate::Isa::Avx512 => return unsafe { silu_mul_avx512(gate, up, out) },
        crate::Isa::Avx2 => return unsafe { silu_mul_avx2(gate, up, out) },
        crate::Isa::Portable => {}
    }
    body(gate, up, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn silu_mul_avx512(gate: &[f32], up: &[f32], out: &mut [f32]) {
    body(gate, up, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn silu_mul_avx2(gate: &[f32], up: &[f32], out: &mut [f32]) {
    body(gate, up, out)
}

#[inline(always)]
fn body(gate: &[f32], up: &[f32], out: &mut [f32]) {
    for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
        *o = g / (1.0 + exp(-g)) * u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against f64 silu over the range activations take, on the dispatched copy and the
    /// portable body: within 1e-6 relative, and past exp's clamp (gate < -87, where silu is
    /// under 1e-36) within 1e-30 absolute.
    #[test]
    fn matches_silu_times_up() {
        let gate: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.06).collect();
        let up: Vec<f32> = gate.iter().map(|g| 1.5 - g * 0.01).collect();
        let (mut ours, mut portable) = (vec![0f32; gate.len()], vec![0f32; gate.len()]);
        silu_mul(&gate, &up, &mut ours);
        body(&gate, &up, &mut portable);
        for i in 0..gate.len() {
            let exact = (gate[i] as f64 / (1.0 + (-gate[i] as f64).exp())) * up[i] as f64;
            for got in [ours[i], portable[i]] {
                let err = (got as f64 - exact).abs();
                assert!(
                    err <= 1e-6 * exact.abs() + 1e-30,
                    "at {}: {got} vs {exact}",
                    gate[i]
                );
            }
        }
    }
}

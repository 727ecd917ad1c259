//! The gated activation of a llama MLP, silu(gate) · up: on the CPU one fused pass
//! (`inferbench_distance::activation`) split over candle's pool, elsewhere candle's two ops.

use candle_core::{CpuStorage, Result, Storage, Tensor};

/// Elements a pool task takes: big enough that a task outweighs its dispatch.
const RUN: usize = 8192;

/// silu(gate) · up, elementwise, for two tensors of one shape.
pub fn silu_mul(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if gate.device().is_cpu() && gate.shape() == up.shape() {
        if let Some(y) = fused(&gate.contiguous()?, &up.contiguous()?)? {
            return Ok(y);
        }
    }
    candle_nn::ops::silu(gate)? * up
}

fn fused(gate: &Tensor, up: &Tensor) -> Result<Option<Tensor>> {
    let (g_store, g_layout) = gate.storage_and_layout();
    let (u_store, u_layout) = up.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(g)), Storage::Cpu(CpuStorage::F32(u))) =
        (&*g_store, &*u_store)
    else {
        return Ok(None);
    };
    let n = gate.elem_count();
    let g = &g[g_layout.start_offset()..][..n];
    let u = &u[u_layout.start_offset()..][..n];
    let mut out = vec![0f32; n];
    super::parallel::fill_runs(&mut out, RUN, |i, y| {
        let at = i * RUN..i * RUN + y.len();
        inferbench_distance::activation::silu_mul(&g[at.clone()], &u[at], y);
    });
    drop((g_store, u_store));
    Tensor::from_vec(out, gate.shape(), gate.device()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    /// Against candle's two ops, for a contiguous pair and for column views of one tensor
    /// (as a batched decode's stacked projections give them).
    #[test]
    fn equals_candles_silu_times_up() -> Result<()> {
        let dev = Device::Cpu;
        let both = Tensor::randn(0f32, 3.0, (3, 5, 2 * 9000), &dev)?;
        let pairs = [
            (
                both.i((.., .., ..9000))?.contiguous()?,
                both.i((.., .., 9000..))?.contiguous()?,
            ),
            (both.i((.., .., ..9000))?, both.i((.., .., 9000..))?),
        ];
        for (gate, up) in pairs {
            let ours = silu_mul(&gate, &up)?.flatten_all()?.to_vec1::<f32>()?;
            let theirs = (candle_nn::ops::silu(&gate)? * &up)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-6 * b.abs() + 1e-30, "{a} vs {b}");
            }
        }
        Ok(())
    }
}

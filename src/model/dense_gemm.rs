//! The prefill GEMM on CPU: activations times a dequantised f32 weight, split by output
//! columns over candle's persistent thread pool. A weight kept between prefills is packed
//! into panels for our own kernel (`inferbench_distance::panel_gemm`, AVX-512); otherwise each
//! part is one single-threaded `gemm` call.
//!
//! candle's own matmul runs the same `gemm` with rayon's parallelism, whose workers sleep
//! between the ~120 GEMMs of a prefill; split this way a SmolLM2 prefill's GEMMs took 20% less
//! time (32 rows: 69 against 86 ms; 128 rows: 158 against 190 ms, alternated on the 2-core
//! EPYC VM). The sums are the same products in gemm's order; where a split changes which
//! micro-kernel takes an edge column, that column can differ in its last bit.

use candle_core::{CpuStorage, Result, Storage, Tensor};
use inferbench_distance::panel_gemm::{self, PackedWeight, PANEL};

use super::parallel::SharedOut;

/// Output columns per task are rounded to this, the widest of gemm's micro-kernels.
const COLUMN_ALIGN: usize = 16;

/// `x` (..., k) times rows `start..start + n` of `w` (rows × k, f32, contiguous) transposed:
/// (..., n). None when either is not f32 on the CPU laid out so (the caller uses candle's).
pub fn matmul_rows(x: &Tensor, w: &Tensor, start: usize, n: usize) -> Result<Option<Tensor>> {
    let (w_rows, k) = w.dims2()?;
    if start + n > w_rows || !w.is_contiguous() {
        return Ok(None);
    }
    let (w_store, w_layout) = w.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(ws)) = &*w_store else {
        return Ok(None);
    };
    let ws = &ws[w_layout.start_offset() + start * k..][..n * k];
    let per_task = n
        .div_ceil(super::parallel::threads())
        .next_multiple_of(COLUMN_ALIGN)
        .max(1);
    rows_times(x, k, n, |xs, m, dst| {
        split(n.div_ceil(per_task), |task| {
            let first = task * per_task;
            let cols = per_task.min(n - first);
            // SAFETY: `xs` holds m × k values and `ws` from row `first` on at least
            // cols × k; the destination is the m × n output, of which this task writes
            // only columns first..first + cols (row stride n), so tasks never write the
            // same element; the output outlives the call (`split` returns when every task
            // is done).
            unsafe {
                gemm::gemm(
                    m,
                    cols,
                    k,
                    dst.at(first),
                    1,
                    n as isize,
                    false,
                    xs.as_ptr(),
                    1,
                    k as isize,
                    ws.as_ptr().add(first * k),
                    k as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                )
            }
        })
    })
}

/// `x` (..., k) times the packed weight (n × k) transposed: (..., n), its panels split over
/// the pool's threads. None when `x` is not f32 on the CPU or not k wide.
pub fn matmul_packed(x: &Tensor, w: &PackedWeight) -> Result<Option<Tensor>> {
    let (n, k, panels) = (w.rows(), w.cols(), w.panels());
    let per_task = panels.div_ceil(super::parallel::threads()).max(1);
    rows_times(x, k, n, |xs, m, dst| {
        split(panels.div_ceil(per_task), |task| {
            let first = task * per_task;
            let last = (first + per_task).min(panels);
            // SAFETY: the output is m × n; this task writes only the columns of its own
            // panels (16 each from 16 × first, clipped to n), and the output outlives the
            // call (`split` returns when every task is done).
            unsafe { panel_gemm::matmul_panels(xs, m, w, first..last, dst.at(first * PANEL), n) }
        })
    })
}

/// `x` (..., k) as m × k f32 rows on the CPU, and an m × n output that `product` fills:
/// (..., n). None when `x` is not f32 on the CPU or not k wide.
fn rows_times(
    x: &Tensor,
    k: usize,
    n: usize,
    product: impl FnOnce(&[f32], usize, &SharedOut),
) -> Result<Option<Tensor>> {
    let mut dims = x.dims().to_vec();
    if dims.pop() != Some(k) {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let m: usize = dims.iter().product();
    let (x_store, x_layout) = x.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(xs)) = &*x_store else {
        return Ok(None);
    };
    let mut out = vec![0f32; m * n];
    product(
        &xs[x_layout.start_offset()..][..m * k],
        m,
        &SharedOut(out.as_mut_ptr()),
    );
    drop(x_store);
    dims.push(n);
    Tensor::from_vec(out, dims, x.device()).map(Some)
}

/// Tasks `0..tasks` over candle's pool; returns when all are done.
fn split(tasks: usize, task: impl Fn(usize) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(tasks, |range| range.for_each(&task));
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    /// Rounding of 48 products summed in another order: well under 1e-6 of the largest.
    fn assert_close(ours: &Tensor, theirs: &Tensor) -> Result<()> {
        assert_eq!(ours.dims(), theirs.dims());
        let (a, b) = (
            ours.flatten_all()?.to_vec1::<f32>()?,
            theirs.flatten_all()?.to_vec1::<f32>()?,
        );
        let largest = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (p, q) in a.iter().zip(&b) {
            assert!(
                (p - q).abs() <= 1e-6 * largest,
                "{:?}: {p} vs {q}",
                ours.dims()
            );
        }
        Ok(())
    }

    #[test]
    fn equals_candles_matmul_up_to_rounding() -> Result<()> {
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 0.1, (100, 48), &device)?;
        for (shape, start, n) in [(vec![1, 7, 48], 0, 100), (vec![2, 3, 48], 37, 50)] {
            let x = Tensor::randn(0f32, 1.0, shape, &device)?;
            let ours = matmul_rows(&x, &w, start, n)?.expect("f32 on the CPU");
            assert_close(&ours, &x.broadcast_matmul(&w.i(start..start + n)?.t()?)?)?;
        }
        Ok(())
    }

    #[test]
    fn packed_equals_candles_matmul_up_to_rounding() -> Result<()> {
        let device = Device::Cpu;
        let (n, k) = (100, 48);
        let w = Tensor::randn(0f32, 0.1, (n, k), &device)?;
        let packed = PackedWeight::pack(&w.flatten_all()?.to_vec1::<f32>()?, n, k);
        for shape in [vec![1, 7, k], vec![2, 33, k]] {
            let x = Tensor::randn(0f32, 1.0, shape, &device)?;
            let ours = matmul_packed(&x, &packed)?.expect("f32 on the CPU");
            assert_close(&ours, &x.broadcast_matmul(&w.t()?)?)?;
        }
        Ok(())
    }
}

//! The prefill GEMM on CPU: activations times a dequantised f32 weight, split by output
//! columns over candle's persistent thread pool. Where the CPU runs our own kernel
//! (`inferbench_distance::panel_gemm`, AVX-512 or AVX2) each weight is packed into its panels
//! (`pack`); otherwise each part is one single-threaded `gemm` call.
//!
//! candle's own matmul runs the same `gemm` with rayon's parallelism, whose workers sleep
//! between the ~120 GEMMs of a prefill; split this way a SmolLM2 prefill's GEMMs took 20% less
//! time (32 rows: 69 against 86 ms; 128 rows: 158 against 190 ms, alternated on the 2-core
//! EPYC VM). The sums are the same products in gemm's order; where a split changes which
//! micro-kernel takes an edge column, that column can differ in its last bit.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, Device, Result, Storage, Tensor};
use inferbench_distance::panel_gemm::{self, PackedWeight, PANEL};
use inferbench_distance::q8;

use super::parallel::{self, SharedOut};

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

/// `weight` (rows × k) dequantised and packed for [`matmul_packed`], one packed weight per
/// consecutive `widths` rows, the panels filled over the pool's threads. Q8_0 rows are
/// dequantised straight into their panels: one pass, no f32 copy of the whole matrix (the
/// first prefill of a process had spent 0.4 s in dequantise, copy and pack with SmolLM2).
/// Other types go through candle's dequantisation first. Values equal candle's dequantised.
pub fn pack(weight: &QTensor, widths: &[usize]) -> Result<Arc<[PackedWeight]>> {
    let (rows, k) = weight.shape().dims2()?;
    if widths.iter().sum::<usize>() > rows {
        candle_core::bail!("projection widths {widths:?} past the weight's {rows} rows");
    }
    let row_bytes = k / q8::BLOCK * q8::BLOCK_BYTES;
    let (quantised, dequantised);
    let source = match weight.data() {
        Ok(data)
            if weight.dtype() == GgmlDType::Q8_0
                && k.is_multiple_of(q8::BLOCK)
                && data.len() == rows * row_bytes =>
        {
            quantised = data;
            Rows::Q8 {
                blocks: &quantised,
                row_bytes,
            }
        }
        _ => {
            dequantised = weight.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?;
            Rows::F32 {
                values: &dequantised,
                k,
            }
        }
    };
    let mut start = 0;
    let packed = widths.iter().map(|&n| {
        let first = start;
        start += n;
        PackedWeight::from_panels(n, k, |data, panel_len| {
            parallel::fill_runs(data, panel_len, |p, panel| {
                let rows = panel_gemm::panel_rows(n, p);
                panel_gemm::pack_panel(panel, k, rows, |r, values| {
                    source.row(first + p * PANEL + r, values)
                })
            })
        })
    });
    Ok(packed.collect())
}

/// A weight's rows as stored: Q8_0 blocks, or values already dequantised.
enum Rows<'a> {
    Q8 { blocks: &'a [u8], row_bytes: usize },
    F32 { values: &'a [f32], k: usize },
}

impl Rows<'_> {
    fn row(&self, r: usize, out: &mut [f32]) {
        match *self {
            Rows::Q8 { blocks, row_bytes } => {
                q8::dequantize_row(&blocks[r * row_bytes..][..row_bytes], out)
            }
            Rows::F32 { values, k } => out.copy_from_slice(&values[r * k..][..k]),
        }
    }
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

    /// Q8_0 weights packed straight from their blocks, and other types through candle's
    /// dequantisation, hold exactly candle's dequantised values, block by block.
    #[test]
    fn packed_weights_hold_candles_dequantised_values() -> Result<()> {
        let device = Device::Cpu;
        let (rows, k) = (100, 64);
        let w = Tensor::randn(0f32, 0.1, (rows, k), &device)?;
        for dtype in [GgmlDType::Q8_0, GgmlDType::Q4_0, GgmlDType::Q4_1] {
            let q = QTensor::quantize(&w, dtype)?;
            let values = q.dequantize(&device)?.flatten_all()?.to_vec1::<f32>()?;
            let widths = [37, 50, 13];
            let packed = pack(&q, &widths)?;
            let mut start = 0;
            for (block, &n) in packed.iter().zip(&widths) {
                let want = PackedWeight::pack(&values[start * k..], n, k);
                assert!(*block == want, "{dtype:?}: rows {start}..{}", start + n);
                start += n;
            }
        }
        assert!(pack(&QTensor::quantize(&w, GgmlDType::Q8_0)?, &[60, 41]).is_err());
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

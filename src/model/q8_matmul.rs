//! The decode step's quantised matmul on CPU: Q8_0 weights through our AVX-512 VNNI or AVX2
//! kernel (`inferbench_distance::q8`), split over candle's persistent thread pool.
//!
//! Used for few rows (decode, batched decode, short prompts) when the weight is Q8_0 and the
//! CPU has the kernel's instructions; everything else keeps candle's QMatMul. The arithmetic
//! is candle's (same activation quantisation, same per-block integer dot products and scale
//! products); only the order of the final f32 additions differs.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Tensor};
use inferbench_distance::q8::{self, Activations};

/// Weight rows a worker takes at a time: enough to stream well, small enough to balance.
const ROWS_PER_TASK: usize = 16;

/// Whether `weight` goes through this kernel on `device`.
pub fn applies(weight: &QTensor, device: &Device) -> bool {
    weight.dtype() == GgmlDType::Q8_0
        && device.is_cpu()
        && std::env::var_os("INFERBENCH_CANDLE_MATMUL").is_none()
        && q8::available()
}

/// `x` (..., k) times `weight` (n, k) transposed: (..., n).
pub fn forward(weight: &QTensor, x: &Tensor) -> Result<Tensor> {
    let (n, k) = weight.shape().dims2()?;
    let mut dims = x.dims().to_vec();
    if dims.pop() != Some(k) {
        candle_core::bail!("q8 matmul: input {:?} against weight ({n}, {k})", x.dims());
    }
    let rows: usize = dims.iter().product();
    let values = x.flatten_all()?.to_vec1::<f32>()?;
    let acts = Activations::quantise(&values, rows, k);
    let data = weight.data()?;
    let row_bytes = k / q8::BLOCK * q8::BLOCK_BYTES;
    // by_weight_row[r * rows + i]: what the kernel writes, each task a run of whole rows.
    let mut by_weight_row = vec![0f32; n * rows];
    super::parallel::fill_runs(&mut by_weight_row, ROWS_PER_TASK * rows, |task, out| {
        let first = task * ROWS_PER_TASK;
        let last = first + out.len() / rows;
        q8::matmul_rows(&data[first * row_bytes..last * row_bytes], &acts, out);
    });
    let result = if rows == 1 {
        by_weight_row
    } else {
        let mut by_input_row = vec![0f32; n * rows];
        for (r, sums) in by_weight_row.chunks_exact(rows).enumerate() {
            for (i, &s) in sums.iter().enumerate() {
                by_input_row[i * n + r] = s;
            }
        }
        by_input_row
    };
    dims.push(n);
    Tensor::from_vec(result, dims, x.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    #[test]
    fn matches_candle_quantised_matmul() -> Result<()> {
        if !q8::available() {
            return Ok(()); // the kernel is not used on this CPU
        }
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 0.1, (70, 96), &device)?;
        let weight = QTensor::quantize(&w, GgmlDType::Q8_0)?;
        let candle = QMatMul::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0)?)?;
        for shape in [vec![1, 1, 96], vec![3, 1, 96], vec![2, 5, 96]] {
            let x = Tensor::randn(0f32, 1.0, shape.clone(), &device)?;
            let ours = forward(&weight, &x)?;
            let theirs = candle.forward(&x)?;
            assert_eq!(ours.dims(), theirs.dims());
            let diff = (ours - &theirs)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            let scale = theirs.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(
                diff <= 1e-5 * scale,
                "{shape:?}: max diff {diff} of {scale}"
            );
        }
        Ok(())
    }
}

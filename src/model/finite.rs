//! Weights that cannot be right: one NaN or infinity in a weight makes the model "run" and
//! generate nothing, with normal timings. Every weight is checked on its raw bytes before any
//! dequantisation, which costs one pass over memory the loader reads anyway: floats value by
//! value, quantised blocks by their scales. A block's quants are small integers, so a block
//! decodes to a NaN or infinity exactly when one of its scales is one.

use candle_core::quantized::{GgmlDType, QTensor};

/// How a float is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatBits {
    F32,
    F16,
    BF16,
}

impl FloatBits {
    fn width(self) -> usize {
        match self {
            FloatBits::F32 => 4,
            FloatBits::F16 | FloatBits::BF16 => 2,
        }
    }

    /// Whether the little-endian float at the start of `bytes` is NaN or infinite: its
    /// exponent bits are all ones.
    fn is_non_finite(self, bytes: &[u8]) -> bool {
        match self {
            FloatBits::F32 => {
                let bits = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                bits & 0x7f80_0000 == 0x7f80_0000
            }
            FloatBits::F16 => u16::from_le_bytes([bytes[0], bytes[1]]) & 0x7c00 == 0x7c00,
            FloatBits::BF16 => u16::from_le_bytes([bytes[0], bytes[1]]) & 0x7f80 == 0x7f80,
        }
    }
}

/// Where a type keeps its floats: each `stride` bytes hold a unit (a value or a block) whose
/// floats start at `offsets` within it.
struct Layout {
    stride: usize,
    offsets: &'static [usize],
    bits: FloatBits,
}

/// The floats of each GGML type, from the block layouts llama.cpp defines (`ggml-common.h`).
fn layout(dtype: GgmlDType) -> Layout {
    use FloatBits::*;
    let (stride, offsets, bits): (usize, &'static [usize], FloatBits) = match dtype {
        GgmlDType::F32 => (4, &[0], F32),
        GgmlDType::F16 => (2, &[0], F16),
        GgmlDType::BF16 => (2, &[0], BF16),
        GgmlDType::Q4_0 => (18, &[0], F16),     // d, quants
        GgmlDType::Q4_1 => (20, &[0, 2], F16),  // d, m, quants
        GgmlDType::Q5_0 => (22, &[0], F16),     // d, high bits, quants
        GgmlDType::Q5_1 => (24, &[0, 2], F16),  // d, m, high bits, quants
        GgmlDType::Q8_0 => (34, &[0], F16),     // d, quants
        GgmlDType::Q8_1 => (36, &[0, 2], F16),  // d, s, quants
        GgmlDType::Q2K => (84, &[80, 82], F16), // scales, quants, d, dmin
        GgmlDType::Q3K => (110, &[108], F16),   // high mask, quants, scales, d
        GgmlDType::Q4K => (144, &[0, 2], F16),  // d, dmin, scales, quants
        GgmlDType::Q5K => (176, &[0, 2], F16),  // d, dmin, scales, high bits, quants
        GgmlDType::Q6K => (210, &[208], F16),   // low, high, scales, d
        GgmlDType::Q8K => (292, &[0], F32),     // d, quants, sums
    };
    Layout {
        stride,
        offsets,
        bits,
    }
}

/// The index of the first unit (value or block) holding a NaN or infinity, if any.
fn first_non_finite(layout: &Layout, bytes: &[u8]) -> Option<usize> {
    bytes.chunks_exact(layout.stride).position(|unit| {
        layout.offsets.iter().any(|&at| {
            layout
                .bits
                .is_non_finite(&unit[at..at + layout.bits.width()])
        })
    })
}

fn message(name: &str, unit: &str, index: usize) -> String {
    format!("tensor '{name}' holds NaN or infinite values (the first in {unit} {index})")
}

/// Refuse a GGUF weight holding a NaN or infinity, with the tensor named.
pub fn check_qtensor(name: &str, t: &QTensor) -> candle_core::Result<()> {
    let layout = layout(t.dtype());
    let bytes = t.data()?;
    match first_non_finite(&layout, &bytes) {
        None => Ok(()),
        Some(i) if t.dtype().block_size() == 1 => {
            Err(candle_core::Error::Msg(message(name, "element", i)))
        }
        Some(i) => Err(candle_core::Error::Msg(message(
            name,
            &format!("{:?} block", t.dtype()),
            i,
        ))),
    }
}

/// Refuse a float tensor's raw little-endian bytes holding a NaN or infinity; other
/// element types hold no floats to check.
pub fn check_floats(name: &str, bits: Option<FloatBits>, bytes: &[u8]) -> Result<(), String> {
    let Some(bits) = bits else {
        return Ok(());
    };
    let layout = Layout {
        stride: bits.width(),
        offsets: &[0],
        bits,
    };
    match first_non_finite(&layout, bytes) {
        None => Ok(()),
        Some(i) => Err(message(name, "element", i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::ggml_file::qtensor_from_ggml;
    use candle_core::{Device, Tensor};

    fn quantized(values: &[f32], dtype: GgmlDType) -> QTensor {
        let t = Tensor::from_vec(values.to_vec(), (1, values.len()), &Device::Cpu).unwrap();
        QTensor::quantize(&t, dtype).unwrap()
    }

    #[test]
    fn every_quantised_type_is_refused_exactly_when_a_block_decodes_to_nan_or_infinity() {
        let types = [
            GgmlDType::F32,
            GgmlDType::F16,
            GgmlDType::BF16,
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::Q8_0,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
        ];
        // Q8K is only an intermediate of candle's dot products: its files cannot load.
        assert_eq!(layout(GgmlDType::Q8K).stride, GgmlDType::Q8K.type_size());
        let good: Vec<f32> = (0..512).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
        for dtype in types {
            assert_eq!(layout(dtype).stride, dtype.type_size(), "{dtype:?}");
            let t = quantized(&good, dtype);
            assert!(check_qtensor("w", &t).is_ok(), "{dtype:?}");
            // Poison one scale (or value) in the second unit, then confirm that candle's own
            // dequantisation agrees the tensor now holds a NaN or infinity.
            let mut bytes = t.data().unwrap().into_owned();
            let l = layout(dtype);
            let at = l.stride + l.offsets[l.offsets.len() - 1];
            match l.bits {
                FloatBits::F32 => bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes()),
                FloatBits::F16 => bytes[at..at + 2].copy_from_slice(&0x7e00u16.to_le_bytes()),
                FloatBits::BF16 => bytes[at..at + 2].copy_from_slice(&0x7fc0u16.to_le_bytes()),
            }
            let dims = t.shape().dims().to_vec();
            let bad = qtensor_from_ggml(dtype, &bytes, dims, &Device::Cpu).unwrap();
            let dequantised: Vec<f32> = bad
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(dequantised.iter().any(|v| !v.is_finite()), "{dtype:?}");
            let err = check_qtensor("blk.0.ffn_up.weight", &bad).unwrap_err();
            assert!(err.to_string().contains("'blk.0.ffn_up.weight'"), "{err}");
            assert!(err.to_string().contains(" 1)"), "{dtype:?}: {err}");
        }
    }

    #[test]
    fn floats_are_checked_value_by_value_and_other_types_pass() {
        let mut bytes: Vec<u8> = [1.0f32, 2.0, -3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(check_floats("w", Some(FloatBits::F32), &bytes).is_ok());
        bytes[8..12].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
        let err = check_floats("w", Some(FloatBits::F32), &bytes).unwrap_err();
        assert!(err.contains("element 2"), "{err}");
        assert!(check_floats("w", None, &bytes).is_ok());
        // Largest finite f16 and bf16 values pass; their infinities do not.
        assert!(check_floats("w", Some(FloatBits::F16), &0x7bffu16.to_le_bytes()).is_ok());
        assert!(check_floats("w", Some(FloatBits::F16), &0x7c00u16.to_le_bytes()).is_err());
        assert!(check_floats("w", Some(FloatBits::BF16), &0x7f7fu16.to_le_bytes()).is_ok());
        assert!(check_floats("w", Some(FloatBits::BF16), &0xff80u16.to_le_bytes()).is_err());
    }
}

//! Quantised llama-family models from GGUF files, through candle-transformers' quantized llama.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use super::quantized_llama::{DenseCache, Hyper, QuantizedLlama};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::{CausalLm, ModelInfo};

/// Architectures whose GGUF layout candle's quantized llama reads (llama.* metadata keys).
const SUPPORTED_ARCHITECTURES: &[&str] = &["llama"];

pub struct GgufModel {
    weights: QuantizedLlama,
}

impl CausalLm for GgufModel {
    fn forward(&mut self, tokens: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        self.weights.forward(tokens, position)
    }

    fn clear_cache(&mut self) {
        self.weights.clear_kv_cache();
    }
}

/// Read and check a GGUF file's header: a truncated or foreign file fails here, by name.
pub fn read_content(path: &Path) -> Result<(gguf_file::Content, File)> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?
        .len();
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| anyhow!("{}: not a readable GGUF file: {e}", path.display()))?;
    for (name, info) in &content.tensor_infos {
        let blocks = info.shape.elem_count() / info.ggml_dtype.block_size();
        let bytes = (blocks * info.ggml_dtype.type_size()) as u64;
        let end = content.tensor_data_offset + info.offset + bytes;
        if end > file_len {
            bail!(
                "{}: truncated GGUF file: tensor '{name}' ends at byte {end} but the file has {file_len} bytes",
                path.display()
            );
        }
    }
    Ok((content, file))
}

/// Load a GGUF model; with `repack`, weights without a fast CPU kernel in candle are
/// requantised to that type first, or every quantised weight dequantised for F32 (the float
/// reference numerics). The result's dtype says so.
pub fn load(
    path: &Path,
    device: &Device,
    repack: Option<GgmlDType>,
    gemm_rows: Option<usize>,
    dense_cache_bytes: u64,
) -> Result<(GgufModel, ModelInfo, gguf_file::Content)> {
    let (content, mut file) = read_content(path)?;
    let md = &content.metadata;
    let architecture = md
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "{}: GGUF metadata has no general.architecture",
                path.display()
            )
        })?;
    if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
        bail!(
            "{}: architecture '{architecture}' is not supported yet (supported: {})",
            path.display(),
            SUPPORTED_ARCHITECTURES.join(", ")
        );
    }
    let vocab_size = content
        .tensor_infos
        .get("token_embd.weight")
        .map(|t| t.shape.dims()[0])
        .ok_or_else(|| anyhow!("{}: GGUF has no token_embd.weight tensor", path.display()))?;
    let hyper = Hyper::from_metadata(&content).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let parameters: u64 = content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .sum();
    let mut info = ModelInfo {
        name: md
            .get("general.name")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| file_stem(path)),
        path: path.display().to_string(),
        format: "gguf".into(),
        architecture,
        dtype: dominant_quantisation(&content),
        parameters,
        vocab_size,
        context_length: hyper.context_length,
        layers: hyper.n_layer,
        hidden_size: hyper.hidden,
        load_seconds: 0.0,
        prefill: match gemm_rows {
            None => "quantised kernels".into(),
            Some(rows) if dense_cache_bytes == 0 => {
                format!("f32 GEMM from {rows} rows, weights dequantised at every call")
            }
            Some(rows) => format!(
                "f32 GEMM from {rows} rows, dequantised weights kept up to {} MiB",
                dense_cache_bytes >> 20
            ),
        },
    };
    let cache = DenseCache::new(dense_cache_bytes);
    let mut repacked = 0;
    let weights = QuantizedLlama::load(hyper, device, gemm_rows, &cache, |name| {
        let t = content.tensor(&mut file, name, device)?;
        match repack {
            Some(target) if should_repack(&t, target) => {
                repacked += 1;
                QTensor::quantize(&t.dequantize(&Device::Cpu)?, target)
            }
            _ => Ok(t),
        }
    })
    .map_err(|e| anyhow!("{}: loading the weights: {e}", path.display()))?;
    if let (Some(target), true) = (repack, repacked > 0) {
        info.dtype = format!("{} repacked to {target:?}", info.dtype);
    }
    Ok((GgufModel { weights }, info, content))
}

/// Types candle's CPU kernels have no SIMD dot product for, worth repacking.
fn lacks_fast_cpu_kernel(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// Whether `--repack` changes this tensor: 2-D quantised weights with no fast kernel (or all
/// quantised weights, for the F32 reference), whose rows split into the target's blocks.
fn should_repack(t: &QTensor, target: GgmlDType) -> bool {
    let wanted = if target == GgmlDType::F32 {
        !matches!(t.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16)
    } else {
        lacks_fast_cpu_kernel(t.dtype())
    };
    wanted && t.shape().rank() == 2 && t.shape().dims()[1].is_multiple_of(target.block_size())
}

/// The quantisation most weight tensors use ("Q4_1"), as llama.cpp names the model by it.
fn dominant_quantisation(content: &gguf_file::Content) -> String {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for t in content.tensor_infos.values() {
        *counts.entry(format!("{:?}", t.ggml_dtype)).or_default() += t.shape.elem_count() as u64;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(d, _)| d)
        .unwrap_or_else(|| "unknown".into())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string()
}

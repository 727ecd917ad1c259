//! Quantised llama-family models from GGUF files, through candle-transformers' quantized llama.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::Path;

use super::quantized_llama::{DenseCache, Hyper, QuantizedLlama};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};
use inferbench_distance::q8;

use super::footprint::Footprint;
use super::parallel;
use super::{gguf_header, CausalLm, ModelInfo};

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

/// Read and check a GGUF file's header: a truncated, foreign or inconsistent file fails
/// here, by name, before candle's reader or our loader trusts a value of it.
pub fn read_content(path: &Path) -> Result<(gguf_file::Content, File)> {
    let bad = |why: String| anyhow!("{}: {why}", path.display());
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file_len = file
        .metadata()
        .with_context(|| format!("{}: cannot stat", path.display()))?
        .len();
    let facts = gguf_header::scan(&mut BufReader::new(&mut file), file_len)
        .map_err(|e| bad(format!("not a readable GGUF file: {e}")))?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| bad(format!("not a readable GGUF file: {e}")))?;
    if facts.tensor_count != content.tensor_infos.len() as u64 {
        return Err(bad(format!(
            "the tensor table has {} entries but {} distinct names: a tensor is listed twice",
            facts.tensor_count,
            content.tensor_infos.len()
        )));
    }
    for (name, info) in &content.tensor_infos {
        let end = tensor_bytes(info)
            .and_then(|bytes| {
                content
                    .tensor_data_offset
                    .checked_add(info.offset)?
                    .checked_add(bytes)
            })
            .ok_or_else(|| {
                bad(format!(
                    "tensor '{name}': its shape {:?} overflows",
                    info.shape.dims()
                ))
            })?;
        if end > file_len {
            return Err(bad(format!(
                "truncated GGUF file: tensor '{name}' ends at byte {end} but the file has {file_len} bytes"
            )));
        }
    }
    Ok((content, file))
}

/// A tensor's size in bytes, None when its shape overflows.
fn tensor_bytes(info: &gguf_file::TensorInfo) -> Option<u64> {
    let elements = info
        .shape
        .dims()
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))?;
    let dtype = info.ggml_dtype;
    (elements / dtype.block_size() as u64).checked_mul(dtype.type_size() as u64)
}

/// Every tensor the loader reads has the shape the metadata implies; `hyper` is already
/// checked. Returns the vocabulary size.
fn check_shapes(content: &gguf_file::Content, h: &Hyper) -> std::result::Result<usize, String> {
    let dims = |name: &str| {
        content
            .tensor_infos
            .get(name)
            .map(|t| t.shape.dims().to_vec())
            .ok_or(format!("GGUF has no {name} tensor"))
    };
    let expect = |name: &str, want: &[usize]| -> std::result::Result<(), String> {
        let got = dims(name)?;
        if got != want {
            return Err(format!(
                "tensor '{name}' has shape {got:?}, but the metadata implies {want:?}"
            ));
        }
        Ok(())
    };
    let embedding = dims("token_embd.weight")?;
    let vocab = match embedding[..] {
        [vocab, hidden] if vocab > 0 && hidden == h.hidden => vocab,
        _ => {
            return Err(format!(
                "tensor 'token_embd.weight' has shape {embedding:?}, but the metadata implies \
                 [vocabulary, {}]",
                h.hidden
            ))
        }
    };
    let hidden = h.hidden;
    expect("output_norm.weight", &[hidden])?;
    if content.tensor_infos.contains_key("output.weight") {
        expect("output.weight", &[vocab, hidden])?;
    }
    let kv = h.n_kv_head * h.head_dim();
    let ff = match dims("blk.0.ffn_up.weight")?[..] {
        [ff, _] if ff > 0 => ff,
        ref other => return Err(format!("tensor 'blk.0.ffn_up.weight' has shape {other:?}")),
    };
    for i in 0..h.n_layer {
        let t = |name: &str| format!("blk.{i}.{name}.weight");
        expect(&t("attn_norm"), &[hidden])?;
        expect(&t("attn_q"), &[hidden, hidden])?;
        expect(&t("attn_k"), &[kv, hidden])?;
        expect(&t("attn_v"), &[kv, hidden])?;
        expect(&t("attn_output"), &[hidden, hidden])?;
        expect(&t("ffn_norm"), &[hidden])?;
        expect(&t("ffn_gate"), &[ff, hidden])?;
        expect(&t("ffn_up"), &[ff, hidden])?;
        expect(&t("ffn_down"), &[hidden, ff])?;
    }
    Ok(vocab)
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
    let hyper = Hyper::from_metadata(&content).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let vocab_size =
        check_shapes(&content, &hyper).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let parameters: u64 = content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .sum(); // the shapes are checked: no product overflows
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
        footprint: None,
    };
    let cache = DenseCache::new(dense_cache_bytes);
    let mut repacked = 0;
    let mut held = Vec::new();
    let weights = QuantizedLlama::load(hyper.clone(), device, gemm_rows, &cache, |name| {
        let t = content.tensor(&mut file, name, device)?;
        super::finite::check_qtensor(name, &t)?;
        let t = match repack {
            Some(target) if should_repack(&t, target) => {
                repacked += 1;
                requantise(&t, target)?
            }
            _ => t,
        };
        held.push(HeldTensor {
            name: name.to_string(),
            bytes: t.storage_size_in_bytes() as u64,
            elements: t.shape().elem_count() as u64,
        });
        Ok(t)
    })
    .map_err(|e| anyhow!("{}: loading the weights: {e}", path.display()))?;
    if let (Some(target), true) = (repack, repacked > 0) {
        info.dtype = format!("{} repacked to {target:?}", info.dtype);
    }
    info.footprint = Some(footprint(&hyper, &held));
    Ok((GgufModel { weights }, info, content))
}

/// A weight as loaded (after any repack): its size in memory and its parameter count.
struct HeldTensor {
    name: String,
    bytes: u64,
    elements: u64,
}

/// What a token costs this model, from its weights as held. The embedding table is read one
/// row a token (it is dequantised to f32 at load) unless it doubles as the output projection.
fn footprint(hyper: &Hyper, held: &[HeldTensor]) -> Footprint {
    let find = |name: &str| held.iter().find(|t| t.name == name);
    let embeddings = find("token_embd.weight");
    let head = find("output.weight").or(embeddings);
    let is_projection =
        |t: &&HeldTensor| t.name.starts_with("blk.") && !t.name.ends_with("_norm.weight");
    let layer_and_norm_bytes: u64 = held
        .iter()
        .filter(|t| t.name.starts_with("blk.") || t.name == "output_norm.weight")
        .map(|t| t.bytes)
        .sum();
    let head_dim = hyper.head_dim();
    const F32: u64 = 4;
    Footprint {
        step_weight_bytes: layer_and_norm_bytes
            + head.map_or(0, |t| t.bytes)
            + hyper.hidden as u64 * F32,
        layer_matmul_params: held.iter().filter(is_projection).map(|t| t.elements).sum(),
        head_params: head.map_or(0, |t| t.elements),
        // Activations, and so the KV cache, are f32 in candle's quantised llama.
        kv_bytes_per_position: 2 * (hyper.n_layer * hyper.n_kv_head * head_dim) as u64 * F32,
        layers: hyper.n_layer as u64,
        attention_width: hyper.hidden as u64,
    }
}

/// Types candle's CPU kernels have no SIMD dot product for, worth repacking.
fn lacks_fast_cpu_kernel(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// `t` requantised to `target`. Q8_0 on the CPU goes through our own quantisation over the
/// thread pool, the same bytes as candle's `QTensor::quantize` (tested): candle's loop, one
/// thread and a libm `round` per value, took 0.5 s of SmolLM2's 1.2 s load.
fn requantise(t: &QTensor, target: GgmlDType) -> candle_core::Result<QTensor> {
    let values = t.dequantize(&Device::Cpu)?;
    let (rows, k) = values.dims2()?;
    if target != GgmlDType::Q8_0 || !t.device().is_cpu() || !k.is_multiple_of(q8::BLOCK) {
        return QTensor::quantize(&values, target);
    }
    let x = values.flatten_all()?.to_vec1::<f32>()?;
    let row_bytes = k / q8::BLOCK * q8::BLOCK_BYTES;
    let mut bytes = vec![0u8; rows * row_bytes];
    parallel::fill_runs(&mut bytes, REQUANTISE_ROWS * row_bytes, |task, out| {
        let first = task * REQUANTISE_ROWS * k;
        q8::quantise_blocks(&x[first..][..out.len() / row_bytes * k], out)
    });
    let storage = QStorage::from_data(Cow::Owned(bytes), &Device::Cpu, GgmlDType::Q8_0)?;
    QTensor::new(storage, (rows, k))
}

/// Weight rows a task of `requantise` takes.
const REQUANTISE_ROWS: usize = 64;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The repack at load writes the bytes candle's own quantisation writes, for rows split
    /// over tasks unevenly (150 rows, 64 a task) and for a block-aligned width.
    #[test]
    fn requantised_q8_0_is_candles_bytes() -> candle_core::Result<()> {
        let device = Device::Cpu;
        let w = Tensor::randn(0f32, 0.2, (150, 96), &device)?;
        for source in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::F16] {
            let t = QTensor::quantize(&w, source)?;
            let ours = requantise(&t, GgmlDType::Q8_0)?;
            let candles = QTensor::quantize(&t.dequantize(&device)?, GgmlDType::Q8_0)?;
            assert_eq!(ours.dtype(), GgmlDType::Q8_0);
            assert_eq!(ours.shape(), candles.shape());
            assert!(ours.data()? == candles.data()?, "{source:?}");
        }
        Ok(())
    }
}

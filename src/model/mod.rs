//! Models: where their files come from, how they load, and their tokenizers.

pub mod cache_attention;
pub mod dense_gemm;
pub mod finite;
pub mod footprint;
pub mod format;
pub mod gguf;
pub mod gguf_header;
pub mod kv_cache;
pub mod llama;
pub mod nvtx;
pub mod op_timer;
pub mod parallel;
pub mod q8_matmul;
pub mod quantized_llama;
pub mod source;
pub mod swiglu;
pub mod tokenizer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Result};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

pub use source::{ModelFiles, ModelRef, Need, DEFAULT_MODEL, DEFAULT_MODEL_FILE};
pub use tokenizer::TextTokenizer;

/// A causal language model the engine can drive.
pub trait CausalLm {
    /// Run `tokens` (batch, seq) at `position` in the sequence; returns the logits of each
    /// row's last position, (batch, vocab). Keeps keys and values in the model's cache.
    fn forward(&mut self, tokens: &Tensor, position: usize) -> candle_core::Result<Tensor>;
    /// Forget the cached keys and values, for an independent generation.
    fn clear_cache(&mut self);
}

/// Where weights come from: the files, or random values of the config's shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsMode {
    #[default]
    Real,
    Dummy,
}

impl FromStr for WeightsMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "real" | "auto" => Ok(Self::Real),
            "dummy" => Ok(Self::Dummy),
            _ => Err(format!("'{s}': expected real or dummy")),
        }
    }
}

/// Parse `--dtype` for safetensors and dummy models.
pub fn parse_dtype(s: &str) -> std::result::Result<DType, String> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(format!("'{s}': expected f32, f16 or bf16")),
    }
}

/// `--repack`: requantise GGUF weights that candle has no fast CPU kernel for, at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Repack {
    /// On CPU, Q8_0 for the types candle computes in scalar code; on CUDA, none.
    /// As llama.cpp repacks weights for its CPU kernels at load, and says so.
    #[default]
    Auto,
    /// Measure the file's own quantisation with whatever kernel candle has for it.
    None,
    Q8_0,
    Q4_0,
    /// Dequantise every weight: float reference numerics, for checking quantised kernels.
    F32,
}

impl Repack {
    pub fn target(self, device: &Device) -> Option<GgmlDType> {
        match self {
            Repack::Auto if device.is_cpu() => Some(GgmlDType::Q8_0),
            Repack::Auto | Repack::None => None,
            Repack::Q8_0 => Some(GgmlDType::Q8_0),
            Repack::Q4_0 => Some(GgmlDType::Q4_0),
            Repack::F32 => Some(GgmlDType::F32),
        }
    }
}

impl FromStr for Repack {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Repack::Auto),
            "none" => Ok(Repack::None),
            "q8_0" => Ok(Repack::Q8_0),
            "q4_0" => Ok(Repack::Q4_0),
            "f32" => Ok(Repack::F32),
            _ => Err(format!("'{s}': expected auto, none, q8_0, q4_0 or f32")),
        }
    }
}

/// What describes a loaded model in every result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: String,
    /// "gguf", "safetensors" or "dummy".
    pub format: String,
    pub architecture: String,
    /// Weight type: a GGUF quantisation ("Q4_1") or a float dtype ("bf16").
    pub dtype: String,
    pub parameters: u64,
    pub vocab_size: usize,
    pub context_length: usize,
    pub layers: usize,
    pub hidden_size: usize,
    pub load_seconds: f64,
    /// How prefill computes (GGUF on CPU: the f32 GEMM and its weight cache).
    #[serde(default)]
    pub prefill: String,
    /// What a token costs (weights read per decode step, KV bytes, FLOP counts): the
    /// roofline's inputs. Absent in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footprint: Option<footprint::Footprint>,
}

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub model: ModelRef,
    pub weights: WeightsMode,
    /// For safetensors and dummy weights; default f32 on CPU, bf16 on CUDA.
    pub dtype: Option<DType>,
    /// Requantise GGUF weights that have no fast CPU kernel (Q4_1, Q5_0, Q5_1) to this type.
    pub repack: Repack,
    /// GGUF models: from this many input rows (batch × tokens) on, matmuls dequantise the
    /// weight and use the f32 GEMM (prefill). None: 32 on CPU, off on CUDA; Some(0): off.
    pub prefill_gemm_rows: Option<usize>,
    /// GGUF models: MiB of dequantised weights the prefill GEMM may keep instead of
    /// dequantising them at every prefill. None: 2048 on CPU; Some(0): keep none.
    pub prefill_cache_mb: Option<u64>,
    /// A tokenizer.json or a GGUF file whose tokenizer to use instead of the model's own.
    pub tokenizer: Option<PathBuf>,
}

pub struct LoadedModel {
    pub model: Box<dyn CausalLm>,
    pub tokenizer: TextTokenizer,
    pub info: ModelInfo,
}

/// Find, load and check a model and its tokenizer on `device`.
pub fn load(options: &LoadOptions, device: &Device) -> Result<LoadedModel> {
    let started = Instant::now();
    let need = match options.weights {
        WeightsMode::Real => Need::Weights,
        WeightsMode::Dummy => Need::ConfigOnly,
    };
    let files = source::resolve(&options.model, need)?;
    let dtype = options.dtype.unwrap_or(if device.is_cuda() {
        DType::BF16
    } else {
        DType::F32
    });
    let (model, mut info, own_tokenizer): (Box<dyn CausalLm>, ModelInfo, Result<TextTokenizer>) =
        match &files {
            ModelFiles::Gguf { path, tokenizer } => {
                if options.weights == WeightsMode::Dummy {
                    bail!(
                        "{}: --weights dummy needs a config.json, not a GGUF file",
                        path.display()
                    );
                }
                let (model, info, metadata) = gguf::load(
                    path,
                    device,
                    options.repack.target(device),
                    gemm_rows(options, device),
                    options.prefill_cache_mb.unwrap_or(DEFAULT_PREFILL_CACHE_MB) << 20,
                )?;
                let tok = match tokenizer {
                    Some(t) => TextTokenizer::from_file(t, None),
                    None => TextTokenizer::from_gguf(&metadata, path),
                };
                (Box::new(model), info, tok)
            }
            ModelFiles::Safetensors {
                config,
                weights,
                tokenizer,
                tokenizer_config,
            } => {
                let (model, info) = llama::load_safetensors(config, weights, dtype, device)?;
                let tok = tokenizer_beside(config, tokenizer, tokenizer_config);
                (Box::new(model), info, tok)
            }
            ModelFiles::ConfigOnly {
                config,
                tokenizer,
                tokenizer_config,
            } => {
                if options.weights == WeightsMode::Real {
                    bail!(
                        "{}: only a config was found; use --weights dummy or give the weights",
                        config.display()
                    );
                }
                let (model, info) = llama::load_dummy(config, dtype, device)?;
                let tok = tokenizer_beside(config, tokenizer, tokenizer_config);
                (Box::new(model), info, tok)
            }
        };
    let tokenizer = match &options.tokenizer {
        Some(path) => load_tokenizer_file(path)?,
        None => own_tokenizer?,
    };
    tokenizer.check_matches_model(info.vocab_size)?;
    info.load_seconds = started.elapsed().as_secs_f64();
    Ok(LoadedModel {
        model,
        tokenizer,
        info,
    })
}

/// Default budget for dequantised weights kept for the prefill GEMM: a 135M model needs
/// about 0.5 GiB, a 7B one about 26 GiB (then only its first matrices are kept).
const DEFAULT_PREFILL_CACHE_MB: u64 = 2048;

/// Default prefill GEMM threshold on CPU: below it the quantised dot products win. (Our Q8_0
/// kernel would win up to ~64 rows, but it quantises the activations, and through it a
/// 37-token prompt's greedy answer to "What is the capital of France?" is no longer Paris:
/// the GEMM keeps a prompt's activations f32.)
const CPU_PREFILL_GEMM_ROWS: usize = 32;

fn gemm_rows(options: &LoadOptions, device: &Device) -> Option<usize> {
    match options.prefill_gemm_rows {
        Some(0) => None,
        Some(n) => Some(n),
        None if device.is_cpu() => Some(CPU_PREFILL_GEMM_ROWS),
        None => None,
    }
}

fn tokenizer_beside(
    config: &Path,
    tokenizer: &Option<PathBuf>,
    tokenizer_config: &Option<PathBuf>,
) -> Result<TextTokenizer> {
    match tokenizer {
        Some(t) => TextTokenizer::from_file(t, tokenizer_config.as_deref()),
        None => bail!(
            "{}: no tokenizer.json beside this config; pass --tokenizer FILE (a tokenizer.json or a GGUF file)",
            config.display()
        ),
    }
}

/// `--tokenizer`: a tokenizer.json, or a GGUF file whose embedded tokenizer to use.
pub fn load_tokenizer_file(path: &Path) -> Result<TextTokenizer> {
    if !path.exists() {
        bail!("--tokenizer {}: no such file", path.display());
    }
    match format::detect_format(path)? {
        format::FileFormat::Gguf => {
            let (content, _) = gguf::read_content(path)?;
            TextTokenizer::from_gguf(&content, path)
        }
        format::FileFormat::Json => {
            let config = path.with_file_name("tokenizer_config.json");
            TextTokenizer::from_file(path, config.is_file().then_some(config.as_path()))
        }
        format::FileFormat::Safetensors => bail!(
            "--tokenizer {}: this is a weights file, not a tokenizer",
            path.display()
        ),
    }
}

/// The tokenizer of a model (its tokenizer.json, or a GGUF file's embedded one), without
/// loading the weights: what the HTTP load generator counts tokens with.
pub fn load_tokenizer_of(model: &ModelRef) -> Result<TextTokenizer> {
    match source::resolve(model, Need::Weights)
        .or_else(|_| source::resolve(model, Need::ConfigOnly))?
    {
        ModelFiles::Gguf {
            tokenizer: Some(t), ..
        } => TextTokenizer::from_file(&t, None),
        ModelFiles::Gguf { path, .. } => load_tokenizer_file(&path),
        ModelFiles::Safetensors {
            config,
            tokenizer,
            tokenizer_config,
            ..
        }
        | ModelFiles::ConfigOnly {
            config,
            tokenizer,
            tokenizer_config,
        } => tokenizer_beside(&config, &tokenizer, &tokenizer_config),
    }
}

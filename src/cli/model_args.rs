//! The model flags `generate` and `serve` share.

use std::path::PathBuf;

use clap::Args;

use crate::device::DeviceRequest;
use crate::model::{self, LoadOptions, ModelRef, WeightsMode};

#[derive(Args, Clone)]
pub(crate) struct ModelArgs {
    /// Model: a local .gguf / .safetensors / config.json file, a folder, or a hub repo id
    /// (ORG/NAME). Default: the SmolLM2-135M-Instruct Q4_1 GGUF.
    #[arg(long, short = 'm')]
    model: Option<String>,
    /// File inside the folder or repo to load (a GGUF file, for repos with several).
    #[arg(long)]
    model_file: Option<String>,
    /// Hub revision: branch, tag or commit.
    #[arg(long)]
    revision: Option<String>,
    /// real: load the weights; dummy: random weights of the shapes in config.json.
    #[arg(long, default_value = "real")]
    pub(crate) weights: WeightsMode,
    /// Weight dtype for safetensors and dummy models: f32, f16 or bf16 (default f32 on CPU,
    /// bf16 on CUDA). GGUF models keep their quantisation.
    #[arg(long, value_parser = model::parse_dtype)]
    dtype: Option<candle_core::DType>,
    /// Requantise GGUF weights that candle has no fast CPU kernel for (Q4_1, Q5_0, Q5_1) at
    /// load: auto (q8_0 on CPU, none on CUDA), none (the file's own quantisation and kernels),
    /// q8_0, q4_0 (lossy); or f32 to dequantise every weight (float reference numerics, slow).
    /// The model's dtype says what was done, e.g. "Q4_1 repacked to Q8_0".
    #[arg(long, default_value = "auto")]
    repack: model::Repack,
    /// GGUF models: from this many rows (batch × prompt tokens) on, a matmul dequantises its
    /// weight and uses the f32 GEMM, faster for prefill on CPU. Default 32 on CPU, off on
    /// CUDA; 0 turns it off (every matmul quantised).
    #[arg(long)]
    prefill_gemm_rows: Option<usize>,
    /// GGUF models: MiB of dequantised weights the prefill GEMM keeps between prefills
    /// instead of dequantising every matrix at every prefill (default 2048; 0 keeps none).
    /// Costs memory (about 4 bytes per parameter kept), saves most of a short prompt's TTFT.
    #[arg(long, value_name = "MIB")]
    prefill_cache_mb: Option<u64>,
    /// Use this tokenizer (a tokenizer.json, or a GGUF file's embedded one) instead of the model's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// auto (CUDA if built in and present, else CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub(crate) device: DeviceRequest,
}

impl ModelArgs {
    pub(crate) fn load_options(&self) -> LoadOptions {
        let model = ModelRef::from_parts(
            self.model.as_deref(),
            self.model_file.as_deref(),
            self.revision.as_deref(),
        );
        LoadOptions {
            model,
            weights: self.weights,
            dtype: self.dtype,
            repack: self.repack,
            prefill_gemm_rows: self.prefill_gemm_rows,
            prefill_cache_mb: self.prefill_cache_mb,
            tokenizer: self.tokenizer.clone(),
        }
    }
}

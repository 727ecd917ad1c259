//! Shared by the integration tests: the real default model from the Hugging Face cache.
#![allow(dead_code)]

use std::path::PathBuf;

use inferbench::model::{self, LoadOptions, LoadedModel};

/// Load the default SmolLM2 GGUF through the hub-cache path, on CPU, as the CLI does.
pub fn load_smollm() -> LoadedModel {
    load_smollm_with(model::Repack::Auto)
}

/// The same, with its weights repacked (or dequantised for float reference numerics).
pub fn load_smollm_with(repack: model::Repack) -> LoadedModel {
    let options = LoadOptions {
        repack,
        ..LoadOptions::default()
    };
    match model::load(&options, &candle_core::Device::Cpu) {
        Ok(m) => m,
        Err(e) => panic!("{e:#}\n(run scripts/fetch-models.sh first)"),
    }
}

/// The cached SmolLM2 GGUF file itself.
pub fn smollm_gguf() -> PathBuf {
    let files = model::source::resolve(&model::ModelRef::default(), model::Need::Weights)
        .expect("default model in the hub cache (run scripts/fetch-models.sh)");
    files.main_path().to_path_buf()
}

/// The cached all-MiniLM-L6-v2 tokenizer.json (another model's tokenizer).
pub fn minilm_tokenizer() -> PathBuf {
    let cache = hf_hub::Cache::from_env();
    cache
        .model("sentence-transformers/all-MiniLM-L6-v2".into())
        .get("tokenizer.json")
        .expect("all-MiniLM-L6-v2 in the hub cache (run scripts/fetch-models.sh)")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

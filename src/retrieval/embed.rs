//! Real embeddings: all-MiniLM-L6-v2 (BERT) run in-process with candle, mean-pooled over the
//! real tokens and L2-normalised, as sentence-transformers does for this model.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer};

use super::dataset::VectorSet;
use crate::model::source::{self, ModelFiles, ModelRef, Need};

pub const DEFAULT_EMBEDDING_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// Passages per forward pass.
const BATCH: usize = 32;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    pub name: String,
    pub dim: usize,
}

impl Embedder {
    /// Load a BERT sentence-embedding model from a local folder, the HF cache or the hub.
    pub fn load(model: &str, device: &Device) -> Result<Embedder> {
        let files = source::resolve(
            &ModelRef {
                model: model.into(),
                model_file: None,
                revision: None,
            },
            Need::Weights,
        )?;
        let ModelFiles::Safetensors {
            config,
            weights,
            tokenizer: Some(tokenizer_path),
            ..
        } = files
        else {
            bail!("{model}: an embedding model needs config.json, safetensors weights and tokenizer.json");
        };
        let config_text = std::fs::read_to_string(&config)
            .with_context(|| format!("{}: cannot read", config.display()))?;
        let bert: Config = serde_json::from_str(&config_text)
            .with_context(|| format!("{}: not a BERT config", config.display()))?;
        // SAFETY: the weights files are memory-mapped read-only and not modified while mapped.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&weights, DType::F32, device)? };
        let bert_model = BertModel::load(vb, &bert)
            .with_context(|| format!("{model}: cannot load the BERT weights"))?;
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", tokenizer_path.display()))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        Ok(Embedder {
            model: bert_model,
            tokenizer,
            device: device.clone(),
            name: model_name(model),
            dim: bert.hidden_size,
        })
    }

    /// Unit-length embeddings of `texts`, one row each.
    pub fn embed(&self, texts: &[&str]) -> Result<VectorSet> {
        let mut data = Vec::with_capacity(texts.len() * self.dim);
        for batch in texts.chunks(BATCH) {
            data.extend(self.embed_batch(batch)?);
        }
        VectorSet::new(self.dim, data)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizing passages: {e}"))?;
        let rows = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| f(e).to_vec()).collect()
        };
        let ids = Tensor::from_vec(flat(|e| e.get_ids()), (rows, len), &self.device)?;
        let types = Tensor::from_vec(flat(|e| e.get_type_ids()), (rows, len), &self.device)?;
        let mask = Tensor::from_vec(flat(|e| e.get_attention_mask()), (rows, len), &self.device)?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?; // rows × len × dim
                                                                     // Mean over the real tokens only: padding must not pull the average.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.flatten_all()?.to_vec1::<f32>()?)
    }
}

fn model_name(model: &str) -> String {
    Path::new(model)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| model.to_string())
}

/// The passages of a text file: one per non-blank line.
pub fn read_passages(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the passages file", path.display()))?;
    let passages: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if passages.is_empty() {
        bail!("{}: no passages (the file is empty)", path.display());
    }
    Ok(passages)
}

//! Llama-family models from safetensors + config.json, or with random weights of the exact
//! shapes a config.json describes (`--weights dummy`, as vLLM's `--load-format dummy`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::{Cache, Config, Llama, LlamaConfig};

use super::finite::{check_floats, FloatBits};
use super::footprint::Footprint;
use super::{CausalLm, ModelInfo};

pub struct LlamaModel {
    model: Llama,
    cache: Cache,
    config: Config,
    dtype: DType,
    device: Device,
}

impl CausalLm for LlamaModel {
    fn forward(&mut self, tokens: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        self.model.forward(tokens, position, &mut self.cache)
    }

    fn clear_cache(&mut self) {
        // A fresh cache is cheap (rotary tables only) and cannot fail for a config that loaded.
        if let Ok(cache) = Cache::new(true, self.dtype, &self.config, &self.device) {
            self.cache = cache;
        }
    }
}

/// Read config.json, naming the file and the field when something is missing or wrong.
pub fn read_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let raw: LlamaConfig = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: invalid llama config: {e}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}: invalid JSON: {e}", path.display()))?;
    if let Some(arch) = value["model_type"].as_str() {
        if !matches!(arch, "llama" | "mistral") {
            bail!(
                "{}: model_type '{arch}' is not supported yet (llama-family only)",
                path.display()
            );
        }
    }
    let positive = |name: &str, v: usize| -> Result<()> {
        if v == 0 {
            bail!("{}: field `{name}` must be greater than 0", path.display());
        }
        Ok(())
    };
    positive("hidden_size", raw.hidden_size)?;
    positive("intermediate_size", raw.intermediate_size)?;
    positive("vocab_size", raw.vocab_size)?;
    positive("num_hidden_layers", raw.num_hidden_layers)?;
    positive("num_attention_heads", raw.num_attention_heads)?;
    positive("num_key_value_heads", raw.num_key_value_heads())?;
    positive("max_position_embeddings", raw.max_position_embeddings)?;
    if !raw.hidden_size.is_multiple_of(raw.num_attention_heads) {
        bail!(
            "{}: field `hidden_size` ({}) must be a multiple of `num_attention_heads` ({})",
            path.display(),
            raw.hidden_size,
            raw.num_attention_heads
        );
    }
    if !raw
        .num_attention_heads
        .is_multiple_of(raw.num_key_value_heads())
    {
        bail!(
            "{}: field `num_attention_heads` ({}) must be a multiple of `num_key_value_heads` ({})",
            path.display(),
            raw.num_attention_heads,
            raw.num_key_value_heads()
        );
    }
    if !(raw.hidden_size / raw.num_attention_heads).is_multiple_of(2) {
        bail!(
            "{}: head size hidden_size/num_attention_heads = {} must be even for rotary embeddings",
            path.display(),
            raw.hidden_size / raw.num_attention_heads
        );
    }
    if !(raw.rope_theta.is_finite() && raw.rope_theta > 0.0) {
        bail!(
            "{}: field `rope_theta` ({}) must be above 0",
            path.display(),
            raw.rope_theta
        );
    }
    if !(raw.rms_norm_eps.is_finite() && raw.rms_norm_eps >= 0.0) {
        bail!(
            "{}: field `rms_norm_eps` ({}) must be 0 or more",
            path.display(),
            raw.rms_norm_eps
        );
    }
    Ok(raw.into_config(false))
}

/// Refuse a config whose weights (and rotary tables) cannot fit in memory, before a tensor
/// list or a weight is made: sizes come from a user's file. Checked arithmetic throughout.
fn check_fits(cfg: &Config, dtype: DType, device: &Device, path: &Path) -> Result<()> {
    let [v, h, i, layers, heads, kv_heads, positions] = [
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.intermediate_size,
        cfg.num_hidden_layers,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.max_position_embeddings,
    ]
    .map(|n| n as u64);
    let kv = kv_heads * (h / heads);
    let parameters = (|| {
        let embeddings =
            v.checked_mul(h)?
                .checked_mul(if cfg.tie_word_embeddings { 1 } else { 2 })?;
        let attention = h
            .checked_mul(h)?
            .checked_mul(2)?
            .checked_add(kv.checked_mul(h)?.checked_mul(2)?)?;
        let mlp = i.checked_mul(h)?.checked_mul(3)?;
        let layer = attention.checked_add(mlp)?.checked_add(h.checked_mul(2)?)?;
        embeddings
            .checked_add(layer.checked_mul(layers)?)?
            .checked_add(h)
    })();
    let bytes = parameters
        .and_then(|p| p.checked_mul(dtype.size_in_bytes() as u64))
        .and_then(|b| b.checked_add(positions.checked_mul(h / heads)?.checked_mul(4)?));
    let Some(bytes) = bytes else {
        bail!(
            "{}: vocab_size {v}, hidden_size {h}, intermediate_size {i} and num_hidden_layers {layers} make more parameters than any machine holds",
            path.display()
        );
    };
    let available = device
        .is_cpu()
        .then(crate::device::available_memory)
        .flatten();
    if let Some(available) = available.filter(|a| bytes > *a) {
        bail!(
            "{}: the weights need about {:.1} GiB ({} parameters as {dtype:?}, with vocab_size {v}, hidden_size {h}, intermediate_size {i}, num_hidden_layers {layers}, max_position_embeddings {positions}), but only {:.1} GiB is available",
            path.display(),
            crate::device::gib(bytes),
            parameters.unwrap_or_default(),
            crate::device::gib(available)
        );
    }
    Ok(())
}

/// Every tensor a llama model of this config reads, with its shape.
fn expected_tensors(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let kv = cfg.num_key_value_heads * (h / cfg.num_attention_heads);
    let mut t = vec![
        ("model.embed_tokens.weight".to_string(), vec![v, h]),
        ("model.norm.weight".to_string(), vec![h]),
    ];
    if !cfg.tie_word_embeddings {
        t.push(("lm_head.weight".to_string(), vec![v, h]));
    }
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        t.extend([
            (format!("{p}.self_attn.q_proj.weight"), vec![h, h]),
            (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
            (format!("{p}.self_attn.o_proj.weight"), vec![h, h]),
            (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
            (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            (format!("{p}.input_layernorm.weight"), vec![h]),
            (format!("{p}.post_attention_layernorm.weight"), vec![h]),
        ]);
    }
    t
}

fn info_for(cfg: &Config, name: String, path: &Path, format: &str, dtype: DType) -> ModelInfo {
    let parameters = expected_tensors(cfg)
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum();
    ModelInfo {
        name,
        path: path.display().to_string(),
        format: format.into(),
        architecture: "llama".into(),
        dtype: format!("{dtype:?}").to_lowercase(),
        parameters,
        vocab_size: cfg.vocab_size,
        context_length: cfg.max_position_embeddings,
        layers: cfg.num_hidden_layers,
        hidden_size: cfg.hidden_size,
        load_seconds: 0.0,
        prefill: format!("{dtype:?} matmuls").to_lowercase(),
        footprint: Some(footprint(cfg, dtype)),
    }
}

/// What a token costs this model: every weight but the embedding table is read each decode
/// step (the table one row a token, unless it doubles as the output projection).
fn footprint(cfg: &Config, dtype: DType) -> Footprint {
    let size = dtype.size_in_bytes() as u64;
    let elements = |s: &Vec<usize>| s.iter().product::<usize>() as u64;
    let tensors = expected_tensors(cfg);
    let is_projection = |n: &str| n.starts_with("model.layers.") && n.ends_with("_proj.weight");
    let (h, v) = (cfg.hidden_size as u64, cfg.vocab_size as u64);
    let head_params = v * h; // lm_head, or the tied embedding table: the same shape
    let per_step: u64 = tensors
        .iter()
        .filter(|(n, _)| n != "model.embed_tokens.weight" && n != "lm_head.weight")
        .map(|(_, s)| elements(s))
        .sum::<u64>()
        + head_params
        + h;
    let head_dim = (cfg.hidden_size / cfg.num_attention_heads) as u64;
    let layers = cfg.num_hidden_layers as u64;
    Footprint {
        step_weight_bytes: per_step * size,
        layer_matmul_params: tensors
            .iter()
            .filter(|(n, _)| is_projection(n))
            .map(|(_, s)| elements(s))
            .sum(),
        head_params,
        kv_bytes_per_position: 2 * layers * cfg.num_key_value_heads as u64 * head_dim * size,
        layers,
        attention_width: h,
    }
}

fn model_name(config_path: &Path) -> String {
    config_path
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("llama")
        .to_string()
}

/// Load real weights, after checking every tensor's presence and shape against the config.
pub fn load_safetensors(
    config_path: &Path,
    weights: &[PathBuf],
    dtype: DType,
    device: &Device,
) -> Result<(LlamaModel, ModelInfo)> {
    let cfg = read_config(config_path)?;
    check_fits(&cfg, dtype, device, config_path)?;
    // SAFETY: the files are mapped read-only; inferbench does not modify them while running.
    let tensors =
        unsafe { candle_core::safetensors::MmapedSafetensors::multi(weights) }.map_err(|e| {
            anyhow!(
                "{}: not a readable safetensors file: {e}",
                weights[0].display()
            )
        })?;
    for (name, shape) in expected_tensors(&cfg) {
        let view = tensors.get(&name).map_err(|_| {
            anyhow!(
                "{}: tensor '{name}' is missing (config {} describes it)",
                weights[0].display(),
                config_path.display()
            )
        })?;
        if view.shape() != shape.as_slice() {
            bail!(
                "{}: tensor '{name}' has shape {:?} but {} implies {:?}: the config does not match the weights",
                weights[0].display(),
                view.shape(),
                config_path.display(),
                shape
            );
        }
    }
    // A NaN or infinity in any weight would "run" and generate nothing: refuse it by name.
    for (name, _) in expected_tensors(&cfg) {
        let view = tensors
            .get(&name)
            .map_err(|e| anyhow!("{}: tensor '{name}': {e}", weights[0].display()))?;
        let bits = match view.dtype() {
            safetensors::Dtype::F32 => Some(FloatBits::F32),
            safetensors::Dtype::F16 => Some(FloatBits::F16),
            safetensors::Dtype::BF16 => Some(FloatBits::BF16),
            _ => None,
        };
        check_floats(&name, bits, view.data())
            .map_err(|e| anyhow!("{}: {e}", weights[0].display()))?;
    }
    // SAFETY: as above.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(weights, dtype, device) }
        .map_err(|e| anyhow!("{}: {e}", weights[0].display()))?;
    let model = Llama::load(vb, &cfg)
        .map_err(|e| anyhow!("{}: loading the weights: {e}", weights[0].display()))?;
    let info = info_for(
        &cfg,
        model_name(config_path),
        &weights[0],
        "safetensors",
        dtype,
    );
    Ok((new_model(model, cfg, dtype, device)?, info))
}

/// Random weights with the exact shapes of the config: real compute, no download.
pub fn load_dummy(
    config_path: &Path,
    dtype: DType,
    device: &Device,
) -> Result<(LlamaModel, ModelInfo)> {
    let cfg = read_config(config_path)?;
    check_fits(&cfg, dtype, device, config_path)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, device);
    let model = Llama::load(vb, &cfg)
        .map_err(|e| anyhow!("{}: building dummy weights: {e}", config_path.display()))?;
    let info = info_for(&cfg, model_name(config_path), config_path, "dummy", dtype);
    Ok((new_model(model, cfg, dtype, device)?, info))
}

fn new_model(model: Llama, config: Config, dtype: DType, device: &Device) -> Result<LlamaModel> {
    let cache = Cache::new(true, dtype, &config, device).context("allocating the KV cache")?;
    Ok(LlamaModel {
        model,
        cache,
        config,
        dtype,
        device: device.clone(),
    })
}

//! Llama models from config.json: random (dummy) weights, and real safetensors files.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use inferbench::engine::{self, GenerationParams, SamplingParams};
use inferbench::model::{self, LoadOptions, LoadedModel, ModelRef, WeightsMode};

fn options(model: &Path, weights: WeightsMode) -> LoadOptions {
    LoadOptions {
        model: ModelRef {
            model: model.display().to_string(),
            model_file: None,
            revision: None,
        },
        weights,
        dtype: Some(DType::F32),
        tokenizer: Some(crate::common::smollm_gguf()),
        ..LoadOptions::default()
    }
}

fn generate_fixed(m: &mut LoadedModel, batch: usize, tokens: usize) -> Vec<Vec<u32>> {
    let prompt = m
        .tokenizer
        .encode("Benchmarks measure the real thing.")
        .unwrap();
    let p = GenerationParams {
        max_tokens: tokens,
        sampling: SamplingParams::default(),
        ignore_eos: true,
        eos_token_ids: m.tokenizer.eos_token_ids.clone(),
        context_length: m.info.context_length,
    };
    engine::generate(
        m.model.as_mut(),
        &Device::Cpu,
        &vec![prompt; batch],
        &p,
        |_| {},
    )
    .unwrap()
    .tokens
}

#[test]
fn dummy_weights_follow_the_config_shapes_and_generate() {
    let config = crate::common::repo_root().join("fixtures/tiny-llama/config.json");
    let mut m = model::load(&options(&config, WeightsMode::Dummy), &Device::Cpu).unwrap();
    assert_eq!(m.info.format, "dummy");
    assert_eq!(m.info.vocab_size, 49152);
    assert_eq!(m.info.layers, 2);
    // embeddings (tied) + final norm + 2 layers of attention (q, k, v, o), mlp and norms
    let (h, i, v, kv) = (64u64, 172u64, 49152u64, 32u64);
    let per_layer = h * h * 2 + kv * h * 2 + 3 * h * i + 2 * h;
    assert_eq!(m.info.parameters, v * h + h + 2 * per_layer);
    // A decode step reads every f32 weight but the embedding table, which the tied output
    // projection reads whole, and one embedding row.
    let f = m.info.footprint.expect("a footprint");
    assert_eq!(f.step_weight_bytes, (v * h + h + 2 * per_layer + h) * 4);
    assert_eq!(f.layer_matmul_params, 2 * (per_layer - 2 * h));
    assert_eq!(f.kv_bytes_per_position, 2 * 2 * kv * 4);
    let out = generate_fixed(&mut m, 3, 8);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|row| row.len() == 8));
    assert!(out.iter().flatten().all(|t| (*t as usize) < 49152));
}

/// Write the dummy model's weights as a real safetensors checkpoint.
fn write_checkpoint(dir: &Path, config_text: &str) {
    let config = crate::common::repo_root().join("fixtures/tiny-llama/config.json");
    let cfg = model::llama::read_config(&config).unwrap();
    let (h, i, v) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
    let kv = cfg.num_key_value_heads * h / cfg.num_attention_heads;
    let randn = |shape: &[usize]| Tensor::randn(0f32, 0.05, shape, &Device::Cpu).unwrap();
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    tensors.insert("model.embed_tokens.weight".into(), randn(&[v, h]));
    tensors.insert(
        "model.norm.weight".into(),
        Tensor::ones(h, DType::F32, &Device::Cpu).unwrap(),
    );
    for l in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("self_attn.q_proj", vec![h, h]),
            ("self_attn.k_proj", vec![kv, h]),
            ("self_attn.v_proj", vec![kv, h]),
            ("self_attn.o_proj", vec![h, h]),
            ("mlp.gate_proj", vec![i, h]),
            ("mlp.up_proj", vec![i, h]),
            ("mlp.down_proj", vec![h, i]),
        ] {
            tensors.insert(format!("{p}.{name}.weight"), randn(&shape));
        }
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            tensors.insert(
                format!("{p}.{norm}.weight"),
                Tensor::ones(h, DType::F32, &Device::Cpu).unwrap(),
            );
        }
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config_text).unwrap();
}

#[test]
fn safetensors_checkpoint_loads_and_generates_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let config_text =
        std::fs::read_to_string(crate::common::repo_root().join("fixtures/tiny-llama/config.json"))
            .unwrap();
    write_checkpoint(dir.path(), &config_text);
    let mut m = model::load(&options(dir.path(), WeightsMode::Real), &Device::Cpu).unwrap();
    assert_eq!(m.info.format, "safetensors");
    assert_eq!(m.info.dtype, "f32");
    let a = generate_fixed(&mut m, 2, 6);
    assert_eq!(a[0], a[1], "greedy rows of one prompt agree");
    assert_eq!(
        a,
        generate_fixed(&mut m, 2, 6),
        "the KV cache is cleared between runs"
    );
}

#[test]
fn safetensors_that_disagree_with_the_config_are_refused_by_tensor_name() {
    let dir = tempfile::tempdir().unwrap();
    let config_text =
        std::fs::read_to_string(crate::common::repo_root().join("fixtures/tiny-llama/config.json"))
            .unwrap();
    write_checkpoint(
        dir.path(),
        &config_text.replace("\"intermediate_size\": 172", "\"intermediate_size\": 256"),
    );
    let err = model::load(&options(dir.path(), WeightsMode::Real), &Device::Cpu)
        .err()
        .expect("mismatched config must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("model.layers.0.mlp.gate_proj.weight"), "{msg}");
    assert!(msg.contains("does not match the weights"), "{msg}");
}

#[test]
fn safetensors_values_that_cannot_be_right_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config_text =
        std::fs::read_to_string(crate::common::repo_root().join("fixtures/tiny-llama/config.json"))
            .unwrap();
    write_checkpoint(dir.path(), &config_text);
    let refused = |expected: &[&str]| {
        let err = model::load(&options(dir.path(), WeightsMode::Real), &Device::Cpu)
            .err()
            .expect("must be refused");
        let msg = format!("{err:#}");
        assert!(expected.iter().all(|e| msg.contains(e)), "{msg}");
    };
    // A NaN in one layer's norm.
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let name = "model.layers.1.post_attention_layernorm.weight";
    let h = tensors[name].dims()[0];
    let mut values = vec![1f32; h];
    values[3] = f32::NAN;
    tensors.insert(
        name.into(),
        Tensor::from_vec(values, h, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    refused(&[name, "NaN", "element 3"]);
    // An infinity deep inside one projection, in bf16, where only a full scan finds it.
    write_checkpoint(dir.path(), &config_text);
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let name = "model.layers.1.mlp.down_proj.weight";
    let mut values: Vec<f32> = tensors[name].flatten_all().unwrap().to_vec1().unwrap();
    let last = values.len() - 1;
    values[last] = f32::INFINITY;
    let shape = tensors[name].shape().clone();
    let poisoned = Tensor::from_vec(values, shape, &Device::Cpu).unwrap();
    tensors.insert(name.into(), poisoned.to_dtype(DType::BF16).unwrap());
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    refused(&[name, "NaN or infinite", &format!("element {last}")]);
    // Rotary base and norm epsilon that no model has.
    for (from, to, field) in [
        (
            "\"rope_theta\": 10000.0",
            "\"rope_theta\": 0.0",
            "rope_theta",
        ),
        (
            "\"rms_norm_eps\": 1e-5",
            "\"rms_norm_eps\": -1e-5",
            "rms_norm_eps",
        ),
    ] {
        std::fs::write(
            dir.path().join("config.json"),
            config_text.replace(from, to),
        )
        .unwrap();
        refused(&["config.json", field]);
    }
}

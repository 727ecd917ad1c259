//! In-process inference benchmarks: time to first token per prompt length, one decode step per
//! batch size (reported as tokens/s), and a whole generation.
//!
//! Environment (defaults in brackets):
//!   INFERBENCH_MODEL        model path or hub repo id [the SmolLM2-135M-Instruct Q4_1 GGUF]
//!   INFERBENCH_MODEL_FILE   file inside the repo/folder
//!   INFERBENCH_DEVICE       auto | cpu | cuda[:N] [auto]
//!   INFERBENCH_REPACK       auto | none | q8_0 | q4_0 | f32 [auto]
//!   INFERBENCH_BATCHES      decode batch sizes [1,4,8,16,32,64]
//!   INFERBENCH_PROMPTS      TTFT prompt lengths [32,128,512]
//!
//!   cargo bench --bench inference
//!   INFERBENCH_BATCHES=1,8 cargo bench --bench inference -- decode

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, D};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inferbench::device::{self, DeviceRequest};
use inferbench::engine::{self, GenerationParams, SamplingParams};
use inferbench::model::{self, LoadOptions, LoadedModel, ModelRef, Repack};
use inferbench::workload::synthetic;

/// Prompt length the decode steps attend over, and how many steps before the cache is rebuilt.
const DECODE_CONTEXT: usize = 32;
const DECODE_STEPS_PER_PREFILL: usize = 64;

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: '{s}' is not a positive integer"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

struct Setup {
    loaded: LoadedModel,
    device: Device,
    label: String,
}

fn setup() -> Setup {
    let request: DeviceRequest = std::env::var("INFERBENCH_DEVICE")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .unwrap_or_else(|e| panic!("INFERBENCH_DEVICE: {e}"));
    let selected = device::select(request).unwrap_or_else(|e| panic!("{e:#}"));
    let mut model = ModelRef::default();
    if let Ok(m) = std::env::var("INFERBENCH_MODEL") {
        model = ModelRef {
            model: m,
            model_file: std::env::var("INFERBENCH_MODEL_FILE").ok(),
            revision: None,
        };
    }
    let repack: Repack = std::env::var("INFERBENCH_REPACK")
        .unwrap_or_else(|_| "auto".into())
        .parse()
        .unwrap_or_else(|e| panic!("INFERBENCH_REPACK: {e}"));
    let options = LoadOptions {
        model,
        repack,
        ..LoadOptions::default()
    };
    let loaded = model::load(&options, &selected.device)
        .unwrap_or_else(|e| panic!("{e:#}\n(scripts/fetch-models.sh seeds the default model)"));
    let label = format!(
        "{} {} on {}",
        loaded.info.name, loaded.info.dtype, selected.name
    );
    eprintln!("inference bench: {label} ({})", selected.reason);
    Setup {
        loaded,
        device: selected.device,
        label,
    }
}

/// Prefill `prompt` for every row and pick each row's first token; the device is synchronised.
fn prefill(s: &mut Setup, prompts: &Tensor) -> Vec<u32> {
    s.loaded.model.clear_cache();
    let logits = s.loaded.model.forward(prompts, 0).expect("prefill");
    let next = logits.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
    device::synchronize(&s.device).unwrap();
    next
}

fn batch_prompt(s: &Setup, batch: usize, length: usize) -> Tensor {
    let ids = synthetic::prompt_of_length(&s.loaded.tokenizer, length).unwrap();
    let rows: Vec<u32> = (0..batch).flat_map(|_| ids.iter().copied()).collect();
    Tensor::from_vec(rows, (batch, length), &s.device).unwrap()
}

fn benches(c: &mut Criterion) {
    let mut s = setup();

    let mut group = c.benchmark_group("ttft");
    group.sample_size(10).warm_up_time(Duration::from_secs(2));
    for prompt in env_list("INFERBENCH_PROMPTS", &[32, 128, 512]) {
        let input = batch_prompt(&s, 1, prompt);
        group.throughput(Throughput::Elements(prompt as u64));
        group.bench_function(BenchmarkId::new("prompt", prompt), |b| {
            b.iter(|| prefill(&mut s, &input))
        });
    }
    group.finish();

    // One decode step for the whole batch; Elements(batch) makes Criterion report tokens/s.
    let mut group = c.benchmark_group("decode");
    group.sample_size(10).warm_up_time(Duration::from_secs(2));
    for batch in env_list("INFERBENCH_BATCHES", &[1, 4, 8, 16, 32, 64]) {
        let input = batch_prompt(&s, batch, DECODE_CONTEXT);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("batch", batch), |b| {
            b.iter_custom(|iters| {
                let mut measured = Duration::ZERO;
                let mut next = prefill(&mut s, &input);
                let mut step = 0;
                for _ in 0..iters {
                    if step == DECODE_STEPS_PER_PREFILL {
                        // Rebuild the cache outside the timed span, so every step attends over
                        // DECODE_CONTEXT to DECODE_CONTEXT + 64 positions.
                        next = prefill(&mut s, &input);
                        step = 0;
                    }
                    let tokens = Tensor::from_vec(next.clone(), (batch, 1), &s.device).unwrap();
                    let start = Instant::now();
                    let logits = s
                        .loaded
                        .model
                        .forward(&tokens, DECODE_CONTEXT + step)
                        .expect("decode step");
                    next = logits.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
                    device::synchronize(&s.device).unwrap();
                    measured += start.elapsed();
                    step += 1;
                }
                measured
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("generate");
    group.sample_size(10).warm_up_time(Duration::from_secs(2));
    let prompt = synthetic::prompt_of_length(&s.loaded.tokenizer, 128).unwrap();
    let params = GenerationParams {
        max_tokens: 128,
        sampling: SamplingParams::default(),
        ignore_eos: true,
        eos_token_ids: vec![],
        context_length: s.loaded.info.context_length,
    };
    group.throughput(Throughput::Elements(128));
    group.bench_function("prompt=128,out=128", |b| {
        b.iter(|| {
            engine::generate(
                s.loaded.model.as_mut(),
                &s.device,
                std::slice::from_ref(&prompt),
                &params,
                |_| {},
            )
            .expect("generate")
        })
    });
    group.finish();
    eprintln!("inference bench done: {}", s.label);
}

criterion_group!(inference, benches);
criterion_main!(inference);

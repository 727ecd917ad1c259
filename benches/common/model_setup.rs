//! Model set-up shared by the benches that run the model (inference, telemetry): the model
//! and device from the environment, prefill, and batched synthetic prompts.
#![allow(dead_code)] // each bench uses its own part

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor, D};
use inferbench::device::{self, DeviceRequest};
use inferbench::model::{self, LoadOptions, LoadedModel, ModelRef, Repack};
use inferbench::workload::synthetic;

/// Prompt length the decode steps attend over, and how many steps before the cache is rebuilt.
pub const DECODE_CONTEXT: usize = 32;
pub const DECODE_STEPS_PER_PREFILL: usize = 64;

pub fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
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

pub struct Setup {
    pub loaded: LoadedModel,
    pub device: Device,
    pub label: String,
    /// "cpu" or "cuda:N".
    pub device_name: String,
}

pub fn setup() -> Setup {
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
    eprintln!("model: {label} ({})", selected.reason);
    Setup {
        loaded,
        device: selected.device,
        label,
        device_name: selected.name,
    }
}

/// Prefill `prompt` for every row and pick each row's first token; the device is synchronised.
pub fn prefill(s: &mut Setup, prompts: &Tensor) -> Vec<u32> {
    s.loaded.model.clear_cache();
    let logits = s.loaded.model.forward(prompts, 0).expect("prefill");
    let next = logits.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
    device::synchronize(&s.device).unwrap();
    next
}

pub fn batch_prompt(s: &Setup, batch: usize, length: usize) -> Tensor {
    let ids = synthetic::prompt_of_length(&s.loaded.tokenizer, length).unwrap();
    let rows: Vec<u32> = (0..batch).flat_map(|_| ids.iter().copied()).collect();
    Tensor::from_vec(rows, (batch, length), &s.device).unwrap()
}

/// `steps` decode steps of the whole batch over a cache rebuilt (outside the measured spans)
/// every DECODE_STEPS_PER_PREFILL steps; `measure` wraps each run of steps (the device is
/// synchronised before it returns) and its results are summed.
pub fn decode_steps<T: std::ops::AddAssign + Default>(
    s: &mut Setup,
    input: &Tensor,
    steps: u64,
    mut measure: impl FnMut(&mut dyn FnMut()) -> T,
) -> T {
    let batch = input.dim(0).expect("a batch dimension");
    let mut total = T::default();
    let mut done = 0u64;
    while done < steps {
        let chunk = (steps - done).min(DECODE_STEPS_PER_PREFILL as u64) as usize;
        let mut next = prefill(s, input);
        let mut run = || {
            for step in 0..chunk {
                let tokens = Tensor::from_vec(next.clone(), (batch, 1), &s.device).unwrap();
                let logits = s
                    .loaded
                    .model
                    .forward(&tokens, DECODE_CONTEXT + step)
                    .expect("decode step");
                next = logits.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap();
            }
            device::synchronize(&s.device).unwrap();
        };
        total += measure(&mut run);
        done += chunk as u64;
    }
    total
}

/// Wall time of `run`, for `decode_steps`.
pub fn wall_time(run: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    run();
    start.elapsed()
}

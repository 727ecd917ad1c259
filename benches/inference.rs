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

use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use inferbench::engine::{self, GenerationParams, SamplingParams};
use inferbench::workload::synthetic;

#[path = "common/model_setup.rs"]
mod model_setup;

use inferbench::device::MachineInfo;
use inferbench::roofline::Ceiling;
use model_setup::{
    batch_prompt, decode_steps, env_list, prefill, setup, wall_time, Setup, DECODE_CONTEXT,
    DECODE_STEPS_PER_PREFILL,
};

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
    let ceiling = Ceiling::here(&MachineInfo::collect(), &s.device_name);
    for batch in env_list("INFERBENCH_BATCHES", &[1, 4, 8, 16, 32, 64]) {
        print_decode_roofline(&s, &ceiling, batch);
        let input = batch_prompt(&s, batch, DECODE_CONTEXT);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("batch", batch), |b| {
            // Each step's wall time; the cache is rebuilt outside the timed span every 64 steps,
            // so every step attends over DECODE_CONTEXT to DECODE_CONTEXT + 64 positions.
            b.iter_custom(|iters| decode_steps(&mut s, &input, iters, wall_time))
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

/// What a decode step of this batch moves (its steps attend over DECODE_CONTEXT + 1 to
/// DECODE_CONTEXT + 64 positions), and the tokens/s that moving it at this machine's measured
/// bandwidth would allow: Criterion's tokens/s over this ceiling is the share of the peak.
fn print_decode_roofline(s: &Setup, ceiling: &Ceiling, batch: usize) {
    let Some(footprint) = &s.loaded.info.footprint else {
        return;
    };
    let steps = DECODE_STEPS_PER_PREFILL as u64 + 1;
    let bytes = footprint.bytes_per_decode_step(batch as u64, DECODE_CONTEXT as u64, steps);
    let limit = match ceiling.bandwidth {
        Some(bw) => format!(
            "at {:.1} GB/s ({}) the roofline allows {:.0} tok/s",
            bw / 1e9,
            ceiling.what,
            bw / bytes * batch as f64
        ),
        None => ceiling.what.clone(),
    };
    eprintln!(
        "decode/batch/{batch}: {:.1} MB a step; {limit}",
        bytes / 1e6
    );
}

criterion_group!(inference, benches);
/// criterion_main!, with the CPU thread count pinned first as the CLI pins it: candle's CPU
/// matmul otherwise re-counts the cores from /proc at every call, which would be timed too.
fn main() {
    inferbench::device::pin_cpu_threads();
    inference();
    Criterion::default().configure_from_args().final_summary();
}

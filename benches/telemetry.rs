//! The telemetry's own cost and what it measures:
//! - `telemetry/sampler_tick` (wall time): one tick of the background sampler (the process's
//!   resident memory, and every NVML reading when there is a GPU). Its share of a core is
//!   this time over the interval (100 ms by default).
//! - Energy per decode step as a Criterion measurement (joules from the GPU's NVML energy
//!   counter): `energy/decode/batch/{1,32}`, with Throughput::Elements(batch) so Criterion also
//!   reports tokens per joule. Needs a CUDA build and a GPU with an energy counter (Volta or
//!   newer); anywhere else it says why it is skipped.
//!
//!   cargo bench --features cuda --bench telemetry
//!   INFERBENCH_BATCHES=1,8,64 cargo bench --features cuda --bench telemetry -- --save-baseline main
//!
//! Same environment as the inference bench (INFERBENCH_MODEL, INFERBENCH_DEVICE, ...).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};

#[path = "common/gpu_energy.rs"]
mod gpu_energy;
#[path = "common/model_setup.rs"]
mod model_setup;

use gpu_energy::GpuEnergy;
use inferbench::telemetry::{gpu, sampler};
use model_setup::{batch_prompt, decode_steps, env_list, setup};

fn main() {
    let mut s = setup();
    sampler_tick(&s.device_name);
    let Some(index) = s
        .device_name
        .strip_prefix("cuda:")
        .and_then(|n| n.parse::<u32>().ok())
    else {
        eprintln!(
            "telemetry bench: skipped: the model runs on {} and GPU energy needs a CUDA GPU \
             (build with --features cuda on a machine with one)",
            s.device_name
        );
        return;
    };
    let mut source = match inferbench::telemetry::gpu::open(index) {
        Ok(source) => source,
        Err(why) => {
            eprintln!("telemetry bench: skipped: {why}");
            return;
        }
    };
    if let Err(why) = source.energy_mj() {
        eprintln!("telemetry bench: skipped: no GPU energy counter ({why})");
        return;
    }
    eprintln!("telemetry bench: {} on {}", s.label, source.describe());
    // Criterion's own handle (for its start/end), and ours for the decode loop's spans.
    let energy = GpuEnergy::new(source);
    let meter = match inferbench::telemetry::gpu::open(index) {
        Ok(m) => GpuEnergy::new(m),
        Err(why) => {
            eprintln!("telemetry bench: skipped: {why}");
            return;
        }
    };
    let mut c = Criterion::default()
        .with_measurement(energy)
        .configure_from_args();
    let mut group = c.benchmark_group("energy");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for batch in env_list("INFERBENCH_BATCHES", &[1, 32]) {
        let input = batch_prompt(&s, batch, model_setup::DECODE_CONTEXT);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(BenchmarkId::new("decode/batch", batch), |b| {
            // Joules of the decode steps only: the counter is read around each run of steps,
            // after the device is synchronised, not around the cache rebuilds between them.
            b.iter_custom(|steps| {
                decode_steps(&mut s, &input, steps, |run| {
                    let start = meter.read_mj();
                    run();
                    meter.read_mj().saturating_sub(start) as f64 / 1e3
                })
            })
        });
    }
    group.finish();
    c.final_summary();
}

/// One sampler tick, with the GPU when the model runs on one.
fn sampler_tick(device_name: &str) {
    let gpu: Option<sampler::SharedGpu> = device_name
        .strip_prefix("cuda:")
        .and_then(|n| n.parse::<u32>().ok())
        .and_then(|i| gpu::open(i).ok())
        .map(|g| std::sync::Arc::new(std::sync::Mutex::new(g)));
    let what = if gpu.is_some() {
        "host + GPU"
    } else {
        "host only"
    };
    eprintln!("telemetry bench: sampler tick, {what}");
    let mut c = Criterion::default().configure_from_args();
    let started = std::time::Instant::now();
    c.bench_function("telemetry/sampler_tick", |b| {
        b.iter(|| sampler::take_sample(gpu.as_ref(), started))
    });
    c.final_summary();
}

//! `inferbench compare` on large runs: two results of 2,000 inference scenarios each (the
//! golden run's scenarios repeated under new names), every default rule, confidence intervals
//! and all. The target is under 1 ms per scenario. Measured on the 2-core VM, idle, one
//! session alternating: 365 and 380 ms for the 2,000 (0.19 ms each) with the exact quantile
//! bootstrap, 21.2 s (10.6 ms each) with 2,000 resamples per side for every percentile row.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use inferbench::regress::{self, Benchmark, RegressSection};

const SCENARIOS: usize = 2000;

fn large_run() -> Vec<Benchmark> {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden/inference");
    let run = regress::suite::load(&golden).unwrap_or_else(|e| panic!("{e:#}"));
    (0..SCENARIOS)
        .map(|i| {
            let mut b = run.benchmarks[i % run.benchmarks.len()].clone();
            b.name = format!("inference/s{i}");
            b
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let (base, current) = (large_run(), large_run());
    let settings = RegressSection::default();
    let mut group = c.benchmark_group("compare");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(SCENARIOS as u64));
    group.bench_function("inference_2000_scenarios", |b| {
        b.iter(|| regress::compare(&base, &current, &settings, ("base", "current")))
    });
    group.finish();
}

criterion_group!(compare_benches, benches);
criterion_main!(compare_benches);

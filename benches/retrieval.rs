//! Retrieval under Criterion: HNSW search at the headline ef (the smallest ef of the sweep
//! that reaches recall@10 >= 0.95) on a cached index, and the distance kernels at dim 384:
//! ours on each instruction set the CPU has (portable 16-lane sums, AVX2+FMA, AVX-512; the
//! index uses the widest) beside anndists' scalar ones.
//!
//! Size: INFERBENCH_RETRIEVAL_N vectors (default 1,000,000; the quick size is 100,000),
//! INFERBENCH_RETRIEVAL_DATA = clustered (default) or hard. The index, ground truth and data
//! parameters are those of `inferbench retrieval` with its defaults, and they share its cache:
//! the first run builds the index (minutes at 1M on a laptop), later runs reload it.
//!
//! The graph and search are `inferbench retrieval`'s defaults (built by inferbench-graph,
//! searched in the flat layout, links as built); INFERBENCH_RETRIEVAL_BUILD=hnsw_rs,
//! INFERBENCH_RETRIEVAL_SEARCH=hnsw_rs and INFERBENCH_RETRIEVAL_LINKS=as-built pick the others
//! under the same benchmark id, so Criterion's baselines compare them:
//!
//!   cargo bench --bench retrieval -- distance      # kernels only: seconds
//!   INFERBENCH_RETRIEVAL_N=100000 cargo bench --bench retrieval
//!   INFERBENCH_RETRIEVAL_SEARCH=hnsw_rs cargo bench --bench retrieval -- hnsw --save-baseline own
//!   cargo bench --bench retrieval -- hnsw --baseline own   # the flat search against it

use std::hint::black_box;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anndists::dist::{DistCosine, DistDot, DistL2, Distance};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use inferbench::retrieval::dataset::MixtureSpec;
use inferbench::retrieval::distance::{self, Isa, Metric};
use inferbench::retrieval::index::IndexParams;
use inferbench::retrieval::{self, sweep, DataChoice, RetrievalRequest, SweepSettings};

const DIM: usize = 384;

fn unit_vector(seed: u32) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn distances(c: &mut Criterion) {
    let (a, b) = (unit_vector(1), unit_vector(2));
    let mut group = c.benchmark_group("distance");
    group
        .throughput(Throughput::Elements(DIM as u64))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    type Kernel = Box<dyn Fn(&[f32], &[f32]) -> f32>;
    let mut kernels: Vec<(&str, String, Kernel)> = vec![
        ("l2", "anndists".into(), Box::new(|x, y| DistL2.eval(x, y))),
        ("cosine", "inferbench".into(), Box::new(distance::cosine)),
        (
            "cosine",
            "anndists".into(),
            Box::new(|x, y| DistCosine.eval(x, y)),
        ),
        (
            "dot",
            "anndists".into(),
            Box::new(|x, y| DistDot.eval(x, y)),
        ),
    ];
    // Our kernels on every instruction set this CPU has (the index uses the widest).
    for isa in Isa::ALL.into_iter().filter(|i| *i <= distance::isa()) {
        let name = format!("inferbench-{}", isa.name());
        kernels.push((
            "l2",
            name.clone(),
            Box::new(move |x, y| distance::squared_l2_on(isa, x, y).sqrt()),
        ));
        kernels.push((
            "dot",
            name,
            Box::new(move |x, y| 1.0 - distance::dot_on(isa, x, y)),
        ));
    }
    for (metric, implementation, kernel) in &kernels {
        group.bench_function(
            BenchmarkId::new(format!("{metric}/{DIM}"), implementation),
            |bench| bench.iter(|| kernel(black_box(&a), black_box(&b))),
        );
    }
    group.finish();
}

/// Criterion options that take a value (so the value is not mistaken for the filter).
const VALUE_FLAGS: &[&str] = &[
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--output-format",
    "--plotting-backend",
    "--color",
    "--format",
];

/// Whether Criterion's name filter (its first free argument) can select the search bench:
/// loading, or worse building, a 1M index only to skip its bench would cost minutes.
fn search_selected(distance_ids: &[String]) -> bool {
    let mut args = std::env::args().skip(1);
    let mut filter = None;
    while let Some(a) = args.next() {
        if VALUE_FLAGS.contains(&a.as_str()) {
            args.next();
        } else if !a.starts_with('-') {
            filter = Some(a);
            break;
        }
    }
    let Some(Ok(re)) = filter.map(|f| regex::Regex::new(&f)) else {
        return true;
    };
    re.is_match("hnsw_search") || !distance_ids.iter().any(|id| re.is_match(id))
}

fn search(c: &mut Criterion) {
    let distance_ids: Vec<String> = ["l2", "cosine", "dot"]
        .iter()
        .flat_map(|m| ["inferbench", "anndists"].map(|i| format!("distance/{m}/{DIM}/{i}")))
        .collect();
    if !search_selected(&distance_ids) {
        return;
    }
    let n: usize = std::env::var("INFERBENCH_RETRIEVAL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let label = std::env::var("INFERBENCH_RETRIEVAL_DATA").unwrap_or_else(|_| "clustered".into());
    let spec = if label == "hard" {
        MixtureSpec::hard(n, DIM)
    } else {
        MixtureSpec::clustered(n, DIM)
    };
    let efs = vec![16, 32, 64, 128, 256];
    let build = std::env::var("INFERBENCH_RETRIEVAL_BUILD")
        .map(|s| retrieval::searcher::BuildChoice::parse(&s).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_default();
    let request = RetrievalRequest {
        data: DataChoice::Mixture {
            label: label.clone(),
            spec,
        },
        file_queries: 1000,
        seed: 42,
        index: IndexParams {
            metric: Metric::L2,
            m: 16,
            ef_construction: 200,
        },
        sweep: SweepSettings {
            efs: efs.clone(),
            k: 10,
            batch_runs: 0,
            warmup_queries: 0,
        },
        recall_target: 0.95,
        cache_dir: Some(retrieval::cache::default_dir().join("retrieval")),
        output: std::env::temp_dir(),
        run_id: None,
        interrupt: Arc::new(AtomicBool::new(false)),
        ground_truth_file: None,
        export_data: None,
        build,
        search: std::env::var("INFERBENCH_RETRIEVAL_SEARCH")
            .map(|s| retrieval::searcher::SearchChoice::parse(&s).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_default(),
        links: std::env::var("INFERBENCH_RETRIEVAL_LINKS")
            .map(|s| retrieval::searcher::Links::parse(&s).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or(retrieval::searcher::Links::for_build(build)),
    };
    let prepared = retrieval::prepare(&request).unwrap_or_else(|e| panic!("{e:#}"));
    let queries = &prepared.data.queries;
    // The headline ef, found as `inferbench retrieval` finds it (recall only; untimed here).
    let stop = AtomicBool::new(false);
    let mut scenarios = Vec::new();
    for ef in efs {
        let measured = sweep::measure_ef(
            &prepared.index,
            queries,
            &prepared.truth,
            ef,
            &request.sweep,
            &stop,
            &|_| {},
        );
        scenarios.push(measured.expect("measured").expect("not interrupted"));
        if scenarios
            .last()
            .is_some_and(|s| s.recall >= request.recall_target)
        {
            break;
        }
    }
    let best = sweep::headline(&scenarios, request.recall_target)
        .or(scenarios.last())
        .expect("an ef");
    eprintln!(
        "hnsw search ({}): {} at ef={} (recall@10 {:.4})",
        report_search(&prepared),
        prepared.data.info.name,
        best.ef,
        best.recall
    );
    let mut group = c.benchmark_group("hnsw_search");
    group
        .throughput(Throughput::Elements(1))
        .measurement_time(Duration::from_secs(5));
    let mut next = 0;
    group.bench_function(
        BenchmarkId::new(prepared.data.info.name.clone(), format!("ef{}", best.ef)),
        |bench| {
            bench.iter(|| {
                next = (next + 1) % queries.len();
                black_box(prepared.index.search(queries.row(next), 10, best.ef))
            })
        },
    );
    group.finish();
}

/// Which search the benchmark times, as the run's table says it.
fn report_search(prepared: &retrieval::Prepared) -> String {
    inferbench::report::retrieval::search_summary(&prepared.index_info)
}

criterion_group!(benches, distances, search);
criterion_main!(benches);

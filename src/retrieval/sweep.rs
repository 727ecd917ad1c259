//! Measuring one ef: every query timed alone on one thread (latency percentiles and recall),
//! then all queries over all threads (throughput), the way ann-benchmarks pairs each latency
//! with the recall it was bought with.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use rayon::prelude::*;

use super::dataset::VectorSet;
use super::ground_truth::{recall, GroundTruth};
use super::searcher::Searcher;
use crate::metrics::{LatencyRecorder, RateSummary};
use crate::report::retrieval::EfScenario;

#[derive(Debug, Clone)]
pub struct SweepSettings {
    pub efs: Vec<usize>,
    pub k: usize,
    /// Passes of all queries over all threads, for the throughput figure.
    pub batch_runs: u32,
    /// Untimed queries before the timed ones, to warm caches and the branch predictor.
    pub warmup_queries: usize,
}

/// Measure one ef; `None` when interrupted before it finished.
pub fn measure_ef(
    index: &Searcher,
    queries: &VectorSet,
    truth: &GroundTruth,
    ef: usize,
    settings: &SweepSettings,
    interrupt: &AtomicBool,
    progress: &dyn Fn(u64),
) -> Result<Option<EfScenario>> {
    let started = Instant::now();
    let k = settings.k;
    for q in queries.rows().take(settings.warmup_queries) {
        std::hint::black_box(index.search(q, k, ef));
    }
    let mut latency = LatencyRecorder::new();
    let mut recalls = Vec::with_capacity(queries.len());
    let mut searching = std::time::Duration::ZERO;
    for (qi, q) in queries.rows().enumerate() {
        if qi % 64 == 0 && interrupt.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let t = Instant::now();
        let found = index.search(q, k, ef);
        let elapsed = t.elapsed();
        searching += elapsed;
        latency.record(elapsed)?;
        crate::live::request(Some((None, elapsed)));
        recalls.push(recall(truth.ids_of(qi), truth.distances_of(qi), &found));
        progress(qi as u64 + 1);
    }
    let mut batch = Vec::new();
    for _ in 0..settings.batch_runs {
        if interrupt.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let t = Instant::now();
        (0..queries.len()).into_par_iter().for_each(|qi| {
            std::hint::black_box(index.search(queries.row(qi), k, ef));
        });
        batch.push(queries.len() as f64 / t.elapsed().as_secs_f64());
    }
    let Some(summary) = latency.summary() else {
        return Ok(None);
    };
    let n = recalls.len().max(1) as f64;
    Ok(Some(EfScenario {
        name: format!("ef{ef}"),
        ef,
        k,
        queries: queries.len(),
        recall: recalls.iter().sum::<f64>() / n,
        recall_min: recalls.iter().cloned().fold(1.0, f64::min),
        recall_histogram: histogram(&recalls),
        latency: summary,
        latency_histogram: latency.buckets(),
        single_thread_qps: queries.len() as f64 / searching.as_secs_f64().max(1e-9),
        batch_qps: RateSummary::from_runs(batch),
        batch_threads: rayon::current_num_threads(),
        duration_s: started.elapsed().as_secs_f64(),
    }))
}

/// Recall values are multiples of 1/k: count each.
fn histogram(recalls: &[f64]) -> Vec<(f64, u64)> {
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for r in recalls {
        *counts.entry((r * 1e6).round() as u64).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(r, c)| (r as f64 / 1e6, c))
        .collect()
}

/// The smallest ef whose mean recall reaches `target`.
pub fn headline(scenarios: &[EfScenario], target: f64) -> Option<&EfScenario> {
    scenarios
        .iter()
        .filter(|s| s.recall >= target)
        .min_by_key(|s| s.ef)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::dataset::MixtureSpec;
    use crate::retrieval::distance::Metric;
    use crate::retrieval::ground_truth;
    use crate::retrieval::index::{Index, IndexParams};
    use crate::retrieval::searcher::{Built, Links, SearchChoice, Searcher};

    #[test]
    fn recall_grows_with_ef_and_the_headline_is_the_smallest_ef_reaching_it() {
        let (base, queries) = MixtureSpec {
            queries: 100,
            ..MixtureSpec::hard(5000, 32)
        }
        .generate(&|_| {})
        .unwrap();
        let truth = ground_truth::compute(&base, &queries, 10, Metric::L2, &|_| {}).unwrap();
        let params = IndexParams {
            metric: Metric::L2,
            m: 8,
            ef_construction: 64,
        };
        let built = Index::build(&base, params, &AtomicBool::new(false), &|_| {}).unwrap();
        let (index, _) =
            Searcher::new(Built::HnswRs(built), SearchChoice::Flat, Links::Reselected).unwrap();
        let settings = SweepSettings {
            efs: vec![10, 200],
            k: 10,
            batch_runs: 1,
            warmup_queries: 5,
        };
        let stop = AtomicBool::new(false);
        let results: Vec<EfScenario> = settings
            .efs
            .iter()
            .map(|ef| {
                measure_ef(&index, &queries, &truth, *ef, &settings, &stop, &|_| {})
                    .unwrap()
                    .unwrap()
            })
            .collect();
        let (low, high) = (&results[0], &results[1]);
        assert!(
            high.recall > low.recall,
            "{} vs {}",
            low.recall,
            high.recall
        );
        assert!(high.recall > 0.85, "{}", high.recall);
        assert_eq!(low.latency.count, 100);
        let counted: u64 = high.recall_histogram.iter().map(|(_, c)| c).sum();
        assert_eq!(counted, 100);
        assert_eq!(headline(&results, high.recall).map(|s| s.ef), Some(200));
        assert_eq!(headline(&results, 0.0).map(|s| s.ef), Some(10));
        assert_eq!(headline(&results, 1.01).map(|s| s.ef), None);
        stop.store(true, Ordering::SeqCst);
        let stopped = measure_ef(&index, &queries, &truth, 10, &settings, &stop, &|_| {}).unwrap();
        assert!(stopped.is_none());
    }
}

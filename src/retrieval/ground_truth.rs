//! Exact k nearest neighbours by brute force, and recall against them.
//!
//! Blocks of base vectors are scored against all queries with one matrix product each
//! (ndarray), blocks in parallel; each query keeps a few more candidates than k per block by
//! that fast score, and the survivors are re-ranked with the exact distance the index uses, so
//! rounding in the matrix product cannot change the answer.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use anyhow::{bail, Result};
use ndarray::{ArrayView2, Axis};
use rayon::prelude::*;

use super::dataset::VectorSet;
use super::distance::Metric;

/// Base vectors scored per matrix product.
const BLOCK: usize = 8192;
/// Candidates kept per query and block beyond k, to absorb rounding in the fast score.
const SLACK: usize = 8;

/// The true k nearest base vectors of each query, nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    pub k: usize,
    /// queries × k base indices.
    pub ids: Vec<u32>,
    /// queries × k exact distances.
    pub distances: Vec<f32>,
}

impl GroundTruth {
    pub fn queries(&self) -> usize {
        self.ids.len() / self.k.max(1)
    }

    pub fn ids_of(&self, query: usize) -> &[u32] {
        &self.ids[query * self.k..(query + 1) * self.k]
    }

    pub fn distances_of(&self, query: usize) -> &[f32] {
        &self.distances[query * self.k..(query + 1) * self.k]
    }
}

/// Check that queries can be answered from this base at this k.
pub fn check_inputs(base: &VectorSet, queries: &VectorSet, k: usize) -> Result<()> {
    if base.dim != queries.dim {
        bail!(
            "dimension mismatch: the index holds vectors of dimension {}, the queries have {}",
            base.dim,
            queries.dim
        );
    }
    if k == 0 {
        bail!("k must be at least 1");
    }
    if k > base.len() {
        bail!(
            "k = {k} is larger than the {} vectors in the index",
            base.len()
        );
    }
    if base.len() > u32::MAX as usize {
        bail!("{} vectors: at most {} are supported", base.len(), u32::MAX);
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq)]
struct Candidate {
    score: f32,
    id: u32,
}

impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(self.id.cmp(&other.id))
    }
}

/// Brute-force top-k for every query; `progress` gets the number of base vectors scored.
pub fn compute(
    base: &VectorSet,
    queries: &VectorSet,
    k: usize,
    metric: Metric,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<GroundTruth> {
    check_inputs(base, queries, k)?;
    let dim = base.dim;
    let nq = queries.len();
    let keep = (k + SLACK).min(base.len());
    let q = ArrayView2::from_shape((nq, dim), &queries.data)?;
    let blocks: Vec<(usize, &[f32])> = base
        .data
        .chunks(BLOCK * dim)
        .enumerate()
        .map(|(b, chunk)| (b * BLOCK, chunk))
        .collect();
    let done = std::sync::atomic::AtomicU64::new(0);
    // Per block: for each query, its `keep` best candidates by the fast score.
    let per_block: Vec<Vec<Vec<Candidate>>> = blocks
        .par_iter()
        .map(|(start, chunk)| {
            let rows = chunk.len() / dim;
            let x = ArrayView2::from_shape((rows, dim), chunk).expect("whole rows");
            let products = q.dot(&x.t()); // nq × rows
                                          // The part of the distance that depends on the base vector, monotone in it.
            let norms: Vec<f32> = x
                .axis_iter(Axis(0))
                .map(|r| r.iter().map(|v| v * v).sum::<f32>())
                .collect();
            let fast = |j: usize, p: f32| match metric {
                Metric::L2 => norms[j] - 2.0 * p,
                Metric::Cosine if norms[j] > 0.0 => -p / norms[j].sqrt(),
                Metric::Cosine => 0.0,
                Metric::Dot => -p,
            };
            let out = products
                .axis_iter(Axis(0))
                .map(|row| {
                    let mut heap = BinaryHeap::with_capacity(keep + 1);
                    for (j, p) in row.iter().enumerate() {
                        let c = Candidate {
                            score: fast(j, *p),
                            id: (start + j) as u32,
                        };
                        if heap.len() < keep {
                            heap.push(c);
                        } else if c < *heap.peek().expect("non-empty") {
                            heap.pop();
                            heap.push(c);
                        }
                    }
                    heap.into_vec()
                })
                .collect();
            let total = done.fetch_add(rows as u64, std::sync::atomic::Ordering::Relaxed);
            progress(total + rows as u64);
            out
        })
        .collect();
    // Re-rank every query's survivors with the exact distance.
    let ranked: Vec<Vec<Candidate>> = (0..nq)
        .into_par_iter()
        .map(|qi| {
            let mut all: Vec<Candidate> = per_block
                .iter()
                .flat_map(|b| b[qi].iter())
                .map(|c| Candidate {
                    score: metric.eval(queries.row(qi), base.row(c.id as usize)),
                    id: c.id,
                })
                .collect();
            all.sort_unstable();
            all.truncate(k);
            all
        })
        .collect();
    let mut ids = Vec::with_capacity(nq * k);
    let mut distances = Vec::with_capacity(nq * k);
    for list in ranked {
        ids.extend(list.iter().map(|c| c.id));
        distances.extend(list.iter().map(|c| c.score));
    }
    Ok(GroundTruth { k, ids, distances })
}

/// Tolerance for counting a returned neighbour tied with the k-th true one.
const TIE_EPSILON: f32 = 1e-5;

/// Recall@k of one query's answer: the share of the k returned neighbours that are among the
/// true k nearest, where a returned neighbour as near as the k-th true one counts too (ties
/// make "the" k nearest ambiguous, as ann-benchmarks also allows). `returned` holds
/// (base index, distance) pairs.
pub fn recall(truth_ids: &[u32], truth_distances: &[f32], returned: &[(usize, f32)]) -> f64 {
    let k = truth_ids.len();
    if k == 0 {
        return 1.0;
    }
    let kth = truth_distances[k - 1];
    let threshold = kth + TIE_EPSILON * kth.abs().max(1.0);
    let hits = returned
        .iter()
        .take(k)
        .filter(|(id, d)| truth_ids.contains(&(*id as u32)) || *d <= threshold)
        .count();
    hits as f64 / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::dataset::MixtureSpec;

    fn naive(base: &VectorSet, q: &[f32], k: usize, metric: Metric) -> Vec<u32> {
        let mut all: Vec<(f32, u32)> = base
            .rows()
            .enumerate()
            .map(|(i, b)| (metric.eval(q, b), i as u32))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all.iter().take(k).map(|(_, i)| *i).collect()
    }

    #[test]
    fn matches_a_naive_loop_for_every_metric_across_blocks() {
        // More than one block, and a last block that is not full.
        let spec = MixtureSpec {
            queries: 25,
            ..MixtureSpec::clustered(BLOCK + 1500, 16)
        };
        let (mut base, mut queries) = spec.generate(&|_| {}).unwrap();
        for metric in [Metric::L2, Metric::Cosine, Metric::Dot] {
            if metric == Metric::Dot {
                base.normalize();
                queries.normalize();
            }
            let truth = compute(&base, &queries, 10, metric, &|_| {}).unwrap();
            assert_eq!(truth.queries(), 25);
            for qi in 0..queries.len() {
                let want = naive(&base, queries.row(qi), 10, metric);
                assert_eq!(truth.ids_of(qi), want.as_slice(), "{metric:?} query {qi}");
                let d = truth.distances_of(qi);
                assert!(d.windows(2).all(|w| w[0] <= w[1]));
            }
        }
    }

    #[test]
    fn recall_counts_hits_and_ties() {
        let ids = [1, 2, 3, 4];
        let dist = [0.1, 0.2, 0.3, 0.4];
        // All four found, in another order.
        let all = [(4, 0.4), (3, 0.3), (2, 0.2), (1, 0.1)];
        assert_eq!(recall(&ids, &dist, &all), 1.0);
        // Two right, two wrong and farther.
        let half = [(1, 0.1), (2, 0.2), (9, 0.5), (8, 0.6)];
        assert_eq!(recall(&ids, &dist, &half), 0.5);
        // A different point at exactly the 4th distance is as good as point 4.
        let tie = [(1, 0.1), (2, 0.2), (3, 0.3), (7, 0.4)];
        assert_eq!(recall(&ids, &dist, &tie), 1.0);
        // Fewer answers than k count as misses; extra answers beyond k do not count.
        assert_eq!(recall(&ids, &dist, &[(1, 0.1)]), 0.25);
        let extra = [(9, 0.9), (9, 0.9), (9, 0.9), (9, 0.9), (1, 0.1)];
        assert_eq!(recall(&ids, &dist, &extra), 0.0);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let base = VectorSet::new(4, vec![0.0; 40]).unwrap();
        let q3 = VectorSet::new(3, vec![0.0; 3]).unwrap();
        let q4 = VectorSet::new(4, vec![0.0; 4]).unwrap();
        let err = compute(&base, &q3, 5, Metric::L2, &|_| {}).unwrap_err();
        assert!(err.to_string().contains("dimension mismatch"), "{err}");
        let err = compute(&base, &q4, 11, Metric::L2, &|_| {}).unwrap_err();
        assert!(
            err.to_string().contains("k = 11 is larger than the 10"),
            "{err}"
        );
    }
}

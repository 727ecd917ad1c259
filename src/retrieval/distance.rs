//! Distances between f32 vectors, for the index (as hnsw_rs `Distance`s) and for the exact
//! ground truth. The kernels are the `inferbench-distance` crate's (crates/distance), a crate
//! of their own so that they are optimised in debug and test builds too.

use anndists::dist::Distance;
pub use inferbench_distance::{
    cosine, dot, dot_distance, dot_on, isa, l2, l2_to_rows, squared_l2, squared_l2_on, Isa,
};
use serde::{Deserialize, Serialize};

/// The distance an index is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Euclidean distance.
    L2,
    /// 1 - cos(a, b).
    Cosine,
    /// 1 - a·b, for vectors normalised to unit length.
    Dot,
}

impl Metric {
    pub fn parse(s: &str) -> Option<Metric> {
        match s {
            "l2" => Some(Metric::L2),
            "cosine" => Some(Metric::Cosine),
            "dot" => Some(Metric::Dot),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::L2 => "l2",
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
        }
    }

    /// The distance between two vectors of equal length.
    pub fn eval(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2(a, b),
            Metric::Cosine => cosine(a, b),
            Metric::Dot => dot_distance(a, b),
        }
    }
}

/// The index's L2 distance. The type's name is stored in the index file and checked on reload.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimdL2;
#[derive(Debug, Default, Clone, Copy)]
pub struct SimdCosine;
#[derive(Debug, Default, Clone, Copy)]
pub struct SimdDot;

impl Distance<f32> for SimdL2 {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        l2(a, b)
    }
}

impl Distance<f32> for SimdCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        cosine(a, b)
    }
}

impl Distance<f32> for SimdDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        dot_distance(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum();
        match metric {
            Metric::L2 => (na + nb - 2.0 * dot).max(0.0).sqrt(),
            Metric::Cosine => 1.0 - dot / (na.sqrt() * nb.sqrt()),
            Metric::Dot => (1.0 - dot).max(0.0),
        }
    }

    #[test]
    fn kernels_match_a_double_precision_loop_at_awkward_lengths() {
        for dim in [1, 3, 15, 16, 17, 100, 384] {
            let a: Vec<f32> = (0..dim)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 7.0)
                .collect();
            let b: Vec<f32> = (0..dim)
                .map(|i| ((i * 3 % 13) as f32 - 6.0) / 9.0)
                .collect();
            let norm = |v: &[f32]| {
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / n).collect::<Vec<_>>()
            };
            let (ua, ub) = (norm(&a), norm(&b));
            for (metric, x, y) in [
                (Metric::L2, &a, &b),
                (Metric::Cosine, &a, &b),
                (Metric::Dot, &ua, &ub),
            ] {
                let got = metric.eval(x, y) as f64;
                let want = naive(metric, x, y);
                assert!(
                    (got - want).abs() < 1e-4 * want.abs().max(1.0),
                    "{metric:?} dim {dim}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_sums() {
        for dim in [1, 7, 8, 31, 33, 64, 100, 384, 1000] {
            let a: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.11).cos()).collect();
            let want_l2 = naive(Metric::L2, &a, &b).powi(2);
            let want_dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            for isa in Isa::ALL {
                let l2 = squared_l2_on(isa, &a, &b) as f64;
                let dot = dot_on(isa, &a, &b) as f64;
                let tol = 1e-4 * (dim as f64).max(1.0);
                assert!(
                    (l2 - want_l2).abs() < tol,
                    "{isa:?} dim {dim}: {l2} vs {want_l2}"
                );
                assert!(
                    (dot - want_dot).abs() < tol,
                    "{isa:?} dim {dim}: {dot} vs {want_dot}"
                );
            }
        }
    }

    #[test]
    fn distances_to_rows_are_each_rows_distance() {
        let q: Vec<f32> = (0..5).map(|i| i as f32).collect();
        let rows: Vec<f32> = (0..17).map(|i| (i * i) as f32 * 0.1).collect();
        let mut out = [f32::NAN; 4];
        l2_to_rows(&q, &rows, &mut out);
        assert_eq!(
            out[..3],
            [
                l2(&q, &rows[0..5]),
                l2(&q, &rows[5..10]),
                l2(&q, &rows[10..15])
            ]
        );
        assert!(out[3].is_nan(), "the partial last row is left alone");
    }

    #[test]
    fn identical_vectors_are_at_distance_zero() {
        let v: Vec<f32> = (0..384).map(|i| (i as f32).sin()).collect();
        assert_eq!(l2(&v, &v), 0.0);
        assert!(cosine(&v, &v).abs() < 1e-6);
        assert_eq!(cosine(&v, &vec![0.0; 384]), 1.0);
    }
}

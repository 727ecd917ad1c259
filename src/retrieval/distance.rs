//! Distances between f32 vectors, for the index (as hnsw_rs `Distance`s) and for the exact
//! ground truth. anndists' f32 kernels sum serially, which the compiler cannot vectorise; these
//! keep 16 independent partial sums so it can, and on x86-64 a copy compiled for AVX2+FMA is
//! picked at run time.

use anndists::dist::Distance;
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

const LANES: usize = 16;

/// Sum of `f(a_i, b_i)` over lanes of 16, so each lane's additions are independent and the
/// loop vectorises.
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += f(xa[i], xb[i]);
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| f(*x, *y)).sum::<f32>()
}

#[inline(always)]
fn squared_l2_portable(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y| (x - y) * (x - y))
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y| x * y)
}

/// a·b, |a|², |b|². Three single-sum passes: LLVM vectorises each, but not one loop
/// carrying three sets of lanes (measured: 3x slower).
#[inline(always)]
fn dot_norms_portable(a: &[f32], b: &[f32]) -> [f32; 3] {
    [dot_portable(a, b), dot_portable(a, a), dot_portable(b, b)]
}

/// Defines a function that runs `$portable` compiled for AVX2+FMA when the CPU has them.
macro_rules! dispatch {
    ($name:ident, $avx:ident, $portable:ident, $out:ty) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx(a: &[f32], b: &[f32]) -> $out {
            $portable(a, b)
        }

        pub fn $name(a: &[f32], b: &[f32]) -> $out {
            debug_assert_eq!(a.len(), b.len());
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features the function was compiled for.
                    return unsafe { $avx(a, b) };
                }
            }
            $portable(a, b)
        }
    };
}

dispatch!(squared_l2, squared_l2_avx2, squared_l2_portable, f32);
dispatch!(dot, dot_avx2, dot_portable, f32);
dispatch!(dot_norms, dot_norms_avx2, dot_norms_portable, [f32; 3]);

pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    squared_l2(a, b).sqrt()
}

/// 1 - cos(a, b); 1 when either vector is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let [ab, aa, bb] = dot_norms(a, b);
    if aa <= 0.0 || bb <= 0.0 {
        return 1.0;
    }
    (1.0 - ab / (aa.sqrt() * bb.sqrt())).max(0.0)
}

/// 1 - a·b, clamped at 0 (rounding can push unit vectors' product past 1).
pub fn dot_distance(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - dot(a, b)).max(0.0)
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
    fn identical_vectors_are_at_distance_zero() {
        let v: Vec<f32> = (0..384).map(|i| (i as f32).sin()).collect();
        assert_eq!(l2(&v, &v), 0.0);
        assert!(cosine(&v, &v).abs() < 1e-6);
        assert_eq!(cosine(&v, &vec![0.0; 384]), 1.0);
    }
}

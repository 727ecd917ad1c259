//! SIMD distance kernels between f32 vectors: squared L2, dot, L2, cosine.
//!
//! A crate of its own so that debug and test builds of inferbench (which optimise dependencies
//! only) still run these at full speed, and instruction counts of them mean something.
//! anndists' f32 kernels sum serially, which the compiler cannot vectorise; these keep 16
//! independent partial sums so it can, and on x86-64 a copy compiled for AVX2+FMA or AVX-512
//! is picked at run time.

pub mod activation;
pub mod attention;
pub mod panel_gemm;
pub mod q8;

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
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    lane_sum(a, b, |x, y| x * y)
}

/// Explicit SIMD: four independent accumulators, so the adds are not one long dependency
/// chain (a single 16-lane chain is latency-bound at ~33 ns for 384 dims here).
#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    use std::arch::x86_64::*;

    /// `acc += (a - b)²` (squared L2) or `acc += a·b` (dot), 32 floats per step, then 8,
    /// then a scalar tail.
    macro_rules! avx2_kernel {
        ($name:ident, $step:expr, $scalar:expr) => {
            #[target_feature(enable = "avx2,fma")]
            pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm256_setzero_ps(); 4];
                let mut i = 0;
                while i + 32 <= n {
                    for (j, acc_j) in acc.iter_mut().enumerate() {
                        let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                        let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                        *acc_j = $step(x, y, *acc_j);
                    }
                    i += 32;
                }
                while i + 8 <= n {
                    let x = _mm256_loadu_ps(pa.add(i));
                    let y = _mm256_loadu_ps(pb.add(i));
                    acc[0] = $step(x, y, acc[0]);
                    i += 8;
                }
                let sum =
                    _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                let mut lanes = [0.0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
                let mut total: f32 = lanes.iter().sum();
                while i < n {
                    total += $scalar(a[i], b[i]);
                    i += 1;
                }
                total
            }
        };
    }

    macro_rules! avx512_kernel {
        ($name:ident, $step:expr, $scalar:expr) => {
            #[target_feature(enable = "avx512f")]
            pub unsafe fn $name(a: &[f32], b: &[f32]) -> f32 {
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut i = 0;
                while i + 64 <= n {
                    for (j, acc_j) in acc.iter_mut().enumerate() {
                        let x = _mm512_loadu_ps(pa.add(i + 16 * j));
                        let y = _mm512_loadu_ps(pb.add(i + 16 * j));
                        *acc_j = $step(x, y, *acc_j);
                    }
                    i += 64;
                }
                while i + 16 <= n {
                    let x = _mm512_loadu_ps(pa.add(i));
                    let y = _mm512_loadu_ps(pb.add(i));
                    acc[0] = $step(x, y, acc[0]);
                    i += 16;
                }
                let sum =
                    _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
                let mut total = _mm512_reduce_add_ps(sum);
                while i < n {
                    total += $scalar(a[i], b[i]);
                    i += 1;
                }
                total
            }
        };
    }

    avx2_kernel!(
        squared_l2_avx2,
        |x, y, acc| {
            let d = _mm256_sub_ps(x, y);
            _mm256_fmadd_ps(d, d, acc)
        },
        |x: f32, y: f32| (x - y) * (x - y)
    );
    avx2_kernel!(dot_avx2, _mm256_fmadd_ps, |x: f32, y: f32| x * y);
    avx512_kernel!(
        squared_l2_avx512,
        |x, y, acc| {
            let d = _mm512_sub_ps(x, y);
            _mm512_fmadd_ps(d, d, acc)
        },
        |x: f32, y: f32| (x - y) * (x - y)
    );
    avx512_kernel!(dot_avx512, _mm512_fmadd_ps, |x: f32, y: f32| x * y);
}

/// The widest kernel this CPU runs, detected once (`INFERBENCH_NO_AVX512=1` stops at AVX2).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Isa {
    Portable,
    Avx2,
    Avx512,
}

impl Isa {
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

pub fn isa() -> Isa {
    static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("INFERBENCH_NO_AVX512").is_none()
                && std::arch::is_x86_feature_detected!("avx512f")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}

pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(feature = "inject-slowdown")]
    slowdown::repeat_a_tenth(a, b);
    squared_l2_on(isa(), a, b)
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_on(isa(), a, b)
}

/// The squared L2 kernel of one instruction set (for benches and tests); one this CPU lacks
/// falls back to the portable kernel.
pub fn squared_l2_on(choice: Isa, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    // SAFETY: each kernel runs only when the CPU has the features it was compiled for.
    #[cfg(target_arch = "x86_64")]
    match choice.min(isa()) {
        Isa::Avx512 => return unsafe { simd::squared_l2_avx512(a, b) },
        Isa::Avx2 => return unsafe { simd::squared_l2_avx2(a, b) },
        Isa::Portable => {}
    }
    squared_l2_portable(a, b)
}

/// The dot kernel of one instruction set, as `squared_l2_on`.
pub fn dot_on(choice: Isa, a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    // SAFETY: as above.
    #[cfg(target_arch = "x86_64")]
    match choice.min(isa()) {
        Isa::Avx512 => return unsafe { simd::dot_avx512(a, b) },
        Isa::Avx2 => return unsafe { simd::dot_avx2(a, b) },
        Isa::Portable => {}
    }
    dot_portable(a, b)
}

fn dot_norms(a: &[f32], b: &[f32]) -> [f32; 3] {
    [dot(a, b), dot(a, a), dot(b, b)]
}

pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    squared_l2(a, b).sqrt()
}

/// The L2 distance from `query` to each row of `rows` (rows of `query.len()` floats, a
/// partial last row ignored), written to `out` (as many as fit).
pub fn l2_to_rows(query: &[f32], rows: &[f32], out: &mut [f32]) {
    if query.is_empty() {
        return;
    }
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
        *o = l2(query, row);
    }
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

/// The regression proof's knob (inferbench's scripts/regress-check-instructions.sh), compiled
/// only with the `inject-slowdown` feature: with INFERBENCH_INJECT_SLOWDOWN=l2 in the
/// environment, every tenth squared L2 distance is computed twice, a real 10% more of the
/// kernel's work.
#[cfg(feature = "inject-slowdown")]
mod slowdown {
    use std::sync::atomic::{AtomicU64, Ordering};

    pub fn repeat_a_tenth(a: &[f32], b: &[f32]) {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let on = *ON
            .get_or_init(|| std::env::var("INFERBENCH_INJECT_SLOWDOWN").is_ok_and(|v| v == "l2"));
        if on && CALLS.fetch_add(1, Ordering::Relaxed) % 10 == 0 {
            std::hint::black_box(super::squared_l2_on(super::isa(), a, b));
        }
    }
}

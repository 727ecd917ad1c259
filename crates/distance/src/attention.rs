//! The arithmetic of one decode step's attention for one kv head: the scores of its query
//! heads against every cached key, their softmax, and the weighted sums of the values. Here,
//! in the crate that debug and test builds optimise, so inferbench's instruction counts of a
//! decode step measure optimised code (inferbench's `model::decode_attention` finds the slices).

/// For each of the `queries` (one per query head sharing this kv head, each `d` long),
/// softmax(q·kᵀ / √d)·V over the `t` positions of `keys` and `values` (t × d, row-major),
/// written to `out` (queries × d), and its softmax's [`Partial`] to `parts` (one a query):
/// the keys and values may be a chunk of the positions, whose results [`merge`] combines.
/// `scores` is scratch, reused between calls.
///
/// The body is compiled once per instruction set and picked at run time, so its loops (the
/// dot products, the exponentials, the weighted sums) vectorise; called per kv head, a
/// dispatch per dot product and libm's scalar `exp` had cost a SmolLM2 decode step 1.1 ms.
pub fn decode_group(
    queries: &[&[f32]],
    keys: &[f32],
    values: &[f32],
    d: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    parts: &mut [Partial],
) {
    assert_eq!(parts.len(), queries.len(), "one partial a query");
    #[cfg(target_arch = "x86_64")]
    match crate::isa() {
        // SAFETY: isa() detected the features each copy is compiled for.
        crate::Isa::Avx512 => {
            return unsafe { group_avx512(queries, keys, values, d, scores, out, parts) }
        }
        crate::Isa::Avx2 => {
            return unsafe { group_avx2(queries, keys, values, d, scores, out, parts) }
        }
        crate::Isa::Portable => {}
    }
    group(
        queries,
        keys,
        values,
        d,
        scores,
        out,
        parts,
        crate::dot_portable,
    )
}

/// What a chunk's softmax leaves to merge it with other chunks': its largest scaled score,
/// and the sum of e^(score - largest) over the chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partial {
    pub max: f32,
    pub sum: f32,
}

/// One query's attention over all positions from its attention over chunks of them: each
/// chunk's output weighted by its share of the whole softmax, sum·e^(max - overall max).
/// `chunks` are (partial, output `out.len()` long); the same result as one pass over all
/// positions up to rounding.
pub fn merge(chunks: &[(Partial, &[f32])], out: &mut [f32]) {
    let overall = chunks
        .iter()
        .fold(f32::NEG_INFINITY, |m, (p, _)| m.max(p.max));
    let weight = |p: &Partial| p.sum * exp(p.max - overall);
    let total: f32 = chunks.iter().map(|(p, _)| weight(p)).sum();
    out.fill(0.0);
    for (p, values) in chunks {
        let share = weight(p) / total;
        for (o, v) in out.iter_mut().zip(values.iter()) {
            *o += share * v;
        }
    }
}

/// `group` compiled for one instruction set, with that set's dot product.
macro_rules! group_for {
    ($name:ident, $features:literal, $dot:path) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(
            queries: &[&[f32]],
            keys: &[f32],
            values: &[f32],
            d: usize,
            scores: &mut Vec<f32>,
            out: &mut [f32],
            parts: &mut [Partial],
        ) {
            // SAFETY: the caller checked the features, which `$dot` needs too.
            group(
                queries,
                keys,
                values,
                d,
                scores,
                out,
                parts,
                |a, b| unsafe { $dot(a, b) },
            )
        }
    };
}

group_for!(group_avx512, "avx512f,avx2,fma", crate::simd::dot_avx512);
group_for!(group_avx2, "avx2,fma", crate::simd::dot_avx2);

/// The body, with the dot product of the instruction set it is compiled for.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn group(
    queries: &[&[f32]],
    keys: &[f32],
    values: &[f32],
    d: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
    parts: &mut [Partial],
    dot: impl Fn(&[f32], &[f32]) -> f32,
) {
    let t = keys.len().checked_div(d).unwrap_or(0);
    let scale = (d as f64).sqrt() as f32;
    scores.clear();
    scores.resize(queries.len() * t, 0.0);
    for ((h, query), part) in queries.iter().enumerate().zip(parts.iter_mut()) {
        let row = &mut scores[h * t..(h + 1) * t];
        for (s, key) in row.iter_mut().zip(keys.chunks_exact(d)) {
            *s = dot(query, key);
        }
        // Apart from the dot products, so the divisions vectorise (one each was a stall).
        for s in row.iter_mut() {
            *s /= scale;
        }
        *part = softmax(row);
    }
    for (h, out_h) in out.chunks_mut(d).enumerate() {
        weighted_sum(&scores[h * t..(h + 1) * t], values, d, out_h);
    }
}

/// `out` = Σ_pos probs[pos] · values[pos] (each value `d` long), 64 columns at a time held in
/// registers across the positions, each column summed in position order.
#[inline(always)]
fn weighted_sum(probs: &[f32], values: &[f32], d: usize, out: &mut [f32]) {
    const COLUMNS: usize = 64;
    let mut c = 0;
    while c + COLUMNS <= d {
        let mut acc = [0f32; COLUMNS];
        for (&p, value) in probs.iter().zip(values.chunks_exact(d)) {
            let v = &value[c..c + COLUMNS];
            for i in 0..COLUMNS {
                acc[i] += p * v[i];
            }
        }
        out[c..c + COLUMNS].copy_from_slice(&acc);
        c += COLUMNS;
    }
    out[c..].fill(0.0);
    for (&p, value) in probs.iter().zip(values.chunks_exact(d)) {
        for (acc, v) in out[c..].iter_mut().zip(&value[c..]) {
            *acc += p * v;
        }
    }
}

/// In place, as candle's softmax: subtract the maximum, exponentiate, divide by the sum;
/// returns the maximum and the sum.
#[inline(always)]
fn softmax(row: &mut [f32]) -> Partial {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for x in row.iter_mut() {
        *x = exp(*x - max);
    }
    let sum: f32 = row.iter().sum();
    for x in row.iter_mut() {
        *x /= sum;
    }
    Partial { max, sum }
}

/// e^x without a libm call, so a loop of them vectorises: x = n·ln 2 + r with |r| ≤ ln 2 / 2,
/// e^r from Cephes' expf polynomial (within 2 ulp of libm's over the softmax's range, x ≤ 0;
/// tested), 2^n from the exponent bits. Below -87 it returns e^-87 (1.6e-38) instead of a
/// denormal or 0: next to a softmax's largest term, 1, that is nothing.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts, so n·ln 2 is exact to float precision for |n| <= 128.
    const LN2_HIGH: f32 = 0.693_359_4;
    const LN2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    f32::from_bits(((n as i32 + 127) as u32) << 23) * er
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_position_gives_its_value_and_equal_scores_the_mean() {
        let (q1, q2) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let mut scores = Vec::new();
        let mut out = [0f32; 4];
        let mut parts = [Partial { max: 0.0, sum: 0.0 }; 2];
        decode_group(
            &[&q1, &q2],
            &[3.0, 4.0],
            &[5.0, 6.0],
            2,
            &mut scores,
            &mut out,
            &mut parts,
        );
        assert_eq!(out, [5.0, 6.0, 5.0, 6.0]);
        let scale = 2f32.sqrt();
        assert_eq!(
            parts[0],
            Partial {
                max: 3.0 / scale,
                sum: 1.0
            }
        );
        assert_eq!(
            parts[1],
            Partial {
                max: 4.0 / scale,
                sum: 1.0
            }
        );
        // Two keys the query sees alike: the mean of their values.
        let mut out = [0f32; 2];
        decode_group(
            &[&q1],
            &[1.0, 0.0, 1.0, 9.0],
            &[2.0, 0.0, 4.0, 8.0],
            2,
            &mut scores,
            &mut out[..],
            &mut parts[..1],
        );
        assert_eq!(out, [3.0, 4.0]);
    }

    /// Attention over 100 positions in one pass, and over chunks of 1 to 99 merged.
    #[test]
    fn merged_chunks_equal_one_pass() {
        let (d, t) = (8, 100);
        let wave = |n: usize, f: f32| {
            (0..n)
                .map(|i| (i as f32 * f).sin() * 3.0)
                .collect::<Vec<_>>()
        };
        let query = wave(d, 0.3);
        let (keys, values) = (wave(t * d, 0.11), wave(t * d, 0.05));
        let attend = |from: usize, to: usize| {
            let mut out = vec![0f32; d];
            let mut part = [Partial { max: 0.0, sum: 0.0 }];
            let (k, v) = (&keys[from * d..to * d], &values[from * d..to * d]);
            decode_group(&[&query], k, v, d, &mut Vec::new(), &mut out, &mut part);
            (part[0], out)
        };
        let (_, whole) = attend(0, t);
        for chunk in [1, 7, 33, 50, 99] {
            let pieces: Vec<_> = (0..t)
                .step_by(chunk)
                .map(|a| attend(a, (a + chunk).min(t)))
                .collect();
            let refs: Vec<_> = pieces.iter().map(|(p, o)| (*p, o.as_slice())).collect();
            let mut merged = vec![0f32; d];
            merge(&refs, &mut merged);
            for (a, b) in merged.iter().zip(&whole) {
                assert!((a - b).abs() < 1e-5, "chunks of {chunk}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_libm_where_softmax_uses_it() {
        let mut worst = 0u32;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max(ours.to_bits().abs_diff(libm.to_bits()));
        }
        assert!(worst <= 2, "{worst} ulp");
        for x in [0.5f32, 1.0, 10.0, 80.0] {
            let rel = (exp(x) - x.exp()).abs() / x.exp();
            assert!(rel < 3e-7, "e^{x}: {} vs {}", exp(x), x.exp());
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_attention() {
        let (d, t) = (64, 37);
        let wave = |n: usize, f: f32| (0..n).map(|i| (i as f32 * f).sin()).collect::<Vec<_>>();
        let (q1, q2) = (wave(d, 0.3), wave(d, 0.7));
        let (keys, values) = (wave(t * d, 0.11), wave(t * d, 0.05));
        type Attend<'a> = &'a dyn Fn(&mut Vec<f32>, &mut [f32], &mut [Partial]);
        let run = |f: Attend| {
            let mut out = vec![0f32; 2 * d];
            f(
                &mut Vec::new(),
                &mut out,
                &mut [Partial { max: 0.0, sum: 0.0 }; 2],
            );
            out
        };
        let queries = [q1.as_slice(), q2.as_slice()];
        let portable =
            run(&|s, o, p| group(&queries, &keys, &values, d, s, o, p, crate::dot_portable));
        let chosen = run(&|s, o, p| decode_group(&queries, &keys, &values, d, s, o, p));
        for (a, b) in portable.iter().zip(&chosen) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}

//! The arithmetic of one decode step's attention for one kv head: the scores of its query
//! heads against every cached key, their softmax, and the weighted sums of the values. Here,
//! in the crate that debug and test builds optimise, so inferbench's instruction counts of a
//! decode step measure optimised code (inferbench's `model::decode_attention` finds the slices).

/// For each of the `queries` (one per query head sharing this kv head, each `d` long),
/// softmax(q·kᵀ / √d)·V over the `t` positions of `keys` and `values` (t × d, row-major),
/// written to `out` (queries × d). `scores` is scratch, reused between calls.
pub fn decode_group(
    queries: &[&[f32]],
    keys: &[f32],
    values: &[f32],
    d: usize,
    scores: &mut Vec<f32>,
    out: &mut [f32],
) {
    let t = keys.len().checked_div(d).unwrap_or(0);
    let scale = (d as f64).sqrt() as f32;
    scores.clear();
    scores.resize(queries.len() * t, 0.0);
    for (h, query) in queries.iter().enumerate() {
        let row = &mut scores[h * t..(h + 1) * t];
        for (s, key) in row.iter_mut().zip(keys.chunks_exact(d)) {
            *s = super::dot(query, key) / scale;
        }
        softmax(row);
    }
    out.fill(0.0);
    for (pos, value) in values.chunks_exact(d).enumerate() {
        for (h, out_h) in out.chunks_mut(d).enumerate() {
            let p = scores[h * t + pos];
            for (acc, v) in out_h.iter_mut().zip(value) {
                *acc += p * v;
            }
        }
    }
}

/// In place, as candle's softmax: subtract the maximum, exponentiate, divide by the sum.
fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in row.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_position_gives_its_value_and_equal_scores_the_mean() {
        let (q1, q2) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        let mut scores = Vec::new();
        let mut out = [0f32; 4];
        decode_group(
            &[&q1, &q2],
            &[3.0, 4.0],
            &[5.0, 6.0],
            2,
            &mut scores,
            &mut out,
        );
        assert_eq!(out, [5.0, 6.0, 5.0, 6.0]);
        // Two keys the query sees alike: the mean of their values.
        let mut out = [0f32; 2];
        decode_group(
            &[&q1],
            &[1.0, 0.0, 1.0, 9.0],
            &[2.0, 0.0, 4.0, 8.0],
            2,
            &mut scores,
            &mut out,
        );
        assert_eq!(out, [3.0, 4.0]);
    }
}

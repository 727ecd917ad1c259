//! Attention for the new positions of a step on the CPU, straight from the KV cache: per
//! head and position, the scores against every cached key it may see (causal), their softmax
//! and the weighted sum of the values, without repeating the K/V heads for grouped queries or
//! materialising score tensors or a mask. candle's path does the same arithmetic as batched
//! matmuls, a mask and a softmax, whose dispatch and copies cost more than the arithmetic at
//! these sizes (`inferbench profile`: attention was a fifth of a SmolLM2 decode step, and
//! with the mask and softmax a tenth of a 32-token prefill). This module finds the slices;
//! the arithmetic is `inferbench_distance::attention::decode_group`, in the crate debug builds
//! optimise.

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};
use inferbench_distance::attention::{self, Partial};

/// Positions a task takes at least, when a kv head's positions are split between tasks.
const MIN_CHUNK: usize = 32;

/// The attention output, (batch, seq, heads × head_dim), for `q` (batch, heads, seq, d) and
/// the cache's `k`, `v` (batch, kv_heads, t, d) whose last `seq` positions are the new ones,
/// each (row, head) block of positions dense: or None when they are not f32 on the CPU laid
/// out so (the caller then takes candle's path). New position `i` sees the cache's first
/// `t - seq + i + 1` positions.
///
/// Each (row, kv head, new position, chunk of positions) is a task on candle's thread pool,
/// taking all the kv head's query heads at once, so each key and value is read from memory
/// once a position. A decode step's positions are split into chunks, merged afterwards, so
/// that there are enough tasks to share out evenly: SmolLM2's three kv heads alone would
/// split 2:1 between two threads. rayon had measured slower than one thread at every size
/// tried on 2 cores; candle's pool keeps its workers spinning between ops.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Option<Tensor>> {
    let (batch, heads, seq, d) = q.dims4()?;
    let (_, kv_heads, t, _) = k.dims4()?;
    if seq == 0 || seq > t || kv_heads == 0 || heads % kv_heads != 0 || v.dims4()? != k.dims4()? {
        return Ok(None);
    }
    let (q_store, q_layout) = q.storage_and_layout();
    let (k_store, k_layout) = k.storage_and_layout();
    let (v_store, v_layout) = v.storage_and_layout();
    let (Some(qs), Some(ks), Some(vs)) = (
        View::of(&q_store, q_layout, d),
        View::of(&k_store, k_layout, d),
        View::of(&v_store, v_layout, d),
    ) else {
        return Ok(None);
    };
    let group = heads / kv_heads;
    let chunks = chunks_for(batch * kv_heads * seq, t);
    // Each (row, kv head, new position, chunk): its query heads, keys and values.
    let mut work = Vec::with_capacity(batch * kv_heads * seq * chunks);
    for row in 0..batch {
        for kv in 0..kv_heads {
            for i in 0..seq {
                let seen = t - seq + i + 1;
                let queries = (kv * group..(kv + 1) * group)
                    .map(|h| qs.block(row, h, i * d, d))
                    .collect::<Option<Vec<_>>>();
                let (Some(queries), Some(keys), Some(values)) = (
                    queries,
                    ks.block(row, kv, 0, seen * d),
                    vs.block(row, kv, 0, seen * d),
                ) else {
                    return Ok(None);
                };
                let chunk_len = seen.div_ceil(chunks);
                for c in 0..chunks {
                    let span = (c * chunk_len).min(seen) * d..((c + 1) * chunk_len).min(seen) * d;
                    work.push((queries.clone(), &keys[span.clone()], &values[span]));
                }
            }
        }
    }
    // A task's run: its queries' outputs (group × d), then each one's Partial as two values.
    let run = group * (d + 2);
    let mut runs = vec![0f32; work.len() * run];
    super::parallel::fill_runs(&mut runs, run, |task, y| {
        let (queries, keys, values) = &work[task];
        let (out, stats) = y.split_at_mut(group * d);
        let mut parts = vec![Partial { max: 0.0, sum: 0.0 }; group];
        let mut scores = Vec::with_capacity(keys.len() / d * group);
        attention::decode_group(queries, keys, values, d, &mut scores, out, &mut parts);
        for (pair, p) in stats.chunks_exact_mut(2).zip(&parts) {
            pair.copy_from_slice(&[p.max, p.sum]);
        }
    });
    drop((q_store, k_store, v_store));
    // Merged into (batch, seq, heads, d): head h of new position i of a row.
    let mut out = vec![0f32; batch * seq * heads * d];
    for (at, y) in out.chunks_exact_mut(d).enumerate() {
        let (row, i, h) = (at / (seq * heads), at / heads % seq, at % heads);
        let (kv, g) = (h / group, h % group);
        let first_task = ((row * kv_heads + kv) * seq + i) * chunks;
        let pieces: Vec<(Partial, &[f32])> = runs[first_task * run..][..chunks * run]
            .chunks_exact(run)
            .filter(|r| r[group * d + 2 * g + 1] > 0.0)
            .map(|r| {
                let stats = &r[group * d + 2 * g..][..2];
                let part = Partial {
                    max: stats[0],
                    sum: stats[1],
                };
                (part, &r[g * d..(g + 1) * d])
            })
            .collect();
        attention::merge(&pieces, y);
    }
    Tensor::from_vec(out, (batch, seq, heads * d), q.device()).map(Some)
}

/// Chunks to split each kv head's positions into, for `tasks` (row, kv head, new position)
/// triples: enough for about four tasks a thread, none under `MIN_CHUNK` positions.
fn chunks_for(tasks: usize, t: usize) -> usize {
    let threads = super::parallel::threads();
    let wanted = (4 * threads).div_ceil(tasks.max(1));
    wanted.min(t / MIN_CHUNK).max(1)
}

/// A 4-D f32 tensor on the CPU whose last two dimensions are dense (a KV cache's view of
/// its first t positions is: only the batch and head strides skip the room left to grow).
struct View<'a> {
    data: &'a [f32],
    start: usize,
    strides: [usize; 2],
}

impl<'a> View<'a> {
    fn of(storage: &'a Storage, layout: &Layout, d: usize) -> Option<View<'a>> {
        let Storage::Cpu(CpuStorage::F32(data)) = storage else {
            return None;
        };
        let (dims, stride) = (layout.dims(), layout.stride());
        if dims.len() != 4 || stride[3] != 1 || (dims[2] > 1 && stride[2] != d) {
            return None;
        }
        Some(View {
            data,
            start: layout.start_offset(),
            strides: [stride[0], stride[1]],
        })
    }

    /// The `len` elements from `offset` into block [i, j].
    fn block(&self, i: usize, j: usize, offset: usize, len: usize) -> Option<&'a [f32]> {
        let at = self.start + i * self.strides[0] + j * self.strides[1] + offset;
        self.data.get(at..at + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, D};

    /// candle's own path, as the model's: repeat the kv heads, scores, the causal mask,
    /// softmax, weighted sum.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, n_rep: usize) -> Tensor {
        let (b, h, seq, d) = q.dims4().unwrap();
        let t = k.dim(2).unwrap();
        let k = candle_transformers::utils::repeat_kv(k.clone(), n_rep).unwrap();
        let v = candle_transformers::utils::repeat_kv(v.clone(), n_rep).unwrap();
        let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
        let mask = candle_transformers::utils::build_causal_mask(seq, t - seq, q.device())
            .unwrap()
            .broadcast_as(scores.shape())
            .unwrap();
        let hidden = Tensor::new(f32::NEG_INFINITY, q.device())
            .unwrap()
            .broadcast_as(scores.shape())
            .unwrap();
        let scores = mask.where_cond(&hidden, &scores).unwrap();
        let p = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        p.matmul(&v.contiguous().unwrap())
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, seq, h * d))
            .unwrap()
    }

    #[test]
    fn matches_candles_path_with_grouped_heads() {
        // (batch, heads, kv heads, new positions, positions, head dim): decode steps grouped
        // 3:1 as SmolLM2, a batch, one query head a kv head, a dimension that is no multiple
        // of 16; prefills (all positions new) and a second chunk of a prompt.
        for (b, h, kvh, seq, t, d) in [
            (1, 9, 3, 1, 7, 64),
            (2, 9, 3, 1, 300, 64),
            (3, 4, 4, 1, 5, 20),
            (1, 9, 3, 40, 40, 64),
            (2, 4, 2, 7, 7, 20),
            (1, 9, 3, 33, 100, 64),
        ] {
            let dev = Device::Cpu;
            let q = Tensor::randn(0f32, 1.0, (b, h, seq, d), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (b, kvh, t, d), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (b, kvh, t, d), &dev).unwrap();
            let ours = attend(&q, &k, &v)
                .unwrap()
                .expect("contiguous f32 on the CPU");
            let theirs = reference(&q, &k, &v, h / kvh);
            // The same keys and values as the first t positions of a larger cache buffer.
            let room = |x: &Tensor| {
                let buffer = Tensor::zeros((b, kvh, t + 5, d), DType::F32, &dev).unwrap();
                buffer.slice_set(x, 2, 0).unwrap();
                buffer.narrow(2, 0, t).unwrap()
            };
            let in_buffer = attend(&q, &room(&k), &room(&v))
                .unwrap()
                .expect("a cache view");
            assert_eq!(
                in_buffer.to_vec3::<f32>().unwrap(),
                ours.to_vec3::<f32>().unwrap()
            );
            let diff = (ours - theirs)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-5, "({b}, {h}, {kvh}, {seq}, {t}, {d}): {diff}");
        }
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 4, 8), candle_core::DType::F32, &dev).unwrap();
        let k = Tensor::zeros((1, 2, 3, 8), candle_core::DType::F32, &dev).unwrap();
        assert!(
            attend(&q, &k, &k).unwrap().is_none(),
            "more new positions than cached"
        );
        let q1 = Tensor::zeros((1, 4, 1, 8), candle_core::DType::F32, &dev).unwrap();
        let k16 = k.to_dtype(candle_core::DType::F16).unwrap();
        assert!(attend(&q1, &k16, &k16).unwrap().is_none(), "f16 cache");
        let strided = Tensor::zeros((1, 2, 8, 3), candle_core::DType::F32, &dev)
            .unwrap()
            .transpose(2, 3)
            .unwrap();
        assert!(
            attend(&q1, &strided, &strided).unwrap().is_none(),
            "positions not dense"
        );
    }
}

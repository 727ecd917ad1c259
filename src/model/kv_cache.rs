//! One layer's cached keys and values, in buffers with room to grow, written in place: a
//! decode step writes its one position instead of copying the whole cache into a new tensor
//! (what concatenating did, every step, in every layer). The buffers grow by doubling, so a
//! long generation copies the cache O(log n) times in all.

use candle_core::{Result, Tensor};

/// Positions of room a new cache gets beyond its prompt before it first grows.
const ROOM: usize = 128;

pub struct KvCache {
    /// (batch, kv_heads, capacity, head_dim); positions from `len` on are unwritten room.
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl KvCache {
    /// Append `k`, `v` (batch, kv_heads, seq, head_dim) to `slot` (a new cache when empty);
    /// views of every position so far.
    pub fn append(slot: &mut Option<KvCache>, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let seq = k.dim(2)?;
        let cache = match slot.take() {
            None => KvCache::with_capacity(k, v, seq + ROOM, 0)?,
            Some(c) if c.len + seq > c.capacity() => {
                let (k_old, v_old) = c.views()?;
                let capacity = (2 * c.capacity()).max(c.len + seq + ROOM);
                KvCache::with_capacity(&k_old, &v_old, capacity, c.len)?
            }
            Some(c) => c,
        };
        let cache = slot.insert(cache);
        cache.k.slice_set(&k.contiguous()?, 2, cache.len)?;
        cache.v.slice_set(&v.contiguous()?, 2, cache.len)?;
        cache.len += seq;
        cache.views()
    }

    /// A cache of `capacity` positions holding the first `len` positions of `k`, `v` (`len`
    /// 0: nothing yet, the shapes only).
    fn with_capacity(k: &Tensor, v: &Tensor, capacity: usize, len: usize) -> Result<KvCache> {
        let (batch, heads, _, dim) = k.dims4()?;
        let empty = |like: &Tensor| {
            Tensor::zeros((batch, heads, capacity, dim), like.dtype(), like.device())
        };
        let cache = KvCache {
            k: empty(k)?,
            v: empty(v)?,
            len,
        };
        if len > 0 {
            cache
                .k
                .slice_set(&k.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
            cache
                .v
                .slice_set(&v.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
        }
        Ok(cache)
    }

    fn capacity(&self) -> usize {
        self.k.dim(2).unwrap_or(0)
    }

    /// The first `len` positions: views into the buffers (no copy).
    fn views(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            self.k.narrow(2, 0, self.len)?,
            self.v.narrow(2, 0, self.len)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, IndexOp};

    #[test]
    fn appends_grow_the_buffer_and_keep_every_position() {
        let dev = Device::Cpu;
        let step = |i: usize, seq: usize| Tensor::full(i as f32, (2, 3, seq, 4), &dev).unwrap();
        let mut slot = None;
        // A prefill of 5 positions, then single positions past the first room (5 + 128).
        let (k, _) = KvCache::append(&mut slot, &step(0, 5), &step(0, 5)).unwrap();
        assert_eq!(k.dims(), &[2, 3, 5, 4]);
        let mut expected: Vec<f32> = vec![0.0; 5];
        for i in 1..=200 {
            let (k, v) = KvCache::append(&mut slot, &step(i, 1), &step(i, 1)).unwrap();
            expected.push(i as f32);
            assert_eq!(k.dim(2).unwrap(), 5 + i);
            if i == 1 || i == 129 || i == 200 {
                // Every position of every row and head, as the concatenation would hold it.
                let got: Vec<f32> = k.i((1, 2, .., 0)).unwrap().to_vec1().unwrap();
                assert_eq!(got, expected, "after {i} steps");
                assert_eq!(v.to_dtype(DType::F32).unwrap().dims(), k.dims());
            }
        }
        assert!(slot.as_ref().unwrap().capacity() >= 205);
    }
}

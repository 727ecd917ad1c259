//! Building the graph here, by HNSW insertion as hnswlib does it, straight into the flat
//! layout.
//!
//! Why not hnsw_rs's build: it selects a new node's links with HNSW's diversity rule, but
//! when a neighbour's list overflows with the link back it keeps the nearest and drops the
//! farthest, which cuts the links between clusters (see reselect.rs), and its build is
//! about 3x hnswlib's time. Here both directions use the rule, as hnswlib's do:
//! - a node's level is drawn with P(level >= l) = M^-l, from a seed and the node id alone,
//!   so the levels do not depend on thread timing;
//! - a node greedily descends the layers above its level, then on each of its layers a beam
//!   of width ef_construction finds candidates, of which up to M are kept by the rule;
//! - each kept neighbour links back: into a free slot, or, when its list is full (2M on
//!   layer 0, M above), its list and the new node are chosen again by the rule.
//!
//! Threads insert nodes concurrently. A node's lists are written under that node's lock;
//! searches read them without one, as atomics (a list read mid-rewrite still names only real
//! nodes, and the search is a heuristic anyway), so reading costs what a plain load does.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::layout::{upper_slots, NO_UPPER};
use crate::rows::Rows;
use crate::search::{beam, greedy, with_scratch, Near, Walk};
use crate::{FlatGraph, Space};

/// The highest level a node may get (hnsw_rs reads 16 layers, 0..=15).
pub const MAX_LEVEL: u8 = 15;
/// Nodes a thread takes at a time: few enough that threads finish together.
const CHUNK: usize = 16;

/// How a graph is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildParams {
    /// Links kept per node and layer (2M on layer 0), 2..=255.
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seeds the level of each node.
    pub seed: u64,
    pub threads: usize,
}

/// Why a build stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The stop flag was raised.
    Interrupted,
    /// The rows are not `nodes × dim` floats, or the parameters are out of range.
    Input(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Interrupted => write!(f, "interrupted while building the graph"),
            BuildError::Input(why) => write!(f, "cannot build the graph: {why}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Build a graph over `vectors` (row-major, `dim` floats per node; node ids are row
/// numbers). `stop` is checked between small batches of inserts; `progress` is called from
/// this thread with the number of nodes inserted, about ten times a second.
pub fn build(
    space: Space,
    dim: usize,
    vectors: &[f32],
    params: BuildParams,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(u64),
) -> Result<FlatGraph, BuildError> {
    if dim == 0 || !vectors.len().is_multiple_of(dim) {
        return Err(BuildError::Input(format!(
            "{} floats are not rows of {dim}",
            vectors.len()
        )));
    }
    if !(2..=255).contains(&params.m) || params.ef_construction == 0 {
        return Err(BuildError::Input(format!(
            "M must be 2..=255 and ef_construction at least 1, got {} and {}",
            params.m, params.ef_construction
        )));
    }
    let n = vectors.len() / dim;
    if n >= NO_UPPER as usize {
        return Err(BuildError::Input(format!(
            "{n} nodes do not fit 32-bit ids"
        )));
    }
    let graph = Growing::new(space, dim, vectors, params);
    if n > 0 {
        graph.insert_all(params.threads.max(1), stop, progress)?;
    }
    Ok(graph.finish())
}

/// A graph whose links are being written by several threads.
struct Growing {
    rows: Rows,
    levels: Vec<u8>,
    m: usize,
    ef: usize,
    base_slot: usize,
    base: Vec<AtomicU32>,
    upper_start: Vec<u32>,
    upper_slot: usize,
    upper: Vec<AtomicU32>,
    /// One per node: held while its lists are rewritten.
    locks: Vec<Mutex<()>>,
    /// The entry point and the top layer; held through the insertion of a node that rises
    /// above the top, so no search starts below it meanwhile.
    entry: Mutex<(u32, u8)>,
}

impl Growing {
    fn new(space: Space, dim: usize, vectors: &[f32], params: BuildParams) -> Growing {
        let n = vectors.len() / dim;
        let mut rows = Rows::new(space, dim, n);
        for (i, v) in vectors.chunks_exact(dim).enumerate() {
            rows.set(i as u32, v);
        }
        let levels: Vec<u8> = (0..n as u64)
            .map(|id| draw_level(params.seed, id, params.m))
            .collect();
        let (upper_start, upper_count) = upper_slots(&levels);
        let (base_slot, upper_slot) = (2 * params.m + 1, params.m + 1);
        let zeros = |len: usize| crate::pages::filled(len, || AtomicU32::new(0));
        let first = (0, levels.first().copied().unwrap_or(0));
        Growing {
            rows,
            m: params.m,
            ef: params.ef_construction,
            base_slot,
            base: zeros(n * base_slot),
            upper_start,
            upper_slot,
            upper: zeros(upper_count * upper_slot),
            locks: (0..n).map(|_| Mutex::new(())).collect(),
            levels,
            entry: Mutex::new(first),
        }
    }

    /// Insert nodes 1.. (node 0 is the first entry point) on `threads` threads, reporting
    /// progress from this one.
    fn insert_all(
        &self,
        threads: usize,
        stop: &AtomicBool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), BuildError> {
        let n = self.levels.len();
        let next = AtomicUsize::new(1);
        let done = AtomicU64::new(1);
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= n {
                            return;
                        }
                        let end = (start + CHUNK).min(n);
                        for node in start..end {
                            self.insert(node as u32);
                        }
                        done.fetch_add((end - start) as u64, Ordering::Relaxed);
                    })
                })
                .collect();
            while !workers.iter().all(|w| w.is_finished()) {
                progress(done.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        progress(done.load(Ordering::Relaxed));
        if stop.load(Ordering::Relaxed) && done.load(Ordering::Relaxed) < n as u64 {
            return Err(BuildError::Interrupted);
        }
        Ok(())
    }

    fn insert(&self, node: u32) {
        let level = self.levels[node as usize];
        let guard = self.entry.lock().unwrap_or_else(|e| e.into_inner());
        let (entry, top) = *guard;
        // A new top layer: keep the lock, so no other insert starts from below it.
        let rising = if level > top {
            Some(guard)
        } else {
            drop(guard);
            None
        };
        let query = self.rows.get(node);
        let mut at = Near {
            dist: self.rows.distance(query, entry),
            id: entry,
        };
        for layer in (level.saturating_add(1)..=top).rev() {
            at = greedy(self, query, at, layer);
        }
        // The node's own lists first, every layer; the links back to it only then. A node
        // that others could reach with its lower lists still empty would strand every search
        // that descends through it meanwhile (a starved thread can leave it so for a while).
        let mut chosen_per_layer = Vec::with_capacity(usize::from(level) + 1);
        for layer in (0..=level.min(top)).rev() {
            let mut found = with_scratch(|s| beam(self, query, &[at], layer, self.ef, s));
            found.retain(|f| f.id != node);
            let Some(&nearest) = found.first() else {
                continue;
            };
            let chosen = self.diverse(&found, self.m);
            self.add_links(node, layer, &chosen);
            chosen_per_layer.push((layer, chosen));
            at = nearest;
        }
        for (layer, chosen) in chosen_per_layer {
            for neighbour in chosen {
                self.add_links(neighbour, layer, &[node]);
            }
        }
        if let Some(mut guard) = rising {
            *guard = (node, level);
        }
    }

    /// Add `new` to `node`'s list on `layer`; a list that would overflow is chosen again
    /// by the rule from its links and the new ones.
    fn add_links(&self, node: u32, layer: u8, new: &[u32]) {
        let capacity = self.capacity(layer);
        let _lock = self.lock(node);
        let mut links = self.with_links(node, layer, |l| l.to_vec());
        let before = links.len();
        for &id in new {
            if id != node && !links.contains(&id) {
                links.push(id);
            }
        }
        if links.len() == before {
            return;
        }
        if links.len() <= capacity {
            self.write(node, layer, &links);
            return;
        }
        let base = self.rows.get(node);
        let mut candidates: Vec<Near> = links
            .iter()
            .map(|&id| Near {
                dist: self.rows.distance(base, id),
                id,
            })
            .collect();
        candidates.sort_unstable();
        self.write(node, layer, &self.diverse(&candidates, capacity));
    }

    /// HNSW's rule over `candidates` (nearest first): keep a candidate when it is nearer to
    /// the base node than to every one kept so far, until `max` are kept.
    fn diverse(&self, candidates: &[Near], max: usize) -> Vec<u32> {
        let mut kept: Vec<u32> = Vec::with_capacity(max);
        for c in candidates {
            if kept.len() == max {
                break;
            }
            let v = self.rows.get(c.id);
            if kept.iter().all(|&k| self.rows.distance(v, k) >= c.dist) {
                kept.push(c.id);
            }
        }
        kept
    }

    fn lock(&self, node: u32) -> std::sync::MutexGuard<'_, ()> {
        self.locks[node as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn capacity(&self, layer: u8) -> usize {
        if layer == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    /// A node's `[count, ids...]` slot on a layer it is on.
    fn slot(&self, node: u32, layer: u8) -> &[AtomicU32] {
        if layer == 0 {
            let at = node as usize * self.base_slot;
            &self.base[at..at + self.base_slot]
        } else {
            let start = self.upper_start[node as usize] as usize + layer as usize - 1;
            &self.upper[start * self.upper_slot..(start + 1) * self.upper_slot]
        }
    }

    /// Write a list (caller holds the node's lock): the ids, then the count, so a reader
    /// that sees the count sees ids written for it.
    fn write(&self, node: u32, layer: u8, ids: &[u32]) {
        let slot = self.slot(node, layer);
        for (cell, &id) in slot[1..].iter().zip(ids) {
            cell.store(id, Ordering::Relaxed);
        }
        slot[0].store(ids.len() as u32, Ordering::Release);
    }

    fn finish(self) -> FlatGraph {
        let (entry, top_level) = self.entry.into_inner().unwrap_or_else(|e| e.into_inner());
        // Same size and alignment: collected in place, no second copy.
        let plain = |v: Vec<AtomicU32>| v.into_iter().map(AtomicU32::into_inner).collect();
        FlatGraph {
            rows: self.rows,
            levels: self.levels,
            base_slot: self.base_slot,
            base_links: plain(self.base),
            upper_start: self.upper_start,
            upper_slot: self.upper_slot,
            upper_links: plain(self.upper),
            entry,
            top_level,
        }
    }
}

impl Walk for Growing {
    fn rows(&self) -> &Rows {
        &self.rows
    }

    fn nodes(&self) -> usize {
        self.levels.len()
    }

    #[inline]
    fn prefetch_links(&self, node: u32, layer: u8) {
        if layer == 0 {
            crate::rows::prefetch_ptr(self.slot(node, 0).as_ptr().cast());
        }
    }

    #[inline]
    fn with_links<R>(&self, node: u32, layer: u8, f: impl FnOnce(&[u32]) -> R) -> R {
        if layer > self.levels[node as usize] {
            return f(&[]);
        }
        let slot = self.slot(node, layer);
        let count = (slot[0].load(Ordering::Acquire) as usize).min(slot.len() - 1);
        let mut buf = [0u32; 64];
        let mut heap = Vec::new();
        let ids: &mut [u32] = if count <= buf.len() {
            &mut buf[..count]
        } else {
            heap.resize(count, 0);
            &mut heap
        };
        for (id, cell) in ids.iter_mut().zip(&slot[1..]) {
            *id = cell.load(Ordering::Relaxed);
        }
        f(ids)
    }
}

/// A node's level: floor(-ln(u) / ln(M)) for u uniform in (0, 1], capped, from the seed
/// and the id alone.
fn draw_level(seed: u64, id: u64, m: usize) -> u8 {
    let bits = splitmix64(seed ^ splitmix64(id));
    let u = ((bits >> 11) + 1) as f64 / (1u64 << 53) as f64;
    let level = (-u.ln() / (m as f64).ln()).floor();
    level.min(MAX_LEVEL as f64) as u8
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` points of `dim` in loose clusters, from a fixed seed.
    fn points(n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim)
            .map(|i| {
                let cluster = (i / dim) % 7;
                let noise = (splitmix64(i as u64) >> 40) as f32 / (1u64 << 24) as f32;
                cluster as f32 * 3.0 + noise
            })
            .collect()
    }

    fn exact(v: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<u32> {
        let mut all: Vec<(f32, u32)> = v
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| {
                let d: f32 = r.iter().zip(q).map(|(a, b)| (a - b) * (a - b)).sum();
                (d, i as u32)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        all.into_iter().take(k).map(|x| x.1).collect()
    }

    #[test]
    fn a_built_graph_finds_the_true_neighbours_from_every_thread_count() {
        let (n, dim) = (3000, 12);
        let v = points(n, dim);
        for threads in [1, 3] {
            let params = BuildParams {
                m: 8,
                ef_construction: 64,
                seed: 7,
                threads,
            };
            let mut calls = 0;
            let mut g = build(
                Space::SquaredL2,
                dim,
                &v,
                params,
                &AtomicBool::new(false),
                &mut |_| calls += 1,
            )
            .unwrap();
            assert!(calls > 0, "progress is reported");
            assert_eq!(g.len(), n);
            // One thread builds the same graph every time, every node reachable. Threads
            // racing on a hub's list can (rarely, timing-dependent) prune the last link into
            // a node: the searcher reports and repairs those, as here.
            let as_built = g.reachability().unreachable;
            if threads == 1 {
                assert!(as_built.is_empty(), "{as_built:?}");
            } else {
                assert!(
                    as_built.len() <= 3,
                    "{} unreachable as built",
                    as_built.len()
                );
                assert!(g.link_unreachable().is_empty());
            }
            assert!(g.top_level() >= 1, "levels are drawn");
            assert!((0..n as u32).all(|i| g.neighbours(i, 0).len() <= 16));
            let mut hits = 0;
            for qi in (0..n).step_by(30) {
                let q: Vec<f32> = v[qi * dim..(qi + 1) * dim]
                    .iter()
                    .map(|x| x + 0.01)
                    .collect();
                let truth = exact(&v, dim, &q, 10);
                let found = g.search(&q, 10, 64);
                hits += found.iter().filter(|f| truth.contains(&f.0)).count();
            }
            let recall = hits as f64 / 1000.0;
            assert!(recall >= 0.95, "{threads} threads: recall {recall}");
        }
    }

    #[test]
    fn levels_follow_the_seed_and_the_id_only() {
        let a: Vec<u8> = (0..10_000).map(|i| draw_level(3, i, 16)).collect();
        let b: Vec<u8> = (0..10_000).map(|i| draw_level(3, i, 16)).collect();
        assert_eq!(a, b);
        // P(level >= 1) = 1/16.
        let above = a.iter().filter(|&&l| l >= 1).count();
        assert!(
            (450..=800).contains(&above),
            "{above} of 10000 above layer 0"
        );
    }

    #[test]
    fn a_raised_stop_flag_interrupts_and_bad_rows_are_refused() {
        let v = points(500, 4);
        let params = BuildParams {
            m: 4,
            ef_construction: 16,
            seed: 1,
            threads: 2,
        };
        let stopped = build(
            Space::SquaredL2,
            4,
            &v,
            params,
            &AtomicBool::new(true),
            &mut |_| {},
        );
        assert_eq!(stopped.err(), Some(BuildError::Interrupted));
        let bad = build(
            Space::SquaredL2,
            3,
            &v[..10],
            params,
            &AtomicBool::new(false),
            &mut |_| {},
        );
        assert!(bad.err().unwrap().to_string().contains("not rows of 3"));
    }
}

//! The stored vectors: one 64-byte-aligned row per node, normalised for `UnitDot`, and the
//! distance from a query to a row.

use inferbench_distance::{dot, squared_l2};

use crate::Space;

/// Floats per block: one 64-byte cache line.
const BLOCK: usize = 16;

/// One cache line of a stored vector; rows start on a line so a row's first prefetch fetches
/// its first 16 floats.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([f32; BLOCK]);

pub(crate) struct Rows {
    pub(crate) space: Space,
    pub(crate) dim: usize,
    row_blocks: usize,
    blocks: Vec<Block>,
}

impl Rows {
    /// `nodes` rows of zeros.
    pub(crate) fn new(space: Space, dim: usize, nodes: usize) -> Rows {
        let row_blocks = dim.div_ceil(BLOCK).max(1);
        Rows {
            space,
            dim,
            row_blocks,
            blocks: crate::pages::filled(row_blocks * nodes, || Block([0.0; BLOCK])),
        }
    }

    /// Store a node's vector (`dim` values), normalised to unit length for `UnitDot`.
    pub(crate) fn set(&mut self, node: u32, vector: &[f32]) {
        let start = node as usize * self.row_blocks;
        let row = &mut self.blocks[start..start + self.row_blocks];
        let scale = match self.space {
            Space::SquaredL2 => 1.0,
            Space::UnitDot => unit_scale(vector),
        };
        for (i, x) in vector.iter().enumerate() {
            row[i / BLOCK].0[i % BLOCK] = x * scale;
        }
    }

    /// A node's stored vector.
    #[inline]
    pub(crate) fn get(&self, node: u32) -> &[f32] {
        let start = node as usize * self.row_blocks;
        let blocks = &self.blocks[start..start + self.row_blocks];
        // SAFETY: a Block is exactly BLOCK f32s (repr(C), no padding: 64 bytes of f32s), so a
        // run of blocks is a run of f32s of BLOCK times its length, equally aligned or better.
        let floats = unsafe {
            std::slice::from_raw_parts(blocks.as_ptr().cast::<f32>(), blocks.len() * BLOCK)
        };
        &floats[..self.dim]
    }

    /// The distance from a prepared query (see [`Rows::prepare`]) or a stored vector to a
    /// node, in the space's units.
    #[inline]
    pub(crate) fn distance(&self, query: &[f32], node: u32) -> f32 {
        let v = self.get(node);
        match self.space {
            Space::SquaredL2 => squared_l2(query, v),
            Space::UnitDot => 1.0 - dot(query, v),
        }
    }

    /// A query made comparable with the rows: normalised for `UnitDot`.
    pub(crate) fn prepare(&self, query: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(query);
        if self.space == Space::UnitDot {
            let scale = unit_scale(query);
            out.iter_mut().for_each(|x| *x *= scale);
        }
    }

    /// Ask for a node's vector ahead of its distance (the first two cache lines; the hardware
    /// prefetcher follows a sequential read from there).
    #[inline(always)]
    pub(crate) fn prefetch(&self, node: u32) {
        let v = self.get(node);
        prefetch_ptr(v.as_ptr().cast());
        if v.len() > BLOCK {
            prefetch_ptr(v[BLOCK..].as_ptr().cast());
        }
    }

    /// Where the rows lie in memory: (address, bytes).
    pub(crate) fn span(&self) -> (usize, usize) {
        crate::pages::span(&self.blocks)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.blocks.len() * std::mem::size_of::<Block>()
    }
}

/// 1/|v|, or 1 for the zero vector (left as it is).
fn unit_scale(v: &[f32]) -> f32 {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        1.0 / norm
    } else {
        1.0
    }
}

/// Ask for the cache line at `p` ahead of its use.
#[inline(always)]
pub(crate) fn prefetch_ptr(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that never faults.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

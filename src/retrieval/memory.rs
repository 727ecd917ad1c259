//! Whether an index of n × dim fits in memory, estimated before anything is allocated.

use anyhow::{bail, Result};

/// Bytes the run will hold at its peak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Our copy of the vectors (generation, ground truth).
    pub vectors: u64,
    /// hnsw_rs keeps its own copy of every vector.
    pub index_vectors: u64,
    /// Links and per-point bookkeeping: 2·M links of 16 bytes on layer 0, plus ~200 bytes.
    pub graph: u64,
    /// The flat layout searched (`--search flat`), made while hnsw_rs's structure is still
    /// held: vectors padded to 64-byte lines and 2·M+1 link slots of 4 bytes.
    pub layout: u64,
}

impl MemoryEstimate {
    pub fn total(&self) -> u64 {
        self.vectors + self.index_vectors + self.graph + self.layout
    }
}

pub fn estimate(n: usize, dim: usize, m: usize) -> MemoryEstimate {
    let (n, dim, m) = (n as u64, dim as u64, m as u64);
    let vectors = n.saturating_mul(dim).saturating_mul(4);
    MemoryEstimate {
        vectors,
        index_vectors: vectors,
        graph: n.saturating_mul(2 * m * 16 + 200),
        layout: n.saturating_mul(dim.div_ceil(16) * 64 + (2 * m + 1) * 4 + 8),
    }
}

/// Refuse, with the figures, a size that would not fit.
pub fn check_fits(n: usize, dim: usize, m: usize) -> Result<()> {
    check_against(
        estimate(n, dim, m),
        crate::device::available_memory(),
        n,
        dim,
    )
}

fn check_against(e: MemoryEstimate, available: Option<u64>, n: usize, dim: usize) -> Result<()> {
    use crate::device::gib;
    if let Some(avail) = available {
        if e.total() > avail {
            bail!(
                "{n} vectors × {dim} need about {:.1} GiB ({:.1} GiB of vectors, {:.1} GiB more for the index's copy, {:.1} GiB of graph, {:.1} GiB for the flat layout searched), but only {:.1} GiB is available: lower --n or --dim",
                gib(e.total()),
                gib(e.vectors),
                gib(e.index_vectors),
                gib(e.graph),
                gib(e.layout),
                gib(avail)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_384_d_vectors_need_about_5_gib_and_too_much_is_refused() {
        let e = estimate(1_000_000, 384, 16);
        assert_eq!(e.vectors, 1_536_000_000);
        let gib = e.total() as f64 / (1u64 << 30) as f64;
        assert!((4.5..6.0).contains(&gib), "{gib}");
        assert!(check_against(e, Some(8 << 30), 1_000_000, 384).is_ok());
        let err = check_against(e, Some(1 << 30), 1_000_000, 384).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("1.0 GiB is available") && msg.contains("5."),
            "{msg}"
        );
        // Unknown availability: nothing to refuse on.
        assert!(check_against(e, None, 1_000_000, 384).is_ok());
    }
}

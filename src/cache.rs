//! Where inferbench keeps what is expensive to recompute (indexes, ground truth, embeddings,
//! machine peaks), and stable keys for file names. A leaf: it imports nothing of ours.

use std::path::PathBuf;

use serde::Serialize;

/// Where cached files go: `--cache-dir`, else `$INFERBENCH_CACHE`, else the user's cache folder.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INFERBENCH_CACHE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("inferbench")
}

/// A short, stable file-name key for a set of parameters.
pub fn key<T: Serialize>(params: &T) -> String {
    let json = serde_json::to_string(params).unwrap_or_default();
    format!("{:016x}", checksum(json.as_bytes()))
}

/// A fast 64-bit checksum (not cryptographic): catches truncation and flipped bytes.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3 ^ bytes.len() as u64;
    let mix = |h: u64, w: u64| {
        let h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    };
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for w in words {
        h = mix(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
    }
    let mut last = [0u8; 8];
    last[..tail.len()].copy_from_slice(tail);
    mix(h, u64::from_le_bytes(last))
}

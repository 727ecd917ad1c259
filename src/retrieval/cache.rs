//! The on-disk cache of expensive results (ground truth, embeddings, indexes), keyed by the
//! parameters that produced them. Each file carries its parameters and a checksum, so a
//! stale, truncated or corrupted entry is detected, reported and recomputed, never trusted.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

const MAGIC: &[u8; 8] = b"IBCACHE1";

pub use crate::cache::{checksum, default_dir, key};

pub fn file_checksum(path: &Path) -> Result<u64> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(checksum(&bytes))
}

/// What a cache lookup found.
#[derive(Debug)]
pub enum Lookup<T> {
    Hit(T),
    Missing,
    /// There, but unusable: the reason says why (it is rebuilt).
    Unusable(String),
}

/// Write `payload` with its parameters to `path`, atomically (temp file, then rename).
pub fn write_entry<P: Serialize>(path: &Path, params: &P, payload: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the cache folder", dir.display()))?;
    }
    let header = serde_json::to_vec(params)?;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = BufWriter::new(File::create(&tmp)?);
        f.write_all(MAGIC)?;
        f.write_all(&(header.len() as u64).to_le_bytes())?;
        f.write_all(&header)?;
        f.write_all(&(payload.len() as u64).to_le_bytes())?;
        f.write_all(payload)?;
        f.write_all(&checksum(payload).to_le_bytes())?;
        f.into_inner()?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("{}: cannot write the cache entry", path.display()))
}

/// Read an entry written by `write_entry`, if its parameters are `params` and it is intact.
pub fn read_entry<P: Serialize>(path: &Path, params: &P) -> Lookup<Vec<u8>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Missing,
        Err(e) => return Lookup::Unusable(format!("cannot open: {e}")),
    };
    let expected = serde_json::to_vec(params).unwrap_or_default();
    match read_checked(BufReader::new(file), &expected) {
        Ok(payload) => Lookup::Hit(payload),
        Err(why) => Lookup::Unusable(why),
    }
}

fn read_checked(mut r: impl Read, expected_header: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let truncated = |e: std::io::Error| format!("truncated or unreadable ({e})");
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(truncated)?;
    if &magic != MAGIC {
        return Err("not an inferbench cache file".into());
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len).map_err(truncated)?;
    let header_len = u64::from_le_bytes(len);
    if header_len != expected_header.len() as u64 {
        return Err("made with other parameters".into());
    }
    let mut header = vec![0u8; header_len as usize];
    r.read_exact(&mut header).map_err(truncated)?;
    if header != expected_header {
        return Err("made with other parameters".into());
    }
    r.read_exact(&mut len).map_err(truncated)?;
    let payload_len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| "corrupt length")?;
    if payload_len > (1 << 40) {
        return Err("corrupt length".into());
    }
    let mut payload = Vec::new();
    r.by_ref()
        .take(payload_len as u64)
        .read_to_end(&mut payload)
        .map_err(truncated)?;
    if payload.len() != payload_len {
        return Err(format!(
            "truncated: {} of {payload_len} payload bytes",
            payload.len()
        ));
    }
    let mut sum = [0u8; 8];
    r.read_exact(&mut sum).map_err(truncated)?;
    if u64::from_le_bytes(sum) != checksum(&payload) {
        return Err("checksum mismatch: the file is corrupted".into());
    }
    Ok(payload)
}

pub fn f32s_to_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn bytes_to_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

pub fn u32s_to_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

pub fn bytes_to_u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gt.bin");
        let payload = f32s_to_bytes(&[1.0, 2.5, -3.0]);
        write_entry(&path, &("gt", 10), &payload).unwrap();
        match read_entry(&path, &("gt", 10)) {
            Lookup::Hit(p) => assert_eq!(bytes_to_f32s(&p), [1.0, 2.5, -3.0]),
            other => panic!("{other:?}"),
        }
        let why = |l: Lookup<Vec<u8>>| match l {
            Lookup::Unusable(why) => why,
            other => panic!("{other:?}"),
        };
        assert!(why(read_entry(&path, &("gt", 11))).contains("other parameters"));
        assert!(matches!(
            read_entry(&dir.path().join("none"), &1),
            Lookup::Missing
        ));
        let mut bytes = std::fs::read(&path).unwrap();
        let flipped = bytes.len() - 10;
        bytes[flipped] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(why(read_entry(&path, &("gt", 10))).contains("checksum"));
        std::fs::write(&path, &bytes[..bytes.len() - 12]).unwrap();
        assert!(why(read_entry(&path, &("gt", 10))).contains("truncated"));
    }
}

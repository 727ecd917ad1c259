//! The `.fvecs` / `.ivecs` layout of the ANN benchmark data sets (SIFT, GIST, ...): each
//! vector is a little-endian i32 dimension followed by that many f32 (fvecs) or i32
//! (ivecs). Written so peers (hnswlib, faiss, ann-benchmarks) run on exactly our data, and
//! read back so we run on theirs.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::dataset::VectorSet;
use super::ground_truth::GroundTruth;

/// Largest dimension a header may declare: anything above is not a header.
const MAX_DIM: i32 = 1 << 20;

/// The vectors of an fvecs file.
pub fn read_fvecs(path: &Path) -> Result<VectorSet> {
    let (dim, words) = read_records(path, "fvecs")?;
    let mut data = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let v = f32::from_bits(*w);
        if !v.is_finite() {
            bail!(
                "{}: vector {}, value {}: {v} is not a finite number",
                path.display(),
                i / dim,
                i % dim + 1
            );
        }
        data.push(v);
    }
    VectorSet::new(dim, data)
}

/// The rows of an ivecs file (each `cols` long), as read.
pub fn read_ivecs(path: &Path) -> Result<(usize, Vec<i32>)> {
    let (cols, words) = read_records(path, "ivecs")?;
    Ok((cols, words.into_iter().map(|w| w as i32).collect()))
}

/// Every record's payload as raw 32-bit words, all records of one dimension.
fn read_records(path: &Path, layout: &str) -> Result<(usize, Vec<u32>)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read the {layout} file", path.display()))?;
    if bytes.is_empty() {
        bail!("{}: empty, no vectors", path.display());
    }
    let mut dim = None;
    let mut words = Vec::new();
    let mut at = 0;
    let mut record = 0;
    while at < bytes.len() {
        let Some(head) = bytes.get(at..at + 4) else {
            bail!(
                "{}: truncated: {} stray bytes after vector {} (not a whole dimension header)",
                path.display(),
                bytes.len() - at,
                record
            );
        };
        let d = i32::from_le_bytes(head.try_into().expect("4 bytes"));
        if d <= 0 || d > MAX_DIM {
            bail!(
                "{}: vector {record} (byte {at}): dimension header {d} is not a dimension; \
                 is this a {layout} file?",
                path.display()
            );
        }
        match dim {
            None => dim = Some(d),
            Some(first) if first != d => bail!(
                "{}: vector {record} (byte {at}) declares dimension {d}, but the first declares \
                 {first}: a wrong dimension header, or not a {layout} file",
                path.display()
            ),
            _ => {}
        }
        let need = d as usize * 4;
        let body = bytes.get(at + 4..at + 4 + need).with_context(|| {
            format!(
                "{}: truncated: vector {record} needs {need} bytes, {} remain",
                path.display(),
                bytes.len() - at - 4
            )
        })?;
        words.extend(
            body.chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))),
        );
        at += 4 + need;
        record += 1;
    }
    Ok((dim.unwrap_or(0) as usize, words))
}

pub fn write_fvecs(path: &Path, set: &VectorSet) -> Result<()> {
    let rows = set.rows().map(|r| r.iter().map(|v| v.to_bits()));
    write_records(path, set.dim, rows)
}

/// Ground truth as ivecs: each query's k ids, nearest first.
pub fn write_ivecs(path: &Path, truth: &GroundTruth) -> Result<()> {
    let rows = (0..truth.queries()).map(|q| truth.ids_of(q).iter().copied());
    write_records(path, truth.k, rows)
}

fn write_records<R: Iterator<Item = u32>>(
    path: &Path,
    dim: usize,
    rows: impl Iterator<Item = R>,
) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create it", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let head = (dim as i32).to_le_bytes();
    let write = |out: &mut std::io::BufWriter<std::fs::File>| -> std::io::Result<()> {
        for row in rows {
            out.write_all(&head)?;
            for w in row {
                out.write_all(&w.to_le_bytes())?;
            }
        }
        out.flush()
    };
    write(&mut out).with_context(|| format!("{}: cannot write it", path.display()))
}

/// Ground truth from an ivecs file, checked against the data it is for: one row per query,
/// at least k ids each, every id a base vector. Distances are recomputed exactly (the
/// file holds none) and the first k kept, nearest first.
pub fn read_ground_truth(
    path: &Path,
    base: &VectorSet,
    queries: &VectorSet,
    k: usize,
    distance: impl Fn(&[f32], &[f32]) -> f32,
) -> Result<GroundTruth> {
    let (cols, ids) = read_ivecs(path)?;
    truth_from_ids(
        &path.display().to_string(),
        cols,
        &ids,
        base,
        queries,
        k,
        distance,
    )
}

/// Ground truth from a table of ids (`cols` per query, nearest first), its distances
/// recomputed; `source` names the file (and dataset) in errors.
pub fn truth_from_ids(
    source: &str,
    cols: usize,
    ids: &[i32],
    base: &VectorSet,
    queries: &VectorSet,
    k: usize,
    distance: impl Fn(&[f32], &[f32]) -> f32,
) -> Result<GroundTruth> {
    let rows = ids.len() / cols.max(1);
    if rows != queries.len() {
        bail!(
            "{source}: {rows} rows of ground truth for {} queries",
            queries.len()
        );
    }
    if cols < k {
        bail!("{source}: {cols} neighbours per query, fewer than k = {k}");
    }
    let mut truth = GroundTruth {
        k,
        ids: Vec::with_capacity(rows * k),
        distances: Vec::with_capacity(rows * k),
    };
    for q in 0..rows {
        let mut row: Vec<(f32, u32)> = Vec::with_capacity(k);
        for (j, &id) in ids[q * cols..q * cols + k].iter().enumerate() {
            if id < 0 || id as usize >= base.len() {
                bail!(
                    "{source}: query {q}, neighbour {}: id {id} is not one of the {} base vectors",
                    j + 1,
                    base.len()
                );
            }
            row.push((distance(queries.row(q), base.row(id as usize)), id as u32));
        }
        row.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        truth.ids.extend(row.iter().map(|r| r.1));
        truth.distances.extend(row.iter().map(|r| r.0));
    }
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> VectorSet {
        VectorSet::new(3, vec![0.0, 1.0, 2.0, -1.5, 2.5, 1e-7]).unwrap()
    }

    #[test]
    fn fvecs_and_ivecs_round_trip_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.fvecs");
        write_fvecs(&f, &set()).unwrap();
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 2 * (4 + 12));
        assert_eq!(read_fvecs(&f).unwrap(), set());
        let truth = GroundTruth {
            k: 2,
            ids: vec![1, 0, 0, 1],
            distances: vec![0.0; 4],
        };
        let i = dir.path().join("gt.ivecs");
        write_ivecs(&i, &truth).unwrap();
        assert_eq!(read_ivecs(&i).unwrap(), (2, vec![1, 0, 0, 1]));
    }

    #[test]
    fn bad_files_are_named_with_the_vector_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.fvecs");
        write_fvecs(&f, &set()).unwrap();
        let good = std::fs::read(&f).unwrap();
        let err = |bytes: &[u8]| {
            std::fs::write(&f, bytes).unwrap();
            format!("{:#}", read_fvecs(&f).unwrap_err())
        };
        let e = err(&good[..good.len() - 2]);
        assert!(
            e.contains("a.fvecs") && e.contains("truncated: vector 1 needs 12 bytes"),
            "{e}"
        );
        let mut other = good.clone();
        other[16] = 4; // the second header says 4
        assert!(err(&other).contains("vector 1 (byte 16) declares dimension 4"));
        let mut huge = good.clone();
        huge[3] = 0x7f;
        assert!(err(&huge).contains("is not a dimension"));
        assert!(err(&[]).contains("empty"));
        assert!(err(&good[..2]).contains("stray bytes"));
        let mut nan = good.clone();
        nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(err(&nan).contains("vector 0, value 1: NaN"));
    }

    #[test]
    fn ground_truth_files_are_checked_against_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let i = dir.path().join("gt.ivecs");
        let base = set();
        let queries = VectorSet::new(3, vec![0.0, 1.0, 2.0]).unwrap();
        let l2 = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
        let write = |ids: Vec<u32>, k| {
            let t = GroundTruth {
                k,
                ids,
                distances: vec![],
            };
            write_ivecs(&i, &t).unwrap();
        };
        write(vec![1, 0], 2);
        let t = read_ground_truth(&i, &base, &queries, 2, l2).unwrap();
        assert_eq!(t.ids, [0, 1], "sorted nearest first by exact distance");
        assert_eq!(t.distances[0], 0.0);
        write(vec![0, 7], 2);
        let e = format!(
            "{:#}",
            read_ground_truth(&i, &base, &queries, 2, l2).unwrap_err()
        );
        assert!(e.contains("id 7 is not one of the 2 base vectors"), "{e}");
        write(vec![0], 1);
        let e = format!(
            "{:#}",
            read_ground_truth(&i, &base, &queries, 2, l2).unwrap_err()
        );
        assert!(e.contains("fewer than k = 2"), "{e}");
        write(vec![0, 1, 1, 0], 2);
        let e = format!(
            "{:#}",
            read_ground_truth(&i, &base, &queries, 2, l2).unwrap_err()
        );
        assert!(e.contains("2 rows of ground truth for 1 queries"), "{e}");
    }
}

//! ann-benchmarks' HDF5 data sets (sift-128-euclidean, glove-100-angular, ... or a user's
//! own export in that layout): `train` (the base vectors), `test` (the queries),
//! `neighbors` (each query's true nearest train ids, nearest first), `distances`, and the
//! file's `distance` attribute. Read with hdf5-pure, so no libhdf5 is needed.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use hdf5_pure::{AttrValue, File, FileBuilder};

use super::dataset::VectorSet;
use super::distance::Metric;
use super::ground_truth::GroundTruth;

/// What an ann-benchmarks file holds.
pub struct AnnData {
    pub base: VectorSet,
    pub queries: VectorSet,
    /// Neighbours per query in `neighbors`, and the ids row by row.
    pub neighbour_cols: usize,
    pub neighbours: Vec<i32>,
    /// The `distance` attribute ("euclidean", "angular", ...), when the file has one.
    pub distance: Option<String>,
}

/// The metric an ann-benchmarks distance name means.
pub fn metric_for(distance: &str) -> Option<Metric> {
    match distance {
        "euclidean" | "l2" => Some(Metric::L2),
        "angular" | "cosine" => Some(Metric::Cosine),
        "dot" | "ip" | "inner_product" => Some(Metric::Dot),
        _ => None,
    }
}

/// The file's `distance` attribute, reading nothing else.
pub fn distance_attribute(path: &Path) -> Result<Option<String>> {
    guarded(path, || distance_of(&open(path)?, path))
}

fn open(path: &Path) -> Result<File> {
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    // Streaming: only what is read is loaded (a gist-960 file is 4 GB).
    let file = File::open_streaming(path)
        .map_err(|e| anyhow!("{}: not a readable HDF5 file ({e})", path.display()))?;
    // A download cut short may still hold train and test whole: the superblock says where
    // the file ends, so a short one is refused rather than half-read.
    let eof = file.superblock().eof_address;
    let len = std::fs::metadata(path)?.len();
    if eof != u64::MAX && len < eof {
        bail!(
            "{}: {len} bytes, but the file says it ends at byte {eof} (truncated download?)",
            path.display()
        );
    }
    Ok(file)
}

fn distance_of(file: &File, path: &Path) -> Result<Option<String>> {
    let attrs = file.root().attrs().map_err(|e| {
        anyhow!(
            "{}: cannot read the file's attributes ({e})",
            path.display()
        )
    })?;
    // h5py writes a str attribute as a variable-length UTF-8 string; other writers use
    // fixed widths.
    Ok(match attrs.get("distance") {
        Some(
            AttrValue::AsciiString(s)
            | AttrValue::String(s)
            | AttrValue::VarLenAsciiString(s)
            | AttrValue::VarLenString(s)
            | AttrValue::AsciiStringSized { value: s, .. }
            | AttrValue::StringSized { value: s, .. },
        ) => Some(s.trim_end_matches('\0').to_string()),
        _ => None,
    })
}

/// Read `train`, `test` and `neighbors` (and the `distance` attribute).
pub fn read(path: &Path) -> Result<AnnData> {
    guarded(path, || read_unguarded(path))
}

/// hdf5-pure is young: should it panic on a damaged file, say so as an error naming it.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        bail!(
            "{}: the HDF5 reader failed on it (a damaged file?)",
            path.display()
        )
    })
}

fn read_unguarded(path: &Path) -> Result<AnnData> {
    let file = open(path)?;
    let base = matrix_f32(&file, path, "train")?;
    let queries = matrix_f32(&file, path, "test")?;
    if queries.dim != base.dim {
        bail!(
            "{}: `test` has dimension {}, `train` {}",
            path.display(),
            queries.dim,
            base.dim
        );
    }
    let (rows, neighbour_cols, neighbours) = matrix_i32(&file, path, "neighbors")?;
    if rows != queries.len() {
        bail!(
            "{}: `neighbors` has {rows} rows for the {} queries in `test`",
            path.display(),
            queries.len()
        );
    }
    Ok(AnnData {
        base,
        queries,
        neighbour_cols,
        neighbours,
        distance: distance_of(&file, path)?,
    })
}

/// A 2-D dataset's shape, or an error naming the file, the dataset and what is wrong.
fn shape_2d(file: &File, path: &Path, name: &str) -> Result<(hdf5_pure::Dataset, usize, usize)> {
    let dataset = file.dataset(name).map_err(|e| {
        anyhow!(
            "{}: no `{name}` dataset ({e}); ann-benchmarks files hold train, test and neighbors",
            path.display()
        )
    })?;
    let shape = dataset
        .shape()
        .map_err(|e| anyhow!("{}: `{name}`: unreadable shape ({e})", path.display()))?;
    let (rows, cols) = match shape[..] {
        [rows, cols] if rows > 0 && cols > 0 => (rows, cols),
        _ => bail!(
            "{}: `{name}` has shape {shape:?}; expected rows × columns, neither zero",
            path.display()
        ),
    };
    // A damaged header can claim any size: refuse one that could not be held, before
    // anything is allocated for it.
    let bytes = rows.checked_mul(cols).and_then(|n| n.checked_mul(4));
    let available = crate::device::available_memory().unwrap_or(u64::MAX);
    match bytes {
        Some(b) if b <= available => Ok((dataset, rows as usize, cols as usize)),
        _ => bail!(
            "{}: `{name}` claims {rows} × {cols} values, more than the {:.1} GiB of memory available",
            path.display(),
            available as f64 / (1u64 << 30) as f64
        ),
    }
}

fn matrix_f32(file: &File, path: &Path, name: &str) -> Result<VectorSet> {
    let (_, cols, values) = matrix(file, path, name, "floats", |d| d.read_f32())?;
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{}: `{name}` row {}, column {}: {} is not a finite number",
            path.display(),
            at / cols,
            at % cols,
            values[at]
        );
    }
    VectorSet::new(cols, values)
}

fn matrix_i32(file: &File, path: &Path, name: &str) -> Result<(usize, usize, Vec<i32>)> {
    matrix(file, path, name, "integers", |d| d.read_i32())
}

/// A 2-D dataset's rows, columns and values (converted by `read` from whatever width the
/// file stores: h5py writes ids as int64).
fn matrix<T>(
    file: &File,
    path: &Path,
    name: &str,
    kind: &str,
    read: impl Fn(&hdf5_pure::Dataset) -> Result<Vec<T>, hdf5_pure::Error>,
) -> Result<(usize, usize, Vec<T>)> {
    let (dataset, rows, cols) = shape_2d(file, path, name)?;
    let values = read(&dataset).map_err(|e| {
        anyhow!(
            "{}: `{name}`: cannot read it as {kind} ({e})",
            path.display()
        )
    })?;
    if values.len() != rows * cols {
        bail!(
            "{}: `{name}`: {} values for a {rows} × {cols} shape (truncated file?)",
            path.display(),
            values.len()
        );
    }
    Ok((rows, cols, values))
}

/// Write a data set in the ann-benchmarks layout (what `--export-data` adds beside the
/// fvecs files, and what the tests read back).
pub fn write(
    path: &Path,
    base: &VectorSet,
    queries: &VectorSet,
    truth: &GroundTruth,
    metric: Metric,
) -> Result<()> {
    let mut file = FileBuilder::new();
    let distance = match metric {
        Metric::L2 => "euclidean",
        Metric::Cosine => "angular",
        Metric::Dot => "dot",
    };
    // Variable-length strings, as h5py writes them: h5py reads them back as str (a fixed
    // width one comes back as bytes, which ann-benchmarks' code would not match).
    file.set_attr("distance", AttrValue::VarLenString(distance.into()));
    file.set_attr("type", AttrValue::VarLenString("dense".into()));
    file.set_attr("dimension", AttrValue::I64(base.dim as i64));
    file.create_dataset("train")
        .with_f32_data(&base.data)
        .with_shape(&[base.len() as u64, base.dim as u64]);
    file.create_dataset("test")
        .with_f32_data(&queries.data)
        .with_shape(&[queries.len() as u64, queries.dim as u64]);
    let ids: Vec<i32> = truth.ids.iter().map(|&i| i as i32).collect();
    file.create_dataset("neighbors")
        .with_i32_data(&ids)
        .with_shape(&[queries.len() as u64, truth.k as u64]);
    file.create_dataset("distances")
        .with_f32_data(&truth.distances)
        .with_shape(&[queries.len() as u64, truth.k as u64]);
    let bytes = file
        .finish()
        .map_err(|e| anyhow!("{}: cannot encode the HDF5 file ({e})", path.display()))?;
    crate::results::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/retrieval/ann-euclidean-500x16.hdf5")
    }

    #[test]
    fn a_file_written_by_h5py_reads_as_ann_benchmarks_lays_it_out() {
        // scripts/ann-fixture.py wrote it with h5py: int64 neighbours, float64 distances.
        let ann = read(&fixture()).unwrap();
        assert_eq!((ann.base.len(), ann.base.dim), (500, 16));
        assert_eq!(ann.queries.len(), 20);
        assert_eq!(ann.neighbour_cols, 50);
        assert_eq!(ann.distance.as_deref(), Some("euclidean"));
        assert_eq!(metric_for("euclidean"), Some(Metric::L2));
        // The file's first neighbour of each query is the brute-force nearest.
        for q in 0..20 {
            let nearest = (0..500)
                .min_by(|a, b| {
                    let d = |i: usize| Metric::L2.eval(ann.queries.row(q), ann.base.row(i));
                    d(*a).total_cmp(&d(*b))
                })
                .unwrap();
            assert_eq!(ann.neighbours[q * 50] as usize, nearest, "query {q}");
        }
    }

    #[test]
    fn what_we_write_reads_back_exactly() {
        let base = VectorSet::new(3, (0..30).map(|i| i as f32 * 0.5).collect()).unwrap();
        let queries = VectorSet::new(3, vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0]).unwrap();
        let truth = GroundTruth {
            k: 2,
            ids: vec![1, 0, 9, 8],
            distances: vec![0.1, 0.2, 0.3, 0.4],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.hdf5");
        write(&path, &base, &queries, &truth, Metric::Cosine).unwrap();
        let ann = read(&path).unwrap();
        assert_eq!(ann.base, base);
        assert_eq!(ann.queries, queries);
        assert_eq!((ann.neighbour_cols, ann.neighbours), (2, vec![1, 0, 9, 8]));
        assert_eq!(ann.distance.as_deref(), Some("angular"));
        assert_eq!(
            distance_attribute(&path).unwrap().as_deref(),
            Some("angular")
        );
    }

    /// Each damaged or incomplete file is an error naming the file and what is wrong.
    #[test]
    fn bad_files_are_named_with_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = |path: &Path| format!("{:#}", read(path).err().expect("an error"));

        let only_train = dir.path().join("only-train.hdf5");
        let mut b = FileBuilder::new();
        b.create_dataset("train")
            .with_f32_data(&[1.0; 8])
            .with_shape(&[2, 4]);
        std::fs::write(&only_train, b.finish().unwrap()).unwrap();
        let e = err(&only_train);
        assert!(
            e.contains("only-train.hdf5") && e.contains("no `test` dataset"),
            "{e}"
        );

        let flat = dir.path().join("flat.hdf5");
        let mut b = FileBuilder::new();
        b.create_dataset("train").with_f32_data(&[1.0; 8]);
        b.create_dataset("test").with_f32_data(&[1.0; 4]);
        std::fs::write(&flat, b.finish().unwrap()).unwrap();
        let e = err(&flat);
        assert!(e.contains("`train` has shape [8]"), "{e}");

        let text = dir.path().join("text.hdf5");
        std::fs::write(&text, "train,test\n1,2\n").unwrap();
        let e = err(&text);
        assert!(e.contains("text.hdf5: not a readable HDF5 file"), "{e}");

        let bytes = std::fs::read(fixture()).unwrap();
        for cut in [100, bytes.len() / 3, bytes.len() / 2, bytes.len() - 100] {
            let path = dir.path().join(format!("cut-{cut}.hdf5"));
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = err(&path);
            assert!(e.contains(&format!("cut-{cut}.hdf5")), "{e}");
            if cut > 100 {
                assert!(e.contains("truncated"), "{e}");
            }
        }
        assert!(err(&dir.path().join("none.hdf5")).contains("no such file"));
    }
}

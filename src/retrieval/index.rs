//! The HNSW index in hnsw_rs's structure and files: built with hnsw_rs's parallel inserts
//! (or by inferbench-graph and written in hnsw_rs's format, hnsw_rs_dump.rs), searched,
//! dumped to disk with a manifest of checksums, and reloaded only when the manifest vouches
//! for the files.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{anyhow, bail, Context, Result};
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use inferbench_graph::{FlatGraph, GraphBuilder, Space};
use serde::{Deserialize, Serialize};

use super::cache::{self, Lookup};
use super::dataset::VectorSet;
use super::distance::{Metric, SimdCosine, SimdDot, SimdL2};
use super::hnsw_rs_dump;

/// A build abandoned because the user asked to stop.
#[derive(Debug, thiserror::Error)]
#[error("interrupted while building the index")]
pub struct Interrupted;

/// hnsw_rs's layer limit.
const MAX_LAYERS: usize = 16;
/// Vectors per parallel insert call: enough to keep every thread busy, few enough that
/// Ctrl-C and the progress bar answer within a second or so.
const INSERT_CHUNK: usize = 2_048;
const BASENAME: &str = "index";
const MANIFEST: &str = "manifest.json";

/// How an index is built.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexParams {
    pub metric: Metric,
    /// Links per node (hnsw_rs keeps 2·M on layer 0).
    pub m: usize,
    pub ef_construction: usize,
}

impl IndexParams {
    pub fn check(&self) -> Result<()> {
        if !(2..=255).contains(&self.m) {
            bail!("M must be between 2 and 255, got {}", self.m);
        }
        if self.ef_construction == 0 {
            bail!("ef_construction must be at least 1");
        }
        Ok(())
    }
}

/// An index over one distance.
pub enum Index {
    L2(Hnsw<'static, f32, SimdL2>),
    Cosine(Hnsw<'static, f32, SimdCosine>),
    Dot(Hnsw<'static, f32, SimdDot>),
}

macro_rules! each {
    ($index:expr, $h:ident => $body:expr) => {
        match $index {
            Index::L2($h) => $body,
            Index::Cosine($h) => $body,
            Index::Dot($h) => $body,
        }
    };
}

impl Index {
    /// Insert every vector, all threads; `progress` gets the number inserted so far.
    /// `stop` is checked between batches of inserts: when it turns true the build is
    /// abandoned with an `Interrupted` error.
    pub fn build(
        data: &VectorSet,
        params: IndexParams,
        stop: &AtomicBool,
        progress: &dyn Fn(u64),
    ) -> Result<Index> {
        params.check()?;
        if data.is_empty() {
            bail!("cannot build an index of no vectors");
        }
        let n = data.len();
        let mut index = match params.metric {
            Metric::L2 => Index::L2(Hnsw::new(
                params.m,
                n,
                MAX_LAYERS,
                params.ef_construction,
                SimdL2,
            )),
            Metric::Cosine => Index::Cosine(Hnsw::new(
                params.m,
                n,
                MAX_LAYERS,
                params.ef_construction,
                SimdCosine,
            )),
            Metric::Dot => Index::Dot(Hnsw::new(
                params.m,
                n,
                MAX_LAYERS,
                params.ef_construction,
                SimdDot,
            )),
        };
        let rows: Vec<(&[f32], usize)> = data.rows().enumerate().map(|(i, r)| (r, i)).collect();
        let mut done = 0u64;
        for chunk in rows.chunks(INSERT_CHUNK) {
            if stop.load(Ordering::SeqCst) {
                return Err(Interrupted.into());
            }
            let chunk = chunk.to_vec();
            each!(&index, h => h.parallel_insert_slice(&chunk));
            done += chunk.len() as u64;
            progress(done);
        }
        each!(&mut index, h => h.set_searching_mode(true));
        Ok(index)
    }

    pub fn len(&self) -> usize {
        each!(self, h => h.get_nb_point())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dim(&self) -> usize {
        each!(self, h => h.get_point_indexation().get_data_dimension())
    }

    /// The k nearest found with beam width `ef`: (base index, distance), nearest first.
    pub fn search(&self, query: &[f32], k: usize, ef: usize) -> Vec<(usize, f32)> {
        let found = each!(self, h => h.search(query, k, ef.max(k)));
        found
            .iter()
            .map(|n| (n.get_origin_id(), n.get_distance()))
            .collect()
    }

    /// Dump into `dir` (replaced whole): the files go to a temporary folder with their
    /// manifest, which is then renamed into place.
    pub fn save<P: Serialize>(&self, dir: &Path, params: &P) -> Result<()> {
        save_with(dir, params, |tmp| {
            // hnsw_rs panics on some I/O failures; turn those into errors.
            let dumped = catch_unwind(AssertUnwindSafe(
                || each!(self, h => h.file_dump(tmp, BASENAME)),
            ))
            .map_err(|_| anyhow!("hnsw_rs panicked while writing the index"))?;
            let basename =
                dumped.with_context(|| format!("{}: cannot dump the index", tmp.display()))?;
            if basename != BASENAME {
                bail!("hnsw_rs wrote the index under another name ({basename})");
            }
            Ok(())
        })
    }

    /// Save a graph inferbench-graph built over `data` in hnsw_rs's files, as [`Index::save`]
    /// does, so that [`Index::load`] reloads it with hnsw_rs.
    pub fn save_graph<P: Serialize>(
        graph: &FlatGraph,
        data: &VectorSet,
        index: IndexParams,
        dir: &Path,
        params: &P,
    ) -> Result<()> {
        save_with(dir, params, |tmp| {
            hnsw_rs_dump::write(
                tmp,
                BASENAME,
                graph,
                data,
                index.metric,
                index.m,
                index.ef_construction,
            )
            // A write that fails midway (a full disk) names the folder, not just the errno.
            .with_context(|| format!("{}: cannot write the index files", tmp.display()))
        })
    }

    /// Reload an index saved with these parameters, after checking every file against the
    /// manifest. Anything wrong comes back as `Unusable` with the reason.
    pub fn load<P: Serialize>(dir: &Path, params: &P, metric: Metric) -> Lookup<Index> {
        let manifest_path = dir.join(MANIFEST);
        let text = match std::fs::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.exists() => {
                return Lookup::Missing
            }
            Err(e) => return Lookup::Unusable(format!("no readable manifest ({e})")),
        };
        let manifest: Manifest = match serde_json::from_slice(&text) {
            Ok(m) => m,
            Err(e) => return Lookup::Unusable(format!("corrupt manifest ({e})")),
        };
        match serde_json::to_value(params) {
            Ok(p) if p == manifest.params => {}
            _ => return Lookup::Unusable("built with other parameters".into()),
        }
        for file in &manifest.files {
            if let Err(why) = file.verify(dir) {
                return Lookup::Unusable(why);
            }
        }
        match catch_unwind(|| reload(dir, metric)) {
            Ok(Ok(index)) => Lookup::Hit(index),
            Ok(Err(e)) => Lookup::Unusable(format!("hnsw_rs cannot read it ({e:#})")),
            Err(_) => Lookup::Unusable("hnsw_rs panicked reading it".into()),
        }
    }

    pub fn metric(&self) -> Metric {
        match self {
            Index::L2(_) => Metric::L2,
            Index::Cosine(_) => Metric::Cosine,
            Index::Dot(_) => Metric::Dot,
        }
    }

    /// The same graph laid out flat (inferbench-graph): every node with its vector and its
    /// neighbours on each of its layers, entered from a node of the top layer.
    pub fn flatten(&self) -> Result<FlatGraph> {
        let mut graph = GraphBuilder::new(graph_space(self.metric()), self.dim(), self.len())
            .map_err(|e| anyhow!("cannot lay out the graph: {e}"))?;
        each!(self, h => {
            let points = h.get_point_indexation();
            let top = points.get_max_level_observed() as usize;
            // hnsw_rs keeps each point in the layer of its level.
            for level in 0..=top {
                for point in points.get_layer_iterator(level) {
                    let id = point.get_origin_id() as u32;
                    let layers = point
                        .get_neighborhood_id()
                        .into_iter()
                        .take(level + 1)
                        .map(|on_layer| on_layer.iter().map(|n| n.d_id as u32).collect())
                        .collect();
                    graph
                        .set_node(id, point.get_v(), layers)
                        .map_err(|e| anyhow!("cannot lay out the graph: {e}"))?;
                    if level == top {
                        graph.set_entry(id);
                    }
                }
            }
        });
        graph
            .finish()
            .map_err(|e| anyhow!("cannot lay out the graph: {e}"))
    }

    /// Bytes of the dumped index files in `dir`.
    pub fn disk_bytes(dir: &Path) -> u64 {
        index_files(dir)
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Write the index files with `dump` into a temporary folder, add the manifest, and move
/// the folder into `dir`'s place.
fn save_with<P: Serialize>(
    dir: &Path,
    params: &P,
    dump: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)
        .with_context(|| format!("{}: cannot create the index folder", tmp.display()))?;
    dump(&tmp)?;
    let manifest = Manifest {
        params: serde_json::to_value(params)?,
        files: index_files(&tmp)
            .iter()
            .map(|p| FileSum::of(p))
            .collect::<Result<_>>()?,
    };
    crate::results::write_atomic(&tmp.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&tmp, dir)
        .with_context(|| format!("{}: cannot move the index into place", dir.display()))
}

/// The flat layout's space for a metric: both rank as the metric does, and cost less.
pub fn graph_space(metric: Metric) -> Space {
    match metric {
        Metric::L2 => Space::SquaredL2,
        Metric::Cosine | Metric::Dot => Space::UnitDot,
    }
}

fn index_files(dir: &Path) -> Vec<PathBuf> {
    ["hnsw.graph", "hnsw.data"]
        .iter()
        .map(|ext| dir.join(format!("{BASENAME}.{ext}")))
        .collect()
}

fn reload(dir: &Path, metric: Metric) -> Result<Index> {
    // hnsw_rs ties the index's lifetime to its reader, which only holds paths and options
    // here (no memory map): leaking that small struct gives an index that owns its data.
    let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
    let mut index = match metric {
        Metric::L2 => Index::L2(io.load_hnsw::<f32, SimdL2>()?),
        Metric::Cosine => Index::Cosine(io.load_hnsw::<f32, SimdCosine>()?),
        Metric::Dot => Index::Dot(io.load_hnsw::<f32, SimdDot>()?),
    };
    each!(&mut index, h => h.set_searching_mode(true));
    Ok(index)
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    params: serde_json::Value,
    files: Vec<FileSum>,
}

#[derive(Debug, Serialize, Deserialize)]
struct FileSum {
    name: String,
    bytes: u64,
    checksum: u64,
}

impl FileSum {
    fn of(path: &Path) -> Result<FileSum> {
        Ok(FileSum {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes: std::fs::metadata(path)
                .with_context(|| format!("{}: missing after the dump", path.display()))?
                .len(),
            checksum: cache::file_checksum(path)?,
        })
    }

    fn verify(&self, dir: &Path) -> std::result::Result<(), String> {
        let path = dir.join(&self.name);
        let len = std::fs::metadata(&path)
            .map_err(|e| format!("{} is missing ({e})", self.name))?
            .len();
        if len != self.bytes {
            return Err(format!(
                "{} is {len} bytes, the manifest says {} (truncated?)",
                self.name, self.bytes
            ));
        }
        match cache::file_checksum(&path) {
            Ok(sum) if sum == self.checksum => Ok(()),
            Ok(_) => Err(format!("{}: checksum mismatch (corrupted)", self.name)),
            Err(e) => Err(format!("{e:#}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::dataset::MixtureSpec;

    #[test]
    fn a_saved_index_reloads_with_the_same_answers_and_damage_is_caught() {
        let (base, queries) = MixtureSpec {
            queries: 20,
            ..MixtureSpec::clustered(3000, 16)
        }
        .generate(&|_| {})
        .unwrap();
        let params = IndexParams {
            metric: Metric::L2,
            m: 8,
            ef_construction: 64,
        };
        let index = Index::build(&base, params, &AtomicBool::new(false), &|_| {}).unwrap();
        let stopped = Index::build(&base, params, &AtomicBool::new(true), &|_| {});
        assert!(stopped.is_err_and(|e| e.is::<Interrupted>()));
        assert_eq!((index.len(), index.dim()), (3000, 16));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idx");
        index.save(&path, &params).unwrap();
        let reloaded = match Index::load(&path, &params, Metric::L2) {
            Lookup::Hit(i) => i,
            Lookup::Missing => panic!("missing"),
            Lookup::Unusable(why) => panic!("{why}"),
        };
        for q in queries.rows() {
            assert_eq!(index.search(q, 10, 64), reloaded.search(q, 10, 64));
        }
        let other = IndexParams { m: 9, ..params };
        assert!(
            matches!(Index::load(&path, &other, Metric::L2), Lookup::Unusable(w) if w.contains("other parameters"))
        );
        // Truncate the data file.
        let data = path.join("index.hnsw.data");
        let bytes = std::fs::read(&data).unwrap();
        std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
        assert!(
            matches!(Index::load(&path, &params, Metric::L2), Lookup::Unusable(w) if w.contains("truncated"))
        );
        assert!(matches!(
            Index::load(&dir.path().join("none"), &params, Metric::L2),
            Lookup::Missing
        ));
    }
}

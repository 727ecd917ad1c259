//! Retrieval benchmarks: a vector data set, its exact ground truth, an HNSW index (hnsw_rs),
//! and an ef sweep that reports each latency beside the recall it was bought with.
//! Expensive steps (ground truth, embeddings, the index) are cached on disk, keyed by the
//! parameters that produced them, so a second run reuses them.

pub mod cache;
pub mod dataset;
pub mod distance;
pub mod embed;
pub mod ground_truth;
pub mod hdf5;
mod hnsw_rs_dump;
pub mod index;
pub mod memory;
pub mod searcher;
pub mod sweep;
pub mod vecs;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::device::MachineInfo;
use crate::metrics::Reading;
use crate::progress::Progress;
use crate::report::retrieval::{
    Check, DatasetInfo, EfScenario, GroundTruthInfo, Headline, IndexInfo, RetrievalRun, KIND,
};
use crate::results::{now_rfc3339, RunDir, RunHeader};
use cache::Lookup;
use dataset::{MixtureSpec, VectorSet};
use distance::Metric;
use ground_truth::GroundTruth;
use index::{Index, IndexParams};
use searcher::{BuildChoice, Built, SearchChoice, Searcher};
pub use sweep::SweepSettings;

/// Where the vectors come from.
#[derive(Debug, Clone)]
pub enum DataChoice {
    /// A Gaussian mixture; the label is "clustered" or "hard".
    Mixture { label: String, spec: MixtureSpec },
    /// Passages, one per line, embedded with a sentence-embedding model; queries from a
    /// second passages file, or held out of the first.
    Text {
        path: PathBuf,
        model: String,
        queries: Option<PathBuf>,
    },
    /// Vectors, one per line; queries from a second vectors file, or held out of the first.
    Vectors {
        path: PathBuf,
        queries: Option<PathBuf>,
    },
    /// An ann-benchmarks HDF5 file: train, test and their true neighbours.
    Hdf5 { path: PathBuf },
}

#[derive(Debug, Clone)]
pub struct RetrievalRequest {
    pub data: DataChoice,
    /// Queries held out of a file's vectors (mixtures draw their own).
    pub file_queries: usize,
    pub seed: u64,
    pub index: IndexParams,
    pub sweep: SweepSettings,
    /// The recall the headline ef must reach.
    pub recall_target: f64,
    /// None: compute everything and keep nothing.
    pub cache_dir: Option<PathBuf>,
    pub output: PathBuf,
    pub run_id: Option<String>,
    pub interrupt: Arc<AtomicBool>,
    /// Ground truth from this ivecs file instead of brute force.
    pub ground_truth_file: Option<PathBuf>,
    /// Write base vectors, queries and ground truth here (fvecs/ivecs) for peers.
    pub export_data: Option<PathBuf>,
    /// Whose insertion builds the graph.
    pub build: searcher::BuildChoice,
    /// Whose search answers the queries.
    pub search: SearchChoice,
    /// Which layer-0 links the flat search walks.
    pub links: searcher::Links,
}

pub struct RetrievalOutcome {
    pub dir: PathBuf,
    pub result: RetrievalRun,
}

/// Everything the sweep needs: the data, its ground truth and the index, each computed or
/// taken from the cache.
pub struct Prepared {
    pub data: PreparedData,
    pub truth: GroundTruth,
    pub truth_info: GroundTruthInfo,
    pub index: Searcher,
    pub index_info: IndexInfo,
}

/// Check the request, then get the data, ground truth and index ready.
pub fn prepare(request: &RetrievalRequest) -> Result<Prepared> {
    request.check()?;
    let data = prepare_data(request)?;
    let k = request.sweep.k;
    ground_truth::check_inputs(&data.base, &data.queries, k)?;
    if !matches!(request.data, DataChoice::Mixture { .. }) {
        // Mixtures were checked before generating; files only now that their size is known.
        memory::check_fits(data.base.len(), data.base.dim, request.index.m)?;
    }
    let started = Instant::now();
    let metric = request.index.metric;
    let (truth, cached, method) = match (&request.ground_truth_file, &data.given_truth) {
        (None, Some(given)) => {
            let truth = vecs::truth_from_ids(
                &given.source,
                given.cols,
                &given.ids,
                &data.base,
                &data.queries,
                k,
                |a, b| metric.eval(a, b),
            )?;
            eprintln!("ground truth: top-{k} from {}", given.source);
            let method = format!("from {} (distances recomputed)", given.source);
            (truth, false, method)
        }
        (Some(path), _) => {
            let metric = request.index.metric;
            let truth = vecs::read_ground_truth(path, &data.base, &data.queries, k, |a, b| {
                metric.eval(a, b)
            })?;
            eprintln!("ground truth: top-{k} from {}", path.display());
            let method = format!("from {} (distances recomputed)", path.display());
            (truth, false, method)
        }
        (None, None) => {
            let (truth, cached) = ground_truth_for(request, &data, k)?;
            let method = "brute force (blocked matrix products, exact re-rank)".to_string();
            (truth, cached, method)
        }
    };
    let truth_info = GroundTruthInfo {
        k,
        method,
        seconds: started.elapsed().as_secs_f64(),
        cached,
    };
    if let Some(dir) = &request.export_data {
        export(dir, &data, &truth, metric)?;
    }
    let IndexStep { index, mut info } = index_for(request, &data)?;
    let index = ready_to_search(index, request, &data, &truth, &mut info)?;
    Ok(Prepared {
        data,
        truth,
        truth_info,
        index,
        index_info: info,
    })
}

/// Hand the index to the chosen search, noting in `info` what the flat layout cost and
/// which queries' true neighbours no search can reach.
fn ready_to_search(
    index: Built,
    request: &RetrievalRequest,
    data: &PreparedData,
    truth: &GroundTruth,
    info: &mut IndexInfo,
) -> Result<Searcher> {
    let (searcher, layout) = Searcher::new(index, request.search, request.links)?;
    info.search = Some(request.search.name().to_string());
    if let Some(mut layout) = layout {
        layout.info.queries_with_unreachable_truth =
            searcher::queries_missing_truth(truth, data.queries.len(), &layout.unreachable);
        eprintln!(
            "index: laid out flat in {:.1}s ({:.0} MiB{}, {} layers, links {}); {} nodes unreachable from the entry point ({} as built){}",
            layout.info.seconds,
            layout.info.bytes as f64 / (1u64 << 20) as f64,
            match layout.info.huge_pages() {
                Some(huge) => format!(", {huge}"),
                None => String::new(),
            },
            layout.info.layers,
            request.links.name(),
            layout.info.unreachable_nodes,
            layout.info.unreachable_nodes_as_built.unwrap_or(0),
            match layout.info.queries_with_unreachable_truth {
                0 => String::new(),
                q => format!(", {q} queries have one among their true top-{}", truth.k),
            }
        );
        info.layout = Some(layout.info);
    }
    Ok(searcher)
}

/// The data as peers read it: base.fvecs, query.fvecs, groundtruth.ivecs (k per query), and
/// the same in ann-benchmarks' layout as ann.hdf5.
fn export(dir: &Path, data: &PreparedData, truth: &GroundTruth, metric: Metric) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--export-data {}: cannot create it", dir.display()))?;
    vecs::write_fvecs(&dir.join("base.fvecs"), &data.base)?;
    vecs::write_fvecs(&dir.join("query.fvecs"), &data.queries)?;
    vecs::write_ivecs(&dir.join("groundtruth.ivecs"), truth)?;
    hdf5::write(
        &dir.join("ann.hdf5"),
        &data.base,
        &data.queries,
        truth,
        metric,
    )?;
    eprintln!(
        "exported {} base vectors, {} queries and their top-{} to {}",
        data.base.len(),
        data.queries.len(),
        truth.k,
        dir.display()
    );
    Ok(())
}

/// Run the whole benchmark, writing run.json and scenarios.csv after every ef. `None` when
/// interrupted before the sweep began (nothing measured, no results folder left behind).
pub fn run(request: RetrievalRequest) -> Result<Option<RetrievalOutcome>> {
    let started_at = now_rfc3339();
    // The results folder first: a bad one should fail now, not after a 20-minute build.
    let dir = RunDir::create(&request.output, request.run_id.as_deref(), KIND)?;
    let prepared = match prepare(&request) {
        Ok(p) => p,
        Err(e) => {
            dir.discard_empty(); // nothing was measured
            return match e.downcast::<index::Interrupted>() {
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            };
        }
    };
    let queries = &prepared.data.queries;
    let truth = &prepared.truth;
    let index = &prepared.index;
    let mut result = RetrievalRun {
        header: RunHeader::start(KIND, &dir.run_id(), started_at, MachineInfo::collect()),
        threads: rayon::current_num_threads(),
        dataset: prepared.data.info.clone(),
        ground_truth: prepared.truth_info.clone(),
        index: prepared.index_info.clone(),
        planned_efs: request.sweep.efs.clone(),
        scenarios: Vec::new(),
        headline: headline(&[], request.recall_target),
        targets: Vec::new(),
    };
    dir.save(&mut result)?;

    for &ef in &request.sweep.efs {
        if request.interrupt.load(Ordering::SeqCst) {
            break;
        }
        let bar = Progress::new(queries.len() as u64, &format!("ef {ef:>4}"));
        let measured = sweep::measure_ef(
            index,
            queries,
            truth,
            ef,
            &request.sweep,
            &request.interrupt,
            &|done| bar.set(done),
        )?;
        bar.finish();
        let Some(scenario) = measured else { break };
        eprintln!("{}", summary_line(&scenario));
        result.scenarios.push(scenario);
        finish_fields(&mut result, request.recall_target);
        dir.save(&mut result)?;
    }
    finish_fields(&mut result, request.recall_target);
    dir.finish(&mut result, request.interrupt.load(Ordering::SeqCst))?;
    Ok(Some(RetrievalOutcome {
        dir: dir.path().to_path_buf(),
        result,
    }))
}

impl RetrievalRequest {
    /// Refuse what cannot run, before anything is computed: bad --ef, --m, --spread,
    /// --recall-target, k past the index, a size that does not fit in memory.
    pub fn check(&self) -> Result<()> {
        check_request(self)
    }
}

fn check_request(request: &RetrievalRequest) -> Result<()> {
    request.index.check()?;
    if request.sweep.efs.is_empty() {
        bail!("--ef: give at least one value");
    }
    if let Some(ef) = request.sweep.efs.iter().find(|ef| **ef == 0) {
        bail!("--ef {ef}: ef must be at least 1");
    }
    if !(0.0..=1.0).contains(&request.recall_target) {
        bail!(
            "--recall-target {}: must be between 0 and 1",
            request.recall_target
        );
    }
    if let DataChoice::Mixture { spec, .. } = &request.data {
        spec.check()?;
        if request.sweep.k > spec.n {
            bail!(
                "k = {} is larger than the {} vectors in the index",
                request.sweep.k,
                spec.n
            );
        }
        memory::check_fits(spec.n, spec.dim, request.index.m)?;
    }
    Ok(())
}

/// The vectors, the held-out queries, and how they came to be.
pub struct PreparedData {
    pub base: VectorSet,
    pub queries: VectorSet,
    pub info: DatasetInfo,
    /// Identifies base vectors and queries for the cache: equal keys, equal vectors.
    pub key: serde_json::Value,
    /// Identifies the base vectors alone (a mixture's queries do not change its base, so
    /// another query count reuses the index).
    pub base_key: serde_json::Value,
    /// The true neighbours the data came with (an ann-benchmarks file's `neighbors`).
    pub given_truth: Option<GivenTruth>,
}

/// A table of true neighbour ids shipped with the data: `cols` per query, nearest first.
pub struct GivenTruth {
    /// "FILE: `neighbors`", for messages.
    pub source: String,
    pub cols: usize,
    pub ids: Vec<i32>,
}

fn prepare_data(request: &RetrievalRequest) -> Result<PreparedData> {
    let metric = request.index.metric;
    let started = Instant::now();
    let mut cached = false;
    let mut given_truth = None;
    let (mut base, mut queries, name, source, parameters, key, base_key) = match &request.data {
        DataChoice::Mixture { label, spec } => {
            let bar = Progress::new(spec.n as u64, "vectors");
            let (base, queries) = spec.generate(&|done| bar.set(done))?;
            bar.finish();
            let parameters = serde_json::to_value(spec)?;
            (
                base,
                queries,
                format!("{label}-{}x{}", spec.n, spec.dim),
                "gaussian mixture".to_string(),
                Some(parameters.clone()),
                serde_json::json!({"mixture": parameters}),
                serde_json::json!({"mixture": MixtureSpec { queries: 0, ..spec.clone() }}),
            )
        }
        DataChoice::Vectors { path, queries } => {
            let all = read_vectors_file(path)?;
            let all_key = serde_json::json!({"vectors": cache::file_checksum(path)?});
            let given = match queries {
                Some(q) => {
                    let set = read_vectors_file(q)?;
                    if set.dim != all.dim {
                        bail!(
                            "dimension mismatch: the queries in {} have dimension {}, the index vectors in {} have {}",
                            q.display(),
                            set.dim,
                            path.display(),
                            all.dim
                        );
                    }
                    Some((
                        set,
                        serde_json::json!({"vectors": cache::file_checksum(q)?}),
                    ))
                }
                None => None,
            };
            let (base, queries, key, base_key) = file_split(request, path, all, all_key, given)?;
            (
                base,
                queries,
                format!("vectors:{}", file_label(path)),
                format!("vectors file {}", path.display()),
                None,
                key,
                base_key,
            )
        }
        DataChoice::Hdf5 { path } => {
            let ann = hdf5::read(path)?;
            check_hdf5_metric(path, ann.distance.as_deref(), metric)?;
            given_truth = Some(GivenTruth {
                source: format!("{}: `neighbors`", path.display()),
                cols: ann.neighbour_cols,
                ids: ann.neighbours,
            });
            let key = serde_json::json!({"hdf5": cache::file_checksum(path)?});
            (
                ann.base,
                ann.queries,
                format!("hdf5:{}", file_label(path)),
                format!("ann-benchmarks HDF5 file {}", path.display()),
                ann.distance.map(|d| serde_json::json!({"distance": d})),
                key.clone(),
                key,
            )
        }
        DataChoice::Text {
            path,
            model,
            queries,
        } => {
            let (all, all_key, from_cache) = embed_file(request, path, model)?;
            cached = from_cache;
            let given = match queries {
                Some(q) => {
                    let (set, key, _) = embed_file(request, q, model)?;
                    Some((set, key))
                }
                None => None,
            };
            let (base, queries, key, base_key) = file_split(request, path, all, all_key, given)?;
            (
                base,
                queries,
                format!("text:{}", file_label(path)),
                format!("{model} embeddings of {}", path.display()),
                None,
                key,
                base_key,
            )
        }
    };
    base.check_usable(metric, &source)?;
    queries.check_usable(metric, &format!("the queries of {source}"))?;
    // The dot distance is for unit vectors; make them so rather than measure nonsense.
    let normalized = metric == Metric::Dot;
    if normalized {
        base.normalize();
        queries.normalize();
    }
    let info = DatasetInfo {
        name,
        source,
        vectors: base.len(),
        queries: queries.len(),
        dim: base.dim,
        metric: metric.name().into(),
        parameters,
        prepare_s: started.elapsed().as_secs_f64(),
        cached,
    };
    eprintln!(
        "data: {} ({} vectors × {}, {} queries) ready in {:.1}s",
        info.name, info.vectors, info.dim, info.queries, info.prepare_s
    );
    Ok(PreparedData {
        base,
        queries,
        info,
        key: serde_json::json!({"data": key, "normalized": normalized}),
        base_key: serde_json::json!({"data": base_key, "normalized": normalized}),
        given_truth,
    })
}

/// An ann-benchmarks file's neighbours hold for its own distance only: grading another
/// metric against them would report nonsense recall.
fn check_hdf5_metric(path: &Path, distance: Option<&str>, metric: Metric) -> Result<()> {
    let Some(distance) = distance else {
        return Ok(());
    };
    match hdf5::metric_for(distance) {
        None => bail!(
            "{}: distance \"{distance}\" is not one inferbench measures (euclidean, angular, dot)",
            path.display()
        ),
        Some(m) if m != metric => bail!(
            "{}: its neighbors are for {distance} distance ({}), not --metric {}: drop --metric",
            path.display(),
            m.name(),
            metric.name()
        ),
        Some(_) => Ok(()),
    }
}

/// Vectors from an `.fvecs` file, or from a text file of one vector per line.
fn read_vectors_file(path: &Path) -> Result<VectorSet> {
    if path.extension().is_some_and(|e| e == "fvecs") {
        vecs::read_fvecs(path)
    } else {
        dataset::read_text_vectors(path)
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

type Split = (VectorSet, VectorSet, serde_json::Value, serde_json::Value);

/// A file's vectors as base and queries, with their cache keys: the queries file's vectors
/// when one is given, else `file_queries` held out of the file.
fn file_split(
    request: &RetrievalRequest,
    path: &Path,
    all: VectorSet,
    all_key: serde_json::Value,
    given: Option<(VectorSet, serde_json::Value)>,
) -> Result<Split> {
    match given {
        Some((queries, queries_key)) => {
            let key = serde_json::json!({"base": all_key, "queries": queries_key});
            Ok((all, queries, key, all_key))
        }
        None => {
            let (base, queries) = hold_out(all, request.file_queries, request.seed, path)?;
            let key = serde_json::json!({"base": all_key, "held_out": request.file_queries, "seed": request.seed});
            Ok((base, queries, key.clone(), key))
        }
    }
}

/// A passages file's embeddings, their cache key, and whether they came from the cache.
fn embed_file(
    request: &RetrievalRequest,
    path: &Path,
    model: &str,
) -> Result<(VectorSet, serde_json::Value, bool)> {
    let passages = embed::read_passages(path)?;
    let key = serde_json::json!({"text": cache::file_checksum(path)?, "model": model});
    let (set, cached) = embeddings(request, &passages, model, &key)?;
    Ok((set, key, cached))
}

/// Hold `count` vectors out of a file's set as queries (a seeded sample, so not the file's tail).
fn hold_out(
    all: VectorSet,
    count: usize,
    seed: u64,
    path: &Path,
) -> Result<(VectorSet, VectorSet)> {
    if count == 0 {
        bail!("--queries must be at least 1");
    }
    if count >= all.len() {
        bail!(
            "{}: {} vectors, too few to hold out {count} as queries and index the rest (lower --queries)",
            path.display(),
            all.len()
        );
    }
    let picked = dataset::sample_indices(all.len(), count, seed);
    Ok(all.split_rows(&picked))
}

fn embeddings(
    request: &RetrievalRequest,
    passages: &[String],
    model: &str,
    key: &serde_json::Value,
) -> Result<(VectorSet, bool)> {
    let path = request
        .cache_dir
        .as_ref()
        .map(|d| d.join(format!("embeddings-{}.bin", cache::key(key))));
    if let Some(path) = &path {
        match cache::read_entry(path, key) {
            Lookup::Hit(bytes) => {
                let data = cache::bytes_to_f32s(&bytes);
                let dim = data.len() / passages.len().max(1);
                eprintln!("embeddings: reused {}", path.display());
                return Ok((VectorSet::new(dim, data)?, true));
            }
            Lookup::Missing => {}
            Lookup::Unusable(why) => {
                eprintln!(
                    "embeddings: cached {} is unusable ({why}): embedding again",
                    path.display()
                )
            }
        }
    }
    let device = crate::device::select(crate::device::DeviceRequest::Auto)?;
    let embedder = embed::Embedder::load(model, &device.device)?;
    let bar = Progress::new(passages.len() as u64, "embed");
    let mut data = Vec::with_capacity(passages.len() * embedder.dim);
    for chunk in passages.chunks(256) {
        let texts: Vec<&str> = chunk.iter().map(String::as_str).collect();
        data.extend(embedder.embed(&texts)?.data);
        bar.inc(chunk.len() as u64);
    }
    bar.finish();
    let set = VectorSet::new(embedder.dim, data)?;
    if let Some(path) = &path {
        cache::write_entry(path, key, &cache::f32s_to_bytes(&set.data))?;
    }
    Ok((set, false))
}

#[derive(Serialize)]
struct TruthKey<'a> {
    data: &'a serde_json::Value,
    k: usize,
    metric: Metric,
}

fn ground_truth_for(
    request: &RetrievalRequest,
    data: &PreparedData,
    k: usize,
) -> Result<(GroundTruth, bool)> {
    let metric = request.index.metric;
    let key = TruthKey {
        data: &data.key,
        k,
        metric,
    };
    let path = request
        .cache_dir
        .as_ref()
        .map(|d| d.join(format!("truth-{}.bin", cache::key(&key))));
    let nq = data.queries.len();
    if let Some(path) = &path {
        match cache::read_entry(path, &key) {
            Lookup::Hit(bytes) if bytes.len() == nq * k * 8 => {
                let (ids, dists) = bytes.split_at(nq * k * 4);
                eprintln!("ground truth: reused {}", path.display());
                return Ok((
                    GroundTruth {
                        k,
                        ids: cache::bytes_to_u32s(ids),
                        distances: cache::bytes_to_f32s(dists),
                    },
                    true,
                ));
            }
            Lookup::Hit(_) => eprintln!(
                "ground truth: cached {} has the wrong size: computing it again",
                path.display()
            ),
            Lookup::Missing => {}
            Lookup::Unusable(why) => eprintln!(
                "ground truth: cached {} is unusable ({why}): computing it again",
                path.display()
            ),
        }
    }
    let started = Instant::now();
    let bar = Progress::new(data.base.len() as u64, "truth");
    let truth = ground_truth::compute(&data.base, &data.queries, k, metric, &|done| bar.set(done))?;
    bar.finish();
    eprintln!(
        "ground truth: top-{k} of {} queries by brute force in {:.1}s",
        nq,
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &path {
        let mut bytes = cache::u32s_to_bytes(&truth.ids);
        bytes.extend(cache::f32s_to_bytes(&truth.distances));
        cache::write_entry(path, &key, &bytes)?;
    }
    Ok((truth, false))
}

struct IndexStep {
    index: Built,
    info: IndexInfo,
}

#[derive(Serialize)]
struct IndexKey<'a> {
    data: &'a serde_json::Value,
    params: IndexParams,
    /// Absent for hnsw_rs's build, so indexes cached before there was a choice still match.
    #[serde(skip_serializing_if = "is_hnsw_rs")]
    build: BuildChoice,
    /// Our insertion's revision, raised when it builds a different graph from the same
    /// input, so a cached graph of an older one is rebuilt (absent for hnsw_rs's build).
    #[serde(skip_serializing_if = "Option::is_none")]
    insertion: Option<u32>,
}

/// 2: a node's own lists are written before the links back to it (crates/graph insert.rs).
const INSERTION_REVISION: u32 = 2;

fn is_hnsw_rs(build: &BuildChoice) -> bool {
    *build == BuildChoice::HnswRs
}

fn index_for(request: &RetrievalRequest, data: &PreparedData) -> Result<IndexStep> {
    let params = request.index;
    let key = IndexKey {
        data: &data.base_key,
        params,
        build: request.build,
        insertion: (request.build == BuildChoice::Inferbench).then_some(INSERTION_REVISION),
    };
    let dir = request
        .cache_dir
        .as_ref()
        .map(|d| d.join(format!("index-{}", cache::key(&key))));
    let estimated = memory::estimate(data.base.len(), data.base.dim, params.m);
    let mut info = IndexInfo {
        library: library_name(request.build),
        m: params.m,
        ef_construction: params.ef_construction,
        build_threads: rayon::current_num_threads(),
        build_s: None,
        load_s: None,
        cached: false,
        cache_note: None,
        path: dir.as_ref().map(|d| d.display().to_string()),
        disk_bytes: None,
        memory_bytes: Reading::unavailable("not measured"),
        estimated_memory_bytes: estimated.total(),
        search: None,
        layout: None,
    };
    let rss_before = crate::telemetry::host_memory::current_rss();
    let memory = |before: Option<u64>| match (before, crate::telemetry::host_memory::current_rss())
    {
        (Some(b), Some(a)) => Reading::Measured {
            value: a.saturating_sub(b),
        },
        _ => Reading::unavailable("/proc/self/status is not readable"),
    };
    if let Some(dir) = &dir {
        let started = Instant::now();
        let spinner = Progress::new(0, "loading index");
        let found = Index::load(dir, &key, params.metric);
        spinner.finish();
        match found {
            Lookup::Hit(index)
                if index.len() == data.base.len() && index.dim() == data.base.dim =>
            {
                info.load_s = Some(started.elapsed().as_secs_f64());
                info.cached = true;
                info.disk_bytes = Some(Index::disk_bytes(dir));
                info.memory_bytes = memory(rss_before);
                eprintln!(
                    "index: reused {} ({} vectors) in {:.1}s",
                    dir.display(),
                    index.len(),
                    started.elapsed().as_secs_f64()
                );
                return Ok(IndexStep {
                    index: Built::HnswRs(index),
                    info,
                });
            }
            Lookup::Hit(index) => {
                let why = format!(
                    "it holds {} vectors of dimension {}, the data {} of {}",
                    index.len(),
                    index.dim(),
                    data.base.len(),
                    data.base.dim
                );
                eprintln!(
                    "index: cached {} is unusable ({why}): rebuilding",
                    dir.display()
                );
                info.cache_note = Some(why);
            }
            Lookup::Missing => {}
            Lookup::Unusable(why) => {
                eprintln!(
                    "index: cached {} is unusable ({why}): rebuilding",
                    dir.display()
                );
                info.cache_note = Some(why);
            }
        }
    }
    let started = Instant::now();
    let bar = Progress::new(data.base.len() as u64, "build");
    let built = match request.build {
        BuildChoice::HnswRs => Built::HnswRs(Index::build(
            &data.base,
            params,
            &request.interrupt,
            &|done| bar.set(done),
        )?),
        BuildChoice::Inferbench => Built::Flat {
            graph: build_graph(&data.base, params, request.seed, &request.interrupt, &bar)?,
            metric: params.metric,
        },
    };
    bar.finish();
    let build_s = started.elapsed().as_secs_f64();
    info.build_s = Some(build_s);
    info.memory_bytes = memory(rss_before);
    eprintln!(
        "index: built {} vectors in {:.1}s ({}'s insertion, M={}, ef_construction={}, {} threads)",
        data.base.len(),
        build_s,
        request.build.name(),
        params.m,
        params.ef_construction,
        info.build_threads
    );
    // hnsw_rs searches a graph built flat only once it has read it back from its files.
    let reload_for_hnsw_rs =
        request.search == SearchChoice::HnswRs && matches!(built, Built::Flat { .. });
    let scratch_dir;
    let save_to = match &dir {
        Some(dir) => Some(dir.clone()),
        None if reload_for_hnsw_rs => {
            scratch_dir = tempfile::tempdir().context("cannot create a temporary folder")?;
            Some(scratch_dir.path().join("index"))
        }
        None => None,
    };
    if let Some(save_to) = &save_to {
        let saved = Instant::now();
        match &built {
            Built::HnswRs(index) => index.save(save_to, &key)?,
            Built::Flat { graph, .. } => {
                Index::save_graph(graph, &data.base, params, save_to, &key)?
            }
        }
        if dir.is_some() {
            info.disk_bytes = Some(Index::disk_bytes(save_to));
            eprintln!(
                "index: saved to {} in hnsw_rs's format in {:.1}s",
                save_to.display(),
                saved.elapsed().as_secs_f64()
            );
        }
    }
    let built = match (reload_for_hnsw_rs, &save_to) {
        (true, Some(save_to)) => {
            drop(built);
            match Index::load(save_to, &key, params.metric) {
                Lookup::Hit(index) => Built::HnswRs(index),
                Lookup::Missing => bail!("{}: the index just saved is gone", save_to.display()),
                Lookup::Unusable(why) => {
                    bail!("hnsw_rs cannot reload the graph inferbench built: {why}")
                }
            }
        }
        _ => built,
    };
    Ok(IndexStep { index: built, info })
}

/// Who built the index, as run.json and the report name it.
fn library_name(build: BuildChoice) -> String {
    let hnsw_rs = crate::build_info::crate_versions()
        .get("hnsw_rs")
        .cloned()
        .unwrap_or_default();
    match build {
        BuildChoice::HnswRs => format!("hnsw_rs {hnsw_rs}"),
        BuildChoice::Inferbench => format!("inferbench-graph, saved as hnsw_rs {hnsw_rs}"),
    }
}

/// inferbench-graph's build over `base`, on rayon's thread count, levels drawn from `seed`.
fn build_graph(
    base: &VectorSet,
    params: IndexParams,
    seed: u64,
    stop: &AtomicBool,
    bar: &Progress,
) -> Result<inferbench_graph::FlatGraph> {
    params.check()?;
    if base.is_empty() {
        bail!("cannot build an index of no vectors");
    }
    let graph_params = inferbench_graph::BuildParams {
        m: params.m,
        ef_construction: params.ef_construction,
        seed,
        threads: rayon::current_num_threads(),
    };
    inferbench_graph::build(
        index::graph_space(params.metric),
        base.dim,
        &base.data,
        graph_params,
        stop,
        &mut |done| bar.set(done),
    )
    .map_err(|e| match e {
        inferbench_graph::BuildError::Interrupted => index::Interrupted.into(),
        other => anyhow::anyhow!("{other}"),
    })
}

/// The headline and targets, from the scenarios measured so far.
fn finish_fields(result: &mut RetrievalRun, recall_target: f64) {
    result.header.touch();
    result.headline = headline(&result.scenarios, recall_target);
    result.targets = targets(&result.scenarios, &result.headline, result.ground_truth.k);
}

fn headline(scenarios: &[EfScenario], target: f64) -> Headline {
    match sweep::headline(scenarios, target) {
        Some(s) => Headline {
            recall_target: target,
            ef: Some(s.ef),
            recall: Some(s.recall),
            p50_ms: Some(s.latency.p50_ms),
            p95_ms: Some(s.latency.p95_ms),
            batch_qps: s.batch_qps.as_ref().map(|r| r.median),
            note: None,
        },
        None => Headline {
            recall_target: target,
            ef: None,
            recall: None,
            p50_ms: None,
            p95_ms: None,
            batch_qps: None,
            note: Some(match scenarios.iter().map(|s| s.recall).reduce(f64::max) {
                Some(best) => format!(
                    "no ef reached recall {target} (best {best:.4}); try larger --ef values"
                ),
                None => "no ef measured".into(),
            }),
        },
    }
}

/// p95 under 20 ms at the headline ef (the mission's), and recall@k >= 0.99 at p95 <= 1 ms
/// on one thread (ours).
fn targets(scenarios: &[EfScenario], headline: &Headline, k: usize) -> Vec<Check> {
    let mut checks = vec![Check {
        target: "headline p95 < 20 ms".into(),
        met: headline.p95_ms.is_some_and(|p| p < 20.0),
        detail: match (headline.ef, headline.p95_ms) {
            (Some(ef), Some(p)) => format!("p95 {p:.3} ms at ef={ef}"),
            _ => "no headline ef".into(),
        },
    }];
    let best = scenarios
        .iter()
        .filter(|s| s.recall >= 0.99)
        .min_by(|a, b| a.latency.p95_ms.total_cmp(&b.latency.p95_ms));
    checks.push(Check {
        target: format!("recall@{k} >= 0.99 at p95 <= 1 ms"),
        met: best.is_some_and(|s| s.latency.p95_ms <= 1.0),
        detail: match best {
            Some(s) => format!(
                "recall {:.4} at ef={} with p95 {:.3} ms",
                s.recall, s.ef, s.latency.p95_ms
            ),
            None => "no ef reached recall 0.99".into(),
        },
    });
    checks
}

fn summary_line(s: &EfScenario) -> String {
    format!(
        "ef {:>4}: recall@{} {:.4}, p50 {:.3} ms, p95 {:.3} ms, {:.0} QPS on 1 thread, {} QPS on {} threads",
        s.ef,
        s.k,
        s.recall,
        s.latency.p50_ms,
        s.latency.p95_ms,
        s.single_thread_qps,
        s.batch_qps
            .as_ref()
            .map_or("-".into(), |r| format!("{:.0}", r.median)),
        s.batch_threads
    )
}

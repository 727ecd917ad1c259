//! `inferbench retrieval`: recall beside latency over an HNSW index, ann-benchmarks style.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Args;

use crate::exit::{as_usage, usage, Outcome};
use crate::report;
use crate::retrieval::{
    self, dataset::MixtureSpec, distance::Metric, index::IndexParams, DataChoice, RetrievalRequest,
    SweepSettings,
};

pub const HELP: &str = "Retrieval benchmark, measured the way ann-benchmarks does: \
every latency beside the recall it was bought with.\n\n\
Data (one of): --data clustered (default: a Gaussian mixture of 1000 clusters, sd 0.3, around \
centres spread like uniform [0, 1) coordinates; --intrinsic-dim D confines each cluster's \
noise to a D-dimensional subspace, --centre-sd and --spread move the clusters apart or \
together), --data hard (10 clusters as wide as their spread: weak structure, \
full intrinsic dimension), \
--vectors FILE (.fvecs, or text: one vector per line, numbers separated by spaces or \
commas), --hdf5 FILE (an ann-benchmarks data set: train, test, neighbors, and its distance \
attribute as the metric), or --text FILE \
(one passage per line, embedded in-process with all-MiniLM-L6-v2: BERT, mean pooling, \
L2-normalised). Synthetic sets draw their own queries from the same distribution; files \
hold --queries vectors out of the index as queries, unless --queries-file gives them \
(with --ground-truth FILE.ivecs, their nearest ids, as ANN data sets ship them).\n\n\
Peers: --export-data DIR writes base.fvecs, query.fvecs and groundtruth.ivecs, the layout \
hnswlib and faiss read, and ann.hdf5, ann-benchmarks' layout; scripts/compare-hnswlib.py \
runs hnswlib and inferbench on them side by side.\n\n\
Steps: generate or read the vectors; exact top-k ground truth by brute force (blocked \
matrix products on all threads); build the graph (--build inferbench, the default: HNSW \
insertion as hnswlib does it, straight into a flat layout; --build hnsw_rs: the library's \
parallel inserts), saved in hnsw_rs's files either way; search it flat (--search flat, the \
default; --search hnsw_rs keeps the library's own search), with its layer-0 links as built \
or chosen again (--links; reselected is the default for hnsw_rs's graph, whose pruning cuts \
clusters apart) and count the nodes no search can reach; then for each ef: every query alone on \
one thread (p50/p90/p95/p99/max latency and recall@k), then all queries over all threads \
(--batch-runs passes, queries/s). The headline is the smallest ef whose recall reaches --recall-target, with its p95. Targets: headline p95 < 20 ms, and \
recall@10 >= 0.99 at p95 <= 1 ms.\n\n\
Ground truth, embeddings and the index are cached under --cache-dir (default \
$INFERBENCH_CACHE or ~/.cache/inferbench/retrieval), keyed by every parameter that shapes \
them, with checksums: a second run reuses them; a damaged entry is reported and rebuilt. \
The size is checked against available memory before anything is allocated.\n\n\
Results go to OUTPUT/RUN_ID/run.json (kind \"retrieval\") and scenarios.csv, rewritten after \
every ef; `inferbench compare` compares two such runs (query latency, queries/s, recall). \
Ctrl-C stops after the current ef's queries and keeps what was measured.\n\n\
Exit codes: 0 complete, 1 error, 2 bad command line, 130 interrupted.";

#[derive(Args)]
pub struct RetrievalArgs {
    /// quick: 100,000 vectors; full: 1,000,000 (the default size). --n overrides.
    #[arg(long, value_parser = ["quick", "full"])]
    preset: Option<String>,
    /// Synthetic data: clustered or hard.
    #[arg(long, default_value = "clustered", value_parser = ["clustered", "hard"], conflicts_with_all = ["vectors", "text", "hdf5"])]
    data: String,
    /// Vectors file: .fvecs, or text with one vector per line, numbers separated by spaces
    /// or commas.
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    vectors: Option<PathBuf>,
    /// Passages file: one passage per line, embedded with --embedding-model.
    #[arg(long, value_name = "FILE")]
    text: Option<PathBuf>,
    /// An ann-benchmarks HDF5 file (sift-128-euclidean.hdf5, glove-100-angular.hdf5, or
    /// your own in that layout): `train` is indexed, `test` queried, `neighbors` is the
    /// ground truth, and the `distance` attribute picks the metric.
    #[arg(long, value_name = "FILE.hdf5", conflicts_with_all = ["vectors", "text", "queries_file", "ground_truth"])]
    hdf5: Option<PathBuf>,
    /// Queries from this file (vectors for --vectors, passages for --text) instead of
    /// holding --queries out of the data.
    #[arg(long, value_name = "FILE")]
    queries_file: Option<PathBuf>,
    /// Ground truth from this .ivecs file (each query's nearest base ids, in the queries'
    /// order) instead of brute force; needs --vectors and --queries-file.
    #[arg(
        long,
        value_name = "FILE.ivecs",
        requires = "queries_file",
        requires = "vectors"
    )]
    ground_truth: Option<PathBuf>,
    /// Write the base vectors, queries and ground truth to this folder as base.fvecs,
    /// query.fvecs and groundtruth.ivecs (the layout hnswlib and faiss read) and as ann.hdf5
    /// (ann-benchmarks' layout), then run as usual: scripts/compare-hnswlib.py runs the peer
    /// on them.
    #[arg(long, value_name = "DIR")]
    export_data: Option<PathBuf>,
    /// Sentence-embedding model for --text (a BERT repo id or local folder).
    #[arg(long, default_value = crate::retrieval::embed::DEFAULT_EMBEDDING_MODEL)]
    embedding_model: String,
    /// Vectors in the index (synthetic data).
    #[arg(long)]
    n: Option<usize>,
    /// Dimension of synthetic vectors (384 is MiniLM's).
    #[arg(long, default_value_t = 384)]
    dim: usize,
    /// Queries: drawn apart for synthetic data, held out of a file's vectors otherwise.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Synthetic data: number of clusters (default 1000 clustered, 10 hard).
    #[arg(long)]
    clusters: Option<usize>,
    /// Synthetic data: standard deviation around each centre, per coordinate (default 0.3
    /// clustered, 1.0 hard).
    #[arg(long)]
    spread: Option<f32>,
    /// Synthetic data: standard deviation of the cluster centres' coordinates (default
    /// 0.2887, as uniform [0, 1) coordinates, clustered; 1.0 hard).
    #[arg(long)]
    centre_sd: Option<f32>,
    /// Synthetic data: dimensions the noise spans inside each cluster (a random subspace per
    /// cluster), or `full` (the default).
    #[arg(long, value_name = "D|full")]
    intrinsic_dim: Option<String>,
    /// Seed of the data (and of which file vectors become queries).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Distance: l2, cosine or dot (dot normalises the vectors). Default l2; cosine for --text.
    #[arg(long, value_parser = ["l2", "cosine", "dot"])]
    metric: Option<String>,
    /// HNSW links per node (M).
    #[arg(long = "m", default_value_t = 16)]
    m: usize,
    /// HNSW beam width while building.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Whose insertion builds the graph: inferbench (HNSW's diversity rule on both ends of
    /// every link, as hnswlib, straight into the flat layout) or hnsw_rs (the library's
    /// parallel insert). Either is saved in hnsw_rs's files.
    #[arg(long, default_value = "inferbench", value_parser = ["inferbench", "hnsw_rs"])]
    build: String,
    /// Whose search answers the queries: flat (the graph in one contiguous layout: same
    /// neighbours as hnsw_rs's search, faster) or hnsw_rs (the library's own search).
    #[arg(long, default_value = "flat", value_parser = ["flat", "hnsw_rs"])]
    search: String,
    /// The flat search's layer-0 links: reselected (each node's links chosen again from its
    /// links and back-links with HNSW's diversity rule, and a link into every node no path
    /// led to: hnsw_rs prunes overflowing lists to the nearest, which cuts clusters apart)
    /// repaired (the graph as built and a link into every node no path led to: the rule can
    /// prune a node's last link in) or as-built (the graph exactly as built). Default:
    /// repaired for --build inferbench, reselected for --build hnsw_rs.
    #[arg(long, value_parser = ["reselected", "repaired", "as-built"])]
    links: Option<String>,
    /// The ef values to sweep, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128,256")]
    ef: Vec<usize>,
    /// Neighbours per query (recall@k).
    #[arg(short = 'k', long, default_value_t = 10)]
    k: usize,
    /// Recall the headline ef must reach.
    #[arg(long, default_value_t = 0.95)]
    recall_target: f64,
    /// Passes of all queries over all threads per ef, for queries/s.
    #[arg(long, default_value_t = 3)]
    batch_runs: u32,
    /// Untimed queries before each ef's timed ones.
    #[arg(long, default_value_t = 100)]
    warmup_queries: usize,
    /// Cache folder for ground truth, embeddings and indexes.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compute everything afresh and cache nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
    /// Folder that holds one folder per run.
    #[arg(long, short = 'o', default_value = "results")]
    output: PathBuf,
    /// Name of this run's folder (default: retrieval-YYYYMMDDTHHMMSSZ).
    #[arg(long)]
    run_id: Option<String>,
    #[command(flatten)]
    pages: super::pages::PageArgs,
}

impl RetrievalArgs {
    /// The flags as the library's request, every flag checked: bad ones are usage errors
    /// (exit 2).
    pub fn request(&self, interrupt: Arc<AtomicBool>) -> anyhow::Result<RetrievalRequest> {
        let n = self.n.unwrap_or(match self.preset.as_deref() {
            Some("quick") => 100_000,
            _ => 1_000_000,
        });
        let data = match (&self.hdf5, &self.vectors, &self.text) {
            (Some(path), _, _) => DataChoice::Hdf5 { path: path.clone() },
            (None, Some(path), _) => DataChoice::Vectors {
                path: path.clone(),
                queries: self.queries_file.clone(),
            },
            (None, None, Some(path)) => DataChoice::Text {
                path: path.clone(),
                model: self.embedding_model.clone(),
                queries: self.queries_file.clone(),
            },
            (None, None, None) => {
                if self.queries_file.is_some() {
                    return Err(usage("--queries-file goes with --vectors or --text"));
                }
                let base = if self.data == "hard" {
                    MixtureSpec::hard(n, self.dim)
                } else {
                    MixtureSpec::clustered(n, self.dim)
                };
                DataChoice::Mixture {
                    label: self.data.clone(),
                    spec: MixtureSpec {
                        queries: self.queries,
                        clusters: self.clusters.unwrap_or(base.clusters),
                        spread: self.spread.unwrap_or(base.spread),
                        centre_sd: self.centre_sd.unwrap_or(base.centre_sd),
                        intrinsic_dim: match self.intrinsic_dim.as_deref() {
                            None => base.intrinsic_dim,
                            Some("full") => None,
                            Some(d) => Some(d.parse().map_err(|_| {
                                usage(format!("--intrinsic-dim {d}: expected a number or `full`"))
                            })?),
                        },
                        seed: self.seed,
                        ..base
                    },
                }
            }
        };
        let metric_name = match (&self.metric, &self.hdf5) {
            (Some(m), _) => m.clone(),
            // An ann-benchmarks file says which distance its neighbours are for.
            (None, Some(path)) => match retrieval::hdf5::distance_attribute(path)? {
                Some(d) => retrieval::hdf5::metric_for(&d)
                    .map(|m| m.name().to_string())
                    .unwrap_or(d),
                None => "l2".into(),
            },
            (None, None) if self.text.is_some() => "cosine".into(),
            (None, None) => "l2".into(),
        };
        let metric = Metric::parse(&metric_name).ok_or_else(|| {
            usage(format!(
                "--metric {metric_name}: expected l2, cosine or dot"
            ))
        })?;
        let cache_dir = (!self.no_cache).then(|| {
            self.cache_dir
                .clone()
                .unwrap_or_else(|| retrieval::cache::default_dir().join("retrieval"))
        });
        let build = retrieval::searcher::BuildChoice::parse(&self.build).map_err(as_usage)?;
        let request = RetrievalRequest {
            data,
            file_queries: self.queries,
            seed: self.seed,
            index: IndexParams {
                metric,
                m: self.m,
                ef_construction: self.ef_construction,
            },
            sweep: SweepSettings {
                efs: self.ef.clone(),
                k: self.k,
                batch_runs: self.batch_runs,
                warmup_queries: self.warmup_queries,
            },
            recall_target: self.recall_target,
            cache_dir,
            output: self.output.clone(),
            run_id: self.run_id.clone(),
            interrupt,
            ground_truth_file: self.ground_truth.clone(),
            export_data: self.export_data.clone(),
            build,
            search: retrieval::searcher::SearchChoice::parse(&self.search).map_err(as_usage)?,
            links: match &self.links {
                Some(links) => retrieval::searcher::Links::parse(links).map_err(as_usage)?,
                None => retrieval::searcher::Links::for_build(build),
            },
        };
        request.check().map_err(as_usage)?;
        Ok(request)
    }
}

pub fn handle(args: RetrievalArgs) -> anyhow::Result<Outcome> {
    let interrupt = super::interrupt::install(
        "the index build's current batch, or the current ef of the sweep, keeping every finished ef",
    )?;
    let request = args.request(interrupt.clone())?;
    let pages = args.pages.start("inferbench retrieval")?;
    let Some(outcome) = retrieval::run(request)? else {
        eprintln!("interrupted before the ef sweep: nothing measured, nothing cached");
        return Ok(Outcome::Interrupted);
    };
    println!("{}", report::retrieval::table(&outcome.result));
    let done = super::results_written(&outcome.dir, &outcome.result.header);
    pages.finish(&outcome.dir, &interrupt);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_support::{parse, usage_message};

    fn request(args: &[&str]) -> anyhow::Result<RetrievalRequest> {
        match parse("retrieval", args) {
            crate::cli::Command::Retrieval(a) => a.request(Arc::default()),
            _ => unreachable!(),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        usage_message(request(args))
    }

    #[test]
    fn presets_and_flags_shape_the_request() {
        let quick = request(&["--preset", "quick"]).unwrap();
        let DataChoice::Mixture { spec, label } = &quick.data else {
            panic!("synthetic data");
        };
        assert_eq!((spec.n, label.as_str()), (100_000, "clustered"));
        let small = request(&["--n", "5000", "--data", "hard", "--intrinsic-dim", "8"]).unwrap();
        let DataChoice::Mixture { spec, .. } = &small.data else {
            panic!("synthetic data");
        };
        assert_eq!((spec.n, spec.intrinsic_dim), (5000, Some(8)));
        assert_eq!(small.index.metric, Metric::L2);
    }

    #[test]
    fn bad_flags_are_usage_errors_naming_the_flag() {
        assert!(usage_error(&["--n", "1000", "--intrinsic-dim", "x"]).contains("--intrinsic-dim"));
        assert!(usage_error(&["--n", "1000", "--ef", "0"]).contains("--ef"));
        assert!(usage_error(&["--n", "1000", "--recall-target", "2"]).contains("--recall-target"));
        assert!(usage_error(&["--queries-file", "q.txt"]).contains("--queries-file"));
    }
}

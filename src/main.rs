//! The inferbench command line: parses, calls the library, maps errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use inferbench::device::{self, DeviceRequest, MachineInfo};
use inferbench::engine::{self, GenerationParams, SamplingParams};
use inferbench::model::{self, LoadOptions, ModelRef, WeightsMode};
use inferbench::workload::synthetic;
use inferbench::{config, report, suite};

#[derive(Parser)]
#[command(
    name = "inferbench",
    version,
    about = "Benchmarks for LLM inference and retrieval, in-process (candle) and over HTTP",
    long_about = "Benchmarks for LLM inference and retrieval, in-process (candle) and over HTTP.\n\n\
                  Models load from a local file or folder, the Hugging Face cache, or an hf-hub \
                  download (set HF_HUB_OFFLINE=1 to stay offline). scripts/fetch-models.sh seeds \
                  the cache with the default model."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the machine: CPU, cores, memory, GPUs, driver, compiled features.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Generate text for a prompt and print one line of timings.
    Generate(Box<GenerateArgs>),
    /// Run a benchmark suite: every scenario (batch × prompt length × output length) of a
    /// preset or config, warm-up apart, into results/RUN_ID/ (run.json, scenarios.csv) and
    /// a table.
    #[command(long_about = RUN_HELP)]
    Run(RunArgs),
    /// Retrieval: build (or reuse) an HNSW index over vectors (synthetic clustered or hard
    /// data, a vectors file, or MiniLM embeddings of a text file), compute exact ground
    /// truth, and sweep ef: recall@k beside single-query latency percentiles and batch QPS.
    #[command(long_about = RETRIEVAL_HELP)]
    Retrieval(Box<RetrievalArgs>),
    /// Load-test a serving endpoint (OpenAI-compatible, TGI or any JSON POST): closed-loop
    /// concurrency or open-loop request rates, a saturation sweep, a max-throughput probe;
    /// TTFT, ITL, TPOT, end-to-end latency, tokens/s, goodput and classified errors.
    #[command(long_about = LOAD_HELP)]
    Load(Box<LoadArgs>),
    /// Serve the in-process engine over an OpenAI-compatible HTTP API (completions, chat,
    /// models, health, Prometheus metrics) on 127.0.0.1.
    #[command(long_about = SERVE_HELP)]
    Serve(Box<ServeArgs>),
    /// Compare a run against a baseline and give a verdict: Criterion baselines
    /// (--baseline NAME) or two suite results (BASE CURRENT). Exit 0 no regression, 1
    /// regression, 2 bad input.
    #[command(long_about = COMPARE_HELP)]
    Compare(CompareArgs),
    /// Save a Criterion baseline and/or a suite result into baseline/PROFILE/ with this
    /// machine's fingerprint, or restore one for `cargo bench -- --baseline NAME`.
    #[command(subcommand)]
    Baseline(BaselineCommand),
}

const COMPARE_HELP: &str = "Compare the current measurements against a baseline, benchmark \
by benchmark, and give a verdict CI can fail on.\n\n\
Criterion: `inferbench compare --baseline main` compares target/criterion/**/new (the last \
`cargo bench`) against the baseline saved as `main` (`cargo bench -- --save-baseline main`, \
or `inferbench baseline restore main`). Suite results: `inferbench compare BASE CURRENT` with \
two run.json files or run folders.\n\n\
Each change is tested, not just thresholded: percentiles by a seeded bootstrap confidence \
interval of the ratio current/baseline (Criterion's per-sample times; the suite's latency \
histograms), per-run throughputs by Welch's t-test. A relative rule fires only when the \
whole 95% interval lies past its threshold (with `significance = \"differs\"`: when the change \
is past it and the interval excludes no change). Default rules: FAIL when p95 worsens by > 20% or the error rate exceeds \
1%; WARN when p95 worsens by > 10%, p50 moves by > 15%, or throughput moves by > 15%. A \
config file's [regress] section changes them (confidence, resamples, significance, \
[[regress.rules]] with statistic, optional metric, worse_by / moves_by / above, verdict).\n\n\
Benchmarks only in the baseline are listed as removed, only in the current run as new. A \
baseline from other hardware is a loud warning (exit 2 with --strict).\n\n\
Exit codes: 0 no regression (warnings allowed, unless --fail-on-warn), 1 regression, 2 bad \
input or a refused comparison.";

#[derive(Args)]
struct CompareArgs {
    /// Suite results: the baseline run (run.json or its folder).
    #[arg(value_name = "BASE", requires = "current_run")]
    base_run: Option<PathBuf>,
    /// Suite results: the current run (run.json or its folder).
    #[arg(value_name = "CURRENT")]
    current_run: Option<PathBuf>,
    /// Criterion: the saved baseline to compare against.
    #[arg(long, conflicts_with_all = ["base_run", "current_run"], required_unless_present = "base_run")]
    baseline: Option<String>,
    /// Criterion: the run to compare (default `new`, what the last `cargo bench` wrote).
    #[arg(long, default_value = "new", requires = "baseline")]
    current: String,
    /// Criterion's results folder.
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
    /// Rules from this config file's [regress] section (it may extend a preset).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Refuse to compare measurements from different hardware (exit 2).
    #[arg(long)]
    strict: bool,
    /// Exit 1 on warnings too.
    #[arg(long)]
    fail_on_warn: bool,
    /// Print nothing unless something warned or failed, and then only those rows.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Also write the comparison as Markdown (for a pull-request comment) to this file.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Also write the comparison as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BaselineCommand {
    /// Copy Criterion baseline NAME (target/criterion/**/NAME) and/or a suite result into
    /// baseline/PROFILE/, with this machine's fingerprint, to commit.
    Save {
        name: String,
        #[command(flatten)]
        place: BaselinePlace,
        /// A suite result (run.json or its folder) to keep as baseline/PROFILE/runs/NAME.json.
        #[arg(long)]
        run: Option<PathBuf>,
    },
    /// Copy baseline/PROFILE/'s Criterion baseline NAME back into target/criterion.
    Restore {
        name: String,
        #[command(flatten)]
        place: BaselinePlace,
    },
    /// List the saved profiles and their baselines.
    List {
        /// The folder of committed baselines.
        #[arg(long, default_value = "baseline")]
        store: PathBuf,
    },
}

#[derive(Args)]
struct BaselinePlace {
    /// Hardware profile folder under the store (default: a slug of this machine's GPU, or of
    /// its CPU and thread count).
    #[arg(long)]
    profile: Option<String>,
    /// The folder of committed baselines.
    #[arg(long, default_value = "baseline")]
    store: PathBuf,
    /// Criterion's results folder.
    #[arg(long, default_value = "target/criterion")]
    criterion_dir: PathBuf,
}

const RUN_HELP: &str = "Run a benchmark suite: every scenario (batch size × prompt length × \
output length) of a preset or config file. Each scenario does its warm-up runs (reported \
apart), then its measured runs, recording every request's TTFT, inter-token gaps, TPOT and \
end-to-end latency, and the decode, end-to-end and prompt tokens/s of each run.\n\n\
Results go to OUTPUT/RUN_ID/run.json (one versioned JSON schema) and scenarios.csv, \
rewritten atomically after every scenario: Ctrl-C stops after the current generation and \
keeps every finished scenario (the run is marked interrupted; Ctrl-C twice quits at once), \
and --resume RUN_ID measures only what is missing. The table at the end is Markdown.\n\n\
Presets: quick (default; a couple of minutes on 2 CPU cores), full, tok_throughput, \
cpu_only, rtx_4090, h100, production. A config file is TOML with the same fields, and may \
`extends = \"quick\"` (a preset or another file) to override only some of them; \
--dry-run prints the resolved config and its scenarios. Targets come from the hardware \
profile presets (cpu_only, rtx_4090, h100) and give the run a grade: Excellent >= 90% of \
checks met, Good 80-89%, Acceptable 60-79%, Poor below.\n\n\
Exit codes: 0 complete, 1 error, 2 bad command line, 130 interrupted.";

#[derive(Args)]
struct RunArgs {
    /// A built-in preset: quick, full, tok_throughput, cpu_only, rtx_4090, h100, production.
    #[arg(long, conflicts_with_all = ["config", "resume"])]
    preset: Option<String>,
    /// A TOML config file (may `extends` a preset or another file).
    #[arg(long, conflicts_with = "resume")]
    config: Option<PathBuf>,
    /// Carry on an interrupted run: its id under --output, or its folder. Runs only the
    /// scenarios it has not finished, with the config it was started with.
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
    /// Only the scenarios whose name (e.g. b8_p128_o64) matches this regular expression.
    #[arg(long, conflicts_with = "resume")]
    filter: Option<String>,
    /// Override the config's device: auto, cpu, cuda or cuda:N.
    #[arg(long, conflicts_with = "resume")]
    device: Option<String>,
    /// Folder that holds one folder per run.
    #[arg(long, short = 'o', default_value = "results")]
    output: PathBuf,
    /// Name of this run's folder (default: CONFIG-YYYYMMDDTHHMMSSZ).
    #[arg(long, conflicts_with = "resume")]
    run_id: Option<String>,
    /// Print the resolved config and the scenarios, and measure nothing.
    #[arg(long)]
    dry_run: bool,
}

const RETRIEVAL_HELP: &str = "Retrieval benchmark, measured the way ann-benchmarks does: \
every latency beside the recall it was bought with.\n\n\
Data (one of): --data clustered (default: a Gaussian mixture of 1000 clusters, sd 0.3, around \
centres spread like uniform [0, 1) coordinates; --intrinsic-dim D confines each cluster's \
noise to a D-dimensional subspace, --centre-sd and --spread move the clusters apart or \
together), --data hard (10 clusters as wide as their spread: weak structure, \
full intrinsic dimension), \
--vectors FILE (one vector per line, numbers separated by spaces or commas), or --text FILE \
(one passage per line, embedded in-process with all-MiniLM-L6-v2: BERT, mean pooling, \
L2-normalised). Synthetic sets draw their own queries from the same distribution; files \
hold --queries vectors out of the index as queries.\n\n\
Steps: generate or read the vectors; exact top-k ground truth by brute force (blocked \
matrix products on all threads); build the hnsw_rs index (parallel inserts); then for each \
ef: every query alone on one thread (p50/p90/p95/p99/max latency and recall@k), then all \
queries over all threads (--batch-runs passes, queries/s). The headline is the smallest ef \
whose recall reaches --recall-target, with its p95. Targets: headline p95 < 20 ms, and \
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
struct RetrievalArgs {
    /// quick: 100,000 vectors; full: 1,000,000 (the default size). --n overrides.
    #[arg(long, value_parser = ["quick", "full"])]
    preset: Option<String>,
    /// Synthetic data: clustered or hard.
    #[arg(long, default_value = "clustered", value_parser = ["clustered", "hard"], conflicts_with_all = ["vectors", "text"])]
    data: String,
    /// Vectors file: one vector per line, numbers separated by spaces or commas.
    #[arg(long, value_name = "FILE", conflicts_with = "text")]
    vectors: Option<PathBuf>,
    /// Passages file: one passage per line, embedded with --embedding-model.
    #[arg(long, value_name = "FILE")]
    text: Option<PathBuf>,
    /// Queries from this file (vectors for --vectors, passages for --text) instead of
    /// holding --queries out of the data.
    #[arg(long, value_name = "FILE")]
    queries_file: Option<PathBuf>,
    /// Sentence-embedding model for --text (a BERT repo id or local folder).
    #[arg(long, default_value = inferbench::retrieval::embed::DEFAULT_EMBEDDING_MODEL)]
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
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// Model: a local .gguf / .safetensors / config.json file, a folder, or a hub repo id
    /// (ORG/NAME). Default: the SmolLM2-135M-Instruct Q4_1 GGUF.
    #[arg(long, short = 'm')]
    model: Option<String>,
    /// File inside the folder or repo to load (a GGUF file, for repos with several).
    #[arg(long)]
    model_file: Option<String>,
    /// Hub revision: branch, tag or commit.
    #[arg(long)]
    revision: Option<String>,
    /// real: load the weights; dummy: random weights of the shapes in config.json.
    #[arg(long, default_value = "real")]
    weights: WeightsMode,
    /// Weight dtype for safetensors and dummy models: f32, f16 or bf16 (default f32 on CPU,
    /// bf16 on CUDA). GGUF models keep their quantisation.
    #[arg(long, value_parser = model::parse_dtype)]
    dtype: Option<candle_core::DType>,
    /// Requantise GGUF weights that candle has no fast CPU kernel for (Q4_1, Q5_0, Q5_1) at
    /// load: auto (q8_0 on CPU, none on CUDA), none (the file's own quantisation and kernels),
    /// q8_0, q4_0 (lossy); or f32 to dequantise every weight (float reference numerics, slow).
    /// The model's dtype says what was done, e.g. "Q4_1 repacked to Q8_0".
    #[arg(long, default_value = "auto")]
    repack: model::Repack,
    /// GGUF models: from this many rows (batch × prompt tokens) on, a matmul dequantises its
    /// weight and uses the f32 GEMM, faster for prefill on CPU. Default 32 on CPU, off on
    /// CUDA; 0 turns it off (every matmul quantised).
    #[arg(long)]
    prefill_gemm_rows: Option<usize>,
    /// GGUF models: MiB of dequantised weights the prefill GEMM keeps between prefills
    /// instead of dequantising every matrix at every prefill (default 2048; 0 keeps none).
    /// Costs memory (about 4 bytes per parameter kept), saves most of a short prompt's TTFT.
    #[arg(long, value_name = "MIB")]
    prefill_cache_mb: Option<u64>,
    /// Use this tokenizer (a tokenizer.json, or a GGUF file's embedded one) instead of the model's.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// auto (CUDA if built in and present, else CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceRequest,
}

impl ModelArgs {
    fn load_options(&self) -> LoadOptions {
        let model = ModelRef::from_parts(
            self.model.as_deref(),
            self.model_file.as_deref(),
            self.revision.as_deref(),
        );
        LoadOptions {
            model,
            weights: self.weights,
            dtype: self.dtype,
            repack: self.repack,
            prefill_gemm_rows: self.prefill_gemm_rows,
            prefill_cache_mb: self.prefill_cache_mb,
            tokenizer: self.tokenizer.clone(),
        }
    }
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text.
    #[arg(long, short = 'p', required_unless_present = "prompt_tokens")]
    prompt: Option<String>,
    /// Instead of --prompt: a synthetic prompt of exactly this many tokens (real prose).
    #[arg(long, conflicts_with_all = ["prompt", "chat"], value_parser = clap::value_parser!(u32).range(1..))]
    prompt_tokens: Option<u32>,
    /// Wrap the prompt in the model's chat template (one user turn).
    #[arg(long)]
    chat: bool,
    /// Most tokens to generate per answer.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
    /// Answers generated together in one batch (the prompt repeated).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Seed for sampling (row i uses seed + i).
    #[arg(long, default_value_t = 299792458)]
    seed: u64,
    /// Keep generating past end-of-sequence tokens (fixed output length).
    #[arg(long)]
    ignore_eos: bool,
    /// Untimed generations of the same shape first (page in weights, warm caches and thread
    /// pools); their TTFT is printed apart.
    #[arg(long, default_value_t = 0)]
    warmup: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { json } => info(json),
        Command::Generate(args) => generate(*args),
        Command::Run(args) => run(args),
        Command::Compare(args) => compare(args).or_else(|e| {
            // Bad input is exit 2, apart from a regression's 1.
            eprintln!("error: {e:#}");
            Ok(ExitCode::from(2))
        }),
        Command::Baseline(cmd) => baseline(cmd),
        Command::Retrieval(args) => retrieval(*args),
        Command::Load(args) => load(*args),
        Command::Serve(args) => serve(*args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn info(json: bool) -> anyhow::Result<ExitCode> {
    let machine = MachineInfo::collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&machine)?);
        return Ok(ExitCode::SUCCESS);
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!("inferbench {}", machine.inferbench_version);
    println!(
        "os:        {} (kernel {})",
        machine.os.as_deref().unwrap_or("unknown"),
        machine.kernel.as_deref().unwrap_or("unknown")
    );
    println!("cpu:       {}", machine.cpu_model);
    println!(
        "cores:     {} logical, {} physical; candle uses {} threads",
        machine.cpu_logical_cores,
        machine
            .cpu_physical_cores
            .map_or("unknown".into(), |c| c.to_string()),
        machine.compute_threads
    );
    println!("simd:      {}", machine.cpu_simd.join(" "));
    println!("memory:    {:.1} GiB", gib(machine.memory_total_bytes));
    if machine.gpus.is_empty() {
        println!(
            "gpus:      none ({})",
            machine.gpu_note.as_deref().unwrap_or("unknown")
        );
    }
    for g in &machine.gpus {
        println!(
            "gpu {}:     {} ({:.1} GiB)",
            g.index,
            g.name,
            gib(g.memory_total_bytes)
        );
    }
    if let Some(d) = &machine.gpu_driver {
        println!(
            "driver:    {d} (CUDA {})",
            machine.cuda_driver_version.as_deref().unwrap_or("?")
        );
    }
    println!(
        "features:  {}",
        if machine.compiled_features.is_empty() {
            "none".into()
        } else {
            machine.compiled_features.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let selected = device::select(args.model.device)?;
    eprintln!("device: {} ({})", selected.name, selected.reason);
    let mut loaded = model::load(&args.model.load_options(), &selected.device)?;
    let info = &loaded.info;
    eprintln!(
        "model: {} [{} {} {}, {:.0}M params] loaded in {:.2} s; tokenizer: {}",
        info.name,
        info.format,
        info.architecture,
        info.dtype,
        info.parameters as f64 / 1e6,
        info.load_seconds,
        loaded.tokenizer.source
    );
    if let Some(note) = &loaded.tokenizer.note {
        eprintln!("note: {note}");
    }
    let prompt = match (&args.prompt, args.prompt_tokens) {
        (_, Some(n)) => synthetic::prompt_of_length(&loaded.tokenizer, n as usize)?,
        (Some(p), None) if args.chat => loaded
            .tokenizer
            .encode(&loaded.tokenizer.apply_chat_template(p)?)?,
        (Some(p), None) => loaded.tokenizer.encode(p)?,
        (None, None) => anyhow::bail!("give --prompt TEXT or --prompt-tokens N"),
    };
    let ignore_eos = args.ignore_eos || args.model.weights == WeightsMode::Dummy;
    if ignore_eos && !args.ignore_eos {
        eprintln!("note: dummy weights: generating past EOS to the full --max-tokens");
    }
    let params = GenerationParams {
        max_tokens: args.max_tokens as usize,
        sampling: SamplingParams {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        },
        ignore_eos,
        eos_token_ids: loaded.tokenizer.eos_token_ids.clone(),
        context_length: loaded.info.context_length,
    };
    let prompts = vec![prompt; args.batch as usize];
    let mut run = || {
        engine::generate(
            loaded.model.as_mut(),
            &selected.device,
            &prompts,
            &params,
            |_| {},
        )
    };
    for i in 0..args.warmup {
        let w = run()?;
        eprintln!(
            "warm-up {}/{}: TTFT {:.1} ms, decode {}",
            i + 1,
            args.warmup,
            w.timeline.ttft().unwrap_or_default().as_secs_f64() * 1e3,
            w.timeline
                .decode_tokens_per_second()
                .map_or("n/a".into(), |v| format!("{v:.1} tok/s"))
        );
    }
    let out = run()?;
    for (row, tokens) in out.tokens.iter().enumerate() {
        let answer = loaded.tokenizer.decode(tokens)?;
        if out.batch() > 1 {
            println!("[{}] {}", row + 1, answer.trim());
        } else {
            println!("{}", answer.trim());
        }
    }
    let t = &out.timeline;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "timings: batch {} | prompt {} tok | TTFT {:.1} ms | prompt {:.1} tok/s | decode {} tok in {:.1} ms = {} | generated {} tok | device {}",
        out.batch(),
        out.prompt_tokens,
        t.ttft().map(ms).unwrap_or(0.0),
        out.prefill_tokens_per_second().unwrap_or(0.0),
        t.decode_tokens(),
        ms(t.decode_time()),
        t.decode_tokens_per_second()
            .map_or("n/a (one token)".into(), |v| format!("{v:.1} tok/s")),
        t.total_tokens(),
        selected.name,
    );
    Ok(ExitCode::SUCCESS)
}

/// Exit code of a run that Ctrl-C stopped (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let start = match &args.resume {
        Some(id) => suite::Start::Resume(id.clone()),
        None => {
            let mut resolved = match (&args.config, &args.preset) {
                (Some(path), _) => config::load_file(path)?,
                (None, preset) => config::load_preset(preset.as_deref().unwrap_or("quick"))?,
            };
            if let Some(device) = &args.device {
                resolved.config.model.device = device.clone();
                resolved
                    .config
                    .device_request()
                    .map_err(|e| anyhow::anyhow!("--device: {e}"))?;
                resolved.sources.insert(0, format!("--device {device}"));
            }
            let filter = args
                .filter
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--filter: not a regular expression: {e}"))?;
            if args.dry_run {
                dry_run(&resolved, filter.as_ref())?;
                return Ok(ExitCode::SUCCESS);
            }
            suite::Start::New {
                config: Box::new(resolved),
                filter,
                run_id: args.run_id.clone(),
            }
        }
    };
    if args.dry_run {
        anyhow::bail!("--dry-run with --resume: nothing to resolve; read the run's run.json");
    }
    let interrupt = install_interrupt("the current generation, keeping every finished scenario")?;
    let outcome = suite::run(suite::RunRequest {
        start,
        output_dir: args.output.clone(),
        interrupt,
    })?;
    println!("{}", report::table::render(&outcome.result));
    eprintln!(
        "results: {} ({}, {})",
        outcome.dir.join(report::json::RUN_FILE).display(),
        report::json::CSV_FILE,
        match outcome.result.status {
            report::RunStatus::Complete => "complete".to_string(),
            _ => format!(
                "incomplete: carry on with `inferbench run --resume {}`",
                outcome.result.run_id
            ),
        }
    );
    Ok(if outcome.result.status.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INTERRUPTED)
    })
}

/// Ctrl-C sets the flag (the run stops at its next check and keeps what it measured); a
/// second Ctrl-C quits at once.
fn install_interrupt(what: &'static str) -> anyhow::Result<Arc<AtomicBool>> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: quitting now");
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        eprintln!("\ninterrupt: stopping after {what} (Ctrl-C again to quit now)");
    })
    .map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))?;
    Ok(interrupt)
}

/// Say where a run's files are; exit 0 when it completed, 130 when it was interrupted.
fn results_written(dir: &std::path::Path, header: &report::RunHeader) -> ExitCode {
    eprintln!(
        "results: {} ({})",
        dir.join(report::json::RUN_FILE).display(),
        report::json::CSV_FILE
    );
    if header.status.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INTERRUPTED)
    }
}

fn retrieval(args: RetrievalArgs) -> anyhow::Result<ExitCode> {
    use inferbench::retrieval::{
        self, dataset::MixtureSpec, distance::Metric, index::IndexParams, DataChoice,
        RetrievalRequest, SweepSettings,
    };
    let n = args.n.unwrap_or(match args.preset.as_deref() {
        Some("quick") => 100_000,
        _ => 1_000_000,
    });
    let data = match (&args.vectors, &args.text) {
        (Some(path), _) => DataChoice::Vectors {
            path: path.clone(),
            queries: args.queries_file.clone(),
        },
        (None, Some(path)) => DataChoice::Text {
            path: path.clone(),
            model: args.embedding_model.clone(),
            queries: args.queries_file.clone(),
        },
        (None, None) => {
            if args.queries_file.is_some() {
                anyhow::bail!("--queries-file goes with --vectors or --text");
            }
            let base = if args.data == "hard" {
                MixtureSpec::hard(n, args.dim)
            } else {
                MixtureSpec::clustered(n, args.dim)
            };
            DataChoice::Mixture {
                label: args.data.clone(),
                spec: MixtureSpec {
                    queries: args.queries,
                    clusters: args.clusters.unwrap_or(base.clusters),
                    spread: args.spread.unwrap_or(base.spread),
                    centre_sd: args.centre_sd.unwrap_or(base.centre_sd),
                    intrinsic_dim: match args.intrinsic_dim.as_deref() {
                        None => base.intrinsic_dim,
                        Some("full") => None,
                        Some(d) => Some(d.parse().map_err(|_| {
                            anyhow::anyhow!("--intrinsic-dim {d}: expected a number or `full`")
                        })?),
                    },
                    seed: args.seed,
                    ..base
                },
            }
        }
    };
    let metric_name = args
        .metric
        .clone()
        .unwrap_or_else(|| if args.text.is_some() { "cosine" } else { "l2" }.into());
    let metric = Metric::parse(&metric_name)
        .ok_or_else(|| anyhow::anyhow!("--metric {metric_name}: expected l2, cosine or dot"))?;
    let cache_dir = (!args.no_cache).then(|| {
        args.cache_dir
            .clone()
            .unwrap_or_else(|| retrieval::cache::default_dir().join("retrieval"))
    });
    let interrupt = install_interrupt(
        "the index build's current batch, or the current ef of the sweep, keeping every finished ef",
    )?;
    let outcome = match retrieval::run(RetrievalRequest {
        data,
        file_queries: args.queries,
        seed: args.seed,
        index: IndexParams {
            metric,
            m: args.m,
            ef_construction: args.ef_construction,
        },
        sweep: SweepSettings {
            efs: args.ef.clone(),
            k: args.k,
            batch_runs: args.batch_runs,
            warmup_queries: args.warmup_queries,
        },
        recall_target: args.recall_target,
        cache_dir,
        output: args.output.clone(),
        run_id: args.run_id.clone(),
        interrupt,
    })? {
        Some(outcome) => outcome,
        None => {
            eprintln!("interrupted before the ef sweep: nothing measured, nothing cached");
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
    };
    println!("{}", report::retrieval::table(&outcome.result));
    Ok(results_written(&outcome.dir, &outcome.result.header))
}

fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    use inferbench::regress::{self, baseline::Fingerprint, render, Verdict};
    let settings = match &args.config {
        Some(path) => config::load_file(path)?.config.regress,
        None => regress::RegressSection::default(),
    };
    let machine = MachineInfo::collect();
    let now = Fingerprint::of(&machine);
    let (base, current, labels, base_fingerprint) = match (&args.base_run, &args.current_run) {
        (Some(b), Some(c)) => {
            let base_run = regress::suite::load(b)?;
            let cur_run = regress::suite::load(c)?;
            if base_run.kind != cur_run.kind {
                anyhow::bail!(
                    "{} is a {} run and {} a {} run: not comparable",
                    b.display(),
                    base_run.kind,
                    c.display(),
                    cur_run.kind
                );
            }
            let label = |r: &regress::suite::LoadedRun| format!("{} ({})", r.run_id, r.git_commit);
            let labels = (label(&base_run), label(&cur_run));
            let fps = (
                Fingerprint::of(&base_run.machine),
                Fingerprint::of(&cur_run.machine),
            );
            (base_run.benchmarks, cur_run.benchmarks, labels, Some(fps))
        }
        _ => {
            let name = args.baseline.as_deref().unwrap_or("main");
            let base = regress::criterion::load(&args.criterion_dir, name)?;
            let current = regress::criterion::load(&args.criterion_dir, &args.current)?;
            let fp_path = regress::baseline::restored_fingerprint_path(&args.criterion_dir, name);
            let fps = if fp_path.is_file() {
                Some((regress::baseline::read_fingerprint(&fp_path)?, now.clone()))
            } else {
                None
            };
            (base, current, (name.to_string(), args.current.clone()), fps)
        }
    };
    let mut comparison = regress::compare(&base, &current, &settings, (&labels.0, &labels.1));
    match &base_fingerprint {
        Some((b, c)) => {
            let differences = b.hardware_differences(c);
            if !differences.is_empty() {
                let msg = format!(
                    "DIFFERENT HARDWARE: the baseline was measured elsewhere ({}); changes may be the machine, not the code",
                    differences.join("; ")
                );
                eprintln!("warning: {msg}");
                if args.strict {
                    anyhow::bail!("--strict: {msg}");
                }
                comparison.notes.insert(0, msg);
            }
        }
        None => comparison.notes.push(format!(
            "baseline {} has no fingerprint (saved by cargo bench directly): hardware not checked",
            labels.0
        )),
    }
    if let Some(path) = &args.markdown {
        report::json::write_atomic(path, render::markdown(&comparison).as_bytes())?;
    }
    if let Some(path) = &args.json {
        report::json::write_atomic(path, render::json(&comparison).as_bytes())?;
    }
    if !args.quiet || comparison.verdict != Verdict::Ok {
        print!("{}", render::table(&comparison, args.quiet));
    }
    let failed = comparison.verdict == Verdict::Fail
        || (args.fail_on_warn && comparison.verdict == Verdict::Warn);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn baseline(cmd: BaselineCommand) -> anyhow::Result<ExitCode> {
    use inferbench::regress::baseline as store;
    let machine = MachineInfo::collect();
    let profile = |p: &Option<String>| {
        p.clone()
            .unwrap_or_else(|| store::default_profile(&machine))
    };
    match cmd {
        BaselineCommand::Save { name, place, run } => {
            let profile = profile(&place.profile);
            let saved = store::save(
                &place.store,
                &profile,
                &name,
                &place.criterion_dir,
                run.as_deref(),
                &machine,
            )?;
            println!(
                "saved baseline {name} into {}: {} Criterion benchmarks{}",
                saved.dir.display(),
                saved.criterion_benchmarks,
                saved
                    .run
                    .map(|r| format!(", suite result {}", r.display()))
                    .unwrap_or_default()
            );
        }
        BaselineCommand::Restore { name, place } => {
            let profile = profile(&place.profile);
            let n = store::restore(&place.store, &profile, &name, &place.criterion_dir)?;
            println!(
                "restored baseline {name} of profile {profile} into {}: {n} benchmarks \
                 (now `cargo bench -- --baseline {name}` or `inferbench compare --baseline {name}`)",
                place.criterion_dir.display()
            );
        }
        BaselineCommand::List { store: dir } => {
            let profiles = store::list_profiles(&dir);
            if profiles.is_empty() {
                println!("no saved baselines in {}", dir.display());
            }
            for p in profiles {
                let mut names: Vec<String> = std::fs::read_dir(dir.join(&p))?
                    .flatten()
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix(".fingerprint.json")
                            .map(String::from)
                    })
                    .collect();
                names.sort();
                println!("{p}: {}", names.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn dry_run(resolved: &config::ResolvedConfig, filter: Option<&regex::Regex>) -> anyhow::Result<()> {
    let scenarios = suite::select(&resolved.config, filter)?;
    println!("# config: {}", resolved.origin());
    println!("{}", toml::to_string(&resolved.config)?);
    let s = &resolved.config.scenarios;
    println!(
        "# {} scenarios, each {} warm-up + {} measured runs:",
        scenarios.len(),
        s.warmup_runs,
        s.measured_runs
    );
    for sc in &scenarios {
        println!(
            "{}\tbatch {}\tprompt {}\tout {}",
            sc.name, sc.batch, sc.prompt_tokens, sc.output_tokens
        );
    }
    Ok(())
}

const LOAD_HELP: &str = "Load-test a serving endpoint with the metrics of the in-process \
runs, timed on the client as the bytes arrive.\n\n\
Backends: openai-completions (/v1/completions, default), openai-chat (/v1/chat/completions), \
tgi (/generate, /generate_stream with --stream), generic (any JSON POST: --body with \
\"{prompt}\" where the prompt goes, --path, --units-per-request). With --stream, OpenAI \
requests ask for usage in the last chunk (stream_options.include_usage). The model name is \
asked of GET /v1/models when --model is not given. An API key comes from --api-key or \
OPENAI_API_KEY and is sent as a Bearer token; it is never written anywhere.\n\n\
Workload: prompts from --prompts (JSONL, one {\"prompt\", \"max_tokens\", \"temperature\"} \
per line; default: fixtures/prompts.jsonl, built in), used in turn; or --input-tokens N \
--output-tokens M for synthetic prompts of N tokens (by --tokenizer, default the default \
model's) asking for M tokens (add --ignore-eos for servers that support it, e.g. vLLM).\n\n\
Load: -c 1,4,16 runs one closed-loop scenario per concurrency (each user sends its next \
request when the last is answered); --rate 2,8,inf runs one open-loop scenario per rate \
(req/s; --arrival poisson (default), constant or gamma with --burstiness, below 1 burstier), \
at most --max-concurrency in flight. Each scenario sends -n requests (default 64) or runs \
for --duration, after --warmup requests (default: one per user) reported apart. --sweep \
raises an open-loop rate from --sweep-start by --sweep-factor until throughput grows less \
than --sweep-min-growth, errors pass 1% or fewer than 90% of requests meet the SLOs: the \
best step is the saturation point. --probe releases --probe-concurrency requests at once, \
--probe-runs times, and reports the best output tokens/s (units/s for generic).\n\n\
Metrics per scenario: TTFT (request to first text), ITL (gaps between reads that carried \
text), TPOT ((E2E - TTFT) / (tokens - 1)), E2E: min/mean/p50/p90/p95/p99/max/sd from HDR \
histograms; requests/s, input and output tokens/s (the server's usage when given, else \
--tokenizer, else stream events); goodput against --slo ttft=200ms,tpot=50ms (also itl, \
e2e); errors by class: connect, timeout, http_status (with codes), disconnected, malformed \
(bad JSON or SSE, no [DONE], over --max-response-bytes), server_error (an error object in a \
2xx answer). Every request is accounted for.\n\n\
Results go to OUTPUT/RUN_ID/run.json (kind \"http\") and scenarios.csv, rewritten after \
every scenario; `inferbench compare` compares two such runs (p95 +20% or an error rate over \
1% fails). Ctrl-C stops sending, lets requests in flight finish, and keeps what was measured.\n\n\
Exit codes: 0 complete, 1 error, 2 bad command line, 130 interrupted.";

#[derive(Args)]
struct LoadArgs {
    /// The server's base address.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// The API the server speaks.
    #[arg(long, value_enum, default_value = "openai-completions")]
    backend: inferbench::http::backend::BackendKind,
    /// The endpoint path (default: the backend's, e.g. /v1/completions).
    #[arg(long)]
    path: Option<String>,
    /// The `model` field of OpenAI requests (default: the first of GET /v1/models).
    #[arg(long)]
    model: Option<String>,
    /// Stream the answers (SSE): TTFT, ITL and TPOT need it.
    #[arg(long)]
    stream: bool,
    /// API key sent as `Authorization: Bearer`; never written to any output.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Prompts file (JSONL: {"prompt", "max_tokens", "temperature"} per line).
    #[arg(long, value_name = "FILE", conflicts_with = "input_tokens")]
    prompts: Option<PathBuf>,
    /// Synthetic prompts of this many tokens (by --tokenizer) instead of a prompts file.
    #[arg(long, requires = "output_tokens", value_parser = clap::value_parser!(u32).range(1..))]
    input_tokens: Option<u32>,
    /// Tokens each synthetic prompt asks for.
    #[arg(long, requires = "input_tokens", value_parser = clap::value_parser!(u32).range(1..))]
    output_tokens: Option<u32>,
    /// Ask every request for this many tokens (overrides the prompts file's max_tokens;
    /// default for lines without one: 128).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: Option<u32>,
    /// Ask the server to generate past end-of-sequence (vLLM's ignore_eos), for fixed
    /// output lengths.
    #[arg(long)]
    ignore_eos: bool,
    /// Tokenizer to count tokens with when the server reports no usage, and to build
    /// synthetic prompts: a tokenizer.json or GGUF file, or a model (default for synthetic
    /// prompts: the default model).
    #[arg(long, value_name = "FILE|MODEL")]
    tokenizer: Option<String>,
    /// Closed loop: concurrent users, one scenario per value.
    #[arg(short = 'c', long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Vec<u32>,
    /// Open loop: requests per second, one scenario per value (`inf`: all at once).
    #[arg(long, value_delimiter = ',')]
    rate: Vec<f64>,
    /// Open loop arrivals: poisson, constant or gamma.
    #[arg(long, value_enum, default_value = "poisson")]
    arrival: inferbench::http::arrival::ArrivalKind,
    /// Gamma arrivals' shape: 1 is Poisson, below 1 burstier, above 1 steadier.
    #[arg(long, default_value_t = 1.0)]
    burstiness: f64,
    /// Open loop: most requests in flight; later arrivals wait (and are counted).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrency: u32,
    /// Requests per scenario (per sweep step; per probe run it is the probe concurrency).
    #[arg(short = 'n', long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Run each scenario this long instead of -n requests (e.g. 30s, 2m).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<std::time::Duration>,
    /// Warm-up requests before each scenario, reported apart (default: one per user).
    #[arg(long)]
    warmup: Option<u64>,
    /// Find the saturation point: raise an open-loop rate until throughput stops growing.
    #[arg(long)]
    sweep: bool,
    /// The sweep's first rate (req/s).
    #[arg(long, default_value_t = 1.0)]
    sweep_start: f64,
    /// Each sweep step multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    sweep_factor: f64,
    /// Most sweep steps.
    #[arg(long, default_value_t = 8)]
    sweep_steps: u32,
    /// A step must beat the best throughput so far by this share (0.1 = 10%) to go on.
    #[arg(long, default_value_t = 0.1)]
    sweep_min_growth: f64,
    /// Max-throughput probe: warm-up, then --probe-runs bursts of --probe-concurrency.
    #[arg(long)]
    probe: bool,
    /// Requests released at once per probe run (default: the largest -c, else 16).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    probe_concurrency: Option<u32>,
    /// Probe runs; the best is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    probe_runs: u32,
    /// Service-level objectives for goodput, e.g. ttft=200ms,tpot=50ms (also itl, e2e).
    #[arg(long)]
    slo: Option<String>,
    /// Most time a request may take, first byte to last.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Most time to open a connection.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: std::time::Duration,
    /// Largest answer accepted (bytes); a bigger one is a malformed answer.
    #[arg(long, default_value_t = 16 << 20)]
    max_response_bytes: usize,
    /// Generic backend: the JSON body (or @FILE); strings "{prompt}" get the prompt.
    #[arg(long, value_name = "JSON|@FILE")]
    body: Option<String>,
    /// Generic backend: workload units each request carries (images, documents, ...).
    #[arg(long)]
    units_per_request: Option<f64>,
    /// Seed of the arrival schedules.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder that holds one folder per run.
    #[arg(long, short = 'o', default_value = "results")]
    output: PathBuf,
    /// Name of this run's folder (default: load-YYYYMMDDTHHMMSSZ).
    #[arg(long)]
    run_id: Option<String>,
}

fn load(args: LoadArgs) -> anyhow::Result<ExitCode> {
    use inferbench::http::{self, arrival::ArrivalProcess, backend::Backend, backend::BackendKind};
    use inferbench::report::http::LoadShape;
    use inferbench::workload::prompts;
    let bad = |msg: String| -> anyhow::Result<ExitCode> {
        eprintln!("error: {msg}");
        Ok(ExitCode::from(2))
    };
    if args.stream && !args.backend.supports_stream() {
        return bad("--stream: the generic backend does not stream".into());
    }
    if args.backend == BackendKind::Generic && args.body.is_none() {
        return bad("--backend generic needs --body (the JSON to POST)".into());
    }
    if args.backend != BackendKind::Generic
        && (args.body.is_some() || args.units_per_request.is_some())
    {
        return bad("--body and --units-per-request go with --backend generic".into());
    }
    if let Some(bad_rate) = args.rate.iter().find(|r| r.is_nan() || **r <= 0.0) {
        return bad(format!("--rate {bad_rate}: rates must be above 0 (or inf)"));
    }
    if args.ignore_eos && args.backend == BackendKind::Tgi {
        eprintln!("note: TGI has no ignore_eos; answers may end before max_tokens");
    }
    let body_template = match &args.body {
        None => None,
        Some(text) => {
            let (json, origin) = match text.strip_prefix('@') {
                Some(path) => (
                    std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("--body @{path}: cannot read it: {e}"))?,
                    format!("--body @{path}"),
                ),
                None => (text.clone(), "--body".to_string()),
            };
            Some(
                serde_json::from_str::<serde_json::Value>(&json)
                    .map_err(|e| anyhow::anyhow!("{origin}: not JSON: {e}"))?,
            )
        }
    };
    let slo = match &args.slo {
        Some(text) => http::stats::parse_slo(text)?,
        None => Vec::new(),
    };
    let tokenizer_wanted = args.tokenizer.clone().or_else(|| {
        args.input_tokens
            .map(|_| inferbench::model::DEFAULT_MODEL.to_string())
    });
    let tokenizer = match &tokenizer_wanted {
        None => None,
        Some(name) => {
            let path = std::path::Path::new(name);
            let t = if path.is_file() {
                model::load_tokenizer_file(path)?
            } else {
                model::load_tokenizer_of(&ModelRef::from_parts(Some(name), None, None))
                    .map_err(|e| anyhow::anyhow!("--tokenizer {name}: {e:#}"))?
            };
            Some((name.clone(), t))
        }
    };
    let count = args.requests.clamp(1, 4096) as usize;
    let (prompt_list, workload_source) = match (args.input_tokens, args.output_tokens) {
        (Some(input), Some(output)) => {
            let (_, t) = tokenizer
                .as_ref()
                .expect("synthetic prompts load a tokenizer");
            (
                prompts::synthetic(t, input as usize, output, count)?,
                format!("synthetic: {input} input / {output} output tokens"),
            )
        }
        _ => {
            let (max_tokens, force) = (args.max_tokens.unwrap_or(128), args.max_tokens.is_some());
            match &args.prompts {
                Some(path) => (
                    prompts::read_jsonl(path, max_tokens, force)?,
                    format!("prompts file {}", path.display()),
                ),
                None => (
                    prompts::parse_jsonl(
                        prompts::DEFAULT_PROMPTS,
                        prompts::DEFAULT_PROMPTS_NAME,
                        max_tokens,
                        force,
                    )?,
                    prompts::DEFAULT_PROMPTS_NAME.to_string(),
                ),
            }
        }
    };
    let mut shapes: Vec<LoadShape> = args
        .concurrency
        .iter()
        .map(|&c| LoadShape::Closed { concurrency: c })
        .collect();
    shapes.extend(args.rate.iter().map(|&rate| LoadShape::Open {
        arrival: ArrivalProcess {
            kind: args.arrival,
            rate,
            burstiness: args.burstiness,
        },
        max_concurrency: args.max_concurrency,
    }));
    if args.probe {
        shapes.push(LoadShape::Probe {
            concurrency: args
                .probe_concurrency
                .or(args.concurrency.iter().copied().max())
                .unwrap_or(16),
            runs: args.probe_runs,
        });
    }
    if shapes.is_empty() && !args.sweep {
        shapes.push(LoadShape::Closed { concurrency: 1 });
    }
    if args.sweep
        && (args.sweep_start.is_nan()
            || args.sweep_start <= 0.0
            || args.sweep_factor.is_nan()
            || args.sweep_factor <= 1.0)
    {
        return bad("--sweep-start must be above 0 and --sweep-factor above 1".into());
    }
    let interrupt = install_interrupt(
        "sending; requests in flight finish (each within --timeout) and every finished scenario is kept",
    )?;
    let outcome = http::run(http::LoadRequest {
        base_url: args.url.clone(),
        path: args.path.clone(),
        backend: Backend {
            kind: args.backend,
            stream: args.stream,
            model: args.model.clone().unwrap_or_default(),
            ignore_eos: args.ignore_eos,
            body_template,
        },
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        prompts: prompt_list,
        workload_source,
        tokenizer,
        units_per_request: args.units_per_request,
        shapes,
        requests: args.requests,
        duration: args.duration,
        warmup: args.warmup,
        timeout: args.timeout,
        connect_timeout: args.connect_timeout,
        max_response_bytes: args.max_response_bytes,
        slo,
        sweep: args.sweep.then_some(http::SweepSettings {
            start_rate: args.sweep_start,
            factor: args.sweep_factor,
            max_steps: args.sweep_steps,
            min_growth: args.sweep_min_growth,
            arrival: args.arrival,
            burstiness: args.burstiness,
            max_concurrency: args.max_concurrency,
        }),
        seed: args.seed,
        output: args.output.clone(),
        run_id: args.run_id.clone(),
        interrupt,
    })?;
    println!("{}", report::http::table(&outcome.result));
    Ok(results_written(&outcome.dir, &outcome.result.header))
}

const SERVE_HELP: &str = "Serve the in-process engine over an OpenAI-compatible HTTP API, \
for `inferbench load` and any OpenAI client.\n\n\
Endpoints: POST /v1/completions and /v1/chat/completions (stream: true for SSE chunks \
ending in data: [DONE]; stream_options.include_usage adds a usage chunk; whole answers \
carry usage; temperature, top_p, seed, max_tokens, ignore_eos), GET /v1/models, GET \
/health, GET /metrics (Prometheus: requests by endpoint and status, prompt and generated \
tokens, queue depth, TTFT / end-to-end / queue-time histograms).\n\n\
Scheduling: requests are queued and generated one at a time, each as a batch of one, in \
arrival order (no continuous batching): under concurrent load TTFT includes the wait. At \
most --max-queue requests wait; more are answered 503 with Retry-After. A client that \
disconnects stops its generation.\n\n\
Limits: bodies over --max-body-bytes are answered 413, max_tokens over --max-tokens-limit \
or past the model's context 400; bad JSON and bad fields 400 with an OpenAI-style error \
naming the field.\n\n\
Binds 127.0.0.1:8000 by default (--port 0 picks a free port; the `listening on` line on \
stderr says which). --mock serves placeholder words with no model, one every \
--mock-token-delay: a trivial endpoint for measuring the load generator itself.";

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to bind; 127.0.0.1 keeps the server on this machine.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to bind (0: any free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The model name /v1/models lists and requests must use (default: the model's).
    #[arg(long)]
    served_model_name: Option<String>,
    /// Most tokens a request may ask for.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens_limit: u32,
    /// Tokens generated when a request gives no max_tokens.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    default_max_tokens: u32,
    /// Largest request body accepted (bytes).
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
    /// Most requests waiting for the engine; more are answered 503.
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// Serve placeholder words without a model (for measuring load generators).
    #[arg(long)]
    mock: bool,
    /// --mock: time between generated words.
    #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
    mock_token_delay: std::time::Duration,
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    use inferbench::serve::{self, engine::Engine, openai::Limits, ServeOptions};
    let options = ServeOptions {
        host: args.host.clone(),
        port: args.port,
        served_model_name: args.served_model_name.clone(),
        limits: Limits {
            max_tokens: args.max_tokens_limit,
            default_max_tokens: args.default_max_tokens,
        },
        max_body_bytes: args.max_body_bytes,
    };
    serve::run(options, |metrics| {
        if args.mock {
            Ok(Engine::mock(args.mock_token_delay, metrics))
        } else {
            Engine::start(
                args.model.load_options(),
                args.model.device,
                args.max_queue,
                metrics,
            )
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

//! The command line: one module per subcommand, each with its clap arguments, the checks that
//! turn them into the library's request (unit-tested here, without spawning the binary), and
//! a short handler. `main` parses, dispatches, and maps the outcome to an exit code once
//! (`crate::exit`).

pub mod agree;
pub mod baseline;
pub mod compare;
pub mod generate;
pub mod history;
pub mod info;
pub mod instructions;
mod interrupt;
pub mod k8s;
pub mod load;
pub mod merge;
mod model_args;
pub mod pages;
pub mod profile;
pub mod report;
pub mod retrieval;
pub mod run;
pub mod serve;
mod workers;

use std::path::Path;

use clap::{Parser, Subcommand};

use crate::exit::Outcome;
use crate::results::{RunHeader, CSV_FILE, RUN_FILE};

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print the machine: CPU, cores, memory, GPUs, driver, compiled features.
    Info(info::InfoArgs),
    /// Generate text for a prompt and print one line of timings.
    Generate(Box<generate::GenerateArgs>),
    /// Compare this set-up's greedy answers with a reference set-up of the same model (by
    /// default f32 weights on the CPU): the first different token, with both sides' logits.
    #[command(long_about = agree::HELP)]
    Agree(Box<agree::AgreeArgs>),
    /// Time every op of one prefill and N decode steps (GGUF models): a table by kind of op,
    /// the cost of profiling itself, and a Chrome trace.
    #[command(long_about = profile::HELP)]
    Profile(Box<profile::ProfileArgs>),
    /// Run a benchmark suite: every scenario (batch × prompt length × output length) of a
    /// preset or config, warm-up apart, into results/RUN_ID/ (run.json, scenarios.csv) and
    /// a table.
    #[command(long_about = run::HELP)]
    Run(run::RunArgs),
    /// Retrieval: build (or reuse) an HNSW index over vectors (synthetic clustered or hard
    /// data, a vectors file, or MiniLM embeddings of a text file), compute exact ground
    /// truth, and sweep ef: recall@k beside single-query latency percentiles and batch QPS.
    #[command(long_about = retrieval::HELP)]
    Retrieval(Box<retrieval::RetrievalArgs>),
    /// Load-test a serving endpoint (OpenAI-compatible, TGI or any JSON POST): closed-loop
    /// concurrency or open-loop request rates, a saturation sweep, a max-throughput probe;
    /// TTFT, ITL, TPOT, end-to-end latency, tokens/s, goodput and classified errors.
    #[command(long_about = load::HELP)]
    Load(Box<load::LoadArgs>),
    /// Merge load runs that several workers made of one plan into one run: histograms
    /// added exactly, counts summed, rates over the union of the workers' time windows.
    #[command(long_about = merge::HELP)]
    Merge(merge::MergeArgs),
    /// Serve the in-process engine over an OpenAI-compatible HTTP API (completions, chat,
    /// models, health, Prometheus metrics) on 127.0.0.1.
    #[command(long_about = serve::HELP)]
    Serve(Box<serve::ServeArgs>),
    /// Write a self-contained HTML report with charts of any runs (and a baseline, and
    /// Criterion's results).
    #[command(long_about = report::HELP)]
    Report(report::ReportArgs),
    /// Compare a run against a baseline and give a verdict: Criterion baselines
    /// (--baseline NAME) or two suite results (BASE CURRENT). Exit 0 no regression, 1
    /// regression, 2 bad input.
    #[command(long_about = compare::HELP)]
    Compare(compare::CompareArgs),
    /// Save a Criterion baseline and/or a suite result into baseline/PROFILE/ with this
    /// machine's fingerprint, or restore one for `cargo bench -- --baseline NAME`.
    #[command(subcommand)]
    Baseline(baseline::BaselineCommand),
    /// Count the instructions of the CPU hot paths under callgrind (deterministic, for CI
    /// gates): kernels, a decode step, the tokenizer, HNSW search, the L2 kernel.
    #[command(long_about = instructions::HELP)]
    Instructions(Box<instructions::InstructionsArgs>),
    /// Run benchmarks on Kubernetes: render the manifests of a config (namespace, plan,
    /// Indexed Job of load workers, GPU matrix Jobs), or apply them, wait, collect and merge.
    #[command(subcommand, long_about = k8s::HELP)]
    K8s(k8s::K8sCommand),
    /// Results over time: append runs to a local SQLite history, show each benchmark's series
    /// with its change points.
    #[command(subcommand, long_about = history::HELP)]
    History(history::HistoryCommand),
}

/// `inferbench load`: one process, N local workers (--workers), or one worker of a plan
/// (--plan).
pub fn load(args: load::LoadArgs) -> anyhow::Result<Outcome> {
    let interrupt = interrupt::install(
        "sending; requests in flight finish (each within --timeout) and every finished scenario is kept",
    )?;
    let argv: Vec<String> = std::env::args().collect();
    if let Some(workers) = args.workers {
        return workers::run_local(&args, workers, &argv, interrupt);
    }
    if let Some(plan) = &args.plan {
        return workers::run_worker(&args, plan, &argv, interrupt);
    }
    load::handle(args, interrupt)
}

/// Say where a run's files are; done when it completed, interrupted otherwise.
fn results_written(dir: &Path, header: &RunHeader) -> Outcome {
    eprintln!("results: {} ({CSV_FILE})", dir.join(RUN_FILE).display());
    if header.status.is_complete() {
        Outcome::Done
    } else {
        Outcome::Interrupted
    }
}

/// What the subcommands' unit tests share: parse a command line, check a usage error.
#[cfg(test)]
pub(crate) mod test_support {
    use clap::Parser;

    /// `inferbench SUBCOMMAND ARGS...`, parsed (it must parse).
    pub(crate) fn parse(subcommand: &str, args: &[&str]) -> super::Command {
        let line = ["inferbench", subcommand]
            .into_iter()
            .chain(args.iter().copied());
        super::Cli::try_parse_from(line).expect("parses").command
    }

    /// The message of an error that must be a usage error (exit 2).
    pub(crate) fn usage_message<T>(result: anyhow::Result<T>) -> String {
        let Err(e) = result else {
            panic!("expected a usage error")
        };
        assert!(e.chain().any(|c| c.is::<crate::exit::Usage>()), "{e:#}");
        format!("{e:#}")
    }
}

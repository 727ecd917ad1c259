//! `inferbench report`: one self-contained HTML page of runs, their comparison against a
//! baseline, and Criterion's results.

use std::path::PathBuf;

use clap::Args;

use crate::exit::Outcome;
use crate::html::report::{self, ReportRequest};

pub const HELP: &str = "Write one self-contained HTML report (charts as inline SVG; nothing is \
fetched from the network when it is opened) of any runs: inference (latency CDFs from the \
stored histograms, decode tokens/s against batch size, TTFT against prompt length, energy and \
peak memory), retrieval (recall against single-thread QPS and against p95, headline marked), \
http (latency percentiles and throughput against concurrency or rate, goodput, errors by \
class, a sweep's saturation point), instruction counts. Several runs are overlaid on the same \
charts; --baseline adds the `compare` table with its verdicts coloured. --criterion \
target/criterion links Criterion's own HTML pages and, with --criterion-baseline NAME, draws \
the last `cargo bench` against that saved baseline. --history FILE draws each series of an \
inferbench history with its change points ringed.\n\n\
Open the file in any browser: `xdg-open report.html` (Linux), `open report.html` (macOS).";

#[derive(Args)]
pub struct ReportArgs {
    /// run.json files, run folders, or results folders (every run folder directly inside).
    #[arg(value_name = "RUN_OR_DIR")]
    inputs: Vec<PathBuf>,
    /// A run to compare every run against (overlaid dashed on the charts).
    #[arg(long, value_name = "RUN")]
    baseline: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(long, short = 'o', default_value = "report.html")]
    output: PathBuf,
    /// Criterion's results folder: link its pages (and compare with --criterion-baseline).
    #[arg(long, value_name = "DIR")]
    criterion: Option<PathBuf>,
    /// Criterion: the saved baseline to draw the last run against.
    #[arg(long, value_name = "NAME", requires = "criterion")]
    criterion_baseline: Option<String>,
    /// A history file (`inferbench history add`): each series over time, change points ringed.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Only the history's benchmarks whose name matches this regex.
    #[arg(long, value_name = "REGEX", requires = "history")]
    history_bench: Option<String>,
}

impl ReportArgs {
    pub fn request(&self) -> anyhow::Result<ReportRequest> {
        let history_bench = self
            .history_bench
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| {
                crate::exit::usage(format!("--history-bench: not a regular expression: {e}"))
            })?;
        Ok(ReportRequest {
            inputs: self.inputs.clone(),
            baseline: self.baseline.clone(),
            criterion: self.criterion.clone(),
            criterion_baseline: self.criterion_baseline.clone(),
            history: self.history.clone(),
            history_bench,
            output: self.output.clone(),
        })
    }
}

pub fn handle(args: ReportArgs) -> anyhow::Result<Outcome> {
    let written = report::write(&args.request()?).map_err(crate::exit::as_usage)?;
    eprintln!(
        "report: {} ({} run{}, {} KiB); open it in a browser",
        written.path.display(),
        written.runs,
        if written.runs == 1 { "" } else { "s" },
        written.bytes.div_ceil(1024)
    );
    Ok(Outcome::Done)
}

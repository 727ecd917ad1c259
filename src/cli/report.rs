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
the last `cargo bench` against that saved baseline.\n\n\
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
}

impl ReportArgs {
    pub fn request(&self) -> ReportRequest {
        ReportRequest {
            inputs: self.inputs.clone(),
            baseline: self.baseline.clone(),
            criterion: self.criterion.clone(),
            criterion_baseline: self.criterion_baseline.clone(),
            output: self.output.clone(),
        }
    }
}

pub fn handle(args: ReportArgs) -> anyhow::Result<Outcome> {
    let written = report::write(&args.request()).map_err(crate::exit::as_usage)?;
    eprintln!(
        "report: {} ({} run{}, {} KiB); open it in a browser",
        written.path.display(),
        written.runs,
        if written.runs == 1 { "" } else { "s" },
        written.bytes.div_ceil(1024)
    );
    Ok(Outcome::Done)
}

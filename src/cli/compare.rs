//! `inferbench compare`: a run against a baseline, with a verdict CI can fail on.

use std::path::PathBuf;

use clap::Args;

use crate::config;
use crate::exit::{as_usage, Outcome};
use crate::regress::{self, render, CompareInput, Verdict};
use crate::results::write_atomic;

pub const HELP: &str = "Compare the current measurements against a baseline, benchmark \
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
Instruction counts (`inferbench instructions` runs) are exact, so they are compared as they \
are (statistic `count`): FAIL when a workload's instructions grow by > 2%, WARN when any count \
moves by > 2% either way; their native wall times are advisory and can only warn. Counts of \
different profiles (compiler, build, instruction set, valgrind) are refused.\n\n\
Benchmarks only in the baseline are listed as removed, only in the current run as new. A \
baseline from other hardware is a loud warning (exit 2 with --strict).\n\n\
Exit codes: 0 no regression (warnings allowed, unless --fail-on-warn), 1 regression, 2 bad \
input or a refused comparison.";

#[derive(Args)]
pub struct CompareArgs {
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

/// Every error of a comparison is bad input (exit 2), so that 1 always means a regression.
pub fn handle(args: CompareArgs) -> anyhow::Result<Outcome> {
    compare(args).map_err(as_usage)
}

impl CompareArgs {
    /// Two runs, or a Criterion baseline (clap makes sure it is one or the other).
    pub fn input(&self) -> CompareInput {
        match (&self.base_run, &self.current_run) {
            (Some(base), Some(current)) => CompareInput::Runs {
                base: base.clone(),
                current: current.clone(),
            },
            _ => CompareInput::Criterion {
                dir: self.criterion_dir.clone(),
                baseline: self.baseline.clone().unwrap_or_else(|| "main".into()),
                current: self.current.clone(),
            },
        }
    }
}

fn compare(args: CompareArgs) -> anyhow::Result<Outcome> {
    let settings = match &args.config {
        Some(path) => config::load_file(path)?.config.regress,
        None => regress::RegressSection::default(),
    };
    let sides = args.input().load()?;
    let comparison = sides.compare(&settings, args.strict)?;
    if let Some(path) = &args.markdown {
        write_atomic(path, render::markdown(&comparison).as_bytes())?;
    }
    if let Some(path) = &args.json {
        write_atomic(path, render::json(&comparison).as_bytes())?;
    }
    if !args.quiet || comparison.verdict != Verdict::Ok {
        print!("{}", render::table(&comparison, args.quiet));
    }
    let failed = comparison.verdict == Verdict::Fail
        || (args.fail_on_warn && comparison.verdict == Verdict::Warn);
    Ok(if failed {
        Outcome::Regression
    } else {
        Outcome::Done
    })
}

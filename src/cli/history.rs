//! `inferbench history`: results over time in a local SQLite file, with change points.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use regex::Regex;

use crate::exit::{usage, Outcome};
use crate::history::{self, AddRequest};

pub const HELP: &str = "Keep results over time in a local SQLite file (default \
results/history.sqlite) and look for change points in them.\n\n\
`history add RUN` appends a run of any kind (run.json or its folder: inference, retrieval, \
http, instructions); `history add target/criterion` appends Criterion's last run (`new`, or \
--criterion-run NAME). Each benchmark's metrics become one value per statistic: latencies \
their p50 and p95, throughputs their mean, errors their rate, instruction counts the count. \
--branch and --commit label the entry (the commit defaults to the run's own).\n\n\
`history show` prints every series (a benchmark's metric and statistic on one machine) with \
its change points: binary segmentation with Welch's t, a change where |t| >= 5 between \
segments of at least 3 points and the level moves by at least --min-effect (default 5%; 1% \
for instruction counts, which do not wobble). A series of fewer than 6 points says it has not \
enough data.";

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// Append a run (run.json or its folder) or a Criterion folder's last run.
    Add(AddArgs),
    /// Print each benchmark's series and its change points.
    Show(ShowArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// A run.json, its folder, or a Criterion folder (target/criterion).
    source: PathBuf,
    /// Criterion folders: the saved run to add.
    #[arg(long, default_value = "new")]
    criterion_run: String,
    /// The branch the results were measured on.
    #[arg(long)]
    branch: Option<String>,
    /// The commit (default: the run's own, or this binary's for Criterion runs).
    #[arg(long)]
    commit: Option<String>,
    /// The history file.
    #[arg(long, default_value = history::DEFAULT_FILE)]
    db: PathBuf,
}

#[derive(Args)]
pub struct ShowArgs {
    /// Only benchmarks whose name matches this regex.
    #[arg(long)]
    bench: Option<String>,
    /// Smallest shift of a level that counts as a change (0.05 is 5%), except for
    /// instruction counts (1%).
    #[arg(long, default_value_t = 0.05)]
    min_effect: f64,
    /// Values listed per series (the change points use them all).
    #[arg(long, default_value_t = 12)]
    last: usize,
    /// The history file.
    #[arg(long, default_value = history::DEFAULT_FILE)]
    db: PathBuf,
}

pub fn handle(cmd: HistoryCommand) -> anyhow::Result<Outcome> {
    match cmd {
        HistoryCommand::Add(a) => {
            let request = AddRequest {
                source: &a.source,
                criterion_run: &a.criterion_run,
                branch: a.branch.as_deref(),
                commit: a.commit.as_deref(),
            };
            let (entry, points) = history::add(&a.db, &request)?;
            println!(
                "added {} {} ({}) to {}: {points} values",
                entry.kind,
                entry.run_id,
                entry.git_commit,
                a.db.display()
            );
        }
        HistoryCommand::Show(s) => {
            if !(s.min_effect.is_finite() && s.min_effect >= 0.0) {
                return Err(usage(format!(
                    "--min-effect {}: a fraction of 0 or more (0.05 is 5%)",
                    s.min_effect
                )));
            }
            let bench = match &s.bench {
                Some(b) => Some(Regex::new(b).map_err(|e| usage(format!("--bench {b:?}: {e}")))?),
                None => None,
            };
            let text = history::show(&s.db, bench.as_ref(), s.min_effect, s.last.max(1))?;
            print!("{text}");
        }
    }
    Ok(Outcome::Done)
}

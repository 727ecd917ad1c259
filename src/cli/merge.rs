//! `inferbench merge`: several workers' load runs of one plan made into one run.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::exit::{usage, Outcome};
use crate::http::merge::{self, WorkerRun};
use crate::report::http::{self as http_report, HttpRun};
use crate::results::{run_file, RunDir, RunFile};

pub const HELP: &str = "Merge load runs (kind \"http\") that several workers made of one plan \
(`load --plan`, `load --workers`, `inferbench k8s run`) into one run. Each latency histogram \
is stored losslessly in run.json (HdrHistogram V2, base64, `histograms.exact`), so the merged \
histograms are the sums of the workers' and every percentile is that of all requests, not an \
average of the workers' percentiles. Counts, errors and tokens are summed; rates are taken \
over the union of the workers' time windows; each worker's own figures stay in the merged \
file (`merged.workers`), with the spread of their start times. Runs of different plans (or, \
without a plan, of different targets, workloads or scenarios) are refused with the first \
difference named. `compare` and `report` read the merged run like any other.";

#[derive(Args)]
pub struct MergeArgs {
    /// The workers' runs: run folders or run.json files.
    #[arg(value_name = "RUN", required = true)]
    runs: Vec<PathBuf>,
    /// The merged run's folder (created; its name is the run's id).
    #[arg(long, short = 'o', value_name = "DIR")]
    output: PathBuf,
}

pub fn handle(args: MergeArgs) -> Result<Outcome> {
    let mut runs = Vec::new();
    for path in &args.runs {
        let file = run_file(path);
        let run = HttpRun::load(&file).map_err(|e| {
            usage(format!(
                "{e:#} (merge takes the runs of `inferbench load` workers)"
            ))
        })?;
        runs.push(WorkerRun {
            source: file.display().to_string(),
            run,
        });
    }
    if args.output.exists() {
        return Err(usage(format!(
            "-o {}: already exists; name a new folder for the merged run",
            args.output.display()
        )));
    }
    let (parent, id) = split_output(&args.output)?;
    let mut merged = merge::merge(&runs, Vec::new(), &id).map_err(|e| usage(format!("{e:#}")))?;
    let dir = RunDir::create(&parent, Some(&id), "merge")?;
    dir.save(&mut merged)?;
    println!("{}", http_report::table(&merged));
    if let Some(m) = &merged.merged {
        eprintln!(
            "merged {} runs{}{}",
            m.workers.len(),
            m.start_spread_ms.map_or(String::new(), |s| format!(
                "; start times spread over {s:.1} ms"
            )),
            if m.missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", m.missing.join("; "))
            }
        );
    }
    Ok(super::results_written(dir.path(), &merged.header))
}

/// `-o results/merged-1` is the folder `merged-1` under `results`.
fn split_output(output: &std::path::Path) -> Result<(PathBuf, String)> {
    let id = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| usage(format!("-o {}: name a folder to create", output.display())))?;
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    Ok((parent, id))
}

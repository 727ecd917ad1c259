//! `inferbench run`: the suite over a preset or config file, or a resumed run.

use std::path::PathBuf;

use clap::Args;

use crate::config::{self, ResolvedConfig};
use crate::exit::{usage, Outcome};
use crate::results::{check_plain_name, RunStatus, CSV_FILE, RUN_FILE};
use crate::{report, suite};

pub const HELP: &str = "Run a benchmark suite: every scenario (batch size × prompt length × \
output length) of a preset or config file. Each scenario does its warm-up runs (reported \
apart), then its measured runs, recording every request's TTFT, inter-token gaps, TPOT and \
end-to-end latency, and the decode, end-to-end and prompt tokens/s of each run.\n\n\
Results go to OUTPUT/RUN_ID/run.json (one versioned JSON schema) and scenarios.csv, \
rewritten atomically after every scenario: Ctrl-C stops after the current generation and \
keeps every finished scenario (the run is marked interrupted; Ctrl-C twice quits at once), \
and --resume RUN_ID measures only what is missing. The table at the end is Markdown.\n\n\
Presets: quick (default; a couple of minutes on 2 CPU cores), full, tok_throughput, \
cpu_only, rtx_4090, h100, h200, production. A config file is TOML with the same fields, and may \
`extends = \"quick\"` (a preset or another file) to override only some of them; \
--dry-run prints the resolved config and its scenarios. Targets come from the hardware \
profile presets (cpu_only, rtx_4090, h100, h200) and give the run a grade: Excellent >= 90% of \
checks met, Good 80-89%, Acceptable 60-79%, Poor below.\n\n\
Exit codes: 0 complete, 1 error, 2 bad command line, 130 interrupted.";

#[derive(Args)]
pub struct RunArgs {
    /// A built-in preset: quick, full, tok_throughput, cpu_only, rtx_4090, h100, h200, production.
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
    /// At the end, print run.json between marker lines on standard output: how a pod hands
    /// its result back through its log (`inferbench k8s run`).
    #[arg(long)]
    result_markers: bool,
    #[command(flatten)]
    pages: super::pages::PageArgs,
}

/// What `inferbench run` was asked: measure (a new run or a resumed one), or only show the plan.
pub enum RunPlan {
    Measure(suite::Start),
    DryRun {
        config: Box<ResolvedConfig>,
        scenarios: Vec<suite::Scenario>,
    },
}

impl RunArgs {
    /// The flags as a plan, every flag checked: bad ones are usage errors (exit 2).
    pub fn plan(&self) -> anyhow::Result<RunPlan> {
        if let Some(id) = &self.resume {
            if self.dry_run {
                return Err(usage(
                    "--dry-run with --resume: nothing to resolve; read the run's run.json",
                ));
            }
            return Ok(RunPlan::Measure(suite::Start::Resume(id.clone())));
        }
        let mut resolved = match (&self.config, &self.preset) {
            (Some(path), _) => config::load_file(path)?,
            (None, preset) => config::load_preset(preset.as_deref().unwrap_or("quick"))?,
        };
        if let Some(device) = &self.device {
            resolved.config.model.device = device.clone();
            resolved
                .config
                .device_request()
                .map_err(|e| usage(format!("--device: {e}")))?;
            resolved.sources.insert(0, format!("--device {device}"));
        }
        let filter = self
            .filter
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| usage(format!("--filter: not a regular expression: {e}")))?;
        let scenarios = suite::select(&resolved.config, filter.as_ref())?;
        if let Some(id) = &self.run_id {
            check_plain_name("--run-id", id)?;
        }
        let config = Box::new(resolved);
        Ok(if self.dry_run {
            RunPlan::DryRun { config, scenarios }
        } else {
            RunPlan::Measure(suite::Start::New {
                config,
                scenarios,
                run_id: self.run_id.clone(),
            })
        })
    }
}

pub fn handle(args: RunArgs) -> anyhow::Result<Outcome> {
    let start = match args.plan()? {
        RunPlan::DryRun { config, scenarios } => {
            print!("{}", dry_run(&config, &scenarios)?);
            return Ok(Outcome::Done);
        }
        RunPlan::Measure(start) => start,
    };
    let pages = args.pages.start("inferbench run")?;
    let interrupt =
        super::interrupt::install("the current generation, keeping every finished scenario")?;
    let outcome = suite::run(suite::RunRequest {
        start,
        output_dir: args.output,
        interrupt: interrupt.clone(),
    })?;
    println!("{}", report::table::render(&outcome.result));
    let header = &outcome.result.header;
    eprintln!(
        "results: {} ({CSV_FILE}, {})",
        outcome.dir.join(RUN_FILE).display(),
        match header.status {
            RunStatus::Complete => "complete".to_string(),
            _ => format!(
                "incomplete: carry on with `inferbench run --resume {}`",
                header.run_id
            ),
        }
    );
    pages.finish(&outcome.dir, &interrupt);
    if args.result_markers {
        let json = serde_json::to_string_pretty(&outcome.result)?;
        println!("{}", crate::results::markers::wrap(&json));
    }
    Ok(if header.status.is_complete() {
        Outcome::Done
    } else {
        Outcome::Interrupted
    })
}

/// The resolved config and its scenarios, as --dry-run prints them.
fn dry_run(resolved: &ResolvedConfig, scenarios: &[suite::Scenario]) -> anyhow::Result<String> {
    let s = &resolved.config.scenarios;
    let mut out = format!("# config: {}\n", resolved.origin());
    out += &format!("{}\n", toml::to_string(&resolved.config)?);
    out += &format!(
        "# {} scenarios, each {} warm-up + {} measured runs:\n",
        scenarios.len(),
        s.warmup_runs,
        s.measured_runs
    );
    for sc in scenarios {
        out += &format!(
            "{}\tbatch {}\tprompt {}\tout {}\n",
            sc.name, sc.batch, sc.prompt_tokens, sc.output_tokens
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::test_support::{parse, usage_message};

    fn plan(args: &[&str]) -> anyhow::Result<RunPlan> {
        match parse("run", args) {
            crate::cli::Command::Run(a) => a.plan(),
            _ => unreachable!(),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        usage_message(plan(args))
    }

    #[test]
    fn bad_flags_are_usage_errors_naming_the_flag() {
        assert!(usage_error(&["--filter", "("]).contains("--filter"));
        assert!(usage_error(&["--filter", "b999_"]).contains("matches no scenario"));
        assert!(usage_error(&["--preset", "nope"]).contains("--preset nope"));
        assert!(usage_error(&["--device", "tpu"]).contains("--device"));
        assert!(usage_error(&["--run-id", "../up"]).contains("--run-id"));
        assert!(usage_error(&["--resume", "x", "--dry-run"]).contains("--dry-run"));
    }

    #[test]
    fn a_filter_selects_the_scenarios_of_the_plan() {
        let Ok(RunPlan::DryRun { scenarios, .. }) = plan(&["--dry-run", "--filter", "^b1_"]) else {
            panic!("a dry run");
        };
        assert!(!scenarios.is_empty());
        assert!(scenarios.iter().all(|s| s.batch == 1));
        let Ok(RunPlan::Measure(suite::Start::Resume(id))) = plan(&["--resume", "r1"]) else {
            panic!("a resume");
        };
        assert_eq!(id, "r1");
    }
}

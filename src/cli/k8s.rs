//! `inferbench k8s render` and `inferbench k8s run`: the same benchmark on a cluster.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::exit::{usage, Outcome};
use crate::http::plan::{self, Plan};
use crate::k8s::config::K8sConfig;
use crate::k8s::render::{self, Rendered};
use crate::k8s::run::{self as k8s_run, K8sRunRequest, Kubectl};
use crate::results::RunDir;

pub const HELP: &str = "Run benchmarks on Kubernetes, with Jobs doing the placement. A config \
(TOML) names the image (with `inferbench` on its PATH), where pods go (node_selector, \
tolerations, resources) and what they run: [load] splits an `inferbench load` over `workers` \
pods of an Indexed Job (completionMode Indexed; each pod takes its index from \
JOB_COMPLETION_INDEX, sends its share of the load from a plan in a ConfigMap, and starts at \
the plan's time, start_delay after rendering); [gpu] runs `inferbench run --preset P` once \
per preset × node pool, each pod requesting `gpus` nvidia.com/gpu.\n\n\
`render` writes the manifests (namespace inferbench-RUNID, the plan ConfigMap, the Jobs) to a \
folder, for kubectl apply or review. `run` renders them into RESULTS/RUNID/manifests/ (the \
snapshot of what ran), applies them with kubectl, waits for every Job (config timeout, or \
--wait), collects each pod's result from its log (printed between marker lines), merges the \
load workers into RESULTS/RUNID/run.json (histograms added: exact percentiles), keeps GPU \
runs under matrix/, writes k8s.json (each Job's end, missing pods and why), and deletes the \
namespace unless --keep. A Job that fails or times out keeps what its pods left, marked \
incomplete (exit 1). kubectl's own configuration reaches the cluster; none of it is written \
to the results, and an API key comes from a Secret (load.api_key_secret), never the config.";

#[derive(Subcommand)]
pub enum K8sCommand {
    /// Write the manifests of a config to a folder.
    Render(RenderArgs),
    /// Apply them, wait, collect and merge the results, delete the namespace.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RenderArgs {
    /// The config (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The folder to write the manifests to.
    #[arg(long, short = 'o', value_name = "DIR")]
    output: PathBuf,
    /// The run's id (default: the config's run_id, else k8s-YYYYMMDDTHHMMSSZ).
    #[arg(long)]
    run_id: Option<String>,
    /// The workers' start time, RFC 3339 (default: now + the config's start_delay).
    #[arg(long, value_name = "TIME")]
    start_at: Option<String>,
}

#[derive(Args)]
pub struct RunArgs {
    /// The config (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Folder that holds one folder per run.
    #[arg(long, short = 'o', default_value = "results")]
    output: PathBuf,
    /// The run's id (default: the config's run_id, else k8s-YYYYMMDDTHHMMSSZ).
    #[arg(long)]
    run_id: Option<String>,
    /// Leave the namespace in place at the end (to look at the pods).
    #[arg(long)]
    keep: bool,
    /// The kubectl program.
    #[arg(long, default_value = "kubectl", env = "KUBECTL")]
    kubectl: PathBuf,
    /// Longest wait for the Jobs (default: the config's start_delay + timeout).
    #[arg(long, value_parser = humantime::parse_duration)]
    wait: Option<Duration>,
    /// Time between checks of a Job's status.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    poll: Duration,
}

pub fn handle(command: K8sCommand) -> Result<Outcome> {
    match command {
        K8sCommand::Render(args) => render_command(args),
        K8sCommand::Run(args) => run_command(args),
    }
}

/// The config read and checked (its load flags included), rendered for `run_id`.
fn rendered(config: &K8sConfig, file: &Path, run_id: &str, start_at: f64) -> Result<Rendered> {
    let rendered = render::render(config, run_id, start_at)?;
    let origin = format!("--config {}", file.display());
    if let Some(plan) = &rendered.plan {
        super::workers::check_plan(plan, &format!("{origin}: [load]"))?;
    }
    if let Some(gpu) = &config.gpu {
        for preset in &gpu.presets {
            crate::config::load_preset(preset)
                .map_err(|e| usage(format!("{origin}: gpu.presets: {e:#}")))?;
        }
    }
    Ok(rendered)
}

fn run_id(config: &K8sConfig, given: &Option<String>) -> Result<String> {
    let id = given
        .clone()
        .or_else(|| config.run_id.clone())
        .unwrap_or_else(|| {
            // Lower case: the id names the namespace, and Kubernetes names are.
            let stamp: String = crate::results::now_rfc3339()
                .chars()
                .filter(|c| !matches!(c, '-' | ':'))
                .collect();
            format!("k8s-{}", stamp.to_lowercase())
        });
    crate::results::check_plain_name("--run-id", &id)?;
    crate::k8s::config::namespace_for(&id).map_err(|e| usage(format!("--run-id {id}: {e:#}")))?;
    Ok(id)
}

fn render_command(args: RenderArgs) -> Result<Outcome> {
    let config = K8sConfig::read(&args.config)?;
    let id = run_id(&config, &args.run_id)?;
    let start_at = match &args.start_at {
        Some(text) => humantime::parse_rfc3339_weak(text)
            .map(plan::unix_seconds)
            .map_err(|e| {
                usage(format!(
                    "--start-at {text}: {e} (e.g. 2026-12-01T10:00:00Z)"
                ))
            })?,
        None => plan::unix_now() + config.start_delay.as_secs_f64(),
    };
    let rendered = rendered(&config, &args.config, &id, start_at)?;
    k8s_run::write_manifests(&args.output, &rendered)?;
    for m in &rendered.manifests {
        println!("{}", args.output.join(&m.file_name).display());
    }
    if rendered.plan.is_some() {
        eprintln!(
            "the workers start at {} (apply before then, or they start late and say by how much)",
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + Duration::from_secs_f64(start_at)
            )
        );
    }
    Ok(Outcome::Done)
}

fn run_command(args: RunArgs) -> Result<Outcome> {
    let config = K8sConfig::read(&args.config)?;
    let id = run_id(&config, &args.run_id)?;
    let start_at = plan::unix_now() + config.start_delay.as_secs_f64();
    let rendered = rendered(&config, &args.config, &id, start_at)?;
    let interrupt = super::interrupt::install(
        "waiting: what the pods left is collected and the namespace deleted",
    )?;
    let dir = RunDir::create(&args.output, Some(&id), "k8s")?;
    if let Some(p) = &rendered.plan {
        std::fs::write(dir.path().join("plan.json"), Plan::to_json(p))?;
    }
    let outcome = k8s_run::run(K8sRunRequest {
        kubectl: Kubectl {
            program: args.kubectl,
        },
        rendered,
        dir,
        wait: args.wait.unwrap_or(config.start_delay + config.timeout),
        poll: args.poll,
        keep: args.keep,
        interrupt: &interrupt,
    })?;
    if let Some(run) = &outcome.merged {
        println!("{}", crate::report::http::table(run));
    }
    for job in &outcome.summary.jobs {
        eprintln!(
            "job {}: {}, {} result(s){}",
            job.name,
            job.status,
            job.results.len(),
            if job.missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", job.missing.join("; "))
            }
        );
    }
    eprintln!("results: {}", outcome.dir.display());
    if interrupt.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Outcome::Interrupted);
    }
    if !outcome.all_complete() {
        anyhow::bail!(
            "not every Job completed with all its results; what the pods left is in {} (k8s.json says which)",
            outcome.dir.display()
        );
    }
    Ok(Outcome::Done)
}

//! `load --plan FILE`: one worker's share of a plan; `load --workers N`: N such workers on
//! this machine, started together and merged into one run (the test bed of the same path a
//! Kubernetes Indexed Job takes).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use super::load::LoadArgs;
use crate::exit::{usage, Outcome};
use crate::http::merge::{self, WorkerRun};
use crate::http::plan::{self, Plan, WorkerRole};
use crate::report::http::HttpRun;
use crate::results::{RunDir, RunFile, RUN_FILE};

/// Seconds between writing the plan and its start: time for every worker process to start,
/// read its prompts and connect.
const LOCAL_START_DELAY_S: f64 = 2.0;

/// Flags that belong to this invocation, not to the load a plan describes: they are taken
/// out of the arguments written into the plan. (name, takes a value)
const INVOCATION_FLAGS: &[(&str, bool)] = &[
    ("--workers", true),
    ("--output", true),
    ("-o", true),
    ("--run-id", true),
    ("--report", false),
    ("--baseline", true),
    ("--result-markers", false),
    ("--api-key", true),
    ("--client-threads", true),
];

/// Flags a worker may be given beside --plan.
const WORKER_FLAGS: &[&str] = &[
    "--plan",
    "--worker-index",
    "--output",
    "-o",
    "--run-id",
    "--result-markers",
    "--client-threads",
];

/// The load arguments of `argv` (everything after `load`), without the invocation's own
/// flags: what every worker of the plan runs.
pub fn plan_args(argv: &[String]) -> Vec<String> {
    let start = argv.iter().position(|a| a == "load").map_or(0, |i| i + 1);
    let mut out = Vec::new();
    let mut args = argv[start..].iter();
    while let Some(arg) = args.next() {
        let name = arg.split('=').next().unwrap_or(arg);
        match INVOCATION_FLAGS.iter().find(|(flag, _)| *flag == name) {
            Some((_, takes_value)) => {
                if *takes_value && !arg.contains('=') {
                    args.next();
                }
            }
            None => out.push(arg.clone()),
        }
    }
    out
}

/// Flags on a worker's command line that the plan already decides.
fn flags_beside_plan(argv: &[String]) -> Vec<String> {
    let start = argv.iter().position(|a| a == "load").map_or(0, |i| i + 1);
    argv[start..]
        .iter()
        .filter(|a| a.starts_with('-'))
        .map(|a| a.split('=').next().unwrap_or(a).to_string())
        .filter(|name| !WORKER_FLAGS.contains(&name.as_str()))
        .collect()
}

/// The plan's load arguments as `load` flags, refused when they ask for what a plan cannot
/// split.
fn parse_plan_load(plan: &Plan, origin: &str) -> Result<LoadArgs> {
    let line = ["inferbench", "load"]
        .into_iter()
        .map(String::from)
        .chain(plan.load_args.iter().cloned());
    let parsed = super::Cli::try_parse_from(line).map_err(|e| {
        usage(format!(
            "{origin}: its load_args are not `inferbench load` flags: {}",
            e.render().to_string().lines().next().unwrap_or_default()
        ))
    })?;
    let super::Command::Load(args) = parsed.command else {
        unreachable!("parsed as load")
    };
    if args.workers.is_some() || args.plan.is_some() {
        return Err(usage(format!(
            "{origin}: a plan's load cannot itself have --workers or --plan"
        )));
    }
    refuse_unsplittable(&args, origin)?;
    Ok(*args)
}

/// What several workers cannot share.
fn refuse_unsplittable(args: &LoadArgs, origin: &str) -> Result<()> {
    if args.sweep {
        return Err(usage(format!(
            "{origin}: --sweep decides each step on the whole load's figures, which no worker \
             has; give the rates as --rate A,B,C instead"
        )));
    }
    if matches!(args.pattern, super::load::PatternKind::Replay(_)) {
        return Err(usage(format!(
            "{origin}: a replay follows one trace's clock; run it from one process"
        )));
    }
    if args.breaking_point {
        return Err(usage(format!(
            "{origin}: --breaking-point decides each level on the whole load's figures, which \
             no worker has; run it from one process, or give the rates as --rate A,B,C"
        )));
    }
    if args.pages.dashboard.dashboard.is_some() {
        return Err(usage(format!(
            "{origin}: --dashboard shows one process; with workers, use --report on the merged run"
        )));
    }
    Ok(())
}

/// Every worker's share must hold at least one user and one request: checked for all
/// workers before any starts.
fn check_shares(args: &LoadArgs, workers: u32) -> Result<()> {
    for index in 0..workers {
        let share = plan::Share { index, workers };
        for shape in args.shapes()? {
            share.of_shape(&shape)?;
        }
        if args.duration.is_none() && share.of_count(args.requests) == 0 {
            return Err(usage(format!(
                "-n {} over {workers} workers: every worker needs at least one request",
                args.requests
            )));
        }
    }
    Ok(())
}

/// A plan every worker can run: its load flags parse, and every share holds a user and a
/// request. What `k8s render` checks before writing manifests.
pub(super) fn check_plan(plan: &Plan, origin: &str) -> Result<()> {
    let load = parse_plan_load(plan, origin)?;
    load.check()?;
    check_shares(&load, plan.workers).map_err(|e| usage(format!("{origin}: {e:#}")))
}

/// `load --plan FILE`: this worker's share of the plan, started at the plan's time.
pub fn run_worker(
    args: &LoadArgs,
    plan_file: &Path,
    argv: &[String],
    interrupt: Arc<AtomicBool>,
) -> Result<Outcome> {
    let extra = flags_beside_plan(argv);
    if !extra.is_empty() {
        return Err(usage(format!(
            "{} beside --plan: the plan decides the load; only --worker-index, -o, --run-id \
             and --result-markers may be given",
            extra.join(", ")
        )));
    }
    let plan = Plan::read(plan_file)?;
    let index = args.worker_index.ok_or_else(|| {
        usage("--plan needs --worker-index I (or JOB_COMPLETION_INDEX in the environment)")
    })?;
    let share = plan.share(index)?;
    let origin = format!("--plan {}", plan_file.display());
    let mut load = parse_plan_load(&plan, &origin)?;
    load.output = args.output.clone();
    load.run_id = Some(
        args.run_id
            .clone()
            .unwrap_or_else(|| plan.worker_run_id(index)),
    );
    load.result_markers = args.result_markers;
    load.client_threads = args.client_threads.or(load.client_threads);
    check_shares(&load, plan.workers)?;
    let mut request = load.request(interrupt.clone())?;
    let full_shapes = request.shapes.clone();
    request.shapes = full_shapes
        .iter()
        .map(|s| share.of_shape(s))
        .collect::<Result<_>>()?;
    request.requests = share.of_count(request.requests);
    request.warmup = request.warmup.map(|w| share.of_count(w));
    request.seed = share.seed(request.seed);
    request.worker = Some(WorkerRole {
        plan,
        share,
        full_shapes,
    });
    let pages = load.pages.start("inferbench load worker")?;
    let outcome = crate::http::run(request)?;
    super::load::finish_run(&load, &outcome, pages, &interrupt)
}

/// `load --workers N`: N worker processes of this binary, their runs merged into one.
pub fn run_local(
    args: &LoadArgs,
    workers: u32,
    argv: &[String],
    interrupt: Arc<AtomicBool>,
) -> Result<Outcome> {
    refuse_unsplittable(args, "--workers")?;
    args.check()?;
    check_shares(args, workers)?;
    let dir = RunDir::create(&args.output, args.run_id.as_deref(), "load")?;
    let plan = Plan {
        plan_version: plan::PLAN_VERSION,
        id: dir.run_id(),
        workers,
        start_at_unix_s: plan::unix_now() + LOCAL_START_DELAY_S,
        load_args: plan_args(argv),
    };
    let plan_file = dir.path().join("plan.json");
    std::fs::write(&plan_file, plan.to_json())
        .with_context(|| format!("{}: cannot write the plan", plan_file.display()))?;
    let workers_dir = dir.path().join("workers");
    std::fs::create_dir_all(&workers_dir)
        .with_context(|| format!("{}: cannot create it", workers_dir.display()))?;
    let exe = std::env::current_exe().context("finding this program to start its workers")?;
    // The workers share this machine's cores: each gets its part, so N runtimes do not
    // fight over them (on a cluster every pod has its own).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let threads = args
        .client_threads
        .unwrap_or_else(|| (cores / workers).max(1));
    let mut children = Vec::new();
    for index in 0..workers {
        let log_path = workers_dir.join(format!("worker-{index}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("{}: cannot create it", log_path.display()))?;
        let mut command = Command::new(&exe);
        command
            .arg("load")
            .arg("--plan")
            .arg(&plan_file)
            .arg("--worker-index")
            .arg(index.to_string())
            .arg("-o")
            .arg(&workers_dir)
            .arg("--client-threads")
            .arg(threads.to_string())
            .env_remove("JOB_COMPLETION_INDEX")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(key) = &args.api_key {
            command.env("OPENAI_API_KEY", key);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting worker {index} ({})", exe.display()))?;
        children.push((index, child, log_path));
    }
    eprintln!(
        "{workers} workers started; they begin together in {LOCAL_START_DELAY_S} s (logs: {})",
        workers_dir.display()
    );
    let exits = wait_all(children, &interrupt);
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    for (index, code, log_path) in &exits {
        let file = workers_dir.join(plan.worker_run_id(*index)).join(RUN_FILE);
        match HttpRun::load(&file) {
            Ok(run) => runs.push(WorkerRun {
                source: format!("worker {index}"),
                run,
            }),
            Err(e) => missing.push(format!(
                "worker {index}: exited with {code} and left no result ({e:#}); log: {}",
                log_path.display()
            )),
        }
        if *code != "code 0" {
            eprintln!(
                "worker {index} exited with {code}; last lines of {}:\n{}",
                log_path.display(),
                tail(log_path, 8)
            );
        }
    }
    if runs.is_empty() {
        dir.discard_empty();
        anyhow::bail!("no worker left a result: {}", missing.join("; "));
    }
    let mut merged = merge::merge(&runs, missing, &dir.run_id())?;
    dir.save(&mut merged)?;
    for w in merged.merged.iter().flat_map(|m| &m.workers) {
        for s in &w.scenarios {
            eprintln!(
                "  worker {}: {} {}/{} ok, {:.2} req/s",
                w.index.map_or("?".into(), |i| i.to_string()),
                s.name,
                s.succeeded,
                s.requests,
                s.requests_per_second
            );
        }
    }
    if let Some(spread) = merged.merged.as_ref().and_then(|m| m.start_spread_ms) {
        eprintln!("workers' start times spread over {spread:.1} ms");
    }
    let outcome = crate::http::LoadOutcome {
        dir: dir.path().to_path_buf(),
        result: merged,
    };
    let pages = args.pages.start("inferbench load")?;
    let done = super::load::finish_run(args, &outcome, pages, &interrupt)?;
    if let Some(m) = outcome
        .result
        .merged
        .as_ref()
        .filter(|m| !m.missing.is_empty())
    {
        anyhow::bail!(
            "merged {} of {workers} workers; missing: {}",
            m.workers.len(),
            m.missing.join("; ")
        );
    }
    Ok(done)
}

/// Wait for every worker; on Ctrl-C, pass the interrupt on to those still running (a
/// terminal's Ctrl-C reaches them already; a signal sent to this process alone does not).
fn wait_all(
    mut children: Vec<(u32, Child, PathBuf)>,
    interrupt: &AtomicBool,
) -> Vec<(u32, String, PathBuf)> {
    let mut done = Vec::new();
    let mut forwarded = false;
    while !children.is_empty() {
        if interrupt.load(Ordering::SeqCst) && !forwarded {
            forwarded = true;
            for (_, child, _) in &children {
                let _ = Command::new("kill")
                    .arg("-INT")
                    .arg(child.id().to_string())
                    .status();
            }
        }
        let mut still = Vec::new();
        for (index, mut child, log) in children {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let code = status
                        .code()
                        .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
                    eprintln!("worker {index}: finished ({code})");
                    done.push((index, code, log));
                }
                Ok(None) => still.push((index, child, log)),
                Err(e) => done.push((index, format!("an unknown status ({e})"), log)),
            }
        }
        children = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    done.sort_by_key(|(index, _, _)| *index);
    done
}

/// The last lines of a log, indented.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn the_plan_keeps_the_load_and_drops_the_invocation() {
        let a = argv(
            "inferbench load --url http://h:1 -c 8 --workers 3 -o out --run-id r --report \
             --api-key secret --rate=5 --baseline=b",
        );
        assert_eq!(plan_args(&a), argv("--url http://h:1 -c 8 --rate=5"));
    }

    #[test]
    fn a_worker_takes_no_load_flags_of_its_own() {
        let a = argv("inferbench load --plan p.json --worker-index 1 -o x -c 4 --rate=3");
        assert_eq!(flags_beside_plan(&a), ["-c", "--rate"]);
        assert!(flags_beside_plan(&argv("inferbench load --plan p --run-id r")).is_empty());
    }

    #[test]
    fn plans_that_cannot_be_split_are_refused() {
        let plan = |args: &str| Plan {
            plan_version: 1,
            id: "p".into(),
            workers: 3,
            start_at_unix_s: 0.0,
            load_args: argv(args),
        };
        let e = |args: &str| match parse_plan_load(&plan(args), "plan") {
            Ok(_) => panic!("{args}: accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e("--sweep").contains("--sweep"));
        assert!(e("--bogus").contains("not `inferbench load` flags"));
        let two_users = parse_plan_load(&plan("-c 2"), "plan").unwrap();
        let why = format!("{:#}", check_shares(&two_users, 3).unwrap_err());
        assert!(why.contains("-c 2 over 3 workers"), "{why}");
        let few = parse_plan_load(&plan("-c 3 -n 2"), "plan").unwrap();
        assert!(format!("{:#}", check_shares(&few, 3).unwrap_err()).contains("-n 2"));
    }
}

//! Instruction counts of the CPU hot paths, under callgrind: a measurement that does not move
//! when the machine is busy, so a CI gate can hold it to +2% where wall times need +20%.
//!
//! The runner starts one process per workload (`inferbench instructions --worker NAME`) under
//! `valgrind --tool=callgrind --instr-atstart=no`; the worker sets its inputs up uncounted and
//! switches counting on around the measured iterations only (client requests). Workers run in
//! parallel, since counts do not depend on load. Wall times of the same iterations, measured
//! natively afterwards one workload at a time, ride along as advisory figures.

pub mod callgrind;
pub mod client_request;
pub mod profile;
pub mod worker;
pub mod workloads;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::device::MachineInfo;
use crate::report::instructions::{CountProfile, Counted, InstructionRun, KIND};
use crate::results::{now_rfc3339, RunDir, RunHeader};
use anyhow::{anyhow, bail, Context, Result};
use worker::Answer;
use workloads::Workload;

/// What to count, and how.
pub struct CountRequest {
    pub workloads: Vec<&'static Workload>,
    /// The binary that runs the workers (this one).
    pub exe: PathBuf,
    pub valgrind: PathBuf,
    /// "valgrind-3.19.0".
    pub valgrind_version: String,
    /// Workers under callgrind at once.
    pub jobs: usize,
    /// Simulate the caches too (misses and estimated cycles; about twice as slow).
    pub cache_sim: bool,
    /// Wall-time samples per workload after counting; 0: none.
    pub time_samples: usize,
    /// Where callgrind's output files go (kept: callgrind_annotate and kcachegrind read them).
    pub callgrind_dir: PathBuf,
    /// Where inputs built natively beforehand go (the HNSW index).
    pub prepared_dir: PathBuf,
}

/// The environment every worker gets, the same for every run: counts depend on the
/// environment's size (it sits on the stack) and on thread counts.
fn worker_env(cmd: &mut Command) {
    cmd.env_clear();
    for keep in ["PATH", "HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    if let Some(v) = std::env::var_os(INJECT_SLOWDOWN_ENV) {
        cmd.env(INJECT_SLOWDOWN_ENV, v);
    }
    cmd.env("RAYON_NUM_THREADS", "1")
        .env("LC_ALL", "C")
        .env("GLIBC_TUNABLES", GLIBC_TUNABLES);
}

/// glibc picks memcpy/memset strategies by the host's cache sizes (non-temporal stores past a
/// share of the last-level cache, `rep movsb` past a length): fixed here, so a host with
/// another cache does not count other instructions for the same copy. The sizes match the
/// cache simulation's.
const GLIBC_TUNABLES: &str = "glibc.cpu.x86_data_cache_size=0x8000:\
glibc.cpu.x86_shared_cache_size=0x800000:glibc.cpu.x86_non_temporal_threshold=0x600000:\
glibc.cpu.x86_rep_movsb_threshold=0x800:glibc.cpu.x86_rep_stosb_threshold=0x800";

/// The knob of the regression proof (scripts/regress-check.sh): with the `inject-slowdown`
/// feature compiled in and this set to `l2`, the L2 kernel repeats a tenth of its work.
pub const INJECT_SLOWDOWN_ENV: &str = "INFERBENCH_INJECT_SLOWDOWN";

/// A file name for a workload: "qmatmul/smollm2-135m/Q8_0" -> "qmatmul_smollm2-135m_Q8_0".
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A worker's arguments after the program: `inferbench instructions --worker NAME ...`.
fn worker_args(request: &CountRequest, w: &Workload, mode: &str) -> Vec<String> {
    let prepared = request.prepared_dir.display().to_string();
    [
        "instructions",
        "--worker",
        w.name,
        "--worker-mode",
        mode,
        "--prepared",
        &prepared,
    ]
    .map(String::from)
    .to_vec()
}

/// Run a worker natively; its answer.
fn native(request: &CountRequest, w: &Workload, mode: &str, extra: &[String]) -> Result<Answer> {
    let mut cmd = Command::new(&request.exe);
    worker_env(&mut cmd);
    cmd.args(worker_args(request, w, mode)).args(extra);
    let output = cmd.output().context("cannot start a worker")?;
    if !output.status.success() {
        bail!(
            "{}: the {mode} worker failed ({}): {}",
            w.name,
            output.status,
            last_lines(&String::from_utf8_lossy(&output.stderr), 5)
        );
    }
    worker::read_answer(&String::from_utf8_lossy(&output.stdout))
}

/// Count one workload under callgrind (its inputs prepared natively first, if it has any).
fn count_one(request: &CountRequest, w: &Workload) -> Result<(Counted, CountProfile)> {
    if w.prepare.is_some() {
        native(request, w, "prepare", &[])?;
    }
    let stem = file_stem(w.name);
    let out_file = request.callgrind_dir.join(format!("{stem}.callgrind.out"));
    let log_file = request.callgrind_dir.join(format!("{stem}.log"));
    let mut cmd = Command::new(&request.valgrind);
    worker_env(&mut cmd);
    cmd.args(callgrind::arguments(&out_file, request.cache_sim))
        .arg(format!("--log-file={}", log_file.display()))
        .arg(&request.exe)
        .args(worker_args(request, w, "count"));
    let started = Instant::now();
    let output = cmd
        .output()
        .with_context(|| format!("cannot start {}", request.valgrind.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "{}: the counted process failed ({}): {} (valgrind's log: {})",
            w.name,
            output.status,
            last_lines(&stderr, 5),
            log_file.display()
        );
    }
    let answer = worker::read_answer(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("{}: worker under valgrind", w.name))?;
    if !answer.under_valgrind {
        bail!("{}: the worker did not see valgrind", w.name);
    }
    let mut profile = answer.profile;
    profile.valgrind = request.valgrind_version.clone();
    let totals = callgrind::read_totals(&out_file)?;
    let per_iteration = totals
        .into_iter()
        .map(|(k, v)| (k, v as f64 / f64::from(w.iterations)))
        .collect();
    let counted = Counted {
        name: w.name.into(),
        what: w.what.into(),
        iterations: w.iterations,
        per_iteration,
        time_ns: Vec::new(),
        callgrind_file: format!(
            "{}/{}",
            request
                .callgrind_dir
                .file_name()
                .map_or("callgrind".into(), |s| s.to_string_lossy()),
            out_file
                .file_name()
                .map_or(String::new(), |s| s.to_string_lossy().into())
        ),
        count_seconds: seconds,
    };
    Ok((counted, profile))
}

/// Time one workload natively.
fn time_one(request: &CountRequest, w: &Workload) -> Result<Vec<f64>> {
    let samples = ["--samples".to_string(), request.time_samples.to_string()];
    Ok(native(request, w, "time", &samples)?.time_ns)
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// What a whole run measured; `interrupted` when Ctrl-C stopped it early.
pub struct Measured {
    pub counted: Vec<Counted>,
    pub profile: Option<CountProfile>,
    pub interrupted: bool,
}

/// Count every workload (`jobs` at once), then time them one by one. `report` hears each
/// finished workload. A failed workload fails the run; Ctrl-C keeps what finished.
pub fn measure(
    request: &CountRequest,
    stop: &AtomicBool,
    report: &(dyn Fn(&Counted, &CountProfile) + Sync),
) -> Result<Measured> {
    std::fs::create_dir_all(&request.callgrind_dir)
        .with_context(|| format!("cannot create {}", request.callgrind_dir.display()))?;
    let next = AtomicUsize::new(0);
    // One slot per workload, filled as they finish (empty: not reached before Ctrl-C).
    type Slot = Option<Result<(Counted, CountProfile)>>;
    let results: Mutex<Vec<Slot>> =
        Mutex::new((0..request.workloads.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..request.jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(w) = request.workloads.get(i) else {
                    break;
                };
                let result = count_one(request, w);
                if stop.load(Ordering::SeqCst) {
                    break; // the worker died of the same Ctrl-C
                }
                if let Ok((c, p)) = &result {
                    report(c, p);
                }
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(result);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| anyhow!("a counting thread panicked"))?;
    let mut counted = Vec::new();
    let mut profile: Option<CountProfile> = None;
    for result in results.into_iter().flatten() {
        let (c, p) = result?;
        if let Some(first) = &profile {
            if *first != p {
                bail!(
                    "{}: workers disagree on the profile: {:?}",
                    c.name,
                    first.differences(&p)
                );
            }
        }
        profile = Some(p);
        counted.push(c);
    }
    let mut interrupted = stop.load(Ordering::SeqCst);
    if request.time_samples > 0 && !interrupted {
        for c in &mut counted {
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            let w = workloads::find(&c.name).ok_or_else(|| anyhow!("{}: unknown", c.name))?;
            c.time_ns = time_one(request, w)?;
        }
    }
    Ok(Measured {
        counted,
        profile,
        interrupted,
    })
}

/// A finished (or interrupted) run and its folder.
pub struct Outcome {
    pub dir: PathBuf,
    pub result: InstructionRun,
}

/// Count into a new run folder under `output`: run.json, scenarios.csv, and callgrind's files
/// under callgrind/.
pub fn run(
    request: CountRequest,
    output: &Path,
    run_id: Option<&str>,
    stop: &AtomicBool,
) -> Result<Outcome> {
    let dir = RunDir::create(output, run_id, KIND)?;
    let request = CountRequest {
        callgrind_dir: dir.path().join("callgrind"),
        prepared_dir: dir.path().join("prepared"),
        ..request
    };
    let mut result = InstructionRun {
        header: RunHeader::start(KIND, &dir.run_id(), now_rfc3339(), MachineInfo::collect()),
        profile: None,
        cache_sim: request.cache_sim,
        planned: request
            .workloads
            .iter()
            .map(|w| w.name.to_string())
            .collect(),
        benchmarks: Vec::new(),
    };
    dir.save(&mut result)?;
    let total = request.workloads.len();
    // Saved after every workload, so a run killed outright keeps what it counted.
    let so_far = Mutex::new(result);
    let measured = measure(&request, stop, &|c, profile| {
        let Ok(mut run) = so_far.lock() else { return };
        run.benchmarks.push(c.clone());
        run.profile = Some(profile.clone());
        if let Err(e) = dir.save(&mut *run) {
            eprintln!("warning: cannot save the run so far: {e:#}");
        }
        eprintln!(
            "[{}/{total}] {}: {:.0} instructions per iteration ({:.1} s under callgrind)",
            run.benchmarks.len(),
            c.name,
            c.instructions(),
            c.count_seconds
        );
    })?;
    let mut result = so_far
        .into_inner()
        .map_err(|_| anyhow!("a counting thread panicked"))?;
    // In the order asked for, not the order finished.
    result.profile = measured.profile;
    result.benchmarks = measured.counted;
    dir.finish(&mut result, measured.interrupted)?;
    Ok(Outcome {
        dir: dir.path().to_path_buf(),
        result,
    })
}

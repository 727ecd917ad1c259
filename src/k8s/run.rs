//! `k8s run`: apply the rendered manifests with kubectl, wait for the Jobs, collect every
//! pod's result from its log, merge the load workers, snapshot the manifests beside the
//! results, and delete the namespace. Only kubectl's own configuration reaches the cluster;
//! nothing of it is read or written here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::render::{JobKind, JobSpec, Rendered};
use crate::http::merge::{self, WorkerRun};
use crate::report::http::HttpRun;
use crate::results::{markers, write_atomic, RunDir, RunFile};

/// The kubectl to call.
pub struct Kubectl {
    pub program: PathBuf,
}

impl Kubectl {
    /// Run `kubectl ARGS`, its standard output back; a failure says the command and its
    /// standard error.
    pub fn call(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.program)
            .args(args)
            .output()
            .with_context(|| {
                format!(
                    "running {} (install kubectl or pass --kubectl PATH)",
                    self.program.display()
                )
            })?;
        if !out.status.success() {
            bail!(
                "`kubectl {}` failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        let text = self.call(args)?;
        serde_json::from_str(&text)
            .with_context(|| format!("`kubectl {}` did not print JSON", args.join(" ")))
    }
}

pub struct K8sRunRequest<'a> {
    pub kubectl: Kubectl,
    pub rendered: Rendered,
    pub dir: RunDir,
    /// How long to wait for the Jobs, from now.
    pub wait: Duration,
    pub poll: Duration,
    pub keep: bool,
    pub interrupt: &'a AtomicBool,
}

/// What became of each Job, written to k8s.json in the run folder.
#[derive(Debug, Serialize)]
pub struct K8sSummary {
    pub namespace: String,
    pub jobs: Vec<JobOutcome>,
    /// Whether the namespace was left in place (--keep, or its deletion failed).
    pub namespace_kept: bool,
}

#[derive(Debug, Serialize)]
pub struct JobOutcome {
    pub name: String,
    /// complete, failed, timed out, interrupted.
    pub status: String,
    /// Result files written, relative to the run folder.
    pub results: Vec<String>,
    /// Pods (or workers) with no result, and why.
    pub missing: Vec<String>,
}

pub struct K8sOutcome {
    pub summary: K8sSummary,
    /// The merged load run, when there was a load Job and a worker left a result.
    pub merged: Option<HttpRun>,
    pub dir: PathBuf,
}

impl K8sOutcome {
    pub fn all_complete(&self) -> bool {
        self.summary
            .jobs
            .iter()
            .all(|j| j.status == "complete" && j.missing.is_empty())
    }
}

pub fn run(req: K8sRunRequest) -> Result<K8sOutcome> {
    let dir = req.dir.path().to_path_buf();
    let manifests = dir.join("manifests");
    write_manifests(&manifests, &req.rendered)?;
    let ns = req.rendered.namespace.clone();
    eprintln!(
        "applying {} manifests into namespace {ns}",
        req.rendered.manifests.len()
    );
    let applied = req
        .kubectl
        .call(&["apply", "-f", &manifests.to_string_lossy()]);
    let mut jobs = Vec::new();
    let mut merged = None;
    match applied {
        Err(e) => {
            // Something may have been created before the failure: clean it up all the same.
            cleanup(&req, &ns);
            return Err(e.context("applying the manifests"));
        }
        Ok(out) => eprint!("{out}"),
    }
    let deadline = Instant::now() + req.wait;
    for job in &req.rendered.jobs {
        let status = wait_for(&req, &ns, job, deadline);
        eprintln!("job {}: {status}", job.name);
        let (outcome, run) = collect(&req, &ns, job, status, &dir);
        if run.is_some() {
            merged = run;
        }
        jobs.push(outcome);
    }
    let namespace_kept = req.keep || !cleanup(&req, &ns);
    let summary = K8sSummary {
        namespace: ns,
        jobs,
        namespace_kept,
    };
    let json = serde_json::to_vec_pretty(&summary)?;
    write_atomic(&dir.join("k8s.json"), &json)?;
    if let Some(run) = &mut merged {
        req.dir.save(run)?;
    }
    Ok(K8sOutcome {
        summary,
        merged,
        dir,
    })
}

/// The rendered manifests in the run folder: what was applied, kept with the results.
pub fn write_manifests(dir: &Path, rendered: &Rendered) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create it", dir.display()))?;
    for m in &rendered.manifests {
        write_atomic(&dir.join(&m.file_name), m.yaml.as_bytes())?;
    }
    Ok(())
}

/// Poll the Job until it completes or fails, the time is up, or Ctrl-C.
fn wait_for(req: &K8sRunRequest, ns: &str, job: &JobSpec, deadline: Instant) -> String {
    let mut last_error: Option<String>;
    loop {
        if req.interrupt.load(Ordering::SeqCst) {
            return "interrupted".into();
        }
        match req
            .kubectl
            .json(&["get", "job", &job.name, "-n", ns, "-o", "json"])
        {
            Ok(v) => {
                last_error = None;
                if let Some(state) = finished(&v) {
                    return state.into();
                }
            }
            Err(e) => last_error = Some(format!("{e:#}")),
        }
        if Instant::now() >= deadline {
            return match last_error {
                Some(e) => format!("timed out ({e})"),
                None => "timed out".into(),
            };
        }
        std::thread::sleep(req.poll);
    }
}

/// "complete" or "failed" once the Job has that condition.
fn finished(job: &Value) -> Option<&'static str> {
    let conditions = job.pointer("/status/conditions")?.as_array()?;
    let has = |kind: &str| {
        conditions.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    };
    if has("Complete") {
        Some("complete")
    } else if has("Failed") {
        Some("failed")
    } else {
        None
    }
}

/// Each pod's result from its log: load workers into workers/ and merged; a GPU run into
/// matrix/JOB/. Whatever a pod left is kept, whatever the Job's end.
fn collect(
    req: &K8sRunRequest,
    ns: &str,
    job: &JobSpec,
    status: String,
    dir: &Path,
) -> (JobOutcome, Option<HttpRun>) {
    let mut outcome = JobOutcome {
        name: job.name.clone(),
        status,
        results: Vec::new(),
        missing: Vec::new(),
    };
    let pods = match req.kubectl.json(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        &format!("job-name={}", job.name),
        "-o",
        "json",
    ]) {
        Ok(v) => pods_of(&v),
        Err(e) => {
            outcome.missing.push(format!("no pod list: {e:#}"));
            Vec::new()
        }
    };
    let mut worker_runs = Vec::new();
    for pod in &pods {
        let what = match pod.index {
            Some(i) => format!("worker {i}"),
            None => format!("pod {}", pod.name),
        };
        let log = match req.kubectl.call(&["logs", "-n", ns, &pod.name]) {
            Ok(log) => log,
            Err(e) => {
                outcome.missing.push(format!("{what}: no log ({e:#})"));
                continue;
            }
        };
        let sub = match &job.kind {
            JobKind::Load { .. } => format!("workers/{}", pod.name),
            JobKind::Run { .. } => format!("matrix/{}", job.name),
        };
        let folder = dir.join(&sub);
        let saved = std::fs::create_dir_all(&folder)
            .map_err(anyhow::Error::from)
            .and_then(|_| write_atomic(&folder.join("pod.log"), log.as_bytes()));
        if let Err(e) = saved {
            outcome
                .missing
                .push(format!("{what}: cannot keep its log ({e:#})"));
            continue;
        }
        let result = markers::extract(&log).and_then(|json| {
            let value: Value = serde_json::from_str(json).context("its result is not JSON")?;
            write_atomic(&folder.join("run.json"), json.as_bytes())?;
            Ok(value)
        });
        match (result, &job.kind) {
            (Err(e), _) => outcome
                .missing
                .push(format!("{what}: {e:#} (pod {})", pod.name)),
            (Ok(_), JobKind::Run { .. }) => outcome.results.push(format!("{sub}/run.json")),
            (Ok(_), JobKind::Load { .. }) => match HttpRun::load(&folder.join("run.json")) {
                Ok(run) => {
                    outcome.results.push(format!("{sub}/run.json"));
                    worker_runs.push(WorkerRun { source: what, run });
                }
                Err(e) => outcome.missing.push(format!("{what}: {e:#}")),
            },
        }
    }
    let mut merged = None;
    if let JobKind::Load { workers } = job.kind {
        if pods.is_empty() && outcome.missing.is_empty() {
            outcome
                .missing
                .push(format!("no pod of the {workers} workers was found"));
        }
        if !worker_runs.is_empty() {
            // Workers with no pod at all are named by the merge from the plan.
            match merge::merge(&worker_runs, outcome.missing.clone(), &req.dir.run_id()) {
                Ok(run) => merged = Some(run),
                Err(e) => outcome.missing.push(format!("merging: {e:#}")),
            }
        }
    } else if pods.is_empty() && outcome.missing.is_empty() {
        outcome.missing.push("no pod was found".into());
    }
    (outcome, merged)
}

struct Pod {
    name: String,
    index: Option<u32>,
}

fn pods_of(list: &Value) -> Vec<Pod> {
    let mut pods: Vec<Pod> = list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let name = item.pointer("/metadata/name")?.as_str()?.to_string();
            let index = item
                .pointer("/metadata/annotations/batch.kubernetes.io~1job-completion-index")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok());
            Some(Pod { name, index })
        })
        .collect();
    pods.sort_by(|a, b| (a.index, &a.name).cmp(&(b.index, &b.name)));
    pods
}

/// Delete the namespace (and so everything in it) unless --keep; true when it is gone or
/// going.
fn cleanup(req: &K8sRunRequest, ns: &str) -> bool {
    if req.keep {
        eprintln!("kept namespace {ns} (--keep); delete it with `kubectl delete namespace {ns}`");
        return false;
    }
    match req.kubectl.call(&[
        "delete",
        "namespace",
        ns,
        "--wait=false",
        "--ignore-not-found",
    ]) {
        Ok(_) => {
            eprintln!("deleted namespace {ns}");
            true
        }
        Err(e) => {
            eprintln!("warning: could not delete namespace {ns}: {e:#}");
            false
        }
    }
}

//! `inferbench k8s`: rendered manifests against their golden copy and the Kubernetes
//! schemas (scripts/k8s-validate.sh), and `k8s run` against a fake kubectl that records its
//! calls and hands back pod logs written by real workers against `inferbench serve --mock`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::common::{assert_clean_failure, inferbench, load_json, repo_root, start_serve, stderr};

const START: &str = "2026-12-01T10:00:00Z";

fn validate(files: &[PathBuf]) -> std::process::Output {
    Command::new(repo_root().join("scripts/k8s-validate.sh"))
        .args(files)
        .output()
        .expect("run scripts/k8s-validate.sh (needs python3 and PyPI once)")
}

#[test]
fn rendered_manifests_match_their_golden_copy_and_the_kubernetes_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let config = repo_root().join("fixtures/k8s/bench.toml");
    let o = inferbench(&[
        "k8s",
        "render",
        "--config",
        &config.to_string_lossy(),
        "-o",
        &tmp.path().to_string_lossy(),
        "--start-at",
        START,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let golden = repo_root().join("fixtures/k8s/golden");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&golden).unwrap() {
        let want = entry.unwrap().path();
        let got = tmp.path().join(want.file_name().unwrap());
        assert_eq!(
            std::fs::read_to_string(&got).unwrap(),
            std::fs::read_to_string(&want).unwrap(),
            "{} differs from its golden copy (renew with the README's k8s render line)",
            got.display()
        );
        files.push(got);
    }
    assert_eq!(files.len(), 4);
    let o = validate(&files);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    // The validator is strict: a misspelt field fails it.
    let bad = tmp.path().join("bad.yaml");
    let job = std::fs::read_to_string(tmp.path().join("02-job-load.yaml")).unwrap();
    std::fs::write(&bad, job.replace("parallelism:", "paralelism:")).unwrap();
    assert!(!validate(&[bad]).status.success());
    let plan = std::fs::read_to_string(tmp.path().join("01-configmap-plan.yaml")).unwrap();
    assert!(plan.contains("\"start_at_unix_s\": 1796119200.0"), "{plan}");
    assert!(
        !job.contains("api-key\n") || job.contains("secretKeyRef"),
        "{job}"
    );
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(repo_root().join("fixtures/k8s/bench.toml")).unwrap();
    let out = tmp.path().join("out").to_string_lossy().into_owned();
    let render = |text: &str| {
        let path = tmp.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        inferbench(&[
            "k8s",
            "render",
            "--config",
            &path.to_string_lossy(),
            "-o",
            &out,
        ])
    };
    for (edit, says) in [
        (
            base.replace("\"-c\", \"64\"", "\"-c\", \"2\""),
            "-c 2 over 4 workers",
        ),
        (
            base.replace("\"--stream\"", "\"--api-key\", \"sk-1\""),
            "Secret",
        ),
        (
            base.replace("\"--stream\"", "\"--nonsense\""),
            "not `inferbench load` flags",
        ),
        (
            base.replace("presets = [\"quick\"]", "presets = [\"huge\"]"),
            "gpu.presets",
        ),
        (base.replace("workers = 4", "workers = 0"), "load.workers 0"),
        (base.replace("[load]", "[lode]"), "lode"),
        ("image = \"x\"\n".to_string(), "nothing to run"),
    ] {
        assert_clean_failure(&render(&edit), &["c.toml", says]);
    }
    let o = inferbench(&["k8s", "render", "--config", "/nonexistent.toml", "-o", &out]);
    assert_clean_failure(&o, &["/nonexistent.toml", "cannot read"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A kubectl that writes each call to calls.txt and answers from files in its folder:
/// job-NAME.json, pods-NAME.json, logs/POD.log.
fn fake_kubectl(dir: &Path) -> PathBuf {
    let script = dir.join("kubectl");
    std::fs::write(
        &script,
        r#"#!/usr/bin/env bash
here="$(dirname "$0")"
echo "$*" >> "$here/calls.txt"
case "$1 $2" in
  "apply -f") echo "namespace/ns created"; echo "job.batch/load created" ;;
  "get job") cat "$here/job-$3.json" ;;
  "get pods") cat "$here/pods-${6#job-name=}.json" ;;
  "logs -n") cat "$here/logs/$4.log" ;;
  "delete namespace") echo "namespace \"$3\" deleted" ;;
  *) echo "fake kubectl: unexpected: $*" >&2; exit 1 ;;
esac
"#,
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    script
}

/// Worker `index`'s standard output, as its pod's log would hold it.
fn worker_log(url: &str, dir: &Path, index: u32) -> String {
    let plan = dir.join("plan.json");
    if !plan.exists() {
        let p = json!({
            "plan_version": 1, "id": "fake-1", "workers": 3, "start_at_unix_s": 0.0,
            "load_args": ["--url", url, "--stream", "--max-tokens", "8", "-c", "3", "-n", "30"],
        });
        std::fs::write(&plan, p.to_string()).unwrap();
    }
    let o = inferbench(&[
        "load",
        "--plan",
        &plan.to_string_lossy(),
        "--worker-index",
        &index.to_string(),
        "--result-markers",
        "-o",
        &dir.join("worker-results").to_string_lossy(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn pods(job: &str, n: u32) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({"metadata": {
                "name": format!("{job}-{i}-abcde"),
                "annotations": {"batch.kubernetes.io/job-completion-index": i.to_string()},
            }})
        })
        .collect();
    json!({ "items": items })
}

fn config(dir: &Path) -> PathBuf {
    let path = dir.join("k8s.toml");
    std::fs::write(
        &path,
        r#"image = "registry.example/inferbench:test"
start_delay = "1s"
timeout = "2m"
[load]
workers = 3
args = ["--url", "http://bench-target:8000", "--stream", "--max-tokens", "8", "-c", "3", "-n", "30"]
"#,
    )
    .unwrap();
    path
}

#[test]
fn k8s_run_applies_waits_collects_merges_and_deletes_the_namespace() {
    let server = start_serve(&["--mock"]);
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    let kubectl = fake_kubectl(&fake);
    for i in 0..3 {
        let log = format!("worker chatter\n{}", worker_log(&server.url, &fake, i));
        std::fs::write(fake.join(format!("logs/load-{i}-abcde.log")), log).unwrap();
    }
    std::fs::write(fake.join("pods-load.json"), pods("load", 3).to_string()).unwrap();
    let complete =
        json!({"status": {"succeeded": 3, "conditions": [{"type": "Complete", "status": "True"}]}});
    std::fs::write(fake.join("job-load.json"), complete.to_string()).unwrap();
    let results = tmp.path().join("results");
    let run = |id: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_inferbench"));
        c.args(["k8s", "run", "--config"])
            .arg(config(tmp.path()))
            .args(["--run-id", id, "--poll", "100ms", "-o"])
            .arg(&results)
            .arg("--kubectl")
            .arg(&kubectl)
            .args(extra)
            // Cluster credentials live with kubectl; none may reach the results.
            .env("KUBECONFIG", fake.join("kubeconfig-with-token-s3cr3t"));
        c.output().unwrap()
    };
    let o = run("fake-1", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let calls = std::fs::read_to_string(fake.join("calls.txt")).unwrap();
    let manifests = results.join("fake-1/manifests");
    let expected = [
        format!("apply -f {}", manifests.display()),
        "get job load -n inferbench-fake-1 -o json".to_string(),
        "get pods -n inferbench-fake-1 -l job-name=load -o json".to_string(),
        "logs -n inferbench-fake-1 load-0-abcde".to_string(),
        "logs -n inferbench-fake-1 load-2-abcde".to_string(),
        "delete namespace inferbench-fake-1 --wait=false --ignore-not-found".to_string(),
    ];
    for call in &expected {
        assert!(
            calls.lines().any(|l| l == call),
            "no call {call:?} in:\n{calls}"
        );
    }
    assert!(
        manifests.join("02-job-load.yaml").is_file(),
        "the manifests are kept"
    );
    let merged = load_json(&results.join("fake-1/run.json"));
    assert_eq!(merged["status"], "complete");
    assert_eq!(merged["scenarios"][0]["name"], "c3");
    assert_eq!(merged["scenarios"][0]["requests"], 30);
    assert_eq!(merged["merged"]["workers"].as_array().unwrap().len(), 3);
    let summary = load_json(&results.join("fake-1/k8s.json"));
    assert_eq!(summary["jobs"][0]["status"], "complete");
    assert_eq!(summary["namespace_kept"], false);
    let everything = String::from_utf8_lossy(
        &Command::new("grep")
            .args(["-r", "s3cr3t"])
            .arg(&results)
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(everything.is_empty(), "credentials written: {everything}");

    // Worker 2's pod died before its result: the other two are merged, marked incomplete.
    std::fs::write(fake.join("logs/load-2-abcde.log"), "Error: OOMKilled\n").unwrap();
    let failed =
        json!({"status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True"}]}});
    std::fs::write(fake.join("job-load.json"), failed.to_string()).unwrap();
    let o = run("fake-2", &["--keep"]);
    assert_clean_failure(&o, &["job load: failed", "worker 2", "no result"]);
    let merged = load_json(&results.join("fake-2/run.json"));
    assert_eq!(merged["status"], "interrupted");
    assert_eq!(merged["scenarios"][0]["requests"], 20);
    let missing = merged["merged"]["missing"].to_string();
    assert!(missing.contains("worker 2"), "{missing}");
    assert!(
        std::fs::read_to_string(results.join("fake-2/workers/load-2-abcde/pod.log"))
            .unwrap()
            .contains("OOMKilled")
    );
    let calls = std::fs::read_to_string(fake.join("calls.txt")).unwrap();
    assert!(
        !calls.contains("delete namespace inferbench-fake-2"),
        "--keep keeps it"
    );

    // A Job that never finishes: the wait ends, what the pods left is kept.
    std::fs::write(
        fake.join("job-load.json"),
        json!({"status": {"active": 3}}).to_string(),
    )
    .unwrap();
    let o = run("fake-3", &["--wait", "1s"]);
    assert_clean_failure(&o, &["job load: timed out"]);
    assert!(results.join("fake-3/run.json").is_file());
    let calls = std::fs::read_to_string(fake.join("calls.txt")).unwrap();
    assert!(
        calls.contains("delete namespace inferbench-fake-3"),
        "{calls}"
    );
}

//! Load from several workers: `load --workers N` against `inferbench serve --mock` gives
//! the requests and percentiles of one process sending the same load, `load --plan` takes
//! its share, and `inferbench merge` refuses what is not one plan.

use std::path::Path;

use serde_json::Value;

use crate::common::{assert_clean_failure, inferbench, load_json, start_serve, stderr};

fn e2e_p99(run: &Value, scenario: usize) -> f64 {
    run["scenarios"][scenario]["e2e"]["p99_ms"]
        .as_f64()
        .unwrap()
}

#[test]
fn three_workers_send_the_whole_load_and_merge_exactly() {
    let server = start_serve(&["--mock", "--mock-token-delay", "2ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let load = [
        "load",
        "--url",
        &server.url,
        "--stream",
        "--max-tokens",
        "8",
        "-c",
        "6",
        "--rate",
        "60",
        "-n",
        "180",
        // Generous: this checks that good requests add up across workers, not the timing of
        // a busy CI machine.
        "--slo",
        "ttft=5s",
        "-o",
        out,
    ];
    let single = inferbench(&[&load[..], &["--run-id", "single"]].concat());
    assert!(single.status.success(), "{}", stderr(&single));
    let o = inferbench(&[&load[..], &["--run-id", "three", "--workers", "3"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("start times spread over"),
        "{}",
        stderr(&o)
    );

    let merged = load_json(&tmp.path().join("three/run.json"));
    let alone = load_json(&tmp.path().join("single/run.json"));
    assert_eq!(merged["status"], "complete");
    for (i, name) in ["c6", "rate60-poisson"].iter().enumerate() {
        let (m, s) = (&merged["scenarios"][i], &alone["scenarios"][i]);
        assert_eq!(m["name"], *name);
        assert_eq!(m["requests"], 180, "every worker's share sent: {m}");
        assert_eq!(m["succeeded"], s["succeeded"]);
        assert_eq!(m["e2e"]["count"], 180);
        assert_eq!(m["good_requests"], 180);
        // The merged shape is the whole load: 6 users, 60 req/s.
        assert_eq!(merged["scenarios"][0]["shape"]["concurrency"], 6);
        // Same load, same server: the merged p99 is within a single run's noise (three
        // processes on a busy 2-core machine add some).
        let (pm, ps) = (e2e_p99(&merged, i), e2e_p99(&alone, i));
        assert!(
            (pm - ps).abs() <= 2.0 * ps.max(50.0),
            "{name}: merged p99 {pm} ms vs one process {ps} ms"
        );
    }
    let rate = merged["scenarios"][1]["requests_per_second"]
        .as_f64()
        .unwrap();
    assert!((30.0..90.0).contains(&rate), "rate60 achieved {rate} req/s");
    let info = &merged["merged"];
    assert_eq!(info["planned_workers"], 3);
    assert_eq!(info["workers"].as_array().unwrap().len(), 3);
    assert_eq!(info["workers"][2]["scenarios"][0]["requests"], 60);
    assert!(info["start_spread_ms"].as_f64().unwrap() < 1000.0, "{info}");
    assert!(info["missing"].as_array().unwrap().is_empty());

    // `inferbench merge` of the same worker runs gives the same figures.
    let w = |i: u32| format!("{out}/three/workers/three-w{i}");
    let again = format!("{out}/again");
    let o = inferbench(&["merge", &w(0), &w(1), &w(2), "-o", &again]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = load_json(&Path::new(&again).join("run.json"));
    for i in 0..2 {
        assert_eq!(again["scenarios"][i]["e2e"], merged["scenarios"][i]["e2e"]);
        assert_eq!(
            again["scenarios"][i]["histograms"],
            merged["scenarios"][i]["histograms"]
        );
    }
    // Compare and report take the merged run like any other.
    let o = inferbench(&["compare", &format!("{out}/single"), &format!("{out}/three")]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    let page = format!("{out}/merged.html");
    let o = inferbench(&["report", &format!("{out}/three"), "-o", &page]);
    assert!(o.status.success(), "{}", stderr(&o));
    // In a real browser: the merged header, and each worker's own rows.
    let url = format!("file://{page}");
    let dom = crate::browser::load_page(&url, 500).dom;
    assert!(
        dom.contains("3 workers of 3 planned, start times spread over"),
        "merged header"
    );
    let workers = &dom[dom
        .find(r#"id="http-workers-0""#)
        .expect("the workers table")..];
    let workers = &workers[..workers.find("</table>").unwrap()];
    assert_eq!(
        workers.matches("<tr>").count(),
        1 + 3 * 2,
        "a row per worker and scenario"
    );
    assert!(workers.contains("worker 2") && workers.contains("rate60-poisson"));
    crate::browser::screenshot(&url, "report-merged-workers.png", 1280, 2400, 500);

    // Refusals name the problem.
    let o = inferbench(&["merge", &w(0), &w(0), "-o", &format!("{out}/x")]);
    assert_clean_failure(&o, &["both worker 0"]);
    let o = inferbench(&[
        "merge",
        &w(0),
        &format!("{out}/single"),
        "-o",
        &format!("{out}/x"),
    ]);
    assert_clean_failure(&o, &["the other ran alone"]);
    let o = inferbench(&[
        "merge",
        &w(0),
        &format!("{out}/three"),
        "-o",
        &format!("{out}/x"),
    ]);
    assert_clean_failure(&o, &["already a merged run"]);
}

#[test]
fn a_worker_takes_its_share_of_a_plan_and_nothing_else() {
    let server = start_serve(&["--mock"]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plan = |id: &str, args: &[&str]| {
        let path = dir.join(format!("{id}.json"));
        let load_args = [&["--url", server.url.as_str(), "-n", "9"][..], args].concat();
        let plan = serde_json::json!({
            "plan_version": 1, "id": id, "workers": 2, "start_at_unix_s": 0.0,
            "load_args": load_args,
        });
        std::fs::write(&path, plan.to_string()).unwrap();
        path.to_string_lossy().into_owned()
    };
    let (a, b) = (plan("a", &["-c", "4"]), plan("b", &["-c", "2"]));
    let out = dir.to_str().unwrap();
    let worker = |plan: &str, index: &str| {
        inferbench(&[
            "load",
            "--plan",
            plan,
            "--worker-index",
            index,
            "-o",
            out,
            "--result-markers",
        ])
    };
    let o = worker(&a, "1");
    assert!(o.status.success(), "{}", stderr(&o));
    // Started long after the plan's time: it says by how much.
    assert!(
        stderr(&o).contains("after the plan's start time"),
        "{}",
        stderr(&o)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    let json = inferbench::results::markers::extract(&stdout).unwrap();
    let run: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        run["scenarios"][0]["name"], "c4",
        "named after the whole load"
    );
    assert_eq!(
        run["scenarios"][0]["shape"]["concurrency"], 2,
        "its share of 4 users"
    );
    assert_eq!(
        run["scenarios"][0]["requests"], 4,
        "its share of 9 requests"
    );
    assert_eq!(run["worker"]["index"], 1);
    assert!(run["worker"]["late_ms"].as_f64().unwrap() > 1e6);

    assert!(worker(&b, "0").status.success());
    let o = inferbench(&[
        "merge",
        &format!("{out}/a-w1"),
        &format!("{out}/b-w0"),
        "-o",
        &format!("{out}/m"),
    ]);
    assert_clean_failure(&o, &["different plans", "\"a\" and \"b\""]);

    // A run.json claiming billions of workers is refused, not listed.
    let forged = dir.join("forged");
    std::fs::create_dir(&forged).unwrap();
    let mut run: Value = load_json(&dir.join("a-w1/run.json"));
    run["worker"]["workers"] = serde_json::json!(4_000_000_000u64);
    std::fs::write(forged.join("run.json"), run.to_string()).unwrap();
    let o = inferbench(&[
        "merge",
        &forged.to_string_lossy(),
        "-o",
        &format!("{out}/f"),
    ]);
    assert_clean_failure(&o, &["forged", "worker.workers 4000000000"]);

    assert_clean_failure(&worker(&a, "2"), &["--worker-index 2", "indices 0 to 1"]);
    let o = inferbench(&["load", "--plan", &a, "--worker-index", "0", "-c", "3"]);
    assert_clean_failure(&o, &["-c beside --plan"]);
    let o = inferbench(&[
        "load",
        "--plan",
        &dir.join("none.json").to_string_lossy(),
        "--worker-index",
        "0",
    ]);
    assert_clean_failure(&o, &["none.json", "cannot read"]);
    std::fs::write(dir.join("junk.json"), "<html>").unwrap();
    let o = inferbench(&[
        "load",
        "--plan",
        &dir.join("junk.json").to_string_lossy(),
        "--worker-index",
        "0",
    ]);
    assert_clean_failure(&o, &["junk.json", "not a plan"]);
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "-c",
        "2",
        "--workers",
        "3",
        "-o",
        out,
    ]);
    assert_clean_failure(&o, &["-c 2 over 3 workers"]);
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--sweep",
        "--workers",
        "2",
        "-o",
        out,
    ]);
    assert_clean_failure(&o, &["--sweep"]);
}

#[test]
fn runs_written_before_exact_histograms_cannot_be_merged() {
    let golden = crate::common::repo_root().join("fixtures/golden/http");
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(golden.join("run.json"), copy.join("run.json")).unwrap();
    let g = golden.to_string_lossy();
    let o = inferbench(&[
        "merge",
        &g,
        &copy.to_string_lossy(),
        "-o",
        &tmp.path().join("m").to_string_lossy(),
    ]);
    assert_clean_failure(&o, &["no exact histograms", "run it again"]);
    let inference = crate::common::repo_root().join("fixtures/golden/inference");
    let o = inferbench(&[
        "merge",
        &inference.to_string_lossy(),
        "-o",
        &tmp.path().join("n").to_string_lossy(),
    ]);
    assert_clean_failure(&o, &["not \"http\""]);
}

#[test]
fn a_pattern_is_split_over_workers_and_merged_back_whole() {
    let server = start_serve(&["--mock", "--mock-token-delay", "1ms"]);
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--max-tokens",
        "2",
        "--pattern",
        "step",
        "--from",
        "40",
        "--to",
        "120",
        "--steps",
        "2",
        "--step-duration",
        "1s",
        "--arrival",
        "constant",
        "--workers",
        "2",
        "--run-id",
        "steps",
        "-o",
        out,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = &load_json(&tmp.path().join("steps/run.json"))["scenarios"][0];
    assert_eq!(s["name"], "step40-120x2");
    // The merged shape is the whole pattern; its windows add the workers' seconds.
    assert_eq!(s["shape"]["pattern"]["from"], 40.0);
    assert_eq!(s["shape"]["pattern"]["to"], 120.0);
    let windows = s["windows"].as_array().unwrap();
    let offered = |t: usize| windows[t]["offered"].as_f64().unwrap();
    assert!((offered(0) - 40.0).abs() <= 2.0, "{windows:?}");
    assert!((offered(1) - 120.0).abs() <= 2.0, "{windows:?}");
    assert_eq!(s["requests"], 160);
}

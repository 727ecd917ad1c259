//! `inferbench history`: runs and Criterion runs appended to an SQLite file, their series
//! printed with change points; a file that is not a history, a Criterion folder missing its
//! samples and a series too short are each said plainly.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{assert_clean_failure, inferbench, load_json, repo_root, stdout};
use crate::compare::criterion_bench;

fn add(db: &Path, source: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "history",
        "add",
        source.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = inferbench(&args);
    assert!(o.status.success(), "{}", crate::common::all_text(&o));
    stdout(&o)
}

fn show(db: &Path, extra: &[&str]) -> String {
    let mut args = vec!["history", "show", "--db", db.to_str().unwrap()];
    args.extend(extra);
    let o = inferbench(&args);
    assert!(o.status.success(), "{}", crate::common::all_text(&o));
    stdout(&o)
}

/// The committed instruction-count run with its L2 count scaled by `factor`, as `dir/NAME`.
fn instruction_run(dir: &Path, name: &str, factor: f64) -> PathBuf {
    let mut run: Value = load_json(&repo_root().join("fixtures/instructions/run.json"));
    let ir = &mut run["benchmarks"][0]["per_iteration"]["Ir"];
    *ir = (ir.as_f64().unwrap() * factor).into();
    run["run_id"] = name.into();
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("run.json"), run.to_string()).unwrap();
    path
}

#[test]
fn a_step_in_instruction_counts_is_a_change_point_at_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h/history.sqlite");
    for i in 0..8 {
        let factor = if i < 5 { 1.0 } else { 1.04 };
        let run = instruction_run(dir.path(), &format!("r{i}"), factor);
        let said = add(
            &db,
            &run,
            &["--branch", "main", "--commit", &format!("c{i}")],
        );
        assert!(
            said.contains(&format!("instructions r{i} (c{i})")),
            "{said}"
        );
    }
    let text = show(&db, &["--bench", "distance"]);
    assert!(
        text.contains("history") && text.contains("8 entries"),
        "{text}"
    );
    let counts = text
        .split("\n\n")
        .find(|block| block.contains("instructions count"))
        .unwrap_or_else(|| panic!("no count series:\n{text}"));
    assert!(counts.contains("8 points"), "{counts}");
    assert!(
        counts.contains("CHANGE at point 6 (c5 on main") && counts.contains("(+4.0%)"),
        "{counts}"
    );
    // The report draws the same series with the change ringed at its commit.
    let html = dir.path().join("history.html");
    let out = crate::common::inferbench(&[
        "report",
        "--history",
        db.to_str().unwrap(),
        "--history-bench",
        "distance",
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", crate::common::all_text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(r#"data-points="8""#), "eight runs drawn");
    assert!(
        page.contains(">+4.0%</text>") && page.contains("change at c5: +4.0%"),
        "no change ringed"
    );
    // The same step under 1%... is not a step.
    let db2 = dir.path().join("small.sqlite");
    for i in 0..8 {
        let factor = if i < 5 { 1.0 } else { 1.005 };
        add(
            &db2,
            &instruction_run(dir.path(), &format!("s{i}"), factor),
            &[],
        );
    }
    let text = show(&db2, &["--bench", "distance"]);
    assert!(!text.contains("CHANGE"), "{text}");
}

#[test]
fn criterion_runs_and_suite_runs_go_in_and_short_series_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.sqlite");
    let criterion = dir.path().join("criterion");
    criterion_bench(&criterion, "g/steady", "new", 1000.0, 0.02);
    let said = add(&db, &criterion, &[]);
    assert!(
        said.contains("criterion new") && said.contains("3 values"),
        "{said}"
    );
    add(&db, &repo_root().join("fixtures/golden/inference"), &[]);
    let text = show(&db, &[]);
    assert!(text.contains("g/steady · time p50"), "{text}");
    assert!(text.contains("inference/"), "{text}");
    assert!(
        text.contains("not enough data for change points (1 of the 6 points needed)"),
        "{text}"
    );
    let text = show(&db, &["--bench", "no-such-benchmark"]);
    assert!(text.contains("no series match --bench"), "{text}");
}

#[test]
fn files_that_are_not_histories_and_broken_criterion_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(
        &garbage,
        b"this is not a database, just text long enough to look like one",
    )
    .unwrap();
    let o = inferbench(&["history", "show", "--db", garbage.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_clean_failure(&o, &["garbage.sqlite", "not an inferbench history"]);
    let run = instruction_run(dir.path(), "r", 1.0);
    let o = inferbench(&[
        "history",
        "add",
        run.to_str().unwrap(),
        "--db",
        garbage.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["garbage.sqlite"]);

    let missing = dir.path().join("none.sqlite");
    let o = inferbench(&["history", "show", "--db", missing.to_str().unwrap()]);
    assert_clean_failure(&o, &["no history yet"]);

    // A Criterion folder whose sample.json is gone: the file is named, nothing is added.
    let criterion = dir.path().join("criterion");
    criterion_bench(&criterion, "g/a", "new", 1000.0, 0.02);
    std::fs::remove_file(criterion.join("g_a/new/sample.json")).unwrap();
    let db = dir.path().join("history.sqlite");
    let o = inferbench(&[
        "history",
        "add",
        criterion.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["sample.json"]);
    assert!(!db.exists(), "nothing is written for a refused input");

    let o = inferbench(&[
        "history",
        "show",
        "--db",
        db.to_str().unwrap(),
        "--min-effect=-1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&o, &["--min-effect"]);
}

//! `inferbench instructions` as CI runs it: the same build counted twice gives the same
//! counts and compare passes; a grown count fails; counts of another profile, or impossible
//! ones, are refused with the field named. Needs valgrind (scripts/test.sh installs it).

use std::path::Path;

use serde_json::Value;

use crate::common::{assert_clean_failure, inferbench, load_json, stderr, stdout};

/// Count the L2 kernel (the fastest workload) into `dir/id`.
fn count(dir: &Path, id: &str) -> Value {
    let out = dir.to_str().unwrap();
    let o = inferbench(&[
        "instructions",
        "--filter",
        "^distance/",
        "--no-cache-sim",
        "--time-samples",
        "2",
        "-o",
        out,
        "--run-id",
        id,
    ]);
    assert!(
        o.status.success(),
        "instructions failed (is valgrind installed?):\n{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("distance/l2/384"), "{}", stdout(&o));
    load_json(&dir.join(id).join("run.json"))
}

fn instructions_of(run: &Value) -> f64 {
    run["benchmarks"][0]["per_iteration"]["Ir"]
        .as_f64()
        .unwrap()
}

fn write(path: &Path, run: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(run).unwrap()).unwrap();
}

#[test]
fn counts_repeat_a_grown_count_fails_and_other_profiles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = count(dir.path(), "a");
    let b = count(dir.path(), "b");
    assert_eq!(a["kind"], "instructions");
    assert_eq!(a["status"], "complete");
    let (ia, ib) = (instructions_of(&a), instructions_of(&b));
    // 1,000 distances of 384 floats: hundreds of thousands of instructions, the same twice.
    assert!(ia > 100_000.0, "{ia}");
    assert!((ia - ib).abs() / ia < 1e-4, "{ia} vs {ib}");
    assert!(a["profile"]["features"].is_array() && a["profile"]["rustc"].is_string());
    let callgrind = dir
        .path()
        .join("a")
        .join(a["benchmarks"][0]["callgrind_file"].as_str().unwrap());
    assert!(callgrind.is_file(), "{}", callgrind.display());
    let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
    let o = inferbench(&["compare", pa.to_str().unwrap(), pb.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("| instructions |"), "{}", stdout(&o));

    // 3% more instructions: FAIL, exit 1.
    let mut grown = b.clone();
    grown["benchmarks"][0]["per_iteration"]["Ir"] = (ib * 1.03).into();
    let grown_path = dir.path().join("grown/run.json");
    write(&grown_path, &grown);
    let o = inferbench(&[
        "compare",
        pa.to_str().unwrap(),
        grown_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("FAIL") && stdout(&o).contains("+3.00%"),
        "{}",
        stdout(&o)
    );

    // Another compiler: refused, exit 2, naming what differs.
    let mut other = b.clone();
    other["profile"]["rustc"] = "rustc 0.0.1".into();
    let other_path = dir.path().join("other/run.json");
    write(&other_path, &other);
    let o = inferbench(&[
        "compare",
        pa.to_str().unwrap(),
        other_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&o, &["different profiles", "rustc 0.0.1"]);

    // An impossible count: refused, naming the field.
    let mut broken = b.clone();
    broken["benchmarks"][0]["per_iteration"]["Ir"] = (-5.0).into();
    let broken_path = dir.path().join("broken/run.json");
    write(&broken_path, &broken);
    let o = inferbench(&[
        "compare",
        pa.to_str().unwrap(),
        broken_path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&o, &["benchmarks[0].per_iteration.Ir"]);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let o = inferbench(&["instructions", "--filter", "nothing-is-called-this"]);
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&o, &["--filter", "distance/l2/384"]);
    let o = inferbench(&["instructions", "--jobs", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&o, &["--jobs"]);
    let dir = tempfile::tempdir().unwrap();
    let o = inferbench(&[
        "instructions",
        "--valgrind",
        "/nonexistent/valgrind",
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_clean_failure(&o, &["/nonexistent/valgrind", "apt-get install valgrind"]);
}

#[test]
fn the_list_names_every_workload_the_issue_asks_for() {
    let o = inferbench(&["instructions", "--list"]);
    assert!(o.status.success());
    let list = stdout(&o);
    for name in [
        "qmatmul/",
        "rms_norm",
        "rope",
        "softmax",
        "attention/decode",
        "decode_step/",
        "tokenizer/",
        "hnsw/search",
        "distance/l2",
    ] {
        assert!(list.contains(name), "{name} missing:\n{list}");
    }
}

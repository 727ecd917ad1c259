//! Result files byte for byte: one real run of each kind (inference, retrieval, http), made
//! by the binary and kept under fixtures/golden/KIND/ with the table it printed and a
//! comparison of the run with itself. Reading each back and writing it again must give the
//! same run.json, scenarios.csv, table and comparison: the schema and the writers did not
//! drift. (To renew them after a deliberate change, see fixtures/golden/README.md.)

use std::path::{Path, PathBuf};

use inferbench::report::{self, http::HttpRun, retrieval::RetrievalRun, RunResult};
use inferbench::results::RunFile;

use crate::common::{inferbench, repo_root, stderr, stdout};

fn golden(kind: &str) -> PathBuf {
    repo_root().join("fixtures/golden").join(kind)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A clear diff: the first line that differs, with its neighbours.
fn assert_same(what: &str, got: &str, want: &str) {
    if got == want {
        return;
    }
    let (g, w): (Vec<&str>, Vec<&str>) = (got.lines().collect(), want.lines().collect());
    let at = (0..g.len().max(w.len()))
        .find(|&i| g.get(i) != w.get(i))
        .unwrap_or(0);
    panic!(
        "{what} differs from its golden copy at line {}:\n  got:  {:?}\n  want: {:?}",
        at + 1,
        g.get(at),
        w.get(at)
    );
}

/// run.json and scenarios.csv written again from what was read, and the table rendered.
fn check<R: RunFile>(kind: &str, table: fn(&R) -> String) {
    let dir = golden(kind);
    let run_json = dir.join("run.json");
    let run = R::load(&run_json).unwrap_or_else(|e| panic!("{e:#}"));
    let json = serde_json::to_string_pretty(&run).unwrap();
    assert_same(&format!("{kind} run.json"), &json, &read(&run_json));
    assert_same(
        &format!("{kind} scenarios.csv"),
        &run.csv(),
        &read(&dir.join("scenarios.csv")),
    );
    assert_same(
        &format!("{kind} table"),
        &(table(&run) + "\n"),
        &read(&dir.join("table.txt")),
    );
    let o = inferbench(&["compare", &dir.to_string_lossy(), &dir.to_string_lossy()]);
    // An erroring run fails against itself (exit 1); anything else is a broken comparison.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    assert_same(
        &format!("{kind} compare"),
        &stdout(&o),
        &read(&dir.join("compare.txt")),
    );
}

#[test]
fn inference_results_match_their_golden_copy() {
    check::<RunResult>("inference", report::table::render);
}

#[test]
fn retrieval_results_match_their_golden_copy() {
    check::<RetrievalRun>("retrieval", report::retrieval::table);
}

#[test]
fn http_results_match_their_golden_copy() {
    check::<HttpRun>("http", report::http::table);
}

#[test]
fn http_error_results_match_their_golden_copy() {
    check::<HttpRun>("http-errors", report::http::table);
}

//! Every way a command can end maps to one exit code (README, Errors): 0 done, 1 a failure
//! or a regression, 2 bad input on the command line (and any refused comparison), 130
//! interrupted. One table, each bad flag run through the real binary, none needing a model.

use crate::common::{inferbench, stderr};

/// (arguments, exit code, what the message must name)
const CASES: &[(&[&str], i32, &str)] = &[
    // run
    (&["run", "--preset", "nope"], 2, "--preset nope"),
    (&["run", "--filter", "("], 2, "--filter"),
    (&["run", "--filter", "b999_"], 2, "matches no scenario"),
    (&["run", "--device", "tpu"], 2, "--device"),
    (&["run", "--run-id", "../up"], 2, "--run-id"),
    (&["run", "--resume", "x", "--dry-run"], 2, "--dry-run"),
    (
        &[
            "run",
            "--resume",
            "no-such-run",
            "-o",
            "/nonexistent-results",
        ],
        2,
        "--resume no-such-run",
    ),
    (&["run", "--config", "/nonexistent/my.toml"], 2, "--config"),
    (&["run", "--presets", "quick"], 2, "--presets"),
    // profile
    (&["profile", "--steps", "0"], 2, "--steps"),
    (&["profile", "--rounds", "0"], 2, "--rounds"),
    (&["profile", "--device", "tpu"], 2, "--device"),
    // retrieval
    (
        &["retrieval", "--n", "1000", "--intrinsic-dim", "x"],
        2,
        "--intrinsic-dim",
    ),
    (&["retrieval", "--n", "1000", "--ef", "0"], 2, "--ef"),
    (
        &["retrieval", "--n", "1000", "--recall-target", "2"],
        2,
        "--recall-target",
    ),
    (
        &["retrieval", "--queries-file", "q.txt"],
        2,
        "--queries-file",
    ),
    (&["retrieval", "--metric", "hamming"], 2, "hamming"),
    (
        &["retrieval", "--n", "1000", "--run-id", "../up"],
        2,
        "--run-id",
    ),
    // load
    (&["load", "--rate", "0"], 2, "--rate 0"),
    (&["load", "--backend", "generic"], 2, "--body"),
    (&["load", "--body", "{}"], 2, "--backend generic"),
    (&["load", "--slo", "ttft=fast"], 2, "ttft"),
    (
        &["load", "--sweep", "--sweep-factor", "1"],
        2,
        "--sweep-factor",
    ),
    (&["load", "-c", "0"], 2, "0"),
    (&["load", "--url", "ftp://example.invalid"], 2, "--url"),
    (
        &["load", "--prompts", "/nonexistent/p.jsonl"],
        1,
        "/nonexistent/p.jsonl",
    ),
    (
        &["load", "--dataset", "sharegpt:/nonexistent/s.json"],
        1,
        "/nonexistent/s.json",
    ),
    (
        &["load", "--pattern", "replay:/nonexistent/t.jsonl"],
        1,
        "/nonexistent/t.jsonl",
    ),
    (&["load", "--dataset", "sonnet"], 2, "--dataset sonnet"),
    (&["load", "--pattern", "wobble"], 2, "wobble"),
    (
        &["load", "--scrape-interval", "1ms"],
        2,
        "--scrape-interval",
    ),
    (&["load", "--multi-turn", "1"], 2, "--multi-turn"),
    (
        &["load", "--pattern", "soak", "--rate", "5"],
        2,
        "--pattern soak needs --duration",
    ),
    // compare and baseline
    (
        &["compare", "/nonexistent/a", "/nonexistent/b"],
        2,
        "/nonexistent/a",
    ),
    (
        &[
            "compare",
            "--baseline",
            "main",
            "--criterion-dir",
            "/nonexistent",
        ],
        2,
        "/nonexistent",
    ),
    (&["baseline", "save", "../up"], 2, "baseline name"),
    // generate
    (&["generate"], 2, "--prompt"),
    (
        &["generate", "--prompt", "hi", "--batch", "0"],
        2,
        "--batch",
    ),
    (
        &[
            "generate",
            "--prompt",
            "hi",
            "--model",
            "/nonexistent/model.gguf",
        ],
        1,
        "/nonexistent/model.gguf",
    ),
    // no such command
    (&["benchmark"], 2, "benchmark"),
];

#[test]
fn every_bad_flag_exits_with_its_documented_code() {
    let mut wrong = Vec::new();
    for (args, code, names) in CASES {
        let o = inferbench(args);
        let err = stderr(&o);
        if o.status.code() != Some(*code) || !err.contains(names) || err.contains("panicked") {
            wrong.push(format!(
                "inferbench {}: exit {:?} (want {code}), stderr:\n{err}",
                args.join(" "),
                o.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn a_good_command_exits_0() {
    let o = inferbench(&["info", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

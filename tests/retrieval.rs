//! `inferbench retrieval` as a user runs it: a small sweep end to end, the cache reused and a
//! damaged index rebuilt, comparison of two runs, real MiniLM embeddings, Ctrl-C, and every
//! bad input's error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    assert_clean_failure, inferbench, load_json, stderr, stdout, wait_for_scenarios,
};
use inferbench::retrieval::embed::{Embedder, DEFAULT_EMBEDDING_MODEL};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A small synthetic run: the arguments common to the tests.
fn small_run(cache: &Path, out: &Path, id: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "retrieval",
        "--n",
        "4000",
        "--dim",
        "32",
        "--m",
        "8",
        "--ef-construction",
        "64",
        "--ef",
        "8,64",
        "--batch-runs",
        "2",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--run-id",
        id,
    ];
    if !extra.contains(&"--queries") {
        args.extend(["--queries", "100"]);
    }
    args.extend_from_slice(extra);
    inferbench(&args)
}

fn index_dir(cache: &Path) -> PathBuf {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("index-"))
        })
        .expect("an index in the cache")
}

#[test]
fn a_sweep_writes_results_reuses_its_cache_and_rebuilds_a_damaged_index() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("results"));
    let o = small_run(&cache, &out, "first", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("ground truth: top-10 of 100 queries"), "{err}");
    assert!(err.contains("index: built 4000 vectors"), "{err}");
    let table = stdout(&o);
    assert!(
        table.contains("| ef ") && table.contains("recall@k"),
        "{table}"
    );
    assert!(table.contains("headline:"), "{table}");

    let run = load_json(&out.join("first/run.json"));
    assert_eq!(run["kind"], "retrieval");
    assert_eq!(run["status"], "complete");
    assert_eq!(run["dataset"]["name"], "clustered-4000x32");
    assert_eq!(run["dataset"]["vectors"], 4000);
    assert_eq!(run["index"]["cached"], false);
    assert!(run["index"]["build_s"].as_f64().unwrap() > 0.0);
    assert!(run["index"]["library"]
        .as_str()
        .unwrap()
        .starts_with("inferbench-graph, saved as hnsw_rs"));
    let scenarios = run["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    let (low, high) = (&scenarios[0], &scenarios[1]);
    assert_eq!(high["name"], "ef64");
    assert_eq!(high["latency"]["count"], 100);
    assert!(high["recall"].as_f64().unwrap() >= low["recall"].as_f64().unwrap());
    assert_eq!(high["batch_qps"]["runs"].as_array().unwrap().len(), 2);
    let csv = std::fs::read_to_string(out.join("first/scenarios.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("dataset,vectors,dim,metric"), "{csv}");

    // Second run: everything from the cache, same answers.
    let o = small_run(&cache, &out, "second", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("ground truth: reused"), "{err}");
    assert!(err.contains("index: reused"), "{err}");
    let again = load_json(&out.join("second/run.json"));
    assert_eq!(again["index"]["cached"], true);
    assert_eq!(again["ground_truth"]["cached"], true);
    assert_eq!(again["scenarios"][1]["recall"], high["recall"]);

    // Another query count reuses the index (its base vectors are the same).
    let o = small_run(&cache, &out, "fewer-queries", &["--queries", "50"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("index: reused"), "{}", stderr(&o));

    // The two runs compare as benchmarks of the same names.
    let o = inferbench(&[
        "compare",
        out.join("first").to_str().unwrap(),
        out.join("second").to_str().unwrap(),
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("retrieval/clustered-4000x32/ef64"),
        "{}",
        stdout(&o)
    );

    // A truncated index file is detected, reported and rebuilt.
    let data = index_dir(&cache).join("index.hnsw.data");
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() - 100]).unwrap();
    let o = small_run(&cache, &out, "third", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("is unusable") && err.contains("rebuilding"),
        "{err}"
    );
    assert!(err.contains("index: built 4000 vectors"), "{err}");
    let third = load_json(&out.join("third/run.json"));
    assert!(third["index"]["cache_note"]
        .as_str()
        .unwrap()
        .contains("truncated"));
}

#[test]
fn minilm_puts_similar_sentences_closer_than_unrelated_ones() {
    let device = candle_core::Device::Cpu;
    let embedder = Embedder::load(DEFAULT_EMBEDDING_MODEL, &device)
        .unwrap_or_else(|e| panic!("{e:#} (run scripts/fetch-models.sh)"));
    assert_eq!(embedder.dim, 384);
    let set = embedder
        .embed(&[
            "A cat is sleeping on the sofa.",
            "A kitten naps on the couch.",
            "The central bank raised interest rates.",
            "Stock markets fell after the rate rise.",
        ])
        .unwrap();
    let dot =
        |a: usize, b: usize| -> f32 { set.row(a).iter().zip(set.row(b)).map(|(x, y)| x * y).sum() };
    for i in 0..4 {
        assert!((dot(i, i) - 1.0).abs() < 1e-4, "row {i} is not unit length");
    }
    assert!(
        dot(0, 1) > dot(0, 2) + 0.3,
        "{} vs {}",
        dot(0, 1),
        dot(0, 2)
    );
    assert!(
        dot(2, 3) > dot(1, 3) + 0.2,
        "{} vs {}",
        dot(2, 3),
        dot(1, 3)
    );
    // Batching pads the shorter sentences; padding must not change an embedding.
    let alone = embedder.embed(&["A kitten naps on the couch."]).unwrap();
    let drift: f32 = alone
        .row(0)
        .iter()
        .zip(set.row(1))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(drift < 1e-4, "{drift}");
}

#[test]
fn text_passages_are_embedded_indexed_and_queried_by_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let o = inferbench(&[
        "retrieval",
        "--text",
        &fixture("passages.txt"),
        "--queries-file",
        &fixture("passage-queries.txt"),
        "-k",
        "3",
        "--ef",
        "4,32",
        "--batch-runs",
        "1",
        "--warmup-queries",
        "2",
        "--cache-dir",
        dir.path().join("cache").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--run-id",
        "text",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = load_json(&out.join("text/run.json"));
    assert_eq!(run["dataset"]["vectors"], 48);
    assert_eq!(run["dataset"]["queries"], 8);
    assert_eq!(run["dataset"]["dim"], 384);
    assert_eq!(run["dataset"]["metric"], "cosine");
    // 48 passages: a wide beam finds the exact neighbours.
    assert_eq!(run["scenarios"][1]["recall"], 1.0);
}

#[test]
fn ctrl_c_keeps_the_ef_values_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("results"));
    // Prepare the cache first so the interrupted run goes straight to the sweep.
    assert!(small_run(&cache, &out, "warm", &[]).status.success());
    let json = out.join("stop/run.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args([
            "retrieval",
            "--n",
            "4000",
            "--dim",
            "32",
            "--queries",
            "100",
        ])
        .args(["--m", "8", "--ef-construction", "64", "--batch-runs", "2"])
        .args(["--ef", "8,2000,2000,2000,2000,2000,2000,2000,2000,2000"])
        .args(["--cache-dir", cache.to_str().unwrap()])
        .args(["--output", out.to_str().unwrap(), "--run-id", "stop"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_scenarios(&json, 1, &mut child);
    crate::common::interrupt(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let run = load_json(&json);
    assert_eq!(run["status"], "interrupted");
    let measured = run["scenarios"].as_array().unwrap().len();
    assert!((1..10).contains(&measured), "{measured}");
    assert!(stdout(&o).contains("interrupted:"), "{}", stdout(&o));
}

#[test]
fn ctrl_c_during_the_build_stops_it_and_leaves_nothing_half_made() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, out) = (dir.path().join("cache"), dir.path().join("results"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args([
            "retrieval",
            "--n",
            "300000",
            "--dim",
            "16",
            "--queries",
            "10",
        ])
        .args(["--cache-dir", cache.to_str().unwrap()])
        .args(["--output", out.to_str().unwrap(), "--run-id", "cut"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The ground truth is cached just before the build starts.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_dir(&cache).is_ok_and(|mut d| d.next().is_some()) {
        assert!(child.try_wait().unwrap().is_none(), "exited early");
        assert!(Instant::now() < deadline, "no ground truth in time");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let asked = Instant::now();
    crate::common::interrupt(&child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the build went on"
    );
    assert!(stderr(&o).contains("nothing measured"), "{}", stderr(&o));
    assert!(!out.join("cut").exists(), "an empty run folder was left");
    let index_left = std::fs::read_dir(&cache).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("index-")
    });
    assert!(!index_left, "a half-built index was cached");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let vectors: String = (0..20).map(|i| format!("{i} 1 2\n")).collect();
    let base = write("base.txt", &vectors);
    let q2 = write("q2.txt", "1 2\n");
    let empty = write("empty.txt", "");
    let words = write("words.txt", "1 2 3\n4 x 6\n");
    let blank_text = write("blank.txt", "\n   \n");
    let huge: String = (0..20).map(|i| format!("{i} 3e19 1\n")).collect();
    let huge = write("huge.txt", &huge);
    let zeros: String = (0..20)
        .map(|i| {
            if i == 7 {
                "0 0 0\n".to_string()
            } else {
                format!("{i} 1 2\n")
            }
        })
        .collect();
    let zeros = write("zeros.txt", &zeros);
    let missing = dir.path().join("none.txt").display().to_string();
    let cache = dir.path().join("cache").display().to_string();
    let out = dir.path().join("results").display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["retrieval", "--cache-dir", &cache, "--output", &out];
        all.extend_from_slice(args);
        inferbench(&all)
    };
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--vectors", &base, "--queries-file", &q2],
            vec!["dimension mismatch", "q2.txt", "dimension 2", "base.txt"],
        ),
        (
            vec!["--vectors", &base, "--queries", "5", "-k", "50"],
            vec!["k = 50 is larger than the 15 vectors"],
        ),
        (vec!["--vectors", &empty], vec!["empty.txt", "empty"]),
        (
            vec!["--vectors", &words],
            vec!["words.txt", "line 2, value 2", "not a finite number"],
        ),
        (
            vec!["--text", &blank_text],
            vec!["blank.txt", "no passages"],
        ),
        (
            vec!["--vectors", &base, "--queries", "20"],
            vec!["too few to hold out 20"],
        ),
        (
            vec!["--n", "100000000000"],
            vec!["need about", "GiB", "available", "lower --n"],
        ),
        (vec!["--n", "100", "-k", "101"], vec!["k = 101 is larger"]),
        (vec!["--ef", "0,16"], vec!["ef must be at least 1"]),
        (vec!["--m", "1"], vec!["M must be between 2 and 255"]),
        (
            vec!["--spread=-1"],
            vec!["spread must be a positive number"],
        ),
        (vec!["--recall-target", "1.5"], vec!["between 0 and 1"]),
        (
            vec!["--queries-file", &q2],
            vec!["--queries-file goes with --vectors or --text"],
        ),
        (vec!["--vectors", &missing], vec!["none.txt", "cannot read"]),
        (
            vec!["--vectors", &huge, "--queries", "5"],
            vec!["huge.txt", "squared length", "overflow"],
        ),
        (
            vec![
                "--vectors",
                &zeros,
                "--queries",
                "5",
                "--metric",
                "cosine",
                "--seed",
                "1",
            ],
            vec!["zeros.txt", "all zeros", "cosine"],
        ),
    ];
    for (args, expected) in cases {
        let o = run(&args);
        assert_clean_failure(&o, &expected);
    }
}

/// `--export-data` writes what peers read; reading it back (`.fvecs` vectors and queries,
/// `.ivecs` ground truth) runs the same benchmark on the same data, and a damaged file is
/// a clear error naming it.
#[test]
fn exported_fvecs_run_again_and_damaged_ones_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (cache, out, data) = (
        tmp.path().join("c"),
        tmp.path().join("r"),
        tmp.path().join("d"),
    );
    let o = small_run(
        &cache,
        &out,
        "first",
        &["--export-data", data.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let first = load_json(&out.join("first/run.json"));
    // The default search is the flat layout, and it says what it found in the graph.
    assert_eq!(first["index"]["search"], "flat");
    assert!(first["index"]["layout"]["bytes"].as_u64().unwrap() > 4000 * 32 * 4);
    let sizes: Vec<u64> = ["base.fvecs", "query.fvecs", "groundtruth.ivecs"]
        .iter()
        .map(|f| std::fs::metadata(data.join(f)).unwrap().len())
        .collect();
    assert_eq!(
        sizes,
        [4000 * (4 + 32 * 4), 100 * (4 + 32 * 4), 100 * (4 + 10 * 4)]
    );
    let file = |f: &str| data.join(f).to_string_lossy().into_owned();
    let again = |id: &str, truth: &str| {
        let base = file("base.fvecs");
        let queries = file("query.fvecs");
        let args = [
            "--vectors",
            &base,
            "--queries-file",
            &queries,
            "--ground-truth",
            truth,
        ];
        small_run(&cache, &out, id, &args)
    };
    let o = again("second", &file("groundtruth.ivecs"));
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (
        load_json(&out.join("first/run.json")),
        load_json(&out.join("second/run.json")),
    );
    assert_eq!(b["dataset"]["vectors"], 4000);
    assert_eq!(b["dataset"]["queries"], 100);
    assert!(b["ground_truth"]["method"]
        .as_str()
        .unwrap()
        .contains("groundtruth.ivecs"));
    // Same data, same truth: the top ef finds (nearly) everything on both runs.
    let recall = |r: &serde_json::Value| r["scenarios"][1]["recall"].as_f64().unwrap();
    assert!(
        (recall(&a) - recall(&b)).abs() < 0.02,
        "{} vs {}",
        recall(&a),
        recall(&b)
    );

    let bytes = std::fs::read(data.join("groundtruth.ivecs")).unwrap();
    let cut = tmp.path().join("cut.ivecs");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    assert_clean_failure(
        &again("cut", &cut.to_string_lossy()),
        &["cut.ivecs", "truncated"],
    );
    let mut wild = bytes.clone();
    wild[4..8].copy_from_slice(&9999i32.to_le_bytes());
    let wild_path = tmp.path().join("wild.ivecs");
    std::fs::write(&wild_path, &wild).unwrap();
    assert_clean_failure(
        &again("wild", &wild_path.to_string_lossy()),
        &["wild.ivecs", "id 9999"],
    );
    let o = inferbench(&["retrieval", "--ground-truth", &file("groundtruth.ivecs")]);
    assert_clean_failure(&o, &["--queries-file"]);

    // The same data in ann-benchmarks' layout runs to the same recall.
    let hdf5 = file("ann.hdf5");
    let o = small_run(&cache, &out, "hdf5", &["--hdf5", &hdf5]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = load_json(&out.join("hdf5/run.json"));
    assert_eq!(c["dataset"]["queries"], 100);
    assert!(
        (recall(&a) - recall(&c)).abs() < 0.02,
        "{} vs {}",
        recall(&a),
        recall(&c)
    );
}

/// An ann-benchmarks file (written by h5py, as the real data sets are) runs with its own
/// neighbours as ground truth and its distance attribute as the metric; grading it with
/// another metric, or a damaged file, is a clear error.
#[test]
fn ann_benchmarks_hdf5_files_run_with_their_own_truth_and_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let file = fixture("retrieval/ann-euclidean-500x16.hdf5");
    let run = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "retrieval",
            "--hdf5",
            &file,
            "--ef",
            "10,64",
            "--batch-runs",
            "1",
            "--no-cache",
            "--output",
            out.to_str().unwrap(),
            "--run-id",
            id,
        ];
        args.extend_from_slice(extra);
        inferbench(&args)
    };
    let o = run("flat", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = load_json(&out.join("flat/run.json"));
    assert_eq!(r["dataset"]["name"], "hdf5:ann-euclidean-500x16.hdf5");
    assert_eq!(r["dataset"]["metric"], "l2");
    assert_eq!(
        (
            r["dataset"]["vectors"].as_u64(),
            r["dataset"]["queries"].as_u64()
        ),
        (Some(500), Some(20))
    );
    assert!(r["ground_truth"]["method"]
        .as_str()
        .unwrap()
        .contains("`neighbors`"));
    assert_eq!(r["index"]["search"], "flat");
    assert_eq!(r["index"]["layout"]["unreachable_nodes"], 0);
    let top = r["scenarios"][1]["recall"].as_f64().unwrap();
    assert!(top >= 0.99, "recall {top} at ef 64 on 500 points");

    // hnsw_rs's own search over the same data finds the same neighbours at this size.
    let o = run("own", &["--search", "hnsw_rs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let own = load_json(&out.join("own/run.json"));
    assert_eq!(own["index"]["search"], "hnsw_rs");
    assert!(own["index"].get("layout").is_none());
    assert!((own["scenarios"][1]["recall"].as_f64().unwrap() - top).abs() < 0.02);
    // So does a graph hnsw_rs built itself.
    let o = run("hnsw_rs-build", &["--build", "hnsw_rs"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let theirs = load_json(&out.join("hnsw_rs-build/run.json"));
    assert!(theirs["index"]["library"]
        .as_str()
        .unwrap()
        .starts_with("hnsw_rs"));
    assert!((theirs["scenarios"][1]["recall"].as_f64().unwrap() - top).abs() < 0.02);

    assert_clean_failure(
        &run("cosine", &["--metric", "cosine"]),
        &["ann-euclidean-500x16.hdf5", "euclidean", "--metric cosine"],
    );
    let bytes = std::fs::read(&file).unwrap();
    let cut = tmp.path().join("cut.hdf5");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = inferbench(&["retrieval", "--hdf5", cut.to_str().unwrap(), "--no-cache"]);
    assert_clean_failure(&o, &["cut.hdf5", "truncated"]);
    let o = inferbench(&["retrieval", "--hdf5", &file, "--vectors", &file]);
    assert_clean_failure(&o, &["--vectors"]);
}

//! Mutation fuzzing of every parser of untrusted input we own, for FUZZ_SECONDS each (5 by
//! default; scripts/test.sh, and so CI, runs 60): the GGUF header path (our scan, candle's
//! reader, the metadata and shape checks, the weights), the SSE parser, the prompts reader,
//! the config loader, the result-file loader and the ann-benchmarks HDF5 reader. Each starts
//! from real inputs and mutates them (flipped, inserted, deleted, duplicated and spliced
//! bytes, boundary numbers); a panic, or one input taking over 5 s, is a failure, kept under
//! target/fuzz-failures/.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::repo_root;

/// Most time one input may take: a parser that hangs on some input is a finding too.
const SLOW: Duration = Duration::from_secs(5);

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(seconds)
}

/// One mutation of `input`, sometimes spliced with another seed.
fn mutate(rng: &mut StdRng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let at = if b.is_empty() {
            0
        } else {
            rng.random_range(0..b.len())
        };
        match rng.random_range(0..9) {
            0 if !b.is_empty() => b[at] ^= 1 << rng.random_range(0..8),
            1 if !b.is_empty() => b[at] = rng.random(),
            2 => {
                let n = rng.random_range(1..=8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(at..at, bytes);
            }
            3 if !b.is_empty() => {
                let end = (at + rng.random_range(1..=64)).min(b.len());
                b.drain(at..end);
            }
            4 if !b.is_empty() => {
                let end = (at + rng.random_range(1..=64)).min(b.len());
                let copy = b[at..end].to_vec();
                let to = rng.random_range(0..=b.len());
                b.splice(to..to, copy);
            }
            5 if b.len() >= 8 => {
                // A boundary number over 1, 2, 4 or 8 bytes: what headers' counts are made of.
                let width = [1, 2, 4, 8][rng.random_range(0..4)];
                let at = rng.random_range(0..=b.len() - width);
                let value: u64 =
                    [0, 1, u64::MAX, 1 << 31, 1 << 63, 0x7fff_ffff][rng.random_range(0..6)];
                b[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
            }
            6 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                let cut = rng.random_range(0..=other.len());
                b.truncate(at);
                b.extend_from_slice(&other[cut..]);
            }
            7 | 8 => {
                // The bytes just after a name (a GGUF key and its type, a JSON field): where
                // a file keeps the numbers other code trusts.
                let ends: Vec<usize> = b
                    .windows(7)
                    .enumerate()
                    .filter(|(_, w)| {
                        w[..6]
                            .iter()
                            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'_')
                            && !w[6].is_ascii_alphanumeric()
                    })
                    .map(|(i, _)| i + 6)
                    .collect();
                if let Some(&end) = ends.get(rng.random_range(0..ends.len().max(1))) {
                    let at = end + [0, 4][rng.random_range(0..2)];
                    let width = [4, 8][rng.random_range(0..2)];
                    let value: u64 = [0, 1, 3, u64::MAX, 1 << 40][rng.random_range(0..5)];
                    if at + width <= b.len() {
                        b[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
                    }
                }
            }
            _ => b.truncate(at),
        }
    }
    b
}

struct Report {
    name: &'static str,
    runs: u64,
    failures: Vec<String>,
}

/// Fuzz `parse` for the budget from `seeds`; `parse` may return anything, but must not
/// panic or hang.
fn fuzz(name: &'static str, seeds: Vec<Vec<u8>>, parse: impl Fn(&[u8])) -> Report {
    let mut rng = StdRng::seed_from_u64(name.len() as u64 * 7919);
    let (budget, started) = (budget(), Instant::now());
    let mut report = Report {
        name,
        runs: 0,
        failures: Vec::new(),
    };
    for seed in &seeds {
        parse(seed); // the seeds themselves must parse without a panic too
    }
    while started.elapsed() < budget && report.failures.len() < 5 {
        let base = &seeds[rng.random_range(0..seeds.len())];
        let input = mutate(&mut rng, base, &seeds);
        let one = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&input)));
        report.runs += 1;
        let problem = match outcome {
            Err(panic) => Some(format!(
                "panic: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
            Ok(()) if one.elapsed() > SLOW => Some(format!("took {:?}", one.elapsed())),
            Ok(()) => None,
        };
        if let Some(problem) = problem {
            let dir = repo_root().join("target/fuzz-failures").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{}.bin", report.failures.len()));
            std::fs::write(&file, &input).unwrap();
            report
                .failures
                .push(format!("{problem} ({})", file.display()));
        }
    }
    report
}

/// A file the parser reads by path, rewritten for each input.
fn scratch(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_parser_of_untrusted_input_survives_mutated_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    use crate::hostile_gguf::{tiny_gguf, Breakage};
    let aligned = Breakage {
        metadata: vec![(
            "general.alignment",
            candle_core::quantized::gguf_file::Value::U32(32),
        )],
        ..Default::default()
    };
    let gguf_seeds = vec![
        read(tiny_gguf(&d, "seed.gguf", Breakage::default())),
        read(tiny_gguf(&d, "aligned.gguf", aligned)),
    ];
    let golden = |kind: &str| {
        read(
            repo_root()
                .join("fixtures/golden")
                .join(kind)
                .join("run.json"),
        )
    };
    let config_seeds: Vec<Vec<u8>> = ["quick", "full", "production"]
        .iter()
        .map(|p| read(repo_root().join(format!("fixtures/presets/{p}.toml"))))
        .chain([read(repo_root().join("fixtures/golden/tiny.toml"))])
        .collect();
    let sse_seed = b"data: {\"choices\":[{\"text\":\"Hi\"}]}\n\n: keep-alive\n\ndata: {\"choices\":[{\"text\":\" there\"}],\"usage\":{\"completion_tokens\":2}}\r\n\r\nevent: message\nid: 7\nretry: 10\ndata: [DONE]\n\n".to_vec();

    let reports = std::thread::scope(|s| {
        let d = &d;
        let jobs = vec![
            s.spawn(move || {
                let path = scratch(d, "fuzz.gguf");
                fuzz("gguf", gguf_seeds, |b| {
                    std::fs::write(&path, b).unwrap();
                    let _ = inferbench::model::gguf::load(
                        &path,
                        &candle_core::Device::Cpu,
                        None,
                        None,
                        0,
                    );
                })
            }),
            s.spawn(move || {
                fuzz("sse", vec![sse_seed], |b| {
                    let mut parser = inferbench::http::sse::SseParser::new();
                    for chunk in b.chunks(7) {
                        if parser.push(chunk).is_err() {
                            return;
                        }
                    }
                    let _ = parser.finish();
                })
            }),
            s.spawn(move || {
                let path = scratch(d, "prompts.jsonl");
                let seed = read(repo_root().join("fixtures/prompts.jsonl"));
                fuzz("prompts", vec![seed], |b| {
                    std::fs::write(&path, b).unwrap();
                    let _ = inferbench::workload::prompts::read_jsonl(&path, 64, false);
                })
            }),
            s.spawn(move || {
                let path = scratch(d, "config.toml");
                fuzz("config", config_seeds, |b| {
                    std::fs::write(&path, b).unwrap();
                    let _ = inferbench::config::load_file(&path);
                })
            }),
            s.spawn(move || {
                let path = scratch(d, "ann.hdf5");
                let seed = read(repo_root().join("fixtures/retrieval/ann-euclidean-500x16.hdf5"));
                fuzz("hdf5", vec![seed], |b| {
                    std::fs::write(&path, b).unwrap();
                    let _ = inferbench::retrieval::hdf5::distance_attribute(&path);
                    let _ = inferbench::retrieval::hdf5::read(&path);
                })
            }),
            s.spawn(move || {
                use inferbench::results::RunFile;
                let path = scratch(d, "run.json");
                let seeds = ["inference", "retrieval", "http", "http-errors"]
                    .map(golden)
                    .to_vec();
                fuzz("results", seeds, |b| {
                    std::fs::write(&path, b).unwrap();
                    let _ = inferbench::regress::suite::load(&path);
                    let _ = inferbench::report::RunResult::load(&path);
                })
            }),
        ];
        jobs.into_iter()
            .map(|j| j.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut failed = Vec::new();
    for r in &reports {
        eprintln!(
            "fuzz {}: {} inputs in {:?}, {} failures",
            r.name,
            r.runs,
            budget(),
            r.failures.len()
        );
        for f in &r.failures {
            failed.push(format!("{}: {f}", r.name));
        }
        assert!(r.runs > 0, "{} ran no input", r.name);
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

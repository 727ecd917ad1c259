//! Shared by the integration tests: the real default model from the Hugging Face cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use inferbench::model::{self, LoadOptions, LoadedModel};

/// Load the default SmolLM2 GGUF through the hub-cache path, on CPU, as the CLI does.
pub fn load_smollm() -> LoadedModel {
    load_smollm_with(model::Repack::Auto)
}

/// The same, with its weights repacked (or dequantised for float reference numerics).
pub fn load_smollm_with(repack: model::Repack) -> LoadedModel {
    let options = LoadOptions {
        repack,
        ..LoadOptions::default()
    };
    match model::load(&options, &candle_core::Device::Cpu) {
        Ok(m) => m,
        Err(e) => panic!("{e:#}\n(run scripts/fetch-models.sh first)"),
    }
}

/// The cached SmolLM2 GGUF file itself.
pub fn smollm_gguf() -> PathBuf {
    let files = model::source::resolve(&model::ModelRef::default(), model::Need::Weights)
        .expect("default model in the hub cache (run scripts/fetch-models.sh)");
    files.main_path().to_path_buf()
}

/// The cached all-MiniLM-L6-v2 tokenizer.json (another model's tokenizer).
pub fn minilm_tokenizer() -> PathBuf {
    let cache = hf_hub::Cache::from_env();
    cache
        .model("sentence-transformers/all-MiniLM-L6-v2".into())
        .get("tokenizer.json")
        .expect("all-MiniLM-L6-v2 in the hub cache (run scripts/fetch-models.sh)")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run the inferbench binary with these arguments, to completion.
pub fn inferbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args(args)
        .output()
        .expect("run inferbench")
}

/// (stdout, stderr) as text.
pub fn text(o: &Output) -> (String, String) {
    (stdout(o), stderr(o))
}

/// stdout then stderr, as one text.
pub fn all_text(o: &Output) -> String {
    stdout(o) + &stderr(o)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The cells of a scenarios.csv (no quoted commas in the columns read) by column name: one
/// map per row.
pub fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    lines
        .map(|row| {
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{row}");
            header
                .iter()
                .map(|h| h.to_string())
                .zip(cells.iter().map(|c| c.to_string()))
                .collect()
        })
        .collect()
}

/// A failure must be an error message naming the problem and a non-zero exit, never a panic.
pub fn assert_clean_failure(o: &Output, expected: &[&str]) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure:\n{err}\n{}",
        stdout(o)
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    for e in expected {
        assert!(err.contains(e), "stderr lacks {e:?}:\n{err}");
    }
}

/// Wait until the run's JSON lists `n` finished scenarios.
pub fn wait_for_scenarios(path: &Path, n: usize, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                if v["scenarios"].as_array().is_some_and(|s| s.len() >= n) {
                    return;
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("inferbench exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no scenario finished in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-C, as a terminal sends it: SIGINT to the child.
pub fn interrupt(child: &std::process::Child) {
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -INT {} failed", child.id());
}

/// GET `url` (http://host:port/path) over a plain socket: (status, whole answer).
pub fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    (answer[9..12].parse().expect("an HTTP status"), answer)
}

/// `inferbench serve` on a free port; dropped, it is killed.
pub struct Server {
    pub child: std::process::Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_serve(extra: &[&str]) -> Server {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args(["serve", "--port", "0"])
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let url = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("listening on ") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, url }
}

//! Records what the binary was built from, for every result it writes: the git commit and the
//! versions of the crates that do the measured work (from Cargo.lock).

use std::process::Command;

/// Crates whose versions change what a benchmark measures.
const MEASURED_CRATES: &[&str] = &[
    "candle-core",
    "candle-nn",
    "candle-transformers",
    "tokenizers",
    "hf-hub",
    "cudarc",
    "nvml-wrapper",
    "hnsw_rs",
    "criterion",
];

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    for git_file in [".git/HEAD", ".git/index", ".git/refs/heads"] {
        if std::path::Path::new(git_file).exists() {
            println!("cargo:rerun-if-changed={git_file}");
        }
    }
    println!("cargo:rustc-env=INFERBENCH_GIT_COMMIT={}", git_commit());
    println!(
        "cargo:rustc-env=INFERBENCH_CRATE_VERSIONS={}",
        crate_versions()
    );
    // Instruction counts are comparable only between builds of one compiler.
    println!(
        "cargo:rustc-env=INFERBENCH_RUSTC_VERSION={}",
        rustc_version()
    );
    // A CUDA build against the PyPI toolchain (scripts/cuda-toolchain.sh) finds its cuBLAS,
    // cuRAND and NVRTC libraries at run time without LD_LIBRARY_PATH.
    println!("cargo:rerun-if-env-changed=INFERBENCH_CUDA_RPATH");
    if let (Some(_), Ok(dir)) = (
        std::env::var_os("CARGO_FEATURE_CUDA"),
        std::env::var("INFERBENCH_CUDA_RPATH"),
    ) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}

fn rustc_version() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git_commit() -> String {
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        _ => "unknown".into(),
    }
}

/// "candle-core=0.11.0;tokenizers=0.22.1": read from Cargo.lock's [[package]] entries.
fn crate_versions() -> String {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut found = Vec::new();
    let mut name: Option<&str> = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"'));
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if MEASURED_CRATES.contains(&n) {
                found.push(format!("{n}={}", v.trim_matches('"')));
            }
        }
    }
    found.join(";")
}

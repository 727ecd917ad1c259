//! The build each machine gets: `scripts/quickstart.sh` builds with CUDA where an NVIDIA GPU
//! is visible and on the CPU elsewhere, and says why. Tested with fake `nvidia-smi` programs
//! on a PATH that holds nothing else of the machine's NVIDIA tools, a fake
//! /proc/driver/nvidia and no /usr/local/cuda, so the result is the same on a GPU machine as
//! here.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::{repo_root, text};

/// What nvidia-smi answers (its output and exit code), or no nvidia-smi at all.
enum Smi<'a> {
    Absent,
    Says(&'a str, i32),
}

/// A PATH of the tools the scripts use, plus the fake nvidia-smi.
fn fake_path(dir: &Path, smi: &Smi) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "bash", "env", "cut", "sed", "tr", "grep", "head", "timeout", "dirname", "cat",
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
    }
    if let Smi::Says(out, code) = smi {
        let script = bin.join("nvidia-smi");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ncat <<'EOF'\n{out}\nEOF\nexit {code}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin.display().to_string()
}

/// Run a script of the repository with the fake machine; (exit code, stdout, stderr).
fn on_fake_machine(script: &str, smi: Smi, env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = fake_path(dir.path(), &smi);
    let o = Command::new(repo_root().join(script))
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("INFERBENCH_PLAN_ONLY", "1")
        .env("INFERBENCH_PROC_NVIDIA", dir.path().join("no-driver"))
        .env("INFERBENCH_SYSTEM_CUDA", dir.path().join("no-cuda"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    (o.status.code().unwrap_or(-1), out, err)
}

const RTX_4090: &str = "NVIDIA GeForce RTX 4090, 8.9, 550.54.14";
const TWO_H100: &str =
    "NVIDIA H100 80GB HBM3, 9.0, 535.104.05\nNVIDIA H100 80GB HBM3, 9.0, 535.104.05";
const NO_DRIVER: &str = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA \
driver. Make sure that the latest NVIDIA driver is installed and running.";

#[test]
fn quickstart_builds_for_cuda_where_a_gpu_is_and_for_the_cpu_elsewhere() {
    let (code, plan, why) = on_fake_machine("scripts/quickstart.sh", Smi::Says(RTX_4090, 0), &[]);
    assert_eq!(code, 0, "{why}");
    assert!(
        why.contains(
            "build: cuda (NVIDIA GeForce RTX 4090, compute capability 8.9, driver 550.54.14, nvcc from"
        ),
        "{why}"
    );
    assert!(
        plan.contains("cargo build --release --quiet --features cuda"),
        "{plan}"
    );
    assert!(
        plan.contains("run --preset quick --report --device cuda"),
        "{plan}"
    );
    assert!(plan.contains("cuda-toolchain.sh"), "no nvcc here: {plan}");

    for (smi, reason) in [
        (Smi::Absent, "build: cpu (no NVIDIA driver found)"),
        (
            Smi::Says(NO_DRIVER, 9),
            "build: cpu (nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate",
        ),
        (
            Smi::Says("Field \"compute_cap\" is not a valid field to query.", 2),
            "build: cpu (nvidia-smi failed: Field \"compute_cap\"",
        ),
    ] {
        let (code, plan, why) = on_fake_machine("scripts/quickstart.sh", smi, &[]);
        assert_eq!(code, 0, "{why}");
        assert!(why.contains(reason), "{why}");
        assert!(!plan.contains("cuda"), "{plan}");
        // The CPU build keeps --device auto, whose reason says there is no CUDA.
        assert!(plan.contains("run --preset quick --report\n"), "{plan}");
    }
}

#[test]
fn the_plan_sets_the_compute_capability_of_the_first_gpu() {
    for (smi, cap) in [(RTX_4090, "89"), (TWO_H100, "90")] {
        let (code, env, why) = on_fake_machine("scripts/build-plan.sh", Smi::Says(smi, 0), &[]);
        assert_eq!(code, 0, "{why}");
        assert!(env.contains("BUILD=cuda"), "{env}");
        assert!(
            env.contains(&format!("export CUDA_COMPUTE_CAP={cap}")),
            "{env}"
        );
    }
    // A compute capability given by the user wins.
    let (_, env, _) = on_fake_machine(
        "scripts/build-plan.sh",
        Smi::Says(RTX_4090, 0),
        &[("CUDA_COMPUTE_CAP", "86")],
    );
    assert!(env.contains("export CUDA_COMPUTE_CAP=86"), "{env}");
}

#[test]
fn inferbench_build_overrides_the_choice_and_a_bad_value_is_refused() {
    let (code, plan, why) = on_fake_machine(
        "scripts/quickstart.sh",
        Smi::Says(RTX_4090, 0),
        &[("INFERBENCH_BUILD", "cpu")],
    );
    assert_eq!(code, 0, "{why}");
    assert!(why.contains("build: cpu (INFERBENCH_BUILD=cpu)"), "{why}");
    assert!(!plan.contains("--features cuda"), "{plan}");

    let (code, _, why) = on_fake_machine(
        "scripts/quickstart.sh",
        Smi::Absent,
        &[("INFERBENCH_BUILD", "gpu")],
    );
    assert_eq!(code, 2, "{why}");
    assert!(
        why.contains("INFERBENCH_BUILD=gpu: expected cpu or cuda"),
        "{why}"
    );

    // cuda without any GPU to say what to compile for: the user must say it.
    let (code, _, why) = on_fake_machine(
        "scripts/quickstart.sh",
        Smi::Absent,
        &[("INFERBENCH_BUILD", "cuda")],
    );
    assert_eq!(code, 2, "{why}");
    assert!(why.contains("set CUDA_COMPUTE_CAP"), "{why}");
    let (code, plan, why) = on_fake_machine(
        "scripts/quickstart.sh",
        Smi::Absent,
        &[("INFERBENCH_BUILD", "cuda"), ("CUDA_COMPUTE_CAP", "89")],
    );
    assert_eq!(code, 0, "{why}");
    assert!(plan.contains("--features cuda"), "{plan}");
}

#[test]
fn a_loaded_driver_without_nvidia_smi_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let proc_dir = dir.path().join("nvidia");
    std::fs::create_dir_all(&proc_dir).unwrap();
    std::fs::write(proc_dir.join("version"), "NVRM version: 550.54.14\n").unwrap();
    let proc_dir = proc_dir.display().to_string();
    let (code, plan, why) = on_fake_machine(
        "scripts/quickstart.sh",
        Smi::Absent,
        &[("INFERBENCH_PROC_NVIDIA", &proc_dir)],
    );
    assert_eq!(code, 0, "{why}");
    assert!(
        why.contains("an NVIDIA driver is loaded") && why.contains("no nvidia-smi"),
        "{why}"
    );
    assert!(!plan.contains("--features cuda"), "{plan}");
}

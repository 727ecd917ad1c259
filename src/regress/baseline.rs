//! Committed baselines: `baseline/PROFILE/` holds Criterion baselines (the same folder tree
//! as target/criterion, only the named baseline's files), suite results, and the fingerprint
//! of the machine they were measured on.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::criterion::find_baseline_dirs;
use crate::device::MachineInfo;
use crate::results::check_plain_name;

/// What must match for two measurements to be comparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub cpu_model: String,
    pub cpu_logical_cores: usize,
    pub gpus: Vec<String>,
    pub gpu_driver: Option<String>,
    pub compiled_features: Vec<String>,
    /// Context only: different versions are what a comparison is for.
    pub crate_versions: std::collections::BTreeMap<String, String>,
    pub git_commit: String,
    pub saved_at: String,
}

impl Fingerprint {
    pub fn of(machine: &MachineInfo) -> Self {
        Fingerprint {
            cpu_model: machine.cpu_model.clone(),
            cpu_logical_cores: machine.cpu_logical_cores,
            gpus: machine.gpus.iter().map(|g| g.name.clone()).collect(),
            gpu_driver: machine.gpu_driver.clone(),
            compiled_features: machine.compiled_features.clone(),
            crate_versions: crate::build_info::crate_versions(),
            git_commit: crate::build_info::git_commit().into(),
            saved_at: crate::results::now_rfc3339(),
        }
    }

    /// The hardware differences between a baseline and now, in words; empty when comparable.
    pub fn hardware_differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{what}: baseline {a}, now {b}"));
            }
        };
        differ("CPU", self.cpu_model.clone(), now.cpu_model.clone());
        differ(
            "CPU threads",
            self.cpu_logical_cores.to_string(),
            now.cpu_logical_cores.to_string(),
        );
        differ(
            "GPUs",
            format!("{:?}", self.gpus),
            format!("{:?}", now.gpus),
        );
        differ(
            "GPU driver",
            self.gpu_driver.clone().unwrap_or("none".into()),
            now.gpu_driver.clone().unwrap_or("none".into()),
        );
        differ(
            "features",
            self.compiled_features.join(","),
            now.compiled_features.join(","),
        );
        out
    }
}

/// A profile name for this machine: its GPU, else its CPU and thread count, as a slug.
pub fn default_profile(machine: &MachineInfo) -> String {
    let raw = match machine.gpus.first() {
        Some(g) => g.name.clone(),
        None => format!("{}-{}t", machine.cpu_model, machine.cpu_logical_cores),
    };
    let mut slug = String::new();
    for c in raw.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_string()
}

/// Where Criterion's copy of a baseline's fingerprint lives once restored.
pub fn restored_fingerprint_path(criterion_dir: &Path, name: &str) -> PathBuf {
    criterion_dir
        .join(".inferbench")
        .join(format!("{name}.fingerprint.json"))
}

fn profile_fingerprint_path(profile_dir: &Path, name: &str) -> PathBuf {
    profile_dir.join(format!("{name}.fingerprint.json"))
}

#[derive(Debug)]
pub struct Saved {
    pub criterion_benchmarks: usize,
    pub run: Option<PathBuf>,
    pub dir: PathBuf,
}

/// Copy Criterion baseline `name` (if any) and a suite result (if given) into
/// `store/PROFILE/`, with this machine's fingerprint.
pub fn save(
    store: &Path,
    profile: &str,
    name: &str,
    criterion_dir: &Path,
    run: Option<&Path>,
    machine: &MachineInfo,
) -> Result<Saved> {
    check_plain_name("baseline name", name)?;
    check_plain_name("--profile", profile)?;
    let dir = store.join(profile);
    let mut criterion_benchmarks = 0;
    if criterion_dir.is_dir() {
        let mut found = Vec::new();
        find_baseline_dirs(criterion_dir, name, &mut found)?;
        for src in &found {
            let rel = src
                .strip_prefix(criterion_dir)
                .expect("found under the root");
            let dst = dir.join("criterion").join(rel);
            copy_json_files(src, &dst)?;
            criterion_benchmarks += 1;
        }
    }
    let run_saved = match run {
        Some(path) => {
            let file = crate::results::run_file(path);
            super::suite::load(&file)?; // a valid result of either kind, or a clear error
            let dst = dir.join("runs").join(format!("{name}.json"));
            std::fs::create_dir_all(dst.parent().expect("a parent"))
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            std::fs::copy(&file, &dst)
                .with_context(|| format!("copying {} to {}", file.display(), dst.display()))?;
            Some(dst)
        }
        None => None,
    };
    if criterion_benchmarks == 0 && run_saved.is_none() {
        bail!(
            "nothing to save: no Criterion baseline named {name:?} under {} and no --run given \
             (run `cargo bench -- --save-baseline {name}` first)",
            criterion_dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let fp = serde_json::to_vec_pretty(&Fingerprint::of(machine))?;
    crate::results::write_atomic(&profile_fingerprint_path(&dir, name), &fp)?;
    Ok(Saved {
        criterion_benchmarks,
        run: run_saved,
        dir,
    })
}

/// Put a committed Criterion baseline back under `criterion_dir`, where
/// `cargo bench -- --baseline NAME` and `inferbench compare --baseline NAME` find it.
pub fn restore(store: &Path, profile: &str, name: &str, criterion_dir: &Path) -> Result<usize> {
    check_plain_name("baseline name", name)?;
    check_plain_name("--profile", profile)?;
    let dir = store.join(profile);
    let src_root = dir.join("criterion");
    let mut found = Vec::new();
    if src_root.is_dir() {
        find_baseline_dirs(&src_root, name, &mut found)?;
    }
    if found.is_empty() {
        bail!(
            "no Criterion baseline {name:?} in {} (saved profiles: {})",
            dir.display(),
            list_profiles(store).join(", ")
        );
    }
    for src in &found {
        let rel = src.strip_prefix(&src_root).expect("found under the root");
        copy_json_files(src, &criterion_dir.join(rel))?;
    }
    let fp = profile_fingerprint_path(&dir, name);
    if fp.is_file() {
        let dst = restored_fingerprint_path(criterion_dir, name);
        std::fs::create_dir_all(dst.parent().expect("a parent"))?;
        std::fs::copy(&fp, &dst).with_context(|| format!("copying {}", fp.display()))?;
    }
    Ok(found.len())
}

pub fn list_profiles(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every saved profile with the names of its baselines, both sorted.
pub fn list(store: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let mut listed = Vec::new();
    for profile in list_profiles(store) {
        let dir = store.join(&profile);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("{}: cannot list", dir.display()))?
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".fingerprint.json")
                    .map(String::from)
            })
            .collect();
        names.sort();
        listed.push((profile, names));
    }
    Ok(listed)
}

pub fn read_fingerprint(path: &Path) -> Result<Fingerprint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a baseline fingerprint", path.display()))
}

fn copy_json_files(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("{}: cannot create", dst.display()))?;
    for entry in
        std::fs::read_dir(src).with_context(|| format!("{}: cannot list", src.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let to = dst.join(path.file_name().expect("a file name"));
            std::fs::copy(&path, &to)
                .with_context(|| format!("copying {} to {}", path.display(), to.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regress::criterion::tests::write_bench;

    #[test]
    fn save_then_restore_round_trips_a_criterion_baseline() {
        let machine = MachineInfo::collect();
        let work = tempfile::tempdir().unwrap();
        let target = work.path().join("criterion");
        write_bench(&target, "g/a", "g/a", "main", &[1.0, 2.0]);
        write_bench(&target, "g/a", "g/a", "new", &[1.0, 2.0]);
        let store = work.path().join("baseline");
        let saved = save(&store, "box", "main", &target, None, &machine).unwrap();
        assert_eq!(saved.criterion_benchmarks, 1);
        assert!(store.join("box/criterion/g/a/main/sample.json").is_file());
        assert!(
            !store.join("box/criterion/g/a/new").exists(),
            "only the named baseline"
        );
        assert!(store.join("box/main.fingerprint.json").is_file());

        let fresh = work.path().join("fresh");
        assert_eq!(restore(&store, "box", "main", &fresh).unwrap(), 1);
        assert!(fresh.join("g/a/main/benchmark.json").is_file());
        let fp = read_fingerprint(&restored_fingerprint_path(&fresh, "main")).unwrap();
        assert!(fp
            .hardware_differences(&Fingerprint::of(&machine))
            .is_empty());

        let err = restore(&store, "box", "other", &fresh)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"other\"") && err.contains("box"), "{err}");
        let err = save(&store, "box", "none", &target, None, &machine).unwrap_err();
        assert!(err.to_string().contains("nothing to save"), "{err}");
        assert!(save(&store, "../up", "main", &target, None, &machine).is_err());
    }

    #[test]
    fn other_hardware_is_described() {
        let machine = MachineInfo::collect();
        let a = Fingerprint::of(&machine);
        let mut b = a.clone();
        b.cpu_model = "Other CPU".into();
        b.gpus = vec!["NVIDIA GeForce RTX 4090".into()];
        let d = a.hardware_differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("Other CPU"));
        let slug = default_profile(&machine);
        assert!(!slug.is_empty() && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}

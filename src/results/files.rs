//! Result files on disk: written atomically (temp file, then rename) so a reader, or a run
//! killed mid-write, never sees half a file; read back only at a known schema version.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{RUN_FILE, SCHEMA_VERSION};
use crate::exit::usage;

/// A name that becomes one folder or file name (a run id, a baseline, a profile): letters,
/// digits, '-', '_' and '.', not starting with '.', so it cannot climb out of its folder.
pub fn check_plain_name(what: &str, name: &str) -> Result<()> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if name.is_empty() || !plain || name.starts_with('.') {
        return Err(usage(format!(
            "{what} {name:?}: use letters, digits, '-', '_' and '.' only, not starting with '.'"
        )));
    }
    Ok(())
}

/// Replace `path` with `bytes` in one step.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("{}: cannot write", path.display()))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A run.json, or a run folder holding one.
pub fn run_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(RUN_FILE)
    } else {
        path.to_path_buf()
    }
}

/// A result file as JSON, after checking it declares the schema version this build reads.
pub fn read_versioned(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the run result", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let Some(version) = value.get("schema_version") else {
        bail!(
            "{}: no schema_version: not an inferbench run result",
            path.display()
        );
    };
    match version.as_u64() {
        Some(v) if v == u64::from(SCHEMA_VERSION) => Ok(value),
        Some(v) => bail!(
            "{}: schema_version {v}, but this inferbench reads version {SCHEMA_VERSION}",
            path.display()
        ),
        None => bail!(
            "{}: schema_version {version} is not a version number",
            path.display()
        ),
    }
}

/// The kind a result file declares ("inference" when it predates the field), and its JSON.
pub fn kind_of(path: &Path) -> Result<(String, serde_json::Value)> {
    let value = read_versioned(path)?;
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or("inference")
        .to_string();
    Ok((kind, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn reading_refuses_other_schemas_and_non_results() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("{\"schema_version\": 99}", "schema_version 99"),
            (
                "{\"schema_version\": \"1\"}",
                "schema_version \"1\" is not a version number",
            ),
            ("{\"hello\": 1}", "no schema_version"),
            ("{\"schema_version\": ", "not valid JSON"),
        ];
        for (i, (text, expected)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.json"));
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", read_versioned(&path).unwrap_err());
            assert!(
                err.contains(expected) && err.contains(&format!("{i}.json")),
                "{err}"
            );
        }
        let missing = format!(
            "{:#}",
            read_versioned(&dir.path().join("none.json")).unwrap_err()
        );
        assert!(missing.contains("none.json"), "{missing}");
    }

    #[test]
    fn plain_names_cannot_climb_out() {
        for good in ["main", "run-1", "a_b.c"] {
            assert!(check_plain_name("x", good).is_ok(), "{good}");
        }
        for bad in ["../x", "a/b", "", ".hidden", "a b"] {
            assert!(check_plain_name("x", bad).is_err(), "{bad}");
        }
    }
}

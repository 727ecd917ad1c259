//! A run's folder under the results folder: created once with a fresh id, or found again to
//! resume; every save writes scenarios.csv, then run.json, atomically.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::clock::stamp;
use super::files::{check_plain_name, write_atomic};
use super::{RunFile, CSV_FILE, RUN_FILE};
use crate::exit::usage;

#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Make sure the results folder exists (or can be made): a bad one should fail before
    /// anything long starts.
    pub fn check_output(output: &Path) -> Result<()> {
        std::fs::create_dir_all(output)
            .with_context(|| format!("results folder {}: cannot create it", output.display()))
    }

    /// A new folder under `output` for this run. A given id must be new; the default one is
    /// NAME-YYYYMMDDTHHMMSSZ (with -2, -3, ... if that exists).
    pub fn create(output: &Path, run_id: Option<&str>, name: &str) -> Result<RunDir> {
        if let Some(id) = run_id {
            check_plain_name("--run-id", id)?; // before anything is made on disk
        }
        Self::check_output(output)?;
        let create = |path: PathBuf| {
            std::fs::create_dir(&path)
                .with_context(|| format!("results folder {}: cannot create it", path.display()))?;
            crate::live::run_folder(path.clone());
            Ok(RunDir { path })
        };
        if let Some(id) = run_id {
            let path = output.join(id);
            if path.exists() {
                return Err(usage(format!(
                    "--run-id {id}: {} already exists; use --resume {id} to carry it on",
                    path.display()
                )));
            }
            return create(path);
        }
        let base = format!("{name}-{}", stamp());
        let mut n = 1;
        loop {
            let path = if n == 1 {
                output.join(&base)
            } else {
                output.join(format!("{base}-{n}"))
            };
            if !path.exists() {
                return create(path);
            }
            n += 1;
        }
    }

    /// `--resume X`: X is a run folder, or a run id under the output folder.
    pub fn resume(output: &Path, id: &str) -> Result<RunDir> {
        let direct = PathBuf::from(id);
        let path = if direct.join(RUN_FILE).is_file() {
            direct
        } else {
            output.join(id)
        };
        if !path.join(RUN_FILE).is_file() {
            return Err(usage(format!(
                "--resume {id}: no run there ({} does not exist)",
                path.join(RUN_FILE).display()
            )));
        }
        crate::live::run_folder(path.clone());
        Ok(RunDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder's name, which is the run's id.
    pub fn run_id(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn run_file(&self) -> PathBuf {
        self.path.join(RUN_FILE)
    }

    /// Write scenarios.csv, then run.json: run.json goes last, so a run killed in between
    /// never has a run.json listing a scenario its CSV lacks.
    pub fn save<R: RunFile>(&self, run: &mut R) -> Result<()> {
        run.header_mut().touch();
        let json = serde_json::to_vec_pretty(run)
            .with_context(|| format!("serialising the {}", R::WHAT))?;
        write_atomic(&self.path.join(CSV_FILE), run.csv().as_bytes())?;
        write_atomic(&self.run_file(), &json)
    }

    /// The run ended, complete or interrupted: mark it so and save it.
    pub fn finish<R: RunFile>(&self, run: &mut R, interrupted: bool) -> Result<()> {
        run.header_mut().end(interrupted);
        self.save(run)
    }

    /// Remove the folder of a run that measured nothing (it holds no file yet).
    pub fn discard_empty(self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked_and_never_reused() {
        let out = tempfile::tempdir().unwrap();
        let a = RunDir::create(out.path(), None, "quick").unwrap();
        let b = RunDir::create(out.path(), None, "quick").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a.path().is_dir() && b.path().is_dir());
        let mine = RunDir::create(out.path(), Some("mine"), "quick").unwrap();
        assert_eq!(mine.run_id(), "mine");
        let again = RunDir::create(out.path(), Some("mine"), "quick").unwrap_err();
        assert!(again.to_string().contains("--resume mine"), "{again}");
        for bad in ["../x", "a/b", "", ".hidden"] {
            assert!(RunDir::create(out.path(), Some(bad), "q").is_err(), "{bad}");
        }
    }

    #[test]
    fn resume_finds_a_run_by_id_or_folder_and_names_what_is_missing() {
        let out = tempfile::tempdir().unwrap();
        let dir = RunDir::create(out.path(), Some("r1"), "q").unwrap();
        std::fs::write(dir.run_file(), "{}").unwrap();
        assert_eq!(RunDir::resume(out.path(), "r1").unwrap().path(), dir.path());
        let by_path = dir.path().to_string_lossy().into_owned();
        assert_eq!(
            RunDir::resume(Path::new("/nowhere"), &by_path)
                .unwrap()
                .path(),
            dir.path()
        );
        let err = RunDir::resume(out.path(), "r2").err().unwrap().to_string();
        assert!(
            err.contains("--resume r2") && err.contains("run.json"),
            "{err}"
        );
    }
}

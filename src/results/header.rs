//! What every result file starts with, and what a result type must offer to be written and
//! read by the one lifecycle.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::clock::now_rfc3339;
use crate::device::MachineInfo;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Being measured, or the process died while it was: the scenarios listed are finished.
    Running,
    /// Stopped by the user (Ctrl-C) after the scenarios listed.
    Interrupted,
    Complete,
}

impl RunStatus {
    pub fn is_complete(self) -> bool {
        self == RunStatus::Complete
    }
}

/// Identity, status and times, provenance, machine: the first fields of every result file.
/// Flattened into the file, so they sit at its top level.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunHeader {
    pub schema_version: u32,
    /// "inference", "retrieval" or "http".
    pub kind: String,
    pub run_id: String,
    pub status: RunStatus,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub inferbench_version: String,
    /// The commit the binary was built from ("-dirty" when the tree had changes).
    pub git_commit: String,
    /// Versions of the crates that do the measured work.
    pub crate_versions: BTreeMap<String, String>,
    /// The machine that measured (for HTTP runs: the generator's; the server may be elsewhere).
    pub machine: MachineInfo,
}

impl RunHeader {
    /// A new run of `kind` called `run_id`, running, started at `started_at` on `machine`.
    pub fn start(kind: &str, run_id: &str, started_at: String, machine: MachineInfo) -> Self {
        RunHeader {
            schema_version: SCHEMA_VERSION,
            kind: kind.into(),
            run_id: run_id.into(),
            status: RunStatus::Running,
            updated_at: started_at.clone(),
            started_at,
            finished_at: None,
            inferbench_version: env!("CARGO_PKG_VERSION").into(),
            git_commit: crate::build_info::git_commit().into(),
            crate_versions: crate::build_info::crate_versions(),
            machine,
        }
    }

    pub fn touch(&mut self) {
        self.updated_at = now_rfc3339();
    }

    /// The run ended: complete (with a finish time) or interrupted.
    pub fn end(&mut self, interrupted: bool) {
        self.touch();
        if interrupted {
            self.status = RunStatus::Interrupted;
        } else {
            self.status = RunStatus::Complete;
            self.finished_at = Some(self.updated_at.clone());
        }
    }
}

/// A kind of result file: its header, its CSV, and how it reads back.
pub trait RunFile: Serialize + DeserializeOwned {
    /// The `kind` its files declare.
    const KIND: &'static str;
    /// What it is called in errors: "run result", "retrieval result".
    const WHAT: &'static str;

    fn header(&self) -> &RunHeader;
    fn header_mut(&mut self) -> &mut RunHeader;
    /// scenarios.csv: one row per scenario.
    fn csv(&self) -> String;
    /// What a file read back must hold to be believed: the field that fails, and why.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }

    /// Read one back from its run.json, refusing other schema versions and other kinds.
    fn load(path: &Path) -> Result<Self> {
        let (kind, value) = super::kind_of(path)?;
        if kind != Self::KIND {
            bail!(
                "{}: a run of kind {kind:?}, not {:?}",
                path.display(),
                Self::KIND
            );
        }
        let run: Self = serde_json::from_value(value)
            .with_context(|| format!("{}: not a valid {}", path.display(), Self::WHAT))?;
        run.check()
            .map_err(|e| anyhow::anyhow!("{}: not a valid {}: {e}", path.display(), Self::WHAT))?;
        Ok(run)
    }
}

//! The one lifecycle of every run's results, whatever measured them: a run id and a folder,
//! a header (identity, status, times, provenance, machine), files written atomically after
//! every step, a run marked complete or interrupted at the end, and read back only when it
//! declares a schema version this build knows. A leaf: it imports nothing above `device`.

mod clock;
mod files;
mod header;
pub mod markers;
mod run_dir;

pub use clock::now_rfc3339;
pub use files::{check_plain_name, kind_of, read_versioned, run_file, write_atomic};
pub use header::{RunFile, RunHeader, RunStatus, SCHEMA_VERSION};
pub use run_dir::RunDir;

/// The result of a run, in its folder.
pub const RUN_FILE: &str = "run.json";
/// One row per scenario, beside run.json.
pub const CSV_FILE: &str = "scenarios.csv";

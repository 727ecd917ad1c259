//! Instruction counts of the hot paths, from `cargo bench`: runs `inferbench instructions`
//! (callgrind; see the README) on the release build, so the counts are release code's.
//!
//!   cargo bench --bench instructions              # every workload, cache simulation on
//!   cargo bench --bench instructions -- qmatmul   # a regex of workload names
//! Results go to results/instructions-TIMESTAMP/; compare two with `inferbench compare A B`.

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    // cargo passes `--bench`; the first other argument that is not a flag is the filter.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inferbench"));
    cmd.arg("instructions");
    if let Some(f) = filter {
        cmd.args(["--filter", &f]);
    }
    match cmd.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(s.code().unwrap_or(1).clamp(1, 255) as u8),
        Err(e) => {
            eprintln!("cannot run inferbench instructions: {e}");
            ExitCode::FAILURE
        }
    }
}

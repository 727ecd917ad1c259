//! Running a command under callgrind and reading its counts back.
//!
//! The cache simulation gets fixed geometries (32 KiB 8-way L1s, an 8 MiB 16-way last level,
//! 64-byte lines) instead of the host's, so its miss counts and the estimated cycles depend on
//! the code and not on the machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::report::instructions::{L1_MISS_EVENTS, LL_MISS_EVENTS};

/// Estimated cycles, as Callgrind users (and gungraun) compute them: every instruction 1, an L1
/// miss 10, a last-level miss 100.
pub const ESTIMATED_CYCLES: &str = "EstimatedCycles";

/// The valgrind found on PATH (or at `explicit`), with its version: "valgrind-3.19.0".
pub fn find_valgrind(explicit: Option<&Path>) -> Result<(PathBuf, String)> {
    let program = explicit.map_or_else(|| PathBuf::from("valgrind"), Path::to_path_buf);
    let output = Command::new(&program).arg("--version").output();
    match output {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Ok((program, version))
        }
        Ok(o) => bail!(
            "{} --version failed ({}): {}",
            program.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => bail!(
            "cannot run {} ({e}): instruction counts need valgrind \
             (Debian/Ubuntu: apt-get install valgrind; scripts/instructions.sh installs it)",
            program.display()
        ),
    }
}

/// valgrind's arguments for one counted process writing to `out_file`.
pub fn arguments(out_file: &Path, cache_sim: bool) -> Vec<String> {
    let mut args = vec![
        "--tool=callgrind".to_string(),
        // Nothing counts until the process asks (client_request::start_counting).
        "--instr-atstart=no".into(),
        format!("--callgrind-out-file={}", out_file.display()),
        "--dump-line=yes".into(),
        "--compress-strings=no".into(),
    ];
    if cache_sim {
        args.extend([
            "--cache-sim=yes".into(),
            "--I1=32768,8,64".into(),
            "--D1=32768,8,64".into(),
            "--LL=8388608,16,64".into(),
        ]);
    }
    args
}

/// The totals of a callgrind output file: event name -> count, plus estimated cycles when the
/// cache was simulated.
pub fn read_totals(path: &Path) -> Result<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read callgrind's output", path.display()))?;
    parse_totals(&text).with_context(|| format!("{}: not a callgrind output", path.display()))
}

fn parse_totals(text: &str) -> Result<BTreeMap<String, u64>> {
    let mut events: Option<Vec<&str>> = None;
    let (mut totals, mut summary) = (None, None);
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("events:") {
            events = Some(rest.split_whitespace().collect());
        } else if let Some(rest) = line.strip_prefix("totals:") {
            totals = Some(rest);
        } else if let Some(rest) = line.strip_prefix("summary:") {
            summary = Some(rest);
        }
    }
    // totals: is the sum of the costs written; summary: only a header's claim.
    let values = totals
        .or(summary)
        .map(|rest| {
            rest.split_whitespace()
                .map(|v| v.parse::<u64>().with_context(|| format!("count {v:?}")))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let (Some(events), Some(values)) = (events, values) else {
        bail!("no events: and totals: lines");
    };
    // Trailing zero counts may be left out.
    let mut map: BTreeMap<String, u64> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.to_string(), values.get(i).copied().unwrap_or(0)))
        .collect();
    if !map.contains_key("Ir") {
        bail!("no Ir (instructions) among the events {events:?}");
    }
    let get = |k: &str| map.get(k).copied().unwrap_or(0);
    if map.contains_key("D1mr") {
        let l1: u64 = L1_MISS_EVENTS.iter().map(|e| get(e)).sum();
        let ll: u64 = LL_MISS_EVENTS.iter().map(|e| get(e)).sum();
        map.insert(ESTIMATED_CYCLES.into(), get("Ir") + 10 * l1 + 100 * ll);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_totals_and_estimates_cycles() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n\
                    fn=(1) main\n16 5 2\nsummary: 1000 300 200 10 20 5 1 2\ntotals: 1000 300 200 10 20 5 1 2\n";
        let t = parse_totals(text).unwrap();
        assert_eq!(t["Ir"], 1000);
        assert_eq!(t["DLmw"], 0, "a left-out trailing count is zero");
        assert_eq!(t[ESTIMATED_CYCLES], 1000 + 10 * 35 + 100 * 3);
    }

    #[test]
    fn instructions_only_has_no_estimate() {
        let t = parse_totals("events: Ir\ntotals: 42\n").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t["Ir"], 42);
    }

    #[test]
    fn broken_files_say_what_is_missing() {
        let t = parse_totals("events: Ir\ntotals: 7\nsummary: 9\n").unwrap();
        assert_eq!(t["Ir"], 7, "totals win over the summary");
        let e = parse_totals("events: Ir\n").unwrap_err().to_string();
        assert!(e.contains("totals"), "{e}");
        let e = parse_totals("events: Dr\ntotals: 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Ir"), "{e}");
        let e = parse_totals("events: Ir\ntotals: lots\n").unwrap_err();
        assert!(format!("{e:#}").contains("lots"), "{e:#}");
    }
}

//! The counted process: one workload, set up, run once (so lazy initialisation is not counted),
//! then counted or timed. It answers its runner with one line on stdout.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::client_request;
use super::profile;
use super::workloads::Workload;
use crate::report::instructions::CountProfile;

/// What the line starts with, so other output on stdout cannot be mistaken for the answer.
pub const ANSWER_PREFIX: &str = "inferbench-worker: ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Under callgrind: count the iterations.
    Count,
    /// Natively: time samples of the iterations.
    Time,
    /// Natively, before the others: build the inputs that are too slow to build under valgrind.
    Prepare,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub under_valgrind: bool,
    pub profile: CountProfile,
    /// Time mode: nanoseconds per iteration, one per sample.
    pub time_ns: Vec<f64>,
}

/// Run `workload` in `mode` and print the answer line.
pub fn run(workload: &Workload, mode: Mode, samples: usize, prepared: &Path) -> Result<()> {
    let under_valgrind = client_request::running_on_valgrind();
    if mode == Mode::Count && !under_valgrind {
        bail!("count mode runs under callgrind (inferbench instructions starts it so)");
    }
    if mode == Mode::Prepare {
        if let Some(prepare) = workload.prepare {
            std::fs::create_dir_all(prepared)?;
            prepare(prepared)?;
        }
        println!(
            "{ANSWER_PREFIX}{}",
            serde_json::to_string(&answer(under_valgrind, vec![]))?
        );
        return Ok(());
    }
    let mut iteration = workload.set_up(prepared)?;
    iteration()?;
    let mut time_ns = Vec::new();
    match mode {
        Mode::Count => {
            client_request::start_counting();
            let counted = (0..workload.iterations).try_for_each(|_| iteration());
            client_request::stop_counting();
            counted?;
        }
        Mode::Prepare => {}
        Mode::Time => {
            for _ in 0..samples {
                let started = Instant::now();
                for _ in 0..workload.iterations {
                    iteration()?;
                }
                let ns = started.elapsed().as_nanos() as f64;
                time_ns.push(ns / f64::from(workload.iterations));
            }
        }
    }
    println!(
        "{ANSWER_PREFIX}{}",
        serde_json::to_string(&answer(under_valgrind, time_ns))?
    );
    Ok(())
}

fn answer(under_valgrind: bool, time_ns: Vec<f64>) -> Answer {
    Answer {
        under_valgrind,
        // The runner knows valgrind's version and fills it in.
        profile: profile::here(""),
        time_ns,
    }
}

/// The answer line in a worker's stdout.
pub fn read_answer(stdout: &str) -> Result<Answer> {
    let Some(line) = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(ANSWER_PREFIX))
    else {
        bail!("the worker gave no answer line");
    };
    Ok(serde_json::from_str(line)?)
}

//! `inferbench instructions`: count the CPU hot paths' instructions under callgrind.

use std::path::PathBuf;

use clap::Args;
use regex::Regex;

use crate::exit::{as_usage, usage, Outcome};
use crate::instructions::worker::{self, Mode};
use crate::instructions::{self, callgrind, workloads, CountRequest};
use crate::report;

pub const HELP: &str = "Count the instructions of the CPU hot paths under valgrind's callgrind: \
quantised matmuls at SmolLM2 shapes, rms_norm, rope, softmax, decode attention, one whole \
decode step of the default model, the tokenizer on a fixed text, 100 HNSW queries on a fixed \
20k-vector index, and the L2 distance kernel (`--list` shows them).\n\n\
Counts do not move when the machine is busy: two runs of one build on fixed inputs give the \
same numbers to within a few instructions, so `inferbench compare BASE CURRENT` holds them to \
+2% (FAIL) where wall times need +20%. Counts depend on the build (compiler, debug or \
release), the instruction-set extensions the code dispatches on, and valgrind's version: the \
run records these as its profile, and compare refuses runs of different profiles.\n\n\
Each workload runs in its own process: set up uncounted, run once, then its iterations \
counted (one thread, fixed environment). Up to --jobs processes run at once. With the cache \
simulation (default; fixed 32 KiB L1 and 8 MiB last-level geometries, so not the host's) the \
run also has L1 and last-level misses and estimated cycles (Ir + 10 L1 + 100 LL misses). \
Afterwards each workload is timed natively (--time-samples), as advisory wall times.\n\n\
Writes results/RUN_ID/run.json, scenarios.csv and callgrind/*.callgrind.out \
(callgrind_annotate or kcachegrind open them). Needs valgrind (apt-get install valgrind). The \
decode step and tokenizer read the default model from the Hugging Face cache \
(scripts/fetch-models.sh).";

#[derive(Args)]
pub struct InstructionsArgs {
    /// Only the workloads whose name matches this regex.
    #[arg(long)]
    filter: Option<String>,
    /// List the workloads and exit.
    #[arg(long)]
    list: bool,
    /// Results folder; each run gets its own folder inside.
    #[arg(long, short = 'o', default_value = "results")]
    output: PathBuf,
    /// The run's folder name (default instructions-TIMESTAMP).
    #[arg(long)]
    run_id: Option<String>,
    /// Counted processes at once (default: the CPU's threads).
    #[arg(long)]
    jobs: Option<usize>,
    /// Count instructions only (about twice as fast): no misses, no estimated cycles.
    #[arg(long)]
    no_cache_sim: bool,
    /// Native wall-time samples per workload after counting (0: none).
    #[arg(long, default_value_t = 5)]
    time_samples: usize,
    /// The valgrind program.
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
    /// Internal: run one workload as the counted (or timed) process.
    #[arg(long, hide = true)]
    worker: Option<String>,
    #[arg(long, hide = true, value_enum, default_value = "count")]
    worker_mode: Mode,
    #[arg(long, hide = true, default_value_t = 5)]
    samples: usize,
    #[arg(long, hide = true, default_value = ".")]
    prepared: PathBuf,
}

impl InstructionsArgs {
    /// The workloads the filter selects (all without one).
    pub fn selected(&self) -> anyhow::Result<Vec<&'static workloads::Workload>> {
        let filter = match &self.filter {
            Some(f) => Some(Regex::new(f).map_err(|e| usage(format!("--filter {f:?}: {e}")))?),
            None => None,
        };
        let chosen: Vec<_> = workloads::ALL
            .iter()
            .filter(|w| filter.as_ref().is_none_or(|f| f.is_match(w.name)))
            .collect();
        if chosen.is_empty() {
            let names: Vec<_> = workloads::ALL.iter().map(|w| w.name).collect();
            return Err(usage(format!(
                "--filter {:?} matches no workload (there are: {})",
                self.filter.as_deref().unwrap_or(""),
                names.join(", ")
            )));
        }
        if self.jobs == Some(0) {
            return Err(usage("--jobs must be at least 1"));
        }
        Ok(chosen)
    }
}

pub fn handle(args: InstructionsArgs) -> anyhow::Result<Outcome> {
    if let Some(name) = &args.worker {
        let w =
            workloads::find(name).ok_or_else(|| usage(format!("--worker {name:?}: unknown")))?;
        worker::run(w, args.worker_mode, args.samples, &args.prepared)?;
        return Ok(Outcome::Done);
    }
    let chosen = args.selected()?;
    if args.list {
        for w in &chosen {
            let model = if w.needs_model {
                "  [default model]"
            } else {
                ""
            };
            println!("{:<42} x{:<3} {}{model}", w.name, w.iterations, w.what);
        }
        return Ok(Outcome::Done);
    }
    if !instructions::client_request::SUPPORTED {
        return Err(usage(format!(
            "instruction counts need x86_64 or aarch64 (this is {})",
            std::env::consts::ARCH
        )));
    }
    // A valgrind that cannot run is a value no run can use (exit 2).
    let (valgrind, version) = callgrind::find_valgrind(Some(&args.valgrind)).map_err(as_usage)?;
    let exe = std::env::current_exe()?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let request = CountRequest {
        workloads: chosen,
        exe,
        valgrind,
        valgrind_version: version,
        jobs,
        cache_sim: !args.no_cache_sim,
        time_samples: args.time_samples,
        callgrind_dir: PathBuf::new(),
        prepared_dir: PathBuf::new(),
    };
    let interrupt =
        super::interrupt::install("the workloads being counted, keeping every finished one")?;
    let outcome = instructions::run(request, &args.output, args.run_id.as_deref(), &interrupt)?;
    println!("{}", report::instructions::table(&outcome.result));
    Ok(super::results_written(&outcome.dir, &outcome.result.header))
}

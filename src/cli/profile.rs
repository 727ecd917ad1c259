//! `inferbench profile`: one prefill and N decode steps with every op timed, as a table by
//! kind of op and a Chrome trace.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::model_args::ModelArgs;
use crate::device;
use crate::engine::profile::{self, ProfileRequest};
use crate::exit::{usage, Outcome};
use crate::model;
use crate::workload::synthetic;

pub const HELP: &str = "Time every op of one prefill and N greedy decode steps: the quantised \
matmuls (q, k and v as one and gate and up as one where their weights share a type; o, down, \
the output head), attention, softmax, rms_norm, rope, the KV-cache update, activation, \
residuals, embedding, copies and sampling.\n\n\
Prints the cost of profiling itself (the same passes unprofiled beside profiled, alternated), \
then the prefill's and a decode step's time by kind of op (count, ms, share, GB/s as far as \
the op says what it moved) and a step's heaviest ops; writes a Chrome trace of the profiled \
pass (open it in https://ui.perfetto.dev or chrome://tracing). On a GPU the device is \
synchronised around every op, so each op's span is its own kernels (and profiling costs \
more). Covers GGUF models (the quantised llama path, whose ops inferbench runs itself).";

#[derive(Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Prompt length in tokens (a synthetic prompt of real prose).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    prompt_tokens: u32,
    /// Decode steps after the prefill.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    steps: u32,
    /// Rows decoded together (the prompt repeated).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Untimed passes first (page in weights, warm caches and thread pools).
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Unprofiled and profiled passes, alternated; the tables show the profiled pass with the
    /// median decode time.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Where to write the Chrome trace.
    #[arg(long, default_value = "inferbench-profile.json")]
    trace: PathBuf,
}

pub fn handle(args: ProfileArgs) -> anyhow::Result<Outcome> {
    let selected = device::select(args.model.device)?;
    eprintln!("device: {} ({})", selected.name, selected.reason);
    let mut loaded = model::load(&args.model.load_options(), &selected.device)?;
    if loaded.info.format != "gguf" {
        return Err(usage(format!(
            "{}: profile times the ops of GGUF models (the quantised llama path inferbench runs \
             itself); this is a {} model, whose forward pass is candle-transformers' own",
            loaded.info.path, loaded.info.format
        )));
    }
    let prompt = synthetic::prompt_of_length(&loaded.tokenizer, args.prompt_tokens as usize)?;
    let (batch, steps) = (args.batch as usize, args.steps as usize);
    crate::engine::memory::check_batch(&loaded.info, &selected.device, batch, prompt.len(), steps)?;
    if prompt.len() + steps > loaded.info.context_length {
        return Err(usage(format!(
            "--prompt-tokens {} + --steps {steps} pass the model's context of {} positions",
            prompt.len(),
            loaded.info.context_length
        )));
    }
    eprintln!(
        "model: {} ({}); profiling {} warm-up and {} × 2 passes...",
        loaded.info.name, loaded.info.dtype, args.warmup, args.rounds
    );
    match model::nvtx::get() {
        Ok(nvtx) => eprintln!(
            "nvtx: a range per op through {} (nsys shows them)",
            nvtx.path
        ),
        Err(why) => eprintln!("nvtx: off: {why}"),
    }
    let request = ProfileRequest {
        batch,
        steps,
        warmup: args.warmup as usize,
        rounds: args.rounds as usize,
    };
    let profile = profile::run(loaded.model.as_mut(), &selected.device, &prompt, request)?;
    print!("{}", crate::report::profile::render(&profile));
    let meta = json!({
        "model": loaded.info.name,
        "dtype": loaded.info.dtype,
        "device": selected.name,
        "batch": batch,
        "prompt_tokens": prompt.len(),
        "decode_steps": steps,
        "inferbench_version": env!("CARGO_PKG_VERSION"),
    });
    let trace = serde_json::to_vec(&profile.chrome_trace(meta))?;
    crate::results::write_atomic(&args.trace, &trace)?;
    eprintln!(
        "trace: {} (open in https://ui.perfetto.dev or chrome://tracing)",
        args.trace.display()
    );
    Ok(Outcome::Done)
}

//! `inferbench generate`: one prompt (or a batch of it) through the engine, the answer and
//! one line of timings.

use clap::Args;

use super::model_args::ModelArgs;
use crate::device::{self, MachineInfo};
use crate::engine::{self, Generation, GenerationParams, SamplingParams};
use crate::exit::{usage, Outcome};
use crate::model::{self, LoadedModel, TextTokenizer, WeightsMode};
use crate::roofline::Ceiling;
use crate::workload::synthetic;

#[derive(Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text.
    #[arg(long, short = 'p', required_unless_present = "prompt_tokens")]
    prompt: Option<String>,
    /// Instead of --prompt: a synthetic prompt of exactly this many tokens (real prose).
    #[arg(long, conflicts_with_all = ["prompt", "chat"], value_parser = clap::value_parser!(u32).range(1..))]
    prompt_tokens: Option<u32>,
    /// Wrap the prompt in the model's chat template (one user turn).
    #[arg(long)]
    chat: bool,
    /// Most tokens to generate per answer.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
    /// Answers generated together in one batch (the prompt repeated).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches this.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Seed for sampling (row i uses seed + i).
    #[arg(long, default_value_t = 299792458)]
    seed: u64,
    /// Keep generating past end-of-sequence tokens (fixed output length).
    #[arg(long)]
    ignore_eos: bool,
    /// Untimed generations of the same shape first (page in weights, warm caches and thread
    /// pools); their TTFT is printed apart.
    #[arg(long, default_value_t = 0)]
    warmup: u32,
}

pub fn handle(args: GenerateArgs) -> anyhow::Result<Outcome> {
    let selected = device::select(args.model.device)?;
    eprintln!("device: {} ({})", selected.name, selected.reason);
    let mut loaded = model::load(&args.model.load_options(), &selected.device)?;
    describe_model(&loaded);
    let prompt = encode_prompt(&args, &loaded.tokenizer)?;
    let (batch, max_tokens) = (args.batch as usize, args.max_tokens as usize);
    engine::memory::check_batch(
        &loaded.info,
        &selected.device,
        batch,
        prompt.len(),
        max_tokens,
    )?;
    let ignore_eos = args.ignore_eos || args.model.weights == WeightsMode::Dummy;
    if ignore_eos && !args.ignore_eos {
        eprintln!("note: dummy weights: generating past EOS to the full --max-tokens");
    }
    let params = GenerationParams {
        max_tokens,
        sampling: SamplingParams {
            temperature: args.temperature,
            top_p: args.top_p,
            seed: args.seed,
        },
        ignore_eos,
        eos_token_ids: loaded.tokenizer.eos_token_ids.clone(),
        context_length: loaded.info.context_length,
    };
    let prompts = vec![prompt; batch];
    let mut run = || {
        engine::generate(
            loaded.model.as_mut(),
            &selected.device,
            &prompts,
            &params,
            |_| {},
        )
    };
    for i in 0..args.warmup {
        let w = run()?;
        eprintln!(
            "warm-up {}/{}: TTFT {:.1} ms, decode {}",
            i + 1,
            args.warmup,
            w.timeline.ttft().unwrap_or_default().as_secs_f64() * 1e3,
            w.timeline
                .decode_tokens_per_second()
                .map_or("n/a".into(), |v| format!("{v:.1} tok/s"))
        );
    }
    let out = run()?;
    for (row, tokens) in out.tokens.iter().enumerate() {
        let answer = loaded.tokenizer.decode(tokens)?;
        if out.batch() > 1 {
            println!("[{}] {}", row + 1, answer.trim());
        } else {
            println!("{}", answer.trim());
        }
    }
    println!("{}", timings_line(&out, &selected.name));
    if let Some(footprint) = &loaded.info.footprint {
        let ceiling = Ceiling::here(&MachineInfo::collect(), &selected.name);
        let t = &out.timeline;
        // Every step runs the whole batch, so the steps count the tokens of each row.
        let steps = t.step_times.len() as u64;
        let roofline = ceiling.roofline(
            footprint,
            (out.batch() as u64, out.prompt_tokens as u64, steps),
            t.ttft().unwrap_or_default().as_secs_f64(),
            t.decode_time().as_secs_f64(),
        );
        println!("roofline: {}", roofline.text());
    }
    Ok(Outcome::Done)
}

fn describe_model(loaded: &LoadedModel) {
    let info = &loaded.info;
    eprintln!(
        "model: {} [{} {} {}, {:.0}M params] loaded in {:.2} s; tokenizer: {}",
        info.name,
        info.format,
        info.architecture,
        info.dtype,
        info.parameters as f64 / 1e6,
        info.load_seconds,
        loaded.tokenizer.source
    );
    if let Some(note) = &loaded.tokenizer.note {
        eprintln!("note: {note}");
    }
}

/// The prompt's token ids: the text (in the chat template with --chat), or a synthetic
/// prompt of exactly --prompt-tokens tokens.
fn encode_prompt(args: &GenerateArgs, tokenizer: &TextTokenizer) -> anyhow::Result<Vec<u32>> {
    match (&args.prompt, args.prompt_tokens) {
        (_, Some(n)) => synthetic::prompt_of_length(tokenizer, n as usize),
        (Some(p), None) if args.chat => tokenizer.encode(&tokenizer.apply_chat_template(p)?),
        (Some(p), None) => tokenizer.encode(p),
        (None, None) => Err(usage("give --prompt TEXT or --prompt-tokens N")),
    }
}

fn timings_line(out: &Generation, device: &str) -> String {
    let t = &out.timeline;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    format!(
        "timings: batch {} | prompt {} tok | TTFT {:.1} ms | prompt {:.1} tok/s | decode {} tok in {:.1} ms = {} | generated {} tok | device {}",
        out.batch(),
        out.prompt_tokens,
        t.ttft().map(ms).unwrap_or(0.0),
        out.prefill_tokens_per_second().unwrap_or(0.0),
        t.decode_tokens(),
        ms(t.decode_time()),
        t.decode_tokens_per_second()
            .map_or("n/a (one token)".into(), |v| format!("{v:.1} tok/s")),
        t.total_tokens(),
        device,
    )
}

//! `inferbench agree`: does this set-up (a device, a quantisation, a dtype) give the same
//! greedy answers as a reference set-up of the same model (by default the weights dequantised
//! to f32 on the CPU)? The check a new kernel, device or repack has to pass.

use std::path::PathBuf;

use anyhow::{anyhow, Context};
use clap::Args;
use serde::Serialize;

use super::model_args::ModelArgs;
use crate::device::{self, DeviceRequest};
use crate::engine::agreement::{compare_greedy, Agreement, Choice, Side};
use crate::exit::Outcome;
use crate::model::{self, LoadedModel, Repack};

pub const HELP: &str = "Compare the greedy answers of a set-up of a model (the model flags: \
--device, --repack, --dtype) with a reference set-up of the same model (by default: every \
weight dequantised to f32, on the CPU). Both read each prompt and are fed the same tokens; at \
every step each picks its top token. A prompt agrees when every generated token is the same; \
otherwise the first different token is printed with both sides' logits for both tokens, so a \
near-tie (numerics) reads apart from a wide gap (a broken kernel).\n\n\
Exit codes: 0 every prompt agrees, 1 some prompt differs (or an error), 2 bad command line.";

/// Prompts with one clear answer each, as the model tests use.
const DEFAULT_PROMPTS: [&str; 3] = [
    "The capital of France is",
    "The largest planet in the solar system is",
    "def fibonacci(n):",
];

#[derive(Args)]
pub struct AgreeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A prompt (repeat the flag for more; default: three fixed prompts).
    #[arg(long, short = 'p')]
    prompt: Vec<String>,
    /// Tokens to generate and compare per prompt.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    max_tokens: u32,
    /// The reference's device.
    #[arg(long, default_value = "cpu")]
    reference_device: DeviceRequest,
    /// The reference's --repack (GGUF models).
    #[arg(long, default_value = "f32")]
    reference_repack: Repack,
    /// The reference's --dtype (safetensors and dummy models).
    #[arg(long, default_value = "f32", value_parser = model::parse_dtype)]
    reference_dtype: candle_core::DType,
    /// Also write the comparison as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct PromptResult<'a> {
    prompt: &'a str,
    agree: bool,
    #[serde(flatten)]
    agreement: Agreement,
}

pub fn handle(args: AgreeArgs) -> anyhow::Result<Outcome> {
    let tested_device = device::select(args.model.device)?;
    let reference_device = device::select(args.reference_device)?;
    let tested_options = args.model.load_options();
    let reference_options = model::LoadOptions {
        repack: args.reference_repack,
        dtype: Some(args.reference_dtype),
        ..tested_options.clone()
    };
    let mut tested = model::load(&tested_options, &tested_device.device)?;
    let mut reference = model::load(&reference_options, &reference_device.device)
        .context("loading the reference")?;
    let describe = |m: &LoadedModel, on: &str| format!("{} {} on {on}", m.info.name, m.info.dtype);
    let tested_name = describe(&tested, &tested_device.name);
    let reference_name = describe(&reference, &reference_device.name);
    println!("tested:    {tested_name}");
    println!("reference: {reference_name}");
    let prompts: Vec<String> = if args.prompt.is_empty() {
        DEFAULT_PROMPTS.iter().map(|p| p.to_string()).collect()
    } else {
        args.prompt.clone()
    };
    let mut results = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        let ids = tested.tokenizer.encode(prompt)?;
        let agreement = compare_greedy(
            Side {
                model: tested.model.as_mut(),
                device: &tested_device.device,
            },
            Side {
                model: reference.model.as_mut(),
                device: &reference_device.device,
            },
            &ids,
            args.max_tokens as usize,
            &tested.tokenizer.eos_token_ids,
        )
        .with_context(|| format!("prompt {:?}", prompt))?;
        let text = |ids: &[u32]| tested.tokenizer.decode(ids).unwrap_or_default();
        let line = match &agreement.divergence {
            None => format!(
                "agree  {}/{}: {} tokens alike: {:?} -> {:?}",
                i + 1,
                prompts.len(),
                agreement.agreed.len(),
                prompt,
                text(&agreement.agreed)
            ),
            Some(d) => {
                let side = |c: &Choice, own: f32, other: f32| {
                    format!(
                        "{} {:?} (its logit {own:.3}, the other side's {other:.3})",
                        c.token,
                        text(&[c.token])
                    )
                };
                format!(
                    "differ {}/{}: at generated token {} of {:?} after {:?}: tested chose {}, reference chose {}",
                    i + 1,
                    prompts.len(),
                    d.position,
                    prompt,
                    text(&agreement.agreed),
                    side(&d.tested, d.tested.tested_logit, d.tested.reference_logit),
                    side(&d.reference, d.reference.reference_logit, d.reference.tested_logit),
                )
            }
        };
        println!("{line}");
        results.push(PromptResult {
            prompt,
            agree: agreement.divergence.is_none(),
            agreement,
        });
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "tested": tested_name,
            "reference": reference_name,
            "max_tokens": args.max_tokens,
            "prompts": results,
        });
        crate::results::write_atomic(path, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    }
    let differ = results.iter().filter(|r| !r.agree).count();
    if differ > 0 {
        return Err(anyhow!(
            "{differ} of {} prompts differ from the reference",
            results.len()
        ));
    }
    println!("all {} prompts agree token for token", results.len());
    Ok(Outcome::Done)
}

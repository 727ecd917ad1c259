//! The suite runner (`inferbench run`): every scenario of a configuration, one after another,
//! with the result written after each so an interrupted run keeps what it measured and
//! `--resume` carries on where it stopped.

pub mod measure;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use regex::Regex;

use crate::config::{presets, Config, ResolvedConfig, TargetRule};
use crate::device::{self, MachineInfo};
use crate::metrics::RateSummary;
use crate::model::{self, LoadedModel};
use crate::progress::Progress;
use crate::report::schema::KIND;
use crate::report::{self, DeviceUsed, RunResult, ScenarioResult, TargetsUsed};
use crate::results::{check_plain_name, now_rfc3339, RunDir, RunFile, RunHeader, RunStatus};
use crate::roofline::{Ceiling, Footprint, Roofline};
use crate::telemetry::{PhaseTelemetry, Telemetry};

/// One combination of batch size, prompt length and output length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// "b8_p128_o64": what --filter matches.
    pub name: String,
    pub batch: u32,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
}

/// The most scenarios one run may plan: a run of more is a typo, and its plan alone would
/// not fit in memory.
pub const MAX_SCENARIOS: usize = 10_000;

/// Every scenario of a config, batch size outermost; refused, with the count, past
/// MAX_SCENARIOS.
pub fn plan(config: &Config) -> Result<Vec<Scenario>> {
    let s = &config.scenarios;
    let lists = [
        s.batch_sizes.len(),
        s.prompt_tokens.len(),
        s.output_tokens.len(),
    ];
    let count = lists.iter().try_fold(1usize, |n, &l| n.checked_mul(l));
    if count.is_none_or(|n| n > MAX_SCENARIOS) {
        bail!(
            "scenarios: {} batch sizes × {} prompt lengths × {} output lengths = {} scenarios, \
             more than the {MAX_SCENARIOS} a run may hold",
            lists[0],
            lists[1],
            lists[2],
            count.map_or("too many".into(), |n| n.to_string())
        );
    }
    let mut out = Vec::new();
    for &batch in &s.batch_sizes {
        for &prompt_tokens in &s.prompt_tokens {
            for &output_tokens in &s.output_tokens {
                out.push(Scenario {
                    name: format!("b{batch}_p{prompt_tokens}_o{output_tokens}"),
                    batch,
                    prompt_tokens,
                    output_tokens,
                });
            }
        }
    }
    Ok(out)
}

/// The planned scenarios that `filter` selects; an error when it selects none.
pub fn select(config: &Config, filter: Option<&Regex>) -> Result<Vec<Scenario>> {
    let all = plan(config)?;
    let Some(re) = filter else { return Ok(all) };
    let chosen: Vec<Scenario> = all
        .iter()
        .filter(|s| re.is_match(&s.name))
        .cloned()
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        return Err(crate::exit::usage(format!(
            "--filter {}: matches no scenario; the scenarios are: {}",
            re.as_str(),
            names.join(", ")
        )));
    }
    Ok(chosen)
}

/// How a run starts: a fresh one from a config, or an earlier one carried on.
pub enum Start {
    New {
        config: Box<ResolvedConfig>,
        /// The scenarios to measure (`select` picks them).
        scenarios: Vec<Scenario>,
        /// Name for the results folder; default NAME-YYYYMMDDTHHMMSSZ.
        run_id: Option<String>,
    },
    /// A run id under the output folder, or the path of a run's folder.
    Resume(String),
}

pub struct RunRequest {
    pub start: Start,
    /// Results go into OUTPUT/RUN_ID/.
    pub output_dir: PathBuf,
    /// Set (by Ctrl-C) to stop after the current generation.
    pub interrupt: Arc<AtomicBool>,
}

pub struct RunOutcome {
    pub dir: PathBuf,
    pub result: RunResult,
}

/// Run (or resume) the suite. The result on disk is complete, or says how far it got.
pub fn run(request: RunRequest) -> Result<RunOutcome> {
    let output = request.output_dir;
    match request.start {
        Start::New {
            config,
            scenarios,
            run_id,
        } => {
            if let Some(id) = &run_id {
                check_plain_name("--run-id", id)?;
            }
            RunDir::check_output(&output)?;
            let machine = MachineInfo::collect();
            let session = Session::open(&config.config, &machine)?;
            check_fits(&config, &scenarios, &session)?;
            let dir = RunDir::create(&output, run_id.as_deref(), &config.name)?;
            let targets = resolve_targets(&config.config, &session.device_used)?;
            let mut result = RunResult {
                header: RunHeader::start(KIND, &dir.run_id(), now_rfc3339(), machine),
                config_name: config.name.clone(),
                config_sources: config.sources.clone(),
                config: config.config.clone(),
                planned_scenarios: scenarios.iter().map(|s| s.name.clone()).collect(),
                device: session.device_used.clone(),
                model: session.loaded.info.clone(),
                targets,
                telemetry: session.telemetry.describe(),
                load_phase: session.load_phase.clone(),
                scenarios: Vec::new(),
                grade: crate::targets::grade(&[]),
            };
            dir.save(&mut result).with_context(|| {
                format!(
                    "results folder {}: cannot write the run",
                    dir.path().display()
                )
            })?;
            eprintln!("results: {}", dir.path().display());
            execute(dir, result, session, scenarios, &request.interrupt)
        }
        Start::Resume(id) => {
            let dir = RunDir::resume(&output, &id)?;
            let mut result = RunResult::load(&dir.run_file())?;
            if result.header.status.is_complete() {
                eprintln!("run {} is already complete", result.header.run_id);
                return Ok(RunOutcome {
                    dir: dir.path().to_path_buf(),
                    result,
                });
            }
            let remaining: Vec<Scenario> = plan(&result.config)?
                .into_iter()
                .filter(|s| result.planned_scenarios.contains(&s.name))
                .filter(|s| !result.is_finished(&s.name))
                .collect();
            eprintln!(
                "resuming {}: {} of {} scenarios finished, {} to go",
                result.header.run_id,
                result.scenarios.len(),
                result.planned_scenarios.len(),
                remaining.len()
            );
            let session = Session::open(&result.config, &result.header.machine)?;
            let (was, now) = (&result.model, &session.loaded.info);
            if (&was.name, &was.dtype, &result.device.name)
                != (&now.name, &now.dtype, &session.device_used.name)
            {
                bail!(
                    "--resume {id}: the run measured {} ({}) on {}, but this machine loads {} ({}) on {}; \
                     start a new run instead",
                    was.name, was.dtype, result.device.name,
                    now.name, now.dtype, session.device_used.name
                );
            }
            result.header.status = RunStatus::Running;
            execute(dir, result, session, remaining, &request.interrupt)
        }
    }
}

/// The loaded model on its device, and the telemetry watching it: what every scenario runs on.
struct Session {
    device: candle_core::Device,
    device_used: DeviceUsed,
    loaded: LoadedModel,
    telemetry: Telemetry,
    load_phase: PhaseTelemetry,
}

impl Session {
    fn open(config: &Config, machine: &MachineInfo) -> Result<Session> {
        let selected = device::select(config.device_request()?)?;
        eprintln!("device: {} ({})", selected.name, selected.reason);
        let gpu_name = selected
            .name
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(|i| machine.gpus.iter().find(|g| g.index == i))
            .map(|g| g.name.clone());
        let interval = Duration::from_millis(config.telemetry.interval_ms);
        let telemetry = Telemetry::for_device(&selected.name, interval);
        eprintln!("telemetry: {}", telemetry.describe());
        let spinner = Progress::new(0, "loading the model");
        let before_load = telemetry.checkpoint();
        let loaded = model::load(&config.load_options()?, &selected.device);
        let load_phase = telemetry.between("load", &before_load, &telemetry.checkpoint());
        spinner.finish();
        let loaded = loaded?;
        let info = &loaded.info;
        eprintln!(
            "model: {} [{} {}, {:.0}M params] loaded in {:.2} s",
            info.name,
            info.format,
            info.dtype,
            info.parameters as f64 / 1e6,
            info.load_seconds
        );
        Ok(Session {
            device: selected.device,
            device_used: DeviceUsed {
                name: selected.name,
                reason: selected.reason,
                gpu_name,
            },
            loaded,
            telemetry,
            load_phase,
        })
    }
}

/// Every scenario must fit the model's context and the machine's memory: refuse before
/// measuring anything.
fn check_fits(config: &ResolvedConfig, scenarios: &[Scenario], session: &Session) -> Result<()> {
    let info = &session.loaded.info;
    let context = info.context_length;
    for s in scenarios {
        let needed = s.prompt_tokens as usize + s.output_tokens as usize;
        if needed > context {
            bail!(
                "{}: scenarios.prompt_tokens {} + scenarios.output_tokens {} = {needed} exceeds \
                 the model's context length {context} (scenario {})",
                config.origin(),
                s.prompt_tokens,
                s.output_tokens,
                s.name
            );
        }
        let (batch, prompt, output) = (
            s.batch as usize,
            s.prompt_tokens as usize,
            s.output_tokens as usize,
        );
        crate::engine::memory::check_batch(info, &session.device, batch, prompt, output)
            .with_context(|| format!("{}: scenario {}", config.origin(), s.name))?;
    }
    Ok(())
}

/// The rules a run is graded against, and where they come from.
fn resolve_targets(config: &Config, device: &DeviceUsed) -> Result<TargetsUsed> {
    let t = &config.targets;
    if !t.rules.is_empty() {
        return Ok(TargetsUsed {
            from: "the config's targets.rules".into(),
            rules: t.rules.clone(),
        });
    }
    let (profile, why) = match t.profile.as_str() {
        "none" => {
            return Ok(TargetsUsed {
                from: "none (targets.profile = \"none\")".into(),
                rules: Vec::new(),
            })
        }
        "auto" => match presets::hardware_profile(&device.name, device.gpu_name.as_deref()) {
            Some(p) => (p.to_string(), format!("auto: {}", device.name)),
            None => {
                return Ok(TargetsUsed {
                    from: format!(
                        "none (auto: no hardware profile for {})",
                        device.gpu_name.as_deref().unwrap_or(&device.name)
                    ),
                    rules: Vec::new(),
                })
            }
        },
        name => (name.to_string(), "targets.profile".into()),
    };
    let rules = crate::config::load_preset(&profile)?.config.targets.rules;
    Ok(TargetsUsed {
        from: format!("preset {profile} ({why})"),
        rules,
    })
}

fn execute(
    dir: RunDir,
    mut result: RunResult,
    mut session: Session,
    scenarios: Vec<Scenario>,
    interrupt: &AtomicBool,
) -> Result<RunOutcome> {
    let section = result.config.scenarios.clone();
    let rules: Vec<TargetRule> = result.targets.rules.clone();
    let total = result.planned_scenarios.len();
    let ceiling = Ceiling::here(&result.header.machine, &result.device.name);
    for scenario in &scenarios {
        let position = result.scenarios.len() + 1;
        let bar = Progress::new(
            u64::from(section.warmup_runs + section.measured_runs),
            &format!("[{position}/{total}] {}", scenario.name),
        );
        let mut observer = BarObserver {
            bar: &bar,
            interrupt,
        };
        let clock = Instant::now();
        let measured = measure::measure(
            &mut session.loaded,
            &session.device,
            &session.telemetry,
            scenario,
            &section,
            &rules,
            &mut observer,
        );
        bar.finish();
        let Some(mut scenario_result) = measured? else {
            break;
        };
        scenario_result.roofline =
            roofline(&ceiling, result.model.footprint.as_ref(), &scenario_result);
        eprintln!(
            "[{position}/{total}] {}: {} ({:.1} s)",
            scenario.name,
            summary_words(&scenario_result),
            clock.elapsed().as_secs_f64()
        );
        result.scenarios.push(scenario_result);
        result.grade = crate::targets::grade(result.scenarios.iter().flat_map(|s| &s.targets));
        dir.save(&mut result)?;
    }
    let finished = result
        .planned_scenarios
        .iter()
        .all(|name| result.is_finished(name));
    dir.finish(&mut result, !finished)?;
    Ok(RunOutcome {
        dir: dir.path().to_path_buf(),
        result,
    })
}

/// A scenario's roofline from its median prefill and decode rates (None for a model whose
/// footprint is unknown). Rows that stop early at EOS moved less than this counts.
fn roofline(
    ceiling: &Ceiling,
    footprint: Option<&Footprint>,
    s: &ScenarioResult,
) -> Option<Roofline> {
    let footprint = footprint?;
    let (batch, prompt, output) = (
        u64::from(s.batch),
        u64::from(s.prompt_tokens),
        u64::from(s.output_tokens),
    );
    let seconds = |tokens: u64, rate: Option<&RateSummary>| {
        rate.filter(|r| r.median > 0.0)
            .map_or(0.0, |r| tokens as f64 / r.median)
    };
    let ttft = seconds(batch * prompt, s.prompt_tokens_per_second.as_ref());
    let decode = seconds(
        batch * output.saturating_sub(1),
        s.decode_tokens_per_second.as_ref(),
    );
    Some(ceiling.roofline(footprint, (batch, prompt, output), ttft, decode))
}

struct BarObserver<'a> {
    bar: &'a Progress,
    interrupt: &'a AtomicBool,
}

impl measure::Observer for BarObserver<'_> {
    fn run_done(&mut self, what: &str) {
        self.bar.set_message(what.to_string());
        self.bar.inc(1);
    }

    fn should_stop(&self) -> bool {
        self.interrupt.load(Ordering::SeqCst)
    }
}

fn summary_words(s: &report::ScenarioResult) -> String {
    let ttft = s
        .latencies
        .ttft
        .as_ref()
        .map_or("-".into(), |l| format!("{:.1}", l.p50_ms));
    let decode = s
        .decode_tokens_per_second
        .as_ref()
        .map_or("-".into(), |r| format!("{:.1}", r.mean));
    let met = s.targets.iter().filter(|t| t.met).count();
    format!(
        "TTFT p50 {ttft} ms, decode {decode} tok/s, targets {met}/{}",
        s.targets.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_the_cross_product_batch_first() {
        let mut config = Config::default();
        config.scenarios.batch_sizes = vec![1, 8];
        config.scenarios.prompt_tokens = vec![32, 128];
        config.scenarios.output_tokens = vec![64];
        let names: Vec<String> = plan(&config).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["b1_p32_o64", "b1_p128_o64", "b8_p32_o64", "b8_p128_o64"]
        );
        let re = Regex::new("^b8_").unwrap();
        let chosen = select(&config, Some(&re)).unwrap();
        assert_eq!(chosen.len(), 2);
        let none = Regex::new("b64").unwrap();
        let mut many = Config::default();
        many.scenarios.batch_sizes = (1..=100).collect();
        many.scenarios.prompt_tokens = (1..=100).collect();
        many.scenarios.output_tokens = vec![1, 2];
        let err = plan(&many).unwrap_err().to_string();
        assert!(
            err.contains("100 batch sizes × 100 prompt lengths × 2 output lengths = 20000"),
            "{err}"
        );
        let err = select(&config, Some(&none)).unwrap_err().to_string();
        assert!(err.contains("b64") && err.contains("b1_p32_o64"), "{err}");
    }
}

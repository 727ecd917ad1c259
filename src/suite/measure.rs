//! One scenario measured: warm-up runs apart, then measured runs whose every request's TTFT,
//! inter-token gaps, TPOT and end-to-end latency go into histograms.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::Device;

use super::Scenario;
use crate::config::{ScenarioSection, TargetRule};
use crate::engine::{self, Generation, GenerationParams, SamplingParams};
use crate::metrics::Reading;
use crate::metrics::{LatencyRecorders, RateSummary};
use crate::model::LoadedModel;
use crate::report::{EnergySummary, ScenarioResult, WarmupSummary};
use crate::telemetry::{add_readings, host_memory, Checkpoint, Telemetry};
use crate::workload::synthetic;

/// What the caller sees between runs: progress, and whether to stop.
pub trait Observer {
    /// After each warm-up or measured run: a short line on it.
    fn run_done(&mut self, what: &str);
    /// Checked before each run: true stops the scenario (its runs so far are dropped).
    fn should_stop(&self) -> bool;
}

/// Per-request latencies and per-run rates of a scenario's measured runs.
#[derive(Default)]
struct Recorders {
    latencies: LatencyRecorders,
    decode_rates: Vec<f64>,
    e2e_rates: Vec<f64>,
    prompt_rates: Vec<f64>,
    requests: u64,
    generated_tokens: u64,
}

impl Recorders {
    /// Every row of a batch is one request; its j-th token arrived at step j.
    fn add(&mut self, g: &Generation) -> Result<()> {
        let steps = &g.timeline.step_times;
        for row_tokens in &g.tokens {
            self.requests += 1;
            let n = row_tokens.len().min(steps.len());
            if n == 0 {
                continue; // EOS as the very first token: nothing was generated
            }
            let times = &steps[..n];
            let l = &mut self.latencies;
            l.ttft.record(times[0])?;
            l.e2e.record(times[n - 1])?;
            crate::live::request(Some((Some(times[0]), times[n - 1])));
            for pair in times.windows(2) {
                l.itl.record(pair[1] - pair[0])?;
            }
            if n > 1 {
                l.tpot.record((times[n - 1] - times[0]) / (n as u32 - 1))?;
            }
        }
        let t = &g.timeline;
        self.generated_tokens += t.total_tokens() as u64;
        self.decode_rates.extend(t.decode_tokens_per_second());
        let e2e = t.end_to_end().as_secs_f64();
        if e2e > 0.0 {
            self.e2e_rates.push(t.total_tokens() as f64 / e2e);
        }
        self.prompt_rates.extend(g.prefill_tokens_per_second());
        Ok(())
    }
}

/// Measure one scenario. Ok(None) when the observer asked to stop before it finished.
#[allow(clippy::too_many_arguments)]
pub fn measure(
    loaded: &mut LoadedModel,
    device: &Device,
    telemetry: &Telemetry,
    scenario: &Scenario,
    section: &ScenarioSection,
    rules: &[TargetRule],
    observer: &mut dyn Observer,
) -> Result<Option<ScenarioResult>> {
    let started_at = super::now_rfc3339();
    let clock = Instant::now();
    let prompt = synthetic::prompt_of_length(&loaded.tokenizer, scenario.prompt_tokens as usize)?;
    let prompts = vec![prompt; scenario.batch as usize];
    let params = GenerationParams {
        max_tokens: scenario.output_tokens as usize,
        sampling: SamplingParams {
            temperature: section.temperature,
            top_p: section.top_p,
            seed: section.seed,
        },
        ignore_eos: section.ignore_eos,
        eos_token_ids: loaded.tokenizer.eos_token_ids.clone(),
        context_length: loaded.info.context_length,
    };
    let peak_reset = host_memory::reset_peak();
    // `on_step` sees every step; the energy split between prefill and decode hangs on it.
    let mut generate = |on_step: &mut dyn FnMut(&[Option<u32>])| {
        engine::generate(loaded.model.as_mut(), device, &prompts, &params, on_step)
            .with_context(|| format!("scenario {}", scenario.name))
    };
    let mut phases = Vec::new();
    let warmup_start = telemetry.checkpoint();

    let mut warmup = WarmupSummary {
        runs: section.warmup_runs,
        ..WarmupSummary::default()
    };
    for i in 0..section.warmup_runs {
        if observer.should_stop() {
            return Ok(None);
        }
        let g = generate(&mut |_| {})?;
        let ttft = ms(g.timeline.ttft().unwrap_or_default());
        let decode = g.timeline.decode_tokens_per_second();
        warmup.ttft_ms.push(ttft);
        warmup.decode_tokens_per_second.push(decode);
        observer.run_done(&format!(
            "warm-up {}/{}: TTFT {ttft:.1} ms{}",
            i + 1,
            section.warmup_runs,
            rate_words(decode)
        ));
    }

    if section.warmup_runs > 0 {
        phases.push(telemetry.between("warm-up", &warmup_start, &telemetry.checkpoint()));
    }

    let mut rec = Recorders::default();
    let mut split = EnergySplit::default();
    let measured_start = telemetry.checkpoint();
    for i in 0..section.measured_runs {
        if observer.should_stop() {
            return Ok(None);
        }
        let run_start = telemetry.checkpoint();
        let mut first_token: Option<Checkpoint> = None;
        let g = generate(&mut |_| {
            if first_token.is_none() {
                first_token = Some(telemetry.checkpoint());
            }
        })?;
        let run_end = telemetry.checkpoint();
        if let Some(first) = &first_token {
            split.add(telemetry, &run_start, first, &run_end);
        }
        rec.add(&g)?;
        observer.run_done(&format!(
            "run {}/{}: TTFT {:.1} ms{}",
            i + 1,
            section.measured_runs,
            ms(g.timeline.ttft().unwrap_or_default()),
            rate_words(g.timeline.decode_tokens_per_second())
        ));
    }

    let measured = telemetry.between("measured", &measured_start, &telemetry.checkpoint());
    let energy = split.summary(&measured, rec.generated_tokens);
    let peak_device_memory_bytes = measured.gpu_memory_peak_bytes.clone();
    phases.push(measured);
    let peak_host_rss_bytes = match (peak_reset, host_memory::peak_rss()) {
        (Ok(()), reading) => reading,
        (Err(why), Reading::Measured { value }) => Reading::Estimated {
            value,
            method: format!("peak of the whole process, not this scenario ({why})"),
        },
        (Err(_), other) => other,
    };
    let mut result = ScenarioResult {
        name: scenario.name.clone(),
        batch: scenario.batch,
        prompt_tokens: scenario.prompt_tokens,
        output_tokens: scenario.output_tokens,
        started_at,
        duration_s: clock.elapsed().as_secs_f64(),
        warmup,
        measured_runs: section.measured_runs,
        requests: rec.requests,
        generated_tokens: rec.generated_tokens,
        latencies: rec.latencies.summaries(),
        decode_tokens_per_second: RateSummary::from_runs(rec.decode_rates),
        e2e_tokens_per_second: RateSummary::from_runs(rec.e2e_rates),
        prompt_tokens_per_second: RateSummary::from_runs(rec.prompt_rates),
        peak_host_rss_bytes,
        peak_device_memory_bytes,
        energy,
        phases,
        targets: Vec::new(),
        histograms: rec.latencies.histograms(),
        roofline: None,
    };
    result.targets =
        crate::targets::evaluate(rules, scenario.batch, scenario.prompt_tokens, |metric| {
            result.metric(metric)
        });
    Ok(Some(result))
}

/// Prefill and decode energy summed over the measured runs, GPU and CPU.
struct EnergySplit {
    prefill_gpu: Reading<f64>,
    prefill_cpu: Reading<f64>,
    decode_gpu: Reading<f64>,
    decode_cpu: Reading<f64>,
}

impl Default for EnergySplit {
    fn default() -> Self {
        let zero = || Reading::Measured { value: 0.0 };
        EnergySplit {
            prefill_gpu: zero(),
            prefill_cpu: zero(),
            decode_gpu: zero(),
            decode_cpu: zero(),
        }
    }
}

impl EnergySplit {
    fn add(&mut self, t: &Telemetry, start: &Checkpoint, first: &Checkpoint, end: &Checkpoint) {
        let prefill = t.between("prefill", start, first);
        let decode = t.between("decode", first, end);
        self.prefill_gpu = add_readings(&self.prefill_gpu, &prefill.gpu_energy_joules);
        self.prefill_cpu = add_readings(&self.prefill_cpu, &prefill.cpu_energy_joules);
        self.decode_gpu = add_readings(&self.decode_gpu, &decode.gpu_energy_joules);
        self.decode_cpu = add_readings(&self.decode_cpu, &decode.cpu_energy_joules);
    }

    /// Per-token figures from the GPU's energy when there is one, else the CPU's.
    fn summary(self, measured: &crate::telemetry::PhaseTelemetry, tokens: u64) -> EnergySummary {
        let (gpu, cpu) = (&measured.gpu_energy_joules, &measured.cpu_energy_joules);
        let (source, total, prefill, decode) = if gpu.value().is_some() {
            ("gpu", gpu.clone(), self.prefill_gpu, self.decode_gpu)
        } else if cpu.value().is_some() {
            (
                "cpu package (RAPL)",
                cpu.clone(),
                self.prefill_cpu,
                self.decode_cpu,
            )
        } else {
            let why = |r: &Reading<f64>| match r {
                Reading::Unavailable { reason } => reason.clone(),
                _ => String::new(),
            };
            let none = Reading::unavailable(format!("GPU: {}; CPU: {}", why(gpu), why(cpu)));
            ("none", none.clone(), none.clone(), none)
        };
        let tokens = tokens as f64;
        EnergySummary {
            source: source.into(),
            gpu_joules: gpu.clone(),
            cpu_joules: cpu.clone(),
            prefill_joules: prefill,
            decode_joules: decode,
            joules_per_token: total.map(|j| j / tokens),
            tokens_per_joule: total.map(|j| tokens / j),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rate_words(decode: Option<f64>) -> String {
    decode.map_or(String::new(), |v| format!(", decode {v:.1} tok/s"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{FinishReason, Timeline};

    fn generation(tokens: Vec<Vec<u32>>, steps_ms: &[u64]) -> Generation {
        let mut timeline = Timeline::default();
        for (i, &t) in steps_ms.iter().enumerate() {
            let live = tokens.iter().filter(|r| r.len() > i).count();
            timeline.push(Duration::from_millis(t), live);
        }
        Generation {
            finish: vec![FinishReason::MaxTokens; tokens.len()],
            tokens,
            prompt_tokens: 10,
            timeline,
        }
    }

    #[test]
    fn each_row_is_a_request_with_its_own_end() {
        // Two rows: row 0 gets 4 tokens (steps at 100, 120, 140, 160 ms), row 1 stops
        // after 2 (EOS): its end-to-end is 120 ms and it has one gap.
        let g = generation(vec![vec![1, 2, 3, 4], vec![5, 6]], &[100, 120, 140, 160]);
        let mut rec = Recorders::default();
        rec.add(&g).unwrap();
        assert_eq!(rec.requests, 2);
        assert_eq!(rec.generated_tokens, 6);
        // Histogram values carry 3 significant digits.
        let close = |a: f64, b: f64| (a - b).abs() <= b * 1e-3;
        let ttft = rec.latencies.ttft.summary().unwrap();
        assert!(ttft.count == 2 && close(ttft.p50_ms, 100.0), "{ttft:?}");
        let e2e = rec.latencies.e2e.summary().unwrap();
        assert!(
            close(e2e.min_ms, 120.0) && close(e2e.max_ms, 160.0),
            "{e2e:?}"
        );
        let itl = rec.latencies.itl.summary().unwrap();
        assert!(itl.count == 4 && close(itl.max_ms, 20.0), "{itl:?}");
        let tpot = rec.latencies.tpot.summary().unwrap();
        assert!(tpot.count == 2 && close(tpot.min_ms, 20.0) && close(tpot.max_ms, 20.0));
        // Decode: 4 tokens after the first step (3 + 1) in 60 ms.
        assert!((rec.decode_rates[0] - 4.0 / 0.060).abs() < 1e-9);
        // End to end: 6 tokens in 160 ms; prompt: 2 rows x 10 tokens in 100 ms.
        assert!((rec.e2e_rates[0] - 6.0 / 0.160).abs() < 1e-9);
        assert!((rec.prompt_rates[0] - 200.0).abs() < 1e-9);
    }
}

//! `inferbench profile`: one prefill and N greedy decode steps with every op of the forward
//! pass timed (`model::op_timer`), grouped by kind, beside the same passes unprofiled so the
//! cost of profiling itself is stated; and a Chrome trace (Perfetto, chrome://tracing) of the
//! ops on a timeline.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use candle_core::{Device, Tensor, D};
use serde_json::json;

use crate::model::op_timer::{self, OpKind, OpSpan};
use crate::model::CausalLm;

/// What to profile: B rows of a P-token prompt, then `steps` decode steps.
#[derive(Debug, Clone, Copy)]
pub struct ProfileRequest {
    pub batch: usize,
    pub steps: usize,
    /// Untimed passes first, then this many unprofiled and profiled passes, alternated.
    pub warmup: usize,
    pub rounds: usize,
}

/// One pass: its phases' wall times, and (profiled) its ops.
#[derive(Debug, Clone)]
struct Pass {
    prefill: Duration,
    steps: Vec<Duration>,
    /// Where each phase started, from the pass's origin: the prefill, then each step.
    phase_starts: Vec<Duration>,
    spans: Vec<OpSpan>,
}

impl Pass {
    fn decode(&self) -> Duration {
        self.steps.iter().sum()
    }
}

/// The profile: the passes with and without timing, and the profiled pass's ops.
pub struct Profile {
    pub batch: usize,
    pub prompt_tokens: usize,
    pub steps: usize,
    plain: Vec<Pass>,
    profiled: Vec<Pass>,
}

/// Run the passes: warm-up, then plain and profiled passes alternated.
pub fn run(
    model: &mut dyn CausalLm,
    device: &Device,
    prompt: &[u32],
    request: ProfileRequest,
) -> Result<Profile> {
    if prompt.is_empty() || request.batch == 0 || request.steps == 0 || request.rounds == 0 {
        bail!("a profile needs a prompt, at least one row, one decode step and one round");
    }
    let rows: Vec<u32> = prompt.repeat(request.batch);
    let tokens = Tensor::from_vec(rows, (request.batch, prompt.len()), device)?;
    for _ in 0..request.warmup {
        pass(model, device, &tokens, request.steps, false)?;
    }
    let (mut plain, mut profiled) = (Vec::new(), Vec::new());
    for _ in 0..request.rounds {
        plain.push(pass(model, device, &tokens, request.steps, false)?);
        profiled.push(pass(model, device, &tokens, request.steps, true)?);
    }
    Ok(Profile {
        batch: request.batch,
        prompt_tokens: prompt.len(),
        steps: request.steps,
        plain,
        profiled,
    })
}

/// Prefill, then `steps` greedy decode steps; with `profiled`, every op timed.
fn pass(
    model: &mut dyn CausalLm,
    device: &Device,
    tokens: &Tensor,
    steps: usize,
    profiled: bool,
) -> Result<Pass> {
    model.clear_cache();
    let (batch, prompt) = tokens.dims2()?;
    crate::device::synchronize(device)?;
    let origin = Instant::now();
    if profiled {
        op_timer::start(origin, device);
    }
    let result = (|| -> Result<Pass> {
        let mut phase_starts = vec![Duration::ZERO];
        let logits = model.forward(tokens, 0)?;
        let mut next = greedy(&logits, batch)?;
        let prefill = origin.elapsed();
        let mut step_times = Vec::with_capacity(steps);
        for step in 0..steps {
            let started = Instant::now();
            phase_starts.push(started - origin);
            let input = Tensor::from_vec(next, (batch, 1), device)?;
            let logits = model.forward(&input, prompt + step)?;
            next = greedy(&logits, batch)?;
            step_times.push(started.elapsed());
        }
        Ok(Pass {
            prefill,
            steps: step_times,
            phase_starts,
            spans: Vec::new(),
        })
    })();
    let spans = if profiled {
        op_timer::stop()
    } else {
        Vec::new()
    };
    let mut pass = result?;
    pass.spans = spans;
    Ok(pass)
}

/// The next token of each row: the argmax of its logits, brought to the host (timed as
/// sampling).
fn greedy(logits: &Tensor, batch: usize) -> Result<Vec<u32>> {
    let ids = op_timer::timed(
        OpKind::Sampling,
        "argmax",
        |_: &Vec<u32>| op_timer::tensor_bytes(logits),
        || logits.argmax(D::Minus1)?.to_vec1::<u32>(),
    )?;
    if ids.len() != batch {
        bail!(
            "the model gave {} rows of logits for {batch} rows",
            ids.len()
        );
    }
    Ok(ids)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One row of a phase's table: the ops of one kind (or one name).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpRow {
    pub label: String,
    /// Ops per pass (prefill) or per step (decode).
    pub count: f64,
    /// Milliseconds per pass or per step.
    pub ms: f64,
    pub share: f64,
    /// Bytes moved over the time, when the ops say what they moved.
    pub gb_per_s: Option<f64>,
}

/// Group the ops of one phase (`in_phase` picks them) by `key`, per `per` passes or steps,
/// beside the phase's time: the rows largest first, then the time no op accounts for.
fn rows(
    spans: &[&OpSpan],
    per: f64,
    phase_time: Duration,
    key: impl Fn(&OpSpan) -> String,
) -> Vec<OpRow> {
    let mut groups: BTreeMap<String, (usize, Duration, u64)> = BTreeMap::new();
    for s in spans {
        let g = groups.entry(key(s)).or_default();
        g.0 += 1;
        g.1 += s.duration;
        g.2 += s.bytes;
    }
    let total = phase_time.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut out: Vec<OpRow> = groups
        .into_iter()
        .map(|(label, (count, time, bytes))| OpRow {
            label,
            count: count as f64 / per,
            ms: ms(time) / per,
            share: time.as_secs_f64() / total,
            gb_per_s: (bytes > 0 && time > Duration::ZERO)
                .then(|| bytes as f64 / time.as_secs_f64() / 1e9),
        })
        .collect();
    out.sort_by(|a, b| b.ms.total_cmp(&a.ms).then(a.label.cmp(&b.label)));
    let accounted: Duration = spans.iter().map(|s| s.duration).sum();
    let rest = phase_time.saturating_sub(accounted);
    out.push(OpRow {
        label: "(between ops)".into(),
        count: 0.0,
        ms: ms(rest) / per,
        share: rest.as_secs_f64() / total,
        gb_per_s: None,
    });
    out
}

impl Profile {
    /// The profiled pass the tables and trace show: the one with the median decode time.
    fn shown(&self) -> &Pass {
        let mut order: Vec<&Pass> = self.profiled.iter().collect();
        order.sort_by_key(|p| p.decode());
        order[order.len() / 2]
    }

    fn split(&self) -> (Vec<&OpSpan>, Vec<&OpSpan>) {
        let pass = self.shown();
        let decode_start = pass.phase_starts.get(1).copied().unwrap_or(Duration::MAX);
        pass.spans.iter().partition(|s| s.start < decode_start)
    }

    /// Prefill rows by kind (per pass) and decode rows by kind (per step).
    pub fn by_kind(&self) -> (Vec<OpRow>, Vec<OpRow>) {
        let (prefill, decode) = self.split();
        let pass = self.shown();
        let kind = |s: &OpSpan| s.kind.label().to_string();
        (
            rows(&prefill, 1.0, pass.prefill, kind),
            rows(&decode, self.steps as f64, pass.decode(), kind),
        )
    }

    /// Decode rows by op name ("matmul ffn_down"), per step: where a step's time goes.
    pub fn decode_by_op(&self) -> Vec<OpRow> {
        let (_, decode) = self.split();
        rows(&decode, self.steps as f64, self.shown().decode(), |s| {
            format!("{} {}", s.kind.label(), s.name)
        })
    }

    /// Median prefill and decode step times, unprofiled and profiled.
    pub fn overhead(&self) -> [(Duration, Duration); 2] {
        let phase = |passes: &[Pass]| {
            let prefill = median(passes.iter().map(|p| p.prefill).collect());
            let step = median(
                passes
                    .iter()
                    .map(|p| p.decode() / self.steps as u32)
                    .collect(),
            );
            (prefill, step)
        };
        [phase(&self.plain), phase(&self.profiled)]
    }

    /// The profiled pass shown: its prefill time and its mean decode step.
    pub fn shown_times(&self) -> (Duration, Duration) {
        let pass = self.shown();
        (pass.prefill, pass.decode() / self.steps as u32)
    }

    /// Passes of each kind, unprofiled and profiled.
    pub fn rounds(&self) -> usize {
        self.plain.len()
    }

    /// The Chrome trace (JSON object format): the phases and every op of the profiled pass
    /// shown, in microseconds, nested on one thread.
    pub fn chrome_trace(&self, meta: serde_json::Value) -> serde_json::Value {
        let pass = self.shown();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mut events = Vec::new();
        let phase_ends = pass
            .phase_starts
            .iter()
            .zip(std::iter::once(pass.prefill).chain(pass.steps.iter().copied()));
        for (i, (start, duration)) in phase_ends.enumerate() {
            let name = if i == 0 {
                format!("prefill ({} tokens)", self.prompt_tokens)
            } else {
                format!("decode step {i}")
            };
            events.push(
                json!({"name": name, "cat": "phase", "ph": "X", "pid": 1, "tid": 1,
                "ts": us(*start), "dur": us(duration)}),
            );
        }
        for s in &pass.spans {
            events.push(json!({"name": format!("{} {}", s.kind.label(), s.name),
                "cat": s.kind.label(), "ph": "X", "pid": 1, "tid": 1,
                "ts": us(s.start), "dur": us(s.duration), "args": {"bytes": s.bytes}}));
        }
        json!({"traceEvents": events, "displayTimeUnit": "ms", "otherData": meta})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: OpKind, name: &'static str, start_ms: u64, ms: u64, bytes: u64) -> OpSpan {
        OpSpan {
            kind,
            name,
            start: Duration::from_millis(start_ms),
            duration: Duration::from_millis(ms),
            bytes,
        }
    }

    #[test]
    fn rows_group_by_kind_largest_first_with_the_time_between_ops() {
        let spans = [
            span(OpKind::Matmul, "attn_q", 0, 4, 8_000_000),
            span(OpKind::Softmax, "softmax", 4, 1, 0),
            span(OpKind::Matmul, "ffn_up", 5, 4, 8_000_000),
        ];
        let refs: Vec<&OpSpan> = spans.iter().collect();
        // Two steps of 6 ms each: 12 ms in all, 9 of them in ops.
        let r = rows(&refs, 2.0, Duration::from_millis(12), |s| {
            s.kind.label().to_string()
        });
        assert_eq!(r[0].label, "matmul");
        assert_eq!((r[0].count, r[0].ms), (1.0, 4.0));
        assert!((r[0].share - 8.0 / 12.0).abs() < 1e-12);
        // 16 MB in 8 ms.
        assert!((r[0].gb_per_s.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!((r[1].label.as_str(), r[1].gb_per_s), ("softmax", None));
        let between = r.last().unwrap();
        assert_eq!(between.label, "(between ops)");
        assert!((between.ms - 1.5).abs() < 1e-9);
    }
}

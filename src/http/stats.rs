//! Folds request records into a scenario's figures as they arrive: HDR histograms and
//! counters only, so memory stays flat however long a run goes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::{ErrorClass, RequestRecord};
use crate::metrics::{Latencies, LatencyHistograms, LatencyRecorders, TokenLengths};
use crate::model::TextTokenizer;
use crate::report::http::{Goodput, Slo};

/// How output tokens are counted when the server gives no usage.
pub struct TokenCounting<'a> {
    pub tokenizer: Option<&'a TextTokenizer>,
    /// Prompt token counts by prompt index, when a tokenizer gave them.
    pub prompt_tokens: &'a [Option<u64>],
    /// Tokens each prompt asks for, by prompt index.
    pub max_tokens: &'a [u32],
}

/// Distinct failure messages kept per error class.
const MAX_EXAMPLES: usize = 5;

#[derive(Default)]
pub struct Aggregator {
    latencies: LatencyRecorders,
    pub requests: u64,
    pub succeeded: u64,
    errors: BTreeMap<ErrorClass, u64>,
    status_codes: BTreeMap<u16, u64>,
    examples: BTreeMap<ErrorClass, Vec<String>>,
    input_tokens: u64,
    input_known: bool,
    pub output_tokens: u64,
    /// Per successful request: tokens sent, asked for and generated.
    lengths: TokenLengths,
    /// Prompt tokens the server says it served from its cache, and whether any answer said.
    cached_prompt_tokens: Option<u64>,
    good: u64,
    first_sent: Option<Duration>,
    last_end: Duration,
    /// How tokens were counted, for the report: "server usage", "tokenizer", "stream events".
    pub counted_by: BTreeMap<&'static str, u64>,
}

/// The scenario's figures, ready for the result.
pub struct Figures {
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    pub status_codes: BTreeMap<String, u64>,
    pub error_examples: BTreeMap<String, Vec<String>>,
    pub latencies: Latencies,
    pub histograms: LatencyHistograms,
    pub duration: Duration,
    pub input_tokens: u64,
    pub input_known: bool,
    pub output_tokens: u64,
    pub token_lengths: Option<TokenLengths>,
    pub cached_prompt_tokens: Option<u64>,
    pub good: u64,
}

impl Aggregator {
    pub fn new() -> Self {
        Aggregator {
            input_known: true,
            ..Default::default()
        }
    }

    /// Count one request; returns the output tokens it counted for it.
    pub fn add(&mut self, record: &RequestRecord, counting: &TokenCounting, slo: &[Slo]) -> u64 {
        self.requests += 1;
        let sent = record.sent_at;
        self.first_sent = Some(self.first_sent.map_or(sent, |f| f.min(sent)));
        self.last_end = self.last_end.max(record.ended_at());
        match &record.outcome {
            Err(failure) => {
                *self.errors.entry(failure.class).or_default() += 1;
                if let Some(code) = failure.status {
                    *self.status_codes.entry(code).or_default() += 1;
                }
                let examples = self.examples.entry(failure.class).or_default();
                if examples.len() < MAX_EXAMPLES && !examples.contains(&failure.message) {
                    examples.push(failure.message.clone());
                }
                0
            }
            Ok(s) => {
                self.succeeded += 1;
                let output = match (s.usage.completion_tokens, &s.text_for_counting) {
                    (Some(n), _) => {
                        *self.counted_by.entry("server usage").or_default() += 1;
                        Some(n)
                    }
                    (None, Some(text)) if counting.tokenizer.is_some() => {
                        *self.counted_by.entry("tokenizer").or_default() += 1;
                        counting
                            .tokenizer
                            .and_then(|t| t.encode_plain(text).ok())
                            .map(|ids| ids.len() as u64)
                    }
                    _ if s.text_events > 0 => {
                        *self.counted_by.entry("stream events").or_default() += 1;
                        Some(s.text_events)
                    }
                    _ => None,
                };
                let output = output.unwrap_or(0);
                self.output_tokens += output;
                self.lengths.output.record(output);
                if let Some(&asked) = counting.max_tokens.get(record.prompt_index) {
                    self.lengths.requested_output.record(u64::from(asked));
                }
                match s.usage.prompt_tokens.or_else(|| {
                    counting
                        .prompt_tokens
                        .get(record.prompt_index)
                        .copied()
                        .flatten()
                }) {
                    Some(n) => {
                        self.input_tokens += n;
                        self.lengths.input.record(n);
                    }
                    None => self.input_known = false,
                }
                if let Some(cached) = s.usage.cached_prompt_tokens {
                    *self.cached_prompt_tokens.get_or_insert(0) += cached;
                }
                let recorders = &mut self.latencies;
                let _ = recorders.e2e.record(s.e2e);
                // Text arrivals: the first (TTFT) and every later one; ITL is their gaps.
                let texts: Vec<Duration> = s.ttft.iter().chain(&s.arrivals).copied().collect();
                let gaps: Vec<Duration> = texts
                    .windows(2)
                    .map(|w| w[1].saturating_sub(w[0]))
                    .collect();
                for &gap in &gaps {
                    let _ = recorders.itl.record(gap);
                }
                let tpot = match s.ttft {
                    Some(ttft) if output > 1 => {
                        Some((s.e2e.saturating_sub(ttft)).div_f64((output - 1) as f64))
                    }
                    _ => None,
                };
                if let Some(ttft) = s.ttft {
                    let _ = recorders.ttft.record(ttft);
                }
                if let Some(t) = tpot {
                    let _ = recorders.tpot.record(t);
                }
                let meets = |metric: &str, value: Option<Duration>| {
                    slo.iter()
                        .filter(|o| o.metric == metric)
                        .all(|o| value.is_some_and(|v| v.as_secs_f64() * 1e3 <= o.max_ms))
                };
                let worst_itl = gaps
                    .iter()
                    .copied()
                    .max()
                    .or(s.ttft.map(|_| Duration::ZERO));
                // An answer with no text (EOS first) made its user wait until the end.
                if meets("ttft", s.ttft.or(Some(s.e2e)))
                    && meets("tpot", tpot.or(s.ttft.map(|_| Duration::ZERO)))
                    && meets("itl", worst_itl)
                    && meets("e2e", Some(s.e2e))
                {
                    self.good += 1;
                }
                output
            }
        }
    }

    pub fn figures(&self) -> Figures {
        let name = |c: &ErrorClass| c.name().to_string();
        Figures {
            requests: self.requests,
            succeeded: self.succeeded,
            failed: self.requests - self.succeeded,
            errors: self.errors.iter().map(|(c, n)| (name(c), *n)).collect(),
            status_codes: self
                .status_codes
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            error_examples: self
                .examples
                .iter()
                .map(|(c, m)| (name(c), m.clone()))
                .collect(),
            latencies: self.latencies.summaries(),
            histograms: self.latencies.histograms(),
            duration: self
                .last_end
                .saturating_sub(self.first_sent.unwrap_or_default()),
            input_tokens: self.input_tokens,
            input_known: self.input_known && self.succeeded > 0,
            output_tokens: self.output_tokens,
            token_lengths: (self.succeeded > 0).then(|| self.lengths.clone()),
            cached_prompt_tokens: self.cached_prompt_tokens,
            good: self.good,
        }
    }

    /// Goodput, when there are SLOs to count against.
    pub fn goodput(&self, slo: &[Slo], seconds: f64) -> Option<Goodput> {
        (!slo.is_empty() && self.requests > 0).then(|| Goodput {
            requests_per_second: if seconds > 0.0 {
                self.good as f64 / seconds
            } else {
                0.0
            },
            fraction: self.good as f64 / self.requests as f64,
        })
    }
}

/// Parse `--slo ttft=200ms,tpot=50ms`.
pub fn parse_slo(text: &str) -> anyhow::Result<Vec<Slo>> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|part| {
            let (metric, value) = part.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--slo {part:?}: expected METRIC=DURATION, e.g. ttft=200ms")
            })?;
            let metric = metric.trim().to_lowercase();
            if !["ttft", "tpot", "itl", "e2e"].contains(&metric.as_str()) {
                anyhow::bail!("--slo {part:?}: metric must be ttft, tpot, itl or e2e");
            }
            let d = humantime::parse_duration(value.trim()).map_err(|e| {
                anyhow::anyhow!("--slo {part:?}: {e} (write a duration like 200ms or 1.5s)")
            })?;
            Ok(Slo {
                metric,
                max_ms: d.as_secs_f64() * 1e3,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::backend::Usage;
    use super::super::client::{Failure, Success};
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn ok(sent: u64, ttft: u64, arrivals: &[u64], e2e: u64, tokens: u64) -> RequestRecord {
        RequestRecord {
            scheduled_at: ms(sent),
            sent_at: ms(sent),
            prompt_index: 0,
            outcome: Ok(Success {
                ttft: Some(ms(ttft)),
                arrivals: arrivals.iter().map(|&a| ms(a)).collect(),
                e2e: ms(e2e),
                usage: Usage {
                    prompt_tokens: Some(10),
                    completion_tokens: Some(tokens),
                    cached_prompt_tokens: (tokens > 3).then_some(4),
                },
                text_events: tokens,
                text_for_counting: None,
            }),
        }
    }

    #[test]
    fn latencies_tokens_errors_and_goodput() {
        let slo = parse_slo("ttft=100ms,tpot=20ms").unwrap();
        let counting = TokenCounting {
            tokenizer: None,
            prompt_tokens: &[],
            max_tokens: &[8],
        };
        let mut a = Aggregator::new();
        // TTFT 50 ms, then 4 more tokens 10 ms apart: TPOT 10 ms; good.
        a.add(&ok(0, 50, &[60, 70, 80, 90], 90, 5), &counting, &slo);
        // TTFT 150 ms: misses the TTFT objective.
        a.add(&ok(10, 150, &[200], 200, 2), &counting, &slo);
        a.add(
            &RequestRecord {
                scheduled_at: ms(20),
                sent_at: ms(20),
                prompt_index: 0,
                outcome: Err(Failure {
                    class: ErrorClass::HttpStatus,
                    status: Some(503),
                    message: "HTTP 503".into(),
                    after: ms(5),
                }),
            },
            &counting,
            &slo,
        );
        let f = a.figures();
        assert_eq!((f.requests, f.succeeded, f.failed), (3, 2, 1));
        assert_eq!(f.errors["http_status"], 1);
        assert_eq!(f.status_codes["503"], 1);
        assert_eq!((f.input_tokens, f.output_tokens), (20, 7));
        assert_eq!(f.duration, ms(210));
        let lengths = f.token_lengths.unwrap();
        assert_eq!((lengths.output.min, lengths.output.max), (2, 5));
        assert_eq!((lengths.input.count, lengths.input.sum), (2, 20));
        assert_eq!(lengths.requested_output.sum, 16);
        assert_eq!(
            f.cached_prompt_tokens,
            Some(4),
            "only the first answer said"
        );
        assert_eq!(f.latencies.itl.as_ref().unwrap().count, 5);
        assert!((f.latencies.tpot.as_ref().unwrap().min_ms - 10.0).abs() < 0.1);
        let g = a.goodput(&slo, 1.0).unwrap();
        assert_eq!(a.good, 1);
        assert!((g.fraction - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn slo_syntax() {
        assert_eq!(parse_slo("ttft=200ms, e2e=1.5s").unwrap()[1].max_ms, 1500.0);
        assert!(parse_slo("ttft").is_err());
        assert!(parse_slo("speed=3ms").is_err());
        assert!(parse_slo("ttft=fast").is_err());
    }
}

//! What the live page shows, rebuilt once a second: the current step and its progress, a
//! time series of 1-second windows (finished/s, failures, TTFT and E2E percentiles), the
//! finished scenarios from the run's own run.json with their status colour, alerts, and the
//! comparison against the baseline. The page only draws it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::alerts::{share_over, Alert, Alerts, COOLDOWN};
use crate::html::report::AnyRun;
use crate::html::status::{self, Status};
use crate::live::Feed;
use crate::regress::{self, CompareInput, Verdict};
use crate::results::RUN_FILE;

/// Windows kept for the charts: ten minutes.
const KEEP_POINTS: usize = 600;

#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub t_s: f64,
    pub per_second: f64,
    pub failed: u64,
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p95_ms: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub e2e_p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub name: String,
    pub status: Status,
    pub status_word: &'static str,
    pub cells: Vec<String>,
    /// What an alert says when the row is not green.
    #[serde(skip)]
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComparisonRow {
    pub benchmark: String,
    pub metric: String,
    pub change: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComparisonView {
    pub verdict: Verdict,
    pub summary: String,
    pub rows: Vec<ComparisonRow>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Snapshot {
    pub title: String,
    pub run_id: Option<String>,
    pub kind: Option<String>,
    pub status: String,
    pub step: String,
    pub position: u64,
    pub total: u64,
    pub step_elapsed_s: f64,
    pub finished_total: u64,
    pub failed_total: u64,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Row>,
    pub series: Vec<Point>,
    pub alerts: Vec<Alert>,
    pub comparison: Option<ComparisonView>,
    pub comparison_note: Option<String>,
    pub files: bool,
}

pub struct Sampler {
    feed: &'static Feed,
    title: String,
    baseline: Option<PathBuf>,
    started: Instant,
    series: VecDeque<Point>,
    alerts: Alerts,
    finished_total: u64,
    failed_total: u64,
    /// run.json's updated_at when last read, and what was made of it.
    seen: Option<String>,
    run: RunView,
    alerted_rows: Vec<String>,
}

#[derive(Default)]
struct RunView {
    run_id: Option<String>,
    kind: Option<String>,
    status: String,
    columns: Vec<&'static str>,
    rows: Vec<Row>,
    slo: Vec<(String, f64)>,
    comparison: Option<ComparisonView>,
    comparison_note: Option<String>,
}

impl Sampler {
    pub fn new(feed: &'static Feed, title: String, baseline: Option<PathBuf>) -> Sampler {
        Sampler {
            feed,
            title,
            baseline,
            started: Instant::now(),
            series: VecDeque::new(),
            alerts: Alerts::new(COOLDOWN),
            finished_total: 0,
            failed_total: 0,
            seen: None,
            run: RunView::default(),
            alerted_rows: Vec::new(),
        }
    }

    /// Take the last window, reread run.json if it changed, raise alerts; the new snapshot.
    pub fn tick(&mut self) -> Snapshot {
        let now = Instant::now();
        let w = self.feed.take_window();
        self.finished_total += w.finished;
        self.failed_total += w.failed;
        let rate = if w.seconds > 0.0 {
            w.finished as f64 / w.seconds
        } else {
            0.0
        };
        self.series.push_back(Point {
            t_s: self.started.elapsed().as_secs_f64(),
            per_second: rate,
            failed: w.failed,
            ttft_p50_ms: percentile(&w.ttft_ms, 0.50),
            ttft_p95_ms: percentile(&w.ttft_ms, 0.95),
            e2e_p50_ms: percentile(&w.e2e_ms, 0.50),
            e2e_p95_ms: percentile(&w.e2e_ms, 0.95),
        });
        if self.series.len() > KEEP_POINTS {
            self.series.pop_front();
        }
        if w.finished >= 20 && w.failed as f64 / w.finished as f64 > 0.01 {
            self.alerts.raise(
                "errors",
                "bad",
                format!(
                    "error rate {:.1}% over the last second ({} of {} failed)",
                    w.failed as f64 * 100.0 / w.finished as f64,
                    w.failed,
                    w.finished
                ),
                now,
            );
        }
        if let Some(folder) = self.feed.run_folder() {
            self.reread(&folder.join(RUN_FILE), now);
        }
        for (metric, max_ms) in self.run.slo.clone() {
            let values = match metric.as_str() {
                "ttft" => &w.ttft_ms,
                "e2e" => &w.e2e_ms,
                _ => continue,
            };
            let over = share_over(values, max_ms);
            if values.len() >= 10 && over > 0.10 {
                self.alerts.raise(
                    &format!("slo:{metric}"),
                    "warn",
                    format!(
                        "{:.0}% of requests in the last second had {} over its SLO of {max_ms} ms",
                        over * 100.0,
                        metric.to_uppercase()
                    ),
                    now,
                );
            }
        }
        let step = self.feed.step();
        Snapshot {
            title: self.title.clone(),
            run_id: self.run.run_id.clone(),
            kind: self.run.kind.clone(),
            status: if self.feed.has_ended() {
                format!("finished ({})", self.run.status)
            } else {
                "running".into()
            },
            step: step.label,
            position: step.position,
            total: step.total,
            step_elapsed_s: step.elapsed.as_secs_f64(),
            finished_total: self.finished_total,
            failed_total: self.failed_total,
            columns: self.run.columns.clone(),
            rows: self.run.rows.clone(),
            series: self.series.iter().cloned().collect(),
            alerts: self.alerts.list.clone(),
            comparison: self.run.comparison.clone(),
            comparison_note: self.run.comparison_note.clone(),
            files: self.feed.run_folder().is_some(),
        }
    }

    /// Read run.json again when it changed: rows, SLOs, alerts for missed targets, and the
    /// comparison against the baseline.
    fn reread(&mut self, file: &Path, now: Instant) {
        let Ok(run) = AnyRun::load(file) else {
            return; // not written yet, or being replaced: next second
        };
        let header = run.header();
        if self.seen.as_deref() == Some(header.updated_at.as_str()) {
            return;
        }
        self.seen = Some(header.updated_at.clone());
        let mut view = view_of(&run);
        for row in &view.rows {
            if matches!(row.status, Status::Bad | Status::Warn)
                && !self.alerted_rows.contains(&row.name)
            {
                self.alerted_rows.push(row.name.clone());
                self.alerts.raise(
                    &format!("target:{}", row.name),
                    if row.status == Status::Bad {
                        "bad"
                    } else {
                        "warn"
                    },
                    format!("{}: target {}: {}", row.name, row.status_word, row.why),
                    now,
                );
            }
        }
        if let Some(base) = &self.baseline {
            match compare(base, file) {
                Ok(c) => view.comparison = Some(c),
                Err(e) => view.comparison_note = Some(format!("not compared: {e:#}")),
            }
        }
        self.run = view;
    }
}

fn percentile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied()
}

fn compare(base: &Path, current: &Path) -> anyhow::Result<ComparisonView> {
    let sides = CompareInput::Runs {
        base: base.to_path_buf(),
        current: current.to_path_buf(),
    }
    .load()?;
    let c = sides.compare(&regress::RegressSection::default(), false)?;
    Ok(ComparisonView {
        verdict: c.verdict,
        summary: format!(
            "{} against {}: {} failed, {} warned, {} compared",
            c.current,
            c.baseline,
            c.count(Verdict::Fail),
            c.count(Verdict::Warn),
            c.rows.len()
        ),
        rows: c
            .rows
            .iter()
            .map(|r| ComparisonRow {
                benchmark: r.benchmark.clone(),
                metric: format!("{} {}", r.metric, r.statistic),
                change: if r.estimate.ratio.is_finite() {
                    format!("{:+.1}%", (r.estimate.ratio - 1.0) * 100.0)
                } else {
                    "n/a".into()
                },
                verdict: r.verdict,
            })
            .collect(),
    })
}

fn ms(
    l: Option<&crate::metrics::LatencySummary>,
    pick: fn(&crate::metrics::LatencySummary) -> f64,
) -> String {
    l.map_or("-".into(), |l| format!("{:.1}", pick(l)))
}

/// The finished scenarios of a run of any kind, as rows with a status.
fn view_of(run: &AnyRun) -> RunView {
    let header = run.header();
    let mut view = RunView {
        run_id: Some(header.run_id.clone()),
        kind: Some(header.kind.clone()),
        status: format!("{:?}", header.status).to_lowercase(),
        ..RunView::default()
    };
    let row = |name: &str, st: Status, cells: Vec<String>, why: String| Row {
        name: name.to_string(),
        status: st,
        status_word: st.word(),
        cells,
        why,
    };
    match run {
        AnyRun::Inference(r) => {
            view.columns = vec![
                "scenario",
                "status",
                "TTFT p50 (ms)",
                "ITL p50 (ms)",
                "decode tok/s",
                "targets",
            ];
            view.rows = r
                .scenarios
                .iter()
                .map(|s| {
                    let targets = s
                        .targets
                        .iter()
                        .map(|t| format!("{} {}", if t.met { "✓" } else { "✗" }, t.target))
                        .collect::<Vec<_>>()
                        .join("; ");
                    row(
                        &s.name,
                        status::inference(s, &r.targets.rules),
                        vec![
                            ms(s.latencies.ttft.as_ref(), |l| l.p50_ms),
                            ms(s.latencies.itl.as_ref(), |l| l.p50_ms),
                            s.decode_tokens_per_second
                                .as_ref()
                                .map_or("-".into(), |d| format!("{:.1}", d.mean)),
                            targets,
                        ],
                        s.targets
                            .iter()
                            .filter(|t| !t.met)
                            .map(|t| match t.value {
                                Some(v) => format!("{} (was {v:.2})", t.target),
                                None => format!("{} (unmeasured)", t.target),
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })
                .collect();
            view.slo = r
                .targets
                .rules
                .iter()
                .filter_map(|rule| {
                    let max = rule.max?;
                    let metric = rule.metric.split('_').next()?;
                    matches!(metric, "ttft" | "e2e").then(|| (metric.to_string(), max))
                })
                .collect();
        }
        AnyRun::Retrieval(r) => {
            view.columns = vec!["ef", "status", "recall@k", "p95 (ms)", "QPS, 1 thread"];
            view.rows = r
                .scenarios
                .iter()
                .map(|s| {
                    row(
                        &s.name,
                        status::retrieval(s, r.headline.recall_target),
                        vec![
                            format!("{:.4}", s.recall),
                            format!("{:.3}", s.latency.p95_ms),
                            format!("{:.0}", s.single_thread_qps),
                        ],
                        format!(
                            "recall {:.4} under the headline's {}",
                            s.recall, r.headline.recall_target
                        ),
                    )
                })
                .collect();
        }
        AnyRun::Http(r) => {
            view.columns = vec![
                "scenario",
                "status",
                "ok/sent",
                "errors (%)",
                "req/s",
                "TTFT p50 (ms)",
                "E2E p99 (ms)",
            ];
            view.rows = r
                .scenarios
                .iter()
                .map(|s| {
                    row(
                        &s.name,
                        status::http(s),
                        vec![
                            format!("{}/{}", s.succeeded, s.requests),
                            format!("{:.2}", s.error_rate * 100.0),
                            format!("{:.1}", s.requests_per_second),
                            ms(s.latencies.ttft.as_ref(), |l| l.p50_ms),
                            ms(s.latencies.e2e.as_ref(), |l| l.p99_ms),
                        ],
                        format!(
                            "{:.2}% of requests failed{}",
                            s.error_rate * 100.0,
                            s.goodput.as_ref().map_or(String::new(), |g| format!(
                                ", {:.1}% met the SLOs",
                                g.fraction * 100.0
                            ))
                        ),
                    )
                })
                .collect();
            view.slo = r.slo.iter().map(|s| (s.metric.clone(), s.max_ms)).collect();
        }
        AnyRun::Instructions(_) => {}
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_scenarios_are_coloured_and_a_miss_alerts_once() {
        let feed: &'static Feed = Box::leak(Box::default());
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden");
        feed.set_run_folder(golden.join("http-errors"));
        let mut sampler = Sampler::new(feed, "t".into(), Some(golden.join("http")));
        let first = sampler.tick();
        assert_eq!(first.kind.as_deref(), Some("http"));
        let run = AnyRun::load(&golden.join("http-errors/run.json")).unwrap();
        let AnyRun::Http(run) = run else {
            panic!("an http run")
        };
        assert_eq!(first.rows.len(), run.scenarios.len());
        for (row, s) in first.rows.iter().zip(&run.scenarios) {
            assert_eq!(row.status, status::http(s), "{}", s.name);
        }
        let misses = first.rows.iter().filter(|r| r.status != Status::Ok).count();
        assert!(misses > 0, "the errors fixture has failing scenarios");
        assert_eq!(first.alerts.len(), misses);
        assert!(
            first.alerts[0].message.contains("failed"),
            "{:?}",
            first.alerts[0]
        );
        // The baseline comparison came with it.
        assert!(first.comparison.is_some(), "{:?}", first.comparison_note);
        // The same file again: no new alert.
        assert_eq!(sampler.tick().alerts.len(), misses);
    }
}

//! HTTP (serving) runs in a report: latency percentiles and throughput against concurrency or
//! offered rate, goodput, failed requests by class per scenario, latency CDFs, and a sweep's
//! saturation point marked.

use std::collections::BTreeMap;

use super::chart::{Axis, Chart, Mark, Scale, Series, Style};
use super::page::{self, Cell};
use super::{cdf, header, status, Labelled};
use crate::metrics::{Latency, LatencySummary};
use crate::report::http::{ErrorClass, HttpRun, HttpScenario, LoadShape};

/// A statistic of a latency summary.
type Pick = fn(&LatencySummary) -> f64;
/// A figure of a scenario, where it has one.
type ScenarioValue = fn(&HttpScenario) -> Option<f64>;

/// Where scenarios sit on the x axis: their concurrency, their offered rate, or their names
/// when a run mixes both.
struct LoadAxis {
    axis: Axis,
    numeric: bool,
    names: Vec<String>,
}

impl LoadAxis {
    fn of(runs: &[Labelled<HttpRun>]) -> LoadAxis {
        let scenarios = || runs.iter().flat_map(|r| r.run.scenarios.iter());
        let open = scenarios()
            .filter(|s| matches!(s.shape, LoadShape::Open { .. }))
            .count();
        // A pattern's load is a rate that changes: it sits on the rate axis at its mean.
        let patterns = scenarios()
            .filter(|s| matches!(s.shape, LoadShape::Pattern { .. }))
            .count();
        let open = open + patterns;
        let all = scenarios().count();
        let mut names: Vec<String> = Vec::new();
        for s in scenarios() {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
        let (label, numeric) = if open == 0 {
            ("concurrency (users in flight)", true)
        } else if open == all {
            if patterns > 0 {
                ("offered rate (requests/s; patterns at their mean)", true)
            } else {
                ("offered rate (requests/s)", true)
            }
        } else {
            ("scenario", false)
        };
        let axis = if numeric {
            let values: Vec<f64> = scenarios().map(load_level).collect();
            let (lo, hi) = values
                .iter()
                .fold((f64::MAX, 0f64), |(a, b), v| (a.min(*v), b.max(*v)));
            if lo > 0.0 && hi / lo >= 8.0 {
                Axis::log(&format!("{label}, log scale"))
            } else {
                Axis::linear(label)
            }
        } else {
            Axis {
                label: label.into(),
                scale: Scale::Category(names.clone()),
            }
        };
        LoadAxis {
            axis,
            numeric,
            names,
        }
    }

    fn x(&self, s: &HttpScenario) -> f64 {
        if self.numeric {
            load_level(s)
        } else {
            self.names.iter().position(|n| *n == s.name).unwrap_or(0) as f64
        }
    }
}

fn load_level(s: &HttpScenario) -> f64 {
    match &s.shape {
        LoadShape::Closed { concurrency } | LoadShape::Probe { concurrency, .. } => {
            f64::from(*concurrency)
        }
        LoadShape::Open { arrival, .. } => arrival.rate,
        LoadShape::Pattern { pattern, .. } => pattern.mean_rate(),
        LoadShape::UserPattern { pattern } => pattern.mean_rate(),
    }
}

pub fn section(runs: &[Labelled<HttpRun>]) -> String {
    let load = LoadAxis::of(runs);
    let mut charts = vec![
        percentiles(runs, &load, Latency::Ttft).html(),
        percentiles(runs, &load, Latency::E2e).html(),
        throughput(runs, &load).html(),
        tokens(runs, &load).html(),
        errors(runs).html(),
    ];
    for latency in [Latency::Ttft, Latency::E2e] {
        charts.push(latency_cdf(runs, latency).html());
    }
    charts.extend(super::http_time::charts(runs).iter().map(|c| c.html()));
    let mut out = page::grid(&charts);
    for run in runs {
        let r = run.run;
        out += &format!("<h3>{}</h3>", super::escape(&run.label));
        let slo = if r.slo.is_empty() {
            "none".into()
        } else {
            r.slo
                .iter()
                .map(|s| format!("{} <= {} ms", s.metric, s.max_ms))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut extra = vec![
            (
                "target",
                format!(
                    "{} ({}{}, model {})",
                    r.target.url,
                    r.target.backend,
                    if r.target.stream { ", streaming" } else { "" },
                    r.target.model.as_deref().unwrap_or("-")
                ),
            ),
            (
                "workload",
                format!(
                    "{} ({} prompts, tokens counted by {})",
                    r.workload.source, r.workload.prompts, r.workload.token_counting
                ),
            ),
            ("SLOs", slo),
        ];
        if let Some(sweep) = &r.sweep {
            extra.push((
                "sweep",
                format!(
                    "saturation at {} (throughput {}); stopped because {}",
                    sweep
                        .saturation_rate
                        .map_or("-".into(), |r| format!("{r} req/s")),
                    sweep
                        .saturation_throughput
                        .map_or("-".into(), |t| format!("{t:.1}")),
                    sweep.stopped_because
                ),
            ));
        }
        if let Some(w) = &r.worker {
            extra.push((
                "worker",
                format!(
                    "{} of {} in plan {}, started {:.0} ms after the plan's time",
                    w.index, w.workers, w.plan_id, w.late_ms
                ),
            ));
        }
        if let Some(m) = &r.merged {
            extra.push((
                "merged",
                format!(
                    "{} workers{}{}{}",
                    m.workers.len(),
                    m.planned_workers
                        .map_or(String::new(), |n| format!(" of {n} planned")),
                    m.start_spread_ms.map_or(String::new(), |s| format!(
                        ", start times spread over {s:.1} ms"
                    )),
                    if m.missing.is_empty() {
                        String::new()
                    } else {
                        format!("; missing: {}", m.missing.join("; "))
                    }
                ),
            ));
        }
        out += &header::block(&r.header, extra, None);
        out += &scenario_table(run);
        if let Some(m) = &r.merged {
            out += "<h4>Each worker's own figures (the table above is their merge)</h4>";
            out += &workers_table(run.index, m);
        }
    }
    page::section("http", "Serving (HTTP)", &out)
}

fn percentiles(runs: &[Labelled<HttpRun>], load: &LoadAxis, latency: Latency) -> Chart {
    let name = latency.name().to_uppercase();
    let mut chart = Chart::new(
        &format!("http-{}-percentiles", latency.name()),
        &format!("{name} percentiles against load"),
        load.axis.clone(),
        Axis::log(&format!("{name} (ms, log scale)")),
    );
    let picks: [(&str, Pick); 3] = [
        ("p50", |l| l.p50_ms),
        ("p95", |l| l.p95_ms),
        ("p99", |l| l.p99_ms),
    ];
    for run in runs {
        for (i, (label, pick)) in picks.iter().enumerate() {
            let points = sorted(
                run.run
                    .scenarios
                    .iter()
                    .filter_map(|s| Some((load.x(s), pick(s.latencies.get(latency)?)))),
            );
            chart.series.push(Series {
                name: run.series_name(label),
                points,
                colour: i,
                dashed: run.dashed,
                style: Style::LineAndPoints,
            });
        }
    }
    chart
}

fn sorted(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points.collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

/// The saturation step of each run's sweep: (its x, the scenario).
fn saturation<'a>(run: &'a HttpRun, load: &LoadAxis) -> Option<(f64, &'a HttpScenario)> {
    let rate = run.sweep.as_ref()?.saturation_rate?;
    let s = run.scenarios.iter().find(|s| {
        s.name.starts_with("sweep-")
            && matches!(&s.shape, LoadShape::Open { arrival, .. } if arrival.rate == rate)
    })?;
    Some((load.x(s), s))
}

fn throughput(runs: &[Labelled<HttpRun>], load: &LoadAxis) -> Chart {
    let mut chart = Chart::new(
        "http-throughput",
        "Throughput and goodput against load",
        load.axis.clone(),
        Axis::linear("requests/s"),
    );
    for run in runs {
        let series: [(&str, ScenarioValue); 3] = [
            ("succeeded req/s", |s| Some(s.requests_per_second)),
            ("goodput req/s (within SLOs)", |s| {
                s.goodput.as_ref().map(|g| g.requests_per_second)
            }),
            ("achieved send rate", |s| s.achieved_rate),
        ];
        add_figures(&mut chart, run, load, &series);
        if let Some((x, s)) = saturation(run.run, load) {
            chart.marks.push(Mark {
                x,
                y: s.requests_per_second,
                label: "saturation".into(),
            });
        }
    }
    chart.caption = Some(
        "Goodput counts only requests that met every SLO. A sweep's saturation point (the last \
         step whose throughput still grew) is ringed."
            .into(),
    );
    chart
}

/// One series per figure of the run's scenarios against load; figures no scenario has are left out.
fn add_figures(
    chart: &mut Chart,
    run: &Labelled<HttpRun>,
    load: &LoadAxis,
    figures: &[(&str, ScenarioValue)],
) {
    for (i, (label, value)) in figures.iter().enumerate() {
        let points = sorted(
            run.run
                .scenarios
                .iter()
                .filter_map(|s| Some((load.x(s), value(s)?))),
        );
        if !points.is_empty() {
            chart.series.push(Series {
                name: run.series_name(label),
                points,
                colour: i,
                dashed: run.dashed,
                style: Style::LineAndPoints,
            });
        }
    }
}

fn tokens(runs: &[Labelled<HttpRun>], load: &LoadAxis) -> Chart {
    let mut chart = Chart::new(
        "http-tokens",
        "Token throughput against load",
        load.axis.clone(),
        Axis::linear("tokens/s"),
    );
    for run in runs {
        let series: [(&str, ScenarioValue); 2] = [
            ("output tokens/s", |s| s.output_tokens_per_second),
            ("input tokens/s", |s| s.input_tokens_per_second),
        ];
        add_figures(&mut chart, run, load, &series);
    }
    chart
}

fn errors(runs: &[Labelled<HttpRun>]) -> Chart {
    let mut names: Vec<String> = Vec::new();
    for s in runs.iter().flat_map(|r| r.run.scenarios.iter()) {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    let mut chart = Chart::new(
        "http-errors",
        "Failed requests by class",
        Axis {
            label: "scenario".into(),
            scale: Scale::Category(names.clone()),
        },
        Axis::linear("failed requests"),
    );
    let mut any = false;
    for run in runs {
        let mut by_class: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in &run.run.scenarios {
            let x = names.iter().position(|n| *n == s.name).unwrap_or(0) as f64;
            for (class, n) in &s.errors {
                by_class
                    .entry(class.clone())
                    .or_default()
                    .push((x, *n as f64));
            }
        }
        for (class, points) in by_class {
            any = true;
            let colour = ErrorClass::ALL
                .iter()
                .position(|c| c.name() == class)
                .unwrap_or(ErrorClass::ALL.len());
            chart.series.push(Series {
                name: run.series_name(&class),
                points,
                colour,
                dashed: run.dashed,
                style: Style::Points,
            });
        }
    }
    chart.caption = Some(if any {
        "Failures by class: connect, timeout, http_status, disconnected, malformed, server_error."
            .into()
    } else {
        "No request failed in any scenario.".into()
    });
    chart
}

fn latency_cdf(runs: &[Labelled<HttpRun>], latency: Latency) -> Chart {
    let name = latency.name().to_uppercase();
    let mut chart = Chart::new(
        &format!("http-{}-cdf", latency.name()),
        &format!("{name} distribution"),
        Axis::log(&format!("{name} (ms, log scale)")),
        Axis::linear("requests at or below (%)"),
    );
    let mut colours: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs {
        for s in &run.run.scenarios {
            let points = cdf::points(s.histograms.of(latency));
            if points.is_empty() {
                continue;
            }
            let next = colours.len();
            let colour = *colours.entry(s.name.clone()).or_insert(next);
            chart.series.push(Series {
                name: run.series_name(&s.name),
                points,
                colour,
                dashed: run.dashed,
                style: Style::Line,
            });
        }
    }
    chart
}

/// A merged run's workers, each scenario on its own row: where a tail came from.
fn workers_table(index: usize, merged: &crate::report::http::MergeInfo) -> String {
    let opt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    let rows: Vec<Vec<Cell>> = merged
        .workers
        .iter()
        .flat_map(|w| {
            w.scenarios.iter().map(move |s| {
                vec![
                    Cell::text(
                        w.index
                            .map_or_else(|| w.run_id.clone(), |i| format!("worker {i}")),
                    ),
                    Cell::text(w.host.clone().unwrap_or_else(|| "-".into())),
                    Cell::text(&s.name),
                    Cell::num(format!("{}/{}", s.succeeded, s.requests)),
                    Cell::num(format!("{:.1}", s.requests_per_second)),
                    Cell::num(opt(s.ttft_p99_ms)),
                    Cell::num(opt(s.e2e_p50_ms)),
                    Cell::num(opt(s.e2e_p99_ms)),
                    Cell::num(opt(w.late_ms)),
                ]
            })
        })
        .collect();
    page::table(
        &format!("http-workers-{index}"),
        &[
            "worker",
            "host",
            "scenario",
            "ok/sent",
            "req/s",
            "TTFT p99 (ms)",
            "E2E p50 (ms)",
            "E2E p99 (ms)",
            "late (ms)",
        ],
        &rows,
    )
}

fn scenario_table(run: &Labelled<HttpRun>) -> String {
    let ms = |l: Option<&LatencySummary>, pick: fn(&LatencySummary) -> f64| {
        l.map_or("-".into(), |l| format!("{:.1}", pick(l)))
    };
    let rows: Vec<Vec<Cell>> = run
        .run
        .scenarios
        .iter()
        .map(|s| {
            let st = status::http(s);
            let errors = s
                .errors
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                Cell::text(&s.name),
                Cell::status(st, st.word()),
                Cell::num(format!("{}/{}", s.succeeded, s.requests)),
                Cell::num(format!("{:.2}", s.error_rate * 100.0)),
                Cell::num(format!("{:.1}", s.requests_per_second)),
                Cell::num(s.goodput.as_ref().map_or("-".into(), |g| {
                    format!("{:.1} ({:.0}%)", g.requests_per_second, g.fraction * 100.0)
                })),
                Cell::num(
                    s.output_tokens_per_second
                        .map_or("-".into(), |v| format!("{v:.1}")),
                ),
                Cell::num(ms(s.latencies.ttft.as_ref(), |l| l.p50_ms)),
                Cell::num(ms(s.latencies.ttft.as_ref(), |l| l.p99_ms)),
                Cell::num(ms(s.latencies.itl.as_ref(), |l| l.p50_ms)),
                Cell::num(ms(s.latencies.e2e.as_ref(), |l| l.p50_ms)),
                Cell::num(ms(s.latencies.e2e.as_ref(), |l| l.p99_ms)),
                Cell::text(if errors.is_empty() {
                    "-".into()
                } else {
                    errors
                }),
            ]
        })
        .collect();
    page::table(
        &format!("http-scenarios-{}", run.index),
        &[
            "scenario",
            "status",
            "ok/sent",
            "errors (%)",
            "req/s",
            "goodput req/s",
            "out tok/s",
            "TTFT p50 (ms)",
            "TTFT p99 (ms)",
            "ITL p50 (ms)",
            "E2E p50 (ms)",
            "E2E p99 (ms)",
            "failures",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::http::SweepSummary;
    use crate::results::RunFile;

    fn golden() -> HttpRun {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/golden/http/run.json");
        HttpRun::load(&path).unwrap()
    }

    #[test]
    fn a_sweep_marks_its_saturation_point_on_the_rate_axis() {
        let mut run = golden();
        run.scenarios
            .retain(|s| matches!(s.shape, LoadShape::Open { .. }));
        run.scenarios[0].name = "sweep-rate50-poisson".into();
        run.sweep = Some(SweepSummary {
            rates: vec![50.0],
            saturation_rate: Some(50.0),
            saturation_throughput: Some(100.0),
            stopped_because: "test".into(),
        });
        let labelled = [Labelled {
            label: "r".into(),
            run: &run,
            dashed: false,
            index: 0,
            prefix: None,
        }];
        let html = section(&labelled);
        assert!(
            html.contains("offered rate (requests/s)"),
            "open loops sit on the rate axis"
        );
        assert!(
            html.contains(">saturation</text>"),
            "the saturation point is marked"
        );
        // Mixed shapes fall back to the scenarios' names.
        let mixed = golden();
        let labelled = [Labelled {
            label: "m".into(),
            run: &mixed,
            dashed: false,
            index: 0,
            prefix: None,
        }];
        let html = section(&labelled);
        assert!(!html.contains(">saturation</text>"));
        assert!(html.contains(">rate50-poisson</text>"));
    }
}

//! Inference runs in a report: latency CDFs (TTFT, ITL, TPOT, E2E), decode tokens/s against
//! batch size, TTFT against prompt length, and a table with energy and peak memory (or why
//! they are unavailable) and each scenario's target status.

use std::collections::BTreeMap;

use super::chart::{Axis, Chart, Series, Style};
use super::page::{self, Cell};
use super::{cdf, header, status, Labelled};
use crate::metrics::{Latency, LatencySummary, Reading};
use crate::report::{RunResult, ScenarioResult};
use crate::roofline::Roofline;

pub fn section(runs: &[Labelled<RunResult>]) -> String {
    let mut out = String::new();
    let mut charts = Vec::new();
    for latency in Latency::ALL {
        charts.push(latency_cdf(runs, *latency).html());
    }
    charts.push(decode_by_batch(runs).html());
    charts.push(ttft_by_prompt(runs).html());
    out += &page::grid(&charts);
    for run in runs {
        out += &format!("<h3>{}</h3>", super::escape(&run.label));
        out += &header::block(
            &run.run.header,
            vec![
                (
                    "model",
                    format!(
                        "{} ({}, {}, {} parameters)",
                        run.run.model.name,
                        run.run.model.format,
                        run.run.model.dtype,
                        run.run.model.parameters
                    ),
                ),
                (
                    "device",
                    format!("{} ({})", run.run.device.name, run.run.device.reason),
                ),
                ("config", run.run.config_name.clone()),
                ("targets", run.run.targets.from.clone()),
                ("telemetry", run.run.telemetry.clone()),
                (
                    "grade",
                    format!(
                        "{} ({} of {} checks met)",
                        run.run.grade.grade, run.run.grade.met, run.run.grade.checked
                    ),
                ),
            ],
            serde_json::to_value(&run.run.config).ok().as_ref(),
        );
        out += &scenario_table(run);
    }
    page::section("inference", "Inference", &out)
}

fn latency_cdf(runs: &[Labelled<RunResult>], latency: Latency) -> Chart {
    let name = latency.name();
    let mut chart = Chart::new(
        &format!("inference-{name}-cdf"),
        &format!("{} distribution", name.to_uppercase()),
        Axis::log(&format!("{} (ms, log scale)", name.to_uppercase())),
        Axis::linear("requests at or below (%)"),
    );
    let colours = scenario_colours(runs);
    for run in runs {
        for s in &run.run.scenarios {
            let points = cdf::points(s.histograms.of(latency));
            if points.is_empty() {
                continue;
            }
            chart.series.push(Series {
                name: run.series_name(&s.name),
                points,
                colour: colours[&s.name],
                dashed: run.dashed,
                style: Style::Line,
            });
        }
    }
    chart.caption = Some(format!(
        "Cumulative share of {} at or below each latency, one line per scenario, from the \
         stored HDR histograms (3 significant digits).",
        match latency {
            Latency::Itl => "inter-token gaps",
            _ => "requests",
        }
    ));
    chart
}

/// One colour per scenario name, the same in every chart and every run.
fn scenario_colours(runs: &[Labelled<RunResult>]) -> BTreeMap<String, usize> {
    let mut colours = BTreeMap::new();
    for run in runs {
        for s in &run.run.scenarios {
            let next = colours.len();
            colours.entry(s.name.clone()).or_insert(next);
        }
    }
    colours
}

fn spread_axis(label: &str, values: impl Iterator<Item = f64>) -> Axis {
    let (lo, hi) = values.fold((f64::MAX, 0f64), |(a, b), v| (a.min(v), b.max(v)));
    if lo > 0.0 && hi / lo >= 8.0 {
        Axis::log(&format!("{label}, log scale"))
    } else {
        Axis::linear(label)
    }
}

fn decode_by_batch(runs: &[Labelled<RunResult>]) -> Chart {
    let batches = runs
        .iter()
        .flat_map(|r| r.run.scenarios.iter().map(|s| f64::from(s.batch)));
    let mut chart = Chart::new(
        "inference-decode-by-batch",
        "Decode throughput against batch size",
        spread_axis("batch size (requests)", batches),
        Axis::linear("decode tokens/s (all rows)"),
    );
    let groups =
        |s: &ScenarioResult| format!("prompt {} / output {}", s.prompt_tokens, s.output_tokens);
    add_grouped(&mut chart, runs, groups, |s| {
        Some((
            f64::from(s.batch),
            s.decode_tokens_per_second.as_ref()?.mean,
        ))
    });
    chart.caption = Some(
        "Mean over the measured runs of tokens after the first, all rows, over first to last token."
            .into(),
    );
    chart
}

fn ttft_by_prompt(runs: &[Labelled<RunResult>]) -> Chart {
    let prompts = runs
        .iter()
        .flat_map(|r| r.run.scenarios.iter().map(|s| f64::from(s.prompt_tokens)));
    let mut chart = Chart::new(
        "inference-ttft-by-prompt",
        "Time to first token against prompt length",
        spread_axis("prompt length (tokens)", prompts),
        Axis::linear("TTFT p50 (ms)"),
    );
    add_grouped(
        &mut chart,
        runs,
        |s| format!("batch {}", s.batch),
        |s| {
            Some((
                f64::from(s.prompt_tokens),
                s.latencies.ttft.as_ref()?.p50_ms,
            ))
        },
    );
    chart.caption = Some("Median TTFT: prefill start to the first sampled token.".into());
    chart
}

/// One series per group (and run), points sorted by x; where a group has several scenarios at
/// one x (other output lengths), the first is drawn.
fn add_grouped(
    chart: &mut Chart,
    runs: &[Labelled<RunResult>],
    group: impl Fn(&ScenarioResult) -> String,
    point: impl Fn(&ScenarioResult) -> Option<(f64, f64)>,
) {
    let mut colours: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs {
        let mut groups: BTreeMap<String, BTreeMap<u64, (f64, f64)>> = BTreeMap::new();
        for s in &run.run.scenarios {
            if let Some((x, y)) = point(s) {
                groups
                    .entry(group(s))
                    .or_default()
                    .entry(x.to_bits())
                    .or_insert((x, y));
            }
        }
        for (name, points) in groups {
            let next = colours.len();
            let colour = *colours.entry(name.clone()).or_insert(next);
            let mut points: Vec<(f64, f64)> = points.into_values().collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart.series.push(Series {
                name: run.series_name(&name),
                points,
                colour,
                dashed: run.dashed,
                style: Style::LineAndPoints,
            });
        }
    }
}

fn ms(l: &Option<LatencySummary>, pick: fn(&LatencySummary) -> f64) -> String {
    l.as_ref().map_or("-".into(), |l| format!("{:.1}", pick(l)))
}

/// A reading's value, or "unavailable: reason".
fn reading<T: Copy>(r: &Reading<T>, show: impl Fn(T) -> String) -> Cell {
    match r {
        Reading::Measured { value } => Cell::num(show(*value)),
        Reading::Estimated { value, method } => {
            Cell::num(format!("{} (est. {method})", show(*value)))
        }
        Reading::Unavailable { reason } => Cell::text(format!("unavailable: {reason}")),
    }
}

fn scenario_table(run: &Labelled<RunResult>) -> String {
    let rules = &run.run.targets.rules;
    // The roofline columns, for runs that recorded one (older results did not).
    let roofline = run.run.scenarios.iter().any(|s| s.roofline.is_some());
    let rows: Vec<Vec<Cell>> = run
        .run
        .scenarios
        .iter()
        .map(|s| {
            let st = status::inference(s, rules);
            let targets = s
                .targets
                .iter()
                .map(|t| {
                    let value = t.value.map_or("unmeasured".into(), |v| format!("{v:.2}"));
                    format!("{} {} ({value})", if t.met { "✓" } else { "✗" }, t.target)
                })
                .collect::<Vec<_>>()
                .join("; ");
            let rate = |r: &Option<crate::metrics::RateSummary>| {
                r.as_ref().map_or("-".into(), |r| format!("{:.1}", r.mean))
            };
            let mut row = vec![
                Cell::text(&s.name),
                Cell::status(st, st.word()),
                Cell::num(ms(&s.latencies.ttft, |l| l.p50_ms)),
                Cell::num(ms(&s.latencies.ttft, |l| l.p95_ms)),
                Cell::num(ms(&s.latencies.itl, |l| l.p50_ms)),
                Cell::num(ms(&s.latencies.e2e, |l| l.p50_ms)),
                Cell::num(rate(&s.decode_tokens_per_second)),
                Cell::num(rate(&s.e2e_tokens_per_second)),
            ];
            if roofline {
                let cell = |f: fn(&Roofline) -> String| {
                    Cell::num(s.roofline.as_ref().map_or("-".into(), f))
                };
                row.push(cell(Roofline::decode_cell));
                row.push(cell(Roofline::prefill_cell));
            }
            row.extend([
                reading(&s.energy.joules_per_token, |j| format!("{j:.3}")),
                reading(&s.peak_host_rss_bytes, header::mib),
                reading(&s.peak_device_memory_bytes, header::mib),
                Cell::text(targets),
            ]);
            row
        })
        .collect();
    let mut columns = vec![
        "scenario",
        "status",
        "TTFT p50 (ms)",
        "TTFT p95 (ms)",
        "ITL p50 (ms)",
        "E2E p50 (ms)",
        "decode tok/s",
        "e2e tok/s",
    ];
    if roofline {
        columns.extend(["decode GB/s (% of peak)", "prefill GFLOP/s (% of peak)"]);
    }
    columns.extend(["energy (J/token)", "peak RSS", "peak GPU memory", "targets"]);
    page::table(&format!("scenarios-{}", run.index), &columns, &rows)
}

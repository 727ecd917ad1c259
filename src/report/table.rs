//! The terminal table: one Markdown row per scenario (pastes into an issue as it is), under a
//! header that says what was measured where, and the grade under it.

use super::columns::{column, grid, Column};
use super::schema::{RunResult, ScenarioResult};
use crate::metrics::{Latency, Reading, Statistic};
use crate::results::RunStatus;
use crate::roofline::Roofline;

pub fn render(run: &RunResult) -> String {
    let mut out = String::new();
    let m = &run.model;
    out += &format!(
        "run {} [{}] | model {} ({}, {:.0}M params) | device {}{} | {} threads | config {}\n\n",
        run.header.run_id,
        status_word(run),
        m.name,
        m.dtype,
        m.parameters as f64 / 1e6,
        run.device.name,
        run.device
            .gpu_name
            .as_deref()
            .map(|g| format!(" ({g})"))
            .unwrap_or_default(),
        run.header.machine.compute_threads,
        run.config_name,
    );
    let show_energy = run
        .scenarios
        .iter()
        .any(|s| s.energy.joules_per_token.value().is_some());
    let show_gpu_memory = run
        .scenarios
        .iter()
        .any(|s| s.peak_device_memory_bytes.value().is_some());
    let show_roofline = run.scenarios.iter().any(|s| s.roofline.is_some());
    let shown = Shown {
        gpu_memory: show_gpu_memory,
        energy: show_energy,
        roofline: show_roofline,
    };
    out += &markdown_of(&columns(shown), &run.scenarios);
    if run.scenarios.is_empty() {
        out += "(no scenario finished)\n";
    }
    out += &format!(
        "\ntargets: {} | grade: {}",
        run.targets.from, run.grade.grade
    );
    if run.grade.checked > 0 {
        out += &format!(
            " ({} of {} checks met, {:.0}%)",
            run.grade.met,
            run.grade.checked,
            run.grade.share * 100.0
        );
    }
    out.push('\n');
    let missed: Vec<String> = run
        .scenarios
        .iter()
        .flat_map(|s| {
            s.targets.iter().filter(|t| !t.met).map(move |t| {
                let value = t.value.map_or("unmeasured".into(), |v| format!("{v:.2}"));
                format!("  {}: {} missed ({value})", s.name, t.target)
            })
        })
        .collect();
    if !missed.is_empty() {
        out += &missed.join("\n");
        out.push('\n');
    }
    // Where each missed bound comes from, once per rule.
    let mut explained: Vec<(&str, &str)> = Vec::new();
    for t in run.scenarios.iter().flat_map(|s| &s.targets) {
        if let (false, Some(why)) = (t.met, &t.why) {
            if !explained.iter().any(|(target, _)| *target == t.target) {
                explained.push((&t.target, why));
            }
        }
    }
    for (target, why) in explained {
        out += &format!("  why {target}: {why}\n");
    }
    if let Some(r) = run.scenarios.iter().find_map(|s| s.roofline.as_ref()) {
        out += &format!(
            "roofline: decode GB/s = bytes a step moves (weights + KV cache) × steps/s; prefill \
             GFLOP/s; {}\n",
            r.peaks
        );
    }
    if let Some(s) = run.scenarios.first() {
        let e = &s.energy;
        match unavailable_reason(&e.joules_per_token) {
            Some(reason) => out += &format!("energy: unavailable ({reason})\n"),
            None => out += &format!("energy: J/token from the {} energy\n", e.source),
        }
    }
    out
}

fn status_word(run: &RunResult) -> String {
    let done = run.scenarios.len();
    let planned = run.planned_scenarios.len();
    match run.header.status {
        RunStatus::Complete => format!("complete, {done} scenarios"),
        RunStatus::Interrupted => format!("interrupted: {done} of {planned} scenarios"),
        RunStatus::Running => format!("incomplete: {done} of {planned} scenarios"),
    }
}

fn unavailable_reason<T>(r: &Reading<T>) -> Option<&str> {
    match r {
        Reading::Unavailable { reason } => Some(reason),
        _ => None,
    }
}

/// Which optional columns have something to show.
struct Shown {
    gpu_memory: bool,
    energy: bool,
    roofline: bool,
}

fn columns<'a>(shown: Shown) -> Vec<Column<'a, ScenarioResult>> {
    type Row = ScenarioResult;
    let latency = |latency: Latency, statistic: Statistic| {
        let name = format!("{} {statistic} ms", latency.label());
        column(name, move |s: &Row| {
            s.latencies
                .get(latency)
                .map_or("-".into(), |l| format!("{:.1}", l.statistic(statistic)))
        })
    };
    let mib = |b: u64| format!("{:.0}", b as f64 / (1u64 << 20) as f64);
    let mut columns = vec![
        column("scenario", |s: &Row| s.name.clone()),
        column("batch", |s: &Row| s.batch.to_string()),
        column("prompt", |s: &Row| s.prompt_tokens.to_string()),
        column("out", |s: &Row| s.output_tokens.to_string()),
        latency(Latency::Ttft, Statistic::P50),
        latency(Latency::Ttft, Statistic::P99),
        latency(Latency::Itl, Statistic::P50),
        latency(Latency::Itl, Statistic::P99),
        latency(Latency::Tpot, Statistic::P50),
        latency(Latency::E2e, Statistic::P50),
        column("prompt tok/s", |s: &Row| {
            s.prompt_tokens_per_second
                .as_ref()
                .map_or("-".into(), |r| format!("{:.1}", r.mean))
        }),
        column("decode tok/s", |s: &Row| {
            s.decode_tokens_per_second
                .as_ref()
                .map_or("-".into(), |r| format!("{:.1} ± {:.1}", r.mean, r.sd))
        }),
        column("peak RSS MiB", move |s: &Row| {
            s.peak_host_rss_bytes.value().map_or("-".into(), mib)
        }),
    ];
    if shown.roofline {
        columns.push(column("decode GB/s", |s: &Row| {
            s.roofline
                .as_ref()
                .map_or("-".into(), Roofline::decode_cell)
        }));
        columns.push(column("prefill GFLOP/s", |s: &Row| {
            s.roofline
                .as_ref()
                .map_or("-".into(), Roofline::prefill_cell)
        }));
    }
    if shown.gpu_memory {
        columns.push(column("GPU mem MiB", move |s: &Row| {
            s.peak_device_memory_bytes.value().map_or("-".into(), mib)
        }));
    }
    if shown.energy {
        columns.push(column("J/token", |s: &Row| {
            s.energy
                .joules_per_token
                .value()
                .map_or("-".into(), |j| format!("{j:.4}"))
        }));
    }
    columns.push(column("targets", |s: &Row| {
        let met = s.targets.iter().filter(|t| t.met).count();
        if s.targets.is_empty() {
            "-".into()
        } else {
            format!("{met}/{}", s.targets.len())
        }
    }));
    columns
}

/// The rows as a Markdown table under the columns' names: the first column left-aligned,
/// the others (numbers) right-aligned.
pub(crate) fn markdown_of<'r, R: 'r>(
    columns: &[Column<'_, R>],
    rows: impl IntoIterator<Item = &'r R>,
) -> String {
    let (header, rows) = grid(columns, rows);
    markdown(&header, &rows, |c| c > 0)
}

/// The same with every column left-aligned.
pub(crate) fn left_aligned_markdown_of<'r, R: 'r>(
    columns: &[Column<'_, R>],
    rows: impl IntoIterator<Item = &'r R>,
) -> String {
    let (header, rows) = grid(columns, rows);
    markdown(&header, &rows, |_| false)
}

/// A Markdown table with padded columns, right-aligned where `numeric` says.
fn markdown(header: &[String], rows: &[Vec<String>], numeric: impl Fn(usize) -> bool) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(header[c].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |text: &str, c: usize| {
        let fill = widths[c] - text.chars().count();
        if numeric(c) {
            format!("{}{text}", " ".repeat(fill))
        } else {
            format!("{text}{}", " ".repeat(fill))
        }
    };
    let mut out = String::new();
    let cells: Vec<String> = header.iter().enumerate().map(|(c, h)| pad(h, c)).collect();
    out += &format!("| {} |\n", cells.join(" | "));
    let rules: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(c, w)| {
            if numeric(c) {
                format!("{}:", "-".repeat(w.saturating_sub(1).max(1)))
            } else {
                "-".repeat((*w).max(1))
            }
        })
        .collect();
    out += &format!("| {} |\n", rules.join(" | "));
    for r in rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(c, v)| pad(v, c)).collect();
        out += &format!("| {} |\n", cells.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_pads_columns() {
        let t = markdown(
            &["name".into(), "n".into()],
            &[
                vec!["a".into(), "10".into()],
                vec!["long".into(), "2".into()],
            ],
            |c| c > 0,
        );
        assert_eq!(
            t,
            "| name |  n |\n| ---- | -: |\n| a    | 10 |\n| long |  2 |\n"
        );
    }
}

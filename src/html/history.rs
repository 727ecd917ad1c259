//! The history in a report (`report --history FILE`): each series over the runs added, with
//! its change points ringed.

use std::path::Path;

use anyhow::Result;
use regex::Regex;

use super::chart::{Axis, Chart, Mark, Series, Style};
use super::page;
use crate::history;

/// Charts past this many are summarised, not drawn: pick with --history-bench.
const MAX_CHARTS: usize = 60;

pub fn section(db: &Path, bench: Option<&Regex>, min_effect: f64) -> Result<String> {
    let (entries, series) = history::read(db, bench, min_effect)?;
    let mut charts = Vec::new();
    for (i, s) in series.iter().take(MAX_CHARTS).enumerate() {
        let mut chart = Chart::new(
            &format!("history-{i}"),
            &format!("{} · {} {}", s.benchmark, s.metric, s.statistic),
            Axis::linear("run, in the order added"),
            Axis::fit(&format!("{} {} ({})", s.metric, s.statistic, s.unit)),
        );
        chart.series.push(Series {
            name: s.machine.clone(),
            points: s
                .values
                .iter()
                .enumerate()
                .map(|(n, (_, v))| ((n + 1) as f64, *v))
                .collect(),
            colour: 0,
            dashed: false,
            style: Style::LineAndPoints,
        });
        for c in &s.changes {
            chart.marks.push(Mark {
                x: (c.at + 1) as f64,
                y: s.values[c.at].1,
                label: format!("{:+.1}%", c.relative() * 100.0),
            });
        }
        chart.caption = Some(if !s.enough() {
            format!("{} points: too few for change points", s.values.len())
        } else if s.changes.is_empty() {
            "no change point".into()
        } else {
            s.changes
                .iter()
                .map(|c| {
                    let commit = entries
                        .get(&s.values[c.at].0)
                        .map_or(String::new(), |e| format!(" at {}", e.git_commit));
                    format!("change{commit}: {:+.1}%", c.relative() * 100.0)
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
        charts.push(chart.html());
    }
    let mut body = format!(
        r#"<p class="note">{}: {} entries, {} series. Change points: binary segmentation, |Welch t| ≥ {} between segments of ≥ {} points and a shift ≥ {:.0}% (counts ≥ 1%).</p>"#,
        super::escape(&db.display().to_string()),
        entries.len(),
        series.len(),
        history::changes::T_THRESHOLD,
        history::changes::MIN_SEGMENT,
        min_effect * 100.0
    );
    if series.len() > MAX_CHARTS {
        body += &format!(
            r#"<p class="note">The first {MAX_CHARTS} of {} series are drawn; choose with --history-bench REGEX.</p>"#,
            series.len()
        );
    }
    body += &page::grid(&charts);
    Ok(page::section("history", "History", &body))
}

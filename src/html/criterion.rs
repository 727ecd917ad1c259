//! Criterion's results in a report: a link to each benchmark's own HTML page (its
//! `html_reports`), and the comparison of its last run against a saved baseline, drawn in the
//! report's style.

use std::path::{Component, Path, PathBuf};

use anyhow::Result;

use super::chart::{Axis, Chart, Scale, Series, Style};
use super::page;
use crate::regress::{self, criterion, CompareInput};

/// Criterion's results under `root`, with links made relative to the report at `out_dir`.
pub fn section(root: &Path, baseline: Option<&str>, out_dir: &Path) -> Result<String> {
    let mut dirs = Vec::new();
    criterion::find_baseline_dirs(root, "new", &mut dirs)?;
    dirs.sort();
    let mut out = String::new();
    let index = root.join("report").join("index.html");
    if index.is_file() {
        out += &format!(
            r#"<p><a href="{}">Criterion's own report</a> (every benchmark, its violin plots and regressions).</p>"#,
            super::escape(&link(out_dir, &index))
        );
    } else {
        out += r#"<p class="note">No Criterion HTML under this folder: `cargo bench` writes it (criterion's html_reports feature).</p>"#;
    }
    let mut items = String::from("<ul class=\"benches\">");
    for dir in &dirs {
        let id = std::fs::read_to_string(dir.join("benchmark.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.get("full_id").and_then(|i| i.as_str()).map(String::from))
            .unwrap_or_else(|| dir.display().to_string());
        let page_path = dir.parent().map(|p| p.join("report").join("index.html"));
        match page_path.filter(|p| p.is_file()) {
            Some(p) => {
                items += &format!(
                    r#"<li><a href="{}">{}</a></li>"#,
                    super::escape(&link(out_dir, &p)),
                    super::escape(&id)
                )
            }
            None => items += &format!("<li>{}</li>", super::escape(&id)),
        }
    }
    items += "</ul>";
    out += &format!(
        "<details><summary>{} benchmarks</summary>{items}</details>",
        dirs.len()
    );
    if let Some(name) = baseline {
        let sides = CompareInput::Criterion {
            dir: root.to_path_buf(),
            baseline: name.into(),
            current: "new".into(),
        }
        .load()?;
        let c = sides.compare(&regress::RegressSection::default(), false)?;
        out += &change_chart(&c).html();
        out += &super::comparison::html("criterion-comparison", &c);
    }
    Ok(page::section("criterion", "Criterion benchmarks", &out))
}

/// A figure of a comparison row.
type RowValue = fn(&regress::Row) -> f64;

/// Each benchmark's change against the baseline (median time), with its interval.
fn change_chart(c: &regress::Comparison) -> Chart {
    // The median time of each benchmark: one point each (the table below has every row).
    let rows: Vec<&regress::Row> = c
        .rows
        .iter()
        .filter(|r| r.metric == "time" && r.statistic == "p50")
        .collect();
    let names: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}", r.benchmark, r.statistic))
        .collect();
    let mut chart = Chart::new(
        "criterion-change",
        "Change against the baseline",
        Axis {
            label: "benchmark".into(),
            scale: Scale::Category(names),
        },
        Axis::linear("change (%), with its 95% interval"),
    );
    let pct = |ratio: f64| (ratio - 1.0) * 100.0;
    let series: [(&str, RowValue); 3] = [
        ("change", |r| r.estimate.ratio),
        ("interval low", |r| r.estimate.low),
        ("interval high", |r| r.estimate.high),
    ];
    for (i, (name, pick)) in series.iter().enumerate() {
        chart.series.push(Series {
            name: (*name).into(),
            points: rows
                .iter()
                .enumerate()
                .map(|(x, r)| (x as f64, pct(pick(r))))
                .filter(|p| p.1.is_finite())
                .collect(),
            colour: if i == 0 { 0 } else { 4 },
            dashed: i > 0,
            style: Style::Points,
        });
    }
    chart
}

/// A link from a file in `from_dir` to `to`: relative when both resolve, absolute otherwise.
fn link(from_dir: &Path, to: &Path) -> String {
    let (Ok(from), Ok(to)) = (from_dir.canonicalize(), to.canonicalize()) else {
        return to.display().to_string();
    };
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c.as_os_str());
    }
    rel.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regress::criterion::tests::write_bench;

    #[test]
    fn criterion_pages_are_linked_and_the_baseline_is_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("criterion");
        let fast = [
            100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9, 100.0,
        ];
        let slow: Vec<f64> = fast.iter().map(|t| t * 1.5).collect();
        write_bench(&root, "l2", "distance/l2", "main", &fast);
        write_bench(&root, "l2", "distance/l2", "new", &slow);
        std::fs::create_dir_all(root.join("l2/report")).unwrap();
        std::fs::write(root.join("l2/report/index.html"), "<html></html>").unwrap();
        std::fs::create_dir_all(root.join("report")).unwrap();
        std::fs::write(root.join("report/index.html"), "<html></html>").unwrap();
        let html = section(&root, Some("main"), dir.path()).unwrap();
        assert!(
            html.contains(r#"href="criterion/report/index.html""#),
            "{html}"
        );
        assert!(html.contains(r#"href="criterion/l2/report/index.html""#));
        assert!(html.contains(r#"id="criterion-change""#), "{html}");
        // The median time: one point per benchmark.
        assert!(
            html.contains(r#"data-series="change" data-points="1""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-verdict="fail""#),
            "a 50% slowdown fails"
        );
        assert!(section(&root, Some("nope"), dir.path()).is_err());
    }
}

//! A comparison as people read it: a terminal table, Markdown for a pull-request comment,
//! and JSON for tools.

use super::{Comparison, Row, Verdict};
use crate::report::columns::column;
use crate::report::instructions::grouped;
use crate::report::table::left_aligned_markdown_of;

/// The terminal table: every row (or only flagged ones), then what appeared, disappeared
/// and the notes.
pub fn table(c: &Comparison, only_flagged: bool) -> String {
    let rows: Vec<&Row> = c
        .rows
        .iter()
        .filter(|r| !only_flagged || r.verdict != Verdict::Ok)
        .collect();
    let mut out = format!("{} vs {}: {}\n\n", c.current, c.baseline, headline(c));
    out += &grid(&rows);
    out += &extras(c, "");
    out
}

/// Markdown for a pull-request comment: the verdict, the flagged rows, and every row folded.
pub fn markdown(c: &Comparison) -> String {
    let mut out = format!(
        "### inferbench compare: {}\n\n`{}` against baseline `{}`.\n\n",
        headline(c),
        c.current,
        c.baseline
    );
    let flagged: Vec<&Row> = c.rows.iter().filter(|r| r.verdict != Verdict::Ok).collect();
    if !flagged.is_empty() {
        out += &grid(&flagged);
        out.push('\n');
    }
    let all: Vec<&Row> = c.rows.iter().collect();
    out += &format!(
        "<details><summary>All {} comparisons</summary>\n\n{}\n</details>\n",
        all.len(),
        grid(&all)
    );
    out += &extras(c, "- ");
    out += &format!("\nRules: {}.\n", c.rules.join("; "));
    out
}

pub fn json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

fn headline(c: &Comparison) -> String {
    let (fail, warn) = (c.count(Verdict::Fail), c.count(Verdict::Warn));
    let word = match c.verdict {
        Verdict::Fail => "FAIL",
        Verdict::Warn => "WARN",
        Verdict::Ok => "no regression",
    };
    format!(
        "{word} ({fail} failed, {warn} warned, {} compared)",
        c.rows.len()
    )
}

fn extras(c: &Comparison, bullet: &str) -> String {
    let mut out = String::new();
    let list = |title: &str, items: &[String]| {
        if items.is_empty() {
            String::new()
        } else {
            let shown: Vec<&str> = items.iter().take(20).map(String::as_str).collect();
            let more = items.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{bullet}{title}: {}{tail}\n", shown.join(", "))
        }
    };
    out += &list("removed (in the baseline only)", &c.removed);
    out += &list("new (not in the baseline)", &c.added);
    for note in &c.notes {
        out += &format!("{bullet}note: {note}\n");
    }
    if !out.is_empty() {
        out.insert(0, '\n');
    }
    out
}

fn grid(rows: &[&Row]) -> String {
    type R<'a> = &'a Row;
    let columns = [
        column("benchmark", |r: &R| r.benchmark.clone()),
        column("metric", |r: &R| {
            if matches!(r.statistic.as_str(), "throughput" | "error_rate" | "count") {
                r.metric.clone()
            } else {
                format!("{} {}", r.metric, r.statistic)
            }
        }),
        column("baseline", |r: &R| value(r.baseline, &r.unit)),
        column("current", |r: &R| value(r.current, &r.unit)),
        column("change", |r: &R| {
            if r.test == "exact" {
                // Counts are exact: a 0.04% change is real and worth seeing.
                exact_percent(r.estimate.ratio)
            } else {
                percent(r.estimate.ratio)
            }
        }),
        column("95% CI", |r: &R| {
            let e = &r.estimate;
            if r.test == "exact" {
                "exact".into()
            } else if e.low.is_finite() && e.high.is_finite() {
                format!("{} .. {}", percent(e.low), percent(e.high))
            } else {
                "untested".into()
            }
        }),
        column("verdict", |r: &R| {
            if r.estimate.significant || r.verdict != Verdict::Ok || r.test == "exact" {
                r.verdict.to_string()
            } else {
                format!("{} (noise)", r.verdict)
            }
        }),
    ];
    left_aligned_markdown_of(&columns, rows)
}

/// A ratio as a signed change: 1.23 -> "+23.0%".
fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".into();
    }
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

/// A ratio as a signed change to two decimals: 1.00042 -> "+0.04%".
fn exact_percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".into();
    }
    format!("{:+.2}%", (ratio - 1.0) * 100.0)
}

/// A value in its unit, scaled for reading: 1234567 ns -> "1.23 ms".
pub fn value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let scaled = |steps: &[(f64, &str)]| {
        let (div, name) = steps
            .iter()
            .rev()
            .find(|(d, _)| v.abs() >= *d)
            .unwrap_or(&steps[0]);
        format!("{:.3} {name}", v / div)
    };
    match unit {
        "ns" => scaled(&[(1.0, "ns"), (1e3, "µs"), (1e6, "ms"), (1e9, "s")]),
        "ms" => scaled(&[(1e-3, "µs"), (1.0, "ms"), (1e3, "s")]),
        "B/s" => scaled(&[
            (1.0, "B/s"),
            (1024.0, "KiB/s"),
            (1048576.0, "MiB/s"),
            (1073741824.0, "GiB/s"),
        ]),
        "elem/s" => scaled(&[
            (1.0, "elem/s"),
            (1e3, "Kelem/s"),
            (1e6, "Melem/s"),
            (1e9, "Gelem/s"),
        ]),
        "requests" => format!("{:.2}%", v * 100.0),
        "instr" | "cycles" => format!("{} {unit}", grouped(v)),
        other => format!("{v:.2} {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::regress::stats::RatioEstimate;

    fn comparison(verdict: Verdict) -> Comparison {
        Comparison {
            baseline: "main".into(),
            current: "new".into(),
            rows: vec![Row {
                benchmark: "g/slow".into(),
                metric: "time".into(),
                statistic: "p95".into(),
                unit: "ns".into(),
                baseline: 1_000_000.0,
                current: 1_300_000.0,
                estimate: RatioEstimate {
                    ratio: 1.3,
                    low: 1.25,
                    high: 1.35,
                    significant: true,
                },
                test: "bootstrap".into(),
                verdict,
                fired: vec!["p95 worse by > 20%".into()],
            }],
            removed: vec!["g/gone".into()],
            added: vec![],
            notes: vec!["CPU: baseline A, now B".into()],
            rules: vec!["FAIL: p95 worse by > 20%".into()],
            verdict,
        }
    }

    #[test]
    fn markdown_leads_with_the_verdict_and_lists_flagged_rows() {
        let md = markdown(&comparison(Verdict::Fail));
        assert!(
            md.starts_with("### inferbench compare: FAIL (1 failed, 0 warned, 1 compared)"),
            "{md}"
        );
        assert!(md.contains("| g/slow"), "{md}");
        assert!(
            md.contains("1.000 ms") && md.contains("1.300 ms") && md.contains("+30.0%"),
            "{md}"
        );
        assert!(md.contains("<details>") && md.contains("removed (in the baseline only): g/gone"));
        assert!(md.contains("note: CPU: baseline A, now B"));
    }

    #[test]
    fn quiet_table_hides_ok_rows() {
        let t = table(&comparison(Verdict::Ok), true);
        assert!(!t.contains("g/slow"), "{t}");
        assert!(t.contains("no regression"));
    }

    #[test]
    fn values_scale_to_readable_units() {
        assert_eq!(value(1500.0, "ns"), "1.500 µs");
        assert_eq!(value(2.5, "ms"), "2.500 ms");
        assert_eq!(value(0.5, "ms"), "500.000 µs");
        assert_eq!(value(3.0 * 1073741824.0, "B/s"), "3.000 GiB/s");
        assert_eq!(value(72.5, "tok/s"), "72.50 tok/s");
        assert_eq!(percent(0.9), "-10.0%");
    }
}

//! A comparison (`inferbench compare`'s rows) as an HTML table with its verdicts coloured.

use super::page::{self, Cell};
use super::status::Status;
use crate::regress::render::value;
use crate::regress::{Comparison, Verdict};

fn status(v: Verdict) -> Status {
    match v {
        Verdict::Ok => Status::Ok,
        Verdict::Warn => Status::Warn,
        Verdict::Fail => Status::Bad,
    }
}

fn change(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:+.1}%", (ratio - 1.0) * 100.0)
    } else {
        "n/a".into()
    }
}

/// The verdict line, every row, and the notes.
pub fn html(id: &str, c: &Comparison) -> String {
    let (fail, warn) = (c.count(Verdict::Fail), c.count(Verdict::Warn));
    let overall = status(c.verdict);
    let mut out = format!(
        r#"<p>{} against baseline {}: <span class="badge {}" data-verdict="{}">{}</span> ({fail} failed, {warn} warned, {} compared)</p>"#,
        super::escape(&c.current),
        super::escape(&c.baseline),
        overall.class(),
        c.verdict.to_string().to_lowercase(),
        match c.verdict {
            Verdict::Fail => "FAIL",
            Verdict::Warn => "WARN",
            Verdict::Ok => "no regression",
        },
        c.rows.len()
    );
    let rows: Vec<Vec<Cell>> = c
        .rows
        .iter()
        .map(|r| {
            let e = &r.estimate;
            let interval = if r.test == "exact" {
                "exact".into()
            } else if e.low.is_finite() && e.high.is_finite() {
                format!("{} .. {}", change(e.low), change(e.high))
            } else {
                "untested".into()
            };
            let verdict = if e.significant || r.verdict != Verdict::Ok || r.test == "exact" {
                r.verdict.to_string()
            } else {
                format!("{} (noise)", r.verdict)
            };
            vec![
                Cell::text(&r.benchmark),
                Cell::text(format!("{} {}", r.metric, r.statistic)),
                Cell::num(value(r.baseline, &r.unit)),
                Cell::num(value(r.current, &r.unit)),
                Cell::num(change(e.ratio)),
                Cell::num(interval),
                Cell::status(status(r.verdict), verdict),
                Cell::text(r.fired.join("; ")),
            ]
        })
        .collect();
    out += &page::table(
        id,
        &[
            "benchmark",
            "metric",
            "baseline",
            "current",
            "change",
            "95% CI",
            "verdict",
            "rules fired",
        ],
        &rows,
    );
    let mut notes: Vec<String> = c.notes.clone();
    if !c.added.is_empty() {
        notes.push(format!("new (not in the baseline): {}", c.added.join(", ")));
    }
    if !c.removed.is_empty() {
        notes.push(format!(
            "removed (only in the baseline): {}",
            c.removed.join(", ")
        ));
    }
    for note in notes {
        out += &format!(r#"<p class="note">{}</p>"#, super::escape(&note));
    }
    out += &format!(
        r#"<p class="note">Rules: {}.</p>"#,
        super::escape(&c.rules.join("; "))
    );
    out
}

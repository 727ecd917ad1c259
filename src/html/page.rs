//! The page around the charts: one self-contained HTML document (styles inline, no fonts,
//! scripts or images from elsewhere, and a Content-Security-Policy that forbids fetching any),
//! and the small pieces every section uses: tables, key-value lists, status cells.

use std::fmt::Write;

use super::escape::escape;
use super::status::Status;

/// What a static report may load: nothing but its own inline styles and data: images.
pub const REPORT_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

pub const STYLE: &str = r#"
:root { --ok:#1a7f37; --ok-bg:#dafbe1; --warn:#9a6700; --warn-bg:#fff8c5; --bad:#cf222e; --bad-bg:#ffebe9; --muted:#57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header.top { background: #24292f; color: #fff; padding: 12px 20px; }
header.top h1 { margin: 0; font-size: 20px; }
header.top p { margin: 2px 0 0; color: #d0d7de; }
main { padding: 12px 20px 40px; max-width: 1400px; margin: 0 auto; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px 16px; margin: 14px 0; }
h2 { font-size: 17px; margin: 0 0 8px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 14px; }
@media (max-width: 700px) { .grid { grid-template-columns: 1fr; } main { padding: 8px; } section { padding: 8px; } }
figure.chart { margin: 0; min-width: 0; max-width: 860px; }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption.title { font-weight: 600; margin-bottom: 4px; }
.tick { font-size: 11px; fill: #57606a; }
.axis-label { font-size: 12px; fill: #1f2328; }
.mark-label { font-size: 11px; fill: #d00; font-weight: 600; }
ul.legend { list-style: none; padding: 0; margin: 4px 0; display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 12px; }
ul.legend li { display: flex; align-items: center; gap: 4px; white-space: nowrap; }
p.caption, p.note { color: var(--muted); font-size: 12px; margin: 4px 0; }
p.empty { color: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f6f8fa; }
td.text, th.text { text-align: left; white-space: normal; max-width: 340px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
.status-ok { background: var(--ok-bg); color: var(--ok); }
.status-warn { background: var(--warn-bg); color: var(--warn); }
.status-bad { background: var(--bad-bg); color: var(--bad); }
.status-none { color: var(--muted); }
span.badge { padding: 1px 7px; border-radius: 10px; font-weight: 600; font-size: 12px; }
details pre { background: #f6f8fa; padding: 8px; overflow: auto; max-height: 400px; font-size: 12px; }
"#;

/// A whole document: `<head>` with the policy and styles, a top bar, then `body`.
pub fn document(
    title: &str,
    subtitle: &str,
    body: &str,
    policy: &str,
    script: Option<&str>,
) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t}</title><style>{STYLE}</style></head>
<body><header class="top"><h1>{t}</h1><p id="subtitle">{s}</p></header>
<main>{body}</main>"#,
        t = escape(title),
        s = escape(subtitle),
    );
    if let Some(script) = script {
        let _ = write!(out, "<script>{script}</script>");
    }
    out += "</body></html>\n";
    out
}

/// One cell of a table: its text (escaped here), and how it is styled.
pub struct Cell {
    pub text: String,
    pub class: &'static str,
}

impl Cell {
    pub fn num(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            class: "",
        }
    }

    pub fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            class: "text",
        }
    }

    pub fn status(status: Status, text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            class: status.class(),
        }
    }
}

/// A table with a header row; the first column is text. `id` makes it findable.
pub fn table(id: &str, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut out = format!(
        r#"<div class="scroll"><table id="{}"><thead><tr>"#,
        escape(id)
    );
    for (i, h) in headers.iter().enumerate() {
        let class = if i == 0 { r#" class="text""# } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out += "</tr></thead><tbody>";
    for row in rows {
        out += "<tr>";
        for cell in row {
            if cell.class.is_empty() {
                let _ = write!(out, "<td>{}</td>", escape(&cell.text));
            } else {
                let _ = write!(
                    out,
                    r#"<td class="{}">{}</td>"#,
                    cell.class,
                    escape(&cell.text)
                );
            }
        }
        out += "</tr>";
    }
    out += "</tbody></table></div>";
    out
}

/// A definition list of (name, value) pairs.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let mut out = String::from(r#"<dl class="kv">"#);
    for (k, v) in pairs {
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    }
    out += "</dl>";
    out
}

/// A value pretty-printed as JSON in a closed `<details>`.
pub fn json_details(summary: &str, value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("({e})"));
    format!(
        "<details><summary>{}</summary><pre>{}</pre></details>",
        escape(summary),
        escape(&text)
    )
}

/// Figures in a responsive grid: two or more columns on a wide screen, one on a narrow one.
pub fn grid(items: &[String]) -> String {
    format!(r#"<div class="grid">{}</div>"#, items.concat())
}

pub fn section(id: &str, title: &str, body: &str) -> String {
    format!(
        r#"<section id="{}"><h2>{}</h2>{body}</section>"#,
        escape(id),
        escape(title)
    )
}

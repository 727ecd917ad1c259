//! `inferbench report`: one self-contained HTML file from any mix of runs (every kind), with
//! overlays when there are several, the comparison against `--baseline`, and Criterion's
//! results when asked. It reads; it never measures.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::page::{self, REPORT_POLICY};
use super::{comparison, criterion, history, http, inference, instructions, retrieval, Labelled};
use crate::exit::usage;
use crate::regress::{self, CompareInput};
use crate::report::http::HttpRun;
use crate::report::instructions::InstructionRun;
use crate::report::retrieval::RetrievalRun;
use crate::report::RunResult;
use crate::results::{kind_of, run_file, write_atomic, RunFile, RunHeader, RUN_FILE};

/// Change points: the smallest shift of a level that counts (as `history show`'s default).
const DEFAULT_MIN_EFFECT: f64 = 0.05;

/// What to draw, and where.
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    /// run.json files, run folders, or folders of run folders (every run below is taken).
    pub inputs: Vec<PathBuf>,
    pub baseline: Option<PathBuf>,
    /// Criterion's results folder (target/criterion), and the saved baseline to compare with.
    pub criterion: Option<PathBuf>,
    pub criterion_baseline: Option<String>,
    /// A history file (`inferbench history`): its series drawn with their change points.
    pub history: Option<PathBuf>,
    /// Only the history's benchmarks matching this.
    pub history_bench: Option<regex::Regex>,
    pub output: PathBuf,
}

pub struct Written {
    pub path: PathBuf,
    pub runs: usize,
    pub bytes: usize,
}

/// A run of any kind, read back.
pub enum AnyRun {
    Inference(Box<RunResult>),
    Retrieval(Box<RetrievalRun>),
    Http(Box<HttpRun>),
    Instructions(Box<InstructionRun>),
}

impl AnyRun {
    pub fn load(path: &Path) -> Result<AnyRun> {
        let file = run_file(path);
        Ok(match kind_of(&file)?.0.as_str() {
            RunResult::KIND => AnyRun::Inference(Box::new(RunResult::load(&file)?)),
            RetrievalRun::KIND => AnyRun::Retrieval(Box::new(RetrievalRun::load(&file)?)),
            HttpRun::KIND => AnyRun::Http(Box::new(HttpRun::load(&file)?)),
            InstructionRun::KIND => AnyRun::Instructions(Box::new(InstructionRun::load(&file)?)),
            other => bail!("{}: unknown kind {other:?}", file.display()),
        })
    }

    pub fn header(&self) -> &RunHeader {
        match self {
            AnyRun::Inference(r) => &r.header,
            AnyRun::Retrieval(r) => &r.header,
            AnyRun::Http(r) => &r.header,
            AnyRun::Instructions(r) => &r.header,
        }
    }
}

/// The run files an input names: itself, its run.json, or every run.json one or two levels
/// below it (a results folder).
pub fn find_runs(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    if !input.is_dir() {
        return Err(usage(format!(
            "{}: no such file or folder",
            input.display()
        )));
    }
    if input.join(RUN_FILE).is_file() {
        return Ok(vec![input.join(RUN_FILE)]);
    }
    let mut found = Vec::new();
    let entries =
        std::fs::read_dir(input).with_context(|| format!("{}: cannot list", input.display()))?;
    for entry in entries.flatten() {
        let file = entry.path().join(RUN_FILE);
        if file.is_file() {
            found.push(file);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(usage(format!(
            "{}: no run.json in it or in the folders directly below it",
            input.display()
        )));
    }
    Ok(found)
}

/// Read every input and the baseline, draw, and write the page atomically.
pub fn write(request: &ReportRequest) -> Result<Written> {
    let mut paths = Vec::new();
    for input in &request.inputs {
        paths.extend(find_runs(input)?);
    }
    let runs = paths
        .iter()
        .map(|p| Ok((p.clone(), AnyRun::load(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let baseline = match &request.baseline {
        Some(b) => {
            let file = run_file(b);
            Some((file.clone(), AnyRun::load(&file)?))
        }
        None => None,
    };
    let out_dir = request
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut extra = Vec::new();
    if let Some(root) = &request.criterion {
        extra.push(criterion::section(
            root,
            request.criterion_baseline.as_deref(),
            &out_dir,
        )?);
    }
    if let Some(db) = &request.history {
        extra.push(history::section(
            db,
            request.history_bench.as_ref(),
            DEFAULT_MIN_EFFECT,
        )?);
    }
    if runs.is_empty() && extra.is_empty() {
        return Err(usage(
            "nothing to report: give run folders, --criterion DIR or --history FILE",
        ));
    }
    let html = render(&runs, baseline.as_ref(), &extra);
    write_atomic(&request.output, html.as_bytes())?;
    Ok(Written {
        path: request.output.clone(),
        runs: runs.len(),
        bytes: html.len(),
    })
}

/// The whole page: a summary of the runs, the comparisons against the baseline, then one
/// section per kind with every run of that kind overlaid.
pub fn render(
    runs: &[(PathBuf, AnyRun)],
    baseline: Option<&(PathBuf, AnyRun)>,
    extra: &[String],
) -> String {
    let mut body = String::new();
    let all: Vec<&(PathBuf, AnyRun)> = runs.iter().chain(baseline).collect();
    if !runs.is_empty() {
        body += &summary(runs, baseline);
    }
    if let Some((base_path, _)) = baseline {
        let mut comparisons = String::new();
        for (path, _) in runs {
            comparisons += &compare_html(base_path, path);
        }
        body += &page::section("comparison", "Against the baseline", &comparisons);
    }
    // Each kind's runs, labelled; the baseline last and dashed.
    macro_rules! kind {
        ($variant:ident) => {{
            let mut list = Vec::new();
            for (i, (_, run)) in all.iter().enumerate() {
                if let AnyRun::$variant(r) = run {
                    let is_base = baseline.is_some() && i == all.len() - 1;
                    let id = &r.header.run_id;
                    list.push(Labelled {
                        label: if is_base {
                            format!("baseline: {id}")
                        } else {
                            id.clone()
                        },
                        run: &**r,
                        dashed: is_base || (!list.is_empty()),
                        index: i,
                        prefix: Some(if is_base {
                            "baseline".to_string()
                        } else {
                            id.clone()
                        }),
                    });
                }
            }
            // One run of this kind: its series need no run name.
            if list.len() == 1 {
                list[0].prefix = None;
            }
            list
        }};
    }
    let inference_runs = kind!(Inference);
    if !inference_runs.is_empty() {
        body += &inference::section(&inference_runs);
    }
    let retrieval_runs = kind!(Retrieval);
    if !retrieval_runs.is_empty() {
        body += &retrieval::section(&retrieval_runs);
    }
    let http_runs = kind!(Http);
    if !http_runs.is_empty() {
        body += &http::section(&http_runs);
    }
    let count_runs = kind!(Instructions);
    if !count_runs.is_empty() {
        body += &instructions::section(&count_runs);
    }
    for section in extra {
        body += section;
    }
    let subtitle = format!(
        "{} run{}{} · written {} by inferbench {}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        if baseline.is_some() {
            " and a baseline"
        } else {
            ""
        },
        crate::results::now_rfc3339(),
        env!("CARGO_PKG_VERSION")
    );
    page::document("inferbench report", &subtitle, &body, REPORT_POLICY, None)
}

fn summary(runs: &[(PathBuf, AnyRun)], baseline: Option<&(PathBuf, AnyRun)>) -> String {
    let rows: Vec<Vec<page::Cell>> = runs
        .iter()
        .map(|r| (r, false))
        .chain(baseline.map(|b| (b, true)))
        .map(|((path, run), is_base)| {
            let h = run.header();
            vec![
                page::Cell::text(if is_base {
                    format!("{} (baseline)", h.run_id)
                } else {
                    h.run_id.clone()
                }),
                page::Cell::text(&h.kind),
                page::Cell::text(format!("{:?}", h.status).to_lowercase()),
                page::Cell::text(&h.started_at),
                page::Cell::text(&h.git_commit),
                page::Cell::text(&h.machine.cpu_model),
                page::Cell::text(path.display().to_string()),
            ]
        })
        .collect();
    page::section(
        "runs",
        "Runs",
        &page::table(
            "runs-table",
            &["run", "kind", "status", "started", "commit", "CPU", "file"],
            &rows,
        ),
    )
}

/// One run against the baseline, as `inferbench compare` judges it; a refused comparison
/// (other kinds, other count profiles) is said, not fatal.
fn compare_html(base: &Path, current: &Path) -> String {
    let input = CompareInput::Runs {
        base: base.to_path_buf(),
        current: current.to_path_buf(),
    };
    let result = input
        .load()
        .and_then(|sides| sides.compare(&regress::RegressSection::default(), false));
    match result {
        Ok(c) => comparison::html("comparison-table", &c),
        Err(e) => format!(
            r#"<p class="note">{}: not compared: {}</p>"#,
            super::escape(&current.display().to_string()),
            super::escape(&format!("{e:#}"))
        ),
    }
}

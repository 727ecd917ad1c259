//! Retrieval runs in a report: the ann-benchmarks Pareto plots (recall against single-thread
//! queries/s and against p95 latency), one point per ef with the headline marked, and the
//! index's build time and memory.

use super::chart::{Axis, Chart, Mark, Series, Style};
use super::page::{self, Cell};
use super::{header, status, Labelled};
use crate::metrics::Reading;
use crate::report::retrieval::{EfScenario, RetrievalRun};

pub fn section(runs: &[Labelled<RetrievalRun>]) -> String {
    let charts = [
        pareto(
            runs,
            "retrieval-recall-qps",
            "Recall against single-thread queries/s",
            Axis::log("queries/s, one thread (log scale)"),
            |s| s.single_thread_qps,
        )
        .html(),
        pareto(
            runs,
            "retrieval-recall-p95",
            "Recall against p95 query latency",
            Axis::log("p95 latency per query (ms, log scale)"),
            |s| s.latency.p95_ms,
        )
        .html(),
    ];
    let mut out = page::grid(&charts);
    for run in runs {
        let r = run.run;
        out += &format!("<h3>{}</h3>", super::escape(&run.label));
        let built = match (r.index.build_s, r.index.load_s) {
            (Some(b), _) => format!("built in {b:.1} s on {} threads", r.index.build_threads),
            (None, Some(l)) => format!("reloaded from the cache in {l:.1} s"),
            _ => "-".into(),
        };
        let memory = match &r.index.memory_bytes {
            Reading::Measured { value } | Reading::Estimated { value, .. } => header::mib(*value),
            Reading::Unavailable { reason } => format!("unavailable: {reason}"),
        };
        out += &header::block(
            &r.header,
            vec![
                (
                    "data set",
                    format!(
                        "{} ({}): {} vectors × {} dims, {} queries, {}",
                        r.dataset.name,
                        r.dataset.source,
                        r.dataset.vectors,
                        r.dataset.dim,
                        r.dataset.queries,
                        r.dataset.metric
                    ),
                ),
                (
                    "index",
                    format!(
                        "{} M={} ef_construction={}",
                        r.index.library, r.index.m, r.index.ef_construction
                    ),
                ),
                ("build", built),
                ("index memory", memory),
                ("search", crate::report::retrieval::search_summary(&r.index)),
                (
                    "ground truth",
                    format!(
                        "top-{}: {} ({:.1} s)",
                        r.ground_truth.k, r.ground_truth.method, r.ground_truth.seconds
                    ),
                ),
                ("headline", headline_text(r)),
            ],
            r.dataset.parameters.as_ref(),
        );
        out += &ef_table(run);
        if !r.targets.is_empty() {
            let rows: Vec<Vec<Cell>> = r
                .targets
                .iter()
                .map(|c| {
                    let st = if c.met {
                        status::Status::Ok
                    } else {
                        status::Status::Bad
                    };
                    vec![
                        Cell::text(&c.target),
                        Cell::status(st, st.word()),
                        Cell::text(&c.detail),
                    ]
                })
                .collect();
            out += &page::table(
                &format!("targets-{}", run.index),
                &["target", "status", "detail"],
                &rows,
            );
        }
    }
    page::section("retrieval", "Retrieval", &out)
}

fn headline_text(r: &RetrievalRun) -> String {
    let h = &r.headline;
    match (h.ef, h.recall, h.p95_ms) {
        (Some(ef), Some(recall), Some(p95)) => format!(
            "recall@{} {recall:.4} at ef={ef}, p95 {p95:.3} ms (target recall {})",
            r.ground_truth.k, h.recall_target
        ),
        _ => h.note.clone().unwrap_or_else(|| "none".into()),
    }
}

fn pareto(
    runs: &[Labelled<RetrievalRun>],
    id: &str,
    title: &str,
    y: Axis,
    value: fn(&EfScenario) -> f64,
) -> Chart {
    let mut chart = Chart::new(id, title, Axis::fit("recall@k"), y);
    for (i, run) in runs.iter().enumerate() {
        let mut points: Vec<(f64, f64)> = run
            .run
            .scenarios
            .iter()
            .map(|s| (s.recall, value(s)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.series.push(Series {
            name: run.series_name("one point per ef"),
            points,
            colour: i,
            dashed: run.dashed,
            style: Style::LineAndPoints,
        });
        if let Some(s) = run
            .run
            .headline
            .ef
            .and_then(|ef| run.run.scenarios.iter().find(|s| s.ef == ef))
        {
            chart.marks.push(Mark {
                x: s.recall,
                y: value(s),
                label: format!("headline ef={}", s.ef),
            });
        }
    }
    chart.caption = Some(
        "Up and to the right is better. Each point is one ef of the sweep; the ring marks the \
         headline (the smallest ef reaching the target recall)."
            .into(),
    );
    chart
}

fn ef_table(run: &Labelled<RetrievalRun>) -> String {
    let target = run.run.headline.recall_target;
    let rows: Vec<Vec<Cell>> = run
        .run
        .scenarios
        .iter()
        .map(|s| {
            let st = status::retrieval(s, target);
            vec![
                Cell::text(&s.name),
                Cell::status(st, format!("{:.4}", s.recall)),
                Cell::num(format!("{:.2}", s.recall_min)),
                Cell::num(format!("{:.3}", s.latency.p50_ms)),
                Cell::num(format!("{:.3}", s.latency.p95_ms)),
                Cell::num(format!("{:.3}", s.latency.p99_ms)),
                Cell::num(format!("{:.0}", s.single_thread_qps)),
                Cell::num(s.batch_qps.as_ref().map_or("-".into(), |q| {
                    format!("{:.0} ({} threads)", q.mean, s.batch_threads)
                })),
            ]
        })
        .collect();
    page::table(
        &format!("efs-{}", run.index),
        &[
            "ef",
            "recall@k",
            "worst query recall",
            "p50 (ms)",
            "p95 (ms)",
            "p99 (ms)",
            "QPS, 1 thread",
            "batch QPS",
        ],
        &rows,
    )
}

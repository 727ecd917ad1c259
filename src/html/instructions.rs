//! Instruction-count runs in a report: the counts per workload and their profile.

use super::page::{self, Cell};
use super::{header, Labelled};
use crate::report::instructions::{grouped, InstructionRun};

pub fn section(runs: &[Labelled<InstructionRun>]) -> String {
    let mut out = String::new();
    for run in runs {
        let r = run.run;
        out += &format!("<h3>{}</h3>", super::escape(&run.label));
        let profile = r.profile.as_ref().map_or("-".into(), |p| {
            format!(
                "{} {} ({}), {}, {}",
                p.arch,
                p.build,
                p.features.join(" "),
                p.rustc,
                p.valgrind
            )
        });
        out += &header::block(&r.header, vec![("count profile", profile)], None);
        let rows: Vec<Vec<Cell>> = r
            .benchmarks
            .iter()
            .map(|b| {
                let get = |k: &str| b.per_iteration.get(k).map_or("-".into(), |v| grouped(*v));
                let median = {
                    let mut t = b.time_ns.clone();
                    t.sort_by(f64::total_cmp);
                    t.get(t.len() / 2)
                        .map_or("-".into(), |ns| format!("{:.1}", ns / 1e3))
                };
                vec![
                    Cell::text(&b.name),
                    Cell::text(&b.what),
                    Cell::num(get("Ir")),
                    Cell::num(get("EstimatedCycles")),
                    Cell::num(get("D1mr")),
                    Cell::num(get("DLmr")),
                    Cell::num(median),
                ]
            })
            .collect();
        out += &page::table(
            &format!("counts-{}", run.index),
            &[
                "workload",
                "what",
                "instructions / iteration",
                "estimated cycles",
                "L1 data read misses",
                "LL data read misses",
                "native time (µs, advisory)",
            ],
            &rows,
        );
    }
    page::section("instructions", "Instruction counts", &out)
}

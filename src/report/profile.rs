//! `inferbench profile`'s text: the profiling's own cost, then the prefill's and a decode
//! step's time by kind of op, and a decode step's heaviest ops.

use std::time::Duration;

use super::columns::column;
use super::table::markdown_of;
use crate::engine::profile::{OpRow, Profile};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn table(rows: &[OpRow], count_label: &str) -> String {
    let columns = vec![
        column("op", |r: &OpRow| r.label.clone()),
        column(count_label, |r: &OpRow| {
            if r.count > 0.0 {
                format!("{:.0}", r.count)
            } else {
                "-".into()
            }
        }),
        column("ms", |r: &OpRow| format!("{:.3}", r.ms)),
        column("share", |r: &OpRow| format!("{:.1}%", r.share * 100.0)),
        column("GB/s", |r: &OpRow| {
            r.gb_per_s.map_or("-".into(), |g| format!("{g:.2}"))
        }),
    ];
    markdown_of(&columns, rows)
}

pub fn render(p: &Profile) -> String {
    let [(plain_prefill, plain_step), (prof_prefill, prof_step)] = p.overhead();
    let pct = |a: Duration, b: Duration| {
        (b.as_secs_f64() / a.as_secs_f64().max(f64::MIN_POSITIVE) - 1.0) * 100.0
    };
    let mut out = format!(
        "batch {} | prompt {} tokens | {} decode steps | {} rounds of each\n\
         profiling's own cost (medians): prefill {:.2} ms unprofiled, {:.2} ms profiled \
         ({:+.1}%); decode step {:.3} ms unprofiled, {:.3} ms profiled ({:+.1}%)\n",
        p.batch,
        p.prompt_tokens,
        p.steps,
        p.rounds(),
        ms(plain_prefill),
        ms(prof_prefill),
        pct(plain_prefill, prof_prefill),
        ms(plain_step),
        ms(prof_step),
        pct(plain_step, prof_step),
    );
    let (prefill_rows, decode_rows) = p.by_kind();
    let (prefill, step) = p.shown_times();
    out += &format!(
        "\nprefill, {:.2} ms (the profiled pass shown), by kind:\n",
        ms(prefill)
    );
    out += &table(&prefill_rows, "ops");
    out += &format!(
        "\ndecode, {:.3} ms a step (the profiled pass shown), by kind, per step:\n",
        ms(step)
    );
    out += &table(&decode_rows, "ops/step");
    out += "\ndecode by op, per step (the 12 heaviest):\n";
    let mut ops = p.decode_by_op();
    let between = ops.pop();
    ops.truncate(12);
    ops.extend(between);
    out += &table(&ops, "ops/step");
    out
}

//! Serving runs over time, from their 1-second windows: the load offered, sent and answered
//! second by second, E2E p95 second by second (where a ramp starts to hurt, a soak drifts, a
//! spike leaves a tail), and the server's own queue gauges on the same clock.

use super::chart::{Axis, Chart, Series, Style};
use super::Labelled;
use crate::report::http::{HttpRun, HttpScenario};

/// Scenarios with fewer windows than this say nothing over time.
const MIN_WINDOWS: usize = 3;

/// Gauges drawn from the server's metrics, in order of preference.
const SERVER_GAUGES: &[&str] = &[
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "tgi_queue_size",
    "tgi_batch_current_size",
    "inferbench_requests_running",
    "inferbench_requests_waiting",
];

fn with_windows<'a>(
    runs: &'a [Labelled<HttpRun>],
) -> Vec<(&'a Labelled<'a, HttpRun>, &'a HttpScenario)> {
    runs.iter()
        .flat_map(|r| r.run.scenarios.iter().map(move |s| (r, s)))
        .filter(|(_, s)| s.windows.as_ref().is_some_and(|w| w.len() >= MIN_WINDOWS))
        .collect()
}

/// The charts, none when no scenario has windows enough.
pub fn charts(runs: &[Labelled<HttpRun>]) -> Vec<Chart> {
    let scenarios = with_windows(runs);
    if scenarios.is_empty() {
        return Vec::new();
    }
    let mut load = Chart::new(
        "http-load-over-time",
        "Requests per second over time",
        Axis::linear("seconds into the scenario"),
        Axis::linear("requests per second"),
    );
    let mut e2e = Chart::new(
        "http-e2e-over-time",
        "E2E p95 over time",
        Axis::linear("seconds into the scenario"),
        Axis::log("E2E p95 of the requests ending in each second (ms, log scale)"),
    );
    let mut server = Chart::new(
        "http-server-over-time",
        "The server's queue over time (its /metrics)",
        Axis::linear("seconds into the scenario"),
        Axis::linear("requests"),
    );
    for (colour, (run, s)) in scenarios.iter().enumerate() {
        let windows = s.windows.as_deref().unwrap_or_default();
        let at = |t: u64| t as f64 + 0.5;
        for (what, dashed, pick) in [
            (
                "offered",
                true,
                (|w| w.offered) as fn(&crate::report::http::Window) -> u64,
            ),
            ("answered", false, |w| w.succeeded),
        ] {
            load.series.push(Series {
                name: run.series_name(&format!("{} {what}", s.name)),
                points: windows.iter().map(|w| (at(w.t), pick(w) as f64)).collect(),
                colour,
                dashed: dashed || run.dashed,
                style: Style::Line,
            });
        }
        e2e.series.push(Series {
            name: run.series_name(&s.name),
            points: windows
                .iter()
                .filter_map(|w| Some((at(w.t), w.e2e_p95_ms?)))
                .collect(),
            colour,
            dashed: run.dashed,
            style: Style::LineAndPoints,
        });
        let Some(m) = &s.server_metrics else { continue };
        for (i, (key, points)) in m
            .series
            .iter()
            .filter(|(k, _)| SERVER_GAUGES.contains(&k.split('{').next().unwrap_or(k)))
            .enumerate()
        {
            server.series.push(Series {
                name: run.series_name(&format!("{} {key}", s.name)),
                points: points.iter().map(|p| (p[0], p[1])).collect(),
                colour: colour + i,
                dashed: run.dashed,
                style: Style::LineAndPoints,
            });
        }
    }
    load.caption = Some(
        "Offered (dashed): requests the schedule asked for in each second; answered: requests \
         that succeeded in it. A gap between them is load the server did not keep up with."
            .into(),
    );
    e2e.caption = Some(
        "A rising line under steady load is the server slowing down (queueing, a leak); under \
         a ramp, where it turns up is where the server starts to saturate."
            .into(),
    );
    let mut out = vec![load, e2e];
    if !server.series.is_empty() {
        server.caption = Some(
            "Running and waiting requests as the server reported them, scraped on the same \
             clock as the windows."
                .into(),
        );
        out.push(server);
    }
    out
}

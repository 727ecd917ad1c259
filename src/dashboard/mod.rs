//! The live dashboard: a page served while a run goes on (`--dashboard` on run, retrieval,
//! load and serve) that polls the run's state once a second and redraws without reloading:
//! the current step and its progress, finished scenarios coloured by their targets, alerts,
//! live throughput and latency charts, the comparison against a baseline, and the results
//! so far to download. It serves its own page and script, the state, and the run's
//! run.json and scenarios.csv, read-only; nothing else.

mod alerts;
mod state;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::exit::usage;
use crate::html::page;
use crate::live::{self, Feed};
pub use state::Snapshot;

/// Where the dashboard listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8050";

const SCRIPT: &str = include_str!("app.js");

/// The page may load only from its own origin: its script, its state, its files.
const POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                      style-src 'unsafe-inline'; img-src data:";

#[derive(Debug, Clone)]
pub struct DashboardOptions {
    pub addr: String,
    /// The page's title: what is running ("inferbench load").
    pub title: String,
    /// A run to compare the results against as they come.
    pub baseline: Option<PathBuf>,
}

/// A dashboard being served; dropped with the process.
pub struct Dashboard {
    pub url: String,
}

#[derive(Clone)]
struct Shared {
    snapshot: Arc<Mutex<String>>,
    feed: &'static Feed,
    page: Arc<String>,
}

impl Dashboard {
    /// Bind now (a taken port fails before the run starts), then serve on a thread of its own.
    pub fn start(options: DashboardOptions) -> Result<Dashboard> {
        let addr: SocketAddr = options.addr.parse().map_err(|e| {
            usage(format!(
                "--dashboard {}: not an address like 127.0.0.1:8050 ({e})",
                options.addr
            ))
        })?;
        if !addr.ip().is_loopback() {
            eprintln!(
                "warning: --dashboard {addr}: other machines can reach this dashboard (it shows \
                 the run's settings and results; it has no password)"
            );
        }
        let listener = TcpListener::bind(addr)
            .map_err(|e| usage(format!("--dashboard {addr}: cannot listen there ({e})")))?;
        listener
            .set_nonblocking(true)
            .context("dashboard: setting the socket non-blocking")?;
        let bound = listener.local_addr().context("dashboard: its address")?;
        let feed = live::enable();
        let shared = Shared {
            snapshot: Arc::new(Mutex::new("{}".into())),
            feed,
            page: Arc::new(page_html(&options.title)),
        };
        let mut sampler =
            state::Sampler::new(feed, options.title.clone(), options.baseline.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("dashboard: starting its runtime")?;
        std::thread::Builder::new()
            .name("dashboard".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let snapshot = shared.snapshot.clone();
                    tokio::spawn(async move {
                        let mut tick = tokio::time::interval(Duration::from_secs(1));
                        loop {
                            tick.tick().await;
                            let json = serde_json::to_string(&sampler.tick())
                                .unwrap_or_else(|_| "{}".into());
                            if let Ok(mut s) = snapshot.lock() {
                                *s = json;
                            }
                        }
                    });
                    let app = Router::new()
                        .route("/", get(index))
                        .route("/app.js", get(script))
                        .route("/api/state", get(current))
                        .route("/files/{name}", get(file))
                        .with_state(shared);
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => {
                            if let Err(e) = axum::serve(l, app).await {
                                eprintln!("dashboard: stopped: {e}");
                            }
                        }
                        Err(e) => eprintln!("dashboard: cannot serve: {e}"),
                    }
                })
            })
            .context("dashboard: starting its thread")?;
        let url = format!("http://{bound}/");
        eprintln!("dashboard: {url}");
        Ok(Dashboard { url })
    }

    /// The run ended: keep serving until Ctrl-C (`interrupt` set), or for `linger`.
    pub fn linger(&self, interrupt: &AtomicBool, linger: Option<Duration>) {
        live::ended(); // the page now says "finished"
        let until = linger.map(|d| Instant::now() + d);
        if until.is_some_and(|u| u <= Instant::now()) {
            return;
        }
        // A run stopped by Ctrl-C already has the flag set: a second Ctrl-C quits.
        let already = interrupt.load(Ordering::SeqCst);
        eprintln!(
            "dashboard: the run ended; still serving {} {}",
            self.url,
            match (linger, already) {
                (Some(d), _) => format!("for {:.0} s", d.as_secs_f64()),
                (None, false) => "until Ctrl-C".into(),
                (None, true) => "until Ctrl-C again".into(),
            }
        );
        loop {
            if until.is_some_and(|u| Instant::now() >= u) {
                return;
            }
            if !already && interrupt.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn page_html(title: &str) -> String {
    let body = r#"
<section id="now"><h2>Now</h2>
<p><span class="badge status-none" id="run-status">starting</span> <b id="run-id"></b> <span id="run-kind" class="note"></span></p>
<p id="step">waiting for the run to start</p>
<div class="bar"><div id="bar-fill"></div></div>
<p class="note">finished: <b id="finished-total">0</b> · failed: <b id="failed-total">0</b> · <span id="updated"></span></p>
</section>
<section id="alerts-section"><h2>Alerts</h2><ul id="alerts"></ul><p class="note" id="no-alerts">none so far</p></section>
<div class="grid">
<figure class="chart" id="live-throughput"><figcaption class="title">Finished per second</figcaption><svg id="chart-rate" viewBox="0 0 640 300" role="img" aria-label="finished per second"></svg><ul class="legend" id="legend-rate"></ul></figure>
<figure class="chart" id="live-latency"><figcaption class="title">Latency over time</figcaption><svg id="chart-latency" viewBox="0 0 640 300" role="img" aria-label="latency"></svg><ul class="legend" id="legend-latency"></ul></figure>
</div>
<section id="scenarios-section"><h2>Finished scenarios</h2><div class="scroll"><table id="scenarios"><thead></thead><tbody></tbody></table></div><p class="note" id="no-rows">none finished yet</p></section>
<section id="comparison-section" hidden><h2>Against the baseline</h2><p id="comparison-summary"></p><div class="scroll"><table id="comparison"><thead><tr><th class="text">benchmark</th><th>metric</th><th>change</th><th>verdict</th></tr></thead><tbody></tbody></table></div></section>
<section id="downloads"><h2>Results so far</h2><p><a id="download-json" href="/files/run.json" download>run.json</a> · <a id="download-csv" href="/files/scenarios.csv" download>scenarios.csv</a></p></section>
<script src="/app.js"></script>
<style>.bar{height:10px;background:#eaeef2;border-radius:5px;overflow:hidden}#bar-fill{height:100%;width:0;background:#0072b2;transition:width .4s}#alerts li.bad{color:var(--bad)}#alerts li.warn{color:var(--warn)}</style>"#;
    page::document(
        title,
        "live dashboard · updates every second",
        body,
        POLICY,
        None,
    )
}

async fn index(State(s): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        s.page.as_str().to_owned(),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

async fn current(State(s): State<Shared>) -> Response {
    let body = s.snapshot.lock().map(|j| j.clone()).unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Only the run's two result files, by their fixed names.
async fn file(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let kind = match name.as_str() {
        "run.json" => "application/json",
        "scenarios.csv" => "text/csv; charset=utf-8",
        _ => return (StatusCode::NOT_FOUND, "not a file of this run").into_response(),
    };
    let Some(folder) = s.feed.run_folder() else {
        return (StatusCode::NOT_FOUND, "no results yet").into_response();
    };
    match tokio::fs::read(folder.join(&name)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not written yet").into_response(),
    }
}

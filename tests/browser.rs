//! The HTML report and the live dashboard in a real browser: headless Chromium (Debian's
//! package; scripts/test.sh installs it) loads each page; the checks read the DOM it built,
//! the network log it wrote (no request may leave the page's origin), and screenshots land in
//! target/screenshots/ for a person to look at.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value;

use crate::common::{inferbench, load_json, repo_root};

/// The browser: $CHROMIUM, or the first of the usual names on PATH.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("no Chromium found: install it (`apt-get install chromium`; scripts/test.sh does) or set CHROMIUM");
}

/// What one page load gave: the DOM after scripts ran, and the requests the page made.
pub(crate) struct Loaded {
    pub(crate) dom: String,
    /// (url, initiating origin) of every request a page started (not the browser's own).
    page_requests: Vec<(String, String)>,
}

fn browser(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .stderr(Stdio::null());
    c
}

/// Load `url`, let its scripts run for `budget_ms` of virtual time, dump the DOM.
pub(crate) fn load_page(url: &str, budget_ms: u32) -> Loaded {
    let dir = tempfile::tempdir().unwrap();
    let netlog = dir.path().join("net.json");
    let out = browser(&dir.path().join("profile"))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed on {url}");
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        page_requests: page_requests(&netlog),
    }
}

/// The requests pages started, from Chromium's net log: a URL_REQUEST_START_JOB whose
/// initiator is an origin (the browser's own background requests have "not an origin").
fn page_requests(netlog: &Path) -> Vec<(String, String)> {
    let log: Value = serde_json::from_str(&std::fs::read_to_string(netlog).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{}: not a net log: {e}", netlog.display()));
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64();
    let mut found = Vec::new();
    for e in log["events"].as_array().into_iter().flatten() {
        if e["type"].as_u64() != start_job {
            continue;
        }
        let (Some(url), Some(initiator)) = (
            e["params"]["url"].as_str(),
            e["params"]["initiator"].as_str(),
        ) else {
            continue;
        };
        if initiator != "not an origin" {
            found.push((url.to_string(), initiator.to_string()));
        }
    }
    found
}

pub(crate) fn screenshot(url: &str, file: &str, width: u32, height: u32, budget_ms: u32) {
    let shots = repo_root().join("target").join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let path = shots.join(file);
    // Up to three tries: on a loaded 2-core CI machine headless Chromium has once exited
    // successfully without writing the screenshot of a page holding an open event stream
    // (0 bytes; the same test passed alone three times out of three). A page that renders
    // blank every time still fails.
    let mut size = 0;
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let _ = std::fs::remove_file(&path);
        let out = browser(&dir.path().join("profile"))
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .arg(format!("--screenshot={}", path.display()))
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(out.status.success(), "chromium could not screenshot {url}");
        size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if size > 10_000 {
            return;
        }
    }
    panic!("{}: a blank screenshot ({size} bytes)", path.display());
}

/// The `data-points` of every series of the chart `id`; panics if the chart is missing.
fn chart_points(dom: &str, id: &str) -> Vec<usize> {
    let start = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no chart {id} in the page"));
    let end = dom[start..]
        .find("</figure>")
        .map_or(dom.len(), |e| start + e);
    Regex::new(r#"data-points="(\d+)""#)
        .unwrap()
        .captures_iter(&dom[start..end])
        .map(|c| c[1].parse().unwrap())
        .collect()
}

fn assert_drawn(dom: &str, id: &str) {
    let points = chart_points(dom, id);
    assert!(
        points.iter().any(|n| *n > 0),
        "chart {id} has no data points: {points:?}"
    );
}

/// The status class of the table row whose first cell is `name`, within the table `table_id`.
fn row_status(dom: &str, table_id: &str, name: &str) -> String {
    let start = dom
        .find(&format!(r#"id="{table_id}""#))
        .unwrap_or_else(|| panic!("no table {table_id}"));
    let end = dom[start..].find("</table>").unwrap() + start;
    let row = Regex::new(&format!(
        r#"<tr><td class="text">{}</td><td class="(status-[a-z]+)""#,
        regex::escape(name)
    ))
    .unwrap();
    row.captures(&dom[start..end])
        .unwrap_or_else(|| panic!("no row {name} in {table_id}"))[1]
        .to_string()
}

fn golden(kind: &str) -> PathBuf {
    repo_root().join("fixtures/golden").join(kind)
}

#[test]
fn the_report_draws_every_kind_escapes_names_and_stays_offline() {
    let dir = tempfile::tempdir().unwrap();
    // An inference run whose model name is markup.
    let hostile = dir.path().join("hostile");
    std::fs::create_dir_all(&hostile).unwrap();
    let mut run = load_json(&golden("inference").join("run.json"));
    run["model"]["name"] = Value::from("<script>alert('owned')</script>");
    run["config_name"] = Value::from("<img src=x onerror=alert(1)>");
    // Its first scenario with a roofline (the golden run predates them): 16.8 GB/s, 34% of
    // the peak; the others without, shown as "-".
    run["scenarios"][0]["roofline"] = serde_json::json!({
        "decode_bytes_per_step": 1.5e8, "decode_bytes_per_s": 1.68e10,
        "decode_bandwidth_share": 0.34, "prefill_flops": 2.8e10,
        "prefill_flops_per_s": 1.2e11, "prefill_flops_share": null, "peaks": "test"});
    std::fs::write(hostile.join("run.json"), run.to_string()).unwrap();
    let report = dir.path().join("report.html");
    let out = inferbench(&[
        "report",
        hostile.to_str().unwrap(),
        golden("retrieval").to_str().unwrap(),
        golden("http").to_str().unwrap(),
        "--baseline",
        golden("http-errors").to_str().unwrap(),
        "-o",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", crate::common::all_text(&out));
    let url = format!("file://{}", report.display());
    let page = load_page(&url, 500);
    let dom = &page.dom;

    for id in [
        "inference-ttft-cdf",
        "inference-itl-cdf",
        "inference-tpot-cdf",
        "inference-e2e-cdf",
        "inference-decode-by-batch",
        "inference-ttft-by-prompt",
        "retrieval-recall-qps",
        "retrieval-recall-p95",
        "http-ttft-percentiles",
        "http-e2e-percentiles",
        "http-throughput",
        "http-tokens",
        "http-ttft-cdf",
        "http-e2e-cdf",
    ] {
        assert_drawn(dom, id);
    }
    // One CDF line per scenario; the baseline overlaid, dashed, on the http charts.
    let scenarios = run["scenarios"].as_array().unwrap().len();
    assert_eq!(chart_points(dom, "inference-ttft-cdf").len(), scenarios);
    assert!(
        dom.contains(r#"data-series="baseline: p50""#),
        "no baseline overlay"
    );
    assert!(
        dom.contains("stroke-dasharray"),
        "the baseline is not dashed"
    );
    // The roofline columns: a share where the peak is known, the rate alone where not.
    assert!(
        dom.contains("decode GB/s (% of peak)"),
        "no roofline column"
    );
    assert!(
        dom.contains(">16.80 (34%)<") && dom.contains(">120.00<"),
        "roofline cells"
    );
    // The retrieval headline is marked.
    assert!(dom.contains(r#"class="mark""#) && dom.contains("headline ef="));
    // The comparison table, with its verdict coloured.
    assert!(dom.contains(r#"id="comparison-table""#));
    assert!(Regex::new(r#"data-verdict="(ok|warn|fail)""#)
        .unwrap()
        .is_match(dom));

    // Status colours follow the targets in the runs' own files.
    let retrieval = load_json(&golden("retrieval").join("run.json"));
    let target = retrieval["headline"]["recall_target"].as_f64().unwrap();
    for ef in retrieval["scenarios"].as_array().unwrap() {
        let recall = ef["recall"].as_f64().unwrap();
        let status = row_status(dom, "efs-1", ef["name"].as_str().unwrap());
        let expected = if recall >= target {
            "status-ok"
        } else if recall >= target - 0.02 {
            "status-warn"
        } else {
            "status-bad"
        };
        assert_eq!(status, expected, "ef {} recall {recall}", ef["name"]);
    }
    for s in load_json(&golden("http").join("run.json"))["scenarios"]
        .as_array()
        .unwrap()
    {
        assert_eq!(s["failed"], 0);
        assert_eq!(
            row_status(dom, "http-scenarios-2", s["name"].as_str().unwrap()),
            "status-ok"
        );
    }
    for s in load_json(&golden("http-errors").join("run.json"))["scenarios"]
        .as_array()
        .unwrap()
    {
        if s["error_rate"].as_f64().unwrap() > 0.01 {
            assert_eq!(
                row_status(dom, "http-scenarios-3", s["name"].as_str().unwrap()),
                "status-bad"
            );
        }
    }
    for s in run["scenarios"].as_array().unwrap() {
        let all_met = s["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["met"] == true);
        let status = row_status(dom, "scenarios-0", s["name"].as_str().unwrap());
        assert_eq!(all_met, status == "status-ok", "{}: {status}", s["name"]);
    }

    // Markup from a run is text: no element was made of it.
    assert!(
        dom.contains("&lt;script&gt;alert('owned')&lt;/script&gt;"),
        "the model name is not shown as text"
    );
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!dom.contains("<script"), "the report has a script element");
    assert!(
        !dom.contains("<img"),
        "markup from the run became an element"
    );
    // Opened from disk, the page fetches nothing at all.
    assert!(
        page.page_requests.is_empty(),
        "requests: {:?}",
        page.page_requests
    );

    screenshot(&url, "report.png", 1280, 4200, 500);
    screenshot(&url, "report-narrow.png", 420, 2400, 500);
}

/// Start a process and return it with the first stderr line that starts with `prefix`
/// (the rest of stderr keeps draining).
fn spawn_until(args: &[&str], prefix: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inferbench"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let found = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("inferbench {args:?} exited before saying {prefix:?}"))
            .unwrap();
        if let Some(rest) = line.strip_prefix(prefix) {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, found)
}

fn number_in(dom: &str, id: &str) -> u64 {
    let re = Regex::new(&format!(r#"id="{id}">(\d+)<"#)).unwrap();
    re.captures(dom)
        .unwrap_or_else(|| panic!("no number #{id} in the page"))[1]
        .parse()
        .unwrap()
}

#[test]
fn the_live_dashboard_follows_a_load_run() {
    let (mut server, listening) = spawn_until(
        &[
            "serve",
            "--mock",
            "--port",
            "0",
            "--mock-token-delay",
            "1ms",
        ],
        "listening on ",
    );
    let server_url = listening.split_whitespace().next().unwrap().to_string();
    let out = tempfile::tempdir().unwrap();
    let (mut load, dashboard) = spawn_until(
        &[
            "load",
            "--url",
            &server_url,
            "--stream",
            "-c",
            "1,2",
            "--duration",
            "4s",
            "--slo",
            "ttft=10s",
            "--baseline",
            golden("http").to_str().unwrap(),
            "--dashboard",
            "127.0.0.1:0",
            "--dashboard-linger",
            "4",
            "--report",
            "-o",
            out.path().to_str().unwrap(),
        ],
        "dashboard: ",
    );
    assert!(dashboard.starts_with("http://127.0.0.1:"), "{dashboard}");
    let origin = dashboard.trim_end_matches('/').to_string();

    std::thread::sleep(Duration::from_millis(1500));
    let first = load_page(&dashboard, 1500);
    screenshot(&dashboard, "dashboard.png", 1280, 1500, 1500);
    std::thread::sleep(Duration::from_millis(1500));
    let second = load_page(&dashboard, 1500);
    let (a, b) = (
        number_in(&first.dom, "finished-total"),
        number_in(&second.dom, "finished-total"),
    );
    assert!(a > 0 && b > a, "the live count did not move: {a} then {b}");
    assert!(first.dom.contains("running"));
    assert_drawn_live(&second.dom);

    // After the first scenario (4 s): its row, green, and the comparison with the baseline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let done = loop {
        let page = load_page(&dashboard, 1500);
        if page.dom.contains(r#"data-name="c2""#) {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "no finished scenario on the page"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        done.dom.contains(r#"data-status="ok" data-name="c1""#),
        "c1 is not green"
    );
    assert!(
        Regex::new(r#"<tr data-verdict="(ok|warn|fail)">"#)
            .unwrap()
            .is_match(&done.dom),
        "no comparison rows"
    );
    screenshot(&dashboard, "dashboard-narrow.png", 420, 1800, 1500);

    // Only the dashboard's own origin was asked for anything.
    for page in [&first, &second, &done] {
        assert!(!page.page_requests.is_empty(), "the page fetched nothing");
        for (url, initiator) in &page.page_requests {
            assert!(url.starts_with(&origin), "a request left the origin: {url}");
            assert_eq!(initiator.trim_end_matches('/'), origin);
        }
    }
    // It serves only its own files, read-only.
    let dashboard_get = |path: &str| {
        let (code, _) = crate::common::http_get(&format!("{origin}{path}"));
        code
    };
    assert_eq!(dashboard_get("/files/run.json"), 200);
    assert_eq!(dashboard_get("/files/scenarios.csv"), 200);
    assert_eq!(dashboard_get("/files/..%2Fetc%2Fpasswd"), 404);
    assert_eq!(dashboard_get("/files/report.html"), 404);
    assert_eq!(dashboard_get("/etc/passwd"), 404);

    let status = load.wait().unwrap();
    assert!(status.success(), "load failed: {status}");
    let _ = server.kill();
    let run_dir = std::fs::read_dir(out.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        run_dir.join("report.html").is_file(),
        "--report wrote nothing"
    );
}

fn assert_drawn_live(dom: &str) {
    let series = Regex::new(r#"data-points="(\d+)""#).unwrap();
    for id in ["chart-rate", "chart-latency"] {
        let start = dom.find(&format!(r#"id="{id}""#)).unwrap();
        let end = dom[start..].find("</svg>").unwrap() + start;
        let points: Vec<usize> = series
            .captures_iter(&dom[start..end])
            .map(|c| c[1].parse().unwrap())
            .collect();
        assert!(
            points.iter().any(|n| *n > 1),
            "{id}: no live line: {points:?}"
        );
    }
}

#[test]
fn a_load_run_is_drawn_second_by_second_with_the_server_s_queue() {
    let server = crate::common::start_serve(&["--mock", "--mock-token-delay", "3ms"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let o = inferbench(&[
        "load",
        "--url",
        &server.url,
        "--stream",
        "--max-tokens",
        "12",
        "--pattern",
        "ramp",
        "--from",
        "20",
        "--to",
        "200",
        "--duration",
        "4s",
        "--scrape-interval",
        "500ms",
        "--run-id",
        "ramp",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", crate::common::all_text(&o));
    let windows = load_json(&out.join("ramp/run.json"))["scenarios"][0]["windows"]
        .as_array()
        .unwrap()
        .len();
    let report = dir.path().join("report.html");
    let o = inferbench(&[
        "report",
        out.join("ramp").to_str().unwrap(),
        "-o",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", crate::common::all_text(&o));
    let url = format!("file://{}", report.display());
    let page = load_page(&url, 500);
    for id in [
        "http-load-over-time",
        "http-e2e-over-time",
        "http-server-over-time",
    ] {
        assert_drawn(&page.dom, id);
    }
    // Offered and answered, a point a second each.
    assert_eq!(
        chart_points(&page.dom, "http-load-over-time"),
        [windows, windows]
    );
    assert!(page.dom.contains("patterns at their mean"));
    screenshot(&url, "http-over-time.png", 1400, 2600, 500);
}

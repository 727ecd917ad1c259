//! What a run is doing right now, for whoever watches it (the live dashboard). Runners and
//! the progress bars publish here; nothing is collected unless a watcher switched it on, so
//! a run without a dashboard pays one atomic load per event. A leaf: it imports nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

static FEED: OnceLock<Feed> = OnceLock::new();
static ON: AtomicBool = AtomicBool::new(false);

/// Latencies kept per window; past this, every other one is dropped (a window of a
/// million requests still has a sound p95).
const WINDOW_CAP: usize = 20_000;

/// The current step (a scenario, an index build, a warm-up) and its progress.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub label: String,
    /// 0: no known end (a spinner).
    pub total: u64,
    pub position: u64,
    pub elapsed: Duration,
}

/// Requests (or queries, or generations) finished since the last `take_window`.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub finished: u64,
    pub failed: u64,
    /// Milliseconds, successful requests only.
    pub ttft_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
    pub seconds: f64,
}

#[derive(Debug)]
pub struct Feed {
    step: Mutex<(String, u64, Instant)>,
    position: AtomicU64,
    run_folder: Mutex<Option<PathBuf>>,
    window: Mutex<(Window, Instant)>,
    ended: AtomicBool,
}

/// Start collecting (once per process); the dashboard calls it before the run starts.
pub fn enable() -> &'static Feed {
    let feed = FEED.get_or_init(Feed::default);
    ON.store(true, Ordering::Release);
    feed
}

fn feed() -> Option<&'static Feed> {
    if ON.load(Ordering::Relaxed) {
        FEED.get()
    } else {
        None
    }
}

/// A new step began (a progress bar was made).
pub fn step(label: &str, total: u64) {
    if let Some(f) = feed() {
        if let Ok(mut s) = f.step.lock() {
            *s = (label.trim().to_string(), total, Instant::now());
        }
        f.position.store(0, Ordering::Relaxed);
    }
}

pub fn position(position: u64) {
    if let Some(f) = feed() {
        f.position.store(position, Ordering::Relaxed);
    }
}

/// The run's results folder, once it has one.
pub fn run_folder(path: PathBuf) {
    if let Some(f) = feed() {
        f.set_run_folder(path);
    }
}

/// The runner finished (complete or interrupted).
pub fn ended() {
    if let Some(f) = feed() {
        f.ended.store(true, Ordering::Release);
    }
}

/// One request (generation, query) finished: its TTFT and end-to-end latency when it
/// succeeded, None when it failed.
pub fn request(latencies: Option<(Option<Duration>, Duration)>) {
    let Some(f) = feed() else { return };
    let Ok(mut guard) = f.window.lock() else {
        return;
    };
    let w = &mut guard.0;
    w.finished += 1;
    match latencies {
        None => w.failed += 1,
        Some((ttft, e2e)) => {
            if let Some(t) = ttft {
                push(&mut w.ttft_ms, t);
            }
            push(&mut w.e2e_ms, e2e);
        }
    }
}

fn push(list: &mut Vec<f64>, d: Duration) {
    if list.len() >= WINDOW_CAP {
        // Halve, keeping every other: the distribution's shape stays.
        let kept: Vec<f64> = list.iter().step_by(2).copied().collect();
        *list = kept;
    }
    list.push(d.as_secs_f64() * 1e3);
}

impl Feed {
    pub fn set_run_folder(&self, path: PathBuf) {
        if let Ok(mut p) = self.run_folder.lock() {
            *p = Some(path);
        }
    }

    pub fn step(&self) -> Step {
        let (label, total, started) = self
            .step
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| (String::new(), 0, Instant::now()));
        Step {
            label,
            total,
            position: self.position.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }

    pub fn run_folder(&self) -> Option<PathBuf> {
        self.run_folder.lock().ok().and_then(|p| p.clone())
    }

    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// What finished since the last call, and over how long.
    pub fn take_window(&self) -> Window {
        let Ok(mut guard) = self.window.lock() else {
            return Window::default();
        };
        let window = std::mem::take(&mut guard.0);
        let since = std::mem::replace(&mut guard.1, Instant::now());
        Window {
            seconds: since.elapsed().as_secs_f64(),
            ..window
        }
    }
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            step: Mutex::new((String::new(), 0, Instant::now())),
            position: AtomicU64::new(0),
            run_folder: Mutex::new(None),
            window: Mutex::new((Window::default(), Instant::now())),
            ended: AtomicBool::new(false),
        }
    }
}

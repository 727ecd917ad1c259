//! Progress of long steps (scenarios, index builds, load runs): a bar on a terminal, and a plain line every tenth of the way
//! when stderr is a log file (CI) and the step runs past 10 s, so a 20-minute index build
//! never looks hung.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    plain: Option<Plain>,
    position: AtomicU64,
}

struct Plain {
    label: String,
    total: u64,
    started: Instant,
    /// The next tenth to report (1..=9).
    next_tenth: AtomicU64,
}

impl Progress {
    /// A bar of `total` steps; `total` 0 is a spinner (no plain lines).
    pub fn new(total: u64, label: &str) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = if !terminal {
            ProgressBar::hidden()
        } else if total == 0 {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(total)
        };
        let template = if total == 0 {
            "{prefix:>8} {spinner} {elapsed}"
        } else {
            "{prefix:>8} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta}) {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_string());
        if terminal && total == 0 {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        crate::live::step(label, total);
        let plain = (!terminal && total > 0).then(|| Plain {
            label: label.to_string(),
            total,
            started: Instant::now(),
            next_tenth: AtomicU64::new(1),
        });
        Progress {
            bar,
            plain,
            position: AtomicU64::new(0),
        }
    }

    pub fn set(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
        crate::live::position(position);
        self.bar.set_position(position);
        self.report_plain(position);
    }

    pub fn inc(&self, delta: u64) {
        let position = self.position.fetch_add(delta, Ordering::Relaxed) + delta;
        crate::live::position(position);
        self.bar.set_position(position);
        self.report_plain(position);
    }

    /// What the step is doing now, shown after the bar on a terminal.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    fn report_plain(&self, position: u64) {
        let Some(p) = &self.plain else { return };
        // Steps shorter than this print nothing: only long ones need reassuring.
        if p.started.elapsed() < Duration::from_secs(10) {
            return;
        }
        let tenth = position.saturating_mul(10) / p.total;
        let next = p.next_tenth.load(Ordering::Relaxed);
        if tenth < next || next > 9 {
            return;
        }
        if p.next_tenth
            .compare_exchange(next, tenth + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another thread reported this tenth
        }
        let elapsed = p.started.elapsed().as_secs_f64();
        let eta = elapsed * (p.total - position.min(p.total)) as f64 / position.max(1) as f64;
        eprintln!(
            "{}: {position}/{} ({}%), {elapsed:.0}s elapsed, about {eta:.0}s to go",
            p.label,
            p.total,
            tenth * 10
        );
    }
}

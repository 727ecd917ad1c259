//! Alerts on the live page: a target missed, an error rate over 1%, a latency over its SLO.
//! Each cause has a key; a key that fired stays quiet for the cooldown, so one cause alerts
//! once, not once a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A cause that fired is quiet for this long.
pub const COOLDOWN: Duration = Duration::from_secs(60);
/// Keep the newest this many alerts.
const KEEP: usize = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// Seconds since the dashboard started.
    pub at_s: f64,
    /// "warn" or "bad".
    pub level: &'static str,
    pub message: String,
}

pub struct Alerts {
    last_fired: HashMap<String, Instant>,
    pub list: Vec<Alert>,
    cooldown: Duration,
    started: Instant,
}

impl Alerts {
    pub fn new(cooldown: Duration) -> Alerts {
        Alerts {
            last_fired: HashMap::new(),
            list: Vec::new(),
            cooldown,
            started: Instant::now(),
        }
    }

    /// Raise an alert for `key` unless it fired within the cooldown; true when raised.
    pub fn raise(&mut self, key: &str, level: &'static str, message: String, now: Instant) -> bool {
        if let Some(last) = self.last_fired.get(key) {
            if now.duration_since(*last) < self.cooldown {
                return false;
            }
        }
        self.last_fired.insert(key.to_string(), now);
        self.list.push(Alert {
            at_s: now.duration_since(self.started).as_secs_f64(),
            level,
            message,
        });
        if self.list.len() > KEEP {
            self.list.remove(0);
        }
        true
    }
}

/// The share of `latencies_ms` above `max_ms`.
pub fn share_over(latencies_ms: &[f64], max_ms: f64) -> f64 {
    if latencies_ms.is_empty() {
        return 0.0;
    }
    latencies_ms.iter().filter(|l| **l > max_ms).count() as f64 / latencies_ms.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cause_alerts_once_per_cooldown() {
        let mut a = Alerts::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(a.raise("errors", "bad", "2% errors".into(), t0));
        assert!(!a.raise(
            "errors",
            "bad",
            "3% errors".into(),
            t0 + Duration::from_secs(5)
        ));
        assert!(a.raise(
            "slo:ttft",
            "warn",
            "ttft".into(),
            t0 + Duration::from_secs(5)
        ));
        assert!(a.raise(
            "errors",
            "bad",
            "4% errors".into(),
            t0 + Duration::from_secs(11)
        ));
        assert_eq!(a.list.len(), 3);
        assert_eq!(share_over(&[1.0, 2.0, 3.0, 4.0], 2.5), 0.5);
    }
}

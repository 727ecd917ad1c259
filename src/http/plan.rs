//! A load plan that several workers run together: the whole load's `inferbench load`
//! arguments, how many workers share it and when they start. Each worker sends its share
//! (1/N of a rate, its part of the users and requests), starts at the plan's wall-clock time
//! and writes an ordinary run that `inferbench merge` adds to the others exactly.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::exit::usage;
use crate::report::http::{LoadShape, WorkerInfo};

/// The plan file's layout version.
pub const PLAN_VERSION: u32 = 1;

/// Most workers a plan may have: far past any fleet, and a bound on what a plan or a
/// worker's run.json can make `merge` list.
pub const MAX_WORKERS: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub plan_version: u32,
    /// Names the run: worker I's run id is `ID-wI`, the merged run's is ID.
    pub id: String,
    pub workers: u32,
    /// When every worker starts sending (Unix seconds, UTC).
    pub start_at_unix_s: f64,
    /// The whole load as `inferbench load` arguments (no --output, --run-id or API key).
    pub load_args: Vec<String>,
}

impl Plan {
    pub fn read(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("--plan {}: cannot read it: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| usage(format!("--plan {}: {e:#}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Plan> {
        let plan: Plan = serde_json::from_str(text).context("not a plan (JSON)")?;
        if plan.plan_version != PLAN_VERSION {
            anyhow::bail!(
                "plan_version {} is not {PLAN_VERSION}, the one this inferbench reads",
                plan.plan_version
            );
        }
        if plan.workers == 0 || plan.workers > MAX_WORKERS {
            anyhow::bail!(
                "workers is {}: a plan has from 1 to {MAX_WORKERS} workers",
                plan.workers
            );
        }
        if !plan.start_at_unix_s.is_finite() || plan.start_at_unix_s < 0.0 {
            anyhow::bail!("start_at_unix_s {} is not a time", plan.start_at_unix_s);
        }
        crate::results::check_plain_name("the plan's id", &plan.id)?;
        Ok(plan)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Worker `index`'s place in the plan, checked against the worker count.
    pub fn share(&self, index: u32) -> Result<Share> {
        if index >= self.workers {
            return Err(usage(format!(
                "--worker-index {index}: the plan has {} workers (indices 0 to {})",
                self.workers,
                self.workers - 1
            )));
        }
        Ok(Share {
            index,
            workers: self.workers,
        })
    }

    /// Worker `index`'s run id.
    pub fn worker_run_id(&self, index: u32) -> String {
        format!("{}-w{index}", self.id)
    }
}

/// One worker's part of the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub index: u32,
    pub workers: u32,
}

impl Share {
    /// This worker's part of a count: the count split as evenly as it goes, the first
    /// workers taking one more of the remainder.
    pub fn of_count(&self, total: u64) -> u64 {
        let n = u64::from(self.workers);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    /// This worker's part of a user count or concurrency cap; every worker needs one.
    fn of_users(&self, total: u32, what: &str) -> Result<u32> {
        let part = self.of_count(u64::from(total)) as u32;
        if part == 0 {
            return Err(usage(format!(
                "{what} {total} over {} workers: every worker needs at least one; use fewer workers",
                self.workers
            )));
        }
        Ok(part)
    }

    /// This worker's part of one scenario's load.
    pub fn of_shape(&self, shape: &LoadShape) -> Result<LoadShape> {
        Ok(match shape {
            LoadShape::Closed { concurrency } => LoadShape::Closed {
                concurrency: self.of_users(*concurrency, "-c")?,
            },
            LoadShape::Probe { concurrency, runs } => LoadShape::Probe {
                concurrency: self.of_users(*concurrency, "--probe-concurrency")?,
                runs: *runs,
            },
            LoadShape::Open {
                arrival,
                max_concurrency,
            } => {
                let mut arrival = *arrival;
                arrival.rate /= f64::from(self.workers);
                LoadShape::Open {
                    arrival,
                    max_concurrency: self.of_users(*max_concurrency, "--max-concurrency")?,
                }
            }
            LoadShape::UserPattern { pattern } => {
                let share = pattern.scaled(1.0 / f64::from(self.workers));
                if share.max_rate() < 1.0 {
                    return Err(usage(format!(
                        "--to {} users over {} workers: every worker needs at least one user; use fewer workers",
                        pattern.max_rate(),
                        self.workers
                    )));
                }
                LoadShape::UserPattern { pattern: share }
            }
            LoadShape::Pattern {
                pattern,
                arrival,
                burstiness,
                max_concurrency,
            } => LoadShape::Pattern {
                pattern: pattern.scaled(1.0 / f64::from(self.workers)),
                arrival: *arrival,
                burstiness: *burstiness,
                max_concurrency: self.of_users(*max_concurrency, "--max-concurrency")?,
            },
        })
    }

    /// Each worker draws its own arrival schedule: the same seed everywhere would send the
    /// workers' requests in lockstep, a burstier load than the plan's.
    pub fn seed(&self, seed: u64) -> u64 {
        seed.wrapping_add(u64::from(self.index).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// A worker's role in a run: its place, and the whole load's scenarios (named as the plan
/// names them, so the workers' scenarios line up when merged).
#[derive(Debug, Clone)]
pub struct WorkerRole {
    pub plan: Plan,
    pub share: Share,
    pub full_shapes: Vec<LoadShape>,
}

impl WorkerRole {
    /// How long to wait for the plan's start time (zero when it has passed).
    pub fn until_start(&self) -> Duration {
        let wait = self.plan.start_at_unix_s - unix_now();
        if wait > 0.0 {
            eprintln!(
                "worker {}/{}: starting in {:.2} s, at the plan's start time",
                self.share.index, self.share.workers, wait
            );
        }
        Duration::from_secs_f64(wait.clamp(0.0, 1e9))
    }

    /// The worker's start against the plan's, said aloud when it is late.
    pub fn started(&self) -> WorkerInfo {
        let started = unix_now();
        let late_ms = ((started - self.plan.start_at_unix_s) * 1e3).max(0.0);
        if late_ms > 100.0 {
            eprintln!(
                "warning: worker {}: started {late_ms:.0} ms after the plan's start time",
                self.share.index
            );
        }
        WorkerInfo {
            plan_id: self.plan.id.clone(),
            index: self.share.index,
            workers: self.share.workers,
            plan_args: self.plan.load_args.clone(),
            start_at_unix_s: self.plan.start_at_unix_s,
            started_unix_s: started,
            late_ms,
        }
    }
}

pub fn unix_now() -> f64 {
    unix_seconds(SystemTime::now())
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::arrival::{ArrivalKind, ArrivalProcess};

    #[test]
    fn counts_split_evenly_and_add_up() {
        for workers in 1..6u32 {
            for total in [0u64, 1, 7, 64, 1001] {
                let parts: Vec<u64> = (0..workers)
                    .map(|index| Share { index, workers }.of_count(total))
                    .collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{parts:?}");
                assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn shapes_split_into_shares_that_add_up() {
        let share = |index| Share { index, workers: 3 };
        let closed = LoadShape::Closed { concurrency: 7 };
        let users: Vec<u32> = (0..3)
            .map(|i| match share(i).of_shape(&closed).unwrap() {
                LoadShape::Closed { concurrency } => concurrency,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(users, [3, 2, 2]);
        let open = LoadShape::Open {
            arrival: ArrivalProcess {
                kind: ArrivalKind::Poisson,
                rate: 30.0,
                burstiness: 1.0,
            },
            max_concurrency: 256,
        };
        match share(2).of_shape(&open).unwrap() {
            LoadShape::Open {
                arrival,
                max_concurrency,
            } => assert_eq!((arrival.rate, max_concurrency), (10.0, 85)),
            _ => unreachable!(),
        }
        let e = share(2)
            .of_shape(&LoadShape::Closed { concurrency: 2 })
            .unwrap_err();
        assert!(format!("{e}").contains("-c 2 over 3 workers"), "{e}");
        assert_ne!(share(0).seed(5), share(1).seed(5));
    }

    #[test]
    fn bad_plans_are_named() {
        let ok = r#"{"plan_version":1,"id":"p","workers":2,"start_at_unix_s":1.5,"load_args":["-c","2"]}"#;
        let plan = Plan::parse(ok).unwrap();
        assert_eq!(Plan::parse(&plan.to_json()).unwrap(), plan);
        assert!(format!("{:#}", plan.share(2).unwrap_err()).contains("indices 0 to 1"));
        for (bad, says) in [
            (ok.replace("\"workers\":2", "\"workers\":0"), "workers is 0"),
            (
                ok.replace("\"workers\":2", "\"workers\":4000000000"),
                "from 1 to 1000",
            ),
            (
                ok.replace("\"plan_version\":1", "\"plan_version\":9"),
                "plan_version 9",
            ),
            (ok.replace("\"id\":\"p\"", "\"id\":\"../x\""), "id"),
            (ok.replace("1.5", "-1"), "start_at_unix_s"),
            ("<html>".to_string(), "not a plan"),
        ] {
            let e = format!("{:#}", Plan::parse(&bad).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}

//! The flags every runner shares for pages: `--report` (report.html beside run.json at the
//! end), `--dashboard [ADDR]` (a live page while it runs) with `--dashboard-linger`, and
//! `--baseline RUN` (what both compare against).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Args;

use crate::dashboard::{Dashboard, DashboardOptions, DEFAULT_ADDR};
use crate::exit::usage;
use crate::html::report::{self, ReportRequest};

#[derive(Args, Debug, Clone, Default)]
pub struct DashboardArgs {
    /// Serve a live dashboard while this runs (default address 127.0.0.1:8050; another host
    /// is reachable from other machines and warns). It stays up after the run until Ctrl-C.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_ADDR)]
    pub dashboard: Option<String>,
    /// After the run, leave the dashboard up this many seconds instead of until Ctrl-C.
    #[arg(long, value_name = "SECONDS", requires = "dashboard")]
    pub dashboard_linger: Option<f64>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct PageArgs {
    /// When the run ends, write report.html (charts, self-contained) beside its run.json.
    #[arg(long)]
    pub report: bool,
    /// A run (run.json or its folder) to compare against: on the dashboard as results come,
    /// and in the --report.
    #[arg(long, value_name = "RUN")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// The pages of one run: the dashboard if asked (started before the run), and what to do
/// when it ends.
pub struct Pages {
    args: PageArgs,
    dashboard: Option<Dashboard>,
}

impl DashboardArgs {
    fn linger(&self) -> anyhow::Result<Option<Duration>> {
        self.dashboard_linger
            .map(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| {
                    usage(format!(
                        "--dashboard-linger {s}: give a number of seconds, 0 or more"
                    ))
                })
            })
            .transpose()
    }

    /// Start the dashboard when asked; `title` names what runs.
    pub fn start(
        &self,
        title: &str,
        baseline: Option<PathBuf>,
    ) -> anyhow::Result<Option<Dashboard>> {
        self.linger()?;
        self.dashboard
            .as_ref()
            .map(|addr| {
                Dashboard::start(DashboardOptions {
                    addr: addr.clone(),
                    title: title.into(),
                    baseline,
                })
            })
            .transpose()
    }

    /// After the run: keep the dashboard up as asked.
    pub fn linger_after(&self, dashboard: Option<&Dashboard>, interrupt: &AtomicBool) {
        if let Some(d) = dashboard {
            d.linger(interrupt, self.linger().ok().flatten());
        }
    }
}

impl PageArgs {
    pub fn start(&self, title: &str) -> anyhow::Result<Pages> {
        if let Some(b) = &self.baseline {
            let file = crate::results::run_file(b);
            if !file.is_file() {
                return Err(usage(format!(
                    "--baseline {}: no run there ({} does not exist)",
                    b.display(),
                    file.display()
                )));
            }
        }
        Ok(Pages {
            dashboard: self.dashboard.start(title, self.baseline.clone())?,
            args: self.clone(),
        })
    }
}

impl Pages {
    /// The run ended (its results are in `run_dir`): write the report, then linger.
    pub fn finish(&self, run_dir: &Path, interrupt: &AtomicBool) {
        if self.args.report {
            let request = ReportRequest {
                inputs: vec![run_dir.to_path_buf()],
                baseline: self.args.baseline.clone(),
                output: run_dir.join("report.html"),
                ..ReportRequest::default()
            };
            match report::write(&request) {
                Ok(w) => eprintln!("report: {} (open it in a browser)", w.path.display()),
                Err(e) => eprintln!("warning: the HTML report was not written: {e:#}"),
            }
        }
        self.args
            .dashboard
            .linger_after(self.dashboard.as_ref(), interrupt);
    }
}

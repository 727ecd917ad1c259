//! Pages people read: the self-contained HTML report of one or more runs (`inferbench report`,
//! and `--report` on the runners) with charts drawn here as inline SVG. It sits above
//! `regress` (a report shows comparisons) and below `dashboard` and `cli`.

pub mod cdf;
pub mod chart;
mod comparison;
pub mod criterion;
mod escape;
mod header;
mod history;
mod http;
mod http_time;
mod inference;
mod instructions;
pub mod page;
pub mod report;
mod retrieval;
pub mod status;

pub use escape::escape;

/// A run as one section draws it: its label, whether it is drawn dashed (the baseline or a
/// second run), and its place among the runs (tables' ids).
pub struct Labelled<'a, R> {
    pub label: String,
    pub run: &'a R,
    pub dashed: bool,
    pub index: usize,
    /// Several runs share the charts: series names start with the run's short name.
    pub prefix: Option<String>,
}

impl<R> Labelled<'_, R> {
    pub fn series_name(&self, name: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}: {name}"),
            None => name.to_string(),
        }
    }
}

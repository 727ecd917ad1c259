//! CSV files: columns declared once as (name, value of a row), so a header cannot drift from
//! its values; one row per scenario, empty cells where unmeasured.

use super::columns::{column, grid, Column};
use super::schema::{RunResult, ScenarioResult};
use crate::metrics::{
    latency_metric_name, Latency, LatencySummary, RateSummary, Reading, Statistic,
};
use crate::results::RunFile;
use crate::roofline::Roofline;

/// The header line, then one line per row.
pub(crate) fn write<'r, R: 'r>(
    columns: &[Column<'_, R>],
    rows: impl IntoIterator<Item = &'r R>,
) -> String {
    let (names, rows) = grid(columns, rows);
    let mut out = line(&names);
    for cells in rows {
        out += &line(&cells);
    }
    out
}

/// One CSV line; fields with a comma, quote or line break are quoted (RFC 4180).
fn line(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}

/// A number to 4 decimals, or an empty cell.
pub(crate) fn number(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// `{latency}_{statistic}_ms` for every statistic of these latencies.
pub(crate) fn latency_columns<'a, R>(
    latencies: &[Latency],
    summary: impl Fn(&R, Latency) -> Option<&LatencySummary> + Copy + 'a,
    spike_rate: bool,
) -> Vec<Column<'a, R>> {
    let mut columns = Vec::new();
    for &l in latencies {
        for &s in Statistic::ALL {
            columns.push(column(latency_metric_name(l, s), move |r: &R| {
                number(summary(r, l).map(|x| x.statistic(s)))
            }));
        }
        if spike_rate {
            columns.push(column(format!("{l}_spike_rate"), move |r: &R| {
                number(summary(r, l).map(|x| x.spike_rate))
            }));
        }
    }
    columns
}

impl RunFile for RunResult {
    const KIND: &'static str = super::schema::KIND;
    const WHAT: &'static str = "run result";

    fn header(&self) -> &crate::results::RunHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut crate::results::RunHeader {
        &mut self.header
    }

    fn csv(&self) -> String {
        write(&inference_columns(self), &self.scenarios)
    }

    fn check(&self) -> Result<(), String> {
        super::checks::inference(self)
    }
}

fn inference_columns(run: &RunResult) -> Vec<Column<'_, ScenarioResult>> {
    type Row = ScenarioResult;
    let mut columns = vec![
        column("run_id", |_: &Row| run.header.run_id.clone()),
        column("model", |_: &Row| run.model.name.clone()),
        column("dtype", |_: &Row| run.model.dtype.clone()),
        column("device", |_: &Row| run.device.name.clone()),
        column("scenario", |s: &Row| s.name.clone()),
        column("batch", |s: &Row| s.batch.to_string()),
        column("prompt_tokens", |s: &Row| s.prompt_tokens.to_string()),
        column("output_tokens", |s: &Row| s.output_tokens.to_string()),
        column("measured_runs", |s: &Row| s.measured_runs.to_string()),
        column("requests", |s: &Row| s.requests.to_string()),
        column("generated_tokens", |s: &Row| s.generated_tokens.to_string()),
    ];
    columns.extend(latency_columns(
        Latency::ALL,
        |s: &Row, l| s.latencies.get(l),
        true,
    ));
    type RateOf = fn(&Row) -> Option<&RateSummary>;
    type StatOf = fn(&RateSummary) -> f64;
    let rates: [(&str, RateOf); 3] = [
        ("decode", |s| s.decode_tokens_per_second.as_ref()),
        ("e2e", |s| s.e2e_tokens_per_second.as_ref()),
        ("prompt", |s| s.prompt_tokens_per_second.as_ref()),
    ];
    for (rate, of) in rates {
        let stats: [(&str, StatOf); 3] = [
            ("mean", |r| r.mean),
            ("median", |r| r.median),
            ("sd", |r| r.sd),
        ];
        for (stat, value) in stats {
            columns.push(column(
                format!("{rate}_tokens_per_second_{stat}"),
                move |s: &Row| number(of(s).map(value)),
            ));
        }
    }
    columns.push(column("peak_host_rss_bytes", |s: &Row| {
        reading(&s.peak_host_rss_bytes)
    }));
    columns.push(column("peak_device_memory_bytes", |s: &Row| {
        reading(&s.peak_device_memory_bytes)
    }));
    columns.push(column("energy_source", |s: &Row| s.energy.source.clone()));
    columns.push(column("gpu_joules", |s: &Row| {
        reading(&s.energy.gpu_joules)
    }));
    columns.push(column("cpu_joules", |s: &Row| {
        reading(&s.energy.cpu_joules)
    }));
    columns.push(column("prefill_joules", |s: &Row| {
        reading(&s.energy.prefill_joules)
    }));
    columns.push(column("decode_joules", |s: &Row| {
        reading(&s.energy.decode_joules)
    }));
    columns.push(column("joules_per_token", |s: &Row| {
        reading(&s.energy.joules_per_token)
    }));
    columns.push(column("tokens_per_joule", |s: &Row| {
        reading(&s.energy.tokens_per_joule)
    }));
    // The roofline (empty where the run measured none, or the peaks are unknown).
    type RoofOf = fn(&Roofline) -> Option<f64>;
    let roofline: [(&str, RoofOf); 6] = [
        ("decode_bytes_per_step", |r| Some(r.decode_bytes_per_step)),
        ("decode_bytes_per_s", |r| r.decode_bytes_per_s),
        ("decode_bandwidth_share", |r| r.decode_bandwidth_share),
        ("prefill_flops", |r| Some(r.prefill_flops)),
        ("prefill_flops_per_s", |r| r.prefill_flops_per_s),
        ("prefill_flops_share", |r| r.prefill_flops_share),
    ];
    for (name, of) in roofline {
        columns.push(column(name, move |s: &Row| {
            number(s.roofline.as_ref().and_then(of))
        }));
    }
    columns.push(column("targets_met", |s: &Row| {
        s.targets.iter().filter(|t| t.met).count().to_string()
    }));
    columns.push(column("targets_checked", |s: &Row| {
        s.targets.len().to_string()
    }));
    columns
}

fn reading<T: Copy + ToString>(r: &Reading<T>) -> String {
    r.value().map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let cells = ["plain", "a,b", "say \"hi\""].map(String::from);
        assert_eq!(line(&cells), "plain,\"a,b\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn header_and_rows_come_from_one_list() {
        let columns = vec![
            column("n", |r: &(u32, &str)| r.0.to_string()),
            column("name", |r: &(u32, &str)| r.1.to_string()),
        ];
        let rows = [(1, "a"), (2, "b,c")];
        assert_eq!(write(&columns, &rows), "n,name\n1,a\n2,\"b,c\"\n");
    }
}

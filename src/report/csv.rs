//! One CSV row per scenario, every statistic in its own column; empty where unmeasured.

use super::schema::{Reading, RunResult, ScenarioResult};
use crate::metrics::{LatencySummary, RateSummary};
use crate::targets::{LATENCIES, STATISTICS};

pub fn scenarios(run: &RunResult) -> String {
    let mut header: Vec<String> = [
        "run_id",
        "model",
        "dtype",
        "device",
        "scenario",
        "batch",
        "prompt_tokens",
        "output_tokens",
        "measured_runs",
        "requests",
        "generated_tokens",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for latency in LATENCIES {
        for stat in STATISTICS {
            header.push(format!("{latency}_{stat}_ms"));
        }
        header.push(format!("{latency}_spike_rate"));
    }
    for rate in ["decode", "e2e", "prompt"] {
        for stat in ["mean", "median", "sd"] {
            header.push(format!("{rate}_tokens_per_second_{stat}"));
        }
    }
    header.extend(
        [
            "peak_host_rss_bytes",
            "peak_device_memory_bytes",
            "energy_source",
            "gpu_joules",
            "cpu_joules",
            "prefill_joules",
            "decode_joules",
            "joules_per_token",
            "tokens_per_joule",
            "targets_met",
            "targets_checked",
        ]
        .map(String::from),
    );
    let mut out = line(&header);
    for s in &run.scenarios {
        out += &line(&row(run, s));
    }
    out
}

fn row(run: &RunResult, s: &ScenarioResult) -> Vec<String> {
    let mut cells = vec![
        run.run_id.clone(),
        run.model.name.clone(),
        run.model.dtype.clone(),
        run.device.name.clone(),
        s.name.clone(),
        s.batch.to_string(),
        s.prompt_tokens.to_string(),
        s.output_tokens.to_string(),
        s.measured_runs.to_string(),
        s.requests.to_string(),
        s.generated_tokens.to_string(),
    ];
    for summary in [&s.ttft, &s.itl, &s.tpot, &s.e2e] {
        cells.extend(latency_cells(summary.as_ref()));
    }
    for rate in [
        &s.decode_tokens_per_second,
        &s.e2e_tokens_per_second,
        &s.prompt_tokens_per_second,
    ] {
        cells.extend(rate_cells(rate.as_ref()));
    }
    cells.push(reading(&s.peak_host_rss_bytes));
    cells.push(reading(&s.peak_device_memory_bytes));
    let e = &s.energy;
    cells.push(e.source.clone());
    for r in [
        &e.gpu_joules,
        &e.cpu_joules,
        &e.prefill_joules,
        &e.decode_joules,
        &e.joules_per_token,
        &e.tokens_per_joule,
    ] {
        cells.push(reading(r));
    }
    cells.push(s.targets.iter().filter(|t| t.met).count().to_string());
    cells.push(s.targets.len().to_string());
    cells
}

fn latency_cells(summary: Option<&LatencySummary>) -> Vec<String> {
    let mut cells: Vec<String> = STATISTICS
        .iter()
        .map(|stat| number(summary.and_then(|s| s.statistic(stat))))
        .collect();
    cells.push(number(summary.map(|s| s.spike_rate)));
    cells
}

fn rate_cells(rate: Option<&RateSummary>) -> Vec<String> {
    [
        rate.map(|r| r.mean),
        rate.map(|r| r.median),
        rate.map(|r| r.sd),
    ]
    .into_iter()
    .map(number)
    .collect()
}

fn reading<T: Copy + ToString>(r: &Reading<T>) -> String {
    r.value().map(|v| v.to_string()).unwrap_or_default()
}

fn number(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// One CSV line; fields with a comma, quote or line break are quoted (RFC 4180).
pub(crate) fn line(cells: &[String]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        let cells = ["plain", "a,b", "say \"hi\""].map(String::from);
        assert_eq!(line(&cells), "plain,\"a,b\",\"say \"\"hi\"\"\"\n");
    }
}

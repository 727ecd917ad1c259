//! A finished run.json handed back through a log (a Kubernetes pod's standard output):
//! written between two marker lines, found again however much else the log holds.

use anyhow::{bail, Result};

pub const BEGIN: &str = "===== inferbench result: run.json begins =====";
pub const END: &str = "===== inferbench result: run.json ends =====";

/// The run's JSON between the markers, each on its own line.
pub fn wrap(json: &str) -> String {
    format!("{BEGIN}\n{}\n{END}\n", json.trim_end())
}

/// The JSON between the last pair of markers in `log`; an error says which marker is
/// missing (a pod killed mid-write has the first and not the second).
pub fn extract(log: &str) -> Result<&str> {
    let Some(begin) = log.rfind(BEGIN) else {
        bail!("the log has no result (no line {BEGIN:?}): the run did not finish");
    };
    let body = &log[begin + BEGIN.len()..];
    let Some(end) = body.find(END) else {
        bail!("the log's result is cut short (no line {END:?} after its start)");
    };
    Ok(body[..end].trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_survives_the_log_around_it() {
        let log = format!("progress...\n{}more noise\n", wrap("{\"a\": 1}\n"));
        assert_eq!(extract(&log).unwrap(), "{\"a\": 1}");
        let cut = format!("noise\n{BEGIN}\n{{\"a\"");
        assert!(format!("{}", extract(&cut).unwrap_err()).contains("cut short"));
        assert!(format!("{}", extract("only noise").unwrap_err()).contains("no result"));
    }
}

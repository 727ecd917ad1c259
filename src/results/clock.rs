//! The run clock: wall time as RFC 3339 UTC, to the second.

use std::time::SystemTime;

/// Now, as RFC 3339 UTC to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Now as a folder-name stamp: 20261130T101500Z.
pub(super) fn stamp() -> String {
    now_rfc3339()
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect()
}

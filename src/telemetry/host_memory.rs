//! Peak resident memory of this process, per phase: Linux keeps the high-water mark
//! (VmHWM) and lets a process reset it by writing 5 to /proc/self/clear_refs.

use crate::metrics::Reading;

/// Start a new phase: the next `peak_rss` reports the peak from now on. Returns why not when
/// the kernel does not allow it (the peak then covers the whole process lifetime).
pub fn reset_peak() -> Result<(), String> {
    std::fs::write("/proc/self/clear_refs", "5")
        .map_err(|e| format!("cannot reset the peak through /proc/self/clear_refs: {e}"))
}

/// The peak resident set size since the last `reset_peak` (or since the process started).
pub fn peak_rss() -> Reading<u64> {
    let status = match std::fs::read_to_string("/proc/self/status") {
        Ok(s) => s,
        Err(e) => return Reading::unavailable(format!("/proc/self/status unreadable: {e}")),
    };
    match parse_kib(&status, "VmHWM:") {
        Some(kib) => Reading::Measured { value: kib * 1024 },
        None => Reading::unavailable("/proc/self/status has no VmHWM line"),
    }
}

/// The resident set size now, in bytes (None where /proc is not readable).
pub fn current_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib(&status, "VmRSS:").map(|kib| kib * 1024)
}

/// The value of a "Key:   1234 kB" line, in KiB.
fn parse_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let status = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_kib(status, "VmHWM:"), Some(123456));
        assert_eq!(parse_kib(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_follows_a_large_allocation() {
        // The high-water mark is the whole process's: tests running beside this one may have
        // raised it already, so the block is far larger than any of theirs.
        let before = peak_rss().value().expect("VmHWM on Linux");
        let block = vec![1u8; 256 << 20];
        std::hint::black_box(&block);
        let after = peak_rss().value().unwrap();
        assert!(after >= before + (120 << 20), "{before} -> {after}");
    }
}

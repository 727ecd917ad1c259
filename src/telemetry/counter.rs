//! Energy from what the hardware reports: the difference of a cumulative counter (with
//! wrap-around), or, where there is no counter, the integral of sampled power.

/// Units between two readings of a cumulative counter. `wraps_at`: the counter's range
/// (RAPL's max_energy_range_uj), after which it starts again from 0; None for a counter that
/// must never go backwards (NVML's 64-bit millijoules).
pub fn counter_delta(start: u64, end: u64, wraps_at: Option<u64>) -> Result<u64, String> {
    if end >= start {
        return Ok(end - start);
    }
    match wraps_at {
        // Wrapped once: up to the top of the range, then from 0 to `end`.
        Some(range) if start <= range => Ok(range - start + end),
        Some(range) => Err(format!(
            "the energy counter read {start}, beyond its range {range}"
        )),
        None => Err(format!(
            "the energy counter went backwards ({start} -> {end}); was the driver reloaded?"
        )),
    }
}

/// Joules from (seconds, watts) samples by the trapezoid rule; None with fewer than two.
pub fn integrate_power(samples: &[(f64, f64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    Some(
        samples
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).max(0.0) * (w[0].1 + w[1].1) / 2.0)
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_differences() {
        assert_eq!(counter_delta(100, 250, None), Ok(150));
        assert_eq!(counter_delta(7, 7, None), Ok(0));
        // RAPL: range 1000, read 900 then 50 -> 100 to the top, 50 after.
        assert_eq!(counter_delta(900, 50, Some(1000)), Ok(150));
        let back = counter_delta(500, 400, None).unwrap_err();
        assert!(back.contains("backwards"), "{back}");
        assert!(counter_delta(2000, 5, Some(1000)).is_err());
    }

    #[test]
    fn trapezoid_integral() {
        // 100 W for 2 s, then a ramp to 200 W over 1 s: 200 + 150 = 350 J.
        let s = [(0.0, 100.0), (2.0, 100.0), (3.0, 200.0)];
        assert!((integrate_power(&s).unwrap() - 350.0).abs() < 1e-9);
        assert_eq!(integrate_power(&s[..1]), None);
    }
}

//! The token lengths a load run actually sent and got back, as histograms whose buckets add
//! exactly when workers' runs are merged (fixed bounds: powers of two and 1.5× them).

use serde::{Deserialize, Serialize};

/// Requests' token counts: exact count, sum, min and max, and bucketed for percentiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenHistogram {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    /// `[upper bound, requests]` of each non-empty bucket, in order; a bucket holds the
    /// counts above the previous bound up to its own (bounds 0, 1, 2, 3, 4, 6, 8, 12, ...).
    pub buckets: Vec<[u64; 2]>,
}

/// The bucket bound at or above `n`: 0, 1, 2, 3, 4, 6, 8, 12, 16, 24, ...
fn bound_of(n: u64) -> u64 {
    if n <= 2 {
        return n;
    }
    let power = 1u64 << (63 - n.leading_zeros()); // largest power of two <= n
    if n == power {
        power
    } else if n <= power + power / 2 {
        power + power / 2
    } else {
        power * 2
    }
}

impl TokenHistogram {
    pub fn record(&mut self, n: u64) {
        self.min = if self.count == 0 { n } else { self.min.min(n) };
        self.max = self.max.max(n);
        self.count += 1;
        self.sum += n;
        let bound = bound_of(n);
        match self.buckets.binary_search_by_key(&bound, |b| b[0]) {
            Ok(i) => self.buckets[i][1] += 1,
            Err(i) => self.buckets.insert(i, [bound, 1]),
        }
    }

    /// Add another run's histogram to this one.
    pub fn merge(&mut self, other: &TokenHistogram) {
        if other.count == 0 {
            return;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.count += other.count;
        self.sum += other.sum;
        for &[bound, n] in &other.buckets {
            match self.buckets.binary_search_by_key(&bound, |b| b[0]) {
                Ok(i) => self.buckets[i][1] += n,
                Err(i) => self.buckets.insert(i, [bound, n]),
            }
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// The bucket bound under which a share `q` of the requests lie (capped at the max).
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for &[bound, n] in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(bound.min(self.max).max(self.min));
            }
        }
        Some(self.max)
    }
}

/// What a scenario sent and got back, per successful request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenLengths {
    /// Prompt tokens sent (the server's count, else the tokenizer's).
    pub input: TokenHistogram,
    /// Tokens asked for (max_tokens).
    pub requested_output: TokenHistogram,
    /// Tokens generated.
    pub output: TokenHistogram,
}

impl TokenLengths {
    pub fn merge(&mut self, other: &TokenLengths) {
        self.input.merge(&other.input);
        self.requested_output.merge(&other.requested_output);
        self.output.merge(&other.output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_powers_of_two_and_halfway() {
        let bounds: Vec<u64> = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 100, 128, 129, 200]
            .iter()
            .map(|&n| bound_of(n))
            .collect();
        assert_eq!(
            bounds,
            [0, 1, 2, 3, 4, 6, 6, 8, 8, 12, 16, 128, 128, 192, 256]
        );
    }

    #[test]
    fn merged_histograms_equal_one_fed_everything() {
        let (mut a, mut b, mut all) = (
            TokenHistogram::default(),
            TokenHistogram::default(),
            TokenHistogram::default(),
        );
        for n in 1..=300u64 {
            let h: &mut TokenHistogram = if n % 3 == 0 { &mut a } else { &mut b };
            h.record(n * 7 % 1000);
            all.record(n * 7 % 1000);
        }
        let mut merged = TokenHistogram::default();
        merged.merge(&a);
        merged.merge(&b);
        assert_eq!(merged, all);
        assert_eq!((all.count, all.min, all.max), (300, 1, 995));
    }

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let mut h = TokenHistogram::default();
        for n in 1..=100 {
            h.record(n);
        }
        assert_eq!(h.quantile(0.5), Some(64)); // 50 lies in (48, 64]
        assert_eq!(h.quantile(1.0), Some(100)); // the max, not the bound 128
        assert_eq!(h.quantile(0.0), Some(1));
        assert_eq!(h.mean(), Some(50.5));
        assert_eq!(TokenHistogram::default().quantile(0.5), None);
    }
}

//! Per-command latency histograms for INFO latencystats: an HDR histogram with two
//! significant digits over 1 ns .. 1 s, as Redis 7 keeps, with lock-free recording and
//! Redis's percentile rule (`value at percentile` = highest value equivalent to the bucket
//! where the running count reaches the requested share).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const LOWEST: u64 = 1;
const HIGHEST: u64 = 1_000_000_000;
/// 2 significant digits: sub-buckets of 256 (2 * 10^2 rounded up to a power of two).
const SUB_BUCKET_COUNT_MAGNITUDE: u32 = 8;
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = SUB_BUCKET_COUNT_MAGNITUDE - 1;
const SUB_BUCKET_COUNT: u64 = 1 << SUB_BUCKET_COUNT_MAGNITUDE;
const SUB_BUCKET_HALF_COUNT: u64 = SUB_BUCKET_COUNT / 2;
const SUB_BUCKET_MASK: u64 = SUB_BUCKET_COUNT - 1;

const fn bucket_count() -> usize {
    let mut smallest_untrackable = SUB_BUCKET_COUNT;
    let mut buckets = 1;
    while smallest_untrackable <= HIGHEST {
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    buckets
}

const COUNTS_LEN: usize = (bucket_count() + 1) * SUB_BUCKET_HALF_COUNT as usize;

pub struct Histogram {
    counts: Box<[AtomicU64]>,
    total: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: (0..COUNTS_LEN).map(|_| AtomicU64::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }
}

fn bucket_index(v: u64) -> u32 {
    let pow2ceiling = 64 - (v | SUB_BUCKET_MASK).leading_zeros();
    pow2ceiling - (SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1)
}

fn counts_index(v: u64) -> usize {
    let b = bucket_index(v);
    let sub = v >> b;
    (((b as u64 + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + (sub - SUB_BUCKET_HALF_COUNT)) as usize
}

fn value_at_index(index: usize) -> u64 {
    let mut b = (index as i64 >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) - 1;
    let mut sub = (index as u64 & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    if b < 0 {
        sub -= SUB_BUCKET_HALF_COUNT;
        b = 0;
    }
    sub << b
}

fn highest_equivalent(v: u64) -> u64 {
    let b = bucket_index(v);
    let sub = v >> b;
    let adjusted = if sub >= SUB_BUCKET_COUNT { b + 1 } else { b };
    let lowest = sub << b;
    lowest + (1u64 << adjusted) - 1
}

impl Histogram {
    /// Records a duration in nanoseconds, clamped into the tracked range.
    pub fn record(&self, ns: u64) {
        self.record_n(ns, 1);
    }

    /// Records `n` samples of the same value.
    pub fn record_n(&self, ns: u64, n: u64) {
        let v = ns.clamp(LOWEST, HIGHEST);
        self.counts[counts_index(v)].fetch_add(n, Relaxed);
        self.total.fetch_add(n, Relaxed);
    }

    pub fn is_empty(&self) -> bool {
        self.total.load(Relaxed) == 0
    }

    pub fn reset(&self) {
        self.counts.iter().for_each(|c| c.store(0, Relaxed));
        self.total.store(0, Relaxed);
    }

    pub fn value_at_percentile(&self, percentile: f64) -> u64 {
        let p = percentile.min(100.0);
        let total = self.total.load(Relaxed);
        let wanted = (((p / 100.0) * total as f64) + 0.5) as u64;
        let wanted = wanted.max(1);
        let mut running = 0;
        for (i, c) in self.counts.iter().enumerate() {
            running += c.load(Relaxed);
            if running >= wanted {
                let v = value_at_index(i);
                return if percentile == 0.0 {
                    v
                } else {
                    highest_equivalent(v)
                };
            }
        }
        0
    }
}

/// A percentile as Redis names it in INFO: `%f` with trailing zeros (and dot) trimmed.
pub fn percentile_name(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_keep_two_significant_digits() {
        let h = Histogram::default();
        for v in [1_000u64, 2_000, 3_000, 100_000, 114_175] {
            h.record(v);
        }
        assert_eq!(h.value_at_percentile(50.0), 3_007);
        let top = h.value_at_percentile(100.0);
        assert!((114_175..=114_175 * 101 / 100).contains(&top), "{top}");
        assert_eq!(percentile_name(99.9), "99.9");
        assert_eq!(percentile_name(50.0), "50");
    }
}

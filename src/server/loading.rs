//! Loading the dataset while clients are served, as Redis does between `startLoading` and
//! `stopLoading`: the `loading` flag (commands without the `loading` flag are refused with
//! -LOADING meanwhile), the progress INFO persistence reports, the per-key delay of
//! `key-load-delay`, and an inserter that moves loaded keys into the keyspace in bounded
//! batches (one shard locked at a time) so other clients are never held for the whole load.

use super::state::ServerState;
use crate::keyspace::Entry;
use crate::persistence::rdb::decode::Loaded;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU64};

/// The figures of the load in progress (`loading_*` in INFO persistence).
#[derive(Debug, Default)]
pub struct LoadProgress {
    /// Unix seconds the load started at.
    start_secs: AtomicI64,
    /// Bytes the files being loaded hold.
    total_bytes: AtomicU64,
    /// The `used-mem` auxiliary field of the RDB file being loaded.
    rdb_used_mem: AtomicU64,
    /// How far into the files the load has come.
    loaded_bytes: AtomicU64,
    /// Signalled when a load begins: startup serves clients from then on (with nothing to
    /// load they are first served once startup is done, as with Redis).
    pub began: tokio::sync::Notify,
}

/// What INFO persistence shows while loading.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadFigures {
    pub start_secs: i64,
    pub total_bytes: u64,
    pub rdb_used_mem: u64,
    pub loaded_bytes: u64,
    pub percent: f64,
    pub eta_secs: i64,
}

impl LoadProgress {
    pub fn set_loaded(&self, bytes: u64) {
        self.loaded_bytes.store(bytes, Relaxed);
    }

    pub fn set_rdb_used_mem(&self, bytes: u64) {
        self.rdb_used_mem.store(bytes, Relaxed);
    }

    /// The figures as of `now_secs`.
    pub fn figures(&self, now_secs: i64) -> LoadFigures {
        let start_secs = self.start_secs.load(Relaxed);
        let total_bytes = self.total_bytes.load(Relaxed);
        let rdb_used_mem = self.rdb_used_mem.load(Relaxed);
        let loaded_bytes = self.loaded_bytes.load(Relaxed);
        let (percent, eta_secs) = estimate(
            now_secs - start_secs,
            total_bytes,
            rdb_used_mem,
            loaded_bytes,
        );
        LoadFigures {
            start_secs,
            total_bytes,
            rdb_used_mem,
            loaded_bytes,
            percent,
            eta_secs,
        }
    }
}

/// Percent done and seconds left, Redis's way: against the file size when known, else
/// against the memory the file's producer used (a rough guess, so never shown as finished),
/// and a placeholder second while no time has passed.
pub fn estimate(elapsed_secs: i64, total: u64, used_mem: u64, loaded: u64) -> (f64, i64) {
    let (percent, remaining) = if total > 0 {
        (
            loaded as f64 * 100.0 / total as f64,
            total as i64 - loaded as i64,
        )
    } else if used_mem > 0 {
        (
            (loaded as f64 * 100.0 / used_mem as f64).min(99.99),
            (used_mem as i64 - loaded as i64).max(1),
        )
    } else {
        (0.0, 1)
    };
    let eta = match elapsed_secs {
        0 => 1,
        e => e.saturating_mul(remaining) / (loaded as i64 + 1),
    };
    (percent, eta)
}

/// Marks the server as loading `total_bytes` of files until the guard is dropped (Redis's
/// `startLoading`).
pub fn begin(state: &ServerState, total_bytes: u64) -> Loading<'_> {
    let guard = hold(state);
    state.load_progress.total_bytes.store(total_bytes, Relaxed);
    state.rdb.last_load_keys_loaded.store(0, Relaxed);
    state.rdb.last_load_keys_expired.store(0, Relaxed);
    state.load_progress.began.notify_one();
    guard
}

/// Marks the server as loading, with nothing known of the files yet, until the guard is
/// dropped: startup holds this from the first client it accepts until the dataset and the
/// files it writes to (the AOF) are ready. Nested guards end with the outermost.
pub fn hold(state: &ServerState) -> Loading<'_> {
    let p = &state.load_progress;
    let now_secs = (super::connection::unix_us() / 1_000_000) as i64;
    p.start_secs.store(now_secs, Relaxed);
    p.total_bytes.store(0, Relaxed);
    p.rdb_used_mem.store(0, Relaxed);
    p.loaded_bytes.store(0, Relaxed);
    let was = state.loading.swap(true, Relaxed);
    Loading { state, was }
}

/// The server is loading while this lives.
pub struct Loading<'a> {
    state: &'a ServerState,
    /// Loading before this guard began (an outer guard is still in force).
    was: bool,
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.state.loading.store(self.was, Relaxed);
    }
}

/// `key-load-delay`: a positive value sleeps that many microseconds; a negative one sleeps
/// one microsecond with a chance of 1 in its magnitude (fractions of a microsecond).
pub fn key_delay(usec: i64, rng: &mut impl rand::Rng) {
    let sleep = match usec {
        0 => 0,
        n if n > 0 => n as u64,
        n => u64::from(rng.gen_range(0..n.unsigned_abs()) == 0),
    };
    if sleep > 0 {
        std::thread::sleep(std::time::Duration::from_micros(sleep));
    }
}

/// Whether moving from file offset `from` to `to` crosses a multiple of `interval` (Redis
/// serves events each time the load passes one).
pub fn crosses(from: u64, to: u64, interval: u64) -> bool {
    interval > 0 && to / interval > from / interval
}

/// Keys held back at most before they go into the keyspace, whatever the interval.
const MAX_BATCH: usize = 1024;

/// Moves loaded keys into the keyspace in batches: a batch ends when the load crosses a
/// multiple of `loading-process-events-interval-bytes` or holds `MAX_BATCH` keys, and goes in
/// one shard lock at a time. Progress (`loading_loaded_bytes`) moves with each batch.
pub struct Inserter<'a> {
    state: &'a ServerState,
    pending: Vec<(usize, Loaded)>,
    /// Offset of the file in the whole load (the AOF base comes first).
    base: u64,
    flushed_at: u64,
    interval: u64,
    lru: u32,
    rng: rand::rngs::SmallRng,
    pub inserted: u64,
}

impl<'a> Inserter<'a> {
    pub fn new(state: &'a ServerState, base: u64, lru: u32) -> Inserter<'a> {
        use rand::SeedableRng;
        let cfg = state.config();
        Inserter {
            state,
            pending: Vec::new(),
            base,
            flushed_at: base,
            interval: cfg.loading_process_events_interval_bytes.max(0) as u64,
            lru,
            rng: rand::rngs::SmallRng::from_entropy(),
            inserted: 0,
        }
    }

    /// Takes one key (its db must exist); applies `key-load-delay` after it, as Redis does
    /// after each key it loads.
    pub fn push(&mut self, l: Loaded) {
        let ks = &self.state.keyspace;
        let shard = ks.shard_of(crate::slot::key_slot(&l.key));
        let at = self.base + l.end as u64;
        self.pending.push((shard, l));
        if self.pending.len() >= MAX_BATCH || crosses(self.flushed_at, at, self.interval) {
            self.flush(at);
        }
        // Read for every key, as Redis does: CONFIG SET during the load changes the pace.
        key_delay(self.state.config().key_load_delay, &mut self.rng);
    }

    /// Puts every pending key into the keyspace; `at` is how far the load has come.
    pub fn flush(&mut self, at: u64) {
        self.interval = self
            .state
            .config()
            .loading_process_events_interval_bytes
            .max(0) as u64;
        let mut batch = std::mem::take(&mut self.pending);
        batch.sort_by_key(|(shard, _)| *shard);
        let ks = &self.state.keyspace;
        let mut held: Option<(usize, crate::keyspace::Locked<'_>)> = None;
        for (shard, l) in batch {
            let locked = match &mut held {
                Some((s, locked)) if *s == shard => locked,
                _ => {
                    // The previous shard is let go before the next is taken.
                    held = None;
                    &mut held.insert((shard, ks.lock_one(shard))).1
                }
            };
            let mut entry = Entry::new(l.value, self.lru);
            entry.expire_at_ms = l.expire_at_ms;
            locked.insert(l.db, &l.key, entry);
            self.inserted += 1;
        }
        drop(held);
        self.flushed_at = at;
        self.state.load_progress.set_loaded(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_against_the_file_size() {
        assert_eq!(estimate(0, 1000, 0, 250), (25.0, 1));
        // 2 seconds for 250 bytes: 750 more take 750*2/251 seconds.
        assert_eq!(estimate(2, 1000, 0, 250), (25.0, 5));
        assert_eq!(estimate(3, 1000, 0, 1000).0, 100.0);
    }

    #[test]
    fn estimate_against_used_memory_never_reaches_the_end() {
        let (percent, eta) = estimate(4, 0, 100, 500);
        assert_eq!(percent, 99.99);
        assert_eq!(eta, 0); // one byte left: 4*1/501
        assert_eq!(estimate(1, 0, 0, 10), (0.0, 0));
        assert_eq!(estimate(0, 0, 0, 0), (0.0, 1));
    }

    #[test]
    fn crossing_interval_multiples() {
        assert!(!crosses(0, 1023, 1024));
        assert!(crosses(1000, 1024, 1024));
        assert!(crosses(0, 5000, 1024));
        assert!(!crosses(1024, 2047, 1024));
        assert!(!crosses(0, 5000, 0));
    }

    #[test]
    fn begin_sets_the_flag_until_dropped() {
        let state = ServerState::for_tests();
        state.rdb.last_load_keys_loaded.store(7, Relaxed);
        {
            let _loading = begin(&state, 4096);
            assert!(state.loading.load(Relaxed));
            state.load_progress.set_loaded(1024);
            let f = state
                .load_progress
                .figures(state.load_progress.figures(0).start_secs);
            assert_eq!(
                (f.total_bytes, f.loaded_bytes, f.percent),
                (4096, 1024, 25.0)
            );
            assert_eq!(state.rdb.last_load_keys_loaded.load(Relaxed), 0);
        }
        assert!(!state.loading.load(Relaxed));
    }

    #[test]
    fn nested_guards_end_with_the_outermost() {
        let state = ServerState::for_tests();
        let outer = hold(&state);
        drop(begin(&state, 10));
        assert!(state.loading.load(Relaxed));
        drop(outer);
        assert!(!state.loading.load(Relaxed));
    }

    #[test]
    fn inserter_puts_every_key_in_with_its_expiry() {
        let state = ServerState::for_tests();
        let mut ins = Inserter::new(&state, 0, 0);
        for i in 0..3000usize {
            ins.push(Loaded {
                db: i % 2,
                key: format!("k{i}").into_bytes(),
                value: crate::keyspace::Value::Str(crate::keyspace::StrValue::from_bytes(b"v")),
                expire_at_ms: if i == 5 { u64::MAX / 2 } else { 0 },
                end: i * 10,
            });
        }
        ins.flush(30_000);
        assert_eq!(ins.inserted, 3000);
        assert_eq!(state.load_progress.figures(0).loaded_bytes, 30_000);
        let mut ks = state.keyspace.lock_all();
        assert!(ks.peek(0, b"k0").is_some());
        assert!(ks.peek(1, b"k2999").is_some());
        assert!(ks.peek(0, b"k1").is_none());
        assert_eq!(ks.peek(1, b"k5").unwrap().expire_at_ms, u64::MAX / 2);
    }
}

//! maxmemory: before a command runs, keys are evicted under `maxmemory-policy` until the
//! allocator's figure is back under `maxmemory` (Redis's `performEvictions`). Candidates come
//! from random samples of `maxmemory-samples` keys per database, ranked in a shared eviction
//! pool for the LRU / LFU / TTL policies; the random policies take any sampled key. Each
//! eviction is propagated as DEL (or UNLINK with `lazyfree-lazy-eviction`), invalidates
//! WATCH, publishes the `evicted` keyspace event and counts in INFO `evicted_keys`.

use super::context::Rng;
use crate::config::values::notify;
use crate::config::MaxmemoryPolicy as P;
use crate::keyspace::evict::{sample, score, Candidate, LfuParams, Rank};
use crate::server::state::ServerState;
use crate::slot::key_slot;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

/// What eviction achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evicted {
    /// Under the limit (or no limit).
    Ok,
    /// Still over the limit after this call's share of work; the next command (or the cron)
    /// goes on. Commands are not refused for it.
    Running,
    /// Over the limit with nothing the policy may evict: denyoom commands are refused.
    Fail,
}

/// Which keys a policy may evict and how it ranks them.
fn policy(p: P) -> Option<(Rank, bool)> {
    Some(match p {
        P::VolatileLru => (Rank::Lru, true),
        P::VolatileLfu => (Rank::Lfu, true),
        P::VolatileRandom => (Rank::Random, true),
        P::VolatileTtl => (Rank::Ttl, true),
        P::AllkeysLru => (Rank::Lru, false),
        P::AllkeysLfu => (Rank::Lfu, false),
        P::AllkeysRandom => (Rank::Random, false),
        P::NoEviction => return None,
    })
}

/// How many keys one call may evict before it lets the command run: Redis bounds a call by
/// time (`maxmemory-eviction-tenacity`, 500 µs at the default 10); this bounds it by keys,
/// at roughly Redis's rate of one key per microsecond. 100 means no bound.
fn keys_per_call(tenacity: i64) -> usize {
    match tenacity {
        t if t >= 100 => usize::MAX,
        t if t <= 10 => 50 * t.max(1) as usize,
        t => (500.0 * 1.15f64.powi(t as i32 - 10)) as usize,
    }
}

/// Evicts keys until used memory is under `maxmemory`. `used_memory` reads the allocator.
pub fn perform_evictions(
    server: &ServerState,
    now_ms: u64,
    used_memory: &dyn Fn() -> usize,
) -> Evicted {
    let config = server.config();
    // While CLIENT PAUSE holds, or a file loads, the dataset stays as it is: no evictions.
    if config.maxmemory == 0 || server.pause.holds(now_ms, true) || server.loading.load(Relaxed) {
        return Evicted::Ok;
    }
    let used = used_memory() as u64;
    if used <= config.maxmemory {
        return Evicted::Ok;
    }
    let Some((rank, volatile)) = policy(config.maxmemory_policy) else {
        return Evicted::Fail;
    };
    let to_free = used - config.maxmemory;
    let samples = config.maxmemory_samples.max(1) as usize;
    let lfu = LfuParams {
        log_factor: config.lfu_log_factor.max(0) as u64,
        decay_minutes: config.lfu_decay_time.max(0) as u64,
    };
    let lazy = config.lazyfree_lazy_eviction;
    let budget = keys_per_call(config.maxmemory_eviction_tenacity);
    drop(config);
    let mut rng = Rng::seeded(now_ms.rotate_left(20) ^ used);
    let now_secs = (now_ms / 1000) as u32;
    let mut freed = 0u64;
    let mut evicted = 0usize;
    while freed < to_free {
        if evicted >= budget {
            return Evicted::Running;
        }
        let picked = match rank {
            Rank::Random => random_candidate(server, volatile, &mut rng),
            _ => pooled_candidate(server, rank, volatile, samples, now_secs, lfu, &mut rng),
        };
        let Some(c) = picked else {
            return Evicted::Fail;
        };
        if let Some(bytes) = evict_key(server, c.db, &c.key, volatile, lazy, now_ms) {
            freed += bytes as u64;
            evicted += 1;
        }
    }
    Evicted::Ok
}

/// A random key of some database, round-robin over the databases as Redis does.
fn random_candidate(server: &ServerState, volatile: bool, rng: &mut Rng) -> Option<Candidate> {
    let ks = &server.keyspace;
    let dbs = ks.databases();
    let shards = ks.shard_count();
    let start_db = server.evict_next_db.fetch_add(1, Relaxed) % dbs;
    for i in 0..dbs {
        let db = (start_db + i) % dbs;
        let first = rng.below(shards);
        for s in 0..shards {
            let shard = ks.lock_shard((first + s) % shards);
            let mut found = None;
            sample(&shard, db, volatile, 1, &mut |n| rng.below(n), |k, _| {
                found = Some(k.into())
            });
            if let Some(key) = found {
                return Some(Candidate { score: 0, db, key });
            }
        }
    }
    None
}

/// Refills the eviction pool from samples of every database, then takes its best candidate.
fn pooled_candidate(
    server: &ServerState,
    rank: Rank,
    volatile: bool,
    samples: usize,
    now_secs: u32,
    lfu: LfuParams,
    rng: &mut Rng,
) -> Option<Candidate> {
    let ks = &server.keyspace;
    let shards = ks.shard_count();
    let mut pool = server.evict_pool.lock();
    for db in 0..ks.databases() {
        // A few shards per database: any shard that holds eligible keys yields a sample.
        let first = rng.below(shards);
        for s in 0..shards.min(4) {
            let shard = ks.lock_shard((first + s * shards.div_ceil(4)) % shards);
            sample(
                &shard,
                db,
                volatile,
                samples,
                &mut |n| rng.below(n),
                |k, e| {
                    pool.offer(Candidate {
                        score: score(rank, e, now_secs, lfu),
                        db,
                        key: k.into(),
                    })
                },
            );
        }
    }
    pool.pop_best()
}

/// Deletes one chosen key if it is still there (and still volatile when the policy wants
/// that); returns the bytes it held.
fn evict_key(
    server: &ServerState,
    db: usize,
    key: &[u8],
    volatile: bool,
    lazy: bool,
    now_ms: u64,
) -> Option<usize> {
    let shard = server.keyspace.shard_of(key_slot(key));
    let mut locked = server.keyspace.lock(&[shard]);
    let entry = locked.peek(db, key)?;
    if volatile && entry.expire_at_ms == 0 {
        return None;
    }
    let bytes = super::debug::key_usage(key, entry);
    locked.remove(db, key);
    server.stats.evicted_keys.fetch_add(1, Relaxed);
    if server.repl_active.load(Relaxed) {
        let del: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
        // Still holding the shard: the deletion enters the stream in order.
        super::dispatch::feed_replication(
            server,
            &[(
                db,
                vec![Bytes::from_static(del), Bytes::copy_from_slice(key)],
            )],
        );
    }
    server.watches.touch(db, key, false);
    super::tracking::invalidate(server, key, None);
    drop(locked);
    super::pubsub::notify_keyspace_event(server, notify::EVICTED, "evicted", db, key, now_ms);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;

    use crate::commands::test_support::dispatch as run;

    fn setup(policy: &str) -> (ServerState, ClientState) {
        let server = ServerState::for_tests();
        let mut c = ClientState::new(1, "a:1".into(), "b:2".into(), 8, 0, true);
        run(
            &server,
            &mut c,
            &["config", "set", "maxmemory-policy", policy],
        );
        for i in 0..100 {
            let key = format!("k{i}");
            if i % 2 == 0 {
                run(&server, &mut c, &["set", &key, "v", "ex", "1000"]);
            } else {
                run(&server, &mut c, &["set", &key, "v"]);
            }
        }
        // Set last: from here on commands would evict against this process's real memory.
        run(&server, &mut c, &["config", "set", "maxmemory", "1000000"]);
        (server, c)
    }

    fn dbsize(server: &ServerState, _c: &mut ClientState) -> i64 {
        server.keyspace.lock_all().db_size(0) as i64
    }

    fn exists(server: &ServerState, key: &str) -> bool {
        server.keyspace.lock_all().peek(0, key.as_bytes()).is_some()
    }

    #[test]
    fn under_the_limit_nothing_happens() {
        let (server, mut c) = setup("allkeys-lru");
        assert_eq!(perform_evictions(&server, 0, &|| 10), Evicted::Ok);
        assert_eq!(dbsize(&server, &mut c), 100);
    }

    #[test]
    fn noeviction_fails_and_denyoom_commands_are_refused() {
        let (server, mut c) = setup("noeviction");
        assert_eq!(perform_evictions(&server, 0, &|| 2_000_000), Evicted::Fail);
        assert_eq!(dbsize(&server, &mut c), 100);
    }

    #[test]
    fn allkeys_policies_free_what_is_over_the_limit() {
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
            let (server, mut c) = setup(policy);
            // 2000 bytes over: a few small keys must go, not all of them.
            assert_eq!(
                perform_evictions(&server, 0, &|| 1_002_000),
                Evicted::Ok,
                "{policy}"
            );
            let left = dbsize(&server, &mut c);
            assert!(left < 100 && left > 50, "{policy}: {left}");
            assert_eq!(
                server.stats.evicted_keys.load(Relaxed) as i64,
                100 - left,
                "{policy}"
            );
        }
    }

    #[test]
    fn volatile_policies_evict_only_keys_with_a_ttl() {
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            let (server, mut c) = setup(policy);
            // Far more than the keyspace holds: every volatile key goes, then it fails.
            assert_eq!(
                perform_evictions(&server, 0, &|| 100_000_000),
                Evicted::Fail,
                "{policy}"
            );
            assert_eq!(dbsize(&server, &mut c), 50, "{policy}");
            for i in (1..100).step_by(2) {
                assert!(exists(&server, &format!("k{i}")), "{policy}");
            }
        }
    }

    #[test]
    fn the_key_budget_bounds_one_call() {
        assert_eq!(keys_per_call(10), 500);
        assert_eq!(keys_per_call(1), 50);
        assert_eq!(keys_per_call(100), usize::MAX);
        assert!(keys_per_call(20) > keys_per_call(11));
    }
}

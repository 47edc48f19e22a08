//! What maxmemory eviction needs from the keyspace, as pure functions: the LFU counter (a
//! logarithmic access counter that decays with time, as Redis keeps it), the score that ranks
//! a key as an eviction candidate under each policy, random sampling of keys in one shard,
//! and the eviction pool that keeps the best candidates seen across samples. Time and
//! randomness come in as arguments.

use super::db::Shard;
use super::slot_table::Entry;

/// The counter a new key starts with under an LFU policy (Redis's LFU_INIT_VAL).
pub const LFU_INIT_VAL: u8 = 5;
/// Candidates the pool keeps (Redis's EVPOOL_SIZE).
pub const POOL_SIZE: usize = 16;

/// How a policy ranks keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    /// Longest idle first.
    Lru,
    /// Least frequently used first.
    Lfu,
    /// Nearest expiry first.
    Ttl,
    /// Any key.
    Random,
}

/// LFU settings: `lfu-log-factor` and `lfu-decay-time` (minutes per decrement).
#[derive(Clone, Copy, Debug)]
pub struct LfuParams {
    pub log_factor: u64,
    pub decay_minutes: u64,
}

/// The counter after decaying it by the whole decay periods since the last access.
pub fn lfu_decayed(entry: &Entry, now_secs: u32, p: LfuParams) -> u8 {
    if p.decay_minutes == 0 {
        return entry.lfu;
    }
    let elapsed = u64::from(now_secs / 60).saturating_sub(u64::from(entry.lru_secs / 60));
    let periods = elapsed / p.decay_minutes;
    entry.lfu.saturating_sub(periods.min(255) as u8)
}

/// One access under an LFU policy: decay, then a logarithmic increment (the more accesses a
/// key already has, the less likely one more counts). `coin` is uniform in [0, 1).
pub fn lfu_touch(entry: &mut Entry, now_secs: u32, p: LfuParams, coin: f64) {
    let mut counter = lfu_decayed(entry, now_secs, p);
    if counter < 255 {
        let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
        let chance = 1.0 / (base * p.log_factor as f64 + 1.0);
        if coin < chance {
            counter += 1;
        }
    }
    entry.lfu = counter;
    entry.lru_secs = now_secs;
}

/// How good a candidate `entry` is: higher is evicted first.
pub fn score(rank: Rank, entry: &Entry, now_secs: u32, lfu: LfuParams) -> u64 {
    match rank {
        Rank::Lru => u64::from(now_secs.saturating_sub(entry.lru_secs)) * 1000,
        Rank::Lfu => 255 - u64::from(lfu_decayed(entry, now_secs, lfu)),
        Rank::Ttl => u64::MAX - entry.expire_at_ms,
        Rank::Random => 0,
    }
}

/// Visits up to `count` keys of database `db` in `shard`, picked at random (keys with an
/// expiry only when `volatile`). Like Redis's sampling it is cheap rather than uniform: a
/// random slot table, then consecutive keys from a random position in it.
pub fn sample(
    shard: &Shard,
    db: usize,
    volatile: bool,
    count: usize,
    rand: &mut impl FnMut(usize) -> usize,
    mut visit: impl FnMut(&[u8], &Entry),
) {
    let Some(sdb) = shard.dbs.get(db) else {
        return;
    };
    let available = if volatile { sdb.expires } else { sdb.keys };
    if available == 0 || sdb.slots.is_empty() {
        return;
    }
    let mut seen = 0;
    let slots = sdb.slots.len();
    let mut index = rand(slots);
    // Every table is looked at at most once per call.
    for _ in 0..slots {
        if seen >= count {
            break;
        }
        if let Some(table) = sdb.slots.get(index) {
            let eligible = if volatile { table.expires } else { table.len() };
            if eligible > 0 {
                let start = rand(table.len());
                let wanted = |e: &&Entry| !volatile || e.expire_at_ms != 0;
                for (key, entry) in table
                    .iter()
                    .skip(start)
                    .chain(table.iter().take(start))
                    .filter(|(_, e)| wanted(e))
                    .take(count - seen)
                {
                    visit(key, entry);
                    seen += 1;
                }
            }
        }
        index = (index + 1) % slots;
    }
}

/// One eviction candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub score: u64,
    pub db: usize,
    pub key: Box<[u8]>,
}

/// The best candidates seen so far, ascending by score (Redis's eviction pool).
#[derive(Default, Debug)]
pub struct Pool {
    items: Vec<Candidate>,
}

impl Pool {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds a candidate unless the pool is full of better ones; a key already in the pool
    /// gets its new score.
    pub fn offer(&mut self, c: Candidate) {
        if let Some(i) = self
            .items
            .iter()
            .position(|o| o.db == c.db && o.key == c.key)
        {
            self.items.remove(i);
        }
        if self.items.len() == POOL_SIZE {
            if c.score <= self.items[0].score {
                return;
            }
            self.items.remove(0);
        }
        let at = self.items.partition_point(|o| o.score <= c.score);
        self.items.insert(at, c);
    }

    /// Takes the best candidate.
    pub fn pop_best(&mut self) -> Option<Candidate> {
        self.items.pop()
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::db::Keyspace;
    use crate::keyspace::value::{StrValue, Value};

    const P: LfuParams = LfuParams {
        log_factor: 10,
        decay_minutes: 1,
    };

    fn entry(lru_secs: u32) -> Entry {
        Entry::new(Value::Str(StrValue::from_i64(1)), lru_secs)
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays_per_period() {
        let mut e = entry(0);
        assert_eq!(e.lfu, LFU_INIT_VAL);
        // Below the initial value every access counts.
        e.lfu = 0;
        lfu_touch(&mut e, 0, P, 0.99);
        assert_eq!(e.lfu, 1);
        // Far above it, almost none does.
        e.lfu = 100;
        lfu_touch(&mut e, 0, P, 0.01);
        assert_eq!(e.lfu, 100);
        lfu_touch(&mut e, 0, P, 0.0);
        assert_eq!(e.lfu, 101);
        e.lfu = 255;
        lfu_touch(&mut e, 0, P, 0.0);
        assert_eq!(e.lfu, 255);
        // Three minutes idle with a one-minute period: three steps down.
        e.lfu = 10;
        e.lru_secs = 60;
        assert_eq!(lfu_decayed(&e, 60 + 180, P), 7);
        assert_eq!(
            lfu_decayed(
                &e,
                60 + 180,
                LfuParams {
                    decay_minutes: 0,
                    ..P
                }
            ),
            10
        );
        e.lfu = 2;
        assert_eq!(lfu_decayed(&e, 60 * 100, P), 0);
    }

    #[test]
    fn scores_rank_keys_per_policy() {
        let old = entry(100);
        let recent = entry(190);
        assert!(score(Rank::Lru, &old, 200, P) > score(Rank::Lru, &recent, 200, P));
        let (mut soon, mut late) = (entry(0), entry(0));
        soon.expire_at_ms = 1_000;
        late.expire_at_ms = 9_000;
        assert!(score(Rank::Ttl, &soon, 0, P) > score(Rank::Ttl, &late, 0, P));
        let (mut rare, mut hot) = (entry(0), entry(0));
        rare.lfu = 1;
        hot.lfu = 50;
        assert!(score(Rank::Lfu, &rare, 0, P) > score(Rank::Lfu, &hot, 0, P));
    }

    #[test]
    fn pool_keeps_the_best_sixteen_in_order() {
        let mut pool = Pool::default();
        for i in 0..40u64 {
            pool.offer(Candidate {
                score: (i * 7) % 40,
                db: 0,
                key: format!("k{i}").into_bytes().into(),
            });
        }
        assert_eq!(pool.len(), POOL_SIZE);
        let mut last = u64::MAX;
        while let Some(c) = pool.pop_best() {
            assert!(c.score <= last);
            assert!(c.score >= 40 - POOL_SIZE as u64);
            last = c.score;
        }
        // Offering a key again replaces its entry.
        pool.offer(Candidate {
            score: 1,
            db: 0,
            key: b"a"[..].into(),
        });
        pool.offer(Candidate {
            score: 5,
            db: 0,
            key: b"a"[..].into(),
        });
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.pop_best().unwrap().score, 5);
    }

    #[test]
    fn sampling_finds_only_volatile_keys_when_asked() {
        let ks = Keyspace::new(1, 1);
        {
            let mut locked = ks.lock_all();
            for i in 0..200 {
                let mut e = entry(0);
                if i % 10 == 0 {
                    e.expire_at_ms = 1;
                }
                locked.insert(0, format!("key:{i}").as_bytes(), e);
            }
        }
        let shard = ks.lock_shard(0);
        let mut state = 12345usize;
        let mut rand = |n: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 33) % n
        };
        let mut all = 0;
        sample(&shard, 0, false, 5, &mut rand, |_, _| all += 1);
        assert_eq!(all, 5);
        let mut volatile = Vec::new();
        sample(&shard, 0, true, 50, &mut rand, |k, e| {
            assert_ne!(e.expire_at_ms, 0);
            volatile.push(k.to_vec());
        });
        assert_eq!(volatile.len(), 20, "all twenty volatile keys are reachable");
        let mut none = 0;
        sample(&shard, 1, false, 5, &mut rand, |_, _| none += 1);
        assert_eq!(none, 0);
    }
}

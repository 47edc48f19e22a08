//! Clients blocked on keys (BLPOP and friends): who waits for which key, in arrival order.
//! A write to a key wakes the first waiter only; a waiter that got served passes the turn to
//! the next one on each of its keys, so waiters are served first come, first served, and a
//! waiter woken for nothing (someone else took the element) simply goes back to waiting.
//! The waking itself is a callback given by the server, so this module stays free of I/O.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// Wakes one blocked client.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A key in a database.
type DbKey = (usize, Box<[u8]>);

#[derive(Default)]
pub struct BlockRegistry {
    waiters: Mutex<HashMap<DbKey, VecDeque<(u64, Waker)>>>,
    /// Number of keys somebody waits for, read without the lock on every write.
    count: AtomicUsize,
}

impl BlockRegistry {
    pub fn is_empty(&self) -> bool {
        self.count.load(Relaxed) == 0
    }

    /// Queues `client` behind the current waiters of each key.
    pub fn block(&self, client: u64, keys: &[DbKey], waker: &Waker) {
        let mut waiters = self.waiters.lock();
        for key in keys {
            let queue = waiters.entry(key.clone()).or_default();
            if queue.is_empty() {
                self.count.fetch_add(1, Relaxed);
            }
            if !queue.iter().any(|(c, _)| *c == client) {
                queue.push_back((client, waker.clone()));
            }
        }
    }

    /// Removes `client` from the queues of its keys and wakes whoever is now first on each,
    /// so an element the client did not take goes to the next waiter.
    pub fn unblock(&self, client: u64, keys: &[DbKey]) {
        let mut to_wake = Vec::new();
        {
            let mut waiters = self.waiters.lock();
            for key in keys {
                let Some(queue) = waiters.get_mut(key) else {
                    continue;
                };
                queue.retain(|(c, _)| *c != client);
                match queue.front() {
                    Some((_, w)) => to_wake.push(w.clone()),
                    None => {
                        waiters.remove(key);
                        self.count.fetch_sub(1, Relaxed);
                    }
                }
            }
        }
        for wake in to_wake {
            wake();
        }
    }

    /// A key may have become non-empty: wakes its first waiter.
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.is_empty() {
            return;
        }
        let wake = {
            let waiters = self.waiters.lock();
            waiters
                .get(&(db, key.into()))
                .and_then(|q| q.front().map(|(_, w)| w.clone()))
        };
        if let Some(wake) = wake {
            wake();
        }
    }

    /// Every key of `db` may have changed (SWAPDB): wakes the first waiter of each.
    pub fn signal_db(&self, db: usize) {
        if self.is_empty() {
            return;
        }
        let wakers: Vec<Waker> = {
            let waiters = self.waiters.lock();
            waiters
                .iter()
                .filter(|((d, _), _)| *d == db)
                .filter_map(|(_, q)| q.front().map(|(_, w)| w.clone()))
                .collect()
        };
        for wake in wakers {
            wake();
        }
    }

    /// Wakes every waiter of every key, so each checks again whether it may still wait here
    /// (a new cluster topology may have moved its slot away).
    pub fn wake_all(&self) {
        if self.is_empty() {
            return;
        }
        let wakers: Vec<Waker> = {
            let waiters = self.waiters.lock();
            waiters
                .values()
                .flat_map(|q| q.iter().map(|(_, w)| w.clone()))
                .collect()
        };
        for wake in wakers {
            wake();
        }
    }

    /// Number of distinct keys clients are blocked on (INFO `total_blocking_keys`).
    pub fn key_count(&self) -> usize {
        self.count.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn counter() -> (Arc<AtomicU32>, Waker) {
        let n = Arc::new(AtomicU32::new(0));
        let m = n.clone();
        (
            n,
            Arc::new(move || {
                m.fetch_add(1, Relaxed);
            }),
        )
    }

    fn key(k: &str) -> DbKey {
        (0, k.as_bytes().into())
    }

    #[test]
    fn a_write_wakes_only_the_first_waiter_then_the_turn_passes() {
        let r = BlockRegistry::default();
        let (a, wa) = counter();
        let (b, wb) = counter();
        r.block(1, &[key("k")], &wa);
        r.block(2, &[key("k")], &wb);
        r.signal(0, b"k");
        assert_eq!((a.load(Relaxed), b.load(Relaxed)), (1, 0));
        r.unblock(1, &[key("k")]);
        assert_eq!(b.load(Relaxed), 1);
        r.unblock(2, &[key("k")]);
        assert!(r.is_empty());
    }

    #[test]
    fn waiters_on_other_keys_or_databases_stay_asleep() {
        let r = BlockRegistry::default();
        let (a, wa) = counter();
        r.block(1, &[key("x"), key("y")], &wa);
        r.signal(0, b"z");
        r.signal(1, b"x");
        assert_eq!(a.load(Relaxed), 0);
        r.signal(0, b"y");
        assert_eq!(a.load(Relaxed), 1);
        assert_eq!(r.key_count(), 2);
    }
}

//! Optimistic locking for MULTI/EXEC: which clients watch which keys, and the rules by which
//! a modification marks a watcher's transaction as failed. They follow Redis 7.0's
//! `multi.c`, including its handling of keys that were already expired when watched (a
//! deletion of such a key is no logical change).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

/// One client's watch on one key.
struct Watcher {
    client: u64,
    /// The client's "transaction must fail" flag (Redis's CLIENT_DIRTY_CAS).
    dirty: Arc<AtomicBool>,
    /// The key was logically expired when WATCH ran.
    expired: bool,
}

/// A watched key: (database, key).
type WatchedKey = (usize, Box<[u8]>);

/// How a key looks in the database replacing another, by key.
pub type PresenceOf<'a> = &'a dyn Fn(&[u8]) -> Presence;

/// Every watched key, by (database, key).
#[derive(Default)]
pub struct WatchRegistry {
    keys: Mutex<HashMap<WatchedKey, Vec<Watcher>>>,
    /// Number of watched keys, read without the lock on every write.
    count: AtomicUsize,
}

/// How a key looks in the database that replaces it (SWAPDB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presence {
    pub exists: bool,
    pub expired: bool,
}

impl WatchRegistry {
    pub fn is_empty(&self) -> bool {
        self.count.load(Relaxed) == 0
    }

    /// Adds a watch; false if this client already watches the key.
    pub fn watch(
        &self,
        db: usize,
        key: &[u8],
        client: u64,
        dirty: &Arc<AtomicBool>,
        expired: bool,
    ) -> bool {
        let mut keys = self.keys.lock();
        let watchers = keys.entry((db, key.into())).or_default();
        if watchers.iter().any(|w| w.client == client) {
            return false;
        }
        if watchers.is_empty() {
            self.count.fetch_add(1, Relaxed);
        }
        watchers.push(Watcher {
            client,
            dirty: dirty.clone(),
            expired,
        });
        true
    }

    /// Removes a client's watches on the given keys.
    pub fn unwatch(&self, client: u64, watched: &[(usize, Box<[u8]>)]) {
        if watched.is_empty() {
            return;
        }
        let mut keys = self.keys.lock();
        for (db, key) in watched {
            let k = (*db, key.clone());
            if let Some(watchers) = keys.get_mut(&k) {
                watchers.retain(|w| w.client != client);
                if watchers.is_empty() {
                    keys.remove(&k);
                    self.count.fetch_sub(1, Relaxed);
                }
            }
        }
    }

    /// A key was modified (Redis's `touchWatchedKey`); `exists_now` is whether it is in the
    /// database after the modification.
    pub fn touch(&self, db: usize, key: &[u8], exists_now: bool) {
        if self.is_empty() {
            return;
        }
        let mut keys = self.keys.lock();
        let Some(watchers) = keys.get_mut(&(db, key.into())) else {
            return;
        };
        for w in watchers.iter_mut() {
            if w.expired {
                if !exists_now {
                    // The stale key is gone: no logical change.
                    w.expired = false;
                    continue;
                }
                // Redis stops at a stale watcher whose key still exists.
                break;
            }
            w.dirty.store(true, Relaxed);
        }
    }

    /// Whether `client` watched this key while it was already expired.
    pub fn is_stale(&self, db: usize, key: &[u8], client: u64) -> bool {
        let keys = self.keys.lock();
        keys.get(&(db, key.into()))
            .and_then(|ws| ws.iter().find(|w| w.client == client))
            .is_some_and(|w| w.expired)
    }

    /// The keys of `db` someone watches.
    pub fn watched_in(&self, db: usize) -> Vec<Box<[u8]>> {
        if self.is_empty() {
            return Vec::new();
        }
        let keys = self.keys.lock();
        keys.keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// `db` is emptied (FLUSHDB, FLUSHALL) or has its contents replaced (SWAPDB), before it
    /// happens (Redis's `touchAllWatchedKeysInDb`). `in_emptied` tells whether a key is in
    /// `db` now; `replaced` how it looks in the database taking its place, if any.
    pub fn touch_db(
        &self,
        db: usize,
        in_emptied: impl Fn(&[u8]) -> bool,
        replaced: Option<PresenceOf<'_>>,
    ) {
        if self.is_empty() {
            return;
        }
        let mut keys = self.keys.lock();
        for ((d, key), watchers) in keys.iter_mut() {
            if *d != db {
                continue;
            }
            let exists_in_emptied = in_emptied(key);
            let incoming = replaced.map(|f| f(key));
            if !exists_in_emptied && !incoming.is_some_and(|p| p.exists) {
                continue;
            }
            for w in watchers.iter_mut() {
                if w.expired {
                    match incoming {
                        Some(p) if p.exists => {
                            if p.expired {
                                continue;
                            }
                        }
                        _ => {
                            w.expired = false;
                            continue;
                        }
                    }
                } else if !exists_in_emptied && incoming.is_some_and(|p| p.expired) {
                    w.expired = true;
                    continue;
                }
                w.dirty.store(true, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    #[test]
    fn a_modification_marks_every_watcher() {
        let r = WatchRegistry::default();
        let (a, b) = (flag(), flag());
        assert!(r.watch(0, b"k", 1, &a, false));
        assert!(!r.watch(0, b"k", 1, &a, false));
        assert!(r.watch(0, b"k", 2, &b, false));
        r.touch(1, b"k", true);
        assert!(!a.load(Relaxed));
        r.touch(0, b"k", true);
        assert!(a.load(Relaxed) && b.load(Relaxed));
        r.unwatch(1, &[(0, b"k"[..].into())]);
        r.unwatch(2, &[(0, b"k"[..].into())]);
        assert!(r.is_empty());
    }

    #[test]
    fn deleting_a_stale_key_is_no_change() {
        let r = WatchRegistry::default();
        let a = flag();
        r.watch(0, b"k", 1, &a, true);
        r.touch(0, b"k", false);
        assert!(!a.load(Relaxed));
        // Now it is an ordinary watch of a missing key.
        r.touch(0, b"k", true);
        assert!(a.load(Relaxed));
    }

    #[test]
    fn flushing_touches_only_existing_keys() {
        let r = WatchRegistry::default();
        let (a, b) = (flag(), flag());
        r.watch(0, b"here", 1, &a, false);
        r.watch(0, b"gone", 2, &b, false);
        r.touch_db(0, |k| k == b"here", None);
        assert!(a.load(Relaxed));
        assert!(!b.load(Relaxed));
    }

    #[test]
    fn swapping_in_a_stale_key_for_a_missing_one_is_no_change() {
        let r = WatchRegistry::default();
        let a = flag();
        r.watch(0, b"k", 1, &a, false);
        let stale = |_: &[u8]| Presence {
            exists: true,
            expired: true,
        };
        r.touch_db(0, |_| false, Some(&stale));
        assert!(!a.load(Relaxed));
    }
}

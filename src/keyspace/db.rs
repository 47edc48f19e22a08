//! `Keyspace` (all shards) and `Locked` (the shards one command holds). Every key operation
//! goes through `Locked`, which finds the key's slot table, applies lazy expiry and keeps the
//! per-database key and TTL counts exact.

use super::slot_table::{Entry, SlotTable};
use super::snapshot::{Cut, EncodeFn, SnapshotGate};
use super::value::Value;
use crate::slot::{key_slot, SLOT_COUNT};
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;

/// Slot tables per chunk: the unit in which the slot index grows.
const CHUNK: usize = 64;

/// The tables of 64 consecutive slots.
type Chunk = [Option<SlotTable>; CHUNK];

/// A shard's slot tables for one database, as a sparse two-level array: the index grows by
/// chunks of 64 slots as slots get their first keys, so an unused database costs a few
/// hundred bytes and memory grows smoothly with the keys (maxmemory sees no jumps).
#[derive(Debug)]
pub struct SlotTables {
    chunks: Vec<Option<Box<Chunk>>>,
    len: usize,
}

impl SlotTables {
    pub fn new(len: usize) -> SlotTables {
        SlotTables {
            chunks: (0..len.div_ceil(CHUNK)).map(|_| None).collect(),
            len,
        }
    }

    /// How many slots (tables or not) there are.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, local: usize) -> Option<&SlotTable> {
        self.chunks.get(local / CHUNK)?.as_ref()?[local % CHUNK].as_ref()
    }

    pub fn get_mut(&mut self, local: usize) -> Option<&mut SlotTable> {
        self.chunks.get_mut(local / CHUNK)?.as_mut()?[local % CHUNK].as_mut()
    }

    pub fn get_or_create(&mut self, local: usize) -> &mut SlotTable {
        let chunk =
            self.chunks[local / CHUNK].get_or_insert_with(|| Box::new([const { None }; CHUNK]));
        chunk[local % CHUNK].get_or_insert_with(Default::default)
    }

    /// Drops the table of one slot (it became empty), and its chunk when that was the last.
    pub fn remove(&mut self, local: usize) {
        let Some(chunk) = self.chunks[local / CHUNK].as_mut() else {
            return;
        };
        chunk[local % CHUNK] = None;
        if chunk.iter().all(Option::is_none) {
            self.chunks[local / CHUNK] = None;
        }
    }

    pub fn clear(&mut self) {
        self.chunks.iter_mut().for_each(|c| *c = None);
    }

    /// The indexes of the slots that have a table (hold keys), ascending.
    pub fn occupied(&self) -> impl Iterator<Item = usize> + '_ {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().flat_map(move |tables| {
                tables
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.is_some())
                    .map(move |(i, _)| c * CHUNK + i)
            })
        })
    }
}

/// One shard's part of one database: the slot tables of the slots this shard owns.
#[derive(Debug)]
pub struct ShardDb {
    /// Indexed by `slot / shard_count`.
    pub slots: SlotTables,
    /// How many slots this shard owns.
    pub slots_owned: usize,
    pub keys: usize,
    pub expires: usize,
}

impl ShardDb {
    pub fn table_mut(&mut self, local: usize) -> Option<&mut SlotTable> {
        self.slots.get_mut(local)
    }
}

#[derive(Debug)]
pub struct Shard {
    pub dbs: Vec<ShardDb>,
}

/// A shard's lock on a cache line of its own: the lock word is written by every command that
/// takes it, and neighbours must not share that line across cores.
#[repr(align(128))]
struct PaddedShard(Mutex<Shard>);

impl std::ops::Deref for PaddedShard {
    type Target = Mutex<Shard>;
    fn deref(&self) -> &Mutex<Shard> {
        &self.0
    }
}

pub struct Keyspace {
    shards: Box<[PaddedShard]>,
    databases: usize,
    /// The snapshot in progress, which every lock taken through `lock*` consults.
    snapshot: SnapshotGate,
}

impl Keyspace {
    pub fn new(shard_count: usize, databases: usize) -> Keyspace {
        assert!((1..=SLOT_COUNT).contains(&shard_count));
        assert!(databases >= 1);
        let per_shard = SLOT_COUNT.div_ceil(shard_count);
        let shards = (0..shard_count)
            .map(|_| {
                PaddedShard(Mutex::new(Shard {
                    dbs: (0..databases)
                        .map(|_| ShardDb {
                            slots: SlotTables::new(per_shard),
                            slots_owned: per_shard,
                            keys: 0,
                            expires: 0,
                        })
                        .collect(),
                }))
            })
            .collect();
        Keyspace {
            shards,
            databases,
            snapshot: SnapshotGate::default(),
        }
    }

    pub fn snapshot(&self) -> &SnapshotGate {
        &self.snapshot
    }

    /// Cuts a snapshot at this instant (every shard is held for the cut) and publishes it, so
    /// from now on commands save a slot before changing it. The caller walks the cut and
    /// ends it with `snapshot().finish()`.
    pub fn begin_snapshot(&self, now_ms: u64, encode: EncodeFn) -> Arc<Cut> {
        let locked = self.lock_all();
        self.begin_snapshot_locked(&locked, now_ms, encode)
    }

    /// `begin_snapshot` for a caller already holding every shard (to read the replication
    /// offset at the same instant).
    pub fn begin_snapshot_locked(
        &self,
        locked: &Locked<'_>,
        now_ms: u64,
        encode: EncodeFn,
    ) -> Arc<Cut> {
        assert_eq!(
            locked.held().count(),
            self.shards.len(),
            "a cut needs every shard"
        );
        let shards: Vec<&[ShardDb]> = locked.held().map(|s| &s.dbs[..]).collect();
        let cut = Arc::new(Cut::new(&shards, self.databases, now_ms, encode));
        self.snapshot.install(cut.clone());
        cut
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }
    pub fn databases(&self) -> usize {
        self.databases
    }
    pub fn shard_of(&self, slot: u16) -> usize {
        slot as usize % self.shards.len()
    }

    /// Locks the given shards (any order, duplicates allowed) in ascending order, so two
    /// commands can never wait on each other.
    pub fn lock(&self, shards: &[usize]) -> Locked<'_> {
        match shards {
            [one] => self.lock_one(*one),
            _ => {
                let mut wanted: Vec<usize> = shards.to_vec();
                wanted.sort_unstable();
                wanted.dedup();
                self.lock_sorted(wanted)
            }
        }
    }

    /// Locks a single shard: the common case, without allocating.
    pub fn lock_one(&self, shard: usize) -> Locked<'_> {
        self.locked(Guards::One(shard, self.shards[shard].lock()))
    }

    pub fn lock_all(&self) -> Locked<'_> {
        self.lock_sorted((0..self.shards.len()).collect())
    }

    fn lock_sorted(&self, wanted: Vec<usize>) -> Locked<'_> {
        let guards = wanted
            .into_iter()
            .map(|i| (i, self.shards[i].lock()))
            .collect();
        self.locked(Guards::Many(guards))
    }

    fn locked<'a>(&'a self, guards: Guards<'a>) -> Locked<'a> {
        Locked {
            guards,
            shard_count: self.shards.len(),
            databases: self.databases,
            cut: self.snapshot.current(),
            hint: SlotHint::default(),
        }
    }

    /// Locks one shard only, for background work (active expiry, snapshots).
    pub fn lock_shard(&self, shard: usize) -> MutexGuard<'_, Shard> {
        self.shards[shard].lock()
    }
}

/// The shards one command holds. Touching a key whose shard is not held is a programmer error.
pub struct Locked<'a> {
    guards: Guards<'a>,
    shard_count: usize,
    databases: usize,
    /// The snapshot that was in progress when the locks were taken: every change to a slot
    /// it has not saved yet saves the slot first.
    cut: Option<Arc<Cut>>,
    hint: SlotHint,
}

/// Held shards: usually one; several in ascending index order.
enum Guards<'a> {
    One(usize, MutexGuard<'a, Shard>),
    Many(Vec<(usize, MutexGuard<'a, Shard>)>),
}

impl<'a> Guards<'a> {
    fn find_mut(&mut self, wanted: usize) -> Option<&mut Shard> {
        match self {
            Guards::One(i, g) => (*i == wanted).then_some(&mut **g),
            Guards::Many(v) => v
                .iter_mut()
                .find(|(i, _)| *i == wanted)
                .map(|(_, g)| &mut **g),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Shard> {
        self.indexed().map(|(_, s)| s)
    }

    /// The held shards with their indexes, ascending.
    fn indexed(&self) -> impl Iterator<Item = (usize, &Shard)> {
        let (one, many) = match self {
            Guards::One(i, g) => (Some((*i, &**g)), &[][..]),
            Guards::Many(v) => (None, &v[..]),
        };
        one.into_iter().chain(many.iter().map(|(i, g)| (*i, &**g)))
    }

    fn for_each_mut(&mut self, mut f: impl FnMut(&mut Shard)) {
        match self {
            Guards::One(_, g) => f(g),
            Guards::Many(v) => v.iter_mut().for_each(|(_, g)| f(g)),
        }
    }
}

/// The slot of the key last looked up: a command usually touches the same key several times
/// (lookup, then insert), and its CRC16 is worth computing once. Keys are compared by content,
/// so the hint can never answer for another key.
struct SlotHint {
    len: u8,
    key: [u8; SlotHint::MAX_KEY],
    slot: u16,
}

impl Default for SlotHint {
    fn default() -> Self {
        SlotHint {
            len: u8::MAX,
            key: [0; SlotHint::MAX_KEY],
            slot: 0,
        }
    }
}

impl SlotHint {
    const MAX_KEY: usize = 40;

    fn slot_of(&mut self, key: &[u8]) -> u16 {
        // The empty hint's length (u8::MAX) is longer than the buffer: compare lengths
        // within it only, or a 255-byte key would index past the end.
        if key.len() <= Self::MAX_KEY
            && key.len() == self.len as usize
            && key == &self.key[..key.len()]
        {
            return self.slot;
        }
        let slot = key_slot(key);
        self.remember(key, slot);
        slot
    }

    fn remember(&mut self, key: &[u8], slot: u16) {
        if key.len() <= Self::MAX_KEY {
            self.key[..key.len()].copy_from_slice(key);
            self.len = key.len() as u8;
            self.slot = slot;
        }
    }
}

/// What a lookup found.
pub enum Lookup<'e> {
    Found(&'e mut Entry),
    Missing,
}

impl<'a> Locked<'a> {
    pub fn databases(&self) -> usize {
        self.databases
    }

    fn n(&self) -> usize {
        self.shard_count
    }

    fn shard_db(&mut self, db: usize, slot: u16) -> &mut ShardDb {
        let wanted = slot as usize % self.shard_count;
        let shard = self
            .guards
            .find_mut(wanted)
            .expect("command touched a key whose shard it did not lock");
        &mut shard.dbs[db]
    }

    /// Tells the lock the slot of a key the command is about to touch (computed while
    /// choosing the shards to lock).
    pub fn remember_slot(&mut self, key: &[u8], slot: u16) {
        self.hint.remember(key, slot);
    }

    /// The key's shard database and table index, for a change: a slot the snapshot in
    /// progress has not saved yet is saved first.
    fn table_mut(&mut self, db: usize, key: &[u8]) -> (&mut ShardDb, usize) {
        let slot = self.hint.slot_of(key);
        self.before_write(db, slot);
        self.table_at(db, slot)
    }

    fn table_at(&mut self, db: usize, slot: u16) -> (&mut ShardDb, usize) {
        let n = self.n();
        let local = slot as usize / n;
        (self.shard_db(db, slot), local)
    }

    /// Saves (db, slot) for the snapshot in progress unless it was saved already.
    fn before_write(&mut self, db: usize, slot: u16) {
        if let Some(cut) = self.cut.clone() {
            if cut.is_unsaved(db, slot) {
                cut.save_before_write(self.shard_db(db, slot), db, slot);
            }
        }
    }

    /// Saves every unsaved slot of `db` in the held shards (FLUSHDB, SWAPDB).
    fn before_db_write(&mut self, db: usize) {
        if let Some(cut) = self.cut.clone() {
            for (i, shard) in self.guards.indexed() {
                cut.save_shard_db(&shard.dbs[db], i, db);
            }
        }
    }

    /// Finds a key, deleting it first if its time has passed. Returns whether a key was lazily
    /// expired, so the caller can count and propagate it.
    pub fn lookup(&mut self, db: usize, key: &[u8], now_ms: u64) -> (Option<&mut Entry>, bool) {
        let (sdb, local) = self.table_mut(db, key);
        let no_ttl = match sdb.table_mut(local) {
            None => return (None, false),
            Some(table) => table.expires == 0,
        };
        if no_ttl {
            // No key of this slot has a time to live: nothing to expire, one probe.
            return (sdb.table_mut(local).and_then(|t| t.get_mut(key)), false);
        }
        let table = sdb.table_mut(local).expect("table checked above");
        let expired = match table.get(key) {
            None => return (None, false),
            Some(e) => e.is_expired(now_ms),
        };
        if expired {
            remove_from(sdb, local, key);
            return (None, true);
        }
        let table = sdb.table_mut(local).expect("table checked above");
        (table.get_mut(key), false)
    }

    /// Looks a key up without expiring it or touching anything (DEBUG, TYPE checks of tests).
    pub fn peek(&mut self, db: usize, key: &[u8]) -> Option<&Entry> {
        let slot = self.hint.slot_of(key);
        let (sdb, local) = self.table_at(db, slot);
        sdb.slots.get(local)?.get(key)
    }

    /// Inserts or replaces a key. Returns the previous entry, if any.
    pub fn insert(&mut self, db: usize, key: &[u8], entry: Entry) -> Option<Entry> {
        let (sdb, local) = self.table_mut(db, key);
        let table = sdb.slots.get_or_create(local);
        let has_ttl = entry.expire_at_ms != 0;
        let old = table.insert(key, entry);
        let old_ttl = old.as_ref().is_some_and(|o| o.expire_at_ms != 0);
        if old.is_none() {
            sdb.keys += 1;
        }
        match (old_ttl, has_ttl) {
            (false, true) => {
                table.expires += 1;
                sdb.expires += 1;
            }
            (true, false) => {
                table.expires -= 1;
                sdb.expires -= 1;
            }
            _ => {}
        }
        old
    }

    pub fn remove(&mut self, db: usize, key: &[u8]) -> Option<Entry> {
        let (sdb, local) = self.table_mut(db, key);
        remove_from(sdb, local, key)
    }

    /// Sets or clears (0) a key's expiry time. Returns false if the key does not exist.
    pub fn set_expire(&mut self, db: usize, key: &[u8], at_ms: u64) -> bool {
        let (sdb, local) = self.table_mut(db, key);
        let Some(table) = sdb.table_mut(local) else {
            return false;
        };
        let Some(e) = table.get_mut(key) else {
            return false;
        };
        let (had, has) = (e.expire_at_ms != 0, at_ms != 0);
        e.expire_at_ms = at_ms;
        match (had, has) {
            (false, true) => {
                table.expires += 1;
                sdb.expires += 1;
            }
            (true, false) => {
                table.expires -= 1;
                sdb.expires -= 1;
            }
            _ => {}
        }
        true
    }

    /// Keys in database `db` (all shards must be held).
    pub fn db_size(&self, db: usize) -> usize {
        self.held().map(|s| s.dbs[db].keys).sum()
    }

    pub fn db_expires(&self, db: usize) -> usize {
        self.held().map(|s| s.dbs[db].expires).sum()
    }

    fn held(&self) -> impl Iterator<Item = &Shard> {
        self.guards.iter()
    }

    /// Empties one database; returns how many keys it held.
    pub fn flush_db(&mut self, db: usize) -> usize {
        self.before_db_write(db);
        let mut removed = 0;
        self.guards.for_each_mut(|shard| {
            let sdb = &mut shard.dbs[db];
            removed += sdb.keys;
            sdb.slots.clear();
            sdb.keys = 0;
            sdb.expires = 0;
        });
        removed
    }

    /// Exchanges two databases' contents in every held shard (all shards must be held).
    pub fn swap_db(&mut self, a: usize, b: usize) {
        self.before_db_write(a);
        self.before_db_write(b);
        self.guards.for_each_mut(|shard| shard.dbs.swap(a, b));
    }

    /// The slot table of `slot` in `db`, if it holds keys.
    /// Changes through it are possible, so a snapshot in progress saves the slot first.
    pub fn slot_table(&mut self, db: usize, slot: u16) -> Option<&mut SlotTable> {
        self.before_write(db, slot);
        let (sdb, local) = self.table_at(db, slot);
        sdb.table_mut(local)
    }

    /// The slot table of `slot` in `db` for reading (a snapshot in progress is not disturbed).
    pub fn slot_table_ref(&mut self, db: usize, slot: u16) -> Option<&SlotTable> {
        let (sdb, local) = self.table_at(db, slot);
        sdb.slots.get(local)
    }

    /// Number of keys in one slot of one database.
    pub fn count_in_slot(&mut self, db: usize, slot: u16) -> usize {
        self.slot_table_ref(db, slot).map_or(0, |t| t.len())
    }

    /// Visits every live key of `db` in slot order starting at `from_slot` (all shards must be
    /// held). `visit` answers whether it wants more; the walk stops at the end of the slot in
    /// which it last said no. Returns the next slot to visit, or None when the end was reached.
    pub fn for_each_key_from(
        &mut self,
        db: usize,
        from_slot: usize,
        now_ms: u64,
        mut visit: impl FnMut(&[u8], &Entry) -> bool,
    ) -> Option<usize> {
        for slot in from_slot..SLOT_COUNT {
            let Some(table) = self.slot_table_ref(db, slot as u16) else {
                continue;
            };
            let mut more = true;
            for (k, e) in table.iter().filter(|(_, e)| !e.is_expired(now_ms)) {
                more = visit(k, e);
            }
            if !more {
                return (slot + 1 < SLOT_COUNT).then_some(slot + 1);
            }
        }
        None
    }

    /// Picks a random live key of `db` using the caller's randomness (RANDOMKEY).
    pub fn random_key(
        &mut self,
        db: usize,
        now_ms: u64,
        mut rand: impl FnMut(usize) -> usize,
    ) -> Option<Box<[u8]>> {
        let total = self.db_size(db);
        if total == 0 {
            return None;
        }
        // Pick a key index uniformly, then walk the tables to it; retry past expired keys a
        // bounded number of times like Redis's dbRandomKey.
        for _ in 0..100 {
            let mut target = rand(total);
            for slot in 0..SLOT_COUNT {
                let Some(table) = self.slot_table_ref(db, slot as u16) else {
                    continue;
                };
                if target < table.len() {
                    let (k, e) = table.nth(target).expect("index within table");
                    if !e.is_expired(now_ms) {
                        return Some(k.into());
                    }
                    break;
                }
                target -= table.len();
            }
        }
        None
    }

    pub fn new_entry(value: Value, lru_secs: u32) -> Entry {
        Entry::new(value, lru_secs)
    }
}

fn remove_from(sdb: &mut ShardDb, local: usize, key: &[u8]) -> Option<Entry> {
    let table = sdb.slots.get_mut(local)?;
    let old = table.remove(key)?;
    sdb.keys -= 1;
    if old.expire_at_ms != 0 {
        table.expires -= 1;
        sdb.expires -= 1;
    }
    if table.is_empty() {
        sdb.slots.remove(local);
    }
    Some(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::StrValue;

    #[test]
    fn keys_of_every_length_pass_the_slot_hint() {
        let ks = Keyspace::new(2, 1);
        let mut l = ks.lock_all();
        for len in [0, 1, 40, 41, 254, 255, 256, 1000] {
            let key = vec![b'k'; len];
            assert!(l.peek(0, &key).is_none());
            l.insert(0, &key, Entry::new(Value::Str(StrValue::from_i64(1)), 0));
            assert!(l.peek(0, &key).is_some(), "{len}");
        }
    }
}

//! Point-in-time snapshots without fork (DESIGN §4.10), the bookkeeping part. Redis forks and
//! lets copy-on-write keep the child's view frozen; here a `Cut` is taken while every shard is
//! held for an instant: it records which (database, slot) pairs held keys and marks them all
//! unsaved. A background walker then visits them in RDB order (database 0.., slot 0..16383)
//! and encodes each slot's keys under that slot's shard lock; a command that is about to touch
//! an unsaved pair encodes it first (under the shard lock it already holds) and leaves the bytes
//! in a side store for the walker to pick up. Either way each pair is encoded exactly once, from
//! its contents at the cut. The side store is what copy-on-write would cost Redis: it only
//! holds slots written ahead of the walker.
//!
//! Nothing here knows the RDB format: the cut carries the function that encodes one key.

use super::db::ShardDb;
use super::slot_table::{Entry, SlotTable};
use crate::slot::SLOT_COUNT;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Appends one key's record (expiry, type, key, value) to the buffer.
pub type EncodeFn = Arc<dyn Fn(&mut Vec<u8>, &[u8], &Entry) + Send + Sync>;

/// 64-bit words of one database's slot bitmap.
const WORDS: usize = SLOT_COUNT / 64;

/// The encoded keys of one (database, slot) pair at the cut.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub keys: usize,
}

/// What the walker hands on, in file order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A database section starts (SELECTDB and RESIZEDB, with the sizes at the cut).
    Db {
        db: usize,
        keys: usize,
        expires: usize,
    },
    /// The keys of one slot.
    Keys(Chunk),
}

/// One snapshot in progress.
pub struct Cut {
    /// Keys whose time had passed at this instant are left out (0 keeps every stored key).
    now_ms: u64,
    encode: EncodeFn,
    shard_count: usize,
    /// (keys, keys with a TTL) per database at the cut.
    db_sizes: Vec<(usize, usize)>,
    /// Per database, one bit per slot that held keys at the cut. Never changes.
    nonempty: Box<[u64]>,
    /// Per database, one bit per slot not encoded yet. A bit is only cleared by a holder of
    /// the slot's shard lock, after its chunk is in `early` (or handed to the walker).
    unsaved: Box<[AtomicU64]>,
    /// Chunks encoded by commands ahead of the walker.
    early: Mutex<HashMap<(usize, u16), Chunk>>,
    early_bytes: AtomicUsize,
    /// Keys in the file so far (INFO `current_save_keys_processed`).
    pub keys_processed: AtomicUsize,
    /// The save was called off (FLUSHALL stops a BGSAVE, as Redis kills its child): nothing
    /// is saved for it any more.
    abandoned: AtomicBool,
}

impl std::fmt::Debug for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cut")
            .field("now_ms", &self.now_ms)
            .field("db_sizes", &self.db_sizes)
            .field("early_bytes", &self.early_bytes)
            .finish_non_exhaustive()
    }
}

impl Cut {
    /// Builds the cut from every shard's databases (`shards[i]` is shard `i`, each a slice
    /// of its databases), which the caller holds locked.
    pub fn new(shards: &[&[ShardDb]], databases: usize, now_ms: u64, encode: EncodeFn) -> Cut {
        let n = shards.len();
        let mut nonempty = vec![0u64; databases * WORDS].into_boxed_slice();
        let mut db_sizes = vec![(0, 0); databases];
        for (shard, dbs) in shards.iter().enumerate() {
            for (db, sdb) in dbs.iter().enumerate() {
                db_sizes[db].0 += sdb.keys;
                db_sizes[db].1 += sdb.expires;
                for local in sdb.slots.occupied() {
                    let slot = local * n + shard;
                    nonempty[db * WORDS + slot / 64] |= 1 << (slot % 64);
                }
            }
        }
        let unsaved = nonempty.iter().map(|&w| AtomicU64::new(w)).collect();
        Cut {
            now_ms,
            encode,
            shard_count: n,
            db_sizes,
            nonempty,
            unsaved,
            early: Mutex::new(HashMap::new()),
            early_bytes: AtomicUsize::new(0),
            keys_processed: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
        }
    }

    /// Keys in the dataset at the cut (INFO `current_save_keys_total`).
    pub fn keys_total(&self) -> usize {
        self.db_sizes.iter().map(|&(k, _)| k).sum()
    }

    /// Bytes of chunks saved ahead of the walker so far (what copy-on-write would cost).
    pub fn early_bytes(&self) -> usize {
        self.early_bytes.load(Ordering::Relaxed)
    }

    /// Calls the save off: commands stop saving slots and the walk stops at the next slot.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
        self.early.lock().clear();
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }

    fn bit(db: usize, slot: u16) -> (usize, u64) {
        (db * WORDS + slot as usize / 64, 1 << (slot % 64))
    }

    /// Whether (db, slot) still waits to be encoded.
    pub fn is_unsaved(&self, db: usize, slot: u16) -> bool {
        let (word, mask) = Cut::bit(db, slot);
        self.unsaved[word].load(Ordering::Acquire) & mask != 0
    }

    fn encode_table(&self, table: Option<&SlotTable>) -> Chunk {
        let mut chunk = Chunk::default();
        for (key, entry) in table.into_iter().flat_map(SlotTable::iter) {
            if !entry.is_expired(self.now_ms) {
                (self.encode)(&mut chunk.bytes, key, entry);
                chunk.keys += 1;
            }
        }
        chunk
    }

    /// The slot's table index inside its shard.
    fn local(&self, slot: u16) -> usize {
        slot as usize / self.shard_count
    }

    /// Called, holding the slot's shard, before anything in (db, slot) changes: encodes the
    /// slot as it was at the cut if nobody has yet.
    pub fn save_before_write(&self, sdb: &ShardDb, db: usize, slot: u16) {
        if !self.is_unsaved(db, slot) || self.is_abandoned() {
            return;
        }
        let chunk = self.encode_table(sdb.slots.get(self.local(slot)));
        self.early_bytes
            .fetch_add(chunk.bytes.len(), Ordering::Relaxed);
        self.early.lock().insert((db, slot), chunk);
        let (word, mask) = Cut::bit(db, slot);
        self.unsaved[word].fetch_and(!mask, Ordering::Release);
    }

    /// `save_before_write` for every slot of one database that the shard `shard` owns.
    pub fn save_shard_db(&self, sdb: &ShardDb, shard: usize, db: usize) {
        for slot in (shard..SLOT_COUNT).step_by(self.shard_count) {
            self.save_before_write(sdb, db, slot as u16);
        }
    }

    /// The walker's take of (db, slot), holding its shard: encoded now, or, if a command got
    /// there first, the chunk it left.
    fn take_locked(&self, sdb: &ShardDb, db: usize, slot: u16) -> Chunk {
        if self.is_unsaved(db, slot) {
            let chunk = self.encode_table(sdb.slots.get(self.local(slot)));
            let (word, mask) = Cut::bit(db, slot);
            self.unsaved[word].fetch_and(!mask, Ordering::Release);
            return chunk;
        }
        self.take_early(db, slot)
    }

    fn take_early(&self, db: usize, slot: u16) -> Chunk {
        self.early.lock().remove(&(db, slot)).unwrap_or_default()
    }

    /// Visits the snapshot in file order, locking one shard at a time and only while a slot is
    /// encoded. `emit` answers whether to go on; false abandons the walk (and returns false).
    pub fn walk(&self, ks: &super::Keyspace, emit: &mut dyn FnMut(Piece) -> bool) -> bool {
        for (db, &(keys, expires)) in self.db_sizes.iter().enumerate() {
            if keys == 0 {
                continue;
            }
            if !emit(Piece::Db { db, keys, expires }) {
                return false;
            }
            for word in 0..WORDS {
                let mut bits = self.nonempty[db * WORDS + word];
                while bits != 0 {
                    let slot = (word * 64 + bits.trailing_zeros() as usize) as u16;
                    bits &= bits - 1;
                    if self.is_abandoned() {
                        return false;
                    }
                    let chunk = if self.is_unsaved(db, slot) {
                        let shard = ks.lock_shard(slot as usize % self.shard_count);
                        self.take_locked(&shard.dbs[db], db, slot)
                    } else {
                        self.take_early(db, slot)
                    };
                    self.keys_processed.fetch_add(chunk.keys, Ordering::Relaxed);
                    if !emit(Piece::Keys(chunk)) {
                        return false;
                    }
                }
            }
        }
        true
    }
}

/// Where commands find the snapshot in progress, if any. Checking costs one atomic load per
/// lock when none runs.
#[derive(Default)]
pub struct SnapshotGate {
    active: AtomicBool,
    cut: Mutex<Option<Arc<Cut>>>,
}

impl SnapshotGate {
    /// The cut in progress. Called right after taking shard locks: a cut installed before
    /// they were taken is seen (the install happened under every shard lock).
    pub fn current(&self) -> Option<Arc<Cut>> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        self.cut.lock().clone()
    }

    /// Publishes a cut; the caller holds every shard lock.
    pub fn install(&self, cut: Arc<Cut>) {
        *self.cut.lock() = Some(cut);
        self.active.store(true, Ordering::Relaxed);
    }

    /// Ends the snapshot (done or abandoned): commands stop saving slots for it.
    pub fn finish(&self) {
        self.active.store(false, Ordering::Relaxed);
        *self.cut.lock() = None;
    }

    pub fn in_progress(&self) -> Option<Arc<Cut>> {
        self.cut.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Keyspace, StrValue, Value};

    fn encode(out: &mut Vec<u8>, key: &[u8], entry: &Entry) {
        out.extend_from_slice(key);
        if let Value::Str(s) = &entry.value {
            out.push(b'=');
            out.extend_from_slice(&s.to_bytes());
        }
        out.push(b';');
    }

    fn set(ks: &Keyspace, db: usize, key: &str, value: &str) {
        let mut l = ks.lock_all();
        let e = Entry::new(Value::Str(StrValue::from_bytes(value.as_bytes())), 0);
        l.insert(db, key.as_bytes(), e);
    }

    fn collect(ks: &Keyspace, cut: &Cut) -> Vec<Piece> {
        let mut out = Vec::new();
        assert!(cut.walk(ks, &mut |p| {
            out.push(p);
            true
        }));
        out
    }

    fn chunk(text: &str, keys: usize) -> Piece {
        Piece::Keys(Chunk {
            bytes: text.as_bytes().to_vec(),
            keys,
        })
    }

    #[test]
    fn walk_visits_databases_then_slots_in_order() {
        let ks = Keyspace::new(3, 4);
        // key_slot: "b" 3300, "a" 15495, "foo" 12182.
        set(&ks, 2, "a", "1");
        set(&ks, 0, "b", "2");
        set(&ks, 0, "a", "3");
        set(&ks, 0, "foo", "4");
        let cut = ks.begin_snapshot(0, Arc::new(encode));
        assert_eq!(cut.keys_total(), 4);
        assert_eq!(
            collect(&ks, &cut),
            vec![
                Piece::Db {
                    db: 0,
                    keys: 3,
                    expires: 0
                },
                chunk("b=2;", 1),
                chunk("foo=4;", 1),
                chunk("a=3;", 1),
                Piece::Db {
                    db: 2,
                    keys: 1,
                    expires: 0
                },
                chunk("a=1;", 1),
            ]
        );
        ks.snapshot().finish();
    }

    #[test]
    fn a_write_ahead_of_the_walker_saves_the_slot_as_it_was() {
        let ks = Keyspace::new(2, 1);
        set(&ks, 0, "a", "old");
        set(&ks, 0, "b", "old");
        let cut = ks.begin_snapshot(0, Arc::new(encode));
        set(&ks, 0, "a", "new");
        set(&ks, 0, "c", "new"); // slot 7365: empty at the cut
        {
            let mut l = ks.lock_all();
            l.remove(0, b"b");
        }
        assert!(cut.early_bytes() > 0);
        let pieces = collect(&ks, &cut);
        assert_eq!(pieces[1..], [chunk("b=old;", 1), chunk("a=old;", 1)]);
        assert_eq!(cut.keys_processed.load(Ordering::Relaxed), 2);
        ks.snapshot().finish();
        set(&ks, 0, "a", "newer");
        assert!(ks.snapshot().current().is_none());
    }

    #[test]
    fn flush_and_swap_save_everything_first() {
        let ks = Keyspace::new(2, 2);
        set(&ks, 0, "a", "0");
        set(&ks, 1, "b", "1");
        let cut = ks.begin_snapshot(0, Arc::new(encode));
        {
            let mut l = ks.lock_all();
            l.swap_db(0, 1);
            l.flush_db(0);
        }
        let pieces = collect(&ks, &cut);
        assert_eq!(pieces[1], chunk("a=0;", 1));
        assert_eq!(pieces[3], chunk("b=1;", 1));
        ks.snapshot().finish();
    }

    #[test]
    fn an_abandoned_cut_saves_nothing_more_and_stops_the_walk() {
        let ks = Keyspace::new(1, 1);
        set(&ks, 0, "a", "1");
        set(&ks, 0, "b", "2");
        let cut = ks.begin_snapshot(0, Arc::new(encode));
        cut.abandon();
        ks.lock_all().flush_db(0);
        assert_eq!(cut.early_bytes(), 0);
        let mut pieces = 0;
        assert!(!cut.walk(&ks, &mut |_| {
            pieces += 1;
            true
        }));
        assert_eq!(pieces, 1, "only the database header");
        ks.snapshot().finish();
    }

    #[test]
    fn keys_expired_at_the_cut_are_left_out() {
        let ks = Keyspace::new(1, 1);
        set(&ks, 0, "a", "1");
        set(&ks, 0, "b", "2");
        ks.lock_all().set_expire(0, b"a", 50);
        let cut = ks.begin_snapshot(100, Arc::new(encode));
        let pieces = collect(&ks, &cut);
        assert_eq!(
            pieces[0],
            Piece::Db {
                db: 0,
                keys: 2,
                expires: 1
            }
        );
        assert_eq!(
            pieces[1..],
            [chunk("b=2;", 1), Piece::Keys(Chunk::default())]
        );
        ks.snapshot().finish();
    }
}

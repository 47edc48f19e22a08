//! The active expire cycle: each tick visits slot tables from a cursor and removes keys whose
//! time has passed, within a work budget so no shard lock is held for long (Redis's
//! `activeExpireCycle`, reshaped for per-slot tables).

use super::db::Shard;

/// Progress of the active expire cycle over one shard.
#[derive(Default, Debug, Clone, Copy)]
pub struct ExpireCursor {
    pub db: usize,
    pub local_slot: usize,
}

/// Outcome of one pass over a shard.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpireStats {
    pub sampled: usize,
    pub expired: usize,
}

/// Visits slot tables holding keys with a TTL, starting at `cursor`, until `budget` entries
/// have been looked at or every table was visited once; deletes the expired ones. Returns the
/// names of the deleted keys per database (for propagation and notifications). Tables for
/// which `frozen(db, local_slot)` holds are left alone: a snapshot in progress still has to
/// save them as they were.
pub fn expire_pass(
    shard: &mut Shard,
    cursor: &mut ExpireCursor,
    now_ms: u64,
    budget: usize,
    deleted: &mut Vec<(usize, Box<[u8]>)>,
    frozen: &dyn Fn(usize, usize) -> bool,
) -> ExpireStats {
    let mut stats = ExpireStats::default();
    let ndbs = shard.dbs.len();
    if ndbs == 0 {
        return stats;
    }
    let per_db = shard.dbs[0].slots_owned;
    let total = ndbs * per_db;
    let mut visited = 0;
    while visited < total && stats.sampled < budget {
        if cursor.db >= ndbs {
            cursor.db = 0;
        }
        let (db_idx, local) = (cursor.db, cursor.local_slot.min(per_db));
        if shard.dbs[db_idx].expires == 0 {
            // Nothing to expire here: the rest of this database counts as visited.
            visited += per_db - local;
            cursor.local_slot = 0;
            cursor.db = (db_idx + 1) % ndbs;
            continue;
        }
        visited += 1;
        cursor.local_slot += 1;
        if cursor.local_slot >= per_db {
            cursor.local_slot = 0;
            cursor.db = (cursor.db + 1) % ndbs;
        }
        let db = &mut shard.dbs[db_idx];
        let Some(table) = db.slots.get_mut(local) else {
            continue;
        };
        if table.expires == 0 || frozen(db_idx, local) {
            continue;
        }
        stats.sampled += table.len();
        let before = table.len();
        let mut removed_expiring = 0;
        table.retain(|k, e| {
            if e.is_expired(now_ms) {
                deleted.push((db_idx, k.into()));
                removed_expiring += 1;
                false
            } else {
                true
            }
        });
        let removed = before - table.len();
        table.expires -= removed_expiring;
        db.keys -= removed;
        db.expires -= removed_expiring;
        stats.expired += removed;
        if table.is_empty() {
            db.slots.remove(local);
        }
    }
    stats
}

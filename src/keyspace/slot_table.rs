//! One hash slot's keys in one database. Entries live in boxed 64-byte nodes (key inline when
//! short, value, expiry, access time) indexed by a SwissTable of pointers, so a small key with
//! a short value costs one allocation plus about nine bytes of table. A slot table exists only
//! while it holds keys.

use super::small_bytes::SmallBytes;
use super::value::Value;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::OnceLock;

#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute unix time in milliseconds at which the key expires; 0 = no expiry.
    pub expire_at_ms: u64,
    /// Last access, in seconds of the LRU clock (OBJECT IDLETIME); under an LFU policy, the
    /// time of the last counter update.
    pub lru_secs: u32,
    /// The LFU access counter (OBJECT FREQ), kept only while an LFU policy is selected.
    pub lfu: u8,
}

impl Entry {
    pub fn new(value: Value, lru_secs: u32) -> Self {
        Entry {
            value,
            expire_at_ms: 0,
            lru_secs,
            lfu: super::evict::LFU_INIT_VAL,
        }
    }
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at_ms != 0 && self.expire_at_ms <= now_ms
    }
}

#[derive(Debug)]
struct Node {
    key: SmallBytes,
    entry: Entry,
}

/// One process-wide seeded hasher: slot tables are many and small, so they share it.
fn hasher() -> &'static hashbrown::DefaultHashBuilder {
    static H: OnceLock<hashbrown::DefaultHashBuilder> = OnceLock::new();
    H.get_or_init(Default::default)
}

fn hash(key: &[u8]) -> u64 {
    hasher().hash_one(key)
}

#[derive(Default, Debug)]
pub struct SlotTable {
    nodes: HashTable<Box<Node>>,
    /// Number of entries with `expire_at_ms != 0`.
    pub expires: usize,
}

impl SlotTable {
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.nodes
            .find(hash(key), |n| n.key.as_bytes() == key)
            .map(|n| &n.entry)
    }

    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.nodes
            .find_mut(hash(key), |n| n.key.as_bytes() == key)
            .map(|n| &mut n.entry)
    }

    /// Inserts or replaces; returns the previous entry.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let h = hash(key);
        if let Some(n) = self.nodes.find_mut(h, |n| n.key.as_bytes() == key) {
            return Some(std::mem::replace(&mut n.entry, entry));
        }
        let node = Box::new(Node {
            key: SmallBytes::new(key),
            entry,
        });
        self.nodes
            .insert_unique(h, node, |n| hash(n.key.as_bytes()));
        None
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        match self
            .nodes
            .find_entry(hash(key), |n| n.key.as_bytes() == key)
        {
            Ok(occupied) => Some(occupied.remove().0.entry),
            Err(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.nodes.iter().map(|n| (n.key.as_bytes(), &n.entry))
    }

    /// Keeps the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &mut Entry) -> bool) {
        self.nodes.retain(|n| {
            let Node { key, entry } = &mut **n;
            keep(key.as_bytes(), entry)
        });
    }

    /// The `i`-th entry in table order (random sampling).
    pub fn nth(&self, i: usize) -> Option<(&[u8], &Entry)> {
        self.iter().nth(i)
    }

    /// Buckets of the index, from its usable capacity (7/8 of the buckets, or all but one
    /// under 8 buckets).
    pub fn buckets(&self) -> usize {
        match self.nodes.capacity() {
            0 => 0,
            c @ 1..=6 => c + 1,
            c => c / 7 * 8,
        }
    }

    /// Bytes this table's index takes (buckets and control bytes), for MEMORY figures.
    pub fn index_bytes(&self) -> usize {
        self.nodes.capacity() * (std::mem::size_of::<Box<Node>>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::value::StrValue;

    #[test]
    fn insert_get_replace_remove() {
        let mut t = SlotTable::default();
        let e = |n: i64| Entry::new(Value::Str(StrValue::from_i64(n)), 0);
        assert!(t.insert(b"a", e(1)).is_none());
        assert!(t.insert(b"a-much-longer-key-than-inline", e(2)).is_none());
        assert_eq!(t.len(), 2);
        assert!(t.insert(b"a", e(3)).is_some());
        assert_eq!(t.get(b"a").unwrap().value, Value::Str(StrValue::Int(3)));
        assert!(t.remove(b"a").is_some());
        assert!(t.get(b"a").is_none());
        assert_eq!(t.len(), 1);
        t.retain(|_, _| false);
        assert!(t.is_empty());
    }

    #[test]
    fn nodes_stay_within_one_64_byte_allocation() {
        assert!(
            std::mem::size_of::<Node>() <= 64,
            "{}",
            std::mem::size_of::<Node>()
        );
    }
}

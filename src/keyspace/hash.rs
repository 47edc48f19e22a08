//! Hash values with Redis 7.0's two encodings, because OBJECT ENCODING reports them and tests
//! assert them: `listpack` (field/value pairs in insertion order, while the hash has at most
//! `hash-max-listpack-entries` pairs and no field or value longer than
//! `hash-max-listpack-value` bytes) and `hashtable`. The conversion is one-way, as in
//! `t_hash.c`. The hash table is chained with power-of-two bucket counts so HSCAN can use
//! Redis's reverse-binary cursor, which stays valid across resizes. Randomness (HRANDFIELD)
//! is passed in by the caller: `rand(n)` returns a number below `n`.

use super::packed::Packed;
use hashbrown::DefaultHashBuilder;
use std::hash::BuildHasher;

/// Redis's DICT_HT_INITIAL_SIZE.
const TABLE_INITIAL_BUCKETS: usize = 4;
/// A table shrinks once fewer than this percent of its buckets are used (HASHTABLE_MIN_FILL).
const TABLE_MIN_FILL_PERCENT: usize = 10;

/// The two configuration limits that keep a hash in the `listpack` encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`: most field/value pairs.
    pub max_entries: usize,
    /// `hash-max-listpack-value`: longest field or value, in bytes.
    pub max_value: usize,
}

/// A map of field to value: 16 bytes, stored in the key's entry without a box of its own.
#[derive(Clone)]
pub enum Hash {
    /// Field, value, field, value, ... in insertion order, fields unique.
    Listpack(Packed),
    Hashtable(Box<Table>),
}

impl Hash {
    /// The empty `listpack` a write command creates for a missing key.
    pub fn new() -> Hash {
        Hash::Listpack(Packed::default())
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Hash::Listpack(_) => "listpack",
            Hash::Hashtable(_) => "hashtable",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self, Hash::Listpack(_))
    }

    /// Bytes this hash holds on the heap (its packed pairs, or the table).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Hash::Listpack(p) => p.bytes(),
            Hash::Hashtable(t) => std::mem::size_of::<Table>() + t.heap_bytes(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Hash::Listpack(p) => p.count() / 2,
            Hash::Hashtable(t) => t.len,
        }
    }

    /// The chained table's shape, in the `hashtable` encoding (DEBUG HTSTATS-KEY).
    pub fn table_stats(&self) -> Option<super::value::TableStats> {
        match self {
            Hash::Listpack(_) => None,
            Hash::Hashtable(t) => Some(super::value::TableStats::from_chains(
                t.buckets.len(),
                (0..t.buckets.len()).map(|b| t.chain(b).count()),
            )),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Hash::Listpack(p) => p.is_empty(),
            Hash::Hashtable(t) => t.len == 0,
        }
    }

    /// The position (in pairs) and value of a field of a listpack.
    fn find<'p>(p: &'p Packed, field: &[u8]) -> Option<(usize, &'p [u8])> {
        let mut it = p.iter();
        let mut i = 0;
        while let (Some(f), Some(x)) = (it.next(), it.next()) {
            if f == field {
                return Some((i, x));
            }
            i += 1;
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Listpack(p) => Self::find(p, field).map(|(_, x)| x),
            Hash::Hashtable(t) => t.get(field),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Redis's `hashTypeTryConversion`: a `listpack` becomes a `hashtable` before a write
    /// when any of the strings about to be stored is longer than the value limit.
    pub fn convert_for<'a>(&mut self, items: impl IntoIterator<Item = &'a [u8]>, limits: Limits) {
        if self.is_listpack() && items.into_iter().any(|s| s.len() > limits.max_value) {
            self.convert_to_hashtable();
        }
    }

    /// Sets a field; true if it was new (Redis's `hashTypeSet` returns the opposite). A long
    /// field or value converts first, and growing past the entry limit converts after.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        self.convert_for([field, value], limits);
        match self {
            Hash::Hashtable(t) => t.set(field, value),
            Hash::Listpack(p) => {
                if let Some((i, _)) = Self::find(p, field) {
                    p.splice(2 * i + 1, 1, [value]);
                    return false;
                }
                p.extend([field, value]);
                if self.len() > limits.max_entries {
                    self.convert_to_hashtable();
                }
                true
            }
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Listpack(p) => match Self::find(p, field) {
                Some((i, _)) => {
                    p.splice(2 * i, 2, []);
                    true
                }
                None => false,
            },
            Hash::Hashtable(t) => t.remove(field),
        }
    }

    fn convert_to_hashtable(&mut self) {
        let Hash::Listpack(p) = self else {
            return;
        };
        let mut t = Table::with_capacity(p.count() / 2);
        let mut it = p.iter();
        while let (Some(f), Some(x)) = (it.next(), it.next()) {
            t.set(f, x);
        }
        *self = Hash::Hashtable(Box::new(t));
    }

    /// Every pair: insertion order for `listpack`, bucket order for `hashtable`.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let (packed, table) = match self {
            Hash::Listpack(p) => (Some(Pairs(p.iter())), None),
            Hash::Hashtable(t) => (None, Some(t.iter())),
        };
        packed
            .into_iter()
            .flatten()
            .chain(table.into_iter().flatten())
    }

    /// A uniformly chosen pair; `None` only for an empty hash.
    pub fn random(&self, rand: &mut impl FnMut(usize) -> usize) -> Option<(&[u8], &[u8])> {
        if self.is_empty() {
            return None;
        }
        match self {
            Hash::Listpack(p) => {
                let n = rand(p.count() / 2);
                Pairs(p.iter()).nth(n)
            }
            Hash::Hashtable(t) => Some(t.random(rand)),
        }
    }

    /// One step of HSCAN over a `hashtable`: visits the bucket `cursor` names and returns the
    /// next cursor (0 when done). A `listpack` is visited whole and returns 0.
    pub fn scan_step(&self, cursor: u64, visit: &mut impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Listpack(_) => {
                for (f, x) in self.iter() {
                    visit(f, x);
                }
                0
            }
            Hash::Hashtable(t) => t.scan(cursor, visit),
        }
    }
}

/// Pairs of consecutive elements.
struct Pairs<'a>(super::packed::Iter<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        Some((self.0.next()?, self.0.next()?))
    }
}

impl Default for Hash {
    fn default() -> Hash {
        Hash::new()
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Hash) -> bool {
        self.len() == other.len() && self.iter().all(|(f, x)| other.get(f) == Some(x))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encoding_name())?;
        f.debug_map()
            .entries(self.iter().map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            }))
            .finish()
    }
}

/// A chained hash table of field/value pairs (Redis's `dict` with a single table: it
/// resizes at once instead of incrementally, which the reverse-binary HSCAN cursor
/// tolerates the same way).
#[derive(Clone)]
pub struct Table {
    /// Empty or a power of two long.
    buckets: Vec<Option<Box<Node>>>,
    len: usize,
    /// An upper bound on the longest chain since the last resize, for fair random picks.
    max_chain: usize,
    hasher: DefaultHashBuilder,
}

#[derive(Clone)]
struct Node {
    field: Box<[u8]>,
    value: Box<[u8]>,
    next: Option<Box<Node>>,
}

impl Table {
    fn with_capacity(n: usize) -> Table {
        let mut t = Table {
            buckets: Vec::new(),
            len: 0,
            max_chain: 0,
            hasher: DefaultHashBuilder::default(),
        };
        t.resize(n.max(TABLE_INITIAL_BUCKETS).next_power_of_two());
        t
    }

    fn heap_bytes(&self) -> usize {
        let nodes: usize = self
            .iter()
            .map(|(f, x)| f.len() + x.len() + std::mem::size_of::<Node>())
            .sum();
        self.buckets.capacity() * std::mem::size_of::<Option<Box<Node>>>() + nodes
    }

    fn bucket_of(&self, field: &[u8]) -> usize {
        (self.hasher.hash_one(field) as usize) & (self.buckets.len() - 1)
    }

    fn chain(&self, bucket: usize) -> impl Iterator<Item = &Node> {
        std::iter::successors(self.buckets[bucket].as_deref(), |n| n.next.as_deref())
    }

    fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.chain(self.bucket_of(field))
            .find(|n| &*n.field == field)
            .map(|n| &*n.value)
    }

    /// Inserts or overwrites; true if the field was new.
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let b = self.bucket_of(field);
        let mut link = self.buckets[b].as_deref_mut();
        while let Some(node) = link {
            if &*node.field == field {
                node.value = value.into();
                return false;
            }
            link = node.next.as_deref_mut();
        }
        // Grow once the table is full, to the next power of two above the new count.
        if self.len >= self.buckets.len() {
            self.resize((self.len + 1).next_power_of_two());
        }
        let b = self.bucket_of(field);
        let next = self.buckets[b].take();
        self.buckets[b] = Some(Box::new(Node {
            field: field.into(),
            value: value.into(),
            next,
        }));
        self.len += 1;
        self.max_chain = self.max_chain.max(self.chain(b).count());
        true
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let b = self.bucket_of(field);
        let mut link = &mut self.buckets[b];
        loop {
            match link {
                None => return false,
                Some(node) if &*node.field == field => {
                    *link = node.next.take();
                    break;
                }
                Some(node) => link = &mut node.next,
            }
        }
        self.len -= 1;
        let size = self.buckets.len();
        if size > TABLE_INITIAL_BUCKETS && self.len * 100 / size < TABLE_MIN_FILL_PERCENT {
            self.resize(self.len.max(TABLE_INITIAL_BUCKETS).next_power_of_two());
        }
        true
    }

    /// Rehashes every node into `size` buckets, reusing the nodes.
    fn resize(&mut self, size: usize) {
        debug_assert!(size.is_power_of_two());
        let old = std::mem::replace(&mut self.buckets, (0..size).map(|_| None).collect());
        for mut head in old {
            while let Some(mut node) = head {
                head = node.next.take();
                let b = self.bucket_of(&node.field);
                node.next = self.buckets[b].take();
                self.buckets[b] = Some(node);
            }
        }
        self.max_chain = (0..size).map(|b| self.chain(b).count()).max().unwrap_or(0);
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.buckets.len()).flat_map(move |b| self.chain(b).map(|n| (&*n.field, &*n.value)))
    }

    /// Rejection sampling over (bucket, chain position) pairs: every field is equally
    /// likely, unlike picking a random non-empty bucket first.
    fn random(&self, rand: &mut impl FnMut(usize) -> usize) -> (&[u8], &[u8]) {
        debug_assert!(self.len > 0);
        loop {
            let b = rand(self.buckets.len());
            let k = rand(self.max_chain.max(1));
            if let Some(n) = self.chain(b).nth(k) {
                return (&n.field, &n.value);
            }
        }
    }

    /// Redis's `dictScan` for one table: visit the bucket, then increment the cursor's
    /// reversed bits so buckets split or merged by a resize are neither lost nor revisited
    /// more than necessary.
    fn scan(&self, cursor: u64, visit: &mut impl FnMut(&[u8], &[u8])) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        for n in self.chain((cursor & mask) as usize) {
            visit(&n.field, &n.value);
        }
        let v = (cursor | !mask).reverse_bits().wrapping_add(1);
        v.reverse_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_entries: 128,
        max_value: 64,
    };

    fn pairs(h: &Hash) -> Vec<(String, String)> {
        h.iter()
            .map(|(f, v)| {
                (
                    String::from_utf8_lossy(f).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn sorted_pairs(h: &Hash) -> Vec<(String, String)> {
        let mut v = pairs(h);
        v.sort();
        v
    }

    #[test]
    fn listpack_keeps_insertion_order_and_overwrites_in_place() {
        let mut h = Hash::new();
        assert!(h.set(b"b", b"1", LIMITS));
        assert!(h.set(b"a", b"2", LIMITS));
        assert!(!h.set(b"b", b"3", LIMITS));
        assert_eq!(h.encoding_name(), "listpack");
        assert_eq!(
            pairs(&h),
            vec![("b".into(), "3".into()), ("a".into(), "2".into())]
        );
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
        assert!(h.remove(b"b") && !h.remove(b"b"));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn long_strings_convert_one_way() {
        let mut h = Hash::new();
        h.set(b"f", b"v", LIMITS);
        let long = vec![b'x'; 65];
        h.set(b"g", &long, LIMITS);
        assert_eq!(h.encoding_name(), "hashtable");
        h.remove(b"g");
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(sorted_pairs(&h), vec![("f".into(), "v".into())]);
        let mut k = Hash::new();
        k.set(&long[..64], b"v", LIMITS);
        assert!(k.is_listpack());
        k.convert_for([&long[..]], LIMITS);
        assert!(!k.is_listpack());
    }

    #[test]
    fn entry_limit_converts_past_the_limit() {
        let limits = Limits {
            max_entries: 3,
            max_value: 64,
        };
        let mut h = Hash::new();
        for i in 0..3 {
            h.set(format!("f{i}").as_bytes(), b"v", limits);
        }
        assert!(h.is_listpack());
        h.set(b"f3", b"v", limits);
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn table_grows_shrinks_and_scans_everything() {
        let limits = Limits {
            max_entries: 0,
            max_value: 64,
        };
        let mut h = Hash::new();
        for i in 0..1000 {
            assert!(h.set(
                format!("f{i}").as_bytes(),
                format!("v{i}").as_bytes(),
                limits
            ));
        }
        assert!(!h.set(b"f1", b"new", limits));
        assert_eq!(h.get(b"f1"), Some(&b"new"[..]));
        for i in 10..1000 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        let Hash::Hashtable(t) = &h else { panic!() };
        assert_eq!(t.buckets.len(), 16);
        let (mut cursor, mut seen) = (0u64, Vec::new());
        loop {
            cursor = h.scan_step(cursor, &mut |f, _| seen.push(f.to_vec()));
            if cursor == 0 {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn random_picks_every_field() {
        let mut h = Hash::new();
        for i in 0..10 {
            h.set(format!("f{i}").as_bytes(), b"v", LIMITS);
        }
        let mut state = 7u64;
        let mut rand = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            seen.insert(h.random(&mut rand).unwrap().0.to_vec());
        }
        assert_eq!(seen.len(), 10);
        assert!(Hash::new().random(&mut rand).is_none());
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};

        #[derive(Clone, Debug)]
        enum Op {
            Set(Vec<u8>, Vec<u8>),
            SetIfAbsent(Vec<u8>, Vec<u8>),
            Remove(Vec<u8>),
            Read(Vec<u8>),
            ConvertFor(Vec<Vec<u8>>),
            Random(u64),
            Scan,
            /// A full scan that, after `at` steps, adds `add`, removes `remove` and then the
            /// lowest `drop_percent` percent of what is left (enough to shrink the table).
            ScanWhileChanging {
                at: usize,
                add: Vec<Vec<u8>>,
                remove: Vec<Vec<u8>>,
                drop_percent: usize,
            },
        }

        /// Short strings from a small alphabet (so fields repeat and get rewritten), and now
        /// and then longer ones that pass the small value limits the test picks.
        fn bytes() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                16 => prop::collection::vec(prop::sample::select(b"abc".to_vec()), 0..3),
                1 => prop::collection::vec(prop::sample::select(b"xyz0".to_vec()), 3..20),
            ]
        }

        /// Many distinct fields, so the table grows and shrinks through several sizes.
        fn many() -> impl Strategy<Value = Vec<Vec<u8>>> {
            (0u32..1000, 0usize..80).prop_map(|(base, n)| {
                (0..n)
                    .map(|i| format!("n{}", base as usize + i).into_bytes())
                    .collect()
            })
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                8 => (bytes(), bytes()).prop_map(|(f, v)| Op::Set(f, v)),
                2 => (bytes(), bytes()).prop_map(|(f, v)| Op::SetIfAbsent(f, v)),
                4 => bytes().prop_map(Op::Remove),
                3 => bytes().prop_map(Op::Read),
                1 => prop::collection::vec(bytes(), 0..3).prop_map(Op::ConvertFor),
                2 => any::<u64>().prop_map(Op::Random),
                1 => Just(Op::Scan),
                1 => (
                    0usize..12,
                    many(),
                    prop::collection::vec(bytes(), 0..6),
                    prop_oneof![Just(0usize), 0usize..=100],
                )
                    .prop_map(|(at, add, remove, drop_percent)| Op::ScanWhileChanging {
                        at,
                        add,
                        remove,
                        drop_percent,
                    }),
            ]
        }

        fn lcg(seed: u64) -> impl FnMut(usize) -> usize {
            let mut state = seed;
            move |n| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as usize) % n
            }
        }

        /// The model: pairs in insertion order (a rewrite keeps the field's place), and the
        /// encoding the limits call for.
        struct Model {
            pairs: Vec<(Vec<u8>, Vec<u8>)>,
            listpack: bool,
            limits: Limits,
        }

        impl Model {
            fn get(&self, f: &[u8]) -> Option<&[u8]> {
                self.pairs.iter().find(|(k, _)| k == f).map(|(_, v)| &v[..])
            }

            fn set(&mut self, f: &[u8], v: &[u8]) -> bool {
                if f.len() > self.limits.max_value || v.len() > self.limits.max_value {
                    self.listpack = false;
                }
                if let Some(p) = self.pairs.iter_mut().find(|(k, _)| k == f) {
                    p.1 = v.to_vec();
                    return false;
                }
                self.pairs.push((f.to_vec(), v.to_vec()));
                if self.pairs.len() > self.limits.max_entries {
                    self.listpack = false;
                }
                true
            }

            fn remove(&mut self, f: &[u8]) -> bool {
                let before = self.pairs.len();
                self.pairs.retain(|(k, _)| k != f);
                before != self.pairs.len()
            }

            fn fields(&self) -> BTreeSet<Vec<u8>> {
                self.pairs.iter().map(|(k, _)| k.clone()).collect()
            }
        }

        fn full_scan(h: &Hash) -> Vec<Vec<u8>> {
            let (mut cursor, mut seen) = (0u64, Vec::new());
            loop {
                cursor = h.scan_step(cursor, &mut |f, _| seen.push(f.to_vec()));
                if cursor == 0 {
                    return seen;
                }
            }
        }

        fn apply(h: &mut Hash, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
            let limits = m.limits;
            match op {
                Op::Set(f, v) => prop_assert_eq!(h.set(f, v, limits), m.set(f, v)),
                Op::SetIfAbsent(f, v) => {
                    // HSETNX's sequence of calls.
                    let absent = m.get(f).is_none();
                    if !h.contains(f) {
                        h.convert_for([&f[..], &v[..]], limits);
                        prop_assert!(h.set(f, v, limits));
                    }
                    if absent {
                        m.set(f, v);
                    }
                }
                Op::Remove(f) => prop_assert_eq!(h.remove(f), m.remove(f)),
                Op::Read(f) => {
                    prop_assert_eq!(h.get(f), m.get(f));
                    prop_assert_eq!(h.contains(f), m.get(f).is_some());
                    prop_assert_eq!(
                        h.get(f).map_or(0, |v| v.len()),
                        m.get(f).map_or(0, |v| v.len())
                    );
                }
                Op::ConvertFor(items) => {
                    h.convert_for(items.iter().map(|i| &i[..]), limits);
                    if items.iter().any(|i| i.len() > limits.max_value) {
                        m.listpack = false;
                    }
                }
                Op::Random(seed) => {
                    let got = h
                        .random(&mut lcg(*seed))
                        .map(|(f, v)| (f.to_vec(), v.to_vec()));
                    match got {
                        None => prop_assert!(m.pairs.is_empty()),
                        Some((f, v)) => prop_assert_eq!(m.get(&f), Some(&v[..])),
                    }
                }
                Op::Scan => {
                    let mut seen = full_scan(h);
                    seen.sort();
                    // Nothing changes during this scan, so nothing is visited twice.
                    prop_assert_eq!(seen, m.fields().into_iter().collect::<Vec<_>>());
                }
                Op::ScanWhileChanging {
                    at,
                    add,
                    remove,
                    drop_percent,
                } => {
                    let before = m.fields();
                    let (mut cursor, mut steps, mut changed) = (0u64, 0, false);
                    let mut seen = BTreeSet::new();
                    let change = |h: &mut Hash, m: &mut Model| {
                        for f in add {
                            h.set(f, b"v", limits);
                            m.set(f, b"v");
                        }
                        for f in remove {
                            h.remove(f);
                            m.remove(f);
                        }
                        let all: Vec<Vec<u8>> = m.fields().into_iter().collect();
                        for f in all.into_iter().take(m.pairs.len() * drop_percent / 100) {
                            h.remove(&f);
                            m.remove(&f);
                        }
                    };
                    loop {
                        cursor = h.scan_step(cursor, &mut |f, _| {
                            seen.insert(f.to_vec());
                        });
                        steps += 1;
                        if steps == *at {
                            change(h, m);
                            changed = true;
                        }
                        if cursor == 0 {
                            break;
                        }
                    }
                    if !changed {
                        change(h, m);
                    }
                    // Every field there from start to end was visited.
                    for f in before.intersection(&m.fields()) {
                        prop_assert!(seen.contains(f), "field {:?} not visited", f);
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn hash_matches_an_insertion_ordered_model(
                max_entries in prop_oneof![0usize..16, Just(128)],
                max_value in 1usize..8,
                ops in prop::collection::vec(op(), 1..200),
            ) {
                let limits = Limits { max_entries, max_value };
                let mut h = Hash::new();
                let mut m = Model { pairs: Vec::new(), listpack: true, limits };
                for op in &ops {
                    let was_listpack = h.is_listpack();
                    apply(&mut h, &mut m, op)?;
                    prop_assert!(was_listpack || !h.is_listpack(), "converted back to listpack");
                    prop_assert_eq!(h.is_listpack(), m.listpack);
                    prop_assert_eq!(h.encoding_name(), if m.listpack { "listpack" } else { "hashtable" });
                    prop_assert_eq!(h.len(), m.pairs.len());
                    prop_assert_eq!(h.is_empty(), m.pairs.is_empty());
                    let got: Vec<(Vec<u8>, Vec<u8>)> =
                        h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                    if h.is_listpack() {
                        prop_assert_eq!(&got, &m.pairs);
                    } else {
                        let got: BTreeMap<_, _> = got.into_iter().collect();
                        let want: BTreeMap<_, _> = m.pairs.iter().cloned().collect();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }
}

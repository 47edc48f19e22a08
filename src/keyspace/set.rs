//! Set values with Redis 7.0's two encodings, because OBJECT ENCODING reports them and tests
//! assert them: `intset` (sorted 64-bit integers, while every member is the canonical decimal
//! form of one and the count stays within `set-max-intset-entries`) and `hashtable`. The
//! conversion is one-way, as in `t_set.c`. The hash table is chained with power-of-two bucket
//! counts so SSCAN can use Redis's reverse-binary cursor, which stays valid across resizes.
//! Randomness (SPOP, SRANDMEMBER) is passed in by the caller: `rand(n)` returns a number
//! below `n`.

use hashbrown::DefaultHashBuilder;
use std::borrow::Cow;
use std::hash::BuildHasher;

/// Redis caps `set-max-intset-entries` at 2^30 whatever the configuration says.
const INTSET_ENTRIES_CAP: usize = 1 << 30;
/// Redis's DICT_HT_INITIAL_SIZE.
const TABLE_INITIAL_BUCKETS: usize = 4;
/// A table shrinks once fewer than this percent of its buckets are used (HASHTABLE_MIN_FILL).
const TABLE_MIN_FILL_PERCENT: usize = 10;

/// A set of byte strings.
#[derive(Clone)]
pub struct Set {
    repr: Repr,
}

#[derive(Clone)]
enum Repr {
    /// Ascending, no duplicates.
    Intset(Vec<i64>),
    Hashtable(Table),
}

/// A member's integer value if it is stored as one (Redis's `isSdsRepresentableAsLongLong`).
fn as_int(member: &[u8]) -> Option<i64> {
    crate::resp::decode::parse_i64(member)
}

impl Set {
    /// An empty `intset`, the starting point of SINTERSTORE and friends.
    pub fn new_intset() -> Set {
        Set {
            repr: Repr::Intset(Vec::new()),
        }
    }

    /// The empty set SADD creates for its first member (Redis's `setTypeCreate`).
    pub fn new_for(first: &[u8]) -> Set {
        match as_int(first) {
            Some(_) => Set::new_intset(),
            None => Set {
                repr: Repr::Hashtable(Table::with_capacity(0)),
            },
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self.repr {
            Repr::Intset(_) => "intset",
            Repr::Hashtable(_) => "hashtable",
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match &self.repr {
            Repr::Intset(v) => v.capacity() * 8,
            Repr::Hashtable(t) => t.heap_bytes(),
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Intset(v) => v.len(),
            Repr::Hashtable(t) => t.len,
        }
    }

    /// The chained table's shape, in the `hashtable` encoding (DEBUG HTSTATS-KEY).
    pub fn table_stats(&self) -> Option<super::value::TableStats> {
        match &self.repr {
            Repr::Intset(_) => None,
            Repr::Hashtable(t) => Some(super::value::TableStats::from_chains(
                t.buckets.len(),
                (0..t.buckets.len()).map(|b| t.chain(b).count()),
            )),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Intset(_))
    }

    /// The members of an `intset`, ascending; `None` for a hashtable.
    pub fn intset_members(&self) -> Option<&[i64]> {
        match &self.repr {
            Repr::Intset(v) => Some(v),
            Repr::Hashtable(_) => None,
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Intset(v) => as_int(member).is_some_and(|i| v.binary_search(&i).is_ok()),
            Repr::Hashtable(t) => t.contains(member),
        }
    }

    /// Adds a member; false if it was there. `max_intset_entries` is the configured
    /// `set-max-intset-entries`.
    pub fn insert(&mut self, member: &[u8], max_intset_entries: usize) -> bool {
        match (&mut self.repr, as_int(member)) {
            (Repr::Hashtable(t), _) => t.insert(member),
            (Repr::Intset(_), None) => {
                self.convert_to_hashtable();
                self.insert(member, max_intset_entries)
            }
            (Repr::Intset(v), Some(i)) => {
                let Err(pos) = v.binary_search(&i) else {
                    return false;
                };
                v.insert(pos, i);
                if v.len() > max_intset_entries.min(INTSET_ENTRIES_CAP) {
                    self.convert_to_hashtable();
                }
                true
            }
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Intset(v) => match as_int(member).map(|i| v.binary_search(&i)) {
                Some(Ok(pos)) => {
                    v.remove(pos);
                    true
                }
                _ => false,
            },
            Repr::Hashtable(t) => t.remove(member),
        }
    }

    fn convert_to_hashtable(&mut self) {
        let Repr::Intset(v) = &self.repr else {
            return;
        };
        let mut t = Table::with_capacity(v.len());
        for i in v {
            t.insert(crate::util::format_i64(*i).as_bytes());
        }
        self.repr = Repr::Hashtable(t);
    }

    /// Every member: ascending numeric order for `intset`, bucket order for `hashtable`.
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, [u8]>> + '_ {
        let (ints, table) = match &self.repr {
            Repr::Intset(v) => (Some(v.iter()), None),
            Repr::Hashtable(t) => (None, Some(t.iter())),
        };
        let ints = ints
            .into_iter()
            .flatten()
            .map(|i| Cow::Owned(crate::util::format_i64(*i).into_bytes()));
        ints.chain(table.into_iter().flatten().map(Cow::Borrowed))
    }

    /// A uniformly chosen member; `None` only for an empty set.
    pub fn random(&self, rand: &mut impl FnMut(usize) -> usize) -> Option<Cow<'_, [u8]>> {
        if self.is_empty() {
            return None;
        }
        Some(match &self.repr {
            Repr::Intset(v) => Cow::Owned(crate::util::format_i64(v[rand(v.len())]).into_bytes()),
            Repr::Hashtable(t) => Cow::Borrowed(t.random(rand)),
        })
    }

    /// Removes and returns a uniformly chosen member.
    pub fn pop_random(&mut self, rand: &mut impl FnMut(usize) -> usize) -> Option<Vec<u8>> {
        let member = self.random(rand)?.into_owned();
        self.remove(&member);
        Some(member)
    }

    /// One step of SSCAN over a `hashtable`: visits the bucket `cursor` names and returns the
    /// next cursor (0 when done). An `intset` is visited whole and returns 0.
    pub fn scan_step(&self, cursor: u64, visit: &mut impl FnMut(Cow<'_, [u8]>)) -> u64 {
        match &self.repr {
            Repr::Intset(_) => {
                self.iter().for_each(visit);
                0
            }
            Repr::Hashtable(t) => t.scan(cursor, &mut |m| visit(Cow::Borrowed(m))),
        }
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(&m))
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encoding_name())?;
        f.debug_set()
            .entries(
                self.iter()
                    .map(|m| String::from_utf8_lossy(&m).into_owned()),
            )
            .finish()
    }
}

impl Default for Set {
    fn default() -> Set {
        Set::new_intset()
    }
}

/// A chained hash table of members (Redis's `dict` with a single table: it resizes at once
/// instead of incrementally, which the reverse-binary SSCAN cursor tolerates the same way).
#[derive(Clone)]
struct Table {
    /// Empty or a power of two long.
    buckets: Vec<Option<Box<Node>>>,
    len: usize,
    /// An upper bound on the longest chain since the last resize, for fair random picks.
    max_chain: usize,
    hasher: DefaultHashBuilder,
}

#[derive(Clone)]
struct Node {
    member: Box<[u8]>,
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
            .map(|m| m.len() + std::mem::size_of::<Node>())
            .sum();
        self.buckets.capacity() * std::mem::size_of::<Option<Box<Node>>>() + nodes
    }

    fn bucket_of(&self, member: &[u8]) -> usize {
        (self.hasher.hash_one(member) as usize) & (self.buckets.len() - 1)
    }

    fn chain(&self, bucket: usize) -> impl Iterator<Item = &Node> {
        std::iter::successors(self.buckets[bucket].as_deref(), |n| n.next.as_deref())
    }

    fn contains(&self, member: &[u8]) -> bool {
        self.chain(self.bucket_of(member))
            .any(|n| &*n.member == member)
    }

    fn insert(&mut self, member: &[u8]) -> bool {
        if self.contains(member) {
            return false;
        }
        // Grow once the table is full, to the next power of two above the new count.
        if self.len >= self.buckets.len() {
            self.resize((self.len + 1).next_power_of_two());
        }
        let b = self.bucket_of(member);
        let next = self.buckets[b].take();
        self.buckets[b] = Some(Box::new(Node {
            member: member.into(),
            next,
        }));
        self.len += 1;
        self.max_chain = self.max_chain.max(self.chain(b).count());
        true
    }

    fn remove(&mut self, member: &[u8]) -> bool {
        let b = self.bucket_of(member);
        let mut link = &mut self.buckets[b];
        loop {
            match link {
                None => return false,
                Some(node) if &*node.member == member => {
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
                let b = self.bucket_of(&node.member);
                node.next = self.buckets[b].take();
                self.buckets[b] = Some(node);
            }
        }
        self.max_chain = (0..size).map(|b| self.chain(b).count()).max().unwrap_or(0);
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.buckets.len()).flat_map(move |b| self.chain(b).map(|n| &*n.member))
    }

    /// Rejection sampling over (bucket, chain position) pairs: every member is equally likely,
    /// unlike picking a random non-empty bucket first.
    fn random(&self, rand: &mut impl FnMut(usize) -> usize) -> &[u8] {
        debug_assert!(self.len > 0);
        loop {
            let b = rand(self.buckets.len());
            let k = rand(self.max_chain.max(1));
            if let Some(n) = self.chain(b).nth(k) {
                return &n.member;
            }
        }
    }

    /// Redis's `dictScan` for one table: visit the bucket, then increment the cursor's
    /// reversed bits so buckets split or merged by a resize are neither lost nor revisited
    /// more than necessary.
    fn scan(&self, cursor: u64, visit: &mut impl FnMut(&[u8])) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let mask = (self.buckets.len() - 1) as u64;
        for n in self.chain((cursor & mask) as usize) {
            visit(&n.member);
        }
        let v = (cursor | !mask).reverse_bits().wrapping_add(1);
        v.reverse_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &Set) -> Vec<String> {
        let mut v: Vec<String> = s
            .iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn intset_keeps_canonical_integers_in_order_and_converts_one_way() {
        let mut s = Set::new_for(b"3");
        assert!(s.insert(b"3", 512) && s.insert(b"-1", 512) && !s.insert(b"3", 512));
        assert_eq!(s.encoding_name(), "intset");
        let order: Vec<Vec<u8>> = s.iter().map(|m| m.into_owned()).collect();
        assert_eq!(order, vec![b"-1".to_vec(), b"3".to_vec()]);
        assert!(!s.contains(b"03") && !s.contains(b"+3") && s.contains(b"3"));
        s.insert(b"03", 512);
        assert_eq!(s.encoding_name(), "hashtable");
        s.remove(b"03");
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(members(&s), vec!["-1", "3"]);
    }

    #[test]
    fn intset_converts_past_the_entry_limit() {
        let mut s = Set::new_intset();
        for i in 0..3 {
            s.insert(i.to_string().as_bytes(), 3);
        }
        assert!(s.is_intset());
        s.insert(b"3", 3);
        assert_eq!(s.encoding_name(), "hashtable");
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn table_grows_and_shrinks_keeping_members() {
        let mut s = Set::new_for(b"x");
        for i in 0..1000 {
            assert!(s.insert(format!("m{i}").as_bytes(), 512));
        }
        assert_eq!(s.len(), 1000);
        for i in 10..1000 {
            assert!(s.remove(format!("m{i}").as_bytes()));
        }
        let Repr::Hashtable(t) = &s.repr else {
            panic!()
        };
        assert_eq!(t.buckets.len(), 16);
        assert_eq!(s.len(), 10);
        assert!((0..10).all(|i| s.contains(format!("m{i}").as_bytes())));
    }

    #[test]
    fn scan_cursor_survives_shrinking_between_steps() {
        let mut s = Set::new_for(b"x");
        for i in 0..2000 {
            s.insert(format!("{i}x").as_bytes(), 512);
        }
        let (mut cursor, mut steps, mut seen) = (0u64, 0, std::collections::HashSet::new());
        loop {
            cursor = s.scan_step(cursor, &mut |m| {
                seen.insert(m.into_owned());
            });
            steps += 1;
            if steps == 50 {
                for i in 100..2000 {
                    s.remove(format!("{i}x").as_bytes());
                }
            }
            if cursor == 0 {
                break;
            }
        }
        assert!((0..100).all(|i| seen.contains(format!("{i}x").as_bytes())));
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeSet;

        #[derive(Clone, Debug)]
        enum Op {
            Insert(Vec<u8>),
            InsertMany(Vec<Vec<u8>>),
            Remove(Vec<u8>),
            Contains(Vec<u8>),
            Random(u64),
            PopRandom(u64),
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

        /// Mostly canonical integers (small ones repeat; the extremes of i64 too), with
        /// strings that only look like integers and plain words mixed in.
        fn member() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                12 => (-20i64..20).prop_map(|i| i.to_string().into_bytes()),
                2 => any::<i64>().prop_map(|i| i.to_string().into_bytes()),
                1 => prop::sample::select(vec![
                    "9223372036854775807",
                    "-9223372036854775808",
                    "9223372036854775808",
                    "-9223372036854775809",
                ])
                .prop_map(|s| s.as_bytes().to_vec()),
                1 => prop::sample::select(vec!["-0", "007", "+5", "", "-", " 1", "1 ", "1.0", "x", "abc"])
                    .prop_map(|s| s.as_bytes().to_vec()),
            ]
        }

        fn many() -> impl Strategy<Value = Vec<Vec<u8>>> {
            (any::<bool>(), -1000i64..1000, 0usize..80).prop_map(|(words, base, n)| {
                (0..n)
                    .map(|i| {
                        let i = base + i as i64;
                        if words {
                            format!("w{i}")
                        } else {
                            i.to_string()
                        }
                        .into_bytes()
                    })
                    .collect()
            })
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                10 => member().prop_map(Op::Insert),
                1 => many().prop_map(Op::InsertMany),
                5 => member().prop_map(Op::Remove),
                3 => member().prop_map(Op::Contains),
                2 => any::<u64>().prop_map(Op::Random),
                3 => any::<u64>().prop_map(Op::PopRandom),
                1 => Just(Op::Scan),
                2 => (
                    0usize..12,
                    many(),
                    prop::collection::vec(member(), 0..6),
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

        /// The model: the members, and the encoding they call for.
        struct Model {
            members: BTreeSet<Vec<u8>>,
            intset: bool,
            max_intset: usize,
        }

        /// A member's value when it is an integer written the one way `i64` prints it.
        fn canonical(m: &[u8]) -> Option<i64> {
            let i: i64 = std::str::from_utf8(m).ok()?.parse().ok()?;
            (i.to_string().as_bytes() == m).then_some(i)
        }

        impl Model {
            fn insert(&mut self, m: &[u8]) -> bool {
                if canonical(m).is_none() {
                    self.intset = false;
                }
                let new = self.members.insert(m.to_vec());
                if self.members.len() > self.max_intset {
                    self.intset = false;
                }
                new
            }
        }

        fn full_scan(s: &Set) -> Vec<Vec<u8>> {
            let (mut cursor, mut seen) = (0u64, Vec::new());
            loop {
                cursor = s.scan_step(cursor, &mut |m| seen.push(m.into_owned()));
                if cursor == 0 {
                    return seen;
                }
            }
        }

        fn apply(s: &mut Set, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
            let max = m.max_intset;
            match op {
                Op::Insert(x) => prop_assert_eq!(s.insert(x, max), m.insert(x)),
                Op::InsertMany(xs) => {
                    for x in xs {
                        prop_assert_eq!(s.insert(x, max), m.insert(x));
                    }
                }
                Op::Remove(x) => prop_assert_eq!(s.remove(x), m.members.remove(x)),
                Op::Contains(x) => prop_assert_eq!(s.contains(x), m.members.contains(x)),
                Op::Random(seed) => match s.random(&mut lcg(*seed)) {
                    None => prop_assert!(m.members.is_empty()),
                    Some(x) => prop_assert!(m.members.contains(&*x)),
                },
                Op::PopRandom(seed) => match s.pop_random(&mut lcg(*seed)) {
                    None => prop_assert!(m.members.is_empty()),
                    Some(x) => prop_assert!(m.members.remove(&x)),
                },
                Op::Scan => {
                    let mut seen = full_scan(s);
                    seen.sort();
                    // Nothing changes during this scan, so nothing is visited twice.
                    prop_assert_eq!(seen, m.members.iter().cloned().collect::<Vec<_>>());
                }
                Op::ScanWhileChanging {
                    at,
                    add,
                    remove,
                    drop_percent,
                } => {
                    let before = m.members.clone();
                    let (mut cursor, mut steps, mut changed) = (0u64, 0, false);
                    let mut seen = BTreeSet::new();
                    let change = |s: &mut Set, m: &mut Model| {
                        for x in add {
                            s.insert(x, max);
                            m.insert(x);
                        }
                        for x in remove {
                            s.remove(x);
                            m.members.remove(x);
                        }
                        let all: Vec<Vec<u8>> = m.members.clone().into_iter().collect();
                        for f in all.into_iter().take(m.members.len() * drop_percent / 100) {
                            s.remove(&f);
                            m.members.remove(&f);
                        }
                    };
                    loop {
                        cursor = s.scan_step(cursor, &mut |x| {
                            seen.insert(x.into_owned());
                        });
                        steps += 1;
                        if steps == *at {
                            change(s, m);
                            changed = true;
                        }
                        if cursor == 0 {
                            break;
                        }
                    }
                    if !changed {
                        change(s, m);
                    }
                    // Every member there from start to end was visited.
                    for x in before.intersection(&m.members) {
                        prop_assert!(seen.contains(x), "member {:?} not visited", x);
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn set_matches_a_btreeset_model(
                max_intset in prop_oneof![1usize..24, Just(512)],
                first in member(),
                ops in prop::collection::vec(op(), 1..200),
            ) {
                // SADD's start: the first member picks the empty set's encoding.
                let mut s = Set::new_for(&first);
                let mut m = Model {
                    members: BTreeSet::new(),
                    intset: canonical(&first).is_some(),
                    max_intset,
                };
                for op in std::iter::once(Op::Insert(first)).chain(ops) {
                    let was_intset = s.is_intset();
                    apply(&mut s, &mut m, &op)?;
                    prop_assert!(was_intset || !s.is_intset(), "converted back to intset");
                    prop_assert_eq!(s.is_intset(), m.intset);
                    prop_assert_eq!(s.encoding_name(), if m.intset { "intset" } else { "hashtable" });
                    prop_assert_eq!(s.len(), m.members.len());
                    prop_assert_eq!(s.is_empty(), m.members.is_empty());
                    let got: Vec<Vec<u8>> = s.iter().map(|x| x.into_owned()).collect();
                    if s.is_intset() {
                        // Ascending numeric order, each member in its canonical form.
                        let mut want: Vec<i64> = m.members.iter().map(|x| canonical(x).unwrap()).collect();
                        want.sort_unstable();
                        let want: Vec<Vec<u8>> = want.iter().map(|i| i.to_string().into_bytes()).collect();
                        prop_assert_eq!(got, want);
                    } else {
                        let got: BTreeSet<Vec<u8>> = got.into_iter().collect();
                        prop_assert_eq!(&got, &m.members);
                    }
                }
            }
        }
    }
}

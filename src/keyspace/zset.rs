//! Sorted set values with Redis 7.0's two encodings, because OBJECT ENCODING reports them and
//! tests assert them: `listpack` (while the set holds at most `zset-max-listpack-entries`
//! members, none longer than `zset-max-listpack-value`) and `skiplist` (a member index plus
//! the ordered sequence). The conversion is one-way, as in `t_zset.c`.
//!
//! Members are ordered by score, then by member bytes. The ordered sequence is a list of
//! sorted blocks: lookups by score, member or rank cost a binary search over the blocks plus
//! one inside a block, and inserts move at most one block's worth of entries. Scores are
//! never NaN (callers reject it); `-0` and `0` compare equal but keep their sign.

use super::packed::Packed;
use hashbrown::HashMap;
use std::cmp::Ordering;

/// Blocks split in two once they grow past this many entries.
const BLOCK_MAX: usize = 256;

/// One member and its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub score: f64,
    pub member: Box<[u8]>,
}

impl Item {
    fn cmp_key(&self, score: f64, member: &[u8]) -> Ordering {
        cmp_score(self.score, score).then_with(|| (*self.member).cmp(member))
    }
}

fn cmp_score(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// The configured listpack limits (`zset-max-listpack-entries`, `zset-max-listpack-value`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub value: usize,
}

/// A sorted set.
#[derive(Clone, Default)]
pub struct ZSet {
    /// Non-empty sorted blocks; concatenated they are the whole set in order.
    blocks: Vec<Vec<Item>>,
    len: usize,
    /// The member index, present exactly in the `skiplist` encoding.
    index: Option<HashMap<Box<[u8]>, f64>>,
}

impl ZSet {
    /// An empty `listpack`.
    pub fn new_listpack() -> ZSet {
        ZSet::default()
    }

    /// An empty `skiplist`.
    pub fn new_skiplist() -> ZSet {
        ZSet {
            index: Some(HashMap::new()),
            ..ZSet::default()
        }
    }

    /// The empty set ZADD creates when its first member is `first` (Redis's choice in
    /// `zaddGenericCommand`).
    pub fn new_for(first: &[u8], limits: Limits) -> ZSet {
        if limits.entries == 0 || limits.value < first.len() {
            ZSet::new_skiplist()
        } else {
            ZSet::new_listpack()
        }
    }

    /// Builds a set from distinct members in any order, in the encoding Redis gives a
    /// computed result (`zsetConvertToListpackIfNeeded`): `listpack` when it fits.
    pub fn from_items(mut items: Vec<Item>, limits: Limits) -> ZSet {
        items.sort_by(|a, b| a.cmp_key(b.score, &b.member));
        let fits =
            items.len() <= limits.entries && items.iter().all(|i| i.member.len() <= limits.value);
        let mut z = if fits {
            ZSet::new_listpack()
        } else {
            ZSet::new_skiplist()
        };
        if let Some(index) = &mut z.index {
            index.reserve(items.len());
            for i in &items {
                index.insert(i.member.clone(), i.score);
            }
        }
        z.len = items.len();
        let listpack = z.is_listpack();
        let mut items = items
            .into_iter()
            .map(|mut i| {
                if listpack && i.score == 0.0 {
                    i.score = 0.0;
                }
                i
            })
            .peekable();
        while items.peek().is_some() {
            z.blocks.push(items.by_ref().take(BLOCK_MAX / 2).collect());
        }
        z
    }

    /// A `listpack` set from members already in order.
    fn from_sorted_listpack(items: Vec<Item>) -> ZSet {
        let mut z = ZSet::new_listpack();
        z.len = items.len();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            z.blocks.push(items.by_ref().take(BLOCK_MAX / 2).collect());
        }
        z
    }

    pub fn encoding_name(&self) -> &'static str {
        if self.index.is_some() {
            "skiplist"
        } else {
            "listpack"
        }
    }

    pub fn is_listpack(&self) -> bool {
        self.index.is_none()
    }

    /// The member index's shape, in the `skiplist` encoding (DEBUG HTSTATS-KEY). The index is
    /// an open-addressing table: every member has a bucket of its own, so chains are one long.
    pub fn table_stats(&self) -> Option<super::value::TableStats> {
        let ix = self.index.as_ref()?;
        // The table's buckets, from its usable capacity (7/8 of the buckets, or all but one
        // in tables under 8 buckets).
        let cap = ix.capacity();
        let buckets = match cap {
            0 => 0,
            1..=6 => cap + 1,
            _ => cap / 7 * 8,
        };
        let used = ix.len().min(buckets);
        Some(super::value::TableStats::from_chains(
            buckets,
            (0..buckets).map(|b| usize::from(b < used)),
        ))
    }

    pub fn heap_bytes(&self) -> usize {
        let items: usize = self.iter_items().map(|i| i.member.len()).sum::<usize>()
            + self.blocks.iter().map(|b| b.capacity()).sum::<usize>() * std::mem::size_of::<Item>();
        let index = self.index.as_ref().map_or(0, |ix| {
            ix.capacity() * (std::mem::size_of::<(Box<[u8]>, f64)>() + 1)
                + ix.keys().map(|k| k.len()).sum::<usize>()
        });
        items + index
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The member's score.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.index {
            Some(ix) => ix.get(member).copied(),
            None => self
                .iter_items()
                .find(|i| &*i.member == member)
                .map(|i| i.score),
        }
    }

    /// Every member in order with its score.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> + '_ {
        self.iter_items().map(|i| (&*i.member, i.score))
    }

    fn iter_items(&self) -> impl DoubleEndedIterator<Item = &Item> + '_ {
        self.blocks.iter().flat_map(|b| b.iter())
    }

    /// Members from rank `start` upwards (or downwards when `reverse`, counting ranks from
    /// the highest score).
    pub fn iter_from(&self, start: usize, reverse: bool) -> Box<dyn Iterator<Item = &Item> + '_> {
        if start >= self.len {
            return Box::new(std::iter::empty());
        }
        let rank = if reverse { self.len - 1 - start } else { start };
        let (b, off) = self.locate_rank(rank);
        if reverse {
            let head = self.blocks[b][..=off].iter().rev();
            let rest = self.blocks[..b]
                .iter()
                .rev()
                .flat_map(|blk| blk.iter().rev());
            Box::new(head.chain(rest))
        } else {
            let head = self.blocks[b][off..].iter();
            let rest = self.blocks[b + 1..].iter().flat_map(|blk| blk.iter());
            Box::new(head.chain(rest))
        }
    }

    /// The item at `rank` (0 is the lowest score).
    pub fn at_rank(&self, rank: usize) -> Option<&Item> {
        if rank >= self.len {
            return None;
        }
        let (b, off) = self.locate_rank(rank);
        Some(&self.blocks[b][off])
    }

    fn locate_rank(&self, mut rank: usize) -> (usize, usize) {
        for (b, blk) in self.blocks.iter().enumerate() {
            if rank < blk.len() {
                return (b, rank);
            }
            rank -= blk.len();
        }
        unreachable!("rank checked against the length")
    }

    fn rank_of_position(&self, block: usize, off: usize) -> usize {
        self.blocks[..block].iter().map(|b| b.len()).sum::<usize>() + off
    }

    /// The number of leading items for which `pred` holds; `pred` must hold on a prefix of
    /// the order and nowhere after it.
    pub fn partition_point(&self, pred: impl Fn(&Item) -> bool) -> usize {
        let b = self
            .blocks
            .partition_point(|blk| pred(blk.last().expect("non-empty")));
        if b == self.blocks.len() {
            return self.len;
        }
        let off = self.blocks[b].partition_point(&pred);
        self.rank_of_position(b, off)
    }

    /// Where (score, member) is or would go: (block, offset, found).
    fn find_position(&self, score: f64, member: &[u8]) -> (usize, usize, bool) {
        let key = |i: &Item| i.cmp_key(score, member) == Ordering::Less;
        let b = self
            .blocks
            .partition_point(|blk| key(blk.last().expect("non-empty")));
        if b == self.blocks.len() {
            return (b, 0, false);
        }
        let off = self.blocks[b].partition_point(key);
        let found = self.blocks[b]
            .get(off)
            .is_some_and(|i| i.cmp_key(score, member) == Ordering::Equal);
        (b, off, found)
    }

    /// The member's rank (0 is the lowest score), counted from the top when `reverse`.
    pub fn rank(&self, member: &[u8], reverse: bool) -> Option<usize> {
        let score = self.score(member)?;
        let (b, off, found) = self.find_position(score, member);
        debug_assert!(found);
        let rank = self.rank_of_position(b, off);
        Some(if reverse { self.len - 1 - rank } else { rank })
    }

    /// Adds a member that is not in the set, converting to `skiplist` first when it would
    /// not fit the listpack limits.
    pub fn insert_new(&mut self, member: &[u8], score: f64, limits: Limits) {
        if self.index.is_none() && (self.len + 1 > limits.entries || member.len() > limits.value) {
            self.convert_to_skiplist();
        }
        let score = self.stored(score);
        if let Some(ix) = &mut self.index {
            ix.insert(member.into(), score);
        }
        self.insert_ordered(Item {
            score,
            member: member.into(),
        });
    }

    /// The score as the encoding keeps it: a listpack stores scores as text, and `-0` comes
    /// back as the integer 0.
    fn stored(&self, score: f64) -> f64 {
        if self.index.is_none() && score == 0.0 {
            0.0
        } else {
            score
        }
    }

    fn insert_ordered(&mut self, item: Item) {
        self.len += 1;
        if self.blocks.is_empty() {
            self.blocks.push(vec![item]);
            return;
        }
        let (mut b, mut off, _) = self.find_position(item.score, &item.member);
        if b == self.blocks.len() {
            b -= 1;
            off = self.blocks[b].len();
        }
        let blk = &mut self.blocks[b];
        blk.insert(off, item);
        if blk.len() > BLOCK_MAX {
            let tail = blk.split_off(blk.len() / 2);
            self.blocks.insert(b + 1, tail);
        }
    }

    /// Changes an existing member's score.
    pub fn update_score(&mut self, member: &[u8], old: f64, new: f64) {
        if old == new {
            // Redis leaves an equal score alone, -0 against 0 included.
            return;
        }
        let new = self.stored(new);
        let item = self.remove_at_key(old, member);
        self.insert_ordered(Item {
            score: new,
            member: item.member,
        });
        if let Some(ix) = &mut self.index {
            if let Some(s) = ix.get_mut(member) {
                *s = new;
            }
        }
    }

    fn remove_at_key(&mut self, score: f64, member: &[u8]) -> Item {
        let (b, off, found) = self.find_position(score, member);
        assert!(found, "member present in the order");
        self.remove_at(b, off)
    }

    fn remove_at(&mut self, b: usize, off: usize) -> Item {
        let item = self.blocks[b].remove(off);
        if self.blocks[b].is_empty() {
            self.blocks.remove(b);
        } else if b + 1 < self.blocks.len()
            && self.blocks[b].len() + self.blocks[b + 1].len() <= BLOCK_MAX / 2
        {
            let next = self.blocks.remove(b + 1);
            self.blocks[b].extend(next);
        }
        self.len -= 1;
        item
    }

    /// Removes a member; its score if it was there.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.score(member)?;
        self.remove_at_key(score, member);
        if let Some(ix) = &mut self.index {
            ix.remove(member);
        }
        Some(score)
    }

    /// Removes and returns the items with ranks `start..end` (ascending).
    pub fn remove_rank_range(&mut self, start: usize, end: usize) -> Vec<Item> {
        let end = end.min(self.len);
        if start >= end {
            return Vec::new();
        }
        let mut remaining = end - start;
        let mut removed = Vec::with_capacity(remaining);
        let (mut b, mut off) = self.locate_rank(start);
        while remaining > 0 {
            let blk = &mut self.blocks[b];
            let take = (blk.len() - off).min(remaining);
            removed.extend(blk.drain(off..off + take));
            remaining -= take;
            if blk.is_empty() {
                self.blocks.remove(b);
            } else {
                b += 1;
            }
            off = 0;
        }
        if let Some(ix) = &mut self.index {
            for i in &removed {
                ix.remove(&i.member);
            }
        }
        self.len -= removed.len();
        removed
    }

    /// One ZSCAN step over the ordered members: about `count` of them from the cursor on,
    /// and the next cursor (0 when done). A cursor names a score, so members that stay in
    /// the set are returned even when others come and go between calls; a run of equal
    /// scores is never split.
    pub fn scan_by_score(&self, cursor: u64, count: usize) -> (Vec<&Item>, u64) {
        let start = if cursor == 0 {
            0
        } else {
            let from = score_of_cursor(cursor);
            self.partition_point(|i| i.score < from)
        };
        let mut items: Vec<&Item> = Vec::new();
        let mut it = self.iter_from(start, false).peekable();
        while let Some(i) = it.next() {
            items.push(i);
            if items.len() >= count.max(1) {
                match it.peek() {
                    Some(next) if next.score == i.score => continue,
                    Some(next) => return (items, cursor_of_score(next.score)),
                    None => break,
                }
            }
        }
        (items, 0)
    }
    /// Removes and returns the lowest (or highest) item.
    pub fn pop(&mut self, max: bool) -> Option<Item> {
        if self.is_empty() {
            return None;
        }
        let b = if max { self.blocks.len() - 1 } else { 0 };
        let off = if max { self.blocks[b].len() - 1 } else { 0 };
        let item = self.remove_at(b, off);
        if let Some(ix) = &mut self.index {
            ix.remove(&item.member);
        }
        Some(item)
    }

    fn convert_to_skiplist(&mut self) {
        if self.index.is_some() {
            return;
        }
        let ix: HashMap<Box<[u8]>, f64> = self
            .iter_items()
            .map(|i| (i.member.clone(), i.score))
            .collect();
        self.index = Some(ix);
    }
}

/// An order-preserving map from scores to nonzero cursors (`-0` is taken as 0).
fn cursor_of_score(score: f64) -> u64 {
    let score = if score == 0.0 { 0.0 } else { score };
    let bits = score.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn score_of_cursor(cursor: u64) -> f64 {
    let bits = if cursor >> 63 == 1 {
        cursor & !(1 << 63)
    } else {
        !cursor
    };
    f64::from_bits(bits)
}

impl PartialEq for ZSet {
    fn eq(&self, other: &ZSet) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encoding_name())?;
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(m, s)| (String::from_utf8_lossy(m).into_owned(), s)),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        entries: 128,
        value: 64,
    };

    fn check(z: &ZSet, model: &std::collections::BTreeMap<Vec<u8>, f64>) {
        let mut expected: Vec<(Vec<u8>, f64)> =
            model.iter().map(|(m, s)| (m.clone(), *s)).collect();
        expected.sort_by(|a, b| cmp_score(a.1, b.1).then_with(|| a.0.cmp(&b.0)));
        let got: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        assert_eq!(got, expected);
        assert_eq!(z.len(), model.len());
        for (rank, (m, s)) in expected.iter().enumerate() {
            assert_eq!(z.rank(m, false), Some(rank));
            assert_eq!(z.rank(m, true), Some(expected.len() - 1 - rank));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(&*z.at_rank(rank).unwrap().member, &m[..]);
        }
    }

    #[test]
    fn matches_a_naive_model_under_random_operations() {
        let mut seed = 42u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut z = ZSet::new_listpack();
        let mut model = std::collections::BTreeMap::new();
        for step in 0..6000 {
            let member = format!("m{}", next(700)).into_bytes();
            let score = next(50) as f64 - 25.0;
            match next(4) {
                0 | 1 => match z.score(&member) {
                    Some(old) => z.update_score(&member, old, score),
                    None => z.insert_new(&member, score, LIMITS),
                },
                2 => {
                    assert_eq!(z.remove(&member), model.get(&member).copied());
                    model.remove(&member);
                    continue;
                }
                _ => {
                    if let Some(i) = z.pop(next(2) == 0) {
                        model.remove(&*i.member);
                    }
                    continue;
                }
            }
            model.insert(member, score);
            if step % 500 == 0 {
                check(&z, &model);
            }
        }
        check(&z, &model);
        assert_eq!(z.encoding_name(), "skiplist");
        let removed = z.remove_rank_range(3, 100);
        assert_eq!(removed.len(), 97);
        for i in removed {
            model.remove(&*i.member);
        }
        check(&z, &model);
    }

    #[test]
    fn listpack_converts_past_its_limits_one_way() {
        let limits = Limits {
            entries: 2,
            value: 3,
        };
        let mut z = ZSet::new_for(b"a", limits);
        z.insert_new(b"a", 1.0, limits);
        z.insert_new(b"b", 2.0, limits);
        assert!(z.is_listpack());
        z.insert_new(b"c", 3.0, limits);
        assert_eq!(z.encoding_name(), "skiplist");
        z.remove(b"c");
        assert_eq!(z.encoding_name(), "skiplist");
        assert!(!ZSet::new_for(b"long", limits).is_listpack());
        let mut z = ZSet::new_listpack();
        z.insert_new(b"long", 1.0, limits);
        assert!(!z.is_listpack());
    }

    #[test]
    fn negative_zero_keeps_its_place_and_sign() {
        let mut z = ZSet::new_listpack();
        z.insert_new(b"b", 0.0, LIMITS);
        z.insert_new(b"a", -0.0, LIMITS);
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(order, vec![&b"a"[..], b"b"]);
        // A listpack keeps scores as text where -0 reads back as 0; a skiplist keeps the sign.
        assert!(z.score(b"a").unwrap().is_sign_positive());
        let mut z = ZSet::new_skiplist();
        z.insert_new(b"a", -0.0, LIMITS);
        assert!(z.score(b"a").unwrap().is_sign_negative());
        z.insert_new(b"b", 0.0, LIMITS);
        z.update_score(b"b", 0.0, -0.0);
        assert!(z.score(b"b").unwrap().is_sign_positive());
    }

    #[test]
    fn scan_cursor_survives_removals_and_keeps_equal_scores_together() {
        let items = (0..1000)
            .map(|i| Item {
                score: (i / 3) as f64 - 100.0,
                member: format!("m{i}").into_bytes().into(),
            })
            .collect();
        let mut z = ZSet::from_items(items, LIMITS);
        let (mut cursor, mut seen, mut steps) = (0u64, std::collections::HashSet::new(), 0);
        loop {
            let (batch, next) = z.scan_by_score(cursor, 10);
            assert!(batch.len() >= 10 || next == 0);
            assert!(batch.len() <= 12);
            seen.extend(batch.iter().map(|i| i.member.clone()));
            steps += 1;
            if steps == 20 {
                z.remove_rank_range(0, 100);
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(z.iter().all(|(m, _)| seen.contains(m)));
        for s in [f64::NEG_INFINITY, -1.5, 0.0, 3.0, f64::INFINITY] {
            assert_ne!(cursor_of_score(s), 0);
            assert_eq!(score_of_cursor(cursor_of_score(s)), s);
        }
        assert!(cursor_of_score(-1.0) < cursor_of_score(-0.5));
        assert!(cursor_of_score(-0.5) < cursor_of_score(0.0));
        assert!(cursor_of_score(0.0) < cursor_of_score(2.0));
    }

    #[test]
    fn iter_from_walks_both_ways() {
        let items = (0..1000)
            .map(|i| Item {
                score: i as f64,
                member: format!("{i}").into_bytes().into(),
            })
            .collect();
        let z = ZSet::from_items(items, LIMITS);
        assert_eq!(z.encoding_name(), "skiplist");
        let fwd: Vec<f64> = z.iter_from(998, false).map(|i| i.score).collect();
        assert_eq!(fwd, vec![998.0, 999.0]);
        let rev: Vec<f64> = z.iter_from(997, true).map(|i| i.score).collect();
        assert_eq!(rev, vec![2.0, 1.0, 0.0]);
        assert_eq!(z.partition_point(|i| i.score < 500.5), 501);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        #[derive(Clone, Debug)]
        enum Op {
            /// ZADD of one member: a new member, or a new score for one already there.
            Add(Vec<u8>, f64),
            AddMany(u32, usize, f64),
            Remove(Vec<u8>),
            Pop(bool),
            RemoveRankRange(prop::sample::Index, usize),
            Scan(usize),
            /// Rebuilds the set with `from_items`, as a computed result is built.
            Rebuild,
            /// Packs the set as it rests in its key and opens it again.
            StoreAndOpen,
        }

        fn member() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                8 => prop::collection::vec(prop::sample::select(b"abcd".to_vec()), 0..4),
                1 => prop::collection::vec(prop::sample::select(b"xyz".to_vec()), 4..12),
            ]
        }

        /// Few distinct scores, so ties are common, with both zeros and both infinities.
        fn score() -> impl Strategy<Value = f64> {
            prop_oneof![
                6 => (-4i32..4).prop_map(f64::from),
                2 => (-8i32..8).prop_map(|i| f64::from(i) / 4.0),
                3 => prop::sample::select(vec![
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    -0.0,
                    0.0,
                    f64::MIN_POSITIVE,
                    -f64::MAX,
                    f64::MAX,
                    1e300,
                    9007199254740993.0,
                ]),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                12 => (member(), score()).prop_map(|(m, s)| Op::Add(m, s)),
                1 => (0u32..1000, 1usize..160, score()).prop_map(|(b, n, s)| Op::AddMany(b, n, s)),
                4 => member().prop_map(Op::Remove),
                2 => any::<bool>().prop_map(Op::Pop),
                1 => (any::<prop::sample::Index>(), 0usize..40).prop_map(|(i, n)| Op::RemoveRankRange(i, n)),
                1 => (0usize..20).prop_map(Op::Scan),
                1 => Just(Op::Rebuild),
                1 => Just(Op::StoreAndOpen),
            ]
        }

        /// The model: each member's score as the set should report it, and the encoding the
        /// limits call for.
        struct Model {
            scores: BTreeMap<Vec<u8>, f64>,
            listpack: bool,
            limits: Limits,
        }

        impl Model {
            /// A listpack keeps an integral score as an integer, so -0 reads back as 0.
            fn stored(&self, s: f64) -> f64 {
                if self.listpack && s == 0.0 {
                    0.0
                } else {
                    s
                }
            }

            fn add(&mut self, m: &[u8], s: f64) {
                match self.scores.get(m) {
                    // An equal score (-0 against 0 included) leaves the member alone.
                    Some(&old) if old == s => {}
                    Some(_) => {
                        let s = self.stored(s);
                        self.scores.insert(m.to_vec(), s);
                    }
                    None => {
                        if self.scores.len() + 1 > self.limits.entries
                            || m.len() > self.limits.value
                        {
                            self.listpack = false;
                        }
                        let s = self.stored(s);
                        self.scores.insert(m.to_vec(), s);
                    }
                }
            }

            /// Members in set order: by score (-0 equal to 0), then by member bytes.
            fn ordered(&self) -> Vec<(Vec<u8>, f64)> {
                let mut v: Vec<(Vec<u8>, f64)> =
                    self.scores.iter().map(|(m, s)| (m.clone(), *s)).collect();
                v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
                v
            }
        }

        /// Scores compared by bits, so the sign of a zero counts.
        fn bits(v: &[(Vec<u8>, f64)]) -> Vec<(Vec<u8>, u64)> {
            v.iter().map(|(m, s)| (m.clone(), s.to_bits())).collect()
        }

        fn items(it: &mut dyn Iterator<Item = &Item>) -> Vec<(Vec<u8>, u64)> {
            it.map(|i| (i.member.to_vec(), i.score.to_bits())).collect()
        }

        fn add(z: &mut ZSet, m: &[u8], s: f64, limits: Limits) {
            match z.score(m) {
                Some(old) => z.update_score(m, old, s),
                None => z.insert_new(m, s, limits),
            }
        }

        fn apply(z: &mut ZSet, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
            let limits = m.limits;
            match op {
                Op::Add(x, s) => {
                    add(z, x, *s, limits);
                    m.add(x, *s);
                }
                Op::AddMany(base, n, s) => {
                    for i in 0..*n {
                        let x = format!("n{}", *base as usize + i).into_bytes();
                        // Neighbouring scores, some tied, so blocks fill in the middle too.
                        let s = if s.is_finite() {
                            s + (i % 7) as f64
                        } else {
                            *s
                        };
                        add(z, &x, s, limits);
                        m.add(&x, s);
                    }
                }
                Op::Remove(x) => {
                    let want = m.scores.remove(x);
                    prop_assert_eq!(z.remove(x).map(f64::to_bits), want.map(f64::to_bits));
                }
                Op::Pop(max) => {
                    let ordered = m.ordered();
                    let want = if *max {
                        ordered.last()
                    } else {
                        ordered.first()
                    };
                    let got = z.pop(*max).map(|i| (i.member.to_vec(), i.score.to_bits()));
                    prop_assert_eq!(got, want.map(|(x, s)| (x.clone(), s.to_bits())));
                    if let Some((x, _)) = want {
                        m.scores.remove(x);
                    }
                }
                Op::RemoveRankRange(start, n) => {
                    let ordered = m.ordered();
                    let start = start.index(ordered.len() + 2);
                    let end = start + n;
                    let want = &ordered[start.min(ordered.len())..end.min(ordered.len())];
                    let got: Vec<(Vec<u8>, u64)> = z
                        .remove_rank_range(start, end)
                        .iter()
                        .map(|i| (i.member.to_vec(), i.score.to_bits()))
                        .collect();
                    prop_assert_eq!(got, bits(want));
                    for (x, _) in want {
                        m.scores.remove(x);
                    }
                }
                Op::Scan(count) => {
                    let (mut cursor, mut seen) = (0u64, Vec::new());
                    loop {
                        let (batch, next) = z.scan_by_score(cursor, *count);
                        prop_assert!(next == 0 || batch.len() >= (*count).max(1));
                        // A run of equal scores is never split between two steps.
                        if let (Some(last), true) = (batch.last(), next != 0) {
                            prop_assert!(score_of_cursor(next) > last.score);
                        }
                        seen.extend(batch.iter().map(|i| i.member.to_vec()));
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                    let want: Vec<Vec<u8>> = m.ordered().into_iter().map(|(x, _)| x).collect();
                    // Nothing changes during this scan: every member once, in order.
                    prop_assert_eq!(seen, want);
                }
                Op::Rebuild => {
                    let all: Vec<Item> = z
                        .iter()
                        .rev()
                        .map(|(x, s)| Item {
                            score: s,
                            member: x.into(),
                        })
                        .collect();
                    *z = ZSet::from_items(all, limits);
                    m.listpack = m.scores.len() <= limits.entries
                        && m.scores.keys().all(|x| x.len() <= limits.value);
                    let normalized: Vec<(Vec<u8>, f64)> = m
                        .scores
                        .iter()
                        .map(|(x, s)| (x.clone(), m.stored(*s)))
                        .collect();
                    m.scores = normalized.into_iter().collect();
                }
                Op::StoreAndOpen => {
                    let before = bits(&m.ordered());
                    let mut st = Stored::new(std::mem::take(z));
                    prop_assert_eq!(matches!(st, Stored::Packed(_)), m.listpack);
                    prop_assert_eq!(st.len(), m.scores.len());
                    prop_assert_eq!(st.encoding_name(), z_encoding(m.listpack));
                    for (x, s) in &m.scores {
                        prop_assert_eq!(st.score(x).map(f64::to_bits), Some(s.to_bits()));
                    }
                    prop_assert_eq!(st.score(b"absent member"), None);
                    let viewed: Vec<(Vec<u8>, u64)> = st
                        .view()
                        .iter()
                        .map(|(x, s)| (x.to_vec(), s.to_bits()))
                        .collect();
                    prop_assert_eq!(&viewed, &before);
                    *z = std::mem::take(st.open());
                }
            }
            Ok(())
        }

        fn z_encoding(listpack: bool) -> &'static str {
            if listpack {
                "listpack"
            } else {
                "skiplist"
            }
        }

        fn check(z: &ZSet, m: &Model) -> Result<(), TestCaseError> {
            let ordered = m.ordered();
            let n = ordered.len();
            prop_assert_eq!(z.len(), n);
            prop_assert_eq!(z.is_empty(), n == 0);
            prop_assert_eq!(z.is_listpack(), m.listpack);
            prop_assert_eq!(z.encoding_name(), z_encoding(m.listpack));
            let got: Vec<(Vec<u8>, u64)> =
                z.iter().map(|(x, s)| (x.to_vec(), s.to_bits())).collect();
            let want = bits(&ordered);
            prop_assert_eq!(&got, &want);
            for (rank, (x, s)) in ordered.iter().enumerate() {
                prop_assert_eq!(z.rank(x, false), Some(rank));
                prop_assert_eq!(z.rank(x, true), Some(n - 1 - rank));
                prop_assert_eq!(z.score(x).map(f64::to_bits), Some(s.to_bits()));
                let at = z.at_rank(rank).unwrap();
                prop_assert_eq!((&*at.member, at.score.to_bits()), (&x[..], s.to_bits()));
            }
            prop_assert!(z.at_rank(n).is_none());
            prop_assert_eq!(z.rank(b"absent member", false), None);
            prop_assert_eq!(z.score(b"absent member"), None);
            for start in [0, n / 3, n.saturating_sub(1), n, n + 1] {
                let fwd = items(&mut z.iter_from(start, false));
                prop_assert_eq!(&fwd[..], &want[start.min(n)..]);
                let mut rev = items(&mut z.iter_from(start, true));
                rev.reverse();
                prop_assert_eq!(&rev[..], &want[..n - start.min(n)]);
            }
            if let Some((_, s)) = ordered.get(n / 2) {
                let below = ordered.iter().filter(|(_, t)| t < s).count();
                prop_assert_eq!(z.partition_point(|i| i.score < *s), below);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn zset_matches_a_btreemap_model(
                entries in prop_oneof![0usize..40, Just(128)],
                value in prop_oneof![1usize..8, Just(64)],
                first in member(),
                ops in prop::collection::vec(op(), 1..200),
            ) {
                let limits = Limits { entries, value };
                // ZADD's start: the first member picks the empty set's encoding.
                let mut z = ZSet::new_for(&first, limits);
                let mut m = Model { scores: BTreeMap::new(), listpack: z.is_listpack(), limits };
                prop_assert_eq!(m.listpack, entries > 0 && first.len() <= value);
                for op in std::iter::once(Op::Add(first, 1.0)).chain(ops) {
                    let was_listpack = z.is_listpack();
                    apply(&mut z, &mut m, &op)?;
                    // Only a rebuild picks the encoding afresh.
                    if !matches!(op, Op::Rebuild) {
                        prop_assert!(was_listpack || !z.is_listpack(), "converted back to listpack");
                    }
                    check(&z, &m)?;
                }
            }
        }
    }
}

/// How a sorted set is stored in its key's entry (16 bytes, no box of its own while small):
/// a `listpack`-encoded set rests packed into one allocation (member, score, member, score,
/// ... in order, integral scores in a few bytes), and is opened into a `ZSet` while a
/// command works on it; dispatch packs it again when the command is done.
#[derive(Clone)]
pub enum Stored {
    Packed(Packed),
    Open(Box<ZSet>),
}

/// A score as a packed element: `i` and the integer's little-endian bytes without redundant
/// sign bytes when it is integral, `f` and the double's bits otherwise (also for -0).
fn pack_score(score: f64, out: &mut Vec<u8>) {
    let int = score as i64;
    if int as f64 == score
        && !(score == 0.0 && score.is_sign_negative())
        && int.unsigned_abs() < 1 << 53
    {
        out.push(b'i');
        let bytes = int.to_le_bytes();
        let mut n = 8;
        while n > 1 {
            let top = bytes[n - 1];
            let next_sign = bytes[n - 2] & 0x80;
            if (top == 0 && next_sign == 0) || (top == 0xff && next_sign != 0) {
                n -= 1;
            } else {
                break;
            }
        }
        out.extend_from_slice(&bytes[..n]);
    } else {
        out.push(b'f');
        out.extend_from_slice(&score.to_bits().to_le_bytes());
    }
}

fn unpack_score(b: &[u8]) -> f64 {
    match b.first() {
        Some(b'i') => {
            let fill = if b.last().is_some_and(|x| x & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut bytes = [fill; 8];
            bytes[..b.len() - 1].copy_from_slice(&b[1..]);
            i64::from_le_bytes(bytes) as f64
        }
        _ => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&b[1..9]);
            f64::from_bits(u64::from_le_bytes(bytes))
        }
    }
}

impl Stored {
    /// Stores a set, packed when it is a `listpack`.
    pub fn new(z: ZSet) -> Stored {
        let mut s = Stored::Open(Box::new(z));
        s.close();
        s
    }

    /// The set to work on, unpacking it if it rests packed.
    pub fn open(&mut self) -> &mut ZSet {
        if let Stored::Packed(p) = self {
            *self = Stored::Open(Box::new(Self::unpack(p)));
        }
        match self {
            Stored::Open(z) => z,
            Stored::Packed(_) => unreachable!("opened above"),
        }
    }

    /// Packs an open `listpack` set again.
    pub fn close(&mut self) {
        let Stored::Open(z) = self else {
            return;
        };
        if !z.is_listpack() {
            return;
        }
        let scores: Vec<Vec<u8>> = z
            .iter()
            .map(|(_, score)| {
                let mut b = Vec::with_capacity(9);
                pack_score(score, &mut b);
                b
            })
            .collect();
        let items = z.iter().zip(&scores).flat_map(|((m, _), s)| [m, &s[..]]);
        let packed = Packed::from_items(items);
        *self = Stored::Packed(packed);
    }

    fn unpack(p: &Packed) -> ZSet {
        let mut it = p.iter();
        let mut items = Vec::new();
        while let (Some(m), Some(s)) = (it.next(), it.next()) {
            items.push(Item {
                score: unpack_score(s),
                member: m.into(),
            });
        }
        ZSet::from_sorted_listpack(items)
    }

    /// The set for reading, unpacked into a temporary copy if it rests packed.
    pub fn view(&self) -> std::borrow::Cow<'_, ZSet> {
        match self {
            Stored::Open(z) => std::borrow::Cow::Borrowed(z),
            Stored::Packed(p) => std::borrow::Cow::Owned(Self::unpack(p)),
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        match self {
            Stored::Packed(_) => "listpack",
            Stored::Open(z) => z.encoding_name(),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Stored::Packed(p) => p.bytes(),
            Stored::Open(z) => std::mem::size_of::<ZSet>() + z.heap_bytes(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Stored::Packed(p) => p.count() / 2,
            Stored::Open(z) => z.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            Stored::Packed(p) => {
                let mut it = p.iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    if m == member {
                        return Some(unpack_score(s));
                    }
                }
                None
            }
            Stored::Open(z) => z.score(member),
        }
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Stored) -> bool {
        *self.view() == *other.view()
    }
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.view().fmt(f)
    }
}

#[cfg(test)]
mod stored_tests {
    use super::*;

    #[test]
    fn scores_pack_compactly_and_exactly() {
        for s in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            127.0,
            128.0,
            -129.0,
            1e15,
            -(2f64.powi(52)),
            2f64.powi(60),
            1.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
        ] {
            let mut b = Vec::new();
            pack_score(s, &mut b);
            let back = unpack_score(&b);
            assert_eq!(back.to_bits(), s.to_bits(), "{s}");
        }
        let mut b = Vec::new();
        pack_score(5.0, &mut b);
        assert_eq!(b, b"i\x05");
    }

    #[test]
    fn a_listpack_set_rests_packed_and_opens_intact() {
        let limits = Limits {
            entries: 128,
            value: 64,
        };
        let items = (0..10)
            .map(|i| Item {
                score: f64::from(i % 3) - 0.5 * f64::from(i % 2),
                member: format!("m{i}").into_bytes().into(),
            })
            .collect();
        let z = ZSet::from_items(items, limits);
        let expected: Vec<(Vec<u8>, f64)> = z.iter().map(|(m, s)| (m.to_vec(), s)).collect();
        let mut stored = Stored::new(z);
        assert!(matches!(stored, Stored::Packed(_)));
        assert_eq!(stored.len(), 10);
        assert_eq!(stored.score(b"m3"), Some(-0.5));
        let open = stored.open();
        assert_eq!(
            open.iter()
                .map(|(m, s)| (m.to_vec(), s))
                .collect::<Vec<_>>(),
            expected
        );
        open.insert_new(b"zz", 9.0, limits);
        stored.close();
        assert_eq!(stored.len(), 11);
        assert_eq!(stored.encoding_name(), "listpack");
        let mut big = Stored::new(ZSet::new_skiplist());
        big.close();
        assert!(matches!(big, Stored::Open(_)));
    }
}

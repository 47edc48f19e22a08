//! List values. Redis 7.0 stores every list as a quicklist (a linked list of listpacks), and
//! OBJECT ENCODING always reports `quicklist`; the node layout only shows in DEBUG OBJECT,
//! which models it from the elements (see `commands/debug.rs`). Here a list is a ring buffer
//! of short byte strings: O(1) at both ends and by index, which is what the commands need.
//!
//! Index arithmetic follows `t_list.c`: negative indexes count from the tail, and ranges are
//! clamped the way LRANGE and LTRIM clamp them.

use super::small_bytes::SmallBytes;
use std::collections::VecDeque;

/// Which end of a list (Redis's LIST_HEAD / LIST_TAIL; LEFT / RIGHT in commands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// A list of byte strings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct List {
    pub items: VecDeque<SmallBytes>,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn from_items<I: IntoIterator<Item = T>, T: AsRef<[u8]>>(items: I) -> List {
        List {
            items: items
                .into_iter()
                .map(|i| SmallBytes::new(i.as_ref()))
                .collect(),
        }
    }

    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }

    pub fn heap_bytes(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<SmallBytes>()
            + self.items.iter().map(|i| i.heap_bytes()).sum::<usize>()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, end: End, item: &[u8]) {
        let item = SmallBytes::new(item);
        match end {
            End::Head => self.items.push_front(item),
            End::Tail => self.items.push_back(item),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<SmallBytes> {
        match end {
            End::Head => self.items.pop_front(),
            End::Tail => self.items.pop_back(),
        }
    }

    /// Pops up to `count` elements from one end, in the order they were popped.
    pub fn pop_many(&mut self, end: End, count: usize) -> Vec<SmallBytes> {
        let n = count.min(self.items.len());
        match end {
            End::Head => self.items.drain(..n).collect(),
            End::Tail => {
                let start = self.items.len() - n;
                let mut tail: Vec<SmallBytes> = self.items.drain(start..).collect();
                tail.reverse();
                tail
            }
        }
    }

    /// The position of a Redis index (negative counts from the tail), if it is in range.
    pub fn resolve(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 { len + index } else { index };
        (0..len).contains(&i).then_some(i as usize)
    }

    pub fn get(&self, index: i64) -> Option<&[u8]> {
        self.resolve(index).map(|i| self.items[i].as_bytes())
    }

    /// Replaces the element at a Redis index; false when out of range.
    pub fn set(&mut self, index: i64, item: &[u8]) -> bool {
        match self.resolve(index) {
            Some(i) => {
                self.items[i] = SmallBytes::new(item);
                true
            }
            None => false,
        }
    }

    /// LRANGE's clamping: the inclusive positions `start..=end` selects, if any.
    pub fn range_bounds(&self, start: i64, end: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let mut start = if start < 0 {
            len.saturating_add(start)
        } else {
            start
        };
        let mut end = if end < 0 {
            len.saturating_add(end)
        } else {
            end
        };
        if start < 0 {
            start = 0;
        }
        if start > end || start >= len {
            return None;
        }
        if end >= len {
            end = len - 1;
        }
        Some((start as usize, end as usize))
    }

    pub fn range(&self, start: i64, end: i64) -> impl Iterator<Item = &[u8]> + '_ {
        let (from, count) = match self.range_bounds(start, end) {
            Some((s, e)) => (s, e - s + 1),
            None => (0, 0),
        };
        self.items.range(from..from + count).map(|i| i.as_bytes())
    }

    /// LTRIM: keeps `start..=end` (Redis's clamping); returns how many elements went.
    pub fn trim(&mut self, start: i64, end: i64) -> usize {
        let len = self.items.len();
        match self.range_bounds(start, end) {
            None => {
                self.items.clear();
                len
            }
            Some((s, e)) => {
                self.items.truncate(e + 1);
                self.items.drain(..s);
                len - self.items.len()
            }
        }
    }

    /// LREM: removes up to `count` elements equal to `item` (all when 0), from the head
    /// when `count` is positive and from the tail when negative; returns how many went.
    pub fn remove_matching(&mut self, item: &[u8], count: i64) -> usize {
        let limit = match count {
            0 => usize::MAX,
            c => c.unsigned_abs().min(usize::MAX as u64) as usize,
        };
        let mut removed = 0;
        let mut keep = |e: &SmallBytes| {
            if removed < limit && e.as_bytes() == item {
                removed += 1;
                false
            } else {
                true
            }
        };
        if count >= 0 {
            self.items.retain(|e| keep(e));
        } else {
            let mut kept: VecDeque<SmallBytes> = VecDeque::with_capacity(self.items.len());
            while let Some(e) = self.items.pop_back() {
                if keep(&e) {
                    kept.push_front(e);
                }
            }
            self.items = kept;
        }
        removed
    }

    /// LINSERT: puts `item` before or after the first element equal to `pivot`; false when
    /// there is no such element.
    pub fn insert_at_pivot(&mut self, pivot: &[u8], item: &[u8], after: bool) -> bool {
        match self.items.iter().position(|e| e.as_bytes() == pivot) {
            Some(i) => {
                self.items.insert(i + after as usize, SmallBytes::new(item));
                true
            }
            None => false,
        }
    }

    /// LPOS: positions of the elements equal to `item`. `rank` is the first match to
    /// report (negative scans from the tail), `count` how many to report (0: all),
    /// `maxlen` how many elements to compare at most (0: all).
    pub fn positions(&self, item: &[u8], rank: i64, count: usize, maxlen: usize) -> Vec<usize> {
        let from_tail = rank < 0;
        // Redis negates a negative rank in a C long, so i64::MIN stays negative and every
        // match from the tail qualifies.
        let skip = match rank {
            i64::MIN => 0,
            r => r.unsigned_abs() - 1,
        };
        let len = self.items.len();
        let scanned = if maxlen == 0 { len } else { maxlen.min(len) };
        let wanted = if count == 0 { usize::MAX } else { count };
        let mut out = Vec::new();
        let mut matches: u64 = 0;
        for n in 0..scanned {
            let i = if from_tail { len - 1 - n } else { n };
            if self.items[i].as_bytes() == item {
                matches += 1;
                if matches > skip {
                    out.push(i);
                    if out.len() >= wanted {
                        break;
                    }
                }
            }
        }
        out
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.items.iter().map(|i| i.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        List::from_items(items.iter().map(|s| s.as_bytes()))
    }

    fn strings(l: &List) -> Vec<String> {
        l.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn push_pop_both_ends() {
        let mut l = List::new();
        l.push(End::Head, b"b");
        l.push(End::Head, b"a");
        l.push(End::Tail, b"c");
        assert_eq!(strings(&l), ["a", "b", "c"]);
        assert_eq!(l.pop(End::Tail).unwrap().as_bytes(), b"c");
        assert_eq!(l.pop(End::Head).unwrap().as_bytes(), b"a");
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn pop_many_from_the_tail_is_reversed() {
        let mut l = list(&["a", "b", "c", "d"]);
        let popped: Vec<_> = l
            .pop_many(End::Tail, 3)
            .iter()
            .map(|i| i.to_vec())
            .collect();
        assert_eq!(popped, [b"d".to_vec(), b"c".to_vec(), b"b".to_vec()]);
        assert_eq!(l.pop_many(End::Head, 10).len(), 1);
        assert!(l.is_empty());
    }

    #[test]
    fn indexes_and_ranges_clamp_like_redis() {
        let l = list(&["a", "b", "c", "d", "e"]);
        assert_eq!(l.get(-1), Some(&b"e"[..]));
        assert_eq!(l.get(5), None);
        assert_eq!(l.get(-6), None);
        assert_eq!(l.range_bounds(0, -1), Some((0, 4)));
        assert_eq!(l.range_bounds(-100, 100), Some((0, 4)));
        assert_eq!(l.range_bounds(3, 1), None);
        assert_eq!(l.range_bounds(5, 10), None);
        assert_eq!(l.range_bounds(i64::MIN, i64::MAX), Some((0, 4)));
        assert_eq!(l.range(1, 2).collect::<Vec<_>>(), [b"b", b"c"]);
    }

    #[test]
    fn trim_keeps_the_range() {
        let mut l = list(&["a", "b", "c", "d", "e"]);
        assert_eq!(l.trim(1, -2), 2);
        assert_eq!(strings(&l), ["b", "c", "d"]);
        assert_eq!(l.trim(5, 1), 3);
        assert!(l.is_empty());
    }

    #[test]
    fn remove_matching_from_either_end() {
        let mut l = list(&["x", "a", "x", "b", "x"]);
        assert_eq!(l.remove_matching(b"x", -2), 2);
        assert_eq!(strings(&l), ["x", "a", "b"]);
        let mut l = list(&["x", "a", "x", "b", "x"]);
        assert_eq!(l.remove_matching(b"x", 1), 1);
        assert_eq!(strings(&l), ["a", "x", "b", "x"]);
        assert_eq!(l.remove_matching(b"x", 0), 2);
        assert_eq!(strings(&l), ["a", "b"]);
    }

    #[test]
    fn insert_at_pivot_before_and_after() {
        let mut l = list(&["a", "c"]);
        assert!(l.insert_at_pivot(b"c", b"b", false));
        assert!(l.insert_at_pivot(b"c", b"d", true));
        assert!(!l.insert_at_pivot(b"z", b"q", true));
        assert_eq!(strings(&l), ["a", "b", "c", "d"]);
    }

    #[test]
    fn positions_follow_rank_count_and_maxlen() {
        let l = list(&["a", "b", "c", "1", "2", "3", "c", "c"]);
        assert_eq!(l.positions(b"c", 1, 1, 0), [2]);
        assert_eq!(l.positions(b"c", 2, 1, 0), [6]);
        assert_eq!(l.positions(b"c", -1, 1, 0), [7]);
        assert_eq!(l.positions(b"c", 1, 0, 0), [2, 6, 7]);
        assert_eq!(l.positions(b"c", -2, 0, 0), [6, 2]);
        assert_eq!(l.positions(b"c", 1, 0, 3), [2]);
        assert_eq!(l.positions(b"c", i64::MIN, 1, 0), [7]);
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        enum Op {
            Push(End, Vec<u8>),
            PushMany(End, Vec<u8>, usize),
            Pop(End),
            PopMany(End, usize),
            Get(i64),
            Set(i64, Vec<u8>),
            Range(i64, i64),
            Trim(i64, i64),
            Remove(Probe, i64),
            Insert(Probe, Vec<u8>, bool),
            /// LPOS for one element, with these and a fixed grid of rank/count/maxlen.
            Positions(Probe, i64, usize, usize),
        }

        /// An element to look for: a literal, or whatever sits at some position of the list
        /// (so searches find matches even after many distinct pushes).
        #[derive(Clone, Debug)]
        enum Probe {
            Lit(Vec<u8>),
            Nth(prop::sample::Index),
        }

        fn probe() -> impl Strategy<Value = Probe> {
            prop_oneof![
                element().prop_map(Probe::Lit),
                any::<prop::sample::Index>().prop_map(Probe::Nth),
            ]
        }

        fn resolve(m: &VecDeque<Vec<u8>>, p: &Probe) -> Vec<u8> {
            match p {
                Probe::Lit(x) => x.clone(),
                Probe::Nth(_) if m.is_empty() => Vec::new(),
                Probe::Nth(i) => m[i.index(m.len())].clone(),
            }
        }

        fn end() -> impl Strategy<Value = End> {
            prop_oneof![Just(End::Head), Just(End::Tail)]
        }

        /// Mostly a few short values that repeat (so pivots and matches are found), plus
        /// values around the inline limit and long ones that live on the heap.
        fn element() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                6 => prop::sample::select(vec!["", "a", "b", "c", "d"]).prop_map(|s| s.as_bytes().to_vec()),
                2 => (20usize..=24, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
                1 => prop::collection::vec(any::<u8>(), 0..40),
                1 => (100usize..700, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
            ]
        }

        fn index() -> impl Strategy<Value = i64> {
            prop_oneof![
                8 => -30i64..30,
                1 => -300i64..300,
                1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MAX, -1, 0]),
            ]
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                6 => (end(), element()).prop_map(|(e, x)| Op::Push(e, x)),
                1 => (end(), element(), 1usize..120).prop_map(|(e, x, n)| Op::PushMany(e, x, n)),
                2 => end().prop_map(Op::Pop),
                1 => (end(), 0usize..12).prop_map(|(e, n)| Op::PopMany(e, n)),
                2 => index().prop_map(Op::Get),
                2 => (index(), element()).prop_map(|(i, x)| Op::Set(i, x)),
                2 => (index(), index()).prop_map(|(a, b)| Op::Range(a, b)),
                1 => (index(), index()).prop_map(|(a, b)| Op::Trim(a, b)),
                2 => (probe(), prop_oneof![-3i64..=3, Just(i64::MIN), Just(i64::MAX)])
                    .prop_map(|(x, c)| Op::Remove(x, c)),
                2 => (probe(), element(), any::<bool>()).prop_map(|(p, x, a)| Op::Insert(p, x, a)),
                2 => (
                    probe(),
                    prop_oneof![1i64..=3, -3i64..=-1, Just(i64::MAX), Just(-i64::MAX)],
                    0usize..4,
                    prop_oneof![Just(0usize), 1usize..20],
                )
                    .prop_map(|(x, r, c, m)| Op::Positions(x, r, c, m)),
            ]
        }

        /// The model's reading of a Redis index pair: positions `s..=e` after counting
        /// negatives from the tail and clamping to the list, or nothing.
        fn model_range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
            let len = len as i128;
            let from_tail = |i: i64| if i < 0 { len + i as i128 } else { i as i128 };
            let s = from_tail(start).max(0);
            let e = from_tail(end).min(len - 1);
            (s <= e).then_some((s as usize, e as usize))
        }

        fn model_index(len: usize, index: i64) -> Option<usize> {
            let i = if index < 0 {
                len as i128 + index as i128
            } else {
                index as i128
            };
            (0..len as i128).contains(&i).then_some(i as usize)
        }

        fn apply(l: &mut List, m: &mut VecDeque<Vec<u8>>, op: &Op) -> Result<(), TestCaseError> {
            match op {
                Op::Push(e, x) => {
                    l.push(*e, x);
                    match e {
                        End::Head => m.push_front(x.clone()),
                        End::Tail => m.push_back(x.clone()),
                    }
                }
                Op::PushMany(e, x, n) => {
                    for k in 0..*n {
                        let mut item = x.clone();
                        item.extend_from_slice(k.to_string().as_bytes());
                        l.push(*e, &item);
                        match e {
                            End::Head => m.push_front(item),
                            End::Tail => m.push_back(item),
                        }
                    }
                }
                Op::Pop(e) => {
                    let want = match e {
                        End::Head => m.pop_front(),
                        End::Tail => m.pop_back(),
                    };
                    prop_assert_eq!(l.pop(*e).map(|x| x.to_vec()), want);
                }
                Op::PopMany(e, n) => {
                    let mut want = Vec::new();
                    for _ in 0..*n {
                        let x = match e {
                            End::Head => m.pop_front(),
                            End::Tail => m.pop_back(),
                        };
                        want.extend(x);
                    }
                    let got: Vec<Vec<u8>> = l.pop_many(*e, *n).iter().map(|x| x.to_vec()).collect();
                    prop_assert_eq!(got, want);
                }
                Op::Get(i) => {
                    let want = model_index(m.len(), *i).map(|p| &m[p][..]);
                    prop_assert_eq!(l.resolve(*i), model_index(m.len(), *i));
                    prop_assert_eq!(l.get(*i), want);
                }
                Op::Set(i, x) => {
                    let p = model_index(m.len(), *i);
                    if let Some(p) = p {
                        m[p] = x.clone();
                    }
                    prop_assert_eq!(l.set(*i, x), p.is_some());
                }
                Op::Range(a, b) => {
                    let bounds = model_range(m.len(), *a, *b);
                    prop_assert_eq!(l.range_bounds(*a, *b), bounds);
                    let want: Vec<&[u8]> = match bounds {
                        Some((s, e)) => m.range(s..=e).map(|x| &x[..]).collect(),
                        None => Vec::new(),
                    };
                    prop_assert_eq!(l.range(*a, *b).collect::<Vec<_>>(), want);
                }
                Op::Trim(a, b) => {
                    let before = m.len();
                    *m = match model_range(m.len(), *a, *b) {
                        Some((s, e)) => m.range(s..=e).cloned().collect(),
                        None => VecDeque::new(),
                    };
                    prop_assert_eq!(l.trim(*a, *b), before - m.len());
                }
                Op::Remove(x, count) => {
                    let x = &resolve(m, x);
                    let limit = if *count == 0 {
                        u64::MAX
                    } else {
                        count.unsigned_abs()
                    };
                    let mut hits: Vec<usize> = (0..m.len()).filter(|&i| m[i] == *x).collect();
                    if *count < 0 {
                        hits.reverse();
                    }
                    hits.truncate(limit.min(hits.len() as u64) as usize);
                    hits.sort_unstable();
                    for &i in hits.iter().rev() {
                        m.remove(i);
                    }
                    prop_assert_eq!(l.remove_matching(x, *count), hits.len());
                }
                Op::Insert(pivot, x, after) => {
                    let pivot = &resolve(m, pivot);
                    let at = m.iter().position(|e| e == pivot);
                    if let Some(i) = at {
                        m.insert(if *after { i + 1 } else { i }, x.clone());
                    }
                    prop_assert_eq!(l.insert_at_pivot(pivot, x, *after), at.is_some());
                }
                Op::Positions(x, rank, count, maxlen) => {
                    let x = &resolve(m, x);
                    let n = m.len();
                    let mut cases = vec![(*rank, *count, *maxlen)];
                    for rank in [1, 2, -1, -2] {
                        for count in [0, 1, 2] {
                            for maxlen in [0, 1, 2, n / 2, n.saturating_sub(1), n, n + 1] {
                                cases.push((rank, count, maxlen));
                            }
                        }
                    }
                    for (rank, count, maxlen) in cases {
                        let scanned = if maxlen == 0 { n } else { maxlen.min(n) };
                        let order: Vec<usize> = if rank > 0 {
                            (0..scanned).collect()
                        } else {
                            (0..scanned).map(|k| n - 1 - k).collect()
                        };
                        let want: Vec<usize> = order
                            .into_iter()
                            .filter(|&i| m[i] == *x)
                            .skip((rank.unsigned_abs() - 1).min(usize::MAX as u64) as usize)
                            .take(if count == 0 { usize::MAX } else { count })
                            .collect();
                        prop_assert_eq!(
                            l.positions(x, rank, count, maxlen),
                            want,
                            "rank {} count {} maxlen {}",
                            rank,
                            count,
                            maxlen
                        );
                    }
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn list_matches_a_deque_model(ops in prop::collection::vec(op(), 1..200)) {
                let mut l = List::new();
                let mut m: VecDeque<Vec<u8>> = VecDeque::new();
                for op in &ops {
                    apply(&mut l, &mut m, op)?;
                    prop_assert_eq!(l.len(), m.len());
                    prop_assert_eq!(l.is_empty(), m.is_empty());
                    prop_assert!(l.iter().eq(m.iter().map(|x| &x[..])));
                    prop_assert!(l.iter().rev().eq(m.iter().rev().map(|x| &x[..])));
                    prop_assert_eq!(l.encoding_name(), "quicklist");
                }
                let rebuilt = List::from_items(m.iter());
                prop_assert_eq!(&rebuilt, &l);
            }
        }
    }
}

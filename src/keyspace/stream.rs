//! The stream value: entries ordered by ID, the stream's counters (last ID, first ID, largest
//! deleted ID, entries ever added) and its consumer groups with their pending entry lists.
//!
//! Entries live in one ordered map. Redis keeps them in listpack "nodes" of at most
//! `stream-node-max-entries` entries / `stream-node-max-bytes` bytes, and approximate trimming
//! (`MAXLEN ~`, `MINID ~`) only drops whole nodes, so the node boundaries are observable. They
//! are mirrored here as bookkeeping beside the map: each node records its first ("master") ID,
//! how many live and deleted entries it holds, its last ID and the byte size its listpack
//! would have, which is all trimming, XINFO and the RDB writer need.

use std::collections::{BTreeMap, BTreeSet};

/// A stream entry ID, `<ms>-<seq>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        *self == StreamId::MIN
    }

    /// The next ID, or None past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                return None;
            }
            return Some(StreamId::new(self.ms + 1, 0));
        }
        Some(StreamId::new(self.ms, self.seq + 1))
    }

    /// The previous ID, or None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                return None;
            }
            return Some(StreamId::new(self.ms - 1, u64::MAX));
        }
        Some(StreamId::new(self.ms, self.seq - 1))
    }

    pub fn to_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from(format!("{}-{}", self.ms, self.seq))
    }

    /// The 16-byte big-endian key Redis's radix trees use.
    pub fn encode(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8; 16]) -> StreamId {
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// How an ID argument was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    /// False for the `<ms>-*` form (the sequence is to be generated).
    pub seq_given: bool,
}

/// Redis's `string2ull`: a strict decimal first, then `strtoull`'s looser syntax (leading
/// blanks, a sign, leading zeros; a minus sign wraps).
fn string_to_u64(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::util::parse_int(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Parses `<ms>-<seq>`, `<ms>` (sequence `missing_seq`), `-`, `+` and, when `allow_auto_seq`,
/// `<ms>-*`. `strict` rejects `-` and `+`. None means Redis's "Invalid stream ID" error.
pub fn parse_id(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    // Redis copies the argument into a C string: it ends at the first NUL.
    let s = &arg[..arg.iter().position(|&c| c == 0).unwrap_or(arg.len())];
    let given = |id| ParsedId {
        id,
        seq_given: true,
    };
    match s {
        b"-" | b"+" if strict => return None,
        b"-" => return Some(given(StreamId::MIN)),
        b"+" => return Some(given(StreamId::MAX)),
        _ => {}
    }
    match s.iter().position(|&c| c == b'-') {
        None => Some(given(StreamId::new(string_to_u64(s)?, missing_seq))),
        Some(dash) => {
            let ms = string_to_u64(&s[..dash])?;
            let rest = &s[dash + 1..];
            if allow_auto_seq && rest == b"*" {
                return Some(ParsedId {
                    id: StreamId::new(ms, 0),
                    seq_given: false,
                });
            }
            Some(given(StreamId::new(ms, string_to_u64(rest)?)))
        }
    }
}

/// One entry's fields and values, alternating, packed into a single allocation: each item
/// is a LEB128 length followed by its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields(Box<[u8]>);

impl Fields {
    pub fn new<I, B>(items: I) -> Fields
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut buf = Vec::new();
        for item in items {
            let item = item.as_ref();
            let mut n = item.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    buf.push(byte);
                    break;
                }
                buf.push(byte | 0x80);
            }
            buf.extend_from_slice(item);
        }
        Fields(buf.into_boxed_slice())
    }

    /// The items: field, value, field, value, ...
    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter(&self.0)
    }

    /// Number of items (twice the number of field/value pairs).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes the packed form occupies.
    pub fn packed_len(&self) -> usize {
        self.0.len()
    }

    pub fn as_ref(&self) -> FieldsRef<'_> {
        FieldsRef(&self.0)
    }
}

/// A borrowed view of packed fields (an entry inside a node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldsRef<'a>(&'a [u8]);

impl<'a> FieldsRef<'a> {
    pub fn iter(&self) -> FieldsIter<'a> {
        FieldsIter(self.0)
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_owned(&self) -> Fields {
        Fields(self.0.into())
    }
}

pub struct FieldsIter<'a>(&'a [u8]);

impl<'a> Iterator for FieldsIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let (mut n, mut shift, mut i) = (0usize, 0, 0);
        loop {
            let b = self.0[i];
            n |= ((b & 0x7f) as usize) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let item = &self.0[i..i + n];
        self.0 = &self.0[i + n..];
        Some(item)
    }
}

/// Field names of a node's master entry.
pub type Names = Box<[Box<[u8]>]>;

/// Bookkeeping for one of Redis's listpack nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Entries still present.
    pub live: u64,
    /// Entries flagged deleted but still occupying the listpack.
    pub deleted: u64,
    /// The last ID appended to the node (deleted or not).
    pub last_id: StreamId,
    /// The size the node's listpack would have.
    pub bytes: usize,
    /// The field names of the node's first entry (its "master entry").
    pub master_fields: Names,
    /// The live entries, each as varints (ms minus the master's ms, seq, packed length)
    /// followed by the packed fields.
    data: Vec<u8>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_varint(b: &[u8], pos: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = b[*pos];
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

impl Node {
    fn push(&mut self, master: StreamId, id: StreamId, fields: FieldsRef<'_>) {
        put_varint(&mut self.data, id.ms - master.ms);
        put_varint(&mut self.data, id.seq);
        put_varint(&mut self.data, fields.0.len() as u64);
        self.data.extend_from_slice(fields.0);
    }

    /// The live entries with the byte span each occupies in `data`.
    fn spans(
        &self,
        master: StreamId,
    ) -> impl Iterator<Item = (StreamId, FieldsRef<'_>, std::ops::Range<usize>)> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= self.data.len() {
                return None;
            }
            let begin = pos;
            let ms = master.ms + get_varint(&self.data, &mut pos);
            let seq = get_varint(&self.data, &mut pos);
            let len = get_varint(&self.data, &mut pos) as usize;
            let fields = FieldsRef(&self.data[pos..pos + len]);
            pos += len;
            Some((StreamId::new(ms, seq), fields, begin..pos))
        })
    }

    fn entries(&self, master: StreamId) -> impl Iterator<Item = (StreamId, FieldsRef<'_>)> + '_ {
        self.spans(master).map(|(id, f, _)| (id, f))
    }

    fn find(&self, master: StreamId, id: StreamId) -> Option<std::ops::Range<usize>> {
        self.spans(master)
            .find(|(e, _, _)| *e >= id)
            .filter(|(e, _, _)| *e == id)
            .map(|(_, _, span)| span)
    }
}

/// A pending entry: delivered to a consumer, not yet acknowledged.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    pub consumer: Box<[u8]>,
    pub delivery_time_ms: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumer {
    pub seen_time_ms: u64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read, -1 when unknown.
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Box<[u8]>, Consumer>,
}

pub const ENTRIES_READ_INVALID: i64 = -1;

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Creates a consumer unless it exists; true if created.
    pub fn create_consumer(&mut self, name: &[u8], now_ms: u64) -> bool {
        if self.consumers.contains_key(name) {
            return false;
        }
        self.consumers.insert(
            name.into(),
            Consumer {
                seen_time_ms: now_ms,
                pel: BTreeSet::new(),
            },
        );
        true
    }

    /// Removes a consumer and its pending entries; the number of pending entries it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let consumer = self.consumers.remove(name)?;
        for id in &consumer.pel {
            self.pel.remove(id);
        }
        Some(consumer.pel.len())
    }

    /// Acknowledges one entry; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pel.remove(&id);
        }
        true
    }

    /// Makes `id` pending for `consumer` (which must exist), taking it from its previous owner.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], time_ms: u64, count: u64) {
        if let Some(old) = self.pel.get(&id) {
            if &*old.consumer != consumer {
                let old = old.consumer.clone();
                if let Some(c) = self.consumers.get_mut(&old) {
                    c.pel.remove(&id);
                }
            }
        }
        self.pel.insert(
            id,
            Nack {
                consumer: consumer.into(),
                delivery_time_ms: time_ms,
                delivery_count: count,
            },
        );
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

/// Whether `XADD` may append: errors it can meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// The ID is not greater than the last one.
    NotGreater,
    /// `<ms>-*` with `<ms>` equal to the last ID's and its sequence exhausted.
    SeqExhausted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    pub entries_added: u64,
    pub groups: BTreeMap<Box<[u8]>, Group>,
}

/// Bytes a listpack element takes for an integer value.
fn lp_int_len(v: i64) -> usize {
    let body = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&v) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        5
    } else {
        9
    };
    body + 1
}

/// Bytes a listpack element takes for a string (stored as an integer when it is one).
fn lp_str_len(s: &[u8]) -> usize {
    if s.len() <= 20 {
        if let Some(v) = crate::util::parse_int(s) {
            return lp_int_len(v);
        }
    }
    let body = s.len()
        + if s.len() < 64 {
            1
        } else if s.len() < 4096 {
            2
        } else {
            5
        };
    body + match body {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

fn names(fields: &Fields) -> impl Iterator<Item = &[u8]> {
    fields.iter().step_by(2)
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn nodes(&self) -> &BTreeMap<StreamId, Node> {
        &self.nodes
    }

    /// The ID XADD would use: explicit, `<ms>-*`, or generated from the clock (`None`).
    pub fn next_id(&self, requested: Option<ParsedId>, now_ms: u64) -> Result<StreamId, AddError> {
        let id = match requested {
            Some(ParsedId {
                id,
                seq_given: true,
            }) => id,
            Some(ParsedId { id, .. }) if id.ms == self.last_id.ms => {
                if self.last_id.seq == u64::MAX {
                    return Err(AddError::SeqExhausted);
                }
                StreamId::new(id.ms, self.last_id.seq + 1)
            }
            Some(ParsedId { id, .. }) => id,
            None if now_ms > self.last_id.ms => StreamId::new(now_ms, 0),
            None => self.last_id.incr().ok_or(AddError::NotGreater)?,
        };
        if id <= self.last_id {
            return Err(AddError::NotGreater);
        }
        Ok(id)
    }

    /// Appends an entry whose ID is greater than `last_id` (see `next_id`).
    pub fn append(&mut self, id: StreamId, fields: Fields, max_entries: i64, max_bytes: u64) {
        let count = fields.len();
        debug_assert!(id > self.last_id && count.is_multiple_of(2));
        let new_len: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = match max_bytes {
            0 => 1 << 30,
            b => (b as usize).min(1 << 30),
        };
        let tail_full = match self.nodes.iter().next_back() {
            None => true,
            Some((_, n)) => {
                n.bytes + new_len >= max_bytes
                    || (max_entries > 0 && (n.live + n.deleted) as i64 >= max_entries)
            }
        };
        if tail_full {
            let master_fields: Names = names(&fields).map(Box::from).collect();
            // Header and end byte, then count, deleted, field count, the fields, and 0.
            let bytes = 7
                + 1
                + 1
                + lp_int_len(master_fields.len() as i64)
                + master_fields.iter().map(|f| lp_str_len(f)).sum::<usize>()
                + 1;
            self.nodes.insert(
                id,
                Node {
                    live: 0,
                    deleted: 0,
                    last_id: id,
                    bytes,
                    master_fields,
                    data: Vec::new(),
                },
            );
        }
        let (&master, node) = self.nodes.iter_mut().next_back().expect("a tail node");
        let same_fields = count / 2 == node.master_fields.len()
            && names(&fields)
                .zip(node.master_fields.iter().map(|b| &b[..]))
                .all(|(a, b)| a == b);
        let ms_diff = id.ms.wrapping_sub(master.ms) as i64;
        let seq_diff = id.seq.wrapping_sub(master.seq) as i64;
        let mut bytes = 1 + lp_int_len(ms_diff) + lp_int_len(seq_diff);
        let mut lp_count = 3 + count / 2;
        if same_fields {
            bytes += fields
                .iter()
                .skip(1)
                .step_by(2)
                .map(lp_str_len)
                .sum::<usize>();
        } else {
            bytes += lp_int_len((count / 2) as i64);
            bytes += fields.iter().map(lp_str_len).sum::<usize>();
            lp_count += count / 2 + 1;
        }
        bytes += lp_int_len(lp_count as i64);
        node.bytes += bytes;
        node.live += 1;
        node.last_id = id;
        node.push(master, id, fields.as_ref());
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Entries with `start <= id <= end`, forward or backward.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (StreamId, FieldsRef<'_>)> + '_> {
        if start > end || self.length == 0 {
            return Box::new(std::iter::empty());
        }
        let first = self
            .nodes
            .range(..=start)
            .next_back()
            .map_or(StreamId::MIN, |(k, _)| *k);
        let nodes = self.nodes.range(first..=end);
        if rev {
            Box::new(
                nodes
                    .rev()
                    .flat_map(|(m, n)| n.entries(*m).collect::<Vec<_>>().into_iter().rev())
                    .skip_while(move |(id, _)| *id > end)
                    .take_while(move |(id, _)| *id >= start),
            )
        } else {
            Box::new(
                nodes
                    .flat_map(|(m, n)| n.entries(*m))
                    .skip_while(move |(id, _)| *id < start)
                    .take_while(move |(id, _)| *id <= end),
            )
        }
    }

    pub fn get(&self, id: &StreamId) -> Option<FieldsRef<'_>> {
        let (master, node) = self.nodes.range(..=*id).next_back()?;
        node.entries(*master)
            .find(|(e, _)| e >= id)
            .filter(|(e, _)| e == id)
            .map(|(_, f)| f)
    }

    pub fn first_entry(&self) -> Option<(StreamId, FieldsRef<'_>)> {
        self.nodes
            .iter()
            .find(|(_, n)| n.live > 0)
            .and_then(|(m, n)| n.entries(*m).next())
    }

    pub fn last_entry(&self) -> Option<(StreamId, FieldsRef<'_>)> {
        self.nodes
            .iter()
            .rev()
            .find(|(_, n)| n.live > 0)
            .and_then(|(m, n)| n.entries(*m).last())
    }

    /// The ID of the last entry still present, 0-0 when empty (Redis's `streamLastValidID`).
    pub fn last_valid_id(&self) -> StreamId {
        self.last_entry().map(|(id, _)| id).unwrap_or_default()
    }

    fn first_valid_id(&self) -> StreamId {
        self.first_entry().map(|(id, _)| id).unwrap_or_default()
    }

    /// XDEL of one entry; true if it existed. Updates `max_deleted_entry_id` and `first_id`.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(span) = node.find(master, id) else {
            return false;
        };
        node.data.drain(span);
        node.live -= 1;
        node.deleted += 1;
        if node.live == 0 {
            self.nodes.remove(&master);
        }
        self.length -= 1;
        if id > self.max_deleted_entry_id {
            self.max_deleted_entry_id = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.first_valid_id();
        }
        true
    }

    /// Redis's `streamTrim`: drops whole nodes from the head while allowed, then (unless
    /// approximate) flags entries of the next node deleted. `limit` 0 means no limit.
    /// Returns the number of entries removed.
    pub fn trim(&mut self, strategy: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        while let Some(mut entry) = self.nodes.first_entry() {
            if let Trim::MaxLen(max) = strategy {
                if self.length <= max {
                    break;
                }
            }
            let live = entry.get().live;
            if limit != 0 && deleted + live > limit {
                break;
            }
            let whole = match strategy {
                Trim::MaxLen(max) => self.length - live >= max,
                Trim::MinId(min) => entry.get().last_id < min,
            };
            if whole {
                entry.remove();
                self.length -= live;
                deleted += live;
                continue;
            }
            if approx {
                break;
            }
            let master = *entry.key();
            let node = entry.get_mut();
            let mut cut = 0;
            let mut from_node = 0;
            for (id, _, span) in node.spans(master) {
                let stop = match strategy {
                    Trim::MaxLen(max) => self.length - from_node <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                cut = span.end;
                from_node += 1;
            }
            node.data.drain(..cut);
            node.live -= from_node;
            node.deleted += from_node;
            self.length -= from_node;
            deleted += from_node;
            break;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.first_id = self.first_valid_id();
        }
        deleted
    }

    /// Whether a deleted entry may lie in `[start, end]` (Redis's `streamRangeHasTombstones`).
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.is_empty() || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        let start = start.unwrap_or(StreamId::MIN);
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_entry_id && self.max_deleted_entry_id <= end
    }

    /// How many entries precede `id` since the stream began, if it can be known (Redis's
    /// `streamEstimateDistanceFromFirstEverEntry`); None is "invalid".
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return Some(self.entries_added - self.len()),
                std::cmp::Ordering::Equal => return Some(self.entries_added - self.len() + 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// A group's lag, None when it cannot be computed.
    pub fn group_lag(&self, group: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read != ENTRIES_READ_INVALID
            && !self.range_has_tombstones(Some(group.last_id), None)
        {
            return Some(self.entries_added as i64 - group.entries_read);
        }
        self.estimate_distance(group.last_id)
            .map(|read| self.entries_added as i64 - read as i64)
    }

    /// Moves a group's last delivered ID past `id` as delivery does, keeping entries_read.
    pub fn advance_group(&mut self, group_name: &[u8], id: StreamId) {
        let has_tombstones = self.range_has_tombstones(Some(id), None);
        let estimate = self.estimate_distance(id);
        let entries_added = self.entries_added;
        let group = self.groups.get_mut(group_name).expect("group exists");
        if id > group.last_id {
            if group.entries_read != ENTRIES_READ_INVALID && !has_tombstones {
                group.entries_read += 1;
            } else if entries_added != 0 {
                group.entries_read = estimate.map_or(ENTRIES_READ_INVALID, |v| v as i64);
            }
            group.last_id = id;
        }
    }

    /// Restores one node from an RDB image: its key (the ID it was created with, which may
    /// precede its first live entry), its live entries in order, how many deleted ones it
    /// had, its last ID and its listpack size.
    pub fn push_node(
        &mut self,
        master: StreamId,
        entries: Vec<(StreamId, Fields)>,
        deleted: u64,
        last_id: StreamId,
        bytes: usize,
    ) {
        // A node may hold only deleted entries (an exact MINID trim can leave one).
        let master_fields: Names = entries
            .first()
            .map(|(_, f)| f.as_ref().iter().step_by(2).map(Box::from).collect())
            .unwrap_or_default();
        let mut node = Node {
            live: entries.len() as u64,
            deleted,
            last_id,
            bytes,
            master_fields,
            data: Vec::new(),
        };
        for (id, f) in &entries {
            node.push(master, *id, f.as_ref());
        }
        node.data.shrink_to_fit();
        self.length += entries.len() as u64;
        self.nodes.insert(master, node);
    }

    /// The entries of one node, in order.
    pub fn node_entries(
        &self,
        master: StreamId,
    ) -> impl Iterator<Item = (StreamId, FieldsRef<'_>)> + '_ {
        self.nodes
            .get(&master)
            .into_iter()
            .flat_map(move |n| n.entries(master))
    }

    /// Approximate heap bytes, for MEMORY USAGE, counted the way Redis does: the stream,
    /// its radix tree, every listpack (the tail one preallocated to 4 KiB on creation) and
    /// the groups' PELs and consumers.
    pub fn heap_bytes(&self) -> usize {
        let tail = self.nodes.keys().next_back().copied();
        let lists: usize = self
            .nodes
            .iter()
            .map(|(k, n)| {
                if Some(*k) == tail {
                    n.bytes.max(4096)
                } else {
                    n.bytes
                }
            })
            .sum();
        let rax = |keys: usize| 24 + keys * 64;
        let groups: usize = self
            .groups
            .values()
            .map(|g| {
                96 + rax(g.pel.len())
                    + g.pel.len() * 24
                    + g.consumers
                        .iter()
                        .map(|(n, c)| 32 + n.len() + rax(c.pel.len()))
                        .sum::<usize>()
            })
            .sum();
        16 + 96 + rax(self.nodes.len()) + lists + groups
    }

    /// The number of nodes Redis's radix tree of listpacks would have for these node keys
    /// (XINFO STREAM `radix-tree-nodes`): a compressed trie over the 16-byte keys.
    pub fn radix_tree_nodes(&self) -> u64 {
        let keys: Vec<[u8; 16]> = self.nodes.keys().map(|k| k.encode()).collect();
        if keys.is_empty() {
            return 1;
        }
        trie_nodes(&keys, 0)
    }
}

/// Nodes of a compressed radix tree holding `keys` (sorted, distinct, all 16 bytes) from
/// byte `depth` on: a chain of shared bytes is one node, a fork is one node, a key end is one.
fn trie_nodes(keys: &[[u8; 16]], depth: usize) -> u64 {
    if depth == 16 {
        return 1;
    }
    let first = keys[0];
    let last = keys[keys.len() - 1];
    let common = (depth..16).take_while(|&i| first[i] == last[i]).count();
    if common > 0 {
        return 1 + trie_nodes(keys, depth + common);
    }
    let mut total = 1;
    let mut i = 0;
    while i < keys.len() {
        let b = keys[i][depth];
        let j = i + keys[i..].iter().take_while(|k| k[depth] == b).count();
        total += trie_nodes(&keys[i..j], depth + 1);
        i = j;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(kv: &[&str]) -> Fields {
        Fields::new(kv)
    }

    fn add(s: &mut Stream, ms: u64, seq: u64, max_entries: i64) {
        s.append(
            StreamId::new(ms, seq),
            fields(&["f", "v"]),
            max_entries,
            4096,
        );
    }

    #[test]
    fn packed_fields_give_back_their_items() {
        let long = vec![b'x'; 300];
        let f = Fields::new([&b"a"[..], b"", &long, b"\x00\xff"]);
        let items: Vec<&[u8]> = f.iter().collect();
        assert_eq!(items, [&b"a"[..], b"", &long[..], b"\x00\xff"]);
        assert_eq!(f.len(), 4);
        assert_eq!(f.packed_len(), 1 + 1 + 1 + 2 + 300 + 1 + 2);
        assert!(Fields::new(Vec::<&[u8]>::new()).is_empty());
    }

    #[test]
    fn ids_parse_like_redis() {
        let p = |s: &str| parse_id(s.as_bytes(), 0, false, false).map(|p| p.id);
        assert_eq!(p("1-2"), Some(StreamId::new(1, 2)));
        assert_eq!(p("5"), Some(StreamId::new(5, 0)));
        assert_eq!(p("-"), Some(StreamId::MIN));
        assert_eq!(p("+"), Some(StreamId::MAX));
        assert_eq!(p("007-1"), Some(StreamId::new(7, 1)));
        assert_eq!(
            p("18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        assert_eq!(p("18446744073709551616"), None);
        assert_eq!(p("-1"), None);
        assert_eq!(p("abc"), None);
        assert_eq!(p("1-"), None);
        assert_eq!(p("1-2-3"), None);
        assert_eq!(parse_id(b"+", 0, true, false), None);
        let auto = parse_id(b"3-*", 0, true, true).unwrap();
        assert_eq!((auto.id, auto.seq_given), (StreamId::new(3, 0), false));
        assert_eq!(parse_id(b"3-*", 0, true, false), None);
        assert_eq!(
            parse_id(b"9", u64::MAX, false, false).unwrap().id,
            StreamId::new(9, u64::MAX)
        );
    }

    #[test]
    fn next_id_follows_the_last_id() {
        let mut s = Stream::new();
        assert_eq!(s.next_id(None, 100), Ok(StreamId::new(100, 0)));
        add(&mut s, 100, 0, 100);
        assert_eq!(s.next_id(None, 50), Ok(StreamId::new(100, 1)));
        let auto = |ms| {
            Some(ParsedId {
                id: StreamId::new(ms, 0),
                seq_given: false,
            })
        };
        assert_eq!(s.next_id(auto(100), 0), Ok(StreamId::new(100, 1)));
        assert_eq!(s.next_id(auto(99), 0), Err(AddError::NotGreater));
        let exact = Some(ParsedId {
            id: StreamId::new(100, 0),
            seq_given: true,
        });
        assert_eq!(s.next_id(exact, 0), Err(AddError::NotGreater));
    }

    #[test]
    fn approximate_trim_drops_whole_nodes_only() {
        let mut s = Stream::new();
        for i in 1..=100 {
            add(&mut s, i, 0, 10);
        }
        assert_eq!(s.nodes().len(), 10);
        assert_eq!(s.trim(Trim::MaxLen(55), true, 30), 30);
        assert_eq!(s.len(), 70);
        assert_eq!(s.trim(Trim::MaxLen(55), true, 0), 10);
        assert_eq!(s.len(), 60);
        assert_eq!(s.trim(Trim::MaxLen(55), false, 0), 5);
        assert_eq!(s.len(), 55);
        assert_eq!(s.first_id, StreamId::new(46, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(52, 0)), false, 0), 6);
        assert_eq!(s.first_id, StreamId::new(52, 0));
    }

    #[test]
    fn deleting_every_entry_of_a_node_removes_it() {
        let mut s = Stream::new();
        for i in 1..=4 {
            add(&mut s, i, 0, 2);
        }
        assert!(s.delete(StreamId::new(1, 0)));
        assert_eq!(s.nodes().len(), 2);
        assert!(s.delete(StreamId::new(2, 0)));
        assert_eq!(s.nodes().len(), 1);
        assert!(!s.delete(StreamId::new(2, 0)));
        assert_eq!(s.first_id, StreamId::new(3, 0));
        assert_eq!(s.max_deleted_entry_id, StreamId::new(2, 0));
    }

    #[test]
    fn randomized_operations_agree_with_a_btreemap_model() {
        let mut seed: u64 = 0x5eed_1234;
        println!("seed {seed:#x}");
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..50 {
            let mut s = Stream::new();
            let mut model: BTreeMap<StreamId, ()> = BTreeMap::new();
            let max_entries = (round % 5) as i64 + 1;
            let mut ms = 0;
            for _ in 0..300 {
                match next() % 10 {
                    0..=5 => {
                        ms += next() % 3;
                        let id = s.next_id(None, ms).unwrap();
                        let value = id.to_string();
                        let f = if next() % 2 == 0 {
                            fields(&["a", &value])
                        } else {
                            fields(&["b", &value, "c", ""])
                        };
                        s.append(id, f, max_entries, 4096);
                        model.insert(id, ());
                    }
                    6 | 7 => {
                        let keys: Vec<_> = model.keys().copied().collect();
                        if let Some(&id) = keys.get((next() as usize) % (keys.len() + 1)) {
                            assert!(s.delete(id));
                            model.remove(&id);
                        }
                    }
                    8 => {
                        let max = next() % 40;
                        let approx = next() % 2 == 0;
                        let n = s.trim(Trim::MaxLen(max), approx, 0);
                        for _ in 0..n {
                            model.pop_first();
                        }
                        if !approx {
                            assert!(model.len() as u64 <= max);
                        }
                    }
                    _ => {
                        let min = StreamId::new(ms.saturating_sub(next() % 20), 0);
                        let n = s.trim(Trim::MinId(min), false, 0);
                        for _ in 0..n {
                            model.pop_first();
                        }
                        assert!(model.keys().all(|k| *k >= min));
                    }
                }
                assert_eq!(s.len(), model.len() as u64);
                let got: Vec<_> = s
                    .range(StreamId::MIN, StreamId::MAX, false)
                    .map(|(k, _)| k)
                    .collect();
                let want: Vec<_> = model.keys().copied().collect();
                assert_eq!(got, want);
                for (id, f) in s.range(StreamId::MIN, StreamId::MAX, false) {
                    assert_eq!(f.iter().nth(1), Some(id.to_string().as_bytes()));
                }
                let rev: Vec<_> = s
                    .range(StreamId::MIN, StreamId::MAX, true)
                    .map(|(k, _)| k)
                    .collect();
                assert!(rev.iter().rev().eq(want.iter()));
                if let (Some(&lo), Some(&hi)) = (want.get(want.len() / 3), want.get(want.len() / 2))
                {
                    let sub: Vec<_> = s.range(lo, hi, true).map(|(k, _)| k).collect();
                    let model_sub: Vec<_> = model.range(lo..=hi).rev().map(|(k, _)| *k).collect();
                    assert_eq!(sub, model_sub);
                    assert!(s.get(&lo).is_some());
                    assert!(s
                        .get(&StreamId::new(lo.ms, lo.seq.wrapping_add(u64::MAX / 2)))
                        .is_none());
                }
                assert_eq!(s.first_id, want.first().copied().unwrap_or_default());
                let live: u64 = s.nodes().values().map(|n| n.live).sum();
                assert_eq!(live, s.len());
                // A node may be left with no live entry only by an exact MINID trim that
                // stopped at a deleted entry (Redis keeps such a node too).
                assert!(s.nodes().values().all(|n| n.live + n.deleted > 0));
            }
        }
    }

    #[test]
    fn radix_tree_node_counts() {
        let mut s = Stream::new();
        assert_eq!(s.radix_tree_nodes(), 1);
        add(&mut s, 1, 0, 1);
        assert_eq!(s.radix_tree_nodes(), 2);
        add(&mut s, 2, 0, 1);
        // Shared 7-byte prefix, fork, two leaves each after an 8-byte chain.
        assert_eq!(s.radix_tree_nodes(), 6);
    }
}

//! Streams in RDB files: the STREAM_LISTPACKS_2 type (19) Redis 7.0 writes, and the older
//! STREAM_LISTPACKS (15) on reading. A stream is saved as its radix tree of listpack nodes
//! (16-byte big-endian master ID, then the listpack in Redis's stream layout: a master entry
//! with the live and deleted counts and the master field names, then each entry as flags,
//! ID deltas, optional field names, values and a back-count), followed by the counters and
//! the consumer groups with their pending entries and consumers.
//!
//! Entries flagged deleted are not kept in memory, so the writer saves live entries only
//! (deleted count 0); the reader skips flagged entries and remembers how many there were.

use crate::keyspace::stream::{Consumer, Fields, FieldsRef, Group, Nack, Stream, StreamId};

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// Redis 7.2 (RDB 11): consumers also carry their last active time.
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

// ---- listpack writing ----

/// The back-length that follows a listpack element of `l` bytes (encoding and data): 7 bits
/// per byte, most significant first, every byte but the first flagged with the top bit, so
/// it can be read backwards from the next element.
fn backlen_bytes(l: usize) -> ([u8; 5], usize) {
    let l = l as u64;
    let n = match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    let mut out = [0u8; 5];
    for (i, b) in out[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        *b = ((l >> shift) & 127) as u8 | if i > 0 { 128 } else { 0 };
    }
    (out, n)
}

/// A listpack under construction.
struct LpWriter {
    buf: Vec<u8>,
    count: usize,
}

impl LpWriter {
    fn new() -> LpWriter {
        LpWriter {
            buf: vec![0; 6],
            count: 0,
        }
    }

    fn backlen(&mut self, l: usize) {
        let (bytes, n) = backlen_bytes(l);
        self.buf.extend_from_slice(&bytes[..n]);
    }

    fn int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u64;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let len = self.buf.len() - start;
        self.backlen(len);
        self.count += 1;
    }

    /// A string element, stored as an integer when it is the canonical form of one.
    fn string(&mut self, s: &[u8]) {
        if s.len() <= 20 {
            if let Some(v) = crate::util::parse_int(s) {
                return self.int(v);
            }
        }
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let len = self.buf.len() - start;
        self.backlen(len);
        self.count += 1;
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = self.count.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// One node's listpack in Redis's stream layout (live entries only).
fn node_listpack<'a>(
    master: StreamId,
    entries: impl Iterator<Item = (StreamId, FieldsRef<'a>)>,
) -> Vec<u8> {
    let entries: Vec<_> = entries.collect();
    let mut lp = LpWriter::new();
    let master_fields: Vec<&[u8]> = entries
        .first()
        .map(|(_, f)| f.iter().step_by(2).collect())
        .unwrap_or_default();
    lp.int(entries.len() as i64);
    lp.int(0);
    lp.int(master_fields.len() as i64);
    for f in &master_fields {
        lp.string(f);
    }
    lp.int(0);
    for (id, fields) in entries {
        let same = fields.len() / 2 == master_fields.len()
            && fields
                .iter()
                .step_by(2)
                .zip(&master_fields)
                .all(|(a, b)| a == *b);
        lp.int(if same { FLAG_SAMEFIELDS } else { 0 });
        lp.int(id.ms.wrapping_sub(master.ms) as i64);
        lp.int(id.seq.wrapping_sub(master.seq) as i64);
        let n = fields.len() / 2;
        if same {
            for v in fields.iter().skip(1).step_by(2) {
                lp.string(v);
            }
            lp.int(3 + n as i64);
        } else {
            lp.int(n as i64);
            for f in fields.iter() {
                lp.string(f);
            }
            lp.int(3 + 2 * n as i64 + 1);
        }
    }
    lp.finish()
}

/// The value part of a stream key, written with the writer's length and string encoders.
pub fn write_stream(
    s: &Stream,
    out: &mut Vec<u8>,
    length: &mut dyn FnMut(&mut Vec<u8>, u64),
    string: &mut dyn FnMut(&mut Vec<u8>, &[u8]),
) {
    // A node whose entries were all trimmed away has nothing to save.
    let live = || s.nodes().iter().filter(|(_, n)| n.live > 0).map(|(k, _)| k);
    length(out, live().count() as u64);
    for master in live() {
        string(out, &master.encode());
        let lp = node_listpack(*master, s.node_entries(*master));
        // Raw: a listpack must not go through the integer string encodings.
        length(out, lp.len() as u64);
        out.extend_from_slice(&lp);
    }
    for v in [
        s.len(),
        s.last_id.ms,
        s.last_id.seq,
        s.first_id.ms,
        s.first_id.seq,
        s.max_deleted_entry_id.ms,
        s.max_deleted_entry_id.seq,
        s.entries_added,
    ] {
        length(out, v);
    }
    length(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        string(out, name);
        length(out, g.last_id.ms);
        length(out, g.last_id.seq);
        length(out, g.entries_read as u64);
        length(out, g.pel.len() as u64);
        for (id, nack) in &g.pel {
            out.extend_from_slice(&id.encode());
            out.extend_from_slice(&nack.delivery_time_ms.to_le_bytes());
            length(out, nack.delivery_count);
        }
        length(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            string(out, cname);
            out.extend_from_slice(&c.seen_time_ms.to_le_bytes());
            length(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.encode());
            }
        }
    }
}

// ---- listpack reading ----

#[derive(Debug)]
enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

/// Walks a listpack's elements front to back, checking every bound. With `deep`, each
/// element's back-length must be the one its size calls for and, once the walk is done, the
/// header's element count must match (Redis's deep sanitization); without, those redundant
/// fields are not looked at, since nothing here reads a listpack backwards.
struct LpIter<'a> {
    lp: &'a [u8],
    p: usize,
    end: usize,
    deep: bool,
    seen: usize,
}

impl<'a> LpIter<'a> {
    fn new(lp: &'a [u8], deep: bool) -> Result<LpIter<'a>, String> {
        if lp.len() < 7
            || u32::from_le_bytes(lp[..4].try_into().unwrap()) as usize != lp.len()
            || lp[lp.len() - 1] != 0xff
        {
            return Err("invalid listpack header".into());
        }
        Ok(LpIter {
            lp,
            p: 6,
            end: lp.len() - 1,
            deep,
            seen: 0,
        })
    }

    fn take(&self, p: usize, n: usize) -> Result<&'a [u8], String> {
        match p.checked_add(n) {
            Some(e) if e <= self.end => Ok(&self.lp[p..e]),
            _ => Err("listpack element out of bounds".into()),
        }
    }

    /// The next element, `None` at the terminator.
    fn next_elem(&mut self) -> Result<Option<Elem<'a>>, String> {
        let p = self.p;
        if p >= self.end {
            return Ok(None);
        }
        let b = self.lp[p];
        let (elem, len) = if b & 0x80 == 0 {
            (Elem::Int(b as i64), 1)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            (Elem::Str(self.take(p + 1, n)?), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let u = (((b & 0x1f) as i64) << 8) | self.take(p + 1, 1)?[0] as i64;
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            (Elem::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = (((b & 0x0f) as usize) << 8) | self.take(p + 1, 1)?[0] as usize;
            (Elem::Str(self.take(p + 2, n)?), 2 + n)
        } else {
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes(self.take(p + 1, 4)?.try_into().unwrap()) as usize;
                    (Elem::Str(self.take(p + 5, n)?), 5 + n)
                }
                0xf1 => (
                    Elem::Int(i16::from_le_bytes(self.take(p + 1, 2)?.try_into().unwrap()) as i64),
                    3,
                ),
                0xf2 => {
                    let t = self.take(p + 1, 3)?;
                    let v = i32::from_le_bytes([0, t[0], t[1], t[2]]) >> 8;
                    (Elem::Int(v as i64), 4)
                }
                0xf3 => (
                    Elem::Int(i32::from_le_bytes(self.take(p + 1, 4)?.try_into().unwrap()) as i64),
                    5,
                ),
                0xf4 => (
                    Elem::Int(i64::from_le_bytes(self.take(p + 1, 8)?.try_into().unwrap())),
                    9,
                ),
                _ => return Err("invalid listpack encoding".into()),
            }
        };
        let (backlen, n) = backlen_bytes(len);
        let stored = self.take(p + len, n)?;
        if self.deep && stored != &backlen[..n] {
            return Err("listpack element with a wrong back-length".into());
        }
        self.p = p + len + n;
        self.seen += 1;
        Ok(Some(elem))
    }

    /// Ends a walk that has read every element: in deep mode the header's count must match.
    fn finish(&self) -> Result<(), String> {
        let header_count = u16::from_le_bytes([self.lp[4], self.lp[5]]);
        if self.deep && header_count != u16::MAX && header_count as usize != self.seen {
            return Err("listpack element count mismatch".into());
        }
        Ok(())
    }
}

/// Splits a whole listpack into its elements.
fn lp_elements(lp: &[u8], deep: bool) -> Result<Vec<Elem<'_>>, String> {
    let mut it = LpIter::new(lp, deep)?;
    let mut out = Vec::new();
    while let Some(e) = it.next_elem()? {
        out.push(e);
    }
    it.finish()?;
    Ok(out)
}

/// Every element of a listpack as bytes (integers in their decimal form), for the compact
/// hash, sorted set and list encodings.
pub(super) fn listpack_strings(lp: &[u8], deep: bool) -> Result<Vec<Vec<u8>>, String> {
    Ok(lp_elements(lp, deep)?
        .iter()
        .map(|e| e.bytes().into_vec())
        .collect())
}

impl Elem<'_> {
    fn int(&self) -> Result<i64, String> {
        match self {
            Elem::Int(v) => Ok(*v),
            Elem::Str(s) => crate::util::parse_int(s).ok_or_else(|| "expected an integer".into()),
        }
    }
    fn bytes(&self) -> Box<[u8]> {
        match self {
            Elem::Int(v) => v.to_string().into_bytes().into(),
            Elem::Str(s) => (*s).into(),
        }
    }
}

/// Reads one node's listpack into (live entries, deleted count, last ID).
#[allow(clippy::type_complexity)]
fn read_node(
    master: StreamId,
    lp: &[u8],
    deep: bool,
) -> Result<(Vec<(StreamId, Fields)>, u64, StreamId), String> {
    let mut it = LpIter::new(lp, deep)?;
    let mut next = || {
        it.next_elem()?
            .ok_or_else(|| "truncated stream listpack".to_string())
    };
    let count = next()?.int()?;
    let deleted = next()?.int()?;
    let nmaster = next()?.int()?;
    if count < 0 || deleted < 0 || nmaster < 0 || nmaster as usize > lp.len() {
        return Err("invalid stream master entry".into());
    }
    let mut master_fields = Vec::with_capacity(nmaster as usize);
    for _ in 0..nmaster {
        master_fields.push(next()?.bytes());
    }
    if next()?.int()? != 0 {
        return Err("invalid master entry terminator".into());
    }
    let mut live = Vec::new();
    let mut seen_deleted = 0u64;
    let mut last = master;
    for _ in 0..count.saturating_add(deleted) {
        let flags = next()?.int()?;
        let ms = master.ms.wrapping_add(next()?.int()? as u64);
        let seq = master.seq.wrapping_add(next()?.int()? as u64);
        let id = StreamId::new(ms, seq);
        let mut fields = Vec::new();
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                fields.push(f.clone());
                fields.push(next()?.bytes());
            }
        } else {
            let n = next()?.int()?;
            if n < 0 || n as usize > lp.len() {
                return Err("invalid field count".into());
            }
            for _ in 0..n * 2 {
                fields.push(next()?.bytes());
            }
        }
        let lp_count = next()?.int()?;
        let want = if flags & FLAG_SAMEFIELDS != 0 {
            3 + master_fields.len() as i64
        } else {
            3 + fields.len() as i64 + 1
        };
        if deep && lp_count != want {
            return Err("stream entry with a wrong element count".into());
        }
        if id < last || (id == last && !(live.is_empty() && seen_deleted == 0)) {
            return Err("stream IDs out of order".into());
        }
        last = id;
        if flags & FLAG_DELETED != 0 {
            seen_deleted += 1;
        } else {
            live.push((id, Fields::new(&fields)));
        }
    }
    if deep {
        if it.next_elem()?.is_some() {
            return Err("trailing listpack elements".into());
        }
        it.finish()?;
    }
    if live.len() as i64 != count || seen_deleted as i64 != deleted {
        return Err("stream node counts do not match".into());
    }
    Ok((live, seen_deleted, last))
}

/// The reading side of `write_stream`: the caller supplies its length and string readers.
pub fn read_stream(
    kind: u8,
    deep: bool,
    length: &mut dyn FnMut() -> Result<u64, String>,
    string: &mut dyn FnMut() -> Result<Vec<u8>, String>,
    raw: &mut dyn FnMut(usize) -> Result<Vec<u8>, String>,
) -> Result<Stream, String> {
    let mut s = Stream::new();
    let nodes = length()?;
    for _ in 0..nodes {
        let key = string()?;
        let key: [u8; 16] = key
            .try_into()
            .map_err(|_| "Stream node key entry is not the size of a stream ID".to_string())?;
        let master = StreamId::decode(&key);
        let lp = string()?;
        let (live, deleted, last) = read_node(master, &lp, deep)
            .map_err(|_| "Stream listpack integrity check failed.".to_string())?;
        if live.is_empty() && deleted == 0 {
            return Err("Empty listpack inside stream".into());
        }
        match s.nodes().keys().next_back() {
            Some(k) if *k == master => return Err("Listpack re-added with existing key".into()),
            Some(k) if *k > master => return Err("Stream listpack integrity check failed.".into()),
            _ => {}
        }
        s.push_node(master, live, deleted, last, lp.len());
    }
    let length_field = length()?;
    if length_field != s.len() {
        return Err("Stream length inconsistent with rax entries".into());
    }
    s.last_id = StreamId::new(length()?, length()?);
    if kind != TYPE_STREAM_LISTPACKS {
        s.first_id = StreamId::new(length()?, length()?);
        s.max_deleted_entry_id = StreamId::new(length()?, length()?);
        s.entries_added = length()?;
    } else {
        s.first_id = s.first_entry().map(|(id, _)| id).unwrap_or_default();
        s.entries_added = s.len();
    }
    let ngroups = length()?;
    for _ in 0..ngroups {
        let name = string()?;
        let last_id = StreamId::new(length()?, length()?);
        let entries_read = if kind != TYPE_STREAM_LISTPACKS {
            length()? as i64
        } else {
            s.estimate_distance(last_id).map_or(-1, |v| v as i64)
        };
        let mut g = Group::new(last_id, entries_read);
        let npel = length()?;
        for _ in 0..npel {
            let id: [u8; 16] = raw(16)?.try_into().expect("16 bytes");
            let t: [u8; 8] = raw(8)?.try_into().expect("8 bytes");
            let count = length()?;
            let previous = g.pel.insert(
                StreamId::decode(&id),
                Nack {
                    consumer: Box::default(),
                    delivery_time_ms: u64::from_le_bytes(t),
                    delivery_count: count,
                },
            );
            if previous.is_some() {
                return Err("Duplicated global PEL entry loading stream consumer group".into());
            }
        }
        // Which global PEL entries a consumer has claimed (a name may be empty).
        let mut owned = std::collections::BTreeSet::new();
        let nconsumers = length()?;
        for _ in 0..nconsumers {
            let cname: Box<[u8]> = string()?.into();
            if g.consumers.contains_key(&cname) {
                return Err("Duplicate stream consumer detected.".into());
            }
            let t: [u8; 8] = raw(8)?.try_into().expect("8 bytes");
            if kind == TYPE_STREAM_LISTPACKS_3 {
                // The active time: ferrodis keeps the seen time only.
                raw(8)?;
            }
            let mut c = Consumer {
                seen_time_ms: u64::from_le_bytes(t),
                pel: Default::default(),
            };
            let n = length()?;
            for _ in 0..n {
                let id: [u8; 16] = raw(16)?.try_into().expect("16 bytes");
                let id = StreamId::decode(&id);
                let nack = g
                    .pel
                    .get_mut(&id)
                    .ok_or("Consumer entry not found in group global PEL")?;
                if !owned.insert(id) {
                    return Err(
                        "Duplicated consumer PEL entry  loading a stream consumer group".into(),
                    );
                }
                nack.consumer = cname.clone();
                c.pel.insert(id);
            }
            g.consumers.insert(cname, c);
        }
        if owned.len() != g.pel.len() {
            return Err("Stream CG PEL entry without consumer".into());
        }
        if s.groups.contains_key(&name[..]) {
            return Err(format!(
                "Duplicated consumer group name {}",
                String::from_utf8_lossy(&name)
            ));
        }
        s.groups.insert(name.into(), g);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_elements_round_trip() {
        let mut w = LpWriter::new();
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            5000,
            -40000,
            1 << 22,
            1 << 30,
            -(1 << 40),
            i64::MIN,
        ];
        for v in ints {
            w.int(v);
        }
        let long = vec![b'x'; 5000];
        w.string(b"abc");
        w.string(&[b'y'; 100]);
        w.string(&long);
        let lp = w.finish();
        let e = lp_elements(&lp, true).unwrap();
        let got: Vec<i64> = e[..ints.len()].iter().map(|x| x.int().unwrap()).collect();
        assert_eq!(got, ints);
        assert_eq!(&*e[ints.len()].bytes(), b"abc");
        assert_eq!(e[ints.len() + 1].bytes().len(), 100);
        assert_eq!(&*e[ints.len() + 2].bytes(), &long[..]);
    }

    #[test]
    fn a_node_reads_back_as_written() {
        let mut s = Stream::new();
        let f = |kv: &[&str]| -> Fields { Fields::new(kv) };
        s.append(StreamId::new(5, 1), f(&["a", "1", "b", "x"]), 100, 4096);
        s.append(StreamId::new(6, 0), f(&["a", "2", "b", "y"]), 100, 4096);
        s.append(StreamId::new(7, 3), f(&["c", "3"]), 100, 4096);
        let master = *s.nodes().keys().next().unwrap();
        let lp = node_listpack(master, s.node_entries(master));
        let (live, deleted, last) = read_node(master, &lp, true).unwrap();
        assert_eq!(deleted, 0);
        assert_eq!(last, StreamId::new(7, 3));
        let want: Vec<_> = s
            .node_entries(master)
            .map(|(k, v)| (k, v.to_owned()))
            .collect();
        assert_eq!(live, want);
    }

    #[test]
    fn a_stream_with_groups_survives_an_rdb_round_trip() {
        use crate::keyspace::stream::Trim;
        use crate::keyspace::{Entry, Value};
        let mut s = Stream::new();
        for i in 1..=7u64 {
            let v = (i * 1000).to_string();
            s.append(StreamId::new(i, i), Fields::new(["f", v.as_str()]), 3, 4096);
        }
        s.delete(StreamId::new(2, 2));
        s.trim(Trim::MaxLen(5), false, 0);
        s.entries_added = 40;
        let mut g = Group::new(StreamId::new(4, 4), 3);
        g.create_consumer(b"alice", 77);
        g.create_consumer(b"idle", 78);
        g.assign(StreamId::new(3, 3), b"alice", 1234, 2);
        g.assign(StreamId::new(4, 4), b"alice", 1235, 1);
        s.groups.insert(b"grp"[..].into(), g);
        s.groups
            .insert(b"empty"[..].into(), Group::new(StreamId::MIN, -1));

        let mut w = super::super::encode::RdbWriter::new();
        w.select_db(0, 1, 0);
        w.entry(b"s", &Entry::new(Value::Stream(Box::new(s.clone())), 0));
        let bytes = w.finish();
        let limits = super::super::decode::LoadLimits {
            set_max_intset_entries: 512,
            hash: crate::keyspace::hash::Limits {
                max_entries: 128,
                max_value: 64,
            },
            zset: crate::keyspace::zset::Limits {
                entries: 128,
                value: 64,
            },
            deep: true,
        };
        let mut loaded = Vec::new();
        super::super::decode::decode(&bytes, limits, 0, |l| loaded.push(l)).unwrap();
        let Value::Stream(back) = &loaded[0].value else {
            panic!("not a stream")
        };
        let all = |s: &Stream| -> Vec<(StreamId, Fields)> {
            s.range(StreamId::MIN, StreamId::MAX, false)
                .map(|(id, f)| (id, f.to_owned()))
                .collect()
        };
        assert_eq!(all(back), all(&s));
        assert_eq!(
            (
                back.last_id,
                back.first_id,
                back.max_deleted_entry_id,
                back.entries_added
            ),
            (
                s.last_id,
                s.first_id,
                s.max_deleted_entry_id,
                s.entries_added
            )
        );
        assert_eq!(back.groups, s.groups);
        assert_eq!(
            back.nodes().keys().collect::<Vec<_>>(),
            s.nodes().keys().collect::<Vec<_>>()
        );
    }
}

//! Streams in RDB files: the STREAM_LISTPACKS_2 type (19) Redis 7.0 writes, and the older
//! STREAM_LISTPACKS (15) on reading. A stream is saved as its radix tree of listpack nodes
//! (16-byte big-endian master ID, then the listpack in Redis's stream layout: a master entry
//! with the live and deleted counts and the master field names, then each entry as flags,
//! ID deltas, optional field names, values and a back-count), followed by the counters and
//! the consumer groups with their pending entries and consumers.
//!
//! Entries flagged deleted are not kept in memory, so the writer saves live entries only
//! (deleted count 0); the reader skips flagged entries and remembers how many there were.

use super::listpack::{LpIter, LpWriter};
use crate::keyspace::stream::{Consumer, Fields, FieldsRef, Group, Nack, Stream, StreamId};

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
/// Redis 7.2 (RDB 11): consumers also carry their last active time.
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

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
            deep: true,
            ..Default::default()
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

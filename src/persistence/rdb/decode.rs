//! Reading RDB files, total and bounded: every length is checked against the bytes that are
//! left before anything is allocated, and any malformed input is an error, never a panic.
//! This reader understands what `encode` writes (the plain STRING, LIST, SET, ZSET, ZSET_2
//! and HASH types with the integer string encodings) plus the opcodes any Redis 7.0 file
//! carries; the compact listpack/intset/ziplist types and LZF strings come with full RDB
//! support.

use super::crc64;
use super::encode::{
    OPCODE_AUX, OPCODE_EOF, OPCODE_EXPIRETIME_MS, OPCODE_RESIZEDB, OPCODE_SELECTDB, TYPE_HASH,
    TYPE_LIST, TYPE_SET, TYPE_STRING, TYPE_ZSET_2,
};
use crate::keyspace::hash::{self, Hash};
use crate::keyspace::list::List;
use crate::keyspace::set::Set;
use crate::keyspace::zset::{self, Item, ZSet};
use crate::keyspace::{StrValue, Value};

const OPCODE_FUNCTION2: u8 = 0xf5;
/// The function format of Redis 7.0 release candidates.
const OPCODE_FUNCTION: u8 = 0xf6;
const OPCODE_MODULE_AUX: u8 = 0xf7;
const OPCODE_IDLE: u8 = 0xf8;
const OPCODE_FREQ: u8 = 0xf9;
const OPCODE_EXPIRETIME: u8 = 0xfd;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH_ZIPMAP: u8 = 9;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// Quicklist node containers.
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;
/// LZF cannot expand by more than this (a 2-byte back reference yields at most 264 bytes).
const LZF_MAX_RATIO: u64 = 140;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, RdbError> {
    Err(RdbError(msg.into()))
}

/// The encoding thresholds that decide how loaded collections are stored.
#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    pub set_max_intset_entries: usize,
    pub hash: hash::Limits,
    pub zset: zset::Limits,
}

impl LoadLimits {
    /// The encoding limits the configuration sets (what a loaded value is converted to).
    pub fn from_config(config: &crate::config::Config) -> LoadLimits {
        LoadLimits {
            set_max_intset_entries: config.set_max_intset_entries,
            hash: hash::Limits {
                max_entries: config.hash_max_listpack_entries,
                max_value: config.hash_max_listpack_value,
            },
            zset: zset::Limits {
                entries: config.zset_max_listpack_entries,
                value: config.zset_max_listpack_value,
            },
        }
    }
}

/// One loaded key.
#[derive(Debug)]
pub struct Loaded {
    pub db: usize,
    pub key: Vec<u8>,
    pub value: Value,
    /// Absolute expiry in Unix milliseconds, 0 for none.
    pub expire_at_ms: u64,
    /// How far into the file this key's record ends (loading progress).
    pub end: usize,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if self.buf.len() - self.pos < n {
            return err("unexpected end of file");
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    /// A length, or the special string encoding it announces (`Err(kind)` in the inner
    /// result).
    fn length_or_encoding(&mut self) -> Result<Result<u64, u8>, RdbError> {
        let first = self.byte()?;
        Ok(match first >> 6 {
            0 => Ok((first & 0x3f) as u64),
            1 => Ok((((first & 0x3f) as u64) << 8) | self.byte()? as u64),
            2 => match first {
                0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()) as u64),
                0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap())),
                _ => return err("invalid length encoding"),
            },
            _ => Err(first & 0x3f),
        })
    }

    fn length(&mut self) -> Result<u64, RdbError> {
        match self.length_or_encoding()? {
            Ok(n) => Ok(n),
            Err(_) => err("a string encoding where a length was expected"),
        }
    }

    /// A count of elements, each needing at least `min_bytes`: refused if the rest of the
    /// file cannot hold that many, so no allocation is ever sized by a hostile number.
    fn count(&mut self, min_bytes: usize) -> Result<usize, RdbError> {
        let n = self.length()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes as u64) > left {
            return err("element count larger than the file");
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        match self.length_or_encoding()? {
            Ok(n) => {
                if n > (self.buf.len() - self.pos) as u64 {
                    return err("string longer than the file");
                }
                Ok(self.take(n as usize)?.to_vec())
            }
            Err(0) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Err(1) => Ok(i16::from_le_bytes(self.take(2)?.try_into().unwrap())
                .to_string()
                .into_bytes()),
            Err(2) => Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap())
                .to_string()
                .into_bytes()),
            Err(3) => {
                let compressed = self.length()?;
                let len = self.length()?;
                if compressed > (self.buf.len() - self.pos) as u64
                    || len > compressed.saturating_mul(LZF_MAX_RATIO)
                {
                    return err("bad LZF string lengths");
                }
                let input = self.take(compressed as usize)?;
                super::lzf::decompress(input, len as usize).map_err(RdbError)
            }
            Err(_) => err("unknown string encoding"),
        }
    }

    fn binary_double(&mut self) -> Result<f64, RdbError> {
        let v = f64::from_le_bytes(self.take(8)?.try_into().unwrap());
        if v.is_nan() {
            return err("NaN score");
        }
        Ok(v)
    }

    /// The old text score format of ZSET: a length byte (253 NaN, 254 +inf, 255 -inf).
    fn text_double(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            253 => err("NaN score"),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(n as usize)?;
                crate::util::parse_f64(text).ok_or_else(|| RdbError("invalid score".into()))
            }
        }
    }
}

/// Reads a whole file, handing each live key to `sink`. Keys whose expiry is at or before
/// `now_ms` are skipped, as a primary does when loading.
pub fn decode(
    bytes: &[u8],
    limits: LoadLimits,
    now_ms: u64,
    sink: impl FnMut(Loaded),
) -> Result<(), RdbError> {
    decode_with_aux(bytes, limits, now_ms, |_, _| {}, sink)
}

/// `decode`, also handing each auxiliary field (`redis-ver`, `ctime`, ...) to `aux`.
pub fn decode_with_aux(
    bytes: &[u8],
    limits: LoadLimits,
    now_ms: u64,
    aux: impl FnMut(&[u8], &[u8]),
    sink: impl FnMut(Loaded),
) -> Result<(), RdbError> {
    decode_all(bytes, limits, now_ms, aux, |_| {}, sink)
}

/// `decode_with_aux`, also handing each function library's source (FUNCTION2 record) to
/// `functions`.
pub fn decode_all(
    bytes: &[u8],
    limits: LoadLimits,
    now_ms: u64,
    mut aux: impl FnMut(&[u8], &[u8]),
    mut functions: impl FnMut(Vec<u8>),
    mut sink: impl FnMut(Loaded),
) -> Result<(), RdbError> {
    if bytes.len() < 9 || &bytes[..5] != b"REDIS" {
        return err("wrong signature");
    }
    let version = std::str::from_utf8(&bytes[5..9])
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| RdbError("bad version".into()))?;
    if !(1..=super::RDB_VERSION).contains(&version) {
        return err(format!("can't handle RDB format version {version}"));
    }
    let mut r = Reader { buf: bytes, pos: 9 };
    let mut db = 0usize;
    let mut expire_at_ms = 0u64;
    loop {
        let op = r.byte()?;
        match op {
            OPCODE_EOF => break,
            OPCODE_AUX => {
                let key = r.string()?;
                let value = r.string()?;
                aux(&key, &value);
            }
            OPCODE_RESIZEDB => {
                r.length()?;
                r.length()?;
            }
            OPCODE_SELECTDB => {
                db = usize::try_from(r.length()?).map_err(|_| RdbError("bad db".into()))?;
            }
            OPCODE_EXPIRETIME_MS => {
                expire_at_ms = u64::from_le_bytes(r.take(8)?.try_into().unwrap());
            }
            OPCODE_EXPIRETIME => {
                expire_at_ms = u32::from_le_bytes(r.take(4)?.try_into().unwrap()) as u64 * 1000;
            }
            OPCODE_IDLE => {
                r.length()?;
            }
            OPCODE_FREQ => {
                r.byte()?;
            }
            OPCODE_FUNCTION2 => functions(r.string()?),
            OPCODE_FUNCTION => return err("pre-release function format is not supported"),
            OPCODE_MODULE_AUX => {
                return err("module data is not supported");
            }
            kind => {
                let key = r.string()?;
                let value = read_value(&mut r, kind, limits)?;
                let expiry = std::mem::take(&mut expire_at_ms);
                if expiry == 0 || expiry > now_ms {
                    sink(Loaded {
                        db,
                        key,
                        value,
                        expire_at_ms: expiry,
                        end: r.pos,
                    });
                }
            }
        }
    }
    if version >= 5 {
        let body_len = r.pos;
        let stored = u64::from_le_bytes(
            r.take(8)?
                .try_into()
                .map_err(|_| RdbError("short checksum".into()))?,
        );
        if stored != 0 && stored != crc64::update(0, &bytes[..body_len]) {
            // Redis's words for it, which its tests look for in the log.
            return err("RDB CRC error");
        }
    }
    Ok(())
}

/// Why RESTORE refused a payload: its footer (the two errors Redis tells apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpError {
    /// Too short, from a newer RDB version, or the CRC-64 does not match.
    VersionOrChecksum,
    /// The footer is right but the value does not parse.
    BadData,
}

/// Reads a DUMP payload: an RDB object (type byte and value), the producer's RDB version (u16
/// little endian) and the CRC-64 of everything before it. Bytes after the value and before the
/// footer are ignored, as Redis does.
pub fn decode_dump(payload: &[u8], limits: LoadLimits) -> Result<Value, DumpError> {
    if payload.len() < 10 {
        return Err(DumpError::VersionOrChecksum);
    }
    let footer = payload.len() - 10;
    let version = u16::from_le_bytes([payload[footer], payload[footer + 1]]);
    let crc = u64::from_le_bytes(payload[footer + 2..].try_into().unwrap_or([0; 8]));
    if u32::from(version) > super::RDB_VERSION || crc != crc64::update(0, &payload[..footer + 2]) {
        return Err(DumpError::VersionOrChecksum);
    }
    let body = &payload[..footer];
    let mut r = Reader { buf: body, pos: 0 };
    let kind = r.byte().map_err(|_| DumpError::BadData)?;
    read_value(&mut r, kind, limits).map_err(|_| DumpError::BadData)
}

/// Reads a FUNCTION DUMP payload: the library sources of its FUNCTION2 records. The error is
/// FUNCTION RESTORE's reply text.
pub fn decode_functions(payload: &[u8], skip_checksum: bool) -> Result<Vec<Vec<u8>>, String> {
    let bad_footer = || "DUMP payload version or checksum are wrong".to_string();
    if payload.len() < 10 {
        return Err(bad_footer());
    }
    let footer = payload.len() - 10;
    let version = u16::from_le_bytes([payload[footer], payload[footer + 1]]);
    let crc = u64::from_le_bytes(payload[footer + 2..].try_into().unwrap_or([0; 8]));
    if u32::from(version) > super::RDB_VERSION
        || (!skip_checksum && crc != crc64::update(0, &payload[..footer + 2]))
    {
        return Err(bad_footer());
    }
    let mut r = Reader {
        buf: &payload[..footer],
        pos: 0,
    };
    let mut out = Vec::new();
    while r.pos < footer {
        let kind = r.byte().map_err(|_| "can not read data type".to_string())?;
        if kind != OPCODE_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        out.push(
            r.string()
                .map_err(|_| "Failed loading library payload".to_string())?,
        );
    }
    Ok(out)
}

fn read_value(r: &mut Reader, kind: u8, limits: LoadLimits) -> Result<Value, RdbError> {
    Ok(match kind {
        TYPE_STRING => Value::Str(StrValue::from_bytes(&r.string()?)),
        TYPE_LIST => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.string()?);
            }
            if items.is_empty() {
                return err("empty list");
            }
            Value::List(Box::new(List::from_items(items)))
        }
        TYPE_SET => {
            let n = r.count(1)?;
            let mut set: Option<Set> = None;
            for _ in 0..n {
                let m = r.string()?;
                let s = set.get_or_insert_with(|| Set::new_for(&m));
                if !s.insert(&m, limits.set_max_intset_entries) {
                    return err("duplicate set members detected");
                }
            }
            Value::Set(Box::new(set.ok_or_else(|| RdbError("empty set".into()))?))
        }
        TYPE_HASH => {
            let n = r.count(2)?;
            let mut hash = Hash::new();
            for _ in 0..n {
                let field = r.string()?;
                let value = r.string()?;
                if !hash.set(&field, &value, limits.hash) {
                    return err("duplicate hash fields detected");
                }
            }
            if hash.is_empty() {
                return err("empty hash");
            }
            Value::Hash(hash)
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.count(2)?;
            let mut items = Vec::with_capacity(n);
            let mut seen = std::collections::HashSet::with_capacity(n);
            for _ in 0..n {
                let member = r.string()?;
                let score = if kind == TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                if !seen.insert(member.clone()) {
                    return err("duplicate zset fields detected");
                }
                items.push(Item {
                    score,
                    member: member.into(),
                });
            }
            if items.is_empty() {
                return err("empty sorted set");
            }
            Value::ZSet(crate::keyspace::zset::Stored::new(ZSet::from_items(
                items,
                limits.zset,
            )))
        }
        super::stream::TYPE_STREAM_LISTPACKS | super::stream::TYPE_STREAM_LISTPACKS_2 => {
            let cell = std::cell::RefCell::new(r);
            let stream = super::stream::read_stream(
                kind,
                &mut || cell.borrow_mut().length().map_err(|e| e.0),
                &mut || cell.borrow_mut().string().map_err(|e| e.0),
                &mut |n| {
                    cell.borrow_mut()
                        .take(n)
                        .map(<[u8]>::to_vec)
                        .map_err(|e| e.0)
                },
            )
            .map_err(RdbError)?;
            Value::Stream(Box::new(stream))
        }
        TYPE_SET_INTSET => {
            let blob = r.string()?;
            let members = intset_members(&blob)?;
            let mut set: Option<Set> = None;
            for m in members {
                let m = m.to_string().into_bytes();
                let s = set.get_or_insert_with(|| Set::new_for(&m));
                if !s.insert(&m, limits.set_max_intset_entries) {
                    return err("duplicate set members detected");
                }
            }
            Value::Set(Box::new(set.ok_or_else(|| RdbError("empty set".into()))?))
        }
        TYPE_HASH_LISTPACK | TYPE_HASH_ZIPLIST | TYPE_HASH_ZIPMAP => {
            let blob = r.string()?;
            let items = match kind {
                TYPE_HASH_LISTPACK => super::stream::listpack_strings(&blob),
                TYPE_HASH_ZIPLIST => super::ziplist::ziplist_strings(&blob),
                _ => super::ziplist::zipmap_strings(&blob),
            }
            .map_err(RdbError)?;
            if items.is_empty() || items.len() % 2 != 0 {
                return err("bad hash listpack");
            }
            let mut hash = Hash::new();
            for pair in items.chunks(2) {
                if !hash.set(&pair[0], &pair[1], limits.hash) {
                    return err("duplicate hash fields detected");
                }
            }
            Value::Hash(hash)
        }
        TYPE_ZSET_LISTPACK | TYPE_ZSET_ZIPLIST => {
            let blob = r.string()?;
            let items = match kind {
                TYPE_ZSET_LISTPACK => super::stream::listpack_strings(&blob),
                _ => super::ziplist::ziplist_strings(&blob),
            }
            .map_err(RdbError)?;
            if items.is_empty() || items.len() % 2 != 0 {
                return err("bad sorted set listpack");
            }
            let mut seen = std::collections::HashSet::with_capacity(items.len() / 2);
            let mut out = Vec::with_capacity(items.len() / 2);
            for pair in items.chunks(2) {
                let score = crate::util::parse_f64(&pair[1])
                    .filter(|s| !s.is_nan())
                    .ok_or_else(|| RdbError("invalid score".into()))?;
                if !seen.insert(pair[0].clone()) {
                    return err("duplicate zset fields detected");
                }
                out.push(Item {
                    score,
                    member: pair[0].clone().into(),
                });
            }
            Value::ZSet(crate::keyspace::zset::Stored::new(ZSet::from_items(
                out,
                limits.zset,
            )))
        }
        TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.count(2)?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = r.length()?;
                let blob = r.string()?;
                match container {
                    QUICKLIST_NODE_PLAIN => items.push(blob),
                    QUICKLIST_NODE_PACKED => {
                        items.extend(super::stream::listpack_strings(&blob).map_err(RdbError)?)
                    }
                    _ => return err("unknown quicklist node container"),
                }
            }
            if items.is_empty() {
                return err("empty list");
            }
            Value::List(Box::new(List::from_items(items)))
        }
        TYPE_LIST_ZIPLIST | TYPE_LIST_QUICKLIST => {
            // A ziplist list is one ziplist; an RDB 9 quicklist a count of them.
            let nodes = match kind {
                TYPE_LIST_ZIPLIST => 1,
                _ => r.count(1)?,
            };
            let mut items = Vec::new();
            for _ in 0..nodes {
                items.extend(super::ziplist::ziplist_strings(&r.string()?).map_err(RdbError)?);
            }
            if items.is_empty() {
                return err("empty list");
            }
            Value::List(Box::new(List::from_items(items)))
        }
        other => return err(format!("unsupported value type {other}")),
    })
}

/// The members of an intset blob: a little-endian header (element width 2, 4 or 8, then
/// the count) followed by the sorted elements.
fn intset_members(blob: &[u8]) -> Result<Vec<i64>, RdbError> {
    if blob.len() < 8 {
        return err("short intset");
    }
    let width = u32::from_le_bytes(blob[..4].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().unwrap()) as usize;
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != Some(blob.len() - 8) {
        return err("bad intset");
    }
    Ok(blob[8..]
        .chunks(width)
        .map(|c| match width {
            2 => i16::from_le_bytes(c.try_into().unwrap()) as i64,
            4 => i32::from_le_bytes(c.try_into().unwrap()) as i64,
            _ => i64::from_le_bytes(c.try_into().unwrap()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::encode::RdbWriter;
    use super::*;
    use crate::keyspace::Entry;

    fn limits() -> LoadLimits {
        LoadLimits {
            set_max_intset_entries: 512,
            hash: hash::Limits {
                max_entries: 128,
                max_value: 64,
            },
            zset: zset::Limits {
                entries: 128,
                value: 64,
            },
        }
    }

    fn load(bytes: &[u8]) -> Result<Vec<Loaded>, RdbError> {
        let mut out = Vec::new();
        decode(bytes, limits(), 1000, |l| out.push(l))?;
        Ok(out)
    }

    #[test]
    fn round_trips_every_type_with_expiry_and_databases() {
        let mut w = RdbWriter::new();
        w.aux("redis-ver", b"7.0.15");
        w.select_db(0, 2, 1);
        let mut e = Entry::new(Value::Str(StrValue::from_bytes(b"12345")), 0);
        e.expire_at_ms = 5000;
        w.entry(b"n", &e);
        w.entry(
            b"l",
            &Entry::new(Value::List(Box::new(List::from_items(["a", "-7", "c"]))), 0),
        );
        w.select_db(3, 1, 0);
        let mut z = Vec::new();
        for (m, s) in [("x", 1.5), ("y", -2.0)] {
            z.push(Item {
                score: s,
                member: m.as_bytes().into(),
            });
        }
        w.entry(
            b"z",
            &Entry::new(
                Value::ZSet(crate::keyspace::zset::Stored::new(ZSet::from_items(
                    z,
                    limits().zset,
                ))),
                0,
            ),
        );
        let bytes = w.finish();
        let got = load(&bytes).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].db, &got[0].key[..], got[0].expire_at_ms),
            (0, &b"n"[..], 5000)
        );
        assert_eq!(got[0].value, Value::Str(StrValue::Int(12345)));
        match &got[1].value {
            Value::List(l) => assert_eq!(l.iter().collect::<Vec<_>>(), [&b"a"[..], b"-7", b"c"]),
            _ => panic!("not a list"),
        }
        assert_eq!(got[2].db, 3);
        match &got[2].value {
            Value::ZSet(z) => assert_eq!(z.score(b"y"), Some(-2.0)),
            _ => panic!("not a zset"),
        }
    }

    #[test]
    fn expired_keys_are_skipped() {
        let mut w = RdbWriter::new();
        w.select_db(0, 1, 1);
        let mut e = Entry::new(Value::Str(StrValue::from_bytes(b"v")), 0);
        e.expire_at_ms = 999;
        w.entry(b"old", &e);
        assert!(load(&w.finish()).unwrap().is_empty());
    }

    #[test]
    fn corrupt_input_is_an_error_never_a_panic() {
        let mut w = RdbWriter::new();
        w.select_db(0, 1, 0);
        w.entry(
            b"l",
            &Entry::new(Value::List(Box::new(List::from_items(["a", "b"]))), 0),
        );
        let good = w.finish();
        assert!(load(&good).is_ok());
        let mut bad_crc = good.clone();
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 1;
        assert_eq!(load(&bad_crc).unwrap_err().0, "RDB CRC error");
        for cut in 0..good.len() - 1 {
            assert!(load(&good[..cut]).is_err(), "cut at {cut}");
        }
        // Every single-byte change is either rejected or loads something; none panics.
        for i in 0..good.len() {
            for b in [0u8, 0x3f, 0x80, 0xc3, 0xff] {
                let mut m = good.clone();
                m[i] = b;
                let _ = load(&m);
            }
        }
        // A huge announced count with no bytes behind it is refused before allocating.
        let mut huge = b"REDIS0010".to_vec();
        huge.extend_from_slice(&[TYPE_LIST, 1, b'k', 0x81, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(load(&huge).is_err());
    }
}

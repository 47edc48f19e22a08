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
/// Redis 7.2 (RDB 11): a set as a listpack of its members.
const TYPE_SET_LISTPACK: u8 = 20;
/// Quicklist node containers.
const QUICKLIST_NODE_PLAIN: u64 = 1;
const QUICKLIST_NODE_PACKED: u64 = 2;
/// LZF cannot expand by more than this (a 2-byte back reference yields at most 264 bytes).
const LZF_MAX_RATIO: u64 = 140;

/// Why a file could not be read: Redis's words for the fault (its tests look for them in the
/// log) and the byte offset of the reader when it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub reason: String,
    pub offset: u64,
    /// The key whose value was being read, and its type byte.
    pub key: Option<Vec<u8>>,
    pub kind: Option<u8>,
}

impl RdbError {
    pub fn new(reason: impl Into<String>) -> RdbError {
        RdbError {
            reason: reason.into(),
            offset: 0,
            key: None,
            kind: None,
        }
    }

    fn at(mut self, offset: usize) -> RdbError {
        if self.offset == 0 {
            self.offset = offset as u64;
        }
        self
    }
}

impl std::fmt::Display for RdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, RdbError> {
    Err(RdbError::new(msg))
}

/// Redis's reason for a compact blob that fails its integrity check, by value type.
fn integrity<T>(what: &str) -> Result<T, RdbError> {
    err(format!("{what} integrity check failed."))
}

/// How loaded values are read: the encoding thresholds that decide how collections are
/// stored, and whether listpacks get Redis's deep integrity check (`sanitize-dump-payload`).
/// Without it, the fields a forward walk does not need (back-lengths, header counts, a stream
/// entry's element count, anything after a stream node's last counted entry) are not checked;
/// everything that is read is still bounded and validated.
#[derive(Clone, Copy, Debug)]
pub struct LoadLimits {
    pub set_max_intset_entries: usize,
    pub hash: hash::Limits,
    pub zset: zset::Limits,
    pub deep: bool,
}

impl Default for LoadLimits {
    /// Redis's default limits, with the shallow check of its default `sanitize-dump-payload`.
    fn default() -> LoadLimits {
        LoadLimits::from_config(&crate::config::Config::default())
    }
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
            deep: config.sanitize_dump_payload == crate::config::values::SanitizeDumpPayload::Yes,
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
    /// Compact blobs given the deep check so far (INFO `dump_payload_sanitizations`).
    deep_checked: u64,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if self.buf.len() - self.pos < n {
            return err("Unexpected EOF reading RDB file");
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
                _ => {
                    return err(format!(
                        "Unknown length encoding {} in rdbLoadLen()",
                        first & 0x3f
                    ))
                }
            },
            _ => Err(first & 0x3f),
        })
    }

    fn length(&mut self) -> Result<u64, RdbError> {
        match self.length_or_encoding()? {
            Ok(n) => Ok(n),
            Err(kind) => err(format!("Unknown length encoding {kind} in rdbLoadLen()")),
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
                    return err("Unexpected EOF reading RDB file");
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
                    return err("Invalid LZF compressed string");
                }
                let input = self.take(compressed as usize)?;
                super::lzf::decompress(input, len as usize)
                    .map_err(|_| RdbError::new("Invalid LZF compressed string"))
            }
            Err(kind) => err(format!("Unknown RDB string encoding type {kind}")),
        }
    }

    fn binary_double(&mut self) -> Result<f64, RdbError> {
        let v = f64::from_le_bytes(self.take(8)?.try_into().unwrap());
        if v.is_nan() {
            return err("Zset with NAN score detected");
        }
        Ok(v)
    }

    /// The old text score format of ZSET: a length byte (253 NaN, 254 +inf, 255 -inf).
    fn text_double(&mut self) -> Result<f64, RdbError> {
        match self.byte()? {
            253 => err("Zset with NAN score detected"),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let text = self.take(n as usize)?;
                crate::util::parse_f64(text).ok_or_else(|| RdbError::new("Invalid double value"))
            }
        }
    }
}

/// What a whole-file read found besides the keys.
#[derive(Debug, Default)]
pub struct Summary {
    /// How many keys held a collection with no element (skipped, as Redis does), and the
    /// first few of them (Redis names up to ten in its log).
    pub empty_keys: u64,
    pub first_empty_keys: Vec<Vec<u8>>,
    /// Compact blobs given the deep check (`sanitize-dump-payload yes`).
    pub deep_checked: u64,
}

/// One step of reading a file, in file order.
#[derive(Debug)]
pub enum Event<'a> {
    Aux(&'a [u8], &'a [u8]),
    SelectDb(usize),
    /// A function library's source (FUNCTION2 record).
    Function(Vec<u8>),
    Key(Loaded),
    /// A collection with no element: skipped, not loaded.
    EmptyKey {
        db: usize,
        key: Vec<u8>,
    },
    /// The end of the file was reached and its checksum verified; `disabled` when the file was
    /// saved without one.
    Checksum {
        disabled: bool,
    },
}

/// Reads a whole file, handing each live key to `sink`. Keys whose expiry is at or before
/// `now_ms` are skipped, as a primary does when loading.
pub fn decode(
    bytes: &[u8],
    limits: LoadLimits,
    now_ms: u64,
    sink: impl FnMut(Loaded),
) -> Result<Summary, RdbError> {
    decode_with_aux(bytes, limits, now_ms, |_, _| {}, sink)
}

/// `decode`, also handing each auxiliary field (`redis-ver`, `ctime`, ...) to `aux`.
pub fn decode_with_aux(
    bytes: &[u8],
    limits: LoadLimits,
    now_ms: u64,
    aux: impl FnMut(&[u8], &[u8]),
    sink: impl FnMut(Loaded),
) -> Result<Summary, RdbError> {
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
) -> Result<Summary, RdbError> {
    let mut summary = Summary::default();
    let deep_checked = decode_events(bytes, limits, &mut |_, event| match event {
        Event::Aux(k, v) => aux(k, v),
        Event::Function(f) => functions(f),
        Event::Key(l) => {
            if l.expire_at_ms == 0 || l.expire_at_ms > now_ms {
                sink(l)
            }
        }
        Event::EmptyKey { key, .. } => {
            summary.empty_keys += 1;
            if summary.first_empty_keys.len() < 10 {
                summary.first_empty_keys.push(key);
            }
        }
        Event::SelectDb(_) | Event::Checksum { .. } => {}
    })?;
    summary.deep_checked = deep_checked;
    Ok(summary)
}

/// The highest RDB version a file may have (Redis 7.2's); DUMP payloads stop at the version
/// Redis 7.0 writes, as 7.0 refuses newer ones.
const MAX_FILE_VERSION: u32 = 11;

/// Reads a whole file step by step, handing `visit` each event with the offset it ends at.
/// Errors carry the offset, and the key and type being read when they happened. Returns how
/// many compact blobs were given the deep check.
pub fn decode_events(
    bytes: &[u8],
    limits: LoadLimits,
    visit: &mut dyn FnMut(usize, Event<'_>),
) -> Result<u64, RdbError> {
    if bytes.len() < 9 || &bytes[..5] != b"REDIS" {
        return err("Wrong signature trying to load DB from file");
    }
    let version = std::str::from_utf8(&bytes[5..9])
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| RdbError::new("Can't handle RDB format version"))?;
    if !(1..=MAX_FILE_VERSION).contains(&version) {
        return err(format!("Can't handle RDB format version {version}"));
    }
    let mut r = Reader {
        buf: bytes,
        pos: 9,
        deep_checked: 0,
    };
    let mut db = 0usize;
    let mut expire_at_ms = 0u64;
    loop {
        let op = r.byte().map_err(|e| e.at(r.pos))?;
        let step = (|| -> Result<bool, RdbError> {
            match op {
                OPCODE_EOF => return Ok(false),
                OPCODE_AUX => {
                    let key = r.string()?;
                    let value = r.string()?;
                    visit(r.pos, Event::Aux(&key, &value));
                }
                OPCODE_RESIZEDB => {
                    r.length()?;
                    r.length()?;
                }
                OPCODE_SELECTDB => {
                    db = usize::try_from(r.length()?)
                        .map_err(|_| RdbError::new("Invalid DB number"))?;
                    visit(r.pos, Event::SelectDb(db));
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
                OPCODE_FUNCTION2 => {
                    let source = r.string()?;
                    visit(r.pos, Event::Function(source));
                }
                OPCODE_FUNCTION => return err("Pre-release function format not supported."),
                OPCODE_MODULE_AUX => return err("module data is not supported"),
                kind => {
                    let key = r.string()?;
                    let expiry = std::mem::take(&mut expire_at_ms);
                    match read_value(&mut r, kind, limits) {
                        Ok(Some(value)) => visit(
                            r.pos,
                            Event::Key(Loaded {
                                db,
                                key,
                                value,
                                expire_at_ms: expiry,
                                end: r.pos,
                            }),
                        ),
                        Ok(None) => visit(r.pos, Event::EmptyKey { db, key }),
                        Err(mut e) => {
                            e.offset = r.pos as u64;
                            e.key = Some(key);
                            e.kind = Some(kind);
                            return Err(e);
                        }
                    }
                }
            }
            Ok(true)
        })();
        if !step.map_err(|e| e.at(r.pos))? {
            break;
        }
    }
    if version >= 5 {
        let body_len = r.pos;
        let stored = u64::from_le_bytes(r.take(8).map_err(|e| e.at(body_len))?.try_into().unwrap());
        if stored != 0 && stored != crc64::update(0, &bytes[..body_len]) {
            // Redis's words for it, which its tests look for in the log.
            return Err(RdbError::new("RDB CRC error").at(r.pos));
        }
        visit(
            r.pos,
            Event::Checksum {
                disabled: stored == 0,
            },
        );
    }
    Ok(r.deep_checked)
}

/// Why RESTORE refused a payload: its footer (the two errors Redis tells apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpError {
    /// Too short, from a newer RDB version, or the CRC-64 does not match.
    VersionOrChecksum,
    /// The footer is right but the value does not parse (or holds no element); the reason, if
    /// any, is what Redis logs for it.
    BadData(Option<RdbError>),
}

/// Reads a DUMP payload: an RDB object (type byte and value), the producer's RDB version (u16
/// little endian) and the CRC-64 of everything before it. Bytes after the value and before the
/// footer are ignored, as Redis does. `skip_checksum` is DEBUG SET-SKIP-CHECKSUM-VALIDATION.
/// The value is always checked in full (Redis's `sanitize-dump-payload yes`): ferrodis keeps
/// no compact blob it has not walked. With the value, how many compact blobs were given the
/// deep check.
pub fn decode_dump(
    payload: &[u8],
    limits: LoadLimits,
    skip_checksum: bool,
) -> Result<(Value, u64), DumpError> {
    if payload.len() < 10 {
        return Err(DumpError::VersionOrChecksum);
    }
    let footer = payload.len() - 10;
    let version = u16::from_le_bytes([payload[footer], payload[footer + 1]]);
    let crc = u64::from_le_bytes(payload[footer + 2..].try_into().unwrap_or([0; 8]));
    if u32::from(version) > super::RDB_VERSION
        || (!skip_checksum && crc != crc64::update(0, &payload[..footer + 2]))
    {
        return Err(DumpError::VersionOrChecksum);
    }
    let body = &payload[..footer];
    let mut r = Reader {
        buf: body,
        pos: 0,
        deep_checked: 0,
    };
    let kind = r.byte().map_err(|_| DumpError::BadData(None))?;
    match read_value(&mut r, kind, limits) {
        Ok(Some(value)) => Ok((value, r.deep_checked)),
        Ok(None) => Err(DumpError::BadData(None)),
        Err(e) => Err(DumpError::BadData(Some(e.at(r.pos)))),
    }
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
        deep_checked: 0,
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

/// The value of a key of type `kind`, or `None` for a collection with no element (Redis skips
/// such keys in files and refuses them in RESTORE). Compact blobs are walked in full; a fault
/// is reported with Redis's reason for that type.
fn read_value(r: &mut Reader, kind: u8, limits: LoadLimits) -> Result<Option<Value>, RdbError> {
    Ok(Some(match kind {
        TYPE_STRING => Value::Str(StrValue::from_bytes(&r.string()?)),
        TYPE_LIST => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(r.string()?);
            }
            if items.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(List::from_items(items)))
        }
        TYPE_SET => {
            let n = r.count(1)?;
            let members = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
            match collect_set(members, limits) {
                Some(set) => return Ok(set),
                None => return err("Duplicate set members detected"),
            }
        }
        TYPE_HASH => {
            let n = r.count(2)?;
            let mut hash = Hash::new();
            for _ in 0..n {
                let field = r.string()?;
                let value = r.string()?;
                if !hash.set(&field, &value, limits.hash) {
                    return err("Duplicate hash fields detected");
                }
            }
            if hash.is_empty() {
                return Ok(None);
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
                    return err("Duplicate zset fields detected");
                }
                items.push(Item {
                    score,
                    member: member.into(),
                });
            }
            if items.is_empty() {
                return Ok(None);
            }
            Value::ZSet(crate::keyspace::zset::Stored::new(ZSet::from_items(
                items,
                limits.zset,
            )))
        }
        super::stream::TYPE_STREAM_LISTPACKS
        | super::stream::TYPE_STREAM_LISTPACKS_2
        | super::stream::TYPE_STREAM_LISTPACKS_3 => {
            let cell = std::cell::RefCell::new(r);
            let stream = super::stream::read_stream(
                kind,
                limits.deep,
                &mut || cell.borrow_mut().length().map_err(|e| e.reason),
                &mut || cell.borrow_mut().string().map_err(|e| e.reason),
                &mut |n| {
                    cell.borrow_mut()
                        .take(n)
                        .map(<[u8]>::to_vec)
                        .map_err(|e| e.reason)
                },
            )
            .map_err(RdbError::new)?;
            if limits.deep {
                cell.into_inner().deep_checked += stream.nodes().len() as u64;
            }
            Value::Stream(Box::new(stream))
        }
        TYPE_SET_INTSET => {
            let blob = r.string()?;
            let Some(members) = intset_members(&blob) else {
                return integrity("Intset");
            };
            r.deep_checked += u64::from(limits.deep);
            // Strictly ascending, so no duplicates; never empty either.
            let members = members.iter().map(|m| m.to_string().into_bytes());
            match collect_set(members, limits) {
                Some(set) => return Ok(set),
                None => return integrity("Intset"),
            }
        }
        TYPE_SET_LISTPACK => {
            let blob = r.string()?;
            let Ok(members) = super::listpack::listpack_strings(&blob, limits.deep) else {
                return integrity("Set listpack");
            };
            match collect_set(members, limits) {
                Some(set) => return Ok(set),
                None => return integrity("Set listpack"),
            }
        }
        TYPE_HASH_ZIPMAP => {
            let blob = r.string()?;
            let Ok(items) = super::ziplist::zipmap_strings(&blob) else {
                return integrity("Zipmap");
            };
            let mut hash = Hash::new();
            for pair in items.chunks(2) {
                if !hash.set(&pair[0], &pair[1], limits.hash) {
                    return err(format!(
                        "Hash zipmap with dup elements, or big length ({})",
                        pair[0].len()
                    ));
                }
            }
            Value::Hash(hash)
        }
        TYPE_HASH_LISTPACK | TYPE_HASH_ZIPLIST => {
            let what = match kind {
                TYPE_HASH_LISTPACK => "Hash listpack",
                _ => "Hash ziplist",
            };
            let items = compact_pairs(r, kind == TYPE_HASH_LISTPACK, limits.deep, what)?;
            let mut hash = Hash::new();
            for pair in items.chunks(2) {
                if !hash.set(&pair[0], &pair[1], limits.hash) {
                    return integrity(what);
                }
            }
            if hash.is_empty() {
                return Ok(None);
            }
            Value::Hash(hash)
        }
        TYPE_ZSET_LISTPACK | TYPE_ZSET_ZIPLIST => {
            let what = match kind {
                TYPE_ZSET_LISTPACK => "Zset listpack",
                _ => "Zset ziplist",
            };
            let items = compact_pairs(r, kind == TYPE_ZSET_LISTPACK, limits.deep, what)?;
            let mut seen = std::collections::HashSet::with_capacity(items.len() / 2);
            let mut out = Vec::with_capacity(items.len() / 2);
            for pair in items.chunks(2) {
                let Some(score) = crate::util::parse_f64(&pair[1]).filter(|s| !s.is_nan()) else {
                    return integrity(what);
                };
                if !seen.insert(pair[0].clone()) {
                    return integrity(what);
                }
                out.push(Item {
                    score,
                    member: pair[0].clone().into(),
                });
            }
            if out.is_empty() {
                return Ok(None);
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
                if container != QUICKLIST_NODE_PLAIN && container != QUICKLIST_NODE_PACKED {
                    return integrity("Quicklist");
                }
                let blob = r.string()?;
                if blob.is_empty() {
                    return err("Empty quicklist node");
                }
                if container == QUICKLIST_NODE_PLAIN {
                    items.push(blob);
                } else {
                    let Ok(node) = super::listpack::listpack_strings(&blob, limits.deep) else {
                        return integrity("Listpack");
                    };
                    r.deep_checked += u64::from(limits.deep);
                    items.extend(node);
                }
            }
            if items.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(List::from_items(items)))
        }
        TYPE_LIST_QUICKLIST => {
            let nodes = r.count(1)?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let blob = r.string()?;
                if blob.is_empty() {
                    return err("Empty quicklist node");
                }
                let Ok(node) = super::ziplist::ziplist_strings(&blob) else {
                    return integrity("Ziplist");
                };
                items.extend(node);
            }
            if items.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(List::from_items(items)))
        }
        TYPE_LIST_ZIPLIST => {
            let Ok(items) = super::ziplist::ziplist_strings(&r.string()?) else {
                return integrity("List ziplist");
            };
            if items.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(List::from_items(items)))
        }
        other => return err(format!("Unknown RDB encoding type {other}")),
    }))
}

/// A set of `members`, stored as `set-max-intset-entries` decides: `Some(None)` when there
/// are none (an empty key), `None` when a member repeats.
fn collect_set(
    members: impl IntoIterator<Item = Vec<u8>>,
    limits: LoadLimits,
) -> Option<Option<Value>> {
    let mut set: Option<Set> = None;
    for m in members {
        let s = set.get_or_insert_with(|| Set::new_for(&m));
        if !s.insert(&m, limits.set_max_intset_entries) {
            return None;
        }
    }
    Some(set.map(|s| Value::Set(Box::new(s))))
}

/// The elements of a listpack or ziplist blob holding pairs (field/value, member/score): an
/// even number of them, or `what`'s integrity error.
fn compact_pairs(
    r: &mut Reader,
    listpack: bool,
    deep: bool,
    what: &str,
) -> Result<Vec<Vec<u8>>, RdbError> {
    let blob = r.string()?;
    r.deep_checked += u64::from(listpack && deep);
    let items = match listpack {
        true => super::listpack::listpack_strings(&blob, deep),
        false => super::ziplist::ziplist_strings(&blob),
    };
    match items {
        Ok(items) if items.len() % 2 == 0 => Ok(items),
        _ => integrity(what),
    }
}

/// The members of an intset blob: a little-endian header (element width 2, 4 or 8, then
/// the count) followed by the elements, which must be strictly increasing and at least one.
fn intset_members(blob: &[u8]) -> Option<Vec<i64>> {
    if blob.len() < 8 {
        return None;
    }
    let width = u32::from_le_bytes(blob[..4].try_into().unwrap()) as usize;
    let count = u32::from_le_bytes(blob[4..8].try_into().unwrap()) as usize;
    if !matches!(width, 2 | 4 | 8) || count == 0 || count.checked_mul(width) != Some(blob.len() - 8)
    {
        return None;
    }
    let members: Vec<i64> = blob[8..]
        .chunks(width)
        .map(|c| match width {
            2 => i16::from_le_bytes(c.try_into().unwrap()) as i64,
            4 => i32::from_le_bytes(c.try_into().unwrap()) as i64,
            _ => i64::from_le_bytes(c.try_into().unwrap()),
        })
        .collect();
    members.windows(2).all(|w| w[0] < w[1]).then_some(members)
}

#[cfg(test)]
mod tests {
    use super::super::encode::RdbWriter;
    use super::*;
    use crate::keyspace::Entry;

    fn limits() -> LoadLimits {
        LoadLimits {
            deep: true,
            ..LoadLimits::default()
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

    /// A DUMP payload around a raw value (type byte and body) with a correct footer.
    fn payload(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(body);
        out.extend_from_slice(&(super::super::RDB_VERSION as u16).to_le_bytes());
        let crc = crc64::update(0, &out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A hash listpack blob `a`→`1`, `b`→`2` as an RDB string.
    fn hash_listpack() -> Vec<u8> {
        let lp: Vec<u8> = vec![
            17, 0, 0, 0, 4, 0, 0x81, b'a', 2, 1, 1, 0x81, b'b', 2, 2, 1, 0xff,
        ];
        let mut out = vec![lp.len() as u8];
        out.extend_from_slice(&lp);
        out
    }

    fn deep(on: bool) -> LoadLimits {
        LoadLimits {
            deep: on,
            ..limits()
        }
    }

    #[test]
    fn dump_payloads_report_redis_reasons() {
        let good = payload(TYPE_HASH_LISTPACK, &hash_listpack());
        assert!(matches!(
            decode_dump(&good, deep(true), false),
            Ok((Value::Hash(_), 1))
        ));
        // A wrong back-length fails only the deep check; a broken element fails both.
        let mut body = hash_listpack();
        body[9] = 7;
        let bad_backlen = payload(TYPE_HASH_LISTPACK, &body);
        assert!(decode_dump(&bad_backlen, deep(false), false).is_ok());
        let Err(DumpError::BadData(Some(e))) = decode_dump(&bad_backlen, deep(true), false) else {
            panic!("a wrong back-length passed the deep check");
        };
        assert_eq!(e.reason, "Hash listpack integrity check failed.");
        let mut body = hash_listpack();
        body[7] = 0xfc;
        for on in [false, true] {
            assert!(matches!(
                decode_dump(&payload(TYPE_HASH_LISTPACK, &body), deep(on), false),
                Err(DumpError::BadData(Some(_)))
            ));
        }
        // A duplicate field is refused whatever the mode.
        let mut body = hash_listpack();
        body[13] = b'a';
        assert!(decode_dump(&payload(TYPE_HASH_LISTPACK, &body), deep(false), false).is_err());
        // The checksum is skipped only when asked.
        let mut wrong_crc = good.clone();
        *wrong_crc.last_mut().unwrap() ^= 1;
        assert_eq!(
            decode_dump(&wrong_crc, deep(true), false).unwrap_err(),
            DumpError::VersionOrChecksum
        );
        assert!(decode_dump(&wrong_crc, deep(true), true).is_ok());
        // An empty collection is bad data in a payload.
        assert_eq!(
            decode_dump(&payload(TYPE_LIST, &[0]), deep(true), false).unwrap_err(),
            DumpError::BadData(None)
        );
    }

    #[test]
    fn files_skip_empty_keys_and_name_the_key_that_fails() {
        let mut bytes = b"REDIS0010".to_vec();
        bytes.extend_from_slice(&[OPCODE_SELECTDB, 0]);
        bytes.extend_from_slice(&[TYPE_SET, 1, b'e', 0]);
        bytes.extend_from_slice(&[TYPE_STRING, 1, b'k', 1, b'v']);
        bytes.push(OPCODE_EOF);
        bytes.extend_from_slice(&[0; 8]);
        let mut keys = Vec::new();
        let summary = decode(&bytes, limits(), 0, |l| keys.push(l.key)).unwrap();
        assert_eq!(keys, [b"k".to_vec()]);
        assert_eq!(
            (summary.empty_keys, summary.first_empty_keys),
            (1, vec![b"e".to_vec()])
        );

        let mut bad = b"REDIS0010".to_vec();
        bad.extend_from_slice(&[TYPE_SET_INTSET, 3, b'i', b's', b't', 12]);
        // Width 2, two members, out of order.
        bad.extend_from_slice(&[2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 1, 0]);
        bad.push(OPCODE_EOF);
        bad.extend_from_slice(&[0; 8]);
        let e = decode(&bad, limits(), 0, |_| {}).unwrap_err();
        assert_eq!(e.reason, "Intset integrity check failed.");
        assert_eq!(
            (e.key.as_deref(), e.kind),
            (Some(&b"ist"[..]), Some(TYPE_SET_INTSET))
        );
        assert_eq!(e.offset, 27);
    }

    #[test]
    fn version_11_files_with_set_listpacks_load() {
        let mut bytes = b"REDIS0011".to_vec();
        // A set listpack of "a" and 7, then the same key type with a duplicate member.
        let lp = [13, 0, 0, 0, 2, 0, 0x81, b'a', 2, 7, 1, 0xff];
        let mut lp = lp.to_vec();
        lp[0] = lp.len() as u8;
        bytes.extend_from_slice(&[TYPE_SET_LISTPACK, 1, b's', lp.len() as u8]);
        bytes.extend_from_slice(&lp);
        bytes.push(OPCODE_EOF);
        bytes.extend_from_slice(&[0; 8]);
        let got = load(&bytes).unwrap();
        let Value::Set(set) = &got[0].value else {
            panic!("not a set")
        };
        assert_eq!(set.len(), 2);
        let dup = bytes
            .iter()
            .map(|&b| if b == b'a' { b'7' } else { b })
            .collect::<Vec<_>>();
        assert_eq!(
            load(&dup).unwrap_err().reason,
            "Set listpack integrity check failed."
        );
        assert!(load(b"REDIS0012\xff\0\0\0\0\0\0\0\0").is_err());
    }

    proptest::proptest! {
        /// Payloads of every compact type with a few bytes overwritten: the reader returns a
        /// value or an error in both modes, never panics, and what the deep check accepts the
        /// shallow one accepts too.
        #[test]
        fn mutated_compact_payloads_never_panic(
            pick in 0usize..4,
            edits in proptest::collection::vec((0usize..64, 0u8..=255), 1..4),
        ) {
            let (kind, body): (u8, Vec<u8>) = match pick {
                0 => (TYPE_HASH_LISTPACK, hash_listpack()),
                1 => (TYPE_SET_INTSET, vec![14, 2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 3, 0]),
                2 => (TYPE_LIST_QUICKLIST_2, {
                    let mut b = vec![1, 2];
                    b.extend(hash_listpack());
                    b
                }),
                _ => (TYPE_HASH_ZIPMAP, vec![7, 1, 1, b'a', 1, 0, b'x', 0xff]),
            };
            let mut body = body;
            for (at, b) in edits {
                let n = body.len();
                body[at % n] = b;
            }
            let p = payload(kind, &body);
            let deep_ok = decode_dump(&p, deep(true), false).is_ok();
            let shallow_ok = decode_dump(&p, deep(false), false).is_ok();
            proptest::prop_assert!(!deep_ok || shallow_ok);
        }
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
        assert_eq!(load(&bad_crc).unwrap_err().reason, "RDB CRC error");
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

//! Writing RDB version 10. The layout: the `REDIS0010` magic, auxiliary fields, then the function
//! libraries (FUNCTION2 records), then per non-empty database a SELECTDB and RESIZEDB opcode followed by its keys (each optionally
//! preceded by an EXPIRETIME_MS opcode), then EOF and the CRC-64 of everything before it
//! (little endian).
//!
//! Values are written in the types Redis 7.0 writes for them: strings with the integer
//! encodings (and LZF-compressed above 20 bytes with `rdbcompression`), lists as quicklist
//! nodes of listpacks (QUICKLIST_2), intset sets as an intset blob, listpack hashes and sorted
//! sets as one listpack, the big encodings as plain SET, HASH and ZSET_2 records, streams as
//! STREAM_LISTPACKS_2.

use super::crc64;
use super::listpack::{self, LpWriter};
use crate::keyspace::{Entry, StrValue, Value};
use bytes::Bytes;

pub const OPCODE_FUNCTION2: u8 = 0xf5;
pub const OPCODE_AUX: u8 = 0xfa;
pub const OPCODE_RESIZEDB: u8 = 0xfb;
pub const OPCODE_EXPIRETIME_MS: u8 = 0xfc;
pub const OPCODE_SELECTDB: u8 = 0xfe;
pub const OPCODE_EOF: u8 = 0xff;

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;
/// A quicklist node whose string is a listpack.
const QUICKLIST_NODE_PACKED: u64 = 2;
const ENC_LZF: u8 = 0xc3;
/// Strings this long or shorter are never compressed (Redis's threshold).
const LZF_MIN_LEN: usize = 20;

/// How values are written: the settings of the server that writes them.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `rdbcompression`: LZF for strings longer than 20 bytes when it saves space.
    pub compress: bool,
    /// `list-max-listpack-size`: how full a list's quicklist nodes get.
    pub list_max_listpack_size: i64,
}

impl Default for Options {
    /// Redis's defaults.
    fn default() -> Options {
        Options {
            compress: true,
            list_max_listpack_size: -2,
        }
    }
}

impl Options {
    pub fn from_config(config: &crate::config::Config) -> Options {
        Options {
            compress: config.rdbcompression,
            list_max_listpack_size: config.list_max_listpack_size,
        }
    }
}

const ENC_INT8: u8 = 0xc0;
const ENC_INT16: u8 = 0xc1;
const ENC_INT32: u8 = 0xc2;

/// Builds an RDB file in memory.
pub struct RdbWriter {
    out: Vec<u8>,
    opts: Options,
}

impl Default for RdbWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RdbWriter {
    /// Starts a file: the magic string. Values are written with Redis's default options.
    pub fn new() -> RdbWriter {
        RdbWriter::with_options(Options::default())
    }

    /// Starts a file written with `opts`.
    pub fn with_options(opts: Options) -> RdbWriter {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(format!("REDIS{:04}", super::RDB_VERSION).as_bytes());
        RdbWriter { out, opts }
    }

    /// A writer appending to `out`.
    fn onto(out: &mut Vec<u8>, opts: Options) -> RdbWriter {
        RdbWriter {
            out: std::mem::take(out),
            opts,
        }
    }

    /// An auxiliary field (`redis-ver`, `ctime`, ...).
    pub fn aux(&mut self, key: &str, value: &[u8]) {
        self.out.push(OPCODE_AUX);
        self.string(key.as_bytes());
        self.string(value);
    }

    /// A function library: its whole source, shebang line included.
    pub fn function(&mut self, code: &[u8]) {
        self.out.push(OPCODE_FUNCTION2);
        self.string(code);
    }

    /// Starts a database section.
    pub fn select_db(&mut self, db: usize, keys: usize, expires: usize) {
        self.out.push(OPCODE_SELECTDB);
        self.length(db as u64);
        self.out.push(OPCODE_RESIZEDB);
        self.length(keys as u64);
        self.length(expires as u64);
    }

    /// One key with its value and expiry.
    pub fn entry(&mut self, key: &[u8], entry: &Entry) {
        if entry.expire_at_ms != 0 {
            self.out.push(OPCODE_EXPIRETIME_MS);
            self.out
                .extend_from_slice(&entry.expire_at_ms.to_le_bytes());
        }
        self.object(Some(key), &entry.value);
    }

    /// A value's type byte, the key when there is one, and the value's payload.
    fn object(&mut self, key: Option<&[u8]>, value: &Value) {
        let key_then = |w: &mut RdbWriter, kind: u8| {
            w.out.push(kind);
            if let Some(key) = key {
                w.string(key);
            }
        };
        match value {
            Value::Str(s) => {
                key_then(self, TYPE_STRING);
                match s {
                    StrValue::Int(i) => self.integer_string(*i),
                    other => self.string(&other.to_bytes()),
                }
            }
            Value::List(list) => {
                key_then(self, TYPE_LIST_QUICKLIST_2);
                let nodes = quicklist_nodes(list, self.opts.list_max_listpack_size);
                self.length(nodes.len() as u64);
                for node in nodes {
                    self.length(QUICKLIST_NODE_PACKED);
                    self.string(&node);
                }
            }
            Value::Set(set) if set.is_intset() => {
                key_then(self, TYPE_SET_INTSET);
                self.string(&intset_blob(set.intset_members().unwrap_or_default()));
            }
            Value::Set(set) => {
                key_then(self, TYPE_SET);
                self.length(set.len() as u64);
                for member in set.iter() {
                    self.string(&member);
                }
            }
            Value::Hash(hash) if hash.is_listpack() => {
                key_then(self, TYPE_HASH_LISTPACK);
                let mut lp = LpWriter::new();
                for (field, value) in hash.iter() {
                    lp.string(field);
                    lp.string(value);
                }
                self.string(&lp.finish());
            }
            Value::Hash(hash) => {
                key_then(self, TYPE_HASH);
                self.length(hash.len() as u64);
                for (field, value) in hash.iter() {
                    self.string(field);
                    self.string(value);
                }
            }
            Value::ZSet(zset) if zset.view().is_listpack() => {
                let zset = zset.view();
                key_then(self, TYPE_ZSET_LISTPACK);
                let mut lp = LpWriter::new();
                for (member, score) in zset.iter() {
                    lp.string(member);
                    lp.string(listpack_score(score).as_bytes());
                }
                self.string(&lp.finish());
            }
            Value::ZSet(zset) => {
                let zset = zset.view();
                key_then(self, TYPE_ZSET_2);
                self.length(zset.len() as u64);
                // Highest score first, as Redis walks its skiplist when saving.
                for (member, score) in zset.iter().rev() {
                    self.string(member);
                    self.out.extend_from_slice(&score.to_le_bytes());
                }
            }
            Value::Stream(stream) => {
                key_then(self, super::stream::TYPE_STREAM_LISTPACKS_2);
                let opts = self.opts;
                let mut out = std::mem::take(&mut self.out);
                super::stream::write_stream(
                    stream,
                    &mut out,
                    &mut |o, n| RdbWriter::length_to(o, n),
                    &mut |o, s| {
                        let mut w = RdbWriter::onto(o, opts);
                        w.string(s);
                        *o = w.out;
                    },
                );
                self.out = out;
            }
        }
    }

    /// A DUMP payload: the value as an RDB object (type byte and payload, no key), the RDB
    /// version as two little-endian bytes, and the CRC-64 of all of that. Redis computes the
    /// checksum whatever `rdbchecksum` says.
    pub fn dump_payload(value: &Value, opts: Options) -> Vec<u8> {
        let mut w = RdbWriter {
            out: Vec::with_capacity(32),
            opts,
        };
        w.object(None, value);
        w.out
            .extend_from_slice(&(super::RDB_VERSION as u16).to_le_bytes());
        let crc = crc64::update(0, &w.out);
        w.out.extend_from_slice(&crc.to_le_bytes());
        w.out
    }

    /// Ends the file: EOF opcode and checksum.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.push(OPCODE_EOF);
        let crc = crc64::update(0, &self.out);
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out
    }

    /// RDB length encoding: 6 bits, 14 bits, 32 bits or 64 bits, big endian.
    fn length(&mut self, len: u64) {
        Self::length_to(&mut self.out, len);
    }

    fn length_to(out: &mut Vec<u8>, len: u64) {
        if len < 1 << 6 {
            out.push(len as u8);
        } else if len < 1 << 14 {
            out.push(0x40 | (len >> 8) as u8);
            out.push(len as u8);
        } else if len <= u32::MAX as u64 {
            out.push(0x80);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        } else {
            out.push(0x81);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }

    /// A string, in an integer encoding when it is the canonical form of a small integer.
    fn string(&mut self, s: &[u8]) {
        if s.len() <= 11 {
            if let Some(i) = crate::resp::decode::parse_i64(s) {
                if i32::try_from(i).is_ok() {
                    self.integer_string(i);
                    return;
                }
            }
        }
        if self.opts.compress && s.len() > LZF_MIN_LEN {
            // Worth it only when it saves at least four bytes, as Redis decides.
            if let Some(packed) = super::lzf::compress(s, s.len() - 4) {
                self.out.push(ENC_LZF);
                self.length(packed.len() as u64);
                self.length(s.len() as u64);
                self.out.extend_from_slice(&packed);
                return;
            }
        }
        self.length(s.len() as u64);
        self.out.extend_from_slice(s);
    }

    fn integer_string(&mut self, i: i64) {
        if let Ok(v) = i8::try_from(i) {
            self.out.push(ENC_INT8);
            self.out.push(v as u8);
        } else if let Ok(v) = i16::try_from(i) {
            self.out.push(ENC_INT16);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(i) {
            self.out.push(ENC_INT32);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            let text = i.to_string();
            self.length(text.len() as u64);
            self.out.extend_from_slice(text.as_bytes());
        }
    }
}

/// One key's record (expiry, type, key, value) appended to `out`, as `encode_dataset` writes
/// it.
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry, opts: Options) {
    let mut w = RdbWriter::onto(out, opts);
    w.entry(key, entry);
    *out = w.out;
}

/// The encoder a snapshot cut carries: `encode_entry` with `opts`.
pub fn entry_encoder(opts: Options) -> crate::keyspace::snapshot::EncodeFn {
    std::sync::Arc::new(move |out: &mut Vec<u8>, key: &[u8], entry: &Entry| {
        encode_entry(out, key, entry, opts)
    })
}

/// A list cut into quicklist nodes the way Redis 7.0 fills them: each node's listpack takes
/// elements until `fill` of them (when positive) or until the next one would pass the size
/// class (-1 to -5: 4 to 64 KiB; positive fills are still capped at 8 KiB).
fn quicklist_nodes(list: &crate::keyspace::list::List, fill: i64) -> Vec<Vec<u8>> {
    const SAFETY_LIMIT: usize = 8192;
    let byte_limit = match fill {
        f if f >= 0 => SAFETY_LIMIT,
        -1 => 4096,
        -2 => 8192,
        -3 => 16384,
        -4 => 32768,
        _ => 65536,
    };
    let mut nodes = Vec::new();
    let mut lp = LpWriter::new();
    for item in list.iter() {
        let count = lp.count() as i64;
        let full = (fill >= 0 && count >= fill.max(1))
            || lp.bytes() + listpack::element_len(item) > byte_limit;
        if count > 0 && full {
            nodes.push(std::mem::take(&mut lp).finish());
        }
        lp.string(item);
    }
    if lp.count() > 0 {
        nodes.push(lp.finish());
    }
    nodes
}

/// An intset blob of `members` (ascending): element width (2, 4 or 8 bytes, the narrowest
/// that holds every member), count, then the members, all little endian.
fn intset_blob(members: &[i64]) -> Vec<u8> {
    let width: usize = if members.iter().all(|&m| i16::try_from(m).is_ok()) {
        2
    } else if members.iter().all(|&m| i32::try_from(m).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * members.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for m in members {
        out.extend_from_slice(&m.to_le_bytes()[..width]);
    }
    out
}

/// A score as Redis 7.0 puts it in a sorted set's listpack: integral values within half the
/// i64 range as integers (-0 as 0), anything else in `%.17g` form (`inf`, `-inf`).
fn listpack_score(score: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if score.is_infinite() {
        return if score > 0.0 { "inf" } else { "-inf" }.into();
    }
    if (-LIMIT..=LIMIT).contains(&score) && score == (score as i64) as f64 {
        return (score as i64).to_string();
    }
    crate::resp::reply::format_double_g17(score)
}

/// A file written in pieces (a snapshot walked slot by slot): the opening, each database
/// section's header, the keys, and the trailer whose checksum covers every byte before it.
pub struct PieceWriter {
    crc: u64,
}

impl PieceWriter {
    /// Starts a file: the magic string and the auxiliary fields.
    pub fn start(aux: &[(&str, Vec<u8>)], functions: &[Bytes]) -> (PieceWriter, Vec<u8>) {
        let mut w = RdbWriter::new();
        for (key, value) in aux {
            w.aux(key, value);
        }
        for code in functions {
            w.function(code);
        }
        let mut p = PieceWriter { crc: 0 };
        p.account(&w.out);
        (p, w.out)
    }

    /// The bytes of one piece of the walk.
    pub fn piece(&mut self, piece: crate::keyspace::snapshot::Piece) -> Vec<u8> {
        use crate::keyspace::snapshot::Piece;
        let bytes = match piece {
            Piece::Db { db, keys, expires } => {
                let mut w = RdbWriter::onto(&mut Vec::new(), Options::default());
                w.select_db(db, keys, expires);
                w.out
            }
            Piece::Keys(chunk) => chunk.bytes,
        };
        self.account(&bytes);
        bytes
    }

    fn account(&mut self, bytes: &[u8]) {
        self.crc = crc64::update(self.crc, bytes);
    }

    /// The EOF opcode and the checksum.
    pub fn finish(mut self) -> Vec<u8> {
        let mut out = vec![OPCODE_EOF];
        self.account(&out);
        out.extend_from_slice(&self.crc.to_le_bytes());
        out
    }
}

/// Writes every live key of every database (all shards must be held): the auxiliary fields
/// given, the function libraries (before the databases, as Redis 7.0 does), then one section
/// per non-empty database.
pub fn encode_dataset(
    ks: &mut crate::keyspace::Locked<'_>,
    now_ms: u64,
    aux: &[(&str, Vec<u8>)],
    functions: &[Bytes],
    opts: Options,
) -> Vec<u8> {
    let mut w = RdbWriter::with_options(opts);
    for (key, value) in aux {
        w.aux(key, value);
    }
    for code in functions {
        w.function(code);
    }
    for db in 0..ks.databases() {
        let keys = ks.db_size(db);
        if keys == 0 {
            continue;
        }
        w.select_db(db, keys, ks.db_expires(db));
        ks.for_each_key_from(db, 0, now_ms, |key, entry| {
            w.entry(key, entry);
            true
        });
    }
    w.finish()
}

/// FUNCTION DUMP's payload: one FUNCTION2 record per library, the RDB version (u16 little
/// endian) and the CRC-64 of everything before it.
pub fn functions_payload(functions: &[Bytes]) -> Vec<u8> {
    let mut w = RdbWriter::onto(&mut Vec::new(), Options::default());
    for code in functions {
        w.function(code);
    }
    w.out
        .extend_from_slice(&(super::RDB_VERSION as u16).to_le_bytes());
    let crc = crc64::update(0, &w.out);
    w.out.extend_from_slice(&crc.to_le_bytes());
    w.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::list::List;

    #[test]
    fn a_walked_snapshot_is_byte_for_byte_the_dataset_encoding() {
        use crate::keyspace::{Keyspace, StrValue};
        let ks = Keyspace::new(3, 3);
        {
            let mut l = ks.lock_all();
            for i in 0..200 {
                let key = format!("key:{i}");
                let value = Value::Str(StrValue::from_bytes(format!("v{i}").as_bytes()));
                l.insert(i % 3, key.as_bytes(), Entry::new(value, 0));
            }
            let list = Value::List(Box::new(List::from_items(["x", "y"])));
            l.insert(2, b"list", Entry::new(list, 0));
            l.set_expire(0, b"key:0", 500);
            l.set_expire(1, b"key:1", 5000);
        }
        let aux = vec![("redis-ver", b"7.0.15".to_vec())];
        let whole = encode_dataset(&mut ks.lock_all(), 1000, &aux, &[], Options::default());
        let cut = ks.begin_snapshot(1000, entry_encoder(Options::default()));
        let (mut w, mut out) = PieceWriter::start(&aux, &[]);
        assert!(cut.walk(&ks, &mut |p| {
            out.extend(w.piece(p));
            true
        }));
        ks.snapshot().finish();
        out.extend(w.finish());
        assert_eq!(out, whole);
    }

    /// Writes `value` under key `k` with `opts` and reads it back.
    fn round_trip(value: Value, opts: Options) -> (Vec<u8>, Value) {
        let mut w = RdbWriter::with_options(opts);
        w.select_db(0, 1, 0);
        w.entry(b"k", &Entry::new(value, 0));
        let bytes = w.finish();
        let limits = super::super::decode::LoadLimits {
            deep: true,
            ..Default::default()
        };
        let mut got = Vec::new();
        super::super::decode::decode(&bytes, limits, 0, |l| got.push(l)).unwrap();
        (bytes, got.pop().unwrap().value)
    }

    #[test]
    fn compact_encodings_are_written_as_redis_writes_them() {
        let opts = Options::default();
        // A list of several quicklist nodes (fill 4: at most four elements per node).
        let items: Vec<String> = (0..10).map(|i| format!("e{i}")).collect();
        let list = Value::List(Box::new(List::from_items(&items)));
        let small = Options {
            list_max_listpack_size: 4,
            ..opts
        };
        let (bytes, back) = round_trip(list.clone(), small);
        // Magic (9), SELECTDB (2), RESIZEDB (3), then the type byte and the key.
        assert_eq!(bytes[14], TYPE_LIST_QUICKLIST_2);
        assert_eq!(bytes[17], 3, "three nodes");
        assert_eq!(back, list);
        // An intset of 64-bit members.
        let mut set = crate::keyspace::set::Set::new_for(b"1");
        for m in ["-9223372036854775808", "5", "1099511627776"] {
            set.insert(m.as_bytes(), 512);
        }
        assert!(set.is_intset());
        let (bytes, back) = round_trip(Value::Set(Box::new(set.clone())), opts);
        assert_eq!(bytes[14], TYPE_SET_INTSET);
        assert_eq!(back, Value::Set(Box::new(set)));
        // A listpack hash.
        let mut hash = crate::keyspace::hash::Hash::new();
        let limits = crate::keyspace::hash::Limits {
            max_entries: 128,
            max_value: 64,
        };
        hash.set(b"f", b"12", limits);
        hash.set(b"g", b"text", limits);
        let (bytes, back) = round_trip(Value::Hash(hash.clone()), opts);
        assert_eq!(bytes[14], TYPE_HASH_LISTPACK);
        assert_eq!(back, Value::Hash(hash));
        // Long strings are compressed when it pays, and only then.
        let text = Value::Str(StrValue::from_bytes("abcd".repeat(50).as_bytes()));
        let (bytes, back) = round_trip(text.clone(), opts);
        assert_eq!(bytes[17], ENC_LZF);
        assert!(bytes.len() < 100);
        assert_eq!(back, text);
        let plain = Options {
            compress: false,
            ..opts
        };
        let (bytes, _) = round_trip(text, plain);
        assert!(bytes.len() > 200);
    }

    #[test]
    fn listpack_scores_follow_redis() {
        assert_eq!(listpack_score(-0.0), "0");
        assert_eq!(listpack_score(1.5), "1.5");
        assert_eq!(listpack_score(-7.0), "-7");
        assert_eq!(listpack_score(f64::INFINITY), "inf");
        assert_eq!(listpack_score(f64::NEG_INFINITY), "-inf");
        assert_eq!(listpack_score(0.1), "0.10000000000000001");
        assert_eq!(listpack_score(1e300), "1.0000000000000001e+300");
        assert_eq!(
            intset_blob(&[-1, 3]),
            [2, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 3, 0]
        );
    }

    #[test]
    fn empty_file_layout() {
        let w = RdbWriter::new();
        let bytes = w.finish();
        assert_eq!(&bytes[..9], b"REDIS0010");
        assert_eq!(bytes[9], OPCODE_EOF);
        assert_eq!(bytes.len(), 18);
        let crc = crc64::update(0, &bytes[..10]);
        assert_eq!(&bytes[10..], &crc.to_le_bytes());
    }

    #[test]
    fn lengths_and_integers_use_the_compact_forms() {
        let mut w = RdbWriter::new();
        w.length(63);
        w.length(64);
        w.length(16383);
        w.length(16384);
        w.string(b"12");
        w.string(b"-300");
        w.string(b"100000");
        w.string(b"012");
        assert_eq!(
            &w.out[9..],
            &[
                63, 0x40, 64, 0x7f, 0xff, 0x80, 0, 0, 0x40, 0, ENC_INT8, 12, ENC_INT16, 0xd4, 0xfe,
                ENC_INT32, 0xa0, 0x86, 0x01, 0x00, 3, b'0', b'1', b'2'
            ]
        );
    }

    #[test]
    fn entries_carry_expiry_type_key_and_value() {
        let mut w = RdbWriter::new();
        let mut e = Entry::new(Value::List(Box::new(List::from_items(["a", "bc"]))), 0);
        e.expire_at_ms = 1;
        w.entry(b"k", &e);
        assert_eq!(
            &w.out[9..],
            &[
                OPCODE_EXPIRETIME_MS,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                TYPE_LIST_QUICKLIST_2,
                1,
                b'k',
                // One node, a listpack: 14 bytes, 2 elements, "a" and "bc", terminator.
                1,
                QUICKLIST_NODE_PACKED as u8,
                14,
                14,
                0,
                0,
                0,
                2,
                0,
                0x81,
                b'a',
                2,
                0x82,
                b'b',
                b'c',
                3,
                0xff
            ]
        );
    }
}

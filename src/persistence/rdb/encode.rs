//! Writing RDB version 10. The layout: the `REDIS0010` magic, auxiliary fields, then the function
//! libraries (FUNCTION2 records), then per non-empty database a SELECTDB and RESIZEDB opcode followed by its keys (each optionally
//! preceded by an EXPIRETIME_MS opcode), then EOF and the CRC-64 of everything before it
//! (little endian).
//!
//! Values are written in the plain object types every RDB reader understands: STRING (with the
//! integer encodings), LIST, SET, HASH and ZSET_2. Redis 7.0 itself writes the listpack- and
//! intset-based types for small values; a reader loads both forms into the same value.

use super::crc64;
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

const ENC_INT8: u8 = 0xc0;
const ENC_INT16: u8 = 0xc1;
const ENC_INT32: u8 = 0xc2;

/// Builds an RDB file in memory.
pub struct RdbWriter {
    out: Vec<u8>,
}

impl Default for RdbWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RdbWriter {
    /// Starts a file: the magic string.
    pub fn new() -> RdbWriter {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(format!("REDIS{:04}", super::RDB_VERSION).as_bytes());
        RdbWriter { out }
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
                key_then(self, TYPE_LIST);
                self.length(list.len() as u64);
                for item in list.iter() {
                    self.string(item);
                }
            }
            Value::Set(set) => {
                key_then(self, TYPE_SET);
                self.length(set.len() as u64);
                for member in set.iter() {
                    self.string(&member);
                }
            }
            Value::Hash(hash) => {
                key_then(self, TYPE_HASH);
                self.length(hash.len() as u64);
                for (field, value) in hash.iter() {
                    self.string(field);
                    self.string(value);
                }
            }
            Value::ZSet(zset) => {
                let zset = zset.view();
                key_then(self, TYPE_ZSET_2);
                self.length(zset.len() as u64);
                for (member, score) in zset.iter() {
                    self.string(member);
                    self.out.extend_from_slice(&score.to_le_bytes());
                }
            }
            Value::Stream(stream) => {
                key_then(self, super::stream::TYPE_STREAM_LISTPACKS_2);
                let mut out = std::mem::take(&mut self.out);
                super::stream::write_stream(
                    stream,
                    &mut out,
                    &mut |o, n| RdbWriter::length_to(o, n),
                    &mut |o, s| {
                        let mut w = RdbWriter {
                            out: std::mem::take(o),
                        };
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
    pub fn dump_payload(value: &Value) -> Vec<u8> {
        let mut w = RdbWriter {
            out: Vec::with_capacity(32),
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

/// One key's record (expiry, type, key, value) appended to `out`: the encoder a snapshot cut
/// carries, the same one `encode_dataset` uses.
pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry) {
    let mut w = RdbWriter {
        out: std::mem::take(out),
    };
    w.entry(key, entry);
    *out = w.out;
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
                let mut w = RdbWriter { out: Vec::new() };
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
) -> Vec<u8> {
    let mut w = RdbWriter::new();
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
    let mut w = RdbWriter { out: Vec::new() };
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
        let whole = encode_dataset(&mut ks.lock_all(), 1000, &aux, &[]);
        let cut = ks.begin_snapshot(1000, encode_entry);
        let (mut w, mut out) = PieceWriter::start(&aux, &[]);
        assert!(cut.walk(&ks, &mut |p| {
            out.extend(w.piece(p));
            true
        }));
        ks.snapshot().finish();
        out.extend(w.finish());
        assert_eq!(out, whole);
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
                TYPE_LIST,
                1,
                b'k',
                2,
                1,
                b'a',
                2,
                b'b',
                b'c'
            ]
        );
    }
}

//! Values stored under keys. Strings keep Redis's three encodings, because `OBJECT ENCODING`
//! reports them and tests assert them: `int` (a 64-bit integer), `embstr` (short, never
//! modified in place) and `raw` (long, or grown by APPEND / SETRANGE).

use crate::util::format_i64;

/// Strings up to this length are created `embstr` (Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT).
pub const EMBSTR_SIZE_LIMIT: usize = 44;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(StrValue),
    List(Box<super::list::List>),
    Set(Box<super::set::Set>),
    Hash(super::hash::Hash),
    ZSet(super::zset::Stored),
    Stream(Box<super::stream::Stream>),
}

/// A string value in 24 bytes. `Inline` and `Embstr` are both reported as `embstr`: short
/// strings live inside the entry, longer ones up to 44 bytes in one exact-size allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrValue {
    Int(i64),
    Inline { len: u8, buf: [u8; INLINE_LIMIT] },
    Embstr(Box<[u8]>),
    Raw(Box<Vec<u8>>),
}

/// Longest string kept inside the entry itself.
pub const INLINE_LIMIT: usize = 22;

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }
    /// The name OBJECT ENCODING reports.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str(StrValue::Int(_)) => "int",
            Value::Str(StrValue::Inline { .. } | StrValue::Embstr(_)) => "embstr",
            Value::Str(StrValue::Raw(_)) => "raw",
            Value::List(l) => l.encoding_name(),
            Value::Set(s) => s.encoding_name(),
            Value::Hash(h) => h.encoding_name(),
            Value::ZSet(z) => z.encoding_name(),
            Value::Stream(_) => "stream",
        }
    }
    /// Approximate bytes this value occupies, for MEMORY USAGE.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_bytes(),
            Value::List(l) => l.heap_bytes(),
            Value::Set(s) => s.heap_bytes(),
            Value::Hash(h) => h.heap_bytes(),
            Value::ZSet(z) => z.heap_bytes(),
            Value::Stream(s) => s.heap_bytes(),
        }
    }
}

impl StrValue {
    /// Builds a string the way SET does: integers that round-trip become `int`, short ones
    /// `embstr`, the rest `raw` (Redis's `tryObjectEncoding`).
    pub fn from_bytes(b: &[u8]) -> StrValue {
        if b.len() <= 20 {
            if let Some(i) = crate::resp::decode::parse_i64(b) {
                return StrValue::Int(i);
            }
        }
        if b.len() <= EMBSTR_SIZE_LIMIT {
            StrValue::embstr(b)
        } else {
            StrValue::raw(b.to_vec())
        }
    }

    /// An `embstr` string (callers keep it within `EMBSTR_SIZE_LIMIT`).
    pub fn embstr(b: &[u8]) -> StrValue {
        if b.len() <= INLINE_LIMIT {
            let mut buf = [0u8; INLINE_LIMIT];
            buf[..b.len()].copy_from_slice(b);
            StrValue::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            StrValue::Embstr(b.into())
        }
    }

    /// A `raw` string, growable in place.
    pub fn raw(v: Vec<u8>) -> StrValue {
        StrValue::Raw(Box::new(v))
    }

    /// A string built by a command that produces a number (INCR and friends).
    pub fn from_i64(i: i64) -> StrValue {
        StrValue::Int(i)
    }

    /// The bytes of the string (integers rendered as decimal).
    pub fn to_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        match self {
            StrValue::Int(i) => std::borrow::Cow::Owned(format_i64(*i).into_bytes()),
            StrValue::Inline { len, buf } => std::borrow::Cow::Borrowed(&buf[..*len as usize]),
            StrValue::Embstr(b) => std::borrow::Cow::Borrowed(b),
            StrValue::Raw(v) => std::borrow::Cow::Borrowed(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrValue::Int(i) => format_i64(*i).len(),
            StrValue::Inline { len, .. } => *len as usize,
            StrValue::Embstr(b) => b.len(),
            StrValue::Raw(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The integer value if the string is a valid 64-bit integer (INCR's view of it).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            StrValue::Int(i) => Some(*i),
            StrValue::Inline { len, buf } => crate::resp::decode::parse_i64(&buf[..*len as usize]),
            StrValue::Embstr(b) => crate::resp::decode::parse_i64(b),
            StrValue::Raw(v) => crate::resp::decode::parse_i64(v),
        }
    }

    /// A mutable byte buffer, converting to `raw` like Redis's `dbUnshareStringValue`.
    pub fn make_raw(&mut self) -> &mut Vec<u8> {
        if !matches!(self, StrValue::Raw(_)) {
            let bytes = self.to_bytes().into_owned();
            *self = StrValue::raw(bytes);
        }
        match self {
            StrValue::Raw(v) => v,
            _ => unreachable!("converted to raw above"),
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            StrValue::Int(_) | StrValue::Inline { .. } => 0,
            StrValue::Embstr(b) => b.len(),
            StrValue::Raw(v) => v.capacity() + std::mem::size_of::<Vec<u8>>(),
        }
    }
}

/// The shape of a value's hash table, for DEBUG HTSTATS-KEY: its bucket count and how many
/// buckets hold chains of each length (Redis's `dictGetStats` figures).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub buckets: usize,
    pub elements: usize,
    /// `chain_lengths[n]`: buckets whose chain is `n` long.
    pub chain_lengths: Vec<usize>,
}

impl TableStats {
    /// Counts the chain lengths of `buckets` buckets.
    pub fn from_chains(buckets: usize, chains: impl Iterator<Item = usize>) -> TableStats {
        let mut s = TableStats {
            buckets,
            ..TableStats::default()
        };
        for len in chains {
            if s.chain_lengths.len() <= len {
                s.chain_lengths.resize(len + 1, 0);
            }
            s.chain_lengths[len] += 1;
            s.elements += len;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_24_bytes() {
        assert_eq!(std::mem::size_of::<StrValue>(), 24);
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn encodings_follow_redis_rules() {
        let enc = |b: &[u8]| Value::Str(StrValue::from_bytes(b)).encoding_name();
        assert_eq!(enc(b"12345"), "int");
        assert_eq!(enc(b"-9223372036854775808"), "int");
        assert_eq!(enc(b"012"), "embstr");
        assert_eq!(enc(&[b'a'; 44]), "embstr");
        assert_eq!(enc(&[b'a'; 45]), "raw");
        let mut s = StrValue::from_bytes(b"abc");
        s.make_raw().extend_from_slice(b"d");
        assert_eq!(Value::Str(s.clone()).encoding_name(), "raw");
        assert_eq!(&*s.to_bytes(), b"abcd");
    }
}

//! `Reply`: the value a command handler returns. Its variants are RESP3's types; RESP2 clients
//! see them through the downgrade rules in `encode.rs` (maps become flat arrays, doubles become
//! bulk strings, booleans become integers), exactly as Redis 7.0 does.

use bytes::Bytes;
use std::borrow::Cow;

/// An error reply: the full text as Redis sends it after the `-`, e.g. `ERR syntax error` or
/// `WRONGTYPE Operation against a key holding the wrong kind of value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply(pub Cow<'static, str>);

impl ErrorReply {
    pub const fn fixed(text: &'static str) -> Self {
        ErrorReply(Cow::Borrowed(text))
    }
    pub fn owned(text: String) -> Self {
        ErrorReply(Cow::Owned(text))
    }
    pub fn text(&self) -> &str {
        &self.0
    }
    /// The error code Redis counts in INFO errorstats: the first word when it is all caps
    /// (`WRONGTYPE`, `ERR`), else `ERR`.
    pub fn code(&self) -> &str {
        let first = self.0.split(' ').next().unwrap_or("ERR");
        if !first.is_empty() && first.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            first
        } else {
            "ERR"
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK` style status line. Never contains CR or LF.
    Simple(Cow<'static, str>),
    Error(ErrorReply),
    Int(i64),
    Bulk(Bytes),
    /// The absent value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// The absent aggregate: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    /// A double already written out (Redis's `addReplyHumanLongDouble`): `,<text>` in RESP3,
    /// a bulk string in RESP2.
    DoubleText(String),
    Bool(bool),
    BigNumber(String),
    /// Verbatim string with its three-letter format (`txt`, `mkd`).
    Verbatim(&'static str, Bytes),
    Push(Vec<Reply>),
    /// RESP3 attribute (out-of-band metadata before a reply); RESP2 clients never see it.
    Attribute(Vec<(Reply, Reply)>),
    /// Several replies sent back to back for one command (SUBSCRIBE to several channels).
    Multi(Vec<Reply>),
    /// No reply at all (CLIENT REPLY OFF/SKIP, a command whose reply is suppressed).
    NoReply,
}

impl Reply {
    pub const OK: Reply = Reply::Simple(Cow::Borrowed("OK"));
    pub const QUEUED: Reply = Reply::Simple(Cow::Borrowed("QUEUED"));

    pub fn simple(s: &'static str) -> Reply {
        Reply::Simple(Cow::Borrowed(s))
    }
    pub fn status(s: String) -> Reply {
        Reply::Simple(Cow::Owned(s))
    }
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }
    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }
    pub fn bulk_slice(b: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b))
    }
    pub fn error(e: ErrorReply) -> Reply {
        Reply::Error(e)
    }
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
    /// Array of bulk strings.
    pub fn bulks<I, B>(items: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        Reply::Array(items.into_iter().map(|b| Reply::Bulk(b.into())).collect())
    }
}

impl From<ErrorReply> for Reply {
    fn from(e: ErrorReply) -> Self {
        Reply::Error(e)
    }
}

/// Formats a double the way C's `printf("%.17g")` does, which is what Redis uses for doubles
/// in replies (`inf`, `-inf` and `nan` included).
pub fn format_double_g17(d: f64) -> String {
    format_double_g(d, 17)
}

/// `printf("%.<precision>g")` through the C library, so that rounding and exponent form are
/// exactly C's.
pub fn format_double_g(d: f64, precision: u8) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    let mut buf = [0u8; 64];
    let fmt = b"%.*g\0";
    // SAFETY: the buffer is large enough for any %g of a finite double at precision <= 20,
    // snprintf never writes past the given size, and the format string is NUL-terminated.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
            fmt.as_ptr() as *const libc::c_char,
            precision as libc::c_int,
            d,
        )
    };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

//! Request decoding, mirroring Redis's `processMultibulkBuffer` / `processInlineBuffer`:
//! multibulk (`*N\r\n$len\r\n...`) and inline (space-separated, with `sdssplitargs` quoting)
//! requests, the same protocol error texts, and every length checked before any allocation.
//!
//! The decoder is incremental: it consumes what it has parsed from the buffer and remembers
//! where it stands inside a multibulk request, so a huge request arriving in many reads is
//! scanned once.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request, and longest multibulk/bulk header line, Redis accepts (64 KiB).
pub const PROTO_INLINE_MAX_SIZE: usize = 1024 * 64;
/// Bulk length above which the buffer is grown to hold the whole argument at once.
const PROTO_MBULK_BIG_ARG: usize = 1024 * 32;

#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// `proto-max-bulk-len`.
    pub proto_max_bulk_len: u64,
    /// Unauthenticated clients get tight limits, as in Redis 7.0.
    pub authenticated: bool,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }
}

/// A protocol violation. Redis replies `-ERR Protocol error: <text>` and closes the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(s: &str) -> Self {
        ProtocolError(format!("Protocol error: {s}"))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub args: Vec<Bytes>,
    pub inline: bool,
}

#[derive(Default, Debug)]
pub struct RequestDecoder {
    /// Arguments still expected by the multibulk request in progress.
    pending: Option<usize>,
    args: Vec<Bytes>,
    bulk_len: Option<usize>,
}

impl RequestDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held by arguments of a partially read request (they count toward the query buffer).
    pub fn partial_bytes(&self) -> usize {
        self.args.iter().map(|a| a.len()).sum()
    }

    /// Length of the bulk argument being read, if its header has been seen.
    pub fn pending_bulk_len(&self) -> usize {
        self.bulk_len.map_or(0, |l| l + 2)
    }

    /// Parses the next request from `buf`. `Ok(None)`: more bytes are needed. Empty requests
    /// (blank inline lines, `*0`) are skipped silently, like Redis.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        limits: DecodeLimits,
    ) -> Result<Option<Request>, ProtocolError> {
        let mut args = Vec::new();
        Ok(self
            .decode_into(buf, limits, &mut args)?
            .map(|inline| Request { args, inline }))
    }

    /// `decode`, with the arguments put in `args` (whose allocation a caller decoding request
    /// after request keeps using); `Some(inline)` once a request is complete.
    pub fn decode_into(
        &mut self,
        buf: &mut BytesMut,
        limits: DecodeLimits,
        args: &mut Vec<Bytes>,
    ) -> Result<Option<bool>, ProtocolError> {
        loop {
            if self.pending.is_none() {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match decode_inline(buf)? {
                        None => return Ok(None),
                        Some(a) if a.is_empty() => continue,
                        Some(a) => {
                            *args = a;
                            return Ok(Some(true));
                        }
                    }
                }
                if decode_complete(buf, limits, args) {
                    return Ok(Some(false));
                }
                let Some(n) = self.multibulk_header(buf, limits)? else {
                    return Ok(None);
                };
                if n == 0 {
                    continue;
                }
                self.pending = Some(n);
                self.args = Vec::with_capacity(n.min(1024));
            }
            if !self.read_bulks(buf, limits)? {
                return Ok(None);
            }
            self.pending = None;
            *args = std::mem::take(&mut self.args);
            return Ok(Some(false));
        }
    }

    fn multibulk_header(
        &mut self,
        buf: &mut BytesMut,
        limits: DecodeLimits,
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(cr) = memchr(b'\r', buf) else {
            if buf.len() > PROTO_INLINE_MAX_SIZE {
                return Err(ProtocolError::new("too big mbulk count string"));
            }
            return Ok(None);
        };
        if cr + 1 >= buf.len() {
            return Ok(None);
        }
        let n = parse_i64(&buf[1..cr]);
        let n = match n {
            Some(n) if n <= i32::MAX as i64 => n,
            _ => return Err(ProtocolError::new("invalid multibulk length")),
        };
        if !limits.authenticated && n > 10 {
            return Err(ProtocolError::new("unauthenticated multibulk length"));
        }
        buf.advance(cr + 2);
        Ok(Some(n.max(0) as usize))
    }

    /// Reads bulk arguments until the request is complete (`true`) or the buffer runs dry.
    fn read_bulks(
        &mut self,
        buf: &mut BytesMut,
        limits: DecodeLimits,
    ) -> Result<bool, ProtocolError> {
        while let Some(left) = self.pending.filter(|&n| n > 0) {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let Some(cr) = memchr(b'\r', buf) else {
                        if buf.len() > PROTO_INLINE_MAX_SIZE {
                            return Err(ProtocolError::new("too big bulk count string"));
                        }
                        return Ok(false);
                    };
                    if cr + 1 >= buf.len() {
                        return Ok(false);
                    }
                    if buf[0] != b'$' {
                        return Err(ProtocolError(format!(
                            "Protocol error: expected '$', got '{}'",
                            buf[0] as char
                        )));
                    }
                    let len = match parse_i64(&buf[1..cr]) {
                        Some(l) if l >= 0 && (l as u64) <= limits.proto_max_bulk_len => l as usize,
                        _ => return Err(ProtocolError::new("invalid bulk length")),
                    };
                    if !limits.authenticated && len > 16384 {
                        return Err(ProtocolError::new("unauthenticated bulk length"));
                    }
                    buf.advance(cr + 2);
                    if len >= PROTO_MBULK_BIG_ARG {
                        buf.reserve(len + 2);
                    }
                    self.bulk_len = Some(len);
                    len
                }
            };
            if buf.len() < len + 2 {
                return Ok(false);
            }
            // Like Redis, the two bytes after the payload are skipped without being checked.
            let arg = buf.split_to(len).freeze();
            buf.advance(2);
            self.args.push(arg);
            self.bulk_len = None;
            self.pending = Some(left - 1);
        }
        Ok(true)
    }
}

/// Requests with at most this many arguments take the one-piece path.
const FAST_PATH_ARGS: usize = 16;

/// The common case: a small multibulk request wholly in the buffer. Its extent is found on
/// the bytes as they are, then its arguments are cut out. Anything unusual (partial input, a
/// malformed, signed, zero-padded or oversized count) returns None and is left to the general
/// path, which gives the protocol errors. The arguments replace what `args` held.
fn decode_complete(buf: &mut BytesMut, limits: DecodeLimits, args: &mut Vec<Bytes>) -> bool {
    complete_into(buf, limits, args).is_some()
}

fn complete_into(buf: &mut BytesMut, limits: DecodeLimits, args: &mut Vec<Bytes>) -> Option<()> {
    let b = &buf[..];
    let (n, mut pos) = plain_count(b, 1)?;
    if !(1..=FAST_PATH_ARGS).contains(&n) || (!limits.authenticated && n > 10) {
        return None;
    }
    let mut spans = [(0usize, 0usize); FAST_PATH_ARGS];
    for span in spans.iter_mut().take(n) {
        if b.get(pos) != Some(&b'$') {
            return None;
        }
        let (len, start) = plain_count(b, pos + 1)?;
        if len as u64 > limits.proto_max_bulk_len || (!limits.authenticated && len > 16384) {
            return None;
        }
        let end = start + len;
        // Like Redis, the two bytes after the payload are skipped without being checked.
        if end + 2 > b.len() {
            return None;
        }
        *span = (start, end);
        pos = end + 2;
    }
    // Each argument is split off the buffer by itself: one reference taken and dropped per
    // argument, with no extra one for the request as a whole. The header bytes before it are
    // split off with it and then skipped on the frozen piece, which costs less than
    // advancing the buffer.
    args.clear();
    let mut at = 0;
    for &(start, end) in &spans[..n] {
        let mut arg = buf.split_to(end - at).freeze();
        arg.advance(start - at);
        args.push(arg);
        at = end;
    }
    buf.advance(pos - at);
    Some(())
}

/// A count of plain decimal digits at `b[i..]` ended by CR and one more byte (the LF, which
/// the general path does not check either): the count and where the bytes after the LF
/// begin. None for a sign, a leading zero, more than 18 digits, or a line not all here.
#[inline]
fn plain_count(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut v = 0usize;
    let mut j = i;
    loop {
        let c = *b.get(j)?;
        if c == b'\r' {
            break;
        }
        if !c.is_ascii_digit() || j - i == 18 {
            return None;
        }
        v = v * 10 + (c - b'0') as usize;
        j += 1;
    }
    let digits = j - i;
    if digits == 0 || (digits > 1 && b[i] == b'0') || j + 1 >= b.len() {
        return None;
    }
    Some((v, j + 2))
}

/// Convenience for tests and one-shot parsing: decode one request from a byte slice.
pub fn decode_request(input: &[u8]) -> Result<Option<Request>, ProtocolError> {
    let mut buf = BytesMut::from(input);
    RequestDecoder::new().decode(&mut buf, DecodeLimits::default())
}

fn decode_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > PROTO_INLINE_MAX_SIZE {
            return Err(ProtocolError::new("too big inline request"));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let mut body = &line[..nl];
    if body.last() == Some(&b'\r') {
        body = &body[..body.len() - 1];
    }
    match split_args(body) {
        Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
        None => Err(ProtocolError::new("unbalanced quotes in request")),
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Splits a line into arguments with the quoting rules of Redis's `sdssplitargs`: `"..."` with
/// `\n \r \t \b \a \xHH` escapes, `'...'` with `\'`, a closing quote must be followed by space
/// or the end. `None` means unbalanced quotes. A NUL byte ends the line, as in C.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let end = memchr(0, line).unwrap_or(line.len());
    let line = &line[..end];
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(args);
        }
        let (mut inq, mut insq) = (false, false);
        let mut cur = Vec::new();
        loop {
            let c = at(p);
            if inq {
                if c == b'\\' && at(p + 1) == b'x' {
                    if let (Some(h), Some(l)) = (hex_val(at(p + 2)), hex_val(at(p + 3))) {
                        cur.push(h * 16 + l);
                        p += 4;
                        continue;
                    }
                }
                if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    p += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    other => cur.push(other),
                }
            }
            p += 1;
        }
        args.push(cur);
    }
}

pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Redis's `string2ll`: optional `-`, digits, no leading `+`, no spaces, no leading zeros
/// (except "0"), must fit in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' {
        (true, &s[1..])
    } else {
        (false, s)
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut d = RequestDecoder::new();
        let mut out = Vec::new();
        while let Some(r) = d.decode(&mut buf, DecodeLimits::default())? {
            out.push(r.args);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline_pipelines() {
        let got = all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\n*0\r\nset a \"b c\"\n").unwrap();
        assert_eq!(
            got,
            vec![
                args(&["GET", "k"]),
                args(&["PING"]),
                args(&["set", "a", "b c"])
            ]
        );
    }

    #[test]
    fn byte_at_a_time_gives_the_same_requests() {
        let input = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\nECHO 'x y'\r\n";
        let mut buf = BytesMut::new();
        let mut d = RequestDecoder::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            while let Some(r) = d.decode(&mut buf, DecodeLimits::default()).unwrap() {
                out.push(r.args);
            }
        }
        assert_eq!(
            out,
            vec![args(&["SET", "key", "va\r\nl"]), args(&["ECHO", "x y"])]
        );
    }

    /// Decodes `input` fed one byte at a time: every request then goes through the general
    /// path, which the one-piece path must agree with.
    fn trickled(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::new();
        let mut d = RequestDecoder::new();
        let mut out = Vec::new();
        for &b in input {
            buf.extend_from_slice(&[b]);
            while let Some(r) = d.decode(&mut buf, DecodeLimits::default())? {
                out.push(r.args);
            }
        }
        Ok(out)
    }

    proptest::proptest! {
        #[test]
        fn one_piece_and_general_paths_agree(
            requests in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..12), 1..20),
                1..6,
            ),
            flaw in proptest::option::of((0usize..400, 0usize..8)),
        ) {
            let mut input = Vec::new();
            for r in &requests {
                input.extend_from_slice(format!("*{}\r\n", r.len()).as_bytes());
                for a in r {
                    input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                    input.extend_from_slice(a);
                    input.extend_from_slice(b"\r\n");
                }
            }
            // Counts with a sign, a leading zero, a stray byte, or cut short.
            if let Some((at, kind)) = flaw {
                let at = at % input.len();
                let junk: &[u8] = [&b"0"[..], b"-", b"+", b" ", b"\r", b"$", b"*", b"9"][kind];
                input.splice(at..at, junk.iter().copied());
            }
            let whole = all(&input);
            let piecewise = trickled(&input);
            match (&whole, &piecewise) {
                (Ok(w), Ok(p)) => proptest::prop_assert_eq!(w, p),
                (Err(w), Err(p)) => proptest::prop_assert_eq!(&w.0, &p.0),
                _ => proptest::prop_assert!(false, "{:?} vs {:?}", whole, piecewise),
            }
            if flaw.is_none() {
                let want: Vec<Vec<Bytes>> = requests
                    .iter()
                    .map(|r| r.iter().map(|a| Bytes::copy_from_slice(a)).collect())
                    .collect();
                proptest::prop_assert_eq!(whole.unwrap(), want);
            }
        }
    }

    #[test]
    fn protocol_errors_have_redis_texts() {
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "Protocol error: invalid multibulk length"),
            (
                b"*3000000000\r\n",
                "Protocol error: invalid multibulk length",
            ),
            (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
            (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
            (
                b"*1\r\n$600000000\r\n",
                "Protocol error: invalid bulk length",
            ),
            (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
            (
                b"set \"a\"b\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
            (
                b"set \"ab\r\n",
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (input, text) in cases {
            assert_eq!(
                all(input).unwrap_err().0,
                *text,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let big = vec![b'a'; PROTO_INLINE_MAX_SIZE + 1];
        assert_eq!(
            all(&big).unwrap_err().0,
            "Protocol error: too big inline request"
        );
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; PROTO_INLINE_MAX_SIZE + 1]);
        assert_eq!(
            all(&big).unwrap_err().0,
            "Protocol error: too big mbulk count string"
        );
    }

    #[test]
    fn split_args_follows_sdssplitargs() {
        let s = |l: &str| {
            split_args(l.as_bytes()).map(|v| {
                v.into_iter()
                    .map(|a| String::from_utf8_lossy(&a).into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(s("  a  b "), Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            s("\"\\x41\\n\" 'it\\'s'"),
            Some(vec!["A\n".into(), "it's".into()])
        );
        assert_eq!(s("foo\"bar baz\""), Some(vec!["foobar baz".into()]));
        assert_eq!(s("\"\""), Some(vec!["".into()]));
        assert_eq!(s("'abc"), None);
        assert_eq!(s(""), Some(vec![]));
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b" 1"), None);
        assert_eq!(parse_i64(b""), None);
    }
}

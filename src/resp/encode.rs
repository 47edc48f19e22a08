//! Reply encoding for RESP2 and RESP3. This is the only place that knows the RESP2 downgrade
//! rules Redis applies: null to `$-1` / `*-1`, maps to flat arrays, sets and pushes to arrays,
//! doubles to bulk strings, booleans to `:1` / `:0`, big numbers and verbatim strings to bulk.

use super::reply::{format_double_g17, Reply};
use bytes::{BufMut, BytesMut};

pub fn encode(reply: &Reply, resp3: bool, out: &mut BytesMut) {
    match reply {
        Reply::Simple(s) => line(out, b'+', s.as_bytes()),
        Reply::Error(e) => line(out, b'-', e.text().as_bytes()),
        Reply::Int(i) => int_line(out, b':', *i),
        Reply::Bulk(b) => bulk(out, b),
        Reply::Null if resp3 => out.put_slice(b"_\r\n"),
        Reply::Null => out.put_slice(b"$-1\r\n"),
        Reply::NullArray if resp3 => out.put_slice(b"_\r\n"),
        Reply::NullArray => out.put_slice(b"*-1\r\n"),
        Reply::Array(items) => aggregate(out, b'*', items, resp3),
        Reply::Set(items) => aggregate(out, if resp3 { b'~' } else { b'*' }, items, resp3),
        Reply::Push(items) => aggregate(out, if resp3 { b'>' } else { b'*' }, items, resp3),
        Reply::Map(pairs) => {
            if resp3 {
                int_line(out, b'%', pairs.len() as i64);
            } else {
                int_line(out, b'*', 2 * pairs.len() as i64);
            }
            for (k, v) in pairs {
                encode(k, resp3, out);
                encode(v, resp3, out);
            }
        }
        Reply::Attribute(pairs) => {
            if resp3 {
                int_line(out, b'|', pairs.len() as i64);
                for (k, v) in pairs {
                    encode(k, true, out);
                    encode(v, true, out);
                }
            }
        }
        Reply::Double(d) => {
            let text = format_double_g17(*d);
            if resp3 {
                line(out, b',', text.as_bytes());
            } else {
                bulk(out, text.as_bytes());
            }
        }
        Reply::DoubleText(text) if resp3 => line(out, b',', text.as_bytes()),
        Reply::DoubleText(text) => bulk(out, text.as_bytes()),
        Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => int_line(out, b':', *b as i64),
        Reply::BigNumber(n) if resp3 => line(out, b'(', n.as_bytes()),
        Reply::BigNumber(n) => bulk(out, n.as_bytes()),
        Reply::Verbatim(fmt, text) if resp3 => {
            int_line(out, b'=', (text.len() + 4) as i64);
            out.put_slice(fmt.as_bytes());
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Reply::Verbatim(_, text) => bulk(out, text),
        Reply::Multi(items) => {
            for item in items {
                encode(item, resp3, out);
            }
        }
        Reply::NoReply => {}
    }
}

fn aggregate(out: &mut BytesMut, prefix: u8, items: &[Reply], resp3: bool) {
    int_line(out, prefix, items.len() as i64);
    for item in items {
        encode(item, resp3, out);
    }
}

fn line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(prefix);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, prefix: u8, n: i64) {
    out.extend_from_slice(IntLine::new(prefix, n).as_bytes());
}

fn bulk(out: &mut BytesMut, body: &[u8]) {
    let head = IntLine::new(b'$', body.len() as i64);
    let head = head.as_bytes();
    out.reserve(head.len() + body.len() + 2);
    out.extend_from_slice(head);
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
}

/// A whole `<prefix><decimal>\r\n` line, built on the stack so it is appended in one piece.
struct IntLine {
    buf: [u8; 24],
    start: usize,
}

impl IntLine {
    fn new(prefix: u8, n: i64) -> IntLine {
        let mut buf = [0u8; 24];
        buf[22] = b'\r';
        buf[23] = b'\n';
        // 19 digits, a sign and the prefix fit before the CRLF.
        let mut pos = 22;
        let mut v = n.unsigned_abs();
        loop {
            pos -= 1;
            buf[pos] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            pos -= 1;
            buf[pos] = b'-';
        }
        pos -= 1;
        buf[pos] = prefix;
        IntLine { buf, start: pos }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::reply::ErrorReply;
    use bytes::Bytes;

    fn enc(r: &Reply, resp3: bool) -> String {
        let mut out = BytesMut::new();
        encode(r, resp3, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn every_type_in_both_protocols() {
        let cases: Vec<(Reply, &str, &str)> = vec![
            (Reply::OK, "+OK\r\n", "+OK\r\n"),
            (
                Reply::Error(ErrorReply::fixed("ERR x")),
                "-ERR x\r\n",
                "-ERR x\r\n",
            ),
            (Reply::Int(-42), ":-42\r\n", ":-42\r\n"),
            (
                Reply::Int(i64::MIN),
                ":-9223372036854775808\r\n",
                ":-9223372036854775808\r\n",
            ),
            (
                Reply::Bulk(Bytes::from_static(b"a\r\nb")),
                "$4\r\na\r\nb\r\n",
                "$4\r\na\r\nb\r\n",
            ),
            (Reply::Bulk(Bytes::new()), "$0\r\n\r\n", "$0\r\n\r\n"),
            (Reply::Null, "$-1\r\n", "_\r\n"),
            (Reply::NullArray, "*-1\r\n", "_\r\n"),
            (Reply::Array(vec![]), "*0\r\n", "*0\r\n"),
            (
                Reply::Array(vec![Reply::Int(1), Reply::Null]),
                "*2\r\n:1\r\n$-1\r\n",
                "*2\r\n:1\r\n_\r\n",
            ),
            (
                Reply::Map(vec![(Reply::bulk_str("k"), Reply::Int(1))]),
                "*2\r\n$1\r\nk\r\n:1\r\n",
                "%1\r\n$1\r\nk\r\n:1\r\n",
            ),
            (
                Reply::Set(vec![Reply::Int(1)]),
                "*1\r\n:1\r\n",
                "~1\r\n:1\r\n",
            ),
            (
                Reply::Push(vec![Reply::Int(1)]),
                "*1\r\n:1\r\n",
                ">1\r\n:1\r\n",
            ),
            (Reply::Double(3.5), "$3\r\n3.5\r\n", ",3.5\r\n"),
            (Reply::Double(f64::INFINITY), "$3\r\ninf\r\n", ",inf\r\n"),
            (
                Reply::Double(f64::NEG_INFINITY),
                "$4\r\n-inf\r\n",
                ",-inf\r\n",
            ),
            (
                Reply::Double(0.1),
                "$19\r\n0.10000000000000001\r\n",
                ",0.10000000000000001\r\n",
            ),
            (
                Reply::DoubleText("13.36138933897018433".into()),
                "$20\r\n13.36138933897018433\r\n",
                ",13.36138933897018433\r\n",
            ),
            (Reply::Bool(true), ":1\r\n", "#t\r\n"),
            (Reply::Bool(false), ":0\r\n", "#f\r\n"),
            (
                Reply::BigNumber("1234567999999999999999999999999999999".into()),
                "$37\r\n1234567999999999999999999999999999999\r\n",
                "(1234567999999999999999999999999999999\r\n",
            ),
            (
                Reply::Verbatim("txt", Bytes::from_static(b"Some string")),
                "$11\r\nSome string\r\n",
                "=15\r\ntxt:Some string\r\n",
            ),
            (Reply::NoReply, "", ""),
            (
                Reply::Attribute(vec![(Reply::bulk_str("a"), Reply::Int(1))]),
                "",
                "|1\r\n$1\r\na\r\n:1\r\n",
            ),
            (
                Reply::Multi(vec![Reply::OK, Reply::Int(2)]),
                "+OK\r\n:2\r\n",
                "+OK\r\n:2\r\n",
            ),
        ];
        for (reply, resp2, resp3) in cases {
            assert_eq!(enc(&reply, false), resp2, "RESP2 of {reply:?}");
            assert_eq!(enc(&reply, true), resp3, "RESP3 of {reply:?}");
        }
    }
}

//! Client-side reply decoding (RESP2 and RESP3), for ferrodis-cli, MIGRATE and tests.
//! Total: any byte string yields a reply, `Ok(None)` (need more), or an error, never a panic.

use super::decode::{memchr, parse_i64};
use super::reply::{ErrorReply, Reply};
use bytes::Bytes;

/// Deepest nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 128;
/// Largest aggregate length accepted before allocating.
const MAX_AGGREGATE: i64 = 1 << 32;

#[derive(Debug, PartialEq, Eq)]
pub struct ReplyDecodeError(pub String);

/// Decodes one reply from the front of `input`, returning it and the bytes it used.
pub fn decode_reply(input: &[u8]) -> Result<Option<(Reply, usize)>, ReplyDecodeError> {
    let mut pos = 0;
    match parse(input, &mut pos, 0)? {
        Some(r) => Ok(Some((r, pos))),
        None => Ok(None),
    }
}

fn err(s: &str) -> ReplyDecodeError {
    ReplyDecodeError(s.to_string())
}

fn read_line<'a>(input: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = &input[*pos..];
    let cr = memchr(b'\r', rest)?;
    if cr + 1 >= rest.len() {
        return None;
    }
    *pos += cr + 2;
    Some(&rest[..cr])
}

fn parse(input: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Reply>, ReplyDecodeError> {
    if depth > MAX_DEPTH {
        return Err(err("reply nested too deeply"));
    }
    let Some(&kind) = input.get(*pos) else {
        return Ok(None);
    };
    let start = *pos;
    *pos += 1;
    let Some(line) = read_line(input, pos) else {
        *pos = start;
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(line).into_owned();
    let int = || parse_i64(line).ok_or_else(|| err("bad length or integer"));
    let reply = match kind {
        b'+' => Reply::status(text()),
        b'-' => Reply::Error(ErrorReply::owned(text())),
        b':' => Reply::Int(int()?),
        b'_' => Reply::Null,
        b'#' => match line {
            b"t" => Reply::Bool(true),
            b"f" => Reply::Bool(false),
            _ => return Err(err("bad boolean")),
        },
        b',' => Reply::Double(parse_double(line).ok_or_else(|| err("bad double"))?),
        b'(' => Reply::BigNumber(text()),
        b'$' | b'=' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some(Reply::Null));
            }
            let n = n as usize;
            if input.len() < *pos + n + 2 {
                *pos = start;
                return Ok(None);
            }
            let body = Bytes::copy_from_slice(&input[*pos..*pos + n]);
            *pos += n + 2;
            if kind == b'=' {
                if body.len() < 4 {
                    return Err(err("bad verbatim string"));
                }
                Reply::Verbatim("txt", body.slice(4..))
            } else {
                Reply::Bulk(body)
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int()?;
            if n < 0 {
                return Ok(Some(Reply::NullArray));
            }
            if n > MAX_AGGREGATE {
                return Err(err("aggregate too long"));
            }
            let count = if kind == b'%' || kind == b'|' {
                n * 2
            } else {
                n
            } as usize;
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                match parse(input, pos, depth + 1)? {
                    Some(r) => items.push(r),
                    None => {
                        *pos = start;
                        return Ok(None);
                    }
                }
            }
            match kind {
                b'*' => Reply::Array(items),
                b'~' => Reply::Set(items),
                b'>' => Reply::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    if kind == b'|' {
                        Reply::Attribute(pairs)
                    } else {
                        Reply::Map(pairs)
                    }
                }
            }
        }
        other => {
            return Err(ReplyDecodeError(format!(
                "unexpected reply type byte {:?}",
                other as char
            )))
        }
    };
    Ok(Some(reply))
}

fn parse_double(line: &[u8]) -> Option<f64> {
    match line {
        b"inf" => Some(f64::INFINITY),
        b"-inf" => Some(f64::NEG_INFINITY),
        b"nan" => Some(f64::NAN),
        _ => std::str::from_utf8(line).ok()?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::encode::encode;
    use bytes::BytesMut;

    #[test]
    fn encoded_replies_decode_back_in_resp3() {
        let replies = vec![
            Reply::OK,
            Reply::Error(ErrorReply::fixed("ERR x")),
            Reply::Int(7),
            Reply::bulk_str("hi"),
            Reply::Null,
            Reply::Array(vec![Reply::Int(1), Reply::bulk_str("a")]),
            Reply::Map(vec![(Reply::bulk_str("k"), Reply::Double(1.5))]),
            Reply::Set(vec![Reply::Bool(true)]),
            Reply::Push(vec![Reply::BigNumber("12".into())]),
            Reply::Verbatim("txt", Bytes::from_static(b"abc")),
        ];
        for r in replies {
            let mut out = BytesMut::new();
            encode(&r, true, &mut out);
            let (back, used) = decode_reply(&out).unwrap().unwrap();
            assert_eq!(used, out.len());
            assert_eq!(back, r);
            for cut in 0..out.len() {
                assert_eq!(
                    decode_reply(&out[..cut]).unwrap(),
                    None,
                    "prefix {cut} of {r:?}"
                );
            }
        }
    }

    #[test]
    fn resp2_nulls_decode() {
        assert_eq!(decode_reply(b"$-1\r\n").unwrap(), Some((Reply::Null, 5)));
        assert_eq!(
            decode_reply(b"*-1\r\n").unwrap(),
            Some((Reply::NullArray, 5))
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        assert!(decode_reply(b"?x\r\n").is_err());
        assert!(decode_reply(b"*99999999999999\r\n").is_err());
        let deep = "*1\r\n".repeat(1000);
        assert!(decode_reply(deep.as_bytes()).is_err());
    }
}

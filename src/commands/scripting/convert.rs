//! The two conversions a script sees: a command's reply turned into a Lua value for
//! `redis.call` (integers to numbers, bulk strings to strings, a null to `false` in RESP2 or
//! `nil` in RESP3, arrays to tables, status and error replies to `{ok=...}` / `{err=...}`,
//! and with `redis.setresp(3)` the RESP3 types as `{map=}`, `{set=}`, `{double=}`,
//! `{big_number=}`, `{verbatim_string=}` and booleans), and a script's return value turned back
//! into a reply (numbers truncated to integers, tables as arrays up to the first nil, and the
//! same single-field tables the other way). The rules are those of Redis's `script_lua.c`.

use crate::resp::reply::format_double_g17;
use crate::resp::{ErrorReply, Reply};
use mlua::{Lua, Table, Value};

/// Redis's `luaPushErrorBuff` text: a leading `-CODE ` names the error code (a lone `-word`
/// gets `ERR`), anything else is an `ERR` message; CR and LF are trimmed from both ends.
pub fn error_text(buf: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match buf.strip_prefix(b"-") {
        Some(rest) => match buf.iter().position(|&b| b == b' ') {
            Some(sp) => (&buf[1..sp], &buf[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", buf),
    };
    let is_crlf = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = msg.iter().position(|b| !is_crlf(b)).unwrap_or(msg.len());
    let end = msg
        .iter()
        .rposition(|b| !is_crlf(b))
        .map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end]);
    out
}

/// `{err = <text>}` as `redis.call` raises and `redis.pcall` returns it. Errors that come from
/// a command's reply (or from the checks before running it) were counted already, hence the
/// `ignore_error_stats_update` marker.
pub fn error_table(lua: &Lua, buf: &[u8], counted: bool) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(buf))?)?;
    if counted {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(t)
}

fn single(lua: &Lua, field: &str, value: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, value)?;
    Ok(Value::Table(t))
}

/// A command's reply as the script sees it, given the protocol the script selected.
pub fn reply_to_lua(lua: &Lua, reply: &Reply, resp3: bool) -> mlua::Result<Value> {
    let array = |items: &[Reply]| -> mlua::Result<Value> {
        let t = lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, reply_to_lua(lua, item, resp3)?)?;
        }
        Ok(Value::Table(t))
    };
    let bulk = |b: &[u8]| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(b)?)) };
    Ok(match reply {
        Reply::Simple(s) => single(lua, "ok", lua.create_string(s.as_bytes())?)?,
        Reply::Error(e) => {
            let mut buf = Vec::with_capacity(e.text().len() + 1);
            buf.push(b'-');
            buf.extend_from_slice(e.text().as_bytes());
            Value::Table(error_table(lua, &buf, true)?)
        }
        Reply::Int(i) => Value::Number(*i as f64),
        Reply::Bulk(b) => bulk(b)?,
        Reply::Null | Reply::NullArray if resp3 => Value::Nil,
        Reply::Null | Reply::NullArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Push(items) => array(items)?,
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, resp3)?, true)?;
            }
            single(lua, "set", set)?
        }
        Reply::Set(items) => array(items)?,
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (k, v) in pairs {
                map.raw_set(reply_to_lua(lua, k, resp3)?, reply_to_lua(lua, v, resp3)?)?;
            }
            single(lua, "map", map)?
        }
        Reply::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.iter().enumerate() {
                t.raw_set(2 * i + 1, reply_to_lua(lua, k, resp3)?)?;
                t.raw_set(2 * i + 2, reply_to_lua(lua, v, resp3)?)?;
            }
            Value::Table(t)
        }
        Reply::Double(d) if resp3 => single(lua, "double", *d)?,
        Reply::Double(d) => bulk(format_double_g17(*d).as_bytes())?,
        Reply::DoubleText(text) if resp3 => {
            single(lua, "double", text.parse::<f64>().unwrap_or(0.0))?
        }
        Reply::DoubleText(text) => bulk(text.as_bytes())?,
        Reply::Bool(b) if resp3 => Value::Boolean(*b),
        Reply::Bool(b) => Value::Number(*b as i64 as f64),
        Reply::BigNumber(n) if resp3 => single(lua, "big_number", lua.create_string(n)?)?,
        Reply::BigNumber(n) => bulk(n.as_bytes())?,
        Reply::Verbatim(fmt, text) if resp3 => {
            let v = lua.create_table()?;
            v.raw_set("string", lua.create_string(text)?)?;
            v.raw_set("format", *fmt)?;
            single(lua, "verbatim_string", v)?
        }
        Reply::Verbatim(_, text) => bulk(text)?,
        Reply::Multi(items) => match items.last() {
            Some(last) => reply_to_lua(lua, last, resp3)?,
            None => Value::Nil,
        },
        Reply::Attribute(_) | Reply::NoReply => Value::Nil,
    })
}

/// What a script's return value becomes.
pub struct ScriptReply {
    pub reply: Reply,
    /// The reply is an error raised by a command the script called: it was counted in the
    /// error statistics then, so it is not counted again.
    pub error_counted: bool,
}

/// CR and LF would break a status line: Redis maps them to spaces.
fn one_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace(['\r', '\n'], " ")
}

fn verbatim_format(f: &[u8]) -> &'static str {
    match f {
        b"txt" => "txt",
        b"mkd" => "mkd",
        other => {
            // Formats are three bytes by protocol; keep the rare others interned.
            static SEEN: parking_lot::Mutex<Vec<&'static str>> =
                parking_lot::Mutex::new(Vec::new());
            let text = String::from_utf8_lossy(&other[..other.len().min(3)]).into_owned();
            let mut seen = SEEN.lock();
            if let Some(s) = seen.iter().find(|s| **s == text) {
                return s;
            }
            let s: &'static str = Box::leak(text.into_boxed_str());
            seen.push(s);
            s
        }
    }
}

/// C's `(long long)` conversion as x86-64 performs it: out of range (and NaN) gives the
/// "integer indefinite" value, `i64::MIN`, where Rust's `as` would saturate.
fn c_truncate(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

/// A script's return value as a reply (Redis's `luaReplyToRedisReply`).
pub fn lua_to_reply(value: &Value, resp3: bool) -> ScriptReply {
    let mut error_counted = false;
    let reply = to_reply(value, resp3, &mut error_counted, 0);
    ScriptReply {
        reply,
        error_counted,
    }
}

fn to_reply(value: &Value, resp3: bool, counted: &mut bool, depth: usize) -> Reply {
    if depth > 1000 {
        return Reply::Error(ErrorReply::fixed("ERR reached lua stack limit"));
    }
    match value {
        Value::String(s) => Reply::Bulk(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Null,
        Value::Number(n) => Reply::Int(c_truncate(*n)),
        Value::Integer(i) => Reply::Int(*i),
        Value::Table(t) => table_to_reply(t, resp3, counted, depth),
        _ => Reply::Null,
    }
}

fn table_to_reply(t: &Table, resp3: bool, counted: &mut bool, depth: usize) -> Reply {
    let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(e) = field("err") {
        *counted |= matches!(field("ignore_error_stats_update"), Value::Boolean(true));
        return Reply::Error(ErrorReply::owned(one_line(&e.as_bytes())));
    }
    if let Value::String(s) = field("ok") {
        return Reply::status(one_line(&s.as_bytes()));
    }
    if let Value::Number(d) = field("double") {
        return Reply::Double(d);
    }
    if let Value::String(n) = field("big_number") {
        return Reply::BigNumber(one_line(&n.as_bytes()));
    }
    if let Value::Table(v) = field("verbatim_string") {
        if let (Ok(Value::String(f)), Ok(Value::String(s))) =
            (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
        {
            return Reply::Verbatim(
                verbatim_format(&f.as_bytes()),
                bytes::Bytes::copy_from_slice(&s.as_bytes()),
            );
        }
    }
    if let Value::Table(m) = field("map") {
        let mut pairs = Vec::new();
        for (k, v) in m.pairs::<Value, Value>().flatten() {
            pairs.push((
                to_reply(&k, resp3, counted, depth + 1),
                to_reply(&v, resp3, counted, depth + 1),
            ));
        }
        return Reply::Map(pairs);
    }
    if let Value::Table(s) = field("set") {
        let mut items = Vec::new();
        for (k, _) in s.pairs::<Value, Value>().flatten() {
            items.push(to_reply(&k, resp3, counted, depth + 1));
        }
        return Reply::Set(items);
    }
    let mut items = Vec::new();
    for i in 1.. {
        match t.raw_get::<Value>(i) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(to_reply(&v, resp3, counted, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// A `redis.call` argument: strings as they are, numbers as `%.17g` (Redis's
/// `luaArgsToRedisArgv`); anything else is refused.
pub fn lua_arg(value: &Value) -> Option<bytes::Bytes> {
    match value {
        Value::String(s) => Some(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Number(n) => Some(bytes::Bytes::from(format_double_g17(*n))),
        Value::Integer(i) => Some(bytes::Bytes::from(i.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        Lua::new()
    }

    #[test]
    fn error_text_follows_redis_code_rules() {
        assert_eq!(error_text(b"-ERR bad thing"), b"ERR bad thing");
        assert_eq!(error_text(b"-WRONGTYPE Operation"), b"WRONGTYPE Operation");
        assert_eq!(error_text(b"-Lonely"), b"ERR Lonely");
        assert_eq!(error_text(b"plain message\r\n"), b"ERR plain message");
        assert_eq!(error_text(b"-My Error"), b"My Error");
    }

    #[test]
    fn resp2_replies_become_plain_lua_values() {
        let lua = lua();
        let v = reply_to_lua(&lua, &Reply::Int(7), false).unwrap();
        assert_eq!(v, Value::Number(7.0));
        let v = reply_to_lua(&lua, &Reply::Null, false).unwrap();
        assert_eq!(v, Value::Boolean(false));
        let v = reply_to_lua(&lua, &Reply::Null, true).unwrap();
        assert_eq!(v, Value::Nil);
        let Value::Table(t) = reply_to_lua(&lua, &Reply::OK, false).unwrap() else {
            panic!("status is a table")
        };
        assert_eq!(t.raw_get::<String>("ok").unwrap(), "OK");
        let map = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Int(1))]);
        let Value::Table(t) = reply_to_lua(&lua, &map, false).unwrap() else {
            panic!("map is a table")
        };
        assert_eq!(t.raw_len(), 2);
        let Value::Table(t) = reply_to_lua(&lua, &map, true).unwrap() else {
            panic!("map is a table")
        };
        let inner: Table = t.raw_get("map").unwrap();
        assert_eq!(inner.raw_get::<i64>("a").unwrap(), 1);
        let v = reply_to_lua(&lua, &Reply::Double(1.5), false).unwrap();
        assert_eq!(v.as_string().unwrap().to_str().unwrap(), "1.5");
        let v = reply_to_lua(&lua, &Reply::Bool(true), false).unwrap();
        assert_eq!(v, Value::Number(1.0));
    }

    #[test]
    fn error_replies_carry_the_counted_marker() {
        let lua = lua();
        let e = Reply::Error(ErrorReply::fixed("WRONGTYPE Operation against a key"));
        let Value::Table(t) = reply_to_lua(&lua, &e, false).unwrap() else {
            panic!("error is a table")
        };
        assert_eq!(
            t.raw_get::<String>("err").unwrap(),
            "WRONGTYPE Operation against a key"
        );
        let back = lua_to_reply(&Value::Table(t), false);
        assert!(back.error_counted);
        assert_eq!(
            back.reply,
            Reply::Error(ErrorReply::fixed("WRONGTYPE Operation against a key"))
        );
    }

    #[test]
    fn lua_values_become_replies() {
        let lua = lua();
        let v: Value = lua
            .load("return {1, 2.9, 'x', true, false, nil, 5}")
            .eval()
            .unwrap();
        assert_eq!(
            lua_to_reply(&v, false).reply,
            Reply::Array(vec![
                Reply::Int(1),
                Reply::Int(2),
                Reply::bulk_str("x"),
                Reply::Int(1),
                Reply::Null,
            ])
        );
        let v: Value = lua.load("return {ok='fine\\r\\nline'}").eval().unwrap();
        assert_eq!(
            lua_to_reply(&v, false).reply,
            Reply::status("fine  line".into())
        );
        let v: Value = lua.load("return true").eval().unwrap();
        assert_eq!(lua_to_reply(&v, true).reply, Reply::Bool(true));
        let v: Value = lua.load("return {double=3.5}").eval().unwrap();
        assert_eq!(lua_to_reply(&v, true).reply, Reply::Double(3.5));
        let v: Value = lua.load("return {set={a=true}}").eval().unwrap();
        assert_eq!(
            lua_to_reply(&v, true).reply,
            Reply::Set(vec![Reply::bulk_str("a")])
        );
    }

    #[test]
    fn call_arguments_are_strings_or_numbers() {
        assert_eq!(lua_arg(&Value::Number(3.0)).unwrap(), "3");
        assert_eq!(lua_arg(&Value::Number(0.1)).unwrap(), "0.10000000000000001");
        assert!(lua_arg(&Value::Boolean(true)).is_none());
    }
}

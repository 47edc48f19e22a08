//! The `cjson` library scripts get (the API of lua-cjson 2.1, which Redis bundles): `encode`,
//! `decode`, `null` and the settings functions. Tables whose keys are all positive integers
//! encode as arrays (holes as null, refusing excessively sparse ones), other tables as
//! objects; numbers use 14 significant digits; `null` decodes to the `cjson.null` sentinel.
//! The functions return `(ok, value_or_message)`; `glue.lua` raises the message with the
//! caller's position, as lua-cjson's `luaL_error` does.

use mlua::{LightUserData, Lua, Table, Value, Variadic};
use std::cell::Cell;
use std::rc::Rc;

#[derive(Clone, Copy)]
struct Settings {
    encode_max_depth: i64,
    decode_max_depth: i64,
    encode_invalid_numbers: bool,
    decode_invalid_numbers: bool,
    precision: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: false,
            decode_invalid_numbers: true,
            precision: 14,
        }
    }
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn format_number(n: f64, precision: usize) -> String {
    if n.is_nan() {
        return "nan".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    crate::resp::reply::format_double_g(n, precision as u8)
}

fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\x08' => out.extend_from_slice(b"\\b"),
            b'\x0c' => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 || b == 0x7f => {
                out.extend_from_slice(format!("\\u{:04x}", b).as_bytes());
            }
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// `Some(len)` when every key is a positive integer (an array of that length).
fn array_length(t: &Table) -> Result<Option<usize>, String> {
    let mut max = 0usize;
    let mut items = 0usize;
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        match k {
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => {
                max = max.max(n as usize);
                items += 1;
            }
            Value::Integer(n) if n >= 1 => {
                max = max.max(n as usize);
                items += 1;
            }
            _ => return Ok(None),
        }
    }
    if max > 10 && max > items * 2 {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_value(out: &mut Vec<u8>, v: &Value, depth: i64, cfg: &Settings) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => {
            if !n.is_finite() && !cfg.encode_invalid_numbers {
                return Err("Cannot serialise number: must not be NaN or Inf".into());
            }
            out.extend_from_slice(format_number(*n, cfg.precision).as_bytes());
        }
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::String(s) => escape_into(out, &s.as_bytes()),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({depth})"));
            }
            match array_length(t)? {
                Some(len) if len > 0 => {
                    out.push(b'[');
                    for i in 1..=len {
                        if i > 1 {
                            out.push(b',');
                        }
                        let item: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                        encode_value(out, &item, depth, cfg)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for pair in t.pairs::<Value, Value>() {
                        let (k, item) = pair.map_err(|e| e.to_string())?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => escape_into(out, &s.as_bytes()),
                            Value::Number(n) => {
                                escape_into(out, format_number(*n, cfg.precision).as_bytes())
                            }
                            Value::Integer(n) => escape_into(out, n.to_string().as_bytes()),
                            other => {
                                return Err(format!(
                                    "Cannot serialise {}: table key must be a number or string",
                                    other.type_name()
                                ))
                            }
                        }
                        out.push(b':');
                        encode_value(out, &item, depth, cfg)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            ))
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    depth: i64,
    cfg: Settings,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && matches!(self.s[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        let token = if self.pos >= self.s.len() {
            "T_END"
        } else {
            "invalid token"
        };
        format!(
            "Expected {what} but found {token} at character {}",
            self.pos + 1
        )
    }

    fn value(&mut self, lua: &Lua) -> Result<Value, String> {
        self.ws();
        let Some(&c) = self.s.get(self.pos) else {
            return Err(format!(
                "Expected value but found T_END at character {}",
                self.pos + 1
            ));
        };
        match c {
            b'{' | b'[' => {
                self.depth += 1;
                if self.depth > self.cfg.decode_max_depth {
                    return Err(format!(
                        "Found too many nested data structures ({}) at character {}",
                        self.depth,
                        self.pos + 1
                    ));
                }
                self.pos += 1;
                let v = if c == b'{' {
                    self.object(lua)?
                } else {
                    self.array(lua)?
                };
                self.depth -= 1;
                Ok(v)
            }
            b'"' => Ok(Value::String(
                lua.create_string(self.string()?)
                    .map_err(|e| e.to_string())?,
            )),
            b't' if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(null())
            }
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.pos < self.s.len()
            && matches!(self.s[self.pos], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'x' | b'X' | b'a'..=b'd' | b'f' | b'A'..=b'D' | b'F' | b'i' | b'n' | b'I' | b'N')
        {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("");
        let lower = text.to_ascii_lowercase();
        let invalid = lower.contains("inf") || lower.contains("nan") || lower.contains('x');
        match text.parse::<f64>() {
            Ok(n) if !invalid || self.cfg.decode_invalid_numbers => Ok(Value::Number(n)),
            _ => {
                self.pos = start;
                Err(self.err("value"))
            }
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(format!(
                    "Expected value but found invalid token at character {}",
                    self.pos + 1
                ));
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("value"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let cp = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&cp)
                                && self.s[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                0x10000 + ((cp - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3ff)
                            } else {
                                cp
                            };
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("value")),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or(self.err("value"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("value"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("value"))?;
        self.pos += 4;
        Ok(v)
    }

    fn array(&mut self, lua: &Lua) -> Result<Value, String> {
        let t = lua.create_table().map_err(|e| e.to_string())?;
        self.ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value(lua)?;
            t.raw_set(i, v).map_err(|e| e.to_string())?;
            i += 1;
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.err("comma or array end")),
            }
        }
    }

    fn object(&mut self, lua: &Lua) -> Result<Value, String> {
        let t = lua.create_table().map_err(|e| e.to_string())?;
        self.ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.ws();
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.err("object key string"));
            }
            let key = self.string()?;
            self.ws();
            if self.s.get(self.pos) != Some(&b':') {
                return Err(self.err("colon"));
            }
            self.pos += 1;
            let v = self.value(lua)?;
            t.raw_set(lua.create_string(key).map_err(|e| e.to_string())?, v)
                .map_err(|e| e.to_string())?;
            self.ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => return Err(self.err("comma or object end")),
            }
        }
    }
}

type Outcome = (bool, Value);

fn failure(lua: &Lua, msg: String) -> mlua::Result<Outcome> {
    Ok((false, Value::String(lua.create_string(msg)?)))
}

fn setting_int(args: &[Value], default: i64) -> i64 {
    match args.first() {
        Some(Value::Number(n)) => *n as i64,
        Some(Value::Integer(n)) => *n,
        _ => default,
    }
}

fn setting_bool(args: &[Value], current: bool) -> bool {
    match args.first() {
        Some(Value::Boolean(b)) => *b,
        Some(Value::String(s)) => matches!(&*s.as_bytes(), b"on" | b"null"),
        _ => current,
    }
}

/// Builds the raw `cjson` table (functions return `(ok, value_or_message)`).
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let settings = Rc::new(Cell::new(Settings::default()));
    let t = lua.create_table()?;
    let s = settings.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return failure(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)".into(),
                );
            }
            let mut out = Vec::new();
            match encode_value(&mut out, &args[0], 0, &s.get()) {
                Ok(()) => Ok((true, Value::String(lua.create_string(out)?))),
                Err(msg) => failure(lua, msg),
            }
        })?,
    )?;
    let s = settings.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let text = match args.first() {
                Some(Value::String(s)) if args.len() == 1 => s.as_bytes().to_vec(),
                _ => {
                    return failure(
                        lua,
                        "bad argument #1 to 'decode' (expected 1 argument)".into(),
                    )
                }
            };
            let mut p = Parser {
                s: &text,
                pos: 0,
                depth: 0,
                cfg: s.get(),
            };
            let v = match p.value(lua) {
                Ok(v) => v,
                Err(msg) => return failure(lua, msg),
            };
            p.ws();
            if p.pos < text.len() {
                return failure(
                    lua,
                    format!(
                        "Expected the end but found invalid token at character {}",
                        p.pos + 1
                    ),
                );
            }
            Ok((true, v))
        })?,
    )?;
    macro_rules! setting {
        ($name:literal, |$cfg:ident, $args:ident| $body:expr, $ret:expr) => {{
            let s = settings.clone();
            t.raw_set(
                $name,
                lua.create_function(move |_, $args: Variadic<Value>| {
                    let mut $cfg = s.get();
                    $body;
                    s.set($cfg);
                    Ok((true, $ret(&$cfg)))
                })?,
            )?;
        }};
    }
    setting!(
        "encode_max_depth",
        |cfg, args| cfg.encode_max_depth = setting_int(&args, cfg.encode_max_depth),
        |c: &Settings| Value::Number(c.encode_max_depth as f64)
    );
    setting!(
        "decode_max_depth",
        |cfg, args| cfg.decode_max_depth = setting_int(&args, cfg.decode_max_depth),
        |c: &Settings| Value::Number(c.decode_max_depth as f64)
    );
    setting!(
        "encode_invalid_numbers",
        |cfg, args| cfg.encode_invalid_numbers = setting_bool(&args, cfg.encode_invalid_numbers),
        |c: &Settings| Value::Boolean(c.encode_invalid_numbers)
    );
    setting!(
        "decode_invalid_numbers",
        |cfg, args| cfg.decode_invalid_numbers = setting_bool(&args, cfg.decode_invalid_numbers),
        |c: &Settings| Value::Boolean(c.decode_invalid_numbers)
    );
    setting!(
        "encode_number_precision",
        |cfg, args| cfg.precision = setting_int(&args, cfg.precision as i64).clamp(1, 14) as usize,
        |c: &Settings| Value::Number(c.precision as f64)
    );
    // Accepted for compatibility; they change nothing here.
    for (name, answer) in [("encode_keep_buffer", true), ("encode_sparse_array", false)] {
        t.raw_set(
            name,
            lua.create_function(move |_, _: Variadic<Value>| Ok((true, answer)))?,
        )?;
    }
    t.raw_set("null", null())?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lua: &Lua, code: &str) -> String {
        lua.load(code).eval::<String>().unwrap()
    }

    #[test]
    fn encode_and_decode_round_trip() {
        let lua = Lua::new();
        let raw = library(&lua).unwrap();
        lua.globals().set("raw", raw).unwrap();
        lua.load(
            "cjson = {}
             for k, f in pairs(raw) do
               if type(f) == 'function' then
                 cjson[k] = function(...) local ok, v = f(...) if not ok then error(v, 0) end return v end
               else cjson[k] = f end
             end",
        )
        .exec()
        .unwrap();
        assert_eq!(run(&lua, "return cjson.encode({1, 2, 'x'})"), "[1,2,\"x\"]");
        assert_eq!(
            run(&lua, "return cjson.encode({a='b/c'})"),
            "{\"a\":\"b\\/c\"}"
        );
        assert_eq!(run(&lua, "return cjson.encode(0.1)"), "0.1");
        assert_eq!(run(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(
            run(
                &lua,
                "return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')"
            ),
            "0 -5000 -1 0.0003 1023.2 0"
        );
        assert_eq!(run(&lua, "return cjson.decode('{\"k\": \"v\"}').k"), "v");
        assert_eq!(
            run(
                &lua,
                "return tostring(cjson.decode('[null]')[1] == cjson.null)"
            ),
            "true"
        );
        assert_eq!(
            run(&lua, "return select(2, pcall(cjson.encode, {[false]=1}))"),
            "Cannot serialise boolean: table key must be a number or string"
        );
        assert_eq!(
            run(&lua, "return tostring(pcall(cjson.encode, {n=0/0}))"),
            "false"
        );
    }
}

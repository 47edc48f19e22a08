//! The `cmsgpack` library scripts get (the API of lua-cmsgpack, which Redis bundles): `pack`
//! of any number of values into one MessagePack stream, and `unpack`, `unpack_one`,
//! `unpack_limit` back. Integral numbers pack as the smallest integer encoding, others as a
//! 32-bit float when that is exact and a double otherwise; tables whose keys are exactly
//! 1..n pack as arrays, others as maps; nesting deeper than 16 packs as nil. The functions
//! return `(ok, ...)`; `glue.lua` raises the message with the caller's position.

use mlua::{Lua, MultiValue, Table, Value, Variadic};

const MAX_NESTING: usize = 16;

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_len(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, b16: u8, b32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_infinite() && !n.is_nan() && (n as i64) as f64 == n {
        encode_int(out, n as i64);
    } else if ((n as f32) as f64) == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// lua-cmsgpack's `table_is_an_array`: keys are positive 32-bit integers, as many as the
/// largest one.
fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Number(n) if n > 0.0 && (n as i32) as f64 == n => n as i64,
            Value::Integer(n) if n > 0 && n <= i32::MAX as i64 => n,
            _ => return Ok(false),
        };
        max = max.max(n);
        count += 1;
    }
    Ok(max == count)
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            if b.len() < 32 {
                out.push(0xa0 | b.len() as u8);
            } else if b.len() <= 0xff {
                out.extend_from_slice(&[0xd9, b.len() as u8]);
            } else {
                encode_len(out, b.len(), 0xa0, 0, 0xda, 0xdb);
            }
            out.extend_from_slice(&b);
        }
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => encode_number(out, *n),
        Value::Integer(n) => encode_int(out, *n),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                let len = t.raw_len();
                encode_len(out, len, 0x90, 15, 0xdc, 0xdd);
                for j in 1..=len {
                    let item: Value = t.get(j)?;
                    encode(out, &item, level + 1)?;
                }
            } else {
                // Two passes rather than collecting: every Value held is a Lua reference,
                // and big tables would exhaust the references Lua can hold at once.
                let mut count = 0;
                for pair in t.clone().pairs::<Value, Value>() {
                    pair?;
                    count += 1;
                }
                encode_len(out, count, 0x80, 15, 0xde, 0xdf);
                for pair in t.clone().pairs::<Value, Value>() {
                    let (k, item) = pair?;
                    encode(out, &k, level + 1)?;
                    encode(out, &item, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

enum DecodeError {
    Eof,
    BadFormat,
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Eof)?;
        let b = self.s.get(self.pos..end).ok_or(DecodeError::Eof)?;
        self.pos = end;
        Ok(b)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    fn value(&mut self, lua: &Lua) -> Result<Value, DecodeError> {
        let lua_err = |_| DecodeError::BadFormat;
        let tag = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match tag {
            0xcc => num(self.be(1)? as f64),
            0xcd => num(self.be(2)? as f64),
            0xce => num(self.be(4)? as f64),
            0xcf => num(self.be(8)? as i64 as f64),
            0xd0 => num(self.be(1)? as u8 as i8 as f64),
            0xd1 => num(self.be(2)? as u16 as i16 as f64),
            0xd2 => num(self.be(4)? as u32 as i32 as f64),
            0xd3 => num(self.be(8)? as i64 as f64),
            0xc0 => Ok(Value::Nil),
            0xc3 => Ok(Value::Boolean(true)),
            0xc2 => Ok(Value::Boolean(false)),
            0xca => num(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => num(f64::from_bits(self.be(8)?)),
            0xd9..=0xdb => {
                let n = self.be(match tag {
                    0xd9 => 1,
                    0xda => 2,
                    _ => 4,
                })? as usize;
                let b = self.take(n)?;
                Ok(Value::String(lua.create_string(b).map_err(lua_err)?))
            }
            0xdc | 0xdd => {
                let n = self.be(if tag == 0xdc { 2 } else { 4 })? as usize;
                self.array(lua, n)
            }
            0xde | 0xdf => {
                let n = self.be(if tag == 0xde { 2 } else { 4 })? as usize;
                self.map(lua, n)
            }
            t if t & 0x80 == 0 => num(t as f64),
            t if t & 0xe0 == 0xe0 => num(t as i8 as f64),
            t if t & 0xe0 == 0xa0 => {
                let b = self.take((t & 0x1f) as usize)?;
                Ok(Value::String(lua.create_string(b).map_err(lua_err)?))
            }
            t if t & 0xf0 == 0x90 => self.array(lua, (t & 0xf) as usize),
            t if t & 0xf0 == 0x80 => self.map(lua, (t & 0xf) as usize),
            _ => Err(DecodeError::BadFormat),
        }
    }

    fn array(&mut self, lua: &Lua, n: usize) -> Result<Value, DecodeError> {
        let t = lua.create_table().map_err(|_| DecodeError::BadFormat)?;
        for i in 1..=n {
            let v = self.value(lua)?;
            t.raw_set(i, v).map_err(|_| DecodeError::BadFormat)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> Result<Value, DecodeError> {
        let t = lua.create_table().map_err(|_| DecodeError::BadFormat)?;
        for _ in 0..n {
            let k = self.value(lua)?;
            let v = self.value(lua)?;
            t.raw_set(k, v).map_err(|_| DecodeError::BadFormat)?;
        }
        Ok(Value::Table(t))
    }
}

fn failure(lua: &Lua, msg: String) -> mlua::Result<MultiValue> {
    Ok(MultiValue::from_iter([
        Value::Boolean(false),
        Value::String(lua.create_string(msg)?),
    ]))
}

fn int_arg(args: &[Value], i: usize) -> Option<i64> {
    match args.get(i) {
        None | Some(Value::Nil) => Some(0),
        Some(Value::Number(n)) => Some(*n as i64),
        Some(Value::Integer(n)) => Some(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .map(|n| n as i64),
        _ => None,
    }
}

/// lua-cmsgpack's `mp_unpack_full`: everything when neither limit nor offset is given,
/// otherwise the next offset (-1 at the end) followed by up to `limit` values.
fn unpack(lua: &Lua, args: &[Value], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let Some(Value::String(s)) = args.first() else {
        return failure(lua, "bad argument #1 to 'unpack' (string expected)".into());
    };
    let bytes = s.as_bytes().to_vec();
    let len = bytes.len() as i64;
    if offset < 0 || limit < 0 {
        return failure(
            lua,
            format!("Invalid request to unpack with offset of {offset} and limit of {len}."),
        );
    }
    if offset > len {
        return failure(
            lua,
            format!("Start offset {offset} greater than input length {len}."),
        );
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all { i64::MAX } else { limit };
    let mut cur = Cursor {
        s: &bytes,
        pos: offset as usize,
    };
    let mut values = vec![Value::Boolean(true)];
    if !decode_all {
        values.push(Value::Nil);
    }
    let mut count = 0;
    while cur.pos < bytes.len() && count < limit {
        match cur.value(lua) {
            Ok(v) => values.push(v),
            Err(DecodeError::Eof) => return failure(lua, "Missing bytes in input.".into()),
            Err(DecodeError::BadFormat) => return failure(lua, "Bad data format in input.".into()),
        }
        count += 1;
    }
    if !decode_all {
        values[1] = Value::Number(if cur.pos >= bytes.len() {
            -1.0
        } else {
            cur.pos as f64
        });
    }
    Ok(MultiValue::from_iter(values))
}

/// Builds the raw `cmsgpack` table (functions return `(ok, ...)`).
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return failure(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)".into(),
                );
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(&mut out, v, 0)?;
            }
            Ok(MultiValue::from_iter([
                Value::Boolean(true),
                Value::String(lua.create_string(out)?),
            ]))
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| unpack(lua, &args, 0, 0))?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let Some(offset) = int_arg(&args, 1) else {
                return failure(
                    lua,
                    "bad argument #2 to 'unpack_one' (number expected)".into(),
                );
            };
            unpack(lua, &args, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let (Some(limit), Some(offset)) = (int_arg(&args, 1), int_arg(&args, 2)) else {
                return failure(
                    lua,
                    "bad argument #2 to 'unpack_limit' (number expected)".into(),
                );
            };
            unpack(lua, &args, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "lua-cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn numbers_pack_like_lua_cmsgpack() {
        let mut out = Vec::new();
        encode_number(&mut out, 0.1);
        assert_eq!(hex(&out), "cb3fb999999999999a");
        out.clear();
        encode_number(&mut out, -1099511627776.0);
        assert_eq!(hex(&out), "d3ffffff0000000000");
        out.clear();
        encode_number(&mut out, 1.5);
        assert_eq!(hex(&out), "ca3fc00000");
        out.clear();
        encode_number(&mut out, -5.0);
        assert_eq!(hex(&out), "fb");
    }

    #[test]
    fn tables_round_trip() {
        let lua = Lua::new();
        let t: Value = lua.load("return {1, 2, {a='b'}}").eval().unwrap();
        let mut out = Vec::new();
        encode(&mut out, &t, 0).unwrap();
        assert_eq!(hex(&out), "93010281a161a162");
        let mut cur = Cursor { s: &out, pos: 0 };
        let Ok(Value::Table(back)) = cur.value(&lua) else {
            panic!("decodes to a table")
        };
        assert_eq!(back.raw_len(), 3);
    }
}

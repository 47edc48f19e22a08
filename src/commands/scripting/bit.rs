//! The `bit` library scripts get (LuaBitOp's API, which Redis bundles): 32-bit operations on
//! Lua numbers. A number becomes a 32-bit integer the way LuaBitOp does it, by rounding
//! through the mantissa of `x + 2^52 + 2^51` and keeping the low 32 bits.

use mlua::{Lua, Table, Value, Variadic};

fn tobit(x: f64) -> i32 {
    (x + 6_755_399_441_055_744.0).to_bits() as u32 as i32
}

fn arg(lua: &Lua, args: &[Value], i: usize, fname: &str) -> mlua::Result<i32> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    let n = match &v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(_) => lua.coerce_number(v.clone())?,
        _ => None,
    };
    match n {
        Some(n) => Ok(tobit(n)),
        None => {
            let got = if i >= args.len() {
                "no value"
            } else {
                v.type_name()
            };
            Err(mlua::Error::runtime(format!(
                "bad argument #{} to '{fname}' (number expected, got {got})",
                i + 1
            )))
        }
    }
}

fn unary(lua: &Lua, t: &Table, name: &'static str, op: fn(i32) -> i32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: Variadic<Value>| {
        Ok(op(arg(lua, &args, 0, name)?) as f64)
    })?;
    t.raw_set(name, f)
}

fn fold(lua: &Lua, t: &Table, name: &'static str, op: fn(i32, i32) -> i32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: Variadic<Value>| {
        let mut acc = arg(lua, &args, 0, name)?;
        for i in 1..args.len() {
            acc = op(acc, arg(lua, &args, i, name)?);
        }
        Ok(acc as f64)
    })?;
    t.raw_set(name, f)
}

fn shift(lua: &Lua, t: &Table, name: &'static str, op: fn(i32, u32) -> i32) -> mlua::Result<()> {
    let f = lua.create_function(move |lua, args: Variadic<Value>| {
        let x = arg(lua, &args, 0, name)?;
        let n = arg(lua, &args, 1, name)? as u32 & 31;
        Ok(op(x, n) as f64)
    })?;
    t.raw_set(name, f)
}

fn tohex(lua: &Lua, args: &[Value]) -> mlua::Result<String> {
    let b = arg(lua, args, 0, "tohex")? as u32;
    let mut n = if matches!(args.get(1), None | Some(Value::Nil)) {
        8
    } else {
        arg(lua, args, 1, "tohex")?
    };
    let upper = n < 0;
    if upper {
        n = n.wrapping_neg();
    }
    let n = n.clamp(0, 8) as usize;
    let digits: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    let mut out = vec![0u8; n];
    let mut v = b;
    for slot in out.iter_mut().rev() {
        *slot = digits[(v & 15) as usize];
        v >>= 4;
    }
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// Builds the `bit` table.
pub fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    unary(lua, &t, "tobit", |x| x)?;
    unary(lua, &t, "bnot", |x| !x)?;
    unary(lua, &t, "bswap", |x| x.swap_bytes())?;
    fold(lua, &t, "band", |a, b| a & b)?;
    fold(lua, &t, "bor", |a, b| a | b)?;
    fold(lua, &t, "bxor", |a, b| a ^ b)?;
    shift(lua, &t, "lshift", |x, n| ((x as u32) << n) as i32)?;
    shift(lua, &t, "rshift", |x, n| ((x as u32) >> n) as i32)?;
    shift(lua, &t, "arshift", |x, n| x >> n)?;
    shift(lua, &t, "rol", |x, n| (x as u32).rotate_left(n) as i32)?;
    shift(lua, &t, "ror", |x, n| (x as u32).rotate_right(n) as i32)?;
    let f = lua.create_function(|lua, args: Variadic<Value>| tohex(lua, &args))?;
    t.raw_set("tohex", f)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_wrap_to_32_bits_like_luabitop() {
        assert_eq!(tobit(4294967295.0), -1);
        assert_eq!(tobit(2147483648.0), i32::MIN);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(-1.0), -1);
    }

    #[test]
    fn library_functions() {
        let lua = Lua::new();
        lua.globals().set("bit", library(&lua).unwrap()).unwrap();
        let check = |code: &str, want: &str| {
            let got: String = lua.load(code).eval().unwrap();
            assert_eq!(got, want, "{code}");
        };
        check("return tostring(bit.band(0xff, 0x0f))", "15");
        check("return tostring(bit.bor(1, 2, 4))", "7");
        check("return tostring(bit.lshift(1, 31))", "-2147483648");
        check("return tostring(bit.rshift(-1, 28))", "15");
        check("return tostring(bit.arshift(-16, 2))", "-4");
        check("return bit.tohex(255)", "000000ff");
        check("return bit.tohex(-1, -4)", "FFFF");
        check("return tostring(bit.bswap(0x12345678))", "2018915346");
    }
}

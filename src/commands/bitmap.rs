//! The bitmap family: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD and BITFIELD_RO.
//! Bitmaps are plain strings read as bit arrays, bit 0 being the most significant bit of the
//! first byte. The commands follow Redis 7.0's `bitops.c` in their replies, error texts, order
//! of checks (argument errors before or after the key lookup, as Redis does them), dirty
//! counts and encodings: a string grown or edited by a bit command becomes `raw`, and BITOP
//! stores a `raw` string or deletes its destination when the result is empty.

use super::context::ExecCtx;
use super::errors;
use super::spec::{acl, flag::*, kflag::*, CmdResult, CommandSpec as C, Handler, KeySpec};
use crate::config::values::notify;
use crate::keyspace::{StrValue, Value};
use crate::resp::{ErrorReply, Reply};
use crate::util::parse_int;
use bytes::Bytes;

const K_SETBIT: &[KeySpec] = &[KeySpec::single(1, RW | ACCESS | UPDATE)];
const K_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, RO | ACCESS)];
const K_BITOP: &[KeySpec] = &[
    KeySpec::single(2, OW | UPDATE),
    KeySpec::range(3, -1, 1, RO | ACCESS),
];
const K_BITFIELD: &[KeySpec] = &[KeySpec::single(1, RW | UPDATE | ACCESS | VARIABLE_FLAGS)
    .notes("This command allows both access and modification of the key")];

/// A row of this family's table: every bitmap command has the `@bitmap` category and group.
const fn cmd(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: &'static [KeySpec],
    since: &'static str,
    handler: Handler,
) -> C {
    C::new(
        name,
        arity,
        flags,
        acl::BITMAP,
        keys,
        "bitmap",
        since,
        handler,
    )
}

// One row per command reads best as one line.
#[rustfmt::skip]
pub const COMMANDS: &[C] = &[
    cmd("setbit", 4, WRITE | DENYOOM, K_SETBIT, "2.2.0", setbit),
    cmd("getbit", 3, READONLY | FAST, K_RO_ACCESS, "2.2.0", getbit),
    cmd("bitcount", -2, READONLY, K_RO_ACCESS, "2.6.0", bitcount),
    cmd("bitpos", -3, READONLY, K_RO_ACCESS, "2.8.7", bitpos),
    cmd("bitop", -4, WRITE | DENYOOM, K_BITOP, "2.6.0", bitop),
    cmd("bitfield", -2, WRITE | DENYOOM | REPLY_BEFORE_EVENTS, K_BITFIELD, "3.2.0", bitfield),
    cmd("bitfield_ro", -2, READONLY | FAST, K_RO_ACCESS, "6.0.0", bitfield_ro),
];

// ---------------------------------------------------------------------------------------------
// Arguments

/// Redis's `getBitOffsetFromArgument`: a non-negative bit offset whose byte lies below
/// proto-max-bulk-len. With `hash_bits` (BITFIELD), `#n` means `n * bits`.
fn bit_offset(ctx: &ExecCtx, arg: &[u8], hash_bits: Option<u32>) -> Result<u64, ErrorReply> {
    let (digits, mul) = match (arg.first(), hash_bits) {
        (Some(b'#'), Some(bits)) if bits > 0 => (&arg[1..], Some(bits)),
        _ => (arg, None),
    };
    let mut offset = parse_int(digits).ok_or(errors::BIT_OFFSET)?;
    if let Some(bits) = mul {
        // Redis multiplies in a C `long long`; an overflow wraps there and is rejected below
        // unless it happens to land in range, which wrapping reproduces.
        offset = offset.wrapping_mul(bits as i64);
    }
    let max = ctx.server.config().proto_max_bulk_len;
    if offset < 0 || (offset as u64 >> 3) >= max {
        return Err(errors::BIT_OFFSET);
    }
    Ok(offset as u64)
}

/// BIT or BYTE (case-insensitive); anything else is a syntax error.
fn bit_unit(arg: &[u8]) -> Result<bool, ErrorReply> {
    if arg.eq_ignore_ascii_case(b"bit") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"byte") {
        Ok(false)
    } else {
        Err(errors::SYNTAX)
    }
}

fn int(arg: &[u8]) -> Result<i64, ErrorReply> {
    parse_int(arg).ok_or(errors::NOT_INTEGER)
}

/// Resolves a BITCOUNT / BITPOS range over a string of `len` bytes to an inclusive range of
/// bit positions: negative indexes count from the end, both ends are clamped, and `None`
/// means the range is empty. In byte units the range covers whole bytes.
fn bit_range(len: usize, start: i64, end: i64, in_bits: bool) -> Option<(u64, u64)> {
    let total = if in_bits { len as i64 * 8 } else { len as i64 };
    let (mut start, mut end) = (start, end);
    if start < 0 {
        start = start.saturating_add(total);
    }
    if end < 0 {
        end = end.saturating_add(total);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(if in_bits {
        (start, end)
    } else {
        (start * 8, end * 8 + 7)
    })
}

// ---------------------------------------------------------------------------------------------
// Bit arithmetic on byte slices

/// The bits of `byte` inside the inclusive bit range `[lo, hi]` of positions 0..=7.
fn byte_mask(lo: u64, hi: u64) -> u8 {
    let head = 0xFFu8 >> lo;
    let tail = !((0xFFu16 >> (hi + 1)) as u8);
    head & tail
}

/// Set bits in the inclusive bit range `[start, end]`, which lies inside `p`.
fn count_bits(p: &[u8], start: u64, end: u64) -> u64 {
    let (first, last) = ((start / 8) as usize, (end / 8) as usize);
    let lo_mask = byte_mask(start % 8, 7);
    let hi_mask = byte_mask(0, end % 8);
    if first == last {
        return (p[first] & lo_mask & hi_mask).count_ones() as u64;
    }
    let mut n = (p[first] & lo_mask).count_ones() as u64 + (p[last] & hi_mask).count_ones() as u64;
    let middle = &p[first + 1..last];
    let chunks = middle.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        n += u64::from_ne_bytes(c.try_into().expect("8-byte chunk")).count_ones() as u64;
    }
    n + rest.iter().map(|b| b.count_ones() as u64).sum::<u64>()
}

/// The first bit equal to `bit` in the inclusive bit range `[start, end]` of `p`.
fn find_bit(p: &[u8], start: u64, end: u64, bit: bool) -> Option<u64> {
    let (first, last) = ((start / 8) as usize, (end / 8) as usize);
    // A byte with its out-of-range bits forced to "not what we look for".
    let look = |i: usize, mask: u8| -> Option<u64> {
        let b = if bit { p[i] & mask } else { !p[i] & mask };
        (b != 0).then(|| i as u64 * 8 + b.leading_zeros() as u64)
    };
    if first == last {
        return look(first, byte_mask(start % 8, end % 8));
    }
    if let Some(pos) = look(first, byte_mask(start % 8, 7)) {
        return Some(pos);
    }
    let skip = if bit { 0u8 } else { 0xFF };
    if let Some(i) = p[first + 1..last].iter().position(|&b| b != skip) {
        return look(first + 1 + i, 0xFF);
    }
    look(last, byte_mask(0, end % 8))
}

/// Reads `bits` bits at `offset` as an unsigned number; bits past the end of `p` read as 0.
fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        let pos = offset + j;
        let byte = p.get((pos >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | ((byte >> (7 - (pos & 7))) & 1) as u64;
    }
    v
}

/// Reads `bits` bits at `offset` as a two's complement number.
fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(p, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Writes the low `bits` bits of `value` at `offset`; `p` must be long enough.
fn set_bits(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits as u64 {
        let on = (value >> (bits as u64 - 1 - j)) & 1 == 1;
        let pos = offset + j;
        let mask = 0x80u8 >> (pos & 7);
        let byte = &mut p[(pos >> 3) as usize];
        if on {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// BITFIELD's OVERFLOW modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// Redis's `checkUnsignedBitfieldOverflow`: `None` when `value + incr` fits in `bits` unsigned
/// bits, otherwise `Some(result)` with what WRAP or SAT store (unused under FAIL).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, mode: Overflow) -> Option<u64> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrapped = || {
        let sum = value.wrapping_add(incr as u64);
        if bits == 64 {
            sum
        } else {
            sum & max
        }
    };
    if value > max || (incr > 0 && incr > max_incr) {
        Some(if mode == Overflow::Sat {
            max
        } else {
            wrapped()
        })
    } else if incr < 0 && incr < min_incr {
        Some(if mode == Overflow::Sat { 0 } else { wrapped() })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, the signed counterpart of `unsigned_overflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, mode: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrapped = || {
        let mut sum = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let high = u64::MAX << bits;
            if sum & (1u64 << (bits - 1)) != 0 {
                sum |= high;
            } else {
                sum &= !high;
            }
        }
        sum as i64
    };
    let narrow = bits != 64;
    if value > max || (narrow && incr > max_incr) || (value >= 0 && incr > 0 && incr > max_incr) {
        Some(if mode == Overflow::Sat {
            max
        } else {
            wrapped()
        })
    } else if value < min
        || (narrow && incr < min_incr)
        || (value < 0 && incr < 0 && incr < min_incr)
    {
        Some(if mode == Overflow::Sat {
            min
        } else {
            wrapped()
        })
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Key access

/// Redis's `lookupStringForBitCommand`: the string at `key`, created or zero-padded so that
/// bit `max_bit` exists, and made `raw`. Returns whether it was created or grown.
fn grow_for_bit(ctx: &mut ExecCtx, key: &[u8], max_bit: u64) -> Result<bool, ErrorReply> {
    let need = (max_bit >> 3) as usize + 1;
    match ctx.write_str(key)?.map(|s| s.len()) {
        None => {
            ctx.set_key(key, Value::Str(StrValue::raw(vec![0u8; need])), false);
            Ok(true)
        }
        Some(_) => {
            let buf = ctx.write_str(key)?.expect("key found above").make_raw();
            if buf.len() < need {
                buf.resize(need, 0);
                Ok(true)
            } else {
                Ok(false)
            }
        }
    }
}

/// The raw buffer of a string `grow_for_bit` just prepared.
fn raw_buf<'c>(ctx: &'c mut ExecCtx, key: &[u8]) -> Result<&'c mut Vec<u8>, ErrorReply> {
    Ok(ctx.write_str(key)?.expect("prepared above").make_raw())
}

// ---------------------------------------------------------------------------------------------
// SETBIT, GETBIT

fn setbit(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = parse_int(&args[3]).ok_or(errors::BIT_VALUE)?;
    if on & !1 != 0 {
        return Err(errors::BIT_VALUE);
    }
    let grew = grow_for_bit(ctx, key, offset)?;
    let buf = raw_buf(ctx, key)?;
    let byte = &mut buf[(offset >> 3) as usize];
    let mask = 0x80u8 >> (offset & 7);
    let old = *byte & mask != 0;
    if grew || old != (on == 1) {
        if on == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
        ctx.dirty(1);
        ctx.notify(notify::STRING, "setbit", key);
    }
    Ok(Reply::Int(old as i64))
}

fn getbit(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let Some(s) = ctx.read_str(&args[1])? else {
        return Ok(Reply::Int(0));
    };
    let bytes = s.to_bytes();
    let bit = bytes
        .get((offset >> 3) as usize)
        .map_or(0, |b| (b >> (7 - (offset & 7))) & 1);
    Ok(Reply::Int(bit as i64))
}

// ---------------------------------------------------------------------------------------------
// BITCOUNT, BITPOS

fn bitcount(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(s) = ctx.read_str(&args[1])? else {
        return Ok(Reply::Int(0));
    };
    let bytes = s.to_bytes();
    let range = match args.len() {
        2 => bit_range(bytes.len(), 0, -1, false),
        4 | 5 => {
            let start = int(&args[2])?;
            let end = int(&args[3])?;
            // Redis answers this case before it looks at the unit argument.
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            let in_bits = match args.get(4) {
                Some(unit) => bit_unit(unit)?,
                None => false,
            };
            bit_range(bytes.len(), start, end, in_bits)
        }
        _ => return Err(errors::SYNTAX),
    };
    Ok(Reply::Int(match range {
        Some((a, b)) => count_bits(&bytes, a, b) as i64,
        None => 0,
    }))
}

fn bitpos(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let bit = int(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(errors::BITPOS_BIT);
    }
    let bit = bit == 1;
    // A missing key is an endless run of zeros.
    let Some(s) = ctx.read_str(&args[1])? else {
        return Ok(Reply::Int(if bit { -1 } else { 0 }));
    };
    let bytes = s.to_bytes();
    let len = bytes.len();
    let (range, end_given) = match args.len() {
        3 => (bit_range(len, 0, -1, false), false),
        4..=6 => {
            let start = int(&args[3])?;
            let in_bits = match args.get(5) {
                Some(unit) => bit_unit(unit)?,
                None => false,
            };
            let (end, end_given) = match args.get(4) {
                Some(e) => (int(e)?, true),
                None => (i64::MAX, false),
            };
            (bit_range(len, start, end, in_bits), end_given)
        }
        _ => return Err(errors::SYNTAX),
    };
    let Some((start, end)) = range else {
        return Ok(Reply::Int(-1));
    };
    Ok(Reply::Int(match find_bit(&bytes, start, end, bit) {
        Some(pos) => pos as i64,
        // No clear bit in the string: without an explicit end, the string counts as padded
        // with zeros to the right, so the answer is the first bit after its last byte.
        None if !bit && !end_given => ((end / 8 + 1) * 8) as i64,
        None => -1,
    }))
}

// ---------------------------------------------------------------------------------------------
// BITOP

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let name = &args[1][..];
    let op = if name.eq_ignore_ascii_case(b"and") {
        BitOp::And
    } else if name.eq_ignore_ascii_case(b"or") {
        BitOp::Or
    } else if name.eq_ignore_ascii_case(b"xor") {
        BitOp::Xor
    } else if name.eq_ignore_ascii_case(b"not") {
        BitOp::Not
    } else {
        return Err(errors::SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(errors::BITOP_NOT_SINGLE);
    }
    let dest = &args[2][..];
    // Folds the sources one by one; a missing key is an empty string, and every byte past the
    // end of a source counts as zero.
    let mut result: Vec<u8> = Vec::new();
    for (i, key) in args[3..].iter().enumerate() {
        let Some(s) = ctx.read_str(key)? else {
            if op == BitOp::And {
                result.iter_mut().for_each(|b| *b = 0);
            }
            continue;
        };
        let src = s.to_bytes();
        if i == 0 {
            result = src.into_owned();
            if op == BitOp::Not {
                result.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        if result.len() < src.len() {
            result.resize(src.len(), 0);
        }
        let (head, tail) = result.split_at_mut(src.len());
        match op {
            BitOp::And => {
                head.iter_mut().zip(src.iter()).for_each(|(r, s)| *r &= s);
                tail.iter_mut().for_each(|b| *b = 0);
            }
            BitOp::Or => head.iter_mut().zip(src.iter()).for_each(|(r, s)| *r |= s),
            BitOp::Xor => head.iter_mut().zip(src.iter()).for_each(|(r, s)| *r ^= s),
            BitOp::Not => unreachable!("NOT has a single source"),
        }
    }
    let len = result.len();
    if len > 0 {
        ctx.set_key(dest, Value::Str(StrValue::raw(result)), false);
        ctx.dirty(1);
        ctx.notify(notify::STRING, "set", dest);
    } else if ctx.delete(dest) {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", dest);
    }
    Ok(Reply::Int(len as i64))
}

// ---------------------------------------------------------------------------------------------
// BITFIELD, BITFIELD_RO

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// Redis's `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &[u8]) -> Result<(bool, u32), ErrorReply> {
    // Redis reads the width as a C string: it ends at the first NUL.
    let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(errors::BITFIELD_TYPE),
    };
    match parse_int(&arg[1..]) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u32)),
        _ => Err(errors::BITFIELD_TYPE),
    }
}

fn parse_fields(ctx: &ExecCtx, args: &[Bytes]) -> Result<Vec<Field>, ErrorReply> {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let sub = &args[j][..];
        let op = if sub.eq_ignore_ascii_case(b"get") && left >= 2 {
            FieldOp::Get
        } else if sub.eq_ignore_ascii_case(b"set") && left >= 3 {
            FieldOp::Set
        } else if sub.eq_ignore_ascii_case(b"incrby") && left >= 3 {
            FieldOp::IncrBy
        } else if sub.eq_ignore_ascii_case(b"overflow") && left >= 1 {
            let mode = &args[j + 1][..];
            overflow = if mode.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if mode.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if mode.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return Err(errors::BITFIELD_OVERFLOW_TYPE);
            };
            j += 2;
            continue;
        } else {
            return Err(errors::SYNTAX);
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], Some(bits))?;
        let value = match op {
            FieldOp::Get => 0,
            _ => int(&args[j + 3])?,
        };
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(fields)
}

/// Runs one SET or INCRBY on `buf`: the reply, and whether the stored bits changed.
fn write_field(buf: &mut [u8], f: &Field) -> (Reply, bool) {
    if f.signed {
        let old = get_signed(buf, f.offset, f.bits);
        let (new, over, reply) = match f.op {
            FieldOp::IncrBy => {
                let over = signed_overflow(old, f.value, f.bits, f.overflow);
                let new = over.unwrap_or_else(|| old.wrapping_add(f.value));
                (new, over.is_some(), new)
            }
            _ => {
                let over = signed_overflow(f.value, 0, f.bits, f.overflow);
                (over.unwrap_or(f.value), over.is_some(), old)
            }
        };
        if over && f.overflow == Overflow::Fail {
            return (Reply::Null, false);
        }
        set_bits(buf, f.offset, f.bits, new as u64);
        (Reply::Int(reply), old != new)
    } else {
        let old = get_unsigned(buf, f.offset, f.bits);
        let (new, over, reply) = match f.op {
            FieldOp::IncrBy => {
                let over = unsigned_overflow(old, f.value, f.bits, f.overflow);
                let new = over.unwrap_or_else(|| old.wrapping_add(f.value as u64));
                (new, over.is_some(), new)
            }
            _ => {
                let value = f.value as u64;
                let over = unsigned_overflow(value, 0, f.bits, f.overflow);
                (over.unwrap_or(value), over.is_some(), old)
            }
        };
        if over && f.overflow == Overflow::Fail {
            return (Reply::Null, false);
        }
        set_bits(buf, f.offset, f.bits, new);
        (Reply::Int(reply as i64), old != new)
    }
}

fn read_field(p: &[u8], f: &Field) -> Reply {
    if f.signed {
        Reply::Int(get_signed(p, f.offset, f.bits))
    } else {
        Reply::Int(get_unsigned(p, f.offset, f.bits) as i64)
    }
}

fn bitfield_generic(ctx: &mut ExecCtx, args: &[Bytes], read_only_cmd: bool) -> CmdResult {
    let key = &args[1][..];
    let fields = parse_fields(ctx, args)?;
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + f.bits as u64 - 1)
        .max();
    let Some(highest) = highest else {
        // Only GETs: a read lookup, and a missing key reads as zeros.
        let s = ctx.read_str(key)?;
        let bytes = s.map(|s| s.to_bytes());
        let p: &[u8] = bytes.as_deref().unwrap_or(&[]);
        return Ok(Reply::Array(
            fields.iter().map(|f| read_field(p, f)).collect(),
        ));
    };
    if read_only_cmd {
        return Err(errors::BITFIELD_RO_GET_ONLY);
    }
    let grew = grow_for_bit(ctx, key, highest)?;
    let buf = raw_buf(ctx, key)?;
    let mut changes = 0;
    let mut replies = Vec::with_capacity(fields.len());
    for f in &fields {
        if f.op == FieldOp::Get {
            replies.push(read_field(buf, f));
        } else {
            let (reply, changed) = write_field(buf, f);
            // A created or grown string counts every write that was not refused.
            if changed || (grew && !matches!(reply, Reply::Null)) {
                changes += 1;
            }
            replies.push(reply);
        }
    }
    ctx.dirty(changes);
    if changes > 0 {
        ctx.notify(notify::STRING, "setbit", &args[1]);
    }
    Ok(Reply::Array(replies))
}

fn bitfield(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

fn bitfield_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs bitmap and string commands against a fresh server, arity first as dispatch does.
    struct Harness {
        server: ServerState,
        client: ClientState,
        dirty: u64,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                server: ServerState::for_tests(),
                client: crate::commands::test_support::test_client(NOW_MS),
                dirty: 0,
            }
        }

        fn run(&mut self, argv: &[&str]) -> CmdResult {
            let args: Vec<Bytes> = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            let name = argv[0].to_ascii_lowercase();
            let spec = COMMANDS
                .iter()
                .chain(crate::commands::string::COMMANDS.iter())
                .find(|c| c.name == name)
                .expect("a known command");
            if !spec.arity_ok(args.len()) {
                return Err(errors::wrong_arity(&name));
            }
            let ks = self.server.keyspace.lock_all();
            let mut ctx = ExecCtx::new(NOW_MS * 1000, Some(ks), &mut self.client, &self.server);
            let result = (spec.handler)(&mut ctx, &args);
            self.dirty += ctx.effects.dirty;
            result
        }

        fn ok(&mut self, argv: &[&str]) -> Reply {
            self.run(argv)
                .unwrap_or_else(|e| panic!("{argv:?} failed: {}", e.text()))
        }

        fn int(&mut self, argv: &[&str]) -> i64 {
            match self.ok(argv) {
                Reply::Int(i) => i,
                r => panic!("{argv:?} replied {r:?}"),
            }
        }

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}, expected an error"),
            }
        }

        fn get(&mut self, key: &str) -> Vec<u8> {
            let mut ks = self.server.keyspace.lock_all();
            match &ks.peek(0, key.as_bytes()).expect("key exists").value {
                Value::Str(s) => s.to_bytes().into_owned(),
                _ => panic!("not a string"),
            }
        }

        fn encoding(&mut self, key: &str) -> &'static str {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(0, key.as_bytes())
                .expect("key exists")
                .value
                .encoding_name()
        }

        fn exists(&mut self, key: &str) -> bool {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(0, key.as_bytes()).is_some()
        }
    }

    fn ints(v: &[i64]) -> Reply {
        Reply::Array(v.iter().map(|&i| Reply::Int(i)).collect())
    }

    #[test]
    fn masks_and_counts() {
        assert_eq!(byte_mask(0, 7), 0xFF);
        assert_eq!(byte_mask(1, 6), 0x7E);
        assert_eq!(byte_mask(3, 3), 0x10);
        let p = [0xFFu8; 20];
        assert_eq!(count_bits(&p, 0, 159), 160);
        assert_eq!(count_bits(&p, 5, 150), 146);
        assert_eq!(count_bits(&[0b0101_0000], 1, 3), 2);
    }

    #[test]
    fn find_bit_respects_edges() {
        let p = [0xFFu8, 0xF0, 0x00];
        assert_eq!(find_bit(&p, 0, 23, false), Some(12));
        assert_eq!(find_bit(&p, 0, 11, false), None);
        assert_eq!(find_bit(&p, 13, 23, true), None);
        assert_eq!(find_bit(&p, 3, 23, true), Some(3));
        assert_eq!(find_bit(&[0, 0, 0, 1], 0, 31, true), Some(31));
    }

    #[test]
    fn bitfield_numbers_round_trip() {
        let mut p = [0u8; 3];
        set_bits(&mut p, 7, 5, 23);
        assert_eq!(p[..2], [0b0000_0001, 0b0111_0000]);
        assert_eq!(get_unsigned(&p, 7, 5), 23);
        set_bits(&mut p, 0, 8, (-3i64) as u64);
        assert_eq!(get_signed(&p, 0, 8), -3);
        assert_eq!(get_unsigned(&p, 20, 8), 0);
    }

    #[test]
    fn overflow_rules() {
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(4));
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Sat), Some(255));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Wrap), Some(251));
        assert_eq!(unsigned_overflow(5, 10, 8, Overflow::Wrap), None);
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Wrap), Some(-126));
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Sat), Some(127));
        assert_eq!(signed_overflow(-120, -10, 8, Overflow::Sat), Some(-128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(
            signed_overflow(i64::MIN, -1, 64, Overflow::Sat),
            Some(i64::MIN)
        );
        assert_eq!(signed_overflow(-1, 1, 64, Overflow::Sat), None);
    }

    #[test]
    fn setbit_getbit() {
        let mut h = Harness::new();
        assert_eq!(h.int(&["SETBIT", "k", "7", "1"]), 0);
        assert_eq!(h.get("k"), vec![1]);
        assert_eq!(h.encoding("k"), "raw");
        assert_eq!(h.int(&["SETBIT", "k", "7", "1"]), 1);
        assert_eq!(h.dirty, 1);
        assert_eq!(h.int(&["GETBIT", "k", "7"]), 1);
        assert_eq!(h.int(&["GETBIT", "k", "100"]), 0);
        assert_eq!(h.int(&["GETBIT", "nokey", "0"]), 0);
        assert_eq!(
            h.err(&["SETBIT", "k", "-1", "1"]),
            "ERR bit offset is not an integer or out of range"
        );
        assert_eq!(
            h.err(&["SETBIT", "k", "4294967296", "1"]),
            "ERR bit offset is not an integer or out of range"
        );
        assert_eq!(
            h.err(&["SETBIT", "k", "1", "2"]),
            "ERR bit is not an integer or out of range"
        );
        h.ok(&["SET", "n", "1"]);
        assert_eq!(h.int(&["GETBIT", "n", "2"]), 1);
        assert_eq!(h.int(&["SETBIT", "n", "2", "1"]), 1);
        assert_eq!(h.encoding("n"), "raw");
    }

    #[test]
    fn bitcount_and_bitpos() {
        let mut h = Harness::new();
        h.ok(&["SET", "s", "foobar"]);
        assert_eq!(h.int(&["BITCOUNT", "s"]), 26);
        assert_eq!(h.int(&["BITCOUNT", "s", "1", "1"]), 6);
        assert_eq!(h.int(&["BITCOUNT", "s", "5", "30", "BIT"]), 17);
        assert_eq!(h.int(&["BITCOUNT", "s", "-1", "-2", "nonsense"]), 0);
        assert_eq!(h.err(&["BITCOUNT", "s", "1"]), "ERR syntax error");
        assert_eq!(h.int(&["BITCOUNT", "missing", "1"]), 0);
        h.ok(&["SET", "p", "\u{7f}"]);
        assert_eq!(h.int(&["BITPOS", "p", "0"]), 0);
        assert_eq!(h.int(&["BITPOS", "p", "1"]), 1);
        assert_eq!(h.int(&["BITPOS", "nokey", "0"]), 0);
        assert_eq!(h.int(&["BITPOS", "nokey", "1"]), -1);
        assert_eq!(
            h.err(&["BITPOS", "p", "2"]),
            "ERR The bit argument must be 1 or 0."
        );
        for i in 0..8 {
            h.ok(&["SETBIT", "ones", &i.to_string(), "1"]);
        }
        assert_eq!(h.int(&["BITPOS", "ones", "0"]), 8);
        assert_eq!(h.int(&["BITPOS", "ones", "0", "0"]), 8);
        assert_eq!(h.int(&["BITPOS", "ones", "0", "0", "-1"]), -1);
        assert_eq!(h.int(&["BITPOS", "ones", "1", "3", "5", "BIT"]), 3);
    }

    #[test]
    fn bitop_combines_and_deletes() {
        let mut h = Harness::new();
        h.ok(&["SET", "a", "abc"]);
        h.ok(&["SET", "b", "a"]);
        assert_eq!(h.int(&["BITOP", "AND", "d", "a", "b"]), 3);
        assert_eq!(h.get("d"), vec![b'a', 0, 0]);
        assert_eq!(h.encoding("d"), "raw");
        assert_eq!(h.int(&["BITOP", "OR", "d", "b", "a"]), 3);
        assert_eq!(h.get("d"), b"abc".to_vec());
        assert_eq!(h.int(&["BITOP", "NOT", "d", "b"]), 1);
        assert_eq!(h.get("d"), vec![!b'a']);
        assert_eq!(h.int(&["BITOP", "AND", "d", "a", "nokey"]), 3);
        assert_eq!(h.get("d"), vec![0, 0, 0]);
        assert_eq!(h.int(&["BITOP", "XOR", "d", "nokey"]), 0);
        assert!(!h.exists("d"));
        assert_eq!(
            h.err(&["BITOP", "NOT", "d", "a", "b"]),
            "ERR BITOP NOT must be called with a single source key."
        );
        assert_eq!(h.err(&["BITOP", "NAND", "d", "a"]), "ERR syntax error");
    }

    #[test]
    fn bitfield_ops() {
        let mut h = Harness::new();
        assert_eq!(
            h.ok(&["BITFIELD", "k", "SET", "u8", "0", "255", "GET", "u8", "0"]),
            ints(&[0, 255])
        );
        assert_eq!(
            h.ok(&[
                "BITFIELD", "k", "INCRBY", "u8", "0", "10", "OVERFLOW", "SAT", "INCRBY", "u8", "0",
                "300"
            ]),
            ints(&[9, 255])
        );
        assert_eq!(
            h.ok(&["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "1"]),
            Reply::Array(vec![Reply::Null])
        );
        assert_eq!(
            h.ok(&["BITFIELD", "k", "SET", "i8", "#1", "-1"]),
            ints(&[0])
        );
        assert_eq!(h.get("k"), vec![255, 255]);
        assert_eq!(h.ok(&["BITFIELD_RO", "k", "GET", "i8", "#1"]), ints(&[-1]));
        assert_eq!(
            h.err(&["BITFIELD_RO", "k", "SET", "i8", "0", "1"]),
            "ERR BITFIELD_RO only supports the GET subcommand"
        );
        assert_eq!(
            h.err(&["BITFIELD", "k", "GET", "u64", "0"]),
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
        );
        assert_eq!(
            h.err(&["BITFIELD", "k", "OVERFLOW", "x"]),
            "ERR Invalid OVERFLOW type specified"
        );
        assert_eq!(h.err(&["BITFIELD", "k", "GET", "u8"]), "ERR syntax error");
        assert_eq!(h.ok(&["BITFIELD", "k"]), ints(&[]));
        assert_eq!(h.ok(&["BITFIELD", "none", "GET", "i64", "0"]), ints(&[0]));
        assert!(!h.exists("none"));
    }
}

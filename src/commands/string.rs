//! The string family: GET, SET and its variants (SETNX, SETEX, PSETEX, GETSET, GETDEL, GETEX),
//! MGET / MSET / MSETNX, APPEND, STRLEN, the INCR family, INCRBYFLOAT, GETRANGE / SUBSTR,
//! SETRANGE and LCS, with Redis 7.0's option rules, error texts, encodings (`int`, `embstr`,
//! `raw`) and `server.dirty` accounting. INCRBYFLOAT computes in x87 80-bit extended precision,
//! emulated in software, because Redis does its arithmetic in `long double` and formats it with
//! `%.17Lf`: plain f64 would print `0.30000000000000004` where Redis prints `0.3`.

use super::context::ExecCtx;
use super::errors;
use super::pubsub::ReplyCut;
use super::spec::{acl, flag::*, kflag::*, CmdResult, CommandSpec as C, Handler, KeySpec};
use crate::config::values::notify;
use crate::keyspace::{StrValue, Value};
use crate::resp::{ErrorReply, Reply};
use crate::util::parse_int;
use bytes::Bytes;

const K_GET: &[KeySpec] = &[KeySpec::single(1, RO | ACCESS)];
const K_SET: &[KeySpec] = &[KeySpec::single(1, RW | ACCESS | UPDATE | VARIABLE_FLAGS)
    .notes("RW and ACCESS due to the optional `GET` argument")];
const K_OW_INSERT: &[KeySpec] = &[KeySpec::single(1, OW | INSERT)];
const K_OW_UPDATE: &[KeySpec] = &[KeySpec::single(1, OW | UPDATE)];
const K_RW_ACCESS_UPDATE: &[KeySpec] = &[KeySpec::single(1, RW | ACCESS | UPDATE)];
const K_GETEX: &[KeySpec] =
    &[KeySpec::single(1, RW | ACCESS | UPDATE).notes("RW and UPDATE because it changes the TTL")];
const K_GETDEL: &[KeySpec] = &[KeySpec::single(1, RW | ACCESS | DELETE)];
const K_MGET: &[KeySpec] = &[KeySpec::range(1, -1, 1, RO | ACCESS)];
const K_MSET: &[KeySpec] = &[KeySpec::range(1, -1, 2, OW | UPDATE)];
const K_MSETNX: &[KeySpec] = &[KeySpec::range(1, -1, 2, OW | INSERT)];
const K_APPEND: &[KeySpec] = &[KeySpec::single(1, RW | INSERT)];
const K_STRLEN: &[KeySpec] = &[KeySpec::single(1, RO)];
const K_SETRANGE: &[KeySpec] = &[KeySpec::single(1, RW | UPDATE)];
const K_LCS: &[KeySpec] = &[KeySpec::range(1, 1, 1, RO | ACCESS)];

/// A row of this family's table: every string command has the `@string` category and group.
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
        acl::STRING,
        keys,
        "string",
        since,
        handler,
    )
}

// One row per command reads best as one line.
#[rustfmt::skip]
pub const COMMANDS: &[C] = &[
    cmd("get", 2, READONLY | FAST, K_GET, "1.0.0", get),
    cmd("set", -3, WRITE | DENYOOM, K_SET, "1.0.0", set),
    cmd("setnx", 3, WRITE | DENYOOM | FAST, K_OW_INSERT, "1.0.0", setnx),
    cmd("setex", 4, WRITE | DENYOOM, K_OW_UPDATE, "2.0.0", setex),
    cmd("psetex", 4, WRITE | DENYOOM, K_OW_UPDATE, "2.6.0", psetex),
    cmd("getset", 3, WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS, K_RW_ACCESS_UPDATE, "1.0.0", getset),
    cmd("getdel", 2, WRITE | FAST | REPLY_BEFORE_EVENTS, K_GETDEL, "6.2.0", getdel),
    cmd("getex", -2, WRITE | FAST | REPLY_BEFORE_EVENTS, K_GETEX, "6.2.0", getex),
    cmd("mget", -2, READONLY | FAST, K_MGET, "1.0.0", mget).tips(&["request_policy:multi_shard"]),
    cmd("mset", -3, WRITE | DENYOOM, K_MSET, "1.0.1", mset)
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"]),
    cmd("msetnx", -3, WRITE | DENYOOM, K_MSETNX, "1.0.1", msetnx)
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"]),
    cmd("append", 3, WRITE | DENYOOM | FAST, K_APPEND, "2.0.0", append),
    cmd("strlen", 2, READONLY | FAST, K_STRLEN, "2.2.0", strlen),
    cmd("incr", 2, WRITE | DENYOOM | FAST, K_RW_ACCESS_UPDATE, "1.0.0", incr),
    cmd("decr", 2, WRITE | DENYOOM | FAST, K_RW_ACCESS_UPDATE, "1.0.0", decr),
    cmd("incrby", 3, WRITE | DENYOOM | FAST, K_RW_ACCESS_UPDATE, "1.0.0", incrby),
    cmd("decrby", 3, WRITE | DENYOOM | FAST, K_RW_ACCESS_UPDATE, "1.0.0", decrby),
    cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, K_RW_ACCESS_UPDATE, "2.6.0", incrbyfloat),
    cmd("getrange", 4, READONLY, K_GET, "2.4.0", getrange),
    cmd("substr", 4, READONLY, K_GET, "1.0.0", getrange),
    cmd("setrange", 4, WRITE | DENYOOM, K_SETRANGE, "2.2.0", setrange),
    cmd("lcs", -3, READONLY, K_LCS, "7.0.0", lcs),
];

// ---------------------------------------------------------------------------------------------
// Shared pieces

/// The bytes of a string key as a reply, `None` when the key is missing (WRONGTYPE otherwise).
fn read_bytes(ctx: &mut ExecCtx, key: &[u8]) -> Result<Option<Vec<u8>>, ErrorReply> {
    Ok(ctx.read_str(key)?.map(|s| s.to_bytes().into_owned()))
}

fn bulk_or_null(v: Option<Vec<u8>>) -> Reply {
    match v {
        Some(b) => Reply::Bulk(Bytes::from(b)),
        None => Reply::Null,
    }
}

/// The expiry time of a key that exists (0 = none).
fn expire_at(ctx: &mut ExecCtx, key: &[u8]) -> u64 {
    let db = ctx.db();
    ctx.ks().peek(db, key).map_or(0, |e| e.expire_at_ms)
}

/// A string built from a reply-formatted number, not re-encoded as an integer (Redis's
/// `createStringObject`, which INCRBYFLOAT uses).
fn plain_string(b: Vec<u8>) -> StrValue {
    if b.len() <= crate::keyspace::value::EMBSTR_SIZE_LIMIT {
        StrValue::embstr(&b)
    } else {
        StrValue::raw(b)
    }
}

/// Redis's `checkStringLength`: the grown string must fit in proto-max-bulk-len.
fn check_string_length(ctx: &ExecCtx, size: u64, append: u64) -> Result<(), ErrorReply> {
    let max: u64 = ctx.server.config().proto_max_bulk_len;
    match size.checked_add(append) {
        Some(total) if total <= max && total <= i64::MAX as u64 => Ok(()),
        _ => Err(errors::STRING_TOO_LONG),
    }
}

/// How an expire argument is to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExpireArg {
    /// EX: seconds from now.
    Ex,
    /// PX: milliseconds from now.
    Px,
    /// EXAT: unix time in seconds.
    ExAt,
    /// PXAT: unix time in milliseconds.
    PxAt,
}

/// Redis's `getExpireMillisecondsOrReply`: the absolute unix time in ms an expire argument
/// names. Non-positive values and overflows (seconds to ms, adding now) are `invalid`.
fn expire_ms(
    now_ms: u64,
    kind: ExpireArg,
    arg: &[u8],
    invalid: ErrorReply,
) -> Result<u64, ErrorReply> {
    let v = parse_int(arg).ok_or(errors::NOT_INTEGER)?;
    let seconds = matches!(kind, ExpireArg::Ex | ExpireArg::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(invalid);
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if matches!(kind, ExpireArg::Ex | ExpireArg::Px) {
        // Redis's signed addition wraps on overflow and then fails the positivity check.
        ms = ms.wrapping_add(now_ms as i64);
    }
    if ms <= 0 {
        return Err(invalid);
    }
    Ok(ms as u64)
}

/// The options of SET and GETEX (Redis's `parseExtendedStringArgumentsOrReply`).
#[derive(Default, Debug)]
struct ExtendedArgs<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    expire: Option<(ExpireArg, &'a [u8])>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExtendedFor {
    Set,
    GetEx,
}

/// Parses options from `args[first..]`. The conflict rules are Redis's, including its quirks:
/// repeating EX (or PX) is accepted and the last one wins, while mixing two expire kinds, or
/// an expire with KEEPTTL / PERSIST, is a syntax error.
fn parse_extended(
    args: &[Bytes],
    first: usize,
    cmd: ExtendedFor,
) -> Result<ExtendedArgs<'_>, ErrorReply> {
    let mut o = ExtendedArgs::default();
    let set = cmd == ExtendedFor::Set;
    let mut j = first;
    while j < args.len() {
        let opt = &args[j][..];
        let next = args.get(j + 1).map(|b| &b[..]);
        let kind = o.expire.map(|(k, _)| k);
        let other_expire = |mine: ExpireArg| kind.is_some_and(|k| k != mine);
        let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
        if is("nx") && !o.xx && set {
            o.nx = true;
        } else if is("xx") && !o.nx && set {
            o.xx = true;
        } else if is("get") && set {
            o.get = true;
        } else if is("keepttl") && !o.persist && kind.is_none() && set {
            o.keep_ttl = true;
        } else if is("persist") && !set && kind.is_none() && !o.keep_ttl {
            o.persist = true;
        } else if let (Some(k), Some(value)) = (expire_keyword(opt), next) {
            if o.keep_ttl || o.persist || other_expire(k) {
                return Err(errors::SYNTAX);
            }
            o.expire = Some((k, value));
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

fn expire_keyword(opt: &[u8]) -> Option<ExpireArg> {
    [
        ("ex", ExpireArg::Ex),
        ("px", ExpireArg::Px),
        ("exat", ExpireArg::ExAt),
        ("pxat", ExpireArg::PxAt),
    ]
    .into_iter()
    .find(|(name, _)| opt.eq_ignore_ascii_case(name.as_bytes()))
    .map(|(_, k)| k)
}

// ---------------------------------------------------------------------------------------------
// GET and the SET family

fn get(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(bulk_or_null(read_bytes(ctx, &args[1])?))
}

/// What SET-like commands reply with when they set, and when NX / XX stopped them.
struct SetReplies {
    ok: Reply,
    aborted: Reply,
}

const SET_REPLIES: SetReplies = SetReplies {
    ok: Reply::OK,
    aborted: Reply::Null,
};

/// Redis's `setGenericCommand`. `expire` has been checked for syntax but not for range.
fn set_generic(
    ctx: &mut ExecCtx,
    args: &[Bytes],
    value: &[u8],
    o: &ExtendedArgs,
    invalid_expire: ErrorReply,
    replies: SetReplies,
) -> CmdResult {
    let key = &args[1][..];
    let at_ms = match o.expire {
        Some((kind, arg)) => Some(expire_ms(ctx.now_ms, kind, arg, invalid_expire)?),
        None => None,
    };
    let old = if o.get {
        let old = read_bytes(ctx, key)?;
        // With GET, Redis answers with the old value before the write's events.
        ctx.reply_cut(ReplyCut::Rest);
        Some(old)
    } else {
        None
    };
    let found = ctx.lookup_write(key).is_some();
    if (o.nx && found) || (o.xx && !found) {
        return Ok(old.map_or(replies.aborted, bulk_or_null));
    }
    ctx.set_key(key, Value::Str(StrValue::from_bytes(value)), o.keep_ttl);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", key);
    if let Some(at) = at_ms {
        ctx.set_expire(key, at);
        ctx.notify(notify::GENERIC, "expire", key);
        // Relative times would mean something else on a replica: send the absolute time.
        ctx.propagate_as(vec![
            Bytes::from_static(b"SET"),
            args[1].clone(),
            Bytes::copy_from_slice(value),
            Bytes::from_static(b"PXAT"),
            Bytes::from(at.to_string()),
        ]);
    }
    Ok(old.map_or(replies.ok, bulk_or_null))
}

fn set(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let o = parse_extended(args, 3, ExtendedFor::Set)?;
    set_generic(
        ctx,
        args,
        &args[2],
        &o,
        errors::INVALID_EXPIRE_SET,
        SET_REPLIES,
    )
}

fn setnx(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let o = ExtendedArgs {
        nx: true,
        ..Default::default()
    };
    let replies = SetReplies {
        ok: Reply::Int(1),
        aborted: Reply::Int(0),
    };
    set_generic(ctx, args, &args[2], &o, errors::INVALID_EXPIRE_SET, replies)
}

fn setex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let o = ExtendedArgs {
        expire: Some((ExpireArg::Ex, &args[2][..])),
        ..Default::default()
    };
    set_generic(
        ctx,
        args,
        &args[3],
        &o,
        errors::INVALID_EXPIRE_SETEX,
        SET_REPLIES,
    )
}

fn psetex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let o = ExtendedArgs {
        expire: Some((ExpireArg::Px, &args[2][..])),
        ..Default::default()
    };
    set_generic(
        ctx,
        args,
        &args[3],
        &o,
        errors::INVALID_EXPIRE_PSETEX,
        SET_REPLIES,
    )
}

fn getset(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let old = read_bytes(ctx, &args[1])?;
    ctx.set_key(&args[1], Value::Str(StrValue::from_bytes(&args[2])), false);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "set", &args[1]);
    let mut argv = args.to_vec();
    argv[0] = Bytes::from_static(b"SET");
    ctx.propagate_as(argv);
    Ok(bulk_or_null(old))
}

fn getdel(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let old = read_bytes(ctx, &args[1])?;
    if old.is_some() && ctx.delete(&args[1]) {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", &args[1]);
        let lazy = ctx.server.config().lazyfree_lazy_user_del;
        ctx.propagate_as_del(&args[1], lazy);
    }
    Ok(bulk_or_null(old))
}

fn getex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let o = parse_extended(args, 2, ExtendedFor::GetEx)?;
    let Some(value) = read_bytes(ctx, key)? else {
        return Ok(Reply::Null);
    };
    let at_ms = match o.expire {
        Some((kind, arg)) => Some(expire_ms(
            ctx.now_ms,
            kind,
            arg,
            errors::INVALID_EXPIRE_GETEX,
        )?),
        None => None,
    };
    let absolute = matches!(o.expire, Some((ExpireArg::ExAt | ExpireArg::PxAt, _)));
    match at_ms {
        // An absolute time already past deletes the key, as EXPIREAT does.
        Some(at) if absolute && at <= ctx.now_ms => {
            ctx.delete(key);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", key);
            let lazy = ctx.server.config().lazyfree_lazy_expire;
            ctx.propagate_as_del(key, lazy);
        }
        Some(at) => {
            ctx.set_expire(key, at);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "expire", key);
            ctx.propagate_as(vec![
                Bytes::from_static(b"PEXPIREAT"),
                args[1].clone(),
                Bytes::from(at.to_string()),
            ]);
        }
        None if o.persist && expire_at(ctx, key) != 0 => {
            ctx.set_expire(key, 0);
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "persist", key);
            ctx.propagate_as(vec![Bytes::from_static(b"PERSIST"), args[1].clone()]);
        }
        None => {}
    }
    Ok(Reply::Bulk(Bytes::from(value)))
}

// ---------------------------------------------------------------------------------------------
// Several keys

fn mget(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let replies = args[1..]
        .iter()
        // A key of another type reads as missing here, not as WRONGTYPE.
        .map(|k| bulk_or_null(read_bytes(ctx, k).unwrap_or(None)))
        .collect();
    Ok(Reply::Array(replies))
}

fn mset_generic(ctx: &mut ExecCtx, args: &[Bytes], nx: bool) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(errors::wrong_arity(if nx { "msetnx" } else { "mset" }));
    }
    if nx
        && args[1..]
            .iter()
            .step_by(2)
            .any(|k| ctx.lookup_write(k).is_some())
    {
        return Ok(Reply::Int(0));
    }
    for pair in args[1..].chunks_exact(2) {
        ctx.set_key(&pair[0], Value::Str(StrValue::from_bytes(&pair[1])), false);
        ctx.notify(notify::STRING, "set", &pair[0]);
    }
    ctx.dirty((args.len() as u64 - 1) / 2);
    Ok(if nx { Reply::Int(1) } else { Reply::OK })
}

fn mset(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    mset_generic(ctx, args, false)
}

fn msetnx(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    mset_generic(ctx, args, true)
}

// ---------------------------------------------------------------------------------------------
// In-place edits: APPEND, SETRANGE; reads of parts: STRLEN, GETRANGE

fn append(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (key, tail) = (&args[1][..], &args[2][..]);
    let Some(len) = ctx.write_str(key)?.map(|s| s.len()) else {
        ctx.set_key(key, Value::Str(StrValue::from_bytes(tail)), false);
        ctx.dirty(1);
        ctx.notify(notify::STRING, "append", key);
        return Ok(Reply::Int(tail.len() as i64));
    };
    check_string_length(ctx, len as u64, tail.len() as u64)?;
    let s = ctx.write_str(key)?.expect("key found above");
    // Even an empty append leaves the value `raw`, as Redis's dbUnshareStringValue does.
    let buf = s.make_raw();
    buf.extend_from_slice(tail);
    let total = buf.len();
    ctx.dirty(1);
    ctx.notify(notify::STRING, "append", key);
    Ok(Reply::Int(total as i64))
}

fn strlen(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let len = ctx.read_str(&args[1])?.map_or(0, |s| s.len());
    Ok(Reply::Int(len as i64))
}

fn setrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (key, patch) = (&args[1][..], &args[3][..]);
    let offset = ctx.int_arg(&args[2])?;
    if offset < 0 {
        return Err(errors::OFFSET_OUT_OF_RANGE);
    }
    let offset = offset as u64;
    let existing = ctx.write_str(key)?.map(|s| s.len());
    if patch.is_empty() {
        // Setting nothing creates nothing and changes nothing.
        return Ok(Reply::Int(existing.unwrap_or(0) as i64));
    }
    check_string_length(ctx, offset, patch.len() as u64)?;
    let (start, end) = (offset as usize, offset as usize + patch.len());
    let total = match existing {
        None => {
            let mut buf = vec![0u8; end];
            buf[start..].copy_from_slice(patch);
            ctx.set_key(key, Value::Str(StrValue::raw(buf)), false);
            end
        }
        Some(_) => {
            let buf = ctx.write_str(key)?.expect("key found above").make_raw();
            if buf.len() < end {
                buf.resize(end, 0);
            }
            buf[start..end].copy_from_slice(patch);
            buf.len()
        }
    };
    ctx.dirty(1);
    ctx.notify(notify::STRING, "setrange", key);
    Ok(Reply::Int(total as i64))
}

fn getrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let start = ctx.int_arg(&args[2])?;
    let end = ctx.int_arg(&args[3])?;
    let Some(s) = read_bytes(ctx, &args[1])? else {
        return Ok(Reply::bulk_slice(b""));
    };
    Ok(match byte_range(s.len() as i64, start, end) {
        Some((a, b)) => Reply::bulk_slice(&s[a..=b]),
        None => Reply::bulk_slice(b""),
    })
}

/// GETRANGE's index rules: negative indexes count from the end, both ends are clamped, and a
/// range that is empty after that gives `None`.
fn byte_range(len: i64, mut start: i64, mut end: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0).min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

// ---------------------------------------------------------------------------------------------
// Counters

fn incr_decr(ctx: &mut ExecCtx, key: &[u8], by: i64) -> CmdResult {
    let current = match ctx.write_str(key)? {
        Some(s) => Some(s.as_i64().ok_or(errors::NOT_INTEGER)?),
        None => None,
    };
    let value = current
        .unwrap_or(0)
        .checked_add(by)
        .ok_or(errors::INCR_OVERFLOW)?;
    match ctx.write_str(key)? {
        // Overwriting the value in place keeps the key's TTL, as Redis's dbOverwrite does.
        Some(s) => *s = StrValue::from_i64(value),
        None => ctx.set_key(key, Value::Str(StrValue::from_i64(value)), false),
    }
    ctx.dirty(1);
    ctx.notify(notify::STRING, "incrby", key);
    Ok(Reply::Int(value))
}

fn incr(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &args[1], 1)
}

fn decr(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    incr_decr(ctx, &args[1], -1)
}

fn incrby(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let by = ctx.int_arg(&args[2])?;
    incr_decr(ctx, &args[1], by)
}

fn decrby(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let by = ctx.int_arg(&args[2])?;
    let negated = by.checked_neg().ok_or(errors::DECR_OVERFLOW)?;
    incr_decr(ctx, &args[1], negated)
}

fn incrbyfloat(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let key = &args[1][..];
    let (current, exists) = match ctx.write_str(key)? {
        Some(StrValue::Int(i)) => (long_double::Ld::from_i64(*i), true),
        Some(s) => (
            long_double::parse(&s.to_bytes()).ok_or(errors::NOT_FLOAT)?,
            true,
        ),
        None => (long_double::Ld::ZERO, false),
    };
    let incr = long_double::parse(&args[2]).ok_or(errors::NOT_FLOAT)?;
    let sum = long_double::add(current, incr).ok_or(errors::INCRBYFLOAT_NAN_OR_INF)?;
    let text = long_double::format_human(sum).into_bytes();
    let reply = Reply::bulk_slice(&text);
    match ctx.write_str(key)? {
        // Overwriting in place keeps the TTL, as Redis's dbOverwrite does.
        Some(s) if exists => *s = plain_string(text.clone()),
        _ => ctx.set_key(key, Value::Str(plain_string(text.clone())), false),
    }
    ctx.dirty(1);
    ctx.notify(notify::STRING, "incrbyfloat", key);
    // Replicas must not redo the float arithmetic: they get the result.
    ctx.propagate_as(vec![
        Bytes::from_static(b"SET"),
        args[1].clone(),
        Bytes::from(text),
        Bytes::from_static(b"KEEPTTL"),
    ]);
    Ok(reply)
}

// ---------------------------------------------------------------------------------------------
// LCS

#[derive(Default)]
struct LcsOptions {
    len: bool,
    idx: bool,
    min_match_len: u64,
    with_match_len: bool,
}

fn parse_lcs_options(args: &[Bytes]) -> Result<LcsOptions, ErrorReply> {
    let mut o = LcsOptions::default();
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let is = |name: &str| opt.eq_ignore_ascii_case(name.as_bytes());
        if is("idx") {
            o.idx = true;
        } else if is("len") {
            o.len = true;
        } else if is("withmatchlen") {
            o.with_match_len = true;
        } else if is("minmatchlen") && j + 1 < args.len() {
            o.min_match_len = parse_int(&args[j + 1]).ok_or(errors::NOT_INTEGER)?.max(0) as u64;
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    if o.len && o.idx {
        return Err(errors::LCS_LEN_AND_IDX);
    }
    Ok(o)
}

fn lcs(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    // Both keys are looked up (and counted as hits or misses) before the type check.
    let a = read_bytes(ctx, &args[1]);
    let b = read_bytes(ctx, &args[2]);
    let (Ok(a), Ok(b)) = (a, b) else {
        return Err(errors::LCS_NOT_STRINGS);
    };
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let o = parse_lcs_options(args)?;
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return Err(errors::LCS_STRING_TOO_LONG);
    }
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    let max: u64 = ctx.server.config().proto_max_bulk_len;
    if cells.saturating_mul(4) > max {
        return Err(errors::LCS_TABLE_TOO_BIG);
    }
    let table = LcsTable::build(&a, &b)?;
    let total = table.at(a.len(), b.len()) as i64;
    if o.len {
        return Ok(Reply::Int(total));
    }
    let (text, ranges) = table.walk_back(&a, &b);
    if !o.idx {
        return Ok(Reply::Bulk(Bytes::from(text)));
    }
    let matches = ranges
        .into_iter()
        .filter(|r| o.min_match_len == 0 || r.len() >= o.min_match_len)
        .map(|r| r.reply(o.with_match_len))
        .collect();
    Ok(Reply::Map(vec![
        (Reply::bulk_str("matches"), Reply::Array(matches)),
        (Reply::bulk_str("len"), Reply::Int(total)),
    ]))
}

/// The dynamic-programming table: `at(i, j)` is the LCS length of `a[..i]` and `b[..j]`.
struct LcsTable {
    cells: Vec<u32>,
    width: usize,
}

/// One matching run, as inclusive byte ranges in each string.
struct LcsRange {
    a: (u32, u32),
    b: (u32, u32),
}

impl LcsRange {
    fn len(&self) -> u64 {
        (self.a.1 - self.a.0 + 1) as u64
    }
    fn reply(&self, with_len: bool) -> Reply {
        let pair =
            |(s, e): (u32, u32)| Reply::Array(vec![Reply::Int(s as i64), Reply::Int(e as i64)]);
        let mut items = vec![pair(self.a), pair(self.b)];
        if with_len {
            items.push(Reply::Int(self.len() as i64));
        }
        Reply::Array(items)
    }
}

impl LcsTable {
    fn build(a: &[u8], b: &[u8]) -> Result<LcsTable, ErrorReply> {
        let width = b.len() + 1;
        let size = (a.len() + 1) * width;
        let mut cells: Vec<u32> = Vec::new();
        cells
            .try_reserve_exact(size)
            .map_err(|_| errors::LCS_ALLOC_FAILED)?;
        cells.resize(size, 0);
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                cells[i * width + j] = if a[i - 1] == b[j - 1] {
                    cells[(i - 1) * width + j - 1] + 1
                } else {
                    cells[(i - 1) * width + j].max(cells[i * width + j - 1])
                };
            }
        }
        Ok(LcsTable { cells, width })
    }

    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells[i * self.width + j]
    }

    /// Walks from the bottom-right corner back to the start, collecting the LCS text and the
    /// matching runs in the order Redis emits them (last run first).
    fn walk_back(&self, a: &[u8], b: &[u8]) -> (Vec<u8>, Vec<LcsRange>) {
        let mut text = vec![0u8; self.at(a.len(), b.len()) as usize];
        let mut left = text.len();
        let mut ranges = Vec::new();
        let mut current: Option<LcsRange> = None;
        let (mut i, mut j) = (a.len(), b.len());
        while i > 0 && j > 0 {
            let mut emit = false;
            if a[i - 1] == b[j - 1] {
                left -= 1;
                text[left] = a[i - 1];
                let (ai, bj) = ((i - 1) as u32, (j - 1) as u32);
                match current.as_mut() {
                    None => {
                        current = Some(LcsRange {
                            a: (ai, ai),
                            b: (bj, bj),
                        })
                    }
                    // Contiguous with the run being tracked: extend it backwards.
                    Some(r) if r.a.0 == ai + 1 && r.b.0 == bj + 1 => {
                        r.a.0 = ai;
                        r.b.0 = bj;
                    }
                    Some(_) => emit = true,
                }
                if current.as_ref().is_some_and(|r| r.a.0 == 0 || r.b.0 == 0) {
                    emit = true;
                }
                i -= 1;
                j -= 1;
            } else {
                if self.at(i - 1, j) > self.at(i, j - 1) {
                    i -= 1;
                } else {
                    j -= 1;
                }
                emit = current.is_some();
            }
            if emit {
                ranges.extend(current.take());
            }
        }
        (text, ranges)
    }
}

// ---------------------------------------------------------------------------------------------
// x87 extended precision, in software

/// Just enough of the x87 80-bit `long double` for INCRBYFLOAT: `strtold`-compatible parsing
/// (decimal, hexadecimal, `inf`), correctly rounded addition, and `printf("%.17Lf")`. Values
/// are `mant * 2^exp` with a 64-bit significand; arithmetic is exact on big integers and then
/// rounded to nearest, ties to even, as the hardware does.
pub(crate) mod long_double {
    use std::cmp::Ordering;

    /// Smallest exponent: the subnormal `1 * 2^-16445`.
    const EXP_MIN: i64 = -16445;
    /// Largest exponent of a normalized significand (`2^63 <= mant < 2^64`).
    const EXP_MAX: i64 = 16320;
    /// `MAX_LONG_DOUBLE_CHARS`: longer inputs are rejected.
    const MAX_CHARS: usize = 5 * 1024;

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Ld {
        Finite { neg: bool, mant: u64, exp: i64 },
        Inf,
    }

    impl Ld {
        pub const ZERO: Ld = Ld::Finite {
            neg: false,
            mant: 0,
            exp: 0,
        };
        pub fn from_i64(i: i64) -> Ld {
            round(i < 0, Big::from_u64(i.unsigned_abs()), 0, false)
        }
    }

    /// Rounds `±big * 2^exp` (plus a nonzero tail below it when `sticky`) to a long double.
    fn round(neg: bool, big: Big, exp: i64, sticky: bool) -> Ld {
        let len = big.bit_len() as i64;
        if len == 0 {
            return Ld::Finite {
                neg,
                mant: 0,
                exp: 0,
            };
        }
        let shift = (len - 64).max(EXP_MIN - exp);
        let mut e = exp + shift;
        let mut mant;
        if shift <= 0 {
            mant = big.extract(0) << (-shift) as u32;
        } else {
            let s = shift as u64;
            mant = big.extract(s);
            let half = big.bit(s - 1);
            let tail = sticky || big.any_below(s - 1);
            if half && (tail || mant & 1 == 1) {
                let (m, carry) = mant.overflowing_add(1);
                mant = if carry { 1 << 63 } else { m };
                e += carry as i64;
            }
        }
        if mant == 0 {
            return Ld::Finite {
                neg,
                mant: 0,
                exp: 0,
            };
        }
        if e > EXP_MAX {
            return Ld::Inf;
        }
        Ld::Finite { neg, mant, exp: e }
    }

    /// `a + b`, or `None` when the result is infinite or NaN.
    pub fn add(a: Ld, b: Ld) -> Option<Ld> {
        let (
            Ld::Finite {
                neg: na,
                mant: ma,
                exp: ea,
            },
            Ld::Finite {
                neg: nb,
                mant: mb,
                exp: eb,
            },
        ) = (a, b)
        else {
            return None;
        };
        let base = ea.min(eb);
        let x = Big::from_u64(ma).shl((ea - base) as u64);
        let y = Big::from_u64(mb).shl((eb - base) as u64);
        let (neg, sum) = if na == nb {
            (na, x.add(&y))
        } else {
            match x.cmp(&y) {
                Ordering::Equal => (false, Big::default()),
                Ordering::Greater => (na, x.sub(&y)),
                Ordering::Less => (nb, y.sub(&x)),
            }
        };
        match round(neg, sum, base, false) {
            Ld::Inf => None,
            finite => Some(finite),
        }
    }

    /// Redis's `string2ld`: the whole input must be a `strtold` number, without leading
    /// space; NaN and results that overflow or underflow to zero are rejected.
    pub fn parse(s: &[u8]) -> Option<Ld> {
        if s.is_empty() || s.len() >= MAX_CHARS || matches!(s[0], b' ' | b'\t'..=b'\r') {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Ld::Inf);
        }
        let parsed = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
            parse_hex(neg, &body[2..])?
        } else {
            parse_decimal(neg, body)?
        };
        match parsed {
            // An overflow is ERANGE with HUGE_VALL: rejected.
            Ld::Inf => None,
            finite => Some(finite),
        }
    }

    /// A nonzero number that rounded to zero underflowed: ERANGE with zero, rejected.
    fn reject_underflow(x: Ld) -> Option<Ld> {
        match x {
            Ld::Finite { mant: 0, .. } => None,
            other => Some(other),
        }
    }

    /// Splits `digits[.digits]` off the front; returns (integer part, fraction, rest).
    fn split_mantissa(s: &[u8], is_digit: fn(u8) -> bool) -> Option<(&[u8], &[u8], &[u8])> {
        let int_end = s.iter().position(|&c| !is_digit(c)).unwrap_or(s.len());
        let (int, rest) = s.split_at(int_end);
        let (frac, rest) = match rest.first() {
            Some(b'.') => {
                let r = &rest[1..];
                let end = r.iter().position(|&c| !is_digit(c)).unwrap_or(r.len());
                r.split_at(end)
            }
            _ => (&rest[..0], rest),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        Some((int, frac, rest))
    }

    /// An exponent suffix (`e` / `p` already stripped): optional sign, at least one digit.
    /// Saturates far beyond any representable value.
    fn parse_exponent(s: &[u8]) -> Option<i64> {
        let (neg, digits) = match s.first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = digits
            .iter()
            .fold(0i64, |acc, &d| (acc * 10 + (d - b'0') as i64).min(1 << 40));
        Some(if neg { -v } else { v })
    }

    fn parse_decimal(neg: bool, s: &[u8]) -> Option<Ld> {
        let (int, frac, rest) = split_mantissa(s, |c| c.is_ascii_digit())?;
        let exp10 = match rest.first() {
            None => 0,
            Some(c) if c | 0x20 == b'e' => parse_exponent(&rest[1..])?,
            Some(_) => return None,
        };
        let mut digits = Big::default();
        let mut count = 0i64;
        for &d in int.iter().chain(frac) {
            if count > 0 || d != b'0' {
                digits.mul_add_small(10, (d - b'0') as u32);
                count += 1;
            }
        }
        if count == 0 {
            return Some(Ld::Finite {
                neg,
                mant: 0,
                exp: 0,
            });
        }
        let exp10 = exp10 - frac.len() as i64;
        // The value lies in [10^(count+exp10-1), 10^(count+exp10)).
        if count + exp10 > 4940 {
            return Some(Ld::Inf);
        }
        if count + exp10 < -4960 {
            return None;
        }
        if exp10 >= 0 {
            digits.mul_pow10(exp10 as u64);
            return reject_underflow(round(neg, digits, 0, false));
        }
        let mut den = Big::from_u64(1);
        den.mul_pow10((-exp10) as u64);
        // Scale so the quotient carries at least 66 significant bits, then round once.
        let k = (66 + den.bit_len() as i64 - digits.bit_len() as i64).max(0) as u64;
        let (q, exact) = digits.shl(k).div_small_quotient(&den);
        reject_underflow(round(neg, q, -(k as i64), !exact))
    }

    fn parse_hex(neg: bool, s: &[u8]) -> Option<Ld> {
        let (int, frac, rest) = split_mantissa(s, |c| c.is_ascii_hexdigit())?;
        let exp2 = match rest.first() {
            None => 0,
            Some(c) if c | 0x20 == b'p' => parse_exponent(&rest[1..])?,
            Some(_) => return None,
        };
        let mut digits = Big::default();
        for &d in int.iter().chain(frac) {
            let v = (d as char).to_digit(16).expect("hex digit checked above");
            if !digits.is_zero() || v != 0 {
                digits.mul_add_small(16, v);
            }
        }
        if digits.is_zero() {
            return Some(Ld::Finite {
                neg,
                mant: 0,
                exp: 0,
            });
        }
        let exp2 = (exp2 - 4 * frac.len() as i64).clamp(-200_000, 200_000);
        reject_underflow(round(neg, digits, exp2, false))
    }

    /// `printf("%.17Lf")` with trailing zeros (and a bare point) removed and `-0` shown as
    /// `0`: Redis's `ld2string(LD_STR_HUMAN)`.
    pub fn format_human(x: Ld) -> String {
        let Ld::Finite { neg, mant, exp } = x else {
            return "inf".into();
        };
        let mut text = if exp >= 0 {
            Big::from_u64(mant).shl(exp as u64).to_decimal()
        } else {
            let mut scaled = Big::from_u64(mant);
            scaled.mul_pow10(17);
            let s = (-exp) as u64;
            let mut q = scaled.shr(s);
            let half = scaled.bit(s - 1);
            if half && (scaled.any_below(s - 1) || q.is_odd()) {
                q = q.add(&Big::from_u64(1));
            }
            let digits = format!("{:0>18}", q.to_decimal());
            let (int, frac) = digits.split_at(digits.len() - 17);
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        };
        if neg && text != "0" {
            text.insert(0, '-');
        }
        text
    }

    /// A non-negative big integer, little-endian 32-bit limbs, no high zero limbs.
    #[derive(Clone, Default, Debug, PartialEq, Eq)]
    struct Big(Vec<u32>);

    impl Big {
        fn from_u64(v: u64) -> Big {
            let mut b = Big(vec![v as u32, (v >> 32) as u32]);
            b.trim();
            b
        }
        fn trim(&mut self) {
            while self.0.last() == Some(&0) {
                self.0.pop();
            }
        }
        fn is_zero(&self) -> bool {
            self.0.is_empty()
        }
        fn is_odd(&self) -> bool {
            self.0.first().is_some_and(|l| l & 1 == 1)
        }
        fn bit_len(&self) -> u64 {
            match self.0.last() {
                None => 0,
                Some(top) => self.0.len() as u64 * 32 - top.leading_zeros() as u64,
            }
        }
        fn bit(&self, i: u64) -> bool {
            let limb = (i / 32) as usize;
            limb < self.0.len() && self.0[limb] >> (i % 32) & 1 == 1
        }
        /// Whether any bit below position `n` is set.
        fn any_below(&self, n: u64) -> bool {
            let full = ((n / 32) as usize).min(self.0.len());
            if self.0[..full].iter().any(|&l| l != 0) {
                return true;
            }
            let rem = n % 32;
            full < self.0.len() && rem > 0 && self.0[full] & ((1u32 << rem) - 1) != 0
        }
        /// The 64 bits starting at bit `shift`.
        fn extract(&self, shift: u64) -> u64 {
            (0..64).fold(0u64, |acc, i| acc | (self.bit(shift + i) as u64) << i)
        }
        fn mul_add_small(&mut self, m: u32, add: u32) {
            let mut carry = add as u64;
            for limb in self.0.iter_mut() {
                let v = *limb as u64 * m as u64 + carry;
                *limb = v as u32;
                carry = v >> 32;
            }
            if carry > 0 {
                self.0.push(carry as u32);
            }
            self.trim();
        }
        fn mul_pow10(&mut self, mut n: u64) {
            while n > 0 {
                let step = n.min(9);
                self.mul_add_small(10u32.pow(step as u32), 0);
                n -= step;
            }
        }
        fn shl(&self, n: u64) -> Big {
            if self.is_zero() {
                return Big::default();
            }
            let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
            let mut out = vec![0u32; limbs];
            let mut carry = 0u32;
            for &l in &self.0 {
                out.push(if bits == 0 { l } else { l << bits | carry });
                carry = if bits == 0 { 0 } else { l >> (32 - bits) };
            }
            out.push(carry);
            let mut b = Big(out);
            b.trim();
            b
        }
        fn shr(&self, n: u64) -> Big {
            let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
            if limbs >= self.0.len() {
                return Big::default();
            }
            let src = &self.0[limbs..];
            let out = (0..src.len())
                .map(|i| {
                    let hi = src.get(i + 1).copied().unwrap_or(0) as u64;
                    (((hi << 32) | src[i] as u64) >> bits) as u32
                })
                .collect();
            let mut b = Big(out);
            b.trim();
            b
        }
        fn cmp(&self, other: &Big) -> Ordering {
            self.0
                .len()
                .cmp(&other.0.len())
                .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
        }
        fn add(&self, other: &Big) -> Big {
            let n = self.0.len().max(other.0.len());
            let mut out = Vec::with_capacity(n + 1);
            let mut carry = 0u64;
            for i in 0..n {
                let v = *self.0.get(i).unwrap_or(&0) as u64
                    + *other.0.get(i).unwrap_or(&0) as u64
                    + carry;
                out.push(v as u32);
                carry = v >> 32;
            }
            out.push(carry as u32);
            let mut b = Big(out);
            b.trim();
            b
        }
        /// `self - other`; `self >= other` is required.
        fn sub(&self, other: &Big) -> Big {
            let mut out = Vec::with_capacity(self.0.len());
            let mut borrow = 0i64;
            for i in 0..self.0.len() {
                let mut v = self.0[i] as i64 - *other.0.get(i).unwrap_or(&0) as i64 - borrow;
                borrow = (v < 0) as i64;
                if v < 0 {
                    v += 1 << 32;
                }
                out.push(v as u32);
            }
            debug_assert_eq!(borrow, 0, "subtraction would go negative");
            let mut b = Big(out);
            b.trim();
            b
        }
        /// Quotient of `self / den` when it is short (a few hundred bits at most), and
        /// whether the division was exact. Binary long division.
        fn div_small_quotient(&self, den: &Big) -> (Big, bool) {
            let mut rem = self.clone();
            let mut q = Big::default();
            if self.bit_len() >= den.bit_len() {
                for i in (0..=self.bit_len() - den.bit_len()).rev() {
                    let t = den.shl(i);
                    if rem.cmp(&t) != Ordering::Less {
                        rem = rem.sub(&t);
                        q = q.add(&Big::from_u64(1).shl(i));
                    }
                }
            }
            (q, rem.is_zero())
        }
        fn div_rem_small(&mut self, d: u32) -> u32 {
            let mut rem = 0u64;
            for limb in self.0.iter_mut().rev() {
                let v = (rem << 32) | *limb as u64;
                *limb = (v / d as u64) as u32;
                rem = v % d as u64;
            }
            self.trim();
            rem as u32
        }
        fn to_decimal(&self) -> String {
            let mut n = self.clone();
            let mut chunks = Vec::new();
            while !n.is_zero() {
                chunks.push(n.div_rem_small(1_000_000_000));
            }
            let mut s = chunks
                .pop()
                .map_or_else(|| "0".to_string(), |c| c.to_string());
            for c in chunks.iter().rev() {
                s.push_str(&format!("{c:09}"));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs string commands against a fresh server, the way dispatch would (arity first).
    struct Harness {
        server: ServerState,
        client: ClientState,
        now_ms: u64,
        dirty: u64,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                server: ServerState::for_tests(),
                client: crate::commands::test_support::test_client(NOW_MS),
                now_ms: NOW_MS,
                dirty: 0,
            }
        }

        fn run(&mut self, argv: &[&str]) -> CmdResult {
            let args: Vec<Bytes> = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            self.run_bytes(&args)
        }

        fn run_bytes(&mut self, args: &[Bytes]) -> CmdResult {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let spec = COMMANDS
                .iter()
                .find(|c| c.name == name)
                .expect("a string command");
            if !spec.arity_ok(args.len()) {
                return Err(errors::wrong_arity(&name));
            }
            let ks = self.server.keyspace.lock_all();
            let mut ctx =
                ExecCtx::new(self.now_ms * 1000, Some(ks), &mut self.client, &self.server);
            let result = (spec.handler)(&mut ctx, args);
            self.dirty += ctx.effects.dirty;
            result
        }

        fn ok(&mut self, argv: &[&str]) -> Reply {
            self.run(argv)
                .unwrap_or_else(|e| panic!("{argv:?} failed: {}", e.text()))
        }

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}, expected an error"),
            }
        }

        fn entry(&mut self, key: &str) -> Option<crate::keyspace::Entry> {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(0, key.as_bytes()).cloned()
        }

        fn encoding(&mut self, key: &str) -> &'static str {
            self.entry(key).expect("key exists").value.encoding_name()
        }

        fn ttl_ms(&mut self, key: &str) -> Option<u64> {
            self.entry(key)
                .and_then(|e| (e.expire_at_ms != 0).then(|| e.expire_at_ms - self.now_ms))
        }
    }

    fn bulk(s: &str) -> Reply {
        Reply::bulk_str(s)
    }

    fn ints(v: &[i64]) -> Reply {
        Reply::Array(v.iter().map(|&i| Reply::Int(i)).collect())
    }

    #[test]
    fn get_and_set_round_trip_with_redis_encodings() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["GET", "k"]), Reply::Null);
        assert_eq!(h.ok(&["SET", "k", "hello"]), Reply::OK);
        assert_eq!(h.ok(&["GET", "k"]), bulk("hello"));
        assert_eq!(h.encoding("k"), "embstr");
        h.ok(&["SET", "n", "12345"]);
        assert_eq!(h.encoding("n"), "int");
        assert_eq!(h.ok(&["GET", "n"]), bulk("12345"));
        h.ok(&["SET", "long", &"x".repeat(45)]);
        assert_eq!(h.encoding("long"), "raw");
        assert_eq!(h.dirty, 3);
    }

    #[test]
    fn set_nx_xx_and_get_options() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["SET", "k", "v", "XX"]), Reply::Null);
        assert!(h.entry("k").is_none());
        assert_eq!(h.ok(&["SET", "k", "v", "NX"]), Reply::OK);
        assert_eq!(h.ok(&["SET", "k", "w", "NX"]), Reply::Null);
        assert_eq!(h.ok(&["SET", "k", "w", "XX"]), Reply::OK);
        assert_eq!(h.ok(&["SET", "k", "x", "GET"]), bulk("w"));
        assert_eq!(h.ok(&["SET", "new", "x", "GET"]), Reply::Null);
        // NX with GET replies with the old value even though nothing is set.
        assert_eq!(h.ok(&["SET", "k", "y", "NX", "GET"]), bulk("x"));
        assert_eq!(h.ok(&["GET", "k"]), bulk("x"));
        assert_eq!(h.err(&["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
        assert_eq!(h.err(&["SET", "k", "v", "XX", "NX"]), "ERR syntax error");
        assert_eq!(h.err(&["SET", "k", "v", "FOO"]), "ERR syntax error");
    }

    #[test]
    fn set_expire_options_and_their_conflicts() {
        let mut h = Harness::new();
        h.ok(&["SET", "k", "v", "EX", "10"]);
        assert_eq!(h.ttl_ms("k"), Some(10_000));
        h.ok(&["SET", "k", "v", "PX", "1500"]);
        assert_eq!(h.ttl_ms("k"), Some(1500));
        h.ok(&["SET", "k", "v", "KEEPTTL"]);
        assert_eq!(h.ttl_ms("k"), Some(1500));
        h.ok(&["SET", "k", "v"]);
        assert_eq!(h.ttl_ms("k"), None);
        let at = (NOW_MS / 1000 + 100).to_string();
        h.ok(&["SET", "k", "v", "EXAT", &at]);
        assert_eq!(h.ttl_ms("k"), Some((NOW_MS / 1000 + 100) * 1000 - NOW_MS));
        let pat = (NOW_MS + 777).to_string();
        h.ok(&["SET", "k", "v", "PXAT", &pat]);
        assert_eq!(h.ttl_ms("k"), Some(777));
        // The same expire option twice is accepted; the last one wins.
        h.ok(&["SET", "k", "v", "EX", "1", "EX", "2"]);
        assert_eq!(h.ttl_ms("k"), Some(2000));
        for bad in [
            &["SET", "k", "v", "EX", "1", "PX", "1"][..],
            &["SET", "k", "v", "EX", "1", "KEEPTTL"],
            &["SET", "k", "v", "KEEPTTL", "PXAT", "1"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "PERSIST"],
        ] {
            assert_eq!(h.err(bad), "ERR syntax error", "{bad:?}");
        }
        let invalid = "ERR invalid expire time in 'set' command";
        assert_eq!(h.err(&["SET", "k", "v", "EX", "0"]), invalid);
        assert_eq!(h.err(&["SET", "k", "v", "PX", "-5"]), invalid);
        assert_eq!(h.err(&["SET", "k", "v", "EX", "9223372036854775"]), invalid);
        assert_eq!(
            h.err(&["SET", "k", "v", "PX", "9223372036854775807"]),
            invalid
        );
        assert_eq!(
            h.err(&["SET", "k", "v", "EX", "abc"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn setnx_setex_psetex() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["SETNX", "k", "a"]), Reply::Int(1));
        assert_eq!(h.ok(&["SETNX", "k", "b"]), Reply::Int(0));
        assert_eq!(h.ok(&["GET", "k"]), bulk("a"));
        assert_eq!(h.ok(&["SETEX", "k", "5", "c"]), Reply::OK);
        assert_eq!(h.ttl_ms("k"), Some(5000));
        assert_eq!(h.ok(&["PSETEX", "k", "50", "d"]), Reply::OK);
        assert_eq!(h.ttl_ms("k"), Some(50));
        assert_eq!(h.ok(&["GET", "k"]), bulk("d"));
        assert_eq!(
            h.err(&["SETEX", "k", "0", "v"]),
            "ERR invalid expire time in 'setex' command"
        );
        assert_eq!(
            h.err(&["PSETEX", "k", "-1", "v"]),
            "ERR invalid expire time in 'psetex' command"
        );
    }

    #[test]
    fn expired_keys_read_as_missing() {
        let mut h = Harness::new();
        h.ok(&["SET", "k", "v", "PX", "100"]);
        h.now_ms += 100;
        assert_eq!(h.ok(&["GET", "k"]), Reply::Null);
        assert!(h.entry("k").is_none());
    }

    #[test]
    fn getset_replaces_value_and_ttl() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["GETSET", "k", "1"]), Reply::Null);
        h.ok(&["SET", "k", "old", "EX", "100"]);
        assert_eq!(h.ok(&["GETSET", "k", "42"]), bulk("old"));
        assert_eq!(h.ttl_ms("k"), None);
        assert_eq!(h.encoding("k"), "int");
    }

    #[test]
    fn getdel_returns_and_removes() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["GETDEL", "k"]), Reply::Null);
        assert_eq!(h.dirty, 0);
        h.ok(&["SET", "k", "v"]);
        assert_eq!(h.ok(&["GETDEL", "k"]), bulk("v"));
        assert!(h.entry("k").is_none());
        assert_eq!(h.dirty, 2);
    }

    #[test]
    fn getex_sets_or_clears_the_ttl() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["GETEX", "missing", "EX", "10"]), Reply::Null);
        h.ok(&["SET", "k", "v"]);
        assert_eq!(h.ok(&["GETEX", "k"]), bulk("v"));
        assert_eq!(h.ttl_ms("k"), None);
        assert_eq!(h.ok(&["GETEX", "k", "EX", "10"]), bulk("v"));
        assert_eq!(h.ttl_ms("k"), Some(10_000));
        assert_eq!(h.ok(&["GETEX", "k", "PX", "10"]), bulk("v"));
        assert_eq!(h.ttl_ms("k"), Some(10));
        let dirty = h.dirty;
        assert_eq!(h.ok(&["GETEX", "k", "PERSIST"]), bulk("v"));
        assert_eq!(h.ttl_ms("k"), None);
        assert_eq!(h.dirty, dirty + 1);
        // PERSIST on a key without TTL changes nothing.
        h.ok(&["GETEX", "k", "PERSIST"]);
        assert_eq!(h.dirty, dirty + 1);
        // An absolute time in the past deletes the key after replying with it.
        assert_eq!(h.ok(&["GETEX", "k", "PXAT", "1"]), bulk("v"));
        assert!(h.entry("k").is_none());
    }

    #[test]
    fn getex_option_errors() {
        let mut h = Harness::new();
        h.ok(&["SET", "k", "v"]);
        for bad in [
            &["GETEX", "k", "NX"][..],
            &["GETEX", "k", "GET"],
            &["GETEX", "k", "KEEPTTL"],
            &["GETEX", "k", "EX", "1", "PERSIST"],
            &["GETEX", "k", "PERSIST", "PX", "1"],
            &["GETEX", "k", "EX"],
        ] {
            assert_eq!(h.err(bad), "ERR syntax error", "{bad:?}");
        }
        assert_eq!(
            h.err(&["GETEX", "k", "EX", "-1"]),
            "ERR invalid expire time in 'getex' command"
        );
        assert_eq!(
            h.err(&["GETEX", "k", "EX", "x"]),
            "ERR value is not an integer or out of range"
        );
        // Syntax is checked before the key; the range of the time only for an existing key.
        assert_eq!(h.err(&["GETEX", "missing", "FOO"]), "ERR syntax error");
        assert_eq!(h.ok(&["GETEX", "missing", "EX", "-1"]), Reply::Null);
    }

    #[test]
    fn mget_mset_msetnx() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["MSET", "a", "1", "b", "2"]), Reply::OK);
        assert_eq!(h.dirty, 2);
        assert_eq!(
            h.ok(&["MGET", "a", "nope", "b"]),
            Reply::Array(vec![bulk("1"), Reply::Null, bulk("2")])
        );
        assert_eq!(
            h.err(&["MSET", "a", "1", "b"]),
            "ERR wrong number of arguments for 'mset' command"
        );
        assert_eq!(
            h.err(&["MSETNX", "a", "1", "b"]),
            "ERR wrong number of arguments for 'msetnx' command"
        );
        assert_eq!(h.ok(&["MSETNX", "a", "9", "c", "3"]), Reply::Int(0));
        assert!(h.entry("c").is_none());
        assert_eq!(h.ok(&["MSETNX", "c", "3", "d", "4"]), Reply::Int(1));
        assert_eq!(
            h.ok(&["MGET", "c", "d"]),
            Reply::Array(vec![bulk("3"), bulk("4")])
        );
        assert_eq!(h.dirty, 4);
    }

    #[test]
    fn append_creates_then_grows_as_raw() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["APPEND", "k", "12"]), Reply::Int(2));
        assert_eq!(h.encoding("k"), "int");
        assert_eq!(h.ok(&["APPEND", "k", ""]), Reply::Int(2));
        assert_eq!(h.encoding("k"), "raw");
        assert_eq!(h.ok(&["APPEND", "k", "34"]), Reply::Int(4));
        assert_eq!(h.ok(&["GET", "k"]), bulk("1234"));
        assert_eq!(h.ok(&["STRLEN", "k"]), Reply::Int(4));
        assert_eq!(h.ok(&["STRLEN", "nope"]), Reply::Int(0));
        h.ok(&["SET", "n", "-123"]);
        assert_eq!(h.ok(&["STRLEN", "n"]), Reply::Int(4));
    }

    #[test]
    fn setrange_pads_with_zeros_and_checks_bounds() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["SETRANGE", "k", "5", ""]), Reply::Int(0));
        assert!(h.entry("k").is_none());
        assert_eq!(h.ok(&["SETRANGE", "k", "2", "ab"]), Reply::Int(4));
        assert_eq!(h.ok(&["GET", "k"]), Reply::bulk_slice(b"\0\0ab"));
        assert_eq!(h.encoding("k"), "raw");
        h.ok(&["SET", "s", "Hello World"]);
        assert_eq!(h.ok(&["SETRANGE", "s", "6", "Redis"]), Reply::Int(11));
        assert_eq!(h.ok(&["GET", "s"]), bulk("Hello Redis"));
        assert_eq!(h.ok(&["SETRANGE", "s", "3", ""]), Reply::Int(11));
        h.ok(&["SET", "n", "1234"]);
        assert_eq!(h.ok(&["SETRANGE", "n", "1", "x"]), Reply::Int(4));
        assert_eq!(h.ok(&["GET", "n"]), bulk("1x34"));
        assert_eq!(
            h.err(&["SETRANGE", "k", "-1", "x"]),
            "ERR offset is out of range"
        );
        assert_eq!(
            h.err(&["SETRANGE", "k", "x", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            h.err(&["SETRANGE", "k", "536870911", "xx"]),
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        );
        assert_eq!(
            h.err(&["SETRANGE", "new", "9223372036854775807", "x"]),
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        );
    }

    #[test]
    fn getrange_follows_redis_index_rules() {
        let mut h = Harness::new();
        h.ok(&["SET", "k", "This is a string"]);
        let cases = [
            ("0", "3", "This"),
            ("-3", "-1", "ing"),
            ("0", "-1", "This is a string"),
            ("10", "100", "string"),
            ("5", "3", ""),
            ("-1", "-5", ""),
            ("-100", "2", "Thi"),
            ("100", "200", ""),
        ];
        for (start, end, want) in cases {
            assert_eq!(
                h.ok(&["GETRANGE", "k", start, end]),
                bulk(want),
                "{start} {end}"
            );
        }
        assert_eq!(h.ok(&["SUBSTR", "k", "0", "3"]), bulk("This"));
        assert_eq!(h.ok(&["GETRANGE", "nope", "0", "-1"]), bulk(""));
        h.ok(&["SET", "n", "12345"]);
        assert_eq!(h.ok(&["GETRANGE", "n", "1", "2"]), bulk("23"));
        h.ok(&["SET", "e", ""]);
        assert_eq!(h.ok(&["GETRANGE", "e", "0", "-1"]), bulk(""));
        assert_eq!(
            h.err(&["GETRANGE", "k", "a", "1"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn incr_family_counts_and_keeps_ttl() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["INCR", "c"]), Reply::Int(1));
        assert_eq!(h.ok(&["INCRBY", "c", "10"]), Reply::Int(11));
        assert_eq!(h.ok(&["DECR", "c"]), Reply::Int(10));
        assert_eq!(h.ok(&["DECRBY", "c", "-5"]), Reply::Int(15));
        assert_eq!(h.encoding("c"), "int");
        h.ok(&["SET", "t", "7", "EX", "100"]);
        assert_eq!(h.ok(&["INCR", "t"]), Reply::Int(8));
        assert_eq!(h.ttl_ms("t"), Some(100_000));
        h.ok(&["SET", "s", "  1"]);
        assert_eq!(
            h.err(&["INCR", "s"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            h.err(&["INCRBY", "c", "1.5"]),
            "ERR value is not an integer or out of range"
        );
        h.ok(&["SET", "max", "9223372036854775807"]);
        assert_eq!(
            h.err(&["INCR", "max"]),
            "ERR increment or decrement would overflow"
        );
        h.ok(&["SET", "min", "-9223372036854775808"]);
        assert_eq!(
            h.err(&["DECR", "min"]),
            "ERR increment or decrement would overflow"
        );
        assert_eq!(
            h.err(&["DECRBY", "c", "-9223372036854775808"]),
            "ERR decrement would overflow"
        );
    }

    #[test]
    fn incrbyfloat_formats_like_long_double() {
        let mut h = Harness::new();
        let cases = [
            ("10.5", "0.1", "10.6"),
            ("0.1", "0.2", "0.3"),
            ("0", "3.0e3", "3000"),
            ("0", "5.0e-3", "0.005"),
            ("0", "1.5e+20", "150000000000000000000"),
            ("1", "-1.1", "-0.1"),
            ("0", "1e-20", "0"),
            ("0", "-1e-20", "0"),
            ("0", "0x10", "16"),
            ("1.23456789012345678901", "0", "1.23456789012345679"),
            ("9223372036854775807", "1", "9223372036854775808"),
        ];
        for (start, by, want) in cases {
            h.ok(&["SET", "f", start]);
            assert_eq!(
                h.ok(&["INCRBYFLOAT", "f", by]),
                bulk(want),
                "{start} + {by}"
            );
            assert_eq!(h.ok(&["GET", "f"]), bulk(want));
        }
        // The result is stored as text, never re-encoded as an integer.
        assert_eq!(h.encoding("f"), "embstr");
        assert_eq!(h.ok(&["INCRBYFLOAT", "new", "2.5"]), bulk("2.5"));
        h.ok(&["SET", "t", "1", "EX", "100"]);
        h.ok(&["INCRBYFLOAT", "t", "1"]);
        assert_eq!(h.ttl_ms("t"), Some(100_000));
    }

    #[test]
    fn incrbyfloat_errors() {
        let mut h = Harness::new();
        let not_float = "ERR value is not a valid float";
        h.ok(&["SET", "s", "abc"]);
        assert_eq!(h.err(&["INCRBYFLOAT", "s", "1"]), not_float);
        for bad in [" 1", "1 ", "1e", "nan", "1e5000", "1e-5000", ""] {
            assert_eq!(h.err(&["INCRBYFLOAT", "f", bad]), not_float, "{bad:?}");
        }
        let nan_inf = "ERR increment would produce NaN or Infinity";
        assert_eq!(h.err(&["INCRBYFLOAT", "f", "inf"]), nan_inf);
        h.ok(&["SET", "big", "1.18e4932"]);
        assert_eq!(h.err(&["INCRBYFLOAT", "big", "1.18e4932"]), nan_inf);
        // A string with a NUL inside is not a float.
        let args = [
            Bytes::from("INCRBYFLOAT"),
            Bytes::from("k"),
            Bytes::from(&b"1\x002"[..]),
        ];
        assert_eq!(h.run_bytes(&args).unwrap_err().text(), not_float);
        assert!(h.entry("f").is_none());
    }

    #[test]
    fn lcs_string_len_and_idx() {
        let mut h = Harness::new();
        h.ok(&["MSET", "key1", "ohmytext", "key2", "mynewtext"]);
        assert_eq!(h.ok(&["LCS", "key1", "key2"]), bulk("mytext"));
        assert_eq!(h.ok(&["LCS", "key1", "key2", "LEN"]), Reply::Int(6));
        let idx = h.ok(&["LCS", "key1", "key2", "IDX"]);
        let matches = Reply::Array(vec![
            Reply::Array(vec![ints(&[4, 7]), ints(&[5, 8])]),
            Reply::Array(vec![ints(&[2, 3]), ints(&[0, 1])]),
        ]);
        assert_eq!(
            idx,
            Reply::Map(vec![
                (bulk("matches"), matches),
                (bulk("len"), Reply::Int(6))
            ])
        );
        let with_len = h.ok(&[
            "LCS",
            "key1",
            "key2",
            "IDX",
            "MINMATCHLEN",
            "4",
            "WITHMATCHLEN",
        ]);
        let matches = Reply::Array(vec![Reply::Array(vec![
            ints(&[4, 7]),
            ints(&[5, 8]),
            Reply::Int(4),
        ])]);
        assert_eq!(
            with_len,
            Reply::Map(vec![
                (bulk("matches"), matches),
                (bulk("len"), Reply::Int(6))
            ])
        );
        assert_eq!(h.ok(&["LCS", "key1", "nope"]), bulk(""));
        assert_eq!(h.ok(&["LCS", "nope", "nope2", "LEN"]), Reply::Int(0));
    }

    #[test]
    fn lcs_errors() {
        let mut h = Harness::new();
        h.ok(&["MSET", "a", "x", "b", "y"]);
        assert_eq!(
            h.err(&["LCS", "a", "b", "LEN", "IDX"]),
            "ERR If you want both the length and indexes, please just use IDX."
        );
        assert_eq!(h.err(&["LCS", "a", "b", "FOO"]), "ERR syntax error");
        assert_eq!(h.err(&["LCS", "a", "b", "MINMATCHLEN"]), "ERR syntax error");
        assert_eq!(
            h.err(&["LCS", "a", "b", "MINMATCHLEN", "x"]),
            "ERR value is not an integer or out of range"
        );
        let big = "a".repeat(12_000);
        h.ok(&["MSET", "a", &big, "b", &big]);
        assert_eq!(
            h.err(&["LCS", "a", "b"]),
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"
        );
    }

    #[test]
    fn long_double_parsing_and_formatting() {
        use long_double::{add, format_human, parse};
        let sum = |a: &str, b: &str| {
            add(parse(a.as_bytes()).unwrap(), parse(b.as_bytes()).unwrap()).map(format_human)
        };
        assert_eq!(sum("0.1", "0.2").as_deref(), Some("0.3"));
        assert_eq!(sum("1e-4950", "0").as_deref(), Some("0"));
        assert_eq!(sum("0x1.8p3", "0").as_deref(), Some("12"));
        assert_eq!(sum("-0", "0").as_deref(), Some("0"));
        assert_eq!(sum("inf", "1"), None);
        assert!(parse(b"+-1").is_none());
        assert!(parse(b".").is_none());
        assert!(parse(b"0x").is_none());
        assert!(parse(b"\x0b1").is_none());
        assert!(parse(".5".as_bytes()).is_some());
        assert!(parse("5.".as_bytes()).is_some());
    }

    #[test]
    fn table_matches_redis_metadata() {
        let find = |n: &str| COMMANDS.iter().find(|c| c.name == n).unwrap();
        assert_eq!(find("mset").legacy_range(), (1, -1, 2, false));
        assert_eq!(find("lcs").legacy_range(), (1, 2, 1, false));
        assert_eq!(
            find("get").acl_categories(),
            acl::READ | acl::STRING | acl::FAST
        );
        assert_eq!(
            find("set").acl_categories(),
            acl::WRITE | acl::STRING | acl::SLOW
        );
        assert_eq!(COMMANDS.len(), 22);
    }
}

//! The generic key-space commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, COPY, MOVE,
//! KEYS, SCAN, RANDOMKEY, the EXPIRE / TTL family, PERSIST, TOUCH and OBJECT. They mirror
//! Redis 7.0's `db.c`, `expire.c` and `objectCommand` in `object.c`: same replies, same error
//! texts, same order of checks. SCAN walks the per-slot tables, so its cursor is the next slot
//! to visit and every call returns whole slots.

use super::context::ExecCtx;
use super::errors;
use super::spec::{acl, flag::*, kflag, CmdResult, CommandSpec as C, KeySpec, Scope};
use crate::config::values::notify;
use crate::config::MaxmemoryPolicy;
use crate::keyspace::{Entry, StrValue, Value};
use crate::resp::{ErrorReply, Reply};
use crate::slot::SLOT_COUNT;
use crate::util::glob_match;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const KS: u32 = acl::KEYSPACE;
const MULTI_SHARD_SUM: &[&str] = &["request_policy:multi_shard", "response_policy:agg_sum"];
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

const ALL_KEYS_RM: &[KeySpec] = &[KeySpec::range(1, -1, 1, kflag::RM | kflag::DELETE)];
const ALL_KEYS_RO: &[KeySpec] = &[KeySpec::range(1, -1, 1, kflag::RO)];
const KEY_RO: &[KeySpec] = &[KeySpec::single(1, kflag::RO)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)];
const OBJECT_KEY: &[KeySpec] = &[KeySpec::single(2, kflag::RO)];
const RENAME_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RW | kflag::ACCESS | kflag::DELETE),
    KeySpec::single(2, kflag::OW | kflag::UPDATE),
];
const RENAMENX_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RW | kflag::ACCESS | kflag::DELETE),
    KeySpec::single(2, kflag::OW | kflag::INSERT),
];
const COPY_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RO | kflag::ACCESS),
    KeySpec::single(2, kflag::OW | kflag::UPDATE),
];
const MOVE_KEYS: &[KeySpec] = &[KeySpec::single(
    1,
    kflag::RW | kflag::ACCESS | kflag::UPDATE,
)];

const OBJECT_SUBCOMMANDS: &[C] = &[
    // Redis lists subcommands in its dict order; COMMAND INFO follows this order.
    C::new(
        "help",
        2,
        LOADING | STALE,
        KS,
        &[],
        "generic",
        "6.2.0",
        object_help,
    ),
    C::new(
        "encoding",
        3,
        READONLY,
        KS,
        OBJECT_KEY,
        "generic",
        "2.2.3",
        object_encoding,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "idletime",
        3,
        READONLY,
        KS,
        OBJECT_KEY,
        "generic",
        "2.2.3",
        object_idletime,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "freq",
        3,
        READONLY,
        KS,
        OBJECT_KEY,
        "generic",
        "4.0.0",
        object_freq,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "refcount",
        3,
        READONLY,
        KS,
        OBJECT_KEY,
        "generic",
        "2.2.3",
        object_refcount,
    )
    .tips(NONDETERMINISTIC),
];

pub const COMMANDS: &[C] = &[
    C::new("del", -2, WRITE, KS, ALL_KEYS_RM, "generic", "1.0.0", del).tips(MULTI_SHARD_SUM),
    C::new(
        "unlink",
        -2,
        WRITE | FAST,
        KS,
        ALL_KEYS_RM,
        "generic",
        "4.0.0",
        del,
    )
    .tips(MULTI_SHARD_SUM),
    C::new(
        "exists",
        -2,
        READONLY | FAST,
        KS,
        ALL_KEYS_RO,
        "generic",
        "1.0.0",
        exists,
    )
    .tips(MULTI_SHARD_SUM),
    C::new(
        "type",
        2,
        READONLY | FAST,
        KS,
        KEY_RO,
        "generic",
        "1.0.0",
        type_,
    ),
    C::new(
        "rename",
        3,
        WRITE,
        KS,
        RENAME_KEYS,
        "generic",
        "1.0.0",
        rename,
    ),
    C::new(
        "renamenx",
        3,
        WRITE | FAST,
        KS,
        RENAMENX_KEYS,
        "generic",
        "1.0.0",
        renamenx,
    ),
    C::new(
        "copy",
        -3,
        WRITE | DENYOOM,
        KS,
        COPY_KEYS,
        "generic",
        "6.2.0",
        copy,
    ),
    C::new(
        "move",
        3,
        WRITE | FAST,
        KS,
        MOVE_KEYS,
        "generic",
        "1.0.0",
        move_,
    ),
    C::new(
        "keys",
        2,
        READONLY,
        KS | acl::DANGEROUS,
        &[],
        "generic",
        "1.0.0",
        keys,
    )
    .scope(Scope::All)
    .tips(&["request_policy:all_shards", "nondeterministic_output_order"]),
    C::new(
        "scan",
        -2,
        READONLY | TOUCHES_ARBITRARY_KEYS,
        KS,
        &[],
        "generic",
        "2.8.0",
        scan,
    )
    .scope(Scope::All)
    .tips(&["nondeterministic_output", "request_policy:special"]),
    C::new(
        "randomkey",
        1,
        READONLY | TOUCHES_ARBITRARY_KEYS,
        KS,
        &[],
        "generic",
        "1.0.0",
        randomkey,
    )
    .scope(Scope::All)
    .tips(&["request_policy:all_shards", "nondeterministic_output"]),
    C::new(
        "expire",
        -3,
        WRITE | FAST | REPLY_BEFORE_EVENTS,
        KS,
        KEY_RW_UPDATE,
        "generic",
        "1.0.0",
        expire,
    ),
    C::new(
        "pexpire",
        -3,
        WRITE | FAST | REPLY_BEFORE_EVENTS,
        KS,
        KEY_RW_UPDATE,
        "generic",
        "2.6.0",
        pexpire,
    ),
    C::new(
        "expireat",
        -3,
        WRITE | FAST | REPLY_BEFORE_EVENTS,
        KS,
        KEY_RW_UPDATE,
        "generic",
        "1.2.0",
        expireat,
    ),
    C::new(
        "pexpireat",
        -3,
        WRITE | FAST | REPLY_BEFORE_EVENTS,
        KS,
        KEY_RW_UPDATE,
        "generic",
        "2.6.0",
        pexpireat,
    ),
    C::new(
        "ttl",
        2,
        READONLY | FAST,
        KS,
        KEY_RO_ACCESS,
        "generic",
        "1.0.0",
        ttl,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "pttl",
        2,
        READONLY | FAST,
        KS,
        KEY_RO_ACCESS,
        "generic",
        "2.6.0",
        pttl,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "expiretime",
        2,
        READONLY | FAST,
        KS,
        KEY_RO_ACCESS,
        "generic",
        "7.0.0",
        expiretime,
    ),
    C::new(
        "pexpiretime",
        2,
        READONLY | FAST,
        KS,
        KEY_RO_ACCESS,
        "generic",
        "7.0.0",
        pexpiretime,
    ),
    C::new(
        "persist",
        2,
        WRITE | FAST,
        KS,
        KEY_RW_UPDATE,
        "generic",
        "2.2.0",
        persist,
    ),
    C::new(
        "touch",
        -2,
        READONLY | FAST,
        KS,
        ALL_KEYS_RO,
        "generic",
        "3.2.1",
        touch,
    )
    .tips(MULTI_SHARD_SUM),
    C::new(
        "object",
        -2,
        0,
        0,
        &[],
        "generic",
        "2.2.3",
        object_container,
    )
    .subcommands(OBJECT_SUBCOMMANDS),
];

// ---- DEL, UNLINK, EXISTS, TYPE, TOUCH ----

/// DEL and UNLINK: values are freed in place either way, so the two differ only in flags.
fn del(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut deleted = 0;
    for key in &args[1..] {
        if ctx.delete(key) {
            ctx.dirty(1);
            ctx.notify(notify::GENERIC, "del", key);
            deleted += 1;
        }
    }
    Ok(Reply::Int(deleted))
}

/// Counts every argument that names a live key, duplicates included.
fn exists(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let found = args[1..]
        .iter()
        .filter(|key| ctx.lookup_read_no_touch(key).is_some())
        .count();
    Ok(Reply::Int(found as i64))
}

fn type_(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let name = ctx
        .lookup_read_no_touch(&args[1])
        .map_or("none", |e| e.value.type_name());
    Ok(Reply::simple(name))
}

/// Updates the access time of each existing key; replies how many exist.
fn touch(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let found = args[1..]
        .iter()
        .filter(|key| ctx.lookup_read(key).is_some())
        .count();
    Ok(Reply::Int(found as i64))
}

// ---- RENAME, RENAMENX, MOVE, COPY ----

fn rename(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, &args[1], &args[2], false)
}

fn renamenx(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    rename_generic(ctx, &args[1], &args[2], true)
}

/// The entry moves whole, so the TTL and the access time travel with the value.
fn rename_generic(ctx: &mut ExecCtx, src: &[u8], dst: &[u8], nx: bool) -> CmdResult {
    if ctx.lookup_write(src).is_none() {
        return Err(errors::NO_SUCH_KEY);
    }
    let done = if nx { Reply::Int(1) } else { Reply::OK };
    if src == dst {
        return Ok(if nx { Reply::Int(0) } else { Reply::OK });
    }
    if ctx.lookup_write(dst).is_some() && nx {
        return Ok(Reply::Int(0));
    }
    let db = ctx.db();
    let entry = ctx.ks().remove(db, src).expect("source looked up above");
    ctx.ks().remove(db, dst);
    ctx.add_entry(db, dst, entry);
    ctx.dirty(1);
    ctx.notify(notify::GENERIC, "rename_from", src);
    ctx.notify(notify::GENERIC, "rename_to", dst);
    Ok(done)
}

/// Redis's `getIntFromObjectOrReply` for a database number, then the range check.
fn db_arg(ctx: &ExecCtx, arg: &[u8]) -> Result<usize, ErrorReply> {
    let id = ctx.int_arg(arg)?;
    if i32::try_from(id).is_err() {
        return Err(errors::INT_OUT_OF_RANGE);
    }
    if id < 0 || id as usize >= ctx.server.keyspace.databases() {
        return Err(errors::DB_INDEX_OUT_OF_RANGE);
    }
    Ok(id as usize)
}

fn move_(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if ctx.server.config().cluster_enabled {
        return Err(errors::MOVE_IN_CLUSTER);
    }
    let key = &args[1];
    let (src, dst) = (ctx.db(), db_arg(ctx, &args[2])?);
    if src == dst {
        return Err(errors::SAME_OBJECT);
    }
    if ctx.lookup_write(key).is_none() || ctx.lookup_in(dst, key).is_some() {
        return Ok(Reply::Int(0));
    }
    let entry = ctx.ks().remove(src, key).expect("source looked up above");
    ctx.add_entry(dst, key, entry);
    ctx.dirty(1);
    ctx.notify_in(src, notify::GENERIC, "move_from", key);
    ctx.notify_in(dst, notify::GENERIC, "move_to", key);
    Ok(Reply::Int(1))
}

/// COPY source destination [DB n] [REPLACE]. The copy is a new object: fresh access time,
/// the source's TTL.
fn copy(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        let more = args.len() - j - 1;
        if args[j].eq_ignore_ascii_case(b"replace") {
            replace = true;
        } else if args[j].eq_ignore_ascii_case(b"db") && more >= 1 {
            dst_db = db_arg(ctx, &args[j + 1])?;
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    if ctx.server.config().cluster_enabled && (src_db != 0 || dst_db != 0) {
        return Err(errors::COPY_DB_IN_CLUSTER);
    }
    let (key, newkey) = (&args[1], &args[2]);
    if src_db == dst_db && key == newkey {
        return Err(errors::SAME_OBJECT);
    }
    let Some(found) = ctx.lookup_read(key) else {
        return Ok(Reply::Int(0));
    };
    let (value, expire_at_ms) = (found.value.clone(), found.expire_at_ms);
    if ctx.lookup_in(dst_db, newkey).is_some() && !replace {
        return Ok(Reply::Int(0));
    }
    let mut entry = Entry::new(value, ctx.lru_now());
    entry.expire_at_ms = expire_at_ms;
    ctx.ks().remove(dst_db, newkey);
    ctx.add_entry(dst_db, newkey, entry);
    ctx.dirty(1);
    ctx.notify_in(dst_db, notify::GENERIC, "copy_to", newkey);
    Ok(Reply::Int(1))
}

// ---- KEYS, SCAN, RANDOMKEY ----

fn keys(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1][..];
    let all = pattern == b"*";
    let (db, now) = (ctx.db(), ctx.now_ms);
    let mut found = Vec::new();
    ctx.ks().for_each_key_from(db, 0, now, |key, _| {
        if all || glob_match(pattern, key, false) {
            found.push(Bytes::copy_from_slice(key));
        }
        true
    });
    Ok(Reply::bulks(found))
}

/// Redis parses the cursor with `strtoul`: an optional sign, decimal digits, nothing after,
/// no leading space; an empty string is cursor 0 and a negative number wraps around.
pub(crate) fn parse_cursor(arg: &[u8]) -> Result<u64, ErrorReply> {
    let is_c_space = |c: u8| c == b' ' || (b'\t'..=b'\r').contains(&c);
    if arg.is_empty() {
        return Ok(0);
    }
    if is_c_space(arg[0]) {
        return Err(errors::INVALID_CURSOR);
    }
    let (negative, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(errors::INVALID_CURSOR);
    }
    let value = digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    let value = value.ok_or(errors::INVALID_CURSOR)?;
    Ok(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

struct ScanOptions<'a> {
    count: usize,
    pattern: Option<&'a [u8]>,
    type_name: Option<&'a [u8]>,
}

fn scan_options<'a>(ctx: &ExecCtx, args: &'a [Bytes]) -> Result<ScanOptions<'a>, ErrorReply> {
    let mut opts = ScanOptions {
        count: 10,
        pattern: None,
        type_name: None,
    };
    let mut i = 2;
    while i < args.len() {
        let has_value = args.len() - i >= 2;
        let opt = &args[i];
        if opt.eq_ignore_ascii_case(b"count") && has_value {
            let count = ctx.int_arg(&args[i + 1])?;
            if count < 1 {
                return Err(errors::SYNTAX);
            }
            opts.count = usize::try_from(count).unwrap_or(usize::MAX);
        } else if opt.eq_ignore_ascii_case(b"match") && has_value {
            // "*" matches everything: the same as no pattern.
            let p = &args[i + 1][..];
            opts.pattern = (p != b"*").then_some(p);
        } else if opt.eq_ignore_ascii_case(b"type") && has_value {
            opts.type_name = Some(&args[i + 1][..]);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    Ok(opts)
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The cursor is the next slot to
/// visit; whole slots are returned until at least COUNT keys were seen (before filtering,
/// like Redis's bucket walk), then the key filters apply.
fn scan(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[1])?;
    let opts = scan_options(ctx, args)?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let mut seen = 0usize;
    let mut found: Vec<Bytes> = Vec::new();
    let mut type_checks = 0u64;
    let mut expired: Vec<Box<[u8]>> = Vec::new();
    // Expired keys are walked too (they count toward COUNT, as in Redis's bucket walk), then
    // lazily deleted instead of returned.
    let next = match usize::try_from(cursor) {
        Ok(from) if from < SLOT_COUNT => ctx.ks().for_each_key_from(db, from, 0, |key, entry| {
            seen += 1;
            if entry.is_expired(now) {
                expired.push(key.into());
                return seen < opts.count;
            }
            let matches = opts.pattern.is_none_or(|p| glob_match(p, key, false));
            let right_type = matches
                && opts.type_name.is_none_or(|t| {
                    type_checks += 1;
                    t.eq_ignore_ascii_case(entry.value.type_name().as_bytes())
                });
            if matches && right_type {
                found.push(Bytes::copy_from_slice(key));
            }
            seen < opts.count
        }),
        _ => None,
    };
    for key in expired {
        ctx.expire_if_needed(&key);
    }
    // Redis finds each candidate's type with a read lookup, which counts as a hit.
    ctx.server
        .stats
        .keyspace_hits
        .fetch_add(type_checks, Relaxed);
    let cursor = next.unwrap_or(0).to_string();
    Ok(Reply::Array(vec![
        Reply::bulk_str(&cursor),
        Reply::bulks(found),
    ]))
}

/// A per-process sequence keeps successive RANDOMKEY calls in the same microsecond apart.
static RANDOM_SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// SplitMix64: a small, well-mixed generator seeded from the command's time and client;
/// command modules take no randomness from the OS.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn randomkey(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let mut state = ctx.now_us
        ^ ctx.client.id.rotate_left(32)
        ^ RANDOM_SEQUENCE.fetch_add(1, Relaxed).rotate_left(48);
    // Like Redis's dbRandomKey: an expired pick is lazily deleted and another one drawn, a
    // bounded number of times.
    for _ in 0..100 {
        let Some(key) = ctx
            .ks()
            .random_key(db, 0, |n| (splitmix64(&mut state) % n as u64) as usize)
        else {
            return Ok(Reply::Null);
        };
        if !ctx.ks().peek(db, &key).is_some_and(|e| e.is_expired(now)) {
            return Ok(Reply::bulk(Bytes::from(key.into_vec())));
        }
        ctx.expire_if_needed(&key);
    }
    Ok(Reply::Null)
}

// ---- EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT ----

#[derive(Clone, Copy, Default)]
struct ExpireFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn expire_flags(args: &[Bytes]) -> Result<ExpireFlags, ErrorReply> {
    let mut f = ExpireFlags::default();
    for opt in &args[3..] {
        match opt.to_ascii_lowercase().as_slice() {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"gt" => f.gt = true,
            b"lt" => f.lt = true,
            _ => return Err(errors::unsupported_option(opt)),
        }
    }
    if f.nx && (f.xx || f.gt || f.lt) {
        return Err(errors::EXPIRE_NX_XX_GT_LT);
    }
    if f.gt && f.lt {
        return Err(errors::EXPIRE_GT_LT);
    }
    Ok(f)
}

fn expire(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, true, "expire")
}

fn pexpire(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    expire_generic(ctx, args, now, false, "pexpire")
}

fn expireat(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, true, "expireat")
}

fn pexpireat(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    expire_generic(ctx, args, 0, false, "pexpireat")
}

/// Whether the options let the new expiry `when` replace `current` (None = persistent, which
/// GT and LT treat as an infinite TTL).
fn expire_allowed(f: ExpireFlags, current: Option<i64>, when: i64) -> bool {
    match current {
        None => !(f.xx || f.gt),
        Some(cur) => !(f.nx || (f.gt && when <= cur) || (f.lt && when >= cur)),
    }
}

fn expire_generic(
    ctx: &mut ExecCtx,
    args: &[Bytes],
    basetime_ms: i64,
    seconds: bool,
    name: &str,
) -> CmdResult {
    let flags = expire_flags(args)?;
    let mut when = ctx.int_arg(&args[2])?;
    // Negative times are allowed (they delete the key); only overflow is an error, with
    // Redis's bounds (LLONG_MIN / 1000 truncates towards zero).
    if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Err(errors::invalid_expire_time(name));
        }
        when *= 1000;
    }
    if when > i64::MAX - basetime_ms {
        return Err(errors::invalid_expire_time(name));
    }
    when += basetime_ms;
    let key = &args[1];
    let Some(entry) = ctx.lookup_write(key) else {
        return Ok(Reply::Int(0));
    };
    let current = (entry.expire_at_ms != 0).then_some(entry.expire_at_ms as i64);
    if !expire_allowed(flags, current, when) {
        return Ok(Reply::Int(0));
    }
    // A replica keeps the key until its primary sends the DEL.
    if ctx.already_expired(when) {
        ctx.delete(key);
        let lazy = ctx.server.config().lazyfree_lazy_expire;
        ctx.propagate_as_del(key, lazy);
        ctx.notify(notify::GENERIC, "del", key);
    } else {
        ctx.set_expire(key, when.max(1) as u64);
        ctx.notify(notify::GENERIC, "expire", key);
        // Propagated as PEXPIREAT with the absolute time; the options stay.
        let mut argv = args.to_vec();
        argv[0] = Bytes::from_static(b"PEXPIREAT");
        if basetime_ms != 0 || seconds {
            argv[2] = Bytes::from(when.to_string());
        }
        ctx.propagate_as(argv);
    }
    ctx.dirty(1);
    Ok(Reply::Int(1))
}

// ---- TTL, PTTL, EXPIRETIME, PEXPIRETIME, PERSIST ----

fn ttl(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false, false)
}

fn pttl(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true, false)
}

fn expiretime(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], false, true)
}

fn pexpiretime(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    ttl_generic(ctx, &args[1], true, true)
}

/// -2 for a missing key, -1 for a persistent one; seconds are rounded to the nearest.
fn ttl_generic(ctx: &mut ExecCtx, key: &[u8], millis: bool, absolute: bool) -> CmdResult {
    let now = ctx.now_ms as i64;
    let Some(entry) = ctx.lookup_read_no_touch(key) else {
        return Ok(Reply::Int(-2));
    };
    if entry.expire_at_ms == 0 {
        return Ok(Reply::Int(-1));
    }
    let at = entry.expire_at_ms as i64;
    let ms = if absolute { at } else { (at - now).max(0) };
    Ok(Reply::Int(if millis { ms } else { (ms + 500) / 1000 }))
}

fn persist(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let had_ttl = ctx.lookup_write(key).is_some_and(|e| e.expire_at_ms != 0);
    if had_ttl {
        ctx.set_expire(key, 0);
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "persist", key);
    }
    Ok(Reply::Int(had_ttl as i64))
}

// ---- OBJECT ----

/// Redis's OBJ_SHARED_INTEGERS: integer strings below this are one shared object.
const SHARED_INTEGERS: i64 = 10_000;
/// The refcount Redis reports for shared objects (OBJ_SHARED_REFCOUNT = INT_MAX).
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// A container called with a subcommand it does not know never reaches here (dispatch
/// answers first); with no subcommand the arity check answers.
fn object_container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn object_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
    ];
    Ok(super::debug::help_reply(&args[0], LINES))
}

fn lfu_policy(ctx: &ExecCtx) -> bool {
    matches!(
        ctx.server.config().maxmemory_policy,
        MaxmemoryPolicy::VolatileLfu | MaxmemoryPolicy::AllkeysLfu
    )
}

/// Redis stops sharing small integers when maxmemory evicts by LRU or LFU, since every
/// object then needs its own access data.
fn shares_integers(ctx: &ExecCtx) -> bool {
    let config = ctx.server.config();
    config.maxmemory == 0
        || !matches!(
            config.maxmemory_policy,
            MaxmemoryPolicy::VolatileLru
                | MaxmemoryPolicy::AllkeysLru
                | MaxmemoryPolicy::VolatileLfu
                | MaxmemoryPolicy::AllkeysLfu
        )
}

fn object_encoding(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(ctx
        .lookup_read_no_touch(&args[2])
        .map_or(Reply::Null, |e| Reply::bulk_str(e.value.encoding_name())))
}

fn object_refcount(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let shared = shares_integers(ctx);
    let Some(entry) = ctx.lookup_read_no_touch(&args[2]) else {
        return Ok(Reply::Null);
    };
    let small_int =
        matches!(entry.value, Value::Str(StrValue::Int(i)) if (0..SHARED_INTEGERS).contains(&i));
    Ok(Reply::Int(if small_int && shared {
        SHARED_REFCOUNT
    } else {
        1
    }))
}

fn object_idletime(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let lfu = lfu_policy(ctx);
    let now_secs = ctx.lru_now();
    let Some(entry) = ctx.lookup_read_no_touch(&args[2]) else {
        return Ok(Reply::Null);
    };
    let last = entry.lru_secs;
    if lfu {
        return Err(errors::LFU_SELECTED);
    }
    Ok(Reply::Int(i64::from(now_secs.saturating_sub(last))))
}

/// OBJECT FREQ: the key's LFU counter, decayed by the time since its last access.
fn object_freq(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let lfu = super::context::lfu_params(ctx.server);
    let now_secs = ctx.lru_now();
    let Some(entry) = ctx.lookup_read_no_touch(&args[2]) else {
        return Ok(Reply::Null);
    };
    let Some(params) = lfu else {
        return Err(errors::LFU_NOT_SELECTED);
    };
    Ok(Reply::Int(i64::from(crate::keyspace::evict::lfu_decayed(
        entry, now_secs, params,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs key-space commands against a fresh server, the way dispatch would (subcommand
    /// lookup and arity first), with every shard locked.
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

        fn spec(args: &[Bytes]) -> (&'static C, String) {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
            let top = COMMANDS
                .iter()
                .find(|c| c.name == name)
                .expect("a key-space command");
            if top.subcommands.is_empty() || args.len() < 2 {
                return (top, name);
            }
            let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            let spec = top
                .subcommands
                .iter()
                .find(|c| c.name == sub)
                .expect("a known subcommand");
            (spec, format!("{name}|{sub}"))
        }

        fn run(&mut self, argv: &[&str]) -> CmdResult {
            let args: Vec<Bytes> = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            let (spec, fullname) = Self::spec(&args);
            if !spec.arity_ok(args.len()) {
                return Err(errors::wrong_arity(&fullname));
            }
            let ks = self.server.keyspace.lock_all();
            let mut ctx =
                ExecCtx::new(self.now_ms * 1000, Some(ks), &mut self.client, &self.server);
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
                other => panic!("{argv:?} replied {other:?}, expected an integer"),
            }
        }

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}, expected an error"),
            }
        }

        fn set(&mut self, key: &str, value: &str) {
            self.set_in(self.client.db, key, value);
        }

        fn set_in(&mut self, db: usize, key: &str, value: &str) {
            let lru = (self.now_ms / 1000) as u32;
            let entry = Entry::new(Value::Str(StrValue::from_bytes(value.as_bytes())), lru);
            self.server
                .keyspace
                .lock_all()
                .insert(db, key.as_bytes(), entry);
        }

        fn entry_in(&mut self, db: usize, key: &str) -> Option<Entry> {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(db, key.as_bytes()).cloned()
        }

        fn entry(&mut self, key: &str) -> Option<Entry> {
            self.entry_in(self.client.db, key)
        }

        fn value(&mut self, key: &str) -> Option<Vec<u8>> {
            self.entry(key).map(|e| match e.value {
                Value::Str(s) => s.to_bytes().into_owned(),
                other => panic!("{key} holds a {}", other.type_name()),
            })
        }

        fn set_config(&self, change: impl FnOnce(&mut crate::config::Config)) {
            let mut config = (**self.server.config()).clone();
            change(&mut config);
            self.server.config.store(std::sync::Arc::new(config));
        }
    }

    fn bulk(s: &str) -> Reply {
        Reply::bulk_str(s)
    }

    fn sorted_bulks(reply: Reply) -> Vec<String> {
        let Reply::Array(items) = reply else {
            panic!("expected an array, got {reply:?}");
        };
        let mut out: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("expected bulk strings, got {other:?}"),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn del_counts_each_existing_key_once() {
        let mut h = Harness::new();
        h.set("a", "1");
        h.set("b", "2");
        assert_eq!(h.int(&["DEL", "a", "a", "b", "missing"]), 2);
        assert_eq!(h.dirty, 2);
        assert!(h.entry("a").is_none() && h.entry("b").is_none());
        h.set("c", "3");
        assert_eq!(h.int(&["UNLINK", "c", "c"]), 1);
    }

    #[test]
    fn exists_counts_duplicates_and_touch_counts_existing() {
        let mut h = Harness::new();
        h.set("a", "1");
        assert_eq!(h.int(&["EXISTS", "a", "a", "nope"]), 2);
        assert_eq!(h.int(&["TOUCH", "a", "nope", "a"]), 2);
        assert_eq!(h.dirty, 0);
    }

    #[test]
    fn only_touch_updates_the_access_time() {
        let mut h = Harness::new();
        h.set("foo", "bar");
        h.now_ms += 3_000;
        h.ok(&["TTL", "foo"]);
        h.ok(&["TYPE", "foo"]);
        h.ok(&["EXISTS", "foo"]);
        assert_eq!(h.int(&["OBJECT", "IDLETIME", "foo"]), 3);
        h.ok(&["TOUCH", "foo"]);
        assert_eq!(h.int(&["OBJECT", "IDLETIME", "foo"]), 0);
    }

    #[test]
    fn type_reports_none_for_missing_keys() {
        let mut h = Harness::new();
        h.set("s", "hello");
        assert_eq!(h.ok(&["TYPE", "s"]), Reply::simple("string"));
        assert_eq!(h.ok(&["TYPE", "nope"]), Reply::simple("none"));
    }

    #[test]
    fn rename_moves_value_and_ttl() {
        let mut h = Harness::new();
        h.set("a", "v");
        assert_eq!(h.int(&["PEXPIRE", "a", "5000"]), 1);
        h.set("b", "old");
        assert_eq!(h.ok(&["RENAME", "a", "b"]), Reply::OK);
        assert!(h.entry("a").is_none());
        assert_eq!(h.value("b").unwrap(), b"v");
        assert_eq!(h.int(&["PTTL", "b"]), 5000);
        assert_eq!(h.err(&["RENAME", "a", "b"]), "ERR no such key");
        assert_eq!(h.ok(&["RENAME", "b", "b"]), Reply::OK);
        assert_eq!(h.err(&["RENAME", "zz", "zz"]), "ERR no such key");
    }

    #[test]
    fn renamenx_refuses_existing_destination_and_same_key() {
        let mut h = Harness::new();
        h.set("a", "1");
        h.set("b", "2");
        assert_eq!(h.int(&["RENAMENX", "a", "b"]), 0);
        assert_eq!(h.int(&["RENAMENX", "a", "a"]), 0);
        assert_eq!(h.int(&["RENAMENX", "a", "c"]), 1);
        assert_eq!(h.value("c").unwrap(), b"1");
        assert_eq!(h.err(&["RENAMENX", "a", "d"]), "ERR no such key");
    }

    #[test]
    fn copy_within_and_across_databases() {
        let mut h = Harness::new();
        h.set("src", "hello");
        assert_eq!(h.int(&["PEXPIRE", "src", "9000"]), 1);
        assert_eq!(h.int(&["COPY", "src", "dst"]), 1);
        assert_eq!(h.value("dst").unwrap(), b"hello");
        assert_eq!(h.int(&["PTTL", "dst"]), 9000);
        assert_eq!(h.int(&["COPY", "src", "dst"]), 0);
        h.set("src", "new");
        assert_eq!(h.int(&["COPY", "src", "dst", "REPLACE"]), 1);
        assert_eq!(h.value("dst").unwrap(), b"new");
        assert_eq!(h.int(&["COPY", "src", "src", "DB", "3"]), 1);
        assert!(h.entry_in(3, "src").is_some());
        assert_eq!(h.int(&["COPY", "nope", "x"]), 0);
        assert_eq!(
            h.err(&["COPY", "src", "src"]),
            "ERR source and destination objects are the same"
        );
        assert_eq!(
            h.err(&["COPY", "src", "src", "DB", "0"]),
            "ERR source and destination objects are the same"
        );
        assert_eq!(
            h.err(&["COPY", "src", "x", "DB", "99"]),
            "ERR DB index is out of range"
        );
        assert_eq!(
            h.err(&["COPY", "src", "x", "DB", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(h.err(&["COPY", "src", "x", "DB"]), "ERR syntax error");
        assert_eq!(h.err(&["COPY", "src", "x", "BOGUS"]), "ERR syntax error");
    }

    #[test]
    fn move_transfers_key_between_databases() {
        let mut h = Harness::new();
        h.set("k", "v");
        assert_eq!(h.int(&["EXPIRE", "k", "100"]), 1);
        assert_eq!(h.int(&["MOVE", "k", "1"]), 1);
        assert!(h.entry("k").is_none());
        let moved = h.entry_in(1, "k").expect("moved");
        assert_eq!(moved.expire_at_ms, NOW_MS + 100_000);
        assert_eq!(h.int(&["MOVE", "k", "1"]), 0);
        h.set("k", "again");
        assert_eq!(h.int(&["MOVE", "k", "1"]), 0, "target exists");
        assert_eq!(
            h.err(&["MOVE", "k", "0"]),
            "ERR source and destination objects are the same"
        );
        assert_eq!(h.err(&["MOVE", "k", "16"]), "ERR DB index is out of range");
        assert_eq!(
            h.err(&["MOVE", "k", "99999999999"]),
            "ERR value is out of range, value must between -2147483648 and 2147483647"
        );
    }

    #[test]
    fn move_is_refused_in_cluster_mode() {
        let mut h = Harness::new();
        h.set_config(|c| c.cluster_enabled = true);
        assert_eq!(
            h.err(&["MOVE", "k", "1"]),
            "ERR MOVE is not allowed in cluster mode"
        );
        assert_eq!(
            h.err(&["COPY", "a", "b", "DB", "1"]),
            "ERR Copying to another database is not allowed in cluster mode"
        );
        assert_eq!(h.int(&["COPY", "a", "b", "DB", "0"]), 0);
    }

    #[test]
    fn keys_matches_glob_and_skips_expired() {
        let mut h = Harness::new();
        for k in ["foo", "foobar", "bar", "gone"] {
            h.set(k, "x");
        }
        assert_eq!(h.int(&["PEXPIRE", "gone", "10"]), 1);
        h.now_ms += 20;
        assert_eq!(sorted_bulks(h.ok(&["KEYS", "foo*"])), ["foo", "foobar"]);
        assert_eq!(sorted_bulks(h.ok(&["KEYS", "*"])), ["bar", "foo", "foobar"]);
        assert_eq!(sorted_bulks(h.ok(&["KEYS", "?ar"])), ["bar"]);
    }

    fn scan_step(h: &mut Harness, argv: &[&str]) -> (String, Vec<String>) {
        let Reply::Array(mut parts) = h.ok(argv) else {
            panic!("SCAN replies an array");
        };
        let keys = sorted_bulks(parts.pop().unwrap());
        let Reply::Bulk(cursor) = parts.pop().unwrap() else {
            panic!("the cursor is a bulk string");
        };
        (String::from_utf8(cursor.to_vec()).unwrap(), keys)
    }

    #[test]
    fn scan_visits_every_key_exactly_once() {
        let mut h = Harness::new();
        for i in 0..500 {
            h.set(&format!("key:{i}"), "v");
        }
        let mut cursor = "0".to_string();
        let mut seen = Vec::new();
        let mut calls = 0;
        loop {
            let (next, keys) = scan_step(&mut h, &["SCAN", &cursor, "COUNT", "20"]);
            seen.extend(keys);
            calls += 1;
            cursor = next;
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 500);
        assert!(calls > 10, "COUNT bounds each call: {calls} calls");
    }

    #[test]
    fn scan_filters_by_match_and_type() {
        let mut h = Harness::new();
        for k in ["a1", "a2", "b1"] {
            h.set(k, "v");
        }
        let (cursor, keys) = scan_step(&mut h, &["SCAN", "0", "MATCH", "a*", "COUNT", "1000"]);
        assert_eq!(cursor, "0");
        assert_eq!(keys, ["a1", "a2"]);
        let (_, keys) = scan_step(&mut h, &["SCAN", "0", "TYPE", "STRING", "COUNT", "100"]);
        assert_eq!(keys, ["a1", "a2", "b1"]);
        let (_, keys) = scan_step(&mut h, &["SCAN", "0", "TYPE", "list", "COUNT", "100"]);
        assert!(keys.is_empty());
    }

    #[test]
    fn scan_rejects_bad_cursors_and_options() {
        let mut h = Harness::new();
        assert_eq!(h.err(&["SCAN", "abc"]), "ERR invalid cursor");
        assert_eq!(h.err(&["SCAN", " 1"]), "ERR invalid cursor");
        assert_eq!(
            h.err(&["SCAN", "99999999999999999999999"]),
            "ERR invalid cursor"
        );
        assert_eq!(h.err(&["SCAN", "0", "COUNT", "0"]), "ERR syntax error");
        assert_eq!(
            h.err(&["SCAN", "0", "COUNT", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(h.err(&["SCAN", "0", "MATCH"]), "ERR syntax error");
        assert_eq!(h.err(&["SCAN", "0", "BOGUS", "1"]), "ERR syntax error");
        assert_eq!(scan_step(&mut h, &["SCAN", "-1"]).0, "0");
        assert_eq!(scan_step(&mut h, &["SCAN", ""]).0, "0");
    }

    #[test]
    fn randomkey_returns_a_live_key_or_nil() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["RANDOMKEY"]), Reply::Null);
        h.set("only", "v");
        assert_eq!(h.ok(&["RANDOMKEY"]), bulk("only"));
        for k in ["a", "b", "c", "d"] {
            h.set(k, "v");
        }
        let mut picked = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let Reply::Bulk(k) = h.ok(&["RANDOMKEY"]) else {
                panic!("RANDOMKEY replies a bulk string");
            };
            picked.insert(k);
        }
        assert_eq!(picked.len(), 5, "every key is eventually picked");
    }

    #[test]
    fn expire_sets_relative_and_absolute_times() {
        let mut h = Harness::new();
        h.set("k", "v");
        assert_eq!(h.int(&["EXPIRE", "k", "10"]), 1);
        assert_eq!(h.entry("k").unwrap().expire_at_ms, NOW_MS + 10_000);
        assert_eq!(h.int(&["PEXPIRE", "k", "1500"]), 1);
        assert_eq!(h.int(&["TTL", "k"]), 2, "1.5 s rounds to 2");
        assert_eq!(h.int(&["PTTL", "k"]), 1500);
        let at = (NOW_MS / 1000 + 100).to_string();
        assert_eq!(h.int(&["EXPIREAT", "k", &at]), 1);
        assert_eq!(h.int(&["EXPIRETIME", "k"]), (NOW_MS / 1000 + 100) as i64);
        let pat = (NOW_MS + 7).to_string();
        assert_eq!(h.int(&["PEXPIREAT", "k", &pat]), 1);
        assert_eq!(h.int(&["PEXPIRETIME", "k"]), (NOW_MS + 7) as i64);
        assert_eq!(h.int(&["EXPIRE", "missing", "10"]), 0);
        assert_eq!(h.dirty, 4);
    }

    #[test]
    fn expire_in_the_past_deletes_the_key() {
        let mut h = Harness::new();
        h.set("k", "v");
        assert_eq!(h.int(&["EXPIRE", "k", "-1"]), 1);
        assert!(h.entry("k").is_none());
        h.set("k", "v");
        assert_eq!(h.int(&["PEXPIREAT", "k", "0"]), 1);
        assert!(h.entry("k").is_none());
        assert_eq!(h.dirty, 2);
    }

    #[test]
    fn expire_options_follow_redis_rules() {
        let mut h = Harness::new();
        h.set("k", "v");
        // A persistent key has an infinite TTL: GT never applies, LT always does.
        assert_eq!(h.int(&["EXPIRE", "k", "100", "XX"]), 0);
        assert_eq!(h.int(&["EXPIRE", "k", "100", "GT"]), 0);
        assert_eq!(h.int(&["EXPIRE", "k", "100", "NX"]), 1);
        assert_eq!(h.int(&["EXPIRE", "k", "200", "NX"]), 0);
        assert_eq!(h.int(&["EXPIRE", "k", "50", "GT"]), 0);
        assert_eq!(h.int(&["EXPIRE", "k", "200", "gt"]), 1);
        assert_eq!(h.int(&["EXPIRE", "k", "300", "LT"]), 0);
        assert_eq!(h.int(&["EXPIRE", "k", "150", "XX", "LT"]), 1);
        assert_eq!(h.int(&["TTL", "k"]), 150);
        h.set("p", "v");
        assert_eq!(h.int(&["EXPIRE", "p", "10", "LT"]), 1);
        assert_eq!(
            h.err(&["EXPIRE", "k", "1", "NX", "XX"]),
            "ERR NX and XX, GT or LT options at the same time are not compatible"
        );
        assert_eq!(
            h.err(&["EXPIRE", "k", "1", "GT", "LT"]),
            "ERR GT and LT options at the same time are not compatible"
        );
        assert_eq!(
            h.err(&["EXPIRE", "k", "1", "FOO"]),
            "ERR Unsupported option FOO"
        );
    }

    #[test]
    fn expire_overflow_is_reported_with_the_command_name() {
        let mut h = Harness::new();
        h.set("k", "v");
        assert_eq!(
            h.err(&["EXPIRE", "k", "9223372036854775807"]),
            "ERR invalid expire time in 'expire' command"
        );
        assert_eq!(
            h.err(&["PEXPIRE", "k", "9223372036854775807"]),
            "ERR invalid expire time in 'pexpire' command"
        );
        assert_eq!(
            h.err(&["EXPIREAT", "k", "-9223372036854775807"]),
            "ERR invalid expire time in 'expireat' command"
        );
        assert_eq!(
            h.err(&["PEXPIRE", "k", "abc"]),
            "ERR value is not an integer or out of range"
        );
        assert!(h.entry("k").is_some());
    }

    #[test]
    fn ttl_distinguishes_missing_and_persistent_keys() {
        let mut h = Harness::new();
        assert_eq!(h.int(&["TTL", "nope"]), -2);
        assert_eq!(h.int(&["PTTL", "nope"]), -2);
        assert_eq!(h.int(&["EXPIRETIME", "nope"]), -2);
        h.set("k", "v");
        assert_eq!(h.int(&["TTL", "k"]), -1);
        assert_eq!(h.int(&["PEXPIRETIME", "k"]), -1);
        assert_eq!(h.int(&["PEXPIRE", "k", "499"]), 1);
        assert_eq!(h.int(&["TTL", "k"]), 0, "499 ms rounds down");
        h.now_ms += 499;
        assert_eq!(h.int(&["PTTL", "k"]), -2, "expired at its deadline");
    }

    #[test]
    fn persist_removes_the_ttl_once() {
        let mut h = Harness::new();
        h.set("k", "v");
        assert_eq!(h.int(&["PERSIST", "k"]), 0);
        assert_eq!(h.int(&["EXPIRE", "k", "10"]), 1);
        assert_eq!(h.int(&["PERSIST", "k"]), 1);
        assert_eq!(h.int(&["TTL", "k"]), -1);
        assert_eq!(h.int(&["PERSIST", "nope"]), 0);
        assert_eq!(h.dirty, 2);
    }

    #[test]
    fn object_encoding_and_refcount_follow_redis() {
        let mut h = Harness::new();
        h.set("i", "123");
        h.set("big", "123456");
        h.set("s", "hello");
        assert_eq!(h.ok(&["OBJECT", "ENCODING", "i"]), bulk("int"));
        assert_eq!(h.ok(&["OBJECT", "ENCODING", "s"]), bulk("embstr"));
        assert_eq!(h.ok(&["OBJECT", "ENCODING", "nope"]), Reply::Null);
        assert_eq!(h.int(&["OBJECT", "REFCOUNT", "i"]), 2147483647);
        assert_eq!(h.int(&["OBJECT", "REFCOUNT", "big"]), 1);
        assert_eq!(h.int(&["OBJECT", "REFCOUNT", "s"]), 1);
        assert_eq!(h.ok(&["OBJECT", "REFCOUNT", "nope"]), Reply::Null);
        assert_eq!(
            h.err(&["OBJECT", "ENCODING"]),
            "ERR wrong number of arguments for 'object|encoding' command"
        );
    }

    #[test]
    fn object_idletime_and_freq_depend_on_the_policy() {
        let mut h = Harness::new();
        h.set("k", "v");
        h.now_ms += 5_000;
        assert_eq!(h.int(&["OBJECT", "IDLETIME", "k"]), 5);
        assert_eq!(
            h.int(&["OBJECT", "IDLETIME", "k"]),
            5,
            "OBJECT does not touch"
        );
        assert!(h
            .err(&["OBJECT", "FREQ", "k"])
            .starts_with("ERR An LFU maxmemory policy is not selected"));
        h.set_config(|c| c.maxmemory_policy = MaxmemoryPolicy::AllkeysLfu);
        assert!(h
            .err(&["OBJECT", "IDLETIME", "k"])
            .starts_with("ERR An LFU maxmemory policy is selected, idle time not tracked."));
        assert_eq!(h.int(&["OBJECT", "FREQ", "k"]), 5);
        assert_eq!(h.ok(&["OBJECT", "FREQ", "nope"]), Reply::Null);
    }

    #[test]
    fn object_help_has_redis_header_and_footer() {
        let mut h = Harness::new();
        let Reply::Array(lines) = h.ok(&["object", "help"]) else {
            panic!("HELP replies an array");
        };
        assert_eq!(lines.len(), 15);
        assert_eq!(
            lines[0],
            Reply::simple("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(lines[1], Reply::simple("ENCODING <key>"));
        assert_eq!(lines[14], Reply::simple("    Prints this help."));
    }

    #[test]
    fn command_table_rows_match_redis() {
        let find = |n: &str| COMMANDS.iter().find(|c| c.name == n).unwrap();
        assert_eq!(find("rename").legacy_range(), (1, 2, 1, false));
        assert_eq!(find("del").legacy_range(), (1, -1, 1, false));
        assert_eq!(find("move").legacy_range(), (1, 1, 1, false));
        assert_eq!(find("scan").scope, Scope::All);
        assert_eq!(find("exists").scope, Scope::Keys);
        let unlink = find("unlink");
        assert!(unlink.has(FAST) && unlink.has(WRITE));
        assert_ne!(find("keys").acl_categories() & acl::DANGEROUS, 0);
    }
}

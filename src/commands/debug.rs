//! DEBUG and MEMORY: the introspection Redis's own test helpers lean on — DEBUG SLEEP,
//! SET-ACTIVE-EXPIRE, OBJECT, POPULATE, DIGEST, DIGEST-VALUE, PROTOCOL, LOG, CHANGE-REPL-ID —
//! and MEMORY USAGE. Subcommands that need machinery not built yet (RELOAD, LOADAOF, cluster
//! packet filters) answer Redis's unknown-subcommand error rather than pretending.

use super::context::ExecCtx;
use super::errors;
use super::spec::{flag::*, kflag, CmdResult, CommandSpec as C, KeySpec, Scope};
use crate::keyspace::{Entry, Value};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

const MEMORY_SUBCOMMANDS: &[C] = &[
    C::new(
        "help",
        2,
        LOADING | STALE,
        0,
        &[],
        "server",
        "4.0.0",
        memory_help,
    ),
    C::new(
        "usage",
        -3,
        READONLY,
        0,
        &[KeySpec::single(2, kflag::RO)],
        "server",
        "4.0.0",
        memory_usage,
    ),
];

pub const COMMANDS: &[C] = &[
    C::new(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        &[],
        "server",
        "1.0.0",
        debug,
    )
    .scope(Scope::All),
    C::new("memory", -2, 0, 0, &[], "server", "4.0.0", memory_container)
        .subcommands(MEMORY_SUBCOMMANDS),
];

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn syntax_error_for(args: &[Bytes]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        errors::clip(&args[1]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

fn debug(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let argc = args.len();
    match () {
        _ if eq(sub, "help") && argc == 2 => Ok(debug_help()),
        _ if eq(sub, "sleep") && argc == 3 => debug_sleep(&args[2]),
        _ if eq(sub, "set-active-expire") && argc == 3 => {
            let on = atoi(&args[2]) != 0;
            ctx.server.active_expire_enabled.store(on, Relaxed);
            Ok(Reply::OK)
        }
        _ if eq(sub, "log") && argc == 3 => {
            crate::log_at!(Warning, "DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            Ok(Reply::OK)
        }
        _ if eq(sub, "change-repl-id") && argc == 2 => {
            *ctx.server.replid.lock() = crate::server::random_hex_40();
            Ok(Reply::OK)
        }
        _ if eq(sub, "object") && argc == 3 => debug_object(ctx, &args[2]),
        _ if eq(sub, "populate") && (3..=5).contains(&argc) => debug_populate(ctx, args),
        _ if eq(sub, "digest") && argc == 2 => Ok(Reply::status(hex(&dataset_digest(ctx)))),
        _ if eq(sub, "digest-value") => {
            let db = ctx.db();
            let replies = args[2..]
                .iter()
                .map(|k| {
                    let d = ctx
                        .ks()
                        .peek(db, k)
                        .map_or([0u8; 20], |e| entry_digest(k, e));
                    Reply::status(hex(&d))
                })
                .collect();
            Ok(Reply::Array(replies))
        }
        _ if eq(sub, "protocol") && argc == 3 => debug_protocol(ctx, &args[2]),
        _ => Err(syntax_error_for(args)),
    }
}

/// C's `atoi`: leading digits with an optional sign, 0 when there are none.
fn atoi(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n: i64 = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            acc.wrapping_mul(10).wrapping_add((d - b'0') as i64)
        });
    if neg {
        -n
    } else {
        n
    }
}

fn debug_help() -> Reply {
    let lines = [
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANGE-REPL-ID",
        "    Give this server new replication ids (for replication tests only).",
        "DIGEST",
        "    Print a digest of the whole dataset (all zeros when it is empty).",
        "DIGEST-VALUE <key> [<key> ...]",
        "    Print a digest of each key's value.",
        "LOG <message>",
        "    Write <message> to the server log.",
        "OBJECT <key>",
        "    Show low level information about the key's value.",
        "POPULATE <count> [<prefix>] [<size>]",
        "    Create <count> string keys named <prefix>:<num> (default prefix 'key'),",
        "    with values 'value:<num>', padded or cut to <size> bytes when given.",
        "    Existing keys are left alone.",
        "PROTOCOL <type>",
        "    Reply with a sample of a RESP type: string|integer|double|bignum|null|array|",
        "    set|map|attrib|push|verbatim|true|false.",
        "SET-ACTIVE-EXPIRE <0|1>",
        "    Turn the active expire cycle off or on.",
        "SLEEP <seconds>",
        "    Stop the server for <seconds> (a decimal number).",
        "HELP",
        "    Prints this help.",
    ];
    Reply::Array(lines.iter().map(|l| Reply::status(l.to_string())).collect())
}

fn debug_sleep(arg: &[u8]) -> CmdResult {
    let secs = crate::util::parse_f64(arg)
        .unwrap_or(0.0)
        .clamp(0.0, 3600.0);
    // The handler holds every shard, so the whole keyspace waits, as it does in Redis.
    if secs > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
    Ok(Reply::OK)
}

/// Length of a string in Redis's RDB encoding (what DEBUG OBJECT calls serializedlength).
fn rdb_string_len(v: &crate::keyspace::StrValue) -> usize {
    let len_prefix = |n: usize| {
        if n < 64 {
            1
        } else if n < 16384 {
            2
        } else {
            5
        }
    };
    if let Some(i) = v.as_i64() {
        if i8::try_from(i).is_ok() {
            return 2;
        } else if i16::try_from(i).is_ok() {
            return 3;
        } else if i32::try_from(i).is_ok() {
            return 5;
        }
    }
    let n = v.len();
    len_prefix(n) + n
}

fn debug_object(ctx: &mut ExecCtx, key: &[u8]) -> CmdResult {
    let db = ctx.db();
    let now_lru = ctx.lru_now();
    let Some(e) = ctx.ks().peek(db, key) else {
        return Err(errors::NO_SUCH_KEY);
    };
    let serialized = match &e.value {
        Value::Str(s) => rdb_string_len(s),
        other => other.heap_bytes(),
    };
    let addr = e as *const Entry as usize;
    let lru = e.lru_secs & ((1 << 24) - 1);
    let idle = now_lru.saturating_sub(e.lru_secs);
    Ok(Reply::status(format!(
        "Value at:{addr:#x} refcount:1 encoding:{} serializedlength:{serialized} lru:{lru} lru_seconds_idle:{idle}",
        e.value.encoding_name()
    )))
}

fn positive_long(arg: &[u8]) -> Result<u64, ErrorReply> {
    let n = crate::util::parse_int(arg).ok_or(errors::NOT_INTEGER)?;
    if n < 0 {
        return Err(ErrorReply::fixed(
            "ERR value is out of range, must be positive",
        ));
    }
    Ok(n as u64)
}

fn debug_populate(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let count = positive_long(&args[2])?;
    let prefix: &[u8] = args.get(3).map_or(b"key", |p| p);
    let size = match args.get(4) {
        Some(a) => positive_long(a)? as usize,
        None => 0,
    };
    let db = ctx.db();
    let now = ctx.now_ms;
    let lru = ctx.lru_now();
    for j in 0..count {
        let mut key = prefix.to_vec();
        key.extend_from_slice(format!(":{j}").as_bytes());
        if ctx.ks().lookup(db, &key, now).0.is_some() {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if size > 0 {
            value.resize(size, 0);
        }
        let s = if value.len() <= crate::keyspace::value::EMBSTR_SIZE_LIMIT {
            crate::keyspace::StrValue::embstr(&value)
        } else {
            crate::keyspace::StrValue::raw(value)
        };
        ctx.ks().insert(db, &key, Entry::new(Value::Str(s), lru));
    }
    Ok(Reply::OK)
}

fn debug_protocol(ctx: &mut ExecCtx, name: &[u8]) -> CmdResult {
    let resp3 = ctx.client.resp3;
    let ints = || (0..3).map(Reply::Int).collect::<Vec<_>>();
    Ok(match () {
        _ if eq(name, "string") => Reply::bulk_str("Hello World"),
        _ if eq(name, "integer") => Reply::Int(12345),
        // Redis's sample double is the literal 3.141, not pi.
        _ if eq(name, "double") => Reply::Double("3.141".parse().expect("a valid literal")),
        _ if eq(name, "bignum") => Reply::BigNumber("1234567999999999999999999999999999999".into()),
        _ if eq(name, "null") => Reply::Null,
        _ if eq(name, "array") => Reply::Array(ints()),
        _ if eq(name, "set") => Reply::Set(ints()),
        _ if eq(name, "map") => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        _ if eq(name, "attrib") => {
            let real = Reply::bulk_str("Some real reply following the attribute");
            if resp3 {
                Reply::Multi(vec![Reply::Attribute(vec![(
                    Reply::bulk_str("key-popularity"),
                    Reply::Array(vec![Reply::bulk_str("key:123"), Reply::Int(90)]),
                )]), real])
            } else {
                real
            }
        }
        _ if eq(name, "push") => {
            if !resp3 {
                return Err(ErrorReply::fixed("ERR RESP2 is not supported by this command"));
            }
            Reply::Multi(vec![
                Reply::Push(vec![Reply::bulk_str("server-cpu-usage"), Reply::Int(42)]),
                Reply::bulk_str("Some real reply following the push reply"),
            ])
        }
        _ if eq(name, "true") => Reply::Bool(true),
        _ if eq(name, "false") => Reply::Bool(false),
        _ if eq(name, "verbatim") => Reply::Verbatim("txt", Bytes::from_static(b"This is a verbatim\nstring")),
        _ => {
            return Err(ErrorReply::fixed(
                "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ))
        }
    })
}

// ---- digests ----

/// 64-bit FNV-1a, then a finalizer, with a seed: three seeds make the 160 bits a digest needs.
fn hash64(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed.wrapping_mul(0x9E3779B97F4A7C15);
    for p in parts {
        for &b in p.iter() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h
}

fn digest_of(parts: &[&[u8]]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..8].copy_from_slice(&hash64(1, parts).to_le_bytes());
    out[8..16].copy_from_slice(&hash64(2, parts).to_le_bytes());
    out[16..].copy_from_slice(&hash64(3, parts).to_le_bytes()[..4]);
    out
}

fn xor_into(acc: &mut [u8; 20], d: &[u8; 20]) {
    acc.iter_mut().zip(d).for_each(|(a, b)| *a ^= b);
}

/// A digest of one key's value and expiry; order-independent inside unordered types.
fn entry_digest(key: &[u8], e: &Entry) -> [u8; 20] {
    let expire = e.expire_at_ms.to_le_bytes();
    let ttl_mark: &[u8] = if e.expire_at_ms != 0 { &expire } else { b"" };
    match &e.value {
        Value::Str(s) => digest_of(&[b"string", key, &s.to_bytes(), ttl_mark]),
        Value::List(l) => {
            let text = format!("{l:?}");
            digest_of(&[b"list", key, text.as_bytes(), ttl_mark])
        }
        Value::Set(s) => {
            let mut acc = digest_of(&[b"set", key, ttl_mark]);
            let text = format!("{s:?}");
            xor_into(&mut acc, &digest_of(&[text.as_bytes()]));
            acc
        }
    }
}

fn dataset_digest(ctx: &mut ExecCtx) -> [u8; 20] {
    let mut acc = [0u8; 20];
    let now = ctx.now_ms;
    for db in 0..ctx.ks().databases() {
        let db_tag = (db as u64).to_le_bytes();
        ctx.ks().for_each_key_from(db, 0, now, |k, e| {
            let mut d = entry_digest(k, e);
            xor_into(&mut d, &digest_of(&[&db_tag]));
            xor_into(&mut acc, &d);
            true
        });
    }
    acc
}

fn hex(d: &[u8; 20]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- MEMORY ----

fn memory_container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        "memory",
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn memory_help(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let lines = [
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    Ok(Reply::Array(
        lines.iter().map(|l| Reply::status(l.to_string())).collect(),
    ))
}

/// Bytes a key costs: its node (64 bytes with the key inline when short), the key when it
/// does not fit inline, the value's own allocations, and its share of the slot table index.
fn memory_usage(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut j = 3;
    while j < args.len() {
        if eq(&args[j], "samples") && j + 1 < args.len() {
            let n = crate::util::parse_int(&args[j + 1]).ok_or(errors::NOT_INTEGER)?;
            if n < 0 {
                return Err(errors::SYNTAX);
            }
            j += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let db = ctx.db();
    let key = &args[2];
    let Some(e) = ctx.ks().peek(db, key) else {
        return Ok(Reply::Null);
    };
    let key_heap = if key.len() > 22 { key.len() } else { 0 };
    Ok(Reply::Int(
        (64 + 9 + key_heap + e.value.heap_bytes()) as i64,
    ))
}

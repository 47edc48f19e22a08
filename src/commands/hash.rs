//! The hash family: HSET, HSETNX, HMSET, HGET, HMGET, HDEL, HLEN, HSTRLEN, HEXISTS, HKEYS,
//! HVALS, HGETALL, HINCRBY, HINCRBYFLOAT, HRANDFIELD and HSCAN. They mirror Redis 7.0's
//! `t_hash.c`: same replies (a RESP3 map for HGETALL, pairs for HRANDFIELD WITHVALUES under
//! RESP3), same error texts, same order of checks, same dirty counts, and the same moments
//! at which a `listpack` hash turns into a `hashtable`. Empty hashes are deleted. Random
//! picks come from a SplitMix64 seeded per command.

use super::context::ExecCtx;
use super::context::Rng;
use super::errors;
use super::keys::parse_cursor;
use super::spec::{acl, flag::*, kflag, CmdResult, CommandSpec as C, KeySpec};
use super::string::long_double;
use crate::config::values::notify;
use crate::keyspace::hash::{Hash, Limits};
use crate::keyspace::{Entry, Value};
use crate::resp::{ErrorReply, Reply};
use crate::util::glob_match;
use bytes::Bytes;

const HASH: u32 = acl::HASH;
const ORDER: &[&str] = &["nondeterministic_output_order"];
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

const KEY_RO: &[KeySpec] = &[KeySpec::single(1, kflag::RO)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)];
const KEY_RW_INSERT: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::INSERT)];
const KEY_RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::DELETE)];
const KEY_RW_ACCESS_UPDATE: &[KeySpec] = &[KeySpec::single(
    1,
    kflag::RW | kflag::ACCESS | kflag::UPDATE,
)];

const fn row(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: &'static [KeySpec],
    since: &'static str,
    handler: super::spec::Handler,
) -> C {
    C::new(name, arity, flags, HASH, keys, "hash", since, handler)
}

pub const COMMANDS: &[C] = &[
    row(
        "hset",
        -4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        KEY_RW_UPDATE,
        "2.0.0",
        hset,
    ),
    row(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        KEY_RW_INSERT,
        "2.0.0",
        hsetnx,
    ),
    row(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        KEY_RW_UPDATE,
        "2.0.0",
        hset,
    ),
    row("hget", 3, READONLY | FAST, KEY_RO_ACCESS, "2.0.0", hget),
    row("hmget", -3, READONLY | FAST, KEY_RO_ACCESS, "2.0.0", hmget),
    row("hdel", -3, WRITE | FAST, KEY_RW_DELETE, "2.0.0", hdel),
    row("hlen", 2, READONLY | FAST, KEY_RO, "2.0.0", hlen),
    row("hstrlen", 3, READONLY | FAST, KEY_RO, "3.2.0", hstrlen),
    row("hexists", 3, READONLY | FAST, KEY_RO, "2.0.0", hexists),
    row("hkeys", 2, READONLY, KEY_RO_ACCESS, "2.0.0", hkeys).tips(ORDER),
    row("hvals", 2, READONLY, KEY_RO_ACCESS, "2.0.0", hvals).tips(ORDER),
    row("hgetall", 2, READONLY, KEY_RO_ACCESS, "2.0.0", hgetall).tips(ORDER),
    row(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        KEY_RW_ACCESS_UPDATE,
        "2.0.0",
        hincrby,
    ),
    row(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        KEY_RW_ACCESS_UPDATE,
        "2.6.0",
        hincrbyfloat,
    ),
    row(
        "hrandfield",
        -2,
        READONLY,
        KEY_RO_ACCESS,
        "6.2.0",
        hrandfield,
    )
    .tips(NONDETERMINISTIC),
    row("hscan", -3, READONLY, KEY_RO_ACCESS, "2.8.0", hscan).tips(NONDETERMINISTIC),
];

/// Reply texts of HRANDFIELD's range checks on its count.
const HRANDFIELD_COUNT_RANGE: ErrorReply = ErrorReply::fixed(
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
);
const HRANDFIELD_WITHVALUES_RANGE: ErrorReply = ErrorReply::fixed("ERR value is out of range");

/// Redis would stream a repeated-pick HRANDFIELD of any length; we build replies in memory,
/// so an absurd negative count is refused instead of exhausting memory.
const MAX_REPEATED_PICKS: u64 = 1 << 28;

/// Redis collects every field and drops random ones when the sample is a large share of the
/// hash, and draws distinct random fields otherwise.
const HRANDFIELD_SUB_STRATEGY_MUL: u64 = 3;

fn as_hash(entry: Option<&mut Entry>) -> Result<Option<&mut Hash>, ErrorReply> {
    match entry {
        None => Ok(None),
        Some(Entry {
            value: Value::Hash(h),
            ..
        }) => Ok(Some(h)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Redis's `lookupKeyRead` + `checkType(OBJ_HASH)`.
fn read_hash<'c>(ctx: &'c mut ExecCtx<'_>, key: &[u8]) -> Result<Option<&'c mut Hash>, ErrorReply> {
    as_hash(ctx.lookup_read(key))
}

/// Redis's `lookupKeyWrite` + `checkType(OBJ_HASH)`.
fn write_hash<'c>(
    ctx: &'c mut ExecCtx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut Hash>, ErrorReply> {
    as_hash(ctx.lookup_write(key))
}

fn limits(ctx: &ExecCtx) -> Limits {
    let config = ctx.server.config();
    Limits {
        max_entries: config.hash_max_listpack_entries,
        max_value: config.hash_max_listpack_value,
    }
}

/// Redis's `hashTypeLookupWriteOrCreate` followed by `change`: a missing key gets a new
/// `listpack` hash, stored only if the change left something in it.
fn update_or_create<R>(
    ctx: &mut ExecCtx,
    key: &[u8],
    change: impl FnOnce(&mut Hash, Limits) -> Result<R, ErrorReply>,
) -> Result<R, ErrorReply> {
    let limits = limits(ctx);
    if let Some(hash) = write_hash(ctx, key)? {
        return change(hash, limits);
    }
    let mut hash = Hash::new();
    let result = change(&mut hash, limits)?;
    if !hash.is_empty() {
        ctx.set_key(key, Value::Hash(hash), false);
    }
    Ok(result)
}

fn bulk(b: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(b))
}

/// HSET key field value [field value ...] and the deprecated HMSET, which only differs in
/// its reply. Every pair counts as a change, new or not.
fn hset(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let is_hset = args[0]
        .get(1)
        .is_some_and(|c| c.eq_ignore_ascii_case(&b's'));
    if args.len() % 2 == 1 {
        return Err(errors::wrong_arity(if is_hset { "hset" } else { "hmset" }));
    }
    let created = update_or_create(ctx, &args[1], |hash, limits| {
        hash.convert_for(args[2..].iter().map(|a| &a[..]), limits);
        Ok(args[2..]
            .chunks_exact(2)
            .filter(|pair| hash.set(&pair[0], &pair[1], limits))
            .count())
    })?;
    ctx.dirty((args.len() as u64 - 2) / 2);
    ctx.notify(notify::HASH, "hset", &args[1]);
    Ok(if is_hset {
        Reply::Int(created as i64)
    } else {
        Reply::OK
    })
}

fn hsetnx(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (field, value) = (&args[2][..], &args[3][..]);
    let added = update_or_create(ctx, &args[1], |hash, limits| {
        if hash.contains(field) {
            return Ok(false);
        }
        hash.convert_for([field, value], limits);
        hash.set(field, value, limits);
        Ok(true)
    })?;
    if added {
        ctx.dirty(1);
        ctx.notify(notify::HASH, "hset", &args[1]);
    }
    Ok(Reply::Int(added as i64))
}

fn hget(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let value = read_hash(ctx, &args[1])?.and_then(|h| h.get(&args[2]).map(bulk));
    Ok(value.unwrap_or(Reply::Null))
}

fn hmget(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    let replies = args[2..]
        .iter()
        .map(|f| {
            hash.as_ref()
                .and_then(|h| h.get(f))
                .map_or(Reply::Null, bulk)
        })
        .collect();
    Ok(Reply::Array(replies))
}

fn hdel(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(hash) = write_hash(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let mut deleted = 0;
    for field in &args[2..] {
        if hash.remove(field) {
            deleted += 1;
            if hash.is_empty() {
                break;
            }
        }
    }
    let emptied = hash.is_empty();
    if deleted > 0 {
        ctx.notify(notify::HASH, "hdel", &args[1]);
    }
    if emptied {
        ctx.delete_emptied(&args[1]);
    }
    ctx.dirty(deleted);
    Ok(Reply::Int(deleted as i64))
}

fn hlen(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let len = read_hash(ctx, &args[1])?.map_or(0, |h| h.len());
    Ok(Reply::Int(len as i64))
}

fn hstrlen(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let len = read_hash(ctx, &args[1])?
        .and_then(|h| h.get(&args[2]).map(|v| v.len()))
        .unwrap_or(0);
    Ok(Reply::Int(len as i64))
}

fn hexists(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let found = read_hash(ctx, &args[1])?.is_some_and(|h| h.contains(&args[2]));
    Ok(Reply::Int(found as i64))
}

fn hkeys(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    let keys = hash.map_or_else(Vec::new, |h| h.iter().map(|(f, _)| bulk(f)).collect());
    Ok(Reply::Array(keys))
}

fn hvals(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    let vals = hash.map_or_else(Vec::new, |h| h.iter().map(|(_, v)| bulk(v)).collect());
    Ok(Reply::Array(vals))
}

fn hgetall(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let hash = read_hash(ctx, &args[1])?;
    let pairs = hash.map_or_else(Vec::new, |h| {
        h.iter().map(|(f, v)| (bulk(f), bulk(v))).collect()
    });
    Ok(Reply::Map(pairs))
}

fn hincrby(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let incr = ctx.int_arg(&args[3])?;
    let field = &args[2][..];
    let value = update_or_create(ctx, &args[1], |hash, limits| {
        let old = match hash.get(field) {
            Some(v) => crate::util::parse_int(v).ok_or(errors::HASH_NOT_INTEGER)?,
            None => 0,
        };
        let new = old.checked_add(incr).ok_or(errors::INCR_OVERFLOW)?;
        hash.set(field, crate::util::format_i64(new).as_bytes(), limits);
        Ok(new)
    })?;
    ctx.dirty(1);
    ctx.notify(notify::HASH, "hincrby", &args[1]);
    Ok(Reply::Int(value))
}

fn hincrbyfloat(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let incr = long_double::parse(&args[3]).ok_or(errors::NOT_FLOAT)?;
    if incr == long_double::Ld::Inf {
        return Err(errors::VALUE_NAN_OR_INF);
    }
    let field = &args[2][..];
    let text = update_or_create(ctx, &args[1], |hash, limits| {
        let old = match hash.get(field) {
            Some(v) => long_double::parse(v).ok_or(errors::HASH_NOT_FLOAT)?,
            None => long_double::Ld::ZERO,
        };
        let sum = long_double::add(old, incr).ok_or(errors::INCRBYFLOAT_NAN_OR_INF)?;
        let text = long_double::format_human(sum);
        hash.set(field, text.as_bytes(), limits);
        Ok(text)
    })?;
    ctx.dirty(1);
    ctx.notify(notify::HASH, "hincrbyfloat", &args[1]);
    // Replicas get the result, not the float arithmetic.
    ctx.propagate_as(vec![
        Bytes::from_static(b"HSET"),
        args[1].clone(),
        args[2].clone(),
        Bytes::from(text.clone()),
    ]);
    Ok(Reply::bulk_str(&text))
}

/// HRANDFIELD key [count [WITHVALUES]].
fn hrandfield(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() >= 3 {
        let count = ctx.int_arg(&args[2])?;
        if count == i64::MIN {
            return Err(HRANDFIELD_COUNT_RANGE);
        }
        let with_values = match args.len() {
            3 => false,
            4 if args[3].eq_ignore_ascii_case(b"withvalues") => true,
            _ => return Err(errors::SYNTAX),
        };
        if with_values && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
            return Err(HRANDFIELD_WITHVALUES_RANGE);
        }
        return hrandfield_count(ctx, &args[1], count, with_values);
    }
    let mut rng = Rng::for_command(ctx);
    let Some(hash) = read_hash(ctx, &args[1])? else {
        return Ok(Reply::Null);
    };
    let (field, _) = hash.random(&mut |n| rng.below(n)).expect("not empty");
    Ok(bulk(field))
}

fn hrandfield_count(ctx: &mut ExecCtx, key: &[u8], count: i64, with_values: bool) -> CmdResult {
    let (count, distinct) = (count.unsigned_abs(), count >= 0);
    let resp3 = ctx.client.resp3;
    let mut rng = Rng::for_command(ctx);
    let Some(hash) = read_hash(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let mut pick = |n| rng.below(n);
    let mut out = Vec::new();
    let mut push = |field: &[u8], value: &[u8]| match (with_values, resp3) {
        (false, _) => out.push(bulk(field)),
        (true, false) => out.extend([bulk(field), bulk(value)]),
        (true, true) => out.push(Reply::Array(vec![bulk(field), bulk(value)])),
    };
    let size = hash.len() as u64;
    if !distinct || count == 1 {
        if count > MAX_REPEATED_PICKS {
            return Err(HRANDFIELD_COUNT_RANGE);
        }
        for _ in 0..count {
            let (f, v) = hash.random(&mut pick).expect("not empty");
            push(f, v);
        }
    } else if count >= size {
        for (f, v) in hash.iter() {
            push(f, v);
        }
    } else if count * HRANDFIELD_SUB_STRATEGY_MUL > size {
        // A partial Fisher-Yates shuffle: the first `count` are a uniform sample.
        let mut pairs: Vec<(&[u8], &[u8])> = hash.iter().collect();
        let count = count as usize;
        for i in 0..count {
            let j = i + pick(pairs.len() - i);
            pairs.swap(i, j);
        }
        for (f, v) in &pairs[..count] {
            push(f, v);
        }
    } else {
        let mut chosen = hashbrown::HashSet::with_capacity(count as usize);
        while (chosen.len() as u64) < count {
            let (f, v) = hash.random(&mut pick).expect("not empty");
            if chosen.insert(f) {
                push(f, v);
            }
        }
    }
    Ok(Reply::Array(out))
}

/// HSCAN key cursor [MATCH pattern] [COUNT count]. A `listpack` is returned whole with
/// cursor 0, as Redis does; a `hashtable` is walked bucket by bucket with Redis's cursor
/// until COUNT elements (fields and values both count) were gathered or ten times COUNT
/// buckets were visited. MATCH filters on fields.
fn hscan(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let empty_scan = || Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(Vec::new())]);
    if read_hash(ctx, &args[1])?.is_none() {
        return Ok(empty_scan());
    }
    let mut count = 10usize;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if args[i].eq_ignore_ascii_case(b"count") && has_value {
            let c = ctx.int_arg(&args[i + 1])?;
            if c < 1 {
                return Err(errors::SYNTAX);
            }
            count = usize::try_from(c).unwrap_or(usize::MAX);
        } else if args[i].eq_ignore_ascii_case(b"match") && has_value {
            let p = &args[i + 1][..];
            pattern = (p != b"*").then_some(p);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    let db = ctx.db();
    let Some(Entry {
        value: Value::Hash(hash),
        ..
    }) = ctx.ks().peek(db, &args[1])
    else {
        return Ok(empty_scan());
    };
    let mut found: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut next = cursor;
    let mut budget = count.saturating_mul(10).saturating_add(1);
    loop {
        next = hash.scan_step(next, &mut |f, v| found.push((f.to_vec(), v.to_vec())));
        budget = budget.saturating_sub(1);
        if next == 0 || budget == 0 || found.len().saturating_mul(2) >= count {
            break;
        }
    }
    let items = found
        .iter()
        .filter(|(f, _)| pattern.is_none_or(|p| glob_match(p, f, false)))
        .flat_map(|(f, v)| [bulk(f), bulk(v)])
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk_str(&next.to_string()),
        Reply::Array(items),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs hash commands against a fresh server the way dispatch would (arity first), with
    /// every shard locked.
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
                .find(|c| c.name == name)
                .expect("a hash command");
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
                other => panic!("{argv:?} replied {other:?}, expected an integer"),
            }
        }

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}, expected an error"),
            }
        }

        fn hash(&mut self, key: &str) -> Option<Hash> {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(0, key.as_bytes()).map(|e| match &e.value {
                Value::Hash(h) => h.clone(),
                other => panic!("{key} holds a {}", other.type_name()),
            })
        }

        fn encoding(&mut self, key: &str) -> &'static str {
            self.hash(key).expect("key exists").encoding_name()
        }

        fn set_string(&mut self, key: &str) {
            let entry = Entry::new(Value::Str(crate::keyspace::StrValue::from_bytes(b"x")), 0);
            self.server
                .keyspace
                .lock_all()
                .insert(0, key.as_bytes(), entry);
        }

        fn set_limits(&self, entries: usize, value: usize) {
            let mut config = (**self.server.config()).clone();
            config.hash_max_listpack_entries = entries;
            config.hash_max_listpack_value = value;
            self.server.config.store(std::sync::Arc::new(config));
        }
    }

    fn b(s: &str) -> Reply {
        Reply::bulk_str(s)
    }

    fn strings(reply: Reply) -> Vec<String> {
        let Reply::Array(items) = reply else {
            panic!("expected an array, got {reply:?}");
        };
        items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("expected bulk strings, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn hset_hmset_hsetnx_replies_and_dirty() {
        let mut h = Harness::new();
        assert_eq!(h.int(&["HSET", "h", "a", "1", "b", "2"]), 2);
        assert_eq!(h.int(&["HSET", "h", "a", "3", "c", "4"]), 1);
        assert_eq!(h.ok(&["HMSET", "h", "d", "5"]), Reply::OK);
        assert_eq!(h.dirty, 5);
        assert_eq!(h.int(&["HSETNX", "h", "a", "x"]), 0);
        assert_eq!(h.int(&["HSETNX", "h", "e", "6"]), 1);
        assert_eq!(h.dirty, 6);
        assert_eq!(
            h.ok(&["HGETALL", "h"]),
            Reply::Map(vec![
                (b("a"), b("3")),
                (b("b"), b("2")),
                (b("c"), b("4")),
                (b("d"), b("5")),
                (b("e"), b("6")),
            ])
        );
        assert_eq!(
            h.err(&["HSET", "h", "a", "1", "b"]),
            "ERR wrong number of arguments for 'hset' command"
        );
        assert_eq!(
            h.err(&["hmset", "h", "a", "1", "b"]),
            "ERR wrong number of arguments for 'hmset' command"
        );
        assert_eq!(h.encoding("h"), "listpack");
    }

    #[test]
    fn reads_of_fields_and_missing_keys() {
        let mut h = Harness::new();
        h.int(&["HSET", "h", "f", "hello", "n", "-12"]);
        assert_eq!(h.ok(&["HGET", "h", "f"]), b("hello"));
        assert_eq!(h.ok(&["HGET", "h", "x"]), Reply::Null);
        assert_eq!(h.ok(&["HGET", "nokey", "x"]), Reply::Null);
        assert_eq!(
            h.ok(&["HMGET", "h", "n", "x"]),
            Reply::Array(vec![b("-12"), Reply::Null])
        );
        assert_eq!(
            h.ok(&["HMGET", "nokey", "n"]),
            Reply::Array(vec![Reply::Null])
        );
        assert_eq!(h.int(&["HLEN", "h"]), 2);
        assert_eq!(h.int(&["HSTRLEN", "h", "n"]), 3);
        assert_eq!(h.int(&["HSTRLEN", "h", "x"]), 0);
        assert_eq!(h.int(&["HEXISTS", "h", "f"]), 1);
        assert_eq!(h.int(&["HEXISTS", "nokey", "f"]), 0);
        assert_eq!(strings(h.ok(&["HKEYS", "h"])), vec!["f", "n"]);
        assert_eq!(strings(h.ok(&["HVALS", "h"])), vec!["hello", "-12"]);
        assert_eq!(h.ok(&["HGETALL", "nokey"]), Reply::Map(vec![]));
        assert_eq!(h.ok(&["HKEYS", "nokey"]), Reply::Array(vec![]));
    }

    #[test]
    fn hdel_deletes_the_emptied_key() {
        let mut h = Harness::new();
        h.int(&["HSET", "h", "a", "1", "b", "2"]);
        h.dirty = 0;
        assert_eq!(h.int(&["HDEL", "h", "a", "zz", "b", "a"]), 2);
        assert!(h.hash("h").is_none());
        assert_eq!(h.dirty, 2);
        assert_eq!(h.int(&["HDEL", "h", "a"]), 0);
    }

    #[test]
    fn encodings_follow_the_config() {
        let mut h = Harness::new();
        h.set_limits(2, 3);
        h.int(&["HSET", "h", "abc", "def"]);
        assert_eq!(h.encoding("h"), "listpack");
        h.int(&["HSET", "h", "b", "c"]);
        assert_eq!(h.encoding("h"), "listpack");
        h.int(&["HSET", "h", "x", "y"]);
        assert_eq!(h.encoding("h"), "hashtable");
        h.int(&["HSET", "long", "abcd", "1"]);
        assert_eq!(h.encoding("long"), "hashtable");
        h.int(&["HINCRBY", "inc", "n", "999"]);
        assert_eq!(h.encoding("inc"), "listpack");
        h.int(&["HINCRBY", "inc", "n", "1"]);
        assert_eq!(h.encoding("inc"), "hashtable");
        // HSETNX on an existing field converts nothing.
        h.int(&["HSET", "nx", "a", "b"]);
        assert_eq!(h.int(&["HSETNX", "nx", "a", "longvalue"]), 0);
        assert_eq!(h.encoding("nx"), "listpack");
    }

    #[test]
    fn hincrby_and_hincrbyfloat() {
        let mut h = Harness::new();
        assert_eq!(h.int(&["HINCRBY", "h", "n", "5"]), 5);
        assert_eq!(h.int(&["HINCRBY", "h", "n", "-7"]), -2);
        h.int(&[
            "HSET",
            "h",
            "s",
            "abc",
            "max",
            "9223372036854775807",
            "f",
            "1.5",
        ]);
        assert_eq!(
            h.err(&["HINCRBY", "h", "s", "1"]),
            "ERR hash value is not an integer"
        );
        assert_eq!(
            h.err(&["HINCRBY", "h", "max", "1"]),
            "ERR increment or decrement would overflow"
        );
        assert_eq!(
            h.err(&["HINCRBY", "h", "n", "x"]),
            errors::NOT_INTEGER.text()
        );
        assert_eq!(h.ok(&["HINCRBYFLOAT", "h", "f", "0.1"]), b("1.6"));
        assert_eq!(h.ok(&["HINCRBYFLOAT", "h", "n", "2"]), b("0"));
        assert_eq!(h.ok(&["HINCRBYFLOAT", "h", "new", "1e3"]), b("1000"));
        assert_eq!(
            h.err(&["HINCRBYFLOAT", "h", "s", "1"]),
            "ERR hash value is not a float"
        );
        assert_eq!(
            h.err(&["HINCRBYFLOAT", "h", "f", "inf"]),
            "ERR value is NaN or Infinity"
        );
        assert_eq!(
            h.err(&["HINCRBYFLOAT", "h", "f", "nan"]),
            "ERR value is not a valid float"
        );
        h.int(&["HSET", "h", "i", "inf"]);
        assert_eq!(
            h.err(&["HINCRBYFLOAT", "h", "i", "1"]),
            "ERR increment would produce NaN or Infinity"
        );
        assert!(h.hash("nokey").is_none());
        assert_eq!(
            h.err(&["HINCRBYFLOAT", "nokey", "f", "x"]),
            "ERR value is not a valid float"
        );
        assert!(h.hash("nokey").is_none());
    }

    #[test]
    fn non_hash_keys_are_wrongtype() {
        let mut h = Harness::new();
        h.set_string("str");
        let wrongtype = errors::WRONGTYPE.text().to_string();
        for argv in [
            &["HSET", "str", "a", "b"][..],
            &["HSETNX", "str", "a", "b"],
            &["HGET", "str", "a"],
            &["HMGET", "str", "a"],
            &["HDEL", "str", "a"],
            &["HLEN", "str"],
            &["HGETALL", "str"],
            &["HINCRBY", "str", "a", "1"],
            &["HINCRBYFLOAT", "str", "a", "1"],
            &["HRANDFIELD", "str", "1"],
            &["HSCAN", "str", "0"],
        ] {
            assert_eq!(h.err(argv), wrongtype, "{argv:?}");
        }
    }

    #[test]
    fn hrandfield_shapes_and_counts() {
        let mut h = Harness::new();
        let fields: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
        let mut argv = vec!["HSET", "h"];
        for f in &fields {
            argv.extend([f.as_str(), "v"]);
        }
        h.int(&argv);
        for count in ["1", "5", "12", "29"] {
            let mut picks = strings(h.ok(&["HRANDFIELD", "h", count]));
            picks.sort();
            picks.dedup();
            assert_eq!(picks.len(), count.parse::<usize>().unwrap());
        }
        assert_eq!(strings(h.ok(&["HRANDFIELD", "h", "100"])), fields);
        assert_eq!(strings(h.ok(&["HRANDFIELD", "h", "-100"])).len(), 100);
        let flat = strings(h.ok(&["HRANDFIELD", "h", "-3", "WITHVALUES"]));
        assert_eq!(flat.len(), 6);
        h.client.resp3 = true;
        let Reply::Array(pairs) = h.ok(&["HRANDFIELD", "h", "4", "WITHVALUES"]) else {
            panic!()
        };
        assert_eq!(pairs.len(), 4);
        assert!(pairs
            .iter()
            .all(|p| matches!(p, Reply::Array(kv) if kv.len() == 2)));
        assert_eq!(h.ok(&["HRANDFIELD", "nokey"]), Reply::Null);
        assert_eq!(h.ok(&["HRANDFIELD", "nokey", "3"]), Reply::Array(vec![]));
        assert_eq!(
            h.err(&["HRANDFIELD", "h", "-9223372036854775808"]),
            HRANDFIELD_COUNT_RANGE.text()
        );
        assert_eq!(
            h.err(&["HRANDFIELD", "h", "9223372036854775807", "WITHVALUES"]),
            "ERR value is out of range"
        );
        assert_eq!(
            h.err(&["HRANDFIELD", "h", "1", "WITHVALUE"]),
            "ERR syntax error"
        );
    }

    fn scan_all(h: &mut Harness, key: &str, count: &str) -> (Vec<String>, usize) {
        let (mut cursor, mut calls, mut seen) = ("0".to_string(), 0, Vec::new());
        loop {
            let Reply::Array(parts) = h.ok(&["HSCAN", key, &cursor, "COUNT", count]) else {
                panic!("HSCAN replies an array");
            };
            let [Reply::Bulk(next), items] = &parts[..] else {
                panic!("HSCAN replies a cursor and items");
            };
            let items = strings(items.clone());
            seen.extend(items.chunks(2).map(|kv| format!("{}={}", kv[0], kv[1])));
            calls += 1;
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        (seen, calls)
    }

    #[test]
    fn hscan_returns_listpacks_whole_and_walks_hashtables() {
        let mut h = Harness::new();
        h.int(&["HSET", "lp", "a", "1", "b", "2"]);
        assert_eq!(
            scan_all(&mut h, "lp", "1"),
            (vec!["a=1".to_string(), "b=2".to_string()], 1)
        );
        let mut argv = vec!["HSET", "big"];
        let fields: Vec<String> = (0..600).map(|i| format!("f{i}")).collect();
        for f in &fields {
            argv.extend([f.as_str(), "v"]);
        }
        h.int(&argv);
        assert_eq!(h.encoding("big"), "hashtable");
        let (seen, calls) = scan_all(&mut h, "big", "10");
        assert_eq!(seen.len(), 600);
        assert!(calls > 10, "{calls} calls");
        let Reply::Array(parts) = h.ok(&["HSCAN", "big", "0", "MATCH", "f1?", "COUNT", "10000"])
        else {
            panic!()
        };
        assert_eq!(strings(parts[1].clone()).len(), 20);
        assert_eq!(
            h.err(&["HSCAN", "big", "0", "COUNT", "0"]),
            "ERR syntax error"
        );
        assert_eq!(h.err(&["HSCAN", "big", "x"]), "ERR invalid cursor");
    }

    #[test]
    fn command_table_rows_match_redis() {
        let find = |n: &str| COMMANDS.iter().find(|c| c.name == n).unwrap();
        assert_eq!(find("hset").legacy_range(), (1, 1, 1, false));
        assert_eq!(
            find("hset").acl_categories(),
            acl::HASH | acl::WRITE | acl::FAST
        );
        assert_eq!(
            find("hgetall").acl_categories(),
            acl::HASH | acl::READ | acl::SLOW
        );
        assert_eq!(COMMANDS.len(), 16);
    }
}

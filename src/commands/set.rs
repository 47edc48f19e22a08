//! The set family: SADD, SREM, SCARD, SISMEMBER, SMISMEMBER, SMEMBERS, SRANDMEMBER, SPOP,
//! SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE and SSCAN.
//! They mirror Redis 7.0's `t_set.c`: same replies (RESP3 sets where Redis sends sets), same
//! error texts, same order of checks, same dirty counts, and the same choices that decide the
//! encoding of a stored result (SDIFFSTORE's two algorithms can leave different encodings).
//! Empty sets are deleted. Random picks come from a SplitMix64 seeded per command.

use super::context::ExecCtx;
use super::context::Rng;
use super::errors;
use super::keys::parse_cursor;
use super::pubsub::ReplyCut;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec,
};
use crate::config::values::notify;
use crate::keyspace::{set::Set, Entry, Value};
use crate::resp::{ErrorReply, Reply};
use crate::util::glob_match;
use bytes::Bytes;

const SET: u32 = acl::SET;
const ORDER: &[&str] = &["nondeterministic_output_order"];
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

const KEY_RO: &[KeySpec] = &[KeySpec::single(1, kflag::RO)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_RW_INSERT: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::INSERT)];
const KEY_RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::DELETE)];
const KEY_RW_ACCESS_DELETE: &[KeySpec] = &[KeySpec::single(
    1,
    kflag::RW | kflag::ACCESS | kflag::DELETE,
)];
const SMOVE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RW | kflag::ACCESS | kflag::DELETE),
    KeySpec::single(2, kflag::RW | kflag::INSERT),
];
const ALL_KEYS_RO_ACCESS: &[KeySpec] = &[KeySpec::range(1, -1, 1, kflag::RO | kflag::ACCESS)];
const SINTERCARD_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kflag::RO | kflag::ACCESS,
    begin: BeginSearch::Index(1),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const SINTERSTORE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RW | kflag::UPDATE),
    KeySpec::range(2, -1, 1, kflag::RO | kflag::ACCESS),
];
const STORE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::OW | kflag::UPDATE),
    KeySpec::range(2, -1, 1, kflag::RO | kflag::ACCESS),
];

pub const COMMANDS: &[C] = &[
    C::new(
        "sadd",
        -3,
        WRITE | DENYOOM | FAST,
        SET,
        KEY_RW_INSERT,
        "set",
        "1.0.0",
        sadd,
    ),
    C::new(
        "srem",
        -3,
        WRITE | FAST,
        SET,
        KEY_RW_DELETE,
        "set",
        "1.0.0",
        srem,
    ),
    C::new(
        "scard",
        2,
        READONLY | FAST,
        SET,
        KEY_RO,
        "set",
        "1.0.0",
        scard,
    ),
    C::new(
        "sismember",
        3,
        READONLY | FAST,
        SET,
        KEY_RO,
        "set",
        "1.0.0",
        sismember,
    ),
    C::new(
        "smismember",
        -3,
        READONLY | FAST,
        SET,
        KEY_RO_ACCESS,
        "set",
        "6.2.0",
        smismember,
    ),
    C::new(
        "smembers",
        2,
        READONLY,
        SET,
        KEY_RO_ACCESS,
        "set",
        "1.0.0",
        smembers,
    )
    .tips(ORDER),
    C::new(
        "srandmember",
        -2,
        READONLY,
        SET,
        KEY_RO_ACCESS,
        "set",
        "1.0.0",
        srandmember,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "spop",
        -2,
        WRITE | FAST,
        SET,
        KEY_RW_ACCESS_DELETE,
        "set",
        "1.0.0",
        spop,
    )
    .tips(NONDETERMINISTIC),
    C::new(
        "smove",
        4,
        WRITE | FAST,
        SET,
        SMOVE_KEYS,
        "set",
        "1.0.0",
        smove,
    ),
    C::new(
        "sinter",
        -2,
        READONLY,
        SET,
        ALL_KEYS_RO_ACCESS,
        "set",
        "1.0.0",
        sinter,
    )
    .tips(ORDER),
    C::new(
        "sintercard",
        -3,
        READONLY,
        SET,
        SINTERCARD_KEYS,
        "set",
        "7.0.0",
        sintercard,
    ),
    C::new(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        SET,
        SINTERSTORE_KEYS,
        "set",
        "1.0.0",
        sinterstore,
    ),
    C::new(
        "sunion",
        -2,
        READONLY,
        SET,
        ALL_KEYS_RO_ACCESS,
        "set",
        "1.0.0",
        sunion,
    )
    .tips(ORDER),
    C::new(
        "sunionstore",
        -3,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        SET,
        STORE_KEYS,
        "set",
        "1.0.0",
        sunionstore,
    ),
    C::new(
        "sdiff",
        -2,
        READONLY,
        SET,
        ALL_KEYS_RO_ACCESS,
        "set",
        "1.0.0",
        sdiff,
    )
    .tips(ORDER),
    C::new(
        "sdiffstore",
        -3,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        SET,
        STORE_KEYS,
        "set",
        "1.0.0",
        sdiffstore,
    ),
    C::new(
        "sscan",
        -3,
        READONLY,
        SET,
        KEY_RO_ACCESS,
        "set",
        "2.8.0",
        sscan,
    )
    .tips(NONDETERMINISTIC),
];

/// Reply texts of Redis's range checks on counts.
const SPOP_COUNT_RANGE: ErrorReply =
    ErrorReply::fixed("ERR value is out of range, must be positive");
const SRANDMEMBER_COUNT_RANGE: ErrorReply = ErrorReply::fixed(
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
);
const SINTERCARD_TOO_MANY_KEYS: ErrorReply =
    ErrorReply::fixed("ERR Number of keys can't be greater than number of args");
const SINTERCARD_NEGATIVE_LIMIT: ErrorReply = ErrorReply::fixed("ERR LIMIT can't be negative");

/// Redis would stream a repeated-pick SRANDMEMBER of any length; we build replies in memory,
/// so an absurd negative count is refused instead of exhausting memory.
const MAX_REPEATED_PICKS: u64 = 1 << 28;

/// What a lookup found under a key, without holding on to it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Found {
    Missing,
    Set(usize),
    Other,
}

fn found(entry: Option<&mut Entry>) -> Found {
    match entry {
        None => Found::Missing,
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Found::Set(s.len()),
        Some(_) => Found::Other,
    }
}

fn as_set(entry: Option<&mut Entry>) -> Result<Option<&mut Set>, ErrorReply> {
    match entry {
        None => Ok(None),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Redis's `lookupKeyRead` + `checkType(OBJ_SET)`.
fn read_set<'c>(ctx: &'c mut ExecCtx<'_>, key: &[u8]) -> Result<Option<&'c mut Set>, ErrorReply> {
    as_set(ctx.lookup_read(key))
}

/// Redis's `lookupKeyWrite` + `checkType(OBJ_SET)`.
fn write_set<'c>(ctx: &'c mut ExecCtx<'_>, key: &[u8]) -> Result<Option<&'c mut Set>, ErrorReply> {
    as_set(ctx.lookup_write(key))
}

/// A set already looked up (and type-checked) by this command, read again without
/// statistics or expiry.
fn peek_set<'c>(ctx: &'c mut ExecCtx<'_>, key: &[u8]) -> Option<&'c Set> {
    let db = ctx.db();
    match ctx.ks().peek(db, key) {
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Some(s),
        _ => None,
    }
}

fn max_intset_entries(ctx: &ExecCtx) -> usize {
    ctx.server.config().set_max_intset_entries
}

fn bulk(member: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(member))
}

fn all_members(set: &Set) -> Vec<Reply> {
    set.iter().map(|m| bulk(&m)).collect()
}

fn sadd(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let max = max_intset_entries(ctx);
    let add_all = |set: &mut Set| args[2..].iter().filter(|m| set.insert(m, max)).count();
    let added = match write_set(ctx, &args[1])? {
        Some(set) => add_all(set),
        None => {
            let mut set = Set::new_for(&args[2]);
            let added = add_all(&mut set);
            ctx.set_key(&args[1], Value::Set(Box::new(set)), false);
            added
        }
    };
    ctx.dirty(added as u64);
    if added > 0 {
        ctx.notify(notify::SET, "sadd", &args[1]);
    }
    Ok(Reply::Int(added as i64))
}

fn srem(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(set) = write_set(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let mut deleted = 0;
    for member in &args[2..] {
        if set.remove(member) {
            deleted += 1;
            if set.is_empty() {
                break;
            }
        }
    }
    let emptied = set.is_empty();
    if deleted > 0 {
        ctx.notify(notify::SET, "srem", &args[1]);
    }
    if emptied {
        ctx.delete_emptied(&args[1]);
    }
    ctx.dirty(deleted);
    Ok(Reply::Int(deleted as i64))
}

fn scard(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let len = read_set(ctx, &args[1])?.map_or(0, |s| s.len());
    Ok(Reply::Int(len as i64))
}

fn sismember(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let found = read_set(ctx, &args[1])?.is_some_and(|s| s.contains(&args[2]));
    Ok(Reply::Int(found as i64))
}

fn smismember(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let set = read_set(ctx, &args[1])?;
    let replies = args[2..]
        .iter()
        .map(|m| Reply::Int(set.as_ref().is_some_and(|s| s.contains(m)) as i64))
        .collect();
    Ok(Reply::Array(replies))
}

/// SMOVE source destination member. Redis looks both keys up before checking either, and
/// only checks types once the source exists.
fn smove(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let src_found = found(ctx.lookup_write(src));
    let dst_found = found(ctx.lookup_write(dst));
    if src_found == Found::Missing {
        return Ok(Reply::Int(0));
    }
    if src_found == Found::Other || dst_found == Found::Other {
        return Err(errors::WRONGTYPE);
    }
    let set = write_set(ctx, src)?.expect("source checked above");
    if src == dst {
        return Ok(Reply::Int(set.contains(member) as i64));
    }
    if !set.remove(member) {
        return Ok(Reply::Int(0));
    }
    let emptied = set.is_empty();
    ctx.notify(notify::SET, "srem", src);
    if emptied {
        ctx.delete_emptied(src);
    }
    ctx.dirty(1);
    let max = max_intset_entries(ctx);
    let added = match write_set(ctx, dst)? {
        Some(set) => set.insert(member, max),
        None => {
            let mut set = Set::new_for(member);
            set.insert(member, max);
            ctx.set_key(dst, Value::Set(Box::new(set)), false);
            true
        }
    };
    if added {
        ctx.dirty(1);
        ctx.notify(notify::SET, "sadd", dst);
    } else {
        // Only the source changed: a WATCH on the destination stays valid.
        ctx.effects.unchanged_args |= 1 << 2;
    }
    Ok(Reply::Int(1))
}

fn spop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => spop_one(ctx, &args[1]),
        3 => spop_count(ctx, &args[1], &args[2]),
        _ => Err(errors::SYNTAX),
    }
}

fn spop_one(ctx: &mut ExecCtx, key: &[u8]) -> CmdResult {
    let mut rng = Rng::for_command(ctx);
    let Some(set) = write_set(ctx, key)? else {
        return Ok(Reply::Null);
    };
    let member = set
        .pop_random(&mut |n| rng.below(n))
        .expect("stored sets are never empty");
    let emptied = set.is_empty();
    ctx.notify(notify::SET, "spop", key);
    ctx.reply_cut(ReplyCut::Rest);
    if emptied {
        ctx.delete_emptied(key);
    }
    ctx.dirty(1);
    ctx.propagate_as(vec![
        Bytes::from_static(b"SREM"),
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(&member),
    ]);
    Ok(bulk(&member))
}

/// Redis pops one random member at a time while many would remain, and otherwise picks the
/// few survivors and returns everything else.
const SPOP_MOVE_STRATEGY_MUL: usize = 5;

fn spop_count(ctx: &mut ExecCtx, key: &[u8], count: &[u8]) -> CmdResult {
    let count = crate::util::parse_int(count)
        .filter(|c| *c >= 0)
        .ok_or(SPOP_COUNT_RANGE)? as u64;
    let mut rng = Rng::for_command(ctx);
    let max = max_intset_entries(ctx);
    let Some(set) = write_set(ctx, key)? else {
        return Ok(Reply::Set(Vec::new()));
    };
    if count == 0 {
        return Ok(Reply::Set(Vec::new()));
    }
    let size = set.len();
    if count >= size as u64 {
        let popped = all_members(set);
        ctx.notify(notify::SET, "spop", key);
        ctx.reply_cut(ReplyCut::Rest);
        ctx.delete_emptied(key);
        ctx.dirty(size as u64);
        ctx.propagate_as(vec![
            Bytes::from_static(b"DEL"),
            Bytes::copy_from_slice(key),
        ]);
        return Ok(Reply::Set(popped));
    }
    let count = count as usize;
    let remaining = size - count;
    let mut popped = Vec::with_capacity(count);
    if remaining * SPOP_MOVE_STRATEGY_MUL > count {
        for _ in 0..count {
            let member = set.pop_random(&mut |n| rng.below(n)).expect("not empty");
            popped.push(bulk(&member));
        }
    } else {
        let mut survivors = Set::new_intset();
        let mut first = true;
        for _ in 0..remaining {
            let member = set.pop_random(&mut |n| rng.below(n)).expect("not empty");
            if first {
                survivors = Set::new_for(&member);
                first = false;
            }
            survivors.insert(&member, max);
        }
        popped = all_members(set);
        *set = survivors;
    }
    ctx.dirty(count as u64);
    ctx.notify(notify::SET, "spop", key);
    // Replicas get one SREM per member, not the random choice.
    for member in &popped {
        if let Reply::Bulk(m) = member {
            ctx.also_propagate(vec![
                Bytes::from_static(b"SREM"),
                Bytes::copy_from_slice(key),
                m.clone(),
            ]);
        }
    }
    ctx.prevent_propagation();
    Ok(Reply::Set(popped))
}

fn srandmember(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            let mut rng = Rng::for_command(ctx);
            let Some(set) = read_set(ctx, &args[1])? else {
                return Ok(Reply::Null);
            };
            let member = set.random(&mut |n| rng.below(n)).expect("not empty");
            Ok(bulk(&member))
        }
        3 => srandmember_count(ctx, &args[1], &args[2]),
        _ => Err(errors::SYNTAX),
    }
}

/// Redis collects every member and drops random ones when the sample is a large share of
/// the set, and draws distinct random members otherwise.
const SRANDMEMBER_SUB_STRATEGY_MUL: u64 = 3;

fn srandmember_count(ctx: &mut ExecCtx, key: &[u8], count: &[u8]) -> CmdResult {
    let count = ctx.int_arg(count)?;
    if count == i64::MIN {
        return Err(SRANDMEMBER_COUNT_RANGE);
    }
    let (count, distinct) = (count.unsigned_abs(), count >= 0);
    let mut rng = Rng::for_command(ctx);
    let Some(set) = read_set(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let size = set.len() as u64;
    let mut pick = |n| rng.below(n);
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    if !distinct || count == 1 {
        if count > MAX_REPEATED_PICKS {
            return Err(SRANDMEMBER_COUNT_RANGE);
        }
        let picks = (0..count)
            .map(|_| bulk(&set.random(&mut pick).expect("not empty")))
            .collect();
        return Ok(Reply::Array(picks));
    }
    if count >= size {
        return Ok(Reply::Array(all_members(set)));
    }
    let count = count as usize;
    if count as u64 * SRANDMEMBER_SUB_STRATEGY_MUL > size {
        // A partial Fisher-Yates shuffle: the first `count` are a uniform sample.
        let mut members: Vec<Reply> = all_members(set);
        for i in 0..count {
            let j = i + pick(members.len() - i);
            members.swap(i, j);
        }
        members.truncate(count);
        return Ok(Reply::Array(members));
    }
    let mut chosen = hashbrown::HashSet::with_capacity(count);
    let mut picks = Vec::with_capacity(count);
    while picks.len() < count {
        let member = set.random(&mut pick).expect("not empty");
        if chosen.insert(member.clone().into_owned()) {
            picks.push(bulk(&member));
        }
    }
    Ok(Reply::Array(picks))
}

/// How SINTER's generic path delivers its result.
enum InterOutput<'a> {
    Reply,
    Cardinality { limit: usize },
    Store(&'a [u8]),
}

/// Members of the intersection are checked against the other sets this many at a time, so
/// SINTERCARD's LIMIT stops early without holding several sets borrowed at once.
const INTER_CHUNK: usize = 1024;

fn sinter(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &args[1..], InterOutput::Reply)
}

fn smembers(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &args[1..2], InterOutput::Reply)
}

fn sinterstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sinter_generic(ctx, &args[2..], InterOutput::Store(&args[1]))
}

fn sintercard(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let numkeys = crate::util::parse_int(&args[1])
        .filter(|n| *n >= 1)
        .ok_or(errors::NUMKEYS_ZERO_OR_NEGATIVE)?;
    if numkeys > args.len() as i64 - 2 {
        return Err(SINTERCARD_TOO_MANY_KEYS);
    }
    let keys_end = 2 + numkeys as usize;
    let mut limit = 0usize;
    let mut i = keys_end;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"limit") && i + 1 < args.len() {
            let l = crate::util::parse_int(&args[i + 1])
                .filter(|l| *l >= 0)
                .ok_or(SINTERCARD_NEGATIVE_LIMIT)?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    sinter_generic(ctx, &args[2..keys_end], InterOutput::Cardinality { limit })
}

/// Looks every key up in order (all of them: a later WRONGTYPE wins over an earlier missing
/// key), returning each one's cardinality or `None` when missing.
fn lookup_sets(ctx: &mut ExecCtx, keys: &[Bytes]) -> Result<Vec<Option<usize>>, ErrorReply> {
    let mut sizes = Vec::with_capacity(keys.len());
    for key in keys {
        match found(ctx.lookup_read(key)) {
            Found::Missing => sizes.push(None),
            Found::Set(n) => sizes.push(Some(n)),
            Found::Other => return Err(errors::WRONGTYPE),
        }
    }
    Ok(sizes)
}

/// Stores a computed set under `dst` the way Redis's SINTERSTORE / SUNIONSTORE / SDIFFSTORE
/// do: an empty result deletes the destination.
fn store_result(ctx: &mut ExecCtx, dst: &[u8], result: Set) -> CmdResult {
    let len = result.len();
    if len > 0 {
        ctx.set_key(dst, Value::Set(Box::new(result)), false);
        ctx.dirty(1);
        let event = match ctx.current_command {
            "sinterstore" => "sinterstore",
            "sunionstore" => "sunionstore",
            _ => "sdiffstore",
        };
        ctx.notify(notify::SET, event, dst);
    } else if ctx.delete(dst) {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", dst);
    }
    Ok(Reply::Int(len as i64))
}

fn sinter_generic(ctx: &mut ExecCtx, keys: &[Bytes], out: InterOutput) -> CmdResult {
    let sizes = lookup_sets(ctx, keys)?;
    let Some(sizes) = sizes.into_iter().collect::<Option<Vec<usize>>>() else {
        return match out {
            InterOutput::Store(dst) => store_result(ctx, dst, Set::new_intset()),
            InterOutput::Cardinality { .. } => Ok(Reply::Int(0)),
            InterOutput::Reply => Ok(Reply::Set(Vec::new())),
        };
    };
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let smallest = &keys[order[0]];
    let candidates: Vec<Vec<u8>> = peek_set(ctx, smallest)
        .map(|s| s.iter().map(|m| m.into_owned()).collect())
        .unwrap_or_default();
    let limit = match out {
        InterOutput::Cardinality { limit } if limit > 0 => limit,
        _ => usize::MAX,
    };
    let mut members: Vec<Vec<u8>> = Vec::new();
    for chunk in candidates.chunks(INTER_CHUNK) {
        let mut chunk = chunk.to_vec();
        for &i in &order[1..] {
            if keys[i] == *smallest {
                continue;
            }
            let other = peek_set(ctx, &keys[i]).expect("looked up above");
            chunk.retain(|m| other.contains(m));
        }
        members.extend(chunk);
        if members.len() >= limit {
            members.truncate(limit);
            break;
        }
    }
    match out {
        InterOutput::Cardinality { .. } => Ok(Reply::Int(members.len() as i64)),
        InterOutput::Reply => Ok(Reply::Set(members.iter().map(|m| bulk(m)).collect())),
        InterOutput::Store(dst) => {
            let max = max_intset_entries(ctx);
            let mut result = Set::new_intset();
            for m in &members {
                result.insert(m, max);
            }
            // Redis answers a computed intersection before its events (a missing key's early
            // answer comes after them).
            ctx.reply_cut(ReplyCut::Rest);
            store_result(ctx, dst, result)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Diff,
}

fn sunion(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[1..], None, SetOp::Union)
}

fn sunionstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[2..], Some(&args[1]), SetOp::Union)
}

fn sdiff(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[1..], None, SetOp::Diff)
}

fn sdiffstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sunion_diff(ctx, &args[2..], Some(&args[1]), SetOp::Diff)
}

fn sunion_diff(ctx: &mut ExecCtx, keys: &[Bytes], dst: Option<&[u8]>, op: SetOp) -> CmdResult {
    let sizes = lookup_sets(ctx, keys)?;
    let max = max_intset_entries(ctx);
    let mut result = Set::new_intset();
    match (op, sizes[0]) {
        (SetOp::Union, _) => {
            for (key, size) in keys.iter().zip(&sizes) {
                if size.is_some() {
                    let set = peek_set(ctx, key).expect("looked up above");
                    for m in set.iter() {
                        result.insert(&m, max);
                    }
                }
            }
        }
        // A missing first key, or the first key repeated, leaves nothing.
        (SetOp::Diff, None) => {}
        (SetOp::Diff, Some(_)) if keys[1..].contains(&keys[0]) => {}
        (SetOp::Diff, Some(first)) => {
            let existing: Vec<usize> = sizes.iter().flatten().copied().collect();
            let algo_one_work = (first * existing.len()) as u64 / 2;
            let algo_two_work: u64 = existing.iter().map(|&n| n as u64).sum();
            result = if algo_one_work <= algo_two_work {
                diff_by_lookup(ctx, keys, &sizes, max)
            } else {
                diff_by_removal(ctx, keys, &sizes, max)
            };
        }
    }
    match dst {
        Some(dst) => store_result(ctx, dst, result),
        None => Ok(Reply::Set(all_members(&result))),
    }
}

/// SDIFF's first algorithm: keep the first set's members found in no other set.
fn diff_by_lookup(ctx: &mut ExecCtx, keys: &[Bytes], sizes: &[Option<usize>], max: usize) -> Set {
    let first = peek_set(ctx, &keys[0]).expect("looked up above");
    let mut members: Vec<Vec<u8>> = first.iter().map(|m| m.into_owned()).collect();
    for (key, size) in keys.iter().zip(sizes).skip(1) {
        if size.is_some() && !members.is_empty() {
            let other = peek_set(ctx, key).expect("looked up above");
            members.retain(|m| !other.contains(m));
        }
    }
    let mut result = Set::new_intset();
    for m in &members {
        result.insert(m, max);
    }
    result
}

/// SDIFF's second algorithm: copy the first set, then remove every other set's members.
/// Intermediate members can turn the result into a `hashtable` for good.
fn diff_by_removal(ctx: &mut ExecCtx, keys: &[Bytes], sizes: &[Option<usize>], max: usize) -> Set {
    let mut result = Set::new_intset();
    for (j, (key, size)) in keys.iter().zip(sizes).enumerate() {
        if size.is_none() {
            continue;
        }
        let set = peek_set(ctx, key).expect("looked up above");
        for m in set.iter() {
            if j == 0 {
                result.insert(&m, max);
            } else {
                result.remove(&m);
            }
        }
        if result.is_empty() {
            break;
        }
    }
    result
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]. An `intset` is returned whole with cursor
/// 0, as Redis does; a `hashtable` is walked bucket by bucket with Redis's cursor until
/// COUNT members were gathered or ten times COUNT buckets were visited.
fn sscan(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let empty_scan = || Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(Vec::new())]);
    if read_set(ctx, &args[1])?.is_none() {
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
    let set = peek_set(ctx, &args[1]).expect("looked up above");
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut next = cursor;
    let mut budget = count.saturating_mul(10).saturating_add(1);
    loop {
        next = set.scan_step(next, &mut |m| found.push(m.into_owned()));
        budget = budget.saturating_sub(1);
        if next == 0 || budget == 0 || found.len() >= count {
            break;
        }
    }
    let items = found
        .iter()
        .filter(|m| pattern.is_none_or(|p| glob_match(p, m, false)))
        .map(|m| bulk(m))
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

    /// Runs set commands against a fresh server the way dispatch would (arity first), with
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
                .expect("a set command");
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

        fn members(&mut self, argv: &[&str]) -> Vec<String> {
            sorted(self.ok(argv))
        }

        fn set(&mut self, key: &str) -> Option<Set> {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(0, key.as_bytes()).map(|e| match &e.value {
                Value::Set(s) => (**s).clone(),
                other => panic!("{key} holds a {}", other.type_name()),
            })
        }

        fn encoding(&mut self, key: &str) -> &'static str {
            self.set(key).expect("key exists").encoding_name()
        }

        fn set_string(&mut self, key: &str) {
            let entry = Entry::new(Value::Str(crate::keyspace::StrValue::from_bytes(b"x")), 0);
            self.server
                .keyspace
                .lock_all()
                .insert(0, key.as_bytes(), entry);
        }

        fn set_max_intset_entries(&self, n: usize) {
            let mut config = (**self.server.config()).clone();
            config.set_max_intset_entries = n;
            self.server.config.store(std::sync::Arc::new(config));
        }
    }

    fn sorted(reply: Reply) -> Vec<String> {
        let (Reply::Array(items) | Reply::Set(items)) = reply else {
            panic!("expected an aggregate, got {reply:?}");
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

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sadd_counts_new_members_and_converts_intset_one_way() {
        let mut h = Harness::new();
        assert_eq!(h.int(&["SADD", "s", "3", "1", "3"]), 2);
        assert_eq!(h.encoding("s"), "intset");
        assert_eq!(
            h.ok(&["SMEMBERS", "s"]),
            Reply::Set(vec![Reply::bulk_str("1"), Reply::bulk_str("3")])
        );
        assert_eq!(h.int(&["SADD", "s", "a"]), 1);
        assert_eq!(h.encoding("s"), "hashtable");
        h.int(&["SREM", "s", "a"]);
        assert_eq!(h.encoding("s"), "hashtable");
        assert_eq!(h.dirty, 4);
        assert_eq!(h.int(&["SADD", "t", "a", "1"]), 2);
        assert_eq!(h.encoding("t"), "hashtable");
    }

    #[test]
    fn intset_limit_follows_the_config() {
        let mut h = Harness::new();
        h.set_max_intset_entries(2);
        h.int(&["SADD", "s", "1", "2"]);
        assert_eq!(h.encoding("s"), "intset");
        h.int(&["SADD", "s", "3"]);
        assert_eq!(h.encoding("s"), "hashtable");
        h.set_max_intset_entries(0);
        h.int(&["SADD", "z", "1"]);
        assert_eq!(h.encoding("z"), "hashtable");
    }

    #[test]
    fn srem_deletes_the_emptied_key() {
        let mut h = Harness::new();
        h.int(&["SADD", "s", "a", "b"]);
        h.dirty = 0;
        assert_eq!(h.int(&["SREM", "s", "a", "zz", "b", "a"]), 2);
        assert!(h.set("s").is_none());
        assert_eq!(h.dirty, 2);
        assert_eq!(h.int(&["SREM", "s", "a"]), 0);
    }

    #[test]
    fn non_set_keys_are_wrongtype() {
        let mut h = Harness::new();
        h.set_string("str");
        h.int(&["SADD", "s", "a"]);
        let wrongtype = errors::WRONGTYPE.text().to_string();
        for argv in [
            &["SADD", "str", "a"][..],
            &["SCARD", "str"],
            &["SMISMEMBER", "str", "a"],
            &["SINTER", "nokey", "str"],
            &["SINTERSTORE", "d", "nokey", "str"],
            &["SDIFF", "s", "str"],
            &["SINTERCARD", "2", "nokey", "str"],
            &["SMOVE", "s", "str", "a"],
            &["SPOP", "str", "1"],
            &["SSCAN", "str", "0"],
        ] {
            assert_eq!(h.err(argv), wrongtype, "{argv:?}");
        }
        assert_eq!(h.int(&["SMOVE", "nokey", "str", "a"]), 0);
    }

    #[test]
    fn smove_moves_one_member_and_deletes_an_emptied_source() {
        let mut h = Harness::new();
        h.int(&["SADD", "a", "1", "2"]);
        h.int(&["SADD", "b", "x"]);
        h.dirty = 0;
        assert_eq!(h.int(&["SMOVE", "a", "b", "1"]), 1);
        assert_eq!(h.int(&["SMOVE", "a", "b", "9"]), 0);
        assert_eq!(h.int(&["SMOVE", "a", "a", "2"]), 1);
        assert_eq!(h.int(&["SMOVE", "a", "c", "2"]), 1);
        assert!(h.set("a").is_none());
        assert_eq!(h.encoding("c"), "intset");
        assert_eq!(h.members(&["SMEMBERS", "b"]), strings(&["1", "x"]));
        assert_eq!(h.dirty, 4);
    }

    #[test]
    fn smove_signals_the_destination_only_when_it_gained_the_member() {
        use crate::commands::dispatch::execute;
        let h = Harness::new();
        let mut watcher = crate::commands::test_support::test_client(NOW_MS);
        let mut mover = crate::commands::test_support::test_client(NOW_MS);
        let run = |c: &mut ClientState, argv: &[&str]| {
            let args: Vec<Bytes> = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            execute(&h.server, c, &args, NOW_MS * 1000, true).reply
        };
        run(&mut mover, &["SADD", "src", "a", "b"]);
        run(&mut mover, &["SADD", "dst", "a"]);
        run(&mut watcher, &["WATCH", "dst"]);
        assert_eq!(
            run(&mut mover, &["SMOVE", "src", "dst", "a"]),
            Reply::Int(1)
        );
        let dirty = |c: &ClientState| c.cas_dirty.load(std::sync::atomic::Ordering::Relaxed);
        assert!(!dirty(&watcher), "the destination already held the member");
        assert_eq!(
            run(&mut mover, &["SMOVE", "src", "dst", "b"]),
            Reply::Int(1)
        );
        assert!(dirty(&watcher));
    }

    #[test]
    fn spop_with_count_returns_distinct_members_and_deletes_when_exhausted() {
        let mut h = Harness::new();
        let members: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        let mut argv = vec!["SADD", "s"];
        argv.extend(members.iter().map(String::as_str));
        h.int(&argv);
        h.dirty = 0;
        let mut popped = h.members(&["SPOP", "s", "3"]);
        popped.extend(h.members(&["SPOP", "s", "15"]));
        assert_eq!(h.set("s").unwrap().len(), 2);
        popped.extend(h.members(&["SPOP", "s", "5"]));
        popped.sort();
        let mut expected = members.clone();
        expected.sort();
        assert_eq!(popped, expected);
        assert!(h.set("s").is_none());
        assert_eq!(h.dirty, 20);
        assert_eq!(h.ok(&["SPOP", "s", "0"]), Reply::Set(vec![]));
        assert_eq!(h.ok(&["SPOP", "s"]), Reply::Null);
        assert_eq!(
            h.err(&["SPOP", "s", "-1"]),
            "ERR value is out of range, must be positive"
        );
        assert_eq!(h.err(&["SPOP", "s", "1", "2"]), "ERR syntax error");
    }

    #[test]
    fn srandmember_distinguishes_distinct_and_repeated_picks() {
        let mut h = Harness::new();
        h.int(&[
            "SADD", "s", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j",
        ]);
        for count in ["2", "4", "9"] {
            let picks = h.members(&["SRANDMEMBER", "s", count]);
            let mut unique = picks.clone();
            unique.dedup();
            assert_eq!(unique.len(), count.parse::<usize>().unwrap());
        }
        assert_eq!(h.members(&["SRANDMEMBER", "s", "50"]).len(), 10);
        assert_eq!(h.members(&["SRANDMEMBER", "s", "-50"]).len(), 50);
        assert_eq!(h.ok(&["SRANDMEMBER", "nokey", "-5"]), Reply::Array(vec![]));
        assert_eq!(h.ok(&["SRANDMEMBER", "nokey"]), Reply::Null);
        assert_eq!(
            h.err(&["SRANDMEMBER", "s", "-9223372036854775808"]),
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        );
        assert_eq!(
            h.err(&["SRANDMEMBER", "s", "x"]),
            errors::NOT_INTEGER.text()
        );
        assert_eq!(h.dirty, 10);
    }

    #[test]
    fn srandmember_picks_every_member_about_equally_often() {
        let mut h = Harness::new();
        let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        let mut argv = vec!["SADD", "s"];
        argv.extend(members.iter().map(String::as_str));
        h.int(&argv);
        let mut counts = std::collections::HashMap::new();
        for m in h.members(&["SRANDMEMBER", "s", "-50000"]) {
            *counts.entry(m).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 50);
        assert!(
            counts.values().all(|&c| (700..1300).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn set_algebra_replies_and_stores() {
        let mut h = Harness::new();
        h.int(&["SADD", "a", "1", "2", "3"]);
        h.int(&["SADD", "b", "2", "3", "4", "x"]);
        assert_eq!(h.members(&["SINTER", "a", "b"]), strings(&["2", "3"]));
        assert_eq!(h.ok(&["SINTER", "a", "nokey"]), Reply::Set(vec![]));
        assert_eq!(
            h.members(&["SUNION", "a", "b", "nokey"]),
            strings(&["1", "2", "3", "4", "x"])
        );
        assert_eq!(h.members(&["SDIFF", "b", "a"]), strings(&["4", "x"]));
        assert_eq!(h.members(&["SDIFF", "a", "a"]), strings(&[]));
        h.dirty = 0;
        assert_eq!(h.int(&["SINTERSTORE", "d", "a", "b"]), 2);
        assert_eq!(h.encoding("d"), "intset");
        assert_eq!(h.int(&["SUNIONSTORE", "d", "a", "b"]), 5);
        assert_eq!(h.encoding("d"), "hashtable");
        assert_eq!(h.int(&["SDIFFSTORE", "d", "a", "a"]), 0);
        assert!(h.set("d").is_none());
        assert_eq!(h.int(&["SDIFFSTORE", "d", "a", "a"]), 0);
        assert_eq!(h.dirty, 3);
    }

    #[test]
    fn sdiffstore_by_removal_keeps_the_hashtable_encoding() {
        let mut h = Harness::new();
        h.int(&["SADD", "a", "1", "2", "x"]);
        h.int(&["SADD", "b", "x"]);
        // One big first set against a tiny one: Redis picks the first algorithm.
        assert_eq!(h.int(&["SDIFFSTORE", "d", "a", "b"]), 2);
        assert_eq!(h.encoding("d"), "intset");
        // The first set against many tiny ones: copy it, then remove the others' members.
        assert_eq!(
            h.int(&["SDIFFSTORE", "d", "a", "b", "b", "b", "b", "b", "b"]),
            2
        );
        assert_eq!(h.encoding("d"), "hashtable");
    }

    #[test]
    fn sintercard_counts_up_to_the_limit_and_checks_its_arguments() {
        let mut h = Harness::new();
        h.int(&["SADD", "a", "1", "2", "3", "4"]);
        h.int(&["SADD", "b", "2", "3", "4", "5"]);
        assert_eq!(h.int(&["SINTERCARD", "2", "a", "b"]), 3);
        assert_eq!(h.int(&["SINTERCARD", "2", "a", "b", "LIMIT", "2"]), 2);
        assert_eq!(h.int(&["SINTERCARD", "2", "a", "b", "limit", "0"]), 3);
        assert_eq!(h.int(&["SINTERCARD", "2", "a", "nokey"]), 0);
        assert_eq!(
            h.err(&["SINTERCARD", "0", "a"]),
            "ERR numkeys should be greater than 0"
        );
        assert_eq!(
            h.err(&["SINTERCARD", "x", "a"]),
            "ERR numkeys should be greater than 0"
        );
        assert_eq!(
            h.err(&["SINTERCARD", "3", "a", "b"]),
            "ERR Number of keys can't be greater than number of args"
        );
        assert_eq!(h.err(&["SINTERCARD", "1", "a", "b"]), "ERR syntax error");
        assert_eq!(
            h.err(&["SINTERCARD", "1", "a", "LIMIT"]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["SINTERCARD", "1", "a", "LIMIT", "-1"]),
            "ERR LIMIT can't be negative"
        );
    }

    fn scan_all(h: &mut Harness, key: &str, count: &str) -> (Vec<String>, usize) {
        let (mut cursor, mut calls, mut seen) = ("0".to_string(), 0, Vec::new());
        loop {
            let Reply::Array(parts) = h.ok(&["SSCAN", key, &cursor, "COUNT", count]) else {
                panic!("SSCAN replies an array");
            };
            let [Reply::Bulk(next), items] = &parts[..] else {
                panic!("SSCAN replies a cursor and items");
            };
            seen.extend(sorted(items.clone()));
            calls += 1;
            cursor = String::from_utf8_lossy(next).into_owned();
            if cursor == "0" {
                break;
            }
        }
        seen.sort();
        (seen, calls)
    }

    #[test]
    fn sscan_returns_intsets_whole_and_walks_hashtables_with_a_cursor() {
        let mut h = Harness::new();
        h.int(&["SADD", "i", "3", "1", "2"]);
        assert_eq!(scan_all(&mut h, "i", "1"), (strings(&["1", "2", "3"]), 1));
        let members: Vec<String> = (0..500).map(|i| format!("m{i}")).collect();
        let mut argv = vec!["SADD", "h"];
        argv.extend(members.iter().map(String::as_str));
        h.int(&argv);
        let (seen, calls) = scan_all(&mut h, "h", "10");
        let mut expected = members.clone();
        expected.sort();
        assert_eq!(seen, expected);
        assert!(calls > 10, "{calls} calls");
        let matched = h.ok(&["SSCAN", "h", "0", "MATCH", "m1?", "COUNT", "1000"]);
        let Reply::Array(parts) = matched else {
            panic!()
        };
        assert_eq!(sorted(parts[1].clone()).len(), 10);
        assert_eq!(
            h.err(&["SSCAN", "h", "0", "COUNT", "0"]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["SSCAN", "h", "0", "TYPE", "set"]),
            "ERR syntax error"
        );
        assert_eq!(h.err(&["SSCAN", "h", "x"]), "ERR invalid cursor");
        assert_eq!(
            h.ok(&["SSCAN", "nokey", "0", "COUNT", "0"]),
            Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(vec![])])
        );
    }

    #[test]
    fn command_table_rows_match_redis() {
        let find = |n: &str| COMMANDS.iter().find(|c| c.name == n).unwrap();
        assert_eq!(find("sinterstore").legacy_range(), (1, -1, 1, false));
        assert_eq!(find("smove").legacy_range(), (1, 2, 1, false));
        assert_eq!(find("sintercard").legacy_range(), (0, 0, 0, true));
        assert_eq!(
            find("sadd").acl_categories(),
            acl::SET | acl::WRITE | acl::FAST
        );
        assert_eq!(
            find("smembers").acl_categories(),
            acl::SET | acl::READ | acl::SLOW
        );
    }
}

//! The stream family: XADD XLEN XRANGE XREVRANGE XDEL XTRIM XREAD XREADGROUP XGROUP XACK
//! XPENDING XCLAIM XAUTOCLAIM XINFO XSETID. Replies, error texts, the order in which arguments,
//! keys and groups are checked, dirty counts and propagation (XREADGROUP, XCLAIM and
//! XAUTOCLAIM propagate as XCLAIM / XGROUP SETID / XGROUP CREATECONSUMER; approximate trims
//! as exact ones) follow Redis 7.0's `t_stream.c`. Blocking reads park the client through
//! `ExecCtx::block` and are run again when a stream they wait for is written; a blocked XREAD
//! given `$` is re-run with the ID `$` stood for when it blocked.

use super::context::ExecCtx;
use super::errors;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec,
};
use crate::config::values::notify;
use crate::keyspace::stream::{
    parse_id, AddError, Fields, FieldsRef, Group, Stream, StreamId, Trim, ENTRIES_READ_INVALID,
};
use crate::keyspace::{Entry, Value};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

const STREAM: u32 = acl::STREAM;
const NONDET: &[&str] = &["nondeterministic_output"];

const KEY_RO: &[KeySpec] = &[KeySpec::single(1, kflag::RO)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)];
const KEY_RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::DELETE)];
const XADD_KEY: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)
    .notes("UPDATE instead of INSERT because of the optional trimming feature")];
const SUB_RW_INSERT: &[KeySpec] = &[KeySpec::single(2, kflag::RW | kflag::INSERT)];
const SUB_RW_DELETE: &[KeySpec] = &[KeySpec::single(2, kflag::RW | kflag::DELETE)];
const SUB_RW_UPDATE: &[KeySpec] = &[KeySpec::single(2, kflag::RW | kflag::UPDATE)];
const SUB_RO_ACCESS: &[KeySpec] = &[KeySpec::single(2, kflag::RO | kflag::ACCESS)];
const fn streams_keys(start_from: i32) -> [KeySpec; 1] {
    [KeySpec {
        notes: None,
        flags: kflag::RO | kflag::ACCESS,
        begin: BeginSearch::Keyword {
            keyword: "STREAMS",
            start_from,
        },
        find: FindKeys::Range {
            last_key: -1,
            step: 1,
            limit: 2,
        },
    }]
}
const XREAD_KEYS: &[KeySpec] = &streams_keys(1);
const XREADGROUP_KEYS: &[KeySpec] = &streams_keys(4);

// Subcommands in one order Redis's dict yields them (it varies between Redis processes).
const XGROUP_SUBCOMMANDS: &[C] = &[
    C::new(
        "setid",
        -5,
        WRITE,
        STREAM,
        SUB_RW_UPDATE,
        "stream",
        "5.0.0",
        xgroup,
    ),
    C::new(
        "create",
        -5,
        WRITE | DENYOOM,
        STREAM,
        SUB_RW_INSERT,
        "stream",
        "5.0.0",
        xgroup,
    ),
    C::new(
        "help",
        2,
        LOADING | STALE,
        STREAM,
        &[],
        "stream",
        "5.0.0",
        xgroup_help,
    ),
    C::new(
        "destroy",
        4,
        WRITE,
        STREAM,
        SUB_RW_DELETE,
        "stream",
        "5.0.0",
        xgroup,
    ),
    C::new(
        "createconsumer",
        5,
        WRITE | DENYOOM,
        STREAM,
        SUB_RW_INSERT,
        "stream",
        "6.2.0",
        xgroup,
    ),
    C::new(
        "delconsumer",
        5,
        WRITE,
        STREAM,
        SUB_RW_DELETE,
        "stream",
        "5.0.0",
        xgroup,
    ),
];

const XINFO_SUBCOMMANDS: &[C] = &[
    C::new(
        "help",
        2,
        LOADING | STALE,
        STREAM,
        &[],
        "stream",
        "5.0.0",
        xinfo_help,
    ),
    C::new(
        "groups",
        3,
        READONLY,
        STREAM,
        SUB_RO_ACCESS,
        "stream",
        "5.0.0",
        xinfo_groups,
    ),
    C::new(
        "stream",
        -3,
        READONLY,
        STREAM,
        SUB_RO_ACCESS,
        "stream",
        "5.0.0",
        xinfo_stream,
    ),
    C::new(
        "consumers",
        4,
        READONLY,
        STREAM,
        SUB_RO_ACCESS,
        "stream",
        "5.0.0",
        xinfo_consumers,
    )
    .tips(NONDET),
];

pub const COMMANDS: &[C] = &[
    C::new(
        "xadd",
        -5,
        WRITE | DENYOOM | FAST,
        STREAM,
        XADD_KEY,
        "stream",
        "5.0.0",
        xadd,
    )
    .tips(NONDET),
    C::new(
        "xlen",
        2,
        READONLY | FAST,
        STREAM,
        KEY_RO,
        "stream",
        "5.0.0",
        xlen,
    ),
    C::new(
        "xrange",
        -4,
        READONLY,
        STREAM,
        KEY_RO_ACCESS,
        "stream",
        "5.0.0",
        xrange,
    ),
    C::new(
        "xrevrange",
        -4,
        READONLY,
        STREAM,
        KEY_RO_ACCESS,
        "stream",
        "5.0.0",
        xrevrange,
    ),
    C::new(
        "xdel",
        -3,
        WRITE | FAST,
        STREAM,
        KEY_RW_DELETE,
        "stream",
        "5.0.0",
        xdel,
    ),
    C::new(
        "xtrim",
        -4,
        WRITE,
        STREAM,
        KEY_RW_DELETE,
        "stream",
        "5.0.0",
        xtrim,
    )
    .tips(NONDET),
    C::new(
        "xread",
        -4,
        READONLY | BLOCKING,
        STREAM,
        XREAD_KEYS,
        "stream",
        "5.0.0",
        xread,
    ),
    C::new(
        "xreadgroup",
        -7,
        WRITE | BLOCKING,
        STREAM,
        XREADGROUP_KEYS,
        "stream",
        "5.0.0",
        xreadgroup,
    ),
    C::new(
        "xack",
        -4,
        WRITE | FAST,
        STREAM,
        KEY_RW_UPDATE,
        "stream",
        "5.0.0",
        xack,
    ),
    C::new(
        "xpending",
        -3,
        READONLY,
        STREAM,
        KEY_RO_ACCESS,
        "stream",
        "5.0.0",
        xpending,
    )
    .tips(NONDET),
    C::new(
        "xclaim",
        -6,
        WRITE | FAST,
        STREAM,
        KEY_RW_UPDATE,
        "stream",
        "5.0.0",
        xclaim,
    )
    .tips(NONDET),
    C::new(
        "xautoclaim",
        -6,
        WRITE | FAST,
        STREAM,
        KEY_RW_DELETE,
        "stream",
        "6.2.0",
        xautoclaim,
    )
    .tips(NONDET),
    C::new(
        "xsetid",
        -3,
        WRITE | DENYOOM | FAST,
        STREAM,
        KEY_RW_UPDATE,
        "stream",
        "5.0.0",
        xsetid,
    ),
    C::new("xgroup", -2, 0, 0, &[], "stream", "5.0.0", container).subcommands(XGROUP_SUBCOMMANDS),
    C::new("xinfo", -2, 0, 0, &[], "stream", "5.0.0", container).subcommands(XINFO_SUBCOMMANDS),
];

// ---- errors ----

const INVALID_ID: ErrorReply =
    ErrorReply::fixed("ERR Invalid stream ID specified as stream command argument");
const XADD_ID_TOO_SMALL: ErrorReply = ErrorReply::fixed(
    "ERR The ID specified in XADD is equal or smaller than the target stream top item",
);
const XADD_ID_ZERO: ErrorReply =
    ErrorReply::fixed("ERR The ID specified in XADD must be greater than 0-0");
const XADD_EXHAUSTED: ErrorReply = ErrorReply::fixed(
    "ERR The stream has exhausted the last possible ID, unable to add more items",
);
const TOO_LARGE: ErrorReply = ErrorReply::fixed("ERR Elements are too large to be stored");
const MAXLEN_AND_MINID: ErrorReply = ErrorReply::fixed(
    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
);
const MAXLEN_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR The MAXLEN argument must be >= 0.");
const LIMIT_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR The LIMIT argument must be >= 0.");
const LIMIT_WITHOUT_STRATEGY: ErrorReply = ErrorReply::fixed(
    "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
);
const XTRIM_WITHOUT_STRATEGY: ErrorReply =
    ErrorReply::fixed("ERR syntax error, XTRIM must be called with a trimming strategy");
const LIMIT_WITHOUT_APPROX: ErrorReply =
    ErrorReply::fixed("ERR syntax error, LIMIT cannot be used without the special ~ option");
const BAD_START: ErrorReply = ErrorReply::fixed("ERR invalid start ID for the interval");
const BAD_END: ErrorReply = ErrorReply::fixed("ERR invalid end ID for the interval");
const UNBALANCED: ErrorReply = ErrorReply::fixed(
    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
);
const GROUP_ONLY_XREADGROUP: ErrorReply = ErrorReply::fixed(
    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
);
const NOACK_ONLY_XREADGROUP: ErrorReply = ErrorReply::fixed(
    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
);
const MISSING_GROUP: ErrorReply = ErrorReply::fixed("ERR Missing GROUP option for XREADGROUP");
const DOLLAR_IN_XREADGROUP: ErrorReply = ErrorReply::fixed(
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
);
const GT_IN_XREAD: ErrorReply = ErrorReply::fixed(
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
);
const ENTRIESREAD_NEGATIVE: ErrorReply =
    ErrorReply::fixed("ERR value for ENTRIESREAD must be positive or -1");
const XGROUP_NEEDS_KEY: ErrorReply = ErrorReply::fixed(
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
);
const BUSYGROUP: ErrorReply = ErrorReply::fixed("BUSYGROUP Consumer Group name already exists");
const ENTRIES_ADDED_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR entries_added must be positive");
const XSETID_BELOW_MAXDELETED: ErrorReply = ErrorReply::fixed(
    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
);
const XSETID_TOO_SMALL: ErrorReply =
    ErrorReply::fixed("ERR The ID specified in XSETID is smaller than the target stream top item");
const XSETID_ENTRIES_ADDED: ErrorReply = ErrorReply::fixed(
    "ERR The entries_added specified in XSETID is smaller than the target stream length",
);
const COUNT_POSITIVE: ErrorReply = ErrorReply::fixed("ERR COUNT must be > 0");
const BLOCKED_GROUP_GONE: ErrorReply =
    ErrorReply::fixed("NOGROUP the consumer group this client was blocked on no longer exists");
const BLOCKED_KEY_GONE: ErrorReply = ErrorReply::fixed("UNBLOCKED the stream key no longer exists");

fn nogroup_key_or_group(key: &[u8], group: &[u8]) -> ErrorReply {
    ErrorReply::owned(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        cstr(key),
        cstr(group)
    ))
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> ErrorReply {
    ErrorReply::owned(format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        cstr(group),
        cstr(key)
    ))
}

/// An argument printed with `%s`: up to its first NUL, newlines made spaces.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end])
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`
fn subcommand_syntax_error(args: &[Bytes]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        errors::clip(&args[1]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

fn container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn help_reply(command: &[u8], lines: &[&'static str]) -> Reply {
    let header = format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        String::from_utf8_lossy(command).to_ascii_uppercase()
    );
    let mut out = vec![Reply::status(header)];
    out.extend(lines.iter().map(|l| Reply::simple(l)));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}

// ---- helpers ----

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

fn strict_id(arg: &[u8]) -> Result<StreamId, ErrorReply> {
    parse_id(arg, 0, true, false)
        .map(|p| p.id)
        .ok_or(INVALID_ID)
}

/// Redis's `streamParseIntervalIDOrReply`: `(` makes the bound exclusive (and strict).
fn interval_id(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), ErrorReply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], missing_seq, true, false).ok_or(INVALID_ID)?;
        return Ok((id.id, true));
    }
    let id = parse_id(arg, missing_seq, false, false).ok_or(INVALID_ID)?;
    Ok((id.id, false))
}

fn start_bound(arg: &[u8]) -> Result<StreamId, ErrorReply> {
    match interval_id(arg, 0)? {
        (id, true) => id.incr().ok_or(BAD_START),
        (id, false) => Ok(id),
    }
}

fn end_bound(arg: &[u8]) -> Result<StreamId, ErrorReply> {
    match interval_id(arg, u64::MAX)? {
        (id, true) => id.decr().ok_or(BAD_END),
        (id, false) => Ok(id),
    }
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

fn entry_reply(id: StreamId, fields: FieldsRef) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.iter().map(Reply::bulk_slice).collect()),
    ])
}

fn int_reply(v: u64) -> Reply {
    Reply::Int(v as i64)
}

fn s(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn num(v: impl ToString) -> Bytes {
    Bytes::from(v.to_string())
}

fn replicating(ctx: &ExecCtx) -> bool {
    ctx.server.repl_active.load(Relaxed)
}

/// The stream at `key`: `Ok(None)` when missing, WRONGTYPE for other types.
fn lookup<'c>(
    ctx: &'c mut ExecCtx<'_>,
    key: &[u8],
    write: bool,
) -> Result<Option<&'c mut Stream>, ErrorReply> {
    let found = if write {
        ctx.lookup_write(key)
    } else {
        ctx.lookup_read(key)
    };
    match found {
        None => Ok(None),
        Some(Entry {
            value: Value::Stream(s),
            ..
        }) => Ok(Some(s)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

// ---- XADD / XTRIM argument parsing ----

struct TrimArgs {
    strategy: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN / MINID value (rewritten for propagation after `~`).
    strategy_arg: usize,
    /// XADD: the ID argument's index and its value (None for `*`).
    id_pos: usize,
    id: Option<crate::keyspace::stream::ParsedId>,
    no_mkstream: bool,
}

fn parse_trim_args(ctx: &ExecCtx, args: &[Bytes], xadd: bool) -> Result<TrimArgs, ErrorReply> {
    let mut t = TrimArgs {
        strategy: None,
        approx: false,
        limit: 0,
        strategy_arg: 0,
        id_pos: args.len(),
        id: None,
        no_mkstream: false,
    };
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            t.id_pos = i;
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if t.strategy.is_some() {
                return Err(MAXLEN_AND_MINID);
            }
            t.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if is(opt, "maxlen") {
                let n = ctx.int_arg(&args[i + 1])?;
                if n < 0 {
                    return Err(MAXLEN_NEGATIVE);
                }
                t.strategy = Some(Trim::MaxLen(n as u64));
            } else {
                t.strategy = Some(Trim::MinId(strict_id(&args[i + 1])?));
            }
            i += 1;
            t.strategy_arg = i;
        } else if is(opt, "limit") && more > 0 {
            limit = ctx.int_arg(&args[i + 1])?;
            if limit < 0 {
                return Err(LIMIT_NEGATIVE);
            }
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            t.no_mkstream = true;
        } else if xadd {
            t.id = Some(parse_id(opt, 0, true, true).ok_or(INVALID_ID)?);
            t.id_pos = i;
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if limit != 0 && t.strategy.is_none() {
        return Err(LIMIT_WITHOUT_STRATEGY);
    }
    if !xadd && t.strategy.is_none() {
        return Err(XTRIM_WITHOUT_STRATEGY);
    }
    if limit_given {
        if !t.approx {
            return Err(LIMIT_WITHOUT_APPROX);
        }
        t.limit = limit as u64;
    } else if t.approx {
        let per_node = ctx.server.config().stream_node_max_entries;
        let l = per_node.saturating_mul(100);
        t.limit = if l <= 0 { 10000 } else { l.min(1_000_000) } as u64;
    }
    Ok(t)
}

/// After an approximate trim, the command is propagated as the exact trim it turned out to
/// be: `=` and the resulting length or first ID.
fn rewrite_trim(argv: &mut [Bytes], t: &TrimArgs, stream: &Stream) {
    argv[t.strategy_arg - 1] = s("=");
    argv[t.strategy_arg] = match t.strategy {
        Some(Trim::MaxLen(_)) => num(stream.len()),
        _ => stream
            .first_entry()
            .map_or(s("0-0"), |(id, _)| id.to_bytes()),
    };
}

// ---- XADD XLEN XRANGE XREVRANGE XDEL XTRIM ----

fn xadd(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let t = parse_trim_args(ctx, args, true)?;
    let field_pos = t.id_pos + 1;
    if args.len() < field_pos + 2 || (args.len() - field_pos) % 2 == 1 {
        return Err(errors::wrong_arity("xadd"));
    }
    if let Some(p) = t.id {
        if p.seq_given && p.id.is_zero() {
            return Err(XADD_ID_ZERO);
        }
    }
    let (max_entries, max_bytes) = {
        let c = ctx.server.config();
        (c.stream_node_max_entries, c.stream_node_max_bytes)
    };
    let now = ctx.now_ms;
    if lookup(ctx, &args[1], true)?.is_none() {
        if t.no_mkstream {
            return Ok(Reply::Null);
        }
        ctx.set_key(&args[1], Value::Stream(Box::default()), false);
    }
    let stream = lookup(ctx, &args[1], true)?.expect("created above");
    if stream.last_id == StreamId::MAX {
        return Err(XADD_EXHAUSTED);
    }
    let id = match stream.next_id(t.id, now) {
        Ok(id) => id,
        Err(AddError::NotGreater) => return Err(XADD_ID_TOO_SMALL),
        Err(AddError::SeqExhausted) => return Err(TOO_LARGE),
    };
    if args[field_pos..].iter().map(|a| a.len()).sum::<usize>() > 1 << 30 {
        return Err(TOO_LARGE);
    }
    let fields = Fields::new(&args[field_pos..]);
    stream.append(id, fields, max_entries, max_bytes);
    let trimmed = match t.strategy {
        Some(strategy) => stream.trim(strategy, t.approx, t.limit),
        None => 0,
    };
    ctx.notify(notify::STREAM, "xadd", &args[1]);
    if trimmed > 0 {
        ctx.notify(notify::STREAM, "xtrim", &args[1]);
    }
    let mut argv = None;
    if replicating(ctx) && (t.approx || t.id.is_none_or(|p| !p.seq_given)) {
        let stream = lookup(ctx, &args[1], true)?.expect("present");
        let mut v = args.to_vec();
        if t.approx {
            rewrite_trim(&mut v, &t, stream);
        }
        if t.id.is_none_or(|p| !p.seq_given) {
            v[t.id_pos] = id.to_bytes();
        }
        argv = Some(v);
    }
    if let Some(v) = argv {
        ctx.propagate_as(v);
    }
    ctx.dirty(1);
    Ok(id_reply(id))
}

fn xlen(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(int_reply(
        lookup(ctx, &args[1], false)?.map_or(0, |s| s.len()),
    ))
}

fn xrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    range_generic(ctx, args, true)
}

fn range_generic(ctx: &mut ExecCtx, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = start_bound(start_arg)?;
    let end = end_bound(end_arg)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            count = ctx.int_arg(&args[j + 1])?.max(0);
            j += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let Some(stream) = lookup(ctx, &args[1], false)? else {
        return Ok(Reply::Array(vec![]));
    };
    if count == 0 {
        return Ok(Reply::NullArray);
    }
    let limit = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    Ok(Reply::Array(
        stream
            .range(start, end, rev)
            .take(limit)
            .map(|(id, f)| entry_reply(id, f))
            .collect(),
    ))
}

fn xdel(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if lookup(ctx, &args[1], true)?.is_none() {
        return Ok(Reply::Int(0));
    }
    let ids = args[2..]
        .iter()
        .map(|a| strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let stream = lookup(ctx, &args[1], true)?.expect("present");
    let deleted = ids.into_iter().filter(|id| stream.delete(*id)).count() as u64;
    if deleted > 0 {
        ctx.notify(notify::STREAM, "xdel", &args[1]);
    }
    ctx.dirty(deleted);
    Ok(int_reply(deleted))
}

fn xtrim(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let t = parse_trim_args(ctx, args, false)?;
    let Some(stream) = lookup(ctx, &args[1], true)? else {
        return Ok(Reply::Int(0));
    };
    let deleted = stream.trim(t.strategy.expect("checked"), t.approx, t.limit);
    if deleted > 0 && t.approx {
        let mut v = args.to_vec();
        rewrite_trim(&mut v, &t, stream);
        ctx.propagate_as(v);
    }
    if deleted > 0 {
        ctx.notify(notify::STREAM, "xtrim", &args[1]);
    }
    ctx.dirty(deleted);
    Ok(int_reply(deleted))
}

// ---- XREAD / XREADGROUP ----

fn xread(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    read_generic(ctx, args, false)
}

fn xreadgroup(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    read_generic(ctx, args, true)
}

/// Where a read starts for one stream.
#[derive(Clone, Copy)]
enum ReadFrom {
    /// Entries after this ID (`$` resolved, or an explicit ID).
    After(StreamId),
    /// `>`: entries the group has not delivered yet.
    New,
}

fn read_generic(ctx: &mut ExecCtx, args: &[Bytes], group_mode: bool) -> CmdResult {
    let mut block: Option<u64> = None;
    let mut count: u64 = 0;
    let mut streams_arg = 0;
    let mut noack = false;
    let mut group: Option<(Bytes, Bytes)> = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i][..];
        if is(o, "block") && more > 0 {
            if ctx.in_script {
                // Redis refuses BLOCK from scripts outright (not just answering at once).
                return Err(ErrorReply::owned(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                )));
            }
            i += 1;
            let ms = crate::util::parse_int(&args[i]).ok_or(errors::TIMEOUT_NOT_INT)?;
            if ms < 0 {
                return Err(errors::TIMEOUT_NEGATIVE);
            }
            block = Some(if ms == 0 {
                0
            } else {
                ctx.now_ms.saturating_add(ms as u64)
            });
        } else if is(o, "count") && more > 0 {
            i += 1;
            count = ctx.int_arg(&args[i])?.max(0) as u64;
        } else if is(o, "streams") && more > 0 {
            streams_arg = i + 1;
            if !(args.len() - streams_arg).is_multiple_of(2) {
                return Err(UNBALANCED);
            }
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_mode {
                return Err(GROUP_ONLY_XREADGROUP);
            }
            group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 2;
        } else if is(o, "noack") {
            if !group_mode {
                return Err(NOACK_ONLY_XREADGROUP);
            }
            noack = true;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    if streams_arg == 0 {
        return Err(errors::SYNTAX);
    }
    if group_mode && group.is_none() {
        return Err(MISSING_GROUP);
    }
    let n = (args.len() - streams_arg) / 2;
    let keys = &args[streams_arg..streams_arg + n];
    let id_args = &args[streams_arg + n..];
    let retry = ctx.client.block_retry;
    let mut from = Vec::with_capacity(n);
    for (key, id_arg) in keys.iter().zip(id_args) {
        let stream = match lookup(ctx, key, false) {
            Ok(s) => s,
            // A blocked XREAD ignores a key that changed type; XREADGROUP gives up.
            Err(_) if retry && group.is_none() => None,
            Err(_) if retry => return Err(BLOCKED_KEY_GONE),
            Err(e) => return Err(e),
        };
        if let Some((gname, _)) = &group {
            match &stream {
                None if retry => return Err(BLOCKED_KEY_GONE),
                Some(s) if retry && !s.groups.contains_key(&gname[..]) => {
                    return Err(BLOCKED_GROUP_GONE)
                }
                Some(s) if s.groups.contains_key(&gname[..]) => {}
                _ => {
                    return Err(ErrorReply::owned(format!(
                        "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                        cstr(key),
                        cstr(gname)
                    )))
                }
            }
        }
        if &id_arg[..] == b"$" {
            if group_mode {
                return Err(DOLLAR_IN_XREADGROUP);
            }
            from.push(ReadFrom::After(stream.map_or(StreamId::MIN, |s| s.last_id)));
        } else if &id_arg[..] == b">" {
            if !group_mode {
                return Err(GT_IN_XREAD);
            }
            from.push(ReadFrom::New);
        } else {
            from.push(ReadFrom::After(strict_id(id_arg)?));
        }
    }
    let mut served: Vec<(Bytes, Reply)> = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let stream = match lookup(ctx, key, false) {
            Ok(Some(s)) => s,
            _ => continue,
        };
        let entries = match &group {
            None => {
                let ReadFrom::After(gt) = from[k] else {
                    unreachable!("> is refused for XREAD")
                };
                if stream.is_empty() || stream.last_valid_id() <= gt {
                    continue;
                }
                let start = gt.incr().unwrap_or(StreamId::MIN);
                let limit = if count == 0 {
                    usize::MAX
                } else {
                    count as usize
                };
                Reply::Array(
                    stream
                        .range(start, StreamId::MAX, false)
                        .take(limit)
                        .map(|(id, f)| entry_reply(id, f))
                        .collect(),
                )
            }
            Some((gname, cname)) => {
                let (gname, cname) = (gname.clone(), cname.clone());
                match from[k] {
                    ReadFrom::After(gt) => {
                        let start = gt.incr().unwrap_or(StreamId::MIN);
                        read_history(ctx, key, &gname, &cname, start, count)
                    }
                    ReadFrom::New => {
                        let last = stream.groups[&gname[..]].last_id;
                        if stream.is_empty() || stream.last_valid_id() <= last {
                            continue;
                        }
                        let start = last.incr().unwrap_or(StreamId::MIN);
                        read_new(ctx, key, &gname, &cname, start, count, noack)
                    }
                }
            }
        };
        served.push((key.clone(), entries));
    }
    if group.is_some() {
        ctx.prevent_propagation();
    }
    if !served.is_empty() {
        if group.is_some() {
            ctx.dirty(served.len() as u64);
        }
        return Ok(if ctx.client.resp3 {
            Reply::Map(
                served
                    .into_iter()
                    .map(|(k, v)| (Reply::Bulk(k), v))
                    .collect(),
            )
        } else {
            Reply::Array(
                served
                    .into_iter()
                    .map(|(k, v)| Reply::Array(vec![Reply::Bulk(k), v]))
                    .collect(),
            )
        });
    }
    let Some(deadline) = block else {
        return Ok(Reply::NullArray);
    };
    // Re-run with `$` replaced by what it stood for, and Redis's default COUNT when woken.
    let mut retry_args = args.to_vec();
    for (k, f) in from.iter().enumerate() {
        if let (ReadFrom::After(id), true) = (f, &id_args[k][..] == b"$") {
            retry_args[streams_arg + n + k] = id.to_bytes();
        }
    }
    if count == 0 {
        // Just before STREAMS, so it overrides an explicit COUNT 0 too.
        retry_args.splice(streams_arg - 1..streams_arg - 1, [s("COUNT"), s("1000")]);
    }
    Ok(ctx.block_with_retry(keys.to_vec(), deadline, Reply::NullArray, retry_args))
}

/// Looks the group's consumer up, creating it (and refreshing its seen time); a created
/// consumer is announced with `created`.
fn touch_consumer(group: &mut Group, name: &[u8], now: u64, created: &dyn Fn()) -> bool {
    match group.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time_ms = now;
            false
        }
        None => {
            let new = group.create_consumer(name, now);
            if new {
                created();
            }
            new
        }
    }
}

/// Publishes the `xgroup-createconsumer` event for `key` (usable while the stream is
/// borrowed from the context).
fn consumer_created_event<'s>(ctx: &ExecCtx<'s>, key: &[u8]) -> impl Fn() + 's {
    let (server, db, now, key) = (ctx.server, ctx.db(), ctx.now_ms, key.to_vec());
    move || {
        super::pubsub::notify_keyspace_event(
            server,
            notify::STREAM,
            "xgroup-createconsumer",
            db,
            &key,
            now,
        )
    }
}

/// XREADGROUP with `>`: delivers new entries, adding them to the PEL unless NOACK.
fn read_new(
    ctx: &mut ExecCtx,
    key: &Bytes,
    gname: &Bytes,
    cname: &Bytes,
    start: StreamId,
    count: u64,
    noack: bool,
) -> Reply {
    let now = ctx.now_ms;
    let repl = replicating(ctx);
    let announce = consumer_created_event(ctx, key);
    let stream = lookup(ctx, key, false)
        .ok()
        .flatten()
        .expect("checked by the caller");
    let created = touch_consumer(
        stream.groups.get_mut(&gname[..]).expect("checked"),
        cname,
        now,
        &announce,
    );
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    let entries: Vec<(StreamId, Reply)> = stream
        .range(start, StreamId::MAX, false)
        .take(limit)
        .map(|(id, f)| (id, entry_reply(id, f)))
        .collect();
    let mut out = Vec::with_capacity(entries.len());
    let mut propagate = Vec::new();
    let mut advanced = false;
    for (id, reply) in entries {
        if id > stream.groups[&gname[..]].last_id {
            stream.advance_group(gname, id);
            advanced = true;
        }
        out.push(reply);
        if !noack {
            let group = stream.groups.get_mut(&gname[..]).expect("checked");
            group.assign(id, cname, now, 1);
            if repl {
                propagate.push(xclaim_argv(key, gname, cname, id, now, 1, group.last_id));
            }
        }
    }
    let group = &stream.groups[&gname[..]];
    if repl && noack {
        if created {
            propagate.insert(
                0,
                vec![
                    s("XGROUP"),
                    s("CREATECONSUMER"),
                    key.clone(),
                    gname.clone(),
                    cname.clone(),
                ],
            );
        }
        if advanced {
            propagate.push(setid_argv(key, gname, group));
        }
    }
    for argv in propagate {
        ctx.also_propagate(argv);
    }
    Reply::Array(out)
}

/// XREADGROUP with an ID: the consumer's own pending entries after it.
fn read_history(
    ctx: &mut ExecCtx,
    key: &Bytes,
    gname: &Bytes,
    cname: &Bytes,
    start: StreamId,
    count: u64,
) -> Reply {
    let now = ctx.now_ms;
    let announce = consumer_created_event(ctx, key);
    let stream = lookup(ctx, key, false)
        .ok()
        .flatten()
        .expect("checked by the caller");
    let group = stream.groups.get_mut(&gname[..]).expect("checked");
    touch_consumer(group, cname, now, &announce);
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    let ids: Vec<StreamId> = group.consumers[&cname[..]]
        .pel
        .range(start..)
        .take(limit)
        .copied()
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match stream.get(&id) {
            Some(fields) => {
                out.push(entry_reply(id, fields));
                let group = stream.groups.get_mut(&gname[..]).expect("checked");
                let nack = group
                    .pel
                    .get_mut(&id)
                    .expect("consumer PEL is in the group PEL");
                nack.delivery_time_ms = now;
                nack.delivery_count += 1;
            }
            None => out.push(Reply::Array(vec![id_reply(id), Reply::NullArray])),
        }
    }
    Reply::Array(out)
}

fn xclaim_argv(
    key: &Bytes,
    gname: &Bytes,
    consumer: &[u8],
    id: StreamId,
    time: u64,
    count: u64,
    last_id: StreamId,
) -> Vec<Bytes> {
    vec![
        s("XCLAIM"),
        key.clone(),
        gname.clone(),
        Bytes::copy_from_slice(consumer),
        s("0"),
        id.to_bytes(),
        s("TIME"),
        num(time),
        s("RETRYCOUNT"),
        num(count),
        s("FORCE"),
        s("JUSTID"),
        s("LASTID"),
        last_id.to_bytes(),
    ]
}

fn setid_argv(key: &Bytes, gname: &Bytes, group: &Group) -> Vec<Bytes> {
    vec![
        s("XGROUP"),
        s("SETID"),
        key.clone(),
        gname.clone(),
        group.last_id.to_bytes(),
        s("ENTRIESREAD"),
        num(group.entries_read),
    ]
}

// ---- XGROUP ----

fn xgroup_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        &args[0],
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}

/// Every XGROUP subcommand but HELP, checked in Redis's order: options, key type, key
/// existence (unless MKSTREAM), group existence, then the subcommand's own arity.
fn xgroup(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let (key, gname) = (&args[2], &args[3]);
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_INVALID;
    let mut i = 5;
    while i < args.len() {
        if sub == "create" && is(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (sub == "create" || sub == "setid")
            && is(&args[i], "entriesread")
            && i + 1 < args.len()
        {
            entries_read = ctx.int_arg(&args[i + 1])?;
            if entries_read < 0 && entries_read != ENTRIES_READ_INVALID {
                return Err(ENTRIESREAD_NEGATIVE);
            }
            i += 2;
        } else {
            return Err(subcommand_syntax_error(args));
        }
    }
    let exists = lookup(ctx, key, true)?.is_some();
    if !mkstream {
        let Some(stream) = lookup(ctx, key, true)? else {
            return Err(XGROUP_NEEDS_KEY);
        };
        if !stream.groups.contains_key(&gname[..])
            && matches!(sub.as_str(), "setid" | "createconsumer" | "delconsumer")
        {
            return Err(nogroup_for_key(gname, key));
        }
    }
    let now = ctx.now_ms;
    match sub.as_str() {
        "create" if (5..=8).contains(&args.len()) => {
            let id = if &args[4][..] == b"$" {
                lookup(ctx, key, true)?.map_or(StreamId::MIN, |s| s.last_id)
            } else {
                strict_id(&args[4])?
            };
            if !exists {
                ctx.set_key(key, Value::Stream(Box::default()), false);
            }
            let stream = lookup(ctx, key, true)?.expect("present");
            if stream.groups.contains_key(&gname[..]) {
                return Err(BUSYGROUP);
            }
            stream
                .groups
                .insert(gname[..].into(), Group::new(id, entries_read));
            ctx.dirty(1);
            ctx.notify(notify::STREAM, "xgroup-create", key);
            Ok(Reply::OK)
        }
        "setid" if args.len() == 5 || args.len() == 7 => {
            let stream = lookup(ctx, key, true)?.expect("checked");
            let id = if &args[4][..] == b"$" {
                stream.last_id
            } else {
                parse_id(&args[4], 0, false, false).ok_or(INVALID_ID)?.id
            };
            let group = stream.groups.get_mut(&gname[..]).expect("checked");
            group.last_id = id;
            group.entries_read = entries_read;
            ctx.dirty(1);
            ctx.notify(notify::STREAM, "xgroup-setid", key);
            Ok(Reply::OK)
        }
        "destroy" if args.len() == 4 => {
            let stream = lookup(ctx, key, true)?.expect("checked");
            if stream.groups.remove(&gname[..]).is_some() {
                ctx.dirty(1);
                ctx.notify(notify::STREAM, "xgroup-destroy", key);
                Ok(Reply::Int(1))
            } else {
                Ok(Reply::Int(0))
            }
        }
        "createconsumer" if args.len() == 5 => {
            let stream = lookup(ctx, key, true)?.expect("checked");
            let group = stream.groups.get_mut(&gname[..]).expect("checked");
            if group.create_consumer(&args[4], now) {
                ctx.dirty(1);
                ctx.notify(notify::STREAM, "xgroup-createconsumer", key);
                Ok(Reply::Int(1))
            } else {
                Ok(Reply::Int(0))
            }
        }
        "delconsumer" if args.len() == 5 => {
            let stream = lookup(ctx, key, true)?.expect("checked");
            let group = stream.groups.get_mut(&gname[..]).expect("checked");
            match group.delete_consumer(&args[4]) {
                Some(pending) => {
                    ctx.dirty(1);
                    ctx.notify(notify::STREAM, "xgroup-delconsumer", key);
                    Ok(Reply::Int(pending as i64))
                }
                None => Ok(Reply::Int(0)),
            }
        }
        _ => Err(subcommand_syntax_error(args)),
    }
}

// ---- XSETID ----

fn xsetid(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let id = strict_id(&args[2])?;
    let mut entries_added: i64 = -1;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "entriesadded") && more > 0 {
            entries_added = ctx.int_arg(&args[i + 1])?;
            if entries_added < 0 {
                return Err(ENTRIES_ADDED_NEGATIVE);
            }
            i += 2;
        } else if is(&args[i], "maxdeletedid") && more > 0 {
            max_deleted = strict_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(XSETID_BELOW_MAXDELETED);
            }
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let Some(stream) = lookup(ctx, &args[1], true)? else {
        return Err(errors::NO_SUCH_KEY);
    };
    if !stream.is_empty() {
        if id < stream.last_valid_id() {
            return Err(XSETID_TOO_SMALL);
        }
        if entries_added != -1 && stream.len() > entries_added as u64 {
            return Err(XSETID_ENTRIES_ADDED);
        }
    }
    stream.last_id = id;
    if entries_added != -1 {
        stream.entries_added = entries_added as u64;
    }
    if !max_deleted.is_zero() {
        stream.max_deleted_entry_id = max_deleted;
    }
    ctx.dirty(1);
    ctx.notify(notify::STREAM, "xsetid", &args[1]);
    Ok(Reply::OK)
}

// ---- XACK XPENDING ----

fn xack(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let has_group =
        lookup(ctx, &args[1], false)?.is_some_and(|s| s.groups.contains_key(&args[2][..]));
    if !has_group {
        return Ok(Reply::Int(0));
    }
    let ids = args[3..]
        .iter()
        .map(|a| strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let stream = lookup(ctx, &args[1], false)?.expect("present");
    let group = stream.groups.get_mut(&args[2][..]).expect("present");
    let acked = ids.into_iter().filter(|id| group.ack(*id)).count() as u64;
    ctx.dirty(acked);
    Ok(int_reply(acked))
}

fn xpending(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let argc = args.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(errors::SYNTAX);
    }
    let mut range = None;
    if argc >= 6 {
        let mut start_idx = 3;
        let mut min_idle = 0;
        if is(&args[3], "idle") {
            min_idle = ctx.int_arg(&args[4])?;
            if argc < 8 {
                return Err(errors::SYNTAX);
            }
            start_idx += 2;
        }
        let count = ctx.int_arg(&args[start_idx + 2])?.max(0);
        let start = start_bound(&args[start_idx])?;
        let end = end_bound(&args[start_idx + 1])?;
        let consumer = args.get(start_idx + 3).cloned();
        range = Some((min_idle, count, start, end, consumer));
    }
    let now = ctx.now_ms as i64;
    let group = lookup(ctx, &args[1], false)?.and_then(|s| s.groups.get(&args[2][..]));
    let Some(group) = group else {
        return Err(nogroup_key_or_group(&args[1], &args[2]));
    };
    let Some((min_idle, mut count, start, end, consumer)) = range else {
        if group.pel.is_empty() {
            return Ok(Reply::Array(vec![
                Reply::Int(0),
                Reply::Null,
                Reply::Null,
                Reply::NullArray,
            ]));
        }
        let first = *group.pel.keys().next().expect("not empty");
        let last = *group.pel.keys().next_back().expect("not empty");
        let per_consumer = group
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(name, c)| {
                Reply::Array(vec![Reply::bulk_slice(name), Reply::Bulk(num(c.pel.len()))])
            })
            .collect();
        return Ok(Reply::Array(vec![
            int_reply(group.pel.len() as u64),
            id_reply(first),
            id_reply(last),
            Reply::Array(per_consumer),
        ]));
    };
    let ids: Box<dyn Iterator<Item = &StreamId>> = match &consumer {
        Some(name) => match group.consumers.get(&name[..]) {
            Some(c) => Box::new(c.pel.range(start..)),
            None => return Ok(Reply::Array(vec![])),
        },
        None => Box::new(group.pel.range(start..).map(|(k, _)| k)),
    };
    let mut out = Vec::new();
    for id in ids {
        if count == 0 || *id > end {
            break;
        }
        let nack = &group.pel[id];
        let idle = now - nack.delivery_time_ms as i64;
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        count -= 1;
        out.push(Reply::Array(vec![
            id_reply(*id),
            Reply::bulk_slice(&nack.consumer),
            Reply::Int(idle.max(0)),
            int_reply(nack.delivery_count),
        ]));
    }
    Ok(Reply::Array(out))
}

// ---- XCLAIM XAUTOCLAIM ----

fn xclaim(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let gname = &args[2];
    let announce = consumer_created_event(ctx, key);
    let has_group = lookup(ctx, key, false)?.is_some_and(|s| s.groups.contains_key(&gname[..]));
    if !has_group {
        return Err(nogroup_key_or_group(key, gname));
    }
    let min_idle = crate::util::parse_int(&args[4])
        .ok_or(ErrorReply::fixed(
            "ERR Invalid min-idle-time argument for XCLAIM",
        ))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id(&args[j], 0, true, false) {
            Some(p) => ids.push((p.id, j)),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now_ms as i64;
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut delivery: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j][..];
        let int_or = |arg: &[u8], what: &'static str| {
            crate::util::parse_int(arg).ok_or(ErrorReply::fixed(what))
        };
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            delivery = now.wrapping_sub(int_or(
                &args[j],
                "ERR Invalid IDLE option argument for XCLAIM",
            )?);
        } else if is(opt, "time") && more > 0 {
            j += 1;
            delivery = int_or(&args[j], "ERR Invalid TIME option argument for XCLAIM")?;
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            retrycount = int_or(
                &args[j],
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            )?;
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = strict_id(&args[j])?;
        } else {
            return Err(ErrorReply::owned(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                cstr(opt)
            )));
        }
        j += 1;
    }
    let repl = replicating(ctx);
    let stream = lookup(ctx, key, false)?.expect("checked");
    let mut propagate = Vec::new();
    let mut dirty = 0;
    let mut propagate_last_id = false;
    {
        let group = stream.groups.get_mut(&gname[..]).expect("checked");
        if last_id > group.last_id {
            group.last_id = last_id;
            propagate_last_id = true;
        }
    }
    let delivery = if delivery == -1 || delivery < 0 || delivery > now {
        now
    } else {
        delivery
    } as u64;
    let cname = &args[3];
    let mut out = Vec::new();
    let mut consumer_touched = false;
    for (id, _) in ids {
        let exists = stream.get(&id).is_some();
        let group = stream.groups.get_mut(&gname[..]).expect("checked");
        let existing = group.pel.get(&id).cloned();
        if !exists {
            if let Some(nack) = existing {
                if repl {
                    propagate.push(xclaim_argv(
                        key,
                        gname,
                        &nack.consumer,
                        id,
                        nack.delivery_time_ms,
                        nack.delivery_count,
                        group.last_id,
                    ));
                }
                propagate_last_id = false;
                dirty += 1;
                group.ack(id);
            }
            continue;
        }
        // A FORCE-created entry has no owner yet, so the idle test does not apply to it.
        let count = match existing {
            Some(n) => {
                if min_idle > 0 && now - (n.delivery_time_ms as i64) < min_idle {
                    continue;
                }
                n.delivery_count
            }
            None if force => 1,
            None => continue,
        };
        if !consumer_touched {
            touch_consumer(group, cname, now as u64, &announce);
            consumer_touched = true;
        }
        let count = if retrycount >= 0 {
            retrycount as u64
        } else if !justid {
            count + 1
        } else {
            count
        };
        group.assign(id, cname, delivery, count);
        if repl {
            propagate.push(xclaim_argv(
                key,
                gname,
                cname,
                id,
                delivery,
                count,
                group.last_id,
            ));
        }
        propagate_last_id = false;
        dirty += 1;
        out.push(if justid {
            id_reply(id)
        } else {
            entry_reply(id, stream.get(&id).expect("exists"))
        });
    }
    if propagate_last_id {
        if repl {
            propagate.push(setid_argv(key, gname, &stream.groups[&gname[..]]));
        }
        dirty += 1;
    }
    for argv in propagate {
        ctx.also_propagate(argv);
    }
    ctx.dirty(dirty);
    ctx.prevent_propagation();
    Ok(Reply::Array(out))
}

fn xautoclaim(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let gname = &args[2];
    let announce = consumer_created_event(ctx, key);
    let min_idle = crate::util::parse_int(&args[4])
        .ok_or(ErrorReply::fixed(
            "ERR Invalid min-idle-time argument for XAUTOCLAIM",
        ))?
        .max(0);
    let start = start_bound(&args[5])?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "count") && more > 0 {
            count = crate::util::parse_int(&args[j + 1])
                .filter(|c| (1..=i64::MAX / 16).contains(c))
                .ok_or(COUNT_POSITIVE)?;
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    let has_group = lookup(ctx, key, false)?.is_some_and(|s| s.groups.contains_key(&gname[..]));
    if !has_group {
        return Err(nogroup_key_or_group(key, gname));
    }
    let now = ctx.now_ms;
    let repl = replicating(ctx);
    let cname = &args[3];
    let stream = lookup(ctx, key, false)?.expect("checked");
    let mut attempts = count.saturating_mul(10);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut propagate = Vec::new();
    let mut dirty = 0;
    let mut consumer_touched = false;
    let mut cursor = start;
    let mut next_id = StreamId::MIN;
    loop {
        let group = stream.groups.get_mut(&gname[..]).expect("checked");
        let next = group
            .pel
            .range(cursor..)
            .next()
            .map(|(id, n)| (*id, n.clone()));
        if attempts == 0 || count == 0 {
            next_id = next.map_or(StreamId::MIN, |(id, _)| id);
            break;
        }
        attempts -= 1;
        let Some((id, nack)) = next else {
            break;
        };
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let last_possible = id == StreamId::MAX;
        if stream.get(&id).is_none() {
            let group = stream.groups.get_mut(&gname[..]).expect("checked");
            if repl {
                propagate.push(xclaim_argv(
                    key,
                    gname,
                    &nack.consumer,
                    id,
                    nack.delivery_time_ms,
                    nack.delivery_count,
                    group.last_id,
                ));
            }
            dirty += 1;
            group.ack(id);
            deleted.push(id_reply(id));
            count -= 1;
        } else if min_idle == 0 || (now as i64 - nack.delivery_time_ms as i64) >= min_idle {
            let group = stream.groups.get_mut(&gname[..]).expect("checked");
            if !consumer_touched {
                touch_consumer(group, cname, now, &announce);
                consumer_touched = true;
            }
            let delivery_count = nack.delivery_count + u64::from(!justid);
            group.assign(id, cname, now, delivery_count);
            if repl {
                propagate.push(xclaim_argv(
                    key,
                    gname,
                    cname,
                    id,
                    now,
                    delivery_count,
                    group.last_id,
                ));
            }
            dirty += 1;
            claimed.push(if justid {
                id_reply(id)
            } else {
                entry_reply(id, stream.get(&id).expect("exists"))
            });
            count -= 1;
        }
        if last_possible {
            break;
        }
    }
    for argv in propagate {
        ctx.also_propagate(argv);
    }
    ctx.dirty(dirty);
    ctx.prevent_propagation();
    Ok(Reply::Array(vec![
        id_reply(next_id),
        Reply::Array(claimed),
        Reply::Array(deleted),
    ]))
}

// ---- XINFO ----

fn xinfo_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        &args[0],
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}

fn existing<'c>(ctx: &'c mut ExecCtx<'_>, key: &[u8]) -> Result<&'c mut Stream, ErrorReply> {
    lookup(ctx, key, false)?.ok_or(errors::NO_SUCH_KEY)
}

fn pair(name: &'static str, value: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(name), value)
}

fn nullable(v: Option<i64>) -> Reply {
    v.map_or(Reply::Null, Reply::Int)
}

fn xinfo_consumers(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let now = ctx.now_ms as i64;
    let stream = existing(ctx, &args[2])?;
    let Some(group) = stream.groups.get(&args[3][..]) else {
        return Err(nogroup_for_key(&args[3], &args[2]));
    };
    Ok(Reply::Array(
        group
            .consumers
            .iter()
            .map(|(name, c)| {
                Reply::Map(vec![
                    pair("name", Reply::bulk_slice(name)),
                    pair("pending", int_reply(c.pel.len() as u64)),
                    pair("idle", Reply::Int((now - c.seen_time_ms as i64).max(0))),
                ])
            })
            .collect(),
    ))
}

fn xinfo_groups(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let stream = existing(ctx, &args[2])?;
    Ok(Reply::Array(
        stream
            .groups
            .iter()
            .map(|(name, g)| {
                Reply::Map(vec![
                    pair("name", Reply::bulk_slice(name)),
                    pair("consumers", int_reply(g.consumers.len() as u64)),
                    pair("pending", int_reply(g.pel.len() as u64)),
                    pair("last-delivered-id", id_reply(g.last_id)),
                    pair(
                        "entries-read",
                        nullable(
                            (g.entries_read != ENTRIES_READ_INVALID).then_some(g.entries_read),
                        ),
                    ),
                    pair("lag", nullable(stream.group_lag(g))),
                ])
            })
            .collect(),
    ))
}

fn xinfo_stream(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let opts = &args[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return Err(subcommand_syntax_error(args));
        }
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return Err(subcommand_syntax_error(args));
            }
            count = ctx.int_arg(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
        full = true;
    }
    let stream = existing(ctx, &args[2])?;
    let mut map = vec![
        pair("length", int_reply(stream.len())),
        pair("radix-tree-keys", int_reply(stream.nodes().len() as u64)),
        pair("radix-tree-nodes", int_reply(stream.radix_tree_nodes())),
        pair("last-generated-id", id_reply(stream.last_id)),
        pair(
            "max-deleted-entry-id",
            id_reply(stream.max_deleted_entry_id),
        ),
        pair("entries-added", int_reply(stream.entries_added)),
        pair("recorded-first-entry-id", id_reply(stream.first_id)),
    ];
    if !full {
        map.push(pair("groups", int_reply(stream.groups.len() as u64)));
        map.push(pair(
            "first-entry",
            stream
                .first_entry()
                .map_or(Reply::Null, |(id, f)| entry_reply(id, f)),
        ));
        map.push(pair(
            "last-entry",
            stream
                .last_entry()
                .map_or(Reply::Null, |(id, f)| entry_reply(id, f)),
        ));
        return Ok(Reply::Map(map));
    }
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    map.push(pair(
        "entries",
        Reply::Array(
            stream
                .range(StreamId::MIN, StreamId::MAX, false)
                .take(limit)
                .map(|(id, f)| entry_reply(id, f))
                .collect(),
        ),
    ));
    let groups = stream
        .groups
        .iter()
        .map(|(name, g)| {
            let pending = g
                .pel
                .iter()
                .take(limit)
                .map(|(id, n)| {
                    Reply::Array(vec![
                        id_reply(*id),
                        Reply::bulk_slice(&n.consumer),
                        int_reply(n.delivery_time_ms),
                        int_reply(n.delivery_count),
                    ])
                })
                .collect();
            let consumers = g
                .consumers
                .iter()
                .map(|(cname, c)| {
                    let pending = c
                        .pel
                        .iter()
                        .take(limit)
                        .map(|id| {
                            let n = &g.pel[id];
                            Reply::Array(vec![
                                id_reply(*id),
                                int_reply(n.delivery_time_ms),
                                int_reply(n.delivery_count),
                            ])
                        })
                        .collect();
                    Reply::Map(vec![
                        pair("name", Reply::bulk_slice(cname)),
                        pair("seen-time", int_reply(c.seen_time_ms)),
                        pair("pel-count", int_reply(c.pel.len() as u64)),
                        pair("pending", Reply::Array(pending)),
                    ])
                })
                .collect();
            Reply::Map(vec![
                pair("name", Reply::bulk_slice(name)),
                pair("last-delivered-id", id_reply(g.last_id)),
                pair(
                    "entries-read",
                    nullable((g.entries_read != ENTRIES_READ_INVALID).then_some(g.entries_read)),
                ),
                pair("lag", nullable(stream.group_lag(g))),
                pair("pel-count", int_reply(g.pel.len() as u64)),
                pair("pending", Reply::Array(pending)),
                pair("consumers", Reply::Array(consumers)),
            ])
        })
        .collect();
    map.push(pair("groups", Reply::Array(groups)));
    Ok(Reply::Map(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs stream commands (subcommands included) the way dispatch would, all shards locked.
    struct Harness {
        server: ServerState,
        client: ClientState,
        last: crate::commands::context::Effects,
    }

    impl Harness {
        fn new() -> Harness {
            let server = ServerState::for_tests();
            server.repl_active.store(true, Relaxed);
            Harness {
                server,
                client: crate::commands::test_support::test_client(NOW_MS),
                last: Default::default(),
            }
        }

        fn run(&mut self, argv: &[&str]) -> CmdResult {
            let args: Vec<Bytes> = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            let name = argv[0].to_ascii_lowercase();
            let mut spec = COMMANDS
                .iter()
                .find(|c| c.name == name)
                .expect("a stream command");
            if !spec.subcommands.is_empty() {
                let sub = argv[1].to_ascii_lowercase();
                spec = spec
                    .subcommands
                    .iter()
                    .find(|c| c.name == sub)
                    .expect("a subcommand");
            }
            assert!(spec.arity_ok(args.len()), "arity of {argv:?}");
            let ks = self.server.keyspace.lock_all();
            let mut ctx = ExecCtx::new(NOW_MS * 1000, Some(ks), &mut self.client, &self.server);
            let result = (spec.handler)(&mut ctx, &args);
            self.last = std::mem::take(&mut ctx.effects);
            result
        }

        fn ok(&mut self, argv: &[&str]) -> Reply {
            self.run(argv)
                .unwrap_or_else(|e| panic!("{argv:?} failed: {}", e.text()))
        }
    }

    fn strs(v: &[Bytes]) -> Vec<String> {
        v.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn xadd_star_takes_the_command_time_and_propagates_the_id_it_chose() {
        let mut h = Harness::new();
        let want = format!("{NOW_MS}-0");
        assert_eq!(
            h.ok(&["XADD", "s", "*", "f", "v"]),
            Reply::bulk(want.clone())
        );
        assert_eq!(
            strs(h.last.rewrite.as_ref().unwrap()),
            ["XADD", "s", &want, "f", "v"]
        );
        assert_eq!(
            h.ok(&["XADD", "s", "*", "f", "v"]),
            Reply::bulk(format!("{NOW_MS}-1"))
        );
        h.ok(&["XADD", "s", "MAXLEN", "~", "1", "*", "f", "v"]);
        let argv = strs(h.last.rewrite.as_ref().unwrap());
        assert_eq!(argv[..5], ["XADD", "s", "MAXLEN", "=", "3"]);
    }

    #[test]
    fn blocked_xread_waits_after_the_id_dollar_stood_for() {
        let mut h = Harness::new();
        h.ok(&["XADD", "s", "5-1", "f", "v"]);
        assert_eq!(
            h.ok(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
            Reply::NoReply
        );
        let block = h.last.blocked().expect("blocked");
        assert_eq!(block.deadline_ms, 0);
        let retry = strs(block.retry_args.as_ref().unwrap());
        assert_eq!(
            retry,
            ["XREAD", "BLOCK", "0", "COUNT", "1000", "STREAMS", "s", "5-1"]
        );
        h.ok(&["XREAD", "BLOCK", "100", "STREAMS", "s", "5-1"]);
        assert_eq!(h.last.blocked().unwrap().deadline_ms, NOW_MS + 100);
    }

    #[test]
    fn xreadgroup_propagates_one_xclaim_per_delivered_entry() {
        let mut h = Harness::new();
        h.ok(&["XADD", "s", "1-1", "f", "v"]);
        h.ok(&["XADD", "s", "2-1", "f", "v"]);
        h.ok(&["XGROUP", "CREATE", "s", "g", "0"]);
        h.ok(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]);
        assert!(h.last.prevent_propagation);
        let props: Vec<Vec<String>> = h.last.propagate.iter().map(|(_, v)| strs(v)).collect();
        let time = NOW_MS.to_string();
        assert_eq!(
            props,
            [
                [
                    "XCLAIM",
                    "s",
                    "g",
                    "alice",
                    "0",
                    "1-1",
                    "TIME",
                    &time,
                    "RETRYCOUNT",
                    "1",
                    "FORCE",
                    "JUSTID",
                    "LASTID",
                    "1-1"
                ],
                [
                    "XCLAIM",
                    "s",
                    "g",
                    "alice",
                    "0",
                    "2-1",
                    "TIME",
                    &time,
                    "RETRYCOUNT",
                    "1",
                    "FORCE",
                    "JUSTID",
                    "LASTID",
                    "2-1"
                ],
            ]
        );
        h.ok(&["XADD", "s", "3-1", "f", "v"]);
        h.ok(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "NOACK",
            "STREAMS",
            "s",
            ">",
        ]);
        let props: Vec<Vec<String>> = h.last.propagate.iter().map(|(_, v)| strs(v)).collect();
        assert_eq!(
            props,
            [
                vec!["XGROUP", "CREATECONSUMER", "s", "g", "bob"],
                vec!["XGROUP", "SETID", "s", "g", "3-1", "ENTRIESREAD", "3"],
            ]
        );
    }

    #[test]
    fn xclaim_lastid_alone_propagates_as_setid() {
        let mut h = Harness::new();
        h.ok(&["XADD", "s", "1-1", "f", "v"]);
        h.ok(&["XGROUP", "CREATE", "s", "g", "0"]);
        assert_eq!(
            h.ok(&["XCLAIM", "s", "g", "c", "0", "9-9", "LASTID", "5-5"]),
            Reply::Array(vec![])
        );
        let props: Vec<Vec<String>> = h.last.propagate.iter().map(|(_, v)| strs(v)).collect();
        assert_eq!(
            props,
            [["XGROUP", "SETID", "s", "g", "5-5", "ENTRIESREAD", "-1"]]
        );
        assert_eq!(h.last.dirty, 1);
    }
}

//! The list family: LPUSH RPUSH LPUSHX RPUSHX LINSERT LLEN LINDEX LSET LRANGE LTRIM LREM
//! LPOS LPOP RPOP LMPOP LMOVE RPOPLPUSH, and the blocking BLPOP BRPOP BLMPOP BLMOVE
//! BRPOPLPUSH (which serve at once when they can and otherwise park the client through
//! `ExecCtx::block`; a served blocking pop is propagated as its non-blocking form). Replies,
//! error texts, the order in which arguments and keys are checked, and dirty counts follow
//! Redis 7.0's `t_list.c`. Empty lists are deleted.

use super::context::ExecCtx;
use super::errors;
use super::pubsub::ReplyCut;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec,
};
use crate::config::values::notify;
use crate::keyspace::list::{End, List};
use crate::keyspace::{Entry, Value};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const LIST: u32 = acl::LIST;

const KEY_RO: &[KeySpec] = &[KeySpec::single(1, kflag::RO)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_RW_INSERT: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::INSERT)];
const KEY_RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)];
const KEY_RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::DELETE)];
const KEY_POP: &[KeySpec] = &[KeySpec::single(
    1,
    kflag::RW | kflag::ACCESS | kflag::DELETE,
)];
const MOVE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RW | kflag::ACCESS | kflag::DELETE),
    KeySpec::single(2, kflag::RW | kflag::INSERT),
];
const BPOP_KEYS: &[KeySpec] = &[KeySpec::range(
    1,
    -2,
    1,
    kflag::RW | kflag::ACCESS | kflag::DELETE,
)];
const BLMPOP_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kflag::RW | kflag::ACCESS | kflag::DELETE,
    begin: BeginSearch::Index(2),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const LMPOP_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kflag::RW | kflag::ACCESS | kflag::DELETE,
    begin: BeginSearch::Index(1),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];

pub const COMMANDS: &[C] = &[
    C::new(
        "lpush",
        -3,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_RW_INSERT,
        "list",
        "1.0.0",
        lpush,
    ),
    C::new(
        "rpush",
        -3,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_RW_INSERT,
        "list",
        "1.0.0",
        rpush,
    ),
    C::new(
        "lpushx",
        -3,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_RW_INSERT,
        "list",
        "2.2.0",
        lpushx,
    ),
    C::new(
        "rpushx",
        -3,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_RW_INSERT,
        "list",
        "2.2.0",
        rpushx,
    ),
    C::new(
        "linsert",
        5,
        WRITE | DENYOOM,
        LIST,
        KEY_RW_INSERT,
        "list",
        "2.2.0",
        linsert,
    ),
    C::new(
        "llen",
        2,
        READONLY | FAST,
        LIST,
        KEY_RO,
        "list",
        "1.0.0",
        llen,
    ),
    C::new(
        "lindex",
        3,
        READONLY,
        LIST,
        KEY_RO_ACCESS,
        "list",
        "1.0.0",
        lindex,
    ),
    C::new(
        "lset",
        4,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_RW_UPDATE,
        "list",
        "1.0.0",
        lset,
    ),
    C::new(
        "lrange",
        4,
        READONLY,
        LIST,
        KEY_RO_ACCESS,
        "list",
        "1.0.0",
        lrange,
    ),
    C::new(
        "ltrim",
        4,
        WRITE,
        LIST,
        KEY_RW_DELETE,
        "list",
        "1.0.0",
        ltrim,
    ),
    C::new("lrem", 4, WRITE, LIST, KEY_RW_DELETE, "list", "1.0.0", lrem),
    C::new(
        "lpos",
        -3,
        READONLY,
        LIST,
        KEY_RO_ACCESS,
        "list",
        "6.0.6",
        lpos,
    ),
    C::new(
        "lpop",
        -2,
        WRITE | FAST | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_POP,
        "list",
        "1.0.0",
        lpop,
    ),
    C::new(
        "rpop",
        -2,
        WRITE | FAST | REPLY_BEFORE_EVENTS,
        LIST,
        KEY_POP,
        "list",
        "1.0.0",
        rpop,
    ),
    C::new("lmpop", -4, WRITE, LIST, LMPOP_KEYS, "list", "7.0.0", lmpop),
    C::new(
        "lmove",
        5,
        WRITE | DENYOOM,
        LIST,
        MOVE_KEYS,
        "list",
        "6.2.0",
        lmove,
    ),
    C::new(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        LIST,
        MOVE_KEYS,
        "list",
        "1.2.0",
        rpoplpush,
    ),
    C::new(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        LIST,
        BPOP_KEYS,
        "list",
        "2.0.0",
        blpop,
    ),
    C::new(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        LIST,
        BPOP_KEYS,
        "list",
        "2.0.0",
        brpop,
    ),
    C::new(
        "blmpop",
        -5,
        WRITE | BLOCKING,
        LIST,
        BLMPOP_KEYS,
        "list",
        "7.0.0",
        blmpop,
    ),
    C::new(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        LIST,
        MOVE_KEYS,
        "list",
        "6.2.0",
        blmove,
    ),
    C::new(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        LIST,
        MOVE_KEYS,
        "list",
        "2.2.0",
        brpoplpush,
    ),
];

const INDEX_OUT_OF_RANGE: ErrorReply = ErrorReply::fixed("ERR index out of range");
const COUNT_NOT_POSITIVE: ErrorReply =
    ErrorReply::fixed("ERR value is out of range, must be positive");
const LPOS_RANK_ZERO: ErrorReply = ErrorReply::fixed(
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
);
const LPOS_COUNT_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR COUNT can't be negative");
const LPOS_MAXLEN_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR MAXLEN can't be negative");
const MPOP_COUNT_NOT_POSITIVE: ErrorReply = ErrorReply::fixed("ERR count should be greater than 0");

fn as_list(entry: Option<&mut Entry>) -> Result<Option<&mut List>, ErrorReply> {
    match entry {
        None => Ok(None),
        Some(Entry {
            value: Value::List(l),
            ..
        }) => Ok(Some(l)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Redis's `lookupKeyRead` + `checkType(OBJ_LIST)`.
fn read_list<'c>(ctx: &'c mut ExecCtx<'_>, key: &[u8]) -> Result<Option<&'c mut List>, ErrorReply> {
    as_list(ctx.lookup_read(key))
}

/// Redis's `lookupKeyWrite` + `checkType(OBJ_LIST)`.
fn write_list<'c>(
    ctx: &'c mut ExecCtx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut List>, ErrorReply> {
    as_list(ctx.lookup_write(key))
}

fn bulk(item: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(item))
}

/// LEFT / RIGHT (Redis's `getListPositionFromObjectOrReply`).
fn parse_end(arg: &[u8]) -> Result<End, ErrorReply> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Head)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Tail)
    } else {
        Err(errors::SYNTAX)
    }
}

/// Redis's `getRangeLongFromObjectOrReply` with one message for every failure.
fn parse_range(arg: &[u8], min: i64, err: ErrorReply) -> Result<i64, ErrorReply> {
    crate::util::parse_int(arg).filter(|v| *v >= min).ok_or(err)
}

fn push(ctx: &mut ExecCtx, args: &[Bytes], end: End, only_existing: bool) -> CmdResult {
    let key = &args[1];
    let len = match write_list(ctx, key)? {
        Some(list) => {
            for item in &args[2..] {
                list.push(end, item);
            }
            list.len()
        }
        None if only_existing => return Ok(Reply::Int(0)),
        None => {
            let mut list = List::new();
            for item in &args[2..] {
                list.push(end, item);
            }
            let len = list.len();
            ctx.set_key(key, Value::List(Box::new(list)), false);
            len
        }
    };
    ctx.dirty((args.len() - 2) as u64);
    ctx.notify(notify::LIST, push_event(end), key);
    Ok(Reply::Int(len as i64))
}

fn lpush(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Head, false)
}

fn rpush(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Tail, false)
}

fn lpushx(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Head, true)
}

fn rpushx(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    push(ctx, args, End::Tail, true)
}

fn linsert(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let after = if args[2].eq_ignore_ascii_case(b"after") {
        true
    } else if args[2].eq_ignore_ascii_case(b"before") {
        false
    } else {
        return Err(errors::SYNTAX);
    };
    let Some(list) = write_list(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    if !list.insert_at_pivot(&args[3], &args[4], after) {
        return Ok(Reply::Int(-1));
    }
    let len = list.len();
    ctx.dirty(1);
    ctx.notify(notify::LIST, "linsert", &args[1]);
    Ok(Reply::Int(len as i64))
}

fn llen(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let len = read_list(ctx, &args[1])?.map_or(0, |l| l.len());
    Ok(Reply::Int(len as i64))
}

fn lindex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(list) = read_list(ctx, &args[1])? else {
        return Ok(Reply::Null);
    };
    let index = crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?;
    Ok(list.get(index).map_or(Reply::Null, bulk))
}

fn lset(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(list) = write_list(ctx, &args[1])? else {
        return Err(errors::NO_SUCH_KEY);
    };
    let index = crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?;
    if !list.set(index, &args[3]) {
        return Err(INDEX_OUT_OF_RANGE);
    }
    ctx.dirty(1);
    ctx.notify(notify::LIST, "lset", &args[1]);
    Ok(Reply::OK)
}

fn lrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let start = ctx.int_arg(&args[2])?;
    let end = ctx.int_arg(&args[3])?;
    let Some(list) = read_list(ctx, &args[1])? else {
        return Ok(Reply::Array(Vec::new()));
    };
    Ok(Reply::Array(list.range(start, end).map(bulk).collect()))
}

fn ltrim(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let start = ctx.int_arg(&args[2])?;
    let end = ctx.int_arg(&args[3])?;
    let Some(list) = write_list(ctx, &args[1])? else {
        return Ok(Reply::OK);
    };
    let removed = list.trim(start, end);
    let emptied = list.is_empty();
    ctx.notify(notify::LIST, "ltrim", &args[1]);
    if emptied {
        ctx.delete_emptied(&args[1]);
    }
    ctx.dirty(removed as u64);
    Ok(Reply::OK)
}

fn lrem(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let count = ctx.int_arg(&args[2])?;
    let Some(list) = write_list(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let removed = list.remove_matching(&args[3], count);
    let emptied = list.is_empty();
    if removed > 0 {
        ctx.notify(notify::LIST, "lrem", &args[1]);
    }
    if emptied {
        ctx.delete_emptied(&args[1]);
    }
    ctx.dirty(removed as u64);
    Ok(Reply::Int(removed as i64))
}

fn lpos(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None::<i64>, 0i64);
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        let has_value = i + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"rank") && has_value {
            rank = ctx.int_arg(&args[i + 1])?;
            if rank == 0 {
                return Err(LPOS_RANK_ZERO);
            }
        } else if opt.eq_ignore_ascii_case(b"count") && has_value {
            count = Some(parse_range(&args[i + 1], 0, LPOS_COUNT_NEGATIVE)?);
        } else if opt.eq_ignore_ascii_case(b"maxlen") && has_value {
            maxlen = parse_range(&args[i + 1], 0, LPOS_MAXLEN_NEGATIVE)?;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    let Some(list) = read_list(ctx, &args[1])? else {
        return Ok(match count {
            Some(_) => Reply::Array(Vec::new()),
            None => Reply::Null,
        });
    };
    let wanted = count.map_or(1, |c| c as usize);
    let found = list.positions(&args[2], rank, wanted, maxlen as usize);
    Ok(match count {
        Some(_) => Reply::Array(found.iter().map(|p| Reply::Int(*p as i64)).collect()),
        None => found.first().map_or(Reply::Null, |p| Reply::Int(*p as i64)),
    })
}

fn lpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Head)
}

fn rpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    pop(ctx, args, End::Tail)
}

/// LPOP / RPOP key [count]. Without a count the reply is one element (or null); with one it
/// is an array (or a null array when the key does not exist).
fn pop(ctx: &mut ExecCtx, args: &[Bytes], end: End) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::wrong_arity(ctx.current_command));
    }
    let count = match args.get(2) {
        Some(arg) => Some(parse_range(arg, 0, COUNT_NOT_POSITIVE)?),
        None => None,
    };
    let key = &args[1];
    let Some(list) = write_list(ctx, key)? else {
        return Ok(match count {
            Some(_) => Reply::NullArray,
            None => Reply::Null,
        });
    };
    let reply = match count {
        Some(0) => return Ok(Reply::Array(Vec::new())),
        None => bulk(&list.pop(end).expect("stored lists are never empty")),
        Some(c) => Reply::Array(
            list.pop_many(end, c as usize)
                .iter()
                .map(|i| bulk(i))
                .collect(),
        ),
    };
    let popped = match &reply {
        Reply::Array(items) => items.len(),
        _ => 1,
    };
    let emptied = list.is_empty();
    popped_from(ctx, key, end, emptied);
    ctx.dirty(popped as u64);
    Ok(reply)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]: pops from the first non-empty
/// list and replies with its name and the elements.
fn lmpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 1)?;
    match mpop(ctx, keys, end, count)? {
        Some(reply) => Ok(reply),
        None => Ok(Reply::NullArray),
    }
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count].
fn blmpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = parse_mpop(args, 2)?;
    let deadline = ctx.timeout_arg(&args[1])?;
    match mpop(ctx, keys, end, count)? {
        Some(reply) => Ok(reply),
        None => Ok(ctx.block(keys.to_vec(), deadline, Reply::NullArray)),
    }
}

/// The keys, end and count of LMPOP / BLMPOP, with numkeys at `numkeys_idx`.
fn parse_mpop(args: &[Bytes], numkeys_idx: usize) -> Result<(&[Bytes], End, usize), ErrorReply> {
    let numkeys = parse_range(&args[numkeys_idx], 1, errors::NUMKEYS_ZERO_OR_NEGATIVE)?;
    let where_idx = (numkeys as u64).saturating_add(numkeys_idx as u64 + 1);
    if where_idx >= args.len() as u64 {
        return Err(errors::SYNTAX);
    }
    let where_idx = where_idx as usize;
    let end = parse_end(&args[where_idx])?;
    let mut count = None;
    let mut i = where_idx + 1;
    while i < args.len() {
        if count.is_none() && args[i].eq_ignore_ascii_case(b"count") && i + 1 < args.len() {
            count = Some(parse_range(&args[i + 1], 1, MPOP_COUNT_NOT_POSITIVE)?);
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok((
        &args[numkeys_idx + 1..where_idx],
        end,
        count.unwrap_or(1) as usize,
    ))
}

/// Pops up to `count` elements from the first non-empty list; None when all are empty.
fn mpop(
    ctx: &mut ExecCtx,
    keys: &[Bytes],
    end: End,
    count: usize,
) -> Result<Option<Reply>, ErrorReply> {
    for key in keys {
        let Some(list) = write_list(ctx, key)? else {
            continue;
        };
        let items: Vec<Reply> = list.pop_many(end, count).iter().map(|i| bulk(i)).collect();
        let emptied = list.is_empty();
        popped_from(ctx, key, end, emptied);
        ctx.dirty(items.len() as u64);
        ctx.propagate_as(vec![
            pop_name(end),
            key.clone(),
            Bytes::from(items.len().to_string()),
        ]);
        return Ok(Some(Reply::Array(vec![
            Reply::Bulk(key.clone()),
            Reply::Array(items),
        ])));
    }
    Ok(None)
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Head => "lpush",
        End::Tail => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Head => "lpop",
        End::Tail => "rpop",
    }
}

/// After elements were popped from `key`: the pop event, and the key's deletion when that
/// emptied it. Redis has written the reply by then.
fn popped_from(ctx: &mut ExecCtx, key: &[u8], end: End, emptied: bool) {
    ctx.reply_cut(ReplyCut::Rest);
    ctx.notify(notify::LIST, pop_event(end), key);
    if emptied {
        ctx.delete_emptied(key);
    }
}

fn pop_name(end: End) -> Bytes {
    match end {
        End::Head => Bytes::from_static(b"LPOP"),
        End::Tail => Bytes::from_static(b"RPOP"),
    }
}

fn blpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    blocking_pop(ctx, args, End::Head)
}

fn brpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    blocking_pop(ctx, args, End::Tail)
}

/// BLPOP / BRPOP key [key ...] timeout: one element from the first non-empty list, as
/// [key, element].
fn blocking_pop(ctx: &mut ExecCtx, args: &[Bytes], end: End) -> CmdResult {
    let deadline = ctx.timeout_arg(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    for key in keys {
        let Some(list) = write_list(ctx, key)? else {
            continue;
        };
        let item = list.pop(end).expect("stored lists are never empty");
        let emptied = list.is_empty();
        popped_from(ctx, key, end, emptied);
        ctx.dirty(1);
        ctx.propagate_as(vec![pop_name(end), key.clone()]);
        return Ok(Reply::Array(vec![Reply::Bulk(key.clone()), bulk(&item)]));
    }
    Ok(ctx.block(keys.to_vec(), deadline, Reply::NullArray))
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
fn blmove(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    let deadline = ctx.timeout_arg(&args[5])?;
    blocking_move(ctx, args, from, to, deadline)
}

/// BRPOPLPUSH source destination timeout.
fn brpoplpush(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let deadline = ctx.timeout_arg(&args[3])?;
    blocking_move(ctx, args, End::Tail, End::Head, deadline)
}

fn blocking_move(
    ctx: &mut ExecCtx,
    args: &[Bytes],
    from: End,
    to: End,
    deadline: u64,
) -> CmdResult {
    if write_list(ctx, &args[1])?.is_none() {
        // Redis answers a null bulk where it may not block, but a null array on timeout.
        if ctx.deny_blocking {
            return Ok(Reply::Null);
        }
        return Ok(ctx.block(vec![args[1].clone()], deadline, Reply::NullArray));
    }
    let reply = move_element(ctx, &args[1], &args[2], from, to)?;
    let mut argv = match args.len() {
        6 => vec![Bytes::from_static(b"LMOVE")],
        _ => vec![Bytes::from_static(b"RPOPLPUSH")],
    };
    argv.extend_from_slice(&args[1..args.len() - 1]);
    ctx.propagate_as(argv);
    Ok(reply)
}

fn lmove(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let from = parse_end(&args[3])?;
    let to = parse_end(&args[4])?;
    move_element(ctx, &args[1], &args[2], from, to)
}

fn rpoplpush(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    move_element(ctx, &args[1], &args[2], End::Tail, End::Head)
}

/// Pops from one end of `src` and pushes onto one end of `dst` (which may be the same list).
/// The destination's type is checked before anything is popped.
fn move_element(ctx: &mut ExecCtx, src: &[u8], dst: &[u8], from: End, to: End) -> CmdResult {
    if write_list(ctx, src)?.is_none() {
        return Ok(Reply::Null);
    }
    write_list(ctx, dst)?;
    let list = write_list(ctx, src)?.expect("looked up above");
    let item = list.pop(from).expect("stored lists are never empty");
    if src == dst {
        list.push(to, &item);
        ctx.notify(notify::LIST, push_event(to), dst);
        ctx.reply_cut(ReplyCut::Rest);
        ctx.notify(notify::LIST, pop_event(from), src);
    } else {
        let emptied = list.is_empty();
        match write_list(ctx, dst)? {
            Some(dest) => dest.push(to, &item),
            None => {
                let mut dest = List::new();
                dest.push(to, &item);
                ctx.set_key(dst, Value::List(Box::new(dest)), false);
            }
        }
        ctx.notify(notify::LIST, push_event(to), dst);
        popped_from(ctx, src, from, emptied);
    }
    ctx.dirty(1);
    Ok(bulk(&item))
}

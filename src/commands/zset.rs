//! The sorted set family: ZADD, ZINCRBY, ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK,
//! ZCOUNT, ZLEXCOUNT, the ZRANGE family (ZRANGE with BYSCORE / BYLEX / REV / LIMIT, ZRANGESTORE
//! and the older ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX), ZREMRANGEBY{RANK,SCORE,LEX},
//! ZPOPMIN, ZPOPMAX, ZMPOP, ZRANDMEMBER, the set algebra (ZUNION, ZINTER, ZDIFF, their STORE
//! forms and ZINTERCARD, which also accept plain sets with score 1) and ZSCAN.
//! They mirror Redis 7.0's `t_zset.c`: same replies (RESP3 score pairs and doubles), same
//! error texts and order of checks, same dirty counts, and the same encoding for stored
//! results. Empty sorted sets are deleted. The blocking variants are not provided.

use super::context::ExecCtx;
use super::context::Rng;
use super::errors;
use super::keys::parse_cursor;
use super::pubsub::ReplyCut;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec,
};
use crate::config::values::notify;
use crate::keyspace::zset::{Item, Limits, ZSet};
use crate::keyspace::{Entry, Value};
use crate::resp::{ErrorReply, Reply};
use crate::util::glob_match;
use bytes::Bytes;
use hashbrown::HashMap;

const ZS: u32 = acl::SORTEDSET;
const G: &str = "sorted-set";
const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

const KEY_RO: &[KeySpec] = &[KeySpec::single(1, kflag::RO)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)];
const KEY_RW_ACCESS_UPDATE: &[KeySpec] = &[KeySpec::single(
    1,
    kflag::RW | kflag::ACCESS | kflag::UPDATE,
)];
const KEY_RW_DELETE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::DELETE)];
const KEY_RW_ACCESS_DELETE: &[KeySpec] = &[KeySpec::single(
    1,
    kflag::RW | kflag::ACCESS | kflag::DELETE,
)];
const KEYNUM_RO: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kflag::RO | kflag::ACCESS,
    begin: BeginSearch::Index(1),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const BZPOP_KEYS: &[KeySpec] = &[KeySpec::range(
    1,
    -2,
    1,
    kflag::RW | kflag::ACCESS | kflag::DELETE,
)];
const BZMPOP_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kflag::RW | kflag::ACCESS | kflag::DELETE,
    begin: BeginSearch::Index(2),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const KEYNUM_RW: &[KeySpec] = &[KeySpec {
    notes: None,
    flags: kflag::RW | kflag::ACCESS | kflag::DELETE,
    begin: BeginSearch::Index(1),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const STORE_KEYNUM: &[KeySpec] = &[
    KeySpec::single(1, kflag::OW | kflag::UPDATE),
    KeySpec {
        notes: None,
        flags: kflag::RO | kflag::ACCESS,
        begin: BeginSearch::Index(2),
        find: FindKeys::Keynum {
            keynum_idx: 0,
            first_key: 1,
            step: 1,
        },
    },
];
const ZRANGESTORE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::OW | kflag::UPDATE),
    KeySpec::single(2, kflag::RO | kflag::ACCESS),
];

pub const COMMANDS: &[C] = &[
    C::new(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        ZS,
        KEY_RW_UPDATE,
        G,
        "1.2.0",
        zadd,
    ),
    C::new(
        "zincrby",
        4,
        WRITE | DENYOOM | FAST | REPLY_BEFORE_EVENTS,
        ZS,
        KEY_RW_ACCESS_UPDATE,
        G,
        "1.2.0",
        zincrby,
    ),
    C::new(
        "zrem",
        -3,
        WRITE | FAST,
        ZS,
        KEY_RW_DELETE,
        G,
        "1.2.0",
        zrem,
    ),
    C::new("zcard", 2, READONLY | FAST, ZS, KEY_RO, G, "1.2.0", zcard),
    C::new(
        "zscore",
        3,
        READONLY | FAST,
        ZS,
        KEY_RO_ACCESS,
        G,
        "1.2.0",
        zscore,
    ),
    C::new(
        "zmscore",
        -3,
        READONLY | FAST,
        ZS,
        KEY_RO_ACCESS,
        G,
        "6.2.0",
        zmscore,
    ),
    C::new(
        "zrank",
        3,
        READONLY | FAST,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.0.0",
        zrank,
    ),
    C::new(
        "zrevrank",
        3,
        READONLY | FAST,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.0.0",
        zrevrank,
    ),
    C::new(
        "zcount",
        4,
        READONLY | FAST,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.0.0",
        zcount,
    ),
    C::new(
        "zlexcount",
        4,
        READONLY | FAST,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.8.9",
        zlexcount,
    ),
    C::new(
        "zrange",
        -4,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "1.2.0",
        zrange,
    ),
    C::new(
        "zrangestore",
        -5,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        ZS,
        ZRANGESTORE_KEYS,
        G,
        "6.2.0",
        zrangestore,
    ),
    C::new(
        "zrevrange",
        -4,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "1.2.0",
        zrevrange,
    ),
    C::new(
        "zrangebyscore",
        -4,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "1.0.5",
        zrangebyscore,
    ),
    C::new(
        "zrevrangebyscore",
        -4,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.2.0",
        zrevrangebyscore,
    ),
    C::new(
        "zrangebylex",
        -4,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.8.9",
        zrangebylex,
    ),
    C::new(
        "zrevrangebylex",
        -4,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "2.8.9",
        zrevrangebylex,
    ),
    C::new(
        "zremrangebyrank",
        4,
        WRITE,
        ZS,
        KEY_RW_DELETE,
        G,
        "2.0.0",
        zremrangebyrank,
    ),
    C::new(
        "zremrangebyscore",
        4,
        WRITE,
        ZS,
        KEY_RW_DELETE,
        G,
        "1.2.0",
        zremrangebyscore,
    ),
    C::new(
        "zremrangebylex",
        4,
        WRITE,
        ZS,
        KEY_RW_DELETE,
        G,
        "2.8.9",
        zremrangebylex,
    ),
    C::new(
        "zpopmin",
        -2,
        WRITE | FAST,
        ZS,
        KEY_RW_ACCESS_DELETE,
        G,
        "5.0.0",
        zpopmin,
    ),
    C::new(
        "zpopmax",
        -2,
        WRITE | FAST,
        ZS,
        KEY_RW_ACCESS_DELETE,
        G,
        "5.0.0",
        zpopmax,
    ),
    C::new("zmpop", -4, WRITE, ZS, KEYNUM_RW, G, "7.0.0", zmpop),
    C::new(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | FAST | BLOCKING,
        ZS,
        BZPOP_KEYS,
        G,
        "5.0.0",
        bzpopmin,
    ),
    C::new(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | FAST | BLOCKING,
        ZS,
        BZPOP_KEYS,
        G,
        "5.0.0",
        bzpopmax,
    ),
    C::new(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        ZS,
        BZMPOP_KEYS,
        G,
        "7.0.0",
        bzmpop,
    ),
    C::new(
        "zrandmember",
        -2,
        READONLY,
        ZS,
        KEY_RO_ACCESS,
        G,
        "6.2.0",
        zrandmember,
    )
    .tips(NONDETERMINISTIC),
    C::new("zunion", -3, READONLY, ZS, KEYNUM_RO, G, "6.2.0", zunion),
    C::new("zinter", -3, READONLY, ZS, KEYNUM_RO, G, "6.2.0", zinter),
    C::new("zdiff", -3, READONLY, ZS, KEYNUM_RO, G, "6.2.0", zdiff),
    C::new(
        "zintercard",
        -3,
        READONLY,
        ZS,
        KEYNUM_RO,
        G,
        "7.0.0",
        zintercard,
    ),
    C::new(
        "zunionstore",
        -4,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        ZS,
        STORE_KEYNUM,
        G,
        "2.0.0",
        zunionstore,
    ),
    C::new(
        "zinterstore",
        -4,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        ZS,
        STORE_KEYNUM,
        G,
        "2.0.0",
        zinterstore,
    ),
    C::new(
        "zdiffstore",
        -4,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        ZS,
        STORE_KEYNUM,
        G,
        "6.2.0",
        zdiffstore,
    ),
    C::new("zscan", -3, READONLY, ZS, KEY_RO_ACCESS, G, "2.8.0", zscan).tips(NONDETERMINISTIC),
];

const XX_AND_NX: ErrorReply =
    ErrorReply::fixed("ERR XX and NX options at the same time are not compatible");
const GT_LT_NX: ErrorReply =
    ErrorReply::fixed("ERR GT, LT, and/or NX options at the same time are not compatible");
const INCR_SINGLE_PAIR: ErrorReply =
    ErrorReply::fixed("ERR INCR option supports a single increment-element pair");
const SCORE_NAN: ErrorReply = ErrorReply::fixed("ERR resulting score is not a number (NaN)");
const MIN_MAX_NOT_FLOAT: ErrorReply = ErrorReply::fixed("ERR min or max is not a float");
const MIN_MAX_NOT_LEX: ErrorReply = ErrorReply::fixed("ERR min or max not valid string range item");
const LIMIT_NEEDS_BY: ErrorReply = ErrorReply::fixed(
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
);
const WITHSCORES_BYLEX: ErrorReply =
    ErrorReply::fixed("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
const MUST_BE_POSITIVE: ErrorReply =
    ErrorReply::fixed("ERR value is out of range, must be positive");
const NUMKEYS_POSITIVE: ErrorReply = ErrorReply::fixed("ERR numkeys should be greater than 0");
const COUNT_POSITIVE: ErrorReply = ErrorReply::fixed("ERR count should be greater than 0");
const WEIGHT_NOT_FLOAT: ErrorReply = ErrorReply::fixed("ERR weight value is not a float");
const LIMIT_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR LIMIT can't be negative");
const RANDMEMBER_RANGE: ErrorReply = ErrorReply::fixed(
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
);
const VALUE_OUT_OF_RANGE: ErrorReply = ErrorReply::fixed("ERR value is out of range");

/// Repeated-pick ZRANDMEMBER replies are built in memory, so absurd counts are refused.
const MAX_REPEATED_PICKS: u64 = 1 << 28;

fn limits(ctx: &ExecCtx) -> Limits {
    let config = ctx.server.config();
    Limits {
        entries: config.zset_max_listpack_entries,
        value: config.zset_max_listpack_value,
    }
}

/// The sorted set under `key`, opened for work (dispatch packs it again after the command).
fn open_zset<'c>(
    ctx: &'c mut ExecCtx<'_>,
    key: &[u8],
    read: bool,
) -> Result<Option<&'c mut ZSet>, ErrorReply> {
    let db = ctx.db();
    ctx.effects.opened_zsets.push((db, key.into()));
    let entry = if read {
        ctx.lookup_read(key)
    } else {
        ctx.lookup_write(key)
    };
    match entry {
        None => Ok(None),
        Some(Entry {
            value: Value::ZSet(z),
            ..
        }) => Ok(Some(z.open())),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Redis's `lookupKeyRead` + `checkType(OBJ_ZSET)`.
pub(crate) fn read_zset<'c>(
    ctx: &'c mut ExecCtx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut ZSet>, ErrorReply> {
    open_zset(ctx, key, true)
}

/// Redis's `lookupKeyWrite` + `checkType(OBJ_ZSET)`.
pub(crate) fn write_zset<'c>(
    ctx: &'c mut ExecCtx<'_>,
    key: &[u8],
) -> Result<Option<&'c mut ZSet>, ErrorReply> {
    open_zset(ctx, key, false)
}

fn bulk(member: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(member))
}

/// Members with optional scores: a flat array in RESP2, [member, score] pairs in RESP3.
fn scored_reply(items: &[(Box<[u8]>, f64)], withscores: bool, resp3: bool) -> Reply {
    let mut out = Vec::with_capacity(items.len() * if withscores { 2 } else { 1 });
    for (m, s) in items {
        if !withscores {
            out.push(bulk(m));
        } else if resp3 {
            out.push(Reply::Array(vec![bulk(m), Reply::Double(*s)]));
        } else {
            out.push(bulk(m));
            out.push(Reply::Double(*s));
        }
    }
    Reply::Array(out)
}

fn owned(item: &Item) -> (Box<[u8]>, f64) {
    (item.member.clone(), item.score)
}

/// A score argument as `getDoubleFromObject` reads it: the whole string, no leading space,
/// not NaN, and no overflow to infinity unless infinity was written.
fn parse_score(arg: &[u8]) -> Option<f64> {
    let v = crate::util::parse_f64(arg)?;
    if v.is_infinite() && !arg.to_ascii_lowercase().windows(3).any(|w| w == b"inf") {
        return None;
    }
    Some(v)
}

/// A range bound as `strtod` reads it in `zslParseRange`: up to the first NUL, leading space
/// allowed, an empty string is 0, NaN is refused.
fn parse_strtod(arg: &[u8]) -> Option<f64> {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    let s = &arg[..end];
    if s.is_empty() {
        return Some(0.0);
    }
    let is_c_space = |c: &u8| *c == b' ' || (b'\t'..=b'\r').contains(c);
    let start = s.iter().position(|c| !is_c_space(c))?;
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let v: f64 = text.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// A score interval: `(` marks an exclusive end.
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<ScoreRange, ErrorReply> {
        let bound = |b: &[u8]| match b.first() {
            Some(b'(') => parse_strtod(&b[1..]).map(|v| (v, true)),
            _ => parse_strtod(b).map(|v| (v, false)),
        };
        let (min, minex) = bound(min).ok_or(MIN_MAX_NOT_FLOAT)?;
        let (max, maxex) = bound(max).ok_or(MIN_MAX_NOT_FLOAT)?;
        Ok(ScoreRange {
            min,
            max,
            minex,
            maxex,
        })
    }
    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }
    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

struct LexRange {
    min: LexBound,
    max: LexBound,
}

impl LexRange {
    fn parse(min: &[u8], max: &[u8]) -> Result<LexRange, ErrorReply> {
        let bound = |b: &[u8]| match b.first() {
            Some(b'+') if b.len() == 1 => Some(LexBound::Max),
            Some(b'-') if b.len() == 1 => Some(LexBound::Min),
            Some(b'(') => Some(LexBound::Excl(b[1..].to_vec())),
            Some(b'[') => Some(LexBound::Incl(b[1..].to_vec())),
            _ => None,
        };
        Ok(LexRange {
            min: bound(min).ok_or(MIN_MAX_NOT_LEX)?,
            max: bound(max).ok_or(MIN_MAX_NOT_LEX)?,
        })
    }
    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(v) => m >= &v[..],
            LexBound::Excl(v) => m > &v[..],
        }
    }
    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(v) => m <= &v[..],
            LexBound::Excl(v) => m < &v[..],
        }
    }
}

/// A range by score or by member, as ranks: `start..end` of the members inside it.
enum ByRange {
    Score(ScoreRange),
    Lex(LexRange),
}

impl ByRange {
    fn gte_min(&self, i: &Item) -> bool {
        match self {
            ByRange::Score(r) => r.gte_min(i.score),
            ByRange::Lex(r) => r.gte_min(&i.member),
        }
    }
    fn lte_max(&self, i: &Item) -> bool {
        match self {
            ByRange::Score(r) => r.lte_max(i.score),
            ByRange::Lex(r) => r.lte_max(&i.member),
        }
    }
    /// Ranks of the members inside the range.
    fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let start = z.partition_point(|i| !self.gte_min(i));
        let end = z.partition_point(|i| self.lte_max(i));
        (start, end.max(start))
    }
}

// ---- ZADD / ZINCRBY ------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
}

#[derive(PartialEq, Eq)]
enum AddOutcome {
    Nan,
    Nop,
    Added,
    Updated,
    Same,
}

/// Redis's `zsetAdd`: the outcome and the resulting score.
fn zset_add(
    z: &mut ZSet,
    score: f64,
    member: &[u8],
    f: AddFlags,
    lim: Limits,
) -> (AddOutcome, f64) {
    if score.is_nan() {
        return (AddOutcome::Nan, score);
    }
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return (AddOutcome::Nop, score);
            }
            let mut score = score;
            if f.incr {
                score += cur;
                if score.is_nan() {
                    return (AddOutcome::Nan, score);
                }
            }
            if (f.lt && score >= cur) || (f.gt && score <= cur) {
                return (AddOutcome::Nop, score);
            }
            if score != cur {
                z.update_score(member, cur, score);
                (AddOutcome::Updated, score)
            } else {
                (AddOutcome::Same, score)
            }
        }
        None if !f.xx => {
            z.insert_new(member, score, lim);
            (AddOutcome::Added, score)
        }
        None => (AddOutcome::Nop, score),
    }
}

fn zadd(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, false)
}

fn zincrby(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zadd_generic(ctx, args, true)
}

fn zadd_generic(ctx: &mut ExecCtx, args: &[Bytes], incr: bool) -> CmdResult {
    let mut f = AddFlags {
        incr,
        ..AddFlags::default()
    };
    let mut ch = false;
    let mut idx = 2;
    while idx < args.len() {
        let opt = &args[idx][..];
        if opt.eq_ignore_ascii_case(b"nx") {
            f.nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") {
            f.xx = true;
        } else if opt.eq_ignore_ascii_case(b"ch") {
            ch = true;
        } else if opt.eq_ignore_ascii_case(b"incr") {
            f.incr = true;
        } else if opt.eq_ignore_ascii_case(b"gt") {
            f.gt = true;
        } else if opt.eq_ignore_ascii_case(b"lt") {
            f.lt = true;
        } else {
            break;
        }
        idx += 1;
    }
    let elements = args.len() - idx;
    if elements % 2 == 1 || elements == 0 {
        return Err(errors::SYNTAX);
    }
    let elements = elements / 2;
    if f.nx && f.xx {
        return Err(XX_AND_NX);
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return Err(GT_LT_NX);
    }
    if f.incr && elements > 1 {
        return Err(INCR_SINGLE_PAIR);
    }
    let mut scores = Vec::with_capacity(elements);
    for j in 0..elements {
        scores.push(parse_score(&args[idx + j * 2]).ok_or(errors::NOT_FLOAT)?);
    }
    let lim = limits(ctx);
    let key = &args[1];
    let (mut added, mut updated, mut processed) = (0u64, 0u64, 0u64);
    let mut last_score = 0.0;
    let exists = write_zset(ctx, key)?.is_some();
    if !exists {
        if f.xx {
            return Ok(if f.incr { Reply::Null } else { Reply::Int(0) });
        }
        let z = ZSet::new_for(&args[idx + 1], lim);
        ctx.set_key(
            key,
            Value::ZSet(crate::keyspace::zset::Stored::new(z)),
            false,
        );
    }
    let z = write_zset(ctx, key)?.expect("created above");
    let mut failed = false;
    for (j, score) in scores.into_iter().enumerate() {
        let member = &args[idx + 1 + j * 2];
        let (outcome, newscore) = zset_add(z, score, member, f, lim);
        match outcome {
            AddOutcome::Nan => {
                failed = true;
                break;
            }
            AddOutcome::Added => added += 1,
            AddOutcome::Updated => updated += 1,
            _ => {}
        }
        if outcome != AddOutcome::Nop {
            processed += 1;
        }
        last_score = newscore;
    }
    let empty = z.is_empty();
    if empty {
        ctx.delete(key);
    }
    if failed {
        return Err(SCORE_NAN);
    }
    ctx.dirty(added + updated);
    if added + updated > 0 {
        ctx.notify(notify::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
    }
    if f.incr {
        Ok(if processed > 0 {
            Reply::Double(last_score)
        } else {
            Reply::Null
        })
    } else {
        Ok(Reply::Int(if ch { added + updated } else { added } as i64))
    }
}

// ---- simple reads and removals ------------------------------------------------------------

fn zrem(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(z) = write_zset(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let mut deleted = 0;
    for member in &args[2..] {
        if z.remove(member).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    let emptied = z.is_empty();
    if deleted > 0 {
        ctx.notify(notify::ZSET, "zrem", &args[1]);
        if emptied {
            ctx.delete_emptied(&args[1]);
        }
    }
    ctx.dirty(deleted);
    Ok(Reply::Int(deleted as i64))
}

fn zcard(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        read_zset(ctx, &args[1])?.map_or(0, |z| z.len()) as i64
    ))
}

fn zscore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(read_zset(ctx, &args[1])?
        .and_then(|z| z.score(&args[2]))
        .map_or(Reply::Null, Reply::Double))
}

fn zmscore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let z = read_zset(ctx, &args[1])?;
    let replies = args[2..]
        .iter()
        .map(|m| {
            z.as_ref()
                .and_then(|z| z.score(m))
                .map_or(Reply::Null, Reply::Double)
        })
        .collect();
    Ok(Reply::Array(replies))
}

fn zrank(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrank_generic(ctx, args, false)
}

fn zrevrank(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrank_generic(ctx, args, true)
}

fn zrank_generic(ctx: &mut ExecCtx, args: &[Bytes], reverse: bool) -> CmdResult {
    Ok(read_zset(ctx, &args[1])?
        .and_then(|z| z.rank(&args[2], reverse))
        .map_or(Reply::Null, |r| Reply::Int(r as i64)))
}

fn zcount(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let range = ByRange::Score(ScoreRange::parse(&args[2], &args[3])?);
    zcount_generic(ctx, &args[1], range)
}

fn zlexcount(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let range = ByRange::Lex(LexRange::parse(&args[2], &args[3])?);
    zcount_generic(ctx, &args[1], range)
}

fn zcount_generic(ctx: &mut ExecCtx, key: &[u8], range: ByRange) -> CmdResult {
    let Some(z) = read_zset(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let (start, end) = range.ranks(z);
    Ok(Reply::Int((end - start) as i64))
}

// ---- ZRANGE family ------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

fn zrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Auto, Direction::Auto)
}

fn zrangestore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(
        ctx,
        args,
        2,
        Some(&args[1]),
        RangeType::Auto,
        Direction::Auto,
    )
}

fn zrevrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Rank, Direction::Reverse)
}

fn zrangebyscore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Score, Direction::Forward)
}

fn zrevrangebyscore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Score, Direction::Reverse)
}

fn zrangebylex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Lex, Direction::Forward)
}

fn zrevrangebylex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zrange_generic(ctx, args, 1, None, RangeType::Lex, Direction::Reverse)
}

/// Redis's `zrangeGenericCommand`: `<src> <min> <max> [BYSCORE|BYLEX] [REV] [WITHSCORES]
/// [LIMIT offset count]` from `start`, replying or storing into `store`.
fn zrange_generic(
    ctx: &mut ExecCtx,
    args: &[Bytes],
    start: usize,
    store: Option<&[u8]>,
    mut rangetype: RangeType,
    mut direction: Direction,
) -> CmdResult {
    let key = &args[start];
    let (mut minidx, mut maxidx) = (start + 1, start + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let opt = &args[j][..];
        if store.is_none() && opt.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
        } else if opt.eq_ignore_ascii_case(b"limit") && left >= 2 {
            offset = ctx.int_arg(&args[j + 1])?;
            limit = ctx.int_arg(&args[j + 2])?;
            j += 2;
        } else if direction == Direction::Auto && opt.eq_ignore_ascii_case(b"rev") {
            direction = Direction::Reverse;
        } else if rangetype == RangeType::Auto && opt.eq_ignore_ascii_case(b"bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && opt.eq_ignore_ascii_case(b"byscore") {
            rangetype = RangeType::Score;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    if direction == Direction::Auto {
        direction = Direction::Forward;
    }
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return Err(LIMIT_NEEDS_BY);
    }
    if withscores && rangetype == RangeType::Lex {
        return Err(WITHSCORES_BYLEX);
    }
    let reverse = direction == Direction::Reverse;
    if reverse && rangetype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    enum Parsed {
        Rank(i64, i64),
        By(ByRange),
    }
    let parsed = match rangetype {
        RangeType::Score => Parsed::By(ByRange::Score(ScoreRange::parse(
            &args[minidx],
            &args[maxidx],
        )?)),
        RangeType::Lex => Parsed::By(ByRange::Lex(LexRange::parse(&args[minidx], &args[maxidx])?)),
        _ => Parsed::Rank(ctx.int_arg(&args[minidx])?, ctx.int_arg(&args[maxidx])?),
    };
    let resp3 = ctx.client.resp3;
    let items: Vec<(Box<[u8]>, f64)> = match read_zset(ctx, key)? {
        None => Vec::new(),
        Some(z) => match parsed {
            Parsed::Rank(s, e) => {
                let llen = z.len() as i64;
                let mut s = if s < 0 { llen + s } else { s };
                let mut e = if e < 0 { llen + e } else { e };
                s = s.max(0);
                if s > e || s >= llen {
                    Vec::new()
                } else {
                    e = e.min(llen - 1);
                    z.iter_from(s as usize, reverse)
                        .take((e - s + 1) as usize)
                        .map(owned)
                        .collect()
                }
            }
            Parsed::By(range) => by_range(z, &range, offset, limit, reverse),
        },
    };
    match store {
        Some(dst) => store_items(ctx, dst, items),
        None => Ok(scored_reply(&items, withscores, resp3)),
    }
}

/// Members inside a score or lex range, after skipping `offset`, at most `limit` (negative:
/// no limit), walking down from the top when `reverse`.
fn by_range(
    z: &ZSet,
    range: &ByRange,
    offset: i64,
    limit: i64,
    reverse: bool,
) -> Vec<(Box<[u8]>, f64)> {
    if offset < 0 || (offset > 0 && offset >= z.len() as i64) {
        return Vec::new();
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let offset = offset as usize;
    if reverse {
        let last = z.partition_point(|i| range.lte_max(i));
        if last == 0 {
            return Vec::new();
        }
        z.iter_from(z.len() - last, true)
            .skip(offset)
            .take_while(|i| range.gte_min(i))
            .take(limit)
            .map(owned)
            .collect()
    } else {
        let first = z.partition_point(|i| !range.gte_min(i));
        z.iter_from(first, false)
            .skip(offset)
            .take_while(|i| range.lte_max(i))
            .take(limit)
            .map(owned)
            .collect()
    }
}

/// Stores a computed result the way the STORE commands do: an empty result deletes the
/// destination; the encoding follows the listpack limits.
fn store_items(ctx: &mut ExecCtx, dst: &[u8], items: Vec<(Box<[u8]>, f64)>) -> CmdResult {
    let n = items.len();
    if n > 0 {
        let items = items
            .into_iter()
            .map(|(member, score)| Item { score, member })
            .collect();
        let z = ZSet::from_items(items, limits(ctx));
        ctx.set_key(
            dst,
            Value::ZSet(crate::keyspace::zset::Stored::new(z)),
            false,
        );
        ctx.dirty(1);
        // The event is the command's name: zrangestore, zunionstore, zinterstore, zdiffstore.
        ctx.notify(notify::ZSET, ctx.current_command, dst);
    } else if ctx.delete(dst) {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", dst);
    }
    Ok(Reply::Int(n as i64))
}

// ---- ZREMRANGEBY* -------------------------------------------------------------------------

fn zremrangebyrank(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let start = ctx.int_arg(&args[2])?;
    let end = ctx.int_arg(&args[3])?;
    let Some(z) = write_zset(ctx, &args[1])? else {
        return Ok(Reply::Int(0));
    };
    let llen = z.len() as i64;
    let mut s = if start < 0 { llen + start } else { start };
    let e = if end < 0 { llen + end } else { end };
    s = s.max(0);
    if s > e || s >= llen {
        return Ok(Reply::Int(0));
    }
    let e = e.min(llen - 1);
    zrem_ranks(ctx, &args[1], s as usize, e as usize + 1)
}

fn zremrangebyscore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let range = ByRange::Score(ScoreRange::parse(&args[2], &args[3])?);
    zremrange_by(ctx, &args[1], range)
}

fn zremrangebylex(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let range = ByRange::Lex(LexRange::parse(&args[2], &args[3])?);
    zremrange_by(ctx, &args[1], range)
}

fn zremrange_by(ctx: &mut ExecCtx, key: &[u8], range: ByRange) -> CmdResult {
    let Some(z) = write_zset(ctx, key)? else {
        return Ok(Reply::Int(0));
    };
    let (start, end) = range.ranks(z);
    zrem_ranks(ctx, key, start, end)
}

fn zrem_ranks(ctx: &mut ExecCtx, key: &[u8], start: usize, end: usize) -> CmdResult {
    let z = write_zset(ctx, key)?.expect("looked up by the caller");
    let deleted = z.remove_rank_range(start, end).len();
    let emptied = z.is_empty();
    if deleted > 0 {
        // The event is the command's name: zremrangebyrank, -byscore, -bylex.
        ctx.notify(notify::ZSET, ctx.current_command, key);
        if emptied {
            ctx.delete_emptied(key);
        }
    }
    ctx.dirty(deleted as u64);
    Ok(Reply::Int(deleted as i64))
}

// ---- ZPOPMIN / ZPOPMAX / ZMPOP ------------------------------------------------------------

fn zpopmin(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zpop_minmax(ctx, args, false)
}

fn zpopmax(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zpop_minmax(ctx, args, true)
}

fn zpop_minmax(ctx: &mut ExecCtx, args: &[Bytes], max: bool) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        Some(c) => {
            let c = crate::util::parse_int(c)
                .filter(|c| *c >= 0)
                .ok_or(MUST_BE_POSITIVE)?;
            Some(c as u64)
        }
        None => None,
    };
    let nested = ctx.client.resp3 && count.is_some();
    let key = &args[1];
    let Some(z) = write_zset(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let count = count.unwrap_or(1);
    let popped = pop_items(z, count, max);
    let emptied = z.is_empty();
    popped_from(ctx, key, max, popped.len(), emptied, 1);
    ctx.dirty(popped.len() as u64);
    let mut out = Vec::new();
    for (m, s) in &popped {
        if nested {
            out.push(Reply::Array(vec![bulk(m), Reply::Double(*s)]));
        } else {
            out.push(bulk(m));
            out.push(Reply::Double(*s));
        }
    }
    Ok(Reply::Array(out))
}

fn pop_items(z: &mut ZSet, count: u64, max: bool) -> Vec<(Box<[u8]>, f64)> {
    let mut out = Vec::new();
    while (out.len() as u64) < count {
        match z.pop(max) {
            Some(i) => out.push((i.member, i.score)),
            None => break,
        }
    }
    out
}

fn zmpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_zmpop(args, 1)?;
    Ok(zmpop_serve(ctx, keys, max, count)?.unwrap_or(Reply::NullArray))
}

/// BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count].
fn bzmpop(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = parse_zmpop(args, 2)?;
    let deadline = ctx.timeout_arg(&args[1])?;
    match zmpop_serve(ctx, keys, max, count)? {
        Some(reply) => Ok(reply),
        None => Ok(ctx.block(keys.to_vec(), deadline, Reply::NullArray)),
    }
}

/// The keys, side and count of ZMPOP / BZMPOP, with numkeys at `numkeys_idx`.
fn parse_zmpop(args: &[Bytes], numkeys_idx: usize) -> Result<(&[Bytes], bool, u64), ErrorReply> {
    let numkeys = crate::util::parse_int(&args[numkeys_idx])
        .filter(|n| *n >= 1)
        .ok_or(NUMKEYS_POSITIVE)? as u64;
    let where_idx = numkeys.saturating_add(numkeys_idx as u64 + 1);
    if where_idx >= args.len() as u64 {
        return Err(errors::SYNTAX);
    }
    let where_idx = where_idx as usize;
    let max = if args[where_idx].eq_ignore_ascii_case(b"min") {
        false
    } else if args[where_idx].eq_ignore_ascii_case(b"max") {
        true
    } else {
        return Err(errors::SYNTAX);
    };
    let mut count: Option<u64> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count.is_none() && args[j].eq_ignore_ascii_case(b"count") && more > 0 {
            j += 1;
            let c = crate::util::parse_int(&args[j])
                .filter(|c| *c >= 1)
                .ok_or(COUNT_POSITIVE)?;
            count = Some(c as u64);
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok((&args[numkeys_idx + 1..where_idx], max, count.unwrap_or(1)))
}

/// Pops from the first non-empty sorted set, replying [key, [[member, score] ...]].
fn zmpop_serve(
    ctx: &mut ExecCtx,
    keys: &[Bytes],
    max: bool,
    count: u64,
) -> Result<Option<Reply>, ErrorReply> {
    for key in keys {
        let Some(z) = write_zset(ctx, key)? else {
            continue;
        };
        let popped = pop_items(z, count, max);
        let emptied = z.is_empty();
        popped_from(ctx, key, max, popped.len(), emptied, 3);
        ctx.dirty(popped.len() as u64);
        ctx.propagate_as(vec![
            zpop_name(max),
            key.clone(),
            Bytes::from(popped.len().to_string()),
        ]);
        let pairs = popped
            .iter()
            .map(|(m, s)| Reply::Array(vec![bulk(m), Reply::Double(*s)]))
            .collect();
        return Ok(Some(Reply::Array(vec![bulk(key), Reply::Array(pairs)])));
    }
    Ok(None)
}

/// After members were popped from `key`: the pop event, and the key's deletion when that
/// emptied it. Redis writes the reply's first `head` frames (up to the first member) before
/// the pop event, and the rest after it.
fn popped_from(ctx: &mut ExecCtx, key: &[u8], max: bool, popped: usize, emptied: bool, head: u8) {
    if popped > 0 {
        ctx.reply_cut(ReplyCut::Head(head));
        ctx.notify(notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
        ctx.reply_cut(ReplyCut::Rest);
    }
    if emptied {
        ctx.delete_emptied(key);
    }
}

fn zpop_name(max: bool) -> Bytes {
    Bytes::from_static(if max { b"ZPOPMAX" } else { b"ZPOPMIN" })
}

fn bzpopmin(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    blocking_zpop(ctx, args, false)
}

fn bzpopmax(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    blocking_zpop(ctx, args, true)
}

/// BZPOPMIN / BZPOPMAX key [key ...] timeout: one member of the first non-empty sorted
/// set, as [key, member, score].
fn blocking_zpop(ctx: &mut ExecCtx, args: &[Bytes], max: bool) -> CmdResult {
    let deadline = ctx.timeout_arg(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    for key in keys {
        let Some(z) = write_zset(ctx, key)? else {
            continue;
        };
        let popped = pop_items(z, 1, max);
        let emptied = z.is_empty();
        popped_from(ctx, key, max, 1, emptied, 2);
        ctx.dirty(1);
        ctx.propagate_as(vec![zpop_name(max), key.clone()]);
        let (member, score) = &popped[0];
        return Ok(Reply::Array(vec![
            bulk(key),
            bulk(member),
            Reply::Double(*score),
        ]));
    }
    Ok(ctx.block(keys.to_vec(), deadline, Reply::NullArray))
}

// ---- ZRANDMEMBER --------------------------------------------------------------------------

fn zrandmember(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() >= 3 {
        let l = ctx.int_arg(&args[2])?;
        if l == i64::MIN {
            return Err(RANDMEMBER_RANGE);
        }
        let withscores = match args.len() {
            3 => false,
            4 if args[3].eq_ignore_ascii_case(b"withscores") => true,
            _ => return Err(errors::SYNTAX),
        };
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return Err(VALUE_OUT_OF_RANGE);
        }
        return zrandmember_count(ctx, &args[1], l, withscores);
    }
    let mut rng = Rng::for_command(ctx);
    let Some(z) = read_zset(ctx, &args[1])? else {
        return Ok(Reply::Null);
    };
    let item = z.at_rank(rng.below(z.len())).expect("not empty");
    Ok(bulk(&item.member))
}

fn zrandmember_count(ctx: &mut ExecCtx, key: &[u8], l: i64, withscores: bool) -> CmdResult {
    let resp3 = ctx.client.resp3;
    let mut rng = Rng::for_command(ctx);
    let Some(z) = read_zset(ctx, key)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    if count == 0 {
        return Ok(Reply::Array(Vec::new()));
    }
    let size = z.len();
    let picks: Vec<(Box<[u8]>, f64)> = if !uniq || count == 1 {
        if count > MAX_REPEATED_PICKS {
            return Err(RANDMEMBER_RANGE);
        }
        (0..count)
            .map(|_| owned(z.at_rank(rng.below(size)).expect("not empty")))
            .collect()
    } else if count >= size as u64 {
        // Redis's set-algebra iterator walks a sorted set from its highest score down.
        z.iter_from(0, true).map(owned).collect()
    } else {
        let count = count as usize;
        let ranks: Vec<usize> = if count * 3 > size {
            // A partial Fisher-Yates shuffle of the ranks: the first `count` are a uniform
            // sample.
            let mut ranks: Vec<usize> = (0..size).collect();
            for i in 0..count {
                let j = i + rng.below(size - i);
                ranks.swap(i, j);
            }
            ranks.truncate(count);
            ranks
        } else {
            // Few picks from a big set: draw ranks until `count` distinct ones came up.
            let mut chosen = hashbrown::HashSet::with_capacity(count);
            let mut ranks = Vec::with_capacity(count);
            while ranks.len() < count {
                let r = rng.below(size);
                if chosen.insert(r) {
                    ranks.push(r);
                }
            }
            ranks
        };
        ranks
            .iter()
            .map(|&r| owned(z.at_rank(r).expect("in range")))
            .collect()
    };
    Ok(scored_reply(&picks, withscores, resp3))
}

// ---- ZUNION / ZINTER / ZDIFF --------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

fn zunion(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Union, false, "zunion")
}

fn zinter(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Inter, false, "zinter")
}

fn zdiff(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Diff, false, "zdiff")
}

fn zintercard(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(ctx, args, None, 1, SetOp::Inter, true, "zintercard")
}

fn zunionstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(
        ctx,
        args,
        Some(&args[1]),
        2,
        SetOp::Union,
        false,
        "zunionstore",
    )
}

fn zinterstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(
        ctx,
        args,
        Some(&args[1]),
        2,
        SetOp::Inter,
        false,
        "zinterstore",
    )
}

fn zdiffstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    zsetop(
        ctx,
        args,
        Some(&args[1]),
        2,
        SetOp::Diff,
        false,
        "zdiffstore",
    )
}

/// Members with their scores.
type Scored = Vec<(Box<[u8]>, f64)>;

/// One input of the set algebra: its key, members with scores, and a lookup by member.
struct Source {
    key: Bytes,
    items: Vec<(Box<[u8]>, f64)>,
    weight: f64,
    lookup: Option<HashMap<Box<[u8]>, f64>>,
}

impl Source {
    fn find(&mut self, member: &[u8]) -> Option<f64> {
        let items = &self.items;
        self.lookup
            .get_or_insert_with(|| items.iter().cloned().collect())
            .get(member)
            .copied()
    }
}

/// Members with scores of a sorted set, or of a set with score 1; `None` when missing.
fn read_source(ctx: &mut ExecCtx, key: &[u8]) -> Result<Scored, ErrorReply> {
    match ctx.lookup_read(key) {
        None => Ok(Vec::new()),
        Some(Entry {
            value: Value::ZSet(z),
            ..
        }) => Ok(z.view().iter().map(|(m, s)| (m.into(), s)).collect()),
        Some(Entry {
            value: Value::Set(s),
            ..
        }) => Ok(s.iter().map(|m| (Box::from(&*m), 1.0)).collect()),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Redis's `zunionInterDiffGenericCommand`.
fn zsetop(
    ctx: &mut ExecCtx,
    args: &[Bytes],
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
    name: &str,
) -> CmdResult {
    let setnum = ctx.int_arg(&args[numkeys_idx])?;
    if setnum < 1 {
        return Err(ErrorReply::owned(format!(
            "ERR at least 1 input key is needed for '{name}' command"
        )));
    }
    if setnum > (args.len() - numkeys_idx - 1) as i64 {
        return Err(errors::SYNTAX);
    }
    let setnum = setnum as usize;
    let mut src = Vec::with_capacity(setnum);
    for key in &args[numkeys_idx + 1..numkeys_idx + 1 + setnum] {
        src.push(Source {
            key: key.clone(),
            items: read_source(ctx, key)?,
            weight: 1.0,
            lookup: None,
        });
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit = 0usize;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let opt = &args[j][..];
        if op != SetOp::Diff
            && !card_only
            && remaining > setnum
            && opt.eq_ignore_ascii_case(b"weights")
        {
            j += 1;
            for s in src.iter_mut() {
                s.weight = parse_score(&args[j]).ok_or(WEIGHT_NOT_FLOAT)?;
                j += 1;
            }
        } else if op != SetOp::Diff
            && !card_only
            && remaining >= 2
            && opt.eq_ignore_ascii_case(b"aggregate")
        {
            let a = &args[j + 1][..];
            agg = if a.eq_ignore_ascii_case(b"sum") {
                Aggregate::Sum
            } else if a.eq_ignore_ascii_case(b"min") {
                Aggregate::Min
            } else if a.eq_ignore_ascii_case(b"max") {
                Aggregate::Max
            } else {
                return Err(errors::SYNTAX);
            };
            j += 2;
        } else if dst.is_none() && !card_only && opt.eq_ignore_ascii_case(b"withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && opt.eq_ignore_ascii_case(b"limit") {
            let l = crate::util::parse_int(&args[j + 1])
                .filter(|l| *l >= 0)
                .ok_or(LIMIT_NEGATIVE)?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
            j += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    if op != SetOp::Diff {
        src.sort_by_key(|s| s.items.len());
    }
    let mut result: Vec<(Box<[u8]>, f64)> = Vec::new();
    let mut cardinality = 0usize;
    match op {
        SetOp::Inter => {
            let (first, rest) = src.split_first_mut().expect("at least one key");
            if !first.items.is_empty() {
                for (m, s) in &first.items {
                    let mut score = first.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    let mut everywhere = true;
                    for other in rest.iter_mut() {
                        let value = if other.key == first.key {
                            Some(*s)
                        } else {
                            other.find(m)
                        };
                        match value {
                            Some(v) => aggregate(&mut score, v * other.weight, agg),
                            None => {
                                everywhere = false;
                                break;
                            }
                        }
                    }
                    if !everywhere {
                        continue;
                    }
                    if card_only {
                        cardinality += 1;
                        if limit > 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((m.clone(), score));
                    }
                }
            }
        }
        SetOp::Union => {
            let mut acc: HashMap<Box<[u8]>, f64> = HashMap::new();
            for s in &src {
                for (m, sc) in &s.items {
                    let mut score = s.weight * sc;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            acc.insert(m.clone(), score);
                        }
                    }
                }
            }
            result = acc.into_iter().collect();
        }
        SetOp::Diff => {
            let (first, rest) = src.split_first_mut().expect("at least one key");
            if !first.items.is_empty() && !rest.iter().any(|o| o.key == first.key) {
                for (m, s) in &first.items {
                    if rest.iter_mut().all(|o| o.find(m).is_none()) {
                        result.push((m.clone(), *s));
                    }
                }
            }
        }
    }
    if card_only {
        return Ok(Reply::Int(cardinality as i64));
    }
    if let Some(dst) = dst {
        return store_items(ctx, dst, result);
    }
    result.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    Ok(scored_reply(&result, withscores, ctx.client.resp3))
}

// ---- ZSCAN --------------------------------------------------------------------------------

/// ZSCAN key cursor [MATCH pattern] [COUNT count]. A `listpack` is returned whole with
/// cursor 0, as Redis does; a `skiplist` is walked in score order, the cursor naming the
/// score to resume from.
fn zscan(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let cursor = parse_cursor(&args[2])?;
    let empty_scan = || Reply::Array(vec![Reply::bulk_str("0"), Reply::Array(Vec::new())]);
    if read_zset(ctx, &args[1])?.is_none() {
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
    let z = read_zset(ctx, &args[1])?.expect("looked up above");
    let (found, next): (Vec<(&Item, String)>, u64) = if z.is_listpack() {
        let all = z
            .iter_from(0, false)
            .map(|i| (i, crate::resp::reply::format_double_g17(i.score)))
            .collect();
        (all, 0)
    } else {
        let (items, next) = z.scan_by_score(cursor, count);
        let items = items
            .into_iter()
            .map(|i| (i, crate::resp::reply::format_double_g17(i.score)))
            .collect();
        (items, next)
    };
    let mut out = Vec::new();
    for (item, score) in found {
        if pattern.is_none_or(|p| glob_match(p, &item.member, false)) {
            out.push(bulk(&item.member));
            out.push(Reply::bulk_str(&score));
        }
    }
    Ok(Reply::Array(vec![
        Reply::bulk_str(&next.to_string()),
        Reply::Array(out),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// Runs sorted set commands against a fresh server the way dispatch would (arity
    /// first), with every shard locked.
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
                .expect("a sorted set command");
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

        /// A flat reply as strings (doubles in Redis's RESP2 form).
        fn strings(&mut self, argv: &[&str]) -> Vec<String> {
            let Reply::Array(items) = self.ok(argv) else {
                panic!("{argv:?} did not reply an array");
            };
            items.into_iter().map(text).collect()
        }

        fn zset(&mut self, key: &str) -> Option<ZSet> {
            let mut ks = self.server.keyspace.lock_all();
            ks.peek(0, key.as_bytes()).map(|e| match &e.value {
                Value::ZSet(z) => z.view().into_owned(),
                other => panic!("{key} holds a {}", other.type_name()),
            })
        }
    }

    fn text(r: Reply) -> String {
        match r {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            Reply::Double(d) => crate::resp::reply::format_double_g17(d),
            Reply::Int(i) => i.to_string(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn zadd_options_replies_and_dirty() {
        let mut h = Harness::new();
        assert_eq!(h.int(&["ZADD", "z", "1", "a", "2", "b"]), 2);
        assert_eq!(h.int(&["ZADD", "z", "CH", "3", "a", "2", "b", "1", "c"]), 2);
        assert_eq!(h.int(&["ZADD", "z", "NX", "9", "a", "4", "d"]), 1);
        assert_eq!(h.int(&["ZADD", "z", "XX", "CH", "9", "e", "5", "d"]), 1);
        assert_eq!(h.int(&["ZADD", "z", "GT", "CH", "1", "a", "10", "b"]), 1);
        assert_eq!(h.dirty, 2 + 2 + 1 + 1 + 1);
        assert_eq!(h.ok(&["ZADD", "z", "INCR", "1.5", "a"]), Reply::Double(4.5));
        assert_eq!(h.ok(&["ZADD", "z", "NX", "INCR", "1", "a"]), Reply::Null);
        assert_eq!(h.ok(&["ZINCRBY", "z", "-0.5", "a"]), Reply::Double(4.0));
        assert_eq!(
            h.err(&["ZADD", "z", "NX", "XX", "1", "a"]),
            XX_AND_NX.text()
        );
        assert_eq!(h.err(&["ZADD", "z", "GT", "LT", "1", "a"]), GT_LT_NX.text());
        assert_eq!(
            h.err(&["ZADD", "z", "INCR", "1", "a", "2", "b"]),
            INCR_SINGLE_PAIR.text()
        );
        assert_eq!(h.err(&["ZADD", "z", "1", "a", "2"]), "ERR syntax error");
        assert_eq!(h.err(&["ZADD", "z", "x", "a"]), errors::NOT_FLOAT.text());
        assert_eq!(h.err(&["ZADD", "z", "nan", "a"]), errors::NOT_FLOAT.text());
        h.int(&["ZADD", "z", "inf", "big"]);
        assert_eq!(h.err(&["ZINCRBY", "z", "-inf", "big"]), SCORE_NAN.text());
        assert_eq!(h.int(&["ZADD", "none", "XX", "1", "a"]), 0);
        assert!(h.zset("none").is_none());
        assert_eq!(
            h.strings(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
            v(&["c", "1", "a", "4", "d", "5", "b", "10", "big", "inf"])
        );
    }

    #[test]
    fn ranges_by_rank_score_and_lex() {
        let mut h = Harness::new();
        h.int(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
        assert_eq!(h.strings(&["ZRANGE", "z", "-2", "-1"]), v(&["c", "d"]));
        assert_eq!(h.strings(&["ZRANGE", "z", "0", "1", "REV"]), v(&["d", "c"]));
        assert_eq!(
            h.strings(&["ZRANGE", "z", "(1", "3", "BYSCORE", "LIMIT", "1", "5"]),
            v(&["c"])
        );
        assert_eq!(
            h.strings(&["ZREVRANGEBYSCORE", "z", "+inf", "(2", "WITHSCORES"]),
            v(&["d", "4", "c", "3"])
        );
        assert_eq!(
            h.err(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
            LIMIT_NEEDS_BY.text()
        );
        assert_eq!(
            h.err(&["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"]),
            WITHSCORES_BYLEX.text()
        );
        assert_eq!(
            h.err(&["ZRANGEBYSCORE", "z", "x", "1"]),
            MIN_MAX_NOT_FLOAT.text()
        );
        h.int(&["ZADD", "l", "0", "a", "0", "b", "0", "c"]);
        assert_eq!(h.strings(&["ZRANGEBYLEX", "l", "(a", "+"]), v(&["b", "c"]));
        assert_eq!(
            h.strings(&["ZREVRANGEBYLEX", "l", "[b", "-"]),
            v(&["b", "a"])
        );
        assert_eq!(h.err(&["ZLEXCOUNT", "l", "a", "+"]), MIN_MAX_NOT_LEX.text());
        assert_eq!(h.int(&["ZCOUNT", "z", "(1", "4"]), 3);
        assert_eq!(h.int(&["ZRANGESTORE", "d", "z", "1", "2"]), 2);
        assert_eq!(h.zset("d").unwrap().len(), 2);
        assert_eq!(h.int(&["ZRANGESTORE", "d", "z", "5", "9"]), 0);
        assert!(h.zset("d").is_none());
    }

    #[test]
    fn removals_delete_emptied_keys() {
        let mut h = Harness::new();
        h.int(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
        h.dirty = 0;
        assert_eq!(h.int(&["ZREMRANGEBYRANK", "z", "0", "0"]), 1);
        assert_eq!(h.int(&["ZREMRANGEBYSCORE", "z", "(2", "3"]), 1);
        assert_eq!(h.int(&["ZREM", "z", "b", "x"]), 1);
        assert_eq!(h.strings(&["ZPOPMAX", "z", "5"]), v(&["d", "4"]));
        assert!(h.zset("z").is_none());
        assert_eq!(h.dirty, 4);
        assert_eq!(h.err(&["ZPOPMIN", "z", "-1"]), MUST_BE_POSITIVE.text());
        h.int(&["ZADD", "z", "1", "a"]);
        assert_eq!(
            h.ok(&["ZMPOP", "2", "nokey", "z", "MIN"]),
            Reply::Array(vec![
                Reply::bulk_str("z"),
                Reply::Array(vec![Reply::Array(vec![
                    Reply::bulk_str("a"),
                    Reply::Double(1.0)
                ])])
            ])
        );
        assert_eq!(h.ok(&["ZMPOP", "1", "z", "MIN"]), Reply::NullArray);
    }

    #[test]
    fn set_algebra_with_weights_aggregates_and_plain_sets() {
        let mut h = Harness::new();
        h.int(&["ZADD", "a", "1", "x", "2", "y"]);
        h.int(&["ZADD", "b", "10", "y", "20", "z"]);
        assert_eq!(
            h.strings(&["ZUNION", "2", "a", "b", "WEIGHTS", "2", "1", "WITHSCORES"]),
            v(&["x", "2", "y", "14", "z", "20"])
        );
        assert_eq!(
            h.strings(&["ZINTER", "2", "a", "b", "AGGREGATE", "MIN", "WITHSCORES"]),
            v(&["y", "2"])
        );
        assert_eq!(h.strings(&["ZDIFF", "2", "a", "b"]), v(&["x"]));
        assert_eq!(h.int(&["ZINTERCARD", "2", "a", "b"]), 1);
        assert_eq!(
            h.err(&["ZUNION", "0", "a"]),
            "ERR at least 1 input key is needed for 'zunion' command"
        );
        assert_eq!(h.err(&["ZUNION", "3", "a", "b"]), "ERR syntax error");
        assert_eq!(
            h.err(&["ZUNION", "2", "a", "b", "WEIGHTS", "1", "x"]),
            WEIGHT_NOT_FLOAT.text()
        );
        h.dirty = 0;
        assert_eq!(h.int(&["ZUNIONSTORE", "d", "2", "a", "b"]), 3);
        assert_eq!(h.zset("d").unwrap().encoding_name(), "listpack");
        assert_eq!(h.int(&["ZDIFFSTORE", "d", "2", "a", "a"]), 0);
        assert!(h.zset("d").is_none());
        assert_eq!(h.dirty, 2);
    }

    #[test]
    fn zscan_and_zrandmember() {
        let mut h = Harness::new();
        h.int(&["ZADD", "z", "1.5", "a", "2", "b"]);
        assert_eq!(
            h.ok(&["ZSCAN", "z", "0"]),
            Reply::Array(vec![
                Reply::bulk_str("0"),
                Reply::Array(vec![
                    Reply::bulk_str("a"),
                    Reply::bulk_str("1.5"),
                    Reply::bulk_str("b"),
                    Reply::bulk_str("2"),
                ])
            ])
        );
        assert_eq!(h.strings(&["ZRANDMEMBER", "z", "-5"]).len(), 5);
        assert_eq!(h.strings(&["ZRANDMEMBER", "z", "9"]), v(&["b", "a"]));
        let members: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let mut argv = vec!["ZADD", "big"];
        for m in &members {
            argv.push("1");
            argv.push(m);
        }
        h.int(&argv);
        for count in ["5", "60"] {
            let mut picks = h.strings(&["ZRANDMEMBER", "big", count]);
            picks.sort();
            picks.dedup();
            assert_eq!(picks.len(), count.parse::<usize>().unwrap());
        }
        assert_eq!(h.strings(&["ZRANDMEMBER", "z", "1", "WITHSCORES"]).len(), 2);
    }
}

//! The geo family: GEOADD, GEOPOS, GEODIST, GEOHASH, GEOSEARCH, GEOSEARCHSTORE and the older
//! GEORADIUS, GEORADIUSBYMEMBER and their `_RO` forms. Points live in sorted sets, the score
//! being the 52-bit geohash (`geohash.rs`). Replies, error texts and their order follow Redis
//! 7.0's `geo.c`: coordinates in `%.17Lf` form with trailing zeros dropped (RESP3 doubles),
//! distances with four decimals as bulk strings, and GEOADD propagated as the ZADD it
//! performs.

use super::context::ExecCtx;
use super::errors;
use super::geohash::{self, Shape, ShapeKind};
use super::pqsort::partial_sort;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec, Scope,
};
use crate::config::values::notify;
use crate::keyspace::zset::{Item, Limits, ZSet};
use crate::keyspace::Value;
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const GEO: u32 = acl::GEO;
const G: &str = "geo";

const KEY_RW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::UPDATE)];
const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];

const fn store_keyword(keyword: &'static str, start_from: i32) -> KeySpec {
    KeySpec {
        notes: None,
        flags: kflag::OW | kflag::UPDATE,
        begin: BeginSearch::Keyword {
            keyword,
            start_from,
        },
        find: FindKeys::Range {
            last_key: 0,
            step: 1,
            limit: 0,
        },
    }
}

const GEORADIUS_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RO | kflag::ACCESS),
    store_keyword("STORE", 6),
    store_keyword("STOREDIST", 6),
];
const GEORADIUSBYMEMBER_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RO | kflag::ACCESS),
    store_keyword("STORE", 5),
    store_keyword("STOREDIST", 5),
];
const GEOSEARCHSTORE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::OW | kflag::UPDATE),
    KeySpec::single(2, kflag::RO | kflag::ACCESS),
];

pub const COMMANDS: &[C] = &[
    C::new(
        "geoadd",
        -5,
        WRITE | DENYOOM | REPLY_BEFORE_EVENTS,
        GEO,
        KEY_RW_UPDATE,
        G,
        "3.2.0",
        geoadd,
    ),
    C::new(
        "geopos",
        -2,
        READONLY,
        GEO,
        KEY_RO_ACCESS,
        G,
        "3.2.0",
        geopos,
    ),
    C::new(
        "geodist",
        -4,
        READONLY,
        GEO,
        KEY_RO_ACCESS,
        G,
        "3.2.0",
        geodist,
    ),
    C::new(
        "geohash",
        -2,
        READONLY,
        GEO,
        KEY_RO_ACCESS,
        G,
        "3.2.0",
        geohash_cmd,
    ),
    // The STORE key may appear anywhere among the options (and more than once), so these
    // two lock every shard rather than trust the keyword search.
    C::new(
        "georadius",
        -6,
        WRITE | DENYOOM,
        GEO,
        GEORADIUS_KEYS,
        G,
        "3.2.0",
        georadius,
    )
    .scope(Scope::All),
    C::new(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        GEO,
        GEORADIUSBYMEMBER_KEYS,
        G,
        "3.2.0",
        georadiusbymember,
    )
    .scope(Scope::All),
    C::new(
        "georadius_ro",
        -6,
        READONLY,
        GEO,
        KEY_RO_ACCESS,
        G,
        "3.2.10",
        georadius_ro,
    ),
    C::new(
        "georadiusbymember_ro",
        -5,
        READONLY,
        GEO,
        KEY_RO_ACCESS,
        G,
        "3.2.10",
        georadiusbymember_ro,
    ),
    C::new(
        "geosearch",
        -7,
        READONLY,
        GEO,
        KEY_RO_ACCESS,
        G,
        "6.2.0",
        geosearch,
    ),
    C::new(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        GEO,
        GEOSEARCHSTORE_KEYS,
        G,
        "6.2.0",
        geosearchstore,
    ),
];

const UNSUPPORTED_UNIT: ErrorReply =
    ErrorReply::fixed("ERR unsupported unit provided. please use M, KM, FT, MI");
const NEED_NUMERIC_RADIUS: ErrorReply = ErrorReply::fixed("ERR need numeric radius");
const NEED_NUMERIC_WIDTH: ErrorReply = ErrorReply::fixed("ERR need numeric width");
const NEED_NUMERIC_HEIGHT: ErrorReply = ErrorReply::fixed("ERR need numeric height");
const RADIUS_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR radius cannot be negative");
const BOX_NEGATIVE: ErrorReply = ErrorReply::fixed("ERR height or width cannot be negative");
const CANNOT_DECODE_MEMBER: ErrorReply =
    ErrorReply::fixed("ERR could not decode requested zset member");
const COUNT_NOT_POSITIVE: ErrorReply = ErrorReply::fixed("ERR COUNT must be > 0");
const ANY_WITHOUT_COUNT: ErrorReply =
    ErrorReply::fixed("ERR the ANY argument requires COUNT argument");

fn limits(ctx: &ExecCtx) -> Limits {
    let config = ctx.server.config();
    Limits {
        entries: config.zset_max_listpack_entries,
        value: config.zset_max_listpack_value,
    }
}

/// A double argument as `getDoubleFromObject` reads it (overflow to infinity refused unless
/// infinity was written).
fn parse_double(arg: &[u8]) -> Option<f64> {
    let v = match parse_hex_float(arg) {
        Some(v) => v,
        None => crate::util::parse_f64(arg)?,
    };
    if v.is_infinite() && !arg.to_ascii_lowercase().windows(3).any(|w| w == b"inf") {
        return None;
    }
    // strtod's underflow to zero (ERANGE) is refused too.
    if v == 0.0 && mantissa_nonzero(arg) {
        return None;
    }
    Some(v)
}

/// Whether the digits before the exponent of a number hold anything but zeros.
fn mantissa_nonzero(arg: &[u8]) -> bool {
    let body = arg
        .strip_prefix(b"-")
        .or_else(|| arg.strip_prefix(b"+"))
        .unwrap_or(arg);
    let (hex, body) = match body
        .strip_prefix(b"0x")
        .or_else(|| body.strip_prefix(b"0X"))
    {
        Some(rest) => (true, rest),
        None => (false, body),
    };
    let stop: &[u8] = if hex { b"pP" } else { b"eE" };
    body.iter()
        .take_while(|c| !stop.contains(c))
        .any(|&c| c.is_ascii_alphanumeric() && c != b'0')
}

/// `strtod`'s hexadecimal form: `[+-]0x<hex>[.<hex>][p[+-]<dec>]`, the whole argument.
fn parse_hex_float(arg: &[u8]) -> Option<f64> {
    let (neg, rest) = match arg.first()? {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    let rest = rest
        .strip_prefix(b"0x")
        .or_else(|| rest.strip_prefix(b"0X"))?;
    let (mut mantissa, mut digits, mut frac_digits, mut seen_dot) = (0.0f64, 0, 0i32, false);
    let mut i = 0;
    while i < rest.len() {
        let c = rest[i];
        if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            mantissa = mantissa * 16.0 + f64::from(d);
            digits += 1;
            if seen_dot {
                frac_digits += 1;
            }
        } else {
            break;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    let mut exp: i32 = 0;
    if i < rest.len() {
        if rest[i] != b'p' && rest[i] != b'P' {
            return None;
        }
        let e = std::str::from_utf8(&rest[i + 1..]).ok()?;
        let body = e.strip_prefix(['+', '-']).unwrap_or(e);
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        exp = e.parse::<i64>().ok()?.clamp(-100_000, 100_000) as i32;
    }
    let v = mantissa * 2f64.powi(exp - 4 * frac_digits);
    Some(if neg { -v } else { v })
}

fn double_arg(arg: &[u8], err: ErrorReply) -> Result<f64, ErrorReply> {
    parse_double(arg).ok_or(err)
}

/// Redis's `extractLongLatOrReply`: two floats within the supported limits.
fn lonlat_arg(lon: &[u8], lat: &[u8]) -> Result<[f64; 2], ErrorReply> {
    let x = double_arg(lon, errors::NOT_FLOAT)?;
    let y = double_arg(lat, errors::NOT_FLOAT)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(ErrorReply::owned(format!(
            "ERR invalid longitude,latitude pair {},{}",
            c_fixed6(x),
            c_fixed6(y)
        )));
    }
    Ok([x, y])
}

/// `printf("%f")`.
fn c_fixed6(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    format!("{d:.6}")
}

/// Meters per unit.
fn unit_arg(arg: &[u8]) -> Result<f64, ErrorReply> {
    let u = arg.to_ascii_lowercase();
    match &u[..] {
        b"m" => Ok(1.0),
        b"km" => Ok(1000.0),
        b"ft" => Ok(0.3048),
        b"mi" => Ok(1609.34),
        _ => Err(UNSUPPORTED_UNIT),
    }
}

/// `<radius> <unit>`: (radius, meters per unit).
fn radius_args(args: &[Bytes]) -> Result<(f64, f64), ErrorReply> {
    let r = double_arg(&args[0], NEED_NUMERIC_RADIUS)?;
    if r < 0.0 {
        return Err(RADIUS_NEGATIVE);
    }
    Ok((r, unit_arg(&args[1])?))
}

/// `<width> <height> <unit>`: (width, height, meters per unit).
fn box_args(args: &[Bytes]) -> Result<(f64, f64, f64), ErrorReply> {
    let w = double_arg(&args[0], NEED_NUMERIC_WIDTH)?;
    let h = double_arg(&args[1], NEED_NUMERIC_HEIGHT)?;
    if h < 0.0 || w < 0.0 {
        return Err(BOX_NEGATIVE);
    }
    Ok((w, h, unit_arg(&args[2])?))
}

fn coord(d: f64) -> Reply {
    Reply::DoubleText(geohash::format_coord(d))
}

fn distance_reply(d: f64) -> Reply {
    Reply::Bulk(Bytes::from(geohash::format_distance(d)))
}

// ---- GEOADD -------------------------------------------------------------------------------

fn geoadd(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut idx = 2;
    while idx < args.len() {
        let opt = &args[idx][..];
        if opt.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if opt.eq_ignore_ascii_case(b"ch") {
            ch = true;
        } else {
            break;
        }
        idx += 1;
    }
    let rest = args.len() - idx;
    if !rest.is_multiple_of(3) || (xx && nx) || rest == 0 {
        return Err(errors::SYNTAX);
    }
    let mut points = Vec::with_capacity(rest / 3);
    for triple in args[idx..].chunks(3) {
        let [x, y] = lonlat_arg(&triple[0], &triple[1])?;
        let score = geohash::score_of(x, y).unwrap_or(0);
        points.push((score, &triple[2]));
    }
    // Propagated as the ZADD it amounts to.
    let mut zadd_argv = Vec::with_capacity(idx + points.len() * 2);
    zadd_argv.push(Bytes::from_static(b"zadd"));
    zadd_argv.extend(args[1..idx].iter().cloned());
    for (score, member) in &points {
        zadd_argv.push(Bytes::from(score.to_string()));
        zadd_argv.push((*member).clone());
    }
    let key = &args[1];
    let lim = limits(ctx);
    let exists = super::zset::write_zset(ctx, key)?.is_some();
    if !exists {
        if xx {
            return Ok(Reply::Int(0));
        }
        let z = ZSet::new_for(points[0].1, lim);
        ctx.set_key(
            key,
            Value::ZSet(crate::keyspace::zset::Stored::new(z)),
            false,
        );
    }
    let z = super::zset::write_zset(ctx, key)?.expect("created above");
    let (mut added, mut updated) = (0u64, 0u64);
    for (score, member) in &points {
        let score = *score as f64;
        match z.score(member) {
            Some(cur) if !nx && cur != score => {
                z.update_score(member, cur, score);
                updated += 1;
            }
            Some(_) => {}
            None if !xx => {
                z.insert_new(member, score, lim);
                added += 1;
            }
            None => {}
        }
    }
    if z.is_empty() {
        ctx.delete(key);
    }
    ctx.dirty(added + updated);
    if added + updated > 0 {
        ctx.notify(notify::ZSET, "zadd", key);
    }
    ctx.propagate_as(zadd_argv);
    Ok(Reply::Int(if ch { added + updated } else { added } as i64))
}

// ---- GEOPOS, GEOHASH, GEODIST -------------------------------------------------------------

fn geopos(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let z = super::zset::read_zset(ctx, &args[1])?;
    let out = args[2..]
        .iter()
        .map(|m| {
            match z
                .as_ref()
                .and_then(|z| z.score(m))
                .and_then(geohash::decode_score)
            {
                Some([x, y]) => Reply::Array(vec![coord(x), coord(y)]),
                None => Reply::NullArray,
            }
        })
        .collect();
    Ok(Reply::Array(out))
}

fn geohash_cmd(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let z = super::zset::read_zset(ctx, &args[1])?;
    let out = args[2..]
        .iter()
        .map(|m| {
            match z
                .as_ref()
                .and_then(|z| z.score(m))
                .and_then(geohash::geohash_string)
            {
                Some(s) => Reply::Bulk(Bytes::copy_from_slice(&s)),
                None => Reply::Null,
            }
        })
        .collect();
    Ok(Reply::Array(out))
}

fn geodist(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let to_meters = match args.len() {
        5 => unit_arg(&args[4])?,
        n if n > 5 => return Err(errors::SYNTAX),
        _ => 1.0,
    };
    let Some(z) = super::zset::read_zset(ctx, &args[1])? else {
        return Ok(Reply::Null);
    };
    let (Some(s1), Some(s2)) = (z.score(&args[2]), z.score(&args[3])) else {
        return Ok(Reply::Null);
    };
    match (geohash::decode_score(s1), geohash::decode_score(s2)) {
        (Some([x1, y1]), Some([x2, y2])) => Ok(distance_reply(
            geohash::distance(x1, y1, x2, y2) / to_meters,
        )),
        _ => Ok(Reply::Null),
    }
}

// ---- the search commands ------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// GEORADIUS[_RO]: centre and radius are positional.
    Coords,
    /// GEORADIUSBYMEMBER[_RO]: member and radius are positional.
    Member,
    /// GEOSEARCH / GEOSEARCHSTORE: everything is an option.
    Search,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// One match: member, distance from the centre in meters, score, coordinates.
struct Point {
    member: Box<[u8]>,
    dist: f64,
    score: f64,
    xy: [f64; 2],
}

fn georadius(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Variant::Coords, true, false)
}

fn georadiusbymember(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Variant::Member, true, false)
}

fn georadius_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Variant::Coords, false, false)
}

fn georadiusbymember_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Variant::Member, false, false)
}

fn geosearch(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Variant::Search, false, false)
}

fn geosearchstore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Variant::Search, false, true)
}

/// Redis's `georadiusGeneric`. `store_ok`: the STORE / STOREDIST options are accepted
/// (GEORADIUS, GEORADIUSBYMEMBER); `searchstore`: GEOSEARCHSTORE.
fn search(
    ctx: &mut ExecCtx,
    args: &[Bytes],
    variant: Variant,
    store_ok: bool,
    searchstore: bool,
) -> CmdResult {
    let src_idx = if searchstore { 2 } else { 1 };
    let lim = limits(ctx);
    let z = super::zset::read_zset(ctx, &args[src_idx])?;
    let exists = z.is_some();
    let mut storekey: Option<&Bytes> = None;
    let mut storedist = false;
    let mut xy = [0.0f64; 2];
    let mut kind = ShapeKind::Circle { radius: 0.0 };
    let mut conversion = 1.0;
    let base = match variant {
        Variant::Coords => {
            xy = lonlat_arg(&args[2], &args[3])?;
            let (r, c) = radius_args(&args[4..6])?;
            kind = ShapeKind::Circle { radius: r };
            conversion = c;
            6
        }
        Variant::Member => {
            if let Some(z) = z.as_ref() {
                xy = z
                    .score(&args[2])
                    .and_then(geohash::decode_score)
                    .ok_or(CANNOT_DECODE_MEMBER)?;
                let (r, c) = radius_args(&args[3..5])?;
                kind = ShapeKind::Circle { radius: r };
                conversion = c;
            }
            5
        }
        Variant::Search => {
            if searchstore {
                storekey = Some(&args[1]);
                3
            } else {
                2
            }
        }
    };
    let is_search = variant == Variant::Search;
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let remaining = args.len().saturating_sub(base);
    let mut i = 0;
    while i < remaining {
        let arg = &args[base + i][..];
        let is = |name: &[u8]| arg.eq_ignore_ascii_case(name);
        if is(b"withdist") {
            withdist = true;
        } else if is(b"withhash") {
            withhash = true;
        } else if is(b"withcoord") {
            withcoord = true;
        } else if is(b"any") {
            any = true;
        } else if is(b"asc") {
            sort = Sort::Asc;
        } else if is(b"desc") {
            sort = Sort::Desc;
        } else if is(b"count") && i + 1 < remaining {
            count = crate::util::parse_int(&args[base + i + 1]).ok_or(errors::NOT_INTEGER)?;
            if count <= 0 {
                return Err(COUNT_NOT_POSITIVE);
            }
            i += 1;
        } else if (is(b"store") || is(b"storedist")) && i + 1 < remaining && store_ok {
            storekey = Some(&args[base + i + 1]);
            storedist = is(b"storedist");
            i += 1;
        } else if is(b"storedist") && searchstore {
            storedist = true;
        } else if is(b"frommember") && i + 1 < remaining && is_search && !fromloc {
            if let Some(z) = z.as_ref() {
                xy = z
                    .score(&args[base + i + 1])
                    .and_then(geohash::decode_score)
                    .ok_or(CANNOT_DECODE_MEMBER)?;
            }
            frommember = true;
            i += 1;
        } else if is(b"fromlonlat") && i + 2 < remaining && is_search && !frommember {
            xy = lonlat_arg(&args[base + i + 1], &args[base + i + 2])?;
            fromloc = true;
            i += 2;
        } else if is(b"byradius") && i + 2 < remaining && is_search && !bybox {
            let (r, c) = radius_args(&args[base + i + 1..base + i + 3])?;
            kind = ShapeKind::Circle { radius: r };
            conversion = c;
            byradius = true;
            i += 2;
        } else if is(b"bybox") && i + 3 < remaining && is_search && !byradius {
            let (w, h, c) = box_args(&args[base + i + 1..base + i + 4])?;
            kind = ShapeKind::Box {
                width: w,
                height: h,
            };
            conversion = c;
            bybox = true;
            i += 3;
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }

    if storekey.is_some() && (withdist || withhash || withcoord) {
        return Err(ErrorReply::owned(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if searchstore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    if is_search && !(frommember || fromloc) {
        return Err(ErrorReply::owned(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            command_name(&args[0])
        )));
    }
    if is_search && !(byradius || bybox) {
        return Err(ErrorReply::owned(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            command_name(&args[0])
        )));
    }
    if any && count == 0 {
        return Err(ANY_WITHOUT_COUNT);
    }

    let Some(z) = z.filter(|_| exists) else {
        return Ok(match storekey {
            Some(dst) => {
                if ctx.delete(dst) {
                    ctx.dirty(1);
                    ctx.notify(notify::GENERIC, "del", dst);
                }
                Reply::Int(0)
            }
            None => Reply::Array(Vec::new()),
        });
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let shape = Shape {
        xy,
        conversion,
        kind,
    };
    let limit = if any { count as usize } else { 0 };
    let mut points = points_in_cells(z, &shape, limit);

    if points.is_empty() && storekey.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let returned = if count == 0 {
        points.len()
    } else {
        points.len().min(count as usize)
    };
    if sort != Sort::None {
        let asc = |a: &Point, b: &Point| {
            if a.dist > b.dist {
                1
            } else if a.dist == b.dist {
                0
            } else {
                -1
            }
        };
        let cmp = |a: &Point, b: &Point| {
            if sort == Sort::Asc {
                asc(a, b)
            } else {
                -asc(a, b)
            }
        };
        if returned == points.len() {
            // glibc's qsort is a merge sort here: stable.
            points.sort_by(|a, b| cmp(a, b).cmp(&0));
        } else {
            partial_sort(&mut points, &cmp, 0, returned - 1);
        }
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= conversion;
    }

    let Some(dst) = storekey else {
        let options = usize::from(withdist) + usize::from(withhash) + usize::from(withcoord);
        let out = points
            .into_iter()
            .map(|p| {
                let member = Reply::Bulk(Bytes::from(Vec::from(p.member)));
                if options == 0 {
                    return member;
                }
                let mut item = Vec::with_capacity(options + 1);
                item.push(member);
                if withdist {
                    item.push(distance_reply(p.dist));
                }
                if withhash {
                    item.push(Reply::Int(p.score as i64));
                }
                if withcoord {
                    item.push(Reply::Array(vec![coord(p.xy[0]), coord(p.xy[1])]));
                }
                Reply::Array(item)
            })
            .collect();
        return Ok(Reply::Array(out));
    };
    let n = points.len();
    if n > 0 {
        let items = points
            .into_iter()
            .map(|p| Item {
                score: if storedist { p.dist } else { p.score },
                member: p.member,
            })
            .collect();
        let stored = ZSet::from_items(items, lim);
        ctx.set_key(
            dst,
            Value::ZSet(crate::keyspace::zset::Stored::new(stored)),
            false,
        );
        ctx.dirty(n as u64);
        let event = if ctx.current_command == "geosearchstore" {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        ctx.notify(notify::ZSET, event, dst);
    } else if ctx.delete(dst) {
        ctx.dirty(1);
        ctx.notify(notify::GENERIC, "del", dst);
    }
    Ok(Reply::Int(n as i64))
}

/// `%s` of the command name as the client typed it.
fn command_name(arg: &[u8]) -> String {
    let end = arg.iter().position(|&c| c == 0).unwrap_or(arg.len());
    String::from_utf8_lossy(&arg[..end]).into_owned()
}

/// Redis's `membersOfAllNeighbors`: scans the centre cell and its neighbours in order,
/// skipping empty cells and a cell equal to the last one scanned, and stops once `limit`
/// matches are found (0: no limit).
fn points_in_cells(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = geohash::search_cells(shape);
    let mut out = Vec::new();
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        if let Some(l) = last.filter(|&l| l > 0) {
            if cells[l] == *cell {
                continue;
            }
        }
        if !out.is_empty() && limit > 0 && out.len() >= limit {
            break;
        }
        let min = cell.align52() as f64;
        let max = geohash::HashBits {
            bits: cell.bits + 1,
            step: cell.step,
        }
        .align52() as f64;
        let start = z.partition_point(|it| it.score < min);
        for item in z.iter_from(start, false) {
            if item.score >= max {
                break;
            }
            if let Some(xy) = geohash::decode_score(item.score) {
                if let Some(dist) = geohash::within(shape, xy) {
                    out.push(Point {
                        member: item.member.clone(),
                        dist,
                        score: item.score,
                        xy,
                    });
                }
            }
            if !out.is_empty() && limit > 0 && out.len() >= limit {
                break;
            }
        }
        last = Some(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

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
                .chain(crate::commands::zset::COMMANDS)
                .find(|c| c.name == name)
                .expect("a geo command");
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

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}, expected an error"),
            }
        }
    }

    fn flat(r: Reply, out: &mut Vec<String>) {
        match r {
            Reply::Bulk(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
            Reply::DoubleText(t) => out.push(t),
            Reply::Int(i) => out.push(i.to_string()),
            Reply::Null | Reply::NullArray => out.push("nil".into()),
            Reply::Array(items) => items.into_iter().for_each(|i| flat(i, out)),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn strings(r: Reply) -> Vec<String> {
        let mut out = Vec::new();
        flat(r, &mut out);
        out
    }

    fn sicily(h: &mut Harness) {
        let r = h.ok(&[
            "GEOADD",
            "Sicily",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ]);
        assert_eq!(r, Reply::Int(2));
    }

    #[test]
    fn geoadd_options_and_errors() {
        let mut h = Harness::new();
        sicily(&mut h);
        assert_eq!(h.dirty, 2);
        assert_eq!(
            h.ok(&["GEOADD", "Sicily", "NX", "13", "38", "Palermo"]),
            Reply::Int(0)
        );
        assert_eq!(
            h.ok(&["GEOADD", "Sicily", "XX", "CH", "13", "38", "Palermo"]),
            Reply::Int(1)
        );
        assert_eq!(
            h.err(&["GEOADD", "Sicily", "200", "100", "x"]),
            "ERR invalid longitude,latitude pair 200.000000,100.000000"
        );
        assert_eq!(
            h.err(&["GEOADD", "Sicily", "NX", "XX", "1", "2", "x"]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["GEOADD", "Sicily", "1", "2", "3", "4"]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["GEOADD", "Sicily", "a", "2", "x"]),
            "ERR value is not a valid float"
        );
        assert_eq!(
            h.ok(&["GEOADD", "nokey", "XX", "1", "2", "x"]),
            Reply::Int(0)
        );
    }

    #[test]
    fn pos_hash_dist() {
        let mut h = Harness::new();
        sicily(&mut h);
        assert_eq!(
            strings(h.ok(&["GEOPOS", "Sicily", "Palermo", "nope"])),
            ["13.36138933897018433", "38.11555639549629859", "nil"]
        );
        assert_eq!(
            strings(h.ok(&["GEOHASH", "Sicily", "Palermo", "Catania", "x"])),
            ["sqc8b49rny0", "sqdtr74hyu0", "nil"]
        );
        assert_eq!(
            strings(h.ok(&["GEODIST", "Sicily", "Palermo", "Catania"])),
            ["166274.1516"]
        );
        assert_eq!(
            strings(h.ok(&["GEODIST", "Sicily", "Palermo", "Catania", "km"])),
            ["166.2742"]
        );
        assert_eq!(
            h.err(&["GEODIST", "Sicily", "Palermo", "Catania", "yd"]),
            "ERR unsupported unit provided. please use M, KM, FT, MI"
        );
        assert_eq!(h.ok(&["GEODIST", "none", "a", "b"]), Reply::Null);
    }

    #[test]
    fn searches() {
        let mut h = Harness::new();
        sicily(&mut h);
        assert_eq!(
            strings(h.ok(&[
                "GEORADIUS",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "WITHDIST",
                "ASC"
            ])),
            ["Catania", "56.4413", "Palermo", "190.4424"]
        );
        assert_eq!(
            strings(h.ok(&[
                "GEOSEARCH",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYBOX",
                "400",
                "400",
                "km",
                "ASC",
                "WITHHASH"
            ])),
            ["Catania", "3479447370796909", "Palermo", "3479099956230698"]
        );
        assert_eq!(
            strings(h.ok(&[
                "GEOSEARCH",
                "Sicily",
                "FROMMEMBER",
                "Palermo",
                "BYRADIUS",
                "100",
                "km"
            ])),
            ["Palermo"]
        );
        assert_eq!(
            h.ok(&[
                "GEOSEARCHSTORE",
                "dst",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
                "STOREDIST"
            ]),
            Reply::Int(2)
        );
        assert_eq!(
            h.err(&["GEOSEARCH", "Sicily", "BYRADIUS", "1", "km", "ASC", "DESC"]),
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"
        );
        assert_eq!(
            h.err(&["GEORADIUS", "Sicily", "15", "37", "200", "km", "ANY"]),
            "ERR the ANY argument requires COUNT argument"
        );
        assert_eq!(
            h.err(&["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "x", "WITHDIST"]),
            "ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        );
        assert_eq!(
            h.err(&[
                "GEORADIUS_RO",
                "Sicily",
                "15",
                "37",
                "200",
                "km",
                "STORE",
                "x"
            ]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["GEORADIUSBYMEMBER", "Sicily", "nope", "200", "km"]),
            "ERR could not decode requested zset member"
        );
    }
}

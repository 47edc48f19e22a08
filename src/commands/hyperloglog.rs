//! The HyperLogLog family: PFADD, PFCOUNT, PFMERGE, PFSELFTEST and PFDEBUG, mirroring Redis
//! 7.0's `hyperloglog.c`. Sketches are plain string values in Redis's byte format (see
//! `keyspace::hll`), so GET/SET move them between servers. Like Redis, every command that
//! changes a sketch turns the value into a raw string first, PFCOUNT on one key writes the
//! cached cardinality back (and so counts as a change that propagates), and a corrupted sparse
//! sketch is answered with INVALIDOBJ.

use super::context::ExecCtx;
use super::errors;
use super::spec::{acl, flag::*, kflag, CmdResult, CommandSpec as C, KeySpec};
use crate::config::values::notify;
use crate::keyspace::hll::{self, Corrupt};
use crate::keyspace::{StrValue, Value};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const HLL: u32 = acl::HYPERLOGLOG;

const PFADD_KEYS: &[KeySpec] = &[KeySpec::single(1, kflag::RW | kflag::INSERT)];
const PFCOUNT_KEYS: &[KeySpec] = &[KeySpec::range(1, -1, 1, kflag::RW | kflag::ACCESS).notes(
    "RW because it may change the internal representation of the key, and propagate to replicas",
)];
const PFMERGE_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RW | kflag::ACCESS | kflag::INSERT),
    KeySpec::range(2, -1, 1, kflag::RO | kflag::ACCESS),
];
const PFDEBUG_KEYS: &[KeySpec] = &[KeySpec::single(2, kflag::RW | kflag::ACCESS)];

pub const COMMANDS: &[C] = &[
    C::new(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        HLL,
        PFADD_KEYS,
        "hyperloglog",
        "2.8.9",
        pfadd,
    ),
    C::new(
        "pfcount",
        -2,
        READONLY | MAY_REPLICATE,
        HLL,
        PFCOUNT_KEYS,
        "hyperloglog",
        "2.8.9",
        pfcount,
    ),
    C::new(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        HLL,
        PFMERGE_KEYS,
        "hyperloglog",
        "2.8.9",
        pfmerge,
    ),
    C::new(
        "pfselftest",
        1,
        ADMIN,
        HLL,
        &[],
        "hyperloglog",
        "2.8.9",
        pfselftest,
    ),
    C::new(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        HLL,
        PFDEBUG_KEYS,
        "hyperloglog",
        "2.8.9",
        pfdebug,
    ),
];

fn invalid(_: Corrupt) -> ErrorReply {
    errors::HLL_INVALID
}

fn sparse_max_bytes(ctx: &ExecCtx) -> u64 {
    ctx.server.config().hll_sparse_max_bytes
}

/// Checks that a string value holds a sketch (Redis's `isHLLObjectOrReply` after the type
/// check) and makes it a raw string to modify in place.
fn unshare(s: &mut StrValue) -> Result<&mut Vec<u8>, ErrorReply> {
    if matches!(s, StrValue::Int(_)) || !hll::looks_valid(&s.to_bytes()) {
        return Err(errors::HLL_WRONGTYPE);
    }
    Ok(s.make_raw())
}

/// Looks a sketch up for writing: `None` when missing.
fn write_hll<'c>(ctx: &'c mut ExecCtx, key: &[u8]) -> Result<Option<&'c mut Vec<u8>>, ErrorReply> {
    match ctx.write_str(key)? {
        None => Ok(None),
        Some(s) => unshare(s).map(Some),
    }
}

/// Stores a new empty sketch under `key` and returns it.
fn create<'c>(ctx: &'c mut ExecCtx, key: &[u8]) -> &'c mut Vec<u8> {
    ctx.set_key(key, Value::Str(StrValue::raw(hll::new_sparse())), false);
    ctx.write_str(key)
        .ok()
        .flatten()
        .expect("the key was just stored")
        .make_raw()
}

fn pfadd(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let max = sparse_max_bytes(ctx);
    let key = &args[1];
    let mut updated = 0u64;
    let buf = if write_hll(ctx, key)?.is_some() {
        write_hll(ctx, key)?.expect("found above")
    } else {
        updated += 1;
        create(ctx, key)
    };
    for ele in &args[2..] {
        if hll::add(buf, ele, max).map_err(invalid)? {
            updated += 1;
        }
    }
    if updated > 0 {
        hll::invalidate_cache(buf);
        ctx.dirty(updated);
        ctx.notify(notify::STRING, "pfadd", key);
    }
    Ok(Reply::Int((updated > 0) as i64))
}

fn pfcount(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        let mut max = [0u8; hll::REGISTERS];
        for key in &args[1..] {
            let Some(s) = ctx.read_str(key)? else {
                continue;
            };
            let bytes = s.to_bytes();
            if matches!(s, StrValue::Int(_)) || !hll::looks_valid(&bytes) {
                return Err(errors::HLL_WRONGTYPE);
            }
            hll::merge_into(&mut max, &bytes).map_err(invalid)?;
        }
        return Ok(Reply::Int(hll::count_raw(&max) as i64));
    }
    let Some(s) = ctx.read_str(&args[1])? else {
        return Ok(Reply::Int(0));
    };
    let buf = unshare(s)?;
    if let Some(card) = hll::cached_card(buf) {
        return Ok(Reply::Int(card as i64));
    }
    let card = hll::count(buf).map_err(invalid)?;
    hll::set_cached_card(buf, card);
    ctx.dirty(1);
    Ok(Reply::Int(card as i64))
}

fn pfmerge(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    let mut max = [0u8; hll::REGISTERS];
    let mut use_dense = false;
    for key in &args[1..] {
        let Some(s) = ctx.read_str(key)? else {
            continue;
        };
        let bytes = s.to_bytes();
        if matches!(s, StrValue::Int(_)) || !hll::looks_valid(&bytes) {
            return Err(errors::HLL_WRONGTYPE);
        }
        if hll::encoding(&bytes) == hll::ENC_DENSE {
            use_dense = true;
        }
        hll::merge_into(&mut max, &bytes).map_err(invalid)?;
    }
    let dest = &args[1];
    let buf = if write_hll(ctx, dest)?.is_some() {
        write_hll(ctx, dest)?.expect("found above")
    } else {
        create(ctx, dest)
    };
    if use_dense {
        hll::to_dense(buf).map_err(invalid)?;
    }
    for (i, &v) in max.iter().enumerate() {
        if v == 0 {
            continue;
        }
        if hll::encoding(buf) == hll::ENC_DENSE {
            if v > hll::dense_get(&buf[hll::HDR..], i) {
                hll::dense_put(&mut buf[hll::HDR..], i, v);
            }
        } else {
            // Redis ignores a corrupt destination here: the sources were all valid.
            let _ = hll::sparse_set(buf, i, v, max_bytes);
        }
    }
    hll::invalidate_cache(buf);
    ctx.dirty(1);
    ctx.notify(notify::STRING, "pfadd", dest);
    Ok(Reply::simple("OK"))
}

/// A self-check of the register packing and of sparse/dense agreement, on a deterministic
/// sequence (Redis uses `rand()` and ten million elements; this stops at a million).
fn pfselftest(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let max_bytes = sparse_max_bytes(ctx);
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ ctx.now_us;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut regs = vec![0u8; hll::DENSE_SIZE - hll::HDR];
    let mut bytes = vec![0u8; hll::REGISTERS];
    for _ in 0..10 {
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (next() & 63) as u8;
            hll::dense_put(&mut regs, i, *b);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let got = hll::dense_get(&regs, i);
            if got != b {
                return Err(ErrorReply::owned(format!(
                    "ERR TESTFAILED Register {i} should be {b} but is {got}"
                )));
            }
        }
    }
    let mut dense = hll::new_sparse();
    hll::to_dense(&mut dense).map_err(invalid)?;
    let mut sparse = hll::new_sparse();
    let relerr = 1.04 / (hll::REGISTERS as f64).sqrt();
    let seed = next();
    let mut checkpoint = 1u64;
    for j in 1..=1_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        hll::add(&mut dense, &ele, max_bytes).map_err(invalid)?;
        hll::add(&mut sparse, &ele, max_bytes).map_err(invalid)?;
        if j != checkpoint {
            continue;
        }
        if j < max_bytes / 2 && hll::encoding(&sparse) != hll::ENC_SPARSE {
            return Err(ErrorReply::owned(
                "ERR TESTFAILED sparse encoding not used".into(),
            ));
        }
        let card = hll::count(&dense).map_err(invalid)?;
        if hll::count(&sparse).map_err(invalid)? != card {
            return Err(ErrorReply::owned(
                "ERR TESTFAILED dense/sparse disagree".into(),
            ));
        }
        let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(ErrorReply::owned(format!(
                "ERR TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            )));
        }
        checkpoint *= 10;
    }
    Ok(Reply::simple("OK"))
}

fn pfdebug(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let Some(buf) = write_hll(ctx, &args[2])? else {
        return Err(errors::HLL_NO_KEY);
    };
    let arity_ok = args.len() == 3;
    match sub.to_ascii_lowercase().as_slice() {
        b"getreg" => {
            if !arity_ok {
                return Err(errors::pfdebug_wrong_arity(sub));
            }
            let mut converted = false;
            if hll::encoding(buf) == hll::ENC_SPARSE {
                hll::to_dense(buf).map_err(invalid)?;
                converted = true;
            }
            let regs = (0..hll::REGISTERS)
                .map(|i| Reply::Int(hll::dense_get(&buf[hll::HDR..], i) as i64))
                .collect();
            if converted {
                ctx.dirty(1);
            }
            Ok(Reply::Array(regs))
        }
        b"decode" => {
            if !arity_ok {
                return Err(errors::pfdebug_wrong_arity(sub));
            }
            if hll::encoding(buf) != hll::ENC_SPARSE {
                return Err(errors::HLL_NOT_SPARSE);
            }
            Ok(Reply::bulk(hll::decode(buf).into_bytes()))
        }
        b"encoding" => {
            if !arity_ok {
                return Err(errors::pfdebug_wrong_arity(sub));
            }
            Ok(Reply::simple(match hll::encoding(buf) {
                hll::ENC_DENSE => "dense",
                _ => "sparse",
            }))
        }
        b"todense" => {
            if !arity_ok {
                return Err(errors::pfdebug_wrong_arity(sub));
            }
            if hll::encoding(buf) != hll::ENC_SPARSE {
                return Ok(Reply::Int(0));
            }
            hll::to_dense(buf).map_err(invalid)?;
            ctx.dirty(1);
            Ok(Reply::Int(1))
        }
        _ => Err(errors::pfdebug_unknown_subcommand(sub)),
    }
}

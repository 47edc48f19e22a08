//! Connection and server commands that act on the caller or the whole dataset: PING, ECHO,
//! QUIT, SELECT, SWAPDB, DBSIZE, FLUSHDB, FLUSHALL, TIME, LASTSAVE, SAVE, BGSAVE,
//! BGREWRITEAOF. The saves themselves run in the server (`server/rdb_save.rs`) once the
//! handler has decided the reply.

use super::context::ExecCtx;
use super::errors;
use super::spec::{acl, flag::*, CmdResult, CommandSpec as C, Scope};
use crate::resp::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

pub const COMMANDS: &[C] = &[
    C::new(
        "ping",
        -1,
        FAST,
        acl::CONNECTION,
        &[],
        "connection",
        "1.0.0",
        ping,
    )
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    C::new(
        "echo",
        2,
        LOADING | STALE | FAST,
        acl::CONNECTION,
        &[],
        "connection",
        "1.0.0",
        echo,
    ),
    C::new(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        acl::CONNECTION,
        &[],
        "connection",
        "1.0.0",
        quit,
    ),
    C::new(
        "select",
        2,
        LOADING | STALE | FAST,
        acl::CONNECTION,
        &[],
        "connection",
        "1.0.0",
        select,
    ),
    C::new(
        "swapdb",
        3,
        WRITE | FAST,
        acl::KEYSPACE | acl::DANGEROUS,
        &[],
        "server",
        "4.0.0",
        swapdb,
    )
    .scope(Scope::All),
    C::new(
        "dbsize",
        1,
        READONLY | FAST,
        acl::KEYSPACE,
        &[],
        "server",
        "1.0.0",
        dbsize,
    )
    .scope(Scope::All)
    .tips(&["request_policy:all_shards", "response_policy:agg_sum"]),
    C::new(
        "flushdb",
        -1,
        WRITE,
        acl::KEYSPACE | acl::DANGEROUS,
        &[],
        "server",
        "1.0.0",
        flushdb,
    )
    .scope(Scope::All)
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    C::new(
        "flushall",
        -1,
        WRITE,
        acl::KEYSPACE | acl::DANGEROUS,
        &[],
        "server",
        "1.0.0",
        flushall,
    )
    .scope(Scope::All)
    .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    C::new(
        "time",
        1,
        LOADING | STALE | FAST,
        0,
        &[],
        "server",
        "2.6.0",
        time,
    )
    .tips(&["nondeterministic_output"]),
    C::new(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        acl::ADMIN | acl::DANGEROUS,
        &[],
        "server",
        "1.0.0",
        lastsave,
    )
    .tips(&["nondeterministic_output"]),
    C::new(
        "save",
        1,
        NO_ASYNC_LOADING | ADMIN | NOSCRIPT | NO_MULTI,
        0,
        &[],
        "server",
        "1.0.0",
        save,
    ),
    C::new(
        "bgsave",
        -1,
        NO_ASYNC_LOADING | ADMIN | NOSCRIPT,
        0,
        &[],
        "server",
        "1.0.0",
        bgsave,
    ),
    C::new(
        "bgrewriteaof",
        1,
        NO_ASYNC_LOADING | ADMIN | NOSCRIPT,
        0,
        &[],
        "server",
        "1.0.0",
        bgrewriteaof,
    ),
];

const BGSAVE_IN_PROGRESS: crate::resp::ErrorReply =
    crate::resp::ErrorReply::fixed("ERR Background save already in progress");

/// SAVE: a snapshot written in the foreground; the reply waits for the file.
fn save(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    if ctx.server.rdb.in_progress.load(Relaxed) {
        return Err(BGSAVE_IN_PROGRESS);
    }
    ctx.effects.request().persistence = Some(super::context::PersistenceRequest::Save);
    Ok(Reply::OK)
}

/// BGSAVE [SCHEDULE]: Redis counts an AOF rewrite as the one child it allows, so while one
/// runs (or inside EXEC) a save can only be scheduled for when it is over.
fn bgsave(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if args[1].eq_ignore_ascii_case(b"schedule") => true,
        _ => return Err(errors::SYNTAX),
    };
    if ctx.server.rdb.in_progress.load(Relaxed) {
        return Err(BGSAVE_IN_PROGRESS);
    }
    let in_exec = ctx.deny_blocking && !ctx.in_script;
    if ctx.server.aof.rewrite_in_progress.load(Relaxed) || in_exec {
        if !(schedule || in_exec) {
            return Err(crate::resp::ErrorReply::fixed(
                "ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.",
            ));
        }
        ctx.server.rdb.scheduled.store(true, Relaxed);
        return Ok(Reply::simple("Background saving scheduled"));
    }
    ctx.effects.request().persistence = Some(super::context::PersistenceRequest::Bgsave);
    Ok(Reply::simple("Background saving started"))
}

/// BGREWRITEAOF: the rewrite itself runs in the server once this reply is decided.
fn bgrewriteaof(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    if ctx.server.aof.rewrite_in_progress.load(Relaxed) {
        return Err(errors::AOF_REWRITE_IN_PROGRESS);
    }
    // Inside EXEC, or while a background save runs, the cron starts it later, as Redis does.
    if ctx.deny_blocking || ctx.server.rdb.in_progress.load(Relaxed) {
        ctx.server.aof.rewrite_scheduled.store(true, Relaxed);
        return Ok(Reply::simple(
            "Background append only file rewriting scheduled",
        ));
    }
    ctx.effects.request().persistence = Some(super::context::PersistenceRequest::RewriteAof);
    Ok(Reply::simple(
        "Background append only file rewriting started",
    ))
}

fn ping(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(errors::wrong_arity("ping"));
    }
    if ctx.client.subscriptions.active() && !ctx.client.resp3 {
        // In Pub/Sub mode a RESP2 client gets PING's answer in the shape of a message.
        return Ok(Reply::Array(vec![
            Reply::bulk(Bytes::from_static(b"pong")),
            Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
        ]));
    }
    Ok(match args.get(1) {
        Some(msg) => Reply::Bulk(msg.clone()),
        None => Reply::simple("PONG"),
    })
}

fn echo(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Bulk(args[1].clone()))
}

fn quit(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    ctx.effects.close_after_reply = true;
    Ok(Reply::OK)
}

/// Parses a database index argument the way SELECT / MOVE / SWAPDB do.
pub fn db_index(
    ctx: &ExecCtx,
    arg: &[u8],
    invalid: crate::resp::ErrorReply,
) -> Result<usize, crate::resp::ErrorReply> {
    let idx = crate::util::parse_int(arg).ok_or(invalid)?;
    if idx < 0 || idx as usize >= ctx.server.keyspace.databases() {
        return Err(errors::DB_INDEX_OUT_OF_RANGE);
    }
    Ok(idx as usize)
}

fn select(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let idx = crate::util::parse_int(&args[1]).ok_or(errors::NOT_INTEGER)?;
    if ctx.server.config().cluster_enabled && idx != 0 {
        return Err(errors::SELECT_NOT_ALLOWED_IN_CLUSTER);
    }
    if idx < 0 || idx as usize >= ctx.server.keyspace.databases() {
        return Err(errors::DB_INDEX_OUT_OF_RANGE);
    }
    ctx.client.db = idx as usize;
    Ok(Reply::OK)
}

fn swapdb(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if ctx.server.config().cluster_enabled {
        return Err(crate::resp::ErrorReply::fixed(
            "ERR SWAPDB is not allowed in cluster mode",
        ));
    }
    let a = db_index(
        ctx,
        &args[1],
        crate::resp::ErrorReply::fixed("ERR invalid first DB index"),
    )?;
    let b = db_index(
        ctx,
        &args[2],
        crate::resp::ErrorReply::fixed("ERR invalid second DB index"),
    )?;
    if a != b {
        ctx.touch_swapped_dbs(a, b);
        ctx.ks().swap_db(a, b);
        ctx.server.blocks.signal_db(a);
        ctx.server.blocks.signal_db(b);
    }
    ctx.dirty(1);
    Ok(Reply::OK)
}

fn dbsize(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let db = ctx.db();
    Ok(Reply::Int(ctx.ks().db_size(db) as i64))
}

/// FLUSHDB / FLUSHALL take an optional ASYNC or SYNC.
fn flush_mode(args: &[Bytes]) -> Result<(), crate::resp::ErrorReply> {
    match args.len() {
        1 => Ok(()),
        2 if args[1].eq_ignore_ascii_case(b"async") || args[1].eq_ignore_ascii_case(b"sync") => {
            Ok(())
        }
        _ => Err(errors::SYNTAX),
    }
}

fn flushdb(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    let db = ctx.db();
    ctx.touch_flushed_db(db);
    super::tracking::invalidate_all(ctx.server);
    // Blocked XREADGROUP clients learn that their stream went away.
    ctx.server.blocks.signal_db(db);
    let removed = ctx.ks().flush_db(db);
    ctx.dirty(removed as u64);
    // Replicas must flush too, even when this database was already empty.
    ctx.force_propagation();
    Ok(Reply::OK)
}

fn flushall(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    flush_mode(args)?;
    // Like Redis killing its BGSAVE child: the save is called off rather than kept going
    // with a copy of everything being flushed.
    if ctx.server.rdb.in_progress.load(Relaxed) {
        if let Some(cut) = ctx.server.keyspace.snapshot().in_progress() {
            cut.abandon();
        }
    }
    let mut removed = 0;
    super::tracking::invalidate_all(ctx.server);
    for db in 0..ctx.server.keyspace.databases() {
        ctx.touch_flushed_db(db);
        ctx.server.blocks.signal_db(db);
        removed += ctx.ks().flush_db(db);
    }
    // Redis counts FLUSHALL as one more change so a following save is not skipped.
    ctx.dirty(removed as u64 + 1);
    ctx.force_propagation();
    Ok(Reply::OK)
}

fn time(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let us = ctx.now_us;
    Ok(Reply::Array(vec![
        Reply::bulk_str(&(us / 1_000_000).to_string()),
        Reply::bulk_str(&(us % 1_000_000).to_string()),
    ]))
}

fn lastsave(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.server.last_save_secs.load(Relaxed)))
}

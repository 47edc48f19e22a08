//! Transactions: MULTI queues commands (dispatch does the queueing, after the admission
//! gates, exactly where Redis does), EXEC runs the queue under one set of shard locks so the
//! whole transaction is atomic, DISCARD drops it. A command refused while queueing makes EXEC
//! answer EXECABORT. WATCH makes EXEC fail (a null reply) when a watched key was modified or
//! expired in the meantime; the bookkeeping is in `watch.rs`.

use super::context::{ExecCtx, Multi};
use super::errors;
use super::spec::{acl, flag::*, kflag, CmdResult, CommandSpec as C, KeySpec};
use super::table::{CommandTable, Lookup};
use crate::resp::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

const TX: u32 = acl::TRANSACTION;
const WATCH_KEYS: &[KeySpec] = &[KeySpec::range(1, -1, 1, kflag::RO)];

pub const COMMANDS: &[C] = &[
    C::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        TX,
        &[],
        "transactions",
        "1.2.0",
        multi,
    ),
    C::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        TX,
        &[],
        "transactions",
        "1.2.0",
        exec,
    ),
    C::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        TX,
        &[],
        "transactions",
        "2.0.0",
        discard,
    ),
    C::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        TX,
        WATCH_KEYS,
        "transactions",
        "2.2.0",
        watch,
    ),
    C::new(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        TX,
        &[],
        "transactions",
        "2.2.0",
        unwatch,
    ),
];

const WATCH_INSIDE_MULTI: crate::resp::ErrorReply =
    crate::resp::ErrorReply::fixed("ERR WATCH inside MULTI is not allowed");

fn watch(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(WATCH_INSIDE_MULTI);
    }
    let db = ctx.db();
    let now = ctx.now_ms;
    for key in &args[1..] {
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, k)| *d == db && k[..] == key[..])
        {
            continue;
        }
        let expired = ctx.ks().peek(db, key).is_some_and(|e| e.is_expired(now));
        let (id, dirty) = (ctx.client.id, ctx.client.cas_dirty.clone());
        if ctx.server.watches.watch(db, key, id, &dirty, expired) {
            ctx.client.watched.push((db, key[..].into()));
        }
    }
    Ok(Reply::OK)
}

/// Drops every watch of the calling client and clears its failed-transaction flag.
pub fn unwatch_all(
    client: &mut super::context::ClientState,
    server: &crate::server::state::ServerState,
) {
    let watched = std::mem::take(&mut client.watched);
    server.watches.unwatch(client.id, &watched);
    client.cas_dirty.store(false, Relaxed);
}

fn unwatch(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    unwatch_all(ctx.client, ctx.server);
    Ok(Reply::OK)
}

/// Whether a key watched while it was live has expired since (Redis's `isWatchedKeyExpired`).
fn watched_key_expired(ctx: &mut ExecCtx) -> bool {
    let now = ctx.now_ms;
    let id = ctx.client.id;
    let watched = ctx.client.watched.clone();
    watched.iter().any(|(db, key)| {
        !ctx.server.watches.is_stale(*db, key, id)
            && ctx.ks().peek(*db, key).is_some_and(|e| e.is_expired(now))
    })
}

/// Commands that act immediately even inside MULTI.
pub fn runs_inside_multi(fullname: &str) -> bool {
    matches!(
        fullname,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(errors::MULTI_NESTED);
    }
    ctx.client.multi = Some(Multi::default());
    Ok(Reply::OK)
}

fn discard(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    match ctx.client.multi.take() {
        Some(_) => {
            unwatch_all(ctx.client, ctx.server);
            Ok(Reply::OK)
        }
        None => Err(errors::DISCARD_WITHOUT_MULTI),
    }
}

fn exec(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let Some(tx) = ctx.client.multi.take() else {
        return Err(errors::EXEC_WITHOUT_MULTI);
    };
    if tx.aborted {
        unwatch_all(ctx.client, ctx.server);
        return Err(errors::EXECABORT);
    }
    if ctx.client.cas_dirty.load(Relaxed) || watched_key_expired(ctx) {
        unwatch_all(ctx.client, ctx.server);
        return Ok(Reply::NullArray);
    }
    unwatch_all(ctx.client, ctx.server);
    let table: &'static CommandTable = ctx.server.commands;
    let exec_name = ctx.current_command;
    let mut replies = Vec::with_capacity(tx.queued.len());
    ctx.deny_blocking = true;
    for args in &tx.queued {
        let Lookup::Found(cmd) = table.lookup(args) else {
            unreachable!("queued commands were looked up when queued");
        };
        if let Err(e) = super::acl::recheck_queued(ctx, cmd, args) {
            ctx.server.count_error(e.code());
            replies.push(Reply::Error(e));
            continue;
        }
        let reply = super::dispatch::call(ctx, cmd, args);
        let stats = &ctx.server.command_stats[cmd.id];
        stats.calls.fetch_add(1, Relaxed);
        ctx.server
            .stats
            .total_commands_processed
            .fetch_add(1, Relaxed);
        if let Reply::Error(e) = &reply {
            stats.failed_calls.fetch_add(1, Relaxed);
            ctx.server.count_error(e.code());
        }
        replies.push(reply);
    }
    ctx.current_command = exec_name;
    ctx.deny_blocking = false;
    Ok(Reply::Array(replies))
}

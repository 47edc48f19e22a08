//! Transactions: MULTI queues commands (dispatch does the queueing, after the admission
//! gates, exactly where Redis does), EXEC runs the queue under one set of shard locks so the
//! whole transaction is atomic, DISCARD drops it. A command refused while queueing makes EXEC
//! answer EXECABORT. WATCH needs modified-key signalling and is not available yet.

use super::context::{ExecCtx, Multi};
use super::errors;
use super::spec::{acl, flag::*, CmdResult, CommandSpec as C};
use super::table::{CommandTable, Lookup};
use crate::resp::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

const TX: u32 = acl::TRANSACTION;

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
];

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
        Some(_) => Ok(Reply::OK),
        None => Err(errors::DISCARD_WITHOUT_MULTI),
    }
}

fn exec(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let Some(tx) = ctx.client.multi.take() else {
        return Err(errors::EXEC_WITHOUT_MULTI);
    };
    if tx.aborted {
        return Err(errors::EXECABORT);
    }
    let table: &'static CommandTable = ctx.server.commands;
    let exec_name = ctx.current_command;
    let mut replies = Vec::with_capacity(tx.queued.len());
    for args in &tx.queued {
        let Lookup::Found(cmd) = table.lookup(args) else {
            unreachable!("queued commands were looked up when queued");
        };
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
    Ok(Reply::Array(replies))
}

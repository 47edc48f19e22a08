//! The primary side of the replication handshake: SYNC and PSYNC (which hand the connection
//! over to the replica link in `server/replication_driver.rs` once the reply is due) and
//! REPLCONF (the options a replica announces about itself, and its acknowledgements); and
//! the replica's commands: REPLICAOF / SLAVEOF (which point the link task in
//! `server/replica_driver.rs` at a primary) and ROLE.

use super::context::{ExecCtx, ReplicaSync};
use super::errors;
use super::spec::{acl, flag::*, CmdResult, CommandSpec as C};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const SYNC_FLAGS: u32 = NO_ASYNC_LOADING | ADMIN | NO_MULTI | NOSCRIPT;
const REPLICAOF_FLAGS: u32 = NO_ASYNC_LOADING | ADMIN | NOSCRIPT | STALE;

pub const COMMANDS: &[C] = &[
    C::new(
        "sync",
        1,
        SYNC_FLAGS,
        acl::ADMIN | acl::DANGEROUS,
        &[],
        "server",
        "1.0.0",
        sync,
    ),
    C::new(
        "psync",
        -3,
        SYNC_FLAGS,
        acl::ADMIN | acl::DANGEROUS,
        &[],
        "server",
        "2.8.0",
        psync,
    ),
    C::new(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        acl::ADMIN | acl::DANGEROUS,
        &[],
        "server",
        "3.0.0",
        replconf,
    ),
    C::new(
        "replicaof",
        3,
        REPLICAOF_FLAGS,
        0,
        &[],
        "server",
        "5.0.0",
        replicaof,
    ),
    C::new(
        "slaveof",
        3,
        REPLICAOF_FLAGS,
        0,
        &[],
        "server",
        "1.0.0",
        replicaof,
    ),
    C::new(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        acl::ADMIN | acl::DANGEROUS,
        &[],
        "server",
        "2.8.12",
        role,
    ),
    C::new(
        "wait",
        3,
        NOSCRIPT,
        acl::CONNECTION,
        &[],
        "generic",
        "3.0.0",
        wait,
    )
    .tips(&["request_policy:all_shards", "response_policy:agg_min"]),
];

/// WAIT numreplicas timeout: how many replicas acknowledged this client's last write,
/// waiting (up to `timeout` ms, 0 = forever) for `numreplicas` of them.
fn wait(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if ctx.server.role.is_replica() {
        return Err(errors::WAIT_ON_REPLICA);
    }
    let numreplicas = ctx.int_arg(&args[1])?;
    let timeout = crate::util::parse_int(&args[2]).ok_or(errors::TIMEOUT_NOT_INT)?;
    if timeout < 0 {
        return Err(errors::TIMEOUT_NEGATIVE);
    }
    let offset = ctx.client.woff;
    let acked = count_acks(ctx.server, offset);
    if acked >= numreplicas || ctx.client.multi.is_some() || ctx.deny_blocking {
        return Ok(Reply::Int(acked));
    }
    let deadline_ms = match timeout {
        0 => 0,
        t => ctx.now_ms.saturating_add(t as u64),
    };
    ctx.effects.request().wait_acks = Some(super::context::WaitAcks {
        numreplicas,
        offset,
        deadline_ms,
    });
    Ok(Reply::NoReply)
}

/// Online replicas whose acknowledged offset reached `offset`.
pub fn count_acks(server: &crate::server::state::ServerState, offset: u64) -> i64 {
    server
        .replicas
        .lock()
        .values()
        .filter(|r| r.state == "online" && r.ack_offset >= offset)
        .count() as i64
}

/// REPLICAOF host port | NO ONE.
fn replicaof(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    use crate::server::replica_driver::set_master;
    if ctx.server.config().cluster_enabled {
        return Err(ErrorReply::fixed(
            "ERR REPLICAOF not allowed in cluster mode.",
        ));
    }
    if args[1].eq_ignore_ascii_case(b"no") && args[2].eq_ignore_ascii_case(b"one") {
        set_master(ctx.server, None);
        return Ok(Reply::OK);
    }
    if ctx.client.replica_listening_port != 0 {
        return Err(ErrorReply::fixed(
            "ERR Command is not valid when client is a replica.",
        ));
    }
    let port = match crate::util::parse_int(&args[2]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        _ => return Err(ErrorReply::fixed("ERR Invalid master port")),
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if !set_master(ctx.server, Some((host.clone(), port))) {
        crate::log_at!(
            Notice,
            "REPLICAOF would result into synchronization with the master we are already connected with. No operation performed."
        );
        return Ok(Reply::simple("OK Already connected to specified master"));
    }
    crate::log_at!(
        Notice,
        "REPLICAOF {}:{} enabled (user request from 'id={} addr={}')",
        host,
        port,
        ctx.client.id,
        ctx.client.addr
    );
    Ok(Reply::OK)
}

/// ROLE: `master offset [[ip port offset] ...]` or `slave host port state offset`.
fn role(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let server = ctx.server;
    if let Some(m) = server.role.master.lock().clone() {
        let state = match m.state {
            "connect" | "connecting" | "sync" | "connected" => m.state,
            _ => "handshake",
        };
        let offset = if m.link_up() {
            m.processed_offset as i64
        } else {
            -1
        };
        return Ok(Reply::Array(vec![
            Reply::bulk_str("slave"),
            Reply::bulk_str(&m.host),
            Reply::Int(m.port as i64),
            Reply::bulk_str(state),
            Reply::Int(offset),
        ]));
    }
    let offset = server.backlog.lock().end_offset();
    let replicas = server
        .replicas
        .lock()
        .values()
        .filter(|r| r.state == "online")
        .map(|r| {
            Reply::Array(vec![
                Reply::bulk_str(&r.ip),
                Reply::bulk_str(&r.port.to_string()),
                Reply::bulk_str(&r.ack_offset.to_string()),
            ])
        })
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk_str("master"),
        Reply::Int(offset as i64),
        Reply::Array(replicas),
    ]))
}

fn sync(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    ctx.server
        .stats
        .sync_full
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.effects.request().replica_sync = Some(ReplicaSync::Legacy);
    Ok(Reply::NoReply)
}

/// PSYNC replid offset. The stream continues from `offset` when `replid` is our history
/// (or the one we took over from, up to where it ended) and the backlog still holds that
/// offset; anything else gets a full resynchronisation.
fn psync(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    use std::sync::atomic::Ordering::Relaxed;
    if args.len() != 3 {
        return Err(errors::wrong_arity("psync"));
    }
    let offset = ctx.int_arg(&args[2])?;
    let server = ctx.server;
    if server.role.is_replica() && !server.role.link_up() {
        return Err(ErrorReply::fixed(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    if args[1].as_ref() != b"?" {
        let ours = *server.replid.lock() == args[1];
        let (id2, second) = server.role.replid2.lock().clone();
        let previous = id2.as_bytes() == args[1].as_ref() && offset <= second;
        let backlog = server.backlog.lock();
        let in_window = backlog.is_active()
            && offset >= backlog.first_byte_offset() as i64
            && offset <= backlog.end_offset() as i64 + 1;
        drop(backlog);
        if (ours || previous) && in_window {
            server.stats.sync_partial_ok.fetch_add(1, Relaxed);
            ctx.effects.request().replica_sync = Some(ReplicaSync::Continue(offset as u64 - 1));
            return Ok(Reply::NoReply);
        }
        server.stats.sync_partial_err.fetch_add(1, Relaxed);
    }
    server.stats.sync_full.fetch_add(1, Relaxed);
    ctx.effects.request().replica_sync = Some(ReplicaSync::Psync);
    Ok(Reply::NoReply)
}

/// REPLCONF option value [option value ...]. The options a replica sends before PSYNC are
/// checked and acknowledged; what a linked replica sends afterwards (ACK) is read by the
/// replica link itself.
fn replconf(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(errors::SYNTAX);
    }
    for pair in args[1..].chunks(2) {
        let (opt, value) = (&pair[0], &pair[1]);
        if opt.eq_ignore_ascii_case(b"listening-port") {
            let port = ctx.int_arg(value)?;
            ctx.client.replica_listening_port = port.clamp(0, u16::MAX as i64) as u16;
        } else if opt.eq_ignore_ascii_case(b"ip-address")
            || opt.eq_ignore_ascii_case(b"capa")
            || opt.eq_ignore_ascii_case(b"rdb-only")
        {
        } else if opt.eq_ignore_ascii_case(b"ack") || opt.eq_ignore_ascii_case(b"getack") {
            // Only meaningful on a replica link, where they are never answered.
            return Ok(Reply::NoReply);
        } else {
            return Err(ErrorReply::owned(format!(
                "ERR Unrecognized REPLCONF option: {}",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    Ok(Reply::OK)
}

//! The primary side of the replication handshake: SYNC and PSYNC (which hand the connection
//! over to the replica link in `server/replication_driver.rs` once the reply is due) and
//! REPLCONF (the options a replica announces about itself, and its acknowledgements).

use super::context::{ExecCtx, ReplicaSync};
use super::errors;
use super::spec::{acl, flag::*, CmdResult, CommandSpec as C};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const SYNC_FLAGS: u32 = NO_ASYNC_LOADING | ADMIN | NO_MULTI | NOSCRIPT;

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
];

fn sync(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    ctx.effects.replica_sync = Some(ReplicaSync::Legacy);
    Ok(Reply::NoReply)
}

/// PSYNC replid offset. Every request is answered with a full resynchronisation for now:
/// the offset must still be an integer.
fn psync(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() != 3 {
        return Err(errors::wrong_arity("psync"));
    }
    ctx.int_arg(&args[2])?;
    ctx.effects.replica_sync = Some(ReplicaSync::Psync);
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

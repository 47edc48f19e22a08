//! One command from argument vector to reply: lookup, the admission gates in Redis's order
//! (unknown command, arity, protected commands, authentication, ...), locking the shards of the
//! keys the key specs name, running the handler, and the bookkeeping after it. The same path
//! serves client connections and, later, EXEC, AOF loading and replica streams.

use super::context::{ClientState, Effects, ExecCtx};
use super::errors;
use super::spec::{flag, key_positions, written_key_positions, Scope};
use super::table::{Command, CommandTable, Lookup};
use crate::resp::{ErrorReply, Reply};
use crate::server::state::ServerState;
use crate::slot::key_slot;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

pub struct Outcome {
    pub reply: Reply,
    pub effects: Effects,
    /// The command that ran or was rejected after lookup (for commandstats), if any.
    pub cmd: Option<&'static Command>,
    /// Rejected before the handler ran.
    pub rejected: bool,
    /// Queued inside MULTI rather than run.
    pub queued: bool,
}

impl Outcome {
    fn rejected(cmd: Option<&'static Command>, e: ErrorReply) -> Outcome {
        Outcome {
            reply: Reply::Error(e),
            effects: Effects::default(),
            cmd,
            rejected: true,
            queued: false,
        }
    }
}

/// A refusal while a transaction is open makes its EXEC fail (Redis's `flagTransaction`).
fn flag_transaction(client: &mut ClientState) {
    if let Some(m) = client.multi.as_mut() {
        m.aborted = true;
    }
}

/// Runs one command. `is_local` tells whether the peer is on a loopback or Unix socket (for
/// `enable-debug-command local`).
pub fn execute(
    server: &ServerState,
    client: &mut ClientState,
    args: &[Bytes],
    now_us: u64,
    is_local: bool,
) -> Outcome {
    let table: &'static CommandTable = server.commands;
    let cmd = match table.lookup(args) {
        Lookup::Found(c) => c,
        Lookup::UnknownCommand => {
            flag_transaction(client);
            return Outcome::rejected(None, errors::unknown_command(args));
        }
        Lookup::UnknownSubcommand(c) => {
            flag_transaction(client);
            return Outcome::rejected(None, errors::unknown_subcommand(&c.fullname, &args[1]));
        }
    };
    sync_acl_user(server, client);
    if let Err(e) = admit(server, client, cmd, args, is_local, now_us / 1000)
        .and_then(|()| super::scripting::check_busy(server, cmd, now_us))
    {
        flag_transaction(client);
        let e = if cmd.fullname == "exec" {
            client.multi = None;
            ErrorReply::owned(format!(
                "EXECABORT Transaction discarded because of: {}",
                e.text().strip_prefix("ERR ").unwrap_or(e.text())
            ))
        } else {
            e
        };
        return Outcome::rejected(Some(cmd), e);
    }
    if let Some(m) = client.multi.as_mut() {
        if !super::tx::runs_inside_multi(&cmd.fullname) {
            m.queued.push(args.to_vec());
            return Outcome {
                reply: Reply::QUEUED,
                effects: Effects::default(),
                cmd: Some(cmd),
                rejected: false,
                queued: true,
            };
        }
    }
    let locked = lock_for(server, cmd, args, client);
    let mut ctx = ExecCtx::new(now_us, locked, client, server);
    let reply = call(&mut ctx, cmd, args);
    ctx.close_opened();
    let effects = std::mem::take(&mut ctx.effects);
    if server.role.is_replica() && !ctx.client.is_master && cmd.spec.has(flag::WRITE) {
        let db = ctx.client.db;
        let mut local = server.role.local_writes.lock();
        for i in written_key_positions(cmd.spec, args) {
            local.insert((db, args[i].to_vec()));
        }
    }
    // Still holding the shards: the stream order is the execution order.
    if let Some(end) = feed_replication(server, &effects.propagate) {
        ctx.client.woff = end;
    }
    drop(ctx);
    if effects.dirty > 0 {
        server.dirty.fetch_add(effects.dirty, Relaxed);
    }
    Outcome {
        reply,
        effects,
        cmd: Some(cmd),
        rejected: false,
        queued: false,
    }
}

/// Runs one handler and records what it propagates (Redis's `call`): the command itself, or
/// what it asked to be propagated as, when it changed the dataset or forced propagation.
/// EXEC is never propagated as itself; its commands are.
pub fn call(ctx: &mut ExecCtx, cmd: &'static Command, args: &[Bytes]) -> Reply {
    let outer_command = ctx.current_command;
    let dirty_before = ctx.effects.dirty;
    let saved = (
        ctx.effects.rewrite.take(),
        std::mem::take(&mut ctx.effects.prevent_propagation),
        std::mem::take(&mut ctx.effects.force_propagation),
    );
    ctx.current_command = cmd.fullname.as_str();
    let reply = (cmd.spec.handler)(ctx, args).unwrap_or_else(Reply::Error);
    let changed = ctx.effects.dirty > dirty_before;
    let watched = !ctx.server.watches.is_empty();
    let blocked = !ctx.server.blocks.is_empty();
    if changed && cmd.spec.has(flag::WRITE) && (watched || blocked) {
        let db = ctx.client.db;
        for i in written_key_positions(cmd.spec, args) {
            ctx.touch(db, &args[i]);
            ctx.server.blocks.signal(db, &args[i]);
        }
    }
    let fx = &mut ctx.effects;
    let replicating = ctx.server.repl_active.load(Relaxed);
    if replicating
        && cmd.fullname != "exec"
        && !fx.prevent_propagation
        && (changed || fx.force_propagation)
    {
        let argv = fx.rewrite.take().unwrap_or_else(|| args.to_vec());
        fx.propagate.push((ctx.client.db, argv));
    }
    (fx.rewrite, fx.prevent_propagation, fx.force_propagation) = saved;
    if !outer_command.is_empty() {
        ctx.current_command = outer_command;
    }
    reply
}

/// Appends one execution unit's propagated commands to the AOF buffer and the replication
/// stream, wrapped in MULTI / EXEC when there are several (Redis's
/// `propagatePendingCommands`).
/// Returns the stream's end offset when the commands entered it.
pub fn feed_replication(server: &ServerState, ops: &[(usize, Vec<Bytes>)]) -> Option<u64> {
    if ops.is_empty() || server.loading.load(Relaxed) {
        return None;
    }
    if server.aof.on.load(Relaxed) {
        let mut feed = server.aof_feed.lock();
        for_each_wrapped(ops, |db, argv| feed.command(db, argv));
    }
    // A replica's stream is its primary's, fed byte for byte by the replica link.
    if server.role.is_replica() {
        return None;
    }
    let mut backlog = server.backlog.lock();
    if !backlog.is_active() {
        return None;
    }
    for_each_wrapped(ops, |db, argv| backlog.feed(db, argv));
    let end = backlog.end_offset();
    drop(backlog);
    server.stream_end.send_replace(end);
    Some(end)
}

/// Hands `f` each command, between MULTI and EXEC when there are several.
fn for_each_wrapped(ops: &[(usize, Vec<Bytes>)], mut f: impl FnMut(usize, &[Bytes])) {
    let transaction = ops.len() > 1;
    if transaction {
        f(ops[0].0, &[Bytes::from_static(b"MULTI")]);
    }
    for (db, argv) in ops {
        f(*db, argv);
    }
    if transaction {
        f(ops[ops.len() - 1].0, &[Bytes::from_static(b"EXEC")]);
    }
}

/// The shards a command must hold: none, its keys' shards, or all. EXEC holds the union of
/// what its queued commands need, so the transaction runs as one atomic step.
fn lock_for<'s>(
    server: &'s ServerState,
    cmd: &Command,
    args: &[Bytes],
    client: &ClientState,
) -> Option<crate::keyspace::Locked<'s>> {
    let mut shards = Vec::new();
    let mut any = false;
    let mut all = false;
    let mut want = |cmd: &Command, args: &[Bytes]| match cmd.spec.scope {
        Scope::None => {}
        Scope::All => {
            any = true;
            all = true;
        }
        Scope::Keys => {
            any = true;
            shards.extend(
                key_positions(cmd.spec, args)
                    .into_iter()
                    .map(|i| server.keyspace.shard_of(key_slot(&args[i]))),
            );
        }
    };
    match client.multi.as_ref().filter(|_| cmd.fullname == "exec") {
        Some(tx) => {
            for queued in &tx.queued {
                if let Lookup::Found(c) = server.commands.lookup(queued) {
                    want(c, queued);
                }
            }
            // EXEC first checks whether a watched key expired.
            for (_, key) in &client.watched {
                any = true;
                shards.push(server.keyspace.shard_of(key_slot(key)));
            }
        }
        None => want(cmd, args),
    }
    if all {
        Some(server.keyspace.lock_all())
    } else if any {
        Some(server.keyspace.lock(&shards))
    } else {
        None
    }
}

/// Whether a queued transaction holds a command that may grow memory.
fn queued_denyoom(server: &ServerState, client: &ClientState) -> bool {
    client.multi.as_ref().is_some_and(|m| {
        m.queued.iter().any(
            |q| matches!(server.commands.lookup(q), Lookup::Found(c) if c.spec.has(flag::DENYOOM)),
        )
    })
}

/// Whether a queued transaction holds a write command.
fn queued_writes(server: &ServerState, client: &ClientState) -> bool {
    client.multi.as_ref().is_some_and(|m| {
        m.queued.iter().any(
            |q| matches!(server.commands.lookup(q), Lookup::Found(c) if c.spec.has(flag::WRITE)),
        )
    })
}

/// Looks the client's ACL user up again after any ACL change, so new rules apply from its
/// next command. A client whose user was deleted falls back to an unauthenticated `default`
/// (Redis closes such clients; ACL DELUSER asks for that too).
fn sync_acl_user(server: &ServerState, client: &mut ClientState) {
    let generation = server.acl.generation();
    if client.acl_generation == generation {
        return;
    }
    client.acl_generation = generation;
    match server.acl.user(&client.user.name) {
        Some(u) => client.user = u,
        None => {
            client.user = server.acl.default_user();
            client.authenticated = false;
        }
    }
}

/// The gates between lookup and execution, in the order Redis's `processCommand` applies them.
fn admit(
    server: &ServerState,
    client: &ClientState,
    cmd: &'static Command,
    args: &[Bytes],
    is_local: bool,
    now_ms: u64,
) -> Result<(), ErrorReply> {
    if !cmd.spec.arity_ok(args.len()) {
        return Err(errors::wrong_arity(&cmd.fullname));
    }
    let config = server.config();
    if cmd.fullname == "debug" || cmd.fullname.starts_with("debug|") {
        use crate::config::EnableCommand;
        let allowed = match config.enable_debug_command {
            EnableCommand::Yes => true,
            EnableCommand::Local => is_local,
            EnableCommand::No => false,
        };
        if !allowed {
            return Err(errors::DEBUG_COMMAND_NOT_ALLOWED);
        }
    }
    if !client.authenticated && !cmd.spec.has(flag::NO_AUTH) && server.acl.auth_required() {
        return Err(errors::NOAUTH);
    }
    if client.multi.is_some() && cmd.spec.has(flag::NO_MULTI) {
        return Err(ErrorReply::fixed(
            "ERR Command not allowed inside a transaction",
        ));
    }
    // The default user's `+@all ~* &*` costs one flag test.
    if !client.user.all_allowed() && !client.is_master {
        if let Err(denied) = client.user.check(cmd, args) {
            let context = if client.multi.is_some() {
                "multi"
            } else {
                "toplevel"
            };
            super::acl::log_denial(server, client, now_ms, cmd, args, denied, context);
            return Err(super::acl::noperm(cmd, denied));
        }
    }
    server.evict_clients(now_ms);
    if config.maxmemory > 0 && !client.is_master {
        use super::evict::{perform_evictions, Evicted};
        let used = || server.memory_for_eviction();
        let out_of_memory = perform_evictions(server, now_ms, &used) == Evicted::Fail;
        let denyoom = cmd.spec.has(flag::DENYOOM)
            || (cmd.fullname == "exec" && queued_denyoom(server, client));
        // Queuing inside MULTI takes memory too: only EXEC, DISCARD, QUIT and RESET pass.
        let queuing = client.multi.is_some()
            && !matches!(cmd.fullname.as_str(), "exec" | "discard" | "quit" | "reset");
        if out_of_memory && (denyoom || queuing) {
            return Err(errors::OOM);
        }
    }
    let writes =
        || cmd.spec.has(flag::WRITE) || (cmd.fullname == "exec" && queued_writes(server, client));
    if !server.role.is_replica()
        && config.min_replicas_to_write > 0
        && config.min_replicas_max_lag > 0
        && writes()
    {
        let max_lag_secs = config.min_replicas_max_lag as u64;
        let good = server
            .replicas
            .lock()
            .values()
            .filter(|r| {
                r.state == "online"
                    && (now_ms / 1000).saturating_sub(r.last_ack_ms / 1000) <= max_lag_secs
            })
            .count();
        if (good as i64) < config.min_replicas_to_write {
            return Err(ErrorReply::fixed(
                "NOREPLICAS Not enough good replicas to write.",
            ));
        }
    }
    if server.role.is_replica() && !client.is_master {
        if writes() && config.replica_read_only {
            return Err(ErrorReply::fixed(
                "READONLY You can't write against a read only replica.",
            ));
        }
        if !config.replica_serve_stale_data && !cmd.spec.has(flag::STALE) && !server.role.link_up()
        {
            return Err(ErrorReply::fixed(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ));
        }
    }
    if client.subscriptions.active()
        && !client.resp3
        && !super::pubsub::allowed_in_subscribed_mode(&cmd.fullname)
    {
        return Err(ErrorReply::owned(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            cmd.fullname
        )));
    }
    Ok(())
}

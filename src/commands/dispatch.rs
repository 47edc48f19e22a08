//! One command from argument vector to reply: lookup, the admission gates in Redis's order
//! (unknown command, arity, protected commands, authentication, ...), locking the shards of the
//! keys the key specs name, running the handler, and the bookkeeping after it. The same path
//! serves client connections and, later, EXEC, AOF loading and replica streams.

use super::context::{ClientState, Effects, ExecCtx};
use super::errors;
use super::spec::{flag, key_positions, visit_key_positions, written_key_positions, Scope};
use super::table::{Command, CommandTable, Lookup};
use crate::cluster::routing::{self, Query, Route, RoutingConfig};
use crate::config::Config;
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
    /// Held by CLIENT PAUSE: not run and no reply; the connection runs it again once the
    /// pause is over.
    pub postponed: bool,
}

impl Outcome {
    fn rejected(cmd: Option<&'static Command>, e: ErrorReply) -> Outcome {
        Outcome {
            reply: Reply::Error(e),
            effects: Effects::default(),
            cmd,
            rejected: true,
            queued: false,
            postponed: false,
        }
    }

    fn postponed(cmd: &'static Command) -> Outcome {
        Outcome {
            reply: Reply::Null,
            effects: Effects::default(),
            cmd: Some(cmd),
            rejected: false,
            queued: false,
            postponed: true,
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
    execute_with(server, &server.config(), client, args, now_us, is_local)
}

/// `execute` with the configuration the caller holds (a connection keeps its own copy).
pub fn execute_with(
    server: &ServerState,
    config: &Config,
    client: &mut ClientState,
    args: &[Bytes],
    now_us: u64,
    is_local: bool,
) -> Outcome {
    let outcome = execute_command(server, config, client, args, now_us, is_local);
    // ASKING covers the next command only, or a whole transaction when sent inside MULTI.
    if client.asking && client.multi.is_none() && outcome.cmd.is_none_or(|c| c.fullname != "asking")
    {
        client.asking = false;
    }
    outcome
}

fn execute_command(
    server: &ServerState,
    config: &Config,
    client: &mut ClientState,
    args: &[Bytes],
    now_us: u64,
    is_local: bool,
) -> Outcome {
    // Shard channels the node dropped since (it stopped serving their slot).
    client.mailbox.catch_up(&mut client.subscriptions);
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
    let admitted = admit(server, config, client, cmd, args, is_local, now_us / 1000)
        .and_then(|()| super::scripting::check_busy(server, cmd, now_us).map_err(Refusal::Gate));
    let e = match admitted {
        Ok(()) => None,
        Err(Refusal::Redirect(e)) => return redirected(server, client, cmd, e),
        Err(Refusal::Gate(e)) => Some(e),
    };
    if let Some(e) = e {
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
    let now_ms = now_us / 1000;
    let postpone = |client: &ClientState| {
        // Any pause at all first: the flags are worked out only while one is in force.
        !client.is_master
            && server.pause.holds(now_ms, true)
            && server
                .pause
                .holds(now_ms, pauses_as_write(server, client, cmd, args))
    };
    if client.multi.is_some() && !super::tx::runs_inside_multi(&cmd.fullname) && postpone(client) {
        return Outcome::postponed(cmd);
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
                postponed: false,
            };
        }
    }
    let mut locked = lock_for(server, cmd, args, client);
    // Keys a MIGRATE is sending are left alone until it is done with them.
    while locked.is_some() && server.migrate.holds_any() && client.migrate_done.is_none() {
        let held = held_keys(server, cmd, args, client);
        if held.is_empty() {
            break;
        }
        drop(locked);
        server.migrate.wait_released(client.db, &held);
        locked = lock_for(server, cmd, args, client);
    }
    if let Some(e) = recheck_open_slot(server, client, cmd, args, locked.as_mut(), now_us / 1000) {
        drop(locked);
        return redirected(server, client, cmd, e);
    }
    // Checked with the shards held: a write that passed the check ends before a command
    // after CLIENT PAUSE can see its keys, so nothing is written once the pause replied.
    if postpone(client) {
        drop(locked);
        return Outcome::postponed(cmd);
    }
    let mut ctx = ExecCtx::with_config(now_us, locked, client, server, config);
    let reply = call(&mut ctx, cmd, args);
    let (effects, locked, client) = ctx.finish();
    if server.role.is_replica() && !client.is_master && cmd.spec.has(flag::WRITE) {
        let db = client.db;
        let mut local = server.role.local_writes.lock();
        for i in written_key_positions(cmd.spec, args) {
            local.insert((db, args[i].to_vec()));
        }
    }
    // Still holding the shards: the stream order is the execution order.
    let wrap = !cmd.spec.has(flag::TOUCHES_ARBITRARY_KEYS);
    if let Some(end) = feed_replication_unit(server, &effects.propagate, wrap) {
        client.woff = end;
    }
    drop(locked);
    if effects.dirty > 0 {
        server.dirty.fetch_add(effects.dirty, Relaxed);
    }
    Outcome {
        reply,
        effects,
        cmd: Some(cmd),
        rejected: false,
        queued: false,
        postponed: false,
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
    if ctx.client.tracking.is_some() {
        track_client_read(ctx, cmd, args);
    }
    let changed = ctx.effects.dirty > dirty_before;
    let watched = !ctx.server.watches.is_empty();
    let blocked = !ctx.server.blocks.is_empty();
    let tracked = ctx.server.tracking.active();
    let unchanged = std::mem::take(&mut ctx.effects.unchanged_args);
    if changed && cmd.spec.has(flag::WRITE) && (watched || blocked || tracked) {
        let db = ctx.client.db;
        for i in written_key_positions(cmd.spec, args) {
            if i < 64 && unchanged & (1 << i) != 0 {
                continue;
            }
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

/// After a command of a tracking client: the keys a read-only command read may now be cached
/// by it; CLIENT CACHING's flag lasts for one command.
fn track_client_read(ctx: &mut ExecCtx, cmd: &'static Command, args: &[Bytes]) {
    if cmd.spec.has(flag::READONLY) {
        let keys: Vec<Bytes> = super::spec::key_positions(cmd.spec, args)
            .into_iter()
            .map(|i| args[i].clone())
            .collect();
        super::tracking::after_read(ctx, keys.into_iter());
    }
    if std::mem::take(&mut ctx.client.keep_caching_flag) {
        return;
    }
    if let Some(t) = ctx.client.tracking.as_mut() {
        t.caching = false;
    }
}

/// Appends one execution unit's propagated commands to the AOF buffer and the replication
/// stream, wrapped in MULTI / EXEC when there are several (Redis's
/// `propagatePendingCommands`).
/// Returns the stream's end offset when the commands entered it.
pub fn feed_replication(server: &ServerState, ops: &[(usize, Vec<Bytes>)]) -> Option<u64> {
    feed_replication_unit(server, ops, true)
}

/// `feed_replication`, wrapping several commands in a transaction only when `wrap` says so.
fn feed_replication_unit(
    server: &ServerState,
    ops: &[(usize, Vec<Bytes>)],
    wrap: bool,
) -> Option<u64> {
    if ops.is_empty() || server.loading.load(Relaxed) {
        return None;
    }
    if server.aof.on.load(Relaxed) {
        let mut feed = server.aof_feed.lock();
        for_each_wrapped(ops, wrap, |db, argv| feed.command(db, argv));
    }
    // A replica's stream is its primary's, fed byte for byte by the replica link.
    if server.role.is_replica() {
        return None;
    }
    let mut backlog = server.backlog.lock();
    if !backlog.is_active() {
        return None;
    }
    for_each_wrapped(ops, wrap, |db, argv| backlog.feed(db, argv));
    let end = backlog.end_offset();
    drop(backlog);
    server.stream_end.send_replace(end);
    Some(end)
}

/// Hands `f` each command, between MULTI and EXEC when there are several and `wrap` is set.
fn for_each_wrapped(ops: &[(usize, Vec<Bytes>)], wrap: bool, mut f: impl FnMut(usize, &[Bytes])) {
    let transaction = wrap && ops.len() > 1;
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
    if let Some(tx) = client.multi.as_ref().filter(|_| cmd.fullname == "exec") {
        return lock_for_exec(server, tx, client);
    }
    let ks = &server.keyspace;
    match cmd.spec.scope {
        Scope::None => None,
        Scope::All => Some(ks.lock_all()),
        Scope::Keys => {
            // The first key's slot is remembered for the handler; more shards are collected
            // only when a second key lives elsewhere.
            let mut first: Option<(usize, u16)> = None;
            let mut others: Vec<usize> = Vec::new();
            visit_key_positions(cmd.spec, args, |i| {
                let slot = key_slot(&args[i]);
                match first {
                    None => first = Some((i, slot)),
                    Some((_, s)) if ks.shard_of(s) == ks.shard_of(slot) => {}
                    Some(_) => others.push(ks.shard_of(slot)),
                }
            });
            let Some((i, slot)) = first else {
                return Some(ks.lock(&[]));
            };
            let mut locked = if others.is_empty() {
                ks.lock_one(ks.shard_of(slot))
            } else {
                others.push(ks.shard_of(slot));
                ks.lock(&others)
            };
            locked.remember_slot(&args[i], slot);
            Some(locked)
        }
    }
}

/// The command's keys (a transaction's, for EXEC) that a MIGRATE in progress holds.
fn held_keys(
    server: &ServerState,
    cmd: &Command,
    args: &[Bytes],
    client: &ClientState,
) -> Vec<Bytes> {
    let db = client.db;
    let mut held = Vec::new();
    let mut check = |c: &Command, argv: &[Bytes]| {
        if c.spec.scope != Scope::Keys {
            return;
        }
        for i in key_positions(c.spec, argv) {
            if server.migrate.any_held(db, [&argv[i][..]]) {
                held.push(argv[i].clone());
            }
        }
    };
    match client.multi.as_ref().filter(|_| cmd.fullname == "exec") {
        Some(tx) => {
            for queued in &tx.queued {
                if let Lookup::Found(c) = server.commands.lookup(queued) {
                    check(c, queued);
                }
            }
        }
        None => check(cmd, args),
    }
    held
}

fn lock_for_exec<'s>(
    server: &'s ServerState,
    tx: &super::context::Multi,
    client: &ClientState,
) -> Option<crate::keyspace::Locked<'s>> {
    let mut shards = Vec::new();
    let mut any = false;
    let mut all = false;
    for queued in &tx.queued {
        let Lookup::Found(c) = server.commands.lookup(queued) else {
            continue;
        };
        match c.spec.scope {
            Scope::None => {}
            Scope::All => {
                any = true;
                all = true;
            }
            Scope::Keys => {
                any = true;
                visit_key_positions(c.spec, queued, |i| {
                    shards.push(server.keyspace.shard_of(key_slot(&queued[i])))
                });
            }
        }
    }
    // EXEC first checks whether a watched key expired.
    for (_, key) in &client.watched {
        any = true;
        shards.push(server.keyspace.shard_of(key_slot(key)));
    }
    if all {
        Some(server.keyspace.lock_all())
    } else if any {
        Some(server.keyspace.lock(&shards))
    } else {
        None
    }
}

/// Whether a queued transaction holds a command whose spec satisfies `test` (a write, a
/// command that may grow memory, one not allowed on a stale replica).
fn queued_any(
    server: &ServerState,
    client: &ClientState,
    test: impl Fn(&super::spec::CommandSpec) -> bool,
) -> bool {
    client.multi.as_ref().is_some_and(|m| {
        m.queued
            .iter()
            .any(|q| matches!(server.commands.lookup(q), Lookup::Found(c) if test(c.spec)))
    })
}

/// Why admission refused a command.
enum Refusal {
    /// A gate's error: inside MULTI it aborts the transaction; EXEC wraps it in EXECABORT.
    Gate(ErrorReply),
    /// Cluster routing's redirect or refusal, sent as is (EXEC discards its transaction).
    Redirect(ErrorReply),
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
    config: &Config,
    client: &ClientState,
    cmd: &'static Command,
    args: &[Bytes],
    is_local: bool,
    now_ms: u64,
) -> Result<(), Refusal> {
    admit_caller(server, config, client, cmd, args, is_local, now_ms).map_err(Refusal::Gate)?;
    cluster_gate(server, client, cmd, args, now_ms).map_err(Refusal::Redirect)?;
    admit_resources(server, config, client, cmd, args, now_ms).map_err(Refusal::Gate)
}

/// Arity, protected commands, authentication, MULTI rules and ACL permissions: the gates
/// before routing.
fn admit_caller(
    server: &ServerState,
    config: &Config,
    client: &ClientState,
    cmd: &'static Command,
    args: &[Bytes],
    is_local: bool,
    now_ms: u64,
) -> Result<(), ErrorReply> {
    if !cmd.spec.arity_ok(args.len()) {
        return Err(errors::wrong_arity(&cmd.fullname));
    }
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
    Ok(())
}

/// Client eviction, OOM, NOREPLICAS, read-only replica, stale data, subscribed context,
/// loading: the gates after routing.
fn admit_resources(
    server: &ServerState,
    config: &Config,
    client: &ClientState,
    cmd: &Command,
    args: &[Bytes],
    now_ms: u64,
) -> Result<(), ErrorReply> {
    // FCALL of a function that declared flags is gated by those (Redis's `getCommandFlags`).
    let flags = super::scripting::effective_flags(&cmd.fullname, cmd.spec.flags, args);
    let has = |f: u32| flags & f != 0;
    server.evict_clients(now_ms);
    if config.maxmemory > 0 && !client.is_master {
        use super::evict::{perform_evictions, Evicted};
        let used = || server.memory_for_eviction();
        let out_of_memory = perform_evictions(server, now_ms, &used) == Evicted::Fail;
        let denyoom = has(flag::DENYOOM)
            || (cmd.fullname == "exec" && queued_any(server, client, |s| s.has(flag::DENYOOM)));
        // Queuing inside MULTI takes memory too: only EXEC, DISCARD, QUIT and RESET pass.
        let queuing = client.multi.is_some()
            && !matches!(cmd.fullname.as_str(), "exec" | "discard" | "quit" | "reset");
        if out_of_memory && (denyoom || queuing) {
            return Err(errors::OOM);
        }
    }
    let writes = || {
        has(flag::WRITE)
            || (cmd.fullname == "exec" && queued_any(server, client, |s| s.has(flag::WRITE)))
    };
    if !client.is_master && (cmd.fullname == "ping" || writes()) {
        if let Some(e) = disk_error(server, config) {
            return Err(e);
        }
    }
    if writes() && too_few_good_replicas(server, config, now_ms) {
        return Err(errors::NOREPLICAS);
    }
    if server.role.is_replica() && !client.is_master {
        if writes() && config.replica_read_only {
            return Err(errors::READONLY_REPLICA);
        }
        // EXEC is refused when any queued command could not run on a stale replica.
        let deny_stale = !has(flag::STALE)
            || (cmd.fullname == "exec" && queued_any(server, client, |s| !s.has(flag::STALE)));
        if !config.replica_serve_stale_data && deny_stale && !server.role.link_up() {
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
    // While a file loads only commands flagged `loading` run; EXEC too only when everything
    // it queued is. The loader's own client (AOF replay) is let through.
    if server.loading.load(Relaxed) && !client.is_master {
        let refused = !has(flag::LOADING)
            || (cmd.fullname == "exec" && queued_any(server, client, |s| !s.has(flag::LOADING)));
        if refused {
            return Err(errors::LOADING);
        }
    }
    Ok(())
}

/// `min-replicas-to-write` is set on a primary and fewer replicas than that are online and
/// acknowledged within `min-replicas-max-lag` (Redis's `checkGoodReplicasStatus` failing).
pub(crate) fn too_few_good_replicas(server: &ServerState, config: &Config, now_ms: u64) -> bool {
    if server.role.is_replica()
        || config.min_replicas_to_write <= 0
        || config.min_replicas_max_lag <= 0
    {
        return false;
    }
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
    (good as i64) < config.min_replicas_to_write
}

/// Why a script's first write is refused (Redis's `scriptVerifyWriteCommandAllow`, server
/// side): a read-only replica, failing persistence, too few good replicas.
pub fn script_write_refusal(
    server: &ServerState,
    client: &ClientState,
    now_ms: u64,
) -> Option<ErrorReply> {
    let config = server.config();
    if server.role.is_replica() && config.replica_read_only && !client.is_master {
        return Some(errors::READONLY_REPLICA);
    }
    if let Some(e) = disk_error(server, &config) {
        return Some(e);
    }
    too_few_good_replicas(server, &config, now_ms).then_some(errors::NOREPLICAS)
}

/// Why writes (and PING) are refused while persistence is failing (Redis's
/// `writeCommandsDeniedByDiskError`): the last background save failed while save points are
/// set and `stop-writes-on-bgsave-error` is on, or the last AOF write failed.
pub(crate) fn disk_error(server: &ServerState, config: &Config) -> Option<ErrorReply> {
    if config.stop_writes_on_bgsave_error
        && !config.save.is_empty()
        && !server.rdb.last_bgsave_ok.load(Relaxed)
    {
        return Some(errors::BGSAVE_ERR);
    }
    if server.aof.on.load(Relaxed) && !server.aof.last_write_ok.load(Relaxed) {
        return Some(ErrorReply::owned(format!(
            "MISCONF Errors writing to the AOF file: {}",
            crate::util::strerror(server.aof.last_write_errno.load(Relaxed))
        )));
    }
    None
}

/// Redis's cluster redirection in `processCommand`: once a topology is published, keyed
/// commands (and EXEC, over its queued commands) from anyone but our primary's link or the
/// AOF loader go through `routing::route`. Key presence, which only matters for a slot being
/// resharded, is looked up here under a brief shard lock and again under the command's own
/// locks (`recheck_open_slot`), so a key cannot come or go between verdict and execution.
fn cluster_gate(
    server: &ServerState,
    client: &ClientState,
    cmd: &Command,
    args: &[Bytes],
    now_ms: u64,
) -> Result<(), ErrorReply> {
    if !server.routing.load(Relaxed) || !subject_to_routing(client, cmd) {
        return Ok(());
    }
    let topology = server.topology.load();
    let Some(t) = topology.as_deref() else {
        return Ok(());
    };
    if client.block_retry {
        return blocked_gate(server, client, cmd, args, t);
    }
    let db = client.db;
    let route = cluster_route(server, client, cmd, args, t, &mut |key| {
        let shard = server.keyspace.shard_of(key_slot(key));
        let mut locked = server.keyspace.lock(&[shard]);
        locked.peek(db, key).is_some_and(|e| !e.is_expired(now_ms))
    });
    route.error().map_or(Ok(()), Err)
}

/// A blocked command woken to try again is not routed anew (ASKING is long gone): like
/// Redis's `clusterRedirectBlockedClientIfNeeded`, it is only sent away when the cluster
/// failed or its slot went to another node without being imported here.
fn blocked_gate(
    server: &ServerState,
    client: &ClientState,
    cmd: &Command,
    args: &[Bytes],
    t: &crate::cluster::topology::Topology,
) -> Result<(), ErrorReply> {
    let keys = routing_keys(server, client, cmd, args);
    let Some(key) = keys.first() else {
        return Ok(());
    };
    let write = cmd.spec.has(flag::WRITE);
    let config = routing_config(server, client);
    let verdict = routing::redirect_blocked(t, key, client.readonly_cluster, write, config);
    verdict.and_then(|r| r.error()).map_or(Ok(()), Err)
}

fn routing_config(server: &ServerState, client: &ClientState) -> RoutingConfig {
    let config = server.config();
    RoutingConfig {
        allow_reads_when_down: config.cluster_allow_reads_when_down,
        allow_pubsubshard_when_down: config.cluster_allow_pubsubshard_when_down,
        // Without a TLS listener every client is plaintext: Redis sends those the plaintext
        // port of a `tls-cluster`.
        plaintext_port: config.tls_cluster,
        ipv6_client: client.connected_over_ipv6(),
    }
}

/// Commands that declare no keys (and are not EXEC) run on any node, as do our primary's.
fn subject_to_routing(client: &ClientState, cmd: &Command) -> bool {
    !client.is_master
        && (!cmd.spec.keys.is_empty() || cmd.spec.has(flag::MOVABLE_KEYS) || cmd.fullname == "exec")
}

/// Routes a command against `t`, `exists` answering for keys of an open slot.
fn cluster_route(
    server: &ServerState,
    client: &ClientState,
    cmd: &Command,
    args: &[Bytes],
    t: &crate::cluster::topology::Topology,
    exists: &mut dyn FnMut(&[u8]) -> bool,
) -> Route {
    let exec = cmd.fullname == "exec";
    if exec && client.multi.is_none() {
        // EXEC without MULTI just fails, wherever it runs.
        return Route::Serve;
    }
    let keys = routing_keys(server, client, cmd, args);
    let name = cmd.fullname.as_str();
    let q = Query {
        keys: &keys,
        write: routes_as_write(cmd, args),
        queued_write: exec
            && client.multi.as_ref().is_some_and(|m| {
                m.queued.iter().any(|q| {
                    matches!(server.commands.lookup(q), Lookup::Found(c) if c.spec.has(flag::WRITE))
                })
            }),
        asking: client.asking || cmd.spec.has(flag::ASKING),
        readonly: client.readonly_cluster,
        pubsub_shard: matches!(name, "spublish" | "ssubscribe" | "sunsubscribe"),
        migrate: name == "migrate",
        config: routing_config(server, client),
    };
    routing::route(t, &q, exists)
}

/// Whether a command counts as a write for routing (Redis's `getCommandFlags`): its flag,
/// except that EVAL / EVALSHA of a script declaring shebang flags writes unless it declares
/// `no-writes`.
fn routes_as_write(cmd: &Command, args: &[Bytes]) -> bool {
    match script_flags(cmd, args) {
        Some(flags) if !flags.compat => !flags.no_writes,
        _ => cmd.spec.has(flag::WRITE),
    }
}

/// Whether CLIENT PAUSE holds this command of the master's stream now: a paused replica
/// stops applying the stream at it (what follows keeps arriving and waits behind it).
pub fn pause_holds(
    server: &ServerState,
    client: &ClientState,
    args: &[Bytes],
    now_ms: u64,
) -> bool {
    if !server.pause.holds(now_ms, true) {
        return false;
    }
    match server.commands.lookup(args) {
        Lookup::Found(cmd) => server
            .pause
            .holds(now_ms, pauses_as_write(server, client, cmd, args)),
        _ => false,
    }
}

/// Whether CLIENT PAUSE WRITE holds a command (Redis's `is_may_replicate_command`): it may
/// write or replicate, going by the script's shebang flags for EVAL (a script with flags
/// replicates only if it may write), by the queued commands for EXEC.
fn pauses_as_write(
    server: &ServerState,
    client: &ClientState,
    cmd: &Command,
    args: &[Bytes],
) -> bool {
    let one = |cmd: &Command, args: &[Bytes]| match script_flags(cmd, args) {
        Some(flags) if !flags.compat => !flags.no_writes,
        _ => cmd.spec.has(flag::WRITE | flag::MAY_REPLICATE),
    };
    if cmd.fullname == "exec" {
        let queued = client.multi.as_ref().map_or(&[][..], |m| &m.queued[..]);
        return queued
            .iter()
            .any(|argv| match server.commands.lookup(argv) {
                Lookup::Found(c) => one(c, argv),
                _ => false,
            });
    }
    one(cmd, args)
}

/// The shebang flags of the script an EVAL-family command runs, when it can be known
/// before running it.
fn script_flags(cmd: &Command, args: &[Bytes]) -> Option<super::scripting::ScriptFlags> {
    use super::scripting::{parse_shebang, ScriptCache};
    match cmd.fullname.as_str() {
        "eval" | "eval_ro" => args
            .get(1)
            .and_then(|body| parse_shebang(body).ok())
            .map(|(flags, _)| flags),
        "evalsha" | "evalsha_ro" => args
            .get(1)
            .filter(|sha| sha.len() == 40)
            .and_then(|sha| {
                ScriptCache::get().lookup(&String::from_utf8_lossy(sha).to_ascii_lowercase())
            })
            .map(|s| s.flags),
        "fcall" | "fcall_ro" => super::scripting::functions::declared_flags(args),
        _ => None,
    }
}

/// The arguments routing hashes: the keys the key specs name, or the channels sharded
/// Pub/Sub declares as not-keys; for EXEC, those of every queued command.
fn routing_keys<'a>(
    server: &ServerState,
    client: &'a ClientState,
    cmd: &Command,
    args: &'a [Bytes],
) -> Vec<&'a [u8]> {
    let mut keys = Vec::new();
    let mut add = |c: &Command, argv: &'a [Bytes]| {
        keys.extend(routed_positions(c, argv).into_iter().map(|i| &argv[i][..]));
    };
    match client.multi.as_ref().filter(|_| cmd.fullname == "exec") {
        Some(tx) => {
            for queued in &tx.queued {
                if let Lookup::Found(c) = server.commands.lookup(queued) {
                    add(c, queued);
                }
            }
        }
        None => add(cmd, args),
    }
    keys
}

fn routed_positions(cmd: &Command, args: &[Bytes]) -> Vec<usize> {
    match cmd.fullname.as_str() {
        "spublish" => (1..args.len().min(2)).collect(),
        "ssubscribe" | "sunsubscribe" => (1..args.len()).collect(),
        "migrate" => super::migrate::key_positions(args),
        _ => key_positions(cmd.spec, args),
    }
}

/// Routes again, now holding the command's shards, when the topology has an open slot: the
/// verdict on a migrating or importing slot depends on which keys are here.
fn recheck_open_slot(
    server: &ServerState,
    client: &ClientState,
    cmd: &Command,
    args: &[Bytes],
    locked: Option<&mut crate::keyspace::Locked<'_>>,
    now_ms: u64,
) -> Option<ErrorReply> {
    let locked = locked?;
    if !server.routing.load(Relaxed) || client.block_retry || !subject_to_routing(client, cmd) {
        return None;
    }
    let topology = server.topology.load();
    let t = topology.as_deref().filter(|t| t.has_open_slots())?;
    let db = client.db;
    cluster_route(server, client, cmd, args, t, &mut |key| {
        locked.peek(db, key).is_some_and(|e| !e.is_expired(now_ms))
    })
    .error()
}

/// Sends routing's error as the reply. EXEC discards its transaction and the redirect is its
/// reply; a command being queued makes the transaction fail (Redis's `flagTransaction`).
fn redirected(
    server: &ServerState,
    client: &mut ClientState,
    cmd: &'static Command,
    e: ErrorReply,
) -> Outcome {
    if cmd.fullname == "exec" {
        client.multi = None;
        super::tx::unwatch_all(client, server);
    } else {
        flag_transaction(client);
    }
    Outcome::rejected(Some(cmd), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::commands::test_support::dispatch as run;

    fn loading_error() -> Reply {
        Reply::Error(errors::LOADING)
    }

    #[test]
    fn while_loading_only_loading_commands_run() {
        let server = ServerState::for_tests();
        let mut c = ClientState::new(1, "a:1".into(), "b:2".into(), 8, 0, true);
        server.loading.store(true, Relaxed);
        assert_eq!(run(&server, &mut c, &["get", "k"]), loading_error());
        assert_eq!(run(&server, &mut c, &["ping"]), loading_error());
        let info = run(&server, &mut c, &["info", "persistence"]);
        assert!(!matches!(info, Reply::Error(_)), "{info:?}");
        assert_eq!(run(&server, &mut c, &["select", "1"]), Reply::OK);
        // CONFIG SET of a directive refused while loading answers -LOADING as well.
        let e = run(&server, &mut c, &["config", "set", "appendonly", "yes"]);
        assert!(matches!(e, Reply::Error(e) if e.text().starts_with("LOADING ")));
        assert_eq!(
            run(&server, &mut c, &["config", "set", "loglevel", "debug"]),
            Reply::OK
        );
        // Inside MULTI the refusal aborts the transaction.
        assert_eq!(run(&server, &mut c, &["multi"]), Reply::OK);
        assert_eq!(run(&server, &mut c, &["set", "k", "v"]), loading_error());
        assert_eq!(
            run(&server, &mut c, &["exec"]),
            Reply::Error(errors::EXECABORT)
        );
        // The loader's own client (AOF replay) is let through.
        let mut replay = ClientState::new(0, String::new(), String::new(), 0, 0, true);
        replay.is_master = true;
        assert_eq!(run(&server, &mut replay, &["set", "k", "v"]), Reply::OK);
        server.loading.store(false, Relaxed);
        assert_eq!(run(&server, &mut c, &["select", "0"]), Reply::OK);
        assert_eq!(
            run(&server, &mut c, &["get", "k"]),
            Reply::Bulk(Bytes::from_static(b"v"))
        );
    }

    #[test]
    fn exec_is_refused_when_a_queued_command_may_not_run_while_loading() {
        let server = ServerState::for_tests();
        let mut c = ClientState::new(1, "a:1".into(), "b:2".into(), 8, 0, true);
        assert_eq!(run(&server, &mut c, &["multi"]), Reply::OK);
        assert_eq!(run(&server, &mut c, &["set", "k", "v"]), Reply::QUEUED);
        server.loading.store(true, Relaxed);
        let reply = run(&server, &mut c, &["exec"]);
        assert!(
            matches!(&reply, Reply::Error(e) if e.text() == "EXECABORT Transaction discarded because of: LOADING Redis is loading the dataset in memory"),
            "{reply:?}"
        );
        assert!(c.multi.is_none());
    }
}

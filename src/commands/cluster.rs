//! The client side of cluster mode: ASKING (the one-shot permission to use a slot being
//! imported, consumed by dispatch after the next command), READONLY / READWRITE (reads of the
//! master's slots on a replica), and the CLUSTER subcommands that only look at this node's
//! keyspace (KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT). As in Redis 7.0, all of them answer
//! `ERR This instance has cluster support disabled` when `cluster-enabled` is off.

use super::context::ExecCtx;
use super::errors;
use super::spec::{acl, flag::*, CmdResult, CommandSpec as C, Scope};
use crate::cluster::machine::{Admin, SetSlot};
use crate::cluster::node::NodeId;
use crate::cluster::nodes_conf::CLUSTER_PORT_INCR;
use crate::cluster::render::{self, ClientView, EndpointType};
use crate::cluster::state::{ClusterNode, ClusterState, LinkId, Slot};
use crate::config::values::ClusterEndpointType;
use crate::resp::{ErrorReply, Reply};
use crate::server::cluster_driver::ClusterHandle;
use crate::slot::{key_slot, SLOT_COUNT};
use bytes::Bytes;
use std::sync::Arc;

const NDO: &[&str] = &["nondeterministic_output"];
/// The flags Redis 7.0.15 gives the subcommands that change the node table.
const ADMIN_CMD: u32 = NO_ASYNC_LOADING | ADMIN | STALE;

const CLUSTER_SUBCOMMANDS: &[C] = &[
    C::new(
        "addslots",
        -3,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        addslots,
    ),
    C::new(
        "addslotsrange",
        -4,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "7.0.0",
        addslotsrange,
    ),
    C::new(
        "bumpepoch",
        2,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        bumpepoch,
    )
    .tips(NDO),
    C::new(
        "count-failure-reports",
        3,
        ADMIN | STALE,
        0,
        &[],
        "cluster",
        "3.0.0",
        count_failure_reports,
    )
    .tips(NDO),
    C::new(
        "countkeysinslot",
        3,
        STALE,
        0,
        &[],
        "cluster",
        "3.0.0",
        countkeysinslot,
    )
    .scope(Scope::All),
    C::new(
        "delslots",
        -3,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        delslots,
    ),
    C::new(
        "delslotsrange",
        -4,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "7.0.0",
        delslotsrange,
    ),
    C::new(
        "flushslots",
        2,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        flushslots,
    )
    .scope(Scope::All),
    C::new("forget", 3, ADMIN_CMD, 0, &[], "cluster", "3.0.0", forget),
    C::new(
        "getkeysinslot",
        4,
        STALE,
        0,
        &[],
        "cluster",
        "3.0.0",
        getkeysinslot,
    )
    .scope(Scope::All)
    .tips(NDO),
    C::new("help", 2, LOADING | STALE, 0, &[], "cluster", "5.0.0", help),
    C::new("info", 2, STALE, 0, &[], "cluster", "3.0.0", info).tips(NDO),
    C::new("keyslot", 3, STALE, 0, &[], "cluster", "3.0.0", keyslot),
    C::new("links", 2, STALE, 0, &[], "cluster", "7.0.0", links).tips(NDO),
    C::new("meet", -4, ADMIN_CMD, 0, &[], "cluster", "3.0.0", meet),
    C::new("myid", 2, STALE, 0, &[], "cluster", "3.0.0", myid),
    C::new("nodes", 2, STALE, 0, &[], "cluster", "3.0.0", nodes).tips(NDO),
    C::new(
        "replicas",
        3,
        ADMIN | STALE,
        0,
        &[],
        "cluster",
        "5.0.0",
        replicas,
    )
    .tips(NDO),
    C::new(
        "replicate",
        3,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        replicate,
    )
    .scope(Scope::All),
    C::new(
        "reset",
        -2,
        ADMIN | STALE | NOSCRIPT,
        0,
        &[],
        "cluster",
        "3.0.0",
        reset,
    )
    .scope(Scope::All),
    C::new(
        "saveconfig",
        2,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        saveconfig,
    ),
    C::new(
        "set-config-epoch",
        3,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        set_config_epoch,
    ),
    C::new(
        "setslot",
        -4,
        ADMIN_CMD,
        0,
        &[],
        "cluster",
        "3.0.0",
        setslot,
    )
    .scope(Scope::All),
    C::new("shards", 2, STALE, 0, &[], "cluster", "7.0.0", shards).tips(NDO),
    C::new(
        "slaves",
        3,
        ADMIN | STALE,
        0,
        &[],
        "cluster",
        "3.0.0",
        replicas,
    )
    .tips(NDO),
    C::new("slots", 2, STALE, 0, &[], "cluster", "3.0.0", slots).tips(NDO),
];

pub const COMMANDS: &[C] = &[
    C::new(
        "asking",
        1,
        FAST,
        acl::CONNECTION,
        &[],
        "cluster",
        "3.0.0",
        asking,
    ),
    C::new(
        "readonly",
        1,
        FAST | LOADING | STALE,
        acl::CONNECTION,
        &[],
        "cluster",
        "3.0.0",
        readonly,
    ),
    C::new(
        "readwrite",
        1,
        FAST | LOADING | STALE,
        acl::CONNECTION,
        &[],
        "cluster",
        "3.0.0",
        readwrite,
    ),
    C::new("cluster", -2, 0, 0, &[], "cluster", "3.0.0", container)
        .subcommands(CLUSTER_SUBCOMMANDS),
];

fn cluster_enabled(ctx: &ExecCtx) -> Result<(), ErrorReply> {
    if ctx.server.config().cluster_enabled {
        Ok(())
    } else {
        Err(errors::CLUSTER_SUPPORT_DISABLED)
    }
}

fn asking(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    ctx.client.asking = true;
    Ok(Reply::OK)
}

fn readonly(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    ctx.client.readonly_cluster = true;
    Ok(Reply::OK)
}

fn readwrite(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    ctx.client.readonly_cluster = false;
    Ok(Reply::OK)
}

/// Dispatch answers unknown subcommands and a bare CLUSTER; kept for the table's shape.
fn container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        "cluster",
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn keyslot(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    Ok(Reply::Int(key_slot(&args[2]) as i64))
}

/// A slot argument: an integer (else the integer error), checked against the slot range by
/// the caller with its own error text.
fn slot_arg(arg: &[u8]) -> Result<i64, ErrorReply> {
    crate::util::parse_int(arg).ok_or(errors::NOT_INTEGER)
}

fn in_range(slot: i64) -> Option<u16> {
    (0..SLOT_COUNT as i64)
        .contains(&slot)
        .then_some(slot as u16)
}

fn countkeysinslot(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    let slot = in_range(slot_arg(&args[2])?).ok_or(errors::INVALID_SLOT)?;
    Ok(Reply::Int(ctx.ks().count_in_slot(0, slot) as i64))
}

fn getkeysinslot(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    let slot = slot_arg(&args[2])?;
    let max = slot_arg(&args[3])?;
    let (Some(slot), true) = (in_range(slot), max >= 0) else {
        return Err(errors::INVALID_SLOT_OR_COUNT);
    };
    let keys = ctx
        .ks()
        .slot_table_ref(0, slot)
        .map_or_else(Vec::new, |table| {
            table
                .iter()
                .take(max as usize)
                .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k)))
                .collect()
        });
    Ok(Reply::Array(keys))
}

// ---- the node table: views and admin subcommands ----

/// The cluster machine's handle; cluster mode without one (a handler test that did not
/// install it) answers like a server without cluster support.
fn handle(ctx: &ExecCtx) -> Result<Arc<ClusterHandle>, ErrorReply> {
    cluster_enabled(ctx)?;
    ctx.server
        .cluster
        .get()
        .cloned()
        .ok_or(errors::CLUSTER_SUPPORT_DISABLED)
}

/// DEBUG CLUSTERLINK KILL <to|from|all> <node-id>: frees bus links to or from a node.
pub(super) fn debug_clusterlink_kill(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = ctx
        .server
        .cluster
        .get()
        .cloned()
        .filter(|_| ctx.server.config().cluster_enabled)
        .ok_or(ErrorReply::fixed(
            "ERR Debug option only available for cluster mode enabled setup!",
        ))?;
    let node = h
        .with_state(|state| lookup(state, &args[4]).map(|n| n.name))
        .ok_or_else(|| unknown_node(&args[4]))?;
    let (to, from) = match args[3].to_ascii_lowercase().as_slice() {
        b"to" => (true, false),
        b"from" => (false, true),
        b"all" => (true, true),
        _ => return Err(err(format!("Unknown direction {}", text(&args[3])))),
    };
    h.admin(ctx.server, ctx.now_ms, Admin::KillLink { node, to, from })
}

/// Steps an admin subcommand checked against the table under the machine lock, then does
/// the dataset work the step asks for: on the shards this command holds (`holds_shards`,
/// its table entry locks them all) or by locking them here.
fn run_admin(
    ctx: &mut ExecCtx,
    h: &ClusterHandle,
    holds_shards: bool,
    check: impl FnOnce(&ClusterState) -> Result<Admin, ErrorReply>,
) -> CmdResult {
    let mut work = Vec::new();
    let reply = h.admin_checked(ctx.server, ctx.now_ms, &mut work, check);
    if !work.is_empty() {
        if holds_shards {
            let ks = ctx.ks();
            work.iter().for_each(|w| w.apply(ks));
        } else {
            let mut ks = ctx.server.keyspace.lock_all();
            work.iter().for_each(|w| w.apply(&mut ks));
        }
    }
    reply
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

fn err(msg: String) -> ErrorReply {
    ErrorReply::owned(format!("ERR {msg}"))
}

/// clusterLookupNode: only a well-formed 40-character id can name a node.
fn lookup<'s>(state: &'s ClusterState, arg: &[u8]) -> Option<&'s ClusterNode> {
    NodeId::parse(arg).and_then(|id| state.node(&id))
}

fn unknown_node(arg: &[u8]) -> ErrorReply {
    err(format!("Unknown node {}", text(arg)))
}

/// getSlotOrReply: an integer in 0..16383.
fn slot_or_reply(arg: &[u8]) -> Result<Slot, ErrorReply> {
    crate::util::parse_int(arg)
        .and_then(in_range)
        .ok_or(INVALID_OR_OUT_OF_RANGE_SLOT)
}

const INVALID_OR_OUT_OF_RANGE_SLOT: ErrorReply =
    ErrorReply::fixed("ERR Invalid or out of range slot");

fn client_view(ctx: &ExecCtx) -> ClientView {
    let config = ctx.server.config();
    ClientView {
        endpoint: match config.cluster_preferred_endpoint_type {
            ClusterEndpointType::Ip => EndpointType::Ip,
            ClusterEndpointType::Hostname => EndpointType::Hostname,
            ClusterEndpointType::UnknownEndpoint => EndpointType::UnknownEndpoint,
        },
        tls_cluster: config.tls_cluster,
        use_pport: false,
        myself_repl_offset: ctx.server.backlog.lock().end_offset() as i64,
        ipv6_client: ctx.client.connected_over_ipv6(),
    }
}

fn help(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    cluster_enabled(ctx)?;
    Ok(super::debug::help_reply(&args[0], HELP))
}

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

fn myid(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    Ok(h.with_state(|s| Reply::bulk_slice(s.myself_id().as_bytes())))
}

fn nodes(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let ipv6 = ctx.client.connected_over_ipv6();
    Ok(h.with_state(|s| render::cluster_nodes_reply(s, false, ipv6)))
}

fn slots(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let view = client_view(ctx);
    Ok(h.with_state(|s| render::cluster_slots(s, &view)))
}

fn shards(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let view = client_view(ctx);
    Ok(h.with_state(|s| render::cluster_shards(s, &view)))
}

fn info(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let stats = h.stats();
    Ok(h.with_state(|s| render::cluster_info_reply(s, &stats)))
}

fn links(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let described: Vec<(NodeId, bool, LinkId)> = h.with_state(|s| {
        let mut out = Vec::new();
        for node in s.nodes() {
            if let Some(link) = node.link {
                out.push((node.name, false, link));
            }
            if let Some(link) = node.inbound_link {
                out.push((node.name, true, link));
            }
        }
        out
    });
    let links = described
        .into_iter()
        .map(|(node, inbound, link)| {
            let info = h.link_info(link);
            let (ctime, events, queued) = info.map_or((0, "", 0), |i| {
                let events = match (i.connected, i.queued_bytes > 0) {
                    (false, _) => "",
                    (true, false) => "r",
                    (true, true) => "rw",
                };
                (i.ctime_ms as i64, events, i.queued_bytes as i64)
            });
            let pair = |k: &str, v: Reply| (Reply::bulk_str(k), v);
            Reply::Map(vec![
                pair(
                    "direction",
                    Reply::bulk_str(if inbound { "from" } else { "to" }),
                ),
                pair("node", Reply::bulk_slice(node.as_bytes())),
                pair("create-time", Reply::Int(ctime)),
                pair("events", Reply::bulk_str(events)),
                pair("send-buffer-allocated", Reply::Int(queued)),
                pair("send-buffer-used", Reply::Int(queued)),
            ])
        })
        .collect();
    Ok(Reply::Array(links))
}

fn replicas(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let ipv6 = ctx.client.connected_over_ipv6();
    h.with_state(|s| {
        let node = lookup(s, &args[2]).ok_or_else(|| unknown_node(&args[2]))?;
        if node.is_replica() {
            return Err(ErrorReply::fixed("ERR The specified node is not a master"));
        }
        Ok(render::cluster_replicas(s, &node.name, false, ipv6))
    })
}

fn count_failure_reports(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let now = ctx.now_ms;
    let timeout = ctx.server.config().cluster_node_timeout.max(0) as u64;
    h.with_state(|s| {
        let id = lookup(s, &args[2])
            .map(|n| n.name)
            .ok_or_else(|| unknown_node(&args[2]))?;
        Ok(Reply::Int(s.failure_reports_count(&id, now, timeout) as i64))
    })
}

/// checkSlotAssignmentsOrReply for `start..=end`, in Redis's order: for each slot, busy (or
/// unassigned for a delete) first, then a repeat of an earlier argument.
fn check_assignments(
    state: &ClusterState,
    seen: &mut [bool],
    del: bool,
    start: Slot,
    end: Slot,
) -> Result<(), ErrorReply> {
    for slot in start..=end {
        let owned = state.slot_owner(slot).is_some();
        if del && !owned {
            return Err(err(format!("Slot {slot} is already unassigned")));
        }
        if !del && owned {
            return Err(err(format!("Slot {slot} is already busy")));
        }
        if std::mem::replace(&mut seen[slot as usize], true) {
            return Err(err(format!("Slot {slot} specified multiple times")));
        }
    }
    Ok(())
}

fn slots_admin(del: bool, seen: &[bool]) -> Admin {
    let slots = (0..SLOT_COUNT as u16)
        .filter(|s| seen[*s as usize])
        .collect();
    if del {
        Admin::DelSlots(slots)
    } else {
        Admin::AddSlots(slots)
    }
}

fn addslots(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    slots_list(ctx, args, false)
}

fn delslots(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    slots_list(ctx, args, true)
}

/// ADDSLOTS / DELSLOTS: every argument parsed first, then the assignments checked.
fn slots_list(ctx: &mut ExecCtx, args: &[Bytes], del: bool) -> CmdResult {
    let h = handle(ctx)?;
    let slots = args[2..]
        .iter()
        .map(|a| slot_or_reply(a))
        .collect::<Result<Vec<Slot>, _>>()?;
    run_admin(ctx, &h, false, |state| {
        let mut seen = vec![false; SLOT_COUNT];
        for &slot in &slots {
            check_assignments(state, &mut seen, del, slot, slot)?;
        }
        Ok(slots_admin(del, &seen))
    })
}

fn addslotsrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    slots_ranges(ctx, args, false)
}

fn delslotsrange(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    slots_ranges(ctx, args, true)
}

/// ADDSLOTSRANGE / DELSLOTSRANGE: pairs checked one after the other, parse and assignment
/// errors interleaved as Redis meets them.
fn slots_ranges(ctx: &mut ExecCtx, args: &[Bytes], del: bool) -> CmdResult {
    let h = handle(ctx)?;
    if args.len() % 2 == 1 {
        return Err(errors::wrong_arity(ctx.current_command));
    }
    run_admin(ctx, &h, false, |state| {
        let mut seen = vec![false; SLOT_COUNT];
        for pair in args[2..].chunks_exact(2) {
            let start = slot_or_reply(&pair[0])?;
            let end = slot_or_reply(&pair[1])?;
            if start > end {
                return Err(err(format!(
                    "start slot number {start} is greater than end slot number {end}"
                )));
            }
            check_assignments(state, &mut seen, del, start, end)?;
        }
        Ok(slots_admin(del, &seen))
    })
}

fn flushslots(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let keys_in_db = ctx.ks().db_size(0) as u64;
    if keys_in_db != 0 {
        return Err(ErrorReply::fixed(
            "ERR DB must be empty to perform CLUSTER FLUSHSLOTS.",
        ));
    }
    run_admin(ctx, &h, true, |_| Ok(Admin::FlushSlots { keys_in_db }))
}

fn meet(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    if args.len() > 5 {
        return Err(errors::subcommand_syntax_error(args));
    }
    let port = crate::util::parse_int(&args[3]).ok_or_else(|| {
        err(format!(
            "Invalid TCP base port specified: {}",
            text(&args[3])
        ))
    })?;
    let cport = match args.get(4) {
        Some(a) => crate::util::parse_int(a)
            .ok_or_else(|| err(format!("Invalid TCP bus port specified: {}", text(a))))?,
        None => port.saturating_add(CLUSTER_PORT_INCR as i64),
    };
    let ip = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|a| a.parse::<core::net::IpAddr>().ok());
    let valid_port = |p: i64| (1..=65535).contains(&p);
    let (Some(ip), true, true) = (ip, valid_port(port), valid_port(cport)) else {
        return Err(err(format!(
            "Invalid node address specified: {}:{}",
            text(&args[2]),
            text(&args[3])
        )));
    };
    h.admin(
        ctx.server,
        ctx.now_ms,
        Admin::Meet {
            ip: ip.to_string(),
            port: port as u16,
            cport: cport as u16,
        },
    )
}

fn forget(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    run_admin(ctx, &h, false, |state| {
        let node = lookup(state, &args[2]).ok_or_else(|| unknown_node(&args[2]))?;
        if node.is_myself() {
            return Err(ErrorReply::fixed(
                "ERR I tried hard but I can't forget myself...",
            ));
        }
        let me = state.myself();
        if me.is_replica() && me.slaveof == Some(node.name) {
            return Err(ErrorReply::fixed("ERR Can't forget my master!"));
        }
        Ok(Admin::Forget(node.name))
    })
}

fn reset(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let hard = match args.len() {
        2 => false,
        3 if eq(&args[2], "hard") => true,
        3 if eq(&args[2], "soft") => false,
        3 => return Err(errors::SYNTAX),
        _ => return Err(errors::subcommand_syntax_error(args)),
    };
    let db = ctx.db();
    let keys_in_db = ctx.ks().db_size(db) as u64;
    run_admin(ctx, &h, true, |state| {
        if state.myself().is_master() && keys_in_db != 0 {
            return Err(ErrorReply::fixed(
                "ERR CLUSTER RESET can't be called with master nodes containing keys",
            ));
        }
        Ok(Admin::Reset { hard, keys_in_db })
    })
}

fn replicate(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let keys_in_db = ctx.ks().db_size(0) as u64;
    run_admin(ctx, &h, true, |state| {
        let node = lookup(state, &args[2]).ok_or_else(|| unknown_node(&args[2]))?;
        if node.is_myself() {
            return Err(ErrorReply::fixed("ERR Can't replicate myself"));
        }
        if node.is_replica() {
            return Err(ErrorReply::fixed(
                "ERR I can only replicate a master, not a replica.",
            ));
        }
        let me = state.myself();
        if me.is_master() && (me.numslots() != 0 || keys_in_db != 0) {
            return Err(ErrorReply::fixed(
                "ERR To set a master the node must be empty and without assigned slots.",
            ));
        }
        Ok(Admin::Replicate(node.name))
    })
}

fn saveconfig(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    h.admin(ctx.server, ctx.now_ms, Admin::SaveConfig)
}

fn bumpepoch(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    h.admin(ctx.server, ctx.now_ms, Admin::BumpEpoch)
}

fn set_config_epoch(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let epoch = crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?;
    run_admin(ctx, &h, false, |state| {
        if epoch < 0 {
            return Err(err(format!("Invalid config epoch specified: {epoch}")));
        }
        if state.len() > 1 {
            return Err(ErrorReply::fixed("ERR The user can assign a config epoch only when the node does not know any other node."));
        }
        if state.myself().config_epoch != 0 {
            return Err(ErrorReply::fixed(
                "ERR Node config epoch is already non-zero",
            ));
        }
        Ok(Admin::SetConfigEpoch(epoch as u64))
    })
}

fn setslot(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let h = handle(ctx)?;
    let slot_keys = |ctx: &mut ExecCtx, slot: Slot| ctx.ks().count_in_slot(0, slot);
    // Only a master may set slots; checked before the slot argument, as Redis does.
    if h.with_state(|s| s.myself().is_replica()) {
        return Err(ErrorReply::fixed(
            "ERR Please use SETSLOT only with masters.",
        ));
    }
    let slot = slot_or_reply(&args[2])?;
    let keys = slot_keys(ctx, slot);
    let action = &args[3];
    let argc = args.len();
    run_admin(ctx, &h, true, |state| {
        let me = state.myself_id();
        let owner = state.slot_owner(slot).copied();
        let target = |arg: &[u8], unknown: &dyn Fn() -> ErrorReply| {
            let node = lookup(state, arg).ok_or_else(unknown)?;
            if node.is_replica() {
                return Err(ErrorReply::fixed("ERR Target node is not a master"));
            }
            Ok(node.name)
        };
        let dont_know = || err(format!("I don't know about node {}", text(&args[4])));
        let set = if eq(action, "migrating") && argc == 5 {
            if owner != Some(me) {
                return Err(err(format!("I'm not the owner of hash slot {slot}")));
            }
            SetSlot::Migrating(target(&args[4], &dont_know)?)
        } else if eq(action, "importing") && argc == 5 {
            if owner == Some(me) {
                return Err(err(format!("I'm already the owner of hash slot {slot}")));
            }
            SetSlot::Importing(target(&args[4], &dont_know)?)
        } else if eq(action, "stable") && argc == 4 {
            SetSlot::Stable
        } else if eq(action, "node") && argc == 5 {
            let to = target(&args[4], &|| unknown_node(&args[4]))?;
            if owner == Some(me) && to != me && keys != 0 {
                return Err(err(format!("Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot.")));
            }
            SetSlot::Node(to)
        } else {
            return Err(ErrorReply::fixed(
                "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP",
            ));
        };
        Ok(Admin::SetSlot {
            slot,
            action: set,
            keys_in_slot: keys as u64,
        })
    })
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::Harness;
    use crate::resp::Reply;

    fn cluster_harness() -> Harness {
        let h = Harness::new();
        let mut config = (**h.server.config()).clone();
        config.cluster_enabled = true;
        h.server.config.store(std::sync::Arc::new(config));
        h
    }

    /// Cluster mode with a machine installed (no bus, no file).
    fn node_harness() -> Harness {
        use crate::cluster::machine::{ClusterMachine, MachineConfig};
        use crate::cluster::node::{NodeFlags, NodeId};
        use crate::cluster::state::{ClusterNode, ClusterState};
        let h = cluster_harness();
        let me = ClusterNode::new(NodeId([b'a'; 40]), NodeFlags(NodeFlags::MASTER), 0);
        let machine = ClusterMachine::new(ClusterState::new(me), MachineConfig::default(), 1);
        let handle = crate::server::cluster_driver::ClusterHandle::new(
            machine,
            None,
            std::sync::Weak::new(),
        );
        assert!(h.server.cluster.set(std::sync::Arc::new(handle)).is_ok());
        h
    }

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Verbatim(_, b) | Reply::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("text expected, got {other:?}"),
        }
    }

    #[test]
    fn addslots_changes_the_table_the_views_render() {
        let mut h = node_harness();
        assert_eq!(text(h.ok(&["cluster", "myid"])), "a".repeat(40));
        assert_eq!(h.ok(&["cluster", "addslots", "3", "1", "2"]), Reply::OK);
        assert_eq!(
            h.ok(&["cluster", "addslotsrange", "10", "20", "30", "30"]),
            Reply::OK
        );
        let nodes = text(h.ok(&["cluster", "nodes"]));
        assert!(nodes.ends_with(" connected 1-3 10-20 30\n"), "{nodes}");
        assert_eq!(
            h.err(&["cluster", "addslots", "4", "2"]),
            "ERR Slot 2 is already busy"
        );
        assert_eq!(
            h.err(&["cluster", "addslots", "5", "5"]),
            "ERR Slot 5 specified multiple times"
        );
        assert_eq!(
            h.err(&["cluster", "delslotsrange", "1", "5"]),
            "ERR Slot 4 is already unassigned"
        );
        assert_eq!(h.ok(&["cluster", "delslotsrange", "1", "3"]), Reply::OK);
        let info = text(h.ok(&["cluster", "info"]));
        assert!(info.contains("cluster_slots_assigned:12\r\n"), "{info}");
    }

    #[test]
    fn setslot_and_forget_check_nodes_in_redis_order() {
        let mut h = node_harness();
        let me = "a".repeat(40);
        assert_eq!(
            h.err(&["cluster", "setslot", "1", "migrating", "nobody"]),
            "ERR I'm not the owner of hash slot 1"
        );
        h.ok(&["cluster", "addslots", "1"]);
        assert_eq!(
            h.err(&["cluster", "setslot", "1", "migrating", "nobody"]),
            "ERR I don't know about node nobody"
        );
        assert_eq!(
            h.err(&["cluster", "setslot", "1", "importing", &me]),
            "ERR I'm already the owner of hash slot 1"
        );
        assert_eq!(
            h.err(&["cluster", "setslot", "1", "node", "x"]),
            "ERR Unknown node x"
        );
        assert_eq!(
            h.err(&["cluster", "forget", &me]),
            "ERR I tried hard but I can't forget myself..."
        );
        h.ok(&["set", "{a}", "v"]); // slot 15495
        assert_eq!(
            h.err(&["cluster", "flushslots"]),
            "ERR DB must be empty to perform CLUSTER FLUSHSLOTS."
        );
        assert_eq!(
            h.err(&["cluster", "reset"]),
            "ERR CLUSTER RESET can't be called with master nodes containing keys"
        );
    }

    #[test]
    fn meet_checks_ports_and_addresses_like_redis_7_0() {
        let mut h = node_harness();
        assert_eq!(
            h.err(&["cluster", "meet", "127.0.0.1", "x"]),
            "ERR Invalid TCP base port specified: x"
        );
        assert_eq!(
            h.err(&["cluster", "meet", "127.0.0.1", "1", "y"]),
            "ERR Invalid TCP bus port specified: y"
        );
        assert_eq!(
            h.err(&["cluster", "meet", "localhost", "1"]),
            "ERR Invalid node address specified: localhost:1"
        );
        assert_eq!(
            h.err(&["cluster", "meet", "127.0.0.1", "60000"]),
            "ERR Invalid node address specified: 127.0.0.1:60000"
        );
        assert_eq!(h.ok(&["cluster", "meet", "::1", "7000"]), Reply::OK);
        let nodes = text(h.ok(&["cluster", "nodes"]));
        assert!(nodes.contains(" ::1:7000@17000 "), "{nodes}");
    }

    #[test]
    fn cluster_client_commands_are_refused_outside_cluster_mode() {
        let mut h = Harness::new();
        for cmd in ["asking", "readonly", "readwrite"] {
            assert_eq!(
                h.err(&[cmd]),
                "ERR This instance has cluster support disabled"
            );
        }
        assert_eq!(
            h.err(&["cluster", "keyslot", "foo"]),
            "ERR This instance has cluster support disabled"
        );
    }

    #[test]
    fn readonly_is_persistent_until_readwrite() {
        let mut h = cluster_harness();
        assert_eq!(h.ok(&["readonly"]), Reply::OK);
        assert!(h.client.readonly_cluster);
        assert_eq!(h.ok(&["readwrite"]), Reply::OK);
        assert!(!h.client.readonly_cluster);
    }

    #[test]
    fn asking_sets_the_one_shot_flag() {
        let mut h = cluster_harness();
        assert_eq!(h.ok(&["asking"]), Reply::OK);
        assert!(h.client.asking);
    }

    #[test]
    fn keyslot_hashes_the_tag() {
        let mut h = cluster_harness();
        assert_eq!(
            h.ok(&["cluster", "keyslot", "{user1000}.following"]),
            Reply::Int(3443)
        );
        assert_eq!(
            h.ok(&["cluster", "keyslot", "123456789"]),
            Reply::Int(12739)
        );
    }

    #[test]
    fn keys_in_a_slot_are_counted_and_listed() {
        let mut h = cluster_harness();
        for k in ["{a}1", "{a}2", "{a}3", "b"] {
            h.ok(&["set", k, "v"]);
        }
        assert_eq!(
            h.ok(&["cluster", "countkeysinslot", "15495"]),
            Reply::Int(3)
        );
        assert_eq!(h.ok(&["cluster", "countkeysinslot", "0"]), Reply::Int(0));
        let Reply::Array(two) = h.ok(&["cluster", "getkeysinslot", "15495", "2"]) else {
            panic!("array expected");
        };
        assert_eq!(two.len(), 2);
        let Reply::Array(all) = h.ok(&["cluster", "getkeysinslot", "15495", "10"]) else {
            panic!("array expected");
        };
        assert_eq!(all.len(), 3);
        assert_eq!(
            h.ok(&["cluster", "getkeysinslot", "1", "10"]),
            Reply::Array(vec![])
        );
    }

    #[test]
    fn slot_arguments_are_checked_like_redis() {
        let mut h = cluster_harness();
        assert_eq!(
            h.err(&["cluster", "countkeysinslot", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            h.err(&["cluster", "countkeysinslot", "16384"]),
            "ERR Invalid slot"
        );
        assert_eq!(
            h.err(&["cluster", "getkeysinslot", "-1", "1"]),
            "ERR Invalid slot or number of keys"
        );
        assert_eq!(
            h.err(&["cluster", "getkeysinslot", "1", "-1"]),
            "ERR Invalid slot or number of keys"
        );
        assert_eq!(
            h.err(&["cluster", "getkeysinslot", "1", "x"]),
            "ERR value is not an integer or out of range"
        );
    }
}

/// Routing as dispatch applies it: a topology stored in the server state, commands run through
/// `dispatch::execute`, exact replies asserted.
#[cfg(test)]
mod routing_tests {
    use crate::cluster::node::NodeId;
    use crate::cluster::topology::{NodeSpec, Topology, TopologyBuilder};
    use crate::commands::context::ClientState;
    use crate::commands::dispatch::execute;
    use crate::resp::Reply;
    use crate::server::state::ServerState;
    use bytes::Bytes;
    use std::sync::Arc;

    const A: NodeId = NodeId([b'a'; 40]);
    const B: NodeId = NodeId([b'b'; 40]);
    const R: NodeId = NodeId([b'r'; 40]);
    const NOW_US: u64 = 1_700_000_000_000_000;
    // "bar" hashes to 5061 and "hello" to 866 (both A's); "foo" to 12182 (B's).
    const FOO: u16 = 12182;

    /// Myself (A, 127.0.0.1:6379) serves 0..=8191, B (127.0.0.1:6380) the rest.
    fn two_masters(me: NodeId) -> TopologyBuilder {
        Topology::builder(me)
            .node(NodeSpec::new(A, "127.0.0.1", 6379))
            .node(NodeSpec::new(B, "127.0.0.1", 6380))
            .assign(0..=8191, A)
            .assign(8192..=16383, B)
    }

    fn server_with(topology: TopologyBuilder) -> ServerState {
        let server = ServerState::for_tests();
        let mut config = (**server.config()).clone();
        config.cluster_enabled = true;
        server.config.store(Arc::new(config));
        server.publish_topology(Some(Arc::new(topology.build())));
        server
    }

    fn client() -> ClientState {
        ClientState::new(7, "127.0.0.1:1".into(), "127.0.0.1:6379".into(), 9, 0, true)
    }

    fn run(server: &ServerState, c: &mut ClientState, argv: &[&str]) -> Reply {
        let args: Vec<Bytes> = argv
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        execute(server, c, &args, NOW_US, true).reply
    }

    fn error(reply: Reply) -> String {
        match reply {
            Reply::Error(e) => e.text().to_string(),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Puts a key in place the way our primary's stream would (never routed).
    fn seed(server: &ServerState, key: &str) {
        let mut master = client();
        master.is_master = true;
        assert_eq!(run(server, &mut master, &["set", key, "v"]), Reply::OK);
    }

    #[test]
    fn a_key_owned_elsewhere_is_moved_and_a_key_of_myself_is_served() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["get", "foo"])),
            "MOVED 12182 127.0.0.1:6380"
        );
        assert_eq!(run(&server, &mut c, &["set", "bar", "1"]), Reply::OK);
        assert_eq!(
            run(&server, &mut c, &["get", "bar"]),
            Reply::Bulk("1".into())
        );
    }

    #[test]
    fn a_standalone_server_routes_nothing() {
        let server = ServerState::for_tests();
        let mut c = client();
        assert_eq!(run(&server, &mut c, &["set", "foo", "1"]), Reply::OK);
        assert_eq!(
            run(&server, &mut c, &["mset", "foo", "1", "bar", "2"]),
            Reply::OK
        );
    }

    #[test]
    fn mset_across_slots_is_crossslot() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["mset", "bar", "1", "hello", "2"])),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
        assert_eq!(
            run(&server, &mut c, &["mset", "{bar}1", "1", "bar", "2"]),
            Reply::OK
        );
    }

    #[test]
    fn keyless_commands_run_anywhere_even_when_the_cluster_is_down() {
        let server = server_with(two_masters(A).state_ok(false));
        let mut c = client();
        assert_eq!(run(&server, &mut c, &["ping"]), Reply::simple("PONG"));
        assert_eq!(run(&server, &mut c, &["dbsize"]), Reply::Int(0));
        assert_eq!(
            error(run(&server, &mut c, &["get", "bar"])),
            "CLUSTERDOWN The cluster is down"
        );
    }

    #[test]
    fn an_unassigned_slot_is_not_served() {
        let server = server_with(Topology::builder(A).assign(0..=100, A));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["get", "foo"])),
            "CLUSTERDOWN Hash slot not served"
        );
    }

    #[test]
    fn asking_then_a_command_on_an_importing_slot_is_served_once() {
        let server = server_with(two_masters(A).importing(FOO, B));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["get", "foo"])),
            "MOVED 12182 127.0.0.1:6380"
        );
        assert_eq!(run(&server, &mut c, &["asking"]), Reply::OK);
        assert_eq!(run(&server, &mut c, &["get", "foo"]), Reply::Null);
        assert!(!c.asking);
        assert_eq!(
            error(run(&server, &mut c, &["get", "foo"])),
            "MOVED 12182 127.0.0.1:6380"
        );
    }

    #[test]
    fn asking_is_consumed_by_a_keyless_or_refused_command_too() {
        let server = server_with(two_masters(A).importing(FOO, B));
        let mut c = client();
        run(&server, &mut c, &["asking"]);
        run(&server, &mut c, &["ping"]);
        assert!(error(run(&server, &mut c, &["get", "foo"])).starts_with("MOVED"));
        run(&server, &mut c, &["asking"]);
        run(&server, &mut c, &["get"]);
        assert!(!c.asking);
    }

    #[test]
    fn asking_covers_a_whole_transaction() {
        let server = server_with(two_masters(A).importing(FOO, B));
        let mut c = client();
        run(&server, &mut c, &["asking"]);
        assert_eq!(run(&server, &mut c, &["multi"]), Reply::OK);
        assert_eq!(run(&server, &mut c, &["set", "foo", "1"]), Reply::QUEUED);
        assert_eq!(
            run(&server, &mut c, &["exec"]),
            Reply::Array(vec![Reply::OK])
        );
        assert!(!c.asking);
        assert!(error(run(&server, &mut c, &["get", "foo"])).starts_with("MOVED"));
    }

    #[test]
    fn restore_asking_needs_no_asking() {
        let server = server_with(two_masters(A).importing(FOO, B));
        let mut c = client();
        let dump = {
            let standalone = ServerState::for_tests();
            let mut s = client();
            run(&standalone, &mut s, &["set", "x", "v"]);
            match run(&standalone, &mut s, &["dump", "x"]) {
                Reply::Bulk(b) => b,
                other => panic!("dump replied {other:?}"),
            }
        };
        let args: Vec<Bytes> = vec!["restore-asking".into(), "foo".into(), "0".into(), dump];
        assert_eq!(
            execute(&server, &mut c, &args, NOW_US, true).reply,
            Reply::OK
        );
    }

    #[test]
    fn exec_with_queued_commands_in_two_slots_is_crossslot() {
        let server = server_with(two_masters(A));
        let mut c = client();
        run(&server, &mut c, &["multi"]);
        assert_eq!(run(&server, &mut c, &["set", "bar", "1"]), Reply::QUEUED);
        assert_eq!(run(&server, &mut c, &["set", "hello", "1"]), Reply::QUEUED);
        assert_eq!(
            error(run(&server, &mut c, &["exec"])),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
        assert!(c.multi.is_none(), "the transaction is discarded");
        assert_eq!(run(&server, &mut c, &["get", "bar"]), Reply::Null);
    }

    #[test]
    fn a_redirect_while_queueing_aborts_the_transaction() {
        let server = server_with(two_masters(A));
        let mut c = client();
        run(&server, &mut c, &["multi"]);
        assert!(error(run(&server, &mut c, &["get", "foo"])).starts_with("MOVED"));
        assert_eq!(
            error(run(&server, &mut c, &["exec"])),
            "EXECABORT Transaction discarded because of previous errors."
        );
    }

    #[test]
    fn exec_without_multi_is_not_routed() {
        let server = server_with(two_masters(A).state_ok(false));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["exec"])),
            "ERR EXEC without MULTI"
        );
    }

    #[test]
    fn watch_is_routed_by_its_keys() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["watch", "foo"])),
            "MOVED 12182 127.0.0.1:6380"
        );
        assert_eq!(run(&server, &mut c, &["watch", "bar"]), Reply::OK);
    }

    #[test]
    fn noauth_is_checked_before_moved() {
        let server = server_with(two_masters(A));
        server
            .acl
            .modify(|users| users.set_default_password(Some(b"secret")));
        let mut c = client();
        c.authenticated = false;
        assert_eq!(
            error(run(&server, &mut c, &["get", "foo"])),
            "NOAUTH Authentication required."
        );
    }

    #[test]
    fn arity_is_checked_before_routing() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["get", "foo", "x"])),
            "ERR wrong number of arguments for 'get' command"
        );
    }

    #[test]
    fn a_migrating_slot_serves_present_keys_and_asks_for_missing_ones() {
        let server = server_with(two_masters(A).migrating(5061, B));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["get", "bar"])),
            "ASK 5061 127.0.0.1:6380"
        );
        seed(&server, "bar");
        assert_eq!(
            run(&server, &mut c, &["get", "bar"]),
            Reply::Bulk("v".into())
        );
        assert_eq!(
            error(run(&server, &mut c, &["mget", "bar", "{bar}x"])),
            "TRYAGAIN Multiple keys request during rehashing of slot"
        );
    }

    #[test]
    fn our_primarys_stream_is_never_redirected() {
        let server = server_with(two_masters(A).state_ok(false));
        seed(&server, "foo");
    }

    #[test]
    fn readonly_replica_reads_its_master_slots() {
        let server =
            server_with(two_masters(R).node(NodeSpec::new(R, "127.0.0.1", 6381).replica_of(B)));
        let mut c = client();
        assert!(error(run(&server, &mut c, &["get", "foo"])).starts_with("MOVED 12182"));
        assert_eq!(run(&server, &mut c, &["readonly"]), Reply::OK);
        assert_eq!(run(&server, &mut c, &["get", "foo"]), Reply::Null);
        assert_eq!(
            error(run(&server, &mut c, &["set", "foo", "1"])),
            "MOVED 12182 127.0.0.1:6380"
        );
        assert_eq!(run(&server, &mut c, &["readwrite"]), Reply::OK);
        assert!(error(run(&server, &mut c, &["get", "foo"])).starts_with("MOVED"));
    }

    #[test]
    fn reset_forgets_readonly_and_asking() {
        let server = server_with(two_masters(A));
        let mut c = client();
        run(&server, &mut c, &["readonly"]);
        run(&server, &mut c, &["reset"]);
        assert!(!c.readonly_cluster && !c.asking);
    }

    #[test]
    fn sharded_publish_is_routed_by_its_channel() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert_eq!(
            error(run(&server, &mut c, &["spublish", "foo", "m"])),
            "MOVED 12182 127.0.0.1:6380"
        );
        assert_eq!(
            run(&server, &mut c, &["spublish", "bar", "m"]),
            Reply::Int(0)
        );
    }

    fn blpop(
        server: &ServerState,
        c: &mut ClientState,
        key: &str,
    ) -> crate::commands::dispatch::Outcome {
        let args: Vec<Bytes> = vec![
            "blpop".into(),
            Bytes::copy_from_slice(key.as_bytes()),
            "0".into(),
        ];
        execute(server, c, &args, NOW_US, true)
    }

    #[test]
    fn a_woken_blocked_client_follows_its_slot_to_the_new_owner() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert!(blpop(&server, &mut c, "bar").effects.blocked().is_some());
        server.publish_topology(Some(Arc::new(
            two_masters(A).assign(5061..=5061, B).build(),
        )));
        c.block_retry = true;
        assert_eq!(
            error(blpop(&server, &mut c, "bar").reply),
            "MOVED 5061 127.0.0.1:6380"
        );
    }

    #[test]
    fn a_woken_blocked_client_is_released_when_the_cluster_fails() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert!(blpop(&server, &mut c, "bar").effects.blocked().is_some());
        server
            .topology
            .store(Some(Arc::new(two_masters(A).state_ok(false).build())));
        c.block_retry = true;
        assert_eq!(
            error(blpop(&server, &mut c, "bar").reply),
            "CLUSTERDOWN The cluster is down"
        );
    }

    #[test]
    fn publishing_a_topology_wakes_every_blocked_client() {
        use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
        let server = server_with(two_masters(A));
        let woken = Arc::new(AtomicU32::new(0));
        for (client, key) in [(1, "bar"), (2, "bar"), (3, "hello")] {
            let w = woken.clone();
            let waker: crate::commands::blocking::Waker = Arc::new(move || {
                w.fetch_add(1, Relaxed);
            });
            server
                .blocks
                .block(client, &[(0, key.as_bytes().into())], &waker);
        }
        server.publish_topology(Some(Arc::new(two_masters(B).build())));
        assert_eq!(woken.load(Relaxed), 3);
        assert_eq!(
            server.topology.load().as_ref().map(|t| t.myself().id),
            Some(B)
        );
    }

    #[test]
    fn a_blocked_client_that_asked_stays_on_the_importing_slot() {
        let server = server_with(two_masters(A).importing(FOO, B));
        let mut c = client();
        run(&server, &mut c, &["asking"]);
        assert!(blpop(&server, &mut c, "foo").effects.blocked().is_some());
        assert!(!c.asking);
        c.block_retry = true;
        assert!(blpop(&server, &mut c, "foo").effects.blocked().is_some());
    }

    #[test]
    fn a_script_declaring_flags_is_a_write_unless_it_says_no_writes() {
        let server = server_with(two_masters(A).state_ok(false));
        let mut config = (**server.config()).clone();
        config.cluster_allow_reads_when_down = true;
        server.config.store(Arc::new(config));
        let mut c = client();
        let writes = "#!lua\nreturn 1";
        let reads = "#!lua flags=no-writes\nreturn 1";
        assert_eq!(
            error(run(&server, &mut c, &["eval", writes, "1", "bar"])),
            "CLUSTERDOWN The cluster is down and only accepts read commands"
        );
        assert_eq!(
            run(&server, &mut c, &["eval", reads, "1", "bar"]),
            Reply::Int(1)
        );
        // Without a shebang EVAL carries its own flags, which do not include write.
        assert_eq!(
            run(&server, &mut c, &["eval", "return 1", "1", "bar"]),
            Reply::Int(1)
        );
    }

    #[test]
    fn movable_key_commands_with_no_keys_run_here() {
        let server = server_with(two_masters(A));
        let mut c = client();
        assert_eq!(
            run(&server, &mut c, &["eval", "return 1", "0"]),
            Reply::Int(1)
        );
        assert!(
            error(run(&server, &mut c, &["eval", "return 1", "1", "foo"])).starts_with("MOVED")
        );
    }
}

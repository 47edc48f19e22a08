//! Connection state and administration: CLIENT, HELLO, AUTH, RESET, CONFIG, INFO, SLOWLOG and
//! SHUTDOWN. They read and change the caller's `ClientState` and the shared server state;
//! anything that must happen outside the handler (killing other clients, applying a changed
//! directive, shutting down) is recorded as an effect.

use super::context::{ClientState, ExecCtx, ReplyMode, ShutdownRequest};
use super::errors;
use super::spec::{acl, flag::*, CmdResult, CommandSpec as C};
use crate::resp::{ErrorReply, Reply};
use crate::server::state::ClientView;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

const CONN: u32 = acl::CONNECTION;
const CLIENT_FLAGS: u32 = NOSCRIPT | LOADING | STALE;
const CLIENT_ADMIN: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const CONFIG_ADMIN: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

const CLIENT_SUBCOMMANDS: &[C] = &[
    C::new(
        "help",
        2,
        LOADING | STALE,
        CONN,
        &[],
        "connection",
        "5.0.0",
        client_help,
    ),
    C::new(
        "id",
        2,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "5.0.0",
        client_id,
    ),
    C::new(
        "info",
        2,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "6.2.0",
        client_info,
    )
    .tips(&["nondeterministic_output"]),
    C::new(
        "list",
        -2,
        CLIENT_ADMIN,
        CONN,
        &[],
        "connection",
        "2.4.0",
        client_list,
    )
    .tips(&["nondeterministic_output"]),
    C::new(
        "kill",
        -3,
        CLIENT_ADMIN,
        CONN,
        &[],
        "connection",
        "2.4.0",
        client_kill,
    ),
    C::new(
        "setname",
        3,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "2.6.9",
        client_setname,
    ),
    C::new(
        "getname",
        2,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "2.6.9",
        client_getname,
    ),
    C::new(
        "setinfo",
        4,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "7.2.0",
        client_setinfo,
    ),
    C::new(
        "reply",
        3,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "3.2.0",
        client_reply,
    ),
    C::new(
        "no-evict",
        3,
        CLIENT_ADMIN,
        CONN,
        &[],
        "connection",
        "7.0.0",
        client_no_evict,
    ),
    C::new(
        "no-touch",
        3,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "7.2.0",
        client_no_touch,
    ),
    C::new(
        "pause",
        -3,
        CLIENT_ADMIN,
        CONN,
        &[],
        "connection",
        "2.9.50",
        client_pause,
    ),
    C::new(
        "caching",
        3,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "6.0.0",
        super::tracking::client_caching,
    ),
    C::new(
        "tracking",
        -3,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "6.0.0",
        super::tracking::client_tracking,
    ),
    C::new(
        "getredir",
        2,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "6.0.0",
        super::tracking::client_getredir,
    ),
    C::new(
        "trackinginfo",
        2,
        CLIENT_FLAGS,
        CONN,
        &[],
        "connection",
        "6.2.0",
        super::tracking::client_trackinginfo,
    ),
    C::new(
        "unblock",
        -3,
        CLIENT_ADMIN,
        CONN,
        &[],
        "connection",
        "5.0.0",
        client_unblock,
    ),
    C::new(
        "unpause",
        2,
        CLIENT_ADMIN,
        CONN,
        &[],
        "connection",
        "6.2.0",
        client_unpause,
    ),
];

const CONFIG_SUBCOMMANDS: &[C] = &[
    C::new(
        "help",
        2,
        LOADING | STALE,
        0,
        &[],
        "server",
        "5.0.0",
        config_help,
    ),
    C::new(
        "get",
        -3,
        CONFIG_ADMIN,
        0,
        &[],
        "server",
        "2.0.0",
        config_get,
    ),
    C::new(
        "set",
        -4,
        CONFIG_ADMIN,
        0,
        &[],
        "server",
        "2.0.0",
        config_set,
    )
    .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
    C::new(
        "resetstat",
        2,
        CONFIG_ADMIN,
        0,
        &[],
        "server",
        "2.0.0",
        config_resetstat,
    ),
    C::new(
        "rewrite",
        2,
        CONFIG_ADMIN,
        0,
        &[],
        "server",
        "2.8.0",
        config_rewrite,
    ),
];

const SLOWLOG_SUBCOMMANDS: &[C] = &[
    C::new(
        "help",
        2,
        LOADING | STALE,
        0,
        &[],
        "server",
        "6.2.0",
        slowlog_help,
    ),
    C::new(
        "get",
        -2,
        ADMIN | LOADING | STALE,
        0,
        &[],
        "server",
        "2.2.12",
        slowlog_get,
    )
    .tips(&["request_policy:all_nodes", "nondeterministic_output"]),
    C::new(
        "len",
        2,
        ADMIN | LOADING | STALE,
        0,
        &[],
        "server",
        "2.2.12",
        slowlog_len,
    )
    .tips(&[
        "request_policy:all_nodes",
        "response_policy:agg_sum",
        "nondeterministic_output",
    ]),
    C::new(
        "reset",
        2,
        ADMIN | LOADING | STALE,
        0,
        &[],
        "server",
        "2.2.12",
        slowlog_reset,
    )
    .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
];

pub const COMMANDS: &[C] = &[
    C::new("client", -2, 0, 0, &[], "connection", "2.4.0", container)
        .subcommands(CLIENT_SUBCOMMANDS),
    C::new("config", -2, 0, 0, &[], "server", "2.0.0", container).subcommands(CONFIG_SUBCOMMANDS),
    C::new("slowlog", -2, 0, 0, &[], "server", "2.2.12", container)
        .subcommands(SLOWLOG_SUBCOMMANDS),
    C::new(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        CONN,
        &[],
        "connection",
        "6.0.0",
        hello,
    ),
    C::new(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        CONN,
        &[],
        "connection",
        "1.0.0",
        auth,
    ),
    C::new(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        CONN,
        &[],
        "connection",
        "6.2.0",
        reset,
    ),
    C::new(
        "info",
        -1,
        LOADING | STALE,
        acl::DANGEROUS,
        &[],
        "server",
        "1.0.0",
        info,
    )
    .tips(&[
        "nondeterministic_output",
        "request_policy:all_shards",
        "response_policy:special",
    ]),
    C::new(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        &[],
        "server",
        "1.0.0",
        monitor,
    ),
    C::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        0,
        &[],
        "server",
        "1.0.0",
        shutdown,
    ),
];

/// A container called with a subcommand it does not know never reaches here (dispatch
/// answers first); with no subcommand the arity check answers. Kept for the table's shape.
fn container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn help_reply(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::status(l.to_string())).collect())
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

// ---- CLIENT ----

fn client_help(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn client_id(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.client.id as i64))
}

/// The caller's own CLIENT LIST line, from its live state.
fn own_view(ctx: &ExecCtx) -> ClientView {
    view_of(ctx.client, ctx.server, ctx.now_ms, ctx.current_command)
}

/// A client's CLIENT LIST fields from its live state (CLIENT INFO, the ACL log).
pub(crate) fn view_of(
    c: &ClientState,
    server: &crate::server::state::ServerState,
    now_ms: u64,
    last_cmd: &'static str,
) -> ClientView {
    let text = |b: &Option<Bytes>| {
        b.as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    };
    let mut flags = String::new();
    if c.monitor {
        flags.push('O');
    }
    if c.multi.is_some() {
        flags.push('x');
    }
    if c.readonly_cluster {
        flags.push('r');
    }
    if c.no_evict {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let registered = server
        .clients
        .lock()
        .get(&c.id)
        .map(|e| e.view.lock().clone())
        .unwrap_or_default();
    ClientView {
        qbuf: registered.qbuf,
        qbuf_alloc: registered.qbuf_alloc,
        id: c.id,
        addr: c.addr.clone(),
        laddr: c.laddr.clone(),
        fd: c.fd,
        name: text(&c.name),
        created_ms: c.created_ms,
        last_interaction_ms: now_ms,
        db: c.db,
        flags,
        multi: c.multi.as_ref().map_or(-1, |m| m.queued.len() as i64),
        last_cmd,
        user: c.user.name_text(),
        resp: if c.resp3 { 3 } else { 2 },
        lib_name: text(&c.lib_name),
        lib_ver: text(&c.lib_ver),
        ..Default::default()
    }
}

/// One CLIENT LIST / CLIENT INFO line, fields in Redis 7.0's order (plus 7.2's lib-name and
/// lib-ver, which clients that send CLIENT SETINFO expect).
pub(crate) fn client_line(v: &ClientView, now_ms: u64) -> String {
    let age = now_ms.saturating_sub(v.created_ms) / 1000;
    let idle = now_ms.saturating_sub(v.last_interaction_ms) / 1000;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem=0 rbs=1024 rbp=0 obl={} oll={} omem={} tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        v.id, v.addr, v.laddr, v.fd, v.name, age, idle, v.flags, v.db, v.sub, v.psub, v.ssub, v.multi,
        v.qbuf, v.qbuf_alloc.saturating_sub(v.qbuf), v.argv_mem, v.obl, v.oll, v.omem, v.tot_mem, v.last_cmd, v.user, v.resp,
        v.lib_name, v.lib_ver
    )
}

fn client_info(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let line = client_line(&own_view(ctx), ctx.now_ms) + "\n";
    Ok(Reply::Verbatim("txt", Bytes::from(line)))
}

/// The CLIENT LIST / KILL type names.
fn client_type(name: &[u8]) -> Option<&'static str> {
    [
        ("normal", "normal"),
        ("slave", "replica"),
        ("replica", "replica"),
        ("master", "master"),
        ("pubsub", "pubsub"),
    ]
    .iter()
    .find(|(n, _)| eq(name, n))
    .map(|(_, t)| *t)
}

fn view_type(v: &ClientView) -> &'static str {
    if v.flags.contains('S') {
        "replica"
    } else if v.flags.contains('P') {
        "pubsub"
    } else {
        "normal"
    }
}

fn all_views(ctx: &ExecCtx) -> Vec<ClientView> {
    let me = ctx.client.id;
    let mut views: Vec<ClientView> = ctx
        .server
        .client_views()
        .into_iter()
        .map(|(entry, mut v)| {
            // A blocked client shows the `b` flag (it cannot be in MONITOR mode).
            if entry.blocked.load(Relaxed) {
                v.flags = "b".into();
            }
            v
        })
        .filter(|v| v.id != me)
        .collect();
    views.push(own_view(ctx));
    views.sort_by_key(|v| v.id);
    views
}

fn client_list(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let views = all_views(ctx);
    let selected: Vec<&ClientView> = if args.len() == 4 && eq(&args[2], "type") {
        let t = client_type(&args[3]).ok_or_else(|| {
            ErrorReply::owned(format!(
                "ERR Unknown client type '{}'",
                String::from_utf8_lossy(&args[3])
            ))
        })?;
        views.iter().filter(|v| view_type(v) == t).collect()
    } else if args.len() > 3 && eq(&args[2], "id") {
        let mut ids = Vec::new();
        for a in &args[3..] {
            ids.push(crate::util::parse_int(a).ok_or(ErrorReply::fixed("ERR Invalid client ID"))?);
        }
        ids.iter()
            .filter_map(|id| views.iter().find(|v| v.id as i64 == *id))
            .collect()
    } else if args.len() != 2 {
        return Err(errors::SYNTAX);
    } else {
        views.iter().collect()
    };
    let mut out = String::new();
    for v in selected {
        out.push_str(&client_line(v, ctx.now_ms));
        out.push('\n');
    }
    Ok(Reply::Verbatim("txt", Bytes::from(out)))
}

#[derive(Default)]
struct KillFilter {
    addr: Option<String>,
    laddr: Option<String>,
    kind: Option<&'static str>,
    id: Option<u64>,
    user: Option<String>,
    skipme: bool,
}

fn parse_kill_filter(
    args: &[Bytes],
    user_exists: impl Fn(&[u8]) -> bool,
) -> Result<KillFilter, ErrorReply> {
    let mut f = KillFilter {
        skipme: true,
        ..Default::default()
    };
    if args.len() == 3 {
        f.addr = Some(String::from_utf8_lossy(&args[2]).into_owned());
        f.skipme = false;
        return Ok(f);
    }
    let mut i = 2;
    while i < args.len() {
        let (opt, val) = (&args[i], args.get(i + 1).ok_or(errors::SYNTAX)?);
        let text = String::from_utf8_lossy(val).into_owned();
        if eq(opt, "id") {
            match crate::util::parse_int(val) {
                Some(n) if n >= 1 => f.id = Some(n as u64),
                _ => return Err(ErrorReply::fixed("ERR client-id should be greater than 0")),
            }
        } else if eq(opt, "type") {
            f.kind =
                Some(client_type(val).ok_or_else(|| {
                    ErrorReply::owned(format!("ERR Unknown client type '{text}'"))
                })?);
        } else if eq(opt, "addr") {
            f.addr = Some(text);
        } else if eq(opt, "laddr") {
            f.laddr = Some(text);
        } else if eq(opt, "user") {
            if !user_exists(val) {
                return Err(ErrorReply::owned(format!("ERR No such user '{text}'")));
            }
            f.user = Some(text);
        } else if eq(opt, "skipme") {
            f.skipme = if eq(val, "yes") {
                true
            } else if eq(val, "no") {
                false
            } else {
                return Err(errors::SYNTAX);
            };
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    Ok(f)
}

fn client_kill(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let f = parse_kill_filter(args, |name| ctx.server.acl.user(name).is_some())?;
    let me = ctx.client.id;
    let mut killed = 0;
    for v in all_views(ctx) {
        let matches = f.addr.as_ref().is_none_or(|a| *a == v.addr)
            && f.laddr.as_ref().is_none_or(|a| *a == v.laddr)
            && f.kind.is_none_or(|t| t == view_type(&v))
            && f.id.is_none_or(|id| id == v.id)
            && f.user.as_ref().is_none_or(|u| *u == v.user);
        if !matches || (v.id == me && f.skipme) {
            continue;
        }
        if v.id == me {
            ctx.effects.close_after_reply = true;
        } else {
            ctx.effects.request().kill_clients.push(v.id);
        }
        killed += 1;
    }
    if args.len() == 3 {
        if killed == 0 {
            Err(errors::NO_SUCH_CLIENT)
        } else {
            Ok(Reply::OK)
        }
    } else {
        Ok(Reply::Int(killed))
    }
}

/// Redis's rule for names and lib info: printable ASCII, no spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

fn client_setname(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if !valid_name(name) {
        return Err(errors::CLIENT_NAME_SPACES);
    }
    ctx.client.name = if name.is_empty() {
        None
    } else {
        Some(Bytes::copy_from_slice(name))
    };
    Ok(Reply::OK)
}

fn client_getname(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(ctx.client.name.clone().map_or(Reply::Null, Reply::Bulk))
}

fn client_setinfo(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (attr, val) = (&args[2], &args[3]);
    let is_name = eq(attr, "lib-name");
    if !is_name && !eq(attr, "lib-ver") {
        return Err(ErrorReply::owned(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    }
    if !valid_name(val) {
        return Err(ErrorReply::owned(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            if is_name { "lib-name" } else { "lib-ver" }
        )));
    }
    let v = if val.is_empty() {
        None
    } else {
        Some(Bytes::copy_from_slice(val))
    };
    if is_name {
        ctx.client.lib_name = v;
    } else {
        ctx.client.lib_ver = v;
    }
    Ok(Reply::OK)
}

fn client_reply(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let arg = &args[2];
    if eq(arg, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        Ok(Reply::OK)
    } else if eq(arg, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
        Ok(Reply::NoReply)
    } else if eq(arg, "skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
        Ok(Reply::NoReply)
    } else {
        Err(errors::SYNTAX)
    }
}

fn on_off(arg: &[u8]) -> Result<bool, ErrorReply> {
    if eq(arg, "on") {
        Ok(true)
    } else if eq(arg, "off") {
        Ok(false)
    } else {
        Err(errors::SYNTAX)
    }
}

fn client_no_evict(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    ctx.client.no_evict = on_off(&args[2])?;
    Ok(Reply::OK)
}

fn client_no_touch(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    ctx.client.no_touch = on_off(&args[2])?;
    Ok(Reply::OK)
}

fn client_pause(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(errors::SYNTAX);
    }
    let writes_only = match args.get(3) {
        None => false,
        Some(m) if eq(m, "write") => true,
        Some(m) if eq(m, "all") => false,
        Some(_) => {
            return Err(ErrorReply::fixed(
                "ERR CLIENT PAUSE mode must be WRITE or ALL",
            ))
        }
    };
    let ms = crate::util::parse_int(&args[2]).ok_or(errors::TIMEOUT_NOT_INT)?;
    if ms < 0 {
        return Err(errors::TIMEOUT_NEGATIVE);
    }
    let until = ctx.now_ms.saturating_add(ms as u64);
    ctx.server.pause.set(ctx.now_ms, until, writes_only);
    Ok(Reply::OK)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: ends a blocked client's wait as if it timed out, or
/// with an UNBLOCKED error; 1 if that client was blocked.
fn client_unblock(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(ErrorReply::owned(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    if let Some(reason) = args.get(3) {
        if !eq(reason, "timeout") && !eq(reason, "error") {
            return Err(ErrorReply::fixed(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    }
    let id = crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?;
    let with_error = args.get(3).is_some_and(|r| eq(r, "error"));
    let clients = ctx.server.clients.lock();
    let Some(entry) = clients
        .get(&(id as u64))
        .filter(|e| e.blocked.load(Relaxed))
    else {
        return Ok(Reply::Int(0));
    };
    entry
        .unblock_request
        .store(if with_error { 2 } else { 1 }, Relaxed);
    entry.kill_signal.notify_one();
    Ok(Reply::Int(1))
}

fn client_unpause(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    ctx.server.pause.clear();
    Ok(Reply::OK)
}

// ---- HELLO, AUTH, RESET ----

/// Logs the client in as `user` when `pass` is one of its passwords (Redis's
/// `ACLAuthenticateUser`); a refusal is written to the ACL log.
fn check_password(ctx: &mut ExecCtx, user: &[u8], pass: &[u8]) -> Result<(), ErrorReply> {
    let found = ctx.server.acl.read().authenticate(user, pass);
    match found {
        Some(u) => {
            ctx.client.user = u;
            ctx.client.acl_generation = ctx.server.acl.generation();
            ctx.client.authenticated = true;
            Ok(())
        }
        None => {
            super::acl::log_auth_failure(ctx, user);
            Err(errors::WRONGPASS)
        }
    }
}

fn auth(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    if args.len() == 2 && ctx.server.acl.default_user().nopass() {
        return Err(errors::AUTH_NO_PASSWORD);
    }
    check_password(ctx, user, pass)?;
    Ok(Reply::OK)
}

fn hello(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut ver = if ctx.client.resp3 { 3 } else { 2 };
    if args.len() >= 2 {
        let v = crate::util::parse_int(&args[1]).ok_or(errors::PROTOCOL_VERSION_NOT_INT)?;
        if !(2..=3).contains(&v) {
            return Err(errors::NOPROTO);
        }
        ver = v;
    }
    let mut name: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if eq(&args[i], "auth") && more >= 2 {
            check_password(ctx, &args[i + 1], &args[i + 2])?;
            i += 3;
        } else if eq(&args[i], "setname") && more >= 1 {
            if !valid_name(&args[i + 1]) {
                return Err(errors::CLIENT_NAME_SPACES);
            }
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            return Err(ErrorReply::owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(ErrorReply::fixed(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(n) = name {
        ctx.client.name = if n.is_empty() { None } else { Some(n.clone()) };
    }
    ctx.client.resp3 = ver == 3;
    let mode = if ctx.server.config().cluster_enabled {
        "cluster"
    } else {
        "standalone"
    };
    Ok(Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (
            Reply::bulk_str("version"),
            Reply::bulk_str(crate::server::REDIS_VERSION),
        ),
        (Reply::bulk_str("proto"), Reply::Int(ver)),
        (Reply::bulk_str("id"), Reply::Int(ctx.client.id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str(mode)),
        (Reply::bulk_str("role"), Reply::bulk_str("master")),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ]))
}

fn reset(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let c = &mut *ctx.client;
    c.db = 0;
    c.resp3 = false;
    c.name = None;
    c.reply_mode = ReplyMode::On;
    c.no_evict = false;
    c.no_touch = false;
    c.multi = None;
    c.monitor = false;
    c.asking = false;
    c.readonly_cluster = false;
    c.user = ctx.server.acl.default_user();
    c.acl_generation = ctx.server.acl.generation();
    c.authenticated = !ctx.server.acl.auth_required();
    c.tracking = None;
    ctx.server.tracking.disable(ctx.client.id);
    super::tx::unwatch_all(ctx.client, ctx.server);
    ctx.server.pubsub.forget_client(ctx.client);
    Ok(Reply::simple("RESET"))
}

// ---- CONFIG ----

fn config_help(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(&[
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "RESETSTAT",
        "    Reset statistics reported by the INFO command.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn config_get(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| a.as_ref()).collect();
    let pairs = ctx.server.config().get(&patterns);
    Ok(Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk(k.into_bytes()), Reply::bulk(v.into_bytes())))
            .collect(),
    ))
}

fn config_set(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(errors::wrong_arity("config|set"));
    }
    let pairs: Vec<(&[u8], &[u8])> = args[2..]
        .chunks(2)
        .map(|p| (p[0].as_ref(), p[1].as_ref()))
        .collect();
    let mut next = (**ctx.server.config()).clone();
    let context = crate::config::SetContext {
        loading: ctx
            .server
            .loading
            .load(std::sync::atomic::Ordering::Relaxed),
        ..Default::default()
    };
    let changed = next.set_with(&pairs, context).map_err(ErrorReply::owned)?;
    if changed.contains(&"requirepass") {
        let pass = next.requirepass.clone();
        ctx.server
            .acl
            .modify(|users| users.set_default_password(pass.as_deref()));
    }
    ctx.server.config.store(std::sync::Arc::new(next));
    ctx.effects.request().config_changed = changed;
    Ok(Reply::OK)
}

fn config_resetstat(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let s = ctx.server;
    let st = &s.stats;
    for a in [
        &st.total_connections_received,
        &st.total_commands_processed,
        &st.rejected_connections,
        &st.expired_keys,
        &st.expired_stale_perc,
        &st.expired_time_cap_reached_count,
        &st.expire_cycle_cpu_milliseconds,
        &st.evicted_keys,
        &st.keyspace_hits,
        &st.keyspace_misses,
        &st.net_input_bytes,
        &st.net_output_bytes,
        &st.total_error_replies,
        &st.unexpected_error_replies,
        &st.client_query_buffer_limit_disconnections,
        &st.client_output_buffer_limit_disconnections,
        &st.total_reads_processed,
        &st.total_writes_processed,
        &st.dump_payload_sanitizations,
    ] {
        a.store(0, Relaxed);
    }
    for cs in &s.command_stats {
        cs.calls.store(0, Relaxed);
        cs.usec.store(0, Relaxed);
        cs.rejected_calls.store(0, Relaxed);
        cs.failed_calls.store(0, Relaxed);
    }
    s.error_stats.lock().clear();
    for h in s.latency.iter().filter_map(|h| h.get()) {
        h.reset();
    }
    s.stat_peak_memory.store(0, Relaxed);
    Ok(Reply::OK)
}

fn config_rewrite(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let Some(path) = ctx.server.config_file.clone() else {
        return Err(ErrorReply::fixed(
            "ERR The server is running without a config file",
        ));
    };
    ctx.effects.request().rewrite_config = Some(path);
    Ok(Reply::OK)
}

// ---- INFO, SLOWLOG, SHUTDOWN ----

fn info(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let sections: Vec<&[u8]> = args[1..].iter().map(|a| a.as_ref()).collect();
    let text = crate::server::info::render(ctx.server, &sections, (0, 0));
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

fn slowlog_help(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(help_reply(&[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn slowlog_get(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let count = match args.get(2) {
        None => 10,
        Some(a) => match crate::util::parse_int(a) {
            Some(n) if n >= -1 => n,
            _ => {
                return Err(ErrorReply::fixed(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        },
    };
    let log = ctx.server.slowlog.lock();
    let take = if count < 0 {
        log.entries.len()
    } else {
        count as usize
    };
    let entries = log
        .entries
        .iter()
        .take(take)
        .map(|e| {
            Reply::Array(vec![
                Reply::Int(e.id as i64),
                Reply::Int(e.time_secs),
                Reply::Int(e.duration_us as i64),
                Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                Reply::bulk_str(&e.peer),
                Reply::bulk_str(&e.name),
            ])
        })
        .collect();
    Ok(Reply::Array(entries))
}

fn slowlog_len(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.server.slowlog.lock().entries.len() as i64))
}

fn slowlog_reset(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    ctx.server.slowlog.lock().entries.clear();
    Ok(Reply::OK)
}

fn monitor(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    if !ctx.client.monitor {
        ctx.client.monitor = true;
        ctx.effects.request().start_monitor = true;
    }
    Ok(Reply::OK)
}

fn shutdown(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut req = ShutdownRequest::default();
    for a in &args[1..] {
        if eq(a, "nosave") {
            req.save = Some(false);
        } else if eq(a, "save") {
            req.save = Some(true);
        } else if eq(a, "now") {
            req.now = true;
        } else if eq(a, "force") {
            req.force = true;
        } else if eq(a, "abort") && args.len() == 2 {
            return Err(ErrorReply::fixed("ERR No shutdown in progress."));
        } else {
            return Err(errors::SYNTAX);
        }
    }
    // The server saves (when asked or when save points are set) before the reply is final:
    // a failed save answers SHUTDOWN_ERRORS and the server goes on.
    ctx.effects.request().shutdown = Some(req);
    Ok(Reply::NoReply)
}

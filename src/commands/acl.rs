//! The ACL command family (Redis 7.0's `aclCommand`): SETUSER, GETUSER, DELUSER, USERS, LIST,
//! WHOAMI, CAT, GENPASS, LOG, DRYRUN, HELP, and LOAD / SAVE refusing as Redis does without an
//! ACL file. Also the NOPERM texts the dispatch gate sends and the ACL log writers the gate,
//! AUTH and scripts share. The users themselves live in `crate::acl`.

use super::context::{ClientState, ExecCtx};
use super::errors;
use super::spec::{flag::*, CmdResult, CommandSpec as C};
use super::table::{Command, Lookup};
use crate::acl::{categories, Denied, LogEntry, LogReason, Selector, User};
use crate::resp::{ErrorReply, Reply};
use crate::server::state::ServerState;
use bytes::Bytes;

const ADMIN_SUB: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const PLAIN_SUB: u32 = NOSCRIPT | LOADING | STALE;

const SUBCOMMANDS: &[C] = &[
    C::new("cat", -2, PLAIN_SUB, 0, &[], "server", "6.0.0", cat),
    C::new("deluser", -3, ADMIN_SUB, 0, &[], "server", "6.0.0", deluser),
    C::new("dryrun", -4, ADMIN_SUB, 0, &[], "server", "7.0.0", dryrun),
    C::new("genpass", -2, PLAIN_SUB, 0, &[], "server", "6.0.0", genpass),
    C::new("getuser", 3, ADMIN_SUB, 0, &[], "server", "6.0.0", getuser),
    C::new("help", 2, LOADING | STALE, 0, &[], "server", "6.0.0", help),
    C::new("list", 2, ADMIN_SUB, 0, &[], "server", "6.0.0", list),
    C::new("load", 2, ADMIN_SUB, 0, &[], "server", "6.0.0", no_acl_file),
    C::new("log", -2, ADMIN_SUB, 0, &[], "server", "6.0.0", log),
    C::new("save", 2, ADMIN_SUB, 0, &[], "server", "6.0.0", no_acl_file),
    C::new("setuser", -3, ADMIN_SUB, 0, &[], "server", "6.0.0", setuser),
    C::new("users", 2, ADMIN_SUB, 0, &[], "server", "6.0.0", users),
    C::new("whoami", 2, PLAIN_SUB, 0, &[], "server", "6.0.0", whoami),
];

pub const COMMANDS: &[C] =
    &[C::new("acl", -2, 0, 0, &[], "server", "6.0.0", container).subcommands(SUBCOMMANDS)];

fn container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

// ---- the NOPERM gate's texts and the ACL log ----

/// The reply the dispatch gate sends for a refused command.
pub fn noperm(cmd: &Command, denied: Denied) -> ErrorReply {
    match denied {
        Denied::Command => ErrorReply::owned(format!(
            "NOPERM this user has no permissions to run the '{}' command",
            cmd.fullname
        )),
        Denied::Key(_) => ErrorReply::fixed(
            "NOPERM this user has no permissions to access one of the keys used as arguments",
        ),
        Denied::Channel(_) => ErrorReply::fixed(
            "NOPERM this user has no permissions to access one of the channels used as arguments",
        ),
    }
}

/// Redis's `getAclErrorMessage`, used after "The user executing the script ".
pub fn denial_message(denied: Denied) -> &'static str {
    match denied {
        Denied::Command => "can't run this command or subcommand",
        Denied::Key(_) => {
            "can't access at least one of the keys mentioned in the command arguments"
        }
        Denied::Channel(_) => "can't publish to the channel mentioned in the command",
    }
}

/// EXEC checks each queued command again: the rules may have changed since it was queued.
pub fn recheck_queued(
    ctx: &mut ExecCtx,
    cmd: &'static Command,
    args: &[Bytes],
) -> Result<(), ErrorReply> {
    if ctx.client.user.all_allowed() || ctx.client.is_master {
        return Ok(());
    }
    let Err(denied) = ctx.client.user.check(cmd, args) else {
        return Ok(());
    };
    log_denial(
        ctx.server, ctx.client, ctx.now_ms, cmd, args, denied, "multi",
    );
    let reason = match denied {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    Err(ErrorReply::owned(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )))
}

/// Records a refused command in the ACL log: the command name, or the key or channel.
pub fn log_denial(
    server: &ServerState,
    client: &ClientState,
    now_ms: u64,
    cmd: &'static Command,
    args: &[Bytes],
    denied: Denied,
    context: &'static str,
) {
    let object = match denied {
        Denied::Command => cmd.fullname.as_bytes().to_vec(),
        Denied::Key(p) | Denied::Channel(p) => args.get(p).map_or(Vec::new(), |a| a.to_vec()),
    };
    let entry = LogEntry {
        count: 1,
        reason: denied.into(),
        context,
        object,
        username: client.user.name.clone(),
        ctime_ms: now_ms,
        client_info: client_info(server, client, now_ms, &cmd.fullname),
    };
    add_entry(server, entry);
}

/// Records a failed AUTH / HELLO AUTH attempt for `user`.
pub fn log_auth_failure(ctx: &mut ExecCtx, user: &[u8]) {
    let context = if ctx.client.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    let entry = LogEntry {
        count: 1,
        reason: LogReason::Auth,
        context,
        object: ctx.current_command.as_bytes().to_vec(),
        username: user.to_vec(),
        ctime_ms: ctx.now_ms,
        client_info: client_info(ctx.server, ctx.client, ctx.now_ms, ctx.current_command),
    };
    add_entry(ctx.server, entry);
}

fn client_info(server: &ServerState, client: &ClientState, now_ms: u64, cmd: &str) -> String {
    let name = server
        .commands
        .find_fullname(cmd.as_bytes())
        .map_or("NULL", |c| c.fullname.as_str());
    let view = super::introspection::view_of(client, server, now_ms, name);
    super::introspection::client_line(&view, now_ms)
}

fn add_entry(server: &ServerState, entry: LogEntry) {
    let max = server.config().acllog_max_len as usize;
    server.acl.log.lock().add(entry, max);
}

// ---- handlers ----

fn setuser(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let rules: Vec<&[u8]> = args[3..].iter().map(|a| a.as_ref()).collect();
    let all_channels =
        ctx.server.config().acl_pubsub_default == crate::config::AclPubsubDefault::AllChannels;
    let old = ctx.server.acl.user(&args[2]);
    ctx.server
        .acl
        .modify(|users| {
            users.set_pubsub_default(all_channels);
            users.set_user(&args[2], &rules)
        })
        .map_err(|e| ErrorReply::owned(format!("ERR {}", e.replace(['\r', '\n'], " "))))?;
    let new = ctx.server.acl.user(&args[2]);
    if let (Some(old), Some(new)) = (old, new) {
        if let Some(kept) = crate::acl::revoked_channels(&old, &new) {
            close_refused_subscribers(ctx, &new.name_text(), &kept);
        }
    }
    Ok(Reply::OK)
}

/// Closes the user's Pub/Sub clients subscribed to a channel it may no longer use.
fn close_refused_subscribers(ctx: &mut ExecCtx, name: &str, kept: &[Vec<u8>]) {
    let me = ctx.client.id;
    let mut ids: Vec<u64> = ctx
        .server
        .clients
        .lock()
        .iter()
        .filter(|(id, e)| **id != me && e.view.lock().user == name)
        .map(|(id, _)| *id)
        .collect();
    if ctx.client.user.name_text() == name {
        ids.push(me);
    }
    let refused = ctx.server.pubsub.subscribers_refused(&ids, |ch, pattern| {
        crate::acl::channel_in(kept, ch, pattern)
    });
    for id in refused {
        if id == me {
            ctx.effects.close_after_reply = true;
        } else {
            ctx.effects.request().kill_clients.push(id);
        }
    }
}

fn deluser(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args[2..].iter().any(|a| a.as_ref() == b"default") {
        return Err(ErrorReply::fixed(
            "ERR The 'default' user cannot be removed",
        ));
    }
    let mut deleted = Vec::new();
    ctx.server.acl.modify(|users| {
        for name in &args[2..] {
            if users.delete(name) {
                deleted.push(String::from_utf8_lossy(name).into_owned());
            }
        }
    });
    disconnect_users(ctx, &deleted);
    Ok(Reply::Int(deleted.len() as i64))
}

/// Closes the connections authenticated as deleted users, as Redis frees them.
fn disconnect_users(ctx: &mut ExecCtx, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let me = ctx.client.id;
    if names.contains(&ctx.client.user.name_text()) {
        ctx.effects.close_after_reply = true;
    }
    let clients = ctx.server.clients.lock();
    for (id, entry) in clients.iter() {
        if *id != me && names.contains(&entry.view.lock().user) {
            ctx.effects.request().kill_clients.push(*id);
        }
    }
}

fn selector_fields(s: &Selector) -> Vec<(Reply, Reply)> {
    s.fields()
        .into_iter()
        .map(|(k, v)| (Reply::bulk_str(k), Reply::bulk(v.into_bytes())))
        .collect()
}

fn getuser(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(u) = ctx.server.acl.user(&args[2]) else {
        return Ok(Reply::Null);
    };
    let mut fields = vec![
        (
            Reply::bulk_str("flags"),
            Reply::Set(u.flags().into_iter().map(Reply::bulk_str).collect()),
        ),
        (
            Reply::bulk_str("passwords"),
            Reply::Array(u.passwords().iter().map(|p| Reply::bulk_str(p)).collect()),
        ),
    ];
    fields.extend(selector_fields(u.root()));
    let selectors = u
        .extra_selectors()
        .iter()
        .map(|s| Reply::Map(selector_fields(s)))
        .collect();
    fields.push((Reply::bulk_str("selectors"), Reply::Array(selectors)));
    Ok(Reply::Map(fields))
}

fn list(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let users = ctx.server.acl.read();
    Ok(Reply::Array(
        users
            .iter()
            .map(|u| Reply::bulk(format!("user {} {}", u.name_text(), u.describe()).into_bytes()))
            .collect(),
    ))
}

fn users(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let users = ctx.server.acl.read();
    Ok(Reply::Array(
        users.iter().map(|u| Reply::bulk_slice(&u.name)).collect(),
    ))
}

fn whoami(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::bulk_slice(&ctx.client.user.name))
}

fn cat(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => Ok(Reply::Array(
            categories().map(|(_, n)| Reply::bulk_str(n)).collect(),
        )),
        3 => {
            let Some((bit, _)) =
                categories().find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(&args[2]))
            else {
                return Err(ErrorReply::owned(format!(
                    "ERR Unknown category '{}'",
                    errors::clip(&args[2])
                )));
            };
            let mut names = Vec::new();
            collect_category(ctx.server.commands.iter(), bit, &mut names);
            Ok(Reply::Array(names))
        }
        _ => Err(errors::subcommand_syntax_error(args)),
    }
}

/// Commands and subcommands in a category, each container followed by its subcommands.
fn collect_category<'t>(cmds: impl Iterator<Item = &'t Command>, bit: u32, out: &mut Vec<Reply>) {
    let mut sorted: Vec<&Command> = cmds.collect();
    sorted.sort_by(|a, b| a.fullname.cmp(&b.fullname));
    for cmd in sorted {
        if cmd.spec.acl_categories() & bit != 0 {
            out.push(Reply::bulk_str(&cmd.fullname));
        }
        collect_category(cmd.subcommands.values(), bit, out);
    }
}

const GENPASS_MAX_BITS: i64 = 4096;

fn genpass(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let bits = match args.len() {
        2 => 256,
        3 => crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?,
        _ => return Err(errors::subcommand_syntax_error(args)),
    };
    if bits <= 0 || bits > GENPASS_MAX_BITS {
        return Err(ErrorReply::owned(format!(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_MAX_BITS}"
        )));
    }
    let chars = (bits as usize).div_ceil(4);
    Ok(Reply::bulk(ctx.server.acl.random_hex(chars).into_bytes()))
}

fn log(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut count = 10usize;
    match args.len() {
        2 => {}
        3 if args[2].eq_ignore_ascii_case(b"reset") => {
            ctx.server.acl.log.lock().reset();
            return Ok(Reply::OK);
        }
        3 => {
            let n = crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?;
            count = n.max(0) as usize;
        }
        _ => return Err(errors::subcommand_syntax_error(args)),
    }
    let log = ctx.server.acl.log.lock();
    let now = ctx.now_ms;
    Ok(Reply::Array(
        log.entries()
            .iter()
            .take(count)
            .map(|e| log_entry_reply(e, now))
            .collect(),
    ))
}

fn log_entry_reply(e: &LogEntry, now_ms: u64) -> Reply {
    let age = now_ms.saturating_sub(e.ctime_ms) as f64 / 1000.0;
    Reply::Map(vec![
        (Reply::bulk_str("count"), Reply::Int(e.count as i64)),
        (Reply::bulk_str("reason"), Reply::bulk_str(e.reason.name())),
        (Reply::bulk_str("context"), Reply::bulk_str(e.context)),
        (Reply::bulk_str("object"), Reply::bulk_slice(&e.object)),
        (Reply::bulk_str("username"), Reply::bulk_slice(&e.username)),
        (Reply::bulk_str("age-seconds"), Reply::Double(age)),
        (
            Reply::bulk_str("client-info"),
            Reply::bulk_str(&e.client_info),
        ),
    ])
}

fn dryrun(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(user) = ctx.server.acl.user(&args[2]) else {
        return Err(ErrorReply::owned(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(&args[2])
        )));
    };
    let argv = &args[3..];
    let cmd = match ctx.server.commands.lookup(argv) {
        Lookup::Found(c) => c,
        _ => {
            return Err(ErrorReply::owned(format!(
                "ERR Command '{}' not found",
                String::from_utf8_lossy(&argv[0])
            )))
        }
    };
    if !cmd.spec.arity_ok(argv.len()) {
        return Err(errors::wrong_arity(&cmd.fullname));
    }
    Ok(match dryrun_verdict(&user, cmd, argv) {
        None => Reply::OK,
        Some(text) => Reply::bulk(text.into_bytes()),
    })
}

/// ACL DRYRUN's answer: `None` when allowed, else the sentence Redis replies with.
fn dryrun_verdict(user: &User, cmd: &Command, argv: &[Bytes]) -> Option<String> {
    let arg = |p: usize| String::from_utf8_lossy(&argv[p]).into_owned();
    match user.check(cmd, argv).err()? {
        Denied::Command => Some(format!(
            "This user has no permissions to run the '{}' command",
            cmd.fullname
        )),
        Denied::Key(p) => Some(format!(
            "This user has no permissions to access the '{}' key",
            arg(p)
        )),
        Denied::Channel(p) => Some(format!(
            "This user has no permissions to access the '{}' channel",
            arg(p)
        )),
    }
}

fn no_acl_file(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Err(ErrorReply::fixed(
        "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
    ))
}

fn help(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let lines = [
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Prints this help.",
    ];
    Ok(Reply::Array(
        lines.iter().map(|l| Reply::status(l.to_string())).collect(),
    ))
}

#[cfg(test)]
mod tests;

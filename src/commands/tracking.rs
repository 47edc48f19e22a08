//! Client-side caching support (CLIENT TRACKING), as Redis 7.0's `tracking.c`: in the default
//! mode the server remembers which clients read which keys and sends each an `invalidate`
//! message the first time such a key changes; in BCAST mode a client hears about every change
//! to keys under its prefixes. Messages are RESP3 pushes on the client's own connection, or,
//! with REDIRECT, `__redis__:invalidate` messages to another client. The CLIENT subcommands
//! TRACKING, CACHING, GETREDIR and TRACKINGINFO live here too.

use super::context::ExecCtx;
use super::errors;
use super::spec::CmdResult;
use crate::resp::{ErrorReply, Reply};
use crate::server::state::ServerState;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// A client's tracking options (CLIENT TRACKING ON ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTracking {
    /// Client id the messages go to instead (0: this client).
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
    /// CLIENT CACHING YES (OPTIN) or NO (OPTOUT) for the next command.
    pub caching: bool,
}

/// The server's tracking tables.
#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on (read without the locks on every command).
    clients: AtomicUsize,
    /// Who may hold each key (default mode): key name → client ids, across databases as in
    /// Redis.
    keys: Mutex<HashMap<Box<[u8]>, HashSet<u64>>>,
    /// BCAST subscribers: client id → (its options' redirect and noloop, its prefixes).
    bcast: Mutex<HashMap<u64, ClientTracking>>,
    /// Where each tracking client's messages go, and whether it skips its own writes.
    routes: Mutex<HashMap<u64, (u64, bool)>>,
}

impl Tracking {
    pub fn active(&self) -> bool {
        self.clients.load(Relaxed) > 0
    }

    fn enable(&self, id: u64, t: &ClientTracking, was_on: bool) {
        if !was_on {
            self.clients.fetch_add(1, Relaxed);
        }
        self.routes.lock().insert(id, (t.redirect, t.noloop));
        if t.bcast {
            self.bcast.lock().insert(id, t.clone());
        }
    }

    /// Tracking off, or the client is gone.
    pub fn disable(&self, id: u64) {
        if self.routes.lock().remove(&id).is_some() {
            self.clients.fetch_sub(1, Relaxed);
        }
        self.bcast.lock().remove(&id);
    }

    /// A read by a tracking client in default mode: it may now cache these keys.
    pub fn remember(&self, id: u64, keys: impl Iterator<Item = Bytes>) {
        let mut table = self.keys.lock();
        for k in keys {
            table.entry(k[..].into()).or_default().insert(id);
        }
    }
}

/// A key changed (Redis's `trackingInvalidateKey`): every client that may cache it hears about
/// it once, and BCAST clients whose prefix matches. `by` is the writing client (for NOLOOP).
pub fn invalidate(server: &ServerState, key: &[u8], by: Option<u64>) {
    let t = &server.tracking;
    if !t.active() {
        return;
    }
    let mut targets: Vec<u64> = t.keys.lock().remove(key).into_iter().flatten().collect();
    targets.extend(
        t.bcast
            .lock()
            .iter()
            .filter(|(_, c)| c.prefixes.is_empty() || c.prefixes.iter().any(|p| key.starts_with(p)))
            .map(|(id, _)| *id),
    );
    for id in targets {
        send(server, id, Some(key), by);
    }
}

/// A database was flushed: every tracking client drops everything (a null key).
pub fn invalidate_all(server: &ServerState) {
    let t = &server.tracking;
    if !t.active() {
        return;
    }
    t.keys.lock().clear();
    let ids: Vec<u64> = t.routes.lock().keys().copied().collect();
    for id in ids {
        send(server, id, None, None);
    }
}

/// Sends one invalidation to client `id` (or where it redirects).
fn send(server: &ServerState, id: u64, key: Option<&[u8]>, by: Option<u64>) {
    let Some((redirect, noloop)) = server.tracking.routes.lock().get(&id).copied() else {
        return;
    };
    if noloop && by == Some(id) {
        return;
    }
    let target = if redirect != 0 { redirect } else { id };
    let Some(entry) = server.clients.lock().get(&target).cloned() else {
        return;
    };
    let keys = match key {
        Some(k) => Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(k))]),
        None => Reply::Null,
    };
    entry.mailbox.deliver_invalidation(keys, redirect != 0);
}

/// After a read-only command of a tracking client: remember its keys, unless OPTIN/OPTOUT
/// says not to for this command.
pub fn after_read(ctx: &mut ExecCtx, keys: impl Iterator<Item = Bytes>) {
    let id = ctx.client.id;
    let Some(t) = ctx.client.tracking.as_ref() else {
        return;
    };
    let wanted = !t.bcast && (!t.optin || t.caching) && (!t.optout || !t.caching);
    if wanted {
        ctx.server.tracking.remember(id, keys);
    }
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP].
pub fn client_tracking(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut t = ClientTracking::default();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let w = &args[j];
        if w.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if t.redirect != 0 {
                return Err(ErrorReply::fixed(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = ctx.int_arg(&args[j])?;
            if !ctx.server.clients.lock().contains_key(&(id as u64)) {
                return Err(ErrorReply::fixed(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            t.redirect = id as u64;
        } else if w.eq_ignore_ascii_case(b"bcast") {
            t.bcast = true;
        } else if w.eq_ignore_ascii_case(b"optin") {
            t.optin = true;
        } else if w.eq_ignore_ascii_case(b"optout") {
            t.optout = true;
        } else if w.eq_ignore_ascii_case(b"noloop") {
            t.noloop = true;
        } else if w.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            t.prefixes.push(args[j].clone());
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    if args[2].eq_ignore_ascii_case(b"on") {
        check_compatible(ctx.client.tracking.as_ref(), &t)?;
        let was_on = ctx.client.tracking.is_some();
        ctx.server.tracking.enable(ctx.client.id, &t, was_on);
        ctx.client.tracking = Some(t);
    } else if args[2].eq_ignore_ascii_case(b"off") {
        ctx.server.tracking.disable(ctx.client.id);
        ctx.client.tracking = None;
    } else {
        return Err(errors::SYNTAX);
    }
    Ok(Reply::OK)
}

fn check_compatible(old: Option<&ClientTracking>, t: &ClientTracking) -> Result<(), ErrorReply> {
    if !t.bcast && !t.prefixes.is_empty() {
        return Err(ErrorReply::fixed(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if old.is_some_and(|o| o.bcast != t.bcast) {
        return Err(ErrorReply::fixed("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if t.bcast && (t.optin || t.optout) {
        return Err(ErrorReply::fixed(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if t.optin && t.optout {
        return Err(ErrorReply::fixed(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if old.is_some_and(|o| (t.optin && o.optout) || (t.optout && o.optin)) {
        return Err(ErrorReply::fixed("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's keys are tracked (OPTIN / OPTOUT).
pub fn client_caching(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let Some(t) = ctx.client.tracking.as_mut() else {
        return Err(ErrorReply::fixed("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    if args[2].eq_ignore_ascii_case(b"yes") {
        if !t.optin {
            return Err(ErrorReply::fixed(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if args[2].eq_ignore_ascii_case(b"no") {
        if !t.optout {
            return Err(ErrorReply::fixed(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(errors::SYNTAX);
    }
    t.caching = true;
    ctx.client.keep_caching_flag = true;
    Ok(Reply::OK)
}

pub fn client_getredir(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(
        ctx.client
            .tracking
            .as_ref()
            .map_or(-1, |t| t.redirect as i64),
    ))
}

pub fn client_trackinginfo(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let t = ctx.client.tracking.as_ref();
    let mut flags = vec![if t.is_some() { "on" } else { "off" }];
    if let Some(t) = t {
        let pairs = [
            (t.bcast, "bcast"),
            (t.optin, "optin"),
            (t.optin && t.caching, "caching-yes"),
            (t.optout, "optout"),
            (t.optout && t.caching, "caching-no"),
            (t.noloop, "noloop"),
        ];
        flags.extend(pairs.iter().filter(|(on, _)| *on).map(|(_, f)| *f));
    }
    let prefixes = t.map_or(vec![], |t| {
        t.prefixes.iter().map(|p| Reply::Bulk(p.clone())).collect()
    });
    Ok(Reply::Map(vec![
        (
            Reply::bulk_str("flags"),
            Reply::Set(flags.into_iter().map(Reply::bulk_str).collect()),
        ),
        (
            Reply::bulk_str("redirect"),
            Reply::Int(t.map_or(-1, |t| t.redirect as i64)),
        ),
        (Reply::bulk_str("prefixes"), Reply::Array(prefixes)),
    ]))
}

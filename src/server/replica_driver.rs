//! The replica's end of a replication link. One task lives for the whole process: while
//! `REPLICAOF host port` (or the `replicaof` directive) names a primary, it connects, walks
//! the handshake (`replication::replica::Handshake`), loads the snapshot of a full
//! resynchronisation or continues a partial one, then applies the primary's stream through
//! the ordinary dispatcher as the "master client", acknowledging its offset every second.
//! The primary's bytes also go, unchanged, into our own backlog, so replicas of this replica
//! see the same stream with the same replication id and offsets. Any failure drops the link
//! and a new attempt starts a second later; a REPLICAOF that changes the target abandons the
//! current attempt at once.

use super::connection::unix_us;
use super::state::ServerState;
use crate::commands::context::ClientState;
use crate::log_at;
use crate::persistence::rdb::decode;
use crate::replication::replica::{self, Action, Handshake, MasterLink, Payload};
use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's replication role.
#[derive(Debug)]
pub struct Role {
    /// Set while we replicate from a primary.
    pub is_replica: AtomicBool,
    pub master: Mutex<Option<MasterLink>>,
    /// Bumped by every REPLICAOF: a link task whose generation is gone ends.
    pub generation: tokio::sync::watch::Sender<u64>,
    /// `master_replid2` and `second_repl_offset` (-1 when none).
    pub replid2: Mutex<(String, i64)>,
    /// Whether the dataset came from a primary we can ask to continue (cached replid).
    pub have_dataset: AtomicBool,
    pub next_generation: AtomicU64,
    /// Held while one command of the primary's stream runs and enters our backlog, so a
    /// snapshot cut for a replica of ours never sees the effect without the offset.
    pub apply_lock: Mutex<()>,
    /// The database the primary's stream last selected: a partial resynchronisation
    /// continues the stream, so it continues in that database.
    pub stream_db: std::sync::atomic::AtomicUsize,
    /// Keys written by our own clients on a writable replica: the only keys a replica
    /// expires by itself.
    pub local_writes: Mutex<std::collections::BTreeSet<(usize, Vec<u8>)>>,
}

impl Default for Role {
    fn default() -> Role {
        Role {
            is_replica: AtomicBool::new(false),
            master: Mutex::new(None),
            generation: tokio::sync::watch::Sender::new(0),
            replid2: Mutex::new(("0".repeat(40), -1)),
            have_dataset: AtomicBool::new(false),
            next_generation: AtomicU64::new(1),
            apply_lock: Mutex::new(()),
            stream_db: Default::default(),
            local_writes: Default::default(),
        }
    }
}

impl Role {
    pub fn is_replica(&self) -> bool {
        self.is_replica.load(Relaxed)
    }

    /// Whether the link to our primary is up (false when we are not a replica).
    pub fn link_up(&self) -> bool {
        self.master.lock().as_ref().is_some_and(|m| m.link_up())
    }

    /// Updates the link's view, if we still replicate.
    pub fn update(&self, f: impl FnOnce(&mut MasterLink)) {
        if let Some(m) = self.master.lock().as_mut() {
            f(m);
        }
    }
}

/// Largest snapshot accepted from a primary.
const MAX_PAYLOAD: u64 = 64 << 30;

/// Points the server at a primary (`Some`) or makes it a primary again (`None`), as
/// REPLICAOF does. Returns false when already replicating from exactly that address.
pub fn set_master(state: &ServerState, target: Option<(String, u16)>) -> bool {
    let role = &state.role;
    let mut master = role.master.lock();
    match (&target, master.as_ref()) {
        (Some((h, p)), Some(m)) if *h == m.host && *p == m.port => return false,
        (None, None) => return true,
        _ => {}
    }
    let now_ms = unix_us() / 1000;
    match &target {
        Some((host, port)) => {
            let processed = state.backlog.lock().end_offset();
            *master = Some(MasterLink {
                host: host.clone(),
                port: *port,
                state: "connect",
                down_since_ms: now_ms,
                read_offset: processed,
                processed_offset: processed,
                ..Default::default()
            });
            role.is_replica.store(true, Relaxed);
            super::logging::set_role(b'S');
            log_at!(Notice, "Connecting to MASTER {}:{}", host, port);
        }
        None => {
            *master = None;
            role.is_replica.store(false, Relaxed);
            super::logging::set_role(b'M');
            // A new history starts here: the old id stays valid up to our offset, so our
            // own replicas can still continue from us.
            let mut backlog = state.backlog.lock();
            let end = backlog.end_offset();
            backlog.force_select();
            drop(backlog);
            let mut id = state.replid.lock();
            *role.replid2.lock() = (id.clone(), end as i64 + 1);
            *id = super::random_hex_40();
            log_at!(
                Notice,
                "MASTER MODE enabled (user request from 'id=0 addr= laddr= fd=-1')"
            );
        }
    }
    drop(master);
    let mut config = (**state.config()).clone();
    config.replicaof = target.map(|(host, port)| crate::config::values::ReplicaOf { host, port });
    state.config.store(Arc::new(config));
    role.generation
        .send_replace(role.next_generation.fetch_add(1, Relaxed));
    true
}

/// The link task: follows REPLICAOF changes for the life of the server.
pub async fn run(state: Arc<ServerState>) {
    let mut generation = state.role.generation.subscribe();
    loop {
        generation.borrow_and_update();
        let target = state
            .role
            .master
            .lock()
            .as_ref()
            .map(|m| (m.host.clone(), m.port));
        match target {
            Some((host, port)) => {
                tokio::select! {
                    _ = keep_linked(&state, &host, port) => {}
                    changed = generation.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
            None => {
                if generation.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Connects again and again until the task is abandoned.
async fn keep_linked(state: &ServerState, host: &str, port: u16) {
    loop {
        let why = link_once(state, host, port).await;
        let now_ms = unix_us() / 1000;
        state.role.update(|m| {
            if m.link_up() {
                m.down_since_ms = now_ms;
            }
            m.state = "connect";
        });
        log_at!(Warning, "{}", why);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One connection: handshake, synchronisation, then the stream until it breaks. Returns why
/// it ended.
async fn link_once(state: &ServerState, host: &str, port: u16) -> String {
    state.role.update(|m| m.state = "connecting");
    log_at!(Notice, "MASTER <-> REPLICA sync started");
    let timeout = Duration::from_secs(state.config().repl_timeout.max(1) as u64);
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return format!("Error condition on socket for SYNC: {e}"),
        Err(_) => return "Timeout connecting to the MASTER...".into(),
    };
    let _ = stream.set_nodelay(true);
    log_at!(Notice, "Non blocking connect for SYNC fired the event.");
    state.role.update(|m| m.state = "handshake");
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let action = match handshake(state, &mut stream, &mut inbuf, timeout).await {
        Ok(a) => a,
        Err(why) => return why,
    };
    match action {
        Action::FullResync { replid, offset } => {
            log_at!(Notice, "Full resync from master: {}:{}", replid, offset);
            state.role.update(|m| m.state = "sync");
            if let Err(why) =
                full_sync(state, &mut stream, &mut inbuf, timeout, replid, offset).await
            {
                return why;
            }
        }
        Action::Continue { new_replid } => {
            log_at!(Notice, "Successful partial resynchronization with master.");
            if let Some(new_id) = new_replid {
                let end = state.backlog.lock().end_offset();
                let mut id = state.replid.lock();
                if *id != new_id {
                    *state.role.replid2.lock() = (id.clone(), end as i64 + 1);
                    *id = new_id;
                    log_at!(Notice, "Master replication ID changed to {}", *id);
                }
            }
            log_at!(
                Notice,
                "MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization."
            );
        }
        Action::Send(_) | Action::Retry(_) => return "Unexpected handshake outcome".into(),
    }
    let now_ms = unix_us() / 1000;
    state.role.update(|m| {
        m.state = "connected";
        m.last_io_ms = now_ms;
        m.sync_size = 0;
        m.sync_read = 0;
    });
    apply_stream(state, &mut stream, inbuf).await
}

/// Reads one line (without its line ending), waiting at most `timeout`.
async fn read_line(
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    loop {
        if let Some(nl) = inbuf.iter().position(|&b| b == b'\n') {
            let line = inbuf.split_to(nl + 1);
            let mut text = &line[..nl];
            if text.last() == Some(&b'\r') {
                text = &text[..text.len() - 1];
            }
            return Ok(text.to_vec());
        }
        if inbuf.len() > 64 * 1024 {
            return Err("Master sent an overlong line".into());
        }
        read_more(stream, inbuf, timeout).await?;
    }
}

async fn read_more(
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    timeout: Duration,
) -> Result<usize, String> {
    match tokio::time::timeout(timeout, stream.read_buf(inbuf)).await {
        Ok(Ok(0)) => Err("Master closed the connection".into()),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("I/O error reading from MASTER: {e}")),
        Err(_) => Err("Timeout receiving data from MASTER".into()),
    }
}

async fn handshake(
    state: &ServerState,
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    timeout: Duration,
) -> Result<Action, String> {
    let config = state.config();
    let auth = config.masterauth.as_ref().map(|pass| {
        (
            (!config.masteruser.is_empty()).then(|| config.masteruser.clone()),
            String::from_utf8_lossy(pass).into_owned(),
        )
    });
    let port = match config.replica_announce_port {
        0 => state.tcp_port.load(Relaxed) as u16,
        p => p,
    };
    drop(config);
    let cached = state.role.have_dataset.load(Relaxed).then(|| {
        (
            state.replid.lock().clone(),
            state.backlog.lock().end_offset() + 1,
        )
    });
    match &cached {
        Some((id, next)) => log_at!(
            Notice,
            "Trying a partial resynchronization (request {}:{}).",
            id,
            next
        ),
        None => log_at!(
            Notice,
            "Partial resynchronization not possible (no cached master)"
        ),
    }
    let (mut machine, mut cmd) = Handshake::start(auth, port, cached);
    loop {
        stream
            .write_all(&cmd)
            .await
            .map_err(|e| format!("Error writing to MASTER: {e}"))?;
        let mut line = read_line(stream, inbuf, timeout).await?;
        // While the primary prepares a snapshot it keeps the link alive with newlines.
        while line.is_empty() && machine.step == replica::Step::Psync {
            line = read_line(stream, inbuf, timeout).await?;
        }
        let line = String::from_utf8_lossy(&line).into_owned();
        if machine.step == replica::Step::Ping {
            log_at!(
                Notice,
                "Master replied to PING, replication can continue..."
            );
        }
        match machine.on_reply(&line) {
            Action::Send(next) => cmd = next,
            Action::Retry(why) => return Err(why),
            done => return Ok(done),
        }
    }
}

/// Receives the snapshot, replaces the dataset with it and restarts our stream at the
/// primary's offset.
async fn full_sync(
    state: &ServerState,
    stream: &mut TcpStream,
    inbuf: &mut BytesMut,
    timeout: Duration,
    replid: String,
    offset: u64,
) -> Result<(), String> {
    // Newlines may come first while the primary prepares the snapshot.
    let header = loop {
        let line = read_line(stream, inbuf, timeout).await?;
        if line.is_empty() {
            continue;
        }
        if line.starts_with(b"-") {
            return Err(format!(
                "MASTER aborted replication with an error: {}",
                String::from_utf8_lossy(&line)
            ));
        }
        break replica::payload_header(&line)
            .ok_or_else(|| "Bad protocol from MASTER, the first byte is not '$'".to_string())?;
    };
    let payload = match header {
        Payload::Sized(len) => {
            if len > MAX_PAYLOAD {
                return Err("Snapshot from MASTER too large".into());
            }
            log_at!(
                Notice,
                "MASTER <-> REPLICA sync: receiving {} bytes from master to disk",
                len
            );
            state.role.update(|m| m.sync_size = len);
            while (inbuf.len() as u64) < len {
                read_more(stream, inbuf, timeout).await?;
                let got = inbuf.len() as u64;
                state.role.update(|m| m.sync_read = got.min(len));
            }
            inbuf.split_to(len as usize)
        }
        Payload::Delimited(mark) => {
            log_at!(
                Notice,
                "MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to disk"
            );
            let mut scanned: usize = 0;
            loop {
                if inbuf.len() >= mark.len() {
                    // Only the tail can hold the mark; it ends the transfer exactly.
                    if let Some(pos) = find(&inbuf[scanned.saturating_sub(mark.len())..], &mark) {
                        let start = scanned.saturating_sub(mark.len()) + pos;
                        let body = inbuf.split_to(start);
                        let _ = inbuf.split_to(mark.len());
                        break body;
                    }
                }
                scanned = inbuf.len();
                if scanned as u64 > MAX_PAYLOAD {
                    return Err("Snapshot from MASTER too large".into());
                }
                read_more(stream, inbuf, timeout).await?;
                let got = inbuf.len() as u64;
                state.role.update(|m| m.sync_read = got);
            }
        }
    };
    log_at!(Notice, "MASTER <-> REPLICA sync: Flushing old data");
    log_at!(Notice, "MASTER <-> REPLICA sync: Loading DB in memory");
    let limits = decode::LoadLimits::from_config(&state.config());
    // Expired keys are kept: the primary's DEL will remove them, as a replica must.
    let mut loaded = Vec::new();
    let mut functions = Vec::new();
    decode::decode_all(
        &payload,
        limits,
        0,
        |_, _| {},
        |f| functions.push(f),
        |l| loaded.push(l),
    )
    .map_err(|e| {
        format!(
            "Failed trying to load the MASTER synchronization DB from socket: {}",
            e.reason
        )
    })?;
    drop(payload);
    {
        let mut ks = state.keyspace.lock_all();
        for db in 0..ks.databases() {
            ks.flush_db(db);
        }
        // The primary's libraries replace ours, as its dataset does.
        crate::commands::scripting::functions::clear();
        if let Err(e) = crate::commands::scripting::functions::load_sources(functions, false) {
            log_at!(Warning, "Failed loading library from MASTER: {}", e);
        }
        let lru = (unix_us() / 1_000_000) as u32;
        for l in loaded {
            if l.db >= ks.databases() {
                continue;
            }
            let mut entry = crate::keyspace::Entry::new(l.value, lru);
            entry.expire_at_ms = l.expire_at_ms;
            ks.insert(l.db, &l.key, entry);
        }
        let mut backlog = state.backlog.lock();
        backlog.set_capacity(state.config().repl_backlog_size as usize);
        backlog.reset_to(offset);
        state.repl_active.store(true, Relaxed);
        *state.replid.lock() = replid;
        *state.role.replid2.lock() = ("0".repeat(40), -1);
    }
    state.stream_end.send_replace(offset);
    state.role.stream_db.store(0, Relaxed);
    state.role.have_dataset.store(true, Relaxed);
    state.role.update(|m| {
        m.read_offset = offset;
        m.processed_offset = offset;
    });
    disconnect_replicas(state);
    log_at!(Notice, "MASTER <-> REPLICA sync: Finished with success");
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Our own replicas follow a history that just ended: they must resynchronise.
fn disconnect_replicas(state: &ServerState) {
    let ids: Vec<u64> = state.replicas.lock().keys().copied().collect();
    let clients = state.clients.lock();
    for id in ids {
        if let Some(c) = clients.get(&id) {
            c.killed.store(true, Relaxed);
            c.kill_signal.notify_one();
        }
    }
}

/// Applies the primary's commands until the link breaks.
async fn apply_stream(state: &ServerState, stream: &mut TcpStream, mut inbuf: BytesMut) -> String {
    let now_ms = unix_us() / 1000;
    let id = state.next_client_id();
    let mut client = ClientState::new(
        id,
        stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        -1,
        now_ms,
        true,
    );
    client.is_master = true;
    client.db = state.role.stream_db.load(Relaxed);
    // Bytes of a transaction still being received: they count as processed (and enter our
    // backlog) only with its EXEC, so a broken link resumes from the MULTI.
    let mut in_transaction: Vec<u8> = Vec::new();
    let mut ack_timer = tokio::time::interval(Duration::from_secs(1));
    // CLIENT PAUSE holds the stream's next command (Redis postpones its master client too).
    let mut paused = false;
    loop {
        loop {
            let parsed = match replica::parse_command(&inbuf) {
                Ok(p) => p,
                Err(why) => return format!("Protocol error from MASTER: {why}"),
            };
            let Some((args, len)) = parsed else { break };
            paused =
                crate::commands::dispatch::pause_holds(state, &client, &args, unix_us() / 1000);
            if paused {
                break;
            }
            let raw = inbuf.split_to(len).freeze();
            let applying = state.role.apply_lock.lock();
            let ack = apply_one(state, &mut client, &args);
            state.role.stream_db.store(client.db, Relaxed);
            in_transaction.extend_from_slice(&raw);
            let end = {
                let mut backlog = state.backlog.lock();
                if client.multi.is_none() {
                    backlog.feed_raw(&in_transaction);
                    in_transaction.clear();
                }
                backlog.end_offset()
            };
            drop(applying);
            if let Some(ack) = ack {
                if let Err(e) = stream.write_all(&ack).await {
                    return format!("Error writing to MASTER: {e}");
                }
            }
            state.stream_end.send_replace(end);
            state.role.update(|m| m.processed_offset = end);
        }
        tokio::select! {
            read = stream.read_buf(&mut inbuf) => match read {
                Ok(0) => return "Connection with master lost.".into(),
                Err(e) => return format!("Connection with master lost: {e}"),
                Ok(n) => {
                    let now_ms = unix_us() / 1000;
                    state.role.update(|m| {
                        m.read_offset += n as u64;
                        m.last_io_ms = now_ms;
                    });
                }
            },
            _ = state.pause.over(), if paused => {}
            _ = ack_timer.tick() => {
                let offset = state.backlog.lock().end_offset();
                let ack = replica::command(&["REPLCONF", "ACK", &offset.to_string()]);
                if let Err(e) = stream.write_all(&ack).await {
                    return format!("Error writing to MASTER: {e}");
                }
            }
        }
    }
}

/// Runs one command of the stream. Nothing is answered except REPLCONF GETACK, whose
/// acknowledgement is returned to be sent.
fn apply_one(state: &ServerState, client: &mut ClientState, args: &[Bytes]) -> Option<Vec<u8>> {
    if args.is_empty() {
        return None;
    }
    if args.len() >= 2
        && args[0].eq_ignore_ascii_case(b"replconf")
        && args[1].eq_ignore_ascii_case(b"getack")
    {
        let offset = state.backlog.lock().end_offset();
        return Some(replica::command(&["REPLCONF", "ACK", &offset.to_string()]));
    }
    let started = std::time::Instant::now();
    let outcome = crate::commands::dispatch::execute(state, client, args, unix_us(), true);
    account(state, &outcome, started.elapsed());
    if let crate::resp::Reply::Error(e) = &outcome.reply {
        log_at!(
            Warning,
            "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{}'",
            e.text(),
            String::from_utf8_lossy(&args[0])
        );
    }
    None
}

/// Command statistics for what the stream ran, as for any client.
fn account(state: &ServerState, outcome: &crate::commands::dispatch::Outcome, elapsed: Duration) {
    if let crate::resp::Reply::Error(e) = &outcome.reply {
        state.count_error(e.code());
    }
    let Some(cmd) = outcome.cmd else { return };
    let stats = &state.command_stats[cmd.id];
    if outcome.rejected {
        stats.rejected_calls.fetch_add(1, Relaxed);
        return;
    }
    if outcome.queued {
        return;
    }
    state.stats.total_commands_processed.fetch_add(1, Relaxed);
    stats.calls.fetch_add(1, Relaxed);
    stats.usec.fetch_add(elapsed.as_micros() as u64, Relaxed);
    if outcome.reply.is_error() {
        stats.failed_calls.fetch_add(1, Relaxed);
    }
}

/// Expires, on a writable replica, the keys our own clients wrote whose time has come (the
/// primary's keys wait for its DEL). Keys gone or without a TTL are forgotten.
pub fn expire_local_writes(state: &ServerState, now_ms: u64) {
    let keys: Vec<(usize, Vec<u8>)> = state.role.local_writes.lock().iter().cloned().collect();
    for (db, key) in keys {
        let shard = state.keyspace.shard_of(crate::slot::key_slot(&key));
        let mut guard = state.keyspace.lock(&[shard]);
        let (entry, expired) = guard.lookup(db, &key, now_ms);
        let keep = entry.is_some_and(|e| e.expire_at_ms != 0);
        drop(guard);
        if expired {
            state.stats.expired_keys.fetch_add(1, Relaxed);
            state.watches.touch(db, &key, false);
            crate::commands::tracking::invalidate(state, &key, None);
            crate::commands::pubsub::notify_keyspace_event(
                state,
                crate::config::values::notify::EXPIRED,
                "expired",
                db,
                &key,
                now_ms,
            );
        }
        if !keep {
            state.role.local_writes.lock().remove(&(db, key));
        }
    }
}

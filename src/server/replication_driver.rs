//! The primary's end of a replica link. After SYNC or PSYNC the connection stops being a
//! client: it gets a snapshot of the dataset as an RDB payload (cut while every shard is held,
//! at a known stream offset), then every byte of the replication stream after that offset.
//! What the replica sends back (REPLCONF ACK) updates what INFO replication shows. The stream
//! bytes a replica has not taken wait in its queue in the backlog (its output buffer), and a
//! replica whose queue breaks `client-output-buffer-limit replica` is disconnected.

use super::connection::unix_us;
use super::state::{ReplicaLink, ServerState};
use crate::commands::context::ReplicaSync;
use crate::log_at;
use crate::resp::decode::{DecodeLimits, RequestDecoder};
use bytes::BytesMut;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Cuts the snapshot: the RDB payload and the stream offset it corresponds to.
fn snapshot(state: &ServerState, client_id: u64) -> (Vec<u8>, u64) {
    // On a replica, no command of our primary's stream is half applied while we cut.
    let _applying = state.role.apply_lock.lock();
    let mut locked = state.keyspace.lock_all();
    let offset = {
        let mut backlog = state.backlog.lock();
        backlog.set_capacity(state.config().repl_backlog_size as usize);
        backlog.activate();
        backlog.force_select();
        let end = backlog.end_offset();
        backlog.attach(client_id, end);
        state
            .repl_active
            .store(true, std::sync::atomic::Ordering::Relaxed);
        backlog.end_offset()
    };
    let now_ms = unix_us() / 1000;
    let used = super::info::used_memory();
    let aux: Vec<(&str, Vec<u8>)> = vec![
        ("redis-ver", super::REDIS_VERSION.as_bytes().to_vec()),
        ("redis-bits", b"64".to_vec()),
        ("ctime", (now_ms / 1000).to_string().into_bytes()),
        ("used-mem", used.to_string().into_bytes()),
        ("repl-stream-db", b"0".to_vec()),
        ("repl-id", state.replid.lock().as_bytes().to_vec()),
        ("repl-offset", offset.to_string().into_bytes()),
        ("aof-base", b"0".to_vec()),
    ];
    let functions = crate::commands::scripting::functions::library_sources();
    let opts = crate::persistence::rdb::encode::Options::from_config(&state.config());
    let payload = crate::persistence::rdb::encode::encode_dataset(
        &mut locked,
        now_ms,
        &aux,
        &functions,
        opts,
    );
    (payload, offset)
}

/// Serves one replica until it disconnects or falls behind.
pub async fn serve_replica(
    state: Arc<ServerState>,
    stream: &mut TcpStream,
    client_id: u64,
    ip: String,
    port: u16,
    kind: ReplicaSync,
    entry: &super::state::ClientEntry,
) {
    let now_ms = unix_us() / 1000;
    let mut link = ReplicaLink {
        ip,
        port,
        state: "wait_bgsave",
        ack_offset: 0,
        last_ack_ms: now_ms,
    };
    state.replicas.lock().insert(client_id, link.clone());
    log_at!(
        Notice,
        "Replica {}:{} asks for synchronization",
        link.ip,
        link.port
    );
    serve_link(&state, stream, client_id, &mut link, kind, entry).await;
    state.replicas.lock().remove(&client_id);
    log_at!(
        Notice,
        "Connection with replica {}:{} lost.",
        link.ip,
        link.port
    );
}

async fn serve_link(
    state: &ServerState,
    stream: &mut TcpStream,
    client_id: u64,
    link: &mut ReplicaLink,
    kind: ReplicaSync,
    entry: &super::state::ClientEntry,
) {
    match kind {
        ReplicaSync::Continue(from) => {
            if !state.backlog.lock().attach(client_id, from) {
                log_at!(
                    Warning,
                    "Client id={} addr={}:{} closed: its offset left the backlog.",
                    client_id,
                    link.ip,
                    link.port
                );
                return;
            }
            let head = format!("+CONTINUE {}\r\n", state.replid.lock());
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            set_state(state, client_id, link, "online");
            log_at!(
                Notice,
                "Partial resynchronization request from {}:{} accepted, sending the stream after offset {}.",
                link.ip,
                link.port,
                from
            );
        }
        _ => {
            if full_snapshot(state, stream, client_id, link, &kind)
                .await
                .is_none()
            {
                state.backlog.lock().detach(client_id);
                return;
            }
        }
    }
    stream_to_replica(state, stream, client_id, link, entry).await;
    state.backlog.lock().detach(client_id);
}

/// Writes the replica's queue as the socket takes it, reading its acknowledgements, until the
/// link breaks or its queue breaks the replica output buffer limit.
async fn stream_to_replica(
    state: &ServerState,
    stream: &mut TcpStream,
    client_id: u64,
    link: &mut ReplicaLink,
    entry: &super::state::ClientEntry,
) {
    let mut ends = state.stream_end.subscribe();
    let mut inbuf = BytesMut::with_capacity(4096);
    let mut decoder = RequestDecoder::new();
    let mut out = bytes::Bytes::new();
    let mut soft_since = None;
    loop {
        if out.is_empty() {
            out = state.backlog.lock().take_queued(client_id);
        }
        if !out.is_empty() {
            match stream.try_write(&out) {
                Ok(n) => {
                    let _ = out.split_to(n);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        tokio::select! {
            ready = stream.writable(), if !out.is_empty() => {
                if ready.is_err() {
                    return;
                }
            }
            changed = ends.changed() => {
                if changed.is_err() {
                    return;
                }
                let queued = state.backlog.lock().queued_for(client_id) as u64;
                let limit = state.config().client_output_buffer_limit.replica;
                if limit.exceeded(queued, unix_us() / 1000, &mut soft_since) {
                    log_at!(
                        Warning,
                        "Client id={} addr={}:{} closed for overcoming of output buffer limits.",
                        client_id,
                        link.ip,
                        link.port
                    );
                    return;
                }
            }
            ready = stream.readable() => {
                if ready.is_err() {
                    return;
                }
                match stream.try_read_buf(&mut inbuf) {
                    Ok(0) => return,
                    Ok(_) => {
                        if !read_acks(state, client_id, link, &mut inbuf, &mut decoder) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
            // The signal also carries housekeeping requests; only a kill ends the link.
            _ = entry.kill_signal.notified() => {
                if entry.killed.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
}

fn set_state(state: &ServerState, client_id: u64, link: &mut ReplicaLink, s: &'static str) {
    link.state = s;
    if let Some(l) = state.replicas.lock().get_mut(&client_id) {
        l.state = s;
    }
}

/// Reads what the replica sent: REPLCONF ACK <offset> records its progress; anything else
/// is ignored, like Redis ignores replies from replicas. False on a protocol error.
fn read_acks(
    state: &ServerState,
    client_id: u64,
    link: &mut ReplicaLink,
    inbuf: &mut BytesMut,
    decoder: &mut RequestDecoder,
) -> bool {
    let limits = DecodeLimits {
        proto_max_bulk_len: state.config().proto_max_bulk_len,
        authenticated: true,
    };
    loop {
        match decoder.decode(inbuf, limits) {
            Ok(Some(req)) => {
                let args = &req.args;
                if args.len() >= 3
                    && args[0].eq_ignore_ascii_case(b"replconf")
                    && args[1].eq_ignore_ascii_case(b"ack")
                {
                    if let Some(offset) = crate::util::parse_int(&args[2]) {
                        link.ack_offset = offset.max(0) as u64;
                        link.last_ack_ms = unix_us() / 1000;
                        if let Some(l) = state.replicas.lock().get_mut(&client_id) {
                            l.ack_offset = link.ack_offset;
                            l.last_ack_ms = link.last_ack_ms;
                        }
                        state.ack_signal.notify_waiters();
                    }
                }
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Asks every replica to acknowledge its offset now (a client entered WAIT): a `REPLCONF
/// GETACK *` in the stream, as Redis sends before its event loop sleeps.
pub fn request_acks(state: &ServerState) {
    let mut backlog = state.backlog.lock();
    if !backlog.is_active() {
        return;
    }
    backlog.feed_raw(b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n");
    let end = backlog.end_offset();
    drop(backlog);
    state.stream_end.send_replace(end);
}

/// Sends a full snapshot; the offset the stream continues after, None if the link broke.
async fn full_snapshot(
    state: &ServerState,
    stream: &mut TcpStream,
    client_id: u64,
    link: &mut ReplicaLink,
    kind: &ReplicaSync,
) -> Option<u64> {
    let (payload, sent) = snapshot(state, client_id);
    log_at!(
        Notice,
        "Synchronization with replica {}:{} started: {} bytes of RDB at offset {}",
        link.ip,
        link.port,
        payload.len(),
        sent
    );
    let mut head = String::new();
    if *kind == ReplicaSync::Psync {
        head.push_str(&format!("+FULLRESYNC {} {}\r\n", state.replid.lock(), sent));
    }
    head.push_str(&format!("${}\r\n", payload.len()));
    set_state(state, client_id, link, "send_bulk");
    if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&payload).await.is_err()
    {
        return None;
    }
    drop(payload);
    set_state(state, client_id, link, "online");
    log_at!(
        Notice,
        "Synchronization with replica {}:{} succeeded",
        link.ip,
        link.port
    );
    Some(sent)
}

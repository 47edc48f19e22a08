//! One client connection: read into a bounded query buffer, decode every complete request,
//! run each through `dispatch::execute`, encode the replies and flush them once per batch.
//! Protocol errors get Redis's `-ERR Protocol error: ...` and close the link; the query buffer
//! is bounded by `client-query-buffer-limit`; idle clients are closed after `timeout`.

use super::state::{CachedConfig, ClientEntry, ClientView, ServerState};
use crate::commands::context::{ClientState, ReplyMode};
use crate::commands::context::{PersistenceRequest, Requests};
use crate::commands::dispatch::{self, Outcome};
use crate::commands::spec::flag;
use crate::log_at;
use crate::resp::decode::{DecodeLimits, RequestDecoder};
use crate::resp::{encode, Reply};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_CHUNK: usize = 16 * 1024;
/// An emptied reply buffer that grew past this is replaced by a small one.
const SHRINK_OUT_BYTES: usize = 64 * 1024;
/// Largest argument vector kept for the next requests (a bigger one is let go).
const KEPT_ARGS: usize = 64;
/// Waits in a row that found input at once, after which a connection yields its worker (as
/// tokio's cooperative budget would make a read loop do).
const READS_BEFORE_YIELD: u32 = 128;
/// Pending reply bytes above which a pipeline's replies are written between its commands.
const EARLY_WRITE_BYTES: usize = 64 * 1024;

pub fn unix_us() -> u64 {
    // Read twice per command: the clock is asked directly, without `SystemTime`'s checked
    // arithmetic.
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec.max(0) as u64) * 1_000_000 + ts.tv_nsec.max(0) as u64 / 1000
}

/// What the text of a refused connection is, if it must be refused before any command.
fn refusal(state: &ServerState, peer: &SocketAddr) -> Option<&'static str> {
    let cfg = state.config();
    if state.connected_clients.load(Relaxed) as u64 >= cfg.maxclients {
        state.stats.rejected_connections.fetch_add(1, Relaxed);
        return Some("-ERR max number of clients reached\r\n");
    }
    if cfg.protected_mode && state.acl.default_user().nopass() && !is_local_peer(peer) {
        state.stats.rejected_connections.fetch_add(1, Relaxed);
        return Some(PROTECTED_MODE_TEXT);
    }
    None
}

const PROTECTED_MODE_TEXT: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// `tcp-keepalive`: TCP keepalive probes after `secs` idle seconds, then every third of that,
/// giving up after three, as Redis sets them.
fn set_keepalive(stream: &TcpStream, secs: i64) {
    if secs <= 0 {
        return;
    }
    use std::os::fd::AsRawFd;
    let fd = stream.as_raw_fd();
    let secs = secs.min(i32::MAX as i64) as libc::c_int;
    let set = |level: libc::c_int, opt: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt on a socket this connection owns, with a valid int pointer.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs);
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, (secs / 3).max(1));
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
}

/// Redis's `islocalClient`: exactly 127.0.0.1 or ::1.
fn is_local_peer(peer: &SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(v6) => v6 == std::net::Ipv6Addr::LOCALHOST,
    }
}

pub async fn serve(
    state: Arc<ServerState>,
    mut stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    set_keepalive(&stream, state.config().tcp_keepalive);
    if let Some(text) = refusal(&state, &peer) {
        let _ = stream.write_all(text.as_bytes()).await;
        return;
    }
    state.stats.total_connections_received.fetch_add(1, Relaxed);
    let id = state.next_client_id();
    let now_us = unix_us();
    let fd = {
        use std::os::fd::AsRawFd;
        stream.as_raw_fd()
    };
    let authenticated = !state.acl.auth_required();
    let mut conn = Connection {
        client: ClientState::new(
            id,
            peer.to_string(),
            local.to_string(),
            fd,
            now_us / 1000,
            authenticated,
        ),
        entry: Arc::new(ClientEntry {
            view: parking_lot::Mutex::new(ClientView::default()),
            killed: Default::default(),
            release_buffer: Default::default(),
            kill_signal: super::signal::Signal::new(),
            blocked: Default::default(),
            unblock_request: Default::default(),
            mem: Default::default(),
            mailbox: Default::default(),
            no_evict: Default::default(),
            dying_mem: Default::default(),
        }),
        is_local: is_local_peer(&peer),
        out: BytesMut::with_capacity(READ_CHUNK),
        close: false,
        last_cmd: "NULL",
        last_interaction_ms: now_us / 1000,
        monitor_rx: None,
        replica: None,
        blocked: None,
        waiting: None,
        postponed: None,
        input_mem: 0,
        published_meta: None,
        mailbox_signal: Arc::new(super::signal::Signal::new()),
        soft_limit_since_ms: None,
        config: CachedConfig::new(&state.config),
        pending_stats: Vec::new(),
        batch_commands: 0,
        batch_clock_us: None,
        args: Vec::new(),
        relocate: None,
        on_loop: state.pool.get().is_some()
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::CurrentThread,
        state: state.clone(),
    };
    {
        let signal = conn.mailbox_signal.clone();
        let mailbox = &conn.client.mailbox;
        mailbox.set_waker(Arc::new(move || signal.notify_one()));
        mailbox.set_accounting(state.client_memory.clone());
        Arc::get_mut(&mut conn.entry)
            .expect("the entry is not shared yet")
            .mailbox = mailbox.clone();
    }
    conn.publish_view(0, 0);
    state.clients.lock().insert(id, conn.entry.clone());
    state.connected_clients.fetch_add(1, Relaxed);
    let mut input = Input {
        buf: BytesMut::with_capacity(READ_CHUNK),
        decoder: RequestDecoder::new(),
    };
    if conn.run(&mut stream, &mut input).await == Ended::Relocate {
        if let Some(pool) = state.pool.get() {
            match stream.into_std() {
                Ok(stream) => {
                    conn.on_loop = false;
                    pool.spawn(async move {
                        if let Ok(mut stream) = TcpStream::from_std(stream) {
                            conn.run(&mut stream, &mut input).await;
                        }
                        conn.end();
                    });
                    return;
                }
                Err(e) => log_at!(Verbose, "Moving client id={}: {}", conn.client.id, e),
            }
        }
    }
    conn.end();
}

/// A connection's unparsed input, kept with it when it moves between runtimes.
struct Input {
    buf: BytesMut,
    decoder: RequestDecoder,
}

/// Bytes of input a connection holds: unparsed, parsed into a request not yet complete, and
/// announced by the bulk being read (what CLIENT LIST reports the query buffer from).
fn input_held(inbuf: &BytesMut, decoder: &RequestDecoder) -> usize {
    inbuf.len() + decoder.partial_bytes() + decoder.pending_bulk_len()
}

/// How `Connection::run` ended.
#[derive(PartialEq)]
enum Ended {
    Closed,
    /// A command must run on the multi-thread runtime: `Connection::relocate` holds it.
    Relocate,
}

/// Whether a command may hold its thread for long: a script (which other clients must still
/// reach with BUSY, SCRIPT KILL or FUNCTION KILL), MIGRATE (a network exchange, up to its
/// timeout) and DEBUG LOADAOF (others get -LOADING meanwhile).
fn may_block(args: &[Bytes]) -> bool {
    let is = |i: usize, name: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(name));
    crate::commands::scripting::may_run_long(args)
        || is(0, b"migrate")
        || (args.len() == 2 && is(0, b"debug") && is(1, b"loadaof"))
}

/// Whether a command must run on the multi-thread runtime rather than on a client loop: one
/// that may hold its thread for long, an EXEC whose transaction holds one, and anything
/// arriving while a script runs or a MIGRATE holds keys (it may wait for them).
fn needs_pool(state: &ServerState, client: &ClientState, args: &[Bytes]) -> bool {
    may_block(args)
        || crate::commands::scripting::script_running()
        || state.migrate.holds_any()
        || (args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(b"exec"))
            && client
                .multi
                .as_ref()
                .is_some_and(|m| m.queued.iter().any(|q| may_block(q))))
}

/// Reads what the socket holds into `buf`. A read that leaves room in the buffer drained the
/// socket, so its readiness is cleared at once: the next wait goes straight to the poller
/// instead of first spending a read on `EAGAIN` (a new arrival raises a new edge, which the
/// readiness tick keeps from being lost).
fn read_available(stream: &TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    use std::io::ErrorKind::WouldBlock;
    let mut got = 0;
    let room = buf.capacity() - buf.len();
    let r = stream.try_io(tokio::io::Interest::READABLE, || {
        match stream.try_read_buf(buf) {
            Ok(n) if n > 0 && n < room => {
                got = n;
                Err(WouldBlock.into())
            }
            other => other,
        }
    });
    match r {
        Err(e) if e.kind() == WouldBlock && got > 0 => Ok(got),
        other => other,
    }
}

/// What ended a connection's wait for input.
enum Woken {
    /// Bytes read (0 at end of stream), or the read's error.
    Read(std::io::Result<usize>),
    /// No input for `timeout` seconds.
    Idle,
    /// The socket takes more of the pending replies (false: it failed).
    Writable(bool),
    /// The kill signal, which also carries housekeeping requests.
    Kill,
    /// A line for a MONITOR client (None: the feed ended).
    Monitor(Option<Bytes>),
    /// Pub/Sub messages arrived.
    Mailbox,
}

/// Name, library name, library version, monitor flag, Pub/Sub, replica link, and the identity
/// of the ACL user object (a new one after AUTH or changes).
type PublishedMeta = (
    Option<Bytes>,
    Option<Bytes>,
    Option<Bytes>,
    bool,
    bool,
    bool,
    usize,
);

struct Connection {
    state: Arc<ServerState>,
    client: ClientState,
    entry: Arc<ClientEntry>,
    is_local: bool,
    out: BytesMut,
    close: bool,
    last_cmd: &'static str,
    last_interaction_ms: u64,
    /// Name, library name/version and monitor flag as last shown to CLIENT LIST.
    published_meta: Option<PublishedMeta>,
    /// Lines to forward while this connection is in MONITOR mode.
    monitor_rx: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// Set by SYNC / PSYNC: once the pending replies are written, this becomes a replica link.
    replica: Option<crate::commands::context::ReplicaSync>,
    /// A blocking command that found nothing: its arguments and what it waits for.
    blocked: Option<(Vec<Bytes>, crate::commands::context::Block)>,
    /// WAIT found too few acknowledgements.
    waiting: Option<crate::commands::context::WaitAcks>,
    /// A command CLIENT PAUSE holds, run once the pause is over.
    postponed: Option<Vec<Bytes>>,
    /// What the input buffers held at the last memory report.
    input_mem: usize,
    /// Woken when a message lands in the client's Pub/Sub mailbox.
    mailbox_signal: Arc<super::signal::Signal>,
    /// Since when the pending replies have been over the soft output limit.
    soft_limit_since_ms: Option<u64>,
    /// The configuration, refreshed when CONFIG SET changes it.
    config: CachedConfig,
    /// Data commands run since the statistics were last published, as (command id,
    /// microseconds, failed): a pipeline's counts go out together, so the shared counters'
    /// cache lines move between cores once per batch rather than once per command.
    pending_stats: Vec<(usize, u64, bool)>,
    /// A command that must run on the multi-thread runtime (see `needs_pool`), set on a
    /// client loop: the connection moves there, and runs it first.
    relocate: Option<Vec<Bytes>>,
    /// Whether this connection is served by a client loop (`loops.rs`).
    on_loop: bool,
    /// Commands run from the last read.
    batch_commands: usize,
    /// The argument vector requests are decoded into, kept from one request to the next.
    args: Vec<Bytes>,
    /// When the batch's last command ended (the next one's start time).
    batch_clock_us: Option<u64>,
}

/// Most data commands whose statistics wait for the end of their batch.
const PENDING_STATS_MAX: usize = 64;

impl Connection {
    /// Forgets the client everywhere the server keeps track of it.
    fn end(mut self) {
        let (state, id) = (self.state.clone(), self.client.id);
        if self.monitor_rx.is_some() {
            super::monitor::unregister(&state, id);
        }
        crate::commands::tx::unwatch_all(&mut self.client, &state);
        state.pubsub.forget_client(&mut self.client);
        let _ = self.client.mailbox.drain_into(&mut BytesMut::new());
        state
            .client_memory
            .fetch_sub(self.entry.mem.swap(0, Relaxed), Relaxed);
        state
            .dying_client_memory
            .fetch_sub(self.entry.dying_mem.swap(0, Relaxed), Relaxed);
        state.clients.lock().remove(&id);
        state.tracking.disable(id);
        state.connected_clients.fetch_sub(1, Relaxed);
    }

    async fn run(&mut self, stream: &mut TcpStream, input: &mut Input) -> Ended {
        let Input {
            buf: inbuf,
            decoder,
        } = input;
        if let Some(args) = self.relocate.take() {
            // The command that moved this connection to the multi-thread runtime, then the
            // rest of its pipeline.
            self.run_command(&args);
            self.process_input(inbuf, decoder, stream);
            self.publish_view(inbuf.len(), input_held(inbuf, decoder));
            if !self.flush(stream).await {
                return Ended::Closed;
            }
        }
        // The `timeout` countdown while waiting for input, when one is configured.
        let mut idle: Option<Pin<Box<tokio::time::Sleep>>> = None;
        let mut ready_streak = 0u32;
        while !self.close {
            if self.entry.killed.load(Relaxed) {
                return Ended::Closed;
            }
            if self.relocate.is_some() {
                return match self.flush(stream).await {
                    true => Ended::Relocate,
                    false => Ended::Closed,
                };
            }
            if self.blocked.is_some() || self.waiting.is_some() || self.postponed.is_some() {
                let waited = if self.waiting.is_some() {
                    self.flush(stream).await && self.wait_acks(stream, inbuf).await
                } else if self.postponed.is_some() {
                    self.flush(stream).await && self.wait_postponed(stream, inbuf).await
                } else {
                    self.flush(stream).await && self.wait_blocked(stream, inbuf).await
                };
                if !waited {
                    return Ended::Closed;
                }
                // Commands that arrived while blocked run now.
                self.process_input(inbuf, decoder, stream);
                if !self.flush(stream).await {
                    return Ended::Closed;
                }
                continue;
            }
            if inbuf.capacity() - inbuf.len() < READ_CHUNK / 2 {
                inbuf.reserve(READ_CHUNK);
            }
            let timeout_secs = self.cfg().timeout;
            if timeout_secs > 0 {
                let deadline =
                    tokio::time::Instant::now() + Duration::from_secs(timeout_secs as u64);
                match idle.as_mut() {
                    Some(sleep) => sleep.as_mut().reset(deadline),
                    None => idle = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
            } else {
                idle = None;
            }
            // Reading goes on while replies wait to be written, as with Redis: a client that
            // pipelines without reading grows its output buffer (up to its limit). The wait is
            // polled by hand, in this order, rather than through `select!`: a request costs
            // one poll of each source, and nothing to set up or tear down around it.
            let pending_output = !self.out.is_empty();
            let mut polls = 0u32;
            let woken = std::future::poll_fn(|cx| {
                polls += 1;
                // The socket is read first: when the driver already saw input, that costs no
                // registration (a read without known readiness fails at once, with no
                // system call). Only then is the task registered for the next input.
                loop {
                    match read_available(stream, inbuf) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        r => return Poll::Ready(Woken::Read(r)),
                    }
                    match stream.poll_read_ready(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => return Poll::Ready(Woken::Read(Err(e))),
                        Poll::Pending => break,
                    }
                }
                if let Some(sleep) = idle.as_mut() {
                    if sleep.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Woken::Idle);
                    }
                }
                if pending_output {
                    if let Poll::Ready(w) = stream.poll_write_ready(cx) {
                        return Poll::Ready(Woken::Writable(w.is_ok()));
                    }
                }
                if self.entry.kill_signal.poll_notified(cx).is_ready() {
                    return Poll::Ready(Woken::Kill);
                }
                if let Some(rx) = self.monitor_rx.as_mut() {
                    if let Poll::Ready(line) = rx.poll_recv(cx) {
                        return Poll::Ready(Woken::Monitor(line));
                    }
                }
                if self.mailbox_signal.poll_notified(cx).is_ready() {
                    return Poll::Ready(Woken::Mailbox);
                }
                Poll::Pending
            })
            .await;
            // A client whose input never runs dry must still let the worker's other tasks
            // run: after a long streak of reads that did not wait, the task yields.
            if polls > 1 {
                ready_streak = 0;
            } else {
                ready_streak += 1;
                if ready_streak >= READS_BEFORE_YIELD {
                    ready_streak = 0;
                    tokio::task::yield_now().await;
                }
            }
            let n = match woken {
                Woken::Read(r) => r.map(Some),
                Woken::Idle => Ok(None),
                Woken::Writable(ok) => {
                    if !ok || !self.write_ready(stream) {
                        return Ended::Closed;
                    }
                    self.report_memory(inbuf.capacity() + decoder.partial_bytes());
                    continue;
                }
                Woken::Kill => {
                    if self.entry.release_buffer.swap(false, Relaxed) && inbuf.is_empty() {
                        *inbuf = BytesMut::new();
                    }
                    continue;
                }
                Woken::Monitor(line) => {
                    let Some(line) = line else {
                        return Ended::Closed;
                    };
                    if stream.write_all(&line).await.is_err() {
                        return Ended::Closed;
                    }
                    continue;
                }
                Woken::Mailbox => {
                    if !self.take_mailbox() || !self.flush(stream).await {
                        return Ended::Closed;
                    }
                    continue;
                }
            };
            let n = match n {
                Ok(Some(0)) | Err(_) => return Ended::Closed,
                Ok(Some(n)) => n,
                Ok(None) => {
                    log_at!(Verbose, "Closing idle client");
                    return Ended::Closed;
                }
            };
            self.state
                .stats
                .net_input_bytes
                .fetch_add(n as u64, Relaxed);
            self.state.stats.total_reads_processed.fetch_add(1, Relaxed);
            let read_us = unix_us();
            self.last_interaction_ms = read_us / 1000;
            let in_use = input_held(inbuf, decoder);
            self.process_input_at(inbuf, decoder, stream, Some(read_us));
            self.report_memory(inbuf.capacity() + decoder.partial_bytes());
            if !self.close {
                let limit = self.cfg().client_query_buffer_limit as usize;
                if inbuf.len() + decoder.partial_bytes() > limit {
                    log_at!(Warning, "Closing client that reached max query buffer length: id={} addr={} (qbuf initial bytes: {:?})", self.client.id, self.client.addr, String::from_utf8_lossy(&inbuf[..inbuf.len().min(64)]));
                    self.state
                        .stats
                        .client_query_buffer_limit_disconnections
                        .fetch_add(1, Relaxed);
                    return Ended::Closed;
                }
            }
            // What CLIENT LIST shows is brought up to date before the replies go out: a
            // client that read its reply (to CLIENT SETNAME, say) sees the change from any
            // connection.
            let in_use = in_use.max(input_held(inbuf, decoder));
            self.publish_view(inbuf.len(), in_use);
            let done = if self.close
                || self.replica.is_some()
                || self.blocked.is_some()
                || self.waiting.is_some()
                || self.postponed.is_some()
                || self.relocate.is_some()
            {
                self.flush(stream).await
            } else {
                // The replies of a pipeline wait until the worker has served the other
                // connections that are ready, as Redis writes all replies once per event loop
                // turn: a peer already woken by one reply takes the next ones without another
                // (costly) wake-up.
                if self.batch_commands > 1 && !self.out.is_empty() {
                    tokio::task::yield_now().await;
                }
                self.write_ready(stream) && self.check_output_limit()
            };
            if !done {
                return Ended::Closed;
            }
            if let Some(kind) = self.replica.take() {
                let ip = self
                    .client
                    .addr
                    .rsplit_once(':')
                    .map_or(self.client.addr.clone(), |(ip, _)| ip.to_string());
                super::replication_driver::serve_replica(
                    self.state.clone(),
                    stream,
                    self.client.id,
                    ip,
                    self.client.replica_listening_port,
                    kind,
                    &self.entry,
                )
                .await;
                return Ended::Closed;
            }
        }
        Ended::Closed
    }

    fn cfg(&mut self) -> &crate::config::Config {
        self.config.get(&self.state.config)
    }

    /// Moves delivered Pub/Sub messages into the output. False (and the connection is to be
    /// closed) when the client overran its `client-output-buffer-limit`.
    fn take_mailbox(&mut self) -> bool {
        if self.client.mailbox.drain_into(&mut self.out).is_ok() {
            return true;
        }
        self.note_output_limit_close();
        self.close = true;
        false
    }

    /// Publishes how much this connection's buffers hold, and closes the biggest clients if
    /// that puts the total over `maxmemory-clients`.
    fn report_memory(&mut self, input: usize) {
        self.input_mem = input;
        let now = input + self.out.capacity();
        let before = self.entry.mem.load(Relaxed);
        if now == before {
            return;
        }
        self.entry.mem.store(now, Relaxed);
        let total = &self.state.client_memory;
        if now > before {
            total.fetch_add(now - before, Relaxed);
            self.state.evict_clients(unix_us() / 1000);
        } else {
            total.fetch_sub(before - now, Relaxed);
        }
    }

    /// Logs and counts a client closed for its output buffer limit.
    fn note_output_limit_close(&self) {
        log_at!(
            Warning,
            "Client id={} addr={} laddr={} fd={} name={} scheduled to be closed ASAP for overcoming of output buffer limits.",
            self.client.id,
            self.client.addr,
            self.client.laddr,
            self.client.fd,
            self.client
                .name
                .as_ref()
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default()
        );
        self.state
            .stats
            .client_output_buffer_limit_disconnections
            .fetch_add(1, Relaxed);
    }

    /// Writes as much of the pending replies as the socket takes now; false if the peer is
    /// gone.
    fn write_ready(&mut self, stream: &TcpStream) -> bool {
        // What the replies acknowledge reaches the AOF first.
        super::aof::write_pending(&self.state);
        let mut written = 0;
        while written < self.out.len() {
            match stream.try_write(&self.out[written..]) {
                Ok(0) => return false,
                Ok(n) => written += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => return false,
            }
        }
        if written > 0 {
            let stats = &self.state.stats;
            stats.net_output_bytes.fetch_add(written as u64, Relaxed);
            stats.total_writes_processed.fetch_add(1, Relaxed);
            if written == self.out.len() {
                // All of it went: the buffer is reused as it is.
                self.out.clear();
            } else {
                let _ = self.out.split_to(written);
            }
            // Emptied, a grown buffer goes back to the allocator (what it still reports as
            // capacity is only the unwritten tail of its allocation).
            if self.out.is_empty() && written + self.out.capacity() > SHRINK_OUT_BYTES {
                self.out = BytesMut::with_capacity(READ_CHUNK);
            }
            self.report_memory(self.input_mem);
        }
        true
    }

    /// `client-output-buffer-limit normal`: false (and the client is to be closed) when the
    /// replies waiting for this client are over the hard limit, or over the soft limit for
    /// longer than its seconds.
    fn check_output_limit(&mut self) -> bool {
        let limit = self.cfg().client_output_buffer_limit.normal;
        let len = self.out.len() as u64;
        // The clock matters only while the replies are over the soft limit.
        let now_ms = if limit.soft_limit_bytes != 0 && len >= limit.soft_limit_bytes {
            unix_us() / 1000
        } else {
            0
        };
        if !limit.exceeded(len, now_ms, &mut self.soft_limit_since_ms) {
            return true;
        }
        self.note_output_limit_close();
        false
    }

    /// Writes the pending replies; false if the peer is gone.
    async fn flush(&mut self, stream: &mut TcpStream) -> bool {
        if self.out.is_empty() {
            return true;
        }
        super::aof::write_pending(&self.state);
        // A subscriber whose peer stopped reading must still be dropped when its mailbox
        // overflows, so the write races the mailbox's signal.
        let signal = self.mailbox_signal.clone();
        let mailbox = self.client.mailbox.clone();
        let overflow = async {
            loop {
                signal.notified().await;
                if mailbox.overflowed() {
                    break;
                }
            }
        };
        // And a client killed (CLIENT KILL, client eviction) while its peer does not read.
        let entry = self.entry.clone();
        let killed = async {
            loop {
                entry.kill_signal.notified().await;
                if entry.killed.load(Relaxed) {
                    break;
                }
            }
        };
        tokio::select! {
            written = stream.write_all(&self.out) => {
                if written.is_err() {
                    return false;
                }
            }
            _ = overflow => {
                self.take_mailbox();
                return false;
            }
            _ = killed => {
                return false;
            }
        }
        if mailbox.has_pending() {
            // The race above may have taken the wake-up meant for the connection loop.
            signal.notify_one();
        }
        self.state
            .stats
            .net_output_bytes
            .fetch_add(self.out.len() as u64, Relaxed);
        self.state
            .stats
            .total_writes_processed
            .fetch_add(1, Relaxed);
        self.out.clear();
        if self.out.capacity() > SHRINK_OUT_BYTES {
            self.out = BytesMut::with_capacity(READ_CHUNK);
        }
        self.report_memory(self.input_mem);
        true
    }

    /// Waits until the blocking command can be served, times out, or is unblocked, then
    /// queues its reply. False if the connection must close.
    async fn wait_blocked(&mut self, stream: &mut TcpStream, inbuf: &mut BytesMut) -> bool {
        let Some((args, block)) = self.blocked.take() else {
            return true;
        };
        let notify = Arc::new(tokio::sync::Notify::new());
        let waker: crate::commands::blocking::Waker = {
            let n = notify.clone();
            Arc::new(move || n.notify_one())
        };
        let keys: Vec<(usize, Box<[u8]>)> = block
            .keys
            .iter()
            .map(|k| (block.db, k[..].into()))
            .collect();
        let id = self.client.id;
        self.state.blocks.block(id, &keys, &waker);
        self.state.blocked_clients.fetch_add(1, Relaxed);
        self.entry.blocked.store(true, Relaxed);
        let deadline = (block.deadline_ms != 0).then(|| {
            let now_ms = unix_us() / 1000;
            tokio::time::Instant::now()
                + Duration::from_millis(block.deadline_ms.saturating_sub(now_ms))
        });
        let mut keep = true;
        let mut blocked_cmd = None;
        let reply = 'wait: loop {
            // While a script runs or a MIGRATE holds keys, the retry waits for it to end (Redis
            // serves blocked clients only between commands): on a client loop, waiting on
            // their shards would hold up every client of the loop, the one ending it included.
            while self.on_loop
                && (crate::commands::scripting::script_running() || self.state.migrate.holds_any())
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Something may have arrived between the first try and the registration.
            let saved_db = self.client.db;
            self.client.db = block.db;
            self.client.block_retry = true;
            let outcome = dispatch::execute(
                &self.state,
                &mut self.client,
                &args,
                unix_us(),
                self.is_local,
            );
            self.client.db = saved_db;
            self.client.block_retry = false;
            blocked_cmd = outcome.cmd.or(blocked_cmd);
            if outcome.postponed {
                self.state.pause.over().await;
                continue 'wait;
            }
            // A key that now holds another type does not serve the waiter (Redis only
            // serves a blocked client from a key of the type it waits for).
            let wrong_type = matches!(&outcome.reply, Reply::Error(e) if e.code() == "WRONGTYPE")
                && self.waited_key_has_other_type(&args, &block);
            if outcome.effects.blocked().is_none() && !wrong_type {
                break 'wait Some(outcome.reply);
            }
            loop {
                let timeout = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = notify.notified() => continue 'wait,
                    _ = timeout => break 'wait Some(block.timeout_reply.clone()),
                    _ = self.mailbox_signal.notified() => {
                        if !self.take_mailbox() || !self.flush(stream).await {
                            keep = false;
                            break 'wait None;
                        }
                    }
                    _ = self.entry.kill_signal.notified() => {
                        if self.entry.killed.load(Relaxed) {
                            keep = false;
                            break 'wait None;
                        }
                        match self.entry.unblock_request.swap(0, Relaxed) {
                            1 => break 'wait Some(block.timeout_reply.clone()),
                            2 => break 'wait Some(Reply::Error(crate::resp::ErrorReply::fixed(
                                "UNBLOCKED client unblocked via CLIENT UNBLOCK",
                            ))),
                            _ => {}
                        }
                    }
                    read = stream.read_buf(inbuf) => {
                        if !matches!(read, Ok(n) if n > 0) {
                            keep = false;
                            break 'wait None;
                        }
                    }
                }
            }
        };
        self.entry.blocked.store(false, Relaxed);
        self.state.blocked_clients.fetch_sub(1, Relaxed);
        self.state.blocks.unblock(id, &keys);
        if let Some(reply) = reply {
            if let Reply::Error(e) = &reply {
                self.state.count_error(e.code());
                // Redis's updateStatsOnUnblock: an error ends the blocked call as failed.
                if let Some(cmd) = blocked_cmd {
                    self.state.command_stats[cmd.id]
                        .failed_calls
                        .fetch_add(1, Relaxed);
                }
            }
            if self.client.reply_mode != ReplyMode::Off {
                encode(&reply, self.client.resp3, &mut self.out);
            }
        }
        keep
    }

    /// Holds the command CLIENT PAUSE postponed until the pause ends (its time runs out or
    /// CLIENT UNPAUSE), then runs it; the client counts as blocked meanwhile, as in Redis.
    /// Input keeps being read into `inbuf`. False if the connection is to close.
    async fn wait_postponed(&mut self, stream: &mut TcpStream, inbuf: &mut BytesMut) -> bool {
        let Some(args) = self.postponed.take() else {
            return true;
        };
        self.state.blocked_clients.fetch_add(1, Relaxed);
        self.entry.blocked.store(true, Relaxed);
        let mut keep = true;
        loop {
            tokio::select! {
                _ = self.state.pause.over() => break,
                _ = self.entry.kill_signal.notified() => {
                    if self.entry.killed.load(Relaxed) {
                        keep = false;
                        break;
                    }
                }
                read = stream.read_buf(inbuf) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        keep = false;
                        break;
                    }
                }
            }
        }
        self.entry.blocked.store(false, Relaxed);
        self.state.blocked_clients.fetch_sub(1, Relaxed);
        if keep {
            self.batch_commands = 0;
            self.batch_clock_us = None;
            self.run_command(&args);
            self.publish_stats();
        }
        keep
    }

    /// WAIT: asks the replicas for acknowledgements and waits until enough of them reached
    /// the client's offset, or the timeout; replies with the count. False if the connection
    /// is to close.
    async fn wait_acks(&mut self, stream: &mut TcpStream, inbuf: &mut BytesMut) -> bool {
        let Some(w) = self.waiting.take() else {
            return true;
        };
        super::replication_driver::request_acks(&self.state);
        self.state.blocked_clients.fetch_add(1, Relaxed);
        self.entry.blocked.store(true, Relaxed);
        let deadline = (w.deadline_ms != 0).then(|| {
            tokio::time::Instant::now()
                + Duration::from_millis(w.deadline_ms.saturating_sub(unix_us() / 1000))
        });
        let state = self.state.clone();
        let acked = || crate::commands::replication::count_acks(&state, w.offset);
        let reply = loop {
            let signal = state.ack_signal.notified();
            tokio::pin!(signal);
            signal.as_mut().enable();
            if acked() >= w.numreplicas {
                break Some(acked());
            }
            let timeout = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = signal => {}
                _ = timeout => break Some(acked()),
                _ = self.entry.kill_signal.notified() => {
                    if self.entry.killed.load(Relaxed) {
                        break None;
                    }
                    if self.entry.unblock_request.swap(0, Relaxed) != 0 {
                        break Some(acked());
                    }
                }
                read = stream.read_buf(inbuf) => {
                    if !matches!(read, Ok(n) if n > 0) {
                        break None;
                    }
                }
            }
        };
        self.entry.blocked.store(false, Relaxed);
        self.state.blocked_clients.fetch_sub(1, Relaxed);
        match reply {
            Some(n) => {
                if self.client.reply_mode != ReplyMode::Off {
                    encode(&Reply::Int(n), self.client.resp3, &mut self.out);
                }
                true
            }
            None => false,
        }
    }

    /// Whether a key the client waits on now holds a value of another type than the one its
    /// command pops (sorted sets for BZ*, lists otherwise).
    fn waited_key_has_other_type(
        &self,
        args: &[Bytes],
        block: &crate::commands::context::Block,
    ) -> bool {
        let wanted = if args[0].len() > 2 && args[0][..2].eq_ignore_ascii_case(b"bz") {
            "zset"
        } else {
            "list"
        };
        block.keys.iter().any(|key| {
            let shard = self.state.keyspace.shard_of(crate::slot::key_slot(key));
            let mut locked = self.state.keyspace.lock(&[shard]);
            locked
                .peek(block.db, key)
                .is_some_and(|e| e.value.type_name() != wanted)
        })
    }

    fn process_input(
        &mut self,
        inbuf: &mut BytesMut,
        decoder: &mut RequestDecoder,
        stream: &TcpStream,
    ) {
        self.process_input_at(inbuf, decoder, stream, None);
    }

    /// `process_input` for input read at `read_us`, which is also the first command's start.
    fn process_input_at(
        &mut self,
        inbuf: &mut BytesMut,
        decoder: &mut RequestDecoder,
        stream: &TcpStream,
        read_us: Option<u64>,
    ) {
        self.batch_commands = 0;
        self.batch_clock_us = read_us;
        self.run_input(inbuf, decoder, stream);
        self.batch_clock_us = None;
        self.publish_stats();
    }

    fn run_input(
        &mut self,
        inbuf: &mut BytesMut,
        decoder: &mut RequestDecoder,
        stream: &TcpStream,
    ) {
        let mut args = std::mem::take(&mut self.args);
        self.run_requests(inbuf, decoder, stream, &mut args);
        self.report_memory(inbuf.capacity() + decoder.partial_bytes());
        args.clear();
        if args.capacity() <= KEPT_ARGS {
            self.args = args;
        }
    }

    /// Runs the complete requests in `inbuf`, each decoded into `args`.
    fn run_requests(
        &mut self,
        inbuf: &mut BytesMut,
        decoder: &mut RequestDecoder,
        stream: &TcpStream,
        args: &mut Vec<Bytes>,
    ) {
        let evicting = self.state.client_eviction_limit() != 0;
        loop {
            // Replies piling up while a pipeline runs go out as they can: a peer that has gone
            // away is noticed here, before the rest of its pipeline inflates the buffer.
            if self.out.len() > EARLY_WRITE_BYTES && !self.write_ready(stream) {
                self.close = true;
                return;
            }
            // Client eviction must see the buffers grow command by command; otherwise the
            // figure is brought up to date once the batch is done.
            if evicting {
                self.report_memory(inbuf.capacity() + decoder.partial_bytes());
            }
            if self.close
                || self.replica.is_some()
                || self.blocked.is_some()
                || self.waiting.is_some()
                || self.postponed.is_some()
                || self.relocate.is_some()
                || self.entry.killed.load(Relaxed)
            {
                return;
            }
            let limits = DecodeLimits {
                proto_max_bulk_len: self.cfg().proto_max_bulk_len,
                authenticated: self.client.authenticated || !self.state.acl.auth_required(),
            };
            match decoder.decode_into(inbuf, limits, args) {
                Ok(Some(_)) => {
                    self.run_command(args);
                    // The arguments' hold on the query buffer ends with their command.
                    args.clear();
                }
                Ok(None) => return,
                Err(e) => {
                    log_at!(
                        Verbose,
                        "Protocol error ({}) from client: id={} addr={}",
                        e.0.trim_start_matches("Protocol error: "),
                        self.client.id,
                        self.client.addr
                    );
                    self.state.count_error("ERR");
                    encode(
                        &Reply::Error(crate::resp::ErrorReply::owned(format!("ERR {}", e.0))),
                        self.client.resp3,
                        &mut self.out,
                    );
                    self.close = true;
                    return;
                }
            }
        }
    }

    /// Adds the pending command statistics to the shared counters.
    fn publish_stats(&mut self) {
        if self.pending_stats.is_empty() {
            return;
        }
        let latency_tracking = self.config.get(&self.state.config).latency_tracking;
        let state = &self.state;
        state
            .stats
            .total_commands_processed
            .fetch_add(self.pending_stats.len() as u64, Relaxed);
        // A pipeline repeats one command: its samples are summed per command, and the latency
        // histogram takes each run of equal durations at once.
        for run in self.pending_stats.chunk_by(|a, b| a.0 == b.0) {
            let cs = &state.command_stats[run[0].0];
            cs.calls.fetch_add(run.len() as u64, Relaxed);
            cs.usec.fetch_add(run.iter().map(|s| s.1).sum(), Relaxed);
            let failed = run.iter().filter(|s| s.2).count() as u64;
            if failed > 0 {
                cs.failed_calls.fetch_add(failed, Relaxed);
            }
            if latency_tracking {
                // Most commands take 0 to 3 microseconds: those are counted here first.
                let histogram = state.latency[run[0].0].get_or_init(Default::default);
                let mut short = [0u64; 4];
                for &(_, usec, _) in run {
                    match short.get_mut(usec as usize) {
                        Some(n) => *n += 1,
                        None => histogram.record_n(usec * 1000, 1),
                    }
                }
                for (usec, &n) in short.iter().enumerate() {
                    if n > 0 {
                        histogram.record_n(usec as u64 * 1000, n);
                    }
                }
            }
        }
        self.pending_stats.clear();
    }

    /// Only data commands leave their statistics pending, and only while the same command
    /// repeats: anything else (INFO, CONFIG RESETSTAT, ...) first sees every count before it.
    fn publish_stats_before(&mut self, args: &[Bytes]) {
        let Some(&(id, _, _)) = self.pending_stats.last() else {
            return;
        };
        let same = args.first().is_some_and(|name| {
            self.state
                .commands
                .fullname_of(id)
                .as_bytes()
                .eq_ignore_ascii_case(name)
        });
        if !same || self.pending_stats.len() >= PENDING_STATS_MAX {
            self.publish_stats();
        }
    }

    fn run_command(&mut self, args: &[Bytes]) {
        if self.on_loop && needs_pool(&self.state, &self.client, args) {
            self.relocate = Some(args.to_vec());
            return;
        }
        self.batch_commands += 1;
        self.publish_stats_before(args);
        if self.client.reply_mode == ReplyMode::SkipNext {
            self.client.reply_mode = ReplyMode::Skip;
        }
        // Within a batch the previous command's end is this one's start: one clock read per
        // command, as the gap between them is only the reply's encoding.
        let now_us = match self.batch_clock_us.take() {
            Some(t) => t,
            None => unix_us(),
        };
        // (On a client loop such a command never gets here: the connection moved first.)
        let mut outcome = if !self.on_loop
            && needs_pool(&self.state, &self.client, args)
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            // A script may run for long, and a command arriving while one runs may wait for
            // its shards: hand this worker's other tasks to another thread so the remaining
            // clients keep being served (and get BUSY once the script is timed out).
            tokio::task::block_in_place(|| {
                dispatch::execute(&self.state, &mut self.client, args, now_us, self.is_local)
            })
        } else {
            let config = self.config.get(&self.state.config);
            dispatch::execute_with(
                &self.state,
                config,
                &mut self.client,
                args,
                now_us,
                self.is_local,
            )
        };
        if outcome.postponed {
            // Not run: it runs again, and is counted, once the pause is over.
            self.postponed = Some(args.to_vec());
            return;
        }
        let mut requests = outcome.effects.requests.take();
        if let Some(job) = requests.as_deref_mut().and_then(|r| r.migrate.take()) {
            outcome = self.finish_migrate(*job, args);
            requests = outcome.effects.requests.take();
        }
        if let Some(r) = requests.as_deref_mut() {
            self.take_requests(r, args, &mut outcome.reply);
        }
        // Like Redis, a command's duration is measured in microseconds.
        let end_us = unix_us();
        self.batch_clock_us = Some(end_us);
        let elapsed_us = end_us.saturating_sub(now_us);
        self.account(&outcome, args, elapsed_us);
        self.feed_monitors(&outcome, args, now_us);
        self.entry.no_evict.store(self.client.no_evict, Relaxed);
        // Messages this command published to its own client go out before its reply, or
        // after it for the commands whose reply Redis adds first, or around it where the
        // command marked its reply's place among its events.
        self.client.mailbox.set_resp3(self.client.resp3);
        let events_after = outcome
            .cmd
            .is_some_and(|c| c.spec.has(flag::REPLY_BEFORE_EVENTS));
        if !events_after && self.client.mailbox.has_pending() {
            let mut reply = BytesMut::new();
            self.encode_reply(&outcome.reply, &mut reply);
            if self
                .client
                .mailbox
                .drain_around(&reply, &mut self.out)
                .is_err()
            {
                self.note_output_limit_close();
                self.close = true;
                return;
            }
        } else {
            let mut out = std::mem::take(&mut self.out);
            self.encode_reply(&outcome.reply, &mut out);
            self.out = out;
            if events_after && self.client.mailbox.has_pending() && !self.take_mailbox() {
                return;
            }
        }
        // The outcome stays where it is: only its one flag goes on.
        self.apply_effects(outcome.effects.close_after_reply, requests);
    }

    /// MIGRATE's exchange with its target, outside every lock, then the command's second run,
    /// which deletes what the target accepted and gives the reply.
    fn finish_migrate(
        &mut self,
        job: crate::commands::migrate::MigrateJob,
        args: &[Bytes],
    ) -> Outcome {
        let done = super::migrate::exchange(&self.state, &job);
        self.client.migrate_done = Some(done);
        let outcome = dispatch::execute(
            &self.state,
            &mut self.client,
            args,
            unix_us(),
            self.is_local,
        );
        self.client.migrate_done = None;
        self.state.migrate.release(job.db, &job.keys);
        outcome
    }

    /// Encodes a command's reply as the client's reply mode allows.
    fn encode_reply(&mut self, reply: &Reply, out: &mut BytesMut) {
        // Subscription confirmations are pushes: they ignore CLIENT REPLY OFF / SKIP.
        let pushing = match reply {
            Reply::Push(_) => true,
            Reply::Multi(items) => items.iter().all(|r| matches!(r, Reply::Push(_))),
            _ => false,
        };
        match self.client.reply_mode {
            ReplyMode::On | ReplyMode::SkipNext => encode(reply, self.client.resp3, out),
            ReplyMode::Off | ReplyMode::Skip => {
                if pushing {
                    encode(reply, self.client.resp3, out);
                }
                if self.client.reply_mode == ReplyMode::Skip {
                    self.client.reply_mode = ReplyMode::On;
                }
            }
        }
    }

    fn account(&mut self, outcome: &Outcome, args: &[Bytes], elapsed_us: u64) {
        let threshold = self.config.get(&self.state.config).slowlog_log_slower_than;
        let state = &self.state;
        if let Reply::Error(e) = &outcome.reply {
            if !outcome.effects.error_counted {
                state.count_error(e.code());
            }
        }
        let Some(cmd) = outcome.cmd else { return };
        self.last_cmd = cmd.fullname.as_str();
        let cs = &state.command_stats[cmd.id];
        if outcome.rejected {
            cs.rejected_calls.fetch_add(1, Relaxed);
            return;
        }
        if outcome.queued {
            return;
        }
        let keyed = cmd.spec.scope == crate::commands::spec::Scope::Keys;
        self.pending_stats
            .push((cmd.id, elapsed_us, outcome.reply.is_error()));
        if !keyed {
            self.publish_stats();
        }
        let state = &self.state;
        if threshold >= 0 && elapsed_us >= threshold as u64 && !cmd.spec.has(flag::SKIP_SLOWLOG) {
            match cmd.fullname.as_str() {
                "migrate" => {
                    let shown = crate::commands::migrate::redacted(args);
                    super::slowlog::record(state, &self.client, &shown, elapsed_us)
                }
                _ => super::slowlog::record(state, &self.client, args, elapsed_us),
            }
        }
    }

    fn feed_monitors(&self, outcome: &Outcome, args: &[Bytes], now_us: u64) {
        if self.state.monitor_count.load(Relaxed) == 0 || outcome.rejected || outcome.queued {
            return;
        }
        match outcome.cmd {
            Some(cmd) if !cmd.spec.has(flag::SKIP_MONITOR | flag::ADMIN) => {
                let shown;
                let args = match cmd.fullname.as_str() {
                    "migrate" => {
                        shown = crate::commands::migrate::redacted(args);
                        &shown[..]
                    }
                    _ => args,
                };
                let line =
                    super::monitor::format_line(now_us, self.client.db, &self.client.addr, args);
                super::monitor::feed(&self.state, line);
            }
            _ => {}
        }
    }

    /// The requests that shape this command's reply or the connection's next state: waiting
    /// for acknowledgements or keys, and file work done before the reply is final.
    fn take_requests(&mut self, r: &mut Requests, args: &[Bytes], reply: &mut Reply) {
        if let Some(w) = r.wait_acks.take() {
            self.waiting = Some(w);
        }
        if let Some(mut block) = r.block.take() {
            let retry = block.retry_args.take().unwrap_or_else(|| args.to_vec());
            self.blocked = Some((retry, block));
        }
        match r.persistence.take() {
            Some(PersistenceRequest::RewriteAof)
                if !super::aof::start_rewrite(&self.state, false) =>
            {
                *reply = Reply::Error(crate::commands::errors::AOF_REWRITE_IN_PROGRESS);
            }
            Some(PersistenceRequest::Save) => {
                if let Err(e) = super::rdb_save::save(&self.state) {
                    *reply = Reply::Error(crate::resp::ErrorReply::fixed(e));
                }
            }
            Some(PersistenceRequest::Bgsave) => {
                if let Err(e) = super::rdb_save::start_bgsave(&self.state) {
                    *reply = Reply::Error(crate::resp::ErrorReply::fixed(e));
                }
            }
            Some(PersistenceRequest::Reload { save, flush, merge }) => {
                if let Err(e) = super::rdb_load::debug_reload(&self.state, save, flush, merge) {
                    *reply = Reply::Error(e);
                }
            }
            Some(PersistenceRequest::LoadAof) => {
                // Other clients are answered (-LOADING) meanwhile: this worker's other tasks
                // move to another thread for the load.
                let load = || super::aof::debug_loadaof(&self.state);
                let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                    h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                });
                let loaded = match multi_thread {
                    true => tokio::task::block_in_place(load),
                    false => load(),
                };
                if let Err(e) = loaded {
                    // Redis exits rather than serve a partial dataset.
                    crate::log_at!(Warning, "{}", e);
                    std::process::exit(1);
                }
            }
            _ => {}
        }
        if let Some(req) = r.shutdown {
            if !super::prepare_shutdown(&self.state, req.save, req.force) {
                *reply = Reply::Error(crate::commands::errors::SHUTDOWN_ERRORS);
                r.shutdown = None;
            }
        }
        if let Some(path) = r.rewrite_config.take() {
            if let Err(e) = super::rewrite_config_file(&self.state, &path) {
                *reply = Reply::Error(crate::resp::ErrorReply::owned(format!(
                    "ERR Rewriting config file: {e}"
                )));
            }
        }
    }

    fn apply_effects(&mut self, close_after_reply: bool, requests: Option<Box<Requests>>) {
        if close_after_reply {
            self.close = true;
        }
        let Some(r) = requests else { return };
        if r.replica_sync.is_some() && self.monitor_rx.is_none() {
            self.replica = r.replica_sync;
        }
        if r.start_monitor && self.monitor_rx.is_none() {
            self.monitor_rx = Some(super::monitor::register(&self.state, self.client.id));
        }
        for id in r.kill_clients {
            // A killed replica's queue is freed now, as Redis frees its output buffer.
            self.state.backlog.lock().detach(id);
            if let Some(c) = self.state.clients.lock().get(&id) {
                c.killed.store(true, Relaxed);
                c.kill_signal.notify_one();
            }
        }
        if !r.config_changed.is_empty() {
            super::apply_config_changes(&self.state, &r.config_changed);
        }
        if let Some(req) = r.shutdown {
            super::request_shutdown(&self.state, req);
            self.close = true;
        }
    }

    /// Refreshes what CLIENT LIST shows about this connection to other clients.
    fn publish_view(&mut self, qbuf: usize, in_use: usize) {
        let c = &self.client;
        let user_id = std::sync::Arc::as_ptr(&c.user) as usize;
        // Compared in place: the copy is made only when something changed.
        let meta_changed = self.published_meta.as_ref().is_none_or(|m| {
            m.0 != c.name
                || m.1 != c.lib_name
                || m.2 != c.lib_ver
                || m.3 != c.monitor
                || m.4 != c.subscriptions.active()
                || m.5 != self.replica.is_some()
                || m.6 != user_id
        });
        let mut v = self.entry.view.lock();
        if meta_changed {
            let text = |b: &Option<Bytes>| {
                b.as_ref()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default()
            };
            v.id = c.id;
            v.addr.clone_from(&c.addr);
            v.laddr.clone_from(&c.laddr);
            v.fd = c.fd;
            v.created_ms = c.created_ms;
            v.name = text(&c.name);
            v.lib_name = text(&c.lib_name);
            v.lib_ver = text(&c.lib_ver);
            v.flags = if self.replica.is_some() {
                "S".into()
            } else if c.monitor {
                "O".into()
            } else if c.subscriptions.active() {
                "P".into()
            } else {
                "N".into()
            };
            v.user = c.user.name_text();
        }
        v.last_interaction_ms = self.last_interaction_ms;
        v.db = c.db;
        v.sub = c.subscriptions.channels.len();
        v.psub = c.subscriptions.patterns.len();
        v.ssub = c.subscriptions.shard_channels.len();
        v.multi = c.multi.as_ref().map_or(-1, |m| m.queued.len() as i64);
        v.note_query_buffer(qbuf, in_use);
        v.last_cmd = self.last_cmd;
        v.resp = if c.resp3 { 3 } else { 2 };
        drop(v);
        if meta_changed {
            self.published_meta = Some((
                c.name.clone(),
                c.lib_name.clone(),
                c.lib_ver.clone(),
                c.monitor,
                c.subscriptions.active(),
                self.replica.is_some(),
                user_id,
            ));
        }
    }
}

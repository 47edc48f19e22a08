//! The cluster driver: the only place where cluster mode touches sockets, timers and files.
//! At startup it loads nodes.conf (or creates a fresh identity and saves it), binds the bus
//! port, and then moves bytes and time into the pure `ClusterMachine` and carries out what it
//! answers: frames to queue on links, links to open and close, nodes.conf to write (atomically:
//! temporary file, fsync, rename), a routing Topology to publish, log lines. This mirrors the
//! I/O half of Redis's cluster.c (clusterInit, clusterLoadConfig / clusterSaveConfig,
//! clusterAcceptHandler, clusterReadHandler / clusterWriteHandler, the 100 ms clusterCron).
//!
//! The machine sits behind a mutex in `ServerState::cluster`, so CLUSTER subcommands step it
//! synchronously and render from its table. I/O effects produced by any step (a command's or
//! a link's) are dispatched at once: frames go into the link's queue and wake its task; a
//! connect is spawned on the runtime. Lock order: shard locks, then the machine, then the link
//! table; nothing here takes a shard lock.

use crate::cluster::bus::{self, BusError, Message};
use crate::cluster::machine::{Admin, ClusterMachine, Effect, Input, MachineConfig};
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::nodes_conf::{self, CLUSTER_PORT_INCR};
use crate::cluster::render::{BusStats, MESSAGE_TYPE_COUNT};
use crate::cluster::state::{ClusterNode, ClusterState, Health, LinkId, SlotBitmap, CLUSTER_SLOTS};
use crate::cluster::topology::{NodeSpec, Topology};
use crate::config::Config;
use crate::log_at;
use crate::resp::{ErrorReply, Reply};
use bytes::BytesMut;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::state::ServerState;

/// Bytes read from a link per call.
const READ_CHUNK: usize = 16 * 1024;

/// What a link task and the dispatcher share: the queue of encoded frames to write, and
/// whether the machine closed the link.
#[derive(Default)]
struct LinkShared {
    /// When the link was created (ms), for CLUSTER LINKS.
    ctime_ms: u64,
    /// The socket is up (an outbound link is not until its connect completes).
    connected: AtomicBool,
    out: Mutex<OutQueue>,
    wake: tokio::sync::Notify,
    /// Closed by the machine (`Effect::Close`) or by the send-buffer limit: the task ends
    /// without reporting `LinkClosed`.
    closed: AtomicBool,
}

#[derive(Default)]
struct OutQueue {
    frames: VecDeque<Vec<u8>>,
    /// Bytes queued and not yet handed to the socket (Redis's `send_msg_queue_mem`).
    bytes: usize,
}

/// The cluster half of the server state: the machine, its bus counters, the live links and
/// the file it persists to.
pub struct ClusterHandle {
    pub machine: Mutex<ClusterMachine>,
    stats: Mutex<BusStats>,
    links: Mutex<HashMap<LinkId, Arc<LinkShared>>>,
    /// nodes.conf; `None` in handler tests, which write no file.
    conf_path: Option<PathBuf>,
    /// Where connects are spawned; `None` in handler tests (no runtime, no I/O).
    runtime: Option<tokio::runtime::Handle>,
    /// The server this handle belongs to (it holds the handle), for spawned link tasks.
    server: Weak<ServerState>,
    /// The last nodes.conf text rendered (numbered under the machine lock) and the newest
    /// one written.
    conf_generation: AtomicU64,
    conf_written: Mutex<u64>,
    /// The slots myself or my master served at the last topology change.
    served: Mutex<SlotBitmap>,
}

/// CLUSTER LINKS facts the driver holds.
#[derive(Clone, Copy, Debug)]
pub struct LinkInfo {
    pub ctime_ms: u64,
    pub connected: bool,
    pub queued_bytes: usize,
}

/// Work on the dataset the machine asks for. It needs every shard lock, which a CLUSTER
/// command may already hold, so the caller of a step decides how it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyspaceWork {
    /// Empty the dataset (CLUSTER RESET of a replica).
    FlushAll,
    /// Delete the keys left in slots another node took over.
    DeleteKeysInSlots(Vec<crate::cluster::state::Slot>),
}

impl KeyspaceWork {
    /// Applies the work on the locked keyspace.
    pub fn apply(&self, ks: &mut crate::keyspace::Locked<'_>) {
        match self {
            KeyspaceWork::FlushAll => {
                for db in 0..ks.databases() {
                    ks.flush_db(db);
                }
            }
            KeyspaceWork::DeleteKeysInSlots(slots) => {
                for &slot in slots {
                    let keys: Vec<Vec<u8>> = ks
                        .slot_table_ref(0, slot)
                        .map(|t| t.iter().map(|(k, _)| k.to_vec()).collect())
                        .unwrap_or_default();
                    for key in keys {
                        ks.remove(0, &key);
                    }
                }
            }
        }
    }
}

/// The outcome of carrying out one step's effects outside the machine lock.
struct Pending {
    effects: Vec<Effect>,
    /// nodes.conf text, whether to fsync, and its generation.
    save: Option<(String, bool, u64)>,
    /// Slots myself (or my master) stopped serving: their shard channels are dropped.
    lost_slots: Vec<u16>,
    /// `Some(None)`: stop replicating; `Some(Some(addr))`: replicate from addr.
    master: Option<Option<(String, u16)>>,
}

impl ClusterHandle {
    /// A handle over `machine`, persisting to `conf_path`; links are spawned on the current
    /// runtime, if any (handler tests have none and do no I/O).
    pub fn new(
        machine: ClusterMachine,
        conf_path: Option<PathBuf>,
        server: Weak<ServerState>,
    ) -> ClusterHandle {
        ClusterHandle {
            machine: Mutex::new(machine),
            stats: Mutex::new(BusStats::default()),
            links: Mutex::new(HashMap::new()),
            conf_path,
            runtime: tokio::runtime::Handle::try_current().ok(),
            server,
            conf_generation: AtomicU64::new(0),
            conf_written: Mutex::new(0),
            served: Mutex::new(SlotBitmap::default()),
        }
    }

    /// The counters CLUSTER INFO shows: the machine's per-type counts, plus frames of a
    /// known type that did not decode (Redis counts them before checking their length).
    pub fn stats(&self) -> BusStats {
        let mut stats = *self.stats.lock();
        let machine = self.machine.lock();
        for i in 0..MESSAGE_TYPE_COUNT.min(machine.stats_sent.len()) {
            stats.sent[i] += machine.stats_sent[i];
            stats.received[i] += machine.stats_received[i];
        }
        stats
    }

    /// Steps the machine with one input and carries out its effects (and those of the
    /// link closures they cause).
    pub fn step(&self, server: &ServerState, now_ms: u64, input: Input) {
        let mut queue = vec![input];
        let mut keyspace = Vec::new();
        while let Some(input) = queue.pop() {
            let pending = {
                let mut machine = self.machine.lock();
                machine.repl_offset = server.backlog.lock().end_offset();
                let effects = machine.step(now_ms, input);
                self.prepare(server, &machine, effects.effects)
            };
            self.carry_out(server, pending, &mut queue, &mut keyspace);
        }
        if !keyspace.is_empty() {
            let mut ks = server.keyspace.lock_all();
            for work in &keyspace {
                work.apply(&mut ks);
            }
        }
    }

    /// Builds and publishes the topology again (CONFIG SET of a directive it reads, such as
    /// `cluster-preferred-endpoint-type`, that the machine does not see).
    pub fn republish_topology(&self, server: &ServerState) {
        let machine = self.machine.lock();
        let topology = build_topology(&machine.state, &server.config());
        server.publish_topology(Some(Arc::new(topology)));
    }

    /// Records which slots myself or my master serve now; returns those no longer served.
    fn note_served_slots(&self, state: &ClusterState) -> Vec<u16> {
        let me = state.myself();
        let serving = [Some(me.name), me.slaveof.filter(|_| me.is_replica())];
        let mut now = SlotBitmap::default();
        for (slot, owner) in state.slot_owners().iter().enumerate() {
            if owner.is_some() && serving.contains(owner) {
                now.set(slot as u16);
            }
        }
        let mut served = self.served.lock();
        let lost = (0..CLUSTER_SLOTS as u16)
            .filter(|&s| served.get(s) && !now.get(s))
            .collect();
        *served = now;
        lost
    }

    /// Hands the machine the configuration when it differs from what the machine has. CONFIG
    /// SET calls it at once (Redis applies announced ports and names within the command, so
    /// the next CLUSTER NODES shows them); the tick checks too.
    pub fn sync_config(&self, server: &ServerState) {
        let current = machine_config(&server.config());
        if self.machine.lock().config != current {
            self.step(server, now_ms(), Input::Config(current));
        }
    }

    /// Runs `f` on the node table (read-only views: NODES, SLOTS, INFO, ...).
    pub fn with_state<T>(&self, f: impl FnOnce(&mut ClusterState) -> T) -> T {
        f(&mut self.machine.lock().state)
    }

    /// What CLUSTER LINKS shows about a live link: creation time, whether the socket is up,
    /// and the bytes waiting to be written.
    pub fn link_info(&self, link: LinkId) -> Option<LinkInfo> {
        let shared = self.links.lock().get(&link).cloned()?;
        let queued = shared.out.lock().bytes;
        Some(LinkInfo {
            ctime_ms: shared.ctime_ms,
            connected: shared.connected.load(Relaxed),
            queued_bytes: queued,
        })
    }

    /// Checks a CLUSTER subcommand against the table and steps the machine with the admin
    /// input it yields, under one lock so nothing changes between the two. `check` returns
    /// the input, or the error reply (then nothing is stepped).
    /// Dataset work the step asks for goes to `keyspace` (the command holds the shards).
    pub fn admin_checked(
        &self,
        server: &ServerState,
        now_ms: u64,
        keyspace: &mut Vec<KeyspaceWork>,
        check: impl FnOnce(&ClusterState) -> Result<Admin, ErrorReply>,
    ) -> Result<Reply, ErrorReply> {
        let save;
        let (pending, reply) = {
            let mut machine = self.machine.lock();
            machine.repl_offset = server.backlog.lock().end_offset();
            let admin = check(&machine.state)?;
            save = matches!(admin, Admin::SaveConfig);
            let effects = machine.step(now_ms, Input::Admin(admin));
            let pending = self.prepare(server, &machine, effects.effects);
            (pending, effects.reply)
        };
        let mut followups = Vec::new();
        let failed_save = self.carry_out(server, pending, &mut followups, keyspace);
        for input in followups {
            self.step(server, now_ms, input);
        }
        if save {
            return match (failed_save, reply) {
                (Some(e), _) => Err(e),
                (None, Some(r)) => r,
                (None, None) => self
                    .save_now()
                    .map(|_| Reply::OK)
                    .map_err(|e| save_error(&e)),
            };
        }
        reply.unwrap_or(Ok(Reply::OK))
    }

    /// Steps an admin command that needs no check against the table; the command holds no
    /// shard lock, so dataset work is done here.
    pub fn admin(
        &self,
        server: &ServerState,
        now_ms: u64,
        admin: Admin,
    ) -> Result<Reply, ErrorReply> {
        let mut keyspace = Vec::new();
        let reply = self.admin_checked(server, now_ms, &mut keyspace, |_| Ok(admin));
        if !keyspace.is_empty() {
            let mut ks = server.keyspace.lock_all();
            for work in &keyspace {
                work.apply(&mut ks);
            }
        }
        reply
    }

    /// Renders what must be rendered under the lock (nodes.conf text, the topology).
    fn prepare(
        &self,
        server: &ServerState,
        machine: &ClusterMachine,
        effects: Vec<Effect>,
    ) -> Pending {
        let mut pending = Pending {
            effects: Vec::with_capacity(effects.len()),
            save: None,
            lost_slots: Vec::new(),
            master: None,
        };
        for effect in effects {
            match effect {
                Effect::SaveConfig { fsync } => {
                    let fsync = fsync || pending.save.as_ref().is_some_and(|s| s.1);
                    let generation = self.conf_generation.fetch_add(1, Relaxed) + 1;
                    pending.save = Some((nodes_conf::render(&machine.state), fsync, generation));
                }
                // Published under the machine lock: two steps on two threads publish in the
                // order they stepped, so routing never goes back to an older table.
                Effect::TopologyChanged => {
                    server.publish_topology(Some(Arc::new(build_topology(
                        &machine.state,
                        &server.config(),
                    ))));
                    pending.lost_slots = self.note_served_slots(&machine.state);
                }
                Effect::BecomeReplica { master } => {
                    pending.master = machine
                        .state
                        .node(&master)
                        .map(|m| Some((m.ip.clone(), m.port)));
                }
                Effect::BecomeMaster => pending.master = Some(None),
                other => pending.effects.push(other),
            }
        }
        pending
    }

    /// Carries out effects in order; links closed for their send buffer are reported back
    /// to the machine through `followups`. Returns the save error, if a save failed.
    fn carry_out(
        &self,
        server: &ServerState,
        pending: Pending,
        followups: &mut Vec<Input>,
        keyspace: &mut Vec<KeyspaceWork>,
    ) -> Option<ErrorReply> {
        let mut failed = None;
        if let Some(target) = pending.master {
            super::replica_driver::set_master(server, target);
        }
        if !pending.lost_slots.is_empty() {
            crate::commands::pubsub::drop_shard_slots(server, &pending.lost_slots, now_ms());
        }
        if let Some((text, fsync, generation)) = pending.save {
            if let Err(e) = self.write_conf(&text, fsync, generation) {
                log_at!(
                    Warning,
                    "Could not save the cluster node config: {}",
                    io_text(&e)
                );
                failed = Some(save_error(&e));
            }
        }
        for effect in pending.effects {
            match effect {
                Effect::Send { link, message } => {
                    if let Some(closed) = self.queue_frame(server, link, &message) {
                        followups.push(Input::LinkClosed { link: closed });
                    }
                }
                Effect::Close { link } => self.close_link(link),
                Effect::Connect { link, ip, cport } => self.connect(server, link, ip, cport),
                Effect::Log { level, text } => log_level(level, &text),
                Effect::Publish {
                    shard,
                    channel,
                    message,
                } => crate::commands::pubsub::deliver_from_bus(
                    server,
                    shard,
                    channel,
                    message,
                    now_ms(),
                ),
                Effect::FlushAll => keyspace.push(KeyspaceWork::FlushAll),
                Effect::DeleteKeysInSlots(slots) => {
                    keyspace.push(KeyspaceWork::DeleteKeysInSlots(slots))
                }
                Effect::SaveConfig { .. }
                | Effect::TopologyChanged
                | Effect::BecomeReplica { .. }
                | Effect::BecomeMaster => {}
            }
        }
        failed
    }

    /// Encodes and queues a frame; returns the link if this frame pushed it over
    /// `cluster-link-sendbuf-limit` (the link is then freed).
    fn queue_frame(&self, server: &ServerState, link: LinkId, message: &Message) -> Option<LinkId> {
        let shared = self.links.lock().get(&link).cloned()?;
        if shared.closed.load(Relaxed) {
            return None;
        }
        let frame = bus::encode(message);
        let limit = server.config().cluster_link_sendbuf_limit as usize;
        let over = {
            let mut q = shared.out.lock();
            q.bytes += frame.len();
            q.frames.push_back(frame);
            limit > 0 && q.bytes > limit
        };
        if over {
            let used = shared.out.lock().bytes;
            let (inbound, node) = self
                .machine
                .lock()
                .links()
                .into_iter()
                .find(|(id, _, _)| *id == link)
                .map_or((false, None), |(_, node, inbound)| (inbound, node));
            log_at!(
                Warning,
                "Freeing cluster link({} node {}, used memory: {}) due to exceeding send buffer memory limit.",
                if inbound { "from" } else { "to" },
                node.as_ref().map_or("", |n| n.as_str()),
                used
            );
            self.stats.lock().links_buffer_limit_exceeded += 1;
            self.close_link(link);
            return Some(link);
        }
        shared.wake.notify_one();
        None
    }

    fn close_link(&self, link: LinkId) {
        if let Some(shared) = self.links.lock().remove(&link) {
            shared.closed.store(true, Relaxed);
            shared.wake.notify_one();
        }
    }

    fn register(&self, link: LinkId) -> Arc<LinkShared> {
        let shared = Arc::new(LinkShared {
            ctime_ms: now_ms(),
            ..LinkShared::default()
        });
        self.links.lock().insert(link, shared.clone());
        shared
    }

    /// Opens an outbound link (frames the machine queues meanwhile wait for it).
    fn connect(&self, server: &ServerState, link: LinkId, ip: String, cport: u16) {
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        let Some(state) = self.server.upgrade() else {
            return;
        };
        let shared = self.register(link);
        let timeout_ms = (server.config().cluster_node_timeout.max(0) as u64).max(1);
        runtime.spawn(async move {
            let addr = if ip.contains(':') {
                format!("[{ip}]:{cport}")
            } else {
                format!("{ip}:{cport}")
            };
            let attempt =
                tokio::time::timeout(Duration::from_millis(timeout_ms), TcpStream::connect(addr))
                    .await;
            let Some(handle) = state.cluster.get().cloned() else {
                return;
            };
            match attempt {
                Ok(Ok(stream)) if !shared.closed.load(Relaxed) => {
                    let _ = stream.set_nodelay(true);
                    shared.connected.store(true, Relaxed);
                    handle.step(&state, now_ms(), Input::Connected { link });
                    run_link(state, handle, link, shared, stream).await;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    log_at!(
                        Verbose,
                        "Connection with Node at {ip}:{cport} failed: {}",
                        io_text(&e)
                    );
                    handle.lost(&state, link, &shared);
                }
                Err(_) => {
                    log_at!(Verbose, "Connection with Node at {ip}:{cport} timed out");
                    handle.lost(&state, link, &shared);
                }
            }
        });
    }

    /// A link went away on its own: forget it and tell the machine (unless the machine
    /// closed it itself).
    fn lost(&self, server: &ServerState, link: LinkId, shared: &LinkShared) {
        if shared.closed.swap(true, Relaxed) {
            return;
        }
        self.links.lock().remove(&link);
        self.step(server, now_ms(), Input::LinkClosed { link });
    }

    /// Writes nodes.conf now from the current table (CLUSTER SAVECONFIG without a machine
    /// answer, shutdown).
    pub fn save_now(&self) -> std::io::Result<()> {
        let (text, generation) = {
            let machine = self.machine.lock();
            let generation = self.conf_generation.fetch_add(1, Relaxed) + 1;
            (nodes_conf::render(&machine.state), generation)
        };
        self.write_conf(&text, true, generation)
    }

    /// Writes nodes.conf text rendered under the machine lock as `generation`; saves run
    /// one at a time, and one older than the file already written is skipped (two steps on
    /// two threads may reach here in either order).
    fn write_conf(&self, text: &str, fsync: bool, generation: u64) -> std::io::Result<()> {
        let Some(path) = &self.conf_path else {
            return Ok(());
        };
        let mut written = self.conf_written.lock();
        if generation < *written {
            return Ok(());
        }
        write_atomically(path, text.as_bytes(), fsync)?;
        *written = generation;
        Ok(())
    }

    fn count_undecoded(&self, frame: &[u8]) {
        // Redis counts a frame by its type once the version is right, before checking the
        // body's length: bytes 8..10 are the version, 12..14 the type.
        if frame.len() < 14 || u16::from_be_bytes([frame[8], frame[9]]) != 1 {
            return;
        }
        let t = u16::from_be_bytes([frame[12], frame[13]]) as usize;
        if t < MESSAGE_TYPE_COUNT {
            self.stats.lock().received[t] += 1;
        }
    }
}

fn save_error(e: &std::io::Error) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR error saving the cluster node config: {}",
        io_text(e)
    ))
}

fn log_level(level: u8, text: &str) {
    match level {
        0 => log_at!(Debug, "{}", text),
        1 => log_at!(Verbose, "{}", text),
        2 => log_at!(Notice, "{}", text),
        _ => log_at!(Warning, "{}", text),
    }
}

fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn now_ms() -> u64 {
    super::connection::unix_us() / 1000
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one: a
/// temporary file in the same directory, fsync (when asked), rename over the target.
pub fn write_atomically(path: &Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "nodes.conf".into());
    // Saves may run on two threads at once (a SETSLOT and the bus): one temporary file each.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!("temp-{}-{n}-{}", std::process::id(), name));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, path)?;
        if fsync {
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The routing snapshot of a node table.
pub fn build_topology(state: &ClusterState, config: &Config) -> Topology {
    let mut builder = Topology::builder(state.myself_id());
    for node in state.nodes() {
        let mut spec = NodeSpec::new(node.name, &node.ip, node.port)
            .pport(node.pport)
            .cport(node.cport)
            .hostname(&node.hostname)
            .client_ips(&node.client_ipv4, &node.client_ipv6)
            .flags(node.flags);
        spec.master = node.slaveof.filter(|m| state.contains(m));
        builder = builder.node(spec);
    }
    for (start, end, owner) in state.owner_runs() {
        builder = builder.assign(start..=end, owner);
    }
    for (slot, migrating, importing) in state.open_slots() {
        if let Some(to) = migrating.filter(|n| state.contains(n)) {
            builder = builder.migrating(slot, to);
        }
        if let Some(from) = importing.filter(|n| state.contains(n)) {
            builder = builder.importing(slot, from);
        }
    }
    builder
        .state_ok(state.state == Health::Ok)
        .endpoint_type(config.cluster_preferred_endpoint_type)
        .build()
}

/// The machine's view of the configuration.
pub fn machine_config(config: &Config) -> MachineConfig {
    let port = if config.cluster_announce_port != 0 {
        config.cluster_announce_port
    } else {
        config.port
    };
    MachineConfig {
        node_timeout_ms: config.cluster_node_timeout.max(0) as u64,
        require_full_coverage: config.cluster_require_full_coverage,
        announce_ip: config.cluster_announce_ip.clone(),
        port,
        pport: 0,
        cport: announced_bus_port(config),
        hostname: config.cluster_announce_hostname.clone(),
        human_nodename: String::new(),
        client_ipv4: config.cluster_announce_client_ipv4.clone(),
        client_ipv6: config.cluster_announce_client_ipv6.clone(),
        replica_no_failover: config.cluster_replica_no_failover,
        allow_replica_migration: config.cluster_allow_replica_migration,
    }
}

/// The port we listen on for the bus: `cluster-port`, else port + 10000.
pub fn bus_port(config: &Config) -> u16 {
    if config.cluster_port != 0 {
        config.cluster_port
    } else {
        config.port.wrapping_add(CLUSTER_PORT_INCR)
    }
}

fn announced_bus_port(config: &Config) -> u16 {
    if config.cluster_announce_bus_port != 0 {
        config.cluster_announce_bus_port
    } else {
        bus_port(config)
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes
}

/// clusterInit's file half: the node table from nodes.conf, or a fresh identity saved at
/// once. `Err` carries the exit code after the reason was logged.
fn load_or_create(path: &Path, config: &Config, now: u64) -> Result<ClusterState, i32> {
    let loaded = match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => None,
        Ok(bytes) => match nodes_conf::load(&bytes, now) {
            Ok(state) => Some(state),
            Err(e) => {
                log_at!(
                    Warning,
                    "Unrecoverable error: corrupted cluster config file \"{}\": {}",
                    path.display(),
                    e
                );
                return Err(1);
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            log_at!(
                Warning,
                "Loading the cluster node config from {}: {}",
                path.display(),
                io_text(&e)
            );
            return Err(1);
        }
    };
    let mut state = match loaded {
        Some(state) => {
            log_at!(
                Notice,
                "Node configuration loaded, I'm {}",
                state.myself_id().as_str()
            );
            state
        }
        None => {
            let id = NodeId::from_random(random_bytes::<20>());
            let myself =
                ClusterNode::new(id, NodeFlags(NodeFlags::MYSELF | NodeFlags::MASTER), now);
            log_at!(
                Notice,
                "No cluster configuration found, I'm {}",
                id.as_str()
            );
            let state = ClusterState::new(myself);
            // Saved at once, before the ports are known (Redis's file then reads `:0@0`).
            let text = nodes_conf::render(&state);
            if let Err(e) = write_atomically(path, text.as_bytes(), true) {
                log_at!(
                    Warning,
                    "Fatal: can't update cluster config file: {}",
                    io_text(&e)
                );
                return Err(1);
            }
            state
        }
    };
    let mc = machine_config(config);
    let me = state.myself_mut();
    me.port = mc.port;
    me.pport = mc.pport;
    me.cport = mc.cport;
    if !config.cluster_announce_ip.is_empty() {
        me.ip = config.cluster_announce_ip.clone();
    }
    me.hostname = config.cluster_announce_hostname.clone();
    me.client_ipv4 = mc.client_ipv4;
    me.client_ipv6 = mc.client_ipv6;
    Ok(state)
}

/// Starts cluster mode: loads or creates the node table, binds the bus port, installs the
/// machine in the server state, publishes the first topology and spawns the tick task and
/// the bus accept loops. `Err` is the exit code (the reason is logged).
pub async fn start(server: &Arc<ServerState>) -> Result<(), i32> {
    let config = server.config().clone();
    let path = PathBuf::from(&config.cluster_config_file);
    let now = now_ms();
    let state = load_or_create(&path, &config, now)?;
    let port = bus_port(&config);
    if config.cluster_port == 0 && config.port > 65535 - CLUSTER_PORT_INCR {
        log_at!(Warning, "Redis port number too high. Cluster communication port is 10,000 port numbers higher than your Redis port. Your Redis port number must be 55535 or less.");
        return Err(1);
    }
    let listeners = match super::bind_all(&config.bind, port, config.tcp_backlog).await {
        Some(l) => l,
        None => {
            log_at!(
                Warning,
                "Failed listening on port {port} (cluster), aborting."
            );
            return Err(1);
        }
    };
    let seed = u64::from_le_bytes(random_bytes::<8>());
    let machine = ClusterMachine::new(state, machine_config(&config), seed);
    let handle = Arc::new(ClusterHandle::new(
        machine,
        Some(path),
        Arc::downgrade(server),
    ));
    let topology = build_topology(&handle.machine.lock().state, &config);
    server.publish_topology(Some(Arc::new(topology)));
    if server.cluster.set(handle.clone()).is_err() {
        return Err(1);
    }
    for listener in listeners {
        tokio::spawn(accept_loop(server.clone(), handle.clone(), listener));
    }
    tokio::spawn(tick(server.clone(), handle));
    Ok(())
}

/// clusterCron's clock: a Tick every 100 ms, and the configuration handed over when a
/// CONFIG SET changed what the machine sees.
async fn tick(server: Arc<ServerState>, handle: Arc<ClusterHandle>) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        handle.sync_config(&server);
        handle.step(&server, now_ms(), Input::Tick);
    }
}

async fn accept_loop(server: Arc<ServerState>, handle: Arc<ClusterHandle>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                log_at!(
                    Verbose,
                    "Accepting cluster node connection from {}:{}",
                    peer.ip(),
                    peer.port()
                );
                let link = handle.machine.lock().new_link_id();
                let shared = handle.register(link);
                shared.connected.store(true, Relaxed);
                let local_ip = stream
                    .local_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default();
                let peer_ip = peer.ip().to_string();
                let (server, handle) = (server.clone(), handle.clone());
                tokio::spawn(async move {
                    let accepted = Input::Accepted {
                        link,
                        peer_ip,
                        local_ip,
                    };
                    handle.step(&server, now_ms(), accepted);
                    run_link(server, handle, link, shared, stream).await;
                });
            }
            Err(e) => {
                log_at!(Verbose, "Error accepting cluster node: {}", io_text(&e));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One link: reads frames and steps the machine with them, writes what is queued. Ends on
/// EOF, an I/O error, a framing error (the stream cannot be resynchronised), or when the
/// machine closes the link.
async fn run_link(
    server: Arc<ServerState>,
    handle: Arc<ClusterHandle>,
    link: LinkId,
    shared: Arc<LinkShared>,
    stream: TcpStream,
) {
    let (mut rd, mut wr) = stream.into_split();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut current: Option<(Vec<u8>, usize)> = None;
    let limit = bus::frame_limit_for_proto_max_bulk_len(server.config().proto_max_bulk_len);
    loop {
        if shared.closed.load(Relaxed) {
            return;
        }
        if current.is_none() {
            let mut q = shared.out.lock();
            if let Some(frame) = q.frames.pop_front() {
                q.bytes -= frame.len();
                current = Some((frame, 0));
            }
        }
        let writing = current.is_some();
        tokio::select! {
            read = rd.read_buf(&mut rbuf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if let Err(e) = take_frames(&server, &handle, link, &mut rbuf, limit) {
                        log_at!(Warning, "Bad message length or signature received on the Cluster bus ({}); closing the link.", e);
                        break;
                    }
                }
            },
            written = async {
                let (frame, off) = current.as_ref().expect("guarded by `writing`");
                wr.write(&frame[*off..]).await
            }, if writing => match written {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some((frame, off)) = current.as_mut() {
                        *off += n;
                        if *off >= frame.len() {
                            current = None;
                        }
                    }
                }
            },
            // Also while writing: a close must not wait for a peer that stopped reading
            // (a TCP write that has not completed wrote nothing, so it can be dropped).
            _ = shared.wake.notified() => {}
        }
    }
    let _ = wr.shutdown().await;
    handle.lost(&server, link, &shared);
}

/// The bus message type DEBUG DROP-CLUSTER-PACKET-FILTER drops (-1: none).
fn dropped_type(server: &ServerState) -> i64 {
    server.debug.cluster_drop_packet_filter.load(Relaxed)
}

/// Splits whole frames off the read buffer and steps the machine with each one that
/// decodes; a frame that is complete but malformed is dropped (the link stays).
fn take_frames(
    server: &ServerState,
    handle: &ClusterHandle,
    link: LinkId,
    rbuf: &mut BytesMut,
    limit: usize,
) -> Result<(), BusError> {
    while let Some(n) = bus::next_frame(rbuf, limit)? {
        let frame = rbuf.split_to(n);
        match bus::decode(&frame) {
            Ok(message) if i64::from(message.type_code()) == dropped_type(server) => {
                log_at!(Warning, "Dropping packet that matches debug drop filter");
            }
            Ok(message) => {
                handle.step(server, now_ms(), Input::Message { link, message });
            }
            Err(e) => {
                handle.count_undecoded(&frame);
                log_at!(Warning, "Dropping a cluster bus message: {}", e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::Slot;

    fn id(c: u8) -> NodeId {
        NodeId([c; 40])
    }

    fn two_nodes() -> ClusterState {
        let me = ClusterNode::new(id(b'a'), NodeFlags(NodeFlags::MASTER), 0);
        let mut state = ClusterState::new(me);
        let mut other = ClusterNode::new(id(b'b'), NodeFlags(NodeFlags::MASTER), 0);
        other.ip = "127.0.0.1".into();
        other.port = 7001;
        other.cport = 17001;
        state.add_node(other).unwrap();
        for slot in 0..100 {
            state.add_slot(&id(b'a'), slot).unwrap();
        }
        for slot in 100..200 {
            state.add_slot(&id(b'b'), slot).unwrap();
        }
        state
    }

    #[test]
    fn the_topology_names_each_slot_owner_and_follows_the_state_verdict() {
        let state = two_nodes();
        let topology = build_topology(&state, &Config::default());
        let owner = |slot: Slot| {
            topology
                .owner(slot)
                .map(|i| topology.nodes()[i as usize].id)
        };
        assert_eq!(owner(5), Some(id(b'a')));
        assert_eq!(owner(150), Some(id(b'b')));
        assert_eq!(owner(500), None);
        assert_eq!(topology.myself().id, id(b'a'));
        assert!(!topology.state_ok(), "a fresh table's state is fail");
        let b = topology.index_of(&id(b'b')).unwrap();
        assert_eq!(topology.endpoint(b, false).to_string(), "127.0.0.1:7001");
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("ferrodis-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf");
        std::fs::write(&path, "old contents that are longer than the new ones\n").unwrap();
        write_atomically(&path, b"new\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("nodes.conf")]);
        assert!(write_atomically(&dir.join("missing/nodes.conf"), b"x", false).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_creates_an_identity_and_a_corrupt_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("ferrodis-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf");
        let config = Config::default();
        let created = load_or_create(&path, &config, 1).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(created.myself_id().as_str()));
        assert!(text.contains(" :0@0 myself,master - 0 0 0 connected\n"));
        let loaded = load_or_create(&path, &config, 2).unwrap();
        assert_eq!(loaded.myself_id(), created.myself_id());
        assert_eq!(loaded.myself().port, config.port);
        assert_eq!(loaded.myself().cport, config.port + CLUSTER_PORT_INCR);
        std::fs::write(&path, "garbage\n").unwrap();
        assert_eq!(load_or_create(&path, &config, 3).err(), Some(1));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "garbage\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn deleting_the_keys_of_lost_slots_keeps_the_others() {
        let server = crate::server::ServerState::for_tests();
        let mut ks = server.keyspace.lock_all();
        let set = |ks: &mut crate::keyspace::Locked<'_>, key: &str| {
            let value = crate::keyspace::Value::Str(crate::keyspace::StrValue::from_bytes(b"v"));
            ks.insert(0, key.as_bytes(), crate::keyspace::Entry::new(value, 0));
        };
        set(&mut ks, "foo"); // slot 12182
        set(&mut ks, "bar"); // slot 5061
        KeyspaceWork::DeleteKeysInSlots(vec![12182]).apply(&mut ks);
        assert_eq!(ks.db_size(0), 1);
        assert_eq!(ks.count_in_slot(0, 5061), 1);
        KeyspaceWork::FlushAll.apply(&mut ks);
        assert_eq!(ks.db_size(0), 0);
    }

    #[test]
    fn the_machine_sees_the_announced_ports() {
        let mut config = Config {
            port: 7000,
            ..Config::default()
        };
        let mc = machine_config(&config);
        assert_eq!((mc.port, mc.cport), (7000, 17000));
        config.cluster_port = 9000;
        assert_eq!(machine_config(&config).cport, 9000);
        config.cluster_announce_bus_port = 9100;
        config.cluster_announce_port = 7100;
        let mc = machine_config(&config);
        assert_eq!((mc.port, mc.cport), (7100, 9100));
        assert_eq!(bus_port(&config), 9000);
    }
}

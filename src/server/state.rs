//! `ServerState`: what every connection shares — the keyspace, the live configuration, the
//! statistics INFO reports, the client registry and the slow log. Plain data behind atomics and
//! short locks; the tasks that drive it live in the rest of `server/`.

use crate::commands::table::CommandTable;
use crate::config::Config;
use crate::keyspace::Keyspace;
use crate::util::Counter;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use std::sync::Arc;

/// Server-wide counters (INFO stats). Striped: the connections on every worker thread add to
/// them on every command.
#[derive(Default, Debug)]
pub struct Stats {
    pub total_connections_received: Counter,
    pub total_commands_processed: Counter,
    pub rejected_connections: Counter,
    pub expired_keys: Counter,
    pub expired_stale_perc: Counter,
    pub expired_time_cap_reached_count: Counter,
    pub expire_cycle_cpu_milliseconds: Counter,
    pub evicted_keys: Counter,
    pub keyspace_hits: Counter,
    pub keyspace_misses: Counter,
    pub net_input_bytes: Counter,
    pub net_output_bytes: Counter,
    pub total_error_replies: Counter,
    pub unexpected_error_replies: Counter,
    pub client_query_buffer_limit_disconnections: Counter,
    pub client_output_buffer_limit_disconnections: Counter,
    pub io_reads_processed: Counter,
    pub io_writes_processed: Counter,
    pub total_reads_processed: Counter,
    pub total_writes_processed: Counter,
    /// Full and partial resynchronisations served, and PSYNCs that could not continue.
    pub sync_full: Counter,
    pub sync_partial_ok: Counter,
    pub sync_partial_err: Counter,
    /// Compact blobs of RESTORE payloads and loaded files given the deep integrity check.
    pub dump_payload_sanitizations: Counter,
}

/// Per-command statistics (INFO commandstats), indexed like the command table.
#[derive(Default, Debug)]
pub struct CommandStats {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected_calls: AtomicU64,
    pub failed_calls: AtomicU64,
}

/// What CLIENT LIST shows about a connection other than the caller, kept up to date by its
/// connection task.
#[derive(Clone, Debug, Default)]
pub struct ClientView {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub name: String,
    pub created_ms: u64,
    pub last_interaction_ms: u64,
    pub db: usize,
    pub flags: String,
    pub multi: i64,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Unparsed bytes in the query buffer.
    pub qbuf: usize,
    /// What the query buffer holds allocated, accounted as Redis accounts it (16 KiB on first
    /// read, grown to the largest request, trimmed by the cron to the recent peak, released
    /// after two idle seconds).
    pub qbuf_alloc: usize,
    /// Largest query buffer use since the cron last looked.
    pub qbuf_peak: usize,
    pub argv_mem: usize,
    pub obl: usize,
    pub oll: usize,
    pub omem: usize,
    pub tot_mem: usize,
    pub last_cmd: &'static str,
    pub user: String,
    pub resp: u8,
    pub lib_name: String,
    pub lib_ver: String,
}

/// A registered connection: its view, the kill switch CLIENT KILL pulls, and the cron's
/// request to release an idle query buffer. `kill_signal` wakes the connection for either.
#[derive(Debug)]
pub struct ClientEntry {
    pub view: Mutex<ClientView>,
    pub killed: AtomicBool,
    pub release_buffer: AtomicBool,
    pub kill_signal: super::signal::Signal,
    /// Blocked in BLPOP and friends.
    pub blocked: AtomicBool,
    /// CLIENT UNBLOCK asked to end the wait: 1 as a timeout, 2 with an error.
    pub unblock_request: std::sync::atomic::AtomicU8,
    /// Bytes this connection's buffers hold (query buffer, pending arguments, replies), as
    /// last reported by its task; its Pub/Sub mailbox is counted apart.
    pub mem: AtomicUsize,
    pub mailbox: Arc<crate::commands::pubsub::Mailbox>,
    /// CLIENT NO-EVICT on: never chosen by client eviction.
    pub no_evict: AtomicBool,
    /// Closed by client eviction: the bytes it held, released once its task has ended.
    pub dying_mem: AtomicUsize,
}

impl ClientEntry {
    /// Everything this client's buffers hold.
    pub fn memory(&self) -> usize {
        self.mem.load(Relaxed) + self.mailbox.bytes()
    }
}

/// Redis's initial query buffer size (PROTO_IOBUF_LEN).
pub const QUERY_BUF_INITIAL: usize = 16 * 1024;
/// Above this a query buffer may be trimmed to its recent peak (PROTO_RESIZE_THRESHOLD).
const QUERY_BUF_RESIZE_THRESHOLD: usize = 32 * 1024;

impl ClientView {
    /// Records query buffer use seen by the connection.
    pub fn note_query_buffer(&mut self, unparsed: usize, in_use: usize) {
        self.qbuf = unparsed;
        if self.qbuf_alloc == 0 && in_use > 0 {
            self.qbuf_alloc = QUERY_BUF_INITIAL;
        }
        self.qbuf_alloc = self.qbuf_alloc.max(in_use);
        self.qbuf_peak = self.qbuf_peak.max(in_use);
    }

    /// The cron's resize step; true when the buffer should be released for real.
    pub fn resize_query_buffer(&mut self, now_ms: u64) -> bool {
        let idle_secs = now_ms.saturating_sub(self.last_interaction_ms) / 1000;
        let mut release = false;
        if self.qbuf_alloc.saturating_sub(self.qbuf) > 4 * 1024 {
            if idle_secs > 2 {
                self.qbuf_alloc = self.qbuf;
                release = true;
            } else if self.qbuf_alloc > QUERY_BUF_RESIZE_THRESHOLD
                && self.qbuf_alloc / 2 > self.qbuf_peak
            {
                self.qbuf_alloc = self.qbuf.max(self.qbuf_peak);
            }
        }
        self.qbuf_peak = self.qbuf;
        release
    }
}

#[derive(Clone, Debug)]
pub struct SlowLogEntry {
    pub id: u64,
    pub time_secs: i64,
    pub duration_us: u64,
    pub args: Vec<bytes::Bytes>,
    pub peer: String,
    pub name: String,
}

#[derive(Default, Debug)]
pub struct SlowLog {
    pub entries: std::collections::VecDeque<SlowLogEntry>,
    pub next_id: u64,
}

/// CLIENT PAUSE: until when (unix ms, in the high bits) and whether only writes are held
/// (the low bit), in one word every command can read without a lock; `ended` wakes the
/// clients a pause postponed when CLIENT UNPAUSE ends it early.
#[derive(Debug, Default)]
pub struct Pause {
    word: AtomicU64,
    pub ended: tokio::sync::Notify,
}

impl Pause {
    /// CLIENT PAUSE: a new pause never shortens one in force, and ALL wins over WRITE while
    /// both would be in force, as in Redis.
    pub fn set(&self, now_ms: u64, until_ms: u64, writes_only: bool) {
        let _ = self.word.fetch_update(SeqCst, SeqCst, |w| {
            let (old_until, old_writes_only) = (w >> 1, w & 1 == 1);
            let old_live = old_until > now_ms;
            let until = if old_live {
                old_until.max(until_ms)
            } else {
                until_ms
            };
            let writes_only = writes_only && (!old_live || old_writes_only);
            Some(until << 1 | writes_only as u64)
        });
    }

    /// CLIENT UNPAUSE.
    pub fn clear(&self) {
        self.word.store(0, SeqCst);
        self.ended.notify_waiters();
    }

    /// Until when a pause holds (0: none ever set).
    pub fn until_ms(&self) -> u64 {
        self.word.load(SeqCst) >> 1
    }

    /// Resolves once no pause is in force: its time ran out or CLIENT UNPAUSE ended it.
    pub async fn over(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let now_ms = super::connection::unix_us() / 1000;
            let until = self.until_ms();
            if until <= now_ms {
                return;
            }
            let left = std::time::Duration::from_millis(until - now_ms);
            tokio::select! {
                _ = &mut ended => {}
                _ = tokio::time::sleep(left) => {}
            }
        }
    }

    /// Whether a command is held at `now_ms`: every command under a pause ALL, commands that
    /// may write or replicate (`may_write`) under a pause WRITE.
    pub fn holds(&self, now_ms: u64, may_write: bool) -> bool {
        let w = self.word.load(SeqCst);
        w >> 1 > now_ms && (may_write || w & 1 == 0)
    }
}

/// A client in MONITOR mode and the bounded queue its connection drains.
#[derive(Debug)]
pub struct Monitor {
    pub id: u64,
    pub tx: tokio::sync::mpsc::Sender<bytes::Bytes>,
}

pub struct ServerState {
    pub keyspace: Keyspace,
    /// The replication stream (appended to while the writing command holds its shards).
    pub backlog: Mutex<crate::replication::backlog::Backlog>,
    /// Set (under every shard lock) once the backlog exists: until then writes skip building
    /// their propagation entries.
    pub repl_active: AtomicBool,
    /// The stream's end offset, for replica links to wait on.
    pub stream_end: tokio::sync::watch::Sender<u64>,
    /// Clients blocked on keys (BLPOP and friends).
    pub blocks: crate::commands::blocking::BlockRegistry,
    /// Keys watched by clients for MULTI/EXEC.
    pub watches: crate::commands::watch::WatchRegistry,
    /// Pub/Sub subscriptions.
    pub pubsub: crate::commands::pubsub::PubSub,
    /// The best eviction candidates seen so far (maxmemory with an LRU, LFU or TTL policy).
    pub evict_pool: Mutex<crate::keyspace::evict::Pool>,
    /// The database the random policies look at next.
    pub evict_next_db: AtomicUsize,
    /// Bytes held by every client's buffers (for `maxmemory-clients`).
    pub client_memory: Arc<AtomicUsize>,
    /// Clients closed by client eviction (INFO `evicted_clients`).
    pub evicted_clients: AtomicU64,
    /// Bytes held by evicted clients whose tasks have not ended yet: already given up, so
    /// key eviction does not count them.
    pub dying_client_memory: AtomicUsize,
    /// Whether we replicate from a primary, and the state of that link.
    pub role: super::replica_driver::Role,
    /// Attached replicas by client id (INFO replication).
    pub replicas: Mutex<BTreeMap<u64, ReplicaLink>>,
    pub config: ConfigCell,
    pub config_file: Option<String>,
    pub commands: &'static CommandTable,
    pub command_stats: Vec<CommandStats>,
    /// Latency histograms by command id, created on first use (INFO latencystats).
    pub latency: Vec<std::sync::OnceLock<super::latency::Histogram>>,
    pub error_stats: Mutex<BTreeMap<String, u64>>,
    /// ACL users (the `default` one follows `requirepass`) and the ACL log.
    pub acl: crate::acl::Registry,
    pub stats: Stats,
    pub clients: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
    pub next_client_id: AtomicU64,
    pub connected_clients: AtomicUsize,
    pub blocked_clients: AtomicUsize,
    pub run_id: String,
    pub replid: Mutex<String>,
    pub pid: u32,
    pub executable: String,
    pub start_time_ms: u64,
    pub tcp_port: AtomicU64,
    /// Changes since the last save (`rdb_changes_since_last_save`).
    pub dirty: Counter,
    pub last_save_secs: AtomicI64,
    pub slowlog: Mutex<SlowLog>,
    pub pause: Pause,
    pub active_expire_enabled: AtomicBool,
    pub shutdown_asap: AtomicBool,
    pub stat_peak_memory: AtomicU64,
    pub monitors: Mutex<Vec<Monitor>>,
    pub monitor_count: AtomicUsize,
    /// Switches DEBUG flips for tests (PAUSE-CRON, REPLYBUFFER, ...).
    pub debug: crate::commands::debug::DebugFlags,
    /// Commands propagated while AOF is on, waiting to be written (under the shard locks of
    /// the command that produced them, so file order is execution order).
    pub aof_feed: Mutex<crate::persistence::aof::feed::Feed>,
    pub aof_files: Mutex<super::aof::AofFiles>,
    pub aof: super::aof::AofStatus,
    /// SAVE / BGSAVE: the snapshot in progress and INFO persistence's RDB figures.
    pub rdb: super::rdb_save::RdbStatus,
    /// A file is being loaded (at startup, DEBUG LOADAOF): clients get -LOADING for commands
    /// without the `loading` flag, and what the load replays is not propagated again.
    pub loading: AtomicBool,
    /// How far the load in progress has come (INFO persistence's `loading_*` fields).
    pub load_progress: super::loading::LoadProgress,
    /// CLIENT TRACKING: who may cache which keys.
    pub tracking: crate::commands::tracking::Tracking,
    /// Signalled whenever a replica acknowledges an offset (clients in WAIT).
    pub ack_signal: tokio::sync::Notify,
    /// The cluster routing snapshot, published by the cluster driver; `None` in standalone
    /// mode (no routing at all).
    pub topology: arc_swap::ArcSwapOption<crate::cluster::topology::Topology>,
    /// A topology is published: read without loading it, so standalone commands pay one
    /// atomic load for routing.
    pub routing: AtomicBool,
    /// Cluster mode: the cluster machine and its bus links (set once at startup).
    pub cluster: std::sync::OnceLock<Arc<super::cluster_driver::ClusterHandle>>,
    /// The multi-thread runtime, where connections that must block move (see `loops.rs`).
    pub pool: std::sync::OnceLock<tokio::runtime::Handle>,
    /// MIGRATE's cached connections and the keys held while their exchange runs.
    pub migrate: super::migrate::MigrateState,
}

/// What INFO replication shows about one attached replica.
#[derive(Debug, Clone)]
pub struct ReplicaLink {
    pub ip: String,
    /// The port the replica announced with REPLCONF listening-port (0 if none).
    pub port: u16,
    /// `wait_bgsave`, `send_bulk` or `online`.
    pub state: &'static str,
    /// The last offset the replica acknowledged (REPLCONF ACK).
    pub ack_offset: u64,
    pub last_ack_ms: u64,
}

/// The live configuration: replaced whole by CONFIG SET, with a generation counter so that a
/// connection can keep its own copy and notice a change with one atomic load, and the figures
/// derived from it that hot paths read.
pub struct ConfigCell {
    current: ArcSwap<Config>,
    generation: AtomicU64,
    eviction_limit: AtomicU64,
}

impl ConfigCell {
    pub fn new(config: Config) -> ConfigCell {
        ConfigCell {
            eviction_limit: AtomicU64::new(eviction_limit_of(&config)),
            current: ArcSwap::from_pointee(config),
            generation: AtomicU64::new(0),
        }
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<Config>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Config> {
        self.current.load_full()
    }

    pub fn store(&self, config: Arc<Config>) {
        self.eviction_limit
            .store(eviction_limit_of(&config), Relaxed);
        self.current.store(config);
        self.generation.fetch_add(1, Release);
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }
}

fn eviction_limit_of(config: &Config) -> u64 {
    let limit = match config.maxmemory_clients {
        n if n > 0 => n as u64,
        n if n < 0 => config.maxmemory.saturating_mul(n.unsigned_abs()) / 100,
        _ => 0,
    };
    if limit == 0 {
        0
    } else {
        limit.max(128 * 1024)
    }
}

/// A connection's copy of the configuration, refreshed when the generation moves.
pub struct CachedConfig {
    generation: u64,
    config: Arc<Config>,
}

impl CachedConfig {
    pub fn new(cell: &ConfigCell) -> CachedConfig {
        CachedConfig {
            generation: cell.generation(),
            config: cell.load_full(),
        }
    }

    /// Asked several times per command: inlined, with the rare refresh kept apart.
    #[inline]
    pub fn get(&mut self, cell: &ConfigCell) -> &Config {
        let generation = cell.generation();
        if generation != self.generation {
            self.refresh(cell, generation);
        }
        &self.config
    }

    #[cold]
    #[inline(never)]
    fn refresh(&mut self, cell: &ConfigCell, generation: u64) {
        self.generation = generation;
        self.config = cell.load_full();
    }
}

impl ServerState {
    /// Milliseconds on a monotonic clock (for limits measured while a command runs, like
    /// FUNCTION LOAD's timeout; commands otherwise get the time as an argument).
    pub fn monotonic_ms() -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_millis() as u64
    }

    pub fn config(&self) -> arc_swap::Guard<Arc<Config>> {
        self.config.load()
    }

    /// `maxmemory-clients` in bytes (a negative setting is a percentage of `maxmemory`); 0
    /// when client eviction is off. Never below 128 KiB, so a client can always talk to us.
    pub fn client_eviction_limit(&self) -> u64 {
        self.config.eviction_limit.load(Relaxed)
    }

    /// Closes the clients with the most buffer memory until the total is under
    /// `maxmemory-clients` (Redis's `evictClients`). Clients with NO-EVICT are spared.
    pub fn evict_clients(&self, now_ms: u64) {
        // The limit is read first: it rarely changes, while the memory total is written by
        // every connection whose buffers grow or shrink.
        let limit = self.client_eviction_limit();
        if limit == 0 || (self.client_memory.load(Relaxed) as u64) < limit {
            return;
        }
        let mut candidates: Vec<(usize, Arc<ClientEntry>)> = self
            .clients
            .lock()
            .values()
            .filter(|c| !c.no_evict.load(Relaxed) && !c.killed.load(Relaxed))
            .map(|c| (c.memory(), c.clone()))
            .collect();
        candidates.sort_by_key(|(mem, _)| std::cmp::Reverse(*mem));
        let mut total = self.client_memory.load(Relaxed);
        for (mem, c) in candidates {
            if (total as u64) < limit {
                return;
            }
            let line = crate::commands::introspection::client_line(&c.view.lock(), now_ms);
            crate::log_at!(Notice, "Evicting client: {}", line);
            c.killed.store(true, Relaxed);
            c.dying_mem.store(mem, Relaxed);
            self.dying_client_memory.fetch_add(mem, Relaxed);
            c.kill_signal.notify_one();
            self.evicted_clients.fetch_add(1, Relaxed);
            total = total.saturating_sub(mem);
        }
        crate::log_at!(
            Warning,
            "Over client maxmemory after evicting all evictable clients"
        );
    }

    /// Memory that counts for key eviction: what is allocated, less what evicted clients
    /// are about to release.
    pub fn memory_for_eviction(&self) -> usize {
        crate::server::info::used_memory()
            .saturating_sub(self.dying_client_memory.load(Relaxed))
            .saturating_sub(self.memory_not_counted_for_evict())
    }

    /// Replica output queues and the AOF buffer: memory eviction must not try to win back by
    /// deleting keys (Redis's `freeMemoryGetNotCountedMemory`).
    pub fn memory_not_counted_for_evict(&self) -> usize {
        self.backlog.lock().queued_total() + self.aof_feed.lock().len()
    }

    /// Installs a new cluster routing snapshot (`None`: standalone) and wakes every blocked
    /// client, which then leaves with MOVED or CLUSTERDOWN if its slot is no longer served
    /// here (Redis's `clusterRedirectBlockedClientIfNeeded`, run from the clients cron).
    pub fn publish_topology(&self, topology: Option<Arc<crate::cluster::topology::Topology>>) {
        self.routing.store(topology.is_some(), Relaxed);
        self.topology.store(topology);
        self.blocks.wake_all();
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Relaxed)
    }

    /// Counts an error reply in INFO errorstats and `total_error_replies`.
    pub fn count_error(&self, code: &str) {
        self.stats.total_error_replies.fetch_add(1, Relaxed);
        *self.error_stats.lock().entry(code.to_string()).or_insert(0) += 1;
    }

    pub fn client_views(&self) -> Vec<(Arc<ClientEntry>, ClientView)> {
        self.clients
            .lock()
            .values()
            .map(|c| (c.clone(), c.view.lock().clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Pause;

    #[test]
    fn pause_write_holds_writes_only_and_all_wins_while_both_run() {
        let p = Pause::default();
        assert!(!p.holds(1000, true));
        p.set(1000, 2000, true);
        assert!(p.holds(1500, true) && !p.holds(1500, false));
        assert!(!p.holds(2000, true), "over at its end time");
        p.set(1500, 1800, false);
        assert!(p.holds(1600, false), "ALL wins over a running WRITE");
        assert_eq!(
            p.until_ms(),
            2000,
            "a new pause never shortens one in force"
        );
        p.clear();
        assert!(!p.holds(1600, true));
        p.set(3000, 4000, true);
        assert!(
            !p.holds(3500, false),
            "after the ALL pause ended, a WRITE pause is WRITE"
        );
    }
}

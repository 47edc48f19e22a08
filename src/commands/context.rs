//! `ExecCtx`: everything a handler may touch while it runs — the locked shards, the calling
//! client's state, the shared server state — and `Effects`, what the handler asks the server
//! to do afterwards (close the link, kill clients, shut down). Handlers never see a socket.

use crate::commands::errors;
use crate::config::values::notify;
use crate::keyspace::{Entry, Locked, StrValue, Value};
use crate::resp::{ErrorReply, Reply};
use crate::server::state::ServerState;
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

/// CLIENT REPLY modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command (set by CLIENT REPLY SKIP, armed after it).
    SkipNext,
    Skip,
}

/// Per-connection state a handler can read and change.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub authenticated: bool,
    /// The ACL user this connection is authenticated as.
    pub user: std::sync::Arc<crate::acl::User>,
    /// The ACL registry generation `user` was looked up at: a newer one means look again.
    pub acl_generation: u64,
    pub reply_mode: ReplyMode,
    pub no_evict: bool,
    pub no_touch: bool,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub created_ms: u64,
    /// The transaction being queued between MULTI and EXEC.
    pub multi: Option<Multi>,
    pub monitor: bool,
    /// The port a replica announced with REPLCONF listening-port.
    pub replica_listening_port: u16,
    /// Keys this client WATCHes, as (db, key).
    pub watched: Vec<(usize, Box<[u8]>)>,
    /// Set when a watched key is modified: the next EXEC fails.
    pub cas_dirty: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Channels, patterns and shard channels this client is subscribed to.
    pub subscriptions: super::pubsub::Subscriptions,
    /// Where messages published to this client wait for its connection.
    pub mailbox: std::sync::Arc<super::pubsub::Mailbox>,
    /// True while a blocked command is run again after a wake-up (blocked XREADGROUP
    /// clients fail when their key or group went away, as Redis unblocks them).
    pub block_retry: bool,
    /// The link to our primary applying its stream (never answered, never read-only).
    pub is_master: bool,
    /// The replication offset right after this client's last propagated write (WAIT).
    pub woff: u64,
    /// CLIENT TRACKING options, when on.
    pub tracking: Option<super::tracking::ClientTracking>,
    /// The command being run is CLIENT CACHING: its flag outlives it (for the next command).
    pub keep_caching_flag: bool,
    /// ASKING was sent: the next command (or transaction) may use a slot being imported.
    pub asking: bool,
    /// READONLY was sent: on a replica, reads of its master's slots are served here.
    pub readonly_cluster: bool,
    /// MIGRATE's exchange with its target is done: its second run finishes the command.
    pub migrate_done: Option<super::migrate::MigrateDone>,
}

impl ClientState {
    /// The peer address is IPv6 (`[addr]:port`, as Valkey's isClientConnIpV6 checks):
    /// cluster replies name announced client IPv6 addresses to it, IPv4 ones otherwise.
    pub fn connected_over_ipv6(&self) -> bool {
        self.addr.starts_with('[')
    }

    pub fn new(
        id: u64,
        addr: String,
        laddr: String,
        fd: i32,
        now_ms: u64,
        authenticated: bool,
    ) -> Self {
        ClientState {
            id,
            db: 0,
            resp3: false,
            name: None,
            lib_name: None,
            lib_ver: None,
            authenticated,
            user: crate::acl::initial_user(),
            acl_generation: 0,
            reply_mode: ReplyMode::On,
            no_evict: false,
            no_touch: false,
            addr,
            laddr,
            fd,
            created_ms: now_ms,
            multi: None,
            monitor: false,
            replica_listening_port: 0,
            watched: Vec::new(),
            cas_dirty: Default::default(),
            subscriptions: Default::default(),
            mailbox: Default::default(),
            block_retry: false,
            is_master: false,
            woff: 0,
            tracking: None,
            keep_caching_flag: false,
            asking: false,
            readonly_cluster: false,
            migrate_done: None,
        }
    }
}

/// Commands queued by MULTI, and whether queueing failed (EXEC then aborts).
#[derive(Debug, Default)]
pub struct Multi {
    pub queued: Vec<Vec<Bytes>>,
    pub aborted: bool,
}

/// How SHUTDOWN was asked to behave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownRequest {
    pub save: Option<bool>,
    pub now: bool,
    pub force: bool,
}

/// What a handler asks the server to do once it returns. The fields every write touches are
/// inline; the rare requests live behind one box, so the common command moves a small value.
#[derive(Debug, Default)]
pub struct Effects {
    /// Changes to the dataset (Redis's `server.dirty`).
    pub dirty: u64,
    /// Keys deleted by lazy expiry while the command ran, as (db, key).
    pub expired: Vec<(usize, Box<[u8]>)>,
    /// Commands for the replication stream (and AOF), in execution order, each with the
    /// database it ran in (Redis's `also_propagate`).
    pub propagate: Vec<(usize, Vec<Bytes>)>,
    /// The running command is to be propagated as this argument vector instead of its own
    /// (Redis's `rewriteClientCommandVector`).
    pub rewrite: Option<Vec<Bytes>>,
    /// The running command must not be propagated (it propagated its effects itself).
    pub prevent_propagation: bool,
    /// The running command is propagated even if it changed nothing (FLUSHALL on empty dbs).
    pub force_propagation: bool,
    /// The error reply was counted in the error statistics already (a script returning the
    /// error of a command it called): only the command's failed calls count it.
    pub error_counted: bool,
    /// Close this connection after the reply is written (QUIT).
    pub close_after_reply: bool,
    /// Argument positions (bits) of written keys the command left unchanged after all: they
    /// are not signalled as modified (SMOVE of a member the destination already holds).
    pub unchanged_args: u64,
    /// Sorted sets opened for work, to be packed again once the command is done.
    pub opened_zsets: Vec<(usize, Box<[u8]>)>,
    /// Requests few commands make, when one was made.
    pub requests: Option<Box<Requests>>,
}

impl Effects {
    /// The rare requests, created on first use.
    pub fn request(&mut self) -> &mut Requests {
        self.requests.get_or_insert_with(Default::default)
    }

    /// The block a blocking command asked for, if any.
    pub fn blocked(&self) -> Option<&Block> {
        self.requests.as_ref().and_then(|r| r.block.as_ref())
    }
}

/// What a handler asks of its connection or of the server beyond the dataset.
#[derive(Debug, Default)]
pub struct Requests {
    pub kill_clients: Vec<u64>,
    pub shutdown: Option<ShutdownRequest>,
    /// Config directives changed by CONFIG SET, for the server to apply.
    pub config_changed: Vec<&'static str>,
    /// MONITOR: start streaming executed commands to this connection.
    pub start_monitor: bool,
    /// CONFIG REWRITE asked for this file to be rewritten.
    pub rewrite_config: Option<String>,
    /// File work the server does for the command before its reply is final.
    pub persistence: Option<PersistenceRequest>,
    /// WAIT found too few acknowledgements: the client waits for more.
    pub wait_acks: Option<WaitAcks>,
    /// SYNC / PSYNC turned this connection into a replica link.
    pub replica_sync: Option<ReplicaSync>,
    /// A blocking command found nothing to serve: park the client.
    pub block: Option<Block>,
    /// MIGRATE serialized its keys: the connection talks to the target, then runs it again.
    pub migrate: Option<Box<super::migrate::MigrateJob>>,
}

/// What a client blocked in WAIT waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitAcks {
    pub numreplicas: i64,
    /// The stream offset the replicas must acknowledge (the client's last write).
    pub offset: u64,
    /// Unix milliseconds to give up at; 0 waits forever.
    pub deadline_ms: u64,
}

/// Persistence work a command asks the server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistenceRequest {
    /// BGREWRITEAOF.
    RewriteAof,
    /// DEBUG LOADAOF: empty the dataset and load the AOF back.
    LoadAof,
    /// DEBUG RELOAD: save the snapshot (unless not `save`), empty the dataset (if `flush`) and
    /// load the file back (`merge`: its keys and libraries may replace existing ones).
    Reload {
        save: bool,
        flush: bool,
        merge: bool,
    },
    /// SAVE: write the snapshot before replying.
    Save,
    /// BGSAVE: cut the snapshot and start writing it in the background.
    Bgsave,
}

/// What a blocked client waits for.
#[derive(Debug, Clone)]
pub struct Block {
    /// The keys, in the client's database at the time it blocked.
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// Unix time in milliseconds at which to give up; 0 waits forever.
    pub deadline_ms: u64,
    /// The reply on timeout.
    pub timeout_reply: Reply,
    /// The arguments to run again on wake-up, when not the command's own (XREAD with `$`).
    pub retry_args: Option<Vec<Bytes>>,
}

/// How a replica asked for the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaSync {
    /// SYNC: the RDB payload, then the stream.
    Legacy,
    /// PSYNC: `+FULLRESYNC <replid> <offset>`, the RDB payload, then the stream.
    Psync,
    /// PSYNC that can continue: `+CONTINUE <replid>`, then the stream after this offset
    /// (the last byte the replica already has).
    Continue(u64),
}

/// The LFU settings while an LFU maxmemory policy is selected.
pub fn lfu_params(server: &ServerState) -> Option<crate::keyspace::evict::LfuParams> {
    lfu_params_of(&server.config())
}

fn lfu_params_of(config: &crate::config::Config) -> Option<crate::keyspace::evict::LfuParams> {
    use crate::config::MaxmemoryPolicy::{AllkeysLfu, VolatileLfu};
    matches!(config.maxmemory_policy, AllkeysLfu | VolatileLfu).then(|| {
        crate::keyspace::evict::LfuParams {
            log_factor: config.lfu_log_factor.max(0) as u64,
            decay_minutes: config.lfu_decay_time.max(0) as u64,
        }
    })
}

/// Keeps successive commands in the same microsecond on different random sequences.
static RANDOM_SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A random generator for one command (SPOP, HRANDFIELD, eviction sampling, the LFU coin):
/// uniform enough for sampling, seeded from the command's time and client.
pub struct Rng(u64);

impl Rng {
    pub fn for_command(ctx: &ExecCtx) -> Rng {
        Rng::seeded(ctx.now_us ^ ctx.client.id.rotate_left(32))
    }

    pub fn seeded(seed: u64) -> Rng {
        Rng(seed ^ RANDOM_SEQUENCE.fetch_add(1, Relaxed).rotate_left(48))
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (super::keys::splitmix64(&mut self.0) % n as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (super::keys::splitmix64(&mut self.0) >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct ExecCtx<'a> {
    /// Unix time in milliseconds, fixed for the whole command.
    pub now_ms: u64,
    /// The same instant in microseconds (TIME).
    pub now_us: u64,
    ks: Option<Locked<'a>>,
    pub client: &'a mut ClientState,
    pub server: &'a ServerState,
    pub effects: Effects,
    /// Full name of the running command (`get`, `client|list`).
    pub current_command: &'static str,
    /// Blocking commands must answer at once (inside EXEC), as on timeout.
    pub deny_blocking: bool,
    /// The LFU settings if an LFU policy is selected, read once per command.
    lfu: Option<crate::keyspace::evict::LfuParams>,
    /// The command was called by a Lua script (Redis's `CLIENT_SCRIPT` caller).
    pub in_script: bool,
}

impl<'a> ExecCtx<'a> {
    pub fn new(
        now_us: u64,
        ks: Option<Locked<'a>>,
        client: &'a mut ClientState,
        server: &'a ServerState,
    ) -> Self {
        Self::with_config(now_us, ks, client, server, &server.config())
    }

    /// `new`, with the configuration the caller already loaded.
    pub fn with_config(
        now_us: u64,
        ks: Option<Locked<'a>>,
        client: &'a mut ClientState,
        server: &'a ServerState,
        config: &crate::config::Config,
    ) -> Self {
        ExecCtx {
            now_ms: now_us / 1000,
            now_us,
            ks,
            client,
            server,
            effects: Effects::default(),
            current_command: "",
            deny_blocking: false,
            lfu: lfu_params_of(config),
            in_script: false,
        }
    }

    /// The locked shards. A command whose table entry says it touches no keys must not call
    /// this: that would be a table error, caught here.
    pub fn ks(&mut self) -> &mut Locked<'a> {
        self.ks
            .as_mut()
            .expect("command scope does not lock the keyspace")
    }

    pub fn db(&self) -> usize {
        self.client.db
    }

    pub fn lru_now(&self) -> u32 {
        (self.now_ms / 1000) as u32
    }

    fn lookup(&mut self, db: usize, key: &[u8], touch: bool, write: bool) -> Option<&mut Entry> {
        let now = self.now_ms;
        let lru = self.lru_now();
        let no_touch = self.client.no_touch;
        let replica = self.server.role.is_replica();
        let ks = self
            .ks
            .as_mut()
            .expect("command scope does not lock the keyspace");
        // On a replica expiry belongs to the primary: its stream sees every key as live, and
        // reads by other clients treat an expired key as missing without deleting it. While
        // CLIENT PAUSE holds, the dataset stays as it is in the same way.
        let keep_expired = (replica && !write) || self.server.pause.holds(now, true);
        let (entry, expired) = if replica && self.client.is_master {
            ks.lookup(db, key, 0)
        } else if keep_expired && ks.peek(db, key).is_some_and(|e| e.is_expired(now)) {
            (None, false)
        } else {
            ks.lookup(db, key, now)
        };
        if expired {
            self.server.stats.expired_keys.fetch_add(1, Relaxed);
            super::pubsub::notify_keyspace_event(
                self.server,
                notify::EXPIRED,
                "expired",
                db,
                key,
                now,
            );
            self.effects.expired.push((db, key.into()));
            let del = match self.server.config().lazyfree_lazy_expire {
                true => "UNLINK",
                false => "DEL",
            };
            self.effects.propagate.push((
                db,
                vec![
                    Bytes::from_static(del.as_bytes()),
                    Bytes::copy_from_slice(key),
                ],
            ));
        }
        let entry = entry?;
        if touch && !no_touch {
            match self.lfu {
                Some(p) => {
                    let coin = Rng::seeded(self.now_us).unit();
                    crate::keyspace::evict::lfu_touch(entry, lru, p, coin);
                }
                None => entry.lru_secs = lru,
            }
        }
        Some(entry)
    }

    /// Redis's `lookupKeyRead`: lazy expiry, hit/miss statistics, access time.
    pub fn lookup_read(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.client.db;
        let stats = &self.server.stats;
        let found = self.lookup(db, key, true, false);
        if found.is_some() {
            stats.keyspace_hits.fetch_add(1, Relaxed);
        } else {
            stats.keyspace_misses.fetch_add(1, Relaxed);
        }
        found
    }

    /// Redis's `lookupKeyReadWithFlags(LOOKUP_NOTOUCH)`: lazy expiry and hit/miss statistics
    /// but no access time (EXISTS, TYPE, TTL, OBJECT).
    pub fn lookup_read_no_touch(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.client.db;
        let stats = &self.server.stats;
        let found = self.lookup(db, key, false, false);
        if found.is_some() {
            stats.keyspace_hits.fetch_add(1, Relaxed);
        } else {
            stats.keyspace_misses.fetch_add(1, Relaxed);
        }
        found
    }

    /// Redis's `lookupKeyWrite`: lazy expiry and access time, no statistics.
    pub fn lookup_write(&mut self, key: &[u8]) -> Option<&mut Entry> {
        let db = self.client.db;
        self.lookup(db, key, true, true)
    }

    /// Redis's `expireIfNeeded` on its own: deletes the key (and propagates that) when its
    /// time has passed, with no statistics or access time. A replica only hides it.
    pub fn expire_if_needed(&mut self, key: &[u8]) {
        let db = self.client.db;
        self.lookup(db, key, false, false);
    }

    /// Looks a key up in another database (MOVE, COPY).
    pub fn lookup_in(&mut self, db: usize, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(db, key, true, true)
    }

    /// Reads a string value: `Ok(None)` when missing, WRONGTYPE for other types.
    pub fn read_str(&mut self, key: &[u8]) -> Result<Option<&mut StrValue>, ErrorReply> {
        match self.lookup_read(key) {
            None => Ok(None),
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Ok(Some(s)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    /// Like `read_str` but with write-lookup semantics (no hit/miss statistics).
    pub fn write_str(&mut self, key: &[u8]) -> Result<Option<&mut StrValue>, ErrorReply> {
        match self.lookup_write(key) {
            None => Ok(None),
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Ok(Some(s)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    /// Redis's `setKey`: stores the value, dropping any TTL unless `keep_ttl`.
    pub fn set_key(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        let db = self.client.db;
        self.set_key_in(db, key, value, keep_ttl);
    }

    pub fn set_key_in(&mut self, db: usize, key: &[u8], value: Value, keep_ttl: bool) {
        let lru = self.lru_now();
        let now = self.now_ms;
        let ks = self.ks();
        let mut entry = Entry::new(value, lru);
        if keep_ttl {
            if let (Some(old), _) = ks.lookup(db, key, now) {
                entry.expire_at_ms = old.expire_at_ms;
            }
        }
        match ks.insert(db, key, entry) {
            None => self.notify_in(db, notify::NEW, "new", key),
            // Under LFU an overwritten key keeps its access history.
            Some(old) if self.lfu.is_some() => {
                if let (Some(e), _) = self.ks().lookup(db, key, now) {
                    (e.lfu, e.lru_secs) = (old.lfu, old.lru_secs);
                }
            }
            Some(_) => {}
        }
    }

    /// Adds a key that is not there (Redis's `dbAdd` after RENAME / MOVE / COPY removed any
    /// previous holder): always a `new` key event.
    pub fn add_entry(&mut self, db: usize, key: &[u8], entry: Entry) {
        self.ks().insert(db, key, entry);
        self.notify_in(db, notify::NEW, "new", key);
    }

    /// Packs the sorted sets the command opened (see `keyspace::zset::Stored`).
    /// Ends the command: packs the sorted sets it opened and hands back what it asked for,
    /// with the shards still held (the caller feeds the stream before releasing them).
    pub fn finish(mut self) -> (Effects, Option<Locked<'a>>, &'a mut ClientState) {
        self.close_opened();
        (self.effects, self.ks, self.client)
    }

    pub fn close_opened(&mut self) {
        for (db, key) in std::mem::take(&mut self.effects.opened_zsets) {
            let slot = crate::slot::key_slot(&key);
            if let Some(entry) = self.ks().slot_table(db, slot).and_then(|t| t.get_mut(&key)) {
                if let Value::ZSet(z) = &mut entry.value {
                    z.close();
                }
            }
        }
    }

    /// Deletes a collection its command emptied, with the `del` event Redis sends for it.
    pub fn delete_emptied(&mut self, key: &[u8]) {
        self.delete(key);
        self.notify(notify::GENERIC, "del", key);
    }

    /// Deletes a key from the current database; true if it existed (and had not expired).
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let db = self.client.db;
        self.delete_in(db, key)
    }

    pub fn delete_in(&mut self, db: usize, key: &[u8]) -> bool {
        if self.lookup(db, key, false, true).is_none() {
            return false;
        }
        self.ks().remove(db, key).is_some()
    }

    /// Whether an absolute expiry time is already past and the key should be deleted now
    /// rather than created with it (Redis's `checkAlreadyExpired`): never while replaying the
    /// primary's stream or a file, whose DELs arrive on their own.
    pub fn already_expired(&self, when_ms: i64) -> bool {
        when_ms <= self.now_ms as i64
            && !self.client.is_master
            && self.server.config().replicaof.is_none()
    }

    /// Sets the absolute expiry of an existing key (0 clears it).
    pub fn set_expire(&mut self, key: &[u8], at_ms: u64) -> bool {
        let db = self.client.db;
        self.ks().set_expire(db, key, at_ms)
    }

    /// Publishes a keyspace event for a key of the current database (Redis's
    /// `notifyKeyspaceEvent`); `class` is one of `config::values::notify`.
    pub fn notify(&self, class: u32, event: &str, key: &[u8]) {
        self.notify_in(self.client.db, class, event, key);
    }

    /// Marks where (part of) this command's reply goes among the events it raises to its own
    /// client, for the commands Redis answers between two of their events (SPOP: the pop
    /// event, the reply, then the key's deletion). Only a subscribed client outside a
    /// transaction or script can see the difference.
    pub fn reply_cut(&self, cut: super::pubsub::ReplyCut) {
        if self.client.subscriptions.active() && !self.deny_blocking && !self.in_script {
            self.client.mailbox.cut(cut);
        }
    }

    pub fn notify_in(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        super::pubsub::notify_keyspace_event(self.server, class, event, db, key, self.now_ms);
    }

    pub fn dirty(&mut self, n: u64) {
        self.effects.dirty += n;
    }

    /// A key was modified: clients watching it will fail their EXEC (Redis's
    /// `signalModifiedKey`).
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        super::tracking::invalidate(self.server, key, Some(self.client.id));
        if self.server.watches.is_empty() {
            return;
        }
        let exists = self.ks().peek(db, key).is_some();
        self.server.watches.touch(db, key, exists);
    }

    /// `db` is about to be emptied: touches the watched keys it holds.
    pub fn touch_flushed_db(&mut self, db: usize) {
        let watched = self.server.watches.watched_in(db);
        if watched.is_empty() {
            return;
        }
        let ks = self.ks();
        let present: std::collections::HashSet<Box<[u8]>> = watched
            .into_iter()
            .filter(|k| ks.peek(db, k).is_some())
            .collect();
        self.server
            .watches
            .touch_db(db, |k| present.contains(k), None);
    }

    /// Databases `a` and `b` are about to exchange contents: touches the watched keys whose
    /// value changes (Redis's SWAPDB rules for stale keys included).
    pub fn touch_swapped_dbs(&mut self, a: usize, b: usize) {
        use crate::commands::watch::Presence;
        let now = self.now_ms;
        for (emptied, incoming) in [(a, b), (b, a)] {
            let watched = self.server.watches.watched_in(emptied);
            if watched.is_empty() {
                continue;
            }
            let ks = self.ks();
            let mut here = std::collections::HashSet::new();
            let mut there = std::collections::HashMap::new();
            for key in watched {
                if ks.peek(emptied, &key).is_some() {
                    here.insert(key.clone());
                }
                if let Some(e) = ks.peek(incoming, &key) {
                    let expired = e.is_expired(now);
                    there.insert(key, expired);
                }
            }
            let replaced = |k: &[u8]| Presence {
                exists: there.contains_key(k),
                expired: there.get(k).copied().unwrap_or(false),
            };
            self.server
                .watches
                .touch_db(emptied, |k| here.contains(k), Some(&replaced));
        }
    }

    /// Parks the client until one of `keys` may have something for it, or until the
    /// deadline (0: none), when it gets `timeout_reply`. Where blocking is not allowed
    /// (inside EXEC) that reply comes at once.
    pub fn block(&mut self, keys: Vec<Bytes>, deadline_ms: u64, timeout_reply: Reply) -> Reply {
        if self.deny_blocking {
            return timeout_reply;
        }
        self.effects.request().block = Some(Block {
            db: self.client.db,
            keys,
            deadline_ms,
            timeout_reply,
            retry_args: None,
        });
        Reply::NoReply
    }

    /// `block`, re-running `retry_args` instead of the command's arguments on wake-up.
    pub fn block_with_retry(
        &mut self,
        keys: Vec<Bytes>,
        deadline_ms: u64,
        timeout_reply: Reply,
        retry_args: Vec<Bytes>,
    ) -> Reply {
        let reply = self.block(keys, deadline_ms, timeout_reply);
        if let Some(b) = self.effects.request().block.as_mut() {
            b.retry_args = Some(retry_args);
        }
        reply
    }

    /// Parses a blocking command's timeout in seconds (fractions allowed) into an absolute
    /// deadline in milliseconds, 0 for none (Redis's `getTimeoutFromObjectOrReply`).
    pub fn timeout_arg(&self, arg: &[u8]) -> Result<u64, ErrorReply> {
        let secs = crate::util::parse_f64(arg)
            .filter(|v| !v.is_nan())
            .ok_or(ErrorReply::fixed(
                "ERR timeout is not a float or out of range",
            ))?;
        let ms = (secs * 1000.0).ceil();
        if ms < 0.0 {
            return Err(ErrorReply::fixed("ERR timeout is negative"));
        }
        if ms == 0.0 {
            return Ok(0);
        }
        Ok(self.now_ms.saturating_add(ms.min(i64::MAX as f64) as u64))
    }

    /// Propagates the running command as `argv` instead of as it was called.
    pub fn propagate_as(&mut self, argv: Vec<Bytes>) {
        self.effects.rewrite = Some(argv);
    }

    /// Propagates `argv` now, as a separate command in the current database.
    pub fn also_propagate(&mut self, argv: Vec<Bytes>) {
        let db = self.client.db;
        self.effects.propagate.push((db, argv));
    }

    /// The running command is not propagated as itself.
    pub fn prevent_propagation(&mut self) {
        self.effects.prevent_propagation = true;
    }

    /// The running command is propagated even if it changed nothing.
    pub fn force_propagation(&mut self) {
        self.effects.force_propagation = true;
    }

    /// Propagates the running command as `DEL key`, or `UNLINK key` when `lazy` (the
    /// matching `lazyfree-lazy-*` directive) is set.
    pub fn propagate_as_del(&mut self, key: &[u8], lazy: bool) {
        let name: &'static [u8] = if lazy { b"UNLINK" } else { b"DEL" };
        self.propagate_as(vec![Bytes::from_static(name), Bytes::copy_from_slice(key)]);
    }

    /// Redis's `getLongLongFromObjectOrReply` for an argument.
    pub fn int_arg(&self, arg: &[u8]) -> Result<i64, ErrorReply> {
        crate::util::parse_int(arg).ok_or(errors::NOT_INTEGER)
    }
}

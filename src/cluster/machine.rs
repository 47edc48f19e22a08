//! `ClusterMachine`: the cluster bus protocol as a pure state machine (Redis's cluster.c
//! without its sockets and clock). The driver feeds it one `Input` at a time with the current
//! time, and carries out the `Effect`s it returns: frames to send on links, links to open and
//! close, nodes.conf to save, a new routing Topology to publish, log lines. The machine owns
//! the node table (`ClusterState`), allocates link ids, and draws node ids, ping targets and
//! jitter from its own seeded generator, so a run is a function of its inputs and seed (the
//! simulation in `tests/sim` replays a failing run from its seed).
//!
//! Links: like Redis, every pair of nodes has two links. The outbound link (`node.link`) is
//! opened by this machine (`Effect::Connect`) and carries our PINGs and MEETs; the inbound
//! link (`node.inbound_link`) is accepted by the driver (`Input::Accepted`) and carries the
//! peer's PINGs, which we answer with PONGs on that same link.
//!
//! The protocol itself lives in private submodules: `links` (link table, connect / accept /
//! close), `outgoing` (headers, PING gossip selection, broadcasts), `packet` (clusterProcessPacket),
//! `gossip` (gossip section and ping extensions), `slots_config` (clusterUpdateSlotsConfigWith,
//! epochs), `failure` (PFAIL → FAIL), `cron` (clusterCron) and `admin` (CLUSTER subcommands).

mod admin;
mod cron;
mod failure;
mod gossip;
mod links;
mod outgoing;
mod packet;
mod slots_config;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::bus::message::Message;
use super::node::{NodeFlags, NodeId};
use super::state::{ClusterState, LinkId, Slot, SlotBitmap};
use crate::resp::{ErrorReply, Reply};

/// How long a forgotten node stays banned from re-entering through gossip.
pub const BLACKLIST_TTL_MS: u64 = 60_000;

/// The settings the machine needs, refreshed by `Input::Config` when CONFIG SET changes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// `cluster-node-timeout`.
    pub node_timeout_ms: u64,
    /// `cluster-require-full-coverage`.
    pub require_full_coverage: bool,
    /// The IP this node announces on the bus (`cluster-announce-ip`); empty: peers use the
    /// address they see.
    pub announce_ip: String,
    /// The client port announced on the bus (`cluster-announce-port`, else `port`).
    pub port: u16,
    /// The plaintext port of a TLS node (`cluster-announce-tls-port` rules), else 0.
    pub pport: u16,
    /// The bus port announced (`cluster-announce-bus-port`, else `cluster-port`, else
    /// port + 10000).
    pub cport: u16,
    /// `cluster-announce-hostname`; empty: none (the ping extension is not sent).
    pub hostname: String,
    /// `cluster-announce-human-nodename`; empty: none.
    pub human_nodename: String,
    /// Valkey 8's `cluster-announce-client-ipv4` / `-ipv6`; empty: none.
    pub client_ipv4: String,
    pub client_ipv6: String,
    /// Whether this node announces itself unable to fail over (`cluster-replica-no-failover`).
    pub replica_no_failover: bool,
    /// `cluster-allow-replica-migration`: also lets a master left without slots turn into a
    /// replica of the node that took them.
    pub allow_replica_migration: bool,
}

impl Default for MachineConfig {
    /// Redis's defaults, port 6379.
    fn default() -> Self {
        MachineConfig {
            node_timeout_ms: 15000,
            require_full_coverage: true,
            announce_ip: String::new(),
            port: 6379,
            pport: 0,
            cport: 16379,
            hostname: String::new(),
            human_nodename: String::new(),
            client_ipv4: String::new(),
            client_ipv6: String::new(),
            replica_no_failover: false,
            allow_replica_migration: true,
        }
    }
}

/// What happened, in the order the driver observed it.
#[derive(Debug)]
pub enum Input {
    /// The periodic timer (Redis's clusterCron), every 100 ms.
    Tick,
    /// A peer connected to our bus port; the driver gave the link this id (taken from
    /// `ClusterMachine::new_link_id`). `peer_ip` is the remote address of the socket (a MEET
    /// without an announced IP gives the new node this address); `local_ip` is our side's
    /// address (`getsockname`), from which a node without `cluster-announce-ip` learns its
    /// own IP.
    Accepted {
        link: LinkId,
        peer_ip: String,
        local_ip: String,
    },
    /// An outbound link the machine asked for (`Effect::Connect`) is established.
    Connected { link: LinkId },
    /// A link is gone: connection refused, reset, closed by the peer, or a frame the codec
    /// rejected (the driver closes the socket first).
    LinkClosed { link: LinkId },
    /// One whole, decoded frame arrived on `link`.
    Message { link: LinkId, message: Message },
    /// A CLUSTER subcommand that changes the node table.
    Admin(Admin),
    /// The configuration changed.
    Config(MachineConfig),
    /// A local PUBLISH (`shard: false`, sent to every node) or SPUBLISH (`shard: true`, sent
    /// to the other nodes serving my slots) to propagate over the bus.
    Publish {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
}

/// The CLUSTER subcommands that change the node table. Arguments are already parsed and
/// range-checked by the command handler (arity, integers, slot ranges); the machine checks
/// what depends on the state (unknown node, slot already busy, ...). Where Redis's check
/// needs the keyspace, the handler passes the count it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    Meet {
        ip: String,
        port: u16,
        cport: u16,
    },
    /// Slots in argument order; duplicates are reported as Redis does.
    AddSlots(Vec<Slot>),
    DelSlots(Vec<Slot>),
    /// `keys_in_db`: keys in the database (FLUSHSLOTS needs it empty).
    FlushSlots {
        keys_in_db: u64,
    },
    /// `keys_in_slot`: keys this node holds in `slot` (SETSLOT NODE refuses to give away a
    /// slot that still has keys, and clears MIGRATING of an empty slot).
    SetSlot {
        slot: Slot,
        action: SetSlot,
        keys_in_slot: u64,
    },
    Forget(NodeId),
    /// `keys_in_db`: keys in the client's database (a master holding keys refuses).
    Reset {
        hard: bool,
        keys_in_db: u64,
    },
    SetConfigEpoch(u64),
    BumpEpoch,
    /// Replies `+OK` with an fsync'ed `SaveConfig` effect; a driver whose save fails
    /// replies Redis's `ERR error saving the cluster node config: ...` instead.
    SaveConfig,
    /// CLUSTER REPLICATE: myself replicates this master from now on. The handler checked
    /// Redis's conditions (a known master other than myself; a master myself must be
    /// empty, `keys_in_db` is what it read).
    Replicate(NodeId),
    /// DEBUG CLUSTERLINK KILL: free the node's outbound link (`to`), its inbound link
    /// (`from`) or both; a freed outbound link is reopened by the next cron.
    KillLink {
        node: NodeId,
        to: bool,
        from: bool,
    },
}

/// CLUSTER SETSLOT's forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSlot {
    Migrating(NodeId),
    Importing(NodeId),
    Stable,
    Node(NodeId),
}

/// What the driver must do, in order.
#[derive(Debug)]
pub enum Effect {
    /// Open an outbound link to a node's bus address; report `Connected` or `LinkClosed`.
    Connect {
        link: LinkId,
        ip: String,
        cport: u16,
    },
    /// Encode and queue one frame on a link (dropped when the link is gone). A link still
    /// connecting queues it too, as Redis's send buffer does; it leaves once connected.
    Send { link: LinkId, message: Message },
    /// Close a link; no `LinkClosed` input follows.
    Close { link: LinkId },
    /// Write nodes.conf now (`nodes_conf::render` of the state), atomically; `fsync` as
    /// Redis's CLUSTER_TODO_FSYNC_CONFIG. Coalesced: at most one per step.
    SaveConfig { fsync: bool },
    /// The node table changed in a way routing sees (slots, nodes, addresses, state): build
    /// and publish a new Topology.
    TopologyChanged,
    /// A log line at Redis's `LL_*` level (0 debug, 1 verbose, 2 notice, 3 warning), in
    /// Redis's words.
    Log { level: u8, text: String },
    /// A PUBLISH / PUBLISHSHARD from a known node: deliver it to local subscribers.
    Publish {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// Myself turned into a replica of `master` (its address is in the state): point
    /// replication at it.
    BecomeReplica { master: NodeId },
    /// Myself turned from replica into master (CLUSTER RESET): stop replicating.
    BecomeMaster,
    /// Empty the whole dataset (CLUSTER RESET on a replica).
    FlushAll,
    /// Myself lost these slots to a node with a newer configEpoch while staying a master:
    /// delete the keys it still holds in them.
    DeleteKeysInSlots(Vec<Slot>),
}

/// The outcome of one step.
#[derive(Debug, Default)]
pub struct Effects {
    pub effects: Vec<Effect>,
    /// For `Input::Admin`: the command's reply.
    pub reply: Option<Result<Reply, ErrorReply>>,
}

/// Log levels of `Effect::Log`.
pub(crate) const LL_DEBUG: u8 = 0;
pub(crate) const LL_VERBOSE: u8 = 1;
pub(crate) const LL_NOTICE: u8 = 2;
pub(crate) const LL_WARNING: u8 = 3;

/// Work a step defers to its end (Redis's `todo_before_sleep` bits).
pub(crate) const TODO_UPDATE_STATE: u8 = 1;
pub(crate) const TODO_SAVE_CONFIG: u8 = 2;
pub(crate) const TODO_FSYNC_CONFIG: u8 = 4;

/// What the machine knows about one bus link.
#[derive(Clone, Debug)]
pub(crate) struct LinkInfo {
    /// The node it belongs to; an accepted link is unbound until its first known sender.
    pub node: Option<NodeId>,
    pub inbound: bool,
    /// Outbound links start unconnected until `Input::Connected`.
    pub connected: bool,
    /// Creation time (ms), for the dead-link heuristic.
    pub ctime: u64,
    /// The remote address: the socket peer of an accepted link, the dialled IP otherwise.
    pub peer_ip: String,
    /// Our side's address of an accepted link (empty for outbound links).
    pub local_ip: String,
}

/// One cluster node's protocol state.
pub struct ClusterMachine {
    pub state: ClusterState,
    pub config: MachineConfig,
    /// The replication offset advertised in headers (master_repl_offset, or a replica's
    /// processed offset); the driver keeps it current.
    pub repl_offset: u64,
    /// Messages sent / received per type code (CLUSTER INFO's `cluster_stats_messages_*`).
    pub stats_sent: [u64; 11],
    pub stats_received: [u64; 11],
    /// xorshift state for node ids, ping targets and jitter.
    rng: u64,
    next_link: u64,
    links: BTreeMap<LinkId, LinkInfo>,
    /// Forgotten node → time (ms) it may be learned again.
    blacklist: BTreeMap<NodeId, u64>,
    /// Slots whose owner no longer claims them (kept bound, never advertised in UPDATEs).
    owner_not_claiming: SlotBitmap,
    /// Ticks so far (clusterCron's `iteration`).
    iteration: u64,
    /// PFAIL nodes counted by the last tick; PINGs append that many PFAIL gossip entries.
    stats_pfail_nodes: usize,
    /// Effects and deferred work of the step in progress.
    out: Vec<Effect>,
    todo: u8,
    /// `topology_signature` after the previous step.
    last_signature: u64,
}

impl ClusterMachine {
    /// A machine over a loaded (or freshly created) node table; `seed` drives every random
    /// choice it makes.
    pub fn new(state: ClusterState, config: MachineConfig, seed: u64) -> ClusterMachine {
        let mut machine = ClusterMachine {
            state,
            config,
            repl_offset: 0,
            stats_sent: [0; 11],
            stats_received: [0; 11],
            rng: seed | 1,
            next_link: 1,
            links: BTreeMap::new(),
            blacklist: BTreeMap::new(),
            owner_not_claiming: SlotBitmap::default(),
            iteration: 0,
            stats_pfail_nodes: 0,
            out: Vec::new(),
            todo: 0,
            last_signature: 0,
        };
        machine.sync_myself_with_config(None);
        machine.todo = 0;
        machine.last_signature = machine.topology_signature();
        machine
    }

    /// A fresh id for a link the driver accepted.
    pub fn new_link_id(&mut self) -> LinkId {
        let id = LinkId(self.next_link);
        self.next_link += 1;
        id
    }

    /// The next pseudo-random number.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// A random index below `n` (`n > 0`).
    pub(crate) fn random_below(&mut self, n: usize) -> usize {
        (self.random() % n.max(1) as u64) as usize
    }

    /// A fresh random node id (Redis's getRandomHexChars).
    pub(crate) fn random_node_id(&mut self) -> NodeId {
        let mut bytes = [0u8; 20];
        for chunk in bytes.chunks_mut(8) {
            let r = self.random().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        NodeId::from_random(bytes)
    }

    /// Whether `id` is in the forget blacklist at `now` (expired entries are dropped first).
    pub fn is_blacklisted(&mut self, id: &NodeId, now: u64) -> bool {
        self.blacklist.retain(|_, until| *until >= now);
        self.blacklist.contains_key(id)
    }

    /// The link ids the machine currently tracks, with the node each belongs to and whether
    /// it is inbound (for CLUSTER LINKS and tests).
    pub fn links(&self) -> Vec<(LinkId, Option<NodeId>, bool)> {
        self.links
            .iter()
            .map(|(id, l)| (*id, l.node, l.inbound))
            .collect()
    }
}

impl ClusterMachine {
    /// Feeds one input; returns what the driver must do.
    pub fn step(&mut self, now_ms: u64, input: Input) -> Effects {
        self.out.clear();
        self.todo = 0;
        let reply = match input {
            Input::Tick => {
                self.cron(now_ms);
                None
            }
            Input::Accepted {
                link,
                peer_ip,
                local_ip,
            } => {
                self.on_accepted(now_ms, link, peer_ip, local_ip);
                None
            }
            Input::Connected { link } => {
                self.on_connected(now_ms, link);
                None
            }
            Input::LinkClosed { link } => {
                self.free_link(link, false);
                None
            }
            Input::Message { link, message } => {
                self.process_packet(now_ms, link, message);
                None
            }
            Input::Admin(cmd) => Some(self.admin(now_ms, cmd)),
            Input::Config(config) => {
                let old = std::mem::replace(&mut self.config, config);
                self.sync_myself_with_config(Some(&old));
                None
            }
            Input::Publish {
                shard,
                channel,
                message,
            } => {
                self.propagate_publish(shard, channel, message);
                None
            }
        };
        self.finish_step(now_ms);
        Effects {
            effects: std::mem::take(&mut self.out),
            reply,
        }
    }

    /// The earliest time at which a `Tick` has something to do (the driver ticks every
    /// 100 ms regardless; the simulation uses this to skip idle time). Every tick counts
    /// towards the once-a-second random PING, so this is always the next tick.
    pub fn next_deadline(&self, now_ms: u64) -> u64 {
        now_ms + 100
    }

    /// Runs the deferred work: cluster state, then one coalesced save, then the topology.
    fn finish_step(&mut self, now: u64) {
        let signature = self.topology_signature();
        let mut topology = self.todo & TODO_SAVE_CONFIG != 0 || signature != self.last_signature;
        self.last_signature = signature;
        if self.todo & TODO_UPDATE_STATE != 0 {
            topology |= self.update_state(now);
        }
        if self.todo & TODO_SAVE_CONFIG != 0 {
            let fsync = self.todo & TODO_FSYNC_CONFIG != 0;
            self.out.push(Effect::SaveConfig { fsync });
        }
        if topology {
            self.out.push(Effect::TopologyChanged);
        }
    }

    /// A digest of what the routing snapshot and CLUSTER NODES show besides slots (which
    /// only change with a save): each node's name, flags, address, role, epoch, link, slot
    /// count, and currentEpoch. Ping / pong times are left out on purpose.
    fn topology_signature(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.state.current_epoch.hash(&mut h);
        for n in self.state.nodes() {
            (n.name, n.flags.0, &n.ip, n.port, n.pport, n.cport).hash(&mut h);
            (&n.hostname, n.slaveof, n.config_epoch, n.link.is_some()).hash(&mut h);
            (&n.client_ipv4, &n.client_ipv6).hash(&mut h);
            n.numslots().hash(&mut h);
        }
        h.finish()
    }

    /// clusterUpdateState; logs a change. Returns whether `cluster_state` changed.
    pub(crate) fn update_state(&mut self, now: u64) -> bool {
        let changed = self.state.update_state(
            now,
            self.config.require_full_coverage,
            self.config.node_timeout_ms,
        );
        if changed {
            let text = format!("Cluster state changed: {}", self.state.state.as_str());
            self.log(LL_WARNING, text);
        }
        changed
    }

    pub(crate) fn todo(&mut self, bits: u8) {
        self.todo |= bits;
    }

    pub(crate) fn log(&mut self, level: u8, text: String) {
        self.out.push(Effect::Log { level, text });
    }

    pub(crate) fn emit(&mut self, effect: Effect) {
        self.out.push(effect);
    }

    /// Keeps myself's address, ports, hostname and NOFAILOVER flag in line with the
    /// configuration (clusterUpdateMyself*); `old` is the previous configuration.
    fn sync_myself_with_config(&mut self, old: Option<&MachineConfig>) {
        let cfg = self.config.clone();
        let announce_changed = old.map_or(!cfg.announce_ip.is_empty(), |o| {
            o.announce_ip != cfg.announce_ip
        });
        let me = self.state.myself_mut();
        if announce_changed {
            me.ip = cfg.announce_ip.clone();
        }
        me.port = cfg.port;
        me.pport = cfg.pport;
        me.cport = cfg.cport;
        me.hostname = cfg.hostname.clone();
        me.human_nodename = cfg.human_nodename.clone();
        let client_ips_changed =
            me.client_ipv4 != cfg.client_ipv4 || me.client_ipv6 != cfg.client_ipv6;
        me.client_ipv4 = cfg.client_ipv4.clone();
        me.client_ipv6 = cfg.client_ipv6.clone();
        let before = me.flags;
        me.flags.clear(NodeFlags::NOFAILOVER);
        if cfg.replica_no_failover {
            me.flags.set(NodeFlags::NOFAILOVER);
        }
        if me.flags != before {
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        }
        if client_ips_changed {
            self.todo(TODO_SAVE_CONFIG);
        }
    }
}

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

use super::bus::message::Message;
use super::node::NodeId;
use super::state::{ClusterState, LinkId, Slot};
use crate::resp::{ErrorReply, Reply};

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
    /// Whether this node announces itself unable to fail over (`cluster-replica-no-failover`).
    pub replica_no_failover: bool,
}

/// What happened, in the order the driver observed it.
#[derive(Debug)]
pub enum Input {
    /// The periodic timer (Redis's clusterCron), every 100 ms.
    Tick,
    /// A peer connected to our bus port; the driver gave the link this id (taken from
    /// `ClusterMachine::new_link_id`).
    Accepted { link: LinkId },
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
}

/// The CLUSTER subcommands that change the node table. Arguments are already parsed and
/// range-checked by the command handler (arity, integers, slot ranges); the machine checks
/// what depends on the state (unknown node, slot already busy, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    Meet { ip: String, port: u16, cport: u16 },
    AddSlots(Vec<Slot>),
    DelSlots(Vec<Slot>),
    FlushSlots,
    SetSlot { slot: Slot, action: SetSlot },
    Forget(NodeId),
    Reset { hard: bool },
    SetConfigEpoch(u64),
    BumpEpoch,
    SaveConfig,
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
    /// Encode and queue one frame on a link (dropped when the link is gone).
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
}

/// The outcome of one step.
#[derive(Debug, Default)]
pub struct Effects {
    pub effects: Vec<Effect>,
    /// For `Input::Admin`: the command's reply.
    pub reply: Option<Result<Reply, ErrorReply>>,
}

/// One cluster node's protocol state.
pub struct ClusterMachine {
    pub state: ClusterState,
    pub config: MachineConfig,
    /// xorshift state for node ids, ping targets and jitter.
    rng: u64,
    next_link: u64,
}

impl ClusterMachine {
    /// A machine over a loaded (or freshly created) node table; `seed` drives every random
    /// choice it makes.
    pub fn new(state: ClusterState, config: MachineConfig, seed: u64) -> ClusterMachine {
        ClusterMachine {
            state,
            config,
            rng: seed | 1,
            next_link: 1,
        }
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
}

impl ClusterMachine {
    /// Feeds one input; returns what the driver must do. (Skeleton: the protocol logic is
    /// being written on the `cluster-machine` branch.)
    pub fn step(&mut self, _now_ms: u64, _input: Input) -> Effects {
        Effects::default()
    }

    /// The earliest time at which a `Tick` has something to do (the driver ticks every
    /// 100 ms regardless; the simulation uses this to skip idle time).
    pub fn next_deadline(&self, now_ms: u64) -> u64 {
        now_ms + 100
    }
}

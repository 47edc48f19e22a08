//! `Topology`: the immutable routing snapshot the cluster driver publishes (through
//! `arc-swap`) each time the node table changes, and every keyed command reads without a lock.
//! It holds what Redis's `getNodeByQuery` consults in `server.cluster`: the owner of each slot
//! (`slots[]`, here a compact index into the node list), myself and my master (`slaveof`),
//! myself's open slots (`migrating_slots_to[]`, `importing_slots_from[]`), whether
//! `cluster_state` is ok, and how a node is named in MOVED / ASK
//! (`cluster-preferred-endpoint-type`, Redis's `getPreferredEndpoint`).

use super::node::{NodeFlags, NodeId};
use crate::config::values::ClusterEndpointType;
use crate::slot::{Slot, SLOT_COUNT};
use std::fmt;
use std::ops::RangeInclusive;

/// Position of a node in `Topology::nodes`.
pub type NodeIndex = u16;

/// The owner index of a slot no node serves.
pub const UNASSIGNED: NodeIndex = u16::MAX;

/// One node as routing and redirection see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologyNode {
    pub id: NodeId,
    pub ip: String,
    /// The client port (the TLS port when `tls-cluster` is on, as Redis's `port`).
    pub port: u16,
    /// The plaintext client port of a TLS cluster, 0 when unknown (Redis's `pport`).
    pub pport: u16,
    /// The cluster bus port.
    pub cport: u16,
    /// The announced hostname, empty when none.
    pub hostname: String,
    /// Valkey 8's announced client IPs (empty when none): IPv4 / IPv6 clients are sent
    /// there instead of `ip`.
    pub client_ipv4: String,
    pub client_ipv6: String,
    pub flags: NodeFlags,
    /// For a replica, its master (Redis's `slaveof`).
    pub master: Option<NodeIndex>,
}

/// Where a MOVED or ASK sends the client: `host:port`, split by clients on the last colon
/// (IPv6 addresses are printed bare, as Redis prints them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The routing snapshot. Built once per change, then only read.
#[derive(Clone, Debug)]
pub struct Topology {
    myself: NodeIndex,
    /// Owner of every slot, `UNASSIGNED` when none.
    owners: Box<[NodeIndex]>,
    nodes: Vec<TopologyNode>,
    /// Slots myself is migrating, sorted by slot, with the target.
    migrating: Vec<(Slot, NodeIndex)>,
    /// Slots myself is importing, sorted by slot, with the source.
    importing: Vec<(Slot, NodeIndex)>,
    state_ok: bool,
    endpoint_type: ClusterEndpointType,
}

impl Topology {
    pub fn builder(myself: NodeId) -> TopologyBuilder {
        TopologyBuilder {
            myself,
            nodes: Vec::new(),
            assigned: Vec::new(),
            migrating: Vec::new(),
            importing: Vec::new(),
            state_ok: true,
            endpoint_type: ClusterEndpointType::Ip,
        }
    }

    pub fn myself_index(&self) -> NodeIndex {
        self.myself
    }

    pub fn myself(&self) -> &TopologyNode {
        &self.nodes[self.myself as usize]
    }

    pub fn nodes(&self) -> &[TopologyNode] {
        &self.nodes
    }

    pub fn node(&self, index: NodeIndex) -> Option<&TopologyNode> {
        self.nodes.get(index as usize)
    }

    pub fn index_of(&self, id: &NodeId) -> Option<NodeIndex> {
        self.nodes
            .iter()
            .position(|n| n.id == *id)
            .map(|i| i as NodeIndex)
    }

    /// The node serving `slot`, if any.
    pub fn owner(&self, slot: Slot) -> Option<NodeIndex> {
        match self.owners[slot as usize & (SLOT_COUNT - 1)] {
            UNASSIGNED => None,
            n => Some(n),
        }
    }

    /// The node myself is migrating `slot` to.
    pub fn migrating_to(&self, slot: Slot) -> Option<NodeIndex> {
        find_open(&self.migrating, slot)
    }

    /// The node myself is importing `slot` from.
    pub fn importing_from(&self, slot: Slot) -> Option<NodeIndex> {
        find_open(&self.importing, slot)
    }

    /// Whether myself is migrating or importing any slot.
    pub fn has_open_slots(&self) -> bool {
        !self.migrating.is_empty() || !self.importing.is_empty()
    }

    /// `cluster_state:ok`.
    pub fn state_ok(&self) -> bool {
        self.state_ok
    }

    /// Whether myself is a replica of `master`: its READONLY clients may read `master`'s
    /// slots here.
    pub fn myself_replicates(&self, master: NodeIndex) -> bool {
        let me = self.myself();
        me.flags.has(NodeFlags::SLAVE) && me.master == Some(master)
    }

    /// How a redirect names `node`: its IP, its hostname (`?` when it announced none) or
    /// nothing, per `cluster-preferred-endpoint-type`; the port is the plaintext one when
    /// `plaintext_port` asks for it and it is known.
    pub fn endpoint(&self, node: NodeIndex, plaintext_port: bool) -> Endpoint {
        self.endpoint_for(node, plaintext_port, false)
    }

    /// `endpoint` for a client connected over IPv6 (`ipv6_client`) or IPv4: the IP is the
    /// node's announced client IP of that family when it has one.
    pub fn endpoint_for(
        &self,
        node: NodeIndex,
        plaintext_port: bool,
        ipv6_client: bool,
    ) -> Endpoint {
        let n = &self.nodes[node as usize];
        let client_ip = if ipv6_client {
            &n.client_ipv6
        } else {
            &n.client_ipv4
        };
        let host = match self.endpoint_type {
            ClusterEndpointType::Ip if !client_ip.is_empty() => client_ip.clone(),
            ClusterEndpointType::Ip => n.ip.clone(),
            ClusterEndpointType::Hostname if n.hostname.is_empty() => "?".to_string(),
            ClusterEndpointType::Hostname => n.hostname.clone(),
            ClusterEndpointType::UnknownEndpoint => String::new(),
        };
        let port = if plaintext_port && n.pport != 0 {
            n.pport
        } else {
            n.port
        };
        Endpoint { host, port }
    }
}

fn find_open(open: &[(Slot, NodeIndex)], slot: Slot) -> Option<NodeIndex> {
    if open.is_empty() {
        return None;
    }
    open.binary_search_by_key(&slot, |(s, _)| *s)
        .ok()
        .map(|i| open[i].1)
}

/// A node to put into a topology: its `TopologyNode` (whose master index is filled in by the
/// builder) and its master given by id.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub node: TopologyNode,
    pub master: Option<NodeId>,
}

impl NodeSpec {
    /// A master at `ip:port` with the default bus port (port + 10000).
    pub fn new(id: NodeId, ip: &str, port: u16) -> NodeSpec {
        NodeSpec {
            node: TopologyNode {
                id,
                ip: ip.to_string(),
                port,
                pport: 0,
                cport: port.wrapping_add(10000),
                hostname: String::new(),
                client_ipv4: String::new(),
                client_ipv6: String::new(),
                flags: NodeFlags(NodeFlags::MASTER),
                master: None,
            },
            master: None,
        }
    }

    pub fn hostname(mut self, hostname: &str) -> NodeSpec {
        self.node.hostname = hostname.to_string();
        self
    }

    /// The announced client IPv4 and IPv6 addresses (empty: none).
    pub fn client_ips(mut self, v4: &str, v6: &str) -> NodeSpec {
        self.node.client_ipv4 = v4.to_string();
        self.node.client_ipv6 = v6.to_string();
        self
    }

    pub fn pport(mut self, pport: u16) -> NodeSpec {
        self.node.pport = pport;
        self
    }

    pub fn cport(mut self, cport: u16) -> NodeSpec {
        self.node.cport = cport;
        self
    }

    pub fn flags(mut self, flags: NodeFlags) -> NodeSpec {
        self.node.flags = flags;
        self
    }

    /// Makes this node a replica of `master`.
    pub fn replica_of(mut self, master: NodeId) -> NodeSpec {
        self.node.flags.clear(NodeFlags::MASTER);
        self.node.flags.set(NodeFlags::SLAVE);
        self.master = Some(master);
        self
    }
}

/// Collects nodes, slot owners and open slots by node id, then resolves them to indexes.
/// Naming a node that was never added is a programmer error.
#[derive(Clone, Debug)]
pub struct TopologyBuilder {
    myself: NodeId,
    nodes: Vec<NodeSpec>,
    assigned: Vec<(RangeInclusive<Slot>, NodeId)>,
    migrating: Vec<(Slot, NodeId)>,
    importing: Vec<(Slot, NodeId)>,
    state_ok: bool,
    endpoint_type: ClusterEndpointType,
}

impl TopologyBuilder {
    pub fn node(mut self, node: NodeSpec) -> Self {
        self.nodes.push(node);
        self
    }

    /// Slots `range` are served by `owner` (later calls win).
    pub fn assign(mut self, range: RangeInclusive<Slot>, owner: NodeId) -> Self {
        self.assigned.push((range, owner));
        self
    }

    /// Myself is migrating `slot` to `to` (`CLUSTER SETSLOT slot MIGRATING to`).
    pub fn migrating(mut self, slot: Slot, to: NodeId) -> Self {
        self.migrating.push((slot, to));
        self
    }

    /// Myself is importing `slot` from `from` (`CLUSTER SETSLOT slot IMPORTING from`).
    pub fn importing(mut self, slot: Slot, from: NodeId) -> Self {
        self.importing.push((slot, from));
        self
    }

    pub fn state_ok(mut self, ok: bool) -> Self {
        self.state_ok = ok;
        self
    }

    pub fn endpoint_type(mut self, endpoint_type: ClusterEndpointType) -> Self {
        self.endpoint_type = endpoint_type;
        self
    }

    pub fn build(mut self) -> Topology {
        if !self.nodes.iter().any(|n| n.node.id == self.myself) {
            self.nodes.push(NodeSpec::new(self.myself, "", 0));
        }
        assert!(
            self.nodes.len() < UNASSIGNED as usize,
            "too many nodes for a topology"
        );
        let index = |nodes: &[NodeSpec], id: &NodeId| -> NodeIndex {
            let i = nodes.iter().position(|n| n.node.id == *id);
            i.unwrap_or_else(|| panic!("topology names unknown node {id}")) as NodeIndex
        };
        let mut owners = vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice();
        for (range, owner) in &self.assigned {
            let owner = index(&self.nodes, owner);
            for slot in range.clone() {
                owners[slot as usize & (SLOT_COUNT - 1)] = owner;
            }
        }
        let resolve = |open: &[(Slot, NodeId)]| {
            let mut v: Vec<(Slot, NodeIndex)> = open
                .iter()
                .map(|(slot, id)| (*slot, index(&self.nodes, id)))
                .collect();
            v.sort_unstable_by_key(|(slot, _)| *slot);
            v.dedup_by_key(|(slot, _)| *slot);
            v
        };
        let (migrating, importing) = (resolve(&self.migrating), resolve(&self.importing));
        let myself = index(&self.nodes, &self.myself);
        let mut nodes: Vec<TopologyNode> = self
            .nodes
            .iter()
            .map(|n| TopologyNode {
                master: n.master.as_ref().map(|m| index(&self.nodes, m)),
                ..n.node.clone()
            })
            .collect();
        nodes[myself as usize].flags.set(NodeFlags::MYSELF);
        Topology {
            myself,
            owners,
            nodes,
            migrating,
            importing,
            state_ok: self.state_ok,
            endpoint_type: self.endpoint_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: u8) -> NodeId {
        NodeId([c; 40])
    }

    fn three_masters() -> TopologyBuilder {
        Topology::builder(id(b'a'))
            .node(NodeSpec::new(id(b'a'), "127.0.0.1", 6379))
            .node(NodeSpec::new(id(b'b'), "127.0.0.1", 6380).hostname("b.example"))
            .node(NodeSpec::new(id(b'c'), "::1", 6381).pport(7381))
            .assign(0..=5460, id(b'a'))
            .assign(5461..=10922, id(b'b'))
            .assign(10923..=16383, id(b'c'))
    }

    #[test]
    fn every_slot_resolves_to_its_assigned_owner() {
        let t = three_masters().build();
        assert_eq!(t.owner(0), t.index_of(&id(b'a')));
        assert_eq!(t.owner(5461), t.index_of(&id(b'b')));
        assert_eq!(t.owner(16383), t.index_of(&id(b'c')));
        assert!(t.myself().flags.has(NodeFlags::MYSELF));
        assert_eq!(t.myself().id, id(b'a'));
    }

    #[test]
    fn a_slot_no_range_covers_is_unassigned() {
        let t = Topology::builder(id(b'a')).assign(0..=9, id(b'a')).build();
        assert_eq!(t.owner(9), Some(t.myself_index()));
        assert_eq!(t.owner(10), None);
    }

    #[test]
    fn open_slots_name_their_peer() {
        let t = three_masters()
            .migrating(100, id(b'b'))
            .importing(6000, id(b'b'))
            .build();
        assert_eq!(t.migrating_to(100), t.index_of(&id(b'b')));
        assert_eq!(t.migrating_to(101), None);
        assert_eq!(t.importing_from(6000), t.index_of(&id(b'b')));
        assert_eq!(t.importing_from(100), None);
    }

    #[test]
    fn endpoints_follow_the_preferred_endpoint_type() {
        let b = |ty| {
            let t = three_masters().endpoint_type(ty).build();
            let (a, b) = (
                t.index_of(&id(b'a')).unwrap(),
                t.index_of(&id(b'b')).unwrap(),
            );
            (
                t.endpoint(a, false).to_string(),
                t.endpoint(b, false).to_string(),
            )
        };
        assert_eq!(
            b(ClusterEndpointType::Ip),
            ("127.0.0.1:6379".into(), "127.0.0.1:6380".into())
        );
        assert_eq!(
            b(ClusterEndpointType::Hostname),
            ("?:6379".into(), "b.example:6380".into())
        );
        assert_eq!(
            b(ClusterEndpointType::UnknownEndpoint),
            (":6379".into(), ":6380".into())
        );
    }

    #[test]
    fn ipv6_endpoints_are_bare_and_the_plaintext_port_is_used_when_known() {
        let t = three_masters().build();
        let c = t.index_of(&id(b'c')).unwrap();
        assert_eq!(t.endpoint(c, false).to_string(), "::1:6381");
        assert_eq!(t.endpoint(c, true).to_string(), "::1:7381");
        let a = t.index_of(&id(b'a')).unwrap();
        assert_eq!(t.endpoint(a, true).port, 6379);
    }

    #[test]
    fn a_replica_knows_its_master() {
        let t = Topology::builder(id(b'r'))
            .node(NodeSpec::new(id(b'm'), "10.0.0.1", 6379))
            .node(NodeSpec::new(id(b'r'), "10.0.0.2", 6379).replica_of(id(b'm')))
            .assign(0..=16383, id(b'm'))
            .build();
        let m = t.index_of(&id(b'm')).unwrap();
        assert!(t.myself_replicates(m));
        assert!(!t.myself_replicates(t.myself_index()));
    }

    #[test]
    #[should_panic(expected = "unknown node")]
    fn assigning_to_an_unknown_node_is_a_programmer_error() {
        Topology::builder(id(b'a')).assign(0..=1, id(b'z')).build();
    }
}

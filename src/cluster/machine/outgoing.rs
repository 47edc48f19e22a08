//! What this node sends: the header every frame carries (clusterBuildMessageHdr), PING /
//! PONG / MEET with their gossip section and ping extensions (clusterSendPing), and the
//! broadcasts (FAIL, UPDATE, PONG to all, PUBLISH / PUBLISHSHARD).

use super::{ClusterMachine, Effect};
use crate::cluster::bus::message::{
    mflags, BusIp, GossipEntry, Header, Message, MessageType, PingExt, CLUSTER_STATE_FAIL,
    CLUSTER_STATE_OK, NET_IP_STR_LEN,
};
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::state::{ClusterNode, Health, LinkId};

/// An IP text as a bus field, cut to what fits before the terminating NUL.
pub(super) fn bus_ip(text: &str) -> BusIp {
    let bytes: Vec<u8> = text
        .bytes()
        .take_while(|b| *b != 0)
        .take(NET_IP_STR_LEN - 1)
        .collect();
    BusIp::new(&bytes).unwrap_or(BusIp::EMPTY)
}

/// The gossip entry describing `n` (clusterSetGossipEntry); times travel in seconds.
fn gossip_entry(n: &ClusterNode) -> GossipEntry {
    GossipEntry {
        nodename: n.name,
        ping_sent: (n.ping_sent / 1000) as u32,
        pong_received: (n.pong_received / 1000) as u32,
        ip: bus_ip(&n.ip),
        port: n.port,
        cport: n.cport,
        flags: n.flags,
        pport: n.pport,
    }
}

impl ClusterMachine {
    /// clusterBuildMessageHdr: a replica advertises its master's slots and configEpoch.
    pub(crate) fn build_header(&self) -> Header {
        let me = self.state.myself();
        let master = match me.slaveof.and_then(|m| self.state.node(&m)) {
            Some(m) if me.is_replica() => m,
            _ => me,
        };
        let mut h = Header::new(me.name);
        h.port = self.config.port;
        h.pport = self.config.pport;
        h.cport = self.config.cport;
        h.myip = bus_ip(&self.config.announce_ip);
        h.myslots = Box::new(*master.slots().as_bytes());
        h.slaveof = me.slaveof;
        h.flags = me.flags;
        h.state = match self.state.state {
            Health::Ok => CLUSTER_STATE_OK,
            Health::Fail => CLUSTER_STATE_FAIL,
        };
        h.current_epoch = self.state.current_epoch;
        h.config_epoch = master.config_epoch;
        h.offset = self.repl_offset;
        h
    }

    /// Queues one frame and counts it.
    pub(crate) fn send(&mut self, link: LinkId, message: Message) {
        if let Some(slot) = self.stats_sent.get_mut(usize::from(message.type_code())) {
            *slot += 1;
        }
        self.emit(Effect::Send { link, message });
    }

    /// Sends to every node but myself and handshake nodes, on our outbound links.
    pub(crate) fn broadcast(&mut self, message: &Message) {
        let targets: Vec<LinkId> = self
            .state
            .nodes()
            .filter(|n| !n.flags.has(NodeFlags::MYSELF | NodeFlags::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for link in targets {
            self.send(link, message.clone());
        }
    }

    /// clusterSendPing: a PING on an outbound link starts the node's pending-ping clock.
    pub(crate) fn send_ping(&mut self, now: u64, link: LinkId, kind: MessageType) {
        let outbound_node = self
            .link_info(link)
            .filter(|l| !l.inbound)
            .and_then(|l| l.node);
        if kind == MessageType::Ping {
            if let Some(node) = outbound_node.and_then(|id| self.state.node_mut(&id)) {
                node.ping_sent = now;
            }
        }
        let header = self.build_header();
        let gossip = self.pick_gossip();
        let extensions = self.ping_extensions(now);
        let mut message = match kind {
            MessageType::Pong => Message::pong(header, gossip, extensions),
            MessageType::Meet => Message::meet(header, gossip, extensions),
            _ => Message::ping(header, gossip, extensions),
        };
        if message
            .ping_body()
            .is_some_and(|b| !b.extensions.is_empty())
        {
            message.header.mflags[0] |= mflags::EXT_DATA;
        }
        self.send(link, message);
    }

    /// The gossip section: about a tenth of the table (at least 3) drawn at random among
    /// nodes worth talking about, then every PFAIL node so failure reports spread fast.
    fn pick_gossip(&mut self) -> Vec<GossipEntry> {
        let ids: Vec<NodeId> = self.state.nodes().map(|n| n.name).collect();
        let mut freshnodes = ids.len() as i64 - 2;
        let wanted = ((ids.len() / 10).max(3) as i64).min(freshnodes);
        let mut chosen: Vec<NodeId> = Vec::new();
        let mut out = Vec::new();
        let mut iterations = wanted.max(0) * 3;
        while freshnodes > 0 && (out.len() as i64) < wanted && iterations > 0 {
            iterations -= 1;
            let id = ids[self.random_below(ids.len())];
            let Some(n) = self.state.node(&id) else {
                continue;
            };
            if n.is_myself() || n.timed_out() {
                continue;
            }
            let skip = n.flags.has(NodeFlags::HANDSHAKE | NodeFlags::NOADDR)
                || (n.link.is_none() && n.numslots() == 0);
            if skip {
                freshnodes -= 1;
                continue;
            }
            if chosen.contains(&id) {
                continue;
            }
            chosen.push(id);
            out.push(gossip_entry(n));
            freshnodes -= 1;
        }
        let pfail = self
            .state
            .nodes()
            .filter(|n| n.timed_out() && !n.flags.has(NodeFlags::HANDSHAKE | NodeFlags::NOADDR))
            .take(self.stats_pfail_nodes)
            .map(gossip_entry);
        out.extend(pfail);
        out
    }

    /// Hostname, human nodename and client IPs when configured (Valkey's order), one record
    /// per blacklisted node, and
    /// the shard id when this node has one (7.0 nodes have none).
    fn ping_extensions(&mut self, now: u64) -> Vec<PingExt> {
        let mut ext = Vec::new();
        if !self.config.hostname.is_empty() {
            ext.push(PingExt::Hostname(self.config.hostname.as_bytes().to_vec()));
        }
        if !self.config.human_nodename.is_empty() {
            let name = self.config.human_nodename.as_bytes().to_vec();
            ext.push(PingExt::HumanNodename(name));
        }
        if !self.config.client_ipv4.is_empty() {
            ext.push(PingExt::ClientIpv4(
                self.config.client_ipv4.as_bytes().to_vec(),
            ));
        }
        if !self.config.client_ipv6.is_empty() {
            ext.push(PingExt::ClientIpv6(
                self.config.client_ipv6.as_bytes().to_vec(),
            ));
        }
        self.blacklist.retain(|_, until| *until >= now);
        for (name, until) in &self.blacklist {
            let ttl = until.saturating_sub(now) / 1000;
            ext.push(PingExt::ForgottenNode { name: *name, ttl });
        }
        if let Some(shard) = self.state.myself().shard_id {
            ext.push(PingExt::ShardId(shard));
        }
        ext
    }

    /// clusterBroadcastPong to every node we have a link to.
    pub(crate) fn broadcast_pong(&mut self, now: u64) {
        let targets: Vec<LinkId> = self
            .state
            .nodes()
            .filter(|n| !n.is_myself() && !n.in_handshake())
            .filter_map(|n| n.link)
            .collect();
        for link in targets {
            self.send_ping(now, link, MessageType::Pong);
        }
    }

    /// clusterSendFail: tell everybody `failing` is FAIL.
    pub(crate) fn send_fail(&mut self, failing: NodeId) {
        let message = Message::fail(self.build_header(), failing);
        self.broadcast(&message);
    }

    /// clusterSendUpdate: `about`'s slots at its configEpoch, minus the slots it stopped
    /// claiming, sent on `link`.
    pub(crate) fn send_update(&mut self, link: LinkId, about: &NodeId) {
        let Some(node) = self.state.node(about) else {
            return;
        };
        let mut slots = Box::new(*node.slots().as_bytes());
        for (byte, stale) in slots.iter_mut().zip(self.owner_not_claiming.as_bytes()) {
            *byte &= !stale;
        }
        let message = Message::update(self.build_header(), node.config_epoch, *about, slots);
        self.send(link, message);
    }

    /// clusterPropagatePublish: PUBLISH goes to everybody, PUBLISHSHARD to the other nodes
    /// serving my slots.
    pub(crate) fn propagate_publish(&mut self, shard: bool, channel: Vec<u8>, payload: Vec<u8>) {
        let header = self.build_header();
        if !shard {
            self.broadcast(&Message::publish(header, channel, payload));
            return;
        }
        let message = Message::publish_shard(header, channel, payload);
        let me = self.state.myself_id();
        let targets: Vec<LinkId> = self
            .state
            .nodes_serving_slots_of(&me)
            .iter()
            .filter_map(|id| self.state.node(id))
            .filter(|n| !n.flags.has(NodeFlags::MYSELF | NodeFlags::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for link in targets {
            self.send(link, message.clone());
        }
    }
}

//! One incoming frame, processed as Redis's clusterProcessPacket does: sender resolution,
//! epoch and offset updates, PONG replies, MEET from an unknown node, handshake completion
//! (rename), address changes, PONG bookkeeping, role changes, slot ownership, configEpoch
//! collisions, gossip; FAIL, UPDATE and PUBLISH messages. Everything taken from the frame
//! is peer-controlled: nothing here indexes or unwraps on it.

use super::{
    ClusterMachine, Effect, LL_DEBUG, LL_NOTICE, LL_VERBOSE, LL_WARNING, TODO_FSYNC_CONFIG,
    TODO_SAVE_CONFIG, TODO_UPDATE_STATE,
};
use crate::cluster::bus::message::{Body, Header, Message, MessageType, PingBody, PublishBody};
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::state::{ClusterNode, LinkId, CLUSTER_SLOTS};

/// The sender as resolved for one frame: known and out of handshake, or not.
struct Sender {
    id: Option<NodeId>,
    /// The header's configEpoch when the sender is known (0 otherwise, as Redis).
    config_epoch: u64,
}

pub(super) fn ip_text(ip: &crate::cluster::bus::message::BusIp) -> String {
    String::from_utf8_lossy(ip.text()).into_owned()
}

impl ClusterMachine {
    pub(super) fn process_packet(&mut self, now: u64, link: LinkId, msg: Message) {
        if self.link_info(link).is_none() {
            return;
        }
        if let Some(n) = self.stats_received.get_mut(usize::from(msg.type_code())) {
            *n += 1;
        }
        let sender = self.resolve_sender(now, link, &msg.header);
        match &msg.body {
            Body::Ping(b) | Body::Meet(b) | Body::Pong(b) => {
                let kind = msg.message_type().unwrap_or(MessageType::Ping);
                self.process_ping(now, link, kind, &msg.header, b, sender);
            }
            Body::Fail { nodename } => self.process_fail(now, &msg.header, nodename, sender.id),
            Body::Publish(p) => self.process_publish(false, p, sender.id),
            Body::PublishShard(p) => self.process_publish(true, p, sender.id),
            Body::Update {
                config_epoch,
                nodename,
                slots,
            } => {
                if sender.id.is_some() {
                    self.process_update(*config_epoch, nodename, slots);
                }
            }
            // Failover messages belong to the failover logic, which is not here yet;
            // MODULE messages have no receivers.
            Body::FailoverAuthRequest | Body::FailoverAuthAck | Body::MfStart => {}
            Body::Module { .. } => {}
            Body::Unknown { type_code, .. } => {
                let text = format!("Received unknown packet type: {type_code}");
                self.log(LL_WARNING, text);
            }
        }
    }

    /// getNodeFromLinkAndMsg plus the header updates every known sender gets.
    fn resolve_sender(&mut self, now: u64, link: LinkId, hdr: &Header) -> Sender {
        let bound = self.link_info(link).and_then(|l| l.node);
        let bound_ok = bound
            .and_then(|id| self.state.node(&id))
            .filter(|n| !n.in_handshake())
            .map(|n| n.name);
        let id = bound_ok.or_else(|| self.state.contains(&hdr.sender).then_some(hdr.sender));
        let Some(id) = id else {
            return Sender {
                id: None,
                config_epoch: 0,
            };
        };
        if id == self.state.myself_id() {
            // Our own id from the other end (a MEET to our own address, or a forgery):
            // nothing in such a header may change myself.
            return Sender {
                id: Some(id),
                config_epoch: 0,
            };
        }
        if bound.is_none() {
            self.bind_inbound(link, &id);
        }
        let Some(node) = self.state.node_mut(&id) else {
            return Sender {
                id: None,
                config_epoch: 0,
            };
        };
        node.data_received = now;
        if node.in_handshake() {
            return Sender {
                id: Some(id),
                config_epoch: 0,
            };
        }
        node.repl_offset = hdr.offset as i64;
        node.repl_offset_time = now;
        let raised = hdr.config_epoch > node.config_epoch;
        if raised {
            node.config_epoch = hdr.config_epoch;
        }
        self.state.current_epoch = self.state.current_epoch.max(hdr.current_epoch);
        if raised {
            self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        }
        Sender {
            id: Some(id),
            config_epoch: hdr.config_epoch,
        }
    }

    /// PING, PONG and MEET.
    fn process_ping(
        &mut self,
        now: u64,
        link: LinkId,
        kind: MessageType,
        hdr: &Header,
        body: &PingBody,
        sender: Sender,
    ) {
        if kind != MessageType::Pong {
            self.greet_back(now, link, kind, hdr, body, sender.id);
        }
        let Some(info) = self.link_info(link).cloned() else {
            return;
        };
        if !info.inbound {
            let Some(node) = info.node else { return };
            if !self.check_outbound_peer(now, link, &node, hdr, sender.id) {
                return;
            }
        }
        if let Some(id) = sender.id.filter(|id| *id != self.state.myself_id()) {
            self.copy_nofailover(&id, hdr);
            let handshake = self.state.node(&id).is_none_or(|n| n.in_handshake());
            if kind == MessageType::Ping && !handshake && self.update_address(&id, link, hdr) {
                self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
            }
        }
        if !info.inbound && kind == MessageType::Pong {
            if let Some(node) = self.link_info(link).and_then(|l| l.node) {
                self.pong_received(now, &node);
            }
        }
        let Some(id) = sender.id.filter(|id| *id != self.state.myself_id()) else {
            return;
        };
        self.update_role(&id, hdr);
        self.update_slots_from_header(&id, hdr, sender.config_epoch);
        self.check_epoch_collision(&id, sender.config_epoch);
        self.process_gossip(now, Some(id), &body.gossip);
        self.process_extensions(now, &id, hdr, body);
    }

    /// PING / MEET: learn our own IP, add the unknown node that MEETs us, and answer PONG.
    fn greet_back(
        &mut self,
        now: u64,
        link: LinkId,
        kind: MessageType,
        hdr: &Header,
        body: &PingBody,
        sender: Option<NodeId>,
    ) {
        let meet = kind == MessageType::Meet;
        let local_ip = self.link_info(link).map(|l| l.local_ip.clone());
        let no_ip = self.state.myself().ip.is_empty();
        if (meet || no_ip) && self.config.announce_ip.is_empty() {
            if let Some(ip) = local_ip.filter(|ip| !ip.is_empty()) {
                if ip != self.state.myself().ip {
                    self.state.myself_mut().ip = ip.clone();
                    self.log(
                        LL_WARNING,
                        format!("IP address for this node updated to {ip}"),
                    );
                    self.todo(TODO_SAVE_CONFIG);
                }
            }
        }
        if sender.is_none() && meet {
            self.add_node_from_meet(now, link, hdr);
            self.process_gossip(now, None, &body.gossip);
        }
        self.send_ping(now, link, MessageType::Pong);
    }

    /// A MEET from an unknown node: a handshake node at the announced or socket address.
    fn add_node_from_meet(&mut self, now: u64, link: LinkId, hdr: &Header) {
        let ip = if hdr.myip.is_empty() {
            self.link_info(link)
                .map(|l| l.peer_ip.clone())
                .unwrap_or_default()
        } else {
            ip_text(&hdr.myip)
        };
        let name = self.random_node_id();
        let mut node = ClusterNode::new(name, NodeFlags(NodeFlags::HANDSHAKE), now);
        node.ip = ip;
        node.port = hdr.port;
        node.pport = hdr.pport;
        node.cport = hdr.cport;
        if self.state.add_node(node).is_ok() {
            self.todo(TODO_SAVE_CONFIG);
        }
    }

    /// The frame came on our outbound link to `node`: complete a handshake (or drop the
    /// handshake node when the sender is known already), or detect that another node now
    /// answers at this address. Returns whether processing goes on.
    fn check_outbound_peer(
        &mut self,
        now: u64,
        link: LinkId,
        node: &NodeId,
        hdr: &Header,
        sender: Option<NodeId>,
    ) -> bool {
        let Some(n) = self.state.node(node) else {
            return false;
        };
        if n.in_handshake() {
            if let Some(known) = sender {
                let text = format!(
                    "Handshake: we already know node {known}, updating the address if needed."
                );
                self.log(LL_VERBOSE, text);
                if self.update_address(&known, link, hdr) {
                    self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
                }
                self.del_node(node);
                return false;
            }
            return self.complete_handshake(node, hdr);
        }
        if n.name != hdr.sender {
            let text = format!(
                "PONG contains mismatching sender ID. About node {} added {} ms ago, having flags {}",
                n.name,
                now.saturating_sub(n.ctime),
                n.flags.0
            );
            self.log(LL_DEBUG, text);
            if let Some(n) = self.state.node_mut(node) {
                n.flags.set(NodeFlags::NOADDR);
                n.ip.clear();
                n.port = 0;
                n.pport = 0;
                n.cport = 0;
            }
            self.free_link(link, true);
            self.todo(TODO_SAVE_CONFIG);
            return false;
        }
        true
    }

    /// The handshake node learns its real name and role.
    fn complete_handshake(&mut self, node: &NodeId, hdr: &Header) -> bool {
        let new = hdr.sender;
        if self.state.rename_node(node, new).is_err() {
            return false;
        }
        self.rename_link_node(node, &new);
        if let Some(n) = self.state.node_mut(&new) {
            n.flags.clear(NodeFlags::HANDSHAKE);
            n.flags
                .set(hdr.flags.0 & (NodeFlags::MASTER | NodeFlags::SLAVE));
        }
        self.log(LL_DEBUG, format!("Handshake with node {new} completed."));
        self.todo(TODO_SAVE_CONFIG);
        true
    }

    fn copy_nofailover(&mut self, id: &NodeId, hdr: &Header) {
        if let Some(n) = self.state.node_mut(id) {
            n.flags.clear(NodeFlags::NOFAILOVER);
            n.flags.set(hdr.flags.0 & NodeFlags::NOFAILOVER);
        }
    }

    /// nodeUpdateAddressIfNeeded: a PING from `id` on a link other than our outbound link
    /// tells where the node is now. A change drops our outbound link so it reconnects.
    pub(super) fn update_address(&mut self, id: &NodeId, link: LinkId, hdr: &Header) -> bool {
        let Some(n) = self.state.node(id) else {
            return false;
        };
        if n.link == Some(link) || n.is_myself() {
            return false;
        }
        let ip = if hdr.myip.is_empty() {
            match self.link_info(link) {
                Some(l) if !l.peer_ip.is_empty() => l.peer_ip.clone(),
                _ => return false,
            }
        } else {
            ip_text(&hdr.myip)
        };
        if n.port == hdr.port && n.cport == hdr.cport && n.pport == hdr.pport && n.ip == ip {
            return false;
        }
        let old_link = n.link;
        if let Some(n) = self.state.node_mut(id) {
            n.ip = ip;
            n.port = hdr.port;
            n.pport = hdr.pport;
            n.cport = hdr.cport;
            n.flags.clear(NodeFlags::NOADDR);
        }
        if let Some(old) = old_link {
            self.free_link(old, true);
        }
        let n = self.state.node(id);
        let text = format!(
            "Address updated for node {id}, now {}:{}",
            n.map(|n| n.ip.as_str()).unwrap_or(""),
            hdr.port
        );
        self.log(LL_WARNING, text);
        if self.state.myself().slaveof == Some(*id) && self.state.myself().is_replica() {
            self.emit(Effect::BecomeReplica { master: *id });
        }
        true
    }

    /// A PONG on our outbound link: the node is alive; PFAIL goes, FAIL may go.
    fn pong_received(&mut self, now: u64, id: &NodeId) {
        let Some(n) = self.state.node_mut(id) else {
            return;
        };
        n.pong_received = now;
        n.ping_sent = 0;
        if n.timed_out() {
            n.flags.clear(NodeFlags::PFAIL);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        } else if n.failed() {
            self.clear_node_failure_if_needed(now, id);
        }
    }

    /// The header's `slaveof` decides the sender's role.
    fn update_role(&mut self, id: &NodeId, hdr: &Header) {
        let Some(n) = self.state.node(id) else { return };
        let Some(master) = hdr.slaveof else {
            if !n.is_master() {
                let _ = self.state.node_set_master(id);
                self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
            }
            return;
        };
        if n.is_master() {
            self.state.del_node_slots(id);
            if let Some(n) = self.state.node_mut(id) {
                n.flags.clear(NodeFlags::MASTER | NodeFlags::MIGRATE_TO);
                n.flags.set(NodeFlags::SLAVE);
            }
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        }
        let current = self.state.node(id).and_then(|n| n.slaveof);
        if master != *id && self.state.contains(&master) && current != Some(master) {
            let _ = self.state.set_replica_of(id, &master);
            self.todo(TODO_SAVE_CONFIG);
        }
    }

    /// Slots claimed in the header against our view of the sender's master: adopt newer
    /// claims of a master sender, and tell a stale sender with an UPDATE.
    fn update_slots_from_header(&mut self, id: &NodeId, hdr: &Header, epoch: u64) {
        let Some(n) = self.state.node(id) else { return };
        let is_master = n.is_master();
        let sender_master = if is_master {
            Some(n)
        } else {
            n.slaveof.and_then(|m| self.state.node(&m))
        };
        let dirty = sender_master.is_some_and(|m| m.slots().as_bytes() != &*hdr.myslots);
        if !dirty {
            return;
        }
        if is_master {
            self.update_slots_config_with(id, epoch, &hdr.myslots);
        }
        if let Some(owner) = self.newer_owner_of_claimed(id, &hdr.myslots, epoch) {
            let text = format!(
                "Node {id} has old slots configuration, sending an UPDATE message about {owner}"
            );
            self.log(LL_VERBOSE, text);
            if let Some(link) = self.state.node(id).and_then(|n| n.link) {
                self.send_update(link, &owner);
            }
        }
    }

    /// The first slot `sender` claims that we know is owned, with a greater configEpoch,
    /// by somebody else.
    fn newer_owner_of_claimed(
        &self,
        sender: &NodeId,
        claimed: &[u8; CLUSTER_SLOTS / 8],
        epoch: u64,
    ) -> Option<NodeId> {
        (0..CLUSTER_SLOTS as u16)
            .filter(|s| claimed[usize::from(s >> 3)] & (1 << (s & 7)) != 0)
            .filter(|s| !self.slot_unclaimed(*s))
            .filter_map(|s| self.state.slot_owner(s).copied())
            .filter(|owner| owner != sender)
            .find(|owner| {
                self.state
                    .node(owner)
                    .is_some_and(|o| o.config_epoch > epoch)
            })
    }

    fn check_epoch_collision(&mut self, id: &NodeId, epoch: u64) {
        let sender_master = self.state.node(id).is_some_and(|n| n.is_master());
        let me = self.state.myself();
        if sender_master && me.is_master() && epoch == me.config_epoch {
            self.handle_config_epoch_collision(id);
        }
    }

    fn process_fail(&mut self, now: u64, hdr: &Header, about: &NodeId, sender: Option<NodeId>) {
        if sender.is_none() {
            let text = format!(
                "Ignoring FAIL message from unknown node {} about {about}",
                hdr.sender
            );
            self.log(LL_NOTICE, text);
            return;
        }
        let Some(n) = self.state.node_mut(about) else {
            return;
        };
        if n.flags.has(NodeFlags::FAIL | NodeFlags::MYSELF) {
            return;
        }
        n.flags.set(NodeFlags::FAIL);
        n.flags.clear(NodeFlags::PFAIL);
        n.fail_time = now;
        let text = format!("FAIL message received from {} about {about}", hdr.sender);
        self.log(LL_NOTICE, text);
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
    }

    fn process_publish(&mut self, shard: bool, p: &PublishBody, sender: Option<NodeId>) {
        if sender.is_some() {
            self.emit(Effect::Publish {
                shard,
                channel: p.channel.clone(),
                message: p.message.clone(),
            });
        }
    }

    /// UPDATE: a newer slot configuration of `about`.
    fn process_update(&mut self, epoch: u64, about: &NodeId, slots: &[u8; CLUSTER_SLOTS / 8]) {
        let Some(n) = self.state.node(about) else {
            return;
        };
        // Nobody has a newer view of our own slots to teach us (UPDATEs describe the
        // owner of slots the receiver claims), so one about myself is ignored.
        if n.config_epoch >= epoch || n.is_myself() {
            return;
        }
        if n.is_replica() {
            let _ = self.state.node_set_master(about);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        }
        if let Some(n) = self.state.node_mut(about) {
            n.config_epoch = epoch;
        }
        self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        self.update_slots_config_with(about, epoch, slots);
    }
}

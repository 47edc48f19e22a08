//! Bus link bookkeeping: the machine's table of links, outbound connects (Redis's
//! clusterNodeCronHandleReconnect), accepted links (bound to a node by the first message
//! from a known sender), the first PING / MEET on a fresh outbound link
//! (clusterLinkConnectHandler) and freeing links (freeClusterLink), including every link of
//! a deleted node (clusterDelNode).

use super::{ClusterMachine, Effect, LinkInfo};
use crate::cluster::bus::message::MessageType;
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::state::LinkId;

impl ClusterMachine {
    pub(super) fn on_accepted(
        &mut self,
        now: u64,
        link: LinkId,
        peer_ip: String,
        local_ip: String,
    ) {
        let info = LinkInfo {
            node: None,
            inbound: true,
            connected: true,
            ctime: now,
            peer_ip,
            local_ip,
        };
        self.links.insert(link, info);
    }

    /// The outbound link is up: greet with MEET if the node still carries the MEET flag,
    /// else PING, keeping a ping that was already pending before the reconnect.
    pub(super) fn on_connected(&mut self, now: u64, link: LinkId) {
        let Some(info) = self.links.get_mut(&link) else {
            return;
        };
        info.connected = true;
        let Some(id) = info.node else { return };
        let Some(node) = self.state.node(&id) else {
            return;
        };
        let old_ping_sent = node.ping_sent;
        let kind = if node.flags.has(NodeFlags::MEET) {
            MessageType::Meet
        } else {
            MessageType::Ping
        };
        self.send_ping(now, link, kind);
        if let Some(node) = self.state.node_mut(&id) {
            if old_ping_sent != 0 {
                node.ping_sent = old_ping_sent;
            }
            node.flags.clear(NodeFlags::MEET);
        }
    }

    /// Opens our outbound link to `id` if it has none (not for myself or address-less
    /// nodes).
    pub(super) fn connect_if_needed(&mut self, now: u64, id: &NodeId) {
        let Some(node) = self.state.node(id) else {
            return;
        };
        if node.is_myself() || !node.has_addr() || node.link.is_some() {
            return;
        }
        let (ip, cport) = (node.ip.clone(), node.cport);
        let link = self.new_link_id();
        let info = LinkInfo {
            node: Some(*id),
            inbound: false,
            connected: false,
            ctime: now,
            peer_ip: ip.clone(),
            local_ip: String::new(),
        };
        self.links.insert(link, info);
        if let Some(node) = self.state.node_mut(id) {
            node.link = Some(link);
        }
        self.emit(Effect::Connect { link, ip, cport });
    }

    /// Binds an accepted link to the node that turned out to be on the other end. A node
    /// has one inbound link: an older one is closed.
    pub(super) fn bind_inbound(&mut self, link: LinkId, id: &NodeId) {
        let old = self.state.node(id).and_then(|n| n.inbound_link);
        if let Some(old) = old.filter(|old| *old != link) {
            self.free_link(old, true);
        }
        if let Some(info) = self.links.get_mut(&link) {
            info.node = Some(*id);
        }
        if let Some(node) = self.state.node_mut(id) {
            node.inbound_link = Some(link);
        }
    }

    /// Forgets a link; `close` asks the driver to close the socket (not needed when the
    /// driver reported it closed).
    pub(crate) fn free_link(&mut self, link: LinkId, close: bool) {
        let Some(info) = self.links.remove(&link) else {
            return;
        };
        if let Some(node) = info.node.and_then(|id| self.state.node_mut(&id)) {
            if node.link == Some(link) {
                node.link = None;
            }
            if node.inbound_link == Some(link) {
                node.inbound_link = None;
            }
        }
        if close {
            self.emit(Effect::Close { link });
        }
    }

    /// clusterDelNode: closes the node's links, then removes it from the table.
    pub(crate) fn del_node(&mut self, id: &NodeId) {
        if *id == self.state.myself_id() {
            return;
        }
        let owned: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.node == Some(*id))
            .map(|(k, _)| *k)
            .collect();
        for link in owned {
            self.free_link(link, true);
        }
        self.state.del_node(id);
    }

    pub(super) fn link_info(&self, link: LinkId) -> Option<&LinkInfo> {
        self.links.get(&link)
    }

    /// Re-points a link's node after a rename.
    pub(super) fn rename_link_node(&mut self, old: &NodeId, new: &NodeId) {
        for info in self.links.values_mut() {
            if info.node == Some(*old) {
                info.node = Some(*new);
            }
        }
    }
}

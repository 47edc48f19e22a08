//! The 100 ms timer (clusterCron without failover and replica migration): handshake
//! expiry, outbound (re)connects, a PING each second to a random node with an old pong,
//! PINGs to nodes whose pong is older than node_timeout / 2, dropping links that look dead,
//! and PFAIL for nodes whose ping has been pending longer than node_timeout.

use super::{ClusterMachine, LL_DEBUG, TODO_UPDATE_STATE};
use crate::cluster::bus::message::MessageType;
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::state::Health;

/// A handshake node lives at least this long (ms), else node_timeout.
const MIN_HANDSHAKE_TIMEOUT_MS: u64 = 1000;
/// Random nodes sampled by the once-a-second PING.
const RANDOM_PING_SAMPLES: usize = 5;

impl ClusterMachine {
    pub(super) fn cron(&mut self, now: u64) {
        self.iteration += 1;
        let ids: Vec<NodeId> = self.state.nodes().map(|n| n.name).collect();
        self.stats_pfail_nodes = 0;
        for id in &ids {
            self.cron_reconnect(now, id);
        }
        if self.iteration.is_multiple_of(10) {
            self.ping_random_node(now);
        }
        let mut update_state = false;
        let ids: Vec<NodeId> = self.state.nodes().map(|n| n.name).collect();
        for id in &ids {
            update_state |= self.cron_check_node(now, id);
        }
        if update_state || self.state.state == Health::Fail {
            self.todo(TODO_UPDATE_STATE);
        }
    }

    /// Expires a stale handshake node, else makes sure we have an outbound link.
    fn cron_reconnect(&mut self, now: u64, id: &NodeId) {
        let Some(n) = self.state.node(id) else { return };
        if n.flags.has(NodeFlags::MYSELF | NodeFlags::NOADDR) {
            return;
        }
        if n.timed_out() {
            self.stats_pfail_nodes += 1;
        }
        let timeout = self.config.node_timeout_ms.max(MIN_HANDSHAKE_TIMEOUT_MS);
        if n.in_handshake() && now.saturating_sub(n.ctime) > timeout {
            self.del_node(id);
            return;
        }
        self.connect_if_needed(now, id);
    }

    /// Among a few random nodes with a link and no pending ping, PING the one we heard
    /// from least recently.
    fn ping_random_node(&mut self, now: u64) {
        let ids: Vec<NodeId> = self.state.nodes().map(|n| n.name).collect();
        let mut best: Option<(u64, NodeId)> = None;
        for _ in 0..RANDOM_PING_SAMPLES {
            let id = ids[self.random_below(ids.len())];
            let Some(n) = self.state.node(&id) else {
                continue;
            };
            if n.link.is_none() || n.ping_sent != 0 {
                continue;
            }
            if n.flags.has(NodeFlags::MYSELF | NodeFlags::HANDSHAKE) {
                continue;
            }
            if best.is_none_or(|(pong, _)| pong > n.pong_received) {
                best = Some((n.pong_received, id));
            }
        }
        let Some((_, id)) = best else { return };
        if let Some(link) = self.state.node(&id).and_then(|n| n.link) {
            self.log(LL_DEBUG, format!("Pinging node {id}"));
            self.send_ping(now, link, MessageType::Ping);
        }
    }

    /// Per-node timers; returns true when the node just turned PFAIL.
    fn cron_check_node(&mut self, now: u64, id: &NodeId) -> bool {
        let Some(n) = self.state.node(id) else {
            return false;
        };
        if n.flags
            .has(NodeFlags::MYSELF | NodeFlags::NOADDR | NodeFlags::HANDSHAKE)
        {
            return false;
        }
        let nt = self.config.node_timeout_ms;
        let ping_delay = now.saturating_sub(n.ping_sent);
        let data_delay = now.saturating_sub(n.data_received);
        let link_age = n
            .link
            .and_then(|l| self.link_info(l))
            .map(|l| now.saturating_sub(l.ctime));
        let dead_link = link_age.is_some_and(|age| age > nt)
            && n.ping_sent != 0
            && ping_delay > nt / 2
            && data_delay > nt / 2;
        if dead_link {
            if let Some(link) = n.link {
                self.free_link(link, true);
            }
        }
        let Some(n) = self.state.node(id) else {
            return false;
        };
        if let Some(link) = n.link {
            if n.ping_sent == 0 && now.saturating_sub(n.pong_received) > nt / 2 {
                self.send_ping(now, link, MessageType::Ping);
                return false;
            }
        }
        if n.ping_sent == 0 || ping_delay.min(data_delay) <= nt {
            return false;
        }
        if n.flags.has(NodeFlags::PFAIL | NodeFlags::FAIL) {
            return false;
        }
        self.log(LL_DEBUG, format!("*** NODE {id} possibly failing"));
        if let Some(n) = self.state.node_mut(id) {
            n.flags.set(NodeFlags::PFAIL);
        }
        true
    }
}

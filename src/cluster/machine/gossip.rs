//! The gossip section of PING / PONG / MEET (clusterProcessGossipSection): failure reports
//! from masters, pong times learned second-hand, addresses of unreachable nodes, and nodes
//! learned from trusted senders; then the ping extensions (hostname, human nodename,
//! forgotten nodes, shard id).

use super::packet::ip_text;
use super::{ClusterMachine, BLACKLIST_TTL_MS, LL_VERBOSE, LL_WARNING, TODO_SAVE_CONFIG};
use crate::cluster::bus::message::{mflags, GossipEntry, Header, PingBody, PingExt};
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::state::ClusterNode;

/// A gossiped pong time is accepted up to this far in our future.
const PONG_FUTURE_TOLERANCE_MS: u64 = 500;

impl ClusterMachine {
    /// `sender` is None for a MEET from a node we do not know yet: its entries may refresh
    /// what we know but never add nodes or failure reports.
    pub(super) fn process_gossip(
        &mut self,
        now: u64,
        sender: Option<NodeId>,
        entries: &[GossipEntry],
    ) {
        for g in entries {
            if self.state.contains(&g.nodename) {
                self.gossip_about_known(now, sender, g);
            } else {
                self.gossip_about_unknown(now, sender, g);
            }
        }
    }

    fn gossip_about_known(&mut self, now: u64, sender: Option<NodeId>, g: &GossipEntry) {
        let id = g.nodename;
        let failing = g.flags.has(NodeFlags::FAIL | NodeFlags::PFAIL);
        let reporter = sender.filter(|s| self.state.node(s).is_some_and(|n| n.is_master()));
        if let Some(reporter) = reporter.filter(|_| id != self.state.myself_id()) {
            self.failure_report(now, &id, &reporter, failing);
        }
        let nt = self.config.node_timeout_ms;
        let no_reports = self.state.failure_reports_count(&id, now, nt) == 0;
        if let Some(n) = self.state.node_mut(&id) {
            let pong = u64::from(g.pong_received) * 1000;
            let fresh = pong <= now + PONG_FUTURE_TOLERANCE_MS && pong > n.pong_received;
            if !failing && n.ping_sent == 0 && no_reports && fresh {
                n.pong_received = pong;
            }
        }
        self.maybe_adopt_gossiped_address(g);
    }

    /// A master's gossip adds, refreshes or withdraws its failure report about `id`.
    fn failure_report(&mut self, now: u64, id: &NodeId, reporter: &NodeId, failing: bool) {
        if failing {
            if self.state.add_failure_report(id, reporter, now) {
                let text = format!("Node {reporter} reported node {id} as not reachable.");
                self.log(LL_VERBOSE, text);
            }
            self.mark_node_as_failing_if_needed(now, id);
        } else {
            let nt = self.config.node_timeout_ms;
            if self.state.del_failure_report(id, reporter, now, nt) {
                let text = format!("Node {reporter} reported node {id} is back online.");
                self.log(LL_VERBOSE, text);
            }
        }
    }

    /// A node we cannot reach, seen healthy at another address by someone who can: move
    /// to that address.
    fn maybe_adopt_gossiped_address(&mut self, g: &GossipEntry) {
        let Some(n) = self.state.node(&g.nodename) else {
            return;
        };
        let ip = ip_text(&g.ip);
        let unreachable = n.flags.has(NodeFlags::FAIL | NodeFlags::PFAIL);
        let healthy_entry = !g
            .flags
            .has(NodeFlags::NOADDR | NodeFlags::FAIL | NodeFlags::PFAIL);
        let differs = !n.ip.eq_ignore_ascii_case(&ip) || n.port != g.port || n.cport != g.cport;
        if n.is_myself() || !(unreachable && healthy_entry && differs) {
            return;
        }
        if let Some(link) = n.link {
            self.free_link(link, true);
        }
        if let Some(n) = self.state.node_mut(&g.nodename) {
            n.ip = ip;
            n.port = g.port;
            n.pport = g.pport;
            n.cport = g.cport;
            n.flags.clear(NodeFlags::NOADDR);
        }
    }

    /// A trusted sender tells us about a node we do not know: add it with the gossiped id,
    /// flags and address (never MYSELF, which only our own node may carry), unless it has
    /// no address or was recently forgotten.
    fn gossip_about_unknown(&mut self, now: u64, sender: Option<NodeId>, g: &GossipEntry) {
        if sender.is_none() || g.flags.has(NodeFlags::NOADDR) {
            return;
        }
        if self.is_blacklisted(&g.nodename, now) {
            return;
        }
        let mut flags = g.flags;
        flags.clear(NodeFlags::MYSELF);
        let mut node = ClusterNode::new(g.nodename, flags, now);
        node.ip = ip_text(&g.ip);
        node.port = g.port;
        node.pport = g.pport;
        node.cport = g.cport;
        if self.state.add_node(node).is_ok() {
            self.todo(TODO_SAVE_CONFIG);
        }
    }

    /// Ping extensions of a known sender; an absent hostname, human nodename or client IP
    /// clears ours.
    pub(super) fn process_extensions(
        &mut self,
        now: u64,
        id: &NodeId,
        hdr: &Header,
        body: &PingBody,
    ) {
        let exts: &[PingExt] = if hdr.has_mflag(mflags::EXT_DATA) {
            &body.extensions
        } else {
            &[]
        };
        let mut hostname = String::new();
        let mut human = String::new();
        let mut client_ips = (String::new(), String::new());
        let mut shard = None;
        let mut forgotten = Vec::new();
        for ext in exts {
            match ext {
                PingExt::Hostname(h) => hostname = String::from_utf8_lossy(h).into_owned(),
                PingExt::HumanNodename(h) => human = String::from_utf8_lossy(h).into_owned(),
                PingExt::ShardId(s) => shard = Some(*s),
                PingExt::ForgottenNode { name, ttl } => forgotten.push((*name, *ttl)),
                PingExt::ClientIpv4(ip) => client_ips.0 = String::from_utf8_lossy(ip).into_owned(),
                PingExt::ClientIpv6(ip) => client_ips.1 = String::from_utf8_lossy(ip).into_owned(),
                PingExt::Unknown { ext_type, .. } => {
                    let text = format!("Received unknown extension type {ext_type}");
                    self.log(LL_WARNING, text);
                }
            }
        }
        self.set_announced_names(id, hostname, human, shard);
        self.set_client_ips(id, client_ips);
        for (name, ttl) in forgotten {
            self.forget_on_request(now, id, &name, ttl);
        }
    }

    fn set_announced_names(
        &mut self,
        id: &NodeId,
        hostname: String,
        human: String,
        shard: Option<NodeId>,
    ) {
        let Some(n) = self.state.node_mut(id) else {
            return;
        };
        let changed = n.hostname != hostname || n.human_nodename != human;
        n.hostname = hostname;
        n.human_nodename = human;
        let shard_changed = shard.is_some() && n.shard_id != shard;
        if shard_changed {
            n.shard_id = shard;
        }
        if changed || shard_changed {
            self.todo(TODO_SAVE_CONFIG);
        }
    }

    /// Valkey's updateAnnouncedClientIpV4 / V6: a change is saved to nodes.conf.
    fn set_client_ips(&mut self, id: &NodeId, (v4, v6): (String, String)) {
        let Some(n) = self.state.node_mut(id) else {
            return;
        };
        if n.client_ipv4 != v4 || n.client_ipv6 != v6 {
            n.client_ipv4 = v4;
            n.client_ipv6 = v6;
            self.todo(TODO_SAVE_CONFIG);
        }
    }

    /// A FORGOTTEN_NODE record: forget `name` too, unless it is myself, my master or the
    /// sender itself.
    fn forget_on_request(&mut self, now: u64, sender: &NodeId, name: &NodeId, ttl_s: u64) {
        let me = self.state.myself();
        let protected = *name == me.name || me.slaveof == Some(*name) || name == sender;
        if protected || !self.state.contains(name) {
            return;
        }
        let until = now.saturating_add(ttl_s.saturating_mul(1000).min(BLACKLIST_TTL_MS));
        self.blacklist.insert(*name, until);
        self.del_node(name);
        self.todo(TODO_SAVE_CONFIG);
    }
}

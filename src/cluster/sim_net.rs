//! A tiny in-memory bus for several `ClusterMachine`s, pure and deterministic: a `Connect`
//! to a node's address becomes `Accepted` on that node and `Connected` on the dialler, every
//! `Send` is encoded and decoded with the real codec and delivered as a `Message` on the
//! peer's end of the link, `Close` reaches the other end as `LinkClosed`. Deliveries are
//! FIFO and instant; the clock only moves in `tick_all`. Nodes can be cut off from each
//! other (`partition`), which refuses connects and drops frames between them. Unit tests
//! and the larger simulation build on this.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::bus::{decode, encode};
use super::machine::{Admin, ClusterMachine, Effect, Effects, Input};
use super::state::LinkId;
use crate::resp::{ErrorReply, Reply};

/// One machine on the simulated network, with the address it listens on.
pub struct SimNode {
    pub machine: ClusterMachine,
    pub ip: String,
    /// Effects other than link traffic (saves, topology, logs, publishes, ...), in order.
    pub effects: Vec<Effect>,
}

/// The network: nodes, link wiring, and the queue of inputs not yet delivered.
pub struct SimNet {
    pub nodes: Vec<SimNode>,
    pub now: u64,
    queue: VecDeque<(usize, Input)>,
    /// (node, its link) → (peer node, peer's link).
    wires: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    /// Unordered pairs of nodes that cannot talk.
    cut: BTreeSet<(usize, usize)>,
}

/// Stops a run that never goes quiet (a message storm is a bug).
const MAX_DELIVERIES_PER_RUN: usize = 1_000_000;

impl SimNet {
    pub fn new(start_ms: u64) -> SimNet {
        SimNet {
            nodes: Vec::new(),
            now: start_ms,
            queue: VecDeque::new(),
            wires: BTreeMap::new(),
            cut: BTreeSet::new(),
        }
    }

    /// Adds a machine listening on `ip` and its configured bus port; returns its index.
    pub fn add(&mut self, machine: ClusterMachine, ip: &str) -> usize {
        self.nodes.push(SimNode {
            machine,
            ip: ip.to_string(),
            effects: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Cuts (or heals) the network between two nodes; cutting drops their links.
    pub fn partition(&mut self, a: usize, b: usize, cut: bool) {
        let pair = (a.min(b), a.max(b));
        if !cut {
            self.cut.remove(&pair);
            return;
        }
        self.cut.insert(pair);
        let doomed: Vec<(usize, LinkId)> = self
            .wires
            .iter()
            .filter(|((n, _), (p, _))| (a.min(b), a.max(b)) == ((*n).min(*p), (*n).max(*p)))
            .map(|(k, _)| *k)
            .collect();
        for (node, link) in doomed {
            self.wires.remove(&(node, link));
            self.queue.push_back((node, Input::LinkClosed { link }));
        }
    }

    fn is_cut(&self, a: usize, b: usize) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Runs an admin command on node `n`, then delivers everything it caused.
    pub fn admin(&mut self, n: usize, cmd: Admin) -> Option<Result<Reply, ErrorReply>> {
        let reply = self.deliver(n, Input::Admin(cmd)).reply;
        self.run();
        reply
    }

    /// Advances the clock by 100 ms `ticks` times, ticking every node and delivering
    /// everything after each round.
    pub fn tick_all(&mut self, ticks: usize) {
        for _ in 0..ticks {
            self.now += 100;
            for n in 0..self.nodes.len() {
                self.deliver(n, Input::Tick);
            }
            self.run();
        }
    }

    /// Delivers queued inputs until none is left.
    pub fn run(&mut self) {
        let mut budget = MAX_DELIVERIES_PER_RUN;
        while let Some((n, input)) = self.queue.pop_front() {
            self.deliver(n, input);
            budget -= 1;
            assert!(budget > 0, "the simulated bus never went quiet");
        }
    }

    /// Steps node `n` and routes its effects.
    pub fn deliver(&mut self, n: usize, input: Input) -> Effects {
        let mut fx = self.nodes[n].machine.step(self.now, input);
        for effect in std::mem::take(&mut fx.effects) {
            self.route(n, effect);
        }
        fx
    }

    fn route(&mut self, n: usize, effect: Effect) {
        match effect {
            Effect::Connect { link, ip, cport } => self.connect(n, link, &ip, cport),
            Effect::Send { link, message } => {
                let Some(&(peer, peer_link)) = self.wires.get(&(n, link)) else {
                    return;
                };
                let Ok(message) = decode(&encode(&message)) else {
                    return;
                };
                let input = Input::Message {
                    link: peer_link,
                    message,
                };
                self.queue.push_back((peer, input));
            }
            Effect::Close { link } => {
                if let Some((peer, peer_link)) = self.wires.remove(&(n, link)) {
                    self.wires.remove(&(peer, peer_link));
                    let input = Input::LinkClosed { link: peer_link };
                    self.queue.push_back((peer, input));
                }
            }
            other => self.nodes[n].effects.push(other),
        }
    }

    /// A connect reaches the node listening at `ip:cport`, unless there is none or the
    /// network between them is cut.
    fn connect(&mut self, n: usize, link: LinkId, ip: &str, cport: u16) {
        let target = self
            .nodes
            .iter()
            .position(|node| node.ip == ip && node.machine.config.cport == cport);
        let Some(peer) = target.filter(|p| *p != n && !self.is_cut(n, *p)) else {
            self.queue.push_back((n, Input::LinkClosed { link }));
            return;
        };
        let peer_link = self.nodes[peer].machine.new_link_id();
        self.wires.insert((n, link), (peer, peer_link));
        self.wires.insert((peer, peer_link), (n, link));
        let accepted = Input::Accepted {
            link: peer_link,
            peer_ip: self.nodes[n].ip.clone(),
            local_ip: ip.to_string(),
        };
        self.queue.push_back((peer, accepted));
        self.queue.push_back((n, Input::Connected { link }));
    }
}

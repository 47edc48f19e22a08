//! The virtual network the cluster machines live on. Time is virtual (ms); every event sits
//! in one queue ordered by (time, sequence), so a run is a function of its seed.
//!
//! Links are modelled as the machine expects a TCP driver to behave: `Connect` reaches the
//! host listening on that ip:cport as `Accepted` (with the dialler's IP) and comes back as
//! `Connected`; frames travel in order on their link with a random delay (and may be lost
//! while the weather says so); `Close` reaches the other end as `LinkClosed` after the
//! frames already in flight. A partition blackholes frames between groups and makes
//! connects time out; a close across a partition reaches the other side when it heals. A
//! crash drops the machine, its events and its ends of every link (the peers see their ends
//! close); a restart loads the last nodes.conf the machine asked to save into a new machine
//! with a new seed. Every frame goes through the real codec: encoded when sent, decoded on
//! arrival, and re-encoded to the same bytes.
//!
//! After every step the invariants are checked: currentEpoch and lastVoteEpoch never
//! decrease within a run of a machine, a master's own configEpoch never decreases (across
//! restarts too), and no two hosts ever claim the same slot in their own slot bitmap with
//! the same configEpoch.

use std::collections::BTreeMap;

use ferrodis::cluster::bus::{decode, encode};
use ferrodis::cluster::machine::{Admin, ClusterMachine, Effect, Input, MachineConfig};
use ferrodis::cluster::node::{NodeFlags, NodeId};
use ferrodis::cluster::nodes_conf;
use ferrodis::cluster::state::{ClusterNode, ClusterState, LinkId, CLUSTER_SLOTS};
use ferrodis::resp::{ErrorReply, Reply};

use crate::rng::Rng;

/// The virtual clock starts at a realistic wall-clock time (gossip carries seconds).
pub const T0: u64 = 1_700_000_000_000;
pub const PORT: u16 = 7000;
pub const CPORT: u16 = 17000;
/// The driver ticks every machine this often.
pub const TICK_MS: u64 = 100;

/// How the network behaves right now.
#[derive(Clone, Copy, Debug)]
pub struct Weather {
    /// Per-frame delay, uniform in `delay_min..=delay_max` ms.
    pub delay_min: u64,
    pub delay_max: u64,
    /// Probability (per million) that a frame is delayed by up to `spike_max` more.
    pub spike_ppm: u32,
    pub spike_max: u64,
    /// Probability (per million) that a frame is lost.
    pub loss_ppm: u32,
}

impl Weather {
    pub const CALM: Weather = Weather {
        delay_min: 1,
        delay_max: 5,
        spike_ppm: 0,
        spike_max: 0,
        loss_ppm: 0,
    };
    pub const CHOPPY: Weather = Weather {
        delay_min: 1,
        delay_max: 30,
        spike_ppm: 5_000,
        spike_max: 300,
        loss_ppm: 0,
    };
    pub const STORMY: Weather = Weather {
        delay_min: 1,
        delay_max: 40,
        spike_ppm: 10_000,
        spike_max: 600,
        loss_ppm: 5_000,
    };
}

/// One simulated server: a fixed address and identity, and its machine while it is up.
pub struct Host {
    pub ip: String,
    pub id: NodeId,
    pub machine: Option<ClusterMachine>,
    /// Bumped on every restart; events for an older incarnation are dropped.
    pub inc: u64,
    /// Partition group: hosts in different groups cannot talk.
    group: u32,
    /// The last nodes.conf the machine asked to save.
    pub saved_conf: String,
    pub restarts: u32,
    /// Render nodes.conf at every save, so the host can crash and restart. Rendering is
    /// O(nodes x slots), so large runs keep it for a few hosts only.
    pub persist: bool,
    epoch_floor: u64,
    vote_floor: u64,
    config_epoch_floor: u64,
    /// The (configEpoch, own slot bitmap) last registered in the claim history.
    claim_cache: Option<(u64, Vec<u8>)>,
}

impl Host {
    pub fn state(&self) -> Option<&ClusterState> {
        self.machine.as_ref().map(|m| &m.state)
    }
}

/// A host's end of a link.
struct End {
    inc: u64,
    /// The other end (host, its incarnation, its link id); none for a connect that fails.
    peer: Option<(usize, u64, LinkId)>,
    /// When the last thing sent from this end arrives (links are FIFO).
    fifo: u64,
}

enum Ev {
    Tick,
    Accepted {
        link: LinkId,
        peer_ip: String,
    },
    Connected {
        link: LinkId,
    },
    Closed {
        link: LinkId,
    },
    Frame {
        link: LinkId,
        from: usize,
        bytes: Vec<u8>,
    },
}

struct Event {
    host: usize,
    inc: u64,
    ev: Ev,
}

/// A change of the PFAIL / FAIL bits of a watched host in some observer's table.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub time: u64,
    pub observer: usize,
    pub subject: usize,
    /// The new PFAIL | FAIL bits.
    pub flags: u16,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub steps: u64,
    pub frames_sent: u64,
    pub frames_delivered: u64,
    pub frames_lost: u64,
    pub crashes: u64,
}

pub struct World {
    pub seed: u64,
    pub now: u64,
    pub node_timeout: u64,
    pub hosts: Vec<Host>,
    pub weather: Weather,
    pub stats: Stats,
    pub transitions: Vec<Transition>,
    rng: Rng,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    ends: BTreeMap<(usize, LinkId), End>,
    /// Closes that could not cross a partition: (host, incarnation, link).
    deferred_fins: Vec<(usize, u64, LinkId)>,
    /// Per slot: every (configEpoch, host) that ever claimed it in its own bitmap.
    claims: Vec<Vec<(u64, usize)>>,
    by_id: BTreeMap<NodeId, usize>,
    watched: Vec<usize>,
    watch_state: BTreeMap<(usize, usize), u16>,
    verbose: bool,
}

pub fn config(node_timeout: u64) -> MachineConfig {
    MachineConfig {
        node_timeout_ms: node_timeout,
        port: PORT,
        cport: CPORT,
        ..MachineConfig::default()
    }
}

impl World {
    /// `n` lone masters at 10.0.x.y:7000, none knowing another.
    pub fn new(seed: u64, n: usize, node_timeout: u64) -> World {
        let mut rng = Rng::new(seed);
        let mut world = World {
            seed,
            now: T0,
            node_timeout,
            hosts: Vec::new(),
            weather: Weather::CALM,
            stats: Stats::default(),
            transitions: Vec::new(),
            rng: Rng::new(0),
            seq: 0,
            queue: BTreeMap::new(),
            ends: BTreeMap::new(),
            deferred_fins: Vec::new(),
            claims: vec![Vec::new(); CLUSTER_SLOTS],
            by_id: BTreeMap::new(),
            watched: Vec::new(),
            watch_state: BTreeMap::new(),
            verbose: std::env::var("SIM_VERBOSE").is_ok_and(|v| v == "1"),
        };
        for i in 0..n {
            let mut raw = [0u8; 20];
            for chunk in raw.chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
            let id = NodeId::from_random(raw);
            let me = ClusterNode::new(id, NodeFlags(NodeFlags::MASTER), T0);
            let machine = ClusterMachine::new(ClusterState::new(me), config(node_timeout), {
                rng.next_u64()
            });
            let saved_conf = nodes_conf::render(&machine.state);
            world.by_id.insert(id, i);
            world.hosts.push(Host {
                ip: format!("10.0.{}.{}", i / 250, i % 250 + 1),
                id,
                machine: Some(machine),
                inc: 0,
                group: 0,
                saved_conf,
                restarts: 0,
                persist: true,
                epoch_floor: 0,
                vote_floor: 0,
                config_epoch_floor: 0,
                claim_cache: None,
            });
        }
        world.rng = rng;
        for i in 0..n {
            let at = T0 + world.rng.below(TICK_MS);
            world.schedule(at, i, 0, Ev::Tick);
        }
        world
    }

    /// The host index of a node id, if it is one of ours.
    pub fn host_of(&self, id: &NodeId) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    pub fn is_up(&self, host: usize) -> bool {
        self.hosts[host].machine.is_some()
    }

    pub fn elapsed(&self) -> u64 {
        self.now - T0
    }

    /// Stops the run with the seed and how to replay it.
    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\nsim seed={} failed at t=+{} ms; replay with SIM_SEED={} cargo test --release --test sim",
            self.seed,
            self.elapsed(),
            self.seed
        )
    }

    fn schedule(&mut self, at: u64, host: usize, inc: u64, ev: Ev) {
        self.queue.insert((at, self.seq), Event { host, inc, ev });
        self.seq += 1;
    }

    fn delay(&mut self) -> u64 {
        let w = self.weather;
        let mut d = self.rng.range(w.delay_min, w.delay_max);
        if self.rng.chance(w.spike_ppm) {
            d += self.rng.range(0, w.spike_max);
        }
        d
    }

    fn cut(&self, a: usize, b: usize) -> bool {
        self.hosts[a].group != self.hosts[b].group
    }

    /// Watches the PFAIL / FAIL bits of `subject` in every table (see `transitions`).
    pub fn watch(&mut self, subject: usize) {
        self.watched.push(subject);
    }

    // ---- running ----------------------------------------------------------------------

    /// Delivers every event up to `now + ms`, then sets the clock there.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            self.dispatch(event);
        }
        self.now = until;
    }

    /// Runs, checking `cond` every `every` ms, until it holds (Ok) or `limit` ms pass
    /// (Err with the last reason it gave).
    pub fn run_until(
        &mut self,
        limit: u64,
        every: u64,
        mut cond: impl FnMut(&World) -> Result<(), String>,
    ) -> Result<(), String> {
        let deadline = self.now + limit;
        loop {
            let verdict = cond(self);
            if verdict.is_ok() || self.now >= deadline {
                return verdict;
            }
            self.run_for(every);
        }
    }

    fn dispatch(&mut self, event: Event) {
        let Event { host, inc, ev } = event;
        if self.hosts[host].inc != inc || !self.is_up(host) {
            return;
        }
        match ev {
            Ev::Tick => {
                self.schedule(self.now + TICK_MS, host, inc, Ev::Tick);
                self.step(host, Input::Tick);
            }
            Ev::Accepted { link, peer_ip } => {
                if self.ends.contains_key(&(host, link)) {
                    let local_ip = self.hosts[host].ip.clone();
                    let input = Input::Accepted {
                        link,
                        peer_ip,
                        local_ip,
                    };
                    self.step(host, input);
                }
            }
            Ev::Connected { link } => {
                if self.ends.contains_key(&(host, link)) {
                    self.step(host, Input::Connected { link });
                }
            }
            Ev::Closed { link } => {
                if self.ends.remove(&(host, link)).is_some() {
                    self.step(host, Input::LinkClosed { link });
                }
            }
            Ev::Frame { link, from, bytes } => {
                if !self.ends.contains_key(&(host, link)) || self.cut(host, from) {
                    self.stats.frames_lost += 1;
                    return;
                }
                let message = match decode(&bytes) {
                    Ok(m) => m,
                    Err(e) => {
                        self.fail(&format!("a frame the machine sent does not decode: {e:?}"))
                    }
                };
                if encode(&message) != bytes {
                    self.fail(&format!("codec round trip changed a frame: {message:?}"));
                }
                self.stats.frames_delivered += 1;
                self.step(host, Input::Message { link, message });
            }
        }
    }

    /// Runs an admin command on a host now and carries out its effects.
    pub fn admin(&mut self, host: usize, cmd: Admin) -> Result<Reply, ErrorReply> {
        if self.verbose {
            println!("+{} host {host} admin {cmd:?}", self.elapsed());
        }
        match self.step(host, Input::Admin(cmd)) {
            Some(reply) => reply,
            None => self.fail("an admin command got no reply"),
        }
    }

    /// Like `admin`, failing the run unless the reply is +OK.
    pub fn admin_ok(&mut self, host: usize, cmd: Admin) {
        let what = format!("{cmd:?}");
        match self.admin(host, cmd) {
            Ok(Reply::Simple(s)) if s == "OK" => {}
            other => self.fail(&format!("host {host}: {what} replied {other:?}")),
        }
    }

    fn step(&mut self, host: usize, input: Input) -> Option<Result<Reply, ErrorReply>> {
        if self.verbose && !matches!(input, Input::Tick) {
            println!("+{} host {host} <- {}", self.elapsed(), describe(&input));
        }
        let now = self.now;
        let fx = self.hosts[host].machine.as_mut()?.step(now, input);
        self.stats.steps += 1;
        let mut save = false;
        for effect in fx.effects {
            match effect {
                Effect::Connect { link, ip, cport } => self.connect(host, link, &ip, cport),
                Effect::Send { link, message } => {
                    self.stats.frames_sent += 1;
                    let bytes = encode(&message);
                    self.send(host, link, bytes);
                }
                Effect::Close { link } => {
                    let end = self.ends.remove(&(host, link));
                    if let Some((peer, fifo)) = end.and_then(|e| Some((e.peer?, e.fifo))) {
                        self.fin(host, peer, fifo);
                    }
                }
                Effect::SaveConfig { .. } => save = true,
                Effect::Log { level, text } if self.verbose => {
                    println!("+{} host {host} log[{level}] {text}", self.elapsed());
                }
                _ => {}
            }
        }
        if save && self.hosts[host].persist {
            let state = &self.hosts[host].machine.as_ref()?.state;
            self.hosts[host].saved_conf = nodes_conf::render(state);
        }
        self.check_host(host);
        self.observe(host);
        fx.reply
    }

    fn connect(&mut self, host: usize, link: LinkId, ip: &str, cport: u16) {
        let inc = self.hosts[host].inc;
        let target = self
            .hosts
            .iter()
            .position(|h| h.ip == ip && cport == CPORT)
            .filter(|t| *t != host && self.is_up(*t));
        match target {
            Some(t) if !self.cut(host, t) => {
                let Some(tm) = self.hosts[t].machine.as_mut() else {
                    return;
                };
                let t_link = tm.new_link_id();
                let t_inc = self.hosts[t].inc;
                let accept_at = self.now + self.delay();
                let connected_at = accept_at + self.delay();
                let mine = End {
                    inc,
                    peer: Some((t, t_inc, t_link)),
                    fifo: accept_at,
                };
                let theirs = End {
                    inc: t_inc,
                    peer: Some((host, inc, link)),
                    fifo: connected_at,
                };
                self.ends.insert((host, link), mine);
                self.ends.insert((t, t_link), theirs);
                let peer_ip = self.hosts[host].ip.clone();
                self.schedule(
                    accept_at,
                    t,
                    t_inc,
                    Ev::Accepted {
                        link: t_link,
                        peer_ip,
                    },
                );
                self.schedule(connected_at, host, inc, Ev::Connected { link });
            }
            other => {
                // Refused at once by a live address with nothing listening, or timing out
                // across a partition.
                let wait = if other.is_some() {
                    self.rng.range(200, self.node_timeout.max(201))
                } else {
                    self.rng.range(1, 20)
                };
                let end = End {
                    inc,
                    peer: None,
                    fifo: self.now,
                };
                self.ends.insert((host, link), end);
                self.schedule(self.now + wait, host, inc, Ev::Closed { link });
            }
        }
    }

    fn send(&mut self, host: usize, link: LinkId, bytes: Vec<u8>) {
        let lost = self.rng.chance(self.weather.loss_ppm);
        let delay = self.delay();
        let now = self.now;
        let Some(end) = self.ends.get_mut(&(host, link)) else {
            self.stats.frames_lost += 1;
            return;
        };
        let Some((peer, peer_inc, peer_link)) = end.peer else {
            self.stats.frames_lost += 1;
            return;
        };
        if lost {
            self.stats.frames_lost += 1;
            return;
        }
        let at = (now + delay).max(end.fifo);
        end.fifo = at;
        let ev = Ev::Frame {
            link: peer_link,
            from: host,
            bytes,
        };
        self.schedule(at, peer, peer_inc, ev);
    }

    /// `from` closed its end: the peer's end closes after what is in flight, or when the
    /// partition between them heals.
    fn fin(&mut self, from: usize, (peer, peer_inc, peer_link): (usize, u64, LinkId), fifo: u64) {
        if self.cut(from, peer) {
            self.deferred_fins.push((peer, peer_inc, peer_link));
        } else {
            let at = (self.now + self.delay()).max(fifo);
            self.schedule(at, peer, peer_inc, Ev::Closed { link: peer_link });
        }
    }

    // ---- faults -----------------------------------------------------------------------

    /// Splits the network: host `h` is in group `groups[h]`.
    pub fn partition(&mut self, groups: &[u32]) {
        for (h, g) in self.hosts.iter_mut().zip(groups) {
            h.group = *g;
        }
        if self.verbose {
            println!("+{} partition {groups:?}", self.elapsed());
        }
    }

    /// Joins every group again; closes held back by the partition go through.
    pub fn heal(&mut self) {
        for h in &mut self.hosts {
            h.group = 0;
        }
        for (host, inc, link) in std::mem::take(&mut self.deferred_fins) {
            let at = self.now + self.delay();
            self.schedule(at, host, inc, Ev::Closed { link });
        }
        if self.verbose {
            println!("+{} heal", self.elapsed());
        }
    }

    /// Kills a host: its machine and pending events are gone, its peers see links close.
    pub fn crash(&mut self, host: usize) {
        if !self.hosts[host].persist {
            self.fail(&format!("host {host} crashed but does not keep nodes.conf"));
        }
        if self.hosts[host].machine.take().is_none() {
            return;
        }
        self.stats.crashes += 1;
        let mine: Vec<LinkId> = self
            .ends
            .range((host, LinkId(0))..=(host, LinkId(u64::MAX)))
            .map(|((_, l), _)| *l)
            .collect();
        for link in mine {
            if let Some(end) = self.ends.remove(&(host, link)) {
                if let Some(peer) = end.peer {
                    self.fin(host, peer, end.fifo);
                }
            }
        }
        if self.verbose {
            println!("+{} crash host {host}", self.elapsed());
        }
    }

    /// Starts a crashed host again from its last saved nodes.conf, with a new seed.
    pub fn restart(&mut self, host: usize) {
        if self.is_up(host) {
            return;
        }
        let text = self.hosts[host].saved_conf.clone();
        let state = match nodes_conf::load(text.as_bytes(), self.now) {
            Ok(s) => s,
            Err(e) => self.fail(&format!(
                "host {host}: its nodes.conf does not load: {e}\n{text}"
            )),
        };
        if state.myself_id() != self.hosts[host].id {
            self.fail(&format!("host {host} came back with another id"));
        }
        let seed = self.rng.next_u64();
        let machine = ClusterMachine::new(state, config(self.node_timeout), seed);
        let h = &mut self.hosts[host];
        h.inc += 1;
        h.restarts += 1;
        h.epoch_floor = machine.state.current_epoch;
        h.vote_floor = machine.state.last_vote_epoch;
        h.machine = Some(machine);
        let inc = h.inc;
        let at = self.now + self.rng.below(TICK_MS);
        self.schedule(at, host, inc, Ev::Tick);
        if self.verbose {
            println!("+{} restart host {host}", self.elapsed());
        }
        self.check_host(host);
        self.observe(host);
    }

    /// Resets one random established link (both ends see it close).
    pub fn reset_random_link(&mut self) {
        let links: Vec<(usize, LinkId)> = self
            .ends
            .iter()
            .filter(|(_, e)| e.peer.is_some())
            .map(|(k, _)| *k)
            .collect();
        if links.is_empty() {
            return;
        }
        let (host, link) = links[self.rng.index(links.len())];
        let Some(end) = self.ends.get(&(host, link)) else {
            return;
        };
        let (inc, peer) = (end.inc, end.peer);
        let at = self.now + self.rng.range(1, 5);
        self.schedule(at, host, inc, Ev::Closed { link });
        if let Some((p, p_inc, p_link)) = peer {
            let at = self.now + self.delay();
            self.schedule(at, p, p_inc, Ev::Closed { link: p_link });
        }
    }

    // ---- invariants -------------------------------------------------------------------

    fn check_host(&mut self, host: usize) {
        let Some(state) = self.hosts[host].state() else {
            return;
        };
        let me = state.myself();
        let current = state.current_epoch;
        let vote = state.last_vote_epoch;
        let master = me.is_master();
        let epoch = me.config_epoch;
        let h = &self.hosts[host];
        if current < h.epoch_floor {
            self.fail(&format!(
                "host {host}: currentEpoch went down from {} to {current}",
                h.epoch_floor
            ));
        }
        if vote < h.vote_floor {
            self.fail(&format!(
                "host {host}: lastVoteEpoch went down from {} to {vote}",
                h.vote_floor
            ));
        }
        if master && epoch < h.config_epoch_floor {
            self.fail(&format!(
                "host {host}: its configEpoch went down from {} to {epoch}",
                h.config_epoch_floor
            ));
        }
        let claimed = master && me.numslots() > 0;
        let bitmap: Vec<u8> = if claimed {
            me.slots().as_bytes().to_vec()
        } else {
            Vec::new()
        };
        let fresh = match &h.claim_cache {
            Some((e, b)) => *e != epoch || *b != bitmap,
            None => true,
        };
        let h = &mut self.hosts[host];
        h.epoch_floor = current;
        h.vote_floor = vote;
        if master {
            h.config_epoch_floor = epoch;
        }
        if !fresh {
            return;
        }
        h.claim_cache = Some((epoch, bitmap.clone()));
        for (byte_index, byte) in bitmap.iter().enumerate() {
            if *byte == 0 {
                continue;
            }
            for bit in 0..8 {
                if byte & (1 << bit) == 0 {
                    continue;
                }
                let slot = byte_index * 8 + bit;
                let known = self.claims[slot].iter().find(|(e, _)| *e == epoch).copied();
                match known {
                    Some((_, other)) if other != host => self.fail(&format!(
                        "slot {slot} claimed with configEpoch {epoch} by host {other} and by host {host}"
                    )),
                    Some(_) => {}
                    None => self.claims[slot].push((epoch, host)),
                }
            }
        }
    }

    fn observe(&mut self, host: usize) {
        if self.watched.is_empty() {
            return;
        }
        let Some(state) = self.hosts[host].state() else {
            return;
        };
        let mut changes = Vec::new();
        for &subject in &self.watched {
            if subject == host {
                continue;
            }
            let bits = state
                .node(&self.hosts[subject].id)
                .map_or(0, |n| n.flags.0 & (NodeFlags::PFAIL | NodeFlags::FAIL));
            let old = self.watch_state.get(&(host, subject)).copied().unwrap_or(0);
            if bits != old {
                changes.push((subject, bits));
            }
        }
        for (subject, bits) in changes {
            self.watch_state.insert((host, subject), bits);
            self.transitions.push(Transition {
                time: self.now,
                observer: host,
                subject,
                flags: bits,
            });
        }
    }
}

fn describe(input: &Input) -> String {
    match input {
        Input::Message { link, message } => format!(
            "{:?} from {} on {link:?}",
            message.message_type(),
            message.header.sender
        ),
        other => format!("{other:?}"),
    }
}

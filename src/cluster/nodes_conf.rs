//! nodes.conf as Redis 7.0.15 writes and reads it (clusterSaveConfig / clusterLoadConfig):
//! one CLUSTER NODES-style line per node except handshake nodes, then
//! `vars currentEpoch N lastVoteEpoch N`. Column 2 is `ip:port@cport[,hostname]` (7.0 has
//! no aux fields; Valkey 8's `,client-ipv4=` / `,client-ipv6=` aux fields follow the hostname
//! when a node announces client IPs, and other `key=value` aux fields are skipped).
//! `NodesConf::parse` is a total parser that keeps every field as written
//! (so `render` reproduces a Redis-written file byte for byte); `NodesConf::into_state`
//! applies the loader's semantics: nonzero ping/pong become `now`, `fail` sets fail_time,
//! replicas get configEpoch 0, nodes named as a master or open-slot peer before their own
//! line are created as flagless placeholders, and currentEpoch is raised to the max
//! configEpoch. Where Redis's loader silently accepts garbage (atoi, strtoull) we reject
//! it with a typed error and the 1-based line number.

use super::node::{NodeFlags, NodeId};
use super::state::{ClusterNode, ClusterState, Slot, CLUSTER_SLOTS};
use std::fmt::{self, Write};

/// The default distance between client and bus port, used for files without `@cport`.
pub const CLUSTER_PORT_INCR: u16 = 10000;
/// Longest IP text Redis stores (`NET_IP_STR_LEN` - 1).
pub const MAX_IP_LEN: usize = 45;
/// Longest hostname `cluster-announce-hostname` accepts.
pub const MAX_HOSTNAME_LEN: usize = 255;

/// What is wrong with a nodes.conf line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfErrorKind {
    /// A node line with fewer than 8 fields.
    TooFewFields(usize),
    /// Column 1 is not 40 characters of `[a-z0-9]`.
    BadNodeId,
    /// Column 2 has no `:` or an over-long IP / hostname.
    BadAddress,
    /// Client or bus port not a number in 0..=65535.
    BadPort,
    UnknownFlag(String),
    /// A second line carries the `myself` flag.
    DuplicateMyself,
    /// Column 4 is neither `-` nor a node id.
    BadMasterId,
    /// ping_sent / pong_received not a non-negative integer.
    BadTimestamp,
    BadConfigEpoch,
    /// A slot number outside 0..16383 or not a number.
    BadSlot,
    /// `a-b` with a > b.
    BadSlotRange,
    /// An `[...]` entry that is not `[slot->-id]` or `[slot-<-id]`.
    BadOpenSlot,
    /// `vars` with an odd number of name/value words, or a non-numeric epoch.
    BadVars,
    /// No line carries `myself` (reported on line 0).
    MissingMyself,
    NotUtf8,
}

/// A nodes.conf error with its 1-based line number (0 for whole-file errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    pub line: usize,
    pub kind: ConfErrorKind,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "corrupted cluster config file, line {}: {:?}",
            self.line, self.kind
        )
    }
}

impl std::error::Error for ConfError {}

/// An open slot entry as written on the myself line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenSlot {
    /// `[slot->-id]`: we are moving the slot to `id`.
    Migrating(Slot, NodeId),
    /// `[slot-<-id]`: we are receiving the slot from `id`.
    Importing(Slot, NodeId),
}

/// One node line, every field as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLine {
    pub name: NodeId,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    /// Empty when column 2 has no `,hostname`.
    pub hostname: String,
    /// Valkey 8's `client-ipv4=` / `client-ipv6=` aux fields (nodes.conf only; empty when
    /// absent).
    pub client_ipv4: String,
    pub client_ipv6: String,
    pub flags: NodeFlags,
    pub master: Option<NodeId>,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub config_epoch: u64,
    /// Column 8 is `connected` (anything else reads as disconnected; the loader ignores it).
    pub connected: bool,
    /// Slot ranges in file order; a single slot is `(s, s)`.
    pub slots: Vec<(Slot, Slot)>,
    pub open_slots: Vec<OpenSlot>,
}

impl NodeLine {
    /// The line clusterGenNodeDescription produces for `node` (no trailing newline).
    /// `use_pport` shows the plaintext port when one is known (TLS cluster, plain client);
    /// open slots are listed only on the myself line.
    pub fn describe(state: &ClusterState, node: &ClusterNode, use_pport: bool) -> NodeLine {
        let port = if use_pport && node.pport != 0 {
            node.pport
        } else {
            node.port
        };
        let open_slots = if node.is_myself() {
            state
                .open_slots()
                .into_iter()
                .filter_map(|(s, to, from)| match (to, from) {
                    (Some(to), _) => Some(OpenSlot::Migrating(s, to)),
                    (None, Some(from)) => Some(OpenSlot::Importing(s, from)),
                    (None, None) => None,
                })
                .collect()
        } else {
            Vec::new()
        };
        NodeLine {
            name: node.name,
            ip: node.ip.clone(),
            port,
            cport: node.cport,
            hostname: node.hostname.clone(),
            client_ipv4: String::new(),
            client_ipv6: String::new(),
            flags: node.flags,
            master: node.slaveof,
            ping_sent: node.ping_sent,
            pong_received: node.pong_received,
            config_epoch: state.effective_epoch(node),
            connected: node.link.is_some() || node.is_myself(),
            slots: state.owned_ranges(&node.name),
            open_slots,
        }
    }

    /// Appends the line, without its newline.
    pub fn write_to(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} {}:{}@{}",
            self.name, self.ip, self.port, self.cport
        );
        let aux = [
            ("client-ipv4", &self.client_ipv4),
            ("client-ipv6", &self.client_ipv6),
        ];
        if !self.hostname.is_empty() || aux.iter().any(|(_, v)| !v.is_empty()) {
            out.push(',');
            out.push_str(&self.hostname);
        }
        for (key, value) in aux.iter().filter(|(_, v)| !v.is_empty()) {
            let _ = write!(out, ",{key}={value}");
        }
        let master = self.master.as_ref().map_or("-", |m| m.as_str());
        let link = if self.connected {
            "connected"
        } else {
            "disconnected"
        };
        let _ = write!(
            out,
            " {} {} {} {} {} {}",
            self.flags.render(),
            master,
            self.ping_sent,
            self.pong_received,
            self.config_epoch,
            link
        );
        for &(a, b) in &self.slots {
            let _ = if a == b {
                write!(out, " {a}")
            } else {
                write!(out, " {a}-{b}")
            };
        }
        for open in &self.open_slots {
            let _ = match open {
                OpenSlot::Migrating(s, id) => write!(out, " [{s}->-{id}]"),
                OpenSlot::Importing(s, id) => write!(out, " [{s}-<-{id}]"),
            };
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }
}

/// A parsed nodes.conf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodesConf {
    pub nodes: Vec<NodeLine>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
}

impl NodesConf {
    /// Parses the whole file. Blank lines are skipped; `vars` may appear anywhere (unknown
    /// variables are ignored, as Redis only logs them).
    pub fn parse(text: &[u8]) -> Result<NodesConf, ConfError> {
        let mut conf = NodesConf {
            nodes: Vec::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
        };
        let mut myself_seen = false;
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let err = |kind| ConfError { line, kind };
            let raw = std::str::from_utf8(raw).map_err(|_| err(ConfErrorKind::NotUtf8))?;
            let fields: Vec<&str> = raw.split_ascii_whitespace().collect();
            let Some(first) = fields.first() else {
                continue;
            };
            if first.eq_ignore_ascii_case("vars") {
                conf.parse_vars(&fields[1..]).map_err(err)?;
                continue;
            }
            let node = parse_node_line(&fields).map_err(err)?;
            if node.flags.has(NodeFlags::MYSELF) {
                if myself_seen {
                    return Err(err(ConfErrorKind::DuplicateMyself));
                }
                myself_seen = true;
            }
            conf.nodes.push(node);
        }
        if !myself_seen {
            return Err(ConfError {
                line: 0,
                kind: ConfErrorKind::MissingMyself,
            });
        }
        Ok(conf)
    }

    fn parse_vars(&mut self, pairs: &[&str]) -> Result<(), ConfErrorKind> {
        if !pairs.len().is_multiple_of(2) {
            return Err(ConfErrorKind::BadVars);
        }
        for pair in pairs.chunks_exact(2) {
            let value = || pair[1].parse::<u64>().map_err(|_| ConfErrorKind::BadVars);
            if pair[0].eq_ignore_ascii_case("currentEpoch") {
                self.current_epoch = value()?;
            } else if pair[0].eq_ignore_ascii_case("lastVoteEpoch") {
                self.last_vote_epoch = value()?;
            }
        }
        Ok(())
    }

    /// The file text: node lines, then the vars line, each ending in `\n`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            node.write_to(&mut out);
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        );
        out
    }

    /// The table clusterLoadConfig builds from this file at time `now`. Saving it again
    /// gives the same text except that nonzero ping_sent / pong_received read `now` and
    /// peers read `disconnected` until the driver records their links.
    pub fn into_state(self, now: u64) -> Result<ClusterState, ConfError> {
        let myself = self
            .nodes
            .iter()
            .find(|n| n.flags.has(NodeFlags::MYSELF))
            .map(|n| n.name)
            .ok_or(ConfError {
                line: 0,
                kind: ConfErrorKind::MissingMyself,
            })?;
        let mut state = ClusterState::with_myself_id(myself);
        state.current_epoch = self.current_epoch;
        state.last_vote_epoch = self.last_vote_epoch;
        for line in &self.nodes {
            load_line(&mut state, line, now);
        }
        // Placeholders were created where first named; list nodes in file order instead so
        // that saving right after loading keeps the lines where they were.
        let file_order: Vec<NodeId> = self.nodes.iter().map(|n| n.name).collect();
        state.reorder_like(&file_order);
        state.current_epoch = state.max_epoch();
        Ok(state)
    }
}

/// Parses and loads in one step (what startup does).
pub fn load(text: &[u8], now: u64) -> Result<ClusterState, ConfError> {
    NodesConf::parse(text)?.into_state(now)
}

/// The nodes.conf text for the table: every node but those in handshake, then vars.
pub fn render(state: &ClusterState) -> String {
    let mut out = String::new();
    for node in state.nodes().filter(|n| !n.in_handshake()) {
        let mut line = NodeLine::describe(state, node, false);
        line.client_ipv4 = node.client_ipv4.clone();
        line.client_ipv6 = node.client_ipv6.clone();
        line.write_to(&mut out);
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "vars currentEpoch {} lastVoteEpoch {}",
        state.current_epoch, state.last_vote_epoch
    );
    out
}

fn parse_node_line(fields: &[&str]) -> Result<NodeLine, ConfErrorKind> {
    if fields.len() < 8 {
        return Err(ConfErrorKind::TooFewFields(fields.len()));
    }
    let name = NodeId::parse_loose(fields[0].as_bytes()).ok_or(ConfErrorKind::BadNodeId)?;
    let (ip, port, cport, hostname, aux) = parse_address(fields[1])?;
    let aux_value = |key: &str| {
        aux.iter()
            .find(|(k, _)| *k == key)
            .map_or(String::new(), |(_, v)| v.to_string())
    };
    let flags = parse_flags(fields[2])?;
    let master = if fields[3].starts_with('-') {
        None
    } else {
        Some(NodeId::parse_loose(fields[3].as_bytes()).ok_or(ConfErrorKind::BadMasterId)?)
    };
    let number = |s: &str, e: ConfErrorKind| s.parse::<u64>().map_err(|_| e);
    let mut line = NodeLine {
        name,
        ip,
        port,
        cport,
        hostname,
        client_ipv4: aux_value("client-ipv4"),
        client_ipv6: aux_value("client-ipv6"),
        flags,
        master,
        ping_sent: number(fields[4], ConfErrorKind::BadTimestamp)?,
        pong_received: number(fields[5], ConfErrorKind::BadTimestamp)?,
        config_epoch: number(fields[6], ConfErrorKind::BadConfigEpoch)?,
        connected: fields[7] == "connected",
        slots: Vec::new(),
        open_slots: Vec::new(),
    };
    for field in &fields[8..] {
        if field.starts_with('[') {
            line.open_slots.push(parse_open_slot(field)?);
        } else {
            line.slots.push(parse_slot_range(field)?);
        }
    }
    Ok(line)
}

/// `ip:port[@cport][,hostname[,key=value...]]`; the IP is everything before the last `:`.
#[allow(clippy::type_complexity)]
fn parse_address(
    text: &str,
) -> Result<(String, u16, u16, String, Vec<(&str, &str)>), ConfErrorKind> {
    let mut parts = text.split(',');
    let addr = parts.next().unwrap_or_default();
    let hostname = parts.next().unwrap_or_default();
    let aux = parts
        .map(|kv| kv.split_once('=').ok_or(ConfErrorKind::BadAddress))
        .collect::<Result<Vec<_>, _>>()?;
    let (ip, ports) = addr.rsplit_once(':').ok_or(ConfErrorKind::BadAddress)?;
    if ip.len() > MAX_IP_LEN || hostname.len() > MAX_HOSTNAME_LEN {
        return Err(ConfErrorKind::BadAddress);
    }
    let port_num = |s: &str| s.parse::<u16>().map_err(|_| ConfErrorKind::BadPort);
    let (port, cport) = match ports.split_once('@') {
        Some((p, c)) => (port_num(p)?, port_num(c)?),
        None => {
            let p = port_num(ports)?;
            (
                p,
                p.checked_add(CLUSTER_PORT_INCR)
                    .ok_or(ConfErrorKind::BadPort)?,
            )
        }
    };
    Ok((ip.to_string(), port, cport, hostname.to_string(), aux))
}

/// Flag tokens compare case-insensitively, as Redis's strcasecmp does.
fn parse_flags(text: &str) -> Result<NodeFlags, ConfErrorKind> {
    let mut flags = NodeFlags(0);
    for word in text.split(',') {
        let lower = word.to_ascii_lowercase();
        let one =
            NodeFlags::parse(&lower).ok_or_else(|| ConfErrorKind::UnknownFlag(word.into()))?;
        flags.set(one.0);
    }
    Ok(flags)
}

fn parse_slot(text: &str) -> Result<Slot, ConfErrorKind> {
    match text.parse::<u32>() {
        Ok(s) if (s as usize) < CLUSTER_SLOTS => Ok(s as Slot),
        _ => Err(ConfErrorKind::BadSlot),
    }
}

fn parse_slot_range(text: &str) -> Result<(Slot, Slot), ConfErrorKind> {
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (parse_slot(a)?, parse_slot(b)?),
        None => {
            let s = parse_slot(text)?;
            (s, s)
        }
    };
    if a > b {
        return Err(ConfErrorKind::BadSlotRange);
    }
    Ok((a, b))
}

fn parse_open_slot(text: &str) -> Result<OpenSlot, ConfErrorKind> {
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or(ConfErrorKind::BadOpenSlot)?;
    let (slot, rest) = inner.split_once('-').ok_or(ConfErrorKind::BadOpenSlot)?;
    let slot = parse_slot(slot)?;
    let id = |t: &str| NodeId::parse_loose(t.as_bytes()).ok_or(ConfErrorKind::BadOpenSlot);
    if let Some(to) = rest.strip_prefix(">-") {
        Ok(OpenSlot::Migrating(slot, id(to)?))
    } else if let Some(from) = rest.strip_prefix("<-") {
        Ok(OpenSlot::Importing(slot, id(from)?))
    } else {
        Err(ConfErrorKind::BadOpenSlot)
    }
}

/// Looks the node up, creating a flagless placeholder like createClusterNode(name, 0).
fn node_or_placeholder<'a>(
    state: &'a mut ClusterState,
    id: &NodeId,
    now: u64,
) -> &'a mut ClusterNode {
    if !state.contains(id) {
        // Cannot fail: we just checked the id is absent.
        let _ = state.add_node(ClusterNode::new(*id, NodeFlags(0), now));
    }
    state.node_mut(id).expect("node present after insert")
}

/// Applies one line the way clusterLoadConfig does.
fn load_line(state: &mut ClusterState, line: &NodeLine, now: u64) {
    let node = node_or_placeholder(state, &line.name, now);
    node.ip = line.ip.clone();
    node.port = line.port;
    node.cport = line.cport;
    node.hostname = line.hostname.clone();
    node.client_ipv4 = line.client_ipv4.clone();
    node.client_ipv6 = line.client_ipv6.clone();
    node.flags.set(line.flags.0);
    if line.flags.has(NodeFlags::FAIL) {
        node.fail_time = now;
    }
    if line.ping_sent != 0 {
        node.ping_sent = now;
    }
    if line.pong_received != 0 {
        node.pong_received = now;
    }
    let is_replica = node.is_replica();
    if let Some(master) = line.master {
        node_or_placeholder(state, &master, now);
        if let Some(n) = state.node_mut(&line.name) {
            n.slaveof = Some(master);
        }
        let _ = state.add_replica(&master, &line.name);
    }
    let replica_with_master =
        is_replica && state.node(&line.name).is_some_and(|n| n.slaveof.is_some());
    if let Some(n) = state.node_mut(&line.name) {
        n.config_epoch = if replica_with_master {
            0
        } else {
            line.config_epoch
        };
    }
    for &(a, b) in &line.slots {
        for s in a..=b {
            // A slot already claimed by an earlier line keeps its first owner, as in Redis.
            let _ = state.add_slot(&line.name, s);
        }
    }
    for open in &line.open_slots {
        let (slot, peer) = match open {
            OpenSlot::Migrating(s, id) | OpenSlot::Importing(s, id) => (*s, *id),
        };
        node_or_placeholder(state, &peer, now);
        let _ = match open {
            OpenSlot::Migrating(..) => state.set_migrating(slot, Some(peer)),
            OpenSlot::Importing(..) => state.set_importing(slot, Some(peer)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::state::LinkId;

    const THREE_MASTERS: &[u8] = include_bytes!("../../tests/fixtures/cluster/nodes-7.0.15.conf");
    const SIX_NODES_MASTER: &[u8] =
        include_bytes!("../../tests/fixtures/cluster/six-nodes/nodes-47111.conf");
    const SIX_NODES_REPLICA: &[u8] =
        include_bytes!("../../tests/fixtures/cluster/six-nodes/nodes-47114.conf");
    const REPLICA_FAIL: &[u8] =
        include_bytes!("../../tests/fixtures/cluster/six-nodes-replica-fail/nodes-47111.conf");
    const FIXTURES: [&[u8]; 4] = [
        THREE_MASTERS,
        SIX_NODES_MASTER,
        SIX_NODES_REPLICA,
        REPLICA_FAIL,
    ];

    const NOW: u64 = 1_800_000_000_000;

    fn id(c: char) -> NodeId {
        NodeId([c as u8; 40])
    }

    fn err_of(text: &str) -> ConfError {
        NodesConf::parse(text.as_bytes()).unwrap_err()
    }

    const MYSELF_LINE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-10\n";

    #[test]
    fn files_written_by_redis_7_0_15_parse_and_render_back_byte_for_byte() {
        for file in FIXTURES {
            let conf = NodesConf::parse(file).unwrap();
            assert_eq!(conf.render().as_bytes(), file);
        }
    }

    /// What clusterLoadConfig + clusterSaveConfig do to a file: nonzero ping_sent and
    /// pong_received become the load time, and peers read as disconnected until the driver
    /// reconnects. Everything else survives.
    fn as_reloaded_at(file: &[u8], now: u64) -> String {
        let text = std::str::from_utf8(file).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut f: Vec<String> = line.split(' ').map(str::to_string).collect();
            if f[0] != "vars" {
                for i in [4, 5] {
                    if f[i] != "0" {
                        f[i] = now.to_string();
                    }
                }
                if !f[2].contains("myself") {
                    f[7] = "disconnected".into();
                }
            }
            out.push_str(&f.join(" "));
            out.push('\n');
        }
        out
    }

    #[test]
    fn loading_then_saving_changes_only_timestamps_and_link_state() {
        for file in FIXTURES {
            let state = load(file, NOW).unwrap();
            assert_eq!(render(&state), as_reloaded_at(file, NOW));
        }
    }

    #[test]
    fn saving_with_live_links_reproduces_the_file_except_timestamps() {
        let mut state = load(SIX_NODES_MASTER, NOW).unwrap();
        let peers: Vec<NodeId> = state.nodes().map(|n| n.name).collect();
        for (i, p) in peers.iter().enumerate() {
            state.node_mut(p).unwrap().link = Some(LinkId(i as u64));
        }
        let expected = as_reloaded_at(SIX_NODES_MASTER, NOW).replace("disconnected", "connected");
        assert_eq!(render(&state), expected);
    }

    #[test]
    fn loaded_three_master_file_has_redis_topology() {
        let state = load(THREE_MASTERS, NOW).unwrap();
        let me = state.myself();
        assert_eq!(me.name.as_str(), "61b46215d023db2e849933f50afa7250d111d536");
        assert_eq!((me.port, me.cport, me.config_epoch), (47101, 57101, 1));
        assert_eq!(me.slot_ranges(), vec![(0, 5460)]);
        assert_eq!(state.cluster_size(), 3);
        assert_eq!((state.current_epoch, state.last_vote_epoch), (3, 0));
        assert_eq!(state.len(), 3);
    }

    #[test]
    fn replicas_load_with_config_epoch_zero_but_save_their_masters_epoch() {
        let state = load(SIX_NODES_REPLICA, NOW).unwrap();
        let me = state.myself();
        assert!(me.is_replica());
        assert_eq!(me.config_epoch, 0);
        assert_eq!(state.my_epoch(), 3);
        assert_eq!(me.hostname, "host-d.example");
        let master = state.node(&me.slaveof.unwrap()).unwrap();
        assert_eq!(master.replicas, vec![me.name]);
        assert!(master.flags.has(NodeFlags::MIGRATE_TO));
    }

    #[test]
    fn open_slots_on_the_myself_line_load_into_the_migrating_table() {
        let state = load(SIX_NODES_MASTER, NOW).unwrap();
        let b = NodeId::parse(b"4ff49b27e764368187a4c8a387a96308845fbf48").unwrap();
        assert_eq!(state.migrating_to(100), Some(&b));
        assert_eq!(state.migrating_to(200), Some(&b));
        assert_eq!(state.importing_from(100), None);
        assert_eq!(state.slot_owner(5000), Some(&b));
    }

    #[test]
    fn fail_flag_loads_with_fail_time_now() {
        let state = load(REPLICA_FAIL, NOW).unwrap();
        let f = NodeId::parse(b"1225e6a100dc4898cce9b0e3e12efa0931b980f6").unwrap();
        let node = state.node(&f).unwrap();
        assert!(node.failed());
        assert_eq!(
            (node.fail_time, node.ping_sent, node.pong_received),
            (NOW, NOW, NOW)
        );
        assert_eq!(node.link, None);
    }

    #[test]
    fn a_master_named_before_its_own_line_is_created_as_a_placeholder_then_filled() {
        let text = format!(
            "{} 127.0.0.1:7001@17001 slave {} 0 0 0 connected\n{}{} 127.0.0.1:7002@17002 master - 0 0 7 connected 11-20\n",
            "b".repeat(40),
            "c".repeat(40),
            MYSELF_LINE,
            "c".repeat(40)
        );
        let conf = NodesConf::parse(text.as_bytes()).unwrap();
        // Half-way through the load the master exists as a flagless, addressless node.
        let mut state = ClusterState::with_myself_id(id('a'));
        load_line(&mut state, &conf.nodes[0], NOW);
        let placeholder = state.node(&id('c')).unwrap();
        assert_eq!(placeholder.flags.render(), "noflags");
        assert_eq!(
            NodeLine::describe(&state, placeholder, false).render(),
            format!("{} :0@0 noflags - 0 0 0 disconnected", "c".repeat(40))
        );
        let state = conf.into_state(NOW).unwrap();
        let order: Vec<NodeId> = state.nodes().map(|n| n.name).collect();
        assert_eq!(
            order,
            vec![id('b'), id('a'), id('c')],
            "table order is file order"
        );
        assert_eq!(state.node(&id('c')).unwrap().port, 7002);
        assert_eq!(state.node(&id('c')).unwrap().replicas, vec![id('b')]);
        assert_eq!(
            state.current_epoch, 7,
            "currentEpoch is raised to the max configEpoch"
        );
    }

    #[test]
    fn open_slot_peers_unknown_so_far_become_placeholders() {
        let text = format!(
            "{} 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0 [5-<-{}]\n",
            "a".repeat(40),
            "d".repeat(40)
        );
        let state = load(text.as_bytes(), NOW).unwrap();
        assert_eq!(state.importing_from(5), Some(&id('d')));
        assert_eq!(state.node(&id('d')).unwrap().flags.render(), "noflags");
    }

    #[test]
    fn old_files_without_bus_port_get_port_plus_ten_thousand() {
        let text = format!(
            "{} 127.0.0.1:7000 myself,master - 0 0 0 connected\n",
            "a".repeat(40)
        );
        let state = load(text.as_bytes(), NOW).unwrap();
        assert_eq!(state.myself().cport, 17000);
    }

    #[test]
    fn blank_lines_unknown_vars_and_flag_case_are_tolerated() {
        let text = format!(
            "\nvars lastVoteEpoch 4 someFutureVar x currentEpoch 9\n\n{}",
            MYSELF_LINE.replace("myself,master", "MySelf,MASTER")
        );
        let state = load(text.as_bytes(), NOW).unwrap();
        assert_eq!((state.current_epoch, state.last_vote_epoch), (9, 4));
        assert!(state.myself().is_master());
    }

    #[test]
    fn the_first_line_to_claim_a_slot_keeps_it() {
        let text = format!(
            "{MYSELF_LINE}{} 127.0.0.1:7001@17001 master - 0 0 2 connected 5-15\n",
            "b".repeat(40)
        );
        let state = load(text.as_bytes(), NOW).unwrap();
        assert_eq!(state.slot_owner(10), Some(&id('a')));
        assert_eq!(state.node(&id('b')).unwrap().slot_ranges(), vec![(11, 15)]);
    }

    #[test]
    fn a_node_line_with_fewer_than_eight_fields_is_rejected_with_its_line_number() {
        let text = format!(
            "{MYSELF_LINE}{} 127.0.0.1:1@2 master - 0 0 1\n",
            "b".repeat(40)
        );
        assert_eq!(
            err_of(&text),
            ConfError {
                line: 2,
                kind: ConfErrorKind::TooFewFields(7)
            }
        );
    }

    #[test]
    fn malformed_fields_are_rejected_with_typed_errors() {
        let b40 = "b".repeat(40);
        let cases: Vec<(usize, String, ConfErrorKind)> = vec![
            (0, "A".repeat(40), ConfErrorKind::BadNodeId),
            (0, "a".repeat(39), ConfErrorKind::BadNodeId),
            (1, "127.0.0.1".into(), ConfErrorKind::BadAddress),
            (
                1,
                format!("{}:1@2", "1".repeat(46)),
                ConfErrorKind::BadAddress,
            ),
            (1, "127.0.0.1:70000@1".into(), ConfErrorKind::BadPort),
            (1, "127.0.0.1:7000@x".into(), ConfErrorKind::BadPort),
            (1, "127.0.0.1:65535".into(), ConfErrorKind::BadPort),
            (
                2,
                "myself,leader".into(),
                ConfErrorKind::UnknownFlag("leader".into()),
            ),
            (3, "nope".into(), ConfErrorKind::BadMasterId),
            (4, "-1".into(), ConfErrorKind::BadTimestamp),
            (5, "x".into(), ConfErrorKind::BadTimestamp),
            (6, "e".into(), ConfErrorKind::BadConfigEpoch),
            (8, "16384".into(), ConfErrorKind::BadSlot),
            (8, "0-16384".into(), ConfErrorKind::BadSlot),
            (8, "10-5".into(), ConfErrorKind::BadSlotRange),
            (8, "-".into(), ConfErrorKind::BadSlot),
            (8, "[5->-short]".into(), ConfErrorKind::BadOpenSlot),
            (8, format!("[5-?-{b40}]"), ConfErrorKind::BadOpenSlot),
            (8, format!("[5->-{b40}"), ConfErrorKind::BadOpenSlot),
            (8, format!("[16384->-{b40}]"), ConfErrorKind::BadSlot),
        ];
        for (field, value, kind) in cases {
            let mut fields: Vec<&str> = MYSELF_LINE.trim_end().split(' ').collect();
            fields[field] = &value;
            let text = format!("\n{}\n", fields.join(" "));
            assert_eq!(err_of(&text), ConfError { line: 2, kind }, "{text}");
        }
    }

    #[test]
    fn a_file_without_a_myself_line_is_rejected() {
        let text = MYSELF_LINE.replace("myself,", "");
        assert_eq!(
            err_of(&text),
            ConfError {
                line: 0,
                kind: ConfErrorKind::MissingMyself
            }
        );
        assert_eq!(
            err_of(""),
            ConfError {
                line: 0,
                kind: ConfErrorKind::MissingMyself
            }
        );
    }

    #[test]
    fn a_hand_built_conf_without_myself_cannot_become_a_table() {
        let mut conf = NodesConf::parse(MYSELF_LINE.as_bytes()).unwrap();
        conf.nodes[0].flags = NodeFlags(NodeFlags::MASTER);
        let err = conf.into_state(NOW).unwrap_err();
        assert_eq!(err.kind, ConfErrorKind::MissingMyself);
    }

    #[test]
    fn two_myself_lines_are_rejected() {
        let second = MYSELF_LINE.replacen('a', "b", 40);
        let text = format!("{MYSELF_LINE}{second}");
        assert_eq!(
            err_of(&text),
            ConfError {
                line: 2,
                kind: ConfErrorKind::DuplicateMyself
            }
        );
    }

    #[test]
    fn vars_lines_need_name_value_pairs_and_numeric_epochs() {
        let odd = format!("{MYSELF_LINE}vars currentEpoch\n");
        assert_eq!(
            err_of(&odd),
            ConfError {
                line: 2,
                kind: ConfErrorKind::BadVars
            }
        );
        let bad = format!("{MYSELF_LINE}vars currentEpoch x lastVoteEpoch 0\n");
        assert_eq!(
            err_of(&bad),
            ConfError {
                line: 2,
                kind: ConfErrorKind::BadVars
            }
        );
    }

    #[test]
    fn non_utf8_bytes_are_an_error_not_a_panic() {
        let mut text = MYSELF_LINE.as_bytes().to_vec();
        text.extend_from_slice(b"\xff\xfe\n");
        assert_eq!(
            NodesConf::parse(&text).unwrap_err(),
            ConfError {
                line: 2,
                kind: ConfErrorKind::NotUtf8
            }
        );
    }

    #[test]
    fn handshake_nodes_are_not_saved() {
        let mut state = load(THREE_MASTERS, NOW).unwrap();
        let mut hs = ClusterNode::new(
            id('e'),
            NodeFlags(NodeFlags::HANDSHAKE | NodeFlags::MEET),
            NOW,
        );
        hs.ip = "127.0.0.1".into();
        state.add_node(hs).unwrap();
        assert_eq!(render(&state), as_reloaded_at(THREE_MASTERS, NOW));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parser() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"0123456789abcdef-[]<>:@, \nmyselfvars";
        for _ in 0..2000 {
            let len = (seed % 200) as usize;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = load(&text, NOW);
        }
    }
}

//! The read-only CLUSTER views of the node table, byte for byte as Redis 7.0.15 produces
//! them: CLUSTER NODES (clusterGenNodesDescription with no filter), CLUSTER SLOTS
//! (clusterReplyMultiBulkSlots / addNodeReplyForClusterSlot), CLUSTER SHARDS (7.0's one shard
//! per master, clusterReplyShards) and CLUSTER INFO. Replies are protocol-neutral `Reply`
//! values; maps downgrade to flat arrays for RESP2 clients in `resp::encode`. What the table
//! cannot know (the client's connection type, our own replication offset, bus message
//! counters) comes in as arguments.

use super::bus::MessageType;
use super::node::NodeId;
use super::nodes_conf::NodeLine;
use super::state::{ClusterNode, ClusterState};
use crate::resp::reply::Reply;
use bytes::Bytes;
use std::fmt::Write;

/// `cluster-preferred-endpoint-type`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum EndpointType {
    #[default]
    Ip,
    Hostname,
    UnknownEndpoint,
}

impl EndpointType {
    pub fn parse(text: &str) -> Option<EndpointType> {
        match text.to_ascii_lowercase().as_str() {
            "ip" => Some(EndpointType::Ip),
            "hostname" => Some(EndpointType::Hostname),
            "unknown-endpoint" => Some(EndpointType::UnknownEndpoint),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EndpointType::Ip => "ip",
            EndpointType::Hostname => "hostname",
            EndpointType::UnknownEndpoint => "unknown-endpoint",
        }
    }

    /// getPreferredEndpoint: the text MOVED/ASK and CLUSTER SHARDS `endpoint` show.
    pub fn endpoint(self, node: &ClusterNode) -> &str {
        self.endpoint_for(node, false)
    }

    /// `endpoint` as a client connected over IPv6 (`ipv6_client`) or IPv4 sees it: the IP
    /// is the node's announced client IP of that family when there is one.
    pub fn endpoint_for(self, node: &ClusterNode, ipv6_client: bool) -> &str {
        match self {
            EndpointType::Ip => node.client_ip(ipv6_client),
            EndpointType::Hostname if node.hostname.is_empty() => "?",
            EndpointType::Hostname => &node.hostname,
            EndpointType::UnknownEndpoint => "",
        }
    }
}

/// What the asking client and this server contribute to SLOTS / SHARDS.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ClientView {
    pub endpoint: EndpointType,
    /// `tls-cluster yes`: a node's `port` is its TLS port and `pport` the plaintext one.
    pub tls_cluster: bool,
    /// The client is on a plaintext connection of a TLS cluster: show plaintext ports.
    pub use_pport: bool,
    /// Our own replication offset: master_repl_offset as a master, the processed offset
    /// as a replica (the table's `repl_offset` is only what peers told us).
    pub myself_repl_offset: i64,
    /// The client is connected over IPv6: nodes' IPs are their announced client IPv6
    /// addresses when set (IPv4 clients see the client IPv4 ones).
    pub ipv6_client: bool,
}

/// One CLUSTER NODES line (no newline); CLUSTER REPLICAS returns these as bulk strings.
pub fn node_line(state: &ClusterState, node: &ClusterNode, use_pport: bool) -> String {
    client_node_line(state, node, use_pport, false)
}

/// `node_line` as an IPv6 (`ipv6_client`) or IPv4 client sees it (Valkey's client IPs).
pub fn client_node_line(
    state: &ClusterState,
    node: &ClusterNode,
    use_pport: bool,
    ipv6_client: bool,
) -> String {
    let mut line = NodeLine::describe(state, node, use_pport);
    line.ip = node.client_ip(ipv6_client).to_string();
    line.render()
}

/// CLUSTER NODES text: every node, handshake ones included, each line ending in `\n`.
pub fn cluster_nodes(state: &ClusterState, use_pport: bool) -> String {
    client_cluster_nodes(state, use_pport, false)
}

/// `cluster_nodes` as an IPv6 (`ipv6_client`) or IPv4 client sees it.
pub fn client_cluster_nodes(state: &ClusterState, use_pport: bool, ipv6_client: bool) -> String {
    let mut out = String::new();
    for node in state.nodes() {
        out.push_str(&client_node_line(state, node, use_pport, ipv6_client));
        out.push('\n');
    }
    out
}

/// CLUSTER NODES as a reply: verbatim `txt` in RESP3, a bulk string in RESP2.
pub fn cluster_nodes_reply(state: &ClusterState, use_pport: bool, ipv6_client: bool) -> Reply {
    Reply::Verbatim(
        "txt",
        Bytes::from(client_cluster_nodes(state, use_pport, ipv6_client)),
    )
}

fn offset_of(node: &ClusterNode, view: &ClientView) -> i64 {
    if node.is_myself() {
        view.myself_repl_offset
    } else {
        node.repl_offset
    }
}

/// isReplicaAvailable: not FAIL and has reported a nonzero replication offset.
fn replica_available(node: &ClusterNode, view: &ClientView) -> bool {
    !node.failed() && offset_of(node, view) != 0
}

/// addNodeToNodeReply: endpoint, port, id, then a map of the networking facts the
/// endpoint did not already give (`ip` unless it is the endpoint, `hostname` if known and
/// not the endpoint).
fn slots_node_entry(node: &ClusterNode, view: &ClientView) -> Reply {
    let endpoint = match view.endpoint {
        EndpointType::UnknownEndpoint => Reply::Null,
        t => Reply::bulk_str(t.endpoint_for(node, view.ipv6_client)),
    };
    let port = if view.use_pport && node.pport != 0 {
        node.pport
    } else {
        node.port
    };
    let mut extra = Vec::new();
    if view.endpoint != EndpointType::Ip {
        let ip = node.client_ip(view.ipv6_client);
        extra.push((Reply::bulk_str("ip"), Reply::bulk_str(ip)));
    }
    if view.endpoint != EndpointType::Hostname && !node.hostname.is_empty() {
        extra.push((Reply::bulk_str("hostname"), Reply::bulk_str(&node.hostname)));
    }
    Reply::Array(vec![
        endpoint,
        Reply::Int(port as i64),
        Reply::bulk_slice(node.name.as_bytes()),
        Reply::Map(extra),
    ])
}

/// CLUSTER SLOTS: one entry per maximal run of slots with the same master: start, end,
/// the master, then its available replicas in attachment order.
pub fn cluster_slots(state: &ClusterState, view: &ClientView) -> Reply {
    let mut entries = Vec::new();
    for (start, end, owner) in state.owner_runs() {
        let Some(master) = state.node(&owner) else {
            continue;
        };
        let mut entry = vec![
            Reply::Int(start as i64),
            Reply::Int(end as i64),
            slots_node_entry(master, view),
        ];
        for replica in master.replicas.iter().filter_map(|r| state.node(r)) {
            if replica_available(replica, view) {
                entry.push(slots_node_entry(replica, view));
            }
        }
        entries.push(Reply::Array(entry));
    }
    Reply::Array(entries)
}

/// addNodeDetailsToShardReply.
fn shard_node_entry(node: &ClusterNode, view: &ClientView) -> Reply {
    let field = |k: &str, v: Reply| (Reply::bulk_str(k), v);
    let (plain_port, tls_port) = if view.tls_cluster {
        (node.pport, node.port)
    } else {
        (node.port, 0)
    };
    let mut map = vec![field("id", Reply::bulk_slice(node.name.as_bytes()))];
    if plain_port != 0 {
        map.push(field("port", Reply::Int(plain_port as i64)));
    }
    if tls_port != 0 {
        map.push(field("tls-port", Reply::Int(tls_port as i64)));
    }
    map.push(field(
        "ip",
        Reply::bulk_str(node.client_ip(view.ipv6_client)),
    ));
    map.push(field(
        "endpoint",
        Reply::bulk_str(view.endpoint.endpoint_for(node, view.ipv6_client)),
    ));
    if !node.hostname.is_empty() {
        map.push(field("hostname", Reply::bulk_str(&node.hostname)));
    }
    let offset = offset_of(node, view);
    let role = if node.is_replica() {
        "replica"
    } else {
        "master"
    };
    map.push(field("role", Reply::bulk_str(role)));
    map.push(field("replication-offset", Reply::Int(offset)));
    let health = if node.failed() {
        "fail"
    } else if node.is_replica() && offset == 0 {
        "loading"
    } else {
        "online"
    };
    map.push(field("health", Reply::bulk_str(health)));
    Reply::Map(map)
}

/// CLUSTER SHARDS as 7.0.5+ sends it: one shard per master (slot-less masters included),
/// `slots` as flat integer start/end pairs, `nodes` as the master then its replicas.
pub fn cluster_shards(state: &ClusterState, view: &ClientView) -> Reply {
    let mut shards = Vec::new();
    for master in state.nodes().filter(|n| n.is_master()) {
        let slots = state
            .owned_ranges(&master.name)
            .into_iter()
            .flat_map(|(a, b)| [Reply::Int(a as i64), Reply::Int(b as i64)])
            .collect();
        let nodes = state
            .nodes_serving_slots_of(&master.name)
            .iter()
            .filter_map(|id| state.node(id))
            .map(|n| shard_node_entry(n, view))
            .collect();
        shards.push(Reply::Map(vec![
            (Reply::bulk_str("slots"), Reply::Array(slots)),
            (Reply::bulk_str("nodes"), Reply::Array(nodes)),
        ]));
    }
    Reply::Array(shards)
}

/// Number of bus message types (CLUSTERMSG_TYPE_COUNT).
pub const MESSAGE_TYPE_COUNT: usize = MessageType::ALL.len();

/// Bus counters the driver keeps, indexed by message type number.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BusStats {
    pub sent: [u64; MESSAGE_TYPE_COUNT],
    pub received: [u64; MESSAGE_TYPE_COUNT],
    /// Links freed for exceeding `cluster-link-sendbuf-limit`.
    pub links_buffer_limit_exceeded: u64,
}

fn write_counters(out: &mut String, counts: &[u64; MESSAGE_TYPE_COUNT], dir: &str) {
    for (name, n) in MessageType::ALL.iter().map(|t| t.stats_name()).zip(counts) {
        if *n != 0 {
            let _ = write!(out, "cluster_stats_messages_{name}_{dir}:{n}\r\n");
        }
    }
    let total: u64 = counts.iter().sum();
    let _ = write!(out, "cluster_stats_messages_{dir}:{total}\r\n");
}

/// CLUSTER INFO text. `cluster_state` and `cluster_size` are the values cached by the last
/// `update_state`, as in Redis; slot counts are computed now.
pub fn cluster_info(state: &ClusterState, stats: &BusStats) -> String {
    let slots = state.slot_counts();
    let mut out = String::new();
    let _ = write!(
        out,
        "cluster_state:{}\r\ncluster_slots_assigned:{}\r\ncluster_slots_ok:{}\r\n\
         cluster_slots_pfail:{}\r\ncluster_slots_fail:{}\r\ncluster_known_nodes:{}\r\n\
         cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
        state.state.as_str(),
        slots.assigned,
        slots.ok,
        slots.pfail,
        slots.fail,
        state.len(),
        state.size,
        state.current_epoch,
        state.my_epoch()
    );
    write_counters(&mut out, &stats.sent, "sent");
    write_counters(&mut out, &stats.received, "received");
    let _ = write!(
        out,
        "total_cluster_links_buffer_limit_exceeded:{}\r\n",
        stats.links_buffer_limit_exceeded
    );
    out
}

/// CLUSTER INFO as a reply: verbatim `txt` in RESP3, a bulk string in RESP2.
pub fn cluster_info_reply(state: &ClusterState, stats: &BusStats) -> Reply {
    Reply::Verbatim("txt", Bytes::from(cluster_info(state, stats)))
}

/// CLUSTER REPLICAS / SLAVES body: one CLUSTER NODES line per replica of `master`.
pub fn cluster_replicas(
    state: &ClusterState,
    master: &NodeId,
    use_pport: bool,
    ipv6_client: bool,
) -> Reply {
    let lines = state
        .node(master)
        .map(|m| m.replicas.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| state.node(r))
        .map(|r| Reply::bulk(client_node_line(state, r, use_pport, ipv6_client)))
        .collect();
    Reply::Array(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::node::NodeFlags;
    use crate::cluster::nodes_conf::{self, NodesConf};
    use crate::cluster::state::{LinkId, WRITABLE_DELAY_MS};
    use crate::resp::encode::encode;
    use bytes::BytesMut;

    macro_rules! fixture {
        ($path:literal) => {
            include_bytes!(concat!("../../tests/fixtures/cluster/", $path)).as_slice()
        };
    }

    const NOW: u64 = 1_800_000_000_000;
    const NODE_TIMEOUT: u64 = 15000;

    /// The table a node had when the captures were taken, rebuilt from its nodes.conf:
    /// peers whose line says `connected` get a link, replication offsets are what the
    /// bus reported (`offsets`, by id prefix, myself included), and the state is evaluated
    /// past the startup delay.
    fn rebuilt(conf: &[u8], offsets: &[(&str, i64)]) -> (ClusterState, ClientView) {
        let parsed = NodesConf::parse(conf).unwrap();
        let mut state = nodes_conf::load(conf, NOW).unwrap();
        for (i, line) in parsed.nodes.iter().enumerate() {
            if line.connected && !line.flags.has(NodeFlags::MYSELF) {
                state.node_mut(&line.name).unwrap().link = Some(LinkId(i as u64));
            }
        }
        let mut view = ClientView::default();
        for (prefix, offset) in offsets {
            let id = state
                .nodes()
                .map(|n| n.name)
                .find(|n| n.as_str().starts_with(prefix));
            let id = id.unwrap();
            state.node_mut(&id).unwrap().repl_offset = *offset;
            if id == state.myself_id() {
                view.myself_repl_offset = *offset;
            }
        }
        state.update_state(NOW, true, NODE_TIMEOUT);
        state.update_state(NOW + WRITABLE_DELAY_MS, true, NODE_TIMEOUT);
        (state, view)
    }

    fn wire(reply: &Reply, resp3: bool) -> String {
        let mut out = BytesMut::new();
        encode(reply, resp3, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    fn text(raw: &[u8]) -> String {
        String::from_utf8(raw.to_vec()).unwrap()
    }

    /// The body of a captured bulk (`$n`) or verbatim (`=n` + `txt:`) string.
    fn body(raw: &[u8]) -> String {
        let raw = text(raw);
        let (header, rest) = raw.split_once("\r\n").unwrap();
        let rest = rest.strip_suffix("\r\n").unwrap();
        let len: usize = header[1..].parse().unwrap();
        assert_eq!(rest.len(), len, "capture is one complete string reply");
        rest.strip_prefix("txt:").unwrap_or(rest).to_string()
    }

    /// Ping and pong times move on every second; zero columns 5 and 6 on both sides.
    fn without_ping_pong(nodes: &str) -> String {
        nodes
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(' ').collect();
                f[4] = "0";
                f[5] = "0";
                f.join(" ") + "\n"
            })
            .collect()
    }

    /// The message counters of a captured CLUSTER INFO, as the driver would supply them.
    fn stats_of(info: &str) -> BusStats {
        let mut stats = BusStats::default();
        for line in info.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let n: u64 = value.parse().unwrap_or(0);
            if key == "total_cluster_links_buffer_limit_exceeded" {
                stats.links_buffer_limit_exceeded = n;
            }
            for (i, name) in MessageType::ALL.iter().map(|t| t.stats_name()).enumerate() {
                if key == format!("cluster_stats_messages_{name}_sent") {
                    stats.sent[i] = n;
                } else if key == format!("cluster_stats_messages_{name}_received") {
                    stats.received[i] = n;
                }
            }
        }
        stats
    }

    fn check_nodes(state: &ClusterState, capture: &[u8]) {
        let ours = cluster_nodes(state, false);
        assert_eq!(without_ping_pong(&ours), without_ping_pong(&body(capture)));
    }

    fn check_info(state: &ClusterState, capture: &[u8], resp3: bool) {
        let captured = body(capture);
        let reply = cluster_info_reply(state, &stats_of(&captured));
        assert_eq!(wire(&reply, resp3), text(capture));
    }

    // ---- three masters, seen from 127.0.0.1:47101 ----------------------------------------

    const THREE: &[u8] = fixture!("nodes-7.0.15.conf");

    #[test]
    fn three_masters_cluster_nodes_matches_redis() {
        let (state, _) = rebuilt(THREE, &[]);
        check_nodes(&state, fixture!("three-masters/cluster-nodes.resp2"));
        check_nodes(&state, fixture!("three-masters/cluster-nodes.resp3"));
        let reply = wire(&cluster_nodes_reply(&state, false, false), true);
        let len = cluster_nodes(&state, false).len() + 4;
        assert!(
            reply.starts_with(&format!("={len}\r\ntxt:")),
            "RESP3: verbatim txt"
        );
    }

    #[test]
    fn three_masters_cluster_slots_matches_redis_in_resp2_and_resp3() {
        let (state, view) = rebuilt(THREE, &[]);
        let reply = cluster_slots(&state, &view);
        assert_eq!(
            wire(&reply, false),
            text(fixture!("three-masters/cluster-slots.resp2"))
        );
        assert_eq!(
            wire(&reply, true),
            text(fixture!("three-masters/cluster-slots.resp3"))
        );
    }

    #[test]
    fn three_masters_cluster_shards_matches_redis_in_resp2_and_resp3() {
        let (state, view) = rebuilt(THREE, &[]);
        let reply = cluster_shards(&state, &view);
        assert_eq!(
            wire(&reply, false),
            text(fixture!("three-masters/cluster-shards.resp2"))
        );
        assert_eq!(
            wire(&reply, true),
            text(fixture!("three-masters/cluster-shards.resp3"))
        );
    }

    #[test]
    fn three_masters_cluster_info_matches_redis() {
        let (state, _) = rebuilt(THREE, &[]);
        check_info(&state, fixture!("three-masters/cluster-info.resp2"), false);
    }

    // ---- six nodes, seen from master 47111 (hostname, open slots, split ranges) -----------

    const SIX_A: &[u8] = fixture!("six-nodes/nodes-47111.conf");
    /// Offsets in the SLOTS/SHARDS captures taken with the default endpoint type.
    const SIX_A_OFFSETS: [(&str, i64); 6] = [
        ("4ff49b", 28),
        ("1225e6", 28),
        ("1a3787", 82),
        ("fbeaa6", 82),
        ("3733fe", 28),
        ("457bbb", 28),
    ];

    #[test]
    fn master_view_cluster_nodes_shows_hostnames_split_ranges_and_open_slots() {
        let (state, _) = rebuilt(SIX_A, &SIX_A_OFFSETS);
        check_nodes(&state, fixture!("six-nodes/47111-cluster-nodes.resp2"));
        check_nodes(&state, fixture!("six-nodes/47111-cluster-nodes.resp3"));
    }

    #[test]
    fn master_view_cluster_slots_lists_runs_with_available_replicas() {
        let (state, view) = rebuilt(SIX_A, &SIX_A_OFFSETS);
        let reply = cluster_slots(&state, &view);
        assert_eq!(
            wire(&reply, false),
            text(fixture!("six-nodes/47111-cluster-slots.resp2"))
        );
        assert_eq!(
            wire(&reply, true),
            text(fixture!("six-nodes/47111-cluster-slots.resp3"))
        );
    }

    #[test]
    fn cluster_slots_with_hostname_endpoints_matches_redis() {
        let (state, mut view) = rebuilt(SIX_A, &SIX_A_OFFSETS);
        view.endpoint = EndpointType::Hostname;
        let reply = cluster_slots(&state, &view);
        let resp2 = fixture!("six-nodes/47111-cluster-slots-hostname.resp2");
        assert_eq!(wire(&reply, false), text(resp2));
        let resp3 = fixture!("six-nodes/47111-cluster-slots-hostname.resp3");
        assert_eq!(wire(&reply, true), text(resp3));
    }

    #[test]
    fn cluster_slots_with_unknown_endpoints_sends_null_endpoints() {
        let (state, mut view) = rebuilt(SIX_A, &SIX_A_OFFSETS);
        view.endpoint = EndpointType::UnknownEndpoint;
        let reply = cluster_slots(&state, &view);
        let resp2 = fixture!("six-nodes/47111-cluster-slots-unknown-endpoint.resp2");
        assert_eq!(wire(&reply, false), text(resp2));
        let resp3 = fixture!("six-nodes/47111-cluster-slots-unknown-endpoint.resp3");
        assert_eq!(wire(&reply, true), text(resp3));
    }

    #[test]
    fn master_view_cluster_shards_matches_redis() {
        let (state, view) = rebuilt(SIX_A, &SIX_A_OFFSETS);
        let reply = cluster_shards(&state, &view);
        assert_eq!(
            wire(&reply, false),
            text(fixture!("six-nodes/47111-cluster-shards.resp2"))
        );
        assert_eq!(
            wire(&reply, true),
            text(fixture!("six-nodes/47111-cluster-shards.resp3"))
        );
    }

    #[test]
    fn cluster_shards_endpoint_follows_the_preferred_type() {
        let offsets = [
            ("4ff49b", 42),
            ("1225e6", 56),
            ("1a3787", 110),
            ("fbeaa6", 96),
            ("3733fe", 56),
            ("457bbb", 42),
        ];
        let (state, mut view) = rebuilt(SIX_A, &offsets);
        view.endpoint = EndpointType::Hostname;
        let capture = fixture!("six-nodes/47111-cluster-shards-hostname.resp2");
        assert_eq!(wire(&cluster_shards(&state, &view), false), text(capture));

        let offsets = [
            ("4ff49b", 56),
            ("1225e6", 56),
            ("1a3787", 110),
            ("fbeaa6", 110),
            ("3733fe", 56),
            ("457bbb", 56),
        ];
        let (state, mut view) = rebuilt(SIX_A, &offsets);
        view.endpoint = EndpointType::UnknownEndpoint;
        let capture = fixture!("six-nodes/47111-cluster-shards-unknown-endpoint.resp2");
        assert_eq!(wire(&cluster_shards(&state, &view), false), text(capture));
    }

    #[test]
    fn master_view_cluster_info_matches_redis() {
        let (state, _) = rebuilt(SIX_A, &SIX_A_OFFSETS);
        check_info(
            &state,
            fixture!("six-nodes/47111-cluster-info.resp2"),
            false,
        );
        check_info(&state, fixture!("six-nodes/47111-cluster-info.resp3"), true);
    }

    // ---- the same cluster seen from replica 47114 ---------------------------------------

    const SIX_D: &[u8] = fixture!("six-nodes/nodes-47114.conf");
    const SIX_D_OFFSETS: [(&str, i64); 6] = [
        ("1a3787", 82),
        ("fbeaa6", 96),
        ("3733fe", 42),
        ("457bbb", 42),
        ("4ff49b", 42),
        ("1225e6", 42),
    ];

    #[test]
    fn replica_view_matches_redis_for_every_command() {
        let (state, view) = rebuilt(SIX_D, &SIX_D_OFFSETS);
        check_nodes(&state, fixture!("six-nodes/47114-cluster-nodes.resp2"));
        let slots = cluster_slots(&state, &view);
        assert_eq!(
            wire(&slots, false),
            text(fixture!("six-nodes/47114-cluster-slots.resp2"))
        );
        assert_eq!(
            wire(&slots, true),
            text(fixture!("six-nodes/47114-cluster-slots.resp3"))
        );
        let shards = cluster_shards(&state, &view);
        assert_eq!(
            wire(&shards, false),
            text(fixture!("six-nodes/47114-cluster-shards.resp2"))
        );
        // The RESP3 capture was taken after the master's offset moved on.
        let mut later = SIX_D_OFFSETS;
        later[0] = ("1a3787", 96);
        let (state, view) = rebuilt(SIX_D, &later);
        let shards = cluster_shards(&state, &view);
        assert_eq!(
            wire(&shards, true),
            text(fixture!("six-nodes/47114-cluster-shards.resp3"))
        );
        check_info(
            &state,
            fixture!("six-nodes/47114-cluster-info.resp2"),
            false,
        );
        check_info(&state, fixture!("six-nodes/47114-cluster-info.resp3"), true);
    }

    // ---- a replica marked FAIL ------------------------------------------------------------

    const FAILED: &[u8] = fixture!("six-nodes-replica-fail/nodes-47111.conf");
    const FAILED_OFFSETS: [(&str, i64); 6] = [
        ("4ff49b", 532),
        ("1225e6", 532),
        ("1a3787", 628),
        ("fbeaa6", 628),
        ("3733fe", 574),
        ("457bbb", 574),
    ];

    #[test]
    fn a_failed_replica_is_flagged_in_nodes_left_out_of_slots_and_unhealthy_in_shards() {
        let (state, view) = rebuilt(FAILED, &FAILED_OFFSETS);
        check_nodes(
            &state,
            fixture!("six-nodes-replica-fail/47111-cluster-nodes.resp2"),
        );
        let slots = cluster_slots(&state, &view);
        let capture = fixture!("six-nodes-replica-fail/47111-cluster-slots.resp2");
        assert_eq!(wire(&slots, false), text(capture));
        let shards = cluster_shards(&state, &view);
        let capture = fixture!("six-nodes-replica-fail/47111-cluster-shards.resp2");
        assert_eq!(wire(&shards, false), text(capture));
        check_info(
            &state,
            fixture!("six-nodes-replica-fail/47111-cluster-info.resp2"),
            false,
        );
    }

    // ---- rules the captures do not exercise --------------------------------------------

    #[test]
    fn replicas_that_have_not_synced_are_left_out_of_slots_and_shown_loading_in_shards() {
        let (state, view) = rebuilt(SIX_A, &[("457bbb", 0)]);
        let slots = wire(&cluster_slots(&state, &view), false);
        assert!(!slots.contains("457bbb3f54f685e8bc757927428c6e3fd73efd55"));
        let shards = wire(&cluster_shards(&state, &view), false);
        assert!(shards.contains("457bbb3f54f685e8bc757927428c6e3fd73efd55"));
        assert!(shards.contains("$7\r\nloading\r\n"));
    }

    #[test]
    fn handshake_nodes_appear_in_cluster_nodes_and_count_as_known() {
        // Captured after `CLUSTER MEET 127.0.0.1 47199` (nobody listens there) on 47101.
        let (mut state, _) = rebuilt(THREE, &[]);
        let hs_id = NodeId::parse(b"5d4bd4357ef71f77d39704ac2300453ab9ca657e").unwrap();
        let flags = NodeFlags(NodeFlags::HANDSHAKE | NodeFlags::MEET);
        let mut hs = ClusterNode::new(hs_id, flags, NOW);
        hs.ip = "127.0.0.1".into();
        hs.port = 47199;
        hs.cport = 57199;
        state.add_node(hs).unwrap();
        let sorted = |text: &str| {
            let mut lines: Vec<String> =
                without_ping_pong(text).lines().map(String::from).collect();
            lines.sort();
            lines
        };
        let capture = body(fixture!("three-masters/cluster-nodes-handshake.resp2"));
        assert_eq!(sorted(&cluster_nodes(&state, false)), sorted(&capture));
        assert!(cluster_info(&state, &BusStats::default()).contains("cluster_known_nodes:4\r\n"));
        assert!(!nodes_conf::render(&state).contains("handshake"));
    }

    #[test]
    fn tls_clusters_show_plaintext_and_tls_ports_separately() {
        let (mut state, mut view) = rebuilt(THREE, &[]);
        let me = state.myself_id();
        state.node_mut(&me).unwrap().pport = 7101;
        view.tls_cluster = true;
        let shards = wire(&cluster_shards(&state, &view), false);
        assert!(shards.contains("$4\r\nport\r\n:7101\r\n$8\r\ntls-port\r\n:47101\r\n"));
        view.use_pport = true;
        let slots = wire(&cluster_slots(&state, &view), false);
        assert!(slots.starts_with("*3\r\n*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7101\r\n"));
        assert!(cluster_nodes(&state, true).contains(" 127.0.0.1:7101@57101 myself,master "));
    }

    #[test]
    fn cluster_info_lists_only_nonzero_message_types_in_type_order() {
        let (state, _) = rebuilt(THREE, &[]);
        let mut stats = BusStats::default();
        stats.sent[10] = 2; // publishshard
        stats.sent[0] = 5; // ping
        stats.received[7] = 1; // update
        stats.links_buffer_limit_exceeded = 3;
        let info = cluster_info(&state, &stats);
        let tail: Vec<&str> = info.split_inclusive("\r\n").skip(9).collect();
        assert_eq!(
            tail,
            [
                "cluster_stats_messages_ping_sent:5\r\n",
                "cluster_stats_messages_publishshard_sent:2\r\n",
                "cluster_stats_messages_sent:7\r\n",
                "cluster_stats_messages_update_received:1\r\n",
                "cluster_stats_messages_received:1\r\n",
                "total_cluster_links_buffer_limit_exceeded:3\r\n",
            ]
        );
    }

    #[test]
    fn cluster_replicas_returns_one_nodes_line_per_replica() {
        let (state, _) = rebuilt(SIX_A, &[]);
        let b = NodeId::parse(b"4ff49b27e764368187a4c8a387a96308845fbf48").unwrap();
        let Reply::Array(lines) = cluster_replicas(&state, &b, false, false) else {
            panic!()
        };
        assert_eq!(lines.len(), 1);
        let Reply::Bulk(line) = &lines[0] else {
            panic!()
        };
        assert!(line.starts_with(
            b"1225e6a100dc4898cce9b0e3e12efa0931b980f6 127.0.0.1:47116@57116 slave 4ff49b"
        ));
        assert!(!line.ends_with(b"\n"));
    }

    #[test]
    fn clients_see_the_announced_client_ip_of_their_family() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let conf = format!(
            "{a} 10.0.0.1:7001@17001,,client-ipv4=192.0.2.1 myself,master - 0 0 1 connected 0-8191\n\
             {b} 10.0.0.2:7002@17002,b.example,client-ipv6=2001:db8::2 master - 0 1 2 connected 8192-16383\n\
             vars currentEpoch 2 lastVoteEpoch 0\n"
        );
        let (state, mut view) = rebuilt(conf.as_bytes(), &[]);
        // nodes.conf keeps the aux fields; CLUSTER NODES never shows them.
        assert_eq!(
            nodes_conf::render(&state)
                .lines()
                .next()
                .unwrap()
                .split(' ')
                .nth(1),
            Some("10.0.0.1:7001@17001,,client-ipv4=192.0.2.1")
        );
        let nodes = client_cluster_nodes(&state, false, false);
        assert!(nodes.contains(" 192.0.2.1:7001@17001 myself,"), "{nodes}");
        assert!(
            nodes.contains(" 10.0.0.2:7002@17002,b.example master"),
            "{nodes}"
        );
        let nodes = client_cluster_nodes(&state, false, true);
        assert!(nodes.contains(" 10.0.0.1:7001@17001 myself,"), "{nodes}");
        assert!(
            nodes.contains(" 2001:db8::2:7002@17002,b.example master"),
            "{nodes}"
        );
        let slots = wire(&cluster_slots(&state, &view), false);
        assert!(slots.contains("$9\r\n192.0.2.1\r\n:7001"), "{slots}");
        assert!(slots.contains("$8\r\n10.0.0.2\r\n:7002"), "{slots}");
        view.ipv6_client = true;
        let slots = wire(&cluster_slots(&state, &view), false);
        assert!(slots.contains("$11\r\n2001:db8::2\r\n:7002"), "{slots}");
        let shards = wire(&cluster_shards(&state, &view), false);
        assert!(
            shards.contains(
                "$2\r\nip\r\n$11\r\n2001:db8::2\r\n$8\r\nendpoint\r\n$11\r\n2001:db8::2\r\n"
            ),
            "{shards}"
        );
    }

    #[test]
    fn preferred_endpoint_type_parses_config_values() {
        for t in [
            EndpointType::Ip,
            EndpointType::Hostname,
            EndpointType::UnknownEndpoint,
        ] {
            assert_eq!(EndpointType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EndpointType::parse("dns"), None);
    }
}

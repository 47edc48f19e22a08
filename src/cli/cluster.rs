//! The cluster manager: `cluster create`, `check` and `info` (and the forming step of
//! `cluster start`). It speaks plain RESP2 to every node, reads `CLUSTER NODES`, and prints
//! what redis-cli's `--cluster` prints for the same commands, so operators see the same
//! report from either tool. The decisions live in `plan/` and `nodes.rs`; this file does the
//! talking and the printing.

use super::conn::Conn;
use super::nodes::{self, NodeLine, SLOTS};
use super::plan::create::{plan_create, Affinity, CreatePlan};
use crate::resp::Reply;
use std::io::{BufRead, IsTerminal, Write};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `create` waits for the nodes to agree before giving up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, Default)]
pub struct Auth {
    pub user: Option<String>,
    pub password: Option<String>,
}

/// Whether the command words name a manager command rather than a `CLUSTER` command for the
/// server: `cluster create|check|start ...`, and `cluster info` with an address after it
/// (`CLUSTER INFO` itself takes no argument).
pub fn is_manager_command(words: &[String]) -> bool {
    if words.len() < 2 || !words[0].eq_ignore_ascii_case("cluster") {
        return false;
    }
    match words[1].as_str() {
        "create" | "check" | "start" => true,
        "info" => words.len() > 2,
        _ => false,
    }
}

/// Coloured status lines on a terminal, plain text otherwise.
#[derive(Clone, Copy)]
pub struct Out {
    color: bool,
}

impl Out {
    pub fn new() -> Out {
        Out {
            color: std::io::stdout().is_terminal(),
        }
    }
    fn line(&self, code: &str, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.color {
            let _ = writeln!(out, "\x1b[{code}m{text}\x1b[0m");
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
    }
    pub fn info(&self, text: &str) {
        self.line("1", text);
    }
    pub fn ok(&self, text: &str) {
        self.line("32;1", text);
    }
    pub fn warn(&self, text: &str) {
        self.line("33;1", text);
    }
    pub fn err(&self, text: &str) {
        self.line("31;1", text);
    }
    pub fn plain(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

impl Default for Out {
    fn default() -> Self {
        Out::new()
    }
}

/// A node the manager talks to: its address as used to reach it, its connection, and the
/// line it reports about itself in `CLUSTER NODES`.
pub struct Node {
    pub host: String,
    pub port: u16,
    pub conn: Conn,
    pub me: NodeLine,
    /// For masters: how many loaded nodes replicate it.
    pub replicas: usize,
}

impl Node {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

pub fn connect(host: &str, port: u16, auth: &Auth, out: &Out) -> Option<Conn> {
    let mut conn = match Conn::connect(host, port, IO_TIMEOUT) {
        Ok(c) => c,
        Err(e) => {
            out.err(&format!("Could not connect to Redis at {host}:{port}: {e}"));
            return None;
        }
    };
    if let Some(pass) = &auth.password {
        let mut cmd = vec!["AUTH".to_string()];
        if let Some(u) = &auth.user {
            cmd.push(u.clone());
        }
        cmd.push(pass.clone());
        if let Err(e) = conn.call_text(&cmd) {
            out.err(&format!("AUTH failed at {host}:{port}: {e}"));
            return None;
        }
    }
    Some(conn)
}

fn reply_error(out: &Out, addr: &str, err: &str) {
    out.err(&format!("Node {addr} replied with error:\n{err}"));
}

/// `INFO`'s `cluster_enabled:1`, and whether `db0:` appears (the node holds keys).
fn info_flags(conn: &mut Conn) -> Result<(bool, bool), String> {
    let info = conn.call_text(&["INFO"])?;
    Ok((
        info.contains("cluster_enabled:1"),
        info.lines().any(|l| l.starts_with("db0:")),
    ))
}

fn nodes_text(conn: &mut Conn) -> Result<String, String> {
    conn.call_text(&["CLUSTER", "NODES"])
}

fn own_line(text: &str) -> Result<NodeLine, String> {
    nodes::parse_nodes(text)?
        .into_iter()
        .find(NodeLine::is_myself)
        .ok_or_else(|| "no 'myself' line in CLUSTER NODES".to_string())
}

/// Connects to `host:port` and checks it runs in cluster mode; returns the node and the full
/// `CLUSTER NODES` list it reported.
fn open_node(host: &str, port: u16, auth: &Auth, out: &Out) -> Option<(Node, Vec<NodeLine>, bool)> {
    let mut conn = connect(host, port, auth, out)?;
    let addr = format!("{host}:{port}");
    let (enabled, has_keys) = match info_flags(&mut conn) {
        Ok(f) => f,
        Err(e) => {
            reply_error(out, &addr, &e);
            return None;
        }
    };
    if !enabled {
        out.err(&format!(
            "[ERR] Node {addr} is not configured as a cluster node."
        ));
        return None;
    }
    let parsed = nodes_text(&mut conn).and_then(|t| nodes::parse_nodes(&t));
    let all = match parsed {
        Ok(all) => all,
        Err(e) => {
            reply_error(out, &addr, &e);
            return None;
        }
    };
    let Some(me) = all.iter().find(|n| n.is_myself()).cloned() else {
        reply_error(out, &addr, "no 'myself' line in CLUSTER NODES");
        return None;
    };
    let node = Node {
        host: host.to_string(),
        port,
        conn,
        me,
        replicas: 0,
    };
    Some((node, all, has_keys))
}

pub fn main(words: Vec<String>, auth: Auth) -> i32 {
    let out = Out::new();
    let Some(sub) = words.first() else {
        eprintln!("Missing cluster command: create, check, info or start.");
        return 1;
    };
    let rest = &words[1..];
    match sub.to_ascii_lowercase().as_str() {
        "create" => create_command(rest, &auth, &out),
        "check" | "info" => {
            let [addr] = rest else {
                eprintln!("[ERR] Usage: ferrodis-cli cluster {sub} host:port");
                return 1;
            };
            let Some((host, port)) = nodes::parse_host_port(addr) else {
                eprintln!("[ERR] Invalid arguments: you need to pass host:port");
                return 1;
            };
            let Some(mut nodes) = load_cluster(&host, port, &auth, &out) else {
                return 1;
            };
            let shown = show_cluster_info(&mut nodes, &out);
            if sub.eq_ignore_ascii_case("info") {
                return i32::from(!shown);
            }
            i32::from(!check_cluster(&mut nodes, &out))
        }
        "start" => super::start::start_command(rest, &auth, &out),
        other => {
            eprintln!("Unknown cluster command '{other}': use create, check, info or start.");
            1
        }
    }
}

fn create_command(args: &[String], auth: &Auth, out: &Out) -> i32 {
    let mut addrs = Vec::new();
    let mut replicas = 0usize;
    let mut yes = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--replicas" | "--cluster-replicas" => {
                let Some(n) = it.next().and_then(|v| v.parse().ok()) else {
                    eprintln!("[ERR] --replicas needs a number");
                    return 1;
                };
                replicas = n;
            }
            "--yes" | "--cluster-yes" => yes = true,
            _ => match nodes::parse_host_port(a) {
                Some(hp) => addrs.push(hp),
                None => {
                    eprintln!("Invalid address format: {a}");
                    return 1;
                }
            },
        }
    }
    if addrs.is_empty() {
        eprintln!("[ERR] Usage: ferrodis-cli cluster create host:port ... [--replicas N] [--yes]");
        return 1;
    }
    match create_cluster(&addrs, replicas, yes, auth, out, &|| false) {
        CreateOutcome::Formed {
            replicate_errors: 0,
        } => 0,
        _ => 1,
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreateOutcome {
    /// The cluster formed and the final check passed; `replicate_errors` replicas refused
    /// their CLUSTER REPLICATE.
    Formed { replicate_errors: usize },
    /// The operator declined the plan.
    Declined,
    /// Something failed (already reported).
    Failed,
}

fn ask_yes(question: &str) -> bool {
    print!("{question} (type 'yes' to accept): ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}

/// Forms a new cluster from empty nodes: plan, confirm, assign slots and epochs, meet, wait
/// for agreement, attach replicas, check. `stop` is polled while waiting so a launcher can
/// abandon the wait on a signal.
pub fn create_cluster(
    addrs: &[(String, u16)],
    replicas: usize,
    yes: bool,
    auth: &Auth,
    out: &Out,
    stop: &dyn Fn() -> bool,
) -> CreateOutcome {
    let mut nodes: Vec<Node> = Vec::new();
    for (host, port) in addrs {
        let Some((mut node, all, has_keys)) = open_node(host, *port, auth, out) else {
            return CreateOutcome::Failed;
        };
        let known = node
            .conn
            .call_text(&["CLUSTER", "INFO"])
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("cluster_known_nodes:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
            })
            .unwrap_or(all.len());
        if has_keys || known != 1 || all.len() != 1 {
            out.err(&format!(
                "[ERR] Node {} is not empty. Either the node already knows other nodes \
                 (check with CLUSTER NODES) or contains some key in database 0.",
                node.addr()
            ));
            return CreateOutcome::Failed;
        }
        nodes.push(node);
    }
    let hosts: Vec<&str> = nodes.iter().map(|n| n.host.as_str()).collect();
    out.info(&format!(
        ">>> Performing hash slots allocation on {} nodes...",
        nodes.len()
    ));
    let plan = match plan_create(&hosts, replicas) {
        Ok(p) => p,
        Err(e) => {
            out.err(&e);
            return CreateOutcome::Failed;
        }
    };
    print_plan(&plan, &nodes, out);
    if !yes && !ask_yes("Can I set the above configuration?") {
        return CreateOutcome::Declined;
    }

    for m in &plan.masters {
        let node = &mut nodes[m.node];
        if let Err(e) = add_slot_range(&mut node.conn, m.first, m.last) {
            reply_error(out, &node.addr(), &e);
            return CreateOutcome::Failed;
        }
    }
    out.info(">>> Nodes configuration updated");
    out.info(">>> Assign a different config epoch to each node");
    for (i, node) in nodes.iter_mut().enumerate() {
        // A node that already has an epoch refuses; that does not stop the join.
        let _ = node
            .conn
            .call_text(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
    }
    out.info(">>> Sending CLUSTER MEET messages to join the cluster");
    let first_ip = match resolve_ip(&nodes[0].host, nodes[0].port) {
        Some(ip) => ip,
        None => {
            eprintln!(
                "Invalid IP address or hostname specified: {}",
                nodes[0].host
            );
            return CreateOutcome::Failed;
        }
    };
    let (first_port, first_bus) = (nodes[0].port, nodes[0].me.bus_port);
    for node in nodes.iter_mut().skip(1) {
        let mut cmd = vec![
            "CLUSTER".to_string(),
            "MEET".into(),
            first_ip.clone(),
            first_port.to_string(),
        ];
        if first_bus != 0 && u32::from(first_bus) != u32::from(first_port) + 10000 {
            cmd.push(first_bus.to_string());
        }
        if let Err(e) = node.conn.call_text(&cmd) {
            reply_error(out, &node.addr(), &e);
            return CreateOutcome::Failed;
        }
    }
    if !wait_for_join(&mut nodes, out, stop) {
        return CreateOutcome::Failed;
    }

    let mut replicate_errors = 0;
    for &(r, m) in &plan.replicas {
        let master_id = nodes[m].me.id.clone();
        let node = &mut nodes[r];
        if let Err(e) = node.conn.call_text(&["CLUSTER", "REPLICATE", &master_id]) {
            reply_error(out, &node.addr(), &e);
            replicate_errors += 1;
        }
    }

    let (host, port) = (nodes[0].host.clone(), nodes[0].port);
    drop(nodes);
    let Some(mut loaded) = load_cluster(&host, port, auth, out) else {
        return CreateOutcome::Failed;
    };
    if check_cluster(&mut loaded, out) {
        CreateOutcome::Formed { replicate_errors }
    } else {
        CreateOutcome::Failed
    }
}

fn print_plan(plan: &CreatePlan, nodes: &[Node], out: &Out) {
    for (i, m) in plan.masters.iter().enumerate() {
        out.plain(&format!("Master[{i}] -> Slots {} - {}", m.first, m.last));
    }
    for &(r, m) in &plan.first_assignment {
        out.plain(&format!(
            "Adding replica {} to {}",
            nodes[r].addr(),
            nodes[m].addr()
        ));
    }
    if plan.optimized {
        out.info(">>> Trying to optimize slaves allocation for anti-affinity");
        match plan.affinity {
            Affinity::Perfect => out.ok("[OK] Perfect anti-affinity obtained!"),
            Affinity::ReplicaWithMaster => {
                out.warn("[WARNING] Some slaves are in the same host as their master")
            }
            Affinity::ReplicasTogether => {
                out.warn("[WARNING] Some slaves of the same master are in the same host")
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        if let Some(m) = plan.master_of(i) {
            out.plain(&format!(
                "S: {} {}\n   replicates {}",
                node.me.id,
                node.addr(),
                nodes[m].me.id
            ));
        } else {
            let mut bitmap = vec![false; SLOTS];
            let mut count = 0;
            if let Some(mp) = plan.masters.iter().find(|mp| mp.node == i) {
                for s in mp.first..=mp.last {
                    bitmap[usize::from(s)] = true;
                }
                count = usize::from(mp.last - mp.first) + 1;
            }
            out.plain(&format!(
                "M: {} {}\n   slots:{} ({count} slots) {}",
                node.me.id,
                node.addr(),
                nodes::slots_string(&bitmap),
                node.me.shown_flags()
            ));
        }
    }
}

/// `CLUSTER ADDSLOTSRANGE first last`, or, for a server without it, `CLUSTER ADDSLOTS` with
/// every slot.
fn add_slot_range(conn: &mut Conn, first: u16, last: u16) -> Result<(), String> {
    match conn.call_text(&[
        "CLUSTER".to_string(),
        "ADDSLOTSRANGE".into(),
        first.to_string(),
        last.to_string(),
    ]) {
        Ok(_) => Ok(()),
        Err(e) if e.to_ascii_lowercase().contains("unknown subcommand") => {
            let mut cmd = vec!["CLUSTER".to_string(), "ADDSLOTS".into()];
            cmd.extend((first..=last).map(|s| s.to_string()));
            conn.call_text(&cmd).map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// The IP of `host` (CLUSTER MEET takes an address, not a name), IPv4 preferred.
fn resolve_ip(host: &str, port: u16) -> Option<String> {
    let addrs: Vec<_> = (host, port).to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .map(|a| a.ip().to_string())
}

/// What one node's `CLUSTER NODES` says about the join: its slot signature, and whether it
/// lists every expected node as a full member (no handshake, an address known).
fn join_view(text: &str, ids: &[String]) -> (Option<String>, bool) {
    let signature = nodes::config_signature(text);
    let all_known = match nodes::parse_nodes(text) {
        Ok(lines) => ids.iter().all(|id| {
            lines.iter().any(|l| {
                &l.id == id && !l.has_flag("handshake") && !l.has_flag("noaddr") && l.port != 0
            })
        }),
        Err(_) => false,
    };
    (signature, all_known)
}

fn wait_for_join(nodes: &mut [Node], out: &Out, stop: &dyn Fn() -> bool) -> bool {
    out.plain("Waiting for the cluster to join");
    let ids: Vec<String> = nodes.iter().map(|n| n.me.id.clone()).collect();
    let started = Instant::now();
    let warn_after = 20 + (nodes.len() as f32 * 0.15) as u32;
    let mut polls = 0u32;
    loop {
        let mut signatures = Vec::new();
        let mut all_known = true;
        let mut texts = Vec::new();
        for node in nodes.iter_mut() {
            let text = nodes_text(&mut node.conn).unwrap_or_default();
            let (sig, known) = join_view(&text, &ids);
            signatures.push(sig);
            all_known &= known;
            texts.push(text);
        }
        let agree = signatures[0].is_some() && signatures.iter().all(|s| *s == signatures[0]);
        if agree && all_known {
            out.plain("");
            return true;
        }
        if stop() {
            out.plain("");
            out.err("[ERR] Interrupted while waiting for the cluster to join.");
            return false;
        }
        if started.elapsed() >= JOIN_TIMEOUT {
            out.plain("");
            out.err(&format!(
                "[ERR] The nodes did not agree within {} seconds.",
                JOIN_TIMEOUT.as_secs()
            ));
            return false;
        }
        print!(".");
        let _ = std::io::stdout().flush();
        polls += 1;
        if polls == warn_after {
            report_unreachable(nodes, &texts, out);
        }
        // One poll a second, like redis-cli; checked in small steps to react to `stop`.
        let next = Instant::now() + Duration::from_secs(1);
        while Instant::now() < next && !stop() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Lists the peers that some node still sees as disconnected or in handshake.
fn report_unreachable(nodes: &[Node], texts: &[String], out: &Out) {
    let mut lines = Vec::new();
    for (node, text) in nodes.iter().zip(texts) {
        for l in nodes::parse_nodes(text).unwrap_or_default() {
            if l.is_myself() {
                continue;
            }
            if l.link_state == "disconnected" || l.has_flag("handshake") {
                lines.push(format!(
                    " - The port {} of node {} may be unreachable from: {}",
                    l.bus_port,
                    l.ip,
                    node.addr()
                ));
            }
        }
    }
    if !lines.is_empty() {
        out.plain("");
        out.err(&format!(
            "Warning: {} link(s) may be unreachable\n{}\nCluster bus ports must be reachable \
             by every node.\nRemember that cluster bus ports are different from standard \
             instance ports.",
            lines.len(),
            lines.join("\n")
        ));
    }
}

/// Loads the cluster as seen from `host:port`: that node, then every node it lists (reached
/// at the address it lists, and described by its own `CLUSTER NODES` line). Nodes that
/// cannot be reached or see themselves failing are left out.
pub fn load_cluster(host: &str, port: u16, auth: &Auth, out: &Out) -> Option<Vec<Node>> {
    let (seed, all, _) = open_node(host, port, auth, out)?;
    let mut nodes = vec![seed];
    for friend in all.iter().filter(|n| !n.is_myself()) {
        if friend.ip.is_empty() || friend.port == 0 {
            continue;
        }
        let Some(mut conn) = connect(&friend.ip, friend.port, auth, out) else {
            continue;
        };
        let me = match nodes_text(&mut conn).and_then(|t| own_line(&t)) {
            Ok(me) => me,
            Err(_) => {
                out.err(&format!(
                    "[ERR] Unable to load info for node {}:{}",
                    friend.ip, friend.port
                ));
                continue;
            }
        };
        if me.has_flag("noaddr") || me.has_flag("fail") {
            continue;
        }
        nodes.push(Node {
            host: friend.ip.clone(),
            port: friend.port,
            conn,
            me,
            replicas: 0,
        });
    }
    for i in 0..nodes.len() {
        if !nodes[i].me.is_replica() {
            continue;
        }
        let Some(master) = nodes[i].me.master_id.clone() else {
            continue;
        };
        match nodes.iter_mut().find(|n| n.me.id == master) {
            Some(m) => m.replicas += 1,
            None => out.warn(&format!(
                "*** WARNING: {} claims to be slave of unknown node ID {master}.",
                nodes[i].addr()
            )),
        }
    }
    Some(nodes)
}

/// The per-master key/slot/replica summary (`cluster info`, and the head of `check`).
fn show_cluster_info(nodes: &mut [Node], out: &Out) -> bool {
    let mut masters = 0;
    let mut keys: i64 = 0;
    for node in nodes.iter_mut() {
        if node.me.is_replica() {
            continue;
        }
        let dbsize = match node.conn.call(&["DBSIZE"]) {
            Ok(Reply::Int(n)) => n,
            Ok(Reply::Error(e)) => {
                reply_error(out, &node.addr(), e.text());
                return false;
            }
            other => {
                reply_error(out, &node.addr(), &format!("{other:?}"));
                return false;
            }
        };
        let short: String = node.me.id.chars().take(8).collect();
        out.plain(&format!(
            "{} ({short}...) -> {dbsize} keys | {} slots | {} slaves.",
            node.addr(),
            node.me.slot_count(),
            node.replicas
        ));
        masters += 1;
        keys += dbsize;
    }
    out.ok(&format!("[OK] {keys} keys in {masters} masters."));
    out.plain(&format!(
        "{:.2} keys per slot on average.",
        keys as f32 / SLOTS as f32
    ));
    true
}

fn node_summary(node: &Node) -> String {
    let role = if node.me.is_replica() { "S" } else { "M" };
    let mut s = format!(
        "{role}: {} {}\n   slots:{} ({} slots) {}",
        node.me.id,
        node.addr(),
        nodes::slots_string(&node.me.slot_bitmap()),
        node.me.slot_count(),
        node.me.shown_flags()
    );
    if let (true, Some(m)) = (node.me.is_replica(), &node.me.master_id) {
        s.push_str(&format!("\n   replicates {m}"));
    } else if node.replicas > 0 {
        s.push_str(&format!("\n   {} additional replica(s)", node.replicas));
    }
    s
}

/// The cluster check: node list, agreement on slot ownership, open slots, coverage. Returns
/// whether no error was found.
pub fn check_cluster(nodes: &mut [Node], out: &Out) -> bool {
    let Some(first) = nodes.first() else {
        return false;
    };
    out.info(&format!(
        ">>> Performing Cluster Check (using node {})",
        first.addr()
    ));
    for node in nodes.iter() {
        out.plain(&node_summary(node));
    }
    let mut ok = true;
    let signatures: Vec<Option<String>> = nodes
        .iter_mut()
        .map(|n| {
            nodes_text(&mut n.conn)
                .ok()
                .and_then(|t| nodes::config_signature(&t))
        })
        .collect();
    let consistent = signatures.len() <= 1
        || (signatures[0].is_some() && signatures.iter().all(|s| *s == signatures[0]));
    if consistent {
        out.ok("[OK] All nodes agree about slots configuration.");
    } else {
        out.err("[ERR] Nodes don't agree about configuration!");
        ok = false;
    }

    out.info(">>> Check for open slots...");
    let mut open: Vec<u16> = Vec::new();
    for node in nodes.iter() {
        for (state, list) in [
            ("migrating", &node.me.migrating),
            ("importing", &node.me.importing),
        ] {
            if list.is_empty() {
                continue;
            }
            let slots: Vec<String> = list.iter().map(|(s, _)| s.to_string()).collect();
            out.warn(&format!(
                "[WARNING] Node {} has slots in {state} state {}.",
                node.addr(),
                slots.join(",")
            ));
            open.extend(list.iter().map(|(s, _)| *s));
        }
    }
    if !open.is_empty() {
        open.sort_unstable();
        open.dedup();
        let list: Vec<String> = open.iter().map(u16::to_string).collect();
        out.err(&format!(
            "[WARNING] The following slots are open: {}.",
            list.join(",")
        ));
        ok = false;
    }

    out.info(">>> Check slots coverage...");
    let mut covered = vec![false; SLOTS];
    for node in nodes.iter() {
        for &(a, b) in &node.me.ranges {
            for s in a..=b {
                covered[usize::from(s)] = true;
            }
        }
    }
    if covered.iter().all(|&c| c) {
        out.ok(&format!("[OK] All {SLOTS} slots covered."));
    } else {
        out.err(&format!(
            "[ERR] Not all {SLOTS} slots are covered by nodes."
        ));
        ok = false;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn manager_words_are_told_apart_from_server_commands() {
        assert!(is_manager_command(&words("cluster create a:1 b:2 c:3")));
        assert!(is_manager_command(&words("cluster check a:1")));
        assert!(is_manager_command(&words("cluster info a:1")));
        assert!(is_manager_command(&words("cluster start")));
        assert!(is_manager_command(&words("CLUSTER start")));
        assert!(!is_manager_command(&words("cluster info")));
        assert!(!is_manager_command(&words("cluster nodes")));
        assert!(!is_manager_command(&words("get cluster")));
    }

    #[test]
    fn join_views() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let joined = "a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-100\n\
                      b 127.0.0.1:3@4 master - 0 0 2 connected 101-16383\n";
        let (sig, known) = join_view(joined, &ids);
        assert!(known);
        assert_eq!(sig.as_deref(), Some("a:0-100|b:101-16383"));
        let handshake = "a 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-100\n\
                         f00 127.0.0.1:3@4 handshake - 0 0 0 connected\n";
        assert!(!join_view(handshake, &ids).1);
        let alone = "b 127.0.0.1:3@4 myself,master - 0 0 2 connected 101-16383\n";
        assert!(!join_view(alone, &ids).1);
    }
}

//! Cluster mode across processes: nodes.conf at startup and restart, the bus port under
//! hostile bytes, CLUSTER replies compared byte for byte with a reference redis-server 7.0.15
//! given the same commands (ids and ports normalised), clusters formed with CLUSTER MEET and
//! with `redis-cli --cluster create`. Every process is killed by its pid when its guard drops,
//! also when an assertion fails; everything listens on 127.0.0.1 only.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{find_redis_server, free_port, wait_until, Raw, Server};

const CLUSTER: &[&str] = &["--cluster-enabled", "yes"];

fn cluster_node() -> Server {
    Server::start(CLUSTER)
}

fn fresh_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ferrodis-cluster-{tag}-{}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The reference server in cluster mode, or `None` (the comparison is skipped with a note)
/// when no redis-server is installed.
fn reference_node() -> Option<Server> {
    let Some(bin) = find_redis_server() else {
        eprintln!("no redis-server found: comparison skipped");
        return None;
    };
    Some(Server::start_program(&bin, fresh_dir("ref"), CLUSTER))
}

fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

fn wait_cluster_ok(port: u16) -> bool {
    let mut c = Raw::connect(port);
    wait_until(Duration::from_secs(20), || {
        info_field(&c.bulk(&["cluster", "info"]), "cluster_state").as_deref() == Some("ok")
    })
}

/// A node's reply with its own id and ports replaced by placeholders. RESP bulk lengths do
/// not change: an id is always 40 bytes, and the test ports all have five digits.
fn normalised(reply: &[u8], id: &str, port: u16) -> String {
    String::from_utf8_lossy(reply)
        .replace(id, "<ID>")
        .replace(&(port as u32 + 10000).to_string(), "<CPORT>")
        .replace(&port.to_string(), "<PORT>")
}

struct Compared {
    ours: Raw,
    theirs: Raw,
    our_id: String,
    their_id: String,
    our_port: u16,
    their_port: u16,
}

impl Compared {
    fn new(ours: &Server, theirs: &Server) -> Compared {
        let mut a = Raw::connect(ours.port);
        let mut b = Raw::connect(theirs.port);
        let our_id = a.bulk(&["cluster", "myid"]);
        let their_id = b.bulk(&["cluster", "myid"]);
        Compared {
            ours: a,
            theirs: b,
            our_id,
            their_id,
            our_port: ours.port,
            their_port: theirs.port,
        }
    }

    /// Sends `cmd` (with `$ID` standing for each node's own id) to both; returns the two
    /// normalised replies.
    fn both(&mut self, cmd: &str) -> (String, String) {
        let ours: Vec<String> = split_args(&cmd.replace("$ID", &self.our_id));
        let theirs: Vec<String> = split_args(&cmd.replace("$ID", &self.their_id));
        let a = self
            .ours
            .call(&ours.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        let b = self
            .theirs
            .call(&theirs.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        (
            normalised(&a, &self.our_id, self.our_port),
            normalised(&b, &self.their_id, self.their_port),
        )
    }

    fn check(&mut self, cmds: &[&str]) -> Vec<String> {
        let mut mismatches = Vec::new();
        for cmd in cmds {
            let (a, b) = self.both(cmd);
            if a != b {
                mismatches.push(format!("{cmd}\n  ferrodis: {a:?}\n  redis:    {b:?}"));
            }
        }
        mismatches
    }
}

/// Words separated by spaces; `""` is an empty argument.
fn split_args(cmd: &str) -> Vec<String> {
    cmd.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w == "\"\"" {
                String::new()
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// A child process killed (by its pid, through the handle) when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_ferrodis(dir: &Path, port: u16, extra: &[&str]) -> Guard {
    let child = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--dir", &dir.display().to_string()])
        .args(["--logfile", &dir.join("log.txt").display().to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ferrodis");
    Guard(child)
}

fn exit_code_within(guard: &mut Guard, timeout: Duration) -> Option<i32> {
    let mut code = None;
    wait_until(timeout, || match guard.0.try_wait() {
        Ok(Some(status)) => {
            code = status.code();
            true
        }
        _ => false,
    });
    code
}

// ---- nodes.conf ----

#[test]
fn a_fresh_node_saves_its_id_and_keeps_it_across_a_restart() {
    let node = cluster_node();
    let id = Raw::connect(node.port).bulk(&["cluster", "myid"]);
    assert_eq!(id.len(), 40);
    let conf = std::fs::read_to_string(node.dir.join("nodes.conf")).unwrap();
    let first = conf.lines().next().unwrap();
    assert!(first.starts_with(&format!("{id} ")), "nodes.conf: {conf}");
    assert!(first.contains("myself,master"), "nodes.conf: {conf}");
    assert!(conf.ends_with("vars currentEpoch 0 lastVoteEpoch 0\n"));
    assert!(node
        .log()
        .contains(&format!("No cluster configuration found, I'm {id}")));

    let dir = node.kill_keep_dir();
    let again = Server::start_in(dir, CLUSTER);
    assert_eq!(Raw::connect(again.port).bulk(&["cluster", "myid"]), id);
    assert!(again
        .log()
        .contains(&format!("Node configuration loaded, I'm {id}")));
}

#[test]
fn the_bus_port_is_port_plus_10000_or_cluster_port() {
    let node = cluster_node();
    assert!(TcpStream::connect(("127.0.0.1", node.port + 10000)).is_ok());
    let bus = free_port();
    let node = Server::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &bus.to_string(),
    ]);
    assert!(TcpStream::connect(("127.0.0.1", bus)).is_ok());
    let nodes = Raw::connect(node.port).bulk(&["cluster", "nodes"]);
    assert!(nodes.contains(&format!(":{}@{bus} ", node.port)), "{nodes}");
}

#[test]
fn a_corrupt_nodes_conf_stops_startup_with_exit_code_1() {
    let dir = fresh_dir("corrupt");
    let garbage = "this is not a nodes.conf line\n";
    std::fs::write(dir.join("nodes.conf"), garbage).unwrap();
    let mut node = spawn_ferrodis(&dir, free_port(), CLUSTER);
    let code = exit_code_within(&mut node, Duration::from_secs(10));
    let log = std::fs::read_to_string(dir.join("log.txt")).unwrap_or_default();
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(log.contains("corrupted cluster config file"), "log:\n{log}");
    // Never reset: the file is left as it was.
    assert_eq!(
        std::fs::read_to_string(dir.join("nodes.conf")).unwrap(),
        garbage
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_taken_bus_port_stops_startup() {
    let dir = fresh_dir("busy");
    let port = free_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port + 10000)).unwrap();
    let mut node = spawn_ferrodis(&dir, port, CLUSTER);
    let code = exit_code_within(&mut node, Duration::from_secs(10));
    let log = std::fs::read_to_string(dir.join("log.txt")).unwrap_or_default();
    assert_eq!(code, Some(1), "log:\n{log}");
    assert!(
        log.contains(&format!(
            "Failed listening on port {} (cluster), aborting.",
            port + 10000
        )),
        "log:\n{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- the bus under hostile bytes ----

/// Whether the peer closes `s` (EOF or reset) before the deadline.
fn closed_by_peer(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    wait_until(Duration::from_secs(10), || match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    })
}

fn ping(port: u16) -> String {
    Raw::connect(port).text(&["ping"])
}

#[test]
fn hostile_bytes_on_the_bus_close_only_that_link() {
    let node = cluster_node();
    let bus = node.port + 10000;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(node.port);
    let mut random = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut bytes: Vec<u8> = (0..4096).map(|_| random() as u8).collect();
    bytes[0] = b'X'; // never the signature by chance
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", bytes),
        ("a header shorter than the minimum", {
            let mut b = b"RCmb".to_vec();
            b.extend_from_slice(&16u32.to_be_bytes());
            b.extend_from_slice(&[0u8; 8]);
            b
        }),
        ("a frame longer than the limit", {
            let mut b = b"RCmb".to_vec();
            b.extend_from_slice(&u32::MAX.to_be_bytes());
            b
        }),
    ];
    let mut idle = TcpStream::connect(("127.0.0.1", bus)).unwrap();
    for (what, payload) in cases {
        let mut s = TcpStream::connect(("127.0.0.1", bus)).unwrap();
        s.write_all(&payload).unwrap();
        assert!(closed_by_peer(&mut s), "{what}: link left open");
        assert_eq!(ping(node.port), "+PONG\r\n", "after {what}");
    }
    // A half header is not an error yet: the link waits for the rest.
    idle.write_all(b"RCmb\x00").unwrap();
    idle.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(idle.read(&mut buf), Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a partial header must not close the link"
    );
    drop(idle);
    assert_eq!(ping(node.port), "+PONG\r\n");
}

// ---- replies compared with redis-server ----

/// Arity and argument errors of every subcommand, on a fresh node (no slots, no peers).
const ARGUMENT_ERRORS: &[&str] = &[
    "cluster",
    "cluster foo",
    "cluster myshardid",
    "cluster help",
    "cluster help x",
    "cluster info x",
    "cluster nodes x",
    "cluster myid x",
    "cluster slots x",
    "cluster shards x",
    "cluster links x",
    "cluster addslots",
    "cluster addslots x",
    "cluster addslots 16384",
    "cluster addslots -1",
    "cluster addslots 1 1",
    "cluster addslots 1 x",
    "cluster addslots 1.5",
    "cluster addslots +1",
    "cluster addslots \"\"",
    "cluster addslotsrange 1",
    "cluster addslotsrange 1 2 3",
    "cluster addslotsrange 5 1",
    "cluster addslotsrange x 1",
    "cluster addslotsrange 1 x",
    "cluster addslotsrange 1 16384",
    "cluster addslotsrange 1 3 2 4",
    "cluster delslots",
    "cluster delslots 1",
    "cluster delslots x",
    "cluster delslotsrange 1 2",
    "cluster delslotsrange 2 1",
    "cluster delslotsrange 1 2 3",
    "cluster flushslots x",
    "cluster setslot 1",
    "cluster setslot 1 x",
    "cluster setslot x stable",
    "cluster setslot 16384 stable",
    "cluster setslot 1 stable x",
    "cluster setslot 1 migrating",
    "cluster setslot 1 migrating abc",
    "cluster setslot 1 migrating abc d",
    "cluster setslot 1 migrating $ID",
    "cluster setslot 1 importing abc",
    "cluster setslot 1 importing 0123456789012345678901234567890123456789",
    "cluster setslot 1 node abc",
    "cluster setslot 1 node 0123456789012345678901234567890123456789",
    "cluster setslot 1 foo bar",
    "cluster meet",
    "cluster meet 127.0.0.1",
    "cluster meet 127.0.0.1 x",
    "cluster meet 127.0.0.1 1 x",
    "cluster meet 127.0.0.1 0",
    "cluster meet 127.0.0.1 65536",
    "cluster meet 127.0.0.1 60000",
    "cluster meet 127.0.0.1 1 0",
    "cluster meet 127.0.0.1 1 65536",
    "cluster meet localhost 1",
    "cluster meet 1.2.3 1",
    "cluster meet 127.0.0.1 1 2 3",
    "cluster meet ::1 -1",
    "cluster forget",
    "cluster forget abc",
    "cluster forget 0123456789012345678901234567890123456789",
    "cluster forget $ID",
    "cluster forget a b",
    "cluster reset x",
    "cluster reset hard x",
    "cluster reset foo",
    "cluster set-config-epoch",
    "cluster set-config-epoch x",
    "cluster set-config-epoch -1",
    "cluster set-config-epoch 1 2",
    "cluster bumpepoch x",
    "cluster count-failure-reports",
    "cluster count-failure-reports abc",
    "cluster count-failure-reports $ID",
    "cluster saveconfig x",
    "cluster replicas",
    "cluster replicas abc",
    "cluster replicas $ID",
    "cluster slaves abc",
    "cluster slaves $ID",
    "cluster keyslot",
    "cluster countkeysinslot x",
    "cluster getkeysinslot 1",
    "cluster links",
    "cluster nodes",
    "cluster slots",
    "cluster shards",
    "cluster myid",
];

/// Errors that depend on the slots this node holds: after ADDSLOTS 1 2 3.
const STATE_ERRORS: &[&str] = &[
    "cluster addslots 1 2 3",
    "cluster addslots 3",
    "cluster addslots 4 4",
    "cluster addslots 4 3",
    "cluster addslotsrange 5 10 3 4",
    "cluster addslotsrange 0 10 20 5",
    "cluster delslots 1 1",
    "cluster delslots 7",
    "cluster delslotsrange 1 3 3 3",
    "cluster setslot 1 migrating 0123456789012345678901234567890123456789",
    "cluster setslot 1 migrating abc",
    "cluster setslot 1 importing $ID",
    "cluster setslot 1 node abc",
    "cluster set-config-epoch 5",
    "cluster set-config-epoch 6",
    "cluster nodes",
    "cluster slots",
    "cluster shards",
    "cluster saveconfig",
];

#[test]
fn argument_errors_match_redis() {
    let Some(reference) = reference_node() else {
        return;
    };
    let node = cluster_node();
    let mut both = Compared::new(&node, &reference);
    let mut mismatches = both.check(ARGUMENT_ERRORS);
    mismatches.extend(both.check(STATE_ERRORS));
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn one_node_with_every_slot_is_ok_and_its_views_match_redis() {
    let node = cluster_node();
    let mut c = Raw::connect(node.port);
    assert_eq!(
        c.text(&["cluster", "addslotsrange", "0", "16383"]),
        "+OK\r\n"
    );
    assert!(wait_cluster_ok(node.port), "cluster_state never became ok");
    let info = c.bulk(&["cluster", "info"]);
    assert_eq!(
        info_field(&info, "cluster_slots_assigned").as_deref(),
        Some("16384")
    );
    assert_eq!(info_field(&info, "cluster_size").as_deref(), Some("1"));
    let conf = std::fs::read_to_string(node.dir.join("nodes.conf")).unwrap();
    assert!(conf.contains(" 0-16383\n"), "nodes.conf: {conf}");

    let Some(reference) = reference_node() else {
        return;
    };
    let mut r = Raw::connect(reference.port);
    assert_eq!(
        r.text(&["cluster", "addslotsrange", "0", "16383"]),
        "+OK\r\n"
    );
    assert!(wait_cluster_ok(reference.port));
    let mut both = Compared::new(&node, &reference);
    let mismatches = both.check(&[
        "cluster nodes",
        "cluster slots",
        "cluster shards",
        "cluster info",
        "cluster links",
        "cluster bumpepoch",
        "cluster delslotsrange 100 200",
        "cluster nodes",
        "cluster slots",
        "cluster shards",
    ]);
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

// ---- clusters of several nodes ----

fn meet_all(nodes: &[Server]) {
    let mut first = Raw::connect(nodes[0].port);
    for other in &nodes[1..] {
        let port = other.port.to_string();
        assert_eq!(
            first.text(&["cluster", "meet", "127.0.0.1", &port]),
            "+OK\r\n"
        );
    }
}

#[test]
fn three_nodes_met_and_given_slots_all_report_ok() {
    let nodes: Vec<Server> = (0..3).map(|_| cluster_node()).collect();
    meet_all(&nodes);
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    for (node, (start, end)) in nodes.iter().zip(ranges) {
        let mut c = Raw::connect(node.port);
        assert_eq!(c.text(&["cluster", "addslotsrange", start, end]), "+OK\r\n");
    }
    for node in &nodes {
        let mut c = Raw::connect(node.port);
        let known = wait_until(Duration::from_secs(30), || {
            let info = c.bulk(&["cluster", "info"]);
            info_field(&info, "cluster_known_nodes").as_deref() == Some("3")
                && info_field(&info, "cluster_state").as_deref() == Some("ok")
        });
        assert!(
            known,
            "node {} never saw 3 nodes and state ok:\n{}\nlog:\n{}",
            node.port,
            c.bulk(&["cluster", "nodes"]),
            node.log()
        );
    }
    let mut c = Raw::connect(nodes[0].port);
    let slots = c.text(&["cluster", "slots"]);
    assert!(slots.starts_with("*3\r\n"), "{slots}");
}

/// Runs `redis-cli` with `args`, killed if it outlives `timeout`; returns (success, output).
fn redis_cli(args: &[String], timeout: Duration) -> (bool, String) {
    let dir = fresh_dir("cli");
    let out_path = dir.join("out.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut guard = Guard(
        Command::new("redis-cli")
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn redis-cli"),
    );
    let code = exit_code_within(&mut guard, timeout);
    drop(guard);
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    (code == Some(0), text)
}

fn have_redis_cli() -> bool {
    Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn redis_cli_creates_a_cluster_and_follows_redirects() {
    if !have_redis_cli() {
        eprintln!("no redis-cli: skipped");
        return;
    }
    let nodes: Vec<Server> = (0..3).map(|_| cluster_node()).collect();
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
    args.push("--cluster-yes".into());
    let (ok, out) = redis_cli(&args, Duration::from_secs(60));
    assert!(ok, "redis-cli --cluster create failed:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    for node in &nodes {
        assert!(wait_cluster_ok(node.port), "node {} not ok", node.port);
    }
    let port = nodes[0].port.to_string();
    for i in 0..50 {
        let key = format!("key:{i}");
        let value = format!("value-{i}");
        let set: Vec<String> = ["-c", "-p", &port, "set", &key, &value]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (ok, out) = redis_cli(&set, Duration::from_secs(10));
        assert!(ok && out.trim() == "OK", "SET {key}: {out}");
        let get: Vec<String> = ["-c", "-p", &port, "get", &key]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (ok, out) = redis_cli(&get, Duration::from_secs(10));
        assert!(ok && out.trim() == value, "GET {key}: {out}");
    }
    let (ok, out) = redis_cli(
        &[
            "--cluster".into(),
            "check".into(),
            format!("127.0.0.1:{port}"),
        ],
        Duration::from_secs(30),
    );
    assert!(ok && out.contains("[OK] All 16384 slots covered."), "{out}");
}

#[test]
fn a_mixed_cluster_with_redis_servers_agrees_on_every_slot() {
    let Some(bin) = find_redis_server() else {
        eprintln!("no redis-server found: skipped");
        return;
    };
    let ours = cluster_node();
    let theirs: Vec<Server> = (0..2)
        .map(|i| Server::start_program(&bin, fresh_dir(&format!("mixed{i}")), CLUSTER))
        .collect();
    let mut c = Raw::connect(ours.port);
    for other in &theirs {
        let port = other.port.to_string();
        assert_eq!(c.text(&["cluster", "meet", "127.0.0.1", &port]), "+OK\r\n");
    }
    let ranges = [("0", "5460"), ("5461", "10922"), ("10923", "16383")];
    let ports: Vec<u16> = std::iter::once(ours.port)
        .chain(theirs.iter().map(|s| s.port))
        .collect();
    for (port, (start, end)) in ports.iter().zip(ranges) {
        let reply = Raw::connect(*port).text(&["cluster", "addslotsrange", start, end]);
        assert_eq!(reply, "+OK\r\n");
    }
    let agreed = wait_until(Duration::from_secs(30), || {
        let views: Vec<(String, Vec<u8>)> = ports
            .iter()
            .map(|p| {
                let mut c = Raw::connect(*p);
                (c.bulk(&["cluster", "info"]), c.call(&["cluster", "slots"]))
            })
            .collect();
        views.iter().all(|(info, _)| {
            info_field(info, "cluster_state").as_deref() == Some("ok")
                && info_field(info, "cluster_known_nodes").as_deref() == Some("3")
        }) && views.iter().all(|(_, slots)| *slots == views[0].1)
    });
    let mut c = Raw::connect(ours.port);
    assert!(
        agreed,
        "the nodes never agreed; ferrodis sees:\n{}\nlog:\n{}",
        c.bulk(&["cluster", "nodes"]),
        ours.log()
    );
    // Keys owned by each node: served here or redirected, in Redis's words.
    let ours_line = c.bulk(&["cluster", "nodes"]);
    assert!(ours_line.contains("myself,master"), "{ours_line}");
    assert_eq!(c.text(&["set", "bar", "1"]), "+OK\r\n"); // slot 5061, ours
    let moved = c.text(&["get", "foo"]); // slot 12182, the third node's
    assert_eq!(
        moved,
        format!("-MOVED 12182 127.0.0.1:{}\r\n", theirs[1].port)
    );
    // A message published on one node reaches subscribers on the others.
    let mut sub = Raw::connect(theirs[0].port);
    sub.call(&["subscribe", "news"]);
    assert_eq!(c.text(&["publish", "news", "hello"]), ":0\r\n");
    let mut message = Vec::new();
    sub.read_reply(&mut message);
    assert_eq!(
        String::from_utf8_lossy(&message),
        "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
}

#[test]
fn links_over_the_send_buffer_limit_are_freed_and_come_back() {
    let nodes: Vec<Server> = (0..2).map(|_| cluster_node()).collect();
    meet_all(&nodes);
    let known = |port: u16| {
        let mut c = Raw::connect(port);
        wait_until(Duration::from_secs(20), || {
            let nodes = c.bulk(&["cluster", "nodes"]);
            nodes.lines().count() == 2
                && !nodes.contains("disconnected")
                && !nodes.contains("handshake")
        })
    };
    assert!(
        known(nodes[0].port) && known(nodes[1].port),
        "the two nodes never met"
    );
    let mut c = Raw::connect(nodes[0].port);
    let exceeded = |c: &mut Raw| {
        info_field(
            &c.bulk(&["cluster", "info"]),
            "total_cluster_links_buffer_limit_exceeded",
        )
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
    };
    assert_eq!(exceeded(&mut c), 0);
    assert_eq!(
        c.text(&["config", "set", "cluster-link-sendbuf-limit", "1"]),
        "+OK\r\n"
    );
    assert!(
        wait_until(Duration::from_secs(20), || exceeded(&mut c) > 0),
        "no link was freed"
    );
    assert!(nodes[0]
        .log()
        .contains("due to exceeding send buffer memory limit."));
    assert_eq!(
        c.text(&["config", "set", "cluster-link-sendbuf-limit", "0"]),
        "+OK\r\n"
    );
    assert!(known(nodes[0].port), "links did not come back");
    assert_eq!(ping(nodes[0].port), "+PONG\r\n");
}

/// The create-time of each link CLUSTER LINKS lists, in its order.
fn link_create_times(c: &mut Raw) -> Vec<String> {
    let links = c.text(&["cluster", "links"]);
    let mut lines = links.split("\r\n");
    let mut times = Vec::new();
    while let Some(line) = lines.next() {
        if line == "create-time" {
            times.extend(lines.next().map(|t| t.trim_start_matches(':').to_string()));
        }
    }
    times
}

#[test]
fn debug_clusterlink_kill_frees_links_that_come_back() {
    let debug = [CLUSTER, &["--enable-debug-command", "yes"]].concat();
    let nodes: Vec<Server> = (0..2).map(|_| Server::start(&debug)).collect();
    meet_all(&nodes);
    let mut c = Raw::connect(nodes[0].port);
    assert!(
        wait_until(Duration::from_secs(20), || link_create_times(&mut c).len()
            == 2),
        "the two nodes never linked: {}",
        c.bulk(&["cluster", "nodes"])
    );
    let other = Raw::connect(nodes[1].port).bulk(&["cluster", "myid"]);
    assert_eq!(
        c.text(&["debug", "clusterlink", "kill", "all", "0123"]),
        "-ERR Unknown node 0123\r\n"
    );
    assert_eq!(
        c.text(&["debug", "clusterlink", "kill", "sideways", &other]),
        "-ERR Unknown direction sideways\r\n"
    );
    let before = link_create_times(&mut c);
    // Create times are in milliseconds: wait until the server's clock is past the old links'.
    let newest: u64 = before.iter().filter_map(|t| t.parse().ok()).max().unwrap();
    let server_ms = |c: &mut Raw| {
        let time = c.text(&["time"]);
        let parts: Vec<u64> = time.split("\r\n").filter_map(|l| l.parse().ok()).collect();
        parts[0] * 1000 + parts[1] / 1000
    };
    assert!(wait_until(Duration::from_secs(5), || server_ms(&mut c) > newest));
    assert_eq!(
        c.text(&["debug", "clusterlink", "kill", "all", &other]),
        "+OK\r\n"
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            let now = link_create_times(&mut c);
            now.len() == 2 && now.iter().all(|t| !before.contains(t))
        }),
        "links not replaced: before {before:?}, now {:?}",
        link_create_times(&mut c)
    );
    assert_eq!(ping(nodes[0].port), "+PONG\r\n");
}

#[test]
fn cluster_replicate_makes_an_empty_node_a_replica_that_serves_readonly_reads() {
    let nodes: Vec<Server> = (0..3).map(|_| cluster_node()).collect();
    meet_all(&nodes);
    let mut a = Raw::connect(nodes[0].port);
    let mut b = Raw::connect(nodes[1].port);
    let mut c = Raw::connect(nodes[2].port);
    assert_eq!(
        a.text(&["cluster", "addslotsrange", "0", "16383"]),
        "+OK\r\n"
    );
    let a_id = a.bulk(&["cluster", "myid"]);
    let c_id = c.bulk(&["cluster", "myid"]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            b.bulk(&["cluster", "nodes"]).contains(&a_id)
                && c.bulk(&["cluster", "nodes"]).contains(&a_id)
        }),
        "the nodes never met"
    );
    assert_eq!(
        a.text(&["cluster", "replicate", &a_id]),
        "-ERR Can't replicate myself\r\n"
    );
    assert_eq!(
        b.text(&["cluster", "replicate", "nosuchnode"]),
        "-ERR Unknown node nosuchnode\r\n"
    );
    assert_eq!(
        a.text(&["cluster", "replicate", &c_id]),
        "-ERR To set a master the node must be empty and without assigned slots.\r\n"
    );
    assert_eq!(b.text(&["cluster", "replicate", &a_id]), "+OK\r\n");
    let b_id = b.bulk(&["cluster", "myid"]);
    assert!(b
        .bulk(&["cluster", "nodes"])
        .lines()
        .any(|l| l.starts_with(&b_id) && l.contains(&format!("myself,slave {a_id}"))));
    assert!(
        wait_until(Duration::from_secs(20), || {
            let nodes = a.bulk(&["cluster", "nodes"]);
            nodes
                .lines()
                .any(|l| l.starts_with(&b_id) && l.contains(&format!(" slave {a_id} ")))
        }),
        "the master never learned its replica:\n{}",
        a.bulk(&["cluster", "nodes"])
    );
    assert!(
        wait_until(Duration::from_secs(20), || c
            .bulk(&["cluster", "nodes"])
            .lines()
            .any(|l| l.starts_with(&b_id) && l.contains(" slave "))),
        "the third node never learned the replica"
    );
    assert_eq!(
        c.text(&["cluster", "replicate", &b_id]),
        "-ERR I can only replicate a master, not a replica.\r\n"
    );
    assert!(
        wait_cluster_ok(nodes[0].port),
        "the master never reported cluster_state:ok"
    );
    assert_eq!(a.text(&["set", "foo", "bar"]), "+OK\r\n");
    assert!(
        wait_cluster_ok(nodes[1].port),
        "the replica never reported cluster_state:ok"
    );
    assert!(b
        .text(&["get", "foo"])
        .starts_with("-MOVED 12182 127.0.0.1:"));
    assert_eq!(b.text(&["readonly"]), "+OK\r\n");
    assert!(
        wait_until(Duration::from_secs(20), || b.text(&["get", "foo"])
            == "$3\r\nbar\r\n"),
        "the replica never got the write; its INFO replication:\n{}",
        b.bulk(&["info", "replication"])
    );
    let replicas = a.text(&["cluster", "replicas", &a_id]);
    assert!(
        replicas.starts_with("*1\r\n") && replicas.contains(&b_id),
        "{replicas}"
    );
}

#[test]
fn announced_ports_set_at_runtime_show_in_the_next_cluster_nodes() {
    let node = cluster_node();
    let mut c = Raw::connect(node.port);
    assert_eq!(
        c.text(&["config", "set", "cluster-announce-port", "1234"]),
        "+OK\r\n"
    );
    assert!(c.bulk(&["cluster", "nodes"]).contains(":1234@"));
    assert_eq!(
        c.text(&["config", "set", "cluster-announce-bus-port", "4321"]),
        "+OK\r\n"
    );
    assert!(c.bulk(&["cluster", "nodes"]).contains(":1234@4321 "));
    assert_eq!(
        c.text(&["config", "set", "cluster-announce-port", "0"]),
        "+OK\r\n"
    );
    let expected = format!(":{}@4321 ", node.port);
    assert!(c.bulk(&["cluster", "nodes"]).contains(&expected));
}

//! `ferrodis-cli cluster create|check|info|start` against real `redis-server` 7.0 nodes in
//! cluster mode (ferrodis nodes cannot form a cluster yet): the cluster the CLI forms must
//! pass both its own check and redis-cli's, and `start` must leave no process behind.
//! Every spawned process is killed by pid when its guard drops, also when a test fails.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::{find_redis_server, free_port, free_ports, wait_until};

const CLI: &str = env!("CARGO_BIN_EXE_ferrodis-cli");

fn redis_server() -> Option<PathBuf> {
    let found = find_redis_server();
    if found.is_none() {
        eprintln!("redis-server not found: skipping");
    }
    found
}

fn redis_cli(server: &Path) -> PathBuf {
    let next_to = server.with_file_name("redis-cli");
    if next_to.is_file() {
        next_to
    } else {
        PathBuf::from("/usr/bin/redis-cli")
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ferrodis-cli-cluster-{}-{tag}-{}",
        std::process::id(),
        free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut b = [0u8; 1];
    s.read_exact(&mut b).is_ok() && (b[0] == b'+' || b[0] == b'-')
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the pid exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// A `redis-server --cluster-enabled yes` node in its own directory.
struct RedisNode {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisNode {
    fn start(bin: &Path) -> RedisNode {
        let port = free_port();
        let dir = temp_dir(&format!("node{port}"));
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--dir",
                &dir.display().to_string(),
                "--appendonly",
                "no",
                "--save",
                "",
                "--logfile",
                &dir.join("log").display().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let node = RedisNode { child, port, dir };
        assert!(
            wait_until(Duration::from_secs(10), || answers_ping(port)),
            "redis-server on {port} did not answer PING"
        );
        node
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(bin: &Path, args: &[&str]) -> (bool, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    // stdout, then whatever went to stderr (connection errors, usage lines).
    let mut text = String::from_utf8_lossy(&stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&stderr));
    (status.success(), text)
}

fn cli(args: &[&str]) -> (bool, String) {
    run(Path::new(CLI), args)
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn create_check_and_info_on_three_redis_nodes() {
    let Some(server) = redis_server() else { return };
    let rcli = redis_cli(&server);
    let nodes: Vec<RedisNode> = (0..3).map(|_| RedisNode::start(&server)).collect();
    let addrs: Vec<String> = nodes.iter().map(RedisNode::addr).collect();

    // A lone node with no slots fails the check.
    let (ok, out) = cli(&["cluster", "check", &addrs[0]]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("[ERR] Not all 16384 slots are covered by nodes."),
        "{out}"
    );

    // Without --yes the plan waits for a typed "yes"; anything else leaves the nodes alone.
    let mut args = vec!["cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    let mut asked = Command::new(CLI)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    asked.stdin.take().unwrap().write_all(b"no\n").unwrap();
    let asked = asked.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&asked.stdout);
    assert!(!asked.status.success(), "{out}");
    assert!(
        out.contains("Can I set the above configuration? (type 'yes' to accept): "),
        "{out}"
    );
    let (_, slots) = run(
        &rcli,
        &["-p", &nodes[0].port.to_string(), "cluster", "info"],
    );
    assert!(slots.contains("cluster_slots_assigned:0"), "{slots}");

    args.push("--yes");
    let (ok, out) = cli(&args);
    assert!(ok, "create failed:\n{out}");
    for line in [
        "Master[0] -> Slots 0 - 5460",
        "Master[1] -> Slots 5461 - 10922",
        "Master[2] -> Slots 10923 - 16383",
        "Waiting for the cluster to join",
        "[OK] All nodes agree about slots configuration.",
        "[OK] All 16384 slots covered.",
    ] {
        assert!(out.contains(line), "missing '{line}' in:\n{out}");
    }

    let (ok, out) = cli(&["cluster", "check", &addrs[1]]);
    assert!(ok, "{out}");
    assert_eq!(
        count(&out, "\nM: ") + usize::from(out.starts_with("M: ")),
        3,
        "{out}"
    );
    assert!(
        out.contains("   slots:[0-5460] (5461 slots) master"),
        "{out}"
    );
    assert!(
        out.contains("   slots:[5461-10922] (5462 slots) master"),
        "{out}"
    );
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    // The reference tool agrees.
    let (ok, out) = run(&rcli, &["--cluster", "check", &addrs[2]]);
    assert!(ok, "{out}");
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    // Each node flips to cluster_state:ok on its own schedule after the join.
    for n in &nodes {
        let port = n.port.to_string();
        assert!(
            wait_until(Duration::from_secs(30), || run(
                &rcli,
                &["-p", &port, "cluster", "info"]
            )
            .1
            .contains("cluster_state:ok")),
            "node {port} never reached cluster_state:ok"
        );
    }
    // A key written through redis-cli -c shows up in the totals.
    let (ok, out) = run(
        &rcli,
        &["-c", "-p", &nodes[0].port.to_string(), "set", "foo", "bar"],
    );
    assert!(ok && out.contains("OK"), "{out}");
    let (ok, out) = cli(&["cluster", "info", &addrs[0]]);
    assert!(ok, "{out}");
    assert_eq!(count(&out, " slots | 0 slaves."), 3, "{out}");
    for n in &nodes {
        assert!(out.contains(&format!("{} (", n.addr())), "{out}");
    }
    assert!(out.contains("[OK] 1 keys in 3 masters."), "{out}");
    assert!(out.contains("0.00 keys per slot on average."), "{out}");

    // The nodes now know each other: creating again is refused.
    let (ok, out) = cli(&args);
    assert!(!ok, "{out}");
    assert!(out.contains("is not empty"), "{out}");

    // An open slot is reported and fails the check.
    let id_of = |port: u16| -> String {
        let (_, out) = run(&rcli, &["-p", &port.to_string(), "cluster", "myid"]);
        out.trim().to_string()
    };
    let target = id_of(nodes[1].port);
    let (ok, out) = run(
        &rcli,
        &[
            "-p",
            &nodes[0].port.to_string(),
            "cluster",
            "setslot",
            "100",
            "migrating",
            &target,
        ],
    );
    assert!(ok && out.contains("OK"), "{out}");
    let (ok, out) = cli(&["cluster", "check", &addrs[0]]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "[WARNING] Node {} has slots in migrating state 100.",
            addrs[0]
        )),
        "{out}"
    );
    assert!(
        out.contains("[WARNING] The following slots are open: 100."),
        "{out}"
    );
}

#[test]
fn create_with_one_replica_each_on_six_redis_nodes() {
    let Some(server) = redis_server() else { return };
    let nodes: Vec<RedisNode> = (0..6).map(|_| RedisNode::start(&server)).collect();
    let addrs: Vec<String> = nodes.iter().map(RedisNode::addr).collect();
    let mut args = vec!["cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--replicas", "1", "--yes"]);
    let (ok, out) = cli(&args);
    assert!(ok, "create failed:\n{out}");
    assert_eq!(count(&out, "Adding replica "), 3, "{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");

    let (ok, out) = cli(&["cluster", "check", &addrs[0]]);
    assert!(ok, "{out}");
    assert_eq!(count(&out, "   1 additional replica(s)"), 3, "{out}");
    assert_eq!(count(&out, "slots: (0 slots) slave"), 3, "{out}");
    let (ok, out) = cli(&["cluster", "info", &addrs[0]]);
    assert!(ok, "{out}");
    assert_eq!(count(&out, " slots | 1 slaves."), 3, "{out}");
    assert!(out.contains("[OK] 0 keys in 3 masters."), "{out}");
}

#[test]
fn create_refuses_fewer_than_three_masters() {
    let Some(server) = redis_server() else { return };
    let nodes: Vec<RedisNode> = (0..2).map(|_| RedisNode::start(&server)).collect();
    let (ok, out) = cli(&[
        "cluster",
        "create",
        &nodes[0].addr(),
        &nodes[1].addr(),
        "--yes",
    ]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Redis Cluster requires at least 3 master nodes."),
        "{out}"
    );
}

/// A running `ferrodis-cli cluster start`; dropping it stops the launcher and kills every
/// node pid it learned, whatever the test's outcome.
struct Launcher {
    child: Child,
    node_pids: Vec<i32>,
    dir: PathBuf,
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &pid in &self.node_pids {
            // SAFETY: SIGKILL to pids this test recorded as the launcher's nodes.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("out"));
    }
}

fn spawn_launcher(server: &Path, base: u16, dir: &Path) -> Launcher {
    let out = std::fs::File::create(dir.with_extension("out")).unwrap();
    let child = Command::new(CLI)
        .args([
            "cluster",
            "start",
            "--bin",
            &server.display().to_string(),
            "--port",
            &base.to_string(),
            "--dir",
            &dir.display().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("spawn ferrodis-cli");
    Launcher {
        child,
        node_pids: Vec::new(),
        dir: dir.to_path_buf(),
    }
}

fn launcher_output(dir: &Path) -> String {
    std::fs::read_to_string(dir.with_extension("out")).unwrap_or_default()
}

#[test]
fn start_forms_a_cluster_and_stops_every_node_on_sigterm() {
    let Some(server) = redis_server() else { return };
    let rcli = redis_cli(&server);
    let base = free_ports(3);
    let dir = temp_dir("start");
    let mut launcher = spawn_launcher(&server, base, &dir);

    let state_ok = wait_until(Duration::from_secs(60), || {
        if let Ok(Some(status)) = launcher.child.try_wait() {
            panic!("launcher exited ({status}):\n{}", launcher_output(&dir));
        }
        let (_, out) = run(&rcli, &["-p", &base.to_string(), "cluster", "info"]);
        out.contains("cluster_state:ok")
    });
    assert!(state_ok, "no cluster_state:ok:\n{}", launcher_output(&dir));
    assert!(
        wait_until(Duration::from_secs(10), || launcher_output(&dir)
            .contains(&format!("redis-cli -c -p {base}"))),
        "{}",
        launcher_output(&dir)
    );

    for port in base..base + 3 {
        let (_, info) = run(&rcli, &["-p", &port.to_string(), "info", "server"]);
        let pid: i32 = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no process_id from port {port}: {info}"));
        launcher.node_pids.push(pid);
        // The node is the launcher's own child.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert_eq!(
            ppid,
            launcher.child.id(),
            "node {pid} is not the launcher's child"
        );
    }
    let (ok, out) = cli(&["cluster", "check", &format!("127.0.0.1:{base}")]);
    assert!(ok, "{out}");

    // SAFETY: SIGTERM to the launcher this test spawned.
    unsafe {
        libc::kill(launcher.child.id() as i32, libc::SIGTERM);
    }
    let mut status = None;
    let exited = wait_until(Duration::from_secs(30), || {
        status = launcher.child.try_wait().unwrap();
        status.is_some()
    });
    assert!(exited, "launcher still running:\n{}", launcher_output(&dir));
    assert!(status.unwrap().success(), "{}", launcher_output(&dir));
    for &pid in &launcher.node_pids {
        assert!(!pid_alive(pid), "node pid {pid} still exists");
    }
    assert!(launcher_output(&dir).contains("[OK] All nodes stopped."));
}

#[test]
fn start_reports_a_busy_port_and_stops_the_nodes_it_started() {
    let Some(server) = redis_server() else { return };
    let base = free_ports(3);
    let _held = TcpListener::bind(("127.0.0.1", base + 1)).unwrap();
    let dir = temp_dir("busy");
    let mut launcher = spawn_launcher(&server, base, &dir);
    let mut status = None;
    let exited = wait_until(Duration::from_secs(30), || {
        status = launcher.child.try_wait().unwrap();
        status.is_some()
    });
    let out = launcher_output(&dir);
    assert!(exited, "launcher still running:\n{out}");
    assert!(!status.unwrap().success(), "{out}");
    assert!(
        out.contains(&format!("Port {} on 127.0.0.1 is busy.", base + 1)),
        "{out}"
    );
    // The node started on the first port was stopped again.
    let pid: i32 = out
        .split(&format!("Started node on port {base} (pid "))
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no pid for port {base} in:\n{out}"));
    launcher.node_pids.push(pid);
    assert!(!pid_alive(pid), "node pid {pid} still exists");
    assert!(!answers_ping(base));
}

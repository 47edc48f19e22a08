//! `cluster start`: a local development cluster. Starts N server processes on 127.0.0.1
//! (ferrodis by default, or any binary that takes the same flags, such as redis-server),
//! forms them into a cluster exactly as `cluster create --yes` does, then stays in the
//! foreground until Ctrl-C or SIGTERM and stops every process it started: SIGTERM, a grace
//! period, then SIGKILL.

use super::cluster::{self, Auth, CreateOutcome, Out};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a node may take to answer PING after it is spawned.
const UP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a node may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long the formed cluster may take until every node reports `cluster_state:ok`.
const STATE_OK_TIMEOUT: Duration = Duration::from_secs(60);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &action, std::ptr::null_mut());
    }
}

#[derive(Debug, PartialEq, Eq)]
struct StartOptions {
    masters: usize,
    replicas: usize,
    port: u16,
    dir: PathBuf,
    bin: Option<PathBuf>,
}

fn parse_options(args: &[String]) -> Result<StartOptions, String> {
    let mut o = StartOptions {
        masters: 3,
        replicas: 0,
        port: 7000,
        dir: PathBuf::from("ferrodis-cluster"),
        bin: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("missing value for {a}"));
        match a.as_str() {
            "--masters" => {
                o.masters = value()?
                    .parse()
                    .map_err(|_| "--masters needs a number".to_string())?
            }
            "--replicas" => {
                o.replicas = value()?
                    .parse()
                    .map_err(|_| "--replicas needs a number".to_string())?
            }
            "--port" => {
                o.port = value()?
                    .parse()
                    .map_err(|_| "--port needs a port number".to_string())?
            }
            "--dir" => o.dir = PathBuf::from(value()?),
            "--bin" => o.bin = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if o.masters < 3 {
        return Err("a cluster needs at least 3 masters".into());
    }
    let total = o.masters * (o.replicas + 1);
    if usize::from(o.port) + total + 10000 > 65536 || o.port == 0 {
        return Err(format!(
            "ports {}..{} and their bus ports (+10000) do not fit below 65536",
            o.port,
            usize::from(o.port) + total - 1
        ));
    }
    Ok(o)
}

/// The `ferrodis` binary next to this executable.
fn default_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent()?.join("ferrodis");
    candidate.is_file().then_some(candidate)
}

struct Started {
    port: u16,
    child: Child,
    dir: PathBuf,
}

/// Whether something already listens on (or holds) `port` on the loopback address.
fn port_busy(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_err()
}

fn spawn_node(bin: &Path, port: u16, dir: &Path) -> std::io::Result<Child> {
    std::fs::create_dir_all(dir)?;
    let log = dir.join("log");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--dir",
        &dir.display().to_string(),
        "--cluster-config-file",
        "nodes.conf",
        "--appendonly",
        "no",
        "--save",
        "",
        "--logfile",
        &log.display().to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::from(stderr))
    // Its own process group: a Ctrl-C on the terminal reaches only this launcher, which
    // then stops the nodes in order.
    .process_group(0);
    // SAFETY: prctl is async-signal-safe; it makes the node get SIGTERM should this launcher
    // die without cleaning up (for example, SIGKILL).
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.spawn()
}

fn answers_ping(port: u16) -> bool {
    // Any reply, an error included (e.g. LOADING), means the server is up.
    super::conn::Conn::connect("127.0.0.1", port, Duration::from_secs(2))
        .is_ok_and(|mut c| c.call(&["PING"]).is_ok())
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Stops every started node: SIGTERM to each, then waits; SIGKILL for those still running
/// after the grace period.
fn stop_all(nodes: &mut Vec<Started>, out: &Out) {
    if nodes.is_empty() {
        return;
    }
    out.info(&format!(">>> Stopping {} node(s)...", nodes.len()));
    for n in nodes.iter_mut() {
        if let Ok(None) = n.child.try_wait() {
            // SAFETY: plain kill(2) on the pid of our own, not yet reaped, child.
            unsafe {
                libc::kill(n.child.id() as libc::pid_t, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        let mut running = 0;
        for n in nodes.iter_mut() {
            if let Ok(None) = n.child.try_wait() {
                running += 1;
            }
        }
        if running == 0 {
            break;
        }
        if Instant::now() >= deadline {
            for n in nodes.iter_mut() {
                if let Ok(None) = n.child.try_wait() {
                    out.warn(&format!(
                        "Node on port {} did not exit after SIGTERM; killing it.",
                        n.port
                    ));
                    let _ = n.child.kill();
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for n in nodes.iter_mut() {
        let _ = n.child.wait();
    }
    nodes.clear();
    out.ok("[OK] All nodes stopped.");
}

/// Whether a node already carries cluster state (keys or other known nodes), as after an
/// earlier `cluster start` in the same directory.
fn node_is_formed(port: u16, auth: &Auth, out: &Out) -> Option<bool> {
    let mut conn = cluster::connect("127.0.0.1", port, auth, out)?;
    let known = conn.call_text(&["CLUSTER", "INFO"]).and_then(|info| {
        info.lines()
            .find_map(|l| l.strip_prefix("cluster_known_nodes:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| "no cluster_known_nodes in CLUSTER INFO".to_string())
    });
    match known {
        Ok(n) => Some(n > 1),
        Err(e) => {
            out.err(&format!("Node 127.0.0.1:{port} replied with error:\n{e}"));
            None
        }
    }
}

/// Whether the node on `port` reports `cluster_state:ok` (quietly false when unreachable).
fn cluster_ok(port: u16, auth: &Auth) -> bool {
    let Ok(mut conn) = super::conn::Conn::connect("127.0.0.1", port, Duration::from_secs(2)) else {
        return false;
    };
    if let Some(pass) = &auth.password {
        let mut cmd = vec!["AUTH".to_string()];
        cmd.extend(auth.user.clone());
        cmd.push(pass.clone());
        if conn.call_text(&cmd).is_err() {
            return false;
        }
    }
    conn.call_text(&["CLUSTER", "INFO"])
        .is_ok_and(|t| t.lines().any(|l| l.trim() == "cluster_state:ok"))
}

pub fn start_command(args: &[String], auth: &Auth, out: &Out) -> i32 {
    let opts = match parse_options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("[ERR] {e}");
            eprintln!(
                "Usage: ferrodis-cli cluster start [--masters 3] [--replicas 0] [--port 7000] \
                 [--dir DIR] [--bin PATH]"
            );
            return 1;
        }
    };
    let Some(bin) = opts.bin.clone().or_else(default_bin) else {
        eprintln!("[ERR] No ferrodis binary next to ferrodis-cli; pass --bin PATH.");
        return 1;
    };
    install_signal_handlers();
    let mut started: Vec<Started> = Vec::new();
    let code = run(&opts, &bin, auth, out, &mut started);
    stop_all(&mut started, out);
    code
}

fn run(opts: &StartOptions, bin: &Path, auth: &Auth, out: &Out, started: &mut Vec<Started>) -> i32 {
    let total = opts.masters * (opts.replicas + 1);
    let ports: Vec<u16> = (0..total).map(|i| opts.port + i as u16).collect();
    out.info(&format!(
        ">>> Starting {total} node(s) ({} masters, {} replica(s) each) from {} in {}",
        opts.masters,
        opts.replicas,
        bin.display(),
        opts.dir.display()
    ));
    for &port in &ports {
        if stop_requested() {
            return 1;
        }
        for p in [port, port + 10000] {
            if port_busy(p) {
                out.err(&format!(
                    "[ERR] Port {p} on 127.0.0.1 is busy{}.",
                    if p == port { "" } else { " (cluster bus port)" }
                ));
                return 1;
            }
        }
        let dir = opts.dir.join(port.to_string());
        let child = match spawn_node(bin, port, &dir) {
            Ok(c) => c,
            Err(e) => {
                out.err(&format!("[ERR] Could not start {}: {e}", bin.display()));
                return 1;
            }
        };
        out.plain(&format!(
            "Started node on port {port} (pid {}), log in {}",
            child.id(),
            dir.join("log").display()
        ));
        started.push(Started { port, child, dir });
    }
    // Wait until every node answers.
    for n in started.iter_mut() {
        let deadline = Instant::now() + UP_TIMEOUT;
        loop {
            if stop_requested() {
                return 1;
            }
            if let Ok(Some(status)) = n.child.try_wait() {
                out.err(&format!(
                    "[ERR] Node on port {} exited ({status}). Last log lines:\n{}",
                    n.port,
                    log_tail(&n.dir)
                ));
                return 1;
            }
            if answers_ping(n.port) {
                break;
            }
            if Instant::now() >= deadline {
                out.err(&format!(
                    "[ERR] Node on port {} did not answer PING within {} s. Last log lines:\n{}",
                    n.port,
                    UP_TIMEOUT.as_secs(),
                    log_tail(&n.dir)
                ));
                return 1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let mut formed = Vec::new();
    for &p in &ports {
        match node_is_formed(p, auth, out) {
            Some(f) => formed.push(f),
            None => return 1,
        }
    }
    if formed.iter().all(|&f| f) {
        out.info(">>> The nodes kept their cluster configuration from an earlier run.");
    } else if formed.iter().any(|&f| f) {
        out.err(&format!(
            "[ERR] Some nodes in {} already belong to a cluster and some do not; remove the \
             directory to start afresh.",
            opts.dir.display()
        ));
        return 1;
    } else {
        let addrs: Vec<(String, u16)> = ports.iter().map(|&p| ("127.0.0.1".into(), p)).collect();
        match cluster::create_cluster(&addrs, opts.replicas, true, auth, out, &stop_requested) {
            CreateOutcome::Formed { replicate_errors } => {
                if replicate_errors > 0 {
                    out.warn(&format!(
                        "[WARNING] {replicate_errors} replica(s) could not be attached; they \
                         run as masters without slots."
                    ));
                }
            }
            CreateOutcome::Declined | CreateOutcome::Failed => return 1,
        }
    }

    // Each node declares the cluster up on its own schedule after the join.
    let deadline = Instant::now() + STATE_OK_TIMEOUT;
    for &port in &ports {
        while !cluster_ok(port, auth) {
            if stop_requested() {
                return 1;
            }
            if Instant::now() >= deadline {
                out.err(&format!(
                    "[ERR] Node 127.0.0.1:{port} did not reach cluster_state:ok within {} s.",
                    STATE_OK_TIMEOUT.as_secs()
                ));
                return 1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    out.ok(&format!(
        "[OK] Cluster ready on 127.0.0.1 ports {}-{}.",
        ports[0],
        ports[ports.len() - 1]
    ));
    out.plain(&format!(
        "Connect with: redis-cli -c -p {}\nPress Ctrl-C to stop the cluster.",
        ports[0]
    ));
    while !stop_requested() {
        for n in started.iter_mut() {
            if let Ok(Some(status)) = n.child.try_wait() {
                out.warn(&format!(
                    "[WARNING] Node on port {} exited ({status}).",
                    n.port
                ));
            }
        }
        started.retain_mut(|n| !matches!(n.child.try_wait(), Ok(Some(_))));
        std::thread::sleep(Duration::from_millis(100));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options() {
        let o = parse_options(&[]).unwrap();
        assert_eq!((o.masters, o.replicas, o.port), (3, 0, 7000));
        let o = parse_options(&args(
            "--masters 4 --replicas 1 --port 30000 --dir /tmp/x --bin /b",
        ))
        .unwrap();
        assert_eq!((o.masters, o.replicas, o.port), (4, 1, 30000));
        assert_eq!(o.dir, PathBuf::from("/tmp/x"));
        assert_eq!(o.bin, Some(PathBuf::from("/b")));
        assert!(parse_options(&args("--masters 2")).is_err());
        assert!(parse_options(&args("--port 60000")).is_err());
        assert!(parse_options(&args("--masters")).is_err());
        assert!(parse_options(&args("--bogus 1")).is_err());
    }
}

//! The CLUSTER views of a six-master cluster formed by `redis-cli --cluster create`, once with
//! six ferrodis nodes and once with six redis-server 7.0.15 nodes: CLUSTER NODES, SLOTS,
//! SHARDS and INFO (and LINKS) must have the same structure, fields, order and RESP types in
//! RESP2 and RESP3 once ids, ports, timestamps and message counters are normalised and the
//! entries whose order follows Redis's hash table (NODES lines, SHARDS, LINKS) are sorted.
//! Skipped with a note when redis-server or redis-cli is not installed. Ports come from
//! `support::free_ports`; every process is killed by its pid on drop.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{find_redis_server, free_ports, wait_until};

/// Node processes killed (by pid, through their handles) when dropped, also on failure.
struct Nodes {
    children: Vec<Child>,
    base: u16,
    dir: PathBuf,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nodes(program: &Path, n: u16, extra: &[&str]) -> Nodes {
    start_mixed(&vec![(program, extra); n as usize])
}

/// One node per entry (program, extra arguments) on consecutive ports.
fn start_mixed(specs: &[(&Path, &[&str])]) -> Nodes {
    let n = specs.len() as u16;
    let base = free_ports(n);
    let dir = std::env::temp_dir().join(format!("ferrodis-views-{}-{base}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes = Nodes {
        children: Vec::new(),
        base,
        dir: dir.clone(),
    };
    for (i, (program, extra)) in specs.iter().enumerate() {
        let port = base + i as u16;
        let d = dir.join(port.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let child = Command::new(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--cluster-enabled", "yes"])
            .args(["--dir", &d.display().to_string()])
            .args(["--logfile", &d.join("log.txt").display().to_string()])
            .args(*extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn a node");
        nodes.children.push(child);
    }
    for i in 0..n {
        let up = wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", base + i)).is_ok()
        });
        if !up {
            let log = dir.join((base + i).to_string()).join("log.txt");
            let exit = nodes.children[i as usize].try_wait();
            panic!(
                "{} never listened on {} (exit: {exit:?}); its log:\n{}",
                specs[i as usize].0.display(),
                base + i,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    }
    nodes
}

/// `redis-cli --cluster create` over the nodes (no replicas), then waits for every node to
/// report cluster_state:ok and know all the others.
fn create_cluster(nodes: &Nodes, n: u16) {
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend((0..n).map(|i| format!("127.0.0.1:{}", nodes.base + i)));
    args.push("--cluster-yes".into());
    let out = Command::new("redis-cli")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("[OK] All 16384 slots covered."),
        "redis-cli --cluster create failed:\n{text}"
    );
    for i in 0..n {
        let mut c = Resp::connect(nodes.base + i, 2);
        let ok = wait_until(Duration::from_secs(30), || {
            let info = c.call(&["cluster", "info"]).text();
            info.contains("cluster_state:ok")
                && info.contains(&format!("cluster_known_nodes:{n}\r\n"))
        });
        assert!(ok, "node {} never became ok", nodes.base + i);
    }
}

// ---- a small RESP2/RESP3 client keeping the reply's types ----

#[derive(Debug, Clone)]
enum Value {
    /// A one-line reply: its type byte and text (`+`, `-`, `:`, `_`, `,`, `#`, `(`).
    Line(u8, String),
    /// `$` or `=` (a verbatim string keeps its `txt:` prefix).
    Blob(u8, String),
    /// `*`, `~`, `>`: elements; `%`: keys and values alternating.
    Aggregate(u8, Vec<Value>),
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Line(_, s) | Value::Blob(_, s) => s.clone(),
            Value::Aggregate(..) => String::new(),
        }
    }

    /// Types and contents, lengths left out (normalised texts change them).
    fn render(&self, out: &mut String) {
        match self {
            Value::Line(t, s) | Value::Blob(t, s) => {
                out.push(*t as char);
                out.push_str(&format!("{s:?} "));
            }
            Value::Aggregate(t, items) => {
                out.push(*t as char);
                out.push('[');
                for i in items {
                    i.render(out);
                }
                out.push_str("] ");
            }
        }
    }

    /// Applies `f` to every string (a verbatim string's text without its `txt:`).
    fn map_strings(&mut self, f: &dyn Fn(&str) -> String) {
        match self {
            Value::Blob(b'=', s) => *s = format!("{}{}", &s[..4], f(&s[4..])),
            Value::Line(_, s) | Value::Blob(_, s) => *s = f(s),
            Value::Aggregate(_, items) => items.iter_mut().for_each(|i| i.map_strings(f)),
        }
    }
}

struct Resp {
    reader: BufReader<TcpStream>,
}

impl Resp {
    fn connect(port: u16, protocol: u8) -> Resp {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = Resp {
            reader: BufReader::new(s),
        };
        if protocol == 3 {
            r.call(&["hello", "3"]);
        }
        r
    }

    fn call(&mut self, args: &[&str]) -> Value {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.reader.get_mut().write_all(&req).unwrap();
        self.read()
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "truncated reply {line:?}");
        let t = line.as_bytes()[0];
        let rest = line[1..line.len() - 2].to_string();
        match t {
            b'$' | b'=' if rest != "-1" => {
                let mut body = vec![0u8; rest.parse::<usize>().unwrap() + 2];
                self.reader.read_exact(&mut body).unwrap();
                body.truncate(body.len() - 2);
                Value::Blob(t, String::from_utf8_lossy(&body).into_owned())
            }
            b'*' | b'~' | b'>' | b'%' if rest != "-1" => {
                let n = rest.parse::<usize>().unwrap() * if t == b'%' { 2 } else { 1 };
                Value::Aggregate(t, (0..n).map(|_| self.read()).collect())
            }
            b'|' => {
                let n = rest.parse::<usize>().unwrap() * 2;
                (0..n).for_each(|_| {
                    self.read();
                });
                self.read()
            }
            _ => Value::Line(t, rest),
        }
    }
}

/// One cluster's views, normalised: ids and ports become the node's index, NODES
/// timestamps and INFO message counters placeholders, hash-ordered entries sorted.
struct Normaliser {
    ids: Vec<(String, usize)>,
    base: u16,
    n: u16,
}

impl Normaliser {
    fn new(base: u16, n: u16) -> Normaliser {
        let ids = (0..n)
            .map(|i| {
                let mut c = Resp::connect(base + i, 2);
                (c.call(&["cluster", "myid"]).text(), i as usize)
            })
            .collect();
        Normaliser { ids, base, n }
    }

    fn names(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (id, i) in &self.ids {
            s = s.replace(id.as_str(), &format!("<ID{i}>"));
        }
        for i in 0..self.n {
            s = s
                .replace(&(self.base + i + 10000).to_string(), &format!("<CPORT{i}>"))
                .replace(&(self.base + i).to_string(), &format!("<PORT{i}>"));
        }
        s
    }

    fn view(&self, port: u16, protocol: u8, cmd: &str) -> String {
        let args: Vec<&str> = cmd.split(' ').collect();
        let mut v = Resp::connect(port, protocol).call(&args);
        let words: Vec<String> = args.iter().map(|a| a.to_lowercase()).collect();
        match words[1].as_str() {
            "nodes" => v.map_strings(&|s| {
                let mut lines: Vec<String> = s
                    .lines()
                    .map(|l| {
                        let mut f: Vec<String> =
                            self.names(l).split(' ').map(String::from).collect();
                        if f.len() > 5 {
                            // ping-sent, pong-recv
                            f[4] = "<T>".into();
                            f[5] = "<T>".into();
                        }
                        f.join(" ")
                    })
                    .collect();
                lines.sort();
                lines.join("\n") + "\n"
            }),
            "info" => v.map_strings(&|s| {
                s.split("\r\n")
                    .map(|l| match l.split_once(':') {
                        Some((k, _)) if k.starts_with("cluster_stats_messages_") => {
                            format!("{k}:<N>")
                        }
                        _ => l.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\r\n")
            }),
            _ => v.map_strings(&|s| self.names(s)),
        }
        if let (Value::Aggregate(_, items), "shards" | "links") = (&mut v, words[1].as_str()) {
            if words[1] == "links" {
                for link in items.iter_mut() {
                    if let Value::Aggregate(_, kv) = link {
                        // create-time
                        kv[5] = Value::Line(b':', "<T>".into());
                    }
                }
            }
            items.sort_by_key(|i| {
                let mut s = String::new();
                i.render(&mut s);
                s
            });
        }
        let mut out = String::new();
        v.render(&mut out);
        out
    }
}

fn tools_installed() -> Option<PathBuf> {
    let server = find_redis_server();
    let cli = Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if server.is_none() || !cli {
        eprintln!("redis-server or redis-cli not installed: comparison skipped");
        return None;
    }
    server
}

const VIEWS: &[&str] = &[
    "cluster nodes",
    "cluster slots",
    "cluster shards",
    "cluster info",
    "cluster links",
    "cluster myshardid",
    "cluster countkeysinslot 0",
    // Served here or redirected, on every node (a stale routing snapshot once answered
    // CLUSTERDOWN here while CLUSTER INFO said ok).
    "get foo",
    "get bar",
    "get hello",
    "get key:7",
];

#[test]
fn six_masters_show_the_same_views_as_redis() {
    let Some(redis) = tools_installed() else {
        return;
    };
    let ours = start_nodes(Path::new(env!("CARGO_BIN_EXE_ferrodis")), 6, &[]);
    let theirs = start_nodes(&redis, 6, &[]);
    create_cluster(&ours, 6);
    create_cluster(&theirs, 6);
    let ours_n = Normaliser::new(ours.base, 6);
    let theirs_n = Normaliser::new(theirs.base, 6);

    let compare = |stage: &str| {
        let mut mismatches = Vec::new();
        for node in 0..6 {
            for protocol in [2, 3] {
                for cmd in VIEWS {
                    // The links settle (both directions up) a moment after the state is ok.
                    let mut a = String::new();
                    let mut b = String::new();
                    let same = wait_until(Duration::from_secs(10), || {
                        a = ours_n.view(ours.base + node, protocol, cmd);
                        b = theirs_n.view(theirs.base + node, protocol, cmd);
                        a == b
                    });
                    if !same {
                        mismatches.push(format!(
                            "{stage}: node {node} RESP{protocol} {cmd}\n  ferrodis: {a}\n  redis:    {b}"
                        ));
                    }
                }
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    };
    compare("formed");

    // A slot in migration shows on both sides of the move.
    for (nodes, n) in [(&ours, &ours_n), (&theirs, &theirs_n)] {
        let id = |i: usize| n.ids[i].0.clone();
        let mut src = Resp::connect(nodes.base, 2);
        let mut dst = Resp::connect(nodes.base + 1, 2);
        let r = src.call(&["cluster", "setslot", "5", "migrating", &id(1)]);
        assert_eq!(r.text(), "OK");
        let r = dst.call(&["cluster", "setslot", "5", "importing", &id(0)]);
        assert_eq!(r.text(), "OK");
    }
    compare("migrating");
}

// ---- ferrodis-cli -c against redis-cli -c ----

const CLI: &str = env!("CARGO_BIN_EXE_ferrodis-cli");

/// Runs a client (output to a pipe: raw formatting), killed by pid if it outlives 10 s;
/// returns stdout and stderr together.
fn run_client(program: &str, args: &[String]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a client");
    let exited = wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    });
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(exited, "{program} {args:?} did not finish");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn words(port: u16, cluster: bool, cmd: &str) -> Vec<String> {
    let mut args = vec!["-p".to_string(), port.to_string()];
    if cluster {
        args.insert(0, "-c".into());
    }
    args.extend(cmd.split(' ').map(String::from));
    args
}

#[test]
fn ferrodis_cli_c_follows_moved_and_ask_as_redis_cli_does() {
    if tools_installed().is_none() {
        return;
    }
    let nodes = start_nodes(Path::new(env!("CARGO_BIN_EXE_ferrodis")), 3, &[]);
    create_cluster(&nodes, 3);
    let ids: Vec<String> = (0..3)
        .map(|i| {
            Resp::connect(nodes.base + i, 2)
                .call(&["cluster", "myid"])
                .text()
        })
        .collect();
    let same = |port: u16, cluster: bool, cmd: &str| {
        let args = words(port, cluster, cmd);
        let ours = run_client(CLI, &args);
        let theirs = run_client("redis-cli", &args);
        assert_eq!(ours, theirs, "ferrodis-cli / redis-cli {args:?}");
        ours
    };
    // Keys of every node asked from every node, redirected or not.
    for from in 0..3 {
        let port = nodes.base + from;
        for key in ["foo", "bar", "hello", "key:7"] {
            same(port, true, &format!("set {key} v{from}"));
            assert_eq!(
                same(port, true, &format!("get {key}")),
                format!("v{from}\n")
            );
            same(port, false, &format!("get {key}"));
        }
    }
    assert!(same(nodes.base, false, "get foo").starts_with("MOVED 12182 "));
    same(nodes.base, true, "mset {x}1 a {x}2 b");
    same(nodes.base, true, "-3 hgetall nohash");
    same(nodes.base, true, "--raw mget foo bar hello");
    same(nodes.base + 1, true, "-n 0 get foo");

    // Slot 1683 ("newkey") moves from node 0 to node 1: a missing key is asked for there.
    let mut src = Resp::connect(nodes.base, 2);
    let mut dst = Resp::connect(nodes.base + 1, 2);
    assert_eq!(src.call(&["cluster", "keyslot", "newkey"]).text(), "1683");
    dst.call(&["cluster", "setslot", "1683", "importing", &ids[0]]);
    src.call(&["cluster", "setslot", "1683", "migrating", &ids[1]]);
    assert!(same(nodes.base + 2, false, "get newkey").starts_with("MOVED 1683 "));
    assert!(same(nodes.base, false, "get newkey").starts_with("ASK 1683 "));
    assert_eq!(same(nodes.base + 2, true, "get newkey"), "\n");
    assert_eq!(same(nodes.base + 2, true, "set newkey moved"), "OK\n");
    // Written through ASKING on the importing node, not on the source.
    assert_eq!(dst.call(&["asking"]).text(), "OK");
    assert_eq!(dst.call(&["get", "newkey"]).text(), "moved");
    assert!(src.call(&["get", "newkey"]).text().starts_with("ASK 1683 "));

    // Nobody listening: the same message.
    let closed = free_ports(1);
    assert_eq!(
        same(closed, true, "ping"),
        format!("Could not connect to Redis at 127.0.0.1:{closed}: Connection refused\n")
    );

    // Node 0 still migrates the slot to node 1, which no longer imports it: ASK and MOVED
    // chase each other. -c stops after a bounded number of hops and prints the last
    // redirection (redis-cli would loop for ever).
    dst.call(&["cluster", "setslot", "1683", "stable"]);
    let out = run_client(CLI, &words(nodes.base, true, "get otherkey{newkey}"));
    assert!(
        out.starts_with("ASK 1683 ") || out.starts_with("MOVED 1683 "),
        "{out}"
    );
}

// ---- Valkey 8's client-facing addresses ----

fn moved_target(port: u16, key: &str) -> String {
    let reply = Resp::connect(port, 2).call(&["get", key]);
    let text = reply.text();
    assert!(text.starts_with("MOVED "), "GET {key} on {port}: {reply:?}");
    text.rsplit(' ').next().unwrap().to_string()
}

#[test]
fn redirects_name_the_announced_client_ipv4_while_the_bus_stays_internal() {
    let ferrodis = Path::new(env!("CARGO_BIN_EXE_ferrodis"));
    let redis = find_redis_server();
    if redis.is_none() {
        eprintln!("no redis-server: the mixed part is skipped");
    }
    // A announces 127.0.0.5 to clients; B is plain; C (when installed) is redis-server 7.0,
    // which must keep working with the unknown extension type in A's pings.
    let client_ip: &[&str] = &["--cluster-announce-client-ipv4", "127.0.0.5"];
    let mut specs: Vec<(&Path, &[&str])> = vec![(ferrodis, client_ip), (ferrodis, &[])];
    if let Some(r) = redis.as_deref() {
        specs.push((r, &[]));
    }
    let nodes = start_mixed(&specs);
    let n = specs.len() as u16;
    let (a, b) = (nodes.base, nodes.base + 1);
    let mut c = Resp::connect(a, 2);
    for i in 1..n {
        let port = (nodes.base + i).to_string();
        assert_eq!(
            c.call(&["cluster", "meet", "127.0.0.1", &port]).text(),
            "OK"
        );
    }
    let ranges: &[(&str, &str)] = if n == 3 {
        &[("0", "5460"), ("5461", "10922"), ("10923", "16383")]
    } else {
        &[("0", "8191"), ("8192", "16383")]
    };
    for (i, (start, end)) in ranges.iter().enumerate() {
        let mut node = Resp::connect(nodes.base + i as u16, 2);
        assert_eq!(
            node.call(&["cluster", "addslotsrange", start, end]).text(),
            "OK"
        );
    }
    // "hello" hashes to slot 866, A's.
    let a_addr = |ip: &str| format!("{ip}:{a}");
    let all_ok = || {
        (0..n).all(|i| {
            let info = Resp::connect(nodes.base + i, 2)
                .call(&["cluster", "info"])
                .text();
            info.contains("cluster_state:ok") && info.contains(&format!("cluster_known_nodes:{n}"))
        })
    };
    let settled = wait_until(Duration::from_secs(30), || {
        all_ok() && moved_target(b, "hello") == a_addr("127.0.0.5")
    });
    let nodes_of_b = Resp::connect(b, 2).call(&["cluster", "nodes"]).text();
    assert!(
        settled,
        "B never redirected to 127.0.0.5; B sees:\n{nodes_of_b}"
    );
    // B reaches A on the bus at 127.0.0.1 (the links are up), and keeps both addresses.
    let a_line = nodes_of_b
        .lines()
        .find(|l| l.contains(&format!(":{a}@")))
        .unwrap();
    assert!(
        a_line.contains(" 127.0.0.5:") && a_line.contains(" connected"),
        "{a_line}"
    );
    let conf = std::fs::read_to_string(nodes.dir.join(b.to_string()).join("nodes.conf")).unwrap();
    assert!(
        conf.contains(&format!(
            " 127.0.0.1:{a}@{},,client-ipv4=127.0.0.5 ",
            a + 10000
        )),
        "B's nodes.conf:\n{conf}"
    );
    // A's own views show it too; SLOTS and SHARDS as well.
    let slots = Resp::connect(b, 2).call(&["cluster", "slots"]);
    assert!(format!("{slots:?}").contains("\"127.0.0.5\""), "{slots:?}");
    let shards = Resp::connect(a, 3).call(&["cluster", "shards"]);
    assert!(
        format!("{shards:?}").contains("\"127.0.0.5\""),
        "{shards:?}"
    );

    // CONFIG SET takes effect on the next ping; an empty value falls back to the bus IP.
    let mut admin = Resp::connect(a, 2);
    let bad = admin.call(&["config", "set", "cluster-announce-client-ipv4", "::1"]);
    assert_eq!(
        bad.text(),
        "ERR CONFIG SET failed (possibly related to argument 'cluster-announce-client-ipv4') - Invalid IPv4 address"
    );
    let set = admin.call(&["config", "set", "cluster-announce-client-ipv4", "127.0.0.6"]);
    assert_eq!(set.text(), "OK");
    let moved = wait_until(Duration::from_secs(20), || {
        moved_target(b, "hello") == a_addr("127.0.0.6")
    });
    assert!(moved, "B still redirects to {}", moved_target(b, "hello"));
    admin.call(&["config", "set", "cluster-announce-client-ipv4", ""]);
    let back = wait_until(Duration::from_secs(20), || {
        moved_target(b, "hello") == a_addr("127.0.0.1")
    });
    assert!(back, "B still redirects to {}", moved_target(b, "hello"));

    if n == 3 {
        // redis-server ignored the extension: it redirects to A's bus address, stayed ok
        // and logged the unknown type.
        assert_eq!(moved_target(nodes.base + 2, "hello"), a_addr("127.0.0.1"));
        assert!(all_ok());
        let log =
            std::fs::read_to_string(nodes.dir.join((nodes.base + 2).to_string()).join("log.txt"))
                .unwrap();
        assert!(log.contains("Received unknown extension type 4"), "{log}");
    }
}

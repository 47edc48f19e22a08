//! MIGRATE across processes: between two ferrodis servers (replies, errors, COPY / REPLACE /
//! KEYS / AUTH, the target database, TTLs, the cached connection, the DEL propagated), into and
//! out of a reference redis-server when one is installed, and live resharding of a ferrodis
//! cluster with `redis-cli --cluster` while a client keeps writing and reading through
//! redirections. Every process is killed by its pid when its guard drops.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{find_redis_server, free_port, wait_until, Raw, Server};

fn info_field(raw: &mut Raw, field: &str) -> String {
    let info = raw.text(&["INFO", "stats"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or("")
        .to_string()
}

#[test]
fn migrate_between_two_ferrodis_servers() {
    let src = Server::start(&[]);
    let dst = Server::start(&[]);
    let mut s = Raw::connect(src.port);
    let mut d = Raw::connect(dst.port);
    let port = dst.port.to_string();
    let host = "127.0.0.1";
    // Syntax and argument errors come before anything is looked up.
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k", "0", "10", "bogus"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k", "0", "10", "AUTH"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k", "0", "10", "KEYS", "a"]),
        "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n"
    );
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k", "x", "10"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k", "0", "10"]),
        "+NOKEY\r\n"
    );
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "", "0", "10", "KEYS", "a", "b"]),
        "+NOKEY\r\n"
    );

    s.text(&["SET", "k", "v"]);
    s.text(&["RPUSH", "l", "a", "b", "c"]);
    s.text(&["PEXPIRE", "l", "100000"]);
    s.text(&["HSET", "h", "f", "v"]);
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k", "0", "1000"]),
        "+OK\r\n"
    );
    assert_eq!(s.text(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(d.text(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(info_field(&mut s, "migrate_cached_sockets"), "1");

    // A key the target holds already: its error is passed on, nothing is deleted.
    d.text(&["SET", "h", "other"]);
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "", "0", "1000", "KEYS", "l", "h"]),
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
    );
    // The key the target accepted left the source; the refused one stayed.
    assert_eq!(s.text(&["EXISTS", "l", "h"]), ":1\r\n");
    let ttl: i64 = d.text(&["PTTL", "l"])[1..].trim().parse().unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    assert_eq!(
        d.text(&["LRANGE", "l", "0", "-1"]),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );

    // COPY keeps the source; REPLACE overwrites the target.
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "h", "0", "1000", "COPY", "REPLACE"]),
        "+OK\r\n"
    );
    assert_eq!(s.text(&["EXISTS", "h"]), ":1\r\n");
    assert_eq!(d.text(&["HGET", "h", "f"]), "$1\r\nv\r\n");

    // Another database on the target, then errors the target sends back.
    s.text(&["SET", "k2", "v2"]);
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k2", "5", "1000", "COPY"]),
        "+OK\r\n"
    );
    d.text(&["SELECT", "5"]);
    assert_eq!(d.text(&["GET", "k2"]), "$2\r\nv2\r\n");
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k2", "99", "1000"]),
        "-ERR Target instance replied with error: ERR DB index is out of range\r\n"
    );
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k2", "0", "1000", "AUTH2", "u", "p"]),
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(s.text(&["EXISTS", "k2"]), ":1\r\n");

    // A refused connection fails like Redis's non-blocking connect: on the write.
    let closed = free_port().to_string();
    assert_eq!(
        s.text(&["MIGRATE", host, &closed, "k2", "0", "200"]),
        "-IOERR error or timeout writing to target instance\r\n"
    );
    // A target that went away: the cached connection fails, a new one is refused.
    drop(d);
    drop(dst);
    assert_eq!(
        s.text(&["MIGRATE", host, &port, "k2", "0", "200"]),
        "-IOERR error or timeout writing to target instance\r\n"
    );
    assert_eq!(info_field(&mut s, "migrate_cached_sockets"), "0");
    assert_eq!(s.text(&["EXISTS", "k2"]), ":1\r\n");
}

#[test]
fn migrate_propagates_a_del_of_the_accepted_keys() {
    let src = Server::start(&["--appendonly", "yes"]);
    let dst = Server::start(&[]);
    let mut s = Raw::connect(src.port);
    let mut d = Raw::connect(dst.port);
    let port = dst.port.to_string();
    s.text(&["MSET", "a", "1", "b", "2", "c", "3"]);
    d.text(&["SET", "b", "x"]);
    s.text(&[
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "1000",
        "KEYS",
        "a",
        "b",
        "c",
        "zz",
    ]);
    s.text(&[
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "1000",
        "COPY",
        "KEYS",
        "b",
    ]);
    let dir = src.dir.join("appendonlydir");
    let want = "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nc\r\n";
    let aof = || {
        std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".incr.aof"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>()
    };
    assert!(
        wait_until(Duration::from_secs(10), || aof().contains(want)),
        "{:?}",
        aof()
    );
    assert_eq!(aof().matches("DEL").count(), 1);
    assert_eq!(
        d.text(&["MGET", "a", "b", "c"]),
        "*3\r\n$1\r\n1\r\n$1\r\nx\r\n$1\r\n3\r\n"
    );
}

#[test]
fn migrate_with_a_reference_redis_server_both_ways() {
    let Some(bin) = find_redis_server() else {
        eprintln!("no redis-server found: skipped");
        return;
    };
    let dir = std::env::temp_dir().join(format!("ferrodis-migrate-ref-{}", free_port()));
    let redis = Server::start_program(&bin, dir, &[]);
    let ours = Server::start(&[]);
    let mut r = Raw::connect(redis.port);
    let mut f = Raw::connect(ours.port);
    let fill = |c: &mut Raw| {
        c.text(&["SET", "s", "hello"]);
        c.text(&["RPUSH", "l", "1", "2", "three"]);
        c.text(&["SADD", "set", "x", "y"]);
        c.text(&["HSET", "h", "f", "v"]);
        c.text(&["ZADD", "z", "1.5", "m"]);
        c.text(&["XADD", "x", "1-1", "f", "v"]);
        c.text(&["EXPIRE", "s", "1000"]);
    };
    let keys = ["s", "l", "set", "h", "z", "x"];
    let digests = |c: &mut Raw| -> Vec<String> {
        keys.iter()
            .map(|k| c.text(&["DEBUG", "DIGEST-VALUE", k]))
            .collect()
    };
    let migrate_all = |c: &mut Raw, port: u16| {
        let port = port.to_string();
        let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "2", "1000", "KEYS"];
        args.extend(keys);
        c.text(&args)
    };
    fill(&mut f);
    let ours_before = digests(&mut f);
    assert_eq!(migrate_all(&mut f, redis.port), "+OK\r\n");
    assert_eq!(f.text(&["DBSIZE"]), ":0\r\n");
    r.text(&["SELECT", "2"]);
    assert_eq!(digests(&mut r), ours_before);
    let ttl: i64 = r.text(&["TTL", "s"])[1..].trim().parse().unwrap();
    assert!(ttl > 900 && ttl <= 1000, "{ttl}");
    // And back: redis-server's MIGRATE into ferrodis.
    assert_eq!(migrate_all(&mut r, ours.port), "+OK\r\n");
    f.text(&["SELECT", "2"]);
    assert_eq!(digests(&mut f), ours_before);
    // The same errors from both servers.
    for c in [&mut r, &mut f] {
        c.text(&["SET", "s", "again"]);
    }
    let a = r.text(&[
        "MIGRATE",
        "127.0.0.1",
        &ours.port.to_string(),
        "s",
        "2",
        "1000",
    ]);
    let b = f.text(&[
        "MIGRATE",
        "127.0.0.1",
        &redis.port.to_string(),
        "s",
        "2",
        "1000",
    ]);
    assert_eq!(a, b);
    assert!(a.contains("BUSYKEY"), "{a}");
}

// ---- live resharding ----

fn redis_cli() -> Option<PathBuf> {
    let server = find_redis_server()?;
    let next_to = server.with_file_name("redis-cli");
    [next_to, PathBuf::from("/usr/bin/redis-cli")]
        .into_iter()
        .find(|p| p.is_file())
}

fn run(bin: &Path, args: &[&str]) -> String {
    try_run(bin, args).unwrap_or_else(|text| panic!("redis-cli {args:?} failed:\n{text}"))
}

fn try_run(bin: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    match out.status.success() {
        true => Ok(text),
        false => Err(text),
    }
}

/// Sends one command the way a cluster client does: follows MOVED, sends ASKING before an
/// ASK retry, waits a little on TRYAGAIN.
fn cluster_call(ports: &[u16], start: u16, args: &[&str]) -> String {
    let mut port = start;
    let mut asking = false;
    for _ in 0..200 {
        let mut c = Raw::connect(port);
        if asking {
            assert_eq!(c.text(&["ASKING"]), "+OK\r\n");
        }
        let reply = c.text(args);
        let redirect =
            |r: &str| -> u16 { r.trim_end().rsplit(':').next().unwrap().parse().unwrap() };
        if reply.starts_with("-MOVED ") {
            port = redirect(&reply);
            asking = false;
        } else if reply.starts_with("-ASK ") {
            port = redirect(&reply);
            asking = true;
        } else if reply.starts_with("-TRYAGAIN") || reply.starts_with("-CLUSTERDOWN") {
            std::thread::sleep(Duration::from_millis(20));
            port = ports[0];
            asking = false;
        } else {
            return reply;
        }
    }
    panic!("{args:?}: too many redirections");
}

/// How many slots CLUSTER NODES shows for `id`.
fn slot_count(nodes: &str, id: &str) -> usize {
    let line = nodes
        .lines()
        .find(|l| l.contains(id) && l.contains("myself"))
        .unwrap();
    line.split(' ')
        .skip(8)
        .filter(|r| !r.starts_with('['))
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn resharding_with_redis_cli_loses_no_key() {
    let Some(cli) = redis_cli() else {
        eprintln!("no redis-cli found: skipped");
        return;
    };
    let nodes: Vec<Server> = (0..4)
        .map(|_| Server::start(&["--cluster-enabled", "yes"]))
        .collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let id = |i: usize| {
        let r = Raw::connect(ports[i]).text(&["CLUSTER", "MYID"]);
        r.lines().nth(1).unwrap().to_string()
    };
    run(
        &cli,
        &[
            "--cluster",
            "create",
            &addr(0),
            &addr(1),
            &addr(2),
            "--cluster-yes",
        ],
    );
    let covered = || {
        let out = Command::new(&cli)
            .args(["--cluster", "check", &addr(0)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("All nodes agree") && text.contains("All 16384 slots covered")
    };
    assert!(wait_until(Duration::from_secs(30), covered));

    // A writer that keeps adding keys and reading earlier ones back through redirections.
    const KEYS: usize = 1500;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let ports = ports.clone();
        std::thread::spawn(move || {
            let (mut written, mut reads) = (0, 0usize);
            while written < KEYS || !stop.load(Ordering::Relaxed) {
                if written < KEYS {
                    let k = format!("key:{written}");
                    let v = written.to_string();
                    assert_eq!(cluster_call(&ports, ports[0], &["SET", &k, &v]), "+OK\r\n");
                    written += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
                reads += 1;
                let j = (reads * 7919) % written;
                let want = format!("${}\r\n{j}\r\n", j.to_string().len());
                let got = cluster_call(&ports, ports[0], &["GET", &format!("key:{j}")]);
                assert_eq!(got, want, "key:{j}");
            }
            written
        })
    };
    // Some keys first, so that the slots moved hold some.
    let some = || Raw::connect(ports[0]).text(&["DBSIZE"]) != ":0\r\n";
    assert!(wait_until(Duration::from_secs(30), some));

    let slots = "1000";
    run(
        &cli,
        &[
            "--cluster",
            "reshard",
            &addr(0),
            "--cluster-from",
            &id(0),
            "--cluster-to",
            &id(1),
            "--cluster-slots",
            slots,
            "--cluster-yes",
        ],
    );
    run(&cli, &["--cluster", "add-node", &addr(3), &addr(0)]);
    let new_id = id(3);
    // As with Redis, the new node must be known everywhere and see the cluster up first.
    let known = || {
        (0..3).all(|i| {
            Raw::connect(ports[i])
                .text(&["CLUSTER", "NODES"])
                .contains(&new_id)
        }) && Raw::connect(ports[3])
            .text(&["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
    };
    assert!(wait_until(Duration::from_secs(30), known));
    let out = try_run(
        &cli,
        &[
            "--cluster",
            "rebalance",
            &addr(0),
            "--cluster-use-empty-masters",
        ],
    );
    if let Err(text) = out {
        let logs: Vec<String> = nodes.iter().map(|n| n.log()).collect();
        panic!(
            "rebalance failed:\n{text}\nlogs:\n{}",
            logs.join("\n-----\n")
        );
    }
    let held = slot_count(&Raw::connect(ports[3]).text(&["CLUSTER", "NODES"]), &new_id);
    assert!(held > 0);
    run(
        &cli,
        &[
            "--cluster",
            "reshard",
            &addr(0),
            "--cluster-from",
            &new_id,
            "--cluster-to",
            &id(2),
            "--cluster-slots",
            &held.to_string(),
            "--cluster-yes",
        ],
    );
    run(&cli, &["--cluster", "del-node", &addr(0), &new_id]);
    stop.store(true, Ordering::Relaxed);
    let written = writer
        .join()
        .expect("the writer saw every reply it expected");
    assert_eq!(written, KEYS);

    for j in 0..KEYS {
        let want = format!("${}\r\n{j}\r\n", j.to_string().len());
        assert_eq!(
            cluster_call(&ports, ports[0], &["GET", &format!("key:{j}")]),
            want
        );
    }
    let total: usize = (0..3)
        .map(|i| {
            let r = Raw::connect(ports[i]).text(&["DBSIZE"]);
            r[1..].trim().parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(total, KEYS);
    assert!(wait_until(Duration::from_secs(30), covered));
}

/// A target that reads MIGRATE's request and answers only when told (or never).
fn slow_target() -> (u16, std::sync::mpsc::Sender<&'static [u8]>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<&'static [u8]>();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let _ = s.read(&mut buf);
            match rx.try_recv() {
                Ok(reply) => {
                    let _ = s.write_all(reply);
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                Err(_) => {}
            }
        }
    });
    (port, tx)
}

#[test]
fn commands_on_a_key_being_migrated_wait_for_the_migrate() {
    let src = Server::start(&[]);
    let mut s = Raw::connect(src.port);
    s.text(&["SET", "k", "v"]);
    s.text(&["SET", "other", "1"]);
    let (port, answer) = slow_target();
    let migrating = std::thread::spawn({
        let port_s = port.to_string();
        let src_port = src.port;
        move || Raw::connect(src_port).text(&["MIGRATE", "127.0.0.1", &port_s, "k", "0", "10000"])
    });
    // While the target has not answered: other keys are served, `k` waits.
    let mut c = Raw::connect(src.port);
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut c, "migrate_cached_sockets") == "1"
    }));
    assert_eq!(c.text(&["INCR", "other"]), ":2\r\n");
    // APPEND on `k` gets no reply while the target has not answered.
    let mut w = TcpStream::connect(("127.0.0.1", src.port)).unwrap();
    w.write_all(b"*3\r\n$6\r\nAPPEND\r\n$1\r\nk\r\n$1\r\nx\r\n")
        .unwrap();
    w.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        w.read(&mut buf).is_err(),
        "APPEND ran while k was being sent"
    );
    // SELECT's reply, then RESTORE's.
    answer.send(b"+OK\r\n+OK\r\n").unwrap();
    assert_eq!(migrating.join().unwrap(), "+OK\r\n");
    // The key was deleted after the target took it: APPEND then created a new one.
    w.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let n = w.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b":1\r\n");
    assert_eq!(c.text(&["GET", "k"]), "$1\r\nx\r\n");
}

#[test]
fn a_target_that_never_answers_times_out() {
    let src = Server::start(&[]);
    let mut s = Raw::connect(src.port);
    s.text(&["SET", "k", "v"]);
    let (port, _answer) = slow_target();
    assert_eq!(
        s.text(&["MIGRATE", "127.0.0.1", &port.to_string(), "k", "0", "300"]),
        "-IOERR error or timeout reading to target instance\r\n"
    );
    assert_eq!(s.text(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(info_field(&mut s, "migrate_cached_sockets"), "0");
    // Inside MULTI the exchange happens in place, with the same outcome.
    s.text(&["MULTI"]);
    s.text(&["MIGRATE", "127.0.0.1", &port.to_string(), "k", "0", "300"]);
    let exec = s.text(&["EXEC"]);
    assert!(exec.starts_with("*1\r\n-IOERR error or timeout"), "{exec}");
}

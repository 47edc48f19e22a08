//! The primary side of replication, end to end: SYNC hands out an RDB payload and then the
//! command stream with Redis's rewrites (absolute expiry times, results instead of random or
//! floating-point work, MULTI/EXEC around multi-command effects); and a real redis-server
//! 7.0.15 started as our replica loads the snapshot and follows the stream.

mod support;

use redis::Commands;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{find_redis_server, free_port, wait_until, Server};

/// Reads one RESP line (without CRLF).
fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        s.read_exact(&mut b).expect("stream closed");
        line.push(b[0]);
    }
    line.truncate(line.len() - 2);
    String::from_utf8_lossy(&line).into_owned()
}

/// Reads one command of the replication stream as words.
fn read_command(s: &mut TcpStream) -> Vec<String> {
    let head = read_line(s);
    let n: usize = head
        .strip_prefix('*')
        .unwrap_or_else(|| panic!("not a multibulk: {head:?}"))
        .parse()
        .unwrap();
    (0..n)
        .map(|_| {
            let len: usize = read_line(s)[1..].parse().unwrap();
            let mut buf = vec![0u8; len + 2];
            s.read_exact(&mut buf).unwrap();
            buf.truncate(len);
            String::from_utf8(buf).unwrap()
        })
        .collect()
}

/// Sends SYNC and consumes the RDB payload; returns the socket positioned at the stream.
fn attach(server: &Server) -> (TcpStream, Vec<u8>) {
    let mut s = server.raw();
    s.write_all(b"SYNC\r\n").unwrap();
    let head = read_line(&mut s);
    let len: usize = head
        .strip_prefix('$')
        .unwrap_or_else(|| panic!("SYNC replied {head:?}"))
        .parse()
        .unwrap();
    let mut rdb = vec![0u8; len];
    s.read_exact(&mut rdb).unwrap();
    (s, rdb)
}

#[test]
fn sync_streams_writes_with_redis_rewrites() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.set("before", "1").unwrap();
    let (mut stream, rdb) = attach(&server);
    assert!(rdb.starts_with(b"REDIS0010"), "{:?}", &rdb[..9]);
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: f64 = c.incr("f", 1.5).unwrap();
    let _: () = redis::cmd("EXPIRE").arg("k").arg(50).query(&mut c).unwrap();
    let _: () = c.get("missing").unwrap(); // reads and misses are not propagated
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: i64 = c.sadd("s", &["a", "b"]).unwrap();
    let _: Vec<String> = redis::cmd("SPOP").arg("s").arg(1).query(&mut c).unwrap();
    let _: i64 = c.del("s").unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();

    let mut expect = |pattern: &[&str]| {
        let got = read_command(&mut stream);
        let matches = got.len() == pattern.len()
            && got
                .iter()
                .zip(pattern)
                .all(|(g, p)| *p == "*" || g.eq_ignore_ascii_case(p));
        assert!(matches, "expected {pattern:?}, got {got:?}");
        got
    };
    expect(&["SELECT", "0"]);
    let set = expect(&["SET", "k", "v", "PXAT", "*"]);
    let at: u64 = set[4].parse().unwrap();
    expect(&["SET", "f", "1.5", "KEEPTTL"]);
    let pexpireat = expect(&["PEXPIREAT", "k", "*"]);
    assert!(pexpireat[2].parse::<u64>().unwrap() < at);
    expect(&["SELECT", "3"]);
    expect(&["sadd", "s", "a", "b"]);
    expect(&["SREM", "s", "*"]);
    expect(&["del", "s"]);
    expect(&["flushall"]);
}

#[test]
fn replconf_checks_its_options() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let ok: String = redis::cmd("REPLCONF")
        .arg("listening-port")
        .arg(6380)
        .arg("capa")
        .arg("eof")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let err = redis::cmd("REPLCONF")
        .arg("nonsense")
        .arg(1)
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Unrecognized REPLCONF option: nonsense"),
        "{err}"
    );
    let err = redis::cmd("REPLCONF")
        .arg("capa")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
}

/// A redis-server child, killed by its pid when dropped.
struct Reference {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn redis_server_replicates_from_ferrodis() {
    let Some(redis_server) = find_redis_server() else {
        println!("SKIPPED: redis-server not installed");
        return;
    };
    let primary = Server::start(&[]);
    let mut c = primary.client();
    let _: () = c.set("str", "hello").unwrap();
    let _: () = c.set("int", 12345).unwrap();
    let _: () = c.set("long", "x".repeat(300)).unwrap();
    let _: () = c.rpush("list", &["a", "b", "c"]).unwrap();
    let _: () = c.sadd("set", &["1", "2", "x"]).unwrap();
    let _: () = c.set_ex("ttl", "v", 1000).unwrap();
    let _: () = redis::cmd("SELECT").arg(2).query(&mut c).unwrap();
    let _: () = c.set("in-db-2", "yes").unwrap();

    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ferrodis-replica-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(redis_server)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir", &dir.display().to_string()])
        .args(["--replicaof", "127.0.0.1", &primary.port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let replica = Reference { child, port, dir };
    let mut r = {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", replica.port)).unwrap();
        let mut conn = None;
        assert!(
            wait_until(Duration::from_secs(10), || {
                conn = client.get_connection().ok();
                conn.is_some()
            }),
            "redis-server replica did not start"
        );
        conn.unwrap()
    };
    let synced = wait_until(Duration::from_secs(20), || {
        let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
        info.contains("master_link_status:up")
    });
    assert!(synced, "replica never finished the full sync");
    let got: String = r.get("str").unwrap();
    assert_eq!(got, "hello");
    let got: i64 = r.get("int").unwrap();
    assert_eq!(got, 12345);
    let got: String = r.get("long").unwrap();
    assert_eq!(got.len(), 300);
    let got: Vec<String> = r.lrange("list", 0, -1).unwrap();
    assert_eq!(got, ["a", "b", "c"]);
    let mut got: Vec<String> = r.smembers("set").unwrap();
    got.sort();
    assert_eq!(got, ["1", "2", "x"]);
    let ttl: i64 = r.ttl("ttl").unwrap();
    assert!((1..=1000).contains(&ttl), "ttl {ttl}");

    // Then the stream: writes in two databases, a rewrite, a deletion.
    let _: () = c.set("after", "sync").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    let _: f64 = c.incr("float", 2.5).unwrap();
    let _: () = c.lpush("list", "z").unwrap();
    let _: i64 = c.del("str").unwrap();
    let followed = wait_until(Duration::from_secs(10), || {
        r.exists::<_, bool>("float").unwrap() && !r.exists::<_, bool>("str").unwrap()
    });
    assert!(followed, "replica did not apply the stream");
    let got: String = r.get("float").unwrap();
    assert_eq!(got, "2.5");
    let got: Vec<String> = r.lrange("list", 0, -1).unwrap();
    assert_eq!(got, ["z", "a", "b", "c"]);
    let _: () = redis::cmd("SELECT").arg(2).query(&mut r).unwrap();
    let got: String = r.get("after").unwrap();
    assert_eq!(got, "sync");
    let got: String = r.get("in-db-2").unwrap();
    assert_eq!(got, "yes");

    let info: String = redis::cmd("INFO").arg("replication").query(&mut c).unwrap();
    assert!(info.contains("connected_slaves:1"), "{info}");
    assert!(
        info.contains(&format!("slave0:ip=127.0.0.1,port={port},state=online")),
        "{info}"
    );
}

fn info_field(c: &mut redis::Connection, name: &str) -> String {
    let info: String = redis::cmd("INFO").arg("replication").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")).map(str::to_string))
        .unwrap_or_default()
}

fn wait_link_up(c: &mut redis::Connection) -> bool {
    wait_until(Duration::from_secs(20), || {
        info_field(c, "master_link_status") == "up"
    })
}

#[test]
fn ferrodis_replicates_from_redis_server() {
    let Some(redis_server) = find_redis_server() else {
        println!("SKIPPED: redis-server not installed");
        return;
    };
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("ferrodis-primary-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(redis_server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--dir", &dir.display().to_string()])
        .args(["--repl-diskless-sync-delay", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let primary = Reference { child, port, dir };
    let mut m = {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", primary.port)).unwrap();
        let mut conn = None;
        assert!(
            wait_until(Duration::from_secs(10), || {
                conn = client.get_connection().ok();
                conn.is_some()
            }),
            "redis-server did not start"
        );
        conn.unwrap()
    };
    // Redis's compact encodings and an LZF-compressed string.
    let _: () = m.set("str", "hello").unwrap();
    let _: () = m.set("long", "ab".repeat(5000)).unwrap();
    let _: () = m.rpush("list", &["a", "b", "7"]).unwrap();
    let _: () = m.sadd("ints", &["1", "2", "300000"]).unwrap();
    let _: () = m.sadd("words", &["x", "y"]).unwrap();
    let _: () = m.hset_multiple("hash", &[("f", "v"), ("n", "12")]).unwrap();
    let _: () = m.zadd_multiple("zset", &[(1.5, "a"), (-2.0, "b")]).unwrap();
    let _: () = m.set_ex("ttl", "v", 1000).unwrap();
    let _: () = redis::cmd("SELECT").arg(4).query(&mut m).unwrap();
    let _: () = m.set("in-db-4", "yes").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut m).unwrap();

    let replica = Server::start(&[]);
    let mut r = replica.client();
    let ok: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port)
        .query(&mut r)
        .unwrap();
    assert_eq!(ok, "OK");
    let again: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(port)
        .query(&mut r)
        .unwrap();
    assert_eq!(again, "OK Already connected to specified master");
    assert!(wait_link_up(&mut r), "{}", replica.log());
    assert_eq!(r.get::<_, String>("str").unwrap(), "hello");
    assert_eq!(r.get::<_, String>("long").unwrap(), "ab".repeat(5000));
    assert_eq!(
        r.lrange::<_, Vec<String>>("list", 0, -1).unwrap(),
        ["a", "b", "7"]
    );
    let mut ints: Vec<i64> = r.smembers("ints").unwrap();
    ints.sort();
    assert_eq!(ints, [1, 2, 300000]);
    assert_eq!(r.scard::<_, i64>("words").unwrap(), 2);
    assert_eq!(r.hget::<_, _, String>("hash", "n").unwrap(), "12");
    assert_eq!(r.zscore::<_, _, f64>("zset", "b").unwrap(), -2.0);
    let ttl: i64 = r.ttl("ttl").unwrap();
    assert!((1..=1000).contains(&ttl), "ttl {ttl}");

    // The stream, in two databases; the replica refuses writes of its own.
    let _: () = m.set("after", "sync").unwrap();
    let _: i64 = m.incr("counter", 5).unwrap();
    let _: () = redis::cmd("SELECT").arg(4).query(&mut m).unwrap();
    let _: i64 = m.del("in-db-4").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut m).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        r.get::<_, Option<i64>>("counter").unwrap() == Some(5)
    }));
    assert_eq!(r.get::<_, String>("after").unwrap(), "sync");
    let _: () = redis::cmd("SELECT").arg(4).query(&mut r).unwrap();
    assert!(!r.exists::<_, bool>("in-db-4").unwrap());
    let _: () = redis::cmd("SELECT").arg(0).query(&mut r).unwrap();
    let err = r.set::<_, _, ()>("mine", 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("You can't write against a read only replica."),
        "{err}"
    );
    let role: redis::Value = redis::cmd("ROLE").query(&mut r).unwrap();
    assert!(format!("{role:?}").contains("connected"), "{role:?}");
    // Offsets agree once the stream is applied.
    assert!(wait_until(Duration::from_secs(10), || {
        info_field(&mut m, "master_repl_offset") == info_field(&mut r, "master_repl_offset")
    }));
    assert_eq!(
        info_field(&mut m, "master_replid"),
        info_field(&mut r, "master_replid")
    );

    // A dropped link resumes with a partial resynchronisation.
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut m)
        .unwrap();
    let _: i64 = m.incr("counter", 1).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        r.get::<_, Option<i64>>("counter").unwrap() == Some(6)
    }));
    assert!(
        replica
            .log()
            .contains("Successful partial resynchronization with master."),
        "{}",
        replica.log()
    );

    // Promotion keeps the data and accepts writes.
    let ok: String = redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut r)
        .unwrap();
    assert_eq!(ok, "OK");
    let _: () = r.set("mine", 1).unwrap();
    assert_eq!(r.get::<_, String>("after").unwrap(), "sync");
    assert_eq!(info_field(&mut r, "role"), "master");
}

#[test]
fn ferrodis_replicates_from_ferrodis_in_a_chain() {
    let primary = Server::start(&[]);
    let mut p = primary.client();
    let _: () = p.set("before", "1").unwrap();
    let _: () = p.rpush("list", &["a", "b"]).unwrap();
    let _: () = p.set_ex("ttl", "v", 500).unwrap();
    let replica = Server::start(&[]);
    let mut r = replica.client();
    let _: String = redis::cmd("SLAVEOF")
        .arg("127.0.0.1")
        .arg(primary.port)
        .query(&mut r)
        .unwrap();
    assert!(wait_link_up(&mut r), "{}", replica.log());
    assert!(replica
        .log()
        .contains("MASTER <-> REPLICA sync: Finished with success"));
    // A replica of the replica sees the same stream.
    let sub = Server::start(&[]);
    let mut s = sub.client();
    let _: String = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(replica.port)
        .query(&mut s)
        .unwrap();
    assert!(wait_link_up(&mut s), "{}", sub.log());
    let _: () = p.set("after", "2").unwrap();
    let _: () = p.lpush("list", "z").unwrap();
    for c in [&mut r, &mut s] {
        // The last write is the LPUSH: once it arrived, everything before it did.
        assert!(wait_until(Duration::from_secs(10), || {
            c.lrange::<_, Vec<String>>("list", 0, -1).unwrap() == ["z", "a", "b"]
        }));
        assert_eq!(c.get::<_, String>("after").unwrap(), "2");
        assert_eq!(c.get::<_, String>("before").unwrap(), "1");
        assert!(c.ttl::<_, i64>("ttl").unwrap() > 0);
    }
    assert!(wait_until(Duration::from_secs(10), || {
        let want = info_field(&mut p, "master_repl_offset");
        info_field(&mut r, "master_repl_offset") == want
            && info_field(&mut s, "master_repl_offset") == want
    }));
    assert_eq!(
        info_field(&mut s, "master_replid"),
        info_field(&mut p, "master_replid")
    );
    let info: String = redis::cmd("INFO").arg("replication").query(&mut r).unwrap();
    assert!(
        info.contains("role:slave") && info.contains("connected_slaves:1"),
        "{info}"
    );
}

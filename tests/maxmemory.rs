//! maxmemory against the built server: writes past the limit evict keys under an allkeys
//! policy (and only keys with a TTL under a volatile one), noeviction refuses denyoom
//! commands with Redis's OOM error while reads go on, and maxmemory-clients closes the
//! client holding the most buffer memory.

mod support;

use redis::Commands;
use std::io::Write;
use std::time::Duration;
use support::{wait_until, Server};

fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

fn set_limit_above_now(c: &mut redis::Connection, extra: u64) -> u64 {
    let used = info_field(c, "memory", "used_memory");
    let limit = used + extra;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(limit)
        .query(c)
        .unwrap();
    limit
}

#[test]
fn allkeys_lru_keeps_memory_under_the_limit() {
    let server = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let mut c = server.client();
    let limit = set_limit_above_now(&mut c, 512 * 1024);
    let value = "x".repeat(1000);
    for i in 0..5000 {
        let _: () = c.set(format!("key:{i}"), &value).unwrap();
    }
    let used = info_field(&mut c, "memory", "used_memory");
    assert!(used < limit + 64 * 1024, "used {used} > limit {limit}");
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    let dbsize: u64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(evicted > 0);
    assert_eq!(dbsize + evicted, 5000);
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiry_and_spares_plain_keys() {
    let server = Server::start(&["--maxmemory-policy", "volatile-ttl"]);
    let mut c = server.client();
    for i in 0..200 {
        let _: () = c.set(format!("keep:{i}"), "v").unwrap();
    }
    set_limit_above_now(&mut c, 256 * 1024);
    let value = "x".repeat(1000);
    for i in 0..2000 {
        let _: () = redis::cmd("SET")
            .arg(format!("tmp:{i}"))
            .arg(&value)
            .arg("EX")
            .arg(1000 + i)
            .query(&mut c)
            .unwrap();
    }
    for i in 0..200 {
        let exists: bool = c.exists(format!("keep:{i}")).unwrap();
        assert!(exists, "keep:{i} has no TTL and was evicted");
    }
    assert!(info_field(&mut c, "stats", "evicted_keys") > 0);
    let first: bool = c.exists("tmp:0").unwrap();
    let last: bool = c.exists("tmp:1999").unwrap();
    assert!(!first && last, "the nearest expiry goes first");
}

#[test]
fn noeviction_refuses_denyoom_commands_only() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.set("before", "v").unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(1)
        .query(&mut c)
        .unwrap();
    let err = c.set::<_, _, ()>("k", "v").unwrap_err();
    assert_eq!(err.code(), Some("OOM"));
    assert_eq!(
        err.detail(),
        Some("command not allowed when used memory > 'maxmemory'.")
    );
    // Reads and deletions still work.
    let v: String = c.get("before").unwrap();
    assert_eq!(v, "v");
    let n: i64 = c.del("before").unwrap();
    assert_eq!(n, 1);
    // Inside MULTI the queuing itself is refused and EXEC fails.
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let queued = redis::cmd("GET").arg("x").query::<()>(&mut c).unwrap_err();
    assert_eq!(queued.code(), Some("OOM"));
    let exec = redis::cmd("EXEC").query::<()>(&mut c).unwrap_err();
    assert_eq!(exec.code(), Some("EXECABORT"));
}

#[test]
fn maxmemory_clients_closes_the_biggest_client() {
    let server = Server::start(&["--maxmemory-clients", "1mb"]);
    let mut admin = server.client();
    let _: () = redis::cmd("CLIENT")
        .arg("NO-EVICT")
        .arg("on")
        .query(&mut admin)
        .unwrap();
    // A client that sends most of a 3 MB command and stops: its query buffer holds it all.
    let mut hog = server.raw();
    let body = vec![b'x'; 3 << 20];
    // It may be closed while still sending: its writes may fail.
    let header = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", body.len() + 10);
    let _ = hog.write_all(header.as_bytes());
    let _ = hog.write_all(&body);
    let gone = wait_until(Duration::from_secs(10), || {
        info_field(&mut admin, "stats", "evicted_clients") == 1
    });
    assert!(gone, "the client was not evicted");
    assert!(server.log().contains("Evicting client: "));
    let clients = info_field(&mut admin, "clients", "connected_clients");
    assert_eq!(clients, 1);
}

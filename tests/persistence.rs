//! The append-only file against the built server: with `appendfsync always` every
//! acknowledged write survives a SIGKILL and is loaded back on restart, TTLs as absolute
//! times; BGREWRITEAOF replaces the base and incremental files named in the manifest; DEBUG
//! LOADAOF reloads the same dataset; DUMP/RESTORE round-trip between connections.

mod support;

use redis::Commands;
use std::time::Duration;
use support::{wait_until, Server};

fn manifest(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap_or_default()
}

#[test]
fn acknowledged_writes_survive_a_kill_and_a_rewrite() {
    let aof = ["--appendonly", "yes", "--appendfsync", "always"];
    let server = Server::start(&aof);
    let mut c = server.client();
    for i in 0..200 {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    let _: () = c.set_ex("ttl", "v", 1000).unwrap();
    let _: () = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    let rewritten = wait_until(Duration::from_secs(10), || {
        manifest(&server.dir).contains("appendonly.aof.2.base.rdb")
    });
    assert!(
        rewritten,
        "manifest after rewrite: {}",
        manifest(&server.dir)
    );
    let _: () = c.rpush("list", &["a", "b", "c"]).unwrap();
    let _: () = c.del("k0").unwrap();
    let expire_at: i64 = redis::cmd("PEXPIRETIME").arg("ttl").query(&mut c).unwrap();
    let dir = server.kill_keep_dir();

    let server = Server::start_in(dir, &aof);
    let mut c = server.client();
    let keys: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(keys, 201);
    assert_eq!(c.get::<_, Option<i64>>("k0").unwrap(), None);
    assert_eq!(c.get::<_, i64>("k199").unwrap(), 199);
    assert_eq!(
        c.lrange::<_, Vec<String>>("list", 0, -1).unwrap(),
        ["a", "b", "c"]
    );
    let reloaded: i64 = redis::cmd("PEXPIRETIME").arg("ttl").query(&mut c).unwrap();
    assert_eq!(reloaded, expire_at, "TTLs are kept as absolute times");
    let m = manifest(&server.dir);
    assert!(
        m.starts_with("file appendonly.aof.2.base.rdb seq 2 type b\n"),
        "{m}"
    );
}

#[test]
fn debug_loadaof_reloads_what_the_files_hold() {
    let server = Server::start(&["--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut c = server.client();
    let _: () = c.hset("h", "f", "v").unwrap();
    let _: () = c.zadd("z", "m", 2.5).unwrap();
    let before: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    let _: () = redis::cmd("DEBUG").arg("LOADAOF").query(&mut c).unwrap();
    let after: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    assert_eq!(before, after);
    assert_eq!(c.hget::<_, _, String>("h", "f").unwrap(), "v");
}

#[test]
fn dump_and_restore_move_a_value_between_keys() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.sadd("s", &["x", "y", "1"]).unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("s").query(&mut c).unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("copy")
        .arg(0)
        .arg(&payload)
        .query(&mut c)
        .unwrap();
    let mut members: Vec<String> = c.smembers("copy").unwrap();
    members.sort();
    assert_eq!(members, ["1", "x", "y"]);
    let busy: redis::RedisResult<()> = redis::cmd("RESTORE")
        .arg("copy")
        .arg(0)
        .arg(&payload)
        .query(&mut c);
    assert!(busy.unwrap_err().to_string().contains("BUSYKEY"));
}

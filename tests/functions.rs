//! Redis 7.0 functions against the built server: FUNCTION LOAD / FCALL / LIST, libraries kept
//! across a restart by the RDB file and by the AOF (before and after a rewrite), carried to a
//! replica by the full sync and by the stream, and FUNCTION DUMP payloads and RDB files
//! exchanged with a reference `redis-server` in both directions (skipped when none is
//! installed).

mod support;

use std::time::Duration;
use support::{find_redis_server, wait_until, Server};

const LIB: &str = "#!lua name=mylib\n\
redis.register_function('hello', function(keys, args) return 'hi ' .. (args[1] or '') end)\n\
redis.register_function{function_name='setit', callback=function(keys, args) return redis.call('set', keys[1], args[1]) end, description='sets a key'}\n\
redis.register_function{function_name='getit', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}}";

fn load(c: &mut redis::Connection) {
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIB)
        .query(c)
        .unwrap();
    assert_eq!(name, "mylib");
}

fn hello(c: &mut redis::Connection) -> redis::RedisResult<String> {
    redis::cmd("FCALL").arg("hello").arg(0).arg("bob").query(c)
}

fn list(c: &mut redis::Connection) -> redis::Value {
    redis::cmd("FUNCTION").arg("LIST").query(c).unwrap()
}

#[test]
fn load_call_and_the_read_only_rules() {
    let server = Server::start(&[]);
    let mut c = server.client();
    load(&mut c);
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
    // Function names are case insensitive.
    let v: String = redis::cmd("FCALL")
        .arg("HELLO")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "hi ");
    let ok: String = redis::cmd("FCALL")
        .arg("setit")
        .arg(1)
        .arg("k")
        .arg("v")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let got: String = redis::cmd("FCALL_RO")
        .arg("getit")
        .arg(1)
        .arg("k")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, "v");
    let e = redis::cmd("FCALL_RO")
        .arg("setit")
        .arg(1)
        .arg("k")
        .arg("v")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Can not execute a script with write flag using *_ro command."),
        "{e}"
    );
    let e = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIB)
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string().contains("Library 'mylib' already exists"),
        "{e}"
    );
    // FLUSHALL leaves the libraries alone.
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
    let info: String = redis::cmd("INFO").arg("memory").query(&mut c).unwrap();
    assert!(info.contains("number_of_functions:3\r\n"), "{info}");
    assert!(info.contains("number_of_libraries:1\r\n"), "{info}");
}

#[test]
fn libraries_survive_a_restart_through_the_rdb_file() {
    let server = Server::start(&[]);
    let mut c = server.client();
    load(&mut c);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    let before = list(&mut c);
    drop(c);
    let dir = server.kill_keep_dir();
    let server = Server::start_in(dir, &["--enable-debug-command", "yes"]);
    let mut c = server.client();
    assert_eq!(list(&mut c), before);
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
    // DEBUG RELOAD keeps them too.
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
}

#[test]
fn libraries_survive_a_restart_through_the_aof_before_and_after_a_rewrite() {
    let server = Server::start(&["--appendonly", "yes"]);
    let mut c = server.client();
    load(&mut c);
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=gone\nredis.register_function('bye', function() return 1 end)")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("gone")
        .query(&mut c)
        .unwrap();
    drop(c);
    let dir = server.kill_keep_dir();
    let server = Server::start_in(dir, &["--appendonly", "yes"]);
    let mut c = server.client();
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
    let e = redis::cmd("FCALL")
        .arg("bye")
        .arg(0)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("Function not found"), "{e}");
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    let done = wait_until(Duration::from_secs(30), || {
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
        info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrites:1")
    });
    assert!(done, "the AOF rewrite did not finish");
    drop(c);
    let dir = server.kill_keep_dir();
    let server = Server::start_in(dir, &["--appendonly", "yes"]);
    let mut c = server.client();
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
}

#[test]
fn a_replica_gets_libraries_by_full_sync_and_by_the_stream() {
    let primary = Server::start(&[]);
    let mut p = primary.client();
    load(&mut p);
    let replica = Server::start(&[]);
    let mut r = replica.client();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port)
        .query(&mut r)
        .unwrap();
    let synced = wait_until(Duration::from_secs(20), || {
        redis::cmd("FUNCTION")
            .arg("LIST")
            .query::<redis::Value>(&mut r)
            .is_ok_and(|v| v == list(&mut p))
    });
    assert!(synced, "the full sync did not carry the library");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=more\nredis.register_function{function_name='two', callback=function() return 2 end, flags={'no-writes'}}")
        .query(&mut p)
        .unwrap();
    let _: () = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("mylib")
        .query(&mut p)
        .unwrap();
    let streamed = wait_until(Duration::from_secs(20), || {
        redis::cmd("FCALL")
            .arg("two")
            .arg(0)
            .query::<i64>(&mut r)
            .is_ok_and(|v| v == 2)
            && hello(&mut r).is_err()
    });
    assert!(streamed, "FUNCTION LOAD / DELETE were not replicated");
    let e = redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query::<()>(&mut r)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("You can't write against a read only replica"),
        "{e}"
    );
}

#[test]
fn dump_payloads_and_rdb_files_cross_with_redis_server() {
    let Some(redis_bin) = find_redis_server() else {
        eprintln!("no redis-server installed: skipped");
        return;
    };
    let reference = Server::start_program(
        &redis_bin,
        std::env::temp_dir().join(format!("ferrodis-test-fref-{}", std::process::id())),
        &[],
    );
    let ours = Server::start(&[]);
    let (mut a, mut b) = (reference.client(), ours.client());
    load(&mut a);
    // redis-server -> ferrodis
    let payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut a).unwrap();
    let _: () = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query(&mut b)
        .unwrap();
    assert_eq!(hello(&mut b).unwrap(), "hi bob");
    // ferrodis -> redis-server
    let payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut b).unwrap();
    let _: () = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .arg("FLUSH")
        .query(&mut a)
        .unwrap();
    assert_eq!(hello(&mut a).unwrap(), "hi bob");
    let e = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query::<()>(&mut a)
        .unwrap_err();
    let e2 = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&payload)
        .query::<()>(&mut b)
        .unwrap_err();
    assert_eq!(e.to_string(), e2.to_string());
    // An RDB file redis-server wrote, loaded by ferrodis at startup.
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut a).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut a).unwrap();
    drop(a);
    let dir = reference.kill_keep_dir();
    let loaded = Server::start_in(dir.clone(), &[]);
    let mut c = loaded.client();
    assert_eq!(hello(&mut c).unwrap(), "hi bob");
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    // And one ferrodis wrote, loaded by redis-server.
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(c);
    let dir = loaded.kill_keep_dir();
    let reference = Server::start_program(&redis_bin, dir, &[]);
    let mut a = reference.client();
    assert_eq!(hello(&mut a).unwrap(), "hi bob");
}

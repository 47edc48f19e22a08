//! RDB snapshots against the built server: BGSAVE writes a file that Redis's own
//! `redis-check-rdb` accepts and `redis-server` loads to the same DEBUG DIGEST; killing the
//! writer child fails the save the way killing Redis's fork child does and leaves no file;
//! a slow BGSAVE holds the dataset as of the instant it was cut, whatever is written while it
//! runs, and FLUSHALL calls it off as Redis's kills its child; a restart loads the file and
//! refuses a damaged one; `save` points start a BGSAVE when due, SHUTDOWN saves when they are
//! set (and stays up when it cannot), and a failed BGSAVE refuses writes with MISCONF. The
//! reference tools are used when installed and skipped otherwise.

mod support;

use redis::Commands;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{free_port, wait_until, Server};

fn info_field(c: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("persistence").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .to_string()
}

fn wait_for_bgsave(c: &mut redis::Connection) {
    let done = wait_until(Duration::from_secs(30), || {
        info_field(c, "rdb_bgsave_in_progress") == "0"
    });
    assert!(done, "BGSAVE still in progress after 30 s");
}

/// The pids of `pid`'s children, from /proc.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

fn tool(name: &str) -> Option<std::path::PathBuf> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(name))
        .chain(std::iter::once(Path::new("/usr/bin").join(name)))
        .find(|c| c.is_file())
}

/// Reads a dump with the crate's own RDB reader: key to (db, value as the reader built it).
fn load(path: &Path) -> Vec<ferrodis::persistence::rdb::decode::Loaded> {
    use ferrodis::persistence::rdb::decode;
    let bytes = std::fs::read(path).expect("dump file");
    let limits = decode::LoadLimits::from_config(&ferrodis::config::Config::default());
    let mut keys = Vec::new();
    decode::decode(&bytes, limits, 0, |l| keys.push(l)).expect("a valid RDB file");
    keys
}

fn string_of(loaded: &[ferrodis::persistence::rdb::decode::Loaded], key: &str) -> Option<Vec<u8>> {
    use ferrodis::keyspace::Value;
    loaded
        .iter()
        .find(|l| l.db == 0 && l.key == key.as_bytes())
        .map(|l| match &l.value {
            Value::Str(s) => s.to_bytes().to_vec(),
            other => panic!("{key} is not a string: {other:?}"),
        })
}

fn fill(c: &mut redis::Connection) {
    for i in 0..300 {
        let _: () = c.set(format!("str:{i}"), format!("value-{i}")).unwrap();
    }
    let _: () = c.set("int", 12345).unwrap();
    let _: () = c.rpush("list", &["a", "b", "c"]).unwrap();
    let _: () = c.sadd("intset", &[1, 2, 3]).unwrap();
    let _: () = c.sadd("set", &["x", "y", "z"]).unwrap();
    let _: () = c
        .hset_multiple("hash", &[("f1", "v1"), ("f2", "v2")])
        .unwrap();
    let _: () = c
        .zadd_multiple("zset", &[(1.5, "m1"), (2.0, "m2")])
        .unwrap();
    let _: () = c.set_ex("ttl", "expiring", 1000).unwrap();
    let _: () = redis::cmd("XADD")
        .arg("stream")
        .arg("*")
        .arg("f")
        .arg("v")
        .query(c)
        .unwrap();
    // Past the compact encodings: an LZF-compressed string, a list of several quicklist
    // nodes, a hashtable hash, a skiplist sorted set, an intset of 64-bit members, and a
    // listpack sorted set with every kind of score.
    let _: () = c.set("long", "x".repeat(300)).unwrap();
    let items: Vec<String> = (0..3000).map(|i| format!("element-{i}")).collect();
    let _: () = c.rpush("biglist", &items).unwrap();
    let fields: Vec<(String, String)> = (0..200)
        .map(|i| (format!("f{i}"), format!("v{i}")))
        .collect();
    let _: () = c.hset_multiple("bighash", &fields).unwrap();
    let members: Vec<(f64, String)> = (0..200)
        .map(|i| (i as f64 / 3.0, format!("m{i}")))
        .collect();
    let _: () = c.zadd_multiple("bigzset", &members).unwrap();
    let _: () = c.sadd("wideints", &[i64::MIN, -70000, 5, 1 << 40]).unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("scores")
        .arg(&[
            "-inf",
            "a",
            "-0",
            "b",
            "0.1",
            "c",
            "4611686018427387904",
            "d",
            "1e300",
            "e",
            "inf",
            "f",
        ])
        .query(c)
        .unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(c).unwrap();
    let _: () = c.set("in-db-3", "three").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
}

/// Starts a BGSAVE that sleeps `delay_us` per key, so it is still running when looked at.
fn start_slow_bgsave(c: &mut redis::Connection, delay_us: u64) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg(delay_us)
        .query(c)
        .unwrap();
    let _: String = redis::cmd("BGSAVE").query(c).unwrap();
}

#[test]
fn bgsave_writes_a_file_redis_reads_back() {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = server.client();
    fill(&mut c);
    let before: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    let reply: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(reply, "Background saving started");
    wait_for_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut c, "rdb_saves"), "1");
    let after: i64 = redis::cmd("LASTSAVE").query(&mut c).unwrap();
    assert!(after >= before);
    let log = server.log();
    assert!(log.contains("Background saving started by pid"), "{log}");
    assert!(
        log.contains("Background saving terminated with success"),
        "{log}"
    );
    let dump = server.dir.join("dump.rdb");
    assert_eq!(load(&dump).len(), 315);

    if let Some(check) = tool("redis-check-rdb") {
        let out = Command::new(check).arg(&dump).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("RDB looks OK"), "{text}");
    }
    let Some(redis_server) = support::find_redis_server() else {
        return;
    };
    let digest: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
    let port = free_port();
    let mut reference = Command::new(redis_server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--enable-debug-command", "yes"])
        .arg("--dir")
        .arg(&server.dir)
        .args(["--dbfilename", "dump.rdb", "--logfile", "redis-log.txt"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("redis://127.0.0.1:{port}/");
    let mut r = None;
    wait_until(Duration::from_secs(10), || {
        r = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .ok();
        r.is_some()
    });
    let loaded_digest: Option<String> = r.as_mut().and_then(|r| {
        wait_until(Duration::from_secs(10), || {
            redis::cmd("PING").query::<String>(r).is_ok()
        });
        redis::cmd("DEBUG").arg("DIGEST").query(r).ok()
    });
    let _ = reference.kill();
    let _ = reference.wait();
    assert_eq!(loaded_digest.as_deref(), Some(digest.as_str()));
}

#[test]
fn save_replies_ok_and_resets_the_change_count() {
    let server = Server::start(&[]);
    let mut c = server.client();
    fill(&mut c);
    assert_ne!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    let reply: String = redis::cmd("SAVE").query(&mut c).unwrap();
    assert_eq!(reply, "OK");
    assert_eq!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert_eq!(load(&server.dir.join("dump.rdb")).len(), 315);
    assert!(server.log().contains("DB saved on disk"));
    let e = redis::cmd("BGSAVE")
        .arg("now")
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("syntax error"), "{e}");
}

#[test]
fn killing_the_writer_child_fails_the_save_and_keeps_no_file() {
    let server = Server::start(&[]);
    let mut c = server.client();
    fill(&mut c);
    start_slow_bgsave(&mut c, 1_000_000);
    let e = redis::cmd("BGSAVE").query::<String>(&mut c).unwrap_err();
    assert!(
        e.to_string()
            .contains("Background save already in progress"),
        "{e}"
    );
    assert_eq!(info_field(&mut c, "rdb_bgsave_in_progress"), "1");
    let mut children = Vec::new();
    assert!(wait_until(Duration::from_secs(5), || {
        children = children_of(server.pid());
        !children.is_empty()
    }));
    assert_eq!(children.len(), 1, "one writer child");
    unsafe { libc::kill(children[0] as i32, libc::SIGKILL) };
    wait_for_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    assert!(server
        .log()
        .contains("Background saving terminated by signal 9"));
    let files: Vec<String> = std::fs::read_dir(&server.dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rdb"))
        .collect();
    assert!(files.is_empty(), "left behind: {files:?}");
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(info.contains("total_forks:1\r\n"), "{info}");
    // Writes go on normally once the save is over.
    let _: () = c.set("str:1", "after").unwrap();
    assert_eq!(c.get::<_, String>("str:1").unwrap(), "after");
}

#[test]
fn a_slow_bgsave_holds_the_dataset_as_of_the_cut() {
    let server = Server::start(&[]);
    let mut c = server.client();
    for i in 0..200 {
        let _: () = c.set(format!("k{i}"), "old").unwrap();
    }
    // About 1 ms per key: the walk takes a fraction of a second, long enough to race.
    start_slow_bgsave(&mut c, 1000);
    for i in 0..200 {
        let _: () = c.set(format!("k{i}"), "new").unwrap();
    }
    let _: () = c.del("k7").unwrap();
    let _: () = c.set("added", "new").unwrap();
    let _: () = redis::cmd("FLUSHDB").query(&mut c).unwrap();
    wait_for_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let loaded = load(&server.dir.join("dump.rdb"));
    assert_eq!(loaded.len(), 200);
    for i in 0..200 {
        assert_eq!(
            string_of(&loaded, &format!("k{i}")).as_deref(),
            Some(&b"old"[..])
        );
    }
    assert_eq!(string_of(&loaded, "added"), None);
    // Writes during the save count as changes since it.
    assert_ne!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
}

#[test]
fn flushall_calls_a_running_bgsave_off() {
    let server = Server::start(&[]);
    let mut c = server.client();
    fill(&mut c);
    start_slow_bgsave(&mut c, 100_000);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let stopped = wait_until(Duration::from_secs(2), || {
        info_field(&mut c, "rdb_bgsave_in_progress") == "0"
    });
    assert!(stopped, "FLUSHALL did not stop the save");
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_ne!(info_field(&mut c, "rdb_changes_since_last_save"), "0");
    assert!(server
        .log()
        .contains("Background saving terminated by signal 10"));
    assert!(!server.dir.join("dump.rdb").exists());
    let _: () = c.set("x", "xx").unwrap();
}

#[test]
fn a_restart_loads_the_saved_file() {
    let server = Server::start(&[]);
    let mut c = server.client();
    fill(&mut c);
    let _: () = c.pset_ex("gone-soon", "v", 200).unwrap();
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let dir = server.kill_keep_dir();

    let server = Server::start_in(dir.clone(), &[]);
    let mut c = server.client();
    let keys: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(keys, 314);
    assert_eq!(c.get::<_, String>("str:7").unwrap(), "value-7");
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_loaded"), "315");
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_expired"), "1");
    let log = server.log();
    assert!(
        log.contains("Loading RDB produced by version 7.0.15"),
        "{log}"
    );
    assert!(log.contains("DB loaded from disk: "), "{log}");
    drop(c);
    let dir = server.kill_keep_dir();

    // A damaged checksum keeps the server from starting, with Redis's words in the log.
    let dump = dir.join("dump.rdb");
    let mut bytes = std::fs::read(&dump).unwrap();
    let n = bytes.len();
    bytes[n - 8..].copy_from_slice(b"foobar00");
    std::fs::write(&dump, bytes).unwrap();
    let log = start_fails(&dir);
    assert!(log.contains("RDB CRC error"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_inside_exec_is_scheduled_for_the_cron() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.set("k", "v").unwrap();
    let replies: Vec<String> = redis::pipe().atomic().cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(replies, ["Background saving scheduled"]);
    let dump = server.dir.join("dump.rdb");
    assert!(wait_until(Duration::from_secs(10), || dump.exists()));
    wait_for_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    assert_eq!(string_of(&load(&dump), "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn keys_expired_but_not_yet_deleted_are_saved_and_dropped_on_load() {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = server.client();
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let _: () = c.set("kept", "v").unwrap();
    let _: () = c.pset_ex("stale", "v", 10).unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    let dump = server.dir.join("dump.rdb");
    let bytes = std::fs::read(&dump).unwrap();
    assert!(
        bytes.windows(5).any(|w| w == b"stale"),
        "Redis saves it too"
    );
    let dir = server.kill_keep_dir();
    let server = Server::start_in(dir, &[]);
    let mut c = server.client();
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_loaded"), "1");
    assert_eq!(info_field(&mut c, "rdb_last_load_keys_expired"), "1");
}

#[test]
fn save_points_start_a_bgsave_once_due() {
    let server = Server::start(&["--save", "1 1"]);
    let mut c = server.client();
    let save: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut c)
        .unwrap();
    assert_eq!(save, ["save", "1 1"]);
    let _: () = c.set("k", "v").unwrap();
    let dump = server.dir.join("dump.rdb");
    let saved = wait_until(Duration::from_secs(20), || {
        dump.exists() && info_field(&mut c, "rdb_changes_since_last_save") == "0"
    });
    assert!(saved, "no save point fired; log:\n{}", server.log());
    wait_for_bgsave(&mut c);
    assert!(
        server.log().contains("1 changes in 1 seconds. Saving..."),
        "{}",
        server.log()
    );
    assert_eq!(string_of(&load(&dump), "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn shutdown_saves_with_save_points_and_stays_up_when_it_cannot() {
    let mut server = Server::start(&["--save", "3600 1"]);
    let mut c = server.client();
    let _: () = c.set("k", "v").unwrap();
    // A directory where the file goes makes the save fail: SHUTDOWN answers an error and the
    // server keeps serving.
    let dump = server.dir.join("dump.rdb");
    std::fs::create_dir(&dump).unwrap();
    let err = redis::cmd("SHUTDOWN").query::<()>(&mut c).unwrap_err();
    assert!(
        err.to_string()
            .contains("Errors trying to SHUTDOWN. Check logs."),
        "{err}"
    );
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    assert!(server
        .log()
        .contains("Error trying to save the DB, can't exit."));
    std::fs::remove_dir(&dump).unwrap();
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    let exited = server.wait_exit(Duration::from_secs(20)).is_some();
    assert!(
        exited,
        "still running after SHUTDOWN; log:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains("Saving the final RDB snapshot before exiting."),
        "{log}"
    );
    assert!(
        log.contains("Redis is now ready to exit, bye bye..."),
        "{log}"
    );
    assert_eq!(string_of(&load(&dump), "k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn a_failed_bgsave_stops_writes_until_a_save_succeeds() {
    let server = Server::start(&["--save", "3600 1"]);
    let mut c = server.client();
    let _: () = c.set("k", "v").unwrap();
    let dump = server.dir.join("dump.rdb");
    std::fs::create_dir(&dump).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    wait_for_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "err");
    let misconf = |c: &mut redis::Connection, cmd: &mut redis::Cmd| {
        let err = cmd.query::<redis::Value>(c).unwrap_err();
        assert_eq!(err.code(), Some("MISCONF"), "{err}");
        assert!(
            err.to_string()
                .contains("Redis is configured to save RDB snapshots, but"),
            "{err}"
        );
    };
    misconf(&mut c, redis::cmd("SET").arg("k2").arg("v"));
    misconf(&mut c, &mut redis::cmd("PING"));
    // A script's first write is refused the same way; reads in scripts still run.
    misconf(
        &mut c,
        redis::cmd("EVAL")
            .arg("return redis.call('set','x',1)")
            .arg(1)
            .arg("x"),
    );
    let v: String = redis::cmd("EVAL")
        .arg("return redis.call('get','k')")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "v");
    assert_eq!(c.get::<_, String>("k").unwrap(), "v");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stop-writes-on-bgsave-error")
        .arg("no")
        .query(&mut c)
        .unwrap();
    let _: () = c.set("k2", "v").unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stop-writes-on-bgsave-error")
        .arg("yes")
        .query(&mut c)
        .unwrap();
    misconf(&mut c, redis::cmd("SET").arg("k3").arg("v"));
    std::fs::remove_dir(&dump).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    wait_for_bgsave(&mut c);
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let _: () = c.set("k3", "v").unwrap();
}

/// Acceptance of the snapshot design: 50 clients INCR their own counters without pause while a
/// slow BGSAVE walks the dataset; the file holds each counter's value at the cut. The cut is
/// taken while writes are paused (CLIENT PAUSE WRITE), so the values at the cut can be read
/// exactly; the writers resume at once and keep writing through the whole save.
#[test]
fn fifty_writers_during_a_bgsave_leave_the_counters_of_the_cut_in_the_file() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    const WRITERS: usize = 50;
    let server = Server::start(&["--enable-debug-command", "local"]);
    let mut c = server.client();
    // Enough other keys, saved slowly, that the writers run through the whole walk.
    let _: () = redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(2000)
        .query(&mut c)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|i| {
            let mut w = server.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    n = w.incr(format!("counter:{i}"), 1).unwrap();
                }
                n
            })
        })
        .collect();
    let keys: Vec<String> = (0..WRITERS).map(|i| format!("counter:{i}")).collect();
    let everyone_wrote = wait_until(Duration::from_secs(30), || {
        let v: Vec<Option<u64>> = c.mget(&keys).unwrap();
        v.iter().all(|n| n.is_some_and(|n| n > 10))
    });
    assert!(everyone_wrote, "some writer never wrote");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("rdb-key-save-delay")
        .arg(1000)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(10_000)
        .arg("WRITE")
        .query(&mut c)
        .unwrap();
    let at_cut: Vec<u64> = c.mget(&keys).unwrap();
    let _: String = redis::cmd("BGSAVE").query(&mut c).unwrap();
    let _: () = redis::cmd("CLIENT").arg("UNPAUSE").query(&mut c).unwrap();
    let moved_on = wait_until(Duration::from_secs(30), || {
        let now: Vec<u64> = c.mget(&keys).unwrap();
        now.iter().zip(&at_cut).all(|(n, cut)| n > cut)
    });
    assert!(moved_on, "the writers did not go on during the save");
    assert_eq!(
        info_field(&mut c, "rdb_bgsave_in_progress"),
        "1",
        "the save should still be walking while the writers went on"
    );
    wait_for_bgsave(&mut c);
    stop.store(true, Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(info_field(&mut c, "rdb_last_bgsave_status"), "ok");
    let loaded = load(&server.dir.join("dump.rdb"));
    for (key, cut) in keys.iter().zip(&at_cut) {
        let saved = string_of(&loaded, key).expect("counter saved");
        assert_eq!(
            String::from_utf8_lossy(&saved),
            cut.to_string(),
            "{key} in the file differs from its value at the cut"
        );
    }
}

/// Starts the server on the files in `dir`, which must make it exit with an error: its log.
fn start_fails(dir: &Path) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args(["--port", &free_port().to_string(), "--save", ""])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", "log.txt"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success());
    std::fs::read_to_string(dir.join("log.txt")).unwrap()
}

/// Runs `ferrodis-cli check-rdb` on a file: its exit status and report.
fn check_rdb(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrodis-cli"))
        .arg("check-rdb")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_rdb_and_startup_report_a_damaged_value_and_skip_empty_keys() {
    let server = Server::start(&[]);
    let mut c = server.client();
    fill(&mut c);
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    let dir = server.kill_keep_dir();
    let (ok, report) = check_rdb(&dir.join("dump.rdb"));
    assert!(ok, "{report}");
    assert!(report.contains("Checksum OK"), "{report}");
    assert!(report.contains("\\o/ RDB looks OK! \\o/"), "{report}");
    assert!(report.contains("[info] 315 keys read"), "{report}");

    // An empty set (skipped) and an intset whose members are out of order (refused), in a
    // file saved without a checksum.
    let mut bytes = b"REDIS0010\xfe\x00".to_vec();
    bytes.extend_from_slice(b"\x02\x05empty\x00");
    bytes.extend_from_slice(b"\x0b\x04nums\x0c");
    bytes.extend_from_slice(&[2, 0, 0, 0, 2, 0, 0, 0, 9, 0, 3, 0, 0xff]);
    bytes.extend_from_slice(&[0; 8]);
    let dump = dir.join("dump.rdb");
    std::fs::write(&dump, &bytes).unwrap();
    let (ok, report) = check_rdb(&dump);
    assert!(!ok, "{report}");
    assert!(report.contains("--- RDB ERROR DETECTED ---"), "{report}");
    assert!(
        report.contains("-> Intset integrity check failed."),
        "{report}"
    );
    assert!(
        report.contains("[additional info] Reading key 'nums'"),
        "{report}"
    );

    let log = start_fails(&dir);
    // The fault, then the checker's report of it, then the end.
    assert_eq!(
        log.matches("Intset integrity check failed.").count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("Terminating server after rdb file reading failure.")
            .count(),
        1,
        "{log}"
    );

    // Without the damaged key the file loads, skipping the empty one.
    let mut bytes = b"REDIS0010\xfe\x00".to_vec();
    bytes.extend_from_slice(b"\x02\x05empty\x00");
    bytes.extend_from_slice(b"\x00\x01k\x01v");
    bytes.extend_from_slice(&[0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&dump, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.join("log.txt"));
    let server = Server::start_in(dir, &[]);
    let mut c = server.client();
    let keys: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(keys, 1);
    let log = server.log();
    assert!(
        log.contains("rdbLoadObject skipping empty key: empty"),
        "{log}"
    );
    assert!(
        log.contains("Done loading RDB, keys loaded: 1, keys expired: 0, empty keys skipped: 1."),
        "{log}"
    );
}

//! Loading at startup against the built server: clients are accepted while the dump loads
//! and get -LOADING for commands without the `loading` flag (inside MULTI too, which then
//! fails at EXEC), INFO reports `loading:1` with the progress fields, and once loading ends
//! the dataset is whole and "Ready to accept connections" follows the load's lines. A
//! SIGTERM during the load exits at once without saving over the file being loaded.
//! `key-load-delay` slows the load down so it is observed in progress.

mod support;

use std::time::Duration;
use support::{wait_until, Raw, Server};

const KEYS: usize = 5000;
const LOADING: &str = "-LOADING Redis is loading the dataset in memory\r\n";

/// A fresh directory holding a dump of `KEYS` keys; returns it and the dataset's digest.
fn saved_dataset() -> (std::path::PathBuf, String) {
    let server = Server::start(&["--enable-debug-command", "yes"]);
    let mut c = Raw::connect(server.port);
    assert_eq!(
        c.text(&["DEBUG", "POPULATE", &KEYS.to_string(), "key", "100"]),
        "+OK\r\n"
    );
    assert_eq!(c.text(&["SAVE"]), "+OK\r\n");
    let digest = c.text(&["DEBUG", "DIGEST"]);
    drop(c);
    let dir = server.kill_keep_dir();
    // The restart's log on its own.
    std::fs::remove_file(dir.join("log.txt")).unwrap();
    (dir, digest)
}

fn info_field(c: &mut Raw, field: &str) -> Option<String> {
    let info = c.bulk(&["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
}

/// Started with a delay of 1 ms per key: the load takes at least `KEYS` ms.
fn slow_restart(dir: std::path::PathBuf, extra: &[&str]) -> Server {
    let mut args = vec![
        "--enable-debug-command",
        "yes",
        "--key-load-delay",
        "1000",
        "--loading-process-events-interval-bytes",
        "1024",
    ];
    args.extend_from_slice(extra);
    Server::start_loading(dir, &args)
}

#[test]
fn clients_are_served_while_the_dump_loads() {
    let (dir, digest) = saved_dataset();
    let file_size = std::fs::metadata(dir.join("dump.rdb")).unwrap().len();
    let server = slow_restart(dir, &[]);
    let mut c = Raw::connect(server.port);

    // Commands without the `loading` flag are refused; INFO and DEBUG LOG answer.
    assert_eq!(c.text(&["GET", "key:1"]), LOADING);
    assert_eq!(c.text(&["PING"]), LOADING);
    assert_eq!(c.text(&["DEBUG", "LOG", "still loading"]), "+OK\r\n");
    assert_eq!(info_field(&mut c, "loading").as_deref(), Some("1"));
    assert_eq!(info_field(&mut c, "async_loading").as_deref(), Some("0"));
    let total = info_field(&mut c, "loading_total_bytes").unwrap();
    assert_eq!(total, file_size.to_string());
    for field in [
        "loading_start_time",
        "loading_rdb_used_mem",
        "loading_loaded_bytes",
        "loading_eta_seconds",
    ] {
        let v = info_field(&mut c, field).unwrap_or_else(|| panic!("{field} missing"));
        assert!(v.parse::<i64>().is_ok(), "{field}:{v}");
    }
    let perc = info_field(&mut c, "loading_loaded_perc").unwrap();
    assert!(perc
        .parse::<f64>()
        .is_ok_and(|p| (0.0..=100.0).contains(&p)));

    // Refused inside MULTI too: the transaction is then discarded at EXEC.
    assert_eq!(c.text(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.text(&["SET", "k", "v"]), LOADING);
    assert_eq!(
        c.text(&["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );

    // Loading ends on its own; then the whole dataset is there.
    let done = wait_until(Duration::from_secs(120), || {
        info_field(&mut c, "loading").as_deref() == Some("0")
    });
    assert!(done, "still loading after 120 s");
    assert_eq!(info_field(&mut c, "loading_total_bytes"), None);
    assert_eq!(c.text(&["DBSIZE"]), format!(":{KEYS}\r\n"));
    assert!(c.bulk(&["GET", "key:7"]).starts_with("value:7"));
    assert_eq!(c.text(&["DEBUG", "DIGEST"]), digest);
    assert_eq!(
        info_field(&mut c, "rdb_last_load_keys_loaded"),
        Some(KEYS.to_string())
    );

    // The log keeps Redis's order: the load, then ready.
    let log = server.log();
    let at = |s: &str| log.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{log}"));
    assert!(at("DEBUG LOG: still loading") < at("Done loading RDB, keys loaded: 5000"));
    assert!(at("Done loading RDB") < at("DB loaded from disk: "));
    assert!(at("DB loaded from disk: ") < at("Ready to accept connections"));
}

#[test]
fn sigterm_during_the_load_exits_without_saving() {
    let (dir, _) = saved_dataset();
    let before = std::fs::read(dir.join("dump.rdb")).unwrap();
    // Save points are set: outside a load, SIGTERM would save.
    let mut server = slow_restart(dir.clone(), &["--save", "900 1"]);
    let mut c = Raw::connect(server.port);
    assert_eq!(info_field(&mut c, "loading").as_deref(), Some("1"));
    // SAFETY: SIGTERM to the server this test spawned.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.is_some(), "still running 30 s after SIGTERM");
    assert_eq!(status.unwrap().code(), Some(0));
    let log = server.log();
    assert!(
        log.contains("Received shutdown signal during loading, scheduling shutdown."),
        "{log}"
    );
    assert!(
        log.contains("Redis is now ready to exit, bye bye..."),
        "{log}"
    );
    assert!(!log.contains("Ready to accept connections"), "{log}");
    assert!(!log.contains("Saving the final RDB snapshot"), "{log}");
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), before);
}

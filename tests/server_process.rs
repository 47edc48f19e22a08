//! Multi-process tests: start the built `ferrodis` binary and talk to it with the `redis`
//! crate and raw sockets, as a real client would.

mod support;

use redis::Commands;
use std::io::Write;
use std::time::Duration;
use support::{roundtrip, wait_until, Server};

#[test]
fn set_get_and_expiry_over_the_wire() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.set("greeting", "hello").unwrap();
    let v: String = c.get("greeting").unwrap();
    assert_eq!(v, "hello");
    let n: i64 = c.incr("counter", 5).unwrap();
    assert_eq!(n, 5);
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("x")
        .arg("PX")
        .arg(50)
        .query(&mut c)
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        let e: bool = c.exists("short").unwrap();
        !e
    }));
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let server = Server::start(&[]);
    let mut c = server.client();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .arg("PX")
            .arg(30)
            .query(&mut c)
            .unwrap();
    }
    let _: () = c.set("stays", "1").unwrap();
    let gone = wait_until(Duration::from_secs(10), || {
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        n == 1
    });
    assert!(gone, "active expiry did not remove the expired keys");
}

#[test]
fn inline_commands_and_pipelines_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut s = server.raw();
    let out = roundtrip(
        &mut s,
        b"PING\r\nSET a 1\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\nGET a\r\n",
        7 + 5 + 4 + 7,
    );
    assert_eq!(out, b"+PONG\r\n+OK\r\n:2\r\n$1\r\n2\r\n");
}

#[test]
fn protocol_error_replies_then_closes() {
    let server = Server::start(&[]);
    let mut s = server.raw();
    let out = roundtrip(&mut s, b"*1\r\n$x\r\n", 64);
    assert_eq!(out, b"-ERR Protocol error: invalid bulk length\r\n");
    let mut c = server.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn unknown_command_has_redis_text() {
    let server = Server::start(&[]);
    let mut s = server.raw();
    let out = roundtrip(&mut s, b"FOO bar baz\r\n", 200);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n"
    );
}

#[test]
fn requirepass_gates_commands_until_auth() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let mut s = server.raw();
    let out = roundtrip(&mut s, b"GET a\r\n", 64);
    assert_eq!(out, b"-NOAUTH Authentication required.\r\n");
    let out = roundtrip(&mut s, b"AUTH wrong\r\n", 68);
    assert_eq!(
        out,
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let out = roundtrip(&mut s, b"AUTH s3cret\r\nGET a\r\n", 10);
    assert_eq!(out, b"+OK\r\n$-1\r\n");
}

#[test]
fn hello_3_switches_to_resp3() {
    let server = Server::start(&[]);
    let mut s = server.raw();
    s.write_all(b"HELLO 3\r\n").unwrap();
    let mut buf = vec![0u8; 4096];
    let n = std::io::Read::read(&mut s, &mut buf).unwrap();
    assert!(buf[..n].starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"));
    let out = roundtrip(&mut s, b"GET missing\r\n", 3);
    assert_eq!(out, b"_\r\n");
}

#[test]
fn sigterm_shuts_down_with_redis_log_lines() {
    let mut server = Server::start(&[]);
    assert!(server.log().contains("Ready to accept connections"));
    // SAFETY: signalling the child we spawned, by its pid.
    unsafe { libc::kill(server.pid() as i32, libc::SIGTERM) };
    assert!(server.wait_exit(Duration::from_secs(10)).is_some());
    let log = server.log();
    assert!(
        log.contains("Received SIGTERM scheduling shutdown..."),
        "{log}"
    );
    assert!(log.contains("is now ready to exit, bye bye..."), "{log}");
}

#[test]
fn a_taken_port_fails_with_redis_message() {
    let server = Server::start(&[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args([
            "--port",
            &server.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "Failed listening on port {} (TCP), aborting.",
            server.port
        )),
        "{text}"
    );
}

#[test]
fn bad_config_prints_the_fatal_report() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrodis"))
        .args(["--port", "notaport"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***"),
        "{text}"
    );
}

#[test]
fn redis_cli_pipe_gets_a_reply_for_every_set() {
    let Ok(probe) = std::process::Command::new("redis-cli")
        .arg("--version")
        .output()
    else {
        println!("SKIPPED: redis-cli not installed");
        return;
    };
    assert!(probe.status.success());
    let server = Server::start(&[]);
    let n = 1_000_000;
    let mut input = Vec::with_capacity(n * 50);
    for i in 0..n {
        let key = format!("key:{i}");
        let value = format!("{:<16}", format!("value:{i}"));
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$16\r\n{value}\r\n",
                key.len()
            )
            .as_bytes(),
        );
    }
    let mut child = std::process::Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("errors: 0, replies: {n}")), "{text}");
    let mut c = server.client();
    let size: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(size, n);
}

#[test]
fn watch_fails_exec_when_another_client_writes() {
    let server = Server::start(&[]);
    let mut a = server.client();
    let mut b = server.client();
    let _: () = a.set("balance", 10).unwrap();
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut a).unwrap();
    let _: () = b.set("balance", 20).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: () = redis::cmd("INCR").arg("balance").query(&mut a).unwrap();
    let result: Option<Vec<i64>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(result, None, "EXEC must fail after a watched key changed");
    let v: i64 = a.get("balance").unwrap();
    assert_eq!(v, 20);

    // Untouched watch: the transaction runs.
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut a).unwrap();
    let _: () = b.set("unrelated", 1).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut a).unwrap();
    let _: () = redis::cmd("INCR").arg("balance").query(&mut a).unwrap();
    let result: Option<Vec<i64>> = redis::cmd("EXEC").query(&mut a).unwrap();
    assert_eq!(result, Some(vec![21]));

    // A watcher that disconnects leaves nothing behind: a new watch works normally.
    drop(a);
    let mut c = server.client();
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut c).unwrap();
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: () = redis::cmd("GET").arg("balance").query(&mut c).unwrap();
    let result: Option<Vec<i64>> = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(result, Some(vec![21]));
}

/// A script blocks its thread. Every other client, on the script's loop or another, must
/// still get BUSY, and SCRIPT KILL must reach the script.
#[test]
fn a_busy_script_leaves_every_client_loop_serving() {
    for loops in ["1", "3"] {
        busy_script_with_client_loops(loops);
    }
}

fn busy_script_with_client_loops(loops: &str) {
    let server = Server::start(&["--busy-reply-threshold", "100", "--io-threads", loops]);
    let loops: usize = loops.parse().unwrap();
    let mut runner = support::Raw::connect(server.port);
    runner.send(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n");
    // More connections than loops: some share the runner's loop whichever it is.
    let mut others: Vec<_> = (0..2 * loops + 2)
        .map(|_| support::Raw::connect(server.port))
        .collect();
    assert!(wait_until(Duration::from_secs(10), || {
        others[0].text(&["PING"]).starts_with("-BUSY")
    }));
    for c in others.iter_mut() {
        let reply = c.text(&["GET", "k"]);
        assert!(
            reply.starts_with("-BUSY Redis is busy running a script."),
            "{reply}"
        );
    }
    assert_eq!(
        others.last_mut().unwrap().text(&["SCRIPT", "KILL"]),
        "+OK\r\n"
    );
    let mut out = Vec::new();
    runner.read_reply(&mut out);
    let killed = String::from_utf8_lossy(&out);
    assert!(
        killed.contains("Script killed by user with SCRIPT KILL"),
        "{killed}"
    );
    for c in others.iter_mut().chain(std::iter::once(&mut runner)) {
        assert_eq!(c.text(&["PING"]), "+PONG\r\n");
    }
}

//! Pub/Sub against the built server with the `redis` crate as an independent client:
//! messages reach channel and pattern subscribers on other connections, keyspace
//! notifications arrive for writes and for keys the expire cycle removes, and a subscriber
//! that stops reading is disconnected at its output buffer limit while the server goes on.

mod support;

use redis::Commands;
use std::io::Write;
use std::time::Duration;
use support::{wait_until, Server};

fn numsub(c: &mut redis::Connection, channel: &str) -> i64 {
    let v: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(c)
        .unwrap();
    v.1
}

#[test]
fn messages_reach_channel_and_pattern_subscribers() {
    let server = Server::start(&[]);
    let mut publisher = server.client();
    let mut sub_conn = server.client();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("news").unwrap();
    sub.psubscribe("n*").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(numsub(&mut publisher, "news"), 1);
    let receivers: i64 = publisher.publish("news", "hello").unwrap();
    assert_eq!(receivers, 2);
    let first = sub.get_message().unwrap();
    assert_eq!(first.get_channel_name(), "news");
    assert!(!first.from_pattern());
    assert_eq!(first.get_payload::<String>().unwrap(), "hello");
    let second = sub.get_message().unwrap();
    assert!(second.from_pattern());
    assert_eq!(second.get_pattern::<String>().unwrap(), "n*");
    assert_eq!(second.get_payload::<String>().unwrap(), "hello");
    let nobody: i64 = publisher.publish("other", "x").unwrap();
    assert_eq!(nobody, 0);
}

#[test]
fn keyspace_notifications_for_writes_and_active_expiry() {
    let server = Server::start(&["--notify-keyspace-events", "KEA", "--hz", "100"]);
    let mut writer = server.client();
    let mut sub_conn = server.client();
    let mut sub = sub_conn.as_pubsub();
    sub.psubscribe("__key*@0__:*").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _: () = writer.rpush("jobs", "a").unwrap();
    let mut next = || {
        let m = sub.get_message().unwrap();
        (
            m.get_channel_name().to_string(),
            m.get_payload::<String>().unwrap(),
        )
    };
    assert_eq!(next(), ("__keyspace@0__:jobs".into(), "rpush".into()));
    assert_eq!(next(), ("__keyevent@0__:rpush".into(), "jobs".into()));
    let _: () = redis::cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(50)
        .query(&mut writer)
        .unwrap();
    assert_eq!(next(), ("__keyspace@0__:short".into(), "set".into()));
    assert_eq!(next(), ("__keyevent@0__:set".into(), "short".into()));
    assert_eq!(next(), ("__keyspace@0__:short".into(), "expire".into()));
    assert_eq!(next(), ("__keyevent@0__:expire".into(), "short".into()));
    // Nobody reads the key again: only the expire cycle can remove it.
    assert_eq!(next(), ("__keyspace@0__:short".into(), "expired".into()));
    assert_eq!(next(), ("__keyevent@0__:expired".into(), "short".into()));
}

#[test]
fn a_subscriber_over_its_output_limit_is_disconnected() {
    let server = Server::start(&["--client-output-buffer-limit", "pubsub 64kb 0 0"]);
    let mut publisher = server.client();
    // A subscriber that never reads: its socket buffers fill, then its mailbox.
    let mut slow = server.raw();
    slow.write_all(b"SUBSCRIBE flood\r\n").unwrap();
    assert!(wait_until(Duration::from_secs(5), || numsub(
        &mut publisher,
        "flood"
    ) == 1));
    let payload = "x".repeat(16 * 1024);
    let gone = wait_until(Duration::from_secs(20), || {
        let _: i64 = publisher.publish("flood", &payload).unwrap();
        numsub(&mut publisher, "flood") == 0
    });
    assert!(gone, "the subscriber was never disconnected");
    let log = server.log();
    assert!(
        log.contains("scheduled to be closed ASAP for overcoming of output buffer limits"),
        "{log}"
    );
    // The server goes on serving.
    let _: () = publisher.set("still", "here").unwrap();
    let v: String = publisher.get("still").unwrap();
    assert_eq!(v, "here");
}

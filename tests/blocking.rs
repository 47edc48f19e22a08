//! Blocking list and sorted-set pops against the built server: a push wakes a waiter, waiters
//! are served in arrival order, timeouts answer null, CLIENT UNBLOCK ends a wait, and under
//! load every pushed element reaches exactly one of many blocked clients.

mod support;

use redis::Commands;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{wait_until, Server};

fn blocked_clients(c: &mut redis::Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let server = Server::start(&[]);
    let mut admin = server.client();
    let mut handles = Vec::new();
    for i in 0..3 {
        let mut c = server.client();
        handles.push(std::thread::spawn(move || {
            let got: (String, String) = redis::cmd("BLPOP")
                .arg("queue")
                .arg(10)
                .query(&mut c)
                .unwrap();
            got.1
        }));
        // Each waiter is parked before the next one arrives.
        assert!(wait_until(Duration::from_secs(5), || blocked_clients(
            &mut admin
        ) == i + 1));
    }
    let _: () = admin.rpush("queue", &["first", "second", "third"]).unwrap();
    let got: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, ["first", "second", "third"]);
    assert_eq!(blocked_clients(&mut admin), 0);
}

#[test]
fn timeouts_moves_and_unblock() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let got: Option<(String, String)> = redis::cmd("BLPOP")
        .arg("nothing")
        .arg(0.05)
        .query(&mut c)
        .unwrap();
    assert_eq!(got, None);
    let got: Option<String> = redis::cmd("BLMOVE")
        .arg("nothing")
        .arg("dst")
        .arg("LEFT")
        .arg("RIGHT")
        .arg(0.05)
        .query(&mut c)
        .unwrap();
    assert_eq!(got, None);

    // BZPOPMIN waiting for a ZADD from another client.
    let mut waiter = server.client();
    let h = std::thread::spawn(move || {
        let got: (String, String, f64) = redis::cmd("BZPOPMIN")
            .arg("z")
            .arg(10)
            .query(&mut waiter)
            .unwrap();
        got
    });
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut c
    ) == 1));
    let _: () = c.zadd("z", "m", 2.5).unwrap();
    assert_eq!(h.join().unwrap(), ("z".into(), "m".into(), 2.5));

    // CLIENT UNBLOCK ends a wait that would last forever.
    let mut waiter = server.client();
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut waiter).unwrap();
    let h = std::thread::spawn(move || {
        redis::cmd("BRPOP")
            .arg("never")
            .arg(0)
            .query::<Option<(String, String)>>(&mut waiter)
    });
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut c
    ) == 1));
    let n: i64 = redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(id)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(h.join().unwrap().unwrap(), None);

    // Inside MULTI a blocking command does not block.
    let _: () = redis::cmd("MULTI").query(&mut c).unwrap();
    let _: () = redis::cmd("BLPOP")
        .arg("never")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let got: Vec<Option<Vec<String>>> = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(got, vec![None]);
}

/// 200 clients blocked on 50 keys, 10,000 pushes from 10 other clients: every element is
/// received exactly once.
#[test]
fn every_pushed_element_reaches_exactly_one_waiter() {
    const CONSUMERS: usize = 200;
    const KEYS: usize = 50;
    const PRODUCERS: usize = 10;
    const PER_PRODUCER: usize = 1000;
    const TOTAL: usize = PRODUCERS * PER_PRODUCER;
    let server = Arc::new(Server::start(&[]));
    let received = Arc::new(Mutex::new(Vec::with_capacity(TOTAL)));
    let count = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        let mut c = server.client();
        let (received, count) = (received.clone(), count.clone());
        consumers.push(std::thread::spawn(move || {
            let key = format!("q{}", i % KEYS);
            while count.load(SeqCst) < TOTAL && Instant::now() < deadline {
                let got: Option<(String, String)> = redis::cmd("BLPOP")
                    .arg(&key)
                    .arg(0.5)
                    .query(&mut c)
                    .unwrap();
                if let Some((_, v)) = got {
                    received.lock().unwrap().push(v);
                    count.fetch_add(1, SeqCst);
                }
            }
        }));
    }
    let mut admin = server.client();
    assert!(wait_until(Duration::from_secs(30), || blocked_clients(
        &mut admin
    ) == CONSUMERS));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let mut c = server.client();
        producers.push(std::thread::spawn(move || {
            for n in 0..PER_PRODUCER {
                let key = format!("q{}", (p * PER_PRODUCER + n) % KEYS);
                let _: () = c.rpush(key, format!("{p}:{n}")).unwrap();
            }
        }));
    }
    for h in producers {
        h.join().unwrap();
    }
    for h in consumers {
        h.join().unwrap();
    }
    let received = received.lock().unwrap();
    let unique: HashSet<&String> = received.iter().collect();
    assert_eq!(received.len(), TOTAL, "lost or duplicated elements");
    assert_eq!(unique.len(), TOTAL, "duplicated elements");
    let left: i64 = (0..KEYS)
        .map(|k| admin.llen::<_, i64>(format!("q{k}")).unwrap())
        .sum();
    assert_eq!(left, 0);
}

#[test]
fn blocked_stream_reads_wake_on_xadd_and_fail_when_the_stream_goes_away() {
    let server = Server::start(&[]);
    let mut admin = server.client();
    let _: String = redis::cmd("XADD")
        .arg("s")
        .arg("5-1")
        .arg("f")
        .arg("old")
        .query(&mut admin)
        .unwrap();

    // XREAD with `$` gets only what arrives after it blocked, even if woken late.
    let mut reader = server.client();
    let h = std::thread::spawn(move || {
        let got: redis::Value = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(10_000)
            .arg("STREAMS")
            .arg("s")
            .arg("$")
            .query(&mut reader)
            .unwrap();
        got
    });
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    let _: String = redis::cmd("XADD")
        .arg("s")
        .arg("6-1")
        .arg("f")
        .arg("new")
        .query(&mut admin)
        .unwrap();
    let got = format!("{:?}", h.join().unwrap());
    assert!(got.contains("6-1") && !got.contains("5-1"), "{got}");

    // A blocked XREADGROUP fails once its stream is deleted.
    let _: String = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("s")
        .arg("g")
        .arg("$")
        .query(&mut admin)
        .unwrap();
    let mut grouped = server.client();
    let h = std::thread::spawn(move || {
        redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("alice")
            .arg("BLOCK")
            .arg(0)
            .arg("STREAMS")
            .arg("s")
            .arg(">")
            .query::<redis::Value>(&mut grouped)
            .unwrap_err()
            .to_string()
    });
    assert!(wait_until(Duration::from_secs(5), || blocked_clients(
        &mut admin
    ) == 1));
    let _: i64 = admin.del("s").unwrap();
    let err = h.join().unwrap();
    assert!(
        err.contains("UNBLOCKED") && err.contains("no longer exists"),
        "{err}"
    );
    assert_eq!(blocked_clients(&mut admin), 0);
}

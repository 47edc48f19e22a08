//! Bad input never crashes the server or loses data: random and malformed byte streams are
//! thrown at live connections, then the server must still answer and earlier keys must be
//! intact. The random streams come from a seeded generator; the seed is printed.

mod support;

use redis::Commands;
use std::io::{Read, Write};
use std::time::Duration;
use support::Server;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const FRAGMENTS: &[&[u8]] = &[
    b"*",
    b"$",
    b"\r\n",
    b"\n",
    b"-1",
    b"0",
    b"3",
    b"99999999999999999999",
    b"-99",
    b"*3\r\n",
    b"$3\r\nSET\r\n",
    b"$1\r\nk\r\n",
    b"\"",
    b"'",
    b"\\x4",
    b" ",
    b"\x00",
    b"\xff",
    b"PING",
    b"SET",
    b"GET",
    b"*1\r\n$4\r\nPING\r\n",
    b"*2147483648\r\n",
    b"$2147483648\r\n",
    b"*-5\r\n",
    b"$-5\r\n",
    b"{",
    b"}",
    b"DEL k",
    b"FLUSHALL",
];

fn random_stream(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(60) + 1 {
        if rng.below(4) == 0 {
            for _ in 0..rng.below(32) {
                out.push(rng.next() as u8);
            }
        } else {
            out.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len() as u64) as usize]);
        }
    }
    out
}

#[test]
fn random_and_malformed_streams_do_not_hurt_the_server() {
    let seed = std::env::var("FERRODIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (std::process::id() as u64).wrapping_mul(0x9E3779B97F4A7C15) | 1);
    println!("bad_input seed: {seed} (FERRODIS_SEED={seed} replays it)");
    let server = Server::start(&[]);
    let mut c = server.client();
    for i in 0..100 {
        let _: () = c.set(format!("keep:{i}"), i).unwrap();
    }
    let mut rng = Rng(seed);
    for _ in 0..300 {
        let mut s = server.raw();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let stream = random_stream(&mut rng);
        // Streams that would flush or delete are data changes a client may legitimately ask
        // for; keep the check meaningful by never sending them whole.
        let text = String::from_utf8_lossy(&stream).to_ascii_uppercase();
        if text.contains("FLUSH") || text.contains("DEL") {
            continue;
        }
        let _ = s.write_all(&stream);
        let mut sink = [0u8; 4096];
        let _ = s.read(&mut sink);
    }
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    for i in 0..100 {
        let v: i64 = c.get(format!("keep:{i}")).unwrap();
        assert_eq!(v, i, "key keep:{i} changed (seed {seed})");
    }
}

#[test]
fn oversized_lengths_are_refused_before_allocating() {
    let server = Server::start(&[]);
    let mut s = server.raw();
    s.write_all(b"*1\r\n$536870913\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"-ERR Protocol error: invalid bulk length\r\n");
    let mut s = server.raw();
    s.write_all(b"*2147483648\r\n").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        b"-ERR Protocol error: invalid multibulk length\r\n"
    );
}

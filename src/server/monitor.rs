//! MONITOR: every executed command, as one line `+<secs>.<usecs> [<db> <addr>] "arg" ...`,
//! queued to each monitoring connection. Queues are bounded; a monitor that cannot keep up is
//! disconnected, as an output buffer limit would.

use super::state::{Monitor, ServerState};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

/// Lines a monitor may have queued before it is dropped.
const MONITOR_QUEUE: usize = 16 * 1024;

pub fn register(state: &ServerState, id: u64) -> tokio::sync::mpsc::Receiver<Bytes> {
    let (tx, rx) = tokio::sync::mpsc::channel(MONITOR_QUEUE);
    state.monitors.lock().push(Monitor { id, tx });
    state.monitor_count.fetch_add(1, Relaxed);
    rx
}

pub fn unregister(state: &ServerState, id: u64) {
    let mut m = state.monitors.lock();
    let before = m.len();
    m.retain(|mon| mon.id != id);
    state.monitor_count.fetch_sub(before - m.len(), Relaxed);
}

/// Formats one command the way Redis's MONITOR shows it.
pub fn format_line(now_us: u64, db: usize, addr: &str, args: &[Bytes]) -> Bytes {
    let mut line = format!(
        "+{}.{:06} [{} {}]",
        now_us / 1_000_000,
        now_us % 1_000_000,
        db,
        addr
    )
    .into_bytes();
    for a in args {
        line.push(b' ');
        repr(a, &mut line);
    }
    line.extend_from_slice(b"\r\n");
    Bytes::from(line)
}

/// Redis's `sdscatrepr`: a double-quoted string with C-style escapes.
pub fn repr(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            b if b.is_ascii_graphic() || b == b' ' => out.push(b),
            b => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// Sends a line to every monitor; monitors whose queue is full are told to close.
pub fn feed(state: &ServerState, line: Bytes) {
    let monitors = state.monitors.lock();
    for m in monitors.iter() {
        if m.tx.try_send(line.clone()).is_err() {
            if let Some(c) = state.clients.lock().get(&m.id) {
                c.killed.store(true, Relaxed);
                c.kill_signal.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_redis_monitor_output() {
        let args = [
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k\n\"x\"\x01"),
        ];
        let line = format_line(1_700_000_000_000_123, 9, "127.0.0.1:5000", &args);
        assert_eq!(
            &line[..],
            &b"+1700000000.000123 [9 127.0.0.1:5000] \"SET\" \"k\\n\\\"x\\\"\\x01\"\r\n"[..]
        );
    }
}

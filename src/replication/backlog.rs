//! The replication stream and its backlog. Every propagated write becomes RESP bytes appended
//! here, preceded by a `SELECT` whenever the database differs from the previous command's (as
//! Redis's `replicationFeedSlaves` does). The stream offset counts every byte ever appended
//! (`master_repl_offset`); the backlog keeps the last `capacity` bytes so a replica that is
//! behind can read from its own offset.
//!
//! Like Redis, nothing is recorded (and the offset does not move) until the backlog is created
//! for the first replica; Redis never frees it afterwards, and neither do we.
//!
//! Each attached replica also has its own queue of stream bytes not yet taken by its link
//! (its output buffer): appended to with the backlog, so a replica that stops reading falls
//! behind in its queue, bounded by `client-output-buffer-limit replica`, never out of the
//! window.

use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug, Default)]
pub struct Backlog {
    /// Created when the first replica attaches.
    active: bool,
    capacity: usize,
    buf: VecDeque<u8>,
    /// Offset of the last byte appended (Redis's `master_repl_offset`).
    end: u64,
    /// The database the stream last selected; None forces a SELECT before the next command.
    selected_db: Option<usize>,
    /// Output queues of the attached replicas, by client id.
    queues: Vec<(u64, Queue)>,
}

/// Size of one block of a replica queue: the queue's memory is counted in whole blocks, which
/// is what it really holds from the allocator.
const QUEUE_BLOCK: usize = 16 * 1024;

/// A replica's output queue: stream bytes in fixed-size blocks, oldest first.
#[derive(Debug, Default)]
struct Queue {
    blocks: VecDeque<Vec<u8>>,
    len: usize,
}

impl Queue {
    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.blocks.back().map_or(0, |b| b.capacity() - b.len());
            if room == 0 {
                self.blocks.push_back(Vec::with_capacity(QUEUE_BLOCK));
                continue;
            }
            let n = room.min(bytes.len());
            if let Some(last) = self.blocks.back_mut() {
                last.extend_from_slice(&bytes[..n]);
            }
            self.len += n;
            bytes = &bytes[n..];
        }
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let block = self.blocks.pop_front()?;
        self.len -= block.len();
        Some(block)
    }

    /// The blocks and the ring that holds them.
    fn allocated(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Vec<u8>>()
    }
}

impl Backlog {
    pub fn new(capacity: usize) -> Backlog {
        Backlog {
            capacity: capacity.max(1),
            ..Backlog::default()
        }
    }

    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Creates the backlog (first replica). Its first byte will be `end + 1`.
    pub fn activate(&mut self) {
        if !self.active {
            self.active = true;
            self.selected_db = None;
        }
    }

    /// Starts the stream over at `offset` with an empty history (a replica that just loaded
    /// its primary's snapshot continues the primary's stream from there).
    pub fn reset_to(&mut self, offset: u64) {
        self.active = true;
        self.buf.clear();
        self.end = offset;
        self.selected_db = None;
    }

    /// Resizes the window (CONFIG SET repl-backlog-size), dropping the oldest bytes.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.trim();
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// `master_repl_offset`.
    pub fn end_offset(&self) -> u64 {
        self.end
    }

    /// `repl_backlog_first_byte_offset` (Redis reports end + 1 for an empty backlog).
    pub fn first_byte_offset(&self) -> u64 {
        if self.active {
            self.end + 1 - self.buf.len() as u64
        } else {
            0
        }
    }

    /// `repl_backlog_histlen`.
    pub fn history_len(&self) -> usize {
        self.buf.len()
    }

    /// The next command starts with a SELECT (a new replica is about to read from here).
    pub fn force_select(&mut self) {
        self.selected_db = None;
    }

    /// Appends one command executed in `db`. Does nothing until the backlog is active.
    pub fn feed(&mut self, db: usize, argv: &[Bytes]) {
        if !self.active {
            return;
        }
        if self.selected_db != Some(db) {
            let db_arg = Bytes::from(db.to_string());
            self.append_command(&[Bytes::from_static(b"SELECT"), db_arg]);
            self.selected_db = Some(db);
        }
        self.append_command(argv);
    }

    /// Appends raw bytes that are not a command of any database (the periodic PING, a
    /// newline keepalive).
    pub fn feed_raw(&mut self, bytes: &[u8]) {
        if !self.active {
            return;
        }
        self.append(bytes);
    }

    fn append_command(&mut self, argv: &[Bytes]) {
        let mut out = Vec::with_capacity(16 + argv.iter().map(|a| a.len() + 16).sum::<usize>());
        out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
        for a in argv {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.append(&out);
    }

    fn append(&mut self, bytes: &[u8]) {
        for (_, q) in &mut self.queues {
            q.push(bytes);
        }
        self.buf.extend(bytes);
        self.end += bytes.len() as u64;
        self.trim();
    }

    fn trim(&mut self) {
        if self.buf.len() > self.capacity {
            let excess = self.buf.len() - self.capacity;
            self.buf.drain(..excess);
        }
    }

    /// Gives replica `id` a queue holding the stream after offset `after`; false when those
    /// bytes have left the window.
    pub fn attach(&mut self, id: u64, after: u64) -> bool {
        let Some(first) = self.read_after(after, usize::MAX) else {
            return false;
        };
        self.detach(id);
        let mut queue = Queue::default();
        queue.push(&first);
        self.queues.push((id, queue));
        true
    }

    pub fn detach(&mut self, id: u64) {
        if let Some(i) = self.queues.iter().position(|(q, _)| *q == id) {
            self.queues.swap_remove(i);
        }
    }

    /// Takes the oldest queued block for replica `id` (empty when nothing waits).
    pub fn take_queued(&mut self, id: u64) -> Bytes {
        let Some((_, q)) = self.queues.iter_mut().find(|(q, _)| *q == id) else {
            return Bytes::new();
        };
        q.pop().map_or_else(Bytes::new, Bytes::from)
    }

    /// Bytes waiting in replica `id`'s queue.
    pub fn queued_for(&self, id: u64) -> usize {
        self.queues
            .iter()
            .find(|(q, _)| *q == id)
            .map_or(0, |(_, q)| q.len)
    }

    /// Bytes allocated by every replica queue (INFO `mem_clients_slaves`).
    pub fn queued_total(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.allocated()).sum()
    }

    /// Up to `max` bytes of the stream after offset `from` (the offset of the last byte the
    /// reader already has). None when those bytes have left the backlog.
    pub fn read_after(&self, from: u64, max: usize) -> Option<Vec<u8>> {
        if from >= self.end {
            return Some(Vec::new());
        }
        let first = self.end - self.buf.len() as u64; // offset of the byte before buf[0]
        if from < first {
            return None;
        }
        let start = (from - first) as usize;
        let len = (self.buf.len() - start).min(max);
        Some(self.buf.range(start..start + len).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::from(p.to_string())).collect()
    }

    #[test]
    fn a_replica_queue_keeps_what_its_link_has_not_taken_beyond_the_window() {
        let mut b = Backlog::new(16);
        b.activate();
        b.feed(0, &argv(&["SET", "a", "1"]));
        assert!(b.attach(7, b.end_offset()));
        b.feed(0, &argv(&["SET", "b", "2"]));
        b.feed(0, &argv(&["SET", "c", "3"]));
        let queued = b.queued_for(7);
        assert!(queued > 16, "the queue outgrows the window: {queued}");
        assert!(
            b.queued_total() >= QUEUE_BLOCK,
            "memory is counted in whole blocks"
        );
        let all = b.take_queued(7);
        assert_eq!(all.len(), queued);
        assert!(all.starts_with(b"*3\r\n$3\r\nSET\r\n$1\r\nb"));
        assert!(all.ends_with(b"$1\r\nc\r\n$1\r\n3\r\n"));
        b.detach(7);
        assert_eq!(b.queued_total(), 0);
        assert!(b.take_queued(7).is_empty());
        assert!(!b.attach(8, 0), "offset 0 left the window");
    }

    #[test]
    fn nothing_is_recorded_before_activation() {
        let mut b = Backlog::new(1024);
        b.feed(0, &argv(&["SET", "a", "1"]));
        assert_eq!(b.end_offset(), 0);
        assert_eq!(b.first_byte_offset(), 0);
        b.activate();
        assert_eq!(b.first_byte_offset(), 1);
    }

    #[test]
    fn select_precedes_a_change_of_database() {
        let mut b = Backlog::new(1024);
        b.activate();
        b.feed(0, &argv(&["SET", "a", "1"]));
        b.feed(0, &argv(&["DEL", "a"]));
        b.feed(9, &argv(&["DEL", "b"]));
        let all = b.read_after(0, usize::MAX).unwrap();
        assert_eq!(
            String::from_utf8(all).unwrap(),
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
             *2\r\n$3\r\nDEL\r\n$1\r\na\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n9\r\n\
             *2\r\n$3\r\nDEL\r\n$1\r\nb\r\n"
        );
        assert_eq!(b.end_offset(), b.history_len() as u64);
        let before = b.end_offset();
        b.force_select();
        b.feed(9, &argv(&["PING"]));
        assert_eq!(
            b.read_after(before, 100).unwrap(),
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n9\r\n*1\r\n$4\r\nPING\r\n"
        );
    }

    #[test]
    fn readers_behind_the_window_are_refused() {
        let mut b = Backlog::new(8);
        b.activate();
        b.feed_raw(b"0123456789");
        assert_eq!(b.end_offset(), 10);
        assert_eq!(b.history_len(), 8);
        assert_eq!(b.first_byte_offset(), 3);
        assert_eq!(b.read_after(1, 100), None);
        assert_eq!(b.read_after(2, 100).unwrap(), b"23456789");
        assert_eq!(b.read_after(8, 1).unwrap(), b"8");
        assert_eq!(b.read_after(10, 100).unwrap(), b"");
    }
}

//! Pub/Sub: the subscription registry shared by every connection, the per-client mailbox that
//! messages are delivered into, the SUBSCRIBE / PUBLISH / PUBSUB family, and keyspace
//! notifications (`notify-keyspace-events`).
//!
//! Delivery never touches a socket: a publisher encodes the message once per protocol version
//! and appends the bytes to each subscriber's mailbox, then calls the mailbox's waker. The
//! connection task drains its mailbox into its output (before the reply of its own command, so
//! a client that publishes to itself sees the message first, as with Redis; commands that Redis
//! answers before or between their events say so with the `REPLY_BEFORE_EVENTS` flag or with
//! `ReplyCut` marks in the mailbox). A mailbox is the
//! client's pub/sub output buffer: it is bounded by the `pubsub` class of
//! `client-output-buffer-limit`, and overflowing it marks the client to be closed.

use super::blocking::Waker;
use super::context::{ClientState, ExecCtx};
use super::errors;
use super::spec::{acl, flag::*, kflag, CommandSpec as C, KeySpec};
use crate::config::values::{notify, ObufLimit};
use crate::resp::{encode, Reply};
use crate::util::glob_match;
use bytes::{Bytes, BytesMut};
use hashbrown::{HashMap, HashSet};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

type CmdResult = Result<Reply, crate::resp::ErrorReply>;

// ---- mailbox ----

/// Where published messages for one client wait for its connection task.
#[derive(Default)]
pub struct Mailbox {
    inner: Mutex<MailboxInner>,
    /// Something is waiting to be drained (read without the lock on every command).
    pending: AtomicBool,
    /// The client speaks RESP3: messages are push frames.
    resp3: AtomicBool,
    waker: OnceLock<Waker>,
    /// Bytes waiting (mirrors the buffer's length without its lock).
    bytes: AtomicUsize,
    /// The server's total of client memory, kept up to date with `bytes`.
    total: OnceLock<Arc<AtomicUsize>>,
    /// Shard channels the server unsubscribed this client from (its node stopped serving
    /// their slot), for the client's own set to catch up with (`take_dropped`).
    dropped: Mutex<Vec<Bytes>>,
    has_dropped: AtomicBool,
}

#[derive(Default)]
struct MailboxInner {
    buf: BytesMut,
    /// When the buffer first went over the soft limit (and has stayed over since).
    soft_since_ms: Option<u64>,
    overflow: bool,
    /// Where the running command's reply goes among the messages it raised to its own client
    /// (offsets into `buf`), for the few commands Redis answers between two of its events.
    cuts: Vec<(usize, ReplyCut)>,
}

/// A point in the buffered messages where the running command's reply is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCut {
    /// The reply's first `n` frames go here (in reading order: an aggregate's header is one
    /// frame, a bulk string another): what Redis writes before its first event.
    Head(u8),
    /// The reply, or what is left of it after its header, goes here.
    Rest,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("pending", &self.has_pending())
            .finish()
    }
}

impl Mailbox {
    pub fn set_waker(&self, waker: Waker) {
        let _ = self.waker.set(waker);
    }

    /// Counts this mailbox's bytes into `total` (the server's client memory).
    pub fn set_accounting(&self, total: Arc<AtomicUsize>) {
        let _ = self.total.set(total);
    }

    /// Bytes delivered and not yet drained.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Relaxed)
    }

    fn account(&self, old: usize, new: usize) {
        self.bytes.store(new, Relaxed);
        if let Some(total) = self.total.get() {
            if new >= old {
                total.fetch_add(new - old, Relaxed);
            } else {
                total.fetch_sub(old - new, Relaxed);
            }
        }
    }

    /// Updates the client's subscriptions with what the server dropped since last asked.
    pub fn catch_up(&self, subscriptions: &mut Subscriptions) {
        if self.has_dropped.load(Relaxed) && self.has_dropped.swap(false, Relaxed) {
            for channel in std::mem::take(&mut *self.dropped.lock()) {
                subscriptions.shard_channels.remove(&channel);
            }
        }
    }

    pub fn set_resp3(&self, resp3: bool) {
        self.resp3.store(resp3, Relaxed);
    }

    pub fn has_pending(&self) -> bool {
        self.pending.load(Relaxed)
    }

    /// The client went over its output buffer limit and is to be closed.
    pub fn overflowed(&self) -> bool {
        self.inner.lock().overflow
    }

    /// Marks the current end of the buffer as the place for (part of) the running command's
    /// reply; `drain_around` honours it.
    pub fn cut(&self, cut: ReplyCut) {
        let mut inner = self.inner.lock();
        if !inner.overflow {
            let at = inner.buf.len();
            inner.cuts.push((at, cut));
            self.pending.store(true, Relaxed);
        }
    }

    /// Takes everything delivered so far, with `reply` (the running command's encoded reply)
    /// written at the places marked by `cut` (after everything when none is marked). `Err`
    /// when the client overran its limit and must be closed.
    pub fn drain_around(&self, reply: &[u8], out: &mut BytesMut) -> Result<(), Overflow> {
        let mut inner = self.inner.lock();
        if inner.cuts.is_empty() {
            drop(inner);
            self.drain_into(out)?;
            out.extend_from_slice(reply);
            return Ok(());
        }
        let cuts = std::mem::take(&mut inner.cuts);
        self.pending.store(false, Relaxed);
        self.account(inner.buf.len(), 0);
        let buf = std::mem::take(&mut inner.buf);
        inner.soft_since_ms = None;
        drop(inner);
        let (mut at, mut written) = (0, 0);
        for (offset, cut) in cuts {
            out.extend_from_slice(&buf[at..offset]);
            at = offset;
            let end = match cut {
                ReplyCut::Head(n) => head_len(reply, n).max(written),
                ReplyCut::Rest => reply.len(),
            };
            out.extend_from_slice(&reply[written..end]);
            written = end;
        }
        out.extend_from_slice(&buf[at..]);
        out.extend_from_slice(&reply[written..]);
        Ok(())
    }

    /// Takes everything delivered so far; `Err` when the client overran its limit and must be
    /// closed.
    pub fn drain_into(&self, out: &mut BytesMut) -> Result<(), Overflow> {
        let mut inner = self.inner.lock();
        self.pending.store(false, Relaxed);
        self.account(inner.buf.len(), 0);
        inner.cuts.clear();
        if inner.overflow {
            inner.buf = BytesMut::new();
            return Err(Overflow);
        }
        if out.is_empty() {
            std::mem::swap(out, &mut inner.buf);
        } else {
            out.extend_from_slice(&inner.buf);
            inner.buf.clear();
        }
        inner.soft_since_ms = None;
        Ok(())
    }

    /// A CLIENT TRACKING invalidation (`keys` an array of key names, or null for "all"): a
    /// push for a RESP3 client; for a RESP2 client only when it is the target of another's
    /// REDIRECT, as a `__redis__:invalidate` message (RESP2 has no pushes of its own).
    pub fn deliver_invalidation(&self, keys: Reply, redirected: bool) {
        let frame = if self.resp3.load(Relaxed) {
            Frame::new(vec![Reply::bulk_str("invalidate"), keys])
        } else if redirected {
            Frame::new(vec![
                Reply::bulk_str("message"),
                Reply::bulk_str("__redis__:invalidate"),
                keys,
            ])
        } else {
            return;
        };
        self.deliver(&frame, 0, &ObufLimit::default());
    }

    /// Appends one encoded message, applying the output buffer limit. Returns false when the
    /// client is (now) over its limit; the message is then dropped.
    fn deliver(&self, frame: &Frame, now_ms: u64, limit: &ObufLimit) -> bool {
        let resp3 = self.resp3.load(Relaxed);
        let mut inner = self.inner.lock();
        if inner.overflow {
            return false;
        }
        let before = inner.buf.len();
        inner.buf.extend_from_slice(frame.bytes(resp3));
        let len = inner.buf.len() as u64;
        let over = limit.exceeded(len, now_ms, &mut inner.soft_since_ms);
        if over {
            inner.overflow = true;
            inner.buf = BytesMut::new();
            inner.cuts.clear();
        }
        self.account(before, inner.buf.len());
        drop(inner);
        self.pending.store(true, Relaxed);
        if let Some(w) = self.waker.get() {
            w();
        }
        !over
    }
}

/// The length of the first `frames` frames of an encoded reply (all of it when shorter).
fn head_len(reply: &[u8], frames: u8) -> usize {
    let mut at = 0;
    for _ in 0..frames {
        let Some(eol) = reply[at..].windows(2).position(|w| w == b"\r\n") else {
            return reply.len();
        };
        let line = &reply[at..at + eol];
        at += eol + 2;
        if matches!(line.first(), Some(b'$' | b'=' | b'!')) {
            if let Some(n) = crate::util::parse_int(&line[1..]).filter(|n| *n >= 0) {
                at = (at + n as usize + 2).min(reply.len());
            }
        }
    }
    at
}

/// The client went over its `client-output-buffer-limit` and is to be closed.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

/// One message, encoded lazily for each protocol version that receives it.
struct Frame {
    reply: Reply,
    resp2: OnceLock<Bytes>,
    resp3: OnceLock<Bytes>,
}

impl Frame {
    fn new(parts: Vec<Reply>) -> Frame {
        Frame {
            reply: Reply::Push(parts),
            resp2: OnceLock::new(),
            resp3: OnceLock::new(),
        }
    }

    fn bytes(&self, resp3: bool) -> &Bytes {
        let cell = if resp3 { &self.resp3 } else { &self.resp2 };
        cell.get_or_init(|| {
            let mut b = BytesMut::new();
            encode(&self.reply, resp3, &mut b);
            b.freeze()
        })
    }
}

// ---- registry ----

#[derive(Clone)]
struct Subscriber {
    id: u64,
    mailbox: Arc<Mailbox>,
}

#[derive(Default)]
struct Inner {
    channels: HashMap<Bytes, Vec<Subscriber>>,
    patterns: HashMap<Bytes, Vec<Subscriber>>,
    shard_channels: HashMap<Bytes, Vec<Subscriber>>,
}

/// Which of the two channel namespaces (SUBSCRIBE or SSUBSCRIBE).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Global,
    Shard,
}

impl Kind {
    fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Global => "subscribe",
            Kind::Shard => "ssubscribe",
        }
    }
    fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Global => "unsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
    fn message_word(self) -> &'static str {
        match self {
            Kind::Global => "message",
            Kind::Shard => "smessage",
        }
    }
}

/// Every subscription on the server.
#[derive(Default)]
pub struct PubSub {
    inner: RwLock<Inner>,
    /// Channels + patterns + shard channels with at least one subscriber: lets a publish with
    /// no subscriber anywhere skip the lock.
    active: AtomicUsize,
}

impl PubSub {
    pub fn channel_count(&self) -> usize {
        self.inner.read().channels.len()
    }
    pub fn pattern_count(&self) -> usize {
        self.inner.read().patterns.len()
    }
    pub fn shard_channel_count(&self) -> usize {
        self.inner.read().shard_channels.len()
    }

    fn update_active(&self, inner: &Inner) {
        self.active.store(
            inner.channels.len() + inner.patterns.len() + inner.shard_channels.len(),
            Relaxed,
        );
    }

    fn add(&self, kind: Kind, pattern: bool, name: &Bytes, sub: Subscriber) {
        let mut inner = self.inner.write();
        let map = match (kind, pattern) {
            (_, true) => &mut inner.patterns,
            (Kind::Global, false) => &mut inner.channels,
            (Kind::Shard, false) => &mut inner.shard_channels,
        };
        map.entry(name.clone()).or_default().push(sub);
        self.update_active(&inner);
    }

    fn remove(&self, kind: Kind, pattern: bool, name: &[u8], id: u64) {
        let mut inner = self.inner.write();
        let map = match (kind, pattern) {
            (_, true) => &mut inner.patterns,
            (Kind::Global, false) => &mut inner.channels,
            (Kind::Shard, false) => &mut inner.shard_channels,
        };
        if let Some(list) = map.get_mut(name) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                map.remove(name);
            }
        }
        self.update_active(&inner);
    }

    /// Delivers `message` on `channel`: to its subscribers, then (global channels only) to
    /// every client whose pattern matches. Returns how many deliveries were made.
    fn publish(
        &self,
        kind: Kind,
        channel: &Bytes,
        message: &Bytes,
        now_ms: u64,
        limit: &ObufLimit,
    ) -> i64 {
        if self.active.load(Relaxed) == 0 {
            return 0;
        }
        let inner = self.inner.read();
        let mut receivers = 0;
        let channels = match kind {
            Kind::Global => &inner.channels,
            Kind::Shard => &inner.shard_channels,
        };
        if let Some(list) = channels.get(channel) {
            let frame = Frame::new(vec![
                Reply::bulk(Bytes::from_static(kind.message_word().as_bytes())),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ]);
            for s in list {
                s.mailbox.deliver(&frame, now_ms, limit);
                receivers += 1;
            }
        }
        if kind == Kind::Shard {
            return receivers;
        }
        for (pattern, list) in &inner.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let frame = Frame::new(vec![
                Reply::bulk(Bytes::from_static(b"pmessage")),
                Reply::Bulk(pattern.clone()),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(message.clone()),
            ]);
            for s in list {
                s.mailbox.deliver(&frame, now_ms, limit);
                receivers += 1;
            }
        }
        receivers
    }

    fn channel_names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let inner = self.inner.read();
        let map = match kind {
            Kind::Global => &inner.channels,
            Kind::Shard => &inner.shard_channels,
        };
        map.keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    fn subscriber_count(&self, kind: Kind, channel: &[u8]) -> usize {
        let inner = self.inner.read();
        let map = match kind {
            Kind::Global => &inner.channels,
            Kind::Shard => &inner.shard_channels,
        };
        map.get(channel).map_or(0, Vec::len)
    }

    /// The clients among `ids` holding a subscription `allowed(name, is_pattern)` refuses
    /// (ACL SETUSER revoking channels closes them).
    pub fn subscribers_refused(
        &self,
        ids: &[u64],
        allowed: impl Fn(&[u8], bool) -> bool,
    ) -> Vec<u64> {
        let inner = self.inner.read();
        let mut out: Vec<u64> = Vec::new();
        let maps = [
            (&inner.patterns, true),
            (&inner.channels, false),
            (&inner.shard_channels, false),
        ];
        for (map, is_pattern) in maps {
            for (name, subs) in map.iter() {
                if allowed(name, is_pattern) {
                    continue;
                }
                for s in subs {
                    if ids.contains(&s.id) && !out.contains(&s.id) {
                        out.push(s.id);
                    }
                }
            }
        }
        out
    }

    /// The node stopped serving `slot`: every client subscribed to a shard channel of that
    /// slot is unsubscribed from it and told with an `sunsubscribe` message, channel by
    /// channel in name order, each with the count of shard channels the client has left
    /// (Redis's `removeChannelsInSlot`).
    pub fn drop_shard_slot(&self, slot: u16, now_ms: u64, limit: &ObufLimit) {
        if self.active.load(Relaxed) == 0 {
            return;
        }
        let mut inner = self.inner.write();
        let mut channels: Vec<Bytes> = inner
            .shard_channels
            .keys()
            .filter(|c| crate::slot::key_slot(c) == slot)
            .cloned()
            .collect();
        if channels.is_empty() {
            return;
        }
        channels.sort();
        let mut left: HashMap<u64, usize> = HashMap::new();
        for subs in inner.shard_channels.values() {
            for s in subs {
                *left.entry(s.id).or_default() += 1;
            }
        }
        for channel in channels {
            let Some(subs) = inner.shard_channels.remove(&channel) else {
                continue;
            };
            for s in subs {
                let count = left.get_mut(&s.id).map_or(0, |n| {
                    *n -= 1;
                    *n
                });
                let frame = Frame::new(vec![
                    Reply::bulk(Bytes::from_static(b"sunsubscribe")),
                    Reply::Bulk(channel.clone()),
                    Reply::Int(count as i64),
                ]);
                s.mailbox.dropped.lock().push(channel.clone());
                s.mailbox.has_dropped.store(true, Relaxed);
                s.mailbox.deliver(&frame, now_ms, limit);
            }
        }
        self.update_active(&inner);
    }

    /// Removes every subscription of a client that is going away (no confirmations).
    pub fn forget_client(&self, client: &mut ClientState) {
        let subs = std::mem::take(&mut client.subscriptions);
        for c in &subs.channels {
            self.remove(Kind::Global, false, c, client.id);
        }
        for p in &subs.patterns {
            self.remove(Kind::Global, true, p, client.id);
        }
        for c in &subs.shard_channels {
            self.remove(Kind::Shard, false, c, client.id);
        }
    }
}

/// What one client is subscribed to.
#[derive(Default, Debug)]
pub struct Subscriptions {
    pub channels: HashSet<Bytes>,
    /// In subscription order, as Redis keeps them.
    pub patterns: Vec<Bytes>,
    pub shard_channels: HashSet<Bytes>,
}

impl Subscriptions {
    /// Channels plus patterns (the count SUBSCRIBE and PSUBSCRIBE confirmations carry).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
    /// Any subscription at all: the client is in Pub/Sub mode.
    pub fn active(&self) -> bool {
        self.count() + self.shard_channels.len() > 0
    }
    fn kind_count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Global => self.count(),
            Kind::Shard => self.shard_channels.len(),
        }
    }
}

// ---- keyspace notifications ----

/// Publishes a keyspace event for `key` in `db` (Redis's `notifyKeyspaceEvent`): on
/// `__keyspace@<db>__:<key>` with the event name, and on `__keyevent@<db>__:<event>` with the
/// key, as `notify-keyspace-events` selects.
pub fn notify_keyspace_event(
    server: &crate::server::state::ServerState,
    class: u32,
    event: &str,
    db: usize,
    key: &[u8],
    now_ms: u64,
) {
    if server.pubsub.active.load(Relaxed) == 0 {
        return;
    }
    let config = server.config();
    let flags = config.notify_keyspace_events.flags;
    if flags & class == 0 {
        return;
    }
    let limit = config.client_output_buffer_limit.pubsub;
    if flags & notify::KEYSPACE != 0 {
        let mut chan = format!("__keyspace@{db}__:").into_bytes();
        chan.extend_from_slice(key);
        server.pubsub.publish(
            Kind::Global,
            &Bytes::from(chan),
            &Bytes::copy_from_slice(event.as_bytes()),
            now_ms,
            &limit,
        );
    }
    if flags & notify::KEYEVENT != 0 {
        let chan = format!("__keyevent@{db}__:{event}");
        server.pubsub.publish(
            Kind::Global,
            &Bytes::from(chan),
            &Bytes::copy_from_slice(key),
            now_ms,
            &limit,
        );
    }
}

// ---- commands ----

const PS: u32 = acl::PUBSUB;
const SHARD_CHANNELS: &[KeySpec] = &[KeySpec::range(1, -1, 1, kflag::NOT_KEY)];
const SHARD_CHANNEL: &[KeySpec] = &[KeySpec::range(1, 0, 1, kflag::NOT_KEY)];
const SUBSCRIBE_FLAGS: u32 = PUBSUB | NOSCRIPT | LOADING | STALE;

pub const COMMANDS: &[C] = &[
    C::new(
        "subscribe",
        -2,
        SUBSCRIBE_FLAGS,
        PS,
        &[],
        "pubsub",
        "2.0.0",
        subscribe,
    ),
    C::new(
        "unsubscribe",
        -1,
        SUBSCRIBE_FLAGS,
        PS,
        &[],
        "pubsub",
        "2.0.0",
        unsubscribe,
    ),
    C::new(
        "psubscribe",
        -2,
        SUBSCRIBE_FLAGS,
        PS,
        &[],
        "pubsub",
        "2.0.0",
        psubscribe,
    ),
    C::new(
        "punsubscribe",
        -1,
        SUBSCRIBE_FLAGS,
        PS,
        &[],
        "pubsub",
        "2.0.0",
        punsubscribe,
    ),
    C::new(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        PS,
        &[],
        "pubsub",
        "2.0.0",
        publish,
    ),
    C::new(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        PS,
        SHARD_CHANNEL,
        "pubsub",
        "7.0.0",
        spublish,
    )
    .scope(super::spec::Scope::None),
    C::new(
        "ssubscribe",
        -2,
        SUBSCRIBE_FLAGS,
        PS,
        SHARD_CHANNELS,
        "pubsub",
        "7.0.0",
        ssubscribe,
    )
    .scope(super::spec::Scope::None),
    C::new(
        "sunsubscribe",
        -1,
        SUBSCRIBE_FLAGS,
        PS,
        SHARD_CHANNELS,
        "pubsub",
        "7.0.0",
        sunsubscribe,
    )
    .scope(super::spec::Scope::None),
    C::new("pubsub", -2, 0, 0, &[], "pubsub", "2.8.0", pubsub_container)
        .subcommands(PUBSUB_SUBCOMMANDS),
];

const PUBSUB_SUBCOMMANDS: &[C] = &[
    C::new(
        "channels",
        -2,
        PUBSUB | LOADING | STALE,
        PS,
        &[],
        "pubsub",
        "2.8.0",
        pubsub_channels,
    ),
    C::new(
        "numsub",
        -2,
        PUBSUB | LOADING | STALE,
        PS,
        &[],
        "pubsub",
        "2.8.0",
        pubsub_numsub,
    ),
    C::new(
        "numpat",
        2,
        PUBSUB | LOADING | STALE,
        PS,
        &[],
        "pubsub",
        "2.8.0",
        pubsub_numpat,
    ),
    C::new(
        "shardchannels",
        -2,
        PUBSUB | LOADING | STALE,
        PS,
        &[],
        "pubsub",
        "7.0.0",
        pubsub_shardchannels,
    ),
    C::new(
        "shardnumsub",
        -2,
        PUBSUB | LOADING | STALE,
        PS,
        &[],
        "pubsub",
        "7.0.0",
        pubsub_shardnumsub,
    ),
    C::new(
        "help",
        2,
        LOADING | STALE,
        0,
        &[],
        "pubsub",
        "6.2.0",
        pubsub_help,
    ),
];

/// The commands a RESP2 client in Pub/Sub mode may still run.
pub fn allowed_in_subscribed_mode(fullname: &str) -> bool {
    matches!(
        fullname,
        "subscribe"
            | "ssubscribe"
            | "psubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

fn confirmation(word: &'static str, name: Option<&Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk(Bytes::from_static(word.as_bytes())),
        name.map_or(Reply::Null, |n| Reply::Bulk(n.clone())),
        Reply::Int(count as i64),
    ])
}

fn subscriber(ctx: &ExecCtx) -> Subscriber {
    Subscriber {
        id: ctx.client.id,
        mailbox: ctx.client.mailbox.clone(),
    }
}

fn subscribe_channels(ctx: &mut ExecCtx, kind: Kind, names: &[Bytes]) -> Reply {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let set = match kind {
            Kind::Global => &mut ctx.client.subscriptions.channels,
            Kind::Shard => &mut ctx.client.subscriptions.shard_channels,
        };
        if set.insert(name.clone()) {
            let sub = subscriber(ctx);
            ctx.server.pubsub.add(kind, false, name, sub);
        }
        let count = ctx.client.subscriptions.kind_count(kind);
        out.push(confirmation(kind.subscribe_word(), Some(name), count));
    }
    Reply::Multi(out)
}

fn unsubscribe_channels(ctx: &mut ExecCtx, kind: Kind, names: &[Bytes]) -> Reply {
    let names: Vec<Bytes> = if names.is_empty() {
        let set = match kind {
            Kind::Global => &ctx.client.subscriptions.channels,
            Kind::Shard => &ctx.client.subscriptions.shard_channels,
        };
        set.iter().cloned().collect()
    } else {
        names.to_vec()
    };
    let mut out = Vec::with_capacity(names.len().max(1));
    for name in &names {
        let set = match kind {
            Kind::Global => &mut ctx.client.subscriptions.channels,
            Kind::Shard => &mut ctx.client.subscriptions.shard_channels,
        };
        if set.remove(name) {
            ctx.server.pubsub.remove(kind, false, name, ctx.client.id);
        }
        let count = ctx.client.subscriptions.kind_count(kind);
        out.push(confirmation(kind.unsubscribe_word(), Some(name), count));
    }
    if out.is_empty() {
        let count = ctx.client.subscriptions.kind_count(kind);
        out.push(confirmation(kind.unsubscribe_word(), None, count));
    }
    Reply::Multi(out)
}

fn subscribe(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(subscribe_channels(ctx, Kind::Global, &args[1..]))
}

fn unsubscribe(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(unsubscribe_channels(ctx, Kind::Global, &args[1..]))
}

fn ssubscribe(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if ctx.deny_blocking {
        return Err(crate::resp::ErrorReply::fixed(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    Ok(subscribe_channels(ctx, Kind::Shard, &args[1..]))
}

fn sunsubscribe(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(unsubscribe_channels(ctx, Kind::Shard, &args[1..]))
}

fn psubscribe(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for pattern in &args[1..] {
        if !ctx.client.subscriptions.patterns.contains(pattern) {
            ctx.client.subscriptions.patterns.push(pattern.clone());
            let sub = subscriber(ctx);
            ctx.server.pubsub.add(Kind::Global, true, pattern, sub);
        }
        let count = ctx.client.subscriptions.count();
        out.push(confirmation("psubscribe", Some(pattern), count));
    }
    Ok(Reply::Multi(out))
}

fn punsubscribe(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let patterns: Vec<Bytes> = if args.len() == 1 {
        ctx.client.subscriptions.patterns.clone()
    } else {
        args[1..].to_vec()
    };
    let mut out = Vec::with_capacity(patterns.len().max(1));
    for pattern in &patterns {
        let list = &mut ctx.client.subscriptions.patterns;
        if let Some(i) = list.iter().position(|p| p == pattern) {
            list.remove(i);
            ctx.server
                .pubsub
                .remove(Kind::Global, true, pattern, ctx.client.id);
        }
        let count = ctx.client.subscriptions.count();
        out.push(confirmation("punsubscribe", Some(pattern), count));
    }
    if out.is_empty() {
        let count = ctx.client.subscriptions.count();
        out.push(confirmation("punsubscribe", None, count));
    }
    Ok(Reply::Multi(out))
}

fn publish_kind(ctx: &mut ExecCtx, kind: Kind, args: &[Bytes]) -> CmdResult {
    let limit = ctx.server.config().client_output_buffer_limit.pubsub;
    let receivers = ctx
        .server
        .pubsub
        .publish(kind, &args[1], &args[2], ctx.now_ms, &limit);
    if let Some(cluster) = ctx.server.cluster.get() {
        // In cluster mode the message also goes over the bus (to every node, or for
        // SPUBLISH to the nodes serving this shard); the count stays local, as in Redis.
        let input = crate::cluster::machine::Input::Publish {
            shard: kind == Kind::Shard,
            channel: args[1].to_vec(),
            message: args[2].to_vec(),
        };
        cluster.step(ctx.server, ctx.now_ms, input);
    } else {
        ctx.force_propagation();
    }
    Ok(Reply::Int(receivers))
}

/// A PUBLISH or SPUBLISH that reached us over the cluster bus: delivered to the local
/// subscribers only.
/// The node stopped serving these slots: their shard channels' subscribers are dropped.
pub fn drop_shard_slots(server: &crate::server::state::ServerState, slots: &[u16], now_ms: u64) {
    if server.pubsub.shard_channel_count() == 0 {
        return;
    }
    let limit = server.config().client_output_buffer_limit.pubsub;
    for &slot in slots {
        server.pubsub.drop_shard_slot(slot, now_ms, &limit);
    }
}

pub fn deliver_from_bus(
    server: &crate::server::state::ServerState,
    shard: bool,
    channel: Vec<u8>,
    message: Vec<u8>,
    now_ms: u64,
) {
    let limit = server.config().client_output_buffer_limit.pubsub;
    let kind = if shard { Kind::Shard } else { Kind::Global };
    server.pubsub.publish(
        kind,
        &Bytes::from(channel),
        &Bytes::from(message),
        now_ms,
        &limit,
    );
}

fn publish(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    publish_kind(ctx, Kind::Global, args)
}

fn spublish(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    publish_kind(ctx, Kind::Shard, args)
}

fn pubsub_container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn channel_list(ctx: &ExecCtx, kind: Kind, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::subcommand_syntax_error(args));
    }
    let names = ctx
        .server
        .pubsub
        .channel_names(kind, args.get(2).map(|p| &p[..]));
    Ok(Reply::Array(names.into_iter().map(Reply::Bulk).collect()))
}

fn numsub(ctx: &ExecCtx, kind: Kind, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity((args.len() - 2) * 2);
    for channel in &args[2..] {
        out.push(Reply::Bulk(channel.clone()));
        out.push(Reply::Int(
            ctx.server.pubsub.subscriber_count(kind, channel) as i64,
        ));
    }
    Ok(Reply::Array(out))
}

fn pubsub_channels(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    channel_list(ctx, Kind::Global, args)
}

fn pubsub_shardchannels(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    channel_list(ctx, Kind::Shard, args)
}

fn pubsub_numsub(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    numsub(ctx, Kind::Global, args)
}

fn pubsub_shardnumsub(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    numsub(ctx, Kind::Shard, args)
}

fn pubsub_numpat(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.server.pubsub.pattern_count() as i64))
}

fn pubsub_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(super::debug::help_reply(
        &args[0],
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::state::ServerState;

    fn message(mailbox: &Mailbox, text: &str) {
        let frame = Frame::new(vec![Reply::bulk_str(text)]);
        mailbox.deliver(&frame, 0, &ObufLimit::default());
    }

    #[test]
    fn head_len_counts_headers_and_whole_bulk_strings() {
        let reply = b"*2\r\n$2\r\nzm\r\n*1\r\n*2\r\n$1\r\na\r\n,1\r\n";
        assert_eq!(head_len(reply, 0), 0);
        assert_eq!(head_len(reply, 1), 4);
        assert_eq!(head_len(reply, 2), 12);
        assert_eq!(head_len(reply, 3), 16);
        assert_eq!(head_len(reply, 200), reply.len());
        assert_eq!(head_len(b"$5\r\nab", 1), 6);
    }

    #[test]
    fn reply_goes_where_the_command_cut_its_events() {
        let mailbox = Mailbox::default();
        mailbox.set_resp3(true);
        message(&mailbox, "early");
        mailbox.cut(ReplyCut::Head(1));
        message(&mailbox, "pop");
        mailbox.cut(ReplyCut::Rest);
        message(&mailbox, "del");
        let mut out = BytesMut::new();
        mailbox.drain_around(b"*1\r\n:7\r\n", &mut out).unwrap();
        assert_eq!(
            &out[..],
            &b">1\r\n$5\r\nearly\r\n*1\r\n>1\r\n$3\r\npop\r\n:7\r\n>1\r\n$3\r\ndel\r\n"[..]
        );
        assert!(!mailbox.has_pending());
        assert_eq!(mailbox.bytes(), 0);
        // Without a cut the reply follows every message; a plain drain forgets cuts.
        message(&mailbox, "a");
        mailbox.cut(ReplyCut::Rest);
        let mut ignored = BytesMut::new();
        mailbox.drain_into(&mut ignored).unwrap();
        message(&mailbox, "b");
        let mut out = BytesMut::new();
        mailbox.drain_around(b":1\r\n", &mut out).unwrap();
        assert_eq!(&out[..], &b">1\r\n$1\r\nb\r\n:1\r\n"[..]);
    }

    fn client(id: u64) -> ClientState {
        ClientState::new(
            id,
            "127.0.0.1:1".into(),
            "127.0.0.1:6379".into(),
            8,
            0,
            true,
        )
    }

    use crate::commands::test_support::dispatch as run;

    fn drained(c: &ClientState) -> Vec<u8> {
        let mut out = BytesMut::new();
        c.mailbox.drain_into(&mut out).unwrap();
        out.to_vec()
    }

    const NO_LIMIT: ObufLimit = ObufLimit {
        hard_limit_bytes: 0,
        soft_limit_bytes: 0,
        soft_limit_seconds: 0,
    };

    #[test]
    fn confirmations_count_channels_and_patterns_together() {
        let server = ServerState::for_tests();
        let mut c = client(1);
        let Reply::Multi(frames) = run(&server, &mut c, &["subscribe", "a", "b", "a"]) else {
            panic!("SUBSCRIBE answers one frame per channel");
        };
        let counts: Vec<_> = frames
            .iter()
            .map(|f| match f {
                Reply::Push(p) => p[2].clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(counts, vec![Reply::Int(1), Reply::Int(2), Reply::Int(2)]);
        let Reply::Multi(frames) = run(&server, &mut c, &["psubscribe", "x*"]) else {
            panic!()
        };
        assert_eq!(
            frames[0],
            confirmation("psubscribe", Some(&Bytes::from_static(b"x*")), 3)
        );
        // Shard channels are counted on their own.
        let Reply::Multi(frames) = run(&server, &mut c, &["ssubscribe", "s"]) else {
            panic!()
        };
        assert_eq!(
            frames[0],
            confirmation("ssubscribe", Some(&Bytes::from_static(b"s")), 1)
        );
        assert_eq!(server.pubsub.channel_count(), 2);
        assert_eq!(server.pubsub.pattern_count(), 1);
        assert_eq!(server.pubsub.shard_channel_count(), 1);
        server.pubsub.forget_client(&mut c);
        assert_eq!(server.pubsub.channel_count(), 0);
        assert_eq!(server.pubsub.pattern_count(), 0);
        assert!(!c.subscriptions.active());
    }

    #[test]
    fn unsubscribe_with_nothing_subscribed_still_answers() {
        let server = ServerState::for_tests();
        let mut c = client(1);
        assert_eq!(
            run(&server, &mut c, &["unsubscribe"]),
            Reply::Multi(vec![confirmation("unsubscribe", None, 0)])
        );
        assert_eq!(
            run(&server, &mut c, &["punsubscribe"]),
            Reply::Multi(vec![confirmation("punsubscribe", None, 0)])
        );
    }

    #[test]
    fn resp2_subscribed_clients_may_only_run_the_pubsub_set() {
        let server = ServerState::for_tests();
        let mut c = client(1);
        run(&server, &mut c, &["subscribe", "a"]);
        assert_eq!(
            run(&server, &mut c, &["get", "x"]),
            Reply::Error(crate::resp::ErrorReply::fixed(
                "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ))
        );
        assert_eq!(
            run(&server, &mut c, &["ping"]),
            Reply::Array(vec![Reply::bulk(&b"pong"[..]), Reply::bulk(&b""[..])])
        );
        c.resp3 = true;
        assert_eq!(run(&server, &mut c, &["ping"]), Reply::simple("PONG"));
    }

    #[test]
    fn publish_reaches_channel_then_pattern_subscribers_in_their_protocol() {
        let server = ServerState::for_tests();
        let (mut a, mut b, mut p) = (client(1), client(2), client(3));
        b.mailbox.set_resp3(true);
        run(&server, &mut a, &["subscribe", "news"]);
        run(&server, &mut b, &["subscribe", "news"]);
        run(&server, &mut p, &["psubscribe", "n?ws", "x*"]);
        let mut publisher = client(4);
        assert_eq!(
            run(&server, &mut publisher, &["publish", "news", "hi"]),
            Reply::Int(3)
        );
        assert_eq!(
            drained(&a),
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            drained(&b),
            b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            drained(&p),
            b"*4\r\n$8\r\npmessage\r\n$4\r\nn?ws\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        // Shard channels ignore patterns.
        run(&server, &mut a, &["ssubscribe", "news"]);
        assert_eq!(
            run(&server, &mut publisher, &["spublish", "news", "s"]),
            Reply::Int(1)
        );
        assert_eq!(
            drained(&a),
            b"*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$1\r\ns\r\n"
        );
        assert!(drained(&p).is_empty());
    }

    #[test]
    fn mailbox_hard_and_soft_limits() {
        let frame = Frame::new(vec![Reply::bulk(vec![b'x'; 100])]);
        let hard = ObufLimit {
            hard_limit_bytes: 250,
            ..NO_LIMIT
        };
        let m = Mailbox::default();
        assert!(m.deliver(&frame, 0, &hard));
        assert!(m.deliver(&frame, 0, &hard));
        assert!(!m.deliver(&frame, 0, &hard));
        assert!(m.overflowed());
        assert!(m.drain_into(&mut BytesMut::new()).is_err());

        let soft = ObufLimit {
            soft_limit_bytes: 150,
            soft_limit_seconds: 2,
            ..NO_LIMIT
        };
        let m = Mailbox::default();
        assert!(m.deliver(&frame, 1_000, &soft));
        // Over the soft limit from t=1000 on: tolerated for two seconds.
        assert!(m.deliver(&frame, 1_000, &soft));
        assert!(m.deliver(&frame, 3_000, &soft));
        assert!(!m.deliver(&frame, 4_500, &soft));
        // Draining resets the soft-limit clock.
        let m = Mailbox::default();
        m.deliver(&frame, 0, &soft);
        m.deliver(&frame, 0, &soft);
        m.drain_into(&mut BytesMut::new()).unwrap();
        assert!(m.deliver(&frame, 10_000, &soft));
        assert!(m.deliver(&frame, 10_000, &NO_LIMIT));
    }

    #[test]
    fn keyspace_events_follow_the_configured_classes() {
        let server = ServerState::for_tests();
        let mut sub = client(1);
        run(&server, &mut sub, &["psubscribe", "*"]);
        let mut c = client(2);
        run(&server, &mut c, &["set", "k", "v"]);
        assert!(drained(&sub).is_empty(), "notifications are off by default");
        run(
            &server,
            &mut c,
            &["config", "set", "notify-keyspace-events", "El"],
        );
        run(&server, &mut c, &["set", "k", "v"]);
        run(&server, &mut c, &["rpush", "l", "a"]);
        assert_eq!(
            drained(&sub),
            b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$20\r\n__keyevent@0__:rpush\r\n$1\r\nl\r\n"
        );
        run(
            &server,
            &mut c,
            &["config", "set", "notify-keyspace-events", "Kn"],
        );
        run(&server, &mut c, &["set", "fresh", "v"]);
        run(&server, &mut c, &["set", "fresh", "w"]);
        assert_eq!(
            drained(&sub),
            b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$20\r\n__keyspace@0__:fresh\r\n$3\r\nnew\r\n"
        );
    }
}

#[cfg(test)]
mod slot_drop_tests {
    use super::*;

    fn sub(id: u64) -> Subscriber {
        Subscriber {
            id,
            mailbox: Arc::new(Mailbox::default()),
        }
    }

    #[test]
    fn a_lost_slot_unsubscribes_its_shard_channels_with_counts_left() {
        let pubsub = PubSub::default();
        let a = sub(1);
        // "{s}x" and "{s}y" share a slot; "other" is elsewhere.
        let slot = crate::slot::key_slot(b"{s}x");
        assert_ne!(crate::slot::key_slot(b"other"), slot);
        for name in ["{s}y", "{s}x", "other"] {
            pubsub.add(Kind::Shard, false, &Bytes::from(name), a.clone());
        }
        pubsub.drop_shard_slot(slot, 0, &ObufLimit::default());
        assert_eq!(pubsub.shard_channel_count(), 1);
        let mut out = BytesMut::new();
        a.mailbox.drain_into(&mut out).unwrap();
        assert_eq!(
            &out[..],
            &b"*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{s}x\r\n:2\r\n\
               *3\r\n$12\r\nsunsubscribe\r\n$4\r\n{s}y\r\n:1\r\n"[..]
        );
        let mut mine = Subscriptions::default();
        for name in ["{s}x", "{s}y", "other"] {
            mine.shard_channels.insert(Bytes::from(name));
        }
        a.mailbox.catch_up(&mut mine);
        assert_eq!(mine.shard_channels.len(), 1);
        assert!(mine.shard_channels.contains(&Bytes::from("other")));
    }
}

//! Bytes ⇄ [`Message`] for the cluster bus, mirroring Redis 7.0.15's reader
//! (`clusterReadHandler`: 8 bytes, then signature and minimum length, then the whole frame) and
//! its per-type length check in `clusterProcessPacket` (the later `clusterIsValidPacket`).
//!
//! Errors come in two kinds, as in Redis: framing errors close the link ([`next_frame`]);
//! a frame that is complete but malformed is dropped and the link kept ([`decode`]).
//! Where Redis would read past the frame (a ping extension shorter than its own 8-byte record
//! header, a gossip count beyond `totlen`, an extension length ≥ 64 KiB that Redis truncates
//! to 16 bits, a PUBLISH/MODULE body missing its length words, lengths whose sum wraps a u32)
//! this decoder rejects the frame instead.

use std::fmt;

use super::message::*;
use crate::cluster::node::{NodeFlags, NodeId, NODE_ID_LEN};

/// Why bytes from a bus link are not a message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BusError {
    /// The first four bytes are not `RCmb`. Closes the link.
    BadSignature,
    /// `totlen` is below the 2256-byte header. Closes the link.
    FrameTooShort { totlen: u32 },
    /// `totlen` exceeds the limit the caller allows. Closes the link.
    FrameTooLong { totlen: u32, limit: usize },
    /// The slice handed to `decode` is not exactly `totlen` bytes.
    FrameLenMismatch { totlen: u32, len: usize },
    /// `ver` is not 1; Redis silently ignores such frames.
    UnsupportedVersion(u16),
    /// `totlen` differs from the length the type, counts and inner lengths imply.
    LengthMismatch {
        type_code: u16,
        totlen: u32,
        expected: u64,
    },
    /// A ping extension record whose length is not a multiple of 8.
    ExtensionPadding { ext_len: u32 },
    /// A ping extension record running past the end of the frame.
    ExtensionOverrun { ext_len: u32, remaining: usize },
    /// A ping extension record too short for its header or its type's fixed payload.
    ExtensionTooShort { ext_type: u16, ext_len: u32 },
}

impl BusError {
    /// Framing errors leave the stream unsynchronised, so the link must go (Redis:
    /// "Bad message length or signature received from Cluster bus"); the others only drop
    /// the one frame.
    pub fn closes_link(&self) -> bool {
        matches!(
            self,
            BusError::BadSignature | BusError::FrameTooShort { .. } | BusError::FrameTooLong { .. }
        )
    }
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::BadSignature => write!(f, "bad signature on the cluster bus"),
            BusError::FrameTooShort { totlen } => write!(f, "bus frame length {totlen} too short"),
            BusError::FrameTooLong { totlen, limit } => {
                write!(f, "bus frame length {totlen} exceeds the limit {limit}")
            }
            BusError::FrameLenMismatch { totlen, len } => {
                write!(f, "bus frame says {totlen} bytes but {len} were given")
            }
            BusError::UnsupportedVersion(v) => write!(f, "bus protocol version {v} unsupported"),
            BusError::LengthMismatch {
                type_code,
                totlen,
                expected,
            } => write!(
                f,
                "bus packet of type {type_code} has length {totlen} but expected length {expected}"
            ),
            BusError::ExtensionPadding { ext_len } => {
                write!(f, "ping extension without proper padding ({ext_len} bytes)")
            }
            BusError::ExtensionOverrun { ext_len, remaining } => write!(
                f,
                "ping extension of {ext_len} bytes exceeds the {remaining} bytes left in the packet"
            ),
            BusError::ExtensionTooShort { ext_type, ext_len } => {
                write!(
                    f,
                    "ping extension of type {ext_type} too short ({ext_len} bytes)"
                )
            }
        }
    }
}

impl std::error::Error for BusError {}

/// A frame limit that admits any PUBLISH Redis would accept from a client: channel and message
/// are each at most `proto-max-bulk-len` bytes. Redis itself bounds bus frames only by memory;
/// this is the bound the driver should pass to [`next_frame`].
pub fn frame_limit_for_proto_max_bulk_len(proto_max_bulk_len: u64) -> usize {
    let limit = ((HEADER_LEN + PUBLISH_FIXED_LEN) as u64)
        .saturating_add(proto_max_bulk_len.saturating_mul(2));
    usize::try_from(limit.min(u64::from(u32::MAX))).unwrap_or(usize::MAX)
}

/// Splits one frame off the front of a link's read buffer. `Ok(None)`: read more. `Ok(Some(n))`:
/// `buf[..n]` is a whole frame for [`decode`]. Needs 8 bytes (signature + `totlen`) to judge;
/// `totlen` must be at least the header and at most `max_frame_len`.
pub fn next_frame(buf: &[u8], max_frame_len: usize) -> Result<Option<usize>, BusError> {
    let Some(totlen) = frame_totlen(buf)? else {
        return Ok(None);
    };
    let len = usize::try_from(totlen).unwrap_or(usize::MAX);
    if len > max_frame_len {
        return Err(BusError::FrameTooLong {
            totlen,
            limit: max_frame_len,
        });
    }
    Ok((buf.len() >= len).then_some(len))
}

/// The checked `totlen` once 8 bytes are present.
fn frame_totlen(buf: &[u8]) -> Result<Option<u32>, BusError> {
    let mut r = Reader::new(buf);
    let (Some(sig), Some(totlen)) = (r.take(4), r.u32()) else {
        return Ok(None);
    };
    if sig != SIGNATURE {
        return Err(BusError::BadSignature);
    }
    if (totlen as usize) < HEADER_LEN {
        return Err(BusError::FrameTooShort { totlen });
    }
    Ok(Some(totlen))
}

/// Decodes one whole frame (as split by [`next_frame`]), validating lengths as Redis does.
pub fn decode(frame: &[u8]) -> Result<Message, BusError> {
    let totlen = frame_totlen(frame)?.ok_or(BusError::FrameLenMismatch {
        totlen: 0,
        len: frame.len(),
    })?;
    if totlen as usize != frame.len() {
        return Err(BusError::FrameLenMismatch {
            totlen,
            len: frame.len(),
        });
    }
    let (head, body) = frame.split_at(HEADER_LEN);
    let raw = RawHeader::read(head).ok_or(BusError::FrameTooShort { totlen })?;
    if raw.ver != PROTOCOL_VERSION {
        return Err(BusError::UnsupportedVersion(raw.ver));
    }
    let body = decode_body(&raw, body, totlen)?;
    Ok(Message::new(raw.header, body))
}

/// The header plus the derived fields the encoder computes and the decoder needs.
struct RawHeader {
    ver: u16,
    type_code: u16,
    count: u16,
    extensions: u16,
    header: Header,
}

impl RawHeader {
    /// Reads the 2256 header bytes; `None` only if `head` is shorter (never, after the checks).
    fn read(head: &[u8]) -> Option<RawHeader> {
        let mut r = Reader::new(head);
        r.take(8)?; // sig + totlen, already checked
        let (ver, port, type_code, count) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
        let (current_epoch, config_epoch, offset) = (r.u64()?, r.u64()?, r.u64()?);
        let sender = NodeId(r.array()?);
        let myslots = Box::new(r.array::<SLOTS_BITMAP_LEN>()?);
        let slaveof = r.array::<NODE_ID_LEN>()?;
        let myip = BusIp(r.array()?);
        let extensions = r.u16()?;
        r.take(30)?; // notused1
        let (pport, cport, flags) = (r.u16()?, r.u16()?, NodeFlags(r.u16()?));
        let (state, mflags) = (r.u8()?, r.array()?);
        let header = Header {
            port,
            current_epoch,
            config_epoch,
            offset,
            sender,
            myslots,
            slaveof: (slaveof != [0; NODE_ID_LEN]).then_some(NodeId(slaveof)),
            myip,
            pport,
            cport,
            flags,
            state,
            mflags,
        };
        Some(RawHeader {
            ver,
            type_code,
            count,
            extensions,
            header,
        })
    }
}

fn decode_body(raw: &RawHeader, body: &[u8], totlen: u32) -> Result<Body, BusError> {
    let mismatch = |expected: u64| BusError::LengthMismatch {
        type_code: raw.type_code,
        totlen,
        expected,
    };
    let exact = |len: usize| {
        if body.len() == len {
            Ok(())
        } else {
            Err(mismatch((HEADER_LEN + len) as u64))
        }
    };
    let Some(kind) = MessageType::from_code(raw.type_code) else {
        return Ok(Body::Unknown {
            type_code: raw.type_code,
            data: body.to_vec(),
        });
    };
    Ok(match kind {
        MessageType::Ping => Body::Ping(decode_ping(raw, body, totlen)?),
        MessageType::Pong => Body::Pong(decode_ping(raw, body, totlen)?),
        MessageType::Meet => Body::Meet(decode_ping(raw, body, totlen)?),
        MessageType::Fail => {
            exact(FAIL_BODY_LEN)?;
            let nodename = NodeId(
                Reader::new(body)
                    .array()
                    .ok_or(mismatch((HEADER_LEN + FAIL_BODY_LEN) as u64))?,
            );
            Body::Fail { nodename }
        }
        MessageType::Publish => Body::Publish(decode_publish(body).map_err(mismatch)?),
        MessageType::PublishShard => Body::PublishShard(decode_publish(body).map_err(mismatch)?),
        MessageType::FailoverAuthRequest => exact(0).map(|()| Body::FailoverAuthRequest)?,
        MessageType::FailoverAuthAck => exact(0).map(|()| Body::FailoverAuthAck)?,
        MessageType::MfStart => exact(0).map(|()| Body::MfStart)?,
        MessageType::Update => {
            exact(UPDATE_BODY_LEN)?;
            decode_update(body).ok_or(mismatch((HEADER_LEN + UPDATE_BODY_LEN) as u64))?
        }
        MessageType::Module => decode_module(body).map_err(mismatch)?,
    })
}

/// PUBLISH body; on a length mismatch, the expected frame length.
fn decode_publish(body: &[u8]) -> Result<PublishBody, u64> {
    let mut r = Reader::new(body);
    let (Some(channel_len), Some(message_len)) = (r.u32(), r.u32()) else {
        return Err((HEADER_LEN + PUBLISH_FIXED_LEN) as u64);
    };
    let expected =
        (HEADER_LEN + PUBLISH_FIXED_LEN) as u64 + u64::from(channel_len) + u64::from(message_len);
    if r.remaining() as u64 != u64::from(channel_len) + u64::from(message_len) {
        return Err(expected);
    }
    let channel = r.take(channel_len as usize).ok_or(expected)?.to_vec();
    let message = r.rest().to_vec();
    Ok(PublishBody { channel, message })
}

fn decode_update(body: &[u8]) -> Option<Body> {
    let mut r = Reader::new(body);
    let config_epoch = r.u64()?;
    let nodename = NodeId(r.array()?);
    let slots = Box::new(r.array::<SLOTS_BITMAP_LEN>()?);
    Some(Body::Update {
        config_epoch,
        nodename,
        slots,
    })
}

/// MODULE body; on a length mismatch, the expected frame length.
fn decode_module(body: &[u8]) -> Result<Body, u64> {
    let mut r = Reader::new(body);
    let fixed = (HEADER_LEN + MODULE_FIXED_LEN) as u64;
    let (Some(module_id), Some(len), Some(module_type)) = (r.array::<8>(), r.u32(), r.u8()) else {
        return Err(fixed);
    };
    if r.remaining() as u64 != u64::from(len) {
        return Err(fixed + u64::from(len));
    }
    Ok(Body::Module {
        module_id,
        module_type,
        payload: r.rest().to_vec(),
    })
}

/// Gossip section then, only when EXT_DATA is set, `extensions` records; their lengths must
/// add up to `totlen` exactly (extensions without EXT_DATA are not counted, as in Redis).
fn decode_ping(raw: &RawHeader, body: &[u8], totlen: u32) -> Result<PingBody, BusError> {
    let gossip_len = usize::from(raw.count) * GOSSIP_ENTRY_LEN;
    let mut expected = (HEADER_LEN + gossip_len) as u64;
    let mismatch = |expected: u64| BusError::LengthMismatch {
        type_code: raw.type_code,
        totlen,
        expected,
    };
    if body.len() < gossip_len {
        return Err(mismatch(expected));
    }
    let (gossip_bytes, mut rest) = body.split_at(gossip_len);
    let gossip = gossip_bytes
        .chunks_exact(GOSSIP_ENTRY_LEN)
        .filter_map(decode_gossip)
        .collect();
    let mut extensions = Vec::new();
    if raw.header.has_mflag(mflags::EXT_DATA) {
        for _ in 0..raw.extensions {
            let (ext, len) = decode_ext(rest)?;
            extensions.push(ext);
            rest = rest.get(len..).unwrap_or_default();
            expected += len as u64;
        }
    }
    if !rest.is_empty() {
        return Err(mismatch(expected));
    }
    Ok(PingBody { gossip, extensions })
}

/// One 104-byte gossip entry (`None` only for a shorter slice, which `chunks_exact` never gives).
fn decode_gossip(entry: &[u8]) -> Option<GossipEntry> {
    let mut r = Reader::new(entry);
    let nodename = NodeId(r.array()?);
    let (ping_sent, pong_received) = (r.u32()?, r.u32()?);
    let ip = BusIp(r.array()?);
    let (port, cport, flags, pport) = (r.u16()?, r.u16()?, NodeFlags(r.u16()?), r.u16()?);
    Some(GossipEntry {
        nodename,
        ping_sent,
        pong_received,
        ip,
        port,
        cport,
        flags,
        pport,
    })
}

/// One extension record at the front of `rest`, and its length.
fn decode_ext(rest: &[u8]) -> Result<(PingExt, usize), BusError> {
    let mut r = Reader::new(rest);
    let (Some(ext_len), Some(ext_type), Some(_unused)) = (r.u32(), r.u16(), r.u16()) else {
        return Err(BusError::ExtensionOverrun {
            ext_len: 0,
            remaining: rest.len(),
        });
    };
    if ext_len % 8 != 0 {
        return Err(BusError::ExtensionPadding { ext_len });
    }
    let len = ext_len as usize;
    if len > rest.len() {
        return Err(BusError::ExtensionOverrun {
            ext_len,
            remaining: rest.len(),
        });
    }
    let too_short = BusError::ExtensionTooShort { ext_type, ext_len };
    let payload = rest.get(EXT_HEADER_LEN..len).ok_or(too_short.clone())?;
    let ext = decode_ext_payload(ext_type, payload).ok_or(too_short)?;
    Ok((ext, len))
}

fn decode_ext_payload(ext_type: u16, payload: &[u8]) -> Option<PingExt> {
    let mut r = Reader::new(payload);
    Some(match ext_type {
        ext_type::HOSTNAME => PingExt::Hostname(c_string(payload)),
        ext_type::HUMAN_NODENAME => PingExt::HumanNodename(c_string(payload)),
        ext_type::FORGOTTEN_NODE => PingExt::ForgottenNode {
            name: NodeId(r.array()?),
            ttl: r.u64()?,
        },
        ext_type::SHARDID => PingExt::ShardId(NodeId(r.array()?)),
        ext_type::CLIENT_IPV4 => PingExt::ClientIpv4(c_string(payload)),
        ext_type::CLIENT_IPV6 => PingExt::ClientIpv6(c_string(payload)),
        other => PingExt::Unknown {
            ext_type: other,
            payload: payload.to_vec(),
        },
    })
}

/// The bytes before the first NUL (the whole payload if the sender forgot the terminator).
fn c_string(payload: &[u8]) -> Vec<u8> {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    payload[..end].to_vec()
}

/// Encodes `msg` as one frame, byte for byte as Redis 7.x lays it out: big-endian integers,
/// zeroed reserved bytes, `count`/`extensions`/`totlen` derived from the body, extension
/// records padded to 8 bytes, and EXT_DATA added to `mflags[0]` when extensions are present.
///
/// # Panics
/// If the message cannot be represented: more than 65535 gossip entries or extensions, or a
/// frame longer than `u32::MAX` bytes. The cluster machine never builds such messages.
pub fn encode(msg: &Message) -> Vec<u8> {
    let body = encode_body(&msg.body);
    let totlen = u32::try_from(HEADER_LEN + body.len()).expect("bus frame longer than 4 GiB");
    let (count, extensions) = match msg.ping_body() {
        Some(p) => (counted(p.gossip.len()), counted(p.extensions.len())),
        None => (0, 0),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    let fields = Derived {
        totlen,
        type_code: msg.type_code(),
        count,
        extensions,
    };
    encode_header(&mut out, &msg.header, &fields);
    out.extend_from_slice(&body);
    out
}

fn counted(n: usize) -> u16 {
    u16::try_from(n).expect("more than 65535 gossip entries or extensions")
}

/// The header fields the encoder computes rather than takes from [`Header`].
struct Derived {
    totlen: u32,
    type_code: u16,
    count: u16,
    extensions: u16,
}

fn encode_header(out: &mut Vec<u8>, h: &Header, d: &Derived) {
    out.extend_from_slice(&SIGNATURE);
    out.extend_from_slice(&d.totlen.to_be_bytes());
    for v in [PROTOCOL_VERSION, h.port, d.type_code, d.count] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for v in [h.current_epoch, h.config_epoch, h.offset] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&h.sender.0);
    out.extend_from_slice(&h.myslots[..]);
    out.extend_from_slice(h.slaveof.as_ref().map_or(&[0; NODE_ID_LEN], |id| &id.0));
    out.extend_from_slice(&h.myip.0);
    out.extend_from_slice(&d.extensions.to_be_bytes());
    out.extend_from_slice(&[0; 30]);
    for v in [h.pport, h.cport, h.flags.0] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.push(h.state);
    let mut mflags = h.mflags;
    if d.extensions > 0 {
        mflags[0] |= mflags::EXT_DATA;
    }
    out.extend_from_slice(&mflags);
}

fn encode_body(body: &Body) -> Vec<u8> {
    let mut out = Vec::new();
    match body {
        Body::Ping(p) | Body::Pong(p) | Body::Meet(p) => encode_ping(&mut out, p),
        Body::Fail { nodename } => out.extend_from_slice(&nodename.0),
        Body::Publish(p) | Body::PublishShard(p) => encode_publish(&mut out, p),
        Body::FailoverAuthRequest | Body::FailoverAuthAck | Body::MfStart => {}
        Body::Update {
            config_epoch,
            nodename,
            slots,
        } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(&nodename.0);
            out.extend_from_slice(&slots[..]);
        }
        Body::Module {
            module_id,
            module_type,
            payload,
        } => {
            out.extend_from_slice(module_id);
            out.extend_from_slice(&wire_len(payload.len()).to_be_bytes());
            out.push(*module_type);
            out.extend_from_slice(payload);
        }
        Body::Unknown { data, .. } => out.extend_from_slice(data),
    }
    out
}

fn wire_len(n: usize) -> u32 {
    u32::try_from(n).expect("bus payload longer than 4 GiB")
}

fn encode_publish(out: &mut Vec<u8>, p: &PublishBody) {
    out.extend_from_slice(&wire_len(p.channel.len()).to_be_bytes());
    out.extend_from_slice(&wire_len(p.message.len()).to_be_bytes());
    out.extend_from_slice(&p.channel);
    out.extend_from_slice(&p.message);
}

fn encode_ping(out: &mut Vec<u8>, p: &PingBody) {
    for g in &p.gossip {
        out.extend_from_slice(&g.nodename.0);
        out.extend_from_slice(&g.ping_sent.to_be_bytes());
        out.extend_from_slice(&g.pong_received.to_be_bytes());
        out.extend_from_slice(&g.ip.0);
        for v in [g.port, g.cport, g.flags.0, g.pport, 0] {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
    for ext in &p.extensions {
        encode_ext(out, ext);
    }
}

/// One record: length (header included, multiple of 8), type, unused, payload, zero padding.
/// Strings get their NUL terminator before padding, as Redis writes them.
fn encode_ext(out: &mut Vec<u8>, ext: &PingExt) {
    let mut payload = Vec::new();
    match ext {
        PingExt::Hostname(s)
        | PingExt::HumanNodename(s)
        | PingExt::ClientIpv4(s)
        | PingExt::ClientIpv6(s) => {
            payload.extend_from_slice(s);
            payload.push(0);
        }
        PingExt::ForgottenNode { name, ttl } => {
            payload.extend_from_slice(&name.0);
            payload.extend_from_slice(&ttl.to_be_bytes());
        }
        PingExt::ShardId(id) => payload.extend_from_slice(&id.0),
        PingExt::Unknown { payload: p, .. } => payload.extend_from_slice(p),
    }
    let padded = payload.len().div_ceil(8) * 8;
    out.extend_from_slice(&wire_len(EXT_HEADER_LEN + padded).to_be_bytes());
    out.extend_from_slice(&ext.ext_type().to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&payload);
    out.resize(out.len() + padded - payload.len(), 0);
}

/// A bounds-checked big-endian cursor: every read is `None` past the end, never a panic.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

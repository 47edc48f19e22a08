//! The typed cluster-bus messages: the 2256-byte header every frame carries (Redis's
//! `clusterMsg` without its data union), the bodies of the eleven message types, gossip
//! entries (`clusterMsgDataGossip`) and ping extensions (`clusterMsgPingExt`, 7.0–7.2 plus
//! Valkey 8's client-address records). Wire-level constants live here too, so `codec.rs` and
//! the cluster machine share one vocabulary. Nothing here touches bytes on a socket.

use std::fmt;

use crate::cluster::node::{NodeFlags, NodeId};

/// Every frame starts with these four bytes ("Redis Cluster message bus").
pub const SIGNATURE: [u8; 4] = *b"RCmb";
/// The only protocol version Redis 7.x speaks; frames with another `ver` are ignored.
pub const PROTOCOL_VERSION: u16 = 1;
/// Size of the header without body (`CLUSTERMSG_MIN_LEN`); the smallest valid `totlen`.
pub const HEADER_LEN: usize = 2256;
/// Size of one gossip entry in a PING/PONG/MEET body.
pub const GOSSIP_ENTRY_LEN: usize = 104;
/// Bytes of the 16384-slot bitmap (`CLUSTER_SLOTS/8`).
pub const SLOTS_BITMAP_LEN: usize = 2048;
/// Width of the NUL-terminated IP fields (`NET_IP_STR_LEN`, i.e. INET6_ADDRSTRLEN).
pub const NET_IP_STR_LEN: usize = 46;
/// FAIL body: the failing node's id.
pub const FAIL_BODY_LEN: usize = 40;
/// UPDATE body: configEpoch (8) + nodename (40) + slots bitmap (2048).
pub const UPDATE_BODY_LEN: usize = 8 + 40 + SLOTS_BITMAP_LEN;
/// PUBLISH/PUBLISHSHARD body before the channel and message bytes: two u32 lengths.
pub const PUBLISH_FIXED_LEN: usize = 8;
/// MODULE body before the payload: module_id (8) + len (4) + type (1).
pub const MODULE_FIXED_LEN: usize = 13;
/// Every ping extension record starts with length (4) + type (2) + unused (2).
pub const EXT_HEADER_LEN: usize = 8;

/// The slot bitmap as it travels: slot `s` is bit `s & 7` (LSB first) of byte `s >> 3`.
pub type SlotBitmap = [u8; SLOTS_BITMAP_LEN];

/// An all-clear slot bitmap on the heap (the header is moved around a lot; 2 KiB is boxed).
pub fn empty_slots() -> Box<SlotBitmap> {
    Box::new([0; SLOTS_BITMAP_LEN])
}

/// Whether `slot` is claimed in `bitmap`; slots beyond 16383 are never claimed.
pub fn slot_is_set(bitmap: &SlotBitmap, slot: u16) -> bool {
    bitmap
        .get(usize::from(slot >> 3))
        .is_some_and(|byte| byte & (1 << (slot & 7)) != 0)
}

/// Claims `slot` in `bitmap` (slots beyond 16383 are ignored).
pub fn set_slot(bitmap: &mut SlotBitmap, slot: u16) {
    if let Some(byte) = bitmap.get_mut(usize::from(slot >> 3)) {
        *byte |= 1 << (slot & 7);
    }
}

/// Bits of `mflags[0]` (`CLUSTERMSG_FLAG0_*`).
pub mod mflags {
    /// A master in a manual failover has paused its clients: `offset` is final.
    pub const PAUSED: u8 = 0x01;
    /// A replica's FAILOVER_AUTH_REQUEST during a manual failover: vote although the master is up.
    pub const FORCEACK: u8 = 0x02;
    /// The PING/PONG/MEET carries ping extensions; receivers parse them only when this is set.
    pub const EXT_DATA: u8 = 0x04;
}

/// `state` byte of the header: the sender's view of the cluster.
pub const CLUSTER_STATE_OK: u8 = 0;
/// `state` byte of the header when the sender thinks the cluster is down.
pub const CLUSTER_STATE_FAIL: u8 = 1;

/// Message type codes (`CLUSTERMSG_TYPE_*`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum MessageType {
    Ping = 0,
    Pong = 1,
    Meet = 2,
    Fail = 3,
    Publish = 4,
    FailoverAuthRequest = 5,
    FailoverAuthAck = 6,
    Update = 7,
    MfStart = 8,
    Module = 9,
    PublishShard = 10,
}

impl MessageType {
    /// All known types in code order (`CLUSTERMSG_TYPE_COUNT` = 11).
    pub const ALL: [MessageType; 11] = [
        MessageType::Ping,
        MessageType::Pong,
        MessageType::Meet,
        MessageType::Fail,
        MessageType::Publish,
        MessageType::FailoverAuthRequest,
        MessageType::FailoverAuthAck,
        MessageType::Update,
        MessageType::MfStart,
        MessageType::Module,
        MessageType::PublishShard,
    ];

    pub fn code(self) -> u16 {
        self as u16
    }

    pub fn from_code(code: u16) -> Option<MessageType> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The name CLUSTER INFO uses in `cluster_stats_messages_<name>_sent/received`.
    pub fn stats_name(self) -> &'static str {
        match self {
            MessageType::Ping => "ping",
            MessageType::Pong => "pong",
            MessageType::Meet => "meet",
            MessageType::Fail => "fail",
            MessageType::Publish => "publish",
            MessageType::FailoverAuthRequest => "auth-req",
            MessageType::FailoverAuthAck => "auth-ack",
            MessageType::Update => "update",
            MessageType::MfStart => "mfstart",
            MessageType::Module => "module",
            MessageType::PublishShard => "publishshard",
        }
    }
}

/// A NUL-terminated, zero-padded 46-byte IP field (`char ip[NET_IP_STR_LEN]`), kept as the
/// raw bytes so a frame re-encodes exactly; `text()` gives the address before the NUL.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BusIp(pub [u8; NET_IP_STR_LEN]);

impl BusIp {
    /// All zeros: "no announced address, use the socket peer address".
    pub const EMPTY: BusIp = BusIp([0; NET_IP_STR_LEN]);

    /// The field for `text`; `None` if it contains a NUL or does not fit with its terminator.
    pub fn new(text: &[u8]) -> Option<BusIp> {
        if text.len() >= NET_IP_STR_LEN || text.contains(&0) {
            return None;
        }
        let mut field = [0; NET_IP_STR_LEN];
        field[..text.len()].copy_from_slice(text);
        Some(BusIp(field))
    }

    /// The address bytes before the first NUL (all 46 bytes if a peer sent no NUL).
    pub fn text(&self) -> &[u8] {
        let end = self
            .0
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(NET_IP_STR_LEN);
        &self.0[..end]
    }

    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }
}

impl Default for BusIp {
    fn default() -> Self {
        BusIp::EMPTY
    }
}

impl fmt::Debug for BusIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.text()))
    }
}

/// The header every bus frame carries. `sig`, `totlen`, `ver`, `type`, `count` and
/// `extensions` are not fields: the encoder derives them from the body.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Sender's primary client port (TLS port under `tls-cluster yes`).
    pub port: u16,
    pub current_epoch: u64,
    /// The sender's configEpoch, or its master's when the sender is a replica.
    pub config_epoch: u64,
    /// Replication offset: master_repl_offset, or the replica's processed offset.
    pub offset: u64,
    pub sender: NodeId,
    /// Slots served by the sender, or by its master when the sender is a replica.
    pub myslots: Box<SlotBitmap>,
    /// The sender's master; all-zero bytes on the wire mean "I am a master".
    pub slaveof: Option<NodeId>,
    /// `cluster-announce-ip`, or empty to let the receiver use the socket address.
    pub myip: BusIp,
    /// Secondary client port (plain port when `port` is the TLS port; else TLS port or 0).
    pub pport: u16,
    /// Cluster bus port.
    pub cport: u16,
    /// The sender's own flags word (always MYSELF plus MASTER or SLAVE from Redis).
    pub flags: NodeFlags,
    /// `CLUSTER_STATE_OK` or `CLUSTER_STATE_FAIL` from the sender's point of view.
    pub state: u8,
    /// Message flags; only `mflags[0]` has meaning (see [`mflags`]).
    pub mflags: [u8; 3],
}

impl Header {
    /// A header from `sender` with every other field zero (a master with no slots, epoch 0).
    pub fn new(sender: NodeId) -> Header {
        Header {
            port: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            myslots: empty_slots(),
            slaveof: None,
            myip: BusIp::EMPTY,
            pport: 0,
            cport: 0,
            flags: NodeFlags(0),
            state: CLUSTER_STATE_OK,
            mflags: [0; 3],
        }
    }

    pub fn has_mflag(&self, bit: u8) -> bool {
        self.mflags[0] & bit != 0
    }
}

/// Prints `myslots` as slot ranges: 2048 raw bytes would bury every failing assertion.
impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("port", &self.port)
            .field("current_epoch", &self.current_epoch)
            .field("config_epoch", &self.config_epoch)
            .field("offset", &self.offset)
            .field("sender", &self.sender)
            .field("myslots", &format_args!("[{}]", slot_ranges(&self.myslots)))
            .field("slaveof", &self.slaveof)
            .field("myip", &self.myip)
            .field("pport", &self.pport)
            .field("cport", &self.cport)
            .field("flags", &self.flags)
            .field("state", &self.state)
            .field("mflags", &self.mflags)
            .finish()
    }
}

/// Claimed slots as `a-b` ranges and single slots, space separated (CLUSTER NODES style).
pub fn slot_ranges(bitmap: &SlotBitmap) -> String {
    let mut out = Vec::new();
    let mut slot: u32 = 0;
    while slot < 16384 {
        if !slot_is_set(bitmap, slot as u16) {
            slot += 1;
            continue;
        }
        let start = slot;
        while slot + 1 < 16384 && slot_is_set(bitmap, (slot + 1) as u16) {
            slot += 1;
        }
        out.push(if start == slot {
            start.to_string()
        } else {
            format!("{start}-{slot}")
        });
        slot += 1;
    }
    out.join(" ")
}

/// One gossip entry: what the sender knows about another node (`clusterMsgDataGossip`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GossipEntry {
    pub nodename: NodeId,
    /// The sender's pending-ping time for that node, in seconds (0 = none pending).
    pub ping_sent: u32,
    /// The sender's last pong time from that node, in seconds.
    pub pong_received: u32,
    pub ip: BusIp,
    pub port: u16,
    pub cport: u16,
    pub flags: NodeFlags,
    pub pport: u16,
}

/// Ping extension type codes (`CLUSTERMSG_EXT_TYPE_*`).
pub mod ext_type {
    pub const HOSTNAME: u16 = 0;
    pub const HUMAN_NODENAME: u16 = 1;
    pub const FORGOTTEN_NODE: u16 = 2;
    pub const SHARDID: u16 = 3;
    /// Valkey 8 only.
    pub const CLIENT_IPV4: u16 = 4;
    /// Valkey 8 only.
    pub const CLIENT_IPV6: u16 = 5;
}

/// One ping extension record. String payloads are the bytes before the NUL terminator.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PingExt {
    /// `cluster-announce-hostname` (7.0+). Absence in a PING clears the peer's copy.
    Hostname(Vec<u8>),
    /// `cluster-announce-human-nodename` (7.2+).
    HumanNodename(Vec<u8>),
    /// A node in the sender's forget blacklist, with the seconds left (7.2+).
    ForgottenNode { name: NodeId, ttl: u64 },
    /// The sender's shard id (7.2+).
    ShardId(NodeId),
    /// Valkey 8's announced client IPv4 address.
    ClientIpv4(Vec<u8>),
    /// Valkey 8's announced client IPv6 address.
    ClientIpv6(Vec<u8>),
    /// A type this codec does not know; the payload is kept whole (padding included) so the
    /// record re-encodes byte for byte. Redis logs and skips these.
    Unknown { ext_type: u16, payload: Vec<u8> },
}

impl PingExt {
    pub fn ext_type(&self) -> u16 {
        match self {
            PingExt::Hostname(_) => ext_type::HOSTNAME,
            PingExt::HumanNodename(_) => ext_type::HUMAN_NODENAME,
            PingExt::ForgottenNode { .. } => ext_type::FORGOTTEN_NODE,
            PingExt::ShardId(_) => ext_type::SHARDID,
            PingExt::ClientIpv4(_) => ext_type::CLIENT_IPV4,
            PingExt::ClientIpv6(_) => ext_type::CLIENT_IPV6,
            PingExt::Unknown { ext_type, .. } => *ext_type,
        }
    }
}

/// Body of PING, PONG and MEET: the gossip section, then the extensions.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PingBody {
    pub gossip: Vec<GossipEntry>,
    pub extensions: Vec<PingExt>,
}

/// Body of PUBLISH and PUBLISHSHARD.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PublishBody {
    pub channel: Vec<u8>,
    pub message: Vec<u8>,
}

/// The body of a frame, one variant per `CLUSTERMSG_TYPE_*` (Redis's `clusterMsgData` union).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    Ping(PingBody),
    Pong(PingBody),
    Meet(PingBody),
    /// The node the sender declares failed.
    Fail {
        nodename: NodeId,
    },
    Publish(PublishBody),
    FailoverAuthRequest,
    FailoverAuthAck,
    /// "This is the slot configuration of `nodename` at `config_epoch`."
    Update {
        config_epoch: u64,
        nodename: NodeId,
        slots: Box<SlotBitmap>,
    },
    MfStart,
    /// Module cluster API message. `module_id` is opaque (Redis does not byte-swap it).
    Module {
        module_id: [u8; 8],
        module_type: u8,
        payload: Vec<u8>,
    },
    PublishShard(PublishBody),
    /// A type code Redis 7.0 does not know (11 and above): the frame is accepted (its header
    /// still applies, e.g. epochs) but its body is ignored. `data` is everything after the
    /// header. Building one with a known code makes a frame that decodes as that type.
    Unknown {
        type_code: u16,
        data: Vec<u8>,
    },
}

/// A whole bus frame: header plus typed body (Redis's `clusterMsg`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

impl Message {
    pub fn new(header: Header, body: Body) -> Message {
        Message { header, body }
    }

    pub fn ping(header: Header, gossip: Vec<GossipEntry>, extensions: Vec<PingExt>) -> Message {
        Message::new(header, Body::Ping(PingBody { gossip, extensions }))
    }

    pub fn pong(header: Header, gossip: Vec<GossipEntry>, extensions: Vec<PingExt>) -> Message {
        Message::new(header, Body::Pong(PingBody { gossip, extensions }))
    }

    pub fn meet(header: Header, gossip: Vec<GossipEntry>, extensions: Vec<PingExt>) -> Message {
        Message::new(header, Body::Meet(PingBody { gossip, extensions }))
    }

    pub fn fail(header: Header, nodename: NodeId) -> Message {
        Message::new(header, Body::Fail { nodename })
    }

    pub fn publish(header: Header, channel: Vec<u8>, message: Vec<u8>) -> Message {
        Message::new(header, Body::Publish(PublishBody { channel, message }))
    }

    pub fn publish_shard(header: Header, channel: Vec<u8>, message: Vec<u8>) -> Message {
        Message::new(header, Body::PublishShard(PublishBody { channel, message }))
    }

    pub fn update(
        header: Header,
        config_epoch: u64,
        nodename: NodeId,
        slots: Box<SlotBitmap>,
    ) -> Message {
        let body = Body::Update {
            config_epoch,
            nodename,
            slots,
        };
        Message::new(header, body)
    }

    /// The `type` field this message travels with.
    pub fn type_code(&self) -> u16 {
        self.body.type_code()
    }

    /// The known type, or `None` for [`Body::Unknown`].
    pub fn message_type(&self) -> Option<MessageType> {
        self.body.message_type()
    }

    /// The gossip and extensions of a PING, PONG or MEET.
    pub fn ping_body(&self) -> Option<&PingBody> {
        match &self.body {
            Body::Ping(b) | Body::Pong(b) | Body::Meet(b) => Some(b),
            _ => None,
        }
    }
}

impl Body {
    /// The known type, or `None` for [`Body::Unknown`].
    pub fn message_type(&self) -> Option<MessageType> {
        Some(match self {
            Body::Ping(_) => MessageType::Ping,
            Body::Pong(_) => MessageType::Pong,
            Body::Meet(_) => MessageType::Meet,
            Body::Fail { .. } => MessageType::Fail,
            Body::Publish(_) => MessageType::Publish,
            Body::FailoverAuthRequest => MessageType::FailoverAuthRequest,
            Body::FailoverAuthAck => MessageType::FailoverAuthAck,
            Body::Update { .. } => MessageType::Update,
            Body::MfStart => MessageType::MfStart,
            Body::Module { .. } => MessageType::Module,
            Body::PublishShard(_) => MessageType::PublishShard,
            Body::Unknown { .. } => return None,
        })
    }

    /// The `type` field: the known type's code, or the code an unknown body arrived with.
    pub fn type_code(&self) -> u16 {
        match self {
            Body::Unknown { type_code, .. } => *type_code,
            known => known.message_type().map_or(0, MessageType::code),
        }
    }
}

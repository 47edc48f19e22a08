//! Specification tests for the bus codec: header offsets from cluster.h's static asserts,
//! per-type frame lengths, Redis's length checks, real frames captured from redis-server 7.0.15
//! (tests/fixtures/bus, see capture.py there), and property tests that the decoder is total.

use proptest::prelude::*;

use super::codec::*;
use super::message::*;
use crate::cluster::node::{NodeFlags, NodeId};

const LIMIT: usize = 1 << 20;

fn id(c: u8) -> NodeId {
    NodeId([c; 40])
}

/// A header whose every field holds a distinct, recognisable value.
fn sample_header() -> Header {
    let mut h = Header::new(id(b'a'));
    h.port = 0x1122;
    h.current_epoch = 0x0102_0304_0506_0708;
    h.config_epoch = 0x1112_1314_1516_1718;
    h.offset = 0x2122_2324_2526_2728;
    set_slot(&mut h.myslots, 0);
    set_slot(&mut h.myslots, 16383);
    h.slaveof = Some(id(b'b'));
    h.myip = BusIp::new(b"10.0.0.1").unwrap();
    h.pport = 0x3344;
    h.cport = 0x5566;
    h.flags = NodeFlags(NodeFlags::SLAVE | NodeFlags::MYSELF);
    h.state = CLUSTER_STATE_FAIL;
    h.mflags = [mflags::PAUSED, 0, 0];
    h
}

fn gossip(c: u8) -> GossipEntry {
    GossipEntry {
        nodename: id(c),
        ping_sent: 1_700_000_000,
        pong_received: 1_700_000_001,
        ip: BusIp::new(b"127.0.0.1").unwrap(),
        port: 7000,
        cport: 17000,
        flags: NodeFlags(NodeFlags::MASTER | NodeFlags::PFAIL),
        pport: 0,
    }
}

fn all_extensions() -> Vec<PingExt> {
    vec![
        PingExt::Hostname(b"host-1.example".to_vec()),
        PingExt::HumanNodename(b"cache-5".to_vec()),
        PingExt::ForgottenNode {
            name: id(b'f'),
            ttl: 57,
        },
        PingExt::ShardId(id(b'5')),
        PingExt::ClientIpv4(b"192.168.1.10".to_vec()),
        PingExt::ClientIpv6(b"::1".to_vec()),
        PingExt::Unknown {
            ext_type: 99,
            payload: vec![1, 2, 3, 4, 5, 6, 7, 8],
        },
    ]
}

/// The sample header as a frame with extensions decodes: EXT_DATA set by the encoder.
fn ext_header() -> Header {
    let mut h = sample_header();
    h.mflags[0] |= mflags::EXT_DATA;
    h
}

fn every_message() -> Vec<Message> {
    let h = sample_header;
    let mut slots = empty_slots();
    set_slot(&mut slots, 5000);
    vec![
        Message::ping(
            ext_header(),
            vec![gossip(b'c'), gossip(b'd')],
            all_extensions(),
        ),
        Message::pong(
            ext_header(),
            vec![gossip(b'c')],
            vec![PingExt::ShardId(id(b'9'))],
        ),
        Message::meet(h(), vec![], vec![]),
        Message::fail(h(), id(b'e')),
        Message::publish(h(), b"news".to_vec(), b"hello".to_vec()),
        Message::new(h(), Body::FailoverAuthRequest),
        Message::new(h(), Body::FailoverAuthAck),
        Message::update(h(), 42, id(b'c'), slots),
        Message::new(h(), Body::MfStart),
        Message::new(
            h(),
            Body::Module {
                module_id: *b"modid123",
                module_type: 7,
                payload: b"xyz".to_vec(),
            },
        ),
        Message::publish_shard(h(), b"ch".to_vec(), Vec::new()),
        Message::new(
            h(),
            Body::Unknown {
                type_code: 11,
                data: vec![9; 5],
            },
        ),
    ]
}

fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

fn be32(frame: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(frame[at..at + 4].try_into().unwrap())
}

fn be64(frame: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(frame[at..at + 8].try_into().unwrap())
}

fn set_be32(frame: &mut [u8], at: usize, v: u32) {
    frame[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn set_be16(frame: &mut [u8], at: usize, v: u16) {
    frame[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Sets totlen to the slice's length, as a sender that lies consistently would.
fn fix_totlen(frame: &mut [u8]) {
    let len = frame.len() as u32;
    set_be32(frame, 4, len);
}

#[test]
fn header_fields_sit_at_the_offsets_of_cluster_h() {
    let msg = Message::ping(sample_header(), vec![gossip(b'c')], vec![]);
    let f = encode(&msg);
    assert_eq!(&f[0..4], b"RCmb"); // sig
    assert_eq!(be32(&f, 4) as usize, f.len()); // totlen
    assert_eq!(be16(&f, 8), 1); // ver
    assert_eq!(be16(&f, 10), 0x1122); // port
    assert_eq!(be16(&f, 12), MessageType::Ping.code()); // type
    assert_eq!(be16(&f, 14), 1); // count
    assert_eq!(be64(&f, 16), 0x0102_0304_0506_0708); // currentEpoch
    assert_eq!(be64(&f, 24), 0x1112_1314_1516_1718); // configEpoch
    assert_eq!(be64(&f, 32), 0x2122_2324_2526_2728); // offset
    assert_eq!(&f[40..80], &[b'a'; 40]); // sender
    assert_eq!(f[80], 0x01); // myslots: slot 0 is bit 0 of byte 0
    assert_eq!(f[80 + 2047], 0x80); // slot 16383 is bit 7 of byte 2047
    assert_eq!(&f[2128..2168], &[b'b'; 40]); // slaveof
    assert_eq!(&f[2168..2177], b"10.0.0.1\0"); // myip
    assert_eq!(be16(&f, 2214), 0); // extensions
    assert_eq!(&f[2216..2246], &[0; 30]); // notused1
    assert_eq!(be16(&f, 2246), 0x3344); // pport
    assert_eq!(be16(&f, 2248), 0x5566); // cport
    assert_eq!(be16(&f, 2250), NodeFlags::SLAVE | NodeFlags::MYSELF); // flags
    assert_eq!(f[2252], CLUSTER_STATE_FAIL); // state
    assert_eq!(&f[2253..2256], &[mflags::PAUSED, 0, 0]); // mflags
    assert_eq!(&f[2256..2296], &[b'c'; 40]); // data: first gossip entry
}

#[test]
fn gossip_entry_fields_sit_at_their_offsets() {
    let f = encode(&Message::ping(sample_header(), vec![gossip(b'c')], vec![]));
    let g = &f[HEADER_LEN..];
    assert_eq!(g.len(), GOSSIP_ENTRY_LEN);
    assert_eq!(be32(g, 40), 1_700_000_000); // ping_sent
    assert_eq!(be32(g, 44), 1_700_000_001); // pong_received
    assert_eq!(&g[48..58], b"127.0.0.1\0"); // ip
    assert_eq!(be16(g, 94), 7000); // port
    assert_eq!(be16(g, 96), 17000); // cport
    assert_eq!(be16(g, 98), NodeFlags::MASTER | NodeFlags::PFAIL); // flags
    assert_eq!(be16(g, 100), 0); // pport
    assert_eq!(be16(g, 102), 0); // notused1
}

#[test]
fn a_master_sends_an_all_zero_slaveof() {
    let mut h = sample_header();
    h.slaveof = None;
    let f = encode(&Message::new(h, Body::MfStart));
    assert_eq!(&f[2128..2168], &[0; 40]);
    assert_eq!(decode(&f).unwrap().header.slaveof, None);
}

#[test]
fn every_message_type_round_trips() {
    for msg in every_message() {
        let frame = encode(&msg);
        assert_eq!(next_frame(&frame, LIMIT), Ok(Some(frame.len())));
        let back = decode(&frame).unwrap_or_else(|e| panic!("{msg:?}: {e}"));
        assert_eq!(back, msg);
        assert_eq!(encode(&back), frame);
    }
}

#[test]
fn frame_lengths_follow_the_per_type_formulas() {
    let lens: Vec<(u16, usize)> = every_message()
        .iter()
        .map(|m| (m.type_code(), encode(m).len()))
        .collect();
    let ping_exts = 24 + 16 + 56 + 48 + 24 + 16 + 16;
    assert_eq!(
        lens,
        vec![
            (0, 2256 + 2 * 104 + ping_exts),
            (1, 2256 + 104 + 48),
            (2, 2256),
            (3, 2296),
            (4, 2256 + 8 + 4 + 5),
            (5, 2256),
            (6, 2256),
            (7, 4352),
            (8, 2256),
            (9, 2256 + 13 + 3),
            (10, 2256 + 8 + 2),
            (11, 2256 + 5),
        ]
    );
}

#[test]
fn extensions_set_ext_data_and_their_count() {
    let f = encode(&Message::pong(sample_header(), vec![], all_extensions()));
    assert_eq!(be16(&f, 2214), all_extensions().len() as u16);
    assert_eq!(f[2253], mflags::PAUSED | mflags::EXT_DATA);
    let without = encode(&Message::pong(sample_header(), vec![], vec![]));
    assert_eq!(without[2253], mflags::PAUSED);
}

#[test]
fn hostname_extension_is_nul_terminated_and_padded_to_eight() {
    let msg = Message::ping(
        Header::new(id(b'a')),
        vec![],
        vec![PingExt::Hostname(b"abc".to_vec())],
    );
    let f = encode(&msg);
    assert_eq!(
        &f[HEADER_LEN..],
        &[0, 0, 0, 16, 0, 0, 0, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0]
    );
    // Seven bytes plus the NUL exactly fill one 8-byte block.
    let seven = Message::ping(
        Header::new(id(b'a')),
        vec![],
        vec![PingExt::Hostname(b"abcdefg".to_vec())],
    );
    assert_eq!(encode(&seven).len(), HEADER_LEN + 16);
}

#[test]
fn shard_id_and_forgotten_node_records_have_their_fixed_sizes() {
    let f = encode(&Message::ping(
        Header::new(id(b'a')),
        vec![],
        vec![
            PingExt::ShardId(id(b'5')),
            PingExt::ForgottenNode {
                name: id(b'f'),
                ttl: 60,
            },
        ],
    ));
    assert_eq!(be32(&f, HEADER_LEN), 48);
    assert_eq!(be16(&f, HEADER_LEN + 4), ext_type::SHARDID);
    assert_eq!(be32(&f, HEADER_LEN + 48), 56);
    assert_eq!(be16(&f, HEADER_LEN + 52), ext_type::FORGOTTEN_NODE);
    assert_eq!(be64(&f, HEADER_LEN + 48 + 48), 60);
}

// ---- framing ----

#[test]
fn the_splitter_waits_for_eight_bytes_then_the_whole_frame() {
    let f = encode(&Message::new(sample_header(), Body::MfStart));
    for short in [0, 1, 7] {
        assert_eq!(next_frame(&f[..short], LIMIT), Ok(None));
    }
    assert_eq!(next_frame(&f[..8], LIMIT), Ok(None));
    assert_eq!(next_frame(&f[..HEADER_LEN - 1], LIMIT), Ok(None));
    let mut two = f.clone();
    two.extend_from_slice(&f);
    assert_eq!(next_frame(&two, LIMIT), Ok(Some(HEADER_LEN)));
}

#[test]
fn a_bad_signature_closes_the_link() {
    let mut f = encode(&Message::new(sample_header(), Body::MfStart));
    f[3] = b'B';
    let err = next_frame(&f[..8], LIMIT).unwrap_err();
    assert_eq!(err, BusError::BadSignature);
    assert!(err.closes_link());
    assert_eq!(decode(&f), Err(BusError::BadSignature));
}

#[test]
fn totlen_below_the_header_closes_the_link() {
    let mut f = encode(&Message::new(sample_header(), Body::MfStart));
    set_be32(&mut f, 4, HEADER_LEN as u32 - 1);
    let err = next_frame(&f, LIMIT).unwrap_err();
    assert_eq!(err, BusError::FrameTooShort { totlen: 2255 });
    assert!(err.closes_link());
}

#[test]
fn totlen_above_the_limit_closes_the_link() {
    let mut head = b"RCmb".to_vec();
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    let err = next_frame(&head, LIMIT).unwrap_err();
    assert_eq!(
        err,
        BusError::FrameTooLong {
            totlen: u32::MAX,
            limit: LIMIT
        }
    );
    assert!(err.closes_link());
}

#[test]
fn the_default_limit_admits_the_largest_publish_a_client_can_send() {
    let limit = frame_limit_for_proto_max_bulk_len(512 << 20);
    assert_eq!(limit, 2256 + 8 + 2 * (512 << 20));
    assert_eq!(
        frame_limit_for_proto_max_bulk_len(u64::MAX),
        u32::MAX as usize
    );
}

#[test]
fn decode_rejects_a_slice_that_is_not_exactly_totlen() {
    let f = encode(&Message::new(sample_header(), Body::MfStart));
    let mut longer = f.clone();
    longer.push(0);
    assert!(matches!(
        decode(&longer),
        Err(BusError::FrameLenMismatch { .. })
    ));
    assert!(matches!(
        decode(&f[..100]),
        Err(BusError::FrameLenMismatch { .. })
    ));
    assert!(matches!(
        decode(&f[..5]),
        Err(BusError::FrameLenMismatch { .. })
    ));
}

// ---- Redis's per-type length checks (the frame is dropped, the link kept) ----

#[test]
fn a_version_other_than_one_is_ignored() {
    let mut f = encode(&Message::new(sample_header(), Body::MfStart));
    set_be16(&mut f, 8, 2);
    let err = decode(&f).unwrap_err();
    assert_eq!(err, BusError::UnsupportedVersion(2));
    assert!(!err.closes_link());
}

#[test]
fn gossip_count_beyond_totlen_is_rejected() {
    let mut f = encode(&Message::ping(sample_header(), vec![gossip(b'c')], vec![]));
    set_be16(&mut f, 14, 2);
    assert_eq!(
        decode(&f),
        Err(BusError::LengthMismatch {
            type_code: 0,
            totlen: f.len() as u32,
            expected: 2256 + 208
        })
    );
    set_be16(&mut f, 14, u16::MAX);
    assert!(matches!(decode(&f), Err(BusError::LengthMismatch { .. })));
}

#[test]
fn gossip_count_short_of_totlen_is_rejected() {
    let mut f = encode(&Message::ping(sample_header(), vec![gossip(b'c')], vec![]));
    set_be16(&mut f, 14, 0);
    assert!(matches!(decode(&f), Err(BusError::LengthMismatch { .. })));
}

#[test]
fn a_fail_message_must_be_exactly_2296_bytes() {
    let mut f = encode(&Message::fail(sample_header(), id(b'e')));
    f.push(0);
    fix_totlen(&mut f);
    let err = decode(&f).unwrap_err();
    assert_eq!(
        err,
        BusError::LengthMismatch {
            type_code: 3,
            totlen: 2297,
            expected: 2296
        }
    );
    assert!(!err.closes_link());
}

#[test]
fn bodyless_types_must_be_exactly_the_header() {
    for body in [
        Body::FailoverAuthRequest,
        Body::FailoverAuthAck,
        Body::MfStart,
    ] {
        let mut f = encode(&Message::new(sample_header(), body));
        f.extend_from_slice(&[0; 8]);
        fix_totlen(&mut f);
        assert!(matches!(decode(&f), Err(BusError::LengthMismatch { .. })));
    }
}

#[test]
fn an_update_must_be_exactly_4352_bytes() {
    let mut f = encode(&Message::update(
        sample_header(),
        1,
        id(b'c'),
        empty_slots(),
    ));
    f.pop();
    fix_totlen(&mut f);
    assert!(matches!(
        decode(&f),
        Err(BusError::LengthMismatch { expected: 4352, .. })
    ));
}

#[test]
fn publish_lengths_must_add_up_to_totlen() {
    let mut f = encode(&Message::publish(
        sample_header(),
        b"ch".to_vec(),
        b"m".to_vec(),
    ));
    set_be32(&mut f, HEADER_LEN + 4, 2);
    assert!(matches!(
        decode(&f),
        Err(BusError::LengthMismatch { expected: 2268, .. })
    ));
}

#[test]
fn publish_lengths_that_wrap_a_u32_are_rejected_not_wrapped() {
    let mut f = encode(&Message::publish(
        sample_header(),
        b"ch".to_vec(),
        b"m".to_vec(),
    ));
    // 2 + u32::MAX wraps to 1 in 32-bit arithmetic; the real sum is far beyond totlen.
    set_be32(&mut f, HEADER_LEN, 2);
    set_be32(&mut f, HEADER_LEN + 4, u32::MAX);
    assert!(matches!(decode(&f), Err(BusError::LengthMismatch { .. })));
}

#[test]
fn a_publish_without_its_length_words_is_rejected() {
    let mut f = encode(&Message::new(sample_header(), Body::MfStart));
    set_be16(&mut f, 12, MessageType::Publish.code());
    f.extend_from_slice(&[0; 4]);
    fix_totlen(&mut f);
    assert!(matches!(
        decode(&f),
        Err(BusError::LengthMismatch { expected: 2264, .. })
    ));
}

#[test]
fn a_module_message_length_must_match_its_len_field() {
    let msg = Message::new(
        sample_header(),
        Body::Module {
            module_id: [1; 8],
            module_type: 1,
            payload: vec![1, 2],
        },
    );
    let mut f = encode(&msg);
    set_be32(&mut f, HEADER_LEN + 8, 3);
    assert!(matches!(
        decode(&f),
        Err(BusError::LengthMismatch { expected: 2272, .. })
    ));
}

fn ping_with_one_extension() -> Vec<u8> {
    encode(&Message::ping(
        sample_header(),
        vec![gossip(b'c')],
        vec![PingExt::ShardId(id(b'5'))],
    ))
}

const FIRST_EXT: usize = HEADER_LEN + GOSSIP_ENTRY_LEN;

#[test]
fn an_extension_length_not_a_multiple_of_eight_is_rejected() {
    let mut f = ping_with_one_extension();
    set_be32(&mut f, FIRST_EXT, 44);
    assert_eq!(decode(&f), Err(BusError::ExtensionPadding { ext_len: 44 }));
}

#[test]
fn an_extension_overrunning_the_frame_is_rejected() {
    let mut f = ping_with_one_extension();
    set_be32(&mut f, FIRST_EXT, 56);
    assert_eq!(
        decode(&f),
        Err(BusError::ExtensionOverrun {
            ext_len: 56,
            remaining: 48
        })
    );
    // Redis compares only the low 16 bits (0x10030 reads as 48); the full length overruns.
    set_be32(&mut f, FIRST_EXT, 0x1_0030);
    assert!(matches!(decode(&f), Err(BusError::ExtensionOverrun { .. })));
}

#[test]
fn more_extensions_than_the_frame_holds_are_rejected() {
    let mut f = ping_with_one_extension();
    set_be16(&mut f, 2214, 2);
    assert_eq!(
        decode(&f),
        Err(BusError::ExtensionOverrun {
            ext_len: 0,
            remaining: 0
        })
    );
}

#[test]
fn an_extension_shorter_than_its_header_or_payload_is_rejected() {
    let mut f = ping_with_one_extension();
    set_be32(&mut f, FIRST_EXT, 0);
    assert!(matches!(
        decode(&f),
        Err(BusError::ExtensionTooShort { ext_len: 0, .. })
    ));
    // A SHARDID record of 40 bytes has room for only 32 bytes of the 40-byte id.
    let mut f = ping_with_one_extension();
    set_be32(&mut f, FIRST_EXT, 40);
    f.truncate(f.len() - 8);
    fix_totlen(&mut f);
    assert!(matches!(
        decode(&f),
        Err(BusError::ExtensionTooShort { ext_type: 3, .. })
    ));
}

#[test]
fn extension_bytes_without_ext_data_do_not_count_toward_totlen() {
    let mut f = ping_with_one_extension();
    f[2253] &= !mflags::EXT_DATA;
    assert!(matches!(
        decode(&f),
        Err(BusError::LengthMismatch { expected: 2360, .. })
    ));
    // Without the flag a nonzero `extensions` field is ignored, as Redis's check does.
    f.truncate(FIRST_EXT);
    fix_totlen(&mut f);
    let msg = decode(&f).unwrap();
    assert!(msg.ping_body().unwrap().extensions.is_empty());
}

#[test]
fn ext_data_with_zero_extensions_is_accepted() {
    let mut h = sample_header();
    h.mflags[0] |= mflags::EXT_DATA;
    let msg = Message::pong(h, vec![], vec![]);
    let f = encode(&msg);
    assert_eq!(f[2253] & mflags::EXT_DATA, mflags::EXT_DATA);
    assert_eq!(decode(&f).unwrap(), msg);
}

#[test]
fn unknown_types_decode_with_their_header() {
    let mut f = encode(&Message::new(sample_header(), Body::MfStart));
    set_be16(&mut f, 12, 0x8004); // e.g. a Valkey "light" type code
    f.extend_from_slice(b"tail");
    fix_totlen(&mut f);
    let msg = decode(&f).unwrap();
    assert_eq!(msg.message_type(), None);
    assert_eq!(msg.type_code(), 0x8004);
    assert_eq!(msg.header, sample_header());
    assert_eq!(
        msg.body,
        Body::Unknown {
            type_code: 0x8004,
            data: b"tail".to_vec()
        }
    );
}

#[test]
fn message_types_carry_cluster_info_stat_names() {
    let names: Vec<&str> = MessageType::ALL.iter().map(|t| t.stats_name()).collect();
    assert_eq!(
        names,
        [
            "ping",
            "pong",
            "meet",
            "fail",
            "publish",
            "auth-req",
            "auth-ack",
            "update",
            "mfstart",
            "module",
            "publishshard"
        ]
    );
    assert_eq!(MessageType::from_code(11), None);
}

#[test]
fn header_debug_shows_slot_ranges_not_bytes() {
    let mut h = Header::new(id(b'a'));
    for slot in [0, 1, 2, 7, 5000, 16383] {
        set_slot(&mut h.myslots, slot);
    }
    assert_eq!(slot_ranges(&h.myslots), "0-2 7 5000 16383");
    assert!(format!("{h:?}").contains("myslots: [0-2 7 5000 16383]"));
    assert!(!slot_is_set(&h.myslots, 3));
    set_slot(&mut h.myslots, 16384); // beyond the bitmap: ignored, no panic
}

#[test]
fn bus_ip_keeps_text_before_the_nul() {
    assert_eq!(BusIp::new(b"::1").unwrap().text(), b"::1");
    assert!(BusIp::new(&[b'1'; 46]).is_none());
    assert!(BusIp::new(b"1\x002").is_none());
    assert!(BusIp::EMPTY.is_empty());
    assert_eq!(BusIp([b'9'; 46]).text().len(), 46);
}

// ---- frames captured from redis-server 7.0.15 ----

const MEET: &[u8] = include_bytes!("../../../tests/fixtures/bus/redis-7.0.15-meet.bin");
const PING: &[u8] = include_bytes!("../../../tests/fixtures/bus/redis-7.0.15-ping.bin");
const PONG: &[u8] = include_bytes!("../../../tests/fixtures/bus/redis-7.0.15-pong.bin");
const MEET_HOSTNAME: &[u8] =
    include_bytes!("../../../tests/fixtures/bus/redis-7.0.15-meet-hostname.bin");
const SIDECAR: &str = include_str!("../../../tests/fixtures/bus/redis-7.0.15.txt");

fn sidecar(key: &str) -> &'static str {
    SIDECAR
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{key} missing from the sidecar"))
}

fn sidecar_id(key: &str) -> NodeId {
    NodeId::parse(sidecar(key).as_bytes()).unwrap()
}

/// Checks the header fields every captured frame shares (node A of capture.py).
fn assert_node_a_header(h: &Header) {
    assert_eq!(h.sender, sidecar_id("sender_myid"));
    assert_eq!(h.port.to_string(), sidecar("port"));
    assert_eq!(h.cport.to_string(), sidecar("cport"));
    assert_eq!(h.pport, 0);
    assert_eq!(h.flags, NodeFlags(NodeFlags::MASTER | NodeFlags::MYSELF));
    assert_eq!(h.config_epoch.to_string(), sidecar("config_epoch"));
    assert_eq!(h.current_epoch, h.config_epoch);
    assert_eq!(h.slaveof, None);
    assert!(h.myip.is_empty());
    // Not every slot is covered, so node A reports the cluster as failed.
    assert_eq!(h.state, CLUSTER_STATE_FAIL);
    let claimed: Vec<String> = (0..16384u16)
        .filter(|&s| slot_is_set(&h.myslots, s))
        .map(|s| s.to_string())
        .collect();
    assert_eq!(claimed.join(" "), sidecar("slots"));
}

fn assert_gossip_about_node_b(g: &[GossipEntry]) {
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].nodename, sidecar_id("gossiped_myid"));
    assert_eq!(g[0].ip.text(), b"127.0.0.1");
    assert_eq!(g[0].port, 47532);
    assert_eq!(g[0].cport, 57532);
    assert_eq!(g[0].flags, NodeFlags(NodeFlags::MASTER));
}

#[test]
fn redis_7_0_15_meet_decodes_and_re_encodes_byte_for_byte() {
    let msg = decode(MEET).unwrap();
    assert_eq!(msg.message_type(), Some(MessageType::Meet));
    assert_node_a_header(&msg.header);
    assert_eq!(msg.header.mflags, [0; 3]);
    let body = msg.ping_body().unwrap();
    assert_gossip_about_node_b(&body.gossip);
    assert!(body.extensions.is_empty());
    assert_eq!(encode(&msg), MEET);
}

#[test]
fn redis_7_0_15_ping_decodes_and_re_encodes_byte_for_byte() {
    let msg = decode(PING).unwrap();
    assert_eq!(msg.message_type(), Some(MessageType::Ping));
    assert_node_a_header(&msg.header);
    assert_gossip_about_node_b(&msg.ping_body().unwrap().gossip);
    assert_eq!(encode(&msg), PING);
}

#[test]
fn redis_7_0_15_pong_to_an_unknown_sender_has_no_gossip() {
    let msg = decode(PONG).unwrap();
    assert_eq!(msg.message_type(), Some(MessageType::Pong));
    assert_node_a_header(&msg.header);
    assert_eq!(msg.ping_body().unwrap(), &PingBody::default());
    assert_eq!(encode(&msg), PONG);
}

#[test]
fn redis_7_0_15_meet_with_announced_hostname_carries_the_hostname_extension() {
    assert_eq!(be16(MEET_HOSTNAME, 2214), 1);
    let msg = decode(MEET_HOSTNAME).unwrap();
    assert_eq!(msg.message_type(), Some(MessageType::Meet));
    assert_node_a_header(&msg.header);
    assert!(msg.header.has_mflag(mflags::EXT_DATA));
    let body = msg.ping_body().unwrap();
    assert_gossip_about_node_b(&body.gossip);
    assert_eq!(
        body.extensions,
        vec![PingExt::Hostname(sidecar("hostname").as_bytes().to_vec())]
    );
    assert_eq!(encode(&msg), MEET_HOSTNAME);
}

#[test]
fn captured_frames_split_cleanly_from_a_stream() {
    let stream: Vec<u8> = [MEET, PING, PONG, MEET_HOSTNAME].concat();
    let mut at = 0;
    let mut types = Vec::new();
    while let Some(len) = next_frame(&stream[at..], LIMIT).unwrap() {
        types.push(decode(&stream[at..at + len]).unwrap().type_code());
        at += len;
    }
    assert_eq!(at, stream.len());
    assert_eq!(types, [2, 0, 1, 2]);
}

// ---- totality ----

fn valid_frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = every_message().iter().map(encode).collect();
    frames.extend([MEET, PING, PONG, MEET_HOSTNAME].map(<[u8]>::to_vec));
    frames
}

/// Decoding never panics; whatever decodes re-encodes to something that decodes the same.
fn check_total(bytes: &[u8]) -> Result<(), TestCaseError> {
    let _ = next_frame(bytes, LIMIT);
    if let Ok(msg) = decode(bytes) {
        prop_assert_eq!(decode(&encode(&msg)), Ok(msg));
    }
    Ok(())
}

fn arb_text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..60)
}

fn arb_ext() -> impl Strategy<Value = PingExt> {
    prop_oneof![
        arb_text().prop_map(PingExt::Hostname),
        arb_text().prop_map(PingExt::HumanNodename),
        (any::<u8>(), any::<u64>())
            .prop_map(|(c, ttl)| PingExt::ForgottenNode { name: id(c), ttl }),
        any::<u8>().prop_map(|c| PingExt::ShardId(id(c))),
        arb_text().prop_map(PingExt::ClientIpv6),
        (6u16.., proptest::collection::vec(any::<u8>(), 0..4)).prop_map(|(t, words)| {
            PingExt::Unknown {
                ext_type: t,
                payload: words.iter().flat_map(|&w| [w; 8]).collect(),
            }
        }),
    ]
}

fn arb_gossip() -> impl Strategy<Value = GossipEntry> {
    (any::<u8>(), any::<(u32, u32, u16, u16, u16, u16)>()).prop_map(
        |(c, (ps, pr, p, cp, f, pp))| GossipEntry {
            nodename: id(c),
            ping_sent: ps,
            pong_received: pr,
            ip: BusIp::new(b"fe80::1").unwrap(),
            port: p,
            cport: cp,
            flags: NodeFlags(f),
            pport: pp,
        },
    )
}

proptest! {
    #[test]
    fn decode_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..5000)) {
        check_total(&bytes)?;
    }

    #[test]
    fn decode_never_panics_on_random_bytes_behind_a_valid_head(
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        type_code in 0u16..14,
        count in 0u16..4,
        extensions in 0u16..4,
        mflag in any::<u8>(),
    ) {
        let mut f = encode(&Message::new(sample_header(), Body::MfStart));
        set_be16(&mut f, 12, type_code);
        set_be16(&mut f, 14, count);
        set_be16(&mut f, 2214, extensions);
        f[2253] = mflag;
        f.extend_from_slice(&body);
        fix_totlen(&mut f);
        check_total(&f)?;
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_frames(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        keep_totlen in any::<bool>(),
    ) {
        let frames = valid_frames();
        let mut f = which.get(&frames).clone();
        for (at, byte) in edits {
            let i = at.index(f.len());
            f[i] = byte;
        }
        if let Some(cut) = cut {
            f.truncate(cut.index(f.len() + 1));
        }
        if !keep_totlen && f.len() >= 8 {
            fix_totlen(&mut f);
        }
        check_total(&f)?;
    }

    #[test]
    fn ping_like_messages_round_trip(
        gossip in proptest::collection::vec(arb_gossip(), 0..6),
        extensions in proptest::collection::vec(arb_ext(), 0..6),
        kind in 0u8..3,
        epochs in any::<(u64, u64, u64)>(),
    ) {
        let mut h = sample_header();
        (h.current_epoch, h.config_epoch, h.offset) = epochs;
        let msg = match kind {
            0 => Message::ping(h, gossip, extensions),
            1 => Message::pong(h, gossip, extensions),
            _ => Message::meet(h, gossip, extensions),
        };
        let f = encode(&msg);
        prop_assert_eq!(f.len() % 8, 0);
        prop_assert_eq!(next_frame(&f, LIMIT), Ok(Some(f.len())));
        let mut expect = msg.clone();
        if !msg.ping_body().unwrap().extensions.is_empty() {
            expect.header.mflags[0] |= mflags::EXT_DATA;
        }
        prop_assert_eq!(decode(&f), Ok(expect));
    }

    #[test]
    fn publish_round_trips(
        channel in proptest::collection::vec(any::<u8>(), 0..100),
        message in proptest::collection::vec(any::<u8>(), 0..300),
        shard in any::<bool>(),
    ) {
        let h = sample_header();
        let msg = if shard {
            Message::publish_shard(h, channel, message)
        } else {
            Message::publish(h, channel, message)
        };
        prop_assert_eq!(decode(&encode(&msg)), Ok(msg));
    }
}

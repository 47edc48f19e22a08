//! Unit tests of the cluster machine: one input at a time, then the state and the effects;
//! and a three-node cluster formed over the in-memory bus of `sim_net`.

use super::*;
use crate::cluster::bus::message::{set_slot, Body, GossipEntry, Header, MessageType, PingExt};
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::sim_net::SimNet;
use crate::cluster::state::{ClusterNode, ClusterState, Health, CLUSTER_SLOTS};

const T0: u64 = 1_700_000_000_000;
const NT: u64 = 15_000;

fn id(c: char) -> NodeId {
    NodeId([c as u8; 40])
}

fn config(port: u16) -> MachineConfig {
    MachineConfig {
        node_timeout_ms: NT,
        port,
        cport: port + 10000,
        ..MachineConfig::default()
    }
}

fn machine(c: char) -> ClusterMachine {
    let me = ClusterNode::new(id(c), NodeFlags(NodeFlags::MASTER), T0);
    ClusterMachine::new(ClusterState::new(me), config(7000), 42)
}

fn ok() -> Option<Result<Reply, ErrorReply>> {
    Some(Ok(Reply::OK))
}

fn error(text: &str) -> Option<Result<Reply, ErrorReply>> {
    Some(Err(ErrorReply::owned(text.to_string())))
}

fn sends(fx: &Effects) -> Vec<(LinkId, &Message)> {
    fx.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { link, message } => Some((*link, message)),
            _ => None,
        })
        .collect()
}

fn connects(fx: &Effects) -> Vec<(LinkId, String, u16)> {
    fx.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Connect { link, ip, cport } => Some((*link, ip.clone(), *cport)),
            _ => None,
        })
        .collect()
}

fn saves(fx: &Effects) -> usize {
    fx.effects
        .iter()
        .filter(|e| matches!(e, Effect::SaveConfig { .. }))
        .count()
}

/// The header a master `c` listening on `port` sends.
fn header(c: char, port: u16) -> Header {
    let mut h = Header::new(id(c));
    h.port = port;
    h.cport = port + 10000;
    h.flags = NodeFlags(NodeFlags::MYSELF | NodeFlags::MASTER);
    h
}

fn gossip(c: char, port: u16, flags: u16) -> GossipEntry {
    GossipEntry {
        nodename: id(c),
        ping_sent: 0,
        pong_received: 0,
        ip: outgoing::bus_ip("10.0.0.9"),
        port,
        cport: port + 10000,
        flags: NodeFlags(flags),
        pport: 0,
    }
}

/// The links machine `m` has with a peer `c`: outbound and inbound.
struct Peer {
    out: LinkId,
    inbound: LinkId,
}

/// Makes `m` know master `c` at 10.0.0.<port-7000> with both links up, as after a
/// completed handshake.
fn know(m: &mut ClusterMachine, c: char, port: u16, now: u64) -> Peer {
    let mut n = ClusterNode::new(id(c), NodeFlags(NodeFlags::MASTER), now);
    n.ip = format!("10.0.0.{}", port - 7000);
    n.port = port;
    n.cport = port + 10000;
    m.state.add_node(n).unwrap();
    m.connect_if_needed(now, &id(c));
    let out = m.state.node(&id(c)).unwrap().link.unwrap();
    m.step(now, Input::Connected { link: out });
    let inbound = m.new_link_id();
    let accepted = Input::Accepted {
        link: inbound,
        peer_ip: format!("10.0.0.{}", port - 7000),
        local_ip: "10.0.0.1".into(),
    };
    m.step(now, accepted);
    let ping = Message::ping(header(c, port), vec![], vec![]);
    m.step(
        now,
        Input::Message {
            link: inbound,
            message: ping,
        },
    );
    let pong = Message::pong(header(c, port), vec![], vec![]);
    m.step(
        now,
        Input::Message {
            link: out,
            message: pong,
        },
    );
    Peer { out, inbound }
}

fn give_slots(m: &mut ClusterMachine, c: char, slots: std::ops::Range<u16>) {
    for s in slots {
        m.state.set_slot_owner(s, &id(c)).unwrap();
    }
}

// ---- MEET and handshake -------------------------------------------------------------------

#[test]
fn meet_creates_a_handshake_node_and_connects_to_it() {
    let mut m = machine('a');
    let meet = Admin::Meet {
        ip: "10.0.0.2".into(),
        port: 7001,
        cport: 17001,
    };
    let fx = m.step(T0, Input::Admin(meet.clone()));
    assert_eq!(fx.reply, ok());
    assert_eq!(m.state.len(), 2);
    let node = m.state.nodes().find(|n| !n.is_myself()).unwrap();
    assert!(node.flags.has(NodeFlags::HANDSHAKE) && node.flags.has(NodeFlags::MEET));
    assert_eq!(
        (node.ip.as_str(), node.port, node.cport),
        ("10.0.0.2", 7001, 17001)
    );
    let c = connects(&fx);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].1.as_str(), c[0].2), ("10.0.0.2", 17001));
    assert_eq!(node.link, Some(c[0].0));

    let again = m.step(T0, Input::Admin(meet));
    assert_eq!(again.reply, ok(), "a handshake in progress is not an error");
    assert_eq!(m.state.len(), 2);
}

#[test]
fn meet_rejects_an_address_that_is_not_an_ip_literal() {
    let mut m = machine('a');
    let meet = Admin::Meet {
        ip: "localhost".into(),
        port: 7001,
        cport: 17001,
    };
    let fx = m.step(T0, Input::Admin(meet));
    assert_eq!(
        fx.reply,
        error("ERR Invalid node address specified: localhost:7001")
    );
    assert_eq!(m.state.len(), 1);
}

fn meet_and_connect(m: &mut ClusterMachine) -> (LinkId, Effects) {
    let meet = Admin::Meet {
        ip: "10.0.0.2".into(),
        port: 7001,
        cport: 17001,
    };
    let fx = m.step(T0, Input::Admin(meet));
    let link = connects(&fx)[0].0;
    (link, m.step(T0 + 5, Input::Connected { link }))
}

#[test]
fn a_connected_link_to_a_met_node_carries_a_meet_first() {
    let mut m = machine('a');
    let (link, fx) = meet_and_connect(&mut m);
    let s = sends(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, link);
    assert_eq!(s[0].1.message_type(), Some(MessageType::Meet));
    assert_eq!(s[0].1.header.sender, id('a'));
    let node = m.state.nodes().find(|n| !n.is_myself()).unwrap();
    assert!(!node.flags.has(NodeFlags::MEET), "MEET goes out once");
    assert_eq!(node.ping_sent, 0, "only a PING starts the ping clock");
}

#[test]
fn the_pong_to_our_meet_gives_the_handshake_node_its_real_name() {
    let mut m = machine('a');
    let (link, _) = meet_and_connect(&mut m);
    let pong = Message::pong(header('b', 7001), vec![], vec![]);
    let fx = m.step(
        T0 + 10,
        Input::Message {
            link,
            message: pong,
        },
    );
    let b = m.state.node(&id('b')).expect("renamed");
    assert!(!b.in_handshake());
    assert!(b.is_master());
    assert_eq!(b.link, Some(link));
    assert_eq!(b.pong_received, T0 + 10);
    assert_eq!(m.state.len(), 2);
    assert_eq!(saves(&fx), 1);
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::TopologyChanged)));
}

#[test]
fn a_handshake_pong_from_a_known_node_drops_the_handshake_node() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    let (link, _) = meet_and_connect(&mut m);
    let pong = Message::pong(header('b', 7002), vec![], vec![]);
    let fx = m.step(
        T0 + 10,
        Input::Message {
            link,
            message: pong,
        },
    );
    assert_eq!(m.state.len(), 2, "myself and b only");
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Close { link: l } if *l == link)));
}

#[test]
fn a_meet_from_an_unknown_node_adds_it_in_handshake_and_is_answered_with_a_pong() {
    let mut m = machine('a');
    let link = m.new_link_id();
    let accepted = Input::Accepted {
        link,
        peer_ip: "10.0.0.9".into(),
        local_ip: "10.0.0.1".into(),
    };
    m.step(T0, accepted);
    let meet = Message::meet(header('b', 7001), vec![], vec![]);
    let fx = m.step(
        T0,
        Input::Message {
            link,
            message: meet,
        },
    );
    let s = sends(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].0, s[0].1.message_type()),
        (link, Some(MessageType::Pong))
    );
    assert_eq!(
        m.state.myself().ip,
        "10.0.0.1",
        "own IP learned from the MEET"
    );
    let new = m.state.nodes().find(|n| !n.is_myself()).unwrap();
    assert!(new.in_handshake());
    assert_ne!(
        new.name,
        id('b'),
        "a random name until our PING is answered"
    );
    assert_eq!((new.ip.as_str(), new.port), ("10.0.0.9", 7001));
}

#[test]
fn an_announced_ip_wins_over_the_socket_address() {
    let mut m = machine('a');
    let link = m.new_link_id();
    let accepted = Input::Accepted {
        link,
        peer_ip: "10.0.0.9".into(),
        local_ip: "10.0.0.1".into(),
    };
    m.step(T0, accepted);
    let mut h = header('b', 7001);
    h.myip = outgoing::bus_ip("192.168.1.7");
    m.step(
        T0,
        Input::Message {
            link,
            message: Message::meet(h, vec![], vec![]),
        },
    );
    let new = m.state.nodes().find(|n| !n.is_myself()).unwrap();
    assert_eq!(new.ip, "192.168.1.7");
}

#[test]
fn a_handshake_node_expires_after_the_handshake_timeout() {
    let mut m = machine('a');
    meet_and_connect(&mut m);
    m.step(T0 + NT, Input::Tick);
    assert_eq!(m.state.len(), 2);
    let fx = m.step(T0 + NT + 1, Input::Tick);
    assert_eq!(m.state.len(), 1);
    assert!(fx.effects.iter().any(|e| matches!(e, Effect::Close { .. })));
}

// ---- gossip and FORGET --------------------------------------------------------------------

#[test]
fn gossip_from_a_known_node_about_an_unknown_one_adds_it_and_we_connect() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let ping = Message::ping(
        header('b', 7002),
        vec![gossip('c', 7003, NodeFlags::MASTER)],
        vec![],
    );
    m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: ping,
        },
    );
    let c = m.state.node(&id('c')).expect("learned from gossip");
    assert_eq!((c.ip.as_str(), c.port, c.cport), ("10.0.0.9", 7003, 17003));
    assert!(c.is_master() && !c.in_handshake());
    let fx = m.step(T0 + 100, Input::Tick);
    assert!(connects(&fx)
        .iter()
        .any(|(_, ip, p)| ip == "10.0.0.9" && *p == 17003));
}

#[test]
fn gossip_in_a_meet_from_an_unknown_node_adds_nobody() {
    let mut m = machine('a');
    let link = m.new_link_id();
    let accepted = Input::Accepted {
        link,
        peer_ip: "10.0.0.9".into(),
        local_ip: "10.0.0.1".into(),
    };
    m.step(T0, accepted);
    let meet = Message::meet(
        header('b', 7001),
        vec![gossip('c', 7003, NodeFlags::MASTER)],
        vec![],
    );
    m.step(
        T0,
        Input::Message {
            link,
            message: meet,
        },
    );
    assert!(!m.state.contains(&id('c')));
}

#[test]
fn forget_errors_use_redis_texts() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    let fx = m.step(T0, Input::Admin(Admin::Forget(id('z'))));
    assert_eq!(fx.reply, error(&format!("ERR Unknown node {}", id('z'))));
    let fx = m.step(T0, Input::Admin(Admin::Forget(id('a'))));
    assert_eq!(
        fx.reply,
        error("ERR I tried hard but I can't forget myself...")
    );
    m.state.set_replica_of(&id('a'), &id('b')).unwrap();
    let fx = m.step(T0, Input::Admin(Admin::Forget(id('b'))));
    assert_eq!(fx.reply, error("ERR Can't forget my master!"));
}

#[test]
fn a_forgotten_node_is_not_relearned_from_gossip_for_sixty_seconds() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    know(&mut m, 'c', 7003, T0);
    let fx = m.step(T0, Input::Admin(Admin::Forget(id('c'))));
    assert_eq!(fx.reply, ok());
    assert!(!m.state.contains(&id('c')));
    assert_eq!(
        fx.effects
            .iter()
            .filter(|e| matches!(e, Effect::Close { .. }))
            .count(),
        2
    );
    let about_c = || {
        Message::ping(
            header('b', 7002),
            vec![gossip('c', 7003, NodeFlags::MASTER)],
            vec![],
        )
    };
    m.step(
        T0 + 59_000,
        Input::Message {
            link: b.inbound,
            message: about_c(),
        },
    );
    assert!(!m.state.contains(&id('c')), "blacklisted");
    m.step(
        T0 + 60_001,
        Input::Message {
            link: b.inbound,
            message: about_c(),
        },
    );
    assert!(m.state.contains(&id('c')), "the ban expired");
}

#[test]
fn forgotten_nodes_travel_as_ping_extensions() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    know(&mut m, 'c', 7003, T0);
    m.step(T0, Input::Admin(Admin::Forget(id('c'))));
    let fx = m.step(
        T0 + 1000,
        Input::Message {
            link: b.inbound,
            message: Message::ping(header('b', 7002), vec![], vec![]),
        },
    );
    let pong = sends(&fx)[0].1;
    let ext = &pong.ping_body().unwrap().extensions;
    assert!(ext.contains(&PingExt::ForgottenNode {
        name: id('c'),
        ttl: 59
    }));
    assert!(pong
        .header
        .has_mflag(crate::cluster::bus::message::mflags::EXT_DATA));
}

// ---- slots --------------------------------------------------------------------------------

#[test]
fn addslots_and_delslots_check_every_argument_first() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    give_slots(&mut m, 'b', 5..6);
    let add = |v: Vec<u16>| Input::Admin(Admin::AddSlots(v));
    assert_eq!(
        m.step(T0, add(vec![1, 5])).reply,
        error("ERR Slot 5 is already busy")
    );
    assert_eq!(
        m.step(T0, add(vec![1, 2, 1])).reply,
        error("ERR Slot 1 specified multiple times")
    );
    assert_eq!(m.state.slot_owner(1), None, "nothing changed on error");
    let fx = m.step(T0, add(vec![1, 2]));
    assert_eq!(fx.reply, ok());
    assert_eq!(saves(&fx), 1);
    assert_eq!(m.state.slot_owner(2), Some(&id('a')));
    let del = |v: Vec<u16>| Input::Admin(Admin::DelSlots(v));
    assert_eq!(
        m.step(T0, del(vec![1, 3])).reply,
        error("ERR Slot 3 is already unassigned")
    );
    assert_eq!(m.step(T0, del(vec![1])).reply, ok());
    assert_eq!(m.state.slot_owner(1), None);
}

#[test]
fn flushslots_needs_an_empty_database() {
    let mut m = machine('a');
    m.step(T0, Input::Admin(Admin::AddSlots(vec![7])));
    let fx = m.step(T0, Input::Admin(Admin::FlushSlots { keys_in_db: 3 }));
    assert_eq!(
        fx.reply,
        error("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.")
    );
    let fx = m.step(T0, Input::Admin(Admin::FlushSlots { keys_in_db: 0 }));
    assert_eq!(fx.reply, ok());
    assert_eq!(m.state.myself().numslots(), 0);
}

fn setslot(slot: u16, action: SetSlot, keys_in_slot: u64) -> Input {
    Input::Admin(Admin::SetSlot {
        slot,
        action,
        keys_in_slot,
    })
}

#[test]
fn setslot_checks_ownership_nodes_and_keys() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    m.step(T0, Input::Admin(Admin::AddSlots(vec![1, 2])));
    let r = |m: &mut ClusterMachine, i| m.step(T0, i).reply;
    assert_eq!(
        r(&mut m, setslot(9, SetSlot::Migrating(id('b')), 0)),
        error("ERR I'm not the owner of hash slot 9")
    );
    assert_eq!(
        r(&mut m, setslot(1, SetSlot::Migrating(id('z')), 0)),
        error(&format!("ERR I don't know about node {}", id('z')))
    );
    assert_eq!(r(&mut m, setslot(1, SetSlot::Migrating(id('b')), 0)), ok());
    assert_eq!(m.state.migrating_to(1), Some(&id('b')));
    assert_eq!(
        r(&mut m, setslot(2, SetSlot::Importing(id('b')), 0)),
        error("ERR I'm already the owner of hash slot 2")
    );
    assert_eq!(
        r(&mut m, setslot(2, SetSlot::Node(id('z')), 0)),
        error(&format!("ERR Unknown node {}", id('z')))
    );
    assert_eq!(
        r(&mut m, setslot(1, SetSlot::Node(id('b')), 4)),
        error("ERR Can't assign hashslot 1 to a different node while I still hold keys for this hash slot.")
    );
    assert_eq!(r(&mut m, setslot(1, SetSlot::Node(id('b')), 0)), ok());
    assert_eq!(m.state.slot_owner(1), Some(&id('b')));
    assert_eq!(
        m.state.migrating_to(1),
        None,
        "an empty migrating slot closes"
    );
}

#[test]
fn giving_away_the_last_slot_makes_a_master_a_replica_of_the_taker() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    m.step(T0, Input::Admin(Admin::AddSlots(vec![1])));
    let fx = m.step(T0, setslot(1, SetSlot::Node(id('b')), 0));
    assert_eq!(fx.reply, ok());
    assert_eq!(m.state.myself().slaveof, Some(id('b')));
    assert!(m.state.myself().is_replica());
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::BecomeReplica { master } if *master == id('b'))));
    let fx = m.step(T0, setslot(2, SetSlot::Stable, 0));
    assert_eq!(fx.reply, error("ERR Please use SETSLOT only with masters."));
}

#[test]
fn closing_an_import_bumps_the_epoch_and_tells_everybody() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    m.state.node_mut(&id('b')).unwrap().config_epoch = 3;
    m.state.current_epoch = 3;
    give_slots(&mut m, 'b', 1..2);
    assert_eq!(
        m.step(T0, setslot(1, SetSlot::Importing(id('b')), 0)).reply,
        ok()
    );
    let fx = m.step(T0, setslot(1, SetSlot::Node(id('a')), 5));
    assert_eq!(fx.reply, ok());
    assert_eq!(m.state.slot_owner(1), Some(&id('a')));
    assert_eq!(m.state.importing_from(1), None);
    assert_eq!(m.state.myself().config_epoch, 4);
    let s = sends(&fx);
    assert!(s
        .iter()
        .any(|(l, msg)| *l == b.out && msg.message_type() == Some(MessageType::Pong)));
}

#[test]
fn a_newer_update_moves_slots_and_an_older_one_does_not() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    know(&mut m, 'c', 7003, T0);
    m.state.node_mut(&id('b')).unwrap().config_epoch = 2;
    m.state.node_mut(&id('c')).unwrap().config_epoch = 3;
    give_slots(&mut m, 'c', 0..100);
    let update = |epoch: u64| {
        let mut slots = crate::cluster::bus::message::empty_slots();
        for s in 0..100 {
            set_slot(&mut slots, s);
        }
        Message::update(header('b', 7002), epoch, id('b'), slots)
    };
    m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: update(3),
        },
    );
    assert_eq!(
        m.state.slot_owner(0),
        Some(&id('c')),
        "equal epochs do not move slots"
    );
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: update(4),
        },
    );
    assert_eq!(m.state.slot_owner(0), Some(&id('b')));
    assert_eq!(m.state.slot_owner(99), Some(&id('b')));
    assert_eq!(m.state.node(&id('b')).unwrap().config_epoch, 4);
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SaveConfig { fsync: true })));
}

#[test]
fn a_sender_claiming_slots_with_a_stale_epoch_gets_an_update() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    let c = know(&mut m, 'c', 7003, T0);
    m.state.node_mut(&id('b')).unwrap().config_epoch = 5;
    give_slots(&mut m, 'b', 0..1);
    let mut h = header('c', 7003);
    h.config_epoch = 3;
    set_slot(&mut h.myslots, 0);
    let fx = m.step(
        T0,
        Input::Message {
            link: c.inbound,
            message: Message::ping(h, vec![], vec![]),
        },
    );
    assert_eq!(m.state.slot_owner(0), Some(&id('b')));
    let update = sends(&fx)
        .into_iter()
        .find(|(_, msg)| msg.message_type() == Some(MessageType::Update))
        .expect("an UPDATE");
    assert_eq!(update.0, c.out);
    match &update.1.body {
        Body::Update {
            config_epoch,
            nodename,
            ..
        } => assert_eq!((*config_epoch, *nodename), (5, id('b'))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_master_claiming_free_slots_gets_them() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let mut h = header('b', 7002);
    h.config_epoch = 1;
    set_slot(&mut h.myslots, 42);
    m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: Message::ping(h, vec![], vec![]),
        },
    );
    assert_eq!(m.state.slot_owner(42), Some(&id('b')));
}

#[test]
fn a_master_whose_slots_all_go_to_a_newer_master_becomes_its_replica() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    m.step(T0, Input::Admin(Admin::AddSlots(vec![10, 11])));
    let mut h = header('b', 7002);
    h.config_epoch = 9;
    h.current_epoch = 9;
    set_slot(&mut h.myslots, 10);
    set_slot(&mut h.myslots, 11);
    let fx = m.step(
        T0 + 1,
        Input::Message {
            link: b.inbound,
            message: Message::ping(h, vec![], vec![]),
        },
    );
    assert_eq!(m.state.slot_owner(10), Some(&id('b')));
    assert_eq!(m.state.myself().slaveof, Some(id('b')));
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::BecomeReplica { master } if *master == id('b'))));
    assert!(!fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::DeleteKeysInSlots(_))));
}

#[test]
fn a_master_losing_some_slots_deletes_their_keys() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    m.step(T0, Input::Admin(Admin::AddSlots(vec![10, 11])));
    let mut h = header('b', 7002);
    h.config_epoch = 9;
    set_slot(&mut h.myslots, 11);
    let fx = m.step(
        T0 + 1,
        Input::Message {
            link: b.inbound,
            message: Message::ping(h, vec![], vec![]),
        },
    );
    assert!(m.state.myself().is_master());
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::DeleteKeysInSlots(s) if s == &vec![11])));
}

#[test]
fn an_update_about_myself_is_ignored() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let slots = crate::cluster::bus::message::empty_slots();
    let update = Message::update(header('b', 7002), 50, id('a'), slots);
    m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: update,
        },
    );
    assert!(m.state.myself().config_epoch < 50);
}

#[test]
fn hostnames_travel_in_ping_extensions_and_vanish_when_absent() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let cfg = MachineConfig {
        hostname: "a.example".into(),
        ..m.config.clone()
    };
    m.step(T0, Input::Config(cfg));
    assert_eq!(m.state.myself().hostname, "a.example");
    let with = |ext: Vec<PingExt>| {
        let mut h = header('b', 7002);
        if !ext.is_empty() {
            h.mflags[0] |= crate::cluster::bus::message::mflags::EXT_DATA;
        }
        Message::ping(h, vec![], ext)
    };
    let ext = vec![PingExt::Hostname(b"b.example".to_vec())];
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: with(ext),
        },
    );
    assert_eq!(m.state.node(&id('b')).unwrap().hostname, "b.example");
    let pong = sends(&fx)[0].1;
    assert_eq!(
        pong.ping_body().unwrap().extensions,
        vec![PingExt::Hostname(b"a.example".to_vec())]
    );
    m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: with(vec![]),
        },
    );
    assert_eq!(m.state.node(&id('b')).unwrap().hostname, "");
}

#[test]
fn client_ips_travel_in_ping_extensions_are_saved_and_vanish_when_absent() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let cfg = MachineConfig {
        client_ipv4: "10.0.0.1".into(),
        client_ipv6: "2001:db8::1".into(),
        ..m.config.clone()
    };
    let fx = m.step(T0, Input::Config(cfg));
    assert_eq!(m.state.myself().client_ipv4, "10.0.0.1");
    assert_eq!(saves(&fx), 1, "a new client IP is saved to nodes.conf");
    let with = |ext: Vec<PingExt>| {
        let mut h = header('b', 7002);
        h.mflags[0] |= crate::cluster::bus::message::mflags::EXT_DATA;
        Message::ping(h, vec![], ext)
    };
    let ext = vec![
        PingExt::ClientIpv4(b"10.0.0.2".to_vec()),
        PingExt::ClientIpv6(b"2001:db8::2".to_vec()),
    ];
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: with(ext),
        },
    );
    let node = m.state.node(&id('b')).unwrap();
    assert_eq!(
        (node.client_ipv4.as_str(), node.client_ipv6.as_str()),
        ("10.0.0.2", "2001:db8::2")
    );
    assert_eq!(
        (node.client_ip(false), node.client_ip(true)),
        ("10.0.0.2", "2001:db8::2")
    );
    assert_eq!(saves(&fx), 1);
    let conf = crate::cluster::nodes_conf::render(&m.state);
    assert!(
        conf.contains(",,client-ipv4=10.0.0.2,client-ipv6=2001:db8::2 "),
        "{conf}"
    );
    assert!(
        conf.contains(",,client-ipv4=10.0.0.1,client-ipv6=2001:db8::1 myself"),
        "{conf}"
    );
    // Our pong carries ours, in Valkey's order.
    let pong = sends(&fx)[0].1;
    assert_eq!(
        pong.ping_body().unwrap().extensions,
        vec![
            PingExt::ClientIpv4(b"10.0.0.1".to_vec()),
            PingExt::ClientIpv6(b"2001:db8::1".to_vec()),
        ]
    );
    assert!(pong
        .header
        .has_mflag(crate::cluster::bus::message::mflags::EXT_DATA));
    // The same again changes nothing; a ping without them clears them.
    m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: with(vec![PingExt::ClientIpv4(b"10.0.0.2".to_vec())]),
        },
    );
    assert_eq!(m.state.node(&id('b')).unwrap().client_ipv6, "");
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: with(vec![]),
        },
    );
    let node = m.state.node(&id('b')).unwrap();
    assert_eq!(
        (node.client_ipv4.as_str(), node.client_ip(false)),
        ("", node.ip.as_str())
    );
    assert_eq!(saves(&fx), 1);
    // Unset in the configuration: no more extensions.
    let cfg = MachineConfig {
        client_ipv4: String::new(),
        client_ipv6: String::new(),
        ..m.config.clone()
    };
    m.step(T0, Input::Config(cfg));
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: with(vec![]),
        },
    );
    let pong = sends(&fx)[0].1;
    assert!(pong.ping_body().unwrap().extensions.is_empty());
}

#[test]
fn client_ips_survive_a_nodes_conf_round_trip() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    m.state.node_mut(&id('b')).unwrap().client_ipv4 = "192.0.2.7".into();
    m.state.myself_mut().client_ipv6 = "2001:db8::9".into();
    let text = crate::cluster::nodes_conf::render(&m.state);
    let loaded = crate::cluster::nodes_conf::load(text.as_bytes(), T0).unwrap();
    assert_eq!(loaded.node(&id('b')).unwrap().client_ipv4, "192.0.2.7");
    assert_eq!(loaded.myself().client_ipv6, "2001:db8::9");
}

#[test]
fn a_pong_from_another_id_on_an_outbound_link_makes_the_node_addressless() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let pong = Message::pong(header('z', 7002), vec![], vec![]);
    let fx = m.step(
        T0,
        Input::Message {
            link: b.out,
            message: pong,
        },
    );
    let node = m.state.node(&id('b')).unwrap();
    assert!(node.flags.has(NodeFlags::NOADDR));
    assert_eq!((node.ip.as_str(), node.port, node.link), ("", 0, None));
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::Close { link } if *link == b.out)));
    let fx = m.step(T0 + 100, Input::Tick);
    assert!(connects(&fx).is_empty(), "no address, no connect");
}

#[test]
fn a_ping_from_a_new_address_moves_the_node_and_drops_our_old_link() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let link = m.new_link_id();
    let accepted = Input::Accepted {
        link,
        peer_ip: "10.9.9.9".into(),
        local_ip: "10.0.0.1".into(),
    };
    m.step(T0, accepted);
    let ping = Message::ping(header('b', 7005), vec![], vec![]);
    let fx = m.step(
        T0,
        Input::Message {
            link,
            message: ping,
        },
    );
    let node = m.state.node(&id('b')).unwrap();
    assert_eq!(
        (node.ip.as_str(), node.port, node.cport),
        ("10.9.9.9", 7005, 17005)
    );
    assert_eq!(
        node.inbound_link,
        Some(link),
        "the newer inbound link replaces the old"
    );
    let closed: Vec<LinkId> = fx
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Close { link } => Some(*link),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![b.inbound, b.out]);
}

// ---- epochs -------------------------------------------------------------------------------

#[test]
fn a_config_epoch_collision_moves_the_node_with_the_smaller_id() {
    for (me, expect) in [('a', 2), ('c', 1)] {
        let mut m = machine(me);
        let b = know(&mut m, 'b', 7002, T0);
        m.state.myself_mut().config_epoch = 1;
        m.state.current_epoch = 1;
        let mut h = header('b', 7002);
        h.config_epoch = 1;
        h.current_epoch = 1;
        m.step(
            T0,
            Input::Message {
                link: b.inbound,
                message: Message::ping(h, vec![], vec![]),
            },
        );
        assert_eq!(m.state.myself().config_epoch, expect, "myself {me}");
        assert_eq!(m.state.current_epoch, expect);
    }
}

#[test]
fn headers_raise_current_epoch_and_the_senders_config_epoch() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let mut h = header('b', 7002);
    h.config_epoch = 4;
    h.current_epoch = 9;
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: Message::ping(h, vec![], vec![]),
        },
    );
    assert_eq!(m.state.current_epoch, 9);
    assert_eq!(m.state.node(&id('b')).unwrap().config_epoch, 4);
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SaveConfig { fsync: true })));
}

#[test]
fn bumpepoch_bumps_unless_mine_is_already_the_greatest() {
    let mut m = machine('a');
    let bump = |m: &mut ClusterMachine| m.step(T0, Input::Admin(Admin::BumpEpoch)).reply;
    assert_eq!(bump(&mut m), Some(Ok(Reply::status("BUMPED 1".into()))));
    assert_eq!(bump(&mut m), Some(Ok(Reply::status("STILL 1".into()))));
    know(&mut m, 'b', 7002, T0);
    m.state.node_mut(&id('b')).unwrap().config_epoch = 5;
    assert_eq!(bump(&mut m), Some(Ok(Reply::status("BUMPED 2".into()))));
    m.state.current_epoch = 5;
    assert_eq!(bump(&mut m), Some(Ok(Reply::status("BUMPED 6".into()))));
}

#[test]
fn set_config_epoch_only_on_a_lonely_fresh_node() {
    let mut m = machine('a');
    let set = |m: &mut ClusterMachine, e| m.step(T0, Input::Admin(Admin::SetConfigEpoch(e))).reply;
    assert_eq!(set(&mut m, 3), ok());
    assert_eq!(
        (m.state.myself().config_epoch, m.state.current_epoch),
        (3, 3)
    );
    assert_eq!(
        set(&mut m, 4),
        error("ERR Node config epoch is already non-zero")
    );
    know(&mut m, 'b', 7002, T0);
    assert_eq!(
        set(&mut m, 4),
        error("ERR The user can assign a config epoch only when the node does not know any other node.")
    );
}

#[test]
fn reset_hard_forgets_everybody_and_takes_a_new_id() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    m.step(T0, Input::Admin(Admin::AddSlots(vec![1])));
    m.state.current_epoch = 7;
    let fx = m.step(
        T0,
        Input::Admin(Admin::Reset {
            hard: true,
            keys_in_db: 5,
        }),
    );
    assert_eq!(
        fx.reply,
        error("ERR CLUSTER RESET can't be called with master nodes containing keys")
    );
    let fx = m.step(
        T0,
        Input::Admin(Admin::Reset {
            hard: true,
            keys_in_db: 0,
        }),
    );
    assert_eq!(fx.reply, ok());
    assert_eq!(m.state.len(), 1);
    assert_ne!(m.state.myself_id(), id('a'));
    assert_eq!((m.state.current_epoch, m.state.myself().numslots()), (0, 0));
}

// ---- failure detection --------------------------------------------------------------------

#[test]
fn a_ping_pending_longer_than_the_node_timeout_marks_pfail() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    let sent = m.state.node(&id('b')).unwrap().ping_sent;
    assert_eq!(sent, 0, "the PONG answered the first PING");
    m.step(T0 + NT / 2 + 1, Input::Tick);
    let b = m.state.node(&id('b')).unwrap();
    assert_eq!(
        b.ping_sent,
        T0 + NT / 2 + 1,
        "pong older than node_timeout/2: PING"
    );
    let pinged = b.ping_sent;
    m.step(pinged + NT, Input::Tick);
    assert!(!m.state.node(&id('b')).unwrap().timed_out());
    let fx = m.step(pinged + NT + 1, Input::Tick);
    assert!(m.state.node(&id('b')).unwrap().timed_out());
    assert_eq!(saves(&fx), 0, "PFAIL is not saved");
    assert!(
        fx.effects
            .iter()
            .any(|e| matches!(e, Effect::TopologyChanged)),
        "but CLUSTER NODES shows it"
    );
    let fx = m.step(pinged + NT + 2, Input::LinkClosed { link: LinkId(999) });
    assert!(fx.effects.is_empty(), "nothing changed, nothing to publish");
}

#[test]
fn a_pong_on_the_outbound_link_clears_pfail() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    m.state
        .node_mut(&id('b'))
        .unwrap()
        .flags
        .set(NodeFlags::PFAIL);
    m.step(
        T0 + 50,
        Input::Message {
            link: b.out,
            message: Message::pong(header('b', 7002), vec![], vec![]),
        },
    );
    assert!(!m.state.node(&id('b')).unwrap().timed_out());
}

/// Myself `a` and masters `b`, `c` serving a third of the slots each; `c` is PFAIL here.
fn three_masters_with_c_suspected() -> (ClusterMachine, Peer, Peer) {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let c = know(&mut m, 'c', 7003, T0);
    give_slots(&mut m, 'a', 0..5000);
    give_slots(&mut m, 'b', 5000..10000);
    give_slots(&mut m, 'c', 10000..CLUSTER_SLOTS as u16);
    m.state.update_state(T0, true, NT);
    m.state.update_state(T0 + 2000, true, NT);
    assert_eq!(m.state.size, 3);
    m.state
        .node_mut(&id('c'))
        .unwrap()
        .flags
        .set(NodeFlags::PFAIL);
    (m, b, c)
}

#[test]
fn failure_reports_from_a_majority_of_masters_mark_fail_and_broadcast_it() {
    let (mut m, b, c) = three_masters_with_c_suspected();
    let ping = Message::ping(
        header('b', 7002),
        vec![gossip('c', 7003, NodeFlags::MASTER | NodeFlags::PFAIL)],
        vec![],
    );
    let mut h = ping.header.clone();
    h.myslots = Box::new(*m.state.node(&id('b')).unwrap().slots().as_bytes());
    let ping = Message::new(h, ping.body);
    let fx = m.step(
        T0 + 1000,
        Input::Message {
            link: b.inbound,
            message: ping,
        },
    );
    let node_c = m.state.node(&id('c')).unwrap();
    assert!(node_c.failed() && !node_c.timed_out());
    assert_eq!(node_c.fail_time, T0 + 1000);
    let fails: Vec<LinkId> = sends(&fx)
        .into_iter()
        .filter(|(_, msg)| matches!(msg.body, Body::Fail { nodename } if nodename == id('c')))
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        fails,
        vec![b.out, c.out],
        "broadcast on every outbound link"
    );
}

#[test]
fn one_report_is_not_a_majority_when_myself_is_a_replica() {
    let (mut m, b, _) = three_masters_with_c_suspected();
    m.state.del_node_slots(&id('a'));
    m.state
        .add_node(ClusterNode::new(id('d'), NodeFlags(NodeFlags::MASTER), T0))
        .unwrap();
    give_slots(&mut m, 'd', 0..5000);
    m.state.set_replica_of(&id('a'), &id('d')).unwrap();
    m.state.update_state(T0 + 10_000, true, NT);
    let ping = Message::ping(
        header('b', 7002),
        vec![gossip('c', 7003, NodeFlags::MASTER | NodeFlags::PFAIL)],
        vec![],
    );
    m.step(
        T0 + 1000,
        Input::Message {
            link: b.inbound,
            message: ping,
        },
    );
    assert!(!m.state.node(&id('c')).unwrap().failed());
    assert_eq!(m.state.failure_reports_count(&id('c'), T0 + 1000, NT), 1);
}

#[test]
fn a_fail_message_from_a_known_node_marks_fail() {
    let (mut m, b, _) = three_masters_with_c_suspected();
    let fail = Message::fail(header('b', 7002), id('c'));
    m.step(
        T0 + 5,
        Input::Message {
            link: b.inbound,
            message: fail,
        },
    );
    assert!(m.state.node(&id('c')).unwrap().failed());
}

// ---- links, publish -----------------------------------------------------------------------

#[test]
fn a_closed_outbound_link_is_reopened_by_the_next_tick() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    m.step(T0 + 1, Input::LinkClosed { link: b.out });
    assert_eq!(m.state.node(&id('b')).unwrap().link, None);
    let fx = m.step(T0 + 100, Input::Tick);
    let c = connects(&fx);
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].1.as_str(), c[0].2), ("10.0.0.2", 17002));
}

#[test]
fn publish_from_a_known_node_is_delivered_locally_and_local_publish_is_broadcast() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let msg = Message::publish(header('b', 7002), b"ch".to_vec(), b"hi".to_vec());
    let fx = m.step(
        T0,
        Input::Message {
            link: b.inbound,
            message: msg,
        },
    );
    assert!(fx.effects.iter().any(|e| matches!(e,
        Effect::Publish { shard: false, channel, message } if channel == b"ch" && message == b"hi")));
    let fx = m.step(
        T0,
        Input::Publish {
            shard: false,
            channel: b"x".to_vec(),
            message: b"y".to_vec(),
        },
    );
    let s = sends(&fx);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].0, s[0].1.message_type()),
        (b.out, Some(MessageType::Publish))
    );
}

#[test]
fn a_replica_advertises_its_masters_slots_and_epoch() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    give_slots(&mut m, 'b', 3..4);
    m.state.node_mut(&id('b')).unwrap().config_epoch = 8;
    m.state.set_replica_of(&id('a'), &id('b')).unwrap();
    let h = m.build_header();
    assert_eq!(h.slaveof, Some(id('b')));
    assert_eq!(h.config_epoch, 8);
    assert!(crate::cluster::bus::message::slot_is_set(&h.myslots, 3));
    assert!(h.flags.has(NodeFlags::SLAVE) && h.flags.has(NodeFlags::MYSELF));
}

// ---- three machines on the in-memory bus --------------------------------------------------

fn sim_machine(c: char, port: u16, seed: u64, node_timeout_ms: u64) -> ClusterMachine {
    let me = ClusterNode::new(id(c), NodeFlags(NodeFlags::MASTER), T0);
    let cfg = MachineConfig {
        node_timeout_ms,
        ..config(port)
    };
    ClusterMachine::new(ClusterState::new(me), cfg, seed)
}

/// Nodes a, b, c on 10.0.0.1-3, ports 7000-7002, met through a, each serving a third of
/// the slots, after 10 s of ticks.
fn three_node_cluster(node_timeout_ms: u64) -> SimNet {
    let mut net = SimNet::new(T0);
    for (i, c) in ['a', 'b', 'c'].into_iter().enumerate() {
        let port = 7000 + i as u16;
        let m = sim_machine(c, port, 7 + i as u64, node_timeout_ms);
        net.add(m, &format!("10.0.0.{}", i + 1));
    }
    for n in 1..3 {
        let meet = Admin::Meet {
            ip: "10.0.0.1".into(),
            port: 7000,
            cport: 17000,
        };
        assert_eq!(net.admin(n, meet), ok());
    }
    let ranges = [(0u16, 5460u16), (5461, 10922), (10923, 16383)];
    for (n, (a, b)) in ranges.into_iter().enumerate() {
        assert_eq!(net.admin(n, Admin::AddSlots((a..=b).collect())), ok());
    }
    net.tick_all(100);
    net
}

#[test]
fn three_nodes_meet_cover_the_slots_and_agree() {
    let net = three_node_cluster(NT);
    for node in &net.nodes {
        let s = &node.machine.state;
        assert_eq!(s.len(), 3, "{} knows everybody", s.myself_id());
        assert!(s.nodes().all(|n| !n.in_handshake()));
        assert_eq!(s.state, Health::Ok, "{}", s.myself_id());
        assert_eq!(s.slot_owners(), net.nodes[0].machine.state.slot_owners());
        assert_eq!(node.machine.state.myself().ip, node.ip, "own IP learned");
    }
    let owners = net.nodes[0].machine.state.slot_owners();
    assert_eq!(owners[0], Some(id('a')));
    assert_eq!(owners[5461], Some(id('b')));
    assert_eq!(owners[16383], Some(id('c')));
    let epochs: std::collections::BTreeSet<u64> = net.nodes[0]
        .machine
        .state
        .nodes()
        .map(|n| n.config_epoch)
        .collect();
    assert_eq!(
        epochs.len(),
        3,
        "collisions resolved into distinct configEpochs"
    );
}

#[test]
fn a_partitioned_master_is_failed_by_the_majority_and_recovers_after_healing() {
    let nt = 2000;
    let mut net = three_node_cluster(nt);
    assert!(net
        .nodes
        .iter()
        .all(|n| n.machine.state.state == Health::Ok));
    net.partition(2, 0, true);
    net.partition(2, 1, true);
    net.tick_all((3 * nt / 100) as usize);
    for n in 0..2 {
        let s = &net.nodes[n].machine.state;
        let c = s.node(&id('c')).unwrap();
        assert!(c.failed(), "{} sees c FAIL", s.myself_id());
        assert_eq!(s.state, Health::Fail, "a slot owner is FAIL");
    }
    let c_view = &net.nodes[2].machine.state;
    assert_eq!(c_view.state, Health::Fail, "c is in the minority");
    assert!(c_view
        .nodes()
        .filter(|n| !n.is_myself())
        .all(|n| n.timed_out()));

    net.partition(2, 0, false);
    net.partition(2, 1, false);
    net.tick_all((6 * nt / 100) as usize);
    for node in &net.nodes {
        let s = &node.machine.state;
        assert!(
            s.nodes().all(|n| !n.failed() && !n.timed_out()),
            "{}",
            s.myself_id()
        );
        assert_eq!(s.state, Health::Ok, "{}", s.myself_id());
    }
}

// ---- hostile input ------------------------------------------------------------------------

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = NodeId> {
        prop_oneof![
            Just(id('a')),
            Just(id('b')),
            Just(id('c')),
            Just(id('d')),
            prop::collection::vec(any::<u8>(), 40).prop_map(|v| {
                let mut a = [0u8; 40];
                a.copy_from_slice(&v);
                NodeId(a)
            }),
        ]
    }

    fn arb_gossip() -> impl Strategy<Value = GossipEntry> {
        (
            arb_id(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
        )
            .prop_map(|(name, flags, ping, pong, port)| GossipEntry {
                nodename: name,
                ping_sent: ping,
                pong_received: pong,
                ip: outgoing::bus_ip("10.1.1.1"),
                port,
                cport: port.wrapping_add(1),
                flags: NodeFlags(flags),
                pport: 0,
            })
    }

    fn arb_ext() -> impl Strategy<Value = PingExt> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..8).prop_map(PingExt::Hostname),
            (arb_id(), any::<u64>()).prop_map(|(name, ttl)| PingExt::ForgottenNode { name, ttl }),
            arb_id().prop_map(PingExt::ShardId),
        ]
    }

    fn arb_header() -> impl Strategy<Value = Header> {
        let ids = (arb_id(), prop::option::of(arb_id()));
        let nums = (0u64..6, 0u64..12, any::<u16>(), any::<u8>());
        let slots = prop::collection::vec(0u16..16384, 0..6);
        (ids, nums, slots, any::<u16>()).prop_map(
            |((sender, slaveof), (cfg, cur, flags, mf), slots, port)| {
                let mut h = Header::new(sender);
                h.slaveof = slaveof;
                h.config_epoch = cfg;
                h.current_epoch = cur;
                h.flags = NodeFlags(flags);
                h.mflags[0] = mf;
                h.port = port;
                h.cport = port.wrapping_add(10000);
                for s in slots {
                    set_slot(&mut h.myslots, s);
                }
                h
            },
        )
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let gossip = prop::collection::vec(arb_gossip(), 0..4);
        let ext = prop::collection::vec(arb_ext(), 0..3);
        (arb_header(), 0u8..7, gossip, ext, arb_id(), 0u64..8).prop_map(
            |(h, kind, g, e, about, epoch)| match kind {
                0 => Message::ping(h, g, e),
                1 => Message::pong(h, g, e),
                2 => Message::meet(h, g, e),
                3 => Message::fail(h, about),
                4 => {
                    let mut slots = crate::cluster::bus::message::empty_slots();
                    set_slot(&mut slots, (epoch * 1000) as u16);
                    Message::update(h, epoch, about, slots)
                }
                5 => Message::publish(h, b"c".to_vec(), b"m".to_vec()),
                _ => Message::new(h, Body::FailoverAuthRequest),
            },
        )
    }

    #[derive(Debug, Clone)]
    enum Step {
        Msg(u64, Box<Message>),
        Tick(u64),
        Close(u64),
        Accept,
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u64..8, arb_message()).prop_map(|(l, m)| Step::Msg(l, Box::new(m))),
            2 => (1u64..20_000).prop_map(Step::Tick),
            1 => (0u64..8).prop_map(Step::Close),
            1 => Just(Step::Accept),
        ]
    }

    /// The table and the link bookkeeping still agree with each other.
    fn check_invariants(m: &ClusterMachine) {
        let me = m.state.myself_id();
        for n in m.state.nodes() {
            assert_eq!(n.is_myself(), n.name == me, "only myself carries MYSELF");
        }
        for (slot, owner) in m.state.slot_owners().iter().enumerate() {
            if let Some(owner) = owner {
                let n = m.state.node(owner).expect("slot owner is known");
                assert!(n.has_slot(slot as u16));
            }
        }
        let links = m.links();
        for n in m.state.nodes() {
            for l in [n.link, n.inbound_link].into_iter().flatten() {
                assert!(links
                    .iter()
                    .any(|(id, node, _)| *id == l && *node == Some(n.name)));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_frames_and_events_never_panic_or_corrupt_the_table(
            steps in prop::collection::vec(arb_step(), 1..40)
        ) {
            let mut m = machine('a');
            know(&mut m, 'b', 7002, T0);
            know(&mut m, 'c', 7003, T0);
            let mut now = T0;
            for step in steps {
                match step {
                    Step::Msg(l, message) => {
                        m.step(now, Input::Message { link: LinkId(l), message: *message });
                    }
                    Step::Tick(dt) => {
                        now += dt;
                        m.step(now, Input::Tick);
                    }
                    Step::Close(l) => {
                        m.step(now, Input::LinkClosed { link: LinkId(l) });
                    }
                    Step::Accept => {
                        let link = m.new_link_id();
                        let input = Input::Accepted {
                            link,
                            peer_ip: "10.2.2.2".into(),
                            local_ip: "10.0.0.1".into(),
                        };
                        m.step(now, input);
                    }
                }
                check_invariants(&m);
            }
        }
    }
}

#[test]
fn clusterlink_kill_frees_the_chosen_links_and_the_cron_reconnects() {
    let mut m = machine('a');
    let b = know(&mut m, 'b', 7002, T0);
    let kill = |to, from| {
        Input::Admin(Admin::KillLink {
            node: id('b'),
            to,
            from,
        })
    };
    let closed = |fx: &Effects| -> Vec<LinkId> {
        fx.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Close { link } => Some(*link),
                _ => None,
            })
            .collect()
    };
    let fx = m.step(T0, kill(false, true));
    assert_eq!((fx.reply.clone(), closed(&fx)), (ok(), vec![b.inbound]));
    assert_eq!(m.state.node(&id('b')).unwrap().inbound_link, None);
    let fx = m.step(T0, kill(true, true));
    assert_eq!(closed(&fx), vec![b.out]);
    assert_eq!(m.state.node(&id('b')).unwrap().link, None);
    let fx = m.step(T0 + 100, Input::Tick);
    assert_eq!(connects(&fx).len(), 1, "the cron opens a new outbound link");
    let fx = m.step(
        T0,
        Input::Admin(Admin::KillLink {
            node: id('z'),
            to: true,
            from: true,
        }),
    );
    assert_eq!(fx.reply, error(&format!("ERR Unknown node {}", id('z'))));
}

#[test]
fn replicate_turns_myself_into_a_replica_and_saves() {
    let mut m = machine('a');
    know(&mut m, 'b', 7002, T0);
    let fx = m.step(T0, Input::Admin(Admin::Replicate(id('b'))));
    assert_eq!(fx.reply, ok());
    let me = m.state.myself();
    assert!(me.is_replica() && me.slaveof == Some(id('b')));
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::BecomeReplica { master } if *master == id('b'))));
    assert!(fx
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SaveConfig { .. })));
    assert_eq!(
        m.state.node(&id('b')).unwrap().replicas,
        vec![id('a')],
        "the master lists its new replica"
    );
}

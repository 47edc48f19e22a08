//! Request routing: which node serves a keyed command, decided from a `Topology` snapshot the
//! way Redis 7.0's `getNodeByQuery` decides it (unassigned slot, CROSSSLOT, cluster down,
//! MIGRATE during resharding, ASK / TRYAGAIN for a migrating slot, ASKING on an importing
//! slot, READONLY reads on a replica, MOVED), and the check `clusterRedirectBlockedClientIfNeeded`
//! makes for clients blocked on a key. Whether a key exists here is the caller's to answer:
//! routing only asks when the slot is migrating or importing.

use super::topology::{Endpoint, Topology};
use crate::commands::errors;
use crate::resp::ErrorReply;
use crate::slot::{key_slot, Slot};

/// The configuration switches routing reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// `cluster-allow-reads-when-down`.
    pub allow_reads_when_down: bool,
    /// `cluster-allow-pubsubshard-when-down`.
    pub allow_pubsubshard_when_down: bool,
    /// Redirect to the plaintext port (a plaintext client of a `tls-cluster`).
    pub plaintext_port: bool,
    /// The client is connected over IPv6: redirect to announced client IPv6 addresses
    /// (IPv4 clients get the client IPv4 ones).
    pub ipv6_client: bool,
}

impl Default for RoutingConfig {
    /// Redis's defaults.
    fn default() -> Self {
        RoutingConfig {
            allow_reads_when_down: false,
            allow_pubsubshard_when_down: true,
            plaintext_port: false,
            ipv6_client: false,
        }
    }
}

/// One command (or one EXEC with its queued commands) as routing sees it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Query<'a> {
    /// The key arguments in order (for EXEC, those of every queued command; for sharded
    /// Pub/Sub, the channels).
    pub keys: &'a [&'a [u8]],
    /// The command itself is a write. For EXEC this is EXEC's own flag (false), as Redis's
    /// `getCommandFlags` gives it to the cluster-down check.
    pub write: bool,
    /// EXEC holds a queued write (what the READONLY-replica check looks at).
    pub queued_write: bool,
    /// The client sent ASKING, or the command carries the `asking` flag (RESTORE-ASKING).
    pub asking: bool,
    /// The client sent READONLY.
    pub readonly: bool,
    /// SPUBLISH, SSUBSCRIBE or SUNSUBSCRIBE.
    pub pubsub_shard: bool,
    /// MIGRATE, which always runs here while its slot is open.
    pub migrate: bool,
    pub config: RoutingConfig,
}

/// Why the cluster refuses a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// The slot has no owner.
    Unbound,
    /// `cluster_state` is fail.
    State,
    /// `cluster_state` is fail and `cluster-allow-reads-when-down` lets reads through only.
    ReadsOnly,
}

/// Routing's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Serve,
    Moved { slot: Slot, endpoint: Endpoint },
    Ask { slot: Slot, endpoint: Endpoint },
    TryAgain,
    CrossSlot,
    Down(DownReason),
}

impl Route {
    /// The error reply for a refusal or redirect; `None` when the command is served here.
    pub fn error(&self) -> Option<ErrorReply> {
        Some(match self {
            Route::Serve => return None,
            Route::Moved { slot, endpoint } => errors::moved(*slot, endpoint),
            Route::Ask { slot, endpoint } => errors::ask(*slot, endpoint),
            Route::TryAgain => errors::TRYAGAIN,
            Route::CrossSlot => errors::CROSSSLOT,
            Route::Down(DownReason::Unbound) => errors::CLUSTERDOWN_UNBOUND,
            Route::Down(DownReason::State) => errors::CLUSTERDOWN,
            Route::Down(DownReason::ReadsOnly) => errors::CLUSTERDOWN_READS_ONLY,
        })
    }
}

/// Whether a slot is being resharded through myself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Stable,
    /// Myself owns the slot and is migrating it to this node.
    Migrating(super::topology::NodeIndex),
    Importing,
}

/// What a query's keys look like: distinct or not, present here or not.
struct Keys {
    /// More than one distinct key.
    multiple: bool,
    missing: usize,
    existing: usize,
}

/// Decides where `q` runs. `exists` answers whether a key is present here; it is asked
/// only while the slot is migrating or importing (and never for sharded Pub/Sub channels).
pub fn route(t: &Topology, q: &Query, exists: &mut dyn FnMut(&[u8]) -> bool) -> Route {
    let Some(&first) = q.keys.first() else {
        return Route::Serve;
    };
    let slot = key_slot(first);
    let Some(owner) = t.owner(slot) else {
        return Route::Down(DownReason::Unbound);
    };
    let open = open_state(t, slot, owner);
    let keys = match survey(q, slot, open, exists) {
        Some(keys) => keys,
        None => return Route::CrossSlot,
    };
    if !t.state_ok() {
        if let Some(reason) = down_reason(q) {
            return Route::Down(reason);
        }
    }
    if open != Open::Stable && q.migrate {
        return Route::Serve;
    }
    let redirect = |node| t.endpoint_for(node, q.config.plaintext_port, q.config.ipv6_client);
    if let Open::Migrating(target) = open {
        if keys.missing > 0 {
            return if keys.existing > 0 {
                Route::TryAgain
            } else {
                Route::Ask {
                    slot,
                    endpoint: redirect(target),
                }
            };
        }
    }
    if open == Open::Importing && q.asking {
        return if keys.multiple && keys.missing > 0 {
            Route::TryAgain
        } else {
            Route::Serve
        };
    }
    let write = q.write || q.queued_write;
    if (q.readonly || q.pubsub_shard) && !write && t.myself_replicates(owner) {
        return Route::Serve;
    }
    if owner == t.myself_index() {
        Route::Serve
    } else {
        Route::Moved {
            slot,
            endpoint: redirect(owner),
        }
    }
}

/// Migrating only counts when myself owns the slot; importing is looked at otherwise.
fn open_state(t: &Topology, slot: Slot, owner: super::topology::NodeIndex) -> Open {
    let migrating = (owner == t.myself_index())
        .then(|| t.migrating_to(slot))
        .flatten();
    match migrating {
        Some(target) => Open::Migrating(target),
        None if t.importing_from(slot).is_some() => Open::Importing,
        None => Open::Stable,
    }
}

/// Checks every key hashes to `slot` (`None`: CROSSSLOT) and, for an open slot, counts the
/// keys present here.
fn survey(
    q: &Query,
    slot: Slot,
    open: Open,
    exists: &mut dyn FnMut(&[u8]) -> bool,
) -> Option<Keys> {
    let first = q.keys[0];
    let mut keys = Keys {
        multiple: false,
        missing: 0,
        existing: 0,
    };
    let count = open != Open::Stable && !q.pubsub_shard;
    for &key in q.keys {
        if key != first {
            if key_slot(key) != slot {
                return None;
            }
            keys.multiple = true;
        }
        if count {
            if exists(key) {
                keys.existing += 1;
            } else {
                keys.missing += 1;
            }
        }
    }
    Some(keys)
}

/// While `cluster_state` is fail: sharded Pub/Sub and (if allowed) reads pass.
fn down_reason(q: &Query) -> Option<DownReason> {
    if q.pubsub_shard {
        return (!q.config.allow_pubsubshard_when_down).then_some(DownReason::State);
    }
    if !q.config.allow_reads_when_down {
        Some(DownReason::State)
    } else if q.write {
        Some(DownReason::ReadsOnly)
    } else {
        None
    }
}

/// For a client blocked on `key` (BLPOP, BZPOPMIN, XREAD BLOCK ...): the error to unblock it
/// with when the cluster failed, the slot lost its owner, or it moved to a node other than
/// myself and is not being imported here. A READONLY client blocked by a read stays on the
/// replica of the slot's owner. `None` keeps it blocked.
pub fn redirect_blocked(
    t: &Topology,
    key: &[u8],
    readonly: bool,
    write: bool,
    config: RoutingConfig,
) -> Option<Route> {
    if !t.state_ok() {
        return Some(Route::Down(DownReason::State));
    }
    let slot = key_slot(key);
    let owner = t.owner(slot);
    let served_here = owner
        .is_some_and(|o| o == t.myself_index() || (readonly && !write && t.myself_replicates(o)));
    if served_here || t.importing_from(slot).is_some() {
        return None;
    }
    Some(match owner {
        None => Route::Down(DownReason::Unbound),
        Some(o) => Route::Moved {
            slot,
            endpoint: t.endpoint_for(o, config.plaintext_port, config.ipv6_client),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::node::NodeId;
    use crate::cluster::topology::{NodeSpec, TopologyBuilder};
    use crate::config::values::ClusterEndpointType;

    const A: NodeId = NodeId([b'a'; 40]);
    const B: NodeId = NodeId([b'b'; 40]);
    const R: NodeId = NodeId([b'r'; 40]);

    /// Slots of a few keys (checked in `keys_used_here_hash_where_expected`).
    const FOO: Slot = 12182; // "foo", "{foo}bar"
    const BAR: Slot = 5061; // "bar"

    /// Myself (A, 127.0.0.1:6379) serves 0..=8191, B (127.0.0.1:6380) the rest.
    fn two_masters(me: NodeId) -> TopologyBuilder {
        Topology::builder(me)
            .node(NodeSpec::new(A, "127.0.0.1", 6379))
            .node(NodeSpec::new(B, "127.0.0.1", 6380).hostname("b.example"))
            .assign(0..=8191, A)
            .assign(8192..=16383, B)
    }

    fn query<'a>(keys: &'a [&'a [u8]]) -> Query<'a> {
        Query {
            keys,
            ..Query::default()
        }
    }

    fn write<'a>(keys: &'a [&'a [u8]]) -> Query<'a> {
        Query {
            write: true,
            ..query(keys)
        }
    }

    fn read<'a>(keys: &'a [&'a [u8]]) -> Query<'a> {
        query(keys)
    }

    /// Routes with no key present here.
    fn route_empty(t: &Topology, q: &Query) -> Route {
        route(t, q, &mut |_| false)
    }

    /// Routes with exactly `present` present here.
    fn route_with(t: &Topology, q: &Query, present: &[&[u8]]) -> Route {
        route(t, q, &mut |k| present.contains(&k))
    }

    fn moved(slot: Slot, to: &str) -> Route {
        let (host, port) = to.rsplit_once(':').unwrap();
        Route::Moved {
            slot,
            endpoint: Endpoint {
                host: host.into(),
                port: port.parse().unwrap(),
            },
        }
    }

    fn ask(slot: Slot, to: &str) -> Route {
        match moved(slot, to) {
            Route::Moved { slot, endpoint } => Route::Ask { slot, endpoint },
            _ => unreachable!(),
        }
    }

    #[test]
    fn keys_used_here_hash_where_expected() {
        assert_eq!(key_slot(b"foo"), FOO);
        assert_eq!(key_slot(b"{foo}bar"), FOO);
        assert_eq!(key_slot(b"bar"), BAR);
    }

    #[test]
    fn a_keyless_command_is_served_even_when_the_cluster_is_down() {
        let t = two_masters(A).state_ok(false).build();
        assert_eq!(route_empty(&t, &write(&[])), Route::Serve);
    }

    #[test]
    fn a_key_in_a_slot_of_myself_is_served() {
        let t = two_masters(A).build();
        assert_eq!(route_empty(&t, &write(&[b"bar"])), Route::Serve);
    }

    #[test]
    fn a_write_to_a_slot_owned_elsewhere_is_moved() {
        let t = two_masters(A).build();
        assert_eq!(
            route_empty(&t, &write(&[b"foo"])),
            moved(FOO, "127.0.0.1:6380")
        );
        assert_eq!(
            route_empty(&t, &write(&[b"foo"])).error().unwrap().text(),
            "MOVED 12182 127.0.0.1:6380"
        );
    }

    #[test]
    fn moved_names_the_hostname_when_it_is_preferred() {
        let t = two_masters(A)
            .endpoint_type(ClusterEndpointType::Hostname)
            .build();
        assert_eq!(
            route_empty(&t, &read(&[b"foo"])),
            moved(FOO, "b.example:6380")
        );
    }

    #[test]
    fn redirects_name_the_announced_client_ip_of_the_clients_family() {
        let t = Topology::builder(A)
            .node(NodeSpec::new(A, "127.0.0.1", 6379))
            .node(NodeSpec::new(B, "10.0.0.2", 6380).client_ips("192.0.2.2", "2001:db8::2"))
            .node(NodeSpec::new(R, "10.0.0.3", 6381).client_ips("", "2001:db8::3"))
            .assign(0..=8191, A)
            .assign(8192..=12181, B)
            .assign(12182..=16383, R)
            .migrating(BAR, B)
            .build();
        let over = |ipv6_client| RoutingConfig {
            ipv6_client,
            ..RoutingConfig::default()
        };
        let q = |keys, ipv6| Query {
            config: over(ipv6),
            ..read(keys)
        };
        assert_eq!(
            route_empty(&t, &q(&[b"foo"], true)),
            moved(FOO, "2001:db8::3:6381")
        );
        // No client IPv4 announced: the bus IP.
        assert_eq!(
            route_empty(&t, &q(&[b"foo"], false)),
            moved(FOO, "10.0.0.3:6381")
        );
        assert_eq!(
            route_empty(&t, &q(&[b"bar"], false)),
            ask(BAR, "192.0.2.2:6380")
        );
        assert_eq!(
            route_empty(&t, &q(&[b"bar"], true)),
            ask(BAR, "2001:db8::2:6380")
        );
        let blocked = redirect_blocked(&t, b"foo", false, false, over(true));
        assert_eq!(blocked, Some(moved(FOO, "2001:db8::3:6381")));
    }

    #[test]
    fn moved_names_an_empty_endpoint_when_unknown_endpoint_is_preferred() {
        let t = two_masters(A)
            .endpoint_type(ClusterEndpointType::UnknownEndpoint)
            .build();
        let err = route_empty(&t, &read(&[b"foo"])).error().unwrap();
        assert_eq!(err.text(), "MOVED 12182 :6380");
    }

    #[test]
    fn a_slot_without_owner_is_not_served_even_before_the_state_check() {
        let t = Topology::builder(A).assign(0..=100, A).build();
        let q = read(&[b"foo"]);
        assert_eq!(route_empty(&t, &q), Route::Down(DownReason::Unbound));
        assert_eq!(
            route_empty(&t, &q).error().unwrap().text(),
            "CLUSTERDOWN Hash slot not served"
        );
    }

    #[test]
    fn unbound_first_key_wins_over_crossslot() {
        let t = Topology::builder(A).assign(0..=8191, A).build();
        let q = write(&[b"foo", b"bar"]);
        assert_eq!(route_empty(&t, &q), Route::Down(DownReason::Unbound));
    }

    #[test]
    fn multi_key_command_across_slots_is_crossslot() {
        let t = two_masters(A).build();
        let q = write(&[b"bar", b"foo"]);
        assert_eq!(route_empty(&t, &q), Route::CrossSlot);
        assert_eq!(
            route_empty(&t, &q).error().unwrap().text(),
            "CROSSSLOT Keys in request don't hash to the same slot"
        );
    }

    #[test]
    fn crossslot_wins_over_cluster_down_and_moved() {
        let t = two_masters(B).state_ok(false).build();
        assert_eq!(route_empty(&t, &write(&[b"bar", b"foo"])), Route::CrossSlot);
    }

    #[test]
    fn multi_key_command_in_one_slot_is_routed_as_one_key() {
        let t = two_masters(A).build();
        let q = write(&[b"foo", b"{foo}bar", b"foo"]);
        assert_eq!(route_empty(&t, &q), moved(FOO, "127.0.0.1:6380"));
        let t = two_masters(B).build();
        assert_eq!(route_empty(&t, &q), Route::Serve);
    }

    #[test]
    fn the_cluster_down_refuses_keyed_commands() {
        let t = two_masters(A).state_ok(false).build();
        let q = read(&[b"bar"]);
        assert_eq!(route_empty(&t, &q), Route::Down(DownReason::State));
        assert_eq!(
            route_empty(&t, &q).error().unwrap().text(),
            "CLUSTERDOWN The cluster is down"
        );
    }

    #[test]
    fn allow_reads_when_down_lets_reads_through_and_refuses_writes() {
        let t = two_masters(A).state_ok(false).build();
        let config = RoutingConfig {
            allow_reads_when_down: true,
            ..RoutingConfig::default()
        };
        let r = Query {
            config,
            ..read(&[b"bar"])
        };
        assert_eq!(route_empty(&t, &r), Route::Serve);
        let w = Query {
            config,
            ..write(&[b"bar"])
        };
        assert_eq!(route_empty(&t, &w), Route::Down(DownReason::ReadsOnly));
        assert_eq!(
            route_empty(&t, &w).error().unwrap().text(),
            "CLUSTERDOWN The cluster is down and only accepts read commands"
        );
        // A read for another node's slot is still redirected.
        let elsewhere = Query {
            config,
            ..read(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &elsewhere), moved(FOO, "127.0.0.1:6380"));
    }

    #[test]
    fn exec_is_judged_by_its_own_flags_when_the_cluster_is_down() {
        let t = two_masters(A).state_ok(false).build();
        let q = Query {
            queued_write: true,
            config: RoutingConfig {
                allow_reads_when_down: true,
                ..RoutingConfig::default()
            },
            ..read(&[b"bar"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
    }

    #[test]
    fn sharded_pubsub_is_allowed_when_down_unless_configured_otherwise() {
        let t = two_masters(A).state_ok(false).build();
        let q = Query {
            pubsub_shard: true,
            ..read(&[b"bar"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
        let strict = Query {
            config: RoutingConfig {
                allow_pubsubshard_when_down: false,
                ..RoutingConfig::default()
            },
            ..q
        };
        assert_eq!(route_empty(&t, &strict), Route::Down(DownReason::State));
    }

    #[test]
    fn a_migrating_slot_serves_keys_still_here() {
        let t = two_masters(A).migrating(BAR, B).build();
        assert_eq!(route_with(&t, &write(&[b"bar"]), &[b"bar"]), Route::Serve);
    }

    #[test]
    fn a_migrating_slot_asks_the_target_for_missing_keys() {
        let t = two_masters(A).migrating(BAR, B).build();
        let r = route_empty(&t, &write(&[b"bar"]));
        assert_eq!(r, ask(BAR, "127.0.0.1:6380"));
        assert_eq!(r.error().unwrap().text(), "ASK 5061 127.0.0.1:6380");
    }

    #[test]
    fn a_migrating_slot_with_some_keys_missing_is_tryagain() {
        let t = two_masters(A).migrating(BAR, B).build();
        let q = write(&[b"bar", b"{bar}2"]);
        let r = route_with(&t, &q, &[b"bar"]);
        assert_eq!(r, Route::TryAgain);
        assert_eq!(
            r.error().unwrap().text(),
            "TRYAGAIN Multiple keys request during rehashing of slot"
        );
        assert_eq!(route_empty(&t, &q), ask(BAR, "127.0.0.1:6380"));
    }

    #[test]
    fn migrating_only_counts_for_a_slot_myself_owns() {
        // A stale migrating mark on a slot now owned by B: plain MOVED.
        let t = two_masters(A).migrating(FOO, B).build();
        assert_eq!(
            route_empty(&t, &write(&[b"foo"])),
            moved(FOO, "127.0.0.1:6380")
        );
    }

    #[test]
    fn the_keyspace_is_asked_only_about_open_slots() {
        let t = two_masters(A).build();
        let mut asked = 0;
        route(&t, &write(&[b"bar", b"{bar}x"]), &mut |_| {
            asked += 1;
            true
        });
        assert_eq!(asked, 0);
        let t = two_masters(A).migrating(BAR, B).build();
        route(&t, &write(&[b"bar", b"{bar}x"]), &mut |_| {
            asked += 1;
            true
        });
        assert_eq!(asked, 2);
    }

    #[test]
    fn migrate_runs_here_while_its_slot_is_open() {
        let t = two_masters(A).migrating(BAR, B).build();
        let q = Query {
            migrate: true,
            ..write(&[b"bar"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
        let t = two_masters(A).importing(FOO, B).build();
        let q = Query {
            migrate: true,
            ..write(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
    }

    #[test]
    fn an_importing_slot_moves_clients_that_did_not_ask() {
        let t = two_masters(A).importing(FOO, B).build();
        assert_eq!(
            route_empty(&t, &write(&[b"foo"])),
            moved(FOO, "127.0.0.1:6380")
        );
    }

    #[test]
    fn asking_client_may_use_an_importing_slot_once() {
        let t = two_masters(A).importing(FOO, B).build();
        let q = Query {
            asking: true,
            ..write(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
    }

    #[test]
    fn asking_for_several_keys_of_an_importing_slot_needs_them_all_here() {
        let t = two_masters(A).importing(FOO, B).build();
        let q = Query {
            asking: true,
            ..write(&[b"foo", b"{foo}bar"])
        };
        assert_eq!(route_with(&t, &q, &[b"foo"]), Route::TryAgain);
        assert_eq!(route_with(&t, &q, &[b"foo", b"{foo}bar"]), Route::Serve);
        // The same key twice is one key.
        let same = Query {
            keys: &[b"foo", b"foo"],
            ..q
        };
        assert_eq!(route_empty(&t, &same), Route::Serve);
    }

    #[test]
    fn readonly_client_reads_from_its_master_slots() {
        let t = two_masters(R)
            .node(NodeSpec::new(R, "127.0.0.1", 6381).replica_of(B))
            .build();
        let q = Query {
            readonly: true,
            ..read(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
        // Not a slot of its master: redirected.
        let other = Query {
            readonly: true,
            ..read(&[b"bar"])
        };
        assert_eq!(route_empty(&t, &other), moved(BAR, "127.0.0.1:6379"));
    }

    #[test]
    fn a_replica_moves_writes_and_reads_of_clients_without_readonly() {
        let t = two_masters(R)
            .node(NodeSpec::new(R, "127.0.0.1", 6381).replica_of(B))
            .build();
        let w = Query {
            readonly: true,
            ..write(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &w), moved(FOO, "127.0.0.1:6380"));
        let exec = Query {
            readonly: true,
            queued_write: true,
            ..read(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &exec), moved(FOO, "127.0.0.1:6380"));
        assert_eq!(
            route_empty(&t, &read(&[b"foo"])),
            moved(FOO, "127.0.0.1:6380")
        );
    }

    #[test]
    fn sharded_pubsub_is_served_by_a_replica_of_the_owner() {
        let t = two_masters(R)
            .node(NodeSpec::new(R, "127.0.0.1", 6381).replica_of(B))
            .build();
        let q = Query {
            pubsub_shard: true,
            ..read(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &q), Route::Serve);
    }

    #[test]
    fn sharded_pubsub_channels_are_not_looked_up_during_migration() {
        let t = two_masters(A).migrating(BAR, B).build();
        let q = Query {
            pubsub_shard: true,
            ..read(&[b"bar"])
        };
        let mut asked = false;
        assert_eq!(
            route(&t, &q, &mut |_| {
                asked = true;
                false
            }),
            Route::Serve
        );
        assert!(!asked);
    }

    #[test]
    fn redirects_use_the_plaintext_port_when_asked_and_known() {
        let t = Topology::builder(A)
            .node(NodeSpec::new(A, "127.0.0.1", 6379))
            .node(NodeSpec::new(B, "127.0.0.1", 16380).pport(6380))
            .assign(0..=16383, B)
            .build();
        let q = Query {
            config: RoutingConfig {
                plaintext_port: true,
                ..RoutingConfig::default()
            },
            ..read(&[b"foo"])
        };
        assert_eq!(route_empty(&t, &q), moved(FOO, "127.0.0.1:6380"));
        assert_eq!(
            route_empty(&t, &read(&[b"foo"])),
            moved(FOO, "127.0.0.1:16380")
        );
    }

    #[test]
    fn a_blocked_client_is_released_when_the_cluster_fails() {
        let t = two_masters(A).state_ok(false).build();
        let r = redirect_blocked(&t, b"bar", false, true, RoutingConfig::default());
        assert_eq!(r, Some(Route::Down(DownReason::State)));
    }

    #[test]
    fn a_blocked_client_stays_while_its_slot_is_here_or_imported() {
        let t = two_masters(A).importing(FOO, B).build();
        let c = RoutingConfig::default();
        assert_eq!(redirect_blocked(&t, b"bar", false, true, c), None);
        assert_eq!(redirect_blocked(&t, b"foo", false, true, c), None);
    }

    #[test]
    fn a_blocked_client_follows_its_slot_to_the_new_owner() {
        let t = two_masters(A).build();
        let c = RoutingConfig::default();
        assert_eq!(
            redirect_blocked(&t, b"foo", false, true, c),
            Some(moved(FOO, "127.0.0.1:6380"))
        );
        let unbound = Topology::builder(A).assign(0..=100, A).build();
        assert_eq!(
            redirect_blocked(&unbound, b"foo", false, true, c),
            Some(Route::Down(DownReason::Unbound))
        );
    }

    #[test]
    fn a_blocked_readonly_reader_stays_on_the_replica_of_the_owner() {
        let t = two_masters(R)
            .node(NodeSpec::new(R, "127.0.0.1", 6381).replica_of(B))
            .build();
        let c = RoutingConfig::default();
        assert_eq!(redirect_blocked(&t, b"foo", true, false, c), None);
        assert!(redirect_blocked(&t, b"foo", false, false, c).is_some());
        assert!(redirect_blocked(&t, b"foo", true, true, c).is_some());
    }
}

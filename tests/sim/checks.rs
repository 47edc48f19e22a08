//! What "the cluster has converged" means, checked over every host's table.

use std::collections::BTreeMap;

use ferrodis::cluster::node::{NodeFlags, NodeId};
use ferrodis::cluster::state::{Health, CLUSTER_SLOTS};

use crate::world::{World, CPORT, PORT};

/// Every host is up and: knows exactly the other hosts, each at its address, none in
/// handshake, without address, PFAIL or FAIL; knows its own IP; sees every host's role and
/// configEpoch as that host does; agrees that the slots belong to `owners` (host indexes)
/// with no slot open; has cluster_state ok; and all hosts share one currentEpoch while every
/// master has a configEpoch of its own. Err says what is still off.
pub fn agreement(world: &World, owners: &[Option<usize>]) -> Result<(), String> {
    let n = world.hosts.len();
    let expected: Vec<Option<NodeId>> = owners
        .iter()
        .map(|o| o.map(|h| world.hosts[h].id))
        .collect();
    assert_eq!(expected.len(), CLUSTER_SLOTS);
    let mut current_epoch: Option<(u64, usize)> = None;
    let mut master_epochs: BTreeMap<u64, usize> = BTreeMap::new();
    let unhealthy = NodeFlags::HANDSHAKE | NodeFlags::NOADDR | NodeFlags::PFAIL | NodeFlags::FAIL;
    for (h, host) in world.hosts.iter().enumerate() {
        let Some(state) = host.state() else {
            return Err(format!("host {h} is down"));
        };
        if state.len() != n {
            return Err(format!("host {h} knows {} nodes, not {n}", state.len()));
        }
        let me = state.myself();
        if me.ip != host.ip {
            return Err(format!("host {h} believes its IP is {:?}", me.ip));
        }
        for node in state.nodes() {
            let Some(x) = world.host_of(&node.name) else {
                return Err(format!(
                    "host {h} knows a node that is no host: {} {}",
                    node.name,
                    node.flags.render()
                ));
            };
            if node.flags.has(unhealthy) {
                return Err(format!("host {h} sees host {x} as {}", node.flags.render()));
            }
            if x == h {
                continue;
            }
            if node.ip != world.hosts[x].ip || node.port != PORT || node.cport != CPORT {
                return Err(format!(
                    "host {h} has host {x} at {}:{}@{}",
                    node.ip, node.port, node.cport
                ));
            }
            let Some(theirs) = world.hosts[x].state() else {
                return Err(format!("host {x} is down"));
            };
            let them = theirs.myself();
            if node.is_master() != them.is_master() {
                return Err(format!("host {h} has the wrong role for host {x}"));
            }
            if node.is_master() && node.config_epoch != them.config_epoch {
                return Err(format!(
                    "host {h} has configEpoch {} for host {x}, which has {}",
                    node.config_epoch, them.config_epoch
                ));
            }
        }
        if state.slot_owners() != expected.as_slice() {
            let slot = (0..CLUSTER_SLOTS)
                .find(|s| state.slot_owners()[*s] != expected[*s])
                .unwrap_or(0);
            let got = state.slot_owners()[slot].and_then(|id| world.host_of(&id));
            return Err(format!(
                "host {h}: slot {slot} belongs to host {got:?}, expected {:?}",
                owners[slot]
            ));
        }
        if !state.open_slots().is_empty() {
            return Err(format!("host {h} still has open slots"));
        }
        if state.state != Health::Ok {
            return Err(format!("host {h} has cluster_state fail"));
        }
        match current_epoch {
            None => current_epoch = Some((state.current_epoch, h)),
            Some((e, first)) if e != state.current_epoch => {
                return Err(format!(
                    "currentEpoch {e} on host {first} but {} on host {h}",
                    state.current_epoch
                ));
            }
            Some(_) => {}
        }
        if me.is_master() {
            if let Some(other) = master_epochs.insert(me.config_epoch, h) {
                return Err(format!(
                    "masters {other} and {h} share configEpoch {}",
                    me.config_epoch
                ));
            }
        }
    }
    Ok(())
}

/// Slots split into `masters.len()` contiguous ranges, in order.
pub fn split_slots(masters: &[usize]) -> Vec<Option<usize>> {
    let m = masters.len();
    (0..CLUSTER_SLOTS)
        .map(|s| Some(masters[s * m / CLUSTER_SLOTS]))
        .collect()
}

//! Slot ownership and epochs: adopting a newer slot configuration
//! (clusterUpdateSlotsConfigWith, strictly greater configEpoch wins, importing slots are
//! left to the admin), turning into a replica of the node that took our last slot
//! (clusterSetMaster), configEpoch collisions between masters (the smaller node id moves)
//! and bumping our configEpoch without consensus.

use super::{
    ClusterMachine, Effect, LL_VERBOSE, LL_WARNING, TODO_FSYNC_CONFIG, TODO_SAVE_CONFIG,
    TODO_UPDATE_STATE,
};
use crate::cluster::node::NodeId;
use crate::cluster::state::{Slot, CLUSTER_SLOTS};

fn claimed(bitmap: &[u8; CLUSTER_SLOTS / 8], slot: Slot) -> bool {
    bitmap[usize::from(slot >> 3)] & (1 << (slot & 7)) != 0
}

impl ClusterMachine {
    /// isSlotUnclaimed: no owner, or an owner that stopped claiming it.
    pub(super) fn slot_unclaimed(&self, slot: Slot) -> bool {
        self.state.slot_owner(slot).is_none() || self.owner_not_claiming.get(slot)
    }

    /// `owner` claims `slots` at `epoch` (from its PING / PONG, or an UPDATE about it).
    pub(super) fn update_slots_config_with(
        &mut self,
        owner: &NodeId,
        epoch: u64,
        slots: &[u8; CLUSTER_SLOTS / 8],
    ) {
        let me = self.state.myself_id();
        if *owner == me {
            self.log(LL_WARNING, "Discarding UPDATE message about myself.".into());
            return;
        }
        let curmaster = if self.state.myself().is_master() {
            Some(me)
        } else {
            self.state.myself().slaveof
        };
        let mut owner_slots = 0usize;
        let mut taken_from_curmaster = 0usize;
        let mut dirty: Vec<Slot> = Vec::new();
        for slot in 0..CLUSTER_SLOTS as Slot {
            let current = self.state.slot_owner(slot).copied();
            if !claimed(slots, slot) {
                if current == Some(*owner) {
                    self.owner_not_claiming.set(slot);
                }
                continue;
            }
            owner_slots += 1;
            if current == Some(*owner) {
                self.owner_not_claiming.clear(slot);
                continue;
            }
            if self.state.importing_from(slot).is_some() {
                continue;
            }
            let older = current
                .and_then(|c| self.state.node(&c))
                .is_some_and(|c| c.config_epoch < epoch);
            if !(self.slot_unclaimed(slot) || older) {
                continue;
            }
            if current == Some(me) {
                dirty.push(slot);
            }
            if current.is_some() && current == curmaster {
                taken_from_curmaster += 1;
            }
            let _ = self.state.set_slot_owner(slot, owner);
            self.owner_not_claiming.clear(slot);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        }
        self.after_slots_update(owner, curmaster, owner_slots, taken_from_curmaster, dirty);
    }

    /// What losing slots means for myself: follow the new owner when my shard is left with
    /// none, escape a replica chain, or drop the keys of the slots I lost.
    fn after_slots_update(
        &mut self,
        owner: &NodeId,
        curmaster: Option<NodeId>,
        owner_slots: usize,
        taken: usize,
        dirty: Vec<Slot>,
    ) {
        let curmaster_empty = curmaster
            .and_then(|m| self.state.node(&m))
            .is_some_and(|m| m.numslots() == 0);
        let follow = self.config.allow_replica_migration || owner_slots == taken;
        if taken > 0 && curmaster_empty && follow {
            let text = format!(
                "Configuration change detected. Reconfiguring myself as a replica of {owner}"
            );
            self.log(LL_WARNING, text);
            self.set_my_master(owner);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
            return;
        }
        let me = self.state.myself_id();
        let grand = self
            .state
            .myself()
            .slaveof
            .and_then(|m| self.state.node(&m))
            .and_then(|m| m.slaveof)
            .filter(|g| *g != me);
        if let Some(grand) = grand {
            let text = format!(
                "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {grand}"
            );
            self.log(LL_WARNING, text);
            self.set_my_master(&grand);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        } else if !dirty.is_empty() {
            self.emit(Effect::DeleteKeysInSlots(dirty));
        }
    }

    /// clusterSetMaster: myself replicates `master` from now on; a former master closes its
    /// open slots.
    pub(super) fn set_my_master(&mut self, master: &NodeId) {
        let me = self.state.myself_id();
        if self.state.myself().is_master() {
            self.state.close_all_slots();
        }
        if self.state.set_replica_of(&me, master).is_ok() {
            self.emit(Effect::BecomeReplica { master: *master });
        }
    }

    /// clusterHandleConfigEpochCollision: two masters share a configEpoch; the one with the
    /// smaller node id takes a fresh epoch, so eventually all differ.
    pub(super) fn handle_config_epoch_collision(&mut self, sender: &NodeId) {
        let me = self.state.myself_id();
        if sender.as_bytes() <= me.as_bytes() {
            return;
        }
        self.state.current_epoch += 1;
        let epoch = self.state.current_epoch;
        self.state.myself_mut().config_epoch = epoch;
        self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        let text = format!(
            "WARNING: configEpoch collision with node {sender}. configEpoch set to {epoch}"
        );
        self.log(LL_VERBOSE, text);
    }

    /// clusterBumpConfigEpochWithoutConsensus: take a new epoch unless mine is already the
    /// unique greatest. Returns whether it moved.
    pub(super) fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.state.max_epoch();
        let mine = self.state.myself().config_epoch;
        if mine != 0 && mine == max {
            return false;
        }
        self.state.current_epoch += 1;
        let epoch = self.state.current_epoch;
        self.state.myself_mut().config_epoch = epoch;
        self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
        self.log(LL_WARNING, format!("New configEpoch set to {epoch}"));
        true
    }
}

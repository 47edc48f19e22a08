//! The CLUSTER subcommands that change the node table, with the checks and error texts of
//! Redis 7.0's clusterCommand that depend on the state: MEET (clusterStartHandshake),
//! ADDSLOTS / DELSLOTS / FLUSHSLOTS, SETSLOT, FORGET (with the 60 s blacklist), RESET,
//! SET-CONFIG-EPOCH, BUMPEPOCH, SAVECONFIG and REPLICATE, and DEBUG CLUSTERLINK KILL.

use core::net::IpAddr;

use super::{
    Admin, ClusterMachine, Effect, SetSlot, BLACKLIST_TTL_MS, LL_NOTICE, LL_WARNING,
    TODO_FSYNC_CONFIG, TODO_SAVE_CONFIG, TODO_UPDATE_STATE,
};
use crate::cluster::node::{NodeFlags, NodeId};
use crate::cluster::state::{ClusterNode, Slot, CLUSTER_SLOTS};
use crate::resp::{ErrorReply, Reply};

type AdminResult = Result<Reply, ErrorReply>;

fn err(text: String) -> ErrorReply {
    ErrorReply::owned(text)
}

impl ClusterMachine {
    pub(super) fn admin(&mut self, now: u64, cmd: Admin) -> AdminResult {
        match cmd {
            Admin::Meet { ip, port, cport } => self.meet(now, &ip, port, cport),
            Admin::AddSlots(slots) => self.add_del_slots(&slots, false),
            Admin::DelSlots(slots) => self.add_del_slots(&slots, true),
            Admin::FlushSlots { keys_in_db } => self.flush_slots(keys_in_db),
            Admin::SetSlot {
                slot,
                action,
                keys_in_slot,
            } => self.set_slot(now, slot, action, keys_in_slot),
            Admin::Forget(id) => self.forget(now, &id),
            Admin::Reset { hard, keys_in_db } => self.reset(hard, keys_in_db),
            Admin::SetConfigEpoch(epoch) => self.set_config_epoch(epoch),
            Admin::BumpEpoch => {
                let word = if self.bump_epoch_without_consensus() {
                    "BUMPED"
                } else {
                    "STILL"
                };
                let epoch = self.state.myself().config_epoch;
                Ok(Reply::status(format!("{word} {epoch}")))
            }
            Admin::SaveConfig => {
                self.todo(TODO_SAVE_CONFIG | TODO_FSYNC_CONFIG);
                Ok(Reply::OK)
            }
            Admin::Replicate(master) => self.replicate(&master),
            Admin::KillLink { node, to, from } => {
                let Some(n) = self.state.node(&node) else {
                    return Err(err(format!("ERR Unknown node {node}")));
                };
                let links = [to.then_some(n.link), from.then_some(n.inbound_link)];
                for link in links.into_iter().flatten().flatten() {
                    self.free_link(link, true);
                }
                Ok(Reply::OK)
            }
        }
    }

    /// clusterStartHandshake: a literal IP (normalized) and nonzero ports; an identical
    /// handshake already in progress is not an error.
    fn meet(&mut self, now: u64, ip: &str, port: u16, cport: u16) -> AdminResult {
        let parsed: Option<IpAddr> = ip.parse().ok();
        let (Some(addr), true) = (parsed, port != 0 && cport != 0) else {
            return Err(err(format!(
                "ERR Invalid node address specified: {ip}:{port}"
            )));
        };
        let norm = addr.to_string();
        let in_progress = self.state.nodes().any(|n| {
            n.in_handshake()
                && n.ip.eq_ignore_ascii_case(&norm)
                && n.port == port
                && n.cport == cport
        });
        if in_progress {
            return Ok(Reply::OK);
        }
        let name = self.random_node_id();
        let flags = NodeFlags(NodeFlags::HANDSHAKE | NodeFlags::MEET);
        let mut node = ClusterNode::new(name, flags, now);
        node.ip = norm;
        node.port = port;
        node.cport = cport;
        if self.state.add_node(node).is_ok() {
            self.connect_if_needed(now, &name);
        }
        Ok(Reply::OK)
    }

    /// ADDSLOTS / DELSLOTS: all arguments are checked before any slot changes.
    fn add_del_slots(&mut self, slots: &[Slot], del: bool) -> AdminResult {
        let mut seen = vec![false; CLUSTER_SLOTS];
        for &slot in slots {
            if usize::from(slot) >= CLUSTER_SLOTS {
                return Err(err("ERR Invalid or out of range slot".into()));
            }
            let owned = self.state.slot_owner(slot).is_some();
            if del && !owned {
                return Err(err(format!("ERR Slot {slot} is already unassigned")));
            }
            if !del && owned {
                return Err(err(format!("ERR Slot {slot} is already busy")));
            }
            if std::mem::replace(&mut seen[usize::from(slot)], true) {
                return Err(err(format!("ERR Slot {slot} specified multiple times")));
            }
        }
        let me = self.state.myself_id();
        for &slot in slots {
            let _ = self.state.set_importing(slot, None);
            if del {
                self.state.del_slot(slot);
            } else {
                let _ = self.state.add_slot(&me, slot);
            }
        }
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Ok(Reply::OK)
    }

    fn flush_slots(&mut self, keys_in_db: u64) -> AdminResult {
        if keys_in_db != 0 {
            return Err(err(
                "ERR DB must be empty to perform CLUSTER FLUSHSLOTS.".into()
            ));
        }
        let me = self.state.myself_id();
        self.state.del_node_slots(&me);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Ok(Reply::OK)
    }

    /// A node SETSLOT may name: known and not a replica. `unknown` is the error text used
    /// when it is not known.
    fn setslot_target(&self, id: &NodeId, unknown: &str) -> Result<(), ErrorReply> {
        match self.state.node(id) {
            None => Err(err(format!("ERR {unknown} {id}"))),
            Some(n) if n.is_replica() => Err(err("ERR Target node is not a master".into())),
            Some(_) => Ok(()),
        }
    }

    fn set_slot(&mut self, now: u64, slot: Slot, action: SetSlot, keys: u64) -> AdminResult {
        if self.state.myself().is_replica() {
            return Err(err("ERR Please use SETSLOT only with masters.".into()));
        }
        if usize::from(slot) >= CLUSTER_SLOTS {
            return Err(err("ERR Invalid or out of range slot".into()));
        }
        let me = self.state.myself_id();
        let mine = self.state.slot_owner(slot) == Some(&me);
        match action {
            SetSlot::Migrating(id) => {
                if !mine {
                    return Err(err(format!("ERR I'm not the owner of hash slot {slot}")));
                }
                self.setslot_target(&id, "I don't know about node")?;
                let _ = self.state.set_migrating(slot, Some(id));
            }
            SetSlot::Importing(id) => {
                if mine {
                    return Err(err(format!(
                        "ERR I'm already the owner of hash slot {slot}"
                    )));
                }
                self.setslot_target(&id, "I don't know about node")?;
                let _ = self.state.set_importing(slot, Some(id));
            }
            SetSlot::Stable => {
                let _ = self.state.set_importing(slot, None);
                let _ = self.state.set_migrating(slot, None);
            }
            SetSlot::Node(id) => self.set_slot_node(now, slot, &id, keys)?,
        }
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE);
        Ok(Reply::OK)
    }

    /// SETSLOT NODE: bind the slot; a master giving away its last slot follows the new
    /// owner, and the importer closing an import takes a new configEpoch and tells everyone.
    fn set_slot_node(
        &mut self,
        now: u64,
        slot: Slot,
        id: &NodeId,
        keys: u64,
    ) -> Result<(), ErrorReply> {
        self.setslot_target(id, "Unknown node")?;
        let me = self.state.myself_id();
        let was_mine = self.state.slot_owner(slot) == Some(&me);
        if was_mine && *id != me && keys != 0 {
            return Err(err(format!(
                "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
            )));
        }
        if keys == 0 && self.state.migrating_to(slot).is_some() {
            let _ = self.state.set_migrating(slot, None);
        }
        let _ = self.state.set_slot_owner(slot, id);
        let emptied = self.state.myself().numslots() == 0;
        if was_mine && *id != me && emptied && self.config.allow_replica_migration {
            let text =
                format!("Configuration change detected. Reconfiguring myself as a replica of {id}");
            self.log(LL_WARNING, text);
            self.set_my_master(id);
            self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        }
        if *id == me && self.state.importing_from(slot).is_some() {
            if self.bump_epoch_without_consensus() {
                self.log(
                    LL_WARNING,
                    format!("configEpoch updated after importing slot {slot}"),
                );
            }
            let _ = self.state.set_importing(slot, None);
            self.broadcast_pong(now);
        }
        Ok(())
    }

    fn forget(&mut self, now: u64, id: &NodeId) -> AdminResult {
        if !self.state.contains(id) {
            return Err(err(format!("ERR Unknown node {id}")));
        }
        let me = self.state.myself();
        if *id == me.name {
            return Err(err("ERR I tried hard but I can't forget myself...".into()));
        }
        if me.is_replica() && me.slaveof == Some(*id) {
            return Err(err("ERR Can't forget my master!".into()));
        }
        self.blacklist.retain(|_, until| *until >= now);
        self.blacklist.insert(*id, now + BLACKLIST_TTL_MS);
        self.del_node(id);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Ok(Reply::OK)
    }

    /// CLUSTER REPLICATE (clusterSetMaster); the handler checked the arguments against the
    /// same table under the same lock, so only a vanished node is an error here.
    fn replicate(&mut self, master: &NodeId) -> AdminResult {
        let known_master = self.state.node(master).is_some_and(|n| n.is_master());
        if !known_master || *master == self.state.myself_id() {
            return Err(err(format!("ERR Unknown node {master}")));
        }
        self.set_my_master(master);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Ok(Reply::OK)
    }

    /// clusterReset: back to a lone master; HARD also zeroes the epochs and takes a new id.
    fn reset(&mut self, hard: bool, keys_in_db: u64) -> AdminResult {
        if self.state.myself().is_master() && keys_in_db != 0 {
            return Err(err(
                "ERR CLUSTER RESET can't be called with master nodes containing keys".into(),
            ));
        }
        let me = self.state.myself_id();
        if self.state.myself().is_replica() {
            let _ = self.state.node_set_master(&me);
            self.emit(Effect::BecomeMaster);
            self.emit(Effect::FlushAll);
        }
        self.state.close_all_slots();
        for slot in 0..CLUSTER_SLOTS as Slot {
            self.state.del_slot(slot);
        }
        let others: Vec<NodeId> = self
            .state
            .nodes()
            .map(|n| n.name)
            .filter(|n| *n != me)
            .collect();
        for id in &others {
            self.del_node(id);
        }
        if hard {
            self.state.current_epoch = 0;
            self.state.last_vote_epoch = 0;
            self.state.myself_mut().config_epoch = 0;
            self.log(
                LL_WARNING,
                "configEpoch set to 0 via CLUSTER RESET HARD".into(),
            );
            let new = self.random_node_id();
            if self.state.rename_node(&me, new).is_ok() {
                self.log(LL_NOTICE, format!("Node hard reset, now I'm {new}"));
            }
        }
        self.todo(TODO_SAVE_CONFIG | TODO_UPDATE_STATE | TODO_FSYNC_CONFIG);
        Ok(Reply::OK)
    }

    fn set_config_epoch(&mut self, epoch: u64) -> AdminResult {
        if self.state.len() > 1 {
            return Err(err(
                "ERR The user can assign a config epoch only when the node does not know any other node."
                    .into(),
            ));
        }
        if self.state.myself().config_epoch != 0 {
            return Err(err("ERR Node config epoch is already non-zero".into()));
        }
        self.state.myself_mut().config_epoch = epoch;
        self.log(
            LL_WARNING,
            format!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH"),
        );
        self.state.current_epoch = self.state.current_epoch.max(epoch);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
        Ok(Reply::OK)
    }
}

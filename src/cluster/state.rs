//! The cluster node table as a pure value: every known node (`ClusterNode`, Redis's
//! `clusterNode`), the slot → owner table, open (migrating / importing) slots, currentEpoch,
//! lastVoteEpoch and the `cluster_state` verdict (Redis's `clusterState` and the node API of
//! cluster.c: clusterAddNode, clusterDelNode, clusterRenameNode, clusterAddSlot,
//! clusterDelSlot, clusterNodeAddSlave, clusterSetNodeAsMaster, the failure-report list,
//! clusterGetMaxEpoch and clusterUpdateState). Nodes refer to each other by `NodeId`, so a
//! rename rewrites every reference. Time is always an argument (ms since the Unix epoch);
//! links are opaque ids owned by the driver.

use super::node::{NodeFlags, NodeId};
use std::collections::{BTreeMap, HashMap};

/// Number of hash slots.
pub const CLUSTER_SLOTS: usize = 16384;

/// A slot number, always `< CLUSTER_SLOTS` once it is inside the table.
pub type Slot = u16;

/// Failure reports older than this many node timeouts are discarded when counted.
pub const FAIL_REPORT_VALIDITY_MULT: u64 = 2;
/// A master keeps `cluster_state:fail` this long after the first evaluation (startup).
pub const WRITABLE_DELAY_MS: u64 = 2000;
/// Bounds of the delay before a master that was in the minority turns back to ok.
pub const MIN_REJOIN_DELAY_MS: u64 = 500;
pub const MAX_REJOIN_DELAY_MS: u64 = 5000;

/// The 2048-byte slot bitmap of one node (bit `s & 7` of byte `s >> 3`, as on the bus).
#[derive(Clone, PartialEq, Eq)]
pub struct SlotBitmap(pub Box<[u8; CLUSTER_SLOTS / 8]>);

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap(Box::new([0; CLUSTER_SLOTS / 8]))
    }
}

impl std::fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(slot_ranges(|s| self.get(s)))
            .finish()
    }
}

impl SlotBitmap {
    pub fn get(&self, slot: Slot) -> bool {
        let s = slot as usize % CLUSTER_SLOTS;
        self.0[s >> 3] & (1 << (s & 7)) != 0
    }
    /// Sets the bit; returns whether it was clear before.
    pub fn set(&mut self, slot: Slot) -> bool {
        let s = slot as usize % CLUSTER_SLOTS;
        let was = self.get(slot);
        self.0[s >> 3] |= 1 << (s & 7);
        !was
    }
    /// Clears the bit; returns whether it was set before.
    pub fn clear(&mut self, slot: Slot) -> bool {
        let s = slot as usize % CLUSTER_SLOTS;
        let was = self.get(slot);
        self.0[s >> 3] &= !(1 << (s & 7));
        was
    }
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }
    pub fn as_bytes(&self) -> &[u8; CLUSTER_SLOTS / 8] {
        &self.0
    }
    /// The bitmap of a bus header's `myslots` or an UPDATE body.
    pub fn from_bytes(bytes: &[u8; CLUSTER_SLOTS / 8]) -> SlotBitmap {
        SlotBitmap(Box::new(*bytes))
    }
}

/// Ascending maximal runs `(start, end)` of slots for which `has` is true.
pub fn slot_ranges(has: impl Fn(Slot) -> bool) -> Vec<(Slot, Slot)> {
    let mut ranges = Vec::new();
    let mut start: Option<Slot> = None;
    for s in 0..CLUSTER_SLOTS as Slot {
        match (has(s), start) {
            (true, None) => start = Some(s),
            (false, Some(a)) => {
                ranges.push((a, s - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        ranges.push((a, CLUSTER_SLOTS as Slot - 1));
    }
    ranges
}

/// A bus link handle; the driver owns the socket, the table only records that one exists.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct LinkId(pub u64);

/// "`reporter` told us (at `time`) that this node is PFAIL or FAIL."
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FailReport {
    pub reporter: NodeId,
    pub time: u64,
}

/// One known node (Redis's `clusterNode`). Slots are read through the table's methods so
/// the bitmap, `numslots` and the slot → owner table never disagree.
#[derive(Clone, Debug)]
pub struct ClusterNode {
    pub name: NodeId,
    pub flags: NodeFlags,
    /// Creation time (ms); handshake nodes expire relative to it.
    pub ctime: u64,
    pub ip: String,
    /// Primary client port (the TLS port when tls-cluster is on).
    pub port: u16,
    /// Secondary (plaintext) client port, learned from the bus only.
    pub pport: u16,
    pub cport: u16,
    /// `cluster-announce-hostname` as gossiped; empty when none.
    pub hostname: String,
    /// `cluster-announce-human-nodename` as gossiped (7.2 ping extension); empty when none.
    pub human_nodename: String,
    /// Valkey 8's `cluster-announce-client-ipv4` / `-ipv6` as gossiped: what clients
    /// connected over that family are told instead of `ip`. Empty when none.
    pub client_ipv4: String,
    pub client_ipv6: String,
    /// 7.2 shard id; 7.0 has none and groups shards by master.
    pub shard_id: Option<NodeId>,
    pub config_epoch: u64,
    pub slaveof: Option<NodeId>,
    /// Replicas in the order they were attached (CLUSTER SLOTS / SHARDS order).
    pub replicas: Vec<NodeId>,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    pub voted_time: u64,
    pub repl_offset_time: u64,
    pub orphaned_time: u64,
    pub repl_offset: i64,
    /// Our outbound bus link to this node (`node->link`).
    pub link: Option<LinkId>,
    /// The node's inbound link to us (`node->inbound_link`).
    pub inbound_link: Option<LinkId>,
    pub fail_reports: Vec<FailReport>,
    slots: SlotBitmap,
    numslots: usize,
}

impl ClusterNode {
    /// The IP a client sees (Valkey's clusterNodeIp): the announced client IP of the
    /// client's family when there is one, else the bus IP.
    pub fn client_ip(&self, ipv6_client: bool) -> &str {
        let announced = if ipv6_client {
            &self.client_ipv6
        } else {
            &self.client_ipv4
        };
        if announced.is_empty() {
            &self.ip
        } else {
            announced
        }
    }

    /// A node as `createClusterNode` makes it: no address, no slots, epoch 0.
    pub fn new(name: NodeId, flags: NodeFlags, ctime: u64) -> ClusterNode {
        ClusterNode {
            name,
            flags,
            ctime,
            ip: String::new(),
            port: 0,
            pport: 0,
            cport: 0,
            hostname: String::new(),
            human_nodename: String::new(),
            client_ipv4: String::new(),
            client_ipv6: String::new(),
            shard_id: None,
            config_epoch: 0,
            slaveof: None,
            replicas: Vec::new(),
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset_time: 0,
            orphaned_time: 0,
            repl_offset: 0,
            link: None,
            inbound_link: None,
            fail_reports: Vec::new(),
            slots: SlotBitmap::default(),
            numslots: 0,
        }
    }

    pub fn is_master(&self) -> bool {
        self.flags.has(NodeFlags::MASTER)
    }
    pub fn is_replica(&self) -> bool {
        self.flags.has(NodeFlags::SLAVE)
    }
    pub fn is_myself(&self) -> bool {
        self.flags.has(NodeFlags::MYSELF)
    }
    pub fn in_handshake(&self) -> bool {
        self.flags.has(NodeFlags::HANDSHAKE)
    }
    pub fn has_addr(&self) -> bool {
        !self.flags.has(NodeFlags::NOADDR)
    }
    /// PFAIL (`nodeTimedOut`).
    pub fn timed_out(&self) -> bool {
        self.flags.has(NodeFlags::PFAIL)
    }
    /// FAIL (`nodeFailed`).
    pub fn failed(&self) -> bool {
        self.flags.has(NodeFlags::FAIL)
    }
    pub fn has_slot(&self, slot: Slot) -> bool {
        self.slots.get(slot)
    }
    pub fn numslots(&self) -> usize {
        self.numslots
    }
    pub fn slots(&self) -> &SlotBitmap {
        &self.slots
    }
    /// Ascending ranges of the slots this node's bitmap holds.
    pub fn slot_ranges(&self) -> Vec<(Slot, Slot)> {
        if self.numslots == 0 {
            return Vec::new();
        }
        slot_ranges(|s| self.slots.get(s))
    }
}

/// `cluster_state:ok|fail`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Health {
    Ok,
    Fail,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Fail => "fail",
        }
    }
}

/// The pure part of clusterUpdateState: what the rules say right now, before delays.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateVerdict {
    pub health: Health,
    /// Masters serving at least one slot.
    pub size: usize,
    /// Fewer reachable slot-serving masters than `size / 2 + 1`.
    pub in_minority: bool,
}

/// Slot counts of CLUSTER INFO: assigned, and split by the owner's health.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SlotCounts {
    pub assigned: usize,
    pub ok: usize,
    pub pfail: usize,
    pub fail: usize,
}

/// Why a table operation was refused; all of them are caller bugs Redis would assert on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StateError {
    UnknownNode(NodeId),
    DuplicateNode(NodeId),
    SlotOutOfRange(u32),
}

/// The whole node table (Redis's `clusterState`).
#[derive(Clone, Debug)]
pub struct ClusterState {
    myself: NodeId,
    nodes: HashMap<NodeId, ClusterNode>,
    /// Insertion order: CLUSTER NODES, SHARDS and nodes.conf list nodes in this order.
    order: Vec<NodeId>,
    slots: Box<[Option<NodeId>]>,
    migrating_slots_to: BTreeMap<Slot, NodeId>,
    importing_slots_from: BTreeMap<Slot, NodeId>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
    /// Last published verdict (`server.cluster->state`); starts as fail like Redis.
    pub state: Health,
    /// Cluster size cached at the last `update_state` (`server.cluster->size`).
    pub size: usize,
    first_eval_time: Option<u64>,
    among_minority_time: u64,
}

fn check_slot(slot: Slot) -> Result<(), StateError> {
    if (slot as usize) < CLUSTER_SLOTS {
        Ok(())
    } else {
        Err(StateError::SlotOutOfRange(slot as u32))
    }
}

impl ClusterState {
    /// A table holding only `myself` (which gets the MYSELF flag).
    pub fn new(mut myself: ClusterNode) -> ClusterState {
        myself.flags.set(NodeFlags::MYSELF);
        let mut state = ClusterState::with_myself_id(myself.name);
        state.nodes.insert(myself.name, myself.clone());
        state.order.push(myself.name);
        state
    }

    /// An empty table that will be filled by the nodes.conf loader; the caller guarantees
    /// `myself` gets added before the table is handed out.
    pub(crate) fn with_myself_id(myself: NodeId) -> ClusterState {
        ClusterState {
            myself,
            nodes: HashMap::new(),
            order: Vec::new(),
            slots: vec![None; CLUSTER_SLOTS].into_boxed_slice(),
            migrating_slots_to: BTreeMap::new(),
            importing_slots_from: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            state: Health::Fail,
            size: 0,
            first_eval_time: None,
            among_minority_time: 0,
        }
    }

    /// Puts the listed nodes first, in the given order; the others keep their relative
    /// order after them.
    pub(crate) fn reorder_like(&mut self, wanted: &[NodeId]) {
        let rank = |id: &NodeId| wanted.iter().position(|w| w == id).unwrap_or(usize::MAX);
        self.order.sort_by_key(rank);
    }

    pub fn myself_id(&self) -> NodeId {
        self.myself
    }

    pub fn myself(&self) -> &ClusterNode {
        // `new` and the loader both guarantee myself is in the table; del_node refuses it.
        &self.nodes[&self.myself]
    }

    pub fn myself_mut(&mut self) -> &mut ClusterNode {
        self.nodes
            .get_mut(&self.myself)
            .expect("myself is always in the table")
    }

    pub fn node(&self, id: &NodeId) -> Option<&ClusterNode> {
        self.nodes.get(id)
    }

    /// Mutable access for fields that carry no cross-references (address, times, flags
    /// other than role, epochs, links). Use the table methods for slots, roles and renames.
    pub fn node_mut(&mut self, id: &NodeId) -> Option<&mut ClusterNode> {
        self.nodes.get_mut(id)
    }

    pub fn contains(&self, id: &NodeId) -> bool {
        self.nodes.contains_key(id)
    }

    /// All nodes in table order (including myself and handshake nodes).
    pub fn nodes(&self) -> impl Iterator<Item = &ClusterNode> {
        self.order.iter().filter_map(|id| self.nodes.get(id))
    }

    /// `cluster_known_nodes`: every entry, myself and handshake nodes included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// clusterAddNode. A second node with the same id is refused.
    pub fn add_node(&mut self, node: ClusterNode) -> Result<(), StateError> {
        if self.nodes.contains_key(&node.name) {
            return Err(StateError::DuplicateNode(node.name));
        }
        self.order.push(node.name);
        self.nodes.insert(node.name, node);
        Ok(())
    }

    /// clusterDelNode: unassigns its slots and open-slot entries, drops the failure reports
    /// it made about others, detaches its replicas (their master becomes unknown) and
    /// removes it from its master's replica list. Myself is never deleted.
    pub fn del_node(&mut self, id: &NodeId) -> Option<ClusterNode> {
        if *id == self.myself || !self.nodes.contains_key(id) {
            return None;
        }
        self.migrating_slots_to.retain(|_, to| to != id);
        self.importing_slots_from.retain(|_, from| from != id);
        self.del_node_slots(id);
        for node in self.nodes.values_mut() {
            node.fail_reports.retain(|r| r.reporter != *id);
        }
        let node = self.nodes.remove(id)?;
        self.order.retain(|n| n != id);
        for replica in &node.replicas {
            if let Some(r) = self.nodes.get_mut(replica) {
                r.slaveof = None;
            }
        }
        if let Some(master) = node.slaveof {
            self.remove_replica(&master, id);
        }
        Some(node)
    }

    /// clusterRenameNode: the handshake node learns its real id. Every reference (slot
    /// owners, open slots, master/replica links, failure reports, myself) follows.
    pub fn rename_node(&mut self, old: &NodeId, new: NodeId) -> Result<(), StateError> {
        if self.nodes.contains_key(&new) {
            return Err(StateError::DuplicateNode(new));
        }
        let mut node = self
            .nodes
            .remove(old)
            .ok_or(StateError::UnknownNode(*old))?;
        node.name = new;
        self.nodes.insert(new, node);
        let swap = |id: &mut NodeId| {
            if id == old {
                *id = new;
            }
        };
        self.order.iter_mut().for_each(swap);
        self.slots.iter_mut().flatten().for_each(swap);
        self.migrating_slots_to.values_mut().for_each(swap);
        self.importing_slots_from.values_mut().for_each(swap);
        for n in self.nodes.values_mut() {
            n.slaveof.iter_mut().for_each(swap);
            n.replicas.iter_mut().for_each(swap);
            n.fail_reports
                .iter_mut()
                .for_each(|r| swap(&mut r.reporter));
        }
        swap(&mut self.myself);
        Ok(())
    }

    // ---- slots -------------------------------------------------------------------------

    pub fn slot_owner(&self, slot: Slot) -> Option<&NodeId> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// The owner table, one entry per slot.
    pub fn slot_owners(&self) -> &[Option<NodeId>] {
        &self.slots
    }

    /// clusterAddSlot: assigns an unassigned slot. `Ok(false)` when the slot is busy.
    pub fn add_slot(&mut self, id: &NodeId, slot: Slot) -> Result<bool, StateError> {
        check_slot(slot)?;
        if self.slots[slot as usize].is_some() {
            return Ok(false);
        }
        let node = self.nodes.get_mut(id).ok_or(StateError::UnknownNode(*id))?;
        if node.slots.set(slot) {
            node.numslots += 1;
        }
        self.slots[slot as usize] = Some(*id);
        Ok(true)
    }

    /// clusterDelSlot: unassigns the slot, returning its former owner.
    pub fn del_slot(&mut self, slot: Slot) -> Option<NodeId> {
        let owner = self.slots.get_mut(slot as usize)?.take()?;
        if let Some(node) = self.nodes.get_mut(&owner) {
            if node.slots.clear(slot) {
                node.numslots -= 1;
            }
        }
        Some(owner)
    }

    /// Rebinds a slot to `id` whoever owned it (clusterDelSlot + clusterAddSlot).
    pub fn set_slot_owner(&mut self, slot: Slot, id: &NodeId) -> Result<(), StateError> {
        check_slot(slot)?;
        if !self.nodes.contains_key(id) {
            return Err(StateError::UnknownNode(*id));
        }
        self.del_slot(slot);
        self.add_slot(id, slot).map(|_| ())
    }

    /// clusterDelNodeSlots: unassigns every slot of the node; returns how many.
    pub fn del_node_slots(&mut self, id: &NodeId) -> usize {
        let mine: Vec<Slot> = match self.nodes.get(id) {
            Some(n) if n.numslots > 0 => (0..CLUSTER_SLOTS as Slot)
                .filter(|s| n.slots.get(*s))
                .collect(),
            _ => return 0,
        };
        for s in &mine {
            self.del_slot(*s);
        }
        mine.len()
    }

    /// Ascending ranges of the slots `id` owns (what Redis's clusterGenNodesSlotsInfo
    /// walks), read from the node's bitmap, which always agrees with the owner table.
    pub fn owned_ranges(&self, id: &NodeId) -> Vec<(Slot, Slot)> {
        match self.nodes.get(id) {
            Some(n) if n.numslots > 0 => slot_ranges(|s| n.slots.get(s)),
            _ => Vec::new(),
        }
    }

    /// Maximal runs of consecutive slots with the same owner, unassigned slots skipped
    /// (the CLUSTER SLOTS walk).
    pub fn owner_runs(&self) -> Vec<(Slot, Slot, NodeId)> {
        let mut runs: Vec<(Slot, Slot, NodeId)> = Vec::new();
        for (s, owner) in self.slots.iter().enumerate() {
            let Some(owner) = owner else { continue };
            let s = s as Slot;
            match runs.last_mut() {
                Some((_, end, o)) if *o == *owner && *end + 1 == s => *end = s,
                _ => runs.push((s, s, *owner)),
            }
        }
        runs
    }

    pub fn migrating_to(&self, slot: Slot) -> Option<&NodeId> {
        self.migrating_slots_to.get(&slot)
    }

    pub fn importing_from(&self, slot: Slot) -> Option<&NodeId> {
        self.importing_slots_from.get(&slot)
    }

    /// `migrating_slots_to[slot] = to` (None closes it).
    pub fn set_migrating(&mut self, slot: Slot, to: Option<NodeId>) -> Result<(), StateError> {
        check_slot(slot)?;
        match to {
            Some(id) => self.migrating_slots_to.insert(slot, id),
            None => self.migrating_slots_to.remove(&slot),
        };
        Ok(())
    }

    /// `importing_slots_from[slot] = from` (None closes it).
    pub fn set_importing(&mut self, slot: Slot, from: Option<NodeId>) -> Result<(), StateError> {
        check_slot(slot)?;
        match from {
            Some(id) => self.importing_slots_from.insert(slot, id),
            None => self.importing_slots_from.remove(&slot),
        };
        Ok(())
    }

    /// Open slots in ascending order: `(slot, migrating_to, importing_from)`.
    pub fn open_slots(&self) -> Vec<(Slot, Option<NodeId>, Option<NodeId>)> {
        let mut slots: Vec<Slot> = self
            .migrating_slots_to
            .keys()
            .chain(self.importing_slots_from.keys())
            .copied()
            .collect();
        slots.sort_unstable();
        slots.dedup();
        slots
            .into_iter()
            .map(|s| {
                (
                    s,
                    self.migrating_to(s).copied(),
                    self.importing_from(s).copied(),
                )
            })
            .collect()
    }

    /// clusterCloseAllSlots.
    pub fn close_all_slots(&mut self) {
        self.migrating_slots_to.clear();
        self.importing_slots_from.clear();
    }

    // ---- roles -------------------------------------------------------------------------

    /// clusterNodeAddSlave: appends `replica` to `master`'s list (once) and marks the master
    /// a replica-migration target. Returns false if it was already listed.
    pub fn add_replica(&mut self, master: &NodeId, replica: &NodeId) -> Result<bool, StateError> {
        let m = self
            .nodes
            .get_mut(master)
            .ok_or(StateError::UnknownNode(*master))?;
        if m.replicas.contains(replica) {
            return Ok(false);
        }
        m.replicas.push(*replica);
        m.flags.set(NodeFlags::MIGRATE_TO);
        Ok(true)
    }

    /// clusterNodeRemoveSlave: a master left with no replicas stops being a migration target.
    pub fn remove_replica(&mut self, master: &NodeId, replica: &NodeId) -> bool {
        let Some(m) = self.nodes.get_mut(master) else {
            return false;
        };
        let before = m.replicas.len();
        m.replicas.retain(|r| r != replica);
        if m.replicas.is_empty() {
            m.flags.clear(NodeFlags::MIGRATE_TO);
        }
        m.replicas.len() != before
    }

    /// clusterSetNodeAsMaster: a node we took for a replica acts as a master. It leaves its
    /// old master's list and (unless it is myself) becomes a migration target.
    pub fn node_set_master(&mut self, id: &NodeId) -> Result<(), StateError> {
        let node = self.nodes.get(id).ok_or(StateError::UnknownNode(*id))?;
        if node.is_master() {
            return Ok(());
        }
        let old_master = node.slaveof;
        if let Some(m) = old_master {
            self.remove_replica(&m, id);
        }
        let myself = self.myself;
        let node = self.nodes.get_mut(id).ok_or(StateError::UnknownNode(*id))?;
        if old_master.is_some() && *id != myself {
            node.flags.set(NodeFlags::MIGRATE_TO);
        }
        node.flags.clear(NodeFlags::SLAVE);
        node.flags.set(NodeFlags::MASTER);
        node.slaveof = None;
        Ok(())
    }

    /// Makes `id` a replica of `master`: role flags flip, it leaves any previous master's
    /// list and joins the new one (the bookkeeping half of Redis's role-change handling;
    /// slot cleanup is the caller's decision).
    pub fn set_replica_of(&mut self, id: &NodeId, master: &NodeId) -> Result<(), StateError> {
        if !self.nodes.contains_key(master) {
            return Err(StateError::UnknownNode(*master));
        }
        let node = self.nodes.get_mut(id).ok_or(StateError::UnknownNode(*id))?;
        let old = node.slaveof.replace(*master);
        node.flags.clear(NodeFlags::MASTER | NodeFlags::MIGRATE_TO);
        node.flags.set(NodeFlags::SLAVE);
        if let Some(old) = old.filter(|o| o != master) {
            self.remove_replica(&old, id);
        }
        self.add_replica(master, id).map(|_| ())
    }

    /// clusterCountNonFailingSlaves.
    pub fn count_non_failing_replicas(&self, master: &NodeId) -> usize {
        self.nodes.get(master).map_or(0, |m| {
            m.replicas
                .iter()
                .filter(|r| self.nodes.get(r).is_some_and(|r| !r.failed()))
                .count()
        })
    }

    /// clusterGetNodesServingMySlots: the node's master (or itself) then that master's
    /// replicas. Empty when a replica's master is unknown.
    pub fn nodes_serving_slots_of(&self, id: &NodeId) -> Vec<NodeId> {
        let Some(node) = self.nodes.get(id) else {
            return Vec::new();
        };
        let primary = if node.is_master() {
            Some(node)
        } else {
            node.slaveof.and_then(|m| self.nodes.get(&m))
        };
        primary.map_or_else(Vec::new, |p| {
            std::iter::once(p.name)
                .chain(p.replicas.iter().copied())
                .collect()
        })
    }

    // ---- failure reports ----------------------------------------------------------------

    /// clusterNodeAddFailureReport: refreshes or creates `reporter`'s report about `failing`.
    /// Returns true when the report is new.
    pub fn add_failure_report(&mut self, failing: &NodeId, reporter: &NodeId, now: u64) -> bool {
        let Some(node) = self.nodes.get_mut(failing) else {
            return false;
        };
        if let Some(r) = node
            .fail_reports
            .iter_mut()
            .find(|r| r.reporter == *reporter)
        {
            r.time = now;
            return false;
        }
        node.fail_reports.push(FailReport {
            reporter: *reporter,
            time: now,
        });
        true
    }

    /// clusterNodeCleanupFailureReports: drops reports older than 2 × node_timeout.
    pub fn cleanup_failure_reports(&mut self, failing: &NodeId, now: u64, node_timeout: u64) {
        let max_age = node_timeout * FAIL_REPORT_VALIDITY_MULT;
        if let Some(node) = self.nodes.get_mut(failing) {
            node.fail_reports
                .retain(|r| now.saturating_sub(r.time) <= max_age);
        }
    }

    /// clusterNodeDelFailureReport: `reporter` now sees `failing` as healthy.
    pub fn del_failure_report(
        &mut self,
        failing: &NodeId,
        reporter: &NodeId,
        now: u64,
        node_timeout: u64,
    ) -> bool {
        let Some(node) = self.nodes.get_mut(failing) else {
            return false;
        };
        let before = node.fail_reports.len();
        node.fail_reports.retain(|r| r.reporter != *reporter);
        if node.fail_reports.len() == before {
            return false;
        }
        self.cleanup_failure_reports(failing, now, node_timeout);
        true
    }

    /// clusterNodeFailureReportsCount (CLUSTER COUNT-FAILURE-REPORTS): expired reports are
    /// dropped first.
    pub fn failure_reports_count(
        &mut self,
        failing: &NodeId,
        now: u64,
        node_timeout: u64,
    ) -> usize {
        self.cleanup_failure_reports(failing, now, node_timeout);
        self.nodes.get(failing).map_or(0, |n| n.fail_reports.len())
    }

    // ---- epochs and state ---------------------------------------------------------------

    /// clusterGetMaxEpoch: the greatest configEpoch known, or currentEpoch if greater.
    pub fn max_epoch(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
            .max(self.current_epoch)
    }

    /// The configEpoch a node advertises: a replica of a known master shows its master's.
    pub fn effective_epoch(&self, node: &ClusterNode) -> u64 {
        match node.slaveof.and_then(|m| self.nodes.get(&m)) {
            Some(master) if node.is_replica() => master.config_epoch,
            _ => node.config_epoch,
        }
    }

    /// `cluster_my_epoch`.
    pub fn my_epoch(&self) -> u64 {
        self.effective_epoch(self.myself())
    }

    /// Masters serving at least one slot.
    pub fn cluster_size(&self) -> usize {
        self.nodes
            .values()
            .filter(|n| n.is_master() && n.numslots > 0)
            .count()
    }

    /// Slot counts of CLUSTER INFO, by the owner's FAIL / PFAIL flags.
    pub fn slot_counts(&self) -> SlotCounts {
        let mut c = SlotCounts::default();
        for owner in self.slots.iter().flatten() {
            c.assigned += 1;
            match self.nodes.get(owner) {
                Some(n) if n.failed() => c.fail += 1,
                Some(n) if n.timed_out() => c.pfail += 1,
                _ => c.ok += 1,
            }
        }
        c
    }

    /// The coverage and minority rules of clusterUpdateState, without its delays.
    pub fn evaluate_state(&self, require_full_coverage: bool) -> StateVerdict {
        // A slot is uncovered when no one owns it or its owner is FAIL; owners are always
        // in the table, so a failing owner is a FAIL node holding slots.
        let uncovered = require_full_coverage
            && (self.slots.iter().any(Option::is_none)
                || self.nodes.values().any(|n| n.failed() && n.numslots > 0));
        let serving = || {
            self.nodes
                .values()
                .filter(|n| n.is_master() && n.numslots > 0)
        };
        let size = serving().count();
        let reachable = serving().filter(|n| !n.failed() && !n.timed_out()).count();
        let in_minority = reachable < size / 2 + 1;
        let health = if uncovered || in_minority {
            Health::Fail
        } else {
            Health::Ok
        };
        StateVerdict {
            health,
            size,
            in_minority,
        }
    }

    /// clusterUpdateState: recomputes `size` and `state`. A master stays fail for
    /// WRITABLE_DELAY_MS after the first evaluation, and turns back to ok only
    /// clamp(node_timeout, 500, 5000) ms after it was last in the minority. Returns true
    /// when `state` changed.
    pub fn update_state(
        &mut self,
        now: u64,
        require_full_coverage: bool,
        node_timeout: u64,
    ) -> bool {
        let first = *self.first_eval_time.get_or_insert(now);
        let i_am_master = self.myself().is_master();
        if i_am_master
            && self.state == Health::Fail
            && now.saturating_sub(first) < WRITABLE_DELAY_MS
        {
            return false;
        }
        let verdict = self.evaluate_state(require_full_coverage);
        self.size = verdict.size;
        if verdict.in_minority {
            self.among_minority_time = now;
        }
        if verdict.health == self.state {
            return false;
        }
        let rejoin_delay = node_timeout.clamp(MIN_REJOIN_DELAY_MS, MAX_REJOIN_DELAY_MS);
        if verdict.health == Health::Ok
            && i_am_master
            && now.saturating_sub(self.among_minority_time) < rejoin_delay
        {
            return false;
        }
        self.state = verdict.health;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_000_000;
    const NODE_TIMEOUT: u64 = 15000;

    fn id(c: char) -> NodeId {
        NodeId([c as u8; 40])
    }

    fn master(c: char) -> ClusterNode {
        ClusterNode::new(id(c), NodeFlags(NodeFlags::MASTER), T0)
    }

    /// Myself `a` plus masters `b`, `c`, and the slots split a: 0-5460, b: 5461-10922,
    /// c: 10923-16383.
    fn three_masters() -> ClusterState {
        let mut s = ClusterState::new(master('a'));
        s.add_node(master('b')).unwrap();
        s.add_node(master('c')).unwrap();
        for (who, a, b) in [('a', 0, 5460), ('b', 5461, 10922), ('c', 10923, 16383)] {
            for slot in a..=b {
                assert!(s.add_slot(&id(who), slot).unwrap());
            }
        }
        s
    }

    fn flag(s: &mut ClusterState, c: char, bit: u16) {
        s.node_mut(&id(c)).unwrap().flags.set(bit);
    }

    #[test]
    fn a_new_table_holds_only_myself_flagged_myself() {
        let s = ClusterState::new(master('a'));
        assert_eq!(s.myself_id(), id('a'));
        assert!(s.myself().is_myself());
        assert_eq!(s.len(), 1);
        assert_eq!(
            s.state,
            Health::Fail,
            "Redis starts in fail until the first evaluation"
        );
    }

    #[test]
    fn adding_a_node_twice_is_refused() {
        let mut s = ClusterState::new(master('a'));
        s.add_node(master('b')).unwrap();
        assert_eq!(
            s.add_node(master('b')),
            Err(StateError::DuplicateNode(id('b')))
        );
    }

    #[test]
    fn a_busy_slot_cannot_be_added_but_can_be_reassigned() {
        let mut s = three_masters();
        assert_eq!(s.add_slot(&id('b'), 0), Ok(false));
        assert_eq!(s.slot_owner(0), Some(&id('a')));
        s.set_slot_owner(0, &id('b')).unwrap();
        assert_eq!(s.slot_owner(0), Some(&id('b')));
        assert!(!s.myself().has_slot(0));
        assert_eq!(s.myself().numslots(), 5460);
        assert_eq!(
            s.node(&id('b')).unwrap().slot_ranges(),
            vec![(0, 0), (5461, 10922)]
        );
    }

    #[test]
    fn slots_beyond_16383_and_unknown_owners_are_errors() {
        let mut s = three_masters();
        assert_eq!(
            s.add_slot(&id('a'), 16384),
            Err(StateError::SlotOutOfRange(16384))
        );
        assert_eq!(
            s.set_slot_owner(1, &id('z')),
            Err(StateError::UnknownNode(id('z')))
        );
        assert_eq!(s.del_slot(16384), None);
    }

    #[test]
    fn deleting_a_slot_returns_its_owner_and_updates_the_bitmap() {
        let mut s = three_masters();
        assert_eq!(s.del_slot(5461), Some(id('b')));
        assert_eq!(s.del_slot(5461), None);
        assert_eq!(s.node(&id('b')).unwrap().numslots(), 5461);
        assert_eq!(s.owned_ranges(&id('b')), vec![(5462, 10922)]);
    }

    #[test]
    fn owner_runs_split_where_the_owner_changes_or_a_slot_is_unassigned() {
        let mut s = three_masters();
        s.del_slot(100);
        s.set_slot_owner(200, &id('c')).unwrap();
        let runs: Vec<(Slot, Slot, char)> = s
            .owner_runs()
            .into_iter()
            .map(|(a, b, o)| (a, b, o.0[0] as char))
            .collect();
        assert_eq!(
            runs,
            vec![
                (0, 99, 'a'),
                (101, 199, 'a'),
                (200, 200, 'c'),
                (201, 5460, 'a'),
                (5461, 10922, 'b'),
                (10923, 16383, 'c')
            ]
        );
    }

    #[test]
    fn deleting_a_node_unassigns_its_slots_open_slots_and_reports() {
        let mut s = three_masters();
        s.set_migrating(7, Some(id('b'))).unwrap();
        s.set_importing(8, Some(id('b'))).unwrap();
        s.add_failure_report(&id('c'), &id('b'), T0);
        let gone = s.del_node(&id('b')).unwrap();
        assert_eq!(gone.name, id('b'));
        assert_eq!(s.slot_owner(6000), None);
        assert_eq!(s.migrating_to(7), None);
        assert_eq!(s.importing_from(8), None);
        assert!(s.node(&id('c')).unwrap().fail_reports.is_empty());
        assert_eq!(s.len(), 2);
        assert_eq!(s.nodes().count(), 2);
    }

    #[test]
    fn deleting_a_master_leaves_its_replicas_without_a_master_and_a_replica_leaves_its_list() {
        let mut s = three_masters();
        s.add_node(ClusterNode::new(id('d'), NodeFlags(0), T0))
            .unwrap();
        s.add_node(ClusterNode::new(id('e'), NodeFlags(0), T0))
            .unwrap();
        s.set_replica_of(&id('d'), &id('b')).unwrap();
        s.set_replica_of(&id('e'), &id('c')).unwrap();
        s.del_node(&id('b'));
        assert_eq!(s.node(&id('d')).unwrap().slaveof, None);
        s.del_node(&id('e'));
        assert!(s.node(&id('c')).unwrap().replicas.is_empty());
        assert!(!s.node(&id('c')).unwrap().flags.has(NodeFlags::MIGRATE_TO));
    }

    #[test]
    fn myself_and_unknown_nodes_are_never_deleted() {
        let mut s = three_masters();
        assert!(s.del_node(&id('a')).is_none());
        assert!(s.del_node(&id('z')).is_none());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn renaming_a_handshake_node_rewrites_every_reference() {
        let mut s = three_masters();
        s.add_node(ClusterNode::new(
            id('h'),
            NodeFlags(NodeFlags::HANDSHAKE),
            T0,
        ))
        .unwrap();
        s.set_slot_owner(3, &id('h')).unwrap();
        s.set_importing(9, Some(id('h'))).unwrap();
        s.set_replica_of(&id('c'), &id('h')).unwrap();
        s.add_failure_report(&id('b'), &id('h'), T0);
        s.rename_node(&id('h'), id('r')).unwrap();
        assert!(!s.contains(&id('h')));
        assert_eq!(s.node(&id('r')).unwrap().name, id('r'));
        assert_eq!(s.slot_owner(3), Some(&id('r')));
        assert_eq!(s.importing_from(9), Some(&id('r')));
        assert_eq!(s.node(&id('c')).unwrap().slaveof, Some(id('r')));
        assert_eq!(s.node(&id('r')).unwrap().replicas, vec![id('c')]);
        assert_eq!(s.node(&id('b')).unwrap().fail_reports[0].reporter, id('r'));
        assert_eq!(
            s.nodes().last().unwrap().name,
            id('r'),
            "keeps its place in the table"
        );
    }

    #[test]
    fn renaming_to_a_known_id_or_from_an_unknown_one_fails() {
        let mut s = three_masters();
        assert_eq!(
            s.rename_node(&id('b'), id('c')),
            Err(StateError::DuplicateNode(id('c')))
        );
        assert_eq!(
            s.rename_node(&id('z'), id('y')),
            Err(StateError::UnknownNode(id('z')))
        );
    }

    #[test]
    fn gaining_a_replica_makes_a_master_a_migration_target_until_it_has_none() {
        let mut s = three_masters();
        s.add_node(ClusterNode::new(id('d'), NodeFlags(NodeFlags::SLAVE), T0))
            .unwrap();
        assert_eq!(s.add_replica(&id('b'), &id('d')), Ok(true));
        assert_eq!(s.add_replica(&id('b'), &id('d')), Ok(false), "listed once");
        assert!(s.node(&id('b')).unwrap().flags.has(NodeFlags::MIGRATE_TO));
        assert!(s.remove_replica(&id('b'), &id('d')));
        assert!(!s.remove_replica(&id('b'), &id('d')));
        assert!(!s.node(&id('b')).unwrap().flags.has(NodeFlags::MIGRATE_TO));
    }

    #[test]
    fn a_replica_moving_to_another_master_leaves_the_old_list() {
        let mut s = three_masters();
        s.add_node(ClusterNode::new(id('d'), NodeFlags(NodeFlags::MASTER), T0))
            .unwrap();
        s.set_replica_of(&id('d'), &id('b')).unwrap();
        let d = s.node(&id('d')).unwrap();
        assert!(d.is_replica() && !d.is_master());
        s.set_replica_of(&id('d'), &id('c')).unwrap();
        assert!(s.node(&id('b')).unwrap().replicas.is_empty());
        assert_eq!(s.node(&id('c')).unwrap().replicas, vec![id('d')]);
    }

    #[test]
    fn a_promoted_replica_leaves_its_master_and_becomes_a_migration_target() {
        let mut s = three_masters();
        s.add_node(ClusterNode::new(id('d'), NodeFlags(0), T0))
            .unwrap();
        s.set_replica_of(&id('d'), &id('b')).unwrap();
        s.node_set_master(&id('d')).unwrap();
        let d = s.node(&id('d')).unwrap();
        assert!(d.is_master() && !d.is_replica());
        assert_eq!(d.slaveof, None);
        assert!(d.flags.has(NodeFlags::MIGRATE_TO));
        assert!(s.node(&id('b')).unwrap().replicas.is_empty());
    }

    #[test]
    fn myself_promoted_is_not_a_migration_target() {
        let mut s = ClusterState::new(ClusterNode::new(id('a'), NodeFlags(0), T0));
        s.add_node(master('b')).unwrap();
        s.set_replica_of(&id('a'), &id('b')).unwrap();
        s.node_set_master(&id('a')).unwrap();
        assert!(!s.myself().flags.has(NodeFlags::MIGRATE_TO));
        assert!(s.myself().is_myself());
    }

    #[test]
    fn serving_nodes_are_the_master_then_its_replicas() {
        let mut s = three_masters();
        for c in ['d', 'e'] {
            s.add_node(ClusterNode::new(id(c), NodeFlags(0), T0))
                .unwrap();
            s.set_replica_of(&id(c), &id('b')).unwrap();
        }
        assert_eq!(
            s.nodes_serving_slots_of(&id('e')),
            vec![id('b'), id('d'), id('e')]
        );
        assert_eq!(
            s.nodes_serving_slots_of(&id('b')),
            vec![id('b'), id('d'), id('e')]
        );
        flag(&mut s, 'd', NodeFlags::FAIL);
        assert_eq!(s.count_non_failing_replicas(&id('b')), 1);
    }

    #[test]
    fn a_failure_report_from_the_same_reporter_is_refreshed_not_duplicated() {
        let mut s = three_masters();
        assert!(s.add_failure_report(&id('c'), &id('b'), T0));
        assert!(!s.add_failure_report(&id('c'), &id('b'), T0 + 10));
        let reports = &s.node(&id('c')).unwrap().fail_reports;
        assert_eq!(
            reports,
            &vec![FailReport {
                reporter: id('b'),
                time: T0 + 10
            }]
        );
    }

    #[test]
    fn failure_reports_expire_after_twice_the_node_timeout() {
        let mut s = three_masters();
        s.add_failure_report(&id('c'), &id('a'), T0);
        s.add_failure_report(&id('c'), &id('b'), T0 + 1000);
        let limit = T0 + 2 * NODE_TIMEOUT;
        assert_eq!(s.failure_reports_count(&id('c'), limit, NODE_TIMEOUT), 2);
        assert_eq!(
            s.failure_reports_count(&id('c'), limit + 1, NODE_TIMEOUT),
            1
        );
        assert_eq!(
            s.failure_reports_count(&id('c'), limit + 1001, NODE_TIMEOUT),
            0
        );
    }

    #[test]
    fn a_healthy_gossip_withdraws_that_reporters_failure_report() {
        let mut s = three_masters();
        s.add_failure_report(&id('c'), &id('b'), T0);
        assert!(s.del_failure_report(&id('c'), &id('b'), T0, NODE_TIMEOUT));
        assert!(!s.del_failure_report(&id('c'), &id('b'), T0, NODE_TIMEOUT));
    }

    #[test]
    fn cluster_size_counts_masters_serving_at_least_one_slot() {
        let mut s = three_masters();
        s.add_node(master('d')).unwrap();
        assert_eq!(s.cluster_size(), 3);
        s.set_slot_owner(0, &id('d')).unwrap();
        assert_eq!(s.cluster_size(), 4);
    }

    #[test]
    fn max_epoch_is_the_greatest_config_epoch_or_current_epoch() {
        let mut s = three_masters();
        s.node_mut(&id('b')).unwrap().config_epoch = 7;
        assert_eq!(s.max_epoch(), 7);
        s.current_epoch = 9;
        assert_eq!(s.max_epoch(), 9);
    }

    #[test]
    fn a_replica_reports_its_masters_config_epoch_as_its_own() {
        let mut s = ClusterState::new(ClusterNode::new(id('a'), NodeFlags(0), T0));
        s.add_node(master('b')).unwrap();
        s.node_mut(&id('b')).unwrap().config_epoch = 5;
        s.set_replica_of(&id('a'), &id('b')).unwrap();
        assert_eq!(s.myself().config_epoch, 0);
        assert_eq!(s.my_epoch(), 5);
    }

    #[test]
    fn a_fully_covered_cluster_with_all_masters_reachable_is_ok() {
        let s = three_masters();
        let v = s.evaluate_state(true);
        assert_eq!(
            v,
            StateVerdict {
                health: Health::Ok,
                size: 3,
                in_minority: false
            }
        );
    }

    #[test]
    fn an_unassigned_slot_fails_the_cluster_only_when_full_coverage_is_required() {
        let mut s = three_masters();
        s.del_slot(42);
        assert_eq!(s.evaluate_state(true).health, Health::Fail);
        assert_eq!(s.evaluate_state(false).health, Health::Ok);
    }

    #[test]
    fn a_slot_owned_by_a_fail_master_breaks_coverage_but_pfail_does_not() {
        let mut s = three_masters();
        s.add_node(master('d')).unwrap();
        s.add_node(master('e')).unwrap();
        s.set_slot_owner(0, &id('d')).unwrap();
        s.set_slot_owner(1, &id('e')).unwrap();
        flag(&mut s, 'd', NodeFlags::PFAIL);
        assert_eq!(
            s.evaluate_state(true).health,
            Health::Ok,
            "4 of 5 masters reachable"
        );
        let mut failed = s.clone();
        flag(&mut failed, 'd', NodeFlags::FAIL);
        assert_eq!(failed.evaluate_state(true).health, Health::Fail);
        assert_eq!(failed.evaluate_state(false).health, Health::Ok);
    }

    #[test]
    fn fewer_reachable_masters_than_a_majority_is_a_minority_partition() {
        let mut s = three_masters();
        flag(&mut s, 'b', NodeFlags::PFAIL);
        assert_eq!(
            s.evaluate_state(false).health,
            Health::Ok,
            "2 of 3 is a majority"
        );
        flag(&mut s, 'c', NodeFlags::FAIL);
        let v = s.evaluate_state(false);
        assert_eq!(
            v,
            StateVerdict {
                health: Health::Fail,
                size: 3,
                in_minority: true
            }
        );
    }

    #[test]
    fn a_master_stays_fail_for_two_seconds_after_its_first_evaluation() {
        let mut s = three_masters();
        assert!(!s.update_state(T0, true, NODE_TIMEOUT));
        assert!(!s.update_state(T0 + WRITABLE_DELAY_MS - 1, true, NODE_TIMEOUT));
        assert_eq!(s.state, Health::Fail);
        assert!(s.update_state(T0 + WRITABLE_DELAY_MS, true, NODE_TIMEOUT));
        assert_eq!((s.state, s.size), (Health::Ok, 3));
    }

    #[test]
    fn a_replica_turns_ok_at_once() {
        let mut s = ClusterState::new(ClusterNode::new(id('r'), NodeFlags(0), T0));
        for c in ['a', 'b', 'c'] {
            s.add_node(master(c)).unwrap();
        }
        s.set_replica_of(&id('r'), &id('a')).unwrap();
        for slot in 0..CLUSTER_SLOTS as Slot {
            s.add_slot(&id("abc".as_bytes()[slot as usize % 3] as char), slot)
                .unwrap();
        }
        assert!(s.update_state(T0, true, NODE_TIMEOUT));
        assert_eq!(s.state, Health::Ok);
    }

    #[test]
    fn a_master_back_from_the_minority_waits_the_rejoin_delay() {
        let mut s = three_masters();
        s.update_state(T0, true, NODE_TIMEOUT);
        s.update_state(T0 + WRITABLE_DELAY_MS, true, NODE_TIMEOUT);
        assert_eq!(s.state, Health::Ok);
        flag(&mut s, 'b', NodeFlags::PFAIL);
        flag(&mut s, 'c', NodeFlags::PFAIL);
        let split = T0 + 10_000;
        assert!(s.update_state(split, true, NODE_TIMEOUT));
        assert_eq!(s.state, Health::Fail);
        for c in ['b', 'c'] {
            s.node_mut(&id(c)).unwrap().flags.clear(NodeFlags::PFAIL);
        }
        // node_timeout 15 s is clamped to the 5 s maximum rejoin delay.
        assert!(!s.update_state(split + MAX_REJOIN_DELAY_MS - 1, true, NODE_TIMEOUT));
        assert!(s.update_state(split + MAX_REJOIN_DELAY_MS, true, NODE_TIMEOUT));
        assert_eq!(s.state, Health::Ok);
    }

    #[test]
    fn the_rejoin_delay_is_at_least_half_a_second() {
        let mut s = three_masters();
        s.update_state(T0, true, 100);
        s.update_state(T0 + WRITABLE_DELAY_MS, true, 100);
        assert_eq!(s.state, Health::Ok);
        flag(&mut s, 'b', NodeFlags::FAIL);
        flag(&mut s, 'c', NodeFlags::FAIL);
        let split = T0 + 10_000;
        s.update_state(split, false, 100);
        for c in ['b', 'c'] {
            s.node_mut(&id(c)).unwrap().flags.clear(NodeFlags::FAIL);
        }
        assert!(!s.update_state(split + MIN_REJOIN_DELAY_MS - 1, false, 100));
        assert!(s.update_state(split + MIN_REJOIN_DELAY_MS, false, 100));
    }

    #[test]
    fn slot_counts_split_assigned_slots_by_owner_health() {
        let mut s = three_masters();
        s.del_slot(0);
        flag(&mut s, 'b', NodeFlags::PFAIL);
        flag(&mut s, 'c', NodeFlags::FAIL);
        let c = s.slot_counts();
        assert_eq!(
            c,
            SlotCounts {
                assigned: 16383,
                ok: 5460,
                pfail: 5462,
                fail: 5461
            }
        );
    }

    #[test]
    fn open_slots_list_each_slot_once_in_order() {
        let mut s = three_masters();
        s.set_importing(9, Some(id('c'))).unwrap();
        s.set_migrating(9, Some(id('b'))).unwrap();
        s.set_migrating(2, Some(id('b'))).unwrap();
        assert_eq!(
            s.open_slots(),
            vec![(2, Some(id('b')), None), (9, Some(id('b')), Some(id('c')))]
        );
        s.set_migrating(2, None).unwrap();
        s.close_all_slots();
        assert!(s.open_slots().is_empty());
    }

    #[test]
    fn slot_bitmap_uses_the_bus_bit_order() {
        let mut b = SlotBitmap::default();
        assert!(b.set(9));
        assert!(!b.set(9));
        assert_eq!(b.as_bytes()[1], 0b0000_0010);
        assert_eq!(b.count(), 1);
        assert!(b.clear(9) && !b.clear(9));
        let mut wire = [0u8; CLUSTER_SLOTS / 8];
        wire[2047] = 0x80;
        let from_bus = SlotBitmap::from_bytes(&wire);
        assert!(from_bus.get(16383) && !from_bus.get(16382));
    }
}

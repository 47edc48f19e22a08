//! Failure detection beyond the local timeout: PFAIL turns into FAIL when a majority of
//! slot-serving masters reported the node recently (markNodeAsFailingIfNeeded, then a FAIL
//! broadcast), and FAIL is undone when the node answers again and nobody replaced it
//! (clearNodeFailureIfNeeded).

use super::{ClusterMachine, LL_NOTICE, TODO_SAVE_CONFIG, TODO_UPDATE_STATE};
use crate::cluster::node::{NodeFlags, NodeId};

/// A master with slots keeps FAIL this many node timeouts before a PONG can clear it.
const FAIL_UNDO_TIME_MULT: u64 = 2;

impl ClusterMachine {
    /// PFAIL → FAIL once `size / 2 + 1` masters (myself included when a master) agree.
    pub(super) fn mark_node_as_failing_if_needed(&mut self, now: u64, id: &NodeId) {
        let Some(n) = self.state.node(id) else { return };
        if !n.timed_out() || n.failed() {
            return;
        }
        let quorum = self.state.size / 2 + 1;
        let nt = self.config.node_timeout_ms;
        let mut failures = self.state.failure_reports_count(id, now, nt);
        if self.state.myself().is_master() {
            failures += 1;
        }
        if failures < quorum {
            return;
        }
        self.log(
            LL_NOTICE,
            format!("Marking node {id} as failing (quorum reached)."),
        );
        if let Some(n) = self.state.node_mut(id) {
            n.flags.clear(NodeFlags::PFAIL);
            n.flags.set(NodeFlags::FAIL);
            n.fail_time = now;
        }
        self.send_fail(*id);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
    }

    /// The FAIL node answered: a replica or slot-less master is back at once; a master
    /// with slots only after its FAIL is old enough that nobody is going to fail it over.
    pub(super) fn clear_node_failure_if_needed(&mut self, now: u64, id: &NodeId) {
        let Some(n) = self.state.node(id) else { return };
        let nt = self.config.node_timeout_ms;
        let text = if n.is_replica() || n.numslots() == 0 {
            let what = if n.is_replica() {
                "replica"
            } else {
                "master without slots"
            };
            format!("Clear FAIL state for node {id}: {what} is reachable again.")
        } else if now.saturating_sub(n.fail_time) > nt * FAIL_UNDO_TIME_MULT {
            format!(
                "Clear FAIL state for node {id}: is reachable again and nobody is serving its slots after some time."
            )
        } else {
            return;
        };
        if let Some(n) = self.state.node_mut(id) {
            n.flags.clear(NodeFlags::FAIL);
        }
        self.log(LL_NOTICE, text);
        self.todo(TODO_UPDATE_STATE | TODO_SAVE_CONFIG);
    }
}

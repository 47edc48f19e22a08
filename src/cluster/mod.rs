//! Cluster mode as a pure state machine (DESIGN §4.1–4.2): node identities and flags
//! (`node`), the bus wire format (`bus`), the routing snapshot (`topology`) and the
//! `getNodeByQuery` decision over it (`routing`), the node table, nodes.conf and the machine that steps
//! on bus messages and ticks. Nothing here touches sockets, files or the clock; the driver in
//! `server/` moves bytes and timers.

pub mod bus;
pub mod node;
pub mod routing;
pub mod topology;

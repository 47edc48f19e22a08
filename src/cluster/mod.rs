//! Cluster mode as a pure state machine (DESIGN §4.1–4.2): node identities and flags
//! (`node`), the bus wire format (`bus`), the node table (`state`), nodes.conf (`nodes_conf`),
//! the CLUSTER NODES/SLOTS/SHARDS/INFO views (`render`), the routing snapshot (`topology`) and
//! the `getNodeByQuery` decision over it (`routing`), and the machine that steps on bus
//! messages and ticks. Nothing here touches sockets, files or the clock; the driver in
//! `server/` moves bytes and timers.

pub mod bus;
pub mod machine;
pub mod node;
pub mod nodes_conf;
pub mod render;
pub mod routing;
pub mod sim_net;
pub mod state;
pub mod topology;

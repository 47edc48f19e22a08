//! Commands: the one table (`table.rs`), their specs (`spec.rs`), the execution context
//! (`context.rs`), the path from arguments to reply (`dispatch.rs`), every error text
//! (`errors.rs`), and one file per command family. Handlers return replies and record
//! effects; they never touch sockets.

pub mod acl;
pub mod bitmap;
pub mod blocking;
pub mod cluster;
pub mod command;
pub mod context;
pub mod debug;
pub mod dispatch;
pub mod dump;
pub mod errors;
pub mod evict;
pub mod geo;
pub mod geohash;
pub mod hash;
pub mod hyperloglog;
pub mod introspection;
pub mod keys;
pub mod list;
pub mod migrate;
pub mod pqsort;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
pub mod spec;
pub mod stream;
pub mod string;
pub mod table;
#[cfg(test)]
pub mod test_support;
pub mod tracking;
pub mod tx;
pub mod watch;
pub mod zset;

pub use context::{ClientState, ExecCtx};
pub use spec::{CmdResult, CommandSpec};

//! Replication as pure logic: the one command stream that write effects are appended to
//! (`backlog`), with its offsets and the window a reconnecting replica can resume from. The
//! sockets that carry it to replicas live in `server/replication_driver.rs`; the replica's own
//! handshake and link state are in `replica`.

pub mod backlog;
pub mod replica;

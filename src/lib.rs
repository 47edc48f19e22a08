//! ferrodis: a Redis-compatible, cluster-mode server.
//!
//! Where to start reading: `server::run` wires the runtime; a request travels
//! `resp::decode` → `commands::dispatch::execute` (lookup, admission gates, shard locks) →
//! a handler in a `commands/` family file → `resp::encode`.
//!
//! - `slot`: CRC16 hash slots and hash tags. Pure.
//! - `resp`: the protocol codec (requests in, replies out, and the client-side reply decoder).
//! - `config`: redis.conf grammar, the one directive table, CONFIG GET/SET/REWRITE. Pure.
//! - `keyspace`: per-slot tables behind shard locks, values and their encodings, expiry.
//! - `cluster`: cluster mode as a pure machine: node ids and flags, the bus codec, nodes.conf. Pure.
//! - `commands`: the command table, dispatch, execution context and the command families.
//! - `replication`: the replication stream and its backlog. Pure.
//! - `persistence`: the RDB codec. Pure.
//! - `server`: the only module with tokio, sockets, files and the clock.
//! - `alloc`: the global allocator (jemalloc) and its exact count of bytes in use.
//! - `util`: number parsing and glob matching with Redis's exact rules.

#[global_allocator]
static GLOBAL: alloc::CountingJemalloc = alloc::CountingJemalloc;

pub mod acl;
pub mod alloc;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod keyspace;
pub mod persistence;
pub mod replication;
pub mod resp;
pub mod server;
pub mod slot;
pub mod util;

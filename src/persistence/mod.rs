//! Persistence codecs, pure: the RDB format (`rdb`) and the append-only file's manifest,
//! command feed and reader (`aof`). The files and the background work that use them live in
//! `server/`.

pub mod aof;
pub mod rdb;

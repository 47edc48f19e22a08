//! The append-only file as Redis 7.0 lays it out: a directory holding a base file (an RDB
//! image), incremental files of RESP commands, and a manifest naming them (`manifest`); the
//! in-memory buffer propagated commands are appended to before they reach the file (`feed`);
//! and the reader that turns an incremental file back into commands (`reader`).

pub mod feed;
pub mod manifest;
pub mod reader;

//! Persistence codecs, pure: the RDB format (`rdb`). The files and the background work that
//! use them live in `server/`.

pub mod rdb;

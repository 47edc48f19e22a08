//! The RDB snapshot format (version 10, Redis 7.0): `encode` writes a dataset, `decode`
//! reads one back (and older files, whose compact types `ziplist` reads), `crc64` is the
//! checksum that ends every file.

pub mod check;
pub mod crc64;
pub mod decode;
pub mod encode;
pub mod listpack;
pub mod lzf;
pub mod stream;
pub mod ziplist;

/// `REDIS0010`: Redis 7.0 writes RDB version 10.
pub const RDB_VERSION: u32 = 10;

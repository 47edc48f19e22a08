//! The keyspace: for every database, one table per hash slot (Redis 7.4's kvstore idea), the
//! slot tables grouped into shards behind locks (`slot % shard_count`). A command locks the
//! shards of its keys in ascending order and works on a `Locked` view; nothing here knows about
//! sockets or clocks: the current time comes in as `now_ms`.

pub mod db;
pub mod evict;
pub mod expiry;
pub mod hash;
pub mod hll;
pub mod list;
pub mod packed;
pub mod set;
pub mod slot_table;
pub mod small_bytes;
pub mod snapshot;
pub mod stream;
pub mod value;
pub mod zset;

pub use db::{Keyspace, Locked};
pub use slot_table::{Entry, SlotTable};
pub use value::{StrValue, Value};

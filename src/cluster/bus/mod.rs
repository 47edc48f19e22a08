//! The Redis Cluster bus wire format (cluster.h's `clusterMsg` and friends), pure: typed
//! messages in `message`, the frame splitter, decoder and encoder in `codec`. The driver in
//! `server/` feeds link bytes to [`next_frame`] and [`decode`], hands the messages to the
//! cluster machine, and writes what [`encode`] returns; nothing here owns a socket or a clock.
//!
//! Layout facts: /work/shared/spec/cluster-bus.md §1–§9, checked against Redis 7.0.15
//! `src/cluster.h`/`cluster.c` and 7.2.6 for the ping extensions.

pub mod codec;
pub mod message;

#[cfg(test)]
mod tests;

pub use codec::{decode, encode, frame_limit_for_proto_max_bulk_len, next_frame, BusError};
pub use message::{
    empty_slots, ext_type, mflags, set_slot, slot_is_set, slot_ranges, Body, BusIp, GossipEntry,
    Header, Message, MessageType, PingBody, PingExt, PublishBody, SlotBitmap, CLUSTER_STATE_FAIL,
    CLUSTER_STATE_OK, GOSSIP_ENTRY_LEN, HEADER_LEN, NET_IP_STR_LEN, SLOTS_BITMAP_LEN,
};

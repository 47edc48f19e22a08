//! RESP, the Redis serialization protocol: request decoding (multibulk and inline, with the
//! limits checked before anything is allocated), the protocol-neutral `Reply` value that every
//! handler returns, and the encoder that alone knows how RESP3 types fold down to RESP2.

pub mod decode;
pub mod encode;
pub mod reply;
pub mod reply_decode;

pub use decode::{decode_request, DecodeLimits, ProtocolError, Request};
pub use encode::encode;
pub use reply::{ErrorReply, Reply};

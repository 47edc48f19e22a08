//! The client-side reply decoder must be total: any bytes give a reply, "need more", or an
//! error, never a panic or unbounded allocation.
#![no_main]

use ferrodis::resp::reply_decode::decode_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = decode_reply(data) {
        assert!(used <= data.len());
    }
});

//! The cluster-bus frame splitter and decoder must be total: any bytes from a peer give a
//! frame length, "need more", or a typed error, never a panic or an unbounded allocation; and
//! whatever decodes must re-encode to a frame that decodes to the same message.
#![no_main]

use ferrodis::cluster::bus::{decode, encode, next_frame};
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer reaches the limit check with short inputs.
const MAX_FRAME_LEN: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    // The stream view: split frames off the front as the link reader would.
    let mut rest = data;
    while let Ok(Some(len)) = next_frame(rest, MAX_FRAME_LEN) {
        assert!(len <= rest.len());
        let (frame, tail) = rest.split_at(len);
        if let Ok(msg) = decode(frame) {
            assert_eq!(decode(&encode(&msg)), Ok(msg));
        }
        rest = tail;
    }
    // The frame view: the whole input as one frame, whatever its totlen says.
    let _ = decode(data);
});

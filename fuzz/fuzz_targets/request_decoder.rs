//! Feeds arbitrary bytes, split at an arbitrary point, to the request decoder: it must never
//! panic, must consume what it reports as parsed, and must not loop forever.
#![no_main]

use bytes::BytesMut;
use ferrodis::resp::decode::{DecodeLimits, RequestDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize) % (data.len() + 1);
    let mut decoder = RequestDecoder::new();
    let mut buf = BytesMut::new();
    let limits = DecodeLimits {
        proto_max_bulk_len: 1 << 20,
        authenticated: data.len() % 2 == 0,
    };
    for chunk in [&data[..split], &data[split..]] {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decoder.decode(&mut buf, limits) {
                Ok(Some(req)) => assert!(!req.args.is_empty()),
                Ok(None) => break,
                Err(_) => return,
            }
            assert!(buf.len() < before || before == 0);
        }
    }
});

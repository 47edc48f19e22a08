//! The RDB reader must be total: any bytes, read as a whole file or as a DUMP payload, deep
//! checks on or off, give keys or a typed error, never a panic or an allocation larger than
//! the input can justify. The checker that reports on damaged files must be total too.
#![no_main]

use ferrodis::persistence::rdb::{check, crc64, decode};
use libfuzzer_sys::fuzz_target;

fn limits(deep: bool) -> decode::LoadLimits {
    let mut limits = decode::LoadLimits::from_config(&ferrodis::config::Config::default());
    limits.deep = deep;
    limits
}

fuzz_target!(|data: &[u8]| {
    for deep in [false, true] {
        // As a file: with the signature the fuzzer may not guess, and as it is.
        let mut file = b"REDIS0010".to_vec();
        file.extend_from_slice(data);
        for bytes in [&file[..], data] {
            let _ = decode::decode(bytes, limits(deep), 0, |_| {});
        }
        // As a DUMP payload, given a correct footer so the value itself is read.
        let mut payload = data.to_vec();
        payload.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64::update(0, &payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        let _ = decode::decode_dump(&payload, limits(deep), false);
        let _ = decode::decode_dump(data, limits(deep), true);
    }
    let _ = check::check("fuzz.rdb", data, limits(true), 0);
});

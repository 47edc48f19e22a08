//! Hash slots: `key_slot(key)` is CRC16 (the XMODEM variant) of the key, or of its hash tag,
//! modulo 16384, with Redis Cluster's tag rule: the tag is the bytes between the first `{` and
//! the first `}` after it, used only when that span is non-empty.

pub const SLOT_COUNT: usize = 16384;

pub type Slot = u16;

/// CRC-16/XMODEM (polynomial 0x1021, no reflection, zero start) of each byte value.
const CRC_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC of each byte value followed by a zero byte: with `CRC_TABLE`, two bytes are
/// folded in at once (the CRC is linear, so the two halves of the state are looked up apart).
const CRC_TABLE_HI: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let t = CRC_TABLE[i];
        table[i] = (t << 8) ^ CRC_TABLE[(t >> 8) as usize];
        i += 1;
    }
    table
};

pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    let mut pairs = data.chunks_exact(2);
    for pair in &mut pairs {
        let x = crc ^ u16::from_be_bytes([pair[0], pair[1]]);
        crc = CRC_TABLE_HI[(x >> 8) as usize] ^ CRC_TABLE[(x & 0xff) as usize];
    }
    if let [b] = pairs.remainder() {
        crc = (crc << 8) ^ CRC_TABLE[((crc >> 8) as u8 ^ b) as usize];
    }
    crc
}

pub fn key_slot(key: &[u8]) -> Slot {
    let hashed = if has_open_brace(key) {
        hash_tag(key)
    } else {
        key
    };
    crc16(hashed) & (SLOT_COUNT as u16 - 1)
}

/// Whether the key holds a `{`, looked for eight bytes at a time (most keys have none).
fn has_open_brace(key: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const BRACES: u64 = u64::from_ne_bytes([b'{'; 8]);
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_ne_bytes(w.try_into().expect("eight bytes")) ^ BRACES;
        // Some byte of `v` is zero (a `{` in the key).
        if v.wrapping_sub(ONES) & !v & HIGHS != 0 {
            return true;
        }
    }
    words.remainder().contains(&b'{')
}

/// The part of the key that is hashed.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else {
        return key;
    };
    match key[open + 1..].iter().position(|&b| b == b'}') {
        Some(0) | None => key,
        Some(len) => &key[open + 1..open + 1 + len],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_the_xmodem_variant() {
        // The check value of CRC-16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn slots_of_known_keys() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tag_edge_cases() {
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"{"), b"{");
        assert_eq!(hash_tag(b"}{a}"), b"a");
        assert_eq!(key_slot(b"{user1000}.a"), key_slot(b"{user1000}.b"));
        assert_eq!(key_slot(b"{user1000}.a"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 16383);
        assert_eq!(key_slot(b"a{"), crc16(b"a{") & 16383);
        for at in 0..20 {
            let mut key = vec![b'x'; 20];
            key[at] = b'{';
            assert!(has_open_brace(&key));
            key[at] = b'z';
            assert!(!has_open_brace(&key));
        }
    }

    #[test]
    fn the_table_matches_a_bitwise_crc() {
        let bitwise = |data: &[u8]| {
            let mut crc = 0u16;
            for &b in data {
                crc ^= (b as u16) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 {
                        (crc << 1) ^ 0x1021
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        };
        let data: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for end in 0..data.len() {
            assert_eq!(crc16(&data[..end]), bitwise(&data[..end]));
        }
    }
}

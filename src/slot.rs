//! Hash slots: `key_slot(key)` is CRC16 (the XMODEM variant) of the key, or of its hash tag,
//! modulo 16384, with Redis Cluster's tag rule: the tag is the bytes between the first `{` and
//! the first `}` after it, used only when that span is non-empty.

pub const SLOT_COUNT: usize = 16384;

pub type Slot = u16;

pub fn crc16(data: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(data)
}

pub fn key_slot(key: &[u8]) -> Slot {
    crc16(hash_tag(key)) & (SLOT_COUNT as u16 - 1)
}

/// The part of the key that is hashed.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    // Most keys have no tag: `contains` scans a word at a time.
    if !key.contains(&b'{') {
        return key;
    }
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
    }
}

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
    // Most keys have no tag, which a scan eight bytes at a time shows cheaply.
    if !has_open_brace(key) {
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

/// Whether `key` holds a `{`: each 8-byte word is XORed with the brace repeated, and a
/// zero byte in the result (found with the borrow trick) is a brace.
fn has_open_brace(key: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let braces = ONES * b'{' as u64;
    let mut words = key.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_ne_bytes(w.try_into().expect("an 8-byte chunk")) ^ braces;
        if x.wrapping_sub(ONES) & !x & HIGHS != 0 {
            return true;
        }
    }
    words.remainder().contains(&b'{')
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
    fn brace_scan_agrees_with_a_plain_search() {
        // Every position in keys of every length up to three words, next to bytes that differ
        // from `{` by one bit or sit just below or above it.
        for len in 0..24 {
            for at in 0..=len {
                for fill in [
                    b'a',
                    b'z',
                    b'{' ^ 1,
                    b'{' ^ 0x80,
                    b'{' - 1,
                    b'{' + 1,
                    0,
                    0xff,
                ] {
                    let mut key = vec![fill; len];
                    if at < len {
                        key[at] = b'{';
                    }
                    assert_eq!(has_open_brace(&key), key.contains(&b'{'), "{key:?}");
                }
            }
        }
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

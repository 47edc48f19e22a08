//! LZF decompression, for the compressed strings Redis writes into RDB files
//! (`rdbcompression yes`, the default). The format is a sequence of runs, each introduced by
//! a control byte: below 32 it is a literal run of `ctrl + 1` bytes copied as they are;
//! otherwise the top three bits give a match length (7 means an extra length byte follows)
//! and the low five bits, with the next byte, a distance back into what was already output.
//! Every length and distance is checked: bad input is an error, never a panic.
//!
//! `compress` writes the same format: a table remembers where each 3-byte sequence was last
//! seen, a repeat within reach becomes a back reference, anything else a literal.

/// Expands `input` into exactly `expected_len` bytes.
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = Vec::with_capacity(expected_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if i + n > input.len() {
                return Err("LZF literal run past the end of input".into());
            }
            if out.len() + n > expected_len {
                return Err("LZF output longer than announced".into());
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let extra = *input
                    .get(i)
                    .ok_or("LZF match length past the end of input")?;
                len += extra as usize;
                i += 1;
            }
            len += 2;
            let low = *input
                .get(i)
                .ok_or("LZF match distance past the end of input")?;
            i += 1;
            let back = (((ctrl & 0x1f) << 8) | low as usize) + 1;
            if back > out.len() {
                return Err("LZF match refers before the start of output".into());
            }
            if out.len() + len > expected_len {
                return Err("LZF output longer than announced".into());
            }
            // Byte by byte: a match may overlap the bytes it produces.
            let start = out.len() - back;
            for k in 0..len {
                let b = out[start + k];
                out.push(b);
            }
        }
    }
    if out.len() != expected_len {
        return Err("LZF output shorter than announced".into());
    }
    Ok(out)
}

/// Literal runs hold at most this many bytes.
const MAX_LITERAL: usize = 32;
/// Back references reach at most this far (13 bits of distance, minus one).
const MAX_DISTANCE: usize = 1 << 13;
/// The longest match one reference encodes: 2 + 7 + 255.
const MAX_MATCH: usize = 264;
const HASH_BITS: u32 = 14;

/// Compresses `input`, or `None` when the result would be longer than `max_out` bytes (the
/// caller then stores the bytes as they are).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(max_out.min(input.len()));
    let mut table = vec![usize::MAX; 1 << HASH_BITS];
    let hash = |p: usize| {
        let v = u32::from(input[p]) << 16 | u32::from(input[p + 1]) << 8 | u32::from(input[p + 2]);
        (v.wrapping_mul(2654435761) >> (32 - HASH_BITS)) as usize
    };
    let mut literal_start = 0;
    let mut i = 0;
    let flush = |out: &mut Vec<u8>, from: usize, to: usize| {
        for run in input[from..to].chunks(MAX_LITERAL) {
            out.push((run.len() - 1) as u8);
            out.extend_from_slice(run);
        }
    };
    while i + 2 < input.len() {
        let h = hash(i);
        let candidate = table[h];
        table[h] = i;
        let reachable = candidate != usize::MAX && i - candidate <= MAX_DISTANCE;
        if reachable && input[candidate..candidate + 3] == input[i..i + 3] {
            let limit = (input.len() - i).min(MAX_MATCH);
            let mut len = 3;
            while len < limit && input[candidate + len] == input[i + len] {
                len += 1;
            }
            flush(&mut out, literal_start, i);
            let distance = i - candidate - 1;
            let code = len - 2;
            if code < 7 {
                out.push(((code << 5) | (distance >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (distance >> 8)) as u8);
                out.push((code - 7) as u8);
            }
            out.push(distance as u8);
            i += len;
            literal_start = i;
        } else {
            i += 1;
        }
        if out.len() > max_out {
            return None;
        }
    }
    flush(&mut out, literal_start, input.len());
    (out.len() <= max_out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::{compress, decompress};

    #[test]
    fn compressed_bytes_expand_back() {
        let mut inputs: Vec<Vec<u8>> = vec![
            b"abcabcabcabcabcabcabcabcabcabcabcabc".to_vec(),
            vec![b'x'; 10_000],
            (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect(),
            b"no repeats here".to_vec(),
        ];
        // Pseudo-random bytes with some repeated stretches.
        let mut x = 12345u64;
        let mut mixed = Vec::new();
        for i in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            mixed.push(if i % 700 < 300 { b'r' } else { (x >> 56) as u8 });
        }
        inputs.push(mixed);
        for input in inputs {
            let packed = compress(&input, usize::MAX).unwrap();
            assert_eq!(decompress(&packed, input.len()).unwrap(), input);
        }
        assert!(compress(&[b'z'; 1000], 100).unwrap().len() < 100);
        assert_eq!(compress(b"abcdefghijklmnopqrstuvwxyz", 20), None);
    }

    #[test]
    fn literal_runs_are_copied() {
        assert_eq!(decompress(&[2, b'a', b'b', b'c'], 3).unwrap(), b"abc");
    }

    #[test]
    fn back_references_may_overlap_their_output() {
        // "a" then a match of 2 + 5 = 7 bytes at distance 1: eight 'a's.
        let input = [0, b'a', 5 << 5, 0];
        assert_eq!(decompress(&input, 8).unwrap(), b"aaaaaaaa");
        // "ab" then 3 bytes from distance 2: "ababa".
        let input = [1, b'a', b'b', 1 << 5, 1];
        assert_eq!(decompress(&input, 5).unwrap(), b"ababa");
    }

    #[test]
    fn long_matches_use_the_extra_length_byte() {
        // "xy" then a match of 7 + 10 + 2 = 19 bytes at distance 2.
        let input = [1, b'x', b'y', 7 << 5, 10, 1];
        let out = decompress(&input, 21).unwrap();
        assert_eq!(out.len(), 21);
        assert!(out
            .chunks(2)
            .all(|c| c[0] == b'x' && c.get(1).is_none_or(|&b| b == b'y')));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(decompress(&[5, b'a'], 6).is_err());
        assert!(decompress(&[0, b'a', 1 << 5, 4], 4).is_err());
        assert!(decompress(&[0, b'a'], 2).is_err());
        assert!(decompress(&[0, b'a', 7 << 5], 20).is_err());
        assert!(decompress(&[2, b'a', b'b', b'c'], 2).is_err());
    }
}

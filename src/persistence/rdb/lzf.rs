//! LZF decompression, for the compressed strings Redis writes into RDB files
//! (`rdbcompression yes`, the default). The format is a sequence of runs, each introduced by
//! a control byte: below 32 it is a literal run of `ctrl + 1` bytes copied as they are;
//! otherwise the top three bits give a match length (7 means an extra length byte follows)
//! and the low five bits, with the next byte, a distance back into what was already output.
//! Every length and distance is checked: bad input is an error, never a panic.

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

#[cfg(test)]
mod tests {
    use super::decompress;

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

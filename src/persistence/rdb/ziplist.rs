//! The compact encodings of files written before Redis 7.0: the ziplist (lists, hashes and
//! sorted sets up to RDB 9, and the nodes of RDB 9 quicklists) and the zipmap (hashes before
//! Redis 2.6). Only read, never written. Total and bounded: every length is checked against
//! the blob before it is used.

/// Entry-encoding bytes of a ziplist entry holding an integer.
const ZIP_INT_16B: u8 = 0xc0;
const ZIP_INT_32B: u8 = 0xd0;
const ZIP_INT_64B: u8 = 0xe0;
const ZIP_INT_24B: u8 = 0xf0;
const ZIP_INT_8B: u8 = 0xfe;
const ZIP_END: u8 = 0xff;
/// The ziplist header: total bytes (u32), offset of the last entry (u32), entry count (u16).
const ZIPLIST_HEADER_BYTES: usize = 10;
/// A zipmap length byte: 254 means a 4-byte length follows, 255 ends the map.
const ZIPMAP_BIGLEN: u8 = 254;
const ZIPMAP_END: u8 = 255;

struct Cursor<'a> {
    blob: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.blob.len())
            .ok_or("truncated ziplist entry")?;
        let out = &self.blob[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
}

/// Every entry of a ziplist, integers as their decimal text, after the whole structure has
/// been checked: the byte count and tail offset of the header, each entry's record of the
/// previous entry's size, every encoding, the terminator, and the entry count (unless it
/// saturated at 65535).
pub fn ziplist_strings(blob: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if blob.len() < ZIPLIST_HEADER_BYTES + 1 {
        return Err("short ziplist".into());
    }
    let declared = u32::from_le_bytes(blob[..4].try_into().unwrap()) as usize;
    if declared != blob.len() {
        return Err("ziplist length mismatch".into());
    }
    if blob[blob.len() - 1] != ZIP_END {
        return Err("ziplist without terminator".into());
    }
    let tail = u32::from_le_bytes(blob[4..8].try_into().unwrap()) as usize;
    if tail > blob.len() - 1 {
        return Err("ziplist tail offset out of range".into());
    }
    let header_count = u16::from_le_bytes(blob[8..10].try_into().unwrap());
    // Entries may not run into the terminator.
    let mut c = Cursor {
        blob: &blob[..blob.len() - 1],
        pos: ZIPLIST_HEADER_BYTES,
    };
    let mut out = Vec::new();
    let (mut prev_size, mut last_start) = (0usize, None);
    while c.pos < c.blob.len() {
        let start = c.pos;
        // The previous entry's length: one byte, or 0xfe and four more.
        let prevlen = match c.byte()? {
            0xfe => u32::from_le_bytes(c.take(4)?.try_into().unwrap()) as usize,
            0xff => return Err("ziplist entry starts with the terminator".into()),
            b => b as usize,
        };
        if prevlen != prev_size {
            return Err("ziplist entry has a wrong previous length".into());
        }
        out.push(entry(&mut c)?);
        prev_size = c.pos - start;
        last_start = Some(start);
    }
    if last_start.is_some_and(|s| s != tail) {
        return Err("ziplist tail offset is not the last entry".into());
    }
    if header_count != u16::MAX && header_count as usize != out.len() {
        return Err("ziplist entry count mismatch".into());
    }
    Ok(out)
}

fn entry(c: &mut Cursor<'_>) -> Result<Vec<u8>, String> {
    let enc = c.byte()?;
    let int = |bytes: &[u8]| {
        let mut b = [0u8; 8];
        b[..bytes.len()].copy_from_slice(bytes);
        // Sign-extend from the entry's width.
        let shift = 64 - 8 * bytes.len() as u32;
        ((i64::from_le_bytes(b) << shift) >> shift)
            .to_string()
            .into_bytes()
    };
    Ok(match enc {
        e if e >> 6 == 0 => c.take((e & 0x3f) as usize)?.to_vec(),
        e if e >> 6 == 1 => {
            let len = ((e as usize & 0x3f) << 8) | c.byte()? as usize;
            c.take(len)?.to_vec()
        }
        0x80 => {
            let len = u32::from_be_bytes(c.take(4)?.try_into().unwrap()) as usize;
            c.take(len)?.to_vec()
        }
        ZIP_INT_16B => int(c.take(2)?),
        ZIP_INT_32B => int(c.take(4)?),
        ZIP_INT_64B => int(c.take(8)?),
        ZIP_INT_24B => int(c.take(3)?),
        ZIP_INT_8B => int(c.take(1)?),
        e @ 0xf1..=0xfd => ((e & 0x0f) as i64 - 1).to_string().into_bytes(),
        _ => return Err("bad ziplist entry encoding".into()),
    })
}

/// A zipmap's keys and values, alternating. The map must hold at least one pair, and the count
/// byte of its header must match unless it says "unknown" (254 or more).
pub fn zipmap_strings(blob: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if blob.len() < 2 || blob[blob.len() - 1] != ZIPMAP_END {
        return Err("short zipmap".into());
    }
    let mut c = Cursor { blob, pos: 1 };
    let mut out = Vec::new();
    loop {
        let len = match c.byte()? {
            ZIPMAP_END => break,
            ZIPMAP_BIGLEN => u32::from_le_bytes(c.take(4)?.try_into().unwrap()) as usize,
            b => b as usize,
        };
        let key = c.take(len)?.to_vec();
        let len = match c.byte()? {
            ZIPMAP_BIGLEN => u32::from_le_bytes(c.take(4)?.try_into().unwrap()) as usize,
            ZIPMAP_END => return Err("zipmap key without value".into()),
            b => b as usize,
        };
        let free = c.byte()? as usize;
        let value = c.take(len)?.to_vec();
        c.take(free)?;
        out.push(key);
        out.push(value);
    }
    if c.pos != blob.len() {
        return Err("bytes after the zipmap end".into());
    }
    let pairs = out.len() / 2;
    if pairs == 0 || (blob[0] < ZIPMAP_BIGLEN && blob[0] as usize != pairs) {
        return Err("zipmap count mismatch".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let (mut prev, mut tail) = (0usize, 0usize);
        for e in entries {
            let start = body.len();
            tail = ZIPLIST_HEADER_BYTES + start;
            body.push(prev as u8);
            body.extend_from_slice(e);
            prev = body.len() - start;
        }
        let total = ZIPLIST_HEADER_BYTES + body.len() + 1;
        let mut out = (total as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(ZIP_END);
        out
    }

    #[test]
    fn ziplist_entries_of_every_encoding() {
        let blob = ziplist(&[
            b"\x03abc",
            &[0xf1],
            &[0xfd],
            &[ZIP_INT_8B, 0xff],
            &[ZIP_INT_16B, 0x00, 0x80],
            &[ZIP_INT_24B, 0x01, 0x00, 0x80],
            &[ZIP_INT_32B, 1, 0, 0, 0],
            &[ZIP_INT_64B, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x40, 2, b'h', b'i'],
        ]);
        let got = ziplist_strings(&blob).unwrap();
        let want: Vec<&[u8]> = vec![
            b"abc",
            b"0",
            b"12",
            b"-1",
            b"-32768",
            b"-8388607",
            b"1",
            b"-1",
            b"hi",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn truncated_or_padded_ziplists_are_refused() {
        let blob = ziplist(&[b"\x03abc"]);
        assert!(ziplist_strings(&blob[..blob.len() - 2]).is_err());
        let mut long = blob.clone();
        long[0] = 200;
        assert!(ziplist_strings(&long).is_err());
    }

    #[test]
    fn every_inconsistency_of_a_ziplist_is_refused() {
        let good = ziplist(&[b"\x01a", b"\x01b", &[0xf3]]);
        assert!(ziplist_strings(&good).is_ok());
        // A wrong previous-entry length, entry count, tail offset, or an empty ziplist whose
        // count says otherwise.
        for (at, value) in [(13, 2u8), (8, 2), (4, 11)] {
            let mut bad = good.clone();
            bad[at] = value;
            assert!(ziplist_strings(&bad).is_err(), "byte {at} = {value}");
        }
        let mut empty = ziplist(&[]);
        assert_eq!(ziplist_strings(&empty).unwrap(), Vec::<Vec<u8>>::new());
        empty[8] = 1;
        assert!(ziplist_strings(&empty).is_err());
    }

    #[test]
    fn zipmap_pairs_skip_free_bytes() {
        let blob = [2, 1, b'a', 2, 1, b'x', b'y', 0, 1, b'b', 0, 0, ZIPMAP_END];
        assert_eq!(
            zipmap_strings(&blob).unwrap(),
            vec![b"a".to_vec(), b"xy".to_vec(), b"b".to_vec(), b"".to_vec()]
        );
        assert!(zipmap_strings(&blob[..5]).is_err());
        // Empty, or a count byte that does not match.
        assert!(zipmap_strings(&[0, ZIPMAP_END]).is_err());
        let mut miscounted = blob;
        miscounted[0] = 3;
        assert!(zipmap_strings(&miscounted).is_err());
    }
}

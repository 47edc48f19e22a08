//! Listpacks, Redis's compact sequence of strings and integers: the blob inside the
//! hash, sorted set, list (quicklist node), set (7.2) and stream types of RDB files. A
//! listpack is a 4-byte total size and a 2-byte element count (65535 meaning "count them"),
//! the elements, and a 0xff terminator; each element is an encoding byte (small integers,
//! strings of three length classes, integers of 16, 24, 32 and 64 bits), its payload, and a
//! back-length that lets a reader walk backwards.

/// The back-length that follows a listpack element of `l` bytes (encoding and data): 7 bits
/// per byte, most significant first, every byte but the first flagged with the top bit, so
/// it can be read backwards from the next element.
fn backlen_bytes(l: usize) -> ([u8; 5], usize) {
    let l = l as u64;
    let n = match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    };
    let mut out = [0u8; 5];
    for (i, b) in out[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        *b = ((l >> shift) & 127) as u8 | if i > 0 { 128 } else { 0 };
    }
    (out, n)
}

/// Bytes `LpWriter::string` takes for `s`: encoding and payload, then the back-length.
pub fn element_len(s: &[u8]) -> usize {
    let body = match crate::util::parse_int(s).filter(|_| s.len() <= 20) {
        Some(v) if (0..=127).contains(&v) => 1,
        Some(v) if (-4096..=4095).contains(&v) => 2,
        Some(v) if i16::try_from(v).is_ok() => 3,
        Some(v) if (-(1 << 23)..(1 << 23)).contains(&v) => 4,
        Some(v) if i32::try_from(v).is_ok() => 5,
        Some(_) => 9,
        None if s.len() < 64 => 1 + s.len(),
        None if s.len() < 4096 => 2 + s.len(),
        None => 5 + s.len(),
    };
    body + backlen_bytes(body).1
}

/// A listpack under construction.
pub struct LpWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for LpWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl LpWriter {
    pub fn new() -> LpWriter {
        LpWriter {
            buf: vec![0; 6],
            count: 0,
        }
    }

    fn backlen(&mut self, l: usize) {
        let (bytes, n) = backlen_bytes(l);
        self.buf.extend_from_slice(&bytes[..n]);
    }

    pub fn int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = if v < 0 { (1 << 13) + v } else { v } as u64;
            self.buf.push(0xc0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
            self.buf.push(0xf1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            self.buf.push(0xf2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
            self.buf.push(0xf3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xf4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let len = self.buf.len() - start;
        self.backlen(len);
        self.count += 1;
    }

    /// A string element, stored as an integer when it is the canonical form of one.
    pub fn string(&mut self, s: &[u8]) {
        if s.len() <= 20 {
            if let Some(v) = crate::util::parse_int(s) {
                return self.int(v);
            }
        }
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xe0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let len = self.buf.len() - start;
        self.backlen(len);
        self.count += 1;
    }

    /// Elements written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The size the listpack would have if finished now.
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let n = self.count.min(65535) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

#[derive(Debug)]
pub enum Elem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

/// Walks a listpack's elements front to back, checking every bound. With `deep`, each
/// element's back-length must be the one its size calls for and, once the walk is done, the
/// header's element count must match (Redis's deep sanitization); without, those redundant
/// fields are not looked at, since nothing here reads a listpack backwards.
pub struct LpIter<'a> {
    lp: &'a [u8],
    p: usize,
    end: usize,
    deep: bool,
    seen: usize,
}

impl<'a> LpIter<'a> {
    pub fn new(lp: &'a [u8], deep: bool) -> Result<LpIter<'a>, String> {
        if lp.len() < 7
            || u32::from_le_bytes(lp[..4].try_into().unwrap()) as usize != lp.len()
            || lp[lp.len() - 1] != 0xff
        {
            return Err("invalid listpack header".into());
        }
        Ok(LpIter {
            lp,
            p: 6,
            end: lp.len() - 1,
            deep,
            seen: 0,
        })
    }

    fn take(&self, p: usize, n: usize) -> Result<&'a [u8], String> {
        match p.checked_add(n) {
            Some(e) if e <= self.end => Ok(&self.lp[p..e]),
            _ => Err("listpack element out of bounds".into()),
        }
    }

    /// The next element, `None` at the terminator.
    pub fn next_elem(&mut self) -> Result<Option<Elem<'a>>, String> {
        let p = self.p;
        if p >= self.end {
            return Ok(None);
        }
        let b = self.lp[p];
        let (elem, len) = if b & 0x80 == 0 {
            (Elem::Int(b as i64), 1)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            (Elem::Str(self.take(p + 1, n)?), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let u = (((b & 0x1f) as i64) << 8) | self.take(p + 1, 1)?[0] as i64;
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            (Elem::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = (((b & 0x0f) as usize) << 8) | self.take(p + 1, 1)?[0] as usize;
            (Elem::Str(self.take(p + 2, n)?), 2 + n)
        } else {
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes(self.take(p + 1, 4)?.try_into().unwrap()) as usize;
                    (Elem::Str(self.take(p + 5, n)?), 5 + n)
                }
                0xf1 => (
                    Elem::Int(i16::from_le_bytes(self.take(p + 1, 2)?.try_into().unwrap()) as i64),
                    3,
                ),
                0xf2 => {
                    let t = self.take(p + 1, 3)?;
                    let v = i32::from_le_bytes([0, t[0], t[1], t[2]]) >> 8;
                    (Elem::Int(v as i64), 4)
                }
                0xf3 => (
                    Elem::Int(i32::from_le_bytes(self.take(p + 1, 4)?.try_into().unwrap()) as i64),
                    5,
                ),
                0xf4 => (
                    Elem::Int(i64::from_le_bytes(self.take(p + 1, 8)?.try_into().unwrap())),
                    9,
                ),
                _ => return Err("invalid listpack encoding".into()),
            }
        };
        let (backlen, n) = backlen_bytes(len);
        let stored = self.take(p + len, n)?;
        if self.deep && stored != &backlen[..n] {
            return Err("listpack element with a wrong back-length".into());
        }
        self.p = p + len + n;
        self.seen += 1;
        Ok(Some(elem))
    }

    /// Ends a walk that has read every element: in deep mode the header's count must match.
    pub fn finish(&self) -> Result<(), String> {
        let header_count = u16::from_le_bytes([self.lp[4], self.lp[5]]);
        if self.deep && header_count != u16::MAX && header_count as usize != self.seen {
            return Err("listpack element count mismatch".into());
        }
        Ok(())
    }
}

/// Splits a whole listpack into its elements.
pub fn lp_elements(lp: &[u8], deep: bool) -> Result<Vec<Elem<'_>>, String> {
    let mut it = LpIter::new(lp, deep)?;
    let mut out = Vec::new();
    while let Some(e) = it.next_elem()? {
        out.push(e);
    }
    it.finish()?;
    Ok(out)
}

/// Every element of a listpack as bytes (integers in their decimal form), for the compact
/// hash, sorted set and list encodings.
pub fn listpack_strings(lp: &[u8], deep: bool) -> Result<Vec<Vec<u8>>, String> {
    Ok(lp_elements(lp, deep)?
        .iter()
        .map(|e| e.bytes().into_vec())
        .collect())
}

impl Elem<'_> {
    pub fn int(&self) -> Result<i64, String> {
        match self {
            Elem::Int(v) => Ok(*v),
            Elem::Str(s) => crate::util::parse_int(s).ok_or_else(|| "expected an integer".into()),
        }
    }
    pub fn bytes(&self) -> Box<[u8]> {
        match self {
            Elem::Int(v) => v.to_string().into_bytes().into(),
            Elem::Str(s) => (*s).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listpack_elements_round_trip() {
        let mut w = LpWriter::new();
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            5000,
            -40000,
            1 << 22,
            1 << 30,
            -(1 << 40),
            i64::MIN,
        ];
        for v in ints {
            w.int(v);
        }
        let long = vec![b'x'; 5000];
        w.string(b"abc");
        w.string(&[b'y'; 100]);
        w.string(&long);
        let lp = w.finish();
        let e = lp_elements(&lp, true).unwrap();
        let got: Vec<i64> = e[..ints.len()].iter().map(|x| x.int().unwrap()).collect();
        assert_eq!(got, ints);
        assert_eq!(&*e[ints.len()].bytes(), b"abc");
        assert_eq!(e[ints.len() + 1].bytes().len(), 100);
        assert_eq!(&*e[ints.len() + 2].bytes(), &long[..]);
    }

    #[test]
    fn element_len_is_what_the_writer_takes() {
        let long = "y".repeat(5000);
        let mid = "z".repeat(100);
        for s in [
            "0",
            "127",
            "128",
            "-4096",
            "40000",
            "-9000000",
            "3000000000",
            "abc",
            &mid,
            &long,
        ] {
            let mut w = LpWriter::new();
            let before = w.bytes();
            w.string(s.as_bytes());
            assert_eq!(w.bytes() - before, element_len(s.as_bytes()), "{s}");
        }
    }
}

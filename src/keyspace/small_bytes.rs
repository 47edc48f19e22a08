//! `SmallBytes`: an immutable byte string that keeps up to 22 bytes inline and boxes longer
//! ones, in 24 bytes. Keys and short string values use it so that a typical entry needs one
//! allocation, which is how the keyspace stays under Redis's ~104 bytes per small key.

const INLINE: usize = 22;

#[derive(Clone)]
pub enum SmallBytes {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl SmallBytes {
    pub fn new(b: &[u8]) -> SmallBytes {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            SmallBytes::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            SmallBytes::Heap(b.into())
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            SmallBytes::Inline { len, buf } => &buf[..*len as usize],
            SmallBytes::Heap(b) => b,
        }
    }

    /// Bytes allocated outside the value itself.
    pub fn heap_bytes(&self) -> usize {
        match self {
            SmallBytes::Inline { .. } => 0,
            SmallBytes::Heap(b) => b.len(),
        }
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallBytes {}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_in_24_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
        for len in [0, 1, 21, 22, 23, 100] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let s = SmallBytes::new(&data);
            assert_eq!(s.as_bytes(), &data[..]);
            assert_eq!(matches!(s, SmallBytes::Inline { .. }), len <= 22);
        }
    }
}

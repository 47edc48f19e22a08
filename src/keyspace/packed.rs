//! A compact sequence of byte strings in one allocation: each element is its length (a
//! LEB128 varint, one byte below 128) followed by its bytes. Small hashes keep their
//! field/value pairs this way (the `listpack` encoding), so a five-field hash is one small
//! allocation instead of a dozen. Mutations rebuild the buffer, which is fine at the sizes
//! the listpack limits allow.

/// The elements, in order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Packed(Box<[u8]>);

fn read_varint(buf: &[u8], at: &mut usize) -> usize {
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let b = buf[*at];
        *at += 1;
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn write_varint(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Bytes one element takes.
pub fn element_bytes(item: &[u8]) -> usize {
    let mut n = item.len();
    let mut header = 1;
    while n >= 0x80 {
        n >>= 7;
        header += 1;
    }
    header + item.len()
}

impl Packed {
    pub fn from_items<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Packed {
        let mut out = Vec::new();
        for item in items {
            write_varint(&mut out, item.len());
            out.extend_from_slice(item);
        }
        Packed(out.into_boxed_slice())
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            buf: &self.0,
            at: 0,
        }
    }

    /// Number of elements (a scan: the buffer holds no count).
    pub fn count(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes of the buffer.
    pub fn bytes(&self) -> usize {
        self.0.len()
    }

    /// Replaces `remove` elements starting at element `start` with `insert`.
    pub fn splice<'a>(
        &mut self,
        start: usize,
        remove: usize,
        insert: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let mut out = Vec::with_capacity(self.0.len());
        let push = |out: &mut Vec<u8>, item: &[u8]| {
            write_varint(out, item.len());
            out.extend_from_slice(item);
        };
        for item in self.iter().take(start) {
            push(&mut out, item);
        }
        for item in insert {
            push(&mut out, item);
        }
        for item in self.iter().skip(start + remove) {
            push(&mut out, item);
        }
        self.0 = out.into_boxed_slice();
    }

    /// Appends elements at the end.
    pub fn extend<'a>(&mut self, items: impl IntoIterator<Item = &'a [u8]>) {
        let mut out = Vec::with_capacity(self.0.len() + 16);
        out.extend_from_slice(&self.0);
        for item in items {
            write_varint(&mut out, item.len());
            out.extend_from_slice(item);
        }
        self.0 = out.into_boxed_slice();
    }
}

pub struct Iter<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.buf.len() {
            return None;
        }
        let len = read_varint(self.buf, &mut self.at);
        let item = &self.buf[self.at..self.at + len];
        self.at += len;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_of_every_size_round_trip() {
        let long = vec![7u8; 300];
        let huge = vec![1u8; 70_000];
        let items: Vec<&[u8]> = vec![b"", b"a", &long, &huge, b"tail"];
        let p = Packed::from_items(items.iter().copied());
        assert_eq!(p.iter().collect::<Vec<_>>(), items);
        assert_eq!(p.count(), 5);
        assert_eq!(
            p.bytes(),
            items.iter().map(|i| element_bytes(i)).sum::<usize>()
        );
        assert_eq!(element_bytes(&long), 302);
        assert_eq!(element_bytes(&huge), 70_003);
    }

    proptest! {
        #[test]
        fn splice_matches_a_vec(
            items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..20),
            start in 0usize..25,
            remove in 0usize..5,
            insert in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..3),
        ) {
            let mut model: Vec<Vec<u8>> = items.clone();
            let start = start.min(model.len());
            let remove = remove.min(model.len() - start);
            model.splice(start..start + remove, insert.iter().cloned());
            let mut p = Packed::from_items(items.iter().map(|i| &i[..]));
            p.splice(start, remove, insert.iter().map(|i| &i[..]));
            prop_assert_eq!(p.iter().map(|i| i.to_vec()).collect::<Vec<_>>(), model.clone());
            p.extend([&b"x"[..]]);
            prop_assert_eq!(p.count(), model.len() + 1);
        }
    }
}

//! Hash values (placeholder type until the hash family lands).

/// A map of field to value.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Hash {
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Hash {
    pub fn encoding_name(&self) -> &'static str {
        "listpack"
    }
    pub fn heap_bytes(&self) -> usize {
        self.fields
            .iter()
            .map(|(f, v)| f.capacity() + v.capacity() + 48)
            .sum()
    }
}

//! Sorted set values (placeholder type until the sorted set family lands).

/// Members with scores.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ZSet {
    pub members: Vec<(Vec<u8>, f64)>,
}

impl ZSet {
    pub fn encoding_name(&self) -> &'static str {
        "listpack"
    }
    pub fn heap_bytes(&self) -> usize {
        self.members.iter().map(|(m, _)| m.capacity() + 32).sum()
    }
}

//! Set values (placeholder type until the set family lands).

/// A set of byte strings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Set {
    pub members: hashbrown::HashSet<Vec<u8>>,
}

impl Set {
    pub fn encoding_name(&self) -> &'static str {
        "hashtable"
    }
    pub fn heap_bytes(&self) -> usize {
        self.members.iter().map(|m| m.capacity() + 32).sum()
    }
}

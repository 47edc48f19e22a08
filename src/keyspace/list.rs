//! List values (placeholder type until the list family lands).

/// A list of byte strings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct List {
    pub items: std::collections::VecDeque<Vec<u8>>,
}

impl List {
    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }
    pub fn heap_bytes(&self) -> usize {
        self.items.iter().map(|i| i.capacity() + 24).sum()
    }
}

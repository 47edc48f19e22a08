//! Node identities and the 16-bit node flags word shared by the bus header, gossip entries,
//! nodes.conf and CLUSTER NODES (Redis's `CLUSTER_NODE_*` bits and their text tokens).

use std::fmt;

/// Length of a node id (and of a shard id): 40 lowercase hex characters.
pub const NODE_ID_LEN: usize = 40;

/// A node id as it travels on the bus and in nodes.conf: 40 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl NodeId {
    /// Parses a textual id; Redis accepts only 40 characters from `[0-9a-f]`.
    pub fn parse(text: &[u8]) -> Option<NodeId> {
        let bytes: [u8; NODE_ID_LEN] = text.try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(NodeId(bytes))
    }

    /// Parses an id the way Redis's `verifyClusterNodeId` checks one (nodes.conf, command
    /// arguments): exactly 40 characters from `[a-z0-9]`. Real ids are hex, but Redis
    /// accepts the wider alphabet and so do we where it does.
    pub fn parse_loose(text: &[u8]) -> Option<NodeId> {
        let bytes: [u8; NODE_ID_LEN] = text.try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            .then_some(NodeId(bytes))
    }

    /// A fresh id from 20 random bytes supplied by the caller (the machine's seeded RNG).
    pub fn from_random(random: [u8; 20]) -> NodeId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut id = [0u8; NODE_ID_LEN];
        for (i, b) in random.iter().enumerate() {
            id[2 * i] = HEX[(b >> 4) as usize];
            id[2 * i + 1] = HEX[(b & 15) as usize];
        }
        NodeId(id)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // Only constructed from hex digits or raw bus bytes checked by `parse`.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The node flags word (`CLUSTER_NODE_*`).
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug, Hash)]
pub struct NodeFlags(pub u16);

impl NodeFlags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;

    /// The printed tokens in Redis's order; MEET and MIGRATE_TO are never printed.
    const TOKENS: [(u16, &'static str); 8] = [
        (Self::MYSELF, "myself"),
        (Self::MASTER, "master"),
        (Self::SLAVE, "slave"),
        (Self::PFAIL, "fail?"),
        (Self::FAIL, "fail"),
        (Self::HANDSHAKE, "handshake"),
        (Self::NOADDR, "noaddr"),
        (Self::NOFAILOVER, "nofailover"),
    ];

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    pub fn set(&mut self, bit: u16) {
        self.0 |= bit;
    }

    pub fn clear(&mut self, bit: u16) {
        self.0 &= !bit;
    }

    /// The comma-separated text of CLUSTER NODES and nodes.conf (`noflags` when none is set).
    pub fn render(self) -> String {
        let words: Vec<&str> = Self::TOKENS
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, w)| *w)
            .collect();
        if words.is_empty() {
            "noflags".to_string()
        } else {
            words.join(",")
        }
    }

    /// Parses the flags column of nodes.conf; `None` for a token Redis's loader rejects.
    pub fn parse(text: &str) -> Option<NodeFlags> {
        let mut flags = NodeFlags(0);
        for word in text.split(',') {
            if word == "noflags" {
                continue;
            }
            let (bit, _) = Self::TOKENS.iter().find(|(_, w)| *w == word)?;
            flags.set(*bit);
        }
        Some(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_forty_lowercase_hex_characters() {
        let id = NodeId::from_random([0xab; 20]);
        assert_eq!(id.as_str(), "ab".repeat(20));
        assert_eq!(NodeId::parse(id.as_bytes()), Some(id));
        assert_eq!(NodeId::parse(&[b'A'; 40]), None);
        assert_eq!(NodeId::parse(&[b'a'; 39]), None);
        assert_eq!(NodeId::parse(&[b'z'; 40]), None);
        assert!(NodeId::parse_loose(&[b'z'; 40]).is_some());
        assert_eq!(NodeId::parse_loose(&[b'Z'; 40]), None);
    }

    #[test]
    fn flags_render_in_redis_order_and_parse_back() {
        let f = NodeFlags(NodeFlags::MASTER | NodeFlags::MYSELF | NodeFlags::MEET);
        assert_eq!(f.render(), "myself,master");
        assert_eq!(NodeFlags(0).render(), "noflags");
        assert_eq!(
            NodeFlags::parse("slave,fail?,nofailover").unwrap().0,
            NodeFlags::SLAVE | NodeFlags::PFAIL | NodeFlags::NOFAILOVER
        );
        assert_eq!(NodeFlags::parse("noflags").unwrap().0, 0);
        assert!(NodeFlags::parse("master,bogus").is_none());
    }
}

//! Placeholder until the family lands.

use super::spec::CommandSpec;

pub const COMMANDS: &[CommandSpec] = &[];

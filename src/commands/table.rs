//! The one command table: every command family contributes its `CommandSpec` rows here, and
//! this builds the case-insensitive lookup (with subcommands) that dispatch, arity errors,
//! key extraction and the COMMAND family use.

use super::spec::CommandSpec;
use hashbrown::HashMap;
use std::sync::OnceLock;

/// The families, in the order COMMAND lists nothing in particular (Redis uses a dict).
const FAMILIES: &[&[CommandSpec]] = &[
    super::string::COMMANDS,
    super::keys::COMMANDS,
    super::server::COMMANDS,
    super::introspection::COMMANDS,
    super::command::COMMANDS,
    super::debug::COMMANDS,
    super::tx::COMMANDS,
    super::set::COMMANDS,
    super::list::COMMANDS,
    super::replication::COMMANDS,
    super::hash::COMMANDS,
    super::zset::COMMANDS,
    super::bitmap::COMMANDS,
    super::geo::COMMANDS,
    super::hyperloglog::COMMANDS,
    super::sort::COMMANDS,
    super::pubsub::COMMANDS,
    super::stream::COMMANDS,
    super::scripting::COMMANDS,
    super::dump::COMMANDS,
    super::migrate::COMMANDS,
    super::cluster::COMMANDS,
    super::acl::COMMANDS,
];

pub struct Command {
    pub spec: &'static CommandSpec,
    /// `get`, or `config|get` for a subcommand.
    pub fullname: String,
    /// Index into the per-command statistics.
    pub id: usize,
    pub subcommands: HashMap<Box<[u8]>, Command>,
}

impl Command {
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }
}

pub struct CommandTable {
    commands: Vec<Command>,
    /// Open-addressed index into `commands` by case-folded name hash (`EMPTY` marks a free
    /// cell; a quarter full at most): finding a command costs a short hash and one
    /// case-insensitive comparison, with no copy of the name.
    index: Box<[u16]>,
    /// Every command and subcommand by id.
    by_id: Vec<String>,
}

const EMPTY: u16 = u16::MAX;

/// FNV-1a over the name with ASCII letters folded to lower case (other bytes may collide with
/// their folded twins; the comparison sorts that out).
fn folded_hash(name: &[u8]) -> u32 {
    name.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ (b | 0x20) as u32).wrapping_mul(0x0100_0193)
    })
}

pub enum Lookup<'t> {
    Found(&'t Command),
    UnknownCommand,
    /// The first argument is a container and the second names none of its subcommands.
    UnknownSubcommand(&'t Command),
}

impl CommandTable {
    fn build() -> CommandTable {
        let mut table = CommandTable {
            commands: Vec::new(),
            index: Box::new([]),
            by_id: Vec::new(),
        };
        for spec in FAMILIES.iter().flat_map(|f| f.iter()) {
            let cmd = table.make(spec, None);
            table.commands.push(cmd);
        }
        let size = (table.commands.len() * 4).next_power_of_two();
        assert!(size < EMPTY as usize);
        table.index = vec![EMPTY; size].into_boxed_slice();
        for (i, cmd) in table.commands.iter().enumerate() {
            let name = cmd.spec.name.as_bytes();
            let mut cell = folded_hash(name) as usize & (size - 1);
            while table.index[cell] != EMPTY {
                let other = &table.commands[table.index[cell] as usize];
                assert!(
                    !other.spec.name.as_bytes().eq_ignore_ascii_case(name),
                    "command {} defined twice",
                    cmd.spec.name
                );
                cell = (cell + 1) & (size - 1);
            }
            table.index[cell] = i as u16;
        }
        table
    }

    fn make(&mut self, spec: &'static CommandSpec, parent: Option<&str>) -> Command {
        let fullname = match parent {
            Some(p) => format!("{p}|{}", spec.name),
            None => spec.name.to_string(),
        };
        let id = self.by_id.len();
        self.by_id.push(fullname.clone());
        let mut subcommands = HashMap::new();
        for sub in spec.subcommands {
            let c = self.make(sub, Some(spec.name));
            subcommands.insert(sub.name.as_bytes().into(), c);
        }
        Command {
            spec,
            fullname,
            id,
            subcommands,
        }
    }

    pub fn get() -> &'static CommandTable {
        static TABLE: OnceLock<CommandTable> = OnceLock::new();
        TABLE.get_or_init(CommandTable::build)
    }

    /// Number of command ids (commands plus subcommands).
    pub fn len_ids(&self) -> usize {
        self.by_id.len()
    }

    pub fn fullname_of(&self, id: usize) -> &str {
        &self.by_id[id]
    }

    /// Top-level commands.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        self.commands.iter()
    }

    pub fn find(&self, name: &[u8]) -> Option<&Command> {
        let mask = self.index.len() - 1;
        let mut cell = folded_hash(name) as usize & mask;
        loop {
            let i = self.index[cell];
            if i == EMPTY {
                return None;
            }
            let cmd = &self.commands[i as usize];
            if cmd.spec.name.as_bytes().eq_ignore_ascii_case(name) {
                return Some(cmd);
            }
            cell = (cell + 1) & mask;
        }
    }

    /// Redis's `lookupCommand`: the command, or its subcommand when it is a container and a
    /// second argument is present.
    pub fn lookup(&self, args: &[bytes::Bytes]) -> Lookup<'_> {
        let Some(cmd) = self.find(&args[0]) else {
            return Lookup::UnknownCommand;
        };
        if !cmd.is_container() || args.len() < 2 {
            return Lookup::Found(cmd);
        }
        let mut buf = [0u8; 64];
        match lowercase(&args[1], &mut buf).and_then(|s| cmd.subcommands.get(s)) {
            Some(sub) => Lookup::Found(sub),
            None => Lookup::UnknownSubcommand(cmd),
        }
    }

    /// Finds `name` or `container|sub` (COMMAND INFO, COMMAND DOCS).
    pub fn find_fullname(&self, name: &[u8]) -> Option<&Command> {
        match name.iter().position(|&b| b == b'|') {
            None => self.find(name),
            Some(bar) => {
                let parent = self.find(&name[..bar])?;
                let mut buf = [0u8; 64];
                parent
                    .subcommands
                    .get(lowercase(&name[bar + 1..], &mut buf)?)
            }
        }
    }
}

fn lowercase<'b>(name: &[u8], buf: &'b mut [u8; 64]) -> Option<&'b [u8]> {
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(&buf[..name.len()])
}

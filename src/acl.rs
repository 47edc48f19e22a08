//! ACL users, as Redis 7.0's acl.c defines them: a user's flags (on/off, nopass,
//! sanitize-payload), its SHA-256 password hashes, and its selectors — the root one plus any
//! `(...)` ones — each holding a command bitmap indexed by command id (with first-arg
//! exceptions), key patterns with read/write permissions and channel patterns. This module
//! parses the ACL SETUSER rule language with Redis's error texts, describes users back as the
//! rule strings ACL LIST and ACL GETUSER print (the same category best-fit Redis uses),
//! decides whether a user may run a command on its keys and channels, and keeps the registry
//! of users with the `default` user that `requirepass` drives. It is pure: no I/O, no clock,
//! no randomness; time and client descriptions come in as arguments.

use crate::commands::spec::{acl as cat, flag, key_positions_with_flags, kflag};
use crate::commands::table::{Command, CommandTable};
use crate::util::glob_match;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Key pattern permissions (`%R~`, `%W~`, `~` = both).
const KEY_READ: u8 = 1;
const KEY_WRITE: u8 = 2;
const KEY_ALL: u8 = KEY_READ | KEY_WRITE;

/// The categories in Redis's order (the order ACL CAT lists them and the best-fit scans).
pub fn categories() -> impl Iterator<Item = (u32, &'static str)> {
    cat::NAMES.iter().map(|&(bit, name)| (bit, &name[1..]))
}

fn category_by_name(name: &[u8]) -> Option<u32> {
    categories()
        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(bit, _)| bit)
}

fn table() -> &'static CommandTable {
    CommandTable::get()
}

/// Why a rule was refused: the text after `Error in ACL SETUSER modifier '...': `.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    UnknownName,
    Syntax,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSubcommand,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
        }
    }
}

/// Why a command was refused, with the argument position of the key or channel at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// Redis's ACL_DENIED_* values order the reasons when several selectors refuse.
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        }
    }
}

/// Redis rejects spaces and NUL in user names and patterns, so rules print back unambiguously.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&b| b == 0 || b == b' ' || (b'\t'..=b'\r').contains(&b))
}

/// The hex SHA-256 of a password, as users store and `#<hash>` names it.
pub fn hash_password(pass: &[u8]) -> String {
    Sha256::digest(pass)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64
        && h.iter()
            .all(|&c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// Compares equal-length hashes without stopping at the first difference.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub pattern: Vec<u8>,
    flags: u8,
}

impl KeyPattern {
    fn describe(&self) -> String {
        let prefix = match self.flags {
            KEY_READ => "%R~",
            KEY_WRITE => "%W~",
            _ => "~",
        };
        format!("{prefix}{}", String::from_utf8_lossy(&self.pattern))
    }
}

/// One set of permissions: the root selector, or one written in parentheses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    all_keys: bool,
    all_channels: bool,
    all_commands: bool,
    /// One bit per command id, plus a last bit set only by `+@all` ("future commands").
    bits: Vec<u64>,
    /// First arguments allowed for a command whose bit is clear (`+select|0`).
    first_args: BTreeMap<usize, Vec<Vec<u8>>>,
    keys: Vec<KeyPattern>,
    channels: Vec<Vec<u8>>,
}

impl Default for Selector {
    fn default() -> Self {
        Selector::new()
    }
}

impl Selector {
    /// No commands, keys or channels (`acl-pubsub-default` is `resetchannels` in 7.0).
    pub fn new() -> Selector {
        Selector {
            all_keys: false,
            all_channels: false,
            all_commands: false,
            bits: vec![0; (table().len_ids() + 1).div_ceil(64)],
            first_args: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// A new selector as `acl-pubsub-default` makes it: with every channel or none.
    pub fn with_all_channels(all: bool) -> Selector {
        Selector {
            all_channels: all,
            ..Selector::new()
        }
    }

    fn future_bit() -> usize {
        table().len_ids()
    }

    fn bit(&self, id: usize) -> bool {
        self.bits
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        let Some(w) = self.bits.get_mut(id / 64) else {
            return;
        };
        if on {
            *w |= 1 << (id % 64);
        } else {
            *w &= !(1 << (id % 64));
            self.all_commands = false;
        }
    }

    /// Allows or denies a command and, for a container, all its subcommands.
    fn change(&mut self, cmd: &Command, on: bool) {
        self.set_bit(cmd.id, on);
        self.first_args.remove(&cmd.id);
        for sub in cmd.subcommands.values() {
            self.set_bit(sub.id, on);
        }
    }

    fn change_category(&mut self, category: u32, on: bool) {
        fn walk<'t>(s: &mut Selector, cmds: impl Iterator<Item = &'t Command>, c: u32, on: bool) {
            for cmd in cmds {
                if cmd.spec.acl_categories() & c != 0 {
                    s.change(cmd, on);
                }
                walk(s, cmd.subcommands.values(), c, on);
            }
        }
        walk(self, table().iter(), category, on);
    }

    fn set_all_commands(&mut self, on: bool) {
        self.bits.fill(if on { u64::MAX } else { 0 });
        self.all_commands = on;
        self.first_args.clear();
    }

    /// One selector rule (Redis's `ACLSetSelector`).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if is("allkeys") || is("~*") {
            self.all_keys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.all_keys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.all_channels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.all_channels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.set_all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.set_all_commands(false);
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            self.add_key_pattern(op)?;
        } else if op.first() == Some(&b'&') {
            if self.all_channels {
                return Err(RuleError::ChannelsAfterAll);
            }
            if has_spaces(&op[1..]) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c[..] == op[1..]) {
                self.channels.push(op[1..].to_vec());
            }
        } else if (op.first() == Some(&b'+') || op.first() == Some(&b'-'))
            && op.get(1) == Some(&b'@')
        {
            let c = category_by_name(&op[2..]).ok_or(RuleError::UnknownName)?;
            self.change_category(c, op[0] == b'+');
        } else if op.first() == Some(&b'+') {
            self.allow_command(&op[1..])?;
        } else if op.first() == Some(&b'-') {
            let cmd = table()
                .find_fullname(&op[1..])
                .ok_or(RuleError::UnknownName)?;
            self.change(cmd, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeysAfterAll);
        }
        let (flags, offset) = if op[0] == b'%' {
            let mut flags = 0;
            let mut offset = 1;
            while offset < op.len() {
                match op[offset].to_ascii_uppercase() {
                    b'R' if flags & KEY_READ == 0 => flags |= KEY_READ,
                    b'W' if flags & KEY_WRITE == 0 => flags |= KEY_WRITE,
                    b'~' => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            // Redis 7.0 accepts a bare `%` and then cannot print it; refuse it instead.
            if flags == 0 {
                return Err(RuleError::Syntax);
            }
            (flags, offset)
        } else {
            (KEY_ALL, 1)
        };
        let pattern = &op[offset.min(op.len())..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => k.flags |= flags,
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_vec(),
                flags,
            }),
        }
        Ok(())
    }

    /// `+cmd`, `+container|sub`, or `+cmd|first-arg` for a command without subcommands.
    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&b| b == b'|') else {
            let cmd = table().find_fullname(name).ok_or(RuleError::UnknownName)?;
            self.change(cmd, true);
            return Ok(());
        };
        let cmd = table()
            .find_fullname(&name[..bar])
            .ok_or(RuleError::UnknownName)?;
        if cmd.fullname.contains('|') {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        let sub = &name[bar + 1..];
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if cmd.is_container() {
            let sub = table().find_fullname(name).ok_or(RuleError::UnknownName)?;
            self.change(sub, true);
        } else {
            let list = self.first_args.entry(cmd.id).or_default();
            if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                list.push(sub.to_vec());
            }
        }
        Ok(())
    }

    /// Whether this selector lets `cmd` run with `args` (Redis's `ACLSelectorCheckCmd`).
    pub fn check(&self, cmd: &Command, args: &[Bytes]) -> Result<(), Denied> {
        if !self.all_commands && !cmd.spec.has(flag::NO_AUTH) && !self.bit(cmd.id) {
            let idx = if cmd.fullname.contains('|') { 2 } else { 1 };
            let allowed = match (self.first_args.get(&cmd.id), args.get(idx)) {
                (Some(list), Some(arg)) => list.iter().any(|a| a.eq_ignore_ascii_case(arg)),
                _ => false,
            };
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if !self.all_keys && !cmd.spec.keys.is_empty() {
            for (pos, flags) in key_refs(cmd, args) {
                if !self.may_touch_key(&args[pos], flags) {
                    return Err(Denied::Key(pos));
                }
            }
        }
        if !self.all_channels {
            for (pos, is_pattern) in channel_args(cmd, args) {
                if !self.may_use_channel(&args[pos], is_pattern) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    /// A key with its key-spec flags: reading needs `R`, inserting/updating/deleting `W`.
    fn may_touch_key(&self, key: &[u8], spec_flags: u32) -> bool {
        if self.all_keys {
            return true;
        }
        let mut need = 0;
        if spec_flags & kflag::ACCESS != 0 {
            need |= KEY_READ;
        }
        if spec_flags & (kflag::INSERT | kflag::DELETE | kflag::UPDATE) != 0 {
            need |= KEY_WRITE;
        }
        self.keys
            .iter()
            .any(|k| k.flags & need == need && glob_match(&k.pattern, key, false))
    }

    /// A published or subscribed channel matches the patterns; a PSUBSCRIBE pattern must be
    /// one of them literally.
    fn may_use_channel(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p[..] == *channel
                } else {
                    glob_match(p, channel, false)
                }
            })
    }

    /// `~* &* +@all`-style text: keys, channels, then the command rules.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        if self.all_keys {
            out.push_str("~* ");
        } else {
            for k in &self.keys {
                out.push_str(&k.describe());
                out.push(' ');
            }
        }
        if self.all_channels {
            out.push_str("&* ");
        } else {
            out.push_str("resetchannels ");
            for c in &self.channels {
                out.push('&');
                out.push_str(&String::from_utf8_lossy(c));
                out.push(' ');
            }
        }
        out.push_str(&self.describe_commands());
        out
    }

    /// Counts the commands (and subcommands) of a category this selector allows and denies.
    fn count_category(&self, category: u32) -> (usize, usize) {
        fn walk<'t>(
            s: &Selector,
            cmds: impl Iterator<Item = &'t Command>,
            c: u32,
        ) -> (usize, usize) {
            let (mut on, mut off) = (0, 0);
            for cmd in cmds {
                if cmd.spec.acl_categories() & c != 0 {
                    if s.bit(cmd.id) {
                        on += 1;
                    } else {
                        off += 1;
                    }
                }
                let (a, b) = walk(s, cmd.subcommands.values(), c);
                on += a;
                off += b;
            }
            (on, off)
        }
        walk(self, table().iter(), category)
    }

    /// The command rules as Redis prints them: `+@all` or `-@all`, then the categories that
    /// fit best (more commands in common than different, fewest differences first), then
    /// the single commands still differing. Redis lists those in its dict's (random) order;
    /// here they come alphabetically.
    pub fn describe_commands(&self) -> String {
        let additive = !self.bit(Self::future_bit());
        let mut rules = vec![if additive { "-@all" } else { "+@all" }.to_string()];
        let mut fake = Selector::new();
        fake.set_all_commands(!additive);
        let mut temp = Selector::new();
        temp.bits.clone_from(&self.bits);
        let cats: Vec<(u32, &str)> = categories().collect();
        let mut applied = vec![false; cats.len()];
        loop {
            let mut best = None;
            let (mut min_diff, mut max_same) = (usize::MAX, 0);
            for (j, &(bit, _)) in cats.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count_category(bit);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < min_diff || (diff == min_diff && same > max_same)) {
                    best = Some(j);
                    min_diff = diff;
                    max_same = same;
                }
            }
            let Some(j) = best else { break };
            let (bit, name) = cats[j];
            fake.change_category(bit, additive);
            temp.change_category(bit, !additive);
            rules.push(format!("{}@{name}", if additive { '+' } else { '-' }));
            applied[j] = true;
        }
        self.describe_single_commands(&mut fake, &mut rules, &sorted(table().iter()));
        rules.join(" ")
    }

    fn describe_single_commands(
        &self,
        fake: &mut Selector,
        rules: &mut Vec<String>,
        cmds: &[&Command],
    ) {
        for cmd in cmds {
            let user_bit = self.bit(cmd.id);
            if user_bit != fake.bit(cmd.id) {
                rules.push(format!(
                    "{}{}",
                    if user_bit { '+' } else { '-' },
                    cmd.fullname
                ));
                fake.change(cmd, user_bit);
            }
            self.describe_single_commands(fake, rules, &sorted(cmd.subcommands.values()));
            if !user_bit {
                for arg in self.first_args.get(&cmd.id).into_iter().flatten() {
                    rules.push(format!(
                        "+{}|{}",
                        cmd.fullname,
                        String::from_utf8_lossy(arg)
                    ));
                }
            }
        }
    }

    /// GETUSER's `commands`, `keys`, `channels` fields.
    pub fn fields(&self) -> [(&'static str, String); 3] {
        let keys = if self.all_keys {
            "~*".to_string()
        } else {
            self.keys
                .iter()
                .map(KeyPattern::describe)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let channels = if self.all_channels {
            "&*".to_string()
        } else {
            self.channels
                .iter()
                .map(|c| format!("&{}", String::from_utf8_lossy(c)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        [
            ("commands", self.describe_commands()),
            ("keys", keys),
            ("channels", channels),
        ]
    }
}

fn sorted<'t>(cmds: impl Iterator<Item = &'t Command>) -> Vec<&'t Command> {
    let mut v: Vec<&Command> = cmds.collect();
    v.sort_by(|a, b| a.fullname.cmp(&b.fullname));
    v
}

/// The keys a command names with their access flags. SET and BITFIELD flag their key
/// `variable_flags`: what they do depends on their options (Redis's `setGetKeys` and
/// `bitfieldGetKeys`).
fn key_refs(cmd: &Command, args: &[Bytes]) -> Vec<(usize, u32)> {
    let variable = cmd
        .spec
        .keys
        .iter()
        .any(|k| k.flags & kflag::VARIABLE_FLAGS != 0);
    if !variable || args.len() < 2 {
        return key_positions_with_flags(cmd.spec, args);
    }
    let read_write = kflag::RW | kflag::ACCESS | kflag::UPDATE;
    let flags = match cmd.fullname.as_str() {
        "set" if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) => read_write,
        "set" => kflag::OW | kflag::UPDATE,
        "bitfield" if bitfield_reads_only(args) => kflag::RO | kflag::ACCESS,
        "bitfield" => read_write,
        _ => return key_positions_with_flags(cmd.spec, args),
    };
    vec![(1, flags)]
}

/// BITFIELD with only GET (and OVERFLOW) operations; a malformed list counts as writing.
fn bitfield_reads_only(args: &[Bytes]) -> bool {
    let mut i = 2;
    while i < args.len() {
        let rest = args.len() - i - 1;
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"get") && rest >= 2 {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
            i += 2;
        } else {
            return false;
        }
    }
    true
}

/// The channel arguments ACLs check, with whether each is a pattern (Redis's
/// `commands_with_channels`; unsubscribing is never refused).
fn channel_args(cmd: &Command, args: &[Bytes]) -> Vec<(usize, bool)> {
    match cmd.fullname.as_str() {
        "publish" | "spublish" => (1..args.len().min(2)).map(|i| (i, false)).collect(),
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// Payload sanitization flag (RESTORE); absent until a rule sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sanitize {
    Unset,
    On,
    Skip,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: Vec<u8>,
    enabled: bool,
    nopass: bool,
    sanitize: Sanitize,
    passwords: Vec<String>,
    /// The root selector first, then the `(...)` ones in the order they were added.
    selectors: Vec<Selector>,
    /// Root selector only, with every command, key and channel: nothing to check.
    all_allowed: bool,
    /// `acl-pubsub-default allchannels`: new selectors and `reset` grant every channel.
    pubsub_all: bool,
}

impl User {
    /// A new user: off, no passwords, no permissions.
    pub fn new(name: &[u8]) -> User {
        User {
            name: name.to_vec(),
            enabled: false,
            nopass: false,
            sanitize: Sanitize::Unset,
            passwords: Vec::new(),
            selectors: vec![Selector::new()],
            all_allowed: false,
            pubsub_all: false,
        }
    }

    /// A new user under `acl-pubsub-default` (`allchannels` when `pubsub_all`).
    pub fn with_pubsub_default(name: &[u8], pubsub_all: bool) -> User {
        User {
            selectors: vec![Selector::with_all_channels(pubsub_all)],
            pubsub_all,
            ..User::new(name)
        }
    }

    /// `default` as Redis creates it: `on nopass ~* &* +@all`.
    pub fn new_default() -> User {
        let mut u = User::new(b"default");
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            u.apply(op.as_bytes())
                .expect("default user rules are valid");
        }
        u
    }

    pub fn name_text(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn nopass(&self) -> bool {
        self.nopass
    }

    /// `skip-sanitize-payload`: RESTORE payloads of this user are not deep-checked when
    /// `sanitize-dump-payload` is `clients`.
    pub fn skips_sanitize(&self) -> bool {
        self.sanitize == Sanitize::Skip
    }

    /// The per-command fast path: this user may run anything.
    pub fn all_allowed(&self) -> bool {
        self.all_allowed
    }

    fn refresh(&mut self) {
        let root = &self.selectors[0];
        self.all_allowed =
            self.selectors.len() == 1 && root.all_commands && root.all_keys && root.all_channels;
    }

    /// One rule (Redis's `ACLSetUser`); selector rules apply to the root selector.
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let result = self.apply_inner(op);
        self.refresh();
        result
    }

    fn apply_inner(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |word: &str| op.eq_ignore_ascii_case(word.as_bytes());
        if op.is_empty() {
        } else if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Sanitize::Skip;
        } else if is("sanitize-payload") {
            self.sanitize = Sanitize::On;
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = self.hash_of(op)?;
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = self.hash_of(op)?;
            let at = self.passwords.iter().position(|p| *p == hash);
            self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::with_all_channels(self.pubsub_all);
            let inner = &op[1..op.len() - 1];
            for part in inner
                .split(|b| b.is_ascii_whitespace())
                .filter(|p| !p.is_empty())
            {
                s.apply(part)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for step in ["resetpass", "resetkeys", "resetchannels", "off"] {
                self.apply_inner(step.as_bytes())?;
            }
            if self.pubsub_all {
                self.apply_inner(b"allchannels")?;
            }
            self.sanitize = Sanitize::On;
            self.selectors.truncate(1);
            self.selectors[0].set_all_commands(false);
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// The hash a `>pass`, `<pass`, `#hash` or `!hash` rule names.
    fn hash_of(&self, op: &[u8]) -> Result<String, RuleError> {
        if op[0] == b'>' || op[0] == b'<' {
            return Ok(hash_password(&op[1..]));
        }
        if !valid_hash(&op[1..]) {
            return Err(RuleError::BadHash);
        }
        Ok(String::from_utf8_lossy(&op[1..]).into_owned())
    }

    /// Whether `pass` logs this user in (disabled users never log in).
    pub fn accepts(&self, pass: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hash = hash_password(pass);
        self.passwords.iter().any(|p| same_hash(p, &hash))
    }

    /// Whether this user may run `cmd` with `args`: any selector allowing it suffices; when
    /// all refuse, the most telling reason wins (Redis's `ACLCheckAllUserCommandPerm`).
    pub fn check(&self, cmd: &Command, args: &[Bytes]) -> Result<(), Denied> {
        if self.all_allowed {
            return Ok(());
        }
        let mut worst = Denied::Command;
        for s in &self.selectors {
            match s.check(cmd, args) {
                Ok(()) => return Ok(()),
                Err(d) if d.rank() > worst.rank() => worst = d,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// The flags GETUSER and the rule string list, in Redis's order.
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Sanitize::Skip => f.push("skip-sanitize-payload"),
            Sanitize::On => f.push("sanitize-payload"),
            Sanitize::Unset => {}
        }
        f
    }

    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// The `(...)` selectors.
    pub fn extra_selectors(&self) -> &[Selector] {
        &self.selectors[1..]
    }

    /// The rules after `user <name> ` in ACL LIST (Redis's `ACLDescribeUser`).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for f in self.flags() {
            out.push_str(f);
            out.push(' ');
        }
        for p in &self.passwords {
            out.push('#');
            out.push_str(p);
            out.push(' ');
        }
        out.push_str(&self.selectors[0].describe());
        for s in &self.selectors[1..] {
            out.push_str(&format!(" ({})", s.describe()));
        }
        out
    }
}

/// When changing `old` into `new` takes channels away (Redis's
/// `ACLKillPubsubClientsIfNeeded`), the channel patterns the user keeps: its Pub/Sub clients
/// subscribed to anything else must go. `None` when nothing was taken away.
pub fn revoked_channels(old: &User, new: &User) -> Option<Vec<Vec<u8>>> {
    if new.selectors.iter().any(|s| s.all_channels) {
        return None;
    }
    let upcoming: Vec<Vec<u8>> = new
        .selectors
        .iter()
        .flat_map(|s| s.channels.iter().cloned())
        .collect();
    let kept = old
        .selectors
        .iter()
        .all(|s| !s.all_channels && s.channels.iter().all(|c| upcoming.contains(c)));
    if kept {
        None
    } else {
        Some(upcoming)
    }
}

/// Whether a subscription survives against the patterns `revoked_channels` kept: channels
/// match them as globs, subscribed patterns must be one of them literally.
pub fn channel_in(patterns: &[Vec<u8>], name: &[u8], is_pattern: bool) -> bool {
    patterns.iter().any(|p| {
        if is_pattern {
            p[..] == *name
        } else {
            glob_match(p, name, false)
        }
    })
}

/// Joins arguments of a parenthesized selector given over several arguments, as Redis's
/// `ACLMergeSelectorArguments`; an unclosed one yields the index of its first argument.
pub fn merge_selector_args(args: &[&[u8]]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in args.iter().enumerate() {
        if let Some((_, acc)) = open.as_mut() {
            acc.push(b' ');
            acc.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(open.take().map(|(_, a)| a).unwrap_or_default());
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

/// The users by name (sorted, as Redis's radix tree lists them); `default` always exists.
#[derive(Clone, Debug)]
pub struct Users {
    map: BTreeMap<Vec<u8>, Arc<User>>,
    /// `acl-pubsub-default` is `allchannels`.
    pubsub_all: bool,
}

impl Users {
    pub fn new(requirepass: Option<&[u8]>) -> Users {
        let mut u = Users {
            map: BTreeMap::new(),
            pubsub_all: false,
        };
        u.map
            .insert(b"default".to_vec(), Arc::new(User::new_default()));
        u.set_default_password(requirepass);
        u
    }

    pub fn get(&self, name: &[u8]) -> Option<&Arc<User>> {
        self.map.get(name)
    }

    pub fn default_user(&self) -> &Arc<User> {
        &self.map[&b"default"[..]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.map.values()
    }

    /// Follows `acl-pubsub-default`: whether new selectors start with every channel.
    pub fn set_pubsub_default(&mut self, all_channels: bool) {
        self.pubsub_all = all_channels;
    }

    /// `requirepass`: the default user gets exactly this password, or none (nopass).
    pub fn set_default_password(&mut self, pass: Option<&[u8]>) {
        let mut u = (**self.default_user()).clone();
        let _ = u.apply(b"resetpass");
        match pass {
            Some(p) => {
                let mut op = b">".to_vec();
                op.extend_from_slice(p);
                let _ = u.apply(&op);
            }
            None => {
                let _ = u.apply(b"nopass");
            }
        }
        self.map.insert(b"default".to_vec(), Arc::new(u));
    }

    /// ACL SETUSER: every rule is tried on a copy first; the user changes only if all pass.
    /// Errors are the reply text after `ERR `.
    pub fn set_user(&mut self, name: &[u8], rules: &[&[u8]]) -> Result<(), String> {
        if has_spaces(name) {
            return Err("Usernames can't contain spaces or null characters".into());
        }
        let merged = merge_selector_args(rules).map_err(|j| {
            format!(
                "Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(rules[j])
            )
        })?;
        let mut user = match self.map.get(name) {
            Some(u) => (**u).clone(),
            None => User::with_pubsub_default(name, self.pubsub_all),
        };
        user.pubsub_all = self.pubsub_all;
        for op in &merged {
            user.apply(op).map_err(|e| {
                format!(
                    "Error in ACL SETUSER modifier '{}': {}",
                    String::from_utf8_lossy(op),
                    e.text()
                )
            })?;
        }
        self.map.insert(name.to_vec(), Arc::new(user));
        Ok(())
    }

    /// The `user <name> <rules...>` lines of the config file, at startup (Redis's
    /// `ACLLoadConfiguredUsers`): `default` is reset before its rules apply. Errors are the
    /// log line Redis writes before exiting.
    pub fn load_configured(&mut self, lines: &[Vec<String>]) -> Result<(), String> {
        for line in lines {
            let Some((name, rules)) = line.split_first() else {
                continue;
            };
            if has_spaces(name.as_bytes()) {
                return Err("Spaces not allowed in ACL usernames".into());
            }
            let raw: Vec<&[u8]> = rules.iter().map(|r| r.as_bytes()).collect();
            let merged = merge_selector_args(&raw).map_err(|j| {
                format!(
                    "Unmatched parenthesis in acl selector starting at '{}'.",
                    rules[j]
                )
            })?;
            let mut user = match self.map.get(name.as_bytes()) {
                Some(u) => {
                    let mut u = (**u).clone();
                    let _ = u.apply(b"reset");
                    u
                }
                None => User::with_pubsub_default(name.as_bytes(), self.pubsub_all),
            };
            for op in &merged {
                user.apply(op).map_err(|e| {
                    format!(
                        "Error loading ACL rule '{}' for the user named '{name}': {}",
                        String::from_utf8_lossy(op),
                        e.text()
                    )
                })?;
            }
            self.map.insert(name.as_bytes().to_vec(), Arc::new(user));
        }
        Ok(())
    }

    /// Every user as a `user` config line's arguments (CONFIG REWRITE).
    pub fn config_lines(&self) -> Vec<Vec<String>> {
        self.map
            .values()
            .map(|u| {
                let mut args = vec![u.name_text()];
                args.extend(u.describe().split(' ').map(str::to_string));
                args
            })
            .collect()
    }

    /// Removes a user; `default` cannot be removed (the caller refuses it first).
    pub fn delete(&mut self, name: &[u8]) -> bool {
        name != b"default" && self.map.remove(name).is_some()
    }

    /// The user `name` logs in as with `pass`, if any.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        self.map.get(name).filter(|u| u.accepts(pass)).cloned()
    }
}

/// Why an ACL log entry was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReason {
    Command,
    Key,
    Channel,
    Auth,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
            LogReason::Auth => "auth",
        }
    }
}

impl From<Denied> for LogReason {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Command => LogReason::Command,
            Denied::Key(_) => LogReason::Key,
            Denied::Channel(_) => LogReason::Channel,
        }
    }
}

/// One ACL LOG entry; similar denials within a minute bump `count` instead.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    /// `toplevel`, `multi`, `lua`.
    pub context: &'static str,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub ctime_ms: u64,
    pub client_info: String,
}

const LOG_GROUPING_MS: u64 = 60_000;

/// The ACL log, newest first (Redis's `addACLLogEntry`).
#[derive(Debug, Default)]
pub struct Log {
    entries: Vec<LogEntry>,
}

impl Log {
    pub fn add(&mut self, entry: LogEntry, max_len: usize) {
        let similar = |e: &LogEntry| {
            e.reason == entry.reason
                && e.context == entry.context
                && e.ctime_ms.abs_diff(entry.ctime_ms) <= LOG_GROUPING_MS
                && e.object == entry.object
                && e.username == entry.username
        };
        if let Some(i) = self.entries.iter().take(10).position(similar) {
            let mut e = self.entries.remove(i);
            e.count += 1;
            e.ctime_ms = entry.ctime_ms;
            e.client_info = entry.client_info;
            self.entries.insert(0, e);
            return;
        }
        self.entries.insert(0, entry);
        self.entries.truncate(max_len);
    }

    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

/// The server's users, shared by every connection. Each change bumps `generation`, so a
/// connection notices with one atomic load that it must look its user up again.
#[derive(Debug)]
pub struct Registry {
    users: RwLock<Users>,
    generation: AtomicU64,
    /// Redis's `authRequired`: the default user has a password or is off.
    auth_required: AtomicBool,
    pub log: Mutex<Log>,
    /// Secret seed and counter of ACL GENPASS's generator.
    secret: Vec<u8>,
    genpass_counter: AtomicU64,
}

impl Registry {
    /// `secret` seeds ACL GENPASS: unpredictable bytes from the caller.
    pub fn new(requirepass: Option<&[u8]>, secret: &[u8]) -> Registry {
        let users = Users::new(requirepass);
        let r = Registry {
            auth_required: AtomicBool::new(false),
            users: RwLock::new(users),
            generation: AtomicU64::new(1),
            log: Mutex::default(),
            secret: secret.to_vec(),
            genpass_counter: AtomicU64::new(0),
        };
        r.refresh_default();
        r
    }

    fn refresh_default(&self) {
        let users = self.users.read();
        let d = users.default_user();
        self.auth_required
            .store(!d.nopass() || !d.enabled(), Relaxed);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    /// New connections start authenticated only when this is false.
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Relaxed)
    }

    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Users> {
        self.users.read()
    }

    /// Changes the users and tells every connection to look its user up again.
    pub fn modify<T>(&self, f: impl FnOnce(&mut Users) -> T) -> T {
        let out = f(&mut self.users.write());
        self.generation.fetch_add(1, Relaxed);
        self.refresh_default();
        out
    }

    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.users.read().default_user().clone()
    }

    /// `chars` random hex digits: SHA-256 in counter mode over the secret seed, as Redis's
    /// `getRandomHexChars` hashes a seed with a counter.
    pub fn random_hex(&self, chars: usize) -> String {
        let mut out = String::with_capacity(chars + 64);
        while out.len() < chars {
            let n = self.genpass_counter.fetch_add(1, Relaxed);
            let mut h = Sha256::new();
            h.update(&self.secret);
            h.update(n.to_le_bytes());
            for b in h.finalize() {
                out.push_str(&format!("{b:02x}"));
            }
        }
        out.truncate(chars);
        out
    }
}

/// The user a connection starts with before it first looks the registry up: Redis's fresh
/// `default` (its real rules are fetched on the first command).
pub fn initial_user() -> Arc<User> {
    static DEFAULT: OnceLock<Arc<User>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| Arc::new(User::new_default()))
        .clone()
}

#[cfg(test)]
mod tests;

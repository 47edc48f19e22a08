//! `CommandSpec`: what the one command table knows about a command — name, arity, flags, ACL
//! categories, key specs (Redis 7's begin-search / find-keys model), group, handler and
//! subcommands. Dispatch, arity errors, key extraction for locking and routing, MULTI rules and
//! the COMMAND family all read it.

use super::context::ExecCtx;
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

pub type CmdResult = Result<Reply, ErrorReply>;
pub type Handler = fn(&mut ExecCtx<'_>, &[Bytes]) -> CmdResult;

/// Command flags, named as COMMAND INFO names them.
pub mod flag {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const ASKING: u32 = 1 << 11;
    pub const FAST: u32 = 1 << 12;
    pub const NO_AUTH: u32 = 1 << 13;
    pub const MAY_REPLICATE: u32 = 1 << 14;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 15;
    pub const NO_ASYNC_LOADING: u32 = 1 << 16;
    pub const NO_MULTI: u32 = 1 << 17;
    pub const MOVABLE_KEYS: u32 = 1 << 18;
    pub const ALLOW_BUSY: u32 = 1 << 19;
    /// May lazily expire keys it did not name (SCAN, RANDOMKEY): run directly, the deletions
    /// are propagated one by one, not as a transaction. Not shown by COMMAND, as in Redis.
    pub const TOUCHES_ARBITRARY_KEYS: u32 = 1 << 20;
    /// Redis adds this command's reply before it raises its keyspace events, so a client
    /// subscribed to its own events gets the reply first. Not shown by COMMAND.
    pub const REPLY_BEFORE_EVENTS: u32 = 1 << 21;

    /// (bit, name) in the order COMMAND INFO lists them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories (`@keyspace`, `@read`, ...), in Redis's order.
pub mod acl {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    pub const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "@keyspace"),
        (READ, "@read"),
        (WRITE, "@write"),
        (SET, "@set"),
        (SORTEDSET, "@sortedset"),
        (LIST, "@list"),
        (HASH, "@hash"),
        (STRING, "@string"),
        (BITMAP, "@bitmap"),
        (HYPERLOGLOG, "@hyperloglog"),
        (GEO, "@geo"),
        (STREAM, "@stream"),
        (PUBSUB, "@pubsub"),
        (ADMIN, "@admin"),
        (FAST, "@fast"),
        (SLOW, "@slow"),
        (BLOCKING, "@blocking"),
        (DANGEROUS, "@dangerous"),
        (CONNECTION, "@connection"),
        (TRANSACTION, "@transaction"),
        (SCRIPTING, "@scripting"),
    ];
}

/// Key-spec flags (`RW`, `ACCESS`, ...), in Redis's order.
pub mod kflag {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    pub const NAMES: &[(u32, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

#[derive(Clone, Copy, Debug)]
pub enum BeginSearch {
    Index(i32),
    Keyword {
        keyword: &'static str,
        start_from: i32,
    },
}

#[derive(Clone, Copy, Debug)]
pub enum FindKeys {
    /// `last_key` relative to the first key (-1 = to the end), `step`, `limit`.
    Range {
        last_key: i32,
        step: i32,
        limit: i32,
    },
    /// The number of keys is an argument: `keynum_idx` (relative to begin), `first_key`
    /// (relative to begin), `step`.
    Keynum {
        keynum_idx: i32,
        first_key: i32,
        step: i32,
    },
}

#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// Redis's remark on the spec, shown first by COMMAND INFO when present.
    pub notes: Option<&'static str>,
    pub flags: u32,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

impl KeySpec {
    pub const fn notes(mut self, notes: &'static str) -> KeySpec {
        self.notes = Some(notes);
        self
    }
    /// The common case: one key at `pos`.
    pub const fn single(pos: i32, flags: u32) -> KeySpec {
        KeySpec {
            notes: None,
            flags,
            begin: BeginSearch::Index(pos),
            find: FindKeys::Range {
                last_key: 0,
                step: 1,
                limit: 0,
            },
        }
    }
    /// Keys from `pos` to `last_key` (relative, -1 = end) every `step` arguments.
    pub const fn range(pos: i32, last_key: i32, step: i32, flags: u32) -> KeySpec {
        KeySpec {
            notes: None,
            flags,
            begin: BeginSearch::Index(pos),
            find: FindKeys::Range {
                last_key,
                step,
                limit: 0,
            },
        }
    }
}

/// How dispatch locks the keyspace for a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Touches no key: no lock.
    None,
    /// Touches the keys named by its key specs: their shards.
    Keys,
    /// Touches arbitrary keys or whole databases (KEYS, SCAN, FLUSHALL, DBSIZE): every shard.
    All,
}

#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// Lowercase name (for a subcommand, the part after the container).
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub acl: u32,
    pub keys: &'static [KeySpec],
    pub scope: Scope,
    pub group: &'static str,
    pub since: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
    /// Command tips COMMAND INFO shows (`nondeterministic_output`, `request_policy:...`).
    pub tips: &'static [&'static str],
}

impl CommandSpec {
    /// A table row; the scope follows from the key specs (none: no lock, some: their shards).
    /// `acl` holds the explicit categories only: the ones implied by flags (`@write`, `@read`,
    /// `@fast`/`@slow`, `@admin`/`@dangerous`, ...) are derived as Redis derives them.
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        acl: u32,
        keys: &'static [KeySpec],
        group: &'static str,
        since: &'static str,
        handler: Handler,
    ) -> CommandSpec {
        CommandSpec {
            name,
            arity,
            flags,
            acl,
            keys,
            scope: if keys.is_empty() {
                Scope::None
            } else {
                Scope::Keys
            },
            group,
            since,
            handler,
            subcommands: &[],
            tips: &[],
        }
    }
    pub const fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }
    pub const fn subcommands(mut self, subs: &'static [CommandSpec]) -> Self {
        self.subcommands = subs;
        self
    }
    pub const fn tips(mut self, tips: &'static [&'static str]) -> Self {
        self.tips = tips;
        self
    }

    /// Explicit plus implied ACL categories (Redis's `setImplicitACLCategories`).
    pub fn acl_categories(&self) -> u32 {
        let mut c = self.acl;
        if self.has(flag::WRITE) {
            c |= acl::WRITE;
        }
        if self.has(flag::READONLY) && c & acl::SCRIPTING == 0 {
            c |= acl::READ;
        }
        if self.has(flag::ADMIN) {
            c |= acl::ADMIN | acl::DANGEROUS;
        }
        if self.has(flag::PUBSUB) {
            c |= acl::PUBSUB;
        }
        if self.has(flag::FAST) {
            c |= acl::FAST;
        }
        if self.has(flag::BLOCKING) {
            c |= acl::BLOCKING;
        }
        if c & acl::FAST == 0 {
            c |= acl::SLOW;
        }
        c
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Whether `argc` satisfies the arity (positive: exact, negative: at least).
    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a > 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// The legacy (first, last, step) triple COMMAND INFO shows, and whether the command has
    /// movable keys, derived from the key specs the way Redis 7.0 derives them: one plain range
    /// spec is used as is; several are merged while they are step-1 ranges that follow each
    /// other; anything else makes the keys movable.
    pub fn legacy_range(&self) -> (i32, i32, i32, bool) {
        let plain = |ks: &KeySpec| match (ks.begin, ks.find) {
            (BeginSearch::Index(pos), FindKeys::Range { last_key, step, .. }) => {
                Some((pos, last_key, step))
            }
            _ => None,
        };
        let absolute = |pos: i32, last: i32| if last >= 0 { pos + last } else { last };
        if let [only] = self.keys {
            return match plain(only) {
                Some((pos, last, step)) => (
                    pos,
                    absolute(pos, last),
                    step,
                    only.flags & kflag::INCOMPLETE != 0,
                ),
                None => (0, 0, 0, true),
            };
        }
        let (mut first, mut last, mut prev_last, mut movable) = (i32::MAX, 0i32, 0i32, false);
        for ks in self.keys {
            let Some((pos, rel_last, step)) = plain(ks) else {
                movable = true;
                continue;
            };
            if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            movable |= ks.flags & kflag::INCOMPLETE != 0;
            first = first.min(pos);
            // Redis compares as unsigned, so a negative (to-the-end) last key wins.
            last = (last as u32).max(absolute(pos, rel_last) as u32) as i32;
            prev_last = last;
        }
        if first == i32::MAX {
            return (0, 0, 0, movable || !self.keys.is_empty());
        }
        (first, last, 1, movable)
    }
}

/// Positions of the key arguments in `args` according to the key specs (Redis's
/// `getKeysUsingKeySpecs`). Malformed argument lists yield the keys that can be found.
pub fn key_positions(spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    key_positions_where(spec, args, |_| true)
}

/// Visits the key positions in key-spec order without collecting them.
pub fn visit_key_positions(spec: &CommandSpec, args: &[Bytes], mut f: impl FnMut(usize)) {
    for_each_key(spec, args, |_| true, |i, _| f(i));
}

/// Key positions with the flags of the key spec that found each (ACL key checks).
pub fn key_positions_with_flags(spec: &CommandSpec, args: &[Bytes]) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    for_each_key(spec, args, |_| true, |i, flags| out.push((i, flags)));
    out
}

/// Positions of the keys a command may write (key specs flagged RW, OW or RM): the keys a
/// successful write command is taken to have modified.
pub fn written_key_positions(spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    key_positions_where(spec, args, |flags| {
        flags & (kflag::RW | kflag::OW | kflag::RM) != 0
    })
}

fn key_positions_where(
    spec: &CommandSpec,
    args: &[Bytes],
    wanted: impl Fn(u32) -> bool,
) -> Vec<usize> {
    let mut out = Vec::new();
    for_each_key(spec, args, wanted, |i, _| out.push(i));
    out
}

fn for_each_key(
    spec: &CommandSpec,
    args: &[Bytes],
    wanted: impl Fn(u32) -> bool,
    mut found: impl FnMut(usize, u32),
) {
    let argc = args.len() as i32;
    for ks in spec.keys {
        if ks.flags & kflag::NOT_KEY != 0 || !wanted(ks.flags) {
            continue;
        }
        let begin = match ks.begin {
            BeginSearch::Index(i) => i,
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => match find_keyword(args, keyword, start_from) {
                Some(i) => i,
                None => continue,
            },
        };
        if begin >= argc {
            continue;
        }
        match ks.find {
            FindKeys::Range {
                last_key,
                step,
                limit,
            } => {
                let last = if last_key >= 0 {
                    begin + last_key
                } else if limit <= 1 {
                    argc + last_key
                } else {
                    begin + (argc - begin) / limit + last_key
                };
                let mut i = begin;
                while i <= last.min(argc - 1) {
                    found(i as usize, ks.flags);
                    i += step.max(1);
                }
            }
            FindKeys::Keynum {
                keynum_idx,
                first_key,
                step,
            } => {
                let idx = begin + keynum_idx;
                let Some(n) = args
                    .get(idx as usize)
                    .and_then(|a| crate::util::parse_int(a))
                    .filter(|&n| n >= 0)
                else {
                    continue;
                };
                let mut i = begin + first_key;
                for _ in 0..n {
                    if i >= argc {
                        break;
                    }
                    found(i as usize, ks.flags);
                    i += step.max(1);
                }
            }
        }
    }
}

/// Redis's keyword search: from `start_from` forward (positive) or from `argc + start_from`
/// backward (negative), stopping before the far end; the key begins after the keyword.
fn find_keyword(args: &[Bytes], keyword: &str, start_from: i32) -> Option<i32> {
    let argc = args.len() as i32;
    let (start, end) = if start_from > 0 {
        (start_from, argc - 1)
    } else {
        (argc + start_from, 0)
    };
    let step = if start <= end { 1 } else { -1 };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            break;
        }
        if args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
            return Some(i + 1);
        }
        i += step;
    }
    None
}

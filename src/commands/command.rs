//! The COMMAND family: COMMAND, COUNT, LIST, INFO, DOCS, GETKEYS, GETKEYSANDFLAGS and HELP.
//! Everything it reports is read from the one command table, in the reply shapes of Redis
//! 7.0.15's `addReplyCommandInfo` / `addReplyCommandDocs` (sets for flags, categories, tips and
//! key specs; an empty set, not an empty array, where a command has no subcommands), so that
//! clients which parse COMMAND output (cluster-aware clients, redis-cli hints) see what Redis
//! sends. DOCS carries no reference texts: only a short summary for obvious commands, `since`,
//! `group` and the subcommands.

use super::context::ExecCtx;
use super::errors;
use super::spec::{
    acl, flag, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec,
};
use super::table::{Command, CommandTable, Lookup};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const FLAGS: u32 = LOADING | STALE;
const CONN: u32 = acl::CONNECTION;
const ANY_ORDER: &[&str] = &["nondeterministic_output_order"];

const SUBCOMMANDS: &[C] = &[
    C::new("count", 2, FLAGS, CONN, &[], "server", "2.8.13", count),
    C::new("docs", -2, FLAGS, CONN, &[], "server", "7.0.0", docs).tips(ANY_ORDER),
    C::new("getkeys", -4, FLAGS, CONN, &[], "server", "2.8.13", getkeys),
    C::new(
        "getkeysandflags",
        -4,
        FLAGS,
        CONN,
        &[],
        "server",
        "7.0.0",
        getkeysandflags,
    ),
    C::new("help", 2, FLAGS, CONN, &[], "server", "5.0.0", help),
    C::new("info", -2, FLAGS, CONN, &[], "server", "2.8.13", info).tips(ANY_ORDER),
    C::new("list", -2, FLAGS, CONN, &[], "server", "7.0.0", list).tips(ANY_ORDER),
];

pub const COMMANDS: &[C] = &[
    C::new("command", -1, FLAGS, CONN, &[], "server", "2.8.13", command)
        .subcommands(SUBCOMMANDS)
        .tips(ANY_ORDER),
];

const INVALID_COMMAND: ErrorReply = ErrorReply::fixed("ERR Invalid command specified");
const INVALID_ARG_COUNT: ErrorReply =
    ErrorReply::fixed("ERR Invalid number of arguments specified for command");
const NO_KEY_ARGUMENTS: ErrorReply = ErrorReply::fixed("ERR The command has no key arguments");
const INVALID_ARGUMENTS: ErrorReply =
    ErrorReply::fixed("ERR Invalid arguments specified for command");

// ---- the handlers ----

/// `COMMAND`: the info of every top-level command.
fn command(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(all_info(ctx.server.commands))
}

fn count(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Int(ctx.server.commands.iter().count() as i64))
}

/// `COMMAND INFO [name ...]`: all commands without names, else one entry per name (nil for
/// names that are unknown; `container|sub` names a subcommand).
fn info(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let table = ctx.server.commands;
    if args.len() == 2 {
        return Ok(all_info(table));
    }
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|name| table.find_fullname(name).map_or(Reply::Null, info_reply))
            .collect(),
    ))
}

/// `COMMAND DOCS [name ...]`: a map from full name to docs; unknown names are left out.
fn docs(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let table = ctx.server.commands;
    let entry = |cmd: &Command| (Reply::bulk_str(&cmd.fullname), docs_reply(cmd));
    if args.len() == 2 {
        return Ok(Reply::Map(sorted(table).into_iter().map(entry).collect()));
    }
    Ok(Reply::Map(
        args[2..]
            .iter()
            .filter_map(|name| table.find_fullname(name))
            .map(entry)
            .collect(),
    ))
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]`: full names of
/// commands and subcommands, each container followed by its subcommands.
fn list(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut filter = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if !args[i].eq_ignore_ascii_case(b"filterby") || more != 2 {
            return Err(errors::SYNTAX);
        }
        filter = Some(Filter::parse(&args[i + 1], &args[i + 2])?);
        i += 3;
    }
    let mut names = Vec::new();
    for cmd in sorted(ctx.server.commands) {
        for c in std::iter::once(cmd).chain(subcommands(cmd)) {
            if filter.as_ref().is_none_or(|f| f.keeps(c)) {
                names.push(Reply::bulk_str(&c.fullname));
            }
        }
    }
    Ok(Reply::Array(names))
}

fn getkeys(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    keys_reply(ctx, &args[2..], false)
}

fn getkeysandflags(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    keys_reply(ctx, &args[2..], true)
}

fn help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
    ];
    Ok(super::debug::help_reply(&args[0], LINES))
}

// ---- COMMAND INFO ----

fn all_info(table: &CommandTable) -> Reply {
    Reply::Array(sorted(table).into_iter().map(info_reply).collect())
}

/// Top-level commands by name: Redis walks a hash table (hence the tip
/// `nondeterministic_output_order`); a fixed order is as valid and easier to compare.
fn sorted(table: &CommandTable) -> Vec<&Command> {
    let mut cmds: Vec<&Command> = table.iter().collect();
    cmds.sort_by(|a, b| a.fullname.cmp(&b.fullname));
    cmds
}

/// A container's subcommands in the order its table row declares them.
fn subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.spec
        .subcommands
        .iter()
        .filter_map(|s| cmd.subcommands.get(s.name.as_bytes()))
}

/// The ten-element entry: name, arity, flags, first key, last key, step, ACL categories,
/// tips, key specs, subcommands.
pub fn info_reply(cmd: &Command) -> Reply {
    let spec = cmd.spec;
    let (first, last, step, movable) = spec.legacy_range();
    let flags = if movable {
        spec.flags | MOVABLE_KEYS
    } else {
        spec.flags
    };
    let subs = if cmd.is_container() {
        Reply::Array(subcommands(cmd).map(info_reply).collect())
    } else {
        Reply::Set(Vec::new())
    };
    Reply::Array(vec![
        Reply::bulk_str(&cmd.fullname),
        Reply::Int(spec.arity as i64),
        command_flags(flags),
        Reply::Int(first as i64),
        Reply::Int(last as i64),
        Reply::Int(step as i64),
        name_set(spec.acl_categories(), acl::NAMES),
        Reply::Set(spec.tips.iter().map(|t| Reply::bulk_str(t)).collect()),
        Reply::Set(spec.keys.iter().map(key_spec_reply).collect()),
        subs,
    ])
}

/// Redis keeps `may_replicate` out of COMMAND's flags on purpose.
fn command_flags(flags: u32) -> Reply {
    name_set(flags & !flag::MAY_REPLICATE, flag::NAMES)
}

/// The names of the bits set in `bits`, as a set of status strings, in the table's order.
fn name_set(bits: u32, names: &[(u32, &'static str)]) -> Reply {
    Reply::Set(
        names
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| Reply::simple(name))
            .collect(),
    )
}

fn pair(key: &str, value: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(key), value)
}

fn int(v: i32) -> Reply {
    Reply::Int(v as i64)
}

fn key_spec_reply(ks: &KeySpec) -> Reply {
    let (begin_type, begin_spec) = match ks.begin {
        BeginSearch::Index(pos) => ("index", vec![pair("index", int(pos))]),
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => (
            "keyword",
            vec![
                pair("keyword", Reply::bulk_str(keyword)),
                pair("startfrom", int(start_from)),
            ],
        ),
    };
    let (find_type, find_spec) = match ks.find {
        FindKeys::Range {
            last_key,
            step,
            limit,
        } => (
            "range",
            vec![
                pair("lastkey", int(last_key)),
                pair("keystep", int(step)),
                pair("limit", int(limit)),
            ],
        ),
        FindKeys::Keynum {
            keynum_idx,
            first_key,
            step,
        } => (
            "keynum",
            vec![
                pair("keynumidx", int(keynum_idx)),
                pair("firstkey", int(first_key)),
                pair("keystep", int(step)),
            ],
        ),
    };
    let typed = |t: &str, spec: Vec<(Reply, Reply)>| {
        Reply::Map(vec![
            pair("type", Reply::bulk_str(t)),
            pair("spec", Reply::Map(spec)),
        ])
    };
    let mut fields = Vec::with_capacity(4);
    if let Some(notes) = ks.notes {
        fields.push(pair("notes", Reply::bulk_str(notes)));
    }
    fields.push(pair("flags", name_set(ks.flags, kflag::NAMES)));
    fields.push(pair("begin_search", typed(begin_type, begin_spec)));
    fields.push(pair("find_keys", typed(find_type, find_spec)));
    Reply::Map(fields)
}

// ---- COMMAND DOCS ----

/// `summary` (when we have one), `since`, `group`, and `subcommands` for containers.
fn docs_reply(cmd: &Command) -> Reply {
    let spec = cmd.spec;
    let mut fields = Vec::with_capacity(4);
    if let Some(s) = summary(&cmd.fullname) {
        fields.push(pair("summary", Reply::bulk_str(s)));
    }
    fields.push(pair("since", Reply::bulk_str(spec.since)));
    fields.push(pair("group", Reply::bulk_str(spec.group)));
    if cmd.is_container() {
        let subs = subcommands(cmd)
            .map(|s| (Reply::bulk_str(&s.fullname), docs_reply(s)))
            .collect();
        fields.push(pair("subcommands", Reply::Map(subs)));
    }
    Reply::Map(fields)
}

/// One-line summaries, in our own words, for commands whose purpose fits in one obvious
/// sentence. Others get no summary field, which clients accept.
fn summary(fullname: &str) -> Option<&'static str> {
    Some(match fullname {
        "get" => "Returns the string value stored at a key.",
        "set" => "Stores a string value at a key.",
        "setnx" => "Stores a string value at a key only if the key does not exist.",
        "setex" => "Stores a string value at a key with a timeout in seconds.",
        "psetex" => "Stores a string value at a key with a timeout in milliseconds.",
        "getset" => "Stores a string value at a key and returns the previous value.",
        "getdel" => "Returns the string value at a key and deletes the key.",
        "mget" => "Returns the string values of several keys.",
        "mset" => "Stores string values at several keys.",
        "msetnx" => "Stores string values at several keys only if none of them exists.",
        "append" => "Appends a string to the value at a key.",
        "strlen" => "Returns the length of the string value at a key.",
        "incr" => "Adds one to the integer value at a key.",
        "decr" => "Subtracts one from the integer value at a key.",
        "incrby" => "Adds an integer to the integer value at a key.",
        "decrby" => "Subtracts an integer from the integer value at a key.",
        "incrbyfloat" => "Adds a floating point number to the value at a key.",
        "getrange" => "Returns a substring of the string value at a key.",
        "setrange" => "Overwrites part of the string value at a key from an offset.",
        "del" => "Deletes keys.",
        "unlink" => "Deletes keys, freeing their memory in the background.",
        "exists" => "Counts how many of the given keys exist.",
        "type" => "Returns the type of the value at a key.",
        "ttl" => "Returns the remaining time to live of a key in seconds.",
        "pttl" => "Returns the remaining time to live of a key in milliseconds.",
        "persist" => "Removes the timeout of a key.",
        "rename" => "Renames a key.",
        "renamenx" => "Renames a key only if the new name does not exist.",
        "randomkey" => "Returns a random key name.",
        "ping" => "Checks that the server answers.",
        "echo" => "Returns the given message.",
        "quit" => "Closes the connection.",
        "select" => "Changes the database of the connection.",
        "swapdb" => "Exchanges the contents of two databases.",
        "dbsize" => "Returns the number of keys in the current database.",
        "flushdb" => "Deletes every key of the current database.",
        "flushall" => "Deletes every key of every database.",
        "time" => "Returns the server's clock.",
        "lastsave" => "Returns the Unix time of the last successful save.",
        "save" => "Synchronously saves the database(s) to disk.",
        "bgsave" => "Asynchronously saves the database(s) to disk.",
        "client|id" => "Returns the id of the connection.",
        "client|getname" => "Returns the name of the connection.",
        "client|setname" => "Sets the name of the connection.",
        "command" => "Returns information about every command.",
        "command|count" => "Returns the number of commands.",
        "command|list" => "Returns the names of the commands.",
        "command|info" => "Returns information about the given commands.",
        "command|docs" => "Returns documentation about the given commands.",
        "command|getkeys" => "Returns the key arguments of a full command.",
        "command|getkeysandflags" => "Returns the key arguments of a full command and their flags.",
        "command|help" | "client|help" | "config|help" | "slowlog|help" => {
            "Describes the subcommands."
        }
        _ => return None,
    })
}

// ---- COMMAND LIST filters ----

enum Filter {
    /// No modules are loaded, so a module filter matches nothing.
    Module,
    /// ACL category bits; 0 when the name is no category (matches nothing).
    AclCat(u32),
    Pattern(Bytes),
}

impl Filter {
    fn parse(kind: &[u8], arg: &Bytes) -> Result<Filter, ErrorReply> {
        if kind.eq_ignore_ascii_case(b"module") {
            Ok(Filter::Module)
        } else if kind.eq_ignore_ascii_case(b"aclcat") {
            let bit = acl::NAMES
                .iter()
                .find(|(_, name)| name.as_bytes()[1..].eq_ignore_ascii_case(arg))
                .map_or(0, |(bit, _)| *bit);
            Ok(Filter::AclCat(bit))
        } else if kind.eq_ignore_ascii_case(b"pattern") {
            Ok(Filter::Pattern(arg.clone()))
        } else {
            Err(errors::SYNTAX)
        }
    }

    fn keeps(&self, cmd: &Command) -> bool {
        match self {
            Filter::Module => false,
            Filter::AclCat(bit) => cmd.spec.acl_categories() & bit != 0,
            Filter::Pattern(p) => crate::util::glob_match(p, cmd.fullname.as_bytes(), true),
        }
    }
}

// ---- COMMAND GETKEYS / GETKEYSANDFLAGS ----

/// Checks in Redis's order: known command, has key arguments, arity; then the keys.
fn keys_reply(ctx: &ExecCtx, argv: &[Bytes], with_flags: bool) -> CmdResult {
    let cmd = match ctx.server.commands.lookup(argv) {
        Lookup::Found(cmd) => cmd,
        Lookup::UnknownCommand | Lookup::UnknownSubcommand(_) => return Err(INVALID_COMMAND),
    };
    let spec = cmd.spec;
    if !spec.keys.iter().any(|ks| ks.flags & kflag::NOT_KEY == 0) {
        return Err(NO_KEY_ARGUMENTS);
    }
    if !spec.arity_ok(argv.len()) {
        return Err(INVALID_ARG_COUNT);
    }
    let keys = keys_and_flags(&cmd.fullname, spec, argv);
    if keys.is_empty() {
        return if spec.has(NO_MANDATORY_KEYS) {
            Ok(Reply::Array(Vec::new()))
        } else {
            Err(INVALID_ARGUMENTS)
        };
    }
    Ok(Reply::Array(
        keys.into_iter()
            .map(|(pos, flags)| {
                let key = Reply::Bulk(argv[pos].clone());
                if with_flags {
                    Reply::Array(vec![key, name_set(flags, kflag::NAMES)])
                } else {
                    key
                }
            })
            .collect(),
    ))
}

/// The keys of `argv` with the flags of the key spec that found each. Redis walks the key
/// specs and, when one of them does not fit the arguments, gives up and asks the command's
/// own key-extraction function. We have no such functions. Where a spec is incomplete or its
/// flags vary, what the fitting specs find is close to what those functions return, so it is
/// kept (with SET's and BITFIELD's flags worked out as Redis does); for the other commands the
/// functions reject the same arguments, so no keys are found.
fn keys_and_flags(fullname: &str, spec: &C, argv: &[Bytes]) -> Vec<(usize, u32)> {
    if fullname == "migrate" {
        // Its incomplete KEYS spec sends Redis to `migrateGetKeys`, which we have too.
        let flags = kflag::RW | kflag::ACCESS | kflag::DELETE;
        return super::migrate::key_positions(argv)
            .into_iter()
            .map(|p| (p, flags))
            .collect();
    }
    let loose = spec
        .keys
        .iter()
        .any(|ks| ks.flags & (kflag::INCOMPLETE | kflag::VARIABLE_FLAGS) != 0);
    let mut out = Vec::new();
    for ks in spec.keys.iter().filter(|ks| ks.flags & kflag::NOT_KEY == 0) {
        match spec_keys(ks, argv) {
            SpecKeys::Found(positions) => {
                let flags = match ks.flags & kflag::VARIABLE_FLAGS {
                    0 => ks.flags,
                    _ => variable_flags(fullname, argv).unwrap_or(ks.flags),
                };
                out.extend(positions.into_iter().map(|p| (p, flags)));
            }
            SpecKeys::NoKeyword => {}
            SpecKeys::Invalid if loose => {}
            SpecKeys::Invalid => return Vec::new(),
        }
    }
    out
}

/// The flags of a key whose access depends on the other arguments, as Redis's `setGetKeys`
/// and `bitfieldGetKeys` decide them.
fn variable_flags(fullname: &str, argv: &[Bytes]) -> Option<u32> {
    use kflag::*;
    let has = |arg: &Bytes, word: &str| arg.eq_ignore_ascii_case(word.as_bytes());
    match fullname {
        // SET reads the old value only with GET.
        "set" => Some(match argv.iter().skip(3).any(|a| has(a, "get")) {
            true => RW | ACCESS | UPDATE,
            false => OW | UPDATE,
        }),
        // BITFIELD is read-only while it has only complete GET and OVERFLOW operations.
        "bitfield" => {
            let mut i = 2;
            let mut readonly = true;
            while i < argv.len() {
                let rest = argv.len() - i - 1;
                if has(&argv[i], "get") && rest >= 2 {
                    i += 3;
                } else if has(&argv[i], "overflow") && rest >= 1 {
                    i += 2;
                } else {
                    readonly = false;
                    break;
                }
            }
            Some(if readonly {
                RO | ACCESS
            } else {
                RW | ACCESS | UPDATE
            })
        }
        _ => None,
    }
}

enum SpecKeys {
    Found(Vec<usize>),
    /// The keyword that starts the search is absent: this spec names no keys.
    NoKeyword,
    /// The arguments do not fit the spec.
    Invalid,
}

/// One key spec applied to `argv`, as Redis's `getKeysUsingKeySpecs` applies it.
fn spec_keys(ks: &KeySpec, argv: &[Bytes]) -> SpecKeys {
    let argc = argv.len() as i64;
    let first = match ks.begin {
        BeginSearch::Index(pos) => pos as i64,
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => match keyword_pos(argv, keyword, start_from) {
            Some(pos) => pos,
            None => return SpecKeys::NoKeyword,
        },
    };
    let (first, last, step) = match ks.find {
        FindKeys::Range {
            last_key,
            step,
            limit,
        } => {
            let last = if last_key >= 0 {
                first + last_key as i64
            } else if limit == 0 {
                argc + last_key as i64
            } else {
                first + (argc - first) / limit as i64 + last_key as i64
            };
            (first, last, step as i64)
        }
        FindKeys::Keynum {
            keynum_idx,
            first_key,
            step,
        } => {
            let Some(numkeys) = usize::try_from(first + keynum_idx as i64)
                .ok()
                .and_then(|i| argv.get(i))
                .and_then(|a| crate::util::parse_int(a))
                .filter(|&n| n >= 0)
            else {
                return SpecKeys::Invalid;
            };
            let first = first + first_key as i64;
            (first, first + numkeys - 1, step as i64)
        }
    };
    if last >= argc || last < first || first >= argc || first < 0 {
        return SpecKeys::Invalid;
    }
    let positions: Vec<usize> = (first..=last)
        .step_by(step.max(1) as usize)
        .map(|i| i as usize)
        .collect();
    SpecKeys::Found(positions)
}

/// The position after `keyword`, searched from `start_from` towards the end (positive) or
/// from `argc + start_from` towards the start (otherwise); neither end's boundary argument
/// is examined, as in Redis.
fn keyword_pos(argv: &[Bytes], keyword: &str, start_from: i32) -> Option<i64> {
    let argc = argv.len() as i64;
    let (start, end) = if start_from > 0 {
        (start_from as i64, argc - 1)
    } else {
        (argc + start_from as i64, 1)
    };
    let dir = if start <= end { 1 } else { -1 };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            break;
        }
        if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
            return Some(i + 1);
        }
        i += dir;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::server::state::ServerState;

    fn run_on(state: &ServerState, args: &[&str]) -> CmdResult {
        let argv: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let Lookup::Found(cmd) = state.commands.lookup(&argv) else {
            panic!("{args:?} is not in the table");
        };
        assert!(
            cmd.spec.arity_ok(argv.len()),
            "{args:?} fails the arity check"
        );
        let mut client = ClientState::new(
            1,
            "127.0.0.1:5000".into(),
            "127.0.0.1:6379".into(),
            -1,
            0,
            true,
        );
        let mut ctx = ExecCtx::new(1_000_000, None, &mut client, state);
        (cmd.spec.handler)(&mut ctx, &argv)
    }

    fn run(args: &[&str]) -> CmdResult {
        run_on(&ServerState::for_tests(), args)
    }

    fn bulk(s: &str) -> Reply {
        Reply::bulk_str(s)
    }

    fn statuses(names: &[&'static str]) -> Vec<Reply> {
        names.iter().map(|n| Reply::simple(n)).collect()
    }

    fn items(r: Reply) -> Vec<Reply> {
        match r {
            Reply::Array(v) | Reply::Set(v) => v,
            other => panic!("not an aggregate: {other:?}"),
        }
    }

    #[test]
    fn info_of_get_matches_redis() {
        let reply = run(&["COMMAND", "INFO", "get"]).unwrap();
        let get = items(reply).remove(0);
        let key_spec = Reply::Map(vec![
            (bulk("flags"), Reply::Set(statuses(&["RO", "access"]))),
            (
                bulk("begin_search"),
                Reply::Map(vec![
                    (bulk("type"), bulk("index")),
                    (
                        bulk("spec"),
                        Reply::Map(vec![(bulk("index"), Reply::Int(1))]),
                    ),
                ]),
            ),
            (
                bulk("find_keys"),
                Reply::Map(vec![
                    (bulk("type"), bulk("range")),
                    (
                        bulk("spec"),
                        Reply::Map(vec![
                            (bulk("lastkey"), Reply::Int(0)),
                            (bulk("keystep"), Reply::Int(1)),
                            (bulk("limit"), Reply::Int(0)),
                        ]),
                    ),
                ]),
            ),
        ]);
        assert_eq!(
            get,
            Reply::Array(vec![
                bulk("get"),
                Reply::Int(2),
                Reply::Set(statuses(&["readonly", "fast"])),
                Reply::Int(1),
                Reply::Int(1),
                Reply::Int(1),
                Reply::Set(statuses(&["@read", "@string", "@fast"])),
                Reply::Set(vec![]),
                Reply::Set(vec![key_spec]),
                Reply::Set(vec![]),
            ])
        );
    }

    #[test]
    fn info_answers_nil_for_unknown_names_and_finds_subcommands() {
        let reply = run(&[
            "COMMAND",
            "INFO",
            "nope",
            "CONFIG|GET",
            "get|x",
            "config|get|x",
        ])
        .unwrap();
        let v = items(reply);
        assert_eq!(v.len(), 4);
        assert_eq!(v[0], Reply::Null);
        assert_eq!(items(v[1].clone())[0], bulk("config|get"));
        assert_eq!(v[2], Reply::Null);
        assert_eq!(v[3], Reply::Null);
    }

    #[test]
    fn command_describes_itself_with_its_subcommands() {
        let reply = run(&["COMMAND", "INFO", "command"]).unwrap();
        let me = items(items(reply).remove(0));
        assert_eq!(me[0], bulk("command"));
        assert_eq!(me[1], Reply::Int(-1));
        assert_eq!(me[2], Reply::Set(statuses(&["loading", "stale"])));
        assert_eq!(me[6], Reply::Set(statuses(&["@slow", "@connection"])));
        assert_eq!(
            me[7],
            Reply::Set(vec![bulk("nondeterministic_output_order")])
        );
        let subs = items(me[9].clone());
        let names: Vec<Reply> = subs.iter().map(|s| items(s.clone())[0].clone()).collect();
        let expected = [
            "command|count",
            "command|docs",
            "command|getkeys",
            "command|getkeysandflags",
            "command|help",
            "command|info",
            "command|list",
        ];
        assert_eq!(names, expected.iter().map(|n| bulk(n)).collect::<Vec<_>>());
        // A leaf's subcommand field is an empty set, as Redis sends it.
        assert_eq!(items(subs[0].clone())[9], Reply::Set(vec![]));
        assert_eq!(items(subs[2].clone())[1], Reply::Int(-4));
    }

    #[test]
    fn command_and_info_without_names_list_every_command() {
        let state = ServerState::for_tests();
        let n = state.commands.iter().count();
        assert_eq!(
            run_on(&state, &["COMMAND", "COUNT"]).unwrap(),
            Reply::Int(n as i64)
        );
        assert_eq!(items(run_on(&state, &["COMMAND"]).unwrap()).len(), n);
        assert_eq!(
            run_on(&state, &["COMMAND"]),
            run_on(&state, &["command", "info"])
        );
    }

    #[test]
    fn may_replicate_is_hidden_and_movable_keys_shown() {
        const KEYNUM: &[KeySpec] = &[KeySpec {
            notes: None,
            flags: kflag::RO,
            begin: BeginSearch::Index(2),
            find: FindKeys::Keynum {
                keynum_idx: 0,
                first_key: 1,
                step: 1,
            },
        }];
        fn nop(_: &mut ExecCtx, _: &[Bytes]) -> CmdResult {
            Ok(Reply::OK)
        }
        static SPEC: C = C::new(
            "x",
            -3,
            WRITE | MAY_REPLICATE,
            0,
            KEYNUM,
            "generic",
            "1.0.0",
            nop,
        );
        let cmd = Command {
            spec: &SPEC,
            fullname: "x".into(),
            id: 0,
            subcommands: Default::default(),
        };
        let info = items(info_reply(&cmd));
        assert_eq!(info[2], Reply::Set(statuses(&["write", "movablekeys"])));
        assert_eq!(&info[3..6], &[Reply::Int(0), Reply::Int(0), Reply::Int(0)]);
    }

    #[test]
    fn list_puts_subcommands_after_their_container() {
        let names = items(run(&["COMMAND", "LIST"]).unwrap());
        let at = |n: &str| names.iter().position(|r| *r == bulk(n)).unwrap();
        assert!(at("command") < at("command|count"));
        assert!(at("get") < names.len());
        assert_eq!(
            names.len(),
            run(&["COMMAND", "COUNT"]).map(|_| names.len()).unwrap()
        );
    }

    #[test]
    fn list_filters_by_pattern_acl_category_and_module() {
        let by = |kind: &str, arg: &str| {
            items(run(&["COMMAND", "LIST", "FILTERBY", kind, arg]).unwrap())
        };
        let mut cmds = by("pattern", "COMMAND|g*");
        cmds.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(
            cmds,
            vec![bulk("command|getkeys"), bulk("command|getkeysandflags")]
        );
        let string = by("aclcat", "STRING");
        assert!(string.contains(&bulk("get")) && !string.contains(&bulk("ping")));
        assert!(by("aclcat", "@string").is_empty());
        assert!(by("aclcat", "nosuch").is_empty());
        assert!(by("module", "any").is_empty());
    }

    #[test]
    fn list_rejects_malformed_filters() {
        for args in [
            &["COMMAND", "LIST", "x"][..],
            &["COMMAND", "LIST", "FILTERBY", "x", "y"],
            &["COMMAND", "LIST", "FILTERBY", "pattern"],
            &["COMMAND", "LIST", "FILTERBY", "pattern", "a", "b"],
        ] {
            assert_eq!(run(args), Err(errors::SYNTAX), "{args:?}");
        }
    }

    #[test]
    fn getkeys_returns_the_key_arguments() {
        assert_eq!(
            run(&["COMMAND", "GETKEYS", "get", "k"]),
            Ok(Reply::Array(vec![bulk("k")]))
        );
        assert_eq!(
            run(&["COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"]),
            Ok(Reply::Array(vec![bulk("a"), bulk("b")]))
        );
        assert_eq!(
            run(&["command", "getkeys", "MGET", "a", "b", "c"]),
            Ok(Reply::Array(vec![bulk("a"), bulk("b"), bulk("c")]))
        );
    }

    #[test]
    fn getkeys_errors_in_redis_order() {
        let err = |args: &[&str]| run(args).unwrap_err().text().to_string();
        assert_eq!(
            err(&["COMMAND", "GETKEYS", "nope", "x"]),
            "ERR Invalid command specified"
        );
        assert_eq!(
            err(&["COMMAND", "GETKEYS", "config", "nope"]),
            "ERR Invalid command specified"
        );
        assert_eq!(
            err(&["COMMAND", "GETKEYS", "ping", "x"]),
            "ERR The command has no key arguments"
        );
        assert_eq!(
            err(&["COMMAND", "GETKEYS", "get", "a", "b"]),
            "ERR Invalid number of arguments specified for command"
        );
        assert_eq!(
            err(&["COMMAND", "GETKEYS", "set", "a"]),
            "ERR Invalid number of arguments specified for command"
        );
    }

    #[test]
    fn getkeysandflags_reports_set_flags_by_its_get_option() {
        let flags = |args: &[&str]| items(items(run(args).unwrap()).remove(0)).remove(1);
        assert_eq!(
            flags(&["COMMAND", "GETKEYSANDFLAGS", "set", "a", "b"]),
            Reply::Set(statuses(&["OW", "update"]))
        );
        assert_eq!(
            flags(&["COMMAND", "GETKEYSANDFLAGS", "set", "a", "b", "GET"]),
            Reply::Set(statuses(&["RW", "access", "update"]))
        );
        assert_eq!(
            items(run(&["COMMAND", "GETKEYSANDFLAGS", "get", "k"]).unwrap()),
            vec![Reply::Array(vec![
                bulk("k"),
                Reply::Set(statuses(&["RO", "access"]))
            ])]
        );
    }

    fn argv(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn nop(_: &mut ExecCtx, _: &[Bytes]) -> CmdResult {
        Ok(Reply::OK)
    }

    #[test]
    fn keynum_specs_reject_counts_beyond_the_arguments() {
        const ZSTORE: &[KeySpec] = &[
            KeySpec::single(1, kflag::OW),
            KeySpec {
                notes: None,
                flags: kflag::RO,
                begin: BeginSearch::Index(2),
                find: FindKeys::Keynum {
                    keynum_idx: 0,
                    first_key: 1,
                    step: 1,
                },
            },
        ];
        let spec = C::new(
            "zunionstore",
            -4,
            WRITE,
            0,
            ZSTORE,
            "sorted-set",
            "2.0.0",
            nop,
        );
        let pos = |args: &[&str]| -> Vec<usize> {
            keys_and_flags("zunionstore", &spec, &argv(args))
                .into_iter()
                .map(|k| k.0)
                .collect()
        };
        assert_eq!(pos(&["zunionstore", "d", "2", "a", "b"]), vec![1, 3, 4]);
        assert!(pos(&["zunionstore", "d", "5", "a"]).is_empty());
        assert!(pos(&["zunionstore", "d", "x", "a"]).is_empty());
    }

    #[test]
    fn keyword_specs_start_after_the_keyword() {
        const XREAD: &[KeySpec] = &[KeySpec {
            notes: None,
            flags: kflag::RO | kflag::ACCESS,
            begin: BeginSearch::Keyword {
                keyword: "STREAMS",
                start_from: 1,
            },
            find: FindKeys::Range {
                last_key: -1,
                step: 1,
                limit: 2,
            },
        }];
        let spec = C::new("xread", -4, READONLY, 0, XREAD, "stream", "5.0.0", nop);
        let pos = |args: &[&str]| -> Vec<usize> {
            keys_and_flags("xread", &spec, &argv(args))
                .into_iter()
                .map(|k| k.0)
                .collect()
        };
        assert_eq!(pos(&["xread", "streams", "a", "b"]), vec![2]);
        assert_eq!(
            pos(&["xread", "count", "1", "STREAMS", "a", "b", "0", "0"]),
            vec![4, 5]
        );
        assert!(pos(&["xread", "count", "1", "b"]).is_empty());
    }

    #[test]
    fn bitfield_flags_depend_on_its_operations() {
        let argv = argv(&["bitfield", "k", "GET", "u8", "0", "OVERFLOW", "SAT"]);
        assert_eq!(
            variable_flags("bitfield", &argv),
            Some(kflag::RO | kflag::ACCESS)
        );
        let argv = super::tests::argv(&["bitfield", "k", "GET", "u8", "0", "SET", "u8", "0", "1"]);
        assert_eq!(
            variable_flags("bitfield", &argv),
            Some(kflag::RW | kflag::ACCESS | kflag::UPDATE)
        );
    }

    #[test]
    fn docs_carry_since_group_and_subcommands() {
        let reply = run(&["COMMAND", "DOCS", "get", "nope", "command"]).unwrap();
        let Reply::Map(entries) = reply else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, bulk("get"));
        let Reply::Map(get) = &entries[0].1 else {
            panic!()
        };
        assert_eq!(get[0].0, bulk("summary"));
        assert_eq!(get[1], (bulk("since"), bulk("1.0.0")));
        assert_eq!(get[2], (bulk("group"), bulk("string")));
        let Reply::Map(me) = &entries[1].1 else {
            panic!()
        };
        let (key, Reply::Map(subs)) = me.last().unwrap() else {
            panic!()
        };
        assert_eq!(*key, bulk("subcommands"));
        assert_eq!(subs.len(), 7);
        assert_eq!(subs[0].0, bulk("command|count"));
        let Reply::Map(all) = run(&["COMMAND", "DOCS"]).unwrap() else {
            panic!()
        };
        assert_eq!(all.len(), ServerState::for_tests().commands.iter().count());
    }

    #[test]
    fn help_has_redis_header_and_footer() {
        let lines = items(run(&["command", "help"]).unwrap());
        assert_eq!(lines.len(), 21);
        assert_eq!(
            lines[0],
            Reply::simple("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(lines[1], Reply::simple("(no subcommand)"));
        assert_eq!(lines[19], Reply::simple("HELP"));
        assert_eq!(lines[20], Reply::simple("    Prints this help."));
    }
}

//! Lua scripting as Redis 7.0 has it: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and the SCRIPT
//! container (LOAD, EXISTS, FLUSH, KILL, DEBUG, HELP).
//!
//! The script cache (SHA1 of the body -> body and shebang flags) is shared by every connection.
//! Each worker thread keeps its own Lua 5.1 state (scripts cannot keep state between runs: the
//! globals are read-only), compiling a cached body the first time that thread runs it; SCRIPT
//! FLUSH empties the cache and makes every state start over. A script runs with every shard
//! held (its table row has scope All), so it is atomic like in Redis; each `redis.call` goes
//! through the same lookup, checks and `dispatch::call` as a client command. EVAL itself is
//! never propagated: the writes the script made are, wrapped in MULTI/EXEC by `execute`.
//! `engine.rs` owns the Lua state, `convert.rs` the reply <-> Lua value rules, `bit.rs`,
//! `cjson.rs` and `cmsgpack.rs` the libraries of those names.

mod bit;
mod cjson;
mod cmsgpack;
pub mod convert;
mod engine;
pub mod functions;

use super::context::ExecCtx;
use super::errors;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec, Scope,
};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

const SCRIPTING: u32 = acl::SCRIPTING;

const EVAL_KEYS: &[KeySpec] = &[KeySpec {
    notes: Some("We cannot tell how the keys will be used so we assume the worst, RW and UPDATE"),
    flags: kflag::RW | kflag::ACCESS | kflag::UPDATE,
    begin: BeginSearch::Index(2),
    find: FindKeys::Keynum {
        keynum_idx: 0,
        first_key: 1,
        step: 1,
    },
}];
const EVALSHA_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    ..EVAL_KEYS[0]
}];
const EVAL_RO_KEYS: &[KeySpec] = &[KeySpec {
    notes: Some("We cannot tell how the keys will be used so we assume the worst, RO and ACCESS"),
    flags: kflag::RO | kflag::ACCESS,
    ..EVAL_KEYS[0]
}];
const EVALSHA_RO_KEYS: &[KeySpec] = &[KeySpec {
    notes: None,
    ..EVAL_RO_KEYS[0]
}];

const ALL_SHARDS_AND: &[&str] = &[
    "request_policy:all_shards",
    "response_policy:agg_logical_and",
];
const ALL_NODES: &[&str] = &["request_policy:all_nodes", "response_policy:all_succeeded"];
const ONE_SUCCEEDED: &[&str] = &["request_policy:all_shards", "response_policy:one_succeeded"];

const SCRIPT_SUBCOMMANDS: &[C] = &[
    C::new(
        "debug",
        3,
        NOSCRIPT,
        SCRIPTING,
        &[],
        "scripting",
        "3.2.0",
        script_debug,
    ),
    C::new(
        "exists",
        -3,
        NOSCRIPT,
        SCRIPTING,
        &[],
        "scripting",
        "2.6.0",
        script_exists,
    )
    .tips(ALL_SHARDS_AND),
    C::new(
        "flush",
        -2,
        NOSCRIPT,
        SCRIPTING,
        &[],
        "scripting",
        "2.6.0",
        script_flush,
    )
    .tips(ALL_NODES),
    C::new(
        "help",
        2,
        LOADING | STALE,
        SCRIPTING,
        &[],
        "scripting",
        "5.0.0",
        script_help,
    ),
    C::new(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        SCRIPTING,
        &[],
        "scripting",
        "2.6.0",
        script_kill,
    )
    .tips(ONE_SUCCEEDED),
    C::new(
        "load",
        3,
        NOSCRIPT | STALE,
        SCRIPTING,
        &[],
        "scripting",
        "2.6.0",
        script_load,
    )
    .tips(ALL_NODES),
];

const FCALL_KEYS: &[KeySpec] = &[EVAL_KEYS[0]];
const FCALL_RO_KEYS: &[KeySpec] = &[EVAL_RO_KEYS[0]];

const FUNCTION_SUBCOMMANDS: &[C] = &[
    C::new(
        "delete",
        3,
        NOSCRIPT | WRITE,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_delete,
    )
    .tips(ALL_SHARDS_SUCCEEDED)
    .scope(Scope::All),
    C::new(
        "dump",
        2,
        NOSCRIPT,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_dump,
    ),
    C::new(
        "flush",
        -2,
        NOSCRIPT | WRITE,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_flush,
    )
    .tips(ALL_SHARDS_SUCCEEDED)
    .scope(Scope::All),
    C::new(
        "help",
        2,
        LOADING | STALE,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_help,
    ),
    C::new(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_kill,
    )
    .tips(ONE_SUCCEEDED),
    C::new(
        "list",
        -2,
        NOSCRIPT,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_list,
    )
    .tips(&["nondeterministic_output_order"]),
    C::new(
        "load",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_load,
    )
    .tips(ALL_SHARDS_SUCCEEDED)
    .scope(Scope::All),
    C::new(
        "restore",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_restore,
    )
    .tips(ALL_SHARDS_SUCCEEDED)
    .scope(Scope::All),
    C::new(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        SCRIPTING,
        &[],
        "scripting",
        "7.0.0",
        functions::function_stats,
    )
    .tips(&[
        "nondeterministic_output",
        "request_policy:all_shards",
        "response_policy:special",
    ]),
];

const ALL_SHARDS_SUCCEEDED: &[&str] =
    &["request_policy:all_shards", "response_policy:all_succeeded"];

const EVAL_FLAGS: u32 = NOSCRIPT | SKIP_MONITOR | MAY_REPLICATE | NO_MANDATORY_KEYS | STALE;
const EVAL_RO_FLAGS: u32 = NOSCRIPT | SKIP_MONITOR | NO_MANDATORY_KEYS | STALE | READONLY;

pub const COMMANDS: &[C] = &[
    C::new(
        "eval",
        -3,
        EVAL_FLAGS,
        SCRIPTING,
        EVAL_KEYS,
        "scripting",
        "2.6.0",
        eval,
    )
    .scope(Scope::All),
    C::new(
        "evalsha",
        -3,
        EVAL_FLAGS,
        SCRIPTING,
        EVALSHA_KEYS,
        "scripting",
        "2.6.0",
        evalsha,
    )
    .scope(Scope::All),
    C::new(
        "eval_ro",
        -3,
        EVAL_RO_FLAGS,
        SCRIPTING,
        EVAL_RO_KEYS,
        "scripting",
        "7.0.0",
        eval_ro,
    )
    .scope(Scope::All),
    C::new(
        "evalsha_ro",
        -3,
        EVAL_RO_FLAGS,
        SCRIPTING,
        EVALSHA_RO_KEYS,
        "scripting",
        "7.0.0",
        evalsha_ro,
    )
    .scope(Scope::All),
    C::new(
        "fcall",
        -3,
        EVAL_FLAGS,
        SCRIPTING,
        FCALL_KEYS,
        "scripting",
        "7.0.0",
        functions::fcall,
    )
    .scope(Scope::All),
    C::new(
        "fcall_ro",
        -3,
        EVAL_RO_FLAGS,
        SCRIPTING,
        FCALL_RO_KEYS,
        "scripting",
        "7.0.0",
        functions::fcall_ro,
    )
    .scope(Scope::All),
    C::new(
        "function",
        -2,
        0,
        0,
        &[],
        "scripting",
        "7.0.0",
        functions::function_container,
    )
    .subcommands(FUNCTION_SUBCOMMANDS),
    C::new(
        "script",
        -2,
        0,
        0,
        &[],
        "scripting",
        "2.6.0",
        script_container,
    )
    .subcommands(SCRIPT_SUBCOMMANDS),
];

pub use engine::{check_busy, script_running};

/// Whether the command runs a script (and so may run for long): EVAL, FCALL and their variants.
pub fn may_run_long(args: &[Bytes]) -> bool {
    args.first().is_some_and(|name| {
        [
            "eval",
            "evalsha",
            "eval_ro",
            "evalsha_ro",
            "fcall",
            "fcall_ro",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
    })
}

const OOM_ERR: ErrorReply =
    ErrorReply::fixed("OOM command not allowed when used memory > 'maxmemory'.");

pub const NOSCRIPT_ERR: ErrorReply =
    ErrorReply::fixed("NOSCRIPT No matching script. Please use EVAL.");

// ---- the script cache ----

/// Flags a `#!lua flags=...` shebang declares. A script without a shebang runs in the
/// compatibility mode of Redis 6 (`compat`), where none of them apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    pub compat: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot: bool,
}

#[derive(Debug)]
pub struct Script {
    pub body: Bytes,
    pub flags: ScriptFlags,
    /// Length of the shebang line, which is left out of the compiled code (its line feed is
    /// kept so line numbers stay those of the body).
    pub shebang_len: usize,
}

/// Every script loaded by EVAL or SCRIPT LOAD, by lowercase SHA1 hex.
pub struct ScriptCache {
    scripts: Mutex<HashMap<String, Arc<Script>>>,
    /// Bumped by SCRIPT FLUSH: a Lua state built for an older generation is thrown away.
    generation: AtomicU64,
}

impl ScriptCache {
    pub fn get() -> &'static ScriptCache {
        static CACHE: OnceLock<ScriptCache> = OnceLock::new();
        CACHE.get_or_init(|| ScriptCache {
            scripts: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        })
    }

    pub fn lookup(&self, sha: &str) -> Option<Arc<Script>> {
        self.scripts.lock().get(sha).cloned()
    }

    pub fn insert(&self, sha: String, script: Script) -> Arc<Script> {
        self.scripts
            .lock()
            .entry(sha)
            .or_insert_with(|| Arc::new(script))
            .clone()
    }

    pub fn len(&self) -> usize {
        self.scripts.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of script bodies held (INFO's `used_memory_scripts_eval` in spirit).
    pub fn body_bytes(&self) -> usize {
        self.scripts
            .lock()
            .values()
            .map(|s| s.body.len() + 40)
            .sum()
    }

    pub fn flush(&self) {
        self.scripts.lock().clear();
        self.generation.fetch_add(1, Relaxed);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }
}

pub fn sha1_hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

/// Redis's `evalExtractShebangFlags`: the flags and the length of the shebang line.
pub fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    let mut flags = ScriptFlags {
        compat: true,
        ..Default::default()
    };
    if !body.starts_with(b"#!") {
        return Ok((flags, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match crate::resp::decode::split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    flags.compat = false;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&b| b == b',') {
            match name {
                b"no-writes" => flags.no_writes = true,
                b"allow-oom" => flags.allow_oom = true,
                b"allow-stale" => flags.allow_stale = true,
                b"no-cluster" => flags.no_cluster = true,
                b"allow-cross-slot-keys" => flags.allow_cross_slot = true,
                other => {
                    return Err(format!(
                        "Unexpected flag in script shebang: {}",
                        String::from_utf8_lossy(other)
                    ))
                }
            }
        }
    }
    Ok((flags, end))
}

/// Redis's `luaCreateFunction`: the cached script for `body`, compiling and caching it first
/// when it is new. Errors are the replies EVAL and SCRIPT LOAD give.
fn create_script(body: &Bytes) -> Result<(String, Arc<Script>), ErrorReply> {
    let sha = sha1_hex(body);
    let cache = ScriptCache::get();
    if let Some(script) = cache.lookup(&sha) {
        return Ok((sha, script));
    }
    let (flags, shebang_len) =
        parse_shebang(body).map_err(|e| ErrorReply::owned(format!("ERR {e}")))?;
    let script = Script {
        body: body.clone(),
        flags,
        shebang_len,
    };
    engine::compile(&sha, &script).map_err(|msg| {
        ErrorReply::owned(format!("ERR Error compiling script (new function): {msg}"))
    })?;
    Ok((sha.clone(), cache.insert(sha, script)))
}

// ---- EVAL and friends ----

fn eval(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// Feeds MONITOR clients: EVAL is flagged skip-monitor so that it can be shown before the
/// commands it runs, as Redis's `evalCommand` does; those appear from the `lua` client.
pub fn feed_monitors(ctx: &ExecCtx, addr: &str, args: &[Bytes]) {
    if ctx.server.monitor_count.load(Relaxed) == 0 {
        return;
    }
    let line = crate::server::monitor::format_line(ctx.now_us, ctx.client.db, addr, args);
    crate::server::monitor::feed(ctx.server, line);
}

fn eval_generic(ctx: &mut ExecCtx, args: &[Bytes], by_sha: bool, ro: bool) -> CmdResult {
    let shared: &ExecCtx = ctx;
    feed_monitors(shared, &shared.client.addr, args);
    if by_sha && args[1].len() != 40 {
        return Err(NOSCRIPT_ERR);
    }
    let numkeys = ctx.int_arg(&args[2])?;
    if numkeys > (args.len() - 3) as i64 {
        return Err(ErrorReply::fixed(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(ErrorReply::fixed("ERR Number of keys can't be negative"));
    }
    let (sha, script) = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        match ScriptCache::get().lookup(&sha) {
            Some(s) => (sha, s),
            None => return Err(NOSCRIPT_ERR),
        }
    } else {
        create_script(&args[1])?
    };
    let flags = script.flags;
    let config = ctx.server.config();
    // Redis's `pre_command_oom_state`: memory over the limit when the script starts.
    let oom = config.maxmemory > 0 && crate::server::info::used_memory() as u64 > config.maxmemory;
    if !flags.compat {
        if flags.no_cluster && config.cluster_enabled {
            return Err(ErrorReply::fixed(
                "ERR Can not run script on cluster, 'no-cluster' flag is set.",
            ));
        }
        if !flags.no_writes && ro {
            return Err(ErrorReply::fixed(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
        if oom && !(flags.allow_oom || flags.no_writes) {
            // The declared flags make EVAL itself a denyoom command.
            return Err(OOM_ERR);
        }
    }
    let run = engine::Run {
        name: &sha,
        code: engine::Code::Script(&script),
        command: args,
        keys: &args[3..3 + numkeys as usize],
        argv: &args[3 + numkeys as usize..],
        read_only: ro || (!flags.compat && flags.no_writes),
        allow_cross_slot: flags.compat || flags.allow_cross_slot,
        deny_oom: oom && (flags.compat || !flags.allow_oom),
        cluster: config.cluster_enabled,
    };
    drop(config);
    let outcome = engine::run(ctx, run);
    // EVAL is never propagated as itself: the commands it ran were.
    ctx.effects.prevent_propagation = true;
    if outcome.error_counted {
        ctx.effects.error_counted = true;
    }
    match outcome.reply {
        Reply::Error(e) => Err(e),
        reply => Ok(reply),
    }
}

/// Redis's `scriptPrepareForRun` checks for a script that declared its flags: the refusals
/// before it runs. Ok tells whether memory was over `maxmemory` when it started.
pub fn prepare_run(ctx: &ExecCtx, flags: ScriptFlags, ro: bool) -> Result<bool, ErrorReply> {
    let server = ctx.server;
    let config = server.config();
    let oom = config.maxmemory > 0 && crate::server::info::used_memory() as u64 > config.maxmemory;
    let obey = ctx.client.is_master;
    let replica = server.role.is_replica();
    let stale = replica && !server.role.link_up() && !config.replica_serve_stale_data;
    if flags.no_cluster && config.cluster_enabled {
        return Err(ErrorReply::fixed(
            "ERR Can not run script on cluster, 'no-cluster' flag is set.",
        ));
    }
    if stale && !flags.allow_stale {
        return Err(ErrorReply::fixed(
            "MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script.",
        ));
    }
    if !flags.no_writes {
        if replica && config.replica_read_only && !obey {
            return Err(ErrorReply::fixed(
                "READONLY Can not run script with write flag on readonly replica",
            ));
        }
        if !obey {
            if let Some(e) = super::dispatch::disk_error(server, &config) {
                return Err(match e.text().strip_prefix("MISCONF Errors writing to the AOF file: ") {
                    Some(reason) => ErrorReply::owned(format!(
                        "MISCONF Redis is configured to persist data to AOF, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts. AOF error: {reason}"
                    )),
                    None => ErrorReply::fixed(
                        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.",
                    ),
                });
            }
        }
        if ro {
            return Err(ErrorReply::fixed(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
        if !replica && super::dispatch::too_few_good_replicas(server, &config, ctx.now_ms) {
            return Err(super::errors::NOREPLICAS);
        }
    }
    if oom && !(flags.allow_oom || flags.no_writes) {
        return Err(ErrorReply::fixed(
            "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
        ));
    }
    Ok(oom)
}

/// Redis's `scriptFlagsToCmdFlags`: the flags the command gates see for FCALL / FCALL_RO of
/// a function that declared its own (write and deny-oom unless `no-writes`, stale only with
/// `allow-stale`).
pub fn effective_flags(fullname: &str, spec_flags: u32, args: &[Bytes]) -> u32 {
    use super::spec::flag;
    if !matches!(fullname, "fcall" | "fcall_ro") {
        return spec_flags;
    }
    let Some(f) = functions::declared_flags(args) else {
        return spec_flags;
    };
    let mut out = spec_flags & !(flag::STALE | flag::DENYOOM | flag::WRITE | flag::MAY_REPLICATE);
    if !(f.allow_oom || f.no_writes) {
        out |= flag::DENYOOM;
    }
    if !f.no_writes {
        out |= flag::WRITE;
    }
    if f.allow_stale {
        out |= flag::STALE;
    }
    out
}

// ---- SCRIPT ----

fn script_container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn script_load(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (sha, _) = create_script(&args[2])?;
    Ok(Reply::bulk(sha))
}

fn script_exists(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let cache = ScriptCache::get();
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|sha| {
                let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
                Reply::Int(cache.lookup(&sha).is_some() as i64)
            })
            .collect(),
    ))
}

fn script_flush(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let valid = match args.len() {
        2 => true,
        3 => args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !valid {
        return Err(ErrorReply::fixed(
            "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
        ));
    }
    ScriptCache::get().flush();
    Ok(Reply::OK)
}

fn script_kill(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    engine::kill(ctx.server, true)
}

fn script_debug(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"no") {
        Ok(Reply::OK)
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        Err(ErrorReply::fixed(
            "ERR The Lua debugger (LDB) is not supported by this server",
        ))
    } else {
        Err(ErrorReply::fixed("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}

fn script_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
    ];
    Ok(super::debug::help_reply(&args[0], LINES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_is_lowercase_hex_of_the_body() {
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn shebang_flags_parse_like_redis() {
        let (f, len) = parse_shebang(b"return 1").unwrap();
        assert!(f.compat);
        assert_eq!(len, 0);
        let body = b"#!lua name=x flags=no-writes,allow-oom\nreturn 1";
        assert_eq!(
            parse_shebang(body).unwrap_err(),
            "Unknown lua shebang option: name=x"
        );
        let (f, len) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(!f.compat && f.no_writes && f.allow_oom && !f.allow_stale);
        assert_eq!(len, 31);
        assert_eq!(
            parse_shebang(b"#!lua").unwrap_err(),
            "Invalid script shebang"
        );
        assert_eq!(
            parse_shebang(b"#!python\n").unwrap_err(),
            "Unexpected engine in script shebang: #!python"
        );
        assert_eq!(
            parse_shebang(b"#!lua flags=bad\n").unwrap_err(),
            "Unexpected flag in script shebang: bad"
        );
        let (f, _) = parse_shebang(b"#!lua flags=\nreturn 1").unwrap();
        assert!(!f.compat && !f.no_writes);
    }

    #[test]
    fn cache_insert_lookup_flush() {
        let cache = ScriptCache {
            scripts: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        };
        let body = Bytes::from_static(b"return 2");
        let sha = sha1_hex(&body);
        cache.insert(
            sha.clone(),
            Script {
                body,
                flags: ScriptFlags::default(),
                shebang_len: 0,
            },
        );
        assert!(cache.lookup(&sha).is_some());
        assert_eq!(cache.len(), 1);
        cache.flush();
        assert!(cache.lookup(&sha).is_none());
        assert_eq!(cache.generation(), 1);
    }
}

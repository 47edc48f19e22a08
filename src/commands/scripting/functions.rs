//! Redis 7.0 functions: libraries of Lua functions loaded with FUNCTION LOAD (a `#!lua
//! name=<lib>` shebang, then code that calls `redis.register_function`), called with FCALL and
//! FCALL_RO, listed, deleted, flushed, dumped and restored by the FUNCTION container.
//!
//! The registry (library name -> source and the functions it registered) is shared by every
//! connection; it is what RDB files, FUNCTION DUMP and replication carry. Each worker thread
//! runs the library code again in its own Lua state the first time it calls one of its
//! functions (`engine::call_function`), as EVAL compiles cached scripts per thread.

use super::engine::{self, Code, FunctionMeta, Run};
use super::{feed_monitors, ScriptFlags};
use crate::commands::context::ExecCtx;
use crate::commands::errors;
use crate::commands::spec::CmdResult;
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};

/// FUNCTION LOAD from a client must finish registering within this time.
const LOAD_TIMEOUT_MS: u64 = 500;

const NAME_RULE: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub struct Library {
    /// Unique for the life of the process: a thread's Lua state keeps callbacks under it.
    pub id: u64,
    pub name: String,
    /// The whole source, shebang line included (what DUMP, RDB files and LIST show).
    pub code: Bytes,
    /// Where the code after the shebang starts (at the shebang's line feed, so line numbers
    /// are those of the source).
    body: usize,
    /// Sorted by name.
    pub functions: Vec<FunctionMeta>,
}

/// The libraries by name and their functions by lowercase name (function names are case
/// insensitive, library names are not).
#[derive(Clone, Default)]
pub struct Libraries {
    libs: BTreeMap<String, Arc<Library>>,
    functions: HashMap<String, String>,
}

impl Libraries {
    fn link(&mut self, lib: Arc<Library>) {
        for f in &lib.functions {
            self.functions
                .entry(f.name.to_ascii_lowercase())
                .or_insert_with(|| lib.name.clone());
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    fn unlink(&mut self, name: &str) -> Option<Arc<Library>> {
        let lib = self.libs.remove(name)?;
        for f in &lib.functions {
            let key = f.name.to_ascii_lowercase();
            if self.functions.get(&key) == Some(&lib.name) {
                self.functions.remove(&key);
            }
        }
        Some(lib)
    }

    fn function_count(&self) -> usize {
        self.libs.values().map(|l| l.functions.len()).sum()
    }

    /// The library holding function `name` (any case) and the function's index in it.
    fn find(&self, name: &[u8]) -> Option<(Arc<Library>, usize)> {
        let key = String::from_utf8_lossy(name).to_ascii_lowercase();
        let lib = self.libs.get(self.functions.get(&key)?)?;
        let i = lib
            .functions
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(&key))?;
        Some((lib.clone(), i))
    }
}

static REGISTRY: LazyLock<Mutex<Libraries>> = LazyLock::new(Default::default);
/// Bumped on every change of the registry (threads then drop callbacks of gone libraries).
static GENERATION: AtomicU64 = AtomicU64::new(0);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn replace_registry(libs: Libraries) {
    *REGISTRY.lock() = libs;
    GENERATION.fetch_add(1, Relaxed);
}

/// Every library's source, in name order (what an RDB file and FUNCTION DUMP hold).
pub fn library_sources() -> Vec<Bytes> {
    REGISTRY
        .lock()
        .libs
        .values()
        .map(|l| l.code.clone())
        .collect()
}

/// (libraries, functions, bytes of library sources) for INFO.
pub fn counts() -> (usize, usize, usize) {
    let reg = REGISTRY.lock();
    let bytes = reg.libs.values().map(|l| l.code.len()).sum();
    (reg.libs.len(), reg.function_count(), bytes)
}

/// Flags a function declared, for the command gates: FCALL / FCALL_RO of a known function.
pub fn declared_flags(args: &[Bytes]) -> Option<ScriptFlags> {
    let name = args.get(1)?;
    REGISTRY
        .lock()
        .find(name)
        .map(|(lib, i)| lib.functions[i].flags)
}

/// Drops every library (FUNCTION FLUSH, a full sync, DEBUG RELOAD).
pub fn clear() {
    replace_registry(Libraries::default());
}

/// Loads library sources read from an RDB file into the registry. `replace` lets a source
/// replace a library of the same name (DEBUG RELOAD MERGE). The error is Redis's text.
pub fn load_sources(sources: Vec<Vec<u8>>, replace: bool) -> Result<(), String> {
    let mut libs = REGISTRY.lock().clone();
    for code in sources {
        create_library(&mut libs, &Bytes::from(code), replace, None)?;
    }
    replace_registry(libs);
    Ok(())
}

/// The parts of a library's shebang line (Redis's `functionExtractLibMetaData`).
struct Metadata {
    engine: Vec<u8>,
    name: Vec<u8>,
    body: usize,
}

fn parse_metadata(code: &[u8]) -> Result<Metadata, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match crate::resp::decode::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let engine = parts[0][2.min(parts[0].len())..].to_vec();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_vec());
            continue;
        }
        return Err(format!(
            "Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    Ok(Metadata {
        engine,
        name,
        body: end,
    })
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Redis's `functionsCreateWithLibraryCtx`: runs the code, checks what it registered and links
/// the library into `libs`. Returns the library's name; the error is the reply's text.
fn create_library(
    libs: &mut Libraries,
    code: &Bytes,
    replace: bool,
    timeout: Option<(fn() -> u64, u64)>,
) -> Result<String, String> {
    let md = parse_metadata(code)?;
    if !valid_name(&md.name) {
        return Err(NAME_RULE.into());
    }
    let name = String::from_utf8_lossy(&md.name).into_owned();
    if !md.engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "Engine '{}' not found",
            String::from_utf8_lossy(&md.engine)
        ));
    }
    let existing = libs.libs.contains_key(&name);
    if existing && !replace {
        return Err(format!("Library '{name}' already exists"));
    }
    let id = NEXT_ID.fetch_add(1, Relaxed);
    let mut functions = engine::load_library(id, &code[md.body..], timeout)?;
    if functions.is_empty() {
        return Err("No functions registered".into());
    }
    for f in &functions {
        match libs.functions.get(&f.name.to_ascii_lowercase()) {
            Some(owner) if !(existing && *owner == name) => {
                return Err(format!("Function {} already exists", f.name));
            }
            _ => {}
        }
    }
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    libs.unlink(&name);
    libs.link(Arc::new(Library {
        id,
        name: name.clone(),
        code: code.clone(),
        body: md.body,
        functions,
    }));
    Ok(name)
}

// ---- FUNCTION ----

pub fn function_container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn err(text: String) -> ErrorReply {
    ErrorReply::owned(format!("ERR {text}"))
}

pub fn function_load(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut replace = false;
    let mut pos = 2;
    while pos < args.len() - 1 {
        let arg = &args[pos];
        pos += 1;
        if arg.eq_ignore_ascii_case(b"replace") {
            replace = true;
            continue;
        }
        return Err(err(format!(
            "Unknown option given: {}",
            String::from_utf8_lossy(arg)
        )));
    }
    if pos >= args.len() {
        return Err(ErrorReply::fixed("ERR Function code is missing"));
    }
    // Commands from our primary or the AOF are not timed.
    let clock: fn() -> u64 = crate::server::state::ServerState::monotonic_ms;
    let timeout = (!ctx.client.is_master).then_some((clock, LOAD_TIMEOUT_MS));
    let mut libs = REGISTRY.lock().clone();
    let name = create_library(&mut libs, &args[pos], replace, timeout).map_err(err)?;
    replace_registry(libs);
    ctx.dirty(1);
    Ok(Reply::bulk(name))
}

pub fn function_delete(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut libs = REGISTRY.lock().clone();
    let name = String::from_utf8_lossy(&args[2]);
    if libs.unlink(&name).is_none() {
        return Err(ErrorReply::fixed("ERR Library not found"));
    }
    replace_registry(libs);
    ctx.dirty(1);
    Ok(Reply::OK)
}

pub fn function_flush(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(errors::subcommand_syntax_error(args));
    }
    if args.len() == 3
        && !args[2].eq_ignore_ascii_case(b"sync")
        && !args[2].eq_ignore_ascii_case(b"async")
    {
        return Err(ErrorReply::fixed(
            "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
        ));
    }
    clear();
    ctx.dirty(1);
    Ok(Reply::OK)
}

pub fn function_list(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if !with_code && arg.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && arg.eq_ignore_ascii_case(b"libraryname") {
            if i >= args.len() - 1 {
                return Err(ErrorReply::fixed("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return Err(err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(arg)
            )));
        }
        i += 1;
    }
    let reg = REGISTRY.lock();
    let mut out = Vec::new();
    for lib in reg.libs.values() {
        if let Some(p) = pattern {
            if !crate::util::glob_match(p, lib.name.as_bytes(), false) {
                continue;
            }
        }
        let functions = lib
            .functions
            .iter()
            .map(|f| {
                Reply::Map(vec![
                    (Reply::bulk_str("name"), Reply::bulk_str(&f.name)),
                    (
                        Reply::bulk_str("description"),
                        f.description.clone().map_or(Reply::Null, Reply::Bulk),
                    ),
                    (Reply::bulk_str("flags"), flags_reply(f.flags)),
                ])
            })
            .collect();
        let mut fields = vec![
            (Reply::bulk_str("library_name"), Reply::bulk_str(&lib.name)),
            (Reply::bulk_str("engine"), Reply::bulk_str("LUA")),
            (Reply::bulk_str("functions"), Reply::Array(functions)),
        ];
        if with_code {
            fields.push((
                Reply::bulk_str("library_code"),
                Reply::Bulk(lib.code.clone()),
            ));
        }
        out.push(Reply::Map(fields));
    }
    Ok(Reply::Array(out))
}

/// A function's flags as FUNCTION LIST shows them: a set of status replies, in Redis's order.
fn flags_reply(f: ScriptFlags) -> Reply {
    let named = [
        (f.no_writes, "no-writes"),
        (f.allow_oom, "allow-oom"),
        (f.allow_stale, "allow-stale"),
        (f.no_cluster, "no-cluster"),
        (f.allow_cross_slot, "allow-cross-slot-keys"),
    ];
    Reply::Set(
        named
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| Reply::simple(n))
            .collect(),
    )
}

pub fn function_dump(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::bulk(
        crate::persistence::rdb::encode::functions_payload(&library_sources()),
    ))
}

pub fn function_restore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(errors::subcommand_syntax_error(args));
    }
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy =
        match args.get(3) {
            None => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
            Some(_) => return Err(ErrorReply::fixed(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    let skip_crc = ctx.server.debug.skip_checksum_validation.load(Relaxed);
    let sources =
        crate::persistence::rdb::decode::decode_functions(&args[2], skip_crc).map_err(err)?;
    let mut restored = Libraries::default();
    for code in sources {
        create_library(&mut restored, &Bytes::from(code), false, None).map_err(err)?;
    }
    let next = if policy == Policy::Flush {
        restored
    } else {
        let mut next = REGISTRY.lock().clone();
        for name in restored.libs.keys() {
            if next.libs.contains_key(name) {
                if policy != Policy::Replace {
                    return Err(err(format!("Library {name} already exists")));
                }
                next.unlink(name);
            }
        }
        for lib in restored.libs.values() {
            for f in &lib.functions {
                if next.functions.contains_key(&f.name.to_ascii_lowercase()) {
                    return Err(err(format!("Function {} already exists", f.name)));
                }
            }
        }
        for (_, lib) in restored.libs {
            next.link(lib);
        }
        next
    };
    replace_registry(next);
    ctx.dirty(1);
    Ok(Reply::OK)
}

pub fn function_stats(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    if engine::script_running() && engine::running_eval() {
        return Err(engine::busy_error());
    }
    let running = match engine::running_function(ctx.now_ms) {
        None => Reply::Null,
        Some((name, command, ms)) => Reply::Map(vec![
            (Reply::bulk_str("name"), Reply::bulk(name)),
            (Reply::bulk_str("command"), Reply::bulks(command)),
            (Reply::bulk_str("duration_ms"), Reply::Int(ms as i64)),
        ]),
    };
    let (libraries, functions, _) = counts();
    Ok(Reply::Map(vec![
        (Reply::bulk_str("running_script"), running),
        (
            Reply::bulk_str("engines"),
            Reply::Map(vec![(
                Reply::bulk_str("LUA"),
                Reply::Map(vec![
                    (
                        Reply::bulk_str("libraries_count"),
                        Reply::Int(libraries as i64),
                    ),
                    (
                        Reply::bulk_str("functions_count"),
                        Reply::Int(functions as i64),
                    ),
                ]),
            )]),
        ),
    ]))
}

pub fn function_kill(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    engine::kill(ctx.server, false)
}

pub fn function_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
    ];
    Ok(crate::commands::debug::help_reply(&args[0], LINES))
}

// ---- FCALL ----

pub fn fcall(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

pub fn fcall_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut ExecCtx, args: &[Bytes], ro: bool) -> CmdResult {
    let shared: &ExecCtx = ctx;
    feed_monitors(shared, &shared.client.addr, args);
    let Some((lib, index)) = REGISTRY.lock().find(&args[1]) else {
        return Err(ErrorReply::fixed("ERR Function not found"));
    };
    let Some(numkeys) = crate::resp::decode::parse_i64(&args[2]) else {
        return Err(ErrorReply::fixed("ERR Bad number of keys provided"));
    };
    if numkeys > (args.len() - 3) as i64 {
        return Err(ErrorReply::fixed(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(ErrorReply::fixed("ERR Number of keys can't be negative"));
    }
    let meta = &lib.functions[index];
    let flags = meta.flags;
    let oom = super::prepare_run(ctx, flags, ro)?;
    let cluster = ctx.server.config().cluster_enabled;
    let generation = GENERATION.load(Relaxed);
    let live = |id: u64| REGISTRY.lock().libs.values().any(|l| l.id == id);
    let keys = &args[3..3 + numkeys as usize];
    let argv = &args[3 + numkeys as usize..];
    let is_master = ctx.client.is_master;
    let outcome = engine::call_function(
        ctx,
        lib.id,
        &lib.code[lib.body..],
        &meta.name,
        generation,
        &live,
        |f| Run {
            name: &meta.name,
            code: Code::Function(f),
            command: args,
            keys,
            argv,
            read_only: ro || flags.no_writes,
            allow_cross_slot: flags.allow_cross_slot,
            deny_oom: oom && !flags.allow_oom && !is_master,
            cluster,
        },
    );
    // Like EVAL, FCALL is never propagated as itself: the commands it ran were.
    ctx.effects.prevent_propagation = true;
    if outcome.error_counted {
        ctx.effects.error_counted = true;
    }
    match outcome.reply {
        Reply::Error(e) => Err(e),
        reply => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_parses_like_redis() {
        let md = parse_metadata(b"#!lua name=lib1\nreturn 1").unwrap();
        assert_eq!(md.engine, b"lua");
        assert_eq!(md.name, b"lib1");
        assert_eq!(md.body, 15);
        let e = |code: &[u8]| parse_metadata(code).err().unwrap();
        assert_eq!(e(b"return 1"), "Missing library metadata");
        assert_eq!(e(b"#!lua name=x"), "Invalid library metadata");
        assert_eq!(e(b"#!lua\n"), "Library name was not given");
        assert_eq!(
            e(b"#!lua name=a name=b\n"),
            "Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            e(b"#!lua name=a foo=bar\n"),
            "Invalid metadata value given: foo=bar"
        );
        let md = parse_metadata(b"#! NAME=\"foo\"\n").unwrap();
        assert_eq!(md.engine, b"");
        assert_eq!(md.name, b"foo");
    }

    fn create(libs: &mut Libraries, code: &str, replace: bool) -> Result<String, String> {
        create_library(libs, &Bytes::from(code.to_string()), replace, None)
    }

    #[test]
    fn libraries_register_check_and_link_like_redis() {
        let mut libs = Libraries::default();
        let lib = "#!lua name=l1\nredis.register_function('f1', function() return 1 end)\n\
                   redis.register_function{function_name='F2', callback=function() return 2 end, \
                   flags={'no-writes', 'ALLOW-STALE'}, description='two'}";
        assert_eq!(create(&mut libs, lib, false).unwrap(), "l1");
        let (l, i) = libs.find(b"f2").unwrap();
        let f = &l.functions[i];
        assert_eq!(f.name, "F2");
        assert_eq!(f.description.as_deref(), Some(&b"two"[..]));
        assert!(f.flags.no_writes && f.flags.allow_stale && !f.flags.allow_oom);
        assert_eq!(
            create(&mut libs, lib, false).unwrap_err(),
            "Library 'l1' already exists"
        );
        assert_eq!(create(&mut libs, lib, true).unwrap(), "l1");
        assert_eq!(
            create(
                &mut libs,
                "#!lua name=l2\nredis.register_function('F1', function() end)",
                false
            )
            .unwrap_err(),
            "Function F1 already exists"
        );
        let e = |code: &str| create(&mut Libraries::default(), code, false).unwrap_err();
        assert_eq!(e("#!lua name=x\nreturn 1"), "No functions registered");
        assert_eq!(e("#!py name=x\nreturn 1"), "Engine 'py' not found");
        assert_eq!(
            e("#!lua name=x\na = 1"),
            "Error registering functions: ERR user_function:2: Attempt to modify a readonly table"
        );
        assert_eq!(
            e("#!lua name=x\nredis.call('ping')"),
            "Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'"
        );
        assert_eq!(
            e("#!lua name=x\nredis.register_function('a', function() end)\nredis.register_function('a', function() end)"),
            "Error registering functions: ERR Function already exists in the library"
        );
        assert_eq!(
            e("#!lua name=x\nredis.register_function{function_name='a', callback=function() end, flags={'bad'}}"),
            "Error registering functions: ERR unknown flag given"
        );
        assert!(e("#!lua name=x\nbad code").starts_with("Error compiling function: "));
    }

    #[test]
    fn dump_payload_round_trips() {
        use crate::persistence::rdb::{decode, encode};
        let sources = vec![
            Bytes::from_static(b"#!lua name=a\nx"),
            Bytes::from_static(b"12"),
        ];
        let payload = encode::functions_payload(&sources);
        let back = decode::decode_functions(&payload, false).unwrap();
        assert_eq!(back, vec![b"#!lua name=a\nx".to_vec(), b"12".to_vec()]);
        let mut bad = payload.clone();
        bad[3] ^= 1;
        assert_eq!(
            decode::decode_functions(&bad, false).unwrap_err(),
            "DUMP payload version or checksum are wrong"
        );
        assert!(decode::decode_functions(&bad, true).is_ok());
        let mut not_function = encode::functions_payload(&[]);
        not_function.splice(0..0, [0u8, 0]);
        let len = not_function.len();
        let crc = crate::persistence::rdb::crc64::update(0, &not_function[..len - 8]);
        not_function[len - 8..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode::decode_functions(&not_function, false).unwrap_err(),
            "given type is not a function"
        );
    }

    #[test]
    fn names_are_letters_digits_and_underscores() {
        assert!(valid_name(b"a_1"));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"a b"));
        assert!(!valid_name(b"a\\0b"));
    }
}

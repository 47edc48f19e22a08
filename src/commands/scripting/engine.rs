//! The Lua side: one Lua 5.1 state per worker thread, set up by `glue.lua` (the `redis` API,
//! the read-only globals, the error handler that records the user's line), the compiled
//! functions by SHA, and one script run: KEYS and ARGV, `redis.call` going through the command
//! table and `dispatch::call`, and the reply or error the run produces. Also the SCRIPT KILL
//! switch, checked by an instruction-count hook.

use super::convert;
use super::{Script, ScriptCache};
use crate::commands::context::ExecCtx;
use crate::commands::dispatch;
use crate::commands::spec::{flag, key_positions};
use crate::commands::table::{Command, CommandTable, Lookup};
use crate::resp::{ErrorReply, Reply};
use crate::server::state::ServerState;
use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

const GLUE: &str = include_str!("glue.lua");

/// A script is running (scripts run one at a time: each holds every shard).
static RUNNING: AtomicBool = AtomicBool::new(false);
/// SCRIPT KILL asked the running script to stop.
static KILL: AtomicBool = AtomicBool::new(false);
/// The running script has called a write command: it can no longer be killed.
static WRITE_DIRTY: AtomicBool = AtomicBool::new(false);
/// When the running script started (Unix milliseconds).
static STARTED_MS: AtomicU64 = AtomicU64::new(0);
/// The running script was started by EVAL and friends (not by FCALL).
static RUNNING_EVAL: AtomicBool = AtomicBool::new(false);
/// `busy-reply-threshold` when the running script started (0: never slow), and its name for
/// the one "Slow script detected" line logged once it has run that long.
static SLOW_AFTER_MS: AtomicU64 = AtomicU64::new(0);
static SLOW_NAME: parking_lot::Mutex<String> = parking_lot::Mutex::new(String::new());
/// The running function's name and the command that called it (FUNCTION STATS).
static RUNNING_FUNCTION: parking_lot::Mutex<Option<(String, Vec<Bytes>)>> =
    parking_lot::Mutex::new(None);
/// The state of Redis's `redisLrand48` (48-bit linear congruential generator).
static RAND48: AtomicU64 = AtomicU64::new(0x1234_ABCD_330E);

const KILLED_MSG: &str = "ERR Script killed by user with SCRIPT KILL...";

fn lrand48() -> i64 {
    const A: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut x = RAND48.load(Relaxed);
    x = (x.wrapping_mul(A).wrapping_add(0xB)) & MASK;
    RAND48.store(x, Relaxed);
    (x >> 17) as i64
}

fn srand48(seed: i32) {
    RAND48.store(((seed as u32 as u64) << 16) | 0x330E, Relaxed);
}

struct Engine {
    lua: Lua,
    generation: u64,
    private: Table,
    env: Table,
    globals: Table,
    functions: HashMap<String, Function>,
    /// Function engine: the callbacks of each library this state has loaded, by library id.
    libraries: HashMap<u64, HashMap<String, Function>>,
}

/// A function a library registered while it loaded.
pub struct Registered {
    pub name: String,
    pub description: Option<Bytes>,
    pub flags: super::ScriptFlags,
    callback: Function,
}

/// A clock (milliseconds) and the time on it a loading library must finish by.
type LoadDeadline = (fn() -> u64, u64);

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// The state function libraries load and run in (kept apart from EVAL's, as Redis does).
    static FUNCTION_ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
    /// A library is loading and must finish by this time on the clock given (FUNCTION LOAD's
    /// timeout).
    static LOAD_DEADLINE: std::cell::Cell<Option<LoadDeadline>> =
        const { std::cell::Cell::new(None) };
    static LOAD_TIMED_OUT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The user running the current script (for `redis.acl_check_cmd`).
    static RUN_USER: RefCell<Option<std::sync::Arc<crate::acl::User>>> = const { RefCell::new(None) };
}

fn with_function_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    FUNCTION_ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine::new(0).expect("the Lua state must initialize"));
        }
        f(slot.as_mut().expect("engine just built"))
    })
}

fn with_engine<R>(f: impl FnOnce(&mut Engine) -> R) -> R {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let generation = ScriptCache::get().generation();
        if slot.as_ref().is_none_or(|e| e.generation != generation) {
            *slot = None;
            *slot = Some(Engine::new(generation).expect("the Lua state must initialize"));
        }
        f(slot.as_mut().expect("engine just built"))
    })
}

impl Engine {
    fn new(generation: u64) -> mlua::Result<Engine> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // The debug library is only handed to the glue (for the error handler's getinfo);
        // scripts never see it.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        let private = lua.create_table()?;
        private.raw_set(
            "sha1hex",
            lua.create_function(|lua, v: Value| {
                let bytes = match lua.coerce_string(v)? {
                    Some(s) => s.as_bytes().to_vec(),
                    None => Vec::new(),
                };
                Ok(super::sha1_hex(&bytes))
            })?,
        )?;
        private.raw_set(
            "error_text",
            lua.create_function(|lua, s: mlua::LuaString| {
                lua.create_string(convert::error_text(&s.as_bytes()))
            })?,
        )?;
        private.raw_set(
            "log",
            lua.create_function(|_, (level, msg): (i64, mlua::LuaString)| {
                let msg = msg.to_string_lossy();
                match level {
                    0 => crate::log_at!(Debug, "{msg}"),
                    1 => crate::log_at!(Verbose, "{msg}"),
                    2 => crate::log_at!(Notice, "{msg}"),
                    _ => crate::log_at!(Warning, "{msg}"),
                }
                Ok(())
            })?,
        )?;
        private.raw_set(
            "rand",
            lua.create_function(|_, ()| {
                let max = i32::MAX as i64;
                Ok((lrand48() % max) as f64 / max as f64)
            })?,
        )?;
        private.raw_set(
            "srand",
            lua.create_function(|_, seed: f64| {
                srand48(seed as i64 as i32);
                Ok(())
            })?,
        )?;
        private.raw_set(
            "killed",
            lua.create_function(|_, ()| Ok(KILL.load(Relaxed)))?,
        )?;
        private.raw_set(
            "acl_check",
            lua.create_function(|lua, args: Variadic<Value>| acl_check(lua, &args))?,
        )?;
        private.raw_set("bit", super::bit::library(&lua)?)?;
        private.raw_set("cjson_raw", super::cjson::library(&lua)?)?;
        private.raw_set("cmsgpack_raw", super::cmsgpack::library(&lua)?)?;
        // SAFETY: both are plain Lua C functions that only use the Lua API on their own stack.
        unsafe {
            private.raw_set("c_call", lua.create_c_function(redis_call)?)?;
            private.raw_set("c_pcall", lua.create_c_function(redis_pcall)?)?;
            private.raw_set("c_wrap", lua.create_c_function(make_trampoline)?)?;
        }
        let glue = lua
            .load(GLUE)
            .set_name("@__ferrodis_glue__")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()?;
        let globals: Table = glue.call((lua.globals(), private.clone()))?;
        let env: Table = private.raw_get("env")?;
        lua.set_globals(globals.clone())?;
        lua.set_hook(HookTriggers::new().every_nth_instruction(1000), |_, _| {
            if KILL.load(Relaxed) {
                return Err(mlua::Error::runtime(KILLED_MSG));
            }
            log_if_slow();
            if let Some((clock, deadline)) = LOAD_DEADLINE.get() {
                if clock() > deadline {
                    LOAD_TIMED_OUT.set(true);
                    return Err(mlua::Error::runtime("FUNCTION LOAD timeout"));
                }
            }
            Ok(mlua::VmState::Continue)
        })?;
        Ok(Engine {
            lua,
            generation,
            private,
            env,
            globals,
            functions: HashMap::new(),
            libraries: HashMap::new(),
        })
    }

    /// Runs a library's code (after its shebang line) in load mode, where the globals are only
    /// the `redis` table of `register_function`, `log` and the version: Redis's
    /// `luaEngineCreate`. `timeout_ms` 0 means no limit. The error is the reply's text.
    fn load_library(
        &self,
        code: &[u8],
        timeout: Option<(fn() -> u64, u64)>,
    ) -> Result<Vec<Registered>, String> {
        let chunk = self
            .lua
            .load(code)
            .set_name("@user_function")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.globals.clone())
            .into_function()
            .map_err(|e| {
                let msg = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    other => other.to_string(),
                };
                format!("Error compiling function: {msg}")
            })?;
        let loading = self.lua.create_table().map_err(|e| e.to_string())?;
        self.private
            .raw_set("loading", loading.clone())
            .map_err(|e| e.to_string())?;
        LOAD_TIMED_OUT.set(false);
        LOAD_DEADLINE.set(timeout.map(|(clock, ms)| (clock, clock() + ms)));
        let result = self
            .private
            .raw_get::<Function>("load_run")
            .and_then(|run| run.call::<(bool, Value)>(chunk));
        LOAD_DEADLINE.set(None);
        let _ = self.private.raw_set("loading", Value::Nil);
        let timed_out = LOAD_TIMED_OUT.replace(false);
        let (ok, err) = result.map_err(|e| e.to_string())?;
        if !ok {
            let msg = if timed_out {
                "ERR FUNCTION LOAD timeout".to_string()
            } else {
                self.load_error_text(err)
            };
            return Err(format!("Error registering functions: {msg}"));
        }
        let list: Table = loading.raw_get("list").map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for item in list.sequence_values::<Table>() {
            let item = item.map_err(|e| e.to_string())?;
            let text = |k: &str| -> Option<Bytes> {
                match item.raw_get::<Value>(k) {
                    Ok(Value::String(s)) => Some(Bytes::copy_from_slice(&s.as_bytes())),
                    _ => None,
                }
            };
            let flag = |k: &str| matches!(item.raw_get::<Value>(k), Ok(Value::Boolean(true)));
            out.push(Registered {
                name: String::from_utf8_lossy(&text("name").unwrap_or_default()).into_owned(),
                description: text("description"),
                flags: super::ScriptFlags {
                    compat: false,
                    no_writes: flag("no-writes"),
                    allow_oom: flag("allow-oom"),
                    allow_stale: flag("allow-stale"),
                    no_cluster: flag("no-cluster"),
                    allow_cross_slot: flag("allow-cross-slot-keys"),
                },
                callback: item.raw_get("callback").map_err(|e| e.to_string())?,
            });
        }
        Ok(out)
    }

    /// Redis's `luaExtractErrorInformation` message: a string error gets the ERR code, an
    /// error table gives its `err` field.
    fn load_error_text(&self, err: Value) -> String {
        match err {
            Value::Table(t) => match t.raw_get::<Value>("err") {
                Ok(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => self
                    .lua
                    .coerce_string(v)
                    .ok()
                    .flatten()
                    .map_or_else(String::new, |s| s.to_string_lossy()),
                _ => "(null)".to_string(),
            },
            Value::Error(e) => format!("ERR {e}"),
            other => match self.lua.coerce_string(other) {
                Ok(Some(s)) => format!("ERR {}", s.to_string_lossy()),
                _ => "(null)".to_string(),
            },
        }
    }

    fn function(&mut self, sha: &str, script: &Script) -> Result<Function, String> {
        if let Some(f) = self.functions.get(sha) {
            return Ok(f.clone());
        }
        let code = &script.body[script.shebang_len..];
        let f = self
            .lua
            .load(code)
            .set_name("@user_script")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .set_environment(self.globals.clone())
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })?;
        self.functions.insert(sha.to_string(), f.clone());
        Ok(f)
    }

    fn strings(&self, items: &[Bytes]) -> mlua::Result<Table> {
        let t = self.lua.create_table_with_capacity(items.len(), 0)?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(item)?)?;
        }
        Ok(t)
    }

    fn run(&mut self, ctx: &mut ExecCtx, run: Run) -> RunOutcome {
        let (f, eval) = match &run.code {
            Code::Script(script) => match self.function(run.name, script) {
                Ok(f) => (f, true),
                Err(msg) => {
                    return RunOutcome::error(format!(
                        "ERR Error compiling script (new function): {msg}"
                    ))
                }
            },
            Code::Function(f) => (f.clone(), false),
        };
        // EVAL's keys and arguments are the KEYS and ARGV globals; a function gets them as
        // its two arguments.
        let prepared = (|| -> mlua::Result<(Function, Option<(Table, Table)>)> {
            let (keys, argv) = (self.strings(run.keys)?, self.strings(run.argv)?);
            let args = if eval {
                self.env.raw_set("KEYS", keys)?;
                self.env.raw_set("ARGV", argv)?;
                None
            } else {
                Some((keys, argv))
            };
            self.private.raw_set("resp", 2)?;
            self.private.raw_set("repl", 3)?;
            Ok((self.private.raw_get("run")?, args))
        })();
        let (runner, fargs) = match prepared {
            Ok(r) => r,
            Err(e) => return RunOutcome::error(format!("ERR {e}")),
        };
        KILL.store(false, Relaxed);
        WRITE_DIRTY.store(false, Relaxed);
        STARTED_MS.store(ctx.now_ms, Relaxed);
        RUNNING_EVAL.store(eval, Relaxed);
        let threshold = ctx.server.config().busy_reply_threshold.max(0) as u64;
        SLOW_AFTER_MS.store(threshold, Relaxed);
        if threshold > 0 {
            *SLOW_NAME.lock() = run.name.to_string();
        }
        if !eval {
            *RUNNING_FUNCTION.lock() = Some((run.name.to_string(), run.command.to_vec()));
        }
        RUNNING.store(true, Relaxed);
        let saved = (
            ctx.client.db,
            ctx.client.resp3,
            ctx.deny_blocking,
            ctx.in_script,
        );
        ctx.deny_blocking = true;
        ctx.in_script = true;
        RUN_USER.with(|u| *u.borrow_mut() = Some(ctx.client.user.clone()));
        let mut state = CallState {
            read_only: run.read_only,
            allow_cross_slot: run.allow_cross_slot,
            cluster: run.cluster,
            deny_oom: run.deny_oom,
            // The declared keys' slot (routing refused keys of several slots): a key the
            // script touches must agree with it, as with Redis's `c->slot`.
            slot: run
                .keys
                .first()
                .filter(|_| run.cluster)
                .map(|k| crate::slot::key_slot(k)),
        };
        let private = self.private.clone();
        let result = self.lua.scope(|scope| {
            let call = scope.create_function_mut(|lua, args: Table| {
                script_call(lua, ctx, &mut state, &private, &args)
            })?;
            self.lua.set_named_registry_value(CALL_IMPL, call)?;
            let (ok, value): (bool, Value) = match fargs {
                None => runner.call(f)?,
                Some((keys, argv)) => runner.call((f, keys, argv))?,
            };
            let resp3 = private.raw_get::<i64>("resp")? == 3;
            Ok(if ok {
                let r = convert::lua_to_reply(&value, resp3);
                RunOutcome {
                    reply: r.reply,
                    error_counted: r.error_counted,
                }
            } else {
                self.failure(run.name, value)
            })
        });
        let _ = self.lua.set_named_registry_value(CALL_IMPL, Value::Nil);
        (
            ctx.client.db,
            ctx.client.resp3,
            ctx.deny_blocking,
            ctx.in_script,
        ) = saved;
        RUNNING.store(false, Relaxed);
        SLOW_AFTER_MS.store(0, Relaxed);
        *RUNNING_FUNCTION.lock() = None;
        RUN_USER.with(|u| *u.borrow_mut() = None);
        let killed = KILL.swap(false, Relaxed);
        let outcome = result.unwrap_or_else(|e| RunOutcome::error(format!("ERR {e}")));
        if killed && outcome.reply.is_error() {
            return self.killed(outcome);
        }
        outcome
    }

    /// The reply for a script that raised an error (Redis's `luaCallFunction` error branch):
    /// the handler's `{err=, source=, line=}` becomes `<err> script: <sha>, on <source>:<line>.`
    fn failure(&self, sha: &str, value: Value) -> RunOutcome {
        let Value::Table(t) = value else {
            let msg = match self.lua.coerce_string(value) {
                Ok(Some(s)) => s.to_string_lossy(),
                _ => "execution failure".to_string(),
            };
            let msg: String = msg.chars().take(100).collect();
            return RunOutcome::error(format!("ERR Error running script {sha}, {msg}"));
        };
        let text = |name: &str| -> Option<String> {
            let v = t.raw_get::<Value>(name).ok()?;
            match v {
                Value::String(_) | Value::Number(_) | Value::Integer(_) => self
                    .lua
                    .coerce_string(v)
                    .ok()
                    .flatten()
                    .map(|s| s.to_string_lossy()),
                _ => None,
            }
        };
        let mut msg = text("err").unwrap_or_else(|| "ERR unknown error".to_string());
        if let (Some(source), Some(line)) = (text("source"), text("line")) {
            msg.push_str(&format!(" script: {sha}, on {source}:{line}."));
        }
        let counted = matches!(
            t.raw_get::<Value>("ignore_error_stats_update"),
            Ok(Value::Boolean(true))
        );
        RunOutcome {
            reply: Reply::Error(ErrorReply::owned(msg.replace(['\r', '\n'], " "))),
            error_counted: counted,
        }
    }

    /// Rewrites the error of a killed script to Redis's text, keeping where it stopped.
    fn killed(&self, outcome: RunOutcome) -> RunOutcome {
        let Reply::Error(e) = &outcome.reply else {
            return outcome;
        };
        let place = e.text().rfind(" script: ").map_or("", |i| &e.text()[i..]);
        RunOutcome::error(format!("{KILLED_MSG}{place}"))
    }
}

/// Registry key of the current run's `redis.call` implementation.
const CALL_IMPL: &str = "ferrodis.call";

/// `redis.call` and `redis.pcall`: run the registered implementation, which returns the
/// converted reply and whether it is an error; `redis.call` raises the error table.
unsafe fn call_impl(state: *mut mlua::ffi::lua_State, raise: bool) -> std::ffi::c_int {
    use mlua::ffi;
    // The arguments travel as one table ({...; n = count}): passing thousands of them one by
    // one would need as many Lua references on the Rust side.
    let n = ffi::lua_gettop(state);
    ffi::lua_createtable(state, n, 1);
    for i in 1..=n {
        ffi::lua_pushvalue(state, i);
        ffi::lua_rawseti(state, -2, i as _);
    }
    ffi::lua_pushinteger(state, n as _);
    ffi::lua_setfield(state, -2, c"n".as_ptr());
    ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, c"ferrodis.call".as_ptr());
    ffi::lua_insert(state, -2);
    ffi::lua_call(state, 1, 2);
    let failed = ffi::lua_toboolean(state, -1) != 0;
    ffi::lua_settop(state, -2);
    if raise && failed {
        ffi::lua_error(state);
    }
    1
}

unsafe extern "C-unwind" fn redis_call(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    call_impl(state, true)
}

unsafe extern "C-unwind" fn redis_pcall(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    call_impl(state, false)
}

/// `wrap(f)`: a C closure that calls `f` with its arguments and returns all its results.
unsafe extern "C-unwind" fn make_trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    mlua::ffi::lua_settop(state, 1);
    mlua::ffi::lua_pushcclosure(state, trampoline, 1);
    1
}

unsafe extern "C-unwind" fn trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, ffi::LUA_MULTRET);
    ffi::lua_gettop(state)
}

/// What a run executes: a cached EVAL script, or a function's callback.
pub enum Code<'a> {
    Script(&'a Script),
    Function(Function),
}

/// One script or function invocation.
pub struct Run<'a> {
    /// The script's SHA or the function's name (error replies name it).
    pub name: &'a str,
    pub code: Code<'a>,
    /// The calling command's arguments (FUNCTION STATS shows them).
    pub command: &'a [Bytes],
    pub keys: &'a [Bytes],
    pub argv: &'a [Bytes],
    /// EVAL_RO / EVALSHA_RO, or a `no-writes` shebang: write commands are refused.
    pub read_only: bool,
    pub allow_cross_slot: bool,
    pub cluster: bool,
    /// Memory was over `maxmemory` when the script started (and it did not declare
    /// allow-oom): denyoom commands are refused until the script has written something.
    pub deny_oom: bool,
}

pub struct RunOutcome {
    pub reply: Reply,
    /// The error reply was already counted in the error statistics when a command the script
    /// called failed.
    pub error_counted: bool,
}

impl RunOutcome {
    fn error(text: String) -> RunOutcome {
        RunOutcome {
            reply: Reply::Error(ErrorReply::owned(text)),
            error_counted: false,
        }
    }
}

/// What `redis.call` checks across the calls of one run.
struct CallState {
    read_only: bool,
    allow_cross_slot: bool,
    cluster: bool,
    deny_oom: bool,
    /// The slot the script's keys hash to so far (cluster mode).
    slot: Option<u16>,
}

/// Compiles `script` in this thread's Lua state (the check EVAL and SCRIPT LOAD make before
/// caching a new script). The error is Lua's message.
pub fn compile(sha: &str, script: &Script) -> Result<(), String> {
    with_engine(|e| e.function(sha, script).map(|_| ()))
}

pub fn run(ctx: &mut ExecCtx, run: Run) -> RunOutcome {
    with_engine(|e| e.run(ctx, run))
}

/// A function a library registered, as the registry keeps it.
pub struct FunctionMeta {
    pub name: String,
    pub description: Option<Bytes>,
    pub flags: super::ScriptFlags,
}

/// Loads a library's code in this thread's function state and keeps its callbacks under `id`.
/// `timeout` is the clock (milliseconds) that measures the limit, and the limit.
pub fn load_library(
    id: u64,
    code: &[u8],
    timeout: Option<(fn() -> u64, u64)>,
) -> Result<Vec<FunctionMeta>, String> {
    with_function_engine(|e| {
        let registered = e.load_library(code, timeout)?;
        let mut callbacks = HashMap::new();
        let mut metas = Vec::with_capacity(registered.len());
        for r in registered {
            callbacks
                .entry(r.name.clone())
                .or_insert(r.callback.clone());
            metas.push(FunctionMeta {
                name: r.name,
                description: r.description,
                flags: r.flags,
            });
        }
        e.libraries.insert(id, callbacks);
        Ok(metas)
    })
}

/// Runs function `function` of library `id` (whose code is `code`, loaded into this thread's
/// state first if needed). When the registry's `generation` changed since this thread last
/// looked, libraries for which `live` is false are dropped from the state.
pub fn call_function<'a>(
    ctx: &mut ExecCtx,
    id: u64,
    code: &[u8],
    function: &str,
    generation: u64,
    live: &dyn Fn(u64) -> bool,
    mut run: impl FnMut(Function) -> Run<'a>,
) -> RunOutcome {
    with_function_engine(|e| {
        if e.generation != generation {
            e.libraries.retain(|id, _| live(*id));
            e.generation = generation;
        }
        if !e.libraries.contains_key(&id) {
            let registered = match e.load_library(code, None) {
                Ok(r) => r,
                Err(msg) => return RunOutcome::error(format!("ERR {msg}")),
            };
            let callbacks = registered
                .into_iter()
                .map(|r| (r.name, r.callback))
                .collect();
            e.libraries.insert(id, callbacks);
        }
        let Some(f) = e.libraries.get(&id).and_then(|l| l.get(function)).cloned() else {
            return RunOutcome::error("ERR Function not found".into());
        };
        let r = run(f);
        e.run(ctx, r)
    })
}

/// Whether the running script came from EVAL (false for a function).
pub fn running_eval() -> bool {
    RUNNING_EVAL.load(Relaxed)
}

/// The running function's name, the command that called it and how long it has run (ms).
pub fn running_function(now_ms: u64) -> Option<(String, Vec<Bytes>, u64)> {
    if !RUNNING.load(Relaxed) {
        return None;
    }
    let (name, command) = RUNNING_FUNCTION.lock().clone()?;
    Some((
        name,
        command,
        now_ms.saturating_sub(STARTED_MS.load(Relaxed)),
    ))
}

/// Logs once per run, as Redis's `scriptInterrupt` does, that the running script has gone
/// past `busy-reply-threshold` (from then on other clients get -BUSY).
fn log_if_slow() {
    let threshold = SLOW_AFTER_MS.load(Relaxed);
    if threshold == 0 {
        return;
    }
    let elapsed =
        (crate::server::connection::unix_us() / 1000).saturating_sub(STARTED_MS.load(Relaxed));
    if elapsed < threshold || SLOW_AFTER_MS.swap(0, Relaxed) == 0 {
        return;
    }
    let kill = match RUNNING_EVAL.load(Relaxed) {
        true => "SCRIPT KILL",
        false => "FUNCTION KILL",
    };
    crate::log_at!(
        Warning,
        "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command. Script name is: {}.",
        elapsed,
        kill,
        SLOW_NAME.lock()
    );
}

/// The BUSY refusal other clients get while a script has run longer than
/// `busy-reply-threshold` (commands flagged allow-busy, like SCRIPT KILL, still run).
pub fn check_busy(server: &ServerState, cmd: &Command, now_us: u64) -> Result<(), ErrorReply> {
    if !RUNNING.load(Relaxed) || cmd.spec.has(flag::ALLOW_BUSY) {
        return Ok(());
    }
    let threshold = server.config().busy_reply_threshold;
    let elapsed = (now_us / 1000).saturating_sub(STARTED_MS.load(Relaxed));
    if threshold > 0 && elapsed >= threshold as u64 {
        return Err(busy_error());
    }
    Ok(())
}

/// The BUSY error naming the KILL that stops the running script.
pub fn busy_error() -> ErrorReply {
    if RUNNING_EVAL.load(Relaxed) {
        ErrorReply::fixed(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        )
    } else {
        ErrorReply::fixed(
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
        )
    }
}

/// Whether a script is running right now.
pub fn script_running() -> bool {
    RUNNING.load(Relaxed)
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL: each stops only its own kind of script.
pub fn kill(_server: &ServerState, eval: bool) -> Result<Reply, ErrorReply> {
    if !RUNNING.load(Relaxed) {
        return Err(ErrorReply::fixed(
            "NOTBUSY No scripts in execution right now.",
        ));
    }
    if WRITE_DIRTY.load(Relaxed) {
        return Err(ErrorReply::fixed(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ));
    }
    if RUNNING_EVAL.load(Relaxed) != eval {
        return Err(busy_error());
    }
    KILL.store(true, Relaxed);
    Ok(Reply::OK)
}

fn error_value(lua: &Lua, text: &str, counted: bool) -> mlua::Result<(Value, bool)> {
    Ok((
        Value::Table(convert::error_table(lua, text.as_bytes(), counted)?),
        true,
    ))
}

/// A command refused before it ran: counted as rejected, as Redis's `scriptCall` does.
fn rejected(
    lua: &Lua,
    server: &ServerState,
    cmd: Option<&Command>,
    text: &str,
) -> mlua::Result<(Value, bool)> {
    if let Some(cmd) = cmd {
        server.command_stats[cmd.id]
            .rejected_calls
            .fetch_add(1, Relaxed);
    }
    let code = text
        .strip_prefix('-')
        .and_then(|t| t.split(' ').next())
        .unwrap_or("ERR");
    server.count_error(code);
    error_value(lua, text, true)
}

/// `redis.call` / `redis.pcall`: the converted reply and whether it is an error.
fn script_call(
    lua: &Lua,
    ctx: &mut ExecCtx,
    state: &mut CallState,
    private: &Table,
    args: &Table,
) -> mlua::Result<(Value, bool)> {
    if KILL.load(Relaxed) {
        return Err(mlua::Error::runtime(KILLED_MSG));
    }
    let argc: usize = args.raw_get("n")?;
    if argc == 0 {
        return error_value(
            lua,
            "Please specify at least one argument for this redis lib call",
            false,
        );
    }
    let mut argv = Vec::with_capacity(argc);
    for i in 1..=argc {
        match convert::lua_arg(&args.raw_get::<Value>(i)?) {
            Some(a) => argv.push(a),
            None => {
                return error_value(
                    lua,
                    "Lua redis lib command arguments must be strings or integers",
                    false,
                )
            }
        }
    }
    let server = ctx.server;
    let table: &'static CommandTable = server.commands;
    let cmd = match table.lookup(&argv) {
        Lookup::Found(c) if c.spec.arity_ok(argv.len()) => c,
        Lookup::Found(c) => {
            return rejected(
                lua,
                server,
                Some(c),
                "Wrong number of args calling Redis command from script",
            )
        }
        _ => {
            return rejected(
                lua,
                server,
                None,
                "Unknown Redis command called from script",
            )
        }
    };
    if cmd.spec.has(flag::NOSCRIPT) && !server.debug.disable_deny_scripts.load(Relaxed) {
        return rejected(
            lua,
            server,
            Some(cmd),
            "This Redis command is not allowed from script",
        );
    }
    if server.role.is_replica()
        && !server.role.link_up()
        && !server.config().replica_serve_stale_data
        && !cmd.spec.has(flag::STALE)
    {
        return rejected(
            lua,
            server,
            Some(cmd),
            "Can not execute the command on a stale replica",
        );
    }
    if !ctx.client.user.all_allowed() && !ctx.client.is_master {
        if let Err(denied) = ctx.client.user.check(cmd, &argv) {
            let (server, now_ms) = (ctx.server, ctx.now_ms);
            crate::commands::acl::log_denial(server, ctx.client, now_ms, cmd, &argv, denied, "lua");
            let text = format!(
                "The user executing the script {}",
                crate::commands::acl::denial_message(denied)
            );
            return rejected(lua, server, Some(cmd), &text);
        }
    }
    if state.read_only && cmd.spec.has(flag::WRITE | flag::MAY_REPLICATE) {
        return rejected(
            lua,
            server,
            Some(cmd),
            "Write commands are not allowed from read-only scripts.",
        );
    }
    if state.deny_oom && !WRITE_DIRTY.load(Relaxed) && cmd.spec.has(flag::DENYOOM) {
        return rejected(
            lua,
            server,
            Some(cmd),
            "-OOM command not allowed when used memory > 'maxmemory'.",
        );
    }
    if cmd.spec.has(flag::WRITE) && !WRITE_DIRTY.load(Relaxed) {
        // Once a script has written it must finish: only its first write can be refused.
        if let Some(e) = dispatch::script_write_refusal(ctx.server, ctx.client, ctx.now_ms) {
            return rejected(lua, server, Some(cmd), &format!("-{}", e.text()));
        }
    }
    if cmd.spec.has(flag::WRITE) {
        WRITE_DIRTY.store(true, Relaxed);
    }
    if state.cluster && !state.allow_cross_slot {
        for i in key_positions(cmd.spec, &argv) {
            let slot = crate::slot::key_slot(&argv[i]);
            match state.slot {
                None => state.slot = Some(slot),
                Some(s) if s != slot => {
                    return rejected(
                        lua,
                        server,
                        Some(cmd),
                        "Script attempted to access keys that do not hash to the same slot",
                    )
                }
                Some(_) => {}
            }
        }
    }
    let resp3 = private.raw_get::<i64>("resp")? == 3;
    let repl = private.raw_get::<i64>("repl")?;
    let caller_resp3 = ctx.client.resp3;
    ctx.client.resp3 = resp3;
    if !cmd.spec.has(flag::SKIP_MONITOR | flag::ADMIN) {
        super::feed_monitors(ctx, "lua", &argv);
    }
    let before = ctx.effects.propagate.len();
    let reply = dispatch::call(ctx, cmd, &argv);
    ctx.client.resp3 = caller_resp3;
    if repl == 0 {
        ctx.effects.propagate.truncate(before);
    }
    let stats = &server.command_stats[cmd.id];
    stats.calls.fetch_add(1, Relaxed);
    server.stats.total_commands_processed.fetch_add(1, Relaxed);
    if let Reply::Error(e) = &reply {
        stats.failed_calls.fetch_add(1, Relaxed);
        server.count_error(e.code());
    }
    let failed = reply.is_error();
    Ok((convert::reply_to_lua(lua, &reply, resp3)?, failed))
}

/// `redis.acl_check_cmd`: whether the user running the script may run the command with these
/// arguments. Returns (answer or error table, known).
fn acl_check(lua: &Lua, args: &[Value]) -> mlua::Result<(Value, bool)> {
    if args.is_empty() {
        let (v, _) = error_value(
            lua,
            "Please specify at least one argument for this redis lib call",
            false,
        )?;
        return Ok((v, false));
    }
    let Some(argv) = args
        .iter()
        .map(convert::lua_arg)
        .collect::<Option<Vec<Bytes>>>()
    else {
        let (v, _) = error_value(
            lua,
            "Lua redis lib command arguments must be strings or integers",
            false,
        )?;
        return Ok((v, false));
    };
    match CommandTable::get().lookup(&argv) {
        Lookup::Found(cmd) => {
            let allowed = RUN_USER.with(|u| {
                u.borrow()
                    .as_ref()
                    .is_none_or(|user| user.all_allowed() || user.check(cmd, &argv).is_ok())
            });
            Ok((Value::Boolean(allowed), true))
        }
        _ => {
            let (v, _) = error_value(
                lua,
                "Invalid command passed to redis.acl_check_cmd()",
                false,
            )?;
            Ok((v, false))
        }
    }
}

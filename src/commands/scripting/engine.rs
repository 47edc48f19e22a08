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
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
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
            Ok(mlua::VmState::Continue)
        })?;
        Ok(Engine {
            lua,
            generation,
            private,
            env,
            globals,
            functions: HashMap::new(),
        })
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
        let f = match self.function(run.sha, run.script) {
            Ok(f) => f,
            Err(msg) => {
                return RunOutcome::error(format!(
                    "ERR Error compiling script (new function): {msg}"
                ))
            }
        };
        let prepared = (|| -> mlua::Result<Function> {
            self.env.raw_set("KEYS", self.strings(run.keys)?)?;
            self.env.raw_set("ARGV", self.strings(run.argv)?)?;
            self.private.raw_set("resp", 2)?;
            self.private.raw_set("repl", 3)?;
            self.private.raw_get("run")
        })();
        let runner = match prepared {
            Ok(r) => r,
            Err(e) => return RunOutcome::error(format!("ERR {e}")),
        };
        KILL.store(false, Relaxed);
        WRITE_DIRTY.store(false, Relaxed);
        STARTED_MS.store(ctx.now_ms, Relaxed);
        RUNNING.store(true, Relaxed);
        let saved = (
            ctx.client.db,
            ctx.client.resp3,
            ctx.deny_blocking,
            ctx.in_script,
        );
        ctx.deny_blocking = true;
        ctx.in_script = true;
        let mut state = CallState {
            read_only: run.read_only,
            allow_cross_slot: run.allow_cross_slot,
            cluster: run.cluster,
            deny_oom: run.deny_oom,
            slot: None,
        };
        let private = self.private.clone();
        let result = self.lua.scope(|scope| {
            let call = scope.create_function_mut(|lua, args: Table| {
                script_call(lua, ctx, &mut state, &private, &args)
            })?;
            self.lua.set_named_registry_value(CALL_IMPL, call)?;
            let (ok, value): (bool, Value) = runner.call(f)?;
            let resp3 = private.raw_get::<i64>("resp")? == 3;
            Ok(if ok {
                let r = convert::lua_to_reply(&value, resp3);
                RunOutcome {
                    reply: r.reply,
                    error_counted: r.error_counted,
                }
            } else {
                self.failure(run.sha, value)
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

/// One script invocation.
pub struct Run<'a> {
    pub sha: &'a str,
    pub script: &'a Script,
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

/// The BUSY refusal other clients get while a script has run longer than
/// `busy-reply-threshold` (commands flagged allow-busy, like SCRIPT KILL, still run).
pub fn check_busy(server: &ServerState, cmd: &Command, now_us: u64) -> Result<(), ErrorReply> {
    if !RUNNING.load(Relaxed) || cmd.spec.has(flag::ALLOW_BUSY) {
        return Ok(());
    }
    let threshold = server.config().busy_reply_threshold;
    let elapsed = (now_us / 1000).saturating_sub(STARTED_MS.load(Relaxed));
    if threshold > 0 && elapsed >= threshold as u64 {
        return Err(ErrorReply::fixed(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        ));
    }
    Ok(())
}

/// Whether a script is running right now.
pub fn script_running() -> bool {
    RUNNING.load(Relaxed)
}

/// SCRIPT KILL.
pub fn kill(_server: &ServerState) -> Result<Reply, ErrorReply> {
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
    if cmd.spec.has(flag::NOSCRIPT) {
        return rejected(
            lua,
            server,
            Some(cmd),
            "This Redis command is not allowed from script",
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

/// `redis.acl_check_cmd`: every user may run every command here (no ACL rules), so the
/// answer is true for any known command. Returns (answer or error table, known).
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
        Lookup::Found(_) => Ok((Value::Boolean(true), true)),
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

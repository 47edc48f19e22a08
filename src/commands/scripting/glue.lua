-- ferrodis script environment, run once per Lua state before any user script.
-- Receives the state's original globals and a private table shared with the Rust side.
-- Builds the `redis` API, replaces pcall and math.random, and returns the protected
-- globals table user scripts run against: reading an undeclared global or writing any
-- global (or a field of a library table) raises an error, as Redis 7.0 does.
local G, priv = ...

local type, tostring, tonumber, select, error = G.type, G.tostring, G.tonumber, G.select, G.error
local raw_pcall, raw_setmetatable, raw_getmetatable = G.pcall, G.setmetatable, G.getmetatable
local raw_rawset, raw_rawget, raw_next, raw_pairs, raw_ipairs = G.rawset, G.rawget, G.next, G.pairs, G.ipairs
local getinfo = G.debug.getinfo
local floor, ceil = G.math.floor, G.math.ceil
local concat = G.table.concat

local READONLY = 'Attempt to modify a readonly table'
local GLUE = '@__ferrodis_glue__'

-- proxy -> the table it guards
local real_of = raw_setmetatable({}, { __mode = 'k' })

-- "source:line: " of the nearest user frame above the caller, for errors that Redis raises
-- from C with the position of the Lua code that called it.
local function user_position()
    local level = 3
    local info = getinfo(level, 'Sl')
    while info and (info.source == GLUE or info.what == 'C' or info.what == 'tail') do
        level = level + 1
        info = getinfo(level, 'Sl')
    end
    if info and info.currentline > 0 then
        return info.short_src .. ':' .. info.currentline .. ': '
    end
    return ''
end

local function refuse_write()
    error(user_position() .. READONLY, 0)
end

-- Runs a Lua function behind a C function: a tail call to it then keeps the caller's frame,
-- so errors still point at the user's line as with Redis's C implementations.
local wrap = priv.c_wrap

local function protect(t)
    local proxy = {}
    raw_setmetatable(proxy, { __index = t, __newindex = refuse_write, __metatable = false })
    real_of[proxy] = t
    return proxy
end

-- Error handler for a script run: records where the error happened, skipping the C
-- function that raised it and this file's wrappers, so the user's line is reported.
function priv.handler(err)
    local level = 2
    local info = getinfo(level, 'nSl')
    if info and info.what == 'C' then
        level = level + 1
        info = getinfo(level, 'nSl')
    end
    while info and (info.source == GLUE or info.what == 'C' or info.what == 'tail') do
        level = level + 1
        info = getinfo(level, 'nSl')
    end
    if type(err) ~= 'table' then
        err = { err = 'ERR ' .. tostring(err) }
    end
    if info then
        raw_rawset(err, 'source', info.source)
        raw_rawset(err, 'line', info.currentline)
    end
    return err
end

-- Runs a script (no arguments: EVAL's keys are globals) or a function (keys, args).
function priv.run(f, keys, args)
    if keys == nil then
        return G.xpcall(f, priv.handler)
    end
    return G.xpcall(function() return f(keys, args) end, priv.handler)
end

-- Runs a library's code in load mode (priv.loading set by the Rust side): no handler, the
-- error value is reported as Redis's luaEngineCreate does.
function priv.load_run(f)
    priv.loading.list = {}
    priv.loading.names = {}
    return G.pcall(f)
end

-- the redis API ---------------------------------------------------------------------------
local redis = {}

local function fail(msg)
    error({ err = msg })
end

-- C functions (see engine.rs), so that a failing call in tail position still reports the
-- caller's line, as Redis's C implementation does.
redis.call = priv.c_call
redis.pcall = priv.c_pcall

function redis.sha1hex(...)
    if select('#', ...) ~= 1 then
        fail('ERR wrong number of arguments')
    end
    return priv.sha1hex((...))
end

function redis.error_reply(...)
    local e = ...
    if select('#', ...) ~= 1 or type(e) ~= 'string' then
        return { err = 'ERR wrong number or type of arguments' }
    end
    if G.string.sub(e, 1, 1) ~= '-' then
        e = '-' .. e
    end
    return { err = priv.error_text(e) }
end

function redis.status_reply(...)
    local s = ...
    if select('#', ...) ~= 1 or type(s) ~= 'string' then
        return { err = 'ERR wrong number or type of arguments' }
    end
    return { ok = s }
end

local function truncate(n)
    if n >= 0 then return floor(n) end
    return ceil(n)
end

function redis.log(...)
    local argc = select('#', ...)
    if argc < 2 then
        fail('ERR redis.log() requires two arguments or more.')
    end
    local level = tonumber((...))
    if level == nil then
        fail('ERR First argument must be a number (log level).')
    end
    level = truncate(level)
    if level < 0 or level > 3 then
        fail('ERR Invalid debug level.')
    end
    local parts = {}
    for i = 2, argc do
        local v = select(i, ...)
        local t = type(v)
        if t == 'string' or t == 'number' then
            parts[#parts + 1] = tostring(v)
        end
    end
    priv.log(level, concat(parts, ' '))
end

redis.LOG_DEBUG = 0
redis.LOG_VERBOSE = 1
redis.LOG_NOTICE = 2
redis.LOG_WARNING = 3

redis.REDIS_VERSION = '7.0.15'
redis.REDIS_VERSION_NUM = 458767

function redis.setresp(...)
    if select('#', ...) ~= 1 then
        fail('ERR redis.setresp() requires one argument.')
    end
    local resp = truncate(tonumber((...)) or 0)
    if resp ~= 2 and resp ~= 3 then
        fail('ERR RESP version must be 2 or 3.')
    end
    priv.resp = resp
end

redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3

function redis.set_repl(...)
    if select('#', ...) ~= 1 then
        fail('ERR redis.set_repl() requires two arguments.')
    end
    local flags = truncate(tonumber((...)) or 0)
    if flags < 0 or flags > 3 then
        fail('ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
    end
    priv.repl = flags
end

function redis.replicate_commands()
    return true
end

function redis.breakpoint()
    return false
end

function redis.debug()
end

function redis.acl_check_cmd(...)
    local ok, known = priv.acl_check(...)
    if not known then
        error(ok)
    end
    return ok
end

-- math.random and math.randomseed on the server's own generator ---------------------------
local function bad_arg(n, fname, msg)
    error(user_position() .. "bad argument #" .. n .. " to '" .. fname .. "' (" .. msg .. ")", 0)
end

local function check_int(n, fname, v)
    local x = tonumber(v)
    if x == nil then
        local got = (v == nil) and 'no value' or type(v)
        bad_arg(n, fname, 'number expected, got ' .. got)
    end
    return truncate(x)
end

local math_lib = {}
for k, v in raw_pairs(G.math) do
    math_lib[k] = v
end

function math_lib.random(...)
    local argc = select('#', ...)
    local r = priv.rand()
    if argc == 0 then
        return r
    elseif argc == 1 then
        local u = check_int(1, 'random', (...))
        if u < 1 then
            bad_arg(1, 'random', 'interval is empty')
        end
        return floor(r * u) + 1
    elseif argc == 2 then
        local l = check_int(1, 'random', (...))
        local u = check_int(2, 'random', (select(2, ...)))
        if l > u then
            bad_arg(2, 'random', 'interval is empty')
        end
        return floor(r * (u - l + 1)) + l
    end
    error(user_position() .. 'wrong number of arguments', 0)
end

function math_lib.randomseed(...)
    priv.srand(check_int(1, 'randomseed', (...)))
end

-- builtins that must see through the protection proxies ------------------------------------
local function unwrap(f)
    return function(...)
        local t = ...
        local real = real_of[t]
        if real ~= nil then
            return f(real, select(2, ...))
        end
        return f(...)
    end
end

local function refuse_if_protected(f)
    return function(...)
        if real_of[(...)] ~= nil then
            error(READONLY, 0)
        end
        return f(...)
    end
end

local function redis_pcall_builtin(ok, ...)
    if ok then
        return true, ...
    end
    local e = ...
    if priv.killed() then
        error(e, 0)
    end
    if type(e) == 'table' then
        local m = e.err
        if type(m) == 'string' or type(m) == 'number' then
            return false, m
        end
    end
    return false, e
end

-- cjson and cmsgpack: the Rust functions answer (ok, ...) or (false, message); raise like
-- their C versions do, with the caller's position
local function raise_or_return(ok, ...)
    if not ok then
        error(user_position() .. (...), 0)
    end
    return ...
end

local function raising(raw)
    local lib = {}
    for k, v in raw_pairs(raw) do
        if type(v) == 'function' then
            lib[k] = wrap(function(...)
                return raise_or_return(v(...))
            end)
        else
            lib[k] = v
        end
    end
    return lib
end
priv.cjson = raising(priv.cjson_raw)
priv.cmsgpack = raising(priv.cmsgpack_raw)

-- the globals scripts see --------------------------------------------------------------------
local env = {}
local globals_meta = {}
local globals = {}

local allowed = {
    'xpcall', 'tostring', 'getfenv', 'tonumber', 'rawequal', 'collectgarbage', 'coroutine',
    'type', 'select', 'unpack', 'gcinfo', '_VERSION', 'setfenv', 'error',
    'newproxy', 'assert',
}
for _, name in raw_ipairs(allowed) do
    env[name] = G[name]
end
env.pcall = function(...) return redis_pcall_builtin(raw_pcall(...)) end

-- Redis's Lua refuses precompiled chunks: they are parsed as text, and fail on their first
-- byte (ESC). Everything else loads as usual.
local raw_loadstring, sbyte, sfind, ssub = G.loadstring, G.string.byte, G.string.find, G.string.sub
local function chunk_id(name)
    local first = ssub(name, 1, 1)
    if first == '=' or first == '@' then
        return ssub(name, 2)
    end
    -- Lua reads the name as a C string: it ends at the first NUL; a line break cuts it too.
    local stop = sfind(name, '[%z\r\n]')
    local text = stop and ssub(name, 1, stop - 1) or name
    if (stop and sbyte(name, stop) ~= 0) or #text > 45 then
        text = ssub(text, 1, 45) .. '...'
    end
    return '[string "' .. text .. '"]'
end
local function binary_refused(code, name)
    return nil, chunk_id(name) .. ":1: unexpected symbol near 'char(27)'"
end
env.loadstring = function(...)
    local code, name = ...
    if type(code) == 'string' and sbyte(code, 1) == 27 then
        return binary_refused(code, name or code)
    end
    return raw_loadstring(...)
end
env.load = function(...)
    local reader, name = ...
    if type(reader) ~= 'function' then
        return G.load(...)
    end
    local parts = {}
    while true do
        local piece = reader()
        if piece == nil or piece == '' then
            break
        end
        if type(piece) ~= 'string' then
            return nil, 'reader function must return a string'
        end
        parts[#parts + 1] = piece
    end
    local code = concat(parts)
    name = name or '=(load)'
    if sbyte(code, 1) == 27 then
        return binary_refused(code, name)
    end
    return raw_loadstring(code, name)
end
env.setmetatable = refuse_if_protected(raw_setmetatable)
env.rawset = refuse_if_protected(raw_rawset)
env.rawget = unwrap(raw_rawget)
env.next = unwrap(raw_next)
env.pairs = unwrap(raw_pairs)
env.ipairs = unwrap(raw_ipairs)
env.getmetatable = function(...)
    local t = ...
    if t == globals then
        return protect(globals_meta)
    end
    local real = real_of[t]
    if real ~= nil then
        return raw_getmetatable(real)
    end
    return raw_getmetatable(...)
end

for _, t in raw_ipairs({ redis, math_lib }) do
    for k, v in raw_pairs(t) do
        if type(v) == 'function' and v ~= priv.c_call and v ~= priv.c_pcall and G.math[k] ~= v then
            t[k] = wrap(v)
        end
    end
end
for _, name in raw_ipairs({ 'pcall', 'loadstring', 'load', 'setmetatable', 'rawset', 'rawget', 'next', 'pairs', 'ipairs', 'getmetatable' }) do
    env[name] = wrap(env[name])
end

env.string = protect(G.string)
env.table = protect(G.table)
env.math = protect(math_lib)
env.coroutine = protect(G.coroutine)
for _, lib in raw_ipairs({ 'bit', 'cjson', 'cmsgpack', 'struct' }) do
    if priv[lib] ~= nil then
        env[lib] = protect(priv[lib])
    end
end
env.redis = protect(redis)
env._G = globals

globals_meta.__newindex = refuse_write
globals_meta.__metatable = false
raw_setmetatable(globals, globals_meta)
real_of[globals] = env

-- the library load environment -----------------------------------------------------------
local FLAG_NAMES = { 'no-writes', 'allow-oom', 'allow-stale', 'no-cluster', 'allow-cross-slot-keys' }
local lower = G.string.lower

local function reg_fail(msg)
    error({ err = 'ERR ' .. msg })
end

local function is_str(v)
    local t = type(v)
    return t == 'string' or t == 'number'
end

local function read_flags(t, flags)
    local i = 1
    while true do
        local f = t[i]
        if f == nil then
            return
        end
        if not is_str(f) then
            reg_fail('unknown flag given')
        end
        local name = lower(tostring(f))
        local known = false
        for _, n in raw_ipairs(FLAG_NAMES) do
            if n == name then
                flags[n] = true
                known = true
                break
            end
        end
        if not known then
            reg_fail('unknown flag given')
        end
        i = i + 1
    end
end

local function register_function(...)
    local loading = priv.loading
    if loading == nil then
        reg_fail('redis.register_function can only be called on FUNCTION LOAD command')
    end
    local argc = select('#', ...)
    if argc < 1 or argc > 2 then
        reg_fail('wrong number of arguments to redis.register_function')
    end
    local name, desc, callback
    local flags = {}
    if argc == 1 then
        local t = ...
        if type(t) ~= 'table' then
            reg_fail('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
        end
        for k, v in raw_next, t do
            if not is_str(k) then
                reg_fail('named argument key given to redis.register_function is not a string')
            end
            local key = lower(tostring(k))
            if key == 'function_name' then
                if not is_str(v) then
                    reg_fail('function_name argument given to redis.register_function must be a string')
                end
                name = tostring(v)
            elseif key == 'description' then
                if not is_str(v) then
                    reg_fail('description argument given to redis.register_function must be a string')
                end
                desc = tostring(v)
            elseif key == 'callback' then
                if type(v) ~= 'function' then
                    reg_fail('callback argument given to redis.register_function must be a function')
                end
                callback = v
            elseif key == 'flags' then
                if type(v) ~= 'table' then
                    reg_fail('flags argument to redis.register_function must be a table representing function flags')
                end
                read_flags(v, flags)
            else
                reg_fail('unknown argument given to redis.register_function')
            end
        end
        if name == nil then
            reg_fail('redis.register_function must get a function name argument')
        end
        if callback == nil then
            reg_fail('redis.register_function must get a callback argument')
        end
    else
        local n, f = ...
        if not is_str(n) then
            reg_fail('first argument to redis.register_function must be a string')
        end
        if type(f) ~= 'function' then
            reg_fail('second argument to redis.register_function must be a function')
        end
        name, callback = tostring(n), f
    end
    if name == '' or sfind(name, '^[%w_]+$') == nil then
        reg_fail('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
    end
    if loading.names[name] then
        reg_fail('Function already exists in the library')
    end
    loading.names[name] = true
    local entry = { name = name, description = desc, callback = callback }
    for n in raw_pairs(flags) do
        entry[n] = true
    end
    loading.list[#loading.list + 1] = entry
end

local lib_redis = {
    register_function = wrap(register_function),
    log = redis.log,
    LOG_DEBUG = redis.LOG_DEBUG,
    LOG_VERBOSE = redis.LOG_VERBOSE,
    LOG_NOTICE = redis.LOG_NOTICE,
    LOG_WARNING = redis.LOG_WARNING,
    REDIS_VERSION = redis.REDIS_VERSION,
    REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}
local function nonexistent(name)
    error(user_position() .. "Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 0)
end
local lib_redis_proxy = raw_setmetatable({}, {
    __index = function(_, name)
        local v = lib_redis[name]
        if v == nil then
            nonexistent(name)
        end
        return v
    end,
    __newindex = refuse_write,
    __metatable = false,
})
real_of[lib_redis_proxy] = lib_redis
local load_env = { redis = lib_redis_proxy }

globals_meta.__index = function(_, name)
    local v
    if priv.loading ~= nil then
        v = load_env[name]
    else
        v = env[name]
    end
    if v == nil then
        nonexistent(name)
    end
    return v
end

priv.env = env
return globals

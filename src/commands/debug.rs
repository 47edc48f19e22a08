//! DEBUG and MEMORY. DEBUG is Redis 7.0's single command that reads its subcommand from the
//! first argument itself (no subcommand table), so unknown or mis-sized subcommands get
//! `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try DEBUG HELP.` from
//! here rather than from dispatch. It covers what Redis's test suite leans on: SLEEP (which
//! freezes the whole server, as Redis's single thread does), SET-ACTIVE-EXPIRE, OBJECT,
//! POPULATE, DIGEST / DIGEST-VALUE (SHA-1 based and built like Redis's, so a dataset digests to
//! the same 40 hex characters on both servers), PROTOCOL (the RESP3 sample replies), LOG,
//! CHANGE-REPL-ID and the knobs tests flip (PAUSE-CRON, REPLYBUFFER, ...). Subcommands that
//! need machinery this server does not have yet (RELOAD, LOADAOF, cluster links) answer with
//! the unknown-subcommand error rather than a pretended OK.
//!
//! MEMORY is a container: USAGE estimates a key from this server's own representation (entry
//! node, index slot, key and value heap), STATS returns Redis's field list with the figures
//! we track, DOCTOR, MALLOC-STATS and PURGE talk to jemalloc.

use super::context::ExecCtx;
use super::errors;
use super::spec::{flag::*, kflag, CmdResult, CommandSpec as C, KeySpec, Scope};
use crate::config::MaxmemoryPolicy;
use crate::keyspace::{Entry, Locked, StrValue, Value};
use crate::resp::{ErrorReply, Reply};
use crate::slot::SLOT_COUNT;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

const NONDETERMINISTIC_SPECIAL: &[&str] = &[
    "nondeterministic_output",
    "request_policy:all_shards",
    "response_policy:special",
];

const MEMORY_USAGE_KEY: &[KeySpec] = &[KeySpec::single(2, kflag::RO)];

const MEMORY_SUBCOMMANDS: &[C] = &[
    C::new("doctor", 2, 0, 0, &[], "server", "4.0.0", memory_doctor).tips(NONDETERMINISTIC_SPECIAL),
    C::new(
        "help",
        2,
        LOADING | STALE,
        0,
        &[],
        "server",
        "4.0.0",
        memory_help,
    ),
    C::new(
        "malloc-stats",
        2,
        0,
        0,
        &[],
        "server",
        "4.0.0",
        memory_malloc_stats,
    )
    .tips(NONDETERMINISTIC_SPECIAL),
    C::new("purge", 2, 0, 0, &[], "server", "4.0.0", memory_purge)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"]),
    C::new("stats", 2, 0, 0, &[], "server", "4.0.0", memory_stats)
        .scope(Scope::All)
        .tips(NONDETERMINISTIC_SPECIAL),
    C::new(
        "usage",
        -3,
        READONLY,
        0,
        MEMORY_USAGE_KEY,
        "server",
        "4.0.0",
        memory_usage,
    ),
];

pub const COMMANDS: &[C] = &[
    // Every shard is held: OBJECT, POPULATE and DIGEST walk or change any key, and SLEEP must
    // stop every client as Redis's single thread does.
    C::new(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        0,
        &[],
        "server",
        "1.0.0",
        debug,
    )
    .scope(Scope::All),
    C::new("memory", -2, 0, 0, &[], "server", "4.0.0", memory_container)
        .subcommands(MEMORY_SUBCOMMANDS),
];

/// Server-wide switches DEBUG flips for tests; other parts of the server read them.
#[derive(Debug)]
pub struct DebugFlags {
    /// DEBUG PAUSE-CRON: the cron skips its work while set.
    pub pause_cron: AtomicBool,
    /// DEBUG SET-SKIP-CHECKSUM-VALIDATION: RDB loading and RESTORE skip the CRC64 check.
    pub skip_checksum_validation: AtomicBool,
    /// DEBUG QUICKLIST-PACKED-THRESHOLD: list elements this large get a plain node.
    pub quicklist_packed_threshold_bytes: AtomicU64,
    /// DEBUG REPLYBUFFER PEAK-RESET-TIME (-1 = never reset).
    pub reply_buffer_peak_reset_time_ms: AtomicI64,
    /// DEBUG REPLYBUFFER RESIZING.
    pub reply_buffer_resizing: AtomicBool,
    /// DEBUG AOF-FLUSH-SLEEP: pause before each AOF flush.
    pub aof_flush_sleep_us: AtomicI64,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS: let scripts call commands flagged noscript.
    pub disable_deny_scripts: AtomicBool,
    /// DEBUG DROP-CLUSTER-PACKET-FILTER: bus messages of this type are dropped on arrival
    /// (-1: none).
    pub cluster_drop_packet_filter: AtomicI64,
}

/// Redis's default quicklist packed threshold (1 GiB).
pub const QUICKLIST_PACKED_THRESHOLD_DEFAULT: u64 = 1 << 30;
/// Redis's REPLY_BUFFER_DEFAULT_PEAK_RESET_TIME.
pub const REPLY_BUFFER_PEAK_RESET_TIME_DEFAULT_MS: i64 = 5000;

impl Default for DebugFlags {
    fn default() -> Self {
        DebugFlags {
            pause_cron: AtomicBool::new(false),
            skip_checksum_validation: AtomicBool::new(false),
            quicklist_packed_threshold_bytes: AtomicU64::new(QUICKLIST_PACKED_THRESHOLD_DEFAULT),
            reply_buffer_peak_reset_time_ms: AtomicI64::new(
                REPLY_BUFFER_PEAK_RESET_TIME_DEFAULT_MS,
            ),
            reply_buffer_resizing: AtomicBool::new(true),
            aof_flush_sleep_us: AtomicI64::new(0),
            disable_deny_scripts: AtomicBool::new(false),
            cluster_drop_packet_filter: AtomicI64::new(-1),
        }
    }
}

// ---- DEBUG ----

/// Redis's `addReplyHelp`: a header naming the command as typed, the lines, a HELP footer.
pub(crate) fn help_reply(command: &[u8], lines: &[&'static str]) -> Reply {
    let header = format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        String::from_utf8_lossy(command).to_ascii_uppercase()
    );
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Reply::status(header));
    out.extend(lines.iter().map(|l| Reply::simple(l)));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: the options checked here; the server saves the
/// snapshot to `dbfilename` (unless NOSAVE) and loads that file back (`rdb_load::debug_reload`),
/// so every value and library takes the round trip a restart would give it.
fn debug_reload(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let (mut flush, mut save, mut merge) = (true, true, false);
    for opt in &args[2..] {
        match opt.to_ascii_lowercase().as_slice() {
            b"merge" => merge = true,
            b"noflush" => flush = false,
            b"nosave" => save = false,
            _ => {
                return Err(ErrorReply::fixed(
                    "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                ))
            }
        }
    }
    ctx.effects.request().persistence =
        Some(super::context::PersistenceRequest::Reload { save, flush, merge });
    Ok(Reply::OK)
}

fn debug(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_lowercase();
    let argc = args.len();
    match (sub.as_slice(), argc) {
        (b"help", 2) => Ok(help_reply(&args[0], DEBUG_HELP)),
        (b"log", 3) => {
            crate::log_at!(Warning, "DEBUG LOG: {}", c_string(&args[2]));
            Ok(Reply::OK)
        }
        // Redis leaks a copy of the argument; there is nothing to learn from leaking here.
        (b"leak", 3) => Ok(Reply::OK),
        (b"object", 3) => debug_object(ctx, &args[2]),
        (b"htstats-key", 3) => debug_htstats_key(ctx, &args[2]),
        (b"htstats", 3) => debug_htstats(ctx, &args[2]),
        (b"reload", _) => debug_reload(ctx, args),
        (b"loadaof", 2) => {
            ctx.effects.request().persistence = Some(super::context::PersistenceRequest::LoadAof);
            Ok(Reply::OK)
        }
        (b"populate", 3..=5) => debug_populate(ctx, args),
        (b"digest", 2) => Ok(Reply::status(hex(&dataset_digest(ctx)))),
        (b"digest-value", _) => Ok(debug_digest_value(ctx, &args[2..])),
        (b"protocol", 3) => debug_protocol(ctx, &args[2]),
        (b"sleep", 3) => {
            debug_sleep(&args[2]);
            Ok(Reply::OK)
        }
        (b"set-active-expire", 3) => {
            let on = atoi(&args[2]) != 0;
            ctx.server.active_expire_enabled.store(on, Relaxed);
            Ok(Reply::OK)
        }
        (b"quicklist-packed-threshold", 3) => debug_packed_threshold(ctx, &args[2]),
        (b"set-skip-checksum-validation", 3) => {
            let flags = &ctx.server.debug;
            flags
                .skip_checksum_validation
                .store(atoi(&args[2]) != 0, Relaxed);
            Ok(Reply::OK)
        }
        (b"aof-flush-sleep", 3) => {
            let flags = &ctx.server.debug;
            flags.aof_flush_sleep_us.store(atoi(&args[2]), Relaxed);
            Ok(Reply::OK)
        }
        (b"set-disable-deny-scripts", 3) => {
            let flags = &ctx.server.debug;
            flags
                .disable_deny_scripts
                .store(atoi(&args[2]) != 0, Relaxed);
            Ok(Reply::OK)
        }
        (b"error", 3) => Err(ErrorReply::owned(one_line(&args[2]))),
        (b"change-repl-id", 2) => {
            crate::log_at!(
                Warning,
                "Changing replication IDs after receiving DEBUG change-repl-id"
            );
            *ctx.server.replid.lock() = crate::server::random_hex_40();
            Ok(Reply::OK)
        }
        (b"stringmatch-test", 2) => {
            stringmatch_fuzz(ctx.now_us);
            Ok(Reply::simple("Apparently Redis did not crash: test passed"))
        }
        (b"pause-cron", 3) => {
            let flags = &ctx.server.debug;
            flags.pause_cron.store(atoi(&args[2]) != 0, Relaxed);
            Ok(Reply::OK)
        }
        (b"replybuffer", 4) => debug_replybuffer(ctx, args),
        (b"drop-cluster-packet-filter", 3) => {
            let packet_type = crate::util::parse_int(&args[2]).ok_or(errors::NOT_INTEGER)?;
            let flags = &ctx.server.debug;
            flags.cluster_drop_packet_filter.store(packet_type, Relaxed);
            Ok(Reply::OK)
        }
        (b"clusterlink", 5) if args[2].eq_ignore_ascii_case(b"kill") => {
            super::cluster::debug_clusterlink_kill(ctx, args)
        }
        _ => Err(errors::subcommand_syntax_error(args)),
    }
}

const DEBUG_HELP: &[&str] = &[
    "AOF-FLUSH-SLEEP <microsec>",
    "    Server will sleep before flushing the AOF, this is used for testing.",
    "ASSERT",
    "    Crash by assertion failed.",
    "CHANGE-REPL-ID",
    "    Change the replication IDs of the instance.",
    "    Dangerous: should be used only for testing the replication subsystem.",
    "CONFIG-REWRITE-FORCE-ALL",
    "    Like CONFIG REWRITE but writes all configuration options, including",
    "    keywords not listed in original configuration file or default values.",
    "CRASH-AND-RECOVER [<milliseconds>]",
    "    Hard crash and restart after a <milliseconds> delay (default 0).",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message. Useful for clients",
    "    unit tests to simulate Redis errors.",
    "LEAK <string>",
    "    Create a memory leak of the input string.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "HTSTATS <dbid>",
    "    Return hash table statistics of the specified Redis database.",
    "HTSTATS-KEY <key>",
    "    Like HTSTATS but for the hash table stored at <key>'s value.",
    "LOADAOF",
    "    Flush the AOF buffers on disk and reload the AOF in memory.",
    "REPLICATE <string>",
    "    Replicates the provided string to replicas, allowing data divergence.",
    "MALLCTL <key> [<val>]",
    "    Get or set a malloc tuning integer.",
    "MALLCTL-STR <key> [<val>]",
    "    Get or set a malloc tuning string.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "DROP-CLUSTER-PACKET-FILTER <packet-type>",
    "    Drop all packets that match the filtered type. Set to -1 allow all packets.",
    "OOM",
    "    Crash the server simulating an out-of-memory error.",
    "PANIC",
    "    Crash the server simulating a panic.",
    "POPULATE <count> [<prefix>] [<size>]",
    "    Create <count> string keys named key:<num>. If <prefix> is specified then",
    "    it is used instead of the 'key' prefix. These are not propagated to",
    "    replicas. Cluster slots are not respected so keys not belonging to the",
    "    current node can be created in cluster mode.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
    "    * MERGE: conflicting keys will be loaded from RDB.",
    "    * NOFLUSH: the existing database will not be removed before load, but",
    "      conflicting keys will generate an exception and kill the server.",
    "    * NOSAVE: the database will be loaded from an existing RDB file.",
    "    Examples:",
    "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
    "      the database.",
    "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
    "      existing RDB file.",
    "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
    "      file to the database.",
    "RESTART [<milliseconds>]",
    "    Graceful restart: save config, db, restart after a <milliseconds> delay (default 0).",
    "SDSLEN <key>",
    "    Show low level SDS string info representing `key` and value.",
    "SEGFAULT",
    "    Crash the server with sigsegv.",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Setting it to 0 disables expiring keys in background when they are not",
    "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
    "    default.",
    "QUICKLIST-PACKED-THRESHOLD <size>",
    "    Sets the threshold for elements to be inserted as plain vs packed nodes",
    "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
    "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
    "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
    "SLEEP <seconds>",
    "    Stop the server for <seconds>. Decimals allowed.",
    "STRINGMATCH-TEST",
    "    Run a fuzz tester against the stringmatchlen() function.",
    "STRUCTSIZE",
    "    Return the size of different Redis core C structures.",
    "LISTPACK <key>",
    "    Show low level info about the listpack encoding of <key>.",
    "QUICKLIST <key> [<0|1>]",
    "    Show low level info about the quicklist encoding of <key>.",
    "    The optional argument (0 by default) sets the level of detail",
    "CLIENT-EVICTION",
    "    Show low level client eviction pools info (maxmemory-clients).",
    "PAUSE-CRON <0|1>",
    "    Stop periodic cron job processing.",
    "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
    "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
    "    In case NEVER is provided the last observed peak will never be reset",
    "    In case RESET is provided the peak reset time will be restored to the default value",
    "REPLYBUFFER RESIZING <0|1>",
    "    Enable or disable the reply buffer resize cron job",
    "CLUSTERLINK KILL <to|from|all> <node-id>",
    "    Kills the link based on the direction to/from (both) with the provided node.",
];

/// C's `atoi`: optional blanks and sign, then as many digits as there are; 0 when none.
fn atoi(b: &[u8]) -> i64 {
    let mut rest = b.trim_ascii_start();
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let magnitude = rest
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |acc, &d| {
            acc.wrapping_mul(10).wrapping_add(i64::from(d - b'0'))
        });
    if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    }
}

/// C's `strtod` as DEBUG SLEEP uses it: the longest leading number, 0 when there is none.
fn strtod_prefix(b: &[u8]) -> f64 {
    let s = String::from_utf8_lossy(b.trim_ascii_start()).into_owned();
    let bytes = s.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        end = 1;
    }
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if bytes.get(end) == Some(&b'.') {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exp_end = end + 1;
        if matches!(bytes.get(exp_end), Some(b'-' | b'+')) {
            exp_end += 1;
        }
        let digits_from = exp_end;
        while exp_end < bytes.len() && bytes[exp_end].is_ascii_digit() {
            exp_end += 1;
        }
        if exp_end > digits_from {
            end = exp_end;
        }
    }
    s[..end].parse().unwrap_or(0.0)
}

/// The argument as C's `%s` prints it: up to the first NUL.
fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// An error text kept on one protocol line, as Redis maps CR and LF to spaces.
fn one_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// How long DEBUG SLEEP stops for: `strtod` of the argument, in whole microseconds as Redis
/// rounds it; nothing for zero or negative values.
fn sleep_duration(arg: &[u8]) -> Option<std::time::Duration> {
    let micros = strtod_prefix(arg) * 1_000_000.0;
    (micros >= 1.0 && micros.is_finite()).then(|| std::time::Duration::from_micros(micros as u64))
}

/// Stops the whole server: the caller holds every shard, so every other client waits too.
fn debug_sleep(arg: &[u8]) {
    if let Some(pause) = sleep_duration(arg) {
        std::thread::sleep(pause);
    }
}

fn debug_packed_threshold(ctx: &mut ExecCtx, arg: &[u8]) -> CmdResult {
    const LIMIT: u64 = (1u64 << 32) - (1 << 20);
    let size = crate::config::lexer::memtoull(arg).filter(|&s| s <= LIMIT);
    let Some(size) = size else {
        return Err(ErrorReply::fixed(
            "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
        ));
    };
    let size = if size == 0 {
        QUICKLIST_PACKED_THRESHOLD_DEFAULT
    } else {
        size
    };
    let flags = &ctx.server.debug;
    flags.quicklist_packed_threshold_bytes.store(size, Relaxed);
    Ok(Reply::OK)
}

fn debug_replybuffer(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let flags = &ctx.server.debug;
    let (what, value) = (&args[2], &args[3]);
    if what.eq_ignore_ascii_case(b"peak-reset-time") {
        let ms = if value.eq_ignore_ascii_case(b"never") {
            -1
        } else if value.eq_ignore_ascii_case(b"reset") {
            REPLY_BUFFER_PEAK_RESET_TIME_DEFAULT_MS
        } else {
            ctx.int_arg(value)?
        };
        flags.reply_buffer_peak_reset_time_ms.store(ms, Relaxed);
    } else if what.eq_ignore_ascii_case(b"resizing") {
        flags.reply_buffer_resizing.store(atoi(value) != 0, Relaxed);
    } else {
        return Err(errors::subcommand_syntax_error(args));
    }
    Ok(Reply::OK)
}

// ---- DEBUG OBJECT ----

/// Redis's LRU clock keeps 24 bits of seconds.
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Redis's OBJ_SHARED_INTEGERS and OBJ_SHARED_REFCOUNT.
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;

/// DEBUG HTSTATS-KEY: the shape of the hash table behind a set, hash or sorted set, in
/// Redis's `dictGetStats` layout. Our tables resize at once, so there is never a second
/// ("rehashing target") table to describe.
fn debug_htstats_key(ctx: &mut ExecCtx, key: &[u8]) -> CmdResult {
    let db = ctx.db();
    let now = ctx.now_ms;
    let entry = ctx.ks().peek(db, key).filter(|e| !e.is_expired(now));
    let Some(entry) = entry else {
        return Err(errors::NO_SUCH_KEY);
    };
    let stats = match &entry.value {
        Value::Set(set) => set.table_stats(),
        Value::Hash(hash) => hash.table_stats(),
        Value::ZSet(crate::keyspace::zset::Stored::Open(z)) => z.table_stats(),
        _ => None,
    };
    let Some(stats) = stats else {
        return Err(ErrorReply::fixed(
            "ERR The value stored at the specified key is not represented using an hash table",
        ));
    };
    let text = htstats_text(&stats);
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

/// DEBUG HTSTATS <dbid>: a database is one open-addressing table per slot, so the figures
/// are their sums: every key has a bucket of its own (chains one long). Expiry times live in
/// the same entries, so the expires "table" is those buckets again, with the keys that have
/// a TTL.
fn debug_htstats(ctx: &mut ExecCtx, arg: &[u8]) -> CmdResult {
    let db = crate::resp::decode::parse_i64(arg).ok_or(errors::NOT_INTEGER)?;
    let databases = ctx.server.keyspace.databases();
    let Some(db) = usize::try_from(db).ok().filter(|&d| d < databases) else {
        return Err(ErrorReply::fixed("ERR Out of range database"));
    };
    let ks = ctx.ks();
    let mut buckets = 0;
    for slot in 0..SLOT_COUNT {
        if let Some(table) = ks.slot_table_ref(db, slot as u16) {
            buckets += table.buckets();
        }
    }
    let one_each = |used: usize| {
        let used = used.min(buckets);
        crate::keyspace::value::TableStats::from_chains(
            buckets,
            std::iter::repeat_n(1, used).chain(std::iter::repeat_n(0, buckets - used)),
        )
    };
    let mut text = String::from("[Dictionary HT]\n");
    text.push_str(&htstats_text(&one_each(ks.db_size(db))));
    text.push_str("[Expires HT]\n");
    text.push_str(&htstats_text(&one_each(ks.db_expires(db))));
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

/// Redis keeps chain lengths up to this in its histogram; longer ones count in the last slot.
const HTSTATS_VECTLEN: usize = 50;

fn htstats_text(s: &crate::keyspace::value::TableStats) -> String {
    use std::fmt::Write;
    let mut o = String::from("Hash table 0 stats (main hash table):\n");
    if s.elements == 0 {
        o.push_str("No stats available for empty dictionaries\n");
        return o;
    }
    let mut vector = [0usize; HTSTATS_VECTLEN];
    for (len, &count) in s.chain_lengths.iter().enumerate() {
        vector[len.min(HTSTATS_VECTLEN - 1)] += count;
    }
    let slots = s.buckets - vector[0];
    let max_chain = s.chain_lengths.iter().rposition(|&c| c > 0).unwrap_or(0);
    let _ = write!(
        o,
        " table size: {}\n number of elements: {}\n different slots: {}\n max chain length: {}\n avg chain length (counted): {:.2}\n avg chain length (computed): {:.2}\n Chain length distribution:\n",
        s.buckets,
        s.elements,
        slots,
        max_chain,
        s.elements as f32 / slots as f32,
        s.elements as f32 / slots as f32,
    );
    for (len, &count) in vector.iter().enumerate().take(HTSTATS_VECTLEN - 1) {
        if count > 0 {
            let share = count as f32 / s.buckets as f32 * 100.0;
            let _ = writeln!(o, "   {len}: {count} ({share:.2}%)");
        }
    }
    o
}

/// The status line Redis builds from the object header; reads the key without expiring it.
fn debug_object(ctx: &mut ExecCtx, key: &[u8]) -> CmdResult {
    let db = ctx.db();
    let now_secs = ctx.lru_now();
    let config = ctx.server.config();
    let shared = config.maxmemory == 0
        || !matches!(
            config.maxmemory_policy,
            MaxmemoryPolicy::VolatileLru
                | MaxmemoryPolicy::AllkeysLru
                | MaxmemoryPolicy::VolatileLfu
                | MaxmemoryPolicy::AllkeysLfu
        );
    let Some(entry) = ctx.ks().peek(db, key) else {
        return Err(errors::NO_SUCH_KEY);
    };
    let refcount = match entry.value {
        Value::Str(StrValue::Int(i)) if shared && (0..SHARED_INTEGERS).contains(&i) => {
            SHARED_REFCOUNT
        }
        _ => 1,
    };
    let mut line = format!(
        "Value at:{:#x} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
        entry as *const Entry as usize,
        refcount,
        entry.value.encoding_name(),
        serialized_len(&entry.value, &config),
        entry.lru_secs & LRU_CLOCK_MAX,
        now_secs.saturating_sub(entry.lru_secs),
    );
    if let Value::List(list) = &entry.value {
        if list.encoding_name() == "quicklist" {
            let model = QuicklistModel::of(list, &config);
            line.push_str(&format!(
                " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:{} ql_compressed:{} \
                 ql_uncompressed_size:{}",
                model.nodes.len(),
                list.items.len() as f64 / model.nodes.len() as f64,
                config.list_max_listpack_size,
                (config.list_compress_depth != 0) as u8,
                model.nodes.iter().sum::<usize>(),
            ));
        }
    }
    Ok(Reply::status(line))
}

/// Redis's `rdbSavedObjectLen`: the size the value takes in an RDB file, as the RDB writer
/// writes it (everything after the type byte).
fn serialized_len(value: &Value, config: &crate::config::Config) -> usize {
    use crate::persistence::rdb::encode::{Options, RdbWriter};
    // A DUMP payload is the type byte, the value, and a 10-byte footer.
    RdbWriter::dump_payload(value, Options::from_config(config)).len() - 11
}

/// How Redis 7.0 would split a list into quicklist nodes: listpacks filled up to
/// `list-max-listpack-size` (entries when positive, a byte class when negative).
struct QuicklistModel {
    /// Bytes of each node's listpack.
    nodes: Vec<usize>,
}

impl QuicklistModel {
    const LISTPACK_HEADER: usize = 6;
    const SAFETY_LIMIT: usize = 8192;

    fn of(list: &crate::keyspace::list::List, config: &crate::config::Config) -> Self {
        let fill = config.list_max_listpack_size;
        let byte_limit = match fill {
            f if f >= 0 => Self::SAFETY_LIMIT,
            -1 => 4096,
            -2 => 8192,
            -3 => 16384,
            -4 => 32768,
            _ => 65536,
        };
        let (mut nodes, mut bytes, mut count) = (Vec::new(), Self::LISTPACK_HEADER + 1, 0i64);
        for item in &list.items {
            let entry = crate::persistence::rdb::listpack::element_len(item);
            let full = if fill >= 0 {
                count >= fill.max(1) || bytes + entry > byte_limit
            } else {
                bytes + entry > byte_limit
            };
            if count > 0 && full {
                nodes.push(bytes);
                (bytes, count) = (Self::LISTPACK_HEADER + 1, 0);
            }
            bytes += entry;
            count += 1;
        }
        if count > 0 || nodes.is_empty() {
            nodes.push(bytes);
        }
        QuicklistModel { nodes }
    }
}

// ---- DEBUG POPULATE ----

/// Redis's `getPositiveLongFromObjectOrReply`.
fn positive_arg(ctx: &ExecCtx, arg: &[u8]) -> Result<i64, ErrorReply> {
    let n = ctx.int_arg(arg)?;
    if n < 0 {
        return Err(ErrorReply::fixed(
            "ERR value is out of range, must be positive",
        ));
    }
    Ok(n)
}

/// Creates `prefix:0` .. `prefix:<count-1>` holding `value:<n>` (cut or zero-padded to
/// `size` when given), leaving existing keys alone. Not counted as changes, as in Redis.
fn debug_populate(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let count = positive_arg(ctx, &args[2])?;
    let size = match args.get(4) {
        Some(a) => positive_arg(ctx, a)? as usize,
        None => 0,
    };
    let prefix = match args.get(3) {
        Some(p) => &p[..p.iter().position(|&c| c == 0).unwrap_or(p.len())],
        None => &b"key"[..],
    };
    // Redis formats both into a 128-byte buffer: longer names are cut to 127 bytes.
    const NAME_MAX: usize = 127;
    let mut key = Vec::with_capacity(prefix.len().min(NAME_MAX) + 21);
    for j in 0..count as u64 {
        key.clear();
        key.extend_from_slice(prefix);
        key.push(b':');
        key.extend_from_slice(j.to_string().as_bytes());
        key.truncate(NAME_MAX);
        if ctx.lookup_write(&key).is_some() {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if size > 0 {
            value.resize(size, 0);
        }
        let value = if value.len() <= crate::keyspace::value::EMBSTR_SIZE_LIMIT {
            StrValue::embstr(&value)
        } else {
            StrValue::raw(value)
        };
        ctx.set_key(&key, Value::Str(value), false);
    }
    Ok(Reply::OK)
}

// ---- DEBUG DIGEST ----

type Digest = [u8; 20];

/// Redis's object type numbers, which its digests mix in.
fn rdb_object_type(value: &Value) -> u32 {
    match value {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// Folds `data` in without ordering: `digest ^= SHA1(data)`.
fn xor_digest(digest: &mut Digest, data: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(data)) {
        *d ^= h;
    }
}

/// Folds `data` in so that order matters: xor it in, then hash the result.
fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1(&digest[..]);
}

/// One value's digest (Redis's `xorObjectDigest`): its type, its contents (ordered for
/// lists, unordered for sets) and whether it has an expiry.
fn value_digest(digest: &mut Digest, entry: &Entry) {
    mix_digest(digest, &rdb_object_type(&entry.value).to_be_bytes());
    match &entry.value {
        Value::Str(s) => mix_digest(digest, &s.to_bytes()),
        Value::List(list) => {
            for item in &list.items {
                mix_digest(digest, item);
            }
        }
        Value::Set(set) => {
            for member in set.iter() {
                xor_digest(digest, &member);
            }
        }
        Value::Hash(hash) => {
            for (field, value) in hash.iter() {
                let mut element = [0u8; 20];
                mix_digest(&mut element, field);
                mix_digest(&mut element, value);
                xor_digest(digest, &element);
            }
        }
        Value::ZSet(zset) => {
            for (member, score) in zset.view().iter() {
                let mut element = [0u8; 20];
                mix_digest(&mut element, member);
                mix_digest(
                    &mut element,
                    crate::resp::reply::format_double_g17(score).as_bytes(),
                );
                xor_digest(digest, &element);
            }
        }
        Value::Stream(stream) => {
            let all = stream.range(
                crate::keyspace::stream::StreamId::MIN,
                crate::keyspace::stream::StreamId::MAX,
                false,
            );
            for (id, fields) in all {
                mix_digest(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for f in fields.iter() {
                    mix_digest(digest, f);
                }
            }
        }
    }
    if entry.expire_at_ms != 0 {
        xor_digest(digest, b"!!expire!!");
    }
}

/// Every slot table of `db`, logically expired keys included (DEBUG reads what is stored).
fn for_each_stored(ks: &mut Locked, db: usize, mut visit: impl FnMut(&[u8], &Entry)) {
    for slot in 0..SLOT_COUNT {
        if let Some(table) = ks.slot_table_ref(db, slot as u16) {
            for (key, entry) in table.iter() {
                visit(key, entry);
            }
        }
    }
}

/// Redis's `computeDatasetDigest`: zero for an empty dataset; each non-empty database mixes
/// in its index, then xors in the hash of one digest per key (key, then value).
fn dataset_digest(ctx: &mut ExecCtx) -> Digest {
    let ks = ctx.ks();
    let mut total = [0u8; 20];
    for db in 0..ks.databases() {
        if ks.db_size(db) == 0 {
            continue;
        }
        mix_digest(&mut total, &(db as u32).to_be_bytes());
        for_each_stored(ks, db, |key, entry| {
            let mut one = [0u8; 20];
            mix_digest(&mut one, key);
            value_digest(&mut one, entry);
            xor_digest(&mut total, &one);
        });
    }
    total
}

fn debug_digest_value(ctx: &mut ExecCtx, keys: &[Bytes]) -> Reply {
    let db = ctx.db();
    let ks = ctx.ks();
    Reply::Array(
        keys.iter()
            .map(|key| {
                let mut digest = [0u8; 20];
                if let Some(entry) = ks.peek(db, key) {
                    value_digest(&mut digest, entry);
                }
                Reply::status(hex(&digest))
            })
            .collect(),
    )
}

fn hex(digest: &Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-1 (FIPS 180-4). Digests only need to be stable, but with SHA-1 they also equal
/// Redis's for the same data.
fn sha1(data: &[u8]) -> Digest {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut tail = Vec::with_capacity(128);
    let full = data.len() / 64 * 64;
    tail.extend_from_slice(&data[full..]);
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&bit_len.to_be_bytes());
    for block in data[..full].chunks_exact(64).chain(tail.chunks_exact(64)) {
        sha1_block(&mut h, block);
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn sha1_block(h: &mut [u32; 5], block: &[u8]) {
    let mut w = [0u32; 80];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *h;
    for (i, &wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(wi);
        (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
    }
    for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
        *x = x.wrapping_add(y);
    }
}

// ---- DEBUG PROTOCOL ----

/// Redis's sample double is the literal 3.141, not pi.
#[allow(clippy::approx_constant)]
const SAMPLE_DOUBLE: f64 = 3.141;

fn debug_protocol(ctx: &mut ExecCtx, kind: &[u8]) -> CmdResult {
    let bulk = Reply::bulk_str;
    let resp3 = ctx.client.resp3;
    Ok(match kind.to_ascii_lowercase().as_slice() {
        b"string" => bulk("Hello World"),
        b"integer" => Reply::Int(12345),
        b"double" => Reply::Double(SAMPLE_DOUBLE),
        b"bignum" => Reply::BigNumber("1234567999999999999999999999999999999".into()),
        b"null" => Reply::Null,
        b"array" => Reply::Array((0..3).map(Reply::Int).collect()),
        b"set" => Reply::Set((0..3).map(Reply::Int).collect()),
        b"map" => Reply::Map(
            (0..3)
                .map(|j| (Reply::Int(j), Reply::Bool(j == 1)))
                .collect(),
        ),
        // An attribute annotates the reply after it; RESP2 clients get the reply alone.
        b"attrib" if resp3 => Reply::Multi(vec![
            Reply::Attribute(vec![(
                bulk("key-popularity"),
                Reply::Array(vec![bulk("key:123"), Reply::Int(90)]),
            )]),
            bulk("Some real reply following the attribute"),
        ]),
        b"attrib" => bulk("Some real reply following the attribute"),
        b"push" if !resp3 => {
            return Err(ErrorReply::fixed(
                "ERR RESP2 is not supported by this command",
            ))
        }
        // A push is out of band, so a normal reply follows for clients that skip pushes.
        b"push" => Reply::Multi(vec![
            Reply::Push(vec![bulk("server-cpu-usage"), Reply::Int(42)]),
            bulk("Some real reply following the push reply"),
        ]),
        b"true" => Reply::Bool(true),
        b"false" => Reply::Bool(false),
        b"verbatim" => Reply::Verbatim("txt", Bytes::from_static(b"This is a verbatim\nstring")),
        _ => {
            return Err(ErrorReply::fixed(
                "ERR Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ))
        }
    })
}

// ---- DEBUG STRINGMATCH-TEST ----

/// Throws random patterns and strings at the glob matcher; passing means it returned.
fn stringmatch_fuzz(seed: u64) {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const ALPHABET: &[u8] = b"*?[]^-\\abcAB";
    let mut pattern = Vec::new();
    let mut string = Vec::new();
    for _ in 0..100_000 {
        pattern.clear();
        string.clear();
        for _ in 0..next() % 32 {
            pattern.push(ALPHABET[(next() % ALPHABET.len() as u64) as usize]);
        }
        for _ in 0..next() % 32 {
            string.push(next() as u8);
        }
        let nocase = next() % 2 == 0;
        std::hint::black_box(crate::util::glob_match(&pattern, &string, nocase));
    }
}

// ---- MEMORY ----

/// A container called with a subcommand it does not know never reaches here (dispatch
/// answers first); with no subcommand the arity check answers.
fn memory_container(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Err(errors::unknown_subcommand(
        &String::from_utf8_lossy(&args[0]),
        args.get(1).map_or(&b""[..], |a| a),
    ))
}

fn memory_help(_ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    Ok(help_reply(
        &args[0],
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}

/// The boxed node every key lives in (key inline when short, value, expiry, access time).
const ENTRY_NODE_BYTES: usize = 64;
/// The slot table's share per key: one pointer and one control byte.
const INDEX_BYTES_PER_KEY: usize = std::mem::size_of::<usize>() + 1;
/// Keys up to this length live inside the node.
const INLINE_KEY_MAX: usize = 22;

/// What jemalloc hands out for a request of `n` bytes: 8, then steps of 16 up to 128, then
/// four size classes per power of two.
fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let ceil_log2 = usize::BITS - (n - 1).leading_zeros();
            let spacing = 1usize << (ceil_log2 - 3);
            n.div_ceil(spacing) * spacing
        }
    }
}

/// Bytes a key and its value occupy in this server's representation.
pub(crate) fn key_usage(key: &[u8], entry: &Entry) -> usize {
    let key_heap = if key.len() > INLINE_KEY_MAX {
        alloc_size(key.len())
    } else {
        0
    };
    ENTRY_NODE_BYTES + INDEX_BYTES_PER_KEY + key_heap + entry.value.heap_bytes()
}

/// MEMORY USAGE: reads the stored entry (no expiry, no statistics) like Redis. SAMPLES is
/// validated; our per-value figures are exact, so sampling changes nothing.
fn memory_usage(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let mut j = 3;
    while j < args.len() {
        if !args[j].eq_ignore_ascii_case(b"samples") || j + 1 >= args.len() {
            return Err(errors::SYNTAX);
        }
        if ctx.int_arg(&args[j + 1])? < 0 {
            return Err(errors::SYNTAX);
        }
        j += 2;
    }
    let db = ctx.db();
    Ok(match ctx.ks().peek(db, &args[2]) {
        Some(entry) => Reply::Int(key_usage(&args[2], entry) as i64),
        None => Reply::Null,
    })
}

/// Allocator figures MEMORY STATS and DOCTOR read.
struct AllocatorStats {
    allocated: u64,
    active: u64,
    resident: u64,
    rss: u64,
    peak: u64,
}

impl AllocatorStats {
    fn read(ctx: &ExecCtx) -> AllocatorStats {
        crate::server::info::refresh_allocator_stats();
        let allocated = crate::server::info::used_memory() as u64;
        let stat = |f: fn() -> tikv_jemalloc_ctl::Result<usize>| f().unwrap_or(0) as u64;
        let peak = ctx
            .server
            .stat_peak_memory
            .fetch_max(allocated, Relaxed)
            .max(allocated);
        AllocatorStats {
            allocated,
            active: stat(tikv_jemalloc_ctl::stats::active::read),
            resident: stat(tikv_jemalloc_ctl::stats::resident::read),
            rss: crate::server::info::rss_bytes(),
            peak,
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Index and entry overhead of one database: (main, expires), the same split Redis reports.
/// Expiry times live in the entries, so there is no separate expires table to count.
fn db_overhead(ks: &mut Locked, db: usize) -> (u64, u64) {
    let mut main = ks.db_size(db) * ENTRY_NODE_BYTES;
    for slot in 0..SLOT_COUNT {
        if let Some(table) = ks.slot_table_ref(db, slot as u16) {
            main += table.index_bytes();
        }
    }
    (main as u64, 0)
}

/// MEMORY STATS: Redis's 27 fields plus one `db.<n>` map per non-empty database, in Redis's
/// order. What we do not have (backlog, AOF buffer, scripts, cluster links) reads as 0.
fn memory_stats(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    let mem = AllocatorStats::read(ctx);
    // The empty functions library Redis always reports.
    const FUNCTIONS_CACHES: u64 = 184;
    let clients_normal: u64 = ctx
        .server
        .client_views()
        .iter()
        .map(|(_, v)| v.tot_mem as u64)
        .sum();
    let mut overhead_total = clients_normal + FUNCTIONS_CACHES;
    let (mut keys, mut dbs) = (0u64, Vec::new());
    let ks = ctx.ks();
    for db in 0..ks.databases() {
        let size = ks.db_size(db) as u64;
        if size == 0 {
            continue;
        }
        keys += size;
        let (main, expires) = db_overhead(ks, db);
        overhead_total += main + expires;
        dbs.push((db, main, expires));
    }
    let net_usage = mem.allocated.max(1);
    let dataset = mem.allocated.saturating_sub(overhead_total);
    let int = |n: u64| Reply::Int(n as i64);
    let signed = |a: u64, b: u64| Reply::Int(a as i64 - b as i64);
    let mut fields: Vec<(&str, Reply)> = vec![
        ("peak.allocated", int(mem.peak)),
        ("total.allocated", int(mem.allocated)),
        ("startup.allocated", int(0)),
        ("replication.backlog", int(0)),
        ("clients.slaves", int(0)),
        ("clients.normal", int(clients_normal)),
        ("cluster.links", int(0)),
        ("aof.buffer", int(0)),
        ("lua.caches", int(0)),
        ("functions.caches", int(FUNCTIONS_CACHES)),
    ];
    let mut pairs: Vec<(Reply, Reply)> = fields
        .drain(..)
        .map(|(k, v)| (Reply::bulk_str(k), v))
        .collect();
    for (db, main, expires) in dbs {
        pairs.push((
            Reply::bulk_str(&format!("db.{db}")),
            Reply::Map(vec![
                (Reply::bulk_str("overhead.hashtable.main"), int(main)),
                (Reply::bulk_str("overhead.hashtable.expires"), int(expires)),
                (Reply::bulk_str("overhead.hashtable.slot-to-keys"), int(0)),
            ]),
        ));
    }
    let fields: Vec<(&str, Reply)> = vec![
        ("overhead.total", int(overhead_total)),
        ("keys.count", int(keys)),
        (
            "keys.bytes-per-key",
            int(net_usage.checked_div(keys).unwrap_or(0)),
        ),
        ("dataset.bytes", int(dataset)),
        (
            "dataset.percentage",
            Reply::Double(ratio(dataset * 100, net_usage)),
        ),
        (
            "peak.percentage",
            Reply::Double(ratio(mem.allocated * 100, mem.peak)),
        ),
        ("allocator.allocated", int(mem.allocated)),
        ("allocator.active", int(mem.active)),
        ("allocator.resident", int(mem.resident)),
        (
            "allocator-fragmentation.ratio",
            Reply::Double(ratio(mem.active, mem.allocated)),
        ),
        (
            "allocator-fragmentation.bytes",
            signed(mem.active, mem.allocated),
        ),
        (
            "allocator-rss.ratio",
            Reply::Double(ratio(mem.resident, mem.active)),
        ),
        ("allocator-rss.bytes", signed(mem.resident, mem.active)),
        (
            "rss-overhead.ratio",
            Reply::Double(ratio(mem.rss, mem.resident)),
        ),
        ("rss-overhead.bytes", signed(mem.rss, mem.resident)),
        (
            "fragmentation",
            Reply::Double(ratio(mem.rss, mem.allocated)),
        ),
        ("fragmentation.bytes", signed(mem.rss, mem.allocated)),
    ];
    pairs.extend(fields.into_iter().map(|(k, v)| (Reply::bulk_str(k), v)));
    Ok(Reply::Map(pairs))
}

/// MEMORY DOCTOR: a few plain checks on the allocator figures, in our own words.
fn memory_doctor(ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    const MIN_BYTES: u64 = 5 * 1024 * 1024;
    let mem = AllocatorStats::read(ctx);
    let human = |n: u64| crate::server::info::human_bytes(n);
    let mut report = String::new();
    if mem.allocated < MIN_BYTES {
        report.push_str(&format!(
            "This instance uses only {} of memory, too little for the memory doctor to tell \
             anything useful. Load some data and ask again.\n",
            human(mem.allocated)
        ));
        return Ok(Reply::Verbatim("txt", Bytes::from(report)));
    }
    let mut issues = Vec::new();
    if ratio(mem.peak, mem.allocated) > 1.5 {
        issues.push(format!(
            " * Peak memory: the peak ({}) is more than 150% of what is used now ({}). \
             The allocator may keep pages from the peak; high fragmentation can follow.",
            human(mem.peak),
            human(mem.allocated)
        ));
    }
    if ratio(mem.rss, mem.allocated) > 1.4 && mem.rss > 10 * 1024 * 1024 {
        issues.push(format!(
            " * High fragmentation: the process holds {} of RSS for {} of data \
             (ratio {:.2}). MEMORY PURGE may return some of it.",
            human(mem.rss),
            human(mem.allocated),
            ratio(mem.rss, mem.allocated)
        ));
    }
    if issues.is_empty() {
        report.push_str(&format!(
            "No memory problems found: {} in use, peak {}, RSS {}.\n",
            human(mem.allocated),
            human(mem.peak),
            human(mem.rss)
        ));
    } else {
        report.push_str("Memory problems found:\n\n");
        for issue in issues {
            report.push_str(&issue);
            report.push_str("\n\n");
        }
    }
    Ok(Reply::Verbatim("txt", Bytes::from(report)))
}

fn memory_malloc_stats(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    Ok(Reply::Verbatim("txt", Bytes::from(jemalloc::stats_text())))
}

/// Asks jemalloc to return dirty pages of every arena to the system, as Redis does.
fn memory_purge(_ctx: &mut ExecCtx, _args: &[Bytes]) -> CmdResult {
    if jemalloc::purge_all_arenas() {
        Ok(Reply::OK)
    } else {
        Err(ErrorReply::fixed("ERR Error purging dirty pages"))
    }
}

/// The two jemalloc entry points `tikv-jemalloc-ctl` does not wrap without its `use_std`
/// feature: the statistics printer and value-less controls such as `arena.<i>.purge`. The
/// symbols carry the `_rjem_` prefix `tikv-jemalloc-sys` builds jemalloc with by default.
mod jemalloc {
    use std::ffi::{c_char, c_int, c_void, CStr};

    type WriteCallback = unsafe extern "C" fn(*mut c_void, *const c_char);

    extern "C" {
        #[link_name = "_rjem_mallctl"]
        fn mallctl(
            name: *const c_char,
            oldp: *mut c_void,
            oldlenp: *mut usize,
            newp: *mut c_void,
            newlen: usize,
        ) -> c_int;
        #[link_name = "_rjem_malloc_stats_print"]
        fn malloc_stats_print(
            write_cb: Option<WriteCallback>,
            cbopaque: *mut c_void,
            opts: *const c_char,
        );
    }

    /// Appends one chunk of the report to the `Vec<u8>` behind `opaque`.
    unsafe extern "C" fn append(opaque: *mut c_void, text: *const c_char) {
        // SAFETY: `stats_text` passes a live `Vec<u8>` as `opaque`, and jemalloc passes a
        // NUL-terminated string.
        let out = unsafe { &mut *(opaque as *mut Vec<u8>) };
        out.extend_from_slice(unsafe { CStr::from_ptr(text) }.to_bytes());
    }

    /// jemalloc's full statistics report, the text Redis returns.
    pub fn stats_text() -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        // SAFETY: the callback only touches `out`, which outlives the call; a null options
        // string selects the default report.
        unsafe {
            malloc_stats_print(
                Some(append),
                (&mut out as *mut Vec<u8>).cast(),
                std::ptr::null(),
            )
        };
        out
    }

    /// `arena.<MALLCTL_ARENAS_ALL>.purge`: true when jemalloc accepted it.
    pub fn purge_all_arenas() -> bool {
        const NAME: &[u8] = b"arena.4096.purge\0";
        // SAFETY: NAME is NUL-terminated and this control reads and writes nothing, so every
        // pointer is null and the length zero.
        let rc = unsafe {
            mallctl(
                NAME.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        rc == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::keyspace::list::List;
    use crate::keyspace::set::Set;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    struct Harness {
        server: ServerState,
        client: ClientState,
        now_ms: u64,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                server: ServerState::for_tests(),
                client: crate::commands::test_support::test_client(NOW_MS),
                now_ms: NOW_MS,
            }
        }

        fn spec(args: &[Bytes]) -> &'static C {
            let name = args[0].to_ascii_lowercase();
            let top = COMMANDS
                .iter()
                .find(|c| c.name.as_bytes() == name.as_slice())
                .expect("DEBUG or MEMORY");
            if top.subcommands.is_empty() {
                return top;
            }
            let sub = args[1].to_ascii_lowercase();
            top.subcommands
                .iter()
                .find(|c| c.name.as_bytes() == sub.as_slice())
                .expect("a MEMORY subcommand")
        }

        fn run_bytes(&mut self, args: Vec<Bytes>) -> CmdResult {
            let spec = Self::spec(&args);
            assert!(spec.arity_ok(args.len()), "arity of {:?}", args);
            let locked = Some(self.server.keyspace.lock_all());
            let mut ctx = ExecCtx::new(self.now_ms * 1000, locked, &mut self.client, &self.server);
            (spec.handler)(&mut ctx, &args)
        }

        fn run(&mut self, argv: &[&str]) -> CmdResult {
            let args = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            self.run_bytes(args)
        }

        fn ok(&mut self, argv: &[&str]) -> Reply {
            self.run(argv)
                .unwrap_or_else(|e| panic!("{argv:?} failed: {}", e.text()))
        }

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}"),
            }
        }

        fn status(&mut self, argv: &[&str]) -> String {
            match self.ok(argv) {
                Reply::Simple(s) => s.into_owned(),
                other => panic!("{argv:?} replied {other:?}"),
            }
        }

        fn put(&mut self, db: usize, key: &str, value: Value) {
            let mut ks = self.server.keyspace.lock_all();
            ks.insert(
                db,
                key.as_bytes(),
                Entry::new(value, (self.now_ms / 1000) as u32),
            );
        }

        fn put_str(&mut self, key: &str, value: &str) {
            self.put(0, key, Value::Str(StrValue::from_bytes(value.as_bytes())));
        }

        fn get(&mut self, key: &str) -> Option<Vec<u8>> {
            let mut ks = self.server.keyspace.lock_all();
            match ks.peek(self.client.db, key.as_bytes()).map(|e| &e.value) {
                Some(Value::Str(s)) => Some(s.to_bytes().into_owned()),
                Some(other) => panic!("{key} holds a {}", other.type_name()),
                None => None,
            }
        }
    }

    fn list_of(items: &[&str]) -> Value {
        Value::List(Box::new(List::from_items(
            items.iter().map(|i| i.as_bytes()),
        )))
    }

    fn set_of(members: &[&str]) -> Value {
        let mut set = Set::new_for(members[0].as_bytes());
        for m in members {
            set.insert(m.as_bytes(), 512);
        }
        Value::Set(Box::new(set))
    }

    #[test]
    fn debug_row_matches_redis() {
        let debug = &COMMANDS[0];
        assert_eq!((debug.name, debug.arity), ("debug", -2));
        assert!(
            debug.subcommands.is_empty(),
            "DEBUG parses its own subcommand"
        );
        assert_eq!(debug.scope, Scope::All);
        assert!(debug.has(ADMIN) && debug.has(NOSCRIPT) && debug.has(LOADING) && debug.has(STALE));
        let memory = &COMMANDS[1];
        let names: Vec<_> = memory.subcommands.iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            ["doctor", "help", "malloc-stats", "purge", "stats", "usage"]
        );
        let usage = Harness::spec(&[Bytes::from("memory"), Bytes::from("usage")]);
        assert_eq!(usage.legacy_range(), (2, 2, 1, false));
        assert_eq!(usage.arity, -3);
        assert!(usage.has(READONLY));
    }

    #[test]
    fn reload_round_trips_the_dataset() {
        let mut h = Harness::new();
        h.put(0, "l", list_of(&["a", "b"]));
        h.put(2, "s", set_of(&["1", "2"]));
        let before = h.status(&["debug", "digest"]);
        assert_eq!(h.ok(&["debug", "reload"]), Reply::OK);
        assert_eq!(h.status(&["debug", "digest"]), before);
        assert_eq!(
            h.err(&["debug", "reload", "bogus"]),
            "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."
        );
    }

    #[test]
    fn unknown_or_mis_sized_subcommands_get_redis_text() {
        let mut h = Harness::new();
        assert_eq!(
            h.err(&["debug", "nosuch"]),
            "ERR unknown subcommand or wrong number of arguments for 'nosuch'. Try DEBUG HELP."
        );
        assert_eq!(
            h.err(&["Debug", "object"]),
            "ERR unknown subcommand or wrong number of arguments for 'object'. Try DEBUG HELP."
        );
        for honest in ["jmap", "stringmatch-len"] {
            assert!(h
                .err(&["debug", honest])
                .starts_with("ERR unknown subcommand"));
        }
        assert_eq!(
            h.err(&["debug", "clusterlink", "kill", "all", "x"]),
            "ERR Debug option only available for cluster mode enabled setup!"
        );
        assert!(h
            .err(&["debug", "clusterlink", "kill", "all"])
            .starts_with("ERR unknown subcommand"));
    }

    #[test]
    fn help_has_redis_header_and_footer() {
        let mut h = Harness::new();
        let Reply::Array(lines) = h.ok(&["debug", "help"]) else {
            panic!("HELP replies an array");
        };
        assert_eq!(lines.len(), DEBUG_HELP.len() + 3);
        assert_eq!(
            lines[0],
            Reply::simple("DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
        );
        assert_eq!(lines[1], Reply::simple("AOF-FLUSH-SLEEP <microsec>"));
        assert_eq!(
            lines[lines.len() - 1],
            Reply::simple("    Prints this help.")
        );
        let Reply::Array(lines) = h.ok(&["memory", "help"]) else {
            panic!("HELP replies an array");
        };
        assert_eq!(lines.len(), 14);
        assert_eq!(lines[1], Reply::simple("DOCTOR"));
    }

    #[test]
    fn set_active_expire_and_other_switches_take_atoi_values() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["debug", "set-active-expire", "0"]), Reply::OK);
        assert!(!h.server.active_expire_enabled.load(Relaxed));
        assert_eq!(h.ok(&["debug", "set-active-expire", "1"]), Reply::OK);
        assert!(h.server.active_expire_enabled.load(Relaxed));
        h.ok(&["debug", "pause-cron", "1"]);
        assert!(h.server.debug.pause_cron.load(Relaxed));
        h.ok(&["debug", "pause-cron", "0"]);
        assert!(!h.server.debug.pause_cron.load(Relaxed));
        h.ok(&["debug", "set-skip-checksum-validation", "1"]);
        assert!(h.server.debug.skip_checksum_validation.load(Relaxed));
        h.ok(&["debug", "aof-flush-sleep", "  250xyz"]);
        assert_eq!(h.server.debug.aof_flush_sleep_us.load(Relaxed), 250);
        let filter = &h.server.debug.cluster_drop_packet_filter;
        assert_eq!(filter.load(Relaxed), -1);
        h.ok(&["debug", "drop-cluster-packet-filter", "1"]);
        assert_eq!(h.server.debug.cluster_drop_packet_filter.load(Relaxed), 1);
        assert_eq!(
            h.err(&["debug", "drop-cluster-packet-filter", "x"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn c_number_parsers_stop_at_the_first_stray_byte() {
        assert_eq!(atoi(b"12ab"), 12);
        assert_eq!(atoi(b" -7"), -7);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(strtod_prefix(b"0.25s"), 0.25);
        assert_eq!(strtod_prefix(b"1e-1"), 0.1);
        assert_eq!(strtod_prefix(b"2e"), 2.0);
        assert_eq!(strtod_prefix(b"x"), 0.0);
    }

    #[test]
    fn sleep_takes_decimal_seconds() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["debug", "sleep", "0"]), Reply::OK);
        assert_eq!(h.ok(&["debug", "sleep", "0.001"]), Reply::OK);
        let micros = |arg: &str| sleep_duration(arg.as_bytes()).map(|d| d.as_micros());
        assert_eq!(micros("0"), None);
        assert_eq!(micros("-1"), None);
        assert_eq!(micros("abc"), None);
        assert_eq!(micros("0.05"), Some(50_000));
        assert_eq!(micros("2"), Some(2_000_000));
    }

    #[test]
    fn object_reports_encoding_and_rdb_length_like_redis() {
        let mut h = Harness::new();
        h.put_str("foo", "bar");
        let line = h.status(&["debug", "object", "foo"]);
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[0], "Value");
        assert!(fields[1].starts_with("at:0x"), "{line}");
        assert_eq!(
            &fields[2..6],
            [
                "refcount:1",
                "encoding:embstr",
                "serializedlength:4",
                "lru:5501184"
            ]
        );
        assert_eq!(fields[6], "lru_seconds_idle:0");
        h.now_ms += 7_000;
        assert!(h
            .status(&["debug", "object", "foo"])
            .ends_with("lru_seconds_idle:7"));
        // The address is the entry's, stable while the key lives (INCR's in-place test).
        assert_eq!(
            h.status(&["debug", "object", "foo"]).split(' ').nth(1),
            Some(fields[1])
        );
        h.put_str("n", "100");
        assert!(h
            .status(&["debug", "object", "n"])
            .contains("refcount:2147483647 encoding:int serializedlength:2 "));
        h.put_str("big", "12345678901");
        assert!(h
            .status(&["debug", "object", "big"])
            .contains("encoding:int serializedlength:12 "));
        assert_eq!(h.err(&["debug", "object", "nope"]), "ERR no such key");
    }

    #[test]
    fn object_of_a_list_adds_the_quicklist_fields() {
        let mut h = Harness::new();
        h.put(0, "l", list_of(&["x", "y", "z"]));
        let line = h.status(&["debug", "object", "l"]);
        assert!(
            line.ends_with(
                "encoding:quicklist serializedlength:19 lru:5501184 lru_seconds_idle:0 \
                 ql_nodes:1 ql_avg_node:3.00 ql_listpack_max:-2 ql_compressed:0 \
                 ql_uncompressed_size:16"
            ),
            "{line}"
        );
        h.put_str("s", "v");
        assert!(!h.status(&["debug", "object", "s"]).contains("ql_"));
    }

    #[test]
    fn populate_creates_missing_keys_only() {
        let mut h = Harness::new();
        h.put_str("key:1", "mine");
        assert_eq!(h.ok(&["debug", "populate", "3"]), Reply::OK);
        assert_eq!(h.get("key:0").as_deref(), Some(&b"value:0"[..]));
        assert_eq!(h.get("key:1").as_deref(), Some(&b"mine"[..]));
        assert_eq!(h.get("key:2").as_deref(), Some(&b"value:2"[..]));
        assert_eq!(h.get("key:3"), None);
        h.ok(&["debug", "populate", "2", "k", "2"]);
        assert_eq!(h.get("k:1").as_deref(), Some(&b"va"[..]));
        h.ok(&["debug", "populate", "1", "p", "10"]);
        assert_eq!(h.get("p:0").as_deref(), Some(&b"value:0\0\0\0"[..]));
        h.ok(&["debug", "populate", "1", "r", "100"]);
        assert!(h
            .status(&["debug", "object", "r:0"])
            .contains("encoding:raw"));
        assert_eq!(
            h.err(&["debug", "populate", "-1"]),
            "ERR value is out of range, must be positive"
        );
        assert_eq!(
            h.err(&["debug", "populate", "x"]),
            "ERR value is not an integer or out of range"
        );
        assert!(h
            .err(&["debug", "populate", "1", "a", "1", "extra"])
            .starts_with("ERR unknown subcommand or wrong number of arguments for 'populate'"));
    }

    #[test]
    fn populate_respects_the_selected_database_and_cuts_long_names() {
        let mut h = Harness::new();
        h.client.db = 3;
        let long = "x".repeat(200);
        h.ok(&["debug", "populate", "1", &long]);
        assert_eq!(h.get(&"x".repeat(127)).as_deref(), Some(&b"value:0"[..]));
        h.client.db = 0;
        assert_eq!(h.get(&"x".repeat(127)), None);
    }

    #[test]
    fn sha1_matches_the_standard_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 1000])),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
    }

    /// Digests taken from redis-server 7.0.15 for the same data.
    #[test]
    fn digests_equal_redis_for_the_same_dataset() {
        let mut h = Harness::new();
        let zero = "0".repeat(40);
        assert_eq!(h.status(&["debug", "digest"]), zero);
        h.put_str("foo", "bar");
        let Reply::Array(values) = h.ok(&["debug", "digest-value", "foo", "missing"]) else {
            panic!("DIGEST-VALUE replies an array");
        };
        assert_eq!(
            values,
            [
                Reply::simple("68467c70ae30376e7ce005bcc8827f5ba7fd67dc"),
                Reply::status(zero.clone())
            ]
        );
        assert_eq!(
            h.status(&["debug", "digest"]),
            "d2ab4820c1be0580ea28efbfe8bfa1dc05bb802a"
        );
        h.put_str("n", "12345");
        h.put(0, "s", set_of(&["a", "b", "c", "7"]));
        h.put(0, "l", list_of(&["x", "y", "z"]));
        let Reply::Array(values) = h.ok(&["debug", "digest-value", "n", "s", "l"]) else {
            panic!("DIGEST-VALUE replies an array");
        };
        assert_eq!(
            values,
            [
                Reply::simple("e1cf90774e995ae03de66e8109dc5cb9d9c2dc83"),
                Reply::simple("c91787d9d9e54d4537dc9af1186ce3d3608755a8"),
                Reply::simple("048e07d5a045cd715a87e264ec663043b62ad0a8"),
            ]
        );
        assert_eq!(
            h.status(&["debug", "digest"]),
            "eb2a2a87cc7ea1a93507e210a5028e67504b9650"
        );
        h.server
            .keyspace
            .lock_all()
            .set_expire(0, b"foo", NOW_MS + 1_000_000);
        assert_eq!(
            h.status(&["debug", "digest"]),
            "b28d0f851d4fb16faf0db1888db857cb271b5a31"
        );
        h.put(1, "foo", Value::Str(StrValue::from_bytes(b"bar")));
        assert_eq!(
            h.status(&["debug", "digest"]),
            "356373d461abedda3a136db228977eed543ed0ee"
        );
        h.server.keyspace.lock_all().flush_db(0);
        h.server.keyspace.lock_all().flush_db(1);
        assert_eq!(h.status(&["debug", "digest"]), zero);
    }

    #[test]
    fn digest_ignores_insertion_order_but_not_database() {
        let mut a = Harness::new();
        let mut b = Harness::new();
        for i in 0..50 {
            a.put_str(&format!("k{i}"), &format!("v{i}"));
            b.put_str(&format!("k{}", 49 - i), &format!("v{}", 49 - i));
        }
        assert_eq!(
            a.status(&["debug", "digest"]),
            b.status(&["debug", "digest"])
        );
        let mut c = Harness::new();
        for i in 0..50 {
            c.put(
                2,
                &format!("k{i}"),
                Value::Str(StrValue::from_bytes(format!("v{i}").as_bytes())),
            );
        }
        assert_ne!(
            a.status(&["debug", "digest"]),
            c.status(&["debug", "digest"])
        );
    }

    #[test]
    fn protocol_sends_each_resp3_sample() {
        let mut h = Harness::new();
        assert_eq!(
            h.ok(&["debug", "protocol", "string"]),
            Reply::bulk_str("Hello World")
        );
        assert_eq!(h.ok(&["debug", "protocol", "INTEGER"]), Reply::Int(12345));
        assert_eq!(
            h.ok(&["debug", "protocol", "double"]),
            Reply::Double(SAMPLE_DOUBLE)
        );
        assert_eq!(
            h.ok(&["debug", "protocol", "bignum"]),
            Reply::BigNumber("1234567999999999999999999999999999999".into())
        );
        assert_eq!(h.ok(&["debug", "protocol", "null"]), Reply::Null);
        assert_eq!(h.ok(&["debug", "protocol", "true"]), Reply::Bool(true));
        assert_eq!(
            h.ok(&["debug", "protocol", "map"]),
            Reply::Map(vec![
                (Reply::Int(0), Reply::Bool(false)),
                (Reply::Int(1), Reply::Bool(true)),
                (Reply::Int(2), Reply::Bool(false)),
            ])
        );
        let real = Reply::bulk_str("Some real reply following the attribute");
        assert_eq!(h.ok(&["debug", "protocol", "attrib"]), real);
        assert_eq!(
            h.err(&["debug", "protocol", "push"]),
            "ERR RESP2 is not supported by this command"
        );
        assert!(h
            .err(&["debug", "protocol", "nosuch"])
            .starts_with("ERR Wrong protocol type name."));
        h.client.resp3 = true;
        let Reply::Multi(parts) = h.ok(&["debug", "protocol", "attrib"]) else {
            panic!("RESP3 attrib is an attribute and a reply");
        };
        assert!(matches!(parts[0], Reply::Attribute(_)));
        assert_eq!(parts[1], real);
        let mut out = bytes::BytesMut::new();
        crate::resp::encode::encode(&Reply::Multi(parts), true, &mut out);
        assert_eq!(
            &out[..],
            &b"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n\
               $39\r\nSome real reply following the attribute\r\n"[..]
        );
        let Reply::Multi(parts) = h.ok(&["debug", "protocol", "push"]) else {
            panic!("RESP3 push is a push and a reply");
        };
        assert!(matches!(parts[0], Reply::Push(_)));
    }

    #[test]
    fn quicklist_packed_threshold_takes_memory_units_below_4gb() {
        let mut h = Harness::new();
        let threshold = |h: &Harness| {
            h.server
                .debug
                .quicklist_packed_threshold_bytes
                .load(Relaxed)
        };
        assert_eq!(
            h.ok(&["debug", "quicklist-packed-threshold", "1kb"]),
            Reply::OK
        );
        assert_eq!(threshold(&h), 1024);
        h.ok(&["debug", "quicklist-packed-threshold", "0"]);
        assert_eq!(threshold(&h), 1 << 30);
        for bad in ["5gb", "abc", "-1"] {
            assert_eq!(
                h.err(&["debug", "quicklist-packed-threshold", bad]),
                "ERR argument must be a memory value bigger than 1 and smaller than 4gb"
            );
        }
    }

    #[test]
    fn replybuffer_validates_its_arguments() {
        let mut h = Harness::new();
        let reset_time = |h: &Harness| h.server.debug.reply_buffer_peak_reset_time_ms.load(Relaxed);
        h.ok(&["debug", "replybuffer", "peak-reset-time", "100"]);
        assert_eq!(reset_time(&h), 100);
        h.ok(&["debug", "replybuffer", "peak-reset-time", "never"]);
        assert_eq!(reset_time(&h), -1);
        h.ok(&["debug", "replybuffer", "peak-reset-time", "reset"]);
        assert_eq!(reset_time(&h), 5000);
        assert_eq!(
            h.err(&["debug", "replybuffer", "peak-reset-time", "soon"]),
            "ERR value is not an integer or out of range"
        );
        h.ok(&["debug", "replybuffer", "resizing", "0"]);
        assert!(!h.server.debug.reply_buffer_resizing.load(Relaxed));
        assert!(h
            .err(&["debug", "replybuffer", "bogus", "1"])
            .starts_with("ERR unknown subcommand or wrong number of arguments for 'replybuffer'"));
    }

    #[test]
    fn change_repl_id_log_error_and_stringmatch() {
        let mut h = Harness::new();
        let before = h.server.replid.lock().clone();
        assert_eq!(h.ok(&["debug", "change-repl-id"]), Reply::OK);
        let after = h.server.replid.lock().clone();
        assert_ne!(before, after);
        assert_eq!(after.len(), 40);
        assert_eq!(h.ok(&["debug", "log", "hello"]), Reply::OK);
        assert_eq!(
            h.err(&["debug", "error", "MYERR line\r\nbreak"]),
            "MYERR line  break"
        );
        assert_eq!(
            h.ok(&["debug", "stringmatch-test"]),
            Reply::simple("Apparently Redis did not crash: test passed")
        );
    }

    #[test]
    fn memory_usage_reads_the_stored_entry() {
        let mut h = Harness::new();
        assert_eq!(h.ok(&["memory", "usage", "missing"]), Reply::Null);
        h.put_str("small", "v");
        h.put_str("large", &"x".repeat(1000));
        let usage = |h: &mut Harness, key: &str| match h.ok(&["memory", "usage", key]) {
            Reply::Int(n) => n,
            other => panic!("{other:?}"),
        };
        let small = usage(&mut h, "small");
        assert_eq!(small, (ENTRY_NODE_BYTES + INDEX_BYTES_PER_KEY) as i64);
        assert!(usage(&mut h, "large") >= small + 1000);
        assert_eq!(
            h.ok(&["memory", "usage", "small", "SAMPLES", "0"]),
            Reply::Int(small)
        );
        assert_eq!(
            h.err(&["memory", "usage", "small", "samples"]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["memory", "usage", "small", "samples", "abc"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            h.err(&["memory", "usage", "small", "samples", "-1"]),
            "ERR syntax error"
        );
        assert_eq!(
            h.err(&["memory", "usage", "small", "bogus"]),
            "ERR syntax error"
        );
    }

    #[test]
    fn alloc_size_follows_jemalloc_classes() {
        let sizes: Vec<usize> = [1, 8, 9, 16, 17, 128, 129, 160, 161, 257, 1000]
            .iter()
            .map(|&n| alloc_size(n))
            .collect();
        assert_eq!(sizes, [8, 8, 16, 16, 32, 128, 160, 160, 192, 320, 1024]);
    }

    #[test]
    fn memory_stats_lists_redis_fields_in_order() {
        let mut h = Harness::new();
        h.put_str("a", "1");
        h.put(4, "b", Value::Str(StrValue::from_bytes(b"2")));
        let Reply::Map(pairs) = h.ok(&["memory", "stats"]) else {
            panic!("STATS replies a map");
        };
        let names: Vec<String> = pairs
            .iter()
            .map(|(k, _)| match k {
                Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(pairs.len(), 27 + 2);
        assert_eq!(
            &names[..3],
            ["peak.allocated", "total.allocated", "startup.allocated"]
        );
        assert_eq!(&names[10..12], ["db.0", "db.4"]);
        assert_eq!(names[12], "overhead.total");
        assert_eq!(
            names.last().map(String::as_str),
            Some("fragmentation.bytes")
        );
        let keys = pairs
            .iter()
            .find(|(k, _)| *k == Reply::bulk_str("keys.count"));
        assert_eq!(keys.map(|(_, v)| v), Some(&Reply::Int(2)));
        let Reply::Map(db0) = &pairs[10].1 else {
            panic!("db.0 is a map");
        };
        assert_eq!(db0[2].0, Reply::bulk_str("overhead.hashtable.slot-to-keys"));
    }

    #[test]
    fn memory_doctor_malloc_stats_and_purge_answer() {
        let mut h = Harness::new();
        assert!(matches!(
            h.ok(&["memory", "doctor"]),
            Reply::Verbatim("txt", _)
        ));
        let Reply::Verbatim("txt", text) = h.ok(&["memory", "malloc-stats"]) else {
            panic!("MALLOC-STATS replies verbatim text");
        };
        assert!(String::from_utf8_lossy(&text).contains("jemalloc"));
        assert_eq!(h.ok(&["memory", "purge"]), Reply::OK);
    }
}

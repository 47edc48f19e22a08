//! The one directive table. Every directive Redis 7.0.15 knows, in the order of config.c's
//! `static_configs[]` (TLS directives included, as in a TLS build), then the special
//! directives with their own parsers (`save`, `bind`, `client-output-buffer-limit`, ...),
//! then those only a config file may use (`include`, `rename-command`, `user`,
//! `loadmodule`, `sentinel`, and the deprecated names Redis silently accepts), plus the
//! ferrodis-only `shard-count`. One `directives!` list generates both the typed `Config`
//! struct and this table, so a row is the single place that names a directive, its aliases,
//! type, bounds, default, flags and field; file loading, the command line, CONFIG GET, SET and
//! REWRITE all read it.
//!
//! Adding a directive: add one row to the matching section below (a new field appears on
//! `Config`); a special one also needs a `Special` in `special.rs`.

use super::special;
use super::values::*;

/// Directive flags, as config.c's `*_CONFIG` flags.
pub mod flags {
    pub const MODIFIABLE: u16 = 0;
    /// CONFIG SET refuses it.
    pub const IMMUTABLE: u16 = 1 << 0;
    /// Its value is redacted from logs and MONITOR.
    pub const SENSITIVE: u16 = 1 << 1;
    /// Shown by DEBUG's config dump.
    pub const DEBUG: u16 = 1 << 2;
    /// Takes several arguments (a single argument is split on spaces).
    pub const MULTI_ARG: u16 = 1 << 3;
    /// Only an exact name (not a pattern) finds it in CONFIG GET.
    pub const HIDDEN: u16 = 1 << 4;
    /// CONFIG SET needs `enable-protected-configs`.
    pub const PROTECTED: u16 = 1 << 5;
    /// CONFIG SET is refused with -LOADING while loading data.
    pub const DENY_LOADING: u16 = 1 << 6;
    /// Setting it counts as a change even to the same value (files behind it may change).
    pub const VOLATILE: u16 = 1 << 7;
}
use flags::*;

const INT_MAX: i128 = i32::MAX as i128;
const INT_MIN: i128 = i32::MIN as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

/// Validators some directives run on a parsed value, returning Redis's error text.
pub type BoolCheck = fn(bool) -> Result<(), &'static str>;
pub type EnumCheck = fn(u32) -> Result<(), &'static str>;
pub type StrCheck = fn(&[u8]) -> Result<(), String>;

/// How a numeric directive is written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumFormat {
    Plain,
    /// Bytes, with `memtoull` units accepted.
    Memory,
    /// Bytes, or `N%` (stored negated).
    MemoryOrPercent,
    /// Octal digits (`unixsocketperm`).
    Octal,
}

/// A numeric directive's bounds and default. `unsigned` mirrors Redis's unsigned C types,
/// whose bounds are checked (and reported) after a cast to unsigned.
#[derive(Debug, Clone, Copy)]
pub struct NumSpec {
    pub min: i128,
    pub max: i128,
    pub default: i128,
    pub unsigned: bool,
    pub format: NumFormat,
}

#[derive(Debug, Clone, Copy)]
pub struct EnumSpec {
    pub names: &'static [(&'static str, u32)],
    pub default: u32,
    pub check: Option<EnumCheck>,
}

#[derive(Debug, Clone, Copy)]
pub struct StrSpec {
    /// `None` is Redis's NULL default.
    pub default: Option<&'static str>,
    /// An empty value means NULL: not written by REWRITE.
    pub empty_is_null: bool,
    pub check: Option<StrCheck>,
}

/// Directives a config file may use but CONFIG GET/SET do not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOnly {
    Include,
    RenameCommand,
    User,
    LoadModule,
    Sentinel,
    /// Accepted with exactly one argument and ignored.
    Deprecated,
}

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool {
        default: bool,
        check: Option<BoolCheck>,
    },
    Num(NumSpec),
    Enum(EnumSpec),
    Str(StrSpec),
    Special(&'static special::Special),
    FileOnly(FileOnly),
}

/// Reads and writes a standard directive's typed field.
#[derive(Clone, Copy)]
pub struct Access {
    pub get: fn(&Config) -> Value,
    pub put: fn(&mut Config, Value),
}

/// One row of the table.
#[derive(Clone, Copy)]
pub struct Directive {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub flags: u16,
    pub kind: Kind,
    /// `Some` for standard (bool, numeric, enum, string) directives.
    pub access: Option<Access>,
}

impl Directive {
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Whether CONFIG GET/SET and REWRITE know it (everything but file-only rows).
    pub fn is_runtime(&self) -> bool {
        !matches!(self.kind, Kind::FileOnly(_))
    }

    /// The name and every alias, primary first.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

impl std::fmt::Debug for Directive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directive")
            .field("name", &self.name)
            .field("aliases", &self.aliases)
            .finish()
    }
}

const fn boolean(default: bool) -> Kind {
    Kind::Bool {
        default,
        check: None,
    }
}
const fn num(min: i128, max: i128, default: i128, unsigned: bool, format: NumFormat) -> Kind {
    Kind::Num(NumSpec {
        min,
        max,
        default,
        unsigned,
        format,
    })
}
/// A signed integer (`int`, `long`, `long long`, `time_t`, `off_t`).
const fn int(min: i128, max: i128, default: i128) -> Kind {
    num(min, max, default, false, NumFormat::Plain)
}
/// An unsigned integer (`unsigned int`, `size_t`, `unsigned long long`).
const fn uint(min: i128, max: i128, default: i128) -> Kind {
    num(min, max, default, true, NumFormat::Plain)
}
const fn mem(min: i128, max: i128, default: i128) -> Kind {
    num(min, max, default, false, NumFormat::Memory)
}
const fn umem(min: i128, max: i128, default: i128) -> Kind {
    num(min, max, default, true, NumFormat::Memory)
}
const fn choice(names: &'static [(&'static str, u32)], default: u32) -> Kind {
    Kind::Enum(EnumSpec {
        names,
        default,
        check: None,
    })
}
/// A string whose empty value means NULL (default NULL).
const fn nullable() -> Kind {
    Kind::Str(StrSpec {
        default: None,
        empty_is_null: true,
        check: None,
    })
}
/// A string where the empty string is a value of its own.
const fn string(default: &'static str) -> Kind {
    Kind::Str(StrSpec {
        default: Some(default),
        empty_is_null: false,
        check: None,
    })
}
const fn checked_string(default: &'static str, check: StrCheck) -> Kind {
    Kind::Str(StrSpec {
        default: Some(default),
        empty_is_null: false,
        check: Some(check),
    })
}

/// Generates `Config` (one typed field per row, plus the file-only results) and
/// `DIRECTIVES` (the rows in order) from a single list.
macro_rules! directives {
    (
        standard { $( $field:ident : $ty:ty = $name:literal, [$($alias:literal),*], $flags:expr, $kind:expr; )* }
        special { $( $sfield:ident : $sty:ty = $sdefault:expr; $sname:literal, [$($salias:literal),*], $sflags:expr, $ops:expr; )* }
        file_only { $( $fname:literal, $fkind:ident; )* }
        extra { $( $(#[$xm:meta])* $xfield:ident : $xty:ty, )* }
    ) => {
        /// The current value of every directive: one typed field per row of `DIRECTIVES`
        /// (named after the directive, `-` as `_`), plus what file-only directives collected.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $( #[doc = concat!("`", $name, "`")] pub $field: $ty, )*
            $( #[doc = concat!("`", $sname, "`")] pub $sfield: $sty, )*
            $( $(#[$xm])* pub $xfield: $xty, )*
        }

        impl Default for Config {
            /// Every directive at its Redis default.
            fn default() -> Config {
                Config {
                    $( $field: default_of::<$ty>(&$kind), )*
                    $( $sfield: $sdefault, )*
                    $( $xfield: Default::default(), )*
                }
            }
        }

        /// Every directive, in Redis's order.
        pub static DIRECTIVES: &[Directive] = &[
            $( Directive {
                name: $name,
                aliases: &[$($alias),*],
                flags: $flags,
                kind: $kind,
                access: Some(Access {
                    get: |c: &Config| Field::to_value(&c.$field),
                    put: |c: &mut Config, v: Value| c.$field = Field::from_value(v),
                }),
            }, )*
            $( Directive { name: $sname, aliases: &[$($salias),*], flags: $sflags, kind: Kind::Special($ops), access: None }, )*
            $( Directive { name: $fname, aliases: &[], flags: MULTI_ARG, kind: Kind::FileOnly(FileOnly::$fkind), access: None }, )*
        ];
    };
}

/// A standard row's default as its field type.
fn default_of<T: Field>(kind: &Kind) -> T {
    T::from_value(default_value(kind))
}

/// A standard row's default as a `Value`.
pub fn default_value(kind: &Kind) -> Value {
    match kind {
        Kind::Bool { default, .. } => Value::Bool(*default),
        Kind::Num(n) => Value::Num(n.default),
        Kind::Enum(e) => Value::Enum(e.default),
        Kind::Str(s) => Value::Str(s.default.unwrap_or("").as_bytes().to_vec()),
        Kind::Special(_) | Kind::FileOnly(_) => Value::Bool(false),
    }
}

/// A `rename-command` line, kept for the command table to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenameCommand {
    pub from: String,
    /// Empty: remove the command.
    pub to: String,
    /// Where it was written, for a fatal report if the command does not exist.
    pub line: usize,
    pub line_text: String,
}

/// A `user` or `loadmodule` line, kept for the ACL and module systems to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLine {
    /// The arguments after the directive name.
    pub args: Vec<String>,
    /// Where it was written, for a fatal report if it turns out to be invalid.
    pub line: usize,
    pub line_text: String,
}

const ACTIVE_DEFRAG: Kind = Kind::Bool {
    default: false,
    check: Some(special::check_active_defrag),
};
const SHUTDOWN_ON_SIG: Kind = Kind::Enum(EnumSpec {
    names: ShutdownFlags::NAMES,
    default: 0,
    check: Some(special::check_shutdown_flags),
});

directives! {
    standard {
        rdbchecksum: bool = "rdbchecksum", [], IMMUTABLE, boolean(true);
        daemonize: bool = "daemonize", [], IMMUTABLE, boolean(false);
        io_threads_do_reads: bool = "io-threads-do-reads", [], DEBUG | IMMUTABLE, boolean(false);
        always_show_logo: bool = "always-show-logo", [], IMMUTABLE, boolean(false);
        protected_mode: bool = "protected-mode", [], MODIFIABLE, boolean(true);
        rdbcompression: bool = "rdbcompression", [], MODIFIABLE, boolean(true);
        rdb_del_sync_files: bool = "rdb-del-sync-files", [], MODIFIABLE, boolean(false);
        activerehashing: bool = "activerehashing", [], MODIFIABLE, boolean(true);
        stop_writes_on_bgsave_error: bool = "stop-writes-on-bgsave-error", [], MODIFIABLE, boolean(true);
        set_proc_title: bool = "set-proc-title", [], IMMUTABLE, boolean(true);
        dynamic_hz: bool = "dynamic-hz", [], MODIFIABLE, boolean(true);
        lazyfree_lazy_eviction: bool = "lazyfree-lazy-eviction", [], DEBUG, boolean(false);
        lazyfree_lazy_expire: bool = "lazyfree-lazy-expire", [], DEBUG, boolean(false);
        lazyfree_lazy_server_del: bool = "lazyfree-lazy-server-del", [], DEBUG, boolean(false);
        lazyfree_lazy_user_del: bool = "lazyfree-lazy-user-del", [], DEBUG, boolean(false);
        lazyfree_lazy_user_flush: bool = "lazyfree-lazy-user-flush", [], DEBUG, boolean(false);
        repl_disable_tcp_nodelay: bool = "repl-disable-tcp-nodelay", [], MODIFIABLE, boolean(false);
        repl_diskless_sync: bool = "repl-diskless-sync", [], DEBUG, boolean(true);
        aof_rewrite_incremental_fsync: bool = "aof-rewrite-incremental-fsync", [], MODIFIABLE, boolean(true);
        no_appendfsync_on_rewrite: bool = "no-appendfsync-on-rewrite", [], MODIFIABLE, boolean(false);
        cluster_require_full_coverage: bool = "cluster-require-full-coverage", [], MODIFIABLE, boolean(true);
        rdb_save_incremental_fsync: bool = "rdb-save-incremental-fsync", [], MODIFIABLE, boolean(true);
        aof_load_truncated: bool = "aof-load-truncated", [], MODIFIABLE, boolean(true);
        aof_use_rdb_preamble: bool = "aof-use-rdb-preamble", [], MODIFIABLE, boolean(true);
        aof_timestamp_enabled: bool = "aof-timestamp-enabled", [], MODIFIABLE, boolean(false);
        cluster_replica_no_failover: bool = "cluster-replica-no-failover", ["cluster-slave-no-failover"], MODIFIABLE, boolean(false);
        replica_lazy_flush: bool = "replica-lazy-flush", ["slave-lazy-flush"], MODIFIABLE, boolean(false);
        replica_serve_stale_data: bool = "replica-serve-stale-data", ["slave-serve-stale-data"], MODIFIABLE, boolean(true);
        replica_read_only: bool = "replica-read-only", ["slave-read-only"], DEBUG, boolean(true);
        replica_ignore_maxmemory: bool = "replica-ignore-maxmemory", ["slave-ignore-maxmemory"], MODIFIABLE, boolean(true);
        jemalloc_bg_thread: bool = "jemalloc-bg-thread", [], MODIFIABLE, boolean(true);
        activedefrag: bool = "activedefrag", [], DEBUG, ACTIVE_DEFRAG;
        syslog_enabled: bool = "syslog-enabled", [], IMMUTABLE, boolean(false);
        cluster_enabled: bool = "cluster-enabled", [], IMMUTABLE, boolean(false);
        appendonly: bool = "appendonly", [], DENY_LOADING, boolean(false);
        cluster_allow_reads_when_down: bool = "cluster-allow-reads-when-down", [], MODIFIABLE, boolean(false);
        cluster_allow_pubsubshard_when_down: bool = "cluster-allow-pubsubshard-when-down", [], MODIFIABLE, boolean(true);
        crash_log_enabled: bool = "crash-log-enabled", [], MODIFIABLE, boolean(true);
        crash_memcheck_enabled: bool = "crash-memcheck-enabled", [], MODIFIABLE, boolean(true);
        use_exit_on_panic: bool = "use-exit-on-panic", [], HIDDEN, boolean(false);
        disable_thp: bool = "disable-thp", [], IMMUTABLE, boolean(true);
        cluster_allow_replica_migration: bool = "cluster-allow-replica-migration", [], MODIFIABLE, boolean(true);
        replica_announced: bool = "replica-announced", [], MODIFIABLE, boolean(true);
        latency_tracking: bool = "latency-tracking", [], MODIFIABLE, boolean(true);
        aof_disable_auto_gc: bool = "aof-disable-auto-gc", [], MODIFIABLE, boolean(false);
        replica_ignore_disk_write_errors: bool = "replica-ignore-disk-write-errors", [], MODIFIABLE, boolean(false);

        aclfile: String = "aclfile", [], IMMUTABLE, string("");
        unixsocket: String = "unixsocket", [], IMMUTABLE, nullable();
        pidfile: String = "pidfile", [], IMMUTABLE, nullable();
        replica_announce_ip: String = "replica-announce-ip", ["slave-announce-ip"], MODIFIABLE, nullable();
        masteruser: String = "masteruser", [], SENSITIVE, nullable();
        cluster_announce_ip: String = "cluster-announce-ip", [], MODIFIABLE, nullable();
        cluster_config_file: String = "cluster-config-file", [], IMMUTABLE, string("nodes.conf");
        cluster_announce_hostname: String = "cluster-announce-hostname", [], MODIFIABLE,
            Kind::Str(StrSpec { default: None, empty_is_null: true, check: Some(special::check_hostname) });
        // Valkey 8's; hidden so that CONFIG GET * lists what 7.0 lists.
        cluster_announce_client_ipv4: String = "cluster-announce-client-ipv4", [], HIDDEN,
            Kind::Str(StrSpec { default: None, empty_is_null: true, check: Some(special::check_ipv4) });
        cluster_announce_client_ipv6: String = "cluster-announce-client-ipv6", [], HIDDEN,
            Kind::Str(StrSpec { default: None, empty_is_null: true, check: Some(special::check_ipv6) });
        syslog_ident: String = "syslog-ident", [], IMMUTABLE, string("redis");
        dbfilename: String = "dbfilename", [], PROTECTED, checked_string("dump.rdb", special::check_dbfilename);
        appendfilename: String = "appendfilename", [], IMMUTABLE, checked_string("appendonly.aof", special::check_appendfilename);
        appenddirname: String = "appenddirname", [], IMMUTABLE, checked_string("appendonlydir", special::check_appenddirname);
        server_cpulist: String = "server_cpulist", [], IMMUTABLE, nullable();
        bio_cpulist: String = "bio_cpulist", [], IMMUTABLE, nullable();
        aof_rewrite_cpulist: String = "aof_rewrite_cpulist", [], IMMUTABLE, nullable();
        bgsave_cpulist: String = "bgsave_cpulist", [], IMMUTABLE, nullable();
        ignore_warnings: String = "ignore-warnings", [], MODIFIABLE, string("");
        proc_title_template: String = "proc-title-template", [], MODIFIABLE,
            checked_string("{title} {listen-addr} {server-mode}", special::check_proc_title_template);
        bind_source_addr: String = "bind-source-addr", [], MODIFIABLE, nullable();
        logfile: String = "logfile", [], IMMUTABLE, string("");
        masterauth: Option<Vec<u8>> = "masterauth", [], SENSITIVE, nullable();
        requirepass: Option<Vec<u8>> = "requirepass", [], SENSITIVE, nullable();

        supervised: Supervised = "supervised", [], IMMUTABLE, choice(Supervised::NAMES, Supervised::No.value());
        syslog_facility: SyslogFacility = "syslog-facility", [], IMMUTABLE,
            choice(SyslogFacility::NAMES, SyslogFacility::Local0.value());
        repl_diskless_load: ReplDisklessLoad = "repl-diskless-load", [], DEBUG | DENY_LOADING,
            choice(ReplDisklessLoad::NAMES, ReplDisklessLoad::Disabled.value());
        loglevel: LogLevel = "loglevel", [], MODIFIABLE, choice(LogLevel::NAMES, LogLevel::Notice.value());
        maxmemory_policy: MaxmemoryPolicy = "maxmemory-policy", [], MODIFIABLE,
            choice(MaxmemoryPolicy::NAMES, MaxmemoryPolicy::NoEviction.value());
        appendfsync: AppendFsync = "appendfsync", [], MODIFIABLE, choice(AppendFsync::NAMES, AppendFsync::Everysec.value());
        oom_score_adj: OomScoreAdj = "oom-score-adj", [], MODIFIABLE, choice(OOM_SCORE_ADJ_NAMES, OomScoreAdj::No.value());
        acl_pubsub_default: AclPubsubDefault = "acl-pubsub-default", [], MODIFIABLE,
            choice(AclPubsubDefault::NAMES, AclPubsubDefault::ResetChannels.value());
        sanitize_dump_payload: SanitizeDumpPayload = "sanitize-dump-payload", [], DEBUG,
            choice(SanitizeDumpPayload::NAMES, SanitizeDumpPayload::No.value());
        enable_protected_configs: EnableCommand = "enable-protected-configs", [], IMMUTABLE,
            choice(EnableCommand::NAMES, EnableCommand::No.value());
        enable_debug_command: EnableCommand = "enable-debug-command", [], IMMUTABLE,
            choice(EnableCommand::NAMES, EnableCommand::No.value());
        enable_module_command: EnableCommand = "enable-module-command", [], IMMUTABLE,
            choice(EnableCommand::NAMES, EnableCommand::No.value());
        cluster_preferred_endpoint_type: ClusterEndpointType = "cluster-preferred-endpoint-type", [], MODIFIABLE,
            choice(ClusterEndpointType::NAMES, ClusterEndpointType::Ip.value());
        propagation_error_behavior: PropagationErrorBehavior = "propagation-error-behavior", [], MODIFIABLE,
            choice(PropagationErrorBehavior::NAMES, PropagationErrorBehavior::Ignore.value());
        shutdown_on_sigint: ShutdownFlags = "shutdown-on-sigint", [], MULTI_ARG, SHUTDOWN_ON_SIG;
        shutdown_on_sigterm: ShutdownFlags = "shutdown-on-sigterm", [], MULTI_ARG, SHUTDOWN_ON_SIG;

        databases: usize = "databases", [], IMMUTABLE, int(1, INT_MAX, 16);
        port: u16 = "port", [], MODIFIABLE, int(0, 65535, 6379);
        io_threads: usize = "io-threads", [], DEBUG | IMMUTABLE, int(1, 128, 1);
        auto_aof_rewrite_percentage: i64 = "auto-aof-rewrite-percentage", [], MODIFIABLE, int(0, INT_MAX, 100);
        cluster_replica_validity_factor: i64 = "cluster-replica-validity-factor", ["cluster-slave-validity-factor"],
            MODIFIABLE, int(0, INT_MAX, 10);
        list_max_listpack_size: i64 = "list-max-listpack-size", ["list-max-ziplist-size"], MODIFIABLE,
            int(INT_MIN, INT_MAX, -2);
        tcp_keepalive: i64 = "tcp-keepalive", [], MODIFIABLE, int(0, INT_MAX, 300);
        cluster_migration_barrier: i64 = "cluster-migration-barrier", [], MODIFIABLE, int(0, INT_MAX, 1);
        active_defrag_cycle_min: i64 = "active-defrag-cycle-min", [], MODIFIABLE, int(1, 99, 1);
        active_defrag_cycle_max: i64 = "active-defrag-cycle-max", [], MODIFIABLE, int(1, 99, 25);
        active_defrag_threshold_lower: i64 = "active-defrag-threshold-lower", [], MODIFIABLE, int(0, 1000, 10);
        active_defrag_threshold_upper: i64 = "active-defrag-threshold-upper", [], MODIFIABLE, int(0, 1000, 100);
        lfu_log_factor: i64 = "lfu-log-factor", [], MODIFIABLE, int(0, INT_MAX, 10);
        lfu_decay_time: i64 = "lfu-decay-time", [], MODIFIABLE, int(0, INT_MAX, 1);
        replica_priority: i64 = "replica-priority", ["slave-priority"], MODIFIABLE, int(0, INT_MAX, 100);
        repl_diskless_sync_delay: i64 = "repl-diskless-sync-delay", [], MODIFIABLE, int(0, INT_MAX, 5);
        maxmemory_samples: i64 = "maxmemory-samples", [], MODIFIABLE, int(1, INT_MAX, 5);
        maxmemory_eviction_tenacity: i64 = "maxmemory-eviction-tenacity", [], MODIFIABLE, int(0, 100, 10);
        timeout: i64 = "timeout", [], MODIFIABLE, int(0, INT_MAX, 0);
        replica_announce_port: u16 = "replica-announce-port", ["slave-announce-port"], MODIFIABLE, int(0, 65535, 0);
        tcp_backlog: i64 = "tcp-backlog", [], IMMUTABLE, int(0, INT_MAX, 511);
        cluster_port: u16 = "cluster-port", [], IMMUTABLE, int(0, 65535, 0);
        cluster_announce_bus_port: u16 = "cluster-announce-bus-port", [], MODIFIABLE, int(0, 65535, 0);
        cluster_announce_port: u16 = "cluster-announce-port", [], MODIFIABLE, int(0, 65535, 0);
        cluster_announce_tls_port: u16 = "cluster-announce-tls-port", [], MODIFIABLE, int(0, 65535, 0);
        repl_timeout: i64 = "repl-timeout", [], MODIFIABLE, int(1, INT_MAX, 60);
        repl_ping_replica_period: i64 = "repl-ping-replica-period", ["repl-ping-slave-period"], MODIFIABLE,
            int(1, INT_MAX, 10);
        list_compress_depth: i64 = "list-compress-depth", [], DEBUG, int(0, INT_MAX, 0);
        rdb_key_save_delay: i64 = "rdb-key-save-delay", [], HIDDEN, int(INT_MIN, INT_MAX, 0);
        key_load_delay: i64 = "key-load-delay", [], HIDDEN, int(INT_MIN, INT_MAX, 0);
        active_expire_effort: i64 = "active-expire-effort", [], MODIFIABLE, int(1, 10, 1);
        hz: i64 = "hz", [], MODIFIABLE, int(0, INT_MAX, 10);
        min_replicas_to_write: i64 = "min-replicas-to-write", ["min-slaves-to-write"], MODIFIABLE, int(0, INT_MAX, 0);
        min_replicas_max_lag: i64 = "min-replicas-max-lag", ["min-slaves-max-lag"], MODIFIABLE, int(0, INT_MAX, 10);
        watchdog_period: i64 = "watchdog-period", [], HIDDEN, int(0, INT_MAX, 0);
        shutdown_timeout: i64 = "shutdown-timeout", [], MODIFIABLE, int(0, INT_MAX, 10);
        repl_diskless_sync_max_replicas: i64 = "repl-diskless-sync-max-replicas", [], MODIFIABLE, int(0, INT_MAX, 0);

        maxclients: u64 = "maxclients", [], MODIFIABLE, uint(1, UINT_MAX, 10000);
        unixsocketperm: u32 = "unixsocketperm", [], IMMUTABLE, num(0, 0o777, 0, true, NumFormat::Octal);
        socket_mark_id: u32 = "socket-mark-id", [], IMMUTABLE, uint(0, UINT_MAX, 0);

        active_defrag_max_scan_fields: u64 = "active-defrag-max-scan-fields", [], MODIFIABLE, int(1, LONG_MAX, 1000);
        slowlog_max_len: u64 = "slowlog-max-len", [], MODIFIABLE, int(0, LONG_MAX, 128);
        acllog_max_len: u64 = "acllog-max-len", [], MODIFIABLE, int(0, LONG_MAX, 128);

        busy_reply_threshold: i64 = "busy-reply-threshold", ["lua-time-limit"], MODIFIABLE, int(0, LONG_MAX, 5000);
        cluster_node_timeout: i64 = "cluster-node-timeout", [], MODIFIABLE, int(0, LONG_MAX, 15000);
        slowlog_log_slower_than: i64 = "slowlog-log-slower-than", [], MODIFIABLE, int(-1, LONG_MAX, 10000);
        latency_monitor_threshold: i64 = "latency-monitor-threshold", [], MODIFIABLE, int(0, LONG_MAX, 0);
        proto_max_bulk_len: u64 = "proto-max-bulk-len", [], DEBUG, mem(1 << 20, LONG_MAX, 512 << 20);
        stream_node_max_entries: i64 = "stream-node-max-entries", [], MODIFIABLE, int(0, LONG_MAX, 100);
        repl_backlog_size: u64 = "repl-backlog-size", [], MODIFIABLE, mem(1, LONG_MAX, 1 << 20);

        maxmemory: u64 = "maxmemory", [], MODIFIABLE, umem(0, ULLONG_MAX, 0);
        cluster_link_sendbuf_limit: u64 = "cluster-link-sendbuf-limit", [], MODIFIABLE, umem(0, ULLONG_MAX, 0);

        hash_max_listpack_entries: usize = "hash-max-listpack-entries", ["hash-max-ziplist-entries"], MODIFIABLE,
            uint(0, LONG_MAX, 512);
        set_max_intset_entries: usize = "set-max-intset-entries", [], MODIFIABLE, uint(0, LONG_MAX, 512);
        zset_max_listpack_entries: usize = "zset-max-listpack-entries", ["zset-max-ziplist-entries"], MODIFIABLE,
            uint(0, LONG_MAX, 128);
        active_defrag_ignore_bytes: u64 = "active-defrag-ignore-bytes", [], MODIFIABLE, umem(1, LONG_MAX, 100 << 20);
        hash_max_listpack_value: usize = "hash-max-listpack-value", ["hash-max-ziplist-value"], MODIFIABLE,
            umem(0, LONG_MAX, 64);
        stream_node_max_bytes: u64 = "stream-node-max-bytes", [], MODIFIABLE, umem(0, LONG_MAX, 4096);
        zset_max_listpack_value: usize = "zset-max-listpack-value", ["zset-max-ziplist-value"], MODIFIABLE,
            umem(0, LONG_MAX, 64);
        hll_sparse_max_bytes: u64 = "hll-sparse-max-bytes", [], MODIFIABLE, umem(0, LONG_MAX, 3000);
        tracking_table_max_keys: u64 = "tracking-table-max-keys", [], MODIFIABLE, uint(0, LONG_MAX, 1_000_000);
        client_query_buffer_limit: u64 = "client-query-buffer-limit", [], DEBUG, umem(1 << 20, LONG_MAX, 1 << 30);
        maxmemory_clients: i64 = "maxmemory-clients", [], MODIFIABLE,
            num(-100, LONG_MAX, 0, false, NumFormat::MemoryOrPercent);

        repl_backlog_ttl: i64 = "repl-backlog-ttl", [], MODIFIABLE, int(0, LONG_MAX, 3600);
        auto_aof_rewrite_min_size: u64 = "auto-aof-rewrite-min-size", [], MODIFIABLE, mem(0, LONG_MAX, 64 << 20);
        loading_process_events_interval_bytes: i64 = "loading-process-events-interval-bytes", [], HIDDEN,
            int(1024, INT_MAX, 2 << 20);

        shard_count: usize = "shard-count", [], IMMUTABLE, int(0, 16384, 0);

        tls_port: u16 = "tls-port", [], MODIFIABLE, int(0, 65535, 0);
        tls_session_cache_size: i64 = "tls-session-cache-size", [], MODIFIABLE, int(0, INT_MAX, 20 * 1024);
        tls_session_cache_timeout: i64 = "tls-session-cache-timeout", [], MODIFIABLE, int(0, INT_MAX, 300);
        tls_cluster: bool = "tls-cluster", [], MODIFIABLE, boolean(false);
        tls_replication: bool = "tls-replication", [], MODIFIABLE, boolean(false);
        tls_auth_clients: TlsAuthClients = "tls-auth-clients", [], MODIFIABLE,
            choice(TlsAuthClients::NAMES, TlsAuthClients::Yes.value());
        tls_prefer_server_ciphers: bool = "tls-prefer-server-ciphers", [], MODIFIABLE, boolean(false);
        tls_session_caching: bool = "tls-session-caching", [], MODIFIABLE, boolean(true);
        tls_cert_file: String = "tls-cert-file", [], VOLATILE, nullable();
        tls_key_file: String = "tls-key-file", [], VOLATILE, nullable();
        tls_key_file_pass: String = "tls-key-file-pass", [], MODIFIABLE, nullable();
        tls_client_cert_file: String = "tls-client-cert-file", [], VOLATILE, nullable();
        tls_client_key_file: String = "tls-client-key-file", [], VOLATILE, nullable();
        tls_client_key_file_pass: String = "tls-client-key-file-pass", [], MODIFIABLE, nullable();
        tls_dh_params_file: String = "tls-dh-params-file", [], VOLATILE, nullable();
        tls_ca_cert_file: String = "tls-ca-cert-file", [], VOLATILE, nullable();
        tls_ca_cert_dir: String = "tls-ca-cert-dir", [], VOLATILE, nullable();
        tls_protocols: String = "tls-protocols", [], MODIFIABLE, nullable();
        tls_ciphers: String = "tls-ciphers", [], MODIFIABLE, nullable();
        tls_ciphersuites: String = "tls-ciphersuites", [], MODIFIABLE, nullable();
    }
    special {
        dir: String = String::new();
            "dir", [], PROTECTED | DENY_LOADING, &special::DIR;
        save: Vec<(u64, u64)> = vec![(3600, 1), (300, 100), (60, 10000)];
            "save", [], MULTI_ARG, &special::SAVE;
        client_output_buffer_limit: ClientOutputBufferLimits = ClientOutputBufferLimits::default();
            "client-output-buffer-limit", [], MULTI_ARG, &special::CLIENT_OUTPUT_BUFFER_LIMIT;
        oom_score_adj_values: [i32; 3] = [0, 200, 800];
            "oom-score-adj-values", [], MULTI_ARG, &special::OOM_SCORE_ADJ_VALUES;
        notify_keyspace_events: KeyspaceEvents = KeyspaceEvents::default();
            "notify-keyspace-events", [], MODIFIABLE, &special::NOTIFY_KEYSPACE_EVENTS;
        bind: Vec<String> = vec!["*".to_string(), "-::*".to_string()];
            "bind", [], MULTI_ARG, &special::BIND;
        replicaof: Option<ReplicaOf> = None;
            "replicaof", ["slaveof"], IMMUTABLE | MULTI_ARG, &special::REPLICAOF;
        latency_tracking_info_percentiles: Vec<f64> = vec![50.0, 99.0, 99.9];
            "latency-tracking-info-percentiles", [], MULTI_ARG, &special::LATENCY_TRACKING_INFO_PERCENTILES;
    }
    file_only {
        "include", Include;
        "rename-command", RenameCommand;
        "user", User;
        "loadmodule", LoadModule;
        "sentinel", Sentinel;
        "list-max-ziplist-entries", Deprecated;
        "list-max-ziplist-value", Deprecated;
        "lua-replicate-commands", Deprecated;
    }
    extra {
        /// `rename-command` lines, in file order.
        rename_commands: Vec<RenameCommand>,
        /// `user` lines (user name, then ACL rules), in file order.
        users: Vec<FileLine>,
        /// `loadmodule` lines (path, then the module's arguments), in file order.
        load_modules: Vec<FileLine>,
        /// Module configs (`module.name value...`): the last value given for each name.
        module_configs: Vec<(String, String)>,
    }
}

/// The directive called `name` (or one of its aliases), case-insensitively, with whether
/// `name` is an alias. File-only rows are included.
pub fn lookup(name: &[u8]) -> Option<(&'static Directive, bool)> {
    DIRECTIVES.iter().find_map(|d| {
        d.names()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|i| (d, i > 0))
    })
}

/// Like `lookup`, restricted to what CONFIG GET/SET and REWRITE know.
pub fn lookup_runtime(name: &[u8]) -> Option<(&'static Directive, bool)> {
    lookup(name).filter(|(d, _)| d.is_runtime())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for d in DIRECTIVES {
            for n in d.names() {
                assert_eq!(n, n.to_ascii_lowercase());
                assert!(seen.insert(n), "duplicate directive name {n}");
            }
        }
    }

    #[test]
    fn aliases_resolve_to_their_primary() {
        for (alias, primary) in [
            ("slaveof", "replicaof"),
            ("SLAVE-SERVE-STALE-DATA", "replica-serve-stale-data"),
            ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
            ("hash-max-ziplist-value", "hash-max-listpack-value"),
            ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
            ("zset-max-ziplist-value", "zset-max-listpack-value"),
            ("list-max-ziplist-size", "list-max-listpack-size"),
            ("lua-time-limit", "busy-reply-threshold"),
            ("slave-priority", "replica-priority"),
        ] {
            let (d, is_alias) = lookup(alias.as_bytes()).unwrap();
            assert_eq!((d.name, is_alias), (primary, true));
        }
        assert_eq!(
            lookup(b"port").map(|(d, a)| (d.name, a)),
            Some(("port", false))
        );
        assert!(lookup(b"no-such-directive").is_none());
    }

    #[test]
    fn every_runtime_directive_of_redis_7_0_15_is_present() {
        let runtime = DIRECTIVES
            .iter()
            .filter(|d| d.is_runtime())
            .flat_map(|d| d.names())
            .count();
        // 192 names in CONFIG GET * of redis-server 7.0.15 (TLS build), five hidden ones,
        // ferrodis's shard-count, and Valkey 8's two (hidden) client IP directives.
        assert_eq!(runtime, 192 + 5 + 1 + 2);
        assert!(lookup_runtime(b"include").is_none());
        assert!(lookup(b"include").is_some());
    }

    #[test]
    fn defaults_match_redis() {
        let c = Config::default();
        assert_eq!(
            (c.port, c.databases, c.hz, c.maxclients),
            (6379, 16, 10, 10000)
        );
        assert_eq!(c.proto_max_bulk_len, 512 << 20);
        assert_eq!(c.client_query_buffer_limit, 1 << 30);
        assert_eq!(c.maxmemory_policy, MaxmemoryPolicy::NoEviction);
        assert_eq!(c.loglevel, LogLevel::Notice);
        assert_eq!(c.cluster_config_file, "nodes.conf");
        assert_eq!(c.list_max_listpack_size, -2);
        assert_eq!(c.requirepass, None);
        assert_eq!(c.bind, vec!["*", "-::*"]);
        assert_eq!(c.shard_count, 0);
        assert!(c.protected_mode && !c.appendonly && c.latency_tracking);
    }
}

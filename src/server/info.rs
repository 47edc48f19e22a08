//! INFO: the sections and field names of Redis 7.0.15, in its order, with `default`, `all`
//! and `everything` selecting sections as Redis does. Figures we do not track yet (forks, AOF,
//! replication links) are reported with the values a fresh Redis primary shows.

use super::state::ServerState;
use super::{FERRODIS_VERSION, REDIS_VERSION};
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "module_list",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections a request selects.
pub struct Selection {
    names: Vec<String>,
    all: bool,
}

impl Selection {
    pub fn parse(args: &[&[u8]]) -> Selection {
        let mut sel = Selection {
            names: Vec::new(),
            all: false,
        };
        if args.is_empty() {
            sel.names = DEFAULT_SECTIONS.iter().map(|s| s.to_string()).collect();
        }
        for a in args {
            let s = String::from_utf8_lossy(a).to_ascii_lowercase();
            match s.as_str() {
                "default" => sel
                    .names
                    .extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
                "all" | "everything" => sel.all = true,
                _ => sel.names.push(s),
            }
        }
        sel
    }
    fn wants(&self, section: &str) -> bool {
        self.all || self.names.iter().any(|n| n == section)
    }
}

/// Bytes allocated right now (Redis's `used_memory`), counted by the global allocator.
pub fn used_memory() -> usize {
    crate::alloc::used()
}

/// Refreshes jemalloc's statistics (they are snapshots taken at each epoch).
pub fn refresh_allocator_stats() {
    let _ = tikv_jemalloc_ctl::epoch::advance();
}

fn jemalloc(stat: fn() -> tikv_jemalloc_ctl::Result<usize>) -> usize {
    stat().unwrap_or(0)
}

pub fn human_bytes(n: u64) -> String {
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if n < 1024 * 1024 {
        format!("{:.2}K", d / 1024.0)
    } else if n < 1024 * 1024 * 1024 {
        format!("{:.2}M", d / (1024.0 * 1024.0))
    } else if n < 1024u64.pow(4) {
        format!("{:.2}G", d / 1024f64.powi(3))
    } else if n < 1024u64.pow(5) {
        format!("{:.2}T", d / 1024f64.powi(4))
    } else {
        format!("{:.2}P", d / 1024f64.powi(5))
    }
}

pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64) * (page.max(0) as u64)
}

fn rusage(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_stime), t(ru.ru_utime))
}

/// Renders the selected sections.
pub fn render(state: &ServerState, args: &[&[u8]], client_db_resp: (u64, u64)) -> String {
    let sel = Selection::parse(args);
    let mut out = String::new();
    let mut first = true;
    let mut section = |name: &str, title: &str, body: &dyn Fn(&mut String)| {
        if !sel.wants(name) {
            return;
        }
        if !first {
            out.push_str("\r\n");
        }
        first = false;
        let _ = write!(out, "# {title}\r\n");
        body(&mut out);
    };
    section("server", "Server", &|o| server_section(state, o));
    section("clients", "Clients", &|o| clients_section(state, o));
    section("memory", "Memory", &|o| memory_section(state, o));
    section("persistence", "Persistence", &|o| {
        persistence_section(state, o)
    });
    section("stats", "Stats", &|o| stats_section(state, o));
    section("replication", "Replication", &|o| {
        replication_section(state, o)
    });
    section("cpu", "CPU", &|o| cpu_section(o));
    section("module_list", "Modules", &|_| {});
    if sel.all || sel.names.iter().any(|n| n == "commandstats") {
        section("commandstats", "Commandstats", &|o| {
            commandstats_section(state, o)
        });
    }
    section("errorstats", "Errorstats", &|o| {
        errorstats_section(state, o)
    });
    if sel.all || sel.names.iter().any(|n| n == "latencystats") {
        section("latencystats", "Latencystats", &|o| {
            latencystats_section(state, o)
        });
    }
    section("cluster", "Cluster", &|o| {
        let _ = write!(
            o,
            "cluster_enabled:{}\r\n",
            state.config().cluster_enabled as u8
        );
    });
    section("keyspace", "Keyspace", &|o| keyspace_section(state, o));
    let _ = client_db_resp;
    out
}

macro_rules! fields {
    ($o:expr, $($name:literal => $val:expr),* $(,)?) => {
        $( let _ = write!($o, concat!($name, ":{}\r\n"), $val); )*
    };
}

fn server_section(state: &ServerState, o: &mut String) {
    let cfg = state.config();
    let now_us = super::connection::unix_us();
    let uptime = (now_us / 1000).saturating_sub(state.start_time_ms) / 1000;
    let mode = if cfg.cluster_enabled {
        "cluster"
    } else {
        "standalone"
    };
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we pass.
    unsafe { libc::uname(&mut uts) };
    let cstr = |b: &[libc::c_char]| {
        unsafe { std::ffi::CStr::from_ptr(b.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    let os = format!(
        "{} {} {}",
        cstr(&uts.sysname),
        cstr(&uts.release),
        cstr(&uts.machine)
    );
    fields!(o,
        "redis_version" => REDIS_VERSION,
        "redis_git_sha1" => "00000000",
        "redis_git_dirty" => 0,
        "redis_build_id" => format!("ferrodis-{FERRODIS_VERSION}"),
        "redis_mode" => mode,
        "os" => os,
        "arch_bits" => 64,
        "monotonic_clock" => "POSIX clock_gettime",
        "multiplexing_api" => "epoll",
        "atomicvar_api" => "c11-builtin",
        "gcc_version" => "0.0.0",
        "process_id" => state.pid,
        "process_supervised" => "no",
        "run_id" => state.run_id,
        "tcp_port" => state.tcp_port.load(Relaxed),
        "server_time_usec" => now_us,
        "uptime_in_seconds" => uptime,
        "uptime_in_days" => uptime / 86400,
        "hz" => cfg.hz,
        "configured_hz" => cfg.hz,
        "lru_clock" => (now_us / 1_000_000) & ((1 << 24) - 1),
        "executable" => state.executable,
        "config_file" => state.config_file.as_deref().unwrap_or(""),
        "io_threads_active" => u8::from(cfg.io_threads > 1),
    );
}

fn clients_section(state: &ServerState, o: &mut String) {
    let cfg = state.config();
    fields!(o,
        "connected_clients" => state.connected_clients.load(Relaxed),
        "cluster_connections" => 0,
        "maxclients" => cfg.maxclients,
        "client_recent_max_input_buffer" => 20480,
        "client_recent_max_output_buffer" => 0,
        "blocked_clients" => state.blocked_clients.load(Relaxed),
        "tracking_clients" => 0,
        "clients_in_timeout_table" => 0,
    );
}

fn memory_section(state: &ServerState, o: &mut String) {
    let cfg = state.config();
    refresh_allocator_stats();
    let used = used_memory() as u64;
    let scripts = crate::commands::scripting::ScriptCache::get();
    let (libraries, functions, function_bytes) = crate::commands::scripting::functions::counts();
    let peak = state.stat_peak_memory.fetch_max(used, Relaxed).max(used);
    let rss = rss_bytes();
    let active = jemalloc(tikv_jemalloc_ctl::stats::active::read) as u64;
    let resident = jemalloc(tikv_jemalloc_ctl::stats::resident::read) as u64;
    let total = total_system_memory();
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    fields!(o,
        "used_memory" => used,
        "used_memory_human" => human_bytes(used),
        "used_memory_rss" => rss,
        "used_memory_rss_human" => human_bytes(rss),
        "used_memory_peak" => peak,
        "used_memory_peak_human" => human_bytes(peak),
        "used_memory_peak_perc" => format!("{:.2}%", ratio(used, peak) * 100.0),
        "used_memory_overhead" => 0,
        "used_memory_startup" => 0,
        "used_memory_dataset" => used,
        "used_memory_dataset_perc" => "100.00%",
        "allocator_allocated" => jemalloc(tikv_jemalloc_ctl::stats::allocated::read),
        "allocator_active" => active,
        "allocator_resident" => resident,
        "total_system_memory" => total,
        "total_system_memory_human" => human_bytes(total),
        "used_memory_lua" => 31744,
        "used_memory_vm_eval" => 31744,
        "used_memory_lua_human" => "31.00K",
        "used_memory_scripts_eval" => scripts.body_bytes(),
        "number_of_cached_scripts" => scripts.len(),
        "number_of_functions" => functions,
        "number_of_libraries" => libraries,
        "used_memory_vm_functions" => 32768,
        "used_memory_vm_total" => 64512,
        "used_memory_vm_total_human" => "63.00K",
        "used_memory_functions" => 184 + function_bytes,
        "used_memory_scripts" => 184 + function_bytes,
        "used_memory_scripts_human" => human_bytes(184 + function_bytes as u64),
        "maxmemory" => cfg.maxmemory,
        "maxmemory_human" => human_bytes(cfg.maxmemory),
        "maxmemory_policy" => cfg.maxmemory_policy.name(),
        "allocator_frag_ratio" => format!("{:.2}", ratio(active, used)),
        "allocator_frag_bytes" => active.saturating_sub(used),
        "allocator_rss_ratio" => format!("{:.2}", ratio(resident, active)),
        "allocator_rss_bytes" => resident.saturating_sub(active),
        "rss_overhead_ratio" => format!("{:.2}", ratio(rss, resident)),
        "rss_overhead_bytes" => rss as i64 - resident as i64,
        "mem_fragmentation_ratio" => format!("{:.2}", ratio(rss, used)),
        "mem_fragmentation_bytes" => rss as i64 - used as i64,
        "mem_not_counted_for_evict" => state.memory_not_counted_for_evict(),
        "mem_replication_backlog" => 0,
        "mem_total_replication_buffers" => 0,
        "mem_clients_slaves" => state.backlog.lock().queued_total(),
        "mem_clients_normal" => state.client_memory.load(Relaxed),
        "mem_cluster_links" => 0,
        "mem_aof_buffer" => state.aof_feed.lock().len(),
        "mem_allocator" => "jemalloc-5.3.0",
        "active_defrag_running" => 0,
        "lazyfree_pending_objects" => 0,
        "lazyfreed_objects" => 0,
    );
}

fn persistence_section(state: &ServerState, o: &mut String) {
    let aof = &state.aof;
    let rewriting = aof.rewrite_in_progress.load(Relaxed);
    let current_rewrite_secs = match rewriting {
        true => {
            ((super::connection::unix_us() / 1000)
                .saturating_sub(aof.rewrite_started_ms.load(Relaxed))
                / 1000) as i64
        }
        false => -1,
    };
    let ok_err = |ok: bool| if ok { "ok" } else { "err" };
    let rdb = &state.rdb;
    let save = rdb.progress();
    let loading = state.loading.load(Relaxed);
    fields!(o,
        "loading" => loading as u8,
        "async_loading" => 0,
        "current_cow_peak" => save.copied_bytes,
        "current_cow_size" => save.copied_bytes,
        "current_cow_size_age" => 0,
        "current_fork_perc" => format!("{:.2}", save.percent()),
        "current_save_keys_processed" => save.keys_processed,
        "current_save_keys_total" => save.keys_total,
        "rdb_changes_since_last_save" => state.dirty.load(Relaxed),
        "rdb_bgsave_in_progress" => rdb.in_progress.load(Relaxed) as u8,
        "rdb_last_save_time" => state.last_save_secs.load(Relaxed),
        "rdb_last_bgsave_status" => ok_err(rdb.last_bgsave_ok.load(Relaxed)),
        "rdb_last_bgsave_time_sec" => rdb.last_bgsave_time_sec.load(Relaxed),
        "rdb_current_bgsave_time_sec" => rdb.current_secs(),
        "rdb_saves" => rdb.saves.load(Relaxed),
        "rdb_last_cow_size" => rdb.last_cow_bytes.load(Relaxed),
        "rdb_last_load_keys_expired" => rdb.last_load_keys_expired.load(Relaxed),
        "rdb_last_load_keys_loaded" => rdb.last_load_keys_loaded.load(Relaxed),
        "aof_enabled" => aof.on.load(Relaxed) as u8,
        "aof_rewrite_in_progress" => rewriting as u8,
        "aof_rewrite_scheduled" => aof.rewrite_scheduled.load(Relaxed) as u8,
        "aof_last_rewrite_time_sec" => aof.last_rewrite_time_sec.load(Relaxed),
        "aof_current_rewrite_time_sec" => current_rewrite_secs,
        "aof_last_bgrewrite_status" => ok_err(aof.last_rewrite_ok.load(Relaxed)),
        "aof_rewrites" => aof.rewrites.load(Relaxed),
        "aof_rewrites_consecutive_failures" => aof.consecutive_failures.load(Relaxed),
        "aof_last_write_status" => ok_err(aof.last_write_ok.load(Relaxed)),
        "aof_last_cow_size" => 0,
        "module_fork_in_progress" => 0,
        "module_fork_last_cow_size" => 0,
    );
    if aof.on.load(Relaxed) {
        fields!(o,
            "aof_current_size" => aof.current_size.load(Relaxed),
            "aof_base_size" => aof.base_size.load(Relaxed),
            "aof_pending_rewrite" => aof.rewrite_scheduled.load(Relaxed) as u8,
            "aof_buffer_length" => state.aof_feed.lock().len(),
            "aof_pending_bio_fsync" => 0,
            "aof_delayed_fsync" => 0,
        );
    }
    if loading {
        let now_secs = (super::connection::unix_us() / 1_000_000) as i64;
        let f = state.load_progress.figures(now_secs);
        fields!(o,
            "loading_start_time" => f.start_secs,
            "loading_total_bytes" => f.total_bytes,
            "loading_rdb_used_mem" => f.rdb_used_mem,
            "loading_loaded_bytes" => f.loaded_bytes,
            "loading_loaded_perc" => format!("{:.2}", f.percent),
            "loading_eta_seconds" => f.eta_secs,
        );
    }
}

fn stats_section(state: &ServerState, o: &mut String) {
    let s = &state.stats;
    let g = |a: &crate::util::Counter| a.load(Relaxed);
    fields!(o,
        "total_connections_received" => g(&s.total_connections_received),
        "total_commands_processed" => g(&s.total_commands_processed),
        "instantaneous_ops_per_sec" => 0,
        "total_net_input_bytes" => g(&s.net_input_bytes),
        "total_net_output_bytes" => g(&s.net_output_bytes),
        "total_net_repl_input_bytes" => 0,
        "total_net_repl_output_bytes" => 0,
        "instantaneous_input_kbps" => "0.00",
        "instantaneous_output_kbps" => "0.00",
        "instantaneous_input_repl_kbps" => "0.00",
        "instantaneous_output_repl_kbps" => "0.00",
        "rejected_connections" => g(&s.rejected_connections),
        "sync_full" => g(&s.sync_full),
        "sync_partial_ok" => g(&s.sync_partial_ok),
        "sync_partial_err" => g(&s.sync_partial_err),
        "expired_keys" => g(&s.expired_keys),
        "expired_stale_perc" => "0.00",
        "expired_time_cap_reached_count" => g(&s.expired_time_cap_reached_count),
        "expire_cycle_cpu_milliseconds" => g(&s.expire_cycle_cpu_milliseconds),
        "evicted_keys" => g(&s.evicted_keys),
        "evicted_clients" => state.evicted_clients.load(Relaxed),
        "total_eviction_exceeded_time" => 0,
        "current_eviction_exceeded_time" => 0,
        "keyspace_hits" => g(&s.keyspace_hits),
        "keyspace_misses" => g(&s.keyspace_misses),
        "pubsub_channels" => state.pubsub.channel_count(),
        "pubsub_patterns" => state.pubsub.pattern_count(),
        "pubsubshard_channels" => state.pubsub.shard_channel_count(),
        "latest_fork_usec" => 0,
        "total_forks" => state.rdb.forks.load(Relaxed),
        "migrate_cached_sockets" => state.migrate.cached_sockets(),
        "slave_expires_tracked_keys" => 0,
        "active_defrag_hits" => 0,
        "active_defrag_misses" => 0,
        "active_defrag_key_hits" => 0,
        "active_defrag_key_misses" => 0,
        "total_active_defrag_time" => 0,
        "current_active_defrag_time" => 0,
        "tracking_total_keys" => 0,
        "tracking_total_items" => 0,
        "tracking_total_prefixes" => 0,
        "unexpected_error_replies" => g(&s.unexpected_error_replies),
        "total_error_replies" => g(&s.total_error_replies),
        "dump_payload_sanitizations" => g(&s.dump_payload_sanitizations),
        "total_reads_processed" => g(&s.total_reads_processed),
        "total_writes_processed" => g(&s.total_writes_processed),
        "io_threaded_reads_processed" => 0,
        "io_threaded_writes_processed" => 0,
        "reply_buffer_shrinks" => 0,
        "reply_buffer_expands" => 0,
    );
}

fn replication_section(state: &ServerState, o: &mut String) {
    let replicas: Vec<_> = state.replicas.lock().values().cloned().collect();
    let (offset, active, first, histlen) = {
        let b = state.backlog.lock();
        (
            b.end_offset(),
            b.is_active() as u8,
            b.first_byte_offset(),
            b.history_len(),
        )
    };
    let now_ms = super::connection::unix_us() / 1000;
    let master = state.role.master.lock().clone();
    let replid2 = state.role.replid2.lock().clone();
    let config = state.config();
    match &master {
        None => {
            fields!(o, "role" => "master");
        }
        Some(m) => {
            let now_secs = now_ms / 1000;
            let up = m.link_up();
            fields!(o,
                "role" => "slave",
                "master_host" => m.host,
                "master_port" => m.port,
                "master_link_status" => if up { "up" } else { "down" },
                "master_last_io_seconds_ago" => if up {
                    now_secs.saturating_sub(m.last_io_ms / 1000) as i64
                } else {
                    -1
                },
                "master_sync_in_progress" => (m.state == "sync") as u8,
                "slave_read_repl_offset" => m.read_offset,
                "slave_repl_offset" => m.processed_offset,
            );
            if m.state == "sync" {
                let perc = if m.sync_size > 0 {
                    m.sync_read as f64 / m.sync_size as f64 * 100.0
                } else {
                    0.0
                };
                fields!(o,
                    "master_sync_total_bytes" => m.sync_size,
                    "master_sync_read_bytes" => m.sync_read,
                    "master_sync_left_bytes" => m.sync_size as i64 - m.sync_read as i64,
                    "master_sync_perc" => format!("{perc:.2}"),
                    "master_sync_last_io_seconds_ago" => 0,
                );
            }
            if !up {
                fields!(o,
                    "master_link_down_since_seconds" => if m.down_since_ms > 0 {
                        now_secs.saturating_sub(m.down_since_ms / 1000) as i64
                    } else {
                        -1
                    },
                );
            }
            fields!(o,
                "slave_priority" => config.replica_priority,
                "slave_read_only" => config.replica_read_only as u8,
                "replica_announced" => config.replica_announced as u8,
            );
        }
    }
    fields!(o, "connected_slaves" => replicas.len());
    for (i, r) in replicas.iter().enumerate() {
        let lag = now_ms.saturating_sub(r.last_ack_ms) / 1000;
        let _ = write!(
            o,
            "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
            r.ip, r.port, r.state, r.ack_offset
        );
    }
    fields!(o,
        "master_failover_state" => "no-failover",
        "master_replid" => state.replid.lock(),
        "master_replid2" => replid2.0,
        "master_repl_offset" => offset,
        "second_repl_offset" => replid2.1,
        "repl_backlog_active" => active,
        "repl_backlog_size" => state.config().repl_backlog_size,
        "repl_backlog_first_byte_offset" => first,
        "repl_backlog_histlen" => histlen,
    );
}

fn cpu_section(o: &mut String) {
    let (sys, user) = rusage(libc::RUSAGE_SELF);
    let (csys, cuser) = rusage(libc::RUSAGE_CHILDREN);
    let (tsys, tuser) = rusage(libc::RUSAGE_THREAD);
    fields!(o,
        "used_cpu_sys" => format!("{sys:.6}"),
        "used_cpu_user" => format!("{user:.6}"),
        "used_cpu_sys_children" => format!("{csys:.6}"),
        "used_cpu_user_children" => format!("{cuser:.6}"),
        "used_cpu_sys_main_thread" => format!("{tsys:.6}"),
        "used_cpu_user_main_thread" => format!("{tuser:.6}"),
    );
}

fn commandstats_section(state: &ServerState, o: &mut String) {
    for (id, cs) in state.command_stats.iter().enumerate() {
        let calls = cs.calls.load(Relaxed);
        let failed = cs.failed_calls.load(Relaxed);
        let rejected = cs.rejected_calls.load(Relaxed);
        if calls == 0 && failed == 0 && rejected == 0 {
            continue;
        }
        let usec = cs.usec.load(Relaxed);
        let per = if calls == 0 {
            0.0
        } else {
            usec as f32 / calls as f32
        };
        let _ = write!(
            o,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
            state.commands.fullname_of(id)
        );
    }
}

fn latencystats_section(state: &ServerState, o: &mut String) {
    let cfg = state.config();
    if !cfg.latency_tracking {
        return;
    }
    for (id, h) in state.latency.iter().enumerate() {
        let Some(h) = h.get().filter(|h| !h.is_empty()) else {
            continue;
        };
        let _ = write!(
            o,
            "latency_percentiles_usec_{}:",
            state.commands.fullname_of(id)
        );
        for (i, p) in cfg.latency_tracking_info_percentiles.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let us = h.value_at_percentile(*p) as f64 / 1000.0;
            let _ = write!(o, "p{}={us:.3}", super::latency::percentile_name(*p));
        }
        o.push_str("\r\n");
    }
}

fn errorstats_section(state: &ServerState, o: &mut String) {
    for (code, count) in state.error_stats.lock().iter() {
        let _ = write!(o, "errorstat_{code}:count={count}\r\n");
    }
}

fn keyspace_section(state: &ServerState, o: &mut String) {
    let ks = state.keyspace.lock_all();
    for db in 0..ks.databases() {
        let keys = ks.db_size(db);
        let expires = ks.db_expires(db);
        if keys > 0 || expires > 0 {
            let _ = write!(o, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
    }
}

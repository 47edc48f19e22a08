//! The runtime: the only module that owns tokio, sockets, files, signals and the clock.
//! `run` turns a loaded configuration into a serving process: log the startup lines Redis's
//! tools wait for, bind the listeners, spawn a task per connection, drive the cron (active
//! expiry at `hz`), and shut down cleanly on SIGTERM/SIGINT or SHUTDOWN.

pub mod aof;
pub mod cluster_driver;
pub mod connection;
pub mod info;
pub mod latency;
pub mod loading;
pub mod logging;
pub mod loops;
pub mod migrate;
pub mod monitor;
pub mod rdb_load;
pub mod rdb_save;
pub mod replica_driver;
pub mod replication_driver;
pub mod signal;
pub mod slowlog;
pub mod state;

use crate::commands::context::ShutdownRequest;
use crate::commands::table::CommandTable;
use crate::config::{Config, LoadedConfig};
use crate::keyspace::expiry::{expire_pass, ExpireCursor};
use crate::keyspace::Keyspace;
use crate::log_at;
use bytes::Bytes;
use state::{CommandStats, ServerState};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub const REDIS_VERSION: &str = "7.0.15";
pub const FERRODIS_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shard count when `shard-count` is 0: a few shards per core.
fn auto_shard_count() -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores * 4).clamp(1, 64)
}

pub fn new_state(config: Config, config_file: Option<String>) -> ServerState {
    let shards = match config.shard_count {
        0 => auto_shard_count(),
        n => n,
    };
    let commands = CommandTable::get();
    let databases = if config.cluster_enabled {
        1
    } else {
        config.databases
    };
    let backlog_size = config.repl_backlog_size as usize;
    let secret = format!("{}{}", random_hex_40(), random_hex_40());
    let acl = crate::acl::Registry::new(config.requirepass.as_deref(), secret.as_bytes());
    ServerState {
        keyspace: Keyspace::new(shards, databases.max(1)),
        backlog: parking_lot::Mutex::new(crate::replication::backlog::Backlog::new(backlog_size)),
        repl_active: false.into(),
        stream_end: tokio::sync::watch::Sender::new(0),
        replicas: Default::default(),
        role: Default::default(),
        watches: Default::default(),
        pubsub: Default::default(),
        evict_pool: Default::default(),
        evict_next_db: Default::default(),
        client_memory: Default::default(),
        evicted_clients: Default::default(),
        dying_client_memory: Default::default(),
        blocks: Default::default(),
        command_stats: (0..commands.len_ids())
            .map(|_| CommandStats::default())
            .collect(),
        latency: (0..commands.len_ids())
            .map(|_| Default::default())
            .collect(),
        commands,
        config: state::ConfigCell::new(config),
        config_file,
        error_stats: Default::default(),
        acl,
        stats: Default::default(),
        clients: Default::default(),
        next_client_id: 1.into(),
        connected_clients: 0.into(),
        blocked_clients: 0.into(),
        run_id: random_hex_40(),
        replid: parking_lot::Mutex::new(random_hex_40()),
        pid: std::process::id(),
        executable: std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        start_time_ms: connection::unix_us() / 1000,
        tcp_port: 0.into(),
        dirty: Default::default(),
        last_save_secs: ((connection::unix_us() / 1_000_000) as i64).into(),
        slowlog: Default::default(),
        pause: Default::default(),
        active_expire_enabled: true.into(),
        shutdown_asap: false.into(),
        stat_peak_memory: 0.into(),
        monitors: Default::default(),
        monitor_count: 0.into(),
        debug: Default::default(),
        aof_feed: Default::default(),
        aof_files: Default::default(),
        aof: Default::default(),
        rdb: Default::default(),
        loading: false.into(),
        load_progress: Default::default(),
        ack_signal: Default::default(),
        tracking: Default::default(),
        topology: arc_swap::ArcSwapOption::empty(),
        routing: false.into(),
        cluster: std::sync::OnceLock::new(),
        pool: std::sync::OnceLock::new(),
        migrate: Default::default(),
    }
}

impl ServerState {
    /// A server state with the default configuration, for handler tests.
    pub fn for_tests() -> ServerState {
        new_state(Config::default(), None)
    }
}

/// 40 random hex characters (run ids, replication ids), from the OS's randomness.
pub fn random_hex_40() -> String {
    let mut bytes = [0u8; 20];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn level_of(config: &Config) -> u8 {
    use crate::config::LogLevel;
    match config.loglevel {
        LogLevel::Debug => 0,
        LogLevel::Verbose => 1,
        LogLevel::Notice => 2,
        LogLevel::Warning => 3,
        LogLevel::Nothing => u8::MAX,
    }
}

/// Serves until shutdown; returns the process exit code.
pub fn run(loaded: LoadedConfig, had_args: bool) -> i32 {
    let config = loaded.config;
    if config.daemonize {
        daemonize();
    }
    logging::configure(&config.logfile, level_of(&config));
    log_at!(Warning, "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo");
    log_at!(
        Warning,
        "Redis version={REDIS_VERSION}, bits=64, commit=00000000, modified=0, pid={}, just started",
        std::process::id()
    );
    if had_args {
        log_at!(Warning, "Configuration loaded");
    } else {
        log_at!(Warning, "Warning: no config file specified, using the default config. In order to specify a config file use {} /path/to/redis.conf", std::env::args().next().unwrap_or_default());
    }
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log_at!(
                Warning,
                "Failed creating the event loop. Error message: '{e}'"
            );
            return 1;
        }
    };
    let state = Arc::new(new_state(config, loaded.config_file));
    let code = runtime.block_on(serve(state));
    if crate::commands::scripting::script_running() {
        // SHUTDOWN NOSAVE during a script: dropping the runtime would wait for it forever.
        std::process::exit(code);
    }
    code
}

async fn serve(state: Arc<ServerState>) -> i32 {
    logging::set_role(b'M');
    log_at!(Notice, "monotonic clock: POSIX clock_gettime");
    let cfg = state.config();
    let listeners = match bind_all(&cfg.bind, cfg.port, cfg.tcp_backlog).await {
        Some(l) => l,
        None => {
            log_at!(
                Warning,
                "Failed listening on port {} (TCP), aborting.",
                cfg.port
            );
            return 1;
        }
    };
    state.tcp_port.store(cfg.port as u64, Relaxed);
    if cfg.cluster_enabled {
        if let Err(code) = cluster_driver::start(&state).await {
            return code;
        }
    }
    if cfg.daemonize || !cfg.pidfile.is_empty() {
        write_pidfile(&cfg);
    }
    startup_banner(&state, &cfg);
    log_at!(Warning, "Server initialized");
    let users: Vec<Vec<String>> = cfg.users.iter().map(|u| u.args.clone()).collect();
    let all_channels = cfg.acl_pubsub_default == crate::config::AclPubsubDefault::AllChannels;
    if let Err(e) = state.acl.modify(|u| {
        u.set_pubsub_default(all_channels);
        u.load_configured(&users)
    }) {
        log_at!(Warning, "{}", e);
        log_at!(Warning, "Critical error while loading ACLs. Exiting.");
        return 1;
    }
    drop(cfg);
    // Loading until the dataset and the AOF are ready.
    let loading = loading::hold(&state);
    let shutdown = wait_for_shutdown(&state);
    tokio::pin!(shutdown);
    let loader = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || load_data(&state))
    };
    tokio::pin!(loader);
    // Clients wait in the listen backlog until a load begins, then are served while it runs,
    // as Redis serves them between its load's chunks: commands without the `loading` flag get
    // -LOADING until it is done. With nothing to load they are served once startup is done.
    let mut finished = None;
    tokio::select! {
        loaded = &mut loader => finished = Some(loaded),
        () = state.load_progress.began.notified() => {}
        () = &mut shutdown => exit_during_load(&state),
    }
    let listening = !listeners.is_empty();
    let _ = state.pool.set(tokio::runtime::Handle::current());
    // `io-threads` client loops (`loops.rs`): one by default, so that commands from different
    // connections run in the order they arrive, as in Redis.
    let loop_count = state.config().io_threads.max(1);
    let loops = Arc::new(loops::ClientLoops::start(&state, loop_count));
    for listener in listeners {
        tokio::spawn(accept_loop(state.clone(), listener, loops.clone()));
    }
    let loaded = match finished {
        Some(loaded) => loaded,
        None => tokio::select! {
            loaded = &mut loader => loaded,
            () = &mut shutdown => exit_during_load(&state),
        },
    };
    if !loaded.unwrap_or(false) {
        return 1;
    }
    drop(loading);
    if listening {
        log_at!(Notice, "Ready to accept connections");
    }
    tokio::spawn(cron(state.clone()));
    tokio::spawn(replica_driver::run(state.clone()));
    let replicaof = state.config().replicaof.clone();
    if let Some(r) = replicaof {
        replica_driver::set_master(&state, Some((r.host, r.port)));
    }
    shutdown.await;
    finish_shutdown(&state);
    0
}

/// Shut down in the middle of the load: nothing was saved (the dataset is only partly there)
/// and the loader is left behind, as Redis exits from within its load.
fn exit_during_load(state: &ServerState) -> ! {
    finish_shutdown(state);
    std::process::exit(0);
}

/// Loads the dataset from disk (the AOF when `appendonly`, else the RDB file), in a thread of
/// its own. False when the server must stop; the reason has been logged.
fn load_data(state: &Arc<ServerState>) -> bool {
    if state.config().appendonly {
        if let Err(e) = aof::start(state) {
            log_at!(Warning, "{}", e);
            return false;
        }
        true
    } else {
        rdb_load::load_at_startup(state)
    }
}

async fn bind_all(binds: &[String], port: u16, backlog: i64) -> Option<Vec<TcpListener>> {
    let mut out = Vec::new();
    if port == 0 {
        return Some(out);
    }
    for raw in binds {
        let optional = raw.starts_with('-');
        let addr = raw.trim_start_matches('-');
        let host = match addr {
            "*" => "0.0.0.0",
            "::*" => "::",
            other => other,
        };
        let sock = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        match bind_one(&sock, host.contains(':'), backlog) {
            Ok(l) => out.push(l),
            Err(e) => {
                log_at!(
                    Warning,
                    "Warning: Could not create server TCP listening socket {addr}:{port}: bind: {}",
                    io_text(&e)
                );
                let skippable = e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                    || e.raw_os_error() == Some(libc::EPROTONOSUPPORT)
                    || (optional && e.raw_os_error() == Some(libc::EADDRNOTAVAIL));
                if !skippable {
                    return None;
                }
            }
        }
    }
    Some(out)
}

fn bind_one(addr: &str, v6: bool, backlog: i64) -> std::io::Result<TcpListener> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))?;
    let socket = if v6 {
        tokio::net::TcpSocket::new_v6()?
    } else {
        tokio::net::TcpSocket::new_v4()?
    };
    socket.set_reuseaddr(true)?;
    if v6 {
        // Like Redis, the IPv6 listener takes IPv6 only, so `* -::*` can bind both families.
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: setsockopt on a socket we own, with a valid pointer and length.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &on as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    socket.bind(addr)?;
    socket.listen(backlog.clamp(1, i32::MAX as i64) as u32)
}

/// An I/O error as C's `strerror` words it (without Rust's "(os error N)" suffix).
fn io_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

async fn accept_loop(
    state: Arc<ServerState>,
    listener: TcpListener,
    loops: Arc<loops::ClientLoops>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => loops.serve(&state, stream, peer),
            Err(e) => {
                log_at!(Warning, "Accepting client connection: {}", io_text(&e));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn startup_banner(state: &ServerState, cfg: &Config) {
    let mode = if cfg.cluster_enabled {
        "cluster"
    } else {
        "standalone"
    };
    if cfg.always_show_logo {
        let text = format!(
            "\n  ferrodis {FERRODIS_VERSION} (Redis {REDIS_VERSION} compatible) 64 bit\n  Running in {mode} mode\n  Port: {}\n  PID: {}\n\n",
            cfg.port, state.pid
        );
        logging::write_raw(logging::Level::Notice, &text);
    } else {
        log_at!(Notice, "Running mode={mode}, port={}.", cfg.port);
    }
}

fn write_pidfile(cfg: &Config) {
    let path = if cfg.pidfile.is_empty() {
        "/var/run/redis.pid"
    } else {
        cfg.pidfile.as_str()
    };
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        log_at!(Warning, "Failed to write PID file: {}", io_text(&e));
    }
}

fn daemonize() {
    // SAFETY: called before any thread is started; fork/setsid/dup2 on a single-threaded
    // process are well defined. The parent exits at once, as Redis's daemonize() does.
    unsafe {
        match libc::fork() {
            -1 => return,
            0 => {}
            _ => libc::_exit(0),
        }
        libc::setsid();
        let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if devnull >= 0 {
            libc::dup2(devnull, 0);
            libc::dup2(devnull, 1);
            libc::dup2(devnull, 2);
            if devnull > 2 {
                libc::close(devnull);
            }
        }
    }
}

/// Periodic work at `hz`: the active expire cycle over every shard, each shard locked only
/// for a bounded slice of work.
async fn cron(state: Arc<ServerState>) {
    let mut cursors = vec![ExpireCursor::default(); state.keyspace.shard_count()];
    let mut deleted = Vec::new();
    loop {
        let hz = state.config().hz.clamp(1, 500) as u64;
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        // Nothing of the cron runs while a file loads (Redis's cron waits for the load).
        if state.debug.pause_cron.load(Relaxed) || state.loading.load(Relaxed) {
            continue;
        }
        let now_ms = connection::unix_us() / 1000;
        if state.active_expire_enabled.load(Relaxed) && !state.pause.holds(now_ms, true) {
            active_expire(&state, &mut cursors, &mut deleted, now_ms);
        }
        aof::cron(&state, now_ms / 1000);
        rdb_save::cron(&state);
        // Redis runs one child at a time: a scheduled rewrite waits for a background save.
        if !state.rdb.in_progress.load(Relaxed) && state.aof.rewrite_scheduled.swap(false, Relaxed)
        {
            let enable = state.config().appendonly && !state.aof.on.load(Relaxed);
            if !aof::start_rewrite(&state, enable) {
                state.aof.rewrite_scheduled.store(true, Relaxed);
            }
        }
        let limit = state.config().maxmemory;
        if limit > 0 {
            // Eviction a command left unfinished (its per-call budget ran out) goes on here.
            let used = || state.memory_for_eviction();
            crate::commands::evict::perform_evictions(&state, now_ms, &used);
        }
        clients_cron(&state, now_ms);
        state.migrate.close_idle(now_ms / 1000);
        let used = info::used_memory();
        state.stat_peak_memory.fetch_max(used as u64, Relaxed);
    }
}

/// One pass of active expiry over every shard (Redis's `activeExpireCycle`), or on a replica
/// over the keys its own clients wrote.
fn active_expire(
    state: &ServerState,
    cursors: &mut [ExpireCursor],
    deleted: &mut Vec<(usize, Box<[u8]>)>,
    now_ms: u64,
) {
    let effort = state.config().active_expire_effort.clamp(1, 10) as usize;
    let budget = 200 * effort;
    // A replica leaves expiry to its primary, whose DELs arrive in the stream.
    let expiring = !state.role.is_replica();
    if !expiring && !crate::commands::scripting::script_running() {
        replica_driver::expire_local_writes(state, now_ms);
    }
    for (shard, cursor) in cursors.iter_mut().enumerate().filter(|_| expiring) {
        // A running script holds every shard: waiting here would stall a worker thread.
        if crate::commands::scripting::script_running() {
            break;
        }
        let mut guard = state.keyspace.lock_shard(shard);
        // Slots a snapshot in progress has not saved yet keep their keys until it has.
        let cut = state.keyspace.snapshot().current();
        let n = state.keyspace.shard_count();
        let frozen = |db: usize, local: usize| {
            cut.as_ref()
                .is_some_and(|c| c.is_unsaved(db, (local * n + shard) as u16))
        };
        let stats = expire_pass(&mut guard, cursor, now_ms, budget, deleted, &frozen);
        if !deleted.is_empty() {
            // Still holding the shard, so the deletions enter the stream in order.
            let del: &'static [u8] = match state.config().lazyfree_lazy_expire {
                true => b"UNLINK",
                false => b"DEL",
            };
            let ops: Vec<_> = deleted
                .iter()
                .map(|(db, key)| {
                    (
                        *db,
                        vec![Bytes::from_static(del), Bytes::copy_from_slice(key)],
                    )
                })
                .collect();
            for op in ops.chunks(1) {
                crate::commands::dispatch::feed_replication(state, op);
            }
            for (db, key) in deleted.iter() {
                state.watches.touch(*db, key, false);
                crate::commands::tracking::invalidate(state, key, None);
                crate::commands::pubsub::notify_keyspace_event(
                    state,
                    crate::config::values::notify::EXPIRED,
                    "expired",
                    *db,
                    key,
                    now_ms,
                );
            }
        }
        drop(guard);
        if stats.expired > 0 {
            state
                .stats
                .expired_keys
                .fetch_add(stats.expired as u64, Relaxed);
        }
        deleted.clear();
    }
}

/// Per-client housekeeping: query buffer trimming and release of idle buffers.
fn clients_cron(state: &ServerState, now_ms: u64) {
    let clients: Vec<_> = state.clients.lock().values().cloned().collect();
    for c in clients {
        if c.view.lock().resize_query_buffer(now_ms) {
            c.release_buffer.store(true, Relaxed);
            c.kill_signal.notify_one();
        }
    }
}

/// Applies runtime side effects of CONFIG SET.
pub fn apply_config_changes(state: &Arc<ServerState>, changed: &[&'static str]) {
    let cfg = state.config();
    for name in changed {
        match *name {
            "appendonly" if cfg.appendonly && !state.aof.on.load(Relaxed) => {
                aof::start_rewrite(state, true);
            }
            "appendonly" if !cfg.appendonly && state.aof.on.load(Relaxed) => aof::stop(state),
            "loglevel" => logging::set_min_level(level_of(&cfg)),
            "logfile" => logging::configure(&cfg.logfile, level_of(&cfg)),
            "dir" if !cfg.dir.is_empty() => {
                if let Err(e) = std::env::set_current_dir(&cfg.dir) {
                    log_at!(Warning, "Can't chdir to '{}': {}", cfg.dir, io_text(&e));
                }
            }
            name if name.starts_with("cluster-") => {
                if let Some(cluster) = state.cluster.get() {
                    cluster.sync_config(state);
                    cluster.republish_topology(state);
                }
            }
            _ => {}
        }
    }
}

/// CONFIG REWRITE: the new text from the config table, written to a temporary file and
/// renamed over the old one.
pub fn rewrite_config_file(state: &ServerState, path: &str) -> Result<(), String> {
    let old = std::fs::read_to_string(path).ok();
    // Users are written from the ACL registry, as Redis's `rewriteConfigUserOption` does.
    let mut cfg = (**state.config()).clone();
    cfg.users = state
        .acl
        .read()
        .config_lines()
        .into_iter()
        .map(|args| crate::config::FileLine {
            args,
            line: 0,
            line_text: String::new(),
        })
        .collect();
    let text = cfg.rewrite(old.as_deref());
    let tmp = format!("{path}.tmp-{}", std::process::id());
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_text(&e)
    })
}

static SHUTDOWN: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub fn request_shutdown(state: &ServerState, _req: ShutdownRequest) {
    if crate::commands::scripting::script_running() {
        // SHUTDOWN NOSAVE is how a busy server is stopped: the script holds every shard and
        // never yields, so there is nothing to wait for.
        finish_shutdown(state);
        std::process::exit(0);
    }
    state.shutdown_asap.store(true, Relaxed);
    SHUTDOWN.notify_one();
}

async fn wait_for_shutdown(state: &ServerState) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        SHUTDOWN.notified().await;
        return;
    };
    loop {
        let (signal, flags) = tokio::select! {
            _ = term.recv() => ("SIGTERM", state.config().shutdown_on_sigterm),
            _ = int.recv() => ("SIGINT", state.config().shutdown_on_sigint),
            _ = SHUTDOWN.notified() => break,
        };
        if state.loading.load(Relaxed) {
            log_at!(
                Warning,
                "Received shutdown signal during loading, scheduling shutdown."
            );
        } else {
            log_at!(Warning, "Received {} scheduling shutdown...", signal);
        }
        use crate::config::values::ShutdownFlags as F;
        let save = if flags.0 & F::NOSAVE != 0 {
            Some(false)
        } else if flags.0 & F::SAVE != 0 {
            Some(true)
        } else {
            None
        };
        let force = flags.0 & F::FORCE != 0;
        if tokio::task::block_in_place(|| prepare_shutdown(state, save, force)) {
            break;
        }
        log_at!(
            Warning,
            "{} received but errors trying to shut down the server, check the logs for more information",
            signal
        );
    }
    state.shutdown_asap.store(true, Relaxed);
}

/// The part of shutting down that can fail (Redis's `prepareForShutdown` up to the final
/// save): a running BGSAVE is called off, the AOF flushed, and the dataset saved when asked
/// (`save`: Some(true) SAVE, Some(false) NOSAVE, None when `save` points are set). False
/// when that save failed and `force` was not given: the server keeps running.
pub fn prepare_shutdown(state: &ServerState, save: Option<bool>, force: bool) -> bool {
    // A half-loaded dataset is never saved over the file it comes from.
    let save = match state.loading.load(Relaxed) {
        true => Some(false),
        false => save,
    };
    log_at!(Warning, "User requested shutdown...");
    rdb_save::abort_for_shutdown(state);
    if state.aof.on.load(Relaxed) {
        log_at!(Notice, "Calling fsync() on the AOF file.");
        aof::flush_and_sync(state);
    }
    if !save.unwrap_or_else(|| !state.config().save.is_empty()) {
        return true;
    }
    log_at!(Notice, "Saving the final RDB snapshot before exiting.");
    if rdb_save::save(state).is_ok() {
        return true;
    }
    if force {
        log_at!(Warning, "Error trying to save the DB. Exit anyway.");
        return true;
    }
    log_at!(Warning, "Error trying to save the DB, can't exit.");
    log_at!(
        Warning,
        "Errors trying to shut down the server. Check the logs for more information."
    );
    false
}

fn finish_shutdown(state: &ServerState) {
    let cfg = state.config();
    if cfg.daemonize || !cfg.pidfile.is_empty() {
        let path = if cfg.pidfile.is_empty() {
            "/var/run/redis.pid"
        } else {
            cfg.pidfile.as_str()
        };
        log_at!(Notice, "Removing the pid file.");
        let _ = std::fs::remove_file(path);
    }
    log_at!(Warning, "Redis is now ready to exit, bye bye...");
}

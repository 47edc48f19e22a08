//! The append-only file on disk, as Redis 7.0 keeps it: `<appenddirname>/` (inside `dir`,
//! which is the working directory) holds a base RDB image, incremental files of RESP commands
//! and the manifest naming them. This module owns those files: it writes the AOF buffer before
//! replies go out (and fsyncs per `appendfsync`), rewrites (BGREWRITEAOF, turning AOF on at
//! runtime), and loads them at startup and for DEBUG LOADAOF.
//!
//! A rewrite cuts the dataset with every shard held, opening the next incremental file at the
//! same instant, so the new base plus that file is exactly the dataset; the image is then
//! written outside the locks and installed by renaming it and rewriting the manifest.

use super::state::ServerState;
use crate::commands::context::ClientState;
use crate::log_at;
use crate::persistence::aof::manifest::Manifest;
use crate::persistence::aof::reader::{next_command, ReadError};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Counters and flags INFO persistence shows, and the switches commands read.
#[derive(Debug)]
pub struct AofStatus {
    /// Commands are being appended (Redis's `aof_state` is ON or WAIT_REWRITE).
    pub on: AtomicBool,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    pub rewrite_started_ms: AtomicU64,
    pub last_rewrite_time_sec: AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    pub last_write_ok: AtomicBool,
    /// The errno of the last failed write (MISCONF quotes it).
    pub last_write_errno: std::sync::atomic::AtomicI32,
    pub rewrites: AtomicU64,
    pub consecutive_failures: AtomicU64,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
}

impl Default for AofStatus {
    fn default() -> Self {
        AofStatus {
            on: false.into(),
            rewrite_in_progress: false.into(),
            rewrite_scheduled: false.into(),
            rewrite_started_ms: 0.into(),
            last_rewrite_time_sec: (-1).into(),
            last_rewrite_ok: true.into(),
            last_write_ok: true.into(),
            last_write_errno: 0.into(),
            rewrites: 0.into(),
            consecutive_failures: 0.into(),
            current_size: 0.into(),
            base_size: 0.into(),
        }
    }
}

/// The open files: the manifest as last written and the incremental file being appended to.
#[derive(Default)]
pub struct AofFiles {
    manifest: Manifest,
    incr: Option<File>,
    /// Bytes written since the last fsync.
    unsynced: bool,
    last_fsync_sec: u64,
}

fn dir_of(state: &ServerState) -> PathBuf {
    PathBuf::from(&state.config().appenddirname)
}

fn base_name(state: &ServerState) -> String {
    state.config().appendfilename.clone()
}

fn now_ms() -> u64 {
    super::connection::unix_us() / 1000
}

/// Writes the AOF buffer to the incremental file; with `appendfsync always` it is on disk
/// before this returns. Called before a connection writes its replies and from the cron.
pub fn write_pending(state: &ServerState) {
    if !state.aof.on.load(Relaxed) {
        return;
    }
    // The files' lock is taken first and held while writing, so two connections flushing at
    // once write the buffer's bytes in the order they were fed.
    let mut files = state.aof_files.lock();
    let bytes = {
        let mut feed = state.aof_feed.lock();
        if feed.is_empty() {
            return;
        }
        feed.take()
    };
    let always = state.config().appendfsync == crate::config::AppendFsync::Always;
    let Some(file) = files.incr.as_mut() else {
        return;
    };
    let result = file
        .write_all(&bytes)
        .and_then(|()| if always { file.sync_data() } else { Ok(()) });
    match result {
        Ok(()) => {
            if !state.aof.last_write_ok.swap(true, Relaxed) {
                log_at!(
                    Notice,
                    "AOF write error looks solved, Redis can write again."
                );
            }
            state
                .aof
                .current_size
                .fetch_add(bytes.len() as u64, Relaxed);
            files.unsynced = !always;
        }
        Err(e) if always => {
            log_at!(
                Warning,
                "Can't recover from AOF write error when the AOF fsync policy is 'always': {}. Exiting...",
                e
            );
            std::process::exit(1);
        }
        Err(e) => {
            log_at!(Warning, "Error writing to the AOF file: {}", e);
            let errno = e.raw_os_error().unwrap_or(libc::EIO);
            state.aof.last_write_errno.store(errno, Relaxed);
            state.aof.last_write_ok.store(false, Relaxed);
        }
    }
}

/// The once-a-second part of `appendfsync everysec`, run from the cron.
pub fn cron(state: &ServerState, now_secs: u64) {
    write_pending(state);
    if state.config().appendfsync != crate::config::AppendFsync::Everysec {
        return;
    }
    let mut files = state.aof_files.lock();
    if !files.unsynced || files.last_fsync_sec >= now_secs {
        return;
    }
    files.last_fsync_sec = now_secs;
    files.unsynced = false;
    if let Some(Ok(clone)) = files.incr.as_ref().map(File::try_clone) {
        std::thread::spawn(move || {
            let _ = clone.sync_data();
        });
    }
}

/// At shutdown and when AOF is turned off: everything written and fsynced.
pub fn flush_and_sync(state: &ServerState) {
    write_pending(state);
    let files = state.aof_files.lock();
    if let Some(f) = files.incr.as_ref() {
        let _ = f.sync_data();
    }
}

/// CONFIG SET appendonly no.
pub fn stop(state: &ServerState) {
    flush_and_sync(state);
    state.aof.on.store(false, Relaxed);
    // Commands fed between the flush and the switch still belong to this file.
    let mut files = state.aof_files.lock();
    let rest = state.aof_feed.lock().take();
    if let Some(f) = files.incr.as_mut() {
        let _ = f.write_all(&rest).and_then(|()| f.sync_data());
    }
    files.incr = None;
    log_at!(Notice, "Background append only file rewriting ended");
}

/// Writes the manifest atomically: a temporary file, fsync, rename over the real one.
fn persist_manifest(dir: &Path, name: &str, manifest: &Manifest) -> std::io::Result<()> {
    let tmp = dir.join(format!("temp-{name}.manifest"));
    let mut f = File::create(&tmp)?;
    f.write_all(manifest.render().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{name}.manifest")))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The RDB image a base file holds (aux `aof-base` 1), cut from the locked dataset.
fn base_image(state: &ServerState, locked: &mut crate::keyspace::Locked<'_>) -> Vec<u8> {
    let now = now_ms();
    let aux: Vec<(&str, Vec<u8>)> = vec![
        ("redis-ver", super::REDIS_VERSION.as_bytes().to_vec()),
        ("redis-bits", b"64".to_vec()),
        ("ctime", (now / 1000).to_string().into_bytes()),
        (
            "used-mem",
            super::info::used_memory().to_string().into_bytes(),
        ),
        ("aof-base", b"1".to_vec()),
    ];
    let opts = crate::persistence::rdb::encode::Options::from_config(&state.config());
    let functions = crate::commands::scripting::functions::library_sources();
    crate::persistence::rdb::encode::encode_dataset(locked, now, &aux, &functions, opts)
}

/// BGREWRITEAOF, or turning AOF on (`enable`): starts the rewrite in the background. False
/// when one is already running.
pub fn start_rewrite(state: &Arc<ServerState>, enable: bool) -> bool {
    if state.aof.rewrite_in_progress.swap(true, Relaxed) {
        return false;
    }
    state.aof.rewrite_started_ms.store(now_ms(), Relaxed);
    let state = state.clone();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let result = rewrite(&state, enable);
        let aof = &state.aof;
        aof.last_rewrite_time_sec
            .store(started.elapsed().as_secs() as i64, Relaxed);
        match result {
            Ok(()) => {
                aof.last_rewrite_ok.store(true, Relaxed);
                aof.consecutive_failures.store(0, Relaxed);
                aof.rewrites.fetch_add(1, Relaxed);
                log_at!(Notice, "Background AOF rewrite finished successfully");
            }
            Err(e) => {
                aof.last_rewrite_ok.store(false, Relaxed);
                aof.consecutive_failures.fetch_add(1, Relaxed);
                log_at!(Warning, "Background AOF rewrite failed: {}", e);
            }
        }
        aof.rewrite_in_progress.store(false, Relaxed);
    });
    true
}

fn rewrite(state: &ServerState, enable: bool) -> std::io::Result<()> {
    let dir = dir_of(state);
    let name = base_name(state);
    std::fs::create_dir_all(&dir)?;
    log_at!(
        Notice,
        "Background append only file rewriting started by pid {}",
        state.pid
    );
    let image = {
        let _applying = state.role.apply_lock.lock();
        let mut locked = state.keyspace.lock_all();
        switch_incr(state, &dir, &name, enable)?;
        base_image(state, &mut locked)
    };
    let tmp = PathBuf::from(format!("temp-rewriteaof-bg-{}.aof", state.pid));
    let mut f = File::create(&tmp)?;
    f.write_all(&image)?;
    f.sync_all()?;
    drop(f);
    let mut files = state.aof_files.lock();
    let (base, seq) = files.manifest.next_base_name(&name, true);
    std::fs::rename(&tmp, dir.join(&base))?;
    files.manifest.install_base(base.clone(), seq);
    persist_manifest(&dir, &name, &files.manifest)?;
    log_at!(
        Notice,
        "Successfully renamed the temporary AOF base file {} into {}",
        tmp.display(),
        base
    );
    for old in files.manifest.take_history() {
        log_at!(
            Notice,
            "Removing the history file {} in the background",
            old
        );
        let _ = std::fs::remove_file(dir.join(old));
    }
    persist_manifest(&dir, &name, &files.manifest)?;
    state.aof.base_size.store(image.len() as u64, Relaxed);
    let incr_size = files
        .incr
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    state
        .aof
        .current_size
        .store(image.len() as u64 + incr_size, Relaxed);
    Ok(())
}

/// With every shard held: the pending buffer goes to the old incremental file and the writes
/// that follow go to a new one (opened when AOF is on or being turned on).
fn switch_incr(state: &ServerState, dir: &Path, name: &str, enable: bool) -> std::io::Result<()> {
    write_pending(state);
    let mut files = state.aof_files.lock();
    if !enable && !state.aof.on.load(Relaxed) {
        return Ok(());
    }
    if enable && files.manifest.base.is_none() && files.manifest.incrs.is_empty() {
        if let Ok(text) = std::fs::read(dir.join(format!("{name}.manifest"))) {
            if let Ok(m) = Manifest::parse(&text) {
                files.manifest = m;
            }
        }
    }
    let incr = files.manifest.new_incr(name);
    files.incr = Some(open_append(&dir.join(&incr))?);
    persist_manifest(dir, name, &files.manifest)?;
    log_at!(
        Notice,
        "Creating AOF incr file {} on background rewrite",
        incr
    );
    state.aof_feed.lock().restart();
    if enable {
        state.repl_active.store(true, Relaxed);
        state.aof.on.store(true, Relaxed);
    }
    Ok(())
}

/// What loading found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No AOF directory or manifest.
    NotExist,
    /// Files listed, holding nothing.
    Empty,
    Ok,
}

/// Reads the manifest and loads the base and every incremental file into the (empty)
/// dataset. An error is fatal: the message to log before exiting.
pub fn load(state: &ServerState) -> Result<Loaded, String> {
    let dir = dir_of(state);
    let name = base_name(state);
    let path = dir.join(format!("{name}.manifest"));
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(_) => return Ok(Loaded::NotExist),
    };
    let manifest = Manifest::parse(&text).map_err(|e| {
        format!("*** FATAL AOF MANIFEST FILE ERROR ***\nReading the manifest file, {e}")
    })?;
    let files: Vec<_> = manifest.load_order().cloned().collect();
    state.aof_files.lock().manifest = manifest;
    if files.is_empty() {
        return Ok(Loaded::NotExist);
    }
    let started = std::time::Instant::now();
    // Clients are told -LOADING from here on (Redis starts loading once it knows the files
    // hold something).
    let expected: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(&f.name)).ok())
        .map(|m| m.len())
        .sum();
    let _loading = (expected > 0).then(|| super::loading::begin(state, expected));
    let mut total = 0u64;
    for (i, f) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let file_path = dir.join(&f.name);
        let bytes = std::fs::read(&file_path)
            .map_err(|e| format!("The AOF file {} doesn't exist: {e}", file_path.display()))?;
        let base = total;
        total += bytes.len() as u64;
        let t = std::time::Instant::now();
        load_file(state, &f.name, &file_path, &bytes, last, base)?;
        let kind = if Some(f) == state.aof_files.lock().manifest.base.as_ref() {
            "base"
        } else {
            "incr"
        };
        log_at!(
            Notice,
            "DB loaded from {} file {}: {:.3} seconds",
            kind,
            f.name,
            t.elapsed().as_secs_f64()
        );
    }
    state.aof.current_size.store(total, Relaxed);
    if total == 0 {
        return Ok(Loaded::Empty);
    }
    log_at!(
        Notice,
        "DB loaded from append only file: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    Ok(Loaded::Ok)
}

fn load_file(
    state: &ServerState,
    name: &str,
    path: &Path,
    bytes: &[u8],
    last: bool,
    base: u64,
) -> Result<(), String> {
    if bytes.starts_with(b"REDIS") {
        log_at!(Notice, "Reading RDB base file on AOF loading...");
        return load_rdb(state, bytes, base).map_err(|e| {
            format!("Error reading the RDB base file {name}, AOF loading aborted: {e}")
        });
    }
    let mut client = ClientState::new(0, String::new(), String::new(), 0, now_ms(), true);
    client.is_master = true;
    let mut pos = 0;
    let mut multi_start = None;
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::from_entropy();
    loop {
        match next_command(bytes, pos) {
            Ok(Some((argv, next))) => {
                if argv[0].eq_ignore_ascii_case(b"multi") {
                    multi_start = Some(pos);
                } else if argv[0].eq_ignore_ascii_case(b"exec") {
                    multi_start = None;
                }
                let outcome = crate::commands::dispatch::execute(
                    state,
                    &mut client,
                    &argv,
                    super::connection::unix_us(),
                    true,
                );
                if outcome.cmd.is_none() {
                    return Err(format!(
                        "Unknown command '{}' reading the append only file {}",
                        String::from_utf8_lossy(&argv[0]),
                        name
                    ));
                }
                pos = next;
                state.load_progress.set_loaded(base + pos as u64);
                super::loading::key_delay(state.config().key_load_delay, &mut rng);
            }
            Ok(None) if multi_start.is_none() => return Ok(()),
            Ok(None) | Err(ReadError::Truncated) => {
                if multi_start.is_some() {
                    log_at!(
                        Warning,
                        "Revert incomplete MULTI/EXEC transaction in AOF file {}",
                        name
                    );
                }
                let good = multi_start.unwrap_or(pos);
                return truncated(state, name, path, good, last, &mut client);
            }
            Err(ReadError::BadFormat) => {
                return Err(format!("Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"));
            }
        }
    }
}

/// The file ends inside a command (or a transaction): cut it back to the last whole one when
/// Redis would.
fn truncated(
    state: &ServerState,
    name: &str,
    path: &Path,
    good: usize,
    last: bool,
    client: &mut ClientState,
) -> Result<(), String> {
    // A transaction left open is dropped, as Redis reverts it.
    client.multi = None;
    if !last {
        return Err("Fatal error: the truncated file is not the last file".into());
    }
    if !state.config().aof_load_truncated {
        return Err(format!("Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."));
    }
    log_at!(
        Warning,
        "!!! Warning: short read while loading the AOF file {}!!!",
        name
    );
    log_at!(
        Warning,
        "!!! Truncating the AOF {} at offset {} !!!",
        name,
        good
    );
    let cut = OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(good as u64));
    if let Err(e) = cut {
        return Err(format!("Error truncating the AOF file {name}: {e}"));
    }
    log_at!(
        Warning,
        "AOF {} loaded anyway because aof-load-truncated is enabled",
        name
    );
    Ok(())
}

/// A base image: every key, expired ones included (their DELs may follow in the incr files).
/// `base` is where the file starts in the whole load.
fn load_rdb(state: &ServerState, bytes: &[u8], base: u64) -> Result<(), String> {
    use crate::persistence::rdb::decode;
    let limits = decode::LoadLimits::from_config(&state.config());
    let lru = (now_ms() / 1000) as u32;
    let databases = state.keyspace.databases();
    let mut inserter = super::loading::Inserter::new(state, base, lru);
    let mut functions = Vec::new();
    let decoded = decode::decode_all(
        bytes,
        limits,
        0,
        |_, _| {},
        |f| functions.push(f),
        |l| {
            if l.db < databases {
                inserter.push(l);
            }
        },
    );
    inserter.flush(base + bytes.len() as u64);
    decoded.map_err(|e| e.reason)?;
    crate::commands::scripting::functions::load_sources(functions, true)
}

/// Startup with `appendonly yes`: load what the manifest lists, create the first base and
/// incremental files when there are none, and open the last incremental file for appending.
pub fn start(state: &Arc<ServerState>) -> Result<(), String> {
    let loaded = load(state)?;
    let dir = dir_of(state);
    let name = base_name(state);
    let need_base = loaded == Loaded::NotExist && state.aof_files.lock().manifest.base.is_none();
    // Shards before the files' lock, as everywhere else.
    let image = need_base.then(|| base_image(state, &mut state.keyspace.lock_all()));
    let mut files = state.aof_files.lock();
    if let Some(image) = image {
        std::fs::create_dir_all(&dir).map_err(|e| {
            format!(
                "Can't open or create append-only dir {}: {e}",
                dir.display()
            )
        })?;
        let (base, seq) = files.manifest.next_base_name(&name, true);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(dir.join(&base))?;
            f.write_all(&image)?;
            f.sync_all()
        };
        write().map_err(|e| format!("Can't create the AOF base file {base}: {e}"))?;
        files.manifest.install_base(base.clone(), seq);
        log_at!(Notice, "Creating AOF base file {} on server start", base);
        state.aof.base_size.store(image.len() as u64, Relaxed);
    }
    let incr = match files.manifest.incrs.last() {
        Some(f) => {
            log_at!(Notice, "Opening AOF incr file {} on server start", f.name);
            f.name.clone()
        }
        None => {
            let incr = files.manifest.new_incr(&name);
            log_at!(Notice, "Creating AOF incr file {} on server start", incr);
            incr
        }
    };
    files.incr = Some(
        open_append(&dir.join(&incr))
            .map_err(|e| format!("Can't open the append-only file {incr}: {e}"))?,
    );
    persist_manifest(&dir, &name, &files.manifest)
        .map_err(|e| format!("Can't persist the AOF manifest: {e}"))?;
    drop(files);
    state.repl_active.store(true, Relaxed);
    state.aof.on.store(true, Relaxed);
    Ok(())
}

/// DEBUG LOADAOF: everything pending written, the dataset emptied and loaded back from the
/// files. False (and the server must exit, as Redis does) when the files cannot be loaded.
pub fn debug_loadaof(state: &ServerState) -> Result<(), String> {
    if state.aof.on.load(Relaxed) {
        flush_and_sync(state);
    }
    {
        let mut ks = state.keyspace.lock_all();
        for db in 0..ks.databases() {
            ks.flush_db(db);
        }
    }
    let was_on = state.aof.on.swap(false, Relaxed);
    let result = load(state);
    state.aof.on.store(was_on, Relaxed);
    match result? {
        Loaded::NotExist => Err("The AOF manifest file doesn't exist".into()),
        _ => {
            log_at!(Warning, "Append Only File loaded by DEBUG LOADAOF");
            Ok(())
        }
    }
}

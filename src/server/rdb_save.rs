//! SAVE and BGSAVE: RDB snapshots on disk. Both cut a snapshot (`keyspace::snapshot`) while
//! every shard is held for an instant and then walk it slot by slot while commands go on.
//! SAVE writes the walk to `temp-<pid>.rdb` itself and renames it over `dbfilename`. BGSAVE
//! mirrors Redis's fork child with a real child process, so `pgrep -P <server>` finds it and
//! `kill -9` aborts the save as it would Redis's: the server starts its own executable in
//! writer mode (`FERRODIS_RDB_WRITER`, checked before anything else in `main`), a thread walks
//! the snapshot and streams it into the child's stdin in length-prefixed frames, and the child
//! writes `temp-<childpid>.rdb`, fsyncs it and renames it only after the closing empty frame,
//! so a stream cut short never replaces the previous file. The thread then reaps the child
//! and records the outcome the way Redis's `backgroundSaveDoneHandlerDisk` does.

use super::connection::unix_us;
use super::state::ServerState;
use crate::keyspace::snapshot::{Cut, Piece};
use crate::log_at;
use crate::persistence::rdb::encode::{entry_encoder, Options, PieceWriter};
use parking_lot::Mutex;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable that turns `ferrodis` into the BGSAVE writer child; its value is
/// the file to create (`dbfilename`, relative to the server's directory).
pub const WRITER_ENV: &str = "FERRODIS_RDB_WRITER";

/// Largest frame on the parent-to-child pipe; the child refuses larger ones.
const FRAME_MAX_BYTES: usize = 1 << 20;

/// How often a `rdb-key-save-delay` sleep looks whether the child is still there.
const DELAY_STEP: Duration = Duration::from_millis(10);

/// What INFO persistence reports about RDB saves, and the one-snapshot-at-a-time guard.
#[derive(Debug)]
pub struct RdbStatus {
    /// A BGSAVE child is running (`rdb_bgsave_in_progress`).
    pub in_progress: AtomicBool,
    /// A SAVE or BGSAVE holds the snapshot gate.
    busy: AtomicBool,
    pub child_pid: AtomicU32,
    /// Unix seconds the running BGSAVE started at.
    pub started_secs: AtomicI64,
    pub last_bgsave_ok: AtomicBool,
    pub last_bgsave_time_sec: AtomicI64,
    /// `rdb_saves`: SAVE and BGSAVE attempts.
    pub saves: AtomicU64,
    /// `total_forks`: writer children started.
    pub forks: AtomicU64,
    /// BGSAVE SCHEDULE (or BGSAVE inside EXEC) waits for the cron.
    pub scheduled: AtomicBool,
    /// Unix seconds of the last BGSAVE attempt (`lastbgsave_try`): save points retry a
    /// failed save only after `BGSAVE_RETRY_DELAY_SECS`.
    last_try_secs: AtomicI64,
    /// `server.dirty` when the running BGSAVE was cut.
    dirty_before: AtomicU64,
    /// `rdb_last_cow_size`: what the last BGSAVE copied for writes ahead of its walk.
    pub last_cow_bytes: AtomicU64,
    /// What loading the file at startup found (`rdb_last_load_keys_loaded` / `_expired`).
    pub last_load_keys_loaded: AtomicU64,
    pub last_load_keys_expired: AtomicU64,
    /// The cut being written, for INFO's key counts.
    current: Mutex<Option<Arc<Cut>>>,
}

impl Default for RdbStatus {
    fn default() -> Self {
        RdbStatus {
            in_progress: false.into(),
            busy: false.into(),
            child_pid: 0.into(),
            started_secs: 0.into(),
            last_bgsave_ok: true.into(),
            last_bgsave_time_sec: (-1).into(),
            saves: 0.into(),
            forks: 0.into(),
            scheduled: false.into(),
            last_try_secs: 0.into(),
            dirty_before: 0.into(),
            last_cow_bytes: 0.into(),
            last_load_keys_loaded: 0.into(),
            last_load_keys_expired: 0.into(),
            current: Mutex::new(None),
        }
    }
}

/// The running save's progress, as INFO persistence shows it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SaveProgress {
    pub keys_processed: usize,
    pub keys_total: usize,
    /// Bytes of slots saved ahead of the walk because commands were about to change them:
    /// what copy-on-write costs Redis's fork child (`current_cow_size`).
    pub copied_bytes: usize,
}

impl SaveProgress {
    /// `current_fork_perc`: how far the save has got, in percent.
    pub fn percent(&self) -> f64 {
        match self.keys_total {
            0 => 0.0,
            t => self.keys_processed as f64 * 100.0 / t as f64,
        }
    }
}

impl RdbStatus {
    pub fn progress(&self) -> SaveProgress {
        self.current
            .lock()
            .as_ref()
            .map_or(SaveProgress::default(), |c| SaveProgress {
                keys_processed: c.keys_processed.load(Relaxed),
                keys_total: c.keys_total(),
                copied_bytes: c.early_bytes(),
            })
    }

    /// Seconds the running BGSAVE has taken so far, or -1.
    pub fn current_secs(&self) -> i64 {
        match self.in_progress.load(Relaxed) {
            true => now_secs() - self.started_secs.load(Relaxed),
            false => -1,
        }
    }
}

fn now_secs() -> i64 {
    (unix_us() / 1_000_000) as i64
}

/// What a file starts with: the auxiliary fields and the function libraries' sources.
struct Head {
    aux: Vec<(&'static str, Vec<u8>)>,
    functions: Vec<bytes::Bytes>,
}

/// Cuts the snapshot, with the auxiliary fields Redis 7.0 writes (`rdbSaveInfoAuxFields`):
/// the replication id and offset only when there is a replication stream to continue.
fn cut(state: &ServerState) -> (Arc<Cut>, Head) {
    let _applying = state.role.apply_lock.lock();
    let locked = state.keyspace.lock_all();
    let now_ms = unix_us() / 1000;
    let mut aux: Vec<(&str, Vec<u8>)> = vec![
        ("redis-ver", super::REDIS_VERSION.as_bytes().to_vec()),
        ("redis-bits", b"64".to_vec()),
        ("ctime", (now_ms / 1000).to_string().into_bytes()),
        (
            "used-mem",
            super::info::used_memory().to_string().into_bytes(),
        ),
    ];
    let backlog = state.backlog.lock();
    if backlog.is_active() {
        aux.push(("repl-stream-db", b"0".to_vec()));
        aux.push(("repl-id", state.replid.lock().as_bytes().to_vec()));
        aux.push(("repl-offset", backlog.end_offset().to_string().into_bytes()));
    }
    drop(backlog);
    aux.push(("aof-base", b"0".to_vec()));
    // Redis writes every key its tables hold, logically expired or not (the loader drops
    // those whose time has passed): an expiry horizon of 0 keeps them all.
    let encode = entry_encoder(Options::from_config(&state.config()));
    let cut = state.keyspace.begin_snapshot_locked(&locked, 0, encode);
    let functions = crate::commands::scripting::functions::library_sources();
    (cut, Head { aux, functions })
}

/// Sleeps `rdb-key-save-delay` for `keys` keys (negative values are nanoseconds, as Redis's
/// `debugDelay`), in short steps; false as soon as `gone` says the save was abandoned.
fn key_save_delay(delay: i64, keys: usize, gone: &mut dyn FnMut() -> bool) -> bool {
    if delay == 0 || keys == 0 {
        return !gone();
    }
    let per_key_ns = match delay > 0 {
        true => delay as u128 * 1000,
        false => delay.unsigned_abs() as u128,
    };
    let mut left = Duration::from_nanos((per_key_ns * keys as u128).min(u64::MAX as u128) as u64);
    while !left.is_zero() {
        if gone() {
            return false;
        }
        let step = left.min(DELAY_STEP);
        std::thread::sleep(step);
        left -= step;
    }
    !gone()
}

/// Walks a cut, handing each piece's bytes to `sink` (false stops the walk) and sleeping
/// `rdb-key-save-delay` per key. Ends the snapshot whatever happens. True when the whole
/// file, trailer included, went to `sink`.
fn write_cut(
    state: &ServerState,
    cut: &Cut,
    head: &Head,
    sink: &mut dyn FnMut(&[u8]) -> bool,
    gone: &mut dyn FnMut() -> bool,
) -> bool {
    let delay = state.config().rdb_key_save_delay;
    let (mut writer, opening) = PieceWriter::start(&head.aux, &head.functions);
    let walked = sink(&opening)
        && cut.walk(&state.keyspace, &mut |piece| {
            let keys = match &piece {
                Piece::Keys(c) => c.keys,
                Piece::Db { .. } => 0,
            };
            sink(&writer.piece(piece)) && key_save_delay(delay, keys, gone)
        });
    state.keyspace.snapshot().finish();
    walked && sink(&writer.finish())
}

/// Takes the snapshot gate, or says a save already holds it.
fn acquire(state: &ServerState) -> bool {
    state
        .rdb
        .busy
        .compare_exchange(false, true, Relaxed, Relaxed)
        .is_ok()
}

/// SAVE: the snapshot written by the calling thread. Err is the error reply's text; what
/// went wrong is logged.
pub fn save(state: &ServerState) -> Result<(), &'static str> {
    if !acquire(state) {
        return Err("ERR Background save already in progress");
    }
    state.rdb.saves.fetch_add(1, Relaxed);
    let result = save_to_file(state);
    state.rdb.busy.store(false, Relaxed);
    match &result {
        Ok(()) => {
            log_at!(Notice, "DB saved on disk");
            state.dirty.store(0, Relaxed);
            state.last_save_secs.store(now_secs(), Relaxed);
            state.rdb.last_bgsave_ok.store(true, Relaxed);
        }
        Err(e) => log_at!(Warning, "{}", e),
    }
    result.map_err(|_| "ERR")
}

fn save_to_file(state: &ServerState) -> Result<(), String> {
    let target = state.config().dbfilename.clone();
    let tmp = format!("temp-{}.rdb", std::process::id());
    let (cut, aux) = cut(state);
    let file = std::fs::File::create(&tmp);
    let Ok(file) = file else {
        state.keyspace.snapshot().finish();
        let e = file.err().map(|e| io_reason(&e)).unwrap_or_default();
        return Err(format!(
            "Failed opening the temp RDB file {tmp} (in server root dir {}) for saving: {e}",
            cwd()
        ));
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut error = None;
    let complete = write_cut(
        state,
        &cut,
        &aux,
        &mut |bytes| match out.write_all(bytes) {
            Ok(()) => true,
            Err(e) => {
                error = Some(io_reason(&e));
                false
            }
        },
        &mut || false,
    );
    let synced = out
        .into_inner()
        .map_err(|e| io_reason(e.error()))
        .and_then(|f| f.sync_all().map_err(|e| io_reason(&e)));
    let done = match (complete, error, synced) {
        (true, None, Ok(())) => finish_file(Path::new(&tmp), Path::new(&target)),
        (_, Some(e), _) | (_, None, Err(e)) => Err(format!("Write error saving DB on disk: {e}")),
        (false, None, Ok(())) => Err("snapshot walk abandoned".into()),
    };
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// An I/O error as the C library words it.
fn io_reason(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map_or_else(|| e.to_string(), crate::util::strerror)
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default()
}

/// Renames the complete temp file over the target and makes the rename durable.
fn finish_file(tmp: &Path, target: &Path) -> Result<(), String> {
    std::fs::rename(tmp, target).map_err(|e| {
        format!(
            "Error moving temp DB file {} on the final destination {} (in server root dir {}): {}",
            tmp.display(),
            target.display(),
            cwd(),
            io_reason(&e)
        )
    })?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// BGSAVE: starts the writer child, cuts the snapshot and leaves the walk to a thread.
/// Returns the child's pid, or the error reply's text.
pub fn start_bgsave(state: &Arc<ServerState>) -> Result<u32, &'static str> {
    if !acquire(state) {
        return Err("ERR Background save already in progress");
    }
    let rdb = &state.rdb;
    rdb.saves.fetch_add(1, Relaxed);
    rdb.last_try_secs.store(now_secs(), Relaxed);
    let target = state.config().dbfilename.clone();
    let spawned = std::env::current_exe().and_then(|exe| {
        Command::new(exe)
            .env(WRITER_ENV, &target)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            rdb.busy.store(false, Relaxed);
            rdb.last_bgsave_ok.store(false, Relaxed);
            log_at!(Warning, "Can't save in background: fork: {}", e);
            return Err("ERR");
        }
    };
    let pid = child.id();
    rdb.forks.fetch_add(1, Relaxed);
    rdb.dirty_before.store(state.dirty.load(Relaxed), Relaxed);
    let (cut, aux) = cut(state);
    *rdb.current.lock() = Some(cut.clone());
    rdb.child_pid.store(pid, Relaxed);
    rdb.started_secs.store(now_secs(), Relaxed);
    rdb.in_progress.store(true, Relaxed);
    rdb.scheduled.store(false, Relaxed);
    log_at!(Notice, "Background saving started by pid {}", pid);
    let stdin = child.stdin.take();
    let state = state.clone();
    std::thread::Builder::new()
        .name("rdb-bgsave".into())
        .spawn(move || {
            let status = feed_child(&state, &cut, &aux, &mut child, stdin);
            drop(cut);
            bgsave_done(&state, pid, status);
        })
        .map_err(|_| "ERR")?;
    Ok(pid)
}

/// Streams the snapshot into the child and reaps it.
fn feed_child(
    state: &ServerState,
    cut: &Cut,
    aux: &Head,
    child: &mut Child,
    stdin: Option<ChildStdin>,
) -> std::io::Result<ExitStatus> {
    if let Some(mut stdin) = stdin {
        let child_gone = std::cell::Cell::new(false);
        let mut gone = || {
            if cut.is_abandoned() {
                return true;
            }
            if !child_gone.get() {
                child_gone.set(matches!(child.try_wait(), Ok(Some(_))));
            }
            child_gone.get()
        };
        let complete = write_cut(
            state,
            cut,
            aux,
            &mut |bytes| send_frames(&mut stdin, bytes),
            &mut gone,
        );
        if cut.is_abandoned() {
            // SIGUSR1, as Redis's killRDBChild: the save ends without counting as failed.
            unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) };
        } else if complete {
            // The closing empty frame: only now may the child rename its file.
            let _ = stdin.write_all(&0u32.to_le_bytes());
        }
    } else {
        state.keyspace.snapshot().finish();
    }
    child.wait()
}

/// Writes `bytes` as frames of at most FRAME_MAX_BYTES, each after its length (u32, little
/// endian). False once the child is gone.
fn send_frames(out: &mut ChildStdin, bytes: &[u8]) -> bool {
    bytes.chunks(FRAME_MAX_BYTES).all(|frame| {
        out.write_all(&(frame.len() as u32).to_le_bytes()).is_ok() && out.write_all(frame).is_ok()
    })
}

/// Records how the child ended, as Redis's `backgroundSaveDoneHandlerDisk`.
fn bgsave_done(state: &ServerState, pid: u32, status: std::io::Result<ExitStatus>) {
    use std::os::unix::process::ExitStatusExt;
    let rdb = &state.rdb;
    match status {
        Ok(s) if s.success() => {
            log_at!(Notice, "DB saved on disk");
            log_at!(Notice, "Background saving terminated with success");
            let before = rdb.dirty_before.load(Relaxed);
            state.dirty.saturating_sub(before);
            state.last_save_secs.store(now_secs(), Relaxed);
            rdb.last_bgsave_ok.store(true, Relaxed);
        }
        Ok(s) if s.signal().is_some() => {
            let signal = s.signal().unwrap_or_default();
            log_at!(Warning, "Background saving terminated by signal {}", signal);
            let _ = std::fs::remove_file(format!("temp-{pid}.rdb"));
            // SIGUSR1 is how Redis stops a child on purpose, without counting an error.
            if signal != libc::SIGUSR1 {
                rdb.last_bgsave_ok.store(false, Relaxed);
            }
        }
        _ => {
            log_at!(Warning, "Background saving error");
            rdb.last_bgsave_ok.store(false, Relaxed);
        }
    }
    rdb.last_bgsave_time_sec
        .store(now_secs() - rdb.started_secs.load(Relaxed), Relaxed);
    if let Some(cut) = rdb.current.lock().take() {
        rdb.last_cow_bytes.store(cut.early_bytes() as u64, Relaxed);
    }
    rdb.child_pid.store(0, Relaxed);
    rdb.in_progress.store(false, Relaxed);
    rdb.busy.store(false, Relaxed);
}

/// Calls off a running BGSAVE before shutting down (Redis kills its child) and waits, a
/// bounded time, for its walk to let go of the snapshot.
pub fn abort_for_shutdown(state: &ServerState) {
    if !state.rdb.in_progress.load(Relaxed) {
        return;
    }
    log_at!(Warning, "There is a child saving an .rdb. Killing it!");
    if let Some(cut) = state.keyspace.snapshot().in_progress() {
        cut.abandon();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while state.rdb.busy.load(Relaxed) && std::time::Instant::now() < deadline {
        std::thread::sleep(DELAY_STEP);
    }
}

/// How long save points wait before trying again after a failed BGSAVE.
const BGSAVE_RETRY_DELAY_SECS: i64 = 5;

/// The cron's part: a scheduled BGSAVE starts once no AOF rewrite runs (one attempt: a
/// failure to start is logged, not retried every tick); otherwise the first `save` point
/// that is due starts one.
pub fn cron(state: &Arc<ServerState>) {
    let idle = !state.aof.rewrite_in_progress.load(Relaxed) && !state.rdb.busy.load(Relaxed);
    if !idle {
        return;
    }
    if state.rdb.scheduled.swap(false, Relaxed) {
        let _ = start_bgsave(state);
        return;
    }
    let now = now_secs();
    let config = state.config();
    let due = due_save_point(
        &config.save,
        state.dirty.load(Relaxed),
        now - state.last_save_secs.load(Relaxed),
        now - state.rdb.last_try_secs.load(Relaxed),
        state.rdb.last_bgsave_ok.load(Relaxed),
    );
    if let Some((seconds, changes)) = due {
        log_at!(
            Notice,
            "{} changes in {} seconds. Saving...",
            changes,
            seconds
        );
        let _ = start_bgsave(state);
    }
}

/// The first `save <seconds> <changes>` point that is due (Redis's serverCron rule: enough
/// changes, more than `seconds` since the last successful save, and a failed attempt not
/// retried within `BGSAVE_RETRY_DELAY_SECS`).
fn due_save_point(
    points: &[(u64, u64)],
    dirty: u64,
    secs_since_save: i64,
    secs_since_try: i64,
    last_ok: bool,
) -> Option<(u64, u64)> {
    points.iter().copied().find(|&(seconds, changes)| {
        dirty >= changes
            && secs_since_save > seconds as i64
            && (last_ok || secs_since_try > BGSAVE_RETRY_DELAY_SECS)
    })
}

/// The writer child's whole life (`main` calls it when `WRITER_ENV` is set): frames from
/// stdin into `temp-<pid>.rdb`, then fsync and rename to `target` after the closing frame.
/// Returns the exit code: 0 when the file is in place.
pub fn writer_main(target: &std::ffi::OsStr) -> i32 {
    let tmp = format!("temp-{}.rdb", std::process::id());
    match write_frames(std::io::stdin().lock(), Path::new(&tmp), Path::new(target)) {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("ferrodis rdb writer: {e}");
            1
        }
    }
}

fn write_frames(mut input: impl Read, tmp: &Path, target: &Path) -> Result<(), String> {
    let file = std::fs::File::create(tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    let mut buf = vec![0u8; FRAME_MAX_BYTES];
    loop {
        let mut len = [0u8; 4];
        input
            .read_exact(&mut len)
            .map_err(|_| "stream ended before the snapshot was complete".to_string())?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            break;
        }
        if len > FRAME_MAX_BYTES {
            return Err(format!("frame of {len} bytes"));
        }
        input
            .read_exact(&mut buf[..len])
            .map_err(|_| "stream ended inside a frame".to_string())?;
        out.write_all(&buf[..len]).map_err(|e| e.to_string())?;
    }
    let file = out.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    drop(file);
    finish_file(tmp, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_points_follow_changes_time_and_the_retry_delay() {
        let points = [(3600, 1), (300, 100), (60, 10000)];
        assert_eq!(due_save_point(&points, 0, 10_000, 10_000, true), None);
        assert_eq!(due_save_point(&points, 1, 3600, 10_000, true), None);
        assert_eq!(
            due_save_point(&points, 1, 3601, 10_000, true),
            Some((3600, 1))
        );
        assert_eq!(
            due_save_point(&points, 150, 301, 10_000, true),
            Some((300, 100))
        );
        assert_eq!(due_save_point(&points, 150, 301, 5, false), None);
        assert_eq!(
            due_save_point(&points, 150, 301, 6, false),
            Some((300, 100))
        );
        assert_eq!(due_save_point(&[], 1_000_000, 1_000_000, 1_000, true), None);
    }

    fn framed(parts: &[&[u8]], close: bool) -> Vec<u8> {
        let mut v = Vec::new();
        for p in parts {
            v.extend_from_slice(&(p.len() as u32).to_le_bytes());
            v.extend_from_slice(p);
        }
        if close {
            v.extend_from_slice(&0u32.to_le_bytes());
        }
        v
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ferrodis-rdbw-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn writer_renames_only_after_the_closing_frame() {
        let d = scratch("ok");
        let (tmp, target) = (d.join("temp-1.rdb"), d.join("dump.rdb"));
        let input = framed(&[b"REDIS", b"0010"], true);
        write_frames(&input[..], &tmp, &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"REDIS0010");
        assert!(!tmp.exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_truncated_stream_leaves_the_old_file() {
        let d = scratch("cut");
        let (tmp, target) = (d.join("temp-1.rdb"), d.join("dump.rdb"));
        std::fs::write(&target, b"old").unwrap();
        let input = framed(&[b"REDIS", b"0010"], false);
        assert!(write_frames(&input[..], &tmp, &target).is_err());
        let half = &input[..7];
        assert!(write_frames(half, &tmp, &target).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn delay_stops_when_the_save_is_abandoned() {
        let started = std::time::Instant::now();
        let mut calls = 0;
        assert!(!key_save_delay(i32::MAX as i64, 1, &mut || {
            calls += 1;
            calls > 2
        }));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(key_save_delay(-1000, 3, &mut || false));
    }
}

//! MIGRATE's side that touches the network: cached connections to targets (at most 64, closed
//! by the cron after 10 idle seconds, as Redis's `migrate_cached_sockets`), the blocking
//! exchange with one target, and the keys held while their exchange runs: commands on those
//! keys wait for the MIGRATE to finish, so what the target received is what gets deleted here.

use crate::commands::errors;
use crate::commands::migrate::{bulk, MigrateDone, MigrateJob};
use crate::resp::ErrorReply;
use crate::server::state::ServerState;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CACHE_ITEMS: usize = 64;
const CACHE_TTL_SECS: u64 = 10;
/// Redis writes the commands in chunks of this size, each within the timeout.
const CHUNK: usize = 64 * 1024;
/// Redis reads each reply line into a buffer of this size.
const LINE_MAX: usize = 1023;

struct Cached {
    /// `None` when the connection attempt was refused: like Redis's non-blocking connect,
    /// that shows as a failed write.
    stream: Option<TcpStream>,
    /// The database selected on the target; `None` forces a SELECT.
    last_dbid: Option<i64>,
    last_use_secs: u64,
}

#[derive(Default)]
pub struct MigrateState {
    sockets: Mutex<HashMap<String, Arc<Mutex<Cached>>>>,
    held: Mutex<HashSet<(usize, Bytes)>>,
    held_count: AtomicUsize,
    released: Condvar,
}

impl MigrateState {
    /// INFO's `migrate_cached_sockets`.
    pub fn cached_sockets(&self) -> usize {
        self.sockets.lock().len()
    }

    /// Closes the connections unused for more than 10 seconds (from the cron).
    pub fn close_idle(&self, now_secs: u64) {
        self.sockets.lock().retain(|_, cs| match cs.try_lock() {
            Some(c) => now_secs.saturating_sub(c.last_use_secs) <= CACHE_TTL_SECS,
            None => true,
        });
    }

    /// Holds keys until `release` (called by the MIGRATE handler under their shard locks).
    pub fn hold(&self, db: usize, keys: &[Bytes]) {
        let mut held = self.held.lock();
        for k in keys {
            if held.insert((db, k.clone())) {
                self.held_count.fetch_add(1, Relaxed);
            }
        }
    }

    pub fn release(&self, db: usize, keys: &[Bytes]) {
        let mut held = self.held.lock();
        for k in keys {
            if held.remove(&(db, k.clone())) {
                self.held_count.fetch_sub(1, Relaxed);
            }
        }
        drop(held);
        self.released.notify_all();
    }

    /// Whether a MIGRATE holds keys right now (one atomic load on every command's path).
    pub fn holds_any(&self) -> bool {
        self.held_count.load(Relaxed) != 0
    }

    /// Whether any of `keys` is held (checked with the keys' shards locked).
    pub fn any_held<'k>(&self, db: usize, keys: impl IntoIterator<Item = &'k [u8]>) -> bool {
        if self.held_count.load(Relaxed) == 0 {
            return false;
        }
        let held = self.held.lock();
        keys.into_iter()
            .any(|k| held.contains(&(db, Bytes::copy_from_slice(k))))
    }

    /// Waits until none of `keys` is held (with no shard locked).
    pub fn wait_released(&self, db: usize, keys: &[Bytes]) {
        off_runtime(|| {
            let mut held = self.held.lock();
            while keys.iter().any(|k| held.contains(&(db, k.clone()))) {
                self.released
                    .wait_for(&mut held, Duration::from_millis(100));
            }
        })
    }
}

/// Runs blocking work without stalling the other tasks of this runtime worker.
pub fn off_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Why an exchange failed on the socket.
struct SocketError {
    writing: bool,
    timed_out: bool,
}

fn io_failed(writing: bool, e: &std::io::Error) -> SocketError {
    SocketError {
        writing,
        timed_out: matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// Talks to the target as Redis's `migrateCommand` does: AUTH and SELECT when needed, the
/// RESTOREs, one reply line each; a failure on a cached connection is retried once on a new
/// one when nothing was processed yet and it was not a timeout.
pub fn exchange(state: &ServerState, job: &MigrateJob) -> MigrateDone {
    off_runtime(|| exchange_blocking(state, job))
}

fn exchange_blocking(state: &ServerState, job: &MigrateJob) -> MigrateDone {
    let name = format!(
        "{}:{}",
        String::from_utf8_lossy(&job.host),
        String::from_utf8_lossy(&job.port)
    );
    let timeout = Duration::from_millis(job.timeout_ms);
    let mut may_retry = true;
    loop {
        let Some(cs) = get_socket(state, &name, job, timeout) else {
            return MigrateDone {
                accepted: Vec::new(),
                error: Some(errors::MIGRATE_IOERR_CONNECT),
            };
        };
        let mut c = cs.lock();
        let result = talk(&mut c, job, timeout);
        drop(c);
        match result {
            Ok(done) => {
                if done.socket_error {
                    close_socket(state, &name, &cs);
                }
                return done.done;
            }
            Err((e, accepted)) => {
                close_socket(state, &name, &cs);
                if may_retry && !e.timed_out && accepted.is_none() {
                    may_retry = false;
                    continue;
                }
                return MigrateDone {
                    accepted: accepted.unwrap_or_default(),
                    error: Some(if e.writing {
                        errors::MIGRATE_IOERR_WRITE
                    } else {
                        errors::MIGRATE_IOERR_READ
                    }),
                };
            }
        }
    }
}

struct Talked {
    done: MigrateDone,
    socket_error: bool,
}

/// One attempt. `Err` carries the keys already accepted when the failure came after the first
/// RESTORE reply (no retry then).
fn talk(
    c: &mut Cached,
    job: &MigrateJob,
    timeout: Duration,
) -> Result<Talked, (SocketError, Option<Vec<Bytes>>)> {
    let mut cmd = Vec::with_capacity(job.restores.len() + 64);
    if let Some((user, pass)) = &job.auth {
        let argc = if user.is_some() { 3 } else { 2 };
        cmd.extend_from_slice(format!("*{argc}\r\n").as_bytes());
        bulk(&mut cmd, b"AUTH");
        if let Some(u) = user {
            bulk(&mut cmd, u);
        }
        bulk(&mut cmd, pass);
    }
    let select = c.last_dbid != Some(job.dbid);
    if select {
        cmd.extend_from_slice(b"*2\r\n");
        bulk(&mut cmd, b"SELECT");
        bulk(&mut cmd, job.dbid.to_string().as_bytes());
    }
    cmd.extend_from_slice(&job.restores);
    for chunk in cmd.chunks(CHUNK) {
        write_within(c.stream.as_mut(), chunk, timeout).map_err(|e| (io_failed(true, &e), None))?;
    }
    let auth_line = match &job.auth {
        Some(_) => Some(read_line(c.stream.as_mut(), timeout).map_err(|e| (e, None))?),
        None => None,
    };
    let select_line = match select {
        true => Some(read_line(c.stream.as_mut(), timeout).map_err(|e| (e, None))?),
        false => None,
    };
    let failed_before = [&auth_line, &select_line]
        .into_iter()
        .flatten()
        .find(|l| l.first() == Some(&b'-'))
        .cloned();
    let mut done = MigrateDone::default();
    let mut socket_error = None;
    for (j, key) in job.keys.iter().enumerate() {
        let line = match read_line(c.stream.as_mut(), timeout) {
            Ok(l) => l,
            Err(e) => {
                socket_error = Some((j, e));
                break;
            }
        };
        let bad = failed_before
            .as_ref()
            .or((line.first() == Some(&b'-')).then_some(&line));
        match bad {
            Some(text) => {
                if done.error.is_none() {
                    c.last_dbid = None;
                    done.error = Some(ErrorReply::owned(format!(
                        "ERR Target instance replied with error: {}",
                        String::from_utf8_lossy(&text[1..])
                    )));
                }
            }
            None => done.accepted.push(key.clone()),
        }
    }
    if let Some((j, e)) = socket_error {
        if done.error.is_none() {
            // Nothing processed yet: the caller may retry on a new connection.
            let accepted = (j > 0).then_some(done.accepted);
            return Err((e, accepted));
        }
        return Ok(Talked {
            done,
            socket_error: true,
        });
    }
    if done.error.is_none() {
        c.last_dbid = Some(job.dbid);
    }
    Ok(Talked {
        done,
        socket_error: false,
    })
}

fn write_within(
    s: Option<&mut TcpStream>,
    mut buf: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    let Some(s) = s else {
        return Err(ErrorKind::ConnectionRefused.into());
    };
    let deadline = Instant::now() + timeout;
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        s.set_write_timeout(Some(left))?;
        match s.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One reply line without its CRLF, read byte by byte within the timeout (Redis's
/// `syncReadLine`); an empty line counts as a failure.
fn read_line(s: Option<&mut TcpStream>, timeout: Duration) -> Result<Vec<u8>, SocketError> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    let fail = |e: std::io::Error| io_failed(false, &e);
    let s = s.ok_or_else(|| fail(ErrorKind::NotConnected.into()))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail(ErrorKind::TimedOut.into()));
        }
        s.set_read_timeout(Some(left)).map_err(fail)?;
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => return Err(fail(ErrorKind::UnexpectedEof.into())),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => {
                if line.len() < LINE_MAX {
                    line.push(b[0]);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.is_empty() {
        return Err(fail(ErrorKind::InvalidData.into()));
    }
    Ok(line)
}

fn now_secs() -> u64 {
    super::connection::unix_us() / 1_000_000
}

/// A cached connection to `name`, or a new one (evicting one at random when 64 are cached).
fn get_socket(
    state: &ServerState,
    name: &str,
    job: &MigrateJob,
    timeout: Duration,
) -> Option<Arc<Mutex<Cached>>> {
    if let Some(cs) = state.migrate.sockets.lock().get(name).cloned() {
        cs.lock().last_use_secs = now_secs();
        return Some(cs);
    }
    let stream = connect(&job.host, &job.port, timeout)?;
    if let Some(s) = &stream {
        let _ = s.set_nodelay(true);
    }
    let cs = Arc::new(Mutex::new(Cached {
        stream,
        last_dbid: None,
        last_use_secs: now_secs(),
    }));
    let mut sockets = state.migrate.sockets.lock();
    if sockets.len() >= CACHE_ITEMS && !sockets.contains_key(name) {
        let n = rand::random::<usize>() % sockets.len();
        if let Some(victim) = sockets.keys().nth(n).cloned() {
            sockets.remove(&victim);
        }
    }
    sockets.insert(name.to_string(), cs.clone());
    Some(cs)
}

fn close_socket(state: &ServerState, name: &str, cs: &Arc<Mutex<Cached>>) {
    let mut sockets = state.migrate.sockets.lock();
    if sockets.get(name).is_some_and(|c| Arc::ptr_eq(c, cs)) {
        sockets.remove(name);
    }
}

/// Connects within the timeout; the port is read as C's `atoi` reads it. `None` when the
/// host does not resolve or no answer came in time; `Some(None)` when the attempt was refused.
fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Option<Option<TcpStream>> {
    let host = std::str::from_utf8(host).ok()?;
    let digits: String = {
        let t = String::from_utf8_lossy(port);
        let t = t.trim_start();
        let (sign, rest) = match t.strip_prefix('-') {
            Some(r) => (-1i64, r),
            None => (1, t.strip_prefix('+').unwrap_or(t)),
        };
        let d: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        (sign * d.parse::<i64>().unwrap_or(0)).to_string()
    };
    let port: u16 = digits.parse().unwrap_or(0);
    let addrs: Vec<_> = (host, port).to_socket_addrs().ok()?.collect();
    let mut refused = false;
    for addr in addrs {
        if addr.port() == 0 {
            refused = true;
            continue;
        }
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Some(Some(s)),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(_) => refused = true,
        }
    }
    refused.then_some(None)
}

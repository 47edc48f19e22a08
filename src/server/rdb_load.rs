//! Loading `dbfilename` at startup when AOF is off (Redis's `loadDataFromDisk`): a missing
//! file means an empty dataset; a file that cannot be read or does not parse stops the server
//! with Redis's log lines. Keys whose time has passed are dropped while loading on a primary
//! and counted (`rdb_last_load_keys_expired`), as Redis does; a replica keeps them for its
//! primary to expire. The load runs while clients are served: the server is `loading` (they
//! get -LOADING) and the keys go into the keyspace in batches (`loading::Inserter`).

use super::connection::unix_us;
use super::state::ServerState;
use crate::log_at;
use crate::persistence::rdb::{check, decode};
use std::sync::atomic::Ordering::Relaxed;

/// Loads the RDB file, if there is one. False means the server must not start; the reason
/// has been logged.
pub fn load_at_startup(state: &ServerState) -> bool {
    let path = state.config().dbfilename.clone();
    let started = std::time::Instant::now();
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(e) => {
            let reason = e
                .raw_os_error()
                .map_or_else(|| e.to_string(), crate::util::strerror);
            log_at!(Warning, "Fatal error loading the DB: {}. Exiting.", reason);
            return false;
        }
    };
    let now_ms = unix_us() / 1000;
    let primary = state.config().replicaof.is_none();
    let limits = decode::LoadLimits::from_config(&state.config());
    let lru = (now_ms / 1000) as u32;
    let databases = state.keyspace.databases();
    let loading = super::loading::begin(state, bytes.len() as u64);
    let mut expired = 0u64;
    let mut foreign_db = None;
    let mut functions = Vec::new();
    let mut inserter = super::loading::Inserter::new(state, 0, lru);
    let result = decode::decode_all(
        &bytes,
        limits,
        0,
        |k, v| {
            if k == b"used-mem" {
                if let Some(n) = std::str::from_utf8(v).ok().and_then(|t| t.parse().ok()) {
                    state.load_progress.set_rdb_used_mem(n);
                }
            }
            log_aux(k, v, now_ms)
        },
        |f| functions.push(f),
        |l| {
            if primary && l.expire_at_ms != 0 && l.expire_at_ms <= now_ms {
                expired += 1;
                return;
            }
            if l.db >= databases {
                foreign_db = Some(databases);
                return;
            }
            inserter.push(l);
        },
    );
    inserter.flush(bytes.len() as u64);
    let loaded = inserter.inserted;
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            log_at!(
                Warning,
                "Internal error in RDB reading offset {}, function at rdb.c:0 -> {}",
                e.offset,
                e.reason
            );
            // As Redis does, the whole file is then checked and the report logged.
            let name = path.rsplit('/').next().unwrap_or(&path);
            for line in check::check(name, &bytes, limits, now_ms).lines {
                log_at!(Warning, "{}", line);
            }
            log_at!(
                Warning,
                "Terminating server after rdb file reading failure."
            );
            return false;
        }
    };
    state
        .stats
        .dump_payload_sanitizations
        .fetch_add(summary.deep_checked, Relaxed);
    for key in &summary.first_empty_keys {
        log_at!(
            Warning,
            "rdbLoadObject skipping empty key: {}",
            String::from_utf8_lossy(key)
        );
    }
    if let Err(e) = crate::commands::scripting::functions::load_sources(functions, false) {
        log_at!(Warning, "Failed loading library, {}", e);
        log_at!(
            Warning,
            "Terminating server after rdb file reading failure."
        );
        return false;
    }
    if let Some(databases) = foreign_db {
        log_at!(
            Warning,
            "FATAL: Data file was created with a Redis server configured to handle more than {} databases. Exiting\n",
            databases
        );
        return false;
    }
    state.rdb.last_load_keys_loaded.store(loaded, Relaxed);
    state.rdb.last_load_keys_expired.store(expired, Relaxed);
    if summary.empty_keys > 0 {
        log_at!(
            Warning,
            "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
            loaded,
            expired,
            summary.empty_keys
        );
    } else {
        log_at!(
            Notice,
            "Done loading RDB, keys loaded: {}, keys expired: {}.",
            loaded,
            expired
        );
    }
    drop(loading);
    log_at!(
        Notice,
        "DB loaded from disk: {:.3} seconds",
        started.elapsed().as_secs_f64()
    );
    true
}

/// DEBUG RELOAD: saves the snapshot to `dbfilename` (unless not `save`), then loads that file
/// back, emptying the dataset and the libraries first when `flush`. Without `merge` a key or
/// library the file holds that is already there fails the load, as in Redis.
pub fn debug_reload(
    state: &ServerState,
    save: bool,
    flush: bool,
    merge: bool,
) -> Result<(), crate::resp::ErrorReply> {
    use crate::commands::scripting::functions;
    use crate::resp::ErrorReply;
    let failed = ErrorReply::fixed("ERR Error trying to load the RDB dump");
    if save && super::rdb_save::save(state).is_err() {
        return Err(ErrorReply::fixed("ERR"));
    }
    let path = state.config().dbfilename.clone();
    let bytes = std::fs::read(&path).map_err(|_| failed.clone())?;
    let now_ms = unix_us() / 1000;
    let limits = decode::LoadLimits::from_config(&state.config());
    let mut ks = state.keyspace.lock_all();
    let mut loaded = Vec::new();
    let mut sources = Vec::new();
    decode::decode_all(
        &bytes,
        limits,
        now_ms,
        |_, _| {},
        |f| sources.push(f),
        |l| loaded.push(l),
    )
    .map_err(|_| failed.clone())?;
    if flush {
        for db in 0..ks.databases() {
            ks.flush_db(db);
        }
        functions::clear();
    }
    if let Err(e) = functions::load_sources(sources, merge) {
        log_at!(Warning, "Failed loading library, {}", e);
        return Err(failed);
    }
    let lru = (now_ms / 1000) as u32;
    for l in loaded {
        if l.db >= ks.databases() {
            continue;
        }
        if !merge && ks.peek(l.db, &l.key).is_some() {
            log_at!(Warning, "RDB has duplicated key in DB {}", l.db);
            return Err(failed);
        }
        let mut entry = crate::keyspace::Entry::new(l.value, lru);
        entry.expire_at_ms = l.expire_at_ms;
        ks.insert(l.db, &l.key, entry);
    }
    log_at!(Warning, "DB reloaded by DEBUG RELOAD");
    Ok(())
}

/// The lines Redis logs for the auxiliary fields it recognises.
fn log_aux(key: &[u8], value: &[u8], now_ms: u64) {
    let text = String::from_utf8_lossy(value);
    match key {
        b"redis-ver" => log_at!(Notice, "Loading RDB produced by version {}", text),
        b"ctime" => {
            if let Ok(ctime) = text.parse::<i64>() {
                let age = (now_ms / 1000) as i64 - ctime;
                log_at!(Notice, "RDB age {} seconds", age.max(0));
            }
        }
        b"used-mem" => {
            if let Ok(bytes) = text.parse::<u64>() {
                let mb = bytes as f64 / (1024.0 * 1024.0);
                log_at!(Notice, "RDB memory usage when created {:.2} Mb", mb);
            }
        }
        _ => {}
    }
}

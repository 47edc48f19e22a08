//! The slow log: commands that took longer than `slowlog-log-slower-than` microseconds, newest
//! first, at most `slowlog-max-len` entries, arguments trimmed as Redis trims them (32
//! arguments, 128 bytes each).

use super::state::{ServerState, SlowLogEntry};
use crate::commands::context::ClientState;
use bytes::Bytes;

const MAX_ARGC: usize = 32;
const MAX_ARG_LEN: usize = 128;

pub fn record(state: &ServerState, client: &ClientState, args: &[Bytes], duration_us: u64) {
    let max_len = state.config().slowlog_max_len as usize;
    let mut kept: Vec<Bytes> = Vec::with_capacity(args.len().min(MAX_ARGC));
    for (i, a) in args.iter().enumerate() {
        if i == MAX_ARGC - 1 && args.len() > MAX_ARGC {
            let more = args.len() - MAX_ARGC + 1;
            kept.push(Bytes::from(format!("... ({more} more arguments)")));
            break;
        }
        if a.len() > MAX_ARG_LEN {
            let more = a.len() - MAX_ARG_LEN;
            let mut v = a[..MAX_ARG_LEN].to_vec();
            v.extend_from_slice(format!("... ({more} more bytes)").as_bytes());
            kept.push(Bytes::from(v));
        } else {
            kept.push(Bytes::copy_from_slice(a));
        }
    }
    let mut log = state.slowlog.lock();
    let id = log.next_id;
    log.next_id += 1;
    log.entries.push_front(SlowLogEntry {
        id,
        time_secs: (super::connection::unix_us() / 1_000_000) as i64,
        duration_us,
        args: kept,
        peer: client.addr.clone(),
        name: client
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default(),
    });
    while log.entries.len() > max_len {
        log.entries.pop_back();
    }
}

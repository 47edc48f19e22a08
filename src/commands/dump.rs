//! DUMP, RESTORE and RESTORE-ASKING: a value serialized as an RDB object with the RDB version
//! and a CRC-64 as its footer, and the way back, with Redis 7.0's options (REPLACE, ABSTTL,
//! IDLETIME, FREQ), its order of checks and its propagation rule (a relative TTL travels as an
//! absolute one with ABSTTL appended).

use super::context::ExecCtx;
use super::errors;
use super::spec::{acl, flag::*, kflag, CmdResult, CommandSpec as C, KeySpec};
use crate::config::values::{notify, SanitizeDumpPayload};
use crate::keyspace::Entry;
use crate::persistence::rdb::decode::{decode_dump, DumpError, LoadLimits};
use crate::persistence::rdb::encode::{Options, RdbWriter};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;

const KEY_RO_ACCESS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];
const KEY_OW_UPDATE: &[KeySpec] = &[KeySpec::single(1, kflag::OW | kflag::UPDATE)];

pub const COMMANDS: &[C] = &[
    C::new(
        "dump",
        2,
        READONLY,
        acl::KEYSPACE,
        KEY_RO_ACCESS,
        "generic",
        "2.6.0",
        dump,
    )
    .tips(&["nondeterministic_output"]),
    C::new(
        "restore",
        -4,
        WRITE | DENYOOM,
        acl::KEYSPACE | acl::DANGEROUS,
        KEY_OW_UPDATE,
        "generic",
        "2.6.0",
        restore,
    ),
    C::new(
        "restore-asking",
        -4,
        WRITE | DENYOOM | ASKING,
        acl::KEYSPACE | acl::DANGEROUS,
        KEY_OW_UPDATE,
        "server",
        "3.0.0",
        restore,
    ),
];

fn dump(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let opts = Options::from_config(&ctx.server.config());
    Ok(match ctx.lookup_read(&args[1]) {
        Some(entry) => Reply::Bulk(RdbWriter::dump_payload(&entry.value, opts).into()),
        None => Reply::Null,
    })
}

/// RESTORE's options after the payload.
#[derive(Default)]
struct RestoreOptions {
    replace: bool,
    absttl: bool,
    idle_secs: Option<i64>,
    freq: Option<i64>,
}

fn restore_options(ctx: &ExecCtx, args: &[Bytes]) -> Result<RestoreOptions, ErrorReply> {
    let mut o = RestoreOptions::default();
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        let word = &args[j];
        if word.eq_ignore_ascii_case(b"replace") {
            o.replace = true;
        } else if word.eq_ignore_ascii_case(b"absttl") {
            o.absttl = true;
        } else if word.eq_ignore_ascii_case(b"idletime") && more >= 1 && o.freq.is_none() {
            let idle = ctx.int_arg(&args[j + 1])?;
            if idle < 0 {
                return Err(errors::INVALID_IDLETIME);
            }
            o.idle_secs = Some(idle);
            j += 1;
        } else if word.eq_ignore_ascii_case(b"freq") && more >= 1 && o.idle_secs.is_none() {
            let freq = ctx.int_arg(&args[j + 1])?;
            if !(0..=255).contains(&freq) {
                return Err(errors::INVALID_FREQ);
            }
            o.freq = Some(freq);
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f].
fn restore(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let opts = restore_options(ctx, args)?;
    let key = &args[1];
    if !opts.replace && ctx.lookup_write(key).is_some() {
        return Err(errors::BUSYKEY);
    }
    let ttl = ctx.int_arg(&args[2])?;
    if ttl < 0 {
        return Err(errors::INVALID_TTL);
    }
    let config = ctx.server.config();
    let mut limits = LoadLimits::from_config(&config);
    limits.deep = match config.sanitize_dump_payload {
        SanitizeDumpPayload::Yes => true,
        SanitizeDumpPayload::No => false,
        SanitizeDumpPayload::Clients => !ctx.client.user.skips_sanitize(),
    };
    drop(config);
    let skip_checksum = ctx.server.debug.skip_checksum_validation.load(Relaxed);
    let (value, deep_checked) =
        decode_dump(&args[3], limits, skip_checksum).map_err(|e| match e {
            DumpError::VersionOrChecksum => errors::DUMP_VERSION_OR_CHECKSUM,
            DumpError::BadData(reason) => {
                if let Some(e) = reason {
                    // Redis logs a refused payload's fault at verbose level, as its loader words it.
                    crate::log_at!(
                        Verbose,
                        "Internal error in RDB reading offset {}, function at rdb.c:0 -> {}",
                        e.offset,
                        e.reason
                    );
                }
                errors::BAD_DATA_FORMAT
            }
        })?;
    ctx.server
        .stats
        .dump_payload_sanitizations
        .fetch_add(deep_checked, Relaxed);
    let deleted = opts.replace && ctx.delete(key);
    let expire_at = match (ttl, opts.absttl) {
        (0, _) => 0,
        (t, true) => t,
        (t, false) => t.saturating_add(ctx.now_ms as i64),
    };
    if expire_at != 0 && ctx.already_expired(expire_at) {
        if deleted {
            ctx.propagate_as(vec![Bytes::from_static(b"DEL"), key.clone()]);
            ctx.notify(notify::GENERIC, "del", key);
            ctx.dirty(1);
        }
        return Ok(Reply::OK);
    }
    let mut entry = Entry::new(value, ctx.lru_now());
    entry.expire_at_ms = expire_at.max(0) as u64;
    set_access_history(ctx, &mut entry, &opts);
    let db = ctx.db();
    ctx.add_entry(db, key, entry);
    if expire_at != 0 && !opts.absttl {
        let mut argv = args.to_vec();
        argv[2] = Bytes::from(expire_at.to_string());
        argv.push(Bytes::from_static(b"ABSTTL"));
        ctx.propagate_as(argv);
    }
    ctx.touch(db, key);
    ctx.notify(notify::GENERIC, "restore", key);
    ctx.dirty(1);
    Ok(Reply::OK)
}

/// IDLETIME sets the access clock under an LRU policy, FREQ the counter under an LFU one;
/// the option that does not fit the policy is ignored, as in Redis's `objectSetLRUOrLFU`.
fn set_access_history(ctx: &ExecCtx, entry: &mut Entry, opts: &RestoreOptions) {
    let lfu = super::context::lfu_params(ctx.server).is_some();
    match (lfu, opts.freq, opts.idle_secs) {
        (true, Some(freq), _) => entry.lfu = freq as u8,
        (false, _, Some(idle)) => {
            entry.lru_secs = ctx
                .lru_now()
                .saturating_sub(idle.min(u32::MAX as i64) as u32)
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::test_support::Harness;

    #[test]
    fn a_dumped_string_has_redis_byte_layout() {
        let mut h = Harness::new();
        h.ok(&["SET", "s1", "hello"]);
        let payload = h.bulk(&["DUMP", "s1"]);
        assert_eq!(&payload[..9], b"\x00\x05hello\x0a\x00");
        assert_eq!(payload.len(), 17);
        h.ok(&["SET", "n1", "12345"]);
        assert_eq!(&h.bulk(&["DUMP", "n1"])[..6], b"\x00\xc1\x39\x30\x0a\x00");
        assert!(h.is_null(&["DUMP", "missing"]));
    }

    #[test]
    fn every_type_survives_dump_and_restore() {
        let mut h = Harness::new();
        h.ok(&["RPUSH", "l", "a", "b", "1"]);
        h.ok(&["SADD", "s", "x", "2", "y"]);
        h.ok(&["HSET", "h", "f", "v", "g", "w"]);
        h.ok(&["ZADD", "z", "1.5", "m", "-2", "n"]);
        h.ok(&["XADD", "x", "1-1", "f", "v"]);
        for key in ["l", "s", "h", "z", "x"] {
            let before = h.ok(&["DEBUG", "DIGEST-VALUE", key]);
            let payload = h.bulk(&["DUMP", key]);
            let copy = format!("{key}-copy");
            h.ok_bytes(&[b"RESTORE", copy.as_bytes(), b"0", &payload]);
            assert_eq!(h.ok(&["DEBUG", "DIGEST-VALUE", &copy]), before, "{key}");
        }
    }

    #[test]
    fn restore_checks_options_then_existence_then_ttl_then_footer() {
        let mut h = Harness::new();
        h.ok(&["SET", "k", "v"]);
        let p = h.bulk(&["DUMP", "k"]);
        let restore = |h: &mut Harness, extra: &[&[u8]]| {
            let mut argv: Vec<&[u8]> = vec![b"RESTORE", b"k", b"0", &p];
            argv.extend_from_slice(extra);
            h.err_bytes(&argv)
        };
        assert_eq!(restore(&mut h, &[b"bogus"]), "ERR syntax error");
        assert_eq!(
            restore(&mut h, &[b"IDLETIME", b"-1"]),
            "ERR Invalid IDLETIME value, must be >= 0"
        );
        assert_eq!(
            restore(&mut h, &[b"FREQ", b"256"]),
            "ERR Invalid FREQ value, must be >= 0 and <= 255"
        );
        assert_eq!(
            restore(&mut h, &[b"FREQ", b"1", b"IDLETIME", b"1"]),
            "ERR syntax error"
        );
        assert_eq!(
            restore(&mut h, &[]),
            "BUSYKEY Target key name already exists."
        );
        assert_eq!(
            h.err_bytes(&[b"RESTORE", b"k", b"-1", &p, b"REPLACE"]),
            "ERR Invalid TTL value, must be >= 0"
        );
        let mut bad = p.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            h.err_bytes(&[b"RESTORE", b"k2", b"0", &bad]),
            "ERR DUMP payload version or checksum are wrong"
        );
        assert_eq!(
            h.err_bytes(&[b"RESTORE", b"k2", b"0", b"short"]),
            "ERR DUMP payload version or checksum are wrong"
        );
    }

    #[test]
    fn restore_with_a_past_absolute_ttl_creates_nothing() {
        let mut h = Harness::new();
        h.ok(&["SET", "k", "v"]);
        let p = h.bulk(&["DUMP", "k"]);
        h.ok_bytes(&[b"RESTORE", b"k", b"1", &p, b"ABSTTL", b"REPLACE"]);
        assert_eq!(h.int(&["EXISTS", "k"]), 0);
        h.ok_bytes(&[b"RESTORE", b"k", b"100000", &p]);
        let ttl = h.int(&["PTTL", "k"]);
        assert!(ttl > 99_000 && ttl <= 100_000, "{ttl}");
    }
}

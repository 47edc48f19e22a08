//! MIGRATE: the keys serialized as RESTORE (RESTORE-ASKING in cluster mode) commands while
//! their shards are locked, the exchange with the target done by the connection outside every
//! lock (`server::migrate`), then the command run again to delete what the target accepted and
//! to propagate that as one DEL. Inside MULTI or a script the exchange happens in place.

use super::context::ExecCtx;
use super::errors;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec,
};
use crate::config::values::notify;
use crate::persistence::rdb::encode::{Options, RdbWriter};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;

const KEYS: &[KeySpec] = &[
    KeySpec::single(3, kflag::RW | kflag::ACCESS | kflag::DELETE),
    KeySpec {
        notes: None,
        flags: kflag::RW | kflag::ACCESS | kflag::DELETE | kflag::INCOMPLETE,
        begin: BeginSearch::Keyword {
            keyword: "KEYS",
            start_from: -2,
        },
        find: FindKeys::Range {
            last_key: -1,
            step: 1,
            limit: 0,
        },
    },
];

pub const COMMANDS: &[C] = &[C::new(
    "migrate",
    -6,
    WRITE,
    acl::KEYSPACE | acl::DANGEROUS,
    KEYS,
    "generic",
    "2.6.0",
    migrate,
)
.tips(&["nondeterministic_output"])];

/// MIGRATE's arguments after parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateArgs {
    pub copy: bool,
    pub replace: bool,
    /// AUTH password, or AUTH2 username password.
    pub auth: Option<(Option<Bytes>, Bytes)>,
    /// Index of the first key and how many keys there are.
    pub first_key: usize,
    pub num_keys: usize,
    pub dbid: i64,
    /// Milliseconds; zero or less means 1000, as in Redis.
    pub timeout_ms: u64,
}

/// Parses the options in Redis's order: the options first, then the timeout, then the db.
pub fn parse(args: &[Bytes]) -> Result<MigrateArgs, ErrorReply> {
    let mut a = MigrateArgs {
        copy: false,
        replace: false,
        auth: None,
        first_key: 3,
        num_keys: 1,
        dbid: 0,
        timeout_ms: 0,
    };
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let word = &args[j];
        if word.eq_ignore_ascii_case(b"copy") {
            a.copy = true;
        } else if word.eq_ignore_ascii_case(b"replace") {
            a.replace = true;
        } else if word.eq_ignore_ascii_case(b"auth") {
            if more == 0 {
                return Err(errors::SYNTAX);
            }
            a.auth = Some((None, args[j + 1].clone()));
            j += 1;
        } else if word.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(errors::SYNTAX);
            }
            a.auth = Some((Some(args[j + 1].clone()), args[j + 2].clone()));
            j += 2;
        } else if word.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Err(errors::MIGRATE_KEYS_NEEDS_EMPTY_KEY);
            }
            a.first_key = j + 1;
            a.num_keys = args.len() - j - 1;
            break;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    let int = |b: &[u8]| crate::util::parse_int(b).ok_or(errors::NOT_INTEGER);
    let timeout = int(&args[5])?;
    a.dbid = int(&args[4])?;
    a.timeout_ms = if timeout <= 0 { 1000 } else { timeout as u64 };
    Ok(a)
}

/// The key positions Redis's `migrateGetKeys` finds: the key argument, or the keys after
/// KEYS when the key argument is empty (none when it is not: a syntax error).
pub fn key_positions(args: &[Bytes]) -> Vec<usize> {
    let (mut first, mut num) = (3, 1);
    let mut i = 6;
    while i < args.len() {
        let w = &args[i];
        if w.eq_ignore_ascii_case(b"keys") {
            if args[3].is_empty() {
                first = i + 1;
                num = args.len() - first;
            } else {
                num = 0;
            }
            break;
        }
        if w.eq_ignore_ascii_case(b"auth") {
            i += 1;
        } else if w.eq_ignore_ascii_case(b"auth2") {
            i += 2;
        }
        i += 1;
    }
    (first..first + num).filter(|&i| i < args.len()).collect()
}

/// The arguments as MONITOR and the slow log show them: AUTH / AUTH2 credentials replaced by
/// `(redacted)`, as far as Redis's parsing gets before KEYS or an error.
pub fn redacted(args: &[Bytes]) -> Vec<Bytes> {
    let mut out = args.to_vec();
    let mut j = 6;
    while j < out.len() {
        let more = out.len() - 1 - j;
        let w = &args[j];
        let hide = if w.eq_ignore_ascii_case(b"copy") || w.eq_ignore_ascii_case(b"replace") {
            0
        } else if w.eq_ignore_ascii_case(b"auth") && more >= 1 {
            1
        } else if w.eq_ignore_ascii_case(b"auth2") && more >= 2 {
            2
        } else {
            break;
        };
        for k in 1..=hide {
            out[j + k] = Bytes::from_static(b"(redacted)");
        }
        j += hide + 1;
    }
    out
}

/// What the connection carries out for a MIGRATE: the target, the RESTORE commands already
/// serialized, and the keys they restore, in order.
#[derive(Debug)]
pub struct MigrateJob {
    pub host: Bytes,
    pub port: Bytes,
    pub dbid: i64,
    pub timeout_ms: u64,
    pub auth: Option<(Option<Bytes>, Bytes)>,
    /// RESTORE / RESTORE-ASKING commands in RESP, one per key.
    pub restores: Vec<u8>,
    pub keys: Vec<Bytes>,
    /// The source database (the keys are held there until the command finishes).
    pub db: usize,
}

/// The exchange's result: the keys the target accepted, and the error to reply if any.
#[derive(Debug, Default)]
pub struct MigrateDone {
    pub accepted: Vec<Bytes>,
    pub error: Option<ErrorReply>,
}

fn migrate(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    let a = parse(args)?;
    if let Some(done) = ctx.client.migrate_done.take() {
        return Ok(finish(ctx, &a, done));
    }
    let Some(job) = prepare(ctx, args, &a) else {
        return Ok(Reply::simple("NOKEY"));
    };
    if ctx.deny_blocking || ctx.in_script {
        // Inside MULTI or a script the shards stay locked: talk to the target right here.
        let done = crate::server::migrate::exchange(ctx.server, &job);
        return Ok(finish(ctx, &a, done));
    }
    ctx.server.migrate.hold(job.db, &job.keys);
    ctx.effects.request().migrate = Some(Box::new(job));
    // Replaced by the reply of the second run once the exchange is done.
    Ok(Reply::NoReply)
}

/// Serializes the keys that exist and have not expired; `None` when there are none.
fn prepare(ctx: &mut ExecCtx, args: &[Bytes], a: &MigrateArgs) -> Option<MigrateJob> {
    let name: &[u8] = if ctx.server.config().cluster_enabled {
        b"RESTORE-ASKING"
    } else {
        b"RESTORE"
    };
    let mut out = Vec::new();
    let mut keys = Vec::new();
    let mut found = false;
    let opts = Options::from_config(&ctx.server.config());
    for key in &args[a.first_key..a.first_key + a.num_keys] {
        let now_ms = ctx.now_ms;
        let Some(entry) = ctx.lookup_read(key) else {
            continue;
        };
        found = true;
        let ttl = match entry.expire_at_ms {
            0 => 0,
            at if at < now_ms => continue,
            at => (at - now_ms).max(1),
        };
        let payload = RdbWriter::dump_payload(&entry.value, opts);
        let argc = if a.replace { 5 } else { 4 };
        out.extend_from_slice(format!("*{argc}\r\n").as_bytes());
        bulk(&mut out, name);
        bulk(&mut out, key);
        bulk(&mut out, ttl.to_string().as_bytes());
        bulk(&mut out, &payload);
        if a.replace {
            bulk(&mut out, b"REPLACE");
        }
        keys.push(key.clone());
    }
    if !found {
        return None;
    }
    Some(MigrateJob {
        host: args[1].clone(),
        port: args[2].clone(),
        dbid: a.dbid,
        timeout_ms: a.timeout_ms,
        auth: a.auth.clone(),
        restores: out,
        keys,
        db: ctx.db(),
    })
}

pub fn bulk(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// The second half: without COPY, the accepted keys are deleted and the command propagates as
/// `DEL` of exactly those keys.
fn finish(ctx: &mut ExecCtx, a: &MigrateArgs, done: MigrateDone) -> Reply {
    let mut del = vec![Bytes::from_static(b"DEL")];
    if !a.copy {
        let db = ctx.db();
        for key in done.accepted {
            if ctx.delete(&key) {
                ctx.touch(db, &key);
                ctx.notify(notify::GENERIC, "del", &key);
                ctx.dirty(1);
                del.push(key);
            }
        }
    }
    if del.len() > 1 {
        ctx.propagate_as(del);
    }
    match done.error {
        Some(e) => Reply::Error(e),
        None => Reply::OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<Bytes> {
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn options_and_keys_are_parsed_as_redis_does() {
        let a = parse(&argv(&["MIGRATE", "h", "1", "k", "3", "0"])).unwrap();
        assert_eq!(
            (a.first_key, a.num_keys, a.dbid, a.timeout_ms),
            (3, 1, 3, 1000)
        );
        assert!(!a.copy && !a.replace && a.auth.is_none());
        let args = argv(&[
            "MIGRATE", "h", "1", "", "0", "50", "copy", "REPLACE", "auth2", "u", "p", "KEYS", "a",
            "b",
        ]);
        let a = parse(&args).unwrap();
        assert!(a.copy && a.replace);
        assert_eq!(a.auth, Some((Some(Bytes::from("u")), Bytes::from("p"))));
        assert_eq!((a.first_key, a.num_keys, a.timeout_ms), (12, 2, 50));
        assert_eq!(key_positions(&args), vec![12, 13]);
        let a = parse(&argv(&[
            "MIGRATE", "h", "1", "", "0", "5", "AUTH", "pw", "KEYS",
        ]))
        .unwrap();
        assert_eq!((a.num_keys, a.auth), (0, Some((None, Bytes::from("pw")))));
    }

    #[test]
    fn errors_come_in_redis_order() {
        let err = |items: &[&str]| parse(&argv(items)).unwrap_err().text().to_string();
        assert_eq!(
            err(&["MIGRATE", "h", "1", "k", "x", "y", "bogus"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&["MIGRATE", "h", "1", "k", "0", "0", "AUTH"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&["MIGRATE", "h", "1", "k", "0", "0", "AUTH2", "u"]),
            "ERR syntax error"
        );
        assert_eq!(
            err(&["MIGRATE", "h", "1", "k", "0", "0", "KEYS", "a"]),
            "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
        );
        assert_eq!(
            err(&["MIGRATE", "h", "1", "k", "x", "y"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(
            err(&["MIGRATE", "h", "1", "k", "x", "0"]),
            "ERR value is not an integer or out of range"
        );
    }

    #[test]
    fn credentials_are_redacted() {
        let args = argv(&[
            "MIGRATE", "h", "1", "", "0", "5", "AUTH2", "u", "p", "KEYS", "auth",
        ]);
        let shown = redacted(&args);
        assert_eq!(
            &shown[7..],
            &argv(&["(redacted)", "(redacted)", "KEYS", "auth"])[..]
        );
        let args = argv(&["MIGRATE", "h", "1", "k", "0", "5", "COPY", "AUTH", "pw"]);
        assert_eq!(
            &redacted(&args)[6..],
            &argv(&["COPY", "AUTH", "(redacted)"])[..]
        );
    }

    #[test]
    fn key_positions_follow_migrate_get_keys() {
        assert_eq!(
            key_positions(&argv(&["MIGRATE", "h", "1", "k", "0", "0"])),
            vec![3]
        );
        // AUTH's password is skipped even when it reads KEYS.
        let args = argv(&[
            "MIGRATE", "h", "1", "", "0", "0", "AUTH", "keys", "KEYS", "a",
        ]);
        assert_eq!(key_positions(&args), vec![9]);
        let args = argv(&["MIGRATE", "h", "1", "k", "0", "0", "KEYS", "a"]);
        assert!(key_positions(&args).is_empty());
    }
}

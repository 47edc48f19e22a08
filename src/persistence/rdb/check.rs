//! Verifying an RDB file and summarising what it holds, in the report format of Redis's
//! `redis-check-rdb` (one line per step, prefixed by the byte offset reached). Used by
//! `ferrodis-cli check-rdb` and by the server when a file it loads at startup is damaged.

use super::decode::{self, Event, LoadLimits};

/// What a check found: the report lines, and whether the file is sound.
#[derive(Debug)]
pub struct Report {
    pub lines: Vec<String>,
    pub ok: bool,
}

/// The name `redis-check-rdb` gives each value type byte.
fn type_name(kind: u8) -> &'static str {
    match kind {
        0 => "string",
        1 => "list-linked",
        2 => "set-hashtable",
        3 => "zset-v1",
        4 => "hash-hashtable",
        5 => "zset-v2",
        6 | 7 => "module-value",
        9 => "hash-zipmap",
        10 => "list-ziplist",
        11 => "set-intset",
        12 => "zset-ziplist",
        13 => "hash-ziplist",
        14 => "quicklist",
        15 | 19 | 21 => "stream",
        16 => "hash-listpack",
        17 => "zset-listpack",
        18 => "quicklist-v2",
        20 => "set-listpack",
        _ => "unknown",
    }
}

/// Checks `bytes`, the content of the file called `name`; keys whose expiry is at or before
/// `now_ms` count as already expired.
pub fn check(name: &str, bytes: &[u8], limits: LoadLimits, now_ms: u64) -> Report {
    // Like Redis's checker, always with the deep integrity check.
    let limits = LoadLimits {
        deep: true,
        ..limits
    };
    let mut lines = vec![format!("[offset 0] Checking RDB file {name}")];
    let (mut keys, mut expires, mut expired) = (0u64, 0u64, 0u64);
    let result = decode::decode_events(bytes, limits, &mut |offset, event| match event {
        Event::Aux(k, v) => lines.push(format!(
            "[offset {offset}] AUX FIELD {} = '{}'",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        )),
        Event::SelectDb(db) => lines.push(format!("[offset {offset}] Selecting DB ID {db}")),
        Event::Key(l) => {
            keys += 1;
            if l.expire_at_ms != 0 {
                expires += 1;
                if l.expire_at_ms <= now_ms {
                    expired += 1;
                }
            }
        }
        Event::EmptyKey { .. } => keys += 1,
        Event::Function(_) => {}
        Event::Checksum { disabled: true } => lines.push(format!(
            "[offset {offset}] RDB file was saved with checksum disabled: no check performed."
        )),
        Event::Checksum { disabled: false } => lines.push(format!("[offset {offset}] Checksum OK")),
    });
    let ok = match result {
        Ok(_) => {
            let end = bytes.len();
            lines.push(format!("[offset {end}] \\o/ RDB looks OK! \\o/"));
            true
        }
        Err(e) => {
            lines.push("--- RDB ERROR DETECTED ---".into());
            lines.push(format!(
                "[offset {}] Internal error in RDB reading offset {}, function at rdb.c:0 -> {}",
                e.offset, e.offset, e.reason
            ));
            if e.kind.is_some() {
                lines.push("[additional info] While doing: read-object-value".into());
            }
            if let Some(key) = &e.key {
                // Redis counts the key it failed on as read.
                keys += 1;
                lines.push(format!(
                    "[additional info] Reading key '{}'",
                    String::from_utf8_lossy(key)
                ));
            }
            if let Some(kind) = e.kind {
                lines.push(format!(
                    "[additional info] Reading type {kind} ({})",
                    type_name(kind)
                ));
            }
            false
        }
    };
    lines.extend([
        format!("[info] {keys} keys read"),
        format!("[info] {expires} expires"),
        format!("[info] {expired} already expired"),
    ]);
    Report { lines, ok }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::list::List;
    use crate::keyspace::{Entry, StrValue, Value};

    fn limits() -> LoadLimits {
        LoadLimits::default()
    }

    fn file() -> Vec<u8> {
        let mut w = super::super::encode::RdbWriter::new();
        w.aux("redis-ver", b"7.0.15");
        w.select_db(0, 2, 1);
        let mut e = Entry::new(Value::Str(StrValue::from_bytes(b"v")), 0);
        e.expire_at_ms = 500;
        w.entry(b"gone", &e);
        w.entry(
            b"list",
            &Entry::new(Value::List(Box::new(List::from_items(["a", "b"]))), 0),
        );
        w.finish()
    }

    #[test]
    fn a_sound_file_is_summarised() {
        let bytes = file();
        let r = check("dump.rdb", &bytes, limits(), 1000);
        assert!(r.ok);
        assert_eq!(r.lines[0], "[offset 0] Checking RDB file dump.rdb");
        assert!(r.lines[1].ends_with("AUX FIELD redis-ver = '7.0.15'"));
        assert!(r.lines.iter().any(|l| l.ends_with("Selecting DB ID 0")));
        assert!(r.lines.iter().any(|l| l.ends_with("Checksum OK")));
        let tail: Vec<&str> = r.lines.iter().rev().take(4).map(|s| s.as_str()).collect();
        assert_eq!(
            tail,
            [
                "[info] 1 already expired",
                "[info] 1 expires",
                "[info] 2 keys read",
                &format!("[offset {}] \\o/ RDB looks OK! \\o/", bytes.len())[..],
            ]
        );
    }

    #[test]
    fn a_damaged_file_names_the_key_and_type() {
        // An intset whose members are out of order, in a file saved without a checksum.
        let mut bytes = b"REDIS0010\xfe\x00\x0b\x04nums\x0c".to_vec();
        bytes.extend_from_slice(&[2, 0, 0, 0, 2, 0, 0, 0, 9, 0, 3, 0, 0xff]);
        bytes.extend_from_slice(&[0; 8]);
        let r = check("dump.rdb", &bytes, limits(), 1000);
        assert!(!r.ok);
        assert!(r.lines.contains(&"--- RDB ERROR DETECTED ---".to_string()));
        assert!(r
            .lines
            .iter()
            .any(|l| l.ends_with("-> Intset integrity check failed.")));
        assert!(r
            .lines
            .contains(&"[additional info] Reading key 'nums'".to_string()));
        assert!(r
            .lines
            .contains(&"[additional info] Reading type 11 (set-intset)".to_string()));
    }
}

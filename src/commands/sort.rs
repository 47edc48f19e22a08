//! SORT and SORT_RO, after Redis 7.0's `sort.c`: sorting a list, set or sorted set
//! numerically or by bytes (ALPHA), by the element itself or by weights read through a BY
//! pattern (`*` replaced by the element, `->field` reading a hash field), BY without `*`
//! skipping the sort, LIMIT, GET patterns (`#` for the element), and STORE into a list.
//!
//! BY and GET read keys the key specs cannot name, so both commands lock every shard.
//! Tie-breaking follows Redis: numeric ties compare the elements, ALPHA with BY keeps ties in
//! the order glibc's (stable, merge) `qsort` leaves them, and a BY sort limited to a range
//! uses the same partial quicksort (`pqsort`) Redis uses, step for step.

use super::context::ExecCtx;
use super::errors;
use super::pqsort::partial_sort;
use super::spec::{
    acl, flag::*, kflag, BeginSearch, CmdResult, CommandSpec as C, FindKeys, KeySpec, Scope,
};
use crate::config::values::notify;
use crate::keyspace::list::{End, List};
use crate::keyspace::zset::{Item, Limits, ZSet};
use crate::keyspace::{Entry, Value};
use crate::resp::{ErrorReply, Reply};
use bytes::Bytes;
use std::cmp::Ordering;

const CATEGORIES: u32 = acl::SET | acl::SORTEDSET | acl::LIST | acl::DANGEROUS;

/// Redis marks the BY/GET and STORE specs "unknown"; the STORE key is found here by keyword,
/// searching from the end because the last STORE is the one SORT uses.
const SORT_KEYS: &[KeySpec] = &[
    KeySpec::single(1, kflag::RO | kflag::ACCESS),
    KeySpec {
        notes: None,
        flags: kflag::OW | kflag::UPDATE,
        begin: BeginSearch::Keyword {
            keyword: "STORE",
            start_from: -2,
        },
        find: FindKeys::Range {
            last_key: 0,
            step: 1,
            limit: 0,
        },
    },
];
const SORT_RO_KEYS: &[KeySpec] = &[KeySpec::single(1, kflag::RO | kflag::ACCESS)];

pub const COMMANDS: &[C] = &[
    C::new(
        "sort",
        -2,
        WRITE | DENYOOM,
        CATEGORIES,
        SORT_KEYS,
        "generic",
        "1.0.0",
        sort,
    )
    .scope(Scope::All),
    C::new(
        "sort_ro",
        -2,
        // BY and GET patterns name keys the specs cannot find.
        READONLY | MOVABLE_KEYS,
        CATEGORIES,
        SORT_RO_KEYS,
        "generic",
        "7.0.0",
        sort_ro,
    )
    .scope(Scope::All),
];

const SCORE_NOT_DOUBLE: ErrorReply =
    ErrorReply::fixed("ERR One or more scores can't be converted into double");
const BY_IN_CLUSTER: ErrorReply =
    ErrorReply::fixed("ERR BY option of SORT denied in Cluster mode.");
const GET_IN_CLUSTER: ErrorReply =
    ErrorReply::fixed("ERR GET option of SORT denied in Cluster mode.");

fn sort(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut ExecCtx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// The parsed options.
struct Options {
    desc: bool,
    alpha: bool,
    limit_start: i64,
    limit_count: i64,
    by: Option<Bytes>,
    /// BY named a pattern without `*`: no sorting at all.
    dontsort: bool,
    gets: Vec<Bytes>,
    store: Option<Bytes>,
}

/// The bytes of `b` a C string function sees: up to the first NUL.
fn c_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

fn parse_options(ctx: &ExecCtx, args: &[Bytes], readonly: bool) -> Result<Options, ErrorReply> {
    let cluster = ctx.server.config().cluster_enabled;
    let mut o = Options {
        desc: false,
        alpha: false,
        limit_start: 0,
        limit_count: -1,
        by: None,
        dontsort: false,
        gets: Vec::new(),
        store: None,
    };
    let argc = args.len();
    let mut j = 2;
    while j < argc {
        let left = argc - j - 1;
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"asc") {
            o.desc = false;
        } else if a.eq_ignore_ascii_case(b"desc") {
            o.desc = true;
        } else if a.eq_ignore_ascii_case(b"alpha") {
            o.alpha = true;
        } else if a.eq_ignore_ascii_case(b"limit") && left >= 2 {
            o.limit_start = ctx.int_arg(&args[j + 1])?;
            o.limit_count = ctx.int_arg(&args[j + 2])?;
            j += 2;
        } else if !readonly && a.eq_ignore_ascii_case(b"store") && left >= 1 {
            o.store = Some(args[j + 1].clone());
            j += 1;
        } else if a.eq_ignore_ascii_case(b"by") && left >= 1 {
            let pattern = &args[j + 1];
            o.by = Some(pattern.clone());
            if !c_str(pattern).contains(&b'*') {
                o.dontsort = true;
            } else if cluster {
                return Err(BY_IN_CLUSTER);
            }
            j += 1;
        } else if a.eq_ignore_ascii_case(b"get") && left >= 1 {
            if cluster {
                return Err(GET_IN_CLUSTER);
            }
            o.gets.push(args[j + 1].clone());
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// One element to sort, with its weight.
struct Elem {
    obj: Vec<u8>,
    score: f64,
    /// ALPHA with BY: the weight read through the pattern, if found.
    cmp: Option<Vec<u8>>,
}

impl Elem {
    fn new(obj: &[u8]) -> Elem {
        Elem {
            obj: obj.to_vec(),
            score: 0.0,
            cmp: None,
        }
    }
}

/// How elements compare (Redis's `sortCompare`).
#[derive(Clone, Copy)]
struct Order {
    alpha: bool,
    by_pattern: bool,
    store: bool,
    desc: bool,
}

impl Order {
    fn compare(&self, a: &Elem, b: &Elem) -> Ordering {
        let c = if !self.alpha {
            if a.score > b.score {
                Ordering::Greater
            } else if a.score < b.score {
                Ordering::Less
            } else {
                a.obj.cmp(&b.obj)
            }
        } else if self.by_pattern {
            match (&a.cmp, &b.cmp) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => self.text_cmp(x, y),
            }
        } else {
            self.text_cmp(&a.obj, &b.obj)
        };
        if self.desc {
            c.reverse()
        } else {
            c
        }
    }

    /// Binary comparison when storing; `strcoll` (byte order in the C locale, stopping at a
    /// NUL) when replying.
    fn text_cmp(&self, a: &[u8], b: &[u8]) -> Ordering {
        if self.store {
            a.cmp(b)
        } else {
            c_str(a).cmp(c_str(b))
        }
    }
}

fn sort_generic(ctx: &mut ExecCtx, args: &[Bytes], readonly: bool) -> CmdResult {
    let mut o = parse_options(ctx, args, readonly)?;

    // Read the value to sort.
    let kind = match ctx.lookup_read(&args[1]) {
        None => Kind::List,
        Some(Entry {
            value: Value::List(_),
            ..
        }) => Kind::List,
        Some(Entry {
            value: Value::Set(_),
            ..
        }) => Kind::Set,
        Some(Entry {
            value: Value::ZSet(_),
            ..
        }) => Kind::ZSet,
        Some(_) => return Err(errors::WRONGTYPE),
    };
    if o.dontsort && kind == Kind::Set && (o.store.is_some() || ctx.in_script) {
        // A set has no order of its own: sort it so the stored result (or what a script
        // sees) is deterministic.
        o.dontsort = false;
        o.alpha = true;
        o.by = None;
    }
    let vlen = ctx
        .lookup_write(&args[1])
        .map_or(0, |e| match &mut e.value {
            Value::List(l) => l.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => {
                // Redis converts a listpack sorted set to a skiplist for SORT, for good.
                let z = z.open();
                if z.is_listpack() {
                    let items: Vec<Item> = z
                        .iter()
                        .map(|(m, s)| Item {
                            score: s,
                            member: m.into(),
                        })
                        .collect();
                    let none = Limits {
                        entries: 0,
                        value: 0,
                    };
                    *z = ZSet::from_items(items, none);
                }
                z.len()
            }
            _ => 0,
        }) as i64;

    // LIMIT, clamped to the value's length.
    let mut start = o.limit_start.max(0).min(vlen);
    let count = o.limit_count.max(-1).min(vlen);
    let mut end = if count < 0 {
        vlen - 1
    } else {
        start + count - 1
    };
    if start >= vlen {
        start = vlen - 1;
        end = vlen - 2;
    }
    if end >= vlen {
        end = vlen - 1;
    }

    // Load the elements; unsorted lists and sorted sets load only the range, in order.
    let ordered = o.dontsort && kind != Kind::Set;
    let mut vector: Vec<Elem> = Vec::new();
    if let Some(e) = ctx.lookup_write(&args[1]) {
        let take = (end - start + 1).max(0) as usize;
        let skip = start.max(0) as usize;
        match &e.value {
            Value::List(l) if ordered => {
                if o.desc {
                    vector.extend(l.iter().rev().skip(skip).take(take).map(Elem::new));
                } else {
                    vector.extend(l.iter().skip(skip).take(take).map(Elem::new));
                }
            }
            Value::ZSet(z) if ordered => {
                let z = z.view();
                if o.desc {
                    vector.extend(
                        z.iter()
                            .rev()
                            .skip(skip)
                            .take(take)
                            .map(|(m, _)| Elem::new(m)),
                    );
                } else {
                    vector.extend(z.iter().skip(skip).take(take).map(|(m, _)| Elem::new(m)));
                }
            }
            Value::List(l) => vector.extend(l.iter().map(Elem::new)),
            Value::Set(s) => vector.extend(s.iter().map(|m| Elem::new(&m))),
            Value::ZSet(z) => vector.extend(z.view().iter().map(|(m, _)| Elem::new(m))),
            _ => {}
        }
    }
    if ordered && end >= start {
        end -= start;
        start = 0;
    }

    // Weights, then the sort itself.
    let mut not_double = false;
    if !o.dontsort {
        for el in vector.iter_mut() {
            let byval = match &o.by {
                Some(pattern) => match lookup_by_pattern(ctx, pattern, &el.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => el.obj.clone(),
            };
            if o.alpha {
                if o.by.is_some() {
                    el.cmp = Some(byval);
                }
            } else {
                match sort_score(&byval) {
                    Some(s) => el.score = s,
                    None => not_double = true,
                }
            }
        }
        let order = Order {
            alpha: o.alpha,
            by_pattern: o.by.is_some(),
            store: o.store.is_some(),
            desc: o.desc,
        };
        let partial = o.by.is_some() && (start != 0 || end != vlen - 1);
        if partial {
            if end >= start && start >= 0 {
                let cmp = |a: &Elem, b: &Elem| order.compare(a, b) as i32;
                partial_sort(&mut vector, &cmp, start as usize, end as usize);
            }
        } else {
            vector.sort_by(|a, b| order.compare(a, b));
        }
    }
    if not_double {
        return Err(SCORE_NOT_DOUBLE);
    }

    // Output: the range, through the GET patterns if any.
    let range: &[Elem] = if end >= start && start >= 0 {
        &vector[start as usize..=end as usize]
    } else {
        &[]
    };
    let outputlen = if o.gets.is_empty() {
        range.len()
    } else {
        o.gets.len() * range.len()
    };
    let Some(dst) = o.store.clone() else {
        let mut out = Vec::with_capacity(outputlen);
        for el in range {
            if o.gets.is_empty() {
                out.push(Reply::Bulk(Bytes::from(el.obj.clone())));
            }
            for pattern in &o.gets {
                out.push(match lookup_by_pattern(ctx, pattern, &el.obj) {
                    Some(v) => Reply::Bulk(Bytes::from(v)),
                    None => Reply::Null,
                });
            }
        }
        return Ok(Reply::Array(out));
    };
    let mut list = List::new();
    for el in range {
        if o.gets.is_empty() {
            list.push(End::Tail, &el.obj);
        }
        for pattern in &o.gets {
            let v = lookup_by_pattern(ctx, pattern, &el.obj).unwrap_or_default();
            list.push(End::Tail, &v);
        }
    }
    // The key specs find STORE by keyword, which a GET pattern may fool: touch it here too.
    let db = ctx.db();
    if outputlen > 0 {
        ctx.set_key(&dst, Value::List(Box::new(list)), false);
        ctx.dirty(outputlen as u64);
        ctx.touch(db, &dst);
        ctx.notify(notify::LIST, "sortstore", &dst);
    } else if ctx.delete(&dst) {
        ctx.dirty(1);
        ctx.touch(db, &dst);
        ctx.notify(notify::GENERIC, "del", &dst);
    }
    Ok(Reply::Int(outputlen as i64))
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the first `*` is
/// replaced by the element and the key read as a string, or, with `->field` after the `*`,
/// as a hash field. No `*`, a missing key or a wrong type give nothing.
fn lookup_by_pattern(ctx: &mut ExecCtx, pattern: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    if pattern.first() == Some(&b'#') && matches!(pattern.get(1), None | Some(0)) {
        return Some(subst.to_vec());
    }
    let visible = c_str(pattern);
    let star = visible.iter().position(|&c| c == b'*')?;
    let after = &visible[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&f| f + 2 < after.len());
    let (postfix, field) = match arrow {
        Some(f) => (
            &pattern[star + 1..star + 1 + f],
            Some(&pattern[star + 1 + f + 2..]),
        ),
        None => (&pattern[star + 1..], None),
    };
    let mut key = Vec::with_capacity(star + subst.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    let entry = ctx.lookup_read(&key)?;
    match (&entry.value, field) {
        (Value::Hash(h), Some(f)) => h.get(f).map(<[u8]>::to_vec),
        (Value::Str(s), None) => Some(s.to_bytes().into_owned()),
        _ => None,
    }
}

/// A weight as Redis reads it with `strtod`: leading spaces allowed, the rest (up to a NUL)
/// must be consumed; the empty string is 0; NaN and out-of-range values are refused.
fn sort_score(b: &[u8]) -> Option<f64> {
    let b = c_str(b);
    if b.is_empty() {
        return Some(0.0);
    }
    let start = b
        .iter()
        .position(|&c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let t = std::str::from_utf8(&b[start..]).ok()?;
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if t.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if let Some(digits) = lower.strip_prefix("0x") {
        let v = hex_float(digits)?;
        return Some(if t.starts_with('-') { -v } else { v });
    }
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !unsigned
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = t.parse().ok()?;
    if v.is_infinite() {
        return None; // ERANGE: overflow
    }
    let mantissa = unsigned.split(['e', 'E']).next().unwrap_or("");
    let nonzero = mantissa.bytes().any(|c| matches!(c, b'1'..=b'9'));
    if (v == 0.0 && nonzero) || v.is_subnormal() {
        return None; // ERANGE: underflow
    }
    Some(v)
}

/// The digits of a `strtod` hex float after `0x` (lowercase): `h[.h][p[+-]d]`.
fn hex_float(s: &str) -> Option<f64> {
    let (mantissa, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    (v.is_finite() && !v.is_subnormal()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::context::ClientState;
    use crate::commands::spec::key_positions;
    use crate::commands::table::CommandTable;
    use crate::server::state::ServerState;

    const NOW_MS: u64 = 1_700_000_000_000;

    struct Harness {
        server: ServerState,
        client: ClientState,
        dirty: u64,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                server: ServerState::for_tests(),
                client: crate::commands::test_support::test_client(NOW_MS),
                dirty: 0,
            }
        }

        fn run(&mut self, argv: &[&str]) -> CmdResult {
            let args: Vec<Bytes> = argv
                .iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect();
            let cmd = CommandTable::get().find(&args[0]).expect("known command");
            assert!(cmd.spec.arity_ok(args.len()), "{argv:?}: arity");
            let ks = self.server.keyspace.lock_all();
            let mut ctx = ExecCtx::new(NOW_MS * 1000, Some(ks), &mut self.client, &self.server);
            let result = (cmd.spec.handler)(&mut ctx, &args);
            self.dirty += ctx.effects.dirty;
            result
        }

        fn strs(&mut self, argv: &[&str]) -> Vec<Option<String>> {
            match self.run(argv) {
                Ok(Reply::Array(items)) => items
                    .into_iter()
                    .map(|r| match r {
                        Reply::Bulk(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
                        Reply::Null => None,
                        other => panic!("{argv:?}: element {other:?}"),
                    })
                    .collect(),
                other => panic!("{argv:?} replied {other:?}"),
            }
        }

        fn list(&mut self, argv: &[&str]) -> Vec<String> {
            self.strs(argv).into_iter().map(|s| s.unwrap()).collect()
        }

        fn err(&mut self, argv: &[&str]) -> String {
            match self.run(argv) {
                Err(e) => e.text().to_string(),
                Ok(r) => panic!("{argv:?} replied {r:?}, expected an error"),
            }
        }

        fn int(&mut self, argv: &[&str]) -> i64 {
            match self.run(argv) {
                Ok(Reply::Int(i)) => i,
                other => panic!("{argv:?} replied {other:?}"),
            }
        }
    }

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sorts_numbers_and_text() {
        let mut h = Harness::new();
        h.run(&["rpush", "l", "3", "1", "10", "2.5", "-1"]).unwrap();
        assert_eq!(h.list(&["sort", "l"]), v(&["-1", "1", "2.5", "3", "10"]));
        assert_eq!(
            h.list(&["sort", "l", "desc", "limit", "1", "2"]),
            v(&["3", "2.5"])
        );
        assert_eq!(
            h.list(&["sort", "l", "alpha"]),
            v(&["-1", "1", "10", "2.5", "3"])
        );
        assert_eq!(
            h.list(&["sort_ro", "l", "limit", "-3", "2"]),
            v(&["-1", "1"])
        );
        assert_eq!(
            h.list(&["sort", "l", "limit", "9", "2"]),
            Vec::<String>::new()
        );
        h.run(&["rpush", "w", "b", "a"]).unwrap();
        assert_eq!(
            h.err(&["sort", "w"]),
            "ERR One or more scores can't be converted into double"
        );
        assert_eq!(h.list(&["sort", "w", "alpha"]), v(&["a", "b"]));
        // Equal scores compare the elements.
        h.run(&["rpush", "t", "1.0", "1", "01"]).unwrap();
        assert_eq!(h.list(&["sort", "t"]), v(&["01", "1", "1.0"]));
    }

    #[test]
    fn by_and_get_patterns() {
        let mut h = Harness::new();
        h.run(&["rpush", "ids", "1", "2", "3"]).unwrap();
        h.run(&["mset", "w_1", "30", "w_2", "10", "w_3", "20"])
            .unwrap();
        h.run(&["hset", "o_1", "n", "x"]).unwrap();
        h.run(&["hset", "o_3", "n", "z"]).unwrap();
        assert_eq!(h.list(&["sort", "ids", "by", "w_*"]), v(&["2", "3", "1"]));
        assert_eq!(
            h.strs(&["sort", "ids", "by", "w_*", "get", "o_*->n", "get", "#"]),
            vec![
                None,
                Some("2".into()),
                Some("z".into()),
                Some("3".into()),
                Some("x".into()),
                Some("1".into())
            ]
        );
        assert_eq!(
            h.list(&["sort", "ids", "by", "o_*->n", "alpha", "desc"]),
            v(&["3", "1", "2"])
        );
        assert_eq!(h.strs(&["sort", "ids", "get", "fixed"]), vec![None; 3]);
        assert_eq!(
            h.list(&["sort", "ids", "by", "nosort", "desc", "limit", "0", "2"]),
            v(&["3", "2"])
        );
    }

    #[test]
    fn sorted_sets_keep_their_order_without_sorting() {
        let mut h = Harness::new();
        h.run(&["zadd", "z", "1", "c", "2", "b", "3", "a"]).unwrap();
        assert_eq!(h.list(&["sort", "z", "by", "nosort"]), v(&["c", "b", "a"]));
        assert_eq!(
            h.list(&["sort", "z", "by", "nosort", "desc", "limit", "1", "5"]),
            v(&["b", "c"])
        );
        assert_eq!(h.list(&["sort", "z", "alpha"]), v(&["a", "b", "c"]));
    }

    #[test]
    fn store_writes_a_list_or_deletes() {
        let mut h = Harness::new();
        h.run(&["sadd", "s", "b", "c", "a"]).unwrap();
        h.dirty = 0;
        assert_eq!(h.int(&["sort", "s", "by", "nosort", "store", "d"]), 3);
        assert_eq!(h.dirty, 3);
        assert_eq!(h.list(&["lrange", "d", "0", "-1"]), v(&["a", "b", "c"]));
        assert_eq!(h.int(&["sort", "missing", "store", "d"]), 0);
        assert_eq!(h.int(&["exists", "d"]), 0);
        assert_eq!(h.err(&["sort_ro", "s", "store", "d"]), "ERR syntax error");
    }

    #[test]
    fn errors_and_wrong_types() {
        let mut h = Harness::new();
        h.run(&["set", "str", "1"]).unwrap();
        assert!(h.err(&["sort", "str"]).starts_with("WRONGTYPE"));
        assert_eq!(h.err(&["sort", "str", "bad"]), "ERR syntax error");
        assert_eq!(h.err(&["sort", "str", "limit", "0"]), "ERR syntax error");
        assert_eq!(
            h.err(&["sort", "str", "limit", "x", "1"]),
            "ERR value is not an integer or out of range"
        );
        assert_eq!(h.list(&["sort", "nokey"]), Vec::<String>::new());
    }

    #[test]
    fn weights_read_like_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b"  5"), Some(5.0));
        assert_eq!(sort_score(b"5 "), None);
        assert_eq!(sort_score(b" "), None);
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"0x1.8p1"), Some(3.0));
        assert_eq!(sort_score(b"7\0junk"), Some(7.0));
    }

    #[test]
    fn both_commands_lock_every_shard_and_find_the_store_key() {
        let table = CommandTable::get();
        for name in ["sort", "sort_ro"] {
            assert_eq!(table.find(name.as_bytes()).unwrap().spec.scope, Scope::All);
        }
        let sort = table.find(b"sort").unwrap().spec;
        let args: Vec<Bytes> = ["SORT", "k", "BY", "w_*", "STORE", "d"]
            .iter()
            .map(|a| Bytes::from(a.to_string()))
            .collect();
        assert_eq!(key_positions(sort, &args), vec![1, 5]);
        assert!(sort.legacy_range().3, "movable keys");
    }
}

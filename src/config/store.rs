//! Reading and changing the current configuration: how each kind of directive parses its
//! arguments (shared by config files, the command line and CONFIG SET), prints its value
//! (CONFIG GET), and CONFIG GET / CONFIG SET themselves with Redis 7.0's semantics: several
//! patterns or pairs per call, aliases, hidden directives, immutable and protected
//! directives, all-or-nothing SET with its exact error replies. `Config` itself is generated
//! from the table in `table.rs`.

use super::lexer::{memtoull, string2ll, strtoll, yes_no};
use super::special::SetCtx;
use super::table::{
    self, flags, Directive, EnumSpec, Kind, NumFormat, NumSpec, StrSpec, DIRECTIVES,
};
use super::values::{EnableCommand, Value};

pub use super::table::Config;

/// Who is asking for a CONFIG SET, for the checks that depend on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SetContext {
    /// The client connects over loopback or a unix socket (`enable-protected-configs local`).
    pub client_is_local: bool,
    /// The server is loading its dataset (DENY_LOADING directives are refused).
    pub loading: bool,
}

impl Config {
    /// CONFIG GET: every directive matching one of `patterns` (exact names
    /// case-insensitively, globs case-insensitively and never hidden directives), once each,
    /// named as matched: an exact name as the client spelled it, a glob match by its
    /// table name or alias.
    pub fn get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, &'static Directive)> = Vec::new();
        let seen = |out: &Vec<(String, &'static Directive)>, key: &[u8]| {
            out.iter()
                .any(|(k, _)| k.as_bytes().eq_ignore_ascii_case(key))
        };
        for &pattern in patterns {
            if !pattern.iter().any(|c| matches!(c, b'[' | b'*' | b'?')) {
                if let (false, Some((d, _))) = (seen(&out, pattern), table::lookup_runtime(pattern))
                {
                    out.push((String::from_utf8_lossy(pattern).into_owned(), d));
                }
                continue;
            }
            for d in DIRECTIVES
                .iter()
                .filter(|d| d.is_runtime() && !d.has(flags::HIDDEN))
            {
                for name in d.names() {
                    if !seen(&out, name.as_bytes()) && glob_match(pattern, name.as_bytes()) {
                        out.push((name.to_string(), d));
                    }
                }
            }
        }
        out.into_iter()
            .map(|(k, d)| (k, self.value_text(d)))
            .collect()
    }

    /// The CONFIG GET text of one directive.
    pub fn value_text(&self, d: &Directive) -> String {
        match (&d.kind, d.access) {
            (Kind::Special(s), _) => (s.get)(self),
            (kind, Some(access)) => {
                format_value(kind, d.has(flags::MULTI_ARG), &(access.get)(self))
            }
            _ => String::new(),
        }
    }

    /// CONFIG SET with no client context (a remote client, not loading).
    pub fn set(&mut self, pairs: &[(&[u8], &[u8])]) -> Result<Vec<&'static str>, String> {
        self.set_with(pairs, SetContext::default())
    }

    /// CONFIG SET: checks every name first (unknown, immutable, protected, loading,
    /// duplicate; the first problem in argument order wins), then sets every value; on any
    /// failure nothing changes. Returns the primary names of the directives whose value
    /// changed, for the server to apply side effects.
    pub fn set_with(
        &mut self,
        pairs: &[(&[u8], &[u8])],
        ctx: SetContext,
    ) -> Result<Vec<&'static str>, String> {
        let found = self.check_set_names(pairs, ctx)?;
        let mut next = self.clone();
        let mut changed = Vec::new();
        for ((d, shown), (_, value)) in found.iter().zip(pairs) {
            let args = split_set_value(d, value);
            match next.apply_args(d, &args, &mut SetCtx::default()) {
                Ok(true) => changed.push(d.name),
                Ok(false) => {}
                Err(e) => return Err(set_error(shown, &e)),
            }
        }
        *self = next;
        Ok(changed)
    }

    /// Resolves the names of a CONFIG SET; each with the name its errors quote.
    fn check_set_names(
        &self,
        pairs: &[(&[u8], &[u8])],
        ctx: SetContext,
    ) -> Result<Vec<(&'static Directive, &'static str)>, String> {
        let mut found: Vec<(&'static Directive, &'static str)> = Vec::new();
        let mut first_error: Option<String> = None;
        let mut loading_error = false;
        for (name, _) in pairs {
            let shown = String::from_utf8_lossy(name);
            let Some((d, is_alias)) = table::lookup_runtime(name) else {
                first_error.get_or_insert_with(|| {
                    sanitize(&format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{shown}'"
                    ))
                });
                continue;
            };
            if first_error.is_some() {
                continue;
            }
            let protected_allowed = match self.enable_protected_configs {
                EnableCommand::Yes => true,
                EnableCommand::Local => ctx.client_is_local,
                _ => false,
            };
            if d.has(flags::IMMUTABLE) {
                first_error = Some(set_error(&shown, "can't set immutable config"));
            } else if d.has(flags::PROTECTED) && !protected_allowed {
                first_error = Some(set_error(&shown, "can't set protected config"));
            } else if ctx.loading && d.has(flags::DENY_LOADING) {
                loading_error = true;
                first_error = Some(String::new());
            } else if found.iter().any(|(f, _)| std::ptr::eq(*f, d)) {
                first_error = Some(set_error(&shown, "duplicate parameter"));
            }
            let canonical = if is_alias {
                d.aliases
                    .iter()
                    .find(|a| a.as_bytes().eq_ignore_ascii_case(name))
            } else {
                None
            };
            found.push((d, canonical.copied().unwrap_or(d.name)));
        }
        if loading_error {
            return Err("LOADING Redis is loading the dataset in memory".into());
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Applies one directive's arguments (from a file line or a CONFIG SET value); `Ok(true)`
    /// when the value changed.
    pub(crate) fn apply_args(
        &mut self,
        d: &Directive,
        args: &[Vec<u8>],
        ctx: &mut SetCtx,
    ) -> Result<bool, String> {
        let access = match (&d.kind, d.access) {
            (Kind::Special(s), _) => return (s.set)(self, args, ctx),
            (_, Some(access)) => access,
            _ => return Err("Bad directive or wrong number of arguments".into()),
        };
        let multi = d.has(flags::MULTI_ARG);
        if !multi && args.len() != 1 {
            return Err("wrong number of arguments".into());
        }
        let new = parse_value(&d.kind, multi, args)?;
        let new = if d.name == "hz" { clamp_hz(new) } else { new };
        let old = (access.get)(self);
        (access.put)(self, new.clone());
        Ok(old != new || d.has(flags::VOLATILE))
    }
}

/// `hz` is accepted out of range but used (and shown) within 1..=500.
fn clamp_hz(v: Value) -> Value {
    match v {
        Value::Num(n) => Value::Num(n.clamp(1, 500)),
        other => other,
    }
}

/// A CONFIG SET value as arguments: multi-argument directives split on single spaces.
fn split_set_value(d: &Directive, value: &[u8]) -> Vec<Vec<u8>> {
    if !d.has(flags::MULTI_ARG) {
        return vec![value.to_vec()];
    }
    if value.is_empty() {
        return Vec::new();
    }
    value.split(|&c| c == b' ').map(|s| s.to_vec()).collect()
}

fn set_error(name: &str, reason: &str) -> String {
    sanitize(&format!(
        "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
    ))
}

/// Error replies cannot carry line breaks.
fn sanitize(s: &str) -> String {
    s.trim_end_matches(['\r', '\n']).replace(['\r', '\n'], " ")
}

/// Parses a standard directive's arguments into its value.
pub(crate) fn parse_value(kind: &Kind, multi: bool, args: &[Vec<u8>]) -> Result<Value, String> {
    match kind {
        Kind::Bool { check, .. } => {
            let v = yes_no(&args[0]).ok_or("argument must be 'yes' or 'no'")?;
            check.map_or(Ok(()), |f| f(v))?;
            Ok(Value::Bool(v))
        }
        Kind::Num(spec) => parse_num(spec, &args[0]).map(Value::Num),
        Kind::Enum(spec) => parse_enum(spec, multi, args).map(Value::Enum),
        Kind::Str(spec) => {
            spec.check.map_or(Ok(()), |f| f(&args[0]))?;
            Ok(Value::Str(args[0].clone()))
        }
        Kind::Special(_) | Kind::FileOnly(_) => {
            Err("Bad directive or wrong number of arguments".into())
        }
    }
}

/// `numericParseString` then `numericBoundaryCheck`.
fn parse_num(spec: &NumSpec, s: &[u8]) -> Result<i128, String> {
    let parsed: Option<i64> = match spec.format {
        NumFormat::Memory => memtoull(s).map(|v| v as i64),
        NumFormat::MemoryOrPercent => memtoull(s).map(|v| v as i64).or_else(|| parse_percent(s)),
        NumFormat::Octal => Some(strtoll(s, 8))
            .filter(|r| r.all_consumed && !r.overflow)
            .map(|r| r.value),
        NumFormat::Plain => string2ll(s),
    };
    let ll = parsed.ok_or_else(|| {
        match spec.format {
            NumFormat::MemoryOrPercent => "argument must be a memory or percent value",
            NumFormat::Memory => "argument must be a memory value",
            NumFormat::Octal => "argument couldn't be parsed as an octal number",
            NumFormat::Plain => "argument couldn't be parsed into an integer",
        }
        .to_string()
    })?;
    check_bounds(spec, ll)
}

/// `N%` with N >= 0, stored as -N.
fn parse_percent(s: &[u8]) -> Option<i64> {
    let digits = s.strip_suffix(b"%").filter(|d| !d.is_empty())?;
    string2ll(digits).filter(|n| *n >= 0).map(|n| -n)
}

fn check_bounds(spec: &NumSpec, ll: i64) -> Result<i128, String> {
    if spec.unsigned {
        let (v, lo, hi) = (ll as u64, spec.min as u64, spec.max as u64);
        if v < lo || v > hi {
            return Err(if spec.format == NumFormat::Octal {
                format!("argument must be between {lo:o} and {hi:o} inclusive")
            } else {
                format!("argument must be between {lo} and {hi} inclusive")
            });
        }
        return Ok(i128::from(v));
    }
    let v = i128::from(ll);
    if spec.format == NumFormat::MemoryOrPercent && v < 0 {
        if v < spec.min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -spec.min
            ));
        }
    } else if v < spec.min || v > spec.max {
        return Err(format!(
            "argument must be between {} and {} inclusive",
            spec.min, spec.max
        ));
    }
    Ok(v)
}

/// `configEnumGetValue`: one name, or for multi-argument enums several names OR-ed.
fn parse_enum(spec: &EnumSpec, multi: bool, args: &[Vec<u8>]) -> Result<u32, String> {
    let lookup = |a: &[u8]| {
        spec.names
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(a))
            .map(|(_, v)| *v)
    };
    let value = if args.is_empty() || (!multi && args.len() != 1) {
        None
    } else {
        args.iter()
            .try_fold(0u32, |acc, a| lookup(a).map(|v| acc | v))
    };
    let value = value.ok_or_else(|| {
        let names: Vec<&str> = spec.names.iter().map(|(n, _)| *n).collect();
        let mut msg = format!(
            "argument(s) must be one of the following: {}",
            names.join(", ")
        );
        msg.truncate(255);
        msg
    })?;
    spec.check.map_or(Ok(()), |f| f(value))?;
    Ok(value)
}

/// The CONFIG GET text of a standard value.
pub(crate) fn format_value(kind: &Kind, multi: bool, v: &Value) -> String {
    match (kind, v) {
        (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        (Kind::Num(spec), Value::Num(n)) => format_num(spec, *n),
        (Kind::Enum(spec), Value::Enum(bits)) => enum_names(spec, multi, *bits),
        (_, Value::Str(s)) => String::from_utf8_lossy(s).into_owned(),
        _ => String::new(),
    }
}

fn format_num(spec: &NumSpec, n: i128) -> String {
    match spec.format {
        NumFormat::MemoryOrPercent if n < 0 => format!("{}%", -n),
        NumFormat::Memory | NumFormat::MemoryOrPercent => (n as u64).to_string(),
        NumFormat::Octal => format!("{n:o}"),
        NumFormat::Plain => n.to_string(),
    }
}

/// `configEnumGetName`: the first exact match, else (bit sets) the names covering the bits.
pub(crate) fn enum_names(spec: &EnumSpec, multi: bool, bits: u32) -> String {
    if let Some((name, _)) = spec.names.iter().find(|(_, v)| *v == bits) {
        return name.to_string();
    }
    let mut unmatched = bits;
    let mut names = Vec::new();
    for (name, v) in spec.names {
        if multi && *v != 0 && *v == unmatched & v {
            names.push(*name);
            unmatched &= !v;
        }
    }
    if names.is_empty() || unmatched != 0 {
        return "unknown".into();
    }
    names.join(" ")
}

/// Whether a standard value equals the row's default (REWRITE omits defaults).
pub(crate) fn is_default(kind: &Kind, v: &Value) -> bool {
    match (kind, v) {
        (Kind::Str(StrSpec { default, .. }), Value::Str(s)) => {
            default.is_some_and(|d| d.as_bytes() == s.as_slice())
        }
        _ => table::default_value(kind) == *v,
    }
}

/// Redis's `stringmatchlen` with case folding: `*`, `?`, `[...]` (ranges, `^`), `\`.
pub(crate) fn glob_match(pattern: &[u8], string: &[u8]) -> bool {
    glob(pattern, string, 0)
}

fn glob(mut p: &[u8], mut s: &[u8], depth: usize) -> bool {
    if depth > 1000 {
        return false;
    }
    while let Some(&pc) = p.first() {
        match pc {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                return (0..=s.len()).any(|i| glob(&p[1..], &s[i..], depth + 1));
            }
            b'?' if !s.is_empty() => s = &s[1..],
            b'[' if !s.is_empty() => {
                let (matched, rest) = match_class(&p[1..], s[0]);
                if !matched {
                    return false;
                }
                s = &s[1..];
                p = rest;
                continue;
            }
            b'\\' if p.len() >= 2 => {
                if s.first().map(|c| c.eq_ignore_ascii_case(&p[1])) != Some(true) {
                    return false;
                }
                p = &p[1..];
                s = &s[1..];
            }
            _ => {
                if s.first().map(|c| c.eq_ignore_ascii_case(&pc)) != Some(true) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
    }
    s.is_empty()
}

/// Matches `c` against a `[...]` class whose body starts at `p`; returns the pattern after
/// the closing bracket.
fn match_class(mut p: &[u8], c: u8) -> (bool, &[u8]) {
    let c = c.to_ascii_lowercase();
    let not = p.first() == Some(&b'^');
    if not {
        p = &p[1..];
    }
    let mut matched = false;
    loop {
        match p {
            [] => break,
            [b']', rest @ ..] => {
                p = rest;
                break;
            }
            [b'\\', x, rest @ ..] => {
                matched |= x.to_ascii_lowercase() == c;
                p = rest;
            }
            [a, b'-', b, rest @ ..] if *b != b']' => {
                let (lo, hi) = (
                    a.to_ascii_lowercase().min(b.to_ascii_lowercase()),
                    a.to_ascii_lowercase().max(b.to_ascii_lowercase()),
                );
                matched |= (lo..=hi).contains(&c);
                p = rest;
            }
            [x, rest @ ..] => {
                matched |= x.to_ascii_lowercase() == c;
                p = rest;
            }
        }
    }
    (matched != not, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &Config, patterns: &[&str]) -> Vec<(String, String)> {
        let p: Vec<&[u8]> = patterns.iter().map(|s| s.as_bytes()).collect();
        c.get(&p)
    }

    fn set(c: &mut Config, pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
        let p: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
            .collect();
        c.set(&p)
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn every_default_round_trips_through_set_and_get() {
        let mut c = Config::default();
        for d in DIRECTIVES
            .iter()
            .filter(|d| d.is_runtime() && !d.has(flags::IMMUTABLE) && d.name != "dir")
        {
            let shown = c.value_text(d);
            let before = c.clone();
            let r = c.set_with(
                &[(d.name.as_bytes(), shown.as_bytes())],
                SetContext {
                    client_is_local: true,
                    loading: false,
                },
            );
            let r = match r {
                Err(e) if e.contains("protected") => continue,
                r => r,
            };
            assert!(r.is_ok(), "{}: {:?} for {:?}", d.name, r, shown);
            assert_eq!(
                c, before,
                "{} changed when set to its own value {shown:?}",
                d.name
            );
        }
    }

    #[test]
    fn get_returns_redis_renderings() {
        let c = Config::default();
        assert_eq!(
            get(&c, &["save"]),
            vec![pair("save", "3600 1 300 100 60 10000")]
        );
        assert_eq!(
            get(&c, &["client-output-buffer-limit"]),
            vec![pair(
                "client-output-buffer-limit",
                "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
            )]
        );
        assert_eq!(
            get(&c, &["maxmemory-policy", "appendonly"]),
            vec![
                pair("maxmemory-policy", "noeviction"),
                pair("appendonly", "no")
            ]
        );
        assert_eq!(
            get(&c, &["unixsocketperm", "bind"]),
            vec![pair("unixsocketperm", "0"), pair("bind", "* -::*")]
        );
        assert_eq!(
            get(
                &c,
                &["shutdown-on-sigint", "latency-tracking-info-percentiles"]
            )[1]
            .1,
            "50 99 99.9"
        );
    }

    #[test]
    fn get_exact_names_keep_the_clients_spelling_and_appear_once() {
        let c = Config::default();
        assert_eq!(get(&c, &["PORT"]), vec![pair("PORT", "6379")]);
        assert_eq!(
            get(&c, &["port", "PORT", "po*"]),
            vec![pair("port", "6379")]
        );
        assert_eq!(get(&c, &["PORT", "po*"]), vec![pair("PORT", "6379")]);
        assert_eq!(
            get(&c, &["slaveof", "replicaof"]),
            vec![pair("slaveof", ""), pair("replicaof", "")]
        );
        assert!(get(&c, &["include", "nope"]).is_empty());
    }

    #[test]
    fn get_globs_match_names_and_aliases_but_not_hidden_ones() {
        let c = Config::default();
        let mut keys: Vec<String> = get(&c, &["*max-*-entries*"])
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "hash-max-listpack-entries",
                "hash-max-ziplist-entries",
                "set-max-intset-entries",
                "zset-max-listpack-entries",
                "zset-max-ziplist-entries"
            ]
        );
        assert!(get(&c, &["use-exit*"]).is_empty());
        assert_eq!(
            get(&c, &["use-exit-on-panic"]),
            vec![pair("use-exit-on-panic", "no")]
        );
        assert_eq!(get(&c, &["POR?"]), vec![pair("port", "6379")]);
        assert_eq!(get(&c, &["*"]).len(), 193);
    }

    #[test]
    fn glob_classes_and_escapes() {
        assert!(glob_match(b"h[a-z]", b"hz"));
        assert!(glob_match(b"h[^a]", b"hz"));
        assert!(!glob_match(b"h[^z]", b"hz"));
        assert!(glob_match(b"a\\*", b"a*"));
        assert!(!glob_match(b"a\\*", b"ab"));
        assert!(glob_match(b"*-*-*", b"a-b-c"));
    }

    #[test]
    fn set_changes_typed_fields_and_reports_changed_names() {
        let mut c = Config::default();
        assert_eq!(
            set(
                &mut c,
                &[
                    ("maxmemory", "1gb"),
                    ("MAXMEMORY-policy", "allkeys-lru"),
                    ("hz", "10")
                ]
            ),
            Ok(vec!["maxmemory", "maxmemory-policy"])
        );
        assert_eq!(c.maxmemory, 1 << 30);
        assert_eq!(
            c.maxmemory_policy,
            super::super::values::MaxmemoryPolicy::AllkeysLru
        );
        assert_eq!(
            set(&mut c, &[("slave-read-only", "no")]),
            Ok(vec!["replica-read-only"])
        );
        assert!(!c.replica_read_only);
        assert_eq!(set(&mut c, &[("save", "")]), Ok(vec!["save"]));
        assert!(c.save.is_empty());
        assert_eq!(
            set(&mut c, &[("requirepass", "s3cret")]),
            Ok(vec!["requirepass"])
        );
        assert_eq!(c.requirepass.as_deref(), Some(&b"s3cret"[..]));
        assert_eq!(set(&mut c, &[("requirepass", "")]), Ok(vec!["requirepass"]));
        assert_eq!(c.requirepass, None);
    }

    #[test]
    fn set_is_all_or_nothing() {
        let mut c = Config::default();
        let err = set(&mut c, &[("maxmemory", "10mb"), ("port", "70000")]).unwrap_err();
        assert_eq!(err, "ERR CONFIG SET failed (possibly related to argument 'port') - argument must be between 0 and 65535 inclusive");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn set_error_texts_match_redis() {
        let mut c = Config::default();
        let cases = [
            (vec![("maxmemory", "1x")], "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"),
            (vec![("appendfsync", "foo")], "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no"),
            (vec![("DAEMONIZE", "yes")], "ERR CONFIG SET failed (possibly related to argument 'DAEMONIZE') - can't set immutable config"),
            (vec![("dir", "/tmp")], "ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config"),
            (vec![("nosuch", "1")], "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
            (vec![("port", "1"), ("PORT", "2")], "ERR CONFIG SET failed (possibly related to argument 'PORT') - duplicate parameter"),
            (vec![("port", "1"), ("nosuch", "1"), ("daemonize", "yes")], "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"),
            (vec![("daemonize", "yes"), ("nosuch", "1")], "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"),
            (vec![("slave-priority", "x")], "ERR CONFIG SET failed (possibly related to argument 'slave-priority') - argument couldn't be parsed into an integer"),
            (vec![("timeout", "01")], "ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer"),
            (vec![("save", "100 10  200 20")], "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"),
            (vec![("maxmemory-clients", "200%")], "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"),
            (vec![("maxmemory-clients", "-5")], "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - argument must be a memory or percent value"),
            (vec![("repl-backlog-size", "99999999999999999999")], "ERR CONFIG SET failed (possibly related to argument 'repl-backlog-size') - argument must be between 1 and 9223372036854775807 inclusive"),
            (vec![("proto-max-bulk-len", "1k")], "ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive"),
            (vec![("maxclients", "0")], "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive"),
            (vec![("shutdown-on-sigint", "save nosave")], "ERR CONFIG SET failed (possibly related to argument 'shutdown-on-sigint') - shutdown options SAVE and NOSAVE can't be used simultaneously"),
            (vec![("shutdown-on-sigint", "")], "ERR CONFIG SET failed (possibly related to argument 'shutdown-on-sigint') - argument(s) must be one of the following: default, save, nosave, now, force"),
            (vec![("appendonly", "maybe")], "ERR CONFIG SET failed (possibly related to argument 'appendonly') - argument must be 'yes' or 'no'"),
        ];
        for (pairs, want) in cases {
            assert_eq!(set(&mut c, &pairs).unwrap_err(), want);
            assert_eq!(c, Config::default());
        }
    }

    #[test]
    fn set_protected_and_loading_depend_on_context() {
        let mut c = Config {
            enable_protected_configs: EnableCommand::Local,
            ..Config::default()
        };
        let pairs: [(&[u8], &[u8]); 1] = [(b"dbfilename", b"x.rdb")];
        assert!(c
            .set(&pairs)
            .unwrap_err()
            .contains("can't set protected config"));
        assert_eq!(
            c.set_with(
                &pairs,
                SetContext {
                    client_is_local: true,
                    loading: false
                }
            ),
            Ok(vec!["dbfilename"])
        );
        let loading = SetContext {
            client_is_local: false,
            loading: true,
        };
        assert_eq!(
            c.set_with(&[(b"appendonly", b"yes")], loading).unwrap_err(),
            "LOADING Redis is loading the dataset in memory"
        );
    }

    #[test]
    fn set_memory_and_percent_values_read_back_like_redis() {
        let mut c = Config::default();
        set(&mut c, &[("maxmemory", "99999999999999999999999")]).unwrap();
        assert_eq!(get(&c, &["maxmemory"])[0].1, "18446744073709551615");
        set(&mut c, &[("maxmemory-clients", "10%")]).unwrap();
        assert_eq!(
            (
                c.maxmemory_clients,
                get(&c, &["maxmemory-clients"])[0].1.as_str()
            ),
            (-10, "10%")
        );
        set(&mut c, &[("hz", "1000")]).unwrap();
        assert_eq!(c.hz, 500);
        set(&mut c, &[("shutdown-on-sigint", "nosave now")]).unwrap();
        assert_eq!(get(&c, &["shutdown-on-sigint"])[0].1, "nosave now");
        set(&mut c, &[("oom-score-adj", "relative")]).unwrap();
        assert_eq!(get(&c, &["oom-score-adj"])[0].1, "yes");
        set(&mut c, &[("notify-keyspace-events", "KEA")]).unwrap();
        assert_eq!(
            (
                c.notify_keyspace_events.canonical.as_str(),
                get(&c, &["notify-keyspace-events"])[0].1.as_str()
            ),
            ("AKE", "AKE")
        );
    }

    #[test]
    fn setting_the_same_value_is_not_a_change() {
        let mut c = Config::default();
        assert_eq!(
            set(&mut c, &[("port", "6379"), ("tls-cert-file", "")]),
            Ok(vec!["tls-cert-file"])
        );
    }
}

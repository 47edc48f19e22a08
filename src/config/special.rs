//! Directives with their own grammar (config.c's "special configs": `dir`, `save`,
//! `client-output-buffer-limit`, `oom-score-adj-values`, `notify-keyspace-events`, `bind`,
//! `replicaof`, `latency-tracking-info-percentiles`) and the validators some standard
//! directives run before accepting a value. Error texts are Redis 7.0.15's.

use super::lexer::{memtoull, repr, strtoll};
use super::table::Config;
use super::values::{KeyspaceEvents, ReplicaOf, ShutdownFlags};

/// What a special directive's `set` may need to know about where it is called from.
#[derive(Debug, Clone, Default)]
pub struct SetCtx {
    /// Parsing a config file (not CONFIG SET).
    pub reading_file: bool,
    /// A `save` line was already read, so the defaults are already gone.
    pub save_loaded: bool,
}

/// One line a directive contributes to CONFIG REWRITE, and whether it must be written even
/// when the old file does not mention the directive (its value is not the default).
pub type RewriteLine = (String, bool);

/// Applies a special directive's arguments; `Ok(true)` if something changed.
pub type SpecialSet = fn(&mut Config, &[Vec<u8>], &mut SetCtx) -> Result<bool, String>;

/// A special directive's parser and printers.
pub struct Special {
    pub set: SpecialSet,
    /// The CONFIG GET text.
    pub get: fn(&Config) -> String,
    /// The REWRITE lines; none means "drop the directive's old lines".
    pub rewrite: fn(&Config, &str) -> Vec<RewriteLine>,
}

impl std::fmt::Debug for Special {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Special")
    }
}

const WRONG_ARGS: &str = "wrong number of arguments";

fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// `rewriteConfigFormatMemory`: the largest exact unit among gb, mb, kb.
pub fn format_memory(bytes: i64) -> String {
    const KB: i64 = 1024;
    for (unit, name) in [(KB * KB * KB, "gb"), (KB * KB, "mb"), (KB, "kb")] {
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{name}", bytes / unit);
        }
    }
    bytes.to_string()
}

pub static DIR: Special = Special {
    set: set_dir,
    get: |c| c.dir.clone(),
    rewrite: rewrite_dir,
};

/// Redis changes the working directory right away; here the path is stored and the server
/// changes directory (and keeps `dir` absolute) when it applies the change.
fn set_dir(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    match args {
        [path] if path.is_empty() => Err("No such file or directory".into()),
        [path] => {
            c.dir = text(path);
            Ok(true)
        }
        _ => Err(WRONG_ARGS.into()),
    }
}

fn rewrite_dir(c: &Config, name: &str) -> Vec<RewriteLine> {
    if c.dir.is_empty() {
        return Vec::new();
    }
    vec![(format!("{name} {}", repr(c.dir.as_bytes())), true)]
}

pub static SAVE: Special = Special {
    set: set_save,
    get: get_save,
    rewrite: rewrite_save,
};

/// `save <seconds> <changes> ...`; a single empty argument clears the list. While reading a
/// file only the first `save` line drops the defaults, so several lines accumulate.
fn set_save(c: &mut Config, args: &[Vec<u8>], ctx: &mut SetCtx) -> Result<bool, String> {
    let args: &[Vec<u8>] = if args.len() == 1 && args[0].is_empty() {
        &[]
    } else {
        args
    };
    let invalid = || "Invalid save parameters".to_string();
    if args.len() % 2 == 1 {
        return Err(invalid());
    }
    let mut pairs = Vec::with_capacity(args.len() / 2);
    for pair in args.chunks(2) {
        let (seconds, changes) = (strtoll(&pair[0], 10), strtoll(&pair[1], 10));
        if !seconds.all_consumed || !changes.all_consumed || seconds.value < 1 || changes.value < 0
        {
            return Err(invalid());
        }
        // Redis keeps `changes` in an int.
        pairs.push((seconds.value as u64, u64::from(changes.value as i32 as u32)));
    }
    if !ctx.reading_file || !ctx.save_loaded {
        c.save.clear();
        ctx.save_loaded |= ctx.reading_file;
    }
    c.save.extend(pairs);
    Ok(true)
}

fn get_save(c: &Config) -> String {
    c.save
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn rewrite_save(c: &Config, name: &str) -> Vec<RewriteLine> {
    if c.save.is_empty() {
        return vec![(format!("{name} \"\""), true)];
    }
    c.save
        .iter()
        .map(|(s, n)| (format!("{name} {s} {n}"), true))
        .collect()
}

pub static CLIENT_OUTPUT_BUFFER_LIMIT: Special = Special {
    set: set_obuf_limits,
    get: get_obuf_limits,
    rewrite: rewrite_obuf_limits,
};

/// `<class> <hard> <soft> <soft seconds>`, repeated; all classes are checked before any
/// is changed.
fn set_obuf_limits(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    if !args.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut parsed = Vec::new();
    for group in args.chunks(4) {
        let class = match group[0].to_ascii_lowercase().as_slice() {
            b"normal" => 0,
            b"slave" | b"replica" => 1,
            b"pubsub" => 2,
            _ => {
                return Err("Invalid client class specified in buffer limit configuration.".into())
            }
        };
        let seconds = strtoll(&group[3], 10);
        let soft_seconds = seconds.value as i32;
        match (memtoull(&group[1]), memtoull(&group[2])) {
            (Some(hard), Some(soft)) if soft_seconds >= 0 && seconds.all_consumed => {
                parsed.push((class, hard, soft, i64::from(soft_seconds)))
            }
            _ => {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .into(),
                )
            }
        }
    }
    for (class, hard, soft, seconds) in parsed {
        let limit = c.client_output_buffer_limit.class_mut(class);
        limit.hard_limit_bytes = hard;
        limit.soft_limit_bytes = soft;
        limit.soft_limit_seconds = seconds;
    }
    Ok(true)
}

fn get_obuf_limits(c: &Config) -> String {
    let classes = c.client_output_buffer_limit.classes();
    let parts: Vec<String> = classes
        .iter()
        .map(|(name, l)| {
            format!(
                "{name} {} {} {}",
                l.hard_limit_bytes, l.soft_limit_bytes, l.soft_limit_seconds
            )
        })
        .collect();
    parts.join(" ")
}

fn rewrite_obuf_limits(c: &Config, name: &str) -> Vec<RewriteLine> {
    let defaults = super::values::ClientOutputBufferLimits::default().classes();
    let current = c.client_output_buffer_limit.classes();
    let mut lines = Vec::new();
    for ((class, l), (_, d)) in current.iter().zip(defaults.iter()) {
        let class = if *class == "slave" { "replica" } else { class };
        let hard = format_memory(l.hard_limit_bytes as i64);
        let soft = format_memory(l.soft_limit_bytes as i64);
        let line = format!("{name} {class} {hard} {soft} {}", l.soft_limit_seconds);
        lines.push((line, l != d));
    }
    lines
}

pub static OOM_SCORE_ADJ_VALUES: Special = Special {
    set: set_oom_values,
    get: |c| c.oom_score_adj_values.map(|v| v.to_string()).join(" "),
    rewrite: rewrite_oom_values,
};

/// Three values (primary, replica, background child) in -2000..=2000.
fn set_oom_values(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    if args.len() != 3 {
        return Err(WRONG_ARGS.into());
    }
    let mut values = [0i32; 3];
    for (slot, arg) in values.iter_mut().zip(args) {
        let v = strtoll(arg, 10);
        if !v.all_consumed || !(-2000..=2000).contains(&v.value) {
            return Err(
                "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into(),
            );
        }
        *slot = v.value as i32;
    }
    let changed = values != c.oom_score_adj_values;
    c.oom_score_adj_values = values;
    Ok(changed)
}

fn rewrite_oom_values(c: &Config, name: &str) -> Vec<RewriteLine> {
    let force = c.oom_score_adj_values != [0, 200, 800];
    vec![(format!("{name} {}", (OOM_SCORE_ADJ_VALUES.get)(c)), force)]
}

pub static NOTIFY_KEYSPACE_EVENTS: Special = Special {
    set: set_notify,
    get: |c| c.notify_keyspace_events.canonical.clone(),
    rewrite: |c, name| {
        let flags = &c.notify_keyspace_events;
        vec![(
            format!("{name} {}", repr(flags.canonical.as_bytes())),
            flags.flags != 0,
        )]
    },
};

fn set_notify(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    let [classes] = args else {
        return Err(WRONG_ARGS.into());
    };
    let events = KeyspaceEvents::parse(classes)
        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())?;
    c.notify_keyspace_events = events;
    Ok(true)
}

pub static BIND: Special = Special {
    set: set_bind,
    get: |c| c.bind.join(" "),
    rewrite: rewrite_bind,
};

/// Up to 16 addresses; a single empty argument means none.
fn set_bind(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    if args.len() > 16 {
        return Err("Too many bind addresses specified.".into());
    }
    let args: &[Vec<u8>] = if args.len() == 1 && args[0].is_empty() {
        &[]
    } else {
        args
    };
    c.bind = args.iter().map(|a| text(a)).collect();
    Ok(true)
}

fn rewrite_bind(c: &Config, name: &str) -> Vec<RewriteLine> {
    if c.bind == ["*", "-::*"] {
        return Vec::new();
    }
    let addresses = if c.bind.is_empty() {
        "\"\"".to_string()
    } else {
        c.bind.join(" ")
    };
    vec![(format!("{name} {addresses}"), true)]
}

pub static REPLICAOF: Special = Special {
    set: set_replicaof,
    get: |c| {
        c.replicaof
            .as_ref()
            .map(|r| format!("{} {}", r.host, r.port))
            .unwrap_or_default()
    },
    rewrite: |c, name| match (&c.replicaof, c.cluster_enabled) {
        (Some(r), false) => vec![(format!("{name} {} {}", r.host, r.port), true)],
        _ => Vec::new(),
    },
};

/// `<host> <port>`, or `no one`.
fn set_replicaof(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    let [host, port] = args else {
        return Err(WRONG_ARGS.into());
    };
    c.replicaof = None;
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        return Ok(true);
    }
    let p = strtoll(port, 10);
    if !p.all_consumed || !(0..=65535).contains(&p.value) {
        return Err("Invalid master port".into());
    }
    c.replicaof = Some(ReplicaOf {
        host: text(host),
        port: p.value as u16,
    });
    Ok(true)
}

pub static LATENCY_TRACKING_INFO_PERCENTILES: Special = Special {
    set: set_percentiles,
    get: |c| {
        c.latency_tracking_info_percentiles
            .iter()
            .map(|p| format_percentile(*p))
            .collect::<Vec<_>>()
            .join(" ")
    },
    rewrite: |c, name| {
        let values = &c.latency_tracking_info_percentiles;
        let line = if values.is_empty() {
            format!("{name} \"\"")
        } else {
            values.iter().fold(name.to_string(), |acc, p| {
                format!("{acc} {}", format_percentile(*p))
            })
        };
        vec![(line, true)]
    },
};

fn set_percentiles(c: &mut Config, args: &[Vec<u8>], _: &mut SetCtx) -> Result<bool, String> {
    let args: &[Vec<u8>] = if args.len() == 1 && args[0].is_empty() {
        &[]
    } else {
        args
    };
    c.latency_tracking_info_percentiles.clear();
    let mut values = Vec::with_capacity(args.len());
    for arg in args {
        let p = parse_double(arg).ok_or("Invalid latency-tracking-info-percentiles parameters")?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        values.push(p);
    }
    c.latency_tracking_info_percentiles = values;
    Ok(true)
}

/// `string2d`: the whole string is a number; no leading blank, no NaN.
fn parse_double(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| !v.is_nan())
}

/// `%f` with trailing zeros (and a bare point) trimmed.
fn format_percentile(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub fn check_active_defrag(enable: bool) -> Result<(), &'static str> {
    if enable {
        return Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a \
                    modified Jemalloc like the one shipped by default with the Redis source distribution");
    }
    Ok(())
}

pub fn check_shutdown_flags(bits: u32) -> Result<(), &'static str> {
    if bits & ShutdownFlags::SAVE != 0 && bits & ShutdownFlags::NOSAVE != 0 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously");
    }
    Ok(())
}

fn is_base_name(s: &[u8]) -> bool {
    !s.contains(&b'/') && !s.contains(&b'\\')
}

pub fn check_dbfilename(v: &[u8]) -> Result<(), String> {
    if !is_base_name(v) {
        return Err("dbfilename can't be a path, just a filename".into());
    }
    Ok(())
}

pub fn check_appendfilename(v: &[u8]) -> Result<(), String> {
    if v.is_empty() {
        return Err("appendfilename can't be empty".into());
    }
    if !is_base_name(v) {
        return Err("appendfilename can't be a path, just a filename".into());
    }
    Ok(())
}

pub fn check_appenddirname(v: &[u8]) -> Result<(), String> {
    if v.is_empty() {
        return Err("appenddirname can't be empty".into());
    }
    if !is_base_name(v) {
        return Err("appenddirname can't be a path, just a dirname".into());
    }
    Ok(())
}

/// `cluster-announce-client-ipv4` (Valkey 8): a dotted-quad IPv4 address, or empty.
pub fn check_ipv4(v: &[u8]) -> Result<(), String> {
    if v.is_empty() {
        return Ok(()); // unset
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<core::net::Ipv4Addr>().ok())
        .map(|_| ())
        .ok_or_else(|| "Invalid IPv4 address".to_string())
}

/// `cluster-announce-client-ipv6` (Valkey 8): an IPv6 address, or empty.
pub fn check_ipv6(v: &[u8]) -> Result<(), String> {
    if v.is_empty() {
        return Ok(()); // unset
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<core::net::Ipv6Addr>().ok())
        .map(|_| ())
        .ok_or_else(|| "Invalid IPv6 address".to_string())
}

pub fn check_hostname(v: &[u8]) -> Result<(), String> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters".into());
    }
    if !v
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
    }
    Ok(())
}

/// The template must expand (known `{variables}`, balanced braces) to something that is not
/// blank. Variables that may expand to nothing at runtime are taken as empty.
pub fn check_proc_title_template(v: &[u8]) -> Result<(), String> {
    let invalid = || "template format is invalid or contains unknown variables".to_string();
    let expanded = expand_template(v).ok_or_else(invalid)?;
    if expanded.iter().all(|&c| c == b' ') {
        return Err(invalid());
    }
    Ok(())
}

fn expand_template(mut t: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(open) = t.iter().position(|&c| c == b'{') {
        out.extend_from_slice(&t[..open]);
        let rest = &t[open + 1..];
        match rest.first() {
            None => return None,
            Some(b'{') => {
                out.push(b'{');
                t = &rest[1..];
                continue;
            }
            Some(_) => {}
        }
        let close = rest.iter().position(|&c| c == b'}')?;
        match &rest[..close] {
            b"title" | b"server-mode" | b"unixsocket" => {}
            b"listen-addr" | b"config-file" | b"port" | b"tls-port" => out.push(b'x'),
            _ => return None,
        }
        t = &rest[close + 1..];
    }
    out.extend_from_slice(t);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn memory_is_rewritten_with_the_largest_exact_unit() {
        assert_eq!(format_memory(0), "0");
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(256 << 20), "256mb");
        assert_eq!(format_memory(3 << 10), "3kb");
        assert_eq!(format_memory(1000), "1000");
    }

    #[test]
    fn save_lines_in_a_file_accumulate_but_config_set_replaces() {
        let mut c = Config::default();
        let mut file = SetCtx {
            reading_file: true,
            save_loaded: false,
        };
        set_save(&mut c, &args(&["900", "1"]), &mut file).unwrap();
        set_save(&mut c, &args(&["60", "5"]), &mut file).unwrap();
        assert_eq!(c.save, vec![(900, 1), (60, 5)]);
        set_save(&mut c, &args(&["10", "2"]), &mut SetCtx::default()).unwrap();
        assert_eq!(c.save, vec![(10, 2)]);
        set_save(&mut c, &args(&[""]), &mut SetCtx::default()).unwrap();
        assert!(c.save.is_empty());
        for bad in [&["1"][..], &["0", "1"], &["1", "-1"], &["1", "x"]] {
            assert_eq!(
                set_save(&mut c, &args(bad), &mut SetCtx::default()),
                Err("Invalid save parameters".into())
            );
        }
    }

    #[test]
    fn obuf_limits_accept_units_and_check_all_classes_first() {
        let mut c = Config::default();
        set_obuf_limits(
            &mut c,
            &args(&["replica", "1mb", "2", "3"]),
            &mut SetCtx::default(),
        )
        .unwrap();
        assert_eq!(
            get_obuf_limits(&c),
            "normal 0 0 0 slave 1048576 2 3 pubsub 33554432 8388608 60"
        );
        let before = c.clone();
        let err = set_obuf_limits(
            &mut c,
            &args(&["normal", "1", "1", "1", "master", "1", "1", "1"]),
            &mut SetCtx::default(),
        );
        assert_eq!(
            err,
            Err("Invalid client class specified in buffer limit configuration.".into())
        );
        assert_eq!(c, before);
    }

    #[test]
    fn percentiles_print_like_percent_f_trimmed() {
        assert_eq!(format_percentile(99.9), "99.9");
        assert_eq!(format_percentile(50.0), "50");
        assert_eq!(format_percentile(50.5), "50.5");
    }

    #[test]
    fn proc_title_template_needs_known_variables_and_visible_text() {
        assert!(check_proc_title_template(b"{title} {listen-addr} {server-mode}").is_ok());
        assert!(check_proc_title_template(b"{title}").is_err());
        assert!(check_proc_title_template(b"{nope}").is_err());
        assert!(check_proc_title_template(b"x {").is_err());
        assert!(check_proc_title_template(b"{{literal").is_ok());
    }

    #[test]
    fn client_ip_checks() {
        assert!(check_ipv4(b"10.0.0.5").is_ok());
        assert_eq!(check_ipv4(b"::1").unwrap_err(), "Invalid IPv4 address");
        assert!(check_ipv6(b"2001:db8::5").is_ok());
        assert_eq!(check_ipv6(b"10.0.0.5").unwrap_err(), "Invalid IPv6 address");
    }

    #[test]
    fn hostname_check() {
        assert!(check_hostname(b"node-1.example").is_ok());
        assert!(check_hostname(b"bad_host").is_err());
        assert!(check_hostname(&[b'a'; 256]).is_err());
    }
}

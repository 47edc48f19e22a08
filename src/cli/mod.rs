//! `ferrodis-cli`: one-shot commands in the manner of `redis-cli` — `-h -p -a --user -n -3
//! --raw`, the command from the remaining arguments, the reply printed the way redis-cli
//! prints it (formatted on a terminal, raw otherwise) — and the cluster manager
//! (`cluster create|check|info|start`, see `cluster.rs` and `start.rs`).

pub mod cluster;
pub mod conn;
pub mod nodes;
pub mod plan;
pub mod start;

use crate::resp::Reply;
use conn::Conn;
use std::io::{IsTerminal, Write};
use std::net::TcpStream;

#[derive(Debug, Default)]
struct Options {
    host: String,
    port: u16,
    password: Option<String>,
    user: Option<String>,
    db: Option<String>,
    resp3: bool,
    raw: Option<bool>,
    /// `-c`: follow -MOVED and -ASK redirections.
    cluster_mode: bool,
    no_auth_warning: bool,
    /// `--cluster <subcommand> ...`: the cluster manager, as in redis-cli.
    cluster_manager: bool,
    command: Vec<String>,
}

fn usage() -> i32 {
    eprintln!(
        "Usage: ferrodis-cli [OPTIONS] [cmd [arg [arg ...]]]\n  \
         -h <hostname>  Server hostname (default: 127.0.0.1).\n  \
         -p <port>      Server port (default: 6379).\n  \
         -a <password>  Password to use when connecting to the server.\n  \
         --user <name>  Used to send ACL style 'AUTH username pass'. Needs -a.\n  \
         --no-auth-warning  Don't show warning message when using password on command line.\n  \
         -n <db>        Database number.\n  \
         -3             Start session in RESP3 protocol mode.\n  \
         --raw          Use raw formatting for replies.\n  \
         --no-raw       Force formatted output even when not on a terminal.\n\n\
         Cluster manager (also as --cluster <command>):\n  \
         cluster create host:port ... [--replicas N] [--yes]\n  \
         cluster check host:port\n  \
         cluster info host:port\n  \
         cluster start [--masters N] [--replicas N] [--port P] [--dir DIR] [--bin PATH]\n\n\
         check-rdb <file>  Verify an RDB file and summarise it (like redis-check-rdb)."
    );
    1
}

/// `ferrodis-cli check-rdb FILE`: the report on standard output; exit status 0 when the file
/// is sound, 1 when it is not or cannot be read.
fn check_rdb(args: &[String]) -> i32 {
    let [path] = args else {
        eprintln!("Usage: ferrodis-cli check-rdb <rdb-file-name>");
        return 1;
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            println!("[offset 0] Checking RDB file {path}");
            println!("--- RDB ERROR DETECTED ---");
            println!("[offset 0] Cannot open file {path}: {e}");
            return 1;
        }
    };
    let limits = crate::persistence::rdb::decode::LoadLimits::default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let report = crate::persistence::rdb::check::check(path, &bytes, limits, now_ms);
    for line in &report.lines {
        println!("{line}");
    }
    i32::from(!report.ok)
}

fn parse(args: Vec<String>) -> Result<Options, String> {
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: 6379,
        ..Default::default()
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("missing value for {name}"));
        match a.as_str() {
            "-h" => o.host = value("-h")?,
            "-p" => {
                o.port = value("-p")?
                    .parse()
                    .map_err(|_| "invalid port".to_string())?
            }
            "-a" | "--pass" => o.password = Some(value("-a")?),
            "--user" => o.user = Some(value("--user")?),
            "-n" => o.db = Some(value("-n")?),
            "-3" => o.resp3 = true,
            "-c" => o.cluster_mode = true,
            "--no-auth-warning" => o.no_auth_warning = true,
            "-2" => o.resp3 = false,
            "--raw" => o.raw = Some(true),
            "--no-raw" => o.raw = Some(false),
            "--cluster" => o.cluster_manager = true,
            "--help" => return Err(String::new()),
            _ => {
                o.command.push(a);
                o.command.extend(it.by_ref());
            }
        }
    }
    Ok(o)
}

/// redis-cli's formatted output (what it prints on a terminal).
fn format_reply(r: &Reply, indent: usize, out: &mut String) {
    match r {
        Reply::Simple(s) => out.push_str(s),
        Reply::Error(e) => out.push_str(&format!("(error) {}", e.text())),
        Reply::Int(i) => out.push_str(&format!("(integer) {i}")),
        Reply::Bulk(b) | Reply::Verbatim(_, b) => {
            let mut v = Vec::new();
            crate::server::monitor::repr(b, &mut v);
            out.push_str(&String::from_utf8_lossy(&v));
        }
        Reply::Null | Reply::NullArray => out.push_str("(nil)"),
        Reply::Double(d) => out.push_str(&format!(
            "(double) {}",
            crate::resp::reply::format_double_g17(*d)
        )),
        Reply::DoubleText(t) => out.push_str(&format!("(double) {t}")),
        Reply::Bool(b) => out.push_str(if *b { "(true)" } else { "(false)" }),
        Reply::BigNumber(n) => out.push_str(&format!("(big number) {n}")),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Multi(items) => {
            if items.is_empty() {
                out.push_str(if matches!(r, Reply::Set(_)) {
                    "(empty set)"
                } else {
                    "(empty array)"
                });
            }
            let width = items.len().to_string().len();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str(&format!("{:>width$}) ", i + 1));
                format_reply(item, indent + width + 2, out);
            }
        }
        Reply::Map(pairs) => {
            if pairs.is_empty() {
                out.push_str("(empty hash)");
            }
            let width = pairs.len().to_string().len();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str(&format!("{:>width$}# ", i + 1));
                format_reply(k, indent + width + 2, out);
                out.push_str(" => ");
                format_reply(v, indent + width + 2, out);
            }
        }
        Reply::NoReply | Reply::Attribute(_) => {}
    }
}

/// redis-cli's raw output (what it prints to a pipe).
fn raw_reply(r: &Reply, out: &mut Vec<u8>) {
    match r {
        Reply::Simple(s) => out.extend_from_slice(s.as_bytes()),
        // redis-cli ends an error with its own newline, even inside an array.
        Reply::Error(e) => {
            out.extend_from_slice(e.text().as_bytes());
            out.push(b'\n');
        }
        Reply::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Reply::Bulk(b) | Reply::Verbatim(_, b) => out.extend_from_slice(b),
        Reply::Null | Reply::NullArray | Reply::NoReply | Reply::Attribute(_) => {}
        Reply::Double(d) => {
            out.extend_from_slice(crate::resp::reply::format_double_g17(*d).as_bytes())
        }
        Reply::DoubleText(t) => out.extend_from_slice(t.as_bytes()),
        Reply::Bool(b) => out.extend_from_slice(if *b { b"1" } else { b"0" }),
        Reply::BigNumber(n) => out.extend_from_slice(n.as_bytes()),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Multi(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                raw_reply(item, out);
            }
        }
        Reply::Map(pairs) => {
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                raw_reply(k, out);
                out.push(b'\n');
                raw_reply(v, out);
            }
        }
    }
}

/// Redirections `-c` follows for one command before printing the last one as the reply.
const MAX_REDIRECTS: usize = 16;

/// `-MOVED <slot> <host>:<port>` or `-ASK ...`: whether it is ASK, and the address (the port
/// after the last `:`, so a raw IPv6 address works).
fn redirection(reply: &Reply) -> Option<(bool, String, u16)> {
    let Reply::Error(e) = reply else {
        return None;
    };
    let text = e.text();
    let (ask, rest) = if let Some(r) = text.strip_prefix("MOVED ") {
        (false, r)
    } else if let Some(r) = text.strip_prefix("ASK ") {
        (true, r)
    } else {
        return None;
    };
    let (_slot, addr) = rest.split_once(' ')?;
    let (host, port) = addr.rsplit_once(':')?;
    Some((ask, host.to_string(), port.trim().parse().ok()?))
}

/// A connection to `host:port` with the session set up as the options ask (AUTH, HELLO 3,
/// SELECT); on failure the message is printed and the exit code returned.
fn connect(opts: &Options, host: &str, port: u16) -> Result<Conn, i32> {
    let stream = match TcpStream::connect((host, port)) {
        Ok(s) => s,
        Err(e) => {
            // The OS text alone, as redis-cli prints it ("Connection refused").
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or_default();
            eprintln!("Could not connect to Redis at {host}:{port}: {text}");
            return Err(1);
        }
    };
    let mut conn = Conn::new(stream);
    let mut setup: Vec<Vec<String>> = Vec::new();
    if let Some(p) = &opts.password {
        let user = opts.user.clone().unwrap_or_else(|| "default".into());
        setup.push(vec!["AUTH".into(), user, p.clone()]);
    }
    if opts.resp3 {
        setup.push(vec!["HELLO".into(), "3".into()]);
    }
    if let Some(db) = &opts.db {
        setup.push(vec!["SELECT".into(), db.clone()]);
    }
    for cmd in &setup {
        match conn.call(cmd) {
            // Like redis-cli: reported, and the command is sent anyway.
            Ok(Reply::Error(e)) if cmd[0] == "AUTH" => eprintln!("AUTH failed: {}", e.text()),
            Ok(Reply::Error(e)) => {
                eprintln!("{}", e.text());
                return Err(1);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("{e}");
                return Err(1);
            }
        }
    }
    Ok(conn)
}

pub fn main(args: Vec<String>) -> i32 {
    if args.first().is_some_and(|a| a == "check-rdb") {
        return check_rdb(&args[1..]);
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            return usage();
        }
    };
    if opts.cluster_manager || cluster::is_manager_command(&opts.command) {
        let words = if opts.cluster_manager {
            &opts.command[..]
        } else {
            &opts.command[1..]
        };
        let auth = cluster::Auth {
            user: opts.user.clone(),
            password: opts.password.clone(),
        };
        return cluster::main(words.to_vec(), auth);
    }
    if opts.command.is_empty() {
        eprintln!("ferrodis-cli: interactive mode is not available yet; pass a command.");
        return usage();
    }
    if opts.password.is_some() && !opts.no_auth_warning {
        eprintln!(
            "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe."
        );
    }
    let mut host = opts.host.clone();
    let mut port = opts.port;
    let mut asking = false;
    let mut hops = 0;
    let reply = loop {
        let mut conn = match connect(&opts, &host, port) {
            Ok(c) => c,
            Err(code) => return code,
        };
        if asking {
            match conn.call(&["ASKING"]) {
                Ok(Reply::Error(e)) => {
                    eprintln!("ASKING failed: {}", e.text());
                    return 1;
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            }
        }
        let reply = match conn.call(&opts.command) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        match redirection(&reply) {
            Some((ask, to_host, to_port)) if opts.cluster_mode && hops < MAX_REDIRECTS => {
                hops += 1;
                asking = ask;
                host = to_host;
                port = to_port;
            }
            _ => break reply,
        }
    };
    let raw = opts.raw.unwrap_or(!std::io::stdout().is_terminal());
    let mut out = Vec::new();
    if raw {
        raw_reply(&reply, &mut out);
    } else {
        let mut s = String::new();
        format_reply(&reply, 0, &mut s);
        out = s.into_bytes();
    }
    out.push(b'\n');
    let _ = std::io::stdout().write_all(&out);
    i32::from(reply.is_error())
}

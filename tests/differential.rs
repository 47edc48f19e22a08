//! Differential compatibility check: the same command scripts go to ferrodis and to
//! `redis-server` 7.0.15, and the raw replies are compared byte for byte.
//!
//! Scripts live in `tests/differential/scripts/*.txt` (format in
//! `tests/differential/README.md`). Each script runs on a fresh connection to each server,
//! after a `FLUSHALL`; every command is sent as a RESP multibulk, exactly one complete reply is
//! read back from each side (RESP2 or RESP3, nested aggregates, attributes and pushes included)
//! and the two byte strings are compared, after the normalisation a script line asks for
//! (sorting, integers, info field names). Only values that legitimately differ between two
//! servers (ids, times, memory figures, hash ordering) are ever normalised.
//!
//! Environment:
//! - `DIFF_ONLY=<substring>`: run only the scripts whose file name contains it.
//! - `DIFF_REPORT=<path>`: write the full report (every mismatch, unabridged) there.
//! - `DIFF_AGAINST_REDIS=1`: run redis-server on both sides; the self-test of the harness and
//!   of the scripts' determinism, which must report zero mismatches.
//! - `DIFF_DUMP=<path>`: write every command with the reference server's raw reply there
//!   (handy when writing a script).
//! - `DIFF_WRITE_GAPS=<path>`: write the current mismatches in known-gaps format there.
//! - `REDIS_SERVER=<path>`: the reference binary, instead of looking in PATH.
//!
//! `tests/differential/known-gaps.txt` lists `script:line` entries that are expected to
//! mismatch for now; they are reported but do not fail the test.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use support::find_redis_server;

const START_DEADLINE: Duration = Duration::from_secs(10);
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Replies longer than this are abridged on the console; the report file has them whole.
const CONSOLE_REPLY_LIMIT: usize = 800;

// ---------------------------------------------------------------------------------------------
// Script format
// ---------------------------------------------------------------------------------------------

/// How a reply is rewritten before comparison, for values that legitimately differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Normalize {
    /// An array or set whose element order is unspecified: sort its elements.
    Sort,
    /// A flat array (RESP2) or map (RESP3) of key/value pairs in unspecified order.
    SortPairs,
    /// Every integer in the reply may take any value.
    Int,
    /// Any non-null bulk string is accepted.
    BulkNonEmpty,
    /// INFO text: compare section headers and field names only, not values.
    Info,
}

impl Normalize {
    fn parse(word: &str) -> Option<Normalize> {
        Some(match word {
            "sort" => Normalize::Sort,
            "sort-pairs" => Normalize::SortPairs,
            "int" => Normalize::Int,
            "bulk-nonempty" => Normalize::BulkNonEmpty,
            "info" => Normalize::Info,
            _ => return None,
        })
    }
}

enum Action {
    /// `@resp2` / `@resp3`: send `HELLO <version>`; only the reply's type is compared.
    Hello(u8),
    Command {
        args: Vec<Vec<u8>>,
        compare: bool,
        normalize: Vec<Normalize>,
        /// How many replies the command answers with (SUBSCRIBE to several channels,
        /// messages published to the client itself); compared as one byte string.
        frames: usize,
    },
}

struct Step {
    line: usize,
    text: String,
    action: Action,
}

struct Script {
    /// File name without `.txt`; known-gaps entries and reports use it.
    name: String,
    steps: Vec<Step>,
}

fn parse_script(name: &str, source: &str) -> Result<Script, String> {
    let mut steps = Vec::new();
    let mut compare = true;
    let mut normalize = Vec::new();
    let mut frames = 1;
    for (index, raw_line) in source.lines().enumerate() {
        let line = index + 1;
        let text = raw_line.trim();
        let at = |msg: String| format!("{name}.txt:{line}: {msg}");
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(directive) = text.strip_prefix('@') {
            let mut words = directive.split_whitespace();
            match words.next() {
                Some("resp2") => steps.push(hello_step(line, text, 2)),
                Some("resp3") => steps.push(hello_step(line, text, 3)),
                Some("skip-compare") => compare = false,
                Some("frames") => {
                    frames = words
                        .next()
                        .and_then(|w| w.parse().ok())
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| at("@frames needs a count of at least 1".into()))?;
                }
                Some("normalize") => {
                    let mut any = false;
                    for word in words {
                        let kind = Normalize::parse(word)
                            .ok_or_else(|| at(format!("unknown normalize kind {word:?}")))?;
                        normalize.push(kind);
                        any = true;
                    }
                    if !any {
                        return Err(at("@normalize needs a kind".into()));
                    }
                }
                _ => return Err(at(format!("unknown directive {text:?}"))),
            }
            continue;
        }
        let args = split_args(text).map_err(at)?;
        steps.push(Step {
            line,
            text: text.to_string(),
            action: Action::Command {
                args,
                compare,
                normalize: std::mem::take(&mut normalize),
                frames,
            },
        });
        compare = true;
        frames = 1;
    }
    if !compare || !normalize.is_empty() || frames != 1 {
        return Err(format!("{name}.txt: trailing directive without a command"));
    }
    Ok(Script {
        name: name.to_string(),
        steps,
    })
}

fn hello_step(line: usize, text: &str, version: u8) -> Step {
    Step {
        line,
        text: text.to_string(),
        action: Action::Hello(version),
    }
}

/// Splits a script line into arguments the way redis-cli does: whitespace separates,
/// `"..."` understands `\n \r \t \b \a \xHH \" \\`, `'...'` understands `\'`, and a closing
/// quote must end the argument.
fn split_args(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut args = Vec::new();
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        while i < b.len() && !b[i].is_ascii_whitespace() {
            match b[i] {
                b'"' => i = read_double_quoted(b, i + 1, &mut arg)?,
                b'\'' => i = read_single_quoted(b, i + 1, &mut arg)?,
                c => {
                    arg.push(c);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
}

fn read_double_quoted(b: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match b.get(i) {
            None => return Err("unbalanced double quote".into()),
            Some(b'"') => return closing_quote(b, i + 1),
            Some(b'\\') => {
                let hex = b.get(i + 2..i + 4).and_then(|h| {
                    let h = std::str::from_utf8(h).ok()?;
                    u8::from_str_radix(h, 16).ok()
                });
                match (b.get(i + 1), hex) {
                    (Some(b'x'), Some(byte)) => {
                        arg.push(byte);
                        i += 4;
                    }
                    (Some(&c), _) => {
                        arg.push(match c {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                        i += 2;
                    }
                    (None, _) => return Err("unbalanced double quote".into()),
                }
            }
            Some(&c) => {
                arg.push(c);
                i += 1;
            }
        }
    }
}

fn read_single_quoted(b: &[u8], mut i: usize, arg: &mut Vec<u8>) -> Result<usize, String> {
    loop {
        match b.get(i) {
            None => return Err("unbalanced single quote".into()),
            Some(b'\'') => return closing_quote(b, i + 1),
            Some(b'\\') if b.get(i + 1) == Some(&b'\'') => {
                arg.push(b'\'');
                i += 2;
            }
            Some(&c) => {
                arg.push(c);
                i += 1;
            }
        }
    }
}

fn closing_quote(b: &[u8], after: usize) -> Result<usize, String> {
    match b.get(after) {
        None => Ok(after),
        Some(c) if c.is_ascii_whitespace() => Ok(after),
        Some(_) => Err("closing quote must be followed by a space".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// RESP replies: framing one raw reply, and the tree used for normalisation
// ---------------------------------------------------------------------------------------------

/// One parsed reply. `head` is the text after the type byte on the first line; `payload` is
/// the content of a bulk / verbatim / blob error; `raw` the exact bytes on the wire.
struct Value {
    kind: u8,
    head: Vec<u8>,
    payload: Vec<u8>,
    raw: Vec<u8>,
    children: Vec<Value>,
}

/// Parses one complete reply starting at `pos`. `Ok(None)` means more bytes are needed.
fn parse_reply(buf: &[u8], pos: usize) -> Result<Option<Value>, String> {
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(line_end) = find_crlf(buf, pos + 1) else {
        return Ok(None);
    };
    let head = buf[pos + 1..line_end].to_vec();
    let mut end = line_end + 2;
    let mut payload = Vec::new();
    let mut children = Vec::new();
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
        b'$' | b'!' | b'=' => {
            let len = parse_len(&head)?;
            if len >= 0 {
                let len = len as usize;
                if buf.len() < end + len + 2 {
                    return Ok(None);
                }
                if &buf[end + len..end + len + 2] != b"\r\n" {
                    return Err("bulk string not terminated by CRLF".into());
                }
                payload = buf[end..end + len].to_vec();
                end += len + 2;
            } else if !(kind == b'$' && len == -1) {
                return Err(format!("bad length {len} for type {:?}", kind as char));
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = parse_len(&head)?;
            if len < 0 && !(kind == b'*' && len == -1) {
                return Err(format!("bad length {len} for type {:?}", kind as char));
            }
            let mut count = len.max(0) as usize;
            if kind == b'%' || kind == b'|' {
                count *= 2;
            }
            // An attribute map is followed by the reply it annotates.
            if kind == b'|' {
                count += 1;
            }
            for _ in 0..count {
                match parse_reply(buf, end)? {
                    None => return Ok(None),
                    Some(child) => {
                        end += child.raw.len();
                        children.push(child);
                    }
                }
            }
        }
        other => return Err(format!("unknown RESP type byte {:?}", other as char)),
    }
    Ok(Some(Value {
        kind,
        head,
        payload,
        raw: buf[pos..end].to_vec(),
        children,
    }))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let tail = buf.get(from..)?;
    tail.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

fn parse_len(head: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(head)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&n| (-1..=1 << 32).contains(&n))
        .ok_or_else(|| format!("bad length line {}", escape(head)))
}

fn normalize(raw: &[u8], kinds: &[Normalize]) -> Vec<u8> {
    let mut bytes = raw.to_vec();
    for &kind in kinds {
        bytes = match parse_reply(&bytes, 0) {
            Ok(Some(value)) => apply(&value, kind),
            _ => bytes,
        };
    }
    bytes
}

fn apply(v: &Value, kind: Normalize) -> Vec<u8> {
    match kind {
        Normalize::Sort => match v.kind {
            b'*' | b'~' | b'>' => rebuild(v, sorted(v.children.iter().map(|c| c.raw.clone()))),
            b'%' => rebuild(v, sorted_pairs(&v.children)),
            _ => v.raw.clone(),
        },
        Normalize::SortPairs => match v.kind {
            b'*' | b'%' => rebuild(v, sorted_pairs(&v.children)),
            _ => v.raw.clone(),
        },
        Normalize::Int => map_leaves(v, &|leaf| match leaf.kind {
            b':' => Some(b":<int>\r\n".to_vec()),
            _ => None,
        }),
        Normalize::BulkNonEmpty => match v.kind {
            b'$' | b'=' if v.head != b"-1" => format!("{}<bulk>\r\n", v.kind as char).into_bytes(),
            _ => v.raw.clone(),
        },
        Normalize::Info => match v.kind {
            b'$' | b'=' if v.head != b"-1" => info_field_names(v),
            _ => v.raw.clone(),
        },
    }
}

fn sorted(items: impl Iterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut items: Vec<Vec<u8>> = items.collect();
    items.sort();
    items.concat()
}

fn sorted_pairs(children: &[Value]) -> Vec<u8> {
    sorted(
        children
            .chunks(2)
            .map(|pair| pair.iter().flat_map(|c| c.raw.iter().copied()).collect()),
    )
}

/// The aggregate's own first line followed by `body`.
fn rebuild(v: &Value, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![v.kind];
    out.extend_from_slice(&v.head);
    out.extend_from_slice(b"\r\n");
    out.extend(body);
    out
}

fn map_leaves(v: &Value, f: &dyn Fn(&Value) -> Option<Vec<u8>>) -> Vec<u8> {
    if v.children.is_empty() {
        return f(v).unwrap_or_else(|| v.raw.clone());
    }
    rebuild(
        v,
        v.children.iter().flat_map(|c| map_leaves(c, f)).collect(),
    )
}

/// INFO text reduced to its section headers and field names, in order.
fn info_field_names(v: &Value) -> Vec<u8> {
    let (format, text) = match v.kind {
        b'=' if v.payload.len() >= 4 => v.payload.split_at(4),
        _ => (&b""[..], &v.payload[..]),
    };
    let mut out = format!("{}<info>", v.kind as char).into_bytes();
    out.extend_from_slice(format);
    out.push(b'\n');
    for line in text.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let name = match line.iter().position(|&c| c == b':') {
            Some(colon) if !line.starts_with(b"#") => &line[..colon],
            _ => line,
        };
        out.extend_from_slice(name);
        out.push(b'\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Connections and servers
// ---------------------------------------------------------------------------------------------

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    fn call(&mut self, args: &[Vec<u8>]) -> io::Result<Vec<u8>> {
        self.call_frames(args, 1)
    }

    /// Sends one command and reads `frames` replies, returned as one byte string.
    fn call_frames(&mut self, args: &[Vec<u8>], frames: usize) -> io::Result<Vec<u8>> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            req.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            req.extend_from_slice(arg);
            req.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&req)?;
        let mut all = Vec::new();
        for _ in 0..frames {
            all.extend(self.read_reply()?);
        }
        Ok(all)
    }

    /// Reads exactly one complete reply and returns its raw bytes; bytes after it stay
    /// buffered for the next call.
    fn read_reply(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match parse_reply(&self.buf, 0) {
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                Ok(Some(value)) => {
                    self.buf.drain(..value.raw.len());
                    return Ok(value.raw);
                }
                Ok(None) => {}
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by the server",
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Conn {
    fn no_extra_bytes(&mut self, reply: Vec<u8>) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            return Ok(reply);
        }
        let extra = std::mem::take(&mut self.buf);
        Err(io::Error::other(format!(
            "reply {} followed by unexpected bytes {}",
            escape(&reply),
            escape(&extra)
        )))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// A server process, killed and reaped when dropped (also while unwinding from a panic).
struct ServerGuard {
    label: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerGuard {
    fn start(label: &str, binary: &Path, port: u16, dir: &Path) -> ServerGuard {
        fs::create_dir_all(dir).expect("create server dir");
        let log = dir.join("server.log");
        let out = fs::File::create(&log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        let port_arg = port.to_string();
        let child = Command::new(binary)
            .args(["--port", &port_arg, "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} ({}): {e}", binary.display()));
        let mut guard = ServerGuard {
            label: label.to_string(),
            port,
            child,
            log,
        };
        guard.wait_for_ping();
        guard
    }

    fn wait_for_ping(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited during startup ({status}); log:\n{}",
                    self.label,
                    self.log_tail()
                );
            }
            let pong = Conn::connect(self.port).and_then(|mut c| c.call(&[b"PING".to_vec()]));
            if matches!(pong.as_deref(), Ok(b"+PONG\r\n")) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not answer PING on port {} within {:?} (last: {:?}); log:\n{}",
                    self.label,
                    self.port,
                    START_DEADLINE,
                    pong.map(|r| escape(&r)),
                    self.log_tail()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path =
            std::env::temp_dir().join(format!("ferrodis-differential-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let ports = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    drop((a, b));
    ports
}

// ---------------------------------------------------------------------------------------------
// Running scripts and comparing
// ---------------------------------------------------------------------------------------------

struct Mismatch {
    key: String,
    command: String,
    normalized: Vec<Normalize>,
    left: Vec<u8>,
    right: Vec<u8>,
}

#[derive(Default)]
struct Outcome {
    compared: usize,
    mismatches: Vec<Mismatch>,
    /// `script:line` of every compared line whose replies matched.
    matched: BTreeSet<String>,
    dump: String,
}

struct Pair<'a> {
    left: (&'a str, u16),
    right: (&'a str, u16),
}

fn run_script(script: &Script, pair: &Pair, out: &mut Outcome) {
    let connect = |port| {
        let mut conn = Conn::connect(port)?;
        let reply = conn.call(&[b"FLUSHALL".to_vec()])?;
        match reply.as_slice() {
            b"+OK\r\n" => Ok(conn),
            other => Err(io::Error::other(format!(
                "FLUSHALL replied {}",
                escape(other)
            ))),
        }
    };
    let (mut left, mut right) = match (connect(pair.left.1), connect(pair.right.1)) {
        (Ok(l), Ok(r)) => (l, r),
        (l, r) => {
            out.mismatches.push(Mismatch {
                key: format!("{}:0", script.name),
                command: "<connect + FLUSHALL>".into(),
                normalized: vec![],
                left: describe(l.map(|_| b"+OK\r\n".to_vec())),
                right: describe(r.map(|_| b"+OK\r\n".to_vec())),
            });
            return;
        }
    };
    for step in &script.steps {
        let key = format!("{}:{}", script.name, step.line);
        let (args, compare, kinds, frames) = match &step.action {
            Action::Hello(v) => (
                vec![b"HELLO".to_vec(), v.to_string().into_bytes()],
                true,
                &[][..],
                1,
            ),
            Action::Command {
                args,
                compare,
                normalize,
                frames,
            } => (args.clone(), *compare, &normalize[..], *frames),
        };
        // Bytes already received beyond the one reply mean the server answered more than
        // once: every later reply on this connection would be shifted.
        let l = left
            .call_frames(&args, frames)
            .and_then(|reply| left.no_extra_bytes(reply));
        let r = right
            .call_frames(&args, frames)
            .and_then(|reply| right.no_extra_bytes(reply));
        let broken = l.is_err() || r.is_err();
        let (l, r) = (describe(l), describe(r));
        let _ = writeln!(out.dump, "{key}\t{}\n\t{}", step.text, escape(&l));
        let same = match step.action {
            // The HELLO reply carries ids and versions: only its type must agree.
            Action::Hello(_) => l.first() == r.first(),
            Action::Command { .. } => !compare || normalize(&l, kinds) == normalize(&r, kinds),
        };
        if compare {
            out.compared += 1;
        }
        if same && !broken {
            out.matched.insert(key);
        } else {
            out.mismatches.push(Mismatch {
                key,
                command: step.text.clone(),
                normalized: kinds.to_vec(),
                left: l,
                right: r,
            });
        }
        if broken {
            // The connection state is unknown now: the rest of this script cannot be trusted.
            break;
        }
    }
}

fn describe(reply: io::Result<Vec<u8>>) -> Vec<u8> {
    reply.unwrap_or_else(|e| format!("<no reply: {e}>").into_bytes())
}

fn escape(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in bytes {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('"');
    s
}

fn abridge(s: String, limit: Option<usize>) -> String {
    match limit {
        Some(limit) if s.len() > limit => {
            let cut = (0..=limit)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}... ({} chars)", &s[..cut], s.len())
        }
        _ => s,
    }
}

fn format_mismatch(m: &Mismatch, labels: (&str, &str), limit: Option<usize>) -> String {
    let mut s = format!("{}  {}", m.key, m.command);
    if !m.normalized.is_empty() {
        let _ = write!(s, "   (normalized: {:?})", m.normalized);
    }
    let width = labels.0.len().max(labels.1.len()) + 1;
    let _ = write!(
        s,
        "\n    {:<width$} {}\n    {:<width$} {}",
        format!("{}:", labels.0),
        abridge(escape(&m.left), limit),
        format!("{}:", labels.1),
        abridge(escape(&m.right), limit),
    );
    s
}

fn read_known_gaps(path: &Path) -> BTreeSet<String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.replacen(".txt:", ":", 1))
        .collect()
}

fn load_scripts(dir: &Path, only: Option<&str>) -> Vec<Script> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("read_dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter(|p| only.is_none_or(|o| p.file_name().unwrap().to_string_lossy().contains(o)))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let source = fs::read_to_string(path).expect("read script");
            parse_script(&name, &source).unwrap_or_else(|e| panic!("script error: {e}"))
        })
        .collect()
}

/// Writes straight to stderr so the line shows even when the test harness captures output.
fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

#[test]
fn replies_match_redis_server_byte_for_byte() {
    let Some(redis) = find_redis_server() else {
        say("differential: SKIPPED: redis-server not installed (install redis-server 7.0.15)");
        return;
    };
    let against_redis = std::env::var("DIFF_AGAINST_REDIS").is_ok_and(|v| v == "1");
    let only = std::env::var("DIFF_ONLY").ok().filter(|s| !s.is_empty());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let scripts = load_scripts(&root.join("scripts"), only.as_deref());
    let known_gaps = if against_redis {
        BTreeSet::new()
    } else {
        read_known_gaps(&root.join("known-gaps.txt"))
    };

    let tmp = TempDir::new();
    let (left_port, right_port) = free_ports();
    let (right_label, right_binary) = if against_redis {
        ("redis#2", redis.clone())
    } else {
        ("ferrodis", PathBuf::from(env!("CARGO_BIN_EXE_ferrodis")))
    };
    let left = ServerGuard::start("redis", &redis, left_port, &tmp.0.join("redis"));
    let right = ServerGuard::start(right_label, &right_binary, right_port, &tmp.0.join("right"));
    let pair = Pair {
        left: ("redis", left.port),
        right: (right_label, right.port),
    };

    let mut outcome = Outcome::default();
    for script in &scripts {
        run_script(script, &pair, &mut outcome);
    }
    drop((left, right));

    let labels = (pair.left.0, pair.right.0);
    let (gaps, failures): (Vec<&Mismatch>, Vec<&Mismatch>) = outcome
        .mismatches
        .iter()
        .partition(|m| known_gaps.contains(&m.key));
    let fixed: Vec<&String> = known_gaps.intersection(&outcome.matched).collect();
    let ran: BTreeSet<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
    let stale: Vec<&String> = known_gaps
        .iter()
        .filter(|key| ran.contains(key.rsplit_once(':').map_or(key.as_str(), |(s, _)| s)))
        .filter(|key| !outcome.matched.contains(*key))
        .filter(|key| !outcome.mismatches.iter().any(|m| &&m.key == key))
        .collect();

    let mut report = String::new();
    for m in &failures {
        let _ = writeln!(report, "MISMATCH {}", format_mismatch(m, labels, None));
    }
    for m in &gaps {
        let _ = writeln!(report, "known gap {}", format_mismatch(m, labels, None));
    }
    for key in &fixed {
        let _ = writeln!(report, "fixed, remove from known-gaps: {key}");
    }
    let summary = format!(
        "differential: {} scripts, {} commands compared ({} vs {}): {} mismatches, {} known gaps, {} fixed known gaps",
        scripts.len(),
        outcome.compared,
        labels.0,
        labels.1,
        failures.len(),
        gaps.len(),
        fixed.len(),
    );
    let _ = writeln!(report, "{summary}");
    if let Ok(path) = std::env::var("DIFF_REPORT") {
        fs::write(&path, &report).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    if let Ok(path) = std::env::var("DIFF_WRITE_GAPS") {
        let gaps_file: String = outcome
            .mismatches
            .iter()
            .map(|m| format!("{}  # {}\n", m.key, m.command))
            .collect();
        fs::write(&path, gaps_file).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
    if let Ok(path) = std::env::var("DIFF_DUMP") {
        fs::write(&path, &outcome.dump).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }

    for m in &gaps {
        println!(
            "known gap {}",
            format_mismatch(m, labels, Some(CONSOLE_REPLY_LIMIT))
        );
    }
    for key in &fixed {
        say(&format!(
            "differential: fixed, remove from known-gaps: {key}"
        ));
    }
    for key in &stale {
        say(&format!(
            "differential: known-gaps entry {key} names no compared line (script edited?)"
        ));
    }
    for m in &failures {
        println!(
            "MISMATCH {}",
            format_mismatch(m, labels, Some(CONSOLE_REPLY_LIMIT))
        );
    }
    say(&summary);
    assert!(
        failures.is_empty(),
        "{} replies differ from redis-server (listed above; DIFF_REPORT=<path> writes them all)",
        failures.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The harness's own pieces
// ---------------------------------------------------------------------------------------------

#[test]
fn script_lines_split_like_redis_cli() {
    let args = split_args(r#"SET "a b\x41\r\n\"" 'it\'s' plain """#).unwrap();
    let expected: Vec<&[u8]> = vec![b"SET", b"a bA\r\n\"", b"it's", b"plain", b""];
    assert_eq!(args, expected);
    assert!(split_args(r#"GET "unterminated"#).is_err());
    assert!(split_args(r#"GET "a"b"#).is_err());
}

#[test]
fn one_reply_is_framed_exactly_including_nested_attributes_and_pushes() {
    let cases: [&[u8]; 8] = [
        b"+OK\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"$3\r\na\r\n\r\n",
        b"*2\r\n%1\r\n+k\r\n:1\r\n~1\r\n,1.5\r\n",
        b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        b">2\r\n$7\r\nmessage\r\n_\r\n",
        b"=8\r\ntxt:abcd\r\n",
    ];
    for case in cases {
        let mut buf = case.to_vec();
        buf.extend_from_slice(b"+NEXT\r\n");
        let value = parse_reply(&buf, 0).unwrap().unwrap();
        assert_eq!(value.raw, case, "{}", escape(case));
        for cut in 0..case.len() {
            assert!(
                parse_reply(&case[..cut], 0).unwrap().is_none(),
                "{}",
                escape(case)
            );
        }
    }
    assert!(parse_reply(b"?what\r\n", 0).is_err());
}

#[test]
fn normalisations_touch_only_what_they_name() {
    let keys = b"*3\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n";
    assert_eq!(
        normalize(keys, &[Normalize::Sort]),
        b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    let pairs = b"*4\r\n$1\r\nz\r\n$1\r\n1\r\n$1\r\na\r\n$1\r\n2\r\n";
    assert_eq!(
        normalize(pairs, &[Normalize::SortPairs]),
        b"*4\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nz\r\n$1\r\n1\r\n"
    );
    assert_eq!(normalize(b":17\r\n", &[Normalize::Int]), b":<int>\r\n");
    assert_eq!(normalize(b"-ERR x\r\n", &[Normalize::Int]), b"-ERR x\r\n");
    assert_eq!(
        normalize(b"$2\r\nab\r\n", &[Normalize::BulkNonEmpty]),
        b"$<bulk>\r\n"
    );
    assert_eq!(
        normalize(b"$-1\r\n", &[Normalize::BulkNonEmpty]),
        b"$-1\r\n"
    );
    let info = b"$28\r\n# Server\r\nversion:7\r\nid:12\r\n\r\n";
    assert_eq!(
        normalize(info, &[Normalize::Info]),
        b"$<info>\n# Server\nversion\nid\n\n"
    );
}

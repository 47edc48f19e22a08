//! Test harness for multi-process tests: free loopback ports, a spawned `ferrodis` that is
//! killed (by its pid, via the child handle) when the guard drops — also when a test panics —
//! and `wait_until(deadline, condition)` instead of bare sleeps.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Test servers take ports in 15000-21999 (cluster bus ports 25000-31999), below the kernel's
/// ephemeral range (32768 and up by default): an outgoing connection of another test cannot be
/// given one of them between the check here and the server's bind.
const TEST_PORTS: std::ops::Range<u32> = 15000..22000;

pub fn bindable(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A free port whose cluster bus port (+10000) is free too: a cluster node needs both.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive free ports, bus ports free too, none handed out before by
/// this process. Each process starts where its id points, so that a server a previous test
/// binary left behind is unlikely to be met.
pub fn free_ports(n: u16) -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    let offset = std::process::id() % span;
    for _ in 0..span {
        let i = NEXT.fetch_add(n as u32, std::sync::atomic::Ordering::Relaxed);
        let at = (offset + i) % span;
        if at + n as u32 > span {
            continue;
        }
        let base = (TEST_PORTS.start + at) as u16;
        if (0..n).all(|k| bindable(base + k) && bindable(base + k + 10000)) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports left in {TEST_PORTS:?}");
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
    /// Leave the directory behind when dropped (a restart will use it).
    keep_dir: bool,
}

impl Server {
    /// Starts the built `ferrodis` on a free loopback port with the given extra arguments,
    /// in its own temporary directory, and waits until it answers PING.
    pub fn start(extra: &[&str]) -> Server {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ferrodis-test-{}-{port}", std::process::id()));
        Server::start_in(dir, extra)
    }

    /// Starts the server in `dir` (which may hold files from an earlier run).
    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Server {
        Server::start_program(
            std::path::Path::new(env!("CARGO_BIN_EXE_ferrodis")),
            dir,
            extra,
        )
    }

    /// Starts `program` (ferrodis, or a reference `redis-server` taking the same arguments)
    /// in `dir` on a free loopback port, and waits until it has loaded its dataset.
    pub fn start_program(program: &std::path::Path, dir: PathBuf, extra: &[&str]) -> Server {
        Server::launch(program, dir, extra, false)
    }

    /// Starts the built server in `dir` and returns as soon as it answers at all, possibly
    /// still loading its dataset (-LOADING).
    pub fn start_loading(dir: PathBuf, extra: &[&str]) -> Server {
        let program = std::path::Path::new(env!("CARGO_BIN_EXE_ferrodis"));
        Server::launch(program, dir, extra, true)
    }

    fn launch(
        program: &std::path::Path,
        dir: PathBuf,
        extra: &[&str],
        loading_is_up: bool,
    ) -> Server {
        let port = free_port();
        std::fs::create_dir_all(&dir).unwrap();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            "".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--logfile".into(),
            dir.join("log.txt").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferrodis");
        let mut server = Server {
            child,
            port,
            dir,
            keep_dir: false,
        };
        let up = wait_until(Duration::from_secs(10), || server.raw_ping(loading_is_up));
        if !up {
            let log = server.log();
            panic!(
                "{} did not answer PING on port {port}; log:\n{log}",
                program.display()
            );
        }
        server
    }

    /// Waits up to `timeout` for the server to exit; its exit status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }

    fn raw_ping(&mut self, loading_is_up: bool) -> bool {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("ferrodis exited early: {status}; log:\n{}", self.log());
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        // Like Redis's test runner: any status or error line means the server is up; -LOADING
        // only when asked (the dataset is not there yet).
        let mut line = String::new();
        if BufReader::new(s).read_line(&mut line).is_err() {
            return false;
        }
        match line.as_bytes().first() {
            Some(b'+') => true,
            Some(b'-') => loading_is_up || !line.starts_with("-LOADING"),
            _ => false,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log.txt")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .expect("connect to ferrodis")
    }

    /// A raw socket for byte-level tests.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL, no chance to save) and returns its directory, kept.
    #[allow(dead_code)]
    pub fn kill_keep_dir(mut self) -> PathBuf {
        self.keep_dir = true;
        self.dir.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server that already exited while the test failed: its log says why.
        if std::thread::panicking() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = self.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!(
                    "server on port {} exited ({status}); its log ends:\n{}",
                    self.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Sends raw bytes and reads until `expected_len` bytes arrived or the socket times out.
pub fn roundtrip(s: &mut TcpStream, req: &[u8], expected_len: usize) -> Vec<u8> {
    s.write_all(req).unwrap();
    let mut out = vec![0u8; expected_len];
    let mut got = 0;
    while got < expected_len {
        match s.read(&mut out[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    out.truncate(got);
    out
}

/// The reference `redis-server`: `REDIS_SERVER`, else the PATH, else `/usr/bin`.
pub fn find_redis_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join("redis-server"))
        .chain(std::iter::once(PathBuf::from("/usr/bin/redis-server")))
        .find(|candidate| candidate.is_file())
}

/// A raw RESP2 client: a request as an array, one whole reply back as its bytes.
pub struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Raw {
            reader: BufReader::new(s),
        }
    }

    /// Writes bytes as they are, without waiting for a reply.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }

    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&req).unwrap();
        let mut out = Vec::new();
        self.read_reply(&mut out);
        out
    }

    pub fn text(&mut self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.call(args)).into_owned()
    }

    /// A bulk reply's payload (CLUSTER NODES, INFO, MYID).
    pub fn bulk(&mut self, args: &[&str]) -> String {
        let reply = self.text(args);
        assert!(reply.starts_with('$'), "{args:?} answered {reply:?}");
        let body = &reply[reply.find("\r\n").unwrap() + 2..];
        body[..body.len() - 2].to_string()
    }

    pub fn read_reply(&mut self, out: &mut Vec<u8>) {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).unwrap();
        assert!(line.ends_with(b"\r\n"), "truncated reply line {line:?}");
        out.extend_from_slice(&line);
        let n: i64 = std::str::from_utf8(&line[1..line.len() - 2])
            .unwrap_or("0")
            .parse()
            .unwrap_or(0);
        match line[0] {
            b'$' if n >= 0 => {
                let mut body = vec![0u8; n as usize + 2];
                self.reader.read_exact(&mut body).unwrap();
                out.extend_from_slice(&body);
            }
            b'*' => {
                for _ in 0..n.max(0) {
                    self.read_reply(out);
                }
            }
            _ => {}
        }
    }
}

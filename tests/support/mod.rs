//! Test harness for multi-process tests: free loopback ports, a spawned `ferrodis` that is
//! killed (by its pid, via the child handle) when the guard drops — also when a test panics —
//! and `wait_until(deadline, condition)` instead of bare sleeps.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    // Keep below 55535 so port + 10000 (the cluster bus) stays valid, and take a port whose
    // bus port is free too: a cluster node cannot start without both.
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().unwrap().port();
        if port < 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
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

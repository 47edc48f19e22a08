//! A blocking RESP2 connection for the CLI: one request, one reply, with connect and read
//! timeouts so a stuck node cannot hang an operator command forever.

use crate::resp::reply_decode::decode_reply;
use crate::resp::Reply;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects to `host:port`, trying each resolved address with `timeout`; replies are
    /// awaited for at most `timeout` too.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<Conn> {
        let mut last = None;
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(timeout))?;
                    s.set_write_timeout(Some(timeout))?;
                    let _ = s.set_nodelay(true);
                    return Ok(Conn::new(s));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no address resolved")))
    }

    pub fn call<S: AsRef<str>>(&mut self, args: &[S]) -> std::io::Result<Reply> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            let a = a.as_ref();
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&req)?;
        loop {
            match decode_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    // An attribute describes the reply after it; the reply is what we want.
                    if matches!(reply, Reply::Attribute(_)) {
                        continue;
                    }
                    return Ok(reply);
                }
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.0)),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::other("Server closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a command and returns its reply as text: a bulk or status reply's content, an
    /// integer's digits; an error reply becomes `Err` with the server's text.
    pub fn call_text<S: AsRef<str>>(&mut self, args: &[S]) -> Result<String, String> {
        match self.call(args) {
            Ok(Reply::Error(e)) => Err(e.text().to_string()),
            Ok(Reply::Bulk(b)) | Ok(Reply::Verbatim(_, b)) => {
                Ok(String::from_utf8_lossy(&b).into_owned())
            }
            Ok(Reply::Simple(s)) => Ok(s.into_owned()),
            Ok(Reply::Int(i)) => Ok(i.to_string()),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

//! The replica's end of replication as pure logic: the handshake a replica walks through
//! with its primary (PING, AUTH, REPLCONF listening-port, REPLCONF capa, PSYNC), the decision
//! each reply leads to, and the state INFO replication and ROLE report about the link. The
//! socket work lives in `server/replica_driver.rs`.

/// Where the handshake stands: the reply being waited for is to the step's command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ping,
    Auth,
    ListeningPort,
    Capa,
    Psync,
}

/// What to do after a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this command (RESP bytes) and wait for its reply.
    Send(Vec<u8>),
    /// The primary sends a full snapshot next, then its stream from `offset`.
    FullResync { replid: String, offset: u64 },
    /// Partial resynchronisation: keep the data; the primary may have a new replication id.
    Continue { new_replid: Option<String> },
    /// Give up on this connection and try again later, with why.
    Retry(String),
}

/// The handshake of one connection attempt.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub step: Step,
    /// masteruser (optional) and masterauth.
    auth: Option<(Option<String>, String)>,
    listening_port: u16,
    /// The replication id and next offset to ask for, when we hold a dataset from before.
    cached: Option<(String, u64)>,
}

/// One command as a RESP array.
pub fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    out
}

impl Handshake {
    /// A new handshake and the first command to send (PING).
    pub fn start(
        auth: Option<(Option<String>, String)>,
        listening_port: u16,
        cached: Option<(String, u64)>,
    ) -> (Handshake, Vec<u8>) {
        let h = Handshake {
            step: Step::Ping,
            auth,
            listening_port,
            cached,
        };
        (h, command(&["PING"]))
    }

    fn psync(&mut self) -> Action {
        self.step = Step::Psync;
        match &self.cached {
            Some((id, next)) => Action::Send(command(&["PSYNC", id, &next.to_string()])),
            None => Action::Send(command(&["PSYNC", "?", "-1"])),
        }
    }

    fn listening_port(&mut self) -> Action {
        self.step = Step::ListeningPort;
        let port = self.listening_port.to_string();
        Action::Send(command(&["REPLCONF", "listening-port", &port]))
    }

    /// Takes the reply line to the current step's command (without CRLF).
    pub fn on_reply(&mut self, line: &str) -> Action {
        let is_err = line.starts_with('-');
        match self.step {
            Step::Ping => {
                // An unauthenticated PING is refused, which still proves the link works.
                if is_err
                    && !line.starts_with("-NOAUTH")
                    && !line.starts_with("-NOPERM")
                    && !line.starts_with("-ERR operation not permitted")
                {
                    return Action::Retry(format!("Error reply to PING from master: '{line}'"));
                }
                match self.auth.clone() {
                    Some((user, pass)) => {
                        self.step = Step::Auth;
                        let cmd = match &user {
                            Some(u) => command(&["AUTH", u, &pass]),
                            None => command(&["AUTH", &pass]),
                        };
                        Action::Send(cmd)
                    }
                    None => self.listening_port(),
                }
            }
            Step::Auth => {
                if is_err {
                    return Action::Retry(format!("Unable to AUTH to MASTER: {line}"));
                }
                self.listening_port()
            }
            Step::ListeningPort => {
                // Errors here are only noted by Redis; the handshake goes on.
                self.step = Step::Capa;
                Action::Send(command(&["REPLCONF", "capa", "eof", "capa", "psync2"]))
            }
            Step::Capa => self.psync(),
            Step::Psync => {
                if let Some(rest) = line.strip_prefix("+FULLRESYNC") {
                    let mut parts = rest.split_whitespace();
                    let id = parts.next().unwrap_or("");
                    let offset = parts.next().and_then(|o| o.parse::<u64>().ok());
                    match offset {
                        Some(offset) if id.len() == 40 => Action::FullResync {
                            replid: id.to_string(),
                            offset,
                        },
                        _ => Action::Retry(format!("Bad +FULLRESYNC reply: '{line}'")),
                    }
                } else if let Some(rest) = line.strip_prefix("+CONTINUE") {
                    if self.cached.is_none() {
                        return Action::Retry("Unexpected +CONTINUE without a dataset".into());
                    }
                    let id = rest.trim();
                    Action::Continue {
                        new_replid: (id.len() == 40).then(|| id.to_string()),
                    }
                } else {
                    Action::Retry(format!("Unexpected reply to PSYNC from master: {line}"))
                }
            }
        }
    }
}

/// How the snapshot's bulk is framed after +FULLRESYNC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `$<len>`: exactly this many bytes.
    Sized(u64),
    /// `$EOF:<mark>`: read until these 40 bytes end the transfer (diskless).
    Delimited(Vec<u8>),
}

/// Parses the bulk header line (without CRLF).
pub fn payload_header(line: &[u8]) -> Option<Payload> {
    let rest = line.strip_prefix(b"$")?;
    if let Some(mark) = rest.strip_prefix(b"EOF:") {
        return (mark.len() == 40).then(|| Payload::Delimited(mark.to_vec()));
    }
    let len = std::str::from_utf8(rest).ok()?.parse::<u64>().ok()?;
    Some(Payload::Sized(len))
}

/// One command of the primary's stream at the front of `buf`: its arguments and how many
/// bytes it took. A bare newline (a keepalive) is an empty command. None while incomplete.
/// The buffer is not consumed, so the caller can keep the exact bytes for its own backlog.
pub fn parse_command(buf: &[u8]) -> Result<Option<(Vec<bytes::Bytes>, usize)>, String> {
    fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
        let nl = buf[from..].iter().position(|&b| b == b'\n')? + from;
        let end = if nl > from && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some((&buf[from..end], nl + 1))
    }
    fn number(text: &[u8]) -> Result<i64, String> {
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| "bad length in the master stream".to_string())
    }
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] != b'*' {
        // Inline form: only keepalive newlines and simple words are expected.
        let Some((text, next)) = line(buf, 0) else {
            return Ok(None);
        };
        let args = text
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .map(bytes::Bytes::copy_from_slice)
            .collect();
        return Ok(Some((args, next)));
    }
    let Some((head, mut pos)) = line(buf, 0) else {
        return Ok(None);
    };
    let count = number(&head[1..])?;
    if !(0..=1 << 20).contains(&count) {
        return Err("bad multibulk length in the master stream".into());
    }
    let mut args = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let Some((h, next)) = line(buf, pos) else {
            return Ok(None);
        };
        if h.first() != Some(&b'$') {
            return Err("expected '$' in the master stream".into());
        }
        let len = number(&h[1..])?;
        if len < 0 {
            return Err("bad bulk length in the master stream".into());
        }
        let len = len as usize;
        if buf.len() < next + len + 2 {
            return Ok(None);
        }
        args.push(bytes::Bytes::copy_from_slice(&buf[next..next + len]));
        pos = next + len + 2;
    }
    Ok(Some((args, pos)))
}

/// The link to our primary, as INFO replication and ROLE report it.
#[derive(Debug, Clone, Default)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    /// `connect`, `connecting`, `handshake`, `sync` or `connected` (ROLE's words).
    pub state: &'static str,
    pub last_io_ms: u64,
    pub down_since_ms: u64,
    /// Bytes read from the stream, and bytes applied (the replication offsets).
    pub read_offset: u64,
    pub processed_offset: u64,
    /// During a full sync: bytes expected (0 when delimited) and bytes read so far.
    pub sync_size: u64,
    pub sync_read: u64,
}

impl MasterLink {
    pub fn link_up(&self) -> bool {
        self.state == "connected"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(a: Action) -> String {
        match a {
            Action::Send(b) => String::from_utf8(b).unwrap(),
            other => panic!("expected a command, got {other:?}"),
        }
    }

    #[test]
    fn handshake_without_auth_asks_for_a_full_sync() {
        let (mut h, first) = Handshake::start(None, 6380, None);
        assert_eq!(first, b"*1\r\n$4\r\nPING\r\n");
        assert!(sent(h.on_reply("+PONG")).contains("listening-port\r\n$4\r\n6380"));
        assert_eq!(
            sent(h.on_reply("+OK")),
            "*5\r\n$8\r\nREPLCONF\r\n$4\r\ncapa\r\n$3\r\neof\r\n$4\r\ncapa\r\n$6\r\npsync2\r\n"
        );
        assert_eq!(
            sent(h.on_reply("+OK")),
            "*3\r\n$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"
        );
        let id = "a".repeat(40);
        assert_eq!(
            h.on_reply(&format!("+FULLRESYNC {id} 123")),
            Action::FullResync {
                replid: id,
                offset: 123
            }
        );
    }

    #[test]
    fn auth_is_sent_with_user_and_errors_retry() {
        let auth = Some((Some("u".to_string()), "p".to_string()));
        let (mut h, _) = Handshake::start(auth, 1, None);
        assert_eq!(
            sent(h.on_reply("-NOAUTH Authentication required.")),
            "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n"
        );
        assert!(matches!(h.on_reply("-WRONGPASS nope"), Action::Retry(_)));
        let (mut h, _) = Handshake::start(None, 1, None);
        assert!(matches!(h.on_reply("-ERR busy"), Action::Retry(_)));
    }

    #[test]
    fn psync_with_a_cached_dataset_may_continue() {
        let (mut h, _) = Handshake::start(None, 1, Some(("b".repeat(40), 101)));
        h.on_reply("+PONG");
        h.on_reply("-ERR no port");
        let psync = sent(h.on_reply("+OK"));
        assert!(psync.ends_with("$3\r\n101\r\n"));
        let mut h2 = h.clone();
        assert_eq!(
            h.on_reply("+CONTINUE"),
            Action::Continue { new_replid: None }
        );
        let id = "c".repeat(40);
        assert_eq!(
            h2.on_reply(&format!("+CONTINUE {id}")),
            Action::Continue {
                new_replid: Some(id)
            }
        );
        let (mut h3, _) = Handshake::start(None, 1, None);
        h3.step = Step::Psync;
        assert!(matches!(
            h3.on_reply("-NOMASTERLINK Can't SYNC while not connected with my master"),
            Action::Retry(_)
        ));
        assert!(matches!(h3.on_reply("+CONTINUE"), Action::Retry(_)));
        assert!(matches!(
            h3.on_reply("+FULLRESYNC short 1"),
            Action::Retry(_)
        ));
    }

    #[test]
    fn stream_commands_are_parsed_without_consuming() {
        let buf = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$4\r\nPI";
        let (args, n) = parse_command(buf).unwrap().unwrap();
        assert_eq!(args, vec![&b"SELECT"[..], b"0"]);
        assert_eq!(n, 23);
        assert_eq!(parse_command(&buf[n..]).unwrap(), None);
        assert_eq!(parse_command(b"\n*1").unwrap().unwrap(), (vec![], 1));
        assert!(parse_command(b"*1\r\n+x\r\n").is_err());
        assert!(parse_command(b"*x\r\n").is_err());
    }

    #[test]
    fn payload_headers() {
        assert_eq!(payload_header(b"$123"), Some(Payload::Sized(123)));
        let mark = "x".repeat(40);
        assert_eq!(
            payload_header(format!("$EOF:{mark}").as_bytes()),
            Some(Payload::Delimited(mark.into_bytes()))
        );
        assert_eq!(payload_header(b"$EOF:short"), None);
        assert_eq!(payload_header(b"+OK"), None);
    }
}

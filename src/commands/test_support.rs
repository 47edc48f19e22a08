//! A test harness that runs any command of the table against a fresh in-memory server, the way
//! dispatch would (table lookup, arity check), with every shard locked and a fixed clock.
//! Handler-level tests of new families use it instead of a private harness each.

use super::context::{ClientState, ExecCtx};
use super::errors;
use super::table::Lookup;
use crate::resp::Reply;
use crate::server::state::ServerState;
use bytes::Bytes;

pub const NOW_MS: u64 = 1_700_000_000_000;

pub struct Harness {
    pub server: ServerState,
    pub client: ClientState,
    pub now_ms: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs one command through the whole dispatch path (ACL, MULTI, LOADING and pause gates
/// included) for `client`, at a fixed clock.
pub fn dispatch(server: &ServerState, client: &mut ClientState, argv: &[&str]) -> Reply {
    let args: Vec<Bytes> = argv
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    super::dispatch::execute(server, client, &args, 1_700_000_000_000_000, true).reply
}

/// The client every handler test runs as: id 1, from loopback, created at `now_ms`.
pub fn test_client(now_ms: u64) -> ClientState {
    ClientState::new(
        1,
        "127.0.0.1:1".into(),
        "127.0.0.1:6379".into(),
        8,
        now_ms,
        true,
    )
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            server: ServerState::for_tests(),
            client: test_client(NOW_MS),
            now_ms: NOW_MS,
        }
    }

    /// Runs one command given as raw arguments.
    pub fn run_bytes(&mut self, argv: &[&[u8]]) -> Result<Reply, String> {
        let args: Vec<Bytes> = argv.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let cmd = match self.server.commands.lookup(&args) {
            Lookup::Found(cmd) => cmd,
            _ => return Err(errors::unknown_command(&args).text().to_string()),
        };
        if !cmd.spec.arity_ok(args.len()) {
            return Err(errors::wrong_arity(&cmd.fullname).text().to_string());
        }
        let ks = self.server.keyspace.lock_all();
        let mut ctx = ExecCtx::new(self.now_ms * 1000, Some(ks), &mut self.client, &self.server);
        let result = (cmd.spec.handler)(&mut ctx, &args);
        ctx.close_opened();
        result.map_err(|e| e.text().to_string())
    }

    pub fn run(&mut self, argv: &[&str]) -> Result<Reply, String> {
        let raw: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        self.run_bytes(&raw)
    }

    pub fn ok_bytes(&mut self, argv: &[&[u8]]) -> Reply {
        self.run_bytes(argv)
            .unwrap_or_else(|e| panic!("{:?} failed: {e}", show(argv)))
    }

    pub fn ok(&mut self, argv: &[&str]) -> Reply {
        self.run(argv)
            .unwrap_or_else(|e| panic!("{argv:?} failed: {e}"))
    }

    pub fn err_bytes(&mut self, argv: &[&[u8]]) -> String {
        match self.run_bytes(argv) {
            Err(e) => e,
            Ok(r) => panic!("{:?} replied {r:?}, expected an error", show(argv)),
        }
    }

    pub fn err(&mut self, argv: &[&str]) -> String {
        let raw: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
        self.err_bytes(&raw)
    }

    pub fn int(&mut self, argv: &[&str]) -> i64 {
        match self.ok(argv) {
            Reply::Int(i) => i,
            other => panic!("{argv:?} replied {other:?}, expected an integer"),
        }
    }

    pub fn bulk(&mut self, argv: &[&str]) -> Vec<u8> {
        match self.ok(argv) {
            Reply::Bulk(b) => b.to_vec(),
            other => panic!("{argv:?} replied {other:?}, expected a bulk string"),
        }
    }

    pub fn is_null(&mut self, argv: &[&str]) -> bool {
        matches!(self.ok(argv), Reply::Null)
    }
}

fn show(argv: &[&[u8]]) -> Vec<String> {
    argv.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

//! The configuration system: redis.conf files, the `--directive value` command line, and the
//! CONFIG GET / SET / REWRITE commands, all driven by one table of directives (`table.rs`)
//! that mirrors Redis 7.0.15's config.c: the same directive names and aliases, types,
//! bounds, defaults, mutability flags, parsing rules (quotes, memory units, yes/no, enums)
//! and error texts, down to the `*** FATAL CONFIG FILE ERROR ***` report. The table also
//! generates `Config`, the typed snapshot the server keeps in an `ArcSwap` and reads on hot
//! paths; CONFIG SET works on a clone and returns which directives changed so the server can
//! apply side effects (new port, log level, ...). Pure: file contents, stdin and the
//! rewritten text pass through the caller.
//!
//! Files: `lexer.rs` (line and argument grammar, argv, units), `table.rs` (the directives),
//! `values.rs` (value types and enums), `special.rs` (directives with their own grammar),
//! `store.rs` (GET/SET), `rewrite.rs` (REWRITE), `load.rs` (startup and fatal reports).

pub mod lexer;
mod load;
mod rewrite;
pub mod special;
mod store;
pub mod table;
pub mod values;

pub use load::{load, FatalConfigError, LoadedConfig};
pub use store::{Config, SetContext};
pub use table::{lookup, Directive, FileLine, RenameCommand, DIRECTIVES};
pub use values::{
    AclPubsubDefault, AppendFsync, ClientOutputBufferLimits, ClusterEndpointType, EnableCommand,
    KeyspaceEvents, LogLevel, MaxmemoryPolicy, ObufLimit, OomScoreAdj, PropagationErrorBehavior,
    ReplDisklessLoad, ReplicaOf, SanitizeDumpPayload, ShutdownFlags, Supervised, SyslogFacility,
    TlsAuthClients,
};

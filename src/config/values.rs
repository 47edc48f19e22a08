//! The typed values behind the directive table: the dynamic `Value` every standard
//! directive converts through, the `Field` trait that ties a typed `Config` field to it, the
//! enum directives as Rust enums (names and numeric values as in Redis 7.0's config.c), and
//! the structured values of the special directives (`client-output-buffer-limit`,
//! `notify-keyspace-events`, `replicaof`).

/// A standard directive's value, independent of the Rust type of its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    /// Every numeric directive; wide enough for both `i64` and `u64` ranges. Percentages
    /// (`maxmemory-clients 10%`) are stored negated, as Redis does.
    Num(i128),
    /// An enum's numeric value (a bit set for multi-argument enums).
    Enum(u32),
    /// String directives; an empty string stands for Redis's NULL where that applies.
    Str(Vec<u8>),
}

/// A `Config` field that a standard directive reads and writes.
pub trait Field {
    fn to_value(&self) -> Value;
    fn from_value(v: Value) -> Self;
}

impl Field for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(v: Value) -> Self {
        matches!(v, Value::Bool(true))
    }
}

macro_rules! numeric_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn to_value(&self) -> Value {
                Value::Num(*self as i128)
            }
            fn from_value(v: Value) -> Self {
                match v {
                    Value::Num(n) => n as $t,
                    _ => 0,
                }
            }
        }
    )*};
}
numeric_field!(u16, u32, u64, usize, i32, i64);

impl Field for String {
    fn to_value(&self) -> Value {
        Value::Str(self.as_bytes().to_vec())
    }
    fn from_value(v: Value) -> Self {
        match v {
            Value::Str(s) => String::from_utf8_lossy(&s).into_owned(),
            _ => String::new(),
        }
    }
}

/// Binary-safe strings where an empty value means "not set" (`requirepass`, `masterauth`).
impl Field for Option<Vec<u8>> {
    fn to_value(&self) -> Value {
        Value::Str(self.clone().unwrap_or_default())
    }
    fn from_value(v: Value) -> Self {
        match v {
            Value::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }
}

/// Declares a Rust enum for an enum directive: variants with their Redis names and values,
/// in Redis's table order (that order is the one error messages list), optionally followed
/// by variants that no name selects.
macro_rules! config_enum {
    ($(#[$m:meta])* $name:ident default $dflt:ident {
        $($variant:ident = $text:literal => $val:expr),* $(,)?
    } $(unnamed { $($hidden:ident = $hval:expr),* })?) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant,)* $($($hidden,)*)? }

        impl $name {
            /// The accepted names and their values, in Redis's order.
            pub const NAMES: &'static [(&'static str, u32)] = &[$(($text, $val),)*];

            /// The name CONFIG GET shows.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* $($($name::$hidden => "unknown",)*)? }
            }

            /// The numeric value Redis stores for this choice.
            pub const fn value(self) -> u32 {
                match self { $($name::$variant => $val,)* $($($name::$hidden => $hval,)*)? }
            }
        }

        impl Field for $name {
            fn to_value(&self) -> Value {
                Value::Enum(self.value())
            }
            fn from_value(v: Value) -> Self {
                let n = match v { Value::Enum(n) => n, _ => u32::MAX };
                [$($name::$variant,)* $($($name::$hidden,)*)?]
                    .into_iter()
                    .find(|x| x.value() == n)
                    .unwrap_or($name::$dflt)
            }
        }
    };
}

config_enum!(
    /// `loglevel`. `Nothing` is Redis 7.2's silent level: 7.0.15 accepts no name for it, so
    /// only code (never a config line) can select it.
    LogLevel default Notice {
        Debug = "debug" => 0, Verbose = "verbose" => 1, Notice = "notice" => 2, Warning = "warning" => 3
    } unnamed { Nothing = 4 }
);

config_enum!(
    /// `maxmemory-policy`.
    MaxmemoryPolicy default NoEviction {
        VolatileLru = "volatile-lru" => 1,
        VolatileLfu = "volatile-lfu" => 2,
        VolatileRandom = "volatile-random" => 3,
        VolatileTtl = "volatile-ttl" => 4,
        AllkeysLru = "allkeys-lru" => 5,
        AllkeysLfu = "allkeys-lfu" => 6,
        AllkeysRandom = "allkeys-random" => 7,
        NoEviction = "noeviction" => 8,
    }
);

config_enum!(
    /// `supervised`.
    Supervised default No { Upstart = "upstart" => 1, Systemd = "systemd" => 2, Auto = "auto" => 3, No = "no" => 0 }
);

config_enum!(
    /// `syslog-facility` (values are the syslog.h facility codes).
    SyslogFacility default Local0 {
        User = "user" => 8,
        Local0 = "local0" => 128,
        Local1 = "local1" => 136,
        Local2 = "local2" => 144,
        Local3 = "local3" => 152,
        Local4 = "local4" => 160,
        Local5 = "local5" => 168,
        Local6 = "local6" => 176,
        Local7 = "local7" => 184,
    }
);

config_enum!(
    /// `appendfsync`.
    AppendFsync default Everysec { Everysec = "everysec" => 2, Always = "always" => 1, No = "no" => 0 }
);

config_enum!(
    /// `repl-diskless-load`.
    ReplDisklessLoad default Disabled { Disabled = "disabled" => 0, OnEmptyDb = "on-empty-db" => 1, Swapdb = "swapdb" => 2 }
);

config_enum!(
    /// `tls-auth-clients`.
    TlsAuthClients default Yes { No = "no" => 0, Yes = "yes" => 1, Optional = "optional" => 2 }
);

config_enum!(
    /// `oom-score-adj`. `yes` is the older spelling of `relative`; sharing its value and
    /// coming first, it is the name CONFIG GET shows. The directive accepts
    /// `OOM_SCORE_ADJ_NAMES`, which also lists `relative`.
    OomScoreAdj default No { No = "no" => 0, Relative = "yes" => 1, Absolute = "absolute" => 2 }
);

/// Every spelling `oom-score-adj` accepts, in Redis's order.
pub const OOM_SCORE_ADJ_NAMES: &[(&str, u32)] =
    &[("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];

config_enum!(
    /// `acl-pubsub-default`.
    AclPubsubDefault default ResetChannels { AllChannels = "allchannels" => 1 << 5, ResetChannels = "resetchannels" => 0 }
);

config_enum!(
    /// `sanitize-dump-payload`.
    SanitizeDumpPayload default No { No = "no" => 0, Yes = "yes" => 1, Clients = "clients" => 2 }
);

config_enum!(
    /// `enable-protected-configs`, `enable-debug-command`, `enable-module-command`.
    EnableCommand default No { No = "no" => 0, Yes = "yes" => 1, Local = "local" => 2 }
);

config_enum!(
    /// `cluster-preferred-endpoint-type`.
    ClusterEndpointType default Ip { Ip = "ip" => 0, Hostname = "hostname" => 1, UnknownEndpoint = "unknown-endpoint" => 2 }
);

config_enum!(
    /// `propagation-error-behavior`.
    PropagationErrorBehavior default Ignore {
        Ignore = "ignore" => 0, Panic = "panic" => 1, PanicOnReplicas = "panic-on-replicas" => 2
    }
);

/// `shutdown-on-sigint` / `shutdown-on-sigterm`: a set of SHUTDOWN flags, empty = default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownFlags(pub u32);

impl ShutdownFlags {
    /// The accepted names and their bits, in Redis's order.
    pub const NAMES: &'static [(&'static str, u32)] = &[
        ("default", 0),
        ("save", Self::SAVE),
        ("nosave", Self::NOSAVE),
        ("now", Self::NOW),
        ("force", Self::FORCE),
    ];
    pub const SAVE: u32 = 1;
    pub const NOSAVE: u32 = 2;
    pub const NOW: u32 = 4;
    pub const FORCE: u32 = 8;
}

impl Field for ShutdownFlags {
    fn to_value(&self) -> Value {
        Value::Enum(self.0)
    }
    fn from_value(v: Value) -> Self {
        match v {
            Value::Enum(n) => ShutdownFlags(n),
            _ => ShutdownFlags(0),
        }
    }
}

/// One client class's output buffer limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObufLimit {
    pub hard_limit_bytes: u64,
    pub soft_limit_bytes: u64,
    pub soft_limit_seconds: i64,
}

impl ObufLimit {
    /// Whether `len` pending bytes break this limit: at or over the hard limit, or over the
    /// soft limit for longer than its seconds. `soft_since` remembers when the soft limit was
    /// first passed (cleared once back under it).
    pub fn exceeded(&self, len: u64, now_ms: u64, soft_since: &mut Option<u64>) -> bool {
        let over_soft = if self.soft_limit_bytes != 0 && len >= self.soft_limit_bytes {
            let since = *soft_since.get_or_insert(now_ms);
            now_ms.saturating_sub(since) / 1000 > self.soft_limit_seconds.max(0) as u64
        } else {
            *soft_since = None;
            false
        };
        over_soft || (self.hard_limit_bytes != 0 && len >= self.hard_limit_bytes)
    }
}

/// `client-output-buffer-limit` for the three configurable classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOutputBufferLimits {
    pub normal: ObufLimit,
    pub replica: ObufLimit,
    pub pubsub: ObufLimit,
}

impl Default for ClientOutputBufferLimits {
    fn default() -> Self {
        let limit = |hard, soft, secs| ObufLimit {
            hard_limit_bytes: hard,
            soft_limit_bytes: soft,
            soft_limit_seconds: secs,
        };
        ClientOutputBufferLimits {
            normal: limit(0, 0, 0),
            replica: limit(256 << 20, 64 << 20, 60),
            pubsub: limit(32 << 20, 8 << 20, 60),
        }
    }
}

impl ClientOutputBufferLimits {
    /// The classes in Redis's order with the names CONFIG GET uses.
    pub fn classes(&self) -> [(&'static str, ObufLimit); 3] {
        [
            ("normal", self.normal),
            ("slave", self.replica),
            ("pubsub", self.pubsub),
        ]
    }

    pub(crate) fn class_mut(&mut self, index: usize) -> &mut ObufLimit {
        match index {
            0 => &mut self.normal,
            1 => &mut self.replica,
            _ => &mut self.pubsub,
        }
    }
}

/// Keyspace notification classes (the `NOTIFY_*` bits of server.h).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const KEYEVENT: u32 = 1 << 1;
    pub const GENERIC: u32 = 1 << 2;
    pub const STRING: u32 = 1 << 3;
    pub const LIST: u32 = 1 << 4;
    pub const SET: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const ZSET: u32 = 1 << 7;
    pub const EXPIRED: u32 = 1 << 8;
    pub const EVICTED: u32 = 1 << 9;
    pub const STREAM: u32 = 1 << 10;
    pub const KEY_MISS: u32 = 1 << 11;
    pub const LOADED: u32 = 1 << 12;
    pub const MODULE: u32 = 1 << 13;
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class except key-miss and new-key.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// `notify-keyspace-events`: the class bits and their canonical spelling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyspaceEvents {
    pub flags: u32,
    /// What CONFIG GET shows: `A` for all classes, then `K`, `E`, `m`.
    pub canonical: String,
}

impl KeyspaceEvents {
    /// Parses class characters; `None` on an unknown one.
    pub fn parse(classes: &[u8]) -> Option<KeyspaceEvents> {
        let mut flags = 0;
        for &c in classes {
            flags |= match c {
                b'A' => notify::ALL,
                b'g' => notify::GENERIC,
                b'$' => notify::STRING,
                b'l' => notify::LIST,
                b's' => notify::SET,
                b'h' => notify::HASH,
                b'z' => notify::ZSET,
                b'x' => notify::EXPIRED,
                b'e' => notify::EVICTED,
                b'K' => notify::KEYSPACE,
                b'E' => notify::KEYEVENT,
                b't' => notify::STREAM,
                b'm' => notify::KEY_MISS,
                b'd' => notify::MODULE,
                b'n' => notify::NEW,
                _ => return None,
            };
        }
        Some(KeyspaceEvents::from_flags(flags))
    }

    pub fn from_flags(flags: u32) -> KeyspaceEvents {
        KeyspaceEvents {
            flags,
            canonical: Self::render(flags),
        }
    }

    fn render(flags: u32) -> String {
        use notify::*;
        let mut s = String::new();
        if flags & ALL == ALL {
            s.push('A');
        } else {
            let classes = [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
                (NEW, 'n'),
            ];
            s.extend(
                classes
                    .iter()
                    .filter(|(bit, _)| flags & bit != 0)
                    .map(|(_, c)| c),
            );
        }
        s.extend(
            [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')]
                .iter()
                .filter(|(b, _)| flags & b != 0)
                .map(|(_, c)| c),
        );
        s
    }
}

/// `replicaof <host> <port>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOf {
    pub host: String,
    pub port: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_events_render_canonically() {
        assert_eq!(KeyspaceEvents::parse(b"KEA").unwrap().canonical, "AKE");
        assert_eq!(KeyspaceEvents::parse(b"Ex$").unwrap().canonical, "$xE");
        assert_eq!(
            KeyspaceEvents::parse(b"").unwrap(),
            KeyspaceEvents::default()
        );
        assert_eq!(KeyspaceEvents::parse(b"mn").unwrap().canonical, "nm");
        assert!(KeyspaceEvents::parse(b"Q").is_none());
    }

    #[test]
    fn enums_round_trip_through_values() {
        for p in [MaxmemoryPolicy::AllkeysLru, MaxmemoryPolicy::NoEviction] {
            assert_eq!(MaxmemoryPolicy::from_value(p.to_value()), p);
        }
        assert_eq!(
            OomScoreAdj::from_value(Value::Enum(1)),
            OomScoreAdj::Relative
        );
        assert_eq!(OomScoreAdj::Relative.name(), "yes");
    }
}

//! Every error text a command can send, defined once. The texts are Redis 7.0.15's, byte for
//! byte, because clients and tests match on them.

use crate::resp::ErrorReply;

macro_rules! errors {
    ($($name:ident = $text:literal;)*) => {
        $(pub const $name: ErrorReply = ErrorReply::fixed($text);)*
    };
}

errors! {
    SYNTAX = "ERR syntax error";
    BUSYKEY = "BUSYKEY Target key name already exists.";
    MIGRATE_KEYS_NEEDS_EMPTY_KEY = "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string";
    MIGRATE_IOERR_CONNECT = "IOERR error or timeout connecting to the client";
    MIGRATE_IOERR_WRITE = "IOERR error or timeout writing to target instance";
    MIGRATE_IOERR_READ = "IOERR error or timeout reading to target instance";
    INVALID_TTL = "ERR Invalid TTL value, must be >= 0";
    INVALID_IDLETIME = "ERR Invalid IDLETIME value, must be >= 0";
    INVALID_FREQ = "ERR Invalid FREQ value, must be >= 0 and <= 255";
    DUMP_VERSION_OR_CHECKSUM = "ERR DUMP payload version or checksum are wrong";
    BAD_DATA_FORMAT = "ERR Bad data format";
    WAIT_ON_REPLICA = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";
    AOF_REWRITE_IN_PROGRESS = "ERR Background append only file rewriting already in progress";
    WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";
    NOT_INTEGER = "ERR value is not an integer or out of range";
    NOT_FLOAT = "ERR value is not a valid float";
    INCR_OVERFLOW = "ERR increment or decrement would overflow";
    INCRBYFLOAT_NAN_OR_INF = "ERR increment would produce NaN or Infinity";
    DECR_OVERFLOW = "ERR decrement would overflow";
    LCS_NOT_STRINGS = "ERR The specified keys must contain string values";
    LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX.";
    LCS_STRING_TOO_LONG = "ERR String too long for LCS";
    LCS_TABLE_TOO_BIG = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len";
    LCS_ALLOC_FAILED = "ERR Insufficient memory, failed allocating transient memory for LCS";
    NO_SUCH_KEY = "ERR no such key";
    DB_INDEX_OUT_OF_RANGE = "ERR DB index is out of range";
    INVALID_DB_INDEX = "ERR invalid DB index";
    SAME_OBJECT = "ERR source and destination objects are the same";
    STRING_TOO_LONG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    OFFSET_OUT_OF_RANGE = "ERR offset is out of range";
    INVALID_CURSOR = "ERR invalid cursor";
    NOAUTH = "NOAUTH Authentication required.";
    WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";
    AUTH_NO_PASSWORD = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
    NOPROTO = "NOPROTO unsupported protocol version";
    PROTOCOL_VERSION_NOT_INT = "ERR Protocol version is not an integer or out of range";
    SELECT_NOT_ALLOWED_IN_CLUSTER = "ERR SELECT is not allowed in cluster mode";
    MULTI_NESTED = "ERR MULTI calls can not be nested";
    EXEC_WITHOUT_MULTI = "ERR EXEC without MULTI";
    DISCARD_WITHOUT_MULTI = "ERR DISCARD without MULTI";
    EXECABORT = "EXECABORT Transaction discarded because of previous errors.";
    CLIENT_NAME_SPACES = "ERR Client names cannot contain spaces, newlines or special characters.";
    NO_SUCH_CLIENT = "ERR No such client";
    TIMEOUT_NOT_INT = "ERR timeout is not an integer or out of range";
    TIMEOUT_NEGATIVE = "ERR timeout is negative";
    MAX_CLIENTS = "ERR max number of clients reached";
    EXPIRE_NX_XX_GT_LT = "ERR NX and XX, GT or LT options at the same time are not compatible";
    EXPIRE_GT_LT = "ERR GT and LT options at the same time are not compatible";
    NUMKEYS_ZERO_OR_NEGATIVE = "ERR numkeys should be greater than 0";
    INVALID_EXPIRE_SET = "ERR invalid expire time in 'set' command";
    INVALID_EXPIRE_GETEX = "ERR invalid expire time in 'getex' command";
    INVALID_EXPIRE_SETEX = "ERR invalid expire time in 'setex' command";
    INVALID_EXPIRE_PSETEX = "ERR invalid expire time in 'psetex' command";
    LFU_NOT_SELECTED = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
    LRU_NOT_SELECTED = "ERR An LRU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
    SHUTDOWN_ERRORS = "ERR Errors trying to SHUTDOWN. Check logs.";
    DEBUG_COMMAND_NOT_ALLOWED = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
    OOM = "OOM command not allowed when used memory > 'maxmemory'.";
    LOADING = "LOADING Redis is loading the dataset in memory";
    NOREPLICAS = "NOREPLICAS Not enough good replicas to write.";
    READONLY_REPLICA = "READONLY You can't write against a read only replica.";
    BGSAVE_ERR = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";
    INT_OUT_OF_RANGE = "ERR value is out of range, value must between -2147483648 and 2147483647";
    MOVE_IN_CLUSTER = "ERR MOVE is not allowed in cluster mode";
    COPY_DB_IN_CLUSTER = "ERR Copying to another database is not allowed in cluster mode";
    HASH_NOT_INTEGER = "ERR hash value is not an integer";
    HASH_NOT_FLOAT = "ERR hash value is not a float";
    VALUE_NAN_OR_INF = "ERR value is NaN or Infinity";
    HLL_WRONGTYPE = "WRONGTYPE Key is not a valid HyperLogLog string value.";
    HLL_INVALID = "INVALIDOBJ Corrupted HLL object detected";
    HLL_NO_KEY = "ERR The specified key does not exist";
    HLL_NOT_SPARSE = "ERR HLL encoding is not sparse";
    LFU_SELECTED = "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.";
    BIT_OFFSET = "ERR bit offset is not an integer or out of range";
    BIT_VALUE = "ERR bit is not an integer or out of range";
    BITPOS_BIT = "ERR The bit argument must be 1 or 0.";
    BITOP_NOT_SINGLE = "ERR BITOP NOT must be called with a single source key.";
    BITFIELD_TYPE = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    BITFIELD_OVERFLOW_TYPE = "ERR Invalid OVERFLOW type specified";
    BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand";
    CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";
    TRYAGAIN = "TRYAGAIN Multiple keys request during rehashing of slot";
    CLUSTERDOWN = "CLUSTERDOWN The cluster is down";
    CLUSTERDOWN_READS_ONLY = "CLUSTERDOWN The cluster is down and only accepts read commands";
    CLUSTERDOWN_UNBOUND = "CLUSTERDOWN Hash slot not served";
    CLUSTER_SUPPORT_DISABLED = "ERR This instance has cluster support disabled";
    INVALID_SLOT = "ERR Invalid slot";
    INVALID_SLOT_OR_COUNT = "ERR Invalid slot or number of keys";
}

/// `MOVED <slot> <endpoint>:<port>`: the slot is served by another node.
pub fn moved(slot: u16, endpoint: &dyn std::fmt::Display) -> ErrorReply {
    ErrorReply::owned(format!("MOVED {slot} {endpoint}"))
}

/// `ASK <slot> <endpoint>:<port>`: this key is being migrated; ask the target once.
pub fn ask(slot: u16, endpoint: &dyn std::fmt::Display) -> ErrorReply {
    ErrorReply::owned(format!("ASK {slot} {endpoint}"))
}

/// `ERR unknown command '<name>', with args beginning with: '<a>' '<b>' `: arguments are
/// added while the list is under 128 bytes, each cut to what is left of those 128.
pub fn unknown_command(args: &[bytes::Bytes]) -> ErrorReply {
    let mut list: Vec<u8> = Vec::new();
    for a in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push(b'\'');
        list.extend_from_slice(c_str(a, room));
        list.extend_from_slice(b"' ");
    }
    ErrorReply::owned(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        clip(&args[0]),
        no_newlines(&list)
    ))
}

/// `ERR Unsupported option <opt>` (the EXPIRE family's flags).
pub fn unsupported_option(opt: &[u8]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR Unsupported option {}",
        no_newlines(c_str(opt, usize::MAX))
    ))
}

/// `ERR invalid expire time in '<command>' command`.
pub fn invalid_expire_time(full_name: &str) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR invalid expire time in '{}' command",
        full_name
    ))
}

/// `ERR unknown subcommand '<sub>'. Try <CMD> HELP.`
pub fn unknown_subcommand(container: &str, sub: &[u8]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        clip(sub),
        container.to_ascii_uppercase()
    ))
}

/// `ERR unknown subcommand or wrong number of arguments for '<sub>'. Try <CMD> HELP.`, the
/// reply of commands that parse their own subcommands.
pub fn subcommand_syntax_error(args: &[bytes::Bytes]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        clip(&args[1]),
        String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
    ))
}

/// `ERR Unknown PFDEBUG subcommand '<sub>'`.
pub fn pfdebug_unknown_subcommand(sub: &[u8]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR Unknown PFDEBUG subcommand '{}'",
        no_newlines(c_str(sub, usize::MAX))
    ))
}

/// `ERR Wrong number of arguments for the '<sub>' subcommand` (PFDEBUG).
pub fn pfdebug_wrong_arity(sub: &[u8]) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR Wrong number of arguments for the '{}' subcommand",
        no_newlines(c_str(sub, usize::MAX))
    ))
}

/// `ERR wrong number of arguments for '<name>' command` (name as the user typed it for
/// top-level commands, `container|sub` for subcommands, lowercase).
pub fn wrong_arity(full_name: &str) -> ErrorReply {
    ErrorReply::owned(format!(
        "ERR wrong number of arguments for '{}' command",
        full_name
    ))
}

/// A `%.128s` of an argument: at most 128 bytes, ending at a NUL as C strings do, with CR
/// and LF turned into spaces (Redis maps them so the error stays one protocol line).
pub fn clip(b: &[u8]) -> String {
    no_newlines(c_str(b, 128))
}

fn c_str(b: &[u8], max: usize) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len()).min(max);
    &b[..end]
}

fn no_newlines(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

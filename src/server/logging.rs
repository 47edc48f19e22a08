//! The server log in Redis's line format, `pid:R dd Mon yyyy hh:mm:ss.mmm L message`, where R
//! is the role (`M` primary, `S` replica, `C` before the server is up) and L the level mark
//! (`.` debug, `-` verbose, `*` notice, `#` warning). Lines go to stdout or are appended to
//! `logfile`, filtered by `loglevel`; tools and Redis's test suite read these lines.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Verbose = 1,
    Notice = 2,
    Warning = 3,
}

impl Level {
    fn mark(self) -> char {
        match self {
            Level::Debug => '.',
            Level::Verbose => '-',
            Level::Notice => '*',
            Level::Warning => '#',
        }
    }
}

struct Sink {
    /// Empty: stdout.
    path: String,
}

static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Notice as u8);
static ROLE: AtomicU8 = AtomicU8::new(b'C');
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Sets the destination (`""` = stdout) and the lowest level written. `u8::MAX` = nothing.
pub fn configure(path: &str, min_level: u8) {
    *SINK.lock() = Some(Sink {
        path: path.to_string(),
    });
    MIN_LEVEL.store(min_level, Relaxed);
}

pub fn set_min_level(min_level: u8) {
    MIN_LEVEL.store(min_level, Relaxed);
}

pub fn set_role(role: u8) {
    ROLE.store(role, Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 >= MIN_LEVEL.load(Relaxed)
}

pub fn log(level: Level, msg: &str) {
    if !enabled(level) {
        return;
    }
    let line = format!(
        "{}:{} {} {} {}\n",
        std::process::id(),
        ROLE.load(Relaxed) as char,
        timestamp(),
        level.mark(),
        msg
    );
    write_raw(level, &line);
}

/// Writes text as is (the startup logo), if the level passes the filter.
pub fn write_raw(level: Level, text: &str) {
    if !enabled(level) {
        return;
    }
    let sink = SINK.lock();
    let path = sink.as_ref().map(|s| s.path.as_str()).unwrap_or("");
    if path.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    } else if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(text.as_bytes());
    }
}

/// Local time as `23 Nov 2026 21:00:00.123`.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes only into the `tm` we pass and reads `secs`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&secs, &mut tm) };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

#[macro_export]
macro_rules! log_at {
    ($level:ident, $($arg:tt)*) => {
        if $crate::server::logging::enabled($crate::server::logging::Level::$level) {
            $crate::server::logging::log($crate::server::logging::Level::$level, &format!($($arg)*));
        }
    };
}

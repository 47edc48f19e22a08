//! Small number and text helpers with Redis's exact semantics (`string2ll`, `string2ld`,
//! glob matching), shared by the command families and the config system.

use crate::resp::decode::parse_i64;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stripes per `Counter`. All but the last are owned by one thread at a time; the last is
/// shared by the threads that found none free.
const STRIPES: usize = 32;
const SHARED_STRIPE: usize = STRIPES - 1;

/// One stripe on a cache line of its own.
#[derive(Default, Debug)]
#[repr(align(128))]
struct Stripe(AtomicU64);

/// A statistics counter that many threads add to: each thread adds to its own stripe, so no
/// cache line moves between cores on the hot path; reading sums the stripes. A thread that
/// owns its stripe adds with a plain load and store (no locked instruction: nobody else writes
/// there); one that shares the last stripe adds atomically. The interface mirrors
/// `AtomicU64`'s (the ordering arguments are accepted for that; counts are relaxed).
#[derive(Default, Debug)]
pub struct Counter {
    stripes: [Stripe; STRIPES],
}

/// Which stripes threads own, a bit each.
static CLAIMED: AtomicU64 = AtomicU64::new(0);

/// A thread's hold on a stripe, given back when the thread ends.
struct StripeClaim(usize);

impl StripeClaim {
    fn take() -> StripeClaim {
        let mut claimed = CLAIMED.load(Ordering::Relaxed);
        loop {
            let free = !claimed & ((1u64 << SHARED_STRIPE) - 1);
            if free == 0 {
                return StripeClaim(SHARED_STRIPE);
            }
            let bit = free.trailing_zeros() as usize;
            match CLAIMED.compare_exchange_weak(
                claimed,
                claimed | 1 << bit,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return StripeClaim(bit),
                Err(now) => claimed = now,
            }
        }
    }
}

impl Drop for StripeClaim {
    fn drop(&mut self) {
        if self.0 != SHARED_STRIPE {
            CLAIMED.fetch_and(!(1u64 << self.0), Ordering::Release);
        }
    }
}

fn stripe_index() -> usize {
    thread_local! {
        static CLAIM: StripeClaim = StripeClaim::take();
    }
    // A thread that is ending (its claim already given back) uses the shared stripe.
    CLAIM.try_with(|c| c.0).unwrap_or(SHARED_STRIPE)
}

impl Counter {
    pub fn fetch_add(&self, n: u64, _: Ordering) {
        let i = stripe_index();
        let s = &self.stripes[i].0;
        if i == SHARED_STRIPE {
            s.fetch_add(n, Ordering::Relaxed);
        } else {
            s.store(s.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        }
    }

    /// The total. Stripes may individually wrap below zero (`saturating_sub` takes from the
    /// caller's stripe); the wrapping sum is still the true total.
    pub fn load(&self, _: Ordering) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }

    /// Takes `n` off the total, stopping at zero (the changes a finished save covered).
    pub fn saturating_sub(&self, n: u64) {
        if n >= self.load(Ordering::Relaxed) {
            self.store(0, Ordering::Relaxed);
        } else {
            self.fetch_add(n.wrapping_neg(), Ordering::Relaxed);
        }
    }

    /// Sets the total (CONFIG RESETSTAT): an add racing with it may be lost, or may bring
    /// back the count it was adding to, as with a plain store.
    pub fn store(&self, v: u64, _: Ordering) {
        for s in &self.stripes[1..] {
            s.0.store(0, Ordering::Relaxed);
        }
        self.stripes[0].0.store(v, Ordering::Relaxed);
    }
}

/// The C library's message for an errno (`strerror`), as Redis quotes it in errors and logs.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

pub fn format_i64(i: i64) -> String {
    i.to_string()
}

/// Redis's `string2l`-style integer argument parse (strict, no spaces, no `+`).
pub fn parse_int(b: &[u8]) -> Option<i64> {
    parse_i64(b)
}

/// Parses a double the way Redis's `getDoubleFromObject` / `string2d` accept it: `strtod`
/// syntax, nothing left over, no leading space, not NaN. `inf` and `-inf` are accepted.
pub fn parse_f64(b: &[u8]) -> Option<f64> {
    if b.is_empty() || b.len() > 5000 || b[0].is_ascii_whitespace() {
        return None;
    }
    let s = std::str::from_utf8(b).ok()?;
    let lower = s.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            // strtod also accepts hex floats; Rust's parser does not. Rare enough to skip.
            let t = s.strip_prefix('+').unwrap_or(s);
            if t.starts_with('+') || t.starts_with('-') && s.starts_with('+') {
                return None;
            }
            t.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Glob-style matching with Redis's `stringmatchlen` rules: `*`, `?`, `[...]` with ranges and
/// `^` negation, `\` escapes; `nocase` folds ASCII case.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    glob_inner(pattern, string, nocase, 0, &mut false)
}

/// `skip_longer` is Redis's `skipLongerMatches`: once the rest of a pattern after a `*`
/// matched nowhere in the string, no earlier `*` can help by matching more, so every
/// enclosing `*` gives up at once (this keeps `a*a*a*...b` linear instead of exponential).
fn glob_inner(
    mut p: &[u8],
    mut s: &[u8],
    nocase: bool,
    depth: usize,
    skip_longer: &mut bool,
) -> bool {
    if depth > 1000 {
        return false;
    }
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if glob_inner(&p[1..], s, nocase, depth + 1, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let not = p.first() == Some(&b'^');
                if not {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if p.is_empty() {
                        break;
                    }
                    if p[0] == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if eq(p[0], s[0]) {
                            matched = true;
                        }
                    } else if p[0] == b']' {
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut start, mut end) = (p[0], p[2]);
                        let mut c = s[0];
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        if nocase {
                            start = start.to_ascii_lowercase();
                            end = end.to_ascii_lowercase();
                            c = c.to_ascii_lowercase();
                        }
                        p = &p[2..];
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if eq(p[0], s[0]) {
                        matched = true;
                    }
                    p = &p[1..];
                }
                // An unterminated class ends at the pattern's end, as in Redis.
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if !eq(p[0], s[0]) {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if !eq(c, s[0]) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = p.get(1..).unwrap_or(&[]);
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_is_the_c_library_text() {
        assert_eq!(strerror(28), "No space left on device");
        assert_eq!(strerror(2), "No such file or directory");
    }

    #[test]
    fn counter_sums_the_stripes_of_every_thread() {
        let c = std::sync::Arc::new(Counter::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    (0..1000).for_each(|_| c.fetch_add(1, Ordering::Relaxed))
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.load(Ordering::Relaxed), 4000);
        // Taken from this thread's stripe, which holds nothing: the sum still comes out right.
        c.saturating_sub(1500);
        assert_eq!(c.load(Ordering::Relaxed), 2500);
        c.saturating_sub(9999);
        assert_eq!(c.load(Ordering::Relaxed), 0);
        c.fetch_add(7, Ordering::Relaxed);
        c.store(3, Ordering::Relaxed);
        assert_eq!(c.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn counter_is_exact_with_more_threads_than_stripes() {
        // Twice as many live threads as stripes: the ones left without a stripe of their own
        // share the last one, and no add is lost either way.
        let live = 2 * STRIPES;
        let c = std::sync::Arc::new(Counter::default());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(live));
        let threads: Vec<_> = (0..live)
            .map(|_| {
                let (c, barrier) = (c.clone(), barrier.clone());
                std::thread::spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                    barrier.wait();
                    (0..999).for_each(|_| c.fetch_add(1, Ordering::Relaxed))
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(c.load(Ordering::Relaxed), live as u64 * 1000);
        // Ended threads gave their stripes back: a new thread owns one again.
        let own = std::thread::spawn(stripe_index).join().unwrap();
        assert_ne!(own, SHARED_STRIPE);
    }

    #[test]
    fn nested_stars_that_cannot_match_fail_fast() {
        let key = [b'a'; 40];
        assert!(!glob_match(
            b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
            &key,
            false
        ));
        assert!(glob_match(
            b"a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a",
            &key,
            false
        ));
        assert!(glob_match(b"*b*c", b"xxbyyc", false));
        assert!(!glob_match(b"*b*c", b"xxbyycd", false));
    }

    #[test]
    fn glob_basics() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"h[a-b]llo", b"hbllo", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(!glob_match(b"a\\*b", b"axb", false));
        assert!(glob_match(b"FOO*", b"foobar", true));
        assert!(!glob_match(b"foo", b"foobar", false));
        assert!(glob_match(b"foo*", b"foo", false));
        assert!(glob_match(b"", b"", false));
    }

    #[test]
    fn doubles_parse_like_strtod() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1 "), None);
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(parse_f64(b""), None);
    }
}

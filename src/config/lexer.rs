//! The redis.conf grammar and the command line that feeds it, with Redis 7.0's exact rules:
//! lines split on `\n` and trimmed, `#` comments, arguments split like `sdssplitargs`
//! (double quotes with `\n \r \t \b \a \xHH` escapes, single quotes with `\'`, a closing quote
//! must be followed by a blank), values quoted back like `sdscatrepr`, memory values like
//! `memtoull` (`k`=1000, `kb`=1024, ...), integers like `string2ll` and `strtoll`, and the
//! argv-to-config-text concatenation of `main()` in server.c (`--name value` lines appended
//! after the file and stdin). Pure: no files, no environment.

/// One non-blank, non-comment line of configuration text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number inside the text it came from.
    pub number: usize,
    /// The line trimmed of blanks, as Redis echoes it in its fatal report.
    pub text: String,
    /// The split arguments; the directive name (first) is lowercased.
    pub args: Vec<Vec<u8>>,
}

/// A line whose quotes do not balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbalancedQuotes {
    pub number: usize,
    pub text: String,
}

/// Splits configuration text into directive lines, skipping comments and blank lines.
pub fn parse_lines(text: &str) -> Vec<Result<Line, UnbalancedQuotes>> {
    let mut out = Vec::new();
    for (i, raw) in split_lines(text).into_iter().enumerate() {
        let trimmed = trim_line(raw);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let number = i + 1;
        match split_args(trimmed.as_bytes()) {
            None => out.push(Err(UnbalancedQuotes {
                number,
                text: trimmed.to_string(),
            })),
            Some(args) if args.is_empty() => {}
            Some(mut args) => {
                args[0].make_ascii_lowercase();
                out.push(Ok(Line {
                    number,
                    text: trimmed.to_string(),
                    args,
                }));
            }
        }
    }
    out
}

/// `sdssplitlen(text, "\n")`: empty text has no lines; a trailing newline yields a final
/// empty line.
pub fn split_lines(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\n').collect()
}

/// `sdstrim(line, " \t\r\n")`.
pub fn trim_line(line: &str) -> &str {
    line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `sdssplitargs`: `None` on unbalanced quotes (or a closing quote glued to more text).
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_c_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(out);
        }
        let (token, next) = split_one_token(line, p)?;
        out.push(token);
        p = next;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Quote {
    None,
    Double,
    Single,
}

/// Reads one token starting at `p`; returns it and the position after it.
fn split_one_token(line: &[u8], mut p: usize) -> Option<(Vec<u8>, usize)> {
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut cur = Vec::new();
    let mut quote = Quote::None;
    loop {
        let c = at(p);
        match quote {
            Quote::Double => {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && hex(at(p + 2)).is_some()
                    && hex(at(p + 3)).is_some()
                {
                    cur.push(hex(at(p + 2))? * 16 + hex(at(p + 3))?);
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    cur.push(unescape(at(p)));
                } else if c == b'"' {
                    return closing_quote(line, p, cur);
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            }
            Quote::Single => {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    return closing_quote(line, p, cur);
                } else if c == 0 {
                    return None;
                } else {
                    cur.push(c);
                }
            }
            Quote::None => match c {
                b' ' | b'\n' | b'\r' | b'\t' | 0 => return Some((cur, (p + 1).min(line.len()))),
                b'"' => quote = Quote::Double,
                b'\'' => quote = Quote::Single,
                _ => cur.push(c),
            },
        }
        p += 1;
    }
}

/// A closing quote must be followed by a blank or the end of the line.
fn closing_quote(line: &[u8], p: usize, cur: Vec<u8>) -> Option<(Vec<u8>, usize)> {
    match line.get(p + 1) {
        Some(&n) if !is_c_space(n) => None,
        Some(_) => Some((cur, p + 2)),
        None => Some((cur, p + 1)),
    }
}

fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => 0x08,
        b'a' => 0x07,
        other => other,
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// `sdscatrepr`: a double-quoted, escaped rendering that `split_args` reads back.
pub fn repr(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

/// `memtoull`: digits followed by an optional case-insensitive unit (`b`, `k`=1000,
/// `kb`=1024, `m`, `mb`, `g`, `gb`). Like Redis, an empty digit string reads as 0, an
/// overflowing one saturates, and the multiplication wraps.
pub fn memtoull(s: &[u8]) -> Option<u64> {
    if s.first() == Some(&b'-') {
        return None;
    }
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let unit = s[digits..].to_ascii_lowercase();
    let mul: u64 = match unit.as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits >= 128 {
        return None;
    }
    let value = s[..digits].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some(value.unwrap_or(u64::MAX).wrapping_mul(mul))
}

/// `string2ll`: strict decimal (no blanks, no `+`, no leading zeros), fits in an i64.
pub fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// What C's `strtoll` reports: the value (saturated on overflow), whether the whole
/// string was consumed (`*endptr == '\0'`), and whether it overflowed (`ERANGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrToLl {
    pub value: i64,
    pub all_consumed: bool,
    pub overflow: bool,
}

/// `strtoll(s, &end, base)` for base 8 or 10: leading blanks and a sign are accepted; no
/// digits at all yields 0 with nothing consumed (so an empty string counts as consumed).
pub fn strtoll(s: &[u8], base: u32) -> StrToLl {
    let mut p = s.iter().take_while(|&&b| is_c_space(b)).count();
    let negative = match s.get(p) {
        Some(b'-') => {
            p += 1;
            true
        }
        Some(b'+') => {
            p += 1;
            false
        }
        _ => false,
    };
    let start = p;
    let mut mag: u128 = 0;
    while let Some(d) = s.get(p).and_then(|&c| (c as char).to_digit(base)) {
        mag = (mag * u128::from(base) + u128::from(d)).min(u128::from(u64::MAX) + 1);
        p += 1;
    }
    if p == start {
        return StrToLl {
            value: 0,
            all_consumed: s.is_empty(),
            overflow: false,
        };
    }
    let limit = if negative {
        i64::MAX as u128 + 1
    } else {
        i64::MAX as u128
    };
    let overflow = mag > limit;
    let mag = mag.min(limit);
    let value = if negative {
        (mag as i128).wrapping_neg() as i64
    } else {
        mag as i64
    };
    StrToLl {
        value,
        all_consumed: p == s.len(),
        overflow,
    }
}

/// `yesnotoi`: case-insensitive `yes` / `no`.
pub fn yes_no(s: &[u8]) -> Option<bool> {
    if s.eq_ignore_ascii_case(b"yes") {
        Some(true)
    } else if s.eq_ignore_ascii_case(b"no") {
        Some(false)
    } else {
        None
    }
}

/// The command line after the program name, as `main()` in server.c reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandLine {
    /// The first argument when it does not start with `-` (as given, not yet absolute).
    pub config_file: Option<String>,
    /// A lone `-` first or last: append standard input after the file.
    pub config_from_stdin: bool,
    /// The `--name value` options rendered as config lines, parsed after file and stdin.
    pub options: String,
}

/// Turns `argv` (without the program name) into a file name, a stdin flag and options text:
/// each `--name` starts a new line, each following argument is appended quoted, and
/// `--save` with no value becomes `save ""`.
pub fn parse_command_line(args: &[String]) -> CommandLine {
    let mut cl = CommandLine::default();
    let mut j = 0;
    if let Some(first) = args.first() {
        if !first.starts_with('-') {
            cl.config_file = Some(first.clone());
            j = 1;
        }
    }
    let mut handled_last = true;
    while j < args.len() {
        let arg = args[j].as_str();
        let last = j + 1 == args.len();
        if arg == "-" && (j == 0 || last) {
            cl.config_from_stdin = true;
        } else if handled_last && arg.starts_with("--") {
            handled_last = push_option_name(&mut cl.options, args, j);
        } else {
            cl.options.push_str(&repr(arg.as_bytes()));
            cl.options.push(' ');
            handled_last = true;
        }
        j += 1;
    }
    cl
}

/// Appends `--name` (at `args[j]`) as the start of a new line; returns whether the option
/// already has its value (so a following `--x` starts a new option rather than a value).
fn push_option_name(options: &mut String, args: &[String], j: usize) -> bool {
    let arg = args[j].as_str();
    if !options.is_empty() {
        options.push('\n');
    }
    options.push_str(&arg[2..]);
    options.push(' ');
    let name_only = split_args(arg.as_bytes()).map_or(0, |v| v.len()) == 1;
    if !name_only {
        return true;
    }
    let last = j + 1 == args.len();
    let next_is_option = !last && args[j + 1].starts_with("--");
    let is = |name: &str| arg.eq_ignore_ascii_case(name);
    if is("--save") && (next_is_option || last) {
        // `--save` followed by nothing, or by another option, means `save ""`.
        options.push_str("\"\"");
        return next_is_option;
    }
    if is("--sentinel") && next_is_option {
        return true;
    }
    false
}

/// The text Redis parses at startup: the file, then stdin, then a newline and the options.
pub fn startup_text(file: &str, stdin: Option<&str>, options: &str) -> String {
    let mut text = String::with_capacity(file.len() + options.len() + 1);
    text.push_str(file);
    if let Some(s) = stdin {
        text.push_str(s);
    }
    text.push('\n');
    text.push_str(options);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Option<Vec<String>> {
        split_args(line.as_bytes()).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect()
        })
    }

    fn argv(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn plain_words_split_on_blanks() {
        assert_eq!(args("  save 900   1 "), Some(argv(&["save", "900", "1"])));
        assert_eq!(args(""), Some(vec![]));
    }

    #[test]
    fn double_quotes_unescape() {
        assert_eq!(
            args(r#"a "x\ny\t\x41\"z""#),
            Some(argv(&["a", "x\ny\tA\"z"]))
        );
        assert_eq!(args(r#""\b\a\q""#).unwrap()[0].as_bytes(), b"\x08\x07q");
        assert_eq!(args(r#""""#), Some(argv(&[""])));
    }

    #[test]
    fn single_quotes_keep_backslashes_except_quote() {
        assert_eq!(args(r"'a\'b\n'"), Some(argv(&[r"a'b\n"])));
    }

    #[test]
    fn quotes_may_start_inside_a_word() {
        assert_eq!(args(r#"port 1"2""#), Some(argv(&["port", "12"])));
    }

    #[test]
    fn unbalanced_or_glued_quotes_are_errors() {
        assert_eq!(args(r#"port "6379"#), None);
        assert_eq!(args(r#""a"b"#), None);
        assert_eq!(args("'a'b"), None);
        assert_eq!(args("'abc"), None);
    }

    #[test]
    fn repr_round_trips_through_split_args() {
        let raw = b"a \"b\\c\n\x01\xff'".to_vec();
        let quoted = repr(&raw);
        assert_eq!(quoted, r#""a \"b\\c\n\x01\xff'""#);
        assert_eq!(split_args(quoted.as_bytes()), Some(vec![raw]));
    }

    #[test]
    fn lines_skip_comments_and_lowercase_the_name() {
        let lines = parse_lines("# c\n\n  PORT 7000 \r\n\t#x\nsave \"unbalanced\n");
        assert_eq!(lines.len(), 2);
        let first = lines[0].as_ref().unwrap();
        assert_eq!((first.number, first.text.as_str()), (3, "PORT 7000"));
        assert_eq!(first.args, vec![b"port".to_vec(), b"7000".to_vec()]);
        assert_eq!(
            lines[1],
            Err(UnbalancedQuotes {
                number: 5,
                text: "save \"unbalanced".into()
            })
        );
    }

    #[test]
    fn memory_units_follow_memtoull() {
        assert_eq!(memtoull(b"1k"), Some(1000));
        assert_eq!(memtoull(b"1KB"), Some(1024));
        assert_eq!(memtoull(b"2m"), Some(2_000_000));
        assert_eq!(memtoull(b"2Mb"), Some(2 * 1024 * 1024));
        assert_eq!(memtoull(b"3g"), Some(3_000_000_000));
        assert_eq!(memtoull(b"1gB"), Some(1 << 30));
        assert_eq!(memtoull(b"7b"), Some(7));
        assert_eq!(memtoull(b""), Some(0));
        assert_eq!(memtoull(b"kb"), Some(0));
        assert_eq!(memtoull(b"99999999999999999999999"), Some(u64::MAX));
        assert_eq!(
            memtoull(b"18446744073709551616kb"),
            Some(u64::MAX.wrapping_mul(1024))
        );
        assert_eq!(memtoull(b"-1"), None);
        assert_eq!(memtoull(b"1x"), None);
        assert_eq!(memtoull(b"1 kb"), None);
    }

    #[test]
    fn string2ll_is_strict() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-12"), Some(-12));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"01"[..],
            b"+1",
            b" 1",
            b"-0",
            b"",
            b"-",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn strtoll_reports_leftovers_and_overflow() {
        assert_eq!(
            strtoll(b" +12", 10),
            StrToLl {
                value: 12,
                all_consumed: true,
                overflow: false
            }
        );
        assert!(!strtoll(b"12x", 10).all_consumed);
        assert_eq!(
            strtoll(b"", 10),
            StrToLl {
                value: 0,
                all_consumed: true,
                overflow: false
            }
        );
        assert!(!strtoll(b"x", 10).all_consumed);
        assert_eq!(strtoll(b"777", 8).value, 511);
        let big = strtoll(b"99999999999999999999", 10);
        assert_eq!((big.value, big.overflow), (i64::MAX, true));
    }

    #[test]
    fn yes_no_is_case_insensitive() {
        assert_eq!(yes_no(b"YES"), Some(true));
        assert_eq!(yes_no(b"No"), Some(false));
        assert_eq!(yes_no(b"y"), None);
    }

    #[test]
    fn argv_file_then_options_each_on_a_line() {
        let cl = parse_command_line(&argv(&[
            "/etc/r.conf",
            "--port",
            "7000",
            "--bind",
            "a",
            "b",
        ]));
        assert_eq!(cl.config_file.as_deref(), Some("/etc/r.conf"));
        assert!(!cl.config_from_stdin);
        assert_eq!(cl.options, "port \"7000\" \nbind \"a\" \"b\" ");
    }

    #[test]
    fn argv_save_without_value_means_empty_save() {
        assert_eq!(
            parse_command_line(&argv(&["--save", "--port", "1"])).options,
            "save \"\"\nport \"1\" "
        );
        assert_eq!(
            parse_command_line(&argv(&["--port", "1", "--save"])).options,
            "port \"1\" \nsave \"\""
        );
        assert_eq!(
            parse_command_line(&argv(&["--save", ""])).options,
            "save \"\" "
        );
    }

    #[test]
    fn argv_option_without_value_swallows_next_dashes() {
        let cl = parse_command_line(&argv(&["--port", "1", "--port", "--port", "2"]));
        assert_eq!(cl.options, "port \"1\" \nport \"--port\" \"2\" ");
    }

    #[test]
    fn argv_name_and_value_in_one_argument() {
        assert_eq!(
            parse_command_line(&argv(&["--port 7000", "--x"])).options,
            "port 7000 \nx "
        );
    }

    #[test]
    fn argv_lone_dash_first_or_last_reads_stdin() {
        let cl = parse_command_line(&argv(&["-", "--port", "1"]));
        assert!(cl.config_from_stdin && cl.config_file.is_none());
        let cl = parse_command_line(&argv(&["f.conf", "--port", "1", "-"]));
        assert!(cl.config_from_stdin);
        assert_eq!(cl.options, "port \"1\" ");
        let cl = parse_command_line(&argv(&["f.conf", "--bind", "-", "x"]));
        assert!(!cl.config_from_stdin);
        assert_eq!(cl.options, "bind \"-\" \"x\" ");
    }

    #[test]
    fn startup_text_puts_options_after_a_newline() {
        assert_eq!(
            startup_text("port 1\n", Some("hz 5\n"), "port 2 "),
            "port 1\nhz 5\n\nport 2 "
        );
    }
}

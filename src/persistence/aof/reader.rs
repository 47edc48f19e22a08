//! Reads commands back from an AOF file (base in RESP form, or an incremental file): arrays of
//! bulk strings, with `#` annotation lines allowed between commands, as Redis's
//! `loadSingleAppendOnlyFile` reads them. A file that stops inside a command is `Truncated`
//! (with the offset of the last complete command, where Redis may cut it); anything else that
//! is not a command is `BadFormat`.

use bytes::Bytes;

/// Why reading stopped before the end of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The input ends inside a command.
    Truncated,
    /// Bytes that are not a command where one must start.
    BadFormat,
}

/// Longest argument accepted: Redis's own `proto-max-bulk-len` ceiling for any file.
const MAX_ARG_BYTES: u64 = 512 * 1024 * 1024 * 8;

/// One command read from `buf` at `pos`, with the offset just after it. `Ok(None)` at the
/// clean end of input.
pub fn next_command(buf: &[u8], mut pos: usize) -> Result<Option<(Vec<Bytes>, usize)>, ReadError> {
    loop {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'#' {
            break;
        }
        // An annotation runs to the end of its line.
        match find_crlf(buf, pos) {
            Some(end) => pos = end + 2,
            None => return Err(ReadError::Truncated),
        }
    }
    if buf[pos] != b'*' {
        return Err(ReadError::BadFormat);
    }
    let (argc, mut pos) = number_line(buf, pos + 1)?;
    if argc < 1 {
        return Err(ReadError::BadFormat);
    }
    // Each argument takes at least 6 bytes ("$0\r\n\r\n"): no allocation beyond the input.
    let remaining = (buf.len() - pos) as u64;
    let mut argv = Vec::with_capacity(argc.min(remaining / 6 + 1) as usize);
    for _ in 0..argc {
        if pos >= buf.len() {
            return Err(ReadError::Truncated);
        }
        if buf[pos] != b'$' {
            return Err(ReadError::BadFormat);
        }
        let (len, next) = number_line(buf, pos + 1)?;
        if len > MAX_ARG_BYTES {
            return Err(ReadError::BadFormat);
        }
        let end = next.checked_add(len as usize).ok_or(ReadError::BadFormat)?;
        if end + 2 > buf.len() {
            return Err(ReadError::Truncated);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(ReadError::BadFormat);
        }
        argv.push(Bytes::copy_from_slice(&buf[next..end]));
        pos = end + 2;
    }
    Ok(Some((argv, pos)))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// A decimal count ending with CRLF, as after `*` or `$`.
fn number_line(buf: &[u8], pos: usize) -> Result<(u64, usize), ReadError> {
    let end = match find_crlf(buf, pos) {
        Some(end) => end,
        None if buf.len() - pos > 20 => return Err(ReadError::BadFormat),
        None => return Err(ReadError::Truncated),
    };
    let text = &buf[pos..end];
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
        return Err(ReadError::BadFormat);
    }
    let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok((n, end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Result<Vec<Vec<Bytes>>, (ReadError, usize)> {
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            match next_command(buf, pos) {
                Ok(Some((argv, next))) => {
                    out.push(argv);
                    pos = next;
                }
                Ok(None) => return Ok(out),
                Err(e) => return Err((e, pos)),
            }
        }
    }

    #[test]
    fn commands_and_annotations_are_read_in_order() {
        let file = b"#TS:1795464584\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$0\r\n\r\n";
        let cmds = all(file).unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1], vec!["set", "k", ""]);
    }

    #[test]
    fn a_file_cut_inside_a_command_is_truncated_after_the_last_whole_one() {
        let file = b"*1\r\n$4\r\nping\r\n*2\r\n$3\r\nset\r\n$1\r\nk";
        assert_eq!(all(file), Err((ReadError::Truncated, 14)));
        assert_eq!(all(b"*1\r\n$4\r\npi"), Err((ReadError::Truncated, 0)));
        assert_eq!(all(b"*1"), Err((ReadError::Truncated, 0)));
    }

    #[test]
    fn garbage_where_a_command_starts_is_a_format_error() {
        assert_eq!(all(b"set k v\r\n"), Err((ReadError::BadFormat, 0)));
        assert_eq!(all(b"*1\r\n+ping\r\n"), Err((ReadError::BadFormat, 0)));
        assert_eq!(all(b"*0\r\n"), Err((ReadError::BadFormat, 0)));
        assert_eq!(all(b"*1\r\n$4\r\npingXX"), Err((ReadError::BadFormat, 0)));
        assert_eq!(
            all(b"*99999999999999999999\r\n"),
            Err((ReadError::BadFormat, 0))
        );
    }

    #[test]
    fn hostile_counts_never_allocate_beyond_the_input() {
        let file = b"*9999999999\r\n$1\r\na\r\n";
        assert_eq!(all(file), Err((ReadError::Truncated, 0)));
    }
}

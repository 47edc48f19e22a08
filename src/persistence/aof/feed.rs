//! The AOF buffer: propagated commands as RESP arrays, each preceded by a `SELECT` when its
//! database differs from the previous command's, waiting for the server to write them to the
//! current incremental file before the replies of the commands that produced them go out
//! (Redis's `aof_buf`, written in `beforeSleep`).

use bytes::Bytes;

#[derive(Debug, Default)]
pub struct Feed {
    buf: Vec<u8>,
    /// The database the file last selected; None forces a SELECT (a new incremental file).
    selected_db: Option<usize>,
}

impl Feed {
    /// Appends one command executed in `db`.
    pub fn command(&mut self, db: usize, argv: &[Bytes]) {
        if self.selected_db != Some(db) {
            let db_arg = db.to_string();
            write_command(&mut self.buf, &[b"SELECT", db_arg.as_bytes()]);
            self.selected_db = Some(db);
        }
        write_command(&mut self.buf, argv);
    }

    /// The next command starts a new file: it begins with a SELECT.
    pub fn restart(&mut self) {
        self.selected_db = None;
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Takes the pending bytes for writing.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Appends `argv` as a RESP array of bulk strings.
pub fn write_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_select_precedes_the_first_command_and_every_change_of_database() {
        let mut f = Feed::default();
        f.command(0, &[Bytes::from_static(b"set"), Bytes::from_static(b"k")]);
        f.command(0, &[Bytes::from_static(b"del"), Bytes::from_static(b"k")]);
        f.command(3, &[Bytes::from_static(b"del"), Bytes::from_static(b"k")]);
        assert_eq!(
            f.take(),
            b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*2\r\n$3\r\nset\r\n$1\r\nk\r\n\
*2\r\n$3\r\ndel\r\n$1\r\nk\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$3\r\ndel\r\n$1\r\nk\r\n"
        );
        assert!(f.is_empty());
        f.restart();
        f.command(3, &[Bytes::from_static(b"ping")]);
        assert!(f.take().starts_with(b"*2\r\n$6\r\nSELECT"));
    }
}

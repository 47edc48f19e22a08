//! The AOF manifest (`appendonly.aof.manifest`): one line per file, `file <name> seq <n> type
//! <b|h|i>`, naming the base file, history files awaiting deletion, and the incremental files
//! in order. Parsing follows Redis 7.0's `aofLoadManifestFromFile` rule by rule, with its error
//! texts (any of them stops startup); rendering writes the base, then history, then
//! incremental lines, quoting a name only when it needs it.

use crate::config::lexer::{repr, split_args};

/// Longest manifest line Redis reads.
const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Base,
    History,
    Incr,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incr => 'i',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub history: Vec<AofFile>,
    pub incrs: Vec<AofFile>,
    /// Sequence number of the current base (0 before the first).
    pub base_seq: u64,
    /// Sequence number of the last incremental file (0 before the first).
    pub incr_seq: u64,
}

impl Manifest {
    /// Reads a manifest; the error is Redis's text for what is wrong.
    pub fn parse(text: &[u8]) -> Result<Manifest, &'static str> {
        let mut m = Manifest::default();
        let mut lines = 0;
        for raw in text.split_inclusive(|&b| b == b'\n') {
            lines += 1;
            if raw.first() == Some(&b'#') {
                continue;
            }
            if raw.len() > MAX_LINE || raw.last() != Some(&b'\n') {
                return Err("The AOF manifest file contains too long line");
            }
            m.add(parse_line(raw)?)?;
        }
        if lines == 0 {
            return Err("Found an empty AOF manifest");
        }
        Ok(m)
    }

    fn add(&mut self, file: AofFile) -> Result<(), &'static str> {
        match file.kind {
            FileKind::Base => {
                if self.base.is_some() {
                    return Err("Found duplicate base file information");
                }
                self.base_seq = file.seq;
                self.base = Some(file);
            }
            FileKind::History => self.history.push(file),
            FileKind::Incr => {
                if file.seq <= self.incr_seq {
                    return Err("Found a non-monotonic sequence number");
                }
                self.incr_seq = file.seq;
                self.incrs.push(file);
            }
        }
        Ok(())
    }

    /// The manifest text: base, history, then incremental files.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let name = if needs_quoting(&f.name) {
                repr(f.name.as_bytes())
            } else {
                f.name.clone()
            };
            out.push_str(&format!(
                "file {name} seq {} type {}\n",
                f.seq,
                f.kind.letter()
            ));
        }
        out
    }

    /// Files to load, in order: the base, then every incremental file.
    pub fn load_order(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs)
    }

    /// Adds the next incremental file and returns its name.
    pub fn new_incr(&mut self, base_name: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{base_name}.{}.incr.aof", self.incr_seq);
        self.incrs.push(AofFile {
            name: name.clone(),
            seq: self.incr_seq,
            kind: FileKind::Incr,
        });
        name
    }

    /// Names the next base file (`.rdb` for an RDB image) without recording it yet.
    pub fn next_base_name(&self, base_name: &str, rdb: bool) -> (String, u64) {
        let seq = self.base_seq + 1;
        let ext = if rdb { "rdb" } else { "aof" };
        (format!("{base_name}.{seq}.base.{ext}"), seq)
    }

    /// A rewrite finished: `base` is the new base, and every incremental file but the last
    /// (which took the writes made since the rewrite started) becomes history, as does the old
    /// base.
    pub fn install_base(&mut self, name: String, seq: u64) {
        if let Some(mut old) = self.base.take() {
            old.kind = FileKind::History;
            self.history.push(old);
        }
        let keep = self.incrs.pop();
        for mut f in self.incrs.drain(..) {
            f.kind = FileKind::History;
            self.history.push(f);
        }
        self.incrs.extend(keep);
        self.base_seq = seq;
        self.base = Some(AofFile {
            name,
            seq,
            kind: FileKind::Base,
        });
    }

    /// Forgets the history files (once they are deleted) and returns their names.
    pub fn take_history(&mut self) -> Vec<String> {
        self.history.drain(..).map(|f| f.name).collect()
    }
}

fn parse_line(raw: &[u8]) -> Result<AofFile, &'static str> {
    const INVALID: &str = "Invalid AOF manifest file format";
    let line = trim(raw);
    if line.is_empty() {
        return Err(INVALID);
    }
    let args = split_args(line).ok_or(INVALID)?;
    if args.len() < 6 || args.len() % 2 != 0 {
        return Err(INVALID);
    }
    let (mut name, mut seq, mut kind) = (None, 0u64, None);
    for pair in args.chunks(2) {
        let (key, value) = (&pair[0], &pair[1]);
        if key.eq_ignore_ascii_case(b"file") {
            let text = String::from_utf8_lossy(value).into_owned();
            if text.contains('/') || text.contains('\\') {
                return Err("File can't be a path, just a filename");
            }
            name = Some(text);
        } else if key.eq_ignore_ascii_case(b"seq") {
            seq = atoll(value);
        } else if key.eq_ignore_ascii_case(b"type") {
            kind = value.first().copied();
        }
    }
    let (Some(name), Some(kind)) = (name, kind) else {
        return Err(INVALID);
    };
    if seq == 0 || name.is_empty() {
        return Err(INVALID);
    }
    let kind = match kind {
        b'b' => FileKind::Base,
        b'h' => FileKind::History,
        b'i' => FileKind::Incr,
        _ => return Err("Unknown AOF file type"),
    };
    Ok(AofFile { name, seq, kind })
}

fn trim(raw: &[u8]) -> &[u8] {
    let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let start = raw.iter().position(|b| !blank(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !blank(b)).map_or(start, |e| e + 1);
    &raw[start..end]
}

/// C's `atoll` as the manifest reader uses it: leading digits, anything else ignored, and a
/// negative number is not a valid sequence.
fn atoll(text: &[u8]) -> u64 {
    text.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// Redis's `sdsneedsrepr`: quote names with blanks, quotes, backslashes or unprintables.
fn needs_quoting(name: &str) -> bool {
    name.bytes()
        .any(|b| b == b'\\' || b == b'"' || !(0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER_START: &str =
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n";

    #[test]
    fn the_manifest_written_at_first_start_round_trips() {
        let m = Manifest::parse(AFTER_START.as_bytes()).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!((m.base_seq, m.incr_seq), (1, 1));
        assert_eq!(m.render(), AFTER_START);
    }

    #[test]
    fn a_rewrite_turns_the_old_base_and_finished_incrs_into_history() {
        let mut m = Manifest::parse(AFTER_START.as_bytes()).unwrap();
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
        let (name, seq) = m.next_base_name("appendonly.aof", true);
        m.install_base(name, seq);
        assert_eq!(
            m.render(),
            "file appendonly.aof.2.base.rdb seq 2 type b\n\
file appendonly.aof.1.base.rdb seq 1 type h\n\
file appendonly.aof.1.incr.aof seq 1 type h\n\
file appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        assert_eq!(m.take_history().len(), 2);
        assert_eq!(m.load_order().count(), 2);
    }

    #[test]
    fn malformed_manifests_get_redis_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "Found an empty AOF manifest"),
            ("\n", "Invalid AOF manifest file format"),
            ("file a seq 1\n", "Invalid AOF manifest file format"),
            ("file a seq 0 type b\n", "Invalid AOF manifest file format"),
            (
                "file a/b seq 1 type b\n",
                "File can't be a path, just a filename",
            ),
            ("file a seq 1 type x\n", "Unknown AOF file type"),
            (
                "file a seq 1 type b\nfile b seq 2 type b\n",
                "Found duplicate base file information",
            ),
            (
                "file a seq 2 type i\nfile b seq 2 type i\n",
                "Found a non-monotonic sequence number",
            ),
            (
                "file a seq 1 type b",
                "The AOF manifest file contains too long line",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Manifest::parse(text.as_bytes()), Err(*want), "{text:?}");
        }
    }

    #[test]
    fn comments_and_unknown_pairs_are_skipped_and_odd_names_are_quoted() {
        let m = Manifest::parse(b"# note\nfile \"a b\" seq 3 type i extra x\n").unwrap();
        assert_eq!(m.incrs[0].name, "a b");
        assert_eq!(m.render(), "file \"a b\" seq 3 type i\n");
    }
}

//! Architecture checks that read the source: the pure modules (slot, resp, config, keyspace,
//! commands, replication, persistence, util) never name tokio, sockets, files, the wall or
//! monotonic clock, or a thread RNG — time and randomness come in as arguments, and only
//! `server/` does I/O.

use std::path::Path;

const PURE: &[&str] = &[
    "src/acl.rs",
    "src/acl",
    "src/slot.rs",
    "src/util.rs",
    "src/resp",
    "src/config",
    "src/keyspace",
    "src/commands",
    "src/replication",
    "src/persistence",
    "src/cluster",
    "src/cli/plan",
    "src/cli/nodes.rs",
];

const FORBIDDEN: &[&str] = &[
    "tokio",
    "std::net",
    "std::fs",
    "Instant::now",
    "SystemTime::now",
    "thread_rng",
    "rand::random",
];

fn rust_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn pure_modules_do_no_io_and_read_no_clock() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for p in PURE {
        rust_files(&root.join(p), &mut files);
    }
    assert!(files.len() > 10, "pure module list looks wrong: {files:?}");
    let mut offences = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in FORBIDDEN {
                if code.contains(word) {
                    offences.push(format!("{}:{}: names `{word}`", f.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "pure modules must not do I/O:\n{}",
        offences.join("\n")
    );
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! paragraph: {missing:?}"
    );
}

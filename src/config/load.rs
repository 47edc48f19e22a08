//! Startup configuration: the command line and config file(s) turned into a `Config`, as
//! redis-server 7.0.15 does it (`main()` then `loadServerConfig`): the file, then stdin if
//! asked, then the `--option value` lines, parsed as one text, so later lines override
//! earlier ones and errors on the command line are numbered as lines of that text;
//! `include` loads another file as a text of its own. Any error is fatal and reported with
//! Redis's exact `*** FATAL CONFIG FILE ERROR ***` text. Files are read through a
//! caller-supplied closure, so this module does no I/O of its own.

use super::lexer::{parse_command_line, parse_lines, split_args, startup_text, Line};
use super::special::SetCtx;
use super::table::{self, flags, Config, FileLine, FileOnly, Kind, RenameCommand};

/// The Redis version named in fatal reports.
const REDIS_VERSION: &str = "7.0.15";

/// Includes nested deeper than this are refused (Redis would recurse until it crashes).
const MAX_INCLUDE_DEPTH: usize = 64;

/// The configuration the server starts with.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The config file named on the command line, made absolute (CONFIG REWRITE's target).
    pub config_file: Option<String>,
}

/// Why the server must not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FatalConfigError {
    /// A bad directive: Redis's `FATAL CONFIG FILE ERROR` report. `line` is the line number
    /// and trimmed text, absent for checks made after the whole text was read.
    Report {
        line: Option<(usize, String)>,
        reason: String,
    },
    /// A config file (or an included one) could not be read. Redis logs this as a warning
    /// log line rather than a report.
    CantOpen { path: String, reason: String },
}

impl FatalConfigError {
    fn at(line: &Line, reason: impl Into<String>) -> FatalConfigError {
        FatalConfigError::Report {
            line: Some((line.number, line.text.clone())),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for FatalConfigError {
    /// Exactly what redis-server prints to stderr before exiting with status 1 (for
    /// `CantOpen`, the message of its log line).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FatalConfigError::Report { line, reason } => {
                write!(
                    f,
                    "\n*** FATAL CONFIG FILE ERROR (Redis {REDIS_VERSION}) ***\n"
                )?;
                if let Some((number, text)) = line {
                    write!(
                        f,
                        "Reading the configuration file, at line {number}\n>>> '{text}'\n"
                    )?;
                }
                writeln!(f, "{reason}")
            }
            FatalConfigError::CantOpen { path, reason } => {
                writeln!(f, "Fatal error, can't open config file '{path}': {reason}")
            }
        }
    }
}

impl std::error::Error for FatalConfigError {}

/// Reads the configuration from `argv` (the arguments after the program name): an optional
/// config file first, `-` (first or last) for stdin, then `--directive value...` options.
/// `read_file` gets absolute paths and `include` arguments as written; for an `include`
/// with a glob pattern it should return the matching files concatenated (empty if none).
pub fn load(
    argv: &[String],
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
    stdin: &dyn Fn() -> String,
) -> Result<LoadedConfig, FatalConfigError> {
    let mut loader = Loader {
        config: Config::default(),
        read_file,
        ctx: SetCtx::default(),
    };
    if argv.is_empty() {
        return Ok(LoadedConfig {
            config: loader.config,
            config_file: None,
        });
    }
    let command_line = parse_command_line(argv);
    let config_file = command_line.config_file.as_deref().map(absolute_path);
    let file_text = match &config_file {
        Some(path) => loader.read(path)?,
        None => String::new(),
    };
    let stdin_text = command_line.config_from_stdin.then(stdin);
    loader.load_text(
        &startup_text(&file_text, stdin_text.as_deref(), &command_line.options),
        0,
    )?;
    Ok(LoadedConfig {
        config: loader.config,
        config_file,
    })
}

/// Parses configuration text alone (no includes), over the defaults.
#[cfg(test)]
pub(crate) fn load_text(text: &str) -> Result<Config, FatalConfigError> {
    let no_files = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    let mut loader = Loader {
        config: Config::default(),
        read_file: &no_files,
        ctx: SetCtx::default(),
    };
    loader.load_text(text, 0)?;
    Ok(loader.config)
}

struct Loader<'a> {
    config: Config,
    read_file: &'a dyn Fn(&str) -> std::io::Result<String>,
    ctx: SetCtx,
}

impl Loader<'_> {
    fn read(&self, path: &str) -> Result<String, FatalConfigError> {
        (self.read_file)(path).map_err(|e| FatalConfigError::CantOpen {
            path: path.to_string(),
            reason: strerror(&e),
        })
    }

    /// `loadServerConfigFromString`: every line in order, then the whole-text checks.
    fn load_text(&mut self, text: &str, depth: usize) -> Result<(), FatalConfigError> {
        self.ctx.reading_file = true;
        for line in parse_lines(text) {
            let line = line.map_err(|u| FatalConfigError::Report {
                line: Some((u.number, u.text)),
                reason: "Unbalanced quotes in configuration line".into(),
            })?;
            self.directive(&line, depth)?;
        }
        // Redis clears its "reading a file" flag when any text (an include too) is done.
        self.ctx.reading_file = false;
        if self.config.cluster_enabled && self.config.replicaof.is_some() {
            let reason = "replicaof directive not allowed in cluster mode".into();
            return Err(FatalConfigError::Report { line: None, reason });
        }
        Ok(())
    }

    fn directive(&mut self, line: &Line, depth: usize) -> Result<(), FatalConfigError> {
        let args = &line.args;
        match table::lookup(&args[0]) {
            Some((d, _)) if d.is_runtime() => {
                let multi = d.has(flags::MULTI_ARG);
                if !multi && args.len() != 2 {
                    return Err(FatalConfigError::at(line, "wrong number of arguments"));
                }
                let values = if multi && args.len() == 2 && !args[1].is_empty() {
                    split_args(&args[1]).unwrap_or_default()
                } else {
                    args[1..].to_vec()
                };
                self.config
                    .apply_args(d, &values, &mut self.ctx)
                    .map_err(|e| FatalConfigError::at(line, e))?;
                Ok(())
            }
            Some((d, _)) => match d.kind {
                Kind::FileOnly(kind) => self.file_only(kind, line, depth),
                _ => Err(FatalConfigError::at(
                    line,
                    "Bad directive or wrong number of arguments",
                )),
            },
            None => self.unknown(line),
        }
    }

    fn file_only(
        &mut self,
        kind: FileOnly,
        line: &Line,
        depth: usize,
    ) -> Result<(), FatalConfigError> {
        let args = &line.args;
        let text = |a: &[u8]| String::from_utf8_lossy(a).into_owned();
        match (kind, args.len()) {
            (FileOnly::Deprecated, 2) => {}
            (FileOnly::Include, 2) => self.include(line, &text(&args[1]), depth)?,
            (FileOnly::RenameCommand, 3) => self.config.rename_commands.push(RenameCommand {
                from: text(&args[1]),
                to: text(&args[2]),
                line: line.number,
                line_text: line.text.clone(),
            }),
            (FileOnly::User, n) if n >= 2 => self.config.users.push(file_line(line)),
            (FileOnly::LoadModule, n) if n >= 2 => self.config.load_modules.push(file_line(line)),
            (FileOnly::Sentinel, 1) => {}
            (FileOnly::Sentinel, _) => {
                return Err(FatalConfigError::at(
                    line,
                    "sentinel directive while not in sentinel mode",
                ))
            }
            _ => {
                return Err(FatalConfigError::at(
                    line,
                    "Bad directive or wrong number of arguments",
                ))
            }
        }
        Ok(())
    }

    fn include(&mut self, line: &Line, path: &str, depth: usize) -> Result<(), FatalConfigError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(FatalConfigError::at(
                line,
                "Too many nested include directives",
            ));
        }
        let text = self.read(path)?;
        self.load_text(&text, depth + 1)
    }

    /// Names no row knows: module configs (`module.name value`) are kept for the module
    /// system; anything else is fatal.
    fn unknown(&mut self, line: &Line) -> Result<(), FatalConfigError> {
        let args = &line.args;
        if !args[0].contains(&b'.') {
            return Err(FatalConfigError::at(
                line,
                "Bad directive or wrong number of arguments",
            ));
        }
        if args.len() < 2 {
            return Err(FatalConfigError::at(
                line,
                "Module config specified without value",
            ));
        }
        let name = String::from_utf8_lossy(&args[0]).into_owned();
        let value = args[1..]
            .iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
            .join(" ");
        match self
            .config
            .module_configs
            .iter_mut()
            .find(|(n, _)| *n == name)
        {
            Some((_, v)) => *v = value,
            None => self.config.module_configs.push((name, value)),
        }
        Ok(())
    }
}

fn file_line(line: &Line) -> FileLine {
    let args = line.args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    FileLine {
        args,
        line: line.number,
        line_text: line.text.clone(),
    }
}

/// The C library's message for an I/O error (`io::Error` adds " (os error N)").
fn strerror(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `getAbsolutePath`: a relative path joined to the working directory, leading `../`
/// folded into it.
fn absolute_path(path: &str) -> String {
    let path = path.trim_matches(|c| matches!(c, ' ' | '\r' | '\n' | '\t'));
    if path.starts_with('/') {
        return path.to_string();
    }
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_string();
    };
    join_relative(&cwd.to_string_lossy(), path)
}

fn join_relative(cwd: &str, mut rel: &str) -> String {
    let mut base = cwd.to_string();
    if !base.ends_with('/') {
        base.push('/');
    }
    while let Some(rest) = rel.strip_prefix("../") {
        rel = rest;
        if base.len() > 1 {
            let trimmed = &base[..base.len() - 1];
            base.truncate(trimmed.rfind('/').map_or(1, |i| i + 1));
        }
    }
    base + rel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::values::{LogLevel, ReplicaOf};

    fn argv(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Loads with an in-memory file system.
    fn load_with(
        args: &[&str],
        files: &[(&str, &str)],
        stdin: &str,
    ) -> Result<LoadedConfig, FatalConfigError> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        let read = move |path: &str| {
            files
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))
        };
        let stdin = stdin.to_string();
        load(&argv(args), &read, &move || stdin.clone())
    }

    fn report(line: usize, text: &str, reason: &str) -> FatalConfigError {
        FatalConfigError::Report {
            line: Some((line, text.into())),
            reason: reason.into(),
        }
    }

    #[test]
    fn no_arguments_means_defaults_and_no_file() {
        let loaded = load_with(&[], &[], "").unwrap();
        assert_eq!(loaded.config, Config::default());
        assert_eq!(loaded.config_file, None);
    }

    #[test]
    fn file_then_stdin_then_options_later_wins() {
        let files = [("/etc/r.conf", "port 7000\nloglevel debug\n")];
        let loaded = load_with(
            &["/etc/r.conf", "--port", "7001", "-"],
            &files,
            "loglevel warning\n",
        )
        .unwrap();
        assert_eq!(loaded.config.port, 7001);
        assert_eq!(loaded.config.loglevel, LogLevel::Warning);
        assert_eq!(loaded.config_file.as_deref(), Some("/etc/r.conf"));
    }

    #[test]
    fn command_line_multi_arg_values_are_split() {
        let c = load_with(&["--save", "60 5", "--bind", "127.0.0.1 ::1"], &[], "")
            .unwrap()
            .config;
        assert_eq!(c.save, vec![(60, 5)]);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        let c = load_with(&["--save", "", "--replicaof", "10.0.0.1", "6380"], &[], "")
            .unwrap()
            .config;
        assert!(c.save.is_empty());
        assert_eq!(
            c.replicaof,
            Some(ReplicaOf {
                host: "10.0.0.1".into(),
                port: 6380
            })
        );
        assert!(load_with(&["--save"], &[], "")
            .unwrap()
            .config
            .save
            .is_empty());
    }

    #[test]
    fn save_lines_in_a_file_accumulate() {
        let files = [("/r.conf", "save 900 1\nsave 300 10\n")];
        assert_eq!(
            load_with(&["/r.conf"], &files, "").unwrap().config.save,
            vec![(900, 1), (300, 10)]
        );
    }

    #[test]
    fn file_errors_are_reported_with_line_and_text() {
        let cases = [
            (
                "# c\nfoo bar\n",
                report(2, "foo bar", "Bad directive or wrong number of arguments"),
            ),
            (
                "daemonize maybe\n",
                report(1, "daemonize maybe", "argument must be 'yes' or 'no'"),
            ),
            (
                "databases 0\n",
                report(
                    1,
                    "databases 0",
                    "argument must be between 1 and 2147483647 inclusive",
                ),
            ),
            (
                "maxmemory 1x\n",
                report(1, "maxmemory 1x", "argument must be a memory value"),
            ),
            (
                "  loglevel loud \n",
                report(
                    1,
                    "loglevel loud",
                    "argument(s) must be one of the following: debug, verbose, notice, warning",
                ),
            ),
            (
                "port \"6379\n",
                report(1, "port \"6379", "Unbalanced quotes in configuration line"),
            ),
            (
                "port 1 2\n",
                report(1, "port 1 2", "wrong number of arguments"),
            ),
            ("save 1\n", report(1, "save 1", "Invalid save parameters")),
            (
                "user\n",
                report(1, "user", "Bad directive or wrong number of arguments"),
            ),
            (
                "foo.bar\n",
                report(1, "foo.bar", "Module config specified without value"),
            ),
            (
                "sentinel x\n",
                report(
                    1,
                    "sentinel x",
                    "sentinel directive while not in sentinel mode",
                ),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                load_with(&["/r.conf"], &[("/r.conf", text)], "").unwrap_err(),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn command_line_errors_are_numbered_after_the_file() {
        let files = [("/r.conf", "\n")];
        let err = load_with(&["/r.conf", "--daemonize", "maybe"], &files, "").unwrap_err();
        assert_eq!(
            err,
            report(3, "daemonize \"maybe\"", "argument must be 'yes' or 'no'")
        );
        let err = load_with(
            &["/r.conf", "--port", "1", "--port", "--port", "2"],
            &[("/r.conf", "")],
            "",
        )
        .unwrap_err();
        assert_eq!(
            err,
            report(3, "port \"--port\" \"2\"", "wrong number of arguments")
        );
    }

    #[test]
    fn cluster_mode_refuses_replicaof_after_the_whole_text() {
        let files = [("/r.conf", "cluster-enabled yes\nreplicaof 127.0.0.1 6379\n")];
        let err = load_with(&["/r.conf"], &files, "").unwrap_err();
        assert_eq!(
            err,
            FatalConfigError::Report {
                line: None,
                reason: "replicaof directive not allowed in cluster mode".into()
            }
        );
        assert_eq!(err.to_string(), "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nreplicaof directive not allowed in cluster mode\n");
    }

    #[test]
    fn includes_load_with_their_own_line_numbers() {
        let files = [
            ("/r.conf", "\n\ninclude /inc.conf\nhz 20\n"),
            ("/inc.conf", "port 1\nhz 5\n"),
        ];
        let c = load_with(&["/r.conf"], &files, "").unwrap().config;
        assert_eq!((c.port, c.hz), (1, 20));
        let files = [
            ("/r.conf", "\n\ninclude /inc.conf\n"),
            ("/inc.conf", "port 1\n\nbad x\n"),
        ];
        assert_eq!(
            load_with(&["/r.conf"], &files, "").unwrap_err(),
            report(3, "bad x", "Bad directive or wrong number of arguments")
        );
        let err =
            load_with(&["/r.conf"], &[("/r.conf", "include /missing.conf\n")], "").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Fatal error, can't open config file '/missing.conf': No such file or directory\n"
        );
    }

    #[test]
    fn file_only_directives_are_collected() {
        let text =
            "rename-command FLUSHALL \"\"\nuser alice on >pw ~* +@all\nloadmodule /m.so a b\n\
                    mod.opt 1 2\nmod.opt 3\nlist-max-ziplist-entries 5\nsentinel\n";
        let c = load_with(&["/r.conf"], &[("/r.conf", text)], "")
            .unwrap()
            .config;
        assert_eq!(c.rename_commands[0].from, "FLUSHALL");
        assert_eq!(
            (c.rename_commands[0].to.as_str(), c.rename_commands[0].line),
            ("", 1)
        );
        assert_eq!(c.users[0].args, vec!["alice", "on", ">pw", "~*", "+@all"]);
        assert_eq!(
            (c.users[0].line, c.users[0].line_text.as_str()),
            (2, "user alice on >pw ~* +@all")
        );
        assert_eq!(c.load_modules[0].args, vec!["/m.so", "a", "b"]);
        assert_eq!(
            c.module_configs,
            vec![("mod.opt".to_string(), "3".to_string())]
        );
    }

    #[test]
    fn fatal_report_renders_like_redis() {
        let e = report(2, "foo bar", "Bad directive or wrong number of arguments");
        assert_eq!(
            e.to_string(),
            "\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 2\n>>> 'foo bar'\nBad directive or wrong number of arguments\n"
        );
    }

    #[test]
    fn relative_config_paths_become_absolute() {
        assert_eq!(join_relative("/a/b", "r.conf"), "/a/b/r.conf");
        assert_eq!(join_relative("/a/b/", "../r.conf"), "/a/r.conf");
        assert_eq!(join_relative("/a", "../../r.conf"), "/r.conf");
        assert_eq!(absolute_path(" /x.conf "), "/x.conf");
    }
}

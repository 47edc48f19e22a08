//! `ferrodis`: the server. Same command line as `redis-server`:
//! `ferrodis [/path/to/redis.conf] [--directive value ...]`, `-` to read the configuration
//! from standard input, `-v`/`--version`, `-h`/`--help`.

use ferrodis::server::{self, FERRODIS_VERSION, REDIS_VERSION};

fn usage() -> ! {
    eprintln!(
        "Usage: ./ferrodis [/path/to/redis.conf] [options] [-]\n       \
         ./ferrodis - (read config from stdin)\n       \
         ./ferrodis -v or --version\n       \
         ./ferrodis -h or --help\n\n\
         Examples:\n       \
         ./ferrodis (run the server with default conf)\n       \
         ./ferrodis /etc/redis/6379.conf\n       \
         ./ferrodis --port 7777\n       \
         ./ferrodis --port 7777 --replicaof 127.0.0.1 8888\n       \
         ./ferrodis /etc/myredis.conf --loglevel verbose -\n       \
         ./ferrodis /etc/myredis.conf --loglevel verbose\n"
    );
    std::process::exit(1);
}

fn main() {
    // The BGSAVE writer child: the server's own executable, told apart by its environment so
    // the command line stays redis-server's.
    if let Some(target) = std::env::var_os(ferrodis::server::rdb_save::WRITER_ENV) {
        std::process::exit(ferrodis::server::rdb_save::writer_main(&target));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-v") | Some("--version") => {
            println!(
                "Redis server v={REDIS_VERSION} sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ferrodis-{FERRODIS_VERSION}"
            );
            return;
        }
        Some("-h") | Some("--help") => usage(),
        _ => {}
    }
    let read_file = |path: &str| std::fs::read_to_string(path);
    let stdin = || std::io::read_to_string(std::io::stdin()).unwrap_or_default();
    let loaded = match ferrodis::config::load(&args, &read_file, &stdin) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(1);
        }
    };
    // `dir` takes effect as the configuration is read, as in Redis: a directory that cannot be
    // entered stops startup with the fatal report.
    if !loaded.config.dir.is_empty() {
        if let Err(e) = std::env::set_current_dir(&loaded.config.dir) {
            let reason = e.to_string();
            let reason = reason
                .split(" (os error")
                .next()
                .unwrap_or(&reason)
                .to_string();
            eprint!(
                "{}",
                ferrodis::config::FatalConfigError::Report { line: None, reason }
            );
            std::process::exit(1);
        }
    }
    std::process::exit(server::run(loaded, !args.is_empty()));
}

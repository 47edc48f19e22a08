//! `ferrodis-cli`: the companion client (one-shot commands for now; the cluster milestone adds
//! `-c` and the `cluster` subcommands). Its code lives in `src/cli/`.

fn main() {
    std::process::exit(ferrodis::cli::main(std::env::args().skip(1).collect()));
}

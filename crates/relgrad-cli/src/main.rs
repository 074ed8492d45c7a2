//! The `relgrad` binary: see the `relgrad_cli` library for everything it does.

fn main() -> std::process::ExitCode {
    relgrad_cli::run(std::env::args_os())
}

//! The `relgrad` binary: see the `relgrad_cli` library for everything it does.

fn main() -> std::process::ExitCode {
    // The training loop runs its parallel parts itself instead of handing them over.
    relgrad::faer_backend::use_current_thread();
    relgrad_cli::run(std::env::args_os())
}

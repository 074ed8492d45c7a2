//! The `relgrad` binary: see the `relgrad_cli` library for everything it does.

fn main() -> std::process::ExitCode {
    // A closed pipe (`relgrad eval ... | head -1`) ends the process quietly, as it ends
    // other command-line tools, instead of a panic in `println!` (Rust ignores SIGPIPE).
    // Saved models are never half-written: they are written to a temporary file, synced
    // and renamed.
    #[cfg(unix)]
    // SAFETY: the first statement of `main`, before any other thread exists; `SIG_DFL` is
    // a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // The training loop runs its parallel parts itself instead of handing them over.
    relgrad::faer_backend::use_current_thread();
    relgrad_cli::run(std::env::args_os())
}

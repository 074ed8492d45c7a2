//! # relgrad-cli
//!
//! The `relgrad` command-line tool: exact maximum-likelihood training of invertible,
//! fully connected density models with the relative gradient (Gresele et al., NeurIPS
//! 2020), and the verbs around it: evaluate, sample, score, list the built-in data sets
//! and benchmark the backends.
//!
//! The binary (`src/main.rs`) only parses the arguments and calls [`run`]; everything
//! else lives in this library so that integration tests and other programs can reuse the
//! readers and writers (`.npy`, `.csv`, IDX). The model, its file, its preprocessing and
//! the fit pipeline belong to the `relgrad` library (`relgrad::model`): this crate is a
//! front end over it (arguments, data loading, printing, plots).
//!
//! | concept | module |
//! |---|---|
//! | command-line arguments (clap) | [`cli`] |
//! | data: `.npy`, `.csv`, IDX, the built-in digits, 2-D generators, splits | [`data`] |
//! | where a run keeps its checkpoint (the format is the library's) | [`checkpoint`] |
//! | figures (plotters) | [`plots`] |
//! | the timing harness of `relgrad bench` | [`mod@bench`] |
//! | one module per subcommand | [`commands`] |
//! | statistics and small helpers | [`util`] |

#![warn(missing_docs)]

pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod data;
pub mod plots;
pub mod util;

use std::process::ExitCode;

/// Exit code of a run stopped by Ctrl-C (the shell convention, 128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit code of a training run that diverged (the best parameters were saved).
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code of any other error (bad input, I/O, ...).
pub const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error: an option's value, or a combination of options, that no
/// input could make valid (clap's own usage errors exit with 2 too).
pub const EXIT_USAGE: u8 = 2;

/// A usage error (exit code [`EXIT_USAGE`]) with `message`.
pub fn usage_error(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(ExitError {
        message: message.into(),
        code: EXIT_USAGE,
    })
}

/// An error that carries its own exit code (divergence, interruption); every other
/// error exits with [`EXIT_ERROR`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ExitError {
    /// The message printed after `error: `.
    pub message: String,
    /// The process exit code.
    pub code: u8,
}

/// An error already reported by another process of a distributed run: exit with `code`
/// without printing anything.
#[derive(Debug, thiserror::Error)]
#[error("exit code {code}")]
pub struct Silent {
    /// The process exit code.
    pub code: u8,
}

/// Parses `args` (including the program name) and runs the command. Errors are printed
/// to stderr with their context chain, and mapped to an exit code.
pub fn run<I, S>(args: I) -> ExitCode
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let parsed = match cli::parse(args) {
        Ok(p) => p,
        Err(e) => {
            // clap prints help and version to stdout (exit 0) and usage errors to stderr (2).
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    match commands::dispatch(parsed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(s) = err.downcast_ref::<Silent>() {
                return ExitCode::from(s.code);
            }
            let code = err
                .downcast_ref::<ExitError>()
                .map_or(EXIT_ERROR, |e| e.code);
            print_error(&err);
            ExitCode::from(code)
        }
    }
}

/// Prints `err` to stderr as the command line reports errors: `error: ` and the message,
/// then its causes.
pub(crate) fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

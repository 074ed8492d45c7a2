//! Errors of the whole-model layer: typed, and worded in the user's terms (which file,
//! which key or tensor, which row and column counted from 1, what was expected).

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong when fitting, scoring, saving or loading a model.
#[derive(Debug, Error)]
pub enum Error {
    /// An error of the core library (dimension mismatch, singular layer, bad setting).
    #[error(transparent)]
    Core(#[from] relgrad_core::Error),
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done: `"cannot read"`, `"writing"`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A model file or checkpoint is not valid: `what` names the key or tensor and what
    /// was expected.
    #[error("{path}: {what}")]
    InvalidFile {
        /// The file (empty when parsed from bytes).
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Model-file bytes are not valid (the same as [`Error::InvalidFile`] without a path).
    #[error("{0}")]
    Invalid(String),
    /// A value of the input data is NaN or infinite.
    #[error("row {}, column {} is not a finite number ({value})", row + 1, col + 1)]
    NonFinite {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The value.
        value: f64,
    },
    /// A value is not an integer pixel value for the logit preprocessing.
    #[error("row {}, column {}: expected an integer pixel value in 0..={} for the logit preprocessing, found {value}", row + 1, col + 1, levels - 1)]
    NotAPixel {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The value found.
        value: f64,
        /// The quantisation levels.
        levels: u32,
    },
    /// The data's number of columns does not match the model.
    #[error(
        "dimension mismatch: the model has dimension {expected}, the data has {found} columns"
    )]
    Columns {
        /// The model's dimension.
        expected: usize,
        /// The data's columns.
        found: usize,
    },
    /// A setting of the fit pipeline or a verb is invalid.
    #[error("{0}")]
    Config(String),
    /// A computed result is not finite (an overflowing model or input).
    #[error("{0}")]
    NonFiniteResult(String),
    /// A hook (progress, checkpoint) of the fit pipeline failed.
    #[error("{0}")]
    Hook(Box<dyn std::error::Error + Send + Sync>),
    /// In data-parallel training, a process failed (its own rows or files); every process
    /// of the group stops with this error.
    #[error("rank {rank}: {message}")]
    Rank {
        /// The failing process's rank.
        rank: usize,
        /// What went wrong there.
        message: String,
    },
}

/// `result` of this process, agreed across the group `comm`: every process gets `Ok`,
/// or [`Error::Rank`] for the lowest failing rank (a single process keeps its error).
pub fn agreed<T, C: relgrad_core::Collective>(comm: &C, result: Result<T>) -> Result<T> {
    if comm.size() == 1 {
        return result;
    }
    let local = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
    match comm.agree(local) {
        Ok(()) => result,
        Err(f) => Err(Error::Rank {
            rank: f.rank,
            message: f.message,
        }),
    }
}

impl Error {
    /// [`Error::Invalid`] from anything printable.
    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Error::Invalid(what.into())
    }

    /// Attaches a file path to an [`Error::Invalid`]; other errors pass through.
    pub(crate) fn in_file(self, path: &std::path::Path) -> Self {
        match self {
            Error::Invalid(what) => Error::InvalidFile {
                path: path.to_path_buf(),
                what,
            },
            e => e,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

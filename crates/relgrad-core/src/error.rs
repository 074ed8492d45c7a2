//! Errors reported by the library.

use thiserror::Error;

/// Everything that can go wrong in relgrad-core. Nothing in the library panics on bad
/// data or settings; panics are reserved for programming errors such as mismatched
/// buffer shapes inside the crate.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    /// The data's number of columns does not match the model's dimension.
    #[error(
        "dimension mismatch: the model has dimension {expected}, the data has {found} columns"
    )]
    DimensionMismatch {
        /// The model's dimension.
        expected: usize,
        /// The data's number of columns.
        found: usize,
    },
    /// A weight matrix is singular, so the model is not invertible.
    #[error("layer {layer}'s weight matrix is singular (a zero pivot in its LU factorisation)")]
    Singular {
        /// Zero-based layer index.
        layer: usize,
    },
    /// A value in the data is NaN or infinite.
    #[error("row {row}, column {col} is not a finite number ({value})")]
    NonFinite {
        /// Zero-based row.
        row: usize,
        /// Zero-based column.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// Training produced a non-finite log-likelihood; the best parameters were kept.
    #[error("training diverged at epoch {epoch} (non-finite log-likelihood); the best parameters (epoch {best_epoch}) were restored; try a lower learning rate")]
    Diverged {
        /// The epoch (1-based) in which the divergence was seen.
        epoch: usize,
        /// The epoch whose parameters were restored (0 = the starting parameters).
        best_epoch: usize,
    },
    /// An invalid setting.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Not enough data for the requested operation.
    #[error("not enough data: {0}")]
    NotEnoughData(String),
}

/// The library's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

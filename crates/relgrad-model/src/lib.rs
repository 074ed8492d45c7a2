//! # relgrad-model
//!
//! Whole models as users think of them, shared by the `relgrad` command-line tool, the
//! Python package and any Rust program: the fitted model (preprocessing + invertible
//! network + metadata) with its verbs in the data's units, the safetensors model file
//! with complete validation on load, training checkpoints, and the fit pipeline
//! (preprocessing, start, early stopping, divergence handling, hooks, resume).
//!
//! Computation runs on any relgrad backend (`B: Backend<f32> + Backend<f64>`, see
//! [`ModelBackend`]); the `relgrad` facade re-exports this crate as `relgrad::model`.
//!
//! | concept | module |
//! |---|---|
//! | the fitted model and its verbs: `log_prob`, `sample`, `inverse`, ... | [`model`] |
//! | the model file: `save`, `load`, validation | [`model_file`] |
//! | the network in either precision | [`network`] |
//! | preprocessing and its Jacobian | [`preprocess`] |
//! | the fit pipeline | [`mod@fit`] |
//! | its hooks: progress, cancellation, checkpoints | [`hooks`] |
//! | why a fit diverged, and what to do | [`diagnosis`] |
//! | fingerprints of the training rows (resume checks) | [`fingerprint`] |
//! | the fit settings (the CLI's options and defaults) | [`config`] |
//! | checkpoints | [`checkpoint`] |
//! | seeded splits, parts and noise seeds | [`split`] |
//! | means with standard errors, evaluations, quantiles | [`evaluation`] |
//! | the same statistics of rows spread across processes | [`across`] |
//! | atomic, durable writes | [`atomic`] |
//! | views of ndarray, faer and nalgebra matrices | [`views`] |
//! | safetensors reading and writing | [`tensors`] |
//! | errors | [`error`] |

#![warn(missing_docs)]

pub mod across;
pub mod atomic;
pub mod checkpoint;
pub mod config;
pub mod diagnosis;
pub mod error;
pub mod evaluation;
pub mod fingerprint;
pub mod fit;
pub mod hooks;
pub mod model;
pub mod model_file;
pub mod network;
pub mod preprocess;
pub mod split;
pub mod tensors;
pub mod views;

pub use checkpoint::{AnyCheckpoint, Checkpoint};
pub use config::{
    automatic_architecture, FitConfig, Start, MAX_LR_DECAYS, SPLINE_LAYERS, SPLINE_MAX_DIM,
};
pub use error::{Error, Result};
pub use evaluation::{Evaluation, MeanSe};
pub use fit::{fit, Fit, Fitted, Sharded, Stop};
pub use hooks::{FitHooks, OnEpoch};
pub use model::{DensityModel, ImageShape, Scores};
pub use network::{ModelBackend, Network, Precision};
pub use preprocess::{Preprocess, PreprocessKind};
pub use split::{noise_seed, split_rows, Part, SplitIndices};

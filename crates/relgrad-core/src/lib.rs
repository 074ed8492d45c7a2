//! # relgrad-core
//!
//! Exact maximum-likelihood training of invertible, fully connected neural networks
//! (deep density models, nonlinear ICA) with the **relative gradient** (Gresele et al.,
//! NeurIPS 2020): a training step costs `O(B D^2)` like ordinary backpropagation, instead
//! of the `O(D^3)` that the log-determinant's gradient `W^{-T}` needs.
//!
//! This crate is backend-agnostic: the dense kernels come from a type implementing
//! [`Backend`] (faer, nalgebra or OpenBLAS through the `relgrad-*` crates). Everything
//! else, the model, activations, densities, gradients, optimizers and the training loop,
//! lives here.
//!
//! | concept | module |
//! |---|---|
//! | scalars (`f32`, `f64`) | [`scalar`] |
//! | row-major matrices and views | [`matrix`] |
//! | the backend trait | [`backend`] |
//! | activations and their inverses | [`activation`] |
//! | learnable activations: monotone rational-quadratic splines | [`spline`] |
//! | base densities | [`density`] |
//! | the learnable base: a mixture of logistics per coordinate | [`mixture`] |
//! | the invertible MLP: `forward`, `log_prob`, `inverse`, `sample` | [`mlp`] |
//! | initialisations | [`init`] |
//! | relative and naive gradients | [`mod@gradient`] |
//! | preallocated step buffers | [`workspace`] |
//! | SGD and Adam | [`optim`] |
//! | one training step, fused for small batches | [`step`] |
//! | epochs, validation, early stopping | [`train`] |
//! | collectives and shards for data-parallel training | [`collective`] |
//! | the best full-covariance Gaussian (a reference model) | [`gaussian`] |
//! | small dense helpers (Cholesky, orthogonalisation) | [`linalg`] |

#![warn(missing_docs)]

pub mod activation;
pub mod backend;
pub mod collective;
pub mod density;
pub mod error;
pub mod gaussian;
pub mod gradient;
pub mod init;
pub mod linalg;
pub mod matrix;
pub mod mixture;
pub mod mlp;
pub mod optim;
pub mod scalar;
pub mod simd;
pub mod spline;
pub mod step;
pub mod train;
pub mod workspace;

/// The `rand` crate this library's sampling API is written against.
pub use rand;

pub use activation::Activation;
pub use backend::{Backend, GemmDims, LogDet, Threads, Trans, MAX_THREADS};
pub use collective::{Alone, Collective, Failure, Shard, ThreadGroup};
pub use density::BaseDensity;
pub use error::{Error, Result};
pub use gradient::{gradient, naive_gradient, partial_gradient, relative_gradient, GradientKind};
pub use init::Init;
pub use matrix::{Mat, MatMut, MatRef};
pub use mlp::{InvertibleMlp, Layer};
pub use optim::{Optimizer, OptimizerState};
pub use scalar::Scalar;
pub use simd::{cap_simd_level, simd_level, SimdLevel};
pub use step::{fuses, pass_parts, train_step, StepPath};
pub use train::{check_lr_decay, EpochMetrics, Flow, History, TrainConfig, TrainEvent, Trainer};
pub use workspace::{Gradient, Workspace};

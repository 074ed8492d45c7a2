//! # relgrad
//!
//! Exact maximum-likelihood training of deep density models with the relative gradient.
//! This facade re-exports [`relgrad_core`] and the backends chosen by cargo features:
//!
//! | feature | backend type | crate | notes |
//! |---|---|---|---|
//! | `faer` (default) | `Faer` | `relgrad-faer` | pure Rust |
//! | `nalgebra` | `Nalgebra` | `relgrad-nalgebra` | pure Rust, products through `matrixmultiply` |
//! | `openblas` | `Blas` | `relgrad-blas` | links the system OpenBLAS (`libopenblas-dev`) |
//!
//! Several features may be enabled at once; every enabled backend is re-exported, and
//! [`DefaultBackend`] names the first enabled one in the order faer, nalgebra, OpenBLAS.
//! At least one must be enabled (for example `default-features = false, features =
//! ["openblas"]`), otherwise the crate fails to compile with a message saying so.
//!
//! # Whole models
//!
//! With the default feature `model`, [`model`] holds what a user names: the fitted
//! [`DensityModel`] (preprocessing + network + metadata) with `log_prob`, `sample`,
//! `inverse` in the data's units, its file (`save`, `load`), and the fit pipeline
//! ([`fit()`], [`FitConfig`], [`model::Fit`] with hooks and resume). The feature `ndarray`
//! adds `model::views::from_ndarray`.
//!
//! # Data-parallel training
//!
//! The feature `mpi` adds [`mpi`] (crate `relgrad-mpi`): an MPI communicator as the core's
//! [`Collective`], which `model::Fit::distributed` takes to train one model on the rows
//! of many processes (see `docs/distributed.md`). It needs an MPI library and libclang.
//!
//! # Threads
//!
//! Every backend is constructed the same way, with a [`Threads`] setting:
//! `Faer::new(threads)`, `Nalgebra::new(threads)`, `Blas::new(threads)` (and
//! [`DefaultBackend::new`](DefaultBackend)). Generic code can use the [`FromThreads`] trait,
//! implemented by every enabled backend, [`new_default_backend`] does it for
//! [`DefaultBackend`], and [`Threads::parse`] reads `"auto"` or a count from a command line.
//!
//! - [`Threads::Auto`] (the default): the backend chooses by problem size, running small
//!   products sequentially (thread start-up costs more than it saves there) and large ones
//!   on the available cores.
//! - [`Threads::Fixed(n)`](Threads::Fixed): exactly `n` threads for every call; `Fixed(1)` is
//!   strictly sequential.
//!
//! How each backend applies it: faer passes it per call (`Par::Seq` / `Par::rayon(n)`);
//! OpenBLAS's count is process-global, and `Blas` sets it before a call when it changes;
//! `matrixmultiply`, behind `Nalgebra`, reads `MATMUL_NUM_THREADS` once per process, so only
//! the first `Nalgebra::new` of a process (with that variable unset) decides, and
//! `matrixmultiply` keeps its own small-product rule. See each backend crate's docs.

#![warn(missing_docs)]

pub use relgrad_core::*;

/// Whole models (feature `model`, on by default): the fitted model with its
/// preprocessing and its verbs in the data's units, the model file, checkpoints and the
/// fit pipeline. See the crate `relgrad-model`.
#[cfg(feature = "model")]
pub use relgrad_model as model;
#[cfg(feature = "model")]
pub use relgrad_model::{fit, DensityModel, FitConfig, Fitted};

#[cfg(feature = "faer")]
pub use relgrad_faer as faer_backend;
#[cfg(feature = "faer")]
pub use relgrad_faer::Faer;

#[cfg(feature = "nalgebra")]
pub use relgrad_nalgebra as nalgebra_backend;
#[cfg(feature = "nalgebra")]
pub use relgrad_nalgebra::Nalgebra;

#[cfg(feature = "openblas")]
pub use relgrad_blas as blas_backend;
#[cfg(feature = "openblas")]
pub use relgrad_blas::Blas;

/// MPI's collectives for data-parallel training (crate `relgrad-mpi`).
#[cfg(feature = "mpi")]
pub use relgrad_mpi as mpi;

/// The backend used when a program does not choose one: faer if the `faer` feature is
/// enabled, else nalgebra, else OpenBLAS.
#[cfg(feature = "faer")]
pub type DefaultBackend = relgrad_faer::Faer;

/// The backend used when a program does not choose one: faer if the `faer` feature is
/// enabled, else nalgebra, else OpenBLAS.
#[cfg(all(not(feature = "faer"), feature = "nalgebra"))]
pub type DefaultBackend = relgrad_nalgebra::Nalgebra;

/// The backend used when a program does not choose one: faer if the `faer` feature is
/// enabled, else nalgebra, else OpenBLAS.
#[cfg(all(not(feature = "faer"), not(feature = "nalgebra"), feature = "openblas"))]
pub type DefaultBackend = relgrad_blas::Blas;

/// [`DefaultBackend`] with the given threading setting (every backend is built with
/// `new(Threads)`).
#[cfg(any(feature = "faer", feature = "nalgebra", feature = "openblas"))]
pub fn new_default_backend(threads: Threads) -> DefaultBackend {
    DefaultBackend::new(threads)
}

/// Constructs a backend from a [`Threads`] setting: the uniform constructor of every
/// backend (`B::from_threads(t)` is `B::new(t)`), for code generic over the backend.
pub trait FromThreads: Sized {
    /// The backend with the given threading setting.
    fn from_threads(threads: Threads) -> Self;
}

#[cfg(feature = "faer")]
impl FromThreads for relgrad_faer::Faer {
    fn from_threads(threads: Threads) -> Self {
        Self::new(threads)
    }
}

#[cfg(feature = "nalgebra")]
impl FromThreads for relgrad_nalgebra::Nalgebra {
    fn from_threads(threads: Threads) -> Self {
        Self::new(threads)
    }
}

#[cfg(feature = "openblas")]
impl FromThreads for relgrad_blas::Blas {
    fn from_threads(threads: Threads) -> Self {
        Self::new(threads)
    }
}

#[cfg(not(any(feature = "faer", feature = "nalgebra", feature = "openblas")))]
compile_error!(
    "relgrad: enable at least one backend feature: `faer` (the default), `nalgebra` or `openblas`"
);

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

//! # relgrad
//!
//! Exact maximum-likelihood training of deep density models with the relative gradient.
//! This facade re-exports [`relgrad_core`] and the backend chosen by cargo features:
//! `faer` (the default, pure Rust). [`DefaultBackend`] names the enabled backend.

pub use relgrad_core::*;

#[cfg(feature = "faer")]
pub use relgrad_faer as faer_backend;
#[cfg(feature = "faer")]
pub use relgrad_faer::Faer;

/// The backend used when a program does not choose one.
#[cfg(feature = "faer")]
pub type DefaultBackend = relgrad_faer::Faer;

#[cfg(not(any(feature = "faer")))]
compile_error!("relgrad: enable at least one backend feature (`faer`)");

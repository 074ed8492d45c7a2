//! The OpenBLAS backend for relgrad: products through CBLAS `sgemm`/`dgemm` and LU through
//! LAPACK `getrf`/`getri` plus CBLAS `trsm`, all working directly on relgrad's row-major
//! memory (leading dimension = the row stride), with every buffer in a workspace made once.
//!
//! It links the system OpenBLAS (Debian: `apt-get install libopenblas-dev`, which includes
//! LAPACK) through `openblas-src` with its `system` feature; this is the one crate of the
//! workspace that pulls in `openblas-src`, so that the library is linked exactly once.
//!
//! **All of this needs this crate's `system` feature, which is off by default.** Without
//! it the crate is empty: it has no native dependencies and links nothing, so that
//! `cargo test --workspace` needs no system BLAS. The facade's `openblas` feature
//! (`relgrad = { features = ["openblas"] }`) turns it on, and so does `--all-features`.
//! See [`Blas`] for an example.
//!
//! # Products
//!
//! `cblas_?gemm` with `CblasRowMajor`, the transpose flags of the call and leading
//! dimensions equal to the views' row strides: no copies. `C = alpha op(A) op(B) + beta C`;
//! with `beta == 0` the old contents of `C` are never read (OpenBLAS zeroes `C` first
//! instead of scaling it, and products with `k == 0` never reach it: core handles them),
//! as in every relgrad backend.
//!
//! # LU on row-major memory
//!
//! LAPACK is column-major, so the workspace keeps the `n x n` matrix exactly as relgrad
//! stores it, row by row, and LAPACK sees its transpose `M = A^T`. `getrf` factors
//! `M = P L U`; since `det A = det A^T`, the log-determinant is read off `U`'s diagonal and
//! the sign of `P` as usual. The solve and the inverse must be of `A`, not `A^T`:
//!
//! - **solve**: `A = M^T = U^T L^T P^T`, so `A^{-1} B = P (L^T)^{-1} (U^T)^{-1} B`. Read
//!   row-major, the stored factors are `F^T`, whose lower triangle is `U^T` and whose strict
//!   upper triangle is `L^T` (unit diagonal). Two row-major `cblas_?trsm` calls on `B` in
//!   place (lower/non-unit, then upper/unit) and then the row interchanges in reverse order
//!   give `A^{-1} B`, with `B`'s row stride as its leading dimension: no copy of `B` and no
//!   scratch, so the workspace never grows for a wide right-hand side.
//! - **inverse**: the factors are copied into `out` so that `out`, read column-major with
//!   its row stride as leading dimension, holds `getrf`'s output; `getri` then leaves
//!   `M^{-1} = A^{-T}` column-major there, which read row-major is exactly `A^{-1}`. The
//!   factors in the workspace are untouched, so solves may follow. `getri`'s work array is
//!   sized once (by a workspace query) in
//!   [`Backend::lu_workspace`](relgrad_core::Backend::lu_workspace).
//!
//! # Threads
//!
//! OpenBLAS's thread count is process-global. Before each call this backend picks a count
//! and calls `openblas_set_num_threads` only when it differs from the last count it set:
//! [`Threads::Fixed(n)`](relgrad_core::Threads::Fixed) always uses `n`;
//! [`Threads::Auto`](relgrad_core::Threads::Auto) runs sequentially below
//! [`AUTO_PARALLEL_MIN_FLOPS`] multiply-adds (`m n k` for a product,
//! `n^2 k` for a solve, `n^3` for an inverse) and otherwise on all available CPUs (OpenBLAS
//! may still use fewer for a call it judges small). Because the setting is global, backends
//! with different settings used concurrently from several threads can see each other's
//! count; use one setting per process if that matters. The environment variable
//! `OPENBLAS_NUM_THREADS` only sets the count until the first call.
//!
//! **The factorisation (`getrf`) always runs on one thread.** OpenBLAS's threaded `getrf`
//! (`getrf_parallel`) puts arrays sized for its compile-time maximum thread count on the
//! stack at every level of its recursion; with Debian's build that overflows the 2 MiB stack
//! of an ordinary Rust thread (a test thread, a `std::thread::spawn`ed worker) and crashes
//! with SIGSEGV, even for `n = 128` (a known OpenBLAS limitation, its issues #246 and #1082).
//! The factorisation holds the backend's lock on the global count until `getrf` returns,
//! so a call from another thread that wants more threads waits for it instead of making it
//! threaded (the conformance suite, whose tests run concurrently, once crashed that way).
//! Products, triangular solves and `getri` are threaded as above and were checked to run
//! on 64 KiB stacks.

#![warn(missing_docs)]
// Without `system` the links to the backend's items have nothing to point to.
#![cfg_attr(not(feature = "system"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "system")]
mod openblas;

#[cfg(feature = "system")]
pub use openblas::{Blas, BlasLu, AUTO_PARALLEL_MIN_FLOPS};

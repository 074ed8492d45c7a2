//! The backend trait: the few dense kernels the algorithm needs.
//!
//! A backend provides exactly a matrix product with optional transposes and
//! `alpha`/`beta` accumulation into a caller-owned output, and an LU factorisation with
//! partial pivoting into a reusable workspace, with `log|det|`, solve and inverse. Every
//! elementwise map and reduction lives in core. Backends are plain values (they carry
//! their threading setting) and are resolved at compile time through generics.
//!
//! Conventions every implementation follows:
//! - matrices are row-major views ([`MatRef`], [`MatMut`]) with a row stride;
//! - `gemm` computes `C = alpha op(A) op(B) + beta C`; when `beta == 0` the old contents
//!   of `C` are **not read**, so NaN or garbage in an uninitialised output never leaks in;
//! - the kernels never allocate once their workspaces exist (an LU workspace is sized for
//!   one dimension up front).

use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;

/// Whether an operand of a product is transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// Use the matrix as it is.
    No,
    /// Use its transpose.
    Yes,
}

impl Trans {
    /// The shape `(rows, cols)` of `op(A)` for a matrix of shape `(r, c)`.
    #[inline]
    pub fn shape(self, r: usize, c: usize) -> (usize, usize) {
        match self {
            Trans::No => (r, c),
            Trans::Yes => (c, r),
        }
    }
}

/// How many threads a backend may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Threads {
    /// The backend chooses by problem size (sequential for small products, where thread
    /// start-up costs more than it saves). This is the default.
    #[default]
    Auto,
    /// Exactly this many threads (`1` is sequential).
    Fixed(usize),
}

/// The most threads a [`Threads::Fixed`] setting parsed from text may ask for.
pub const MAX_THREADS: usize = 1024;

impl Threads {
    /// Parses `"auto"` or a positive integer.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("auto") {
            return Some(Threads::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => Some(Threads::Fixed(n)),
            _ => None,
        }
    }
}

impl core::fmt::Display for Threads {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Threads::Auto => write!(f, "auto"),
            Threads::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// `log|det A|` and the sign of `det A`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogDet<T> {
    /// `ln|det A|` (`-inf` for a singular matrix).
    pub log_abs: T,
    /// `+1`, `-1`, or `0` for a singular matrix.
    pub sign: T,
}

impl<T: Scalar> LogDet<T> {
    /// Whether the factored matrix was exactly singular (a zero pivot).
    pub fn is_singular(&self) -> bool {
        self.sign == T::zero()
    }

    /// The log-determinant of a matrix from its LU factorisation: the diagonal of `U`
    /// (`L` has a unit diagonal) and whether the row interchanges form an odd
    /// permutation. A zero or non-finite pivot means singular.
    pub fn from_lu(u_diagonal: impl IntoIterator<Item = T>, odd_permutation: bool) -> Self {
        let mut log_abs = T::zero();
        let mut negative = odd_permutation;
        for p in u_diagonal {
            if p == T::zero() || !p.is_finite() {
                return LogDet {
                    log_abs: T::neg_infinity(),
                    sign: T::zero(),
                };
            }
            negative ^= p < T::zero();
            log_abs += p.abs().ln();
        }
        LogDet {
            log_abs,
            sign: if negative { -T::one() } else { T::one() },
        }
    }
}

/// The dense kernels relgrad needs, for one scalar type.
///
/// Implemented by `relgrad-faer`, `relgrad-nalgebra` and `relgrad-blas`; a new backend
/// implements `gemm_kernel` and the three LU methods (with `name`, `threads` and the
/// workspace type) and runs the shared conformance suite in `tests/`. A backend with a
/// thread pool may also implement `parts` and `join`, which split core's own loops.
pub trait Backend<T: Scalar>: Clone + core::fmt::Debug + Send + Sync {
    /// Workspace for LU factorisations of one size: the factors, the pivots and any
    /// scratch memory the backend needs. Created once by [`Backend::lu_workspace`].
    type Lu: Send;

    /// A short name, e.g. `"faer"`.
    fn name(&self) -> &'static str;

    /// The threading setting this backend was created with.
    fn threads(&self) -> Threads;

    /// `C = alpha op(A) op(B) + beta C`, with `op(A)` of shape `m x k`, `op(B)` `k x n`
    /// and `C` `m x n`. If `beta == 0`, `C` is not read. Panics on mismatched shapes.
    ///
    /// Provided: checks the shapes, does the empty cases itself (nothing for `m == 0` or
    /// `n == 0`, `C = beta C` for `k == 0`) and hands the rest to
    /// [`Backend::gemm_kernel`]. Backends implement the kernel, not this.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        alpha: T,
        a: MatRef<'_, T>,
        ta: Trans,
        b: MatRef<'_, T>,
        tb: Trans,
        beta: T,
        c: MatMut<'_, T>,
    ) {
        let dims = gemm_dims(&a, ta, &b, tb, &c);
        if dims.m == 0 || dims.n == 0 {
            return;
        }
        if dims.k == 0 {
            scale_in_place(c, beta);
            return;
        }
        self.gemm_kernel(dims, alpha, a, ta, b, tb, beta, c);
    }

    /// The product of [`Backend::gemm`] once its shapes are checked (`dims`) and `m`,
    /// `n` and `k` are all at least 1; with `beta == 0` it must not read `C`.
    #[allow(clippy::too_many_arguments)]
    fn gemm_kernel(
        &self,
        dims: GemmDims,
        alpha: T,
        a: MatRef<'_, T>,
        ta: Trans,
        b: MatRef<'_, T>,
        tb: Trans,
        beta: T,
        c: MatMut<'_, T>,
    );

    /// Into how many parts to split `work` multiply-adds of this crate's own loops (the
    /// fused training step's pass over the weights), each run by [`Backend::join`].
    /// Provided: 1, everything on the calling thread.
    fn parts(&self, work: usize) -> usize {
        let _ = work;
        1
    }

    /// How many threads a product of shape `dims` runs on under this backend's setting,
    /// as far as the backend can tell (reported by `relgrad bench`). Provided: 1.
    fn product_threads(&self, dims: GemmDims) -> usize {
        let _ = dims;
        1
    }

    /// Runs `a` and `b`, on two threads if the backend has them, and returns both
    /// results. Provided: one after the other on the calling thread.
    fn join<RA: Send, RB: Send>(
        &self,
        a: impl FnOnce() -> RA + Send,
        b: impl FnOnce() -> RB + Send,
    ) -> (RA, RB) {
        (a(), b())
    }

    /// A workspace for LU factorisations of `n x n` matrices.
    fn lu_workspace(&self, n: usize) -> Self::Lu;

    /// Factors the square matrix `a` (copied into the workspace; `a` is untouched) with
    /// partial pivoting and returns its log-determinant. A zero pivot gives
    /// `sign == 0`, `log_abs == -inf`; solve and inverse are then meaningless.
    fn lu_factor(&self, a: MatRef<'_, T>, lu: &mut Self::Lu) -> LogDet<T>;

    /// Overwrites `b` (`n x k`) with `A^{-1} b`, for the `A` last factored in `lu`.
    fn lu_solve(&self, lu: &mut Self::Lu, b: MatMut<'_, T>);

    /// Writes `A^{-1}` into `out` (`n x n`), for the `A` last factored in `lu`.
    fn lu_inverse(&self, lu: &mut Self::Lu, out: MatMut<'_, T>);
}

/// The dimensions of a product: `op(A)` is `m x k`, `op(B)` `k x n`, `C` `m x n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmDims {
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
}

impl GemmDims {
    /// `m n k`, the number of multiply-adds (saturating).
    pub fn work(&self) -> usize {
        self.m.saturating_mul(self.n).saturating_mul(self.k)
    }
}

/// Checks the shapes of a `gemm` call, the same for every backend.
fn gemm_dims<T: Scalar>(
    a: &MatRef<'_, T>,
    ta: Trans,
    b: &MatRef<'_, T>,
    tb: Trans,
    c: &MatMut<'_, T>,
) -> GemmDims {
    let (m, k) = ta.shape(a.rows(), a.cols());
    let (k2, n) = tb.shape(b.rows(), b.cols());
    assert!(
        k == k2 && c.rows() == m && c.cols() == n,
        "gemm: shapes do not match: op(A) {m}x{k}, op(B) {k2}x{n}, C {}x{}",
        c.rows(),
        c.cols()
    );
    GemmDims { m, n, k }
}

/// Sets every element of `c` to `beta * c` (with `beta == 0` writing zeros without
/// reading). A helper for backends whose product only accumulates.
pub fn scale_in_place<T: Scalar>(mut c: MatMut<'_, T>, beta: T) {
    if beta == T::zero() {
        c.fill(T::zero());
    } else if beta != T::one() {
        for i in 0..c.rows() {
            for v in c.row_mut(i) {
                *v *= beta;
            }
        }
    }
}

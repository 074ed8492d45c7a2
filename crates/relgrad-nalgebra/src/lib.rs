//! The nalgebra backend for relgrad: products through nalgebra's `gemm` (which calls
//! `matrixmultiply`) on strided views of relgrad's row-major memory, and an LU
//! factorisation with partial pivoting written here, working entirely in a preallocated
//! workspace.
//!
//! # Products
//!
//! Every operand is wrapped with `DMatrixView::from_slice_with_strides` (and the `_mut`
//! variant for the output): a row-major matrix with row stride `s` is the nalgebra view
//! with row stride `s` and column stride `1`, and its transpose is the same memory with the
//! two strides swapped. Nothing is copied, and nalgebra hands the strides straight to
//! `matrixmultiply`, which packs its operands anyway, so a transposed or strided operand
//! costs the same as a contiguous column-major one (measured: a 512 x 512 x 512 `f64`
//! product through row-major strided views takes the same time as nalgebra's `gemm` on
//! plain `DMatrix`es). `gemm_tr` and `tr_mul_to` are never used: they bypass
//! `matrixmultiply` and are about four times slower.
//!
//! nalgebra takes the `matrixmultiply` path only when `m`, `n` and `k` all exceed
//! [`NALGEBRA_SMALL_DIM`] (5). Below that it loops over `gemv`/`axcpy`, and that loop reads and
//! writes out of bounds on views whose row stride is not 1 (nalgebra 0.35, issue #1616:
//! `axcpy_uninit` takes the bounding slice's length as the element count), which is every
//! row-major view. So for those small products this backend calls `matrixmultiply::?gemm`
//! directly with the same pointers and strides nalgebra would have passed.
//!
//! `C = alpha op(A) op(B) + beta C`, and with `beta == 0` the old contents of `C` are never
//! read, as in every relgrad backend.
//!
//! # Threads
//!
//! `matrixmultiply` (built here with its `threading` feature) reads the environment variable
//! `MATMUL_NUM_THREADS` **once per process**, at its first product, and clamps it to `1..=4`;
//! there is no per-call setting. [`Nalgebra::new`] therefore maps [`Threads`] onto that
//! variable, once:
//!
//! - if `MATMUL_NUM_THREADS` is already set in the environment, it wins and is left alone;
//! - otherwise the **first** `Nalgebra::new` (or `Nalgebra::default()`) in the process sets it:
//!   [`Threads::Fixed(n)`](Threads::Fixed) to `n`, [`Threads::Auto`] to the number of
//!   available CPUs. Under either, `matrixmultiply` itself still runs small products
//!   sequentially (it allows a second thread only once `m k + k n >= 2^15`), which is the
//!   size-dependent rule `Auto` stands for.
//!
//! Limitations, stated plainly: backends created later with another setting, or after the
//! first product, do not change the thread count (their [`Backend::threads`] still reports
//! what they were asked for); and setting an environment variable is only sound while no
//! other thread reads or writes the environment, so create the first backend early, e.g. at
//! the start of `main`, before spawning threads. For a strictly sequential run regardless,
//! export `MATMUL_NUM_THREADS=1`.
//!
//! # LU
//!
//! nalgebra's own `LU` takes its matrix by value and allocates its permutation, so it cannot
//! run in a reusable workspace. This crate implements the factorisation itself: a right-looking
//! blocked LU with partial pivoting on the row-major copy held by [`NalgebraLu`]. Panels of
//! [`LU_BLOCK`] columns are factored unblocked (row swaps are applied to whole rows at once,
//! as LAPACK's `getrf` does), the block row of `U` by a unit-lower triangular solve, and the
//! trailing matrix is updated with one nalgebra `gemm` per panel (the panel's `L` part is
//! first copied into a buffer of the workspace, so no operand aliases the output). Solve and
//! inverse are blocked forward and back substitutions on the right-hand side (one `gemm`
//! per block of [`LU_BLOCK`] rows for what the solved rows contribute, row-oriented
//! substitution inside the block); `lu_inverse` solves against the identity written into
//! `out`. They need no scratch memory, so a right-hand side of any width never grows the
//! workspace.
//!
//! # Allocation
//!
//! This crate's own code allocates nothing after [`Backend::lu_workspace`]. `matrixmultiply`,
//! however, allocates its packing buffer on **every product** (one aligned heap allocation per
//! call, measured with a counting allocator, whatever the size or thread setting) and offers
//! no way to pass one in. So with this backend every `gemm` makes one allocation inside
//! `matrixmultiply`, and `lu_factor`/`lu_solve`/`lu_inverse` make one per internal product
//! (none for `n <= LU_BLOCK`, a few for larger `n`, e.g. 3 for a factorisation and 6 for an
//! inverse at `n = 200`). A training step with this backend is therefore not allocation-free;
//! use the faer or OpenBLAS backend where that matters.
//!
//! ```
//! use relgrad_core::{Backend, Mat, Threads, Trans};
//! use relgrad_nalgebra::Nalgebra;
//!
//! let be = Nalgebra::new(Threads::Auto);
//! let a = Mat::<f64>::from_vec(2, 2, vec![2.0, 1.0, 1.0, 3.0]);
//! let mut c = Mat::<f64>::zeros(2, 2);
//! be.gemm(1.0, a.as_ref(), Trans::No, a.as_ref(), Trans::Yes, 0.0, c.as_mut());
//! assert_eq!(c.as_slice(), &[5.0, 5.0, 5.0, 10.0]);
//!
//! let mut lu = Backend::<f64>::lu_workspace(&be, 2);
//! let ld = be.lu_factor(a.as_ref(), &mut lu);
//! assert!((ld.log_abs - 5.0f64.ln()).abs() < 1e-12 && ld.sign == 1.0);
//! ```

#![warn(missing_docs)]

use std::sync::OnceLock;

use nalgebra::{DMatrixView, DMatrixViewMut, Dyn};
use relgrad_core::backend::{Backend, GemmDims, LogDet, Threads, Trans};
use relgrad_core::matrix::{MatMut, MatRef};
use relgrad_core::Scalar;

/// Columns per panel of the blocked LU. Matrices up to this size are factored unblocked.
pub const LU_BLOCK: usize = 64;

/// nalgebra's `gemm` calls `matrixmultiply` only when `m`, `n` and `k` all exceed this; this
/// backend calls `matrixmultiply` itself for smaller products (see the crate docs).
pub const NALGEBRA_SMALL_DIM: usize = 5;

/// The environment variable `matrixmultiply` reads for its thread count.
pub const MATMUL_NUM_THREADS: &str = "MATMUL_NUM_THREADS";

/// The nalgebra backend. Cheap to copy; holds only the threading setting (see the crate
/// docs for how it reaches `matrixmultiply`).
#[derive(Clone, Copy, Debug)]
pub struct Nalgebra {
    threads: Threads,
}

static CONFIGURED: OnceLock<()> = OnceLock::new();

impl Nalgebra {
    /// A backend with the given threading setting. The first call in a process sets
    /// `MATMUL_NUM_THREADS` from `threads` unless the variable is already set; see the crate
    /// docs for what that can and cannot control.
    pub fn new(threads: Threads) -> Self {
        CONFIGURED.get_or_init(|| {
            if std::env::var_os(MATMUL_NUM_THREADS).is_none() {
                let n = match threads {
                    Threads::Fixed(n) => n.max(1),
                    Threads::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
                };
                std::env::set_var(MATMUL_NUM_THREADS, n.to_string());
            }
        });
        Self { threads }
    }

    /// A backend asking for one thread (effective only if it is the first one created and
    /// `MATMUL_NUM_THREADS` is unset; see the crate docs).
    pub fn sequential() -> Self {
        Self::new(Threads::Fixed(1))
    }
}

impl Default for Nalgebra {
    /// `Nalgebra::new(Threads::Auto)`.
    fn default() -> Self {
        Self::new(Threads::Auto)
    }
}

/// The threads `matrixmultiply` gives a product of shape `dims`: `MATMUL_NUM_THREADS`
/// clamped to `1..=4` as it reads it, once `m k + k n >= 2^15` (its own rule, see the crate
/// docs), and one thread below that.
fn matmul_threads(dims: GemmDims) -> usize {
    static SET: OnceLock<usize> = OnceLock::new();
    let set = *SET.get_or_init(|| {
        std::env::var(MATMUL_NUM_THREADS)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .map_or(1, |n| n.clamp(1, 4))
    });
    if dims.m * dims.k + dims.k * dims.n >= 1 << 15 {
        set
    } else {
        1
    }
}

/// A row stride that is valid for BLAS-style stride rules even for a matrix of at most one
/// row (whose stride [`MatRef`] does not constrain).
#[inline]
fn row_stride(rows: usize, cols: usize, stride: usize) -> usize {
    if rows <= 1 {
        cols.max(1)
    } else {
        stride
    }
}

/// The nalgebra view of `op(m)`: the transpose just swaps the strides.
fn view<T: Scalar + nalgebra::Scalar>(m: MatRef<'_, T>, t: Trans) -> DMatrixView<'_, T, Dyn, Dyn> {
    let s = row_stride(m.rows(), m.cols(), m.stride());
    match t {
        Trans::No => DMatrixView::from_slice_with_strides(m.as_slice(), m.rows(), m.cols(), s, 1),
        Trans::Yes => DMatrixView::from_slice_with_strides(m.as_slice(), m.cols(), m.rows(), 1, s),
    }
}

/// Pointer and `(row, column)` strides of `op(m)`, for calling `matrixmultiply` directly.
fn raw<T: Scalar>(m: MatRef<'_, T>, t: Trans) -> (*const T, isize, isize) {
    let s = row_stride(m.rows(), m.cols(), m.stride()) as isize;
    let p = m.as_slice().as_ptr();
    match t {
        Trans::No => (p, s, 1),
        Trans::Yes => (p, 1, s),
    }
}

fn view_mut<T: Scalar + nalgebra::Scalar>(m: MatMut<'_, T>) -> DMatrixViewMut<'_, T, Dyn, Dyn> {
    let (r, c) = (m.rows(), m.cols());
    let s = row_stride(r, c, m.stride());
    DMatrixViewMut::from_slice_with_strides_mut(m.into_slice(), r, c, s, 1)
}

/// LU workspace for the nalgebra backend: the row-major factors (`L` strictly below the
/// diagonal with an implicit unit diagonal, `U` on and above it), the pivot rows, and a
/// panel buffer for the blocked trailing update.
pub struct NalgebraLu<T> {
    n: usize,
    lu: Vec<T>,
    /// `piv[j]`: the row swapped with row `j` at step `j` (LAPACK's `ipiv`, zero-based).
    piv: Vec<usize>,
    panel: Vec<T>,
}

impl<T> NalgebraLu<T> {
    /// The dimension this workspace factors.
    pub fn dim(&self) -> usize {
        self.n
    }
}

impl<T> core::fmt::Debug for NalgebraLu<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NalgebraLu")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// `y -= a x`, elementwise (vectorises).
#[inline]
fn axpy_neg<T: Scalar>(y: &mut [T], a: T, x: &[T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi -= a * xi;
    }
}

/// Swaps rows `i < j` (each `len` long, `stride` apart) of `data`.
#[inline]
fn swap_rows<T>(data: &mut [T], i: usize, j: usize, len: usize, stride: usize) {
    debug_assert!(i < j);
    let (top, bottom) = data.split_at_mut(j * stride);
    top[i * stride..i * stride + len].swap_with_slice(&mut bottom[..len]);
}

/// Unblocked partial-pivoting LU of the panel made of columns `k0..k1` and rows `k0..n` of
/// the row-major `n x n` matrix `a`; row swaps are applied to whole rows.
fn factor_panel<T: Scalar>(a: &mut [T], piv: &mut [usize], n: usize, k0: usize, k1: usize) {
    for j in k0..k1 {
        let mut p = j;
        let mut best = a[j * n + j].abs();
        for i in j + 1..n {
            let v = a[i * n + j].abs();
            if v > best {
                best = v;
                p = i;
            }
        }
        piv[j] = p;
        if p != j {
            swap_rows(a, j, p, n, n);
        }
        let pivot = a[j * n + j];
        if pivot == T::zero() {
            // The whole column below is zero too: nothing to eliminate (LAPACK does the same
            // and reports the zero pivot; lu_factor reports it as sign 0).
            continue;
        }
        let (top, rest) = a.split_at_mut((j + 1) * n);
        let urow = &top[j * n + j + 1..j * n + k1];
        for i in 0..n - j - 1 {
            let row = &mut rest[i * n + j..i * n + k1];
            let l = row[0] / pivot;
            row[0] = l;
            if l != T::zero() {
                axpy_neg(&mut row[1..], l, urow);
            }
        }
    }
}

/// Blocked right-looking LU with partial pivoting of the row-major `n x n` matrix in `lu.lu`.
fn lu_in_place<T: Scalar>(be: &Nalgebra, lu: &mut NalgebraLu<T>)
where
    Nalgebra: Backend<T>,
{
    let n = lu.n;
    let a = &mut lu.lu[..];
    let mut k0 = 0;
    while k0 < n {
        let k1 = (k0 + LU_BLOCK).min(n);
        factor_panel(a, &mut lu.piv, n, k0, k1);
        if k1 == n {
            break;
        }
        // U12 = L11^{-1} A12 (rows k0..k1, columns k1..n), L11 unit lower triangular.
        for r in k0..k1 {
            let (top, rest) = a.split_at_mut((r + 1) * n);
            let urow = &top[r * n + k1..r * n + n];
            for i in 0..k1 - r - 1 {
                let row = &mut rest[i * n..i * n + n];
                let l = row[r];
                if l != T::zero() {
                    axpy_neg(&mut row[k1..], l, urow);
                }
            }
        }
        // A22 -= L21 U12, with L21 (rows k1..n, columns k0..k1) copied to the panel buffer.
        let (m2, kb) = (n - k1, k1 - k0);
        let panel = &mut lu.panel[..m2 * kb];
        for i in 0..m2 {
            panel[i * kb..(i + 1) * kb].copy_from_slice(&a[(k1 + i) * n + k0..(k1 + i) * n + k1]);
        }
        let (top, bottom) = a.split_at_mut(k1 * n);
        let u12 = MatRef::from_slice_with_stride(&top[k0 * n + k1..], kb, m2, n);
        let l21 = MatRef::from_slice(panel, m2, kb);
        let a22 = MatMut::from_slice_with_stride(&mut bottom[k1..], m2, m2, n);
        be.gemm(-T::one(), l21, Trans::No, u12, Trans::No, T::one(), a22);
        k0 = k1;
    }
}

/// Overwrites `b` (`n x k`) with `A^{-1} b` from the factors in `lu`: the row swaps, then
/// blocked forward substitution with the unit lower triangular `L` and back substitution
/// with `U`. Each block of [`LU_BLOCK`] rows first receives the contribution of the rows
/// already solved through one `gemm`, then is finished by row-oriented substitution.
fn solve_in_place<T: Scalar>(be: &Nalgebra, lu: &NalgebraLu<T>, mut b: MatMut<'_, T>)
where
    Nalgebra: Backend<T>,
{
    let n = lu.n;
    let k = b.cols();
    if n == 0 || k == 0 {
        return;
    }
    let s = row_stride(n, k, b.stride());
    let f = &lu.lu[..];
    let data = b.as_mut_slice();
    // b <- P b: the row swaps in the order they were made.
    for (j, &p) in lu.piv.iter().enumerate() {
        if p != j {
            swap_rows(data, j, p, k, s);
        }
    }
    // Forward substitution with L, block rows top to bottom.
    let mut i0 = 0;
    while i0 < n {
        let i1 = (i0 + LU_BLOCK).min(n);
        let (done, rest) = data.split_at_mut(i0 * s);
        if i0 > 0 {
            // B[i0..i1] -= L[i0..i1, 0..i0] B[0..i0]
            let l = MatRef::from_slice_with_stride(&f[i0 * n..], i1 - i0, i0, n);
            let x = MatRef::from_slice_with_stride(done, i0, k, s);
            let y = MatMut::from_slice_with_stride(rest, i1 - i0, k, s);
            be.gemm(-T::one(), l, Trans::No, x, Trans::No, T::one(), y);
        }
        for i in i0 + 1..i1 {
            let (before, after) = rest.split_at_mut((i - i0) * s);
            let bi = &mut after[..k];
            for j in i0..i {
                let l = f[i * n + j];
                if l != T::zero() {
                    axpy_neg(bi, l, &before[(j - i0) * s..(j - i0) * s + k]);
                }
            }
        }
        i0 = i1;
    }
    // Back substitution with U, block rows bottom to top.
    let mut i1 = n;
    while i1 > 0 {
        let i0 = i1.saturating_sub(LU_BLOCK);
        let (head, done) = data.split_at_mut((i1 * s).min(data.len()));
        let blk = &mut head[i0 * s..];
        if i1 < n {
            // B[i0..i1] -= U[i0..i1, i1..n] B[i1..n]
            let u = MatRef::from_slice_with_stride(&f[i0 * n + i1..], i1 - i0, n - i1, n);
            let x = MatRef::from_slice_with_stride(done, n - i1, k, s);
            let y = MatMut::from_slice_with_stride(&mut *blk, i1 - i0, k, s);
            be.gemm(-T::one(), u, Trans::No, x, Trans::No, T::one(), y);
        }
        for i in (i0..i1).rev() {
            let r = i - i0;
            let after = &mut blk[r * s..];
            let split = s.min(after.len());
            let (bi, later) = after.split_at_mut(split);
            let bi = &mut bi[..k];
            for j in i + 1..i1 {
                let u = f[i * n + j];
                if u != T::zero() {
                    let off = (j - i - 1) * s;
                    axpy_neg(bi, u, &later[off..off + k]);
                }
            }
            let d = f[i * n + i];
            for v in bi.iter_mut() {
                *v /= d;
            }
        }
        i1 = i0;
    }
}

macro_rules! impl_nalgebra {
    ($t:ty, $mm:ident) => {
        impl Backend<$t> for Nalgebra {
            type Lu = NalgebraLu<$t>;

            fn name(&self) -> &'static str {
                "nalgebra"
            }

            fn threads(&self) -> Threads {
                self.threads
            }

            fn product_threads(&self, dims: GemmDims) -> usize {
                matmul_threads(dims)
            }

            fn gemm_kernel(
                &self,
                dims: GemmDims,
                alpha: $t,
                a: MatRef<'_, $t>,
                ta: Trans,
                b: MatRef<'_, $t>,
                tb: Trans,
                beta: $t,
                mut c: MatMut<'_, $t>,
            ) {
                let GemmDims { m, n, k } = dims;
                if m > NALGEBRA_SMALL_DIM && n > NALGEBRA_SMALL_DIM && k > NALGEBRA_SMALL_DIM {
                    // nalgebra hands the strides to matrixmultiply.
                    let av = view(a, ta);
                    let bv = view(b, tb);
                    let mut cv = view_mut(c);
                    cv.gemm(alpha, &av, &bv, beta);
                } else {
                    // nalgebra's own loop for small products is unsound on strided views
                    // (nalgebra issue #1616): call the kernel its fast path uses directly.
                    let (pa, rsa, csa) = raw(a, ta);
                    let (pb, rsb, csb) = raw(b, tb);
                    let rsc = row_stride(m, n, c.stride()) as isize;
                    let pc = c.as_mut_slice().as_mut_ptr();
                    // SAFETY: the shapes were checked by `Backend::gemm` and every view's slice
                    // covers (rows - 1) * stride + cols elements, so every index matrixmultiply
                    // forms from these strides is in bounds; C's strides (rsc >= n, 1) do not
                    // alias, and with beta == 0 C is not read.
                    unsafe {
                        matrixmultiply::$mm(
                            m, k, n, alpha, pa, rsa, csa, pb, rsb, csb, beta, pc, rsc, 1,
                        );
                    }
                }
            }

            fn lu_workspace(&self, n: usize) -> NalgebraLu<$t> {
                NalgebraLu {
                    n,
                    lu: vec![0.0; n * n],
                    piv: (0..n).collect(),
                    panel: vec![
                        0.0;
                        if n > LU_BLOCK {
                            (n - LU_BLOCK) * LU_BLOCK
                        } else {
                            0
                        }
                    ],
                }
            }

            fn lu_factor(&self, a: MatRef<'_, $t>, lu: &mut NalgebraLu<$t>) -> LogDet<$t> {
                let n = lu.n;
                assert!(
                    a.rows() == n && a.cols() == n,
                    "lu_factor: expected a {n}x{n} matrix"
                );
                for i in 0..n {
                    lu.lu[i * n..(i + 1) * n].copy_from_slice(a.row(i));
                }
                lu_in_place(self, lu);
                let swaps = (0..n).filter(|&i| lu.piv[i] != i).count();
                LogDet::from_lu((0..n).map(|i| lu.lu[i * n + i]), swaps % 2 == 1)
            }

            fn lu_solve(&self, lu: &mut NalgebraLu<$t>, b: MatMut<'_, $t>) {
                assert_eq!(
                    b.rows(),
                    lu.n,
                    "lu_solve: right-hand side has the wrong number of rows"
                );
                solve_in_place(self, lu, b);
            }

            fn lu_inverse(&self, lu: &mut NalgebraLu<$t>, mut out: MatMut<'_, $t>) {
                let n = lu.n;
                assert!(
                    out.rows() == n && out.cols() == n,
                    "lu_inverse: output must be {n}x{n}"
                );
                out.fill(0.0);
                for i in 0..n {
                    out.set(i, i, 1.0);
                }
                solve_in_place(self, lu, out);
            }
        }
    };
}

impl_nalgebra!(f32, sgemm);
impl_nalgebra!(f64, dgemm);

// The kernels are tested by the workspace's backend conformance suite
// (`tests/conformance.rs`, `tests/backend_suite/kernels.rs`), which every backend runs.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_name_and_threads() {
        let be = Nalgebra::new(Threads::Fixed(1));
        assert_eq!(Backend::<f64>::threads(&be), Threads::Fixed(1));
        assert_eq!(Backend::<f32>::name(&be), "nalgebra");
    }
}

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
use relgrad_core::backend::{gemm_shapes, Backend, LogDet, Threads, Trans};
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

            fn gemm(
                &self,
                alpha: $t,
                a: MatRef<'_, $t>,
                ta: Trans,
                b: MatRef<'_, $t>,
                tb: Trans,
                beta: $t,
                mut c: MatMut<'_, $t>,
            ) {
                let (m, n, k) = gemm_shapes(&a, ta, &b, tb, &c);
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    relgrad_core::backend::scale_in_place(c.rb_mut(), beta);
                    return;
                }
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
                    // SAFETY: the shapes were checked by gemm_shapes and every view's slice
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
                let mut log_abs: $t = 0.0;
                let mut negative = false;
                for i in 0..n {
                    if lu.piv[i] != i {
                        negative = !negative;
                    }
                    let p = lu.lu[i * n + i];
                    if p == 0.0 || !p.is_finite() {
                        return LogDet {
                            log_abs: <$t>::NEG_INFINITY,
                            sign: 0.0,
                        };
                    }
                    if p < 0.0 {
                        negative = !negative;
                    }
                    log_abs += p.abs().ln();
                }
                LogDet {
                    log_abs,
                    sign: if negative { -1.0 } else { 1.0 },
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use relgrad_core::Mat;

    fn backend() -> Nalgebra {
        Nalgebra::new(Threads::Auto)
    }

    /// A deterministic generator of values in `[-1, 1)`.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
    }

    /// A `rows x cols` matrix stored with row stride `stride`, padding filled with `pad`.
    fn strided<T: Scalar>(
        rng: &mut Lcg,
        rows: usize,
        cols: usize,
        stride: usize,
        pad: f64,
    ) -> Vec<T> {
        let mut v = vec![T::from_f64c(pad); rows * stride];
        for i in 0..rows {
            for j in 0..cols {
                v[i * stride + j] = T::from_f64c(rng.next());
            }
        }
        v
    }

    fn tol<T: Scalar>() -> f64 {
        if T::NAME == "f32" {
            2e-5
        } else {
            1e-13
        }
    }

    fn op<T: Scalar>(m: &MatRef<'_, T>, t: Trans, i: usize, j: usize) -> f64 {
        match t {
            Trans::No => m.get(i, j).to_f64c(),
            Trans::Yes => m.get(j, i).to_f64c(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_gemm_case<T: Scalar>(
        m: usize,
        n: usize,
        k: usize,
        ta: Trans,
        tb: Trans,
        alpha: f64,
        beta: f64,
        pad: usize,
    ) where
        Nalgebra: Backend<T>,
    {
        let be = backend();
        let mut rng = Lcg((m * 1000 + n * 100 + k) as u64 + 7);
        let (ar, ac) = match ta {
            Trans::No => (m, k),
            Trans::Yes => (k, m),
        };
        let (br, bc) = match tb {
            Trans::No => (k, n),
            Trans::Yes => (n, k),
        };
        let (sa, sb, sc) = (ac + pad, bc + 2 * pad, n + pad);
        let a = strided::<T>(&mut rng, ar, ac, sa, f64::NAN);
        let b = strided::<T>(&mut rng, br, bc, sb, f64::NAN);
        let mut c = strided::<T>(&mut rng, m, n, sc, -7.0);
        if beta == 0.0 {
            for v in c.iter_mut() {
                *v = T::nan();
            }
        }
        let c0 = c.clone();
        let av = MatRef::from_slice_with_stride(&a, ar, ac, sa);
        let bv = MatRef::from_slice_with_stride(&b, br, bc, sb);
        be.gemm(
            T::from_f64c(alpha),
            av,
            ta,
            bv,
            tb,
            T::from_f64c(beta),
            MatMut::from_slice_with_stride(&mut c, m, n, sc),
        );
        let mut scale = 1.0f64;
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                let mut abs = 0.0;
                for l in 0..k {
                    let p = op(&av, ta, i, l) * op(&bv, tb, l, j);
                    s += p;
                    abs += p.abs();
                }
                let old = if beta == 0.0 {
                    0.0
                } else {
                    beta * c0[i * sc + j].to_f64c()
                };
                let want = alpha * s + old;
                scale = scale.max(alpha.abs() * abs + old.abs());
                let got = c[i * sc + j].to_f64c();
                assert!(
                    (got - want).abs() <= tol::<T>() * (alpha.abs() * abs + old.abs() + 1.0) * (k as f64 + 1.0).sqrt(),
                    "{}: gemm {m}x{n}x{k} {ta:?} {tb:?} alpha {alpha} beta {beta}: C[{i},{j}] = {got}, want {want}",
                    T::NAME
                );
            }
            // The padding of C is never touched.
            for j in n..sc {
                assert!(
                    c[i * sc + j].to_f64c().to_bits() == c0[i * sc + j].to_f64c().to_bits(),
                    "gemm wrote outside C"
                );
            }
        }
        let _ = scale;
    }

    fn check_gemm<T: Scalar>()
    where
        Nalgebra: Backend<T>,
    {
        let shapes = [
            (1, 1, 1),
            (3, 4, 2),
            (2, 9, 7),
            (13, 9, 17),
            (8, 1, 30),
            (37, 70, 65),
            (6, 6, 6),
            (1, 12, 9),
        ];
        for &(m, n, k) in &shapes {
            for ta in [Trans::No, Trans::Yes] {
                for tb in [Trans::No, Trans::Yes] {
                    for beta in [0.0, 1.0, 0.5] {
                        for pad in [0, 3] {
                            check_gemm_case::<T>(m, n, k, ta, tb, 1.5, beta, pad);
                        }
                    }
                    check_gemm_case::<T>(m, n, k, ta, tb, -1.0, 0.0, 1);
                }
            }
        }
    }

    #[test]
    fn gemm_matches_naive_f32() {
        check_gemm::<f32>();
    }

    #[test]
    fn gemm_matches_naive_f64() {
        check_gemm::<f64>();
    }

    fn check_gemm_edge<T: Scalar>()
    where
        Nalgebra: Backend<T>,
    {
        let be = backend();
        // k == 0: C = beta C, and with beta == 0 C is zeroed without being read.
        let a = Mat::<T>::zeros(3, 0);
        let b = Mat::<T>::zeros(0, 4);
        let mut c = Mat::from_fn(3, 4, |_, _| T::nan());
        be.gemm(
            T::one(),
            a.as_ref(),
            Trans::No,
            b.as_ref(),
            Trans::No,
            T::zero(),
            c.as_mut(),
        );
        assert!(c.as_slice().iter().all(|&v| v == T::zero()));
        let mut c = Mat::from_fn(3, 4, |i, j| T::from_f64c((i + j) as f64));
        be.gemm(
            T::one(),
            a.as_ref(),
            Trans::No,
            b.as_ref(),
            Trans::No,
            T::from_f64c(0.5),
            c.as_mut(),
        );
        assert_eq!(c.get(2, 3), T::from_f64c(2.5));
        // Empty outputs are fine.
        let a = Mat::<T>::zeros(0, 5);
        let b = Mat::<T>::zeros(5, 4);
        let mut c = Mat::<T>::zeros(0, 4);
        be.gemm(
            T::one(),
            a.as_ref(),
            Trans::No,
            b.as_ref(),
            Trans::No,
            T::zero(),
            c.as_mut(),
        );
        // A single row may carry any stride (MatRef does not constrain it).
        let row = [T::one(), T::from_f64c(2.0), T::from_f64c(3.0)];
        let a = MatRef::from_slice_with_stride(&row, 1, 3, 0);
        let b = Mat::<T>::identity(3);
        let mut out = [T::nan(); 3];
        be.gemm(
            T::one(),
            a,
            Trans::No,
            b.as_ref(),
            Trans::No,
            T::zero(),
            MatMut::from_slice_with_stride(&mut out, 1, 3, 1),
        );
        assert_eq!(out, row);
    }

    #[test]
    fn gemm_edge_cases() {
        check_gemm_edge::<f32>();
        check_gemm_edge::<f64>();
    }

    #[test]
    #[should_panic(expected = "shapes do not match")]
    fn gemm_rejects_mismatched_shapes() {
        let a = Mat::<f64>::zeros(3, 4);
        let mut c = Mat::<f64>::zeros(3, 3);
        backend().gemm(
            1.0,
            a.as_ref(),
            Trans::No,
            a.as_ref(),
            Trans::No,
            0.0,
            c.as_mut(),
        );
    }

    fn logdet<T: Scalar>(a: &Mat<T>) -> LogDet<T>
    where
        Nalgebra: Backend<T>,
    {
        let be = backend();
        let mut lu = be.lu_workspace(a.rows());
        let before = a.clone();
        let ld = be.lu_factor(a.as_ref(), &mut lu);
        assert_eq!(&before, a, "lu_factor modified its input");
        ld
    }

    fn close(a: f64, b: f64, t: f64) -> bool {
        (a - b).abs() <= t * (1.0 + b.abs())
    }

    fn check_logdet_known<T: Scalar>()
    where
        Nalgebra: Backend<T>,
    {
        let t = tol::<T>() * 10.0;
        // Diagonal, with one negative entry: det = 2 * -3 * 0.5 * 4 = -12.
        let d = [2.0, -3.0, 0.5, 4.0];
        let a = Mat::<T>::from_fn(4, 4, |i, j| {
            if i == j {
                T::from_f64c(d[i])
            } else {
                T::zero()
            }
        });
        let ld = logdet(&a);
        assert!(
            close(ld.log_abs.to_f64c(), 12f64.ln(), t) && ld.sign == -T::one(),
            "{ld:?}"
        );
        // Upper and lower triangular: det = product of the diagonal (no pivoting needed for
        // the upper one; the lower one pivots but keeps the determinant).
        let n = 7;
        let upper = Mat::<T>::from_fn(n, n, |i, j| {
            if i == j {
                T::from_f64c(1.0 + i as f64)
            } else if j > i {
                T::from_f64c(10.0 + (i * n + j) as f64)
            } else {
                T::zero()
            }
        });
        let want: f64 = (1..=n).map(|i| (i as f64).ln()).sum();
        let ld = logdet(&upper);
        assert!(
            close(ld.log_abs.to_f64c(), want, t) && ld.sign == T::one(),
            "{ld:?}"
        );
        let lower = upper.transpose();
        let ld = logdet(&lower);
        assert!(
            close(ld.log_abs.to_f64c(), want, t) && ld.sign == T::one(),
            "{ld:?}"
        );
        let mut neg = lower.clone();
        neg.set(3, 3, T::from_f64c(-4.0));
        let ld = logdet(&neg);
        assert!(
            close(ld.log_abs.to_f64c(), want, t) && ld.sign == -T::one(),
            "{ld:?}"
        );
        // Permutations: one swap has det -1, a 3-cycle +1, a swap of two rows of a larger
        // identity -1.
        let swap = Mat::<T>::from_vec(2, 2, vec![T::zero(), T::one(), T::one(), T::zero()]);
        let ld = logdet(&swap);
        assert!(
            ld.log_abs.to_f64c().abs() < t && ld.sign == -T::one(),
            "{ld:?}"
        );
        let cycle = Mat::<T>::from_fn(3, 3, |i, j| {
            if j == (i + 1) % 3 {
                T::one()
            } else {
                T::zero()
            }
        });
        let ld = logdet(&cycle);
        assert!(
            ld.log_abs.to_f64c().abs() < t && ld.sign == T::one(),
            "{ld:?}"
        );
        let perm = [4usize, 1, 2, 3, 0, 5, 6, 7, 8, 9];
        let p = Mat::<T>::from_fn(10, 10, |i, j| {
            if perm[i] == j {
                T::from_f64c(2.0)
            } else {
                T::zero()
            }
        });
        let ld = logdet(&p);
        assert!(
            close(ld.log_abs.to_f64c(), 10.0 * 2f64.ln(), t) && ld.sign == -T::one(),
            "{ld:?}"
        );
        // 2x2 general: det [[1, 2], [3, 4]] = -2.
        let a = Mat::<T>::from_vec(2, 2, [1.0, 2.0, 3.0, 4.0].map(T::from_f64c).to_vec());
        let ld = logdet(&a);
        assert!(
            close(ld.log_abs.to_f64c(), 2f64.ln(), t) && ld.sign == -T::one(),
            "{ld:?}"
        );
        // The empty matrix has determinant 1.
        let ld = logdet(&Mat::<T>::zeros(0, 0));
        assert!(ld.log_abs == T::zero() && ld.sign == T::one(), "{ld:?}");
    }

    #[test]
    fn logdet_of_known_matrices() {
        check_logdet_known::<f32>();
        check_logdet_known::<f64>();
    }

    fn check_singular<T: Scalar>()
    where
        Nalgebra: Backend<T>,
    {
        let cases = [
            Mat::<T>::zeros(3, 3),
            Mat::<T>::from_vec(2, 2, [1.0, 2.0, 2.0, 4.0].map(T::from_f64c).to_vec()),
            // A zero column in a matrix large enough for the blocked paths.
            Mat::<T>::from_fn(150, 150, |i, j| {
                if j == 100 {
                    T::zero()
                } else {
                    T::from_f64c(if i == j {
                        3.0
                    } else {
                        ((i * 7 + j * 13) % 17) as f64 / 17.0
                    })
                }
            }),
        ];
        for a in &cases {
            let ld = logdet(a);
            assert!(ld.is_singular() && ld.sign == T::zero(), "{ld:?}");
            assert!(ld.log_abs == T::neg_infinity(), "{ld:?}");
        }
    }

    #[test]
    fn singular_matrices_give_sign_zero() {
        check_singular::<f32>();
        check_singular::<f64>();
    }

    /// A well-conditioned, non-symmetric random matrix.
    fn random_matrix<T: Scalar>(rng: &mut Lcg, n: usize) -> Mat<T> {
        Mat::from_fn(n, n, |i, j| {
            T::from_f64c(
                rng.next() + if i == j { 2.0 } else { 0.0 } + if j == i + 1 { 1.0 } else { 0.0 },
            )
        })
    }

    /// `log|det A|` and its sign by Gaussian elimination with partial pivoting in `f64`.
    fn reference_logdet<T: Scalar>(a: &Mat<T>) -> (f64, f64) {
        let n = a.rows();
        let mut m: Vec<f64> = a.as_slice().iter().map(|v| v.to_f64c()).collect();
        let (mut log_abs, mut sign) = (0.0, 1.0);
        for j in 0..n {
            let p = (j..n)
                .max_by(|&x, &y| m[x * n + j].abs().total_cmp(&m[y * n + j].abs()))
                .unwrap();
            if p != j {
                for c in 0..n {
                    m.swap(j * n + c, p * n + c);
                }
                sign = -sign;
            }
            let d = m[j * n + j];
            if d < 0.0 {
                sign = -sign;
            }
            log_abs += d.abs().ln();
            for i in j + 1..n {
                let l = m[i * n + j] / d;
                for c in j..n {
                    m[i * n + c] -= l * m[j * n + c];
                }
            }
        }
        (log_abs, sign)
    }

    /// `max |A X - B|` relative to `|A| |X| + |B|`, row-major `X`, `B` with strides.
    fn residual<T: Scalar>(a: &Mat<T>, x: &[T], sx: usize, b: &[T], sb: usize, k: usize) -> f64 {
        let n = a.rows();
        let mut worst = 0.0f64;
        for i in 0..n {
            for j in 0..k {
                let mut s = 0.0;
                let mut abs = 0.0;
                for l in 0..n {
                    let p = a.get(i, l).to_f64c() * x[l * sx + j].to_f64c();
                    s += p;
                    abs += p.abs();
                }
                let bij = b[i * sb + j].to_f64c();
                worst = worst.max((s - bij).abs() / (abs + bij.abs()));
            }
        }
        worst
    }

    fn check_solve_inverse<T: Scalar>()
    where
        Nalgebra: Backend<T>,
    {
        let be = backend();
        let bound = if T::NAME == "f32" { 1e-4 } else { 1e-12 };
        let mut rng = Lcg(42);
        for &n in &[1usize, 2, 5, 33, 64, 65, 150] {
            let a = random_matrix::<T>(&mut rng, n);
            let mut lu = be.lu_workspace(n);
            let ld = be.lu_factor(a.as_ref(), &mut lu);
            let (want, sign) = reference_logdet(&a);
            assert!(
                close(ld.log_abs.to_f64c(), want, bound * 10.0) && ld.sign.to_f64c() == sign,
                "{} n={n}: {ld:?} vs ({want}, {sign})",
                T::NAME
            );
            // Solve with a strided right-hand side, then more columns than ever before, then
            // a single column.
            for &(k, stride) in &[(3usize, 5usize), (n + 7, n + 9), (1, 1)] {
                let b = strided::<T>(&mut rng, n, k, stride, f64::NAN);
                let mut x = b.clone();
                be.lu_solve(
                    &mut lu,
                    MatMut::from_slice_with_stride(&mut x, n, k, stride),
                );
                let r = residual(&a, &x, stride, &b, stride, k);
                assert!(r < bound, "{} n={n} k={k}: solve residual {r}", T::NAME);
                for i in 0..n {
                    for j in k..stride {
                        assert!(x[i * stride + j].is_nan(), "lu_solve wrote outside b");
                    }
                }
            }
            // Inverse into a strided output: A A^{-1} = I; then a solve still works.
            let so = n + 4;
            let mut inv = vec![T::nan(); n * so];
            be.lu_inverse(&mut lu, MatMut::from_slice_with_stride(&mut inv, n, n, so));
            let eye = Mat::<T>::identity(n);
            let r = residual(&a, &inv, so, eye.as_slice(), n, n);
            assert!(r < bound, "{} n={n}: inverse residual {r}", T::NAME);
            for i in 0..n {
                for j in n..so {
                    assert!(inv[i * so + j].is_nan(), "lu_inverse wrote outside out");
                }
            }
            let b = strided::<T>(&mut rng, n, 2, 2, 0.0);
            let mut x = b.clone();
            be.lu_solve(&mut lu, MatMut::from_slice(&mut x, n, 2));
            let r = residual(&a, &x, 2, &b, 2, 2);
            assert!(
                r < bound,
                "{} n={n}: solve after inverse, residual {r}",
                T::NAME
            );
            // Solving with A, not A^T: compare against the product A x.
            if n > 1 {
                let at = a.transpose();
                let mut lu_t = be.lu_workspace(n);
                be.lu_factor(at.as_ref(), &mut lu_t);
                let mut y = b.clone();
                be.lu_solve(&mut lu_t, MatMut::from_slice(&mut y, n, 2));
                assert!(residual(&at, &y, 2, &b, 2, 2) < bound);
                let diff = x
                    .iter()
                    .zip(&y)
                    .map(|(p, q)| (p.to_f64c() - q.to_f64c()).abs())
                    .fold(0.0, f64::max);
                assert!(
                    diff > 1e-3,
                    "solutions with A and A^T coincide: the test matrix is too symmetric"
                );
            }
        }
    }

    #[test]
    fn solve_and_inverse_residuals_f32() {
        check_solve_inverse::<f32>();
    }

    #[test]
    fn solve_and_inverse_residuals_f64() {
        check_solve_inverse::<f64>();
    }

    #[test]
    fn workspace_is_reusable() {
        let be = backend();
        let mut rng = Lcg(3);
        let mut lu = Backend::<f64>::lu_workspace(&be, 20);
        for _ in 0..3 {
            let a = random_matrix::<f64>(&mut rng, 20);
            let ld = be.lu_factor(a.as_ref(), &mut lu);
            let (want, sign) = reference_logdet(&a);
            assert!(close(ld.log_abs, want, 1e-12) && ld.sign == sign);
        }
        // A singular matrix followed by a regular one.
        be.lu_factor(Mat::<f64>::zeros(20, 20).as_ref(), &mut lu);
        let a = random_matrix::<f64>(&mut rng, 20);
        let ld = be.lu_factor(a.as_ref(), &mut lu);
        assert!(close(ld.log_abs, reference_logdet(&a).0, 1e-12));
    }

    #[test]
    fn reports_name_and_threads() {
        let be = Nalgebra::new(Threads::Fixed(1));
        assert_eq!(Backend::<f64>::threads(&be), Threads::Fixed(1));
        assert_eq!(Backend::<f32>::name(&be), "nalgebra");
    }
}

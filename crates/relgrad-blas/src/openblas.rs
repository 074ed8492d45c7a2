//! The backend itself, compiled only with the `system` feature (see the crate docs).

extern crate openblas_src as _;

use std::os::raw::c_int;
use std::sync::{Mutex, MutexGuard, OnceLock};

use cblas_sys::{
    cblas_dgemm, cblas_dtrsm, cblas_sgemm, cblas_strsm, CBLAS_DIAG, CBLAS_LAYOUT, CBLAS_SIDE,
    CBLAS_TRANSPOSE, CBLAS_UPLO,
};
use lapack_sys::{dgetrf_, dgetri_, sgetrf_, sgetri_};
use relgrad_core::backend::{Backend, GemmDims, LogDet, Threads, Trans};
use relgrad_core::matrix::{MatMut, MatRef};

extern "C" {
    /// OpenBLAS: sets the number of threads used by subsequent calls (process-global).
    fn openblas_set_num_threads(num_threads: c_int);
}

/// Calls with at least this many multiply-adds use threads under [`Threads::Auto`] (the same
/// threshold as the faer backend).
pub const AUTO_PARALLEL_MIN_FLOPS: usize = 2_000_000;

/// The thread count last passed to `openblas_set_num_threads` (`0`: never set by us).
static LAST_THREADS: Mutex<usize> = Mutex::new(0);

/// Sets OpenBLAS's thread count to `n` (if it is not already) and returns the lock on it:
/// while the caller holds the lock no other call of this backend changes the count.
fn apply_threads(n: usize) -> MutexGuard<'static, usize> {
    let n = n.clamp(1, c_int::MAX as usize);
    let mut last = LAST_THREADS.lock().unwrap_or_else(|e| e.into_inner());
    if *last != n {
        // SAFETY: a plain setter of OpenBLAS's global thread count.
        unsafe { openblas_set_num_threads(n as c_int) };
        *last = n;
    }
    last
}

/// The machine's parallelism, asked once (the query reads system files and allocates).
fn available_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The OpenBLAS backend. Cheap to copy; holds only the threading setting.
///
/// ```
/// use relgrad_core::{Backend, Mat, Threads, Trans};
/// use relgrad_blas::Blas;
///
/// let be = Blas::new(Threads::Auto);
/// let a = Mat::<f64>::from_vec(2, 2, vec![2.0, 1.0, 1.0, 3.0]);
/// let mut c = Mat::<f64>::zeros(2, 2);
/// be.gemm(1.0, a.as_ref(), Trans::No, a.as_ref(), Trans::Yes, 0.0, c.as_mut());
/// assert_eq!(c.as_slice(), &[5.0, 5.0, 5.0, 10.0]);
///
/// let mut lu = Backend::<f64>::lu_workspace(&be, 2);
/// let ld = be.lu_factor(a.as_ref(), &mut lu);
/// assert!((ld.log_abs - 5.0f64.ln()).abs() < 1e-12 && ld.sign == 1.0);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Blas {
    threads: Threads,
}

impl Blas {
    /// A backend with the given threading setting (applied to OpenBLAS per call, see the
    /// crate docs).
    pub fn new(threads: Threads) -> Self {
        Self { threads }
    }

    /// A sequential backend.
    pub fn sequential() -> Self {
        Self::new(Threads::Fixed(1))
    }

    /// The thread count this backend uses for a call of `work` multiply-adds.
    pub fn threads_for(&self, work: usize) -> usize {
        match self.threads {
            Threads::Fixed(n) => n.max(1),
            Threads::Auto => {
                if work >= AUTO_PARALLEL_MIN_FLOPS {
                    available_threads()
                } else {
                    1
                }
            }
        }
    }

    /// Sets the count for a call of `work` multiply-adds. The lock is let go at once: a
    /// product or solve that finds the count changed by another thread only runs on more
    /// or fewer threads.
    fn set_threads(&self, work: usize) {
        drop(apply_threads(self.threads_for(work)));
    }
}

/// LU workspace for OpenBLAS: the factors as LAPACK returns them for the transposed matrix
/// (see the crate docs), the pivot indices and `getri`'s work array.
pub struct BlasLu<T> {
    n: usize,
    lu: Vec<T>,
    /// LAPACK's one-based `ipiv`.
    ipiv: Vec<c_int>,
    work: Vec<T>,
    singular: bool,
}

impl<T> BlasLu<T> {
    /// The dimension this workspace factors.
    pub fn dim(&self) -> usize {
        self.n
    }
}

impl<T> core::fmt::Debug for BlasLu<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlasLu")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

/// A valid leading dimension for a row-major `rows x cols` matrix with row stride `stride`
/// (a matrix of at most one row may carry any stride; BLAS wants at least `max(1, cols)`).
#[inline]
fn ld(rows: usize, cols: usize, stride: usize) -> c_int {
    let s = if rows <= 1 { cols.max(1) } else { stride };
    to_int(s)
}

#[inline]
fn to_int(x: usize) -> c_int {
    c_int::try_from(x).expect("relgrad-blas: dimension does not fit in a BLAS integer")
}

#[inline]
fn trans(t: Trans) -> CBLAS_TRANSPOSE {
    match t {
        Trans::No => CBLAS_TRANSPOSE::CblasNoTrans,
        Trans::Yes => CBLAS_TRANSPOSE::CblasTrans,
    }
}

/// Swaps rows `i < j` (each `len` long, `stride` apart) of `data`.
#[inline]
fn swap_rows<T>(data: &mut [T], i: usize, j: usize, len: usize, stride: usize) {
    debug_assert!(i < j);
    let (top, bottom) = data.split_at_mut(j * stride);
    top[i * stride..i * stride + len].swap_with_slice(&mut bottom[..len]);
}

macro_rules! impl_blas {
    ($t:ty, $gemm:ident, $trsm:ident, $getrf:ident, $getri:ident) => {
        impl Backend<$t> for Blas {
            type Lu = BlasLu<$t>;

            fn name(&self) -> &'static str {
                "openblas"
            }

            fn threads(&self) -> Threads {
                self.threads
            }

            fn product_threads(&self, dims: GemmDims) -> usize {
                self.threads_for(dims.work())
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
                self.set_threads(dims.work());
                let lda = ld(a.rows(), a.cols(), a.stride());
                let ldb = ld(b.rows(), b.cols(), b.stride());
                let ldc = ld(c.rows(), c.cols(), c.stride());
                // SAFETY: the shapes were checked; each view's slice covers
                // (rows - 1) * ld + cols elements, which is what row-major BLAS reads/writes.
                unsafe {
                    $gemm(
                        CBLAS_LAYOUT::CblasRowMajor,
                        trans(ta),
                        trans(tb),
                        to_int(m),
                        to_int(n),
                        to_int(k),
                        alpha,
                        a.as_slice().as_ptr(),
                        lda,
                        b.as_slice().as_ptr(),
                        ldb,
                        beta,
                        c.as_mut_slice().as_mut_ptr(),
                        ldc,
                    );
                }
            }

            fn lu_workspace(&self, n: usize) -> BlasLu<$t> {
                let ni = to_int(n);
                let mut lu: Vec<$t> = vec![0.0; n * n];
                let ipiv: Vec<c_int> = (1..=ni).collect();
                let mut lwork = n.max(1);
                if n > 0 {
                    // Workspace query: getri reports its optimal work size in `w`.
                    let mut w: $t = 0.0;
                    let (query, mut info) = (-1 as c_int, 0 as c_int);
                    // SAFETY: a workspace query only writes `w` and `info`.
                    unsafe {
                        $getri(
                            &ni,
                            lu.as_mut_ptr(),
                            &ni,
                            ipiv.as_ptr(),
                            &mut w,
                            &query,
                            &mut info,
                        );
                    }
                    if info == 0 && w.is_finite() && w > 0.0 {
                        lwork = lwork.max(w as usize);
                    }
                }
                BlasLu {
                    n,
                    lu,
                    ipiv,
                    work: vec![0.0; lwork],
                    singular: false,
                }
            }

            fn lu_factor(&self, a: MatRef<'_, $t>, lu: &mut BlasLu<$t>) -> LogDet<$t> {
                let n = lu.n;
                assert!(
                    a.rows() == n && a.cols() == n,
                    "lu_factor: expected a {n}x{n} matrix"
                );
                // Row-major copy: LAPACK sees A^T, whose determinant is det A.
                for i in 0..n {
                    lu.lu[i * n..(i + 1) * n].copy_from_slice(a.row(i));
                }
                lu.singular = false;
                if n == 0 {
                    return LogDet {
                        log_abs: 0.0,
                        sign: 1.0,
                    };
                }
                // Always sequential: OpenBLAS's threaded getrf keeps arrays sized for its
                // maximum thread count on the stack at every level of its recursion and
                // overflows the 2 MiB stacks of ordinary Rust threads (see the crate docs).
                // The lock is held until getrf returns, so that no other thread's call sets
                // more threads meanwhile.
                let _one_thread = apply_threads(1);
                let ni = to_int(n);
                let mut info: c_int = 0;
                // SAFETY: lu is n x n with leading dimension n, ipiv has n entries.
                unsafe {
                    $getrf(
                        &ni,
                        &ni,
                        lu.lu.as_mut_ptr(),
                        &ni,
                        lu.ipiv.as_mut_ptr(),
                        &mut info,
                    );
                }
                // info > 0 reports an exactly zero pivot; the factorisation is complete and
                // `from_lu` finds that pivot.
                assert!(info >= 0, "relgrad-blas: getrf rejected argument {}", -info);
                let swaps = (0..n).filter(|&i| lu.ipiv[i] as usize != i + 1).count();
                let ld = LogDet::from_lu((0..n).map(|i| lu.lu[i * n + i]), swaps % 2 == 1);
                lu.singular = ld.is_singular();
                ld
            }

            fn lu_solve(&self, lu: &mut BlasLu<$t>, mut b: MatMut<'_, $t>) {
                let n = lu.n;
                assert_eq!(
                    b.rows(),
                    n,
                    "lu_solve: right-hand side has the wrong number of rows"
                );
                let k = b.cols();
                if n == 0 || k == 0 {
                    return;
                }
                self.set_threads(n.saturating_mul(n).saturating_mul(k));
                let (ni, ki) = (to_int(n), to_int(k));
                let ldb = ld(n, k, b.stride());
                let s = ldb as usize;
                let data = b.as_mut_slice();
                // SAFETY: the factors are n x n with leading dimension n; b covers
                // (n - 1) * ldb + k elements.
                unsafe {
                    // (U^T)^{-1} B: U^T is the lower triangle of the row-major factors.
                    $trsm(
                        CBLAS_LAYOUT::CblasRowMajor,
                        CBLAS_SIDE::CblasLeft,
                        CBLAS_UPLO::CblasLower,
                        CBLAS_TRANSPOSE::CblasNoTrans,
                        CBLAS_DIAG::CblasNonUnit,
                        ni,
                        ki,
                        1.0,
                        lu.lu.as_ptr(),
                        ni,
                        data.as_mut_ptr(),
                        ldb,
                    );
                    // (L^T)^{-1}: the strict upper triangle, unit diagonal.
                    $trsm(
                        CBLAS_LAYOUT::CblasRowMajor,
                        CBLAS_SIDE::CblasLeft,
                        CBLAS_UPLO::CblasUpper,
                        CBLAS_TRANSPOSE::CblasNoTrans,
                        CBLAS_DIAG::CblasUnit,
                        ni,
                        ki,
                        1.0,
                        lu.lu.as_ptr(),
                        ni,
                        data.as_mut_ptr(),
                        ldb,
                    );
                }
                // Multiply by P = S_1 S_2 ... S_n: the interchanges in reverse order.
                for i in (0..n).rev() {
                    let p = lu.ipiv[i] as usize - 1;
                    if p != i {
                        swap_rows(data, i, p, k, s);
                    }
                }
            }

            fn lu_inverse(&self, lu: &mut BlasLu<$t>, mut out: MatMut<'_, $t>) {
                let n = lu.n;
                assert!(
                    out.rows() == n && out.cols() == n,
                    "lu_inverse: output must be {n}x{n}"
                );
                if n == 0 {
                    return;
                }
                // Column j of the column-major factors becomes row j of `out`, so that `out`
                // read column-major (leading dimension = its stride) is getrf's output.
                for j in 0..n {
                    out.row_mut(j).copy_from_slice(&lu.lu[j * n..(j + 1) * n]);
                }
                if lu.singular {
                    return;
                }
                self.set_threads(n.saturating_mul(n).saturating_mul(n));
                let ni = to_int(n);
                let lda = ld(n, n, out.stride());
                let lwork = to_int(lu.work.len());
                let mut info: c_int = 0;
                // SAFETY: out covers (n - 1) * lda + n elements, ipiv has n entries and
                // work has lwork.
                unsafe {
                    $getri(
                        &ni,
                        out.as_mut_slice().as_mut_ptr(),
                        &lda,
                        lu.ipiv.as_ptr(),
                        lu.work.as_mut_ptr(),
                        &lwork,
                        &mut info,
                    );
                }
                assert!(info >= 0, "relgrad-blas: getri rejected argument {}", -info);
            }
        }
    };
}

impl_blas!(f32, cblas_sgemm, cblas_strsm, sgetrf_, sgetri_);
impl_blas!(f64, cblas_dgemm, cblas_dtrsm, dgetrf_, dgetri_);

// The kernels are tested by the workspace's backend conformance suite
// (`tests/conformance.rs`, `tests/backend_suite/kernels.rs`), which every backend runs,
// including the OpenBLAS-specific check that threaded calls fit in small thread stacks.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_name_and_threads() {
        let be = Blas::new(Threads::Fixed(1));
        assert_eq!(Backend::<f64>::threads(&be), Threads::Fixed(1));
        assert_eq!(Backend::<f32>::name(&be), "openblas");
    }
}

#[cfg(test)]
mod concurrency {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// OpenBLAS's thread count is process-global, and its threaded `getrf` overflows an
    /// ordinary thread's stack (see the crate docs). A factorisation must stay sequential
    /// even while another thread's backend sets two threads between its calls: the
    /// conformance suite, whose tests run concurrently with different settings, once
    /// crashed there with SIGSEGV.
    #[test]
    fn factorisations_stay_sequential_while_another_thread_sets_threads() {
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let two = Blas::new(Threads::Fixed(2));
                let a = relgrad_core::Mat::<f64>::from_fn(8, 8, |i, j| (i + j) as f64);
                let mut c = relgrad_core::Mat::<f64>::zeros(8, 8);
                while !stop.load(Ordering::Relaxed) {
                    two.gemm(
                        1.0,
                        a.as_ref(),
                        Trans::No,
                        a.as_ref(),
                        Trans::No,
                        0.0,
                        c.as_mut(),
                    );
                }
            });
            // A test thread's stack (2 MiB), as in the suite.
            let one = Blas::sequential();
            let n = 256;
            let a = relgrad_core::Mat::<f64>::from_fn(n, n, |i, j| {
                if i == j {
                    n as f64
                } else {
                    ((i * 7 + j * 13) % 17) as f64 / 17.0
                }
            });
            let mut lu = Backend::<f64>::lu_workspace(&one, n);
            let all_finite = (0..1000).all(|_| {
                let ld = one.lu_factor(a.as_ref(), &mut lu);
                ld.log_abs.is_finite() && ld.sign == 1.0
            });
            // Stop the other thread before asserting, so that a failure cannot hang.
            stop.store(true, Ordering::Relaxed);
            assert!(all_finite);
        });
    }
}

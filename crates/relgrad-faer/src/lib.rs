//! The faer backend for relgrad: products through `faer::linalg::matmul::matmul` and LU
//! through faer's low-level partial-pivoting kernels, all on caller-owned memory with
//! scratch sized up front, so nothing allocates after a workspace is made.
//!
//! Parallelism is explicit: [`Faer::new`] takes a [`Threads`] setting. With
//! [`Threads::Auto`] (the default) small products run sequentially and large ones on
//! all threads, because handing a product to other threads costs more than it saves
//! below a few million multiply-adds: from `5 x 10^6` (`D` about 220 at `B = 100`) when
//! the caller is outside rayon's pool, from `2.5 x 10^6` when it is one of the pool's
//! workers ([`use_current_thread`]), measured on the two-core machines this was tuned
//! on (see `docs/benchmarks.md`). Skinny products that stream a weight larger than one
//! core's cache (`B = 10` against `D >= 512`) use threads from `2 x 10^6`. Core's own
//! loops (the fused training step's pass over the weights) split through
//! `Backend::parts` and `Backend::join` from `10^7`, on the rayon thread pool that
//! faer's products use.

use dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::lu::partial_pivoting::{factor, inverse, solve};
use faer::linalg::matmul::matmul;
use faer::perm::PermRef;
use faer::{Accum, MatMut as FMatMut, MatRef as FMatRef, Par};
use relgrad_core::backend::{Backend, GemmDims, LogDet, Threads, Trans};
use relgrad_core::matrix::{MatMut, MatRef};
use relgrad_core::Scalar;

/// Under [`Threads::Auto`], the fused step's pass over a layer (its work counted as
/// `relgrad_core::step::pass_parts` does) uses threads from this many multiply-adds.
pub const AUTO_PARALLEL_MIN_FLOPS: usize = 10_000_000;

/// Under [`Threads::Auto`], a product called from a thread outside the pool uses threads
/// from this many multiply-adds (`m * n * k`): handing it to the pool's threads and waking
/// up afterwards costs tens of microseconds. Measured with `relgrad bench --precision f32
/// --threads 1,2 --batch 100` from outside the pool, relative gradient: one thread is
/// faster up to `D = 192` (3.7 million; 0.54 against 0.58 ms), two from `D = 256` (6.6
/// million; 0.81 against 1.03 ms).
pub const AUTO_PRODUCT_MIN_FLOPS: usize = 5_000_000;

/// [`AUTO_PRODUCT_MIN_FLOPS`] for a caller that is itself one of the pool's workers (see
/// [`use_current_thread`]): it runs its share itself and nobody sleeps. Measured as above
/// from a worker: even at `D = 128` (1.6 million; 0.240 against 0.236 ms), two threads
/// faster from `D = 160` (2.6 million; 0.35 against 0.38 ms) and at `D = 192` (0.44
/// against 0.54 ms).
pub const AUTO_PRODUCT_MIN_FLOPS_IN_POOL: usize = 2_500_000;

/// Skinny products (a small batch against a large weight) use threads from this many
/// multiply-adds when one operand has at least [`AUTO_PARALLEL_LARGE_OPERAND`] elements:
/// streaming that operand, not the arithmetic, is then what two cores share.
pub const AUTO_PARALLEL_SKINNY_MIN_FLOPS: usize = 2_000_000;

/// Elements of an operand (1 MiB of `f32`, more than one core's L2 cache on the machines
/// this was measured on) from which a product counts as streaming it.
pub const AUTO_PARALLEL_LARGE_OPERAND: usize = 1 << 18;

/// The faer backend. Cheap to copy; holds only the threading setting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faer {
    threads: Threads,
}

impl Faer {
    /// A backend with the given threading setting.
    pub fn new(threads: Threads) -> Self {
        Self { threads }
    }

    /// A sequential backend.
    pub fn sequential() -> Self {
        Self::new(Threads::Fixed(1))
    }

    /// The threads for `work` multiply-adds of core's own loops under this backend's
    /// setting.
    fn threads_for(&self, work: usize) -> usize {
        match self.threads {
            Threads::Fixed(n) => n.max(1),
            Threads::Auto if work < AUTO_PARALLEL_MIN_FLOPS => 1,
            Threads::Auto => available_threads(),
        }
    }

    /// The threads for a product: by its multiply-adds (see [`AUTO_PRODUCT_MIN_FLOPS`]),
    /// or, for a skinny product that streams a large operand, from
    /// [`AUTO_PARALLEL_SKINNY_MIN_FLOPS`] on. Measured with `relgrad bench --threads 1,2`
    /// (f32, AVX-512, two cores): at `B = 10` the relative gradient takes 0.99 against
    /// 1.14 ms at `D = 512` on two threads.
    fn product_threads_for(&self, dims: GemmDims) -> usize {
        let largest = (dims.m * dims.k).max(dims.k * dims.n).max(dims.m * dims.n);
        let work = dims.work();
        let min = if rayon::current_thread_index().is_some() {
            AUTO_PRODUCT_MIN_FLOPS_IN_POOL
        } else {
            AUTO_PRODUCT_MIN_FLOPS
        };
        let skinny =
            largest >= AUTO_PARALLEL_LARGE_OPERAND && work >= AUTO_PARALLEL_SKINNY_MIN_FLOPS;
        match self.threads {
            Threads::Fixed(n) => n.max(1),
            Threads::Auto if skinny || work >= min => available_threads(),
            Threads::Auto => 1,
        }
    }

    fn par_product(&self, dims: GemmDims) -> Par {
        par(self.product_threads_for(dims))
    }

    fn par(&self, work: usize) -> Par {
        par(self.threads_for(work))
    }
}

/// faer's setting for `threads` threads.
fn par(threads: usize) -> Par {
    match threads {
        1 => Par::Seq,
        n => Par::rayon(n),
    }
}

/// Makes the calling thread one of the workers of rayon's global thread pool, the pool
/// faer's products and the fused step's pass run on; returns `false`, changing nothing,
/// if the pool was already built. Call it once, first thing in `main`.
///
/// A thread outside the pool hands every parallel product and pass to the pool's threads
/// and sleeps until they are done: four hand-overs per training step with two layers. A
/// worker runs its share itself and wakes nobody. Measured on the MNIST recipe's step
/// (`D = 784`, `B = 10`, Adam, f32, two cores, seven alternating runs): 0.95 against 1.02 ms
/// median.
pub fn use_current_thread() -> bool {
    rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global()
        .is_ok()
}

/// The machine's parallelism, asked once (the query reads system files and allocates).
fn available_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn view<'a, T: faer::traits::ComplexField + Scalar>(m: MatRef<'a, T>, t: Trans) -> FMatRef<'a, T> {
    // A single row may have any stride in relgrad; faer wants one of at least `cols`.
    let stride = if m.rows() <= 1 {
        m.stride().max(m.cols())
    } else {
        m.stride()
    };
    let v = FMatRef::from_row_major_slice_with_stride(m.as_slice(), m.rows(), m.cols(), stride);
    match t {
        Trans::No => v,
        Trans::Yes => v.transpose(),
    }
}

fn view_mut<'a, T: faer::traits::ComplexField + Scalar>(m: MatMut<'a, T>) -> FMatMut<'a, T> {
    let (r, c) = (m.rows(), m.cols());
    let s = if r <= 1 {
        m.stride().max(c)
    } else {
        m.stride()
    };
    // Not `from_row_major_slice_with_stride_mut`: in faer 0.24.4 it builds a
    // column-major view (row stride 1), which writes out of bounds for strided data.
    // The transpose of a column-major view is the row-major view we want.
    FMatMut::from_column_major_slice_with_stride_mut(m.into_slice(), c, r, s).transpose_mut()
}

/// LU workspace for faer: the factors (column-major), both permutation arrays and the
/// scratch memory of factor, solve and inverse.
pub struct FaerLu<T> {
    n: usize,
    lu: Vec<T>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    mem: MemBuffer,
    rhs_cap: usize,
    par: Par,
}

impl<T> core::fmt::Debug for FaerLu<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FaerLu")
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

macro_rules! impl_faer {
    ($t:ty) => {
        impl Backend<$t> for Faer {
            type Lu = FaerLu<$t>;

            fn parts(&self, work: usize) -> usize {
                self.threads_for(work)
            }

            fn product_threads(&self, dims: GemmDims) -> usize {
                self.product_threads_for(dims)
            }

            fn join<RA: Send, RB: Send>(
                &self,
                a: impl FnOnce() -> RA + Send,
                b: impl FnOnce() -> RB + Send,
            ) -> (RA, RB) {
                rayon::join(a, b)
            }

            fn name(&self) -> &'static str {
                "faer"
            }

            fn threads(&self) -> Threads {
                self.threads
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
                let par = self.par_product(dims);
                // faer's product replaces or adds: any other beta scales C first.
                let accum = if beta == 0.0 {
                    Accum::Replace
                } else {
                    if beta != 1.0 {
                        relgrad_core::backend::scale_in_place(c.rb_mut(), beta);
                    }
                    Accum::Add
                };
                matmul(view_mut(c), accum, view(a, ta), view(b, tb), alpha, par);
            }

            fn lu_workspace(&self, n: usize) -> FaerLu<$t> {
                let par = self.par(n * n * n / 3);
                let req = StackReq::any_of(&[
                    factor::lu_in_place_scratch::<usize, $t>(n, n, par, Default::default()),
                    solve::solve_in_place_scratch::<usize, $t>(n, n, par),
                    inverse::inverse_scratch::<usize, $t>(n, par),
                ]);
                FaerLu {
                    n,
                    lu: vec![0.0; n * n],
                    perm: vec![0; n],
                    perm_inv: vec![0; n],
                    mem: MemBuffer::new(req),
                    rhs_cap: n,
                    par,
                }
            }

            fn lu_factor(&self, a: MatRef<'_, $t>, lu: &mut FaerLu<$t>) -> LogDet<$t> {
                let n = lu.n;
                assert!(
                    a.rows() == n && a.cols() == n,
                    "lu_factor: expected a {n}x{n} matrix"
                );
                // Store column-major: copy the transpose of the row-major rows.
                for i in 0..n {
                    let row = a.row(i);
                    for j in 0..n {
                        lu.lu[j * n + i] = row[j];
                    }
                }
                let mut f = FMatMut::from_column_major_slice_mut(&mut lu.lu, n, n);
                let (info, _) = factor::lu_in_place(
                    f.as_mut(),
                    &mut lu.perm,
                    &mut lu.perm_inv,
                    lu.par,
                    MemStack::new(&mut lu.mem),
                    Default::default(),
                );
                LogDet::from_lu(
                    (0..n).map(|i| lu.lu[i * n + i]),
                    info.transposition_count % 2 == 1,
                )
            }

            fn lu_solve(&self, lu: &mut FaerLu<$t>, b: MatMut<'_, $t>) {
                let n = lu.n;
                assert_eq!(
                    b.rows(),
                    n,
                    "lu_solve: right-hand side has the wrong number of rows"
                );
                if b.cols() > lu.rhs_cap {
                    // Only a right-hand side wider than any before grows the scratch.
                    let req = StackReq::any_of(&[
                        solve::solve_in_place_scratch::<usize, $t>(n, b.cols(), lu.par),
                        inverse::inverse_scratch::<usize, $t>(n, lu.par),
                    ]);
                    lu.mem = MemBuffer::new(req);
                    lu.rhs_cap = b.cols();
                }
                let f = FMatRef::from_column_major_slice(&lu.lu, n, n);
                let perm = PermRef::new_checked(&lu.perm, &lu.perm_inv, n);
                solve::solve_in_place(f, f, perm, view_mut(b), lu.par, MemStack::new(&mut lu.mem));
            }

            fn lu_inverse(&self, lu: &mut FaerLu<$t>, out: MatMut<'_, $t>) {
                let n = lu.n;
                assert!(
                    out.rows() == n && out.cols() == n,
                    "lu_inverse: output must be {n}x{n}"
                );
                let f = FMatRef::from_column_major_slice(&lu.lu, n, n);
                let perm = PermRef::new_checked(&lu.perm, &lu.perm_inv, n);
                inverse::inverse(
                    view_mut(out),
                    f,
                    f,
                    perm,
                    lu.par,
                    MemStack::new(&mut lu.mem),
                );
            }
        }
    };
}

impl_faer!(f32);
impl_faer!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(m: usize, k: usize, n: usize) -> GemmDims {
        GemmDims { m, k, n }
    }

    #[test]
    fn products_get_threads_by_the_rule() {
        let all = available_threads();
        let auto = Faer::new(Threads::Auto);
        let threads = |d| <Faer as Backend<f32>>::product_threads(&auto, d);
        // Outside the pool (a test's thread): one thread below 5 x 10^6 multiply-adds
        // (B = 100, D = 192), all of them from there (B = 100, D = 256).
        assert!(rayon::current_thread_index().is_none());
        assert_eq!(threads(dims(100, 192, 192)), 1);
        assert_eq!(threads(dims(100, 256, 256)), all);
        // On one of the pool's workers from 2.5 x 10^6 (B = 100, D = 160, not D = 128).
        let inside = rayon::scope(|_| {
            assert!(rayon::current_thread_index().is_some());
            (threads(dims(100, 128, 128)), threads(dims(100, 160, 160)))
        });
        assert_eq!(inside, (1, all));
        // A skinny product that streams a weight of 2^18 or more elements, from 2 x 10^6:
        // B = 10, D = 512 (2.6 x 10^6), but not B = 4, D = 512 (1.0 x 10^6).
        assert_eq!(threads(dims(10, 512, 512)), all);
        assert_eq!(threads(dims(4, 512, 512)), 1);
        // A fixed setting is what it says, and the fused pass's parts follow the same rule.
        let two = Faer::new(Threads::Fixed(2));
        assert_eq!(
            <Faer as Backend<f64>>::product_threads(&two, dims(1, 1, 1)),
            2
        );
        assert_eq!(<Faer as Backend<f64>>::parts(&auto, 9_999_999), 1);
        assert_eq!(<Faer as Backend<f64>>::parts(&auto, 10_000_000), all);
    }
}

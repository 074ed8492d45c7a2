//! The training kernels of [`Knots`] over a batch: forward (value, slope, `d ln s'/dx`)
//! and the parameters' gradient.
//!
//! One element on its own costs a binary search for its bin (branches the CPU cannot
//! predict) and a dozen divisions. Here a row goes in two passes over its units:
//! 1. [`Knots::locate`] finds every unit's bin without branches: [`LANES`] units at a
//!    time, each interior knot of the `LANES` units is one contiguous load of the
//!    knot-major tables, compared with the inputs and counted (the knots increase, so the
//!    count is the bin of [`Knots::bin_of`]); the bin's six numbers are gathered into
//!    per-unit rows ([`RowScratch`]).
//! 2. The rational functions run over those rows in one loop, which the compiler turns
//!    into vector instructions ([`vectorized`]), divisions included.
//!
//! The arithmetic is [`Bin`]'s, operation for operation, so every element gets the same
//! bits as from the scalar path ([`Knots::eval`]); the tests check it.

use super::bin::Bin;
use super::Knots;
use crate::scalar::Scalar;
use crate::simd::vectorized;

/// Units whose bins are counted together.
const LANES: usize = 8;

/// One row's bins, unit by unit, and the gradients with respect to their six numbers:
/// scratch of [`Knots`], sized for `D` units up front.
#[derive(Clone, Debug)]
pub(super) struct RowScratch<T> {
    bin: Vec<usize>,
    bins: RowBins<T>,
    /// The outputs' gradient.
    gy: Vec<T>,
    /// `6 x D`: the gradient with respect to `(x_k, w_k, y_k, h_k, d_k, d_{k+1})`.
    grad: Vec<T>,
}

/// The six numbers of each unit's bin.
#[derive(Clone, Debug)]
struct RowBins<T> {
    xk: Vec<T>,
    w: Vec<T>,
    yk: Vec<T>,
    h: Vec<T>,
    d0: Vec<T>,
    d1: Vec<T>,
}

impl<T: Scalar> RowScratch<T> {
    /// Scratch for `dim` units.
    pub(super) fn new(dim: usize) -> Self {
        let z = vec![T::zero(); dim];
        Self {
            bin: vec![0; dim],
            bins: RowBins {
                xk: z.clone(),
                w: z.clone(),
                yk: z.clone(),
                h: z.clone(),
                d0: z.clone(),
                d1: z.clone(),
            },
            gy: z,
            grad: vec![T::zero(); 6 * dim],
        }
    }
}

impl<T: Scalar> RowBins<T> {
    /// The first `d` units' bins, as slices of length `d` (so that a loop to `d` needs no
    /// bounds checks and vectorises).
    #[inline(always)]
    fn view(&self, d: usize) -> RowBinsView<'_, T> {
        RowBinsView {
            xk: &self.xk[..d],
            w: &self.w[..d],
            yk: &self.yk[..d],
            h: &self.h[..d],
            d0: &self.d0[..d],
            d1: &self.d1[..d],
        }
    }
}

/// [`RowBins`] for the first `d` units.
struct RowBinsView<'a, T> {
    xk: &'a [T],
    w: &'a [T],
    yk: &'a [T],
    h: &'a [T],
    d0: &'a [T],
    d1: &'a [T],
}

impl<T: Scalar> RowBinsView<'_, T> {
    /// Unit `j`'s bin.
    #[inline(always)]
    fn bin(&self, j: usize) -> Bin<T> {
        Bin {
            xk: self.xk[j],
            w: self.w[j],
            yk: self.yk[j],
            h: self.h[j],
            d0: self.d0[j],
            d1: self.d1[j],
        }
    }
}

impl<T: Scalar> Knots<T> {
    /// Every unit's bin at the row `a` (the tails take the end bins; the callers select
    /// the identity there), into [`RowScratch`].
    #[inline(always)]
    fn locate(&mut self, a: &[T]) {
        let (d, k1) = (self.dim, self.bins + 1);
        let row = &mut self.row;
        let mut j0 = 0;
        while j0 < d {
            let n = LANES.min(d - j0);
            // The bin: how many interior knots are at or below the input.
            let mut count = [0u32; LANES];
            if n == LANES {
                let av: &[T; LANES] = a[j0..j0 + LANES].try_into().expect("LANES inputs");
                for i in 1..self.bins {
                    let knots: &[T; LANES] = self.xt[i * d + j0..i * d + j0 + LANES]
                        .try_into()
                        .expect("LANES knots");
                    for l in 0..LANES {
                        count[l] += u32::from(knots[l] <= av[l]);
                    }
                }
            } else {
                for i in 1..self.bins {
                    for l in 0..n {
                        count[l] += u32::from(self.xt[i * d + j0 + l] <= a[j0 + l]);
                    }
                }
            }
            for (l, &b) in count.iter().enumerate().take(n) {
                let j = j0 + l;
                let b = (b as usize).min(k1 - 2);
                let (xs, ys, ds) = (
                    &self.x[j * k1..(j + 1) * k1],
                    &self.y[j * k1..(j + 1) * k1],
                    &self.d[j * k1..(j + 1) * k1],
                );
                row.bin[j] = b;
                row.bins.xk[j] = xs[b];
                row.bins.w[j] = xs[b + 1] - xs[b];
                row.bins.yk[j] = ys[b];
                row.bins.h[j] = ys[b + 1] - ys[b];
                row.bins.d0[j] = ds[b];
                row.bins.d1[j] = ds[b + 1];
            }
            j0 += n;
        }
    }

    /// For the rows of the row-major `n x D` matrix `a`: `h = s(a)`, `ds = s'(a)` and
    /// `kappa = d ln s'(a) / da`, elementwise (as [`crate::Activation::forward_train`]).
    /// Allocates nothing.
    pub fn forward_train(&mut self, a: &[T], h: &mut [T], ds: &mut [T], kappa: &mut [T]) {
        let d = self.dim;
        vectorized(
            #[inline(always)]
            |_fma| {
                for (((ar, hr), dr), kr) in a
                    .chunks_exact(d)
                    .zip(h.chunks_exact_mut(d))
                    .zip(ds.chunks_exact_mut(d))
                    .zip(kappa.chunks_exact_mut(d))
                {
                    self.locate(ar);
                    forward_row(&self.row.bins, ar, self.bound, hr, dr, kr);
                }
            },
        )
    }

    /// Accumulates the per-bin gradients of the rows of `a` into `acc` (the outputs'
    /// gradient of row `i`, unit `j` is `gh(i, j)`) and chains them to `out`.
    pub(super) fn backward_by(
        &mut self,
        a: &[T],
        gh: impl Fn(usize, usize) -> T,
        gl: T,
        out: &mut [T],
    ) {
        let (d, k) = (self.dim, self.bins);
        self.acc.fill(T::zero());
        vectorized(
            #[inline(always)]
            |_fma| {
                for (i, ar) in a.chunks_exact(d).enumerate() {
                    self.locate(ar);
                    let (row, bound) = (&mut self.row, self.bound);
                    for (j, g) in row.gy[..d].iter_mut().enumerate() {
                        *g = gh(i, j);
                    }
                    let (g0, rest) = row.grad.split_at_mut(d);
                    let (g1, rest) = rest.split_at_mut(d);
                    let (g2, rest) = rest.split_at_mut(d);
                    let (g3, rest) = rest.split_at_mut(d);
                    let (g4, g5) = rest.split_at_mut(d);
                    backward_row(&row.bins, ar, &row.gy, gl, bound, g0, g1, g2, g3, g4, g5);
                    let (g0, g1, g2) = (&g0[..d], &g1[..d], &g2[..d]);
                    let (g3, g4, g5) = (&g3[..d], &g4[..d], &g5[..d]);
                    for (j, &b) in row.bin[..d].iter().enumerate() {
                        let slot = &mut self.acc[(j * k + b) * 6..(j * k + b) * 6 + 6];
                        slot[0] += g0[j];
                        slot[1] += g1[j];
                        slot[2] += g2[j];
                        slot[3] += g3[j];
                        slot[4] += g4[j];
                        slot[5] += g5[j];
                    }
                }
            },
        );
        self.chain(out);
    }
}

/// One row's `(s(a), s'(a), d ln s'(a)/da)` from its units' bins (the identity outside
/// `[-bound, bound)`). A function of its own so that the outputs are known not to overlap
/// the inputs, which lets the loop be vectorised.
#[inline(always)]
fn forward_row<T: Scalar>(
    bins: &RowBins<T>,
    a: &[T],
    bound: T,
    h: &mut [T],
    ds: &mut [T],
    kappa: &mut [T],
) {
    let d = a.len();
    let (h, ds, kappa) = (&mut h[..d], &mut ds[..d], &mut kappa[..d]);
    let bins = bins.view(d);
    for j in 0..d {
        let av = a[j];
        let (v, s, k) = bins.bin(j).eval(av);
        let inside = av >= -bound && av < bound;
        h[j] = if inside { v } else { av };
        ds[j] = if inside { s } else { T::one() };
        kappa[j] = if inside { k } else { T::zero() };
    }
}

/// One row's gradients with respect to its bins' six numbers (zero outside
/// `[-bound, bound)`), into `g0` to `g5` (one slice per number). A function of its own for the
/// reason of [`forward_row`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<T: Scalar>(
    bins: &RowBins<T>,
    a: &[T],
    gy: &[T],
    gl: T,
    bound: T,
    g0: &mut [T],
    g1: &mut [T],
    g2: &mut [T],
    g3: &mut [T],
    g4: &mut [T],
    g5: &mut [T],
) {
    let d = a.len();
    let (g0, g1, g2) = (&mut g0[..d], &mut g1[..d], &mut g2[..d]);
    let (g3, g4, g5) = (&mut g3[..d], &mut g4[..d], &mut g5[..d]);
    let (bins, gy) = (bins.view(d), &gy[..d]);
    let z = T::zero();
    for j in 0..d {
        let av = a[j];
        let r = bins.bin(j).backward(av, gy[j], gl);
        let inside = av >= -bound && av < bound;
        g0[j] = if inside { r[0] } else { z };
        g1[j] = if inside { r[1] } else { z };
        g2[j] = if inside { r[2] } else { z };
        g3[j] = if inside { r[3] } else { z };
        g4[j] = if inside { r[4] } else { z };
        g5[j] = if inside { r[5] } else { z };
    }
}

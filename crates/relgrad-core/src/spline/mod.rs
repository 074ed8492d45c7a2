//! Learnable elementwise bijections: one monotone rational-quadratic spline per unit
//! (Durkan, Bekasov, Murray, Papamakarios 2019), the activation [`Activation::Spline`].
//!
//! A unit's spline maps `[-T, T]` onto itself through `K` bins and is the identity outside
//! (linear tails with slope 1, so value and slope are continuous at `+-T`). Its `3K - 1`
//! free parameters (a row of the layer's `D x (3K - 1)` parameter matrix) are
//! - `K` width logits `u`: bin widths `w = 2T (m + (1 - K m) softmax(u))`,
//! - `K` height logits `v`: bin heights likewise,
//! - `K - 1` interior knot slopes `r`: `d = m_d + softplus(r)`; the end slopes are 1,
//!
//! with the floors `m` = [`MIN_BIN`] and `m_d` = [`MIN_SLOPE`]. All zeros for `u`, `v` and
//! [`identity_slope_raw`] for `r` give `s(x) = x` exactly ([`set_identity`]).
//!
//! [`Knots`] holds the knots derived from a layer's parameters (recomputed once per step or
//! evaluation, `O(D K)`) and evaluates the splines over a batch: value, slope, the
//! backward pass's `d ln s' / dx`, the exact inverse (the root of a quadratic), and the
//! gradient of the log-likelihood with respect to every parameter, `O(B D)` plus `O(D K)`.
//! The formulas are in `docs/algorithm.md`.
//!
//! [`Activation::Spline`]: crate::activation::Activation::Spline

mod batch;
mod bin;
#[cfg(test)]
mod tests;

use crate::scalar::{c, Scalar};
use bin::Bin;

/// The floor of a bin's width and height: each is at least `2T` times this.
pub const MIN_BIN: f64 = 1e-3;
/// The floor of an interior knot's slope.
pub const MIN_SLOPE: f64 = 1e-3;
/// The most bins a spline may have.
pub const MAX_BINS: usize = 256;

/// Free parameters per unit for `bins` bins: `3 bins - 1`.
pub fn params_per_unit(bins: usize) -> usize {
    3 * bins - 1
}

/// The raw slope parameter whose slope is 1: `softplus^{-1}(1 - MIN_SLOPE)`.
pub fn identity_slope_raw() -> f64 {
    (1.0 - MIN_SLOPE).exp_m1().ln()
}

/// Sets a layer's parameters (`D` rows of `3 bins - 1`, row-major) to the identity map.
pub fn set_identity<T: Scalar>(params: &mut [T], bins: usize) {
    let p = params_per_unit(bins);
    let r = T::from_f64c(identity_slope_raw());
    for (i, v) in params.iter_mut().enumerate() {
        *v = if i % p >= 2 * bins { r } else { T::zero() };
    }
}

/// Checks a spline's shape: `2 <= bins <= MAX_BINS` and a finite `bound > 0`.
pub fn validate(bins: usize, bound: f64) -> Result<(), String> {
    if !(2..=MAX_BINS).contains(&bins) {
        return Err(format!("a spline needs 2 to {MAX_BINS} bins, got {bins}"));
    }
    if !(bound > 0.0 && bound.is_finite() && bound <= 1e6) {
        return Err(format!(
            "a spline's bound T (its interval [-T, T]) must be positive and at most 1e6, got {bound}"
        ));
    }
    Ok(())
}

/// `(softplus(x), sigmoid(x))` from one exponential of `-|x|`, with the crate's
/// branch-free kernels (a library `exp` and `ln_1p` per parameter made deriving the knots
/// most of a spline model's step: 5 of 9 ms at `D = 784`, `B = 10`).
#[inline(always)]
fn softplus_sigmoid<T: Scalar>(x: T) -> (T, T) {
    let e = T::exp_nonpositive(-x.abs(), false);
    let softplus = x.max(T::zero()) + T::ln_1p_unit(e, false);
    let t = if x >= T::zero() { T::one() } else { e };
    (softplus, t / (T::one() + e))
}

/// The knots of one layer's `D` splines, derived from its parameters, with what the
/// parameters' gradient needs (the softmax weights and the slopes' sigmoids).
#[derive(Clone, Debug)]
pub struct Knots<T> {
    dim: usize,
    bins: usize,
    bound: T,
    /// `D x (K + 1)`: knot abscissae, ordinates and slopes (`d_0 = d_K = 1`).
    x: Vec<T>,
    y: Vec<T>,
    d: Vec<T>,
    /// The same, knot-major (`(K + 1) x D`), for the batch kernels ([`batch`]): one knot of
    /// neighbouring units is contiguous.
    xt: Vec<T>,
    yt: Vec<T>,
    dt: Vec<T>,
    /// `D x K`: the softmax weights of the widths and of the heights.
    pw: Vec<T>,
    ph: Vec<T>,
    /// `D x (K - 1)`: `sigmoid(r)`, the slopes' derivative with respect to `r`.
    sd: Vec<T>,
    /// `D x K x 6`: per bin, the gradient with respect to `(x_k, w_k, y_k, h_k, d_k, d_{k+1})`.
    acc: Vec<T>,
    /// The batch kernels' scratch for one row.
    row: batch::RowScratch<T>,
}

impl<T: Scalar> Knots<T> {
    /// Tables for `dim` units of `bins` bins on `[-bound, bound]`, at the identity.
    pub fn new(dim: usize, bins: usize, bound: f64) -> Self {
        let k1 = bins + 1;
        let mut knots = Self {
            dim,
            bins,
            bound: T::from_f64c(bound),
            x: vec![T::zero(); dim * k1],
            y: vec![T::zero(); dim * k1],
            d: vec![T::zero(); dim * k1],
            xt: vec![T::zero(); dim * k1],
            yt: vec![T::zero(); dim * k1],
            dt: vec![T::zero(); dim * k1],
            pw: vec![T::zero(); dim * bins],
            ph: vec![T::zero(); dim * bins],
            sd: vec![T::zero(); dim * (bins - 1)],
            acc: vec![T::zero(); dim * bins * 6],
            row: batch::RowScratch::new(dim),
        };
        let mut raw = vec![T::zero(); dim * params_per_unit(bins)];
        set_identity(&mut raw, bins);
        knots.update(&raw);
        knots
    }

    /// The number of units.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of bins.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Derives the knots from a layer's parameters (`D` rows of `3K - 1`). Allocates nothing.
    pub fn update(&mut self, params: &[T]) {
        let (k, p) = (self.bins, params_per_unit(self.bins));
        assert_eq!(params.len(), self.dim * p, "spline parameters' length");
        let two_t = c::<T>(2.0) * self.bound;
        let floor: T = c(MIN_BIN);
        let scale = T::one() - T::from_usize(k).expect("bins fit the scalar") * floor;
        for j in 0..self.dim {
            let raw = &params[j * p..(j + 1) * p];
            for (logits, probs, knots) in [
                (&raw[..k], &mut self.pw[j * k..(j + 1) * k], &mut self.x),
                (
                    &raw[k..2 * k],
                    &mut self.ph[j * k..(j + 1) * k],
                    &mut self.y,
                ),
            ] {
                let top = logits.iter().fold(T::neg_infinity(), |m, &v| m.max(v));
                let mut sum = T::zero();
                for (q, &u) in probs.iter_mut().zip(logits) {
                    *q = T::exp_nonpositive(u - top, false);
                    sum += *q;
                }
                let knots = &mut knots[j * (k + 1)..(j + 1) * (k + 1)];
                let mut at = -self.bound;
                knots[0] = at;
                for (i, q) in probs.iter_mut().enumerate() {
                    *q /= sum;
                    at += two_t * (floor + scale * *q);
                    knots[i + 1] = at;
                }
                knots[k] = self.bound;
            }
            let d = &mut self.d[j * (k + 1)..(j + 1) * (k + 1)];
            d[0] = T::one();
            d[k] = T::one();
            for (i, &r) in raw[2 * k..].iter().enumerate() {
                let (sp, sg) = softplus_sigmoid(r);
                d[i + 1] = c::<T>(MIN_SLOPE) + sp;
                self.sd[j * (k - 1) + i] = sg;
            }
        }
        let (dim, k1) = (self.dim, k + 1);
        for (src, dst) in [
            (&self.x, &mut self.xt),
            (&self.y, &mut self.yt),
            (&self.d, &mut self.dt),
        ] {
            for (j, unit) in src.chunks_exact(k1).enumerate() {
                for (i, &v) in unit.iter().enumerate() {
                    dst[i * dim + j] = v;
                }
            }
        }
    }

    /// Unit `j`'s bin containing `a`, or `None` in the tails (`a` outside `[-T, T)`).
    #[inline(always)]
    pub(crate) fn bin_of(&self, j: usize, a: T, by_y: bool) -> Option<(usize, Bin<T>)> {
        if !(a >= -self.bound && a < self.bound) {
            return None;
        }
        let k1 = self.bins + 1;
        let (xs, ys, ds) = (
            &self.x[j * k1..(j + 1) * k1],
            &self.y[j * k1..(j + 1) * k1],
            &self.d[j * k1..(j + 1) * k1],
        );
        let keys = if by_y { ys } else { xs };
        // The last knot at or below `a` among the interior ones.
        let b = keys[1..self.bins].partition_point(|&v| v <= a);
        Some((
            b,
            Bin {
                xk: xs[b],
                w: xs[b + 1] - xs[b],
                yk: ys[b],
                h: ys[b + 1] - ys[b],
                d0: ds[b],
                d1: ds[b + 1],
            },
        ))
    }

    /// Unit `j`'s `(s(a), s'(a), d ln s'(a) / da)`.
    #[inline]
    pub fn eval(&self, j: usize, a: T) -> (T, T, T) {
        match self.bin_of(j, a, false) {
            Some((_, bin)) => bin.eval(a),
            None => (a, T::one(), T::zero()),
        }
    }

    /// Unit `j`'s inverse `s^{-1}(y)`.
    #[inline]
    pub fn inverse(&self, j: usize, y: T) -> T {
        match self.bin_of(j, y, true) {
            Some((_, bin)) => bin.inverse(y),
            None => y,
        }
    }

    /// One row: writes `h = s(a)` and returns `sum ln s'(a)` (as
    /// [`crate::Activation::forward_eval`]).
    pub fn forward_eval(&self, a: &[T], h: &mut [T]) -> T {
        let mut acc = T::zero();
        for (j, (hv, &av)) in h.iter_mut().zip(a).enumerate() {
            let (v, s, _) = self.eval(j, av);
            *hv = v;
            acc += s.ln();
        }
        acc
    }

    /// Inverts the rows of the row-major `n x D` matrix `y` in place.
    pub fn inverse_rows(&self, y: &mut [T]) {
        for row in y.chunks_exact_mut(self.dim) {
            for (j, v) in row.iter_mut().enumerate() {
                if v.is_finite() {
                    *v = self.inverse(j, *v);
                }
            }
        }
    }

    /// The gradient of `sum_rows (gh . s(a) + gl sum_j ln s'(a_j))` with respect to the
    /// layer's parameters, written to `out` (`D` rows of `3K - 1`, row-major), for the
    /// rows of the row-major `n x D` matrices `a` (the pre-activations) and `gh` (the
    /// objective's gradient with respect to the layer's outputs). With `gh` the backward
    /// signal and `gl` one over the batch size, this is the mean log-likelihood's gradient.
    /// Allocates nothing.
    pub fn backward(&mut self, a: &[T], gh: &[T], gl: T, out: &mut [T]) {
        let d = self.dim;
        self.backward_by(a, |i, j| gh[i * d + j], gl, out);
    }

    /// [`Knots::backward`] with the outputs' gradient stored transposed: `gh_t` is the
    /// row-major `D x n` matrix (as the fused step keeps it).
    pub fn backward_transposed(&mut self, a: &[T], gh_t: &[T], gl: T, out: &mut [T]) {
        let n = a.len() / self.dim;
        self.backward_by(a, |i, j| gh_t[j * n + i], gl, out);
    }

    /// From the per-bin gradients in `acc` to the parameters: through the cumulative sums
    /// that place the knots, the softmax of the widths and heights, and the softplus of
    /// the slopes.
    pub(super) fn chain(&self, out: &mut [T]) {
        let (k, p) = (self.bins, params_per_unit(self.bins));
        assert_eq!(out.len(), self.dim * p, "spline gradient's length");
        let two_t = c::<T>(2.0) * self.bound;
        let scale = T::one() - T::from_usize(k).expect("bins fit the scalar") * c::<T>(MIN_BIN);
        for j in 0..self.dim {
            let acc = &self.acc[j * k * 6..(j + 1) * k * 6];
            let out = &mut out[j * p..(j + 1) * p];
            // Widths (offsets 0, 1) and heights (offsets 2, 3): knot `i` is the start plus
            // the sum of the sizes before it, so size `i` collects the knots' gradients
            // of every later bin.
            for (half, (knot, size)) in [(0usize, 1usize), (2, 3)].into_iter().enumerate() {
                let probs = if half == 0 {
                    &self.pw[j * k..(j + 1) * k]
                } else {
                    &self.ph[j * k..(j + 1) * k]
                };
                let g = &mut out[half * k..(half + 1) * k];
                let mut later = T::zero();
                for i in (0..k).rev() {
                    g[i] = acc[i * 6 + size] + later;
                    later += acc[i * 6 + knot];
                }
                // Through w = 2T (m + scale * softmax(u)).
                let mean = probs
                    .iter()
                    .zip(g.iter())
                    .fold(T::zero(), |s, (&q, &gi)| s + q * gi);
                for (gi, &q) in g.iter_mut().zip(probs) {
                    *gi = two_t * scale * q * (*gi - mean);
                }
            }
            // Interior slope i + 1 is bin i's right slope and bin i + 1's left one.
            for i in 0..k - 1 {
                let g = acc[i * 6 + 5] + acc[(i + 1) * 6 + 4];
                out[2 * k + i] = g * self.sd[j * (k - 1) + i];
            }
        }
    }
}

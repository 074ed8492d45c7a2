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

use crate::scalar::{c, Scalar};

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
    /// `D x K`: the softmax weights of the widths and of the heights.
    pw: Vec<T>,
    ph: Vec<T>,
    /// `D x (K - 1)`: `sigmoid(r)`, the slopes' derivative with respect to `r`.
    sd: Vec<T>,
    /// `D x K x 6`: per bin, the gradient with respect to `(x_k, w_k, y_k, h_k, d_k, d_{k+1})`.
    acc: Vec<T>,
}

/// One element's bin: knot, width, ordinate, height, end slopes.
#[derive(Clone, Copy)]
struct Bin<T> {
    xk: T,
    w: T,
    yk: T,
    h: T,
    d0: T,
    d1: T,
}

impl<T: Scalar> Bin<T> {
    /// `(s(a), s'(a), d ln s'(a) / da)` inside the bin.
    #[inline(always)]
    fn eval(&self, a: T) -> (T, T, T) {
        let one = T::one();
        let two: T = c(2.0);
        let xi = (a - self.xk) / self.w;
        let om = one - xi;
        let delta = self.h / self.w;
        let t = xi * om;
        let c2 = self.d0 + self.d1 - two * delta;
        let den = delta + c2 * t;
        let num = self.h * (delta * xi * xi + self.d0 * t);
        let p = self.d1 * xi * xi + two * delta * t + self.d0 * om * om;
        let slope = delta * delta * p / (den * den);
        let dp = two * (self.d1 * xi - self.d0 * om) + two * delta * (one - two * xi);
        let dden = c2 * (one - two * xi);
        let kappa = (dp / p - two * dden / den) / self.w;
        (self.yk + num / den, slope, kappa)
    }

    /// The gradient of `gy s(a) + gl ln s'(a)` with respect to
    /// `(x_k, w_k, y_k, h_k, d_k, d_{k+1})`.
    #[inline(always)]
    fn backward(&self, a: T, gy: T, gl: T) -> [T; 6] {
        let one = T::one();
        let two: T = c(2.0);
        let (h, w, d0, d1) = (self.h, self.w, self.d0, self.d1);
        let xi = (a - self.xk) / w;
        let om = one - xi;
        let delta = h / w;
        let t = xi * om;
        let c2 = d0 + d1 - two * delta;
        let den = delta + c2 * t;
        let inner = delta * xi * xi + d0 * t;
        let num = h * inner;
        let p = d1 * xi * xi + two * delta * t + d0 * om * om;
        let g_num = gy / den;
        let g_den = -(g_num * num + two * gl) / den;
        let g_p = gl / p;
        let g_delta =
            two * gl / delta + g_den * (one - two * t) + g_num * h * xi * xi + g_p * two * t;
        let g_t = g_den * c2 + g_num * h * d0 + g_p * two * delta;
        let g_xi =
            g_num * h * two * delta * xi + g_p * two * (d1 * xi - d0 * om) + g_t * (one - two * xi);
        let g_d0 = (g_den + g_num * h) * t + g_p * om * om;
        let g_d1 = g_den * t + g_p * xi * xi;
        let g_h = g_num * inner + g_delta / w;
        let g_w = -(g_xi * xi + g_delta * delta) / w;
        let g_xk = -g_xi / w;
        [g_xk, g_w, gy, g_h, g_d0, g_d1]
    }

    /// `s^{-1}(y)` inside the bin: the stable root of the quadratic in `xi`.
    #[inline(always)]
    fn inverse(&self, y: T) -> T {
        let two: T = c(2.0);
        let delta = self.h / self.w;
        let dy = y - self.yk;
        let c2 = self.d0 + self.d1 - two * delta;
        let qa = self.h * (delta - self.d0) + dy * c2;
        let qb = self.h * self.d0 - dy * c2;
        let qc = -delta * dy;
        let disc = (qb * qb - c::<T>(4.0) * qa * qc).max(T::zero());
        let den = -qb - disc.sqrt();
        let xi = if den == T::zero() {
            T::zero()
        } else {
            two * qc / den
        };
        self.xk + xi.max(T::zero()).min(T::one()) * self.w
    }
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
            pw: vec![T::zero(); dim * bins],
            ph: vec![T::zero(); dim * bins],
            sd: vec![T::zero(); dim * (bins - 1)],
            acc: vec![T::zero(); dim * bins * 6],
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
    }

    /// Unit `j`'s bin containing `a`, or `None` in the tails (`a` outside `[-T, T)`).
    #[inline(always)]
    fn bin_of(&self, j: usize, a: T, by_y: bool) -> Option<(usize, Bin<T>)> {
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

    /// For the rows of the row-major `n x D` matrix `a`: `h = s(a)`, `ds = s'(a)` and
    /// `kappa = d ln s'(a) / da`, elementwise (as [`crate::Activation::forward_train`]).
    pub fn forward_train(&self, a: &[T], h: &mut [T], ds: &mut [T], kappa: &mut [T]) {
        let d = self.dim;
        for (((ar, hr), dr), kr) in a
            .chunks_exact(d)
            .zip(h.chunks_exact_mut(d))
            .zip(ds.chunks_exact_mut(d))
            .zip(kappa.chunks_exact_mut(d))
        {
            for j in 0..d {
                (hr[j], dr[j], kr[j]) = self.eval(j, ar[j]);
            }
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

    fn backward_by(&mut self, a: &[T], gh: impl Fn(usize, usize) -> T, gl: T, out: &mut [T]) {
        let (d, k) = (self.dim, self.bins);
        self.acc.fill(T::zero());
        for (i, ar) in a.chunks_exact(d).enumerate() {
            for (j, &av) in ar.iter().enumerate() {
                if let Some((b, bin)) = self.bin_of(j, av, false) {
                    let g = bin.backward(av, gh(i, j), gl);
                    let slot = &mut self.acc[(j * k + b) * 6..(j * k + b) * 6 + 6];
                    for (s, v) in slot.iter_mut().zip(g) {
                        *s += v;
                    }
                }
            }
        }
        self.chain(out);
    }

    /// From the per-bin gradients in `acc` to the parameters: through the cumulative sums
    /// that place the knots, the softmax of the widths and heights, and the softplus of
    /// the slopes.
    fn chain(&self, out: &mut [T]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_params(dim: usize, bins: usize, seed: u64, spread: f64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..dim * params_per_unit(bins))
            .map(|_| spread * (rng.random::<f64>() * 2.0 - 1.0))
            .collect()
    }

    /// Points over the whole line: inside, at and next to every knot, in both tails.
    fn points(knots: &Knots<f64>, j: usize) -> Vec<f64> {
        let k1 = knots.bins + 1;
        let mut v: Vec<f64> = (-3000..=3000).map(|i| i as f64 / 500.0).collect();
        for &x in &knots.x[j * k1..(j + 1) * k1] {
            v.extend([x, x - 1e-9, x + 1e-9, x.next_up(), x.next_down()]);
        }
        v.extend([-1e6, -50.0, 50.0, 1e6]);
        v
    }

    #[test]
    fn identity_parameters_give_the_identity() {
        let knots = Knots::<f64>::new(3, 8, 2.5);
        for j in 0..3 {
            for x in points(&knots, j) {
                let (y, s, k) = knots.eval(j, x);
                assert!((y - x).abs() <= 1e-14 * (1.0 + x.abs()), "{x} -> {y}");
                assert!((s - 1.0).abs() < 1e-12 && k.abs() < 1e-9, "{x}: {s} {k}");
            }
        }
    }

    #[test]
    fn round_trip_over_the_whole_line() {
        for (bins, bound, spread, seed) in [(8, 3.0, 2.0, 1), (3, 1.0, 4.0, 2), (32, 5.0, 3.0, 3)] {
            let mut knots = Knots::<f64>::new(4, bins, bound);
            knots.update(&random_params(4, bins, seed, spread));
            for j in 0..4 {
                for x in points(&knots, j) {
                    let (y, s, _) = knots.eval(j, x);
                    assert!(s > 0.0 && s.is_finite());
                    let back = knots.inverse(j, y);
                    assert!(
                        (back - x).abs() <= 1e-10 * (1.0 + x.abs()),
                        "bins {bins}, unit {j}: x = {x}, y = {y}, back = {back}"
                    );
                }
                // Strictly increasing on a sorted grid.
                let grid: Vec<f64> = (-2000..=2000)
                    .map(|i| i as f64 * bound * 1.2 / 2000.0)
                    .collect();
                let ys: Vec<f64> = grid.iter().map(|&x| knots.eval(j, x).0).collect();
                assert!(ys.windows(2).all(|w| w[1] > w[0]));
            }
        }
    }

    #[test]
    fn slope_and_kappa_match_finite_differences() {
        let mut knots = Knots::<f64>::new(3, 10, 3.0);
        knots.update(&random_params(3, 10, 7, 2.0));
        let e = 1e-6;
        let k1 = 11;
        for j in 0..3 {
            let xs = knots.x[j * k1..(j + 1) * k1].to_vec();
            for i in -400..=400 {
                let x = i as f64 / 100.0;
                // Central differences straddling a knot measure neither side.
                if xs.iter().any(|&k| (x - k).abs() < 2.0 * e) {
                    continue;
                }
                let (_, s, kappa) = knots.eval(j, x);
                let fd = (knots.eval(j, x + e).0 - knots.eval(j, x - e).0) / (2.0 * e);
                assert!((fd - s).abs() < 1e-6 * (1.0 + s), "s'({x}): {s} vs {fd}");
                let ld = |v: f64| knots.eval(j, v).1.ln();
                let fdk = (ld(x + e) - ld(x - e)) / (2.0 * e);
                assert!(
                    (fdk - kappa).abs() < 1e-5 * (1.0 + kappa.abs()),
                    "kappa({x}): {kappa} vs {fdk}"
                );
            }
        }
    }

    /// The parameters' gradient of `sum gh s(a) + gl ln s'(a)` against central differences.
    #[test]
    fn parameter_gradient_matches_finite_differences() {
        let (dim, bins, bound) = (3, 6, 2.0);
        let mut rng = StdRng::seed_from_u64(11);
        let params = random_params(dim, bins, 5, 1.5);
        let n = 40;
        let a: Vec<f64> = (0..n * dim)
            .map(|_| rng.random::<f64>() * 5.0 - 2.5)
            .collect();
        let gh: Vec<f64> = (0..n * dim).map(|_| rng.random::<f64>() - 0.5).collect();
        let gl = 0.7;
        let objective = |p: &[f64]| {
            let mut k = Knots::<f64>::new(dim, bins, bound);
            k.update(p);
            let mut total = 0.0;
            for (i, (&av, &g)) in a.iter().zip(&gh).enumerate() {
                let (y, s, _) = k.eval(i % dim, av);
                total += g * y + gl * s.ln();
            }
            total
        };
        let mut knots = Knots::<f64>::new(dim, bins, bound);
        knots.update(&params);
        let mut grad = vec![0.0; params.len()];
        knots.backward(&a, &gh, gl, &mut grad);
        let e = 1e-6;
        for i in 0..params.len() {
            let (mut up, mut down) = (params.clone(), params.clone());
            up[i] += e;
            down[i] -= e;
            let fd = (objective(&up) - objective(&down)) / (2.0 * e);
            assert!(
                (fd - grad[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "parameter {i}: {} vs {fd}",
                grad[i]
            );
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let params = random_params(2, 8, 3, 2.0);
        let mut k64 = Knots::<f64>::new(2, 8, 3.0);
        k64.update(&params);
        let mut k32 = Knots::<f32>::new(2, 8, 3.0);
        k32.update(&params.iter().map(|&v| v as f32).collect::<Vec<_>>());
        for i in -500..=500 {
            let x = i as f64 / 100.0;
            for j in 0..2 {
                let (y, s, _) = k64.eval(j, x);
                let (y32, s32, _) = k32.eval(j, x as f32);
                assert!((y32 as f64 - y).abs() < 1e-5 * (1.0 + y.abs()));
                assert!((s32 as f64 - s).abs() < 1e-4 * s);
                let back = k32.inverse(j, y32);
                assert!((back as f64 - x).abs() < 1e-4 * (1.0 + x.abs()));
            }
        }
    }

    #[test]
    fn shapes_are_validated() {
        assert!(validate(8, 3.0).is_ok());
        assert!(validate(1, 3.0).is_err());
        assert!(validate(MAX_BINS + 1, 3.0).is_err());
        assert!(validate(8, 0.0).is_err());
        assert!(validate(8, f64::NAN).is_err());
    }
}

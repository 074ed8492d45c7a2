//! Invertible elementwise activations, with derivative, log-derivative, the ratio
//! `sigma'' / sigma'` the backward pass needs, and an exact inverse.

use crate::scalar::{c, estrin, Scalar};
use crate::simd::{madd, vectorized};

/// An elementwise, strictly increasing activation applied between layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `sigma(x) = alpha x + (1 - alpha) softplus(x)`: smooth, slope in `(alpha, 1)`.
    /// The paper's choice and the default, with `alpha = 0.01`.
    SmoothLeakyRelu {
        /// Slope for large negative inputs, in `(0, 1)`.
        alpha: f64,
    },
    /// `sigma(x) = x` for `x >= 0`, `alpha x` otherwise.
    LeakyRelu {
        /// Slope for negative inputs, in `(0, 1]`.
        alpha: f64,
    },
    /// `sigma(x) = tanh(x) + beta x`: slope in `(beta, 1 + beta]`.
    TanhLinear {
        /// Linear part, `> 0` so that the map is invertible on all of R.
        beta: f64,
    },
    /// Learnable monotone rational-quadratic splines, one per unit and hidden layer, on
    /// `[-bound, bound]` with `bins` bins and the identity outside (see [`crate::spline`]).
    /// Their parameters live in the model ([`crate::InvertibleMlp::splines`]); this
    /// type's own evaluation methods give the identity, which is every spline's start.
    Spline {
        /// Bins per spline, `K` (2 to [`crate::spline::MAX_BINS`]).
        bins: usize,
        /// The spline's interval is `[-bound, bound]` (`T`); identity outside.
        bound: f64,
    },
}

/// The number of bins [`Activation::from_name`] gives a spline (a model file's own
/// parameters say how many it has).
pub const DEFAULT_BINS: usize = 16;

/// The interval `[-T, T]` a spline maps onto itself unless told otherwise (the network's
/// inputs are standardised). Measured on the seven built-in 2-D sets
/// (`docs/quality-capacity.md`): at 16 layers, `T = 3` with a spline learning rate of
/// `3e-3` brought rings within 0.1 nats per row of a validation-tuned Gaussian mixture
/// (`T = 4` with `1e-2`: 0.11 short), the others unchanged or better.
pub const DEFAULT_BOUND: f64 = 3.0;

impl Default for Activation {
    fn default() -> Self {
        Activation::SmoothLeakyRelu { alpha: 0.01 }
    }
}

/// The smooth leaky ReLU's value, derivative and `sigma''/sigma'` from one exponential
/// and one division, branch-free (selects only) so that a loop over a slice vectorises.
///
/// With `e = exp(-|x|)` and `p = 1 + e`: the logistic sigmoid is `s = t / p` with `t = 1`
/// for `x >= 0` and `t = e` otherwise, `s (1 - s) = e / p^2` in both cases, and
/// `softplus(x) = max(x, 0) + ln(1 + e)`. Writing `sigma' = a + (1 - a) s = n / p` with
/// `n = a p + (1 - a) t`, one reciprocal `q = 1 / (p n)` gives both
/// `sigma' = n^2 q` and `sigma''/sigma' = (1 - a) e q`. Divisions are the slowest
/// instructions in this kernel, which is the costliest elementwise work of a step.
#[inline(always)]
fn smooth_leaky_relu<T: Scalar>(fma: bool, x: T, a: T) -> (T, T, T) {
    let one = T::one();
    let b = one - a;
    let e = T::exp_nonpositive(-x.abs(), fma);
    let p = one + e;
    let t = if x >= T::zero() { one } else { e };
    let n = madd(fma, a, p, b * t);
    let q = one / (p * n);
    let h = madd(fma, a, x, b * (x.max(T::zero()) + T::ln_1p_unit(e, fma)));
    (h, n * n * q, b * e * q)
}

/// `tanh(x) / x` as a series in `x^2` (to `x^14`), for `|x| < 1/8`, where the closed
/// form below would cancel: relative error below `1e-16` there.
const TANH_SERIES: [f64; 8] = [
    1.0,
    -1.0 / 3.0,
    2.0 / 15.0,
    -17.0 / 315.0,
    62.0 / 2835.0,
    -1382.0 / 155_925.0,
    21844.0 / 6_081_075.0,
    -929_569.0 / 638_512_875.0,
];

/// `tanh(x) + b x`, its derivative and `sigma''/sigma'`, branch-free (selects only) so
/// that a loop over a slice vectorises: `tanh |x| = (1 - e) / (1 + e)` with
/// `e = exp(-2 |x|)`, or the series for small `|x|`, with the sign of `x`.
#[inline(always)]
fn tanh_linear<T: Scalar>(fma: bool, x: T, b: T) -> (T, T, T) {
    let one = T::one();
    let ax = x.abs();
    let e = T::exp_nonpositive(c::<T>(-2.0) * ax, fma);
    let closed = (one - e) / (one + e);
    let series = ax * estrin(fma, x * x, TANH_SERIES.map(|v| c::<T>(v)));
    let ta = if ax < c(0.125) { series } else { closed };
    let t = if x < T::zero() { -ta } else { ta };
    let sech2 = one - t * t;
    let d = sech2 + b;
    (madd(fma, b, x, t), d, c::<T>(-2.0) * t * sech2 / d)
}

impl Activation {
    /// The activation's name as the CLI and model files spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::SmoothLeakyRelu { .. } => "smooth-leaky-relu",
            Activation::LeakyRelu { .. } => "leaky-relu",
            Activation::TanhLinear { .. } => "tanh-linear",
            Activation::Spline { .. } => "spline",
        }
    }

    /// The activation's parameter (`alpha`, `beta`, or a spline's `bound`).
    pub fn parameter(&self) -> f64 {
        match *self {
            Activation::SmoothLeakyRelu { alpha } | Activation::LeakyRelu { alpha } => alpha,
            Activation::TanhLinear { beta } => beta,
            Activation::Spline { bound, .. } => bound,
        }
    }

    /// The bins of a spline activation, `None` for a fixed one.
    pub fn bins(&self) -> Option<usize> {
        match *self {
            Activation::Spline { bins, .. } => Some(bins),
            _ => None,
        }
    }

    /// Whether the activation has parameters of its own that training learns.
    pub fn is_learnable(&self) -> bool {
        matches!(self, Activation::Spline { .. })
    }

    /// Builds an activation from its name and parameter; `None` for an unknown name. A
    /// spline gets [`DEFAULT_BINS`] bins and `bound = parameter`.
    pub fn from_name(name: &str, parameter: f64) -> Option<Self> {
        match name {
            "smooth-leaky-relu" => Some(Activation::SmoothLeakyRelu { alpha: parameter }),
            "leaky-relu" => Some(Activation::LeakyRelu { alpha: parameter }),
            "tanh-linear" => Some(Activation::TanhLinear { beta: parameter }),
            "spline" => Some(Activation::Spline {
                bins: DEFAULT_BINS,
                bound: parameter,
            }),
            _ => None,
        }
    }

    /// Checks the parameter range that makes the map invertible.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Activation::SmoothLeakyRelu { alpha } if !(alpha > 0.0 && alpha < 1.0) => Err(format!(
                "smooth leaky ReLU needs 0 < alpha < 1, got {alpha}"
            )),
            Activation::LeakyRelu { alpha } if !(alpha > 0.0 && alpha <= 1.0) => {
                Err(format!("leaky ReLU needs 0 < alpha <= 1, got {alpha}"))
            }
            Activation::TanhLinear { beta } if !(beta > 0.0 && beta.is_finite()) => {
                Err(format!("tanh + beta x needs beta > 0, got {beta}"))
            }
            Activation::Spline { bins, bound } => crate::spline::validate(bins, bound),
            _ => Ok(()),
        }
    }

    /// `sigma(x)`.
    #[inline]
    pub fn eval<T: Scalar>(&self, x: T) -> T {
        match *self {
            Activation::SmoothLeakyRelu { alpha } => smooth_leaky_relu(false, x, c(alpha)).0,
            Activation::LeakyRelu { alpha } => {
                if x >= T::zero() {
                    x
                } else {
                    c::<T>(alpha) * x
                }
            }
            Activation::TanhLinear { beta } => tanh_linear(false, x, c(beta)).0,
            Activation::Spline { .. } => x,
        }
    }

    /// `sigma'(x)`.
    #[inline]
    pub fn derivative<T: Scalar>(&self, x: T) -> T {
        self.fused(x).1
    }

    /// `ln sigma'(x)`.
    #[inline]
    pub fn log_derivative<T: Scalar>(&self, x: T) -> T {
        self.fused(x).1.ln()
    }

    /// `sigma''(x) / sigma'(x)`, the backward pass's log-determinant term.
    #[inline]
    pub fn kappa<T: Scalar>(&self, x: T) -> T {
        self.fused(x).2
    }

    /// `(sigma(x), sigma'(x), sigma''(x) / sigma'(x))` with one transcendental
    /// evaluation where possible. This is the kernel the training step calls.
    #[inline(always)]
    pub fn fused<T: Scalar>(&self, x: T) -> (T, T, T) {
        let one = T::one();
        match *self {
            Activation::SmoothLeakyRelu { alpha } => smooth_leaky_relu(false, x, c(alpha)),
            Activation::LeakyRelu { alpha } => {
                if x >= T::zero() {
                    (x, one, T::zero())
                } else {
                    let a: T = c(alpha);
                    (a * x, a, T::zero())
                }
            }
            Activation::TanhLinear { beta } => tanh_linear(false, x, c(beta)),
            Activation::Spline { .. } => (x, one, T::zero()),
        }
    }

    /// Applies the activation to `y` for training: writes `h = sigma(y)`,
    /// `d = sigma'(y)` and `k = sigma''(y) / sigma'(y)`. All slices have equal length.
    pub fn forward_train<T: Scalar>(&self, y: &[T], h: &mut [T], d: &mut [T], k: &mut [T]) {
        let n = y.len();
        let (h, d, k) = (&mut h[..n], &mut d[..n], &mut k[..n]);
        // Matching outside the loop lets each arm vectorise on its own.
        vectorized(
            #[inline(always)]
            |fma| match *self {
                Activation::SmoothLeakyRelu { alpha } => {
                    let a: T = c(alpha);
                    for i in 0..n {
                        (h[i], d[i], k[i]) = smooth_leaky_relu(fma, y[i], a);
                    }
                }
                Activation::TanhLinear { beta } => {
                    let b: T = c(beta);
                    for i in 0..n {
                        (h[i], d[i], k[i]) = tanh_linear(fma, y[i], b);
                    }
                }
                Activation::LeakyRelu { .. } | Activation::Spline { .. } => {
                    for i in 0..n {
                        (h[i], d[i], k[i]) = self.fused(y[i]);
                    }
                }
            },
        )
    }

    /// Applies the activation to `y` for evaluation: writes `h = sigma(y)` and returns
    /// `sum ln sigma'(y)` over the slice.
    pub fn forward_eval<T: Scalar>(&self, y: &[T], h: &mut [T]) -> T {
        let h = &mut h[..y.len()];
        match *self {
            // sigma' >= alpha (or beta), so for a parameter well above the smallest normal
            // number the logarithm's argument is normal and the branch-free `ln_normal`
            // applies.
            Activation::SmoothLeakyRelu { alpha: p } | Activation::TanhLinear { beta: p }
                if p >= 1e-30 =>
            {
                let tanh = matches!(self, Activation::TanhLinear { .. });
                vectorized(
                    #[inline(always)]
                    |fma| {
                        const BLOCK: usize = 64;
                        const LANES: usize = 16;
                        let a: T = c(p);
                        let mut ld = [T::zero(); BLOCK];
                        let mut acc = [T::zero(); LANES];
                        for (yb, hb) in y.chunks(BLOCK).zip(h.chunks_mut(BLOCK)) {
                            let m = yb.len();
                            // Iterators, not indices: no bounds checks, so the loops
                            // vectorise (indexing kept them scalar).
                            let lanes = yb.iter().zip(hb.iter_mut()).zip(ld[..m].iter_mut());
                            if tanh {
                                for ((&yv, hv), l) in lanes {
                                    let (v, d, _) = tanh_linear(fma, yv, a);
                                    *hv = v;
                                    *l = T::ln_normal(d, fma);
                                }
                            } else {
                                for ((&yv, hv), l) in lanes {
                                    let (v, d, _) = smooth_leaky_relu(fma, yv, a);
                                    *hv = v;
                                    *l = T::ln_normal(d, fma);
                                }
                            }
                            // Lane-wise partial sums, so that the reduction vectorises too.
                            for part in ld[..m].chunks(LANES) {
                                for (s, &v) in acc.iter_mut().zip(part) {
                                    *s += v;
                                }
                            }
                        }
                        acc.iter().fold(T::zero(), |s, &v| s + v)
                    },
                )
            }
            _ => {
                let mut acc = T::zero();
                for (hi, &yi) in h.iter_mut().zip(y) {
                    let (v, d, _) = self.fused(yi);
                    *hi = v;
                    acc += d.ln();
                }
                acc
            }
        }
    }

    /// The exact inverse `sigma^{-1}(y)`, to round-off: closed form for leaky ReLU,
    /// safeguarded Newton iteration on a guaranteed bracket otherwise.
    pub fn inverse<T: Scalar>(&self, y: T) -> T {
        if !y.is_finite() {
            return y;
        }
        match *self {
            Activation::Spline { .. } => y,
            Activation::LeakyRelu { alpha } => {
                if y >= T::zero() {
                    y
                } else {
                    y / c::<T>(alpha)
                }
            }
            Activation::SmoothLeakyRelu { alpha } => {
                // softplus(x) is within [max(x,0), max(x,0) + ln 2], so with
                // g(x) = alpha x + (1 - alpha) max(x, 0) the root lies in
                // [g^{-1}(y - (1 - alpha) ln 2), g^{-1}(y)].
                let a: T = c(alpha);
                let ginv = |v: T| if v >= T::zero() { v } else { v / a };
                let lo = ginv(y - (T::one() - a) * T::LN_2());
                let hi = ginv(y);
                self.newton_inverse(y, lo, hi)
            }
            Activation::TanhLinear { beta } => {
                let b: T = c(beta);
                let lo = (y - T::one()) / b;
                let hi = (y + T::one()) / b;
                self.newton_inverse(y, lo, hi)
            }
        }
    }

    /// Solves `sigma(x) = y` for `x` in `[lo, hi]` (`sigma(lo) <= y <= sigma(hi)`),
    /// Newton steps falling back to bisection whenever a step leaves the bracket.
    fn newton_inverse<T: Scalar>(&self, y: T, mut lo: T, mut hi: T) -> T {
        let half: T = c(0.5);
        let mut x = half * (lo + hi);
        for _ in 0..200 {
            let (fx, dfx, _) = self.fused(x);
            let r = fx - y;
            if r == T::zero() {
                return x;
            }
            if r > T::zero() {
                hi = x;
            } else {
                lo = x;
            }
            let mut next = x - r / dfx;
            if !(next > lo && next < hi) {
                next = half * (lo + hi);
            }
            if next == x || hi - lo <= T::epsilon() * x.abs().max(T::min_positive_value()) {
                return next;
            }
            let step = (next - x).abs();
            x = next;
            if step <= T::epsilon() * x.abs() {
                // One more Newton step polishes the last bit.
                let (fx, dfx, _) = self.fused(x);
                let polished = x - (fx - y) / dfx;
                return if polished > lo && polished < hi {
                    polished
                } else {
                    x
                };
            }
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::Activation;

    const ALL: [Activation; 4] = [
        Activation::SmoothLeakyRelu { alpha: 0.01 },
        Activation::SmoothLeakyRelu { alpha: 0.3 },
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::TanhLinear { beta: 0.2 },
    ];

    fn grid() -> impl Iterator<Item = f64> {
        (-4000..=4000).map(|i| {
            let t = i as f64 / 100.0; // -40 .. 40
            t * t.abs() / 4.0 // denser near 0, out to +-400
        })
    }

    /// The branch-free tanh against the standard library's, in both precisions, and its
    /// derivative against `1 - tanh^2`.
    #[test]
    fn tanh_linear_matches_the_standard_library() {
        let act = Activation::TanhLinear { beta: 0.2 };
        let mut worst = (0.0f64, 0.0f64);
        for x in grid().chain((1..2000).map(|i| 1e-9 * 1.01f64.powi(i))) {
            for x in [x, -x] {
                let want = x.tanh() + 0.2 * x;
                let (h, d, _) = act.fused(x);
                let e = (h - want).abs() / want.abs().max(1e-300);
                let ed = (d - (1.0 - x.tanh().powi(2) + 0.2)).abs();
                worst = (worst.0.max(e), worst.1.max(ed));
                let h32 = act.fused(x as f32).0 as f64;
                let want32 = (x as f32 as f64).tanh() + 0.2 * (x as f32 as f64);
                assert!(
                    (h32 - want32).abs() <= 4.0 * f32::EPSILON as f64 * want32.abs().max(1e-30),
                    "f32 at {x}: {h32} vs {want32}"
                );
            }
        }
        assert!(worst.0 < 8.0 * f64::EPSILON, "relative error {}", worst.0);
        assert!(worst.1 < 8.0 * f64::EPSILON, "derivative error {}", worst.1);
    }

    /// The slice kernel (vectorised, with fused multiply-adds where the CPU has them)
    /// against the scalar `fused` evaluation and, for the value, against `f64`.
    fn check_training_kernel<T: crate::Scalar>(tol: f64) {
        for act in ALL {
            let y: Vec<T> = grid().map(T::from_f64c).collect();
            let n = y.len();
            let (mut h, mut d, mut k) =
                (vec![T::zero(); n], vec![T::zero(); n], vec![T::zero(); n]);
            act.forward_train(&y, &mut h, &mut d, &mut k);
            for i in 0..n {
                let (hs, ds, ks) = act.fused(y[i]);
                let x = y[i].to_f64c();
                let h64 = act.eval(x);
                if let Activation::SmoothLeakyRelu { alpha: a } = act {
                    // The textbook formulas, with the standard library's functions.
                    let s = 1.0 / (1.0 + (-x).exp());
                    let h_ref = a * x + (1.0 - a) * (x.max(0.0) + (-x.abs()).exp().ln_1p());
                    let d_ref = a + (1.0 - a) * s;
                    // s (1 - s), without the cancellation in 1 - s.
                    let em = (-x.abs()).exp();
                    let k_ref = (1.0 - a) * em / ((1.0 + em) * (1.0 + em)) / d_ref;
                    let scale = h_ref.abs().max(1.0);
                    assert!((h[i].to_f64c() - h_ref).abs() <= tol * scale, "h({x})");
                    assert!((d[i].to_f64c() - d_ref).abs() <= tol * d_ref, "d({x})");
                    if k_ref > 1e6 * T::min_positive_value().to_f64c() {
                        assert!(
                            (k[i].to_f64c() - k_ref).abs() <= 4.0 * tol * k_ref,
                            "k({x})"
                        );
                    }
                }
                let close = |a: T, b: f64, scale: f64| (a.to_f64c() - b).abs() <= tol * scale;
                assert!(
                    close(h[i], h64, h64.abs().max(1.0)),
                    "{act:?} h({x}) = {} vs {h64}",
                    h[i]
                );
                assert!(
                    close(h[i], hs.to_f64c(), h64.abs().max(1.0)),
                    "{act:?} h({x})"
                );
                assert!(close(d[i], ds.to_f64c(), ds.to_f64c()), "{act:?} d({x})");
                assert!(
                    close(k[i], ks.to_f64c(), ks.to_f64c().abs()),
                    "{act:?} k({x})"
                );
            }
        }
    }

    #[test]
    fn training_kernel_matches_the_scalar_evaluation() {
        check_training_kernel::<f64>(8.0 * f64::EPSILON);
        check_training_kernel::<f32>(8.0 * f32::EPSILON as f64);
    }

    #[test]
    fn inverse_is_exact_to_round_off_in_f64() {
        for act in ALL {
            for x in grid() {
                let y = act.eval(x);
                let back = act.inverse(y);
                assert!(
                    (back - x).abs() <= 1e-12 * (1.0 + x.abs()),
                    "{act:?}: x = {x}, y = {y}, inverse = {back}"
                );
            }
        }
    }

    #[test]
    fn inverse_is_exact_to_round_off_in_f32() {
        for act in ALL {
            for x in grid() {
                let x = x as f32;
                let back = act.inverse(act.eval(x));
                assert!(
                    (back - x).abs() <= 1e-5 * (1.0 + x.abs()),
                    "{act:?}: x = {x}, inverse = {back}"
                );
            }
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-6;
        for act in ALL {
            for x in grid().filter(|x| x.abs() < 30.0) {
                if matches!(act, Activation::LeakyRelu { .. }) && x.abs() < 1e-3 {
                    continue; // the kink
                }
                let (v, d, k) = act.fused(x);
                assert_eq!(v, act.eval(x));
                let fd = (act.eval(x + h) - act.eval(x - h)) / (2.0 * h);
                assert!(
                    (fd - d).abs() < 1e-7 * (1.0 + d.abs()),
                    "{act:?} sigma' at {x}: {d} vs {fd}"
                );
                let fd_k = (act.log_derivative(x + h) - act.log_derivative(x - h)) / (2.0 * h);
                assert!(
                    (fd_k - k).abs() < 1e-6,
                    "{act:?} kappa at {x}: {k} vs {fd_k}"
                );
                assert!(d > 0.0);
            }
        }
    }

    #[test]
    fn smooth_leaky_relu_is_stable_far_out() {
        let act = Activation::SmoothLeakyRelu { alpha: 0.01 };
        for x in [-1e6f64, -800.0, -50.0, 50.0, 800.0, 1e6] {
            let (v, d, k) = act.fused(x);
            assert!(v.is_finite() && d.is_finite() && k.is_finite(), "at {x}");
            let expect = if x > 0.0 { x } else { 0.01 * x };
            assert!(
                (v - expect).abs() <= 1e-9 * expect.abs().max(1.0),
                "{v} vs {expect}"
            );
        }
        assert!(act.fused(f32::MIN / 2.0).0.is_finite());
    }

    #[test]
    fn names_round_trip_and_invalid_parameters_are_rejected() {
        for act in ALL {
            assert_eq!(
                Activation::from_name(act.name(), act.parameter()),
                Some(act)
            );
            assert!(act.validate().is_ok());
        }
        assert!(Activation::SmoothLeakyRelu { alpha: 1.0 }
            .validate()
            .is_err());
        assert!(Activation::LeakyRelu { alpha: 0.0 }.validate().is_err());
        assert!(Activation::TanhLinear { beta: -0.5 }.validate().is_err());
        assert!(Activation::TanhLinear { beta: f64::NAN }
            .validate()
            .is_err());
        assert_eq!(Activation::from_name("relu", 0.0), None);
    }
}

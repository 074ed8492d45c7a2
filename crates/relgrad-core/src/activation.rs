//! Invertible elementwise activations, with derivative, log-derivative, the ratio
//! `sigma'' / sigma'` the backward pass needs, and an exact inverse.

use crate::scalar::{c, Scalar};

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
}

impl Default for Activation {
    fn default() -> Self {
        Activation::SmoothLeakyRelu { alpha: 0.01 }
    }
}

/// The smooth leaky ReLU's value, derivative and `sigma''/sigma'` from one exponential,
/// branch-free (selects only) so that a loop over a slice vectorises.
///
/// With `e = exp(-|x|)` and `r = 1 / (1 + e)`: the logistic sigmoid is `s = r` for
/// `x >= 0` and `e r` otherwise, `s (1 - s) = e r^2` in both cases, and
/// `softplus(x) = max(x, 0) + ln(1 + e)`.
#[inline(always)]
fn smooth_leaky_relu<T: Scalar>(x: T, a: T) -> (T, T, T) {
    let one = T::one();
    let e = T::exp_nonpositive(-x.abs());
    let r = one / (one + e);
    let s = if x >= T::zero() { r } else { e * r };
    let h = a * x + (one - a) * (x.max(T::zero()) + T::ln_1p_unit(e));
    let d = a + (one - a) * s;
    let k = (one - a) * e * r * r / d;
    (h, d, k)
}

impl Activation {
    /// The activation's name as the CLI and model files spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Activation::SmoothLeakyRelu { .. } => "smooth-leaky-relu",
            Activation::LeakyRelu { .. } => "leaky-relu",
            Activation::TanhLinear { .. } => "tanh-linear",
        }
    }

    /// The activation's parameter (`alpha` or `beta`).
    pub fn parameter(&self) -> f64 {
        match *self {
            Activation::SmoothLeakyRelu { alpha } | Activation::LeakyRelu { alpha } => alpha,
            Activation::TanhLinear { beta } => beta,
        }
    }

    /// Builds an activation from its name and parameter; `None` for an unknown name.
    pub fn from_name(name: &str, parameter: f64) -> Option<Self> {
        match name {
            "smooth-leaky-relu" => Some(Activation::SmoothLeakyRelu { alpha: parameter }),
            "leaky-relu" => Some(Activation::LeakyRelu { alpha: parameter }),
            "tanh-linear" => Some(Activation::TanhLinear { beta: parameter }),
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
            _ => Ok(()),
        }
    }

    /// `sigma(x)`.
    #[inline]
    pub fn eval<T: Scalar>(&self, x: T) -> T {
        match *self {
            Activation::SmoothLeakyRelu { alpha } => smooth_leaky_relu(x, c(alpha)).0,
            Activation::LeakyRelu { alpha } => {
                if x >= T::zero() {
                    x
                } else {
                    c::<T>(alpha) * x
                }
            }
            Activation::TanhLinear { beta } => x.tanh() + c::<T>(beta) * x,
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
            Activation::SmoothLeakyRelu { alpha } => smooth_leaky_relu(x, c(alpha)),
            Activation::LeakyRelu { alpha } => {
                if x >= T::zero() {
                    (x, one, T::zero())
                } else {
                    let a: T = c(alpha);
                    (a * x, a, T::zero())
                }
            }
            Activation::TanhLinear { beta } => {
                let b: T = c(beta);
                let t = x.tanh();
                let sech2 = one - t * t;
                let d = sech2 + b;
                (t + b * x, d, c::<T>(-2.0) * t * sech2 / d)
            }
        }
    }

    /// Applies the activation to `y` for training: writes `h = sigma(y)`,
    /// `d = sigma'(y)` and `k = sigma''(y) / sigma'(y)`. All slices have equal length.
    pub fn forward_train<T: Scalar>(&self, y: &[T], h: &mut [T], d: &mut [T], k: &mut [T]) {
        let n = y.len();
        let (h, d, k) = (&mut h[..n], &mut d[..n], &mut k[..n]);
        // Matching outside the loop lets each arm vectorise on its own.
        match *self {
            Activation::SmoothLeakyRelu { alpha } => {
                let a: T = c(alpha);
                for i in 0..n {
                    (h[i], d[i], k[i]) = smooth_leaky_relu(y[i], a);
                }
            }
            Activation::LeakyRelu { .. } => {
                for i in 0..n {
                    (h[i], d[i], k[i]) = self.fused(y[i]);
                }
            }
            Activation::TanhLinear { .. } => {
                for i in 0..n {
                    (h[i], d[i], k[i]) = self.fused(y[i]);
                }
            }
        }
    }

    /// Applies the activation to `y` for evaluation: writes `h = sigma(y)` and returns
    /// `sum ln sigma'(y)` over the slice.
    pub fn forward_eval<T: Scalar>(&self, y: &[T], h: &mut [T]) -> T {
        let mut acc = T::zero();
        for (hi, &yi) in h.iter_mut().zip(y) {
            let (v, d, _) = self.fused(yi);
            *hi = v;
            acc += d.ln();
        }
        acc
    }

    /// The exact inverse `sigma^{-1}(y)`, to round-off: closed form for leaky ReLU,
    /// safeguarded Newton iteration on a guaranteed bracket otherwise.
    pub fn inverse<T: Scalar>(&self, y: T) -> T {
        if !y.is_finite() {
            return y;
        }
        match *self {
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

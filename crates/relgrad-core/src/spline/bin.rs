//! One bin of a rational-quadratic spline: its value, slope and `d ln s'/dx`, the
//! gradient with respect to the bin's six numbers, and the inverse.

use crate::scalar::{c, Scalar};

/// One element's bin: knot, width, ordinate, height, end slopes.
#[derive(Clone, Copy)]
pub(crate) struct Bin<T> {
    pub(super) xk: T,
    pub(super) w: T,
    pub(super) yk: T,
    pub(super) h: T,
    pub(super) d0: T,
    pub(super) d1: T,
}

impl<T: Scalar> Bin<T> {
    /// `(s(a), s'(a), d ln s'(a) / da)` inside the bin.
    #[inline(always)]
    pub(super) fn eval(&self, a: T) -> (T, T, T) {
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
    pub(super) fn backward(&self, a: T, gy: T, gl: T) -> [T; 6] {
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
    pub(super) fn inverse(&self, y: T) -> T {
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

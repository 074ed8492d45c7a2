//! Factorised base densities for the latent variables `z`.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::scalar::{c, Scalar};

/// A standard univariate density; the latent density is its product over dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BaseDensity {
    /// Standard normal, `ln p(z) = -z^2 / 2 - ln(2 pi) / 2`. The default.
    #[default]
    Normal,
    /// Laplace with unit scale, `ln p(z) = -|z| - ln 2` (super-Gaussian sources, ICA).
    Laplace,
    /// Logistic with unit scale, `ln p(z) = -z - 2 ln(1 + e^{-z})`.
    Logistic,
}

impl BaseDensity {
    /// The name used by the CLI and model files.
    pub fn name(&self) -> &'static str {
        match self {
            BaseDensity::Normal => "normal",
            BaseDensity::Laplace => "laplace",
            BaseDensity::Logistic => "logistic",
        }
    }

    /// Parses a name produced by [`BaseDensity::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "normal" | "gaussian" => Some(BaseDensity::Normal),
            "laplace" => Some(BaseDensity::Laplace),
            "logistic" => Some(BaseDensity::Logistic),
            _ => None,
        }
    }

    /// `ln p(z)` for one coordinate.
    #[inline]
    pub fn log_prob<T: Scalar>(&self, z: T) -> T {
        match self {
            BaseDensity::Normal => {
                c::<T>(-0.5) * z * z - c::<T>(0.5 * (2.0 * core::f64::consts::PI).ln())
            }
            BaseDensity::Laplace => -z.abs() - T::LN_2(),
            BaseDensity::Logistic => {
                let a = z.abs();
                -a - c::<T>(2.0) * (-a).exp().ln_1p()
            }
        }
    }

    /// The score `psi(z) = d ln p(z) / dz`.
    #[inline]
    pub fn score<T: Scalar>(&self, z: T) -> T {
        match self {
            BaseDensity::Normal => -z,
            BaseDensity::Laplace => {
                if z > T::zero() {
                    -T::one()
                } else if z < T::zero() {
                    T::one()
                } else {
                    T::zero()
                }
            }
            BaseDensity::Logistic => -(z * c::<T>(0.5)).tanh(),
        }
    }

    /// Writes `scale * psi(z)` for every element of `z` into `out`.
    pub fn score_scaled<T: Scalar>(&self, z: &[T], scale: T, out: &mut [T]) {
        match self {
            BaseDensity::Normal => {
                for (o, &zi) in out.iter_mut().zip(z) {
                    *o = -zi * scale;
                }
            }
            _ => {
                for (o, &zi) in out.iter_mut().zip(z) {
                    *o = self.score(zi) * scale;
                }
            }
        }
    }

    /// The sum of `ln p(z_j)` over a slice.
    pub fn log_prob_sum<T: Scalar>(&self, z: &[T]) -> T {
        match self {
            BaseDensity::Normal => {
                let sq: T = z.iter().map(|&v| v * v).sum();
                c::<T>(-0.5) * sq
                    - c::<T>(0.5 * (2.0 * core::f64::consts::PI).ln() * z.len() as f64)
            }
            _ => z.iter().map(|&v| self.log_prob(v)).sum(),
        }
    }

    /// Draws one sample.
    pub fn sample<T: Scalar, R: Rng + ?Sized>(&self, rng: &mut R) -> T {
        let v: f64 = match self {
            BaseDensity::Normal => StandardNormal.sample(rng),
            BaseDensity::Laplace => {
                // Inverse CDF on u in (-1/2, 1/2).
                let u: f64 = rng.random::<f64>() - 0.5;
                let a = 1.0 - 2.0 * u.abs();
                -u.signum() * a.max(f64::MIN_POSITIVE).ln()
            }
            BaseDensity::Logistic => {
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                (u / (1.0 - u)).ln()
            }
        };
        c(v)
    }
}

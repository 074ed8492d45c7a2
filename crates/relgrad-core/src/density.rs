//! Factorised base densities for the latent variables `z`: standard ones, and a learnable
//! mixture of logistics per coordinate whose parameters the model holds (see
//! [`crate::mixture`]).

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::scalar::{c, Scalar};

/// A univariate density; the latent density is its product over dimensions.
///
/// The per-coordinate functions here ([`BaseDensity::log_prob`], [`BaseDensity::score`],
/// [`BaseDensity::sample`] and their batch forms) are those of the fixed densities; a
/// [`BaseDensity::Mixture`] is evaluated from its parameters ([`crate::mixture::Mixture`],
/// through the model's verbs) and panics there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BaseDensity {
    /// Standard normal, `ln p(z) = -z^2 / 2 - ln(2 pi) / 2`. The default.
    #[default]
    Normal,
    /// Laplace with unit scale, `ln p(z) = -|z| - ln 2` (super-Gaussian sources, ICA).
    Laplace,
    /// Logistic with unit scale, `ln p(z) = -z - 2 ln(1 + e^{-z})`.
    Logistic,
    /// A learnable mixture of `components` logistic densities per coordinate (see
    /// [`crate::mixture`]); the model holds its parameters.
    Mixture {
        /// Components per coordinate, `K`.
        components: usize,
    },
}

impl BaseDensity {
    /// The name used by the CLI and model files.
    pub fn name(&self) -> &'static str {
        match self {
            BaseDensity::Normal => "normal",
            BaseDensity::Laplace => "laplace",
            BaseDensity::Logistic => "logistic",
            BaseDensity::Mixture { .. } => "mixture",
        }
    }

    /// Parses a name produced by [`BaseDensity::name`]; `"mixture"` gets
    /// [`crate::mixture::DEFAULT_COMPONENTS`] (see [`BaseDensity::with_components`]).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "normal" | "gaussian" => Some(BaseDensity::Normal),
            "laplace" => Some(BaseDensity::Laplace),
            "logistic" => Some(BaseDensity::Logistic),
            "mixture" => Some(BaseDensity::Mixture {
                components: crate::mixture::DEFAULT_COMPONENTS,
            }),
            _ => None,
        }
    }

    /// A mixture with `components` components instead; other densities unchanged.
    pub fn with_components(self, components: usize) -> Self {
        match self {
            BaseDensity::Mixture { .. } => BaseDensity::Mixture { components },
            other => other,
        }
    }

    /// The components per coordinate of a mixture base, `None` for a fixed density.
    pub fn components(&self) -> Option<usize> {
        match *self {
            BaseDensity::Mixture { components } => Some(components),
            _ => None,
        }
    }

    /// Whether the density has learnable parameters.
    pub fn is_learnable(&self) -> bool {
        self.components().is_some()
    }

    /// Checks the settings (a mixture's component count).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            BaseDensity::Mixture { components } => crate::mixture::validate(components),
            _ => Ok(()),
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
            BaseDensity::Mixture { .. } => learnable(),
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
            BaseDensity::Mixture { .. } => learnable(),
        }
    }

    /// Writes `scale * psi(z)` for every element of `z` into `out`.
    pub fn score_scaled<T: Scalar>(&self, z: &[T], scale: T, out: &mut [T]) {
        crate::simd::vectorized(
            #[inline(always)]
            |_| match self {
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
            },
        )
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
            BaseDensity::Mixture { .. } => learnable(),
        };
        c(v)
    }
}

/// The fixed densities' functions called on a mixture (a programming error).
#[cold]
fn learnable() -> ! {
    panic!("a mixture base is evaluated from its parameters (crate::mixture::Mixture), not per coordinate")
}

#[cfg(test)]
mod tests {
    use super::BaseDensity;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const ALL: [BaseDensity; 3] = [
        BaseDensity::Normal,
        BaseDensity::Laplace,
        BaseDensity::Logistic,
    ];

    #[test]
    fn densities_integrate_to_one_and_scores_are_derivatives() {
        for base in ALL {
            // Trapezoid rule on [-40, 40].
            let h = 1e-3;
            let total: f64 = (-40_000..=40_000)
                .map(|i| base.log_prob(i as f64 * h).exp() * h)
                .sum();
            assert!((total - 1.0).abs() < 1e-6, "{base:?} integrates to {total}");
            for i in -50..=50 {
                let z = i as f64 * 0.17 + 0.013;
                let fd = (base.log_prob(z + 1e-6) - base.log_prob(z - 1e-6)) / 2e-6;
                assert!((fd - base.score(z)).abs() < 1e-6, "{base:?} score at {z}");
            }
            let zs = [0.3f64, -1.2, 2.5];
            let sum: f64 = zs.iter().map(|&z| base.log_prob(z)).sum();
            assert!((base.log_prob_sum(&zs) - sum).abs() < 1e-12);
            assert_eq!(BaseDensity::from_name(base.name()), Some(base));
        }
    }

    #[test]
    fn samples_have_the_right_moments() {
        // Variances: normal 1, Laplace 2, logistic pi^2 / 3.
        let want = [1.0, 2.0, std::f64::consts::PI.powi(2) / 3.0];
        for (base, var) in ALL.into_iter().zip(want) {
            let mut rng = StdRng::seed_from_u64(5);
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| base.sample(&mut rng)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(mean.abs() < 0.02, "{base:?} mean {mean}");
            assert!(
                (v / var - 1.0).abs() < 0.03,
                "{base:?} variance {v}, expected {var}"
            );
        }
    }
}

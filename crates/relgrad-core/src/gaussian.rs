//! The best full-covariance Gaussian of a data set: the reference every density model
//! should beat on held-out data.

use crate::backend::Backend;
use crate::collective::Collective;
use crate::error::{Error, Result};
use crate::linalg::{cholesky_ridged, mean_cov, mean_cov_across};
use crate::matrix::{Mat, MatRef};
use crate::scalar::Scalar;
use crate::simd::{dot, vectorized};

/// A Gaussian `N(mean, cov)` fitted by maximum likelihood, kept as its Cholesky factor.
#[derive(Clone, Debug)]
pub struct Gaussian {
    /// The mean.
    pub mean: Vec<f64>,
    /// Lower Cholesky factor of the (regularised) covariance.
    pub chol: Mat<f64>,
    /// The ridge added to the covariance's diagonal (0 unless it was singular).
    pub ridge: f64,
}

impl Gaussian {
    /// Fits mean and covariance to the rows of `x`. A singular covariance gets the smallest
    /// ridge (from `1e-9` times its mean variance up) that makes it positive definite.
    pub fn fit<T: Scalar, B: Backend<T>>(backend: &B, x: MatRef<'_, T>) -> Result<Self> {
        let (mean, cov) = mean_cov(backend, x)?;
        let (chol, ridge) = cholesky_ridged(&cov, 1e-9)?;
        Ok(Self { mean, chol, ridge })
    }

    /// [`Gaussian::fit`] to the rows held by all processes of `comm` together (`x`: this
    /// process's rows): every process gets the same Gaussian.
    pub fn fit_across<T: Scalar, B: Backend<T>, C: Collective>(
        backend: &B,
        x: MatRef<'_, T>,
        comm: &C,
    ) -> Result<Self> {
        let (mean, cov) = mean_cov_across(backend, x, comm)?;
        let (chol, ridge) = cholesky_ridged(&cov, 1e-9)?;
        Ok(Self { mean, chol, ridge })
    }

    /// The mean log-likelihood of the rows it was fitted to, in closed form:
    /// `-D/2 (1 + ln 2 pi) - ln det L` (exact when [`Gaussian::ridge`] is 0; with a ridge,
    /// the regularised Gaussian's own entropy term).
    pub fn fitted_mean_log_likelihood(&self) -> f64 {
        let d = self.mean.len() as f64;
        let log_det_half: f64 = (0..self.mean.len()).map(|i| self.chol.get(i, i).ln()).sum();
        -0.5 * d * (1.0 + (2.0 * core::f64::consts::PI).ln()) - log_det_half
    }

    /// The log-density of every row of `x` (nats).
    pub fn log_prob<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<Vec<f64>> {
        let d = self.mean.len();
        if x.cols() != d {
            return Err(Error::DimensionMismatch {
                expected: d,
                found: x.cols(),
            });
        }
        let log_det_half: f64 = (0..d).map(|i| self.chol.get(i, i).ln()).sum();
        let konst = -0.5 * d as f64 * (2.0 * core::f64::consts::PI).ln() - log_det_half;
        let mut u = vec![0.0; d];
        let mut out = Vec::with_capacity(x.rows());
        // Forward substitution L u = x - mean per row, its dot products in the widest
        // vectors the CPU has (O(D^2) per row: scalar, thousands of rows at D = 784 took
        // seconds). Plain loops: a closure inside would not be inlined into the vector
        // copies (see `simd`).
        vectorized(
            #[inline(always)]
            |fma| {
                for r in 0..x.rows() {
                    let row = x.row(r);
                    for i in 0..d {
                        let li = self.chol.row(i);
                        let s = row[i].to_f64c() - self.mean[i] - dot(fma, &li[..i], &u[..i]);
                        u[i] = s / li[i];
                    }
                    out.push(konst - 0.5 * dot(fma, &u, &u));
                }
            },
        );
        Ok(out)
    }

    /// The mean log-likelihood of the rows of `x`.
    pub fn mean_log_likelihood<T: Scalar>(&self, x: MatRef<'_, T>) -> Result<f64> {
        if x.rows() == 0 {
            return Err(Error::NotEnoughData("no rows to evaluate".into()));
        }
        let lp = self.log_prob(x)?;
        Ok(lp.iter().sum::<f64>() / lp.len() as f64)
    }
}

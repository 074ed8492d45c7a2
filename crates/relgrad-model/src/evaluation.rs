//! Reporting log-likelihoods: means with two standard errors, in the network's space and
//! in the data's units, beside the best full-covariance Gaussian; and the quantiles of
//! the training rows' log-densities that a service uses as anomaly thresholds.

use serde_json::{json, Value};

/// A mean with two standard errors (`2 std / sqrt(n)`), the density-estimation
/// literature's way of reporting a test log-likelihood.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSe {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Two standard errors of the mean (`0` for fewer than two values).
    pub two_se: f64,
}

impl MeanSe {
    /// The mean and two standard errors of `values` (sample standard deviation, divided
    /// by `n - 1`), accumulated in `f64`. Empty input gives NaN: callers reject it first.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self {
                n,
                mean: f64::NAN,
                two_se: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let two_se = if n > 1 {
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
            2.0 * (var / n as f64).sqrt()
        } else {
            0.0
        };
        Self { n, mean, two_se }
    }

    /// `"-117.52 ± 1.31"` with `digits` decimals.
    pub fn display(&self, digits: usize) -> String {
        format!("{:.*} ± {:.*}", digits, self.mean, digits, self.two_se)
    }
}

/// Log-likelihoods of a set of rows, in the network's space and the data's units.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Rows.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Mean log-likelihood in the network's space (after preprocessing).
    pub ll: MeanSe,
    /// Mean log-likelihood in the data's units (pixel units for image data).
    pub ll_data: MeanSe,
    /// Bits per dimension (image data only).
    pub bits_per_dim: Option<MeanSe>,
    /// The reference Gaussian's mean log-likelihood (network space) and where it was
    /// fitted (`"training split"`, ...).
    pub gaussian: Option<(MeanSe, String)>,
}

impl Evaluation {
    /// The metrics as JSON fields (`ll_mean`, `ll_2se`, ...), as recorded in model files.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "n": self.n,
            "d": self.d,
            "ll_mean": self.ll.mean,
            "ll_2se": self.ll.two_se,
            "ll_data_mean": self.ll_data.mean,
            "ll_data_2se": self.ll_data.two_se,
        });
        if let Some(b) = self.bits_per_dim {
            v["bits_per_dim"] = b.mean.into();
            v["bits_per_dim_2se"] = b.two_se.into();
        }
        if let Some((g, on)) = &self.gaussian {
            v["gaussian_ll_mean"] = g.mean.into();
            v["gaussian_ll_2se"] = g.two_se.into();
            v["gaussian_fitted_on"] = on.clone().into();
        }
        v
    }
}

/// Bits per dimension of a log-density in pixel units: `-ln p / (D ln 2)`.
pub fn bits_per_dim(log_density: f64, dim: usize) -> f64 {
    -log_density / (dim as f64 * std::f64::consts::LN_2)
}

/// The probabilities at which the training rows' log-densities are summarised in a model
/// file (`train_log_prob_quantiles`): a row scoring below the `q` quantile is rarer than
/// a fraction `q` of the training rows.
pub const QUANTILE_LEVELS: [f64; 9] = [0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0];

/// Quantiles of a set of log-densities: `(level, value)` pairs, linearly interpolated
/// between order statistics (NumPy's default). `None` if `values` is empty or holds a
/// non-finite value.
pub fn quantiles(values: &[f64], levels: &[f64]) -> Option<Vec<(f64, f64)>> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(
        levels
            .iter()
            .map(|&q| {
                let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
                let (lo, frac) = (pos.floor() as usize, pos.fract());
                let hi = (lo + 1).min(n - 1);
                (q, s[lo] + frac * (s[hi] - s[lo]))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_two_se() {
        let m = MeanSe::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        let sd = (5.0f64 / 3.0).sqrt();
        assert!((m.two_se - 2.0 * sd / 2.0).abs() < 1e-12);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([3, 1, 2, 10], [0, 0.5, 0.9, 1]) = [1, 2.5, 7.9, 10]
        let q = quantiles(&[3.0, 1.0, 2.0, 10.0], &[0.0, 0.5, 0.9, 1.0]).unwrap();
        let v: Vec<f64> = q.iter().map(|p| p.1).collect();
        for (a, b) in v.iter().zip([1.0, 2.5, 7.9, 10.0]) {
            assert!((a - b).abs() < 1e-12, "{v:?}");
        }
        assert!(quantiles(&[1.0, f64::NAN], &[0.5]).is_none());
        assert!(quantiles(&[], &[0.5]).is_none());
    }
}

//! Preprocessing: the map from the data's units to the space the network works in, its
//! log-Jacobian (so that log-likelihoods come back in the data's units) and its inverse
//! (so that samples come back in the data's units). It is fitted on the training rows
//! only and recorded, with its parameters, in the model file.
//!
//! - `none`: the identity.
//! - `standardize`: `y = (x - mean) / std` per column (a constant column gets `std = 1`).
//!   `ln p(x) = ln p_model(y) - sum_j ln std_j`.
//! - `logit`, for images with `levels` quantisation levels (256 for 8-bit data, 17 for
//!   the digits, whose pixels are 0..16): dequantise, `u = (pixel + U(0,1)) / levels`,
//!   then `s = lambda + (1 - 2 lambda) u`, `y = ln(s / (1 - s))` with `lambda = 1e-6`.
//!   The log-density of the dequantised pixels (in pixel units, `[0, levels)` per
//!   dimension) is
//!   `ln p(pixel) = ln p_model(y) + sum_j [ln(1 - 2 lambda) - ln s_j - ln(1 - s_j)] - D ln(levels)`,
//!   and bits per dimension is `-ln p(pixel) / (D ln 2)`, which equals the usual
//!   `-(ll_[0,1] - D ln levels) / (D ln 2)` (with `levels = 256`, the literature's
//!   formula). Sampling inverts the logit and rounds down: `pixel = floor(levels u)`,
//!   clamped to `0..levels-1`.
//!
//! The dequantisation noise comes from a seed (see [`crate::split::noise_seed`]), so
//! evaluating the same rows twice gives the same numbers.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use relgrad_core::{Alone, Collective, Mat, MatRef};
use serde_json::{json, Value};

use crate::across;
use crate::error::{Error, Result};

/// The `lambda` of the logit transform (as in the spec and the literature).
pub const LOGIT_LAMBDA: f64 = 1e-6;

/// The largest number of quantisation levels accepted (`2^24`: pixel values must stay
/// exact integers in `f32`).
pub const MAX_LEVELS: u32 = 1 << 24;

/// Which preprocessing to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PreprocessKind {
    /// `logit` for image data (data with known quantisation levels), else `standardize`.
    #[default]
    Auto,
    /// No preprocessing.
    None,
    /// Zero mean and unit variance per column, fitted on the training rows.
    Standardize,
    /// Dequantise integer pixels and apply the logit (image data).
    Logit,
}

impl PreprocessKind {
    /// `"auto"`, `"none"`, `"standardize"` or `"logit"`.
    pub fn name(&self) -> &'static str {
        match self {
            PreprocessKind::Auto => "auto",
            PreprocessKind::None => "none",
            PreprocessKind::Standardize => "standardize",
            PreprocessKind::Logit => "logit",
        }
    }

    /// The kind named by [`PreprocessKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Auto, Self::None, Self::Standardize, Self::Logit]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// A fitted preprocessing, with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Preprocess {
    /// The identity.
    None,
    /// `(x - mean) / std` per column.
    Standardize {
        /// Column means of the training rows.
        mean: Vec<f64>,
        /// Column standard deviations (1 for constant columns).
        std: Vec<f64>,
    },
    /// Dequantisation and logit.
    Logit {
        /// Quantisation levels of a pixel (pixel values `0..levels-1`).
        levels: u32,
        /// The logit's `lambda`.
        lambda: f64,
    },
}

/// Data mapped into the network's space, with the log-Jacobian of every row.
#[derive(Clone, Debug)]
pub struct Transformed {
    /// The values in the network's space.
    pub x: Mat<f64>,
    /// `ln |det d(model space) / d(data units)|` per row: add it to a model-space
    /// log-density to get the log-density in the data's units.
    pub log_jacobian: Vec<f64>,
}

impl Preprocess {
    /// Fits the preprocessing `kind` to the training rows `x`. `levels` is the data's
    /// number of quantisation levels, when known (it makes `Auto` choose `logit`).
    pub fn fit(kind: PreprocessKind, x: MatRef<'_, f64>, levels: Option<u32>) -> Result<Self> {
        Self::fit_across(kind, x, levels, &Alone)
    }

    /// [`Preprocess::fit`] to the training rows of every process of `comm` (`x`: this
    /// process's rows; see [`crate::across`]); every process gets the same preprocessing.
    pub fn fit_across<C: Collective>(
        kind: PreprocessKind,
        x: MatRef<'_, f64>,
        levels: Option<u32>,
        comm: &C,
    ) -> Result<Self> {
        let kind = match kind {
            PreprocessKind::Auto if levels.is_some() => PreprocessKind::Logit,
            PreprocessKind::Auto => PreprocessKind::Standardize,
            k => k,
        };
        let p = match kind {
            PreprocessKind::None | PreprocessKind::Auto => Preprocess::None,
            PreprocessKind::Standardize => {
                if x.rows() < 2 && comm.size() == 1 {
                    return Err(Error::Config(
                        "standardising needs at least 2 training rows".into(),
                    ));
                }
                let (mean, var) = across::column_moments(x, comm);
                // A column is constant when its spread is rounding noise relative to its
                // own mean (each column on its own scale: a column of scale 1e-8 beside
                // one of 1e5 is still standardised); it keeps a unit scale.
                let std = var
                    .iter()
                    .zip(&mean)
                    .map(|(v, m)| {
                        let sd = v.sqrt();
                        if sd > 1e-12 * m.abs() && sd > 0.0 {
                            sd
                        } else {
                            1.0
                        }
                    })
                    .collect();
                Preprocess::Standardize { mean, std }
            }
            PreprocessKind::Logit => {
                let levels = levels.ok_or_else(|| {
                    Error::Config("the logit preprocessing needs integer pixel data with known quantisation levels: give the levels (e.g. 256 for 8-bit images)".into())
                })?;
                Preprocess::Logit {
                    levels,
                    lambda: LOGIT_LAMBDA,
                }
            }
        };
        p.validate(x.cols())?;
        Ok(p)
    }

    /// Checks the parameters for data of `dim` columns: lengths, finite means, positive
    /// finite scales, `2 <= levels <= 2^24`, `0 < lambda < 0.5`.
    pub fn validate(&self, dim: usize) -> Result<()> {
        match self {
            Preprocess::None => Ok(()),
            Preprocess::Standardize { mean, std } => {
                for (name, v) in [("mean", mean), ("std", std)] {
                    if v.len() != dim {
                        return Err(Error::invalid(format!(
                            "the standardisation's {name} has {} values, expected {dim} (one per column)",
                            v.len()
                        )));
                    }
                }
                if let Some(j) = mean.iter().position(|m| !m.is_finite()) {
                    return Err(Error::invalid(format!(
                        "the standardisation's mean of column {} is {}, expected a finite number",
                        j + 1,
                        mean[j]
                    )));
                }
                if let Some(j) = std.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(Error::invalid(format!(
                        "the standardisation's std of column {} is {}, expected a positive finite number",
                        j + 1,
                        std[j]
                    )));
                }
                Ok(())
            }
            Preprocess::Logit { levels, lambda } => {
                if !(2..=MAX_LEVELS).contains(levels) {
                    return Err(Error::invalid(format!(
                        "the logit preprocessing's levels is {levels}, expected 2 to {MAX_LEVELS}"
                    )));
                }
                if !(*lambda > 0.0 && *lambda < 0.5) {
                    return Err(Error::invalid(format!(
                        "the logit preprocessing's lambda is {lambda}, expected a number in (0, 0.5)"
                    )));
                }
                Ok(())
            }
        }
    }

    /// `"none"`, `"standardize"` or `"logit"`.
    pub fn name(&self) -> &'static str {
        match self {
            Preprocess::None => "none",
            Preprocess::Standardize { .. } => "standardize",
            Preprocess::Logit { .. } => "logit",
        }
    }

    /// The quantisation levels, for image data preprocessed with `logit`.
    pub fn levels(&self) -> Option<u32> {
        match self {
            Preprocess::Logit { levels, .. } => Some(*levels),
            _ => None,
        }
    }

    /// What the model-space log-likelihood is called in reports.
    pub fn space_name(&self) -> &'static str {
        match self {
            Preprocess::None => "data space",
            Preprocess::Standardize { .. } => "standardised space",
            Preprocess::Logit { .. } => "logit space",
        }
    }

    /// The JSON recorded in model files (parameters included).
    pub fn to_json(&self) -> Value {
        match self {
            Preprocess::None => json!({"kind": "none"}),
            Preprocess::Standardize { mean, std } => {
                json!({"kind": "standardize", "mean": mean, "std": std})
            }
            Preprocess::Logit { levels, lambda } => json!({
                "kind": "logit",
                "levels": levels,
                "lambda": lambda,
                "dequantization": "(pixel + U(0,1)) / levels",
            }),
        }
    }

    /// Reads [`Preprocess::to_json`]'s output back (not yet validated against a
    /// dimension: see [`Preprocess::validate`]).
    pub fn from_json(v: &Value) -> Result<Self> {
        let floats = |k: &str| -> Result<Vec<f64>> {
            v[k].as_array()
                .ok_or_else(|| {
                    Error::invalid(format!("the standardisation has no {k:?} list of numbers"))
                })?
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    x.as_f64().ok_or_else(|| {
                        Error::invalid(format!(
                            "the standardisation's {k} of column {} is {x}, expected a number",
                            j + 1
                        ))
                    })
                })
                .collect()
        };
        Ok(match v["kind"].as_str().unwrap_or_default() {
            "none" => Preprocess::None,
            "standardize" => Preprocess::Standardize {
                mean: floats("mean")?,
                std: floats("std")?,
            },
            "logit" => {
                let levels = v["levels"].as_u64().ok_or_else(|| {
                    Error::invalid(format!(
                        "the logit preprocessing's levels is {}, expected a whole number",
                        v["levels"]
                    ))
                })?;
                // Refused here rather than saturated, so that the message names the
                // file's value.
                let levels = u32::try_from(levels).map_err(|_| {
                    Error::invalid(format!(
                        "the logit preprocessing's levels is {levels}, expected 2 to {MAX_LEVELS}"
                    ))
                })?;
                Preprocess::Logit {
                    levels,
                    lambda: match &v["lambda"] {
                        Value::Null => LOGIT_LAMBDA,
                        l => l.as_f64().ok_or_else(|| {
                            Error::invalid(format!(
                                "the logit preprocessing's lambda is {l}, expected a number"
                            ))
                        })?,
                    },
                }
            }
            other => {
                return Err(Error::invalid(format!(
                "unknown preprocessing {other:?}, expected \"none\", \"standardize\" or \"logit\""
            )))
            }
        })
    }

    fn check_cols(&self, cols: usize) -> Result<()> {
        if let Preprocess::Standardize { mean, .. } = self {
            if mean.len() != cols {
                return Err(Error::Columns {
                    expected: mean.len(),
                    found: cols,
                });
            }
        }
        Ok(())
    }

    /// Maps rows in the data's units into the network's space. `noise_seed` drives the
    /// dequantisation noise (`logit` only). Values must be finite (see [`check_finite`]).
    pub fn apply(&self, x: MatRef<'_, f64>, noise_seed: u64) -> Result<Transformed> {
        self.apply_from(x, noise_seed, 0)
    }

    /// [`Preprocess::apply`] to rows that follow `first_row` other rows of the same part
    /// (a process's shard in data-parallel training): the dequantisation noise is the
    /// part's noise from row `first_row` on, so that the shards of a part together get
    /// exactly the noise the whole part gets.
    pub fn apply_from(
        &self,
        x: MatRef<'_, f64>,
        noise_seed: u64,
        first_row: usize,
    ) -> Result<Transformed> {
        self.check_cols(x.cols())?;
        let (rows, cols) = (x.rows(), x.cols());
        match self {
            Preprocess::None => Ok(Transformed {
                x: x.to_owned(),
                log_jacobian: vec![0.0; rows],
            }),
            Preprocess::Standardize { mean, std } => {
                let lj: f64 = -std.iter().map(|s| s.ln()).sum::<f64>();
                let y = Mat::from_fn(rows, cols, |i, j| (x.get(i, j) - mean[j]) / std[j]);
                overflow_check(&y, "standardised")?;
                Ok(Transformed {
                    x: y,
                    log_jacobian: vec![lj; rows],
                })
            }
            Preprocess::Logit { levels, lambda } => {
                let lv = *levels as f64;
                // ChaCha12 is StdRng's generator; each value draws one u64 (two words).
                let mut rng = ChaCha12Rng::seed_from_u64(noise_seed);
                let words = (first_row as u128) * (cols as u128) * 2;
                rng.set_word_pos(words);
                let mut values = Vec::with_capacity(rows * cols);
                let mut log_jacobian = Vec::with_capacity(rows);
                let konst = cols as f64 * ((1.0 - 2.0 * lambda).ln() - lv.ln());
                for i in 0..rows {
                    let mut lj = konst;
                    for (j, &p) in x.row(i).iter().enumerate() {
                        let noise: f64 = rng.random();
                        if !(p >= 0.0 && p <= lv - 1.0 && p.fract() == 0.0) {
                            return Err(Error::NotAPixel {
                                row: first_row + i,
                                col: j,
                                value: p,
                                levels: *levels,
                            });
                        }
                        let u = (p + noise) / lv;
                        let s = lambda + (1.0 - 2.0 * lambda) * u;
                        values.push((s / (1.0 - s)).ln());
                        lj -= s.ln() + (1.0 - s).ln();
                    }
                    log_jacobian.push(lj);
                }
                Ok(Transformed {
                    x: Mat::from_vec(rows, cols, values),
                    log_jacobian,
                })
            }
        }
    }

    /// Maps values in the network's space back to the data's units (samples). A value
    /// that overflows the data's units (standardisation with an extreme scale) is an error.
    pub fn invert(&self, y: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let (rows, cols) = (y.rows(), y.cols());
        let x = match self {
            Preprocess::None => y.to_owned(),
            Preprocess::Standardize { mean, std } => {
                Mat::from_fn(rows, cols, |i, j| y.get(i, j) * std[j] + mean[j])
            }
            Preprocess::Logit { levels, lambda } => {
                let lv = *levels as f64;
                Mat::from_fn(rows, cols, |i, j| {
                    let s = 1.0 / (1.0 + (-y.get(i, j)).exp());
                    let u = (s - lambda) / (1.0 - 2.0 * lambda);
                    // `max`/`min` rather than `clamp`: a NaN stays NaN instead of panicking.
                    (lv * u).floor().max(0.0).min(lv - 1.0)
                })
            }
        };
        overflow_check(&x, "mapped back to the data's units")?;
        Ok(x)
    }
}

/// The (one-based) row and column of the first non-finite value of `m`.
pub(crate) fn first_non_finite(m: &Mat<f64>) -> Option<(usize, usize)> {
    let k = m.as_slice().iter().position(|v| !v.is_finite())?;
    Some((k / m.cols() + 1, k % m.cols() + 1))
}

/// An error naming the first value of `m` that overflowed (the inputs were finite).
fn overflow_check(m: &Mat<f64>, what: &str) -> Result<()> {
    match first_non_finite(m) {
        None => Ok(()),
        Some((row, col)) => Err(Error::NonFiniteResult(format!(
            "row {row}, column {col}: the value {what} overflows (the standardisation's mean and std are extreme for these data)"
        ))),
    }
}

/// An error naming the first value of `x` that is NaN or infinite.
pub fn check_finite(x: MatRef<'_, f64>) -> Result<()> {
    for i in 0..x.rows() {
        if let Some(j) = x.row(i).iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                row: i,
                col: j,
                value: x.get(i, j),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_noise_of_shards_is_the_noise_of_the_whole_part() {
        let p = Preprocess::Logit {
            levels: 17,
            lambda: LOGIT_LAMBDA,
        };
        let x = Mat::from_fn(37, 5, |i, j| ((i * 7 + j * 3) % 17) as f64);
        let whole = p.apply(x.as_ref(), 99).unwrap();
        // The noise is StdRng's stream (the numbers of earlier versions).
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let u: f64 = rng.random();
        let s = LOGIT_LAMBDA + (1.0 - 2.0 * LOGIT_LAMBDA) * (x.get(0, 0) + u) / 17.0;
        assert_eq!(whole.x.get(0, 0), (s / (1.0 - s)).ln());
        for cut in [(0, 10), (10, 11), (11, 37)] {
            let part = p
                .apply_from(x.as_ref().rows_range(cut.0, cut.1), 99, cut.0)
                .unwrap();
            for i in 0..cut.1 - cut.0 {
                assert_eq!(part.x.row(i), whole.x.row(cut.0 + i), "row {}", cut.0 + i);
                assert_eq!(part.log_jacobian[i], whole.log_jacobian[cut.0 + i]);
            }
        }
    }

    #[test]
    fn a_tiny_column_beside_a_large_one_is_standardised_not_called_constant() {
        let x = Mat::from_fn(4, 3, |i, j| match j {
            0 => 1e5 + i as f64,
            1 => 1e-8 * i as f64,
            _ => 7.0,
        });
        let p = Preprocess::fit(PreprocessKind::Standardize, x.as_ref(), None).unwrap();
        let Preprocess::Standardize { std, .. } = &p else {
            panic!("{p:?}")
        };
        assert!((std[1] - 1e-8 * 1.25f64.sqrt()).abs() < 1e-20, "{std:?}");
        assert_eq!(std[2], 1.0, "a constant column keeps a unit scale");
        let t = p.apply(x.as_ref(), 0).unwrap();
        assert!((t.x.get(3, 1) - 1.5 / 1.25f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn overflow_in_either_direction_is_an_error_naming_the_value() {
        let p = Preprocess::Standardize {
            mean: vec![0.0, -1.7e308],
            std: vec![1.0, 1e-10],
        };
        p.validate(2).unwrap();
        let x = Mat::from_vec(2, 2, vec![0.0, -1.7e308, 1.0, 1.0]);
        let e = p.apply(x.as_ref(), 0).unwrap_err().to_string();
        assert!(
            e.contains("row 2, column 2") && e.contains("overflows"),
            "{e}"
        );
        let wide = Preprocess::Standardize {
            mean: vec![0.0],
            std: vec![1e300],
        };
        let e = wide
            .invert(Mat::from_vec(1, 1, vec![1e10]).as_ref())
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 1, column 1"), "{e}");
    }

    #[test]
    fn standardize_round_trip_and_jacobian() {
        let x = Mat::from_vec(3, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0]);
        let p = Preprocess::fit(PreprocessKind::Auto, x.as_ref(), None).unwrap();
        let Preprocess::Standardize { mean, std } = &p else {
            panic!("auto without levels standardises")
        };
        assert_eq!(mean, &vec![2.0, 5.0]);
        assert_eq!(std[1], 1.0, "a constant column keeps unit scale");
        let t = p.apply(x.as_ref(), 0).unwrap();
        assert!((t.log_jacobian[0] + std[0].ln()).abs() < 1e-15);
        let back = p.invert(t.x.as_ref()).unwrap();
        for (a, b) in back.as_slice().iter().zip(x.as_slice()) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(Preprocess::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn logit_dequantises_inverts_and_has_the_right_jacobian() {
        let x = Mat::from_vec(2, 3, vec![0.0, 16.0, 7.0, 3.0, 0.0, 1.0]);
        let p = Preprocess::fit(PreprocessKind::Auto, x.as_ref(), Some(17)).unwrap();
        assert_eq!(p.levels(), Some(17));
        let a = p.apply(x.as_ref(), 5).unwrap();
        let b = p.apply(x.as_ref(), 5).unwrap();
        assert_eq!(a.x, b.x, "seeded noise");
        assert_eq!(
            p.invert(a.x.as_ref()).unwrap(),
            x,
            "floor undoes the dequantisation"
        );
        let (lv, lam) = (17.0f64, LOGIT_LAMBDA);
        let expect: f64 = (0..3)
            .map(|j| {
                let s = 1.0 / (1.0 + (-a.x.get(0, j)).exp());
                ((1.0 - 2.0 * lam) / (lv * s * (1.0 - s))).ln()
            })
            .sum();
        assert!((a.log_jacobian[0] - expect).abs() < 1e-9);
        let e = p
            .apply(Mat::from_vec(1, 3, vec![0.0, 17.0, 1.0]).as_ref(), 0)
            .unwrap_err();
        assert!(e.to_string().contains("row 1, column 2"), "{e}");
        assert_eq!(Preprocess::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn invalid_parameters_are_named() {
        let cases = [
            (
                Preprocess::Standardize {
                    mean: vec![0.0],
                    std: vec![1.0, 1.0],
                },
                "mean has 1 values, expected 2",
            ),
            (
                Preprocess::Standardize {
                    mean: vec![0.0, f64::NAN],
                    std: vec![1.0, 1.0],
                },
                "mean of column 2 is NaN",
            ),
            (
                Preprocess::Standardize {
                    mean: vec![0.0, 0.0],
                    std: vec![1.0, 0.0],
                },
                "std of column 2 is 0, expected a positive finite number",
            ),
            (
                Preprocess::Logit {
                    levels: 0,
                    lambda: LOGIT_LAMBDA,
                },
                "levels is 0, expected 2 to",
            ),
            (
                Preprocess::Logit {
                    levels: 17,
                    lambda: 0.7,
                },
                "lambda is 0.7",
            ),
        ];
        for (p, needle) in cases {
            let e = p.validate(2).unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        let e = Preprocess::from_json(&json!({"kind": "whiten"})).unwrap_err();
        assert!(e.to_string().contains("unknown preprocessing \"whiten\""));
    }

    #[test]
    fn non_finite_input_is_named_from_one() {
        let x = Mat::from_vec(2, 2, vec![0.0, 1.0, 2.0, f64::INFINITY]);
        let e = check_finite(x.as_ref()).unwrap_err().to_string();
        assert!(
            e.contains("row 2, column 2 is not a finite number (inf)"),
            "{e}"
        );
    }
}

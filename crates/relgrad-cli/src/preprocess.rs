//! Preprocessing: the map from the data's units to the space the model works in, its
//! log-Jacobian (so that log-likelihoods can be reported in the data's units) and its
//! inverse (so that samples come back in the data's units). It is fitted on the training
//! rows only and recorded, with its parameters, in the model file.
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
//! The dequantisation noise is drawn from a seed per part of the data (training,
//! validation, test, other), so evaluating the same rows twice gives the same numbers.

use anyhow::{anyhow, bail, ensure, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::data::{Dataset, Part, Table};

/// The `lambda` of the logit transform (as in the spec and the literature).
pub const LOGIT_LAMBDA: f64 = 1e-6;

/// What the user asks for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PreprocessKind {
    /// `logit` for image data (the digits, IDX files, 8-bit `.npy` arrays, or any data
    /// given `--levels`), else `standardize`.
    Auto,
    /// No preprocessing.
    None,
    /// Zero mean and unit variance per column, fitted on the training rows.
    Standardize,
    /// Dequantise integer pixels and apply the logit (image data).
    Logit,
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

/// Data mapped into the model's space, with the log-Jacobian of every row.
#[derive(Clone, Debug)]
pub struct Transformed {
    /// The values in model space.
    pub table: Table,
    /// `ln |det d(model space) / d(data units)|` per row: add it to a model-space
    /// log-density to get the log-density in the data's units.
    pub log_jacobian: Vec<f64>,
}

/// The seed of the dequantisation noise of one part of the data.
pub fn noise_seed(seed: u64, part: Part) -> u64 {
    let k: u64 = match part {
        Part::Train => 1,
        Part::Val => 2,
        Part::Test => 3,
        Part::All => 4,
    };
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (0xD1CE_0000_0000_0000 | k)
}

impl Preprocess {
    /// Fits the preprocessing `kind` to the training data. `levels` overrides the data's
    /// own quantisation levels for `logit`.
    pub fn fit(kind: PreprocessKind, train: &Dataset, levels: Option<u32>) -> Result<Self> {
        let levels = levels.or(train.levels);
        let kind = match kind {
            PreprocessKind::Auto if levels.is_some() => PreprocessKind::Logit,
            PreprocessKind::Auto => PreprocessKind::Standardize,
            k => k,
        };
        Ok(match kind {
            PreprocessKind::None | PreprocessKind::Auto => Preprocess::None,
            PreprocessKind::Standardize => {
                let t = &train.table;
                ensure!(t.rows >= 2, "standardising needs at least 2 training rows");
                let n = t.rows as f64;
                let mut mean = vec![0.0; t.cols];
                for i in 0..t.rows {
                    for (m, v) in mean.iter_mut().zip(t.row(i)) {
                        *m += v;
                    }
                }
                mean.iter_mut().for_each(|m| *m /= n);
                let mut var = vec![0.0; t.cols];
                for i in 0..t.rows {
                    for ((s, v), m) in var.iter_mut().zip(t.row(i)).zip(&mean) {
                        *s += (v - m) * (v - m);
                    }
                }
                let std = var
                    .iter()
                    .map(|s| {
                        let sd = (s / n).sqrt();
                        if sd > 1e-12 * (1.0 + mean.iter().map(|m| m.abs()).fold(0.0, f64::max)) {
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
                    anyhow!("--preprocess logit needs integer pixel data with known levels: pass --levels (e.g. 256 for 8-bit images)")
                })?;
                ensure!(levels >= 2, "--levels must be at least 2, got {levels}");
                Preprocess::Logit {
                    levels,
                    lambda: LOGIT_LAMBDA,
                }
            }
        })
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

    /// Reads [`Preprocess::to_json`]'s output back.
    pub fn from_json(v: &Value) -> Result<Self> {
        let floats = |k: &str| -> Result<Vec<f64>> {
            v[k].as_array()
                .ok_or_else(|| anyhow!("standardize without {k}"))?
                .iter()
                .map(|x| x.as_f64().ok_or_else(|| anyhow!("{k} holds a non-number")))
                .collect()
        };
        Ok(match v["kind"].as_str().unwrap_or_default() {
            "none" => Preprocess::None,
            "standardize" => Preprocess::Standardize {
                mean: floats("mean")?,
                std: floats("std")?,
            },
            "logit" => Preprocess::Logit {
                levels: v["levels"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("logit without levels"))? as u32,
                lambda: v["lambda"].as_f64().unwrap_or(LOGIT_LAMBDA),
            },
            other => bail!("unknown preprocessing {other:?}"),
        })
    }

    /// Checks that the preprocessing fits data of `cols` columns.
    pub fn check_dim(&self, cols: usize) -> Result<()> {
        if let Preprocess::Standardize { mean, .. } = self {
            ensure!(
                mean.len() == cols,
                "the preprocessing was fitted to {} columns, the data has {cols}",
                mean.len()
            );
        }
        Ok(())
    }

    /// Maps data into model space. `seed` drives the dequantisation noise (`logit` only).
    /// `what` names the data in error messages. Rows that are not finite are passed
    /// through as NaN (callers reject or skip them before).
    pub fn apply(&self, table: &Table, seed: u64, what: &str) -> Result<Transformed> {
        self.check_dim(table.cols)?;
        let (rows, cols) = (table.rows, table.cols);
        match self {
            Preprocess::None => Ok(Transformed {
                table: table.clone(),
                log_jacobian: vec![0.0; rows],
            }),
            Preprocess::Standardize { mean, std } => {
                let lj: f64 = -std.iter().map(|s| s.ln()).sum::<f64>();
                Ok(Transformed {
                    table: Table::from_fn(rows, cols, |i, j| (table.get(i, j) - mean[j]) / std[j]),
                    log_jacobian: vec![lj; rows],
                })
            }
            Preprocess::Logit { levels, lambda } => {
                let lv = *levels as f64;
                let mut rng = StdRng::seed_from_u64(seed);
                let mut values = Vec::with_capacity(rows * cols);
                let mut log_jacobian = Vec::with_capacity(rows);
                let konst = cols as f64 * ((1.0 - 2.0 * lambda).ln() - lv.ln());
                for i in 0..rows {
                    let mut lj = konst;
                    for (j, &p) in table.row(i).iter().enumerate() {
                        let noise: f64 = rng.random();
                        if !p.is_finite() {
                            values.push(f64::NAN);
                            lj = f64::NAN;
                            continue;
                        }
                        if p < 0.0 || p > lv - 1.0 || p.fract() != 0.0 {
                            bail!(
                                "{what}: row {}, column {}: expected an integer pixel value in 0..={} for the logit preprocessing, found {p}",
                                i + 1,
                                j + 1,
                                levels - 1
                            );
                        }
                        let u = (p + noise) / lv;
                        let s = lambda + (1.0 - 2.0 * lambda) * u;
                        values.push((s / (1.0 - s)).ln());
                        lj -= s.ln() + (1.0 - s).ln();
                    }
                    log_jacobian.push(lj);
                }
                Ok(Transformed {
                    table: Table::new(rows, cols, values),
                    log_jacobian,
                })
            }
        }
    }

    /// Maps model-space values back to the data's units (samples).
    pub fn invert(&self, table: &Table) -> Table {
        match self {
            Preprocess::None => table.clone(),
            Preprocess::Standardize { mean, std } => {
                Table::from_fn(table.rows, table.cols, |i, j| {
                    table.get(i, j) * std[j] + mean[j]
                })
            }
            Preprocess::Logit { levels, lambda } => {
                let lv = *levels as f64;
                Table::from_fn(table.rows, table.cols, |i, j| {
                    let y = table.get(i, j);
                    let s = 1.0 / (1.0 + (-y).exp());
                    let u = (s - lambda) / (1.0 - 2.0 * lambda);
                    (lv * u).floor().clamp(0.0, lv - 1.0)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ds(rows: usize, cols: usize, v: Vec<f64>, levels: Option<u32>) -> Dataset {
        Dataset {
            table: Table::new(rows, cols, v),
            image: None,
            levels,
        }
    }

    #[test]
    fn standardize_round_trip_and_jacobian() {
        let d = ds(3, 2, vec![1.0, 5.0, 2.0, 5.0, 3.0, 5.0], None);
        let p = Preprocess::fit(PreprocessKind::Auto, &d, None).unwrap();
        let Preprocess::Standardize { mean, std } = &p else {
            panic!()
        };
        assert_eq!(mean, &vec![2.0, 5.0]);
        assert_eq!(std[1], 1.0, "a constant column keeps unit scale");
        let t = p.apply(&d.table, 0, "x").unwrap();
        assert!((t.log_jacobian[0] + std[0].ln()).abs() < 1e-15);
        let back = p.invert(&t.table);
        for (a, b) in back.values.iter().zip(&d.table.values) {
            assert!((a - b).abs() < 1e-12);
        }
        assert_eq!(Preprocess::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn logit_dequantises_and_inverts() {
        let d = ds(2, 3, vec![0.0, 16.0, 7.0, 3.0, 0.0, 1.0], Some(17));
        let p = Preprocess::fit(PreprocessKind::Logit, &d, None).unwrap();
        assert_eq!(p.levels(), Some(17));
        let a = p.apply(&d.table, 5, "x").unwrap();
        let b = p.apply(&d.table, 5, "x").unwrap();
        assert_eq!(a.table, b.table, "seeded noise");
        assert_eq!(
            p.invert(&a.table),
            d.table,
            "floor undoes the dequantisation"
        );
        // Jacobian against a finite difference of the map pixel -> y for one entry.
        let (lv, lam) = (17.0f64, LOGIT_LAMBDA);
        let y = a.table.get(0, 1);
        let s = 1.0 / (1.0 + (-y).exp());
        let dy = (1.0 - 2.0 * lam) / (lv * s * (1.0 - s));
        let mut expect = 0.0;
        for j in 0..3 {
            let y = a.table.get(0, j);
            let s = 1.0 / (1.0 + (-y).exp());
            expect += ((1.0 - 2.0 * lam) / (lv * s * (1.0 - s))).ln();
        }
        assert!(dy > 0.0);
        assert!(
            (a.log_jacobian[0] - expect).abs() < 1e-9,
            "{} vs {expect}",
            a.log_jacobian[0]
        );
        let e = p
            .apply(&Table::new(1, 3, vec![0.0, 17.0, 1.0]), 0, "data.csv")
            .unwrap_err();
        assert!(e.to_string().contains("row 1, column 2"), "{e}");
        assert_eq!(Preprocess::from_json(&p.to_json()).unwrap(), p);
    }
}

//! The fitted model as users think of it: preprocessing + invertible network +
//! metadata, with the user's verbs in the data's units.
//!
//! `log_prob`, `mean_log_likelihood`, `forward` (latents), `inverse`, `sample`,
//! `bits_per_dim`: every verb takes rows in the data's own units (one sample per row,
//! `f64`), applies the recorded preprocessing, runs the network in its own precision and
//! adds the preprocessing's log-Jacobian, so log-densities are densities of the data as
//! given. For image data (the logit preprocessing) the pixels are dequantised with a
//! noise stream seeded from the model's training seed and the part of the data (see
//! [`crate::split::noise_seed`]): the verbs use [`Part::All`]; `*_part` variants choose.

use rand::Rng;
use relgrad_core::gaussian::Gaussian;
use relgrad_core::{Alone, Collective, Mat, MatRef};
use serde_json::Value;

use crate::across;
use crate::error::{agreed, Error, Result};
use crate::evaluation::{bits_per_dim, quantiles, Evaluation};
use crate::fit::Sharded;
use crate::network::{ModelBackend, Network};
use crate::preprocess::{check_finite, first_non_finite, Preprocess, Transformed};
use crate::split::{noise_seed, Part};

/// The most values (`rows x dim`) one call may produce or take at once (`2^31`, 16 GiB
/// of `f64`): larger requests are refused before anything is allocated.
pub const MAX_VALUES: usize = 1 << 31;

/// The most values (`n x dim`) one [`DensityModel::sample`] call may draw (`2^28`, 2 GiB
/// of `f64`): samples are new memory, not a view of the caller's.
pub const MAX_SAMPLE_VALUES: usize = 1 << 28;

/// The height and width of image data (rows are images flattened row by row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    /// Pixels per column.
    pub height: usize,
    /// Pixels per row.
    pub width: usize,
}

/// Log-densities of rows in both spaces.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// In the network's space (after preprocessing), nats.
    pub model_space: Vec<f64>,
    /// In the data's units, nats.
    pub data_units: Vec<f64>,
}

/// A fitted density model: what `relgrad train` writes and [`crate::fit()`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct DensityModel {
    /// The invertible network.
    pub network: Network,
    /// How data are mapped into the network's space.
    pub preprocess: Preprocess,
    /// The image shape, for image data.
    pub image: Option<ImageShape>,
    /// The training seed: the base of the dequantisation noise seeds.
    pub seed: u64,
    /// Quantiles of the training rows' log-densities in the data's units, as
    /// `(probability, log-density)` pairs (see [`DensityModel::threshold`]).
    pub train_quantiles: Option<Vec<(f64, f64)>>,
    /// Where the training data came from, how it was split, how many rows (free-form JSON
    /// owned by the program that trained the model).
    pub data: Value,
    /// The training settings and outcome (JSON).
    pub training: Value,
    /// Final metrics (JSON).
    pub metrics: Value,
}

fn check_size(rows: usize, cols: usize, what: &str) -> Result<()> {
    check_size_within(rows, cols, MAX_VALUES, what)
}

fn check_size_within(rows: usize, cols: usize, limit: usize, what: &str) -> Result<()> {
    if rows.checked_mul(cols).is_none_or(|v| v > limit) {
        return Err(Error::Config(format!(
            "{what}: {rows} rows of {cols} values exceed the limit of {limit} values per call; use fewer rows per call"
        )));
    }
    Ok(())
}

/// An error naming the first non-finite value of `values` (one per row).
fn check_finite_rows(values: &[f64], what: &str) -> Result<()> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFiniteResult(format!(
            "row {}: the {what} is {} although the row is finite: the model overflows there (its weights may be too large, or the row lies far outside the training data)",
            i + 1,
            values[i]
        )));
    }
    Ok(())
}

impl DensityModel {
    /// A model from a network and a preprocessing, with empty metadata.
    pub fn new(network: Network, preprocess: Preprocess) -> Result<Self> {
        preprocess.validate(network.dim())?;
        Ok(Self {
            network,
            preprocess,
            image: None,
            seed: 0,
            train_quantiles: None,
            data: Value::Null,
            training: Value::Null,
            metrics: Value::Null,
        })
    }

    /// The data's dimension (columns).
    pub fn dim(&self) -> usize {
        self.network.dim()
    }

    /// Maps rows in the data's units into the network's space with the noise of `part`,
    /// after checking the columns and that every value is finite.
    pub fn transform(&self, x: MatRef<'_, f64>, part: Part) -> Result<Transformed> {
        self.transform_from(x, part, 0)
    }

    /// [`DensityModel::transform`] of rows that follow `first_row` other rows of `part`
    /// (a process's shard: the noise continues the part's stream).
    fn transform_from(
        &self,
        x: MatRef<'_, f64>,
        part: Part,
        first_row: usize,
    ) -> Result<Transformed> {
        if x.cols() != self.dim() {
            return Err(Error::Columns {
                expected: self.dim(),
                found: x.cols(),
            });
        }
        check_finite(x)?;
        self.preprocess
            .apply_from(x, noise_seed(self.seed, part), first_row)
    }

    /// Log-densities of every row in both spaces, with the noise of `part`.
    pub fn scores<B: ModelBackend>(
        &self,
        backend: &B,
        x: MatRef<'_, f64>,
        part: Part,
    ) -> Result<Scores> {
        let t = self.transform(x, part)?;
        let model_space = self.network.log_prob(backend, t.x.as_ref())?;
        let data_units: Vec<f64> = model_space
            .iter()
            .zip(&t.log_jacobian)
            .map(|(a, b)| a + b)
            .collect();
        check_finite_rows(&data_units, "log-density")?;
        Ok(Scores {
            model_space,
            data_units,
        })
    }

    /// The exact log-density of every row, in the data's units (nats).
    pub fn log_prob<B: ModelBackend>(&self, backend: &B, x: MatRef<'_, f64>) -> Result<Vec<f64>> {
        self.log_prob_part(backend, x, Part::All)
    }

    /// [`DensityModel::log_prob`] with the dequantisation noise of `part`.
    pub fn log_prob_part<B: ModelBackend>(
        &self,
        backend: &B,
        x: MatRef<'_, f64>,
        part: Part,
    ) -> Result<Vec<f64>> {
        Ok(self.scores(backend, x, part)?.data_units)
    }

    /// The mean log-density of the rows, in the data's units (nats).
    pub fn mean_log_likelihood<B: ModelBackend>(
        &self,
        backend: &B,
        x: MatRef<'_, f64>,
    ) -> Result<f64> {
        if x.rows() == 0 {
            return Err(Error::Config("no rows to evaluate".into()));
        }
        let lp = self.log_prob(backend, x)?;
        Ok(lp.iter().sum::<f64>() / lp.len() as f64)
    }

    /// Bits per dimension of every row (image data only): `-ln p(pixels) / (D ln 2)`.
    pub fn bits_per_dim<B: ModelBackend>(
        &self,
        backend: &B,
        x: MatRef<'_, f64>,
    ) -> Result<Vec<f64>> {
        if self.preprocess.levels().is_none() {
            return Err(Error::Config(
                "bits per dimension are defined for image data (the logit preprocessing) only"
                    .into(),
            ));
        }
        let d = self.dim();
        Ok(self
            .log_prob(backend, x)?
            .into_iter()
            .map(|l| bits_per_dim(l, d))
            .collect())
    }

    /// The latents `z = f(preprocess(x))` of every row.
    pub fn forward<B: ModelBackend>(&self, backend: &B, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let t = self.transform(x, Part::All)?;
        let z = self.network.forward(backend, t.x.as_ref())?;
        if let Some((row, col)) = first_non_finite(&z) {
            return Err(Error::NonFiniteResult(format!(
                "row {row}: the latent of column {col} is not finite: the network overflows in {} on this row",
                self.network.precision().name()
            )));
        }
        Ok(z)
    }

    /// Maps latents back to the data's units: the network's inverse, then the
    /// preprocessing's (for image data, pixels rounded down to whole levels).
    pub fn inverse<B: ModelBackend>(&self, backend: &B, z: MatRef<'_, f64>) -> Result<Mat<f64>> {
        check_size(z.rows(), z.cols(), "inverse")?;
        check_finite(z)?;
        let y = self.network.inverse(backend, z)?;
        if let Some((row, col)) = first_non_finite(&y) {
            return Err(Error::NonFiniteResult(format!(
                "row {row}: the inverse is not finite (column {col}): the latents lie outside what the model can invert in {}",
                self.network.precision().name()
            )));
        }
        self.preprocess.invert(y.as_ref())
    }

    /// `n` exact samples in the data's units.
    pub fn sample<B: ModelBackend, R: Rng + ?Sized>(
        &self,
        backend: &B,
        n: usize,
        rng: &mut R,
    ) -> Result<Mat<f64>> {
        check_size_within(n, self.dim(), MAX_SAMPLE_VALUES, "sample")?;
        let y = self.network.sample(backend, n, rng)?;
        if let Some((row, col)) = first_non_finite(&y) {
            return Err(Error::NonFiniteResult(format!(
                "sample {row} (column {col}) is not finite: the model's inverse overflowed; it may be badly trained"
            )));
        }
        self.preprocess.invert(y.as_ref())
    }

    /// The best full-covariance Gaussian of the training rows (in the network's space,
    /// with the training part's noise): the reference every model should beat.
    pub fn reference_gaussian<B: ModelBackend>(
        &self,
        backend: &B,
        train: MatRef<'_, f64>,
    ) -> Result<Gaussian> {
        self.reference_gaussian_distributed(backend, Sharded::whole(train), &Alone)
    }

    /// [`DensityModel::reference_gaussian`] of the training rows of every process of
    /// `comm` (`train`: this process's), the same on every process.
    pub fn reference_gaussian_distributed<B: ModelBackend, C: Collective>(
        &self,
        backend: &B,
        train: Sharded<'_>,
        comm: &C,
    ) -> Result<Gaussian> {
        let t = agreed(
            comm,
            self.transform_from(train.x, Part::Train, train.shard.offset),
        )?;
        Ok(Gaussian::fit_across::<f64, B, C>(
            backend,
            t.x.as_ref(),
            comm,
        )?)
    }

    /// Log-likelihoods of `x` (the rows of `part`) in both spaces, bits per dimension for
    /// image data, and the reference Gaussian's, with where it was fitted.
    pub fn evaluate<B: ModelBackend>(
        &self,
        backend: &B,
        x: MatRef<'_, f64>,
        part: Part,
        gaussian: Option<(&Gaussian, &str)>,
    ) -> Result<Evaluation> {
        self.evaluate_distributed(backend, Sharded::whole(x), part, gaussian, &Alone)
    }

    /// [`DensityModel::evaluate`] of the rows of every process of `comm` (`x`: this
    /// process's rows of `part`); the same on every process. A process that fails (a
    /// bad value in its rows) makes every process return [`Error::Rank`].
    pub fn evaluate_distributed<B: ModelBackend, C: Collective>(
        &self,
        backend: &B,
        x: Sharded<'_>,
        part: Part,
        gaussian: Option<(&Gaussian, &str)>,
        comm: &C,
    ) -> Result<Evaluation> {
        if x.shard.total == 0 {
            return Err(Error::Config("no rows to evaluate".into()));
        }
        let t = agreed(comm, self.transform_from(x.x, part, x.shard.offset))?;
        Ok(agreed(comm, self.evaluate_across(backend, &t, gaussian, comm))?.0)
    }

    /// [`DensityModel::evaluate`] of rows already mapped into the network's space (this
    /// process's rows, summed across `comm`), with this process's per-row log-densities
    /// in the data's units. Call it on every process of the group, then agree on its
    /// result (see [`agreed`]).
    pub(crate) fn evaluate_across<B: ModelBackend, C: Collective>(
        &self,
        backend: &B,
        t: &Transformed,
        gaussian: Option<(&Gaussian, &str)>,
        comm: &C,
    ) -> Result<(Evaluation, Vec<f64>)> {
        let lp = self.network.log_prob(backend, t.x.as_ref());
        let lp = agreed(comm, lp)?;
        let lp_data: Vec<f64> = lp.iter().zip(&t.log_jacobian).map(|(a, b)| a + b).collect();
        agreed(comm, check_finite_rows(&lp_data, "log-density"))?;
        let d = self.dim();
        let bits = self.preprocess.levels().map(|_| {
            let b: Vec<f64> = lp_data.iter().map(|&l| bits_per_dim(l, d)).collect();
            across::mean_se(&b, comm)
        });
        let gaussian = match gaussian {
            Some((g, on)) => {
                let lg = agreed(comm, g.log_prob(t.x.as_ref()).map_err(Error::from))?;
                Some((across::mean_se(&lg, comm), on.to_string()))
            }
            None => None,
        };
        let ll = across::mean_se(&lp, comm);
        let ev = Evaluation {
            n: ll.n,
            d,
            ll,
            ll_data: across::mean_se(&lp_data, comm),
            bits_per_dim: bits,
            gaussian,
        };
        Ok((ev, lp_data))
    }

    /// Records the quantiles of the training rows' log-densities (data units, training
    /// noise), which [`DensityModel::threshold`] reads.
    pub fn record_train_quantiles<B: ModelBackend>(
        &mut self,
        backend: &B,
        train: MatRef<'_, f64>,
    ) -> Result<()> {
        let lp = self.log_prob_part(backend, train, Part::Train)?;
        self.train_quantiles = quantiles(&lp, &crate::evaluation::QUANTILE_LEVELS);
        Ok(())
    }

    /// The log-density below which a fraction `q` of the training rows score (linear
    /// interpolation between the recorded quantiles): rows scoring lower are anomalies at
    /// level `q`. `None` when the file records no quantiles or `q` is outside `[0, 1]`.
    pub fn threshold(&self, q: f64) -> Option<f64> {
        let qs = self.train_quantiles.as_ref()?;
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let k = qs.iter().position(|&(p, _)| p >= q)?;
        if k == 0 || qs[k].0 == q {
            return Some(qs[k].1);
        }
        let ((p0, v0), (p1, v1)) = (qs[k - 1], qs[k]);
        Some(v0 + (q - p0) / (p1 - p0) * (v1 - v0))
    }
}

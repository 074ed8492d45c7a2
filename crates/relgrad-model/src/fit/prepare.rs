//! Preparing a fit: the settings and data checked, the preprocessing fitted (or taken
//! from the start model or the checkpoint), the rows transformed; in one process or in
//! one process of a group ([`Sharded`] rows, see the [module docs](super)).

use relgrad_core::{Alone, Collective, MatRef, Shard};

use super::Fit;
use crate::checkpoint::AnyCheckpoint;
use crate::config::{FitConfig, Start, MAX_PARAMETERS};
use crate::error::{agreed, Error, Result};
use crate::fingerprint::Fingerprint;
use crate::network::{ModelBackend, Precision};
use crate::preprocess::{check_finite, Preprocess};
use crate::split::{noise_seed, Part};

/// The rows of a data set that one process holds in data-parallel training, and which
/// rows of the set they are.
#[derive(Clone, Copy, Debug)]
pub struct Sharded<'a> {
    /// This process's rows, in the data's units.
    pub x: MatRef<'a, f64>,
    /// Which rows of the set they are (`shard.len == x.rows()`).
    pub shard: Shard,
}

impl<'a> Sharded<'a> {
    /// All the rows of a set, held by one process.
    pub fn whole(x: MatRef<'a, f64>) -> Self {
        Self {
            x,
            shard: Shard::whole(x.rows()),
        }
    }

    fn check(&self, part: &str) -> Result<()> {
        let s = self.shard;
        if s.len != self.x.rows() || s.offset + s.len > s.total {
            return Err(Error::Config(format!(
                "the {part} rows: {} rows given as rows {}..{} of {}",
                self.x.rows(),
                s.offset,
                s.offset + s.len,
                s.total
            )));
        }
        Ok(())
    }
}

/// Checks a part of the data: columns, finite values, naming the part.
fn check_part(x: MatRef<'_, f64>, cols: usize, part: &str) -> Result<()> {
    if x.cols() != cols {
        return Err(Error::Config(format!(
            "the {part} rows have {} columns, the training rows {cols}",
            x.cols()
        )));
    }
    check_finite(x).map_err(|e| Error::Config(format!("the {part} rows: {e}")))
}

impl<B: ModelBackend + Clone> Fit<B> {
    /// Checks the settings and data and fits the preprocessing on `train` (or takes the
    /// start model's). Rows are samples in the data's units.
    pub fn new(
        backend: &B,
        config: FitConfig,
        train: MatRef<'_, f64>,
        val: Option<MatRef<'_, f64>>,
    ) -> Result<Self> {
        Fit::distributed(
            backend,
            config,
            Alone,
            Sharded::whole(train),
            val.map(Sharded::whole),
        )
    }

    /// Prepares to continue the run of `checkpoint` on the same data: its settings and
    /// preprocessing, up to `max_epochs` (default: the run's own). Different training
    /// rows (size or content) are refused (see [`Fit::resume_on_changed_data`]).
    pub fn resume(
        backend: &B,
        checkpoint: AnyCheckpoint,
        train: MatRef<'_, f64>,
        val: Option<MatRef<'_, f64>>,
        max_epochs: Option<usize>,
    ) -> Result<Self> {
        let (train, val) = (Sharded::whole(train), val.map(Sharded::whole));
        Fit::resume_distributed(backend, checkpoint, Alone, train, val, max_epochs, false)
    }

    /// Like [`Fit::resume`], but continues on `train` even when its rows differ from the
    /// ones the checkpoint was trained on (same number of columns): for a user who changed
    /// the data on purpose. The new rows' fingerprint replaces the old one.
    pub fn resume_on_changed_data(
        backend: &B,
        checkpoint: AnyCheckpoint,
        train: MatRef<'_, f64>,
        val: Option<MatRef<'_, f64>>,
        max_epochs: Option<usize>,
    ) -> Result<Self> {
        let (train, val) = (Sharded::whole(train), val.map(Sharded::whole));
        Fit::resume_distributed(backend, checkpoint, Alone, train, val, max_epochs, true)
    }
}

impl<B: ModelBackend + Clone, C: Collective> Fit<B, C> {
    /// [`Fit::new`] for one process of the group `comm` in data-parallel training:
    /// `train` and `val` are this process's rows of the sets (see the module docs).
    /// Every process of the group must call it with the same settings.
    pub fn distributed(
        backend: &B,
        config: FitConfig,
        comm: C,
        train: Sharded<'_>,
        val: Option<Sharded<'_>>,
    ) -> Result<Self> {
        config.validate()?;
        train.check("training")?;
        if let Some(v) = &val {
            v.check("validation")?;
        }
        let d = train.x.cols();
        let n = train.shard.total;
        if n < 2 || d == 0 {
            return Err(Error::Config(format!(
                "training needs at least 2 rows of at least 1 column, got {n} x {d}"
            )));
        }
        let params = d
            .checked_mul(d + 1)
            .and_then(|p| p.checked_mul(config.n_layers));
        if params.is_none_or(|p| p > MAX_PARAMETERS) {
            return Err(Error::Config(format!(
                "{} layers of {d} x {d} is more than {MAX_PARAMETERS} parameters, the limit of a fit; use fewer layers or fewer columns",
                config.n_layers
            )));
        }
        let checked = check_part(train.x, d, "training")
            .and_then(|()| val.map_or(Ok(()), |v| check_part(v.x, d, "validation")));
        agreed(&comm, checked)?;
        if matches!(config.start, Start::Data { .. }) && n <= d {
            return Err(Error::Config(format!(
                "{n} training rows for {d} columns: the data-dependent start fits a full covariance, which needs more rows than columns (about 2 D or more to be useful); use more rows, fewer columns, or another start"
            )));
        }
        let preprocess = match &config.start {
            Start::Model(m) => {
                if m.dim() != d {
                    return Err(Error::Config(format!(
                        "the start model has dimension {}, the training rows have {d} columns",
                        m.dim()
                    )));
                }
                m.preprocess.clone()
            }
            _ => Preprocess::fit_across(config.preprocess, train.x, config.levels, &comm)?,
        };
        Self::with_preprocess(backend, config, comm, preprocess, train, val)
    }

    fn with_preprocess(
        backend: &B,
        config: FitConfig,
        comm: C,
        preprocess: Preprocess,
        train: Sharded<'_>,
        val: Option<Sharded<'_>>,
    ) -> Result<Self> {
        let seed = config.seed;
        let apply = |x: Sharded<'_>, part: Part, name: &str| {
            preprocess
                .apply_from(x.x, noise_seed(seed, part), x.shard.offset)
                .map_err(|e| Error::Config(format!("the {name} rows: {e}")))
        };
        let transformed = apply(train, Part::Train, "training").and_then(|t| {
            let v = val.map(|v| apply(v, Part::Val, "validation")).transpose()?;
            Ok((t, v))
        });
        let (t, v) = agreed(&comm, transformed)?;
        Ok(Self {
            backend: backend.clone(),
            fingerprint: Fingerprint::across(train.x, train.shard.offset, &comm),
            preprocess,
            train: t,
            train_shard: train.shard,
            val: v.zip(val.map(|v| v.shard)),
            config,
            comm,
            resume: None,
        })
    }

    /// [`Fit::resume`] (or, with `allow_changed_data`, [`Fit::resume_on_changed_data`])
    /// for one process of the group `comm`: `train` and `val` are this process's rows.
    /// Every process reads the same checkpoint; the group may differ in size from the
    /// one that wrote it.
    pub fn resume_distributed(
        backend: &B,
        checkpoint: AnyCheckpoint,
        comm: C,
        train: Sharded<'_>,
        val: Option<Sharded<'_>>,
        max_epochs: Option<usize>,
        allow_changed_data: bool,
    ) -> Result<Self> {
        train.check("training")?;
        if let Some(v) = &val {
            v.check("validation")?;
        }
        let run = checkpoint.run().clone();
        let mut config = FitConfig::from_json(&run)?;
        if let Some(e) = max_epochs {
            config.max_epochs = e;
        }
        config.run_info = run.clone();
        let preprocess = Preprocess::from_json(&run["preprocess"])?;
        let d = train.x.cols();
        preprocess.validate(d)?;
        config.precision = match &checkpoint {
            AnyCheckpoint::F32(_) => Precision::F32,
            AnyCheckpoint::F64(_) => Precision::F64,
        };
        let fp = Fingerprint::across(train.x, train.shard.offset, &comm);
        let changed = !run["data_fingerprint"].is_null() && !fp.matches(&run["data_fingerprint"]);
        if changed && !allow_changed_data {
            return Err(Error::Config(format!(
                "the training rows differ from the ones the checkpoint was trained on (now {} x {}, fingerprint {}; the checkpoint records {}): resuming would train on other data; if that is intended, allow it (the CLI's --allow-changed-data)",
                fp.rows, fp.cols, fp.display_hash(), run["data_fingerprint"]
            )));
        }
        let checked = check_part(train.x, d, "training")
            .and_then(|()| val.map_or(Ok(()), |v| check_part(v.x, d, "validation")));
        agreed(&comm, checked)?;
        let mut fit = Self::with_preprocess(backend, config, comm, preprocess, train, val)?;
        fit.resume = Some(checkpoint);
        Ok(fit)
    }
}

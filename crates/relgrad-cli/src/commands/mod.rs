//! One module per subcommand, and what they share: finding and loading a model, rebuilding
//! the data a model was trained on, and evaluating log-likelihoods in the model's space
//! and in the data's units.

pub mod bench;
pub mod datasets;
pub mod eval;
pub mod sample;
pub mod score;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use relgrad::gaussian::Gaussian;
use relgrad::{Backend, InvertibleMlp, Scalar, Threads};

use crate::cli::{Command, Parsed};
use crate::data::{split, Part, Source, SplitSpec, Splits, Table};
use crate::model_file::{AnyModel, ModelFile};
use crate::preprocess::{noise_seed, Preprocess, Transformed};
use crate::util::MeanSe;

/// Runs a parsed command.
pub fn dispatch(parsed: Parsed) -> Result<()> {
    match parsed.command {
        Command::Train(a) => train::run(a, &parsed.explicit),
        Command::Eval(a) => eval::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Score(a) => score::run(a),
        Command::Datasets(a) => datasets::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// The backend every command but `bench` computes with.
pub fn backend(threads: Threads) -> relgrad::DefaultBackend {
    relgrad::DefaultBackend::new(threads)
}

/// A model path: a file, or a run directory holding `model.safetensors`.
pub fn model_path(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.join("model.safetensors")
    } else {
        p.to_path_buf()
    }
}

/// Loads a model file (or a run directory's model).
pub fn load_model(p: &Path) -> Result<(PathBuf, ModelFile)> {
    let path = model_path(p);
    if !path.exists() {
        bail!("{}: no such model file", path.display());
    }
    let mf = ModelFile::load(&path)?;
    Ok((path, mf))
}

/// The data a model was trained on, as recorded in its file.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Where the data came from.
    pub source: Source,
    /// How it was split.
    pub split: SplitSpec,
    /// The training seed (also the dequantisation noise seed of the training run).
    pub seed: u64,
}

impl Recorded {
    /// Reads the provenance from a model file's metadata.
    pub fn from_model(mf: &ModelFile) -> Result<Self> {
        let source =
            Source::from_json(&mf.data["source"]).context("the model file's data provenance")?;
        let split = SplitSpec::from_json(&mf.data["split"]).context("the model file's split")?;
        let seed = mf.training["seed"].as_u64().unwrap_or(split.seed);
        Ok(Self {
            source,
            split,
            seed,
        })
    }

    /// Rebuilds the training, validation and test rows.
    pub fn splits(&self) -> Result<Splits> {
        let loaded = self.source.load().with_context(|| {
            format!(
                "loading the model's training data {}",
                self.source.describe()
            )
        })?;
        split(loaded, &self.split)
    }
}

/// Rows chosen for `eval` or `score`.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The rows, in the data's units.
    pub table: Table,
    /// A description for messages: `"digits (built-in), test split"`.
    pub what: String,
    /// The part of the data (selects the dequantisation noise seed).
    pub part: Part,
    /// The model's recorded data, when it could be rebuilt.
    pub recorded: Option<Recorded>,
}

/// Chooses the rows to evaluate: `data` (a data argument, all rows by default) or the
/// model's own data (its test split by default); `part` picks a part of the model's split.
/// A generator draws `n` rows (default: the model's own count for the same generator,
/// else 2000) from `seed` (default: the model's training seed).
pub fn select_rows(
    mf: &ModelFile,
    data: Option<&str>,
    part: Option<Part>,
    n: Option<usize>,
    seed: Option<u64>,
) -> Result<Selected> {
    let recorded = Recorded::from_model(mf).ok();
    let n = n.unwrap_or_else(|| match (&recorded, data) {
        (
            Some(Recorded {
                source: Source::Generator { name, n, .. },
                ..
            }),
            Some(spec),
        ) if name == spec => *n,
        _ => 2000,
    });
    let seed_for_data = seed.or(recorded.as_ref().map(|r| r.seed)).unwrap_or(0);
    match data {
        None => {
            let rec = recorded.clone().ok_or_else(|| {
                anyhow!("the model file does not say which data it was trained on: pass --data")
            })?;
            let part = part.unwrap_or(Part::Test);
            let what = format!("{}, {} split", rec.source.describe(), part.name());
            let table = if part == Part::All {
                rec.source.load()?.main.table
            } else {
                let s = rec.splits()?;
                s.part(part).cloned().ok_or_else(|| {
                    anyhow!(
                        "the model was trained without a {} split: pass --data or another --split",
                        part.name()
                    )
                })?
            };
            Ok(Selected {
                table,
                what,
                part,
                recorded: Some(rec),
            })
        }
        Some(spec) => {
            let source = Source::parse(spec, n, seed_for_data)?;
            let part = part.unwrap_or(Part::All);
            let loaded = source.load()?;
            let table = if part == Part::All {
                loaded.main.table
            } else {
                let rec = recorded.as_ref().ok_or_else(|| {
                    anyhow!("the model file has no split to apply: use --split all")
                })?;
                let s = split(loaded, &rec.split)?;
                s.part(part)
                    .cloned()
                    .ok_or_else(|| anyhow!("the model's split has no {} part", part.name()))?
            };
            let what = if part == Part::All {
                source.describe()
            } else {
                format!("{}, {} split", source.describe(), part.name())
            };
            Ok(Selected {
                table,
                what,
                part,
                recorded,
            })
        }
    }
}

/// Checks that data of `cols` columns fits a model of dimension `dim`.
pub fn check_dims(cols: usize, dim: usize, what: &str, model: &Path) -> Result<()> {
    ensure!(
        cols == dim,
        "dimension mismatch: the data ({what}) has {cols} columns, but the model {} has dimension {dim}",
        model.display()
    );
    Ok(())
}

/// The exact log-density of every row of `x` (model space), in the model's precision.
pub fn log_prob_rows<T: Scalar>(
    model: &InvertibleMlp<T>,
    threads: Threads,
    x: &Table,
) -> Result<Vec<f64>>
where
    relgrad::DefaultBackend: Backend<T>,
{
    let xm = x.to_mat::<T>();
    let lp = model
        .log_prob(&backend(threads), xm.as_ref())
        .map_err(|e| anyhow!("evaluating the model: {e}"))?;
    Ok(lp.into_iter().map(|v| v.to_f64c()).collect())
}

/// [`log_prob_rows`] for a model of either precision.
pub fn log_prob_any(model: &AnyModel, threads: Threads, x: &Table) -> Result<Vec<f64>> {
    match model {
        AnyModel::F32(m) => log_prob_rows(m, threads, x),
        AnyModel::F64(m) => log_prob_rows(m, threads, x),
    }
}

/// Fits the reference Gaussian to rows in model space (always in `f64`).
pub fn fit_gaussian(x: &Table, threads: Threads) -> Result<Gaussian> {
    let m = x.to_mat::<f64>();
    Gaussian::fit(&backend(threads), m.as_ref())
        .map_err(|e| anyhow!("fitting the reference Gaussian: {e}"))
}

/// Log-likelihoods of a set of rows, in the model's space and the data's units.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// Rows.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// Mean log-likelihood in model space (after preprocessing).
    pub ll: MeanSe,
    /// Mean log-likelihood in the data's units (pixel units for image data).
    pub ll_data: MeanSe,
    /// Bits per dimension (image data only).
    pub bits_per_dim: Option<MeanSe>,
    /// The reference Gaussian's mean log-likelihood (model space) and where it was fitted.
    pub gaussian: Option<(MeanSe, &'static str)>,
}

impl Evaluation {
    /// Evaluates `model` on rows already mapped into model space.
    pub fn compute(
        model: &AnyModel,
        pre: &Preprocess,
        x: &Transformed,
        gaussian: Option<(&Gaussian, &'static str)>,
        threads: Threads,
    ) -> Result<Self> {
        let lp = log_prob_any(model, threads, &x.table)?;
        let lp_data: Vec<f64> = lp.iter().zip(&x.log_jacobian).map(|(a, b)| a + b).collect();
        let d = x.table.cols;
        let bits_per_dim = pre.levels().map(|_| {
            let b: Vec<f64> = lp_data
                .iter()
                .map(|l| -l / (d as f64 * std::f64::consts::LN_2))
                .collect();
            MeanSe::of(&b)
        });
        let gaussian = match gaussian {
            Some((g, fitted_on)) => {
                let xm = x.table.to_mat::<f64>();
                let gl = g
                    .log_prob(xm.as_ref())
                    .map_err(|e| anyhow!("evaluating the reference Gaussian: {e}"))?;
                Some((MeanSe::of(&gl), fitted_on))
            }
            None => None,
        };
        Ok(Self {
            n: x.table.rows,
            d,
            ll: MeanSe::of(&lp),
            ll_data: MeanSe::of(&lp_data),
            bits_per_dim,
            gaussian,
        })
    }

    /// The metrics as JSON fields (`ll_mean`, `ll_2se`, ...).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
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
        if let Some((g, on)) = self.gaussian {
            v["gaussian_ll_mean"] = g.mean.into();
            v["gaussian_ll_2se"] = g.two_se.into();
            v["gaussian_fitted_on"] = on.into();
        }
        v
    }
}

/// Maps `table` into model space with the noise seed of `part`.
pub fn transform(
    pre: &Preprocess,
    table: &Table,
    seed: u64,
    part: Part,
    what: &str,
) -> Result<Transformed> {
    pre.apply(table, noise_seed(seed, part), what)
}

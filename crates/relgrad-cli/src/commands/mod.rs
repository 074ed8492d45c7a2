//! One module per subcommand, and what they share: finding and loading a model and
//! rebuilding the data a model was trained on. Evaluating, scoring and sampling are the
//! library's verbs (`relgrad::model::DensityModel`).

pub mod bench;
pub mod bench_scaling;
pub mod datasets;
pub mod eval;
pub mod sample;
pub mod score;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use relgrad::model::DensityModel;
use relgrad::Threads;

use crate::cli::{Command, Parsed};
use crate::data::{split, Part, Source, SplitSpec, Splits, Table};

/// Runs a parsed command.
pub fn dispatch(parsed: Parsed) -> Result<()> {
    match parsed.command {
        Command::Train(a) => train::run(a, &parsed.explicit),
        Command::Eval(a) => eval::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Score(a) => score::run(a),
        Command::Datasets(a) => datasets::run(a),
        Command::Bench(mut a) => match a.mode.take() {
            Some(crate::cli::BenchMode::Scaling(s)) => bench_scaling::run(s),
            None => bench::run(a),
        },
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
pub fn load_model(p: &Path) -> Result<(PathBuf, DensityModel)> {
    let path = model_path(p);
    if !path.exists() {
        bail!("{}: no such model file", path.display());
    }
    let mf = DensityModel::load(&path).map_err(|e| match e {
        relgrad::model::Error::InvalidFile { what, .. } => anyhow!(
            "{} is not a readable relgrad model file: {what}",
            path.display()
        ),
        e => e.into(),
    })?;
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
    pub fn from_model(mf: &DensityModel) -> Result<Self> {
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
    mf: &DensityModel,
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

/// A base density other than the standard normal, for the lines that describe a model:
/// `laplace base`, `a mixture base of 3 logistics per coordinate`; `None` for the normal.
pub fn describe_base(base: relgrad::BaseDensity) -> Option<String> {
    match (base, base.components()) {
        (relgrad::BaseDensity::Normal, _) => None,
        (_, Some(k)) => Some(format!(
            "a mixture base of {k} logistic{} per coordinate",
            if k == 1 { "" } else { "s" }
        )),
        (b, None) => Some(format!("{} base", b.name())),
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

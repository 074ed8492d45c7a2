//! How a data set is split into training, validation and test rows (the seeded row
//! permutation itself is the library's, `relgrad::model::split`), and which part of the
//! data a command works on.

use anyhow::{anyhow, ensure, Context, Result};
use relgrad::model::split::{holdout_rows, split_rows, SplitIndices};
use serde_json::{json, Value};

use super::{Dataset, Loaded, Source, Table};

/// How a data set is split into training, validation and test rows.
#[derive(Clone, Debug, PartialEq)]
pub struct SplitSpec {
    /// Seed of the random permutation.
    pub seed: u64,
    /// Fraction of rows held out for validation (when no validation file is given).
    pub val_fraction: f64,
    /// Fraction of rows held out for testing (when no test file is given).
    pub test_fraction: f64,
    /// A separate validation file.
    pub val: Option<Source>,
    /// A separate test file.
    pub test: Option<Source>,
}

impl SplitSpec {
    /// The JSON recorded in model files.
    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "val": self.val.as_ref().map(Source::to_json),
            "test": self.test.as_ref().map(Source::to_json),
        })
    }

    /// Reads [`SplitSpec::to_json`]'s output back.
    pub fn from_json(v: &Value) -> Result<Self> {
        let opt = |k: &str| -> Result<Option<Source>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => Source::from_json(x).map(Some),
            }
        };
        Ok(Self {
            seed: v["seed"]
                .as_u64()
                .ok_or_else(|| anyhow!("split without seed"))?,
            val_fraction: v["val_fraction"].as_f64().unwrap_or(0.0),
            test_fraction: v["test_fraction"].as_f64().unwrap_or(0.0),
            val: opt("val")?,
            test: opt("test")?,
        })
    }
}

/// The three parts of a data set.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training rows (with the data set's image shape and levels).
    pub train: Dataset,
    /// Validation rows, if any.
    pub val: Option<Table>,
    /// Test rows, if any.
    pub test: Option<Table>,
    /// Where the test rows came from: `"fraction"`, `"file"`, `"t10k"` or `"test_batch"`.
    pub test_origin: &'static str,
}

/// Which part of the data a command works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The training rows.
    Train,
    /// The validation rows.
    Val,
    /// The test rows.
    Test,
    /// Every row of the data, unsplit.
    All,
}

impl From<Part> for relgrad::model::Part {
    fn from(p: Part) -> Self {
        match p {
            Part::Train => Self::Train,
            Part::Val => Self::Val,
            Part::Test => Self::Test,
            Part::All => Self::All,
        }
    }
}

impl Part {
    /// `"train"`, `"val"`, `"test"` or `"all"`.
    pub fn name(&self) -> &'static str {
        relgrad::model::Part::from(*self).name()
    }
}

fn load_extra(src: &Source, cols: usize, what: &str) -> Result<Table> {
    let t = src
        .load()
        .with_context(|| format!("loading the {what} data"))?
        .main
        .table;
    ensure!(
        t.cols == cols,
        "the {what} data {} has {} columns, but the training data has {cols}",
        src.describe(),
        t.cols
    );
    t.check_finite(&format!("the {what} data ({})", src.describe()))?;
    Ok(t)
}

/// Splits a loaded data set as `spec` says. Rows are assigned by a seeded permutation
/// (test first, then validation, the rest for training) and keep their original order
/// within each part. A test or validation set that comes with the data (an IDX
/// directory's `t10k` images, CIFAR-10's test batch, a prepared directory's files) is
/// used unless `spec` names a file for that part.
pub fn split(loaded: Loaded, spec: &SplitSpec) -> Result<Splits> {
    relgrad::model::split::check_fraction("--val-fraction", spec.val_fraction)?;
    relgrad::model::split::check_fraction("--test-fraction", spec.test_fraction)?;
    let Loaded {
        main,
        val: bundled_val,
        test: bundled,
        test_origin,
    } = loaded;
    let n = main.table.rows;
    let cols = main.table.cols;
    let (test_from_rows, test, origin) = match (&spec.test, bundled) {
        (Some(src), _) => (0, Some(load_extra(src, cols, "test")?), "file"),
        (None, Some(t)) => {
            ensure!(
                t.table.cols == cols,
                "the bundled test images have {} columns, the training images {cols}",
                t.table.cols
            );
            (0, Some(t.table), test_origin)
        }
        (None, None) => (holdout_rows(n, spec.test_fraction), None, "fraction"),
    };
    let (val_from_rows, val) = match (&spec.val, bundled_val) {
        (Some(src), _) => (0, Some(load_extra(src, cols, "validation")?)),
        (None, Some(v)) => {
            ensure!(
                v.table.cols == cols,
                "the bundled validation rows have {} columns, the training rows {cols}",
                v.table.cols
            );
            (0, Some(v.table))
        }
        (None, None) => (holdout_rows(n, spec.val_fraction), None),
    };
    let SplitIndices {
        train: tr,
        val: va,
        test: te,
    } = split_rows(n, val_from_rows, test_from_rows, spec.seed)?;
    let test = test.or_else(|| (!te.is_empty()).then(|| main.table.select(&te)));
    let val = val.or_else(|| (!va.is_empty()).then(|| main.table.select(&va)));
    let train = Dataset {
        table: main.table.select(&tr),
        image: main.image,
        levels: main.levels,
    };
    Ok(Splits {
        train,
        val,
        test,
        test_origin: origin,
    })
}

impl Splits {
    /// The requested part (`All` is not stored here; see [`split`]).
    pub fn part(&self, part: Part) -> Option<&Table> {
        match part {
            Part::Train => Some(&self.train.table),
            Part::Val => self.val.as_ref(),
            Part::Test => self.test.as_ref(),
            Part::All => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_split_sizes() {
        let loaded = Source::Digits.load().unwrap();
        let spec = SplitSpec {
            seed: 0,
            val_fraction: 0.1,
            test_fraction: 0.1,
            val: None,
            test: None,
        };
        let s = split(loaded, &spec).unwrap();
        assert_eq!(s.train.table.rows, 1437);
        assert_eq!(s.val.as_ref().unwrap().rows, 180);
        assert_eq!(s.test.as_ref().unwrap().rows, 180);
    }

    #[test]
    fn zero_fractions_keep_everything() {
        let loaded = Source::Digits.load().unwrap();
        let spec = SplitSpec {
            seed: 1,
            val_fraction: 0.0,
            test_fraction: 0.0,
            val: None,
            test: None,
        };
        let s = split(loaded.clone(), &spec).unwrap();
        assert_eq!(s.train.table, loaded.main.table);
        assert!(s.val.is_none() && s.test.is_none());
    }
}

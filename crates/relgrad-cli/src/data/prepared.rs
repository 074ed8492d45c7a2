//! A directory of prepared splits, as `python -m relgrad.datasets prepare NAME SRC OUT`
//! writes them: `train.npy`, and optionally `val.npy` and `test.npy`.
//!
//! `--data DIR` is then `--data DIR/train.npy --val DIR/val.npy --test DIR/test.npy`:
//! the parts come from the files, not from a random split. A part whose file is absent
//! is held out of `train.npy` by `--val-fraction` or `--test-fraction`, as for any file,
//! and an explicit `--val` or `--test` replaces the directory's file. The model file
//! records the directory (`{"kind": "prepared", "path": DIR}`), so `eval` and `score`
//! rebuild the same parts. Each file is read as any `.npy` file is (`uint8` arrays keep
//! 256 levels, and `n x h x w` or `n x h x w x c` / `n x c x h x w` arrays an image
//! shape, [`super::images`]); the parts must have the same number of columns.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};

use super::{load_file, Dataset, Loaded};

/// The training file of a prepared directory.
pub const TRAIN: &str = "train.npy";
/// The validation file (optional).
pub const VAL: &str = "val.npy";
/// The test file (optional).
pub const TEST: &str = "test.npy";
/// What the model records as the test set's origin.
pub const TEST_ORIGIN: &str = "file";

/// Whether `dir` is a directory of prepared splits (it holds `train.npy`).
pub fn recognises(dir: &Path) -> bool {
    dir.is_dir() && dir.join(TRAIN).is_file()
}

/// The files of a prepared directory: `(train, val, test)`, the last two when present.
pub fn files(dir: &Path) -> (PathBuf, Option<PathBuf>, Option<PathBuf>) {
    let opt = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
    (dir.join(TRAIN), opt(VAL), opt(TEST))
}

/// `DIR (prepared: train.npy, val.npy, test.npy)`, naming the files that are there.
pub fn describe(dir: &Path) -> String {
    let (_, val, test) = files(dir);
    let mut names = vec![TRAIN];
    names.extend(val.map(|_| VAL));
    names.extend(test.map(|_| TEST));
    format!("{} (prepared: {})", dir.display(), names.join(", "))
}

/// Loads a prepared directory: `train.npy` as the data, `val.npy` and `test.npy` as the
/// bundled validation and test sets.
pub fn load(dir: &Path) -> Result<Loaded> {
    let (train, val, test) = files(dir);
    ensure!(
        train.is_file(),
        "{}: no {TRAIN} (a prepared directory holds train.npy, and optionally val.npy and test.npy, as `python -m relgrad.datasets prepare` writes them)",
        dir.display()
    );
    let main = load_file(&train)?;
    let part = |p: Option<PathBuf>| -> Result<Option<Dataset>> {
        let Some(p) = p else { return Ok(None) };
        let d = load_file(&p)?;
        ensure!(
            d.table.cols == main.table.cols,
            "{}: {} columns, but {} has {}",
            p.display(),
            d.table.cols,
            train.display(),
            main.table.cols
        );
        d.table.check_finite(&p.display().to_string())?;
        Ok(Some(d))
    };
    let val = part(val)?;
    let test = part(test)?;
    Ok(Loaded {
        main,
        val,
        test,
        test_origin: TEST_ORIGIN,
    })
}

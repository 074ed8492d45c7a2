//! Seeded splits of a data set's rows, the parts of the data, and the seed of each
//! part's dequantisation noise: the same rows and the same noise wherever a model is
//! trained (the CLI, Python, a user's program).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{Error, Result};

/// A part of the data. Each part gets its own dequantisation-noise stream (see
/// [`noise_seed`]), so evaluating the same rows twice gives the same numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The training rows.
    Train,
    /// The validation rows.
    Val,
    /// The test rows.
    Test,
    /// Any other rows (a whole data set, new data to score).
    All,
}

impl Part {
    /// `"train"`, `"val"`, `"test"` or `"all"`.
    pub fn name(&self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
            Part::All => "all",
        }
    }
}

/// The seed of the dequantisation noise of one part of the data, from the run's seed.
pub fn noise_seed(seed: u64, part: Part) -> u64 {
    let k: u64 = match part {
        Part::Train => 1,
        Part::Val => 2,
        Part::Test => 3,
        Part::All => 4,
    };
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (0xD1CE_0000_0000_0000 | k)
}

/// The number of rows a fraction of `n` rows holds out (rounded to nearest).
pub fn holdout_rows(n: usize, fraction: f64) -> usize {
    (n as f64 * fraction).round() as usize
}

/// Row indices of the training, validation and test parts, each in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitIndices {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub val: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

/// Splits `n` rows: a seeded permutation gives the first `n_test` rows to the test part,
/// the next `n_val` to validation and the rest to training; every part keeps the rows'
/// original order. At least two training rows must remain.
pub fn split_rows(n: usize, n_val: usize, n_test: usize, seed: u64) -> Result<SplitIndices> {
    if n_test.saturating_add(n_val).saturating_add(2) > n {
        return Err(Error::Config(format!(
            "the data has {n} rows: too few to hold out {n_test} test and {n_val} validation rows and train on at least 2"
        )));
    }
    let mut perm: Vec<usize> = (0..n).collect();
    if n_test + n_val > 0 {
        perm.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5EED_5B17_0000_0001));
    }
    let sorted = |s: &[usize]| {
        let mut v = s.to_vec();
        v.sort_unstable();
        v
    };
    Ok(SplitIndices {
        test: sorted(&perm[..n_test]),
        val: sorted(&perm[n_test..n_test + n_val]),
        train: sorted(&perm[n_test + n_val..]),
    })
}

/// Checks that a held-out fraction is in `[0, 1)`; `name` is the setting's name.
pub fn check_fraction(name: &str, f: f64) -> Result<()> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(Error::Config(format!("{name} must be in [0, 1), got {f}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_disjoint_sorted_and_cover_every_row() {
        let s = split_rows(100, 10, 20, 7).unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (70, 10, 20));
        let mut all: Vec<usize> = [&s.train[..], &s.val[..], &s.test[..]].concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert!(s.train.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s, split_rows(100, 10, 20, 7).unwrap(), "seeded");
        assert_ne!(s.test, split_rows(100, 10, 20, 8).unwrap().test);
    }

    #[test]
    fn too_few_rows_is_an_error() {
        let e = split_rows(5, 2, 2, 0).unwrap_err();
        assert!(e.to_string().contains("too few"), "{e}");
        assert_eq!(split_rows(3, 0, 0, 0).unwrap().train, vec![0, 1, 2]);
    }
}

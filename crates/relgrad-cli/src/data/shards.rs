//! One process's rows of a split data set, for data-parallel training (`relgrad train
//! --distributed`): every process draws the same seeded split (the library's
//! `split_rows`), takes an even, contiguous share of each part's rows, and reads only
//! those. An uncompressed C-order `.npy` file is read by offset; other sources (CSV,
//! IDX, compressed files, the built-in sets) are read whole by every process, which then
//! keeps its rows.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use relgrad::model::split::{holdout_rows, split_rows};
use relgrad::Shard;

use super::{cifar, images, npy, prepared, Dataset, ImageShape, Source, Table};
use super::{SplitSpec, Splits};

/// This process's rows of every part, and which rows of the part they are.
#[derive(Clone, Debug)]
pub struct ShardedSplits {
    /// This process's training rows (with the data set's image shape and levels).
    pub train: Dataset,
    /// Which training rows they are.
    pub train_shard: Shard,
    /// This process's validation rows, if there is a validation part.
    pub val: Option<(Table, Shard)>,
    /// This process's test rows, if there is a test part.
    pub test: Option<(Table, Shard)>,
    /// Where the test rows came from: `"fraction"`, `"file"`, `"t10k"` or `"test_batch"`.
    pub test_origin: &'static str,
}

impl ShardedSplits {
    /// All the rows of a split, held by one process.
    pub fn whole(s: Splits) -> Self {
        let whole = |t: Table| {
            let sh = Shard::whole(t.rows);
            (t, sh)
        };
        Self {
            train_shard: Shard::whole(s.train.table.rows),
            train: s.train,
            val: s.val.map(whole),
            test: s.test.map(whole),
            test_origin: s.test_origin,
        }
    }

    /// The number of rows of the training, validation and test parts (of every process).
    pub fn totals(&self) -> (usize, usize, usize) {
        let total = |p: &Option<(Table, Shard)>| p.as_ref().map_or(0, |p| p.1.total);
        (self.train_shard.total, total(&self.val), total(&self.test))
    }

    /// Checks every part for non-finite values (numbering rows as the file does).
    pub fn check_finite(&self, desc: &str) -> Result<()> {
        self.train.table.check_finite(desc)?;
        for (t, what) in [(&self.val, "validation"), (&self.test, "test")] {
            if let Some((t, _)) = t {
                t.check_finite(&format!("the {what} rows of {desc}"))?;
            }
        }
        Ok(())
    }
}

/// Where a set's rows are read from.
enum Rows {
    /// An uncompressed C-order `.npy` file, read by offset.
    Npy {
        path: PathBuf,
        header: npy::NpyHeader,
    },
    /// Rows already in memory.
    Loaded(Dataset),
}

impl Rows {
    /// A data file: by offset if it is a C-order `.npy` file, else read whole.
    fn file(path: &Path) -> Result<Self> {
        let is_npy = std::fs::File::open(path)
            .and_then(|mut f| {
                use std::io::Read;
                let mut m = [0u8; 6];
                f.read(&mut m).map(|n| n == 6 && &m == b"\x93NUMPY")
            })
            .unwrap_or(false);
        if is_npy {
            let header = npy::read_header(path)?;
            if !(header.fortran && header.shape.len() > 1) {
                ensure!(
                    header.rows() == 0 || header.cols() > 0,
                    "{}: the array has shape {:?}: no columns",
                    path.display(),
                    header.shape
                );
                return Ok(Rows::Npy {
                    path: path.to_path_buf(),
                    header,
                });
            }
        }
        Ok(Rows::Loaded(super::load_file(path)?))
    }

    /// The main rows of a source, and the validation and test rows that come with it
    /// (an IDX directory's `t10k`, CIFAR-10's test batch, a prepared directory's files).
    fn source(src: &Source) -> Result<Bundle> {
        match src {
            Source::Path(p) if p.is_file() && !cifar::recognises(p) => Ok(Bundle {
                main: Rows::file(p)?,
                val: None,
                test: None,
                test_origin: "t10k",
            }),
            Source::Prepared(dir) => {
                let (train, val, test) = prepared::files(dir);
                Ok(Bundle {
                    main: Rows::file(&train)?,
                    val: val.as_deref().map(Rows::file).transpose()?,
                    test: test.as_deref().map(Rows::file).transpose()?,
                    test_origin: prepared::TEST_ORIGIN,
                })
            }
            _ => {
                let loaded = src.load()?;
                Ok(Bundle {
                    main: Rows::Loaded(loaded.main),
                    val: loaded.val.map(Rows::Loaded),
                    test: loaded.test.map(Rows::Loaded),
                    test_origin: loaded.test_origin,
                })
            }
        }
    }

    fn rows(&self) -> usize {
        match self {
            Rows::Npy { header, .. } => header.rows(),
            Rows::Loaded(d) => d.table.rows,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Rows::Npy { header, .. } => header.cols(),
            Rows::Loaded(d) => d.table.cols,
        }
    }

    /// The image shape and quantisation levels, as [`super::load_file`] finds them.
    fn image_and_levels(&self) -> (Option<ImageShape>, Option<u32>) {
        match self {
            Rows::Npy { header, .. } => (
                images::image_of_shape(&header.shape),
                header.descr.ends_with("u1").then_some(256),
            ),
            Rows::Loaded(d) => (d.image, d.levels),
        }
    }

    /// The rows `indices` (increasing), remembering their file rows.
    fn read(&self, indices: &[usize]) -> Result<Table> {
        match self {
            Rows::Npy { path, header } => npy::read_rows(path, header, indices),
            Rows::Loaded(d) => Ok(d.table.select(indices)),
        }
    }

    /// Rank `rank`'s share of the set's rows `indices` (increasing), of `size` processes.
    fn share(&self, indices: &[usize], rank: usize, size: usize) -> Result<(Table, Shard)> {
        let s = Shard::even(indices.len(), rank, size);
        Ok((self.read(&indices[s.offset..s.offset + s.len])?, s))
    }
}

/// The rows of a source and the parts that come with it ([`Rows::source`]).
struct Bundle {
    main: Rows,
    val: Option<Rows>,
    test: Option<Rows>,
    test_origin: &'static str,
}

/// An extra file (`--val`, `--test`) of `cols` columns.
fn extra(src: &Source, cols: usize, what: &str) -> Result<Rows> {
    let rows = match src {
        Source::Path(p) if p.is_file() && !cifar::recognises(p) => Rows::file(p),
        _ => src.load().map(|l| Rows::Loaded(l.main)),
    }
    .with_context(|| format!("loading the {what} data"))?;
    ensure!(
        rows.cols() == cols,
        "the {what} data {} has {} columns, but the training data has {cols}",
        src.describe(),
        rows.cols()
    );
    Ok(rows)
}

/// Rank `rank`'s rows of `source` split as `spec` says ([`super::split`]'s rows, shared
/// out evenly among `size` processes).
pub fn split_sharded(
    source: &Source,
    spec: &SplitSpec,
    rank: usize,
    size: usize,
) -> Result<ShardedSplits> {
    relgrad::model::split::check_fraction("--val-fraction", spec.val_fraction)?;
    relgrad::model::split::check_fraction("--test-fraction", spec.test_fraction)?;
    let desc = source.describe();
    let Bundle {
        main,
        val: bundled_val,
        test: bundled,
        test_origin,
    } = Rows::source(source).with_context(|| format!("loading the training data {desc}"))?;
    let (n, cols) = (main.rows(), main.cols());
    let (test_from_rows, test_rows, origin) = match (&spec.test, bundled) {
        (Some(src), _) => (0, Some(extra(src, cols, "test")?), "file"),
        (None, Some(t)) => {
            ensure!(
                t.cols() == cols,
                "the bundled test images have {} columns, the training images {cols}",
                t.cols()
            );
            (0, Some(t), test_origin)
        }
        (None, None) => (holdout_rows(n, spec.test_fraction), None, "fraction"),
    };
    let (val_from_rows, val_rows) = match (&spec.val, bundled_val) {
        (Some(src), _) => (0, Some(extra(src, cols, "validation")?)),
        (None, Some(v)) => {
            ensure!(
                v.cols() == cols,
                "the bundled validation rows have {} columns, the training rows {cols}",
                v.cols()
            );
            (0, Some(v))
        }
        (None, None) => (holdout_rows(n, spec.val_fraction), None),
    };
    let split = split_rows(n, val_from_rows, test_from_rows, spec.seed)?;
    let all = |r: &Rows| (0..r.rows()).collect::<Vec<_>>();
    let part = |own: &Option<Rows>, held: &[usize]| -> Result<Option<(Table, Shard)>> {
        match own {
            Some(r) => r.share(&all(r), rank, size).map(Some),
            None if held.is_empty() => Ok(None),
            None => main.share(held, rank, size).map(Some),
        }
    };
    let test = part(&test_rows, &split.test)?;
    let val = part(&val_rows, &split.val)?;
    let (table, train_shard) = main.share(&split.train, rank, size)?;
    let (image, levels) = main.image_and_levels();
    Ok(ShardedSplits {
        train: Dataset {
            table,
            image,
            levels,
        },
        train_shard,
        val,
        test,
        test_origin: origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SplitSpec {
        SplitSpec {
            seed: 3,
            val_fraction: 0.1,
            test_fraction: 0.2,
            val: None,
            test: None,
        }
    }

    /// A `.npy` file whose data are shorter than its header says is an error when read by
    /// offset, as when read whole; so are rows out of range.
    #[test]
    fn truncated_files_and_bad_rows_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        let bytes = npy::encode_f64(&[10, 3], &[0.5; 30]);
        std::fs::write(&path, &bytes[..bytes.len() - 8]).unwrap();
        let e = split_sharded(&Source::Path(path.clone()), &spec(), 1, 2).unwrap_err();
        assert!(format!("{e:#}").contains("truncated data"), "{e:#}");
        std::fs::write(&path, &bytes).unwrap();
        let h = npy::read_header(&path).unwrap();
        assert!(npy::read_rows(&path, &h, &[3, 2]).is_err());
        assert!(npy::read_rows(&path, &h, &[10]).is_err());
        assert_eq!(npy::read_rows(&path, &h, &[2, 9]).unwrap().rows, 2);
    }

    /// The shares of every rank, put together, are the single-process split, for a
    /// `.npy` file read by offset and for data read whole.
    #[test]
    fn shares_put_together_are_the_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let values: Vec<f64> = (0..97 * 3).map(|v| v as f64 * 0.5).collect();
        std::fs::write(&path, npy::encode_f64(&[97, 3], &values)).unwrap();
        for source in [Source::Path(path), Source::Digits] {
            let whole = super::super::split(source.load().unwrap(), &spec()).unwrap();
            for size in [1, 2, 3] {
                let shares: Vec<_> = (0..size)
                    .map(|r| split_sharded(&source, &spec(), r, size).unwrap())
                    .collect();
                let join = |f: &dyn Fn(&ShardedSplits) -> &Table| {
                    let mut v = Vec::new();
                    let mut rows = Vec::new();
                    for s in &shares {
                        let t = f(s);
                        v.extend_from_slice(&t.values);
                        rows.extend((0..t.rows).map(|i| t.file_row(i)));
                    }
                    (v, rows)
                };
                let rows_of = |t: &Table| {
                    (
                        t.values.clone(),
                        (0..t.rows).map(|i| t.file_row(i)).collect::<Vec<_>>(),
                    )
                };
                assert_eq!(join(&|s| &s.train.table), rows_of(&whole.train.table));
                assert_eq!(
                    join(&|s| &s.val.as_ref().unwrap().0),
                    rows_of(whole.val.as_ref().unwrap())
                );
                assert_eq!(
                    join(&|s| &s.test.as_ref().unwrap().0),
                    rows_of(whole.test.as_ref().unwrap())
                );
                assert_eq!(shares[0].train.levels, whole.train.levels);
            }
        }
    }
}

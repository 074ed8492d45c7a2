//! Data: tables of samples, where they come from, and how they are split.
//!
//! A data argument (`--data`, `--val`, `--test`) is a path or a name:
//! - a `.npy` file ([`npy`]: every numeric dtype NumPy writes, half precision included,
//!   either byte order, C or Fortran order, any rank; the first axis is the samples;
//!   complex, structured, object, string and date arrays are refused saying how to
//!   convert them),
//! - a `.npz` archive (`np.savez`, `np.savez_compressed`) ([`npz`]): its only array, or
//!   `FILE.npz:KEY` for one of several (`--data data.npz:train`),
//! - a text table, `.csv`, `.tsv` or `.txt` (`.gz` too) ([`csv`], [`text`]): as
//!   spreadsheets and other tools export it (UTF-8 or UTF-16, any line ends, quoting, a
//!   header line, comma, semicolon, tab or blank delimited, decimal commas in files not
//!   delimited by commas); what cannot be read surely (thousands separators, empty cells,
//!   a second header line) is refused naming the line and column and what to do,
//! - an MNIST-style IDX file or a directory holding `train-images-idx3-ubyte[.gz]` (and
//!   `t10k-images-idx3-ubyte[.gz]`, which becomes the test set) ([`idx`]),
//! - CIFAR-10's binary version: the directory of its batch files, the directory holding
//!   that, or the archive `cifar-10-binary.tar.gz` (`test_batch` becomes the test set)
//!   ([`cifar`]),
//! - a directory of prepared splits, `train.npy` and optionally `val.npy` and `test.npy`,
//!   which become the validation and test sets ([`prepared`]),
//! - `digits`, the built-in 8x8 handwritten digits ([`digits`]),
//! - a 2-D generator, `moons`, `2spirals`, `checkerboard`, `rings`, `8gaussians`, `sine`,
//!   `trimodal`, `smile` or `trimodal2`, drawn with `--n` rows from `--seed`
//!   ([`generators`]).
//!
//! An existing path always wins over a built-in name. Where the data came from is
//! recorded in the model file ([`Source`]), so that `eval` and `score` can rebuild the
//! same splits later.

pub mod cifar;
pub mod csv;
pub mod digits;
pub mod generators;
pub mod idx;
pub mod images;
pub mod npy;
pub mod npz;
pub mod prepared;
pub mod shards;
mod split;
pub mod tar;
pub mod text;

pub use shards::{split_sharded, ShardedSplits};
pub use split::{split, Part, SplitSpec, Splits};

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use serde_json::{json, Value};

/// The most values (`rows x cols`) a data file may hold (`2^31`, 16 GiB as `f64`): a
/// header that announces more is refused before anything is allocated.
pub const MAX_VALUES: usize = 1 << 31;

/// The most bytes of text a CSV file may hold, after decompression (4 GiB); larger data
/// belong in `.npy` files.
pub const MAX_TEXT_BYTES: u64 = 1 << 32;

/// The number of values of an array of `shape`, refused (before anything is allocated)
/// above [`MAX_VALUES`].
pub fn value_count(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .filter(|&c| c <= MAX_VALUES)
        .ok_or_else(|| {
            anyhow!(
                "the shape {shape:?} holds more than {MAX_VALUES} values, the limit of a data file"
            )
        })
}

/// A dense table of samples: `rows x cols`, row-major, in `f64`, with where each row came
/// from so that messages number rows as the file does.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Number of samples.
    pub rows: usize,
    /// Number of features.
    pub cols: usize,
    /// The values, row-major.
    pub values: Vec<f64>,
    /// The file's (one-based) row number of each row, when the table is a selection of
    /// a file's rows (a split part); `None` when row `i` is the file's row `i + 1`.
    pub file_rows: Option<Vec<usize>>,
    /// The (one-based) line of each of the file's rows, for text files (CSV), indexed by
    /// file row.
    pub file_lines: Option<std::sync::Arc<[usize]>>,
}

/// Tables are equal when their shapes and values are (not where the rows came from).
impl PartialEq for Table {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows && self.cols == other.cols && self.values == other.values
    }
}

impl Table {
    /// Wraps row-major values. Panics if the length is not `rows * cols`.
    pub fn new(rows: usize, cols: usize, values: Vec<f64>) -> Self {
        assert_eq!(values.len(), rows * cols, "Table::new: length mismatch");
        Self {
            rows,
            cols,
            values,
            ..Self::default()
        }
    }

    /// Builds a table from a function of `(row, col)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Self {
        let mut values = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                values.push(f(i, j));
            }
        }
        Self::new(rows, cols, values)
    }

    /// Element `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.cols + j]
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.cols..(i + 1) * self.cols]
    }

    /// The rows at `indices`, in that order (remembering their file rows).
    pub fn select(&self, indices: &[usize]) -> Table {
        let mut values = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Table {
            file_rows: Some(indices.iter().map(|&i| self.file_row(i)).collect()),
            file_lines: self.file_lines.clone(),
            ..Table::new(indices.len(), self.cols, values)
        }
    }

    /// The file's one-based row number of row `i`.
    pub fn file_row(&self, i: usize) -> usize {
        self.file_rows.as_ref().map_or(i + 1, |r| r[i])
    }

    /// Row `i` as the file numbers it: `row 7`, or `row 7 (line 9)` for a text file.
    pub fn describe_row(&self, i: usize) -> String {
        let r = self.file_row(i);
        match self.file_lines.as_ref().and_then(|l| l.get(r - 1)) {
            Some(line) => format!("row {r} (line {line})"),
            None => format!("row {r}"),
        }
    }

    /// The first value that is NaN or infinite: `(row, col, value)`, zero-based.
    pub fn first_non_finite(&self) -> Option<(usize, usize, f64)> {
        let k = self.values.iter().position(|v| !v.is_finite())?;
        Some((k / self.cols.max(1), k % self.cols.max(1), self.values[k]))
    }

    /// Whether row `i` is all finite.
    pub fn row_is_finite(&self, i: usize) -> bool {
        self.row(i).iter().all(|v| v.is_finite())
    }

    /// An error naming the first non-finite value by the file's row (and line) and its
    /// column, counted from 1.
    pub fn check_finite(&self, what: &str) -> Result<()> {
        if let Some((r, c, v)) = self.first_non_finite() {
            bail!(
                "{what}: {}, column {} is not a finite number ({v}); remove or repair that row",
                self.describe_row(r),
                c + 1
            );
        }
        Ok(())
    }

    /// The table as a borrowed row-major matrix (no copy).
    pub fn as_mat(&self) -> relgrad::MatRef<'_, f64> {
        relgrad::MatRef::from_slice(&self.values, self.rows, self.cols)
    }

    /// A table holding a matrix's values.
    pub fn from_mat(m: relgrad::Mat<f64>) -> Self {
        let (rows, cols) = (m.rows(), m.cols());
        Self::new(rows, cols, m.into_vec())
    }

    /// The values converted to `T`.
    pub fn to_mat<T: relgrad::Scalar>(&self) -> relgrad::Mat<T> {
        relgrad::Mat::from_vec(
            self.rows,
            self.cols,
            self.values.iter().map(|&v| T::from_f64c(v)).collect(),
        )
    }
}

pub use relgrad::model::ImageShape;

/// Where a data set came from: recorded in model files so that the data can be found
/// again.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The built-in digits.
    Digits,
    /// A 2-D generator with its size and seed.
    Generator {
        /// The generator's name.
        name: String,
        /// Rows drawn.
        n: usize,
        /// The seed.
        seed: u64,
    },
    /// A file (`.npy`, `.npz`, `.csv`, IDX), an MNIST-style IDX directory, or CIFAR-10
    /// (its directory or archive), by absolute path; one array of a `.npz` archive is the
    /// archive's path followed by `:KEY` ([`npz::resolve_spec`]).
    Path(PathBuf),
    /// A directory of prepared splits (`train.npy`, `val.npy`, `test.npy`), by absolute
    /// path ([`prepared`]).
    Prepared(PathBuf),
}

impl Source {
    /// Resolves a data argument: an existing path, else a built-in name.
    pub fn parse(spec: &str, n: usize, seed: u64) -> Result<Self> {
        let p = Path::new(spec);
        if p.exists() {
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            if prepared::recognises(&abs) {
                return Ok(Source::Prepared(abs));
            }
            return Ok(Source::Path(abs));
        }
        // `FILE.npz:KEY`: one array of an archive, recorded as the path with its key.
        if let Some(abs) = npz::resolve_spec(spec) {
            return Ok(Source::Path(abs));
        }
        if spec == "digits" {
            return Ok(Source::Digits);
        }
        if generators::is_generator(spec) {
            ensure!(n >= 2, "--n must be at least 2 for a generator, got {n}");
            return Ok(Source::Generator {
                name: spec.to_string(),
                n,
                seed,
            });
        }
        bail!(
            "{spec}: no such file or directory, and not a built-in data set (digits) or generator ({})",
            generators::NAMES.join(", ")
        )
    }

    /// A short name for run directories and reports: `digits`, `moons`, a file stem.
    pub fn short_name(&self) -> String {
        match self {
            Source::Digits => "digits".into(),
            Source::Generator { name, .. } => name.clone(),
            Source::Path(p) | Source::Prepared(p) => {
                let name = p
                    .file_name()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_default();
                let name = name.trim_end_matches(".gz");
                let stem = Path::new(name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string());
                stem.unwrap_or_else(|| "data".into())
            }
        }
    }

    /// A human-readable description.
    pub fn describe(&self) -> String {
        match self {
            Source::Digits => "digits (built-in)".into(),
            Source::Generator { name, n, seed } => {
                format!("{name} (generated, n = {n}, seed {seed})")
            }
            Source::Path(p) => p.display().to_string(),
            Source::Prepared(p) => prepared::describe(p),
        }
    }

    /// The JSON recorded in model files.
    pub fn to_json(&self) -> Value {
        match self {
            Source::Digits => json!({"kind": "builtin", "name": "digits"}),
            Source::Generator { name, n, seed } => {
                json!({"kind": "generator", "name": name, "n": n, "seed": seed})
            }
            Source::Path(p) => json!({"kind": "path", "path": p.display().to_string()}),
            Source::Prepared(p) => {
                json!({"kind": "prepared", "path": p.display().to_string()})
            }
        }
    }

    /// Reads [`Source::to_json`]'s output back.
    pub fn from_json(v: &Value) -> Result<Self> {
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        Ok(match kind {
            "builtin" => Source::Digits,
            "generator" => Source::Generator {
                name: v["name"].as_str().unwrap_or_default().to_string(),
                n: v["n"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("generator without n"))? as usize,
                seed: v["seed"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("generator without seed"))?,
            },
            "path" => Source::Path(PathBuf::from(v["path"].as_str().unwrap_or_default())),
            "prepared" => Source::Prepared(PathBuf::from(v["path"].as_str().unwrap_or_default())),
            other => bail!("unknown data source kind {other:?}"),
        })
    }

    /// Loads the data: the table, and the parts that come with it (an IDX directory's
    /// `t10k` images, CIFAR-10's test batch, a prepared directory's `val.npy` and
    /// `test.npy`).
    pub fn load(&self) -> Result<Loaded> {
        match self {
            Source::Digits => Ok(Loaded::single(Dataset {
                table: digits::load()?,
                image: Some(ImageShape {
                    height: digits::SIDE,
                    width: digits::SIDE,
                }),
                levels: Some(digits::LEVELS),
            })),
            Source::Generator { name, n, seed } => Ok(Loaded::single(Dataset {
                table: generators::generate(name, *n, *seed)?,
                image: None,
                levels: None,
            })),
            Source::Prepared(p) => prepared::load(p),
            Source::Path(p) if cifar::recognises(p) => cifar::load(p),
            Source::Path(p) if p.is_dir() => {
                let (train, test) = idx::find_in_dir(p)?;
                let main = load_file(&train)?;
                let test = test.map(|t| load_file(&t)).transpose()?;
                Ok(Loaded {
                    test,
                    ..Loaded::single(main)
                })
            }
            Source::Path(p) => Ok(Loaded::single(load_file(p)?)),
        }
    }
}

/// A table with what is known about its values.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The samples.
    pub table: Table,
    /// The image shape, when the rows are images.
    pub image: Option<ImageShape>,
    /// The number of quantisation levels of integer pixel data (17 for the digits, 256
    /// for 8-bit images), when known.
    pub levels: Option<u32>,
}

/// What [`Source::load`] returns.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The data set (for an IDX directory, its training images).
    pub main: Dataset,
    /// A validation set that comes with the data (a prepared directory's `val.npy`).
    pub val: Option<Dataset>,
    /// A test set that comes with the data (an IDX directory's `t10k` images).
    pub test: Option<Dataset>,
    /// Where that test set comes from, as the model file records it: `"t10k"`,
    /// `"test_batch"` (CIFAR-10) or `"file"` (a prepared directory).
    pub test_origin: &'static str,
}

impl Loaded {
    /// A data set that comes without validation or test set.
    pub fn single(main: Dataset) -> Self {
        Self {
            main,
            val: None,
            test: None,
            test_origin: "t10k",
        }
    }
}

/// Reads one data file, choosing the reader by extension, else by content.
pub fn load_file(path: &Path) -> Result<Dataset> {
    if let Some((file, key)) = path
        .to_str()
        .and_then(|s| (!path.exists()).then(|| npz::split_spec(s)).flatten())
    {
        return npz::load(&file, Some(&key));
    }
    if !path.exists() {
        bail!("{}: no such file", path.display());
    }
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ext = crate::util::extension(path).unwrap_or_default();
    let head = {
        use std::io::Read;
        let mut buf = [0u8; 8];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut buf))
            .with_context(|| format!("cannot read {}", path.display()))?;
        buf[..n].to_vec()
    };
    if ext == "npy" || head.starts_with(b"\x93NUMPY") {
        let a = npy::read(path)?;
        let image = images::image_of_shape(&a.shape);
        let levels = a.is_u8().then_some(256);
        let table = a
            .into_table()
            .with_context(|| format!("reading {}", path.display()))?;
        return Ok(Dataset {
            table,
            image,
            levels,
        });
    }
    if ext == "npz" || head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return npz::load(path, None);
    }
    let is_csv_name = ext == "csv" || ext == "tsv" || ext == "txt" || name.ends_with(".csv.gz");
    if !is_csv_name {
        // IDX files are often gzip-compressed: look inside.
        let head = idx::sniff(path, 4096)?;
        if idx::looks_like_idx(&head) {
            let a = idx::read(path)?;
            let image = (a.shape.len() == 3).then(|| ImageShape {
                height: a.shape[1],
                width: a.shape[2],
            });
            let levels = a.is_u8.then_some(256);
            return Ok(Dataset {
                table: a.into_table(),
                image,
                levels,
            });
        }
        if head.contains(&0) && !text::decode::looks_like_utf16(&head) {
            bail!(
                "{}: unrecognised format (expected .npy, .npz, .csv, or an IDX file such as MNIST's)",
                path.display()
            );
        }
    }
    let t = csv::read(path)?;
    for note in &t.notes {
        eprintln!("note: {}: {note}", path.display());
    }
    Ok(Dataset {
        table: Table {
            file_lines: Some(t.lines.into()),
            ..t.table
        },
        image: None,
        levels: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_json_round_trip() {
        for s in [
            Source::Digits,
            Source::Generator {
                name: "moons".into(),
                n: 10,
                seed: 3,
            },
            Source::Path("/tmp/x.csv".into()),
            Source::Prepared("/tmp/prepared".into()),
        ] {
            assert_eq!(Source::from_json(&s.to_json()).unwrap(), s);
        }
    }
}

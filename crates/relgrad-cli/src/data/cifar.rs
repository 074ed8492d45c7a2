//! CIFAR-10, from its distributed binary version
//! (<https://www.cs.toronto.edu/~kriz/cifar.html>, `cifar-10-binary.tar.gz`).
//!
//! A batch file is a sequence of 3073-byte records: one label byte (0 to 9), then the
//! 3072 pixels of a 32 x 32 colour image, the 1024 red values, then the 1024 green, then
//! the 1024 blue, each plane row-major. The training images are those of
//! `data_batch_1.bin` to `data_batch_5.bin` (50000), in that order; `test_batch.bin`
//! (10000) is the test set, as an IDX directory's `t10k` images are.
//!
//! `--data` may name the directory of the batch files (`cifar-10-batches-bin`), the
//! directory holding it, or the archive itself (`.tar.gz`, `.tgz` or `.tar`), which is
//! read as a stream without unpacking it ([`super::tar`]).
//!
//! Each row is a record's 3072 pixel bytes in the file's order (channel-major), as 8-bit
//! values (256 levels); the labels are dropped. The recorded image shape is 96 x 32:
//! figures draw each image as its red, green and blue planes stacked ([`super::images`]).
//! A batch may hold any whole number of records from 1 to 10000 (the distributed files
//! hold 10000 each); other sizes, and label bytes above 9, are refused with the file and
//! the record named.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use super::{images, tar, Dataset, Loaded, Table};

/// Pixels of an image (3 channels of 32 x 32).
pub const PIXELS: usize = 3 * 32 * 32;
/// Bytes of a record: the label byte and the pixels.
pub const RECORD: usize = 1 + PIXELS;
/// The most records a batch file holds (as distributed).
pub const MAX_RECORDS: usize = 10_000;
/// The number of training batches.
pub const TRAIN_BATCHES: usize = 5;
/// The name of the test batch.
pub const TEST_BATCH: &str = "test_batch.bin";
/// The directory the archive unpacks to.
pub const BATCHES_DIR: &str = "cifar-10-batches-bin";
/// The distributed archive's file name.
pub const ARCHIVE: &str = "cifar-10-binary.tar.gz";
/// What the model records as the test set's origin.
pub const TEST_ORIGIN: &str = "test_batch";

/// The name of training batch `k` (1 to 5).
pub fn train_batch(k: usize) -> String {
    format!("data_batch_{k}.bin")
}

/// Whether `name` is one of the six batch files.
fn is_batch(name: &str) -> bool {
    name == TEST_BATCH || (1..=TRAIN_BATCHES).any(|k| name == train_batch(k))
}

/// Whether a file name is a tar archive's (`.tar.gz`, `.tgz`, `.tar`).
pub fn is_archive_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".tar.gz", ".tgz", ".tar"]
        .iter()
        .any(|e| name.ends_with(e))
}

/// The directory holding the batch files, if `dir` is or holds CIFAR-10's: it has a
/// batch file, or a `cifar-10-batches-bin` directory that has one. Also recognised, to
/// be refused with a hint: the Python version's (`data_batch_1` without `.bin`).
fn batches_dir(dir: &Path) -> Option<PathBuf> {
    let has = |d: &Path| {
        d.join(train_batch(1)).is_file()
            || d.join(TEST_BATCH).is_file()
            || d.join("data_batch_1").is_file()
    };
    if has(dir) {
        Some(dir.to_path_buf())
    } else {
        let inner = dir.join(BATCHES_DIR);
        has(&inner).then_some(inner)
    }
}

/// Whether `path` is read as CIFAR-10: a tar archive, or a directory that is or holds
/// the batch files.
pub fn recognises(path: &Path) -> bool {
    if path.is_dir() {
        batches_dir(path).is_some() || path.join("cifar-10-batches-py").is_dir()
    } else {
        path.is_file() && is_archive_name(path)
    }
}

/// The number of records of a batch of `size` bytes; refuses sizes that are not a whole
/// number of records from 1 to [`MAX_RECORDS`], naming `file` and the record at fault.
pub fn record_count(file: &str, size: u64) -> Result<usize> {
    let rec = RECORD as u64;
    ensure!(
        size > 0,
        "{file}: empty (expected records of {RECORD} bytes: 1 label byte and {PIXELS} pixels)"
    );
    let (whole, rest) = (size / rec, size % rec);
    ensure!(
        whole <= MAX_RECORDS as u64,
        "{file}: {size} bytes, more than a CIFAR-10 batch of {MAX_RECORDS} records of {RECORD} bytes: record {} is unexpected",
        MAX_RECORDS + 1
    );
    ensure!(
        rest == 0,
        "{file}: {size} bytes is not a whole number of {RECORD}-byte records (1 label byte and {PIXELS} pixels): record {} is truncated ({rest} of its {RECORD} bytes)",
        whole + 1
    );
    Ok(whole as usize)
}

/// Checks a batch's bytes: a whole number of records ([`record_count`]), each with a
/// label byte of 0 to 9; returns the number of records.
pub fn check_batch(file: &str, bytes: &[u8]) -> Result<usize> {
    let n = record_count(file, bytes.len() as u64)?;
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        ensure!(
            rec[0] <= 9,
            "{file}: record {} has the label byte {}, expected 0 to 9: not a CIFAR-10 batch (CIFAR-100's binary version has two label bytes per record)",
            i + 1,
            rec[0]
        );
    }
    Ok(n)
}

/// Appends the pixels of a checked batch's records ([`check_batch`]) to `out`.
pub fn append_pixels(bytes: &[u8], out: &mut Vec<f64>) {
    for rec in bytes.chunks_exact(RECORD) {
        out.extend(rec[1..].iter().map(|&b| f64::from(b)));
    }
}

/// Reads exactly `size` bytes of a batch from `r`, naming the record where it ends early.
fn read_batch(file: &str, r: &mut dyn Read, size: u64) -> Result<Vec<u8>> {
    record_count(file, size)?;
    // The size is the header's claim: reserve at most 1 MiB before bytes back it (the
    // buffer grows as they arrive).
    let mut buf = Vec::with_capacity((size as usize).min(1 << 20));
    r.take(size)
        .read_to_end(&mut buf)
        .with_context(|| format!("{file}: cannot read it"))?;
    if (buf.len() as u64) < size {
        let got = buf.len();
        bail!(
            "{file}: ends after {got} of {size} bytes: record {} is truncated ({} of its {RECORD} bytes)",
            got / RECORD + 1,
            got % RECORD
        );
    }
    Ok(buf)
}

/// The (checked) bytes of each batch file, as they are found.
#[derive(Default)]
struct Batches {
    train: [Option<Vec<u8>>; TRAIN_BATCHES],
    test: Option<Vec<u8>>,
}

impl Batches {
    /// Checks a batch file's bytes and keeps them (refusing a second copy).
    fn add(&mut self, name: &str, file: &str, bytes: Vec<u8>) -> Result<()> {
        let slot = match (1..=TRAIN_BATCHES).find(|&k| name == train_batch(k)) {
            Some(k) => &mut self.train[k - 1],
            None => &mut self.test,
        };
        ensure!(
            slot.is_none(),
            "{file}: a second {name} in the same archive"
        );
        check_batch(file, &bytes)?;
        *slot = Some(bytes);
        Ok(())
    }

    /// The training and test sets: every training batch must be there.
    fn into_loaded(self, whence: &str) -> Result<Loaded> {
        let missing: Vec<String> = (1..=TRAIN_BATCHES)
            .filter(|&k| self.train[k - 1].is_none())
            .map(train_batch)
            .collect();
        ensure!(
            missing.is_empty(),
            "{whence}: CIFAR-10's {} missing (the binary version has data_batch_1.bin to data_batch_5.bin and test_batch.bin; https://www.cs.toronto.edu/~kriz/cifar.html)",
            if missing.len() == 1 {
                format!("{} is", missing[0])
            } else {
                format!("{} are", missing.join(", "))
            }
        );
        let dataset = |batches: &[Vec<u8>]| {
            let rows: usize = batches.iter().map(|b| b.len() / RECORD).sum();
            let mut values = Vec::with_capacity(rows * PIXELS);
            for b in batches {
                append_pixels(b, &mut values);
            }
            Dataset {
                table: Table::new(rows, PIXELS, values),
                image: images::image_of_shape(&[rows, 3, 32, 32]),
                levels: Some(256),
            }
        };
        let train: Vec<Vec<u8>> = self.train.into_iter().flatten().collect();
        Ok(Loaded {
            main: dataset(&train),
            val: None,
            test: self.test.map(|t| dataset(&[t])),
            test_origin: TEST_ORIGIN,
        })
    }
}

/// Loads CIFAR-10 from a directory or an archive ([`recognises`]).
pub fn load(path: &Path) -> Result<Loaded> {
    if path.is_dir() {
        load_dir(path)
    } else {
        load_archive(path)
    }
}

fn load_dir(dir: &Path) -> Result<Loaded> {
    let Some(bdir) = batches_dir(dir) else {
        bail!(
            "{}: holds cifar-10-batches-py, CIFAR-10's Python version; relgrad reads the binary version ({ARCHIVE}, https://www.cs.toronto.edu/~kriz/cifar.html)",
            dir.display()
        );
    };
    ensure!(
        !bdir.join("data_batch_1").is_file() || bdir.join(train_batch(1)).is_file(),
        "{}: holds data_batch_1, CIFAR-10's Python version (pickles); relgrad reads the binary version ({ARCHIVE}, https://www.cs.toronto.edu/~kriz/cifar.html)",
        bdir.display()
    );
    let mut batches = Batches::default();
    let names = (1..=TRAIN_BATCHES)
        .map(train_batch)
        .chain([TEST_BATCH.to_string()]);
    for name in names {
        let p = bdir.join(&name);
        if !p.is_file() {
            continue;
        }
        let file = p.display().to_string();
        let size = std::fs::metadata(&p)
            .with_context(|| format!("cannot read {file}"))?
            .len();
        let mut f = std::fs::File::open(&p).with_context(|| format!("cannot read {file}"))?;
        let bytes = read_batch(&file, &mut f, size)?;
        batches.add(&name, &file, bytes)?;
    }
    batches.into_loaded(&bdir.display().to_string())
}

fn load_archive(path: &Path) -> Result<Loaded> {
    let what = path.display().to_string();
    let mut r = super::idx::open_maybe_gz(path)?;
    let mut batches = Batches::default();
    let mut python = false;
    tar::for_each_file(&mut r, &what, |e| {
        let name = e.file_name().to_string();
        python |= e.path.contains("cifar-10-batches-py");
        if is_batch(&name) {
            let file = format!("{what}: {}", e.path);
            let bytes = read_batch(&file, e.content, e.size)?;
            batches.add(&name, &file, bytes)?;
        }
        Ok(())
    })?;
    ensure!(
        !python || batches.train.iter().any(Option::is_some),
        "{what}: CIFAR-10's Python version (cifar-10-python.tar.gz); relgrad reads the binary version ({ARCHIVE}, https://www.cs.toronto.edu/~kriz/cifar.html)"
    );
    batches.into_loaded(&what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_records() {
        assert_eq!(record_count("f", 7 * RECORD as u64).unwrap(), 7);
        let e = record_count("f", 2 * RECORD as u64 + 5)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("f: ") && e.contains("record 3 is truncated (5 of its 3073 bytes)"),
            "{e}"
        );
        let e = record_count("f", (MAX_RECORDS as u64 + 1) * RECORD as u64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("record 10001 is unexpected"), "{e}");
        assert!(record_count("f", 0)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }

    #[test]
    fn records_become_rows_of_pixels() {
        let mut bytes = vec![3u8];
        bytes.extend((0..PIXELS).map(|i| (i % 251) as u8));
        bytes.push(9);
        bytes.extend(std::iter::repeat_n(200u8, PIXELS));
        assert_eq!(check_batch("b", &bytes).unwrap(), 2);
        let mut v = Vec::new();
        append_pixels(&bytes, &mut v);
        assert_eq!(v.len(), 2 * PIXELS);
        assert_eq!(
            (v[0], v[1024], v[PIXELS - 1], v[PIXELS]),
            (0.0, 20.0, 59.0, 200.0)
        );
        bytes[RECORD] = 10;
        let e = check_batch("b", &bytes).unwrap_err().to_string();
        assert!(e.contains("record 2 has the label byte 10"), "{e}");
    }
}

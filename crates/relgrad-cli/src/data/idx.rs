//! The IDX format of MNIST and Fashion-MNIST (raw or `.gz`).
//!
//! A file is two zero bytes, a type byte (`0x08` unsigned byte, `0x09` signed byte,
//! `0x0B` i16, `0x0C` i32, `0x0D` f32, `0x0E` f64), a rank byte, one big-endian `u32`
//! per dimension, then the data in C order, big-endian. Images are `n x height x width`.
//! A directory is read as MNIST's layout: `train-images-idx3-ubyte[.gz]` for training
//! and, when present, `t10k-images-idx3-ubyte[.gz]` as the test set (dots instead of
//! the last dash, as some mirrors name them, are accepted too).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::Table;

/// An IDX array: its shape, whether it holds unsigned bytes, and its values.
#[derive(Clone, Debug)]
pub struct IdxArray {
    /// The dimensions, first is the number of items.
    pub shape: Vec<usize>,
    /// Whether the element type is unsigned byte (8-bit image data).
    pub is_u8: bool,
    /// The values in C order.
    pub values: Vec<f64>,
}

impl IdxArray {
    /// The array as a table: one row per item, the other axes flattened (a 1-D array is
    /// one column). [`parse`] has checked that no dimension is zero.
    pub fn into_table(self) -> Table {
        let rows = self.shape[0];
        let cols: usize = self.shape[1..].iter().product();
        Table::new(rows, cols, self.values)
    }
}

/// Whether `bytes` (decompressed) start like an IDX file.
pub fn looks_like_idx(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[0] == 0
        && bytes[1] == 0
        && matches!(bytes[2], 0x08 | 0x09 | 0x0B | 0x0C | 0x0D | 0x0E)
        && (1..=4).contains(&bytes[3])
}

/// Opens a file for reading, through a gzip decoder when it starts with gzip's magic.
pub fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = std::fs::File::open(path)
        .map(std::io::BufReader::new)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let head = std::io::Cursor::new(magic[..n].to_vec()).chain(file);
    Ok(if magic[..n] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(head))
    } else {
        Box::new(head)
    })
}

/// Fills as much of `buf` as the reader has; returns how much.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The first (decompressed) bytes of a file, up to `n`, to tell its format.
pub fn sniff(path: &Path, n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let got = read_up_to(&mut open_maybe_gz(path)?, &mut buf)
        .with_context(|| format!("{}: cannot read or decompress", path.display()))?;
    buf.truncate(got);
    Ok(buf)
}

/// Reads an IDX file (raw or gzip). The shape is checked against [`super::MAX_VALUES`],
/// then only as many bytes as it needs are read.
pub fn read(path: &Path) -> Result<IdxArray> {
    read_from(open_maybe_gz(path)?)
        .with_context(|| format!("{} is not a readable IDX file", path.display()))
}

/// Parses the (decompressed) bytes of an IDX file.
pub fn parse(bytes: &[u8]) -> Result<IdxArray> {
    read_from(bytes)
}

/// Reads an IDX array from a stream: the header, then exactly the data it announces.
fn read_from(mut r: impl Read) -> Result<IdxArray> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut r, &mut magic).context("cannot read or decompress")?;
    if !looks_like_idx(&magic[..n]) {
        bail!("missing the IDX magic number (0, 0, type, rank)");
    }
    let (ty, rank) = (magic[2], magic[3] as usize);
    let mut dims = vec![0u8; 4 * rank];
    if read_up_to(&mut r, &mut dims).context("cannot read or decompress")? < dims.len() {
        bail!(
            "truncated header: rank {rank} needs {} bytes of dimensions",
            4 * rank
        );
    }
    let shape: Vec<usize> = dims
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    if let Some(axis) = shape.iter().position(|&d| d == 0) {
        bail!(
            "dimension {} of the shape {shape:?} is 0: the file holds no values",
            axis + 1
        );
    }
    let size = match ty {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        _ => 8,
    };
    let count = super::value_count(&shape)?;
    let need = count * size;
    // Grown as the bytes arrive (not reserved from the header), so memory follows what
    // the file really holds.
    let mut data = Vec::new();
    r.take(need as u64)
        .read_to_end(&mut data)
        .context("cannot read or decompress the data")?;
    if data.len() < need {
        bail!(
            "truncated data: shape {shape:?} needs {need} bytes, the file has {}",
            data.len()
        );
    }
    let values = data
        .chunks_exact(size)
        .map(|c| match ty {
            0x08 => c[0] as f64,
            0x09 => c[0] as i8 as f64,
            0x0B => i16::from_be_bytes([c[0], c[1]]) as f64,
            0x0C => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
            0x0D => f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
            _ => f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Ok(IdxArray {
        shape,
        is_u8: ty == 0x08,
        values,
    })
}

/// Finds MNIST's image files in a directory: `(train, Option<test>)`.
pub fn find_in_dir(dir: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let find = |prefix: &str| -> Option<PathBuf> {
        let names = [
            format!("{prefix}-images-idx3-ubyte"),
            format!("{prefix}-images.idx3-ubyte"),
        ];
        names
            .iter()
            .flat_map(|n| [n.clone(), format!("{n}.gz")])
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    };
    let train = find("train").ok_or_else(|| {
        anyhow!(
            "{} has no MNIST training images (expected train-images-idx3-ubyte or train-images-idx3-ubyte.gz)",
            dir.display()
        )
    })?;
    Ok((train, find("t10k")))
}

/// Encodes unsigned bytes as an IDX file of the given shape (for tests and tools).
pub fn encode_u8(shape: &[usize], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, shape.len() as u8];
    for &s in shape {
        out.extend_from_slice(&(s as u32).to_be_bytes());
    }
    out.extend_from_slice(values);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_u8_images() {
        let v: Vec<u8> = (0..2 * 2 * 3).map(|i| i as u8 * 20).collect();
        let a = parse(&encode_u8(&[2, 2, 3], &v)).unwrap();
        assert_eq!(a.shape, vec![2, 2, 3]);
        assert!(a.is_u8);
        let t = a.into_table();
        assert_eq!((t.rows, t.cols), (2, 6));
        assert_eq!(t.values[7], 140.0);
    }

    #[test]
    fn errors() {
        assert!(parse(b"\x00\x00\x08\x03\x00").is_err());
        let mut b = encode_u8(&[2, 2], &[1, 2, 3, 4]);
        b.truncate(b.len() - 1);
        assert!(parse(&b).unwrap_err().to_string().contains("truncated"));
        let e = parse(&encode_u8(&[5, 0], &[])).unwrap_err().to_string();
        assert!(e.contains("dimension 2 of the shape [5, 0] is 0"), "{e}");
        // A header that announces 2^32 x 2^32 values is refused before allocating.
        let huge = parse(&[0, 0, 8, 2, 255, 255, 255, 255, 255, 255, 255, 255]);
        assert!(huge
            .unwrap_err()
            .to_string()
            .contains("the limit of a data file"));
    }
}

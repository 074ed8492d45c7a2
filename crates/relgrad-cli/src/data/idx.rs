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
    /// The array as a table: one row per item, the other axes flattened.
    pub fn into_table(self) -> Table {
        let rows = self.shape[0];
        let cols: usize = self.shape[1..].iter().product();
        Table::new(rows, cols.max(1), self.values)
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

/// Reads a file, decompressing it when it is gzip.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: cannot decompress (gzip)", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads an IDX file (raw or gzip).
pub fn read(path: &Path) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    parse(&bytes).with_context(|| format!("{} is not a readable IDX file", path.display()))
}

/// Parses the (decompressed) bytes of an IDX file.
pub fn parse(bytes: &[u8]) -> Result<IdxArray> {
    if !looks_like_idx(bytes) {
        bail!("missing the IDX magic number (0, 0, type, rank)");
    }
    let (ty, rank) = (bytes[2], bytes[3] as usize);
    let head = 4 + 4 * rank;
    if bytes.len() < head {
        bail!("truncated header");
    }
    let shape: Vec<usize> = (0..rank)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let size = match ty {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        _ => 8,
    };
    let count = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .and_then(|c| c.checked_mul(size).map(|_| c))
        .ok_or_else(|| anyhow!("the shape {shape:?} is too large"))?;
    let data = &bytes[head..];
    if data.len() < count * size {
        bail!(
            "truncated data: shape {shape:?} needs {} bytes, the file has {}",
            count * size,
            data.len()
        );
    }
    let values = data[..count * size]
        .chunks_exact(size)
        .map(|c| match ty {
            0x08 => c[0] as f64,
            0x09 => c[0] as i8 as f64,
            0x0B => i16::from_be_bytes([c[0], c[1]]) as f64,
            0x0C => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
            0x0D => f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64,
            _ => f64::from_be_bytes(c.try_into().expect("8 bytes")),
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
    }
}

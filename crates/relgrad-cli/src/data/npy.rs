//! A small reader and writer for NumPy's `.npy` format (versions 1, 2 and 3).
//!
//! Reads every numeric dtype NumPy writes that a density model can use: little- and
//! big-endian `f2` (half precision, converted exactly), `f4`, `f8`, signed and unsigned
//! integers of 1, 2, 4 and 8 bytes (above 2^53 rounded to the nearest `f64`) and
//! booleans, in C or Fortran order, of any rank >= 1: the first axis is the rows, the
//! others are flattened in C order into the columns (a 1-D array is one column). Writes
//! 1-D or 2-D little-endian `f8` arrays in C order.
//!
//! Refused, each with the NumPy call that converts it: 0-dimensional arrays (a scalar is
//! not a data set); `longdouble` (`<f16`, `<f12`: its layout differs between machines, so
//! it is refused rather than guessed); complex numbers; structured (record) dtypes; object
//! arrays (pickled, and unpickling can run code); strings and bytes; `datetime64` and
//! `timedelta64`; raw `void` data.
//!
//! The format (<https://numpy.org/devdocs/reference/generated/numpy.lib.format.html>):
//! the magic `\x93NUMPY`, a major and minor version byte, the header length (2 bytes in
//! version 1, 4 after), an ASCII Python dict literal with `descr`, `fortran_order` and
//! `shape`, padded with spaces and a newline, then the raw data.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::Table;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed `.npy` array: its shape and its values as `f64`, in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The `descr` string, e.g. `"<f8"` or `"|u1"`.
    pub descr: String,
    /// The values in C (row-major) order.
    pub values: Vec<f64>,
}

impl NpyArray {
    /// Whether the element type is an integer or boolean type.
    pub fn is_integer(&self) -> bool {
        matches!(self.descr.as_bytes().get(1), Some(b'i' | b'u' | b'b'))
    }

    /// Whether the element type is an unsigned 8-bit integer (8-bit image data).
    pub fn is_u8(&self) -> bool {
        self.descr.ends_with("u1")
    }

    /// The array as a table: the first axis is the rows, the others flattened in C order.
    pub fn into_table(self) -> Result<Table> {
        let rows = self.shape[0];
        let cols: usize = self.shape[1..].iter().product();
        if rows > 0 && cols == 0 {
            bail!("the array has shape {:?}: no columns", self.shape);
        }
        Ok(Table::new(rows, cols, self.values))
    }
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a readable .npy file", path.display()))
}

/// What a `.npy` header says: the array's shape and element type, and where its data start.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyHeader {
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The `descr` string, e.g. `"<f8"` or `"|u1"`.
    pub descr: String,
    /// Whether the data are in Fortran (column-major) order.
    pub fortran: bool,
    /// The byte offset of the data.
    pub data_offset: usize,
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl NpyHeader {
    /// The rows (the first axis).
    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    /// The columns (the other axes, flattened).
    pub fn cols(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// Bytes of the data (checked against overflow and the value limit).
    pub fn data_bytes(&self) -> Result<usize> {
        super::value_count(&self.shape)?
            .checked_mul(self.size)
            .ok_or_else(|| anyhow!("the shape {:?} is too large", self.shape))
    }
}

/// The most header bytes read (real headers are a few hundred).
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// Parses the header at the start of `bytes` (which may hold only the header).
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        bail!("missing the .npy magic string \\x93NUMPY");
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                bail!("truncated header");
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => bail!("unsupported .npy format version {v}"),
    };
    if header_len > MAX_HEADER_BYTES {
        bail!("the header claims {header_len} bytes, more than the {MAX_HEADER_BYTES} a .npy header can need");
    }
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| anyhow!("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| anyhow!("the header is not text"))?;
    if let Some(list) = dict_value(header, "descr").filter(|v| v.starts_with('[')) {
        let list = bracketed(list);
        bail!(
            "the dtype is structured (a record of fields): {list}; it is not read: convert it to \
             a plain numeric array first, e.g. \
             np.save(path, numpy.lib.recfunctions.structured_to_unstructured(arr, dtype=np.float64))"
        );
    }
    let descr = dict_value(header, "descr")
        .and_then(parse_str_literal)
        .ok_or_else(|| anyhow!("the header has no readable 'descr': {header:?}"))?;
    let fortran = match dict_value(header, "fortran_order").map(|v| v.trim_start()) {
        Some(v) if v.starts_with("True") => true,
        Some(v) if v.starts_with("False") => false,
        _ => bail!("the header has no readable 'fortran_order': {header:?}"),
    };
    let shape = dict_value(header, "shape")
        .and_then(parse_shape)
        .ok_or_else(|| anyhow!("the header has no readable 'shape': {header:?}"))?;
    if shape.is_empty() {
        bail!(
            "the array is 0-dimensional (one number, shape ()), not a data set; \
             save a 1-D or 2-D array with one row per sample, e.g. np.save(path, x.reshape(-1, 1))"
        );
    }
    let (kind, size, big_endian) = parse_descr(&descr)?;
    Ok(NpyHeader {
        shape,
        descr,
        fortran,
        data_offset: start + header_len,
        kind,
        size,
        big_endian,
    })
}

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<NpyArray> {
    let h = parse_header(bytes)?;
    let need = h.data_bytes()?;
    let data = &bytes[h.data_offset..];
    if data.len() < need {
        bail!(
            "truncated data: the shape {:?} of {} needs {need} bytes, the file has {}",
            h.shape,
            h.descr,
            data.len()
        );
    }
    let mut values = Vec::with_capacity(need / h.size);
    for chunk in data[..need].chunks_exact(h.size) {
        values.push(decode(chunk, h.kind, h.big_endian));
    }
    if h.fortran && h.shape.len() > 1 {
        values = fortran_to_c(&values, &h.shape);
    }
    Ok(NpyArray {
        shape: h.shape,
        descr: h.descr,
        values,
    })
}

/// Reads the header of the `.npy` file `path` (not its data).
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    use std::io::Read;
    let ctx = || format!("{} is not a readable .npy file", path.display());
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut head = Vec::new();
    f.take(12 + MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    parse_header(&head).with_context(ctx)
}

/// Reads the rows `rows` (increasing row numbers) of the C-order `.npy` file `path`
/// whose header is `h`, by offset: runs of consecutive rows in one read each, nothing
/// else. The table remembers each row's number in the file.
pub fn read_rows(path: &Path, h: &NpyHeader, rows: &[usize]) -> Result<Table> {
    use std::io::{Read, Seek, SeekFrom};
    let (n, cols) = (h.rows(), h.cols());
    if h.fortran && h.shape.len() > 1 {
        bail!(
            "{}: rows of a Fortran-order array are not contiguous; read it whole",
            path.display()
        );
    }
    let ctx = || format!("reading rows of {}", path.display());
    let mut f = std::fs::File::open(path).with_context(ctx)?;
    let len = f.metadata().with_context(ctx)?.len();
    let need = h.data_bytes()?;
    if len < (h.data_offset + need) as u64 {
        bail!(
            "{} is not a readable .npy file: truncated data: the shape {:?} of {} needs {need} bytes, the file has {}",
            path.display(),
            h.shape,
            h.descr,
            len.saturating_sub(h.data_offset as u64)
        );
    }
    if rows.windows(2).any(|w| w[0] >= w[1]) || rows.last().is_some_and(|&r| r >= n) {
        bail!(
            "{}: rows to read must increase and lie below {n}",
            path.display()
        );
    }
    let row_bytes = cols * h.size;
    let mut values = Vec::with_capacity(rows.len() * cols);
    let mut buf = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        // A run of consecutive rows, at most 8 MiB at a time.
        let mut j = i + 1;
        while j < rows.len() && rows[j] == rows[j - 1] + 1 && (j - i + 1) * row_bytes <= 8 << 20 {
            j += 1;
        }
        buf.resize((j - i) * row_bytes, 0);
        f.seek(SeekFrom::Start(
            (h.data_offset + rows[i] * row_bytes) as u64,
        ))
        .with_context(ctx)?;
        f.read_exact(&mut buf).with_context(ctx)?;
        values.extend(
            buf.chunks_exact(h.size)
                .map(|c| decode(c, h.kind, h.big_endian)),
        );
        i = j;
    }
    let mut t = Table::new(rows.len(), cols, values);
    t.file_rows = Some(rows.iter().map(|r| r + 1).collect());
    Ok(t)
}

/// The raw text of the value of `key` in the header dict (up to the end of the dict).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let pat = format!("{quote}{key}{quote}");
        if let Some(i) = header.find(&pat) {
            let rest = &header[i + pat.len()..];
            let colon = rest.find(':')?;
            return Some(rest[colon + 1..].trim_start());
        }
    }
    None
}

/// The bracketed list at the start of `v` (at most 200 characters of it).
fn bracketed(v: &str) -> String {
    let mut depth = 0i32;
    let mut end = v.len();
    for (i, c) in v.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => {
                depth -= 1;
                if depth == 0 {
                    end = i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let list = &v[..end];
    match list.char_indices().nth(200) {
        Some((i, _)) => format!("{} ...", &list[..i]),
        None => list.to_string(),
    }
}

fn parse_str_literal(v: &str) -> Option<String> {
    let q = v.chars().next()?;
    if q != '\'' && q != '"' {
        return None;
    }
    let end = v[1..].find(q)?;
    Some(v[1..1 + end].to_string())
}

fn parse_shape(v: &str) -> Option<Vec<usize>> {
    let v = v.strip_prefix('(')?;
    let end = v.find(')')?;
    v[..end]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().ok())
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

fn parse_descr(descr: &str) -> Result<(Kind, usize, bool)> {
    let b = descr.as_bytes();
    let (order, rest) = match b.first() {
        Some(c @ (b'<' | b'>' | b'|' | b'=')) => (*c, &descr[1..]),
        _ => (b'=', descr),
    };
    let big_endian = order == b'>' || (order == b'=' && cfg!(target_endian = "big"));
    let k_len = rest.chars().next().map_or(0, char::len_utf8);
    let (k, n) = rest.split_at(k_len);
    let size: Option<usize> = n.parse().ok();
    let bits = size.map_or(String::new(), |s| (8 * s).to_string());
    let as_f64 = "np.save(path, arr.astype(np.float64))";
    let kind = match (k, size) {
        ("f", Some(2 | 4 | 8)) => Kind::Float,
        ("i", Some(1 | 2 | 4 | 8)) => Kind::Int,
        ("u", Some(1 | 2 | 4 | 8)) => Kind::UInt,
        ("b", Some(1)) => Kind::Bool,
        ("f", Some(10 | 12 | 16)) | ("g", _) => bail!(
            "the dtype {descr:?} (numpy.longdouble, float{bits}) is not read: its layout differs \
             between machines (80-bit extended on x86, 128-bit IEEE on ARM), so it is refused \
             rather than guessed; save it as float64: {as_f64}"
        ),
        ("c" | "G", _) => bail!(
            "the dtype {descr:?} (complex{bits}) is not read: a density model needs real numbers; \
             save the real part, np.save(path, arr.real), or the real and imaginary parts as \
             columns, np.save(path, np.stack([arr.real, arr.imag], axis=-1))"
        ),
        ("O", _) => bail!(
            "the dtype {descr:?} (Python objects, pickled) is not read: unpickling can run code; \
             convert the array to numbers first: {as_f64}"
        ),
        ("U" | "S" | "a", _) => bail!(
            "the dtype {descr:?} (text) is not read; if the strings hold numbers, convert them: \
             {as_f64}"
        ),
        ("M", _) => bail!(
            "the dtype {descr:?} (datetime64) is not read; convert the dates to numbers, e.g. \
             seconds since 1970: np.save(path, arr.astype('datetime64[s]').astype(np.int64))"
        ),
        ("m", _) => bail!(
            "the dtype {descr:?} (timedelta64) is not read; convert the durations to numbers, \
             e.g. seconds: np.save(path, arr / np.timedelta64(1, 's'))"
        ),
        ("V", _) => bail!(
            "the dtype {descr:?} (raw bytes, void) is not read; save a numeric array: {as_f64}"
        ),
        _ => bail!(
            "the dtype {descr:?} is not read: expected float16/32/64, (unsigned) integers of 1 \
             to 8 bytes or bool; convert the array: {as_f64}"
        ),
    };
    Ok((kind, size.unwrap_or(1), big_endian))
}

/// An IEEE 754 binary16 (half precision) value, exactly.
fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let man = f64::from(h & 0x3ff);
    match exp {
        0 => sign * man * 2f64.powi(-24),
        31 if man == 0.0 => sign * f64::INFINITY,
        31 => f64::NAN,
        e => sign * (1.0 + man / 1024.0) * 2f64.powi(e - 15),
    }
}

fn decode(chunk: &[u8], kind: Kind, big_endian: bool) -> f64 {
    let mut buf = [0u8; 8];
    let n = chunk.len();
    buf[..n].copy_from_slice(chunk);
    if big_endian {
        buf[..n].reverse();
    }
    match (kind, n) {
        (Kind::Float, 2) => f16_to_f64(u16::from_le_bytes([buf[0], buf[1]])),
        (Kind::Float, 4) => f32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as f64,
        (Kind::Float, _) => f64::from_le_bytes(buf),
        (Kind::Bool, _) => f64::from(buf[0] != 0),
        (Kind::UInt, _) => u64::from_le_bytes(buf) as f64,
        (Kind::Int, _) => {
            // Sign-extend from n bytes.
            let shift = 64 - 8 * n as u32;
            ((i64::from_le_bytes(buf) << shift) >> shift) as f64
        }
    }
}

/// Reorders a Fortran-order (column-major) buffer of `shape` into C order.
fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let rank = shape.len();
    // Fortran strides: axis 0 varies fastest.
    let mut fstride = vec![1usize; rank];
    for a in 1..rank {
        fstride[a] = fstride[a - 1] * shape[a - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut idx = vec![0usize; rank];
    for _ in 0..values.len() {
        let off: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
        out.push(values[off]);
        // Advance the C-order multi-index (last axis fastest).
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    out
}

/// Encodes `values` (C order, `shape` of rank 1 or 2) as a version-1 `.npy` file of
/// little-endian `f8`, the header padded so the data starts at a multiple of 64 bytes.
pub fn encode_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        values.len(),
        "npy: shape and length differ"
    );
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_txt}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    let pad = (64 - unpadded % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + 8 * values.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + h.len() + 1) % 16 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn round_trip_f64() {
        let v = [1.5, -2.0, 3.25, 1e-300, f64::MAX, 0.0];
        let a = parse(&encode_f64(&[3, 2], &v)).unwrap();
        assert_eq!(a.shape, vec![3, 2]);
        assert_eq!(a.values, v);
        let bytes = encode_f64(&[3, 2], &v);
        let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(header_end % 64, 0);
        let one = parse(&encode_f64(&[6], &v)).unwrap();
        assert_eq!(one.shape, vec![6]);
    }

    #[test]
    fn integer_types_and_fortran_order() {
        // 2x3 int16 in Fortran order: columns (1,4), (2,5), (3,-6).
        let vals: [i16; 6] = [1, 4, 2, 5, 3, -6];
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&file("<i2", true, "(2, 3)", &data)).unwrap();
        assert_eq!(a.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.0]);
        let data: Vec<u8> = vec![0, 255, 7];
        let a = parse(&file("|u1", false, "(3,)", &data)).unwrap();
        assert_eq!(a.values, vec![0.0, 255.0, 7.0]);
        assert!(a.is_u8());
        let data: Vec<u8> = 2.5f32.to_be_bytes().to_vec();
        let a = parse(&file(">f4", false, "(1, 1)", &data)).unwrap();
        assert_eq!(a.values, vec![2.5]);
        let data: Vec<u8> = (-3i64).to_le_bytes().to_vec();
        assert_eq!(
            parse(&file("<i8", false, "(1,)", &data)).unwrap().values,
            vec![-3.0]
        );
    }

    #[test]
    fn fortran_rank3() {
        // shape (2, 2, 2): C index (i, j, k) holds 100 i + 10 j + k.
        let shape = [2, 2, 2];
        let mut f = vec![0.0; 8];
        for i in 0..2 {
            for j in 0..2 {
                for k in 0..2 {
                    f[i + 2 * j + 4 * k] = (100 * i + 10 * j + k) as f64;
                }
            }
        }
        let c = fortran_to_c(&f, &shape);
        assert_eq!(c, vec![0.0, 1.0, 10.0, 11.0, 100.0, 101.0, 110.0, 111.0]);
    }

    #[test]
    fn errors() {
        assert!(parse(b"not a numpy file").is_err());
        let e = parse(&file("<c16", false, "(1,)", &[0; 16])).unwrap_err();
        assert!(e.to_string().contains("(complex128) is not read"), "{e}");
        let e = parse(&file("<f8", false, "(4,)", &[0; 8])).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn half_precision_both_endians() {
        // 1.0, -2.5, the smallest subnormal, 65504 (the largest), +inf.
        let bits: [u16; 5] = [0x3C00, 0xC100, 0x0001, 0x7BFF, 0x7C00];
        let want = [1.0, -2.5, 2f64.powi(-24), 65504.0, f64::INFINITY];
        let le: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let be: Vec<u8> = bits.iter().flat_map(|b| b.to_be_bytes()).collect();
        assert_eq!(
            parse(&file("<f2", false, "(5,)", &le)).unwrap().values,
            want
        );
        assert_eq!(
            parse(&file(">f2", false, "(5,)", &be)).unwrap().values,
            want
        );
        assert!(f16_to_f64(0x7E00).is_nan());
        assert_eq!(f16_to_f64(0x8000).to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn refusals_name_the_dtype_and_the_fix() {
        for (descr, needle) in [
            ("<f16", "numpy.longdouble, float128"),
            ("<c8", "complex64) is not read"),
            ("|O", "pickled"),
            ("<U5", "(text)"),
            ("|S5", "(text)"),
            ("<M8[ns]", "datetime64"),
            ("<m8[s]", "timedelta64"),
            ("|V8", "void"),
            ("<q", "is not read: expected float16/32/64"),
        ] {
            let e = parse(&file(descr, false, "(1,)", &[0; 16]))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(needle) && e.contains("np.save(path"),
                "{descr}: {e}"
            );
        }
        let h = "{'descr': [('x', '<f8'), ('y', '<i4')], 'fortran_order': False, 'shape': (2,), }";
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&(h.len() as u16).to_le_bytes());
        b.extend_from_slice(h.as_bytes());
        let e = parse(&b).unwrap_err().to_string();
        assert!(
            e.contains("structured (a record of fields): [('x', '<f8'), ('y', '<i4')];")
                && e.contains("structured_to_unstructured"),
            "{e}"
        );
        let e = parse(&file("<f8", false, "()", &[0; 8]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("0-dimensional") && e.contains("reshape(-1, 1)"),
            "{e}"
        );
    }
}

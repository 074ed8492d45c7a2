//! The built-in `digits` data set: 1797 handwritten digits as 8x8 images with pixel
//! values 0..16 (the UCI optical digits test set as scikit-learn ships it), embedded in
//! the binary. See `data/DIGITS-LICENSE.txt` for its source, attribution and licence.

use std::io::Read;

use anyhow::{ensure, Context, Result};

use super::Table;

/// The gzip-compressed CSV, copied unchanged from scikit-learn: 65 columns per row, the
/// 64 pixels then the label.
pub static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The licence and attribution text shipped with the data.
pub static DIGITS_LICENSE: &str = include_str!("../../data/DIGITS-LICENSE.txt");

/// Rows in the data set.
pub const ROWS: usize = 1797;
/// Pixels per image.
pub const COLS: usize = 64;
/// Image height and width.
pub const SIDE: usize = 8;
/// Quantisation levels of a pixel: values 0..=16.
pub const LEVELS: u32 = 17;

/// The 1797 x 64 pixel table (labels dropped).
pub fn load() -> Result<Table> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .context("decompressing the built-in digits")?;
    let full = super::csv::parse(&text)
        .context("parsing the built-in digits")?
        .table;
    ensure!(
        full.rows == ROWS && full.cols == COLS + 1,
        "the built-in digits have shape {}x{}, expected {ROWS}x{}",
        full.rows,
        full.cols,
        COLS + 1
    );
    Ok(Table::from_fn(ROWS, COLS, |i, j| full.get(i, j)))
}

/// The class labels 0..9 (the last column), for completeness.
pub fn labels() -> Result<Vec<u8>> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ).read_to_string(&mut text)?;
    let full = super::csv::parse(&text)?.table;
    Ok((0..full.rows).map(|i| full.get(i, COLS) as u8).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_range() {
        let t = load().unwrap();
        assert_eq!((t.rows, t.cols), (1797, 64));
        assert!(t
            .values
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
        assert_eq!(t.values.iter().cloned().fold(0.0, f64::max), 16.0);
        let l = labels().unwrap();
        assert_eq!(l.len(), 1797);
        assert_eq!(l[0], 0);
    }
}

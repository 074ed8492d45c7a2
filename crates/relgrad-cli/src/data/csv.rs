//! Numeric CSV tables: one sample per line, one feature per column.
//!
//! - The delimiter is a comma, or a tab or semicolon when the first line has no comma,
//!   or runs of spaces when it has none of these.
//! - An optional header: the first line is a header when none of its cells is a number.
//! - Blank lines and lines starting with `#` are skipped.
//! - A cell that is not a number is an error naming its line, row and column; so is a
//!   row with the wrong number of cells. `nan` and `inf` parse (and are rejected later,
//!   with their row, by the finiteness check).
//! - A `.gz` file is decompressed first.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Table;

/// A CSV file's table and its header (if it had one).
#[derive(Clone, Debug)]
pub struct CsvTable {
    /// The numbers.
    pub table: Table,
    /// The column names, when the file had a header.
    pub header: Option<Vec<String>>,
    /// The (one-based) line of each row.
    pub lines: Vec<usize>,
}

/// Reads a numeric CSV file (optionally gzip-compressed).
pub fn read(path: &Path) -> Result<CsvTable> {
    let mut raw = Vec::new();
    super::idx::open_maybe_gz(path)?
        .take(super::MAX_TEXT_BYTES + 1)
        .read_to_end(&mut raw)
        .with_context(|| format!("{}: cannot read or decompress (gzip)", path.display()))?;
    if raw.len() as u64 > super::MAX_TEXT_BYTES {
        bail!(
            "{}: more than {} bytes of text (after decompression), the limit of a CSV file; store large data as .npy",
            path.display(),
            super::MAX_TEXT_BYTES
        );
    }
    let text = String::from_utf8(raw)
        .with_context(|| format!("{}: not a UTF-8 text file", path.display()))?;
    parse(&text).with_context(|| format!("cannot read {} as a numeric CSV table", path.display()))
}

fn split<'a>(line: &'a str, delim: Option<char>) -> Box<dyn Iterator<Item = &'a str> + 'a> {
    match delim {
        Some(d) => Box::new(line.split(d).map(str::trim)),
        None => Box::new(line.split_whitespace()),
    }
}

fn parse_number(cell: &str) -> Option<f64> {
    let c = cell.trim_matches('"').trim();
    c.parse::<f64>().ok()
}

/// Parses CSV text into a table (see the module docs for the rules).
pub fn parse(text: &str) -> Result<CsvTable> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((first_no, first)) = lines.next() else {
        bail!("the file has no data rows");
    };
    let delim = [',', '\t', ';'].into_iter().find(|&d| first.contains(d));
    let first_cells: Vec<&str> = split(first, delim).collect();
    let header = if first_cells.iter().all(|c| parse_number(c).is_none()) {
        Some(
            first_cells
                .iter()
                .map(|c| c.trim_matches('"').to_string())
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let cols = first_cells.len();
    let mut values = Vec::new();
    let mut row_lines = Vec::new();
    let mut rows = 0usize;
    let data_lines: Box<dyn Iterator<Item = (usize, &str)>> = if header.is_some() {
        Box::new(lines)
    } else {
        Box::new(std::iter::once((first_no, first)).chain(lines))
    };
    for (line_no, line) in data_lines {
        rows += 1;
        row_lines.push(line_no);
        let mut n = 0usize;
        for (j, cell) in split(line, delim).enumerate() {
            n += 1;
            if j >= cols {
                continue;
            }
            match parse_number(cell) {
                Some(v) => values.push(v),
                None if cell.is_empty() => bail!(
                    "line {line_no} (data row {rows}), column {}: the cell is empty; expected a number",
                    j + 1
                ),
                None => bail!(
                    "line {line_no} (data row {rows}), column {}: expected a number, found {cell:?}",
                    j + 1
                ),
            }
        }
        if n != cols {
            bail!("line {line_no} (data row {rows}) has {n} cells; expected {cols} like the first line");
        }
    }
    if rows == 0 {
        bail!("the file has a header but no data rows");
    }
    Ok(CsvTable {
        table: Table::new(rows, cols, values),
        header,
        lines: row_lines,
    })
}

/// Formats a table as CSV text with an optional header line. Numbers are written with
/// Rust's shortest round-trip formatting, so reading the file back gives the same `f64`s.
pub fn format(header: Option<&[String]>, rows: usize, cols: usize, values: &[f64]) -> String {
    let mut out = String::new();
    if let Some(h) = header {
        out.push_str(&h.join(","));
        out.push('\n');
    }
    for i in 0..rows {
        for j in 0..cols {
            if j > 0 {
                out.push(',');
            }
            let v = values[i * cols + j];
            if v.is_nan() {
                out.push_str("nan");
            } else {
                out.push_str(&format!("{v}"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_delimiters() {
        let t = parse("a,b\n1,2\n3,4.5\n").unwrap();
        assert_eq!(
            t.header.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
        assert_eq!((t.table.rows, t.table.cols), (2, 2));
        assert_eq!(t.table.values, vec![1.0, 2.0, 3.0, 4.5]);
        let t = parse("1 2 3\n4 5 6\n\n# comment\n").unwrap();
        assert_eq!((t.table.rows, t.table.cols), (2, 3));
        let t = parse("1;2\r\n3;4\r\n").unwrap();
        assert_eq!(t.table.values, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn errors_name_row_and_column() {
        let e = parse("x,y\n1,2\n3,abc\n").unwrap_err().to_string();
        assert!(
            e.contains("line 3 (data row 2), column 2") && e.contains("\"abc\""),
            "{e}"
        );
        let e = parse("1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("line 2 (data row 2) has 1 cells"), "{e}");
        let e = parse("1,2\n3,\n").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn round_trip() {
        let v = [0.1, -2.5e-300, 1.0 / 3.0, 7.0];
        let text = format(Some(&["p".into(), "q".into()]), 2, 2, &v);
        assert_eq!(parse(&text).unwrap().table.values, v);
    }
}

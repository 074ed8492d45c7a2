//! Numeric text tables (`.csv`, `.tsv`, `.txt`, also `.gz`): one sample per line, one
//! feature per column, read as spreadsheets and other tools export them.
//!
//! - **Encoding** ([`text::decode`](super::text::decode)): UTF-8 with or without a
//!   byte-order mark; UTF-16 LE or BE with a byte-order mark (Excel's "Unicode text",
//!   pandas' `encoding="utf-16"`), or without one when the text is plain ASCII; bytes that
//!   are not UTF-8 (Latin-1, Windows-1252, as older tools write header names) are read as
//!   Windows-1252, with a note. UTF-32 is refused.
//! - **Lines** end with `\n`, `\r\n` or a lone `\r` (old Mac Excel); they are numbered as
//!   the file numbers them. Blank lines, lines of only delimiters (Excel's empty rows) and
//!   lines starting with `#` (but not `#N/A`) are skipped.
//! - **Delimiter**: the tab, semicolon or comma (in that order of preference) that
//!   appears outside quotes as many times on each of the first ten lines; when none does,
//!   the first of them found in the first line; else runs of blanks, when the first line
//!   has several cells; the second line decides when the first is a single cell
//!   ([`Delim::detect`](super::text::records::Delim::detect)).
//! - **Quoting** (RFC 4180, as Excel and Python's `csv` write it): a cell in double quotes
//!   may hold the delimiter, line breaks and doubled quotes; blanks around cells are
//!   dropped.
//! - **Header**: the first line is a header when none of its cells is a number (so a
//!   header of numbers, `1,2,3`, is read as data). Only one header line is read: a second
//!   line with no number right after it is refused, naming its line (delete the extra
//!   lines or start them with `#`). A first header cell that is empty over a column that
//!   holds the row numbers (`0, 1, 2, ...` or `1, 2, 3, ...`) is the index pandas' `to_csv`
//!   and R's `write.csv` write by default, and is refused, saying how to leave it out.
//! - **Trailing delimiter**: when the first line ends with a delimiter (an empty last cell,
//!   as some exporters write), that empty column is dropped, and so are empty cells past
//!   the table's width at the end of any line.
//! - **Cells** ([`text::number`](super::text::number)): numbers as Rust reads them
//!   (`1e5`, `+1.5`, `.5`, `5.`, `inf`, `-inf`), missing-value markers (`nan`, `NA`,
//!   `#N/A`, `null`, ...) as NaN, which training refuses by row; in files not delimited by
//!   commas, decimal commas (European Excel's `1,5;2,25`), one decimal separator per file.
//!   Refused: empty cells, thousands separators, percentages, spreadsheet errors.
//! - **Errors** name the line, the data row and the column, then what to do:
//!   `line 7 (data row 5), column 2: the cell is empty; fill it in ...`; [`read`] puts
//!   the file's name before them.

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::text::decode;
use super::text::number::NumberReader;
use super::text::records::{Delim, Record, Scanner};
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
    /// What the reader assumed and the user should know (for example that the file was
    /// not UTF-8 and was read as Windows-1252).
    pub notes: Vec<String>,
}

/// Reads a numeric text table (optionally gzip-compressed).
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
    let d = decode::decode_vec(raw)
        .with_context(|| format!("cannot read {} as a numeric CSV table", path.display()))?;
    parse_text(&d.text, d.note.into_iter().collect())
        .with_context(|| format!("cannot read {} as a numeric CSV table", path.display()))
}

/// Decodes a text file's bytes ([`text::decode`](super::text::decode)) and parses them.
pub fn parse_bytes(bytes: &[u8]) -> Result<CsvTable> {
    let d = decode::decode(bytes)?;
    parse_text(&d.text, d.note.into_iter().collect())
}

/// Parses CSV text into a table (see the module docs for the rules).
pub fn parse(text: &str) -> Result<CsvTable> {
    parse_text(text.strip_prefix('\u{feff}').unwrap_or(text), Vec::new())
}

/// Whether a line is a comment (`#`, but not a cell `#N/A`).
fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('#') && !t.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("#n/a"))
}

fn is_skipped(line: &str) -> bool {
    line.trim().is_empty() || is_comment(line)
}

/// The first ten lines that are neither blank nor comments (to find the delimiter).
fn first_lines(text: &str) -> Vec<&str> {
    let mut sc = Scanner::new(text);
    let mut out = Vec::new();
    while !sc.at_end() && out.len() < 10 {
        let l = sc.peek_line();
        if !is_skipped(l) {
            out.push(l);
        }
        sc.skip_line();
    }
    out
}

/// The records of the text that hold something.
struct Records<'a> {
    sc: Scanner<'a>,
    delim: Delim,
}

impl<'a> Records<'a> {
    fn next(&mut self) -> Result<Option<Record<'a>>> {
        loop {
            if self.sc.at_end() {
                return Ok(None);
            }
            if is_skipped(self.sc.peek_line()) {
                self.sc.skip_line();
                continue;
            }
            let r = self.sc.record(self.delim).map_err(|e| anyhow!(e))?;
            if !r.cells.iter().all(|c| c.is_bare_empty()) {
                return Ok(Some(r));
            }
        }
    }
}

/// Drops the empty cells at the end of a record beyond `width` cells.
fn drop_trailing_empty(r: &mut Record<'_>, width: usize) {
    while r.cells.len() > width && r.cells.last().is_some_and(|c| c.is_bare_empty()) {
        r.cells.pop();
    }
}

fn parse_text(text: &str, notes: Vec<String>) -> Result<CsvTable> {
    let delim = Delim::detect(&first_lines(text));
    let mut numbers = NumberReader::new(delim == Delim::Char(b','));
    let mut records = Records {
        sc: Scanner::new(text),
        delim,
    };
    let Some(mut first) = records.next()? else {
        bail!("the file has no data rows (only blank lines or comments); it needs one row of numbers per sample");
    };
    let trailing = delim != Delim::Blanks
        && first.cells.len() > 1
        && first.cells.last().is_some_and(|c| c.is_bare_empty());
    drop_trailing_empty(&mut first, 1);
    let cols = first.cells.len();
    let is_header = first.cells.iter().all(|c| !numbers.looks_numeric(&c.text));
    let header: Option<Vec<String>> = is_header.then(|| {
        first
            .cells
            .iter()
            .map(|c| c.text.trim().to_string())
            .collect()
    });
    let like = if is_header {
        format!("the header (line {})", first.line)
    } else {
        format!("line {}, the first row", first.line)
    };
    let hint = if trailing {
        format!(
            " (line {} ends with a {}, read as a trailing delimiter)",
            first.line,
            delim.name()
        )
    } else {
        String::new()
    };
    let header_line = first.line;
    let mut pending = (!is_header).then_some(first);
    let mut values = Vec::new();
    let mut row_lines = Vec::new();
    let mut rows = 0usize;
    loop {
        let mut rec = match pending.take() {
            Some(r) => r,
            None => match records.next()? {
                Some(r) => r,
                None => break,
            },
        };
        rows += 1;
        drop_trailing_empty(&mut rec, cols);
        if is_header && rows == 1 && rec.cells.iter().all(|c| !numbers.looks_numeric(&c.text)) {
            bail!(
                "line {} is a second header line (none of its cells is a number, like the header on line {header_line}); \
                 only one header line is read: delete the extra lines, or start them with '#'",
                rec.line
            );
        }
        let n = rec.cells.len();
        if n != cols {
            bail!(
                "line {} (data row {rows}) has {n} cells; expected {cols} like {like}{hint}; \
                 every row needs one cell per column: fill in or remove cells so the rows line up",
                rec.line
            );
        }
        for (j, cell) in rec.cells.iter().enumerate() {
            match numbers.read(&cell.text, rec.line, j + 1) {
                Ok(v) => values.push(v),
                Err(e) => bail!(
                    "line {} (data row {rows}), column {}: {}",
                    rec.line,
                    j + 1,
                    e.message()
                ),
            }
        }
        row_lines.push(rec.line);
    }
    if rows == 0 {
        bail!("the file has a header (line {header_line}) but no data rows; add rows of numbers below it");
    }
    if let Some(h) = &header {
        if cols > 1 && h[0].is_empty() {
            for start in [0.0, 1.0] {
                if (0..rows).all(|i| values[i * cols] == start + i as f64) {
                    bail!(
                        "line {header_line}, column 1: the column has no name and holds the row numbers {start}, {}, ...: \
                         it is the index that pandas' to_csv and R's write.csv write by default, not a feature; \
                         write the file without it (df.to_csv(path, index=False), write.csv(x, path, row.names = FALSE)) \
                         or delete the column",
                        start + 1.0
                    );
                }
            }
        }
    }
    Ok(CsvTable {
        table: Table::new(rows, cols, values),
        header,
        lines: row_lines,
        notes,
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

    fn values(text: &str) -> (usize, usize, Vec<f64>) {
        let t = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        (t.table.rows, t.table.cols, t.table.values)
    }

    fn err(text: &str) -> String {
        parse(text)
            .map(|t| format!("read {:?}", t.table.values))
            .unwrap_or_else(|e| e.to_string())
    }

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
        let e = err("x,y\n1,2\n3,abc\n");
        assert!(
            e.contains("line 3 (data row 2), column 2") && e.contains("\"abc\""),
            "{e}"
        );
        let e = err("1,2\n3\n");
        assert!(e.contains("line 2 (data row 2) has 1 cells"), "{e}");
        let e = err("1,2\n3,\n");
        assert!(
            e.contains("line 2 (data row 2), column 2: the cell is empty"),
            "{e}"
        );
    }

    #[test]
    fn spreadsheet_exports() {
        // Excel (comma, CRLF, quoted header names with doubled quotes and commas).
        let (r, c, v) = values("\u{feff}\"a \"\"x\"\"\",\"b, c\"\r\n\"1.5\",2\r\n3, 4 \r\n");
        assert_eq!((r, c, v), (2, 2, vec![1.5, 2.0, 3.0, 4.0]));
        assert_eq!(
            parse("\"a \"\"x\"\"\",b\n1,2\n").unwrap().header.unwrap()[0],
            "a \"x\""
        );
        // Old Mac Excel: lone CRs; line numbers follow them.
        assert_eq!(values("a,b\r1,2\r3,4\r").2, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(err("a,b\r1,2\r3,x\r").contains("line 3 (data row 2), column 2"));
        // European Excel: semicolons and decimal commas.
        assert_eq!(
            values("x;y\r\n1,5;2,25\r\n-3;1e-2\r\n").2,
            vec![1.5, 2.25, -3.0, 0.01]
        );
        // np.savetxt of European numbers, blank-delimited.
        assert_eq!(values("x y\n1,5 2,25\n").2, vec![1.5, 2.25]);
        // Excel's tab-separated text with decimal commas.
        assert_eq!(values("x\ty\n1,5\t2\n").2, vec![1.5, 2.0]);
        // Excel's empty rows and a trailing delimiter.
        assert_eq!(values("a,b,\n1,2,\n,,\n3,4,\n").2, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(values("1;2;\n3;4\n").2, vec![1.0, 2.0, 3.0, 4.0]);
        // Numbers as tools write them.
        assert_eq!(
            values("1e5,+1.5,.5,5.\n-2, 3 ,\u{2212}1,1E-05\n").2,
            vec![1e5, 1.5, 0.5, 5.0, -2.0, 3.0, -1.0, 1e-5]
        );
        let v = values("a,b\nNA,1\nnan,inf\n#N/A,-inf\n").2;
        assert!(v[0].is_nan() && v[2].is_nan() && v[4].is_nan());
        assert_eq!((v[3], v[5]), (f64::INFINITY, f64::NEG_INFINITY));
    }

    #[test]
    fn refusals_say_where_and_what_to_do() {
        let e = err("a,b\nunits,kg\n1,2\n");
        assert!(e.starts_with("line 2 is a second header line"), "{e}");
        assert!(e.contains("start them with '#'"), "{e}");
        let e = err(",a,b\n0,1.5,2\n1,2.5,3\n");
        assert!(
            e.starts_with("line 1, column 1: the column has no name"),
            "{e}"
        );
        assert!(e.contains("index=False"), "{e}");
        // An unnamed column that is not an index is data.
        assert_eq!(values(",a\n5,1\n7,2\n").2, vec![5.0, 1.0, 7.0, 2.0]);
        let e = err("x,y\n\"1,234.5\",2\n");
        assert!(
            e.contains("line 2 (data row 1), column 1") && e.contains("thousands separator"),
            "{e}"
        );
        let e = err("x,y\n\"1,5\",2\n");
        assert!(e.contains("comma-delimited"), "{e}");
        let e = err("x;y\n1,5;2\n2.5;3\n");
        assert!(e.contains("line 3 (data row 2), column 1: found \"2.5\" with a decimal point, but line 2, column 1"), "{e}");
        let e = err("x;y\n1.234,5;2\n");
        assert!(e.contains("thousands"), "{e}");
        let e = err("a,b,\n1,2,3\n");
        assert!(e.contains("read as a trailing delimiter"), "{e}");
        let e = err("a,b\n1,\"2\n");
        assert!(
            e.contains("line 2, column 2: a quoted cell opens here"),
            "{e}"
        );
        let e = err("a\n");
        assert!(e.contains("header (line 1) but no data rows"), "{e}");
        let e = err("\n# only a comment\n");
        assert!(e.contains("no data rows"), "{e}");
        let e = err("a,b\n1,#DIV/0!\n");
        assert!(e.contains("column 2: found the spreadsheet error"), "{e}");
    }

    #[test]
    fn bytes_in_other_encodings() {
        let mut b = vec![0xFF, 0xFE];
        b.extend(
            "x\ty\r\n1,5\t2\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        let t = parse_bytes(&b).unwrap();
        assert_eq!(t.table.values, vec![1.5, 2.0]);
        let t = parse_bytes(b"temp \xB0C,b\n1,2\n").unwrap();
        assert_eq!(t.header.unwrap()[0], "temp \u{b0}C");
        assert_eq!(t.notes.len(), 1);
    }

    #[test]
    fn round_trip() {
        let v = [0.1, -2.5e-300, 1.0 / 3.0, 7.0];
        let text = format(Some(&["p".into(), "q".into()]), 2, 2, &v);
        assert_eq!(parse(&text).unwrap().table.values, v);
    }
}

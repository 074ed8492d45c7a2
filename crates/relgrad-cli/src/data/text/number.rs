//! One cell to one number.
//!
//! Read: what Rust's `f64` parser reads (`1.5`, `+1.5`, `-.5`, `5.`, `1e5`, `1E-05`),
//! `inf`, `-inf`, `infinity` and the missing-value markers `nan`, `NaN`, `NA`, `N/A`,
//! `#N/A`, `null`, `NULL`, `None`, `<NA>` (read as NaN, which training refuses by row and
//! `score --skip-invalid` scores as NaN), a Unicode minus sign (U+2212), and, in files
//! not delimited by commas, a decimal comma (`1,5`). The file uses one decimal separator
//! throughout.
//!
//! Refused, each with what to do: empty cells; thousands separators (`1,234.5`,
//! `1.234,5`, `1 234`, `1'234`), which could be misread; a comma inside a cell of a
//! comma-delimited file; percentages; spreadsheet errors (`#DIV/0!`); numbers beyond the
//! range of `f64` (`1e400`); anything else that is not a number.

/// Why a cell is not a number: the problem and what to do, without the position.
#[derive(Clone, Debug, PartialEq)]
pub enum CellError {
    /// The cell is empty.
    Empty,
    /// A number written in a form that is refused (thousands separators, percentages,
    /// mixed decimal separators, out of range): the message.
    NumberLike(String),
    /// Not a number at all: the message.
    NotNumber(String),
}

impl CellError {
    /// The message (the problem and what to do).
    pub fn message(&self) -> String {
        match self {
            CellError::Empty => {
                "the cell is empty; fill it in (write NaN for a missing value) or remove the row"
                    .into()
            }
            CellError::NumberLike(m) | CellError::NotNumber(m) => m.clone(),
        }
    }
}

/// Whether the file's cells use a decimal point or a decimal comma, and the first cell
/// that showed it (line, column, text).
#[derive(Clone, Debug)]
struct Separator {
    comma: bool,
    line: usize,
    col: usize,
    cell: String,
}

/// Reads the cells of one file, keeping which decimal separator it uses.
#[derive(Clone, Debug)]
pub struct NumberReader {
    comma_delimited: bool,
    separator: Option<Separator>,
}

const MISSING: [&str; 9] = [
    "nan", "-nan", "+nan", "na", "n/a", "#n/a", "null", "none", "<na>",
];

impl NumberReader {
    /// A reader for a file whose delimiter is (or is not) a comma.
    pub fn new(comma_delimited: bool) -> Self {
        Self {
            comma_delimited,
            separator: None,
        }
    }

    /// Whether the file has shown a decimal comma.
    pub fn decimal_comma(&self) -> bool {
        self.separator.as_ref().is_some_and(|s| s.comma)
    }

    /// Whether `cell` reads as a number, or as a number in a refused form (what tells a
    /// header from data), without changing the reader.
    pub fn looks_numeric(&self, cell: &str) -> bool {
        matches!(
            self.clone().read(cell, 0, 0),
            Ok(_) | Err(CellError::NumberLike(_))
        )
    }

    /// Reads the cell at `line` and `col` (one-based; used to name the cell that set
    /// the file's decimal separator).
    pub fn read(&mut self, cell: &str, line: usize, col: usize) -> Result<f64, CellError> {
        let c = cell.trim();
        if c.is_empty() {
            return Err(CellError::Empty);
        }
        if let Ok(v) = c.parse::<f64>() {
            if v.is_infinite() && !c.to_ascii_lowercase().contains("inf") {
                return Err(CellError::NumberLike(format!(
                    "the number {c:?} is beyond the range of a 64-bit float (about 1.8e308); \
                     rescale that column"
                )));
            }
            if c.contains('.') {
                self.saw(false, c, line, col)?;
            }
            return Ok(v);
        }
        if MISSING.iter().any(|m| c.eq_ignore_ascii_case(m)) {
            return Ok(f64::NAN);
        }
        if c.starts_with('#') && (c.ends_with('!') || c.ends_with('?')) {
            return Err(CellError::NotNumber(format!(
                "found the spreadsheet error {c:?}; fix the formula in the sheet (or delete the \
                 row) and export again"
            )));
        }
        let digits = c.bytes().filter(u8::is_ascii_digit).count();
        let numberish = digits > 0
            && c.chars()
                .all(|ch| ch.is_ascii_digit() || "+-.,eE%' \u{2212}\u{a0}\u{202f}".contains(ch));
        if !numberish {
            return Err(CellError::NotNumber(format!(
                "expected a number, found {c:?}; replace it with a number, or remove the row \
                 (or the column)"
            )));
        }
        let thousands = || {
            CellError::NumberLike(format!(
                "found {c:?}, a number with a thousands separator, which is not read (it could \
                 be misread); export the numbers without thousands separators"
            ))
        };
        if let Some(p) = c.strip_suffix('%') {
            return Err(CellError::NumberLike(format!(
                "found the percentage {c:?}; export the column as plain numbers ({p}% is {})",
                p.trim()
                    .replace(',', ".")
                    .parse::<f64>()
                    .map_or("its value / 100".into(), |v| format!("{}", v / 100.0))
            )));
        }
        let inner_blank = c.contains([' ', '\'', '\u{a0}', '\u{202f}']);
        let commas = c.matches(',').count();
        if inner_blank || commas > 1 || (commas == 1 && c.contains('.')) {
            return Err(thousands());
        }
        let c = c.replace('\u{2212}', "-");
        if commas == 1 {
            if self.comma_delimited {
                return Err(CellError::NumberLike(format!(
                    "found {cell:?}, a comma inside a cell of a comma-delimited file: a decimal \
                     comma or a thousands separator; export with ';' as the delimiter for \
                     decimal commas, or without thousands separators",
                    cell = cell.trim()
                )));
            }
            let v = c.replace(',', ".").parse::<f64>().map_err(|_| {
                CellError::NotNumber(format!(
                    "expected a number, found {:?}; replace it with a number, or remove the row",
                    cell.trim()
                ))
            })?;
            self.saw(true, cell.trim(), line, col)?;
            return Ok(v);
        }
        match c.parse::<f64>() {
            Ok(v) => {
                if c.contains('.') {
                    self.saw(false, cell.trim(), line, col)?;
                }
                Ok(v)
            }
            Err(_) => Err(CellError::NotNumber(format!(
                "expected a number, found {:?}; replace it with a number, or remove the row \
                 (or the column)",
                cell.trim()
            ))),
        }
    }

    /// Records that a cell used a decimal comma (or point), refusing a mix.
    fn saw(&mut self, comma: bool, cell: &str, line: usize, col: usize) -> Result<(), CellError> {
        if self.comma_delimited {
            return Ok(());
        }
        match &self.separator {
            None => {
                self.separator = Some(Separator {
                    comma,
                    line,
                    col,
                    cell: cell.to_string(),
                });
                Ok(())
            }
            Some(s) if s.comma == comma => Ok(()),
            Some(s) => {
                let (this, that) = if comma {
                    ("a decimal comma", "a decimal point")
                } else {
                    ("a decimal point", "a decimal comma")
                };
                Err(CellError::NumberLike(format!(
                    "found {cell:?} with {this}, but line {}, column {} ({:?}) has {that}; use \
                     one decimal separator throughout the file (in a file with decimal commas a \
                     point could be a thousands separator)",
                    s.line, s.col, s.cell
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_people_write() {
        let mut r = NumberReader::new(true);
        for (s, v) in [
            ("1e5", 1e5),
            ("+1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            (" -2.25 ", -2.25),
            ("-inf", f64::NEG_INFINITY),
            ("inf", f64::INFINITY),
            ("\u{2212}3", -3.0),
        ] {
            assert_eq!(r.read(s, 1, 1), Ok(v), "{s}");
        }
        for s in ["NA", "NaN", "nan", "#N/A", "null", "None", "<NA>", "N/A"] {
            assert!(r.read(s, 1, 1).unwrap().is_nan(), "{s}");
        }
        assert_eq!(r.read("", 1, 1), Err(CellError::Empty));
    }

    #[test]
    fn decimal_commas_and_thousands() {
        let mut r = NumberReader::new(false);
        assert_eq!(r.read("1,5", 2, 1), Ok(1.5));
        assert_eq!(r.read("-2,25e-1", 2, 2), Ok(-0.225));
        assert_eq!(r.read("3", 3, 1), Ok(3.0));
        let e = r.read("2.5", 4, 1).unwrap_err().message();
        assert!(
            e.contains("\"2.5\" with a decimal point, but line 2, column 1 (\"1,5\")"),
            "{e}"
        );
        for s in ["1.234,5", "1 234", "1'234", "1,234,567", "1\u{a0}234,5"] {
            let e = NumberReader::new(false).read(s, 1, 1).unwrap_err();
            assert!(e.message().contains("thousands separator"), "{s}: {e:?}");
        }
        let e = NumberReader::new(true)
            .read("1,5", 1, 1)
            .unwrap_err()
            .message();
        assert!(e.contains("comma-delimited"), "{e}");
        let e = NumberReader::new(true)
            .read("1,234.5", 1, 1)
            .unwrap_err()
            .message();
        assert!(e.contains("thousands"), "{e}");
    }

    #[test]
    fn refusals_say_what_to_do() {
        let mut r = NumberReader::new(true);
        let m = |e: Result<f64, CellError>| e.unwrap_err().message();
        assert!(m(r.read("12%", 1, 1)).contains("12% is 0.12"));
        assert!(m(r.read("#DIV/0!", 1, 1)).contains("spreadsheet error"));
        assert!(m(r.read("1e400", 1, 1)).contains("beyond the range"));
        assert!(m(r.read("abc", 1, 1)).starts_with("expected a number, found \"abc\""));
        assert!(r.looks_numeric("1,5") && !r.looks_numeric("height") && !r.looks_numeric(""));
    }
}

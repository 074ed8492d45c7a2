//! Text to records of cells: lines ended by `\n`, `\r\n` or a lone `\r` (old Mac Excel),
//! cells split by one delimiter (`,`, `;`, tab) or by runs of blanks, and RFC 4180
//! quoting: a cell in double quotes may hold the delimiter, line breaks and doubled
//! quotes (`""` for `"`). Blanks around cells are dropped. Lines are numbered as the file
//! numbers them, from 1, whatever ends them.

use std::borrow::Cow;

/// How cells are separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delim {
    /// One character: `,`, `;` or a tab.
    Char(u8),
    /// Runs of spaces and tabs.
    Blanks,
}

impl Delim {
    /// The delimiter of a file whose first content lines are `lines` (up to ten of
    /// them): the tab, semicolon or comma that appears (outside quotes) as many times on
    /// each of these lines, in that order of preference; when none does (ragged lines, a
    /// single line), a tab, else a semicolon, else a comma found in the first line; runs
    /// of blanks when the first line has none of them but blanks between cells; the second
    /// line decides when the first is a single cell. A tab or semicolon wins over a comma
    /// because a comma can be a decimal separator in files delimited by them
    /// (`1,5;2,25`).
    pub fn detect(lines: &[&str]) -> Delim {
        const CANDIDATES: [u8; 3] = [b'\t', b';', b','];
        let counts: Vec<[usize; 3]> = lines
            .iter()
            .map(|line| {
                let mut n = [0usize; 3];
                let mut quoted = false;
                for b in line.bytes() {
                    match b {
                        b'"' => quoted = !quoted,
                        _ if !quoted => {
                            if let Some(k) = CANDIDATES.iter().position(|&c| c == b) {
                                n[k] += 1;
                            }
                        }
                        _ => {}
                    }
                }
                n
            })
            .collect();
        if counts.len() >= 2 {
            for k in 0..3 {
                let first = counts[0][k];
                if first > 0 && counts.iter().all(|n| n[k] == first) {
                    return Delim::Char(CANDIDATES[k]);
                }
            }
        }
        for (line, n) in lines.iter().zip(&counts).take(2) {
            if let Some(k) = n.iter().position(|&c| c > 0) {
                return Delim::Char(CANDIDATES[k]);
            }
            if line.split_whitespace().nth(1).is_some() {
                return Delim::Blanks;
            }
        }
        Delim::Blanks
    }

    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Delim::Char(b'\t') => "tab",
            Delim::Char(b';') => "semicolon",
            Delim::Char(b',') => "comma",
            Delim::Char(_) => "delimiter",
            Delim::Blanks => "blank",
        }
    }

    fn is(self, b: u8) -> bool {
        match self {
            Delim::Char(d) => b == d,
            Delim::Blanks => b == b' ' || b == b'\t',
        }
    }

    /// Whether `b` is a blank around cells (a tab is not, when it is the delimiter).
    fn is_blank(self, b: u8) -> bool {
        b == b' ' || (b == b'\t' && self != Delim::Char(b'\t'))
    }
}

/// A cell: its text (blanks around it and its quotes removed) and whether it was quoted.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell<'a> {
    /// The text.
    pub text: Cow<'a, str>,
    /// Whether it was in quotes.
    pub quoted: bool,
}

impl Cell<'_> {
    /// Whether the cell is empty and was not quoted (what a trailing delimiter leaves).
    pub fn is_bare_empty(&self) -> bool {
        !self.quoted && self.text.is_empty()
    }
}

/// A record: the (one-based) line it starts on, and its cells.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    /// The line it starts on.
    pub line: usize,
    /// Its cells.
    pub cells: Vec<Cell<'a>>,
}

/// Reads records one by one from text, keeping the line number.
#[derive(Clone, Debug)]
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// Whether all the text has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// The current line (one-based).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The rest of the current line, without its end.
    pub fn peek_line(&self) -> &'a str {
        let rest = &self.text[self.pos..];
        &rest[..rest.find(['\r', '\n']).unwrap_or(rest.len())]
    }

    /// Moves past the current line.
    pub fn skip_line(&mut self) {
        self.pos += self.peek_line().len();
        self.end_of_line();
    }

    /// At a line end (or the end of the text): moves past it.
    fn end_of_line(&mut self) {
        let b = self.text.as_bytes();
        match b.get(self.pos) {
            Some(b'\r') if b.get(self.pos + 1) == Some(&b'\n') => self.pos += 2,
            Some(b'\r' | b'\n') => self.pos += 1,
            _ => return,
        }
        self.line += 1;
    }

    /// Reads the record at the current position (which must not be at the end), and
    /// moves past its line end. An error is a message naming the line and column.
    pub fn record(&mut self, delim: Delim) -> Result<Record<'a>, String> {
        let b = self.text.as_bytes();
        let line = self.line;
        let at_eol = |pos: usize| matches!(b.get(pos), None | Some(b'\r' | b'\n'));
        let mut cells = Vec::new();
        loop {
            while b.get(self.pos).is_some_and(|&c| delim.is_blank(c)) {
                self.pos += 1;
            }
            if delim == Delim::Blanks && at_eol(self.pos) {
                break;
            }
            let col = cells.len() + 1;
            let cell = if b.get(self.pos) == Some(&b'"') {
                self.quoted(delim, col)?
            } else {
                let start = self.pos;
                while !at_eol(self.pos) && !delim.is(b[self.pos]) {
                    self.pos += 1;
                }
                let text = self.text[start..self.pos]
                    .trim_end_matches(|c: char| c.is_ascii() && delim.is_blank(c as u8));
                Cell {
                    text: Cow::Borrowed(text),
                    quoted: false,
                }
            };
            cells.push(cell);
            if delim != Delim::Blanks {
                if at_eol(self.pos) {
                    break;
                }
                self.pos += 1; // the delimiter
            }
        }
        self.end_of_line();
        Ok(Record { line, cells })
    }

    /// A quoted cell, from its opening quote to past its closing one.
    fn quoted(&mut self, delim: Delim, col: usize) -> Result<Cell<'a>, String> {
        let b = self.text.as_bytes();
        let opened = self.line;
        self.pos += 1;
        let mut seg = self.pos;
        let mut owned: Option<String> = None;
        let text = loop {
            match b.get(self.pos) {
                None => {
                    return Err(format!(
                        "line {opened}, column {col}: a quoted cell opens here and is never \
                         closed; add the closing quote (\") or remove the opening one"
                    ))
                }
                Some(b'"') if b.get(self.pos + 1) == Some(&b'"') => {
                    owned
                        .get_or_insert_with(String::new)
                        .push_str(&self.text[seg..=self.pos]);
                    self.pos += 2;
                    seg = self.pos;
                }
                Some(b'"') => {
                    let last = &self.text[seg..self.pos];
                    self.pos += 1;
                    break match owned {
                        Some(mut s) => {
                            s.push_str(last);
                            Cow::Owned(s)
                        }
                        None => Cow::Borrowed(last),
                    };
                }
                Some(b'\r' | b'\n') => self.end_of_line(),
                Some(_) => self.pos += 1,
            }
        };
        while b.get(self.pos).is_some_and(|&c| delim.is_blank(c)) {
            self.pos += 1;
        }
        match b.get(self.pos) {
            None | Some(b'\r' | b'\n') => {}
            Some(&c) if delim.is(c) => {}
            Some(_) => {
                return Err(format!(
                    "line {}, column {col}: text follows the closing quote of a quoted cell; \
                     quote the whole cell, and double any quote inside it (\"\")",
                    self.line
                ))
            }
        }
        Ok(Cell { text, quoted: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str, delim: Delim) -> Vec<(usize, Vec<String>)> {
        let mut s = Scanner::new(text);
        let mut out = Vec::new();
        while !s.at_end() {
            let r = s.record(delim).unwrap();
            out.push((r.line, r.cells.iter().map(|c| c.text.to_string()).collect()));
        }
        out
    }

    #[test]
    fn line_ends_quotes_and_blanks() {
        let comma = Delim::Char(b',');
        let r = records("a, \"b,\"\"c\"\"\" \r1,2\r\n3 ,4,\n", comma);
        assert_eq!(
            r,
            vec![
                (1, vec!["a".into(), "b,\"c\"".into()]),
                (2, vec!["1".into(), "2".into()]),
                (3, vec!["3".into(), "4".into(), "".into()]),
            ]
        );
        // A quoted cell across lines keeps the numbering.
        let r = records("\"x\r\ny\",z\r\n1,2\n", comma);
        assert_eq!(r[0], (1, vec!["x\r\ny".into(), "z".into()]));
        assert_eq!(r[1].0, 3);
        let r = records("  1\t 2   3\n", Delim::Blanks);
        assert_eq!(r[0].1, vec!["1", "2", "3"]);
        let r = records("1\t\t2\n", Delim::Char(b'\t'));
        assert_eq!(r[0].1, vec!["1", "", "2"]);
    }

    #[test]
    fn quote_errors_name_the_line() {
        let mut s = Scanner::new("1,2\n3,\"4\n5\n");
        s.skip_line();
        let e = s.record(Delim::Char(b',')).unwrap_err();
        assert!(
            e.starts_with("line 2, column 2: a quoted cell opens here"),
            "{e}"
        );
        let e = Scanner::new("\"a\"b,1\n")
            .record(Delim::Char(b','))
            .unwrap_err();
        assert!(
            e.starts_with("line 1, column 1: text follows the closing quote"),
            "{e}"
        );
    }

    #[test]
    fn delimiters() {
        assert_eq!(Delim::detect(&["a;b", "1,5;2"]), Delim::Char(b';'));
        assert_eq!(Delim::detect(&["x\ty", "1,5\t2"]), Delim::Char(b'\t'));
        assert_eq!(Delim::detect(&["\"a;b\",c"]), Delim::Char(b','));
        assert_eq!(Delim::detect(&["x", "1,2"]), Delim::Char(b','));
        assert_eq!(Delim::detect(&["1 2"]), Delim::Blanks);
        assert_eq!(Delim::detect(&["x y", "1,5 2,25"]), Delim::Blanks);
        // A semicolon in a header name does not outvote the commas of every line.
        assert_eq!(
            Delim::detect(&["\"m \"\"x\"\", kg\",height; cm", "1.5,2", "3,4"]),
            Delim::Char(b',')
        );
        assert_eq!(
            Delim::detect(&["a;b", "1,5;2", "3;4,25"]),
            Delim::Char(b';')
        );
        assert_eq!(Delim::detect(&["x", "1,5", "2,5"]), Delim::Char(b','));
    }
}

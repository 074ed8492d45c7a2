//! Reading text files as spreadsheets and other tools export them: the encoding
//! ([`decode`]), lines, delimiters and quoting ([`records`]), and numbers in cells
//! ([`number`]). The table-level rules (header, widths, messages) are in
//! [`super::csv`].

pub mod decode;
pub mod number;
pub mod records;

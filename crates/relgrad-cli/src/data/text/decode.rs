//! Bytes to text: UTF-8 (with or without a byte-order mark), UTF-16 in either byte order
//! (with a byte-order mark, as Excel's "Unicode text" and pandas' `encoding="utf-16"`
//! write it, or without one when the text is plainly ASCII in 16-bit units), and, for
//! bytes that are not UTF-8, Windows-1252 (the Latin-1 superset that Excel and older
//! Windows tools write), which is said in a note.

use anyhow::{bail, Result};

/// The encoding a text file was read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, without a byte-order mark.
    Utf8,
    /// UTF-8 after a byte-order mark (`EF BB BF`).
    Utf8Bom,
    /// UTF-16, little-endian.
    Utf16Le,
    /// UTF-16, big-endian.
    Utf16Be,
    /// Windows-1252, for bytes that are not UTF-8.
    Windows1252,
}

impl Encoding {
    /// The encoding's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 with a byte-order mark",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Windows1252 => "Windows-1252 (Latin-1)",
        }
    }
}

/// Decoded text, its encoding, and a note when the reading is a guess worth telling.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The text, without a byte-order mark.
    pub text: String,
    /// How it was decoded.
    pub encoding: Encoding,
    /// Said to the user (for example that bytes were not UTF-8).
    pub note: Option<String>,
}

/// Whether `head` (a file's first bytes) starts like UTF-16 text: a UTF-16 byte-order
/// mark, or ASCII characters in 16-bit units (every other byte zero).
pub fn looks_like_utf16(head: &[u8]) -> bool {
    (head.starts_with(&[0xFF, 0xFE]) && !head.starts_with(&[0xFF, 0xFE, 0, 0]))
        || head.starts_with(&[0xFE, 0xFF])
        || bomless_utf16(head).is_some()
}

/// BOM-less UTF-16: ASCII in 16-bit units in the first bytes (little-endian when the
/// zeros are the odd bytes).
fn bomless_utf16(bytes: &[u8]) -> Option<Encoding> {
    let head = &bytes[..bytes.len().min(256) & !1];
    if head.len() < 4 {
        return None;
    }
    let ascii = |b: u8| b != 0 && b < 0x80;
    let pairs = || head.chunks_exact(2);
    if pairs().all(|p| ascii(p[0]) && p[1] == 0) {
        Some(Encoding::Utf16Le)
    } else if pairs().all(|p| p[0] == 0 && ascii(p[1])) {
        Some(Encoding::Utf16Be)
    } else {
        None
    }
}

/// The one-based line of byte `offset` of `bytes` (`\n`, `\r\n` and a lone `\r` end a line).
fn line_of(bytes: &[u8], offset: usize) -> usize {
    let b = &bytes[..offset.min(bytes.len())];
    1 + b
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' || (c == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count()
}

/// Decodes a text file's bytes (see the module docs).
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    if bytes.starts_with(&[0xFF, 0xFE, 0, 0]) || bytes.starts_with(&[0, 0, 0xFE, 0xFF]) {
        bail!("the file is UTF-32 text, which is not read; save it as UTF-8 (or UTF-16)");
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, Encoding::Utf16Le);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, Encoding::Utf16Be);
    }
    if let Some(enc) = bomless_utf16(bytes) {
        return utf16(bytes, enc);
    }
    let (body, encoding) = match bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        Some(rest) => (rest, Encoding::Utf8Bom),
        None => (bytes, Encoding::Utf8),
    };
    match std::str::from_utf8(body) {
        Ok(s) => Ok(Decoded {
            text: s.to_string(),
            encoding,
            note: None,
        }),
        Err(e) => {
            let line = line_of(body, e.valid_up_to());
            Ok(Decoded {
                text: body.iter().map(|&b| windows_1252(b)).collect(),
                encoding: Encoding::Windows1252,
                note: Some(format!(
                    "line {line} has bytes that are not UTF-8: the file was read as {} text; \
                     this is harmless in a header's names (numbers are ASCII), but save the \
                     file as UTF-8 to keep them exact",
                    Encoding::Windows1252.name()
                )),
            })
        }
    }
}

/// [`decode`] of bytes it may keep: UTF-8 text (the usual case) becomes the `String`
/// without a copy.
pub fn decode_vec(mut bytes: Vec<u8>) -> Result<Decoded> {
    let encoding = if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Encoding::Utf8Bom
    } else {
        Encoding::Utf8
    };
    let utf8 = encoding == Encoding::Utf8Bom
        || !(looks_like_utf16(&bytes) || bytes.starts_with(&[0, 0, 0xFE, 0xFF]));
    if utf8 && std::str::from_utf8(&bytes).is_ok() {
        if encoding == Encoding::Utf8Bom {
            bytes.drain(..3);
        }
        let text = String::from_utf8(bytes).expect("checked to be UTF-8");
        return Ok(Decoded {
            text,
            encoding,
            note: None,
        });
    }
    decode(&bytes)
}

/// UTF-16 text (without its byte-order mark).
fn utf16(body: &[u8], encoding: Encoding) -> Result<Decoded> {
    let unit = |p: &[u8]| match encoding {
        Encoding::Utf16Be => u16::from_be_bytes([p[0], p[1]]),
        _ => u16::from_le_bytes([p[0], p[1]]),
    };
    let mut text = String::with_capacity(body.len() / 2);
    let mut line = 1usize;
    let mut prev_cr = false;
    for c in char::decode_utf16(body.chunks_exact(2).map(unit)) {
        match c {
            Ok(c) => {
                if (c == '\n' && !prev_cr) || c == '\r' {
                    line += 1;
                }
                prev_cr = c == '\r';
                text.push(c);
            }
            Err(e) => bail!(
                "line {line}: the {} text holds an unpaired surrogate (0x{:04X}), which is \
                 not a character; the file is damaged: export it again",
                encoding.name(),
                e.unpaired_surrogate()
            ),
        }
    }
    if body.len() % 2 == 1 {
        bail!(
            "line {line}: the {} text ends in half a character (an odd number of bytes); \
             the file is cut short: export it again",
            encoding.name()
        );
    }
    Ok(Decoded {
        text,
        encoding,
        note: None,
    })
}

/// The character of a Windows-1252 byte (the five unassigned bytes as Latin-1's controls).
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}',
        '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
        '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}',
        '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(s: &str, bom: bool) -> Vec<u8> {
        let mut b = if bom { vec![0xFF, 0xFE] } else { vec![] };
        b.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        b
    }

    #[test]
    fn encodings() {
        let d = decode(&utf16le("a\tb\r\n1,5\t2\r\n", true)).unwrap();
        assert_eq!(
            (d.text.as_str(), d.encoding),
            ("a\tb\r\n1,5\t2\r\n", Encoding::Utf16Le)
        );
        let d = decode(&utf16le("x,y\n1,2\n", false)).unwrap();
        assert_eq!(
            (d.text.as_str(), d.encoding),
            ("x,y\n1,2\n", Encoding::Utf16Le)
        );
        let mut be = vec![0xFE, 0xFF];
        be.extend("é,1\n".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be).unwrap().text, "é,1\n");
        let d = decode(b"\xEF\xBB\xBFx\n1\n").unwrap();
        assert_eq!((d.text.as_str(), d.encoding), ("x\n1\n", Encoding::Utf8Bom));
        for b in [
            &b"x\n1\n"[..],
            b"\xEF\xBB\xBFx\n1\n",
            b"\xFF\xFEx\x00",
            b"x\xE9\n",
        ] {
            let (a, o) = (decode(b).unwrap(), decode_vec(b.to_vec()).unwrap());
            assert_eq!((a.text, a.encoding, a.note), (o.text, o.encoding, o.note));
        }
        let d = decode(b"a\r\nd\xE9but,\x80\n1,2\n").unwrap();
        assert_eq!(d.text, "a\r\ndébut,€\n1,2\n");
        assert!(d.note.unwrap().starts_with("line 2 has bytes"));
    }

    #[test]
    fn damaged_utf16_is_refused_with_its_line() {
        let mut b = utf16le("1\r\n2\r\n", true);
        b.extend([0x00, 0xD8, b'3', 0]);
        let e = decode(&b).unwrap_err().to_string();
        assert!(
            e.starts_with("line 3: the UTF-16LE text holds an unpaired"),
            "{e}"
        );
        let mut b = utf16le("1\n2", true);
        b.push(b'3');
        let e = decode(&b).unwrap_err().to_string();
        assert!(e.starts_with("line 2:") && e.contains("odd number"), "{e}");
        let e = decode(&[0xFF, 0xFE, 0, 0, b'1', 0, 0, 0]).unwrap_err();
        assert!(e.to_string().contains("UTF-32"), "{e}");
        assert_eq!(line_of(b"a\rb\r\nc\nd", 7), 4);
    }
}

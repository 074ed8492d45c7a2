//! Data as people's tools write it, byte for byte: text tables as spreadsheets export
//! them (encodings, line ends, quoting, delimiters, decimal commas, header rows), `.npy`
//! files of every numeric dtype, byte order and memory order NumPy writes, and `.npz`
//! archives, stored and deflated. Each form is written by hand here and read through the
//! binary: `relgrad score` of a fixed model gives the same scores as for a plain `f8`
//! `.npy` file of the same values (each row's score depends only on that row's values).
//! Each refusal names the file, the position and what to do.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use predicates::prelude::*;
use relgrad_cli::data::npy;

/// Values every form can hold exactly (half precision and decimal text included).
const A: [[f64; 2]; 6] = [
    [1.5, -2.0],
    [0.25, 3.0],
    [-1.0, 0.5],
    [2.0, 1.25],
    [0.0, -0.75],
    [1.0, 2.5],
];

/// A model of two columns, trained for one epoch in `dir`.
fn model(dir: &Path) -> PathBuf {
    let run = dir.join("run");
    relgrad()
        .args([
            "train", "--data", "moons", "--n", "200", "--epochs", "1", "--quiet", "--out",
        ])
        .arg(&run)
        .assert()
        .success();
    run
}

/// The scores of `data` (a path or `FILE.npz:KEY`) under the model `run`.
fn scores(run: &Path, data: &str, extra: &[&str]) -> Vec<f64> {
    let out = run.with_file_name(format!("scores-{}.npy", scores_count()));
    score(run, data, &out).args(extra).assert().success();
    npy::read(&out).unwrap().values
}

fn scores_count() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The scores of the rows `rows` as a plain little-endian `f8` `.npy` file.
fn reference(run: &Path, rows: &[[f64; 2]]) -> Vec<f64> {
    let p = run.with_file_name(format!("ref-{}.npy", scores_count()));
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    std::fs::write(&p, npy::encode_f64(&[rows.len(), 2], &flat)).unwrap();
    scores(run, p.to_str().unwrap(), &[])
}

/// `relgrad score` of `data` fails (exit 1) with every needle on stderr, and no panic.
fn refused(run: &Path, data: &str, needles: &[&str]) {
    let out = run.with_file_name("refused.npy");
    let assert = score(run, data, &out).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{data}: expected {n:?} in:\n{stderr}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn utf16(s: &str, big_endian: bool) -> Vec<u8> {
    let mut b = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for u in s.encode_utf16() {
        b.extend(if big_endian {
            u.to_be_bytes()
        } else {
            u.to_le_bytes()
        });
    }
    b
}

/// A version-1 `.npy` file: the header as NumPy writes it, then `data`.
fn npy_file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((h.len() as u16).to_le_bytes());
    out.extend(h.as_bytes());
    out.extend(data);
    out
}

/// The values of `rows` in C or Fortran order, each encoded by `enc`.
fn encode(rows: &[[f64; 2]], fortran: bool, enc: impl Fn(f64) -> Vec<u8>) -> Vec<u8> {
    let order: Vec<f64> = if fortran {
        (0..2)
            .flat_map(|j| rows.iter().map(move |r| r[j]))
            .collect()
    } else {
        rows.iter().flatten().copied().collect()
    };
    order.into_iter().flat_map(enc).collect()
}

/// IEEE binary16 bits of a value that half precision holds exactly (normal or zero).
fn f16_bits(v: f64) -> u16 {
    if v == 0.0 {
        return 0;
    }
    let sign = if v < 0.0 { 0x8000 } else { 0 };
    let e = v.abs().log2().floor() as i32;
    let man = ((v.abs() / 2f64.powi(e) - 1.0) * 1024.0) as u16;
    sign | (((e + 15) as u16) << 10) | man
}

/// A ZIP archive as NumPy's `np.savez` (stored) or `np.savez_compressed` (deflated)
/// writes it: local headers with ZIP64 extra fields (`force_zip64`), a central directory,
/// and with `zip64_end` the ZIP64 end records too.
fn zip(members: &[(&str, Vec<u8>)], deflate: bool, zip64_end: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let method: u16 = if deflate { 8 } else { 0 };
    for (name, data) in members {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let body = if deflate {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.clone()
        };
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>, c: u32, s: u32, extra: u16| {
            v.extend(method.to_le_bytes());
            v.extend([0x00, 0x00, 0x21, 0x00]); // time and date
            v.extend(crc.sum().to_le_bytes());
            v.extend(c.to_le_bytes());
            v.extend(s.to_le_bytes());
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(extra.to_le_bytes());
        };
        out.extend(b"PK\x03\x04\x2d\x00\x00\x00");
        common(&mut out, u32::MAX, u32::MAX, 20);
        out.extend(name.as_bytes());
        out.extend([1, 0, 16, 0]);
        out.extend((data.len() as u64).to_le_bytes());
        out.extend((body.len() as u64).to_le_bytes());
        out.extend(&body);
        central.extend(b"PK\x01\x02\x2d\x03\x2d\x00\x00\x00");
        common(&mut central, body.len() as u32, data.len() as u32, 0);
        central.extend([0; 10]);
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u64;
    out.extend(&central);
    let n = members.len() as u64;
    if zip64_end {
        let z = out.len() as u64;
        out.extend(b"PK\x06\x06");
        out.extend(44u64.to_le_bytes());
        out.extend([0x2d, 0, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u64).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(b"PK\x06\x07\x00\x00\x00\x00");
        out.extend(z.to_le_bytes());
        out.extend(1u32.to_le_bytes());
    }
    out.extend(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend((n as u16).to_le_bytes());
    out.extend((n as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend((cd_offset as u32).to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[test]
fn text_as_spreadsheets_and_tools_export_it() {
    let dir = tmp();
    let run = model(dir.path());
    let want = reference(&run, &A);
    let excel_tab = "a\tb\r\n1,5\t-2\r\n0,25\t3\r\n-1\t0,5\r\n2\t1,25\r\n0\t-0,75\r\n1\t2,5\r\n";
    let forms: Vec<(&str, Vec<u8>)> = vec![
        // Excel "CSV UTF-8": a byte-order mark, CRLF, quoted header names holding the
        // delimiter and doubled quotes, quoted numbers.
        (
            "excel-utf8.csv",
            b"\xEF\xBB\xBF\"a\",\"b \"\"kg\"\", total\"\r\n\"1.5\",-2\r\n.25,3\r\n-1,0.5\r\n2,1.25\r\n0,-0.75\r\n1,2.5\r\n"
                .to_vec(),
        ),
        // Excel "Unicode text": UTF-16LE with a byte-order mark, tabs, CRLF, here in a
        // locale with decimal commas.
        ("excel-unicode.txt", utf16(excel_tab, false)),
        // UTF-16BE, commas, LF.
        (
            "utf16be.csv",
            utf16("x,y\n1.5,-2\n0.25,3\n-1,0.5\n2,1.25\n0,-0.75\n1,2.5\n", true),
        ),
        // Old Mac Excel: lone CRs.
        (
            "mac.csv",
            b"a,b\r1.5,-2\r0.25,3\r-1,0.5\r2,1.25\r0,-0.75\r1,2.5\r".to_vec(),
        ),
        // European Excel: semicolons, decimal commas, some cells quoted, blanks around.
        (
            "european.csv",
            b"a;b\r\n\"1,5\"; -2\r\n0,25 ;3\r\n-1;0,5\r\n2;1,25\r\n0;-0,75\r\n1;2,5\r\n".to_vec(),
        ),
        // A trailing delimiter on every line, and an empty row as Excel writes it.
        (
            "trailing.csv",
            b"a,b,\n1.5,-2,\n0.25,3,\n,,\n-1,0.5,\n2,1.25,\n0,-0.75,\n1,2.5,\n".to_vec(),
        ),
        // Numbers as tools write them, whitespace-separated, with comments (np.savetxt).
        (
            "savetxt.txt",
            b"# a b\n  +1.5e0   -2.\n2.5e-1 3\n-1 .5\n2.000000000000000000e+00 1.25\n0 -7.5E-1\n1 2.5\n"
                .to_vec(),
        ),
        // Python's csv with QUOTE_ALL.
        (
            "quote-all.csv",
            b"\"a\",\"b\"\n\"1.5\",\"-2\"\n\"0.25\",\"3\"\n\"-1\",\"0.5\"\n\"2\",\"1.25\"\n\"0\",\"-0.75\"\n\"1\",\"2.5\"\n"
                .to_vec(),
        ),
    ];
    for (name, bytes) in forms {
        let p = write(dir.path(), name, &bytes);
        assert_eq!(scores(&run, &p, &[]), want, "{name}");
    }
    // A header in Windows-1252 (not UTF-8): read, with a note.
    let p = write(
        dir.path(),
        "latin1.csv",
        b"temp \xB0C,b\n1.5,-2\n0.25,3\n-1,0.5\n2,1.25\n0,-0.75\n1,2.5\n",
    );
    let out = dir.path().join("latin1-scores.npy");
    score(&run, &p, &out)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "latin1.csv: line 1 has bytes that are not UTF-8: the file was read as Windows-1252",
        ));
    assert_eq!(npy::read(&out).unwrap().values, want);
    // Missing-value markers are NaN: scored as NaN with --skip-invalid.
    let p = write(
        dir.path(),
        "na.csv",
        b"a,b\n1.5,-2\n0.25,NA\n-1,0.5\n2,1.25\n#N/A,-0.75\n1,2.5\n",
    );
    let s = scores(&run, &p, &["--skip-invalid"]);
    for (i, (g, w)) in s.iter().zip(&want).enumerate() {
        if i == 1 || i == 4 {
            assert!(g.is_nan(), "row {i}: {g}");
        } else {
            assert_eq!(g, w, "row {i}");
        }
    }
}

#[test]
fn text_that_cannot_be_read_surely_is_refused_saying_where_and_what_to_do() {
    let dir = tmp();
    let run = model(dir.path());
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "empty.csv",
            b"a,b\r\n1,2\r\n3,\r\n".to_vec(),
            vec![
                "line 3 (data row 2), column 2: the cell is empty",
                "fill it in",
            ],
        ),
        (
            "thousands.csv",
            b"a;b\n1.234,5;2\n".to_vec(),
            vec![
                "line 2 (data row 1), column 1",
                "thousands separator",
                "without thousands separators",
            ],
        ),
        (
            "thousands-quoted.csv",
            b"a,b\n1,2\n\"1,234\",2\n".to_vec(),
            vec![
                "line 3 (data row 2), column 1",
                "comma-delimited",
                "';' as the delimiter",
            ],
        ),
        (
            "mixed.csv",
            b"a;b\n1,5;2\n3;2.5\n".to_vec(),
            vec![
                "line 3 (data row 2), column 2",
                "but line 2, column 1 (\"1,5\") has a decimal comma",
                "one decimal separator",
            ],
        ),
        (
            "two-headers.csv",
            b"name,mass\n,kg\n1,2\n".to_vec(),
            vec!["line 2 is a second header line", "start them with '#'"],
        ),
        (
            "index.csv",
            b",a,b\n0,1.5,2\n1,2.5,3\n2,0.5,1\n".to_vec(),
            vec!["line 1, column 1", "index", "index=False"],
        ),
        (
            "ragged.csv",
            b"a,b\n1,2\n3,4,5\n".to_vec(),
            vec!["line 3 (data row 2) has 3 cells; expected 2 like the header (line 1)"],
        ),
        (
            "quote.csv",
            b"a,b\n1,2\n3,\"4\n5,6\n".to_vec(),
            vec![
                "line 3, column 2: a quoted cell opens here and is never closed",
                "closing quote",
            ],
        ),
        (
            "word.csv",
            b"a,b\n1,2\n3,four\n".to_vec(),
            vec![
                "line 3 (data row 2), column 2: expected a number, found \"four\"",
                "replace it",
            ],
        ),
        (
            "percent.csv",
            b"a,b\n1,2\n3,50%\n".to_vec(),
            vec![
                "line 3 (data row 2), column 2: found the percentage \"50%\"",
                "50% is 0.5",
            ],
        ),
        (
            "damaged-utf16.csv",
            {
                let mut b = utf16("a,b\r\n1,2\r\n", false);
                b.extend([0x00, 0xDC, b'3', 0]);
                b
            },
            vec![
                "line 3: the UTF-16LE text holds an unpaired surrogate",
                "export it again",
            ],
        ),
    ];
    for (name, bytes, needles) in cases {
        let p = write(dir.path(), name, &bytes);
        let mut all = vec![name];
        all.extend(needles);
        refused(&run, &p, &all);
    }
}

#[test]
fn npy_of_every_numeric_dtype_byte_order_and_memory_order() {
    let dir = tmp();
    let run = model(dir.path());
    let ints: [[f64; 2]; 6] = [
        [1.0, -2.0],
        [0.0, 3.0],
        [-1.0, 5.0],
        [2.0, 1.0],
        [0.0, -7.0],
        [1.0, 2.0],
    ];
    let uints: [[f64; 2]; 6] = [
        [1.0, 2.0],
        [0.0, 3.0],
        [4.0, 5.0],
        [2.0, 1.0],
        [0.0, 7.0],
        [1.0, 2.0],
    ];
    let bools: [[f64; 2]; 6] = [
        [1.0, 0.0],
        [0.0, 1.0],
        [1.0, 1.0],
        [0.0, 0.0],
        [1.0, 0.0],
        [0.0, 1.0],
    ];
    let (want_a, want_i, want_u, want_b) = (
        reference(&run, &A),
        reference(&run, &ints),
        reference(&run, &uints),
        reference(&run, &bools),
    );
    type Enc = Box<dyn Fn(f64) -> Vec<u8>>;
    let floats: Vec<(&str, Enc)> = vec![
        ("<f2", Box::new(|v| f16_bits(v).to_le_bytes().to_vec())),
        (">f2", Box::new(|v| f16_bits(v).to_be_bytes().to_vec())),
        ("<f4", Box::new(|v| (v as f32).to_le_bytes().to_vec())),
        (">f4", Box::new(|v| (v as f32).to_be_bytes().to_vec())),
        (">f8", Box::new(|v| v.to_be_bytes().to_vec())),
    ];
    for (descr, enc) in &floats {
        for fortran in [false, true] {
            let p = write(
                dir.path(),
                "f.npy",
                &npy_file(descr, fortran, "(6, 2)", &encode(&A, fortran, enc)),
            );
            assert_eq!(scores(&run, &p, &[]), want_a, "{descr} fortran {fortran}");
        }
    }
    // A rank-3 array: the other axes flattened into the columns.
    let p = write(
        dir.path(),
        "r3.npy",
        &npy_file(
            "<f8",
            false,
            "(6, 1, 2)",
            &encode(&A, false, |v| v.to_le_bytes().to_vec()),
        ),
    );
    assert_eq!(scores(&run, &p, &[]), want_a);
    for width in [1usize, 2, 4, 8] {
        for big in [false, true] {
            let bo = if width == 1 {
                '|'
            } else if big {
                '>'
            } else {
                '<'
            };
            let bytes = move |v: i64| {
                let b = v.to_le_bytes()[..width].to_vec();
                if big {
                    b.into_iter().rev().collect()
                } else {
                    b
                }
            };
            for fortran in [false, true] {
                let (i, u) = (format!("{bo}i{width}"), format!("{bo}u{width}"));
                let p = write(
                    dir.path(),
                    "i.npy",
                    &npy_file(
                        &i,
                        fortran,
                        "(6, 2)",
                        &encode(&ints, fortran, |v| bytes(v as i64)),
                    ),
                );
                assert_eq!(scores(&run, &p, &[]), want_i, "{i} fortran {fortran}");
                let p = write(
                    dir.path(),
                    "u.npy",
                    &npy_file(
                        &u,
                        fortran,
                        "(6, 2)",
                        &encode(&uints, fortran, |v| bytes(v as i64)),
                    ),
                );
                assert_eq!(scores(&run, &p, &[]), want_u, "{u} fortran {fortran}");
            }
        }
    }
    let p = write(
        dir.path(),
        "b.npy",
        &npy_file(
            "|b1",
            true,
            "(6, 2)",
            &encode(&bools, true, |v| vec![v as u8]),
        ),
    );
    assert_eq!(scores(&run, &p, &[]), want_b);
}

#[test]
fn npy_dtypes_without_a_numeric_reading_are_refused_naming_the_dtype_and_the_fix() {
    let dir = tmp();
    let run = model(dir.path());
    let cases: [(&str, &str, &str, usize, &[&str]); 9] = [
        (
            "c.npy",
            "<c16",
            "(6, 2)",
            16,
            &["\"<c16\" (complex128)", "arr.real"],
        ),
        (
            "ld.npy",
            "<f16",
            "(6, 2)",
            16,
            &["numpy.longdouble", "arr.astype(np.float64)"],
        ),
        (
            "o.npy",
            "|O",
            "(2,)",
            0,
            &["pickled", "arr.astype(np.float64)"],
        ),
        (
            "u.npy",
            "<U3",
            "(6, 2)",
            12,
            &["\"<U3\" (text)", "arr.astype(np.float64)"],
        ),
        ("s.npy", "|S3", "(6, 2)", 3, &["\"|S3\" (text)"]),
        (
            "dt.npy",
            "<M8[ns]",
            "(6, 2)",
            8,
            &["datetime64", "astype(np.int64)"],
        ),
        (
            "td.npy",
            "<m8[s]",
            "(6, 2)",
            8,
            &["timedelta64", "np.timedelta64(1, 's')"],
        ),
        (
            "scalar.npy",
            "<f8",
            "()",
            8,
            &["0-dimensional", "reshape(-1, 1)"],
        ),
        (
            "cut.npy",
            "<f2",
            "(6, 2)",
            1,
            &["truncated data", "needs 24 bytes"],
        ),
    ];
    for (name, descr, shape, size, needles) in cases {
        let p = write(
            dir.path(),
            name,
            &npy_file(descr, false, shape, &vec![0u8; size * 12]),
        );
        let mut all = vec![name];
        all.extend(needles);
        refused(&run, &p, &all);
    }
    let mut rec = b"\x93NUMPY\x01\x00".to_vec();
    let h = "{'descr': [('x', '<f8'), ('y', '<f8')], 'fortran_order': False, 'shape': (6,), }\n";
    rec.extend((h.len() as u16).to_le_bytes());
    rec.extend(h.as_bytes());
    rec.extend([0u8; 96]);
    let p = write(dir.path(), "rec.npy", &rec);
    refused(
        &run,
        &p,
        &[
            "rec.npy",
            "structured",
            "[('x', '<f8'), ('y', '<f8')]",
            "structured_to_unstructured",
        ],
    );
}

#[test]
fn npz_archives_stored_deflated_and_zip64_by_key() {
    let dir = tmp();
    let run = model(dir.path());
    let want = reference(&run, &A);
    let a = npy_file(
        "<f8",
        false,
        "(6, 2)",
        &encode(&A, false, |v| v.to_le_bytes().to_vec()),
    );
    let half = npy_file(
        "<f2",
        true,
        "(6, 2)",
        &encode(&A, true, |v| f16_bits(v).to_le_bytes().to_vec()),
    );
    let other = npy::encode_f64(&[3, 2], &[9.0; 6]);
    for deflate in [false, true] {
        for zip64_end in [false, true] {
            let one = write(
                dir.path(),
                "one.npz",
                &zip(&[("arr_0.npy", half.clone())], deflate, zip64_end),
            );
            assert_eq!(
                scores(&run, &one, &[]),
                want,
                "one array, deflate {deflate}"
            );
            let several = write(
                dir.path(),
                "splits.npz",
                &zip(
                    &[("train.npy", a.clone()), ("val.npy", other.clone())],
                    deflate,
                    zip64_end,
                ),
            );
            assert_eq!(scores(&run, &format!("{several}:train"), &[]), want);
            assert_eq!(scores(&run, &format!("{several}:val"), &[]).len(), 3);
            refused(
                &run,
                &several,
                &[
                    "splits.npz holds 2 arrays (train, val); select one with",
                    "splits.npz:KEY",
                    "--data",
                ],
            );
            refused(
                &run,
                &format!("{several}:test"),
                &["splits.npz has no array \"test\"; its arrays are: train, val"],
            );
        }
    }
    // Damage: a flipped data byte fails the CRC; a cut archive has no end record.
    let mut bytes = zip(&[("x.npy", a.clone())], false, false);
    let n = 30 + 5 + 20 + 128 + 3;
    bytes[n] ^= 0x40;
    let p = write(dir.path(), "crc.npz", &bytes);
    refused(&run, &p, &["crc.npz", "\"x\" (x.npy)", "CRC-32", "damaged"]);
    let good = zip(&[("x.npy", a)], true, false);
    let p = write(dir.path(), "cut.npz", &good[..good.len() - 40]);
    refused(&run, &p, &["cut.npz", "no end of central directory record"]);
    // Training takes a key as --data and --val.
    let splits = dir.path().join("splits.npz");
    relgrad()
        .args(["train", "--data"])
        .arg(format!("{}:train", splits.display()))
        .arg("--val")
        .arg(format!("{}:val", splits.display()))
        .args(["--test-fraction", "0", "--epochs", "1", "--quiet", "--out"])
        .arg(dir.path().join("run2"))
        .assert()
        .success();
}

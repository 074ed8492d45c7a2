//! The CSV reader on arbitrary bytes (`csv::parse_bytes`): encoding detection (UTF-8 with
//! or without a byte-order mark, UTF-16 in either byte order with or without one,
//! Windows-1252 for the rest), any line ending, decimal commas. An error, or a rectangular
//! table: values.len() == rows * cols, a header of `cols` names, one increasing line
//! number per row; never a panic. The decoding that `csv::read` uses on a file's bytes
//! (`decode_vec`, which keeps UTF-8 without a copy) must agree with `decode`'s.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad_cli::data::csv;
use relgrad_cli::data::text::decode;

fuzz_target!(|data: &[u8]| {
    match (decode::decode(data), decode::decode_vec(data.to_vec())) {
        (Ok(a), Ok(b)) => assert_eq!((a.text, a.encoding, a.note), (b.text, b.encoding, b.note)),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("decode {a:?}, decode_vec {b:?}"),
    }
    if let Ok(t) = csv::parse_bytes(data) {
        assert!(t.table.rows > 0 && t.table.cols > 0);
        assert_eq!(t.table.values.len(), t.table.rows * t.table.cols);
        if let Some(h) = &t.header {
            assert_eq!(h.len(), t.table.cols);
        }
        assert_eq!(t.lines.len(), t.table.rows);
        assert!(t.lines.windows(2).all(|w| w[0] < w[1]), "{:?}", t.lines);
    }
});

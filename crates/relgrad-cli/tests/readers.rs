//! Every data reader on arbitrary and on damaged bytes: an error or a table of the shape
//! it announces, never a panic. The fuzz targets (`fuzz/`) search the same property with
//! coverage guidance; these keep it in the ordinary test suite, and replay the committed
//! fuzz corpora.

#[path = "../../../fuzz/corpus.rs"]
mod corpus;

use corpus::corpus;
use proptest::prelude::*;
use relgrad_cli::data::{csv, idx, npy, npz};

fn check_npy(bytes: &[u8]) {
    if let Ok(a) = npy::parse(bytes) {
        assert_eq!(a.values.len(), a.shape.iter().product::<usize>());
        if let Ok(t) = a.into_table() {
            assert_eq!(t.values.len(), t.rows * t.cols);
        }
    }
}

fn check_idx(bytes: &[u8]) {
    if let Ok(a) = idx::parse(bytes) {
        assert_eq!(a.values.len(), a.shape.iter().product::<usize>());
        let t = a.into_table();
        assert_eq!(t.values.len(), t.rows * t.cols);
    }
}

fn check_csv(bytes: &[u8]) {
    if let Ok(t) = csv::parse(&String::from_utf8_lossy(bytes)) {
        assert!(t.table.rows > 0 && t.table.cols > 0);
        assert_eq!(t.table.values.len(), t.table.rows * t.table.cols);
        assert_eq!(t.lines.len(), t.table.rows);
    }
}

fn check_csv_bytes(bytes: &[u8]) {
    if let Ok(t) = csv::parse_bytes(bytes) {
        assert!(t.table.rows > 0 && t.table.cols > 0);
        assert_eq!(t.table.values.len(), t.table.rows * t.table.cols);
        assert_eq!(t.lines.len(), t.table.rows);
        assert!(t.lines.windows(2).all(|w| w[0] < w[1]), "{:?}", t.lines);
    }
}

fn check_npz(bytes: &[u8]) {
    for key in [None, Some("a")] {
        if let Ok((_, a)) = npz::read_bytes(bytes, key) {
            assert_eq!(a.values.len(), a.shape.iter().product::<usize>());
        }
    }
}

/// A valid file with some bytes overwritten, some cut off, or some appended.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = valid.len();
    (
        proptest::collection::vec((0..n, any::<u8>()), 0..8),
        0..=n,
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(move |(edits, keep, tail)| {
            let mut b = valid.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            b.truncate(keep);
            b.extend(tail);
            b
        })
}

fn valid_npy() -> Vec<u8> {
    npy::encode_f64(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
}

/// A stored `.npz` archive of one half-precision array `a` (2 x 2, Fortran order).
fn valid_npz() -> Vec<u8> {
    let h = "{'descr': '>f2', 'fortran_order': True, 'shape': (2, 2), }";
    let mut a = b"\x93NUMPY\x01\x00".to_vec();
    a.extend((h.len() as u16).to_le_bytes());
    a.extend(h.as_bytes());
    a.extend([0x3C, 0x00, 0xC1, 0x00, 0x00, 0x01, 0x7B, 0xFF]);
    let mut crc = flate2::Crc::new();
    crc.update(&a);
    let mut z = b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    z.extend(crc.sum().to_le_bytes());
    z.extend((a.len() as u32).to_le_bytes());
    z.extend((a.len() as u32).to_le_bytes());
    z.extend([5, 0, 0, 0]);
    z.extend(b"a.npy");
    z.extend(&a);
    let cd = z.len() as u32;
    z.extend(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend(crc.sum().to_le_bytes());
    z.extend((a.len() as u32).to_le_bytes());
    z.extend((a.len() as u32).to_le_bytes());
    z.extend([5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    z.extend(b"a.npy");
    let cd_len = z.len() as u32 - cd;
    z.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend(cd_len.to_le_bytes());
    z.extend(cd.to_le_bytes());
    z.extend([0, 0]);
    z
}

fn valid_idx() -> Vec<u8> {
    idx::encode_u8(&[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn npy_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_npy(&b);
    }

    #[test]
    fn npy_on_damaged_files(b in damaged(valid_npy())) {
        check_npy(&b);
    }

    #[test]
    fn idx_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_idx(&b);
    }

    #[test]
    fn idx_on_damaged_files(b in damaged(valid_idx())) {
        check_idx(&b);
    }

    #[test]
    fn csv_on_arbitrary_text(s in "[0-9a-z,;\t .#\"+\\-eE\n\r]{0,200}") {
        check_csv(s.as_bytes());
    }

    #[test]
    fn csv_bytes_on_arbitrary_text(s in "[0-9a-z,;\t .#\"+\\-eE\n\r%']{0,200}", utf16 in any::<bool>()) {
        if utf16 {
            let mut b = vec![0xFF, 0xFE];
            b.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
            check_csv_bytes(&b);
        } else {
            check_csv_bytes(s.as_bytes());
        }
    }

    #[test]
    fn csv_bytes_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_csv_bytes(&b);
    }

    #[test]
    fn npz_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_npz(&b);
    }

    #[test]
    fn npz_on_damaged_archives(b in damaged(valid_npz())) {
        check_npz(&b);
    }

    #[test]
    fn csv_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_csv(&b);
    }
}

#[test]
fn the_valid_archive_reads() {
    let (key, a) = npz::read_bytes(&valid_npz(), None).unwrap();
    assert_eq!(key, "a");
    assert_eq!(a.values, vec![1.0, 2f64.powi(-24), -2.5, 65504.0]);
}

#[test]
fn the_fuzz_corpora_replay_without_a_panic() {
    for b in corpus("npy") {
        check_npy(&b);
    }
    for b in corpus("idx") {
        check_idx(&b);
    }
    for b in corpus("csv") {
        check_csv_bytes(&b);
        if std::str::from_utf8(&b).is_ok() {
            check_csv(&b);
        }
    }
}

//! Every data reader on arbitrary and on damaged bytes: an error or a table of the shape
//! it announces, never a panic. The fuzz targets (`fuzz/`) search the same property with
//! coverage guidance; these keep it in the ordinary test suite, and replay the committed
//! fuzz corpora.

#[path = "../../../fuzz/corpus.rs"]
mod corpus;

use corpus::corpus;
use proptest::prelude::*;
use relgrad_cli::data::text::decode;
use relgrad_cli::data::{cifar, csv, idx, npy, npz, tar};

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

/// As the `csv_bytes` fuzz target: `decode` and `decode_vec` (what `csv::read` uses) agree,
/// and `parse_bytes` gives an error or a rectangular table.
fn check_csv_bytes(bytes: &[u8]) {
    match (decode::decode(bytes), decode::decode_vec(bytes.to_vec())) {
        (Ok(a), Ok(b)) => assert_eq!((a.text, a.encoding, a.note), (b.text, b.encoding, b.note)),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("decode {a:?}, decode_vec {b:?}"),
    }
    if let Ok(t) = csv::parse_bytes(bytes) {
        assert!(t.table.rows > 0 && t.table.cols > 0);
        assert_eq!(t.table.values.len(), t.table.rows * t.table.cols);
        if let Some(h) = &t.header {
            assert_eq!(h.len(), t.table.cols);
        }
        assert_eq!(t.lines.len(), t.table.rows);
        assert!(t.lines.windows(2).all(|w| w[0] < w[1]), "{:?}", t.lines);
    }
}

/// As the `npz` fuzz target: the only array, and the seeds' keys `a` and `arr_1`.
fn check_npz(bytes: &[u8]) {
    for key in [None, Some("a"), Some("arr_1")] {
        if let Ok((k, a)) = npz::read_bytes(bytes, key) {
            if let Some(key) = key {
                assert_eq!(k, key);
            }
            assert_eq!(a.values.len(), a.shape.iter().product::<usize>());
            if let Ok(t) = a.into_table() {
                assert_eq!(t.values.len(), t.rows * t.cols);
            }
        }
    }
}

/// As the `tar` fuzz target: each regular file gives at most the bytes its header
/// announces, and is read as a CIFAR-10 batch (whole records of 3072 pixels of 0 to 255).
fn check_tar(bytes: &[u8]) {
    let _ = tar::for_each_file(&mut &bytes[..], "t.tar", |e| {
        let announced = cifar::record_count(&e.path, e.size);
        let mut content = Vec::new();
        e.content.read_to_end(&mut content)?;
        assert!(content.len() as u64 <= e.size);
        let whole = content.len() as u64 == e.size;
        if let (Ok(records), true) = (announced, whole) {
            if let Ok(n) = cifar::check_batch(&e.path, &content) {
                assert_eq!(n, records);
                let mut values = Vec::new();
                cifar::append_pixels(&content, &mut values);
                assert_eq!(values.len(), n * cifar::PIXELS);
                assert!(values.iter().all(|v| (0.0..=255.0).contains(v)));
            }
        }
        Ok(())
    });
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

/// A tar archive of a CIFAR-10 batch of one record and a small other file.
fn valid_tar() -> Vec<u8> {
    let mut batch = vec![7u8];
    batch.extend((0..cifar::PIXELS).map(|i| (i % 256) as u8));
    let mut out = Vec::new();
    for (name, data) in [("d/data_batch_1.bin", &batch[..]), ("d/x.txt", b"x")] {
        out.extend(tar::header(name, data.len() as u64));
        out.extend(data);
        out.resize(out.len().div_ceil(tar::BLOCK) * tar::BLOCK, 0);
    }
    out.extend([0u8; 2 * tar::BLOCK]);
    out
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
    fn tar_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..1100)) {
        check_tar(&b);
    }

    #[test]
    fn tar_on_damaged_archives(b in damaged(valid_tar())) {
        check_tar(&b);
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
    for b in corpus("csv_bytes") {
        check_csv_bytes(&b);
        check_csv(&b);
    }
    for b in corpus("npz") {
        check_npz(&b);
    }
    for b in corpus("tar") {
        check_tar(&b);
    }
}

#[test]
fn the_seeds_read() {
    // The hand-made seeds are valid files: they must keep reading, or the fuzzer starts
    // from errors only.
    let seeds = |target: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
            })
            .collect();
        v.sort();
        assert!(!v.is_empty(), "{target}: no seeds");
        v.into_iter()
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
    };
    for (p, b) in seeds("csv_bytes") {
        csv::parse_bytes(&b).unwrap_or_else(|e| panic!("{p}: {e:#}"));
    }
    for (p, b) in seeds("npz") {
        let read = [None, Some("a"), Some("arr_1")]
            .into_iter()
            .filter(|&k| npz::read_bytes(&b, k).is_ok())
            .count();
        assert!(read > 0, "{p}: no array reads");
    }
    let mut batches = 0;
    for (p, b) in seeds("tar") {
        let mut files = 0;
        tar::for_each_file(&mut &b[..], &p, |e| {
            files += 1;
            if e.file_name() == "data_batch_1.bin" {
                let mut v = Vec::new();
                e.content.read_to_end(&mut v)?;
                cifar::check_batch(&e.path, &v)?;
                batches += 1;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{p}: {e:#}"));
        assert!(files > 0, "{p}: no files");
    }
    assert_eq!(batches, 1);
}

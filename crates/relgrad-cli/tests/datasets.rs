//! The paper's data sets in the CLI: CIFAR-10 from its binary batches (directory or
//! `.tar.gz`), directories of prepared splits, and `relgrad datasets`' listing of them.

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use relgrad_cli::data::{split, split_sharded, Loaded, Source, SplitSpec};

const PIXELS: usize = 3072;
const RECORD: usize = 3073;

/// Pixel `i` of record `j` of batch `k` (0 for the test batch).
fn pixel(k: usize, j: usize, i: usize) -> u8 {
    ((k * 31 + j * 7 + i * 3 + i / 1024) % 256) as u8
}

/// A batch file's bytes: `n` records of batch `k`, labels `j % 10`.
fn batch(k: usize, n: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(n * RECORD);
    for j in 0..n {
        b.push((j % 10) as u8);
        b.extend((0..PIXELS).map(|i| pixel(k, j, i)));
    }
    b
}

/// The six batch files as distributed (7 records per training batch, 4 in the test one).
fn batch_files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = (1..=5)
        .map(|k| (format!("data_batch_{k}.bin"), batch(k, 7)))
        .collect();
    v.push(("test_batch.bin".into(), batch(0, 4)));
    v
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A ustar header, written out field by field (independently of relgrad's reader).
fn ustar(name: &str, size: usize, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mut put = |at: usize, s: String| h[at..at + s.len()].copy_from_slice(s.as_bytes());
    put(100, "0000644\0".into());
    put(108, "0001750\0".into());
    put(116, "0001750\0".into());
    put(124, format!("{size:011o}\0"));
    put(136, "14567434156\0".into());
    put(148, "        ".into());
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar archive as the CIFAR-10 binary archive lays it out.
fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&ustar("cifar-10-batches-bin/", 0, b'5'));
    let mut entries = vec![("batches.meta.txt".to_string(), b"airplane\n".to_vec())];
    entries.extend(files.iter().cloned());
    entries.push(("readme.html".into(), b"<html></html>".to_vec()));
    for (name, bytes) in &entries {
        let path = format!("cifar-10-batches-bin/{name}");
        t.extend_from_slice(&ustar(&path, bytes.len(), b'0'));
        t.extend_from_slice(bytes);
        t.resize(t.len().div_ceil(512) * 512, 0);
    }
    t.extend_from_slice(&[0u8; 1024]);
    t
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn load(path: &Path) -> Loaded {
    Source::parse(path.to_str().unwrap(), 2000, 0)
        .unwrap()
        .load()
        .unwrap()
}

fn spec(val_fraction: f64) -> SplitSpec {
    SplitSpec {
        seed: 0,
        val_fraction,
        test_fraction: 0.1,
        val: None,
        test: None,
    }
}

#[test]
fn cifar_from_a_directory_its_parent_or_the_archive() {
    let dir = tmp();
    let batches = dir.path().join("cifar-10-batches-bin");
    write_dir(&batches, &batch_files());
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    std::fs::write(&archive, gzip(&tar(&batch_files()))).unwrap();
    let l = load(&batches);
    let t = &l.main.table;
    assert_eq!((t.rows, t.cols), (35, PIXELS));
    // Batches in order, records in order, pixels in the file's (channel-major) order.
    assert_eq!(t.get(0, 0), pixel(1, 0, 0) as f64);
    assert_eq!(t.get(8, 1500), pixel(2, 1, 1500) as f64);
    assert_eq!(t.get(34, PIXELS - 1), pixel(5, 6, PIXELS - 1) as f64);
    let img = l.main.image.unwrap();
    assert_eq!((img.height, img.width), (96, 32));
    assert_eq!(l.main.levels, Some(256));
    let test = l.test.as_ref().unwrap();
    assert_eq!(test.table.rows, 4);
    assert_eq!(test.table.get(3, 7), pixel(0, 3, 7) as f64);
    for other in [dir.path(), archive.as_path()] {
        let m = load(other);
        assert_eq!(m.main.table, l.main.table, "{}", other.display());
        assert_eq!(m.test.unwrap().table, test.table);
    }
    // The paper's split: validation held out of the training images, test_batch as test.
    let s = split(l, &spec(1.0 / 7.0)).unwrap();
    assert_eq!(s.train.table.rows, 30);
    assert_eq!(s.val.as_ref().unwrap().rows, 5);
    assert_eq!(s.test.as_ref().unwrap().rows, 4);
    assert_eq!(s.test_origin, "test_batch");
    // The distributed reader agrees (the archive is read whole, not as a .npy file).
    let source = Source::parse(archive.to_str().unwrap(), 2000, 0).unwrap();
    let sh = split_sharded(&source, &spec(1.0 / 7.0), 0, 1).unwrap();
    assert_eq!(sh.totals(), (30, 5, 4));
    assert_eq!(sh.train.table, s.train.table);
    assert_eq!(sh.test_origin, "test_batch");
}

/// The error of `relgrad train --data DATA` (into a run directory that is thrown away).
fn train_err(data: &Path) -> String {
    let runs = tmp();
    let run = runs.path().join("run");
    let out = relgrad()
        .args(quick_train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    String::from_utf8(out).unwrap()
}

#[test]
fn damaged_cifar_files_are_refused_by_file_and_record() {
    let dir = tmp();
    let d = dir.path().join("cifar");
    let mut files = batch_files();
    files[2].1.truncate(7 * RECORD - 10);
    write_dir(&d, &files);
    let e = train_err(&d);
    assert!(
        e.contains("data_batch_3.bin")
            && e.contains("record 7 is truncated (3063 of its 3073 bytes)"),
        "{e}"
    );
    // A label byte above 9 (say, CIFAR-100's two label bytes).
    let mut files = batch_files();
    files[4].1[2 * RECORD] = 57;
    write_dir(&d, &files);
    let e = train_err(&d);
    assert!(
        e.contains("data_batch_5.bin: record 3 has the label byte 57"),
        "{e}"
    );
    // A missing batch.
    write_dir(&d, &batch_files());
    std::fs::remove_file(d.join("data_batch_4.bin")).unwrap();
    let e = train_err(&d);
    assert!(e.contains("data_batch_4.bin is missing"), "{e}");
    // An archive cut short inside a batch.
    let a = dir.path().join("cut.tar.gz");
    let full = tar(&batch_files());
    // Header blocks: the directory, batches.meta.txt (+1 block), then data_batch_1.bin.
    std::fs::write(&a, gzip(&full[..512 * 4 + 2 * RECORD + 100])).unwrap();
    let e = train_err(&a);
    assert!(
        e.contains("cut.tar.gz: cifar-10-batches-bin/data_batch_1.bin")
            && e.contains("record 3 is truncated (100 of its 3073 bytes)"),
        "{e}"
    );
    // The Python version is recognised and refused with a hint.
    let py = dir.path().join("py/cifar-10-batches-py");
    std::fs::create_dir_all(&py).unwrap();
    std::fs::write(py.join("data_batch_1"), b"\x80\x02pickle").unwrap();
    let e = train_err(py.parent().unwrap());
    assert!(
        e.contains("Python version") && e.contains("binary version"),
        "{e}"
    );
}

/// A `uint8` `.npy` file of `shape`.
fn npy_u8(path: &Path, shape: &[usize], seed: usize) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!(
        "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}), }}",
        dims.join(", ") + if shape.len() == 1 { "," } else { "" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    let n: usize = shape.iter().product();
    b.extend((0..n).map(|i| ((i * 37 + seed * 11 + i / 5) % 256) as u8));
    std::fs::write(path, b).unwrap();
}

fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    v.sort();
    v
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_prepared_directory_is_its_three_files() {
    let dir = tmp();
    let p = dir.path().join("prepared");
    std::fs::create_dir(&p).unwrap();
    let (train, val, test) = (p.join("train.npy"), p.join("val.npy"), p.join("test.npy"));
    npy_u8(&train, &[80, 2, 2, 3], 1);
    npy_u8(&val, &[15, 2, 2, 3], 2);
    npy_u8(&test, &[12, 2, 2, 3], 3);
    let run = dir.path().join("run");
    let model = run.join("model.safetensors");
    relgrad()
        .args(quick_train_args(arg(&p), arg(&run)))
        .assert()
        .success();
    let data = meta_json(&model, "data");
    assert_eq!(data["source"]["kind"], "prepared", "{data}");
    assert_eq!(
        data["rows"],
        serde_json::json!({"train": 80, "val": 15, "test": 12})
    );
    assert_eq!(data["test_origin"], "file");
    assert_eq!(data["levels"], 256);
    let image = meta_json(&model, "image");
    assert_eq!(
        (image["height"].as_u64(), image["width"].as_u64()),
        (Some(2), Some(6))
    );
    // The same run as the three files given one by one.
    let run_files = dir.path().join("run-files");
    relgrad()
        .args(quick_train_args(arg(&train), arg(&run_files)))
        .args(["--val", arg(&val), "--test", arg(&test)])
        .assert()
        .success();
    assert_eq!(
        tensors(&model),
        tensors(&run_files.join("model.safetensors"))
    );
    // eval rebuilds the parts from the recorded directory, and reproduces the test
    // numbers of the training run.
    let eval = |part: &str| -> serde_json::Value {
        let out = stdout_of(relgrad().args(["eval", arg(&run), "--json", "--split", part]));
        serde_json::from_str(out.trim()).unwrap()
    };
    let t = eval("test");
    assert_eq!(t["n"], 12);
    let saved = meta_json(&model, "metrics");
    assert_eq!(t["ll_mean"], saved["test"]["ll_mean"], "{saved}");
    assert_eq!(eval("val")["n"], 15);
    assert_eq!(eval("train")["n"], 80);
    // score --split test writes one line per test row.
    let scores = dir.path().join("scores.csv");
    score(&run, arg(&p), &scores)
        .args(["--split", "test"])
        .assert()
        .success();
    let lines = std::fs::read_to_string(&scores).unwrap().lines().count();
    assert!((12..=13).contains(&lines), "{lines} lines");
}

#[test]
fn a_prepared_directory_without_val_or_test_holds_them_out() {
    let dir = tmp();
    npy_u8(&dir.path().join("train.npy"), &[80, 3, 5, 5], 1);
    let l = load(dir.path());
    let img = l.main.image.unwrap();
    // Channels first: the planes stacked.
    assert_eq!((img.height, img.width, l.main.levels), (15, 5, Some(256)));
    let s = split(l, &spec(0.1)).unwrap();
    assert_eq!(
        (
            s.train.table.rows,
            s.val.unwrap().rows,
            s.test.unwrap().rows
        ),
        (64, 8, 8)
    );
    assert_eq!(s.test_origin, "fraction");
    // The distributed reader takes the files too.
    npy_u8(&dir.path().join("val.npy"), &[6, 3, 5, 5], 2);
    let source = Source::parse(arg(dir.path()), 2000, 0).unwrap();
    assert!(source
        .describe()
        .ends_with("(prepared: train.npy, val.npy)"));
    let sh = split_sharded(&source, &spec(0.1), 0, 1).unwrap();
    assert_eq!(sh.totals(), (72, 6, 8));
    // A part of another width is refused, naming its file.
    npy_u8(&dir.path().join("test.npy"), &[6, 5, 5], 2);
    let e = train_err(dir.path());
    assert!(
        e.contains("test.npy: 25 columns, but") && e.contains("train.npy has 75"),
        "{e}"
    );
}

#[test]
fn datasets_lists_the_new_generators_and_the_papers_sets() {
    let out = stdout_of(relgrad().arg("datasets"));
    for s in [
        "smile",
        "trimodal2",
        "cifar10",
        "cs.toronto.edu/~kriz/cifar.html",
        "zenodo.org/record/1161203",
        "python -m relgrad.datasets prepare power SRC OUT",
        "bsds300",
        "train-images-idx3-ubyte",
    ] {
        assert!(out.contains(s), "{s} missing: {out}");
    }
    let json = stdout_of(relgrad().args(["datasets", "--json"]));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let named = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap().clone();
    assert_eq!(named("smile")["kind"], "generator");
    let c = named("cifar10");
    assert_eq!(
        (c["kind"].as_str(), c["cols"].as_u64()),
        (Some("paper"), Some(3072))
    );
    assert_eq!(
        (c["rows"].as_u64(), c["test_rows"].as_u64()),
        (Some(50000), Some(10000))
    );
    for (name, cols) in [
        ("power", 6),
        ("gas", 8),
        ("hepmass", 21),
        ("miniboone", 43),
        ("bsds300", 63),
    ] {
        let r = named(name);
        assert_eq!(r["cols"], cols);
        assert!(r["read"].as_str().unwrap().contains("prepare"), "{r}");
    }
    // The new generators train like the others.
    let dir = tmp();
    relgrad()
        .args(quick_train_args("smile", arg(&dir.path().join("run"))))
        .args(["--n", "300", "--layers", "2", "--activation", "tanh-linear"])
        .assert()
        .success();
}

//! `relgrad datasets`: the built-in data set, the generators, and the paper's data sets
//! (where to get them and how to pass them), with sizes and licences.

use anyhow::Result;
use serde_json::json;

use crate::cli::DatasetsArgs;
use crate::data::{digits, generators};

/// One of the paper's data sets: read from its publisher's files.
struct PaperSet {
    /// The name (as `python -m relgrad.datasets prepare` takes it).
    name: &'static str,
    /// Columns.
    cols: usize,
    /// Rows as distributed, when fixed: training and test.
    rows: Option<(usize, usize)>,
    /// What it is.
    what: &'static str,
    /// How to pass it to relgrad (alternatives, one a line).
    read: &'static [&'static str],
    /// Where to get the publisher's files.
    get: &'static str,
}

const MAF: &str = "the MAF data, https://zenodo.org/record/1161203 (data.tar.gz)";

const PAPER: [PaperSet; 7] = [
    PaperSet {
        name: "cifar10",
        cols: 3072,
        rows: Some((50000, 10000)),
        what: "32x32 colour images, 8-bit (256 levels); test set: test_batch, 10000 images",
        read: &["--data cifar-10-binary.tar.gz, or the unpacked cifar-10-batches-bin/ or its parent"],
        get: "https://www.cs.toronto.edu/~kriz/cifar.html (the CIFAR-10 binary version)",
    },
    PaperSet {
        name: "mnist",
        cols: 784,
        rows: Some((60000, 10000)),
        what: "28x28 handwritten digits, 8-bit (256 levels); test set: t10k, 10000 images",
        read: &[
            "--data DIR of train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz]",
            "or prepare with `python -m relgrad.datasets prepare mnist SRC OUT`, then --data OUT",
        ],
        get: "https://yann.lecun.com/exdb/mnist/ (mirror: https://storage.googleapis.com/cvdf-datasets/mnist/)",
    },
    PaperSet {
        name: "power",
        cols: 6,
        rows: None,
        what: "UCI household electric power consumption, as MAF preprocessed it",
        read: &["prepare with `python -m relgrad.datasets prepare power SRC OUT`, then --data OUT"],
        get: MAF,
    },
    PaperSet {
        name: "gas",
        cols: 8,
        rows: None,
        what: "UCI gas sensor array (ethylene and CO), as MAF preprocessed it",
        read: &["prepare with `python -m relgrad.datasets prepare gas SRC OUT`, then --data OUT"],
        get: MAF,
    },
    PaperSet {
        name: "hepmass",
        cols: 21,
        rows: None,
        what: "UCI HEPMASS particle collisions, as MAF preprocessed it",
        read: &["prepare with `python -m relgrad.datasets prepare hepmass SRC OUT`, then --data OUT"],
        get: MAF,
    },
    PaperSet {
        name: "miniboone",
        cols: 43,
        rows: None,
        what: "UCI MiniBooNE particle identification, as MAF preprocessed it",
        read: &["prepare with `python -m relgrad.datasets prepare miniboone SRC OUT`, then --data OUT"],
        get: MAF,
    },
    PaperSet {
        name: "bsds300",
        cols: 63,
        rows: None,
        what: "8x8 patches of the Berkeley BSDS300 images, one pixel dropped, as MAF made them",
        read: &["prepare with `python -m relgrad.datasets prepare bsds300 SRC OUT`, then --data OUT"],
        get: MAF,
    },
];

const PAPER_LICENCE: &str = "the publisher's terms (not redistributed with relgrad)";

/// Runs `relgrad datasets`.
pub fn run(args: DatasetsArgs) -> Result<()> {
    if args.license {
        print!("{}", digits::DIGITS_LICENSE);
        return Ok(());
    }
    let digits_licence = "CC BY 4.0 (UCI ML Repository, Alpaydin & Kaynak 1998), redistributed from scikit-learn (BSD-3-Clause)";
    if args.json {
        println!(
            "{}",
            json!({
                "name": "digits", "kind": "built-in", "rows": digits::ROWS, "cols": digits::COLS,
                "image": [digits::SIDE, digits::SIDE], "levels": digits::LEVELS,
                "description": "8x8 handwritten digits, pixel values 0..16 (labels dropped)",
                "licence": digits_licence, "default_preprocess": "logit",
            })
        );
        for (name, desc) in generators::NAMES.iter().zip(generators::DESCRIPTIONS) {
            println!(
                "{}",
                json!({
                    "name": name, "kind": "generator", "rows": "--n (default 2000)", "cols": 2,
                    "description": desc, "licence": "generated on the fly (no third-party data)",
                    "default_preprocess": "standardize",
                })
            );
        }
        for p in &PAPER {
            let images = p.rows.is_some();
            println!(
                "{}",
                json!({
                    "name": p.name, "kind": "paper", "cols": p.cols,
                    "rows": p.rows.map(|r| r.0), "test_rows": p.rows.map(|r| r.1),
                    "levels": images.then_some(256),
                    "description": p.what, "read": p.read.join("; "), "get": p.get,
                    "licence": PAPER_LICENCE,
                    "default_preprocess": if images { "logit" } else { "standardize" },
                })
            );
        }
        return Ok(());
    }
    println!("built-in data (embedded in the binary):");
    println!(
        "  {:<13} {:>4} x {:<3} 8x8 handwritten digits, pixels 0..16 (17 levels); default preprocessing: logit",
        "digits",
        digits::ROWS,
        digits::COLS
    );
    println!("                licence: {digits_licence}");
    println!("                (`relgrad datasets --license` prints the full text and attribution)");
    println!();
    println!("2-D generators (--n rows, default 2000, drawn from --seed; default preprocessing: standardize):");
    for (name, desc) in generators::NAMES.iter().zip(generators::DESCRIPTIONS) {
        println!("  {name:<13} {:>4} x 2   {desc}", "n");
    }
    println!("                licence: generated on the fly, no third-party data");
    println!();
    println!("the paper's data sets (not redistributed with relgrad: get the publisher's files, under its terms):");
    for p in &PAPER {
        let rows = p.rows.map_or("n".to_string(), |r| r.0.to_string());
        println!("  {:<10} {rows:>7} x {:<4} {}", p.name, p.cols, p.what);
        for (k, line) in p.read.iter().enumerate() {
            let label = if k == 0 { "read:" } else { "     " };
            println!("                {label} {line}");
        }
        println!("                get:  {}", p.get);
    }
    println!();
    println!("files: --data FILE.npy | FILE.npz[:KEY] | FILE.csv (.tsv, .txt; UTF-8 or UTF-16) | MNIST IDX file or directory (train-images-idx3-ubyte[.gz], t10k-... as test set)");
    println!("       | CIFAR-10 binary archive or directory (test_batch as test set)");
    println!("       | a prepared directory: train.npy [val.npy] [test.npy] (the parts come from the files)");
    Ok(())
}

//! `relgrad datasets`: the built-in data set and the generators, with sizes and licences.

use anyhow::Result;
use serde_json::json;

use crate::cli::DatasetsArgs;
use crate::data::{digits, generators};

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
    println!("files: --data FILE.npy | FILE.csv | MNIST IDX file or directory (train-images-idx3-ubyte[.gz], t10k-... as test set)");
    Ok(())
}

//! Scoring a batch of rows with a trained model, as a service would: load the model
//! once, score the rows, and flag those whose log-density is below a threshold taken
//! from the training data (the log-density below which a fraction `q` of the training
//! rows scored, recorded in the model file by `relgrad train`).
//!
//! ```text
//! cargo run --release -p relgrad-cli --example score_service -- runs/<run>/model.safetensors rows.npy --quantile 0.01
//! ```
//!
//! The model is a `model.safetensors` written by `relgrad train`, or its run directory.
//! The rows are a 2-D `.npy` array of floats or integers, one sample per row, in the
//! units of the training data. `--quantile` (default 0.01) is the fraction of training
//! rows that would have been flagged. Prints one line per flagged row and a summary.

use std::error::Error;
use std::path::{Path, PathBuf};

use relgrad::{DefaultBackend, DensityModel, MatRef, Threads};
use relgrad_cli::data::{npy, Table};

const USAGE: &str =
    "usage: score_service <model.safetensors | run directory> <rows.npy> [--quantile Q]";

/// What `run` found.
#[derive(Debug)]
pub struct Report {
    /// The quantile level `q` of the threshold.
    pub quantile: f64,
    /// The threshold: the log-density below which a fraction `q` of the training rows scored.
    pub threshold: f64,
    /// The log-density of every row, in nats, in the data's units.
    pub scores: Vec<f64>,
    /// The zero-based indices of the rows scoring below the threshold.
    pub flagged: Vec<usize>,
}

/// Scores the rows named by `args` (without the program name) and flags the low ones.
pub fn run(args: &[String]) -> Result<Report, Box<dyn Error>> {
    // Arguments: two paths and an optional `--quantile Q` (or `--quantile=Q`).
    let mut paths = Vec::new();
    let mut quantile = 0.01;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if let Some(value) = arg.strip_prefix("--quantile=") {
            quantile = parse_quantile(value)?;
        } else if arg == "--quantile" {
            quantile = parse_quantile(it.next().ok_or("--quantile needs a value")?)?;
        } else if arg.starts_with("--") {
            return Err(format!("unknown option {arg}\n{USAGE}").into());
        } else {
            paths.push(PathBuf::from(arg));
        }
    }
    let [model_path, rows_path] = paths.as_slice() else {
        return Err(USAGE.into());
    };

    // The model: a file, or a run directory holding model.safetensors.
    let model_file = if model_path.is_dir() {
        model_path.join("model.safetensors")
    } else {
        model_path.clone()
    };
    let model = DensityModel::load(&model_file)?;
    let threshold = model.threshold(quantile).ok_or_else(|| {
        format!(
            "{} records no quantiles of the training log-densities (an older relgrad wrote it): retrain it with this release's `relgrad train` to get a threshold",
            model_file.display()
        )
    })?;

    // The rows: a 2-D array, one sample per row.
    let rows = read_rows(rows_path)?;
    let x = MatRef::from_slice(&rows.values, rows.rows, rows.cols);

    // Score every row (exact log-densities in the data's units) and flag the low ones.
    let backend = DefaultBackend::new(Threads::Auto);
    let scores = model.log_prob(&backend, x)?;
    let flagged = (0..scores.len())
        .filter(|&i| scores[i] < threshold)
        .collect();
    Ok(Report {
        quantile,
        threshold,
        scores,
        flagged,
    })
}

/// A quantile level in `[0, 1]`.
fn parse_quantile(s: &str) -> Result<f64, Box<dyn Error>> {
    match s.parse::<f64>() {
        Ok(q) if (0.0..=1.0).contains(&q) => Ok(q),
        _ => Err(format!("--quantile: expected a number in [0, 1], got {s:?}").into()),
    }
}

/// Reads a 2-D `.npy` array of floats or integers.
fn read_rows(path: &Path) -> Result<Table, Box<dyn Error>> {
    let array = npy::read(path)?;
    if array.shape.len() != 2 {
        return Err(format!(
            "{}: expected a 2-D array (rows x columns), found shape {:?}",
            path.display(),
            array.shape
        )
        .into());
    }
    Ok(array.into_table()?)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(report) => {
            let t = report.threshold;
            for &i in &report.flagged {
                println!(
                    "row {}: log-density {:.4} < threshold {t:.4}",
                    i + 1,
                    report.scores[i]
                );
            }
            println!(
                "{} of {} rows below the {} quantile of the training log-densities ({t:.4} nats)",
                report.flagged.len(),
                report.scores.len(),
                report.quantile
            );
        }
        Err(err) => {
            eprintln!("error: {err}");
            let mut cause = err.source();
            while let Some(c) = cause {
                eprintln!("  caused by: {c}");
                cause = c.source();
            }
            std::process::exit(1);
        }
    }
}

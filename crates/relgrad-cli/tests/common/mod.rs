//! Helpers shared by the integration tests: the binary, temporary directories, tiny data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The `relgrad` binary under test.
pub fn relgrad() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_relgrad"));
    c.env("NO_COLOR", "1");
    c
}

/// `relgrad score RUN --data DATA --out OUT` (more arguments may be appended).
pub fn score(run: &Path, data: &str, out: &Path) -> Command {
    let mut cmd = relgrad();
    cmd.args([
        "score",
        run.to_str().unwrap(),
        "--data",
        data,
        "--out",
        out.to_str().unwrap(),
    ]);
    cmd
}

/// A fresh temporary directory.
pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Random, correlated, non-Gaussian data: `rows x cols`, seeded.
pub fn random_table(rows: usize, cols: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..rows)
        .map(|_| {
            let base: f64 = rng.random::<f64>() * 2.0 - 1.0;
            (0..cols)
                .map(|j| {
                    base * (j as f64 + 1.0) * 0.5
                        + (rng.random::<f64>() - 0.5).powi(3) * 4.0
                        + j as f64
                })
                .collect()
        })
        .collect()
}

/// Writes rows as a CSV file with a header.
pub fn write_csv(path: &Path, rows: &[Vec<f64>]) {
    let cols = rows[0].len();
    let mut s = (0..cols)
        .map(|j| format!("x{j}"))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for r in rows {
        s.push_str(
            &r.iter()
                .map(|v| format!("{v}"))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// A small CSV data set in `dir`: `rows x cols`.
pub fn csv_data(dir: &Path, name: &str, rows: usize, cols: usize, seed: u64) -> PathBuf {
    let p = dir.join(name);
    write_csv(&p, &random_table(rows, cols, seed));
    p
}

/// The arguments of a fast training run on `data` into `out`.
pub fn quick_train_args<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--data", data, "--out", out, "--epochs", "2", "--quiet",
    ]
}

/// The JSON metadata of a safetensors file.
pub fn metadata(path: &Path) -> serde_json::Map<String, serde_json::Value> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"].as_object().unwrap().clone()
}

/// A JSON value stored as a string in the metadata.
pub fn meta_json(path: &Path, key: &str) -> serde_json::Value {
    let m = metadata(path);
    serde_json::from_str(m[key].as_str().unwrap()).unwrap()
}

/// Stdout of a successful command, as text.
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

//! Bad input and faults: each gives a message naming the problem and exit code 1, never
//! a panic (usage errors, exit code 2, are in `hostile.rs`).

mod common;

use common::*;
use predicates::prelude::*;

fn fails_with(args: &[&str], needle: &str) {
    relgrad()
        .args(args)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(needle).and(predicate::str::contains("panicked").not()));
}

#[test]
fn missing_files() {
    let dir = tmp();
    let missing = dir.path().join("nope.csv");
    fails_with(
        &["train", "--data", missing.to_str().unwrap()],
        "no such file or directory",
    );
    fails_with(&["eval", missing.to_str().unwrap()], "no such model file");
    fails_with(
        &[
            "sample",
            dir.path().join("m.safetensors").to_str().unwrap(),
            "--out",
            "x.npy",
        ],
        "no such model file",
    );
}

#[test]
fn unreadable_formats() {
    let dir = tmp();
    let bin = dir.path().join("data.bin");
    std::fs::write(&bin, [0u8, 1, 2, 3, 0, 0, 0, 9, 200, 0]).unwrap();
    fails_with(
        &["train", "--data", bin.to_str().unwrap()],
        "unrecognised format",
    );
    let npy = dir.path().join("bad.npy");
    std::fs::write(&npy, b"definitely not numpy").unwrap();
    fails_with(
        &["train", "--data", npy.to_str().unwrap()],
        "not a readable .npy file",
    );
    let model = dir.path().join("model.safetensors");
    std::fs::write(&model, b"garbage").unwrap();
    fails_with(
        &["eval", model.to_str().unwrap(), "--data", "digits"],
        "not a readable relgrad model file",
    );
}

#[test]
fn a_non_numeric_csv_cell_names_its_row_and_column() {
    let dir = tmp();
    let p = dir.path().join("d.csv");
    std::fs::write(&p, "a,b,c\n1,2,3\n4,five,6\n").unwrap();
    fails_with(
        &["train", "--data", p.to_str().unwrap()],
        "line 3 (data row 2), column 2: expected a number, found \"five\"",
    );
}

#[test]
fn dimension_mismatch_between_model_and_data() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args([
            "train",
            "--data",
            "moons",
            "--n",
            "100",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ])
        .assert()
        .success();
    let msg = "dimension mismatch: the data (digits (built-in)) has 64 columns, but the model";
    fails_with(&["eval", run.to_str().unwrap(), "--data", "digits"], msg);
    fails_with(
        &[
            "score",
            run.to_str().unwrap(),
            "--data",
            "digits",
            "--out",
            dir.path().join("s.csv").to_str().unwrap(),
        ],
        msg,
    );
    fails_with(
        &[
            "train",
            "--data",
            "digits",
            "--init",
            run.to_str().unwrap(),
            "--out",
            dir.path().join("r2").to_str().unwrap(),
        ],
        "dimension mismatch",
    );
}

#[test]
fn non_finite_values_name_the_first_bad_row() {
    let dir = tmp();
    let mut rows = random_table(30, 2, 1);
    rows[6][1] = f64::NAN;
    rows[9][0] = f64::INFINITY;
    let bad = dir.path().join("bad.csv");
    write_csv(&bad, &rows);
    fails_with(
        &[
            "train",
            "--data",
            bad.to_str().unwrap(),
            "--test-fraction",
            "0",
            "--val-fraction",
            "0",
        ],
        "row 7 (line 8), column 2 is not a finite number (NaN)",
    );
    // With the default split the bad rows fall in some part: still the file's numbering.
    fails_with(
        &["train", "--data", bad.to_str().unwrap()],
        "bad.csv: row 7 (line 8), column 2 is not a finite number (NaN)",
    );

    // score: an error, or with --skip-invalid a NaN score for the bad rows only.
    let good = csv_data(dir.path(), "good.csv", 30, 2, 1);
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args(
            good.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .assert()
        .success();
    let out = dir.path().join("s.npy");
    score(&run, bad.to_str().unwrap(), &out)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("row 7 (line 8), column 2 is not a finite number")
                .and(predicate::str::contains("--skip-invalid")),
        );
    score(&run, bad.to_str().unwrap(), &out)
        .arg("--skip-invalid")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "2 rows with NaN or infinite values got NaN",
        ));
    let s = relgrad_cli::data::npy::read(&out).unwrap().values;
    assert_eq!(s.len(), 30);
    for (i, v) in s.iter().enumerate() {
        assert_eq!(v.is_nan(), i == 6 || i == 9, "row {i}: {v}");
    }
}

#[test]
fn bad_settings_are_usage_or_input_errors() {
    relgrad()
        .args(["train", "--lr=-1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("positive"));
    relgrad()
        .args(["train", "--batch-size", "0"])
        .assert()
        .code(2);
    fails_with(&["train", "--data", "wobbly"], "not a built-in data set");
    fails_with(
        &["train", "--data", "moons", "--preprocess", "logit"],
        "--levels",
    );
}

/// Without the `mpi` feature, `--distributed` says how to get it (a usage error).
#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_without_mpi_says_how_to_build_it() {
    relgrad()
        .args(["train", "--distributed", "--data", "digits"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--features mpi"));
}

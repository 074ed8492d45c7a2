//! Hostile input, one test per kind of failure found by trying bad inputs as a user would:
//! sizes that would exhaust memory, data that would hang the start, usage errors (exit 2),
//! messages that must name the right row and the right cause, resumes on changed data,
//! and what a run directory holds after a run. Never a panic, never NaN with exit 0.

mod common;

use common::*;
use predicates::prelude::*;

/// Exit code `code`, `needle` on stderr, and no panic.
fn exits(args: &[&str], code: i32, needle: &str) {
    relgrad()
        .args(args)
        .assert()
        .code(code)
        .stderr(predicate::str::contains(needle).and(predicate::str::contains("panicked").not()));
}

#[test]
fn sizes_from_the_command_line_are_checked_before_allocating() {
    let dir = tmp();
    let run = dir.path().join("run");
    let out = dir.path().join("s.npy");
    exits(
        &["train", "--data", "moons", "--n", "1000000000000"],
        2,
        "expected a whole number from 2 to 10000000",
    );
    exits(
        &["eval", "x.safetensors", "--data", "moons", "--n", "1"],
        2,
        "--n",
    );
    exits(&["bench", "--dims", "100000"], 2, "from 1 to 65536");
    exits(
        &["bench", "--dims", "16384", "--backends", "faer"],
        2,
        "--dims 16384 with --layers 2 and --batch 100: more than 268435456 parameters",
    );
    exits(
        &[
            "bench",
            "--dims",
            "64",
            "--batch",
            "10000000",
            "--backends",
            "faer",
        ],
        2,
        "batch values",
    );
    exits(&["train", "--layers", "1000000000"], 2, "--layers");
    exits(&["train", "--threads", "100000"], 2, "from 1 to 1024");
    // Within the flag's range, but too many parameters for the data's 64 columns.
    exits(
        &[
            "train",
            "--data",
            "digits",
            "--layers",
            "100000",
            "--out",
            run.to_str().unwrap(),
        ],
        1,
        "100000 layers of 64 x 64 is more than 268435456 parameters",
    );
    relgrad()
        .args(quick_train_args("moons", run.to_str().unwrap()))
        .assert()
        .success();
    exits(
        &[
            "sample",
            run.to_str().unwrap(),
            "-n",
            "100000000000",
            "--out",
            out.to_str().unwrap(),
        ],
        2,
        "from 1 to 268435456",
    );
    // In range for the flag, but not for a 2-column model.
    exits(
        &[
            "sample",
            run.to_str().unwrap(),
            "-n",
            "200000000",
            "--out",
            out.to_str().unwrap(),
        ],
        1,
        "exceed the limit of 268435456 values per call",
    );
    assert!(!out.exists());
}

#[test]
fn an_idx_file_with_a_zero_sized_dimension_is_an_error() {
    let dir = tmp();
    for (shape, needle) in [
        (&[5usize, 0][..], "dimension 2 of the shape [5, 0] is 0"),
        (&[0, 3][..], "dimension 1 of the shape [0, 3] is 0"),
    ] {
        let p = dir.path().join("zero.idx");
        std::fs::write(&p, relgrad_cli::data::idx::encode_u8(shape, &[])).unwrap();
        exits(&["train", "--data", p.to_str().unwrap()], 1, needle);
    }
}

#[test]
fn a_header_announcing_more_than_the_file_holds_is_refused() {
    let dir = tmp();
    // 2^32 x 2^32 bytes announced, nothing behind it, gzip-compressed.
    let p = dir.path().join("huge-idx3-ubyte.gz");
    let raw = [0u8, 0, 8, 2, 255, 255, 255, 255, 255, 255, 255, 255];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    exits(
        &["train", "--data", p.to_str().unwrap()],
        1,
        "the limit of a data file",
    );
    // Within the limit but truncated: the bytes that are there are all that is read.
    let p = dir.path().join("short.idx");
    std::fs::write(&p, [0u8, 0, 8, 2, 0, 1, 0, 0, 0, 0, 1, 0, 7, 7]).unwrap();
    exits(
        &["train", "--data", p.to_str().unwrap()],
        1,
        "truncated data: shape [65536, 256] needs 16777216 bytes, the file has 2",
    );
}

#[test]
fn fewer_rows_than_columns_is_refused_before_the_start() {
    let dir = tmp();
    let p = csv_data(dir.path(), "wide.csv", 20, 400, 3);
    exits(
        &["train", "--data", p.to_str().unwrap()],
        1,
        "16 training rows for 400 columns: the data-dependent start fits a full covariance",
    );
}

#[test]
fn option_values_no_input_could_fix_are_usage_errors() {
    exits(
        &["train", "--data", "moons", "--val-fraction", "1.5"],
        2,
        "expected a fraction in [0, 1)",
    );
    exits(
        &[
            "train",
            "--data",
            "moons",
            "--activation",
            "smooth-leaky-relu",
            "--alpha",
            "2",
        ],
        2,
        "--alpha",
    );
    exits(
        &["train", "--data", "moons", "--momentum", "1"],
        2,
        "momentum",
    );
    exits(&["train", "--levels", "1"], 2, "from 2 to 16777216");
    exits(
        &["train", "--lr-decay", "1"],
        2,
        "expected a number between 0 and 1",
    );
    exits(&["train", "--lr-decays", "51"], 2, "from 0 to 50");
    exits(&["train", "--allow-changed-data"], 2, "--resume");
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args("moons", run.to_str().unwrap()))
        .assert()
        .success();
    exits(
        &["train", "--resume", run.to_str().unwrap(), "--lr", "0.1"],
        2,
        "--lr cannot be combined with --resume",
    );
    exits(
        &[
            "train",
            "--data",
            "moons",
            "--init",
            run.to_str().unwrap(),
            "--layers",
            "4",
            "--out",
            dir.path().join("r2").to_str().unwrap(),
        ],
        2,
        "--layers 4 conflicts with the --init model",
    );
}

#[test]
fn eval_on_no_rows_is_an_error_not_nan() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args("moons", run.to_str().unwrap()))
        .assert()
        .success();
    let empty = dir.path().join("empty.npy");
    std::fs::write(&empty, relgrad_cli::data::npy::encode_f64(&[0, 2], &[])).unwrap();
    exits(
        &[
            "eval",
            run.to_str().unwrap(),
            "--data",
            empty.to_str().unwrap(),
        ],
        1,
        "no rows to evaluate",
    );
}

#[test]
fn resume_refuses_changed_data_unless_allowed() {
    let dir = tmp();
    let data = csv_data(dir.path(), "d.csv", 60, 2, 1);
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .assert()
        .success();
    csv_data(dir.path(), "d.csv", 60, 2, 2);
    let resume = |extra: &[&str]| {
        let mut c = relgrad();
        c.args([
            "train",
            "--resume",
            run.to_str().unwrap(),
            "--epochs",
            "4",
            "--quiet",
        ])
        .args(extra);
        c
    };
    resume(&[])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the training rows differ from the ones the checkpoint was trained on",
        ));
    resume(&["--allow-changed-data"]).assert().success();
}

#[test]
fn divergence_advice_fits_the_cause() {
    let dir = tmp();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // A learning rate far too large: lower it, below the last rate the decays tried.
    let lr = out("lr");
    relgrad()
        .args([
            "train", "--data", "moons", "--lr", "1000", "--quiet", "--out", &lr,
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the learning rate 90 (decayed 2 times from --lr 1000) may be too large for these data: try --lr 9",
        ));
    let lr0 = out("lr0");
    relgrad()
        .args([
            "train",
            "--data",
            "moons",
            "--lr",
            "1000",
            "--lr-decays",
            "0",
            "--quiet",
            "--out",
            &lr0,
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the learning rate 1000 may be too large for these data: try --lr 100",
        ));
    // (Depth and data scale as causes are tested on the library's diagnosis itself.)
    // A start model that does not suit the data (values a million times its scale).
    let moons = out("moons");
    relgrad()
        .args(quick_train_args("moons", &moons))
        .assert()
        .success();
    let rows: Vec<Vec<f64>> = random_table(300, 2, 4)
        .into_iter()
        .map(|r| r.into_iter().map(|v| v * 1e6).collect())
        .collect();
    let big = dir.path().join("big.csv");
    write_csv(&big, &rows);
    relgrad()
        .args(["train", "--data", big.to_str().unwrap(), "--init", &moons])
        .args(["--quiet", "--out", &out("init")])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "the start model fits these data badly",
        ));
}

#[test]
fn a_run_directory_holds_no_temporary_files() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args([
            "train", "--data", "moons", "--n", "300", "--epochs", "3", "--quiet",
        ])
        .args(["--out", run.to_str().unwrap()])
        .assert()
        .success();
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(names.contains(&"curve.png".to_string()), "{names:?}");
    assert!(names.contains(&"density.png".to_string()), "{names:?}");
    assert!(
        names.iter().all(|n| !n.contains("tmp")),
        "temporary files left: {names:?}"
    );
}

//! `relgrad --help`, `datasets` and `bench`.

mod common;

use common::*;
use predicates::prelude::*;

#[test]
fn help_lists_every_command_and_option() {
    let top = stdout_of(relgrad().arg("--help"));
    for c in [
        "train",
        "eval",
        "sample",
        "score",
        "datasets",
        "bench",
        "Exit codes",
    ] {
        assert!(top.contains(c), "--help lacks {c}:\n{top}");
    }
    let train = stdout_of(relgrad().args(["train", "--help"]));
    for o in [
        "--data",
        "--layers",
        "--activation",
        "--alpha",
        "--base",
        "--components",
        "--spline-lr",
        "--optimizer",
        "--lr",
        "--batch-size",
        "--epochs",
        "--look-ahead",
        "--seed",
        "--no-shuffle",
        "--preprocess",
        "--precision",
        "--threads",
        "--gradient",
        "--init",
        "--resume",
        "--out",
        "--force",
        "--val",
        "--test",
        "--val-fraction",
        "--test-fraction",
    ] {
        assert!(train.contains(o), "train --help lacks {o}");
    }
    assert!(
        train.contains("mixture") && train.contains("only with `--base mixture`"),
        "train --help does not explain --base mixture and --components:\n{train}"
    );
    for (cmd, opts) in [
        ("eval", &["--data", "--json", "--split"][..]),
        ("sample", &["-n", "--out"][..]),
        ("score", &["--data", "--out", "--skip-invalid"][..]),
        (
            "bench",
            &[
                "--backends",
                "--dims",
                "--batch",
                "--layers",
                "--precision",
                "--threads",
                "--json",
                "--quick",
            ][..],
        ),
    ] {
        let h = stdout_of(relgrad().args([cmd, "--help"]));
        for o in opts {
            assert!(h.contains(o), "{cmd} --help lacks {o}");
        }
    }
    relgrad()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains("relgrad"));
    relgrad().arg("frobnicate").assert().code(2);
}

#[test]
fn datasets_lists_sizes_and_licences() {
    let out = stdout_of(relgrad().arg("datasets"));
    assert!(
        out.contains("digits") && out.contains("1797") && out.contains("CC BY 4.0"),
        "{out}"
    );
    for g in [
        "moons",
        "2spirals",
        "checkerboard",
        "rings",
        "8gaussians",
        "sine",
        "trimodal",
        "smile",
        "trimodal2",
    ] {
        assert!(out.contains(g), "{g} missing");
    }
    let json = stdout_of(relgrad().args(["datasets", "--json"]));
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["rows"], 1797);
    // digits, 9 generators, the paper's 7 data sets (tests/datasets.rs checks those).
    assert_eq!(json.lines().count(), 17);
    let lic = stdout_of(relgrad().args(["datasets", "--license"]));
    assert!(lic.contains("Alpaydin") && lic.contains("BSD 3-Clause"));
}

#[test]
fn bench_prints_a_table_and_json_lines() {
    let out = stdout_of(relgrad().args(["bench", "--quick", "--dims", "8,16", "--batch", "4"]));
    assert!(
        out.contains("faer") && out.contains("relative ms") && out.contains("floor ms"),
        "{out}"
    );
    // By default every compiled-in backend is compared.
    for (name, on) in [
        ("nalgebra", cfg!(feature = "nalgebra")),
        ("openblas", cfg!(feature = "openblas")),
    ] {
        assert_eq!(out.contains(name), on, "{name} in the table: {out}");
    }
    let json = stdout_of(relgrad().args([
        "bench",
        "--quick",
        "--dims",
        "8",
        "--batch",
        "20",
        "--layers",
        "3",
        "--json",
        "--precision",
        "f32,f64",
        "--threads",
        "1",
        "--backends",
        "faer",
        "--simd",
        "baseline",
    ]));
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for v in &lines {
        for k in [
            "backend",
            "precision",
            "threads",
            "d",
            "b",
            "l",
            "gemm_gflops",
            "relative_ms",
            "naive_ms",
            "floor_ms",
        ] {
            assert!(!v[k].is_null(), "{k} missing in {v}");
        }
        assert_eq!(
            (v["d"].as_u64(), v["b"].as_u64(), v["l"].as_u64()),
            (Some(8), Some(20), Some(3))
        );
        assert!(v["relative_ms"].as_f64().unwrap() > 0.0 && v["floor_ms"].as_f64().unwrap() > 0.0);
        assert_eq!(v["simd"], "baseline", "--simd caps the kernels: {v}");
    }
    relgrad()
        .args(["bench", "--simd", "sse9"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "expected baseline, avx2 or avx512",
        ));
    relgrad()
        .args(["bench", "--backends", "cuda"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown backend"));
}

#[test]
fn bench_times_training_steps_against_their_memory_floor() {
    let args = [
        "bench", "--step", "--quick", "--dims", "8", "--batch", "1,4",
    ];
    let table = stdout_of(relgrad().args(args).args(["--backends", "faer"]));
    assert!(
        table.contains("step/floor") && table.contains("adam"),
        "{table}"
    );
    let json = stdout_of(relgrad().args(args).args(["--backends", "faer", "--json"]));
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Two batch sizes, two optimizers.
    assert_eq!(rows.len(), 4, "{json}");
    for v in &rows {
        for k in [
            "gradient_ms",
            "step_ms",
            "floor_ms",
            "bandwidth_gbs",
            "cores",
        ] {
            assert!(v[k].as_f64().is_some_and(|x| x > 0.0), "{k} in {v}");
        }
        // The floor's bytes: parameters and state (2 + 2k values of 2 x 8 x 9 each, f64)
        // read and written once, and the batch read.
        let k = if v["optimizer"] == "adam" { 2.0 } else { 1.0 };
        let b = v["b"].as_f64().unwrap();
        assert_eq!(
            v["floor_bytes"].as_f64().unwrap(),
            (2.0 + 2.0 * k) * 144.0 * 8.0 + b * 8.0 * 8.0
        );
        assert!(v["step_ms"].as_f64() >= v["gradient_ms"].as_f64().map(|g| g * 0.5));
    }
}

#[cfg(not(feature = "nalgebra"))]
#[test]
fn bench_says_which_backends_are_not_compiled_in() {
    relgrad()
        .args([
            "bench",
            "--quick",
            "--dims",
            "8",
            "--backends",
            "faer,nalgebra",
        ])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("not compiled in")
                .and(predicate::str::contains("--features nalgebra")),
        );
}

/// A reader that closes the pipe early (`relgrad datasets | head -1`) ends the tool
/// quietly, by SIGPIPE as other Unix tools end, not by a panic in `println!`.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_output_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_relgrad"))
        .arg("datasets")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the tool writes (or while it does).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {stderr}",
        out.status
    );
}

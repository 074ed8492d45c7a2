//! `relgrad train --distributed` under `mpirun` (the `mpi` feature; `.ci/run` installs
//! Open MPI): 2 and 3 processes (uneven shares) reach the parameters of one process to
//! 1e-12 in f64 and stop early at the same epoch, for data read whole (the digits) and a
//! `.npy` file read by offset; a distributed run resumed (on another number of
//! processes) equals an uninterrupted one; bad rows on one rank and a divergence end
//! every rank with a non-zero exit within seconds, naming the rank.

#![cfg(feature = "mpi")]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use relgrad::model::DensityModel;
use relgrad_cli::data::npy;

/// The longest a test's `mpirun` may take before it counts as hanging.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `mpirun -np N relgrad train --distributed ARGS`, killed after [`TIMEOUT`].
fn mpirun(np: usize, args: &[&str]) -> Output {
    let started = Instant::now();
    let out = std::process::Command::new("timeout")
        .args([&format!("{}", TIMEOUT.as_secs()), "mpirun"])
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-np",
            &np.to_string(),
        ])
        .arg(env!("CARGO_BIN_EXE_relgrad"))
        .args(["train", "--distributed"])
        .args(args)
        // Containers often forbid the cross-memory attach of Open MPI's shared memory.
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("NO_COLOR", "1")
        .output()
        .expect("mpirun runs (install openmpi-bin)");
    assert_ne!(
        out.status.code(),
        Some(124),
        "mpirun hung for {:?}: {}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn single(args: &[&str]) {
    relgrad().arg("train").args(args).assert().success();
}

fn params(run: &Path) -> Vec<f64> {
    let m = DensityModel::load(run.join("model.safetensors")).unwrap();
    m.network
        .parameters_f64()
        .into_iter()
        .flat_map(|(w, b)| w.as_slice().iter().copied().chain(b).collect::<Vec<_>>())
        .collect()
}

/// The two runs' parameters agree to 1e-12 (relative to the largest), and their training
/// records (epochs run, best epoch, early stop) and test metrics agree.
fn assert_same_run(a: &Path, b: &Path) {
    let (pa, pb) = (params(a), params(b));
    assert_eq!(pa.len(), pb.len());
    let scale = pb.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    let err = pa
        .iter()
        .zip(&pb)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale;
    assert!(err < 1e-12, "parameters differ by {err:e}");
    let (ta, tb) = (
        meta_json(&a.join("model.safetensors"), "training"),
        meta_json(&b.join("model.safetensors"), "training"),
    );
    for key in [
        "epochs_run",
        "best_epoch",
        "stopped_early",
        "lr_decayed_after",
    ] {
        assert_eq!(ta[key], tb[key], "{key}");
    }
    let (ma, mb) = (
        meta_json(&a.join("model.safetensors"), "metrics"),
        meta_json(&b.join("model.safetensors"), "metrics"),
    );
    for part in ["train", "val", "test"] {
        let (x, y) = (&ma[part]["ll_mean"], &mb[part]["ll_mean"]);
        let d = (x.as_f64().unwrap() - y.as_f64().unwrap()).abs();
        assert!(d < 1e-9, "{part}: {x} vs {y}");
    }
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `.npy` file of `rows x 5` correlated values.
fn npy_data(dir: &Path, rows: usize, nan_at: Option<usize>) -> String {
    let t = random_table(rows, 5, 11);
    let mut values: Vec<f64> = t.into_iter().flatten().collect();
    if let Some(r) = nan_at {
        values[r * 5 + 1] = f64::NAN;
    }
    let path = dir.join("x.npy");
    std::fs::write(&path, npy::encode_f64(&[rows, 5], &values)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn two_and_three_processes_reach_the_single_process_result() {
    let dir = tmp();
    let run = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    // The digits (read whole by every process, logit), stopping early.
    let common = [
        "--data",
        "digits",
        "--precision",
        "f64",
        "--epochs",
        "30",
        "--lr",
        "3e-3",
        "--look-ahead",
        "2",
        "-q",
    ];
    let (one, two) = (run("one"), run("two"));
    single(&[&common[..], &["--out", &one]].concat());
    ok(&mpirun(2, &[&common[..], &["--out", &two]].concat()));
    assert_same_run(Path::new(&one), Path::new(&two));
    let stopped = meta_json(&Path::new(&one).join("model.safetensors"), "training");
    assert_eq!(
        stopped["stopped_early"], true,
        "the run stops early: {stopped}"
    );
    assert_eq!(
        stopped["lr_decayed_after"].as_array().map(Vec::len),
        Some(2),
        "after two decays on plateau: {stopped}"
    );
    // A .npy file read by offset (301 rows: uneven shares of 3), standardised.
    let data = npy_data(dir.path(), 301, None);
    let common = [
        "--data",
        &data,
        "--precision",
        "f64",
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "-q",
    ];
    let (one, three) = (run("npy-one"), run("npy-three"));
    single(&[&common[..], &["--out", &one]].concat());
    ok(&mpirun(3, &[&common[..], &["--out", &three]].concat()));
    assert_same_run(Path::new(&one), Path::new(&three));
}

#[test]
fn a_resumed_distributed_run_equals_an_uninterrupted_one() {
    let dir = tmp();
    let run = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let common = [
        "--data",
        "digits",
        "--precision",
        "f64",
        "--lr",
        "1e-3",
        "--look-ahead",
        "0",
        "-q",
    ];
    let (whole, parts) = (run("whole"), run("parts"));
    single(&[&common[..], &["--epochs", "6", "--out", &whole]].concat());
    ok(&mpirun(
        2,
        &[&common[..], &["--epochs", "3", "--out", &parts]].concat(),
    ));
    // Continued on three processes from the checkpoint of epoch 3.
    ok(&mpirun(3, &["--resume", &parts, "--epochs", "6", "-q"]));
    assert_same_run(Path::new(&whole), Path::new(&parts));
}

#[test]
fn bad_rows_on_one_rank_end_every_rank_naming_it() {
    let dir = tmp();
    // Every row trains; rank 1 of 2 holds rows 151..300 (one-based) and row 251 is NaN.
    let data = npy_data(dir.path(), 300, Some(250));
    let out_dir = dir.path().join("run");
    let started = Instant::now();
    let out = mpirun(
        2,
        &[
            "--data",
            &data,
            "--val-fraction",
            "0",
            "--test-fraction",
            "0",
            "--out",
            out_dir.to_str().unwrap(),
            "-q",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("rank 1: ") && err.contains("row 251, column 2 is not a finite number"),
        "{err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "printed once: {err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(!out_dir.join("model.safetensors").exists());
}

#[test]
fn a_divergence_ends_every_rank_and_keeps_the_best_model() {
    let dir = tmp();
    let out_dir = dir.path().join("run");
    let out = mpirun(
        2,
        &[
            "--data",
            "digits",
            "--lr",
            "1e3",
            "--out",
            out_dir.to_str().unwrap(),
            "-q",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("training diverged at epoch"), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "printed once: {err}");
    // The best parameters (the start) were saved; the checkpoint is intact.
    DensityModel::load(out_dir.join("model.safetensors")).unwrap();
    relgrad::model::AnyCheckpoint::load(out_dir.join("checkpoint.safetensors")).unwrap();
}

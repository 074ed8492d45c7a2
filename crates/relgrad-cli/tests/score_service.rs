//! The `score_service` example: flags rows below a training-data quantile.

mod common;
#[path = "../examples/score_service.rs"]
#[allow(dead_code)]
mod score_service;

use std::path::{Path, PathBuf};

use common::*;
use relgrad::{DefaultBackend, DensityModel, MatRef, Threads};
use relgrad_cli::data::{generators, npy};

/// Rows far outside the two moons (which lie within about [-1.5, 2.5] x [-1, 1.5]).
const ABSURD: [[f64; 2]; 3] = [[50.0, -50.0], [-50.0, 50.0], [30.0, 30.0]];

/// The example's arguments as owned strings.
fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The model trained by the old release, without quantiles.
fn old_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../relgrad-model/tests/fixtures/v1-moons-f64.safetensors")
}

/// Writes `rows` (each of length `cols`) as a 2-D `.npy` file.
fn write_npy(path: &Path, rows: &[f64], cols: usize) {
    std::fs::write(path, npy::encode_f64(&[rows.len() / cols, cols], rows)).unwrap();
}

#[test]
fn flags_absurd_rows_and_few_typical_ones() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args([
            "train",
            "--data",
            "moons",
            "--n",
            "400",
            "--epochs",
            "5",
            "--out",
            path_str(&run),
            "--quiet",
        ])
        .assert()
        .success();
    let samples = dir.path().join("s.npy");
    relgrad()
        .args([
            "sample",
            path_str(&run),
            "--out",
            path_str(&samples),
            "-n",
            "50",
        ])
        .assert()
        .success();

    // Typical rows: fresh moons (not the training rows, another seed) and the model's
    // own samples; then the absurd rows.
    let fresh = generators::generate("moons", 200, 12345).unwrap().values;
    let sampled = npy::read(&samples).unwrap().into_table().unwrap().values;
    let (n_fresh, n_sampled) = (fresh.len() / 2, sampled.len() / 2);
    assert_eq!((n_fresh, n_sampled), (200, 50));
    let mut values = [fresh, sampled].concat();
    values.extend(ABSURD.iter().flatten());
    let n = values.len() / 2;
    let rows = dir.path().join("rows.npy");
    write_npy(&rows, &values, 2);

    let model_file = run.join("model.safetensors");
    let report = score_service::run(&args(&[path_str(&model_file), path_str(&rows)])).unwrap();
    let model = DensityModel::load(&model_file).unwrap();

    // The default quantile, and the model's threshold for it.
    assert_eq!(report.quantile, 0.01);
    assert_eq!(Some(report.threshold), model.threshold(0.01));
    // The scores are the model's log-densities, computed directly.
    let backend = DefaultBackend::new(Threads::Auto);
    let direct = model
        .log_prob(&backend, MatRef::from_slice(&values, n, 2))
        .unwrap();
    assert_eq!(report.scores, direct);
    // Exactly the rows below the threshold are flagged, in order.
    let below: Vec<usize> = (0..n).filter(|&i| direct[i] < report.threshold).collect();
    assert_eq!(report.flagged, below);
    // Every absurd row is flagged.
    for i in n - ABSURD.len()..n {
        assert!(
            report.flagged.contains(&i),
            "absurd row {} (log-density {}) not flagged at threshold {}",
            i + 1,
            report.scores[i],
            report.threshold
        );
    }
    // Few typical rows are: about 1% of fresh data (the threshold is the training rows'
    // 1% quantile; 1 of 200 here). The model's own samples reach into tails the moons do
    // not have, so more of them fall below it (10 of 50 here, and about 15% of samples
    // still after 200 epochs), but far from most.
    let flagged_in =
        |r: std::ops::Range<usize>| report.flagged.iter().filter(|i| r.contains(i)).count();
    let fresh_flagged = flagged_in(0..n_fresh);
    assert!(
        fresh_flagged <= n_fresh / 20,
        "{fresh_flagged} of {n_fresh} fresh moons flagged at the 0.01 quantile"
    );
    let sampled_flagged = flagged_in(n_fresh..n_fresh + n_sampled);
    assert!(
        sampled_flagged <= n_sampled * 2 / 5,
        "{sampled_flagged} of {n_sampled} samples of the model flagged at the 0.01 quantile"
    );

    // A run directory works as well as the file, and `--quantile` moves the threshold.
    for q in [
        ["--quantile", "0.5"].as_slice(),
        ["--quantile=0.5"].as_slice(),
    ] {
        let mut a = args(&[path_str(&run), path_str(&rows)]);
        a.extend(args(q));
        let half = score_service::run(&a).unwrap();
        assert_eq!(half.quantile, 0.5);
        assert_eq!(Some(half.threshold), model.threshold(0.5));
        assert!(half.threshold > report.threshold);
        assert_eq!(half.scores, report.scores);
        assert!(half.flagged.len() >= report.flagged.len());
    }

    // Rows of the wrong width and arrays that are not 2-D are refused.
    let wide = dir.path().join("wide.npy");
    write_npy(&wide, &[0.0; 6], 3);
    let err = score_service::run(&args(&[path_str(&run), path_str(&wide)])).unwrap_err();
    assert!(err.to_string().contains("dimension"), "{err}");
    let flat = dir.path().join("flat.npy");
    std::fs::write(&flat, npy::encode_f64(&[4], &[0.0; 4])).unwrap();
    let err = score_service::run(&args(&[path_str(&run), path_str(&flat)])).unwrap_err();
    assert!(err.to_string().contains("2-D"), "{err}");
}

#[test]
fn a_model_without_quantiles_or_no_model_is_an_error() {
    let dir = tmp();
    let rows = dir.path().join("rows.npy");
    write_npy(&rows, ABSURD.as_flattened(), 2);
    // A model file of the previous release records no quantiles.
    let err = score_service::run(&args(&[path_str(&old_model()), path_str(&rows)])).unwrap_err();
    assert!(err.to_string().contains("quantiles"), "{err}");
    // A missing file, and a directory without model.safetensors.
    let missing = dir.path().join("missing.safetensors");
    let err = score_service::run(&args(&[path_str(&missing), path_str(&rows)])).unwrap_err();
    assert!(err.to_string().contains("missing.safetensors"), "{err}");
    let err = score_service::run(&args(&[path_str(dir.path()), path_str(&rows)])).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn bad_arguments_are_errors() {
    let m = path_str(&old_model()).to_string();
    for (a, needle) in [
        (vec![m.as_str()], "usage"),
        (vec![m.as_str(), "a.npy", "b.npy"], "usage"),
        (vec![m.as_str(), "a.npy", "--quantile"], "needs a value"),
        (vec![m.as_str(), "a.npy", "--quantile", "1.5"], "[0, 1]"),
        (vec![m.as_str(), "a.npy", "--quantile=x"], "[0, 1]"),
        (
            vec![m.as_str(), "a.npy", "--threshold", "3"],
            "unknown option",
        ),
    ] {
        let err = score_service::run(&args(&a)).unwrap_err();
        assert!(err.to_string().contains(needle), "{a:?}: {err}");
    }
}

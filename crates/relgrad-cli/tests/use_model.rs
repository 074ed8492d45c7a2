//! `relgrad eval`, `sample` and `score` on saved models.

mod common;

use common::*;
use predicates::prelude::*;
use relgrad::model::{DensityModel, Network};
use relgrad::{Faer, Threads};
use relgrad_cli::data::{csv, npy};

fn train_digits(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("digits");
    relgrad()
        .args([
            "train",
            "--epochs",
            "2",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    out.join("model.safetensors")
}

#[test]
fn eval_reproduces_the_saved_metrics_exactly() {
    let dir = tmp();
    let model = train_digits(dir.path());
    let recorded = meta_json(&model, "metrics");
    let out = stdout_of(relgrad().args(["eval", model.to_str().unwrap(), "--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for k in [
        "n",
        "ll_mean",
        "ll_2se",
        "ll_data_mean",
        "bits_per_dim",
        "gaussian_ll_mean",
    ] {
        assert_eq!(
            v[k], recorded["test"][k],
            "{k}: eval {} vs saved {}",
            v[k], recorded["test"][k]
        );
    }
    assert_eq!(v["n"], 180);
    assert_eq!(v["split"], "test");
    assert_eq!(v["gaussian_fitted_on"], "training split");
    // The same rows named explicitly, and the run directory instead of the file.
    let dir_arg = model.parent().unwrap().to_str().unwrap();
    let out = stdout_of(relgrad().args([
        "eval", dir_arg, "--data", "digits", "--split", "test", "--json",
    ]));
    let w: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(w["ll_mean"], v["ll_mean"]);
    // Text output names both spaces and the Gaussian.
    relgrad()
        .args(["eval", model.to_str().unwrap()])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("logit space")
                .and(predicate::str::contains("pixel space"))
                .and(predicate::str::contains("bits per dimension"))
                .and(predicate::str::contains("best full-covariance Gaussian")),
        );
    // Bits per dimension follow from the pixel-space log-likelihood.
    let bpd = -v["ll_data_mean"].as_f64().unwrap() / (64.0 * std::f64::consts::LN_2);
    assert!((bpd - v["bits_per_dim"].as_f64().unwrap()).abs() < 1e-9);
}

#[test]
fn sample_writes_npy_csv_and_an_image_grid() {
    let dir = tmp();
    let model = train_digits(dir.path());
    let out = dir.path().join("s.npy");
    relgrad()
        .args([
            "sample",
            model.to_str().unwrap(),
            "-n",
            "12",
            "--out",
            out.to_str().unwrap(),
            "--seed",
            "3",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 12 samples"));
    let a = npy::read(&out).unwrap();
    assert_eq!(a.shape, vec![12, 64]);
    assert!(
        a.values
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0),
        "pixels in the data's units"
    );
    assert!(dir.path().join("s.png").exists());
    // Same seed, same samples, as CSV.
    let out_csv = dir.path().join("s.csv");
    relgrad()
        .args([
            "sample",
            model.to_str().unwrap(),
            "-n",
            "12",
            "--out",
            out_csv.to_str().unwrap(),
            "--seed",
            "3",
        ])
        .assert()
        .success();
    assert_eq!(csv::read(&out_csv).unwrap().table.values, a.values);
}

#[test]
fn samples_of_2d_data_come_back_in_the_data_units() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args([
            "train",
            "--data",
            "sine",
            "--n",
            "400",
            // Two epochs of the 2-layer smooth leaky ReLU stay close to its start, whose
            // samples have the data's spread.
            "--layers",
            "2",
            "--activation",
            "smooth-leaky-relu",
            "--alpha",
            "0.01",
            "--epochs",
            "2",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out = dir.path().join("s.csv");
    relgrad()
        .args([
            "sample",
            run.to_str().unwrap(),
            "-n",
            "500",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    let t = csv::read(&out).unwrap().table;
    assert_eq!((t.rows, t.cols), (500, 2));
    // x is uniform on [-4, 4] (interquartile range 4; about 1.7 once standardised).
    let mut x: Vec<f64> = (0..t.rows).map(|i| t.get(i, 0)).collect();
    x.sort_by(f64::total_cmp);
    let (q25, q50, q75) = (x[125], x[250], x[375]);
    assert!(
        q50.abs() < 1.5 && q75 - q25 > 2.5 && q75 - q25 < 6.0,
        "quartiles {q25} {q50} {q75}: not in the sine data's units"
    );
    relgrad()
        .args([
            "sample",
            run.to_str().unwrap(),
            "-n",
            "5",
            "--out",
            dir.path().join("s.txt").to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(".npy or .csv"));
}

#[test]
fn score_agrees_with_the_library_log_prob() {
    let dir = tmp();
    let data = csv_data(dir.path(), "d.csv", 60, 4, 3);
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .args(["--preprocess", "none", "--precision", "f64"])
        .assert()
        .success();
    let out = dir.path().join("scores.csv");
    score(&run, data.to_str().unwrap(), &out)
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote 60 log-densities"));
    let scores = csv::read(&out).unwrap();
    assert_eq!(scores.header.as_deref().unwrap(), ["row", "log_density"]);
    let mf = DensityModel::load(run.join("model.safetensors")).unwrap();
    let Network::F64(m) = mf.network else {
        panic!("f64")
    };
    let x = csv::read(&data).unwrap().table.to_mat::<f64>();
    let lp = m.log_prob(&Faer::new(Threads::Auto), x.as_ref()).unwrap();
    for (i, want) in lp.iter().enumerate() {
        assert_eq!(scores.table.get(i, 0), i as f64, "row order");
        assert_eq!(scores.table.get(i, 1), *want, "row {i}");
    }
    // The same as .npy.
    let out_npy = dir.path().join("scores.npy");
    score(&run, data.to_str().unwrap(), &out_npy)
        .assert()
        .success();
    assert_eq!(npy::read(&out_npy).unwrap().values, lp);
}

#[test]
fn score_in_data_units_adds_the_standardisation_jacobian() {
    let dir = tmp();
    let data = csv_data(dir.path(), "d.csv", 60, 3, 8);
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .assert()
        .success();
    let score = |space: &str, name: &str| {
        let out = dir.path().join(name);
        relgrad()
            .args([
                "score",
                run.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--space",
                space,
                "--out",
                out.to_str().unwrap(),
            ])
            .assert()
            .success();
        npy::read(&out).unwrap().values
    };
    let (d, m) = (score("data", "d.npy"), score("model", "m.npy"));
    let pre = meta_json(&run.join("model.safetensors"), "preprocess");
    let log_std: f64 = pre["std"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap().ln())
        .sum();
    for (a, b) in d.iter().zip(&m) {
        assert!((a - (b - log_std)).abs() < 1e-9);
    }
}

#[test]
fn eval_of_a_generator_redraws_the_model_s_own_split() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args([
            "train", "--data", "2spirals", "--n", "300", "--epochs", "2", "--seed", "4", "--quiet",
        ])
        .args(["--out", run.to_str().unwrap()])
        .assert()
        .success();
    let recorded = meta_json(&run.join("model.safetensors"), "metrics");
    let out = stdout_of(relgrad().args([
        "eval",
        run.to_str().unwrap(),
        "--data",
        "2spirals",
        "--split",
        "test",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["n"], 30);
    assert_eq!(v["ll_mean"], recorded["test"]["ll_mean"]);
    // A fresh draw is evaluated on all of its rows.
    let out = stdout_of(relgrad().args([
        "eval",
        run.to_str().unwrap(),
        "--data",
        "2spirals",
        "--n",
        "50",
        "--seed",
        "9",
        "--json",
    ]));
    let w: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (w["n"].as_u64(), w["split"].as_str()),
        (Some(50), Some("all"))
    );
}

/// A spline model through every verb of the tool: trained, sampled, scored (the same bits
/// as the library's `log_prob`) and evaluated on its own test rows.
#[test]
fn a_spline_model_samples_scores_and_evaluates() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args(["train", "--data", "moons", "--n", "400", "--epochs", "5"])
        .args(["--activation", "spline", "--bins", "8", "--bound", "3"])
        .args([
            "--precision",
            "f64",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ])
        .assert()
        .success();
    let mf = DensityModel::load(run.join("model.safetensors")).unwrap();
    assert_eq!(
        mf.network.activation(),
        relgrad::Activation::Spline {
            bins: 8,
            bound: 3.0
        }
    );
    sample_score_and_eval(dir.path(), &run, &mf);
}

/// A 2-D moons model of `run` through `sample` (50 rows), `score` (the same bits as the
/// library's `log_prob` of `mf`) and `eval --json` on its own test rows (the recorded
/// test log-likelihood).
fn sample_score_and_eval(dir: &std::path::Path, run: &std::path::Path, mf: &DensityModel) {
    let points = dir.join("points.csv");
    relgrad()
        .args(["sample", run.to_str().unwrap(), "-n", "50", "--seed", "1"])
        .args(["--out", points.to_str().unwrap()])
        .assert()
        .success();
    let out = dir.join("scores.npy");
    score(run, points.to_str().unwrap(), &out)
        .assert()
        .success();
    let x = csv::read(&points).unwrap().table.to_mat::<f64>();
    assert_eq!((x.rows(), x.cols()), (50, 2));
    let lp = mf.log_prob(&Faer::new(Threads::Auto), x.as_ref()).unwrap();
    assert!(lp.iter().all(|v| v.is_finite()));
    assert_eq!(npy::read(&out).unwrap().values, lp);
    let recorded = meta_json(&run.join("model.safetensors"), "metrics");
    let out = stdout_of(relgrad().args([
        "eval",
        run.to_str().unwrap(),
        "--data",
        "moons",
        "--split",
        "test",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ll_mean"], recorded["test"]["ll_mean"]);
}

/// A model with a learnable mixture base (`--base mixture --components 2`) through every
/// verb: trained, written as format version 3, sampled, scored (the same bits as the
/// library's `log_prob`) and evaluated on its own test rows.
#[test]
fn a_mixture_base_model_samples_scores_and_evaluates() {
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args(["train", "--data", "moons", "--n", "400", "--epochs", "5"])
        .args(["--base", "mixture", "--components", "2"])
        .args([
            "--precision",
            "f64",
            "--quiet",
            "--out",
            run.to_str().unwrap(),
        ])
        .assert()
        .success();
    let file = run.join("model.safetensors");
    let meta = metadata(&file);
    assert_eq!(
        (
            meta["format_version"].as_str(),
            meta["base"].as_str(),
            meta["components"].as_str()
        ),
        (Some("3"), Some("mixture"), Some("2"))
    );
    let training = meta_json(&file, "training");
    assert_eq!(training["components"], 2, "{training}");
    let mf = DensityModel::load(&file).unwrap();
    assert_eq!(
        mf.network.base(),
        relgrad::BaseDensity::Mixture { components: 2 }
    );
    let Network::F64(net) = &mf.network else {
        panic!("f64")
    };
    let params = net.base_params().expect("the mixture's parameters");
    assert_eq!((params.rows(), params.cols()), (2, 6));
    sample_score_and_eval(dir.path(), &run, &mf);
    // The text report names the base.
    let text = stdout_of(relgrad().args(["eval", run.to_str().unwrap()]));
    assert!(
        text.contains("a mixture base of 2 logistics per coordinate"),
        "{text}"
    );
}

/// `--components` without `--base mixture`, or out of range, is a usage error naming the
/// flag; with `--init` it must agree with the model's base.
#[test]
fn components_need_a_mixture_base_in_range() {
    let refused = |args: &[&str], needle: &str| {
        relgrad()
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(needle));
    };
    refused(
        &["train", "--data", "moons", "--components", "3"],
        "--components applies only to --base mixture",
    );
    refused(
        &[
            "train",
            "--data",
            "moons",
            "--base",
            "laplace",
            "--components",
            "3",
        ],
        "--components applies only to --base mixture, and the base is laplace",
    );
    for bad in ["0", "65", "two"] {
        refused(
            &[
                "train",
                "--data",
                "moons",
                "--base",
                "mixture",
                "--components",
                bad,
            ],
            "invalid value",
        );
        refused(
            &["train", "--base", "mixture", "--components", bad],
            "--components",
        );
    }
    refused(
        &["train", "--base", "mixture", "--components", "0"],
        "a mixture base needs 1 to 64 components, got 0",
    );
    // From a model: the base and its components come from the model, and flags that
    // contradict them are refused.
    let dir = tmp();
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args("moons", run.to_str().unwrap()))
        .args(["--n", "300", "--activation", "tanh-linear", "--layers", "2"])
        .args(["--base", "mixture", "--components", "2"])
        .assert()
        .success();
    let init = |extra: &[&str], out: &str| {
        let mut cmd = relgrad();
        cmd.args(quick_train_args(
            "moons",
            dir.path().join(out).to_str().unwrap(),
        ))
        .args(["--n", "300", "--init", run.to_str().unwrap()])
        .args(extra);
        cmd
    };
    init(&["--components", "3"], "a")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--components 3 conflicts with the --init model",
        ));
    init(&["--base", "normal"], "b")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--base normal conflicts with the --init model",
        ));
    init(&["--base", "mixture", "--components", "2"], "c")
        .assert()
        .success();
    let meta = metadata(&dir.path().join("c").join("model.safetensors"));
    assert_eq!(
        (meta["base"].as_str(), meta["components"].as_str()),
        (Some("mixture"), Some("2"))
    );
    // A model with a fixed base has no components to give.
    let plain = dir.path().join("plain");
    relgrad()
        .args(quick_train_args("moons", plain.to_str().unwrap()))
        .args(["--n", "300", "--activation", "tanh-linear", "--layers", "2"])
        .assert()
        .success();
    relgrad()
        .args(quick_train_args(
            "moons",
            dir.path().join("d").to_str().unwrap(),
        ))
        .args(["--n", "300", "--init", plain.to_str().unwrap()])
        .args(["--components", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("which has a normal base"));
}

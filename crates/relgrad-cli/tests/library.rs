//! The CLI and the library share one model file and one pipeline: a model saved by the
//! library is used by the CLI and the reverse, with the same log-likelihoods (1e-10 in
//! f64) on the same rows.

mod common;

use common::*;
use relgrad::model::{DensityModel, FitConfig, Part, Precision, Stop};
use relgrad::{Faer, Threads};
use relgrad_cli::data::{csv, split, Source, SplitSpec};

fn eval_json(args: &[&str]) -> serde_json::Value {
    let out = stdout_of(relgrad().args(args).arg("--json"));
    serde_json::from_str(&out).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn a_model_saved_by_the_library_is_used_by_the_cli() {
    let dir = tmp();
    let data = csv_data(dir.path(), "x.csv", 400, 3, 11);
    let x = csv::read(&data).unwrap().table;
    let be = Faer::new(Threads::Fixed(1));
    let config = FitConfig {
        precision: Precision::F64,
        max_epochs: 3,
        ..FitConfig::default()
    };
    let fitted = relgrad::fit(&be, &config, x.as_mat(), None).unwrap();
    assert_eq!(fitted.stop, Stop::MaxEpochs);
    let path = dir.path().join("lib.safetensors");
    fitted.model.save(&path).unwrap();

    let v = eval_json(&[
        "eval",
        path.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    let lib = mean(&fitted.model.log_prob(&be, x.as_mat()).unwrap());
    let cli = v["ll_data_mean"].as_f64().unwrap();
    assert!((lib - cli).abs() < 1e-10, "library {lib} vs CLI {cli}");
    // The CLI can also sample from it and start training from it.
    relgrad()
        .args(["sample", path.to_str().unwrap(), "-n", "5", "--out"])
        .arg(dir.path().join("s.npy"))
        .assert()
        .success();
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .args(["--init", path.to_str().unwrap(), "--precision", "f64"])
        .assert()
        .success();
}

#[test]
fn image_models_agree_in_pixel_units_both_ways() {
    let dir = tmp();
    // The CLI trains on the digits; the library scores its test split.
    let run = dir.path().join("cli");
    relgrad()
        .args(quick_train_args("digits", run.to_str().unwrap()))
        .args(["--precision", "f64"])
        .assert()
        .success();
    let model = DensityModel::load(run.join("model.safetensors")).unwrap();
    assert_eq!(model.preprocess.levels(), Some(17));
    assert!(
        model.threshold(0.01).is_some(),
        "new files record quantiles"
    );
    let spec = SplitSpec {
        seed: 0,
        val_fraction: 0.1,
        test_fraction: 0.1,
        val: None,
        test: None,
    };
    let s = split(Source::Digits.load().unwrap(), &spec).unwrap();
    let test = s.test.unwrap();
    let be = Faer::new(Threads::Fixed(1));
    let lib = mean(&model.log_prob_part(&be, test.as_mat(), Part::Test).unwrap());
    let v = eval_json(&["eval", run.to_str().unwrap()]);
    let cli = v["ll_data_mean"].as_f64().unwrap();
    assert!((lib - cli).abs() < 1e-10, "library {lib} vs CLI {cli}");
    let bits = mean(&model.bits_per_dim(&be, test.as_mat()).unwrap());
    assert!(bits.is_finite() && bits > 0.0);

    // The library trains on the digits; the CLI evaluates all of them.
    let all = Source::Digits.load().unwrap().main.table;
    let config = FitConfig {
        levels: Some(17),
        precision: Precision::F64,
        max_epochs: 1,
        seed: 3,
        ..FitConfig::default()
    };
    let fitted = relgrad::fit(&be, &config, all.as_mat(), None).unwrap();
    let path = dir.path().join("lib.safetensors");
    fitted.model.save(&path).unwrap();
    let v = eval_json(&["eval", path.to_str().unwrap(), "--data", "digits"]);
    let lib = mean(&fitted.model.log_prob(&be, all.as_mat()).unwrap());
    let cli = v["ll_data_mean"].as_f64().unwrap();
    assert!((lib - cli).abs() < 1e-10, "library {lib} vs CLI {cli}");
}

#[test]
fn the_cli_and_the_library_train_the_same_model() {
    let dir = tmp();
    let data = csv_data(dir.path(), "x.csv", 300, 2, 5);
    let run = dir.path().join("run");
    relgrad()
        .args(quick_train_args(
            data.to_str().unwrap(),
            run.to_str().unwrap(),
        ))
        .args([
            "--precision",
            "f64",
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0",
        ])
        .assert()
        .success();
    let cli = DensityModel::load(run.join("model.safetensors")).unwrap();
    let x = csv::read(&data).unwrap().table;
    let spec = SplitSpec {
        seed: 0,
        val_fraction: 0.2,
        test_fraction: 0.0,
        val: None,
        test: None,
    };
    let s = split(Source::Path(data.clone()).load().unwrap(), &spec).unwrap();
    assert_eq!(s.train.table.rows + s.val.as_ref().unwrap().rows, x.rows);
    // The tool chooses the architecture by the data's width, as the library's rule says.
    let d = FitConfig::default();
    let (activation, n_layers) =
        relgrad::model::automatic_architecture(x.cols).unwrap_or((d.activation, d.n_layers));
    let config = FitConfig {
        precision: Precision::F64,
        max_epochs: 2,
        activation,
        n_layers,
        ..d
    };
    let be = Faer::new(Threads::Auto);
    let val = s.val.as_ref().unwrap();
    let lib = relgrad::fit(&be, &config, s.train.table.as_mat(), Some(val.as_mat())).unwrap();
    let (a, b) = (
        cli.network.parameters_f64(),
        lib.model.network.parameters_f64(),
    );
    for ((wa, ba), (wb, bb)) in a.iter().zip(&b) {
        for (p, q) in wa
            .as_slice()
            .iter()
            .zip(wb.as_slice())
            .chain(ba.iter().zip(bb))
        {
            assert!((p - q).abs() < 1e-10, "{p} vs {q}");
        }
    }
    assert_eq!(cli.preprocess, lib.model.preprocess);
}

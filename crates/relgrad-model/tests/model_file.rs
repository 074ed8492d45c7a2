//! The model file: validation on load (one test per kind of error, each checking that
//! the message names the key or tensor and what was expected), round trips, and the
//! errors of `DensityModel::load` (which name the file).

mod common;

use common::{random_mlp, Parts, RawTensor};
use relgrad_core::Activation;
use relgrad_model::model_file::{FORMAT, FORMAT_VERSION};
use relgrad_model::{DensityModel, Error, ImageShape, Network, Preprocess};
use serde_json::json;

/// A valid model: dimension 2, 2 layers, `f64`, standardised, with quantiles and metadata.
fn model() -> DensityModel {
    let net = Network::F64(random_mlp(
        2,
        2,
        Activation::SmoothLeakyRelu { alpha: 0.2 },
        3,
    ));
    let pre = Preprocess::Standardize {
        mean: vec![1.5, -2.0],
        std: vec![0.5, 3.0],
    };
    let mut m = DensityModel::new(net, pre).unwrap();
    m.seed = 11;
    m.train_quantiles = Some(vec![(0.0, -9.0), (0.5, -3.25), (1.0, -0.5)]);
    m.data = json!({"rows": {"train": 10}});
    m.training = json!({"seed": 11, "epochs": 4});
    m.metrics = json!({"train": {"ll_mean": -1.25}});
    m
}

/// The valid model's file, taken apart.
fn parts() -> Parts {
    Parts::of(&model().to_bytes().unwrap())
}

/// Loads `bytes`, expecting [`Error::Invalid`] whose message contains every needle.
fn refused(bytes: &[u8], needles: &[&str]) -> String {
    let e = match DensityModel::from_bytes(bytes) {
        Ok(_) => panic!("the file was accepted; expected an error containing {needles:?}"),
        Err(e) => e,
    };
    let msg = e.to_string();
    assert!(matches!(e, Error::Invalid(_)), "not Error::Invalid: {e:?}");
    for n in needles {
        assert!(msg.contains(n), "the message {msg:?} lacks {n:?}");
    }
    msg
}

fn refused_meta(key: &str, value: &str, needles: &[&str]) -> String {
    refused(&parts().with(key, value).bytes(), needles)
}

#[test]
fn the_valid_file_loads() {
    // The baseline every error case below edits.
    let m = model();
    assert_eq!(DensityModel::from_bytes(&parts().bytes()).unwrap(), m);
}

// ---- the container -------------------------------------------------------------------

#[test]
fn garbage_bytes_are_not_a_safetensors_file() {
    refused(
        b"",
        &["not a safetensors file", "0 bytes", "8-byte header length"],
    );
    refused(b"PK\x03\x04", &["not a safetensors file", "4 bytes"]);
    // Text: its first 8 bytes read as a huge header length.
    refused(
        b"this is certainly not a model file, just some text",
        &[
            "not a safetensors file",
            "its header claims",
            "the limit is 100000000",
        ],
    );
    // A plausible length followed by a header that is not JSON.
    let mut b = 6u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{oops}");
    refused(&b, &["not a safetensors file"]);
    // The real file with its body cut short.
    let good = parts().bytes();
    refused(&good[..good.len() - 3], &["not a safetensors file"]);
}

#[test]
fn a_header_longer_than_the_file_is_refused() {
    let mut b = 1000u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    refused(
        &b,
        &[
            "its header claims 1000 bytes",
            "the file has 2 after the length",
        ],
    );
}

#[test]
fn a_header_over_the_limit_is_refused() {
    let mut b = 100_000_001u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    refused(&b, &["claims 100000001 bytes", "the limit is 100000000"]);
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(&[b' '; 64]);
    refused(
        &b,
        &[
            "claims 18446744073709551615 bytes",
            "the limit is 100000000",
        ],
    );
}

// ---- format and version --------------------------------------------------------------

#[test]
fn wrong_or_missing_format() {
    refused_meta(
        "format",
        "pytorch",
        &["its format is \"pytorch\"", &format!("expected {FORMAT:?}")],
    );
    refused(
        &parts().without("format").bytes(),
        &["no \"format\" metadata"],
    );
}

#[test]
fn a_checkpoint_is_not_a_model_file() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/v1-moons-f64.checkpoint.safetensors"
    );
    let e = DensityModel::load(p).unwrap_err().to_string();
    assert!(e.contains("its format is \"relgrad-checkpoint\""), "{e}");
    assert!(e.contains("v1-moons-f64.checkpoint.safetensors"), "{e}");
}

#[test]
fn unknown_format_version() {
    refused_meta(
        "format_version",
        "4",
        &["\"format_version\" is \"4\"", "reads version 1, 2, 3"],
    );
    refused(
        &parts().without("format_version").bytes(),
        &["no \"format_version\" key"],
    );
}

// ---- architecture keys ---------------------------------------------------------------

#[test]
fn missing_dim() {
    refused(
        &parts().without("dim").bytes(),
        &["the metadata has no \"dim\" key"],
    );
}

#[test]
fn invalid_dim() {
    for v in ["0", "abc", "-2", "2.0", "65537", "99999999999999999999999"] {
        refused_meta(
            "dim",
            v,
            &[
                &format!("metadata \"dim\" is {v:?}"),
                "expected a whole number from 1 to 65536",
            ],
        );
    }
}

#[test]
fn a_dim_that_disagrees_with_the_tensors() {
    // Valid as a number, but the weights are 2 x 2.
    refused_meta(
        "dim",
        "3",
        &["tensor \"layers.0.weight\" has shape [2, 2], expected [3, 3]"],
    );
}

#[test]
fn absurd_n_layers_is_refused_before_allocating() {
    refused_meta(
        "n_layers",
        "1000000000000",
        &[
            "metadata \"n_layers\" is \"1000000000000\"",
            "expected a whole number from 1 to 100000",
        ],
    );
    refused_meta(
        "n_layers",
        "0",
        &["metadata \"n_layers\" is \"0\"", "from 1 to 100000"],
    );
}

#[test]
fn n_layers_smaller_than_the_tensors() {
    refused_meta(
        "n_layers",
        "1",
        &[
            "unexpected tensor \"layers.1.",
            "n_layers = 1",
            "expected layers.0 to layers.0",
        ],
    );
}

#[test]
fn n_layers_larger_than_the_tensors() {
    refused_meta(
        "n_layers",
        "3",
        &["tensor \"layers.2.", "is missing", "n_layers = 3"],
    );
}

#[test]
fn a_missing_or_extra_tensor() {
    refused(
        &parts().without_tensor("layers.1.bias").bytes(),
        &["tensor \"layers.1.bias\" is missing"],
    );
    let extra = parts().tensor("layers.0.bias");
    refused(
        &parts().with_tensor("layers.0.scale", extra).bytes(),
        &["unexpected tensor \"layers.0.scale\""],
    );
}

#[test]
fn unknown_activation() {
    refused_meta(
        "activation",
        "relu",
        &[
            "metadata \"activation\" is \"relu\"",
            "\"smooth-leaky-relu\"",
            "\"tanh-linear\"",
        ],
    );
}

#[test]
fn alpha_out_of_range() {
    // Activation::validate: smooth leaky ReLU needs 0 < alpha < 1.
    for a in ["-1", "0", "1", "2"] {
        refused_meta(
            "alpha",
            a,
            &[
                &format!("metadata \"alpha\" is {a}"),
                "0 < alpha < 1",
                &format!("got {a}"),
            ],
        );
    }
    // leaky ReLU accepts alpha = 1 but not 1.5; tanh-linear needs beta > 0.
    let p = parts().with("activation", "leaky-relu");
    assert!(DensityModel::from_bytes(&p.clone().with("alpha", "1").bytes()).is_ok());
    refused(
        &p.with("alpha", "1.5").bytes(),
        &["metadata \"alpha\" is 1.5", "0 < alpha <= 1"],
    );
    refused(
        &parts()
            .with("activation", "tanh-linear")
            .with("alpha", "-0.5")
            .bytes(),
        &["metadata \"alpha\" is -0.5", "beta > 0"],
    );
}

#[test]
fn alpha_not_a_finite_number() {
    for a in ["NaN", "inf", "-inf", "abc", ""] {
        refused_meta(
            "alpha",
            a,
            &[
                &format!("metadata \"alpha\" is {a:?}"),
                "expected a finite number",
            ],
        );
    }
    refused(&parts().without("alpha").bytes(), &["no \"alpha\" key"]);
}

#[test]
fn unknown_base() {
    refused_meta(
        "base",
        "cauchy",
        &[
            "metadata \"base\" is \"cauchy\"",
            "\"normal\", \"laplace\", \"logistic\" or \"mixture\"",
        ],
    );
}

#[test]
fn use_bias_not_a_boolean() {
    refused_meta(
        "use_bias",
        "yes",
        &[
            "metadata \"use_bias\" is \"yes\"",
            "expected \"true\" or \"false\"",
        ],
    );
}

#[test]
fn use_bias_false_with_nonzero_biases() {
    refused_meta(
        "use_bias",
        "false",
        &["the stored network is invalid", "non-zero bias"],
    );
}

#[test]
fn unknown_precision() {
    refused_meta(
        "precision",
        "f16",
        &[
            "metadata \"precision\" is \"f16\"",
            "expected \"f32\" or \"f64\"",
        ],
    );
}

#[test]
fn precision_disagreeing_with_the_dtype() {
    let f32_model = {
        let mut m = model();
        m.network = Network::F32(m.network.cast());
        m
    };
    let p = Parts::of(&f32_model.to_bytes().unwrap());
    assert_eq!(p.meta["precision"], "f32");
    refused(
        &p.with("precision", "f64").bytes(),
        &[
            "tensor \"layers.0.",
            "has dtype F32, expected F64",
            "the metadata's precision is f64",
        ],
    );
    refused_meta(
        "precision",
        "f32",
        &[
            "has dtype F64, expected F32",
            "the metadata's precision is f32",
        ],
    );
}

// ---- tensors -------------------------------------------------------------------------

#[test]
fn a_weight_with_the_wrong_shape() {
    let t = RawTensor::f64s(vec![3, 2], &[1.0, 0.0, 0.0, 1.0, 0.5, 0.5]);
    refused(
        &parts().with_tensor("layers.1.weight", t).bytes(),
        &["tensor \"layers.1.weight\" has shape [3, 2], expected [2, 2]"],
    );
    let t = RawTensor::f64s(vec![4], &[1.0, 0.0, 0.0, 1.0]);
    refused(
        &parts().with_tensor("layers.0.weight", t).bytes(),
        &["tensor \"layers.0.weight\" has shape [4], expected [2, 2]"],
    );
    let t = RawTensor::f64s(vec![1, 2], &[0.0, 0.0]);
    refused(
        &parts().with_tensor("layers.0.bias", t).bytes(),
        &["tensor \"layers.0.bias\" has shape [1, 2], expected [2]"],
    );
}

#[test]
fn a_weight_with_an_integer_dtype() {
    let t = RawTensor::i32s(vec![2, 2], &[1, 0, 0, 1]);
    refused(
        &parts().with_tensor("layers.0.weight", t).bytes(),
        &["tensor \"layers.0.weight\" has dtype I32, expected F64"],
    );
}

#[test]
fn nan_in_a_weight_names_the_tensor_row_and_column() {
    let p = parts();
    let mut w = p.tensor("layers.1.weight");
    w.set(2, f64::NAN); // row 2, column 1 of a 2 x 2 row-major weight
    refused(
        &p.with_tensor("layers.1.weight", w).bytes(),
        &[
            "tensor \"layers.1.weight\"",
            "non-finite value (NaN)",
            "row 2, column 1",
        ],
    );
    let p = parts();
    let mut w = p.tensor("layers.0.weight");
    w.set(1, f64::NEG_INFINITY);
    refused(
        &p.with_tensor("layers.0.weight", w).bytes(),
        &["tensor \"layers.0.weight\"", "(-inf)", "row 1, column 2"],
    );
}

#[test]
fn nan_in_a_bias_names_the_tensor_and_entry() {
    let p = parts();
    let mut b = p.tensor("layers.0.bias");
    b.set(1, f64::NAN);
    refused(
        &p.with_tensor("layers.0.bias", b).bytes(),
        &[
            "tensor \"layers.0.bias\"",
            "non-finite value (NaN)",
            "entry 2",
        ],
    );
}

#[test]
fn nan_in_an_f32_weight() {
    let mut m = model();
    m.network = Network::F32(m.network.cast());
    let p = Parts::of(&m.to_bytes().unwrap());
    let mut w = p.tensor("layers.1.weight");
    w.set(3, f64::INFINITY);
    refused(
        &p.with_tensor("layers.1.weight", w).bytes(),
        &["tensor \"layers.1.weight\"", "(inf)", "row 2, column 2"],
    );
}

#[test]
fn a_singular_weight_is_loaded_but_cannot_score() {
    // A zero weight is a valid file (the format checks finiteness, not invertibility);
    // the verbs then report the singular layer instead of returning garbage.
    let t = RawTensor::f64s(vec![2, 2], &[0.0; 4]);
    let m = DensityModel::from_bytes(&parts().with_tensor("layers.1.weight", t).bytes()).unwrap();
    let x = relgrad_core::Mat::from_vec(1, 2, vec![0.0, 0.0]);
    assert!(m.log_prob(&common::backend(), x.as_ref()).is_err());
}

// ---- preprocessing -------------------------------------------------------------------

#[test]
fn standardize_with_the_wrong_length() {
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[0.0],"std":[1.0,1.0]}"#,
        &["metadata \"preprocess\"", "mean has 1 values, expected 2"],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[0.0,0.0],"std":[1.0,1.0,1.0]}"#,
        &["metadata \"preprocess\"", "std has 3 values, expected 2"],
    );
}

#[test]
fn standardize_with_a_zero_or_negative_std() {
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[0.0,0.0],"std":[1.0,0.0]}"#,
        &[
            "metadata \"preprocess\"",
            "std of column 2 is 0",
            "expected a positive finite number",
        ],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[0.0,0.0],"std":[-1.0,1.0]}"#,
        &["std of column 1 is -1"],
    );
}

#[test]
fn standardize_with_a_nan_mean() {
    // JSON has no NaN: writers produce a string or null.
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[0.0,"NaN"],"std":[1.0,1.0]}"#,
        &[
            "metadata \"preprocess\"",
            "mean of column 2 is \"NaN\"",
            "expected a number",
        ],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[null,0.0],"std":[1.0,1.0]}"#,
        &["mean of column 1 is null", "expected a number"],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","std":[1.0,1.0]}"#,
        &["no \"mean\" list of numbers"],
    );
    // A bare NaN token is not JSON at all.
    refused_meta(
        "preprocess",
        r#"{"kind":"standardize","mean":[NaN,0.0],"std":[1.0,1.0]}"#,
        &["metadata \"preprocess\" is not valid JSON"],
    );
}

#[test]
fn logit_with_too_few_levels() {
    for l in [0, 1] {
        refused_meta(
            "preprocess",
            &format!(r#"{{"kind":"logit","levels":{l},"lambda":1e-6}}"#),
            &[
                "metadata \"preprocess\"",
                &format!("levels is {l}, expected 2 to 16777216"),
            ],
        );
    }
    refused_meta(
        "preprocess",
        r#"{"kind":"logit","levels":16777217}"#,
        &["levels is 16777217, expected 2 to 16777216"],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"logit","levels":4294967297}"#,
        &["levels is 4294967297"],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"logit","levels":"17"}"#,
        &["levels is \"17\", expected a whole number"],
    );
    refused_meta(
        "preprocess",
        r#"{"kind":"logit","levels":17,"lambda":0.5}"#,
        &["lambda is 0.5, expected a number in (0, 0.5)"],
    );
}

#[test]
fn unknown_preprocessing_kind() {
    refused_meta(
        "preprocess",
        r#"{"kind":"whiten"}"#,
        &[
            "metadata \"preprocess\"",
            "unknown preprocessing \"whiten\"",
            "\"none\", \"standardize\" or \"logit\"",
        ],
    );
    refused_meta(
        "preprocess",
        "{",
        &["metadata \"preprocess\" is not valid JSON"],
    );
    refused(
        &parts().without("preprocess").bytes(),
        &["the metadata has no \"preprocess\" key"],
    );
}

#[test]
fn image_shape_disagreeing_with_dim() {
    refused_meta(
        "image",
        r#"{"height":2,"width":2}"#,
        &[
            "metadata \"image\" is {\"height\":2,\"width\":2}",
            "h * w = dim = 2",
        ],
    );
    refused_meta("image", r#"{"height":2}"#, &["metadata \"image\""]);
    refused_meta(
        "image",
        r#"{"height":4294967296,"width":4294967296}"#,
        &["metadata \"image\"", "dim = 2"],
    );
    let m = DensityModel::from_bytes(&parts().with("image", r#"{"height":1,"width":2}"#).bytes())
        .unwrap();
    assert_eq!(
        m.image,
        Some(ImageShape {
            height: 1,
            width: 2
        })
    );
}

#[test]
fn malformed_quantiles() {
    for v in [
        r#"{"0.5": -1}"#,
        "[[0.5]]",
        "[[0.5, -1.0, 2.0]]",
        "[[0.1, null]]",
        r#"[["0.1", -1.0]]"#,
        "[[0.5, -1.0], [0.4, -0.5]]",
        "[[0.5, -1.0], [0.5, -0.5]]",
        "[[-0.1, -1.0]]",
        "[[1.5, -1.0]]",
        "[0.5, -1.0]",
    ] {
        refused_meta(
            "train_log_prob_quantiles",
            v,
            &[
                "metadata \"train_log_prob_quantiles\" is",
                "expected [[q, log_density], ...]",
            ],
        );
    }
    refused_meta(
        "train_log_prob_quantiles",
        "[[0.5, -1.0",
        &["metadata \"train_log_prob_quantiles\" is not valid JSON"],
    );
    // Absent or empty: no quantiles (files written before 0.1).
    let m = DensityModel::from_bytes(&parts().without("train_log_prob_quantiles").bytes()).unwrap();
    assert_eq!(m.train_quantiles, None);
    let m =
        DensityModel::from_bytes(&parts().with("train_log_prob_quantiles", "[]").bytes()).unwrap();
    assert_eq!(m.train_quantiles, None);
}

#[test]
fn training_not_json() {
    refused_meta(
        "training",
        "epochs=3",
        &["metadata \"training\" is not valid JSON"],
    );
    refused_meta(
        "training",
        r#"{"seed": "seven"}"#,
        &[
            "metadata \"training\"",
            "its seed is \"seven\"",
            "expected a whole number",
        ],
    );
    refused_meta("training", r#"{"seed": -1}"#, &["its seed is -1"]);
    refused_meta("data", "{rows", &["metadata \"data\" is not valid JSON"]);
    refused_meta("metrics", "", &["metadata \"metrics\" is not valid JSON"]);
}

// ---- round trips ---------------------------------------------------------------------

fn preprocessings(dim: usize) -> Vec<Preprocess> {
    vec![
        Preprocess::None,
        Preprocess::Standardize {
            mean: (0..dim).map(|j| 0.1 + j as f64 / 3.0).collect(),
            std: (0..dim).map(|j| 1.0 / 7.0 + j as f64).collect(),
        },
        Preprocess::Logit {
            levels: 256,
            lambda: 1e-6,
        },
    ]
}

#[test]
fn save_then_load_gives_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let dim = 4;
    let f64_net = random_mlp(dim, 3, Activation::SmoothLeakyRelu { alpha: 0.01 }, 5);
    for net in [Network::F64(f64_net.clone()), Network::F32(f64_net.cast())] {
        for pre in preprocessings(dim) {
            let mut m = DensityModel::new(net.clone(), pre.clone()).unwrap();
            m.seed = 123_456_789_012;
            m.image = pre.levels().map(|_| ImageShape {
                height: 2,
                width: 2,
            });
            m.train_quantiles = Some(vec![(0.0, -12.5), (0.1, -7.0 / 3.0), (1.0, 0.1)]);
            m.data = json!({"source": "test", "rows": {"train": 7}});
            m.training = json!({"seed": 123_456_789_012u64, "lr": 0.1});
            m.metrics = json!({"ll": -1.0 / 3.0});
            let path = dir.path().join(format!(
                "{}-{}.safetensors",
                net.precision().name(),
                pre.name()
            ));
            m.save(&path).unwrap();
            let back = DensityModel::load(&path).unwrap();
            assert_eq!(back, m, "{} {}", net.precision().name(), pre.name());
            assert_eq!(DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
            // The file holds the tensors in the network's precision.
            let p = Parts::of(&std::fs::read(&path).unwrap());
            assert_eq!(p.meta["precision"], net.precision().name());
            assert_eq!(p.tensors.len(), 6);
        }
    }
}

#[test]
fn the_seed_survives_a_round_trip_without_training_metadata() {
    // A model made with `new` and then given a seed, or whose training JSON records
    // another seed: the file must reproduce the model's own seed (it seeds the
    // dequantisation noise of every verb).
    let net = Network::F64(random_mlp(4, 1, Activation::default(), 1));
    let pre = Preprocess::Logit {
        levels: 17,
        lambda: 1e-6,
    };
    let mut m = DensityModel::new(net, pre).unwrap();
    m.seed = 42;
    assert_eq!(
        DensityModel::from_bytes(&m.to_bytes().unwrap())
            .unwrap()
            .seed,
        42
    );
    m.training = json!({"seed": 7, "epochs": 3});
    let back = DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap();
    assert_eq!(back.seed, 42);
    let x = relgrad_core::Mat::from_vec(2, 4, vec![0.0, 3.0, 16.0, 5.0, 1.0, 1.0, 2.0, 9.0]);
    let be = common::backend();
    assert_eq!(
        m.log_prob(&be, x.as_ref()).unwrap(),
        back.log_prob(&be, x.as_ref()).unwrap()
    );
}

#[test]
fn the_file_records_the_documented_keys() {
    let p = parts();
    for k in [
        "format",
        "format_version",
        "dim",
        "n_layers",
        "activation",
        "alpha",
        "base",
        "use_bias",
        "precision",
        "layout",
        "preprocess",
        "image",
        "data",
        "training",
        "metrics",
        "train_log_prob_quantiles",
        "relgrad_version",
    ] {
        assert!(p.meta.contains_key(k), "no {k}");
    }
    assert_eq!(p.meta["dim"], "2");
    assert_eq!(p.meta["n_layers"], "2");
    assert_eq!(p.meta["alpha"], "0.2");
    assert_eq!(p.meta["use_bias"], "true");
    assert_eq!(p.meta["image"], "null");
    assert_eq!(p.tensors["layers.0.weight"].shape, vec![2, 2]);
    assert_eq!(p.tensors["layers.0.bias"].shape, vec![2]);
    // The weights are stored row-major as `y = x W + b`.
    let Network::F64(net) = &model().network else {
        unreachable!()
    };
    assert_eq!(
        p.tensors["layers.1.weight"].to_f64s(),
        net.layers()[1].weight.as_slice()
    );
    assert_eq!(p.tensors["layers.1.bias"].to_f64s(), net.layers()[1].bias);
}

// ---- load errors name the file -------------------------------------------------------

#[test]
fn loading_a_missing_file_is_an_io_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-model.safetensors");
    let e = DensityModel::load(&path).unwrap_err();
    match &e {
        Error::Io {
            path: p, source, ..
        } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn an_invalid_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.safetensors");
    std::fs::write(&path, parts().with("format_version", "4").bytes()).unwrap();
    let e = DensityModel::load(&path).unwrap_err();
    match &e {
        Error::InvalidFile { path: p, what } => {
            assert_eq!(p, &path);
            assert!(what.contains("\"format_version\" is \"4\""), "{what}");
        }
        other => panic!("expected Error::InvalidFile, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("format_version"), "{msg}");
}

mod float_round_trip {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Every parameter kept as JSON text (the standardisation, the quantiles) comes
        /// back bit for bit, so that a model scores the same after a save and a load.
        #[test]
        fn json_parameters_round_trip_bit_for_bit(
            mean in prop::collection::vec(-1e4..1e4f64, 2),
            std in prop::collection::vec(1e-4..1e4f64, 2),
            q in -1e3..0.0f64,
        ) {
            let mut m = model();
            m.preprocess = Preprocess::Standardize { mean, std };
            m.train_quantiles = Some(vec![(0.0, q), (0.5, q / 3.0), (1.0, q / 7.0)]);
            let back = DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(back, m);
        }

        /// The same for extreme magnitudes (subnormal to near-overflow).
        #[test]
        fn extreme_parameters_round_trip_bit_for_bit(
            mean in prop::collection::vec(
                proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
                2,
            ),
            std in prop::collection::vec(
                proptest::num::f64::POSITIVE | proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL,
                2,
            ),
        ) {
            let mut m = model();
            m.preprocess = Preprocess::Standardize { mean, std };
            let back = DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}

/// A model with spline activations: dimension 2, 3 layers, `f64`, random splines.
fn spline_model() -> DensityModel {
    let mut net = random_mlp(
        2,
        3,
        Activation::Spline {
            bins: 5,
            bound: 2.5,
        },
        8,
    );
    for (l, m) in net.splines_mut().iter_mut().enumerate() {
        for (i, v) in m.as_mut_slice().iter_mut().enumerate() {
            *v = ((i * 7 + l * 3) % 11) as f64 / 5.0 - 1.0;
        }
    }
    let pre = Preprocess::Standardize {
        mean: vec![0.5, 1.0],
        std: vec![2.0, 0.25],
    };
    let mut m = DensityModel::new(Network::F64(net), pre).unwrap();
    m.training = json!({"seed": 0});
    m
}

#[test]
fn a_spline_model_round_trips_as_version_2() {
    let m = spline_model();
    let bytes = m.to_bytes().unwrap();
    let p = Parts::of(&bytes);
    assert_eq!(p.meta["format_version"], FORMAT_VERSION);
    assert_eq!(
        (p.meta["activation"].as_str(), p.meta["bins"].as_str()),
        ("spline", "5")
    );
    assert_eq!(p.tensor("splines.1").to_f64s().len(), 2 * 14);
    let back = DensityModel::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    let be = common::backend();
    let x = relgrad_core::Mat::from_vec(3, 2, vec![0.1, 1.2, -3.0, 0.9, 2.0, 1.1]);
    assert_eq!(
        back.log_prob(&be, x.as_ref()).unwrap(),
        m.log_prob(&be, x.as_ref()).unwrap()
    );
    // Models without splines are still written as version 1.
    assert_eq!(parts().meta["format_version"], "1");
    assert!(!parts().meta.contains_key("bins"));
}

#[test]
fn a_spline_model_file_is_checked() {
    let p = || Parts::of(&spline_model().to_bytes().unwrap());
    refused(
        &p().with("format_version", "1").bytes(),
        &["spline activations need version 2"],
    );
    refused(&p().without("bins").bytes(), &["\"bins\""]);
    refused(&p().with("bins", "1").bytes(), &["\"bins\""]);
    refused(
        &p().without_tensor("splines.0").bytes(),
        &["splines.0", "spline activation"],
    );
    // Another bin count than the tensors were written for.
    refused(&p().with("bins", "6").bytes(), &["splines.0"]);
    let mut t = p().tensor("splines.1");
    t.set(3, f64::NAN);
    refused(&p().with_tensor("splines.1", t).bytes(), &["splines.1"]);
}

/// A spline model with a mixture base of 3 components and non-start parameters.
fn mixture_model() -> DensityModel {
    let DensityModel { network, .. } = spline_model();
    let Network::F64(net) = network else {
        unreachable!("the spline model is f64")
    };
    let layers = net.layers().to_vec();
    let splines = net.splines().to_vec();
    let base = relgrad_core::BaseDensity::Mixture { components: 3 };
    let mut params = relgrad_core::Mat::zeros(2, 9);
    for (i, v) in params.as_mut_slice().iter_mut().enumerate() {
        *v = ((i * 5) % 7) as f64 / 4.0 - 0.8;
    }
    let net = relgrad_core::InvertibleMlp::from_layers(layers, net.activation(), base, true)
        .and_then(|m| m.with_splines(splines))
        .and_then(|m| m.with_base_params(params))
        .unwrap();
    let pre = Preprocess::Standardize {
        mean: vec![0.5, 1.0],
        std: vec![2.0, 0.25],
    };
    let mut m = DensityModel::new(Network::F64(net), pre).unwrap();
    m.training = json!({"seed": 0});
    m
}

#[test]
fn a_mixture_base_model_round_trips_as_version_3() {
    let m = mixture_model();
    let bytes = m.to_bytes().unwrap();
    let p = Parts::of(&bytes);
    assert_eq!(p.meta["format_version"], "3");
    assert_eq!(
        (p.meta["base"].as_str(), p.meta["components"].as_str()),
        ("mixture", "3")
    );
    assert_eq!(p.tensor("base").to_f64s().len(), 2 * 9);
    let back = DensityModel::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    let be = common::backend();
    let x = relgrad_core::Mat::from_vec(3, 2, vec![0.1, 1.2, -3.0, 0.9, 2.0, 1.1]);
    let lp = back.log_prob(&be, x.as_ref()).unwrap();
    assert_eq!(lp, m.log_prob(&be, x.as_ref()).unwrap());
    // The mixture changes the density: not the spline model's.
    assert_ne!(lp, spline_model().log_prob(&be, x.as_ref()).unwrap());
}

#[test]
fn a_mixture_base_model_file_is_checked() {
    let p = || Parts::of(&mixture_model().to_bytes().unwrap());
    refused(
        &p().with("format_version", "2").bytes(),
        &["a mixture base", "need version 3"],
    );
    refused(&p().without("components").bytes(), &["\"components\""]);
    refused(&p().with("components", "0").bytes(), &["\"components\""]);
    refused(
        &p().without_tensor("base").bytes(),
        &["base for the mixture base"],
    );
    // Another component count than the tensor was written for.
    refused(&p().with("components", "2").bytes(), &["\"base\""]);
    let mut t = p().tensor("base");
    t.set(4, f64::NAN);
    refused(&p().with_tensor("base", t).bytes(), &["\"base\""]);
}

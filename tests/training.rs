//! Training behaviour: reproducibility, recovery of a known network, linear ICA, the
//! early-stopping protocol and divergence handling (on the default backend).

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use relgrad::gaussian::Gaussian;
use relgrad::init::Architecture;
use relgrad::train::train;
use relgrad::{
    Activation, BaseDensity, DefaultBackend, Error, GradientKind, Init, InvertibleMlp, Layer, Mat,
    Optimizer, TrainConfig,
};

const TEACHER_ACTIVATION: Activation = Activation::SmoothLeakyRelu { alpha: 0.2 };

fn params(m: &InvertibleMlp<f64>) -> Vec<u64> {
    flat_params(m).iter().map(|v| v.to_bits()).collect()
}

/// A teacher network and data drawn from it exactly (through its inverse).
fn teacher_data(n: usize, d: usize, seed: u64) -> (InvertibleMlp<f64>, Mat<f64>) {
    let case = Case {
        d,
        b: 1,
        l: 2,
        activation: TEACHER_ACTIVATION,
        base: BaseDensity::Normal,
        bias: true,
        seed,
    };
    let (teacher, _) = model_and_data(&case);
    let mut rng = StdRng::seed_from_u64(seed + 1);
    let x = teacher
        .sample(&DefaultBackend::default(), n, &mut rng)
        .unwrap();
    (teacher, x)
}

#[test]
fn seeded_training_is_bit_for_bit_reproducible() {
    let backend = DefaultBackend::default();
    let (_, x) = teacher_data(600, 4, 3);
    let (tr, va) = (
        x.top(500).to_owned(),
        x.as_ref().rows_range(500, 600).to_owned(),
    );
    let run = |seed: u64| {
        let mut model = Init::Orthogonal { seed: 9 }
            .build(arch(4, 3), &backend, None)
            .unwrap();
        let cfg = TrainConfig {
            optimizer: Optimizer::adam(3e-3),
            batch_size: 32,
            epochs: 4,
            seed,
            ..TrainConfig::default()
        };
        let hist = train(&mut model, &backend, tr.as_ref(), Some(va.as_ref()), cfg).unwrap();
        (params(&model), hist)
    };
    let (a, ha) = run(1);
    let (b, hb) = run(1);
    let (c, _) = run(2);
    assert_eq!(a, b, "same seed, different parameters");
    assert_eq!(
        ha.epochs
            .iter()
            .map(|m| m.val_ll.unwrap().to_bits())
            .collect::<Vec<_>>(),
        hb.epochs
            .iter()
            .map(|m| m.val_ll.unwrap().to_bits())
            .collect::<Vec<_>>()
    );
    assert_ne!(
        a, c,
        "a different shuffle seed should give different parameters"
    );
}

#[test]
fn training_approaches_the_true_log_likelihood_of_a_known_network() {
    let backend = DefaultBackend::default();
    let (teacher, raw) = teacher_data(8000, 2, 11);
    // Standardise the columns (as a user would); the true log-likelihood of the
    // standardised data gains the log-Jacobian sum_j ln(std_j).
    let (mean, cov) = relgrad::linalg::mean_cov(&backend, raw.as_ref()).unwrap();
    let std: Vec<f64> = (0..2).map(|j| cov.get(j, j).sqrt()).collect();
    let x = Mat::from_fn(raw.rows(), 2, |i, j| (raw.get(i, j) - mean[j]) / std[j]);
    let log_jac: f64 = std.iter().map(|s| s.ln()).sum();
    let (tr, va, te) = (
        x.top(5000).to_owned(),
        x.as_ref().rows_range(5000, 6000).to_owned(),
        x.as_ref().rows_range(6000, 8000).to_owned(),
    );
    let raw_te = raw.as_ref().rows_range(6000, 8000);
    let truth = teacher.mean_log_likelihood(&backend, raw_te).unwrap() + log_jac;
    let gauss = Gaussian::fit(&backend, tr.as_ref())
        .unwrap()
        .mean_log_likelihood(te.as_ref())
        .unwrap();
    let student = Architecture {
        activation: TEACHER_ACTIVATION,
        ..arch(2, 2)
    };
    let mut model = Init::default()
        .build(student, &backend, Some(tr.as_ref()))
        .unwrap();
    let start = model.mean_log_likelihood(&backend, te.as_ref()).unwrap();
    let cfg = TrainConfig {
        optimizer: Optimizer::adam(1e-2),
        batch_size: 100,
        epochs: 100,
        look_ahead: Some(10),
        seed: 5,
        ..TrainConfig::default()
    };
    let h = train(&mut model, &backend, tr.as_ref(), Some(va.as_ref()), cfg).unwrap();
    eprintln!("best epoch {} of {}", h.best_epoch, h.epochs.len() - 1);
    let learned = model.mean_log_likelihood(&backend, te.as_ref()).unwrap();
    eprintln!("truth {truth:.4}  gaussian {gauss:.4}  start {start:.4}  learned {learned:.4}");
    // The data are far from Gaussian, so the test is not won by the starting point.
    assert!(
        gauss < truth - 0.3,
        "teacher too Gaussian: {gauss} vs {truth}"
    );
    assert!(
        learned > start + 0.2,
        "training did not improve: {start} -> {learned}"
    );
    assert!(
        learned > truth - 0.05,
        "held-out LL {learned} is not close to the truth {truth}"
    );
}

#[test]
fn linear_model_with_laplace_base_unmixes_independent_sources() {
    let backend = DefaultBackend::default();
    let (d, n) = (8, 20_000);
    let mut rng = StdRng::seed_from_u64(42);
    let sources = Mat::from_fn(n, d, |_, _| BaseDensity::Laplace.sample::<f64, _>(&mut rng));
    let mixing = Mat::from_fn(d, d, |_, _| StandardNormal.sample(&mut rng));
    let x = matmul(&sources, &mixing);
    let layers = vec![Layer {
        weight: Mat::identity(d),
        bias: vec![0.0; d],
    }];
    let mut model =
        InvertibleMlp::from_layers(layers, Activation::default(), BaseDensity::Laplace, false)
            .unwrap();
    let before = amari_distance(&matmul(&mixing, &model.layers()[0].weight));
    let cfg = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 0.2,
            momentum: 0.5,
        },
        batch_size: n,
        epochs: 400,
        look_ahead: None,
        shuffle: false,
        train_eval_rows: 0,
        ..TrainConfig::default()
    };
    train(&mut model, &backend, x.as_ref(), None, cfg).unwrap();
    let after = amari_distance(&matmul(&mixing, &model.layers()[0].weight));
    eprintln!("Amari distance: {before:.4} -> {after:.5}");
    assert!(before > 0.2);
    assert!(after < 0.02, "Amari distance {after} after training");
}

#[test]
fn training_never_returns_a_model_worse_on_validation_than_its_start() {
    let backend = DefaultBackend::default();
    let (_, x) = teacher_data(1200, 4, 21);
    let (tr, va) = (
        x.top(1000).to_owned(),
        x.as_ref().rows_range(1000, 1200).to_owned(),
    );
    let mut model = Init::default()
        .build(arch(4, 2), &backend, Some(tr.as_ref()))
        .unwrap();
    let start = model.mean_log_likelihood(&backend, va.as_ref()).unwrap();
    // A learning rate far too large: every epoch is worse than the start.
    let cfg = TrainConfig {
        optimizer: Optimizer::sgd(0.5),
        batch_size: 10,
        epochs: 5,
        look_ahead: Some(2),
        ..TrainConfig::default()
    };
    let result = train(&mut model, &backend, tr.as_ref(), Some(va.as_ref()), cfg);
    let end = model.mean_log_likelihood(&backend, va.as_ref()).unwrap();
    assert!(
        end >= start,
        "returned a worse model: {start} -> {end} ({result:?})"
    );
    match result {
        Ok(h) => assert_eq!(h.best_epoch, 0),
        Err(Error::Diverged { best_epoch, .. }) => assert_eq!(best_epoch, 0),
        Err(e) => panic!("unexpected error {e}"),
    }
}

#[test]
fn divergence_is_an_error_and_keeps_the_best_parameters() {
    let backend = DefaultBackend::default();
    let (_, x) = teacher_data(500, 4, 31);
    let (tr, va) = (
        x.top(400).to_owned(),
        x.as_ref().rows_range(400, 500).to_owned(),
    );
    let mut model = Init::Identity.build(arch(4, 2), &backend, None).unwrap();
    let cfg = TrainConfig {
        optimizer: Optimizer::sgd(1e6),
        batch_size: 400,
        epochs: 20,
        look_ahead: None,
        ..TrainConfig::default()
    };
    let err = train(&mut model, &backend, tr.as_ref(), Some(va.as_ref()), cfg).unwrap_err();
    assert!(
        matches!(err, Error::Diverged { best_epoch: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("lower learning rate"));
    let identity = Init::Identity
        .build::<f64, _>(arch(4, 2), &backend, None)
        .unwrap();
    assert_eq!(
        params(&model),
        params(&identity),
        "the starting (best) parameters were not restored"
    );
}

#[test]
fn naive_and_relative_training_both_improve_the_likelihood() {
    let backend = DefaultBackend::default();
    let (_, x) = teacher_data(1500, 4, 41);
    let (tr, va) = (
        x.top(1200).to_owned(),
        x.as_ref().rows_range(1200, 1500).to_owned(),
    );
    for kind in [GradientKind::Relative, GradientKind::Naive] {
        let mut model = Init::Orthogonal { seed: 1 }
            .build(arch(4, 2), &backend, None)
            .unwrap();
        let start = model.mean_log_likelihood(&backend, va.as_ref()).unwrap();
        let cfg = TrainConfig {
            optimizer: Optimizer::adam(1e-2),
            epochs: 10,
            gradient: kind,
            ..TrainConfig::default()
        };
        train(&mut model, &backend, tr.as_ref(), Some(va.as_ref()), cfg).unwrap();
        let end = model.mean_log_likelihood(&backend, va.as_ref()).unwrap();
        assert!(end > start + 0.5, "{kind:?}: {start} -> {end}");
    }
}

/// Training with fused steps (small batches) follows training with unfused steps: the
/// same epochs, validation scores and parameters, to round-off, through a plateau decay.
#[test]
fn fused_and_unfused_training_agree() {
    let backend = DefaultBackend::default();
    let (_, x) = teacher_data(440, 24, 5);
    let (tr, va) = (
        x.top(400).to_owned(),
        x.as_ref().rows_range(400, 440).to_owned(),
    );
    let run = |step: relgrad::StepPath| {
        let mut model = Init::Orthogonal { seed: 4 }
            .build(arch(24, 2), &backend, None)
            .unwrap();
        let cfg = TrainConfig {
            optimizer: Optimizer::adam(3e-2),
            batch_size: 5,
            epochs: 12,
            look_ahead: Some(1),
            lr_decays: 1,
            step,
            ..TrainConfig::default()
        };
        let hist = train(&mut model, &backend, tr.as_ref(), Some(va.as_ref()), cfg).unwrap();
        (flat_params(&model), hist)
    };
    let (fused, hf) = run(relgrad::StepPath::Fused);
    let (plain, hp) = run(relgrad::StepPath::Unfused);
    assert_eq!(hf.epochs.len(), hp.epochs.len());
    assert_eq!(hf.decays, hp.decays);
    assert!(!hf.decays.is_empty(), "no plateau to decay at");
    for (a, b) in hf.epochs.iter().zip(&hp.epochs) {
        let (va, vb) = (a.val_ll.unwrap(), b.val_ll.unwrap());
        assert!(
            (va - vb).abs() < 1e-9 * vb.abs().max(1.0),
            "epoch {}: {va} against {vb}",
            a.epoch
        );
    }
    let e = rel_err(&fused, &plain, 1e-12);
    assert!(e < 1e-9, "parameters differ by {e:e}");
}

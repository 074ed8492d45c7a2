//! The model's verbs, initialisations, the Gaussian reference and the optimizers, on the
//! default backend.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use relgrad::gaussian::Gaussian;
use relgrad::init::Architecture;
use relgrad::{
    Activation, BaseDensity, DefaultBackend, Error, Gradient, Init, InvertibleMlp, Layer, Mat,
    Optimizer, OptimizerState,
};

fn correlated_data(n: usize, d: usize, seed: u64) -> Mat<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mix = well_conditioned(d, &mut rng);
    let s = Mat::from_fn(n, d, |_, j| {
        let g: f64 = StandardNormal.sample(&mut rng);
        // Skewed, non-Gaussian sources with different scales and means.
        (g + 0.3 * g * g) * (1.0 + j as f64) + 2.0
    });
    matmul(&s, &mix)
}

#[test]
fn orthogonal_init_is_orthogonal_and_seeded() {
    let backend = DefaultBackend::default();
    let m = Init::Orthogonal { seed: 4 }
        .build::<f64, _>(arch(7, 3), &backend, None)
        .unwrap();
    for l in m.layers() {
        let wtw = matmul(&l.weight.transpose(), &l.weight);
        assert!(rel_err(wtw.as_slice(), Mat::<f64>::identity(7).as_slice(), 1.0) < 1e-12);
        assert!(l.bias.iter().all(|&b| b == 0.0));
    }
    let again = Init::Orthogonal { seed: 4 }
        .build::<f64, _>(arch(7, 3), &backend, None)
        .unwrap();
    assert_eq!(m, again);
    assert_ne!(m.layers()[0], m.layers()[1], "layers should differ");
}

#[test]
fn data_dependent_init_starts_near_the_best_gaussian_with_white_latents() {
    let backend = DefaultBackend::default();
    let x = correlated_data(4000, 5, 1);
    let (train, test) = (x.top(3000), x.as_ref().rows_range(3000, 4000));
    let gauss = Gaussian::fit(&backend, train).unwrap();
    let g_ll = gauss.mean_log_likelihood(test).unwrap();
    for n_layers in [1, 2, 4] {
        let m = Init::default()
            .build(arch(5, n_layers), &backend, Some(train))
            .unwrap();
        let z = m.forward(&backend, train).unwrap();
        let (mean, cov) = relgrad::linalg::mean_cov(&backend, z.as_ref()).unwrap();
        assert!(mean.iter().all(|v| v.abs() < 1e-9), "latent mean {mean:?}");
        assert!(
            rel_err(cov.as_slice(), Mat::<f64>::identity(5).as_slice(), 1.0) < 1e-8,
            "latent covariance"
        );
        let ll = m.mean_log_likelihood(&backend, test).unwrap();
        // L = 1 is exactly the Gaussian. Deeper starts are mildly nonlinear: with the
        // default shift within half a nat of the Gaussian for L = 2; a larger shift makes
        // the activations more nearly linear and the start closer to the Gaussian.
        match n_layers {
            1 => assert!((ll - g_ll).abs() < 1e-8, "{ll} vs {g_ll}"),
            2 => assert!((ll - g_ll).abs() < 0.5, "L = 2: {ll} vs Gaussian {g_ll}"),
            _ => {
                let near = Init::DataDependent { shift: Some(3.0) }
                    .build(arch(5, n_layers), &backend, Some(train))
                    .unwrap();
                let ll3 = near.mean_log_likelihood(&backend, test).unwrap();
                assert!(
                    (ll3 - g_ll).abs() < 0.1,
                    "L = {n_layers}, shift 3: {ll3} vs Gaussian {g_ll}"
                );
                assert!(
                    ll3 > ll,
                    "a larger shift should be closer to the Gaussian here"
                );
            }
        }
    }
    assert!(matches!(
        Init::default().build::<f64, _>(arch(5, 2), &backend, None),
        Err(Error::InvalidConfig(_))
    ));
}

/// The promise of the automatic start (`shift: None`) at every depth and activation: within 1 nat per row
/// of the best Gaussian (or 1% where that is larger) on held-out rows of non-Gaussian
/// data, and samples with the data's covariance (within 5% of its largest entry; 20000
/// samples estimate it to about 1%).
#[test]
fn the_automatic_start_keeps_its_promise_at_every_depth_and_activation() {
    let backend = DefaultBackend::default();
    let d = 6;
    let x = correlated_data(5000, d, 2);
    let (train, test) = (x.top(4000), x.as_ref().rows_range(4000, 5000));
    let g_ll = Gaussian::fit(&backend, train)
        .unwrap()
        .mean_log_likelihood(test)
        .unwrap();
    let (_, data_cov) = relgrad::linalg::mean_cov(&backend, train).unwrap();
    let tol = 1.0f64.max(0.01 * g_ll.abs());
    for activation in [
        Activation::SmoothLeakyRelu { alpha: 0.01 },
        Activation::SmoothLeakyRelu { alpha: 0.3 },
        Activation::LeakyRelu { alpha: 0.1 },
        Activation::TanhLinear { beta: 0.1 },
    ] {
        for n_layers in 1..=8 {
            let a = Architecture {
                activation,
                ..arch(d, n_layers)
            };
            let m = Init::DataDependent { shift: None }
                .build(a, &backend, Some(train))
                .unwrap();
            let ll = m.mean_log_likelihood(&backend, test).unwrap();
            assert!(
                ll > g_ll - tol,
                "{activation:?}, L = {n_layers}: start {ll}, best Gaussian {g_ll}"
            );
            // Samples: the network's inverse of standard normal latents.
            let mut rng = StdRng::seed_from_u64(9);
            let z = Mat::from_fn(20000, d, |_, _| StandardNormal.sample(&mut rng));
            let s = m.inverse(&backend, z.as_ref()).unwrap();
            let (_, cov) = relgrad::linalg::mean_cov(&backend, s.as_ref()).unwrap();
            let err = rel_err(cov.as_slice(), data_cov.as_slice(), 1.0);
            assert!(
                err < 0.05,
                "{activation:?}, L = {n_layers}: sample covariance off by {err}"
            );
        }
    }
}

#[test]
fn gaussian_log_density_matches_the_closed_form() {
    let backend = DefaultBackend::default();
    // Diagonal data: the fitted Gaussian is a product of univariate normals.
    let x = Mat::from_fn(4, 2, |i, j| {
        [[1.0, 10.0], [3.0, 10.0], [1.0, 14.0], [3.0, 14.0]][i][j]
    });
    let g = Gaussian::fit(&backend, x.as_ref()).unwrap();
    assert_eq!(g.mean, vec![2.0, 12.0]);
    // Variances 1 and 4.
    let p = Mat::from_vec(1, 2, vec![2.5, 11.0]);
    let want = -0.5 * (0.5f64.powi(2) / 1.0 + 1.0 / 4.0)
        - 0.5 * (1.0f64 * 4.0).ln()
        - (2.0 * std::f64::consts::PI).ln();
    assert!((g.log_prob(p.as_ref()).unwrap()[0] - want).abs() < 1e-12);
    // A singular covariance is regularised, not an error.
    let flat = Mat::from_fn(
        10,
        3,
        |i, j| if j == 2 { 1.0 } else { (i * (j + 1)) as f64 },
    );
    assert!(Gaussian::fit(&backend, flat.as_ref()).unwrap().ridge > 0.0);
}

#[test]
fn verbs_reject_bad_shapes_and_singular_weights() {
    let backend = DefaultBackend::default();
    let m = Init::Identity
        .build::<f64, _>(arch(3, 2), &backend, None)
        .unwrap();
    let wrong = Mat::<f64>::zeros(4, 2);
    let err = m.log_prob(&backend, wrong.as_ref()).unwrap_err();
    assert_eq!(
        err,
        Error::DimensionMismatch {
            expected: 3,
            found: 2
        }
    );
    assert!(err.to_string().contains("dimension 3"));
    assert!(m.inverse(&backend, wrong.as_ref()).is_err());
    let layers = vec![
        Layer {
            weight: Mat::identity(2),
            bias: vec![0.0; 2],
        },
        Layer {
            weight: Mat::from_vec(2, 2, vec![1.0, 2.0, 2.0, 4.0]),
            bias: vec![0.0; 2],
        },
    ];
    let singular =
        InvertibleMlp::from_layers(layers, Activation::default(), BaseDensity::Normal, true)
            .unwrap();
    let x = Mat::<f64>::zeros(1, 2);
    assert_eq!(
        singular.log_prob(&backend, x.as_ref()).unwrap_err(),
        Error::Singular { layer: 1 }
    );
    assert_eq!(
        singular.inverse(&backend, x.as_ref()).unwrap_err(),
        Error::Singular { layer: 1 }
    );
    assert!(InvertibleMlp::<f64>::from_layers(
        vec![],
        Activation::default(),
        BaseDensity::Normal,
        true
    )
    .is_err());
    let bad_act = Activation::SmoothLeakyRelu { alpha: 2.0 };
    assert!(InvertibleMlp::<f64>::identity(2, 1, bad_act, BaseDensity::Normal, true).is_err());
}

#[test]
fn samples_follow_the_model_density() {
    // A linear model maps N(0, I) latents to N(-b W^{-1}, (W W^T)^{-1}) data; the sample
    // covariance must match.
    let backend = DefaultBackend::default();
    let w = Mat::from_vec(2, 2, vec![2.0, 0.5, 0.0, 1.0]);
    let layers = vec![Layer {
        weight: w.clone(),
        bias: vec![1.0, -1.0],
    }];
    let m = InvertibleMlp::from_layers(layers, Activation::default(), BaseDensity::Normal, true)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let x = m.sample(&backend, 100_000, &mut rng).unwrap();
    let (mean, cov) = relgrad::linalg::mean_cov(&backend, x.as_ref()).unwrap();
    // W^{-1} = [[0.5, -0.25], [0, 1]]; mean = -b W^{-1} = [-0.5, 1.25].
    assert!(
        (mean[0] + 0.5).abs() < 0.02 && (mean[1] - 1.25).abs() < 0.02,
        "{mean:?}"
    );
    // Cov = W^{-T} W^{-1} = [[0.25, -0.125], [-0.125, 1.0625]].
    let want = [0.25, -0.125, -0.125, 1.0625];
    assert!(
        rel_err(cov.as_slice(), &want, 1.0) < 0.02,
        "{:?}",
        cov.as_slice()
    );
}

#[test]
fn adam_and_sgd_take_the_textbook_steps() {
    let backend = DefaultBackend::default();
    let mut m = Init::Identity
        .build::<f64, _>(arch(2, 1), &backend, None)
        .unwrap();
    let mut g = Gradient::zeros(2, 1);
    g.weights[0]
        .as_mut_slice()
        .copy_from_slice(&[1.0, -2.0, 0.0, 0.5]);
    g.biases[0].copy_from_slice(&[3.0, -1.0]);
    // Adam's first step moves every coordinate with a non-zero gradient by lr * sign.
    let mut adam = OptimizerState::new(Optimizer::adam(0.1), &m);
    adam.step(&mut m, &g);
    let w = m.layers()[0].weight.as_slice().to_vec();
    let expect = [1.1, -0.1, 0.0, 1.1];
    assert!(rel_err(&w, &expect, 1.0) < 1e-6, "{w:?}");
    assert!(rel_err(&m.layers()[0].bias, &[0.1, -0.1], 1.0) < 1e-6);
    // SGD with momentum: v1 = g, v2 = mu g + g.
    let mut m = Init::Identity
        .build::<f64, _>(arch(2, 1), &backend, None)
        .unwrap();
    let mut sgd = OptimizerState::new(
        Optimizer::Sgd {
            lr: 0.5,
            momentum: 0.5,
        },
        &m,
    );
    sgd.step(&mut m, &g);
    sgd.step(&mut m, &g);
    let w = m.layers()[0].weight.as_slice().to_vec();
    let expect: Vec<f64> = [1.0, 0.0, 0.0, 1.0]
        .iter()
        .zip(g.weights[0].as_slice())
        .map(|(p, gi)| p + 0.5 * gi + 0.5 * 1.5 * gi)
        .collect();
    assert!(rel_err(&w, &expect, 1.0) < 1e-12);
    // A model without biases keeps them at zero.
    let no_bias = Architecture {
        use_bias: false,
        ..arch(2, 1)
    };
    let mut m = Init::Identity
        .build::<f64, _>(no_bias, &backend, None)
        .unwrap();
    OptimizerState::new(Optimizer::sgd(1.0), &m).step(&mut m, &g);
    assert_eq!(m.layers()[0].bias, vec![0.0, 0.0]);
    assert!(Optimizer::sgd(-1.0).validate().is_err());
}

/// The evaluation verbs work in chunks of rows (as many as the dimension, at least 128):
/// a row's value does not depend on which chunk it falls in or how many rows come along.
#[test]
fn evaluation_in_chunks_equals_row_by_row() {
    let backend = DefaultBackend::default();
    let x = correlated_data(300, 3, 5);
    let m = Init::default()
        .build::<f64, _>(arch(3, 3), &backend, Some(x.as_ref()))
        .unwrap();
    let all = m.log_prob(&backend, x.as_ref()).unwrap();
    let z = m.forward(&backend, x.as_ref()).unwrap();
    for i in [0, 1, 127, 128, 129, 255, 256, 299] {
        let row = Mat::from_fn(1, 3, |_, j| x.row(i)[j]);
        let one = m.log_prob(&backend, row.as_ref()).unwrap()[0];
        assert!(
            (one - all[i]).abs() <= 1e-12 * one.abs().max(1.0),
            "row {i}"
        );
        let zi = m.forward(&backend, row.as_ref()).unwrap();
        for j in 0..3 {
            assert!((zi.row(0)[j] - z.row(i)[j]).abs() <= 1e-12, "row {i}");
        }
    }
}

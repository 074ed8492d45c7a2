//! The model's verbs in the data's units (`log_prob`, `forward`, `inverse`, `sample`,
//! `bits_per_dim`, `threshold`) against independent oracles, in `f64`.

mod common;

use common::{backend, gaussian_rows, random_mlp};
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad_core::{Activation, InvertibleMlp, Mat};
use relgrad_model::{DensityModel, Error, Network, Part, Preprocess};

const LN_2PI: f64 = 1.837_877_066_409_345_3;

// ---- an independent implementation of the density -----------------------------------

/// `ln|det A|` by Gaussian elimination with partial pivoting.
fn log_abs_det(a: &Mat<f64>) -> f64 {
    let n = a.rows();
    let mut m: Vec<Vec<f64>> = (0..n).map(|i| a.row(i).to_vec()).collect();
    let mut acc = 0.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| m[i][k].abs().total_cmp(&m[j][k].abs()))
            .unwrap();
        m.swap(k, p);
        let pivot = m[k][k];
        acc += pivot.abs().ln();
        let (top, below) = m.split_at_mut(k + 1);
        let pivot_row = &top[k];
        for row in below {
            let f = row[k] / pivot;
            for (a, b) in row[k..].iter_mut().zip(&pivot_row[k..]) {
                *a -= f * b;
            }
        }
    }
    acc
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The log-density of one row under a network with the smooth leaky ReLU of `alpha` and
/// a standard normal base, written out from the change-of-variables formula.
fn oracle_log_prob(net: &InvertibleMlp<f64>, alpha: f64, x: &[f64]) -> f64 {
    let d = net.dim();
    let last = net.n_layers() - 1;
    let mut h = x.to_vec();
    let mut log_det = 0.0;
    for (l, layer) in net.layers().iter().enumerate() {
        let w = &layer.weight;
        let y: Vec<f64> = (0..d)
            .map(|j| (0..d).map(|i| h[i] * w.get(i, j)).sum::<f64>() + layer.bias[j])
            .collect();
        log_det += log_abs_det(w);
        if l < last {
            for (hj, &yj) in h.iter_mut().zip(&y) {
                *hj = alpha * yj + (1.0 - alpha) * softplus(yj);
                log_det += (alpha + (1.0 - alpha) * sigmoid(yj)).ln();
            }
        } else {
            h = y;
        }
    }
    h.iter().map(|z| -0.5 * z * z - 0.5 * LN_2PI).sum::<f64>() + log_det
}

fn standardize(dim: usize) -> Preprocess {
    Preprocess::Standardize {
        mean: (0..dim).map(|j| 1.0 - 0.7 * j as f64).collect(),
        std: (0..dim).map(|j| 0.4 + 0.9 * j as f64).collect(),
    }
}

fn model(dim: usize, n_layers: usize, alpha: f64, pre: Preprocess, seed: u64) -> DensityModel {
    let net = random_mlp(dim, n_layers, Activation::SmoothLeakyRelu { alpha }, seed);
    DensityModel::new(Network::F64(net), pre).unwrap()
}

fn f64_net(m: &DensityModel) -> &InvertibleMlp<f64> {
    match &m.network {
        Network::F64(n) => n,
        Network::F32(_) => panic!("an f64 model"),
    }
}

// ---- log_prob ------------------------------------------------------------------------

#[test]
fn log_prob_in_data_units_matches_the_change_of_variables_formula() {
    let be = backend();
    let (dim, alpha) = (3, 0.1);
    let m = model(dim, 3, alpha, standardize(dim), 7);
    let Preprocess::Standardize { mean, std } = &m.preprocess else {
        unreachable!()
    };
    let x = gaussian_rows(50, dim, 1);
    let lp = m.log_prob(&be, x.as_ref()).unwrap();
    let scores = m.scores(&be, x.as_ref(), Part::All).unwrap();
    assert_eq!(scores.data_units, lp);
    let sum_ln_std: f64 = std.iter().map(|s| s.ln()).sum();
    for (i, (&l, &ms)) in lp.iter().zip(&scores.model_space).enumerate() {
        let y: Vec<f64> = (0..dim).map(|j| (x.get(i, j) - mean[j]) / std[j]).collect();
        let net_space = oracle_log_prob(f64_net(&m), alpha, &y);
        let want = net_space - sum_ln_std;
        assert!(
            (ms - net_space).abs() < 1e-10 * (1.0 + net_space.abs()),
            "row {i}"
        );
        assert!(
            (l - want).abs() < 1e-10 * (1.0 + want.abs()),
            "row {i}: {l} vs {want}"
        );
    }
    // The mean is the mean.
    let mean_ll = m.mean_log_likelihood(&be, x.as_ref()).unwrap();
    assert!((mean_ll - lp.iter().sum::<f64>() / 50.0).abs() < 1e-12);
}

#[test]
fn an_f32_network_scores_like_its_f64_twin() {
    let be = backend();
    let m64 = model(3, 2, 0.1, standardize(3), 9);
    let mut m32 = m64.clone();
    m32.network = Network::F32(f64_net(&m64).cast());
    let x = gaussian_rows(20, 3, 4);
    let a = m64.log_prob(&be, x.as_ref()).unwrap();
    let b = m32.log_prob(&be, x.as_ref()).unwrap();
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() < 1e-4 * (1.0 + u.abs()), "{u} vs {v}");
    }
    assert_ne!(a, b, "computed in f32");
}

/// The trapezoid rule's weights on `n` points of spacing `h`.
fn trapezoid(n: usize, h: f64) -> impl Fn(usize) -> f64 {
    move |i| if i == 0 || i == n - 1 { 0.5 * h } else { h }
}

/// The range of `n` samples of column `j`, widened by half its width on each side.
fn sample_range(m: &DensityModel, j: usize) -> (f64, f64) {
    let s = m
        .sample(&backend(), 20_000, &mut StdRng::seed_from_u64(5))
        .unwrap();
    let col: Vec<f64> = (0..s.rows()).map(|i| s.get(i, j)).collect();
    let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w = hi - lo;
    (lo - 0.5 * w, hi + 0.5 * w)
}

#[test]
fn the_density_integrates_to_one_in_1d() {
    let be = backend();
    let pre = Preprocess::Standardize {
        mean: vec![2.0],
        std: vec![0.5],
    };
    let m = model(1, 3, 0.3, pre, 11);
    let (lo, hi) = sample_range(&m, 0);
    let n = 200_001;
    let h = (hi - lo) / (n - 1) as f64;
    let x = Mat::from_fn(n, 1, |i, _| lo + i as f64 * h);
    let lp = m.log_prob(&be, x.as_ref()).unwrap();
    let w = trapezoid(n, h);
    let total: f64 = lp.iter().enumerate().map(|(i, l)| w(i) * l.exp()).sum();
    assert!((total - 1.0).abs() < 1e-6, "integral {total}");
    // Without the preprocessing's Jacobian 1 / std the integral over x would be std.
    let ms = m.scores(&be, x.as_ref(), Part::All).unwrap().model_space;
    let wrong: f64 = ms.iter().enumerate().map(|(i, l)| w(i) * l.exp()).sum();
    assert!((wrong - 0.5).abs() < 1e-6, "{wrong}");
}

#[test]
fn the_density_integrates_to_one_in_2d() {
    let be = backend();
    let m = model(2, 2, 0.3, standardize(2), 12);
    let (lo0, hi0) = sample_range(&m, 0);
    let (lo1, hi1) = sample_range(&m, 1);
    let n = 700;
    let (h0, h1) = ((hi0 - lo0) / (n - 1) as f64, (hi1 - lo1) / (n - 1) as f64);
    let x = Mat::from_fn(n * n, 2, |k, j| {
        if j == 0 {
            lo0 + (k / n) as f64 * h0
        } else {
            lo1 + (k % n) as f64 * h1
        }
    });
    let lp = m.log_prob(&be, x.as_ref()).unwrap();
    let (w0, w1) = (trapezoid(n, h0), trapezoid(n, h1));
    let total: f64 = lp
        .iter()
        .enumerate()
        .map(|(k, l)| w0(k / n) * w1(k % n) * l.exp())
        .sum();
    assert!((total - 1.0).abs() < 2e-3, "integral {total}");
}

// ---- forward, inverse, sample --------------------------------------------------------

#[test]
fn inverse_undoes_forward() {
    let be = backend();
    for pre in [Preprocess::None, standardize(4)] {
        let m = model(4, 3, 0.1, pre.clone(), 21);
        let x = gaussian_rows(100, 4, 2);
        let z = m.forward(&be, x.as_ref()).unwrap();
        assert_eq!((z.rows(), z.cols()), (100, 4));
        let back = m.inverse(&be, z.as_ref()).unwrap();
        for (a, b) in back.as_slice().iter().zip(x.as_slice()) {
            assert!(
                (a - b).abs() < 1e-9 * (1.0 + b.abs()),
                "{}: {a} vs {b}",
                pre.name()
            );
        }
    }
}

#[test]
fn forward_applies_the_preprocessing_before_the_network() {
    let be = backend();
    let m = model(3, 2, 0.1, standardize(3), 22);
    let Preprocess::Standardize { mean, std } = &m.preprocess else {
        unreachable!()
    };
    let x = gaussian_rows(10, 3, 3);
    let y = Mat::from_fn(10, 3, |i, j| (x.get(i, j) - mean[j]) / std[j]);
    let z = m.forward(&be, x.as_ref()).unwrap();
    let direct = f64_net(&m).forward(&be, y.as_ref()).unwrap();
    for (a, b) in z.as_slice().iter().zip(direct.as_slice()) {
        assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()));
    }
}

#[test]
fn inverse_of_forward_gives_back_pixels() {
    let be = backend();
    let pre = Preprocess::Logit {
        levels: 17,
        lambda: 1e-6,
    };
    let m = model(4, 2, 0.1, pre, 23);
    let x = Mat::from_fn(30, 4, |i, j| ((3 * i + 5 * j) % 17) as f64);
    let z = m.forward(&be, x.as_ref()).unwrap();
    assert_eq!(m.inverse(&be, z.as_ref()).unwrap(), x);
}

#[test]
fn samples_have_the_data_shape_and_map_to_the_base_density() {
    let be = backend();
    let m = model(3, 3, 0.1, standardize(3), 24);
    let n = 5000;
    let s = m.sample(&be, n, &mut StdRng::seed_from_u64(8)).unwrap();
    assert_eq!((s.rows(), s.cols()), (n, 3));
    assert!(s.as_slice().iter().all(|v| v.is_finite()));
    assert_eq!(
        s,
        m.sample(&be, n, &mut StdRng::seed_from_u64(8)).unwrap(),
        "seeded"
    );
    // The latents of exact samples are standard normal.
    let z = m.forward(&be, s.as_ref()).unwrap();
    for j in 0..3 {
        let col: Vec<f64> = (0..n).map(|i| z.get(i, j)).collect();
        let mean = col.iter().sum::<f64>() / n as f64;
        let var = col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.1, "column {j}: mean {mean}");
        assert!((var - 1.0).abs() < 0.1, "column {j}: variance {var}");
    }
    let lp = m.log_prob(&be, s.as_ref()).unwrap();
    assert!(lp.iter().all(|v| v.is_finite()));
    let empty = m.sample(&be, 0, &mut StdRng::seed_from_u64(8)).unwrap();
    assert_eq!((empty.rows(), empty.cols()), (0, 3));
}

#[test]
fn samples_of_image_models_are_whole_pixels() {
    let be = backend();
    let pre = Preprocess::Logit {
        levels: 256,
        lambda: 1e-6,
    };
    let m = model(5, 2, 0.1, pre, 25);
    let s = m.sample(&be, 300, &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!((s.rows(), s.cols()), (300, 5));
    assert!(s
        .as_slice()
        .iter()
        .all(|&p| p.fract() == 0.0 && (0.0..=255.0).contains(&p)));
}

// ---- bits per dimension --------------------------------------------------------------

#[test]
fn bits_per_dim_needs_the_logit_preprocessing() {
    let be = backend();
    let x = gaussian_rows(3, 2, 1);
    for pre in [Preprocess::None, standardize(2)] {
        let m = model(2, 2, 0.1, pre, 30);
        let e = m.bits_per_dim(&be, x.as_ref()).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(e.to_string().contains("logit"), "{e}");
    }
}

#[test]
fn bits_per_dim_is_minus_log_prob_over_d_ln_2() {
    let be = backend();
    let d = 6;
    let pre = Preprocess::Logit {
        levels: 17,
        lambda: 1e-6,
    };
    let m = model(d, 2, 0.1, pre, 31);
    let x = Mat::from_fn(12, d, |i, j| ((7 * i + j * j) % 17) as f64);
    let lp = m.log_prob(&be, x.as_ref()).unwrap();
    let bpd = m.bits_per_dim(&be, x.as_ref()).unwrap();
    assert_eq!(bpd.len(), 12);
    for (b, l) in bpd.iter().zip(&lp) {
        let want = -l / (d as f64 * std::f64::consts::LN_2);
        assert!((b - want).abs() < 1e-12 * want.abs(), "{b} vs {want}");
    }
    // The noise is seeded per part: the same part gives the same numbers, another part
    // other ones.
    assert_eq!(m.log_prob(&be, x.as_ref()).unwrap(), lp);
    assert_eq!(m.log_prob_part(&be, x.as_ref(), Part::All).unwrap(), lp);
    assert_ne!(m.log_prob_part(&be, x.as_ref(), Part::Test).unwrap(), lp);
    // And with the model's seed.
    let mut other = m.clone();
    other.seed = 1;
    assert_ne!(other.log_prob(&be, x.as_ref()).unwrap(), lp);
    // Non-pixels are refused, counted from 1.
    let mut bad = x.clone();
    bad.set(3, 1, 2.5);
    let e = m.bits_per_dim(&be, bad.as_ref()).unwrap_err();
    assert!(
        matches!(e, Error::NotAPixel { row: 3, col: 1, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("row 4, column 2"), "{e}");
}

// ---- threshold -----------------------------------------------------------------------

#[test]
fn threshold_interpolates_between_recorded_quantiles() {
    let mut m = model(2, 1, 0.1, Preprocess::None, 40);
    assert_eq!(m.threshold(0.5), None, "no quantiles recorded");
    m.train_quantiles = Some(vec![(0.0, -10.0), (0.1, -6.0), (0.5, -4.0), (1.0, 0.0)]);
    let t = |q: f64| m.threshold(q);
    assert_eq!(t(0.0), Some(-10.0));
    assert_eq!(t(0.1), Some(-6.0));
    assert_eq!(t(0.5), Some(-4.0));
    assert_eq!(t(1.0), Some(0.0));
    let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
    assert!(close(t(0.05), -8.0), "{:?}", t(0.05));
    assert!(close(t(0.3), -5.0), "{:?}", t(0.3));
    assert!(close(t(0.75), -2.0), "{:?}", t(0.75));
    assert!(close(t(0.025), -9.0), "{:?}", t(0.025));
    assert_eq!(t(-0.01), None);
    assert_eq!(t(1.01), None);
    assert_eq!(t(f64::NAN), None);
    // Quantiles that do not reach 1: levels beyond the last have no threshold.
    m.train_quantiles = Some(vec![(0.01, -7.0), (0.05, -5.0)]);
    assert_eq!(m.threshold(0.001), Some(-7.0));
    assert!(close(m.threshold(0.03), -6.0));
    assert_eq!(m.threshold(0.5), None);
}

#[test]
fn recorded_quantiles_are_those_of_the_training_log_densities() {
    let be = backend();
    let mut m = model(2, 2, 0.1, standardize(2), 41);
    let x = gaussian_rows(101, 2, 9);
    m.record_train_quantiles(&be, x.as_ref()).unwrap();
    let mut lp = m.log_prob(&be, x.as_ref()).unwrap();
    lp.sort_by(f64::total_cmp);
    // 101 rows: the q-quantile of the order statistics is the (100 q)-th smallest.
    assert_eq!(m.threshold(0.0), Some(lp[0]));
    assert_eq!(m.threshold(0.5), Some(lp[50]));
    assert_eq!(m.threshold(1.0), Some(lp[100]));
    assert!((m.threshold(0.25).unwrap() - lp[25]).abs() < 1e-12);
    assert!((m.threshold(0.01).unwrap() - lp[1]).abs() < 1e-12);
    // Below the threshold at level q lie about a fraction q of the rows.
    let t = m.threshold(0.1).unwrap();
    let below = lp.iter().filter(|&&v| v < t).count();
    assert_eq!(below, 10);
}

// ---- bad input -----------------------------------------------------------------------

#[test]
fn wrong_column_counts_are_refused() {
    let be = backend();
    let m = model(3, 2, 0.1, standardize(3), 50);
    let x = gaussian_rows(4, 2, 1);
    let check = |e: Error| {
        assert!(
            matches!(
                e,
                Error::Columns {
                    expected: 3,
                    found: 2
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("the model has dimension 3, the data has 2 columns"),
            "{e}"
        );
    };
    check(m.log_prob(&be, x.as_ref()).unwrap_err());
    check(m.mean_log_likelihood(&be, x.as_ref()).unwrap_err());
    check(m.forward(&be, x.as_ref()).unwrap_err());
    check(m.inverse(&be, x.as_ref()).unwrap_err());
    check(m.evaluate(&be, x.as_ref(), Part::Test, None).unwrap_err());
    let mut img = m.clone();
    img.preprocess = Preprocess::Logit {
        levels: 17,
        lambda: 1e-6,
    };
    check(
        img.bits_per_dim(&be, Mat::from_vec(1, 2, vec![1.0, 2.0]).as_ref())
            .unwrap_err(),
    );
}

#[test]
fn non_finite_inputs_are_named_from_one() {
    let be = backend();
    let m = model(3, 2, 0.1, standardize(3), 51);
    let mut x = gaussian_rows(4, 3, 1);
    x.set(1, 2, f64::NAN);
    let check = |e: Error, text: &str| {
        assert!(
            matches!(e, Error::NonFinite { row: 1, col: 2, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains(text), "{e}");
    };
    let nan = "row 2, column 3 is not a finite number (NaN)";
    check(m.log_prob(&be, x.as_ref()).unwrap_err(), nan);
    check(m.mean_log_likelihood(&be, x.as_ref()).unwrap_err(), nan);
    check(m.forward(&be, x.as_ref()).unwrap_err(), nan);
    check(m.inverse(&be, x.as_ref()).unwrap_err(), nan);
    check(
        m.evaluate(&be, x.as_ref(), Part::Test, None).unwrap_err(),
        nan,
    );
    x.set(1, 2, f64::NEG_INFINITY);
    check(
        m.log_prob(&be, x.as_ref()).unwrap_err(),
        "row 2, column 3 is not a finite number (-inf)",
    );
}

#[test]
fn no_rows_to_average() {
    let be = backend();
    let m = model(2, 1, 0.1, Preprocess::None, 52);
    let x = Mat::<f64>::zeros(0, 2);
    assert!(m.log_prob(&be, x.as_ref()).unwrap().is_empty());
    let e = m.mean_log_likelihood(&be, x.as_ref()).unwrap_err();
    assert!(e.to_string().contains("no rows"), "{e}");
}

#[test]
fn huge_weights_give_an_error_or_a_finite_log_density_never_inf_or_nan() {
    let be = backend();
    for precision_f32 in [false, true] {
        let mut net = random_mlp(3, 2, Activation::SmoothLeakyRelu { alpha: 0.1 }, 53);
        for l in net.layers_mut() {
            for w in l.weight.as_mut_slice() {
                *w *= 1e30;
            }
        }
        let network = if precision_f32 {
            Network::F32(net.cast())
        } else {
            Network::F64(net)
        };
        let m = DensityModel::new(network, Preprocess::None).unwrap();
        let x = gaussian_rows(5, 3, 2);
        match m.log_prob(&be, x.as_ref()) {
            Ok(lp) => assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}"),
            Err(e) => assert!(
                matches!(e, Error::NonFiniteResult(_)) && e.to_string().contains("row"),
                "{e}"
            ),
        }
        match m.forward(&be, x.as_ref()) {
            Ok(z) => assert!(z.as_slice().iter().all(|v| v.is_finite()), "{z:?}"),
            Err(e) => assert!(e.to_string().contains("the latent of column"), "{e}"),
        }
        match m.sample(&be, 4, &mut StdRng::seed_from_u64(1)) {
            Ok(s) => assert!(s.as_slice().iter().all(|v| v.is_finite())),
            Err(e) => assert!(e.to_string().contains("not finite"), "{e}"),
        }
    }
}

//! Spline activations as a user meets them: exact samples whose histogram matches the
//! density, the identity start at the best Gaussian, and training that leaves the
//! Gaussian behind on two-dimensional data (the conformance suite holds the gradients).

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use relgrad::gaussian::Gaussian;
use relgrad::init::Architecture;
use relgrad::train::train;
use relgrad::{
    Activation, BaseDensity, DefaultBackend, Init, InvertibleMlp, Mat, Optimizer, TrainConfig,
};

const SPLINE: Activation = Activation::Spline {
    bins: 6,
    bound: 2.0,
};

/// A 2-D model with three layers, well-conditioned weights and random splines.
fn random_spline_model(seed: u64) -> InvertibleMlp<f64> {
    let case = Case {
        d: 2,
        b: 1,
        l: 3,
        activation: SPLINE,
        base: BaseDensity::Normal,
        bias: true,
        seed,
    };
    model_and_data(&case).0
}

/// Goodness of fit of `model.sample` against `model.log_prob`: 200,000 samples are
/// counted in a 12 x 12 grid of cells over the box that holds the middle 99% of them per
/// coordinate; each cell's expected count is its probability (the density integrated
/// with a 16 x 16 midpoint rule, far finer than the density varies) times the sample
/// size. Pearson's statistic over the 144 cells must lie below `k + 6 sqrt(2k)` (`k`
/// cells with an expected count of at least 5): a correct sampler fails that by chance
/// with a probability below 1e-6, and a sampler that misses a spline's inverse by a
/// fraction of a bin fails it by far (checked by hand with a perturbed inverse).
#[test]
fn samples_match_the_density() {
    let backend = DefaultBackend::default();
    for seed in [3u64, 11] {
        let model = random_spline_model(seed);
        let n = 200_000;
        let s = model
            .sample(&backend, n, &mut StdRng::seed_from_u64(seed))
            .unwrap();
        let quantile = |j: usize, q: f64| {
            let mut v: Vec<f64> = (0..n).map(|i| s.get(i, j)).collect();
            v.sort_by(f64::total_cmp);
            v[((n - 1) as f64 * q) as usize]
        };
        let (cells, fine) = (12usize, 16usize);
        let lo = [quantile(0, 0.005), quantile(1, 0.005)];
        let hi = [quantile(0, 0.995), quantile(1, 0.995)];
        let width = [
            (hi[0] - lo[0]) / cells as f64,
            (hi[1] - lo[1]) / cells as f64,
        ];
        let mut observed = vec![0f64; cells * cells];
        for i in 0..n {
            let c: Vec<f64> = (0..2)
                .map(|j| ((s.get(i, j) - lo[j]) / width[j]).floor())
                .collect();
            if c.iter().all(|&v| v >= 0.0 && v < cells as f64) {
                observed[c[0] as usize * cells + c[1] as usize] += 1.0;
            }
        }
        let m = cells * fine;
        let grid = Mat::from_fn(m * m, 2, |r, j| {
            let k = if j == 0 { r / m } else { r % m };
            lo[j] + (k as f64 + 0.5) * width[j] / fine as f64
        });
        let lp = model.log_prob(&backend, grid.as_ref()).unwrap();
        let area = width[0] * width[1] / (fine * fine) as f64;
        let mut expected = vec![0f64; cells * cells];
        for (r, &l) in lp.iter().enumerate() {
            let (a, b) = (r / m / fine, (r % m) / fine);
            expected[a * cells + b] += l.exp() * area * n as f64;
        }
        let (mut chi2, mut k) = (0.0, 0usize);
        for (o, e) in observed.iter().zip(&expected) {
            if *e >= 5.0 {
                chi2 += (o - e) * (o - e) / e;
                k += 1;
            }
        }
        let limit = k as f64 + 6.0 * (2.0 * k as f64).sqrt();
        assert!(
            k > 60,
            "seed {seed}: only {k} cells with 5 expected samples"
        );
        assert!(
            chi2 < limit,
            "seed {seed}: Pearson's statistic {chi2:.1} over {k} cells (limit {limit:.1})"
        );
        // The box's probability agrees with the share of samples inside it.
        let inside: f64 = observed.iter().sum::<f64>() / n as f64;
        let mass: f64 = expected.iter().sum::<f64>() / n as f64;
        assert!(
            (inside - mass).abs() < 0.005,
            "seed {seed}: {inside} vs {mass}"
        );
    }
}

/// Two moons, as `relgrad train`'s generator draws them.
fn moons(n: usize, seed: u64) -> Mat<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(2 * n);
    for i in 0..n {
        let t = std::f64::consts::PI * rng.random::<f64>();
        let (x, y) = if i % 2 == 0 {
            (t.cos(), t.sin())
        } else {
            (1.0 - t.cos(), 0.5 - t.sin())
        };
        let nx: f64 = StandardNormal.sample(&mut rng);
        let ny: f64 = StandardNormal.sample(&mut rng);
        v.extend([2.0 * (x + 0.1 * nx) - 1.0, 2.0 * (y + 0.1 * ny) - 0.2]);
    }
    Mat::from_vec(n, 2, v)
}

fn spline_arch(bins: usize, n_layers: usize) -> Architecture {
    Architecture {
        dim: 2,
        n_layers,
        activation: Activation::Spline { bins, bound: 4.0 },
        base: BaseDensity::Normal,
        use_bias: true,
    }
}

/// Identity splines and the data-dependent start: the network is affine and the start is
/// the best full-covariance Gaussian of the data, exactly, at any depth.
#[test]
fn the_spline_start_is_the_best_gaussian() {
    let backend = DefaultBackend::default();
    let x = moons(1000, 1);
    let gauss = Gaussian::fit(&backend, x.as_ref())
        .unwrap()
        .mean_log_likelihood(x.as_ref())
        .unwrap();
    for layers in [1, 2, 5] {
        let model = Init::default()
            .build::<f64, _>(spline_arch(8, layers), &backend, Some(x.as_ref()))
            .unwrap();
        let ll = model.mean_log_likelihood(&backend, x.as_ref()).unwrap();
        assert!(
            (ll - gauss).abs() < 1e-9,
            "{layers} layers: start {ll}, Gaussian {gauss}"
        );
    }
}

/// Trained with the library's own loop (SGD for the weights, Adam for the splines), a
/// spline network on two moons leaves the best Gaussian far behind on held-out rows,
/// in both precisions; a tanh-linear one of the same depth does not.
#[test]
fn splines_learn_two_moons() {
    let backend = DefaultBackend::default();
    let (train_x, val_x) = (moons(2000, 2), moons(1000, 3));
    let gauss = Gaussian::fit(&backend, train_x.as_ref())
        .unwrap()
        .mean_log_likelihood(val_x.as_ref())
        .unwrap();
    let config = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 1e-3,
            momentum: 0.9,
        },
        epochs: 60,
        look_ahead: None,
        ..TrainConfig::default()
    };
    let fit = |arch: Architecture| {
        let mut model = Init::default()
            .build::<f64, _>(arch, &backend, Some(train_x.as_ref()))
            .unwrap();
        train(
            &mut model,
            &backend,
            train_x.as_ref(),
            Some(val_x.as_ref()),
            config.clone(),
        )
        .unwrap();
        model.mean_log_likelihood(&backend, val_x.as_ref()).unwrap()
    };
    let spline = fit(spline_arch(16, 6));
    let tanh = fit(Architecture {
        activation: Activation::TanhLinear { beta: 0.1 },
        ..spline_arch(16, 6)
    });
    assert!(
        spline > gauss + 0.5,
        "splines: {spline}, Gaussian {gauss}, tanh-linear {tanh}"
    );
    assert!(spline > tanh + 0.4, "splines: {spline}, tanh-linear {tanh}");
}

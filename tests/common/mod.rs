//! Shared helpers for the workspace tests: random well-conditioned models and data,
//! independent reference formulas (spec oracles) and comparison utilities.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use relgrad::init::Architecture;
use relgrad::linalg::random_orthogonal;
use relgrad::{Activation, BaseDensity, InvertibleMlp, Layer, Mat, Scalar};

/// Every activation, with its usual parameter (splines get random parameters from
/// [`model_and_data`]).
pub const ACTIVATIONS: [Activation; 4] = [
    Activation::SmoothLeakyRelu { alpha: 0.01 },
    Activation::LeakyRelu { alpha: 0.2 },
    Activation::TanhLinear { beta: 0.5 },
    Activation::Spline {
        bins: 5,
        bound: 2.0,
    },
];

/// Every base density (a mixture gets random parameters from [`model_and_data`]).
pub const BASES: [BaseDensity; 4] = [
    BaseDensity::Normal,
    BaseDensity::Laplace,
    BaseDensity::Logistic,
    BaseDensity::Mixture { components: 3 },
];

/// An architecture with the default activation and base density, and biases.
pub fn arch(dim: usize, n_layers: usize) -> Architecture {
    Architecture {
        dim,
        n_layers,
        activation: Activation::default(),
        base: BaseDensity::Normal,
        use_bias: true,
    }
}

/// Every parameter of a model in one vector: per layer, the weight then the bias; then
/// the spline parameters, then a mixture base's.
pub fn flat_params<T: Scalar>(model: &InvertibleMlp<T>) -> Vec<T> {
    model
        .layers()
        .iter()
        .flat_map(|l| l.weight.as_slice().iter().chain(&l.bias).copied())
        .chain(
            model
                .splines()
                .iter()
                .chain(model.base_params())
                .flat_map(|m| m.as_slice().iter().copied()),
        )
        .collect()
}

/// One random test problem.
#[derive(Clone, Debug)]
pub struct Case {
    pub d: usize,
    pub b: usize,
    pub l: usize,
    pub activation: Activation,
    pub base: BaseDensity,
    pub bias: bool,
    pub seed: u64,
}

/// A proptest strategy over shapes (D 1..24, B 1..40, L 1..4), activations (splines
/// included), densities,
/// bias on/off and a seed for the numbers.
pub fn cases() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    (
        1usize..=24,
        1usize..=40,
        1usize..=4,
        0usize..ACTIVATIONS.len(),
        0usize..BASES.len(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(d, b, l, a, p, bias, seed)| Case {
            d,
            b,
            l,
            activation: ACTIVATIONS[a],
            base: BASES[p],
            bias,
            seed,
        })
}

/// [`cases`] with spline activations only, at least two layers, and spline shapes of
/// their own (2 to 12 bins, bounds 0.5 to 4).
pub fn spline_cases() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    (cases(), 2usize..=4, 2usize..=12, 0.5f64..4.0).prop_map(|(mut c, l, bins, bound)| {
        c.l = l;
        c.activation = Activation::Spline { bins, bound };
        c
    })
}

/// [`cases`] with a mixture base of 1 to 5 components.
pub fn mixture_cases() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    (cases(), 1usize..=5).prop_map(|(mut c, components)| {
        c.base = BaseDensity::Mixture { components };
        c
    })
}

/// A well-conditioned random matrix: `Q1 diag(s) Q2` with `s` in `[0.5, 2]`.
pub fn well_conditioned<R: Rng>(d: usize, rng: &mut R) -> Mat<f64> {
    let q1 = random_orthogonal(d, rng);
    let q2 = random_orthogonal(d, rng);
    let s: Vec<f64> = (0..d)
        .map(|_| 0.5 * 4f64.powf(rng.random::<f64>()))
        .collect();
    Mat::from_fn(d, d, |i, j| {
        (0..d).map(|k| q1.get(i, k) * s[k] * q2.get(k, j)).sum()
    })
}

/// A random model and batch for `case`, in f64.
pub fn model_and_data(case: &Case) -> (InvertibleMlp<f64>, Mat<f64>) {
    let mut rng = StdRng::seed_from_u64(case.seed);
    let layers = (0..case.l)
        .map(|_| Layer {
            weight: well_conditioned(case.d, &mut rng),
            bias: (0..case.d)
                .map(|_| {
                    if case.bias {
                        0.5 * <StandardNormal as Distribution<f64>>::sample(
                            &StandardNormal,
                            &mut rng,
                        )
                    } else {
                        0.0
                    }
                })
                .collect(),
        })
        .collect();
    let mut model =
        InvertibleMlp::from_layers(layers, case.activation, case.base, case.bias).unwrap();
    for m in model.splines_mut() {
        for v in m.as_mut_slice() {
            *v = 1.5 * (rng.random::<f64>() * 2.0 - 1.0);
        }
    }
    if let Some(m) = model.base_params_mut() {
        // Locations and logits in [-1, 1], scales in [e^-1, e^0.5].
        let k = m.cols() / 3;
        for row in m.as_mut_slice().chunks_exact_mut(3 * k) {
            for (i, v) in row.iter_mut().enumerate() {
                let r = rng.random::<f64>() * 2.0 - 1.0;
                *v = if (k..2 * k).contains(&i) {
                    0.75 * r - 0.25
                } else {
                    r
                };
            }
        }
    }
    let x = Mat::from_fn(case.b, case.d, |_, _| StandardNormal.sample(&mut rng));
    (model, x)
}

/// A monotone rational-quadratic spline from one unit's raw parameters (`K` width logits,
/// `K` height logits, `K - 1` slope parameters), written from the formulas of Durkan et
/// al. (2019) independently of the library: `(s(x), ln s'(x))`, the identity outside
/// `[-bound, bound]`; and the distance from `x` to the nearest knot (where the slope's
/// derivative jumps, so that finite differences can keep away).
pub fn reference_spline(raw: &[f64], bins: usize, bound: f64, x: f64) -> (f64, f64, f64) {
    if !(-bound..bound).contains(&x) {
        return (x, 0.0, (x.abs() - bound).abs());
    }
    let k = bins;
    let sizes = |logits: &[f64]| -> Vec<f64> {
        let top = logits.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = logits.iter().map(|u| (u - top).exp()).collect();
        let sum: f64 = e.iter().sum();
        e.iter()
            .map(|v| 2.0 * bound * (1e-3 + (1.0 - k as f64 * 1e-3) * v / sum))
            .collect()
    };
    let (w, h) = (sizes(&raw[..k]), sizes(&raw[k..2 * k]));
    let mut d = vec![1.0; k + 1];
    for i in 1..k {
        let r: f64 = raw[2 * k + i - 1];
        d[i] = 1e-3 + (1.0 + r.exp()).ln();
    }
    let mut gap = f64::INFINITY;
    let mut at = -bound;
    for wi in &w {
        gap = gap.min((x - at).abs());
        at += wi;
    }
    gap = gap.min((x - bound).abs());
    let (mut xk, mut yk) = (-bound, -bound);
    let mut b = 0;
    while b + 1 < k && x >= xk + w[b] {
        xk += w[b];
        yk += h[b];
        b += 1;
    }
    let s = h[b] / w[b];
    let xi = (x - xk) / w[b];
    let den = s + (d[b + 1] + d[b] - 2.0 * s) * xi * (1.0 - xi);
    let y = yk + h[b] * (s * xi * xi + d[b] * xi * (1.0 - xi)) / den;
    let slope =
        s * s * (d[b + 1] * xi * xi + 2.0 * s * xi * (1.0 - xi) + d[b] * (1.0 - xi).powi(2))
            / (den * den);
    (y, slope.ln(), gap)
}

/// The derivative at 0 of `f` by central differences with Richardson extrapolation:
/// `(4 D(h) - D(2h)) / 3`, whose truncation error is `O(h^4)`. Plain central differences
/// (`O(h^2)`) are off by a few parts in a million where a spline's rational pieces curve
/// sharply near a knot; the extrapolated one stays within rounding. `f` must be smooth on
/// `[-2h, 2h]`.
pub fn central_difference(f: impl Fn(f64) -> f64, h: f64) -> f64 {
    let d1 = (f(h) - f(-h)) / (2.0 * h);
    let d2 = (f(2.0 * h) - f(-2.0 * h)) / (4.0 * h);
    (4.0 * d1 - d2) / 3.0
}

/// `max |a - b| / max(max |b|, floor)` over all elements.
pub fn rel_err<T: Scalar, U: Scalar>(a: &[T], b: &[U], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(floor, |m, v| m.max(v.to_f64c().abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x.to_f64c() - y.to_f64c()).abs()))
        / scale
}

/// Plain triple-loop product `A B` (the test's own, independent of every backend).
pub fn matmul(a: &Mat<f64>, b: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(a.rows(), b.cols(), |i, j| {
        (0..a.cols()).map(|k| a.get(i, k) * b.get(k, j)).sum()
    })
}

/// The spec's oracle for the relative gradient of one layer, from the Euclidean
/// gradient `(gw, gb)`: `R_W = W W^T G_W + W b G_b^T`, `R_b = b^T W^T G_W + (1 + b^T b) G_b^T`.
pub fn relative_from_euclidean(
    w: &Mat<f64>,
    b: &[f64],
    gw: &Mat<f64>,
    gb: &[f64],
) -> (Mat<f64>, Vec<f64>) {
    let d = w.rows();
    let wwt = matmul(w, &w.transpose());
    let wwtg = matmul(&wwt, gw);
    let wb: Vec<f64> = (0..d)
        .map(|i| (0..d).map(|k| w.get(i, k) * b[k]).sum())
        .collect();
    let rw = Mat::from_fn(d, d, |i, j| wwtg.get(i, j) + wb[i] * gb[j]);
    let btb: f64 = b.iter().map(|v| v * v).sum();
    let rb = (0..d)
        .map(|j| (0..d).map(|i| wb[i] * gw.get(i, j)).sum::<f64>() + (1.0 + btb) * gb[j])
        .collect();
    (rw, rb)
}

/// The mean log-likelihood `J` computed from scratch with plain loops and an independent
/// log-determinant (Gaussian elimination with partial pivoting), plus the smallest
/// distance of any kinked quantity (leaky-ReLU pre-activation, Laplace latent) from its
/// kink, so finite differences can avoid kinks.
pub fn reference_objective(model: &InvertibleMlp<f64>, x: &Mat<f64>) -> (f64, f64) {
    let (n, d) = (x.rows(), x.cols());
    let act = model.activation();
    let mut total = 0.0;
    let mut margin = f64::INFINITY;
    let kinked_act = matches!(act, Activation::LeakyRelu { .. });
    let kinked_base = model.base() == BaseDensity::Laplace;
    for r in 0..n {
        let mut h: Vec<f64> = x.row(r).to_vec();
        for (l, layer) in model.layers().iter().enumerate() {
            let mut y: Vec<f64> = (0..d)
                .map(|j| (0..d).map(|k| h[k] * layer.weight.get(k, j)).sum::<f64>() + layer.bias[j])
                .collect();
            if l + 1 < model.n_layers() {
                for (j, v) in y.iter_mut().enumerate() {
                    if kinked_act {
                        margin = margin.min(v.abs());
                    }
                    if let Activation::Spline { bins, bound } = act {
                        // The slope's derivative jumps at the knots.
                        let p = model.splines()[l].row(j);
                        let (s, ld, gap) = reference_spline(p, bins, bound, *v);
                        margin = margin.min(gap);
                        total += ld;
                        *v = s;
                        continue;
                    }
                    total += act.log_derivative(*v);
                    *v = act.eval(*v);
                }
            } else {
                for (j, v) in y.iter().enumerate() {
                    if kinked_base {
                        margin = margin.min(v.abs());
                    }
                    total += match model.base_params() {
                        Some(p) => reference_mixture(p.row(j), *v),
                        None => model.base().log_prob(*v),
                    };
                }
            }
            h = y;
        }
    }
    let logdet: f64 = model.layers().iter().map(|l| log_abs_det(&l.weight)).sum();
    (total / n as f64 + logdet, margin)
}

/// A mixture of `K` logistic densities from one unit's raw parameters (`K` locations, `K`
/// log-scales, `K` weight logits), written from the definition independently of the
/// library: `ln sum_k w_k e^{-u_k} / (s_k (1 + e^{-u_k})^2)` with `u_k = (z - m_k) / s_k`.
pub fn reference_mixture(raw: &[f64], z: f64) -> f64 {
    let k = raw.len() / 3;
    let norm: f64 = raw[2 * k..].iter().map(|a| a.exp()).sum();
    let density: f64 = (0..k)
        .map(|i| {
            let s = raw[k + i].exp();
            let u = (z - raw[i]) / s;
            let e = (-u.abs()).exp();
            raw[2 * k + i].exp() / norm * e / (s * (1.0 + e) * (1.0 + e))
        })
        .sum();
    density.ln()
}

/// `ln|det A|` by Gaussian elimination with partial pivoting (independent of backends).
pub fn log_abs_det(a: &Mat<f64>) -> f64 {
    let n = a.rows();
    let mut m = a.clone();
    let mut acc = 0.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| m.get(i, k).abs().total_cmp(&m.get(j, k).abs()))
            .unwrap();
        if p != k {
            for j in 0..n {
                let t = m.get(k, j);
                m.set(k, j, m.get(p, j));
                m.set(p, j, t);
            }
        }
        let piv = m.get(k, k);
        acc += piv.abs().ln();
        for i in k + 1..n {
            let f = m.get(i, k) / piv;
            for j in k..n {
                m.set(i, j, m.get(i, j) - f * m.get(k, j));
            }
        }
    }
    acc
}

/// The Amari distance between `P` and the set of scaled permutations, normalised to
/// `[0, 1]`: zero exactly when `P` has one non-zero entry per row and column.
pub fn amari_distance(p: &Mat<f64>) -> f64 {
    let n = p.rows();
    if n < 2 {
        return 0.0;
    }
    let a = Mat::from_fn(n, n, |i, j| p.get(i, j).abs());
    let rows: f64 = (0..n)
        .map(|i| {
            let r = a.row(i);
            r.iter().sum::<f64>() / r.iter().cloned().fold(0.0, f64::max) - 1.0
        })
        .sum();
    let cols: f64 = (0..n)
        .map(|j| {
            let col: Vec<f64> = (0..n).map(|i| a.get(i, j)).collect();
            col.iter().sum::<f64>() / col.iter().cloned().fold(0.0, f64::max) - 1.0
        })
        .sum();
    (rows + cols) / (2.0 * n as f64 * (n as f64 - 1.0))
}

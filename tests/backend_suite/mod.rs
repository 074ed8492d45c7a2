//! The backend conformance suite: every check is generic over the backend, so a new
//! backend runs all of them by adding one line to `tests/conformance.rs`.
#![allow(dead_code)]

pub mod kernels;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use relgrad::{
    naive_gradient, relative_gradient, train_step, Backend, GradientKind, InvertibleMlp, Mat,
    Optimizer, OptimizerState, Scalar, StepPath, Trans, Workspace,
};

use crate::common::*;

/// Oracle 1: the relative gradient equals `A A^T` times the naive Euclidean gradient.
pub fn relative_matches_oracle<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let mut ws = Workspace::<f64, B>::new(&model, case.b);
    naive_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    let euclid = ws.grad.clone();
    relative_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    for (l, layer) in model.layers().iter().enumerate() {
        let (rw, rb) = relative_from_euclidean(
            &layer.weight,
            &layer.bias,
            &euclid.weights[l],
            &euclid.biases[l],
        );
        let ew = rel_err(ws.grad.weights[l].as_slice(), rw.as_slice(), 1e-12);
        prop_assert!(ew < 1e-9, "layer {l}: relative error of R_W {ew:e}");
        if case.bias {
            let eb = rel_err(&ws.grad.biases[l], &rb, 1e-12);
            prop_assert!(eb < 1e-9, "layer {l}: relative error of R_b {eb:e}");
        }
    }
    Ok(())
}

/// Oracle 2: the naive gradient equals extrapolated central finite differences of an
/// independently computed mean log-likelihood (checked on a random subset of parameters).
pub fn naive_matches_finite_differences<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let (_, margin) = reference_objective(&model, &x);
    // Finite differences across a kink (leaky ReLU, Laplace) measure nothing useful.
    prop_assume!(margin > 1e-4);
    let mut ws = Workspace::<f64, B>::new(&model, case.b);
    naive_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    let mut rng = StdRng::seed_from_u64(case.seed ^ 0xF1D1);
    let h = 1e-6;
    for _ in 0..12 {
        let l = rng.random_range(0..case.l);
        let bias = case.bias && rng.random::<bool>();
        let (i, j) = (rng.random_range(0..case.d), rng.random_range(0..case.d));
        let analytic = if bias {
            ws.grad.biases[l][j]
        } else {
            ws.grad.weights[l].get(i, j)
        };
        let perturbed = |delta: f64| {
            let mut m = model.clone();
            let layer = &mut m.layers_mut()[l];
            if bias {
                layer.bias[j] += delta;
            } else {
                let v = layer.weight.get(i, j);
                layer.weight.set(i, j, v + delta);
            }
            reference_objective(&m, &x).0
        };
        let fd = central_difference(perturbed, h);
        let err = (fd - analytic).abs() / analytic.abs().max(1.0);
        prop_assert!(
            err < 1e-6,
            "layer {l} {} ({i},{j}): analytic {analytic}, finite differences {fd}",
            if bias { "bias" } else { "weight" }
        );
    }
    Ok(())
}

/// Oracle 2 for a mixture base's parameters: their gradient is the same in the naive and
/// the relative gradient (they take no relative scaling) and equals extrapolated central
/// finite differences of the independently computed mean log-likelihood, on a random
/// subset of parameters.
pub fn base_gradient_matches_finite_differences<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let (_, margin) = reference_objective(&model, &x);
    prop_assume!(margin > 1e-4);
    let mut ws = Workspace::<f64, B>::new(&model, case.b);
    naive_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    let naive = ws.grad.base.clone().expect("a mixture base has a gradient");
    relative_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    let relative = ws
        .grad
        .base
        .as_ref()
        .expect("a mixture base has a gradient");
    prop_assert_eq!(naive.as_slice(), relative.as_slice());
    let mut rng = StdRng::seed_from_u64(case.seed ^ 0xBA5E);
    for _ in 0..12 {
        let (j, p) = (
            rng.random_range(0..case.d),
            rng.random_range(0..naive.cols()),
        );
        let perturbed = |delta: f64| {
            let mut m = model.clone();
            let params = m.base_params_mut().unwrap();
            params.set(j, p, params.get(j, p) + delta);
            reference_objective(&m, &x).0
        };
        let fd = central_difference(perturbed, 1e-6);
        let analytic = naive.get(j, p);
        let err = (fd - analytic).abs() / analytic.abs().max(1.0);
        prop_assert!(
            err < 1e-6,
            "unit {j} base parameter {p}: analytic {analytic}, finite differences {fd}"
        );
    }
    Ok(())
}

/// Oracle 3: LU log-determinants of matrices whose determinant is known.
pub fn log_det_known<B: Backend<f64>>(
    backend: &B,
    d: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut lu = backend.lu_workspace(d);
    let diag: Vec<f64> = (0..d)
        .map(|_| {
            let v: f64 = 0.1 + 3.0 * rng.random::<f64>();
            if rng.random::<bool>() {
                v
            } else {
                -v
            }
        })
        .collect();
    let expect_log: f64 = diag.iter().map(|v| v.abs().ln()).sum();
    let expect_sign = if diag.iter().filter(|v| **v < 0.0).count() % 2 == 0 {
        1.0
    } else {
        -1.0
    };
    // Diagonal.
    let a = Mat::from_fn(d, d, |i, j| if i == j { diag[i] } else { 0.0 });
    let ld = backend.lu_factor(a.as_ref(), &mut lu);
    prop_assert!((ld.log_abs - expect_log).abs() < 1e-10 * (1.0 + expect_log.abs()));
    prop_assert_eq!(ld.sign, expect_sign);
    // Upper and lower triangular with that diagonal.
    for upper in [true, false] {
        let a = Mat::from_fn(d, d, |i, j| {
            if i == j {
                diag[i]
            } else if (i < j) == upper {
                // Scaled so that the matrix stays reasonably conditioned at every size.
                Distribution::<f64>::sample(&StandardNormal, &mut rng) / (d as f64).sqrt()
            } else {
                0.0
            }
        });
        let ld = backend.lu_factor(a.as_ref(), &mut lu);
        prop_assert!(
            (ld.log_abs - expect_log).abs() < 1e-9 * (1.0 + expect_log.abs()),
            "triangular: {} vs {}",
            ld.log_abs,
            expect_log
        );
        prop_assert_eq!(ld.sign, expect_sign);
    }
    // Q1 diag Q2 with orthogonal Q's: |det| is the product of the diagonal.
    let q1 = relgrad::linalg::random_orthogonal(d, &mut rng);
    let q2 = relgrad::linalg::random_orthogonal(d, &mut rng);
    let qd = Mat::from_fn(d, d, |i, j| q1.get(i, j) * diag[j]);
    let a = matmul(&qd, &q2);
    let ld = backend.lu_factor(a.as_ref(), &mut lu);
    prop_assert!(
        (ld.log_abs - expect_log).abs() < 1e-9 * (1.0 + expect_log.abs()),
        "Q D Q: {} vs {}",
        ld.log_abs,
        expect_log
    );
    // A permutation that swaps rows 0 and 1 has determinant -1.
    if d >= 2 {
        let p = Mat::from_fn(d, d, |i, j| {
            let pi = match i {
                0 => 1,
                1 => 0,
                k => k,
            };
            if pi == j {
                1.0
            } else {
                0.0
            }
        });
        let ld = backend.lu_factor(p.as_ref(), &mut lu);
        prop_assert!(ld.log_abs.abs() < 1e-14);
        prop_assert_eq!(ld.sign, -1.0);
        // A singular matrix: two equal rows.
        let mut s = a.clone();
        let r0 = s.row(0).to_vec();
        s.row_mut(1).copy_from_slice(&r0);
        let ld = backend.lu_factor(s.as_ref(), &mut lu);
        prop_assert!(
            ld.is_singular() || ld.log_abs < expect_log - 25.0,
            "singular matrix gave {ld:?}"
        );
    }
    // Solve and inverse residuals on the well-conditioned matrix.
    backend.lu_factor(a.as_ref(), &mut lu);
    let mut inv = Mat::zeros(d, d);
    backend.lu_inverse(&mut lu, inv.as_mut());
    let eye = matmul(&a, &inv);
    prop_assert!(rel_err(eye.as_slice(), Mat::<f64>::identity(d).as_slice(), 1.0) < 1e-12);
    let rhs = Mat::from_fn(d, 3, |_, _| StandardNormal.sample(&mut rng));
    let mut sol = rhs.clone();
    backend.lu_solve(&mut lu, sol.as_mut());
    prop_assert!(rel_err(matmul(&a, &sol).as_slice(), rhs.as_slice(), 1.0) < 1e-12);
    Ok(())
}

/// Oracle 4: `inverse(forward(x)) == x` and `forward(inverse(z)) == z`.
pub fn round_trips<B: Backend<f64>>(backend: &B, case: &Case) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let z = model.forward(backend, x.as_ref()).unwrap();
    let back = model.inverse(backend, z.as_ref()).unwrap();
    let e = rel_err(back.as_slice(), x.as_slice(), 1.0);
    prop_assert!(e < 1e-9, "inverse(forward(x)) off by {e:e}");
    let mut rng = StdRng::seed_from_u64(case.seed ^ 7);
    let z: Mat<f64> = Mat::from_fn(case.b, case.d, |_, _| StandardNormal.sample(&mut rng));
    let x = model.inverse(backend, z.as_ref()).unwrap();
    let again = model.forward(backend, x.as_ref()).unwrap();
    let e = rel_err(again.as_slice(), z.as_slice(), 1.0);
    prop_assert!(e < 1e-9, "forward(inverse(z)) off by {e:e}");
    Ok(())
}

/// The per-row log-density equals the independent reference computation.
pub fn log_prob_matches_reference<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let lp = model.log_prob(backend, x.as_ref()).unwrap();
    for (r, &got) in lp.iter().enumerate() {
        let row = Mat::from_vec(1, case.d, x.row(r).to_vec());
        let (want, _) = reference_objective(&model, &row);
        prop_assert!(
            (got - want).abs() < 1e-9 * (1.0 + want.abs()),
            "row {r}: {got} vs {want}"
        );
    }
    Ok(())
}

/// Oracle 5: single precision agrees with double precision to single-precision tolerance.
pub fn f32_matches_f64<B: Backend<f32> + Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let (model32, x32) = (model.cast::<f32>(), x.cast::<f32>());
    let mut ws64 = Workspace::<f64, B>::new(&model, case.b);
    let mut ws32 = Workspace::<f32, B>::new(&model32, case.b);
    relative_gradient(&model, backend, x.as_ref(), &mut ws64).unwrap();
    relative_gradient(&model32, backend, x32.as_ref(), &mut ws32).unwrap();
    for l in 0..case.l {
        let e = rel_err(
            ws32.grad.weights[l].as_slice(),
            ws64.grad.weights[l].as_slice(),
            1e-3,
        );
        prop_assert!(e < 2e-3, "layer {l}: f32 R_W differs by {e:e}");
    }
    let lp64 = model.log_prob(backend, x.as_ref()).unwrap();
    let lp32 = model32.log_prob(backend, x32.as_ref()).unwrap();
    let e = rel_err(&lp32, &lp64, 1.0);
    prop_assert!(e < 1e-4, "f32 log_prob differs by {e:e}");
    Ok(())
}

/// `gemm` against a plain triple loop, for every transpose combination, several `beta`,
/// strided views, and an output full of NaN when `beta == 0` (which must not be read).
pub fn gemm_matches_loops<T: Scalar, B: Backend<T>>(
    backend: &B,
    m: usize,
    n: usize,
    k: usize,
    seed: u64,
) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut r = || T::from_f64c(StandardNormal.sample(&mut rng));
    for (ta, tb) in [
        (Trans::No, Trans::No),
        (Trans::Yes, Trans::No),
        (Trans::No, Trans::Yes),
        (Trans::Yes, Trans::Yes),
    ] {
        let (ar, ac) = if ta == Trans::No { (m, k) } else { (k, m) };
        let (br, bc) = if tb == Trans::No { (k, n) } else { (n, k) };
        // Strided storage: two spare columns per row.
        let a_store: Vec<T> = (0..ar * (ac + 2)).map(|_| r()).collect();
        let b_store: Vec<T> = (0..br * (bc + 2)).map(|_| r()).collect();
        let a = relgrad::MatRef::from_slice_with_stride(&a_store, ar, ac, ac + 2);
        let b = relgrad::MatRef::from_slice_with_stride(&b_store, br, bc, bc + 2);
        let get = |v: &relgrad::MatRef<'_, T>, t: Trans, i: usize, j: usize| {
            if t == Trans::No {
                v.get(i, j)
            } else {
                v.get(j, i)
            }
        };
        for (alpha, beta) in [(1.0, 0.0), (0.5, 1.0), (-2.0, 0.25)] {
            let c0: Vec<T> = (0..m * (n + 1))
                .map(|_| if beta == 0.0 { T::nan() } else { r() })
                .collect();
            let mut c = c0.clone();
            backend.gemm(
                T::from_f64c(alpha),
                a,
                ta,
                b,
                tb,
                T::from_f64c(beta),
                relgrad::MatMut::from_slice_with_stride(&mut c, m, n, n + 1),
            );
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k)
                        .map(|p| get(&a, ta, i, p).to_f64c() * get(&b, tb, p, j).to_f64c())
                        .sum();
                    let old = if beta == 0.0 {
                        0.0
                    } else {
                        beta * c0[i * (n + 1) + j].to_f64c()
                    };
                    let want = alpha * dot + old;
                    let got = c[i * (n + 1) + j].to_f64c();
                    let tol = if T::NAME == "f32" { 1e-4 } else { 1e-12 }
                        * (1.0 + k as f64)
                        * (1.0 + want.abs());
                    prop_assert!(
                        (got - want).abs() <= tol,
                        "{ta:?}/{tb:?} alpha {alpha} beta {beta} at ({i},{j}): {got} vs {want}"
                    );
                }
                // The padding column is never written.
                prop_assert!(
                    c[i * (n + 1) + n].to_f64c().to_bits()
                        == c0[i * (n + 1) + n].to_f64c().to_bits()
                        || beta == 0.0 && c[i * (n + 1) + n].is_nan()
                );
            }
        }
    }
    Ok(())
}

/// Trains a small model for `steps` Adam steps of the relative gradient from a fixed
/// seed and returns its parameters, flattened (for cross-backend agreement).
pub fn adam_steps<T: Scalar, B: Backend<T>>(backend: &B, steps: usize) -> Vec<f64> {
    let case = Case {
        d: 12,
        b: 30,
        l: 3,
        activation: relgrad::Activation::default(),
        base: relgrad::BaseDensity::Normal,
        bias: true,
        seed: 2024,
    };
    let (model64, x64) = model_and_data(&case);
    let mut model: InvertibleMlp<T> = model64.cast();
    let x: Mat<T> = x64.cast();
    let mut ws = Workspace::<T, B>::new(&model, case.b);
    let mut opt = OptimizerState::new(Optimizer::adam(1e-2), &model);
    for _ in 0..steps {
        relative_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
        opt.step(&mut model, &ws.grad);
    }
    flat_params(&model).iter().map(|v| v.to_f64c()).collect()
}

/// The fused step against the unfused one: from the same start, 20 fused steps and 20
/// unfused ones (the relative gradient into the workspace, then the optimizer) leave the
/// same parameters and optimizer state, to 1e-12 (relative) in f64, for plain SGD, SGD
/// with momentum and Adam.
pub fn fused_matches_unfused<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model0, x) = model_and_data(case);
    let optimizers = [
        Optimizer::sgd(1e-3),
        Optimizer::Sgd {
            lr: 1e-3,
            momentum: 0.9,
        },
        Optimizer::adam(1e-3),
    ];
    for opt in optimizers {
        let run = |path: StepPath| {
            let mut model = model0.clone();
            let mut ws = Workspace::<f64, B>::new(&model, case.b);
            // Splines follow the same rule here: Adam's default for them would turn
            // rounding-sized gradients into full steps and hide what is compared.
            let mut state = OptimizerState::with_spline_optimizer(opt, opt, &model);
            // Random spline problems are sensitive: a rounding-sized difference between
            // the two paths' sums grows about twofold per step on some (measured: 2e-16
            // after one step, 6e-15 after twenty), so they take three steps.
            let steps = if model.splines().is_empty() { 20 } else { 3 };
            for _ in 0..steps {
                let kind = GradientKind::Relative;
                let finite = train_step(
                    kind,
                    path,
                    &mut model,
                    backend,
                    x.as_ref(),
                    &mut ws,
                    &mut state,
                )
                .unwrap();
                assert!(finite, "a finite problem gave a non-finite direction");
            }
            let (m, v) = state.buffers();
            let moments: Vec<f64> = m.iter().chain(v).flatten().copied().collect();
            (flat_params(&model), moments)
        };
        let (fused, fused_state) = run(StepPath::Fused);
        let (plain, plain_state) = run(StepPath::Unfused);
        // A spline parameter's gradient sums terms over the batch that cancel (the slope
        // and value terms of a bin), so the two paths' rounding of the backward signal
        // shows more in it: 3e-12 measured on D = 11, B = 27, L = 4.
        let tol = if model0.splines().is_empty() {
            1e-12
        } else {
            1e-10
        };
        let e = rel_err(&fused, &plain, 1e-12);
        prop_assert!(e < tol, "{opt:?}: parameters differ by {e:e}");
        let e = rel_err(&fused_state, &plain_state, 1e-12);
        prop_assert!(e < tol, "{opt:?}: optimizer states differ by {e:e}");
    }
    Ok(())
}

/// Oracle 1 for the fused step: one plain SGD step with learning rate 1 moves every
/// parameter by its relative gradient, `A A^T` times the naive Euclidean gradient.
pub fn fused_direction_matches_oracle<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    let mut ws = Workspace::<f64, B>::new(&model, case.b);
    naive_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    let euclid = ws.grad.clone();
    let mut moved = model.clone();
    let mut state = OptimizerState::new(Optimizer::sgd(1.0), &moved);
    let (kind, path) = (GradientKind::Relative, StepPath::Fused);
    let finite = train_step(
        kind,
        path,
        &mut moved,
        backend,
        x.as_ref(),
        &mut ws,
        &mut state,
    )
    .unwrap();
    prop_assert!(finite);
    for (l, (before, after)) in model.layers().iter().zip(moved.layers()).enumerate() {
        let (rw, rb) = relative_from_euclidean(
            &before.weight,
            &before.bias,
            &euclid.weights[l],
            &euclid.biases[l],
        );
        let step = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a - b).collect::<Vec<_>>();
        let dw = step(after.weight.as_slice(), before.weight.as_slice());
        // The subtraction loses the digits of |W| above |R_W|: measure against both.
        let floor = before
            .weight
            .as_slice()
            .iter()
            .fold(1e-12f64, |m, v| m.max(v.abs()));
        let ew = rel_err(&dw, rw.as_slice(), floor);
        prop_assert!(
            ew < 1e-9,
            "layer {l}: the fused step's R_W is off by {ew:e}"
        );
        if case.bias {
            let floor = before.bias.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
            let eb = rel_err(&step(&after.bias, &before.bias), &rb, floor);
            prop_assert!(
                eb < 1e-9,
                "layer {l}: the fused step's R_b is off by {eb:e}"
            );
        }
    }
    Ok(())
}

/// A batch with a non-finite value gives a non-finite direction, and both step paths
/// say so instead of reporting a finite step.
pub fn steps_report_non_finite_directions<B: Backend<f64>>(backend: &B) {
    let case = Case {
        d: 20,
        b: 3,
        l: 2,
        activation: relgrad::Activation::default(),
        base: relgrad::BaseDensity::Normal,
        bias: true,
        seed: 7,
    };
    let (model0, mut x) = model_and_data(&case);
    for bad in [f64::NAN, f64::INFINITY] {
        x.set(1, 4, bad);
        for path in [StepPath::Fused, StepPath::Unfused] {
            let mut model = model0.clone();
            let mut ws = Workspace::<f64, B>::new(&model, case.b);
            let mut state = OptimizerState::new(Optimizer::adam(1e-3), &model);
            let kind = GradientKind::Relative;
            let finite = train_step(
                kind,
                path,
                &mut model,
                backend,
                x.as_ref(),
                &mut ws,
                &mut state,
            )
            .unwrap();
            assert!(!finite, "{path:?} with {bad} in the batch");
            if path == StepPath::Unfused {
                assert_eq!(
                    model, model0,
                    "the unfused step applied a non-finite direction"
                );
            }
        }
    }
}

/// Oracle 2 for the spline parameters: their gradient (the same in the naive and the
/// relative gradient: splines take no relative scaling) equals central finite differences
/// of the independently computed mean log-likelihood, on a random subset of parameters.
pub fn spline_gradient_matches_finite_differences<B: Backend<f64>>(
    backend: &B,
    case: &Case,
) -> Result<(), TestCaseError> {
    let (model, x) = model_and_data(case);
    prop_assume!(!model.splines().is_empty());
    let (_, margin) = reference_objective(&model, &x);
    prop_assume!(margin > 1e-4);
    let mut ws = Workspace::<f64, B>::new(&model, case.b);
    naive_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    let naive = ws.grad.splines.clone();
    relative_gradient(&model, backend, x.as_ref(), &mut ws).unwrap();
    for (a, b) in naive.iter().zip(&ws.grad.splines) {
        let e = rel_err(a.as_slice(), b.as_slice(), 1e-12);
        prop_assert!(
            e < 1e-12,
            "relative and naive spline gradients differ by {e:e}"
        );
    }
    let mut rng = StdRng::seed_from_u64(case.seed ^ 0x5EED);
    let h = 1e-6;
    for _ in 0..16 {
        let l = rng.random_range(0..naive.len());
        let (i, j) = (
            rng.random_range(0..case.d),
            rng.random_range(0..naive[l].cols()),
        );
        let perturbed = |delta: f64| {
            let mut m = model.clone();
            let p = &mut m.splines_mut()[l];
            p.set(i, j, p.get(i, j) + delta);
            reference_objective(&m, &x).0
        };
        let fd = central_difference(perturbed, h);
        let analytic = naive[l].get(i, j);
        let err = (fd - analytic).abs() / analytic.abs().max(1.0);
        prop_assert!(
            err < 1e-6,
            "hidden layer {l} spline parameter ({i},{j}): analytic {analytic}, finite differences {fd}"
        );
    }
    Ok(())
}

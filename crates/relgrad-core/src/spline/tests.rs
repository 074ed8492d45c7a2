//! The splines' oracles: identity, round trips over the whole line, monotonicity,
//! slopes and parameter gradients against finite differences, f32 against f64.

use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_params(dim: usize, bins: usize, seed: u64, spread: f64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..dim * params_per_unit(bins))
        .map(|_| spread * (rng.random::<f64>() * 2.0 - 1.0))
        .collect()
}

/// Points over the whole line: inside, at and next to every knot, in both tails.
fn points(knots: &Knots<f64>, j: usize) -> Vec<f64> {
    let k1 = knots.bins + 1;
    let mut v: Vec<f64> = (-3000..=3000).map(|i| i as f64 / 500.0).collect();
    for &x in &knots.x[j * k1..(j + 1) * k1] {
        v.extend([x, x - 1e-9, x + 1e-9, x.next_up(), x.next_down()]);
    }
    v.extend([-1e6, -50.0, 50.0, 1e6]);
    v
}

#[test]
fn identity_parameters_give_the_identity() {
    let knots = Knots::<f64>::new(3, 8, 2.5);
    for j in 0..3 {
        for x in points(&knots, j) {
            let (y, s, k) = knots.eval(j, x);
            assert!((y - x).abs() <= 1e-14 * (1.0 + x.abs()), "{x} -> {y}");
            assert!((s - 1.0).abs() < 1e-12 && k.abs() < 1e-9, "{x}: {s} {k}");
        }
    }
}

#[test]
fn round_trip_over_the_whole_line() {
    for (bins, bound, spread, seed) in [(8, 3.0, 2.0, 1), (3, 1.0, 4.0, 2), (32, 5.0, 3.0, 3)] {
        let mut knots = Knots::<f64>::new(4, bins, bound);
        knots.update(&random_params(4, bins, seed, spread));
        for j in 0..4 {
            for x in points(&knots, j) {
                let (y, s, _) = knots.eval(j, x);
                assert!(s > 0.0 && s.is_finite());
                let back = knots.inverse(j, y);
                assert!(
                    (back - x).abs() <= 1e-10 * (1.0 + x.abs()),
                    "bins {bins}, unit {j}: x = {x}, y = {y}, back = {back}"
                );
            }
            // Strictly increasing on a sorted grid.
            let grid: Vec<f64> = (-2000..=2000)
                .map(|i| i as f64 * bound * 1.2 / 2000.0)
                .collect();
            let ys: Vec<f64> = grid.iter().map(|&x| knots.eval(j, x).0).collect();
            assert!(ys.windows(2).all(|w| w[1] > w[0]));
        }
    }
}

#[test]
fn slope_and_kappa_match_finite_differences() {
    let mut knots = Knots::<f64>::new(3, 10, 3.0);
    knots.update(&random_params(3, 10, 7, 2.0));
    let e = 1e-6;
    let k1 = 11;
    for j in 0..3 {
        let xs = knots.x[j * k1..(j + 1) * k1].to_vec();
        for i in -400..=400 {
            let x = i as f64 / 100.0;
            // Central differences straddling a knot measure neither side.
            if xs.iter().any(|&k| (x - k).abs() < 2.0 * e) {
                continue;
            }
            let (_, s, kappa) = knots.eval(j, x);
            let fd = (knots.eval(j, x + e).0 - knots.eval(j, x - e).0) / (2.0 * e);
            assert!((fd - s).abs() < 1e-6 * (1.0 + s), "s'({x}): {s} vs {fd}");
            let ld = |v: f64| knots.eval(j, v).1.ln();
            let fdk = (ld(x + e) - ld(x - e)) / (2.0 * e);
            assert!(
                (fdk - kappa).abs() < 1e-5 * (1.0 + kappa.abs()),
                "kappa({x}): {kappa} vs {fdk}"
            );
        }
    }
}

/// The parameters' gradient of `sum gh s(a) + gl ln s'(a)` against central differences.
#[test]
fn parameter_gradient_matches_finite_differences() {
    let (dim, bins, bound) = (3, 6, 2.0);
    let mut rng = StdRng::seed_from_u64(11);
    let params = random_params(dim, bins, 5, 1.5);
    let n = 40;
    let a: Vec<f64> = (0..n * dim)
        .map(|_| rng.random::<f64>() * 5.0 - 2.5)
        .collect();
    let gh: Vec<f64> = (0..n * dim).map(|_| rng.random::<f64>() - 0.5).collect();
    let gl = 0.7;
    let objective = |p: &[f64]| {
        let mut k = Knots::<f64>::new(dim, bins, bound);
        k.update(p);
        let mut total = 0.0;
        for (i, (&av, &g)) in a.iter().zip(&gh).enumerate() {
            let (y, s, _) = k.eval(i % dim, av);
            total += g * y + gl * s.ln();
        }
        total
    };
    let mut knots = Knots::<f64>::new(dim, bins, bound);
    knots.update(&params);
    let mut grad = vec![0.0; params.len()];
    knots.backward(&a, &gh, gl, &mut grad);
    let e = 1e-6;
    for i in 0..params.len() {
        let (mut up, mut down) = (params.clone(), params.clone());
        up[i] += e;
        down[i] -= e;
        let fd = (objective(&up) - objective(&down)) / (2.0 * e);
        assert!(
            (fd - grad[i]).abs() < 1e-6 * (1.0 + fd.abs()),
            "parameter {i}: {} vs {fd}",
            grad[i]
        );
    }
}

#[test]
fn f32_agrees_with_f64() {
    let params = random_params(2, 8, 3, 2.0);
    let mut k64 = Knots::<f64>::new(2, 8, 3.0);
    k64.update(&params);
    let mut k32 = Knots::<f32>::new(2, 8, 3.0);
    k32.update(&params.iter().map(|&v| v as f32).collect::<Vec<_>>());
    for i in -500..=500 {
        let x = i as f64 / 100.0;
        for j in 0..2 {
            let (y, s, _) = k64.eval(j, x);
            let (y32, s32, _) = k32.eval(j, x as f32);
            assert!((y32 as f64 - y).abs() < 1e-5 * (1.0 + y.abs()));
            assert!((s32 as f64 - s).abs() < 1e-4 * s);
            let back = k32.inverse(j, y32);
            assert!((back as f64 - x).abs() < 1e-4 * (1.0 + x.abs()));
        }
    }
}

#[test]
fn shapes_are_validated() {
    assert!(validate(8, 3.0).is_ok());
    assert!(validate(1, 3.0).is_err());
    assert!(validate(MAX_BINS + 1, 3.0).is_err());
    assert!(validate(8, 0.0).is_err());
    assert!(validate(8, f64::NAN).is_err());
}

/// The batch kernels ([`batch`]) against the scalar path, element by element: equal
/// values (the arithmetic is the same, operation for operation), at widths that are and
/// are not multiples of the lanes, at and next to every knot, at `+-T`, in the tails and
/// at non-finite inputs.
fn batch_equals_scalar<T: Scalar>() {
    for (dim, bins, bound, seed) in [(13, 5, 2.0, 4), (16, 16, 4.0, 5), (3, 2, 0.5, 6)] {
        let raw: Vec<T> = random_params(dim, bins, seed, 2.0)
            .into_iter()
            .map(T::from_f64c)
            .collect();
        let mut knots = Knots::<T>::new(dim, bins, bound);
        knots.update(&raw);
        // Rows: unit j takes the r-th value of a list over the whole line (its own knots
        // and their neighbours included).
        let k1 = bins + 1;
        let mut values: Vec<Vec<T>> = (0..dim)
            .map(|j| {
                let mut v: Vec<T> = (-60..=60).map(|i| T::from_f64c(i as f64 / 10.0)).collect();
                for &x in &knots.x[j * k1..(j + 1) * k1] {
                    let ulp = T::epsilon() * (T::one() + x.abs());
                    v.extend([x, x + ulp, x - ulp]);
                }
                let b = T::from_f64c(bound);
                v.extend([b, -b, T::infinity(), T::neg_infinity(), T::nan()]);
                v
            })
            .collect();
        let n = values.iter().map(Vec::len).max().expect("units");
        for v in &mut values {
            v.resize(n, T::from_f64c(0.25));
        }
        let a: Vec<T> = (0..n * dim).map(|e| values[e % dim][e / dim]).collect();
        let (mut h, mut ds, mut kappa) = (vec![T::zero(); a.len()], a.clone(), a.clone());
        knots.forward_train(&a, &mut h, &mut ds, &mut kappa);
        for (e, &av) in a.iter().enumerate() {
            let (v, s, k) = knots.eval(e % dim, av);
            let same = |x: T, y: T| x == y || (x.is_nan() && y.is_nan());
            assert!(
                same(h[e], v) && same(ds[e], s) && same(kappa[e], k),
                "unit {} at {av}: batch ({}, {}, {}) against scalar ({v}, {s}, {k})",
                e % dim,
                h[e],
                ds[e],
                kappa[e]
            );
        }
        // The gradient: accumulated element by element through the scalar bin, in the
        // same order, then chained.
        let gh: Vec<T> = (0..a.len())
            .map(|e| T::from_f64c(((e * 7919) % 101) as f64 / 50.0 - 1.0))
            .collect();
        let gl = T::from_f64c(1.0 / n as f64);
        let mut out = vec![T::zero(); dim * params_per_unit(bins)];
        knots.backward(&a, &gh, gl, &mut out);
        knots.acc.fill(T::zero());
        for (e, &av) in a.iter().enumerate() {
            let j = e % dim;
            if let Some((b, bin)) = knots.bin_of(j, av, false) {
                for (q, g) in bin.backward(av, gh[e], gl).into_iter().enumerate() {
                    knots.acc[(j * bins + b) * 6 + q] += g;
                }
            }
        }
        let mut reference = vec![T::zero(); out.len()];
        knots.chain(&mut reference);
        assert_eq!(out, reference, "dim {dim}, {bins} bins");
        // Stored transposed, as the fused step keeps it.
        let gh_t: Vec<T> = (0..a.len()).map(|e| gh[(e % n) * dim + e / n]).collect();
        knots.backward_transposed(&a, &gh_t, gl, &mut out);
        assert_eq!(out, reference, "dim {dim}, {bins} bins, transposed");
    }
}

#[test]
fn batch_kernels_equal_the_scalar_path() {
    batch_equals_scalar::<f64>();
    batch_equals_scalar::<f32>();
}

//! Every instruction-set level of the elementwise kernels (baseline, AVX2 with FMA and
//! AVX-512, as far as this CPU has them) gives the same gradients, log-densities and
//! fused training steps, to round-off, and each level passes the spec's exactness oracle. A test binary of its own, because the level
//! is a process-wide setting.

mod common;

use common::{model_and_data, rel_err, relative_from_euclidean, Case, ACTIVATIONS, BASES};
use relgrad::simd::detected_simd_level;
use relgrad::{
    cap_simd_level, naive_gradient, relative_gradient, train_step, Backend, Faer, Gradient,
    GradientKind, InvertibleMlp, Mat, Optimizer, OptimizerState, Scalar, SimdLevel, StepPath,
    Workspace,
};

/// The relative and the naive direction.
fn directions<T: Scalar>(model: &InvertibleMlp<T>, x: &Mat<T>) -> (Gradient<T>, Gradient<T>)
where
    Faer: Backend<T>,
{
    let backend = Faer::default();
    let mut ws = Workspace::new(model, x.rows());
    relative_gradient(model, &backend, x.as_ref(), &mut ws).unwrap();
    let relative = ws.grad.clone();
    naive_gradient(model, &backend, x.as_ref(), &mut ws).unwrap();
    (relative, ws.grad.clone())
}

/// A direction as one flat vector: weights, then biases.
fn flat<T: Scalar>(g: &Gradient<T>) -> Vec<T> {
    let weights = g.weights.iter().flat_map(|w| w.as_slice().iter().copied());
    weights.chain(g.biases.iter().flatten().copied()).collect()
}

#[test]
fn every_simd_level_gives_the_same_gradients_and_log_densities() {
    let levels: Vec<SimdLevel> = [SimdLevel::Baseline, SimdLevel::Avx2Fma, SimdLevel::Avx512]
        .into_iter()
        .filter(|&l| l <= detected_simd_level())
        .collect();
    let mut seed = 0;
    // Row lengths that fill whole vectors, leave remainders, or are shorter than one; batches
    // below and above D (the two product orders and bias formulas).
    for (d, b) in [(1, 5), (7, 13), (16, 100), (17, 3), (40, 100), (40, 24)] {
        for activation in ACTIVATIONS {
            for base in BASES {
                for bias in [true, false] {
                    seed += 1;
                    let case = Case {
                        d,
                        b,
                        l: 3,
                        activation,
                        base,
                        bias,
                        seed,
                    };
                    let (model, x) = model_and_data(&case);
                    let (model32, x32) = (model.cast::<f32>(), x.cast::<f32>());
                    // The first level's relative and naive directions, and relative in f32.
                    let mut first: Option<[Vec<f64>; 3]> = None;
                    let mut first_lp: Option<(Vec<f64>, Vec<f32>)> = None;
                    for &level in &levels {
                        assert_eq!(cap_simd_level(level), level);
                        let (rel, naive) = directions(&model, &x);
                        // Evaluation (sigma and ln sigma' in the vectorised kernel).
                        let be = Faer::default();
                        let lp = model.log_prob(&be, x.as_ref()).unwrap();
                        let lp32 = model32.log_prob(&be, x32.as_ref()).unwrap();
                        match &first_lp {
                            None => first_lp = Some((lp, lp32)),
                            Some((l0, l32)) => {
                                let e = rel_err(&lp, l0, 1e-12);
                                assert!(e < 1e-12, "{level:?} {case:?}: log_prob off by {e:e}");
                                let a: Vec<f64> = lp32.iter().map(|v| v.to_f64c()).collect();
                                let b: Vec<f64> = l32.iter().map(|v| v.to_f64c()).collect();
                                let e = rel_err(&a, &b, 1e-3);
                                assert!(e < 1e-5, "{level:?} {case:?}: f32 log_prob off by {e:e}");
                            }
                        }
                        // Spec oracle 1 at this level, layer by layer.
                        for (l, layer) in model.layers().iter().enumerate() {
                            let (rw, rb) = relative_from_euclidean(
                                &layer.weight,
                                &layer.bias,
                                &naive.weights[l],
                                &naive.biases[l],
                            );
                            let e = rel_err(rel.weights[l].as_slice(), rw.as_slice(), 1e-12)
                                .max(rel_err(&rel.biases[l], &rb, 1e-12));
                            assert!(e < 1e-9, "{level:?} {case:?}: oracle off by {e:e}");
                        }
                        let (relative, naive) = (flat(&rel), flat(&naive));
                        let relative32 = flat(&directions(&model32, &x32).0);
                        let relative32: Vec<f64> = relative32.iter().map(|v| v.to_f64c()).collect();
                        match &first {
                            None => first = Some([relative, naive, relative32]),
                            Some([r0, n0, r32]) => {
                                let e = rel_err(&relative, r0, 1e-12);
                                assert!(e < 1e-12, "{level:?} {case:?}: relative off by {e:e}");
                                let e = rel_err(&naive, n0, 1e-12);
                                assert!(e < 1e-12, "{level:?} {case:?}: naive off by {e:e}");
                                let e = rel_err(&relative32, r32, 1e-6);
                                assert!(e < 1e-4, "{level:?} {case:?}: f32 off by {e:e}");
                            }
                        }
                    }
                }
            }
        }
    }
    // The fused training step's own kernels at every level: equal to the unfused step
    // (the gradient, then the optimizer) at that level, in f64 and f32.
    for &level in &levels {
        assert_eq!(cap_simd_level(level), level);
        // 117 and 181 columns: every kind of chunk of the wide AVX-512 kernels (four, two
        // and one of 16 lanes, and a tail); 5 and 7 rows: partly filled groups of four.
        let shapes = [
            (7, 2, true),
            (17, 3, false),
            (40, 5, true),
            (64, 1, true),
            (117, 5, true),
            (181, 7, false),
        ];
        for (d, b, bias) in shapes {
            let case = Case {
                d,
                b,
                l: 3,
                activation: ACTIVATIONS[(d + b) % 3],
                base: BASES[d % 3],
                bias,
                seed: 1000 + d as u64,
            };
            let (model, x) = model_and_data(&case);
            let e = fused_against_unfused(&model, &x);
            assert!(e < 1e-12, "{level:?} {case:?}: fused step off by {e:e}");
            let e = fused_against_unfused(&model.cast::<f32>(), &x.cast::<f32>());
            assert!(e < 1e-5, "{level:?} {case:?}: f32 fused step off by {e:e}");
        }
    }
    cap_simd_level(SimdLevel::Avx512);
}

/// The relative difference of the parameters after five Adam steps taken fused and
/// taken unfused.
fn fused_against_unfused<T: Scalar>(model: &InvertibleMlp<T>, x: &Mat<T>) -> f64
where
    Faer: Backend<T>,
{
    let run = |path: StepPath| {
        let backend = Faer::default();
        let mut model = model.clone();
        let mut ws = Workspace::new(&model, x.rows());
        let mut state = OptimizerState::new(Optimizer::adam(1e-3), &model);
        for _ in 0..5 {
            let kind = GradientKind::Relative;
            let x = x.as_ref();
            assert!(train_step(kind, path, &mut model, &backend, x, &mut ws, &mut state).unwrap());
        }
        let params = model.layers().iter().flat_map(|l| {
            let w = l.weight.as_slice().iter().copied();
            w.chain(l.bias.iter().copied()).collect::<Vec<_>>()
        });
        params.collect::<Vec<T>>()
    };
    rel_err(&run(StepPath::Fused), &run(StepPath::Unfused), 1e-12)
}

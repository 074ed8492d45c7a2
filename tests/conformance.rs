//! Backend conformance: the spec's oracles, run unchanged on every enabled backend.
//! A new backend is added with one `backend_suite!` line at the bottom.

mod backend_suite;
mod common;

macro_rules! backend_suite {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::backend_suite as suite;
            use super::common::*;
            use proptest::prelude::*;

            fn backend() -> impl relgrad::Backend<f32> + relgrad::Backend<f64> {
                $backend
            }

            /// From the same seed, 20 Adam steps of relative-gradient training give the
            /// same parameters as on faer: within 1e-9 (relative) in f64 and to
            /// single-precision tolerance in f32.
            #[test]
            fn twenty_adam_steps_agree_with_faer() {
                let reference = relgrad::Faer::new(relgrad::Threads::Fixed(1));
                let want64 = suite::adam_steps::<f64, _>(&reference, 20);
                let got64 = suite::adam_steps::<f64, _>(&backend(), 20);
                let e64 = rel_err(&got64, &want64, 1e-12);
                assert!(e64 < 1e-9, "f64 parameters differ from faer's by {e64:e}");
                let want32 = suite::adam_steps::<f32, _>(&reference, 20);
                let got32 = suite::adam_steps::<f32, _>(&backend(), 20);
                let e32 = rel_err(&got32, &want32, 1e-6);
                assert!(e32 < 1e-4, "f32 parameters differ from faer's by {e32:e}");
                // And single precision tracks double precision.
                let e = rel_err(&got32, &got64, 1e-6);
                assert!(e < 1e-3, "f32 and f64 training differ by {e:e}");
            }

            /// Products and LU against plain loops and known matrices: every transpose,
            /// `alpha`/`beta`, strides, edge cases, singular matrices, residuals, reuse.
            #[test]
            fn kernels_match_loops_and_known_matrices() {
                let be = backend();
                suite::kernels::check_gemm::<f32, _>(&be);
                suite::kernels::check_gemm::<f64, _>(&be);
                suite::kernels::check_gemm_edge::<f32, _>(&be);
                suite::kernels::check_gemm_edge::<f64, _>(&be);
                suite::kernels::check_logdet_known::<f32, _>(&be);
                suite::kernels::check_logdet_known::<f64, _>(&be);
                suite::kernels::check_singular::<f32, _>(&be);
                suite::kernels::check_singular::<f64, _>(&be);
                suite::kernels::check_solve_inverse::<f32, _>(&be);
                suite::kernels::check_solve_inverse::<f64, _>(&be);
                suite::kernels::workspace_is_reusable(&be);
            }

            #[test]
            #[should_panic(expected = "shapes do not match")]
            fn gemm_rejects_mismatched_shapes() {
                suite::kernels::gemm_rejects_mismatched_shapes(&backend());
            }

            #[test]
            fn steps_report_non_finite_directions() {
                suite::steps_report_non_finite_directions(&backend());
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(96))]

                #[test]
                fn fused_step_equals_unfused_step(case in cases()) {
                    suite::fused_matches_unfused(&backend(), &case)?;
                }

                #[test]
                fn fused_step_moves_by_the_relative_gradient(case in cases()) {
                    suite::fused_direction_matches_oracle(&backend(), &case)?;
                }

                #[test]
                fn relative_gradient_equals_preconditioned_naive(case in cases()) {
                    suite::relative_matches_oracle(&backend(), &case)?;
                }

                #[test]
                fn naive_gradient_equals_finite_differences(case in cases()) {
                    suite::naive_matches_finite_differences(&backend(), &case)?;
                }

                #[test]
                fn spline_gradient_equals_finite_differences(case in spline_cases()) {
                    suite::spline_gradient_matches_finite_differences(&backend(), &case)?;
                }

                #[test]
                fn base_gradient_equals_finite_differences(case in mixture_cases()) {
                    suite::base_gradient_matches_finite_differences(&backend(), &case)?;
                }

                #[test]
                fn log_det_of_known_matrices(d in 1usize..=40, seed in any::<u64>()) {
                    suite::log_det_known(&backend(), d, seed)?;
                }

                #[test]
                fn inverse_and_forward_round_trip(case in cases()) {
                    suite::round_trips(&backend(), &case)?;
                }

                #[test]
                fn log_prob_equals_reference(case in cases()) {
                    suite::log_prob_matches_reference(&backend(), &case)?;
                }

                #[test]
                fn f32_agrees_with_f64(case in cases()) {
                    suite::f32_matches_f64(&backend(), &case)?;
                }

                #[test]
                fn gemm_f64_matches_loops(m in 1usize..20, n in 1usize..20, k in 0usize..20, seed in any::<u64>()) {
                    suite::gemm_matches_loops::<f64, _>(&backend(), m, n, k, seed)?;
                }

                #[test]
                fn gemm_f32_matches_loops(m in 1usize..20, n in 1usize..20, k in 0usize..20, seed in any::<u64>()) {
                    suite::gemm_matches_loops::<f32, _>(&backend(), m, n, k, seed)?;
                }
            }
        }
    };
}

backend_suite!(faer_auto, relgrad::Faer::default());
backend_suite!(
    faer_two_threads,
    relgrad::Faer::new(relgrad::Threads::Fixed(2))
);
#[cfg(feature = "nalgebra")]
backend_suite!(nalgebra_auto, relgrad::Nalgebra::default());
#[cfg(feature = "openblas")]
backend_suite!(blas_auto, relgrad::Blas::default());
#[cfg(feature = "openblas")]
backend_suite!(
    blas_two_threads,
    relgrad::Blas::new(relgrad::Threads::Fixed(2))
);

/// OpenBLAS's threaded `getrf` overflows ordinary thread stacks (see `relgrad-blas`): the
/// factorisation must stay sequential, and everything else must fit in a small stack.
#[cfg(feature = "openblas")]
#[test]
fn openblas_threaded_calls_fit_in_a_small_thread_stack() {
    backend_suite::kernels::threaded_calls_fit_in_a_small_thread_stack(relgrad::Blas::new(
        relgrad::Threads::Fixed(2),
    ));
}

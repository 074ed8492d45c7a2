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

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(96))]

                #[test]
                fn relative_gradient_equals_preconditioned_naive(case in cases()) {
                    suite::relative_matches_oracle(&backend(), &case)?;
                }

                #[test]
                fn naive_gradient_equals_finite_differences(case in cases()) {
                    suite::naive_matches_finite_differences(&backend(), &case)?;
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

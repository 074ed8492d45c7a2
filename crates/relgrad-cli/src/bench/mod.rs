//! The timing harness behind `relgrad bench`, generic over the backend and precision.
//!
//! For one configuration (dimension `D`, batch `B`, layers `L`) it measures the items
//! below in rounds, each item once per round, until about six budgets of wall time (and
//! at least `min_reps` rounds) have passed, and reports each item's median:
//! - the `B x D` by `D x D` product (reported as GFLOP/s: `2 B D^2` flops);
//! - one full evaluation of `relative_gradient` and of `naive_gradient` (forward,
//!   backward and update direction for every layer) with a preallocated workspace;
//! - the floor: the `4L - 1` products of one relative-gradient evaluation, each timed
//!   alone on the same backend: `L` forward products `H W`, `L - 1` backward products
//!   `Delta W^T`, and per layer the two products of the direction, `W Y^T` then
//!   `(.) Delta` when `B <= D`, else `Y^T Delta` then `W (.)`. Products of the same shape
//!   are timed once and counted as often as they occur.
//!
//! [`step`] times whole training steps (gradient and optimizer) against their
//! memory-traffic floor; [`scaling`] times one gradient against the dimension, from 16 to
//! 16384 (the paper's scaling figure, `relgrad bench scaling`).

pub mod scaling;
pub mod step;

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use relgrad::init::Architecture;
use relgrad::{
    naive_gradient, relative_gradient, Activation, Backend, BaseDensity, Init, InvertibleMlp, Mat,
    MatMut, Scalar, Trans, Workspace,
};

/// How long to time each item.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Keep repeating until the repetitions took this long in total...
    pub budget: Duration,
    /// ...and ran at least this many times.
    pub min_reps: usize,
}

impl Timing {
    /// The default: about 0.3 s per item, at least 3 repetitions.
    pub fn standard() -> Self {
        Self {
            budget: Duration::from_millis(300),
            min_reps: 3,
        }
    }

    /// `--quick`: about 0.03 s per item, at least 3 repetitions.
    pub fn quick() -> Self {
        Self {
            budget: Duration::from_millis(30),
            min_reps: 3,
        }
    }

    /// Runs `f` once to warm up, then repeatedly; returns the median time in seconds.
    pub fn median(&self, mut f: impl FnMut()) -> f64 {
        f();
        let mut times = Vec::new();
        let start = Instant::now();
        while times.len() < self.min_reps || start.elapsed() < self.budget {
            let t = Instant::now();
            f();
            times.push(t.elapsed().as_secs_f64());
            if times.len() >= 10_000 {
                break;
            }
        }
        median(times)
    }
}

/// Seconds `f` takes, once.
pub(crate) fn clock(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// The median of `values` (NaN if empty).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => 0.5 * (values[n / 2 - 1] + values[n / 2]),
    }
}

/// The median of column `k` of the recorded rounds, leaving out round 0 (the warm-up).
pub(crate) fn column_median<const N: usize>(rounds: &[[f64; N]], k: usize) -> f64 {
    median(rounds[1..].iter().map(|r| r[k]).collect())
}

/// One configuration's measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// GFLOP/s of the `B x D` by `D x D` product.
    pub gemm_gflops: f64,
    /// Milliseconds per relative-gradient evaluation.
    pub relative_ms: f64,
    /// Milliseconds per naive-gradient evaluation.
    pub naive_ms: f64,
    /// Milliseconds of the `4L - 1` products alone.
    pub floor_ms: f64,
    /// The threads the backend gives the `B x D` by `D x D` product.
    pub product_threads: usize,
}

pub(crate) fn random_mat<T: Scalar>(rows: usize, cols: usize, rng: &mut StdRng) -> Mat<T> {
    Mat::from_fn(rows, cols, |_, _| T::from_f64c(StandardNormal.sample(rng)))
}

/// The model every benchmark times: `l` layers of dimension `d`, orthogonal weights from
/// a fixed seed, the activation `activation` (splines at the identity: their cost does
/// not depend on their parameters, only on which bin each value falls in).
pub(crate) fn bench_model<T: Scalar, B: Backend<T>>(
    backend: &B,
    d: usize,
    l: usize,
    activation: Activation,
) -> Result<InvertibleMlp<T>> {
    let arch = Architecture {
        dim: d,
        n_layers: l,
        activation,
        base: BaseDensity::Normal,
        use_bias: true,
    };
    Init::Orthogonal { seed: 7 }
        .build::<T, B>(arch, backend, None)
        .map_err(|e| anyhow!("building a {d}-dimensional model: {e}"))
}

/// Measures one configuration on `backend` in precision `T`.
pub fn measure<T: Scalar, B: Backend<T>>(
    backend: &B,
    d: usize,
    b: usize,
    l: usize,
    activation: Activation,
    timing: Timing,
) -> Result<Measurement> {
    let mut rng = StdRng::seed_from_u64(0xBE4C);
    let model = bench_model::<T, B>(backend, d, l, activation)?;
    let x = random_mat::<T>(b, d, &mut rng);
    let mut ws = Workspace::new(&model, b);

    // Every item of one configuration is timed once per round, round after round, so a
    // burst of load from elsewhere on a shared machine slows all of them alike and the
    // ratios (relative / floor, naive / relative) stay meaningful.
    let w = random_mat::<T>(d, d, &mut rng);
    let h = random_mat::<T>(b, d, &mut rng);
    let delta = random_mat::<T>(b, d, &mut rng);
    let mut out_bd = Mat::<T>::zeros(b, d);
    let mut g = Mat::<T>::zeros(d, d);
    let mut scratch = Mat::<T>::zeros(d, b.max(d));
    let mut ws_naive = Workspace::new(&model, b);
    let (one, zero) = (T::one(), T::zero());
    let mut failure = None;
    let mut rounds: Vec<[f64; 6]> = Vec::new();
    let start = Instant::now();
    // Round 0 warms up every item and is not recorded.
    while rounds.len() <= timing.min_reps || start.elapsed() < 6 * timing.budget {
        let fwd = clock(&mut || {
            backend.gemm(
                one,
                h.as_ref(),
                Trans::No,
                w.as_ref(),
                Trans::No,
                zero,
                out_bd.as_mut(),
            )
        });
        let bwd = clock(&mut || {
            backend.gemm(
                one,
                delta.as_ref(),
                Trans::No,
                w.as_ref(),
                Trans::Yes,
                zero,
                out_bd.as_mut(),
            )
        });
        let (r1, r2) = if b <= d {
            // W Y^T (D x B), then (.) Delta accumulated into the D x D direction.
            let mut wy = MatMut::from_slice(&mut scratch.as_mut_slice()[..d * b], d, b);
            let r1 = clock(&mut || {
                backend.gemm(
                    one,
                    w.as_ref(),
                    Trans::No,
                    h.as_ref(),
                    Trans::Yes,
                    zero,
                    wy.rb_mut(),
                )
            });
            let r2 = clock(&mut || {
                backend.gemm(
                    one,
                    wy.rb(),
                    Trans::No,
                    delta.as_ref(),
                    Trans::No,
                    one,
                    g.as_mut(),
                )
            });
            (r1, r2)
        } else {
            // Y^T Delta (D x D), then W (.) accumulated into the direction.
            let mut yd = MatMut::from_slice(&mut scratch.as_mut_slice()[..d * d], d, d);
            let r1 = clock(&mut || {
                backend.gemm(
                    one,
                    h.as_ref(),
                    Trans::Yes,
                    delta.as_ref(),
                    Trans::No,
                    zero,
                    yd.rb_mut(),
                )
            });
            let r2 = clock(&mut || {
                backend.gemm(
                    one,
                    w.as_ref(),
                    Trans::No,
                    yd.rb(),
                    Trans::No,
                    one,
                    g.as_mut(),
                )
            });
            (r1, r2)
        };
        let rel = clock(&mut || {
            if let Err(e) = relative_gradient(&model, backend, x.as_ref(), &mut ws) {
                failure.get_or_insert(e);
            }
        });
        let naive = clock(&mut || {
            if let Err(e) = naive_gradient(&model, backend, x.as_ref(), &mut ws_naive) {
                failure.get_or_insert(e);
            }
        });
        if let Some(e) = failure.take() {
            return Err(anyhow!("gradient evaluation failed for D = {d}: {e}"));
        }
        rounds.push([fwd, bwd, r1, r2, rel, naive]);
        if rounds.len() > 100_000 {
            break;
        }
    }
    let median = |k: usize| column_median(&rounds, k);
    let (t_fwd, t_bwd, t_r1, t_r2, t_rel, t_naive) = (
        median(0),
        median(1),
        median(2),
        median(3),
        median(4),
        median(5),
    );
    let floor = l as f64 * t_fwd + (l - 1) as f64 * t_bwd + l as f64 * (t_r1 + t_r2);
    Ok(Measurement {
        gemm_gflops: 2.0 * b as f64 * (d * d) as f64 / t_fwd / 1e9,
        relative_ms: t_rel * 1e3,
        naive_ms: t_naive * 1e3,
        floor_ms: floor * 1e3,
        product_threads: backend.product_threads(relgrad::GemmDims { m: b, k: d, n: d }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_a_cheap_function() {
        let mut calls = 0;
        let t = Timing {
            budget: Duration::from_millis(1),
            min_reps: 5,
        }
        .median(|| calls += 1);
        assert!(calls >= 6 && t >= 0.0);
    }

    #[test]
    fn measures_a_small_case() {
        let m = measure::<f64, _>(
            &relgrad::Faer::sequential(),
            8,
            4,
            2,
            Activation::default(),
            Timing {
                budget: Duration::from_millis(1),
                min_reps: 1,
            },
        )
        .unwrap();
        assert!(m.gemm_gflops > 0.0 && m.relative_ms > 0.0 && m.naive_ms > 0.0 && m.floor_ms > 0.0);
    }
}

//! The training-step benchmark behind `relgrad bench --step`: for one configuration
//! (`D`, `B`, `L`, optimizer) the median time of
//! - one relative-gradient evaluation (forward, backward, update direction);
//! - one whole training step: the gradient, then the optimizer's update of every weight,
//!   bias and state buffer (SGD with momentum or Adam);
//! - the same step fused (`relgrad::step`: one pass over each weight and its state that
//!   forms the direction row by row and updates it at once), whatever the batch size, so
//!   that the two can be compared where the trainer chooses between them;
//! - the memory-traffic floor: the bytes a step must read and write at least (the
//!   parameters and the optimizer's state, each read and written once, and the batch read
//!   once), at the bandwidth measured by streaming over buffers of those sizes on one
//!   core and on all cores, whichever is faster (read,
//!   update, write back: `p += c m`, `m *= c'`, ... once per element);
//! - the arithmetic floor: the `(4L - 1) B D^2` multiply-adds of a step (forward,
//!   backward and direction; the optimizer's few per parameter are left out) at the rate
//!   the backend's own product reaches on a large square product (`768^3`), with the
//!   same thread setting. A step is bound by the larger of the two floors;
//! - the threads the backend gives the step's `B x D` by `D x D` products and the fused
//!   pass over one layer's weights (what `Threads::Auto` chose).
//!
//! Unlike [`super::measure`], which interleaves its items in rounds, each item here runs
//! alone for its whole time budget, back to back, as steps follow each other in
//! training: interleaved with the others, a step finds the caches full of their data.

use std::time::Instant;

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad::{
    pass_parts, relative_gradient, train_step, Backend, GemmDims, GradientKind, Mat, Optimizer,
    OptimizerState, Scalar, StepPath, Trans, Workspace,
};

use super::{bench_model, clock, median, random_mat, Timing};

/// One configuration's step measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepMeasurement {
    /// Milliseconds per relative-gradient evaluation.
    pub gradient_ms: f64,
    /// Milliseconds per training step (gradient and optimizer update).
    pub step_ms: f64,
    /// Milliseconds per fused training step.
    pub fused_ms: f64,
    /// Bytes a step must read and write at least.
    pub floor_bytes: f64,
    /// The bandwidth measured on buffers of the parameters' and state's sizes (the better
    /// of one core and all cores), GB/s.
    pub bandwidth_gbs: f64,
    /// Milliseconds to move `floor_bytes` at that bandwidth.
    pub floor_ms: f64,
    /// The backend's multiply-add rate on a `768^3` product, GFLOP/s (two per multiply-add).
    pub peak_gflops: f64,
    /// Milliseconds for the step's `(4L - 1) B D^2` multiply-adds at that rate.
    pub arith_ms: f64,
    /// The threads the backend gives a `B x D` by `D x D` product.
    pub product_threads: usize,
    /// The threads the fused step splits its pass over a layer's weights into (a layer
    /// that also forms the backward signal).
    pub pass_threads: usize,
}

impl StepMeasurement {
    /// The larger of the two floors, milliseconds: no step can be faster.
    pub fn bound_ms(&self) -> f64 {
        self.floor_ms.max(self.arith_ms)
    }
}

/// The side of the square product whose rate stands for the backend's peak.
const PEAK_SIDE: usize = 768;

/// The optimizer's state buffers per parameter: 1 for SGD with momentum, 2 for Adam.
fn state_buffers(opt: Optimizer) -> usize {
    match opt {
        Optimizer::Sgd { momentum, .. } if momentum > 0.0 => 1,
        Optimizer::Sgd { .. } => 0,
        Optimizer::Adam { .. } => 2,
    }
}

/// Reads and writes every element of `bufs` once (`p += c m`, `m *= c'`, ...): the
/// traffic of an optimizer update without its arithmetic.
fn stream<T: Scalar>(bufs: &mut [&mut [T]]) {
    let (c, c2) = (T::from_f64c(1e-30), T::from_f64c(0.5));
    match bufs {
        [p] => p.iter_mut().for_each(|x| *x *= c2),
        [p, m] => {
            for (x, y) in p.iter_mut().zip(m.iter_mut()) {
                *x += c * *y;
                *y *= c2;
            }
        }
        [p, m, v, ..] => {
            for ((x, y), z) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                *x += c * *y + c * *z;
                *y *= c2;
                *z *= c2;
            }
        }
        [] => {}
    }
}

/// [`stream`] with the buffers split into `threads` parts, each on its own thread: the
/// bandwidth all the cores together get (the fused step's pass runs on several).
fn stream_parallel<T: Scalar>(bufs: &mut [Vec<T>], threads: usize) {
    let len = bufs.first().map_or(0, Vec::len);
    let each = len.div_ceil(threads.max(1)).max(1);
    let mut parts: Vec<Vec<&mut [T]>> = (0..len.div_ceil(each)).map(|_| Vec::new()).collect();
    for b in bufs.iter_mut() {
        for (part, chunk) in parts.iter_mut().zip(b.chunks_mut(each)) {
            part.push(chunk);
        }
    }
    std::thread::scope(|s| {
        let mut parts = parts.into_iter();
        let mine = parts.next();
        for mut part in parts {
            s.spawn(move || stream(&mut part));
        }
        if let Some(mut part) = mine {
            stream(&mut part);
        }
    });
}

/// The median time of one call of `f`, run back to back as steps run in training: one
/// untimed call (it finds the caches as the previous item left them), then timed calls
/// until `timing`'s budget and repetitions are spent.
fn clock_run(timing: Timing, f: &mut dyn FnMut()) -> f64 {
    f();
    let mut times = vec![0.0];
    let start = Instant::now();
    while times.len() <= timing.min_reps || start.elapsed() < timing.budget {
        times.push(clock(f));
        if times.len() > 100_000 {
            break;
        }
    }
    median(times[1..].to_vec())
}

/// Measures one step configuration on `backend` in precision `T`. The optimizer's
/// learning rate is irrelevant to the time; a tiny one keeps the parameters in place.
/// Each item runs alone, for the whole of its time budget, as a training loop would.
pub fn measure_step<T: Scalar, B: Backend<T>>(
    backend: &B,
    (d, b, l): (usize, usize, usize),
    activation: relgrad::Activation,
    optimizer: Optimizer,
    timing: Timing,
) -> Result<StepMeasurement> {
    let mut rng = StdRng::seed_from_u64(0x57E9);
    let mut model = bench_model::<T, B>(backend, d, l, activation)?;
    let x = random_mat::<T>(b, d, &mut rng);
    let mut ws = Workspace::new(&model, b);
    let optimizer = match optimizer {
        Optimizer::Sgd { momentum, .. } => Optimizer::Sgd {
            lr: 1e-30,
            momentum,
        },
        Optimizer::Adam {
            beta1, beta2, eps, ..
        } => Optimizer::Adam {
            lr: 1e-30,
            beta1,
            beta2,
            eps,
        },
    };
    // The splines, too, move by the tiny rate: timed steps must leave the model where it
    // is (splines trained for thousands of steps on one random batch reach extreme
    // parameters, whose subnormal exponentials slowed the step fourfold).
    let mut state = OptimizerState::with_spline_optimizer(optimizer, optimizer, &model);
    let params = model.n_parameters();
    let k = state_buffers(optimizer);
    let mut bufs: Vec<Vec<T>> = (0..=k).map(|_| vec![T::one(); params]).collect();
    let size = std::mem::size_of::<T>() as f64;
    let state_bytes = 2.0 * (1 + k) as f64 * params as f64 * size;
    let floor_bytes = state_bytes + (b * d) as f64 * size;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut failure = None;
    let grad = clock_run(timing, &mut || {
        if let Err(e) = relative_gradient(&model, backend, x.as_ref(), &mut ws) {
            failure.get_or_insert(e);
        }
    });
    let step = clock_run(timing, &mut || {
        match relative_gradient(&model, backend, x.as_ref(), &mut ws) {
            Ok(()) => state.step(&mut model, &ws.grad),
            Err(e) => {
                failure.get_or_insert(e);
            }
        };
    });
    let fused = clock_run(timing, &mut || {
        let (kind, path) = (GradientKind::Relative, StepPath::Fused);
        let x = x.as_ref();
        if let Err(e) = train_step(kind, path, &mut model, backend, x, &mut ws, &mut state) {
            failure.get_or_insert(e);
        }
    });
    if let Some(e) = failure.take() {
        return Err(anyhow!("gradient evaluation failed for D = {d}: {e}"));
    }
    let one_core = clock_run(timing, &mut || {
        let mut all: Vec<&mut [T]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        stream(&mut all)
    });
    let all_cores = clock_run(timing, &mut || stream_parallel(&mut bufs, cores));
    // The floor is at the better of one core's and all cores' bandwidth.
    let bandwidth = state_bytes / one_core.min(all_cores);
    let peak = peak_rate(backend, &mut rng, timing);
    let madds = ((4 * l - 1) * b * d * d) as f64;
    let dims = GemmDims { m: b, k: d, n: d };
    Ok(StepMeasurement {
        gradient_ms: grad * 1e3,
        step_ms: step * 1e3,
        fused_ms: fused * 1e3,
        floor_bytes,
        bandwidth_gbs: bandwidth / 1e9,
        floor_ms: floor_bytes / bandwidth * 1e3,
        peak_gflops: 2.0 * peak / 1e9,
        arith_ms: madds / peak * 1e3,
        product_threads: backend.product_threads(dims),
        pass_threads: pass_parts(backend, b, d, l > 1),
    })
}

/// Multiply-adds per second of `backend`'s product of two `PEAK_SIDE`-square matrices:
/// the fastest of back-to-back runs, since a peak is what the backend reaches at best (a
/// burst of load elsewhere only ever slows a run down).
fn peak_rate<T: Scalar, B: Backend<T>>(backend: &B, rng: &mut StdRng, timing: Timing) -> f64 {
    let a = random_mat::<T>(PEAK_SIDE, PEAK_SIDE, rng);
    let bm = random_mat::<T>(PEAK_SIDE, PEAK_SIDE, rng);
    let mut c = Mat::<T>::zeros(PEAK_SIDE, PEAK_SIDE);
    let (one, zero) = (T::one(), T::zero());
    let mut product = || {
        let (a, bm) = (a.as_ref(), bm.as_ref());
        backend.gemm(one, a, Trans::No, bm, Trans::No, zero, c.as_mut())
    };
    product();
    let (start, mut best, mut reps) = (Instant::now(), f64::INFINITY, 0);
    while reps < timing.min_reps || start.elapsed() < timing.budget {
        best = best.min(clock(&mut product));
        reps += 1;
    }
    (PEAK_SIDE * PEAK_SIDE * PEAK_SIDE) as f64 / best
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn measures_a_small_step() {
        for opt in [Optimizer::sgd(1e-3), Optimizer::adam(1e-3)] {
            let m = measure_step::<f32, _>(
                &relgrad::Faer::sequential(),
                (8, 4, 2),
                relgrad::Activation::default(),
                opt,
                Timing {
                    budget: Duration::from_millis(1),
                    min_reps: 1,
                },
            )
            .unwrap();
            assert!(m.step_ms > 0.0 && m.gradient_ms > 0.0 && m.floor_ms > 0.0);
            assert!(m.fused_ms > 0.0 && m.peak_gflops > 0.0);
            // Seven products of 4 x 8 by 8 x 8 at the measured rate.
            let seven = 7.0 * 4.0 * 64.0 * 2.0 / (m.peak_gflops * 1e9) * 1e3;
            assert!((m.arith_ms - seven).abs() <= 1e-9 * seven);
            assert_eq!(m.bound_ms(), m.floor_ms.max(m.arith_ms));
            assert_eq!((m.product_threads, m.pass_threads), (1, 1));
            // 2 layers of 8 x 9 parameters, f32: (2 + 2k) x 144 x 4 bytes, plus the batch.
            let k = state_buffers(opt) as f64;
            assert_eq!(m.floor_bytes, (2.0 + 2.0 * k) * 144.0 * 4.0 + 32.0 * 4.0);
            // With splines (8 bins: 8 x 23 parameters for the one hidden layer), fused too.
            let spline = relgrad::Activation::Spline {
                bins: 8,
                bound: relgrad::activation::DEFAULT_BOUND,
            };
            let timing = Timing {
                budget: Duration::from_millis(1),
                min_reps: 1,
            };
            let be = relgrad::Faer::sequential();
            let m = measure_step::<f32, _>(&be, (8, 4, 2), spline, opt, timing).unwrap();
            assert!(m.step_ms > 0.0 && m.fused_ms > 0.0);
            assert_eq!(m.floor_bytes, (2.0 + 2.0 * k) * 328.0 * 4.0 + 32.0 * 4.0);
        }
    }
}

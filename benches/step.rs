//! One training step (the relative gradient and the optimizer's update of every
//! parameter and moment), unfused (the direction into the workspace, then the optimizer)
//! against fused (one pass over each weight and its state, see `relgrad::step`), with
//! SGD with momentum and with Adam, at the paper's MNIST batch size `B = 10`, `L = 2`,
//! f32, on the default backend with its automatic threading; and the memory floor of each
//! optimizer's step: one pass that reads and writes the parameters and the optimizer's
//! state (`floor_sgd`, `floor_adam`), on one core. `relgrad bench --step` adds any batch
//! size and the floor on all cores.
//!
//! Run with `cargo bench --bench step`; limit sizes with `RELGRAD_BENCH_DIMS=64,784`.

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::{dims, problem};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use relgrad::{
    train_step, DefaultBackend, GradientKind, Optimizer, OptimizerState, StepPath, Workspace,
};

/// The paper's batch size for MNIST.
const BATCH: usize = 10;

fn bench(c: &mut Criterion) {
    let backend = DefaultBackend::default();
    let mut group = c.benchmark_group("step_f32_b10_l2");
    let sgd = Optimizer::Sgd {
        lr: 1e-30,
        momentum: 0.9,
    };
    let adam = Optimizer::Adam {
        lr: 1e-30,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    for d in dims() {
        let (mut model, x) = problem::<f32, _>(&backend, d);
        let x = x.top(BATCH).to_owned();
        let mut ws = Workspace::<f32, DefaultBackend>::new(&model, BATCH);
        let slow = d >= 1024;
        group.sample_size(if slow { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(if slow { 8 } else { 3 }));
        group.warm_up_time(Duration::from_secs(1));
        for (opt_name, buffers) in [("sgd", 2), ("adam", 3)] {
            // Parameters and state (the moments), each read and written once.
            let mut bufs: Vec<Vec<f32>> = (0..buffers)
                .map(|_| vec![1.0; model.n_parameters()])
                .collect();
            let id = BenchmarkId::new(format!("floor_{opt_name}"), d);
            group.bench_with_input(id, &d, |bch, _| bch.iter(|| stream(black_box(&mut bufs))));
        }
        for (opt_name, opt) in [("sgd", sgd), ("adam", adam)] {
            // A tiny learning rate keeps the parameters in place.
            let mut state = OptimizerState::new(opt, &model);
            for (path_name, path) in [("unfused", StepPath::Unfused), ("fused", StepPath::Fused)] {
                let id = BenchmarkId::new(format!("{opt_name}_{path_name}"), d);
                group.bench_with_input(id, &d, |bch, _| {
                    bch.iter(|| {
                        let kind = GradientKind::Relative;
                        let x = black_box(x.as_ref());
                        train_step(kind, path, &mut model, &backend, x, &mut ws, &mut state)
                            .unwrap()
                    })
                });
            }
        }
    }
    group.finish();
}

/// Reads and writes every element of `bufs` once (`p += c m`, `m *= c'`, ...): an
/// optimizer update's traffic without its arithmetic.
fn stream(bufs: &mut [Vec<f32>]) {
    let (c, half) = (1e-30f32, 0.5f32);
    match bufs {
        [p, m] => {
            for (x, y) in p.iter_mut().zip(m.iter_mut()) {
                *x += c * *y;
                *y *= half;
            }
        }
        [p, m, v] => {
            for ((x, y), z) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()) {
                *x += c * *y + c * *z;
                *y *= half;
                *z *= half;
            }
        }
        _ => unreachable!("parameters with one or two state buffers"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

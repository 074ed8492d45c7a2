//! One gradient evaluation (forward, backward and the update direction for every layer):
//! the relative gradient against the naive one, and the floor that any implementation
//! needs, the `4L - 1` products of `B x D` by `D x D` size. `B = 100`, `L = 2`, f32, on
//! the default backend with its automatic threading.
//!
//! Run with `cargo bench --bench gradient`; limit sizes with `RELGRAD_BENCH_DIMS=16,64`.

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::{dims, problem, B, L};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use relgrad::{naive_gradient, relative_gradient, Backend, DefaultBackend, Mat, Trans, Workspace};

fn bench(c: &mut Criterion) {
    let backend = DefaultBackend::default();
    let mut group = c.benchmark_group("gradient_f32_b100_l2");
    for d in dims() {
        let (model, x) = problem::<f32, _>(&backend, d);
        let mut ws = Workspace::<f32, DefaultBackend>::new(&model, B);
        let slow = d >= 1024;
        group.sample_size(if slow { 10 } else { 30 });
        group.measurement_time(Duration::from_secs(if slow { 8 } else { 3 }));
        group.warm_up_time(Duration::from_secs(1));
        group.bench_with_input(BenchmarkId::new("relative", d), &d, |bch, _| {
            bch.iter(|| {
                relative_gradient(&model, &backend, black_box(x.as_ref()), &mut ws).unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("naive", d), &d, |bch, _| {
            bch.iter(|| naive_gradient(&model, &backend, black_box(x.as_ref()), &mut ws).unwrap())
        });
        // The floor: the 4L - 1 products of one evaluation, with the shapes and
        // transposes the relative gradient uses.
        let w = model.layers()[0].weight.clone();
        let (mut out, mut tmp) = (Mat::<f32>::zeros(B, d), Mat::<f32>::zeros(d, B));
        let (mut dd, mut dd2) = (Mat::<f32>::zeros(d, d), Mat::<f32>::zeros(d, d));
        group.bench_with_input(BenchmarkId::new("floor", d), &d, |bch, _| {
            bch.iter(|| {
                for _ in 0..L {
                    backend.gemm(
                        1.0,
                        x.as_ref(),
                        Trans::No,
                        w.as_ref(),
                        Trans::No,
                        0.0,
                        out.as_mut(),
                    );
                }
                for _ in 0..L - 1 {
                    backend.gemm(
                        1.0,
                        x.as_ref(),
                        Trans::No,
                        w.as_ref(),
                        Trans::Yes,
                        0.0,
                        out.as_mut(),
                    );
                }
                for _ in 0..L {
                    if B <= d {
                        backend.gemm(
                            1.0,
                            w.as_ref(),
                            Trans::No,
                            x.as_ref(),
                            Trans::Yes,
                            0.0,
                            tmp.as_mut(),
                        );
                        backend.gemm(
                            1.0,
                            tmp.as_ref(),
                            Trans::No,
                            x.as_ref(),
                            Trans::No,
                            1.0,
                            dd.as_mut(),
                        );
                    } else {
                        backend.gemm(
                            1.0,
                            x.as_ref(),
                            Trans::Yes,
                            x.as_ref(),
                            Trans::No,
                            0.0,
                            dd.as_mut(),
                        );
                        backend.gemm(
                            1.0,
                            w.as_ref(),
                            Trans::No,
                            dd.as_ref(),
                            Trans::No,
                            1.0,
                            dd2.as_mut(),
                        );
                    }
                }
                black_box(&dd);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

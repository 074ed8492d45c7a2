//! Backends compared: for every backend compiled in (features `nalgebra`, `openblas`),
//! f32 and f64, and `D` in {16, 64, 256, 512, 1024, 2048} (`B = 100`, `L = 2`): the
//! `B x D` by `D x D` product (reported as elements/s = flop/s), one relative-gradient
//! evaluation and one naive evaluation, each backend with its automatic threading.
//!
//! `cargo bench --all-features --bench backends`; limit the sizes with
//! `RELGRAD_BENCH_DIMS=16,64` and the precisions with `RELGRAD_BENCH_PRECISION=f32`.
//! The CLI's `relgrad bench` prints the same comparison as a table (and JSON).

use std::hint::black_box;
use std::time::Duration;

mod common;

use common::{dims, problem, B};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use relgrad::{naive_gradient, relative_gradient, Backend, Mat, Scalar, Trans, Workspace};

fn wanted(precision: &str) -> bool {
    std::env::var("RELGRAD_BENCH_PRECISION").map_or(true, |p| p == precision)
}

fn bench_backend<T: Scalar, B2: Backend<T>>(c: &mut Criterion, backend: B2) {
    if !wanted(T::NAME) {
        return;
    }
    let mut group = c.benchmark_group(format!("{}_{}", backend.name(), T::NAME));
    for d in dims() {
        let (model, x) = problem::<T, _>(&backend, d);
        let mut ws = Workspace::<T, B2>::new(&model, B);
        let mut out = Mat::<T>::zeros(B, d);
        let slow = d >= 1024;
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if slow { 6 } else { 2 }));
        group.warm_up_time(Duration::from_millis(500));
        group.throughput(Throughput::Elements((2 * B * d * d) as u64));
        group.bench_with_input(BenchmarkId::new("product", d), &d, |bch, _| {
            let w = model.layers()[0].weight.as_ref();
            bch.iter(|| {
                backend.gemm(
                    T::one(),
                    black_box(x.as_ref()),
                    Trans::No,
                    w,
                    Trans::No,
                    T::zero(),
                    out.as_mut(),
                )
            })
        });
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("relative", d), &d, |bch, _| {
            bch.iter(|| {
                relative_gradient(&model, &backend, black_box(x.as_ref()), &mut ws).unwrap()
            })
        });
        if d <= 1024 || std::env::var("RELGRAD_BENCH_NAIVE_ALL").is_ok() {
            group.bench_with_input(BenchmarkId::new("naive", d), &d, |bch, _| {
                bch.iter(|| {
                    naive_gradient(&model, &backend, black_box(x.as_ref()), &mut ws).unwrap()
                })
            });
        }
    }
    group.finish();
}

fn backends(c: &mut Criterion) {
    bench_backend::<f32, _>(c, relgrad::Faer::default());
    bench_backend::<f64, _>(c, relgrad::Faer::default());
    #[cfg(feature = "nalgebra")]
    {
        bench_backend::<f32, _>(c, relgrad::Nalgebra::default());
        bench_backend::<f64, _>(c, relgrad::Nalgebra::default());
    }
    #[cfg(feature = "openblas")]
    {
        bench_backend::<f32, _>(c, relgrad::Blas::default());
        bench_backend::<f64, _>(c, relgrad::Blas::default());
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);

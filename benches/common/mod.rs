//! Settings and the problem shared by the benches.

use relgrad::init::Architecture;
use relgrad::{Activation, Backend, BaseDensity, Init, InvertibleMlp, Mat, Scalar};

/// Rows per batch.
pub const B: usize = 100;
/// Layers.
pub const L: usize = 2;

/// The dimensions to bench: `RELGRAD_BENCH_DIMS` (comma-separated) or the list.
pub fn dims() -> Vec<usize> {
    std::env::var("RELGRAD_BENCH_DIMS")
        .ok()
        .map(|s| s.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 64, 256, 512, 1024, 2048])
}

/// The benched problem at dimension `d`: an orthogonally started `L`-layer model with
/// biases and a fixed, deterministic `B x d` batch.
pub fn problem<T: Scalar, Be: Backend<T>>(backend: &Be, d: usize) -> (InvertibleMlp<T>, Mat<T>) {
    let arch = Architecture {
        dim: d,
        n_layers: L,
        activation: Activation::default(),
        base: BaseDensity::Normal,
        use_bias: true,
    };
    let model = Init::Orthogonal { seed: 1 }
        .build::<T, Be>(arch, backend, None)
        .unwrap();
    let x = Mat::<T>::from_fn(B, d, |i, j| {
        T::from_f64c(((i * 31 + j * 17) % 13) as f64 / 6.0 - 1.0)
    });
    (model, x)
}

//! Inputs shared by the fuzz targets that evaluate what they loaded.
#![allow(dead_code)]
use relgrad::Mat;

/// Three rows of `d` columns: zeros, whole numbers (valid pixels) and small reals.
pub fn probe_rows(d: usize) -> Mat<f64> {
    Mat::from_fn(3, d, |i, j| match i {
        0 => 0.0,
        1 => (j % 3) as f64,
        _ => 0.25 * j as f64 - 1.0,
    })
}

/// A seeded random-number generator.
pub fn rng() -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(7)
}

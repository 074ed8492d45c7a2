//! Two-dimensional toy densities, drawn from a seed: the usual test beds of density
//! models (most as in the FFJORD and neural spline flow papers' toy experiments).
//!
//! | name | what |
//! |---|---|
//! | `moons` | two interleaved half circles with Gaussian noise |
//! | `2spirals` | two interleaved spiral arms |
//! | `checkerboard` | uniform on the dark squares of a 4x4 checkerboard |
//! | `rings` | four concentric noisy circles |
//! | `8gaussians` | eight Gaussians on a circle |
//! | `sine` | a noisy sine curve |
//! | `trimodal` | three Gaussians of different shapes (a skewed, multimodal density) |

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::Table;

/// The names of the generators, in the order `relgrad datasets` lists them.
pub const NAMES: [&str; 7] = [
    "moons",
    "2spirals",
    "checkerboard",
    "rings",
    "8gaussians",
    "sine",
    "trimodal",
];

/// One-line descriptions, in the order of [`NAMES`].
pub const DESCRIPTIONS: [&str; 7] = [
    "two interleaved half circles, noise sd 0.1 (scaled x2)",
    "two interleaved spiral arms, noise sd 0.1",
    "uniform on the dark squares of a 4x4 checkerboard on [-4, 4]^2",
    "four concentric circles of radius 0.75..3, noise sd 0.08",
    "eight Gaussians (sd 0.5/sqrt 2) on a circle of radius 2 sqrt 2",
    "y = 2 sin(x) + noise sd 0.25, x uniform on [-4, 4]",
    "a mixture of three differently shaped Gaussians",
];

/// Whether `name` is a generator.
pub fn is_generator(name: &str) -> bool {
    NAMES.contains(&name)
}

fn normal(rng: &mut StdRng) -> f64 {
    StandardNormal.sample(rng)
}

/// Draws `n` points of the generator `name` from `seed`.
pub fn generate(name: &str, n: usize, seed: u64) -> Result<Table> {
    let mut rng = StdRng::seed_from_u64(seed);
    let r = &mut rng;
    let mut v = Vec::with_capacity(2 * n);
    let pi = std::f64::consts::PI;
    for i in 0..n {
        let (x, y) = match name {
            "moons" => {
                // Half of the points on each moon, as scikit-learn's make_moons.
                let t = pi * r.random::<f64>();
                let (x, y) = if i % 2 == 0 {
                    (t.cos(), t.sin())
                } else {
                    (1.0 - t.cos(), 0.5 - t.sin())
                };
                (
                    2.0 * (x + 0.1 * normal(r)) - 1.0,
                    2.0 * (y + 0.1 * normal(r)) - 0.2,
                )
            }
            "2spirals" => {
                let t = r.random::<f64>().sqrt() * 540.0 * (2.0 * pi) / 360.0;
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                let x = -t.cos() * t + r.random::<f64>() * 0.5;
                let y = t.sin() * t + r.random::<f64>() * 0.5;
                (
                    sign * x / 3.0 + 0.1 * normal(r),
                    sign * y / 3.0 + 0.1 * normal(r),
                )
            }
            "checkerboard" => {
                let x1 = r.random::<f64>() * 4.0 - 2.0;
                let x2 = r.random::<f64>() - f64::from(r.random_range(0..2u8)) * 2.0;
                let x2 = x2 + (x1.floor().rem_euclid(2.0));
                (2.0 * x1, 2.0 * x2)
            }
            "rings" => {
                let radius = [0.25, 0.5, 0.75, 1.0][i % 4] * 3.0;
                let a = 2.0 * pi * r.random::<f64>();
                (
                    radius * a.cos() + 0.08 * normal(r),
                    radius * a.sin() + 0.08 * normal(r),
                )
            }
            "8gaussians" => {
                let k = r.random_range(0..8u32) as f64;
                let a = k * pi / 4.0;
                let (cx, cy) = (2.0 * a.cos(), 2.0 * a.sin());
                let s = std::f64::consts::SQRT_2;
                (
                    (2.0 * cx + 0.5 * normal(r)) / s,
                    (2.0 * cy + 0.5 * normal(r)) / s,
                )
            }
            "sine" => {
                let x = r.random::<f64>() * 8.0 - 4.0;
                (x, 2.0 * x.sin() + 0.25 * normal(r))
            }
            "trimodal" => {
                let (z1, z2) = (normal(r), normal(r));
                match r.random_range(0..3u8) {
                    0 => (-2.0 + 0.3 * z1, 1.5 + 0.3 * z2),
                    1 => (2.0 + 0.8 * z1 + 0.5 * z2, 1.0 + 0.3 * z2),
                    _ => (0.6 * z1, -2.0 + 0.4 * z2 + 0.3 * z1),
                }
            }
            other => bail!(
                "unknown generator {other:?}; expected one of {}",
                NAMES.join(", ")
            ),
        };
        v.push(x);
        v.push(y);
    }
    Ok(Table::new(n, 2, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generator_is_seeded_and_finite() {
        for name in NAMES {
            let a = generate(name, 200, 3).unwrap();
            let b = generate(name, 200, 3).unwrap();
            let c = generate(name, 200, 4).unwrap();
            assert_eq!((a.rows, a.cols), (200, 2));
            assert_eq!(a.values, b.values, "{name}");
            assert_ne!(a.values, c.values, "{name}");
            assert!(
                a.values.iter().all(|v| v.is_finite() && v.abs() < 20.0),
                "{name}"
            );
        }
        assert!(generate("nope", 5, 0).is_err());
    }
}

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
//! | `smile` | ten Gaussians drawing a smiling face (the paper's code) |
//! | `trimodal2` | three equal Gaussians at `(0, 0)`, `(5, 5)`, `(5, -5)` (the paper's code) |
//!
//! `smile` and `trimodal2` are drawn as the official code of the relative-gradient paper
//! draws them (`experiments/datasets/density.py`, `sample_2d_data`). Of the others,
//! `2spirals`, `checkerboard`, `rings` and `8gaussians` have the same distribution as
//! that code's sets of the same names; `moons` (FFJORD's: noise 0.1, scaled by 2),
//! `sine` and `trimodal` are relgrad's own and differ from its sets of those names.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::Table;

/// The names of the generators, in the order `relgrad datasets` lists them.
pub const NAMES: [&str; 9] = [
    "moons",
    "2spirals",
    "checkerboard",
    "rings",
    "8gaussians",
    "sine",
    "trimodal",
    "smile",
    "trimodal2",
];

/// One-line descriptions, in the order of [`NAMES`].
pub const DESCRIPTIONS: [&str; 9] = [
    "two interleaved half circles, noise sd 0.1 (scaled x2)",
    "two interleaved spiral arms, noise sd 0.1",
    "uniform on the dark squares of a 4x4 checkerboard on [-4, 4]^2",
    "four concentric circles of radius 0.75..3, noise sd 0.08",
    "eight Gaussians (sd 0.5/sqrt 2) on a circle of radius 2 sqrt 2",
    "y = 2 sin(x) + noise sd 0.25, x uniform on [-4, 4]",
    "a mixture of three differently shaped Gaussians",
    "ten Gaussians (sd 0.5) drawing a face, as the paper's code",
    "three Gaussians (sd 0.5) at (0, 0), (5, 5), (5, -5), as the paper's code",
];

/// The centres of `smile`'s Gaussians (as the paper's code lists them: the two eyes and
/// the nose, then the seven points of the mouth, on circles of radius 4 and 0).
pub const SMILE_CENTERS: [(f64, f64); 10] = {
    const S: f64 = 4.0;
    const H: f64 = std::f64::consts::FRAC_1_SQRT_2;
    const R3: f64 = 0.866_025_403_784_438_7; // sqrt(3) / 2
    const C15: f64 = 0.258_819_045_102_520_74; // cos 75 degrees
    const S15: f64 = 0.965_925_826_289_068_3; // sin 75 degrees
    [
        (S * 0.5, -S * R3),
        (-S * 0.5, -S * R3),
        (0.0, 0.0),
        (0.0, S),
        (S * H, S * H),
        (-S * H, S * H),
        (S * 0.5, S * R3),
        (S * C15, S * S15),
        (-S * 0.5, S * R3),
        (-S * C15, S * S15),
    ]
};

/// The weights of `smile`'s Gaussians: half the mass on the first three, half on the
/// seven of the mouth.
pub const SMILE_WEIGHTS: [f64; 10] = [
    0.5 / 3.0,
    0.5 / 3.0,
    0.5 / 3.0,
    0.5 / 7.0,
    0.5 / 7.0,
    0.5 / 7.0,
    0.5 / 7.0,
    0.5 / 7.0,
    0.5 / 7.0,
    0.5 / 7.0,
];

/// The centres of `trimodal2`'s three Gaussians (equally likely).
pub const TRIMODAL2_CENTERS: [(f64, f64); 3] = [(0.0, 0.0), (5.0, 5.0), (5.0, -5.0)];

/// The standard deviation of every Gaussian of `smile` and `trimodal2`.
pub const PAPER_SD: f64 = 0.5;

/// The index of the component that a uniform draw `u` in `[0, 1)` picks, by `weights`.
fn pick(weights: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (k, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return k;
        }
    }
    weights.len() - 1
}

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
            "smile" | "trimodal2" => {
                let (z1, z2) = (normal(r), normal(r));
                let (cx, cy) = if name == "smile" {
                    SMILE_CENTERS[pick(&SMILE_WEIGHTS, r.random::<f64>())]
                } else {
                    TRIMODAL2_CENTERS[r.random_range(0..3usize)]
                };
                (cx + PAPER_SD * z1, cy + PAPER_SD * z2)
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

    /// Sample mean and covariance `(mx, my, vxx, vyy, vxy)` of a table of 2-D points.
    fn moments(t: &Table) -> [f64; 5] {
        let n = t.rows as f64;
        let (mx, my) = (0..t.rows).fold((0.0, 0.0), |(a, b), i| {
            (a + t.get(i, 0) / n, b + t.get(i, 1) / n)
        });
        let (mut vxx, mut vyy, mut vxy) = (0.0, 0.0, 0.0);
        for i in 0..t.rows {
            let (dx, dy) = (t.get(i, 0) - mx, t.get(i, 1) - my);
            vxx += dx * dx / n;
            vyy += dy * dy / n;
            vxy += dx * dy / n;
        }
        [mx, my, vxx, vyy, vxy]
    }

    /// The moments of an isotropic Gaussian mixture (weights, centres, sd).
    fn mixture_moments(w: &[f64], c: &[(f64, f64)], sd: f64) -> [f64; 5] {
        let mx: f64 = w.iter().zip(c).map(|(w, c)| w * c.0).sum();
        let my: f64 = w.iter().zip(c).map(|(w, c)| w * c.1).sum();
        let e = |f: &dyn Fn(&(f64, f64)) -> f64| -> f64 {
            w.iter().zip(c).map(|(w, c)| w * f(c)).sum()
        };
        [
            mx,
            my,
            e(&|c| c.0 * c.0) - mx * mx + sd * sd,
            e(&|c| c.1 * c.1) - my * my + sd * sd,
            e(&|c| c.0 * c.1) - mx * my,
        ]
    }

    #[test]
    fn the_paper_sets_have_their_mixtures_moments() {
        // The official code's constants, written out again (density.py, sample_2d_data).
        let (s, h) = (4.0, 1.0 / 2f64.sqrt());
        let smile = [
            (s * 0.5, -s * 0.8660254037844387),
            (-s * 0.5, -s * 0.8660254037844387),
            (0.0, 0.0),
            (0.0, s),
            (s * h, s * h),
            (-s * h, s * h),
            (s * 0.5, s * 3f64.sqrt() / 2.0),
            (s * 0.25881904510252074, s * 0.9659258262890683),
            (-s * 0.5, s * 3f64.sqrt() / 2.0),
            (-s * 0.25881904510252074, s * 0.9659258262890683),
        ];
        for (a, b) in smile.iter().zip(SMILE_CENTERS) {
            assert!((a.0 - b.0).abs() < 1e-12 && (a.1 - b.1).abs() < 1e-12);
        }
        let mut w = [0.5 / 7.0; 10];
        w[..3].fill(0.5 / 3.0);
        assert!((SMILE_WEIGHTS.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let tri = [(0.0, 0.0), (5.0, 5.0), (5.0, -5.0)];
        let n = 200_000;
        for (name, want) in [
            ("smile", mixture_moments(&w, &smile, 0.5)),
            ("trimodal2", mixture_moments(&[1.0 / 3.0; 3], &tri, 0.5)),
        ] {
            let t = generate(name, n, 11).unwrap();
            assert_eq!((t.rows, t.cols), (n, 2));
            let got = moments(&t);
            let scale = want[2].max(want[3]);
            for (k, (g, e)) in got.iter().zip(want).enumerate() {
                // About 5 standard errors of each estimate.
                let tol = if k < 2 { 0.05 } else { 0.01 * scale };
                assert!((g - e).abs() < tol, "{name} moment {k}: {g} vs {e}");
            }
        }
        // trimodal2: a third of the points around each centre, none far from all three.
        let t = generate("trimodal2", 30_000, 5).unwrap();
        let mut count = [0usize; 3];
        for i in 0..t.rows {
            let (x, y) = (t.get(i, 0), t.get(i, 1));
            let d = |c: (f64, f64)| ((x - c.0).powi(2) + (y - c.1).powi(2)).sqrt();
            let k = (0..3)
                .min_by(|&a, &b| d(tri[a]).total_cmp(&d(tri[b])))
                .unwrap();
            assert!(d(tri[k]) < 4.0);
            count[k] += 1;
        }
        for c in count {
            assert!((c as f64 / 30_000.0 - 1.0 / 3.0).abs() < 0.02, "{count:?}");
        }
    }

    #[test]
    fn pick_follows_the_cumulative_weights() {
        let w = [0.25, 0.5, 0.25];
        assert_eq!(pick(&w, 0.0), 0);
        assert_eq!(pick(&w, 0.2499), 0);
        assert_eq!(pick(&w, 0.25), 1);
        assert_eq!(pick(&w, 0.7499), 1);
        assert_eq!(pick(&w, 0.75), 2);
        assert_eq!(pick(&w, 0.999_999), 2);
    }
}

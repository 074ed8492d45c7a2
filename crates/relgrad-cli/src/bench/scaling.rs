//! The harness behind `relgrad bench scaling` (the paper's scaling figure): the time of
//! one gradient evaluation against the dimension `D`, the least-squares exponent of
//! those times, and the memory a dimension needs.
//!
//! - [`dims`]: the dimensions timed, geometric from a smallest to a largest;
//! - [`time_calls`]: one untimed warm-up call, then timed calls within a budget;
//! - [`fit_exponent`] and [`fit_points`]: the slope of `ln t` against `ln D` by least
//!   squares, and which points it is fitted over;
//! - [`bytes_needed`], [`mem_available`], [`peak_rss`]: what a dimension allocates, what
//!   the machine has, what the process used;
//! - [`predict_seconds`]: the time of a call at the next dimension, from the last ones;
//! - [`scaling_model`] and [`Point`]: the model timed and one dimension's measurement.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use relgrad::{
    naive_gradient, relative_gradient, Activation, Backend, BaseDensity, InvertibleMlp, Layer, Mat,
    Scalar, Workspace,
};

use super::{clock, random_mat};

/// The dimensions from `min` to `max`: `min * 2^(k / steps_per_octave)` rounded to the
/// nearest whole number, for `k = 0, 1, ...` while not above `max`, and `max` itself
/// last when the steps miss it. Empty if `min > max`.
pub fn dims(min: usize, max: usize, steps_per_octave: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    if min == 0 || min > max {
        return out;
    }
    let steps = steps_per_octave.max(1) as f64;
    for k in 0.. {
        let d = (min as f64 * 2f64.powf(k as f64 / steps)).round() as usize;
        if d > max {
            break;
        }
        if out.last() != Some(&d) {
            out.push(d);
        }
    }
    if out.last() != Some(&max) {
        out.push(max);
    }
    out
}

/// How long to time one point.
#[derive(Clone, Copy, Debug)]
pub struct PointTiming {
    /// Time calls until they took this long in total...
    pub budget: Duration,
    /// ...and at least this many were made...
    pub min_reps: usize,
    /// ...but never more than this many.
    pub max_reps: usize,
}

/// What one gradient took at one dimension, in milliseconds per call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The median over the timed calls.
    pub median_ms: f64,
    /// The fastest timed call.
    pub min_ms: f64,
    /// The slowest timed call.
    pub max_ms: f64,
    /// The first quartile of the timed calls.
    pub q1_ms: f64,
    /// The third quartile of the timed calls.
    pub q3_ms: f64,
    /// The number of timed calls (the warm-up call not counted).
    pub reps: usize,
    /// The untimed warm-up call (it also touches the buffers' pages for the first time).
    pub warmup_ms: f64,
}

impl Sample {
    /// The spread of the timed calls: their interquartile range over their median (a
    /// call that met a burst of load elsewhere moves it little, unlike the range).
    pub fn spread(&self) -> f64 {
        (self.q3_ms - self.q1_ms) / self.median_ms
    }
}

/// The `p`-quantile of the ascending `sorted` (linear between order statistics).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let at = p.clamp(0.0, 1.0) * (n - 1) as f64;
            let (i, frac) = (at.floor() as usize, at.fract());
            let next = sorted[(i + 1).min(n - 1)];
            sorted[i] + frac * (next - sorted[i])
        }
    }
}

/// Runs `f` once untimed (the warm-up), then times calls until `timing.budget` has
/// passed and `timing.min_reps` calls were made, or `timing.max_reps` calls were made.
pub fn time_calls(timing: PointTiming, f: &mut dyn FnMut()) -> Sample {
    let warmup = clock(f);
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < timing.max_reps.max(1)
        && (times.len() < timing.min_reps || start.elapsed() < timing.budget)
    {
        times.push(clock(f));
    }
    times.sort_by(f64::total_cmp);
    let ms = |p: f64| quantile(&times, p) * 1e3;
    Sample {
        median_ms: ms(0.5),
        min_ms: ms(0.0),
        max_ms: ms(1.0),
        q1_ms: ms(0.25),
        q3_ms: ms(0.75),
        reps: times.len(),
        warmup_ms: warmup * 1e3,
    }
}

/// The least-squares line through `(ln D, ln t)` for the points `(D, t)`:
/// `(exponent, intercept)` with `t ~ exp(intercept) D^exponent`. `None` for fewer than
/// two distinct dimensions or a non-positive value.
pub fn fit_exponent(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < 2 || points.iter().any(|&(d, t)| !(d > 0.0 && t > 0.0)) {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), &(d, t)| {
        (a + d.ln() / n, b + t.ln() / n)
    });
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(d, t) in points {
        let (x, y) = (d.ln() - mx, t.ln() - my);
        sxx += x * x;
        sxy += x * y;
    }
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// The fewest points with `D >= fit_from` that the fit uses before it falls back to the
/// upper half of the points.
pub const MIN_FIT_POINTS: usize = 3;

/// Which of the dimensions `ds` (ascending) the exponent is fitted over: those with
/// `D >= fit_from` when there are at least [`MIN_FIT_POINTS`] of them, else the upper
/// half of all (the largest `ceil(n / 2)`, at least 2). Returns the index of the first
/// point used and the rule, in words; `None` for fewer than two points.
pub fn fit_points(ds: &[usize], fit_from: usize) -> Option<(usize, String)> {
    let n = ds.len();
    if n < 2 {
        return None;
    }
    let first_big = ds.iter().position(|&d| d >= fit_from).unwrap_or(n);
    if n - first_big >= MIN_FIT_POINTS {
        return Some((first_big, format!("D >= {fit_from}")));
    }
    let k = n.div_ceil(2).max(2);
    Some((n - k, "the upper half of the timed points".into()))
}

/// The predicted seconds of one call at dimension `d` from the calls timed at smaller
/// dimensions (`last`, and `before` it if any): `t_last (d / d_last)^p`, with `p` the
/// larger of `exponent` (the gradient's asymptotic one) and the slope between the last
/// two points (capped at 4), so that a prediction errs long.
pub fn predict_seconds(
    last: (usize, f64),
    before: Option<(usize, f64)>,
    d: usize,
    exponent: f64,
) -> f64 {
    let slope = before
        .and_then(|b| fit_exponent(&[(b.0 as f64, b.1), (last.0 as f64, last.1)]))
        .map_or(exponent, |(s, _)| s.min(4.0));
    last.1 * (d as f64 / last.0 as f64).powf(exponent.max(slope))
}

/// Bytes a dimension allocates: the model (`L` weights and biases), the batch, the
/// workspace (the gradient, `L` more weights; its `D x max(B, D)` product buffer; its
/// `B x D` activations, signals and scratch) and, with `naive`, the naive gradient's LU
/// factor, inverse and the backend's scratch for them, counted as three more `D x D`
/// matrices. `elem` is the size of one value (4 for f32).
pub fn bytes_needed(d: usize, b: usize, l: usize, elem: usize, naive: bool) -> u64 {
    let (d, b, l, elem) = (d as u64, b as u64, l as u64, elem as u64);
    let square = d * d;
    let params = l * (square + d);
    let rows = (4 * l + 2) * b * d + b;
    let prod = d * b.max(d);
    // The fused step's rows, for up to 16 threads (the core's crate-private MAX_PARTS).
    let row = 16 * (4 * d + 8 * b);
    let lu = if naive { 3 * square + 2 * d } else { 0 };
    (2 * params + b * d + rows + prod + row + lu) * elem
}

/// The kernel's estimate of the memory available to a new program (`MemAvailable` of
/// `/proc/meminfo`), in bytes; `None` where there is no such file (not Linux).
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    meminfo_field(&text, "MemAvailable:")
}

/// The peak resident memory of this process so far (`VmHWM` of `/proc/self/status`), in
/// bytes; `None` where there is no such file.
pub fn peak_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    meminfo_field(&text, "VmHWM:")
}

/// A `NAME:   123 kB` line's value in bytes.
fn meminfo_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let mut parts = line[name.len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    Some(match parts.next() {
        Some("kB") => n * 1024,
        _ => n,
    })
}

/// The CPU's name (`model name` of `/proc/cpuinfo`), or `"unknown CPU"`.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The model timed at dimension `d`: `l` layers with weights `I + 0.25 G / sqrt(d)` (`G`
/// standard normal from `seed`), zero biases, the paper's activation (smooth leaky ReLU,
/// alpha 0.01) and a standard-normal base. The perturbation's spectral norm is about
/// 0.5, so every weight is invertible with a condition number of about 3 at any `d`;
/// it is built in `O(d^2)` (a random orthogonal start takes `O(d^3)` on one thread).
/// The time of a gradient depends on the shapes, not on these values.
pub fn scaling_model<T: Scalar>(d: usize, l: usize, seed: u64) -> Result<InvertibleMlp<T>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let scale = 0.25 / (d as f64).sqrt();
    let layers = (0..l)
        .map(|_| {
            let mut w = Mat::<T>::zeros(d, d);
            for (i, row) in w.as_mut_slice().chunks_mut(d).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    let g: f64 = StandardNormal.sample(&mut rng);
                    let diag = if i == j { 1.0 } else { 0.0 };
                    *v = T::from_f64c(diag + scale * g);
                }
            }
            Layer {
                weight: w,
                bias: vec![T::zero(); d],
            }
        })
        .collect();
    InvertibleMlp::from_layers(layers, Activation::default(), BaseDensity::Normal, true)
        .map_err(|e| anyhow!("building a {d}-dimensional model: {e}"))
}

/// One dimension's measurement: each requested gradient's [`Sample`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Point {
    /// The relative gradient, if timed.
    pub relative: Option<Sample>,
    /// The naive gradient, if timed.
    pub naive: Option<Sample>,
}

/// Times the requested gradients (`relative`, `naive`) at dimension `d` with batches of
/// `b` rows and `l` layers, on `backend` in precision `T`: the relative gradient first,
/// then the naive one (which allocates its LU buffers on its first call) on the same
/// model, batch and workspace. `each` is called between the two (for progress).
pub fn measure_point<T: Scalar, B: Backend<T>>(
    backend: &B,
    (d, b, l): (usize, usize, usize),
    (relative, naive): (bool, bool),
    timing: PointTiming,
    each: &mut dyn FnMut(&'static str),
) -> Result<Point> {
    let model = scaling_model::<T>(d, l, 0x5CA1E ^ d as u64)?;
    let mut rng = StdRng::seed_from_u64(0xDA7A ^ d as u64);
    let x = random_mat::<T>(b, d, &mut rng);
    let mut ws = Workspace::<T, B>::new(&model, b);
    let mut failure = None;
    let mut point = Point::default();
    if relative {
        each("relative");
        point.relative = Some(time_calls(timing, &mut || {
            if let Err(e) = relative_gradient(&model, backend, x.as_ref(), &mut ws) {
                failure.get_or_insert(e);
            }
        }));
    }
    if naive {
        each("naive");
        point.naive = Some(time_calls(timing, &mut || {
            if let Err(e) = naive_gradient(&model, backend, x.as_ref(), &mut ws) {
                failure.get_or_insert(e);
            }
        }));
    }
    match failure {
        Some(e) => Err(anyhow!("gradient evaluation failed for D = {d}: {e}")),
        None => Ok(point),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_double_or_step_by_sqrt2() {
        assert_eq!(dims(16, 128, 1), vec![16, 32, 64, 128]);
        assert_eq!(dims(16, 100, 1), vec![16, 32, 64, 100]);
        assert_eq!(dims(16, 64, 2), vec![16, 23, 32, 45, 64]);
        assert_eq!(dims(4, 4, 1), vec![4]);
        assert!(dims(8, 4, 1).is_empty());
        // Small dimensions with many steps do not repeat.
        assert_eq!(dims(1, 4, 4), vec![1, 2, 3, 4]);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.25), 1.75);
        assert_eq!((quantile(&v, 0.0), quantile(&v, 1.0)), (1.0, 4.0));
        assert_eq!(quantile(&[7.0], 0.75), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn the_fit_is_exact_on_power_laws() {
        for (c, k) in [(3e-6, 2.0), (1e-9, 3.0), (0.5, 1.0), (2.0, 2.5)] {
            let pts: Vec<(f64, f64)> = [16.0, 64.0, 100.0, 1024.0, 16384.0]
                .iter()
                .map(|&d: &f64| (d, c * d.powf(k)))
                .collect();
            let (slope, icpt) = fit_exponent(&pts).unwrap();
            assert!((slope - k).abs() < 1e-12, "{slope} vs {k}");
            assert!((icpt - f64::ln(c)).abs() < 1e-9, "{icpt} vs {}", f64::ln(c));
        }
        // t = c D^2 (1 + e) with alternating errors e = +-1%: the slope stays within 0.01.
        let pts: Vec<(f64, f64)> = (4..12)
            .map(|k| {
                let d = f64::powi(2.0, k);
                (d, 1e-6 * d * d * if k % 2 == 0 { 1.01 } else { 0.99 })
            })
            .collect();
        assert!((fit_exponent(&pts).unwrap().0 - 2.0).abs() < 0.01);
        // The least-squares slope of three points, by hand: ln D = 0, 1, 2 (D = e^k) and
        // ln t = 0, 1, 3: slope = sum(x y) - n mx my over sum(x^2) - n mx^2 = (7 - 3 * 4 / 3) / 2 = 1.5.
        let e = std::f64::consts::E;
        let (s, i) = fit_exponent(&[(1.0, 1.0), (e, e), (e * e, e.powi(3))]).unwrap();
        assert!(
            (s - 1.5).abs() < 1e-12 && (i + 1.0 / 6.0).abs() < 1e-12,
            "{s} {i}"
        );
        assert!(fit_exponent(&[(16.0, 1.0)]).is_none());
        assert!(fit_exponent(&[(16.0, 1.0), (16.0, 2.0)]).is_none());
        assert!(fit_exponent(&[(16.0, 1.0), (32.0, 0.0)]).is_none());
    }

    #[test]
    fn the_fit_range_is_the_large_dimensions_or_the_upper_half() {
        let ds = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
        assert_eq!(fit_points(&ds, 1024).unwrap().0, 6);
        // Only two points reach 8192: the upper half (6 of 11) instead.
        let (i, rule) = fit_points(&ds, 8192).unwrap();
        assert_eq!(
            (i, rule.as_str()),
            (5, "the upper half of the timed points")
        );
        assert_eq!(fit_points(&[4, 8, 16, 32], 1024).unwrap().0, 2);
        assert_eq!(fit_points(&[4, 8, 16], 1024).unwrap().0, 1);
        assert_eq!(fit_points(&[4, 8], 1024).unwrap().0, 0);
        assert!(fit_points(&[4], 1024).is_none());
    }

    #[test]
    fn predictions_take_the_steeper_exponent() {
        // Cubic from one point.
        assert!((predict_seconds((1024, 1.0), None, 2048, 3.0) - 8.0).abs() < 1e-12);
        // The last two points rose with slope 4 (capped at 4): steeper than 3.
        let p = predict_seconds((1024, 16.0), Some((512, 1.0)), 2048, 3.0);
        assert!((p - 256.0).abs() < 1e-9, "{p}");
        // A shallower slope seen does not lower the prediction below the exponent's.
        let p = predict_seconds((1024, 2.0), Some((512, 1.0)), 2048, 2.0);
        assert!((p - 8.0).abs() < 1e-12, "{p}");
    }

    #[test]
    fn memory_estimates_and_proc_fields() {
        // f32, D = 16384, B = 100, L = 2: about 5 D^2 values for the relative gradient
        // (5 GiB) and 3 more for the naive one's LU buffers.
        let gib = (1u64 << 30) as f64;
        let rel = bytes_needed(16384, 100, 2, 4, false) as f64 / gib;
        let naive = bytes_needed(16384, 100, 2, 4, true) as f64 / gib;
        assert!((5.0..5.1).contains(&rel), "{rel}");
        assert!((8.0..8.1).contains(&naive), "{naive}");
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(meminfo_field(text, "MemAvailable:"), Some(1_024_000));
        assert_eq!(meminfo_field(text, "VmHWM:"), None);
        if cfg!(target_os = "linux") {
            assert!(mem_available().is_some_and(|m| m > 0));
            assert!(peak_rss().is_some_and(|m| m > 0));
        }
    }

    #[test]
    fn times_both_gradients_at_a_small_dimension() {
        let timing = PointTiming {
            budget: Duration::from_millis(1),
            min_reps: 2,
            max_reps: 5,
        };
        let mut seen = Vec::new();
        let be = relgrad::Faer::sequential();
        let p =
            measure_point::<f32, _>(&be, (8, 4, 2), (true, true), timing, &mut |g| seen.push(g))
                .unwrap();
        assert_eq!(seen, ["relative", "naive"]);
        for s in [p.relative.unwrap(), p.naive.unwrap()] {
            assert!((2..=5).contains(&s.reps), "{s:?}");
            assert!(s.min_ms <= s.q1_ms && s.q1_ms <= s.median_ms && s.min_ms > 0.0);
            assert!(s.median_ms <= s.q3_ms && s.q3_ms <= s.max_ms && s.warmup_ms > 0.0);
        }
        let p =
            measure_point::<f64, _>(&be, (8, 4, 1), (false, true), timing, &mut |_| {}).unwrap();
        assert!(p.relative.is_none() && p.naive.is_some());
    }

    #[test]
    fn the_model_is_near_the_identity() {
        let m = scaling_model::<f64>(64, 2, 1).unwrap();
        let w = &m.layers()[0].weight;
        let off: f64 = (0..64)
            .flat_map(|i| (0..64).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| w.get(i, j).powi(2))
            .sum();
        // The off-diagonal entries have variance 0.0625 / 64: their squares sum to about
        // 64 * 63 * 0.0625 / 64 = 3.9.
        assert!((2.5..5.5).contains(&off), "{off}");
        assert!((0..64).all(|i| (w.get(i, i) - 1.0).abs() < 0.2));
    }
}

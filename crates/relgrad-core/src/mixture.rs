//! A learnable factorised base density: for every latent coordinate `j`, a mixture of
//! `K` logistic densities,
//!
//! `p_j(z) = sum_k w_jk / s_jk * g((z - m_jk) / s_jk)`, `g(u) = e^{-u} / (1 + e^{-u})^2`,
//!
//! with `w_j = softmax(a_j)`. Each unit's row of the `D x 3K` parameter matrix holds its
//! `K` locations `m`, `K` log-scales `ln s` and `K` weight logits `a`.
//!
//! With responsibilities `r_k = w_k g(u_k) / s_k / p(z)` and `t_k = tanh(u_k / 2)`
//! (`d ln g / du = -t`):
//! - the score `d ln p / dz = -sum_k r_k t_k / s_k` (the backward pass's `Delta_L`);
//! - `d ln p / dm_k = r_k t_k / s_k`, `d ln p / d ln s_k = r_k (u_k t_k - 1)` and
//!   `d ln p / da_k = r_k - w_k`.
//!
//! The base adds the capacity a Gaussian-mixture model has where the relative-gradient
//! layers have little (few rows, few dimensions, clustered or discrete columns); its
//! parameters are trained by their ordinary gradient, like the splines'. The start
//! ([`set_start`]) spreads the locations over `[-0.75, 0.75]` with equal weights and
//! scales that give every coordinate unit variance, so a whitening start stays
//! meaningful and the components can separate.

use rand::Rng;

use crate::scalar::{c, Scalar};

/// The components per unit when none are given.
pub const DEFAULT_COMPONENTS: usize = 3;

/// The most components a unit's mixture may have.
pub const MAX_COMPONENTS: usize = 64;

/// The parameters per unit, `3K`.
pub fn params_per_unit(components: usize) -> usize {
    3 * components
}

/// Checks a component count.
pub fn validate(components: usize) -> Result<(), String> {
    if (1..=MAX_COMPONENTS).contains(&components) {
        Ok(())
    } else {
        Err(format!(
            "a mixture base needs 1 to {MAX_COMPONENTS} components, got {components}"
        ))
    }
}

/// Writes the start into one unit's parameters (`3K` values, see the module
/// documentation): locations evenly over `[-0.75, 0.75]` (0 for one component), equal
/// weights, and the common scale that gives the mixture unit variance.
pub fn set_start<T: Scalar>(unit: &mut [T], components: usize) {
    let k = components;
    assert_eq!(
        unit.len(),
        params_per_unit(k),
        "mixture parameters of one unit"
    );
    let loc = |i: usize| {
        if k == 1 {
            0.0
        } else {
            -0.75 + 1.5 * i as f64 / (k - 1) as f64
        }
    };
    let mean_sq = (0..k).map(|i| loc(i) * loc(i)).sum::<f64>() / k as f64;
    // A logistic of scale s has variance pi^2 s^2 / 3.
    let scale = (3.0 * (1.0 - mean_sq)).sqrt() / core::f64::consts::PI;
    for i in 0..k {
        unit[i] = c(loc(i));
        unit[k + i] = c(scale.ln());
        unit[2 * k + i] = T::zero();
    }
}

/// A mixture base's parameters in the form its evaluation needs (locations, inverse
/// scales, `ln w_k - ln s_k`, weights), component-major so that the loops over units
/// vectorise, derived from the parameter matrix at every forward pass into buffers sized
/// when made, with scratch for one row.
#[derive(Clone, Debug)]
pub struct Mixture<T> {
    dim: usize,
    components: usize,
    /// `K x D` tables: entry `k D + j` is unit `j`'s component `k`.
    loc: Vec<T>,
    inv_scale: Vec<T>,
    log_coef: Vec<T>,
    weight: Vec<T>,
    /// One row's `K x D` log-terms `ln w_k - ln s_k + ln g(u_k)` and `e^{-|u_k|}`.
    terms: Vec<T>,
    expu: Vec<T>,
    /// One row's `ln p_j(z_j)`, and the logsumexp's sums.
    lp: Vec<T>,
    sum: Vec<T>,
    /// The parameters' gradient, `3K x D` (locations, log-scales, logits; component-major).
    acc: Vec<T>,
}

impl<T: Scalar> Mixture<T> {
    /// Tables for `dim` units of `components` components (call [`Mixture::update`]).
    pub fn new(dim: usize, components: usize) -> Self {
        let n = dim * components;
        Self {
            dim,
            components,
            loc: vec![T::zero(); n],
            inv_scale: vec![T::one(); n],
            log_coef: vec![T::zero(); n],
            weight: vec![T::zero(); n],
            terms: vec![T::zero(); n],
            expu: vec![T::zero(); n],
            lp: vec![T::zero(); dim],
            sum: vec![T::zero(); dim],
            acc: vec![T::zero(); 3 * n],
        }
    }

    /// Tables for the parameters `params` (`D x 3K`, row-major).
    pub fn from_params(params: &[T], dim: usize, components: usize) -> Self {
        let mut m = Self::new(dim, components);
        m.update(params);
        m
    }

    /// The number of components per unit.
    pub fn components(&self) -> usize {
        self.components
    }

    /// Derives the tables from the parameters (`D x 3K`, row-major). Allocates nothing.
    pub fn update(&mut self, params: &[T]) {
        let (d, k) = (self.dim, self.components);
        assert_eq!(params.len(), d * 3 * k, "mixture parameters");
        for (j, p) in params.chunks_exact(3 * k).enumerate() {
            let (loc, rest) = p.split_at(k);
            let (log_scale, logits) = rest.split_at(k);
            let top = logits.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
            let norm = top + logits.iter().map(|&a| (a - top).exp()).sum::<T>().ln();
            for i in 0..k {
                let at = i * d + j;
                self.loc[at] = loc[i];
                self.inv_scale[at] = (-log_scale[i]).exp();
                self.log_coef[at] = logits[i] - norm - log_scale[i];
                self.weight[at] = (logits[i] - norm).exp();
            }
        }
    }

    /// One latent row's log-terms (into `terms`, `expu`) and `ln p_j(z_j)` (into `lp`),
    /// by the branch-free `exp` and `ln` of [`Scalar`]: every loop runs over the units.
    #[inline(always)]
    fn row_terms(&mut self, fma: bool, z: &[T]) {
        let d = self.dim;
        let two = c::<T>(2.0);
        let lp = &mut self.lp[..d];
        lp.fill(T::neg_infinity());
        for i in 0..self.components {
            let r = i * d..(i + 1) * d;
            let (loc, inv) = (&self.loc[r.clone()], &self.inv_scale[r.clone()]);
            let coef = &self.log_coef[r.clone()];
            let (terms, expu) = (&mut self.terms[r.clone()], &mut self.expu[r]);
            for j in 0..d {
                let a = ((z[j] - loc[j]) * inv[j]).abs();
                let e = T::exp_nonpositive(-a, fma);
                // ln g(u) = -|u| - 2 ln(1 + e^{-|u|})
                let t = coef[j] - a - two * T::ln_1p_unit(e, fma);
                terms[j] = t;
                expu[j] = e;
                lp[j] = lp[j].max(t);
            }
        }
        // lp holds the largest term; add ln sum_k e^{t_k - top}, the sum in [1, K].
        let sum = &mut self.sum[..d];
        sum.fill(T::zero());
        for i in 0..self.components {
            let terms = &self.terms[i * d..(i + 1) * d];
            for j in 0..d {
                sum[j] += T::exp_nonpositive(terms[j] - lp[j], fma);
            }
        }
        for j in 0..d {
            let top = lp[j];
            let v = top + T::ln_normal(sum[j], fma);
            // A non-finite latent: the density of an infinite one is 0 (`-inf`), not the
            // NaN of `inf - inf`; a NaN stays NaN.
            lp[j] = if top.is_finite() {
                v
            } else if z[j].is_nan() {
                z[j]
            } else {
                T::neg_infinity()
            };
        }
    }

    /// `sum_j ln p_j(z_j)` of one latent row.
    pub fn log_prob_sum(&mut self, z: &[T]) -> T {
        let d = self.dim;
        crate::simd::vectorized(
            #[inline(always)]
            |fma| {
                self.row_terms(fma, &z[..d]);
                self.lp.iter().fold(T::zero(), |s, &v| s + v)
            },
        )
    }

    /// For the latent rows `z` (`n x D`): writes `scale * d ln p / dz` into `delta` and
    /// `scale` times the sum over rows of the parameters' gradient into `grad` (`D x 3K`,
    /// overwritten). Allocates nothing.
    pub fn score_and_gradient(&mut self, z: &[T], scale: T, delta: &mut [T], grad: &mut [T]) {
        let (d, k) = (self.dim, self.components);
        assert_eq!(grad.len(), d * 3 * k, "mixture gradient");
        let n = z.len() / d;
        let kd = k * d;
        let mut acc = core::mem::take(&mut self.acc);
        acc.fill(T::zero());
        crate::simd::vectorized(
            #[inline(always)]
            |fma| {
                for row in 0..n {
                    let z = &z[row * d..(row + 1) * d];
                    let out = &mut delta[row * d..(row + 1) * d];
                    self.row_terms(fma, z);
                    out.fill(T::zero());
                    for i in 0..k {
                        let r = i * d..(i + 1) * d;
                        let (loc, inv) = (&self.loc[r.clone()], &self.inv_scale[r.clone()]);
                        let (terms, expu) = (&self.terms[r.clone()], &self.expu[r.clone()]);
                        let w = &self.weight[r];
                        let (g_loc, rest) = acc[i * d..].split_at_mut(kd);
                        let (g_ls, rest) = rest.split_at_mut(kd);
                        let g_logit = &mut rest[..d];
                        let (g_loc, g_ls) = (&mut g_loc[..d], &mut g_ls[..d]);
                        for j in 0..d {
                            let resp = T::exp_nonpositive(terms[j] - self.lp[j], fma);
                            let u = (z[j] - loc[j]) * inv[j];
                            // tanh(u / 2) = sign(u) (1 - e^{-|u|}) / (1 + e^{-|u|})
                            let e = expu[j];
                            let th = (T::one() - e) / (T::one() + e);
                            let t = if u < T::zero() { -th } else { th };
                            let rts = resp * t * inv[j];
                            out[j] -= rts;
                            g_loc[j] += rts;
                            g_ls[j] += resp * (u * t - T::one());
                            g_logit[j] += resp - w[j];
                        }
                    }
                    for o in out.iter_mut() {
                        *o *= scale;
                    }
                }
            },
        );
        // acc holds locations, log-scales and logits, each K x D: into D x 3K.
        for j in 0..d {
            for part in 0..3 {
                for i in 0..k {
                    grad[j * 3 * k + part * k + i] = scale * acc[part * kd + i * d + j];
                }
            }
        }
        self.acc = acc;
    }

    /// Draws one latent row: a component per unit by its weight, then a logistic draw.
    pub fn sample_row<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut [T]) {
        let (d, k) = (self.dim, self.components);
        for (j, o) in out.iter_mut().enumerate().take(d) {
            let mut pick: f64 = rng.random();
            let mut i = 0;
            while i + 1 < k {
                pick -= self.weight[i * d + j].to_f64c();
                if pick < 0.0 {
                    break;
                }
                i += 1;
            }
            let u: f64 = rng
                .random::<f64>()
                .clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
            let at = i * d + j;
            let s = T::one() / self.inv_scale[at];
            *o = self.loc[at] + s * c::<T>((u / (1.0 - u)).ln());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn params(d: usize, k: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut p = vec![0.0; d * 3 * k];
        for unit in p.chunks_exact_mut(3 * k) {
            set_start(unit, k);
            for v in unit.iter_mut() {
                *v += 0.4 * (rng.random::<f64>() - 0.5);
            }
        }
        p
    }

    #[test]
    fn the_start_has_unit_variance_and_densities_integrate_to_one() {
        for k in [1, 2, 3, 5] {
            let mut unit = vec![0.0; 3 * k];
            set_start(&mut unit, k);
            let mut m = Mixture::from_params(&unit, 1, k);
            let h = 1e-3;
            let (mut mass, mut var) = (0.0, 0.0);
            for i in -40_000..=40_000 {
                let z = i as f64 * h;
                let p = m.log_prob_sum(&[z]).exp() * h;
                mass += p;
                var += p * z * z;
            }
            assert!((mass - 1.0).abs() < 1e-6, "K = {k}: mass {mass}");
            assert!((var - 1.0).abs() < 1e-6, "K = {k}: variance {var}");
        }
        let p = params(1, 4, 3);
        let mut m = Mixture::from_params(&p, 1, 4);
        let mass: f64 = (-60_000..=60_000)
            .map(|i| m.log_prob_sum(&[i as f64 * 1e-3]).exp() * 1e-3)
            .sum();
        assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
    }

    #[test]
    fn score_and_gradient_equal_finite_differences() {
        let (d, k, n) = (3, 4, 5);
        let p = params(d, k, 7);
        let mut rng = StdRng::seed_from_u64(1);
        let z: Vec<f64> = (0..n * d)
            .map(|_| 3.0 * (rng.random::<f64>() - 0.5))
            .collect();
        let total = |p: &[f64], z: &[f64]| {
            let mut m = Mixture::from_params(p, d, k);
            z.chunks_exact(d).map(|r| m.log_prob_sum(r)).sum::<f64>()
        };
        let mut m = Mixture::from_params(&p, d, k);
        let (mut delta, mut grad) = (vec![0.0; n * d], vec![0.0; d * 3 * k]);
        m.score_and_gradient(&z, 1.0, &mut delta, &mut grad);
        let h = 1e-6;
        for e in 0..z.len() {
            let (mut a, mut b) = (z.clone(), z.clone());
            a[e] += h;
            b[e] -= h;
            let fd = (total(&p, &a) - total(&p, &b)) / (2.0 * h);
            assert!(
                (fd - delta[e]).abs() < 1e-7,
                "score {e}: {fd} vs {}",
                delta[e]
            );
        }
        for e in 0..p.len() {
            let (mut a, mut b) = (p.clone(), p.clone());
            a[e] += h;
            b[e] -= h;
            let fd = (total(&a, &z) - total(&b, &z)) / (2.0 * h);
            assert!(
                (fd - grad[e]).abs() < 1e-7,
                "parameter {e}: {fd} vs {}",
                grad[e]
            );
        }
    }

    #[test]
    fn non_finite_latents_have_zero_or_nan_density() {
        let p = params(2, 3, 5);
        let mut m = Mixture::from_params(&p, 2, 3);
        assert_eq!(m.log_prob_sum(&[f64::INFINITY, 0.0]), f64::NEG_INFINITY);
        assert_eq!(m.log_prob_sum(&[0.3, f64::NEG_INFINITY]), f64::NEG_INFINITY);
        assert!(m.log_prob_sum(&[f64::NAN, 0.0]).is_nan());
        assert!(m.log_prob_sum(&[1e30, -1e30]).is_finite());
    }

    #[test]
    fn samples_follow_the_density() {
        // The mean and the mass below a few points, against numerical integration.
        let p = params(2, 3, 11);
        let m = Mixture::from_params(&p, 2, 3);
        let mut rng = StdRng::seed_from_u64(2);
        let n = 200_000;
        let mut row = [0.0; 2];
        let mut draws = [Vec::with_capacity(n), Vec::with_capacity(n)];
        for _ in 0..n {
            m.sample_row(&mut rng, &mut row);
            draws[0].push(row[0]);
            draws[1].push(row[1]);
        }
        for (j, xs) in draws.iter().enumerate() {
            let mut unit = Mixture::from_params(&p[j * 9..(j + 1) * 9], 1, 3);
            for cut in [-1.0, 0.0, 0.7] {
                let want: f64 = (-40_000..)
                    .map(|i| i as f64 * 1e-3)
                    .take_while(|&z| z < cut)
                    .map(|z| unit.log_prob_sum(&[z]).exp() * 1e-3)
                    .sum();
                let got = xs.iter().filter(|&&x| x < cut).count() as f64 / n as f64;
                // Four standard errors of a binomial proportion.
                let tol = 4.0 * (want * (1.0 - want) / n as f64).sqrt() + 1e-3;
                assert!(
                    (got - want).abs() < tol,
                    "unit {j} below {cut}: {got} vs {want}"
                );
            }
        }
    }
}

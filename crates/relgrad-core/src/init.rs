//! Starting points for training.
//!
//! - [`Init::Orthogonal`]: Haar-random orthogonal weights from a seed, zero biases (the
//!   paper's choice).
//! - [`Init::Identity`]: identity weights, zero biases.
//! - [`Init::DataDependent`]: a start fitted to the training data, layer by layer: each
//!   hidden layer whitens what arrives (full covariance), then scales and shifts it; the
//!   last layer whitens what arrives, which undoes what the hidden layers did to the mean
//!   and covariance. With `shift: Some(c)` every hidden layer's whitened input is centred
//!   at `c` with unit scale (the default, `c = 0`, puts the activations' curvature where
//!   the data are; training from it works best, but the start falls below the best
//!   Gaussian as layers are added: on the digits about 2 nats per row at 2 layers, 45 at
//!   4). With `shift: None`, each hidden layer's input stays centred at the largest scale
//!   (from a small grid) whose change in Gaussian log-likelihood (the layer's
//!   log-Jacobian plus the best Gaussian's log-likelihood of its output, minus that of
//!   its input) is within an equal share of [`START_BUDGET`] of zero and whose slope
//!   varies at most [`MAX_SLOPE_RATIO`]-fold (compounded over the hidden layers) within
//!   [`SAMPLE_REACH`] standard deviations; an activation that no scale linearises (the
//!   leaky ReLU) is shifted instead, by the smallest shift that is. That start is within
//!   half a nat per row of the best Gaussian at any depth and its samples have the data's
//!   covariance, but it is nearly linear, and the default optimizer does not get away
//!   from it (on the digits its validation likelihood never improves on epoch 0): it is
//!   an option, not the default.
//!
//!   With learnable activations (splines, which start at the identity) every hidden
//!   layer's whitening is followed by a random rotation drawn from [`ROTATION_SEED`]: the
//!   start is then exactly the best Gaussian (the network is affine), and the layers mix
//!   the coordinates that the splines act on.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::activation::Activation;
use crate::backend::{Backend, Trans};
use crate::collective::{Alone, Collective, Shard};
use crate::density::BaseDensity;
use crate::error::{Error, Result};
use crate::gaussian::Gaussian;
use crate::linalg::{lower_inverse, random_orthogonal};
use crate::matrix::{Mat, MatRef};
use crate::mlp::InvertibleMlp;
use crate::scalar::Scalar;

/// How to initialise a model's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Random orthogonal weights from a seed, zero biases.
    Orthogonal {
        /// The random seed.
        seed: u64,
    },
    /// Identity weights, zero biases.
    Identity,
    /// Whitening start fitted to the training data (see the module docs).
    DataDependent {
        /// Where the activations' whitened inputs are centred (larger is more nearly
        /// linear); `None` chooses a scale and shift per layer.
        shift: Option<f64>,
    },
}

impl Default for Init {
    fn default() -> Self {
        Init::DataDependent {
            shift: Some(DEFAULT_SHIFT),
        }
    }
}

/// The shift of `Init::default()` (the fit pipeline's default start uses 0, which
/// trains better on the digits).
pub const DEFAULT_SHIFT: f64 = 1.0;

/// The scales a centred, whitened hidden-layer input is tried at (with `shift: None`),
/// largest first: a smaller scale is more nearly linear.
pub const CANDIDATE_SCALES: [f64; 8] = [1.0, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01, 0.005];
/// The shifts tried, at scale 1, when no centred scale is close enough to linear (an
/// activation that no scale linearises, such as the leaky ReLU), smallest first.
pub const CANDIDATE_SHIFTS: [f64; 4] = [1.0, 2.0, 4.0, 8.0];
/// The most a start may lose (or gain) against the best Gaussian over all its hidden
/// layers, in nats per row, with `shift: None`; each hidden layer gets an equal share.
pub const START_BUDGET: f64 = 0.5;
/// The most the activation's slope may vary (largest over smallest), compounded over all
/// hidden layers (each gets an equal share of the logarithm), where a hidden layer's
/// whitened input lies within [`SAMPLE_REACH`] standard deviations: nearly linear where
/// the start's samples land, so that they keep the data's spread.
pub const MAX_SLOPE_RATIO: f64 = 2.0;
/// How many standard deviations of a whitened input the slope condition covers.
pub const SAMPLE_REACH: f64 = 6.0;

/// The architecture of a model, without its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Architecture {
    /// Dimension `D`.
    pub dim: usize,
    /// Number of layers `L >= 1`.
    pub n_layers: usize,
    /// The activation between layers.
    pub activation: Activation,
    /// The base density.
    pub base: BaseDensity,
    /// Whether layers have biases.
    pub use_bias: bool,
}

impl Init {
    /// Builds a model. [`Init::DataDependent`] needs the training data (at least two rows);
    /// the others ignore it.
    pub fn build<T: Scalar, B: Backend<T>>(
        &self,
        arch: Architecture,
        backend: &B,
        data: Option<MatRef<'_, T>>,
    ) -> Result<InvertibleMlp<T>> {
        let shard = Shard::whole(data.map_or(0, |x| x.rows()));
        self.build_distributed(arch, backend, data, shard, &Alone)
    }

    /// [`Init::build`] in one process of the group `comm` (data-parallel training): `data`
    /// holds this process's rows, `shard` says which rows of the training set they are.
    /// Every process gets the same model, the one [`Init::build`] fits to all the rows
    /// (up to rounding).
    pub fn build_distributed<T: Scalar, B: Backend<T>, C: Collective>(
        &self,
        arch: Architecture,
        backend: &B,
        data: Option<MatRef<'_, T>>,
        shard: Shard,
        comm: &C,
    ) -> Result<InvertibleMlp<T>> {
        let mut model = InvertibleMlp::identity(
            arch.dim,
            arch.n_layers,
            arch.activation,
            arch.base,
            arch.use_bias,
        )?;
        match *self {
            Init::Identity => {}
            Init::Orthogonal { seed } => {
                let mut rng = StdRng::seed_from_u64(seed);
                for layer in model.layers_mut() {
                    layer.weight = random_orthogonal(arch.dim, &mut rng).cast();
                }
            }
            Init::DataDependent { shift } => {
                let x = data.ok_or_else(|| {
                    Error::InvalidConfig(
                        "the data-dependent initialisation needs training data".into(),
                    )
                })?;
                if x.cols() != arch.dim {
                    return Err(Error::DimensionMismatch {
                        expected: arch.dim,
                        found: x.cols(),
                    });
                }
                if x.rows() != shard.len {
                    return Err(Error::InvalidConfig(format!(
                        "{} rows given for a shard of {}",
                        x.rows(),
                        shard.len
                    )));
                }
                let shift = if arch.use_bias { shift } else { Some(0.0) };
                data_dependent(&mut model, backend, x, shard, shift, comm)?;
            }
        }
        Ok(model)
    }
}

/// The seed of the rotations that follow each hidden layer's whitening in the
/// data-dependent start of a model with learnable activations (fixed, so that the start
/// depends on the data alone, as with fixed activations).
pub const ROTATION_SEED: u64 = 0x5_91AE;

/// Rows used to fit the data-dependent start (a prefix of the data is enough).
const INIT_MAX_ROWS: usize = 50_000;

fn whitening<T: Scalar, B: Backend<T>, C: Collective>(
    backend: &B,
    x: MatRef<'_, T>,
    comm: &C,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let g = Gaussian::fit_across(backend, x, comm)?;
    // cov = L L^T, so x L^{-T} has identity covariance.
    Ok((g.mean, lower_inverse(&g.chol).transpose()))
}

/// Rows used to choose a layer's scale and shift: enough for a stable covariance.
fn selection_rows(n: usize, d: usize) -> usize {
    n.min(2000.max(4 * d))
}

/// The best Gaussian's mean log-likelihood of the rows of `y` (of every process).
fn gaussian_ll<T: Scalar, B: Backend<T>, C: Collective>(
    backend: &B,
    y: MatRef<'_, T>,
    comm: &C,
) -> Result<f64> {
    Ok(Gaussian::fit_across(backend, y, comm)?.fitted_mean_log_likelihood())
}

/// A hidden layer's change in Gaussian log-likelihood on whitened rows `z` when they
/// are placed at scale `s` and shift `c`: `LL_G(sigma(s z + c)) + D ln s + mean sum
/// ln sigma'(s z + c) - LL_G(z)` (a linear activation gives exactly 0). `y` is scratch
/// of `z`'s shape; `ll_z` is `LL_G(z)`; `rows` counts the rows of every process.
#[allow(clippy::too_many_arguments)]
fn placement_gain<T: Scalar, B: Backend<T>, C: Collective>(
    backend: &B,
    act: crate::activation::Activation,
    z: MatRef<'_, T>,
    (s, c): (f64, f64),
    y: &mut Mat<T>,
    ll_z: f64,
    comm: &C,
    rows: usize,
) -> Result<f64> {
    let (n, d) = (z.rows(), z.cols());
    let mut log_jac = 0.0f64;
    for i in 0..n {
        for (o, &v) in y.row_mut(i).iter_mut().zip(z.row(i)) {
            let (h, dh, _) = act.fused(T::from_f64c(s * v.to_f64c() + c));
            *o = h;
            log_jac += dh.to_f64c().ln();
        }
    }
    let mut log_jac = [log_jac];
    comm.sum_in_place(&mut log_jac);
    Ok(
        gaussian_ll(backend, y.as_ref(), comm)? + d as f64 * s.ln() + log_jac[0] / rows as f64
            - ll_z,
    )
}

/// The activation's largest over smallest slope for inputs `c + s t`, `|t| <=`
/// [`SAMPLE_REACH`] (on a fine grid).
fn slope_ratio(act: crate::activation::Activation, (s, c): (f64, f64)) -> f64 {
    let (lo, hi) = (-200..=200)
        .map(|k| act.derivative(c + s * SAMPLE_REACH * k as f64 / 200.0))
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    hi / lo
}

/// The placement `(scale, shift)` of a hidden layer's whitened input: the largest
/// centred scale whose gain is within `budget` nats of 0 and whose slope varies at most
/// `max_ratio`-fold (nearly linear on these rows and where samples land, so the
/// start stays at the Gaussian and its samples keep the data's spread, while
/// keeping as much of the activation's curvature as the budget allows, and the next
/// layer's input centred, which keeps its gradient well conditioned); failing that, the
/// smallest shift that is; failing that, the most nearly linear candidate.
/// `rows` counts the rows of `z` of every process of `comm`.
fn choose_placement<T: Scalar, B: Backend<T>, C: Collective>(
    backend: &B,
    act: crate::activation::Activation,
    z: MatRef<'_, T>,
    (budget, max_ratio): (f64, f64),
    comm: &C,
    rows: usize,
) -> Result<(f64, f64)> {
    let mut y = Mat::<T>::zeros(z.rows(), z.cols());
    let ll_z = gaussian_ll(backend, z, comm)?;
    let candidates = CANDIDATE_SCALES
        .iter()
        .map(|&s| (s, 0.0))
        .chain(CANDIDATE_SHIFTS.iter().map(|&c| (1.0, c)));
    let mut most_linear = (
        f64::INFINITY,
        (CANDIDATE_SCALES[CANDIDATE_SCALES.len() - 1], 0.0),
    );
    for p in candidates {
        let gain = placement_gain(backend, act, z, p, &mut y, ll_z, comm, rows)?;
        let ratio = slope_ratio(act, p);
        if gain.abs() <= budget && ratio <= max_ratio {
            return Ok(p);
        }
        if ratio < most_linear.0 {
            most_linear = (ratio, p);
        }
    }
    Ok(most_linear.1)
}

/// The start of the module docs, fitted to the training set's first rows: `x` holds this
/// process's rows, `shard` says which rows of the set they are.
fn data_dependent<T: Scalar, B: Backend<T>, C: Collective>(
    model: &mut InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    shard: Shard,
    shift: Option<f64>,
    comm: &C,
) -> Result<()> {
    let d = model.dim();
    let n_layers = model.n_layers();
    let act = model.activation();
    // The set's first rows, and which of them this process holds.
    let total = shard.total.min(INIT_MAX_ROWS);
    let x = x.top(shard.local_prefix(INIT_MAX_ROWS));
    let prefix = Shard {
        offset: shard.offset,
        len: x.rows(),
        total,
    };
    let n = x.rows();
    let use_bias = model.use_bias();
    let mut h = x.to_owned();
    let mut y = Mat::<T>::zeros(n, d);
    let mut rotations = StdRng::seed_from_u64(ROTATION_SEED);
    for l in 0..n_layers {
        let last = l + 1 == n_layers;
        let (mean, mut white) = whitening(backend, h.as_ref(), comm)?;
        if act.is_learnable() && !last {
            // Learnable activations start at the identity, so every layer after the
            // first would whiten white rows (W = I): a rotation mixes the coordinates
            // that the next splines act on, as between the elementwise maps of
            // iterative Gaussianization.
            let q = random_orthogonal(d, &mut rotations);
            white = Mat::from_fn(d, d, |i, j| {
                (0..d).map(|k| white.get(i, k) * q.get(k, j)).sum()
            });
        }
        let (scale, shift) = match (last, shift) {
            (true, _) => (1.0, 0.0),
            (false, Some(c)) => (1.0, c),
            (false, None) => {
                // The whitened rows of a prefix, in the layer's precision.
                let k = selection_rows(total, d);
                let z = Mat::<T>::from_fn(prefix.local_prefix(k), d, |i, j| {
                    let v: f64 = (0..d)
                        .map(|m| (h.get(i, m).to_f64c() - mean[m]) * white.get(m, j))
                        .sum();
                    T::from_f64c(v)
                });
                // Each hidden layer gets an equal share of the budgets.
                let hidden = (n_layers - 1) as f64;
                let (budget, ratio) = (START_BUDGET / hidden, MAX_SLOPE_RATIO.powf(1.0 / hidden));
                choose_placement(backend, act, z.as_ref(), (budget, ratio), comm, k)?
            }
        };
        let layer = &mut model.layers_mut()[l];
        layer.weight = Mat::from_fn(d, d, |i, j| T::from_f64c(scale * white.get(i, j)));
        if use_bias {
            for j in 0..d {
                let mw: f64 = (0..d).map(|i| mean[i] * white.get(i, j)).sum();
                layer.bias[j] = T::from_f64c(shift - scale * mw);
            }
        }
        if last {
            break;
        }
        let layer = &model.layers()[l];
        backend.gemm(
            T::one(),
            h.as_ref(),
            Trans::No,
            layer.weight.as_ref(),
            Trans::No,
            T::zero(),
            y.as_mut(),
        );
        for i in 0..n {
            for (v, &b) in y.row_mut(i).iter_mut().zip(&layer.bias) {
                *v = act.eval(*v + b);
            }
        }
        core::mem::swap(&mut h, &mut y);
    }
    if !model.is_finite() {
        return Err(Error::NotEnoughData(
            "the data-dependent initialisation produced non-finite weights".into(),
        ));
    }
    Ok(())
}

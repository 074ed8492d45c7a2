//! Starting points for training.
//!
//! - [`Init::Orthogonal`]: Haar-random orthogonal weights from a seed, zero biases (the
//!   paper's choice).
//! - [`Init::Identity`]: identity weights, zero biases.
//! - [`Init::DataDependent`]: starts the network at (nearly) the best full-covariance
//!   Gaussian of the training data. The first layer whitens the data and shifts it by
//!   `shift`, so the activations work in a shifted, mildly nonlinear range; inner layers
//!   re-standardise each coordinate around the same shift; the last layer whitens what
//!   arrives, which also undoes the shift. Before any training the model already scores
//!   about as well as the Gaussian, often better, and training only improves on it.

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::activation::Activation;
use crate::backend::{Backend, Trans};
use crate::density::BaseDensity;
use crate::error::{Error, Result};
use crate::linalg::{cholesky_ridged, lower_inverse, mean_cov, random_orthogonal};
use crate::matrix::{Mat, MatRef};
use crate::mlp::{InvertibleMlp, Layer};
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
        /// Where the activations' inputs are centred; larger is more nearly linear.
        shift: f64,
    },
}

impl Default for Init {
    fn default() -> Self {
        Init::DataDependent {
            shift: DEFAULT_SHIFT,
        }
    }
}

/// The default shift of [`Init::DataDependent`].
pub const DEFAULT_SHIFT: f64 = 1.0;

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
                data_dependent(
                    &mut model,
                    backend,
                    x,
                    if arch.use_bias { shift } else { 0.0 },
                )?;
            }
        }
        Ok(model)
    }
}

/// Rows used to fit the data-dependent start (a prefix of the data is enough).
const INIT_MAX_ROWS: usize = 50_000;

fn whitening<T: Scalar, B: Backend<T>>(
    backend: &B,
    x: MatRef<'_, T>,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let (mean, cov) = mean_cov(backend, x)?;
    let (chol, _) = cholesky_ridged(&cov, 1e-9)?;
    // cov = L L^T, so x L^{-T} has identity covariance.
    Ok((mean, lower_inverse(&chol).transpose()))
}

fn data_dependent<T: Scalar, B: Backend<T>>(
    model: &mut InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    shift: f64,
) -> Result<()> {
    let d = model.dim();
    let n_layers = model.n_layers();
    let act = model.activation();
    let x = x.top(x.rows().min(INIT_MAX_ROWS));
    let n = x.rows();
    let use_bias = model.use_bias();
    let set = |layer: &mut Layer<T>, w: &Mat<f64>, mean: &[f64], shift: f64| {
        layer.weight = w.cast();
        if use_bias {
            for j in 0..d {
                let mw: f64 = (0..d).map(|i| mean[i] * w.get(i, j)).sum();
                layer.bias[j] = T::from_f64c(shift - mw);
            }
        }
    };
    let mut h = x.to_owned();
    let mut y = Mat::<T>::zeros(n, d);
    for l in 0..n_layers {
        let last = l + 1 == n_layers;
        let (mean, w) = if l == 0 || last {
            whitening(backend, h.as_ref())?
        } else {
            // Re-standardise each coordinate around the shift (a diagonal layer).
            let (mean, cov) = mean_cov(backend, h.as_ref())?;
            let w = Mat::from_fn(d, d, |i, j| {
                if i == j {
                    1.0 / cov.get(i, i).max(1e-12).sqrt()
                } else {
                    0.0
                }
            });
            (mean, w)
        };
        let layer = &mut model.layers_mut()[l];
        set(layer, &w, &mean, if last { 0.0 } else { shift });
        if !use_bias && !last {
            // Without biases the mean cannot be removed; keep the whitening's scale only.
            layer.bias.fill(T::zero());
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

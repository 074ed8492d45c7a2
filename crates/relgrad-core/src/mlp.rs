//! The invertible fully connected network and the user's verbs: `forward`, `log_prob`,
//! `inverse`, `sample`.
//!
//! With `H_0 = X`, layer `l` computes `Y_l = H_{l-1} W_l + 1 b_l^T`, then
//! `H_l = sigma(Y_l)` for every layer but the last, whose output `Z = Y_L` is the latent.
//! The exact per-sample log-likelihood is
//! `sum_j ln p(z_j) + sum_{l<L} sum_j ln sigma'(y_{l,j}) + sum_l ln|det W_l|`.
//!
//! With the learnable activation [`Activation::Spline`], `sigma` is one spline per unit
//! and hidden layer, whose parameters the model holds ([`InvertibleMlp::splines`]); with
//! the learnable base [`BaseDensity::Mixture`], `ln p(z_j)` is a mixture of logistics
//! per coordinate, whose parameters it holds too ([`InvertibleMlp::base_params`]).

use rand::Rng;

use crate::activation::Activation;
use crate::backend::{Backend, LogDet, Trans};
use crate::density::BaseDensity;
use crate::error::{Error, Result};
use crate::matrix::{Mat, MatRef};
use crate::mixture::Mixture;
use crate::scalar::Scalar;
use crate::spline::{params_per_unit, set_identity, Knots};

/// One square affine layer, applied as `y = x W + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer<T> {
    /// The `D x D` weight, row-major.
    pub weight: Mat<T>,
    /// The length-`D` bias (all zeros, and never trained, when the model has no biases).
    pub bias: Vec<T>,
}

/// An invertible multilayer perceptron: `L >= 1` square layers of dimension `D`,
/// an activation between layers and none after the last, and a factorised base density.
#[derive(Clone, Debug, PartialEq)]
pub struct InvertibleMlp<T> {
    dim: usize,
    layers: Vec<Layer<T>>,
    activation: Activation,
    /// With a spline activation, one `D x (3K - 1)` parameter matrix per hidden layer
    /// (see [`crate::spline`]); empty otherwise.
    splines: Vec<Mat<T>>,
    base: BaseDensity,
    /// With a mixture base, its `D x 3K` parameters (see [`crate::mixture`]).
    base_params: Option<Mat<T>>,
    use_bias: bool,
}

/// The most rows evaluated at a time by the evaluation verbs (bounds their memory).
pub const EVAL_CHUNK: usize = 1024;
/// The fewest rows evaluated at a time (when there are as many).
const EVAL_CHUNK_MIN: usize = 128;

impl<T: Scalar> InvertibleMlp<T> {
    /// A model from explicit layers. Every weight must be `D x D` and every bias of
    /// length `D`; with `use_bias == false` the biases must be zero.
    pub fn from_layers(
        layers: Vec<Layer<T>>,
        activation: Activation,
        base: BaseDensity,
        use_bias: bool,
    ) -> Result<Self> {
        let dim = layers
            .first()
            .map(|l| l.weight.rows())
            .ok_or_else(|| Error::InvalidConfig("a model needs at least one layer".into()))?;
        if dim == 0 {
            return Err(Error::InvalidConfig(
                "the dimension must be at least 1".into(),
            ));
        }
        activation.validate().map_err(Error::InvalidConfig)?;
        base.validate().map_err(Error::InvalidConfig)?;
        for (i, l) in layers.iter().enumerate() {
            if l.weight.rows() != dim || l.weight.cols() != dim || l.bias.len() != dim {
                return Err(Error::InvalidConfig(format!(
                    "layer {i}: weight is {}x{} and bias has length {}, expected {dim}x{dim} and {dim}",
                    l.weight.rows(),
                    l.weight.cols(),
                    l.bias.len()
                )));
            }
            if !use_bias && l.bias.iter().any(|&b| b != T::zero()) {
                return Err(Error::InvalidConfig(format!(
                    "layer {i} has a non-zero bias but the model has no biases"
                )));
            }
        }
        let splines = match activation {
            Activation::Spline { bins, .. } => (1..layers.len())
                .map(|_| {
                    let mut m = Mat::zeros(dim, params_per_unit(bins));
                    set_identity(m.as_mut_slice(), bins);
                    m
                })
                .collect(),
            _ => Vec::new(),
        };
        let base_params = base.components().map(|k| {
            let mut m = Mat::zeros(dim, crate::mixture::params_per_unit(k));
            for unit in m.as_mut_slice().chunks_exact_mut(3 * k) {
                crate::mixture::set_start(unit, k);
            }
            m
        });
        Ok(Self {
            dim,
            layers,
            activation,
            splines,
            base,
            base_params,
            use_bias,
        })
    }

    /// Replaces the mixture base's parameters (`D x 3K`, as
    /// [`InvertibleMlp::base_params`]); an error if the base is not a mixture or the shape
    /// differs.
    pub fn with_base_params(mut self, params: Mat<T>) -> Result<Self> {
        let Some(k) = self.base.components() else {
            return Err(Error::InvalidConfig(
                "base parameters given for a model whose base density is not a mixture".into(),
            ));
        };
        let cols = crate::mixture::params_per_unit(k);
        if params.rows() != self.dim || params.cols() != cols {
            return Err(Error::InvalidConfig(format!(
                "the base parameters are {}x{}, expected {}x{cols} ({k} components)",
                params.rows(),
                params.cols(),
                self.dim
            )));
        }
        self.base_params = Some(params);
        Ok(self)
    }

    /// Replaces the spline parameters (one `D x (3K - 1)` matrix per hidden layer, as
    /// [`InvertibleMlp::splines`]); an error if the model's activation is not a spline or
    /// a shape differs.
    pub fn with_splines(mut self, splines: Vec<Mat<T>>) -> Result<Self> {
        let Activation::Spline { bins, .. } = self.activation else {
            return Err(Error::InvalidConfig(
                "spline parameters given for a model whose activation is not a spline".into(),
            ));
        };
        let (want, cols) = (self.layers.len() - 1, params_per_unit(bins));
        if splines.len() != want {
            return Err(Error::InvalidConfig(format!(
                "{} spline parameter matrices given, the model has {want} hidden layers",
                splines.len()
            )));
        }
        for (l, m) in splines.iter().enumerate() {
            if m.rows() != self.dim || m.cols() != cols {
                return Err(Error::InvalidConfig(format!(
                    "hidden layer {l}: spline parameters are {}x{}, expected {}x{cols} ({bins} bins)",
                    m.rows(),
                    m.cols(),
                    self.dim
                )));
            }
        }
        self.splines = splines;
        Ok(self)
    }

    /// A model whose layers are all the identity with zero bias (see [`crate::init`] for
    /// the useful starting points).
    pub fn identity(
        dim: usize,
        n_layers: usize,
        activation: Activation,
        base: BaseDensity,
        use_bias: bool,
    ) -> Result<Self> {
        if n_layers == 0 {
            return Err(Error::InvalidConfig(
                "a model needs at least one layer".into(),
            ));
        }
        let layers = (0..n_layers)
            .map(|_| Layer {
                weight: Mat::identity(dim),
                bias: vec![T::zero(); dim],
            })
            .collect();
        Self::from_layers(layers, activation, base, use_bias)
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The number of layers `L`.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }
    /// The layers.
    pub fn layers(&self) -> &[Layer<T>] {
        &self.layers
    }
    /// The layers, mutably (shapes must be kept).
    pub fn layers_mut(&mut self) -> &mut [Layer<T>] {
        &mut self.layers
    }
    /// The activation between layers.
    pub fn activation(&self) -> Activation {
        self.activation
    }
    /// The spline parameters, one `D x (3K - 1)` matrix per hidden layer (each row one
    /// unit's `K` width logits, `K` height logits and `K - 1` slope parameters, see
    /// [`crate::spline`]); empty unless the activation is [`Activation::Spline`].
    pub fn splines(&self) -> &[Mat<T>] {
        &self.splines
    }
    /// The spline parameters, mutably (shapes must be kept).
    pub fn splines_mut(&mut self) -> &mut [Mat<T>] {
        &mut self.splines
    }
    /// The knots of hidden layer `l`'s splines (allocates; `None` without splines).
    pub fn knots(&self, l: usize) -> Option<Knots<T>> {
        let Activation::Spline { bins, bound } = self.activation else {
            return None;
        };
        let mut k = Knots::new(self.dim, bins, bound);
        k.update(self.splines[l].as_slice());
        Some(k)
    }
    /// The base density of the latents.
    pub fn base(&self) -> BaseDensity {
        self.base
    }
    /// The mixture base's parameters, `D x 3K` (each row one unit's `K` locations, `K`
    /// log-scales and `K` weight logits, see [`crate::mixture`]); `None` for a fixed base.
    pub fn base_params(&self) -> Option<&Mat<T>> {
        self.base_params.as_ref()
    }
    /// The mixture base's parameters, mutably (the shape must be kept).
    pub fn base_params_mut(&mut self) -> Option<&mut Mat<T>> {
        self.base_params.as_mut()
    }
    /// The mixture base's evaluation tables (allocates; `None` for a fixed base).
    pub fn mixture(&self) -> Option<Mixture<T>> {
        let (p, k) = (self.base_params.as_ref()?, self.base.components()?);
        Some(Mixture::from_params(p.as_slice(), self.dim, k))
    }
    /// Whether the layers have (trainable) biases.
    pub fn use_bias(&self) -> bool {
        self.use_bias
    }
    /// The number of trainable scalars.
    pub fn n_parameters(&self) -> usize {
        let splines: usize = self.splines.iter().map(|m| m.as_slice().len()).sum();
        let base = self.base_params.as_ref().map_or(0, |m| m.as_slice().len());
        self.layers.len() * self.dim * (self.dim + usize::from(self.use_bias)) + splines + base
    }

    /// Copies every parameter from `other` (same shapes) without allocating.
    pub fn copy_parameters_from(&mut self, other: &Self) {
        for (dst, src) in self.layers.iter_mut().zip(&other.layers) {
            dst.weight
                .as_mut_slice()
                .copy_from_slice(src.weight.as_slice());
            dst.bias.copy_from_slice(&src.bias);
        }
        for (dst, src) in self.splines.iter_mut().zip(&other.splines) {
            dst.as_mut_slice().copy_from_slice(src.as_slice());
        }
        if let (Some(dst), Some(src)) = (&mut self.base_params, &other.base_params) {
            dst.as_mut_slice().copy_from_slice(src.as_slice());
        }
    }

    /// Whether every parameter is finite.
    pub fn is_finite(&self) -> bool {
        self.layers.iter().all(|l| {
            l.weight.as_slice().iter().all(|v| v.is_finite())
                && l.bias.iter().all(|v| v.is_finite())
        }) && self
            .splines
            .iter()
            .chain(&self.base_params)
            .all(|m| m.as_slice().iter().all(|v| v.is_finite()))
    }

    /// Converts the model to another precision.
    pub fn cast<U: Scalar>(&self) -> InvertibleMlp<U> {
        InvertibleMlp {
            dim: self.dim,
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    weight: l.weight.cast(),
                    bias: l.bias.iter().map(|&b| U::from_f64c(b.to_f64c())).collect(),
                })
                .collect(),
            activation: self.activation,
            splines: self.splines.iter().map(|m| m.cast()).collect(),
            base: self.base,
            base_params: self.base_params.as_ref().map(|m| m.cast()),
            use_bias: self.use_bias,
        }
    }

    fn check_dim(&self, cols: usize) -> Result<()> {
        if cols != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                found: cols,
            });
        }
        Ok(())
    }

    /// `ln|det W_l|` (and sign) of every layer, by LU with partial pivoting.
    pub fn log_dets<B: Backend<T>>(&self, backend: &B) -> Vec<LogDet<T>> {
        let mut lu = backend.lu_workspace(self.dim);
        self.layers
            .iter()
            .map(|l| backend.lu_factor(l.weight.as_ref(), &mut lu))
            .collect()
    }

    /// `sum_l ln|det W_l|`, or [`Error::Singular`] naming the first singular layer.
    pub fn log_det_total<B: Backend<T>>(&self, backend: &B) -> Result<T> {
        let mut total = T::zero();
        for (layer, ld) in self.log_dets(backend).into_iter().enumerate() {
            if ld.is_singular() || !ld.log_abs.is_finite() {
                return Err(Error::Singular { layer });
            }
            total += ld.log_abs;
        }
        Ok(total)
    }

    /// Runs rows `x` through layer `l`'s affine map into `out` (same shape).
    fn affine<B: Backend<T>>(&self, backend: &B, l: usize, x: MatRef<'_, T>, out: &mut Mat<T>) {
        let n = x.rows();
        let layer = &self.layers[l];
        let mut o = out.top_mut(n);
        backend.gemm(
            T::one(),
            x,
            Trans::No,
            layer.weight.as_ref(),
            Trans::No,
            T::zero(),
            o.rb_mut(),
        );
        if self.use_bias {
            for i in 0..n {
                for (v, &b) in o.row_mut(i).iter_mut().zip(&layer.bias) {
                    *v += b;
                }
            }
        }
    }

    /// Core of the evaluation verbs: pushes `x` through the network chunk by chunk,
    /// calling `sink(first_row, z_chunk, sum_ln_sigma_prime_per_row)`.
    fn run_forward<B: Backend<T>>(
        &self,
        backend: &B,
        x: MatRef<'_, T>,
        mut sink: impl FnMut(usize, MatRef<'_, T>, &[T]),
    ) -> Result<()> {
        self.check_dim(x.cols())?;
        // About as many rows as the dimension: a chunk's activations then take about as
        // much memory as one weight, so small models stay in cache (at D = 64, 128 rows
        // evaluate 1.25x faster than 1024) and large ones still amortise reading W.
        let chunk = x
            .rows()
            .clamp(1, self.dim.clamp(EVAL_CHUNK_MIN, EVAL_CHUNK));
        let mut a = Mat::zeros(chunk, self.dim);
        let mut b = Mat::zeros(chunk, self.dim);
        let mut logd = vec![T::zero(); chunk];
        let n_layers = self.layers.len();
        let knots: Vec<Knots<T>> = (1..n_layers).filter_map(|l| self.knots(l - 1)).collect();
        let mut start = 0;
        while start < x.rows() {
            let end = (start + chunk).min(x.rows());
            let n = end - start;
            logd[..n].fill(T::zero());
            self.affine(backend, 0, x.rows_range(start, end), &mut a);
            for l in 1..n_layers {
                for (i, acc) in logd[..n].iter_mut().enumerate() {
                    *acc += match knots.get(l - 1) {
                        Some(k) => k.forward_eval(a.row(i), b.row_mut(i)),
                        None => self.activation.forward_eval(a.row(i), b.row_mut(i)),
                    };
                }
                let (src, dst) = (&b, &mut a);
                self.affine(backend, l, src.top(n), dst);
            }
            sink(start, a.top(n), &logd[..n]);
            start = end;
        }
        Ok(())
    }

    /// Maps data to latents, `z = f(x)`, row by row.
    pub fn forward<B: Backend<T>>(&self, backend: &B, x: MatRef<'_, T>) -> Result<Mat<T>> {
        let mut z = Mat::zeros(x.rows(), self.dim);
        self.run_forward(backend, x, |start, zc, _| {
            let (n, d) = (zc.rows(), zc.cols());
            z.as_mut_slice()[start * d..(start + n) * d].copy_from_slice(&zc.as_slice()[..n * d]);
        })?;
        Ok(z)
    }

    /// The exact log-density `ln p(x)` of every row (nats), with LU log-determinants.
    pub fn log_prob<B: Backend<T>>(&self, backend: &B, x: MatRef<'_, T>) -> Result<Vec<T>> {
        let mut out = vec![T::zero(); x.rows()];
        self.log_prob_into(backend, x, &mut out)?;
        Ok(out)
    }

    /// [`InvertibleMlp::log_prob`] into a caller-owned slice of length `x.rows()`.
    pub fn log_prob_into<B: Backend<T>>(
        &self,
        backend: &B,
        x: MatRef<'_, T>,
        out: &mut [T],
    ) -> Result<()> {
        assert_eq!(out.len(), x.rows(), "log_prob_into: output length");
        self.check_dim(x.cols())?;
        let logdet = self.log_det_total(backend)?;
        let base = self.base;
        let mut mixture = self.mixture();
        self.run_forward(backend, x, |start, z, logd| {
            for i in 0..z.rows() {
                let lp = match &mut mixture {
                    Some(m) => m.log_prob_sum(z.row(i)),
                    None => base.log_prob_sum(z.row(i)),
                };
                out[start + i] = lp + logd[i] + logdet;
            }
        })
    }

    /// The mean log-likelihood of the rows of `x` (nats per sample), accumulated in `f64`.
    pub fn mean_log_likelihood<B: Backend<T>>(&self, backend: &B, x: MatRef<'_, T>) -> Result<f64> {
        if x.rows() == 0 {
            return Err(Error::NotEnoughData("no rows to evaluate".into()));
        }
        let lp = self.log_prob(backend, x)?;
        Ok(lp.iter().map(|v| v.to_f64c()).sum::<f64>() / lp.len() as f64)
    }

    /// Maps latents back to data, `x = f^{-1}(z)`: exact up to round-off.
    pub fn inverse<B: Backend<T>>(&self, backend: &B, z: MatRef<'_, T>) -> Result<Mat<T>> {
        self.check_dim(z.cols())?;
        let d = self.dim;
        let mut lu = backend.lu_workspace(d);
        let mut inverses = Vec::with_capacity(self.layers.len());
        for (layer, l) in self.layers.iter().enumerate() {
            let ld = backend.lu_factor(l.weight.as_ref(), &mut lu);
            if ld.is_singular() {
                return Err(Error::Singular { layer });
            }
            let mut inv = Mat::zeros(d, d);
            backend.lu_inverse(&mut lu, inv.as_mut());
            inverses.push(inv);
        }
        let n = z.rows();
        let mut cur = z.to_owned();
        let mut next = Mat::zeros(n, d);
        for l in (0..self.layers.len()).rev() {
            if self.use_bias {
                for i in 0..n {
                    for (v, &b) in cur.row_mut(i).iter_mut().zip(&self.layers[l].bias) {
                        *v -= b;
                    }
                }
            }
            backend.gemm(
                T::one(),
                cur.as_ref(),
                Trans::No,
                inverses[l].as_ref(),
                Trans::No,
                T::zero(),
                next.as_mut(),
            );
            if l > 0 {
                match self.knots(l - 1) {
                    Some(k) => k.inverse_rows(next.as_mut_slice()),
                    None => {
                        for v in next.as_mut_slice() {
                            *v = self.activation.inverse(*v);
                        }
                    }
                }
            }
            core::mem::swap(&mut cur, &mut next);
        }
        Ok(cur)
    }

    /// Draws `n` exact samples: latents from the base density, mapped through the inverse.
    pub fn sample<B: Backend<T>, R: Rng + ?Sized>(
        &self,
        backend: &B,
        n: usize,
        rng: &mut R,
    ) -> Result<Mat<T>> {
        let z = match self.mixture() {
            Some(m) => {
                let mut z = Mat::zeros(n, self.dim);
                for i in 0..n {
                    m.sample_row(rng, z.row_mut(i));
                }
                z
            }
            None => Mat::from_fn(n, self.dim, |_, _| self.base.sample(rng)),
        };
        self.inverse(backend, z.as_ref())
    }
}

//! Preallocated buffers for the training step.
//!
//! A [`Workspace`] is sized once for a model shape and a largest batch; every gradient
//! evaluation after that writes into its buffers and allocates nothing. Smaller batches
//! use a prefix of the rows.

use crate::backend::Backend;
use crate::matrix::Mat;
use crate::mixture::Mixture;
use crate::mlp::InvertibleMlp;
use crate::scalar::Scalar;
use crate::spline::Knots;

/// A gradient (or update direction) for every parameter of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient<T> {
    /// One `D x D` matrix per layer.
    pub weights: Vec<Mat<T>>,
    /// One length-`D` vector per layer (zeros for a model without biases).
    pub biases: Vec<Vec<T>>,
    /// One matrix per hidden layer for a model with spline activations, shaped like
    /// [`InvertibleMlp::splines`]: the ordinary gradient of the mean log-likelihood
    /// (no relative scaling); empty otherwise.
    pub splines: Vec<Mat<T>>,
    /// For a model with a mixture base, the ordinary gradient of its parameters, shaped
    /// like [`InvertibleMlp::base_params`]; `None` otherwise.
    pub base: Option<Mat<T>>,
}

impl<T: Scalar> Gradient<T> {
    /// A zero gradient for `n_layers` layers of dimension `dim`.
    pub fn zeros(dim: usize, n_layers: usize) -> Self {
        Self {
            weights: (0..n_layers).map(|_| Mat::zeros(dim, dim)).collect(),
            biases: (0..n_layers).map(|_| vec![T::zero(); dim]).collect(),
            splines: Vec::new(),
            base: None,
        }
    }

    /// A zero gradient shaped like `model`'s parameters (spline parameters included).
    pub fn for_model(model: &InvertibleMlp<T>) -> Self {
        let mut g = Self::zeros(model.dim(), model.n_layers());
        g.splines = model
            .splines()
            .iter()
            .map(|m| Mat::zeros(m.rows(), m.cols()))
            .collect();
        g.base = model.base_params().map(|m| Mat::zeros(m.rows(), m.cols()));
        g
    }

    /// The elementwise parameters' gradients (the splines', then the mixture base's).
    fn elementwise(&self) -> impl Iterator<Item = &[T]> {
        self.splines.iter().chain(&self.base).map(|m| m.as_slice())
    }

    /// The number of entries, `L (D^2 + D)` plus the spline and base parameters.
    pub fn len(&self) -> usize {
        let w: usize = self.weights.iter().map(|m| m.as_slice().len()).sum();
        let s: usize = self.elementwise().map(<[T]>::len).sum();
        w + s + self.biases.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies every entry into the front of `out` (layer by layer: weights, then biases;
    /// then the spline parameters' gradients, then the mixture base's), one contiguous
    /// buffer for a reduction across processes.
    pub fn pack_into(&self, out: &mut [T]) {
        let mut at = 0;
        for (w, b) in self.weights.iter().zip(&self.biases) {
            for part in [w.as_slice(), &b[..]] {
                out[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
        for part in self.elementwise() {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }

    /// The inverse of [`Gradient::pack_into`].
    pub fn unpack_from(&mut self, src: &[T]) {
        let mut at = 0;
        for (w, b) in self.weights.iter_mut().zip(&mut self.biases) {
            for part in [w.as_mut_slice(), &mut b[..]] {
                let n = part.len();
                part.copy_from_slice(&src[at..at + n]);
                at += n;
            }
        }
        for part in self
            .splines
            .iter_mut()
            .chain(&mut self.base)
            .map(|m| m.as_mut_slice())
        {
            let n = part.len();
            part.copy_from_slice(&src[at..at + n]);
            at += n;
        }
    }

    /// Whether every entry is finite (no infinity, no NaN).
    pub fn is_finite(&self) -> bool {
        let w = self.weights.iter().map(|m| m.as_slice());
        w.chain(self.biases.iter().map(|b| &b[..]))
            .chain(self.elementwise())
            .all(all_finite)
    }
}

/// Buffers for forward and backward passes over batches of up to `capacity` rows.
#[derive(Debug)]
pub struct Workspace<T: Scalar, B: Backend<T>> {
    pub(crate) capacity: usize,
    pub(crate) dim: usize,
    /// Pre-activations `Y_l`, one `capacity x D` matrix per layer.
    pub(crate) y: Vec<Mat<T>>,
    /// Activations `H_l = sigma(Y_l)` for `l < L`.
    pub(crate) h: Vec<Mat<T>>,
    /// `sigma'(Y_l)` for `l < L`.
    pub(crate) dsig: Vec<Mat<T>>,
    /// `sigma''(Y_l) / sigma'(Y_l)` for `l < L`.
    pub(crate) kappa: Vec<Mat<T>>,
    /// The backward signal `Delta_l` and a scratch buffer of the same shape.
    pub(crate) delta: Mat<T>,
    pub(crate) delta_tmp: Mat<T>,
    /// `D x capacity` (for `W Y^T`) or `D x D` (for `Y^T Delta`), whichever is larger.
    pub(crate) prod: Vec<T>,
    /// A per-row vector (`1 + Y b`).
    pub(crate) rowvec: Vec<T>,
    /// The fused step's scratch: for each of up to `MAX_PARTS` threads, four rows of the
    /// direction and `8 x capacity` dot products.
    pub(crate) row: Vec<T>,
    /// The knots of every hidden layer's splines, for a model with spline activations
    /// (derived from its parameters at every forward pass).
    pub(crate) knots: Vec<Knots<T>>,
    /// The mixture base's tables, for a model with a mixture base (derived from its
    /// parameters at every forward pass).
    pub(crate) mixture: Option<Mixture<T>>,
    /// LU workspace and inverse buffer, used by the naive gradient only (made on first use).
    pub(crate) lu: Option<(B::Lu, Mat<T>)>,
    /// The last computed gradient or update direction.
    pub grad: Gradient<T>,
}

impl<T: Scalar, B: Backend<T>> Workspace<T, B> {
    /// Buffers for `model`'s shape and batches of up to `capacity` rows.
    pub fn new(model: &InvertibleMlp<T>, capacity: usize) -> Self {
        let mut ws = Self::with_shape(model.dim(), model.n_layers(), capacity);
        ws.knots = (0..model.splines().len())
            .filter_map(|l| model.knots(l))
            .collect();
        ws.mixture = model.mixture();
        ws.grad = Gradient::for_model(model);
        ws
    }

    /// Buffers for `n_layers` layers of dimension `dim` and batches of up to `capacity` rows,
    /// for a model with a fixed activation and base (a spline model or a mixture base needs
    /// [`Workspace::new`]).
    pub fn with_shape(dim: usize, n_layers: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let m = |k: usize| {
            (0..k)
                .map(|_| Mat::zeros(capacity, dim))
                .collect::<Vec<_>>()
        };
        let inner = n_layers.saturating_sub(1);
        Self {
            capacity,
            dim,
            y: m(n_layers),
            h: m(inner),
            dsig: m(inner),
            kappa: m(inner),
            delta: Mat::zeros(capacity, dim),
            delta_tmp: Mat::zeros(capacity, dim),
            prod: vec![T::zero(); dim * capacity.max(dim)],
            rowvec: vec![T::zero(); capacity],
            row: vec![T::zero(); crate::step::MAX_PARTS * (4 * dim + 8 * capacity)],
            knots: Vec::new(),
            mixture: None,
            lu: None,
            grad: Gradient::zeros(dim, n_layers),
        }
    }

    /// The largest batch this workspace serves.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The latents `Z` of the last batch evaluated (its first `rows` rows are valid).
    pub fn latents(&self) -> &Mat<T> {
        self.y.last().expect("a workspace has at least one layer")
    }

    /// Whether this workspace fits `model` and a batch of `rows` rows.
    pub fn fits(&self, model: &InvertibleMlp<T>, rows: usize) -> bool {
        let splines = model.splines();
        self.dim == model.dim()
            && self.y.len() == model.n_layers()
            && rows <= self.capacity
            && self.knots.len() == splines.len()
            && self.grad.splines.len() == splines.len()
            && self.mixture.as_ref().map(Mixture::components) == model.base().components()
            && self.grad.base.as_ref().map(|m| m.cols()) == model.base_params().map(|m| m.cols())
            && self
                .knots
                .iter()
                .zip(splines)
                .all(|(k, m)| crate::spline::params_per_unit(k.bins()) == m.cols())
    }
}

/// Whether every entry of `v` is finite: `0 x` is 0 for finite `x` and NaN otherwise, so
/// one vectorised sum tells.
pub(crate) fn all_finite<T: Scalar>(v: &[T]) -> bool {
    crate::simd::vectorized(
        #[inline(always)]
        |_| finite_check(v) == T::zero(),
    )
}

/// The sum of `0 x` over `v`, in sixteen independent partial sums so that it vectorises:
/// zero exactly when every entry is finite.
#[inline(always)]
pub(crate) fn finite_check<T: Scalar>(v: &[T]) -> T {
    let mut acc = [T::zero(); 16];
    let chunks = v.chunks_exact(16);
    let mut tail = T::zero();
    for &x in chunks.remainder() {
        tail += x * T::zero();
    }
    for c in chunks {
        for k in 0..16 {
            acc[k] += c[k] * T::zero();
        }
    }
    acc.iter().fold(tail, |s, &a| s + a)
}

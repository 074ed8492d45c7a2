//! The invertible network of a model in the precision it was trained in, and the
//! backends that can run both precisions.

use rand::Rng;
use relgrad_core::{Activation, Backend, BaseDensity, InvertibleMlp, Mat, MatRef, Scalar};

use crate::error::{Error, Result};

/// A backend that computes in both `f32` and `f64` (every relgrad backend does).
pub trait ModelBackend: Backend<f32> + Backend<f64> {}

impl<B: Backend<f32> + Backend<f64>> ModelBackend for B {}

/// The floating-point precision of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Precision {
    /// Single precision (the default for training: twice the throughput).
    #[default]
    F32,
    /// Double precision.
    F64,
}

impl Precision {
    /// `"f32"` or `"f64"`.
    pub fn name(&self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// The precision named by [`Precision::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" => Some(Precision::F32),
            "f64" => Some(Precision::F64),
            _ => None,
        }
    }

    /// The precision of the scalar type `T`.
    pub fn of<T: Scalar>() -> Self {
        if T::NAME == "f32" {
            Precision::F32
        } else {
            Precision::F64
        }
    }
}

/// An invertible network in the precision it was trained in.
#[derive(Clone, Debug, PartialEq)]
pub enum Network {
    /// Single precision.
    F32(InvertibleMlp<f32>),
    /// Double precision.
    F64(InvertibleMlp<f64>),
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Network::F32($m) => $e,
            Network::F64($m) => $e,
        }
    };
}

/// `x` converted to `T` (no copy is avoided: the network's buffers are its own).
fn to_t<T: Scalar>(x: MatRef<'_, f64>) -> Mat<T> {
    Mat::from_fn(x.rows(), x.cols(), |i, j| T::from_f64c(x.get(i, j)))
}

fn to_f64<T: Scalar>(m: Mat<T>) -> Mat<f64> {
    let (r, c) = (m.rows(), m.cols());
    Mat::from_vec(
        r,
        c,
        m.into_vec().into_iter().map(|v| v.to_f64c()).collect(),
    )
}

impl Network {
    /// A network of precision `T`.
    pub fn from_mlp<T: Scalar>(m: &InvertibleMlp<T>) -> Self {
        match Precision::of::<T>() {
            Precision::F32 => Network::F32(m.cast()),
            Precision::F64 => Network::F64(m.cast()),
        }
    }

    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        each!(self, m => m.dim())
    }
    /// The number of layers.
    pub fn n_layers(&self) -> usize {
        each!(self, m => m.n_layers())
    }
    /// The precision.
    pub fn precision(&self) -> Precision {
        match self {
            Network::F32(_) => Precision::F32,
            Network::F64(_) => Precision::F64,
        }
    }
    /// The activation.
    pub fn activation(&self) -> Activation {
        each!(self, m => m.activation())
    }
    /// The base density.
    pub fn base(&self) -> BaseDensity {
        each!(self, m => m.base())
    }
    /// Whether the layers have biases.
    pub fn use_bias(&self) -> bool {
        each!(self, m => m.use_bias())
    }
    /// Whether every parameter is finite.
    pub fn is_finite(&self) -> bool {
        each!(self, m => m.is_finite())
    }
    /// The network converted to `T` (exact when `T` is the stored precision or wider).
    pub fn cast<T: Scalar>(&self) -> InvertibleMlp<T> {
        each!(self, m => m.cast())
    }
    /// The layers' weights (`D x D`, row-major, `y = x W + b`) and biases, as `f64`.
    pub fn parameters_f64(&self) -> Vec<(Mat<f64>, Vec<f64>)> {
        each!(self, m => m
            .layers()
            .iter()
            .map(|l| (l.weight.cast(), l.bias.iter().map(|b| b.to_f64c()).collect()))
            .collect())
    }

    fn check(&self, cols: usize) -> Result<()> {
        if cols != self.dim() {
            return Err(Error::Columns {
                expected: self.dim(),
                found: cols,
            });
        }
        Ok(())
    }

    /// The exact log-density of every row of `x` (network space), computed in the
    /// network's precision.
    pub fn log_prob<B: ModelBackend>(&self, backend: &B, x: MatRef<'_, f64>) -> Result<Vec<f64>> {
        self.check(x.cols())?;
        Ok(match self {
            Network::F32(m) => m
                .log_prob(backend, to_t::<f32>(x).as_ref())?
                .into_iter()
                .map(f64::from)
                .collect(),
            Network::F64(m) => m.log_prob(backend, x)?,
        })
    }

    /// The latents `z = f(x)` of every row.
    pub fn forward<B: ModelBackend>(&self, backend: &B, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.check(x.cols())?;
        Ok(match self {
            Network::F32(m) => to_f64(m.forward(backend, to_t::<f32>(x).as_ref())?),
            Network::F64(m) => m.forward(backend, x)?,
        })
    }

    /// The inverse `x = f^{-1}(z)` of every row of latents.
    pub fn inverse<B: ModelBackend>(&self, backend: &B, z: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.check(z.cols())?;
        Ok(match self {
            Network::F32(m) => to_f64(m.inverse(backend, to_t::<f32>(z).as_ref())?),
            Network::F64(m) => m.inverse(backend, z)?,
        })
    }

    /// `n` exact samples in network space.
    pub fn sample<B: ModelBackend, R: Rng + ?Sized>(
        &self,
        backend: &B,
        n: usize,
        rng: &mut R,
    ) -> Result<Mat<f64>> {
        Ok(match self {
            Network::F32(m) => to_f64(m.sample(backend, n, rng)?),
            Network::F64(m) => m.sample(backend, n, rng)?,
        })
    }
}

//! The value enums of the command line (activations, densities, optimizers, ...), with
//! their conversions to the library's types.

use clap::ValueEnum;

/// The activation between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    /// `alpha x + (1 - alpha) softplus(x)` (the paper's choice).
    SmoothLeakyRelu,
    /// `x` for `x >= 0`, `alpha x` otherwise.
    LeakyRelu,
    /// `tanh(x) + alpha x`.
    TanhLinear,
    /// Learnable monotone rational-quadratic splines, one per unit and hidden layer, on
    /// `[-bound, bound]` with `--bins` bins, the identity outside (trained with Adam at
    /// `--spline-lr`): capacity where `D` is small.
    Spline,
}

/// The factorised base density of the latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BaseArg {
    /// Standard normal.
    Normal,
    /// Laplace, unit scale.
    Laplace,
    /// Logistic, unit scale.
    Logistic,
    /// Learnable: per latent coordinate a mixture of `--components` logistic densities
    /// (locations, scales and weights trained with Adam at `--spline-lr`): capacity for
    /// clustered or multimodal data where the layers have little.
    Mixture,
}

/// The preprocessing to fit on the training rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PreprocessArg {
    /// `logit` for image data (the digits, IDX files, 8-bit `.npy` arrays, or any data
    /// given `--levels`), else `standardize`.
    Auto,
    /// No preprocessing.
    None,
    /// Zero mean and unit variance per column, fitted on the training rows.
    Standardize,
    /// Dequantise integer pixels and apply the logit (image data).
    Logit,
}

impl From<PreprocessArg> for relgrad::model::PreprocessKind {
    fn from(p: PreprocessArg) -> Self {
        match p {
            PreprocessArg::Auto => Self::Auto,
            PreprocessArg::None => Self::None,
            PreprocessArg::Standardize => Self::Standardize,
            PreprocessArg::Logit => Self::Logit,
        }
    }
}

/// The optimizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    /// Gradient ascent with heavy-ball --momentum (the default: the relative gradient is
    /// already well preconditioned).
    Sgd,
    /// Adam (beta1 0.9, beta2 0.999, eps 1e-8), fed the gradient as an ascent direction.
    /// Its per-coordinate scaling can undo the relative gradient's preconditioning: from
    /// the data-dependent start on the digits it lowers the likelihood.
    Adam,
}

/// The precision of the computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

impl PrecisionArg {
    /// `"f32"` or `"f64"`.
    pub fn name(&self) -> &'static str {
        match self {
            PrecisionArg::F32 => "f32",
            PrecisionArg::F64 => "f64",
        }
    }
}

/// Which gradient drives training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GradientArg {
    /// The relative gradient: O(B D^2) per layer, no matrix inverse.
    Relative,
    /// The Euclidean gradient with an LU inverse per layer: O(D^3).
    Naive,
}

/// The initialisation when not starting from a saved model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitScheme {
    /// Start at (about) the best full-covariance Gaussian of the training data.
    Data,
    /// Random orthogonal weights from --seed, zero biases (the paper's choice).
    Orthogonal,
    /// Identity weights, zero biases.
    Identity,
}

/// In which units `score` reports log-densities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Space {
    /// The data's original units (the preprocessing's log-Jacobian added).
    Data,
    /// The model's space (after preprocessing).
    Model,
}

/// `--init-shift`: `auto` (`None`) or a number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShiftArg(pub Option<f64>);

/// `--bins`: a spline's bins, 2 to 256.
pub fn parse_bins(s: &str) -> Result<usize, String> {
    let k: usize = s
        .parse()
        .map_err(|_| format!("expected a whole number of bins, got {s:?}"))?;
    relgrad::spline::validate(k, 1.0)?;
    Ok(k)
}

/// `--components`: a mixture base's components per coordinate, 1 to 64.
pub fn parse_components(s: &str) -> Result<usize, String> {
    let max = relgrad::mixture::MAX_COMPONENTS;
    let k: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number of components from 1 to {max}, got {s:?}"))?;
    relgrad::mixture::validate(k)?;
    Ok(k)
}

//! The fit pipeline's settings: the command-line tool's training options, with the same
//! names in JSON and the same defaults, shared by the CLI, Python and user programs.

use relgrad_core::{Activation, BaseDensity, GradientKind, Optimizer};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::model::DensityModel;
use crate::network::Precision;
use crate::preprocess::{PreprocessKind, MAX_LEVELS};
use crate::tensors::MAX_LAYERS;

/// The most learning-rate decays a fit may ask for (0.3^50 is below 1e-26).
pub const MAX_LR_DECAYS: usize = 50;

/// The most parameters (`L (D^2 + D)`) a fit may train (`2^28`: 1 GiB a copy in `f32`; a
/// fit keeps several copies: current, best, gradient, optimizer state).
pub const MAX_PARAMETERS: usize = 1 << 28;

/// The widest data (columns) that [`automatic_architecture`] gives spline activations.
/// Measured on held-out data (`docs/quality-capacity.md`, three seeds): on the seven
/// built-in 2-D sets splines at 16 layers come within 0.1 nats per row of the better of a
/// validation-tuned Gaussian mixture and KDE, where tanh-linear at 3 layers stays 0.7 to
/// 1.5 nats below them; wider, tanh-linear is ahead on diabetes (`D = 10`), breast cancer
/// (30) and the digits (64), by 1.5 to 7 nats per row, and behind on wine (13) by 1.1.
pub const SPLINE_MAX_DIM: usize = 4;

/// The layers [`automatic_architecture`] gives a spline model (16: rings, the hardest of
/// the 2-D sets, was 0.17 nats per row short of the Gaussian mixture at 8 layers and 0.09
/// at 16; training takes twice as long, seconds on 2-D data).
pub const SPLINE_LAYERS: usize = 16;

/// The architecture the command-line tool and Python's `Flow` choose when the user names
/// none, for data with `dim` columns: `Some((splines of `DEFAULT_BINS` bins on
/// [-DEFAULT_BOUND, DEFAULT_BOUND], SPLINE_LAYERS))` up to [`SPLINE_MAX_DIM`] columns, `None` (keep
/// [`FitConfig::default`]'s tanh-linear at 3 layers) above.
pub fn automatic_architecture(dim: usize) -> Option<(Activation, usize)> {
    (dim <= SPLINE_MAX_DIM).then_some((
        Activation::Spline {
            bins: relgrad_core::activation::DEFAULT_BINS,
            bound: relgrad_core::activation::DEFAULT_BOUND,
        },
        SPLINE_LAYERS,
    ))
}

/// Where the starting parameters come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    /// The data-dependent start: at least about the best full-covariance Gaussian of the
    /// training data, at any depth (see `relgrad_core::init`).
    Data {
        /// Where every hidden layer's whitened input is centred (default 0); `None`
        /// chooses a nearly linear scale per layer on the training rows, which keeps the
        /// start within half a nat of the Gaussian at any depth (see `relgrad_core::init`).
        shift: Option<f64>,
    },
    /// Random orthogonal weights from the run's seed, zero biases.
    Orthogonal,
    /// Identity weights, zero biases.
    Identity,
    /// A fitted model's parameters and preprocessing (fine-tuning, warm starts).
    Model(Box<DensityModel>),
}

impl Start {
    /// The JSON recorded in model files and checkpoints (`{"kind": "data", "shift":
    /// "auto"}`, `{"kind": "data", "shift": 1.5}`,
    /// ...; a model start records `{"kind": "model"}`, to which a caller may add a path).
    pub fn to_json(&self) -> Value {
        match self {
            Start::Data { shift: None } => json!({"kind": "data", "shift": "auto"}),
            Start::Data { shift: Some(c) } => json!({"kind": "data", "shift": c}),
            Start::Orthogonal => json!({"kind": "orthogonal"}),
            Start::Identity => json!({"kind": "identity"}),
            Start::Model(_) => json!({"kind": "model"}),
        }
    }
}

/// The settings of [`crate::fit()`]. `FitConfig::default()` is `relgrad train`'s defaults
/// for data of more than [`SPLINE_MAX_DIM`] columns; below, the tool takes
/// [`automatic_architecture`]'s activation and depth.
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// Which preprocessing to fit on the training rows (`Auto`: `logit` for data with
    /// known quantisation levels, else `standardize`).
    pub preprocess: PreprocessKind,
    /// The data's quantisation levels (17 for the digits, 256 for 8-bit images), when
    /// the rows are integer pixels.
    pub levels: Option<u32>,
    /// Number of layers (each `D x D` with a bias; activation between layers). Default 3.
    pub n_layers: usize,
    /// Activation between layers. Default: tanh-linear, `beta = 0.1` (measured to make
    /// depth pay where the paper's smooth leaky ReLU does not: `docs/algorithm.md`).
    pub activation: Activation,
    /// Base density of the latents. Default: normal. A mixture base's parameters train
    /// with `spline_optimizer`.
    pub base: BaseDensity,
    /// Starting parameters. Default: data-dependent, shift 0.
    pub start: Start,
    /// Optimizer. Default: SGD, learning rate `1e-3` (with the decays below; measured on
    /// held-out data: `docs/step-size.md`), momentum 0.9.
    pub optimizer: Optimizer,
    /// The elementwise parameters' optimizer (spline activations, a mixture base). Default: Adam at
    /// `relgrad_core::optim::SPLINE_LR`; its rate decays with `optimizer`'s.
    pub spline_optimizer: Optimizer,
    /// Rows per mini-batch (`usize::MAX`: full batch). Default 100.
    pub batch_size: usize,
    /// Maximum number of epochs. Default 1000.
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation log-likelihood (0:
    /// never); the best parameters are kept. Default 30.
    pub look_ahead: usize,
    /// How many of those plateaus (or diverged epochs) decay the learning rate instead
    /// of ending training: training goes on from the best parameters with the rate times
    /// `lr_decay` and fresh optimizer moments. Default 2 (measured on held-out data:
    /// `docs/algorithm.md`).
    pub lr_decays: usize,
    /// What a decay multiplies the learning rate by, in `(0, 1)`. Default 0.3.
    pub lr_decay: f64,
    /// Seed of the shuffles, the dequantisation noise and random starts. Default 0.
    pub seed: u64,
    /// Visit the training rows in a new seeded order every epoch. Default true.
    pub shuffle: bool,
    /// Which gradient drives the optimizer. Default: relative.
    pub gradient: GradientKind,
    /// Floating-point precision of the network. Default: `f32`.
    pub precision: Precision,
    /// Training rows (a prefix) whose log-likelihood is reported every epoch. Default 10000.
    pub train_eval_rows: usize,
    /// Free-form JSON the caller records with the run (merged into checkpoints' `run`;
    /// the CLI keeps its data source and split there). Default `null`.
    pub run_info: Value,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            preprocess: PreprocessKind::Auto,
            levels: None,
            n_layers: 3,
            activation: Activation::TanhLinear { beta: 0.1 },
            base: BaseDensity::Normal,
            start: Start::Data { shift: Some(0.0) },
            optimizer: Optimizer::Sgd {
                lr: 1e-3,
                momentum: 0.9,
            },
            spline_optimizer: Optimizer::adam(relgrad_core::optim::SPLINE_LR),
            batch_size: 100,
            max_epochs: 1000,
            look_ahead: 30,
            lr_decays: 2,
            lr_decay: 0.3,
            seed: 0,
            shuffle: true,
            gradient: GradientKind::Relative,
            precision: Precision::F32,
            train_eval_rows: 10_000,
            run_info: Value::Null,
        }
    }
}

/// Reads [`optimizer_json`]'s output (`default` when the key is missing).
fn optimizer_from_json(o: &Value, default: Optimizer, key: &str) -> Result<Optimizer> {
    Ok(match o["name"].as_str() {
        None if o.is_null() => default,
        Some("sgd") => Optimizer::Sgd {
            lr: f64_or(o, "lr", 3e-4)?,
            momentum: f64_or(o, "momentum", 0.9)?,
        },
        Some("adam") => Optimizer::Adam {
            lr: f64_or(o, "lr", 3e-4)?,
            beta1: f64_or(o, "beta1", 0.9)?,
            beta2: f64_or(o, "beta2", 0.999)?,
            eps: f64_or(o, "eps", 1e-8)?,
        },
        _ => return Err(bad(key, o, "{\"name\": \"sgd\" or \"adam\", \"lr\": ...}")),
    })
}

fn optimizer_json(o: &Optimizer) -> Value {
    match *o {
        Optimizer::Sgd { lr, momentum } => json!({"name": "sgd", "lr": lr, "momentum": momentum}),
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
        } => json!({"name": "adam", "lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps}),
    }
}

fn bad(key: &str, v: &Value, expected: &str) -> Error {
    Error::invalid(format!("setting {key:?} is {v}, expected {expected}"))
}

fn f64_or(v: &Value, key: &str, default: f64) -> Result<f64> {
    match &v[key] {
        Value::Null => Ok(default),
        x => x.as_f64().ok_or_else(|| bad(key, x, "a number")),
    }
}

fn u64_or(v: &Value, key: &str, default: u64) -> Result<u64> {
    match &v[key] {
        Value::Null => Ok(default),
        x => x.as_u64().ok_or_else(|| bad(key, x, "a whole number")),
    }
}

impl FitConfig {
    /// Checks every setting, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let cfg = |m: String| Err(Error::Config(m));
        if !(1..=MAX_LAYERS).contains(&self.n_layers) {
            return cfg(format!(
                "the number of layers must be from 1 to {MAX_LAYERS}, got {}",
                self.n_layers
            ));
        }
        if let Err(e) = self.activation.validate() {
            return cfg(if self.activation.is_learnable() {
                format!("the spline activation: {e}")
            } else {
                format!("the activation's alpha: {e}")
            });
        }
        if let Err(e) = self.optimizer.validate() {
            return cfg(e);
        }
        if let Err(e) = self.base.validate() {
            return cfg(format!("the base density: {e}"));
        }
        if let Err(e) = self.spline_optimizer.validate() {
            return cfg(format!("the spline optimizer: {e}"));
        }
        if let Optimizer::Sgd { momentum, .. } = self.optimizer {
            if !(0.0..1.0).contains(&momentum) {
                return cfg(format!("the momentum must be in [0, 1), got {momentum}"));
            }
        }
        if self.batch_size == 0 {
            return cfg("the batch size must be at least 1".into());
        }
        if self.lr_decays > MAX_LR_DECAYS {
            return cfg(format!(
                "the learning-rate decays must be at most {MAX_LR_DECAYS}, got {}",
                self.lr_decays
            ));
        }
        if let Err(e) = relgrad_core::check_lr_decay(self.lr_decay) {
            return cfg(e);
        }
        if let Some(l) = self.levels {
            if !(2..=MAX_LEVELS).contains(&l) {
                return cfg(format!(
                    "the levels must be from 2 to {MAX_LEVELS}, got {l}"
                ));
            }
        }
        if let Start::Data { shift: Some(shift) } = self.start {
            if !shift.is_finite() {
                return cfg(format!("the start's shift must be finite, got {shift}"));
            }
        }
        Ok(())
    }

    /// The settings as JSON, with the command-line tool's key names (`layers`, `epochs`,
    /// `look_ahead`, ...), as recorded in model files' `training` and checkpoints' `run`.
    pub fn to_json(&self) -> Value {
        json!({
            "levels": self.levels,
            "layers": self.n_layers,
            "activation": self.activation.name(),
            "alpha": self.activation.parameter(),
            "bins": self.activation.bins(),
            "spline_optimizer": optimizer_json(&self.spline_optimizer),
            "base": self.base.name(),
            "components": self.base.components(),
            "init": self.start.to_json(),
            "optimizer": optimizer_json(&self.optimizer),
            "batch_size": if self.batch_size == usize::MAX { json!("full") } else { json!(self.batch_size) },
            "epochs": self.max_epochs,
            "look_ahead": self.look_ahead,
            "lr_decays": self.lr_decays,
            "lr_decay": self.lr_decay,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "gradient": self.gradient.name(),
            "precision": self.precision.name(),
            "train_eval_rows": self.train_eval_rows,
        })
    }

    /// Reads [`FitConfig::to_json`]'s output back (missing keys take their defaults; a
    /// model start comes back as the data-dependent start, since the file holds no
    /// model: resuming needs only the checkpoint's parameters).
    pub fn from_json(v: &Value) -> Result<Self> {
        let d = FitConfig::default();
        let s = |k: &str, default: &'static str| -> Result<String> {
            match &v[k] {
                Value::Null => Ok(default.to_string()),
                Value::String(s) => Ok(s.clone()),
                x => Err(bad(k, x, "a string")),
            }
        };
        let act = s("activation", "smooth-leaky-relu")?;
        let alpha = f64_or(v, "alpha", 0.01)?;
        let mut activation = Activation::from_name(&act, alpha)
            .ok_or_else(|| bad("activation", &v["activation"], "an activation's name"))?;
        if let Activation::Spline { bins, .. } = &mut activation {
            *bins = u64_or(v, "bins", relgrad_core::activation::DEFAULT_BINS as u64)? as usize;
        }
        let base = s("base", "normal")?;
        let mut base = BaseDensity::from_name(&base).ok_or_else(|| {
            bad(
                "base",
                &v["base"],
                "\"normal\", \"laplace\", \"logistic\" or \"mixture\"",
            )
        })?;
        if base.is_learnable() {
            let k = relgrad_core::mixture::DEFAULT_COMPONENTS as u64;
            base = base.with_components(u64_or(v, "components", k)? as usize);
        }
        let optimizer = optimizer_from_json(&v["optimizer"], d.optimizer, "optimizer")?;
        let spline_optimizer = optimizer_from_json(
            &v["spline_optimizer"],
            d.spline_optimizer,
            "spline_optimizer",
        )?;
        let i = &v["init"];
        let start = match i["kind"].as_str() {
            None if i.is_null() => d.start.clone(),
            // Files written before the per-layer choice record a number (0 by default).
            Some("data") if i["shift"] == "auto" => Start::Data { shift: None },
            Some("data") => Start::Data {
                shift: Some(f64_or(i, "shift", 0.0)?),
            },
            Some("orthogonal") => Start::Orthogonal,
            Some("identity") => Start::Identity,
            Some("model") => Start::Data { shift: Some(0.0) },
            _ => {
                return Err(bad(
                    "init",
                    i,
                    "{\"kind\": \"data\", \"orthogonal\", \"identity\" or \"model\"}",
                ))
            }
        };
        let precision = s("precision", "f32")?;
        let config = Self {
            preprocess: PreprocessKind::Auto,
            levels: match &v["levels"] {
                Value::Null => None,
                x => Some(
                    x.as_u64()
                        .and_then(|l| u32::try_from(l).ok())
                        .ok_or_else(|| bad("levels", x, "a whole number"))?,
                ),
            },
            n_layers: u64_or(v, "layers", 2)? as usize,
            activation,
            base,
            start,
            optimizer,
            spline_optimizer,
            batch_size: match &v["batch_size"] {
                Value::String(s) if s == "full" => usize::MAX,
                Value::Null => d.batch_size,
                x => x
                    .as_u64()
                    .ok_or_else(|| bad("batch_size", x, "a whole number or \"full\""))?
                    as usize,
            },
            max_epochs: u64_or(v, "epochs", 1000)? as usize,
            look_ahead: u64_or(v, "look_ahead", 30)? as usize,
            // Runs recorded before decays existed stopped at the first plateau.
            lr_decays: usize::try_from(u64_or(v, "lr_decays", 0)?)
                .map_err(|_| bad("lr_decays", &v["lr_decays"], "a small whole number"))?,
            lr_decay: f64_or(v, "lr_decay", d.lr_decay)?,
            seed: u64_or(v, "seed", 0)?,
            shuffle: match &v["shuffle"] {
                Value::Null => true,
                x => x
                    .as_bool()
                    .ok_or_else(|| bad("shuffle", x, "true or false"))?,
            },
            gradient: match s("gradient", "relative")?.as_str() {
                "relative" => GradientKind::Relative,
                "naive" => GradientKind::Naive,
                _ => return Err(bad("gradient", &v["gradient"], "\"relative\" or \"naive\"")),
            },
            precision: Precision::from_name(&precision)
                .ok_or_else(|| bad("precision", &v["precision"], "\"f32\" or \"f64\""))?,
            // Recorded so that a resumed run evaluates (and, without validation rows,
            // picks its best epoch on) the same training rows.
            train_eval_rows: u64_or(v, "train_eval_rows", d.train_eval_rows as u64)? as usize,
            run_info: Value::Null,
        };
        config
            .validate()
            .map_err(|e| Error::invalid(e.to_string()))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_setting() {
        let c = FitConfig {
            levels: Some(17),
            n_layers: 3,
            activation: Activation::TanhLinear { beta: 0.5 },
            base: BaseDensity::Laplace,
            start: Start::Orthogonal,
            optimizer: Optimizer::adam(1e-3),
            batch_size: usize::MAX,
            max_epochs: 7,
            look_ahead: 0,
            seed: 9,
            shuffle: false,
            gradient: GradientKind::Naive,
            precision: Precision::F64,
            ..FitConfig::default()
        };
        assert_eq!(FitConfig::from_json(&c.to_json()).unwrap(), c);
        assert_eq!(
            FitConfig::from_json(&FitConfig::default().to_json()).unwrap(),
            FitConfig::default()
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for (c, needle) in [
            (
                FitConfig {
                    n_layers: 0,
                    ..FitConfig::default()
                },
                "number of layers",
            ),
            (
                FitConfig {
                    batch_size: 0,
                    ..FitConfig::default()
                },
                "batch size",
            ),
            (
                FitConfig {
                    optimizer: Optimizer::sgd(-1.0),
                    ..FitConfig::default()
                },
                "learning rate",
            ),
            (
                FitConfig {
                    levels: Some(1),
                    ..FitConfig::default()
                },
                "levels",
            ),
        ] {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        let e = FitConfig::from_json(&json!({"gradient": "fancy"})).unwrap_err();
        assert!(e.to_string().contains("setting \"gradient\""), "{e}");
    }
}

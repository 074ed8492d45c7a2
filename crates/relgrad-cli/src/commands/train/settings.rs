//! From `relgrad train`'s arguments to the library's [`FitConfig`] and the data to load:
//! flag checks, `--init MODEL` conflicts, and what a resumed run reads back from its
//! checkpoint.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use relgrad::model::checkpoint::{read_run, AnyCheckpoint};
use relgrad::model::{FitConfig, Precision, Start};
use relgrad::{Activation, BaseDensity, GradientKind, Optimizer};
use serde_json::{json, Value};

use crate::checkpoint;
use crate::cli::{
    ActivationArg, BaseArg, GradientArg, InitScheme, OptimizerArg, PrecisionArg, TrainArgs,
};
use crate::data::{Source, SplitSpec};

/// Where the rows come from and how they are split (recorded in checkpoints and model
/// files, so that `eval`, `score` and `--resume` find the same rows).
#[derive(Clone, Debug)]
pub struct DataSpec {
    /// The training data.
    pub source: Source,
    /// The split.
    pub split: SplitSpec,
}

impl DataSpec {
    /// The JSON kept in the run's `run_info` (and so in checkpoints).
    pub fn to_json(&self) -> Value {
        json!({"source": self.source.to_json(), "split": self.split.to_json()})
    }
}

/// What to do: a new run or a resumed one.
pub enum Job {
    /// A new run.
    New {
        /// The settings, with the data spec in `run_info`.
        config: Box<FitConfig>,
        /// `--init`, resolved.
        init_path: Option<PathBuf>,
        /// `--out`.
        out: Option<PathBuf>,
        /// `--force`.
        force: bool,
    },
    /// A run continued from its checkpoint.
    Resume {
        /// The run directory.
        dir: PathBuf,
        /// The checkpoint.
        checkpoint: Box<AnyCheckpoint>,
        /// `--epochs`, when given.
        epochs: Option<usize>,
        /// `--allow-changed-data`.
        allow_changed_data: bool,
    },
}

/// Arguments that may be given with `--resume` (the others describe the model or data).
const RESUMABLE: [&str; 7] = [
    "resume",
    "epochs",
    "threads",
    "quiet",
    "force",
    "allow_changed_data",
    "distributed",
];

fn activation_of(args: &TrainArgs) -> Result<Activation> {
    let alpha = args.alpha;
    let act = match args.activation.unwrap_or(ActivationArg::TanhLinear) {
        ActivationArg::SmoothLeakyRelu => Activation::SmoothLeakyRelu { alpha },
        ActivationArg::LeakyRelu => Activation::LeakyRelu { alpha },
        ActivationArg::TanhLinear => Activation::TanhLinear { beta: alpha },
        ActivationArg::Spline => Activation::Spline {
            bins: args.bins,
            bound: args.bound,
        },
    };
    let flag = if act.is_learnable() {
        "--bins/--bound"
    } else {
        "--alpha"
    };
    act.validate()
        .map_err(|e| crate::usage_error(format!("{flag}: {e}")))?;
    Ok(act)
}

/// `--base` and `--components`. `--components` without `--base mixture` is refused (with
/// `--init MODEL` the model's base decides, checked in [`init_from_model`]).
fn base_of(args: &TrainArgs, explicit: &BTreeSet<String>) -> Result<BaseDensity> {
    let base = match args.base {
        BaseArg::Normal => BaseDensity::Normal,
        BaseArg::Laplace => BaseDensity::Laplace,
        BaseArg::Logistic => BaseDensity::Logistic,
        BaseArg::Mixture => BaseDensity::Mixture {
            components: args.components,
        },
    };
    if explicit.contains("components") && !base.is_learnable() && args.init.is_none() {
        return Err(crate::usage_error(format!(
            "--components applies only to --base mixture, and the base is {}: add --base mixture or drop --components",
            base.name()
        )));
    }
    base.validate()
        .map_err(|e| crate::usage_error(format!("--components: {e}")))?;
    Ok(base)
}

/// A resumed run: the data spec and the checkpoint of `dir`.
pub fn resume(
    args: &TrainArgs,
    dir: &Path,
    explicit: &BTreeSet<String>,
) -> Result<(DataSpec, Job)> {
    let bad: Vec<String> = explicit
        .iter()
        .filter(|id| !RESUMABLE.contains(&id.as_str()))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !bad.is_empty() {
        return Err(crate::usage_error(format!(
            "{} cannot be combined with --resume: a resumed run keeps its own settings (only --epochs and --threads may change)",
            bad.join(", ")
        )));
    }
    let ckpt = dir.join(checkpoint::FILE_NAME);
    ensure!(
        ckpt.exists(),
        "{}: no checkpoint to resume from ({} is missing)",
        dir.display(),
        ckpt.display()
    );
    let (run, _) = read_run(&ckpt)?;
    let data = DataSpec {
        source: Source::from_json(&run["source"])
            .with_context(|| format!("{}: the checkpoint's data source", ckpt.display()))?,
        split: SplitSpec::from_json(&run["split"])
            .with_context(|| format!("{}: the checkpoint's split", ckpt.display()))?,
    };
    let checkpoint = Box::new(AnyCheckpoint::load(&ckpt)?);
    let job = Job::Resume {
        dir: dir.to_path_buf(),
        checkpoint,
        epochs: explicit.contains("epochs").then_some(args.epochs),
        allow_changed_data: args.allow_changed_data,
    };
    Ok((data, job))
}

/// A new run from the arguments.
pub fn new_run(args: &TrainArgs, explicit: &BTreeSet<String>) -> Result<(DataSpec, Job)> {
    let seed = args.seed;
    let source = Source::parse(&args.data, args.n, seed).context("--data")?;
    let extra = |s: &Option<String>, flag: &str, k: u64| -> Result<Option<Source>> {
        s.as_deref()
            .map(|v| Source::parse(v, args.n, seed.wrapping_add(k)).context(flag.to_string()))
            .transpose()
    };
    let data = DataSpec {
        source,
        split: SplitSpec {
            seed,
            val_fraction: args.val_fraction,
            test_fraction: args.test_fraction,
            val: extra(&args.val, "--val", 1)?,
            test: extra(&args.test, "--test", 2)?,
        },
    };
    let mut config = FitConfig {
        preprocess: args.preprocess.into(),
        levels: args.levels,
        n_layers: args.layers.unwrap_or(3),
        activation: activation_of(args)?,
        base: base_of(args, explicit)?,
        start: match args.init_scheme {
            InitScheme::Data => Start::Data {
                shift: args.init_shift.0,
            },
            InitScheme::Orthogonal => Start::Orthogonal,
            InitScheme::Identity => Start::Identity,
        },
        optimizer: match args.optimizer {
            OptimizerArg::Adam => Optimizer::adam(args.lr),
            OptimizerArg::Sgd => Optimizer::Sgd {
                lr: args.lr,
                momentum: args.momentum,
            },
        },
        spline_optimizer: Optimizer::adam(args.spline_lr),
        batch_size: args.batch_size,
        max_epochs: args.epochs,
        look_ahead: args.look_ahead,
        lr_decays: args.lr_decays,
        lr_decay: args.lr_decay,
        seed,
        shuffle: !args.no_shuffle,
        gradient: match args.gradient {
            GradientArg::Relative => GradientKind::Relative,
            GradientArg::Naive => GradientKind::Naive,
        },
        precision: match args.precision {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        },
        run_info: data.to_json(),
        ..FitConfig::default()
    };
    config
        .validate()
        .map_err(|e| crate::usage_error(e.to_string()))?;
    let init_path = match &args.init {
        Some(path) => Some(init_from_model(&mut config, path, args, explicit)?),
        None => None,
    };
    let job = Job::New {
        config: Box::new(config),
        init_path,
        out: args.out.clone(),
        force: args.force,
    };
    Ok((data, job))
}

/// `--init MODEL`: the model's architecture and preprocessing, after checking that no
/// explicit flag contradicts them. Returns the model's resolved path.
fn init_from_model(
    config: &mut FitConfig,
    path: &Path,
    args: &TrainArgs,
    explicit: &BTreeSet<String>,
) -> Result<PathBuf> {
    let (path, mf) = super::super::load_model(path).context("--init")?;
    let net = &mf.network;
    for (flag, given, ours) in [
        (
            "layers",
            config.n_layers.to_string(),
            net.n_layers().to_string(),
        ),
        (
            "activation",
            config.activation.name().to_string(),
            net.activation().name().to_string(),
        ),
        (
            "alpha",
            format!("{}", config.activation.parameter()),
            format!("{}", net.activation().parameter()),
        ),
        (
            "bins",
            args.bins.to_string(),
            match net.activation().bins() {
                Some(k) => k.to_string(),
                None => format!("a {} activation", net.activation().name()),
            },
        ),
        (
            "bound",
            format!("{}", config.activation.parameter()),
            format!("{}", net.activation().parameter()),
        ),
        (
            "base",
            config.base.name().to_string(),
            net.base().name().to_string(),
        ),
        (
            "components",
            args.components.to_string(),
            match net.base().components() {
                Some(k) => k.to_string(),
                None => format!("a {} base", net.base().name()),
            },
        ),
    ] {
        if explicit.contains(flag) && given != ours {
            return Err(crate::usage_error(format!(
                "--{flag} {given} conflicts with the --init model {}, which has {ours}",
                path.display()
            )));
        }
    }
    if explicit.contains("preprocess") && args.preprocess != crate::cli::PreprocessArg::Auto {
        let want = relgrad::model::PreprocessKind::from(args.preprocess).name();
        if want != mf.preprocess.name() {
            return Err(crate::usage_error(format!(
                "--preprocess {want} conflicts with the --init model {}, which uses {}",
                path.display(),
                mf.preprocess.name()
            )));
        }
    }
    config.n_layers = net.n_layers();
    config.activation = net.activation();
    config.base = net.base();
    let abs = std::fs::canonicalize(&path).unwrap_or(path);
    if let Value::Object(o) = &mut config.run_info {
        o.insert(
            "init".into(),
            json!({"kind": "model", "path": abs.display().to_string()}),
        );
    }
    config.start = Start::Model(Box::new(mf));
    Ok(abs)
}

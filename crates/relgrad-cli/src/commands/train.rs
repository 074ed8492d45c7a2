//! `relgrad train`: fit a model by exact maximum likelihood with the relative gradient.
//!
//! The run directory receives `model.safetensors` (the best parameters, with the
//! preprocessing, settings, data provenance and final metrics in its metadata),
//! `metrics.csv`, `curve.png`, `density.png` (2-D data) or `samples.png` (image data), and
//! `checkpoint.safetensors`, rewritten atomically after every epoch. Ctrl-C stops between
//! steps and leaves the last checkpoint intact; `--resume RUN_DIR` continues from it and
//! reaches the same result as an uninterrupted run.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad::init::Architecture;
use relgrad::train::TrainerState;
use relgrad::{
    Activation, Backend, BaseDensity, Error as CoreError, Flow, GradientKind, Init, InvertibleMlp,
    Mat, Optimizer, Scalar, Threads, TrainConfig, TrainEvent, Trainer,
};
use serde_json::{json, Value};

use super::{backend, fit_gaussian, transform, Evaluation};
use crate::checkpoint::{self, Checkpoint};
use crate::cli::{
    ActivationArg, BaseArg, GradientArg, InitScheme, OptimizerArg, PrecisionArg, TrainArgs,
};
use crate::data::{split, ImageShape, Part, Source, SplitSpec, Splits, Table};
use crate::model_file::{AnyModel, ModelFile};
use crate::plots;
use crate::preprocess::{Preprocess, PreprocessKind, Transformed};
use crate::util::short_float;
use crate::{ExitError, EXIT_DIVERGED, EXIT_INTERRUPTED};

/// Set by the Ctrl-C handler; checked between steps and epochs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

fn install_ctrlc() {
    HANDLER.call_once(|| {
        // If a handler cannot be installed, Ctrl-C keeps its default (immediate exit);
        // the checkpoint is still never torn because it is written atomically.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// Where the starting parameters come from.
#[derive(Clone, Debug, PartialEq)]
pub enum InitChoice {
    /// The data-dependent start with this shift.
    Data {
        /// The shift.
        shift: f64,
    },
    /// Random orthogonal weights from the run's seed.
    Orthogonal,
    /// Identity weights.
    Identity,
    /// A saved model.
    Model(PathBuf),
}

impl InitChoice {
    fn to_json(&self) -> Value {
        match self {
            InitChoice::Data { shift } => json!({"kind": "data", "shift": shift}),
            InitChoice::Orthogonal => json!({"kind": "orthogonal"}),
            InitChoice::Identity => json!({"kind": "identity"}),
            InitChoice::Model(p) => json!({"kind": "model", "path": p.display().to_string()}),
        }
    }
    fn from_json(v: &Value) -> Result<Self> {
        Ok(match v["kind"].as_str().unwrap_or_default() {
            "data" => InitChoice::Data {
                shift: v["shift"].as_f64().unwrap_or(relgrad::init::DEFAULT_SHIFT),
            },
            "orthogonal" => InitChoice::Orthogonal,
            "identity" => InitChoice::Identity,
            "model" => InitChoice::Model(PathBuf::from(v["path"].as_str().unwrap_or_default())),
            other => bail!("unknown initialisation {other:?}"),
        })
    }
}

/// The resolved settings of a run: everything needed to rebuild it (stored in the
/// checkpoint, and in the model file's `training` and `data` metadata).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The training data.
    pub source: Source,
    /// The split.
    pub split: SplitSpec,
    /// Pixel levels override.
    pub levels: Option<u32>,
    /// The fitted preprocessing, or the kind to fit.
    pub preprocess: Result<Preprocess, PreprocessKind>,
    /// Layers.
    pub layers: usize,
    /// Activation.
    pub activation: Activation,
    /// Base density.
    pub base: BaseDensity,
    /// Initialisation.
    pub init: InitChoice,
    /// Optimizer.
    pub optimizer: Optimizer,
    /// Batch size (`usize::MAX`: full batch).
    pub batch_size: usize,
    /// Maximum epochs.
    pub epochs: usize,
    /// Look-ahead (0: none).
    pub look_ahead: usize,
    /// Seed.
    pub seed: u64,
    /// Shuffle every epoch.
    pub shuffle: bool,
    /// Gradient.
    pub gradient: GradientKind,
    /// `"f32"` or `"f64"`.
    pub precision: &'static str,
}

fn activation_of(a: ActivationArg, alpha: f64) -> Result<Activation> {
    let act = match a {
        ActivationArg::SmoothLeakyRelu => Activation::SmoothLeakyRelu { alpha },
        ActivationArg::LeakyRelu => Activation::LeakyRelu { alpha },
        ActivationArg::TanhLinear => Activation::TanhLinear { beta: alpha },
    };
    act.validate().map_err(|e| anyhow!("--alpha: {e}"))?;
    Ok(act)
}

fn optimizer_json(o: &Optimizer) -> Value {
    match *o {
        Optimizer::Sgd { lr, momentum } => json!({"name": "sgd", "lr": lr, "momentum": momentum}),
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
        } => {
            json!({"name": "adam", "lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps})
        }
    }
}

fn optimizer_from_json(v: &Value) -> Result<Optimizer> {
    let lr = v["lr"]
        .as_f64()
        .ok_or_else(|| anyhow!("optimizer without lr"))?;
    Ok(match v["name"].as_str().unwrap_or_default() {
        "sgd" => Optimizer::Sgd {
            lr,
            momentum: v["momentum"].as_f64().unwrap_or(0.0),
        },
        _ => Optimizer::Adam {
            lr,
            beta1: v["beta1"].as_f64().unwrap_or(0.9),
            beta2: v["beta2"].as_f64().unwrap_or(0.999),
            eps: v["eps"].as_f64().unwrap_or(1e-8),
        },
    })
}

impl Settings {
    /// The settings as JSON (the checkpoint's `run`).
    pub fn to_json(&self) -> Value {
        json!({
            "source": self.source.to_json(),
            "split": self.split.to_json(),
            "levels": self.levels,
            "preprocess": match &self.preprocess {
                Ok(p) => p.to_json(),
                Err(k) => json!({"kind": "unfitted", "requested": format!("{k:?}").to_lowercase()}),
            },
            "layers": self.layers,
            "activation": self.activation.name(),
            "alpha": self.activation.parameter(),
            "base": self.base.name(),
            "init": self.init.to_json(),
            "optimizer": optimizer_json(&self.optimizer),
            "batch_size": if self.batch_size == usize::MAX { json!("full") } else { json!(self.batch_size) },
            "epochs": self.epochs,
            "look_ahead": self.look_ahead,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "gradient": self.gradient.name(),
            "precision": self.precision,
        })
    }

    /// Reads [`Settings::to_json`]'s output back (the preprocessing must be fitted).
    pub fn from_json(v: &Value) -> Result<Self> {
        let act = v["activation"].as_str().unwrap_or_default();
        let alpha = v["alpha"].as_f64().unwrap_or(0.01);
        let base = v["base"].as_str().unwrap_or_default();
        Ok(Self {
            source: Source::from_json(&v["source"])?,
            split: SplitSpec::from_json(&v["split"])?,
            levels: v["levels"].as_u64().map(|l| l as u32),
            preprocess: Ok(Preprocess::from_json(&v["preprocess"])?),
            layers: v["layers"].as_u64().ok_or_else(|| anyhow!("no layers"))? as usize,
            activation: Activation::from_name(act, alpha)
                .ok_or_else(|| anyhow!("unknown activation {act:?}"))?,
            base: BaseDensity::from_name(base)
                .ok_or_else(|| anyhow!("unknown base density {base:?}"))?,
            init: InitChoice::from_json(&v["init"])?,
            optimizer: optimizer_from_json(&v["optimizer"])?,
            batch_size: match &v["batch_size"] {
                Value::String(_) => usize::MAX,
                x => x.as_u64().ok_or_else(|| anyhow!("no batch size"))? as usize,
            },
            epochs: v["epochs"].as_u64().ok_or_else(|| anyhow!("no epochs"))? as usize,
            look_ahead: v["look_ahead"].as_u64().unwrap_or(0) as usize,
            seed: v["seed"].as_u64().unwrap_or(0),
            shuffle: v["shuffle"].as_bool().unwrap_or(true),
            gradient: if v["gradient"].as_str() == Some("naive") {
                GradientKind::Naive
            } else {
                GradientKind::Relative
            },
            precision: if v["precision"].as_str() == Some("f32") {
                "f32"
            } else {
                "f64"
            },
        })
    }

    fn preprocess_name(&self) -> String {
        match &self.preprocess {
            Ok(p) => p.name().to_string(),
            Err(k) => format!("{k:?}").to_lowercase(),
        }
    }

    /// The default run directory: `runs/<data>-<preprocess>-l<L>-<optimizer>-lr<lr>-b<batch>-s<seed>`.
    pub fn default_out(&self) -> PathBuf {
        let b = if self.batch_size == usize::MAX {
            "full".to_string()
        } else {
            self.batch_size.to_string()
        };
        PathBuf::from("runs").join(format!(
            "{}-{}-l{}-{}-lr{}-b{}-s{}",
            self.source.short_name(),
            self.preprocess_name(),
            self.layers,
            self.optimizer.name(),
            short_float(self.optimizer.lr()),
            b,
            self.seed
        ))
    }
}

/// Arguments that describe the model or data and so conflict with `--resume`.
const RESUMABLE: [&str; 5] = ["resume", "epochs", "threads", "quiet", "force"];

/// Runs `relgrad train`.
pub fn run(args: TrainArgs, explicit: &BTreeSet<String>) -> Result<()> {
    install_ctrlc();
    if let Some(dir) = args.resume.clone() {
        let bad: Vec<String> = explicit
            .iter()
            .filter(|id| !RESUMABLE.contains(&id.as_str()))
            .map(|id| format!("--{}", id.replace('_', "-")))
            .collect();
        ensure!(
            bad.is_empty(),
            "{} cannot be combined with --resume: a resumed run keeps its own settings (only --epochs and --threads may change)",
            bad.join(", ")
        );
        let ckpt = dir.join(checkpoint::FILE_NAME);
        ensure!(
            ckpt.exists(),
            "{}: no checkpoint to resume from ({} is missing)",
            dir.display(),
            ckpt.display()
        );
        let (run, precision) = checkpoint::read_run(&ckpt)?;
        let mut settings = Settings::from_json(&run)
            .with_context(|| format!("{}: the checkpoint's run settings", ckpt.display()))?;
        if explicit.contains("epochs") {
            settings.epochs = args.epochs;
        }
        let out = OutDir::Resume {
            dir,
            checkpoint: ckpt,
        };
        return match precision.as_str() {
            "f32" => train_typed::<f32>(settings, out, args.threads, args.quiet),
            _ => train_typed::<f64>(settings, out, args.threads, args.quiet),
        };
    }

    let seed = args.seed;
    let source = Source::parse(&args.data, args.n, seed).context("--data")?;
    let parse_extra = |s: &Option<String>, flag: &str| -> Result<Option<Source>> {
        s.as_deref()
            .map(|v| {
                Source::parse(
                    v,
                    args.n,
                    seed.wrapping_add(if flag == "--val" { 1 } else { 2 }),
                )
                .context(flag.to_string())
            })
            .transpose()
    };
    let split = SplitSpec {
        seed,
        val_fraction: args.val_fraction,
        test_fraction: args.test_fraction,
        val: parse_extra(&args.val, "--val")?,
        test: parse_extra(&args.test, "--test")?,
    };
    let mut activation = activation_of(args.activation, args.alpha)?;
    let mut base = match args.base {
        BaseArg::Normal => BaseDensity::Normal,
        BaseArg::Laplace => BaseDensity::Laplace,
        BaseArg::Logistic => BaseDensity::Logistic,
    };
    let mut layers = args.layers;
    ensure!(layers >= 1, "--layers must be at least 1");
    let mut preprocess: Result<Preprocess, PreprocessKind> = Err(args.preprocess);
    let init = if let Some(path) = &args.init {
        let (path, mf) = super::load_model(path).context("--init")?;
        for (flag, given, ours) in [
            (
                "layers",
                args.layers.to_string(),
                mf.model.n_layers().to_string(),
            ),
            (
                "activation",
                activation.name().to_string(),
                mf.model.activation().name().to_string(),
            ),
            (
                "alpha",
                format!("{}", activation.parameter()),
                format!("{}", mf.model.activation().parameter()),
            ),
            (
                "base",
                base.name().to_string(),
                mf.model.base().name().to_string(),
            ),
        ] {
            ensure!(
                !explicit.contains(flag) || given == ours,
                "--{flag} {given} conflicts with the --init model {}, which has {ours}",
                path.display()
            );
        }
        if explicit.contains("preprocess") && args.preprocess != PreprocessKind::Auto {
            let want = format!("{:?}", args.preprocess).to_lowercase();
            ensure!(
                want == mf.preprocess.name(),
                "--preprocess {want} conflicts with the --init model {}, which uses {}",
                path.display(),
                mf.preprocess.name()
            );
        }
        layers = mf.model.n_layers();
        activation = mf.model.activation();
        base = mf.model.base();
        preprocess = Ok(mf.preprocess.clone());
        InitChoice::Model(std::fs::canonicalize(&path).unwrap_or(path))
    } else {
        match args.init_scheme {
            InitScheme::Data => InitChoice::Data {
                shift: args.init_shift,
            },
            InitScheme::Orthogonal => InitChoice::Orthogonal,
            InitScheme::Identity => InitChoice::Identity,
        }
    };
    let optimizer = match args.optimizer {
        OptimizerArg::Adam => Optimizer::adam(args.lr),
        OptimizerArg::Sgd => Optimizer::Sgd {
            lr: args.lr,
            momentum: args.momentum,
        },
    };
    optimizer.validate().map_err(|e| anyhow!("{e}"))?;
    let settings = Settings {
        source,
        split,
        levels: args.levels,
        preprocess,
        layers,
        activation,
        base,
        init,
        optimizer,
        batch_size: args.batch_size,
        epochs: args.epochs,
        look_ahead: args.look_ahead,
        seed,
        shuffle: !args.no_shuffle,
        gradient: match args.gradient {
            GradientArg::Relative => GradientKind::Relative,
            GradientArg::Naive => GradientKind::Naive,
        },
        precision: match args.precision {
            PrecisionArg::F32 => "f32",
            PrecisionArg::F64 => "f64",
        },
    };
    if let Some(out) = &args.out {
        prepare_out_dir(out, args.force)?;
    }
    let out = OutDir::New {
        path: args.out.clone(),
        force: args.force,
    };
    match settings.precision {
        "f32" => train_typed::<f32>(settings, out, args.threads, args.quiet),
        _ => train_typed::<f64>(settings, out, args.threads, args.quiet),
    }
}

/// Where a run writes.
enum OutDir {
    /// A new run: `--out` or the default name (known once the preprocessing is resolved).
    New {
        /// `--out`, if given.
        path: Option<PathBuf>,
        /// `--force`.
        force: bool,
    },
    /// A resumed run.
    Resume {
        /// The run directory.
        dir: PathBuf,
        /// Its checkpoint.
        checkpoint: PathBuf,
    },
}

/// The files a run writes (removed by `--force`).
const RUN_FILES: [&str; 6] = [
    "model.safetensors",
    checkpoint::FILE_NAME,
    "metrics.csv",
    "curve.png",
    "density.png",
    "samples.png",
];

fn prepare_out_dir(out: &Path, force: bool) -> Result<()> {
    if out.exists() {
        ensure!(
            out.is_dir(),
            "{} exists and is not a directory",
            out.display()
        );
        let non_empty = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_some();
        if non_empty {
            ensure!(
                force,
                "the run directory {} already exists; pass --force to overwrite it, --out to choose another, or --resume {} to continue it",
                out.display(),
                out.display()
            );
            for f in RUN_FILES {
                let p = out.join(f);
                if p.exists() {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("removing {}", p.display()))?;
                }
            }
        }
    }
    Ok(())
}

/// Everything prepared before the first step.
struct Prepared {
    splits: Splits,
    pre: Preprocess,
    train: Transformed,
    val: Option<Transformed>,
    test: Option<Transformed>,
}

/// Loads, splits, checks and preprocesses the data. `fresh`: a new run (not resumed),
/// whose `--init` model is checked against the data.
fn prepare_data(settings: &Settings, fresh: bool) -> Result<Prepared> {
    let loaded = settings
        .source
        .load()
        .with_context(|| format!("loading the training data {}", settings.source.describe()))?;
    let splits = split(loaded, &settings.split)?;
    let desc = settings.source.describe();
    if let (true, InitChoice::Model(p)) = (fresh, &settings.init) {
        let (path, mf) = super::load_model(p).context("--init")?;
        super::check_dims(
            splits.train.table.cols,
            mf.model.dim(),
            &format!("the training data, {desc}"),
            &path,
        )?;
    }
    splits
        .train
        .table
        .check_finite(&format!("the training data ({desc})"))?;
    if let Some(v) = &splits.val {
        v.check_finite(&format!(
            "the validation data ({})",
            settings
                .split
                .val
                .as_ref()
                .map_or(desc.clone(), Source::describe)
        ))?;
    }
    if let Some(t) = &splits.test {
        t.check_finite(&format!(
            "the test data ({})",
            settings
                .split
                .test
                .as_ref()
                .map_or(desc.clone(), Source::describe)
        ))?;
    }
    let pre = match &settings.preprocess {
        Ok(p) => p.clone(),
        Err(kind) => Preprocess::fit(*kind, &splits.train, settings.levels)?,
    };
    let seed = settings.seed;
    let train = transform(
        &pre,
        &splits.train.table,
        seed,
        Part::Train,
        &format!("the training data ({desc})"),
    )?;
    let val = splits
        .val
        .as_ref()
        .map(|v| transform(&pre, v, seed, Part::Val, "the validation data"))
        .transpose()?;
    let test = splits
        .test
        .as_ref()
        .map(|t| transform(&pre, t, seed, Part::Test, "the test data"))
        .transpose()?;
    Ok(Prepared {
        splits,
        pre,
        train,
        val,
        test,
    })
}

fn build_model<T: Scalar>(
    settings: &Settings,
    train: &Mat<T>,
    threads: Threads,
) -> Result<InvertibleMlp<T>>
where
    relgrad::DefaultBackend: Backend<T>,
{
    let d = train.cols();
    let arch = Architecture {
        dim: d,
        n_layers: settings.layers,
        activation: settings.activation,
        base: settings.base,
        use_bias: true,
    };
    let be = backend(threads);
    let init = match &settings.init {
        InitChoice::Model(path) => {
            let (path, mf) = super::load_model(path).context("--init")?;
            super::check_dims(d, mf.model.dim(), "the training data", &path)?;
            return Ok(mf.model.cast());
        }
        InitChoice::Data { shift } => Init::DataDependent { shift: *shift },
        InitChoice::Orthogonal => Init::Orthogonal {
            seed: settings.seed,
        },
        InitChoice::Identity => Init::Identity,
    };
    init.build::<T, _>(arch, &be, Some(train.as_ref()))
        .map_err(|e| anyhow!("initialising the model: {e}"))
}

struct Progress {
    tty: bool,
    quiet: bool,
    bar: Option<ProgressBar>,
    rows: usize,
    epochs: usize,
}

impl Progress {
    fn start_epoch(&mut self, epoch: usize) {
        if self.quiet {
            return;
        }
        let bar = ProgressBar::with_draw_target(
            Some(self.rows as u64),
            if self.tty {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} rows, {rate}, eta {eta}",
            )
            .expect("a valid template")
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} rows/s", s.per_sec());
                },
            )
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        self.bar = Some(bar);
    }

    fn step(&mut self, epoch: usize, rows: usize) {
        if self.quiet {
            return;
        }
        if self.bar.is_none() {
            self.start_epoch(epoch);
        }
        if let Some(b) = &self.bar {
            b.inc(rows as u64);
        }
    }

    fn line(&mut self, text: String) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{text}");
        }
    }
}

fn fmt_ll(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}

fn metrics_csv(h: &relgrad::History) -> String {
    let mut s = String::from("epoch,train_ll,val_ll,seconds\n");
    let cell = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x}"));
    for m in &h.epochs {
        s.push_str(&format!(
            "{},{},{},{}\n",
            m.epoch,
            cell(m.train_ll),
            cell(m.val_ll),
            m.seconds
        ));
    }
    s
}

fn train_typed<T: Scalar>(
    settings: Settings,
    out: OutDir,
    threads: Threads,
    quiet: bool,
) -> Result<()>
where
    relgrad::DefaultBackend: Backend<T>,
{
    let started = Instant::now();
    let Prepared {
        splits,
        pre,
        train,
        val,
        test,
    } = prepare_data(&settings, matches!(out, OutDir::New { .. }))?;
    let n_train = train.table.rows;
    let constant = constant_columns(&train.table);
    if !constant.is_empty() && !quiet {
        eprintln!("warning: {}", constant_hint(&constant));
    }
    let d = train.table.cols;
    let train_m = train.table.to_mat::<T>();
    let val_m = val.as_ref().map(|v| v.table.to_mat::<T>());

    let mut settings = settings;
    settings.preprocess = Ok(pre.clone());
    let (out, resume) = match out {
        OutDir::New { path, force } => {
            let path = path.unwrap_or_else(|| settings.default_out());
            prepare_out_dir(&path, force)?;
            (path, None)
        }
        OutDir::Resume { dir, checkpoint } => (dir, Some(checkpoint)),
    };
    let out = out.as_path();
    let (mut model, state) = match resume.as_deref() {
        Some(ckpt) => {
            let c = Checkpoint::<T>::load(ckpt)?;
            ensure!(
                c.current.dim() == d,
                "the checkpoint's model has dimension {}, the data {d}",
                c.current.dim()
            );
            (c.current, Some(c.state))
        }
        None => (build_model::<T>(&settings, &train_m, threads)?, None),
    };
    let config = TrainConfig {
        optimizer: settings.optimizer,
        batch_size: settings.batch_size.min(n_train),
        epochs: settings.epochs,
        look_ahead: (settings.look_ahead > 0).then_some(settings.look_ahead),
        seed: settings.seed,
        shuffle: settings.shuffle,
        gradient: settings.gradient,
        train_eval_rows: 10_000,
    };
    let mut trainer =
        Trainer::new(&model, backend(threads), config, n_train).map_err(|e| anyhow!("{e}"))?;
    if let Some(st) = state {
        trainer
            .restore(st)
            .map_err(|e| anyhow!("restoring the checkpoint: {e}"))?;
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the run directory {}", out.display()))?;
    let ckpt_path = out.join(checkpoint::FILE_NAME);
    let run_json = settings.to_json();
    let save_checkpoint = |model: &InvertibleMlp<T>, state: TrainerState<T>| -> Result<()> {
        let c = Checkpoint {
            run: run_json.clone(),
            current: model.clone(),
            state,
        };
        c.save(&ckpt_path)?;
        crate::util::write_atomic(
            &out.join("metrics.csv"),
            metrics_csv(&c.state.history).as_bytes(),
        )
    };

    if !quiet {
        eprintln!(
            "training {} layers on {} ({} training rows, {} validation, {} test; {d}-d, {} preprocessing) with {} lr {} in {}; run directory {}",
            settings.layers,
            settings.source.describe(),
            n_train,
            val.as_ref().map_or(0, |v| v.table.rows),
            test.as_ref().map_or(0, |t| t.table.rows),
            pre.name(),
            settings.optimizer.name(),
            settings.optimizer.lr(),
            T::NAME,
            out.display()
        );
        if trainer.epochs_done() > 0 {
            eprintln!("resuming after epoch {}", trainer.epochs_done());
        }
    }
    let mut progress = Progress {
        tty: std::io::stderr().is_terminal(),
        quiet,
        bar: None,
        rows: n_train,
        epochs: settings.epochs,
    };
    let outcome = loop {
        let mut at_epoch = false;
        let r = trainer.fit_with(
            &mut model,
            train_m.as_ref(),
            val_m.as_ref().map(|v| v.as_ref()),
            |event, _| match event {
                TrainEvent::Step { epoch, rows, .. } => {
                    progress.step(epoch, rows);
                    if INTERRUPTED.load(Ordering::SeqCst) {
                        Flow::Stop
                    } else {
                        Flow::Continue
                    }
                }
                TrainEvent::Epoch(m) => {
                    let secs = m.seconds.max(1e-9);
                    progress.line(format!(
                        "epoch {:>4}/{}  train {:>10}  val {:>10}  {:.3} s  {:.0} rows/s",
                        m.epoch,
                        settings.epochs,
                        fmt_ll(m.train_ll),
                        fmt_ll(m.val_ll),
                        m.seconds,
                        if m.epoch == 0 {
                            0.0
                        } else {
                            n_train as f64 / secs
                        }
                    ));
                    at_epoch = true;
                    Flow::Stop
                }
            },
        );
        match r {
            Ok(true) => break Ok(()),
            Ok(false) if at_epoch => {
                save_checkpoint(&model, trainer.state())?;
                if INTERRUPTED.load(Ordering::SeqCst) {
                    break Err(trainer.epochs_done());
                }
            }
            Ok(false) => break Err(trainer.epochs_done()),
            Err(CoreError::Diverged { epoch, best_epoch }) => {
                if let Some(b) = progress.bar.take() {
                    b.finish_and_clear();
                }
                let model_path = out.join("model.safetensors");
                let saved = finish(
                    &settings,
                    &model,
                    trainer.history(),
                    &splits,
                    &pre,
                    &train,
                    val.as_ref(),
                    test.as_ref(),
                    out,
                    threads,
                    started,
                    true,
                );
                let saved = match saved {
                    Ok(_) => format!(
                        "the best parameters (epoch {best_epoch}) were saved to {}",
                        model_path.display()
                    ),
                    Err(e) => format!("saving the best parameters failed too: {e:#}"),
                };
                return Err(ExitError {
                    message: format!(
                        "training diverged at epoch {epoch} (non-finite log-likelihood or gradient); {saved}; try a lower learning rate, e.g. --lr {}{}",
                        short_float(settings.optimizer.lr() / 10.0),
                        if constant.is_empty() { String::new() } else { format!(" (but note: {})", constant_hint(&constant)) }
                    ),
                    code: EXIT_DIVERGED,
                }
                .into());
            }
            Err(e) => return Err(anyhow!("training failed: {e}")),
        }
    };
    if let Err(done) = outcome {
        if let Some(b) = progress.bar.take() {
            b.finish_and_clear();
        }
        return Err(ExitError {
            message: format!(
                "interrupted; the checkpoint of epoch {done} in {} is intact; continue with: relgrad train --resume {}",
                out.display(),
                out.display()
            ),
            code: EXIT_INTERRUPTED,
        }
        .into());
    }
    let history = trainer.history().clone();
    let summary = finish(
        &settings,
        &model,
        &history,
        &splits,
        &pre,
        &train,
        val.as_ref(),
        test.as_ref(),
        out,
        threads,
        started,
        false,
    )?;
    println!("{summary}");
    Ok(())
}

/// Final metrics, the model file, the figures; returns the summary line.
#[allow(clippy::too_many_arguments)]
fn finish<T: Scalar>(
    settings: &Settings,
    model: &InvertibleMlp<T>,
    history: &relgrad::History,
    splits: &Splits,
    pre: &Preprocess,
    train: &Transformed,
    val: Option<&Transformed>,
    test: Option<&Transformed>,
    out: &Path,
    threads: Threads,
    started: Instant,
    diverged: bool,
) -> Result<String>
where
    relgrad::DefaultBackend: Backend<T>,
{
    let any = if T::NAME == "f32" {
        AnyModel::F32(model.cast())
    } else {
        AnyModel::F64(model.cast())
    };
    let gaussian = fit_gaussian(&train.table, threads).ok();
    let g = gaussian.as_ref().map(|g| (g, "training split"));
    let ev_train = Evaluation::compute(&any, pre, train, g, threads)?;
    let ev_val = val
        .map(|v| Evaluation::compute(&any, pre, v, g, threads))
        .transpose()?;
    let ev_test = test
        .map(|t| Evaluation::compute(&any, pre, t, g, threads))
        .transpose()?;
    let seconds = started.elapsed().as_secs_f64();
    let mut training = settings.to_json();
    for k in ["source", "split", "preprocess", "levels"] {
        training.as_object_mut().expect("an object").remove(k);
    }
    training["epochs_run"] = history.epochs.last().map_or(0, |m| m.epoch).into();
    training["best_epoch"] = history.best_epoch.into();
    training["stopped_early"] = history.stopped_early.into();
    training["diverged"] = diverged.into();
    training["seconds"] = seconds.into();
    let data = json!({
        "source": settings.source.to_json(),
        "split": settings.split.to_json(),
        "rows": {
            "train": train.table.rows,
            "val": val.map_or(0, |v| v.table.rows),
            "test": test.map_or(0, |t| t.table.rows),
        },
        "cols": train.table.cols,
        "test_origin": splits.test_origin,
        "levels": pre.levels(),
    });
    let metrics = json!({
        "space": pre.space_name(),
        "train": ev_train.to_json(),
        "val": ev_val.as_ref().map(Evaluation::to_json),
        "test": ev_test.as_ref().map(Evaluation::to_json),
    });
    let mf = ModelFile {
        model: any,
        preprocess: pre.clone(),
        image: splits
            .train
            .image
            .or_else(|| square_image(train.table.cols, pre)),
        data,
        training,
        metrics,
    };
    let model_path = out.join("model.safetensors");
    mf.save(&model_path)?;

    // Figures: failures are warnings.
    let warn = |r: Result<()>| {
        if let Err(e) = r {
            eprintln!("warning: {e:#}");
        }
    };
    let points: Vec<_> = history
        .epochs
        .iter()
        .map(|m| (m.epoch, m.train_ll, m.val_ll))
        .collect();
    warn(plots::learning_curve(
        &out.join("curve.png"),
        &format!(
            "{}: mean log-likelihood ({})",
            settings.source.short_name(),
            pre.space_name()
        ),
        &points,
        history.best_epoch,
    ));
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x5A3F);
    let be = backend(threads);
    if train.table.cols == 2 {
        let grid = plots::Grid2::around(&splits.train.table, 120);
        let pts = grid.points();
        let r = (|| -> Result<()> {
            let tp = pre.apply(&pts, 0, "grid")?;
            let lp = super::log_prob_rows(model, threads, &tp.table)?;
            let lp: Vec<f64> = lp
                .iter()
                .zip(&tp.log_jacobian)
                .map(|(a, b)| a + b)
                .collect();
            let s = model
                .sample(&be, 2000, &mut rng)
                .map_err(|e| anyhow!("sampling: {e}"))?;
            let s = pre.invert(&Table::new(
                s.rows(),
                s.cols(),
                s.as_slice().iter().map(|v| v.to_f64c()).collect(),
            ));
            plots::density_2d(
                &out.join("density.png"),
                &settings.source.short_name(),
                grid,
                &lp,
                &s,
                &splits.train.table,
            )
        })();
        warn(r);
    } else if let (Some(shape), Some(levels)) = (mf.image, pre.levels()) {
        let r = (|| -> Result<()> {
            let s = model
                .sample(&be, 64, &mut rng)
                .map_err(|e| anyhow!("sampling: {e}"))?;
            let s = pre.invert(&Table::new(
                s.rows(),
                s.cols(),
                s.as_slice().iter().map(|v| v.to_f64c()).collect(),
            ));
            plots::image_grid(&out.join("samples.png"), &s, shape, levels as f64, 8)
        })();
        warn(r);
    }

    // Report.
    let space = pre.space_name();
    let part = |name: &str, e: &Option<Evaluation>| {
        e.as_ref().map(|e| format!("{name} {}", e.ll.display(2)))
    };
    let parts: Vec<String> = [
        Some(format!("train {}", ev_train.ll.display(2))),
        part("val", &ev_val),
        part("test", &ev_test),
    ]
    .into_iter()
    .flatten()
    .collect();
    let gparts: Vec<String> = [
        ev_train
            .gaussian
            .map(|(g, _)| format!("train {}", g.display(2))),
        ev_val
            .as_ref()
            .and_then(|e| e.gaussian)
            .map(|(g, _)| format!("val {}", g.display(2))),
        ev_test
            .as_ref()
            .and_then(|e| e.gaussian)
            .map(|(g, _)| format!("test {}", g.display(2))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut report = String::new();
    report.push_str(&format!("model:    {}\n", model_path.display()));
    report.push_str(&format!("model LL: {} nats ({space})\n", parts.join(" | ")));
    if !gparts.is_empty() {
        report.push_str(&format!(
            "Gaussian: {} nats (best full-covariance Gaussian of the training split)\n",
            gparts.join(" | ")
        ));
    }
    let headline = ev_test.as_ref().or(ev_val.as_ref()).unwrap_or(&ev_train);
    let headline_name = if ev_test.is_some() {
        "test"
    } else if ev_val.is_some() {
        "val"
    } else {
        "train"
    };
    if let Some(levels) = pre.levels() {
        let b = headline.bits_per_dim.expect("image data have bits/dim");
        report.push_str(&format!(
            "pixels:   {headline_name} {} nats in pixel space ({levels} levels), {} bits/dim\n",
            headline.ll_data.display(2),
            b.display(4)
        ));
    } else if !matches!(pre, Preprocess::None) {
        report.push_str(&format!(
            "data:     {headline_name} {} nats in the data's units\n",
            headline.ll_data.display(2)
        ));
    }
    let stop = if history.stopped_early {
        format!(
            ", stopped early after {} epochs without improvement",
            settings.look_ahead
        )
    } else {
        String::new()
    };
    let beats = headline
        .gaussian
        .map(|(g, _)| {
            let verdict = if headline.ll.mean > g.mean {
                "beats"
            } else {
                "does not beat"
            };
            format!(" ({verdict} the Gaussian's {:.2})", g.mean)
        })
        .unwrap_or_default();
    report.push_str(&format!(
        "done: {} epochs in {:.1} s (best epoch {}{stop}); {headline_name} LL {} nats{beats}",
        history.epochs.last().map_or(0, |m| m.epoch),
        seconds,
        history.best_epoch,
        headline.ll.display(2),
    ));
    Ok(report)
}

/// The (zero-based) columns of `t` whose training values are all equal.
fn constant_columns(t: &Table) -> Vec<usize> {
    (0..t.cols)
        .filter(|&j| (1..t.rows).all(|i| t.get(i, j) == t.get(0, j)))
        .collect()
}

fn constant_hint(cols: &[usize]) -> String {
    let list: Vec<String> = cols.iter().take(8).map(|j| (j + 1).to_string()).collect();
    let more = if cols.len() > 8 { ", ..." } else { "" };
    format!(
        "{} column(s) of the training data are constant (columns {}{more}): no density fits them and the likelihood is unbounded; drop them, or dequantise integer data (--preprocess logit, with --levels)",
        cols.len(),
        list.join(", ")
    )
}

/// A square image shape for image data of `cols` pixels without a recorded shape.
fn square_image(cols: usize, pre: &Preprocess) -> Option<ImageShape> {
    pre.levels()?;
    let side = (cols as f64).sqrt().round() as usize;
    (side * side == cols).then_some(ImageShape {
        height: side,
        width: side,
    })
}

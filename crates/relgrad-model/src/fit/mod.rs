//! The fit pipeline: data in the data's units in, a [`DensityModel`] and its history out,
//! with preprocessing fitted on the training rows, the start, early stopping, divergence
//! handling (the best parameters are kept), progress and cancellation hooks, and
//! checkpoints that resume to the same result as an uninterrupted run.
//!
//! The CLI, the Python package and user programs all train through [`Fit`]:
//!
//! ```text
//! Fit::new(&backend, config, train, val)?   // validate, fit the preprocessing, transform
//!     .run(&mut hooks)?                      // train; -> Fitted { model, history, stop, .. }
//! Fit::resume(&backend, checkpoint, train, val, max_epochs)?.run(&mut hooks)?
//! ```
//!
//! Data-parallel training: [`Fit::distributed`] and [`Fit::resume_distributed`] take a
//! [`Collective`] (MPI through `relgrad-mpi`, or any other) and this process's rows of
//! the training and validation sets ([`Sharded`]). Every process runs the same pipeline
//! and gets the same [`Fitted`]: the preprocessing, the start, the steps, the
//! log-likelihoods and the final evaluation are formed from sums across the group, and
//! equal a single process's on all the rows up to rounding. A process that fails on its
//! own rows or files (bad values, a checkpoint it cannot write) makes every process
//! return [`Error::Rank`] naming it, at the next point where they agree (before training,
//! after every epoch): none waits for a process that has stopped.

use std::time::Instant;

use relgrad_core::gaussian::Gaussian;
use relgrad_core::init::Architecture;
use relgrad_core::{
    Alone, Backend, Collective, Error as CoreError, Flow, History, Init, InvertibleMlp, Mat,
    MatRef, Scalar, Shard, TrainConfig, TrainEvent, Trainer,
};
use serde_json::{json, Value};

mod prepare;

pub use prepare::Sharded;

use crate::across;
use crate::checkpoint::{AnyCheckpoint, Checkpoint};
use crate::config::{FitConfig, Start};
use crate::diagnosis::{divergence_advice, DivergenceFacts};
use crate::error::{agreed, Error, Result};
use crate::evaluation::{Evaluation, QUANTILE_LEVELS};
use crate::fingerprint::Fingerprint;
use crate::hooks::FitHooks;
use crate::model::DensityModel;
use crate::network::{ModelBackend, Network, Precision};
use crate::preprocess::{Preprocess, Transformed};

/// Why a fit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The maximum number of epochs ran.
    MaxEpochs,
    /// The look-ahead ran out without a better validation log-likelihood.
    EarlyStopped,
    /// A non-finite log-likelihood or gradient appeared in `epoch`; the model holds the
    /// best parameters before it.
    Diverged {
        /// The epoch that diverged.
        epoch: usize,
    },
    /// A hook asked to stop after `epochs_done` complete epochs; the model holds the best
    /// parameters so far and carries no final metrics.
    Cancelled {
        /// Epochs completed.
        epochs_done: usize,
    },
}

/// The result of a fit.
#[derive(Clone, Debug)]
pub struct Fitted {
    /// The model with the best parameters, its preprocessing and metadata.
    pub model: DensityModel,
    /// The per-epoch record.
    pub history: History,
    /// Why training ended.
    pub stop: Stop,
    /// The best full-covariance Gaussian of the training rows (network space), if it
    /// could be fitted: the reference the metrics compare against.
    pub reference: Option<Gaussian>,
    /// Final log-likelihoods of the training rows (not after a cancel).
    pub train: Option<Evaluation>,
    /// Final log-likelihoods of the validation rows.
    pub val: Option<Evaluation>,
    /// Wall-clock seconds of the whole fit.
    pub seconds: f64,
    /// After a divergence: its likely causes and their remedies, in the CLI's terms (see
    /// [`crate::diagnosis`]).
    pub advice: Option<String>,
}

/// A prepared fit: settings checked, preprocessing fitted, data transformed.
pub struct Fit<B, C: Collective = Alone> {
    backend: B,
    comm: C,
    config: FitConfig,
    preprocess: Preprocess,
    train: Transformed,
    train_shard: Shard,
    val: Option<(Transformed, Shard)>,
    fingerprint: Fingerprint,
    resume: Option<AnyCheckpoint>,
}

impl<B, C: Collective> Fit<B, C> {
    /// The fitted preprocessing.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The settings.
    pub fn config(&self) -> &FitConfig {
        &self.config
    }

    /// Training rows (of every process).
    pub fn n_train(&self) -> usize {
        self.train_shard.total
    }

    /// Validation rows (of every process).
    pub fn n_val(&self) -> usize {
        self.val.as_ref().map_or(0, |v| v.1.total)
    }

    /// Epochs already done (non-zero for a resumed run).
    pub fn epochs_done(&self) -> usize {
        let h = match &self.resume {
            Some(AnyCheckpoint::F32(c)) => &c.state.history,
            Some(AnyCheckpoint::F64(c)) => &c.state.history,
            None => return 0,
        };
        h.epochs.last().map_or(0, |m| m.epoch)
    }

    /// The (zero-based) columns whose training values (this process's) are all equal: no
    /// density fits them, and the likelihood is unbounded.
    pub fn constant_columns(&self) -> Vec<usize> {
        let t = &self.train.x;
        (0..t.cols())
            .filter(|&j| (1..t.rows()).all(|i| t.get(i, j) == t.get(0, j)))
            .collect()
    }
}

impl<B: ModelBackend + Clone, C: Collective> Fit<B, C> {
    /// The checkpoints' `run`: settings, preprocessing, fingerprint and the caller's info.
    fn run_json(&self) -> Value {
        let mut run = match &self.config.run_info {
            Value::Object(o) => Value::Object(o.clone()),
            _ => json!({}),
        };
        if let (Value::Object(r), Value::Object(c)) = (&mut run, self.config.to_json()) {
            r.extend(c);
            r.insert("preprocess".into(), self.preprocess.to_json());
            r.insert("data_fingerprint".into(), self.fingerprint.to_json());
        }
        if let Value::Object(i) = &self.config.run_info["init"] {
            run["init"] = Value::Object(i.clone());
        }
        run
    }

    /// Trains, calling `hooks` as it goes.
    pub fn run(mut self, hooks: &mut impl FitHooks) -> Result<Fitted> {
        let started = Instant::now();
        let resume = self.resume.take();
        let (network, history, stop) = match (self.config.precision, resume) {
            (Precision::F32, Some(AnyCheckpoint::F32(c))) => {
                self.train_typed::<f32>(Some(c), hooks)?
            }
            (Precision::F64, Some(AnyCheckpoint::F64(c))) => {
                self.train_typed::<f64>(Some(c), hooks)?
            }
            (Precision::F32, None) => self.train_typed::<f32>(None, hooks)?,
            (Precision::F64, None) => self.train_typed::<f64>(None, hooks)?,
            _ => unreachable!("resume sets the precision of its checkpoint"),
        };
        self.finish(network, history, stop, started)
    }

    fn start<T: Scalar>(&self, train: &Mat<T>) -> Result<InvertibleMlp<T>>
    where
        B: Backend<T>,
    {
        let c = &self.config;
        let arch = Architecture {
            dim: train.cols(),
            n_layers: c.n_layers,
            activation: c.activation,
            base: c.base,
            use_bias: true,
        };
        let init = match &c.start {
            Start::Model(m) => return Ok(m.network.cast()),
            Start::Data { shift } => Init::DataDependent { shift: *shift },
            Start::Orthogonal => Init::Orthogonal { seed: c.seed },
            Start::Identity => Init::Identity,
        };
        init.build_distributed::<T, B, C>(
            arch,
            &self.backend,
            Some(train.as_ref()),
            self.train_shard,
            &self.comm,
        )
        .map_err(|e| Error::Config(format!("initialising the model: {e}")))
    }

    fn train_typed<T: Scalar>(
        &self,
        resume: Option<Checkpoint<T>>,
        hooks: &mut impl FitHooks,
    ) -> Result<(Network, History, Stop)>
    where
        B: Backend<T>,
    {
        let train: Mat<T> = self.train.x.cast();
        let val: Option<Mat<T>> = self.val.as_ref().map(|v| v.0.x.cast());
        let n = self.train_shard.total;
        let (mut model, state) = match resume {
            Some(c) => {
                if c.current.dim() != train.cols() {
                    return Err(Error::Config(format!(
                        "the checkpoint's model has dimension {}, the data {}",
                        c.current.dim(),
                        train.cols()
                    )));
                }
                (c.current, Some(c.state))
            }
            None => (self.start(&train)?, None),
        };
        let c = &self.config;
        let tc = TrainConfig {
            optimizer: c.optimizer,
            batch_size: c.batch_size.min(n),
            epochs: c.max_epochs,
            look_ahead: (c.look_ahead > 0).then_some(c.look_ahead),
            seed: c.seed,
            shuffle: c.shuffle,
            gradient: c.gradient,
            train_eval_rows: c.train_eval_rows,
            lr_decays: c.lr_decays,
            lr_decay: c.lr_decay,
            step: relgrad_core::StepPath::Auto,
            spline_optimizer: c.spline_optimizer,
        };
        let val_shard = self.val.as_ref().map(|v| v.1);
        let mut trainer = Trainer::distributed(
            &model,
            self.backend.clone(),
            tc,
            self.train_shard,
            val_shard,
            &self.comm,
        )?;
        if let Some(st) = state {
            trainer
                .restore(st)
                .map_err(|e| Error::Config(format!("restoring the checkpoint: {e}")))?;
        }
        let run = hooks.wants_checkpoints().then(|| self.run_json());
        let stop = loop {
            let (mut at_epoch, mut cancel) = (false, false);
            let r = trainer.fit_with(
                &mut model,
                train.as_ref(),
                val.as_ref().map(|v| v.as_ref()),
                |event, _| match event {
                    TrainEvent::Step { epoch, rows, .. } => {
                        cancel = hooks.step(epoch, rows) == Flow::Stop;
                        if cancel {
                            Flow::Stop
                        } else {
                            Flow::Continue
                        }
                    }
                    TrainEvent::Epoch(m) => {
                        cancel = hooks.epoch(m) == Flow::Stop;
                        at_epoch = true;
                        Flow::Stop
                    }
                },
            );
            match r {
                Ok(true) if trainer.history().stopped_early => break Stop::EarlyStopped,
                Ok(true) => break Stop::MaxEpochs,
                Ok(false) => {
                    if at_epoch {
                        // Only some processes may write (or fail to); all agree.
                        let saved = run.as_ref().map_or(Ok(()), |run| {
                            hooks.checkpoint(&Checkpoint {
                                run: run.clone(),
                                current: model.clone(),
                                state: trainer.state(),
                            })
                        });
                        agreed(&self.comm, saved)?;
                        cancel = self.comm.any(cancel);
                    }
                    if cancel || !at_epoch {
                        model.copy_parameters_from(&trainer.state().best);
                        break Stop::Cancelled {
                            epochs_done: trainer.epochs_done(),
                        };
                    }
                }
                Err(CoreError::Diverged { epoch, .. }) => break Stop::Diverged { epoch },
                Err(e) => return Err(e.into()),
            }
        };
        Ok((Network::from_mlp(&model), trainer.history().clone(), stop))
    }

    fn finish(
        self,
        network: Network,
        history: History,
        stop: Stop,
        started: Instant,
    ) -> Result<Fitted> {
        let mut training = self.config.to_json();
        if let Value::Object(o) = &mut training {
            o.remove("levels");
            // The caller's description of the start (e.g. a model's path) wins.
            if let Value::Object(i) = &self.config.run_info["init"] {
                o.insert("init".into(), Value::Object(i.clone()));
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        training["epochs_run"] = history.epochs.last().map_or(0, |m| m.epoch).into();
        training["best_epoch"] = history.best_epoch.into();
        training["stopped_early"] = history.stopped_early.into();
        training["lr_decayed_after"] = history.decays.clone().into();
        training["diverged"] = matches!(stop, Stop::Diverged { .. }).into();
        training["seconds"] = seconds.into();
        let mut model = DensityModel {
            network,
            preprocess: self.preprocess.clone(),
            image: None,
            seed: self.config.seed,
            train_quantiles: None,
            data: json!({
                "rows": {"train": self.n_train(), "val": self.n_val()},
                "cols": self.train.x.cols(),
                "levels": self.preprocess.levels(),
            }),
            training,
            metrics: Value::Null,
        };
        let (mut reference, mut train, mut val) = (None, None, None);
        if !matches!(stop, Stop::Cancelled { .. }) {
            let (be, comm) = (&self.backend, &self.comm);
            reference = Gaussian::fit_across::<f64, B, C>(be, self.train.x.as_ref(), comm).ok();
            let g = reference.as_ref().map(|g| (g, "training split"));
            let ev = model.evaluate_across(be, &self.train, g, comm);
            let (ev, lp_data) = agreed(comm, ev)?;
            model.train_quantiles = across::quantiles_of(&lp_data, &QUANTILE_LEVELS, comm);
            train = Some(ev);
            val = match &self.val {
                Some((v, _)) => Some(agreed(comm, model.evaluate_across(be, v, g, comm))?.0),
                None => None,
            };
            model.metrics = json!({
                "space": self.preprocess.space_name(),
                "train": train.as_ref().map(Evaluation::to_json),
                "val": val.as_ref().map(Evaluation::to_json),
            });
        }
        let advice = matches!(stop, Stop::Diverged { .. }).then(|| {
            divergence_advice(&DivergenceFacts {
                config: &self.config,
                history: &history,
                max_abs: across::max(
                    self.train
                        .x
                        .as_slice()
                        .iter()
                        .fold(0.0, |a, v| a.max(v.abs())),
                    &self.comm,
                ),
                gaussian_ll: train
                    .as_ref()
                    .and_then(|e| e.gaussian.as_ref().map(|(g, _)| g.mean)),
            })
        });
        Ok(Fitted {
            model,
            history,
            stop,
            reference,
            train,
            val,
            seconds: started.elapsed().as_secs_f64(),
            advice,
        })
    }
}

/// Fits a model in one call with [`FitConfig`]'s settings: see [`Fit`]. A divergence is
/// not an error here: check [`Fitted::stop`].
pub fn fit<B: ModelBackend + Clone>(
    backend: &B,
    config: &FitConfig,
    train: MatRef<'_, f64>,
    val: Option<MatRef<'_, f64>>,
) -> Result<Fitted> {
    Fit::new(backend, config.clone(), train, val)?.run(&mut ())
}

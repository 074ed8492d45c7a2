//! The training loop: epochs over shuffled mini-batches, validation every epoch,
//! look-ahead early stopping that restores the best parameters, divergence handling.
//!
//! Protocol (as in the paper): the starting parameters are evaluated as epoch 0; after
//! every epoch the validation log-likelihood is computed; the best parameters so far are
//! kept; training stops when `look_ahead` epochs pass without improvement, and the best
//! parameters are restored. So training never returns a model that is worse on validation
//! than its start. With `lr_decays > 0`, the first such plateaus do not stop training:
//! the best parameters are restored, the learning rate is multiplied by `lr_decay`, the
//! optimizer's moments start afresh and training goes on (decay on plateau). A diverged
//! epoch with decays left is treated the same way (its step was too large). Otherwise a
//! non-finite log-likelihood or parameter stops training with [`Error::Diverged`], again
//! with the best parameters restored.
//!
//! Shuffling is seeded per epoch from `(seed, epoch)`, so a run continued from a
//! checkpoint of epoch `k` visits the same batches as an uninterrupted one.
//!
//! Data-parallel training ([`Trainer::distributed`]): every process of a [`Collective`]
//! holds a replica of the model and a [`Shard`] of the training (and validation) rows.
//! All draw the same shuffle of the whole set, so a step's global batch is the one a
//! single process would take; each process forms its rows' share of the update direction
//! ([`crate::gradient::partial_gradient`]), one reduction of a single packed buffer per
//! step adds the shares, and every process applies the same optimizer step. Log-likelihoods are summed
//! the same way, so early stopping and divergence are decided identically everywhere.
//! A stop asked for by a callback on any process is passed along with the next step's
//! reduction (or at the end of the epoch), and every process stops at the same step.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

mod distributed;

use crate::backend::Backend;
use crate::collective::{Alone, Collective, Shard};
use crate::error::{Error, Result};
use crate::gradient::GradientKind;
use crate::matrix::{Mat, MatRef};
use crate::mlp::InvertibleMlp;
use crate::optim::{Optimizer, OptimizerState};
use crate::scalar::Scalar;
use crate::step::{train_step, StepPath};
use crate::workspace::Workspace;

/// Training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// The optimizer and its hyper-parameters.
    pub optimizer: Optimizer,
    /// Rows per mini-batch (the last batch of an epoch may be smaller). A batch size of at
    /// least the number of rows is full-batch training.
    pub batch_size: usize,
    /// The maximum number of epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation log-likelihood
    /// (`None`: run all epochs; the best parameters are still restored).
    pub look_ahead: Option<usize>,
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
    /// Whether to shuffle rows every epoch.
    pub shuffle: bool,
    /// Which gradient drives the optimizer.
    pub gradient: GradientKind,
    /// Rows of the training set (a prefix) whose exact log-likelihood is reported after
    /// every epoch (`0`: do not report).
    pub train_eval_rows: usize,
    /// How many plateaus (`look_ahead` epochs without a better validation
    /// log-likelihood) or diverged epochs decay the learning rate instead of stopping
    /// training (`0`: the first plateau or divergence ends training).
    pub lr_decays: usize,
    /// What a decay multiplies the learning rate by, in `(0, 1)`.
    pub lr_decay: f64,
    /// Whether steps are fused (see [`crate::step`]); only single-process training fuses.
    pub step: StepPath,
    /// The spline parameters' optimizer, for a model with spline activations (Adam at
    /// [`crate::optim::SPLINE_LR`] by default); its rate decays with `optimizer`'s.
    pub spline_optimizer: Optimizer,
}

/// The defaults: SGD with momentum 0.9 and learning rate `1e-3` (the relative gradient is
/// equivariant and SGD keeps that; Adam's per-coordinate scaling does not, and measured on
/// the digits data it barely moves from a data-dependent start, see `docs/algorithm.md`),
/// batches of 100, up to 100 epochs, look-ahead 10, no decay on plateau (a decay
/// multiplies the learning rate by 0.3).
impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::Sgd {
                lr: 1e-3,
                momentum: 0.9,
            },
            batch_size: 100,
            epochs: 100,
            look_ahead: Some(10),
            seed: 0,
            shuffle: true,
            gradient: GradientKind::Relative,
            train_eval_rows: 10_000,
            lr_decays: 0,
            lr_decay: 0.3,
            step: StepPath::Auto,
            spline_optimizer: Optimizer::adam(crate::optim::SPLINE_LR),
        }
    }
}

impl TrainConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        self.optimizer.validate().map_err(Error::InvalidConfig)?;
        self.spline_optimizer
            .validate()
            .map_err(|e| Error::InvalidConfig(format!("the spline optimizer: {e}")))?;
        if self.batch_size == 0 {
            return Err(Error::InvalidConfig(
                "the batch size must be at least 1".into(),
            ));
        }
        check_lr_decay(self.lr_decay).map_err(Error::InvalidConfig)?;
        if self.look_ahead == Some(0) {
            return Err(Error::InvalidConfig(
                "the look-ahead must be at least 1 epoch".into(),
            ));
        }
        Ok(())
    }
}

/// Checks a learning-rate decay factor: in `(0, 1)`.
pub fn check_lr_decay(decay: f64) -> std::result::Result<(), String> {
    if decay > 0.0 && decay < 1.0 {
        Ok(())
    } else {
        Err(format!(
            "the learning-rate decay must be a factor between 0 and 1, got {decay}"
        ))
    }
}

/// Metrics of one epoch (epoch 0 is the starting point, before any step).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    /// The epoch, 0 for the starting parameters.
    pub epoch: usize,
    /// Mean log-likelihood of (a prefix of) the training set, nats.
    pub train_ll: Option<f64>,
    /// Mean validation log-likelihood, nats.
    pub val_ll: Option<f64>,
    /// Wall-clock seconds of the epoch's steps.
    pub seconds: f64,
    /// Optimizer steps in the epoch.
    pub steps: usize,
}

/// The per-epoch record of a training run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One entry per evaluated epoch, starting with epoch 0.
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose parameters are the result.
    pub best_epoch: usize,
    /// Whether the look-ahead stopped training before the last epoch.
    pub stopped_early: bool,
    /// The epochs after which the learning rate was decayed (a plateau or a diverged
    /// epoch with decays left), in order.
    pub decays: Vec<usize>,
}

impl History {
    /// The learning rate in force after the decays so far, from the starting `lr`.
    pub fn learning_rate(&self, lr: f64, decay: f64) -> f64 {
        self.decays.iter().fold(lr, |lr, _| lr * decay)
    }

    /// The metrics of the best epoch.
    pub fn best(&self) -> Option<&EpochMetrics> {
        self.epochs.iter().find(|m| m.epoch == self.best_epoch)
    }
}

/// What the training loop reports as it goes (for progress bars and logs).
#[derive(Clone, Debug)]
pub enum TrainEvent<'a> {
    /// One optimizer step finished.
    Step {
        /// The epoch (1-based).
        epoch: usize,
        /// Steps done in this epoch.
        step: usize,
        /// Steps per epoch.
        steps_per_epoch: usize,
        /// Rows processed in this step.
        rows: usize,
    },
    /// An epoch (or the starting evaluation, epoch 0) was evaluated.
    Epoch(&'a EpochMetrics),
}

/// What a [`Trainer::fit_with`] callback asks of the training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Flow {
    /// Go on training.
    #[default]
    Continue,
    /// Stop now, without restoring the best parameters (e.g. on Ctrl-C).
    Stop,
}

/// A training run in progress: optimizer state, buffers, the best parameters and the
/// history. Made once; [`Trainer::fit`] runs epochs without allocating per step. With a
/// [`Collective`] of several processes, one of a group training together (see the
/// module docs).
pub struct Trainer<T: Scalar, B: Backend<T>, C: Collective = Alone> {
    config: TrainConfig,
    backend: B,
    state: OptimizerState<T>,
    ws: Workspace<T, B>,
    best: InvertibleMlp<T>,
    best_score: f64,
    history: History,
    order: Vec<usize>,
    batch: Mat<T>,
    /// Rows per global batch.
    batch_size: usize,
    comm: C,
    /// The training rows this process holds.
    shard: Shard,
    /// The validation rows this process holds (`None`: all that it is given).
    val_shard: Option<Shard>,
    /// Send and receive buffers of the per-step reduction: the packed update direction
    /// and one stop vote (empty for a single process).
    send: Vec<T>,
    recv: Vec<T>,
    /// A callback on this process asked to stop; passed on with the next reduction.
    stop_vote: bool,
}

/// The checkpointable part of a [`Trainer`].
#[derive(Clone, Debug)]
pub struct TrainerState<T> {
    /// Optimizer steps taken.
    pub steps: u64,
    /// Optimizer buffers (first moments or velocities).
    pub m: Vec<Vec<T>>,
    /// Optimizer buffers (second moments).
    pub v: Vec<Vec<T>>,
    /// The best parameters so far.
    pub best: InvertibleMlp<T>,
    /// The history so far.
    pub history: History,
}

impl<T: Scalar, B: Backend<T>> Trainer<T, B> {
    /// A trainer for `model` (its shape and starting parameters) on `n_train` rows.
    pub fn new(
        model: &InvertibleMlp<T>,
        backend: B,
        config: TrainConfig,
        n_train: usize,
    ) -> Result<Self> {
        Trainer::distributed(model, backend, config, Shard::whole(n_train), None, Alone)
    }
}

impl<T: Scalar, B: Backend<T>, C: Collective> Trainer<T, B, C> {
    /// A trainer for one process of the group `comm`, which holds the training rows
    /// `shard` and the validation rows `val_shard` (of the sets every process trains and
    /// validates on). Every process must make its trainer with the same model, settings
    /// and set sizes; [`Trainer::fit_with`] then takes this process's rows only.
    pub fn distributed(
        model: &InvertibleMlp<T>,
        backend: B,
        config: TrainConfig,
        shard: Shard,
        val_shard: Option<Shard>,
        comm: C,
    ) -> Result<Self> {
        config.validate()?;
        let n_train = shard.total;
        if n_train == 0 {
            return Err(Error::NotEnoughData("the training set is empty".into()));
        }
        if shard.offset + shard.len > n_train {
            return Err(Error::InvalidConfig(format!(
                "rows {}..{} of a training set of {n_train}",
                shard.offset,
                shard.offset + shard.len
            )));
        }
        let batch_size = config.batch_size.min(n_train);
        let cap = batch_size.min(shard.len).max(1);
        let packed = if comm.size() > 1 {
            model.n_parameters() + 1
        } else {
            0
        };
        Ok(Self {
            state: OptimizerState::with_spline_optimizer(
                config.optimizer,
                config.spline_optimizer,
                model,
            ),
            ws: Workspace::new(model, cap),
            best: model.clone(),
            best_score: f64::NEG_INFINITY,
            history: History::default(),
            order: (0..n_train).collect(),
            batch: Mat::zeros(cap, model.dim()),
            batch_size,
            config,
            backend,
            comm,
            shard,
            val_shard,
            send: vec![T::zero(); packed],
            recv: vec![T::zero(); packed],
            stop_vote: false,
        })
    }

    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The epochs completed so far.
    pub fn epochs_done(&self) -> usize {
        self.history.epochs.last().map_or(0, |m| m.epoch)
    }

    /// A copy of the checkpointable state.
    pub fn state(&self) -> TrainerState<T> {
        let (m, v) = self.state.buffers();
        TrainerState {
            steps: self.state.steps(),
            m: m.to_vec(),
            v: v.to_vec(),
            best: self.best.clone(),
            history: self.history.clone(),
        }
    }

    /// Restores a checkpointed state (from the same model shape and settings).
    pub fn restore(&mut self, st: TrainerState<T>) -> Result<()> {
        if st.best.dim() != self.best.dim() || st.best.n_layers() != self.best.n_layers() {
            return Err(Error::InvalidConfig(
                "the checkpoint is for a different model shape".into(),
            ));
        }
        if !self.state.restore(st.steps, st.m, st.v) {
            return Err(Error::InvalidConfig(
                "the checkpoint's optimizer state does not fit".into(),
            ));
        }
        self.best_score = st
            .history
            .best()
            .map(|m| m.val_ll.or(m.train_ll).unwrap_or(f64::NEG_INFINITY))
            .unwrap_or(f64::NEG_INFINITY);
        self.best = st.best;
        self.history = st.history;
        let lr = self
            .history
            .learning_rate(self.config.optimizer.lr(), self.config.lr_decay);
        self.state.set_lr(lr);
        Ok(())
    }

    fn evaluate(
        &self,
        model: &InvertibleMlp<T>,
        train: MatRef<'_, T>,
        val: Option<MatRef<'_, T>>,
    ) -> (Option<f64>, Option<f64>) {
        if self.comm.size() == 1 {
            let ll = |x: MatRef<'_, T>| {
                model
                    .mean_log_likelihood(&self.backend, x)
                    .unwrap_or(f64::NAN)
            };
            let rows = self.config.train_eval_rows.min(train.rows());
            let train_ll = (rows > 0).then(|| ll(train.top(rows)));
            return (train_ll, val.map(ll));
        }
        self.evaluate_across(model, train, val)
    }

    /// Records an epoch's metrics; returns whether it diverged and what the callback asked.
    fn record(
        &mut self,
        model: &InvertibleMlp<T>,
        metrics: EpochMetrics,
        on_event: &mut impl FnMut(TrainEvent<'_>, &InvertibleMlp<T>) -> Flow,
    ) -> (bool, Flow) {
        let score = metrics.val_ll.or(metrics.train_ll);
        let diverged = !model.is_finite() || score.is_some_and(|s| !s.is_finite());
        if !diverged {
            let s = score.unwrap_or(f64::INFINITY);
            // Without any evaluation the latest parameters are the result.
            if score.is_none() || s > self.best_score || self.history.epochs.is_empty() {
                self.best_score = if score.is_none() {
                    f64::NEG_INFINITY
                } else {
                    s
                };
                self.best.copy_parameters_from(model);
                self.history.best_epoch = metrics.epoch;
            }
        }
        self.history.epochs.push(metrics);
        let flow = on_event(
            TrainEvent::Epoch(self.history.epochs.last().expect("just pushed")),
            model,
        );
        (diverged, flow)
    }

    /// Decays the learning rate after `epoch`: the best parameters back into `model`, the
    /// optimizer started afresh at the smaller rate.
    fn decay(&mut self, model: &mut InvertibleMlp<T>, epoch: usize) {
        self.history.decays.push(epoch);
        model.copy_parameters_from(&self.best);
        let lr = self
            .history
            .learning_rate(self.config.optimizer.lr(), self.config.lr_decay);
        self.state.reset(lr);
    }

    /// Trains `model` in place on the rows of `train`, validating on `val`, from the
    /// current epoch up to `config.epochs`. On return `model` holds the best parameters.
    pub fn fit(
        &mut self,
        model: &mut InvertibleMlp<T>,
        train: MatRef<'_, T>,
        val: Option<MatRef<'_, T>>,
        mut on_event: impl FnMut(TrainEvent<'_>),
    ) -> Result<&History> {
        self.fit_with(model, train, val, |event, _| {
            on_event(event);
            Flow::Continue
        })?;
        Ok(&self.history)
    }

    /// [`Trainer::fit`] with a callback that also sees the current parameters (e.g. to
    /// checkpoint them after every epoch) and may stop the loop.
    ///
    /// Returns `Ok(true)` when training finished (the best parameters are then in
    /// `model`), `Ok(false)` when the callback returned [`Flow::Stop`]: `model` then holds
    /// the current parameters. Stopped at a [`TrainEvent::Epoch`] event, the trainer is
    /// consistent and a later call continues with the next epoch; stopped at a
    /// [`TrainEvent::Step`], the epoch is incomplete and only a state taken at an earlier
    /// epoch event (see [`Trainer::state`]) is meaningful.
    pub fn fit_with(
        &mut self,
        model: &mut InvertibleMlp<T>,
        train: MatRef<'_, T>,
        val: Option<MatRef<'_, T>>,
        mut on_event: impl FnMut(TrainEvent<'_>, &InvertibleMlp<T>) -> Flow,
    ) -> Result<bool> {
        let d = model.dim();
        for x in [Some(train), val].into_iter().flatten() {
            if x.cols() != d {
                return Err(Error::DimensionMismatch {
                    expected: d,
                    found: x.cols(),
                });
            }
        }
        if train.rows() != self.shard.len {
            return Err(Error::InvalidConfig(format!(
                "the trainer was made for {} training rows, got {}",
                self.shard.len,
                train.rows()
            )));
        }
        if let (Some(v), Some(s)) = (val, self.val_shard) {
            if v.rows() != s.len {
                return Err(Error::InvalidConfig(format!(
                    "the trainer was made for {} validation rows, got {}",
                    s.len,
                    v.rows()
                )));
            }
        }
        if self.history.epochs.is_empty() {
            let (train_ll, val_ll) = self.evaluate(model, train, val);
            let m = EpochMetrics {
                epoch: 0,
                train_ll,
                val_ll,
                seconds: 0.0,
                steps: 0,
            };
            let (diverged, flow) = self.record(model, m, &mut on_event);
            if diverged {
                return Err(Error::Diverged {
                    epoch: 0,
                    best_epoch: 0,
                });
            }
            if self.comm.any(flow == Flow::Stop) {
                return Ok(false);
            }
        }
        let n = self.shard.total;
        let bs = self.batch_size;
        let steps_per_epoch = n.div_ceil(bs);
        while self.epochs_done() < self.config.epochs {
            let epoch = self.epochs_done() + 1;
            if let Some(k) = self.config.look_ahead {
                // The plateau is counted from the best epoch or the last decay.
                let last_decay = self.history.decays.last().copied().unwrap_or(0);
                let since = last_decay.max(self.history.best_epoch);
                if val.is_some() && epoch > since + k {
                    if self.history.decays.len() >= self.config.lr_decays {
                        self.history.stopped_early = true;
                        break;
                    }
                    self.decay(model, epoch - 1);
                }
            }
            let started = Instant::now();
            if self.config.shuffle {
                // Per-epoch seeding keeps resumed runs identical to uninterrupted ones.
                self.order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
                let mut rng = StdRng::seed_from_u64(
                    self.config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                self.order.shuffle(&mut rng);
            }
            let mut bad_step = false;
            for step in 0..steps_per_epoch {
                let span = step * bs..n.min((step + 1) * bs);
                let k = span.len();
                let finite = if self.comm.size() == 1 {
                    for (dst, &src) in self.order[span].iter().enumerate() {
                        self.batch.row_mut(dst).copy_from_slice(train.row(src));
                    }
                    train_step(
                        self.config.gradient,
                        self.config.step,
                        model,
                        &self.backend,
                        self.batch.top(k),
                        &mut self.ws,
                        &mut self.state,
                    )?
                } else {
                    if self.distributed_direction(model, train, span)? {
                        return Ok(false);
                    }
                    let finite = self.ws.grad.is_finite();
                    if finite {
                        self.state.step(model, &self.ws.grad);
                    }
                    finite
                };
                if !finite {
                    bad_step = true;
                    break;
                }
                let event = TrainEvent::Step {
                    epoch,
                    step: step + 1,
                    steps_per_epoch,
                    rows: k,
                };
                if on_event(event, model) == Flow::Stop {
                    if self.comm.size() == 1 {
                        return Ok(false);
                    }
                    self.stop_vote = true;
                }
            }
            let vote = std::mem::take(&mut self.stop_vote);
            if self.comm.any(vote) {
                return Ok(false);
            }
            let seconds = started.elapsed().as_secs_f64();
            let (train_ll, val_ll) = if bad_step {
                (Some(f64::NAN), None)
            } else {
                self.evaluate(model, train, val)
            };
            let m = EpochMetrics {
                epoch,
                train_ll,
                val_ll,
                seconds,
                steps: steps_per_epoch,
            };
            let (diverged, flow) = self.record(model, m, &mut on_event);
            if diverged || bad_step {
                if self.history.decays.len() >= self.config.lr_decays {
                    model.copy_parameters_from(&self.best);
                    return Err(Error::Diverged {
                        epoch,
                        best_epoch: self.history.best_epoch,
                    });
                }
                // The step was too large: go on from the best parameters at a smaller rate.
                self.decay(model, epoch);
            }
            if self.comm.any(flow == Flow::Stop) {
                return Ok(false);
            }
        }
        model.copy_parameters_from(&self.best);
        Ok(true)
    }
}

/// Trains `model` with `config` in one call: see [`Trainer`].
pub fn train<T: Scalar, B: Backend<T>>(
    model: &mut InvertibleMlp<T>,
    backend: &B,
    train: MatRef<'_, T>,
    val: Option<MatRef<'_, T>>,
    config: TrainConfig,
) -> Result<History> {
    let mut trainer = Trainer::new(model, backend.clone(), config, train.rows())?;
    trainer.fit(model, train, val, |_| {})?;
    Ok(trainer.history)
}

//! Optimizers that follow an ascent direction (the relative or the naive gradient):
//! SGD with optional momentum, and Adam. Their state is allocated once, when made.
//!
//! A model with spline activations has a second kind of parameter, the splines' (see
//! [`crate::spline`]), which follow their ordinary gradient with an optimizer of their
//! own (Adam at [`SPLINE_LR`] by default): the relative gradient's equivariance, which
//! favours SGD for the weights, does not concern them, and their gradients' scales
//! differ from bin to bin. A mixture base's parameters (see [`crate::mixture`]) follow
//! the same optimizer. Both kinds share the step count and the learning-rate decays.

use crate::mlp::InvertibleMlp;
use crate::scalar::Scalar;
use crate::simd::vectorized;
use crate::workspace::Gradient;

/// An optimizer and its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `p += lr * v`, `v = momentum * v + g` (plain gradient ascent when `momentum == 0`).
    Sgd {
        /// Learning rate.
        lr: f64,
        /// Heavy-ball momentum in `[0, 1)`.
        momentum: f64,
    },
    /// Adam (Kingma and Ba) with bias correction, fed the ascent direction.
    Adam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator offset.
        eps: f64,
    },
}

impl Optimizer {
    /// Adam with the usual defaults (`beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`).
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Plain SGD (no momentum).
    pub fn sgd(lr: f64) -> Self {
        Optimizer::Sgd { lr, momentum: 0.0 }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. } | Optimizer::Adam { lr, .. } => lr,
        }
    }

    /// `"sgd"` or `"adam"`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<(), String> {
        let lr = self.lr();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(format!("the learning rate must be positive, got {lr}"));
        }
        match *self {
            Optimizer::Sgd { momentum, .. } if !(0.0..1.0).contains(&momentum) => {
                Err(format!("momentum must be in [0, 1), got {momentum}"))
            }
            Optimizer::Adam {
                beta1, beta2, eps, ..
            } if !((0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2) && eps > 0.0) => {
                Err("Adam needs 0 <= beta1, beta2 < 1 and eps > 0".into())
            }
            _ => Ok(()),
        }
    }
}

/// The spline parameters' default optimizer: Adam at this learning rate (scaled with the
/// weights' rate when that decays). Chosen on held-out data with
/// [`crate::activation::DEFAULT_BOUND`]: `1e-2` fits the training rows of the 2-D sets
/// faster but overfits them (rings: 0.13 nats per row between train and validation).
pub const SPLINE_LR: f64 = 3e-3;

/// An optimizer with its per-parameter state, sized for one model shape.
#[derive(Clone, Debug)]
pub struct OptimizerState<T> {
    optimizer: Optimizer,
    /// The spline parameters' optimizer (unused without splines).
    spline: Optimizer,
    /// The spline optimizer's learning rate over the weights' (kept through decays).
    spline_ratio: f64,
    step: u64,
    /// First moments (Adam) or velocities (SGD with momentum): one buffer per tensor,
    /// `2 l` for layer `l`'s weight, `2 l + 1` for its bias, then one per spline matrix,
    /// then one for a mixture base's parameters;
    /// a tensor whose optimizer keeps no such state has an empty buffer, and without
    /// splines the list is empty when the weights' optimizer keeps none.
    m: Vec<Vec<T>>,
    /// Second moments (Adam only), likewise.
    v: Vec<Vec<T>>,
}

/// Which moments an optimizer keeps: (first, second).
fn moments(optimizer: Optimizer) -> (bool, bool) {
    match optimizer {
        Optimizer::Sgd { momentum, .. } => (momentum > 0.0, false),
        Optimizer::Adam { .. } => (true, true),
    }
}

/// The lengths of one kind of state buffer for `model` (see [`OptimizerState`]'s fields),
/// `on` for the weights' and biases' optimizer, `spline_on` for the splines': empty when
/// neither keeps it. Allocates nothing (the trainer checks it at every step).
fn state_shape<T: Scalar>(
    model: &InvertibleMlp<T>,
    on: bool,
    spline_on: bool,
) -> impl Iterator<Item = usize> + '_ {
    let spline_on = spline_on && (!model.splines().is_empty() || model.base_params().is_some());
    let any = on || spline_on;
    let own = model
        .layers()
        .iter()
        .flat_map(|l| [l.weight.as_slice().len(), l.bias.len()])
        .map(move |s| if on { s } else { 0 });
    let theirs = model
        .splines()
        .iter()
        .chain(model.base_params())
        .map(move |m| if spline_on { m.as_slice().len() } else { 0 });
    own.chain(theirs).filter(move |_| any)
}

impl<T: Scalar> OptimizerState<T> {
    /// State for `model`'s shape; spline and mixture-base parameters, if any, get Adam at
    /// [`SPLINE_LR`].
    pub fn new(optimizer: Optimizer, model: &InvertibleMlp<T>) -> Self {
        Self::with_spline_optimizer(optimizer, Optimizer::adam(SPLINE_LR), model)
    }

    /// State for `model`'s shape, with `spline` for the spline and mixture-base parameters.
    pub fn with_spline_optimizer(
        optimizer: Optimizer,
        spline: Optimizer,
        model: &InvertibleMlp<T>,
    ) -> Self {
        let ((m, v), (sm, sv)) = (moments(optimizer), moments(spline));
        let zeros = |on, spline_on| {
            state_shape(model, on, spline_on)
                .map(|s| vec![T::zero(); s])
                .collect()
        };
        Self {
            optimizer,
            spline,
            spline_ratio: spline.lr() / optimizer.lr(),
            step: 0,
            m: zeros(m, sm),
            v: zeros(v, sv),
        }
    }

    /// The spline parameters' optimizer (at the current, possibly decayed, rate).
    pub fn spline_optimizer(&self) -> Optimizer {
        self.spline
    }

    /// The optimizer.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The state buffers (first moments, second moments), for checkpoints.
    pub fn buffers(&self) -> (&[Vec<T>], &[Vec<T>]) {
        (&self.m, &self.v)
    }

    /// Sets the learning rate (the moments are kept).
    pub fn set_lr(&mut self, lr: f64) {
        match &mut self.optimizer {
            Optimizer::Sgd { lr: l, .. } | Optimizer::Adam { lr: l, .. } => *l = lr,
        }
        let spline_lr = lr * self.spline_ratio;
        match &mut self.spline {
            Optimizer::Sgd { lr: l, .. } | Optimizer::Adam { lr: l, .. } => *l = spline_lr,
        }
    }

    /// Starts afresh at learning rate `lr`: no steps taken, all moments zero.
    pub fn reset(&mut self, lr: f64) {
        self.set_lr(lr);
        self.step = 0;
        for b in self.m.iter_mut().chain(self.v.iter_mut()) {
            b.fill(T::zero());
        }
    }

    /// Restores a checkpointed state; `false` (and no change) if the shapes differ.
    pub fn restore(&mut self, step: u64, m: Vec<Vec<T>>, v: Vec<Vec<T>>) -> bool {
        let same = |a: &[Vec<T>], b: &[Vec<T>]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.len() == y.len())
        };
        if !same(&self.m, &m) || !same(&self.v, &v) {
            return false;
        }
        self.step = step;
        self.m = m;
        self.v = v;
        true
    }

    /// Whether this state was made for `model`'s shape.
    pub fn fits(&self, model: &InvertibleMlp<T>) -> bool {
        let ((m, v), (sm, sv)) = (moments(self.optimizer), moments(self.spline));
        let fit = |bufs: &[Vec<T>], on, spline_on| {
            bufs.iter()
                .map(Vec::len)
                .eq(state_shape(model, on, spline_on))
        };
        fit(&self.m, m, sm) && fit(&self.v, v, sv)
    }

    /// Counts a step and returns its update rule, which [`Update::apply`] then applies to
    /// every tensor, or to its parts in any order (the fused step updates a weight row
    /// by row): every element's update depends on that element alone.
    pub(crate) fn begin_step(&mut self) -> Update<T> {
        self.step += 1;
        Update::of(self.optimizer, self.step)
    }

    /// The spline parameters' update rule for the step [`OptimizerState::begin_step`]
    /// began.
    pub(crate) fn spline_rule(&self) -> Update<T> {
        Update::of(self.spline, self.step)
    }

    /// The state buffers of tensor `slot` (`2 l` for layer `l`'s weight, `2 l + 1` for its
    /// bias, `2 L + s` for hidden layer `s`'s splines, `2 L + S` for a mixture base after
    /// `S` spline matrices): first and second moments, empty
    /// where the optimizer keeps none.
    pub(crate) fn slot_mut(&mut self, slot: usize) -> (&mut [T], &mut [T]) {
        let m = self.m.get_mut(slot).map_or(&mut [][..], |b| &mut b[..]);
        let v = self.v.get_mut(slot).map_or(&mut [][..], |b| &mut b[..]);
        (m, v)
    }

    /// Moves `model` along the ascent direction `dir` (a gradient to *maximise*).
    /// Biases are left alone when the model has none; spline and mixture-base parameters
    /// follow their own optimizer. Allocates nothing.
    pub fn step(&mut self, model: &mut InvertibleMlp<T>, dir: &Gradient<T>) {
        let rule = self.begin_step();
        let use_bias = model.use_bias();
        let n_layers = model.n_layers();
        for (l, layer) in model.layers_mut().iter_mut().enumerate() {
            let (m, v) = self.slot_mut(2 * l);
            rule.apply_vectorized(layer.weight.as_mut_slice(), dir.weights[l].as_slice(), m, v);
            if use_bias {
                let (m, v) = self.slot_mut(2 * l + 1);
                rule.apply_vectorized(&mut layer.bias, &dir.biases[l], m, v);
            }
        }
        let rule = self.spline_rule();
        let n_splines = model.splines().len();
        for (s, p) in model.splines_mut().iter_mut().enumerate() {
            let (m, v) = self.slot_mut(2 * n_layers + s);
            rule.apply_vectorized(p.as_mut_slice(), dir.splines[s].as_slice(), m, v);
        }
        if let (Some(p), Some(g)) = (model.base_params_mut(), &dir.base) {
            let (m, v) = self.slot_mut(2 * n_layers + n_splines);
            rule.apply_vectorized(p.as_mut_slice(), g.as_slice(), m, v);
        }
    }
}

impl<T: Scalar> Update<T> {
    /// `optimizer`'s rule for step number `step` (from 1).
    fn of(optimizer: Optimizer, step: u64) -> Self {
        let t = step as f64;
        match optimizer {
            Optimizer::Sgd { lr, momentum } if momentum > 0.0 => Update::Momentum {
                lr: T::from_f64c(lr),
                mu: T::from_f64c(momentum),
            },
            Optimizer::Sgd { lr, .. } => Update::Plain {
                lr: T::from_f64c(lr),
            },
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                // Bias corrections folded into the step size, as in the paper by Kingma
                // and Ba (section 2, last paragraph).
                let bc1 = 1.0 - beta1.powf(t);
                let bc2 = 1.0 - beta2.powf(t);
                Update::Adam(AdamStep {
                    step: T::from_f64c(lr * bc2.sqrt() / bc1),
                    eps_hat: T::from_f64c(eps * bc2.sqrt()),
                    b1: T::from_f64c(beta1),
                    b2: T::from_f64c(beta2),
                })
            }
        }
    }
}

/// One step's update rule with its constants fixed (Adam's bias corrections included):
/// see [`OptimizerState::begin_step`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Update<T> {
    /// `p += lr g`.
    Plain { lr: T },
    /// `m = mu m + g`, `p += lr m`.
    Momentum { lr: T, mu: T },
    /// Adam.
    Adam(AdamStep<T>),
}

impl<T: Scalar> Update<T> {
    /// Updates the parameters `p` along `g` with their state `m`, `v` (as many elements
    /// as `p` where the rule keeps them), in the instruction set of the caller: call it
    /// inside [`vectorized`]. No fused multiply-adds, so every level computes the same
    /// bits.
    #[inline(always)]
    pub(crate) fn apply(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        match *self {
            Update::Plain { lr } => {
                for (pi, &gi) in p.iter_mut().zip(g) {
                    *pi += lr * gi;
                }
            }
            Update::Momentum { lr, mu } => sgd_momentum(p, g, m, lr, mu),
            Update::Adam(c) => adam(p, g, m, v, c),
        }
    }

    /// [`Update::apply`] in the widest vectors the CPU has.
    pub(crate) fn apply_vectorized(&self, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) {
        vectorized(
            #[inline(always)]
            |_| self.apply(p, g, m, v),
        );
    }
}

/// `v = mu v + g`, `p += lr v`, elementwise (no fused multiply-adds: every level computes
/// the same bits).
#[inline(always)]
fn sgd_momentum<T: Scalar>(p: &mut [T], g: &[T], v: &mut [T], lr: T, mu: T) {
    for ((pi, &gi), vi) in p.iter_mut().zip(g).zip(v.iter_mut()) {
        *vi = mu * *vi + gi;
        *pi += lr * *vi;
    }
}

/// Adam's constants for one step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamStep<T> {
    /// The learning rate with both bias corrections folded in.
    step: T,
    /// `eps` scaled by the second moment's bias correction.
    eps_hat: T,
    b1: T,
    b2: T,
}

/// One Adam update of `p` along `g` with moments `m`, `v`, elementwise (no fused
/// multiply-adds: every level computes the same bits).
#[inline(always)]
fn adam<T: Scalar>(p: &mut [T], g: &[T], m: &mut [T], v: &mut [T], c: AdamStep<T>) {
    let (one_b1, one_b2) = (T::one() - c.b1, T::one() - c.b2);
    for (((pi, &gi), mi), vi) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *mi = c.b1 * *mi + one_b1 * gi;
        *vi = c.b2 * *vi + one_b2 * gi * gi;
        *pi += c.step * *mi / (vi.sqrt() + c.eps_hat);
    }
}

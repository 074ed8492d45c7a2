//! The fit pipeline's hooks: progress, cancellation and checkpoints, called by
//! [`crate::Fit::run`] as training goes.

use relgrad_core::{EpochMetrics, Flow, Scalar};

use crate::checkpoint::Checkpoint;
use crate::error::Result;

/// What a fit reports as it goes, and where it may stop or checkpoint. Every method has
/// a default that does nothing, so `&mut ()` is a silent fit.
pub trait FitHooks {
    /// After every optimizer step of `rows` rows in `epoch` (1-based). Return
    /// [`Flow::Stop`] to cancel (for example on Ctrl-C): the fit then ends with
    /// [`Stop::Cancelled`](crate::Stop::Cancelled) and the best parameters so far.
    fn step(&mut self, epoch: usize, rows: usize) -> Flow {
        let _ = (epoch, rows);
        Flow::Continue
    }
    /// After every evaluated epoch (epoch 0 is the start). [`Flow::Stop`] cancels after
    /// this epoch's checkpoint.
    fn epoch(&mut self, metrics: &EpochMetrics) -> Flow {
        let _ = metrics;
        Flow::Continue
    }
    /// Whether [`FitHooks::checkpoint`] should be called (making a checkpoint copies the
    /// parameters and optimizer state once per epoch).
    fn wants_checkpoints(&self) -> bool {
        false
    }
    /// The checkpoint of every completed epoch, to be saved (see [`Checkpoint::save`]).
    fn checkpoint<T: Scalar>(&mut self, checkpoint: &Checkpoint<T>) -> Result<()> {
        let _ = checkpoint;
        Ok(())
    }
}

impl FitHooks for () {}

/// Hooks from a closure called after every epoch with its metrics (return
/// [`Flow::Stop`] to stop).
pub struct OnEpoch<F>(pub F);

impl<F: FnMut(&EpochMetrics) -> Flow> FitHooks for OnEpoch<F> {
    fn epoch(&mut self, metrics: &EpochMetrics) -> Flow {
        (self.0)(metrics)
    }
}

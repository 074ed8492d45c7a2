//! The data-parallel parts of [`Trainer`] (see the [module docs](super)): one process's
//! share of a step's update direction and its one reduction, and log-likelihoods summed
//! across the group.

use super::Trainer;
use crate::backend::Backend;
use crate::collective::Collective;
use crate::error::Result;
use crate::gradient::partial_gradient;
use crate::matrix::MatRef;
use crate::mlp::InvertibleMlp;
use crate::scalar::Scalar;

impl<T: Scalar, B: Backend<T>, C: Collective> Trainer<T, B, C> {
    /// The mean log-likelihoods of the training prefix and the validation rows of every
    /// process: sums and counts of this process's rows, added up across the group (the
    /// training prefix is the set's first rows, wherever they are held).
    pub(super) fn evaluate_across(
        &self,
        model: &InvertibleMlp<T>,
        train: MatRef<'_, T>,
        val: Option<MatRef<'_, T>>,
    ) -> (Option<f64>, Option<f64>) {
        let sum = |x: MatRef<'_, T>| -> f64 {
            if x.rows() == 0 {
                return 0.0;
            }
            model
                .log_prob(&self.backend, x)
                .map_or(f64::NAN, |lp| lp.iter().map(|v| v.to_f64c()).sum())
        };
        let rows = self.config.train_eval_rows.min(self.shard.total);
        let local_rows = self.shard.local_prefix(rows);
        let mut sums = [
            sum(train.top(local_rows)),
            val.map_or(0.0, sum),
            val.map_or(0.0, |v| v.rows() as f64),
        ];
        self.comm.sum_in_place(&mut sums);
        let train_ll = (rows > 0).then(|| sums[0] / rows as f64);
        let val_ll = val.map(|_| sums[1] / sums[2]);
        (train_ll, val_ll)
    }

    /// The update direction of the global batch `self.order[span]` (row numbers of the
    /// whole training set) into `self.ws.grad`: this process's share, then one reduction
    /// across the group of the packed shares and the stop votes. Returns whether a
    /// process voted to stop (the step is then not taken). A process whose share fails (a
    /// singular layer of the naive gradient) sends NaN, so that every process sees a
    /// divergence, and returns its error.
    pub(super) fn distributed_direction(
        &mut self,
        model: &InvertibleMlp<T>,
        train: MatRef<'_, T>,
        span: core::ops::Range<usize>,
    ) -> Result<bool> {
        let total = span.len();
        let mut k = 0;
        for &g in &self.order[span] {
            if let Some(i) = self.shard.local(g) {
                self.batch.row_mut(k).copy_from_slice(train.row(i));
                k += 1;
            }
        }
        let share = partial_gradient(
            self.config.gradient,
            model,
            &self.backend,
            self.batch.top(k),
            total,
            self.comm.rank() == 0,
            &mut self.ws,
        );
        let p = self.send.len() - 1;
        match &share {
            Ok(()) => self.ws.grad.pack_into(&mut self.send[..p]),
            Err(_) => self.send[..p].fill(T::nan()),
        }
        self.send[p] = if std::mem::take(&mut self.stop_vote) {
            T::one()
        } else {
            T::zero()
        };
        T::sum_across(&self.comm, &self.send, &mut self.recv);
        share?;
        self.ws.grad.unpack_from(&self.recv[..p]);
        Ok(self.recv[p] > T::zero())
    }
}

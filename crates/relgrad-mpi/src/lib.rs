//! # relgrad-mpi
//!
//! MPI for relgrad's synchronous data-parallel training: [`Mpi`] implements the core's
//! [`Collective`] (elementwise sums and broadcasts) on any MPI communicator of the `mpi`
//! crate (rsmpi), on top of the system's MPI library (Open MPI, MPICH). The fit pipeline
//! (`relgrad::model::Fit::distributed`) takes it, so that the CLI's
//! `mpirun -np N relgrad train --distributed` and a user's own MPI program train the same way.
//!
//! ```no_run
//! let universe = relgrad_mpi::initialize().expect("MPI starts once per process");
//! let comm = relgrad_mpi::Mpi::new(universe.world());
//! // ... Fit::distributed(&backend, config, &comm, train_shard, val_shard)?.run(&mut ())
//! ```

#![warn(missing_docs)]

use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use relgrad_core::Collective;

pub use mpi;

/// Starts MPI for this process with the threading level relgrad needs (`Funneled`: the
/// backends' worker threads never call MPI). Returns `None` when MPI was already started.
/// MPI stops when the returned universe is dropped.
pub fn initialize() -> Option<mpi::environment::Universe> {
    mpi::initialize_with_threading(mpi::Threading::Funneled).map(|(u, _)| u)
}

/// An MPI communicator as a relgrad [`Collective`]: every process of the communicator
/// takes part in every sum and broadcast, in the same order.
pub struct Mpi<C: Communicator = SimpleCommunicator> {
    comm: C,
}

impl<C: Communicator> Mpi<C> {
    /// Wraps `comm` (for example `universe.world()`, or a split of it).
    pub fn new(comm: C) -> Self {
        Self { comm }
    }

    /// The communicator.
    pub fn communicator(&self) -> &C {
        &self.comm
    }

    /// Ends every process of the communicator at once with exit code `code` (MPI_Abort):
    /// for a failure that the other processes cannot learn of in a collective.
    pub fn abort(&self, code: i32) -> ! {
        self.comm.abort(code)
    }
}

impl<C: Communicator> Collective for Mpi<C> {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) {
        self.comm
            .all_reduce_into(send, recv, SystemOperation::sum());
    }

    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        self.comm
            .all_reduce_into(send, recv, SystemOperation::sum());
    }

    fn broadcast(&self, root: usize, buf: &mut [u8]) {
        self.comm
            .process_at_rank(root as mpi::Rank)
            .broadcast_into(buf);
    }
}

//! The processes of a distributed run (`relgrad train --distributed` under `mpirun`):
//! every process runs the same command on its share of the rows; after every step that
//! may fail on one process alone (its files, its rows) they agree, so that all stop
//! together with the failing rank's message, printed once by rank 0 before any of them
//! ends. An error that was not agreed (a failure nobody else can know of) ends the whole
//! job at once (MPI_Abort): no process is left waiting.

use anyhow::Result;
use relgrad::Collective;

use crate::{ExitError, EXIT_ERROR};

/// An error that every process of the group returned at the same point, with the
/// message to print (by rank 0) and this process's exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Agreed {
    /// The failing rank's message (prefixed with its rank unless it is rank 0).
    pub message: String,
    /// The exit code.
    pub code: u8,
}

fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<ExitError>().map_or(EXIT_ERROR, |x| x.code)
}

/// `result` of this process, agreed across the group: every process gets `Ok`, or an
/// [`Agreed`] error carrying the lowest failing rank's message. A single process keeps
/// its own error.
pub fn together<T, C: Collective>(comm: &C, result: Result<T>) -> Result<T> {
    if comm.size() == 1 {
        return result;
    }
    let local = result.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
    match comm.agree(local) {
        Ok(()) => result,
        Err(f) => Err(Agreed {
            message: if f.rank == 0 {
                f.message
            } else {
                format!("rank {}: {}", f.rank, f.message)
            },
            code: result.as_ref().err().map_or(EXIT_ERROR, exit_code),
        }
        .into()),
    }
}

/// Runs `f` as one process of the MPI job this process belongs to (a process started
/// without `mpirun` is a job of one), then ends MPI. Agreed errors are printed by rank 0
/// only, before MPI ends; any other error is printed with the rank and aborts the job.
#[cfg(feature = "mpi")]
pub fn run_mpi(f: impl FnOnce(&relgrad::mpi::Mpi) -> Result<()>) -> Result<()> {
    let universe = relgrad::mpi::initialize()
        .ok_or_else(|| anyhow::anyhow!("MPI was already started in this process"))?;
    let comm = relgrad::mpi::Mpi::new(universe.world());
    let result = f(&comm);
    let Err(e) = result else {
        return Ok(());
    };
    let code = e
        .downcast_ref::<Agreed>()
        .map(|a| a.code)
        .unwrap_or_else(|| exit_code(&e));
    match (e.downcast_ref::<Agreed>(), comm.rank()) {
        (Some(a), rank) => {
            // Rank 0 prints before any process ends, and the others wait for it: mpirun
            // ends the whole job as soon as one process exits with an error, which could
            // cut rank 0 off before it printed (seen once in three runs of the tests).
            if rank == 0 {
                crate::print_error(
                    &ExitError {
                        message: a.message.clone(),
                        code,
                    }
                    .into(),
                );
            }
            let _ = comm.agree(Ok(()));
            Err(crate::Silent { code }.into())
        }
        (None, rank) if comm.size() > 1 => {
            eprintln!("error: rank {rank}: {e:#}");
            comm.abort(i32::from(code.max(1)))
        }
        (None, _) => Err(e),
    }
}

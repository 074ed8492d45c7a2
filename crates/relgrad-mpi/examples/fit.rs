//! A user's own MPI program training one density model on the rows of every process:
//! each process makes (or reads) its own rows, and `Fit::distributed` does the rest.
//!
//! ```text
//! cargo build --release --manifest-path crates/relgrad-mpi/Cargo.toml --example fit
//! mpirun -np 2 crates/relgrad-mpi/target/release/examples/fit
//! ```

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use relgrad_core::{Collective, Mat, Shard, Threads};
use relgrad_faer::Faer;
use relgrad_model::{Fit, FitConfig, Sharded};
use relgrad_mpi::Mpi;

/// Row `i` of a data set every process can make its own part of: a bent 3-d cloud.
fn row(i: usize) -> [f64; 3] {
    let mut rng = StdRng::seed_from_u64(i as u64);
    let (a, b, c): (f64, f64, f64) = (rng.random(), rng.random(), rng.random());
    let (u, v) = (4.0 * a - 2.0, b - 0.5);
    [u, u * u + 0.3 * v, 0.5 * c + 0.2 * u]
}

fn rows(shard: Shard, first: usize) -> Mat<f64> {
    Mat::from_fn(shard.len, 3, |i, j| row(first + shard.offset + i)[j])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let universe = relgrad_mpi::initialize().ok_or("MPI was already started")?;
    let comm = Mpi::new(universe.world());
    let (n_train, n_val) = (20_000, 2_000);
    let train_shard = Shard::even(n_train, comm.rank(), comm.size());
    let val_shard = Shard::even(n_val, comm.rank(), comm.size());
    let (train, val) = (rows(train_shard, 0), rows(val_shard, n_train));
    let config = FitConfig {
        max_epochs: 20,
        ..FitConfig::default()
    };
    let fitted = Fit::distributed(
        &Faer::new(Threads::Fixed(1)),
        config,
        &comm,
        Sharded {
            x: train.as_ref(),
            shard: train_shard,
        },
        Some(Sharded {
            x: val.as_ref(),
            shard: val_shard,
        }),
    )?
    .run(&mut ())?;
    // Every process holds the same model; one writes it.
    if comm.rank() == 0 {
        let val = fitted.val.as_ref().expect("validation rows");
        println!(
            "{} processes: validation log-likelihood {} nats (best Gaussian {:.3}) after {} epochs",
            comm.size(),
            val.ll_data.display(3),
            val.gaussian.as_ref().map_or(f64::NAN, |g| g.0.mean),
            fitted.history.epochs.len() - 1
        );
        fitted.model.save("fit-example.safetensors")?;
    }
    Ok(())
}

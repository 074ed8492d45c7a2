//! The measurements behind `docs/distributed.md`: for each dimension `D` and global batch
//! `B`, one line from rank 0 with
//! - `share ms`: a step of one process's share alone (a single-process trainer on `B/N`
//!   rows, every process at once, so they compete for the machine as they do in training);
//! - `allreduce ms`: the step's one reduction alone (`L (D^2 + D) + 1` values, f32);
//! - `pack ms`: copying the update direction into the reduction's buffer and back;
//! - `step ms` and `steps/s`: a data-parallel step of the global batch `B` (share, the
//!   reduction, the optimizer);
//! - `model ms`: the cost model's prediction, share + allreduce + pack.
//!
//! Every process runs its products on one thread. Run it with 1, 2, ... processes:
//!
//! ```text
//! cargo build --release --manifest-path crates/relgrad-mpi/Cargo.toml --example scaling
//! mpirun -np 2 crates/relgrad-mpi/target/release/examples/scaling [D,D,..] [B,B,..] [L]
//! ```

use std::time::Instant;

use relgrad_core::init::Architecture;
use relgrad_core::{
    Activation, BaseDensity, Collective, Flow, Init, Mat, Optimizer, Shard, Threads, TrainConfig,
    TrainEvent, Trainer,
};
use relgrad_faer::Faer;
use relgrad_mpi::Mpi;

/// Seconds per step of `trainer` over `x`: `warm` steps, then as many as fit in about
/// half a second (at least 20; the first process of a group to get there stops all).
fn seconds_per_step<C: Collective>(
    trainer: &mut Trainer<f32, Faer, C>,
    model: &mut relgrad_core::InvertibleMlp<f32>,
    x: &Mat<f32>,
    warm: usize,
) -> f64 {
    let (mut seen, mut timed) = (0, usize::MAX);
    let mut started = Instant::now();
    let mut last = started;
    trainer
        .fit_with(model, x.as_ref(), None, |e, _| {
            if let TrainEvent::Step { .. } = e {
                seen += 1;
                last = Instant::now();
                if seen == warm {
                    let per_step = started.elapsed().as_secs_f64() / warm as f64;
                    timed = ((0.5 / per_step) as usize).clamp(20, 20_000);
                    started = last;
                }
                if seen > warm && seen - warm >= timed {
                    return Flow::Stop;
                }
            }
            Flow::Continue
        })
        .expect("training runs");
    (last - started).as_secs_f64() / (seen - warm) as f64
}

fn parse(arg: Option<String>, default: &[usize]) -> Vec<usize> {
    arg.map_or(default.to_vec(), |s| {
        s.split(',').map(|v| v.parse().expect("a number")).collect()
    })
}

fn main() {
    let universe = relgrad_mpi::initialize().expect("MPI starts once");
    let comm = Mpi::new(universe.world());
    let mut args = std::env::args().skip(1);
    let dims = parse(args.next(), &[64, 256, 784]);
    let batches = parse(args.next(), &[10, 100, 1000]);
    let layers = parse(args.next(), &[2])[0];
    let (rank, size) = (comm.rank(), comm.size());
    let be = Faer::new(Threads::Fixed(1));
    if rank == 0 {
        println!("| ranks | D | B | B per rank | share ms | allreduce ms | pack ms | model ms | step ms | steps/s |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
    }
    for &d in &dims {
        for &b in &batches {
            let arch = Architecture {
                dim: d,
                n_layers: layers,
                activation: Activation::default(),
                base: BaseDensity::Normal,
                use_bias: true,
            };
            let start = Init::Orthogonal { seed: 1 }
                .build::<f32, Faer>(arch, &be, None)
                .expect("a model");
            // Sixteen steps per epoch.
            let n = b * 16;
            let shard = Shard::even(n, rank, size);
            let x = Mat::<f32>::from_fn(shard.len, d, |i, j| {
                (((shard.offset + i) * 31 + j * 17) % 97) as f32 / 48.0 - 1.0
            });
            let config = TrainConfig {
                optimizer: Optimizer::sgd(1e-6),
                batch_size: b,
                epochs: usize::MAX,
                look_ahead: None,
                train_eval_rows: 0,
                ..TrainConfig::default()
            };
            let warm = 5;
            // One process's share of a step, on its own.
            let share = (b / size).max(1);
            let local = Mat::<f32>::from_fn(share * 16, d, |i, j| x.get(i % x.rows(), j));
            let mut m = start.clone();
            let cfg = TrainConfig {
                batch_size: share,
                ..config.clone()
            };
            let mut t = Trainer::new(&m, be, cfg, local.rows()).expect("a trainer");
            let t_share = seconds_per_step(&mut t, &mut m, &local, warm);
            // The reduction on its own.
            let len = start.n_parameters() + 1;
            let (send, mut recv) = (vec![1.0f32; len], vec![0.0f32; len]);
            for _ in 0..warm {
                comm.sum_f32(&send, &mut recv);
            }
            let reps = 200;
            let t0 = Instant::now();
            for _ in 0..reps {
                comm.sum_f32(&send, &mut recv);
            }
            let t_ar = if size > 1 {
                t0.elapsed().as_secs_f64() / reps as f64
            } else {
                0.0
            };
            // Packing the direction and unpacking the sum (cold buffers, as in a step).
            let mut g = relgrad_core::Gradient::<f32>::zeros(d, layers);
            let (mut buf, mut other) = (vec![0.0f32; len], vec![0.0f32; len]);
            let t0 = Instant::now();
            for _ in 0..20 {
                g.pack_into(&mut buf);
                other.copy_from_slice(&buf);
                g.unpack_from(&other);
            }
            // The loop also copies once between the two buffers, as the reduction does.
            let t_pack = if size > 1 {
                t0.elapsed().as_secs_f64() / 20.0
            } else {
                0.0
            };
            // The data-parallel step.
            let mut m = start.clone();
            let mut t =
                Trainer::distributed(&m, be, config, shard, None, &comm).expect("a trainer");
            let t_step = seconds_per_step(&mut t, &mut m, &x, warm);
            if rank == 0 {
                println!(
                    "| {size} | {d} | {b} | {share} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} |",
                    t_share * 1e3,
                    t_ar * 1e3,
                    t_pack * 1e3,
                    (t_share + t_ar + t_pack) * 1e3,
                    t_step * 1e3,
                    1.0 / t_step
                );
            }
        }
    }
}

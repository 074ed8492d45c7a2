//! Data-parallel training equals training in one process: processes stood in for by a
//! `ThreadGroup` (the same collectives MPI provides), each holding a shard of the rows.
//! Oracles: the single-process gradient, start and training run, to 1e-12 in f64.

mod common;

use common::*;
use relgrad::collective::{Shard, ThreadGroup};
use relgrad::gradient::partial_gradient;
use relgrad::init::Architecture;
use relgrad::{
    gradient, Activation, BaseDensity, Collective, DefaultBackend, Flow, GradientKind, Init,
    InvertibleMlp, Mat, MatRef, Optimizer, TrainConfig, TrainEvent, Trainer, Workspace,
};

/// Runs `f(member, shard)` on one thread per member of a group of `size`, where `shard`
/// is the member's even share of `rows` rows; returns the results by rank.
fn in_group<R: Send>(
    size: usize,
    rows: usize,
    f: impl Fn(ThreadGroup, Shard) -> R + Sync,
) -> Vec<R> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ThreadGroup::new(size)
            .into_iter()
            .map(|g| {
                let f = &f;
                s.spawn(move || {
                    let shard = Shard::even(rows, g.rank(), g.size());
                    f(g, shard)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn rows(x: &Mat<f64>, s: Shard) -> MatRef<'_, f64> {
    x.as_ref().rows_range(s.offset, s.offset + s.len)
}

fn data(n: usize, d: usize, seed: u64) -> Mat<f64> {
    let case = Case {
        d,
        b: n,
        l: 2,
        activation: ACTIVATIONS[0],
        base: BASES[0],
        bias: true,
        seed,
    };
    model_and_data(&case).1
}

#[test]
fn partial_gradients_add_up_to_the_gradient_of_the_batch() {
    let backend = DefaultBackend::default();
    // Seed 7 has spline activations with a hidden layer.
    for case_seed in 0..8u64 {
        let case = Case {
            d: 3 + case_seed as usize % 4,
            b: 7 + case_seed as usize,
            l: 1 + case_seed as usize % 3,
            activation: ACTIVATIONS[case_seed as usize % ACTIVATIONS.len()],
            base: BASES[case_seed as usize % BASES.len()],
            bias: case_seed % 2 == 0,
            seed: case_seed,
        };
        let (model, x) = model_and_data(&case);
        for kind in [GradientKind::Relative, GradientKind::Naive] {
            let mut ws = Workspace::new(&model, x.rows());
            gradient(kind, &model, &backend, x.as_ref(), &mut ws).unwrap();
            let whole = flat(&ws);
            // Cuts that leave some process without rows (the first and the last).
            let cuts = [0, 0, 2, x.rows(), x.rows()];
            let mut sum = vec![0.0; whole.len()];
            for (r, w) in cuts.windows(2).enumerate() {
                let part = x.as_ref().rows_range(w[0], w[1]);
                partial_gradient(kind, &model, &backend, part, x.rows(), r == 1, &mut ws).unwrap();
                sum.iter_mut().zip(flat(&ws)).for_each(|(s, v)| *s += v);
            }
            let err = rel_err(&sum, &whole, 1e-3);
            assert!(err < 1e-12, "{kind:?} {case:?}: {err:e}");
        }
    }
}

fn flat(ws: &Workspace<f64, DefaultBackend>) -> Vec<f64> {
    let mut v = vec![0.0; ws.grad.len()];
    ws.grad.pack_into(&mut v);
    v
}

#[test]
fn the_data_dependent_start_is_the_same_from_shards() {
    let backend = DefaultBackend::default();
    let x = data(400, 5, 3);
    for shift in [Some(0.0), Some(1.0), None] {
        let init = Init::DataDependent { shift };
        let one = init.build(arch(5, 3), &backend, Some(x.as_ref())).unwrap();
        for size in [2, 3] {
            let starts = in_group(size, x.rows(), |g, s| {
                init.build_distributed(arch(5, 3), &backend, Some(rows(&x, s)), s, &g)
                    .unwrap()
            });
            for m in &starts {
                let err = rel_err(&flat_params(m), &flat_params(&one), 1e-3);
                assert!(err < 1e-12, "shift {shift:?}, {size} processes: {err:e}");
            }
        }
    }
}

/// Trains `epochs` epochs in one process and in groups of 2 and 3; the parameters and
/// histories must agree.
fn check_same_training(kind: GradientKind, optimizer: Optimizer, batch_size: usize) {
    check_same_training_with(kind, optimizer, batch_size, Activation::default());
}

fn check_same_training_with(
    kind: GradientKind,
    optimizer: Optimizer,
    batch_size: usize,
    activation: Activation,
) {
    check_same_training_of(
        kind,
        optimizer,
        batch_size,
        (activation, BaseDensity::Normal),
    );
}

fn check_same_training_of(
    kind: GradientKind,
    optimizer: Optimizer,
    batch_size: usize,
    (activation, base): (Activation, BaseDensity),
) {
    let backend = DefaultBackend::default();
    let x = data(230, 4, 11);
    let (train, val) = (
        x.top(200).to_owned(),
        x.as_ref().rows_range(200, 230).to_owned(),
    );
    let a = Architecture {
        activation,
        base,
        ..arch(4, 3)
    };
    let start = Init::Orthogonal { seed: 4 }
        .build(a, &backend, None)
        .unwrap();
    let config = TrainConfig {
        optimizer,
        batch_size,
        epochs: 3,
        gradient: kind,
        train_eval_rows: 150,
        ..TrainConfig::default()
    };
    let mut one = start.clone();
    let mut t = Trainer::new(&one, backend, config.clone(), 200).unwrap();
    let h1 = t
        .fit(&mut one, train.as_ref(), Some(val.as_ref()), |_| {})
        .unwrap()
        .clone();
    for size in [2, 3] {
        let results = in_group(size, 200, |g, s| {
            let vs = Shard::even(30, g.rank(), g.size());
            let mut m: InvertibleMlp<f64> = start.clone();
            let mut t = Trainer::distributed(&m, backend, config.clone(), s, Some(vs), g).unwrap();
            let h = t
                .fit(&mut m, rows(&train, s), Some(rows(&val, vs)), |_| {})
                .unwrap()
                .clone();
            (m, h)
        });
        for (m, h) in &results {
            let err = rel_err(&flat_params(m), &flat_params(&one), 1e-3);
            assert!(
                err < 1e-12,
                "{kind:?}, batch {batch_size}, {size} processes: {err:e}"
            );
            assert_eq!(h.best_epoch, h1.best_epoch);
            assert_eq!(h.epochs.len(), h1.epochs.len());
            for (a, b) in h.epochs.iter().zip(&h1.epochs) {
                for (u, v) in [(a.train_ll, b.train_ll), (a.val_ll, b.val_ll)] {
                    assert!((u.unwrap() - v.unwrap()).abs() < 1e-10, "{u:?} {v:?}");
                }
            }
        }
    }
}

#[test]
fn data_parallel_training_equals_one_process() {
    check_same_training(GradientKind::Relative, Optimizer::sgd(1e-2), 32);
    // Batches of 5 rows across 3 processes: some processes hold none of a batch's rows.
    check_same_training(GradientKind::Relative, Optimizer::adam(1e-3), 5);
    check_same_training(GradientKind::Naive, Optimizer::sgd(1e-2), 16);
    // Spline activations: their gradients are summed across processes with the rest.
    let spline = Activation::Spline {
        bins: 6,
        bound: 3.0,
    };
    check_same_training_with(GradientKind::Relative, Optimizer::sgd(1e-2), 32, spline);
    check_same_training_with(GradientKind::Naive, Optimizer::adam(1e-3), 5, spline);
    // A mixture base: its parameters' gradients too.
    let mixture = BaseDensity::Mixture { components: 3 };
    let sgd = Optimizer::sgd(1e-2);
    check_same_training_of(GradientKind::Relative, sgd, 32, (spline, mixture));
    check_same_training_of(
        GradientKind::Relative,
        sgd,
        5,
        (Activation::default(), mixture),
    );
}

#[test]
fn a_stop_on_one_process_stops_every_process_at_the_same_step() {
    let backend = DefaultBackend::default();
    let x = data(120, 3, 5);
    let start = Init::Orthogonal { seed: 1 }
        .build(arch(3, 2), &backend, None)
        .unwrap();
    let config = TrainConfig {
        batch_size: 10,
        epochs: 5,
        look_ahead: None,
        ..TrainConfig::default()
    };
    let results = in_group(3, 120, |g, s| {
        let rank = g.rank();
        let mut m = start.clone();
        let mut t = Trainer::distributed(&m, backend, config.clone(), s, None, g).unwrap();
        let mut steps = 0;
        let finished = t
            .fit_with(&mut m, rows(&x, s), None, |e, _| {
                if let TrainEvent::Step { .. } = e {
                    steps += 1;
                    // Only rank 1 asks, at its 15th step (in the second epoch).
                    if rank == 1 && steps == 15 {
                        return Flow::Stop;
                    }
                }
                Flow::Continue
            })
            .unwrap();
        (finished, steps, flat_params(&m))
    });
    for (finished, steps, p) in &results {
        assert!(!finished);
        assert_eq!(*steps, 15, "every process stops after the step that asked");
        assert_eq!(p, &results[0].2);
    }
}

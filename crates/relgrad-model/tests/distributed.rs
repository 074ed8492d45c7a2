//! The fit pipeline in data-parallel training (processes stood in for by a
//! `ThreadGroup`, each holding a shard of the rows) gives one process's result: the same
//! parameters to 1e-12 (f64), the same early-stopping epoch and metrics, for the
//! preprocessings and starts; a resumed run equals an uninterrupted one; a failure on
//! one process stops every process with an error naming it.

mod common;

use common::{backend, banana, gaussian_rows};
use relgrad_core::{Collective, EpochMetrics, Flow, Mat, Optimizer, Scalar, Shard, ThreadGroup};
use relgrad_model::{
    AnyCheckpoint, Checkpoint, Error, Fit, FitConfig, FitHooks, Fitted, Precision, Preprocess,
    PreprocessKind, Sharded, Start, Stop,
};

fn config(max_epochs: usize) -> FitConfig {
    FitConfig {
        precision: Precision::F64,
        max_epochs,
        look_ahead: 2,
        batch_size: 50,
        optimizer: Optimizer::Sgd {
            lr: 3e-3,
            momentum: 0.9,
        },
        ..FitConfig::default()
    }
}

fn part(x: &Mat<f64>, s: Shard) -> Sharded<'_> {
    Sharded {
        x: x.as_ref().rows_range(s.offset, s.offset + s.len),
        shard: s,
    }
}

/// Runs `f(member, train shard, val shard)` on one thread per member of a group.
fn in_group<R: Send>(
    size: usize,
    (n_train, n_val): (usize, usize),
    f: impl Fn(ThreadGroup, Shard, Shard) -> R + Sync,
) -> Vec<R> {
    std::thread::scope(|s| {
        let hs: Vec<_> = ThreadGroup::new(size)
            .into_iter()
            .map(|g| {
                let f = &f;
                s.spawn(move || {
                    let (r, n) = (g.rank(), g.size());
                    f(g, Shard::even(n_train, r, n), Shard::even(n_val, r, n))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn params(f: &Fitted) -> Vec<f64> {
    f.model
        .network
        .parameters_f64()
        .into_iter()
        .flat_map(|(w, b)| w.as_slice().iter().copied().chain(b).collect::<Vec<_>>())
        .collect()
}

fn assert_same(a: &Fitted, b: &Fitted, what: &str) {
    let (pa, pb) = (params(a), params(b));
    let scale = pb.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    let err = pa
        .iter()
        .zip(&pb)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale;
    assert!(err < 1e-12, "{what}: parameters differ by {err:e}");
    assert_eq!(a.history.best_epoch, b.history.best_epoch, "{what}");
    assert_eq!(a.history.epochs.len(), b.history.epochs.len(), "{what}");
    assert_eq!(a.stop, b.stop, "{what}");
    for (x, y) in a.history.epochs.iter().zip(&b.history.epochs) {
        let d = (x.val_ll.unwrap() - y.val_ll.unwrap()).abs();
        assert!(d < 1e-10, "{what}: epoch {} val {d:e}", x.epoch);
    }
    let (ta, tb) = (a.train.as_ref().unwrap(), b.train.as_ref().unwrap());
    assert_eq!(ta.n, tb.n);
    assert!((ta.ll_data.mean - tb.ll_data.mean).abs() < 1e-10, "{what}");
    assert!(
        (ta.ll_data.two_se - tb.ll_data.two_se).abs() < 1e-10,
        "{what}"
    );
    let (ga, gb) = (
        &ta.gaussian.as_ref().unwrap().0,
        &tb.gaussian.as_ref().unwrap().0,
    );
    assert!((ga.mean - gb.mean).abs() < 1e-10, "{what}");
    let (qa, qb) = (
        a.model.train_quantiles.as_ref(),
        b.model.train_quantiles.as_ref(),
    );
    for (x, y) in qa.unwrap().iter().zip(qb.unwrap()) {
        assert!((x.1 - y.1).abs() < 1e-9, "{what}: quantile {x:?} {y:?}");
    }
    match (&a.model.preprocess, &b.model.preprocess) {
        (Preprocess::Standardize { mean, std }, Preprocess::Standardize { mean: m, std: s }) => {
            for (x, y) in mean.iter().chain(std).zip(m.iter().chain(s)) {
                assert!((x - y).abs() < 1e-12 * y.abs().max(1.0), "{what}: {x} {y}");
            }
        }
        (p, q) => assert_eq!(p, q, "{what}"),
    }
}

/// Pixel-like rows (integers 0..=16) for the logit preprocessing.
fn pixels(n: usize, seed: u64) -> Mat<f64> {
    let g = gaussian_rows(n, 3, seed);
    Mat::from_fn(n, 3, |i, j| {
        (8.0 + 3.0 * g.get(i, j)).round().clamp(0.0, 16.0)
    })
}

#[test]
fn a_distributed_fit_equals_one_process() {
    let cases: Vec<(&str, FitConfig, Mat<f64>, Mat<f64>)> = vec![
        (
            "standardize, data start",
            config(6),
            banana(300, 1),
            banana(90, 2),
        ),
        (
            "logit, data start, 4 layers",
            FitConfig {
                levels: Some(17),
                preprocess: PreprocessKind::Logit,
                n_layers: 4,
                ..config(5)
            },
            pixels(240, 3),
            pixels(60, 4),
        ),
        (
            "auto start, adam, batch 7",
            FitConfig {
                start: Start::Data { shift: None },
                batch_size: 7,
                optimizer: Optimizer::adam(1e-3),
                ..config(3)
            },
            gaussian_rows(200, 4, 5),
            gaussian_rows(50, 4, 6),
        ),
    ];
    for (what, c, train, val) in &cases {
        let one = Fit::new(&backend(), c.clone(), train.as_ref(), Some(val.as_ref()))
            .unwrap()
            .run(&mut ())
            .unwrap();
        assert!(one.history.best_epoch > 0, "{what}: training moved");
        for size in [2, 3] {
            let fits = in_group(size, (train.rows(), val.rows()), |g, ts, vs| {
                Fit::distributed(
                    &backend(),
                    c.clone(),
                    g,
                    part(train, ts),
                    Some(part(val, vs)),
                )
                .unwrap()
                .run(&mut ())
                .unwrap()
            });
            for f in &fits {
                assert_same(f, &one, &format!("{what}, {size} processes"));
            }
        }
    }
}

/// Keeps every checkpoint (on rank 0 only, as the CLI writes them) and may cancel.
struct Keep {
    rank: usize,
    checkpoints: Vec<Vec<u8>>,
    cancel_after: Option<usize>,
}

impl FitHooks for Keep {
    fn epoch(&mut self, m: &EpochMetrics) -> Flow {
        if self.cancel_after == Some(m.epoch) && self.rank == 0 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint<T: Scalar>(&mut self, c: &Checkpoint<T>) -> relgrad_model::Result<()> {
        if self.rank == 0 {
            self.checkpoints.push(c.to_bytes()?);
        }
        Ok(())
    }
}

#[test]
fn a_cancelled_distributed_run_resumes_to_the_uninterrupted_result_on_any_group() {
    let (train, val) = (banana(240, 7), banana(60, 8));
    let c = FitConfig {
        look_ahead: 20,
        ..config(6)
    };
    let whole = Fit::new(&backend(), c.clone(), train.as_ref(), Some(val.as_ref()))
        .unwrap()
        .run(&mut ())
        .unwrap();
    // A group of 3 cancels after epoch 2 (asked on rank 0 alone); all stop there.
    let first = in_group(3, (240, 60), |g, ts, vs| {
        let mut keep = Keep {
            rank: g.rank(),
            checkpoints: vec![],
            cancel_after: Some(2),
        };
        let f = Fit::distributed(
            &backend(),
            c.clone(),
            g,
            part(&train, ts),
            Some(part(&val, vs)),
        )
        .unwrap()
        .run(&mut keep)
        .unwrap();
        (f.stop, keep.checkpoints)
    });
    for (stop, _) in &first {
        assert_eq!(*stop, Stop::Cancelled { epochs_done: 2 });
    }
    let saved = first[0].1.last().unwrap().clone();
    // A group of 2 resumes from rank 0's last checkpoint.
    let resumed = in_group(2, (240, 60), |g, ts, vs| {
        let ck = AnyCheckpoint::from_bytes(&saved).unwrap();
        let (t, v) = (part(&train, ts), Some(part(&val, vs)));
        Fit::resume_distributed(&backend(), ck, g, t, v, None, false)
            .unwrap()
            .run(&mut ())
            .unwrap()
    });
    for f in &resumed {
        assert_same(f, &whole, "resumed on 2 of a run of 3");
    }
    // The checkpoint also resumes in one process, and refuses other rows.
    let ck = AnyCheckpoint::from_bytes(&saved).unwrap();
    let f = Fit::resume(&backend(), ck, train.as_ref(), Some(val.as_ref()), None)
        .unwrap()
        .run(&mut ())
        .unwrap();
    assert_same(&f, &whole, "resumed in one process");
    let other = banana(240, 9);
    let refused = in_group(2, (240, 60), |g, ts, vs| {
        let ck = AnyCheckpoint::from_bytes(&saved).unwrap();
        let (t, v) = (part(&other, ts), Some(part(&val, vs)));
        Fit::resume_distributed(&backend(), ck, g, t, v, None, false).err()
    });
    for e in refused {
        assert!(e.unwrap().to_string().contains("differ"));
    }
}

#[test]
fn bad_rows_on_one_process_stop_every_process_naming_it() {
    let (mut train, val) = (banana(90, 1), banana(30, 2));
    train.set(70, 1, f64::NAN); // held by rank 2 of 3 (rows 60..90)
    let errors = in_group(3, (90, 30), |g, ts, vs| {
        Fit::distributed(
            &backend(),
            config(3),
            g,
            part(&train, ts),
            Some(part(&val, vs)),
        )
        .err()
        .expect("every process fails")
    });
    for e in errors {
        match &e {
            Error::Rank { rank: 2, message } => {
                assert!(message.contains("not a finite number"), "{message}")
            }
            e => panic!("{e}"),
        }
    }
}

/// A checkpoint that fails on rank 1 only ends every process's run with its error.
struct FailOn(usize);

impl FitHooks for FailOn {
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint<T: Scalar>(&mut self, _: &Checkpoint<T>) -> relgrad_model::Result<()> {
        if self.0 == 1 {
            return Err(Error::Config("the disk is full".into()));
        }
        Ok(())
    }
}

#[test]
fn a_failing_checkpoint_on_one_process_stops_every_process() {
    let (train, val) = (banana(90, 1), banana(30, 2));
    let errors = in_group(2, (90, 30), |g, ts, vs| {
        let mut hooks = FailOn(g.rank());
        Fit::distributed(
            &backend(),
            config(3),
            g,
            part(&train, ts),
            Some(part(&val, vs)),
        )
        .unwrap()
        .run(&mut hooks)
        .expect_err("every process fails")
    });
    for e in errors {
        assert_eq!(e.to_string(), "rank 1: the disk is full");
    }
}

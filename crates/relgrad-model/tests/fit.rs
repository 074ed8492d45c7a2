//! The fit pipeline: a fit on synthetic data, determinism, checkpoints that resume to
//! the uninterrupted result, divergence, invalid settings and data, fine-tuning.

mod common;

use common::{backend, banana, gaussian_rows};
use relgrad_core::{EpochMetrics, Flow, History, Mat, Optimizer, Scalar};
use relgrad_model::{
    fit, AnyCheckpoint, Checkpoint, DensityModel, Error, Fit, FitConfig, FitHooks, Fitted, OnEpoch,
    Precision, Preprocess, PreprocessKind, Start, Stop,
};

fn config(max_epochs: usize) -> FitConfig {
    FitConfig {
        precision: Precision::F64,
        max_epochs,
        optimizer: Optimizer::Sgd {
            lr: 3e-3,
            momentum: 0.9,
        },
        ..FitConfig::default()
    }
}

struct Data {
    train: Mat<f64>,
    val: Mat<f64>,
}

fn data() -> Data {
    Data {
        train: banana(600, 1),
        val: banana(200, 2),
    }
}

fn run(c: &FitConfig, d: &Data) -> Fitted {
    fit(&backend(), c, d.train.as_ref(), Some(d.val.as_ref())).unwrap()
}

/// The history without the wall-clock seconds.
fn history_key(h: &History) -> Vec<(usize, Option<u64>, Option<u64>, usize)> {
    h.epochs
        .iter()
        .map(|m| {
            (
                m.epoch,
                m.train_ll.map(f64::to_bits),
                m.val_ll.map(f64::to_bits),
                m.steps,
            )
        })
        .collect()
}

/// Hooks that keep every checkpoint's bytes and may cancel after an epoch.
#[derive(Default)]
struct Collect {
    checkpoints: Vec<Vec<u8>>,
    epochs: Vec<usize>,
    stop_after_epoch: Option<usize>,
    stop_at_step_of_epoch: Option<usize>,
}

impl FitHooks for Collect {
    fn step(&mut self, epoch: usize, _rows: usize) -> Flow {
        if self.stop_at_step_of_epoch == Some(epoch) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
    fn epoch(&mut self, metrics: &EpochMetrics) -> Flow {
        self.epochs.push(metrics.epoch);
        if self.stop_after_epoch == Some(metrics.epoch) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
    fn checkpoint<T: Scalar>(&mut self, c: &Checkpoint<T>) -> relgrad_model::Result<()> {
        self.checkpoints.push(c.to_bytes()?);
        Ok(())
    }
}

fn column_mean_std(x: &Mat<f64>, j: usize) -> (f64, f64) {
    let n = x.rows() as f64;
    let mean = (0..x.rows()).map(|i| x.get(i, j)).sum::<f64>() / n;
    let var = (0..x.rows())
        .map(|i| (x.get(i, j) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

// ---- (a) a fit ------------------------------------------------------------------------

#[test]
fn a_fit_on_synthetic_data() {
    let be = backend();
    let d = data();
    let f = run(&config(30), &d);
    assert!(
        matches!(f.stop, Stop::MaxEpochs | Stop::EarlyStopped),
        "{:?}",
        f.stop
    );
    let h = &f.history;
    assert_eq!(h.epochs[0].epoch, 0);
    if f.stop == Stop::MaxEpochs {
        assert_eq!(h.epochs.len(), 31);
    }
    // The best epoch's parameters are the result: never worse than the start on the
    // validation rows.
    let val = f.val.as_ref().expect("validation metrics");
    let start_val = h.epochs[0].val_ll.unwrap();
    assert!(
        val.ll.mean >= start_val - 1e-12,
        "{} < {start_val}",
        val.ll.mean
    );
    let best = h.best().unwrap();
    assert!((best.val_ll.unwrap() - val.ll.mean).abs() < 1e-10);
    assert!(h
        .epochs
        .iter()
        .all(|m| m.val_ll.unwrap() <= best.val_ll.unwrap()));
    assert!(h.best_epoch > 0, "training improved on the start: {h:?}");

    // The model's own verbs reproduce the fit's final metrics.
    let m = &f.model;
    let train = f.train.as_ref().expect("train metrics");
    let ll = m.mean_log_likelihood(&be, d.train.as_ref()).unwrap();
    assert!(
        (ll - train.ll_data.mean).abs() < 1e-10,
        "{ll} vs {}",
        train.ll_data.mean
    );
    assert_eq!((train.n, train.d, val.n), (600, 2, 200));
    assert_eq!(
        m.metrics["train"]["ll_data_mean"].as_f64(),
        Some(train.ll_data.mean)
    );
    assert_eq!(m.metrics["val"]["ll_mean"].as_f64(), Some(val.ll.mean));
    assert!(f.reference.is_some());

    // The preprocessing is the training rows' standardisation.
    let Preprocess::Standardize { mean, std } = &m.preprocess else {
        panic!("auto on real-valued data standardises: {:?}", m.preprocess)
    };
    for j in 0..2 {
        let (mu, sd) = column_mean_std(&d.train, j);
        assert!(
            (mean[j] - mu).abs() < 1e-12 && (std[j] - sd).abs() < 1e-12,
            "column {j}"
        );
    }
    // ln p(x) = ln p_model(y) - sum ln std.
    let shift: f64 = std.iter().map(|s| s.ln()).sum();
    assert!((train.ll.mean - shift - train.ll_data.mean).abs() < 1e-10);

    // Quantiles of the training rows' log-densities.
    let q = m.train_quantiles.as_ref().expect("quantiles recorded");
    assert_eq!(q.len(), 9);
    let mut lp = m.log_prob(&be, d.train.as_ref()).unwrap();
    lp.sort_by(f64::total_cmp);
    assert!((m.threshold(0.0).unwrap() - lp[0]).abs() < 1e-10);
    assert!((m.threshold(1.0).unwrap() - lp[599]).abs() < 1e-10);
    let median = 0.5 * (lp[299] + lp[300]);
    assert!((m.threshold(0.5).unwrap() - median).abs() < 1e-10);

    // The recorded training settings and outcome.
    assert_eq!(
        m.training["epochs_run"].as_u64(),
        Some(h.epochs.last().unwrap().epoch as u64)
    );
    assert_eq!(m.training["best_epoch"].as_u64(), Some(h.best_epoch as u64));
    assert_eq!(m.training["diverged"].as_bool(), Some(false));
    assert_eq!(m.training["precision"].as_str(), Some("f64"));
    assert_eq!(m.data["rows"]["train"].as_u64(), Some(600));
    assert_eq!(m.network.precision(), Precision::F64);
    // And the result survives its file.
    assert_eq!(
        &DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap(),
        m
    );
}

#[test]
fn a_fit_without_validation_rows() {
    let d = data();
    let f = fit(&backend(), &config(5), d.train.as_ref(), None).unwrap();
    assert_eq!(f.stop, Stop::MaxEpochs);
    assert!(f.val.is_none());
    assert!(f.history.epochs.iter().all(|m| m.val_ll.is_none()));
    let t = f.train.unwrap();
    assert!((f.history.best().unwrap().train_ll.unwrap() - t.ll.mean).abs() < 1e-10);
}

#[test]
fn a_fit_in_f32() {
    let be = backend();
    let d = data();
    let c = FitConfig {
        precision: Precision::F32,
        ..config(5)
    };
    let f = run(&c, &d);
    assert_eq!(f.model.network.precision(), Precision::F32);
    let ll = f.model.mean_log_likelihood(&be, d.train.as_ref()).unwrap();
    assert!((ll - f.train.unwrap().ll_data.mean).abs() < 1e-10);
}

// ---- (b) determinism ------------------------------------------------------------------

#[test]
fn fits_are_deterministic() {
    let d = data();
    let a = run(&config(6), &d);
    let b = run(&config(6), &d);
    assert_eq!(a.model.network, b.model.network);
    assert_eq!(history_key(&a.history), history_key(&b.history));
    assert_eq!(a.model.train_quantiles, b.model.train_quantiles);
    // And depend on the seed (shuffles).
    let c = run(
        &FitConfig {
            seed: 1,
            ..config(6)
        },
        &d,
    );
    assert_ne!(a.model.network, c.model.network);
}

// ---- (c) checkpoints and resume -------------------------------------------------------

fn resume_from(bytes: &[u8], d: &Data, max_epochs: Option<usize>, precision: Precision) -> Fitted {
    let ck = match precision {
        Precision::F64 => AnyCheckpoint::F64(Checkpoint::<f64>::from_bytes(bytes).unwrap()),
        Precision::F32 => AnyCheckpoint::F32(Checkpoint::<f32>::from_bytes(bytes).unwrap()),
    };
    Fit::resume(
        &backend(),
        ck,
        d.train.as_ref(),
        Some(d.val.as_ref()),
        max_epochs,
    )
    .unwrap()
    .run(&mut ())
    .unwrap()
}

fn check_resume(precision: Precision) {
    check_resume_with(FitConfig {
        precision,
        ..config(8)
    });
}

fn check_resume_with(c: FitConfig) {
    let be = backend();
    let d = data();
    let precision = c.precision;
    let mut all = Collect::default();
    let full = Fit::new(&be, c.clone(), d.train.as_ref(), Some(d.val.as_ref()))
        .unwrap()
        .run(&mut all)
        .unwrap();
    assert_eq!(full.stop, Stop::MaxEpochs);
    assert_eq!(all.epochs, (0..=8).collect::<Vec<_>>());
    assert_eq!(
        all.checkpoints.len(),
        9,
        "one checkpoint per evaluated epoch"
    );

    // Cancelled after epoch 3.
    let mut hooks = Collect {
        stop_after_epoch: Some(3),
        ..Collect::default()
    };
    let cancelled = Fit::new(&be, c.clone(), d.train.as_ref(), Some(d.val.as_ref()))
        .unwrap()
        .run(&mut hooks)
        .unwrap();
    assert_eq!(cancelled.stop, Stop::Cancelled { epochs_done: 3 });
    assert!(cancelled.train.is_none() && cancelled.val.is_none());
    assert_eq!(hooks.checkpoints.len(), 4, "epochs 0 to 3 are checkpointed");
    let last = hooks.checkpoints.last().unwrap();

    let resumed = resume_from(last, &d, None, precision);
    assert_eq!(resumed.stop, Stop::MaxEpochs);
    assert_eq!(
        resumed.model.network, full.model.network,
        "resumed == uninterrupted"
    );
    assert_eq!(history_key(&resumed.history), history_key(&full.history));
    assert_eq!(resumed.model.preprocess, full.model.preprocess);
    assert_eq!(resumed.train, full.train);
    assert_eq!(resumed.val, full.val);
    // The recorded settings are the run's, apart from the wall-clock time.
    let strip = |m: &DensityModel| {
        let mut t = m.training.clone();
        t.as_object_mut().unwrap().remove("seconds");
        t
    };
    assert_eq!(strip(&resumed.model), strip(&full.model));

    // Every checkpoint of the uninterrupted run resumes to the same result.
    for (k, bytes) in all.checkpoints.iter().enumerate() {
        let r = resume_from(bytes, &d, None, precision);
        assert_eq!(
            r.model.network, full.model.network,
            "resumed from epoch {k}"
        );
    }

    // A checkpoint of a finished run continues with more epochs exactly like a longer run.
    let longer = run(
        &FitConfig {
            max_epochs: 10,
            ..c.clone()
        },
        &d,
    );
    let extended = resume_from(all.checkpoints.last().unwrap(), &d, Some(10), precision);
    assert_eq!(extended.model.network, longer.model.network);
    assert_eq!(history_key(&extended.history), history_key(&longer.history));
}

/// With spline activations (their parameters and their own Adam state are checkpointed
/// too), in both precisions.
#[test]
fn resume_gives_the_uninterrupted_result_with_splines() {
    for precision in [Precision::F64, Precision::F32] {
        check_resume_with(FitConfig {
            precision,
            activation: relgrad_core::Activation::Spline {
                bins: 6,
                bound: 3.0,
            },
            n_layers: 3,
            ..config(8)
        });
    }
}

/// With a mixture base (its parameters and their Adam state are checkpointed too), alone
/// and with splines, in both precisions.
#[test]
fn resume_gives_the_uninterrupted_result_with_a_mixture_base() {
    let base = relgrad_core::BaseDensity::Mixture { components: 3 };
    for precision in [Precision::F64, Precision::F32] {
        check_resume_with(FitConfig {
            precision,
            base,
            ..config(8)
        });
        check_resume_with(FitConfig {
            precision,
            base,
            activation: relgrad_core::Activation::Spline {
                bins: 6,
                bound: 3.0,
            },
            n_layers: 3,
            ..config(8)
        });
    }
}

#[test]
fn resume_gives_the_uninterrupted_result_f64() {
    check_resume(Precision::F64);
}

#[test]
fn resume_gives_the_uninterrupted_result_f32() {
    check_resume(Precision::F32);
}

/// The best validation log-likelihood of a run.
fn best_val(h: &History) -> f64 {
    h.best().and_then(|m| m.val_ll).unwrap()
}

#[test]
fn plateaus_decay_the_learning_rate_and_resume_exactly() {
    let d = data();
    let c = |lr_decays| FitConfig {
        look_ahead: 3,
        lr_decays,
        optimizer: Optimizer::Sgd {
            lr: 3e-2,
            momentum: 0.9,
        },
        ..config(200)
    };
    let plain = run(&c(0), &d);
    assert_eq!(plain.stop, Stop::EarlyStopped);
    assert!(plain.history.decays.is_empty());
    let mut all = Collect::default();
    let be = backend();
    let decayed = Fit::new(&be, c(2), d.train.as_ref(), Some(d.val.as_ref()))
        .unwrap()
        .run(&mut all)
        .unwrap();
    assert_eq!(decayed.stop, Stop::EarlyStopped);
    let h = &decayed.history;
    assert_eq!(h.decays.len(), 2, "{:?}", h.decays);
    // Up to the first plateau the runs are the same; the first decay comes where the
    // plain run stopped, and each plateau is counted from the best epoch or last decay.
    let first = plain.history.epochs.last().unwrap().epoch;
    assert_eq!(h.decays[0], first);
    assert_eq!(
        history_key(&History {
            epochs: h.epochs[..=first].to_vec(),
            ..History::default()
        }),
        history_key(&plain.history)
    );
    let best_before = |e: usize| {
        h.epochs[..=e]
            .iter()
            .filter(|m| m.val_ll.is_some())
            .max_by(|a, b| a.val_ll.partial_cmp(&b.val_ll).unwrap())
            .unwrap()
            .epoch
    };
    assert_eq!(h.decays[1], best_before(h.decays[1]).max(h.decays[0]) + 3);
    assert_eq!(
        h.epochs.last().unwrap().epoch,
        h.best_epoch.max(h.decays[1]) + 3
    );
    // Going on from the best parameters can only help on validation, and here it does.
    assert!(best_val(h) > best_val(&plain.history) + 1e-6);
    // The epoch after a decay starts from the best parameters at the smaller rate: every
    // checkpoint, before and after the decays, resumes to the uninterrupted result.
    assert_eq!(all.checkpoints.len(), h.epochs.len());
    for (k, bytes) in all.checkpoints.iter().enumerate() {
        let r = resume_from(bytes, &d, None, Precision::F64);
        assert_eq!(r.model.network, decayed.model.network, "resumed from {k}");
        assert_eq!(r.history.decays, h.decays, "resumed from {k}");
    }
    // A decay restarts from the best parameters: at a vanishing rate the next epoch
    // scores what the best epoch scored (the plateau's last epoch is worse).
    let frozen = run(
        &FitConfig {
            lr_decay: 1e-12,
            ..c(1)
        },
        &d,
    );
    let after = &frozen.history.epochs[first + 1];
    let best_so_far = best_val(&plain.history);
    assert!(plain.history.epochs[first].val_ll.unwrap() < best_so_far - 1e-6);
    assert!((after.val_ll.unwrap() - best_so_far).abs() < 1e-9);
    // The settings are recorded, and a file from before decays reads as none.
    assert_eq!(decayed.model.training["lr_decays"], 2);
    assert_eq!(
        decayed.model.training["lr_decayed_after"],
        serde_json::json!(h.decays)
    );
    let mut old = c(2).to_json();
    old.as_object_mut().unwrap().remove("lr_decays");
    assert_eq!(FitConfig::from_json(&old).unwrap().lr_decays, 0);
    for bad in [0.0, 1.0, f64::NAN] {
        assert!(FitConfig {
            lr_decay: bad,
            ..c(1)
        }
        .validate()
        .is_err());
    }
    assert!(FitConfig {
        lr_decays: 51,
        ..c(1)
    }
    .validate()
    .is_err());
}

#[test]
fn checkpoints_round_trip_through_a_file() {
    let be = backend();
    let d = data();
    let mut hooks = Collect {
        stop_after_epoch: Some(2),
        ..Collect::default()
    };
    Fit::new(&be, config(8), d.train.as_ref(), Some(d.val.as_ref()))
        .unwrap()
        .run(&mut hooks)
        .unwrap();
    let c = Checkpoint::<f64>::from_bytes(hooks.checkpoints.last().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    c.save(&path).unwrap();
    let AnyCheckpoint::F64(back) = AnyCheckpoint::load(&path).unwrap() else {
        panic!("an f64 checkpoint")
    };
    assert_eq!(back.current, c.current);
    assert_eq!(back.state.best, c.state.best);
    assert_eq!(back.state.m, c.state.m);
    assert_eq!(back.state.steps, c.state.steps);
    assert_eq!(
        back.state.steps,
        2 * 6,
        "2 epochs of 600 rows in batches of 100"
    );
    assert_eq!(back.state.history, c.state.history);
    assert_eq!(back.run, c.run);
    assert_eq!(back.run["epochs"].as_u64(), Some(8));
    assert!(back.run["data_fingerprint"].is_object());
}

#[test]
fn resume_without_validation_and_a_short_train_evaluation() {
    // Without validation rows the best epoch is chosen on the training log-likelihood of
    // the first `train_eval_rows` rows: a resumed run must evaluate the same rows.
    let be = backend();
    let d = data();
    let c = FitConfig {
        train_eval_rows: 50,
        ..config(8)
    };
    assert_eq!(
        FitConfig::from_json(&c.to_json()).unwrap(),
        c,
        "the settings' JSON keeps it"
    );
    let full = Fit::new(&be, c.clone(), d.train.as_ref(), None)
        .unwrap()
        .run(&mut ())
        .unwrap();
    let mut hooks = Collect {
        stop_after_epoch: Some(3),
        ..Collect::default()
    };
    Fit::new(&be, c, d.train.as_ref(), None)
        .unwrap()
        .run(&mut hooks)
        .unwrap();
    let ck = AnyCheckpoint::F64(Checkpoint::from_bytes(hooks.checkpoints.last().unwrap()).unwrap());
    let fit = Fit::resume(&be, ck, d.train.as_ref(), None, None).unwrap();
    assert_eq!(fit.config().train_eval_rows, 50);
    let resumed = fit.run(&mut ()).unwrap();
    assert_eq!(history_key(&resumed.history), history_key(&full.history));
    assert_eq!(resumed.model.network, full.model.network);
}

#[test]
fn resume_refuses_other_training_rows() {
    let be = backend();
    let d = data();
    let mut hooks = Collect {
        stop_after_epoch: Some(1),
        ..Collect::default()
    };
    Fit::new(&be, config(8), d.train.as_ref(), Some(d.val.as_ref()))
        .unwrap()
        .run(&mut hooks)
        .unwrap();
    let bytes = hooks.checkpoints.last().unwrap();
    let ck = || AnyCheckpoint::F64(Checkpoint::<f64>::from_bytes(bytes).unwrap());
    let mut changed = d.train.clone();
    changed.set(17, 1, changed.get(17, 1) + 1e-9);
    let fewer = Mat::from_fn(599, 2, |i, j| d.train.get(i, j));
    for (train, what) in [(&changed, "one value changed"), (&fewer, "one row fewer")] {
        let e = match Fit::resume(&be, ck(), train.as_ref(), Some(d.val.as_ref()), None) {
            Ok(_) => panic!("{what}: resumed on other data"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("differ"), "{what}: {e}");
    }
    // The same rows resume.
    assert!(Fit::resume(&be, ck(), d.train.as_ref(), Some(d.val.as_ref()), None).is_ok());
}

#[test]
fn a_cancel_inside_an_epoch_keeps_the_last_complete_epoch() {
    let be = backend();
    let d = data();
    let mut hooks = Collect {
        stop_at_step_of_epoch: Some(3),
        ..Collect::default()
    };
    let f = Fit::new(&be, config(8), d.train.as_ref(), Some(d.val.as_ref()))
        .unwrap()
        .run(&mut hooks)
        .unwrap();
    assert_eq!(f.stop, Stop::Cancelled { epochs_done: 2 });
    assert_eq!(
        hooks.checkpoints.len(),
        3,
        "epochs 0 to 2; none of the incomplete epoch 3"
    );
    // The model holds the best parameters of the complete epochs.
    let c = Checkpoint::<f64>::from_bytes(hooks.checkpoints.last().unwrap()).unwrap();
    assert_eq!(f.model.network.cast::<f64>(), c.state.best);
    assert!(f.model.network.is_finite());
}

#[test]
fn on_epoch_hooks_see_every_epoch_and_may_stop() {
    let d = data();
    let mut seen = Vec::new();
    let f = Fit::new(
        &backend(),
        config(5),
        d.train.as_ref(),
        Some(d.val.as_ref()),
    )
    .unwrap()
    .run(&mut OnEpoch(|m: &EpochMetrics| {
        seen.push(m.epoch);
        if m.epoch == 2 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }))
    .unwrap();
    assert_eq!(seen, vec![0, 1, 2]);
    assert_eq!(f.stop, Stop::Cancelled { epochs_done: 2 });
}

// ---- (d) divergence -------------------------------------------------------------------

#[test]
fn divergence_keeps_the_best_parameters() {
    let be = backend();
    let d = data();
    let c = FitConfig {
        optimizer: Optimizer::Sgd {
            lr: 1e3,
            momentum: 0.9,
        },
        ..config(10)
    };
    let f = run(&c, &d);
    let Stop::Diverged { epoch } = f.stop else {
        panic!("expected a divergence, got {:?}", f.stop)
    };
    assert!(epoch >= 1);
    assert!(f.history.best_epoch < epoch);
    // Each of the two decays (the default) met a divergence too; the third ends the run.
    assert_eq!(f.history.decays.len(), 2, "{:?}", f.history.decays);
    let m = &f.model;
    assert!(m.network.is_finite());
    let lp = m.log_prob(&be, d.train.as_ref()).unwrap();
    assert!(lp.iter().all(|v| v.is_finite()));
    assert_eq!(m.training["diverged"].as_bool(), Some(true));
    let t = f
        .train
        .as_ref()
        .expect("final metrics of the best parameters");
    assert!(t.ll.mean.is_finite());
    let best = f.history.best().unwrap();
    assert!((best.val_ll.unwrap() - f.val.unwrap().ll.mean).abs() < 1e-10);
    if f.history.best_epoch == 0 {
        // The best parameters are the start's.
        let start = run(&config(0), &d);
        assert_eq!(start.stop, Stop::MaxEpochs);
        assert_eq!(m.network, start.model.network);
    }
}

#[test]
fn a_divergence_with_decays_left_goes_on_at_a_smaller_rate() {
    let d = data();
    let c = |lr_decays| FitConfig {
        optimizer: Optimizer::Sgd {
            lr: 1e3,
            momentum: 0.9,
        },
        lr_decays,
        lr_decay: 3e-6,
        look_ahead: 5,
        ..config(60)
    };
    let failed = run(&c(0), &d);
    let Stop::Diverged { epoch } = failed.stop else {
        panic!("expected a divergence, got {:?}", failed.stop)
    };
    let f = run(&c(1), &d);
    assert!(
        matches!(f.stop, Stop::EarlyStopped | Stop::MaxEpochs),
        "{:?}",
        f.stop
    );
    // The decay came after the diverged epoch, from the best parameters of before it.
    assert_eq!(f.history.decays, [epoch]);
    let bad = &f.history.epochs[epoch];
    assert!(!bad.val_ll.is_some_and(f64::is_finite) || !bad.train_ll.is_some_and(f64::is_finite));
    assert!(
        f.history.best_epoch > epoch,
        "training improved after the decay"
    );
    assert!(best_val(&f.history) > best_val(&failed.history));
    assert!(f.model.network.is_finite());
    assert_eq!(f.model.training["diverged"].as_bool(), Some(false));
}

// ---- (e) invalid settings and data ----------------------------------------------------

fn fit_error(c: &FitConfig, train: &Mat<f64>, val: Option<&Mat<f64>>) -> Error {
    match Fit::new(
        &backend(),
        c.clone(),
        train.as_ref(),
        val.map(|v| v.as_ref()),
    ) {
        Ok(_) => panic!("the fit was accepted"),
        Err(e) => e,
    }
}

#[test]
fn one_training_row_is_refused() {
    let x = Mat::from_vec(1, 2, vec![1.0, 2.0]);
    let e = fit_error(&config(3), &x, None);
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("at least 2 rows"), "{e}");
    let e = fit_error(&config(3), &Mat::zeros(5, 0), None);
    assert!(e.to_string().contains("at least 1 column"), "{e}");
}

#[test]
fn non_finite_rows_are_refused_naming_the_part() {
    let d = data();
    let mut val = d.val.clone();
    val.set(1, 0, f64::NAN);
    let e = fit_error(&config(3), &d.train, Some(&val)).to_string();
    assert!(e.contains("validation"), "{e}");
    assert!(e.contains("row 2, column 1"), "{e}");
    let mut train = d.train.clone();
    train.set(4, 1, f64::INFINITY);
    let e = fit_error(&config(3), &train, Some(&d.val)).to_string();
    assert!(e.contains("training"), "{e}");
    assert!(e.contains("row 5, column 2"), "{e}");
    let wide = gaussian_rows(10, 3, 1);
    let e = fit_error(&config(3), &d.train, Some(&wide)).to_string();
    assert!(
        e.contains("the validation rows have 3 columns, the training rows 2"),
        "{e}"
    );
}

#[test]
fn the_data_start_needs_more_rows_than_columns() {
    let x = gaussian_rows(3, 5, 1);
    let e = fit_error(&config(3), &x, None).to_string();
    assert!(e.contains("3 training rows for 5 columns"), "{e}");
    assert!(e.contains("another start"), "{e}");
    // Other starts do not fit a covariance.
    let c = FitConfig {
        start: Start::Orthogonal,
        ..config(1)
    };
    let f = fit(&backend(), &c, x.as_ref(), None).unwrap();
    assert!(f.model.network.is_finite());
}

#[test]
fn invalid_settings_are_named() {
    let d = data();
    let cases: Vec<(FitConfig, &str)> = vec![
        (
            FitConfig {
                n_layers: 0,
                ..config(3)
            },
            "number of layers",
        ),
        (
            FitConfig {
                batch_size: 0,
                ..config(3)
            },
            "batch size",
        ),
        (
            FitConfig {
                optimizer: Optimizer::Sgd {
                    lr: 0.1,
                    momentum: 1.0,
                },
                ..config(3)
            },
            "momentum",
        ),
        (
            FitConfig {
                start: Start::Data {
                    shift: Some(f64::NAN),
                },
                ..config(3)
            },
            "shift",
        ),
        (
            FitConfig {
                preprocess: PreprocessKind::Logit,
                ..config(3)
            },
            "levels",
        ),
    ];
    for (c, needle) in cases {
        let e = fit_error(&c, &d.train, None).to_string();
        assert!(e.contains(needle), "{e} lacks {needle}");
    }
    // Logit on data that are not pixels names the part, row and column.
    let c = FitConfig {
        preprocess: PreprocessKind::Logit,
        levels: Some(17),
        ..config(3)
    };
    let e = fit_error(&c, &d.train, None).to_string();
    assert!(e.contains("training rows"), "{e}");
    assert!(e.contains("row 1, column 1"), "{e}");
}

#[test]
fn image_data_get_the_logit_preprocessing() {
    let be = backend();
    let x = Mat::from_fn(300, 4, |i, j| ((i * 7 + j * 3 + i * j) % 17) as f64);
    let c = FitConfig {
        levels: Some(17),
        ..config(2)
    };
    let f = fit(&be, &c, x.as_ref(), None).unwrap();
    assert_eq!(
        f.model.preprocess,
        Preprocess::Logit {
            levels: 17,
            lambda: 1e-6
        }
    );
    let t = f.train.unwrap();
    let bpd = t
        .bits_per_dim
        .expect("bits per dimension for image data")
        .mean;
    assert!((bpd + t.ll_data.mean / (4.0 * std::f64::consts::LN_2)).abs() < 1e-10);
    // The training rows' metrics use the training part's noise.
    let lp = f
        .model
        .log_prob_part(&be, x.as_ref(), relgrad_model::Part::Train)
        .unwrap();
    let mean = lp.iter().sum::<f64>() / lp.len() as f64;
    assert!((mean - t.ll_data.mean).abs() < 1e-10);
}

// ---- (f) fine-tuning ------------------------------------------------------------------

#[test]
fn a_model_start_takes_the_models_preprocessing_and_parameters() {
    let be = backend();
    let d = data();
    let base = run(&config(3), &d).model;
    // Other data, shifted: a fresh preprocessing would differ.
    let shifted =
        |m: &Mat<f64>| Mat::from_fn(m.rows(), 2, |i, j| m.get(i, j) + 10.0 * (j + 1) as f64);
    let (train, val) = (shifted(&banana(400, 5)), shifted(&banana(100, 6)));
    let c = FitConfig {
        start: Start::Model(Box::new(base.clone())),
        ..config(0)
    };
    let f = fit(&be, &c, train.as_ref(), Some(val.as_ref())).unwrap();
    assert_eq!(f.model.preprocess, base.preprocess);
    assert_eq!(
        f.model.network, base.network,
        "no epoch: the start model's parameters"
    );
    assert_eq!(f.model.training["init"]["kind"].as_str(), Some("model"));
    // Epoch 0 scores the start model on the new rows.
    let start_val = base
        .evaluate(&be, val.as_ref(), relgrad_model::Part::Val, None)
        .unwrap()
        .ll
        .mean;
    assert!((f.history.epochs[0].val_ll.unwrap() - start_val).abs() < 1e-10);

    // Training on: still the start model's preprocessing, and never worse than it.
    let c = FitConfig {
        start: Start::Model(Box::new(base.clone())),
        ..config(5)
    };
    let tuned = fit(&be, &c, train.as_ref(), Some(val.as_ref())).unwrap();
    assert_eq!(tuned.model.preprocess, base.preprocess);
    assert!(tuned.val.unwrap().ll.mean >= start_val - 1e-12);

    // In another precision: the start's parameters, converted.
    let c = FitConfig {
        start: Start::Model(Box::new(base.clone())),
        precision: Precision::F32,
        ..config(0)
    };
    let f32_fit = fit(&be, &c, train.as_ref(), None).unwrap();
    assert_eq!(f32_fit.model.network.precision(), Precision::F32);
    assert_eq!(
        f32_fit.model.network.cast::<f32>(),
        base.network.cast::<f32>()
    );

    // A start model of another dimension is refused.
    let c = FitConfig {
        start: Start::Model(Box::new(base)),
        ..config(1)
    };
    let e = fit_error(&c, &gaussian_rows(50, 3, 1), None).to_string();
    assert!(
        e.contains("the start model has dimension 2, the training rows have 3 columns"),
        "{e}"
    );
}

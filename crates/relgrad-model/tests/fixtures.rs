//! Files written by the previous release's command-line tool must keep loading:
//! `v1-moons-f64.safetensors` (`relgrad train --data moons --n 300 --epochs 3 --precision
//! f64`, with its checkpoint) and `v1-digits-f32.safetensors` (`relgrad train --data
//! digits --epochs 1`). `v1-scores.json` holds what relgrad computed from both files
//! before spline activations and model format version 2 (commit e9d72bc): the current
//! code must reproduce it bit for bit.

mod common;

use common::backend;
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad_core::{Activation, BaseDensity, Mat};
use relgrad_model::{AnyCheckpoint, Checkpoint, DensityModel, ImageShape, Precision, Preprocess};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn moons() -> DensityModel {
    DensityModel::load(fixture("v1-moons-f64.safetensors")).expect("the v1 moons model loads")
}

fn digits() -> DensityModel {
    DensityModel::load(fixture("v1-digits-f32.safetensors")).expect("the v1 digits model loads")
}

#[test]
fn v1_moons_model_loads_with_its_metadata() {
    let m = moons();
    assert_eq!(m.dim(), 2);
    assert_eq!(m.network.n_layers(), 2);
    assert_eq!(m.network.precision(), Precision::F64);
    assert_eq!(
        m.network.activation(),
        Activation::SmoothLeakyRelu { alpha: 0.01 }
    );
    assert_eq!(m.network.base(), BaseDensity::Normal);
    assert!(m.network.use_bias());
    assert!(
        matches!(m.preprocess, Preprocess::Standardize { .. }),
        "{:?}",
        m.preprocess
    );
    assert_eq!(m.image, None);
    assert_eq!(m.seed, 0);
    assert_eq!(
        m.metrics["test"]["ll_mean"].as_f64(),
        Some(-2.8486331709856643)
    );
    assert_eq!(m.training["epochs"].as_u64(), Some(3));
    assert_eq!(m.training["precision"].as_str(), Some("f64"));
    assert_eq!(m.data["rows"]["train"].as_u64(), Some(240));
}

#[test]
fn v1_moons_metrics_agree_with_its_preprocessing() {
    // ll in the data's units = ll in standardised space - sum_j ln std_j: the recorded
    // metrics and the loaded standardisation must tell the same story.
    let m = moons();
    let Preprocess::Standardize { std, .. } = &m.preprocess else {
        unreachable!()
    };
    let log_jac: f64 = std.iter().map(|s| s.ln()).sum();
    for part in ["train", "test"] {
        let ll = m.metrics[part]["ll_mean"].as_f64().unwrap();
        let ll_data = m.metrics[part]["ll_data_mean"].as_f64().unwrap();
        assert!(
            (ll - log_jac - ll_data).abs() < 1e-12,
            "{part}: {ll} - {log_jac} != {ll_data}"
        );
    }
}

#[test]
fn v1_moons_model_computes() {
    let be = backend();
    let m = moons();
    assert_eq!(m.threshold(0.5), None, "v1 files record no quantiles");
    assert_eq!(m.train_quantiles, None);
    // Rows around the two moons, in the data's units.
    let x = Mat::from_vec(
        5,
        2,
        vec![0.0, 0.5, 1.0, 0.0, -1.0, 0.2, 2.0, 0.3, 0.5, -0.3],
    );
    let lp = m.log_prob(&be, x.as_ref()).unwrap();
    assert_eq!(lp.len(), 5);
    assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
    // Not a degenerate density: log-densities of data-like rows are of the order of the
    // recorded mean, not wildly off.
    assert!(lp.iter().all(|&v| v > -20.0 && v < 5.0), "{lp:?}");
    let s = m.sample(&be, 200, &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!((s.rows(), s.cols()), (200, 2));
    assert!(s.as_slice().iter().all(|v| v.is_finite()));
    let lps = m.log_prob(&be, s.as_ref()).unwrap();
    assert!(lps.iter().all(|v| v.is_finite()), "{lps:?}");
    // The samples' mean log-density estimates minus the entropy; it must be in the same
    // range as the recorded log-likelihoods of real rows.
    let mean = lps.iter().sum::<f64>() / lps.len() as f64;
    let recorded = m.metrics["train"]["ll_data_mean"].as_f64().unwrap();
    assert!(
        (mean - recorded).abs() < 1.0,
        "samples score {mean}, training rows {recorded}"
    );
    // Saved again, the file loads to the same model.
    assert_eq!(DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
}

#[test]
fn v1_digits_model_loads_with_its_metadata() {
    let m = digits();
    assert_eq!(m.dim(), 64);
    assert_eq!(m.network.n_layers(), 2);
    assert_eq!(m.network.precision(), Precision::F32);
    assert_eq!(
        m.preprocess,
        Preprocess::Logit {
            levels: 17,
            lambda: 1e-6
        }
    );
    assert_eq!(m.preprocess.levels(), Some(17));
    assert_eq!(
        m.image,
        Some(ImageShape {
            height: 8,
            width: 8
        })
    );
    assert_eq!(m.seed, 0);
    assert_eq!(
        m.metrics["test"]["ll_mean"].as_f64(),
        Some(-118.30914052327473)
    );
    assert_eq!(
        m.metrics["test"]["bits_per_dim"].as_f64(),
        Some(2.4236144456053452)
    );
    assert_eq!(m.threshold(0.01), None);
}

#[test]
fn v1_digits_metrics_are_consistent() {
    // bits per dimension = -ll_data / (D ln 2), with ll_data in pixel units.
    let m = digits();
    let ll_data = m.metrics["test"]["ll_data_mean"].as_f64().unwrap();
    let bpd = m.metrics["test"]["bits_per_dim"].as_f64().unwrap();
    assert!((bpd + ll_data / (64.0 * std::f64::consts::LN_2)).abs() < 1e-12);
}

#[test]
fn v1_digits_model_computes() {
    let be = backend();
    let m = digits();
    // A crude "0": a ring of bright pixels in an 8 x 8 image with pixels 0..=16.
    let zero: Vec<f64> = (0..64)
        .map(|k| {
            let (i, j) = (k / 8, k % 8);
            let ring = (1..7).contains(&i)
                && (2..6).contains(&j)
                && !((2..6).contains(&i) && (3..5).contains(&j));
            if ring {
                13.0
            } else {
                0.0
            }
        })
        .collect();
    let blank = vec![0.0; 64];
    let x = Mat::from_vec(2, 64, [zero, blank].concat());
    let lp = m.log_prob(&be, x.as_ref()).unwrap();
    assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
    let bpd = m.bits_per_dim(&be, x.as_ref()).unwrap();
    for (b, l) in bpd.iter().zip(&lp) {
        assert!((b + l / (64.0 * std::f64::consts::LN_2)).abs() < 1e-12);
    }
    let s = m.sample(&be, 20, &mut StdRng::seed_from_u64(3)).unwrap();
    assert_eq!((s.rows(), s.cols()), (20, 64));
    assert!(
        s.as_slice()
            .iter()
            .all(|&p| p.fract() == 0.0 && (0.0..=16.0).contains(&p)),
        "samples are whole pixel values"
    );
    let lps = m.log_prob(&be, s.as_ref()).unwrap();
    assert!(lps.iter().all(|v| v.is_finite()), "{lps:?}");
    // Pixel 17 does not exist at 17 levels.
    let mut bad = x.clone();
    bad.set(1, 9, 17.0);
    let e = m.log_prob(&be, bad.as_ref()).unwrap_err().to_string();
    assert!(e.contains("row 2, column 10"), "{e}");
    assert_eq!(DensityModel::from_bytes(&m.to_bytes().unwrap()).unwrap(), m);
}

#[test]
fn v1_moons_checkpoint_loads() {
    let path = fixture("v1-moons-f64.checkpoint.safetensors");
    let c = Checkpoint::<f64>::load(&path).expect("the v1 checkpoint loads");
    let epochs: Vec<usize> = c.state.history.epochs.iter().map(|m| m.epoch).collect();
    assert_eq!(epochs, vec![0, 1, 2, 3]);
    assert_eq!(c.state.history.best_epoch, 3);
    assert!(!c.state.history.stopped_early);
    assert_eq!(
        c.state.steps, 9,
        "3 epochs of 3 steps (240 rows, batches of 100)"
    );
    assert_eq!(
        c.state.m.len(),
        4,
        "SGD with momentum: one velocity per parameter group"
    );
    assert!(c.state.v.is_empty());
    assert_eq!(c.current.dim(), 2);
    assert_eq!(c.current.n_layers(), 2);
    assert!(c
        .state
        .history
        .epochs
        .iter()
        .all(|m| m.val_ll.is_some_and(f64::is_finite)));
    assert_eq!(c.run["precision"].as_str(), Some("f64"));
    assert_eq!(c.run["epochs"].as_u64(), Some(3));
    // The run's preprocessing is the model file's.
    let pre = Preprocess::from_json(&c.run["preprocess"]).unwrap();
    assert_eq!(pre, moons().preprocess);
    // The best parameters of the last epoch are the model the run saved.
    let saved = moons().network.cast::<f64>();
    assert_eq!(c.state.best, saved);
    assert_eq!(c.current, saved, "the best epoch is the last one");

    match AnyCheckpoint::load(&path).expect("loads in its own precision") {
        AnyCheckpoint::F64(c2) => {
            assert_eq!(c2.current, c.current);
            assert_eq!(c2.state.history, c.state.history);
        }
        AnyCheckpoint::F32(_) => panic!("the checkpoint is f64"),
    }
    // Read in the other precision: converted.
    let c32 = Checkpoint::<f32>::load(&path).unwrap();
    assert_eq!(c32.current, c.current.cast::<f32>());
}

#[test]
fn a_model_file_is_not_a_checkpoint() {
    let path = fixture("v1-moons-f64.safetensors");
    let e = AnyCheckpoint::load(&path).unwrap_err().to_string();
    assert!(e.contains("not a relgrad checkpoint"), "{e}");
    assert!(e.contains("v1-moons-f64.safetensors"), "{e}");
}

/// Hex `f64::to_bits` strings of a JSON matrix (a list of rows) or vector (one value a row).
fn expected_bits(v: &serde_json::Value, what: &str) -> Vec<Vec<u64>> {
    let hex = |h: &serde_json::Value| {
        let h = h
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {h} is not a hex string"));
        u64::from_str_radix(h, 16).unwrap_or_else(|e| panic!("{what}: {h:?}: {e}"))
    };
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: not a list"))
        .iter()
        .map(|r| match r.as_array() {
            Some(r) => r.iter().map(hex).collect(),
            None => vec![hex(r)],
        })
        .collect()
}

/// The rows of a matrix.
fn rows_of(m: &Mat<f64>) -> Vec<Vec<f64>> {
    (0..m.rows())
        .map(|i| (0..m.cols()).map(|j| m.get(i, j)).collect())
        .collect()
}

/// Compares what the current code computed with what relgrad e9d72bc did: bit for bit
/// when `tol` is `None`, else to `tol` relative (at least `floor` absolute). Panics with
/// every mismatch, named by model, quantity, row and column.
fn compare(
    file: &str,
    quantity: &str,
    got: &[Vec<f64>],
    expected: &[Vec<u64>],
    tol: Option<(f64, f64)>,
) {
    assert_eq!(
        got.len(),
        expected.len(),
        "{file}: {quantity}: {} rows, the fixture has {}",
        got.len(),
        expected.len()
    );
    let mut bad = Vec::new();
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(
            g.len(),
            e.len(),
            "{file}: {quantity}, row {i}: {} columns, the fixture has {}",
            g.len(),
            e.len()
        );
        for (j, (&g, &e)) in g.iter().zip(e).enumerate() {
            let want = f64::from_bits(e);
            let ok = match tol {
                None => g.to_bits() == e,
                Some((rel, floor)) => (g - want).abs() <= (rel * want.abs()).max(floor),
            };
            if !ok {
                bad.push(format!(
                    "{file}: {quantity}, row {i}, column {j}: now {g:e} ({:016x}), relgrad e9d72bc: {want:e} ({e:016x})",
                    g.to_bits()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} of the values differ from what relgrad e9d72bc computed:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Files written before spline activations and model format version 2 score exactly as
/// they did: `v1-scores.json` holds, as `f64` bit patterns, what relgrad at commit e9d72bc
/// computed from both v1 files on fixed rows (data-like and far-out rows for moons; real
/// and hand-made images for digits): `log_prob` of every row, `forward` of the first rows,
/// and `sample` and `network.sample` of 5 rows from `StdRng::seed_from_u64(7)`. Scoring
/// is deterministic: `log_prob` and `forward` dequantise image data with the noise of the
/// model's seed.
///
/// Backend: faer with one thread (`backend()`, `Faer::new(Threads::Fixed(1))`), as when
/// the values were recorded (two threads and `Threads::Auto` gave the same bits there).
/// The bits also depend on the instruction set (the elementwise kernels and faer's
/// products dispatch on the CPU): they were recorded at `SimdLevel` "avx2" (AVX2 with
/// FMA, no AVX-512). On a CPU that runs another level the test compares to a tight
/// relative tolerance instead, and says so on stderr.
#[test]
fn v1_files_score_bit_identically() {
    let text = std::fs::read_to_string(fixture("v1-scores.json")).expect("v1-scores.json");
    let spec: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let recorded = spec["simd_level"].as_str().expect("simd_level");
    let level = relgrad_core::simd_level();
    let exact = level.name() == recorded;
    if !exact {
        eprintln!(
            "v1_files_score_bit_identically: this CPU runs SIMD level {:?}, the values were recorded at {recorded:?}: comparing to a tolerance, not bit for bit",
            level.name()
        );
    }
    let be = backend();
    let models = spec["models"].as_array().expect("models");
    assert_eq!(models.len(), 2, "moons and digits");
    for case in models {
        let file = case["file"].as_str().expect("file");
        let m = DensityModel::load(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let rows: Vec<Vec<f64>> = serde_json::from_value(case["rows"].clone()).expect("rows");
        let x = Mat::from_vec(rows.len(), m.dim(), rows.concat());
        // Relative tolerances of the inexact comparison (a pixel of a sample may round
        // to the neighbouring level).
        let rel = match m.network.precision() {
            Precision::F64 => 1e-9,
            Precision::F32 => 1e-4,
        };
        let tol = |floor: f64| (!exact).then_some((rel, floor));

        let lp = m
            .log_prob(&be, x.as_ref())
            .unwrap_or_else(|e| panic!("{file}: log_prob: {e}"));
        let lp: Vec<Vec<f64>> = lp.into_iter().map(|v| vec![v]).collect();
        let want = expected_bits(&case["log_prob"], "log_prob");
        compare(file, "log_prob", &lp, &want, tol(0.0));

        let k = case["forward_rows"].as_u64().expect("forward_rows") as usize;
        let first = Mat::from_vec(k, m.dim(), rows[..k].concat());
        let z = m
            .forward(&be, first.as_ref())
            .unwrap_or_else(|e| panic!("{file}: forward: {e}"));
        let want = expected_bits(&case["forward"], "forward");
        compare(file, "forward (latents)", &rows_of(&z), &want, tol(rel));

        let seed = case["sample_seed"].as_u64().expect("sample_seed");
        let n = case["sample_n"].as_u64().expect("sample_n") as usize;
        let s = m
            .sample(&be, n, &mut StdRng::seed_from_u64(seed))
            .unwrap_or_else(|e| panic!("{file}: sample: {e}"));
        let want = expected_bits(&case["sample"], "sample");
        let floor = if m.preprocess.levels().is_some() {
            1.0
        } else {
            rel
        };
        compare(file, "sample", &rows_of(&s), &want, tol(floor));

        let s = m
            .network
            .sample(&be, n, &mut StdRng::seed_from_u64(seed))
            .unwrap_or_else(|e| panic!("{file}: network.sample: {e}"));
        let want = expected_bits(&case["network_sample"], "network_sample");
        compare(
            file,
            "network.sample (network space)",
            &rows_of(&s),
            &want,
            tol(rel),
        );
    }
}

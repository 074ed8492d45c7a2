//! `relgrad train`: outputs, exactness of one relative-gradient step, resuming, Ctrl-C,
//! divergence and run-directory protection.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use predicates::prelude::*;
use relgrad::model::{DensityModel, Network};
use relgrad::{relative_gradient, Faer, Threads, Workspace};
use relgrad_cli::checkpoint::{self, Checkpoint};
use relgrad_cli::data::csv;

#[test]
fn train_writes_every_output_for_2d_data() {
    let dir = tmp();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let stdout = stdout_of(relgrad().args([
        "train", "--data", "moons", "--n", "300", "--epochs", "3", "--out", out_s,
    ]));
    assert!(
        stdout.contains("model LL:") && stdout.contains("done: 3 epochs"),
        "{stdout}"
    );
    for f in [
        "model.safetensors",
        "metrics.csv",
        "curve.png",
        "density.png",
        "checkpoint.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,train_ll,val_ll,seconds\n"), "{csv}");
    assert_eq!(csv.lines().count(), 5, "a header and epochs 0..=3: {csv}");
    let meta = metadata(&out.join("model.safetensors"));
    assert_eq!(meta["format"], "relgrad-invertible-mlp");
    assert_eq!(meta["dim"], "2");
    // Two columns: splines at 16 layers by default.
    assert_eq!(meta["n_layers"], "16");
    assert_eq!(meta["activation"], "spline");
    assert_eq!(
        (meta["bins"].as_str(), meta["alpha"].as_str()),
        (Some("16"), Some("3"))
    );
    assert_eq!(meta["format_version"], "2");
    let pre = meta_json(&out.join("model.safetensors"), "preprocess");
    assert_eq!(pre["kind"], "standardize");
    assert_eq!(pre["mean"].as_array().unwrap().len(), 2);
    let data = meta_json(&out.join("model.safetensors"), "data");
    assert_eq!(data["rows"]["train"], 240);
    assert_eq!(data["source"]["name"], "moons");
}

#[test]
fn train_on_digits_writes_image_outputs_and_metrics() {
    let dir = tmp();
    let out = dir.path().join("digits");
    relgrad()
        .args([
            "train",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("bits/dim").and(predicate::str::contains("logit space")));
    assert!(out.join("samples.png").exists());
    let model = out.join("model.safetensors");
    let pre = meta_json(&model, "preprocess");
    assert_eq!(pre["kind"], "logit");
    assert_eq!(pre["levels"], 17);
    assert_eq!(meta_json(&model, "image")["height"], 8);
    let data = meta_json(&model, "data");
    assert_eq!(
        (
            data["rows"]["train"].as_u64(),
            data["rows"]["val"].as_u64(),
            data["rows"]["test"].as_u64()
        ),
        (Some(1437), Some(180), Some(180))
    );
    let metrics = meta_json(&model, "metrics");
    assert!(metrics["test"]["bits_per_dim"].as_f64().unwrap() > 0.0);
    assert!(metrics["test"]["gaussian_ll_mean"].as_f64().is_some());
}

#[test]
fn default_run_directory_is_deterministic_and_protected() {
    let dir = tmp();
    let args = [
        "train", "--data", "rings", "--n", "200", "--epochs", "1", "--quiet",
    ];
    relgrad()
        .current_dir(dir.path())
        .args(args)
        .assert()
        .success();
    let run = dir
        .path()
        .join("runs/rings-standardize-l16-sgd-lr1e-3-b100-s0");
    assert!(run.join("model.safetensors").exists());
    relgrad()
        .current_dir(dir.path())
        .args(args)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("already exists").and(predicate::str::contains("--force")),
        );
    relgrad()
        .current_dir(dir.path())
        .args(args)
        .arg("--force")
        .assert()
        .success();
}

/// `--init` plus one full-batch SGD epoch moves the weights by exactly `lr` times the
/// relative gradient of the spec, computed here with the library.
#[test]
fn one_full_batch_sgd_epoch_is_one_relative_gradient_step() {
    let dir = tmp();
    let data = csv_data(dir.path(), "d.csv", 40, 3, 11);
    let data_s = data.to_str().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    // A fixed activation: the step moves the weights alone (splines have their own).
    let common = [
        "--preprocess",
        "none",
        "--val-fraction",
        "0",
        "--test-fraction",
        "0",
        "--precision",
        "f64",
        "--activation",
        "tanh-linear",
        "--quiet",
    ];
    relgrad()
        .args([
            "train",
            "--data",
            data_s,
            "--epochs",
            "3",
            "--out",
            a.to_str().unwrap(),
        ])
        .args(common)
        .assert()
        .success();
    let lr = 1e-3;
    relgrad()
        .args(["train", "--data", data_s, "--out", b.to_str().unwrap()])
        .args(["--init", a.join("model.safetensors").to_str().unwrap()])
        .args([
            "--optimizer",
            "sgd",
            "--lr",
            "0.001",
            "--momentum",
            "0",
            "--batch-size",
            "40",
            "--epochs",
            "1",
        ])
        .args(["--no-shuffle", "--look-ahead", "1000"])
        .args(common)
        .assert()
        .success();
    let start = DensityModel::load(a.join("model.safetensors")).unwrap();
    let end = DensityModel::load(b.join("model.safetensors")).unwrap();
    let (Network::F64(m0), Network::F64(m1)) = (start.network, end.network) else {
        panic!("f64 models expected")
    };
    let x = csv::read(&data).unwrap().table.to_mat::<f64>();
    let be = Faer::new(Threads::Auto);
    let mut ws = Workspace::new(&m0, x.rows());
    relative_gradient(&m0, &be, x.as_ref(), &mut ws).unwrap();
    let mut max_diff = 0.0f64;
    let mut max_step = 0.0f64;
    for (l, (l0, l1)) in m0.layers().iter().zip(m1.layers()).enumerate() {
        let pairs = l0
            .weight
            .as_slice()
            .iter()
            .zip(l1.weight.as_slice())
            .zip(ws.grad.weights[l].as_slice())
            .chain(l0.bias.iter().zip(&l1.bias).zip(&ws.grad.biases[l]));
        for ((&w0, &w1), &r) in pairs {
            max_diff = max_diff.max((w1 - (w0 + lr * r)).abs());
            max_step = max_step.max((w1 - w0).abs());
        }
    }
    assert!(
        max_step > 1e-8,
        "the weights did not move (max step {max_step})"
    );
    assert!(
        max_diff <= 1e-15,
        "W1 - (W0 + lr R) = {max_diff} (step size {max_step})"
    );
}

fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.data().to_vec()))
        .collect();
    v.sort();
    v
}

fn lls(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// Trains `args` for `epochs` epochs into `dir/full`, and for 2 epochs into `dir/part`
/// which it then resumes to `epochs`: the two run directories.
fn whole_and_resumed(dir: &Path, args: &[&str], epochs: &str) -> (PathBuf, PathBuf) {
    let (full, part) = (dir.join("full"), dir.join("part"));
    relgrad()
        .args(args)
        .args(["--epochs", epochs, "--out", full.to_str().unwrap()])
        .assert()
        .success();
    relgrad()
        .args(args)
        .args(["--epochs", "2", "--out", part.to_str().unwrap()])
        .assert()
        .success();
    relgrad()
        .args([
            "train",
            "--resume",
            part.to_str().unwrap(),
            "--epochs",
            epochs,
        ])
        .arg("--quiet")
        .assert()
        .success();
    (full, part)
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let dir = tmp();
    let base = [
        "train",
        "--data",
        "8gaussians",
        "--n",
        "400",
        "--look-ahead",
        "100",
        "--quiet",
        "--precision",
        "f64",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
    ];
    let (full, part) = whole_and_resumed(dir.path(), &base, "5");
    assert_eq!(
        tensors(&full.join("model.safetensors")),
        tensors(&part.join("model.safetensors"))
    );
    assert_eq!(
        lls(&full.join("metrics.csv")),
        lls(&part.join("metrics.csv"))
    );
    let c = Checkpoint::<f64>::load(part.join(checkpoint::FILE_NAME)).unwrap();
    assert_eq!(c.state.history.epochs.len(), 6);
    // Settings of a resumed run cannot change.
    relgrad()
        .args(["train", "--resume", part.to_str().unwrap(), "--lr", "0.1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--lr cannot be combined with --resume",
        ));
}

#[test]
fn ctrl_c_keeps_the_last_checkpoint_and_the_run_resumes() {
    let dir = tmp();
    let out = dir.path().join("long");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_relgrad"))
        .args([
            "train",
            "--data",
            "moons",
            "--n",
            "3000",
            "--epochs",
            "1000000",
            "--look-ahead",
            "0",
            "--quiet",
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ckpt = out.join(checkpoint::FILE_NAME);
    let t = Instant::now();
    while !ckpt.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!out.join("checkpoint.safetensors.tmp").exists());
    let c = Checkpoint::<f32>::load(&ckpt).expect("the checkpoint is intact");
    let done = c.state.history.epochs.last().unwrap().epoch;
    assert!(done >= 1);
    relgrad()
        .args([
            "train",
            "--resume",
            out.to_str().unwrap(),
            "--epochs",
            &(done + 1).to_string(),
            "--quiet",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "done: {} epochs",
            done + 1
        )));
}

#[test]
fn a_diverging_run_saves_the_best_and_suggests_a_lower_learning_rate() {
    let dir = tmp();
    let out = dir.path().join("div");
    relgrad()
        .args([
            "train",
            "--data",
            "moons",
            "--n",
            "200",
            "--epochs",
            "5",
            "--quiet",
            "--precision",
            "f32",
        ])
        .args([
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("diverged").and(predicate::str::contains(
                "the learning rate 9.0e28 (decayed 2 times from --lr 1.0e30) may be too large for these data: try --lr 9.0e27",
            )),
        );
    let training = meta_json(&out.join("model.safetensors"), "training");
    assert_eq!(training["diverged"], true);
    assert_eq!(training["best_epoch"], 0);
}

#[test]
fn train_reads_npy_in_both_orders_and_idx_directories() {
    use relgrad_cli::data::{idx, npy};
    let dir = tmp();
    // The same 50 x 3 table as C-order float64 and as Fortran-order int16.
    let rows: Vec<Vec<f64>> = random_table(50, 3, 5)
        .into_iter()
        .map(|r| r.into_iter().map(|v| (v * 10.0).round()).collect())
        .collect();
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    std::fs::write(dir.path().join("c.npy"), npy::encode_f64(&[50, 3], &flat)).unwrap();
    let mut fortran = Vec::new();
    for j in 0..3 {
        for r in &rows {
            fortran.extend_from_slice(&(r[j] as i16).to_le_bytes());
        }
    }
    let mut header = "{'descr': '<i2', 'fortran_order': True, 'shape': (50, 3), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&fortran);
    std::fs::write(dir.path().join("f.npy"), bytes).unwrap();
    for name in ["c", "f"] {
        let out = dir.path().join(format!("run-{name}"));
        relgrad()
            .args(quick_train_args(
                dir.path().join(format!("{name}.npy")).to_str().unwrap(),
                out.to_str().unwrap(),
            ))
            .args(["--precision", "f64"])
            .assert()
            .success();
    }
    assert_eq!(
        tensors(&dir.path().join("run-c/model.safetensors")),
        tensors(&dir.path().join("run-f/model.safetensors")),
        "the same data in either order trains the same model"
    );

    // An MNIST-style directory: gzip'ed IDX images, t10k as the test set.
    let mnist = dir.path().join("mnist");
    std::fs::create_dir(&mnist).unwrap();
    let gz = |name: &str, n: usize| {
        let pixels: Vec<u8> = (0..n * 16)
            .map(|i| ((i * 37 + i / 7) % 256) as u8)
            .collect();
        let raw = idx::encode_u8(&[n, 4, 4], &pixels);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &raw).unwrap();
        std::fs::write(mnist.join(name), enc.finish().unwrap()).unwrap();
    };
    gz("train-images-idx3-ubyte.gz", 60);
    gz("t10k-images-idx3-ubyte.gz", 20);
    let out = dir.path().join("run-mnist");
    relgrad()
        .args(quick_train_args(
            mnist.to_str().unwrap(),
            out.to_str().unwrap(),
        ))
        .assert()
        .success()
        .stdout(predicate::str::contains("256 levels"));
    let data = meta_json(&out.join("model.safetensors"), "data");
    assert_eq!(data["test_origin"], "t10k");
    assert_eq!(data["rows"]["test"], 20);
    assert_eq!(
        meta_json(&out.join("model.safetensors"), "image")["width"],
        4
    );
}

/// A run with a mixture base resumes to the same bits as an uninterrupted one (the
/// mixture's parameters and their Adam moments are in the checkpoint).
#[test]
fn a_resumed_mixture_base_run_equals_an_uninterrupted_run() {
    let dir = tmp();
    let base = [
        "train",
        "--data",
        "8gaussians",
        "--n",
        "300",
        "--activation",
        "tanh-linear",
        "--layers",
        "2",
        "--base",
        "mixture",
        "--components",
        "4",
        "--look-ahead",
        "100",
        "--quiet",
        "--precision",
        "f64",
    ];
    let (full, part) = whole_and_resumed(dir.path(), &base, "4");
    let (a, b) = (
        tensors(&full.join("model.safetensors")),
        tensors(&part.join("model.safetensors")),
    );
    assert!(a.iter().any(|(name, _)| name == "base"), "no base tensor");
    assert_eq!(a, b);
    assert_eq!(
        lls(&full.join("metrics.csv")),
        lls(&part.join("metrics.csv"))
    );
    let meta = metadata(&part.join("model.safetensors"));
    assert_eq!(
        (meta["base"].as_str(), meta["components"].as_str()),
        (Some("mixture"), Some("4"))
    );
}

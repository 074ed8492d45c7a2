//! Trains a relgrad model on data drawn from a known invertible network and compares the
//! held-out log-likelihood with the data's true log-likelihood and the best Gaussian.
//!
//! `cargo run --release --example train_synthetic`

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use relgrad::gaussian::Gaussian;
use relgrad::init::Architecture;
use relgrad::{
    Activation, BaseDensity, DefaultBackend, Init, InvertibleMlp, Layer, Mat, Optimizer,
    TrainConfig, TrainEvent, Trainer,
};

fn main() -> Result<(), relgrad::Error> {
    let backend = DefaultBackend::default();
    let (d, n_layers) = (6, 2);
    let activation = Activation::SmoothLeakyRelu { alpha: 0.2 };
    let mut rng = StdRng::seed_from_u64(7);

    // A teacher network with random weights; its samples are exact (through the inverse).
    let layers = (0..n_layers)
        .map(|_| Layer {
            weight: Mat::from_fn(d, d, |i, j| {
                let g: f64 = StandardNormal.sample(&mut rng);
                if i == j {
                    1.0 + 0.5 * g
                } else {
                    0.5 * g
                }
            }),
            bias: (0..d).map(|_| StandardNormal.sample(&mut rng)).collect(),
        })
        .collect();
    let teacher = InvertibleMlp::from_layers(layers, activation, BaseDensity::Normal, true)?;
    let raw = teacher.sample(&backend, 12_000, &mut rng)?;
    // Standardise every column, as one would any real data set; the true density of the
    // standardised data gains the log-Jacobian sum_j ln(std_j).
    let (mean, cov) = relgrad::linalg::mean_cov(&backend, raw.as_ref())?;
    let std: Vec<f64> = (0..d).map(|j| cov.get(j, j).sqrt()).collect();
    let x = Mat::from_fn(raw.rows(), d, |i, j| (raw.get(i, j) - mean[j]) / std[j]);
    let log_jacobian: f64 = std.iter().map(|s| s.ln()).sum();
    let (train, val, test) = (
        x.top(8_000),
        x.as_ref().rows_range(8_000, 10_000),
        x.as_ref().rows_range(10_000, 12_000),
    );

    let arch = Architecture {
        dim: d,
        n_layers,
        activation,
        base: BaseDensity::Normal,
        use_bias: true,
    };
    // Start at (nearly) the best Gaussian; SGD with momentum keeps the relative
    // gradient's equivariance, which Adam's per-coordinate scaling gives up.
    let mut model = Init::default().build(arch, &backend, Some(train))?;
    let config = TrainConfig {
        optimizer: Optimizer::Sgd {
            lr: 1e-3,
            momentum: 0.9,
        },
        batch_size: 100,
        epochs: 300,
        look_ahead: Some(20),
        seed: 1,
        ..TrainConfig::default()
    };
    println!("training an invertible MLP (D = {d}, L = {n_layers}) on 8000 samples of a random teacher network");
    let mut trainer = Trainer::new(&model, backend, config, train.rows())?;
    trainer.fit(&mut model, train, Some(val), |event| {
        if let TrainEvent::Epoch(m) = event {
            if m.epoch % 10 == 0 {
                println!(
                    "epoch {:3}  train {:8.4}  validation {:8.4}  ({:.2} s)",
                    m.epoch,
                    m.train_ll.unwrap_or(f64::NAN),
                    m.val_ll.unwrap_or(f64::NAN),
                    m.seconds
                );
            }
        }
    })?;
    let lp = model.log_prob(&backend, test)?;
    let n = lp.len() as f64;
    let mean = lp.iter().sum::<f64>() / n;
    let se2 =
        2.0 * (lp.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt();
    let truth = teacher.mean_log_likelihood(&backend, raw.as_ref().rows_range(10_000, 12_000))?
        + log_jacobian;
    let gauss = Gaussian::fit(&backend, train)?.mean_log_likelihood(test)?;
    println!("best epoch {}", trainer.history().best_epoch);
    println!("held-out log-likelihood: {mean:.4} +- {se2:.4} nats (true density {truth:.4}, best Gaussian {gauss:.4})");
    Ok(())
}

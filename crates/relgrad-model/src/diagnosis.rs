//! Why a fit diverged, in the user's terms: advice that fits the cause (a start that is
//! already far off, too many layers for the precision, the data's scale, the learning
//! rate) rather than always "lower the learning rate".

use relgrad_core::History;

use crate::config::{FitConfig, Start};
use crate::network::Precision;

/// Values this large in the network's space (after preprocessing) overflow `f32`
/// products of a deep network; standardised data are of order 1.
pub const LARGE_SCALE: f64 = 1e4;

/// Layers beyond which activations and gradients may overflow in `f32`.
pub const DEEP_F32: usize = 16;

/// A learning rate so small that the step is not what diverged.
pub const TINY_LR: f64 = 1e-6;

/// What is known when a fit diverges.
pub struct DivergenceFacts<'a> {
    /// The settings.
    pub config: &'a FitConfig,
    /// The per-epoch record up to the divergence.
    pub history: &'a History,
    /// The largest absolute training value in the network's space.
    pub max_abs: f64,
    /// The best Gaussian's mean training log-likelihood, when it could be fitted.
    pub gaussian_ll: Option<f64>,
}

/// The likely causes of a divergence, most likely first, each with its remedy: one
/// sentence to follow "training diverged at epoch N".
pub fn divergence_advice(f: &DivergenceFacts<'_>) -> String {
    let c = f.config;
    let mut causes: Vec<String> = Vec::new();
    let start_ll = f
        .history
        .epochs
        .iter()
        .find(|m| m.epoch == 0)
        .and_then(|m| m.train_ll);
    let start_off = match (start_ll, f.gaussian_ll) {
        (Some(s), _) if !s.is_finite() => Some(format!("{s}")),
        // Far below the Gaussian: by more than its own magnitude, and at least 10 nats.
        (Some(s), Some(g)) if s < g - g.abs().max(10.0) => {
            Some(format!("{s:.1} nats against the best Gaussian's {g:.1}"))
        }
        _ => None,
    };
    let is_model_start = matches!(c.start, Start::Model(_));
    if let Some(how) = &start_off {
        causes.push(if is_model_start {
            format!(
                "the start model fits these data badly (its log-likelihood at epoch 0 is {how}): train from the data-dependent start instead of --init, or check that the data are the kind the model was trained on"
            )
        } else {
            format!(
                "the starting network is already far off ({how} at epoch 0) at {} layers: use fewer layers (2 to 4)",
                c.n_layers
            )
        });
    }
    if c.precision == Precision::F32 && c.n_layers > DEEP_F32 {
        causes.push(format!(
            "{} layers in f32 can overflow: use fewer layers or --precision f64",
            c.n_layers
        ));
    }
    if f.max_abs > LARGE_SCALE {
        causes.push(format!(
            "the training values reach {:.1e} in the network's space: standardise them (--preprocess standardize) or rescale the data",
            f.max_abs
        ));
    }
    // The rate the divergence happened at: the decays on plateau (or on earlier
    // divergences) lowered the starting rate; advise below the last rate tried.
    let start = c.optimizer.lr();
    let lr = f.history.learning_rate(start, c.lr_decay);
    let decayed = if f.history.decays.is_empty() {
        String::new()
    } else {
        format!(
            " (decayed {} time{} from --lr {})",
            f.history.decays.len(),
            if f.history.decays.len() == 1 { "" } else { "s" },
            short(start)
        )
    };
    if lr <= TINY_LR {
        if causes.is_empty() {
            causes.push(format!(
                "the learning rate {lr:e}{decayed} is already tiny, so the step size is not the cause: check the data for extreme values, and try --precision f64"
            ));
        }
    } else {
        causes.push(format!(
            "the learning rate {}{decayed} may be too large for these data: try --lr {}",
            short(lr),
            short(lr / 10.0)
        ));
    }
    causes.join("; or ")
}

/// A number in few characters: `0.0003`, `3.0e-5`.
fn short(x: f64) -> String {
    let s = format!("{x}");
    if s.len() <= 8 {
        s
    } else {
        format!("{x:.1e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relgrad_core::{EpochMetrics, Optimizer};

    fn history(start_ll: f64) -> History {
        History {
            epochs: vec![EpochMetrics {
                epoch: 0,
                train_ll: Some(start_ll),
                val_ll: None,
                seconds: 0.0,
                steps: 0,
            }],
            best_epoch: 0,
            stopped_early: false,
            decays: Vec::new(),
        }
    }

    fn advice(config: &FitConfig, start_ll: f64, max_abs: f64) -> String {
        divergence_advice(&DivergenceFacts {
            config,
            history: &history(start_ll),
            max_abs,
            gaussian_ll: Some(-112.6),
        })
    }

    #[test]
    fn each_cause_gets_its_own_advice() {
        let mut c = FitConfig::default();
        // Nothing unusual: the learning rate.
        let a = advice(&c, -115.0, 5.0);
        assert_eq!(
            a,
            "the learning rate 0.001 may be too large for these data: try --lr 0.0001"
        );
        // After two decays the advice starts below the last rate tried, not the first.
        let mut h = history(-115.0);
        h.decays = vec![4, 9];
        let a = divergence_advice(&DivergenceFacts {
            config: &c,
            history: &h,
            max_abs: 5.0,
            gaussian_ll: Some(-112.6),
        });
        assert_eq!(
            a,
            "the learning rate 9.0e-5 (decayed 2 times from --lr 0.001) may be too large for these data: try --lr 9.0e-6"
        );
        // Deep, far off at the start, at a learning rate too small to matter.
        c.n_layers = 60;
        c.optimizer = Optimizer::Sgd {
            lr: 1e-9,
            momentum: 0.9,
        };
        let a = advice(&c, -2513.5, 5.0);
        assert!(a.starts_with("the starting network is already far off (-2513.5 nats against the best Gaussian's -112.6 at epoch 0) at 60 layers: use fewer layers"), "{a}");
        assert!(a.contains("60 layers in f32 can overflow"), "{a}");
        assert!(!a.contains("--lr"), "{a}");
        // A start model that does not suit the data, on a large scale.
        c.n_layers = 2;
        let net = relgrad_core::InvertibleMlp::<f64>::identity(
            2,
            1,
            relgrad_core::Activation::default(),
            relgrad_core::BaseDensity::Normal,
            true,
        )
        .unwrap();
        let model =
            crate::DensityModel::new(crate::Network::F64(net), crate::Preprocess::None).unwrap();
        c.start = Start::Model(Box::new(model));
        let a = advice(&c, f64::NEG_INFINITY, 3.8e6);
        assert!(
            a.starts_with("the start model fits these data badly"),
            "{a}"
        );
        assert!(a.contains("the training values reach 3.8e6"), "{a}");
        // Nothing points anywhere and the step is tiny: say so.
        c.start = Start::Data { shift: Some(0.0) };
        let a = advice(&c, -113.0, 1.0);
        assert!(
            a.contains("is already tiny, so the step size is not the cause"),
            "{a}"
        );
    }
}

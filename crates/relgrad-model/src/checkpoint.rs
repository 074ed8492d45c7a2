//! Training checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! A checkpoint is a safetensors file, written atomically after every epoch by the
//! programs that want one (the CLI's `RUN_DIR/checkpoint.safetensors`). It holds:
//! - `current.layers.{i}.weight|bias`: the parameters at the end of the last epoch;
//! - `best.layers.{i}.weight|bias`: the best parameters so far (by validation
//!   log-likelihood);
//! - `optimizer.m.{k}`, `optimizer.v.{k}`: the optimizer's moment buffers;
//! - metadata: `run` (JSON: the fit settings, the fitted preprocessing, the data's
//!   fingerprint and the caller's `run_info`), `steps` (optimizer steps taken), `n_m` and
//!   `n_v` (buffer counts), `history` (JSON: the per-epoch metrics, floats as strings so
//!   NaN survives), plus the architecture keys of the model file.
//!
//! Shuffles are seeded per epoch, so training resumed from the checkpoint of epoch `k`
//! takes the same steps as an uninterrupted run.

use std::collections::HashMap;
use std::path::Path;

use relgrad_core::train::TrainerState;
use relgrad_core::{EpochMetrics, History, InvertibleMlp, Scalar};
use serde_json::{json, Value};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::model_file::read_file;
use crate::network::{Network, Precision};
use crate::tensors::{mlp_tensors, serialize, Arch, File, OwnedTensor};

/// The `format` metadata value of checkpoints.
pub const FORMAT: &str = "relgrad-checkpoint";

/// A checkpoint in memory, in precision `T`.
#[derive(Clone, Debug)]
pub struct Checkpoint<T> {
    /// The run: fit settings, fitted preprocessing, data fingerprint, caller's info.
    pub run: Value,
    /// The parameters at the end of the last completed epoch.
    pub current: InvertibleMlp<T>,
    /// The trainer's state: optimizer buffers, best parameters, history.
    pub state: TrainerState<T>,
}

/// A checkpoint in the precision it was written in.
#[derive(Clone, Debug)]
pub enum AnyCheckpoint {
    /// Single precision.
    F32(Checkpoint<f32>),
    /// Double precision.
    F64(Checkpoint<f64>),
}

impl AnyCheckpoint {
    /// The run settings.
    pub fn run(&self) -> &Value {
        match self {
            AnyCheckpoint::F32(c) => &c.run,
            AnyCheckpoint::F64(c) => &c.run,
        }
    }

    /// Reads a checkpoint in its own precision.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path, "cannot read the checkpoint")?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Parses and validates a checkpoint's bytes, keeping the precision it was written in.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let f = File::parse(bytes)?;
        match checked_arch(&f)?.precision {
            Precision::F32 => Checkpoint::from_file(&f).map(AnyCheckpoint::F32),
            Precision::F64 => Checkpoint::from_file(&f).map(AnyCheckpoint::F64),
        }
    }
}

fn opt_f64(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| Value::String(format!("{x:?}")))
}

fn read_opt_f64(v: &Value) -> Result<Option<f64>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|_| Error::invalid(format!("bad number {s:?} in the history"))),
        Value::Number(n) => Ok(n.as_f64()),
        other => Err(Error::invalid(format!("bad value {other} in the history"))),
    }
}

/// The history as JSON (floats as strings, so NaN and infinities survive).
pub fn history_to_json(h: &History) -> Value {
    json!({
        "best_epoch": h.best_epoch,
        "stopped_early": h.stopped_early,
        "decays": h.decays,
        "epochs": h.epochs.iter().map(|m| json!({
            "epoch": m.epoch,
            "train_ll": opt_f64(m.train_ll),
            "val_ll": opt_f64(m.val_ll),
            "seconds": format!("{:?}", m.seconds),
            "steps": m.steps,
        })).collect::<Vec<_>>(),
    })
}

/// Reads [`history_to_json`]'s output back.
pub fn history_from_json(v: &Value) -> Result<History> {
    let epochs = v["epochs"]
        .as_array()
        .ok_or_else(|| Error::invalid("the history has no epochs"))?
        .iter()
        .map(|m| {
            Ok(EpochMetrics {
                epoch: m["epoch"]
                    .as_u64()
                    .ok_or_else(|| Error::invalid("an epoch of the history has no number"))?
                    as usize,
                train_ll: read_opt_f64(&m["train_ll"])?,
                val_ll: read_opt_f64(&m["val_ll"])?,
                seconds: read_opt_f64(&m["seconds"])?.unwrap_or(0.0),
                steps: m["steps"].as_u64().unwrap_or(0) as usize,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(History {
        epochs,
        best_epoch: v["best_epoch"].as_u64().unwrap_or(0) as usize,
        stopped_early: v["stopped_early"].as_bool().unwrap_or(false),
        decays: match &v["decays"] {
            Value::Null => Vec::new(),
            x => x
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|e| e.as_u64().and_then(|e| usize::try_from(e).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| Error::invalid("the history's decays are not epoch numbers"))?,
        },
    })
}

fn checked_arch(f: &File<'_>) -> Result<Arch> {
    if f.meta.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(Error::invalid(format!(
            "it is not a relgrad checkpoint (no format {FORMAT:?})"
        )));
    }
    Arch::read(f)
}

impl<T: Scalar> Checkpoint<T> {
    /// The checkpoint's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors = mlp_tensors("current.", &self.current);
        tensors.extend(mlp_tensors("best.", &self.state.best));
        for (name, bufs) in [("m", &self.state.m), ("v", &self.state.v)] {
            for (k, b) in bufs.iter().enumerate() {
                tensors.push((
                    format!("optimizer.{name}.{k}"),
                    OwnedTensor::from_scalars(vec![b.len()], b),
                ));
            }
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        Arch::of(&Network::from_mlp(&self.current)).write(&mut meta);
        meta.insert("run".into(), self.run.to_string());
        meta.insert("steps".into(), self.state.steps.to_string());
        meta.insert("n_m".into(), self.state.m.len().to_string());
        meta.insert("n_v".into(), self.state.v.len().to_string());
        meta.insert(
            "history".into(),
            history_to_json(&self.state.history).to_string(),
        );
        serialize(&tensors, meta)
    }

    /// Writes the checkpoint atomically and durably.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Reads a checkpoint converted to precision `T` (see [`AnyCheckpoint::load`] to keep
    /// the precision it was written in).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path, "cannot read the checkpoint")?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Parses and validates a checkpoint's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_file(&File::parse(bytes)?)
    }

    fn from_file(f: &File<'_>) -> Result<Self> {
        let arch = checked_arch(f)?;
        // Every parameter group (weight, bias, a hidden layer's splines, a mixture base)
        // has at most one buffer of each kind.
        let max_buffers =
            2 * arch.n_layers + arch.spline_layers() + usize::from(arch.base.is_learnable());
        let n_m = f.get_count("n_m", 0, max_buffers)?;
        let n_v = f.get_count("n_v", 0, max_buffers)?;
        let mut names = arch.tensor_names("current.");
        names.extend(arch.tensor_names("best."));
        names.extend((0..n_m).map(|k| format!("optimizer.m.{k}")));
        names.extend((0..n_v).map(|k| format!("optimizer.v.{k}")));
        f.expect_names(
            &names,
            &format!(
                "the metadata says n_layers = {}, n_m = {n_m}, n_v = {n_v}",
                arch.n_layers
            ),
        )?;
        let buffers = |name: &str, n: usize| -> Result<Vec<Vec<T>>> {
            (0..n)
                .map(|k| {
                    let key = format!("optimizer.{name}.{k}");
                    let len = f.st.tensor(&key).map_or(0, |t| t.shape().iter().product());
                    let v = f.floats(&key, &[len], arch.precision)?;
                    Ok(v.into_iter().map(T::from_f64c).collect())
                })
                .collect()
        };
        let history = history_from_json(&f.get_json("history")?)?;
        let steps = f.get_count("steps", 0, usize::MAX)? as u64;
        let state = TrainerState {
            steps,
            m: buffers("m", n_m)?,
            v: buffers("v", n_v)?,
            best: arch.read_mlp(f, "best.")?,
            history,
        };
        Ok(Self {
            run: f.get_json("run")?,
            current: arch.read_mlp(f, "current.")?,
            state,
        })
    }
}

/// The `run` settings and the precision of a checkpoint file, without reading its
/// tensors.
pub fn read_run(path: impl AsRef<Path>) -> Result<(Value, Precision)> {
    let path = path.as_ref();
    let bytes = read_file(path, "cannot read the checkpoint")?;
    let f = File::parse(&bytes).map_err(|e| e.in_file(path))?;
    let arch = checked_arch(&f).map_err(|e| e.in_file(path))?;
    let run = f.get_json("run").map_err(|e| e.in_file(path))?;
    Ok((run, arch.precision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use relgrad_core::{Activation, BaseDensity};

    #[test]
    fn round_trip() {
        let m =
            InvertibleMlp::<f32>::identity(3, 2, Activation::default(), BaseDensity::Normal, true)
                .unwrap();
        let history = History {
            epochs: vec![
                EpochMetrics {
                    epoch: 0,
                    train_ll: Some(-1.5),
                    val_ll: None,
                    seconds: 0.0,
                    steps: 0,
                },
                EpochMetrics {
                    epoch: 1,
                    train_ll: Some(f64::NAN),
                    val_ll: Some(-0.1),
                    seconds: 0.25,
                    steps: 7,
                },
            ],
            best_epoch: 0,
            stopped_early: true,
            decays: vec![1],
        };
        let c = Checkpoint {
            run: json!({"a": 1}),
            current: m.clone(),
            state: TrainerState {
                steps: 42,
                m: vec![vec![1.0, 2.0], vec![3.0]],
                v: vec![],
                best: m,
                history,
            },
        };
        let back = Checkpoint::<f32>::from_bytes(&c.to_bytes().unwrap()).unwrap();
        assert_eq!(back.current, c.current);
        assert_eq!(back.state.steps, 42);
        assert_eq!(back.state.m, c.state.m);
        assert!(back.state.v.is_empty());
        assert_eq!(back.state.history.epochs[0], c.state.history.epochs[0]);
        assert!(back.state.history.epochs[1].train_ll.unwrap().is_nan());
        assert!(back.state.history.stopped_early);
        assert_eq!(back.state.history.decays, [1]);
        assert_eq!(back.run, c.run);
    }
}

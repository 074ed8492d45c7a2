//! Training checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! `RUN_DIR/checkpoint.safetensors` is rewritten after every epoch, atomically (a
//! temporary file, then a rename), so an interruption at any moment leaves the previous
//! checkpoint intact. It holds:
//! - `current.layers.{i}.weight|bias`: the parameters at the end of the last epoch;
//! - `best.layers.{i}.weight|bias`: the best parameters so far (by validation
//!   log-likelihood);
//! - `optimizer.m.{k}`, `optimizer.v.{k}`: the optimizer's moment buffers;
//! - metadata: `run` (JSON: the resolved settings of the run, enough to rebuild the data,
//!   the preprocessing and the trainer), `steps` (optimizer steps taken), `history`
//!   (JSON: the per-epoch metrics, floats as strings so NaN survives), plus the
//!   architecture keys of the model file.
//!
//! Shuffles are seeded per epoch, so training resumed from the checkpoint of epoch `k`
//! takes the same steps as an uninterrupted run.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use relgrad::train::TrainerState;
use relgrad::{EpochMetrics, History, InvertibleMlp, Scalar};
use safetensors::tensor::SafeTensors;
use serde_json::{json, Value};

use crate::model_file::{model_tensors, read_floats, serialize, ArchMeta, OwnedTensor};

/// The checkpoint's file name inside a run directory.
pub const FILE_NAME: &str = "checkpoint.safetensors";

/// A checkpoint in memory.
#[derive(Clone, Debug)]
pub struct Checkpoint<T> {
    /// The run's resolved settings (opaque here; see `commands::train`).
    pub run: Value,
    /// The parameters at the end of the last completed epoch.
    pub current: InvertibleMlp<T>,
    /// The trainer's state: optimizer buffers, best parameters, history.
    pub state: TrainerState<T>,
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
            .map_err(|_| anyhow!("bad number {s:?} in the history")),
        Value::Number(n) => Ok(n.as_f64()),
        other => Err(anyhow!("bad value {other} in the history")),
    }
}

/// The history as JSON (floats as strings, so NaN and infinities survive).
pub fn history_to_json(h: &History) -> Value {
    json!({
        "best_epoch": h.best_epoch,
        "stopped_early": h.stopped_early,
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
        .ok_or_else(|| anyhow!("the history has no epochs"))?
        .iter()
        .map(|m| {
            Ok(EpochMetrics {
                epoch: m["epoch"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("epoch without number"))?
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
    })
}

impl<T: Scalar> Checkpoint<T> {
    /// The checkpoint's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut tensors = model_tensors("current.", &self.current);
        tensors.extend(model_tensors("best.", &self.state.best));
        for (k, m) in self.state.m.iter().enumerate() {
            tensors.push((
                format!("optimizer.m.{k}"),
                OwnedTensor::from_scalars(vec![m.len()], m),
            ));
        }
        for (k, v) in self.state.v.iter().enumerate() {
            tensors.push((
                format!("optimizer.v.{k}"),
                OwnedTensor::from_scalars(vec![v.len()], v),
            ));
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), "relgrad-checkpoint".into());
        ArchMeta::of(&self.current).write(&mut meta);
        meta.insert("precision".into(), T::NAME.into());
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

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a checkpoint into precision `T` (use [`read_run`] first to learn the
    /// precision it was written in).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the checkpoint {}", path.display()))?;
        Self::from_bytes(&bytes)
            .with_context(|| format!("{} is not a readable relgrad checkpoint", path.display()))
    }

    /// Parses a checkpoint's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let meta = metadata(bytes)?;
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
        let arch = ArchMeta::read(&meta)?;
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| anyhow!("the checkpoint has no {k:?}"))
        };
        let n_m: usize = get("n_m")?.parse()?;
        let n_v: usize = get("n_v")?.parse()?;
        let buffers = |name: &str, n: usize| -> Result<Vec<Vec<T>>> {
            (0..n)
                .map(|k| {
                    let key = format!("optimizer.{name}.{k}");
                    let len = st
                        .tensor(&key)
                        .map_err(|_| anyhow!("missing tensor {key:?}"))?
                        .shape()
                        .iter()
                        .product::<usize>();
                    let (_, v) = read_floats(&st, &key, &[len])?;
                    Ok(v.into_iter().map(T::from_f64c).collect())
                })
                .collect()
        };
        let history = history_from_json(
            &serde_json::from_str(get("history")?).context("metadata 'history'")?,
        )?;
        let state = TrainerState {
            steps: get("steps")?.parse().context("metadata 'steps'")?,
            m: buffers("m", n_m)?,
            v: buffers("v", n_v)?,
            best: arch.read_model(&st, "best.")?,
            history,
        };
        let current = arch.read_model(&st, "current.")?;
        let run = serde_json::from_str(get("run")?).context("metadata 'run'")?;
        Ok(Self {
            run,
            current,
            state,
        })
    }
}

fn metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    ensure!(
        meta.get("format").map(String::as_str) == Some("relgrad-checkpoint"),
        "it is not a relgrad checkpoint (no format 'relgrad-checkpoint')"
    );
    Ok(meta)
}

/// The `run` settings and the precision of a checkpoint file.
pub fn read_run(path: &Path) -> Result<(Value, String)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the checkpoint {}", path.display()))?;
    let meta = metadata(&bytes)
        .with_context(|| format!("{} is not a readable relgrad checkpoint", path.display()))?;
    let run = meta
        .get("run")
        .ok_or_else(|| anyhow!("{}: the checkpoint has no run settings", path.display()))?;
    let run: Value =
        serde_json::from_str(run).with_context(|| format!("{}: metadata 'run'", path.display()))?;
    Ok((
        run,
        meta.get("precision")
            .cloned()
            .unwrap_or_else(|| "f64".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use relgrad::{Activation, BaseDensity};

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
        assert_eq!(back.run, c.run);
    }
}

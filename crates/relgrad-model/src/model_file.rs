//! The portable model file: one safetensors file (`model.safetensors`).
//!
//! Tensors (dtype `F32` or `F64`, the training precision, named by `precision`):
//! - `layers.{i}.weight`: `D x D`, row-major, applied to a row vector as `y = x W + b`;
//! - `layers.{i}.bias`: length `D`;
//! - with `activation = "spline"` (version 2), `splines.{l}` for every hidden layer
//!   `l < L - 1`: `D x (3K - 1)`, row-major, one row per unit: `K` width logits, `K`
//!   height logits, `K - 1` interior slope parameters (see `relgrad_core::spline`);
//! - with `base = "mixture"` (version 3), `base`: `D x 3K`, row-major, one row per latent
//!   coordinate: `K` locations, `K` log-scales, `K` weight logits of its mixture of
//!   logistics (see `relgrad_core::mixture`).
//!
//! Layers `0..L-1` are followed by the activation, the last layer is affine; the latent
//! `z` has a factorised base density. Metadata (a string map; JSON inside strings):
//!
//! | key | value |
//! |---|---|
//! | `format` | `"relgrad-invertible-mlp"` |
//! | `format_version` | `"3"` for a model with a mixture base, `"2"` for one with spline activations (and a fixed base), `"1"` otherwise (a model that an older version describes is written as that version, so older readers keep reading it) |
//! | `dim`, `n_layers` | integers (at most 65536 and 100000) |
//! | `activation`, `alpha` | e.g. `"smooth-leaky-relu"`, `"0.01"` (`alpha` is the activation's parameter; a spline's is its bound `T`) |
//! | `bins` | a spline's bins `K` (2 to 256); only with `activation = "spline"` |
//! | `base` | `"normal"`, `"laplace"`, `"logistic"` or `"mixture"` |
//! | `components` | a mixture base's components per coordinate `K` (1 to 64); only with `base = "mixture"` |
//! | `use_bias` | `"true"` or `"false"` |
//! | `precision` | `"f32"` or `"f64"`: the dtype of every tensor |
//! | `layout` | a one-line reminder of the conventions above |
//! | `preprocess` | JSON: `{"kind": "none"}`, `{"kind": "standardize", "mean": [...], "std": [...]}` or `{"kind": "logit", "levels": 17, "lambda": 1e-6}` |
//! | `image` | JSON `{"height": h, "width": w}` or `null` |
//! | `data` | JSON: the data source, split and row counts |
//! | `training` | JSON: the settings of the run (its `seed` seeds the dequantisation noise) |
//! | `metrics` | JSON: final log-likelihoods and the Gaussian reference |
//! | `train_log_prob_quantiles` | JSON `[[q, log_density], ...]`: quantiles of the training rows' log-densities in the data's units (optional: added without a version change, so older readers ignore it and files without it still load) |
//! | `relgrad_version` | the writer's version |
//!
//! Loading checks everything before use and names what is wrong: the header's size, the
//! format and version, every metadata value, the exact set of tensors for `n_layers`,
//! every dtype and shape, finite weights, the preprocessing's parameters.
//!
//! With Python and numpy alone (plus the `safetensors` package):
//!
//! ```python
//! from safetensors.numpy import load_file
//! from safetensors import safe_open
//! import json, numpy as np
//! W = load_file("model.safetensors")
//! meta = safe_open("model.safetensors", "np").metadata()
//! pre = json.loads(meta["preprocess"])
//! ```

use std::collections::HashMap;
use std::path::Path;

use relgrad_core::{Activation, BaseDensity};
use serde_json::{json, Value};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::model::{DensityModel, ImageShape};
use crate::preprocess::Preprocess;
use crate::tensors::{network_tensors, serialize, Arch, File};

/// The `format` metadata value.
pub const FORMAT: &str = "relgrad-invertible-mlp";
/// The `format_version` this library writes for a model with spline activations and a
/// fixed base.
pub const FORMAT_VERSION: &str = "2";
/// The `format_version` it writes for a model with a mixture base.
pub const FORMAT_VERSION_MIXTURE: &str = "3";
/// The `format_version` it writes for a model without either: version 1 describes it fully.
pub const FORMAT_VERSION_FIXED: &str = "1";
/// The `format_version`s this library reads.
pub const READABLE_VERSIONS: [&str; 3] = ["1", "2", "3"];

/// The oldest `format_version` that describes a model with this activation and base (the
/// one written, so that older readers keep reading what they can).
pub fn format_version(activation: Activation, base: BaseDensity) -> &'static str {
    if base.is_learnable() {
        FORMAT_VERSION_MIXTURE
    } else if activation.is_learnable() {
        FORMAT_VERSION
    } else {
        FORMAT_VERSION_FIXED
    }
}
/// The `layout` metadata value.
pub const LAYOUT: &str = "row vectors: y = x W + b per layer (W row-major D x D); activation after every layer but the last; z = last layer's output has a factorised base density";

/// Reads a whole file, naming it in the error.
pub(crate) fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        action: what,
        path: path.to_path_buf(),
        source,
    })
}

impl DensityModel {
    /// The metadata map written to the file.
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        let version = format_version(self.network.activation(), self.network.base());
        meta.insert("format_version".into(), version.into());
        Arch::of(&self.network).write(&mut meta);
        meta.insert("layout".into(), LAYOUT.into());
        meta.insert("preprocess".into(), self.preprocess.to_json().to_string());
        let image = self.image.map_or(
            Value::Null,
            |s| json!({"height": s.height, "width": s.width}),
        );
        meta.insert("image".into(), image.to_string());
        let mut training = self.training.clone();
        // The model's own seed is recorded (and read back), whatever the training JSON
        // held: it seeds the dequantisation noise of every verb.
        if let Value::Object(o) = &mut training {
            o.insert("seed".into(), self.seed.into());
        } else if training.is_null() {
            training = json!({ "seed": self.seed });
        } else {
            training = json!({ "seed": self.seed, "value": training });
        }
        meta.insert("data".into(), self.data.to_string());
        meta.insert("training".into(), training.to_string());
        meta.insert("metrics".into(), self.metrics.to_string());
        if let Some(q) = &self.train_quantiles {
            let pairs: Vec<[f64; 2]> = q.iter().map(|&(p, v)| [p, v]).collect();
            meta.insert("train_log_prob_quantiles".into(), json!(pairs).to_string());
        }
        meta.insert("relgrad_version".into(), env!("CARGO_PKG_VERSION").into());
        meta
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serialize(&network_tensors("", &self.network), self.metadata())
    }

    /// Writes the model file atomically and durably (temporary file, `fsync`, rename,
    /// `fsync` of the folder): a crash leaves the old file or the new one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// Reads and validates a model file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = read_file(path, "cannot read the model file")?;
        Self::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Parses and validates a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let f = File::parse(bytes)?;
        match f.meta.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(Error::invalid(format!(
                    "its format is {other:?}, expected {FORMAT:?}"
                )))
            }
            None => {
                return Err(Error::invalid(
                    "it has no \"format\" metadata (not written by relgrad?)",
                ))
            }
        }
        let version = f.get("format_version")?;
        if !READABLE_VERSIONS.contains(&version) {
            return Err(Error::invalid(format!(
                "metadata \"format_version\" is {version:?}; this relgrad reads version {} (a newer relgrad wrote it?)",
                READABLE_VERSIONS.join(", ")
            )));
        }
        let arch = Arch::read(&f)?;
        let needed = format_version(arch.activation, arch.base);
        if version < needed {
            return Err(Error::invalid(format!(
                "metadata \"format_version\" is {version:?}, but {} need version {needed}",
                if arch.base.is_learnable() {
                    "a mixture base and its parameters"
                } else {
                    "spline activations"
                }
            )));
        }
        f.expect_names(
            &arch.tensor_names(""),
            &format!(
                "the metadata says n_layers = {}: expected layers.0 to layers.{}, each with a weight and a bias{}",
                arch.n_layers,
                arch.n_layers - 1,
                match arch.spline_layers() {
                    0 => String::new(),
                    n => format!(", and splines.0 to splines.{} for the spline activation", n - 1),
                } + if arch.base.is_learnable() { ", and base for the mixture base" } else { "" }
            ),
        )?;
        let network = arch.read_network(&f, "")?;
        f.get("preprocess")?;
        let preprocess = Preprocess::from_json(&f.get_json("preprocess")?)
            .map_err(|e| Error::invalid(format!("metadata \"preprocess\": {e}")))?;
        preprocess
            .validate(arch.dim)
            .map_err(|e| Error::invalid(format!("metadata \"preprocess\": {e}")))?;
        let image = read_image(&f.get_json("image")?, arch.dim)?;
        let training = f.get_json("training")?;
        let seed = match &training["seed"] {
            Value::Null => 0,
            s => s.as_u64().ok_or_else(|| {
                Error::invalid(format!(
                    "metadata \"training\": its seed is {s}, expected a whole number"
                ))
            })?,
        };
        let train_quantiles = read_quantiles(&f.get_json("train_log_prob_quantiles")?)?;
        Ok(Self {
            network,
            preprocess,
            image,
            seed,
            train_quantiles,
            data: f.get_json("data")?,
            training,
            metrics: f.get_json("metrics")?,
        })
    }
}

fn read_image(v: &Value, dim: usize) -> Result<Option<ImageShape>> {
    if v.is_null() {
        return Ok(None);
    }
    let side = |k: &str| v.get(k).and_then(Value::as_u64).map(|x| x as usize);
    match (side("height"), side("width")) {
        (Some(h), Some(w)) if h.checked_mul(w) == Some(dim) => Ok(Some(ImageShape {
            height: h,
            width: w,
        })),
        _ => Err(Error::invalid(format!(
            "metadata \"image\" is {v}, expected null or {{\"height\": h, \"width\": w}} with h * w = dim = {dim}"
        ))),
    }
}

fn read_quantiles(v: &Value) -> Result<Option<Vec<(f64, f64)>>> {
    if v.is_null() {
        return Ok(None);
    }
    let bad = || {
        Error::invalid(format!(
            "metadata \"train_log_prob_quantiles\" is {v}, expected [[q, log_density], ...] with q increasing in [0, 1] and finite log-densities"
        ))
    };
    let pairs = v.as_array().ok_or_else(bad)?;
    let mut out = Vec::with_capacity(pairs.len().min(1024));
    for p in pairs {
        let (q, l) = match p.as_array().map(Vec::as_slice) {
            Some([q, l]) => (q.as_f64().ok_or_else(bad)?, l.as_f64().ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        let increasing = out.last().is_none_or(|&(prev, _): &(f64, f64)| q > prev);
        if !((0.0..=1.0).contains(&q) && l.is_finite() && increasing) {
            return Err(bad());
        }
        out.push((q, l));
    }
    Ok((!out.is_empty()).then_some(out))
}

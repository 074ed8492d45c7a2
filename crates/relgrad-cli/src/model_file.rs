//! The portable model file: one safetensors file (`model.safetensors`).
//!
//! Tensors (dtype `F32` or `F64`, the training precision):
//! - `layers.{i}.weight`: `D x D`, row-major, applied to a row vector as `y = x W + b`;
//! - `layers.{i}.bias`: length `D`.
//!
//! Layers `0..L-1` are followed by the activation, the last layer is affine; the latent
//! `z` has a factorised base density. Metadata (a string map; JSON inside strings):
//!
//! | key | value |
//! |---|---|
//! | `format` | `"relgrad-invertible-mlp"` |
//! | `format_version` | `"1"` |
//! | `dim`, `n_layers` | integers |
//! | `activation`, `alpha` | e.g. `"smooth-leaky-relu"`, `"0.01"` (`alpha` is the activation's parameter) |
//! | `base` | `"normal"`, `"laplace"` or `"logistic"` |
//! | `use_bias` | `"true"` or `"false"` |
//! | `precision` | `"f32"` or `"f64"` |
//! | `layout` | a one-line reminder of the conventions above |
//! | `preprocess` | JSON: `{"kind": "none"}`, `{"kind": "standardize", "mean": [...], "std": [...]}` or `{"kind": "logit", "levels": 17, "lambda": 1e-6}` |
//! | `image` | JSON `{"height": h, "width": w}` or `null` |
//! | `data` | JSON: the data source, split and row counts |
//! | `training` | JSON: the settings of the run |
//! | `metrics` | JSON: final log-likelihoods and the Gaussian reference |
//! | `relgrad_version` | the tool's version |
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use relgrad::{Activation, BaseDensity, InvertibleMlp, Layer, Mat, Scalar};
use safetensors::tensor::{Dtype, SafeTensors, View};
use serde_json::Value;

use crate::data::ImageShape;
use crate::preprocess::Preprocess;

/// The `format` metadata value.
pub const FORMAT: &str = "relgrad-invertible-mlp";
/// The `format_version` metadata value.
pub const FORMAT_VERSION: &str = "1";

/// A model in the precision it was trained in.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyModel {
    /// Single precision.
    F32(InvertibleMlp<f32>),
    /// Double precision.
    F64(InvertibleMlp<f64>),
}

impl AnyModel {
    /// The dimension `D`.
    pub fn dim(&self) -> usize {
        match self {
            AnyModel::F32(m) => m.dim(),
            AnyModel::F64(m) => m.dim(),
        }
    }
    /// The number of layers.
    pub fn n_layers(&self) -> usize {
        match self {
            AnyModel::F32(m) => m.n_layers(),
            AnyModel::F64(m) => m.n_layers(),
        }
    }
    /// `"f32"` or `"f64"`.
    pub fn precision(&self) -> &'static str {
        match self {
            AnyModel::F32(_) => "f32",
            AnyModel::F64(_) => "f64",
        }
    }
    /// The activation.
    pub fn activation(&self) -> Activation {
        match self {
            AnyModel::F32(m) => m.activation(),
            AnyModel::F64(m) => m.activation(),
        }
    }
    /// The base density.
    pub fn base(&self) -> BaseDensity {
        match self {
            AnyModel::F32(m) => m.base(),
            AnyModel::F64(m) => m.base(),
        }
    }
    /// The model converted to `T` (exact when `T` is the stored precision or wider).
    pub fn cast<T: Scalar>(&self) -> InvertibleMlp<T> {
        match self {
            AnyModel::F32(m) => m.cast(),
            AnyModel::F64(m) => m.cast(),
        }
    }
}

/// An owned tensor for the safetensors writer.
#[derive(Clone, Debug)]
pub struct OwnedTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedTensor {
    /// A tensor of `T` values (stored as `F32` or `F64`).
    pub fn from_scalars<T: Scalar>(shape: Vec<usize>, values: &[T]) -> Self {
        let (dtype, bytes) = if T::NAME == "f32" {
            (
                Dtype::F32,
                values
                    .iter()
                    .flat_map(|v| (v.to_f64c() as f32).to_le_bytes())
                    .collect(),
            )
        } else {
            (
                Dtype::F64,
                values
                    .iter()
                    .flat_map(|v| v.to_f64c().to_le_bytes())
                    .collect(),
            )
        };
        Self {
            dtype,
            shape,
            bytes,
        }
    }

    /// A tensor of `u64` values (stored as `U64`).
    pub fn from_u64(values: &[u64]) -> Self {
        Self {
            dtype: Dtype::U64,
            shape: vec![values.len()],
            bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

impl View for &OwnedTensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Serialises named tensors and metadata into safetensors bytes.
pub fn serialize(
    tensors: &[(String, OwnedTensor)],
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    safetensors::serialize(tensors.iter().map(|(n, t)| (n.clone(), t)), Some(meta))
        .map_err(|e| anyhow!("serialising safetensors: {e}"))
}

/// The tensors `{prefix}layers.{i}.weight` and `{prefix}layers.{i}.bias` of a model.
pub fn model_tensors<T: Scalar>(
    prefix: &str,
    model: &InvertibleMlp<T>,
) -> Vec<(String, OwnedTensor)> {
    let d = model.dim();
    let mut out = Vec::new();
    for (i, l) in model.layers().iter().enumerate() {
        out.push((
            format!("{prefix}layers.{i}.weight"),
            OwnedTensor::from_scalars(vec![d, d], l.weight.as_slice()),
        ));
        out.push((
            format!("{prefix}layers.{i}.bias"),
            OwnedTensor::from_scalars(vec![d], &l.bias),
        ));
    }
    out
}

/// Reads a float tensor as `f64` values, checking its shape.
pub fn read_floats(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<(Dtype, Vec<f64>)> {
    let t = st
        .tensor(name)
        .map_err(|_| anyhow!("missing tensor {name:?}"))?;
    ensure!(
        t.shape() == shape,
        "tensor {name:?} has shape {:?}, expected {shape:?}",
        t.shape()
    );
    let v = match t.dtype() {
        Dtype::F32 => t
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")) as f64)
            .collect(),
        Dtype::F64 => t
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
            .collect(),
        other => bail!("tensor {name:?} has dtype {other:?}, expected F32 or F64"),
    };
    Ok((t.dtype(), v))
}

/// Reads a `U64` tensor.
pub fn read_u64(st: &SafeTensors<'_>, name: &str) -> Result<Vec<u64>> {
    let t = st
        .tensor(name)
        .map_err(|_| anyhow!("missing tensor {name:?}"))?;
    ensure!(t.dtype() == Dtype::U64, "tensor {name:?} is not U64");
    Ok(t.data()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
        .collect())
}

/// The architecture recorded in a file's metadata.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArchMeta {
    /// Dimension.
    pub dim: usize,
    /// Layers.
    pub n_layers: usize,
    /// Activation.
    pub activation: Activation,
    /// Base density.
    pub base: BaseDensity,
    /// Whether the layers have biases.
    pub use_bias: bool,
}

impl ArchMeta {
    /// The architecture of a model.
    pub fn of<T: Scalar>(m: &InvertibleMlp<T>) -> Self {
        Self {
            dim: m.dim(),
            n_layers: m.n_layers(),
            activation: m.activation(),
            base: m.base(),
            use_bias: m.use_bias(),
        }
    }

    /// Writes the architecture keys into a metadata map.
    pub fn write(&self, meta: &mut HashMap<String, String>) {
        meta.insert("dim".into(), self.dim.to_string());
        meta.insert("n_layers".into(), self.n_layers.to_string());
        meta.insert("activation".into(), self.activation.name().into());
        meta.insert("alpha".into(), format!("{}", self.activation.parameter()));
        meta.insert("base".into(), self.base.name().into());
        meta.insert("use_bias".into(), self.use_bias.to_string());
    }

    /// Reads the architecture keys.
    pub fn read(meta: &HashMap<String, String>) -> Result<Self> {
        let get = |k: &str| {
            meta.get(k)
                .ok_or_else(|| anyhow!("the metadata has no {k:?}"))
        };
        let dim: usize = get("dim")?.parse().context("metadata 'dim'")?;
        let n_layers: usize = get("n_layers")?.parse().context("metadata 'n_layers'")?;
        let alpha: f64 = get("alpha")?.parse().context("metadata 'alpha'")?;
        let act = get("activation")?;
        let activation = Activation::from_name(act, alpha)
            .ok_or_else(|| anyhow!("unknown activation {act:?}"))?;
        let base = get("base")?;
        let base =
            BaseDensity::from_name(base).ok_or_else(|| anyhow!("unknown base density {base:?}"))?;
        let use_bias = get("use_bias")? == "true";
        ensure!(
            dim >= 1 && n_layers >= 1,
            "the metadata says dim {dim}, {n_layers} layers"
        );
        Ok(Self {
            dim,
            n_layers,
            activation,
            base,
            use_bias,
        })
    }

    /// Reads a model with this architecture from tensors `{prefix}layers.{i}.*` into `T`.
    pub fn read_model<T: Scalar>(
        &self,
        st: &SafeTensors<'_>,
        prefix: &str,
    ) -> Result<InvertibleMlp<T>> {
        let d = self.dim;
        let mut layers = Vec::with_capacity(self.n_layers);
        for i in 0..self.n_layers {
            let (_, w) = read_floats(st, &format!("{prefix}layers.{i}.weight"), &[d, d])?;
            let (_, b) = read_floats(st, &format!("{prefix}layers.{i}.bias"), &[d])?;
            layers.push(Layer {
                weight: Mat::from_vec(d, d, w.into_iter().map(T::from_f64c).collect()),
                bias: b.into_iter().map(T::from_f64c).collect(),
            });
        }
        InvertibleMlp::from_layers(layers, self.activation, self.base, self.use_bias)
            .map_err(|e| anyhow!("the stored model is invalid: {e}"))
    }
}

/// A model with everything needed to use it on data in the data's own units.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// The network.
    pub model: AnyModel,
    /// How data are mapped into the model's space.
    pub preprocess: Preprocess,
    /// The image shape, for image data.
    pub image: Option<ImageShape>,
    /// Where the training data came from, how it was split and how many rows each part had.
    pub data: Value,
    /// The training settings.
    pub training: Value,
    /// Final metrics.
    pub metrics: Value,
}

impl ModelFile {
    /// The metadata map written to the file.
    pub fn metadata(&self) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        meta.insert("format_version".into(), FORMAT_VERSION.into());
        match &self.model {
            AnyModel::F32(m) => ArchMeta::of(m).write(&mut meta),
            AnyModel::F64(m) => ArchMeta::of(m).write(&mut meta),
        }
        meta.insert("precision".into(), self.model.precision().into());
        meta.insert(
            "layout".into(),
            "row vectors: y = x W + b per layer (W row-major D x D); activation after every layer but the last; z = last layer's output has a factorised base density".into(),
        );
        meta.insert("preprocess".into(), self.preprocess.to_json().to_string());
        let image = self.image.map_or(
            Value::Null,
            |s| serde_json::json!({"height": s.height, "width": s.width}),
        );
        meta.insert("image".into(), image.to_string());
        meta.insert("data".into(), self.data.to_string());
        meta.insert("training".into(), self.training.to_string());
        meta.insert("metrics".into(), self.metrics.to_string());
        meta.insert("relgrad_version".into(), env!("CARGO_PKG_VERSION").into());
        meta
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let tensors = match &self.model {
            AnyModel::F32(m) => model_tensors("", m),
            AnyModel::F64(m) => model_tensors("", m),
        };
        serialize(&tensors, self.metadata())
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::util::write_atomic(path, &self.to_bytes()?)
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the model file {}", path.display()))?;
        Self::from_bytes(&bytes)
            .with_context(|| format!("{} is not a readable relgrad model file", path.display()))
    }

    /// Parses a model file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow!("not a safetensors file: {e}"))?;
        let st =
            SafeTensors::deserialize(bytes).map_err(|e| anyhow!("not a safetensors file: {e}"))?;
        let meta = header.metadata().clone().unwrap_or_default();
        match meta.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => bail!("its format is {other:?}, expected {FORMAT:?}"),
            None => bail!("it has no 'format' metadata (not written by relgrad?)"),
        }
        let arch = ArchMeta::read(&meta)?;
        let json = |k: &str| -> Result<Value> {
            match meta.get(k) {
                Some(s) => {
                    serde_json::from_str(s).with_context(|| format!("metadata {k:?} is not JSON"))
                }
                None => Ok(Value::Null),
            }
        };
        let (dtype, _) = read_floats(&st, "layers.0.weight", &[arch.dim, arch.dim])?;
        let model = match dtype {
            Dtype::F32 => AnyModel::F32(arch.read_model(&st, "")?),
            _ => AnyModel::F64(arch.read_model(&st, "")?),
        };
        let preprocess = Preprocess::from_json(&json("preprocess")?)?;
        preprocess.check_dim(arch.dim)?;
        let image = json("image")?;
        let image = match (
            image.get("height").and_then(Value::as_u64),
            image.get("width").and_then(Value::as_u64),
        ) {
            (Some(h), Some(w)) => Some(ImageShape {
                height: h as usize,
                width: w as usize,
            }),
            _ => None,
        };
        Ok(Self {
            model,
            preprocess,
            image,
            data: json("data")?,
            training: json("training")?,
            metrics: json("metrics")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_precisions() {
        let m = InvertibleMlp::<f64>::from_layers(
            vec![
                Layer {
                    weight: Mat::from_vec(2, 2, vec![1.0, 0.5, -0.25, 2.0]),
                    bias: vec![0.1, -0.2],
                },
                Layer {
                    weight: Mat::from_vec(2, 2, vec![3.0, 0.0, 1.0 / 3.0, 1.0]),
                    bias: vec![1e-300, 7.0],
                },
            ],
            Activation::default(),
            BaseDensity::Laplace,
            true,
        )
        .unwrap();
        for model in [AnyModel::F64(m.clone()), AnyModel::F32(m.cast())] {
            let f = ModelFile {
                model: model.clone(),
                preprocess: Preprocess::Standardize {
                    mean: vec![1.0, 2.0],
                    std: vec![0.5, 3.0],
                },
                image: Some(ImageShape {
                    height: 1,
                    width: 2,
                }),
                data: serde_json::json!({"source": "x"}),
                training: serde_json::json!({"lr": 0.001}),
                metrics: Value::Null,
            };
            let back = ModelFile::from_bytes(&f.to_bytes().unwrap()).unwrap();
            assert_eq!(back.model, model);
            assert_eq!(back.preprocess, f.preprocess);
            assert_eq!(back.image, f.image);
            assert_eq!(back.training, f.training);
        }
    }

    #[test]
    fn rejects_foreign_files() {
        assert!(ModelFile::from_bytes(b"garbage").is_err());
        let t = vec![("x".to_string(), OwnedTensor::from_u64(&[1]))];
        let bytes = serialize(&t, HashMap::new()).unwrap();
        let e = ModelFile::from_bytes(&bytes).unwrap_err();
        assert!(e.to_string().contains("format"), "{e}");
    }
}

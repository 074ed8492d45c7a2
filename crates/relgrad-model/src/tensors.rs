//! The safetensors layer shared by model files and checkpoints: writing named tensors
//! with string metadata, and reading them back with every check done before use
//! (header size, the exact set of tensor names, dtypes, shapes, finite values).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use relgrad_core::{Activation, BaseDensity, InvertibleMlp, Layer, Mat, Scalar};
use safetensors::tensor::{Dtype, SafeTensors, View};

use crate::error::{Error, Result};
use crate::network::{Network, Precision};

/// The largest header a file may have (the safetensors format's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// The largest model dimension accepted from a file.
pub const MAX_DIM: usize = 1 << 16;
/// The largest number of layers accepted from a file.
pub const MAX_LAYERS: usize = 100_000;

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
        let (dtype, bytes) = match Precision::of::<T>() {
            Precision::F32 => (
                Dtype::F32,
                values
                    .iter()
                    .flat_map(|v| (v.to_f64c() as f32).to_le_bytes())
                    .collect(),
            ),
            Precision::F64 => (
                Dtype::F64,
                values
                    .iter()
                    .flat_map(|v| v.to_f64c().to_le_bytes())
                    .collect(),
            ),
        };
        Self {
            dtype,
            shape,
            bytes,
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
        .map_err(|e| Error::invalid(format!("serialising safetensors: {e}")))
}

/// The tensors `{prefix}layers.{i}.weight` and `{prefix}layers.{i}.bias` of a network,
/// with spline activations `{prefix}splines.{l}` (`D x (3K - 1)`) for every hidden layer,
/// and with a mixture base `{prefix}base` (`D x 3K`).
pub fn mlp_tensors<T: Scalar>(
    prefix: &str,
    model: &InvertibleMlp<T>,
) -> Vec<(String, OwnedTensor)> {
    let d = model.dim();
    let mut out = Vec::with_capacity(2 * model.n_layers());
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
    for (l, m) in model.splines().iter().enumerate() {
        out.push((
            format!("{prefix}splines.{l}"),
            OwnedTensor::from_scalars(vec![m.rows(), m.cols()], m.as_slice()),
        ));
    }
    if let Some(m) = model.base_params() {
        out.push((
            format!("{prefix}base"),
            OwnedTensor::from_scalars(vec![m.rows(), m.cols()], m.as_slice()),
        ));
    }
    out
}

/// The tensors of a network of either precision.
pub fn network_tensors(prefix: &str, n: &Network) -> Vec<(String, OwnedTensor)> {
    match n {
        Network::F32(m) => mlp_tensors(prefix, m),
        Network::F64(m) => mlp_tensors(prefix, m),
    }
}

/// A parsed safetensors file: its tensors and its metadata, with typed accessors whose
/// errors name the key or tensor and what was expected.
pub struct File<'a> {
    /// The tensors.
    pub st: SafeTensors<'a>,
    /// The metadata map.
    pub meta: HashMap<String, String>,
}

impl<'a> File<'a> {
    /// Parses `bytes`, checking the header's size before anything else.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(Error::invalid(format!(
                "not a safetensors file: {} bytes, shorter than the 8-byte header length",
                bytes.len()
            )));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if n > MAX_HEADER_BYTES || n > (bytes.len() - 8) as u64 {
            return Err(Error::invalid(format!(
                "not a safetensors file: its header claims {n} bytes, but the file has {} after the length and the limit is {MAX_HEADER_BYTES}",
                bytes.len() - 8
            )));
        }
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::invalid(format!("not a safetensors file: {e}")))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| Error::invalid(format!("not a safetensors file: {e}")))?;
        let meta = header.metadata().clone().unwrap_or_default();
        Ok(Self { st, meta })
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Result<&str> {
        self.meta
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::invalid(format!("the metadata has no {key:?} key")))
    }

    /// A metadata value parsed as a whole number in `lo..=hi`.
    pub fn get_count(&self, key: &str, lo: usize, hi: usize) -> Result<usize> {
        let s = self.get(key)?;
        match s.parse::<usize>() {
            Ok(v) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(Error::invalid(format!(
                "metadata {key:?} is {s:?}, expected a whole number from {lo} to {hi}"
            ))),
        }
    }

    /// A metadata value holding JSON (`Null` when the key is absent).
    pub fn get_json(&self, key: &str) -> Result<serde_json::Value> {
        match self.meta.get(key) {
            None => Ok(serde_json::Value::Null),
            Some(s) => serde_json::from_str(s)
                .map_err(|e| Error::invalid(format!("metadata {key:?} is not valid JSON: {e}"))),
        }
    }

    /// Checks that the file holds exactly the tensors `expected`, naming the first
    /// missing and the first unexpected one.
    pub fn expect_names(&self, expected: &BTreeSet<String>, why: &str) -> Result<()> {
        let present: BTreeSet<String> = self.st.names().into_iter().map(String::from).collect();
        if let Some(missing) = expected.difference(&present).next() {
            return Err(Error::invalid(format!(
                "tensor {missing:?} is missing ({why})"
            )));
        }
        if let Some(extra) = present.difference(expected).next() {
            return Err(Error::invalid(format!(
                "unexpected tensor {extra:?} ({why})"
            )));
        }
        Ok(())
    }

    /// Reads a float tensor of the given shape and precision as `f64` values, all finite.
    pub fn floats(&self, name: &str, shape: &[usize], precision: Precision) -> Result<Vec<f64>> {
        let t = self
            .st
            .tensor(name)
            .map_err(|_| Error::invalid(format!("tensor {name:?} is missing")))?;
        if t.shape() != shape {
            return Err(Error::invalid(format!(
                "tensor {name:?} has shape {:?}, expected {shape:?}",
                t.shape()
            )));
        }
        let want = match precision {
            Precision::F32 => Dtype::F32,
            Precision::F64 => Dtype::F64,
        };
        if t.dtype() != want {
            return Err(Error::invalid(format!(
                "tensor {name:?} has dtype {:?}, expected {want:?} (the metadata's precision is {})",
                t.dtype(),
                precision.name()
            )));
        }
        let v: Vec<f64> = match want {
            Dtype::F32 => t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect(),
            _ => t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        };
        if let Some(k) = v.iter().position(|x| !x.is_finite()) {
            let place = match shape {
                [_, cols] => format!("row {}, column {}", k / cols + 1, k % cols + 1),
                _ => format!("entry {}", k + 1),
            };
            return Err(Error::invalid(format!(
                "tensor {name:?} holds a non-finite value ({}) at {place}; the parameters are corrupt or training diverged",
                v[k]
            )));
        }
        Ok(v)
    }
}

/// The architecture recorded in a file's metadata.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Arch {
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
    /// The precision of the tensors.
    pub precision: Precision,
}

impl Arch {
    /// The architecture of a network.
    pub fn of(n: &Network) -> Self {
        Self {
            dim: n.dim(),
            n_layers: n.n_layers(),
            activation: n.activation(),
            base: n.base(),
            use_bias: n.use_bias(),
            precision: n.precision(),
        }
    }

    /// Writes the architecture keys into a metadata map.
    pub fn write(&self, meta: &mut HashMap<String, String>) {
        meta.insert("dim".into(), self.dim.to_string());
        meta.insert("n_layers".into(), self.n_layers.to_string());
        meta.insert("activation".into(), self.activation.name().into());
        meta.insert("alpha".into(), format!("{}", self.activation.parameter()));
        if let Some(bins) = self.activation.bins() {
            meta.insert("bins".into(), bins.to_string());
        }
        meta.insert("base".into(), self.base.name().into());
        if let Some(k) = self.base.components() {
            meta.insert("components".into(), k.to_string());
        }
        meta.insert("use_bias".into(), self.use_bias.to_string());
        meta.insert("precision".into(), self.precision.name().into());
    }

    /// Reads and checks the architecture keys.
    pub fn read(f: &File<'_>) -> Result<Self> {
        let dim = f.get_count("dim", 1, MAX_DIM)?;
        let n_layers = f.get_count("n_layers", 1, MAX_LAYERS)?;
        let alpha_s = f.get("alpha")?;
        let alpha: f64 = alpha_s
            .parse()
            .ok()
            .filter(|a: &f64| a.is_finite())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "metadata \"alpha\" is {alpha_s:?}, expected a finite number"
                ))
            })?;
        let act = f.get("activation")?;
        let mut activation = Activation::from_name(act, alpha).ok_or_else(|| {
            Error::invalid(format!(
                "metadata \"activation\" is {act:?}, expected \"smooth-leaky-relu\", \"leaky-relu\", \"tanh-linear\" or \"spline\""
            ))
        })?;
        if let Activation::Spline { bins, .. } = &mut activation {
            *bins = f.get_count("bins", 2, relgrad_core::spline::MAX_BINS)?;
        }
        activation
            .validate()
            .map_err(|e| Error::invalid(format!("metadata \"alpha\" is {alpha_s}: {e}")))?;
        let base = f.get("base")?;
        let mut base = BaseDensity::from_name(base).ok_or_else(|| {
            Error::invalid(format!(
                "metadata \"base\" is {base:?}, expected \"normal\", \"laplace\", \"logistic\" or \"mixture\""
            ))
        })?;
        if base.is_learnable() {
            let k = f.get_count("components", 1, relgrad_core::mixture::MAX_COMPONENTS)?;
            base = base.with_components(k);
        }
        let use_bias = match f.get("use_bias")? {
            "true" => true,
            "false" => false,
            other => {
                return Err(Error::invalid(format!(
                    "metadata \"use_bias\" is {other:?}, expected \"true\" or \"false\""
                )))
            }
        };
        let p = f.get("precision")?;
        let precision = Precision::from_name(p).ok_or_else(|| {
            Error::invalid(format!(
                "metadata \"precision\" is {p:?}, expected \"f32\" or \"f64\""
            ))
        })?;
        Ok(Self {
            dim,
            n_layers,
            activation,
            base,
            use_bias,
            precision,
        })
    }

    /// How many spline parameter matrices the network has: one per hidden layer with a
    /// learnable activation, none otherwise.
    pub fn spline_layers(&self) -> usize {
        if self.activation.is_learnable() {
            self.n_layers - 1
        } else {
            0
        }
    }

    /// The tensor names of a network with this architecture under `prefix`.
    pub fn tensor_names(&self, prefix: &str) -> BTreeSet<String> {
        let hidden = self.spline_layers();
        (0..self.n_layers)
            .flat_map(|i| {
                [
                    format!("{prefix}layers.{i}.weight"),
                    format!("{prefix}layers.{i}.bias"),
                ]
            })
            .chain((0..hidden).map(|l| format!("{prefix}splines.{l}")))
            .chain(self.base.is_learnable().then(|| format!("{prefix}base")))
            .collect()
    }

    /// Reads the network `{prefix}layers.{i}.*` in the file's precision.
    pub fn read_network(&self, f: &File<'_>, prefix: &str) -> Result<Network> {
        Ok(match self.precision {
            Precision::F32 => Network::F32(self.read_mlp(f, prefix)?),
            Precision::F64 => Network::F64(self.read_mlp(f, prefix)?),
        })
    }

    /// Reads the network `{prefix}layers.{i}.*` converted to `T`.
    pub fn read_mlp<T: Scalar>(&self, f: &File<'_>, prefix: &str) -> Result<InvertibleMlp<T>> {
        let d = self.dim;
        let mut layers = Vec::with_capacity(self.n_layers.min(f.st.len()));
        for i in 0..self.n_layers {
            let w = f.floats(
                &format!("{prefix}layers.{i}.weight"),
                &[d, d],
                self.precision,
            )?;
            let b = f.floats(&format!("{prefix}layers.{i}.bias"), &[d], self.precision)?;
            layers.push(Layer {
                weight: Mat::from_vec(d, d, w.into_iter().map(T::from_f64c).collect()),
                bias: b.into_iter().map(T::from_f64c).collect(),
            });
        }
        let invalid =
            |e: relgrad_core::Error| Error::invalid(format!("the stored network is invalid: {e}"));
        let mut mlp = InvertibleMlp::from_layers(layers, self.activation, self.base, self.use_bias)
            .map_err(invalid)?;
        if let Some(k) = self.base.components() {
            let cols = relgrad_core::mixture::params_per_unit(k);
            let v = f.floats(&format!("{prefix}base"), &[d, cols], self.precision)?;
            let params = Mat::from_vec(d, cols, v.into_iter().map(T::from_f64c).collect());
            mlp = mlp.with_base_params(params).map_err(invalid)?;
        }
        let Some(bins) = self.activation.bins() else {
            return Ok(mlp);
        };
        let cols = relgrad_core::spline::params_per_unit(bins);
        let splines = (0..self.spline_layers())
            .map(|l| {
                let v = f.floats(&format!("{prefix}splines.{l}"), &[d, cols], self.precision)?;
                Ok(Mat::from_vec(
                    d,
                    cols,
                    v.into_iter().map(T::from_f64c).collect(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        mlp.with_splines(splines).map_err(invalid)
    }
}

//! Models across the boundary: `(weights, biases, splines, meta)` from Python becomes a
//! validated `relgrad::model::DensityModel` (through the model file's own reader, so Python
//! gets the same checks as a file), and back.
//!
//! `splines` carries every elementwise parameter matrix: the spline activations' (one per
//! hidden layer), then, when `meta["base"]` is `"mixture"`, the base's (`D x 3K`).

use std::collections::HashMap;

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use relgrad::model::model_file::{format_version, FORMAT};
use relgrad::model::tensors::{serialize, OwnedTensor};
use relgrad::model::{DensityModel, Network, Precision};
use relgrad::{Activation, BaseDensity, InvertibleMlp, Scalar};
use serde_json::{json, Value};

use crate::arrays::{matrix, rows, vector};
use crate::errors::to_py;

/// Parses a JSON object string.
pub fn parse_json(s: &str, what: &str) -> PyResult<Value> {
    let v: Value = serde_json::from_str(s)
        .map_err(|e| PyValueError::new_err(format!("{what} is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(PyValueError::new_err(format!(
            "{what} must be a JSON object"
        )));
    }
    Ok(v)
}

fn meta_str(v: &Value, key: &str, default: &str) -> String {
    match &v[key] {
        Value::Null => default.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A tensor of `shape` in the model's precision from float64 values.
fn tensor(p: Precision, shape: Vec<usize>, values: &[f64]) -> OwnedTensor {
    match p {
        Precision::F32 => OwnedTensor::from_scalars::<f32>(
            shape,
            &values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
        ),
        Precision::F64 => OwnedTensor::from_scalars::<f64>(shape, values),
    }
}

/// A 2-D array's values, row by row.
fn row_major(x: &Bound<'_, PyAny>, name: &str) -> PyResult<(Vec<usize>, Vec<f64>)> {
    let x = rows(x, name)?;
    let v = x.view();
    let values = (0..v.rows()).flat_map(|r| v.row(r).to_vec()).collect();
    Ok((vec![v.rows(), v.cols()], values))
}

/// Builds and validates a model from Python's weights, biases, elementwise parameters (one
/// matrix per hidden layer for a spline activation, then one for a mixture base) and meta
/// JSON.
pub fn model_from_py(
    weights: &Bound<'_, PyAny>,
    biases: &Bound<'_, PyAny>,
    splines: &Bound<'_, PyAny>,
    meta: &str,
) -> PyResult<DensityModel> {
    let meta = parse_json(meta, "meta")?;
    let weights: Vec<Bound<'_, PyAny>> = weights.extract()?;
    let biases: Vec<Bound<'_, PyAny>> = biases.extract()?;
    let mut splines: Vec<Bound<'_, PyAny>> = splines.extract()?;
    let base = meta_str(&meta, "base", "normal");
    let base_params = if base == "mixture" {
        Some(splines.pop().ok_or_else(|| {
            PyValueError::new_err(
                "a mixture base needs its parameters after the splines' (none were given)",
            )
        })?)
    } else {
        None
    };
    if weights.is_empty() || weights.len() != biases.len() {
        return Err(PyValueError::new_err(format!(
            "expected one bias per weight and at least one layer, got {} weights and {} biases",
            weights.len(),
            biases.len()
        )));
    }
    let precision = meta_str(&meta, "precision", "f64");
    let p = Precision::from_name(&precision).unwrap_or(Precision::F64);
    let mut tensors = Vec::with_capacity(2 * weights.len() + splines.len());
    let mut dim = 0;
    for (i, (w, b)) in weights.iter().zip(&biases).enumerate() {
        let (shape, wv) = row_major(w, &format!("weights[{i}]"))?;
        let b = vector(b, &format!("biases[{i}]"))?;
        dim = shape[0];
        tensors.push((format!("layers.{i}.weight"), tensor(p, shape, &wv)));
        tensors.push((format!("layers.{i}.bias"), tensor(p, vec![b.len()], &b)));
    }
    for (l, s) in splines.iter().enumerate() {
        let (shape, sv) = row_major(s, &format!("splines[{l}]"))?;
        tensors.push((format!("splines.{l}"), tensor(p, shape, &sv)));
    }
    let mut m: HashMap<String, String> = HashMap::new();
    if let Some(b) = &base_params {
        let (shape, bv) = row_major(b, "base_params")?;
        m.insert("components".into(), (shape[1] / 3).to_string());
        tensors.push(("base".to_string(), tensor(p, shape, &bv)));
    }
    let activation = meta_str(&meta, "activation", "smooth-leaky-relu");
    m.insert("format".into(), FORMAT.into());
    // The file reader checks the tensors against these keys (the version the activation
    // and the base need).
    let act = Activation::from_name(&activation, 0.0).unwrap_or_default();
    let version = format_version(act, BaseDensity::from_name(&base).unwrap_or_default());
    m.insert("format_version".into(), version.into());
    m.insert("dim".into(), dim.to_string());
    m.insert("n_layers".into(), weights.len().to_string());
    if !meta["bins"].is_null() {
        m.insert("bins".into(), meta_str(&meta, "bins", ""));
    }
    m.insert("activation".into(), activation);
    m.insert("alpha".into(), meta_str(&meta, "alpha", "0.01"));
    m.insert("base".into(), base);
    m.insert("use_bias".into(), meta_str(&meta, "use_bias", "true"));
    m.insert("precision".into(), precision);
    let pre = match &meta["preprocess"] {
        Value::Null => json!({"kind": "none"}),
        v => v.clone(),
    };
    m.insert("preprocess".into(), pre.to_string());
    m.insert("image".into(), meta["image"].to_string());
    let mut training = match &meta["training"] {
        Value::Object(o) => Value::Object(o.clone()),
        _ => json!({}),
    };
    if !meta["seed"].is_null() {
        training["seed"] = meta["seed"].clone();
    }
    m.insert("training".into(), training.to_string());
    m.insert("data".into(), meta["data"].to_string());
    m.insert("metrics".into(), meta["metrics"].to_string());
    if !meta["train_log_prob_quantiles"].is_null() {
        m.insert(
            "train_log_prob_quantiles".into(),
            meta["train_log_prob_quantiles"].to_string(),
        );
    }
    let bytes = serialize(&tensors, m).map_err(to_py)?;
    DensityModel::from_bytes(&bytes).map_err(to_py)
}

/// The meta JSON of a model (see the module stub `_relgrad.pyi`).
pub fn meta_of(m: &DensityModel) -> String {
    let net = &m.network;
    json!({
        "activation": net.activation().name(),
        "alpha": net.activation().parameter(),
        "bins": net.activation().bins(),
        "base": net.base().name(),
        "components": net.base().components(),
        "use_bias": net.use_bias(),
        "precision": net.precision().name(),
        "preprocess": m.preprocess.to_json(),
        "seed": m.seed,
        "train_log_prob_quantiles": m.train_quantiles.as_ref().map(|q| q.iter().map(|&(a, b)| [a, b]).collect::<Vec<_>>()),
        "image": m.image.map(|s| json!({"height": s.height, "width": s.width})),
        "training": m.training,
        "data": m.data,
        "metrics": m.metrics,
    })
    .to_string()
}

/// Weights, biases and elementwise parameters (the splines', then a mixture base's) as
/// NumPy arrays.
pub type Parameters<'py> = (
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
);

fn layers_of<'py, T: Scalar + numpy::Element>(
    py: Python<'py>,
    m: &InvertibleMlp<T>,
) -> PyResult<Parameters<'py>> {
    let mut ws = Vec::with_capacity(m.n_layers());
    let mut bs = Vec::with_capacity(m.n_layers());
    for l in m.layers() {
        ws.push(matrix(py, l.weight.clone())?.into_any());
        bs.push(PyArray1::from_vec(py, l.bias.clone()).into_any());
    }
    let ss = m
        .splines()
        .iter()
        .chain(m.base_params())
        .map(|s| matrix(py, s.clone()).map(Bound::into_any))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((ws, bs, ss))
}

/// A model's weights, biases and elementwise parameters (spline matrices for a spline
/// activation, then the base's for a mixture base) as NumPy arrays of its precision.
pub fn parameters_of<'py>(py: Python<'py>, m: &DensityModel) -> PyResult<Parameters<'py>> {
    match &m.network {
        Network::F32(n) => layers_of(py, n),
        Network::F64(n) => layers_of(py, n),
    }
}

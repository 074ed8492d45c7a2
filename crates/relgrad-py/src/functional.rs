//! The functional layer, for people with their own training loops: update directions
//! and log-densities of a bare network (no preprocessing), in `float64`. A network with
//! spline activations takes its spline parameters as one more list of matrices.

use numpy::PyArray1;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use relgrad::{Activation, BaseDensity, GradientKind, InvertibleMlp, Layer, Mat, Workspace};

use crate::arrays::{matrix, rows, vector};
use crate::errors::{guard, to_py};

/// An activation from its name, its parameter (`alpha`, or a spline's bound `T`) and a
/// spline's bins (ignored by the fixed activations).
fn activation_of(name: &str, parameter: f64, bins: usize) -> PyResult<Activation> {
    let mut activation = Activation::from_name(name, parameter).ok_or_else(|| {
        PyValueError::new_err(format!(
            "activation must be \"smooth-leaky-relu\", \"leaky-relu\", \"tanh-linear\" or \"spline\", got {name:?}"
        ))
    })?;
    if let Activation::Spline { bins: k, .. } = &mut activation {
        *k = bins;
    }
    Ok(activation)
}

/// A bare network. `splines` (spline activations only): one `D x (3K - 1)` matrix per
/// hidden layer; `None` starts every spline at the identity.
fn network(
    weights: &Bound<'_, PyAny>,
    biases: &Bound<'_, PyAny>,
    splines: Option<&Bound<'_, PyAny>>,
    activation: Activation,
    base: &str,
) -> PyResult<InvertibleMlp<f64>> {
    let ws: Vec<Bound<'_, PyAny>> = weights.extract()?;
    let bs: Vec<Bound<'_, PyAny>> = biases.extract()?;
    if ws.is_empty() || ws.len() != bs.len() {
        return Err(PyValueError::new_err(format!(
            "expected one bias per weight and at least one layer, got {} weights and {} biases",
            ws.len(),
            bs.len()
        )));
    }
    let mut layers = Vec::with_capacity(ws.len());
    for (i, (w, b)) in ws.iter().zip(&bs).enumerate() {
        let w = rows(w, &format!("weights[{i}]"))?;
        let w = w.view();
        if let Some(v) = (0..w.rows())
            .flat_map(|r| w.row(r))
            .find(|v| !v.is_finite())
        {
            return Err(PyValueError::new_err(format!(
                "weights[{i}] holds a non-finite value ({v})"
            )));
        }
        layers.push(Layer {
            weight: w.to_owned(),
            bias: vector(b, &format!("biases[{i}]"))?,
        });
    }
    // The functional API takes the fixed densities; a mixture base (learnable) is fitted
    // by `Flow`.
    let base = BaseDensity::from_name(base)
        .filter(|b| !b.is_learnable())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "base must be \"normal\", \"laplace\" or \"logistic\", got {base:?} (a mixture base is fitted by relgrad.Flow)"
            ))
        })?;
    let model =
        InvertibleMlp::from_layers(layers, activation, base, true).map_err(|e| to_py(e.into()))?;
    let Some(splines) = splines else {
        return Ok(model);
    };
    let ss: Vec<Bound<'_, PyAny>> = splines.extract()?;
    let mats = ss
        .iter()
        .enumerate()
        .map(|(l, s)| rows(s, &format!("splines[{l}]")).map(|m| m.view().to_owned()))
        .collect::<PyResult<Vec<_>>>()?;
    model.with_splines(mats).map_err(|e| to_py(e.into()))
}

/// See `_relgrad.pyi`.
#[pyfunction]
#[pyo3(signature = (weights, biases, splines, x, kind, activation, alpha, bins, base))]
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn gradient<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: Option<&Bound<'py, PyAny>>,
    x: &Bound<'py, PyAny>,
    kind: &str,
    activation: &str,
    alpha: f64,
    bins: usize,
    base: &str,
) -> PyResult<(
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
    f64,
)> {
    let kind = match kind {
        "relative" => GradientKind::Relative,
        "naive" => GradientKind::Naive,
        k => {
            return Err(PyValueError::new_err(format!(
                "kind must be \"relative\" or \"naive\", got {k:?}"
            )))
        }
    };
    let activation = activation_of(activation, alpha, bins)?;
    let model = network(weights, biases, splines, activation, base)?;
    let x = rows(x, "X")?;
    let xv = x.view();
    if xv.rows() == 0 {
        return Err(PyValueError::new_err("X has no rows"));
    }
    let (grad, ll) = py.detach(|| {
        guard(|| {
            let be = relgrad::DefaultBackend::default();
            let mut ws = Workspace::new(&model, xv.rows());
            relgrad::gradient(kind, &model, &be, xv, &mut ws).map_err(|e| to_py(e.into()))?;
            let ll = model
                .mean_log_likelihood(&be, xv)
                .map_err(|e| to_py(e.into()))?;
            Ok((ws.grad, ll))
        })
    })?;
    let dw = grad
        .weights
        .into_iter()
        .map(|m: Mat<f64>| matrix(py, m).map(Bound::into_any))
        .collect::<PyResult<Vec<_>>>()?;
    let db = grad
        .biases
        .into_iter()
        .map(|b| PyArray1::from_vec(py, b).into_any())
        .collect();
    let ds = grad
        .splines
        .into_iter()
        .map(|m: Mat<f64>| matrix(py, m).map(Bound::into_any))
        .collect::<PyResult<Vec<_>>>()?;
    Ok((dw, db, ds, ll))
}

/// See `_relgrad.pyi`.
#[pyfunction]
#[pyo3(signature = (weights, biases, splines, x, activation, alpha, bins, base))]
#[allow(clippy::too_many_arguments)]
pub fn network_log_prob<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: Option<&Bound<'py, PyAny>>,
    x: &Bound<'py, PyAny>,
    activation: &str,
    alpha: f64,
    bins: usize,
    base: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let activation = activation_of(activation, alpha, bins)?;
    let model = network(weights, biases, splines, activation, base)?;
    let x = rows(x, "X")?;
    let xv = x.view();
    let lp = py.detach(|| {
        guard(|| {
            let be = relgrad::DefaultBackend::default();
            model.log_prob(&be, xv).map_err(|e| to_py(e.into()))
        })
    })?;
    Ok(PyArray1::from_vec(py, lp))
}

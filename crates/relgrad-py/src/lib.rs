//! # relgrad-py
//!
//! The native module `relgrad._relgrad` of the Python package: thin, stateless calls into
//! `relgrad::model` (fit, score, sample, save, load) and the functional layer (update
//! directions, log-densities). Compute runs with the GIL released. The pure-Python layer
//! (`python/relgrad`) holds every policy, default and docstring; the contract is
//! `python/relgrad/_relgrad.pyi`.

mod arrays;
mod errors;
mod fit;
mod functional;
mod model;

use numpy::PyArray1;
use pyo3::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad::model::{FitConfig, Part};
use relgrad::{DefaultBackend, DensityModel, Mat, MatRef};

use arrays::{matrix, rows};
use errors::{guard, to_py};
use model::{meta_of, model_from_py, parameters_of};

fn part_of(name: &str) -> PyResult<Part> {
    Ok(match name {
        "train" => Part::Train,
        "val" => Part::Val,
        "test" => Part::Test,
        "all" => Part::All,
        p => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "part must be \"train\", \"val\", \"test\" or \"all\", got {p:?}"
            )))
        }
    })
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn default_config() -> String {
    let mut v = FitConfig::default().to_json();
    if v["bins"].is_null() {
        // The bins a spline activation gets unless told otherwise.
        v["bins"] = relgrad::activation::DEFAULT_BINS.into();
    }
    v["preprocess"] = "auto".into();
    v["threads"] = 0.into();
    v.to_string()
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn automatic_architecture(dim: usize) -> Option<(&'static str, usize, Option<usize>, f64)> {
    relgrad::model::automatic_architecture(dim)
        .map(|(act, layers)| (act.name(), layers, act.bins(), act.parameter()))
}

/// Scores in the data's units (`model_space == false`) or the network's space.
fn scores<'py>(
    py: Python<'py>,
    m: DensityModel,
    x: &Bound<'py, PyAny>,
    part: &str,
    model_space: bool,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let part = part_of(part)?;
    let x = rows(x, "X")?;
    let xv = x.view();
    let s = py.detach(|| {
        guard(|| {
            m.scores(&relgrad::DefaultBackend::default(), xv, part)
                .map_err(to_py)
        })
    })?;
    Ok(PyArray1::from_vec(
        py,
        if model_space {
            s.model_space
        } else {
            s.data_units
        },
    ))
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn log_prob<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: &Bound<'py, PyAny>,
    meta: &str,
    x: &Bound<'py, PyAny>,
    part: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    scores(
        py,
        model_from_py(weights, biases, splines, meta)?,
        x,
        part,
        false,
    )
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn log_prob_model_space<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: &Bound<'py, PyAny>,
    meta: &str,
    x: &Bound<'py, PyAny>,
    part: &str,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    scores(
        py,
        model_from_py(weights, biases, splines, meta)?,
        x,
        part,
        true,
    )
}

/// Rows in, rows out through one of the model's verbs, with the GIL released.
fn map_rows<'py>(
    py: Python<'py>,
    model: DensityModel,
    x: &Bound<'py, PyAny>,
    name: &str,
    verb: fn(&DensityModel, &DefaultBackend, MatRef<'_, f64>) -> relgrad::model::Result<Mat<f64>>,
) -> PyResult<Bound<'py, PyAny>> {
    let x = rows(x, name)?;
    let xv = x.view();
    let y = py.detach(|| guard(|| verb(&model, &DefaultBackend::default(), xv).map_err(to_py)))?;
    Ok(matrix(py, y)?.into_any())
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn forward<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: &Bound<'py, PyAny>,
    meta: &str,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = model_from_py(weights, biases, splines, meta)?;
    map_rows(py, m, x, "X", |m, be, x| m.forward(be, x))
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn inverse<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: &Bound<'py, PyAny>,
    meta: &str,
    z: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let m = model_from_py(weights, biases, splines, meta)?;
    map_rows(py, m, z, "Z", |m, be, z| m.inverse(be, z))
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn sample<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    biases: &Bound<'py, PyAny>,
    splines: &Bound<'py, PyAny>,
    meta: &str,
    n: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let m = model_from_py(weights, biases, splines, meta)?;
    let x = py.detach(|| {
        guard(|| {
            let mut rng = StdRng::seed_from_u64(seed);
            m.sample(&relgrad::DefaultBackend::default(), n, &mut rng)
                .map_err(to_py)
        })
    })?;
    Ok(matrix(py, x)?.into_any())
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn save(
    weights: &Bound<'_, PyAny>,
    biases: &Bound<'_, PyAny>,
    splines: &Bound<'_, PyAny>,
    meta: &str,
    path: std::path::PathBuf,
) -> PyResult<()> {
    model_from_py(weights, biases, splines, meta)?
        .save(path)
        .map_err(to_py)
}

/// See `_relgrad.pyi`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn load(
    py: Python<'_>,
    path: std::path::PathBuf,
) -> PyResult<(
    Vec<Bound<'_, PyAny>>,
    Vec<Bound<'_, PyAny>>,
    Vec<Bound<'_, PyAny>>,
    String,
)> {
    let m = relgrad::DensityModel::load(path).map_err(to_py)?;
    let (w, b, s) = parameters_of(py, &m)?;
    Ok((w, b, s, meta_of(&m)))
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn split_rows(
    n: usize,
    n_val: usize,
    n_test: usize,
    seed: u64,
) -> PyResult<(Vec<i64>, Vec<i64>, Vec<i64>)> {
    let s = relgrad::model::split_rows(n, n_val, n_test, seed).map_err(to_py)?;
    let conv = |v: Vec<usize>| v.into_iter().map(|i| i as i64).collect();
    Ok((conv(s.train), conv(s.val), conv(s.test)))
}

/// See `_relgrad.pyi`.
#[pyfunction]
fn holdout_rows(n: usize, fraction: f64) -> PyResult<usize> {
    relgrad::model::split::check_fraction("the fraction", fraction).map_err(to_py)?;
    Ok(relgrad::model::split::holdout_rows(n, fraction))
}

/// The native module.
#[pymodule]
fn _relgrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SPLINE_MAX_DIM", relgrad::model::SPLINE_MAX_DIM)?;
    m.add("SPLINE_LAYERS", relgrad::model::SPLINE_LAYERS)?;
    m.add_function(wrap_pyfunction!(default_config, m)?)?;
    m.add_function(wrap_pyfunction!(automatic_architecture, m)?)?;
    m.add_function(wrap_pyfunction!(fit::fit, m)?)?;
    m.add_function(wrap_pyfunction!(log_prob, m)?)?;
    m.add_function(wrap_pyfunction!(log_prob_model_space, m)?)?;
    m.add_function(wrap_pyfunction!(forward, m)?)?;
    m.add_function(wrap_pyfunction!(inverse, m)?)?;
    m.add_function(wrap_pyfunction!(sample, m)?)?;
    m.add_function(wrap_pyfunction!(save, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(functional::gradient, m)?)?;
    m.add_function(wrap_pyfunction!(functional::network_log_prob, m)?)?;
    m.add_function(wrap_pyfunction!(split_rows, m)?)?;
    m.add_function(wrap_pyfunction!(holdout_rows, m)?)?;
    Ok(())
}

//! `fit`: the library's fit pipeline with the GIL released, re-attaching briefly to check
//! for Ctrl-C, to call the Python callback and to print progress.

use std::time::{Duration, Instant};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use relgrad::model::{Fit, FitConfig, FitHooks, PreprocessKind, Stop};
use relgrad::{EpochMetrics, Flow, Threads};
use serde_json::Value;

use crate::arrays::rows;
use crate::errors::{guard, to_py};
use crate::model::{meta_of, parameters_of, parse_json};

/// How often Ctrl-C is checked between epochs.
const SIGNAL_INTERVAL: Duration = Duration::from_millis(200);

struct PyHooks {
    callback: Option<Py<PyAny>>,
    verbose: bool,
    rows: usize,
    max_epochs: usize,
    last_check: Instant,
    pending: Option<PyErr>,
}

impl PyHooks {
    fn stop_with(&mut self, e: PyErr) -> Flow {
        self.pending = Some(e);
        Flow::Stop
    }
}

impl FitHooks for PyHooks {
    fn step(&mut self, _epoch: usize, _rows: usize) -> Flow {
        if self.last_check.elapsed() < SIGNAL_INTERVAL {
            return Flow::Continue;
        }
        self.last_check = Instant::now();
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => Flow::Continue,
            Err(e) => self.stop_with(e),
        }
    }

    fn epoch(&mut self, m: &EpochMetrics) -> Flow {
        self.last_check = Instant::now();
        let r = Python::attach(|py| -> PyResult<bool> {
            py.check_signals()?;
            if self.verbose {
                let ll = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.3}"));
                let rate = if m.epoch == 0 {
                    0.0
                } else {
                    self.rows as f64 / m.seconds.max(1e-9)
                };
                let line = format!(
                    "epoch {:>4}/{}  train {:>10}  val {:>10}  {:.3} s  {:.0} rows/s\n",
                    m.epoch,
                    self.max_epochs,
                    ll(m.train_ll),
                    ll(m.val_ll),
                    m.seconds,
                    rate
                );
                let out = py.import("sys")?.getattr("stdout")?;
                out.call_method1("write", (line,))?;
                out.call_method0("flush")?;
            }
            if let Some(cb) = &self.callback {
                let r = cb.call1(py, (m.epoch, m.train_ll, m.val_ll))?;
                let r = r.bind(py);
                if !r.is_none() && !r.is_truthy()? {
                    return Ok(false);
                }
            }
            Ok(true)
        });
        match r {
            Ok(true) => Flow::Continue,
            Ok(false) => Flow::Stop,
            Err(e) => self.stop_with(e),
        }
    }
}

/// The fit settings from Python's JSON (missing keys: `relgrad train`'s defaults).
fn config_of(config: &str) -> PyResult<(FitConfig, Threads)> {
    let v = parse_json(config, "config")?;
    let mut c = FitConfig::from_json(&v).map_err(to_py)?;
    c.preprocess = match &v["preprocess"] {
        Value::Null => PreprocessKind::Auto,
        Value::String(s) => PreprocessKind::from_name(s).ok_or_else(|| {
            PyValueError::new_err(format!(
                "preprocess must be \"auto\", \"none\", \"standardize\" or \"logit\", got {s:?}"
            ))
        })?,
        other => {
            return Err(PyValueError::new_err(format!(
                "preprocess must be a string, got {other}"
            )))
        }
    };
    let threads = match v["threads"].as_u64() {
        None | Some(0) => Threads::Auto,
        Some(n) => Threads::Fixed(n as usize),
    };
    Ok((c, threads))
}

fn stop_name(s: Stop) -> &'static str {
    match s {
        Stop::MaxEpochs => "max_epochs",
        Stop::EarlyStopped => "early_stopped",
        Stop::Diverged { .. } => "diverged",
        Stop::Cancelled { .. } => "cancelled",
    }
}

/// See `_relgrad.pyi`.
#[pyfunction]
#[pyo3(signature = (x, x_val, config, callback, verbose))]
#[allow(clippy::type_complexity)]
pub fn fit<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    x_val: Option<&Bound<'py, PyAny>>,
    config: &str,
    callback: Option<Py<PyAny>>,
    verbose: i64,
) -> PyResult<(
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
    Vec<Bound<'py, PyAny>>,
    String,
    Vec<(usize, Option<f64>, Option<f64>, f64)>,
    &'static str,
    Option<Py<PyAny>>,
)> {
    let (config, threads) = config_of(config)?;
    let train = rows(x, "X")?;
    let val = x_val.map(|v| rows(v, "X_val")).transpose()?;
    let (tv, vv) = (train.view(), val.as_ref().map(|v| v.view()));
    let max_epochs = config.max_epochs;
    let mut hooks = PyHooks {
        callback,
        verbose: verbose > 0,
        rows: tv.rows(),
        max_epochs,
        last_check: Instant::now(),
        pending: None,
    };
    let fitted = py.detach(|| {
        guard(|| {
            let backend = relgrad::DefaultBackend::new(threads);
            let fit = Fit::new(&backend, config, tv, vv).map_err(to_py)?;
            fit.run(&mut hooks).map_err(to_py)
        })
    })?;
    let (weights, biases, splines) = parameters_of(py, &fitted.model)?;
    let history = fitted
        .history
        .epochs
        .iter()
        .map(|m| (m.epoch, m.train_ll, m.val_ll, m.seconds))
        .collect();
    let pending = hooks.pending.take().map(|e| e.into_value(py).into_any());
    Ok((
        weights,
        biases,
        splines,
        meta_of(&fitted.model),
        history,
        stop_name(fitted.stop),
        pending,
    ))
}

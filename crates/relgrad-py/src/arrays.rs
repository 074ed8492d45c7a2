//! NumPy arrays in and out: `float64` C-contiguous input is read in place, other dtypes
//! and layouts are converted once; outputs are moved into NumPy without copying.

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use relgrad::{Mat, MatRef, Scalar};

/// Rows from Python: borrowed when the layout allows.
pub enum Rows<'py> {
    /// A C-contiguous `float64` array, read in place.
    Borrowed(PyReadonlyArray2<'py, f64>),
    /// A converted copy.
    Owned(Mat<f64>),
}

impl Rows<'_> {
    /// The rows as a relgrad view.
    pub fn view(&self) -> MatRef<'_, f64> {
        match self {
            Rows::Borrowed(a) => {
                let (r, c) = (a.shape()[0], a.shape()[1]);
                MatRef::from_slice(a.as_slice().expect("checked C-contiguous"), r, c)
            }
            Rows::Owned(m) => m.as_ref(),
        }
    }
}

/// Reads a 2-D array of floats (or anything NumPy converts to float64).
pub fn rows<'py>(x: &Bound<'py, PyAny>, name: &str) -> PyResult<Rows<'py>> {
    if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f64>>() {
        if a.is_c_contiguous() {
            return Ok(Rows::Borrowed(a));
        }
        let v = a.as_array();
        return Ok(Rows::Owned(Mat::from_fn(v.nrows(), v.ncols(), |i, j| {
            v[[i, j]]
        })));
    }
    if let Ok(a) = x.extract::<PyReadonlyArray2<'py, f32>>() {
        let v = a.as_array();
        return Ok(Rows::Owned(Mat::from_fn(v.nrows(), v.ncols(), |i, j| {
            v[[i, j]] as f64
        })));
    }
    let np = x.py().import("numpy")?;
    let converted = np
        .call_method1("asarray", (x, "float64"))
        .map_err(|_| PyValueError::new_err(format!("{name}: expected a 2-D array of numbers")))?;
    let a = converted
        .extract::<PyReadonlyArray2<'py, f64>>()
        .map_err(|_| {
            PyValueError::new_err(format!(
                "{name}: expected a 2-D array (rows x columns), got {} dimensions",
                converted
                    .getattr("ndim")
                    .and_then(|d| d.extract::<usize>())
                    .unwrap_or(0)
            ))
        })?;
    let v = a.as_array();
    Ok(Rows::Owned(Mat::from_fn(v.nrows(), v.ncols(), |i, j| {
        v[[i, j]]
    })))
}

/// Reads a 1-D array of floats.
pub fn vector(x: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f64>> {
    if let Ok(a) = x.extract::<PyReadonlyArray1<'_, f64>>() {
        return Ok(a.as_array().to_vec());
    }
    if let Ok(a) = x.extract::<PyReadonlyArray1<'_, f32>>() {
        return Ok(a.as_array().iter().map(|&v| v as f64).collect());
    }
    let np = x.py().import("numpy")?;
    let a = np.call_method1("asarray", (x, "float64")).and_then(|c| {
        c.extract::<PyReadonlyArray1<'_, f64>>()
            .map(|a| a.as_array().to_vec())
    });
    a.map_err(|_| PyValueError::new_err(format!("{name}: expected a 1-D array of numbers")))
}

/// A matrix as a new NumPy array (the buffer is moved, not copied).
pub fn matrix<'py, T: Scalar + numpy::Element>(
    py: Python<'py>,
    m: Mat<T>,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let (r, c) = (m.rows(), m.cols());
    PyArray1::from_vec(py, m.into_vec()).reshape([r, c])
}

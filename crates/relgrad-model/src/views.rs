//! Passing other crates' matrices to relgrad without copying.
//!
//! relgrad's matrices are row-major: one sample per row, `B x D`. A borrowed
//! [`MatRef`] wraps any slice laid out that way, with a row stride:
//!
//! - **A `Vec<f64>` or slice** of `rows * cols` values, row by row:
//!   `MatRef::from_slice(&values, rows, cols)`.
//! - **ndarray** (feature `ndarray`): `from_ndarray` views an `ArrayView2` in standard
//!   (C, row-major) layout without copying; any other layout (Fortran order, a
//!   transposed or strided view) is copied once into a row-major `Mat`. Either way the
//!   result derefs to a [`MatRef`] through [`Rows::view`].
//! - **faer**: a `faer::MatRef<f64>` with row stride `rs` and column stride 1 (a
//!   row-major faer matrix) is `MatRef::from_slice_with_stride(slice, nrows, ncols, rs)`,
//!   where `slice` covers `(nrows - 1) * rs + ncols` values from `m.as_ptr()`; faer's
//!   default layout is column-major, whose transpose (`m.transpose()`) is row-major with
//!   the roles of rows and columns swapped: a `D x B` column-major faer matrix of column
//!   samples is a `B x D` row-major relgrad view of the same memory.
//! - **nalgebra** stores column-major: a `DMatrix<f64>` of shape `D x B` holding one
//!   sample per *column* is, byte for byte, a row-major `B x D` matrix of one sample per
//!   row: `MatRef::from_slice(m.as_slice(), m.ncols(), m.nrows())`, no copy. A
//!   `B x D` nalgebra matrix of row samples must be transposed (`m.transpose()`, a copy).

#[cfg(feature = "ndarray")]
use relgrad_core::Mat;
use relgrad_core::MatRef;

/// Rows borrowed when the layout allows, copied otherwise.
#[derive(Clone, Debug)]
pub enum Rows<'a> {
    /// A view of the caller's memory.
    Borrowed(MatRef<'a, f64>),
    /// A row-major copy.
    Owned(relgrad_core::Mat<f64>),
}

impl Rows<'_> {
    /// The rows as a view.
    pub fn view(&self) -> MatRef<'_, f64> {
        match self {
            Rows::Borrowed(m) => *m,
            Rows::Owned(m) => m.as_ref(),
        }
    }

    /// Whether the rows were copied.
    pub fn is_copy(&self) -> bool {
        matches!(self, Rows::Owned(_))
    }
}

/// Views an `ndarray` matrix (rows are samples) as relgrad rows: without copying when
/// it is in standard layout (C order, contiguous rows; a row-sliced view of a C-order
/// array also qualifies), else by copying once into row-major order.
#[cfg(feature = "ndarray")]
pub fn from_ndarray<'a>(a: ndarray::ArrayView2<'a, f64>) -> Rows<'a> {
    let (rows, cols) = a.dim();
    let strides = a.strides();
    let row_major = cols <= 1 || strides[1] == 1;
    if row_major && rows > 0 && cols > 0 && strides[0] >= cols as isize {
        let stride = strides[0] as usize;
        let len = (rows - 1) * stride + cols;
        // SAFETY: the view's first element is at `as_ptr()`, every element (i, j) lies at
        // offset i * stride + j < len within the same allocation (positive strides), and
        // the borrow lives as long as `a`'s lifetime 'a.
        let slice = unsafe { std::slice::from_raw_parts(a.as_ptr(), len) };
        return Rows::Borrowed(MatRef::from_slice_with_stride(slice, rows, cols, stride));
    }
    Rows::Owned(Mat::from_fn(rows, cols, |i, j| a[[i, j]]))
}

#[cfg(all(test, feature = "ndarray"))]
mod tests {
    use super::*;
    use ndarray::{s, Array2, ShapeBuilder};

    #[test]
    fn c_order_is_borrowed_and_other_layouts_are_copied() {
        let a = Array2::from_shape_fn((4, 3), |(i, j)| (10 * i + j) as f64);
        let r = from_ndarray(a.view());
        assert!(!r.is_copy());
        assert_eq!(r.view().get(2, 1), 21.0);
        let sliced = a.slice(s![1..3, ..]);
        let r = from_ndarray(sliced);
        assert!(!r.is_copy(), "row slices keep the row-major layout");
        assert_eq!(r.view().get(1, 2), 22.0);
        let f = Array2::from_shape_fn((4, 3).f(), |(i, j)| (10 * i + j) as f64);
        let r = from_ndarray(f.view());
        assert!(r.is_copy());
        assert_eq!(r.view().get(3, 2), 32.0);
        let t = a.t();
        let r = from_ndarray(t);
        assert!(r.is_copy());
        assert_eq!(r.view().get(2, 3), 32.0);
        let cols = a.slice(s![.., 1..]);
        let r = from_ndarray(cols);
        assert!(!r.is_copy(), "a column range is row-major with a stride");
        assert_eq!(r.view().get(3, 0), 31.0);
    }
}

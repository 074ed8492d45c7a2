//! Dense row-major matrices and the borrowed views every kernel takes.
//!
//! Storage is row-major with a row stride (`stride >= cols`): row `i` occupies
//! `data[i * stride .. i * stride + cols]`. A batch of `B` samples of dimension `D` is a
//! `B x D` matrix, one sample per row; a layer's weight is `D x D` and is applied as
//! `y = x W + b`. A prefix of rows of a matrix is again a valid matrix, which is how a
//! workspace sized for the largest batch serves smaller ones without reallocating.

use crate::scalar::Scalar;

/// An owned dense row-major matrix with contiguous rows.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Mat<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
}

/// A borrowed read-only view of a row-major matrix.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    stride: usize,
}

/// A borrowed mutable view of a row-major matrix.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    stride: usize,
}

fn needed(rows: usize, cols: usize, stride: usize) -> usize {
    if rows == 0 {
        0
    } else {
        (rows - 1) * stride + cols
    }
}

impl<T: Scalar> Mat<T> {
    /// A `rows x cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self {
            data: vec![T::zero(); rows * cols],
            rows,
            cols,
        }
    }

    /// The `n x n` identity.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m.data[i * n + i] = T::one();
        }
        m
    }

    /// Wraps a row-major vector. Panics if `data.len() != rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Self {
        assert_eq!(data.len(), rows * cols, "Mat::from_vec: length mismatch");
        Self { data, rows, cols }
    }

    /// Builds a matrix from a function of `(row, col)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for i in 0..rows {
            for j in 0..cols {
                data.push(f(i, j));
            }
        }
        Self { data, rows, cols }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major elements.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The row-major elements, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the matrix, returning its row-major elements.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// Element `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[i * self.cols + j]
    }

    /// Sets element `(i, j)`.
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: T) {
        self.data[i * self.cols + j] = v;
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[T] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i` as a mutable slice.
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// A read-only view of the whole matrix.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            data: &self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.cols,
        }
    }

    /// A mutable view of the whole matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: &mut self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.cols,
        }
    }

    /// A view of the first `n` rows (`n <= rows`).
    pub fn top(&self, n: usize) -> MatRef<'_, T> {
        self.as_ref().top(n)
    }

    /// A mutable view of the first `n` rows (`n <= rows`).
    pub fn top_mut(&mut self, n: usize) -> MatMut<'_, T> {
        self.as_mut().into_top(n)
    }

    /// The transpose, as a new matrix.
    pub fn transpose(&self) -> Self {
        Self::from_fn(self.cols, self.rows, |i, j| self.get(j, i))
    }

    /// Converts the element type (through `f64`).
    pub fn cast<U: Scalar>(&self) -> Mat<U> {
        Mat {
            data: self
                .data
                .iter()
                .map(|&x| U::from_f64c(x.to_f64c()))
                .collect(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

impl<'a, T: Scalar> MatRef<'a, T> {
    /// Views `data` as a `rows x cols` row-major matrix with row stride `stride`.
    /// Panics if the slice is too short or `stride < cols`.
    pub fn from_slice_with_stride(data: &'a [T], rows: usize, cols: usize, stride: usize) -> Self {
        assert!(
            stride >= cols || rows <= 1,
            "MatRef: stride smaller than cols"
        );
        assert!(
            data.len() >= needed(rows, cols, stride),
            "MatRef: slice too short"
        );
        Self {
            data,
            rows,
            cols,
            stride,
        }
    }

    /// Views a contiguous row-major slice.
    pub fn from_slice(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self::from_slice_with_stride(data, rows, cols, cols)
    }

    /// Number of rows.
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between the starts of consecutive rows.
    #[inline]
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// The underlying slice (its first element is `(0, 0)`).
    #[inline]
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }
    /// Element `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[i * self.stride + j]
    }
    /// Row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> &'a [T] {
        &self.data[i * self.stride..i * self.stride + self.cols]
    }
    /// The first `n` rows.
    pub fn top(self, n: usize) -> Self {
        assert!(n <= self.rows, "MatRef::top: out of range");
        Self { rows: n, ..self }
    }
    /// Rows `start..end`.
    pub fn rows_range(self, start: usize, end: usize) -> Self {
        assert!(
            start <= end && end <= self.rows,
            "MatRef::rows_range: out of range"
        );
        let data = if start == end {
            &self.data[..0]
        } else {
            &self.data[start * self.stride..]
        };
        Self {
            data,
            rows: end - start,
            ..self
        }
    }
    /// Whether rows are stored back to back (`stride == cols`).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.stride == self.cols || self.rows <= 1
    }
    /// Copies into an owned matrix.
    pub fn to_owned(&self) -> Mat<T> {
        Mat::from_fn(self.rows, self.cols, |i, j| self.get(i, j))
    }
}

impl<'a, T: Scalar> MatMut<'a, T> {
    /// Views `data` as a mutable `rows x cols` row-major matrix with row stride `stride`.
    pub fn from_slice_with_stride(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Self {
        assert!(
            stride >= cols || rows <= 1,
            "MatMut: stride smaller than cols"
        );
        assert!(
            data.len() >= needed(rows, cols, stride),
            "MatMut: slice too short"
        );
        Self {
            data,
            rows,
            cols,
            stride,
        }
    }

    /// Views a contiguous row-major slice mutably.
    pub fn from_slice(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self::from_slice_with_stride(data, rows, cols, cols)
    }

    /// Number of rows.
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between the starts of consecutive rows.
    #[inline]
    pub fn stride(&self) -> usize {
        self.stride
    }
    /// The underlying slice (its first element is `(0, 0)`).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.data
    }
    /// Element `(i, j)`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> T {
        self.data[i * self.stride + j]
    }
    /// Sets element `(i, j)`.
    #[inline]
    pub fn set(&mut self, i: usize, j: usize, v: T) {
        self.data[i * self.stride + j] = v;
    }
    /// Row `i`, mutably.
    #[inline]
    pub fn row_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.data[i * self.stride..i * self.stride + self.cols]
    }
    /// Consumes the view, returning the underlying slice (its first element is `(0, 0)`).
    pub fn into_slice(self) -> &'a mut [T] {
        self.data
    }
    /// A shorter-lived mutable view of the same matrix.
    pub fn rb_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }
    /// A read-only view of the same matrix.
    pub fn rb(&self) -> MatRef<'_, T> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }
    /// The first `n` rows.
    pub fn into_top(self, n: usize) -> Self {
        assert!(n <= self.rows, "MatMut::into_top: out of range");
        Self { rows: n, ..self }
    }
    /// Whether rows are stored back to back (`stride == cols`).
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.stride == self.cols || self.rows <= 1
    }
    /// Copies `src` (same shape) into this matrix.
    pub fn copy_from(&mut self, src: MatRef<'_, T>) {
        assert_eq!(
            (self.rows, self.cols),
            (src.rows(), src.cols()),
            "copy_from: shape mismatch"
        );
        for i in 0..self.rows {
            self.row_mut(i).copy_from_slice(src.row(i));
        }
    }
    /// Sets every element to `v`.
    pub fn fill(&mut self, v: T) {
        for i in 0..self.rows {
            self.row_mut(i).fill(v);
        }
    }
}

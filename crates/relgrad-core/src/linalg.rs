//! Small dense helpers that run once per model, not per step: column statistics,
//! Cholesky factorisation, triangular inversion and random orthogonal matrices.
//! They work in `f64` on plain row-major vectors; products go through a [`Backend`].

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::backend::{Backend, Trans};
use crate::collective::Collective;
use crate::error::{Error, Result};
use crate::matrix::{Mat, MatRef};
use crate::scalar::Scalar;
use crate::simd::{dot, madd, vectorized};

/// Column means and the (maximum-likelihood, divide-by-`N`) covariance of the rows of `x`,
/// both in `f64`. The centred product runs on the backend in `x`'s precision.
pub fn mean_cov<T: Scalar, B: Backend<T>>(
    backend: &B,
    x: MatRef<'_, T>,
) -> Result<(Vec<f64>, Mat<f64>)> {
    let (n, d) = (x.rows(), x.cols());
    if n < 2 {
        return Err(Error::NotEnoughData(format!(
            "a covariance needs at least 2 rows, got {n}"
        )));
    }
    let mut mean = vec![0.0f64; d];
    for i in 0..n {
        for (m, &v) in mean.iter_mut().zip(x.row(i)) {
            *m += v.to_f64c();
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let mut cov = centred_cross(backend, x, &mean, n as f64);
    symmetrise(&mut cov);
    Ok((mean, cov))
}

/// `(x - mean)^T (x - mean) / total`, the product on the backend in `x`'s precision.
fn centred_cross<T: Scalar, B: Backend<T>>(
    backend: &B,
    x: MatRef<'_, T>,
    mean: &[f64],
    total: f64,
) -> Mat<f64> {
    let (n, d) = (x.rows(), x.cols());
    let centred = Mat::<T>::from_fn(n, d, |i, j| T::from_f64c(x.get(i, j).to_f64c() - mean[j]));
    let mut cov_t = Mat::<T>::zeros(d, d);
    backend.gemm(
        T::from_f64c(1.0 / total),
        centred.as_ref(),
        Trans::Yes,
        centred.as_ref(),
        Trans::No,
        T::zero(),
        cov_t.as_mut(),
    );
    cov_t.cast::<f64>()
}

/// Makes a nearly symmetric matrix exactly symmetric.
fn symmetrise(cov: &mut Mat<f64>) {
    for i in 0..cov.rows() {
        for j in 0..i {
            let v = 0.5 * (cov.get(i, j) + cov.get(j, i));
            cov.set(i, j, v);
            cov.set(j, i, v);
        }
    }
}

/// [`mean_cov`] of the rows held by all processes of `comm` together (`x`: this
/// process's rows, possibly none): sums of this process's rows, added up across the
/// group. A single process gets [`mean_cov`] itself.
pub fn mean_cov_across<T: Scalar, B: Backend<T>, C: Collective>(
    backend: &B,
    x: MatRef<'_, T>,
    comm: &C,
) -> Result<(Vec<f64>, Mat<f64>)> {
    if comm.size() == 1 {
        return mean_cov(backend, x);
    }
    let (n, d) = (x.rows(), x.cols());
    let mut sums = vec![0.0f64; d + 1];
    for i in 0..n {
        for (m, &v) in sums.iter_mut().zip(x.row(i)) {
            *m += v.to_f64c();
        }
    }
    sums[d] = n as f64;
    comm.sum_in_place(&mut sums);
    let total = sums[d];
    if total < 2.0 {
        return Err(Error::NotEnoughData(format!(
            "a covariance needs at least 2 rows, got {total}"
        )));
    }
    let mean: Vec<f64> = sums[..d].iter().map(|s| s / total).collect();
    let mut cov = if n > 0 {
        centred_cross(backend, x, &mean, total)
    } else {
        Mat::<f64>::zeros(d, d)
    };
    comm.sum_in_place(cov.as_mut_slice());
    symmetrise(&mut cov);
    Ok((mean, cov))
}

/// The lower Cholesky factor `L` of a symmetric positive-definite `a` (`a = L L^T`).
/// Returns `None` if `a` is not numerically positive definite.
pub fn cholesky(a: &Mat<f64>) -> Option<Mat<f64>> {
    let n = a.rows();
    let mut l = Mat::<f64>::zeros(n, n);
    for j in 0..n {
        let mut s = a.get(j, j);
        for k in 0..j {
            s -= l.get(j, k) * l.get(j, k);
        }
        if s.is_nan() || s <= 0.0 || s.is_infinite() {
            return None;
        }
        let djj = s.sqrt();
        l.set(j, j, djj);
        for i in j + 1..n {
            let mut s = a.get(i, j);
            for k in 0..j {
                s -= l.get(i, k) * l.get(j, k);
            }
            l.set(i, j, s / djj);
        }
    }
    Some(l)
}

/// Cholesky of `a + ridge * I`, increasing the ridge (from `rel_ridge` times the mean
/// diagonal, tenfold each time) until the factorisation succeeds. Returns the factor
/// and the ridge used.
pub fn cholesky_ridged(a: &Mat<f64>, rel_ridge: f64) -> Result<(Mat<f64>, f64)> {
    let n = a.rows();
    let scale = (0..n).map(|i| a.get(i, i)).sum::<f64>() / n.max(1) as f64;
    let scale = if scale > 0.0 && scale.is_finite() {
        scale
    } else {
        1.0
    };
    let mut ridge = 0.0;
    for attempt in 0..12 {
        let mut b = a.clone();
        for i in 0..n {
            b.set(i, i, b.get(i, i) + ridge);
        }
        if let Some(l) = cholesky(&b) {
            return Ok((l, ridge));
        }
        ridge = scale * rel_ridge.max(1e-12) * 10f64.powi(attempt);
    }
    Err(Error::NotEnoughData(
        "the covariance is not positive definite even after regularisation".into(),
    ))
}

/// The inverse of a lower-triangular matrix with non-zero diagonal.
pub fn lower_inverse(l: &Mat<f64>) -> Mat<f64> {
    let n = l.rows();
    let mut inv = Mat::<f64>::zeros(n, n);
    for j in 0..n {
        inv.set(j, j, 1.0 / l.get(j, j));
        for i in j + 1..n {
            let mut s = 0.0;
            for k in j..i {
                s += l.get(i, k) * inv.get(k, j);
            }
            inv.set(i, j, -s / l.get(i, i));
        }
    }
    inv
}

/// A Haar-distributed random orthogonal `n x n` matrix: the Q of a Gaussian matrix's
/// QR decomposition (modified Gram-Schmidt, twice, with the signs of `R`'s diagonal
/// folded in).
pub fn random_orthogonal<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Mat<f64> {
    let mut cols: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..n).map(|_| StandardNormal.sample(rng)).collect())
        .collect();
    // Gram-Schmidt, twice per column; the dot products and updates in the widest
    // vectors the CPU has (an O(n^3) loop: scalar, n = 784 took seconds).
    vectorized(
        #[inline(always)]
        |fma| {
            for j in 0..n {
                for _pass in 0..2 {
                    for k in 0..j {
                        let (head, tail) = cols.split_at_mut(j);
                        let d = dot(fma, &tail[0], &head[k]);
                        for (a, &b) in tail[0].iter_mut().zip(&head[k]) {
                            *a = madd(fma, -d, b, *a);
                        }
                    }
                }
                let norm = dot(fma, &cols[j], &cols[j]).sqrt();
                for a in &mut cols[j] {
                    *a /= norm;
                }
            }
        },
    );
    Mat::from_fn(n, n, |i, j| cols[j][i])
}

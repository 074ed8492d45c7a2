//! Kernel-level checks every backend runs (from `tests/conformance.rs`): products for all
//! transposes, `alpha`/`beta`, strides and edge cases against plain loops; LU
//! log-determinants of known matrices, singular matrices, solve and inverse residuals,
//! workspace reuse. Deterministic inputs (a fixed linear congruential generator).
#![allow(dead_code)]

use relgrad::{Backend, LogDet, Mat, MatMut, MatRef, Scalar, Trans};

/// A deterministic generator of values in `[-1, 1)`.
pub struct Lcg(pub u64);
impl Lcg {
    /// The next value.
    pub fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// A `rows x cols` matrix stored with row stride `stride`, padding filled with `pad`.
pub fn strided<T: Scalar>(
    rng: &mut Lcg,
    rows: usize,
    cols: usize,
    stride: usize,
    pad: f64,
) -> Vec<T> {
    let mut v = vec![T::from_f64c(pad); rows * stride];
    for i in 0..rows {
        for j in 0..cols {
            v[i * stride + j] = T::from_f64c(rng.next());
        }
    }
    v
}

fn tol<T: Scalar>() -> f64 {
    if T::NAME == "f32" {
        2e-5
    } else {
        1e-13
    }
}

fn op<T: Scalar>(m: &MatRef<'_, T>, t: Trans, i: usize, j: usize) -> f64 {
    match t {
        Trans::No => m.get(i, j).to_f64c(),
        Trans::Yes => m.get(j, i).to_f64c(),
    }
}

#[allow(clippy::too_many_arguments)]
pub fn check_gemm_case<T: Scalar, B: Backend<T>>(
    be: &B,
    m: usize,
    n: usize,
    k: usize,
    ta: Trans,
    tb: Trans,
    alpha: f64,
    beta: f64,
    pad: usize,
) {
    let mut rng = Lcg((m * 1000 + n * 100 + k) as u64 + 7);
    let (ar, ac) = match ta {
        Trans::No => (m, k),
        Trans::Yes => (k, m),
    };
    let (br, bc) = match tb {
        Trans::No => (k, n),
        Trans::Yes => (n, k),
    };
    let (sa, sb, sc) = (ac + pad, bc + 2 * pad, n + pad);
    let a = strided::<T>(&mut rng, ar, ac, sa, f64::NAN);
    let b = strided::<T>(&mut rng, br, bc, sb, f64::NAN);
    let mut c = strided::<T>(&mut rng, m, n, sc, -7.0);
    if beta == 0.0 {
        for v in c.iter_mut() {
            *v = T::nan();
        }
    }
    let c0 = c.clone();
    let av = MatRef::from_slice_with_stride(&a, ar, ac, sa);
    let bv = MatRef::from_slice_with_stride(&b, br, bc, sb);
    be.gemm(
        T::from_f64c(alpha),
        av,
        ta,
        bv,
        tb,
        T::from_f64c(beta),
        MatMut::from_slice_with_stride(&mut c, m, n, sc),
    );
    let mut scale = 1.0f64;
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            let mut abs = 0.0;
            for l in 0..k {
                let p = op(&av, ta, i, l) * op(&bv, tb, l, j);
                s += p;
                abs += p.abs();
            }
            let old = if beta == 0.0 {
                0.0
            } else {
                beta * c0[i * sc + j].to_f64c()
            };
            let want = alpha * s + old;
            scale = scale.max(alpha.abs() * abs + old.abs());
            let got = c[i * sc + j].to_f64c();
            assert!(
                (got - want).abs() <= tol::<T>() * (alpha.abs() * abs + old.abs() + 1.0) * (k as f64 + 1.0).sqrt(),
                "{}: gemm {m}x{n}x{k} {ta:?} {tb:?} alpha {alpha} beta {beta}: C[{i},{j}] = {got}, want {want}",
                T::NAME
            );
        }
        // The padding of C is never touched.
        for j in n..sc {
            assert!(
                c[i * sc + j].to_f64c().to_bits() == c0[i * sc + j].to_f64c().to_bits(),
                "gemm wrote outside C"
            );
        }
    }
    let _ = scale;
}

pub fn check_gemm<T: Scalar, B: Backend<T>>(be: &B) {
    let shapes = [
        (1, 1, 1),
        (3, 4, 2),
        (2, 9, 7),
        (13, 9, 17),
        (8, 1, 30),
        (37, 70, 65),
        (6, 6, 6),
        (1, 12, 9),
    ];
    for &(m, n, k) in &shapes {
        for ta in [Trans::No, Trans::Yes] {
            for tb in [Trans::No, Trans::Yes] {
                for beta in [0.0, 1.0, 0.5] {
                    for pad in [0, 3] {
                        check_gemm_case::<T, B>(be, m, n, k, ta, tb, 1.5, beta, pad);
                    }
                }
                check_gemm_case::<T, B>(be, m, n, k, ta, tb, -1.0, 0.0, 1);
            }
        }
    }
}

pub fn check_gemm_edge<T: Scalar, B: Backend<T>>(be: &B) {
    // k == 0: C = beta C, and with beta == 0 C is zeroed without being read.
    let a = Mat::<T>::zeros(3, 0);
    let b = Mat::<T>::zeros(0, 4);
    let mut c = Mat::from_fn(3, 4, |_, _| T::nan());
    be.gemm(
        T::one(),
        a.as_ref(),
        Trans::No,
        b.as_ref(),
        Trans::No,
        T::zero(),
        c.as_mut(),
    );
    assert!(c.as_slice().iter().all(|&v| v == T::zero()));
    let mut c = Mat::from_fn(3, 4, |i, j| T::from_f64c((i + j) as f64));
    be.gemm(
        T::one(),
        a.as_ref(),
        Trans::No,
        b.as_ref(),
        Trans::No,
        T::from_f64c(0.5),
        c.as_mut(),
    );
    assert_eq!(c.get(2, 3), T::from_f64c(2.5));
    // Empty outputs are fine.
    let a = Mat::<T>::zeros(0, 5);
    let b = Mat::<T>::zeros(5, 4);
    let mut c = Mat::<T>::zeros(0, 4);
    be.gemm(
        T::one(),
        a.as_ref(),
        Trans::No,
        b.as_ref(),
        Trans::No,
        T::zero(),
        c.as_mut(),
    );
    // A single row may carry any stride (MatRef does not constrain it).
    let row = [T::one(), T::from_f64c(2.0), T::from_f64c(3.0)];
    let a = MatRef::from_slice_with_stride(&row, 1, 3, 0);
    let b = Mat::<T>::identity(3);
    let mut out = [T::nan(); 3];
    be.gemm(
        T::one(),
        a,
        Trans::No,
        b.as_ref(),
        Trans::No,
        T::zero(),
        MatMut::from_slice_with_stride(&mut out, 1, 3, 1),
    );
    assert_eq!(out, row);
}

/// Panics: a product of mismatched shapes is refused.
pub fn gemm_rejects_mismatched_shapes<B: Backend<f64>>(be: &B) {
    let a = Mat::<f64>::zeros(3, 4);
    let mut c = Mat::<f64>::zeros(3, 3);
    be.gemm(
        1.0,
        a.as_ref(),
        Trans::No,
        a.as_ref(),
        Trans::No,
        0.0,
        c.as_mut(),
    );
}

pub fn logdet<T: Scalar, B: Backend<T>>(be: &B, a: &Mat<T>) -> LogDet<T> {
    let mut lu = be.lu_workspace(a.rows());
    let before = a.clone();
    let ld = be.lu_factor(a.as_ref(), &mut lu);
    assert_eq!(&before, a, "lu_factor modified its input");
    ld
}

pub fn close(a: f64, b: f64, t: f64) -> bool {
    (a - b).abs() <= t * (1.0 + b.abs())
}

pub fn check_logdet_known<T: Scalar, B: Backend<T>>(be: &B) {
    let t = tol::<T>() * 10.0;
    // Diagonal, with one negative entry: det = 2 * -3 * 0.5 * 4 = -12.
    let d = [2.0, -3.0, 0.5, 4.0];
    let a = Mat::<T>::from_fn(4, 4, |i, j| {
        if i == j {
            T::from_f64c(d[i])
        } else {
            T::zero()
        }
    });
    let ld = logdet(be, &a);
    assert!(
        close(ld.log_abs.to_f64c(), 12f64.ln(), t) && ld.sign == -T::one(),
        "{ld:?}"
    );
    // Upper and lower triangular: det = product of the diagonal (no pivoting needed for
    // the upper one; the lower one pivots but keeps the determinant).
    let n = 7;
    let upper = Mat::<T>::from_fn(n, n, |i, j| {
        if i == j {
            T::from_f64c(1.0 + i as f64)
        } else if j > i {
            T::from_f64c(10.0 + (i * n + j) as f64)
        } else {
            T::zero()
        }
    });
    let want: f64 = (1..=n).map(|i| (i as f64).ln()).sum();
    let ld = logdet(be, &upper);
    assert!(
        close(ld.log_abs.to_f64c(), want, t) && ld.sign == T::one(),
        "{ld:?}"
    );
    let lower = upper.transpose();
    let ld = logdet(be, &lower);
    assert!(
        close(ld.log_abs.to_f64c(), want, t) && ld.sign == T::one(),
        "{ld:?}"
    );
    let mut neg = lower.clone();
    neg.set(3, 3, T::from_f64c(-4.0));
    let ld = logdet(be, &neg);
    assert!(
        close(ld.log_abs.to_f64c(), want, t) && ld.sign == -T::one(),
        "{ld:?}"
    );
    // Permutations: one swap has det -1, a 3-cycle +1, a swap of two rows of a larger
    // identity -1.
    let swap = Mat::<T>::from_vec(2, 2, vec![T::zero(), T::one(), T::one(), T::zero()]);
    let ld = logdet(be, &swap);
    assert!(
        ld.log_abs.to_f64c().abs() < t && ld.sign == -T::one(),
        "{ld:?}"
    );
    let cycle = Mat::<T>::from_fn(3, 3, |i, j| {
        if j == (i + 1) % 3 {
            T::one()
        } else {
            T::zero()
        }
    });
    let ld = logdet(be, &cycle);
    assert!(
        ld.log_abs.to_f64c().abs() < t && ld.sign == T::one(),
        "{ld:?}"
    );
    let perm = [4usize, 1, 2, 3, 0, 5, 6, 7, 8, 9];
    let p = Mat::<T>::from_fn(10, 10, |i, j| {
        if perm[i] == j {
            T::from_f64c(2.0)
        } else {
            T::zero()
        }
    });
    let ld = logdet(be, &p);
    assert!(
        close(ld.log_abs.to_f64c(), 10.0 * 2f64.ln(), t) && ld.sign == -T::one(),
        "{ld:?}"
    );
    // 2x2 general: det [[1, 2], [3, 4]] = -2.
    let a = Mat::<T>::from_vec(2, 2, [1.0, 2.0, 3.0, 4.0].map(T::from_f64c).to_vec());
    let ld = logdet(be, &a);
    assert!(
        close(ld.log_abs.to_f64c(), 2f64.ln(), t) && ld.sign == -T::one(),
        "{ld:?}"
    );
    // The empty matrix has determinant 1.
    let ld = logdet(be, &Mat::<T>::zeros(0, 0));
    assert!(ld.log_abs == T::zero() && ld.sign == T::one(), "{ld:?}");
}

pub fn check_singular<T: Scalar, B: Backend<T>>(be: &B) {
    let cases = [
        Mat::<T>::zeros(3, 3),
        Mat::<T>::from_vec(2, 2, [1.0, 2.0, 2.0, 4.0].map(T::from_f64c).to_vec()),
        // A zero column in a matrix large enough for the blocked paths.
        Mat::<T>::from_fn(150, 150, |i, j| {
            if j == 100 {
                T::zero()
            } else {
                T::from_f64c(if i == j {
                    3.0
                } else {
                    ((i * 7 + j * 13) % 17) as f64 / 17.0
                })
            }
        }),
    ];
    for a in &cases {
        let ld = logdet(be, a);
        assert!(ld.is_singular() && ld.sign == T::zero(), "{ld:?}");
        assert!(ld.log_abs == T::neg_infinity(), "{ld:?}");
    }
}

/// A well-conditioned, non-symmetric random matrix.
pub fn random_matrix<T: Scalar>(rng: &mut Lcg, n: usize) -> Mat<T> {
    Mat::from_fn(n, n, |i, j| {
        T::from_f64c(
            rng.next() + if i == j { 2.0 } else { 0.0 } + if j == i + 1 { 1.0 } else { 0.0 },
        )
    })
}

/// `log|det A|` and its sign by Gaussian elimination with partial pivoting in `f64`.
pub fn reference_logdet<T: Scalar>(a: &Mat<T>) -> (f64, f64) {
    let n = a.rows();
    let mut m: Vec<f64> = a.as_slice().iter().map(|v| v.to_f64c()).collect();
    let (mut log_abs, mut sign) = (0.0, 1.0);
    for j in 0..n {
        let p = (j..n)
            .max_by(|&x, &y| m[x * n + j].abs().total_cmp(&m[y * n + j].abs()))
            .unwrap();
        if p != j {
            for c in 0..n {
                m.swap(j * n + c, p * n + c);
            }
            sign = -sign;
        }
        let d = m[j * n + j];
        if d < 0.0 {
            sign = -sign;
        }
        log_abs += d.abs().ln();
        for i in j + 1..n {
            let l = m[i * n + j] / d;
            for c in j..n {
                m[i * n + c] -= l * m[j * n + c];
            }
        }
    }
    (log_abs, sign)
}

/// `max |A X - B|` relative to `|A| |X| + |B|`, row-major `X`, `B` with strides.
pub fn residual<T: Scalar>(a: &Mat<T>, x: &[T], sx: usize, b: &[T], sb: usize, k: usize) -> f64 {
    let n = a.rows();
    let mut worst = 0.0f64;
    for i in 0..n {
        for j in 0..k {
            let mut s = 0.0;
            let mut abs = 0.0;
            for l in 0..n {
                let p = a.get(i, l).to_f64c() * x[l * sx + j].to_f64c();
                s += p;
                abs += p.abs();
            }
            let bij = b[i * sb + j].to_f64c();
            worst = worst.max((s - bij).abs() / (abs + bij.abs()));
        }
    }
    worst
}

pub fn check_solve_inverse<T: Scalar, B: Backend<T>>(be: &B) {
    let bound = if T::NAME == "f32" { 1e-4 } else { 1e-12 };
    let mut rng = Lcg(42);
    for &n in &[1usize, 2, 5, 33, 64, 65, 150] {
        let a = random_matrix::<T>(&mut rng, n);
        let mut lu = be.lu_workspace(n);
        let ld = be.lu_factor(a.as_ref(), &mut lu);
        let (want, sign) = reference_logdet(&a);
        assert!(
            close(ld.log_abs.to_f64c(), want, bound * 10.0) && ld.sign.to_f64c() == sign,
            "{} n={n}: {ld:?} vs ({want}, {sign})",
            T::NAME
        );
        // Solve with a strided right-hand side, then more columns than ever before, then
        // a single column.
        for &(k, stride) in &[(3usize, 5usize), (n + 7, n + 9), (1, 1)] {
            let b = strided::<T>(&mut rng, n, k, stride, f64::NAN);
            let mut x = b.clone();
            be.lu_solve(
                &mut lu,
                MatMut::from_slice_with_stride(&mut x, n, k, stride),
            );
            let r = residual(&a, &x, stride, &b, stride, k);
            assert!(r < bound, "{} n={n} k={k}: solve residual {r}", T::NAME);
            for i in 0..n {
                for j in k..stride {
                    assert!(x[i * stride + j].is_nan(), "lu_solve wrote outside b");
                }
            }
        }
        // Inverse into a strided output: A A^{-1} = I; then a solve still works.
        let so = n + 4;
        let mut inv = vec![T::nan(); n * so];
        be.lu_inverse(&mut lu, MatMut::from_slice_with_stride(&mut inv, n, n, so));
        let eye = Mat::<T>::identity(n);
        let r = residual(&a, &inv, so, eye.as_slice(), n, n);
        assert!(r < bound, "{} n={n}: inverse residual {r}", T::NAME);
        for i in 0..n {
            for j in n..so {
                assert!(inv[i * so + j].is_nan(), "lu_inverse wrote outside out");
            }
        }
        let b = strided::<T>(&mut rng, n, 2, 2, 0.0);
        let mut x = b.clone();
        be.lu_solve(&mut lu, MatMut::from_slice(&mut x, n, 2));
        let r = residual(&a, &x, 2, &b, 2, 2);
        assert!(
            r < bound,
            "{} n={n}: solve after inverse, residual {r}",
            T::NAME
        );
        // Solving with A, not A^T: compare against the product A x.
        if n > 1 {
            let at = a.transpose();
            let mut lu_t = be.lu_workspace(n);
            be.lu_factor(at.as_ref(), &mut lu_t);
            let mut y = b.clone();
            be.lu_solve(&mut lu_t, MatMut::from_slice(&mut y, n, 2));
            assert!(residual(&at, &y, 2, &b, 2, 2) < bound);
            let diff = x
                .iter()
                .zip(&y)
                .map(|(p, q)| (p.to_f64c() - q.to_f64c()).abs())
                .fold(0.0, f64::max);
            assert!(
                diff > 1e-3,
                "solutions with A and A^T coincide: the test matrix is too symmetric"
            );
        }
    }
}

/// One LU workspace serves several factorisations, also after a singular matrix.
pub fn workspace_is_reusable<B: Backend<f64>>(be: &B) {
    let mut rng = Lcg(3);
    let mut lu = be.lu_workspace(20);
    for _ in 0..3 {
        let a = random_matrix::<f64>(&mut rng, 20);
        let ld = be.lu_factor(a.as_ref(), &mut lu);
        let (want, sign) = reference_logdet(&a);
        assert!(close(ld.log_abs, want, 1e-12) && ld.sign == sign);
    }
    // A singular matrix followed by a regular one.
    be.lu_factor(Mat::<f64>::zeros(20, 20).as_ref(), &mut lu);
    let a = random_matrix::<f64>(&mut rng, 20);
    let ld = be.lu_factor(a.as_ref(), &mut lu);
    assert!(close(ld.log_abs, reference_logdet(&a).0, 1e-12));
}

/// OpenBLAS's threaded getrf overflows ordinary thread stacks (see the crate docs): the
/// factorisation must stay sequential, and everything else must fit in a small stack.
pub fn threaded_calls_fit_in_a_small_thread_stack<B: Backend<f32> + Backend<f64> + 'static>(be: B) {
    let worker = std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(move || {
            let n = 200;
            let mut rng = Lcg(11);
            let a = random_matrix::<f64>(&mut rng, n);
            let mut lu = Backend::<f64>::lu_workspace(&be, n);
            let mut inv = Mat::<f64>::zeros(n, n);
            for _ in 0..3 {
                let ld = be.lu_factor(a.as_ref(), &mut lu);
                assert!(close(ld.log_abs, reference_logdet(&a).0, 1e-12));
                be.lu_inverse(&mut lu, inv.as_mut());
                let b = strided::<f64>(&mut rng, n, 3, 3, 0.0);
                let mut x = b.clone();
                be.lu_solve(&mut lu, MatMut::from_slice(&mut x, n, 3));
                let eye = Mat::<f64>::identity(n);
                assert!(residual(&a, &x, 3, &b, 3, 3) < 1e-12);
                assert!(residual(&a, inv.as_slice(), n, eye.as_slice(), n, n) < 1e-12);
                let a32: Mat<f32> = a.cast();
                let mut lu32 = Backend::<f32>::lu_workspace(&be, n);
                be.lu_factor(a32.as_ref(), &mut lu32);
            }
        })
        .unwrap();
    worker.join().unwrap();
}

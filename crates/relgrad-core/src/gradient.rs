//! Gradients of the mean log-likelihood: the relative gradient (the method) and the
//! naive Euclidean gradient (the baseline and test oracle).
//!
//! Both share one forward pass and one backward pass (`Delta_l`, see
//! `docs/algorithm.md`). They differ per layer:
//! - relative: `R_W = W (Y^T Delta) + W`, `R_b = Delta^T (1 + Y b) + b`: no inverse; the
//!   product order is chosen by batch size, `(W Y^T) Delta` when `B <= D`;
//! - naive: `G_W = H^T Delta + W^{-T}` (an LU inverse, `O(D^3)`), `G_b = Delta^T 1`.
//!
//! With spline activations both also write the ordinary gradient of every spline
//! parameter (see [`crate::spline`]): the splines change `Delta` only through their
//! slopes `sigma'` and `kappa = d ln sigma' / dy`, so the weights' directions keep their
//! form. A mixture base likewise only changes `Delta_L`, the score of the latents, and
//! writes the ordinary gradient of its parameters (see [`crate::mixture`]).
//!
//! Results land in [`Workspace::grad`]; nothing is allocated once the workspace exists
//! (the naive gradient allocates its LU workspace on first use).

use crate::backend::{Backend, Trans};
use crate::error::{Error, Result};
use crate::matrix::{MatMut, MatRef};
use crate::mlp::InvertibleMlp;
use crate::scalar::Scalar;
use crate::simd::{dot, madd, vectorized};
use crate::workspace::Workspace;

/// Which gradient drives training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GradientKind {
    /// The relative gradient `A A^T dJ/dA`: `O(B D^2)` per layer. The default.
    #[default]
    Relative,
    /// The Euclidean gradient with an LU inverse per layer: `O(D^3)`, for comparison.
    Naive,
}

impl GradientKind {
    /// `"relative"` or `"naive"`.
    pub fn name(&self) -> &'static str {
        match self {
            GradientKind::Relative => "relative",
            GradientKind::Naive => "naive",
        }
    }
}

pub(crate) fn check<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    x: &MatRef<'_, T>,
    ws: &Workspace<T, B>,
) -> Result<()> {
    if x.cols() != model.dim() {
        return Err(Error::DimensionMismatch {
            expected: model.dim(),
            found: x.cols(),
        });
    }
    if x.rows() == 0 {
        return Err(Error::NotEnoughData(
            "an empty batch has no gradient".into(),
        ));
    }
    if !ws.fits(model, x.rows()) {
        return Err(Error::InvalidConfig(format!(
            "workspace for D = {}, L = {}, batch <= {} does not fit a model with D = {}, L = {} and a batch of {}",
            ws.dim,
            ws.y.len(),
            ws.capacity,
            model.dim(),
            model.n_layers(),
            x.rows()
        )));
    }
    Ok(())
}

/// Fills every row of the contiguous `rows x row.len()` matrix `y` with `row`: one
/// copy, then copies that double the filled part, so a few long `memcpy`s instead of one
/// short one per row.
fn fill_rows<T: Scalar>(y: &mut [T], row: &[T]) {
    let (cols, len) = (row.len(), y.len());
    if len == 0 {
        return;
    }
    y[..cols].copy_from_slice(row);
    let mut filled = cols;
    while filled < len {
        let count = filled.min(len - filled);
        y.copy_within(..count, filled);
        filled += count;
    }
}

/// `out += m^T v` for `v` of length `m.rows()`.
fn add_transposed_times<T: Scalar>(m: MatRef<'_, T>, v: &[T], out: &mut [T]) {
    let cols = m.cols();
    let out = &mut out[..cols];
    vectorized(
        #[inline(always)]
        |fma| {
            for (i, &vi) in v.iter().enumerate().take(m.rows()) {
                for (o, &x) in out.iter_mut().zip(m.row(i)) {
                    *o = madd(fma, x, vi, *o);
                }
            }
        },
    );
}

/// Adds the column sums of the contiguous `rows x out.len()` matrix `m` to `out`, by
/// halving: the top half of the rows plus the bottom half into `scratch` (at least
/// half of `m`'s length), then again in place. Every pass is one long loop over
/// contiguous memory, which vectorises whatever the row length; a loop over each short
/// row would not.
fn add_column_sums<T: Scalar>(m: &[T], scratch: &mut [T], out: &mut [T]) {
    let cols = out.len();
    if cols == 0 {
        return;
    }
    #[inline(always)]
    fn add_row<T: Scalar>(out: &mut [T], row: &[T]) {
        for (o, &v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
    vectorized(
        #[inline(always)]
        |_| {
            let mut rows = m.len() / cols;
            let half = rows / 2;
            let (top, rest) = m.split_at(half * cols);
            let (dst, src) = (&mut scratch[..half * cols], &rest[..half * cols]);
            for ((d, &a), &b) in dst.iter_mut().zip(top).zip(src) {
                *d = a + b;
            }
            if rows % 2 == 1 {
                add_row(out, &rest[half * cols..]);
            }
            rows = half;
            while rows > 1 {
                let half = rows / 2;
                let (dst, rest) = scratch.split_at_mut(half * cols);
                for (d, &b) in dst.iter_mut().zip(&rest[..half * cols]) {
                    *d += b;
                }
                if rows % 2 == 1 {
                    add_row(out, &rest[half * cols..(half + 1) * cols]);
                }
                rows = half;
            }
            if rows == 1 {
                add_row(out, &scratch[..cols]);
            }
        },
    );
}

/// The relative gradient of a bias from its layer's `Y` and `Delta`, by the `B <= D`
/// formula: `R_b = Delta^T v (+ b if prior)` with `v = 1 + Y b` (in `v`, one per row).
pub(crate) fn bias_direction<T: Scalar>(
    y: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    bias: &[T],
    prior: bool,
    v: &mut [T],
    out: &mut [T],
) {
    vectorized(
        #[inline(always)]
        |fma| {
            for (i, vi) in v.iter_mut().enumerate() {
                *vi = T::one() + dot(fma, y.row(i), bias);
            }
        },
    );
    if prior {
        out.copy_from_slice(bias);
    } else {
        out.fill(T::zero());
    }
    add_transposed_times(delta, v, out);
}

/// Forward pass for training: fills `Y_l` (bias included), `H_l`, `sigma'(Y_l)`,
/// `kappa(Y_l)`, and `Delta_L = psi(Z) / B` (with a mixture base, also the gradient of
/// its parameters).
pub(crate) fn forward_train<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
    inv_b: T,
) {
    let n = x.rows();
    let len = n * ws.dim;
    let act = model.activation();
    let n_layers = model.n_layers();
    for (l, layer) in model.layers().iter().enumerate() {
        // Y = 1 b^T, then Y += H W: the bias costs no pass of its own.
        let beta = if model.use_bias() {
            fill_rows(&mut ws.y[l].as_mut_slice()[..len], &layer.bias);
            T::one()
        } else {
            T::zero()
        };
        let input = if l == 0 { x } else { ws.h[l - 1].top(n) };
        backend.gemm(
            T::one(),
            input,
            Trans::No,
            layer.weight.as_ref(),
            Trans::No,
            beta,
            ws.y[l].top_mut(n),
        );
        let y = &ws.y[l].as_slice()[..len];
        if l + 1 < n_layers {
            let (h, dsig, kappa) = (
                &mut ws.h[l].as_mut_slice()[..len],
                &mut ws.dsig[l].as_mut_slice()[..len],
                &mut ws.kappa[l].as_mut_slice()[..len],
            );
            match ws.knots.get_mut(l) {
                Some(knots) => {
                    knots.update(model.splines()[l].as_slice());
                    knots.forward_train(y, h, dsig, kappa);
                }
                None => act.forward_train(y, h, dsig, kappa),
            }
        } else {
            let delta = &mut ws.delta.as_mut_slice()[..len];
            match (&mut ws.mixture, model.base_params(), &mut ws.grad.base) {
                (Some(mixture), Some(params), Some(grad)) => {
                    mixture.update(params.as_slice());
                    mixture.score_and_gradient(y, inv_b, delta, grad.as_mut_slice());
                }
                _ => model.base().score_scaled(y, inv_b, delta),
            }
        }
    }
}

/// Runs the forward and backward passes, calling `per_layer(l, delta_l, ws)` for
/// `l = L-1 .. 0` with `Delta_l` (already multiplied by `inv_b`, one over the batch
/// size) while it is valid.
fn backward<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
    inv_b: T,
    mut per_layer: impl FnMut(usize, &mut Workspace<T, B>),
) {
    let n = x.rows();
    let d = ws.dim;
    let len = n * d;
    forward_train(model, backend, x, ws, inv_b);
    let n_layers = model.n_layers();
    for l in (0..n_layers).rev() {
        per_layer(l, ws);
        if l == 0 {
            break;
        }
        // Delta_{l-1} = (Delta_l W_l^T) .* sigma'(Y_{l-1}) + kappa(Y_{l-1}) / B
        backend.gemm(
            T::one(),
            ws.delta.top(n),
            Trans::No,
            model.layers()[l].weight.as_ref(),
            Trans::Yes,
            T::zero(),
            ws.delta_tmp.top_mut(n),
        );
        let tmp = &ws.delta_tmp.as_slice()[..len];
        if let Some(knots) = ws.knots.get_mut(l - 1) {
            // `tmp` is the gradient with respect to H_{l-1}, the splines' outputs.
            let y = &ws.y[l - 1].as_slice()[..len];
            let out = ws.grad.splines[l - 1].as_mut_slice();
            knots.backward(y, tmp, inv_b, out);
        }
        let ds = &ws.dsig[l - 1].as_slice()[..len];
        let ka = &ws.kappa[l - 1].as_slice()[..len];
        let out = &mut ws.delta.as_mut_slice()[..len];
        vectorized(
            #[inline(always)]
            |fma| {
                for i in 0..len {
                    out[i] = madd(fma, tmp[i], ds[i], ka[i] * inv_b);
                }
            },
        );
    }
}

/// The relative gradient of the mean log-likelihood of the batch `x` (rows are samples),
/// written to `ws.grad`: an ascent direction, `A A^T dJ/dA` per layer, including the
/// log-determinant terms `+W` and `+b`. Cost: `4L - 1` products of `B x D` by `D x D`.
pub fn relative_gradient<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
) -> Result<()> {
    check(model, &x, ws)?;
    relative_part(model, backend, x, inv_batch(x.rows()), true, ws);
    Ok(())
}

/// One over a batch size.
pub(crate) fn inv_batch<T: Scalar>(n: usize) -> T {
    T::one() / T::from_usize(n).expect("batch size fits the scalar")
}

/// The relative gradient's terms from the rows `x` (checked, non-empty), each row weighted
/// `inv_b`, plus the log-determinant terms `+W`, `+b` if `prior`.
fn relative_part<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    inv_b: T,
    prior: bool,
    ws: &mut Workspace<T, B>,
) {
    let n = x.rows();
    let d = model.dim();
    backward(model, backend, x, ws, inv_b, |l, ws| {
        let layer = &model.layers()[l];
        let w = layer.weight.as_ref();
        let y = ws.y[l].top(n);
        let delta = ws.delta.top(n);
        let gw = &mut ws.grad.weights[l];
        let gb = &mut ws.grad.biases[l];
        if n <= d {
            // (W Y^T) Delta + W: two B D^2 products.
            if prior {
                gw.as_mut_slice().copy_from_slice(layer.weight.as_slice());
            } else {
                gw.as_mut_slice().fill(T::zero());
            }
            let mut wy = MatMut::from_slice(&mut ws.prod[..d * n], d, n);
            backend.gemm(
                T::one(),
                w,
                Trans::No,
                y,
                Trans::Yes,
                T::zero(),
                wy.rb_mut(),
            );
            backend.gemm(
                T::one(),
                wy.rb(),
                Trans::No,
                delta,
                Trans::No,
                T::one(),
                gw.as_mut(),
            );
            if model.use_bias() {
                bias_direction(y, delta, &layer.bias, prior, &mut ws.rowvec[..n], gb);
            }
        } else {
            // W (Y^T Delta + I): B D^2 + D^3, cheaper when B > D; the identity stands
            // for the `+ W` term.
            let mut yd = MatMut::from_slice(&mut ws.prod[..d * d], d, d);
            backend.gemm(
                T::one(),
                y,
                Trans::Yes,
                delta,
                Trans::No,
                T::zero(),
                yd.rb_mut(),
            );
            if prior {
                for i in 0..d {
                    yd.set(i, i, yd.get(i, i) + T::one());
                }
            }
            backend.gemm(
                T::one(),
                w,
                Trans::No,
                yd.rb(),
                Trans::No,
                T::zero(),
                gw.as_mut(),
            );
            if model.use_bias() {
                // R_b = Delta^T (1 + Y b) + b = Delta^T 1 + (Y^T Delta + I)^T b: the
                // product already made replaces a pass over Y.
                gb.fill(T::zero());
                let delta = &ws.delta.as_slice()[..n * d];
                add_column_sums(delta, ws.delta_tmp.as_mut_slice(), gb);
                add_transposed_times(yd.rb(), &layer.bias, gb);
            }
        }
        if !model.use_bias() {
            gb.fill(T::zero());
        }
    });
}

/// The Euclidean gradient `dJ/dW_l = H_{l-1}^T Delta_l + W_l^{-T}`, `dJ/db_l = Delta_l^T 1`,
/// with the inverse from an LU factorisation: the `O(D^3)` baseline and the oracle the
/// relative gradient is tested against. Written to `ws.grad`.
pub fn naive_gradient<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
) -> Result<()> {
    check(model, &x, ws)?;
    naive_part(model, backend, x, inv_batch(x.rows()), true, ws)
}

/// The naive gradient's terms from the rows `x` (checked; empty only if `prior`), each
/// row weighted `inv_b`, plus the log-determinant terms `W^{-T}` if `prior`.
fn naive_part<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    inv_b: T,
    prior: bool,
    ws: &mut Workspace<T, B>,
) -> Result<()> {
    let n = x.rows();
    let d = model.dim();
    if !prior {
        ws.grad
            .weights
            .iter_mut()
            .for_each(|w| w.as_mut_slice().fill(T::zero()));
    }
    if ws.lu.is_none() && prior {
        ws.lu = Some((backend.lu_workspace(d), crate::matrix::Mat::zeros(d, d)));
    }
    let mut singular = None;
    let mut inverse_transposed = |l: usize, ws: &mut Workspace<T, B>| {
        let layer = &model.layers()[l];
        let (lu, inv) = ws.lu.as_mut().expect("made above");
        let ld = backend.lu_factor(layer.weight.as_ref(), lu);
        if ld.is_singular() {
            singular.get_or_insert(l);
            return false;
        }
        backend.lu_inverse(lu, inv.as_mut());
        let gw = &mut ws.grad.weights[l];
        for i in 0..d {
            for j in 0..d {
                gw.set(i, j, inv.get(j, i));
            }
        }
        true
    };
    if n == 0 {
        for l in 0..model.n_layers() {
            if prior {
                inverse_transposed(l, ws);
            }
            ws.grad.biases[l].fill(T::zero());
        }
        zero_elementwise(ws);
        return singular.map_or(Ok(()), |layer| Err(Error::Singular { layer }));
    }
    backward(model, backend, x, ws, inv_b, |l, ws| {
        if prior && !inverse_transposed(l, ws) {
            return;
        }
        let gw = &mut ws.grad.weights[l];
        let input = if l == 0 { x } else { ws.h[l - 1].top(n) };
        let delta = ws.delta.top(n);
        backend.gemm(
            T::one(),
            input,
            Trans::Yes,
            delta,
            Trans::No,
            T::one(),
            gw.as_mut(),
        );
        let gb = &mut ws.grad.biases[l];
        gb.fill(T::zero());
        if model.use_bias() {
            add_column_sums(
                &ws.delta.as_slice()[..n * d],
                ws.delta_tmp.as_mut_slice(),
                gb,
            );
        }
    });
    singular.map_or(Ok(()), |layer| Err(Error::Singular { layer }))
}

/// Zeroes the spline and mixture-base parameters' gradient (a share of no rows has none:
/// they add no term of their own besides the rows').
fn zero_elementwise<T: Scalar, B: Backend<T>>(ws: &mut Workspace<T, B>) {
    for g in ws.grad.splines.iter_mut().chain(&mut ws.grad.base) {
        g.as_mut_slice().fill(T::zero());
    }
}

/// Computes the chosen gradient into `ws.grad`.
pub fn gradient<T: Scalar, B: Backend<T>>(
    kind: GradientKind,
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
) -> Result<()> {
    match kind {
        GradientKind::Relative => relative_gradient(model, backend, x, ws),
        GradientKind::Naive => naive_gradient(model, backend, x, ws),
    }
}

/// One process's share of the gradient of the mean log-likelihood of a batch of `total`
/// rows split across processes (data-parallel training, see [`crate::collective`]): the
/// terms of this process's rows `x` (possibly none), each weighted `1 / total`, plus the
/// log-determinant terms if `prior` (exactly one process adds them). The shares of all
/// processes add up to [`gradient`] of the whole batch. Written to `ws.grad`.
pub fn partial_gradient<T: Scalar, B: Backend<T>>(
    kind: GradientKind,
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    total: usize,
    prior: bool,
    ws: &mut Workspace<T, B>,
) -> Result<()> {
    if x.rows() > 0 {
        check(model, &x, ws)?;
    } else if x.cols() != model.dim() {
        return Err(Error::DimensionMismatch {
            expected: model.dim(),
            found: x.cols(),
        });
    }
    if total < x.rows().max(1) {
        return Err(Error::InvalidConfig(format!(
            "a share of {} rows of a batch of {total}",
            x.rows()
        )));
    }
    let inv_b = inv_batch(total);
    match kind {
        GradientKind::Naive => naive_part(model, backend, x, inv_b, prior, ws),
        GradientKind::Relative if x.rows() == 0 => {
            let g = &mut ws.grad;
            for (l, layer) in model.layers().iter().enumerate() {
                if prior {
                    g.weights[l]
                        .as_mut_slice()
                        .copy_from_slice(layer.weight.as_slice());
                    g.biases[l].copy_from_slice(&layer.bias);
                } else {
                    g.weights[l].as_mut_slice().fill(T::zero());
                    g.biases[l].fill(T::zero());
                }
            }
            zero_elementwise(ws);
            Ok(())
        }
        GradientKind::Relative => {
            relative_part(model, backend, x, inv_b, prior, ws);
            Ok(())
        }
    }
}

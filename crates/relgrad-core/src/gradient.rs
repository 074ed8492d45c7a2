//! Gradients of the mean log-likelihood: the relative gradient (the method) and the
//! naive Euclidean gradient (the baseline and test oracle).
//!
//! Both share one forward pass and one backward pass (`Delta_l`, see
//! `docs/algorithm.md`). They differ per layer:
//! - relative: `R_W = W (Y^T Delta) + W`, `R_b = Delta^T (1 + Y b) + b`: no inverse; the
//!   product order is chosen by batch size, `(W Y^T) Delta` when `B <= D`;
//! - naive: `G_W = H^T Delta + W^{-T}` (an LU inverse, `O(D^3)`), `G_b = Delta^T 1`.
//!
//! Results land in [`Workspace::grad`]; nothing is allocated once the workspace exists
//! (the naive gradient allocates its LU workspace on first use).

use crate::backend::{Backend, Trans};
use crate::error::{Error, Result};
use crate::matrix::{MatMut, MatRef};
use crate::mlp::InvertibleMlp;
use crate::scalar::Scalar;
use crate::simd::{dot, vectorized};
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

fn check<T: Scalar, B: Backend<T>>(
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

/// Adds `bias` to every row of `y`.
fn add_bias<T: Scalar>(mut y: MatMut<'_, T>, bias: &[T]) {
    vectorized(
        #[inline(always)]
        || {
            for i in 0..y.rows() {
                for (v, &b) in y.row_mut(i).iter_mut().zip(bias) {
                    *v += b;
                }
            }
        },
    );
}

/// Adds the column sums of `m` to `out`.
fn add_column_sums<T: Scalar>(m: MatRef<'_, T>, out: &mut [T]) {
    vectorized(
        #[inline(always)]
        || {
            for i in 0..m.rows() {
                for (g, &v) in out.iter_mut().zip(m.row(i)) {
                    *g += v;
                }
            }
        },
    );
}

/// Forward pass for training: fills `Y_l`, `H_l`, `sigma'(Y_l)`, `kappa(Y_l)`.
fn forward_train<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
) {
    let n = x.rows();
    let act = model.activation();
    let n_layers = model.n_layers();
    for (l, layer) in model.layers().iter().enumerate() {
        let (h_prev, y_rest) = (&ws.h, &mut ws.y);
        let input = if l == 0 { x } else { h_prev[l - 1].top(n) };
        let mut y = y_rest[l].top_mut(n);
        backend.gemm(
            T::one(),
            input,
            Trans::No,
            layer.weight.as_ref(),
            Trans::No,
            T::zero(),
            y.rb_mut(),
        );
        if model.use_bias() {
            add_bias(y.rb_mut(), &layer.bias);
        }
        if l + 1 < n_layers {
            let len = n * ws.dim;
            act.forward_train(
                &ws.y[l].as_slice()[..len],
                &mut ws.h[l].as_mut_slice()[..len],
                &mut ws.dsig[l].as_mut_slice()[..len],
                &mut ws.kappa[l].as_mut_slice()[..len],
            );
        }
    }
}

/// Runs the forward and backward passes, calling `per_layer(l, delta_l, ws)` for
/// `l = L-1 .. 0` with `Delta_l` (already divided by `B`) while it is valid.
fn backward<T: Scalar, B: Backend<T>>(
    model: &InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
    mut per_layer: impl FnMut(usize, &mut Workspace<T, B>),
) {
    let n = x.rows();
    let d = ws.dim;
    let len = n * d;
    let inv_b = T::one() / T::from_usize(n).expect("batch size fits the scalar");
    forward_train(model, backend, x, ws);
    let n_layers = model.n_layers();
    model.base().score_scaled(
        &ws.y[n_layers - 1].as_slice()[..len],
        inv_b,
        &mut ws.delta.as_mut_slice()[..len],
    );
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
        let ds = &ws.dsig[l - 1].as_slice()[..len];
        let ka = &ws.kappa[l - 1].as_slice()[..len];
        let out = &mut ws.delta.as_mut_slice()[..len];
        vectorized(
            #[inline(always)]
            || {
                for i in 0..len {
                    out[i] = tmp[i] * ds[i] + ka[i] * inv_b;
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
    let n = x.rows();
    let d = model.dim();
    backward(model, backend, x, ws, |l, ws| {
        let layer = &model.layers()[l];
        let w = layer.weight.as_ref();
        let y = ws.y[l].top(n);
        let delta = ws.delta.top(n);
        let gw = &mut ws.grad.weights[l];
        gw.as_mut_slice().copy_from_slice(layer.weight.as_slice());
        if n <= d {
            // (W Y^T) Delta: two B D^2 products.
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
        } else {
            // W (Y^T Delta): B D^2 + D^3, cheaper when B > D.
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
            backend.gemm(
                T::one(),
                w,
                Trans::No,
                yd.rb(),
                Trans::No,
                T::one(),
                gw.as_mut(),
            );
        }
        let gb = &mut ws.grad.biases[l];
        if model.use_bias() {
            // R_b = Delta^T (1 + Y b) + b
            let v = &mut ws.rowvec[..n];
            gb.copy_from_slice(&layer.bias);
            vectorized(
                #[inline(always)]
                || {
                    for (i, vi) in v.iter_mut().enumerate() {
                        *vi = T::one() + dot(y.row(i), &layer.bias);
                    }
                    for (i, &vi) in v.iter().enumerate() {
                        for (g, &dl) in gb.iter_mut().zip(delta.row(i)) {
                            *g += dl * vi;
                        }
                    }
                },
            );
        } else {
            gb.fill(T::zero());
        }
    });
    Ok(())
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
    let n = x.rows();
    let d = model.dim();
    if ws.lu.is_none() {
        ws.lu = Some((backend.lu_workspace(d), crate::matrix::Mat::zeros(d, d)));
    }
    let mut singular = None;
    backward(model, backend, x, ws, |l, ws| {
        let layer = &model.layers()[l];
        let (lu, inv) = ws.lu.as_mut().expect("made above");
        let ld = backend.lu_factor(layer.weight.as_ref(), lu);
        if ld.is_singular() {
            singular.get_or_insert(l);
            return;
        }
        backend.lu_inverse(lu, inv.as_mut());
        let gw = &mut ws.grad.weights[l];
        for i in 0..d {
            for j in 0..d {
                gw.set(i, j, inv.get(j, i));
            }
        }
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
            add_column_sums(delta, gb);
        }
    });
    match singular {
        Some(layer) => Err(Error::Singular { layer }),
        None => Ok(()),
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

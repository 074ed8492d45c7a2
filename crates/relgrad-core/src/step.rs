//! The training step: one relative-gradient step of the optimizer, fused for small batches.
//!
//! [`train_step`] is what the trainer runs once per batch. For the relative gradient on one
//! process with a batch small against `D` ([`fuses`]) it runs the **fused** step:
//! after the forward pass it makes one pass over each layer's weight, row by row, that
//! for row `w_i` of `W`
//! 1. takes the `2B` dot products of `w_i` with the rows of `Y` and of `Delta` (the
//!    latter are column `i` of `Delta W^T`, the next layer's backward signal);
//! 2. forms the row of the direction, `r_i = sum_b (w_i . y_b) delta_b + w_i`, which is
//!    row `i` of `W (Y^T Delta) + W` (the relative gradient, see [`crate::gradient`]);
//! 3. hands `r_i` at once to the optimizer's update of `w_i` and its moments.
//!
//! So each weight and its optimizer state cross the memory bus once per step after the
//! forward pass, and the `D x D` direction is never written out: with `B = 10` and
//! `D = 784` the library's products (`k = B`) would read `W` three times more and write
//! and re-read the direction. The dot products and sums run in this crate's vector
//! kernels on rows that stay in the L1 and L2 caches, and the rows are shared between
//! the backend's threads ([`Backend::parts`]). Otherwise (larger batches, where the
//! library's products are faster, the naive gradient, data-parallel training, whose
//! direction is summed across processes first) the step is the unfused one: [`crate::gradient::gradient`] into
//! [`Workspace::grad`], then [`OptimizerState::step`]. Both compute the same direction up
//! to the order of the sums; the conformance suite holds them together.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::gradient::{bias_direction, check, forward_train, gradient, inv_batch, GradientKind};
use crate::matrix::MatRef;
use crate::mlp::InvertibleMlp;
use crate::optim::{OptimizerState, Update};
use crate::scalar::Scalar;
use crate::simd::{dot, madd, vectorized};
use crate::workspace::{all_finite, finite_check, Workspace};

/// Elements per vector accumulator in the kernels (one AVX-512 register of `f32`).
const LANES: usize = 16;
/// Weight rows whose directions are formed at a time.
const SCRATCH_ROWS: usize = 4;
/// Multiply-adds a weight's own traffic (reading and writing it and its optimizer state)
/// counts for when the backend decides how many threads a layer's pass gets. The pass
/// is bound by that traffic at small batches, and two cores move it faster than one:
/// measured with Adam, two threads pay from `D = 512` at any batch size (`B = 1`: 0.43
/// against 0.66 ms; `D = 784`: 0.94 against 1.62 ms), and not at `D = 256`.
const STATE_WORK: usize = 40;
/// The most threads one layer's pass is split over.
pub(crate) const MAX_PARTS: usize = 16;

/// Whether [`train_step`] fuses a step of `rows` rows in dimension `dim`. Chosen from
/// `relgrad bench --step` (the `fused ms` column beside `step ms`, f32, Adam and SGD,
/// two cores): below `D = 512` the fused step is the faster one from `B = 2` up to
/// `B = D / 16` and at most `B = 8` (`D = 256`: 0.97x at `B = 8`, 1.2x at `B = 16`; at
/// `B = 1` the two are even, 1.0-1.3x at `D = 64`); from `D = 512`,
/// where the weights and their state no longer fit the caches near the core, up to
/// `B = D / 12` (`D = 512`: 0.9x at `B = 32`, 1.1x at `B = 64`; `D = 784`: 0.4-0.7x
/// from `B = 2` to `64`).
pub fn fuses(rows: usize, dim: usize) -> bool {
    if dim >= 512 {
        rows.saturating_mul(12) <= dim
    } else {
        (2..=(dim / 16).min(8)).contains(&rows)
    }
}

/// How a training step is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepPath {
    /// Fused when [`fuses`] says so and the gradient is the relative one. The default.
    #[default]
    Auto,
    /// Always fused (relative gradient only).
    Fused,
    /// Always the gradient into [`Workspace::grad`], then the optimizer.
    Unfused,
}

/// One optimizer step on the batch `x`: the direction of `kind` (including the
/// log-determinant terms) and the update of every parameter and optimizer state.
///
/// Returns `Ok(false)` when the direction had a non-finite entry: the unfused step then
/// leaves the model untouched, the fused step may have applied part of it (the caller
/// treats the step as diverged either way). With the fused path, [`Workspace::grad`]
/// holds only the biases' direction afterwards.
pub fn train_step<T: Scalar, B: Backend<T>>(
    kind: GradientKind,
    path: StepPath,
    model: &mut InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
    state: &mut OptimizerState<T>,
) -> Result<bool> {
    if !state.fits(model) {
        return Err(Error::InvalidConfig(
            "the optimizer state was made for a model of another shape".into(),
        ));
    }
    let fused = match path {
        StepPath::Auto => kind == GradientKind::Relative && fuses(x.rows(), model.dim()),
        StepPath::Fused if kind != GradientKind::Relative => {
            return Err(Error::InvalidConfig(
                "the fused step computes the relative gradient only".into(),
            ))
        }
        StepPath::Fused => true,
        StepPath::Unfused => false,
    };
    if fused {
        return fused_step(model, backend, x, ws, state);
    }
    gradient(kind, model, backend, x, ws)?;
    if !ws.grad.is_finite() {
        return Ok(false);
    }
    state.step(model, &ws.grad);
    Ok(true)
}

/// The fused relative-gradient step (see the module documentation).
fn fused_step<T: Scalar, B: Backend<T>>(
    model: &mut InvertibleMlp<T>,
    backend: &B,
    x: MatRef<'_, T>,
    ws: &mut Workspace<T, B>,
    state: &mut OptimizerState<T>,
) -> Result<bool> {
    check(model, &x, ws)?;
    let n = x.rows();
    let d = model.dim();
    let len = n * d;
    let inv_b = inv_batch::<T>(n);
    forward_train(model, backend, x, ws, inv_b);
    let rule = state.begin_step();
    let use_bias = model.use_bias();
    // Non-finite entries of the direction make this NaN: `0 r` is 0 for finite `r`.
    let mut check_sum = T::zero();
    for l in (0..model.n_layers()).rev() {
        let layer = &mut model.layers_mut()[l];
        let y = ws.y[l].top(n);
        let delta = ws.delta.top(n);
        // The bias first, from the old bias: R_b = Delta^T (1 + Y b) + b.
        let gb = &mut ws.grad.biases[l];
        if use_bias {
            bias_direction(y, delta, &layer.bias, true, &mut ws.rowvec[..n], gb);
        } else {
            gb.fill(T::zero());
        }
        // The weight, row by row; column i of Delta W^T lands in row i of `prod` (D x n).
        let (m, v) = state.slot_mut(2 * l);
        let part = Rows {
            w: layer.weight.as_mut_slice(),
            m,
            v,
            next: (l > 0).then_some(&mut ws.prod[..len]),
            scratch: &mut ws.row[..],
        };
        // The pass does 2B or 3B multiply-adds per weight and moves the weight and its
        // state, worth about STATE_WORK more: what the backend's thread rule weighs.
        let work = (if l > 0 { 3 } else { 2 } * n + STATE_WORK) * d * d;
        let parts = backend.parts(work).clamp(1, MAX_PARTS).min(d / 4).max(1);
        check_sum += in_parts(backend, parts, &rule, y, delta, part);
        if use_bias {
            let (m, v) = state.slot_mut(2 * l + 1);
            rule.apply_vectorized(&mut layer.bias, gb, m, v);
            if !all_finite(gb) {
                check_sum = T::nan();
            }
        }
        if l > 0 {
            // Delta_{l-1} = (Delta_l W_l^T) .* sigma'(Y_{l-1}) + kappa(Y_{l-1}) / B, with
            // Delta_l W_l^T stored transposed in `prod`.
            let t = &ws.prod[..len];
            let ds = &ws.dsig[l - 1].as_slice()[..len];
            let ka = &ws.kappa[l - 1].as_slice()[..len];
            let out = &mut ws.delta.as_mut_slice()[..len];
            vectorized(
                #[inline(always)]
                |fma| {
                    for (b, ((o, s), k)) in out
                        .chunks_exact_mut(d)
                        .zip(ds.chunks_exact(d))
                        .zip(ka.chunks_exact(d))
                        .enumerate()
                    {
                        for i in 0..d {
                            o[i] = madd(fma, t[i * n + b], s[i], k[i] * inv_b);
                        }
                    }
                },
            );
        }
    }
    Ok(check_sum == T::zero())
}

/// A share of one layer's weight rows and what goes with them: their optimizer state
/// (`m`, `v`, empty where the rule keeps none), their rows of `Delta W^T` transposed
/// (`next`, `D x B`, for every layer but the first) and scratch of [`SCRATCH_ROWS`]
/// weight rows and `8 B` dot products.
struct Rows<'a, T> {
    w: &'a mut [T],
    m: &'a mut [T],
    v: &'a mut [T],
    next: Option<&'a mut [T]>,
    scratch: &'a mut [T],
}

/// Splits `part` into `parts` shares of whole blocks of four rows and runs
/// [`weight_rows`] on each, in parallel through [`Backend::join`]. Returns the sum of
/// their checks.
fn in_parts<T: Scalar, B: Backend<T>>(
    backend: &B,
    parts: usize,
    rule: &Update<T>,
    y: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    part: Rows<'_, T>,
) -> T {
    if parts <= 1 {
        return weight_rows(rule, y, delta, part);
    }
    let (d, n) = (delta.cols(), y.rows());
    let left = parts / 2;
    let split = part.w.len() / d / 4 * left / parts * 4;
    let (wa, wb) = part.w.split_at_mut(split * d);
    let (ma, mb) = cut(part.m, split * d);
    let (va, vb) = cut(part.v, split * d);
    let (na, nb) = match part.next {
        Some(next) => {
            let (a, b) = next.split_at_mut(split * n);
            (Some(a), Some(b))
        }
        None => (None, None),
    };
    let (sa, sb) = part.scratch.split_at_mut(part.scratch.len() / parts * left);
    let a = Rows {
        w: wa,
        m: ma,
        v: va,
        next: na,
        scratch: sa,
    };
    let b = Rows {
        w: wb,
        m: mb,
        v: vb,
        next: nb,
        scratch: sb,
    };
    let (ca, cb) = backend.join(
        || in_parts(backend, left, rule, y, delta, a),
        || in_parts(backend, parts - left, rule, y, delta, b),
    );
    ca + cb
}

/// The pass over a share of one layer's weight rows (see [`Rows`]): for each row `w_i`,
/// its dot products with the rows of `y` and `delta` (the latter into row `i` of
/// `next`), its direction `r = sum_b (w_i . y_b) delta_b + w_i`, and the optimizer's
/// update of the row and of its state. Returns the sum of `0 r` over all rows: zero
/// unless the direction had a non-finite entry.
fn weight_rows<T: Scalar>(
    rule: &Update<T>,
    y: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    part: Rows<'_, T>,
) -> T {
    let Rows {
        w,
        m,
        v,
        mut next,
        scratch,
    } = part;
    let d = delta.cols();
    let n = y.rows();
    let count = if next.is_some() { 2 * n } else { n };
    let (r, dots) = scratch.split_at_mut(SCRATCH_ROWS * d);
    let ahead = Prefetch::new([&*w, &*m, &*v]);
    // One row of each state buffer per weight row (none where the rule keeps none).
    let (mut m_rows, mut v_rows) = (m.chunks_exact_mut(d), v.chunks_exact_mut(d));
    let row = |k: usize| pick(y, delta, k);
    let n_rows = w.len() / d;
    vectorized(
        #[inline(always)]
        |fma| {
            let mut check = T::zero();
            // Four weight rows at a time: every chunk of `Y` or `Delta` loaded from the
            // L2 cache serves four rows.
            let mut blocks = w.chunks_exact_mut(4 * d);
            for (blk, wb) in (&mut blocks).enumerate() {
                let (rows4, dots4) = (&mut r[..4 * d], &mut dots[..4 * count]);
                {
                    let wr: [&[T]; 4] = core::array::from_fn(|q| &wb[q * d..(q + 1) * d]);
                    let (mut k, span, pairs) = (0, 4 * d, count.div_ceil(2));
                    while k < count {
                        // Meanwhile the next block's weights and state move towards the
                        // core, a share per pair, so memory works while the core computes.
                        let at = (blk + 1) * span;
                        ahead.fetch(at + span * (k / 2) / pairs, at + span * (k / 2 + 1) / pairs);
                        let k1 = (k + 1).min(count - 1);
                        let sums = dots_4x2(fma, wr, [row(k), row(k1)]);
                        for (q, s) in sums.iter().enumerate() {
                            dots4[q * count + k] = s[0];
                            dots4[q * count + k1] = s[1];
                        }
                        k += 2;
                    }
                    if let Some(next) = next.as_deref_mut() {
                        for q in 0..4 {
                            let i = 4 * blk + q;
                            next[i * n..(i + 1) * n]
                                .copy_from_slice(&dots4[q * count + n..(q + 1) * count]);
                        }
                    }
                    let u: [&[T]; 4] = core::array::from_fn(|q| &dots4[q * count..][..n]);
                    combine_4(fma, wr, u, delta, rows4);
                }
                for (wi, ri) in wb.chunks_exact_mut(d).zip(rows4.chunks_exact(d)) {
                    check += update(rule, wi, ri, &mut m_rows, &mut v_rows);
                }
            }
            let tail = blocks.into_remainder();
            let first = 4 * (n_rows / 4);
            for (j, wi) in tail.chunks_exact_mut(d).enumerate() {
                let (ri, dots) = (&mut r[..d], &mut dots[..count]);
                many_dots(fma, wi, &row, dots);
                if let Some(next) = next.as_deref_mut() {
                    let i = first + j;
                    next[i * n..(i + 1) * n].copy_from_slice(&dots[n..count]);
                }
                combine(fma, wi, &dots[..n], delta, ri);
                check += update(rule, wi, ri, &mut m_rows, &mut v_rows);
            }
            check
        },
    )
}

/// Row `k` of `y` below `y.rows()`, of `delta` from there.
#[inline(always)]
fn pick<'a, T: Scalar>(y: MatRef<'a, T>, delta: MatRef<'a, T>, k: usize) -> &'a [T] {
    let n = y.rows();
    if k < n {
        y.row(k)
    } else {
        delta.row(k - n)
    }
}

/// The optimizer's update of the weight row `wi` along `r` with the next rows of its
/// state; returns [`finite_check`] of `r`.
#[inline(always)]
fn update<'s, T: Scalar>(
    rule: &Update<T>,
    wi: &mut [T],
    r: &[T],
    m_rows: &mut impl Iterator<Item = &'s mut [T]>,
    v_rows: &mut impl Iterator<Item = &'s mut [T]>,
) -> T {
    let mi = m_rows.next().unwrap_or_default();
    let vi = v_rows.next().unwrap_or_default();
    rule.apply(wi, r, mi, vi);
    finite_check(r)
}

/// The dot products of four weight rows `w` with two rows `v` (each at least as long),
/// in `LANES` partial sums each: `[[w_0 . v_0, w_0 . v_1], ...]`.
#[inline(always)]
fn dots_4x2<T: Scalar>(fma: bool, w: [&[T]; 4], v: [&[T]; 2]) -> [[T; 2]; 4] {
    let d = w[0].len();
    let [w0, w1, w2, w3] = w.map(|r| &r[..d]);
    let [v0, v1] = v.map(|r| &r[..d]);
    let z = [T::zero(); LANES];
    let (mut a00, mut a01, mut a10, mut a11) = (z, z, z, z);
    let (mut a20, mut a21, mut a30, mut a31) = (z, z, z, z);
    let chunks = w0
        .chunks_exact(LANES)
        .zip(w1.chunks_exact(LANES))
        .zip(w2.chunks_exact(LANES))
        .zip(w3.chunks_exact(LANES))
        .zip(v0.chunks_exact(LANES))
        .zip(v1.chunks_exact(LANES));
    for (((((x0, x1), x2), x3), y0), y1) in chunks {
        for k in 0..LANES {
            a00[k] = madd(fma, x0[k], y0[k], a00[k]);
            a01[k] = madd(fma, x0[k], y1[k], a01[k]);
            a10[k] = madd(fma, x1[k], y0[k], a10[k]);
            a11[k] = madd(fma, x1[k], y1[k], a11[k]);
            a20[k] = madd(fma, x2[k], y0[k], a20[k]);
            a21[k] = madd(fma, x2[k], y1[k], a21[k]);
            a30[k] = madd(fma, x3[k], y0[k], a30[k]);
            a31[k] = madd(fma, x3[k], y1[k], a31[k]);
        }
    }
    let mut out = [
        [sum_lanes(&a00), sum_lanes(&a01)],
        [sum_lanes(&a10), sum_lanes(&a11)],
        [sum_lanes(&a20), sum_lanes(&a21)],
        [sum_lanes(&a30), sum_lanes(&a31)],
    ];
    let wr = [w0, w1, w2, w3];
    for j in d - d % LANES..d {
        for q in 0..4 {
            out[q][0] = madd(fma, wr[q][j], v0[j], out[q][0]);
            out[q][1] = madd(fma, wr[q][j], v1[j], out[q][1]);
        }
    }
    out
}

/// [`combine`] for four weight rows at once, into the four rows of `r` (`4 x D`): every
/// chunk of a row of `delta` is loaded once for the four.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `b` indexes the four rows of `u` and `delta` alike
fn combine_4<T: Scalar>(fma: bool, w: [&[T]; 4], u: [&[T]; 4], delta: MatRef<'_, T>, r: &mut [T]) {
    let d = w[0].len();
    let n = u[0].len();
    let (r0, rest) = r.split_at_mut(d);
    let (r1, rest) = rest.split_at_mut(d);
    let (r2, r3) = rest.split_at_mut(d);
    let full = d - d % LANES;
    let mut c = 0;
    // Two chunks per pass over `b`: each broadcast of `u` serves both.
    while c + 2 * LANES <= full {
        let chunk = |row: &[T], at: usize| -> [T; LANES] {
            row[at..at + LANES].try_into().expect("LANES long")
        };
        let (mut a0, mut a1, mut a2, mut a3) = (
            chunk(w[0], c),
            chunk(w[1], c),
            chunk(w[2], c),
            chunk(w[3], c),
        );
        let e = c + LANES;
        let (mut b0, mut b1, mut b2, mut b3) = (
            chunk(w[0], e),
            chunk(w[1], e),
            chunk(w[2], e),
            chunk(w[3], e),
        );
        for b in 0..n {
            let x: &[T] = &delta.row(b)[c..c + 2 * LANES];
            let (x, y) = x.split_at(LANES);
            let (u0, u1, u2, u3) = (u[0][b], u[1][b], u[2][b], u[3][b]);
            for k in 0..LANES {
                a0[k] = madd(fma, u0, x[k], a0[k]);
                a1[k] = madd(fma, u1, x[k], a1[k]);
                a2[k] = madd(fma, u2, x[k], a2[k]);
                a3[k] = madd(fma, u3, x[k], a3[k]);
                b0[k] = madd(fma, u0, y[k], b0[k]);
                b1[k] = madd(fma, u1, y[k], b1[k]);
                b2[k] = madd(fma, u2, y[k], b2[k]);
                b3[k] = madd(fma, u3, y[k], b3[k]);
            }
        }
        for (rq, (a, b)) in [&mut *r0, &mut *r1, &mut *r2, &mut *r3].into_iter().zip([
            (a0, b0),
            (a1, b1),
            (a2, b2),
            (a3, b3),
        ]) {
            rq[c..e].copy_from_slice(&a);
            rq[e..e + LANES].copy_from_slice(&b);
        }
        c += 2 * LANES;
    }
    while c < full {
        let mut a0: [T; LANES] = w[0][c..c + LANES].try_into().expect("LANES long");
        let mut a1: [T; LANES] = w[1][c..c + LANES].try_into().expect("LANES long");
        let mut a2: [T; LANES] = w[2][c..c + LANES].try_into().expect("LANES long");
        let mut a3: [T; LANES] = w[3][c..c + LANES].try_into().expect("LANES long");
        for b in 0..n {
            let x: &[T] = &delta.row(b)[c..c + LANES];
            let (u0, u1, u2, u3) = (u[0][b], u[1][b], u[2][b], u[3][b]);
            for k in 0..LANES {
                a0[k] = madd(fma, u0, x[k], a0[k]);
                a1[k] = madd(fma, u1, x[k], a1[k]);
                a2[k] = madd(fma, u2, x[k], a2[k]);
                a3[k] = madd(fma, u3, x[k], a3[k]);
            }
        }
        r0[c..c + LANES].copy_from_slice(&a0);
        r1[c..c + LANES].copy_from_slice(&a1);
        r2[c..c + LANES].copy_from_slice(&a2);
        r3[c..c + LANES].copy_from_slice(&a3);
        c += LANES;
    }
    for (q, rq) in [r0, r1, r2, r3].into_iter().enumerate() {
        for j in full..d {
            let mut acc = w[q][j];
            for b in 0..n {
                acc = madd(fma, u[q][b], delta.row(b)[j], acc);
            }
            rq[j] = acc;
        }
    }
}

/// `out[k] = w . row(k)` for every `k < out.len()`, four rows at a time so that each
/// chunk of `w` is loaded once per four and their sums run side by side.
#[inline(always)]
fn many_dots<'a, T: Scalar>(fma: bool, w: &[T], row: &impl Fn(usize) -> &'a [T], out: &mut [T]) {
    let count = out.len();
    let mut k = 0;
    while k + 4 <= count {
        let sums = dots4(fma, w, [row(k), row(k + 1), row(k + 2), row(k + 3)]);
        out[k..k + 4].copy_from_slice(&sums);
        k += 4;
    }
    while k < count {
        out[k] = dot(fma, w, row(k));
        k += 1;
    }
}

/// The dot products of `w` with four rows (each at least as long as `w`), in `LANES`
/// partial sums each.
#[inline(always)]
fn dots4<T: Scalar>(fma: bool, w: &[T], rows: [&[T]; 4]) -> [T; 4] {
    let d = w.len();
    let [r0, r1, r2, r3] = rows.map(|r| &r[..d]);
    let mut a0 = [T::zero(); LANES];
    let mut a1 = [T::zero(); LANES];
    let mut a2 = [T::zero(); LANES];
    let mut a3 = [T::zero(); LANES];
    let chunks = w
        .chunks_exact(LANES)
        .zip(r0.chunks_exact(LANES))
        .zip(r1.chunks_exact(LANES))
        .zip(r2.chunks_exact(LANES))
        .zip(r3.chunks_exact(LANES));
    for ((((x, y0), y1), y2), y3) in chunks {
        for k in 0..LANES {
            a0[k] = madd(fma, x[k], y0[k], a0[k]);
            a1[k] = madd(fma, x[k], y1[k], a1[k]);
            a2[k] = madd(fma, x[k], y2[k], a2[k]);
            a3[k] = madd(fma, x[k], y3[k], a3[k]);
        }
    }
    let full = d - d % LANES;
    let mut out = [
        sum_lanes(&a0),
        sum_lanes(&a1),
        sum_lanes(&a2),
        sum_lanes(&a3),
    ];
    for j in full..d {
        out[0] = madd(fma, w[j], r0[j], out[0]);
        out[1] = madd(fma, w[j], r1[j], out[1]);
        out[2] = madd(fma, w[j], r2[j], out[2]);
        out[3] = madd(fma, w[j], r3[j], out[3]);
    }
    out
}

/// The sum of one accumulator's lanes, pairwise.
#[inline(always)]
fn sum_lanes<T: Scalar>(a: &[T; LANES]) -> T {
    let mut h = *a;
    let mut width = LANES / 2;
    while width > 0 {
        for k in 0..width {
            h[k] += h[k + width];
        }
        width /= 2;
    }
    h[0]
}

/// `r = w + sum_b u_b delta_b` (the row of the relative gradient): `r` stays in the L1
/// cache while the rows of `delta` are added to it two at a time.
#[inline(always)]
fn combine<T: Scalar>(fma: bool, w: &[T], u: &[T], delta: MatRef<'_, T>, r: &mut [T]) {
    let d = r.len();
    r.copy_from_slice(&w[..d]);
    let mut b = 0;
    while b + 2 <= u.len() {
        let (u0, u1) = (u[b], u[b + 1]);
        let (d0, d1) = (&delta.row(b)[..d], &delta.row(b + 1)[..d]);
        for ((ri, &x0), &x1) in r.iter_mut().zip(d0).zip(d1) {
            *ri = madd(fma, u1, x1, madd(fma, u0, x0, *ri));
        }
        b += 2;
    }
    if b < u.len() {
        let u0 = u[b];
        for (ri, &x0) in r.iter_mut().zip(&delta.row(b)[..d]) {
            *ri = madd(fma, u0, x0, *ri);
        }
    }
}

/// Software prefetches of parts of a few equally indexed buffers (a weight and its
/// optimizer state) into the L2 cache. A prefetch is a hint, never a memory access: the
/// addresses are kept only as numbers and each is checked against its buffer's length.
struct Prefetch {
    /// Each buffer's start address, length in bytes, and element size.
    bufs: [(usize, usize); 3],
    elem: usize,
}

impl Prefetch {
    fn new<T>(bufs: [&[T]; 3]) -> Self {
        Prefetch {
            bufs: bufs.map(|b| (b.as_ptr() as usize, core::mem::size_of_val(b))),
            elem: core::mem::size_of::<T>(),
        }
    }

    /// Prefetches elements `start..end` of every buffer (as far as each reaches).
    #[inline(always)]
    fn fetch(&self, start: usize, end: usize) {
        #[cfg(target_arch = "x86_64")]
        for &(base, bytes) in &self.bufs {
            let (from, to) = ((start * self.elem).min(bytes), (end * self.elem).min(bytes));
            let mut at = from;
            while at < to {
                // SAFETY: `_mm_prefetch` only hints the cache; it never faults and reads
                // nothing into the program, and the address lies inside the buffer.
                unsafe {
                    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
                    _mm_prefetch::<_MM_HINT_T1>((base + at) as *const i8);
                }
                at += 64;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (start, end);
    }
}

/// `b` split at `at`, or at its end if shorter (an empty state buffer splits into two).
fn cut<T>(b: &mut [T], at: usize) -> (&mut [T], &mut [T]) {
    let at = at.min(b.len());
    b.split_at_mut(at)
}

#[cfg(test)]
mod tests {
    use super::fuses;

    #[test]
    fn small_batches_fuse_where_measured_faster() {
        // The paper's MNIST recipe, and batches up to D / 12 from D = 512.
        assert!(fuses(10, 784) && fuses(64, 784) && fuses(32, 512));
        assert!(!fuses(100, 784) && !fuses(64, 512));
        // Below D = 512: from 2 up to D / 16, at most 8.
        assert!(fuses(4, 64) && fuses(8, 128) && fuses(8, 256));
        assert!(!fuses(8, 64) && !fuses(16, 256) && !fuses(1, 8) && !fuses(1, 256));
        // From D = 512 a single row fuses too.
        assert!(fuses(1, 512));
    }
}

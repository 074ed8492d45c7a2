//! The training step: the update direction and the optimizer's update of every
//! parameter, fused into one pass over the weights for small batches.
//!
//! [`train_step`] is what the trainer runs once per batch. For the relative gradient on one
//! process with a batch small against `D` ([`fuses`]) it runs the **fused** step:
//! after the forward pass it makes one pass over each layer's weight, row by row, that
//! for row `w_i` of `W`
//! 1. takes the `2B` dot products of `w_i` with the rows of `Y` and of `Delta` (the
//!    latter are column `i` of `Delta W^T`, the next layer's backward signal);
//! 2. forms the row of the direction, `r_i = sum_b (w_i . y_b) delta_b + w_i`, which is
//!    row `i` of `W (Y^T Delta) + W` (the relative gradient, see [`mod@crate::gradient`]);
//! 3. hands `r_i` at once to the optimizer's update of `w_i` and its moments.
//!
//! So each weight and its optimizer state are read and written once per step after the
//! forward pass, and the `D x D` direction is never written out: with `B = 10` and
//! `D = 784` the library's products (`k = B`) would read `W` three times more and write
//! and re-read the direction. The dot products and sums run in this crate's vector
//! kernels (`step/kernels.rs`) on rows that stay in the L1 and L2 caches, and the rows are
//! shared between the backend's threads ([`Backend::parts`]).
//!
//! Otherwise the step is the unfused one: [`crate::gradient::gradient`] into
//! [`Workspace::grad`], then [`OptimizerState::step`]. That is for larger batches, where
//! the library's products are faster, for the naive gradient, and for data-parallel
//! training, whose direction is summed across processes before the update. Both steps
//! compute the same direction up to the order of the sums; the conformance suite holds
//! them together.

mod kernels;

use kernels::{combine_4, dots_4x2, dots_4x4, pick, update, Prefetch, Spread, LANES};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::gradient::{bias_direction, check, forward_train, gradient, inv_batch, GradientKind};
use crate::matrix::MatRef;
use crate::mlp::InvertibleMlp;
use crate::optim::{OptimizerState, Update};
use crate::scalar::Scalar;
use crate::simd::{madd, simd_level, vectorized, SimdLevel};
use crate::workspace::{all_finite, Workspace};

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

/// Into how many parts (threads) the fused step splits its pass over one layer's weights
/// for a batch of `rows` rows in dimension `dim`: the pass does `2B` multiply-adds per
/// weight, `3B` where it also forms the backward signal (`backward`, every layer but the
/// first), and moves the weight and its state, worth [`STATE_WORK`] more; the backend's
/// thread rule ([`Backend::parts`]) weighs that sum. At most [`MAX_PARTS`], and whole
/// blocks of four rows each.
pub fn pass_parts<T: Scalar, B: Backend<T>>(
    backend: &B,
    rows: usize,
    dim: usize,
    backward: bool,
) -> usize {
    let per_weight = if backward { 3 } else { 2 } * rows + STATE_WORK;
    let work = per_weight.saturating_mul(dim).saturating_mul(dim);
    backend.parts(work).clamp(1, MAX_PARTS).min(dim / 4).max(1)
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
    let spline_rule = state.spline_rule();
    let n_layers = model.n_layers();
    let use_bias = model.use_bias();
    // Non-finite entries of the direction make this NaN: `0 r` is 0 for finite `r`.
    let mut check_sum = T::zero();
    // A mixture base's gradient is complete after the forward pass: its update first.
    let n_splines = model.splines().len();
    if let (Some(p), Some(g)) = (model.base_params_mut(), &ws.grad.base) {
        let (m, v) = state.slot_mut(2 * n_layers + n_splines);
        spline_rule.apply_vectorized(p.as_mut_slice(), g.as_slice(), m, v);
        if !all_finite(g.as_slice()) {
            check_sum = T::nan();
        }
    }
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
        let parts = pass_parts(backend, n, d, l > 0);
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
            if let Some(knots) = ws.knots.get_mut(l - 1) {
                // The splines' gradient from the same transposed `Delta_l W_l^T`, then
                // their update (their knots for this step were taken in the forward pass).
                let y = &ws.y[l - 1].as_slice()[..len];
                let g = ws.grad.splines[l - 1].as_mut_slice();
                knots.backward_transposed(y, &ws.prod[..len], inv_b, g);
                let (m, v) = state.slot_mut(2 * n_layers + l - 1);
                spline_rule.apply_vectorized(model.splines_mut()[l - 1].as_mut_slice(), g, m, v);
                if !all_finite(g) {
                    check_sum = T::nan();
                }
            }
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
///
/// The kernels' register tiles follow the instruction set in use: in `f32` under
/// AVX-512 (32 registers of 16 lanes) dot products with four rows of `Y` or `Delta` at
/// a time and four chunks of a direction row per pass over the batch, otherwise (16
/// registers, or accumulators of two registers) two of each.
fn weight_rows<T: Scalar>(
    rule: &Update<T>,
    y: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    part: Rows<'_, T>,
) -> T {
    let wide = simd_level() == SimdLevel::Avx512 && core::mem::size_of::<T>() == 4;
    vectorized(
        #[inline(always)]
        |fma| {
            if wide {
                tiled::<T, true>(fma, rule, y, delta, part)
            } else {
                tiled::<T, false>(fma, rule, y, delta, part)
            }
        },
    )
}

/// [`weight_rows`], with the wide tiles if `WIDE`.
#[inline(always)]
fn tiled<T: Scalar, const WIDE: bool>(
    fma: bool,
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
    let (rows4, rest) = scratch.split_at_mut(SCRATCH_ROWS * d);
    let dots4 = &mut rest[..SCRATCH_ROWS * count];
    let ahead = Prefetch::new([&*w, &*m, &*v]);
    // One row of each state buffer per weight row (none where the rule keeps none).
    let (mut m_rows, mut v_rows) = (m.chunks_exact_mut(d), v.chunks_exact_mut(d));
    let n_rows = w.len() / d;
    let span = SCRATCH_ROWS * d;
    let per = if WIDE { 4 } else { 2 };
    let groups = count.div_ceil(per);
    let mut check = T::zero();
    // Four weight rows at a time: every chunk of `Y` or `Delta` loaded from the L2 cache
    // serves four rows. A last block of fewer rows repeats its last row to fill the four
    // and keeps only its own results; so does a last group of fewer dot products.
    let mut start = 0;
    while start < n_rows {
        let real = (n_rows - start).min(SCRATCH_ROWS);
        {
            let wb = &w[start * d..(start + real) * d];
            let wr: [&[T]; 4] = core::array::from_fn(|q| &wb[q.min(real - 1) * d..][..d]);
            let at = (start + SCRATCH_ROWS) * d;
            for g in 0..groups {
                // Meanwhile the next block's weights and state move towards the core, a
                // share per group spread over the group's chunks, so memory works while
                // the core computes.
                let (from, to) = (at + span * g / groups, at + span * (g + 1) / groups);
                let pf = Spread {
                    ahead: &ahead,
                    start: from,
                    end: to,
                    step: (to - from).div_ceil((d / LANES).max(1)).max(1),
                };
                let k = |c: usize| (g * per + c).min(count - 1);
                if WIDE {
                    let ks = [k(0), k(1), k(2), k(3)];
                    let sums = dots_4x4(fma, wr, ks.map(|k| pick(y, delta, k)), pf);
                    record(dots4, count, ks, sums);
                } else {
                    let ks = [k(0), k(1)];
                    let sums = dots_4x2(fma, wr, ks.map(|k| pick(y, delta, k)), pf);
                    record(dots4, count, ks, sums);
                }
            }
            if let Some(next) = next.as_deref_mut() {
                for q in 0..real {
                    let i = start + q;
                    next[i * n..(i + 1) * n]
                        .copy_from_slice(&dots4[q * count + n..(q + 1) * count]);
                }
            }
            let u: [&[T]; 4] = core::array::from_fn(|q| &dots4[q * count..][..n]);
            combine_4::<T, WIDE>(fma, wr, u, delta, rows4);
        }
        let wb = &mut w[start * d..(start + real) * d];
        for (wi, ri) in wb.chunks_exact_mut(d).zip(rows4.chunks_exact(d)) {
            check += update(rule, wi, ri, &mut m_rows, &mut v_rows);
        }
        start += real;
    }
    check
}

/// Stores a group's dot products `sums[q][c]` (weight row `q` of the block with the
/// `ks[c]`-th row of `Y`, then `Delta`) into row `q` of `dots4` (`4 x count`).
#[inline(always)]
fn record<T: Scalar, const C: usize>(
    dots4: &mut [T],
    count: usize,
    ks: [usize; C],
    sums: [[T; C]; 4],
) {
    for (q, s) in sums.iter().enumerate() {
        for (&k, &x) in ks.iter().zip(s) {
            dots4[q * count + k] = x;
        }
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

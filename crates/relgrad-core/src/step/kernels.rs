//! The fused step's kernels: dot products of weight rows with the batch's rows, the rows
//! of the relative gradient, the optimizer's update of a row, and software prefetches.
//! Everything here is `#[inline(always)]` into the caller's `vectorized` closure, so it is
//! compiled once per instruction-set level (see [`crate::simd`]).

use crate::matrix::MatRef;
use crate::optim::Update;
use crate::scalar::Scalar;
use crate::simd::madd;
use crate::workspace::finite_check;

/// Elements per vector accumulator (one AVX-512 register of `f32`). Also at the levels
/// with narrower registers: with 8 lanes (one AVX2 register of `f32`) the compiler
/// shuffles between registers instead of vectorising the lanes, and the pass took 1.5x
/// as long.
pub(super) const LANES: usize = 16;

/// Row `k` of `y` below `y.rows()`, of `delta` from there.
#[inline(always)]
pub(super) fn pick<'a, T: Scalar>(y: MatRef<'a, T>, delta: MatRef<'a, T>, k: usize) -> &'a [T] {
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
pub(super) fn update<'s, T: Scalar>(
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
/// in partial sums of `LANES` lanes each: `[[w_0 . v_0, w_0 . v_1], ...]`. Eight
/// accumulators: for 16 vector registers.
#[inline(always)]
pub(super) fn dots_4x2<T: Scalar>(
    fma: bool,
    w: [&[T]; 4],
    v: [&[T]; 2],
    ahead: Spread<'_>,
) -> [[T; 2]; 4] {
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
    for (i, (((((x0, x1), x2), x3), y0), y1)) in chunks.enumerate() {
        ahead.fetch(i);
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

/// [`dots_4x2`] with four rows `v`: sixteen accumulators, for 32 vector registers
/// (AVX-512), where every chunk of the weight rows serves twice as many products.
#[inline(always)]
pub(super) fn dots_4x4<T: Scalar>(
    fma: bool,
    w: [&[T]; 4],
    v: [&[T]; 4],
    ahead: Spread<'_>,
) -> [[T; 4]; 4] {
    let d = w[0].len();
    let [w0, w1, w2, w3] = w.map(|r| &r[..d]);
    let [v0, v1, v2, v3] = v.map(|r| &r[..d]);
    let z = [T::zero(); LANES];
    let (mut a00, mut a01, mut a02, mut a03) = (z, z, z, z);
    let (mut a10, mut a11, mut a12, mut a13) = (z, z, z, z);
    let (mut a20, mut a21, mut a22, mut a23) = (z, z, z, z);
    let (mut a30, mut a31, mut a32, mut a33) = (z, z, z, z);
    let chunks = w0
        .chunks_exact(LANES)
        .zip(w1.chunks_exact(LANES))
        .zip(w2.chunks_exact(LANES))
        .zip(w3.chunks_exact(LANES))
        .zip(v0.chunks_exact(LANES))
        .zip(v1.chunks_exact(LANES))
        .zip(v2.chunks_exact(LANES))
        .zip(v3.chunks_exact(LANES));
    for (i, (((((((x0, x1), x2), x3), y0), y1), y2), y3)) in chunks.enumerate() {
        ahead.fetch(i);
        for k in 0..LANES {
            a00[k] = madd(fma, x0[k], y0[k], a00[k]);
            a01[k] = madd(fma, x0[k], y1[k], a01[k]);
            a02[k] = madd(fma, x0[k], y2[k], a02[k]);
            a03[k] = madd(fma, x0[k], y3[k], a03[k]);
            a10[k] = madd(fma, x1[k], y0[k], a10[k]);
            a11[k] = madd(fma, x1[k], y1[k], a11[k]);
            a12[k] = madd(fma, x1[k], y2[k], a12[k]);
            a13[k] = madd(fma, x1[k], y3[k], a13[k]);
            a20[k] = madd(fma, x2[k], y0[k], a20[k]);
            a21[k] = madd(fma, x2[k], y1[k], a21[k]);
            a22[k] = madd(fma, x2[k], y2[k], a22[k]);
            a23[k] = madd(fma, x2[k], y3[k], a23[k]);
            a30[k] = madd(fma, x3[k], y0[k], a30[k]);
            a31[k] = madd(fma, x3[k], y1[k], a31[k]);
            a32[k] = madd(fma, x3[k], y2[k], a32[k]);
            a33[k] = madd(fma, x3[k], y3[k], a33[k]);
        }
    }
    let mut out = [
        [
            sum_lanes(&a00),
            sum_lanes(&a01),
            sum_lanes(&a02),
            sum_lanes(&a03),
        ],
        [
            sum_lanes(&a10),
            sum_lanes(&a11),
            sum_lanes(&a12),
            sum_lanes(&a13),
        ],
        [
            sum_lanes(&a20),
            sum_lanes(&a21),
            sum_lanes(&a22),
            sum_lanes(&a23),
        ],
        [
            sum_lanes(&a30),
            sum_lanes(&a31),
            sum_lanes(&a32),
            sum_lanes(&a33),
        ],
    ];
    let (wr, vr) = ([w0, w1, w2, w3], [v0, v1, v2, v3]);
    for j in d - d % LANES..d {
        for q in 0..4 {
            for c in 0..4 {
                out[q][c] = madd(fma, wr[q][j], vr[c][j], out[q][c]);
            }
        }
    }
    out
}

/// `r_q = w_q + sum_b u_q[b] delta_b` (rows of the relative gradient) for four weight
/// rows at once, into the four rows of `r` (`4 x D`): every chunk of a row of `delta` is
/// loaded once for the four.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `b` indexes the four rows of `u` and `delta` alike
pub(super) fn combine_4<T: Scalar, const WIDE: bool>(
    fma: bool,
    w: [&[T]; 4],
    u: [&[T]; 4],
    delta: MatRef<'_, T>,
    r: &mut [T],
) {
    let d = w[0].len();
    let n = u[0].len();
    let (r0, rest) = r.split_at_mut(d);
    let (r1, rest) = rest.split_at_mut(d);
    let (r2, r3) = rest.split_at_mut(d);
    let full = d - d % LANES;
    let mut c = 0;
    if WIDE {
        c = combine_wide(fma, w, u, delta, [&mut *r0, &mut *r1, &mut *r2, &mut *r3]);
    }
    // Two chunks per pass over `b`: each broadcast of `u` serves both.
    while c + 2 * LANES <= full {
        let e = c + LANES;
        let [mut a0, mut a1, mut a2, mut a3] = chunks_4(w, c);
        let [mut b0, mut b1, mut b2, mut b3] = chunks_4(w, e);
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
        let [mut a0, mut a1, mut a2, mut a3] = chunks_4(w, c);
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

/// The part of [`combine_4`] that takes four chunks per pass over `b` (sixteen
/// accumulators, for 32 vector registers): every broadcast of `u` serves four chunks.
/// Returns the column where it stopped (the last columns are left to [`combine_4`]).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `b` indexes the four rows of `u` and `delta` alike
fn combine_wide<T: Scalar>(
    fma: bool,
    w: [&[T]; 4],
    u: [&[T]; 4],
    delta: MatRef<'_, T>,
    r: [&mut [T]; 4],
) -> usize {
    let d = w[0].len();
    let n = u[0].len();
    let full = d - d % LANES;
    let [r0, r1, r2, r3] = r;
    let mut c = 0;
    while c + 4 * LANES <= full {
        let (e, f, g) = (c + LANES, c + 2 * LANES, c + 3 * LANES);
        let [mut a0, mut a1, mut a2, mut a3] = chunks_4(w, c);
        let [mut b0, mut b1, mut b2, mut b3] = chunks_4(w, e);
        let [mut c0, mut c1, mut c2, mut c3] = chunks_4(w, f);
        let [mut e0, mut e1, mut e2, mut e3] = chunks_4(w, g);
        for b in 0..n {
            let x: &[T] = &delta.row(b)[c..c + 4 * LANES];
            let (x, y) = x.split_at(LANES);
            let (y, z) = y.split_at(LANES);
            let (z, t) = z.split_at(LANES);
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
                c0[k] = madd(fma, u0, z[k], c0[k]);
                c1[k] = madd(fma, u1, z[k], c1[k]);
                c2[k] = madd(fma, u2, z[k], c2[k]);
                c3[k] = madd(fma, u3, z[k], c3[k]);
                e0[k] = madd(fma, u0, t[k], e0[k]);
                e1[k] = madd(fma, u1, t[k], e1[k]);
                e2[k] = madd(fma, u2, t[k], e2[k]);
                e3[k] = madd(fma, u3, t[k], e3[k]);
            }
        }
        for (rq, parts) in [&mut *r0, &mut *r1, &mut *r2, &mut *r3].into_iter().zip([
            [a0, b0, c0, e0],
            [a1, b1, c1, e1],
            [a2, b2, c2, e2],
            [a3, b3, c3, e3],
        ]) {
            for (h, p) in parts.iter().enumerate() {
                rq[c + h * LANES..c + (h + 1) * LANES].copy_from_slice(p);
            }
        }
        c += 4 * LANES;
    }
    c
}

/// The `LANES` elements of `row` from `at`.
#[inline(always)]
fn chunk<T: Scalar>(row: &[T], at: usize) -> [T; LANES] {
    row[at..at + LANES].try_into().expect("LANES long")
}

/// The chunks of the four rows `w` from `at`: the starting values of four accumulators.
#[inline(always)]
fn chunks_4<T: Scalar>(w: [&[T]; 4], at: usize) -> [[T; LANES]; 4] {
    w.map(|row| chunk(row, at))
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

/// A range of elements to prefetch (see [`Prefetch`]) spread over the iterations of a
/// loop: iteration `i` fetches the `i`-th share of `step` elements, so that the requests
/// trickle out while the loop computes instead of filling the miss queue at once.
#[derive(Clone, Copy)]
pub(super) struct Spread<'a> {
    pub(super) ahead: &'a Prefetch,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) step: usize,
}

impl Spread<'_> {
    /// Prefetches share `i`.
    #[inline(always)]
    fn fetch(&self, i: usize) {
        let from = self.start + i * self.step;
        if from < self.end {
            self.ahead.fetch(from, (from + self.step).min(self.end));
        }
    }
}

/// Software prefetches of parts of a few equally indexed buffers (a weight and its
/// optimizer state) into the L2 cache. A prefetch is a hint, never a memory access: the
/// addresses are kept only as numbers and each is checked against its buffer's length.
pub(super) struct Prefetch {
    /// Each buffer's start address, length in bytes, and element size.
    bufs: [(usize, usize); 3],
    elem: usize,
}

impl Prefetch {
    pub(super) fn new<T>(bufs: [&[T]; 3]) -> Self {
        Prefetch {
            bufs: bufs.map(|b| (b.as_ptr() as usize, core::mem::size_of_val(b))),
            elem: core::mem::size_of::<T>(),
        }
    }

    /// Prefetches elements `start..end` of every buffer (as far as each reaches).
    #[inline(always)]
    pub(super) fn fetch(&self, start: usize, end: usize) {
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

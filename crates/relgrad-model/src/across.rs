//! Statistics of rows spread across the processes of a group (data-parallel training, see
//! `relgrad_core::collective`): every process passes its own rows' values and gets the
//! statistic of all of them, the same on every process. With one process each is the
//! single-process statistic itself.

use relgrad_core::{Collective, MatRef};

use crate::evaluation::{quantiles, MeanSe};

/// [`MeanSe::of`] the values of every process (`values`: this process's).
pub fn mean_se<C: Collective>(values: &[f64], comm: &C) -> MeanSe {
    if comm.size() == 1 {
        return MeanSe::of(values);
    }
    let mut s = [values.iter().sum::<f64>(), values.len() as f64];
    comm.sum_in_place(&mut s);
    let (n, mean) = (s[1] as usize, s[0] / s[1]);
    if n == 0 {
        return MeanSe::of(&[]);
    }
    let mut ss = [values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()];
    comm.sum_in_place(&mut ss);
    let two_se = if n > 1 {
        2.0 * (ss[0] / (n - 1) as f64 / n as f64).sqrt()
    } else {
        0.0
    };
    MeanSe { n, mean, two_se }
}

/// Column means and (divide-by-`N`) variances of the rows of every process.
pub fn column_moments<C: Collective>(x: MatRef<'_, f64>, comm: &C) -> (Vec<f64>, Vec<f64>) {
    let d = x.cols();
    let mut sums = vec![0.0; d + 1];
    for i in 0..x.rows() {
        for (m, v) in sums.iter_mut().zip(x.row(i)) {
            *m += v;
        }
    }
    sums[d] = x.rows() as f64;
    comm.sum_in_place(&mut sums);
    let n = sums[d];
    let mean: Vec<f64> = sums[..d].iter().map(|m| m / n).collect();
    let mut var = vec![0.0; d];
    for i in 0..x.rows() {
        for ((s, v), m) in var.iter_mut().zip(x.row(i)).zip(&mean) {
            *s += (v - m) * (v - m);
        }
    }
    comm.sum_in_place(&mut var);
    var.iter_mut().for_each(|s| *s /= n);
    (mean, var)
}

/// The largest of every process's `value` (NaN if any is NaN).
pub fn max<C: Collective>(value: f64, comm: &C) -> f64 {
    if comm.size() == 1 {
        return value;
    }
    let mut all = vec![0.0; comm.size()];
    all[comm.rank()] = value;
    comm.sum_in_place(&mut all);
    all.iter().fold(
        f64::NEG_INFINITY,
        |a, &v| if v.is_nan() { v } else { a.max(v) },
    )
}

/// [`quantiles`] of the values of every process, exactly (the same order statistics):
/// each is found by bisection over the values' bit patterns, counting the values at or
/// below a candidate in every process's sorted copy (64 small reductions in all).
pub fn quantiles_of<C: Collective>(
    values: &[f64],
    levels: &[f64],
    comm: &C,
) -> Option<Vec<(f64, f64)>> {
    if comm.size() == 1 {
        return quantiles(values, levels);
    }
    let mut head = [
        values.len() as f64,
        values.iter().filter(|v| !v.is_finite()).count() as f64,
    ];
    comm.sum_in_place(&mut head);
    let n = head[0] as usize;
    if n == 0 || head[1] > 0.0 {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // The order statistics needed: the two around each level's position.
    let positions: Vec<(usize, usize, f64)> = levels
        .iter()
        .map(|&q| {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            (lo, (lo + 1).min(n - 1), pos.fract())
        })
        .collect();
    let ranks: Vec<usize> = positions.iter().flat_map(|&(a, b, _)| [a, b]).collect();
    let stats = order_statistics(&sorted, &ranks, comm);
    Some(
        levels
            .iter()
            .zip(positions)
            .enumerate()
            .map(|(i, (&q, (_, _, frac)))| {
                let (lo, hi) = (stats[2 * i], stats[2 * i + 1]);
                (q, lo + frac * (hi - lo))
            })
            .collect(),
    )
}

/// A finite `f64` as a `u64` of the same order.
fn key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn from_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The `k`-th smallest (zero-based) of all processes' values, for every `k` in `ranks`:
/// the smallest key whose count of values at or below it exceeds `k`.
fn order_statistics<C: Collective>(sorted: &[f64], ranks: &[usize], comm: &C) -> Vec<f64> {
    let mut lo = vec![0u64; ranks.len()];
    let mut hi = vec![u64::MAX; ranks.len()];
    let mut counts = vec![0.0; ranks.len()];
    for _ in 0..64 {
        for (i, c) in counts.iter_mut().enumerate() {
            let mid = lo[i] + (hi[i] - lo[i]) / 2;
            *c = sorted.partition_point(|&v| key(v) <= mid) as f64;
        }
        comm.sum_in_place(&mut counts);
        for (i, &c) in counts.iter().enumerate() {
            let mid = lo[i] + (hi[i] - lo[i]) / 2;
            if c as usize > ranks[i] {
                hi[i] = mid;
            } else {
                lo[i] = mid + 1;
            }
        }
    }
    hi.into_iter().map(from_key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use relgrad_core::{Mat, Shard, ThreadGroup};

    fn in_group<R: Send>(size: usize, f: impl Fn(ThreadGroup) -> R + Sync) -> Vec<R> {
        std::thread::scope(|s| {
            let hs: Vec<_> = ThreadGroup::new(size)
                .into_iter()
                .map(|g| {
                    let f = &f;
                    s.spawn(move || f(g))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn keys_keep_the_order_of_floats() {
        let v = [-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, f64::MAX];
        for w in v.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{w:?}");
        }
        for x in v {
            assert_eq!(from_key(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn statistics_across_a_group_equal_those_of_all_rows() {
        let values: Vec<f64> = (0..101)
            .map(|i| ((i * 37) % 101) as f64 * 0.7 - 20.0)
            .collect();
        let levels = crate::evaluation::QUANTILE_LEVELS;
        let x = Mat::from_fn(101, 2, |i, j| values[i] * (j + 1) as f64 + j as f64);
        let whole_q = quantiles(&values, &levels).unwrap();
        let whole_m = MeanSe::of(&values);
        for size in [2, 3, 5] {
            for (q, m, (mean, var), mx) in in_group(size, |g| {
                let s = Shard::even(101, g.rank(), size);
                let mine = &values[s.offset..s.offset + s.len];
                let rows = x.as_ref().rows_range(s.offset, s.offset + s.len);
                let top = mine.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                (
                    quantiles_of(mine, &levels, &g).unwrap(),
                    mean_se(mine, &g),
                    column_moments(rows, &g),
                    max(top, &g),
                )
            }) {
                assert_eq!(q, whole_q, "{size} processes");
                assert!((m.mean - whole_m.mean).abs() < 1e-12);
                assert!((m.two_se - whole_m.two_se).abs() < 1e-12);
                assert_eq!(m.n, 101);
                assert!((mean[1] - (2.0 * whole_m.mean + 1.0)).abs() < 1e-12);
                assert!(var[0] > 0.0 && (var[1] - 4.0 * var[0]).abs() < 1e-9);
                assert_eq!(mx, 50.0);
            }
        }
    }
}

//! `density.png`, the figure of a model of 2-D data, as in the toy figures of flow papers:
//! three square panels over the same box, side by side, each a heat map of the same
//! colour ramp: a 2-D histogram of the training rows, the learned density, and a 2-D
//! histogram of exact samples from the model.

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{atomically, err};
use crate::data::Table;
use crate::util::short_float;

/// The most exact samples worth drawing for the figure's third panel: callers draw as
/// many as there are training rows, up to this.
pub const MAX_DENSITY_SAMPLES: usize = 20_000;

/// A grid over a 2-D box: the points where a density is evaluated for [`density_2d`].
#[derive(Clone, Copy, Debug)]
pub struct Grid2 {
    /// `(x_min, x_max)`.
    pub x: (f64, f64),
    /// `(y_min, y_max)`.
    pub y: (f64, f64),
    /// Cells per side.
    pub n: usize,
}

impl Grid2 {
    /// A square box (the same extent on both axes, so shapes are not distorted) around the
    /// data: the 0.5th to 99.5th percentile of each column, padded by 15%, the shorter side
    /// widened about its centre; `n` square cells per side.
    pub fn around(data: &Table, n: usize) -> Self {
        let range = |j: usize| {
            let mut v: Vec<f64> = (0..data.rows)
                .map(|i| data.get(i, j))
                .filter(|x| x.is_finite())
                .collect();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                return (-1.0, 1.0);
            }
            let (a, b) = (v[v.len() / 200], v[(v.len() * 199 / 200).min(v.len() - 1)]);
            let pad = 0.15 * (b - a).max(1e-6);
            (a - pad, b + pad)
        };
        let (x, y) = (range(0), range(1));
        let half = 0.5 * (x.1 - x.0).max(y.1 - y.0);
        let around = |(a, b): (f64, f64)| (0.5 * (a + b) - half, 0.5 * (a + b) + half);
        Self {
            x: around(x),
            y: around(y),
            n,
        }
    }

    /// The cell centres, row by row from the top (`y` decreasing), as an `n^2 x 2` table.
    pub fn points(&self) -> Table {
        let n = self.n;
        Table::from_fn(n * n, 2, |k, j| {
            let (r, c) = (k / n, k % n);
            if j == 0 {
                self.x.0 + (c as f64 + 0.5) / n as f64 * (self.x.1 - self.x.0)
            } else {
                self.y.1 - (r as f64 + 0.5) / n as f64 * (self.y.1 - self.y.0)
            }
        })
    }

    /// The number of rows of `t` in each cell, in [`Grid2::points`] order; rows outside
    /// the box, or with a NaN, are not counted.
    fn histogram(&self, t: &Table) -> Vec<f64> {
        let n = self.n;
        let mut counts = vec![0.0; n * n];
        let cell = |v: f64, lo: f64, hi: f64| {
            let f = (v - lo) / (hi - lo);
            (0.0..=1.0)
                .contains(&f)
                .then(|| ((f * n as f64) as usize).min(n - 1))
        };
        for i in 0..t.rows {
            let c = cell(t.get(i, 0), self.x.0, self.x.1);
            let r = cell(-t.get(i, 1), -self.y.1, -self.y.0);
            if let (Some(r), Some(c)) = (r, c) {
                counts[r * n + c] += 1.0;
            }
        }
        counts
    }
}

/// Histogram cells per side for `points` points: about 4 points per occupied cell when
/// the data fill a sixth of the box, between 16 and `n` (at most the density's cells).
fn histogram_cells(points: usize, n: usize) -> usize {
    ((1.25 * (points as f64).sqrt()).round() as usize)
        .max(16)
        .min(n.max(1))
}

fn heat(t: f64) -> RGBColor {
    // A perceptually ordered dark-blue -> teal -> yellow ramp (viridis-like).
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f64;
    let i = (t.floor() as usize).min(stops.len() - 2);
    let f = t - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |x: f64, y: f64| (x + f * (y - x)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Pixels for a panel's tick labels left of its square plotting area.
const Y_LABELS: u32 = 46;
/// Pixels for a panel's tick labels below its square plotting area.
const X_LABELS: u32 = 28;

/// One panel: `values` (non-negative, in [`Grid2::points`] order of `grid`) as a heat map
/// scaled to their maximum, in the largest square plotting area `area` holds.
fn panel(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    grid: Grid2,
    values: &[f64],
) -> Result<()> {
    let area = area
        .titled(caption, ("sans-serif", 17))
        .map_err(err(path))?;
    let (w, h) = area.dim_in_pixel();
    let side = (w.saturating_sub(Y_LABELS + 16)).min(h.saturating_sub(X_LABELS + 8));
    let left = w.saturating_sub(Y_LABELS + side) / 2;
    let mut chart = ChartBuilder::on(&area)
        .margin_left(left)
        .margin_right(w.saturating_sub(Y_LABELS + side + left))
        .margin_top(4)
        .margin_bottom(h.saturating_sub(X_LABELS + side + 4))
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(grid.x.0..grid.x.1, grid.y.0..grid.y.1)
        .map_err(err(path))?;
    let max = values
        .iter()
        .cloned()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let n = grid.n;
    let (dx, dy) = (
        (grid.x.1 - grid.x.0) / n as f64,
        (grid.y.1 - grid.y.0) / n as f64,
    );
    chart
        .draw_series((0..n * n).map(|k| {
            let (r, c) = (k / n, k % n);
            let x0 = grid.x.0 + c as f64 * dx;
            let y1 = grid.y.1 - r as f64 * dy;
            let v = if values[k].is_finite() {
                values[k]
            } else {
                0.0
            };
            Rectangle::new([(x0, y1 - dy), (x0 + dx, y1)], heat(v / max).filled())
        }))
        .map_err(err(path))?;
    // The axes last, over the cells' edges.
    let label = |v: &f64| short_float(*v);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(err(path))?;
    Ok(())
}

fn draw_density_2d(
    path: &Path,
    title: &str,
    grid: Grid2,
    log_density: &[f64],
    samples: &Table,
    data: &Table,
) -> Result<()> {
    anyhow::ensure!(
        log_density.len() == grid.n * grid.n,
        "{} log-densities for a grid of {} points",
        log_density.len(),
        grid.n * grid.n
    );
    let root = BitMapBackend::new(path, (1500, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(err(path))?;
    let panels = root.split_evenly((1, 3));
    let bins = Grid2 {
        n: histogram_cells(data.rows.min(samples.rows), grid.n),
        ..grid
    };
    panel(
        path,
        &panels[0],
        &format!("data: histogram of {} training rows", data.rows),
        bins,
        &bins.histogram(data),
    )?;
    // exp(log p - max log p): the density up to the scale the panel drops anyway.
    let top = log_density
        .iter()
        .cloned()
        .filter(|l| l.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let density: Vec<f64> = log_density
        .iter()
        .map(|l| if l.is_finite() { (l - top).exp() } else { 0.0 })
        .collect();
    panel(path, &panels[1], "model density", grid, &density)?;
    panel(
        path,
        &panels[2],
        &format!("model: histogram of {} exact samples", samples.rows),
        bins,
        &bins.histogram(samples),
    )?;
    root.present().map_err(err(path))?;
    Ok(())
}

/// Draws the figure of a model of 2-D data: three square panels over `grid`'s box, each
/// a heat map whose colours are scaled to that panel's own maximum (so the panels compare
/// shapes, not heights): a 2-D histogram of `data` (the training rows), the learned
/// density (`log_density` per grid point, in [`Grid2::points`] order, exponentiated), and
/// a 2-D histogram of exact `samples` from the model. Both histograms share cells, fewer
/// than `grid`'s when there are few points (about 1.25 `sqrt(points)` per side, at least
/// 16); points outside the box are not drawn. The file is replaced atomically.
pub fn density_2d(
    path: &Path,
    title: &str,
    grid: Grid2,
    log_density: &[f64],
    samples: &Table,
    data: &Table,
) -> Result<()> {
    atomically(path, |tmp| {
        draw_density_2d(tmp, title, grid, log_density, samples, data)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_rows_in_their_cells_and_drops_the_rest() {
        let grid = Grid2 {
            x: (0.0, 2.0),
            y: (0.0, 2.0),
            n: 2,
        };
        // Top-left, bottom-right twice (one on the box's corner), outside, NaN.
        let t = Table::new(
            5,
            2,
            vec![0.5, 1.5, 1.5, 0.5, 2.0, 0.0, 3.0, 1.0, f64::NAN, 1.0],
        );
        assert_eq!(grid.histogram(&t), [1.0, 0.0, 0.0, 2.0]);
    }

    #[test]
    fn the_box_is_square_and_holds_the_data() {
        let t = Table::from_fn(
            400,
            2,
            |i, j| if j == 0 { i as f64 } else { (i % 7) as f64 },
        );
        let g = Grid2::around(&t, 10);
        assert!(((g.x.1 - g.x.0) - (g.y.1 - g.y.0)).abs() < 1e-9, "{g:?}");
        assert!(
            g.x.0 < 2.0 && g.x.1 > 397.0 && g.y.0 < 0.0 && g.y.1 > 6.0,
            "{g:?}"
        );
    }
}

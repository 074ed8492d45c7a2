//! Figures written next to a run's model (plotters, PNG):
//! - `curve.png`: training and validation log-likelihood per epoch;
//! - `density.png` (2-D data): histograms of the data and of exact samples either side of the
//!   learned density, as heat maps;
//! - `samples.png` and `relgrad sample`'s grids (image data): samples as a grid of images;
//! - `scaling.png` (`relgrad bench scaling`): the time of a gradient against the dimension,
//!   log-log, with the fitted exponents.
//!
//! Figures are a convenience: callers report a failure to draw one as a warning.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::data::{ImageShape, Table};

mod density;
mod scaling;
pub use density::{density_2d, Grid2, MAX_DENSITY_SAMPLES};
pub use scaling::{scaling_figure, FitLine, ScalingLine};

/// One point of a learning curve: `(epoch, train_ll, val_ll)`.
pub type CurvePoint = (usize, Option<f64>, Option<f64>);

/// Draws into a temporary sibling of `path` (same extension, so the encoder is chosen
/// by it), then makes it `path` atomically: a crash never leaves a torn figure.
fn atomically(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    if let Err(e) = draw(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    relgrad::model::atomic::replace_with(&tmp, path)?;
    Ok(())
}

fn err<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing {}: {e}", path.display())
}

fn draw_learning_curve(
    path: &Path,
    title: &str,
    points: &[CurvePoint],
    best_epoch: usize,
    decays: &[usize],
) -> Result<()> {
    let finite = |v: &Option<f64>| v.filter(|x| x.is_finite());
    let ys: Vec<f64> = points
        .iter()
        .flat_map(|(_, a, b)| [finite(a), finite(b)])
        .flatten()
        .collect();
    if ys.is_empty() {
        return Ok(());
    }
    let (mut lo, mut hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &y| {
            (l.min(y), h.max(y))
        });
    // Focus on the useful range: the starting point can be far below the rest.
    if points.len() > 3 {
        let tail: Vec<f64> = points[1..]
            .iter()
            .flat_map(|(_, a, b)| [finite(a), finite(b)])
            .flatten()
            .collect();
        if let Some(tmin) = tail.iter().cloned().reduce(f64::min) {
            lo = lo.max(tmin - 0.25 * (hi - tmin).abs());
        }
    }
    if hi - lo < 1e-9 {
        lo -= 1.0;
        hi += 1.0;
    }
    let pad = 0.05 * (hi - lo);
    let max_epoch = points.iter().map(|p| p.0).max().unwrap_or(1).max(1);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_epoch as f64, (lo - pad)..(hi + pad))
        .map_err(err(path))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("mean log-likelihood (nats)")
        .draw()
        .map_err(err(path))?;
    let series = |pick: fn(&CurvePoint) -> Option<f64>| -> Vec<(f64, f64)> {
        points
            .iter()
            .filter_map(|p| {
                pick(p)
                    .filter(|y| y.is_finite() && *y >= lo - pad)
                    .map(|y| (p.0 as f64, y))
            })
            .collect()
    };
    let train = series(|p| p.1);
    let val = series(|p| p.2);
    if !train.is_empty() {
        chart
            .draw_series(LineSeries::new(train, BLUE.stroke_width(2)))
            .map_err(err(path))?
            .label("training")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    }
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(val, RED.stroke_width(2)))
            .map_err(err(path))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    }
    // Decays of the learning rate: dashed, after their epoch.
    for (i, &e) in decays.iter().enumerate() {
        let x = e as f64 + 0.5;
        let (y0, y1) = (lo - pad, hi + pad);
        let n = 24;
        let dashes = (0..n).step_by(2).map(move |k| {
            let at = |k: usize| y0 + (y1 - y0) * k as f64 / n as f64;
            PathElement::new(vec![(x, at(k)), (x, at(k + 1))], GREEN.mix(0.7))
        });
        let drawn = chart.draw_series(dashes).map_err(err(path))?;
        if i == 0 {
            drawn
                .label("learning rate decayed")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN.mix(0.7)));
        }
    }
    let b = best_epoch as f64;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(b, lo - pad), (b, hi + pad)],
            BLACK.mix(0.4).stroke_width(1),
        )))
        .map_err(err(path))?
        .label(format!("best epoch ({best_epoch})"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.4)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err(path))?;
    root.present().map_err(err(path))?;
    Ok(())
}

fn draw_image_grid(
    path: &Path,
    images: &Table,
    shape: ImageShape,
    levels: f64,
    cols: usize,
) -> Result<()> {
    let (h, w) = (shape.height, shape.width);
    anyhow::ensure!(
        h * w == images.cols,
        "image shape {h}x{w} does not match {} columns",
        images.cols
    );
    let n = images.rows.clamp(1, MAX_GRID_IMAGES);
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let scale = (64 / h.max(w)).clamp(2, 16) as u32;
    let gap = 2u32;
    let cell_w = w as u32 * scale + gap;
    let cell_h = h as u32 * scale + gap;
    let size = (
        (cols as u64 * cell_w as u64 + gap as u64).min(u32::MAX as u64) as u32,
        (rows as u64 * cell_h as u64 + gap as u64).min(u32::MAX as u64) as u32,
    );
    anyhow::ensure!(
        size.0 as u64 * size.1 as u64 <= MAX_GRID_PIXELS,
        "an image grid of {} x {} pixels is too large to draw (the limit is {MAX_GRID_PIXELS} pixels)",
        size.0,
        size.1
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&RGBColor(128, 128, 128)).map_err(err(path))?;
    let max = (levels - 1.0).max(1e-12);
    for k in 0..n.min(images.rows) {
        let (gr, gc) = ((k / cols) as u32, (k % cols) as u32);
        let (ox, oy) = (gap + gc * cell_w, gap + gr * cell_h);
        for py in 0..h {
            for px in 0..w {
                let v = images.get(k, py * w + px);
                let g = if v.is_finite() {
                    (v / max).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let c = RGBColor((g * 255.0) as u8, (g * 255.0) as u8, (g * 255.0) as u8);
                let x0 = (ox + px as u32 * scale) as i32;
                let y0 = (oy + py as u32 * scale) as i32;
                root.draw(&Rectangle::new(
                    [(x0, y0), (x0 + scale as i32, y0 + scale as i32)],
                    c.filled(),
                ))
                .map_err(err(path))?;
            }
        }
    }
    root.present().map_err(err(path))?;
    Ok(())
}

/// Draws the learning curve: `(epoch, train_ll, val_ll)` per evaluated epoch, with the
/// best epoch and the epochs after which the learning rate decayed marked.
/// The file is replaced atomically.
pub fn learning_curve(
    path: &Path,
    title: &str,
    points: &[CurvePoint],
    best_epoch: usize,
    decays: &[usize],
) -> Result<()> {
    atomically(path, |tmp| {
        draw_learning_curve(tmp, title, points, best_epoch, decays)
    })
}

/// The most images an image grid shows (the first ones).
pub const MAX_GRID_IMAGES: usize = 1024;
/// The most pixels an image grid may have.
pub const MAX_GRID_PIXELS: u64 = 1 << 26;

/// Draws images (rows of `images`, pixel values `0..levels-1`, white ink on black as in
/// MNIST) as a grid with `cols` images per row: at most the first [`MAX_GRID_IMAGES`].
/// The file is replaced atomically.
pub fn image_grid(
    path: &Path,
    images: &Table,
    shape: ImageShape,
    levels: f64,
    cols: usize,
) -> Result<()> {
    atomically(path, |tmp| {
        draw_image_grid(tmp, images, shape, levels, cols)
    })
}

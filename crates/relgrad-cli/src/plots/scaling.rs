//! `scaling.png`, the figure of `relgrad bench scaling` (the paper's scaling figure): the
//! time of one gradient evaluation against the dimension `D`, both axes logarithmic, one
//! line per series (relgrad's gradients solid with dots, other implementations' with
//! triangles), each series' least-squares power law dashed (dark grey) over the range it
//! was fitted on, and the machine named under the plot.

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::{atomically, err};
use crate::util::short_float;

/// A power law `t = exp(intercept) D^exponent`, drawn from `D = from` to `D = to`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FitLine {
    /// The exponent (the slope on log-log axes).
    pub exponent: f64,
    /// The natural log of the time at `D = 1`.
    pub intercept: f64,
    /// The smallest dimension of the fit.
    pub from: f64,
    /// The largest dimension of the fit.
    pub to: f64,
}

/// One series of the figure.
#[derive(Clone, Debug)]
pub struct ScalingLine {
    /// The legend's text.
    pub label: String,
    /// `(D, milliseconds)`, ascending in `D`.
    pub points: Vec<(f64, f64)>,
    /// The fitted power law, if any.
    pub fit: Option<FitLine>,
    /// Another implementation's series (drawn with triangles).
    pub overlay: bool,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

fn draw(path: &Path, title: &str, caption: &str, lines: &[ScalingLine]) -> Result<()> {
    let all = || lines.iter().flat_map(|l| l.points.iter().copied());
    let positive = |v: &f64| v.is_finite() && *v > 0.0;
    let xs: Vec<f64> = all().map(|p| p.0).filter(positive).collect();
    let ys: Vec<f64> = all().map(|p| p.1).filter(positive).collect();
    let range = |v: &[f64], lo_pad: f64, hi_pad: f64| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0f64, f64::max);
        if lo.is_finite() && hi > 0.0 {
            (lo / lo_pad, hi * hi_pad)
        } else {
            (1.0, 10.0)
        }
    };
    let (x0, x1) = range(&xs, 1.25, 1.25);
    let (y0, y1) = range(&ys, 2.0, 2.0);
    // Ticks at the powers of two in D and at 1, 10, 100, ... milliseconds.
    let powers = |lo: f64, hi: f64, base: f64| -> Vec<f64> {
        let first = lo.log(base).ceil() as i32;
        let last = hi.log(base).floor() as i32;
        (first..=last.max(first)).map(|k| base.powi(k)).collect()
    };
    let root = BitMapBackend::new(path, (900, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(err(path))?;
    let (top, bottom) = root.split_vertically(590);
    bottom
        .draw(&Text::new(
            caption.to_string(),
            (12, 4),
            ("sans-serif", 15).into_font().color(&BLACK.mix(0.8)),
        ))
        .map_err(err(path))?;
    let mut chart = ChartBuilder::on(&top)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0..x1).log_scale().with_key_points(powers(x0, x1, 2.0)),
            (y0..y1).log_scale().with_key_points(powers(y0, y1, 10.0)),
        )
        .map_err(err(path))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("dimension D")
        .y_desc("milliseconds per gradient evaluation")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| {
            if *y >= 1.0 {
                format!("{y:.0}")
            } else {
                short_float(*y)
            }
        })
        .draw()
        .map_err(err(path))?;
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|(x, y)| positive(x) && positive(y))
            .collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err(path))?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        if line.overlay {
            chart
                .draw_series(
                    pts.iter()
                        .map(|&p| TriangleMarker::new(p, 6, color.filled())),
                )
                .map_err(err(path))?;
        } else {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(err(path))?;
        }
        if let Some(f) = line.fit {
            // The fitted power law, dashed, at 16 points evenly spaced in log D.
            let (a, b) = (f.from.ln(), f.to.ln());
            let fitted = (0..=16).map(|k| {
                let x = (a + (b - a) * k as f64 / 16.0).exp();
                (x, (f.intercept + f.exponent * x.ln()).exp())
            });
            chart
                .draw_series(DashedLineSeries::new(
                    fitted,
                    8,
                    6,
                    ShapeStyle {
                        color: BLACK.mix(0.7),
                        filled: false,
                        stroke_width: 1,
                    },
                ))
                .map_err(err(path))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err(path))?;
    root.present().map_err(err(path))?;
    Ok(())
}

/// Draws the scaling figure to `path` (replaced atomically): `lines` on log-log axes
/// under `title`, with `caption` (the machine) below the plot. The fitted power laws are
/// dashed grey lines over their ranges; their exponents belong in the labels.
pub fn scaling_figure(
    path: &Path,
    title: &str,
    caption: &str,
    lines: &[ScalingLine],
) -> Result<()> {
    atomically(path, |tmp| draw(tmp, title, caption, lines))
}

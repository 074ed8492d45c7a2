//! The end of a `relgrad train` run: the test split's metrics, the model file with the
//! CLI's data provenance, the figures, and the summary printed on stdout.

use std::path::Path;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad::model::{DensityModel, Evaluation, Fitted, Part, Preprocess, Sharded};
use relgrad::{Collective, Threads};
use serde_json::json;

use super::super::backend;
use super::group::together;
use super::settings::DataSpec;
use crate::data::{ImageShape, ShardedSplits, Table};
use crate::plots;

/// What the report needs besides the fit's result.
pub struct RunOutput<'a, C> {
    /// The data spec (recorded in the model file).
    pub data: &'a DataSpec,
    /// This process's rows of every part.
    pub splits: &'a ShardedSplits,
    /// The run directory.
    pub out: &'a Path,
    /// Threads for the final evaluations.
    pub threads: Threads,
    /// The processes of the run (rank 0 writes).
    pub comm: &'a C,
}

/// A square image shape for image data of `cols` pixels without a recorded shape.
fn square_image(cols: usize, pre: &Preprocess) -> Option<ImageShape> {
    pre.levels()?;
    let side = (cols as f64).sqrt().round() as usize;
    (side * side == cols).then_some(ImageShape {
        height: side,
        width: side,
    })
}

/// Evaluates the test rows (every process its own), writes the model file (rank 0);
/// returns the model with its final metadata and the evaluation of the test rows.
pub fn save_model<C: Collective>(
    ctx: &RunOutput<'_, C>,
    fitted: &Fitted,
) -> Result<(DensityModel, Option<Evaluation>)> {
    let be = backend(ctx.threads);
    let mut model = fitted.model.clone();
    let g = fitted.reference.as_ref().map(|g| (g, "training split"));
    let test = ctx
        .splits
        .test
        .as_ref()
        .map(|(t, shard)| {
            let x = Sharded {
                x: t.as_mat(),
                shard: *shard,
            };
            model.evaluate_distributed(&be, x, Part::Test, g, ctx.comm)
        })
        .transpose();
    let test = together(ctx.comm, test.map_err(anyhow::Error::from))?;
    let cols = ctx.splits.train.table.cols;
    model.image = ctx
        .splits
        .train
        .image
        .or_else(|| square_image(cols, &model.preprocess));
    let (train, val, test_rows) = ctx.splits.totals();
    model.data = json!({
        "source": ctx.data.source.to_json(),
        "split": ctx.data.split.to_json(),
        "rows": {"train": train, "val": val, "test": test_rows},
        "cols": cols,
        "test_origin": ctx.splits.test_origin,
        "levels": model.preprocess.levels(),
    });
    model.metrics["test"] = test.as_ref().map(Evaluation::to_json).into();
    let saved = if ctx.comm.rank() == 0 {
        model.save(ctx.out.join("model.safetensors"))
    } else {
        Ok(())
    };
    together(ctx.comm, saved.map_err(anyhow::Error::from))?;
    Ok((model, test))
}

/// The figures: the learning curve, and the density (2-D data) or samples (image data).
/// Failures are warnings.
pub fn figures<C>(ctx: &RunOutput<'_, C>, model: &DensityModel, fitted: &Fitted) {
    let warn = |r: Result<()>| {
        if let Err(e) = r {
            eprintln!("warning: {e:#}");
        }
    };
    let h = &fitted.history;
    let points: Vec<_> = h
        .epochs
        .iter()
        .map(|m| (m.epoch, m.train_ll, m.val_ll))
        .collect();
    let name = ctx.data.source.short_name();
    warn(plots::learning_curve(
        &ctx.out.join("curve.png"),
        &format!(
            "{name}: mean log-likelihood ({})",
            model.preprocess.space_name()
        ),
        &points,
        h.best_epoch,
        &h.decays,
    ));
    let mut rng = StdRng::seed_from_u64(model.seed ^ 0x5A3F);
    let be = backend(ctx.threads);
    let train = &ctx.splits.train.table;
    if train.cols == 2 {
        let grid = plots::Grid2::around(train, 120);
        let pts = grid.points();
        warn((|| -> Result<()> {
            let t = model.transform(pts.as_mat(), Part::All)?;
            let lp = model.network.log_prob(&be, t.x.as_ref())?;
            let lp: Vec<f64> = lp.iter().zip(&t.log_jacobian).map(|(a, b)| a + b).collect();
            let n = train.rows.clamp(1, plots::MAX_DENSITY_SAMPLES);
            let s = Table::from_mat(model.sample(&be, n, &mut rng)?);
            plots::density_2d(&ctx.out.join("density.png"), &name, grid, &lp, &s, train)
        })());
    } else if let (Some(shape), Some(levels)) = (model.image, model.preprocess.levels()) {
        warn((|| -> Result<()> {
            let s = Table::from_mat(model.sample(&be, 64, &mut rng)?);
            plots::image_grid(&ctx.out.join("samples.png"), &s, shape, levels as f64, 8)
        })());
    }
}

/// The summary printed at the end of a run.
pub fn summary<C>(
    ctx: &RunOutput<'_, C>,
    model: &DensityModel,
    fitted: &Fitted,
    test: Option<&Evaluation>,
    seconds: f64,
) -> String {
    let space = model.preprocess.space_name();
    let ev_train = fitted.train.as_ref();
    let ev_val = fitted.val.as_ref();
    let named = [("train", ev_train), ("val", ev_val), ("test", test)];
    let parts: Vec<String> = named
        .iter()
        .filter_map(|(n, e)| e.map(|e| format!("{n} {}", e.ll.display(2))))
        .collect();
    let gparts: Vec<String> = named
        .iter()
        .filter_map(|(n, e)| {
            e.and_then(|e| e.gaussian.as_ref())
                .map(|(g, _)| format!("{n} {}", g.display(2)))
        })
        .collect();
    let mut report = format!(
        "model:    {}\nmodel LL: {} nats ({space})\n",
        ctx.out.join("model.safetensors").display(),
        parts.join(" | ")
    );
    if !gparts.is_empty() {
        report.push_str(&format!(
            "Gaussian: {} nats (best full-covariance Gaussian of the training split)\n",
            gparts.join(" | ")
        ));
    }
    let (headline_name, headline) = match (test, ev_val, ev_train) {
        (Some(t), _, _) => ("test", t),
        (None, Some(v), _) => ("val", v),
        (None, None, Some(t)) => ("train", t),
        (None, None, None) => return report,
    };
    if let Some(levels) = model.preprocess.levels() {
        if let Some(b) = headline.bits_per_dim {
            report.push_str(&format!(
                "pixels:   {headline_name} {} nats in pixel space ({levels} levels), {} bits/dim\n",
                headline.ll_data.display(2),
                b.display(4)
            ));
        }
    } else if !matches!(model.preprocess, Preprocess::None) {
        report.push_str(&format!(
            "data:     {headline_name} {} nats in the data's units\n",
            headline.ll_data.display(2)
        ));
    }
    let h = &fitted.history;
    let mut stop = if h.decays.is_empty() {
        String::new()
    } else {
        let after: Vec<String> = h.decays.iter().map(|e| e.to_string()).collect();
        format!(
            ", learning rate decayed after epoch{} {}",
            if after.len() == 1 { "" } else { "s" },
            after.join(", ")
        )
    };
    if h.stopped_early {
        let look_ahead = model.training["look_ahead"].as_u64().unwrap_or(0);
        stop.push_str(&format!(
            ", stopped early after {look_ahead} epochs without improvement"
        ));
    }
    let beats = headline
        .gaussian
        .as_ref()
        .map(|(g, _)| {
            let verdict = if headline.ll.mean > g.mean {
                "beats"
            } else {
                "does not beat"
            };
            format!(" ({verdict} the Gaussian's {:.2})", g.mean)
        })
        .unwrap_or_default();
    report.push_str(&format!(
        "done: {} epochs in {:.1} s (best epoch {}{stop}); {headline_name} LL {} nats{beats}",
        h.epochs.last().map_or(0, |m| m.epoch),
        seconds,
        h.best_epoch,
        headline.ll.display(2),
    ));
    report
}

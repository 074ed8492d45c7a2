//! `relgrad eval`: the mean log-likelihood of a model on data, with two standard errors,
//! in the model's space and the data's units (pixel space and bits per dimension for
//! image data), beside the best full-covariance Gaussian.

use anyhow::Result;
use serde_json::json;

use super::{check_dims, fit_gaussian, load_model, select_rows, transform, Evaluation};
use crate::cli::EvalArgs;
use crate::data::Part;
use crate::preprocess::Preprocess;

/// Runs `relgrad eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let (path, mf) = load_model(&args.model)?;
    let sel = select_rows(&mf, args.data.as_deref(), args.split, args.n, args.seed)?;
    let d = mf.model.dim();
    check_dims(sel.table.cols, d, &sel.what, &path)?;
    sel.table.check_finite(&sel.what)?;
    let seed = args
        .seed
        .or(sel.recorded.as_ref().map(|r| r.seed))
        .unwrap_or(0);
    let x = transform(&mf.preprocess, &sel.table, seed, sel.part, &sel.what)?;

    // The reference Gaussian: fitted on the model's training split when it can be rebuilt,
    // else on the evaluated rows themselves (an in-sample, optimistic reference).
    let from_train = sel.recorded.as_ref().and_then(|rec| {
        let s = rec.splits().ok()?;
        if s.train.table.cols != d {
            return None;
        }
        let t = transform(
            &mf.preprocess,
            &s.train.table,
            rec.seed,
            Part::Train,
            "the training data",
        )
        .ok()?;
        fit_gaussian(&t.table, args.threads).ok()
    });
    let (gaussian, fitted_on) = match from_train {
        Some(g) => (Some(g), "training split"),
        None => (
            fit_gaussian(&x.table, args.threads).ok(),
            "evaluation data (in-sample)",
        ),
    };
    let ev = Evaluation::compute(
        &mf.model,
        &mf.preprocess,
        &x,
        gaussian.as_ref().map(|g| (g, fitted_on)),
        args.threads,
    )?;

    if args.json {
        let mut v = ev.to_json();
        v["model"] = json!(path.display().to_string());
        v["data"] = json!(sel.what);
        v["split"] = json!(sel.part.name());
        v["space"] = json!(mf.preprocess.space_name());
        v["levels"] = json!(mf.preprocess.levels());
        println!("{v}");
        return Ok(());
    }
    println!(
        "model: {} ({d}-d, {} layers, {}, {} preprocessing)",
        path.display(),
        mf.model.n_layers(),
        mf.model.precision(),
        mf.preprocess.name()
    );
    println!("data:  {} ({} rows)", sel.what, ev.n);
    println!(
        "log-likelihood ({}): {} nats",
        mf.preprocess.space_name(),
        ev.ll.display(3)
    );
    match (&mf.preprocess, ev.bits_per_dim) {
        (Preprocess::Logit { levels, .. }, Some(b)) => {
            println!(
                "log-likelihood (pixel space, {levels} levels): {} nats",
                ev.ll_data.display(3)
            );
            println!("bits per dimension: {}", b.display(4));
        }
        (Preprocess::Standardize { .. }, _) => {
            println!(
                "log-likelihood (data's units): {} nats",
                ev.ll_data.display(3)
            );
        }
        _ => {}
    }
    if let Some((g, on)) = ev.gaussian {
        let verdict = if ev.ll.mean > g.mean {
            "the model is better"
        } else {
            "the Gaussian is better"
        };
        println!(
            "best full-covariance Gaussian (fitted on the {on}): {} nats ({}); {verdict} by {:.3} nats",
            g.display(3),
            mf.preprocess.space_name(),
            (ev.ll.mean - g.mean).abs()
        );
    }
    Ok(())
}

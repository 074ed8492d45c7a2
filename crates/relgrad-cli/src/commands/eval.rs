//! `relgrad eval`: the mean log-likelihood of a model on data, with two standard errors,
//! in the model's space and the data's units (pixel space and bits per dimension for
//! image data), beside the best full-covariance Gaussian.

use anyhow::Result;
use relgrad::model::Preprocess;
use serde_json::json;

use super::{backend, check_dims, load_model, select_rows};
use crate::cli::EvalArgs;

/// Runs `relgrad eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let (path, mf) = load_model(&args.model)?;
    let sel = select_rows(&mf, args.data.as_deref(), args.split, args.n, args.seed)?;
    let d = mf.dim();
    check_dims(sel.table.cols, d, &sel.what, &path)?;
    sel.table.check_finite(&sel.what)?;
    anyhow::ensure!(sel.table.rows > 0, "{}: no rows to evaluate", sel.what);
    let be = backend(args.threads);

    // The reference Gaussian: fitted on the model's training split when it can be rebuilt,
    // else on the evaluated rows themselves (an in-sample, optimistic reference).
    let from_train = sel.recorded.as_ref().and_then(|rec| {
        let s = rec.splits().ok()?;
        let mut m = mf.clone();
        m.seed = rec.seed;
        m.reference_gaussian(&be, s.train.table.as_mat()).ok()
    });
    // The evaluated rows' dequantisation noise: --seed, else the model's training seed.
    let mut scored = mf.clone();
    scored.seed = args
        .seed
        .or(sel.recorded.as_ref().map(|r| r.seed))
        .unwrap_or(mf.seed);
    let (gaussian, fitted_on) = match from_train {
        Some(g) => (Some(g), "training split"),
        None => {
            let x = scored
                .transform(sel.table.as_mat(), sel.part.into())
                .map_err(|e| anyhow::anyhow!("{}: {e}", sel.what))?;
            (
                relgrad::gaussian::Gaussian::fit(&be, x.x.as_ref()).ok(),
                "evaluation data (in-sample)",
            )
        }
    };
    let ev = scored
        .evaluate(
            &be,
            sel.table.as_mat(),
            sel.part.into(),
            gaussian.as_ref().map(|g| (g, fitted_on)),
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", sel.what))?;

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
    // The base is named when it is not the standard normal.
    let base = super::describe_base(mf.network.base())
        .map(|b| format!(", {b}"))
        .unwrap_or_default();
    println!(
        "model: {} ({d}-d, {} layers, {}{base}, {} preprocessing)",
        path.display(),
        mf.network.n_layers(),
        mf.network.precision().name(),
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
    if let Some((g, on)) = &ev.gaussian {
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

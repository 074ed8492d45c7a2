//! `relgrad train`: fit a model by exact maximum likelihood with the relative gradient.
//!
//! A front end over the library's fit pipeline (`relgrad::model::Fit`): this module reads
//! the arguments and the data, and prints; the library fits the preprocessing, starts,
//! trains, stops early and keeps the best parameters.
//!
//! The run directory receives `model.safetensors` (the best parameters, with the
//! preprocessing, settings, data provenance and final metrics in its metadata),
//! `metrics.csv`, `curve.png`, `density.png` (2-D data) or `samples.png` (image data), and
//! `checkpoint.safetensors`, rewritten atomically after every epoch. Ctrl-C stops between
//! steps and leaves the last checkpoint intact; `--resume RUN_DIR` continues from it and
//! reaches the same result as an uninterrupted run.

mod hooks;
mod report;
mod settings;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, ensure, Context, Result};
use relgrad::model::{Fit, Stop};

pub use hooks::metrics_csv;
use hooks::{install_ctrlc, RunHooks};
use report::RunOutput;
use settings::{DataSpec, Job};

use super::backend;
use crate::checkpoint;
use crate::cli::TrainArgs;
use crate::data::{split, Splits};
use crate::util::short_float;
use crate::{ExitError, EXIT_DIVERGED, EXIT_INTERRUPTED};

/// The files a run writes (removed by `--force`).
const RUN_FILES: [&str; 6] = [
    "model.safetensors",
    checkpoint::FILE_NAME,
    "metrics.csv",
    "curve.png",
    "density.png",
    "samples.png",
];

fn prepare_out_dir(out: &Path, force: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    ensure!(
        out.is_dir(),
        "{} exists and is not a directory",
        out.display()
    );
    let non_empty = std::fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .next()
        .is_some();
    if non_empty {
        ensure!(
            force,
            "the run directory {} already exists; pass --force to overwrite it, --out to choose another, or --resume {} to continue it",
            out.display(),
            out.display()
        );
        for f in RUN_FILES {
            let p = out.join(f);
            if p.exists() {
                std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }
    }
    Ok(())
}

/// Loads the data, checks it for non-finite values (numbering rows as the file does,
/// before any split), and splits it.
fn load_splits(data: &DataSpec) -> Result<Splits> {
    let desc = data.source.describe();
    let loaded = data
        .source
        .load()
        .with_context(|| format!("loading the training data {desc}"))?;
    loaded.main.table.check_finite(&desc)?;
    if let Some(t) = &loaded.test {
        t.table
            .check_finite(&format!("the bundled test images of {desc}"))?;
    }
    // Extra --val and --test files are checked as they are loaded.
    split(loaded, &data.split)
}

/// The default run directory: `runs/<data>-<preprocess>-l<L>-<optimizer>-lr<lr>-b<batch>-s<seed>`.
fn default_out<B>(data: &DataSpec, fit: &Fit<B>) -> PathBuf {
    let c = fit.config();
    let b = if c.batch_size == usize::MAX {
        "full".to_string()
    } else {
        c.batch_size.to_string()
    };
    PathBuf::from("runs").join(format!(
        "{}-{}-l{}-{}-lr{}-b{}-s{}",
        data.source.short_name(),
        fit.preprocess().name(),
        c.n_layers,
        c.optimizer.name(),
        short_float(c.optimizer.lr()),
        b,
        c.seed
    ))
}

fn constant_hint(cols: &[usize]) -> String {
    let list: Vec<String> = cols.iter().take(8).map(|j| (j + 1).to_string()).collect();
    let more = if cols.len() > 8 { ", ..." } else { "" };
    format!(
        "{} column(s) of the training data are constant (columns {}{more}): no density fits them and the likelihood is unbounded; drop them, or dequantise integer data (--preprocess logit, with --levels)",
        cols.len(),
        list.join(", ")
    )
}

/// Runs `relgrad train`.
pub fn run(args: TrainArgs, explicit: &BTreeSet<String>) -> Result<()> {
    install_ctrlc();
    let started = Instant::now();
    let (data, job) = match &args.resume {
        Some(dir) => settings::resume(&args, dir, explicit)?,
        None => settings::new_run(&args, explicit)?,
    };
    if let (
        Job::New {
            out: Some(out),
            force,
            ..
        },
        None,
    ) = (&job, &args.resume)
    {
        prepare_out_dir(out, *force)?;
    }
    let splits = load_splits(&data)?;
    let desc = data.source.describe();
    if let Job::New {
        init_path: Some(p),
        config,
        ..
    } = &job
    {
        if let relgrad::model::Start::Model(m) = &config.start {
            super::check_dims(
                splits.train.table.cols,
                m.dim(),
                &format!("the training data, {desc}"),
                p,
            )?;
        }
    }
    let be = backend(args.threads);
    let (train, val) = (
        splits.train.table.as_mat(),
        splits.val.as_ref().map(|v| v.as_mat()),
    );
    let (fit, out) = match job {
        Job::New {
            config, out, force, ..
        } => {
            let levels = config.levels.or(splits.train.levels);
            ensure!(
                levels.is_some() || config.preprocess != relgrad::model::PreprocessKind::Logit,
                "--preprocess logit needs integer pixel data with known levels: pass --levels (e.g. 256 for 8-bit images)"
            );
            let fit = Fit::new(
                &be,
                relgrad::model::FitConfig { levels, ..*config },
                train,
                val,
            )
            .map_err(|e| anyhow!("{e}"))?;
            let out = match out {
                Some(o) => o,
                None => {
                    let o = default_out(&data, &fit);
                    prepare_out_dir(&o, force)?;
                    o
                }
            };
            (fit, out)
        }
        Job::Resume {
            dir,
            checkpoint,
            epochs,
            allow_changed_data,
        } => (
            if allow_changed_data {
                Fit::resume_on_changed_data(&be, *checkpoint, train, val, epochs)
            } else {
                Fit::resume(&be, *checkpoint, train, val, epochs)
            }
            .map_err(|e| anyhow!("resuming {}: {e}", dir.display()))?,
            dir,
        ),
    };
    std::fs::create_dir_all(&out)
        .with_context(|| format!("creating the run directory {}", out.display()))?;
    let constant = fit.constant_columns();
    let c = fit.config();
    if !args.quiet {
        if !constant.is_empty() {
            eprintln!("warning: {}", constant_hint(&constant));
        }
        eprintln!(
            "training {} layers on {desc} ({} training rows, {} validation, {} test; {}-d, {} preprocessing) with {} lr {} in {}; run directory {}",
            c.n_layers,
            fit.n_train(),
            fit.n_val(),
            splits.test.as_ref().map_or(0, |t| t.rows),
            splits.train.table.cols,
            fit.preprocess().name(),
            c.optimizer.name(),
            c.optimizer.lr(),
            c.precision.name(),
            out.display()
        );
        if fit.epochs_done() > 0 {
            eprintln!("resuming after epoch {}", fit.epochs_done());
        }
    }
    let mut hooks = RunHooks::new(out.clone(), args.quiet, fit.n_train(), c.max_epochs);
    let fitted = fit.run(&mut hooks);
    hooks.clear();
    let fitted = fitted.map_err(|e| anyhow!("training failed: {e}"))?;
    let ctx = RunOutput {
        data: &data,
        splits: &splits,
        out: &out,
        threads: args.threads,
    };
    match fitted.stop {
        Stop::Cancelled { epochs_done } => Err(ExitError {
            message: format!(
                "interrupted; the checkpoint of epoch {epochs_done} in {} is intact; continue with: relgrad train --resume {}",
                out.display(),
                out.display()
            ),
            code: EXIT_INTERRUPTED,
        }
        .into()),
        Stop::Diverged { epoch } => {
            let saved = match report::save_model(&ctx, &fitted) {
                Ok(_) => format!(
                    "the best parameters (epoch {}) were saved to {}",
                    fitted.history.best_epoch,
                    out.join("model.safetensors").display()
                ),
                Err(e) => format!("saving the best parameters failed too: {e:#}"),
            };
            let note = if constant.is_empty() {
                String::new()
            } else {
                format!(" (but note: {})", constant_hint(&constant))
            };
            Err(ExitError {
                message: format!(
                    "training diverged at epoch {epoch} (non-finite log-likelihood or gradient); {saved}; likely causes: {}{note}",
                    fitted.advice.as_deref().unwrap_or("unknown")
                ),
                code: EXIT_DIVERGED,
            }
            .into())
        }
        Stop::MaxEpochs | Stop::EarlyStopped => {
            let (model, test) = report::save_model(&ctx, &fitted)?;
            report::figures(&ctx, &model, &fitted);
            let seconds = started.elapsed().as_secs_f64();
            println!("{}", report::summary(&ctx, &model, &fitted, test.as_ref(), seconds));
            Ok(())
        }
    }
}

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
//!
//! With `--distributed`, under `mpirun`, every process trains the same model on its share
//! of the rows (the library's data-parallel fit); rank 0 alone prints and writes the run
//! directory (see [`group`]).

mod group;
mod hooks;
mod report;
mod settings;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, ensure, Context, Result};
use relgrad::model::{Fit, Sharded, Stop};
use relgrad::{Alone, Collective};

use group::together;
pub use hooks::metrics_csv;
use hooks::{install_ctrlc, RunHooks};
use report::RunOutput;
use settings::{DataSpec, Job};

use super::backend;
use crate::checkpoint;
use crate::cli::TrainArgs;
use crate::data::{split, split_sharded, ShardedSplits};
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
/// before any split), and splits it; in a distributed run, this process's share only.
fn load_splits<C: Collective>(data: &DataSpec, comm: &C) -> Result<ShardedSplits> {
    let desc = data.source.describe();
    if comm.size() > 1 {
        let s = split_sharded(&data.source, &data.split, comm.rank(), comm.size())?;
        s.check_finite(&desc)?;
        return Ok(s);
    }
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
    split(loaded, &data.split).map(ShardedSplits::whole)
}

/// The default run directory: `runs/<data>-<preprocess>-l<L>-<optimizer>-lr<lr>-b<batch>-s<seed>`.
fn default_out<B, C: Collective>(data: &DataSpec, fit: &Fit<B, C>) -> PathBuf {
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

/// The activation, a base other than the normal, and the learnable parameters' Adam rate,
/// for the line that starts a run: `16-bin splines on [-3, 3], Adam lr 0.003 for them`.
fn architecture(c: &relgrad::model::FitConfig) -> String {
    let mut s = match c.activation.bins() {
        Some(k) => format!(
            "{k}-bin splines on [-{t}, {t}]",
            t = c.activation.parameter()
        ),
        None => format!("{} {}", c.activation.name(), c.activation.parameter()),
    };
    if let Some(b) = super::describe_base(c.base) {
        s.push_str(&format!(", {b}"));
    }
    let lr = c.spline_optimizer.lr();
    match (c.activation.is_learnable(), c.base.is_learnable()) {
        (true, false) => s.push_str(&format!(", Adam lr {lr} for them")),
        (false, true) => s.push_str(&format!(", Adam lr {lr} for its parameters")),
        (true, true) => s.push_str(&format!(", Adam lr {lr} for both")),
        (false, false) => {}
    }
    s
}

/// Runs `relgrad train`.
pub fn run(args: TrainArgs, explicit: &BTreeSet<String>) -> Result<()> {
    if args.distributed {
        return distributed(args, explicit);
    }
    run_in(args, explicit, &Alone)
}

#[cfg(feature = "mpi")]
fn distributed(args: TrainArgs, explicit: &BTreeSet<String>) -> Result<()> {
    group::run_mpi(|comm| run_in(args, explicit, comm))
}

#[cfg(not(feature = "mpi"))]
fn distributed(_: TrainArgs, _: &BTreeSet<String>) -> Result<()> {
    Err(crate::usage_error(
        "--distributed needs a relgrad built with MPI: install an MPI library and libclang (apt-get install libopenmpi-dev openmpi-bin libclang-dev), build with `cargo build --release -p relgrad-cli --features mpi`, and start it with mpirun; see docs/distributed.md",
    ))
}

/// `relgrad train` as one process of the group `comm` (a single process: [`Alone`]).
fn run_in<C: Collective>(args: TrainArgs, explicit: &BTreeSet<String>, comm: &C) -> Result<()> {
    install_ctrlc();
    let started = Instant::now();
    // Rank 0 alone prints and writes.
    let lead = comm.rank() == 0;
    let quiet = args.quiet || !lead;
    let settings = match &args.resume {
        Some(dir) => settings::resume(&args, dir, explicit),
        None => settings::new_run(&args, explicit),
    };
    let (data, job) = together(comm, settings)?;
    let prepared = match (&job, &args.resume) {
        (
            Job::New {
                out: Some(out),
                force,
                ..
            },
            None,
        ) if lead => prepare_out_dir(out, *force),
        _ => Ok(()),
    };
    together(comm, prepared)?;
    let splits = together(comm, load_splits(&data, comm))?;
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
    let train = Sharded {
        x: splits.train.table.as_mat(),
        shard: splits.train_shard,
    };
    let val = splits.val.as_ref().map(|(t, shard)| Sharded {
        x: t.as_mat(),
        shard: *shard,
    });
    let prepared = match job {
        Job::New {
            config, out, force, ..
        } => {
            let levels = config.levels.or(splits.train.levels);
            ensure!(
                levels.is_some() || config.preprocess != relgrad::model::PreprocessKind::Logit,
                "--preprocess logit needs integer pixel data with known levels: pass --levels (e.g. 256 for 8-bit images)"
            );
            let mut config = relgrad::model::FitConfig { levels, ..*config };
            let from_model = matches!(config.start, relgrad::model::Start::Model(_));
            if !explicit.contains("activation") && !from_model {
                // Neither named nor taken from a model: chosen by the data's width.
                if let Some((act, layers)) =
                    relgrad::model::automatic_architecture(splits.train.table.cols)
                {
                    config.activation = match (act, args.activation) {
                        (relgrad::Activation::Spline { .. }, _) => relgrad::Activation::Spline {
                            bins: args.bins,
                            bound: args.bound,
                        },
                        (a, _) => a,
                    };
                    config
                        .activation
                        .validate()
                        .map_err(|e| crate::usage_error(format!("--bins/--bound: {e}")))?;
                    if !explicit.contains("layers") {
                        config.n_layers = layers;
                    }
                }
            }
            if config.activation.is_learnable() && !explicit.contains("layers") && !from_model {
                // Splines, named or chosen, take their own default depth.
                config.n_layers = relgrad::model::SPLINE_LAYERS;
            }
            Fit::distributed(&be, config, comm, train, val)
                .map_err(|e| anyhow!("{e}"))
                .map(|fit| (fit, out, force))
        }
        Job::Resume {
            dir,
            checkpoint,
            epochs,
            allow_changed_data,
        } => {
            let r = Fit::resume_distributed(
                &be,
                *checkpoint,
                comm,
                train,
                val,
                epochs,
                allow_changed_data,
            );
            r.map_err(|e| anyhow!("resuming {}: {e}", dir.display()))
                .map(|fit| (fit, Some(dir), false))
        }
    };
    let (fit, out, force) = together(comm, prepared)?;
    let (out, fresh) = match out {
        Some(o) => (o, false),
        None => (default_out(&data, &fit), true),
    };
    let made = if lead {
        (if fresh {
            prepare_out_dir(&out, force)
        } else {
            Ok(())
        })
        .and_then(|()| {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("creating the run directory {}", out.display()))
        })
    } else {
        Ok(())
    };
    together(comm, made)?;
    // Constant columns are judged on this process's rows: only a single process warns.
    let constant = if comm.size() == 1 {
        fit.constant_columns()
    } else {
        Vec::new()
    };
    let c = fit.config();
    if !quiet {
        if !constant.is_empty() {
            eprintln!("warning: {}", constant_hint(&constant));
        }
        eprintln!(
            "training {} layers ({}) on {desc} ({} training rows, {} validation, {} test; {}-d, {} preprocessing) with {} lr {} in {}; run directory {}",
            c.n_layers,
            architecture(c),
            fit.n_train(),
            fit.n_val(),
            splits.totals().2,
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
        if comm.size() > 1 {
            eprintln!(
                "data-parallel over {} processes (each holds about {} training rows)",
                comm.size(),
                splits.train_shard.len
            );
        }
    }
    let mut hooks = RunHooks::new(out.clone(), quiet, fit.n_train(), c.max_epochs);
    hooks.writer = lead;
    let fitted = fit.run(&mut hooks);
    hooks.clear();
    let fitted = together(comm, fitted.map_err(|e| anyhow!("training failed: {e}")))?;
    let ctx = RunOutput {
        data: &data,
        splits: &splits,
        out: &out,
        threads: args.threads,
        comm,
    };
    let ended = match fitted.stop {
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
            if lead {
                report::figures(&ctx, &model, &fitted);
                let seconds = started.elapsed().as_secs_f64();
                println!("{}", report::summary(&ctx, &model, &fitted, test.as_ref(), seconds));
            }
            Ok(())
        }
    };
    together(comm, ended)
}

//! `relgrad score`: the log-density of every row of a data set, in the same row order
//! (anomaly scoring), as `.csv` (`row,log_density`) or `.npy` (1-D float64).

use anyhow::{bail, Result};

use super::{backend, check_dims, load_model, select_rows};
use crate::cli::{ScoreArgs, Space};
use crate::data::{csv, npy, Table};
use crate::util::{extension, write_atomic};

/// Runs `relgrad score`.
pub fn run(args: ScoreArgs) -> Result<()> {
    let (path, mf) = load_model(&args.model)?;
    let ext = extension(&args.out);
    if !matches!(ext.as_deref(), Some("npy" | "csv")) {
        bail!(
            "{}: the output must end in .npy or .csv",
            args.out.display()
        );
    }
    let sel = select_rows(&mf, Some(&args.data), Some(args.split), args.n, args.seed)?;
    check_dims(sel.table.cols, mf.dim(), &sel.what, &path)?;
    let valid: Vec<bool> = (0..sel.table.rows)
        .map(|i| sel.table.row_is_finite(i))
        .collect();
    let n_bad = valid.iter().filter(|v| !**v).count();
    if n_bad > 0 && !args.skip_invalid {
        sel.table
            .check_finite(&sel.what)
            .map_err(|e| e.context("pass --skip-invalid to score the other rows"))?;
    }
    // The dequantisation noise: --seed, else the model's training seed.
    let mut scored = mf.clone();
    scored.seed = args
        .seed
        .or(sel.recorded.as_ref().map(|r| r.seed))
        .unwrap_or(mf.seed);
    // Invalid rows are scored as zeros and reported as NaN; the noise stream stays aligned.
    let clean = Table::from_fn(sel.table.rows, sel.table.cols, |i, j| {
        if valid[i] {
            sel.table.get(i, j)
        } else {
            0.0
        }
    });
    let s = scored
        .scores(&backend(args.threads), clean.as_mat(), sel.part.into())
        .map_err(|e| anyhow::anyhow!("{}: {e}", sel.what))?;
    let values = match args.space {
        Space::Data => s.data_units,
        Space::Model => s.model_space,
    };
    let scores: Vec<f64> = values
        .into_iter()
        .zip(&valid)
        .map(|(l, ok)| if *ok { l } else { f64::NAN })
        .collect();
    match ext.as_deref() {
        Some("npy") => write_atomic(&args.out, &npy::encode_f64(&[scores.len()], &scores))?,
        _ => {
            let t = Table::from_fn(
                scores.len(),
                2,
                |i, j| if j == 0 { i as f64 } else { scores[i] },
            );
            let header = ["row".to_string(), "log_density".to_string()];
            write_atomic(
                &args.out,
                csv::format(Some(&header), t.rows, 2, &t.values).as_bytes(),
            )?
        }
    }
    let units = match args.space {
        Space::Data => "the data's units",
        Space::Model => mf.preprocess.space_name(),
    };
    let skipped = if n_bad > 0 {
        format!("; {n_bad} rows with NaN or infinite values got NaN")
    } else {
        String::new()
    };
    println!(
        "wrote {} log-densities (nats, {units}) of {} to {}{skipped}",
        scores.len(),
        sel.what,
        args.out.display()
    );
    Ok(())
}

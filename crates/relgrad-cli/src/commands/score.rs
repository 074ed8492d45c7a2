//! `relgrad score`: the log-density of every row of a data set, in the same row order
//! (anomaly scoring), as `.csv` (`row,log_density`) or `.npy` (1-D float64).

use anyhow::{bail, Result};

use super::{check_dims, load_model, log_prob_any, select_rows, transform};
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
    check_dims(sel.table.cols, mf.model.dim(), &sel.what, &path)?;
    let valid: Vec<bool> = (0..sel.table.rows)
        .map(|i| sel.table.row_is_finite(i))
        .collect();
    let n_bad = valid.iter().filter(|v| !**v).count();
    if n_bad > 0 && !args.skip_invalid {
        sel.table
            .check_finite(&sel.what)
            .map_err(|e| e.context("pass --skip-invalid to score the other rows"))?;
    }
    let seed = args
        .seed
        .or(sel.recorded.as_ref().map(|r| r.seed))
        .unwrap_or(0);
    // Invalid rows are scored as zeros and reported as NaN; the noise stream stays aligned.
    let clean = Table::from_fn(sel.table.rows, sel.table.cols, |i, j| {
        if valid[i] {
            sel.table.get(i, j)
        } else {
            0.0
        }
    });
    let x = transform(&mf.preprocess, &clean, seed, sel.part, &sel.what)?;
    let lp = log_prob_any(&mf.model, args.threads, &x.table)?;
    let scores: Vec<f64> = lp
        .iter()
        .zip(&x.log_jacobian)
        .zip(&valid)
        .map(|((l, j), ok)| {
            if !ok {
                f64::NAN
            } else if args.space == Space::Data {
                l + j
            } else {
                *l
            }
        })
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

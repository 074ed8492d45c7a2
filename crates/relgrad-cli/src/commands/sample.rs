//! `relgrad sample`: exact samples through the model's inverse, mapped back to the data's
//! units (preprocessing undone), as `.npy` or `.csv`; for image data also a PNG grid.

use anyhow::{bail, ensure, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{backend, load_model};
use crate::cli::SampleArgs;
use crate::data::{csv, npy, Table};
use crate::plots;
use crate::util::{extension, write_atomic};

/// Writes a table as `.npy` or `.csv` (by extension).
pub fn write_table(path: &std::path::Path, t: &Table, header: Option<&[String]>) -> Result<()> {
    match extension(path).as_deref() {
        Some("npy") => write_atomic(path, &npy::encode_f64(&[t.rows, t.cols], &t.values)),
        Some("csv") => write_atomic(
            path,
            csv::format(header, t.rows, t.cols, &t.values).as_bytes(),
        ),
        _ => bail!("{}: the output must end in .npy or .csv", path.display()),
    }
}

/// Runs `relgrad sample`.
pub fn run(args: SampleArgs) -> Result<()> {
    ensure!(args.n >= 1, "-n must be at least 1");
    let (path, mf) = load_model(&args.model)?;
    if !matches!(extension(&args.out).as_deref(), Some("npy" | "csv")) {
        bail!(
            "{}: the output must end in .npy or .csv",
            args.out.display()
        );
    }
    let mut rng = StdRng::seed_from_u64(args.seed);
    let x = Table::from_mat(mf.sample(&backend(args.threads), args.n, &mut rng)?);
    write_table(&args.out, &x, None)?;
    println!(
        "wrote {} samples ({}-d) from {} to {}",
        x.rows,
        x.cols,
        path.display(),
        args.out.display()
    );
    if let (Some(shape), Some(levels)) = (mf.image, mf.preprocess.levels()) {
        let png = args
            .png
            .clone()
            .unwrap_or_else(|| args.out.with_extension("png"));
        let shown = x.rows.min(plots::MAX_GRID_IMAGES);
        let cols = (shown as f64).sqrt().ceil() as usize;
        plots::image_grid(&png, &x, shape, levels as f64, cols)?;
        println!(
            "wrote a {}x{} image grid of the first {shown} samples to {}",
            shown.div_ceil(cols),
            cols,
            png.display()
        );
    } else if args.png.is_some() {
        bail!("--png: the model was not trained on image data");
    }
    Ok(())
}

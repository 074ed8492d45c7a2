//! Statistics and small file helpers shared by the commands.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// A mean with two standard errors (`2 std / sqrt(n)`), the density-estimation
/// literature's way of reporting a test log-likelihood.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanSe {
    /// Number of values.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Two standard errors of the mean (`0` for fewer than two values).
    pub two_se: f64,
}

impl MeanSe {
    /// The mean and two standard errors of `values` (sample standard deviation,
    /// divided by `n - 1`), accumulated in `f64`.
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self {
                n,
                mean: f64::NAN,
                two_se: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let two_se = if n > 1 {
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
            2.0 * (var / n as f64).sqrt()
        } else {
            0.0
        };
        Self { n, mean, two_se }
    }

    /// `"-117.52 ± 1.31"` with `digits` decimals.
    pub fn display(&self, digits: usize) -> String {
        format!("{:.*} ± {:.*}", digits, self.mean, digits, self.two_se)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory
/// (`<name>.tmp`), written completely, then renamed over `path`. An interruption (Ctrl-C,
/// a killed process) leaves either the old file or the new one, never a torn one. (The
/// file is not fsync'ed: surviving a power cut is not worth 10 ms per epoch.)
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// The temporary sibling `write_atomic` uses for `path`.
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// The lower-cased extension of a path (`"npy"`, `"csv"`, ...), if any.
pub fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// A compact, exact-enough rendering of a learning rate or similar setting for file
/// names: `0.001` becomes `1e-3`, `0.0003` becomes `3e-4`, `0.5` stays `0.5`.
pub fn short_float(x: f64) -> String {
    // At most 4 significant digits, trailing zeros dropped.
    let s = format!("{x:.3e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if x != 0.0 && !(-2..3).contains(&exp) {
        format!("{mantissa}e{exp}")
    } else {
        let v: f64 = format!("{mantissa}e{exp}").parse().unwrap_or(x);
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_two_se() {
        let m = MeanSe::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        let sd = (5.0f64 / 3.0).sqrt();
        assert!((m.two_se - 2.0 * sd / 2.0).abs() < 1e-12);
    }

    #[test]
    fn short_floats() {
        assert_eq!(short_float(0.001), "1e-3");
        assert_eq!(short_float(0.0003), "3e-4");
        assert_eq!(short_float(0.5), "0.5");
        assert_eq!(short_float(0.01), "0.01");
        assert_eq!(short_float(3e-4 / 10.0), "3e-5");
        assert_eq!(short_float(100.0), "100");
        assert_eq!(short_float(1e30), "1e30");
    }
}

//! Statistics and small file helpers shared by the commands.

use std::path::Path;

use anyhow::Result;

pub use relgrad::model::evaluation::MeanSe;

/// Writes `bytes` to `path` atomically and durably (the library's
/// [`relgrad::model::atomic::write_atomic`]: temporary file, `fsync`, rename, `fsync` of
/// the folder), so an interruption leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(relgrad::model::atomic::write_atomic(path, bytes)?)
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

//! Atomic file writes: a crash, a kill or a full disk at any moment leaves either the old
//! file or the new one, never a torn one, and a completed write survives a power cut.
//!
//! The bytes go to a temporary sibling (`<name>.tmp`, same folder so the rename stays on
//! one file system), which is `fsync`ed, renamed over the target, and then the folder is
//! `fsync`ed so that the rename itself is durable.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary sibling [`write_atomic`] uses for `path`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically and durably (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, || Ok(()))
}

/// [`write_atomic`] with a hook run after the temporary file is complete and synced,
/// just before the rename: tests use it to simulate a crash at that moment.
#[doc(hidden)]
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> std::io::Result<()>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        before_rename()?;
        std::fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| Error::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// Makes a complete file `tmp` (written by the caller, e.g. by a plotting library that
/// only writes to paths) the new `path`, atomically and durably: `fsync` of `tmp`,
/// rename over `path`, `fsync` of the folder. `tmp` must be in `path`'s folder; it is
/// removed if this fails.
pub fn replace_with(tmp: &Path, path: &Path) -> Result<()> {
    let result = (|| -> std::io::Result<()> {
        std::fs::File::open(tmp)?.sync_all()?;
        std::fs::rename(tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result.map_err(|source| Error::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}

/// `fsync` of the folder holding `path` (where the platform allows opening folders).
fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_before_the_rename_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.safetensors");
        write_atomic(&p, b"old").unwrap();
        let e = write_atomic_with(&p, b"new", || Err(std::io::Error::other("crash"))).unwrap_err();
        assert!(e.to_string().contains("model.safetensors"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert!(!tmp_path(&p).exists(), "the temporary file is cleaned up");
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
    }
}

//! A minimal reader of tar streams: enough to take the regular files out of a data set's
//! archive (CIFAR-10's `cifar-10-binary.tar.gz`), read front to back without unpacking
//! it. It reads ustar, old (v7) and GNU headers (with GNU long names) and pax extended
//! headers' `path`; every header's checksum is verified.
//!
//! A tar stream is a sequence of 512-byte blocks: each entry is a header block (name at
//! bytes 0..100, size in octal at 124..136, checksum at 148..156, type at 156, and for
//! ustar a name prefix at 345..500), then its content padded to whole blocks; two zero
//! blocks end the archive.

use std::io::Read;

use anyhow::{anyhow, bail, ensure, Context, Result};

/// The block size of tar archives.
pub const BLOCK: usize = 512;

/// The most bytes a GNU long name or a pax extended header may take (1 MiB).
const MAX_META: u64 = 1 << 20;

/// A regular file of the archive, as the callback of [`for_each_file`] sees it.
pub struct Entry<'a> {
    /// The path inside the archive (`cifar-10-batches-bin/data_batch_1.bin`).
    pub path: String,
    /// The content's size in bytes, as the header announces it.
    pub size: u64,
    /// The content (at most `size` bytes; fewer if the archive is cut short). Whatever
    /// the callback leaves unread is skipped.
    pub content: &'a mut dyn Read,
}

impl Entry<'_> {
    /// The last component of the path.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Fills `buf` as far as the reader goes; returns how many bytes it got.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A header field as text, up to its first NUL.
fn text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// A numeric header field: octal digits (space or NUL padded), or GNU's base-256 form
/// (first byte's high bit set).
pub fn number(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = text(field);
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// Whether a header block's checksum (the byte sum, the checksum field read as spaces)
/// is the one it records.
fn checksum_ok(h: &[u8; BLOCK]) -> bool {
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    number(&h[148..156]) == Some(sum)
}

/// The `path` record of a pax extended header (`"<len> path=<value>\n"` records).
fn pax_path(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().find_map(|rec| {
        let (_, kv) = rec.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_string)
    })
}

/// Reads the whole (small) content of a metadata entry.
fn read_meta(r: &mut dyn Read, size: u64, what: &str) -> Result<Vec<u8>> {
    ensure!(
        size <= MAX_META,
        "{what}: an extended header of {size} bytes (more than {MAX_META})"
    );
    let mut buf = vec![0u8; size as usize];
    let got = fill(r, &mut buf).with_context(|| format!("reading {what}"))?;
    ensure!(
        got == buf.len(),
        "{what}: the archive ends inside an extended header"
    );
    Ok(buf)
}

/// Calls `f` on each regular file of the tar stream `r`, in order (`what` names the
/// archive in messages). Stops at the end-of-archive blocks or at the end of the stream.
pub fn for_each_file(
    r: &mut dyn Read,
    what: &str,
    mut f: impl FnMut(Entry<'_>) -> Result<()>,
) -> Result<()> {
    let mut header = [0u8; BLOCK];
    let mut long_name: Option<String> = None;
    for index in 1u64.. {
        let got = fill(r, &mut header).with_context(|| format!("reading {what}"))?;
        if got == 0 || (got == BLOCK && header.iter().all(|&b| b == 0)) {
            return Ok(());
        }
        ensure!(
            got == BLOCK,
            "{what}: {} ends inside the header of entry {index}",
            if index == 1 {
                "not a tar archive: it"
            } else {
                "the archive"
            }
        );
        if !checksum_ok(&header) {
            bail!(
                "{what}: not a tar archive, or a damaged one (the header of entry {index} fails its checksum)"
            );
        }
        let size = number(&header[124..136])
            .ok_or_else(|| anyhow!("{what}: entry {index} has an unreadable size field"))?;
        let kind = header[156];
        let mut content = (&mut *r).take(size);
        match kind {
            b'L' => {
                let name = read_meta(&mut content, size, what)?;
                long_name = Some(text(&name));
            }
            b'x' => {
                let data = read_meta(&mut content, size, what)?;
                long_name = pax_path(&data).or(long_name);
            }
            b'0' | 0 | b'7' => {
                let mut path = text(&header[..100]);
                if &header[257..262] == b"ustar" {
                    let prefix = text(&header[345..500]);
                    if !prefix.is_empty() {
                        path = format!("{prefix}/{path}");
                    }
                }
                let path = long_name.take().unwrap_or(path);
                f(Entry {
                    path,
                    size,
                    content: &mut content,
                })?;
            }
            // Directories, links, global pax headers and the like: skipped.
            _ => long_name = None,
        }
        // Skip what is left of the content, then the padding to a whole block.
        std::io::copy(&mut content, &mut std::io::sink())
            .with_context(|| format!("reading {what}"))?;
        ensure!(
            content.limit() == 0,
            "{what}: the archive ends inside entry {index} ({} of its {size} bytes present)",
            size - content.limit()
        );
        let pad = (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64;
        let mut skip = [0u8; BLOCK];
        let got = fill(r, &mut skip[..pad as usize]).with_context(|| format!("reading {what}"))?;
        ensure!(
            got as u64 == pad,
            "{what}: the archive ends inside the padding of entry {index}"
        );
    }
    Ok(())
}

/// A ustar header block for a regular file `path` (at most 100 bytes) of `size` bytes,
/// for tests and tools; the content follows, padded with zeros to a whole block, and two
/// zero blocks end the archive.
pub fn header(path: &str, size: u64) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let name = path.as_bytes();
    assert!(name.len() <= 100, "tar::header: the path is too long");
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in files {
            out.extend_from_slice(&header(name, data.len() as u64));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }

    fn list(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut seen = Vec::new();
        for_each_file(&mut &bytes[..], "t.tar", |e| {
            let mut v = Vec::new();
            e.content.read_to_end(&mut v)?;
            seen.push((e.path.clone(), v));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn reads_back_what_header_writes() {
        let big = vec![7u8; 1500];
        let a = archive(&[("d/a.bin", b"hello"), ("d/b.bin", &big), ("empty", b"")]);
        let seen = list(&a).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], ("d/a.bin".to_string(), b"hello".to_vec()));
        assert_eq!(seen[1].1, big);
        assert!(seen[2].1.is_empty());
        // Without the end-of-archive blocks, too.
        assert_eq!(list(&a[..a.len() - 2 * BLOCK]).unwrap().len(), 3);
    }

    #[test]
    fn refuses_damage() {
        let a = archive(&[("a.bin", &[1u8; 700])]);
        let e = list(&a[..BLOCK + 600]).unwrap_err().to_string();
        assert!(
            e.contains("ends inside entry 1 (600 of its 700 bytes"),
            "{e}"
        );
        let mut bad = a.clone();
        bad[3] ^= 1;
        let e = list(&bad).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        let e = list(&a[..100]).unwrap_err().to_string();
        assert!(
            e.contains("not a tar archive: it ends inside the header of entry 1"),
            "{e}"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"00000001750\0"), Some(1000));
        assert_eq!(number(b"     17 \0"), Some(15));
        assert_eq!(number(&[0x80, 0, 0, 1, 0]), Some(256));
        assert_eq!(number(b"9\0"), None);
    }
}

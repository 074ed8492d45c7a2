//! NumPy's `.npz` archives: `np.savez` (members stored) and `np.savez_compressed`
//! (members deflated), a ZIP file holding one `.npy` file per array, named by its key
//! (`arr_0.npy`, `arr_1.npy`, ... for arrays passed by position).
//!
//! Which array: an archive of one array is that array; of several, `FILE.npz:KEY` selects
//! one (`--data data.npz:train --val data.npz:val`), and `FILE.npz` alone is refused with
//! the list of its keys. An existing path always wins, so a file whose name holds a `:`
//! is still read as itself.
//!
//! A minimal ZIP reader, with no dependency beyond `flate2` for deflate: the end of
//! central directory record, and ZIP64's locator and record when present (Python's
//! `zipfile`, which NumPy uses, writes them for archives past 4 GiB or 65535 members);
//! the central directory, with ZIP64 extra fields for sizes and offsets past 4 GiB (NumPy
//! writes members with `force_zip64`); each member's local header; stored or deflated
//! data, checked against its CRC-32. Sizes are checked before anything is allocated: the
//! array's shape against [`super::MAX_VALUES`], and against what the member's compressed
//! bytes can hold. Encrypted members, other compression methods and multi-disk archives
//! are refused, saying how to write a readable archive.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::npy::{self, NpyArray};
use super::Dataset;

/// One member of a ZIP archive, as its central directory describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name (`train.npy`).
    pub name: String,
    /// The compression method (0 stored, 8 deflate).
    pub method: u16,
    /// The general-purpose flags (bit 0: encrypted).
    pub flags: u16,
    /// The CRC-32 of its uncompressed bytes.
    pub crc: u32,
    /// Its compressed size.
    pub compressed: u64,
    /// Its uncompressed size.
    pub size: u64,
    /// The offset of its local header.
    pub offset: u64,
}

impl Member {
    /// Its key: the name without `.npy`, as `np.load` names it.
    pub fn key(&self) -> &str {
        self.name.strip_suffix(".npy").unwrap_or(&self.name)
    }
}

/// The most members an archive may list (NumPy writes one per array).
const MAX_MEMBERS: u64 = 1 << 20;

/// The largest deflate expansion (a deflate stream cannot expand more than about 1032:1).
const MAX_DEFLATE_RATIO: u64 = 1032;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// What an archive is read from: a file, or bytes in memory.
trait Source: Read + Seek {}
impl<T: Read + Seek> Source for T {}

fn read_at(f: &mut impl Source, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut buf)?;
    Ok(buf)
}

/// Whether `spec` is `FILE.npz:KEY` with `FILE.npz` an existing file: the file and key.
pub fn split_spec(spec: &str) -> Option<(PathBuf, String)> {
    let (file, key) = spec.rsplit_once(':')?;
    let is_npz = Path::new(file)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    (is_npz && !key.is_empty() && Path::new(file).is_file())
        .then(|| (PathBuf::from(file), key.to_string()))
}

/// The path that stands for `FILE.npz:KEY` (the file made absolute, the key after it),
/// when `spec` is one and does not exist as a path itself.
pub fn resolve_spec(spec: &str) -> Option<PathBuf> {
    if Path::new(spec).exists() {
        return None;
    }
    let (file, key) = split_spec(spec)?;
    let mut s = std::fs::canonicalize(&file)
        .unwrap_or(file)
        .into_os_string();
    s.push(":");
    s.push(key);
    Some(PathBuf::from(s))
}

/// The central directory of the ZIP archive at `path`.
pub fn members(path: &Path) -> Result<Vec<Member>> {
    let name = path.display().to_string();
    let (mut f, len) = open(path)?;
    members_of(&mut f, len, &name)
}

fn open(path: &Path) -> Result<(File, u64)> {
    let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    Ok((f, len))
}

/// The central directory of the archive `f` of `len` bytes, called `name` in messages.
fn members_of(f: &mut impl Source, len: u64, name: &str) -> Result<Vec<Member>> {
    let damaged = |what: String| anyhow!("{name} is not a readable .npz (ZIP) archive: {what}");
    // The end of central directory record: 22 bytes and a comment of up to 65535.
    let tail_len = len.min(22 + 65535) as usize;
    let tail_start = len - tail_len as u64;
    let tail = read_at(f, tail_start, tail_len).with_context(|| format!("cannot read {name}"))?;
    let eocd = (0..tail_len.saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| {
            damaged("no end of central directory record (the file is cut short, or not a ZIP file); write it again with np.savez".into())
        })?;
    let e = &tail[eocd..];
    let (disk, cd_disk) = (u16_at(e, 4), u16_at(e, 6));
    let mut entries = u64::from(u16_at(e, 10));
    let mut cd_size = u64::from(u32_at(e, 12));
    let mut cd_offset = u64::from(u32_at(e, 16));
    ensure!(
        disk == 0 && cd_disk == 0,
        "{name}: a multi-part (split) ZIP archive is not read; join the parts into one archive"
    );
    // ZIP64: a locator just before the record points to the ZIP64 record.
    let eocd_pos = tail_start + eocd as u64;
    if eocd >= 20 && tail[eocd - 20..].starts_with(b"PK\x06\x07") {
        let z_off = u64_at(&tail, eocd - 20 + 8);
        ensure!(
            z_off.checked_add(56).is_some_and(|end| end <= eocd_pos),
            damaged(format!(
                "the ZIP64 end record's offset {z_off} lies past the end"
            ))
        );
        let z = read_at(f, z_off, 56).with_context(|| format!("cannot read {name}"))?;
        ensure!(
            z.starts_with(b"PK\x06\x06"),
            damaged(format!("no ZIP64 end record at byte {z_off}"))
        );
        entries = u64_at(&z, 32);
        cd_size = u64_at(&z, 40);
        cd_offset = u64_at(&z, 48);
    }
    ensure!(
        cd_offset.checked_add(cd_size).is_some_and(|end| end <= eocd_pos),
        damaged(format!(
            "the central directory (byte {cd_offset}, {cd_size} bytes) lies past the end of the file ({len} bytes)"
        ))
    );
    ensure!(
        entries <= MAX_MEMBERS && entries * 46 <= cd_size,
        damaged(format!(
            "the central directory claims {entries} members in {cd_size} bytes"
        ))
    );
    let cd =
        read_at(f, cd_offset, cd_size as usize).with_context(|| format!("cannot read {name}"))?;
    let mut out = Vec::with_capacity(entries as usize);
    let mut i = 0usize;
    for k in 0..entries {
        let at = cd_offset + i as u64;
        ensure!(
            cd.len() >= i + 46 && cd[i..].starts_with(b"PK\x01\x02"),
            damaged(format!(
                "central directory entry {} at byte {at} is damaged",
                k + 1
            ))
        );
        let h = &cd[i..];
        let (n_len, x_len, c_len) = (
            usize::from(u16_at(h, 28)),
            usize::from(u16_at(h, 30)),
            usize::from(u16_at(h, 32)),
        );
        ensure!(
            cd.len() >= i + 46 + n_len + x_len + c_len,
            damaged(format!(
                "central directory entry {} at byte {at} is cut short",
                k + 1
            ))
        );
        let mut m = Member {
            name: String::from_utf8_lossy(&h[46..46 + n_len]).into_owned(),
            method: u16_at(h, 10),
            flags: u16_at(h, 8),
            crc: u32_at(h, 16),
            compressed: u64::from(u32_at(h, 20)),
            size: u64::from(u32_at(h, 24)),
            offset: u64::from(u32_at(h, 42)),
        };
        zip64_extra(&h[46 + n_len..46 + n_len + x_len], &mut m)
            .map_err(|w| damaged(format!("member {:?}: {w}", m.name)))?;
        out.push(m);
        i += 46 + n_len + x_len + c_len;
    }
    Ok(out)
}

/// Applies a ZIP64 extra field (id 1): the 64-bit values of the sizes and offset that the
/// header left at `0xFFFFFFFF`, in that order.
fn zip64_extra(mut extra: &[u8], m: &mut Member) -> Result<(), String> {
    while extra.len() >= 4 {
        let (id, n) = (u16_at(extra, 0), usize::from(u16_at(extra, 2)));
        let body = extra
            .get(4..4 + n)
            .ok_or_else(|| "an extra field is cut short".to_string())?;
        if id == 1 {
            let mut vals = body.chunks_exact(8).map(|c| u64_at(c, 0));
            for field in [&mut m.size, &mut m.compressed, &mut m.offset] {
                if *field == u64::from(u32::MAX) {
                    *field = vals
                        .next()
                        .ok_or_else(|| "its ZIP64 extra field is too short".to_string())?;
                }
            }
        }
        extra = &extra[4 + n..];
    }
    Ok(())
}

/// The member `key` of the archive at `path` (or its only array), and its key.
pub fn read(path: &Path, key: Option<&str>) -> Result<(String, NpyArray)> {
    let (mut f, len) = open(path)?;
    select(&mut f, len, &path.display().to_string(), key)
}

/// [`read`] of an archive's bytes in memory (named `the archive` in messages).
pub fn read_bytes(bytes: &[u8], key: Option<&str>) -> Result<(String, NpyArray)> {
    let mut c = std::io::Cursor::new(bytes);
    select(&mut c, bytes.len() as u64, "the archive", key)
}

fn select(
    f: &mut impl Source,
    len: u64,
    name: &str,
    key: Option<&str>,
) -> Result<(String, NpyArray)> {
    let all = members_of(f, len, name)?;
    let arrays: Vec<&Member> = all
        .iter()
        .filter(|m| m.name.ends_with(".npy") && !m.name.ends_with('/'))
        .collect();
    let list = |ms: &[&Member]| {
        let mut keys: Vec<String> = ms.iter().take(20).map(|m| m.key().to_string()).collect();
        if ms.len() > 20 {
            keys.push(format!("... ({} in all)", ms.len()));
        }
        keys.join(", ")
    };
    if arrays.is_empty() {
        let workbook = all.iter().any(|m| {
            m.name == "[Content_Types].xml" || m.name.starts_with("xl/") || m.name == "mimetype"
        });
        if workbook {
            bail!("{name} is a spreadsheet workbook (a ZIP archive of XML), not a NumPy .npz archive; save the sheet as CSV (UTF-8) and read that");
        }
        bail!(
            "{name} is a ZIP archive without .npy arrays ({} other members), not a NumPy .npz archive; save the arrays with np.savez",
            all.len()
        );
    }
    let m = match key {
        Some(k) => *arrays
            .iter()
            .find(|m| m.key() == k || m.name == k)
            .ok_or_else(|| {
                anyhow!(
                    "{name} has no array {k:?}; its arrays are: {}; select one with {name}:KEY",
                    list(&arrays)
                )
            })?,
        None if arrays.len() == 1 => arrays[0],
        None => bail!(
            "{name} holds {} arrays ({}); select one with {name}:KEY, e.g. --data {name}:{}",
            arrays.len(),
            list(&arrays),
            arrays[0].key()
        ),
    };
    let a = read_member(f, len, m).with_context(|| {
        format!(
            "{name}: the array {:?} ({}) is not a readable .npy file",
            m.key(),
            m.name
        )
    })?;
    Ok((m.key().to_string(), a))
}

/// Reads and parses one `.npy` member.
fn read_member(f: &mut impl Source, len: u64, m: &Member) -> Result<NpyArray> {
    ensure!(
        m.flags & 1 == 0,
        "it is encrypted, which is not read; write the archive again without a password (np.savez)"
    );
    ensure!(
        m.method == 0 || m.method == 8,
        "its compression method {} ({}) is not read; write the archive with np.savez (stored) or np.savez_compressed (deflate)",
        m.method,
        match m.method {
            9 => "deflate64",
            12 => "bzip2",
            14 => "lzma",
            93 => "zstandard",
            95 => "xz",
            _ => "unknown",
        }
    );
    ensure!(
        m.offset.checked_add(30).is_some_and(|e| e <= len),
        "its local header (byte {}) lies past the end of the file ({len} bytes): the archive is cut short",
        m.offset
    );
    let local = read_at(f, m.offset, 30)?;
    ensure!(
        local.starts_with(b"PK\x03\x04"),
        "no local header at byte {}: the archive is damaged",
        m.offset
    );
    let data_start = m.offset + 30 + u64::from(u16_at(&local, 26)) + u64::from(u16_at(&local, 28));
    ensure!(
        data_start
            .checked_add(m.compressed)
            .is_some_and(|e| e <= len),
        "its {} bytes (from byte {data_start}) run past the end of the file ({len} bytes): the archive is cut short",
        m.compressed
    );
    // What the member's bytes can hold, before anything is allocated.
    let most = if m.method == 0 {
        m.compressed
    } else {
        m.compressed
            .saturating_mul(MAX_DEFLATE_RATIO)
            .saturating_add(1 << 10)
    };
    ensure!(
        m.size <= most,
        "it claims {} bytes, more than its {} {} bytes can hold: the archive is damaged",
        m.size,
        m.compressed,
        if m.method == 0 {
            "stored"
        } else {
            "compressed"
        }
    );
    f.seek(SeekFrom::Start(data_start))?;
    let raw = f.take(m.compressed);
    let mut r: Box<dyn Read + '_> = if m.method == 8 {
        Box::new(flate2::read::DeflateDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    // The .npy header first, to check the shape before reading the data.
    let head_len = m.size.min(12 + npy::MAX_HEADER_BYTES as u64) as usize;
    let mut bytes = Vec::with_capacity(head_len);
    r.by_ref()
        .take(head_len as u64)
        .read_to_end(&mut bytes)
        .context("cannot decompress it (deflate): the archive is damaged")?;
    let h = npy::parse_header(&bytes)?;
    let need = h.data_offset as u64 + h.data_bytes()? as u64;
    ensure!(
        need <= m.size,
        "truncated data: the shape {:?} of {} needs {need} bytes, the member has {}",
        h.shape,
        h.descr,
        m.size
    );
    ensure!(
        m.size - need <= 1 << 20,
        "it holds {} bytes, {} more than its array of shape {:?} needs: the archive is damaged",
        m.size,
        m.size - need,
        h.shape
    );
    bytes.reserve_exact((m.size as usize).saturating_sub(bytes.len()));
    r.take(m.size - bytes.len() as u64)
        .read_to_end(&mut bytes)
        .context("cannot decompress it (deflate): the archive is damaged")?;
    ensure!(
        bytes.len() as u64 == m.size,
        "it holds {} bytes where the archive says {}: the archive is damaged or cut short",
        bytes.len(),
        m.size
    );
    let mut crc = flate2::Crc::new();
    crc.update(&bytes);
    ensure!(
        crc.sum() == m.crc,
        "its CRC-32 is {:08x} where the archive says {:08x}: the archive is damaged",
        crc.sum(),
        m.crc
    );
    npy::parse(&bytes)
}

/// Loads an array of the archive at `path` ([`read`]) as a data set, as [`super::load_file`]
/// loads a `.npy` file.
pub fn load(path: &Path, key: Option<&str>) -> Result<Dataset> {
    let (key, a) = read(path, key)?;
    let image = super::images::image_of_shape(&a.shape);
    let levels = a.is_u8().then_some(256);
    let table = a
        .into_table()
        .with_context(|| format!("reading the array {key:?} of {}", path.display()))?;
    Ok(Dataset {
        table,
        image,
        levels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A ZIP archive of `(name, data, deflate)` members; `zip64` adds ZIP64 extra fields
    /// (with the 32-bit fields at 0xFFFFFFFF) and ZIP64 end records.
    fn zip(members: &[(&str, Vec<u8>, bool)], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, deflate) in members {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let body = if *deflate {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            } else {
                data.clone()
            };
            let offset = out.len() as u64;
            let method: u16 = if *deflate { 8 } else { 0 };
            let mut extra = Vec::new();
            let (c32, s32, o32) = if zip64 {
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&24u16.to_le_bytes());
                extra.extend_from_slice(&(data.len() as u64).to_le_bytes());
                extra.extend_from_slice(&(body.len() as u64).to_le_bytes());
                extra.extend_from_slice(&offset.to_le_bytes());
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (body.len() as u32, data.len() as u32, offset as u32)
            };
            out.extend_from_slice(b"PK\x03\x04\x2d\x00\x00\x00");
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&crc.sum().to_le_bytes());
            out.extend_from_slice(&c32.to_le_bytes());
            out.extend_from_slice(&s32.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&body);
            central.extend_from_slice(b"PK\x01\x02\x2d\x03\x2d\x00\x00\x00");
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&crc.sum().to_le_bytes());
            central.extend_from_slice(&c32.to_le_bytes());
            central.extend_from_slice(&s32.to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 10]);
            central.extend_from_slice(&o32.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
            central.extend_from_slice(&extra);
        }
        let cd_offset = out.len() as u64;
        out.extend_from_slice(&central);
        let n = members.len() as u64;
        if zip64 {
            let z = out.len() as u64;
            out.extend_from_slice(b"PK\x06\x06");
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&[0x2d, 0, 0x2d, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&n.to_le_bytes());
            out.extend_from_slice(&(central.len() as u64).to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(b"PK\x06\x07\x00\x00\x00\x00");
            out.extend_from_slice(&z.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
        let n16 = if zip64 { u16::MAX } else { n as u16 };
        out.extend_from_slice(&n16.to_le_bytes());
        out.extend_from_slice(&n16.to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        let o = if zip64 { u32::MAX } else { cd_offset as u32 };
        out.extend_from_slice(&o.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn stored_deflated_and_zip64() {
        let dir = tempfile::tempdir().unwrap();
        let a = npy::encode_f64(&[2, 2], &[1.0, 2.0, 3.0, 4.5]);
        let b = npy::encode_f64(&[3], &[7.0, 8.0, 9.0]);
        for (deflate, zip64) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = write(
                dir.path(),
                "d.npz",
                &zip(
                    &[
                        ("train.npy", a.clone(), deflate),
                        ("val.npy", b.clone(), deflate),
                    ],
                    zip64,
                ),
            );
            let (k, x) = read(&p, Some("train")).unwrap();
            assert_eq!((k.as_str(), x.values), ("train", vec![1.0, 2.0, 3.0, 4.5]));
            assert_eq!(read(&p, Some("val.npy")).unwrap().1.shape, vec![3]);
            let e = read(&p, None).unwrap_err().to_string();
            assert!(
                e.contains("holds 2 arrays (train, val); select one with")
                    && e.contains("d.npz:train"),
                "{e}"
            );
            let e = read(&p, Some("test")).unwrap_err().to_string();
            assert!(
                e.contains("no array \"test\"; its arrays are: train, val"),
                "{e}"
            );
        }
        let p = write(
            dir.path(),
            "one.npz",
            &zip(&[("arr_0.npy", b.clone(), true)], false),
        );
        assert_eq!(load(&p, None).unwrap().table.values, vec![7.0, 8.0, 9.0]);
    }

    #[test]
    fn damage_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let a = npy::encode_f64(&[2, 2], &[1.0, 2.0, 3.0, 4.5]);
        let good = zip(&[("x.npy", a.clone(), true)], false);
        // Cut short, a flipped data byte (CRC), a claimed size too large for the bytes.
        let p = write(dir.path(), "cut.npz", &good[..good.len() - 30]);
        assert!(read(&p, None)
            .unwrap_err()
            .to_string()
            .contains("no end of central directory"));
        let stored = zip(&[("x.npy", a.clone(), false)], false);
        let mut flipped = stored.clone();
        flipped[30 + 5 + 130] ^= 1;
        let p = write(dir.path(), "crc.npz", &flipped);
        let e = format!("{:#}", read(&p, None).unwrap_err());
        assert!(e.contains("CRC-32"), "{e}");
        let mut big = stored.clone();
        let cd = big.len() - 22 - 46 - 5;
        big[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        let p = write(dir.path(), "big.npz", &big);
        let e = format!("{:#}", read(&p, None).unwrap_err());
        assert!(e.contains("more than its"), "{e}");
        let p = write(
            dir.path(),
            "none.npz",
            &zip(&[("[Content_Types].xml", b"<x/>".to_vec(), false)], false),
        );
        let e = read(&p, None).unwrap_err().to_string();
        assert!(e.contains("spreadsheet workbook"), "{e}");
    }

    #[test]
    fn specs() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "d.npz",
            &zip(&[("a.npy", npy::encode_f64(&[1], &[1.0]), false)], false),
        );
        let spec = format!("{}:train", p.display());
        let (file, key) = split_spec(&spec).unwrap();
        assert_eq!((file, key.as_str()), (p.clone(), "train"));
        assert!(resolve_spec(&spec)
            .unwrap()
            .to_string_lossy()
            .ends_with("d.npz:train"));
        assert!(split_spec(&format!("{}:", p.display())).is_none());
        assert!(split_spec("missing.npz:train").is_none());
        assert!(resolve_spec(p.to_str().unwrap()).is_none());
    }
}

//! Fingerprints of training data: a resumed run must train on the rows its checkpoint
//! was trained on.

use relgrad_core::{Collective, MatRef};
use serde_json::{json, Value};

/// Size and content hashes of the training rows a run trained on, recorded in
/// checkpoints so that a resumed run refuses different data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// FNV-1a hash of the values' bits, row by row (only where one process holds every
    /// row; kept so that checkpoints of earlier versions still resume).
    pub hash: Option<u64>,
    /// The wrapping sum over rows of each row's FNV-1a hash (of its number and its
    /// values' bits): the same whether one process or many, each holding some of the
    /// rows, compute it.
    pub row_hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut h: u64, bytes: [u8; 8]) -> u64 {
    for b in bytes {
        h = (h ^ b as u64).wrapping_mul(FNV_PRIME);
    }
    h
}

/// The row hashes of `x`, whose first row is row `first_row` of the set.
fn row_hash_sum(x: MatRef<'_, f64>, first_row: usize) -> u64 {
    (0..x.rows()).fold(0u64, |acc, i| {
        let h = fnv(FNV_OFFSET, ((first_row + i) as u64).to_le_bytes());
        let h = x
            .row(i)
            .iter()
            .fold(h, |h, v| fnv(h, v.to_bits().to_le_bytes()));
        acc.wrapping_add(h)
    })
}

impl Fingerprint {
    /// The fingerprint of `x`.
    pub fn of(x: MatRef<'_, f64>) -> Self {
        let mut h = FNV_OFFSET;
        for i in 0..x.rows() {
            for v in x.row(i) {
                h = fnv(h, v.to_bits().to_le_bytes());
            }
        }
        Self {
            rows: x.rows(),
            cols: x.cols(),
            hash: Some(h),
            row_hash: row_hash_sum(x, 0),
        }
    }

    /// The fingerprint of the rows of every process of `comm` (`x`: this process's,
    /// starting at row `first_row` of the set); the same on every process.
    pub fn across<C: Collective>(x: MatRef<'_, f64>, first_row: usize, comm: &C) -> Self {
        if comm.size() == 1 && first_row == 0 {
            return Self::of(x);
        }
        // The sum mod 2^64 from exact sums of 16-bit limbs (each far below 2^53).
        let h = row_hash_sum(x, first_row);
        let mut limbs: Vec<f64> = (0..4).map(|k| ((h >> (16 * k)) & 0xffff) as f64).collect();
        limbs.push(x.rows() as f64);
        comm.sum_in_place(&mut limbs);
        let row_hash = (0..4).fold(0u64, |acc, k| {
            acc.wrapping_add((limbs[k] as u64).wrapping_shl(16 * k as u32))
        });
        Self {
            rows: limbs[4] as usize,
            cols: x.cols(),
            hash: None,
            row_hash,
        }
    }

    /// The JSON recorded in checkpoints.
    pub fn to_json(self) -> Value {
        let mut v = json!({
            "rows": self.rows,
            "cols": self.cols,
            "row_hash": format!("{:016x}", self.row_hash),
        });
        if let Some(h) = self.hash {
            v["hash"] = format!("{h:016x}").into();
        }
        v
    }

    /// Whether a recorded fingerprint ([`Fingerprint::to_json`]) is this one: the row
    /// hash where both have it, else the whole-set hash.
    pub fn matches(self, v: &Value) -> bool {
        let size = v["rows"].as_u64() == Some(self.rows as u64)
            && v["cols"].as_u64() == Some(self.cols as u64);
        let hex = |h: u64| Some(format!("{h:016x}"));
        let content = match (v["row_hash"].as_str(), self.hash) {
            (Some(r), _) => Some(r.to_string()) == hex(self.row_hash),
            (None, Some(h)) => v["hash"].as_str().map(str::to_string) == hex(h),
            (None, None) => false,
        };
        size && content
    }

    /// The content hash to show in messages.
    pub fn display_hash(&self) -> String {
        format!("{:016x}", self.row_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relgrad_core::{Mat, Shard, ThreadGroup};

    #[test]
    fn the_fingerprint_of_shards_is_the_fingerprint_of_the_whole() {
        let x = Mat::from_fn(50, 3, |i, j| (i * 3 + j) as f64 * 0.37 - 4.0);
        let whole = Fingerprint::of(x.as_ref());
        let parts: Vec<Fingerprint> = std::thread::scope(|s| {
            let hs: Vec<_> = ThreadGroup::new(3)
                .into_iter()
                .map(|g| {
                    let x = &x;
                    s.spawn(move || {
                        let sh = Shard::even(50, g.rank(), g.size());
                        let rows = x.as_ref().rows_range(sh.offset, sh.offset + sh.len);
                        Fingerprint::across(rows, sh.offset, &g)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for p in parts {
            assert_eq!((p.rows, p.cols, p.row_hash), (50, 3, whole.row_hash));
            assert!(p.matches(&whole.to_json()) && whole.matches(&p.to_json()));
        }
        // Swapping two rows changes it; an old record (hash only) is still checked.
        let mut y = x.clone();
        y.row_mut(0).copy_from_slice(x.row(1));
        y.row_mut(1).copy_from_slice(x.row(0));
        assert!(!Fingerprint::of(y.as_ref()).matches(&whole.to_json()));
        let old = json!({"rows": 50, "cols": 3, "hash": format!("{:016x}", whole.hash.unwrap())});
        assert!(whole.matches(&old));
        assert!(!Fingerprint::of(y.as_ref()).matches(&old));
    }
}

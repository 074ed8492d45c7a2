//! Fingerprints of training data: a resumed run must train on the rows its checkpoint
//! was trained on.

use relgrad_core::MatRef;
use serde_json::{json, Value};

/// Size and content hash of the training rows a run trained on, recorded in checkpoints
/// so that a resumed run refuses different data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// FNV-1a hash of the values' bits, row by row.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `x`.
    pub fn of(x: MatRef<'_, f64>) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for i in 0..x.rows() {
            for v in x.row(i) {
                for b in v.to_bits().to_le_bytes() {
                    h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
        }
        Self {
            rows: x.rows(),
            cols: x.cols(),
            hash: h,
        }
    }

    /// The JSON recorded in checkpoints.
    pub fn to_json(self) -> Value {
        json!({"rows": self.rows, "cols": self.cols, "hash": format!("{:016x}", self.hash)})
    }

    /// Whether a recorded fingerprint ([`Fingerprint::to_json`]) is this one.
    pub fn matches(self, v: &Value) -> bool {
        v["rows"].as_u64() == Some(self.rows as u64)
            && v["cols"].as_u64() == Some(self.cols as u64)
            && v["hash"].as_str() == Some(&format!("{:016x}", self.hash))
    }
}

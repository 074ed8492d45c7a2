//! Where a training run keeps its checkpoint. The checkpoint itself (format, atomic
//! save, validated load) is the library's: [`relgrad::model::checkpoint`], re-exported
//! here.

pub use relgrad::model::checkpoint::*;

/// The checkpoint's file name inside a run directory, rewritten after every epoch.
pub const FILE_NAME: &str = "checkpoint.safetensors";

//! The committed fuzz corpora, for the ordinary test suites that replay them
//! (included with `#[path]` by `relgrad-cli/tests/readers.rs` and
//! `relgrad-model/tests/hostile_bytes.rs`).

/// Every input in `fuzz/corpus/<target>`, in file-name order.
pub fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

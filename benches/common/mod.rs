//! Settings shared by the benches.

/// The dimensions to bench: `RELGRAD_BENCH_DIMS` (comma-separated) or the list.
pub fn dims() -> Vec<usize> {
    std::env::var("RELGRAD_BENCH_DIMS")
        .ok()
        .map(|s| s.split(',').filter_map(|d| d.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16, 64, 256, 512, 1024, 2048])
}

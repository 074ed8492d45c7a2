//! The IDX reader on arbitrary bytes: an error or a table of the announced shape.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad_cli::data::idx;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = idx::parse(data) {
        let count: usize = a.shape.iter().product();
        assert_eq!(a.values.len(), count);
        let t = a.into_table();
        assert_eq!(t.values.len(), t.rows * t.cols);
    }
});

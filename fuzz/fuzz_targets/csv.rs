//! The CSV reader on arbitrary text: an error naming a line, or a rectangular table.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad_cli::data::csv;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = csv::parse(text) {
            assert!(t.table.rows > 0 && t.table.cols > 0);
            assert_eq!(t.table.values.len(), t.table.rows * t.table.cols);
            if let Some(h) = &t.header {
                assert_eq!(h.len(), t.table.cols);
            }
        }
    }
});

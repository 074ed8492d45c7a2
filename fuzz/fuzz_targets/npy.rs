//! The `.npy` reader on arbitrary bytes: an error or a table of the announced shape,
//! never a panic or an allocation the file does not back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad_cli::data::npy;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = npy::parse(data) {
        let count: usize = a.shape.iter().product();
        assert_eq!(a.values.len(), count);
        if let Ok(t) = a.into_table() {
            assert_eq!(t.values.len(), t.rows * t.cols);
        }
    }
});

//! The `.npz` reader on arbitrary bytes (`npz::read_bytes`: a ZIP archive of `.npy`
//! members, stored or deflated, ZIP64 records), asked for its only array and for the keys
//! of the seeds' members (`a`, `arr_1`). An error, or the array asked for (its key) of the
//! announced shape: values.len() == the shape's product, and a table of rows * cols values
//! when it is one; never a panic or an allocation the archive does not back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad_cli::data::npz;

fuzz_target!(|data: &[u8]| {
    for key in [None, Some("a"), Some("arr_1")] {
        if let Ok((k, a)) = npz::read_bytes(data, key) {
            if let Some(key) = key {
                assert_eq!(k, key);
            }
            let count: usize = a.shape.iter().product();
            assert_eq!(a.values.len(), count);
            if let Ok(t) = a.into_table() {
                assert_eq!(t.values.len(), t.rows * t.cols);
            }
        }
    }
});

//! The tar reader on arbitrary bytes (`tar::for_each_file`: ustar, v7 and GNU headers,
//! GNU long names, pax `path` records, checksums), with each regular file read as the
//! CIFAR-10 loader reads a batch (`cifar::record_count` on the announced size, the content,
//! `cifar::check_batch`, `cifar::append_pixels`). An error, or entries that give at most
//! the bytes their headers announce, and batches of whole records: a table of records *
//! 3072 pixel values of 0 to 255; never a panic or an allocation the archive does not back.
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;
use relgrad_cli::data::{cifar, tar};

fuzz_target!(|data: &[u8]| {
    let _ = tar::for_each_file(&mut &data[..], "t.tar", |e| {
        let announced = cifar::record_count(&e.path, e.size);
        let mut bytes = Vec::new();
        e.content.read_to_end(&mut bytes)?;
        assert!(bytes.len() as u64 <= e.size, "{} > {}", bytes.len(), e.size);
        let whole = bytes.len() as u64 == e.size;
        if let (Ok(records), true) = (announced, whole) {
            if let Ok(n) = cifar::check_batch(&e.path, &bytes) {
                assert_eq!(n, records);
                let mut values = Vec::new();
                cifar::append_pixels(&bytes, &mut values);
                assert_eq!(values.len(), n * cifar::PIXELS);
                assert!(values.iter().all(|v| (0.0..=255.0).contains(v)));
            }
        }
        Ok(())
    });
});

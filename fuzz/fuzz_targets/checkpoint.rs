//! The checkpoint loader on arbitrary bytes: an error or a checkpoint whose parts agree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad::model::AnyCheckpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = AnyCheckpoint::from_bytes(data) {
        // What was read writes back and reads again.
        let bytes = match &c {
            AnyCheckpoint::F32(c) => c.to_bytes(),
            AnyCheckpoint::F64(c) => c.to_bytes(),
        }
        .expect("a loaded checkpoint serialises");
        AnyCheckpoint::from_bytes(&bytes).expect("a written checkpoint loads");
    }
});

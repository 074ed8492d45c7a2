//! Preprocessing parameters from arbitrary JSON: rejected, or valid parameters whose
//! transform of valid data is finite.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad::model::Preprocess;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&d, json)) = data.split_first() else {
        return;
    };
    let d = usize::from(d % 16) + 1;
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return;
    };
    let Ok(p) = Preprocess::from_json(&v) else {
        return;
    };
    if p.validate(d).is_err() {
        return;
    }
    let x = common::probe_rows(d);
    if let Ok(t) = p.apply(x.as_ref(), 3) {
        assert!(t.x.as_slice().iter().all(|v| v.is_finite()), "{p:?}");
        assert!(t.log_jacobian.iter().all(|v| v.is_finite()), "{p:?}");
        let back = p
            .invert(t.x.as_ref())
            .expect("valid parameters invert finite values");
        assert!(back.as_slice().iter().all(|v| v.is_finite()), "{p:?}");
    }
});

//! The model-file loader on arbitrary bytes. A file that loads must be usable: its
//! log-densities, latents and samples are finite numbers or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use relgrad::model::DensityModel;
use relgrad::{new_default_backend, Threads};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = DensityModel::from_bytes(data) else {
        return;
    };
    let d = model.dim();
    // Large networks are valid but slow to evaluate; the parser is what is fuzzed there.
    if d * d * model.network.n_layers() > 1 << 16 {
        return;
    }
    let backend = new_default_backend(Threads::Fixed(1));
    let x = common::probe_rows(d);
    if let Ok(lp) = model.log_prob(&backend, x.as_ref()) {
        assert!(lp.iter().all(|v| v.is_finite()), "log_prob gave {lp:?}");
    }
    if let Ok(z) = model.forward(&backend, x.as_ref()) {
        assert!(z.as_slice().iter().all(|v| v.is_finite()));
        if let Ok(back) = model.inverse(&backend, z.as_ref()) {
            assert!(back.as_slice().iter().all(|v| v.is_finite()));
        }
    }
    let mut rng = common::rng();
    if let Ok(s) = model.sample(&backend, 3, &mut rng) {
        assert!(
            s.as_slice().iter().all(|v| v.is_finite()),
            "sample gave {s:?}"
        );
    }
});

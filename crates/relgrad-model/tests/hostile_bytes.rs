//! The model-file and checkpoint loaders and the preprocessing parameters on arbitrary
//! and damaged input: an error, or something that works. A model file that loads gives
//! finite log-densities, latents and samples, or an error; never a panic, NaN or `inf`.
//! The fuzz targets (`fuzz/`) search the same properties with coverage guidance; these
//! keep them in the ordinary test suite, and replay the committed fuzz corpora.

mod common;

use common::backend;
#[path = "../../../fuzz/corpus.rs"]
mod corpus;

use corpus::corpus;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use relgrad_core::Mat;
use relgrad_model::{AnyCheckpoint, DensityModel, Preprocess};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Three rows of `d` columns: zeros, whole numbers (valid pixels) and small reals.
fn probe_rows(d: usize) -> Mat<f64> {
    Mat::from_fn(3, d, |i, j| match i {
        0 => 0.0,
        1 => (j % 3) as f64,
        _ => 0.25 * j as f64 - 1.0,
    })
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

fn check_model(bytes: &[u8]) {
    let Ok(m) = DensityModel::from_bytes(bytes) else {
        return;
    };
    let d = m.dim();
    if d * d * m.network.n_layers() > 1 << 16 {
        return;
    }
    let be = backend();
    let x = probe_rows(d);
    if let Ok(lp) = m.log_prob(&be, x.as_ref()) {
        assert!(all_finite(&lp), "log_prob gave {lp:?}");
    }
    if let Ok(z) = m.forward(&be, x.as_ref()) {
        assert!(all_finite(z.as_slice()));
        if let Ok(back) = m.inverse(&be, z.as_ref()) {
            assert!(all_finite(back.as_slice()));
        }
    }
    if let Ok(s) = m.sample(&be, 3, &mut StdRng::seed_from_u64(7)) {
        assert!(all_finite(s.as_slice()), "sample gave {s:?}");
    }
}

fn check_checkpoint(bytes: &[u8]) {
    if let Ok(c) = AnyCheckpoint::from_bytes(bytes) {
        let again = match &c {
            AnyCheckpoint::F32(c) => c.to_bytes(),
            AnyCheckpoint::F64(c) => c.to_bytes(),
        }
        .unwrap();
        AnyCheckpoint::from_bytes(&again).unwrap();
    }
}

fn check_preprocess(d: usize, v: &serde_json::Value) {
    let Ok(p) = Preprocess::from_json(v) else {
        return;
    };
    if p.validate(d).is_err() {
        return;
    }
    if let Ok(t) = p.apply(probe_rows(d).as_ref(), 3) {
        assert!(
            all_finite(t.x.as_slice()) && all_finite(&t.log_jacobian),
            "{p:?}"
        );
        let back = p.invert(t.x.as_ref()).unwrap();
        assert!(all_finite(back.as_slice()), "{p:?}");
    }
}

/// A valid file with some bytes overwritten and perhaps cut short.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = valid.len();
    (proptest::collection::vec((0..n, any::<u8>()), 1..6), 0..=n).prop_map(move |(edits, keep)| {
        let mut b = valid.clone();
        for (i, v) in edits {
            b[i] = v;
        }
        b.truncate(keep.max(n - 4));
        b
    })
}

fn number() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<f64>().prop_map(|x| json!(x)),
        Just(json!(0.0)),
        Just(json!(-1.0)),
        Just(json!(1e308)),
        Just(json!(1e-310)),
        Just(json!("NaN")),
        Just(json!(null)),
        any::<i64>().prop_map(|x| json!(x)),
    ]
}

fn preprocess_json() -> impl Strategy<Value = serde_json::Value> {
    let list = || proptest::collection::vec(number(), 0..5);
    prop_oneof![
        Just(json!({"kind": "none"})),
        (list(), list()).prop_map(|(m, s)| json!({"kind": "standardize", "mean": m, "std": s})),
        (number(), number())
            .prop_map(|(l, lam)| json!({"kind": "logit", "levels": l, "lambda": lam})),
        any::<String>().prop_map(|k| json!({"kind": k})),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn model_files_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_model(&b);
    }

    #[test]
    fn damaged_model_files(b in damaged(fixture("v1-moons-f64.safetensors"))) {
        check_model(&b);
    }

    #[test]
    fn damaged_checkpoints(b in damaged(fixture("v1-moons-f64.checkpoint.safetensors"))) {
        check_checkpoint(&b);
    }

    #[test]
    fn preprocessing_parameters(d in 1usize..5, v in preprocess_json()) {
        check_preprocess(d, &v);
    }
}

#[test]
fn the_fuzz_corpora_replay_without_a_panic() {
    for b in corpus("model_file") {
        check_model(&b);
    }
    for b in corpus("checkpoint") {
        check_checkpoint(&b);
    }
    for b in corpus("preprocess") {
        let Some((&d, json)) = b.split_first() else {
            continue;
        };
        if let Ok(v) = serde_json::from_slice(json) {
            check_preprocess(usize::from(d % 16) + 1, &v);
        }
    }
}

//! `relgrad bench scaling` at tiny sizes: the table, the files, the stops, the fits and
//! the overlays.

mod common;

use std::path::Path;

use common::*;
use predicates::prelude::*;
use relgrad_cli::bench::scaling::bytes_needed;
use serde_json::{json, Value};

/// `relgrad bench scaling` at D = 4..32, B = 4, one timed call per point, into `out`;
/// `extra` (`--option value` pairs) replaces those defaults or adds to them.
fn tiny(out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut opts: Vec<(String, String)> = [
        ("--min-dim", "4"),
        ("--max-dim", "32"),
        ("--batch", "4"),
        ("--budget", "0.001"),
        ("--min-reps", "1"),
        ("--max-reps", "1"),
        ("--threads", "1"),
        ("--out", out.to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for kv in extra.chunks(2) {
        match opts.iter_mut().find(|(k, _)| k == kv[0]) {
            Some(o) => o.1 = kv[1].to_string(),
            None => opts.push((kv[0].to_string(), kv[1].to_string())),
        }
    }
    let mut c = relgrad();
    c.args(["bench", "scaling", "--quiet"]);
    for (k, v) in opts {
        c.args([k, v]);
    }
    c
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn series<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no series {name} in {v}"))
}

fn dims_of(s: &Value) -> Vec<u64> {
    s["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["d"].as_u64().unwrap())
        .collect()
}

#[test]
fn times_both_gradients_and_writes_the_table_json_csv_and_figure() {
    let dir = tmp();
    let out = dir.path().join("run");
    let stdout = stdout_of(&mut tiny(&out, &[]));
    for s in [
        "relative ms",
        "naive ms",
        "naive/relative",
        "B = 4, L = 2, f32",
        "cores",
        "relative: fitted exponent",
        "naive: fitted exponent",
        "largest D timed 32",
        "reached --max-dim",
    ] {
        assert!(stdout.contains(s), "{s:?} missing:\n{stdout}");
    }
    // One row per dimension.
    for d in ["4", "8", "16", "32"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some(d)),
            "no row for D = {d}:\n{stdout}"
        );
    }
    let v = read_json(&out.join("scaling.json"));
    assert_eq!(v["format"], "relgrad-scaling/1");
    assert!(v["machine"]["cpu"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(v["machine"]["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(v["machine"]["simd"].is_string());
    assert_eq!(v["setup"]["threads"], "1");
    assert_eq!(v["setup"]["precision"], "f32");
    for name in ["relative", "naive"] {
        let s = series(&v, name);
        assert_eq!(dims_of(s), [4, 8, 16, 32], "{s}");
        for p in s["points"].as_array().unwrap() {
            assert_eq!(p["reps"], 1, "{p}");
            let t = p["median_ms"].as_f64().unwrap();
            assert!(t > 0.0 && p["min_ms"].as_f64() == Some(t), "{p}");
        }
        assert!(s["stopped"].is_null());
        // Fitted over the upper half of the points (none reaches --fit-from 1024).
        let fit = &s["fit"];
        assert_eq!(
            (fit["from_d"].as_u64(), fit["to_d"].as_u64()),
            (Some(16), Some(32))
        );
        assert!(fit["exponent"].as_f64().is_some_and(f64::is_finite));
    }
    assert_eq!(series(&v, "relative")["expected_exponent"], 2.0);
    assert_eq!(series(&v, "naive")["expected_exponent"], 3.0);
    // Memory: an estimate and the peak resident memory after every dimension.
    let memory = v["memory"].as_array().unwrap();
    assert_eq!(memory.len(), 4);
    assert_eq!(
        memory[3]["estimate_bytes"].as_u64(),
        Some(bytes_needed(32, 4, 2, 4, true))
    );
    let csv = std::fs::read_to_string(out.join("scaling.csv")).unwrap();
    assert!(csv.starts_with("series,d,median_ms,"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 8);
    let md = std::fs::read_to_string(out.join("scaling.md")).unwrap();
    assert!(
        md.contains("| D |") && md.contains("| 32 |") && md.contains("Machine:"),
        "{md}"
    );
    let png = std::fs::read(out.join("scaling.png")).unwrap();
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "not a PNG");
}

#[test]
fn steps_of_sqrt2_and_one_gradient() {
    let dir = tmp();
    let out = dir.path().join("run");
    tiny(
        &out,
        &[
            "--max-dim",
            "16",
            "--steps-per-octave",
            "2",
            "--gradients",
            "relative",
        ],
    )
    .assert()
    .success();
    let v = read_json(&out.join("scaling.json"));
    assert_eq!(v["series"].as_array().unwrap().len(), 1);
    assert_eq!(dims_of(series(&v, "relative")), [4, 6, 8, 11, 16]);
}

#[test]
fn stops_for_memory_time_and_naive_max_dim_and_says_why() {
    let dir = tmp();
    // Memory: enough for D = 8 without the naive gradient's LU buffers, not with them.
    let limit = (bytes_needed(8, 4, 2, 4, false) + bytes_needed(8, 4, 2, 4, true)) / 2;
    assert!(bytes_needed(16, 4, 2, 4, false) > limit);
    let gib = limit as f64 / (1u64 << 30) as f64;
    let out = dir.path().join("memory");
    let stdout = stdout_of(&mut tiny(&out, &["--max-memory", &format!("{gib:.12}")]));
    let v = read_json(&out.join("scaling.json"));
    let (rel, naive) = (series(&v, "relative"), series(&v, "naive"));
    assert_eq!((dims_of(rel), dims_of(naive)), (vec![4, 8], vec![4]));
    assert_eq!(rel["stopped"]["before_d"], 16);
    assert_eq!(naive["stopped"]["before_d"], 8);
    for s in [rel, naive] {
        let reason = s["stopped"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("memory: D = ") && reason.contains("--max-memory"),
            "{reason}"
        );
    }
    assert!(
        stdout.contains("naive: ") && stdout.contains("stopped before D = 8: memory"),
        "{stdout}"
    );
    assert!(stdout.contains("largest D timed 8"), "{stdout}");

    // Time: any second call is predicted to take longer than 1 ns; --naive-max-dim.
    let out = dir.path().join("time");
    tiny(
        &out,
        &["--max-point-seconds", "1e-9", "--gradients", "relative"],
    )
    .assert()
    .success();
    let v = read_json(&out.join("scaling.json"));
    let rel = series(&v, "relative");
    assert_eq!(dims_of(rel), [4]);
    assert_eq!(rel["stopped"]["before_d"], 8);
    let reason = rel["stopped"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("time: ") && reason.contains("--max-point-seconds"),
        "{reason}"
    );

    let out = dir.path().join("naive-max");
    let stdout = stdout_of(&mut tiny(&out, &["--naive-max-dim", "8"]));
    let v = read_json(&out.join("scaling.json"));
    assert_eq!(dims_of(series(&v, "relative")), [4, 8, 16, 32]);
    assert_eq!(dims_of(series(&v, "naive")), [4, 8]);
    assert!(
        stdout.contains("stopped before D = 16: --naive-max-dim 8"),
        "{stdout}"
    );
}

#[test]
fn redraws_from_a_run_with_an_overlay_and_fits_its_exponent() {
    let dir = tmp();
    let run = dir.path().join("run");
    tiny(&run, &["--gradients", "relative"]).assert().success();
    // Another implementation's series, t = 3e-4 D^2 exactly, measured on another CPU.
    let points: Vec<Value> = [4u64, 8, 16, 32, 64]
        .iter()
        .map(|&d| json!({"d": d, "median_ms": 3e-4 * (d * d) as f64, "reps": 5}))
        .collect();
    let overlay = json!({
        "format": "relgrad-scaling/1",
        "machine": {"cpu": "Some Other CPU"},
        "series": [{
            "name": "official-relative",
            "label": "official JAX relative gradient",
            "expected_exponent": 2.0,
            "points": points,
            "stopped": {"before_d": 128, "reason": "time: predicted too long"},
        }],
    });
    let ov = dir.path().join("official.json");
    std::fs::write(&ov, overlay.to_string()).unwrap();
    let out = dir.path().join("redrawn");
    let assert = relgrad()
        .args([
            "bench",
            "scaling",
            "--from",
            run.join("scaling.json").to_str().unwrap(),
            "--overlay",
            ov.to_str().unwrap(),
            "--fit-from",
            "8",
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("Some Other CPU")
                .and(predicate::str::contains("not side by side")),
        );
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    for s in [
        "official-relative ms",
        "official-relative/relative",
        // Fitted over D >= 8: 8, 16, 32, 64, exactly 2.
        "official-relative: fitted exponent 2.00 (least squares of ln t on ln D over D >= 8: D = 8..64, 4 points)",
        "within 2 +- 0.3: yes",
        "stopped before D = 128: time: predicted too long",
    ] {
        assert!(stdout.contains(s), "{s:?} missing:\n{stdout}");
    }
    // D = 64 has only the overlay's time.
    assert!(stdout
        .lines()
        .any(|l| l.trim_start().starts_with("64 ") && l.contains('-')));
    // The run's own file keeps only its own series; the figure and table show both.
    let v = read_json(&out.join("scaling.json"));
    assert_eq!(v["series"].as_array().unwrap().len(), 1);
    assert_eq!(v["series"][0]["name"], "relative");
    let md = std::fs::read_to_string(out.join("scaling.md")).unwrap();
    assert!(md.contains("official JAX relative gradient (ms)"), "{md}");
    assert!(std::fs::metadata(out.join("scaling.png")).unwrap().len() > 1000);
}

#[test]
fn refuses_bad_arguments() {
    let dir = tmp();
    let out = dir.path().join("x");
    tiny(&out, &["--min-dim", "64"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("larger than --max-dim"));
    tiny(&out, &["--backend", "cuda"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "expected faer, nalgebra or openblas",
        ));
    relgrad()
        .args([
            "bench",
            "scaling",
            "--from",
            dir.path().join("none.json").to_str().unwrap(),
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("none.json"));
    let not_ours = dir.path().join("other.json");
    std::fs::write(&not_ours, "{\"series\": []}").unwrap();
    relgrad()
        .args(["bench", "scaling", "--from", not_ours.to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a scaling file"));
    // The table's options and the scaling benchmark do not mix.
    relgrad()
        .args(["bench", "--dims", "16", "scaling"])
        .assert()
        .code(2);
}

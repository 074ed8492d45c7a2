//! `relgrad bench`: per backend, precision, thread setting and dimension, the GFLOP/s of
//! the `B x D` by `D x D` product and the time of one relative-gradient and one
//! naive-gradient evaluation against the floor of its `4L - 1` products (see
//! [`crate::bench`] for what is timed and how); with `--step`, whole training steps
//! against their memory-traffic floor ([`crate::bench::step`]).

use anyhow::{bail, ensure, Result};
use relgrad::{Backend, Optimizer, Scalar, Threads};
use serde_json::json;

use crate::bench::step::{measure_step, StepMeasurement};
use crate::bench::{measure, Timing};
use crate::cli::{BenchArgs, PrecisionArg};

/// Every backend relgrad knows, and whether this binary has it.
pub fn known_backends() -> [(&'static str, bool, &'static str); 3] {
    [
        ("faer", true, ""),
        (
            "nalgebra",
            cfg!(feature = "nalgebra"),
            "--features nalgebra",
        ),
        (
            "openblas",
            cfg!(feature = "openblas"),
            "--features openblas",
        ),
    ]
}

/// What one configuration measured.
enum Measured {
    Gradient(crate::bench::Measurement),
    Step(&'static str, StepMeasurement),
}

struct Row {
    backend: &'static str,
    precision: &'static str,
    threads: Threads,
    d: usize,
    b: usize,
    m: Measured,
}

fn one<T: Scalar, B: Backend<T>>(
    be: &B,
    name: &'static str,
    threads: Threads,
    args: &BenchArgs,
    timing: Timing,
    out: &mut dyn FnMut(Row),
) -> Result<()> {
    let activation = bench_activation(args);
    for &d in &args.dims {
        for &b in &args.batch {
            let mut row = |m| {
                out(Row {
                    backend: name,
                    precision: T::NAME,
                    threads,
                    d,
                    b,
                    m,
                })
            };
            if !args.step {
                row(Measured::Gradient(measure::<T, B>(
                    be,
                    d,
                    b,
                    args.layers,
                    activation,
                    timing,
                )?));
                continue;
            }
            // SGD with momentum (the default) and Adam (the paper's recipe).
            let sgd = Optimizer::Sgd {
                lr: 1e-3,
                momentum: 0.9,
            };
            for (opt_name, opt) in [("sgd", sgd), ("adam", Optimizer::adam(1e-3))] {
                let m = measure_step::<T, B>(be, (d, b, args.layers), activation, opt, timing)?;
                row(Measured::Step(opt_name, m));
            }
        }
    }
    Ok(())
}

/// Runs one backend in the requested precision.
fn run_precision<B: Backend<f32> + Backend<f64>>(
    be: B,
    name: &'static str,
    p: PrecisionArg,
    threads: Threads,
    args: &BenchArgs,
    timing: Timing,
    out: &mut dyn FnMut(Row),
) -> Result<()> {
    match p {
        PrecisionArg::F32 => one::<f32, _>(&be, name, threads, args, timing, out),
        PrecisionArg::F64 => one::<f64, _>(&be, name, threads, args, timing, out),
    }
}

fn run_backend(
    name: &str,
    p: PrecisionArg,
    threads: Threads,
    args: &BenchArgs,
    timing: Timing,
    out: &mut dyn FnMut(Row),
) -> Result<()> {
    match name {
        "faer" => run_precision(
            relgrad::Faer::new(threads),
            "faer",
            p,
            threads,
            args,
            timing,
            out,
        ),
        #[cfg(feature = "nalgebra")]
        "nalgebra" => run_precision(
            relgrad::Nalgebra::new(threads),
            "nalgebra",
            p,
            threads,
            args,
            timing,
            out,
        ),
        #[cfg(feature = "openblas")]
        "openblas" => run_precision(
            relgrad::Blas::new(threads),
            "openblas",
            p,
            threads,
            args,
            timing,
            out,
        ),
        _ => bail!("backend {name:?} is not compiled in"),
    }
}

/// Runs `relgrad bench`.
pub fn run(args: BenchArgs) -> Result<()> {
    // The values' ranges are checked by the parser; here, what they allocate together.
    let limit = relgrad::model::config::MAX_PARAMETERS;
    for &d in &args.dims {
        let params = d
            .checked_mul(d + 1)
            .and_then(|p| p.checked_mul(args.layers));
        for &b in &args.batch {
            let batch = b.checked_mul(d);
            if params.is_none_or(|p| p > limit) || batch.is_none_or(|b| b > limit) {
                return Err(crate::usage_error(format!(
                    "--dims {d} with --layers {} and --batch {b}: more than {limit} parameters or batch values, the limit; choose a smaller D, L or B",
                    args.layers
                )));
            }
        }
    }
    let known = known_backends();
    let mut chosen: Vec<&'static str> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    if args.backends.is_empty() {
        chosen.extend(known.iter().filter(|k| k.1).map(|k| k.0));
    } else {
        for b in &args.backends {
            let b = b.trim().to_ascii_lowercase();
            let b = if b == "blas" {
                "openblas".to_string()
            } else {
                b
            };
            match known.iter().find(|k| k.0 == b) {
                Some(k) if k.1 => {
                    if !chosen.contains(&k.0) {
                        chosen.push(k.0)
                    }
                }
                Some(k) => missing.push(format!("{} (rebuild with {})", k.0, k.2)),
                None => {
                    bail!("--backends: unknown backend {b:?}; expected faer, nalgebra or openblas")
                }
            }
        }
    }
    let not_compiled: Vec<String> = known
        .iter()
        .filter(|k| !k.1)
        .map(|k| format!("{} (rebuild with {})", k.0, k.2))
        .collect();
    if !missing.is_empty() {
        eprintln!("not compiled in, skipped: {}", missing.join(", "));
    } else if args.backends.is_empty() && !not_compiled.is_empty() {
        eprintln!("not compiled in: {}", not_compiled.join(", "));
    }
    ensure!(
        !chosen.is_empty(),
        "none of the requested backends is compiled in"
    );
    let timing = if args.quick {
        Timing::quick()
    } else {
        Timing::standard()
    };
    let simd = match args.simd {
        Some(max) => relgrad::cap_simd_level(max),
        None => relgrad::simd_level(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !args.json {
        let floor = if args.step {
            "floor = the parameters' and optimizer state's bytes (read and written once) and the batch's, at the bandwidth of a stream over buffers of those sizes on one core or all, whichever is faster; arith = the (4L-1) B D^2 multiply-adds at the backend's rate on a 768^3 product (GF/s peak); bound = the larger; used = threads the backend gives a B x D by D x D product / the fused pass over a layer"
        } else {
            "floor = the 4L-1 products of one evaluation, timed alone; used = threads the backend gives a B x D by D x D product"
        };
        println!(
            "L = {}, each item timed for ~{:.2} s (median); {floor}; {cores} cores; elementwise kernels: {}",
            args.layers,
            timing.budget.as_secs_f64(),
            simd.name()
        );
        println!("activation: {}", describe_activation(&args));
        if args.step {
            println!(
                "{:<9} {:<4} {:>7} {:>5} {:>6} {:>6} {:<5} {:>11} {:>10} {:>10} {:>10} {:>8} {:>9} {:>8} {:>11} {:>11} {:>11} {:>8}",
                "backend",
                "prec",
                "threads",
                "used",
                "D",
                "B",
                "opt",
                "gradient ms",
                "step ms",
                "fused ms",
                "floor ms",
                "GB/s",
                "arith ms",
                "GF/s",
                "step/floor",
                "fused/floor",
                "fused/bound",
                "trainer"
            );
        } else {
            println!(
                "{:<9} {:<4} {:>7} {:>5} {:>6} {:>6} {:>11} {:>12} {:>11} {:>11} {:>10} {:>10}",
                "backend",
                "prec",
                "threads",
                "used",
                "D",
                "B",
                "gemm GF/s",
                "relative ms",
                "naive ms",
                "floor ms",
                "rel/floor",
                "naive/rel"
            );
        }
    }
    let json = args.json;
    let layers = args.layers;
    let mut print = |r: Row| {
        let head = json!({
            "backend": r.backend, "precision": r.precision, "threads": r.threads.to_string(),
            "d": r.d, "b": r.b, "l": layers, "simd": simd.name(), "cores": cores,
        });
        match (&r.m, json) {
            (Measured::Gradient(m), true) => {
                let mut v = head;
                v["gemm_gflops"] = m.gemm_gflops.into();
                v["relative_ms"] = m.relative_ms.into();
                v["naive_ms"] = m.naive_ms.into();
                v["floor_ms"] = m.floor_ms.into();
                v["product_threads"] = m.product_threads.into();
                println!("{v}");
            }
            (Measured::Step(opt, m), true) => {
                let mut v = head;
                v["optimizer"] = (*opt).into();
                v["gradient_ms"] = m.gradient_ms.into();
                v["step_ms"] = m.step_ms.into();
                v["fused_ms"] = m.fused_ms.into();
                v["trainer"] = trainer_path(r.b, r.d).into();
                v["floor_ms"] = m.floor_ms.into();
                v["floor_bytes"] = m.floor_bytes.into();
                v["bandwidth_gbs"] = m.bandwidth_gbs.into();
                v["arith_ms"] = m.arith_ms.into();
                v["peak_gflops"] = m.peak_gflops.into();
                v["bound_ms"] = m.bound_ms().into();
                v["product_threads"] = m.product_threads.into();
                v["pass_threads"] = m.pass_threads.into();
                println!("{v}");
            }
            (Measured::Gradient(m), false) => println!(
                "{:<9} {:<4} {:>7} {:>5} {:>6} {:>6} {:>11.2} {:>12.4} {:>11.4} {:>11.4} {:>10.2} {:>10.2}",
                r.backend,
                r.precision,
                r.threads.to_string(),
                m.product_threads,
                r.d,
                r.b,
                m.gemm_gflops,
                m.relative_ms,
                m.naive_ms,
                m.floor_ms,
                m.relative_ms / m.floor_ms,
                m.naive_ms / m.relative_ms
            ),
            (Measured::Step(opt, m), false) => println!(
                "{:<9} {:<4} {:>7} {:>5} {:>6} {:>6} {:<5} {:>11.4} {:>10.4} {:>10.4} {:>10.4} {:>8.1} {:>9.4} {:>8.1} {:>11.2} {:>11.2} {:>11.2} {:>8}",
                r.backend,
                r.precision,
                r.threads.to_string(),
                format!("{}/{}", m.product_threads, m.pass_threads),
                r.d,
                r.b,
                opt,
                m.gradient_ms,
                m.step_ms,
                m.fused_ms,
                m.floor_ms,
                m.bandwidth_gbs,
                m.arith_ms,
                m.peak_gflops,
                m.step_ms / m.floor_ms,
                m.fused_ms / m.floor_ms,
                m.fused_ms / m.bound_ms(),
                trainer_path(r.b, r.d)
            ),
        }
    };
    for name in &chosen {
        for &p in &args.precision {
            for &t in &args.threads {
                run_backend(name, p, t, &args, timing, &mut print)?;
            }
        }
    }
    Ok(())
}

/// Which step the trainer takes for batches of `b` rows in dimension `d` (the relative
/// gradient on one process): `"fused"` or `"step"`.
fn trainer_path(b: usize, d: usize) -> &'static str {
    if relgrad::fuses(b, d) {
        "fused"
    } else {
        "step"
    }
}

/// The activation `relgrad bench` times: `--activation` (default: the smooth leaky ReLU
/// with alpha 0.01, the paper's), splines with `--bins` bins on
/// `[-DEFAULT_BOUND, DEFAULT_BOUND]` (`relgrad::activation::DEFAULT_BOUND`).
pub(crate) fn bench_activation(args: &BenchArgs) -> relgrad::Activation {
    use crate::cli::ActivationArg;
    match args.activation {
        ActivationArg::SmoothLeakyRelu => relgrad::Activation::default(),
        ActivationArg::LeakyRelu => relgrad::Activation::LeakyRelu { alpha: 0.01 },
        ActivationArg::TanhLinear => relgrad::Activation::TanhLinear { beta: 0.1 },
        ActivationArg::Spline => relgrad::Activation::Spline {
            bins: args.bins,
            bound: relgrad::activation::DEFAULT_BOUND,
        },
    }
}

fn describe_activation(args: &BenchArgs) -> String {
    let a = bench_activation(args);
    match a.bins() {
        Some(k) => format!(
            "spline, {k} bins on [-{b}, {b}]",
            b = relgrad::activation::DEFAULT_BOUND
        ),
        None => format!("{} ({})", a.name(), a.parameter()),
    }
}

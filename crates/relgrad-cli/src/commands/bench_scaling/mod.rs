//! `relgrad bench scaling`: the paper's scaling figure. The time of one relative and one
//! naive gradient evaluation at dimensions from `--min-dim` to `--max-dim`, each timed
//! within a budget ([`crate::bench::scaling`]); a gradient stops where its next point
//! would not fit in memory or is predicted to take longer than `--max-point-seconds`, and
//! the report says where and why. The exponents are fitted by least squares on log-log
//! axes; the table goes to stdout, and `scaling.json`, `scaling.csv`, `scaling.md` and
//! `scaling.png` to `--out`. `--overlay` adds other implementations' series (the
//! official code's, from `benches/python/scaling_official.py`), `--from` redoes the
//! report from an earlier run without timing anything.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use relgrad::{Backend, GemmDims, Scalar};
use serde_json::{json, Value};

use crate::bench::scaling::{
    bytes_needed, cpu_name, dims, fit_exponent, fit_points, measure_point, mem_available, peak_rss,
    predict_seconds, PointTiming, Sample,
};
use crate::cli::{GradientArg, PrecisionArg, ScalingArgs};
use crate::plots::{scaling_figure, FitLine, ScalingLine};

mod report;
use report::{load, sig3, table, to_json, write_outputs};

/// The `format` field of the JSON files this command reads and writes.
pub const FORMAT: &str = "relgrad-scaling/1";

/// The share of `MemAvailable` a run may allocate by default.
const MEMORY_SHARE: f64 = 0.9;

const GIB: f64 = (1u64 << 30) as f64;

/// One timed dimension of a series.
#[derive(Clone, Debug)]
struct SeriesPoint {
    d: usize,
    sample: Sample,
    /// The threads the backend gave the step's `B x D` by `D x D` products.
    product_threads: Option<usize>,
}

/// Where and why a series stopped short of the largest dimension.
#[derive(Clone, Debug)]
struct Stop {
    before_d: usize,
    reason: String,
}

/// The exponent fitted to a series.
#[derive(Clone, Debug)]
struct Fit {
    exponent: f64,
    intercept: f64,
    from_d: usize,
    to_d: usize,
    points: usize,
    rule: String,
}

#[derive(Clone, Debug)]
struct Series {
    /// A short name: `relative`, `naive`, `official-relative`, ...
    name: String,
    /// The legend's text.
    label: String,
    /// The exponent the series should show at large `D` (2 or 3), if known.
    expected: Option<f64>,
    points: Vec<SeriesPoint>,
    stopped: Option<Stop>,
    /// Read from an `--overlay` file.
    overlay: bool,
    /// Where the series was measured (an overlay's CPU), if said.
    cpu: Option<String>,
}

impl Series {
    fn fit(&self, fit_from: usize) -> Option<Fit> {
        let ds: Vec<usize> = self.points.iter().map(|p| p.d).collect();
        let (first, rule) = fit_points(&ds, fit_from)?;
        let pts: Vec<(f64, f64)> = self.points[first..]
            .iter()
            .map(|p| (p.d as f64, p.sample.median_ms))
            .collect();
        let (exponent, intercept) = fit_exponent(&pts)?;
        Some(Fit {
            exponent,
            intercept,
            from_d: ds[first],
            to_d: *ds.last()?,
            points: pts.len(),
            rule,
        })
    }

    fn at(&self, d: usize) -> Option<&SeriesPoint> {
        self.points.iter().find(|p| p.d == d)
    }

    fn largest(&self) -> Option<usize> {
        self.points.last().map(|p| p.d)
    }
}

/// A run: what was measured, how, and where.
struct Report {
    /// `setup` of the JSON (backend, precision, batch, ... as written).
    setup: Value,
    /// `machine` of the JSON.
    machine: Value,
    series: Vec<Series>,
    /// Per dimension: the estimated bytes and the process's peak resident bytes after it.
    memory: Vec<(usize, u64, Option<u64>)>,
}

impl Report {
    fn setup_str(&self, key: &str) -> String {
        match &self.setup[key] {
            Value::String(s) => s.clone(),
            Value::Null => "?".into(),
            v => v.to_string(),
        }
    }

    fn cpu(&self) -> String {
        self.machine["cpu"]
            .as_str()
            .unwrap_or("unknown CPU")
            .to_string()
    }

    /// The machine in one line: CPU, cores, SIMD level of the elementwise kernels.
    fn machine_line(&self) -> String {
        format!(
            "{}, {} cores, elementwise kernels {}",
            self.cpu(),
            self.machine["cores"].as_u64().unwrap_or(0),
            self.machine["simd"].as_str().unwrap_or("?")
        )
    }

    /// The setup in one line.
    fn setup_line(&self) -> String {
        format!(
            "one gradient evaluation (forward, backward, direction), B = {}, L = {}, {}, {} backend, threads {}",
            self.setup_str("batch"),
            self.setup_str("layers"),
            self.setup_str("precision"),
            self.setup_str("backend"),
            self.setup_str("threads"),
        )
    }
}

/// Runs `relgrad bench scaling`.
pub fn run(args: ScalingArgs) -> Result<()> {
    let mut report = match &args.from {
        Some(path) => load(path, false)?,
        None => measure(&args)?,
    };
    for path in &args.overlay {
        let other = load(path, true)?;
        for s in other.series {
            if let Some(cpu) = &s.cpu {
                if *cpu != report.cpu() {
                    eprintln!(
                        "warning: {} was measured on {cpu}, not on {}: the comparison is not side by side",
                        path.display(),
                        report.cpu()
                    );
                }
            }
            report.series.push(s);
        }
    }
    let fits: Vec<Option<Fit>> = report.series.iter().map(|s| s.fit(args.fit_from)).collect();
    println!("{}", table(&report, &fits));
    write_outputs(&args.out, &report, &fits, args.fit_from)
}

// --------------------------------------------------------------------------- measuring

/// What the sweep needs besides the backend.
struct Plan<'a> {
    args: &'a ScalingArgs,
    dims: Vec<usize>,
    relative: bool,
    naive: bool,
    naive_max: usize,
    limit: Option<u64>,
    timing: PointTiming,
    elem: usize,
    setup: Value,
    machine: Value,
}

/// What the sweep measured.
struct Swept {
    relative: Series,
    naive: Series,
    memory: Vec<(usize, u64, Option<u64>)>,
}

impl Swept {
    /// The report of what was measured so far.
    fn report(&self, plan: &Plan) -> Report {
        let mut series = Vec::new();
        if plan.relative {
            series.push(self.relative.clone());
        }
        if plan.naive {
            series.push(self.naive.clone());
        }
        Report {
            setup: plan.setup.clone(),
            machine: plan.machine.clone(),
            series,
            memory: self.memory.clone(),
        }
    }

    /// Writes what was measured so far to `--out`/scaling.json (the whole report replaces
    /// it at the end): an interrupted run keeps its points.
    fn save(&self, plan: &Plan) {
        let report = self.report(plan);
        let fits: Vec<Option<Fit>> = report
            .series
            .iter()
            .map(|s| s.fit(plan.args.fit_from))
            .collect();
        let mut v = to_json(&report, &fits);
        v["partial"] = true.into();
        let path = plan.args.out.join("scaling.json");
        let written = serde_json::to_string_pretty(&v)
            .map_err(anyhow::Error::from)
            .and_then(|t| crate::util::write_atomic(&path, (t + "\n").as_bytes()));
        if let Err(e) = written {
            eprintln!("warning: {}: {e}", path.display());
        }
    }
}

fn measure(args: &ScalingArgs) -> Result<Report> {
    if args.min_dim > args.max_dim {
        return Err(crate::usage_error(format!(
            "--min-dim {} is larger than --max-dim {}",
            args.min_dim, args.max_dim
        )));
    }
    if args.min_reps > args.max_reps {
        return Err(crate::usage_error(format!(
            "--min-reps {} is larger than --max-reps {}",
            args.min_reps, args.max_reps
        )));
    }
    ensure!(!args.gradients.is_empty(), "--gradients: name at least one");
    let simd = match args.simd {
        Some(max) => relgrad::cap_simd_level(max),
        None => relgrad::simd_level(),
    };
    let available = mem_available();
    let limit = match args.max_memory {
        Some(gib) => Some((gib * GIB) as u64),
        None => available.map(|m| (m as f64 * MEMORY_SHARE) as u64),
    };
    if limit.is_none() {
        eprintln!("warning: no /proc/meminfo: the memory a dimension needs is not checked");
    }
    let backend = args.backend.trim().to_ascii_lowercase();
    let known = crate::commands::bench::known_backends();
    match known
        .iter()
        .find(|k| k.0 == backend || (backend == "blas" && k.0 == "openblas"))
    {
        Some(k) if k.1 => {}
        Some(k) => bail!("--backend {}: not compiled in (rebuild with {})", k.0, k.2),
        None => bail!("--backend {backend:?}: expected faer, nalgebra or openblas"),
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let setup = json!({
        "timed": "one gradient evaluation: forward, backward and update direction of every layer, into a preallocated workspace, after one untimed warm-up call",
        "model": "weights I + 0.25 G / sqrt(D) (G standard normal), zero biases, smooth leaky ReLU (alpha 0.01), standard-normal base; batch of B standard-normal rows",
        "backend": backend,
        "precision": args.precision.name(),
        "threads": args.threads.to_string(),
        "batch": args.batch,
        "layers": args.layers,
        "min_dim": args.min_dim,
        "max_dim": args.max_dim,
        "naive_max_dim": args.naive_max_dim.unwrap_or(args.max_dim),
        "steps_per_octave": args.steps_per_octave,
        "budget_s": args.budget,
        "min_reps": args.min_reps,
        "max_reps": args.max_reps,
        "max_point_seconds": args.max_point_seconds,
        "fit_from": args.fit_from,
        "memory_limit_bytes": limit,
    });
    let machine = json!({
        "cpu": cpu_name(),
        "cores": cores,
        "simd": simd.name(),
        "mem_available_bytes": available,
        "unix_time": unix_time,
        "tool": format!("relgrad {}", env!("CARGO_PKG_VERSION")),
    });
    let plan = Plan {
        args,
        dims: dims(args.min_dim, args.max_dim, args.steps_per_octave),
        relative: args.gradients.contains(&GradientArg::Relative),
        naive: args.gradients.contains(&GradientArg::Naive),
        naive_max: args.naive_max_dim.unwrap_or(args.max_dim),
        limit,
        timing: PointTiming {
            budget: Duration::from_secs_f64(args.budget),
            min_reps: args.min_reps,
            max_reps: args.max_reps,
        },
        elem: match args.precision {
            PrecisionArg::F32 => 4,
            PrecisionArg::F64 => 8,
        },
        setup,
        machine,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let swept = match backend.as_str() {
        "faer" => by_precision(relgrad::Faer::new(args.threads), &plan)?,
        #[cfg(feature = "nalgebra")]
        "nalgebra" => by_precision(relgrad::Nalgebra::new(args.threads), &plan)?,
        #[cfg(feature = "openblas")]
        "openblas" | "blas" => by_precision(relgrad::Blas::new(args.threads), &plan)?,
        other => unreachable!("--backend {other} was checked above"),
    };
    Ok(swept.report(&plan))
}

fn by_precision<B: Backend<f32> + Backend<f64>>(be: B, plan: &Plan) -> Result<Swept> {
    match plan.args.precision {
        PrecisionArg::F32 => sweep::<f32, B>(&be, plan),
        PrecisionArg::F64 => sweep::<f64, B>(&be, plan),
    }
}

fn new_series(name: &str, what: &str, expected: f64, plan: &Plan) -> Series {
    Series {
        name: name.into(),
        label: format!(
            "relgrad {what} ({}, {})",
            plan.args.backend.trim().to_ascii_lowercase(),
            plan.args.precision.name()
        ),
        expected: Some(expected),
        points: Vec::new(),
        stopped: None,
        overlay: false,
        cpu: None,
    }
}

/// The predicted seconds of the warm-up and `--min-reps` calls of `s` at `d`, from its
/// last two points; `None` before its first point.
fn predicted_point_seconds(s: &Series, d: usize, reps: usize) -> Option<f64> {
    let n = s.points.len();
    let last = s.points.last()?;
    let before = n
        .checked_sub(2)
        .map(|i| (s.points[i].d, s.points[i].sample.median_ms / 1e3));
    let exponent = s.expected.unwrap_or(2.0);
    let call = predict_seconds((last.d, last.sample.median_ms / 1e3), before, d, exponent);
    Some(call * (1 + reps) as f64)
}

fn sweep<T: Scalar, B: Backend<T>>(be: &B, plan: &Plan) -> Result<Swept> {
    let args = plan.args;
    let (b, l) = (args.batch, args.layers);
    let mut sw = Swept {
        relative: new_series("relative", "relative gradient", 2.0, plan),
        naive: new_series("naive", "naive gradient (LU inverse)", 3.0, plan),
        memory: Vec::new(),
    };
    let (mut rel_on, mut naive_on) = (plan.relative, plan.naive);
    let items = plan.dims.len() as u64 * (plan.relative as u64 + plan.naive as u64);
    let tty = std::io::stderr().is_terminal() && !args.quiet;
    let bar = ProgressBar::with_draw_target(
        Some(items),
        if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:20}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    if tty {
        bar.enable_steady_tick(Duration::from_millis(250));
    }
    // Progress lines go to stderr whether or not the bar is drawn.
    let say = |bar: &ProgressBar, line: String| {
        if args.quiet {
            return;
        }
        bar.suspend(|| eprintln!("{line}"));
    };
    let limit_text = |bytes: u64| match args.max_memory {
        Some(_) => format!("{:.2} GiB allowed (--max-memory)", bytes as f64 / GIB),
        None => format!(
            "{:.2} GiB available ({:.0} % of MemAvailable)",
            bytes as f64 / GIB,
            MEMORY_SHARE * 100.0
        ),
    };
    for (i, &d) in plan.dims.iter().enumerate() {
        let (rel_was, naive_was) = (sw.relative.stopped.is_some(), sw.naive.stopped.is_some());
        // Stops for time: the warm-up and the fewest calls, predicted from the last points.
        if naive_on && d > plan.naive_max {
            naive_on = false;
            sw.naive.stopped = Some(Stop {
                before_d: d,
                reason: format!("--naive-max-dim {}", plan.naive_max),
            });
        }
        for (on, s) in [
            (&mut rel_on, &mut sw.relative),
            (&mut naive_on, &mut sw.naive),
        ] {
            if !*on {
                continue;
            }
            if let Some(t) = predicted_point_seconds(s, d, args.min_reps) {
                if t > args.max_point_seconds {
                    *on = false;
                    s.stopped = Some(Stop {
                        before_d: d,
                        reason: format!(
                            "time: its warm-up and {} calls are predicted to take {} s (from D = {}), more than --max-point-seconds {}",
                            args.min_reps,
                            sig3(t),
                            s.largest().unwrap_or(0),
                            args.max_point_seconds
                        ),
                    });
                }
            }
        }
        // Stops for memory: the naive gradient's LU buffers first.
        if let Some(limit) = plan.limit {
            let need = |naive: bool| bytes_needed(d, b, l, plan.elem, naive);
            let needs = |naive: bool| {
                format!(
                    "memory: D = {d} needs about {:.2} GiB, {}",
                    need(naive) as f64 / GIB,
                    limit_text(limit)
                )
            };
            if naive_on && need(true) > limit {
                naive_on = false;
                sw.naive.stopped = Some(Stop {
                    before_d: d,
                    reason: needs(true),
                });
            }
            if rel_on && need(false) > limit {
                rel_on = false;
                sw.relative.stopped = Some(Stop {
                    before_d: d,
                    reason: needs(false),
                });
            }
        }
        for (was, s) in [(rel_was, &sw.relative), (naive_was, &sw.naive)] {
            if let (false, Some(st)) = (was, &s.stopped) {
                say(
                    &bar,
                    format!("{}: stopped before D = {d}: {}", s.name, st.reason),
                );
            }
        }
        let skipped = (plan.relative && !rel_on) as u64 + (plan.naive && !naive_on) as u64;
        bar.inc(skipped);
        if !rel_on && !naive_on {
            bar.inc(items.saturating_sub(bar.position()));
            break;
        }
        let estimate = bytes_needed(d, b, l, plan.elem, naive_on);
        bar.set_message(format!(
            "D = {d} ({}/{}): allocating {:.2} GiB",
            i + 1,
            plan.dims.len(),
            estimate as f64 / GIB
        ));
        let mut each = |g: &'static str| {
            if g == "naive" && rel_on {
                bar.inc(1);
            }
            bar.set_message(format!("D = {d} ({}/{}): {g}", i + 1, plan.dims.len()));
        };
        let p = measure_point::<T, B>(be, (d, b, l), (rel_on, naive_on), plan.timing, &mut each)?;
        bar.inc(1);
        let threads = be.product_threads(GemmDims { m: b, k: d, n: d });
        let mut line = format!("D = {d:>6}:");
        for (sample, s) in [(p.relative, &mut sw.relative), (p.naive, &mut sw.naive)] {
            if let Some(sample) = sample {
                line += &format!(
                    "  {} {} ms ({} calls, spread {:.0} %)",
                    s.name,
                    sig3(sample.median_ms),
                    sample.reps,
                    sample.spread() * 100.0
                );
                s.points.push(SeriesPoint {
                    d,
                    sample,
                    product_threads: Some(threads),
                });
            }
        }
        say(&bar, line);
        sw.memory.push((d, estimate, peak_rss()));
        sw.save(plan);
    }
    bar.finish_and_clear();
    Ok(sw)
}

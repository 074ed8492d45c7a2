//! The report of `relgrad bench scaling`: reading a run back (`--from`, `--overlay`), the
//! fitted exponents' summary, the table on stdout, and the files written to `--out`
//! (`scaling.json`, `scaling.csv`, `scaling.md`, `scaling.png`).

use std::path::Path;

use anyhow::{anyhow, ensure, Context, Result};
use serde_json::{json, Value};

use super::*;

pub(super) fn load(path: &Path, overlay: bool) -> Result<Report> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    ensure!(
        v["format"] == FORMAT,
        "{}: not a scaling file (its \"format\" is not {FORMAT:?})",
        path.display()
    );
    if v["partial"] == true {
        eprintln!(
            "warning: {} is from a run that did not finish: its last points are missing",
            path.display()
        );
    }
    let cpu = v["machine"]["cpu"].as_str().map(str::to_string);
    let num = |p: &Value, k: &str| -> Result<f64> {
        p[k].as_f64()
            .ok_or_else(|| anyhow!("{}: a point lacks {k:?}", path.display()))
    };
    let mut series = Vec::new();
    for s in v["series"].as_array().into_iter().flatten() {
        let name = s["name"]
            .as_str()
            .ok_or_else(|| anyhow!("{}: a series lacks its \"name\"", path.display()))?;
        let mut points = Vec::new();
        for p in s["points"].as_array().into_iter().flatten() {
            let median_ms = num(p, "median_ms")?;
            points.push(SeriesPoint {
                d: num(p, "d")? as usize,
                sample: Sample {
                    median_ms,
                    min_ms: p["min_ms"].as_f64().unwrap_or(median_ms),
                    max_ms: p["max_ms"].as_f64().unwrap_or(median_ms),
                    q1_ms: p["q1_ms"].as_f64().unwrap_or(median_ms),
                    q3_ms: p["q3_ms"].as_f64().unwrap_or(median_ms),
                    reps: p["reps"].as_u64().unwrap_or(0) as usize,
                    warmup_ms: p["warmup_ms"].as_f64().unwrap_or(f64::NAN),
                },
                product_threads: p["product_threads"].as_u64().map(|n| n as usize),
            });
        }
        points.sort_by_key(|p| p.d);
        let stopped = s["stopped"].as_object().map(|o| Stop {
            before_d: o.get("before_d").and_then(Value::as_u64).unwrap_or(0) as usize,
            reason: o
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
        });
        series.push(Series {
            name: name.to_string(),
            label: s["label"].as_str().unwrap_or(name).to_string(),
            expected: s["expected_exponent"].as_f64(),
            points,
            stopped,
            overlay,
            cpu: cpu.clone(),
        });
    }
    ensure!(!series.is_empty(), "{}: no series", path.display());
    let memory = v["memory"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["d"].as_u64()? as usize,
                m["estimate_bytes"].as_u64()?,
                m["peak_rss_bytes"].as_u64(),
            ))
        })
        .collect();
    Ok(Report {
        setup: v["setup"].clone(),
        machine: v["machine"].clone(),
        series,
        memory,
    })
}

// --------------------------------------------------------------------------- writing

/// Three significant digits, in plain notation.
pub(super) fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let digits = (2 - x.abs().max(1e-300).log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

/// The ratio columns: naive over relative, and each overlay over relgrad's relative.
fn ratios(report: &Report) -> Vec<(String, usize, usize)> {
    let find = |n: &str| report.series.iter().position(|s| !s.overlay && s.name == n);
    let mut out = Vec::new();
    if let (Some(r), Some(n)) = (find("relative"), find("naive")) {
        out.push(("naive/relative".to_string(), n, r));
    }
    if let Some(r) = find("relative") {
        for (i, s) in report.series.iter().enumerate().filter(|(_, s)| s.overlay) {
            out.push((format!("{}/relative", s.name), i, r));
        }
    }
    out
}

fn all_dims(report: &Report) -> Vec<usize> {
    let mut ds: Vec<usize> = report
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.d))
        .collect();
    ds.sort_unstable();
    ds.dedup();
    ds
}

fn ratio_at(report: &Report, d: usize, (a, b): (usize, usize)) -> String {
    match (report.series[a].at(d), report.series[b].at(d)) {
        (Some(x), Some(y)) => format!("{:.2}", x.sample.median_ms / y.sample.median_ms),
        _ => "-".into(),
    }
}

/// The lines under a table: per series, its fitted exponent, its largest `D` and where
/// and why it stopped, and whether the exponent is within 0.3 of the expected one.
fn summary(report: &Report, fits: &[Option<Fit>]) -> Vec<String> {
    let mut out = Vec::new();
    for (s, f) in report.series.iter().zip(fits) {
        let fit = match f {
            Some(f) => format!(
                "fitted exponent {:.2} (least squares of ln t on ln D over {}: D = {}..{}, {} points)",
                f.exponent, f.rule, f.from_d, f.to_d, f.points
            ),
            None => "no exponent (fewer than two points)".into(),
        };
        let largest = s
            .largest()
            .map_or("nothing timed".into(), |d| format!("largest D timed {d}"));
        let mut line = format!("{}: {fit}; {largest}", s.name);
        if let (Some(e), Some(f)) = (s.expected, f) {
            let ok = (f.exponent - e).abs() <= 0.3;
            line += &format!("; within {e} +- 0.3: {}", if ok { "yes" } else { "NO" });
        }
        match &s.stopped {
            Some(st) => line += &format!("; stopped before D = {}: {}", st.before_d, st.reason),
            None if !s.overlay => line += "; reached --max-dim",
            None => {}
        }
        out.push(line);
    }
    out
}

/// The table printed to stdout.
pub(super) fn table(report: &Report, fits: &[Option<Fit>]) -> String {
    let ratios = ratios(report);
    let mut s = format!(
        "{}\n{}\nmilliseconds per evaluation: median over the timed calls (spread: their interquartile range / median)\n",
        report.setup_line(),
        report.machine_line()
    );
    let width = |name: &str| (name.len() + 3).max(10);
    s += &format!("{:>6}", "D");
    for se in &report.series {
        s += &format!(
            "  {:>w$} {:>7}",
            format!("{} ms", se.name),
            "spread",
            w = width(&se.name)
        );
    }
    for (name, _, _) in &ratios {
        s += &format!("  {name:>w$}", w = name.len().max(8));
    }
    s.push('\n');
    for d in all_dims(report) {
        s += &format!("{d:>6}");
        for se in &report.series {
            let (t, spread) = se.at(d).map_or(("-".into(), "-".into()), |p| {
                (
                    sig3(p.sample.median_ms),
                    if p.sample.reps > 0 {
                        format!("{:.0} %", p.sample.spread() * 100.0)
                    } else {
                        "-".into()
                    },
                )
            });
            s += &format!("  {t:>w$} {spread:>7}", w = width(&se.name));
        }
        for (name, a, b) in &ratios {
            s += &format!(
                "  {:>w$}",
                ratio_at(report, d, (*a, *b)),
                w = name.len().max(8)
            );
        }
        s.push('\n');
    }
    for line in summary(report, fits) {
        s += &line;
        s.push('\n');
    }
    s
}

/// `scaling.md`: the table in Markdown, for docs/benchmarks.md.
fn markdown(report: &Report, fits: &[Option<Fit>]) -> String {
    let ratios = ratios(report);
    let mut s = format!(
        "Machine: {}. Timed: {}; milliseconds, median over the timed calls.\n\n| D |",
        report.machine_line(),
        report.setup_line()
    );
    for se in &report.series {
        s += &format!(" {} (ms) |", se.label);
    }
    for (name, _, _) in &ratios {
        s += &format!(" {name} |");
    }
    s += "\n|---:|";
    for _ in 0..report.series.len() + ratios.len() {
        s += "---:|";
    }
    s.push('\n');
    for d in all_dims(report) {
        s += &format!("| {d} |");
        for se in &report.series {
            s += &format!(
                " {} |",
                se.at(d).map_or("-".into(), |p| sig3(p.sample.median_ms))
            );
        }
        for (_, a, b) in &ratios {
            s += &format!(" {} |", ratio_at(report, d, (*a, *b)));
        }
        s.push('\n');
    }
    s.push('\n');
    for line in summary(report, fits) {
        s += &format!("- {line}\n");
    }
    s
}

fn csv(report: &Report) -> String {
    let mut s = String::from("series,d,median_ms,min_ms,q1_ms,q3_ms,max_ms,reps,warmup_ms\n");
    for se in &report.series {
        for p in &se.points {
            let x = p.sample;
            s += &format!(
                "{},{},{},{},{},{},{},{},{}\n",
                se.name,
                p.d,
                x.median_ms,
                x.min_ms,
                x.q1_ms,
                x.q3_ms,
                x.max_ms,
                x.reps,
                if x.warmup_ms.is_finite() {
                    x.warmup_ms.to_string()
                } else {
                    String::new()
                }
            );
        }
    }
    s
}

fn fit_json(f: &Option<Fit>) -> Value {
    match f {
        Some(f) => json!({
            "exponent": f.exponent, "intercept": f.intercept, "from_d": f.from_d,
            "to_d": f.to_d, "points": f.points, "rule": f.rule,
        }),
        None => Value::Null,
    }
}

/// `scaling.json`: this run's own series (not the overlays), with their fits.
pub(super) fn to_json(report: &Report, fits: &[Option<Fit>]) -> Value {
    let series: Vec<Value> = report
        .series
        .iter()
        .zip(fits)
        .filter(|(s, _)| !s.overlay)
        .map(|(s, f)| {
            let points: Vec<Value> = s
                .points
                .iter()
                .map(|p| {
                    let x = p.sample;
                    let mut v = json!({
                        "d": p.d, "median_ms": x.median_ms, "min_ms": x.min_ms,
                        "q1_ms": x.q1_ms, "q3_ms": x.q3_ms, "max_ms": x.max_ms, "reps": x.reps,
                    });
                    if p.sample.warmup_ms.is_finite() {
                        v["warmup_ms"] = p.sample.warmup_ms.into();
                    }
                    if let Some(t) = p.product_threads {
                        v["product_threads"] = t.into();
                    }
                    v
                })
                .collect();
            json!({
                "name": s.name, "label": s.label, "expected_exponent": s.expected,
                "points": points,
                "stopped": s.stopped.as_ref().map(|st| json!({"before_d": st.before_d, "reason": st.reason})),
                "fit": fit_json(f),
            })
        })
        .collect();
    let memory: Vec<Value> = report
        .memory
        .iter()
        .map(|&(d, est, peak)| json!({"d": d, "estimate_bytes": est, "peak_rss_bytes": peak}))
        .collect();
    json!({
        "format": FORMAT,
        "machine": report.machine,
        "setup": report.setup,
        "series": series,
        "memory": memory,
    })
}

pub(super) fn write_outputs(
    out: &Path,
    report: &Report,
    fits: &[Option<Fit>],
    fit_from: usize,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let file = |name: &str| -> PathBuf { out.join(name) };
    let json_text = serde_json::to_string_pretty(&to_json(report, fits))? + "\n";
    crate::util::write_atomic(&file("scaling.json"), json_text.as_bytes())?;
    crate::util::write_atomic(&file("scaling.csv"), csv(report).as_bytes())?;
    crate::util::write_atomic(&file("scaling.md"), markdown(report, fits).as_bytes())?;
    let lines: Vec<ScalingLine> = report
        .series
        .iter()
        .zip(fits)
        .map(|(s, f)| ScalingLine {
            label: match f {
                Some(f) => format!("{}: exponent {:.2}", s.label, f.exponent),
                None => s.label.clone(),
            },
            points: s
                .points
                .iter()
                .map(|p| (p.d as f64, p.sample.median_ms))
                .collect(),
            fit: f.as_ref().map(|f| FitLine {
                exponent: f.exponent,
                intercept: f.intercept,
                from: f.from_d as f64,
                to: f.to_d as f64,
            }),
            overlay: s.overlay,
        })
        .collect();
    let title = format!(
        "One gradient evaluation against D (B = {}, L = {}, {})",
        report.setup_str("batch"),
        report.setup_str("layers"),
        report.setup_str("precision")
    );
    let caption = format!(
        "{}; threads {}; dashed: least-squares fits over D >= {fit_from} (or the upper half of the points)",
        report.machine_line(),
        report.setup_str("threads")
    );
    let png = file("scaling.png");
    if let Err(e) = scaling_figure(&png, &title, &caption, &lines) {
        eprintln!("warning: the figure was not drawn: {e}");
    }
    eprintln!(
        "written: {}, scaling.csv, scaling.md, scaling.png",
        file("scaling.json").display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(0.005912), "0.00591");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(433.6), "434");
        assert_eq!(sig3(123456.0), "123456");
        assert_eq!(sig3(f64::NAN), "-");
    }
}

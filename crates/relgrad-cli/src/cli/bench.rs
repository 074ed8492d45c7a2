//! The arguments of `relgrad bench`: the comparison table (`BenchArgs`) and the scaling
//! figure (`relgrad bench scaling`, `ScalingArgs`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use relgrad::Threads;

use super::*;

/// `relgrad bench`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// A benchmark of its own instead of the table (`relgrad bench scaling`).
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// Backends to compare (comma-separated): faer, nalgebra, openblas (default: those compiled in).
    #[arg(long, value_delimiter = ',')]
    pub backends: Vec<String>,
    /// Dimensions D (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "16,64,256,512,1024,2048", value_parser = parse_bench_dim)]
    pub dims: Vec<usize>,
    /// Batch sizes B (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100", value_parser = parse_bench_batch)]
    pub batch: Vec<usize>,
    /// Number of layers L.
    #[arg(long, default_value_t = 2, value_parser = parse_layers)]
    pub layers: usize,
    /// Precisions (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f64")]
    pub precision: Vec<PrecisionArg>,
    /// Thread settings (comma-separated): `auto` or numbers.
    #[arg(long, value_delimiter = ',', default_value = "auto", value_parser = parse_threads)]
    pub threads: Vec<Threads>,
    /// Time whole training steps (the gradient and the optimizer's update, for SGD with
    /// momentum and for Adam) against their memory-traffic floor, instead of the gradient
    /// against its products.
    #[arg(long)]
    pub step: bool,
    /// The activation of the timed model (smooth-leaky-relu: the paper's, alpha 0.01;
    /// tanh-linear: beta 0.1; spline: --bins bins on [-3, 3]).
    #[arg(long, value_enum, default_value_t = ActivationArg::SmoothLeakyRelu)]
    pub activation: ActivationArg,
    /// Bins of the splines with --activation spline.
    #[arg(long, default_value_t = 16, value_parser = parse_bins)]
    pub bins: usize,
    /// Print one JSON object per line instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Time each item for about 0.03 s instead of 0.3 s.
    #[arg(long)]
    pub quick: bool,
    /// Widest instruction set for the elementwise kernels: baseline, avx2 or avx512
    /// (default: the widest the CPU has).
    #[arg(long, value_parser = parse_simd)]
    pub simd: Option<relgrad::SimdLevel>,
}

/// The benchmarks `relgrad bench` runs instead of its table.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchMode {
    /// The paper's scaling figure: the time of one relative and one naive gradient
    /// evaluation against D (16 to 16384 by default), with the fitted exponents, a table
    /// and a log-log figure.
    Scaling(ScalingArgs),
}

/// `relgrad bench scaling`.
#[derive(Debug, Clone, Args)]
#[command(after_help = SCALING_AFTER_HELP)]
pub struct ScalingArgs {
    /// The smallest D.
    #[arg(long, default_value_t = 16, value_parser = parse_bench_dim)]
    pub min_dim: usize,
    /// The largest D (timed as far as memory and --max-point-seconds allow).
    #[arg(long, default_value_t = 16384, value_parser = parse_bench_dim)]
    pub max_dim: usize,
    /// Dimensions per doubling of D: 1 times the powers of two, 2 adds the sqrt(2) steps
    /// between them, and so on (each rounded to a whole number).
    #[arg(long, default_value_t = 1, value_parser = parse_steps_per_octave)]
    pub steps_per_octave: usize,
    /// The gradients to time (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "relative,naive"
    )]
    pub gradients: Vec<GradientArg>,
    /// The largest D at which the naive gradient is timed (default: --max-dim).
    #[arg(long, value_parser = parse_bench_dim)]
    pub naive_max_dim: Option<usize>,
    /// Rows per batch B.
    #[arg(long, default_value_t = 100, value_parser = parse_bench_batch)]
    pub batch: usize,
    /// Layers L.
    #[arg(long, default_value_t = 2, value_parser = parse_layers)]
    pub layers: usize,
    /// The precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// The thread setting: `auto` or a number.
    #[arg(long, default_value = "auto", value_parser = parse_threads)]
    pub threads: Threads,
    /// The backend: faer, nalgebra or openblas (the last two when compiled in).
    #[arg(long, default_value = "faer")]
    pub backend: String,
    /// Seconds of timed calls per point: after one untimed warm-up call, calls are timed
    /// until this much time has passed and --min-reps calls were made, or --max-reps.
    #[arg(long, default_value_t = 2.0, value_parser = parse_positive_f64)]
    pub budget: f64,
    /// The fewest timed calls per point (after the warm-up), however long they take.
    #[arg(long, default_value_t = 3, value_parser = parse_reps)]
    pub min_reps: usize,
    /// The most timed calls per point.
    #[arg(long, default_value_t = 1000, value_parser = parse_reps)]
    pub max_reps: usize,
    /// Stop timing a gradient before the first D whose warm-up and --min-reps calls are
    /// predicted (from the D before, at the gradient's exponent or the slope last seen,
    /// whichever is steeper) to take longer than this many seconds.
    #[arg(long, default_value_t = 1800.0, value_parser = parse_positive_f64)]
    pub max_point_seconds: f64,
    /// Fit the exponents over the points with D >= this; where fewer than 3 points reach
    /// it, over the upper half of the timed points instead.
    #[arg(long, default_value_t = 1024, value_parser = parse_bench_dim)]
    pub fit_from: usize,
    /// Memory the benchmark may allocate, GiB (default: MemAvailable of /proc/meminfo,
    /// less 10 %): a D whose buffers would need more is not timed.
    #[arg(long, value_parser = parse_positive_f64)]
    pub max_memory: Option<f64>,
    /// The folder for the results: scaling.json, scaling.csv, scaling.md (a Markdown
    /// table) and scaling.png (the figure).
    #[arg(long, default_value = "bench-scaling")]
    pub out: PathBuf,
    /// A JSON file of further series to draw and tabulate beside relgrad's (the output of
    /// benches/python/scaling_official.py, or another run's scaling.json); repeatable.
    #[arg(long)]
    pub overlay: Vec<PathBuf>,
    /// Time nothing: redo the table, fits and figure from a previous run's scaling.json
    /// (with --overlay, to add the official code's series to it).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Widest instruction set for the elementwise kernels: baseline, avx2 or avx512
    /// (default: the widest the CPU has).
    #[arg(long, value_parser = parse_simd)]
    pub simd: Option<relgrad::SimdLevel>,
    /// No progress bar and no progress lines on stderr (the table is printed and the files
    /// written all the same).
    #[arg(long)]
    pub quiet: bool,
}

const SCALING_AFTER_HELP: &str = "\
What is timed: one gradient evaluation (forward, backward and the update direction of
every layer, into a preallocated workspace) of an L-layer model with the paper's
smooth leaky ReLU (alpha 0.01), on a batch of B standard-normal rows. The relative
gradient takes 4L - 1 products of B x D by D x D (O(B D^2)); the naive gradient adds an LU
factorisation and inverse of every weight (O(D^3)). The weights are I + 0.25 G / sqrt(D)
(G standard normal, seeded): invertible and well conditioned at every D, and built in
O(D^2) (a random orthogonal start costs O(D^3) on one thread, minutes at D = 16384).

Full run (the paper's figure; 20 to 35 minutes on 2 cores, most of it the naive gradient
at D = 16384):
  relgrad bench scaling --out bench-scaling
then, where JAX is installed, the official code's relative gradient beside it:
  python3 benches/python/scaling_official.py --official PATH/TO/relative-gradient-jacobian \\
      --out bench-scaling/official.json
  relgrad bench scaling --from bench-scaling/scaling.json --overlay bench-scaling/official.json";

fn parse_steps_per_octave(s: &str) -> Result<usize, String> {
    parse_count(s, 1, 8)
}

fn parse_reps(s: &str) -> Result<usize, String> {
    parse_count(s, 1, 100_000)
}

fn parse_simd(s: &str) -> Result<relgrad::SimdLevel, String> {
    relgrad::SimdLevel::from_name(s)
        .ok_or_else(|| format!("expected baseline, avx2 or avx512, got {s:?}"))
}

fn parse_bench_dim(s: &str) -> Result<usize, String> {
    parse_count(s, 1, MAX_BENCH_DIM)
}

fn parse_bench_batch(s: &str) -> Result<usize, String> {
    parse_count(s, 1, relgrad::model::config::MAX_PARAMETERS)
}

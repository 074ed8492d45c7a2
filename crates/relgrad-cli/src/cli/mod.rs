//! The command-line interface (clap derive). `relgrad --help` and every subcommand's
//! `--help` are generated from these definitions.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use relgrad::Threads;

use crate::data::Part;

mod bench;
mod values;

pub use bench::*;
pub use values::*;

const AFTER_HELP: &str = "\
Data (--data, --val, --test): a .npy file (any numeric dtype and byte order, C or Fortran
order), an .npz archive (FILE.npz:KEY picks an array), a .csv/.tsv/.txt table (UTF-8 or
UTF-16, optional header, comma, tab or semicolon, decimal commas with the latter two), an
MNIST IDX file or directory (raw or .gz), CIFAR-10's binary
archive or directory, a directory of prepared splits (train.npy [val.npy] [test.npy]),
the built-in `digits` (8x8 handwritten digits, 1797 x 64, values 0..16), or a 2-D
generator: moons, 2spirals, checkerboard, rings, 8gaussians, sine, trimodal, smile,
trimodal2 (sized by --n, drawn from --seed). See `relgrad datasets`.

Log-likelihoods are natural-log densities (nats) per sample, reported as mean ± 2
standard errors. Exit codes: 0 success, 1 error (bad input, I/O), 2 usage error,
3 training diverged (best parameters saved), 130 interrupted (Ctrl-C; the last
checkpoint is intact, continue with --resume).

Run `relgrad` with no command to train on the built-in digits with the defaults.";

/// Exact maximum-likelihood training of invertible, fully connected density models with
/// the relative gradient (Gresele et al., NeurIPS 2020).
#[derive(Debug, Parser)]
#[command(name = "relgrad", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// What to do (default: `train` with its defaults).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model and save it, with its metrics, figures and a checkpoint, in a run directory.
    Train(TrainArgs),
    /// Evaluate a model's mean log-likelihood on data, beside the best full-covariance Gaussian.
    Eval(EvalArgs),
    /// Draw exact samples from a model (through its inverse), in the data's original units.
    Sample(SampleArgs),
    /// Write the log-density of every row of a data set (anomaly scoring).
    Score(ScoreArgs),
    /// List the built-in data sets and generators, with sizes and licences.
    Datasets(DatasetsArgs),
    /// Time the relative and the naive gradient against the matrix-product floor, per backend.
    Bench(BenchArgs),
}

fn parse_threads(s: &str) -> Result<Threads, String> {
    Threads::parse(s).ok_or_else(|| {
        format!(
            "expected `auto` or a number of threads from 1 to {}, got {s:?}",
            relgrad::MAX_THREADS
        )
    })
}

/// The most rows a 2-D generator may draw (`--n`).
pub const MAX_GENERATED_ROWS: usize = 10_000_000;
/// The largest `D` `relgrad bench` accepts (the model file's limit).
pub const MAX_BENCH_DIM: usize = relgrad::model::tensors::MAX_DIM;

/// A whole number in `lo..=hi`.
fn parse_count(s: &str, lo: usize, hi: usize) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!(
            "expected a whole number from {lo} to {hi}, got {s:?}"
        )),
    }
}

fn parse_generated_rows(s: &str) -> Result<usize, String> {
    parse_count(s, 2, MAX_GENERATED_ROWS)
}

fn parse_layers(s: &str) -> Result<usize, String> {
    parse_count(s, 1, relgrad::model::tensors::MAX_LAYERS)
}

fn parse_levels(s: &str) -> Result<u32, String> {
    let max = relgrad::model::preprocess::MAX_LEVELS as usize;
    parse_count(s, 2, max).map(|n| n as u32)
}

fn parse_samples(s: &str) -> Result<usize, String> {
    parse_count(s, 1, relgrad::model::model::MAX_SAMPLE_VALUES)
}

fn parse_shift(s: &str) -> Result<ShiftArg, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(ShiftArg(None));
    }
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(ShiftArg(Some(x))),
        _ => Err(format!("expected `auto` or a finite number, got {s:?}")),
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(f) if (0.0..1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction in [0, 1), got {s:?}")),
    }
}

fn parse_batch(s: &str) -> Result<usize, String> {
    if s.eq_ignore_ascii_case("full") || s.eq_ignore_ascii_case("all") {
        return Ok(usize::MAX);
    }
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a positive integer or `full`, got {s:?}")),
    }
}

fn parse_positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("expected a positive number, got {s:?}")),
    }
}

fn parse_factor(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!("expected a number between 0 and 1, got {s:?}")),
    }
}

fn parse_lr_decays(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= relgrad::model::MAX_LR_DECAYS => Ok(n),
        _ => Err(format!(
            "expected a whole number from 0 to {}, got {s:?}",
            relgrad::model::MAX_LR_DECAYS
        )),
    }
}

/// `relgrad train`.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Training data: a file, an IDX or CIFAR-10 directory (or CIFAR-10's archive), a
    /// directory of prepared splits, `digits`, or a generator name.
    #[arg(
        long,
        default_value = "digits",
        value_name = "DATA",
        help_heading = "Data"
    )]
    pub data: String,
    /// Rows to draw from a generator.
    #[arg(long, default_value_t = 2000, value_parser = parse_generated_rows, help_heading = "Data")]
    pub n: usize,
    /// Validation data file (instead of --val-fraction).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub val: Option<String>,
    /// Test data file (instead of --test-fraction).
    #[arg(long, value_name = "FILE", help_heading = "Data")]
    pub test: Option<String>,
    /// Fraction of the rows held out for validation (early stopping); 0 for none.
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction, help_heading = "Data")]
    pub val_fraction: f64,
    /// Fraction of the rows held out for the final test; 0 for none.
    #[arg(long, default_value_t = 0.1, value_parser = parse_fraction, help_heading = "Data")]
    pub test_fraction: f64,
    /// Preprocessing, fitted on the training rows and recorded in the model file.
    #[arg(long, value_enum, default_value_t = PreprocessArg::Auto, help_heading = "Data")]
    pub preprocess: PreprocessArg,
    /// Quantisation levels of integer pixel data for `logit` (default: 17 for digits, 256 for 8-bit data).
    #[arg(long, value_parser = parse_levels, help_heading = "Data")]
    pub levels: Option<u32>,

    /// Number of layers L (each D x D with a bias; activation between layers)
    /// [default: 16 with spline activations, 3 otherwise].
    #[arg(long, value_parser = parse_layers, help_heading = "Model")]
    pub layers: Option<usize>,
    /// Activation between layers [default: spline for data of at most 4 columns,
    /// tanh-linear above; measured in docs/quality-capacity.md].
    #[arg(long, value_enum, help_heading = "Model")]
    pub activation: Option<ActivationArg>,
    /// The activation's parameter (the slope of its linear part: for large negative
    /// inputs of the leaky ReLUs, everywhere for tanh-linear).
    #[arg(long, default_value_t = 0.1, help_heading = "Model")]
    pub alpha: f64,
    /// Bins of each spline, with --activation spline (2 to 256).
    #[arg(long, default_value_t = 16, value_parser = parse_bins, help_heading = "Model")]
    pub bins: usize,
    /// With --activation spline: each spline maps [-bound, bound] onto itself and is the
    /// identity outside (the network's inputs are standardised).
    #[arg(long, default_value_t = relgrad::activation::DEFAULT_BOUND, help_heading = "Model")]
    pub bound: f64,
    /// Base density of the latents.
    #[arg(long, value_enum, default_value_t = BaseArg::Normal, help_heading = "Model")]
    pub base: BaseArg,
    /// Components per latent coordinate of a `--base mixture` (1 to 64; only with
    /// `--base mixture`). The mixture's parameters train with Adam at `--spline-lr`.
    #[arg(long, value_name = "K", default_value_t = relgrad::mixture::DEFAULT_COMPONENTS, value_parser = parse_components, help_heading = "Model")]
    pub components: usize,
    /// Initialisation (ignored with --init MODEL).
    #[arg(long, value_enum, default_value_t = InitScheme::Data, help_heading = "Model")]
    pub init_scheme: InitScheme,
    /// Shift of the data-dependent initialisation: a number centres every hidden layer's
    /// whitened input there (larger is more nearly linear); `auto` chooses a nearly linear
    /// scale per layer, which starts within half a nat of the best Gaussian at any depth
    /// but trains slowly from there with the default optimizer.
    #[arg(long, default_value = "0", value_parser = parse_shift, help_heading = "Model")]
    pub init_shift: ShiftArg,
    /// Start from the parameters (and preprocessing) of a saved model.
    #[arg(long, value_name = "MODEL", help_heading = "Model")]
    pub init: Option<PathBuf>,

    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd, help_heading = "Training")]
    pub optimizer: OptimizerArg,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = parse_positive_f64, help_heading = "Training")]
    pub lr: f64,
    /// Adam's learning rate for the spline parameters (--activation spline) and a mixture
    /// base's parameters (--base mixture); decays with --lr.
    #[arg(long, default_value_t = relgrad::optim::SPLINE_LR, value_parser = parse_positive_f64, help_heading = "Training")]
    pub spline_lr: f64,
    /// Heavy-ball momentum for --optimizer sgd (0: plain gradient ascent).
    #[arg(long, default_value_t = 0.9, help_heading = "Training")]
    pub momentum: f64,
    /// Rows per mini-batch, or `full` for the whole training set.
    #[arg(long, default_value = "100", value_parser = parse_batch, help_heading = "Training")]
    pub batch_size: usize,
    /// Maximum number of epochs.
    #[arg(long, default_value_t = 1000, help_heading = "Training")]
    pub epochs: usize,
    /// Stop after this many epochs without a better validation log-likelihood (0: never);
    /// the best parameters are kept.
    #[arg(long, default_value_t = 30, help_heading = "Training")]
    pub look_ahead: usize,
    /// How many plateaus of --look-ahead epochs (or diverged epochs) decay the learning
    /// rate by --lr-decay, going on from the best parameters, before one ends training
    /// (0: the first ends it).
    #[arg(long, default_value_t = 2, value_parser = parse_lr_decays, help_heading = "Training")]
    pub lr_decays: usize,
    /// What a decay on a plateau multiplies the learning rate by (between 0 and 1).
    #[arg(long, default_value_t = 0.3, value_parser = parse_factor, help_heading = "Training")]
    pub lr_decay: f64,
    /// Seed of the split, the shuffles, the dequantisation noise, generators and random initialisations.
    #[arg(long, default_value_t = 0, help_heading = "Training")]
    pub seed: u64,
    /// Visit the training rows in their order every epoch.
    #[arg(long, help_heading = "Training")]
    pub no_shuffle: bool,
    /// Which gradient drives the optimizer.
    #[arg(long, value_enum, default_value_t = GradientArg::Relative, help_heading = "Training")]
    pub gradient: GradientArg,
    /// Floating-point precision.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32, help_heading = "Training")]
    pub precision: PrecisionArg,
    /// Threads for the matrix products: `auto` or a number.
    #[arg(long, default_value = "auto", value_parser = parse_threads, help_heading = "Training")]
    pub threads: Threads,
    /// Data-parallel training across the processes of an MPI job, each reading its share
    /// of the rows: `mpirun -np N relgrad train --distributed ...` (a relgrad built with
    /// the `mpi` feature; see docs/distributed.md).
    #[arg(long, help_heading = "Training")]
    pub distributed: bool,

    /// Run directory for the model, metrics, figures and checkpoint
    /// (default: `runs/<data>-<preprocess>-l<L>-<optimizer>-lr<lr>-b<batch>-s<seed>`).
    #[arg(long, value_name = "RUN_DIR", help_heading = "Output")]
    pub out: Option<PathBuf>,
    /// Overwrite an existing run directory.
    #[arg(long, help_heading = "Output")]
    pub force: bool,
    /// Continue an interrupted run from its checkpoint (its settings are reused; --epochs may be raised).
    #[arg(long, value_name = "RUN_DIR", help_heading = "Output")]
    pub resume: Option<PathBuf>,
    /// With --resume: continue even though the training data changed since the checkpoint
    /// (otherwise refused: the checkpoint records a fingerprint of its rows).
    #[arg(long, requires = "resume", help_heading = "Output")]
    pub allow_changed_data: bool,
    /// No per-epoch lines and no progress bar.
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,
}

/// `relgrad eval`.
#[derive(Debug, Clone, Args)]
pub struct EvalArgs {
    /// The model file (model.safetensors, or a run directory).
    pub model: PathBuf,
    /// Data to evaluate (default: the model's own data, its test split).
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
    /// Which rows: `all` rows of --data (its default), or a part of the model's own split.
    #[arg(long, value_enum)]
    pub split: Option<Part>,
    /// Rows to draw when --data is a generator (default: as many as the model was trained
    /// on when it is the same generator, else 2000).
    #[arg(long, value_parser = parse_generated_rows)]
    pub n: Option<usize>,
    /// Seed for a generator and the dequantisation noise (default: the model's training
    /// seed, which redraws the model's own data for a generator).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Threads: `auto` or a number.
    #[arg(long, default_value = "auto", value_parser = parse_threads)]
    pub threads: Threads,
}

/// `relgrad sample`.
#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// The model file (model.safetensors, or a run directory).
    pub model: PathBuf,
    /// Number of samples.
    #[arg(short = 'n', long = "num", default_value_t = 100, value_parser = parse_samples)]
    pub n: usize,
    /// Output file: .npy or .csv.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// PNG grid of the samples for image data (default: the output path with .png).
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads: `auto` or a number.
    #[arg(long, default_value = "auto", value_parser = parse_threads)]
    pub threads: Threads,
}

/// `relgrad score`.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// The model file (model.safetensors, or a run directory).
    pub model: PathBuf,
    /// Data to score, row by row.
    #[arg(long, value_name = "DATA")]
    pub data: String,
    /// Output file: .csv (header `row,log_density`) or .npy (1-D float64).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Which rows: `all` (default), or a part of the model's own split applied to --data.
    #[arg(long, value_enum, default_value_t = Part::All)]
    pub split: Part,
    /// Give rows with NaN or infinite values a NaN score instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Units of the log-densities.
    #[arg(long, value_enum, default_value_t = Space::Data)]
    pub space: Space,
    /// Rows to draw when --data is a generator (default: as many as the model was trained
    /// on when it is the same generator, else 2000).
    #[arg(long, value_parser = parse_generated_rows)]
    pub n: Option<usize>,
    /// Seed for a generator and the dequantisation noise (default: the model's training
    /// seed, which redraws the model's own data for a generator).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads: `auto` or a number.
    #[arg(long, default_value = "auto", value_parser = parse_threads)]
    pub threads: Threads,
}

/// `relgrad datasets`.
#[derive(Debug, Clone, Args)]
pub struct DatasetsArgs {
    /// Print one JSON object per data set.
    #[arg(long)]
    pub json: bool,
    /// Print the full licence and attribution text of the built-in digits.
    #[arg(long)]
    pub license: bool,
}

/// Parsed arguments, with the names of the options given explicitly on the command line
/// (so `--resume` and `--init` can tell them from defaults).
#[derive(Debug)]
pub struct Parsed {
    /// The command (`train` with defaults when none was given).
    pub command: Command,
    /// Ids of the subcommand's arguments given on the command line.
    pub explicit: BTreeSet<String>,
}

fn explicit_ids(cmd: &clap::Command, m: &ArgMatches) -> BTreeSet<String> {
    // Only real arguments (not the argument groups clap makes for each `Args` struct).
    cmd.get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .map(str::to_string)
        .collect()
}

/// Parses the arguments (program name first).
pub fn parse<I, S>(args: I) -> Result<Parsed, clap::Error>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let explicit = match matches.subcommand() {
        Some((name, m)) => {
            let root = Cli::command();
            let sub = root.find_subcommand(name).expect("a known subcommand");
            explicit_ids(sub, m)
        }
        None => BTreeSet::new(),
    };
    let command = match cli.command {
        Some(c) => c,
        None => {
            let m = Cli::command()
                .try_get_matches_from(["relgrad", "train"])
                .expect("the default train command parses");
            let (_, sub) = m.subcommand().expect("train was given");
            Command::Train(TrainArgs::from_arg_matches(sub)?)
        }
    };
    Ok(Parsed { command, explicit })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_train() {
        let p = parse(["relgrad"]).unwrap();
        assert!(matches!(p.command, Command::Train(_)));
        assert!(p.explicit.is_empty());
        let p = parse(["relgrad", "train", "--lr", "0.01", "--batch-size", "full"]).unwrap();
        let Command::Train(t) = p.command else {
            panic!()
        };
        assert_eq!(t.batch_size, usize::MAX);
        assert!(p.explicit.contains("lr") && !p.explicit.contains("epochs"));
    }
}

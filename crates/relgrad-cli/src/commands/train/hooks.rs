//! What `relgrad train` does while the library trains: a progress bar and one line per
//! epoch, the checkpoint and `metrics.csv` rewritten after every epoch, and Ctrl-C.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use relgrad::model::{FitHooks, Result as ModelResult};
use relgrad::{EpochMetrics, Flow, History, Scalar};

use crate::checkpoint::{self, Checkpoint};
use crate::util::write_atomic;

/// Set by the Ctrl-C handler; checked after every step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static HANDLER: Once = Once::new();

/// Installs the Ctrl-C handler once per process.
pub fn install_ctrlc() {
    HANDLER.call_once(|| {
        // If a handler cannot be installed, Ctrl-C keeps its default (immediate exit);
        // the checkpoint is still never torn because it is written atomically.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// The hooks of a `relgrad train` run.
pub struct RunHooks {
    /// The run directory.
    pub out: PathBuf,
    /// `--quiet`.
    pub quiet: bool,
    /// Training rows (for rows/s).
    pub rows: usize,
    /// The maximum epochs (for the progress line).
    pub epochs: usize,
    /// Whether this process writes the checkpoint and `metrics.csv` (rank 0 of a
    /// distributed run; the only process otherwise).
    pub writer: bool,
    bar: Option<ProgressBar>,
    tty: bool,
}

impl RunHooks {
    /// Hooks writing into `out`.
    pub fn new(out: PathBuf, quiet: bool, rows: usize, epochs: usize) -> Self {
        Self {
            out,
            quiet,
            rows,
            epochs,
            writer: true,
            bar: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Clears the progress bar (before an error or the report is printed).
    pub fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn start_epoch(&mut self, epoch: usize) {
        let bar = ProgressBar::with_draw_target(
            Some(self.rows as u64),
            if self.tty {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} rows, {rate}, eta {eta}",
            )
            .expect("a valid template")
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} rows/s", s.per_sec());
                },
            )
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", self.epochs));
        self.bar = Some(bar);
    }
}

fn fmt_ll(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.3}"))
}

/// `metrics.csv`: one line per epoch.
pub fn metrics_csv(h: &History) -> String {
    let mut s = String::from("epoch,train_ll,val_ll,seconds\n");
    let cell = |v: Option<f64>| v.map_or_else(String::new, |x| format!("{x}"));
    for m in &h.epochs {
        s.push_str(&format!(
            "{},{},{},{}\n",
            m.epoch,
            cell(m.train_ll),
            cell(m.val_ll),
            m.seconds
        ));
    }
    s
}

impl FitHooks for RunHooks {
    fn step(&mut self, epoch: usize, rows: usize) -> Flow {
        if !self.quiet {
            if self.bar.is_none() {
                self.start_epoch(epoch);
            }
            if let Some(b) = &self.bar {
                b.inc(rows as u64);
            }
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn epoch(&mut self, m: &EpochMetrics) -> Flow {
        self.clear();
        if !self.quiet {
            let rate = if m.epoch == 0 {
                0.0
            } else {
                self.rows as f64 / m.seconds.max(1e-9)
            };
            eprintln!(
                "epoch {:>4}/{}  train {:>10}  val {:>10}  {:.3} s  {:.0} rows/s",
                m.epoch,
                self.epochs,
                fmt_ll(m.train_ll),
                fmt_ll(m.val_ll),
                m.seconds,
                rate
            );
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn wants_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint<T: Scalar>(&mut self, c: &Checkpoint<T>) -> ModelResult<()> {
        if !self.writer {
            return Ok(());
        }
        c.save(self.out.join(checkpoint::FILE_NAME))?;
        write_atomic(
            &self.out.join("metrics.csv"),
            metrics_csv(&c.state.history).as_bytes(),
        )
        .map_err(|e| relgrad::model::Error::Hook(e.into()))
    }
}

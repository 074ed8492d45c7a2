//! The training step allocates nothing once its workspace exists: a counting global
//! allocator watches gradient evaluations, optimizer steps and the trainer's steps.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use relgrad::{
    naive_gradient, relative_gradient, train_step, Backend, Faer, GemmDims, GradientKind, MatMut,
    MatRef, Optimizer, OptimizerState, StepPath, Threads, TrainConfig, TrainEvent, Trainer, Trans,
    Workspace,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only the test's own thread counts: the harness's other threads may allocate at
    /// any time.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    !PAUSED.load(Ordering::SeqCst) && COUNTING.with(|c| c.get())
}
/// Set while a wrapped backend's product runs (see [`BackendOnly`]).
static PAUSED: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Runs another backend but does not count what its products allocate: faer's threaded
/// product allocates inside faer (thread coordination), which this isolates from
/// relgrad's own code.
#[derive(Clone, Debug)]
struct BackendOnly<B>(B);

impl<B: Backend<f64>> Backend<f64> for BackendOnly<B> {
    type Lu = B::Lu;
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn threads(&self) -> Threads {
        self.0.threads()
    }
    fn gemm_kernel(
        &self,
        dims: GemmDims,
        alpha: f64,
        a: MatRef<'_, f64>,
        ta: Trans,
        b: MatRef<'_, f64>,
        tb: Trans,
        beta: f64,
        c: MatMut<'_, f64>,
    ) {
        PAUSED.store(true, Ordering::SeqCst);
        self.0.gemm_kernel(dims, alpha, a, ta, b, tb, beta, c);
        PAUSED.store(false, Ordering::SeqCst);
    }
    fn parts(&self, work: usize) -> usize {
        Backend::<f64>::parts(&self.0, work)
    }
    fn join<RA: Send, RB: Send>(
        &self,
        a: impl FnOnce() -> RA + Send,
        b: impl FnOnce() -> RB + Send,
    ) -> (RA, RB) {
        // The halves run on the pool's threads, which are not counted; the hand-over
        // to the pool is the backend's.
        PAUSED.store(true, Ordering::SeqCst);
        let out = Backend::<f64>::join(&self.0, a, b);
        PAUSED.store(false, Ordering::SeqCst);
        out
    }
    fn lu_workspace(&self, n: usize) -> B::Lu {
        self.0.lu_workspace(n)
    }
    fn lu_factor(&self, a: MatRef<'_, f64>, lu: &mut B::Lu) -> relgrad::LogDet<f64> {
        self.0.lu_factor(a, lu)
    }
    fn lu_solve(&self, lu: &mut B::Lu, b: MatMut<'_, f64>) {
        self.0.lu_solve(lu, b)
    }
    fn lu_inverse(&self, lu: &mut B::Lu, out: MatMut<'_, f64>) {
        self.0.lu_inverse(lu, out)
    }
}

/// How a step of [`steps_allocate`] is computed.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Relative,
    Naive,
    Fused,
}

fn steps_allocate<B: Backend<f64>>(backend: &B, d: usize, b: usize, l: usize, kind: Kind) -> usize {
    let act = relgrad::Activation::default();
    steps_allocate_with(
        backend,
        (d, b, l),
        (act, relgrad::BaseDensity::Normal),
        kind,
    )
}

fn steps_allocate_with<B: Backend<f64>>(
    backend: &B,
    (d, b, l): (usize, usize, usize),
    (activation, base): (relgrad::Activation, relgrad::BaseDensity),
    kind: Kind,
) -> usize {
    let case = common::Case {
        d,
        b,
        l,
        activation,
        base,
        bias: true,
        seed: 1,
    };
    let (mut model, x) = common::model_and_data(&case);
    let mut ws = Workspace::<f64, B>::new(&model, b);
    let mut opt = OptimizerState::new(Optimizer::adam(1e-4), &model);
    let mut step = |model: &mut relgrad::InvertibleMlp<f64>, rows: usize| {
        let batch = x.top(rows);
        match kind {
            Kind::Naive => naive_gradient(model, backend, batch, &mut ws).unwrap(),
            Kind::Relative => relative_gradient(model, backend, batch, &mut ws).unwrap(),
            Kind::Fused => {
                let (g, p) = (GradientKind::Relative, StepPath::Fused);
                assert!(train_step(g, p, model, backend, batch, &mut ws, &mut opt).unwrap());
                return;
            }
        }
        opt.step(model, &ws.grad);
    };
    // The first step may set up lazily made buffers (the naive gradient's LU workspace,
    // a backend's packing memory).
    step(&mut model, b);
    step(&mut model, b);
    let before = allocations();
    for i in 0..5 {
        // Full batches and a smaller last batch share the same buffers.
        step(&mut model, if i == 4 { b.div_ceil(2) } else { b });
    }
    allocations() - before
}

/// One test function, so no other test allocates concurrently.
#[test]
fn training_steps_do_not_allocate() {
    COUNTING.with(|c| c.set(true));
    let seq = Faer::new(Threads::Fixed(1));
    for (d, b, l) in [(1, 1, 1), (16, 40, 3), (64, 100, 2), (40, 20, 4)] {
        for kind in [Kind::Relative, Kind::Naive, Kind::Fused] {
            assert_eq!(steps_allocate(&seq, d, b, l, kind), 0, "D={d} B={b} L={l}");
        }
    }
    // Spline activations: their knots and gradients live in the workspace too.
    let spline = relgrad::Activation::Spline {
        bins: 8,
        bound: 3.0,
    };
    for (d, b, l) in [(2, 50, 4), (16, 40, 3), (40, 3, 2)] {
        for kind in [Kind::Relative, Kind::Naive, Kind::Fused] {
            let n = steps_allocate_with(
                &seq,
                (d, b, l),
                (spline, relgrad::BaseDensity::Normal),
                kind,
            );
            assert_eq!(n, 0, "splines, D={d} B={b} L={l}");
        }
    }
    // A mixture base: its tables and gradient live in the workspace too.
    let mixture = relgrad::BaseDensity::Mixture { components: 3 };
    for (d, b, l) in [(2, 50, 4), (16, 40, 3), (40, 3, 2)] {
        for kind in [Kind::Relative, Kind::Naive, Kind::Fused] {
            for act in [relgrad::Activation::default(), spline] {
                let n = steps_allocate_with(&seq, (d, b, l), (act, mixture), kind);
                assert_eq!(n, 0, "mixture base, {act:?}, D={d} B={b} L={l}");
            }
        }
    }
    // Automatic threading picks sequential products at this size, without allocating
    // to decide.
    assert_eq!(
        steps_allocate(&Faer::default(), 16, 40, 3, Kind::Relative),
        0,
        "automatic threads"
    );
    // With threads, faer's product itself allocates (its thread coordination); relgrad's
    // part of the step still allocates nothing.
    let threaded = BackendOnly(Faer::new(Threads::Fixed(2)));
    assert_eq!(
        steps_allocate(&threaded, 256, 100, 2, Kind::Relative),
        0,
        "relative gradient, two threads"
    );
    // The fused step splits its pass over the weights between the two threads.
    assert_eq!(
        steps_allocate(&threaded, 256, 10, 2, Kind::Fused),
        0,
        "fused step, two threads"
    );

    // matrixmultiply (behind nalgebra) allocates a packing buffer in every product, so
    // only relgrad's part of the step can be checked there.
    #[cfg(feature = "nalgebra")]
    {
        let nalgebra = BackendOnly(relgrad::Nalgebra::default());
        assert_eq!(
            steps_allocate(&nalgebra, 16, 40, 3, Kind::Relative),
            0,
            "nalgebra, relative"
        );
        assert_eq!(
            steps_allocate(&nalgebra, 16, 40, 3, Kind::Naive),
            0,
            "nalgebra, naive"
        );
    }
    #[cfg(feature = "openblas")]
    {
        let blas = relgrad::Blas::new(Threads::Fixed(1));
        assert_eq!(
            steps_allocate(&blas, 16, 40, 3, Kind::Relative),
            0,
            "OpenBLAS, relative"
        );
        assert_eq!(
            steps_allocate(&blas, 16, 40, 3, Kind::Naive),
            0,
            "OpenBLAS, naive"
        );
    }

    // The trainer's own steps (gather, gradient, optimizer) allocate nothing either:
    // compare the counter between consecutive step events of one epoch.
    let case = common::Case {
        d: 8,
        b: 1,
        l: 2,
        activation: relgrad::Activation::default(),
        base: relgrad::BaseDensity::Normal,
        bias: true,
        seed: 3,
    };
    let (mut model, _) = common::model_and_data(&case);
    let x = relgrad::Mat::from_fn(500, 8, |i, j| ((i * 7 + j * 3) % 11) as f64 / 5.0 - 1.0);
    let cfg = TrainConfig {
        batch_size: 64,
        epochs: 2,
        look_ahead: None,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&model, seq, cfg.clone(), x.rows()).unwrap();
    let worst = worst_step(&mut trainer, &mut model, x.as_ref());
    assert_eq!(worst, 0, "allocations between two trainer steps");
    // The trainer's fused steps.
    let fused = TrainConfig {
        batch_size: 2,
        step: relgrad::StepPath::Fused,
        ..cfg.clone()
    };
    let mut trainer = Trainer::new(&model, seq, fused, x.rows()).unwrap();
    let worst = worst_step(&mut trainer, &mut model, x.as_ref());
    assert_eq!(worst, 0, "allocations between two fused trainer steps");

    // So do the steps of one process of a group (its share of the gradient, the packed
    // buffer, the reduction): rank 0 of a pretended group of two whose reduction copies.
    let shard = relgrad::Shard::even(x.rows(), 0, 2);
    let mine = x.as_ref().rows_range(0, shard.len);
    let mut trainer = Trainer::distributed(&model, seq, cfg, shard, None, PretendPair).unwrap();
    let worst = worst_step(&mut trainer, &mut model, mine);
    assert_eq!(worst, 0, "allocations between two distributed steps");
}

/// The most allocations between two consecutive step events of an epoch (after the
/// first two steps).
fn worst_step<C: relgrad::Collective>(
    trainer: &mut Trainer<f64, Faer, C>,
    model: &mut relgrad::InvertibleMlp<f64>,
    x: MatRef<'_, f64>,
) -> usize {
    let (mut last, mut worst) = (None, 0);
    trainer
        .fit(model, x, None, |e| {
            if let TrainEvent::Step { step, .. } = e {
                let now = allocations();
                if let Some(prev) = last.filter(|_| step > 2) {
                    worst = usize::max(worst, now - prev);
                }
                last = Some(now);
            }
        })
        .unwrap();
    worst
}

/// Rank 0 of a group of two whose reductions copy (the other process is pretended).
struct PretendPair;

impl relgrad::Collective for PretendPair {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        2
    }
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) {
        recv.copy_from_slice(send)
    }
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) {
        recv.copy_from_slice(send)
    }
    fn broadcast(&self, _: usize, _: &mut [u8]) {}
}

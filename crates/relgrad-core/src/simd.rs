//! Runtime selection of wider vector instructions for the elementwise loops.
//!
//! The portable build targets baseline x86-64 (SSE2). The elementwise kernels
//! (activations, the backward combination, bias reductions) are compiled up to three
//! times: the closure passed to [`vectorized`] is inlined into functions compiled for
//! AVX-512, for AVX2 with FMA, and for the baseline, and the widest one the CPU supports
//! runs. The check is cached.
//!
//! Rust never contracts `a * b + c` into a fused multiply-add by itself, so the closure
//! receives `fma`: `true` in the copies compiled for FMA, where [`madd`] becomes one
//! instruction, and `false` in the baseline copy, where `mul_add` would be a slow library
//! call. It is a constant in each copy, so the branch in [`madd`] disappears.

/// Runs `f(fma)`, compiled for the widest vector instructions the CPU supports.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce(bool) -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            Level::Avx512 => {
                // SAFETY: the CPU supports the features this function is compiled for.
                return unsafe { with_avx512(f) };
            }
            Level::Avx2Fma => {
                // SAFETY: as above.
                return unsafe { with_avx2_fma(f) };
            }
            Level::Baseline => {}
        }
    }
    f(false)
}

/// `a * b + c`, as one fused instruction when `fma` (see the module documentation).
#[inline(always)]
pub(crate) fn madd<T: crate::Scalar>(fma: bool, a: T, b: T, c: T) -> T {
    if fma {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn with_avx512<R>(f: impl FnOnce(bool) -> R) -> R {
    f(true)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn with_avx2_fma<R>(f: impl FnOnce(bool) -> R) -> R {
    f(true)
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Level {
    Baseline,
    Avx2Fma,
    Avx512,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn level() -> Level {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: unknown, then 1 + the level.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => Level::Baseline,
        2 => Level::Avx2Fma,
        3 => Level::Avx512,
        _ => {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            let avx512 = avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl");
            let level = if avx512 {
                Level::Avx512
            } else if avx2 {
                Level::Avx2Fma
            } else {
                Level::Baseline
            };
            STATE.store(1 + level as u8, Ordering::Relaxed);
            level
        }
    }
}

/// `sum_i a_i b_i` with eight independent partial sums, so that the loop vectorises
/// (a single running sum is a chain of dependent additions).
#[inline(always)]
pub(crate) fn dot<T: crate::Scalar>(fma: bool, a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::zero(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] = madd(fma, xa[k], xb[k], acc[k]);
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

//! Runtime selection of wider vector instructions for the elementwise loops.
//!
//! The portable build targets baseline x86-64 (SSE2). The elementwise kernels
//! (activations, the backward combination, bias reductions) are compiled up to three
//! times: the closure passed to `vectorized` is inlined into functions compiled for
//! AVX-512, for AVX2 with FMA, and for the baseline, and the widest one the CPU supports
//! runs ([`simd_level`]; the check is cached). [`cap_simd_level`] lowers it, to compare
//! the levels or rule one out.
//!
//! Rust never contracts `a * b + c` into a fused multiply-add by itself, so the closure
//! receives `fma`: `true` in the copies compiled for FMA, where `madd` becomes one
//! instruction, and `false` in the baseline copy, where `mul_add` would be a slow library
//! call. It is a constant in each copy, so the branch in `madd` disappears. That needs
//! the whole kernel inlined into the copy: closures passed to `vectorized` (and any they
//! pass on) are `#[inline(always)]`. One that is not still computes the same numbers, but
//! through a library `fma` call per element, many times slower; `relgrad bench` shows it.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction set the elementwise kernels run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// The portable build (SSE2 on x86-64; whatever the target enables elsewhere).
    Baseline,
    /// AVX2 with fused multiply-add.
    Avx2Fma,
    /// AVX-512 (F and VL) with fused multiply-add.
    Avx512,
}

impl SimdLevel {
    /// `"baseline"`, `"avx2"` or `"avx512"`.
    pub fn name(&self) -> &'static str {
        match self {
            SimdLevel::Baseline => "baseline",
            SimdLevel::Avx2Fma => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Parses [`SimdLevel::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "baseline" => Some(SimdLevel::Baseline),
            "avx2" => Some(SimdLevel::Avx2Fma),
            "avx512" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }
}

/// 0: not chosen yet; otherwise 1 + the level in use.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The widest level this CPU supports.
pub fn detected_simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            return SimdLevel::Avx512;
        }
        if avx2 {
            return SimdLevel::Avx2Fma;
        }
    }
    SimdLevel::Baseline
}

/// The level the elementwise kernels run with: the widest the CPU supports unless
/// capped by [`cap_simd_level`].
#[inline(always)]
pub fn simd_level() -> SimdLevel {
    match LEVEL.load(Ordering::Relaxed) {
        1 => SimdLevel::Baseline,
        2 => SimdLevel::Avx2Fma,
        3 => SimdLevel::Avx512,
        _ => {
            let level = detected_simd_level();
            LEVEL.store(1 + level as u8, Ordering::Relaxed);
            level
        }
    }
}

/// Caps the instruction set of the elementwise kernels for the rest of the process (never
/// above what the CPU supports), and returns the level now in use. For comparing the
/// levels' speed, or ruling a kernel out; every level computes the same quantities, to
/// round-off (fused multiply-adds round once where the baseline rounds twice).
pub fn cap_simd_level(max: SimdLevel) -> SimdLevel {
    let level = detected_simd_level().min(max);
    LEVEL.store(1 + level as u8, Ordering::Relaxed);
    level
}

/// Runs `f(fma)`, compiled for the level in use (see [`simd_level`]).
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce(bool) -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match simd_level() {
            SimdLevel::Avx512 => {
                // SAFETY: the level never exceeds what the CPU supports.
                return unsafe { with_avx512(f) };
            }
            SimdLevel::Avx2Fma => {
                // SAFETY: as above.
                return unsafe { with_avx2_fma(f) };
            }
            SimdLevel::Baseline => {}
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

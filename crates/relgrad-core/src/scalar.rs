//! The floating-point element type: `f32` or `f64`.

use core::fmt::{Debug, Display};
use core::iter::Sum;
use core::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use num_traits::{Float, FloatConst, FromPrimitive, ToPrimitive};

use crate::collective::Collective;
use crate::simd::madd;

/// A real scalar the library computes with. Implemented for `f32` and `f64` only.
pub trait Scalar:
    Float
    + FloatConst
    + FromPrimitive
    + ToPrimitive
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Short name of the precision, `"f32"` or `"f64"`.
    const NAME: &'static str;

    /// Converts from `f64` (rounding to nearest for `f32`).
    fn from_f64c(x: f64) -> Self;

    /// Converts to `f64` exactly.
    fn to_f64c(self) -> f64;

    /// `recv = ` the sum of every process's `send` across the group `c` (see
    /// [`Collective`]), in this precision.
    fn sum_across<C: Collective + ?Sized>(c: &C, send: &[Self], recv: &mut [Self]);

    /// `e^x` for `x <= 0` (inputs below the smallest normal result give about that
    /// result), branch-free so that loops over slices vectorise. Relative error within a
    /// few units in the last place. `fma` selects fused multiply-adds: pass `true` only
    /// in code compiled for FMA (see `simd::vectorized`); elsewhere it is a slow library
    /// call.
    fn exp_nonpositive(x: Self, fma: bool) -> Self;

    /// `ln(1 + u)` for `u` in `[0, 1]`, branch-free, relative error within a few units in
    /// the last place. `fma` as for [`Scalar::exp_nonpositive`].
    fn ln_1p_unit(u: Self, fma: bool) -> Self;

    /// `ln x` for a positive, finite, normal `x`, branch-free: `x = m 2^k` with `m` in
    /// `[1, 2)` read from the bits, then `k ln 2 + ln(1 + (m - 1))`. Absolute error within
    /// a few units in the last place of `ln 2`-sized numbers. `fma` as for
    /// [`Scalar::exp_nonpositive`].
    fn ln_normal(x: Self, fma: bool) -> Self;
}

/// Evaluates `c[0] + c[1] x + ... + c[N-1] x^(N-1)` by Estrin's scheme: pairs
/// `c[2i] + c[2i+1] x`, then pairs of those with `x^2`, and so on. The dependency chain is
/// `log2 N` steps long instead of Horner's `N`, which is what limits the vectorised
/// activation loops. Fully unrolled once inlined with a constant `N`.
#[inline(always)]
pub(crate) fn estrin<T: Scalar, const N: usize>(fma: bool, x: T, c: [T; N]) -> T {
    let mut v = c;
    let mut len = N;
    let mut p = x;
    while len > 1 {
        let half = len.div_ceil(2);
        for i in 0..half {
            v[i] = if 2 * i + 1 < len {
                madd(fma, v[2 * i + 1], p, v[2 * i])
            } else {
                v[2 * i]
            };
        }
        len = half;
        p = p * p;
    }
    v[0]
}

/// The coefficients `1, 1/3, 1/5, ...` of `2 atanh(t) / (2 t)` as a series in `t^2`.
const fn atanh_coefficients<const N: usize>() -> [f64; N] {
    let mut c = [0.0; N];
    let mut k = 0;
    while k < N {
        c[k] = 1.0 / (2 * k + 1) as f64;
        k += 1;
    }
    c
}

/// The Taylor coefficients `1/k!` of `e^r`.
const fn exp_coefficients<const N: usize>() -> [f64; N] {
    let mut c = [0.0; N];
    let mut f = 1.0;
    let mut k = 0;
    while k < N {
        c[k] = 1.0 / f;
        k += 1;
        f *= k as f64;
    }
    c
}

const EXP_F64: [f64; 14] = exp_coefficients::<14>();
const ATANH_F64: [f64; 19] = atanh_coefficients::<19>();

/// `e^r` on `|r| <= ln(2) / 2` to degree 6, fitted for relative error (Chebyshev
/// least squares): within one unit in the last place of `f32`, one degree less than the
/// Taylor polynomial needs.
#[allow(clippy::excessive_precision)]
const EXP_F32: [f32; 7] = [
    1.000_000_000_592_020_7,
    1.000_000_036_125_897_8,
    0.499_999_914_930_368_2,
    0.166_664_208_321_192_44,
    0.041_668_358_033_579_32,
    0.008_374_771_520_325_07,
    0.001_382_942_054_923_642_5,
];

/// `ln(1 + u) / u` on `[0, 1]` to degree 8, fitted for relative error: within two
/// units in the last place of `f32` without the division the `atanh` form needs.
#[allow(clippy::excessive_precision)]
const LN_1P_F32: [f32; 9] = [
    0.999_999_965_159_914_3,
    -0.499_994_356_904_521_93,
    0.333_179_343_219_732_1,
    -0.248_339_454_567_593_13,
    0.190_713_095_830_248_15,
    -0.135_906_002_345_674_13,
    0.077_380_738_366_781_33,
    -0.028_991_956_381_178_27,
    0.005_105_825_797_115_468,
];

impl Scalar for f32 {
    const NAME: &'static str = "f32";

    fn sum_across<C: Collective + ?Sized>(c: &C, send: &[Self], recv: &mut [Self]) {
        c.sum_f32(send, recv)
    }
    #[inline(always)]
    fn from_f64c(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64c(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn exp_nonpositive(x: f32, fma: bool) -> f32 {
        // e^x = 2^k e^r, k = round(x / ln 2), |r| <= ln(2) / 2; e^r by a degree-6
        // polynomial fitted on that interval (Estrin's scheme).
        // k is read from the bits of x / ln 2 + 1.5 * 2^23 (no `round`, which is a
        // library call without SSE4.1, and no float-to-int conversion).
        const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
        let x = x.max(-87.0);
        let shifted = madd(fma, x, core::f32::consts::LOG2_E, MAGIC);
        let k = shifted - MAGIC;
        let r = madd(fma, k, -1.428_606_8e-6, madd(fma, k, -0.693_145_75, x));
        let p = estrin(fma, r, EXP_F32);
        p * f32::from_bits(shifted.to_bits().wrapping_add(127) << 23)
    }
    #[inline(always)]
    fn ln_1p_unit(u: f32, fma: bool) -> f32 {
        // ln(1 + u) = u q(u) with q a degree-8 polynomial fitted on [0, 1]: no division.
        u * estrin(fma, u, LN_1P_F32)
    }
    #[inline(always)]
    fn ln_normal(x: f32, fma: bool) -> f32 {
        let bits = x.to_bits();
        let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        // The biased exponent as a float without an int-to-float conversion: the bits
        // 0x4b000000 | e are 2^23 + e.
        let k = f32::from_bits(0x4b00_0000 | (bits >> 23)) - (8_388_608.0 + 127.0);
        madd(
            fma,
            k,
            core::f32::consts::LN_2,
            Self::ln_1p_unit(m - 1.0, fma),
        )
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";

    fn sum_across<C: Collective + ?Sized>(c: &C, send: &[Self], recv: &mut [Self]) {
        c.sum_f64(send, recv)
    }
    #[inline(always)]
    fn from_f64c(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64c(self) -> f64 {
        self
    }
    #[inline(always)]
    fn exp_nonpositive(x: f64, fma: bool) -> f64 {
        // e^x = 2^k e^r, k = round(x / ln 2), |r| <= ln(2) / 2; Taylor to degree 13
        // (evaluated by Estrin's scheme).
        // k is read from the bits of x / ln 2 + 1.5 * 2^52 (no float-to-int conversion,
        // which would not vectorise without AVX-512).
        const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
        let x = x.max(-708.0);
        let shifted = madd(fma, x, core::f64::consts::LOG2_E, MAGIC);
        let k = shifted - MAGIC;
        let r = madd(
            fma,
            k,
            -1.908_214_929_270_587_7e-10,
            madd(fma, k, -6.931_471_803_691_238e-1, x),
        );
        let p = estrin(fma, r, EXP_F64);
        let two_k = f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52);
        p * two_k
    }
    #[inline(always)]
    fn ln_1p_unit(u: f64, fma: bool) -> f64 {
        // ln(1 + u) = 2 atanh(u / (2 + u)), with u / (2 + u) <= 1/3; the series
        // 2 atanh(t) = 2 t (1 + t^2/3 + t^4/5 + ...) to 19 terms.
        let t = u / (2.0 + u);
        2.0 * t * estrin(fma, t * t, ATANH_F64)
    }
    #[inline(always)]
    fn ln_normal(x: f64, fma: bool) -> f64 {
        let bits = x.to_bits();
        let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        // The biased exponent as a float without an int-to-float conversion (which would
        // not vectorise without AVX-512): the bits 0x43300000_00000000 | e are 2^52 + e.
        let k = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52))
            - (4_503_599_627_370_496.0 + 1023.0);
        madd(
            fma,
            k,
            core::f64::consts::LN_2,
            Self::ln_1p_unit(m - 1.0, fma),
        )
    }
}

/// Shorthand for [`Scalar::from_f64c`].
#[inline(always)]
pub fn c<T: Scalar>(x: f64) -> T {
    T::from_f64c(x)
}

#[cfg(test)]
mod tests {
    use super::Scalar;

    /// Worst relative errors of `exp_nonpositive` and `ln_1p_unit` (f64, f32, f64, f32)
    /// against the standard library, with or without fma multiply-adds.
    fn worst_errors(fma: bool) -> [f64; 4] {
        let mut worst = [0.0f64; 4];
        for i in 0..=200_000 {
            let x = -(i as f64) * 700.0 / 200_000.0;
            let want = x.exp();
            if want > 1e-300 {
                worst[0] = worst[0].max((f64::exp_nonpositive(x, fma) - want).abs() / want);
            }
            let x32 = (x as f32).max(-80.0);
            let want32 = (x32 as f64).exp();
            let got32 = f32::exp_nonpositive(x32, fma) as f64;
            worst[1] = worst[1].max((got32 - want32).abs() / want32);
            let u = i as f64 / 200_000.0;
            if u > 0.0 {
                let want = u.ln_1p();
                worst[2] = worst[2].max((f64::ln_1p_unit(u, fma) - want).abs() / want);
                let u32 = u as f32;
                let want32 = (u32 as f64).ln_1p();
                let got32 = f32::ln_1p_unit(u32, fma) as f64;
                worst[3] = worst[3].max((got32 - want32).abs() / want32);
            }
        }
        worst
    }

    #[test]
    fn fast_exp_and_ln_1p_match_the_standard_library() {
        for fma in [false, true] {
            let worst = worst_errors(fma);
            let (e64, e32) = (f64::EPSILON, f32::EPSILON as f64);
            assert!(worst[0] < 4.0 * e64, "f64 exp ({fma}): {:e}", worst[0]);
            assert!(worst[1] < 4.0 * e32, "f32 exp ({fma}): {:e}", worst[1]);
            assert!(worst[2] < 4.0 * e64, "f64 ln_1p ({fma}): {:e}", worst[2]);
            assert!(worst[3] < 4.0 * e32, "f32 ln_1p ({fma}): {:e}", worst[3]);
            assert_eq!(f64::exp_nonpositive(0.0, fma), 1.0);
            assert_eq!(f32::exp_nonpositive(0.0, fma), 1.0);
            assert_eq!(f64::ln_1p_unit(0.0, fma), 0.0);
            assert_eq!(f32::ln_1p_unit(0.0, fma), 0.0);
        }
    }

    #[test]
    fn ln_normal_matches_the_standard_library() {
        for fma in [false, true] {
            let mut worst = [0.0f64; 2];
            for i in 0..=4000 {
                // 1e-30 .. 1e30, densest around 1.
                let t = (i as f64 - 2000.0) / 2000.0;
                let x = 10f64.powf(30.0 * t * t * t.signum());
                let scale = |l: f64| l.abs().max(1.0);
                let e64 = (f64::ln_normal(x, fma) - x.ln()).abs() / scale(x.ln());
                let x32 = x as f32;
                let e32 =
                    ((f32::ln_normal(x32, fma) - x32.ln()) as f64).abs() / scale(x32.ln() as f64);
                worst = [worst[0].max(e64), worst[1].max(e32)];
            }
            assert!(
                worst[0] < 4.0 * f64::EPSILON,
                "f64 ln ({fma}): {:e}",
                worst[0]
            );
            assert!(
                worst[1] < 4.0 * f32::EPSILON as f64,
                "f32 ln ({fma}): {:e}",
                worst[1]
            );
            assert_eq!(f64::ln_normal(1.0, fma), 0.0);
            assert_eq!(f32::ln_normal(1.0, fma), 0.0);
        }
    }
}

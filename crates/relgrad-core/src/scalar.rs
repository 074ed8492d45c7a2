//! The floating-point element type: `f32` or `f64`.

use core::fmt::{Debug, Display};
use core::iter::Sum;
use core::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use num_traits::{Float, FloatConst, FromPrimitive, ToPrimitive};

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
}

impl Scalar for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn from_f64c(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn to_f64c(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn from_f64c(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn to_f64c(self) -> f64 {
        self
    }
}

/// Shorthand for [`Scalar::from_f64c`].
#[inline(always)]
pub fn c<T: Scalar>(x: f64) -> T {
    T::from_f64c(x)
}

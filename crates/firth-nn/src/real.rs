//! The scalar type of a model: f32 for training, f64 for gradient checks.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar with the few operations layers need (matrix products are
/// the `Gemm` trait of the `gemm` module, built on this one).
pub trait Real:
    Copy
    + Send
    + Sync
    + Default
    + Debug
    + PartialOrd
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn from_f32(x: f32) -> Self;
    fn to_f32(self) -> f32;
    /// e^x. The f32 version is a branch-free polynomial that vectorises (libm's does not);
    /// relative error below 2e-7 over the clamped range [-87, 88].
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn max(self, other: Self) -> Self;
    fn min(self, other: Self) -> Self;
    fn is_finite(self) -> bool;

    /// σ(x) = 1 / (1 + e^-x).
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::ONE / (Self::ONE + (-self).exp())
    }

    /// tanh(x) = 2σ(2x) - 1, which stays on the vectorisable exp.
    fn tanh(self) -> Self;
}

/// The methods that are the same for f32 and f64: conversions and std's functions.
macro_rules! impl_real {
    ($t:ty, exp: $exp:expr, tanh: $tanh:expr) => {
        impl Real for $t {
            const ZERO: $t = 0.0;
            const ONE: $t = 1.0;
            #[inline(always)]
            fn from_f64(x: f64) -> $t {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f32(x: f32) -> $t {
                x as $t
            }
            #[inline(always)]
            fn to_f32(self) -> f32 {
                self as f32
            }
            #[inline(always)]
            fn exp(self) -> $t {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> $t {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn sqrt(self) -> $t {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> $t {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn max(self, o: $t) -> $t {
                <$t>::max(self, o)
            }
            #[inline(always)]
            fn min(self, o: $t) -> $t {
                <$t>::min(self, o)
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn tanh(self) -> $t {
                $tanh(self)
            }
        }
    };
}

// f32 trains, so it takes the vectorisable exp and tanh = 2σ(2x) - 1; f64 checks gradients,
// so it takes std's exact functions.
impl_real!(f32, exp: exp_f32, tanh: |x: f32| 2.0 * (2.0 * x).sigmoid() - 1.0);
impl_real!(f64, exp: f64::exp, tanh: f64::tanh);

/// e^x for f32 without branches: x = n·ln2 + r with |r| <= ln2/2, e^r by a degree-6
/// polynomial, 2^n by building the exponent bits. Inputs are clamped to [-87, 88] so the
/// result is always a finite normal number (σ and tanh saturate long before that).
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Selects rather than f32::clamp, so NaN passes through (and is caught as a NaN loss) and
    // the compiler emits plain vector min/max.
    let x = if x > 88.0 {
        88.0
    } else if x < -87.0 {
        -87.0
    } else {
        x
    };
    // Adding 1.5·2^23 rounds x·log2(e) to the nearest integer n and leaves n in the low
    // mantissa bits of `j`: no float-to-int conversion, which Rust would make saturating and
    // therefore scalar.
    const MAGIC: f32 = 12_582_912.0;
    let j = x * std::f32::consts::LOG2_E + MAGIC;
    let n = j - MAGIC;
    // r = x - n·ln2 in two parts (Cody-Waite) to keep r accurate.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    // The low bits of j are n (two's complement), so (n + 127) << 23 is 2^n as an f32.
    let bits = j.to_bits().wrapping_add(127) << 23;
    p * f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -80.0f32;
        while x < 80.0 {
            let got = exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_and_sigmoid_match_libm() {
        for i in -200..200 {
            let x = i as f32 * 0.05;
            assert!((Real::tanh(x) - x.tanh()).abs() < 2e-6, "{x}");
            assert!((x.sigmoid() - 1.0 / (1.0 + (-x).exp())).abs() < 1e-6);
        }
    }
}

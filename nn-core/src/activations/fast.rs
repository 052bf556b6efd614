//! Fast, vectorisable approximations of the transcendental activations, with their accuracy
//! stated and tested (against `f64` over a dense sweep of inputs).
//!
//! The exact activations ([`Tanh`](super::Tanh), [`Sigmoid`](super::Sigmoid)) are vectorised
//! too, within one ulp in `f32` (`accurate.rs`), but they compute in `f64`; these use a
//! rational function or a polynomial in the type itself, with only `+ − × ÷` and
//! comparisons: twice the lanes, about half the time of the exact ones on W4.
//!
//! | function | max abs. error (f32) | max rel. error (f32) | method |
//! |---|---|---|---|
//! | [`tanh_fast`] | 4.0e-7 | 4.0e-7 | rational 13/6 (Eigen's), clamped at ±7.905 |
//! | [`sigmoid_fast`] | 1.1e-7 | 3.0e-7 (x ≥ −87) | `1/(1 + exp_fast(−x))` |
//! | [`exp_fast`] | — | 2.6e-7 (on [−87.3, 88.3]) | `2ⁿ·p(r)`, degree-6 Taylor polynomial on `[−½ln2, ½ln2]` |
//!
//! The errors are those of the `f32` computation against `f64`, measured over every input
//! at spacing 1e-5 over `[−90, 90]` (tanh, sigmoid) or 5e-5 over `[−87.3, 88.3]` (exp); the
//! tests assert them on sweeps at spacing 1e-5 (tanh on `[−10, 10]`, sigmoid on `[−20, 20]`),
//! 1e-4 (exp) and coarser outside;
//! near ±1 the tanh error is about 6 units in the last place. In `f64`, `tanh_fast` is the
//! same rational function, tuned for `f32`: absolute error 2.6e-7, no better; `exp_fast`
//! (and so `sigmoid_fast`) switches to a degree-11 polynomial, relative error below 1e-13.

use super::{Activation, Elementwise, Reads};
use crate::Real;
use nalgebra::SMatrix;

/// `tanh(x)` within 4.0e-7 (absolute and relative, `f32`), as a rational function: Eigen's `ptanh_float`
/// (odd numerator of degree 13, even denominator of degree 6), clamped to `|x| ≤ 7.905`.
/// NaN stays NaN.
#[inline(always)]
pub fn tanh_fast<T: Real>(x: T) -> T {
    let c = T::of(7.905_311_107_635_498);
    // Comparisons, not `min`/`max`: NaN passes through, and the select vectorises.
    let x = if x > c {
        c
    } else if x < -c {
        -c
    } else {
        x
    };
    let x2 = x * x;
    let mut p = T::of(-2.760_768_477_423_55e-16);
    p = p * x2 + T::of(2.000_187_904_824_77e-13);
    p = p * x2 + T::of(-8.604_671_522_137_35e-11);
    p = p * x2 + T::of(5.122_297_090_371_14e-8);
    p = p * x2 + T::of(1.485_722_357_179_79e-5);
    p = p * x2 + T::of(6.372_619_288_754_36e-4);
    p = p * x2 + T::of(4.893_524_558_917_86e-3);
    p *= x;
    let mut q = T::of(1.198_258_394_667_02e-6);
    q = q * x2 + T::of(1.185_347_056_866_54e-4);
    q = q * x2 + T::of(2.268_434_632_439e-3);
    q = q * x2 + T::of(4.893_525_185_543_85e-3);
    p / q
}

/// `σ(x) = 1/(1 + e⁻ˣ)` as `1/(1 + exp_fast(−x))`: relative error below 3e-7 (`f32`)
/// for every input (no cancellation for very negative `x`).
#[inline(always)]
pub fn sigmoid_fast<T: Real>(x: T) -> T {
    T::ONE / (T::ONE + exp_fast(-x))
}

/// `eˣ` within 2.6e-7 (relative, `f32`, for results in the normal range): `x = n·ln 2 + r`
/// with `|r| ≤ ½ln 2` (Cody–Waite, two-part `ln 2`), `eʳ` by a degree-6 Taylor polynomial,
/// and `2ⁿ` built in the exponent bits.
///
/// Inputs are clamped to `[−87.33, 88.37]` (`f32`) or `[−708.39, 709.43]` (`f64`), so that
/// `2ⁿ` is a normal number: below, the result is about the smallest normal number instead
/// of a subnormal or zero; above, about `2.3e38` (`f32`) instead of the largest finite value
/// or infinity. NaN gives NaN.
#[inline(always)]
pub fn exp_fast<T: Real>(x: T) -> T {
    let single = size_of::<T>() == 4;
    let (lo, hi) = if single {
        (-87.33, 88.37)
    } else {
        (-708.39, 709.43)
    };
    let x = if x > T::of(hi) {
        T::of(hi)
    } else if x < T::of(lo) {
        T::of(lo)
    } else {
        x
    };
    // n = round(x / ln 2) as a float, by the 1.5·2^mantissa trick (round to nearest even).
    let shifter = T::of(if single {
        12_582_912.0
    } else {
        6_755_399_441_055_744.0
    });
    let n = (x * T::of(core::f64::consts::LOG2_E) + shifter) - shifter;
    // r = x − n·ln 2, with ln 2 split so that n·ln2_hi is exact.
    let (ln2_hi, ln2_lo) = if single {
        (0.693_145_751_953_125, 1.428_606_765_330_187e-6)
    } else {
        (0.693_147_180_369_123_8, 1.908_214_929_270_587_7e-10)
    };
    let r = (x - n * T::of(ln2_hi)) - n * T::of(ln2_lo);
    // eʳ, |r| ≤ 0.3466: Taylor to degree 6 (f32) or 11 (f64), Horner.
    let degree = if single { 6 } else { 11 };
    let mut p = T::ONE;
    let mut k = degree;
    while k > 0 {
        p = T::ONE + p * r / T::of(k as f64);
        k -= 1;
    }
    p * pow2(n)
}

/// `2ⁿ` for an integral float `n` in the normal exponent range, from its bits.
#[inline(always)]
fn pow2<T: Real>(n: T) -> T {
    use core::mem::transmute_copy;
    if size_of::<T>() == 4 {
        // SAFETY: T is f32 (Real is sealed to f32 and f64, and this one has 4 bytes).
        let n: f32 = unsafe { transmute_copy(&n) };
        let bits = ((n as i32 + 127) as u32) << 23;
        // SAFETY: as above.
        unsafe { transmute_copy(&f32::from_bits(bits)) }
    } else {
        // SAFETY: T is f64.
        let n: f64 = unsafe { transmute_copy(&n) };
        let bits = ((n as i64 + 1023) as u64) << 52;
        // SAFETY: as above.
        unsafe { transmute_copy(&f64::from_bits(bits)) }
    }
}

/// [`Tanh`](super::Tanh) computed by [`tanh_fast`] (error ≤ 4.0e-7 in `f32`); the same
/// derivative `1 − y²`, from the output.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TanhFast;

impl<T: Real> Elementwise<T> for TanhFast {
    const READS: Reads = Reads::Output;

    #[inline(always)]
    fn value(&self, x: T) -> T {
        tanh_fast(x)
    }
    #[inline(always)]
    fn derivative(&self, y: T) -> T {
        T::ONE - y * y
    }
}

/// [`Sigmoid`](super::Sigmoid) computed by [`sigmoid_fast`] (abs. error ≤ 1.1e-7, rel.
/// ≤ 3.0e-7 in `f32`);
/// the same derivative `y(1 − y)`, from the output.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SigmoidFast;

impl<T: Real> Elementwise<T> for SigmoidFast {
    const READS: Reads = Reads::Output;

    #[inline(always)]
    fn value(&self, x: T) -> T {
        sigmoid_fast(x)
    }
    #[inline(always)]
    fn derivative(&self, y: T) -> T {
        y * (T::ONE - y)
    }
}

macro_rules! fast_activation {
    ($($ty:ty),+) => {$(
        impl<T: Real> Activation<T> for $ty {
            const READS: Reads = Reads::Output;

            #[inline]
            fn forward<const N: usize, const B: usize>(
                &self,
                x: &SMatrix<T, N, B>,
                y: &mut SMatrix<T, N, B>,
            ) {
                // Plain slices, so that the loop vectorises.
                for (y, &x) in y.as_mut_slice().iter_mut().zip(x.as_slice()) {
                    *y = self.value(x);
                }
            }

            #[inline]
            fn backward<const N: usize, const B: usize>(
                &self,
                value: &SMatrix<T, N, B>,
                dy: &SMatrix<T, N, B>,
                dx: &mut SMatrix<T, N, B>,
            ) {
                let inputs = value.as_slice().iter().zip(dy.as_slice());
                for (dx, (&value, &dy)) in dx.as_mut_slice().iter_mut().zip(inputs) {
                    *dx += self.derivative(value) * dy;
                }
            }
        }
    )+};
}

fast_activation!(TanhFast, SigmoidFast);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradcheck;

    /// The f64 error of the rational tanh (measured; stated in the module docs).
    const F64_TANH_ABS: f64 = 2.6e-7;

    /// Every `f32` in `[lo, hi]` at spacing `step`, plus the special points.
    fn sweep(lo: f64, hi: f64, step: f64) -> impl Iterator<Item = f32> {
        let n = ((hi - lo) / step) as usize;
        (0..=n)
            .map(move |k| (lo + k as f64 * step) as f32)
            .chain([0.0, -0.0, 1e-30, -1e-30, 1e-8, 20.0, -20.0, 1e4, -1e4])
    }

    /// (max abs error, max rel error) of `f` against `exact` in f64, over `xs`.
    fn errors(
        xs: impl Iterator<Item = f32>,
        f: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
        rel_floor: f64,
    ) -> (f64, f64) {
        let (mut abs, mut rel) = (0.0f64, 0.0f64);
        for x in xs {
            let (got, want) = (f(x) as f64, exact(x as f64));
            let e = (got - want).abs();
            abs = abs.max(e);
            if want.abs() >= rel_floor {
                rel = rel.max(e / want.abs());
            }
        }
        (abs, rel)
    }

    #[test]
    fn tanh_fast_is_within_the_stated_error() {
        // Every 1e-5 over [-10, 10] (2 million points: the approximation's whole range, as
        // it is clamped at ±7.905), then every 1e-3 out to ±90 and the whole f32 range
        // coarsely.
        let xs = sweep(-10.0, 10.0, 1e-5)
            .chain(sweep(-90.0, 90.0, 1e-3))
            .chain(sweep(-1e30, 1e30, 1e27));
        let (abs, rel) = errors(xs, tanh_fast, f64::tanh, 0.0);
        assert!(abs <= 4.0e-7, "abs {abs:e}");
        assert!(rel <= 4.0e-7, "rel {rel:e}");
        assert!(tanh_fast(f32::NAN).is_nan());
        assert_eq!(tanh_fast(f32::INFINITY), 1.0);
        assert_eq!(tanh_fast(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh_fast(0.0f32), 0.0);
        // f64: the same rational function, about f32 accuracy.
        let worst = (0..400_001)
            .map(|k| -10.0 + k as f64 * 5e-5)
            .map(|x| (tanh_fast(x) - x.tanh()).abs())
            .fold(0.0, f64::max);
        assert!(worst < F64_TANH_ABS, "f64 {worst:e}");
    }

    #[test]
    fn sigmoid_fast_is_within_the_stated_error() {
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        // Every 1e-5 over [-20, 20], every 1e-3 over [-87, 90] (relative error where σ is
        // a normal f32), and the tails for the absolute error.
        let xs = sweep(-20.0, 20.0, 1e-5).chain(sweep(-87.0, 90.0, 1e-3));
        let (abs, rel) = errors(xs, sigmoid_fast, sigmoid, 1e-37);
        assert!(abs <= 1.1e-7, "abs {abs:e}");
        assert!(rel <= 3.0e-7, "rel {rel:e}");
        let (abs, _) = errors(sweep(-1e4, 1e4, 0.1), sigmoid_fast, sigmoid, 1e-37);
        assert!(abs <= 1.1e-7, "abs {abs:e}");
        assert!(sigmoid_fast(f32::NAN).is_nan());
        assert_eq!(sigmoid_fast(f32::INFINITY), 1.0);
        assert!(sigmoid_fast(f32::NEG_INFINITY) < 1e-38);
        let worst = (0..200_001)
            .map(|k| -700.0 + k as f64 * 7e-3)
            .map(|x| ((sigmoid_fast(x) - sigmoid(x)) / sigmoid(x)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-13, "f64 {worst:e}");
    }

    #[test]
    fn exp_fast_is_within_the_stated_error() {
        // Every 1e-4 over the clamped range [-87.3, 88.3].
        let xs = (0..=1_756_000).map(|k| (-87.3 + k as f64 * 1e-4) as f32);
        let (_, rel) = errors(xs, exp_fast, f64::exp, 0.0);
        assert!(rel <= 2.6e-7, "rel {rel:e}");
        assert!(exp_fast(f32::NAN).is_nan());
        assert!(exp_fast(1000.0f32).is_finite());
        assert!(exp_fast(-1000.0f32) > 0.0);
        assert_eq!(exp_fast(0.0f32), 1.0);
        let worst = (0..200_001)
            .map(|k| -708.0 + k as f64 * 7e-3)
            .map(|x| ((exp_fast(x) - x.exp()) / x.exp()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-13, "f64 {worst:e}");
    }

    #[test]
    fn fast_activations_match_finite_differences() {
        let x = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i as f64 - 1.3) * (j as f64 + 0.7));
        for report in [
            gradcheck::check_activation(&TanhFast, &x),
            gradcheck::check_activation(&SigmoidFast, &x),
        ] {
            // The approximation's derivative is the exact function's to about 1e-7.
            assert!(report.max_rel_error < 1e-5, "{report:?}");
        }
    }

    #[test]
    fn fast_activations_agree_with_the_exact_ones() {
        let x = SMatrix::<f32, 16, 8>::from_fn(|i, j| (i as f32 - 7.5) * 0.37 + j as f32 * 0.11);
        let (mut fast, mut exact) = (SMatrix::zeros(), SMatrix::zeros());
        TanhFast.forward(&x, &mut fast);
        super::super::Tanh.forward(&x, &mut exact);
        assert!((fast - exact).amax() < 3e-7);
        SigmoidFast.forward(&x, &mut fast);
        super::super::Sigmoid.forward(&x, &mut exact);
        assert!((fast - exact).amax() < 2e-7);
    }
}

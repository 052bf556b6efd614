//! The scalar type of a network.

use crate::kernels::{F32Kernels, F64Kernels, KernelSet};
use nalgebra::RealField;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point scalar a network computes in: `f32` or `f64`.
///
/// Sealed: the layout guarantees of [`Params`](crate::Params) and the zeroed-memory
/// constructors rely on the all-zero bit pattern being `0.0`, which holds for IEEE floats.
/// Transcendental functions come from nalgebra's [`RealField`] (through `libm` without `std`).
pub trait Real: RealField + Copy + Default + sealed::Sealed {
    /// `0.0`, usable in `const` items.
    const ZERO: Self;
    /// `1.0`, usable in `const` items.
    const ONE: Self;

    /// The matrix-product kernels of this type ([`kernels`](crate::kernels)): the machine code
    /// for `f32` or `f64`, chosen here by the type instead of by type tests in the kernels.
    type Kernels: KernelSet<Self>;

    /// Converts an `f64` (a literal in the DSL, an activation's parameter) to this type,
    /// rounding to nearest.
    fn of(x: f64) -> Self;

    /// Widens (or keeps) this value as an `f64`.
    fn to_f64(self) -> f64;

    /// `tanh(self)` as the [`Tanh`](crate::activations::Tanh) activation computes it: for
    /// `f32` vectorisable and within one ulp of the correctly rounded result (every input
    /// checked; [`activations::tanh_f32`](crate::activations::tanh_f32)); for `f64` libm's.
    fn tanh_accurate(self) -> Self;

    /// `σ(self) = 1/(1 + e⁻ˢᵉˡᶠ)` as the [`Sigmoid`](crate::activations::Sigmoid) activation
    /// computes it: for `f32` vectorisable and within one ulp of the correctly rounded result
    /// ([`activations::sigmoid_f32`](crate::activations::sigmoid_f32)); for `f64` from libm's
    /// `exp`, without overflow.
    fn sigmoid_accurate(self) -> Self;

    /// `e^self` as softmax and the cross-entropy compute it: for `f32` vectorisable and
    /// within one ulp of the correctly rounded result
    /// ([`activations::exp_f32`](crate::activations::exp_f32)); for `f64` libm's.
    fn exp_accurate(self) -> Self;

    /// `y[i] = x[i].tanh_accurate()` over a layer's values (for `f32` in the widest vectors
    /// the CPU has: the same bits as element by element).
    ///
    /// # Panics
    /// If the slices' lengths differ.
    #[inline]
    fn tanh_accurate_slice(x: &[Self], y: &mut [Self]) {
        assert_eq!(
            x.len(),
            y.len(),
            "tanh_accurate_slice: slices of different lengths"
        );
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x.tanh_accurate();
        }
    }

    /// `x[i] = x[i].exp_accurate()` in place (for `f32` in the widest vectors the CPU has: the
    /// same bits as value by value).
    #[inline]
    fn exp_accurate_in_place(x: &mut [Self]) {
        for x in x {
            *x = x.exp_accurate();
        }
    }

    /// `y[i] = x[i].sigmoid_accurate()`, as [`tanh_accurate_slice`](Self::tanh_accurate_slice).
    ///
    /// # Panics
    /// If the slices' lengths differ.
    #[inline]
    fn sigmoid_accurate_slice(x: &[Self], y: &mut [Self]) {
        assert_eq!(
            x.len(),
            y.len(),
            "sigmoid_accurate_slice: slices of different lengths"
        );
        for (y, &x) in y.iter_mut().zip(x) {
            *y = x.sigmoid_accurate();
        }
    }
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    type Kernels = F32Kernels;

    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }

    #[inline(always)]
    fn tanh_accurate(self) -> Self {
        crate::activations::tanh_f32(self)
    }

    #[inline(always)]
    fn sigmoid_accurate(self) -> Self {
        crate::activations::sigmoid_f32(self)
    }

    #[inline(always)]
    fn exp_accurate(self) -> Self {
        crate::activations::exp_f32(self)
    }

    // Always inlined, as the function it calls: two checks and a call, which the passes
    // compiled for AVX-512 or AVX2 inline in turn.
    #[inline(always)]
    fn tanh_accurate_slice(x: &[Self], y: &mut [Self]) {
        crate::activations::tanh_f32_slice(x, y)
    }

    // Always inlined, as the function it calls: two checks and a call, which the passes
    // compiled for AVX-512 or AVX2 inline in turn.
    #[inline(always)]
    fn sigmoid_accurate_slice(x: &[Self], y: &mut [Self]) {
        crate::activations::sigmoid_f32_slice(x, y)
    }

    // Always inlined, as the function it calls.
    #[inline(always)]
    fn exp_accurate_in_place(x: &mut [Self]) {
        crate::activations::exp_f32_in_place(x)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    type Kernels = F64Kernels;

    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }

    #[inline]
    fn tanh_accurate(self) -> Self {
        <Self as nalgebra::ComplexField>::tanh(self)
    }

    #[inline]
    fn exp_accurate(self) -> Self {
        <Self as nalgebra::ComplexField>::exp(self)
    }

    #[inline]
    fn sigmoid_accurate(self) -> Self {
        // eˣ/(1 + eˣ) for negative x, so that no intermediate overflows.
        if self >= 0.0 {
            1.0 / (1.0 + <Self as nalgebra::ComplexField>::exp(-self))
        } else {
            let e = <Self as nalgebra::ComplexField>::exp(self);
            e / (1.0 + e)
        }
    }
}

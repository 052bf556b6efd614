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
}

//! Flat views of parameter structs, and values that have a `const` zero.

use crate::Real;
use nalgebra::{ArrayStorage, SMatrix};

/// A type with a zero value usable in `const` and `static` items.
///
/// Lets a network, its gradients and its tape live in `static` storage on targets with no
/// allocator, and gives every generated type a zero that is not built at run time.
pub trait ConstZero: Sized {
    /// The value with every scalar `0.0`.
    const ZERO: Self;
}

impl<T: Real, const R: usize, const C: usize> ConstZero for SMatrix<T, R, C> {
    const ZERO: Self = SMatrix::from_array_storage(ArrayStorage([[T::ZERO; R]; C]));
}

impl ConstZero for () {
    const ZERO: Self = ();
}

/// A type whose all-zero bit pattern is a valid value (its [`ConstZero::ZERO`]), so that it
/// can be created zeroed directly on the heap, whatever its size.
///
/// # Safety
/// Every field must be zeroable in the same sense: IEEE floats, integers, nalgebra static
/// matrices of those, `()`, arrays and `repr(C)` structs of zeroable types. No references,
/// no `NonZero`, no enums without a zero discriminant.
pub unsafe trait Zeroable: ConstZero {
    /// A zeroed value on the heap, built in place: never on the stack, whatever its size.
    #[cfg(feature = "alloc")]
    fn new_boxed() -> alloc::boxed::Box<Self> {
        let zeroed = alloc::boxed::Box::<Self>::new_zeroed();
        // SAFETY: by the trait's contract, all-zero bytes are a valid `Self`.
        unsafe { zeroed.assume_init() }
    }
}

// SAFETY: `R * C` IEEE floats (see `Real`), whose zero bits are `0.0`.
unsafe impl<T: Real, const R: usize, const C: usize> Zeroable for SMatrix<T, R, C> {}

// SAFETY: a zero-sized type.
unsafe impl Zeroable for () {}

macro_rules! zeroable_integers {
    ($($int:ty),*) => {$(
        impl ConstZero for $int {
            const ZERO: Self = 0;
        }
        // SAFETY: every bit pattern of an integer is valid; zero bits are 0.
        unsafe impl Zeroable for $int {}
    )*};
}

zeroable_integers!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl<Z: ConstZero, const N: usize> ConstZero for [Z; N] {
    const ZERO: Self = [Z::ZERO; N];
}

// SAFETY: an array of zeroable values is zeroable.
unsafe impl<Z: Zeroable, const N: usize> Zeroable for [Z; N] {}

/// A parameter (or gradient) struct that starts, in memory, with exactly [`Params::LEN`]
/// scalars of `T` in a row, so that they can be viewed as one slice.
///
/// Optimizers, gradient checking and weight I/O are written once, over these slices, for
/// every generated network: a network and its gradient struct have the same layout, so the
/// `i`-th scalar of one is the gradient of the `i`-th scalar of the other.
///
/// A network's non-trainable state (running statistics, a dropout generator) may follow the
/// parameters in the same struct: it is not part of the slice, so optimizers never touch it.
///
/// # Safety
/// An implementor must be `#[repr(C)]` (or `#[repr(transparent)]`) and start with fields that
/// are nalgebra static matrices of `T` or other `Params<T>` types, holding exactly `LEN`
/// values of `T` with no padding; only zero-sized or non-trainable fields may follow.
/// (`size_of::<Self>() >= LEN * size_of::<T>()` is also checked when the slice methods are
/// compiled.)
pub unsafe trait Params<T: Real>: Zeroable {
    /// Number of scalars.
    const LEN: usize;

    /// All scalars, in declaration order (each matrix column-major).
    #[inline]
    fn as_slice(&self) -> &[T] {
        const { assert!(size_of::<Self>() >= Self::LEN * size_of::<T>()) };
        // SAFETY: by the trait's contract `Self` starts with `LEN` contiguous, initialised
        // `T`s, and its alignment is at least `T`'s (a repr(C) struct starting with `T`s).
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<T>(), Self::LEN) }
    }

    /// All scalars, mutable, in declaration order (each matrix column-major).
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [T] {
        const { assert!(size_of::<Self>() >= Self::LEN * size_of::<T>()) };
        // SAFETY: as in `as_slice`; every bit pattern written through `&mut [T]` is a valid `T`.
        unsafe { core::slice::from_raw_parts_mut((self as *mut Self).cast::<T>(), Self::LEN) }
    }

    /// Sets every scalar to zero in place (without building a value on the stack).
    #[inline]
    fn set_zero(&mut self) {
        self.as_mut_slice().fill(T::ZERO);
    }
}

// SAFETY: `Matrix` is repr(C) over `ArrayStorage`, which is repr(transparent) over
// `[[T; R]; C]`: `R * C` contiguous `T`s.
unsafe impl<T: Real, const R: usize, const C: usize> Params<T> for SMatrix<T, R, C> {
    const LEN: usize = R * C;
}

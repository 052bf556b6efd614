//! Flat views of parameter structs, and values that have a `const` zero.
//!
//! A struct implements the three traits by deriving them (`#[derive(Params, ConstZero,
//! Zeroable)]`, from `nn_macros`), which checks the contracts below instead of trusting
//! them; the impls here are the leaves the derived ones are built from.

use crate::Real;
use core::marker::PhantomData;
use nalgebra::{ArrayStorage, SMatrix};

/// A type with a zero value usable in `const` and `static` items.
///
/// Lets a network, its gradients and its tape live in `static` storage on targets with no
/// allocator, and gives every generated type a zero that is not built at run time.
/// `#[derive(ConstZero)]` builds a struct's from its fields'.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `const` zero value",
    label = "not `ConstZero`",
    note = "fields of a struct deriving `ConstZero` are matrices, arrays, numbers, \
            `PhantomData`, or structs deriving `ConstZero`"
)]
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

impl<T: Real> ConstZero for T {
    const ZERO: Self = <T as Real>::ZERO;
}

impl<U: ?Sized> ConstZero for PhantomData<U> {
    const ZERO: Self = PhantomData;
}

/// A type whose all-zero bit pattern is a valid value (its [`ConstZero::ZERO`]), so that it
/// can be created zeroed directly on the heap, whatever its size.
///
/// `#[derive(Zeroable)]` implements it for a struct whose fields are all `Zeroable` (it
/// checks them).
///
/// # Safety
/// Every field must be zeroable in the same sense: IEEE floats, integers, nalgebra static
/// matrices of those, `()`, `PhantomData`, arrays and structs of zeroable types. No
/// references, no `NonZero`, no enums without a zero discriminant.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not known to be valid as all-zero bytes",
    label = "not `Zeroable`",
    note = "fields of a struct deriving `Zeroable` are matrices, arrays, numbers, \
            `PhantomData`, or structs deriving `Zeroable`"
)]
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

// SAFETY: `Real` is sealed: `f32` and `f64`, whose all-zero bits are `0.0`.
unsafe impl<T: Real> Zeroable for T {}

// SAFETY: a zero-sized type.
unsafe impl<U: ?Sized> Zeroable for PhantomData<U> {}

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
/// `#[derive(Params)]` implements it for a `#[repr(C)]` struct: `LEN` is the sum of the
/// fields' (those marked `#[nn(skip)]` excepted), and const assertions check the layout.
///
/// # Safety
/// An implementor must be `#[repr(C)]` (or `#[repr(transparent)]`) and start with fields that
/// are nalgebra static matrices of `T` or other `Params<T>` types, holding exactly `LEN`
/// values of `T` with no padding; only zero-sized or non-trainable fields may follow.
/// (`size_of::<Self>() >= LEN * size_of::<T>()` and an alignment of at least `T`'s are also
/// checked when the slice methods are compiled.)
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not hold parameters of type `{T}`",
    label = "not `Params<{T}>`",
    note = "a parameter field is an `SMatrix<{T}, R, C>`, an array `[{T}; N]`, or a struct \
            deriving `Params`; mark a field that is not a parameter `#[nn(skip)]` and put it \
            after the parameters"
)]
pub unsafe trait Params<T: Real>: Zeroable {
    /// Number of scalars.
    const LEN: usize;

    /// All scalars, in declaration order (each matrix column-major).
    #[inline]
    fn as_slice(&self) -> &[T] {
        const { assert!(size_of::<Self>() >= Self::LEN * size_of::<T>()) };
        const { assert!(align_of::<Self>() >= align_of::<T>()) };
        // SAFETY: by the trait's contract `Self` starts with `LEN` contiguous, initialised
        // `T`s, and its alignment is at least `T`'s (asserted above: even an empty slice
        // needs an aligned pointer).
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<T>(), Self::LEN) }
    }

    /// All scalars, mutable, in declaration order (each matrix column-major).
    #[inline]
    fn as_mut_slice(&mut self) -> &mut [T] {
        const { assert!(size_of::<Self>() >= Self::LEN * size_of::<T>()) };
        const { assert!(align_of::<Self>() >= align_of::<T>()) };
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

// SAFETY: `N` contiguous `T`s, aligned for `T`.
unsafe impl<T: Real, const N: usize> Params<T> for [T; N] {
    const LEN: usize = N;
}

// SAFETY: zero-sized, no parameter; the slice methods assert the alignment, which a struct
// with only markers lacks (`#[derive(Params)]` asks for an `[T; 0]` field then).
unsafe impl<T: Real, U: ?Sized> Params<T> for PhantomData<U> {
    const LEN: usize = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::geometry::{Geometry1d, Geometry2d, PoolGeometry1dOf, PoolGeometry2dOf};
    use crate::layers::*;
    use crate::{ConstZero, Params, Zeroable};
    use crate::{Layer, TensorInfo};

    /// Asserts that `L`'s (derived) `LEN` is `expected`, the count each layer's hand-written
    /// impl stated before the derive, and the sum of its tensors' lengths.
    #[track_caller]
    fn check_len<L: Layer<f32, IN, OUT>, const IN: usize, const OUT: usize>(expected: usize) {
        assert_eq!(L::LEN, expected);
        assert_eq!(
            L::TENSORS.iter().map(TensorInfo::len).sum::<usize>(),
            expected
        );
        assert_eq!(L::ZERO.as_slice().len(), expected);
    }

    #[test]
    fn every_built_in_layer_has_its_parameter_count() {
        type Conv = Geometry2d<3, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1>;
        type Conv1 = Geometry1d<2, 20, 5, 1, 2, 3>;
        check_len::<Dense<f32, 3, 2>, 3, 2>(2 * 3 + 2);
        check_len::<Conv2d<f32, 4, 27, 4, 192, 256, Conv>, 192, 256>(4 * 27 + 4);
        check_len::<Conv2d<f32, 4, 27, 0, 192, 256, Conv>, 192, 256>(4 * 27);
        check_len::<Conv1d<f32, 4, 10, 4, 40, 48, Conv1>, 40, 48>(4 * 10 + 4);
        check_len::<MaxPool2d<f32, 16, 4, PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>>, 16, 4>(0);
        check_len::<MaxPool1d<f32, 10, 4, PoolGeometry1dOf<2, 5, 2, 2>>, 10, 4>(0);
        check_len::<AvgPool2d<f32, 16, 4, PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>>, 16, 4>(0);
        check_len::<AvgPool1d<f32, 10, 4, PoolGeometry1dOf<2, 5, 2, 2>>, 10, 4>(0);
        check_len::<GlobalAvgPool<f32, 3, 4, 12>, 12, 3>(0);
        check_len::<BatchNorm<f32, 3, 4, 12, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS>, 12, 12>(
            2 * 3,
        );
        check_len::<Dropout<f32, 5, 0>, 5, 5>(0);
        check_len::<LayerNorm<f32, 4, 3, 12, 0>, 12, 12>(2 * 4);
        check_len::<Embedding<f32, 10, 4, 3, 12>, 3, 12>(10 * 4);
        check_len::<SinusoidalPositions<f32, 4, 5, 20>, 20, 20>(0);
        check_len::<LearnedPositions<f32, 4, 5, 20>, 20, 20>(4 * 5);
        check_len::<Rnn<f32, 3, 4, 5, 15, 20, false, false>, 15, 20>(4 * 3 + 4 * 4 + 2 * 4);
        check_len::<Gru<f32, 3, 4, 12, 5, 15, 20, false, false>, 15, 20>(12 * 3 + 12 * 4 + 2 * 12);
        check_len::<Lstm<f32, 3, 4, 16, 5, 15, 20, false, false>, 15, 20>(16 * 3 + 16 * 4 + 2 * 16);
        check_len::<MultiHeadAttention<f32, 8, 2, 5, 40, 24, false>, 40, 40>(
            24 * 8 + 24 + 8 * 8 + 8,
        );
        check_len::<PositionWise<f32, Dense<f32, 3, 2>, 3, 2, 4, 12, 8>, 12, 8>(2 * 3 + 2);
    }

    /// Parameters of several kinds, then a field that is not one.
    #[derive(Clone, Debug, PartialEq, Params, ConstZero, Zeroable)]
    #[repr(C)]
    struct Block<T: Real> {
        first: Dense<T, 2, 3>,
        second: SMatrix<T, 2, 2>,
        scale: [T; 2],
        _marker: PhantomData<T>,
        #[nn(skip)]
        steps: u64,
    }

    #[test]
    fn derived_params_are_the_fields_in_order_and_skip_the_rest() {
        assert_eq!(<Block<f32> as Params<f32>>::LEN, (3 * 2 + 3) + 4 + 2);
        let mut block = Block::<f64>::ZERO;
        assert_eq!(block.steps, 0);
        block.first.bias[2] = 1.0;
        block.second[(1, 0)] = 2.0;
        block.scale[1] = 3.0;
        block.steps = 7;
        let slice = block.as_slice();
        assert_eq!(slice.len(), 15);
        assert_eq!((slice[8], slice[10], slice[14]), (1.0, 2.0, 3.0));
        assert_eq!(slice.iter().sum::<f64>(), 6.0);
        block.set_zero();
        assert_eq!(block.steps, 7, "a skipped field is not a parameter");
        assert_eq!(block.scale, [0.0; 2]);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn derived_zeroable_boxes_the_zero() {
        assert_eq!(*Block::<f32>::new_boxed(), Block::ZERO);
    }

    /// A tuple struct, and a parameter whose type is a type parameter.
    #[derive(Params, ConstZero, Zeroable)]
    #[repr(transparent)]
    struct Wrapped<T: Real, L>(L, PhantomData<T>);

    #[derive(Params, ConstZero, Zeroable)]
    #[repr(C)]
    struct Twice<T, L>
    where
        T: Real,
    {
        a: L,
        b: Wrapped<T, L>,
    }

    #[test]
    fn derives_on_tuple_structs_and_generic_fields() {
        type Inner = Dense<f32, 1, 2>;
        assert_eq!(<Wrapped<f32, Inner> as Params<f32>>::LEN, 4);
        let mut twice = Twice::<f32, Inner>::ZERO;
        twice.b.0.bias[1] = 5.0;
        assert_eq!(twice.as_slice(), [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]);
    }

    #[test]
    fn leaves_are_zeroable() {
        assert_eq!(<f32 as ConstZero>::ZERO, 0.0);
        assert_eq!(<[f64; 3]>::ZERO, [0.0; 3]);
        assert_eq!(<[f64; 3] as Params<f64>>::LEN, 3);
        assert_eq!(<PhantomData<u8> as Params<f64>>::LEN, 0);
    }
}

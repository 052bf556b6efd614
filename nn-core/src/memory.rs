//! Storage planned by the `network!` macro: the slots of a workspace or tape, and views of
//! the values that live in them.
//!
//! The macro gives each intermediate value of a network (a batch of activations, a gradient,
//! a layer's scratch memory) a *slot*: a field `SMatrix<T, SIZE, B>` of the generated
//! workspace, shared by values that are never live at the same time. A value of `N` scalars
//! per sample uses the first `N·B` scalars of its slot, seen as an `N × B` matrix through
//! [`view`] and [`view_mut`]. Views of different slots are borrows of different fields, so
//! the compiler checks that the values a step reads and writes do not alias.

use crate::Real;
use nalgebra::SMatrix;

/// A network's workspace or tape, where a pass leaves the outputs.
pub trait Outputs<O> {
    /// The outputs of the last forward pass: one matrix, or a tuple of them.
    fn output(&self) -> &O;
}

/// What generic code reads and writes of a training tape: the outputs, their gradients (where
/// `backward` starts) and the inputs' gradients (where it ends).
pub trait TapeIo<I, O>: Outputs<O> {
    /// `∂L/∂output`, to fill before `backward`.
    fn d_output_mut(&mut self) -> &mut O;

    /// The outputs and `∂L/∂output` at once: a loss reads one and writes the other.
    fn output_and_d_output(&mut self) -> (&O, &mut O);

    /// `∂L/∂input`, as the last `backward` left it.
    fn d_input(&self) -> &I;
}

/// The first `N·B` scalars of `slot`, as an `N × B` matrix (one sample per column).
///
/// `N` must not exceed the slot's `M` (a compile-time error otherwise).
#[inline(always)]
pub fn view<T: Real, const N: usize, const M: usize, const B: usize>(
    slot: &SMatrix<T, M, B>,
) -> &SMatrix<T, N, B> {
    const { assert!(N <= M, "a value is larger than its slot") };
    // SAFETY: a static matrix is `repr(C)` over `[[T; R]; C]`, so `slot` is `M·B` contiguous,
    // initialised `T`s and an `N × B` matrix is the first `N·B` of them, with the same
    // alignment. The view borrows the slot, so the slot cannot change while it is alive.
    unsafe { &*(slot as *const SMatrix<T, M, B>).cast::<SMatrix<T, N, B>>() }
}

/// The first `N·B` scalars of `slot`, as a mutable `N × B` matrix (one sample per column).
///
/// `N` must not exceed the slot's `M` (a compile-time error otherwise).
#[inline(always)]
pub fn view_mut<T: Real, const N: usize, const M: usize, const B: usize>(
    slot: &mut SMatrix<T, M, B>,
) -> &mut SMatrix<T, N, B> {
    const { assert!(N <= M, "a value is larger than its slot") };
    // SAFETY: as in `view`; the exclusive borrow of the slot makes the view exclusive, and
    // every bit pattern written through it is a valid `T`.
    unsafe { &mut *(slot as *mut SMatrix<T, M, B>).cast::<SMatrix<T, N, B>>() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConstZero;

    #[test]
    fn a_view_is_the_prefix_of_the_slot_in_column_major_order() {
        let mut slot = SMatrix::<f64, 5, 2>::ZERO;
        {
            let value: &mut SMatrix<f64, 3, 2> = view_mut(&mut slot);
            *value = SMatrix::from_column_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        }
        assert_eq!(&slot.as_slice()[..6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(&slot.as_slice()[6..], &[0.0; 4]);
        let again: &SMatrix<f64, 3, 2> = view(&slot);
        assert_eq!(again[(2, 1)], 6.0);
        let whole: &SMatrix<f64, 5, 2> = view(&slot);
        assert_eq!(whole, &slot);
    }
}

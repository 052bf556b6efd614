//! Storage planned by the `network!` macro: the slots of a workspace or tape, and views of
//! the values that live in them.
//!
//! The macro gives each intermediate value of a network (a batch of activations, a gradient,
//! a layer's scratch memory) a *slot*: a field `SMatrix<T, SIZE, B>` of the generated
//! workspace, shared by values that are never live at the same time. A value of `N` scalars
//! per sample uses the first `N·B` scalars of its slot, seen as an `N × B` matrix through
//! [`view`] and [`view_mut`]. Views of different slots are borrows of different fields, so
//! the compiler checks that the values a step reads and writes do not alias.
//!
//! A layer's scratch memory arrives as a slice (`Layer::SCRATCH · B` scalars); the layer
//! [`carve`]s it into the matrices its passes work in, and sees one sample of a batch in
//! place, as a matrix of its own shape, through [`sample`] and [`sample_mut`].

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

/// Takes the first `R·C` scalars of `scratch` as an `R × C` matrix and leaves the rest in
/// `scratch`: how a layer splits its scratch memory into the matrices its passes use.
///
/// Panics if `scratch` holds fewer than `R·C` scalars (a layer using more scratch memory
/// than its `Layer::SCRATCH` declares).
#[inline(always)]
pub fn carve<'a, T: Real, const R: usize, const C: usize>(
    scratch: &mut &'a mut [T],
) -> &'a mut SMatrix<T, R, C> {
    let len = R * C;
    assert!(
        scratch.len() >= len,
        "scratch memory: {len} scalars wanted, {} left (is Layer::SCRATCH too small?)",
        scratch.len()
    );
    let (matrix, rest) = core::mem::take(scratch).split_at_mut(len);
    *scratch = rest;
    matrix_mut(matrix)
}

/// Column `j` of `batch` (sample `j`, `N = R·C` scalars) as an `R × C` matrix, in place:
/// a sequence `[S, D]` as the `D × S` matrix of its tokens.
#[inline(always)]
pub fn sample<T: Real, const N: usize, const B: usize, const R: usize, const C: usize>(
    batch: &SMatrix<T, N, B>,
    j: usize,
) -> &SMatrix<T, R, C> {
    const { assert!(R * C == N, "a sample seen as a matrix of another size") };
    let column = &batch.as_slice()[j * N..(j + 1) * N];
    // SAFETY: `column` is `R·C` contiguous, initialised `T`s: the layout of a static
    // `R × C` matrix (`repr(C)` over `repr(transparent)` `[[T; R]; C]`), with `T`'s
    // alignment. The result borrows `batch`.
    unsafe { &*column.as_ptr().cast::<SMatrix<T, R, C>>() }
}

/// Column `j` of `batch` as a mutable `R × C` matrix, in place (see [`sample`]).
#[inline(always)]
pub fn sample_mut<T: Real, const N: usize, const B: usize, const R: usize, const C: usize>(
    batch: &mut SMatrix<T, N, B>,
    j: usize,
) -> &mut SMatrix<T, R, C> {
    const { assert!(R * C == N, "a sample seen as a matrix of another size") };
    matrix_mut(&mut batch.as_mut_slice()[j * N..(j + 1) * N])
}

/// The first `R·C` scalars of `scalars` as an `R × C` matrix (the caller checked the length).
#[inline(always)]
fn matrix_mut<T: Real, const R: usize, const C: usize>(scalars: &mut [T]) -> &mut SMatrix<T, R, C> {
    assert!(scalars.len() >= R * C);
    // SAFETY: as in `sample`; the exclusive borrow of the scalars makes the matrix exclusive,
    // and every bit pattern written through it is a valid `T`.
    unsafe { &mut *scalars.as_mut_ptr().cast::<SMatrix<T, R, C>>() }
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

    #[test]
    fn carving_takes_consecutive_matrices_off_the_front() {
        let mut storage = [0.0f64; 11];
        let mut scratch = &mut storage[..];
        let a: &mut SMatrix<f64, 2, 2> = carve(&mut scratch);
        let b: &mut SMatrix<f64, 3, 2> = carve(&mut scratch);
        assert_eq!(scratch.len(), 1);
        a.fill(1.0);
        b[(2, 1)] = 2.0;
        assert_eq!(
            storage,
            [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0]
        );
    }

    #[test]
    #[should_panic(expected = "scratch memory: 6 scalars wanted, 5 left")]
    fn carving_more_than_is_left_panics() {
        let mut storage = [0.0f64; 5];
        let mut scratch = &mut storage[..];
        let _: &mut SMatrix<f64, 3, 2> = carve(&mut scratch);
    }

    #[test]
    fn a_sample_is_its_column_seen_as_a_matrix() {
        let mut batch = SMatrix::<f64, 6, 2>::from_fn(|i, j| (10 * j + i) as f64);
        let second: &SMatrix<f64, 2, 3> = sample(&batch, 1);
        assert_eq!(second[(1, 2)], 15.0);
        let first: &mut SMatrix<f64, 2, 3> = sample_mut(&mut batch, 0);
        first[(0, 1)] = -1.0;
        assert_eq!(batch[(2, 0)], -1.0);
    }
}

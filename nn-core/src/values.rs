//! Inputs and outputs of a network: one matrix, or a tuple of them.

use crate::{ConstZero, Real, Zeroable};
use nalgebra::SMatrix;

/// The input or output of a [`Network`](crate::Network): an `SMatrix<T, N, B>` (one sample
/// per column) or, for several inputs or outputs, a tuple of them.
///
/// Gives generic code (gradient checking, losses) element access across the tuple.
pub trait Values<T: Real>: ConstZero + Clone {
    /// Number of scalars in all the matrices together.
    const LEN: usize;

    /// The `i`-th scalar, counting through the matrices in order (each column-major).
    fn get(&self, i: usize) -> T;

    /// A mutable reference to the `i`-th scalar.
    fn get_mut(&mut self, i: usize) -> &mut T;

    /// `Σ self_i · other_i` over every scalar.
    fn dot(&self, other: &Self) -> T {
        let mut sum = T::ZERO;
        for i in 0..Self::LEN {
            sum += self.get(i) * other.get(i);
        }
        sum
    }
}

/// A batch of samples, one per column: an `SMatrix<T, N, B>`, or a tuple of them for a
/// network with several inputs or outputs (all with `B` columns). What the trainer fills
/// from a data set of single samples, and reads the outputs of.
pub trait Batch<T: Real>: Values<T> + Zeroable {
    /// One sample: `SMatrix<T, N, 1>`, or the tuple of them.
    type Sample: Values<T>;

    /// Number of columns (samples), `B`.
    const COLUMNS: usize;

    /// Copies `sample` into column `j`.
    fn set_column(&mut self, j: usize, sample: &Self::Sample);

    /// Sets column `j` to zero.
    fn clear_column(&mut self, j: usize);

    /// Copies column `j`, every matrix's in order, into `out` (of `Self::Sample::LEN`
    /// values).
    fn copy_column(&self, j: usize, out: &mut [T]);
}

impl<T: Real, const R: usize, const C: usize> Batch<T> for SMatrix<T, R, C> {
    type Sample = SMatrix<T, R, 1>;

    const COLUMNS: usize = C;

    #[inline]
    fn set_column(&mut self, j: usize, sample: &SMatrix<T, R, 1>) {
        self.set_column(j, sample);
    }

    #[inline]
    fn clear_column(&mut self, j: usize) {
        self.column_mut(j).fill(T::ZERO);
    }

    #[inline]
    fn copy_column(&self, j: usize, out: &mut [T]) {
        out.copy_from_slice(self.column(j).as_slice());
    }
}

impl<T: Real, const R: usize, const C: usize> Values<T> for SMatrix<T, R, C> {
    const LEN: usize = R * C;

    #[inline]
    fn get(&self, i: usize) -> T {
        self.as_slice()[i]
    }

    #[inline]
    fn get_mut(&mut self, i: usize) -> &mut T {
        &mut self.as_mut_slice()[i]
    }
}

macro_rules! tuple_values {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: ConstZero),+> ConstZero for ($($name,)+) {
            const ZERO: Self = ($($name::ZERO,)+);
        }

        // SAFETY: every field is zeroable, so all-zero bytes make every field its zero (the
        // tuple's padding, wherever it is, holds no value).
        unsafe impl<$($name: Zeroable),+> Zeroable for ($($name,)+) {}

        impl<T: Real, $($name: Values<T>),+> Values<T> for ($($name,)+) {
            const LEN: usize = 0 $(+ $name::LEN)+;

            fn get(&self, mut i: usize) -> T {
                $(
                    if i < $name::LEN {
                        return self.$idx.get(i);
                    }
                    i -= $name::LEN;
                )+
                panic!("index {i} past the end of the values")
            }

            fn get_mut(&mut self, mut i: usize) -> &mut T {
                $(
                    if i < $name::LEN {
                        return self.$idx.get_mut(i);
                    }
                    i -= $name::LEN;
                )+
                panic!("index {i} past the end of the values")
            }
        }
    };
}

macro_rules! tuple_batch {
    ($first:ident $first_idx:tt $(, $name:ident $idx:tt)*) => {
        impl<T: Real, $first: Batch<T>, $($name: Batch<T>),*> Batch<T> for ($first, $($name,)*) {
            type Sample = ($first::Sample, $($name::Sample,)*);

            const COLUMNS: usize = $first::COLUMNS;

            fn set_column(&mut self, j: usize, sample: &Self::Sample) {
                self.$first_idx.set_column(j, &sample.$first_idx);
                $( self.$idx.set_column(j, &sample.$idx); )*
            }

            fn clear_column(&mut self, j: usize) {
                self.$first_idx.clear_column(j);
                $( self.$idx.clear_column(j); )*
            }

            fn copy_column(&self, j: usize, out: &mut [T]) {
                let (part, mut rest) = out.split_at_mut($first::Sample::LEN);
                self.$first_idx.copy_column(j, part);
                $(
                    let (part, tail) = rest.split_at_mut($name::Sample::LEN);
                    self.$idx.copy_column(j, part);
                    rest = tail;
                )*
                let _ = rest;
            }
        }
    };
}

tuple_values!(A 0, B 1);
tuple_values!(A 0, B 1, C 2);
tuple_values!(A 0, B 1, C 2, D 3);
tuple_values!(A 0, B 1, C 2, D 3, E 4);
tuple_values!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_values!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_values!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

tuple_batch!(A 0, B 1);
tuple_batch!(A 0, B 1, C 2);
tuple_batch!(A 0, B 1, C 2, D 3);
tuple_batch!(A 0, B 1, C 2, D 3, E 4);
tuple_batch!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_batch!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_batch!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuple_indexing_runs_through_the_matrices_in_order() {
        let mut v: (SMatrix<f64, 2, 1>, SMatrix<f64, 3, 1>) = ConstZero::ZERO;
        for i in 0..5 {
            *v.get_mut(i) = i as f64;
        }
        assert_eq!(v.0.as_slice(), &[0.0, 1.0]);
        assert_eq!(v.1.as_slice(), &[2.0, 3.0, 4.0]);
        assert_eq!(v.dot(&v), 30.0);
    }

    #[test]
    fn a_tuple_batch_sets_and_reads_a_column_of_every_matrix() {
        let mut batch: (SMatrix<f64, 2, 3>, SMatrix<f64, 1, 3>) = ConstZero::ZERO;
        let sample = (
            SMatrix::<f64, 2, 1>::new(1.0, 2.0),
            SMatrix::<f64, 1, 1>::new(3.0),
        );
        batch.set_column(1, &sample);
        assert_eq!(batch.0.as_slice(), &[0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
        assert_eq!(batch.1.as_slice(), &[0.0, 3.0, 0.0]);
        let mut out = [0.0; 3];
        batch.copy_column(1, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0]);
        batch.clear_column(1);
        assert_eq!(batch, ConstZero::ZERO);
        assert_eq!(
            <(SMatrix<f64, 2, 3>, SMatrix<f64, 1, 3>) as Batch<f64>>::COLUMNS,
            3
        );
    }
}

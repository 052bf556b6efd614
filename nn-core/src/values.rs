//! Inputs and outputs of a network: one matrix, or a tuple of them.

use crate::{ConstZero, Real};
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

tuple_values!(A 0, B 1);
tuple_values!(A 0, B 1, C 2);
tuple_values!(A 0, B 1, C 2, D 3);
tuple_values!(A 0, B 1, C 2, D 3, E 4);
tuple_values!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_values!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_values!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

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
}

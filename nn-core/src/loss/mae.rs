//! Mean absolute error.

use super::ElementwiseLoss;
use crate::Real;

/// Mean absolute error, PyTorch's `L1Loss` (`reduction="mean"`):
/// `L = 1/(n·N) Σ_{i,j} |y_ij − t_ij|`, the mean over all `n·N` counted elements.
///
/// Gradient: `∂L/∂y_ij = sign(y_ij − t_ij)/(n·N)`, with `sign(0) = 0` at the kink, as PyTorch.
///
/// Targets: `SMatrix<T, N, 1>` per sample, or `T` when `N = 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mae;

impl<T: Real> ElementwiseLoss<T> for Mae {
    #[inline]
    fn value(&self, y: T, t: T) -> T {
        (y - t).abs()
    }

    #[inline]
    fn derivative(&self, y: T, t: T) -> T {
        // Not `signum`, which is ±1 at ±0.
        let d = y - t;
        if d > T::ZERO {
            T::ONE
        } else if d < T::ZERO {
            -T::ONE
        } else {
            T::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::testing::{check_f32_matches_f64, check_partial_batch, gradient_error};
    use crate::{ConstZero, Loss};
    use nalgebra::{SMatrix, Vector2};

    fn example() -> (SMatrix<f64, 2, 3>, [Vector2<f64>; 3]) {
        let y = SMatrix::<f64, 2, 3>::from_column_slice(&[0.5, -1.0, 2.0, 0.25, -3.0, 1.5]);
        let t = [
            Vector2::new(1.0, 0.0),
            Vector2::new(1.5, -0.75),
            Vector2::new(-1.0, 1.0),
        ];
        (y, t)
    }

    #[test]
    fn value_matches_hand_computation() {
        let (y, t) = example();
        // |d| = 0.5, 1, 0.5, 1, 2, 0.5: Σ = 5.5, over 6 elements.
        assert_eq!(Mae.loss(&y, &t), 5.5 / 6.0);
        let mut grad = SMatrix::ZERO;
        assert_eq!(Mae.loss_and_grad(&y, &t, &mut grad), 5.5 / 6.0);
        let signs = SMatrix::<f64, 2, 3>::from_column_slice(&[-1.0, -1.0, 1.0, 1.0, -1.0, 1.0]);
        assert_eq!(grad, signs * (1.0 / 6.0));
    }

    #[test]
    fn gradient_is_zero_at_the_kink() {
        let y = SMatrix::<f64, 1, 3>::new(1.0, -2.0, 0.0);
        let mut grad = SMatrix::ZERO;
        let value = Mae.loss_and_grad(&y, &[1.0, 0.0, -0.0], &mut grad);
        assert_eq!(value, 2.0 / 3.0);
        assert_eq!(grad, SMatrix::<f64, 1, 3>::new(0.0, -1.0 / 3.0, 0.0));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (y, t) = example();
        let error = gradient_error(&Mae, &y, &t);
        assert!(error < 1e-7, "{error}");
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let y = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, t) = example();
        check_partial_batch(&Mae, &y, &t);
    }

    #[test]
    fn f32_matches_f64() {
        let (y, t) = example();
        let t32 = t.map(|t| t.map(|x| x as f32));
        check_f32_matches_f64(&Mae, &y, &t, &t32, 1e-6);
        let y = SMatrix::<f64, 1, 2>::new(0.1, 0.7);
        check_f32_matches_f64(&Mae, &y, &[0.3, -0.2], &[0.3f32, -0.2], 1e-6);
    }
}

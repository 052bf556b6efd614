//! Mean squared error, in the lecture's form with the factor ½.

use super::ElementwiseLoss;
use crate::Real;

/// Mean squared error with the factor ½: `L = 1/(n·N) Σ_{i,j} ½(y_ij − t_ij)²`, the mean over
/// all `n·N` counted elements (`n = targets.len()` samples of `N` features).
///
/// Gradient: `∂L/∂y_ij = (y_ij − t_ij)/(n·N)`; for a single output, `L = 1/n Σ ½(y_j − t_j)²`
/// and `∂L/∂y_j = (y_j − t_j)/n`.
///
/// **This is ½ × PyTorch's `MSELoss`** (`reduction="mean"`, also the mean over all elements),
/// and its gradient is ½ × theirs: to reproduce a PyTorch run, double the learning rate, or
/// double this loss.
///
/// Targets: `SMatrix<T, N, 1>` per sample, or `T` when `N = 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mse;

impl<T: Real> ElementwiseLoss<T> for Mse {
    #[inline]
    fn value(&self, y: T, t: T) -> T {
        let d = y - t;
        T::of(0.5) * d * d
    }

    #[inline]
    fn derivative(&self, y: T, t: T) -> T {
        y - t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::testing::{check_f32_matches_f64, check_partial_batch, gradient_error};
    use crate::{ConstZero, Loss};
    use nalgebra::{SMatrix, Vector2};

    /// 3 samples of 2 features, and their targets.
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
        // differences −0.5, −1, 0.5, 1, −2, 0.5: Σ½d² = ½·6.75 = 3.375, over 6 elements.
        assert_eq!(Mse.loss(&y, &t), 0.5625);
        let mut grad = SMatrix::ZERO;
        assert_eq!(Mse.loss_and_grad(&y, &t, &mut grad), 0.5625);
        // (y − t)/6
        let expected = SMatrix::<f64, 2, 3>::from_column_slice(&[-0.5, -1.0, 0.5, 1.0, -2.0, 0.5]);
        assert!((grad - expected / 6.0).amax() < 1e-16, "{grad}");
    }

    #[test]
    fn is_half_of_pytorch_mse() {
        // PyTorch MSELoss on the example: mean of d² = 6.75/6 = 1.125.
        let (y, t) = example();
        assert_eq!(2.0 * Mse.loss(&y, &t), 1.125);
    }

    #[test]
    fn scalar_targets_match_vector_targets() {
        let y = SMatrix::<f64, 1, 4>::new(0.5, -1.0, 2.0, 3.0);
        let scalars = [1.0, 0.0, 2.5];
        let vectors = scalars.map(SMatrix::<f64, 1, 1>::new);
        // ½(0.25 + 1 + 0.25)/3 = 0.25
        assert_eq!(Mse.loss(&y, &scalars), 0.25);
        assert_eq!(Mse.loss(&y, &vectors), 0.25);
        let (mut g1, mut g2) = (SMatrix::ZERO, SMatrix::ZERO);
        Mse.loss_and_grad(&y, &scalars, &mut g1);
        Mse.loss_and_grad(&y, &vectors, &mut g2);
        assert_eq!(g1, g2);
        assert_eq!(g1, SMatrix::<f64, 1, 4>::new(-0.5, -1.0, -0.5, 0.0) / 3.0);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (y, t) = example();
        let error = gradient_error(&Mse, &y, &t);
        assert!(error < 1e-7, "{error}");
        let y = SMatrix::<f64, 1, 5>::new(0.3, -2.0, 7.5, 0.0, 1.0);
        let error = gradient_error(&Mse, &y, &[1.0, 2.0, -3.0, 0.1]);
        assert!(error < 1e-7, "{error}");
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let y = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, t) = example();
        check_partial_batch(&Mse, &y, &t);
    }

    #[test]
    fn empty_batch_is_nan_with_zero_gradient() {
        let y = SMatrix::<f64, 2, 2>::from_element(1.0);
        let mut grad = SMatrix::from_element(5.0);
        let no_targets: [Vector2<f64>; 0] = [];
        assert!(Mse.loss_and_grad(&y, &no_targets, &mut grad).is_nan());
        assert!(grad.iter().all(|&g| g == 0.0), "{grad}");
    }

    #[test]
    #[should_panic(expected = "targets for a batch of 2")]
    fn more_targets_than_columns_panics() {
        let y = SMatrix::<f64, 1, 2>::ZERO;
        Mse.loss(&y, &[1.0, 2.0, 3.0]);
    }

    #[test]
    fn f32_matches_f64() {
        let (y, t) = example();
        let t32 = t.map(|t| t.map(|x| x as f32));
        check_f32_matches_f64(&Mse, &y, &t, &t32, 1e-6);
    }
}

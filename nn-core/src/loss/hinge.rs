//! Binary hinge loss (the SVM loss) for targets ±1.

use super::ElementwiseLoss;
use crate::Real;

/// Binary hinge loss for targets `t = ±1`: `ℓ(y, t) = max(0, 1 − t·y)`, and
/// `L = 1/(n·N) Σ_{i,j} ℓ(y_ij, t_ij)`, the mean over all `n·N` counted elements (each feature
/// an independent binary classifier, `sign(y)` its prediction).
///
/// Subgradient: `∂L/∂y_ij = −t_ij/(n·N)` where the margin is violated (`1 − t·y > 0`), and `0`
/// otherwise, including at the kink `t·y = 1`.
///
/// PyTorch has no module for it: it is `torch.clamp(1 - t * y, min=0).mean()` (whose
/// gradient at the kink is `−t` rather than `0`), scikit-learn's `hinge_loss` for one
/// output. PyTorch's `HingeEmbeddingLoss` is a different loss (`y` for `t = 1`,
/// `max(0, margin − y)` for `t = −1`); for several classes see [`MultiMargin`](super::MultiMargin).
///
/// Targets: `SMatrix<T, N, 1>` per sample, or `T` when `N = 1`, with entries `±1` (not
/// checked; any `t` gives `max(0, 1 − t·y)`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Hinge;

impl<T: Real> ElementwiseLoss<T> for Hinge {
    #[inline]
    fn value(&self, y: T, t: T) -> T {
        // max(0, ·), but NaN for NaN: `T::max` would return 0 and hide a diverged output.
        let m = T::ONE - t * y;
        if m <= T::ZERO { T::ZERO } else { m }
    }

    #[inline]
    fn derivative(&self, y: T, t: T) -> T {
        if T::ONE - t * y > T::ZERO {
            -t
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
        let y = SMatrix::<f64, 2, 3>::from_column_slice(&[0.5, -1.5, 2.0, 0.25, -3.0, -0.75]);
        let t = [
            Vector2::new(1.0, -1.0),
            Vector2::new(-1.0, 1.0),
            Vector2::new(1.0, -1.0),
        ];
        (y, t)
    }

    #[test]
    fn value_matches_hand_computation() {
        let (y, t) = example();
        // t·y = 0.5, 1.5, −2, 0.25, −3, 0.75: ℓ = 0.5, 0, 3, 0.75, 4, 0.25; Σ = 8.5, over 6.
        let mut grad = SMatrix::ZERO;
        assert_eq!(Hinge.loss_and_grad(&y, &t, &mut grad), 8.5 / 6.0);
        assert_eq!(Hinge.loss(&y, &t), 8.5 / 6.0);
        // −t where violated (all but the second element).
        let expected = SMatrix::<f64, 2, 3>::from_column_slice(&[-1.0, 0.0, 1.0, -1.0, -1.0, 1.0]);
        assert_eq!(grad, expected * (1.0 / 6.0));
    }

    #[test]
    fn subgradient_is_zero_at_the_kink() {
        let y = SMatrix::<f64, 1, 2>::new(1.0, -1.0);
        let mut grad = SMatrix::from_element(7.0);
        assert_eq!(Hinge.loss_and_grad(&y, &[1.0, -1.0], &mut grad), 0.0);
        assert!(grad.iter().all(|&g| g == 0.0), "{grad}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (y, t) = example();
        let error = gradient_error(&Hinge, &y, &t);
        assert!(error < 1e-7, "{error}");
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let y = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, t) = example();
        check_partial_batch(&Hinge, &y, &t);
    }

    #[test]
    fn f32_matches_f64() {
        let (y, t) = example();
        let t32 = t.map(|t| t.map(|x| x as f32));
        check_f32_matches_f64(&Hinge, &y, &t, &t32, 1e-6);
        let y = SMatrix::<f64, 1, 3>::new(0.3, -0.1, 2.0);
        check_f32_matches_f64(&Hinge, &y, &[1.0, 1.0, -1.0], &[1.0f32, 1.0, -1.0], 1e-6);
    }
}

//! Huber loss: quadratic near the target, linear far from it.

use super::ElementwiseLoss;
use crate::Real;

/// Huber loss, PyTorch's `HuberLoss` (`reduction="mean"`, default `delta = 1.0`): with
/// `d = y − t`,
///
/// ```text
/// ℓ(d) = ½d²              if |d| < δ
///        δ·(|d| − ½δ)     otherwise
/// ```
///
/// and `L = 1/(n·N) Σ_{i,j} ℓ(y_ij − t_ij)`, the mean over all `n·N` counted elements.
///
/// Gradient: `∂L/∂y_ij = clamp(d_ij, −δ, δ)/(n·N)` (continuous: both pieces give `±δ` at
/// `|d| = δ`). With `δ = 1` this equals PyTorch's `SmoothL1Loss` (`beta = 1`); in general
/// `HuberLoss(δ) = δ·SmoothL1Loss(β = δ)`. `delta` must be positive.
///
/// Targets: `SMatrix<T, N, 1>` per sample, or `T` when `N = 1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Huber {
    /// `δ`, where the loss turns from quadratic to linear (`> 0`).
    pub delta: f64,
}

impl Default for Huber {
    fn default() -> Self {
        Huber { delta: 1.0 }
    }
}

impl<T: Real> ElementwiseLoss<T> for Huber {
    #[inline]
    fn value(&self, y: T, t: T) -> T {
        let delta = T::of(self.delta);
        let d = (y - t).abs();
        if d < delta {
            T::of(0.5) * d * d
        } else {
            delta * (d - T::of(0.5) * delta)
        }
    }

    #[inline]
    fn derivative(&self, y: T, t: T) -> T {
        let delta = T::of(self.delta);
        let d = y - t;
        if d > delta {
            delta
        } else if d < -delta {
            -delta
        } else {
            d
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
    fn default_delta_is_one() {
        assert_eq!(Huber::default(), Huber { delta: 1.0 });
    }

    #[test]
    fn value_matches_hand_computation() {
        let (y, t) = example();
        // d = −0.5, −1, 0.5, 1, −2, 0.5.
        // δ = 1: 0.125, 0.5, 0.125, 0.5, 1.5, 0.125; Σ = 2.875, over 6.
        assert_eq!(Huber::default().loss(&y, &t), 2.875 / 6.0);
        // δ = 0.75: 0.125, 0.46875, 0.125, 0.46875, 1.21875, 0.125; Σ = 2.53125, over 6.
        let huber = Huber { delta: 0.75 };
        assert_eq!(huber.loss(&y, &t), 2.53125 / 6.0);
        let mut grad = SMatrix::ZERO;
        assert_eq!(huber.loss_and_grad(&y, &t, &mut grad), 2.53125 / 6.0);
        let clamped =
            SMatrix::<f64, 2, 3>::from_column_slice(&[-0.5, -0.75, 0.5, 0.75, -0.75, 0.5]);
        assert_eq!(grad, clamped * (1.0 / 6.0));
    }

    #[test]
    fn quadratic_inside_linear_outside() {
        let huber = Huber { delta: 2.0 };
        let y = SMatrix::<f64, 1, 1>::new(0.0);
        // |d| = 1.5 < 2: ½·2.25; |d| = 5 ≥ 2: 2·(5 − 1) = 8; large: no overflow of d².
        assert_eq!(huber.loss(&y, &[1.5]), 1.125);
        assert_eq!(huber.loss(&y, &[-5.0]), 8.0);
        assert_eq!(huber.loss(&y, &[1e200]), 2e200);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (y, t) = example();
        // Away from the kinks |d| = δ (δ = 1 puts two elements on them).
        for delta in [0.75, 1.3, 3.0] {
            let error = gradient_error(&Huber { delta }, &y, &t);
            assert!(error < 1e-7, "δ = {delta}: {error}");
        }
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let y = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, t) = example();
        check_partial_batch(&Huber::default(), &y, &t);
    }

    #[test]
    fn f32_matches_f64() {
        let (y, t) = example();
        let t32 = t.map(|t| t.map(|x| x as f32));
        check_f32_matches_f64(&Huber { delta: 0.7 }, &y, &t, &t32, 1e-6);
    }
}

//! Binary cross-entropy on logits.

use super::ElementwiseLoss;
use crate::Real;
use crate::activations::{Elementwise, Sigmoid};

/// Binary cross-entropy on logits, PyTorch's `BCEWithLogitsLoss` (`reduction="mean"`, no
/// `weight` or `pos_weight`): for a logit `z` and a target probability `t ∈ [0, 1]`,
///
/// ```text
/// ℓ(z, t) = −t·ln σ(z) − (1 − t)·ln(1 − σ(z))
///         = max(z, 0) − z·t + ln(1 + e^−|z|)
/// ```
///
/// and `L = 1/(n·N) Σ_{i,j} ℓ(z_ij, t_ij)`, the mean over all `n·N` counted elements (each
/// feature is an independent binary label).
///
/// Gradient: `∂L/∂z_ij = (σ(z_ij) − t_ij)/(n·N)`.
///
/// Computed in the second form (with `ln_1p`, and `σ` without overflow), so that no logarithm
/// of zero and no overflowing exponential occurs: logits of ±1000 give finite losses and
/// gradients (`ℓ(1000, 0) = 1000`, `ℓ(1000, 1) ≈ 5·10⁻⁴³⁵ → 0`). Do not put a sigmoid in
/// the network's output and this loss after it: it takes the logits.
///
/// Targets: `SMatrix<T, N, 1>` per sample, or `T` when `N = 1`. Targets outside `[0, 1]` are
/// not checked (the formula is then not a cross-entropy, but stays finite).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BceWithLogits;

impl<T: Real> ElementwiseLoss<T> for BceWithLogits {
    #[inline]
    fn value(&self, z: T, t: T) -> T {
        z.max(T::ZERO) - z * t + (-z.abs()).exp().ln_1p()
    }

    #[inline]
    fn derivative(&self, z: T, t: T) -> T {
        Sigmoid.value(z) - t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::testing::{
        assert_close, check_f32_matches_f64, check_partial_batch, gradient_error,
    };
    use crate::{ConstZero, Loss};
    use nalgebra::{SMatrix, Vector2};

    /// 3 samples of 2 logits, and target probabilities.
    fn example() -> (SMatrix<f64, 2, 3>, [Vector2<f64>; 3]) {
        let z = SMatrix::<f64, 2, 3>::from_column_slice(&[0.5, -1.25, 3.0, 0.0, -2.0, 0.75]);
        let t = [
            Vector2::new(1.0, 0.0),
            Vector2::new(0.25, 0.5),
            Vector2::new(1.0, 0.8),
        ];
        (z, t)
    }

    #[test]
    fn value_matches_reference() {
        // mpmath, 1000 digits, from the first form −t·ln σ(z) − (1 − t)·ln(1 − σ(z)).
        let (z, t) = example();
        let mut grad = SMatrix::ZERO;
        let value = BceWithLogits.loss_and_grad(&z, &t, &mut grad);
        assert_close(value, 1.0635899358028398, 1e-15);
        let expected = [
            -0.0629234447996909,
            0.037116689804218145,
            0.11709568780373887,
            0.0,
            -0.14679951299631375,
            -0.020136883470767846,
        ];
        for (&g, &e) in grad.iter().zip(expected.iter()) {
            assert!((g - e).abs() < 1e-16, "{g} vs {e}");
        }
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let z = SMatrix::<f64, 1, 4>::new(1000.0, -1000.0, 1000.0, -1000.0);
        let t = [1.0, 0.0, 0.0, 1.0];
        let mut grad = SMatrix::ZERO;
        // ℓ = 5.08e-435 (underflows to 0), 5.08e-435, 1000, 1000: mean 500.
        assert_eq!(BceWithLogits.loss_and_grad(&z, &t, &mut grad), 500.0);
        // σ(z) − t = −1.3e-435, 1.3e-435 (both 0 in f64), 1, −1; over 4.
        assert_eq!(grad, SMatrix::<f64, 1, 4>::new(0.0, 0.0, 0.25, -0.25));
        let z32 = z.map(|z| z as f32);
        let mut grad32 = SMatrix::ZERO;
        let t32 = [1.0f32, 0.0, 0.0, 1.0];
        assert_eq!(BceWithLogits.loss_and_grad(&z32, &t32, &mut grad32), 500.0);
        assert_eq!(grad32, SMatrix::<f32, 1, 4>::new(0.0, 0.0, 0.25, -0.25));
    }

    #[test]
    fn small_losses_keep_their_precision() {
        // ℓ(40, 1) = ℓ(−40, 0) = ln(1 + e⁻⁴⁰) = 4.248354255291589e-18 (mpmath): the naive
        // −ln σ(40) = −ln(1 − 4.2e-18) would round to 0.
        let z = SMatrix::<f64, 1, 2>::new(40.0, -40.0);
        assert_close(
            BceWithLogits.loss(&z, &[1.0, 0.0]),
            4.248354255291589e-18,
            1e-15,
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (z, t) = example();
        let error = gradient_error(&BceWithLogits, &z, &t);
        assert!(error < 1e-7, "{error}");
        let z = SMatrix::<f64, 1, 4>::new(12.0, -7.0, 0.1, 1000.0);
        let error = gradient_error(&BceWithLogits, &z, &[0.0, 1.0, 0.3]);
        assert!(error < 1e-7, "{error}");
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let z = SMatrix::<f64, 2, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, t) = example();
        check_partial_batch(&BceWithLogits, &z, &t);
    }

    #[test]
    fn f32_matches_f64() {
        let (z, t) = example();
        let t32 = t.map(|t| t.map(|x| x as f32));
        check_f32_matches_f64(&BceWithLogits, &z, &t, &t32, 1e-6);
    }
}

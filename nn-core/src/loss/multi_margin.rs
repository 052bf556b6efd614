//! Multi-class hinge loss (Crammer–Singer-like, summed over the wrong classes).

use super::{Loss, counted};
use crate::Real;
use nalgebra::SMatrix;

/// Multi-class margin loss, PyTorch's `MultiMarginLoss` with `p = 1`, no `weight`,
/// `reduction="mean"`: for one sample's scores `x` (`N` classes) and its class `c`,
///
/// ```text
/// ℓ(x, c) = 1/N Σ_{i≠c} max(0, margin − x_c + x_i)
/// ```
///
/// (divided by the number of classes `N`, as PyTorch), and `L = 1/n Σ_j ℓ(x_j, c_j)`, the mean
/// over the `n` counted samples. Default `margin = 1.0`.
///
/// Subgradient: each violated term (`margin − x_c + x_i > 0`) adds `1/(N·n)` to `∂L/∂x_i` and
/// `−1/(N·n)` to `∂L/∂x_c`; a term exactly at its kink (`= 0`) adds nothing.
///
/// Targets: class indices `usize`. A class index `≥ N` gives a NaN loss for that sample (so
/// the whole loss is NaN, which a trainer's non-finite check catches) and a NaN gradient
/// column, in debug and release alike (PyTorch raises an error).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiMargin {
    /// The margin by which the true class's score should exceed every other.
    pub margin: f64,
}

impl Default for MultiMargin {
    fn default() -> Self {
        MultiMargin { margin: 1.0 }
    }
}

/// `max(0, x)`, but NaN for NaN (nalgebra's `max` would return 0 and hide a diverged output).
#[inline]
fn positive_part<T: Real>(x: T) -> T {
    if x <= T::ZERO { T::ZERO } else { x }
}

impl<T: Real, const N: usize> Loss<T, N, usize> for MultiMargin {
    fn loss<const B: usize>(&self, x: &SMatrix<T, N, B>, targets: &[usize]) -> T {
        let n = counted::<B>(targets.len());
        let margin = T::of(self.margin);
        let mut sum = T::ZERO;
        for (j, &class) in targets.iter().enumerate() {
            if class >= N {
                sum += T::of(f64::NAN);
                continue;
            }
            let x = x.column(j);
            for (i, &x_i) in x.iter().enumerate() {
                if i != class {
                    sum += positive_part(margin - x[class] + x_i);
                }
            }
        }
        sum / T::of((N * n) as f64)
    }

    fn loss_and_grad<const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        targets: &[usize],
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let n = counted::<B>(targets.len());
        let margin = T::of(self.margin);
        let scale = T::ONE / T::of((N * n) as f64);
        let mut sum = T::ZERO;
        for (j, &class) in targets.iter().enumerate() {
            let mut grad = grad.column_mut(j);
            if class >= N {
                sum += T::of(f64::NAN);
                grad.fill(T::of(f64::NAN));
                continue;
            }
            let x = x.column(j);
            let mut violated = 0usize;
            for (i, &x_i) in x.iter().enumerate() {
                grad[i] = T::ZERO;
                if i != class {
                    let term = margin - x[class] + x_i;
                    sum += positive_part(term);
                    if term > T::ZERO {
                        violated += 1;
                        grad[i] = scale;
                    }
                }
            }
            grad[class] = -T::of(violated as f64) * scale;
        }
        grad.columns_mut(n, B - n).fill(T::ZERO);
        sum / T::of((N * n) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConstZero;
    use crate::loss::testing::{check_f32_matches_f64, check_partial_batch, gradient_error};

    /// 3 samples of 3 scores, and their classes.
    fn example() -> (SMatrix<f64, 3, 3>, [usize; 3]) {
        let x = SMatrix::<f64, 3, 3>::from_column_slice(&[
            1.0, 2.0, -0.5, //
            0.25, -1.0, 3.0, //
            -2.0, 0.5, 0.0,
        ]);
        (x, [1, 2, 0])
    }

    #[test]
    fn default_margin_is_one() {
        assert_eq!(MultiMargin::default(), MultiMargin { margin: 1.0 });
    }

    #[test]
    fn value_matches_hand_computation() {
        // Exact fractions (Python `fractions`). Margin 3/2: terms per sample (i ≠ c)
        // 0.5 and 0 | 0 and 0 | 4 and 3.5: Σ = 8, over 3 classes and 3 samples: 8/9.
        let (x, classes) = example();
        let loss = MultiMargin { margin: 1.5 };
        let mut grad = SMatrix::ZERO;
        assert_eq!(loss.loss_and_grad(&x, &classes, &mut grad), 8.0 / 9.0);
        assert_eq!(loss.loss(&x, &classes), 8.0 / 9.0);
        let s = 1.0 / 9.0;
        #[rustfmt::skip]
        let expected = [
            s, -s, 0.0,
            0.0, 0.0, 0.0,
            -2.0 * s, s, s,
        ];
        assert_eq!(grad.as_slice(), &expected);
    }

    #[test]
    fn subgradient_is_zero_at_the_kink() {
        // Margin 1: sample 0's first term is 1 − 2 + 1 = 0 exactly; Σ = 3.5 + 3 = 6.5, /9.
        let (x, classes) = example();
        let mut grad = SMatrix::ZERO;
        let value = MultiMargin::default().loss_and_grad(&x, &classes, &mut grad);
        assert_eq!(value, 6.5 / 9.0);
        assert_eq!(grad.column(0).iter().copied().sum::<f64>(), 0.0);
        assert!(grad.column(0).iter().all(|&g| g == 0.0));
    }

    #[test]
    fn class_out_of_range_gives_nan() {
        let (x, _) = example();
        let mut grad = SMatrix::ZERO;
        let loss = MultiMargin::default();
        assert!(loss.loss_and_grad(&x, &[1, 2, 3], &mut grad).is_nan());
        assert!(loss.loss(&x, &[9, 2, 0]).is_nan());
        assert!(grad.column(2).iter().all(|g| g.is_nan()));
        assert!(grad.column(1).iter().all(|g| g.is_finite()));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, classes) = example();
        for margin in [1.5, 0.7, 10.0] {
            let error = gradient_error(&MultiMargin { margin }, &x, &classes);
            assert!(error < 1e-7, "margin {margin}: {error}");
        }
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let x = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, classes) = example();
        check_partial_batch(&MultiMargin { margin: 2.0 }, &x, &classes);
    }

    #[test]
    fn f32_matches_f64() {
        let (x, classes) = example();
        check_f32_matches_f64(&MultiMargin { margin: 1.5 }, &x, &classes, &classes, 1e-6);
    }
}

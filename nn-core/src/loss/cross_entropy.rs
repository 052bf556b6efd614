//! Softmax cross-entropy on logits, with class-index or probability targets.

use super::{Loss, counted};
use crate::Real;
use nalgebra::SMatrix;

/// Softmax cross-entropy on logits, PyTorch's `CrossEntropyLoss` (`reduction="mean"`, no
/// `weight`, `ignore_index` or `label_smoothing`): for one sample's logits `z` (`N` classes),
///
/// ```text
/// ln softmax(z)_i = (z_i − m) − ln Σ_k e^{z_k − m},   m = max_k z_k
/// ℓ(z, c) = −ln softmax(z)_c                          (class index c, target `usize`)
/// ℓ(z, t) = −Σ_i t_i·ln softmax(z)_i                  (probabilities t, target `SMatrix<T, N, 1>`)
/// ```
///
/// and `L = 1/n Σ_j ℓ(z_j, target_j)`, the mean over the `n` counted **samples** (not over
/// `n·N` elements), as PyTorch does for both kinds of target.
///
/// Gradient: `∂L/∂z = (softmax(z) − onehot(c))/n` for a class index, and
/// `∂L/∂z = (softmax(z)·Σ_i t_i − t)/n` for probabilities, which is `(softmax(z) − t)/n` when
/// `t` sums to 1 (a one-hot or a distribution; for a one-hot the two forms give identical
/// results).
///
/// Numerics: the log-sum-exp subtracts the sample's maximum, so no exponential overflows and
/// no logarithm of zero occurs (`Σ ≥ 1`); logits of ±1000 give exact finite losses
/// (`ℓ([1000, −1000, 0], 1) = 2000`). Terms with `t_i = 0` are skipped, so a class of zero
/// probability never contributes `0·∞`. Takes the logits: do not put a softmax (or
/// log-softmax) in front of it.
///
/// A class index `≥ N` is not an error the trait can report: that sample's loss is NaN, so
/// the whole loss is NaN (a trainer's non-finite check catches it), and its gradient column
/// is NaN too, in debug and release alike. (PyTorch raises an error.)
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SoftmaxCrossEntropy;

/// One sample's logits, shifted by their maximum, and the logarithm of the sum of their
/// exponentials (the loss alone; with the gradient, [`exponentials`] computes a batch's at
/// once, and [`sums`] adds them as here).
struct Shifted<T: Real, const N: usize> {
    /// `z − max z`.
    shifted: SMatrix<T, N, 1>,
    /// `ln Σ e^{z − max z}`.
    log_sum: T,
}

impl<T: Real, const N: usize> Shifted<T, N> {
    #[inline]
    fn of<const B: usize>(z: &SMatrix<T, N, B>, j: usize) -> Self {
        let z = z.column(j);
        let max = z.max();
        let shifted: SMatrix<T, N, 1> = z.map(|z| z - max);
        let exp = shifted.map(|s| s.exp_accurate());
        Shifted {
            shifted,
            log_sum: sums(exp.as_slice()).1,
        }
    }

    /// `−ln softmax(z)_i`, as `ln Σ − (z_i − max)`: the shifted logit is exact, and adding
    /// `ln Σ` to a large maximum would round it away.
    #[inline]
    fn neg_log_softmax(&self, i: usize) -> T {
        self.log_sum - self.shifted[i]
    }

    /// `−Σ_i t_i·ln softmax(z)_i`, skipping `t_i = 0`.
    #[inline]
    fn cross_entropy(&self, t: &SMatrix<T, N, 1>) -> T {
        let mut sum = T::ZERO;
        for (i, &t) in t.iter().enumerate() {
            if t != T::ZERO {
                sum += t * self.neg_log_softmax(i);
            }
        }
        sum
    }
}

/// `e^{z − max z}` of each of the first `n` columns of `z`, written over those of `exp`: the
/// shifted logits column by column, then their exponentials in one pass over the `n·N`
/// contiguous values (vectorised across samples: a sample has only `N` classes), the same
/// bits as [`Shifted::of`]'s one sample at a time.
#[inline]
fn exponentials<T: Real, const N: usize, const B: usize>(
    z: &SMatrix<T, N, B>,
    n: usize,
    exp: &mut SMatrix<T, N, B>,
) {
    for j in 0..n {
        let max = z.column(j).max();
        for (e, &z) in exp.column_mut(j).iter_mut().zip(z.column(j).iter()) {
            *e = z - max;
        }
    }
    T::exp_accurate_in_place(&mut exp.as_mut_slice()[..n * N]);
}

/// `(Σ e, ln Σ e)` of one sample's exponentials, summed in order as [`Shifted`] does.
#[inline]
fn sums<T: Real>(exp: &[T]) -> (T, T) {
    let sum = exp.iter().fold(T::ZERO, |a, &b| a + b);
    (sum, sum.ln())
}

#[inline]
fn nan<T: Real>() -> T {
    T::of(f64::NAN)
}

impl<T: Real, const N: usize> Loss<T, N, usize> for SoftmaxCrossEntropy {
    fn loss<const B: usize>(&self, z: &SMatrix<T, N, B>, targets: &[usize]) -> T {
        let n = counted::<B>(targets.len());
        let mut sum = T::ZERO;
        for (j, &class) in targets.iter().enumerate() {
            sum += if class < N {
                Shifted::of(z, j).neg_log_softmax(class)
            } else {
                nan()
            };
        }
        sum / T::of(n as f64)
    }

    fn loss_and_grad<const B: usize>(
        &self,
        z: &SMatrix<T, N, B>,
        targets: &[usize],
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let n = counted::<B>(targets.len());
        let scale = T::ONE / T::of(n as f64);
        exponentials(z, n, grad);
        let mut sum = T::ZERO;
        for (j, &class) in targets.iter().enumerate() {
            let mut grad = grad.column_mut(j);
            if class < N {
                let (exp_sum, log_sum) = sums(grad.as_slice());
                sum += log_sum - (z[(class, j)] - z.column(j).max());
                for (i, g) in grad.iter_mut().enumerate() {
                    let one_hot = if i == class { T::ONE } else { T::ZERO };
                    *g = (*g / exp_sum - one_hot) * scale;
                }
            } else {
                sum += nan();
                grad.fill(nan());
            }
        }
        grad.columns_mut(n, B - n).fill(T::ZERO);
        sum / T::of(n as f64)
    }
}

impl<T: Real, const N: usize> Loss<T, N, SMatrix<T, N, 1>> for SoftmaxCrossEntropy {
    fn loss<const B: usize>(&self, z: &SMatrix<T, N, B>, targets: &[SMatrix<T, N, 1>]) -> T {
        let n = counted::<B>(targets.len());
        let mut sum = T::ZERO;
        for (j, t) in targets.iter().enumerate() {
            sum += Shifted::of(z, j).cross_entropy(t);
        }
        sum / T::of(n as f64)
    }

    fn loss_and_grad<const B: usize>(
        &self,
        z: &SMatrix<T, N, B>,
        targets: &[SMatrix<T, N, 1>],
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        let n = counted::<B>(targets.len());
        let scale = T::ONE / T::of(n as f64);
        exponentials(z, n, grad);
        let mut sum = T::ZERO;
        for (j, t) in targets.iter().enumerate() {
            let mut grad = grad.column_mut(j);
            let (exp_sum, log_sum) = sums(grad.as_slice());
            // As `Shifted::cross_entropy`: the sample's terms summed, then added.
            let max = z.column(j).max();
            let mut sample = T::ZERO;
            for (i, &t) in t.iter().enumerate() {
                if t != T::ZERO {
                    sample += t * (log_sum - (z[(i, j)] - max));
                }
            }
            sum += sample;
            let mass = t.sum();
            for (i, g) in grad.iter_mut().enumerate() {
                *g = (*g / exp_sum * mass - t[i]) * scale;
            }
        }
        grad.columns_mut(n, B - n).fill(T::ZERO);
        sum / T::of(n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConstZero;
    use crate::loss::testing::{
        assert_close, check_f32_matches_f64, check_partial_batch, gradient_error,
    };
    use nalgebra::Vector3;

    /// 3 samples of 3 logits, their classes, and probability targets.
    fn example() -> (SMatrix<f64, 3, 3>, [usize; 3], [Vector3<f64>; 3]) {
        let z = SMatrix::<f64, 3, 3>::from_column_slice(&[
            1.0, 2.0, -0.5, //
            0.25, -1.0, 3.0, //
            -2.0, 0.5, 0.0,
        ]);
        let probabilities = [
            Vector3::new(0.2, 0.7, 0.1),
            Vector3::new(0.0, 0.5, 0.5),
            Vector3::new(0.25, 0.25, 0.5),
        ];
        (z, [1, 2, 0], probabilities)
    }

    fn one_hot<const N: usize>(class: usize) -> SMatrix<f64, N, 1> {
        SMatrix::from_fn(|i, _| if i == class { 1.0 } else { 0.0 })
    }

    fn assert_all_close<const N: usize, const B: usize>(
        grad: &SMatrix<f64, N, B>,
        expected: &[f64],
        tolerance: f64,
    ) {
        for (&g, &e) in grad.iter().zip(expected.iter()) {
            assert!((g - e).abs() <= tolerance, "{g} vs {e}");
        }
    }

    #[test]
    fn class_index_value_matches_reference() {
        // mpmath, 1000 digits: −ln(e^{z_c} / Σ e^{z_k}), and (softmax − onehot)/3.
        let (z, classes, _) = example();
        let mut grad = SMatrix::ZERO;
        let value = SoftmaxCrossEntropy.loss_and_grad(&z, &classes, &mut grad);
        assert_close(value, 1.15816142981223, 1e-15);
        #[rustfmt::skip]
        let expected = [
            0.0845720605450084, -0.10344263795849883, 0.01887057741349043,
            0.019689919197503413, 0.005641256299874272, -0.025331175497377685,
            -0.31712972532289924, 0.1974003567287197, 0.11972936859417954,
        ];
        assert_all_close(&grad, &expected, 1e-16);
    }

    #[test]
    fn probability_value_matches_reference() {
        // mpmath, 1000 digits: −Σ t_i ln softmax(z)_i, and (softmax − t)/3.
        let (z, _, probabilities) = example();
        let mut grad = SMatrix::ZERO;
        let value = SoftmaxCrossEntropy.loss_and_grad(&z, &probabilities, &mut grad);
        assert_close(value, 1.43316142981223, 1e-15);
        #[rustfmt::skip]
        let expected = [
            0.017905393878341728, -0.0034426379584988113, -0.014462755919842907,
            0.019689919197503413, -0.16102541036679238, 0.14133549116928898,
            -0.06712972532289925, 0.11406702339538637, -0.04693729807248713,
        ];
        assert_all_close(&grad, &expected, 1e-16);
    }

    #[test]
    fn class_index_and_one_hot_agree() {
        let (z, classes, _) = example();
        let one_hots = classes.map(one_hot::<3>);
        let (mut g1, mut g2) = (SMatrix::ZERO, SMatrix::ZERO);
        let v1 = SoftmaxCrossEntropy.loss_and_grad(&z, &classes, &mut g1);
        let v2 = SoftmaxCrossEntropy.loss_and_grad(&z, &one_hots, &mut g2);
        assert_eq!(v1, v2);
        assert_eq!(g1, g2);
        assert_eq!(SoftmaxCrossEntropy.loss(&z, &classes), v1);
        assert_eq!(SoftmaxCrossEntropy.loss(&z, &one_hots), v1);
    }

    #[test]
    fn extreme_logits_stay_finite() {
        let z = SMatrix::<f64, 3, 4>::from_column_slice(&[
            1000.0, -1000.0, 0.0, //
            1000.0, -1000.0, 0.0, //
            -1000.0, -1000.0, 1000.0, //
            1000.0, 1000.0, -1000.0,
        ]);
        let classes = [1, 0, 2, 0];
        // mpmath: ℓ = 2000, 5.1e-435, 5.2e-869, ln 2; mean 500.17328679514.
        let mut grad = SMatrix::ZERO;
        let value = SoftmaxCrossEntropy.loss_and_grad(&z, &classes, &mut grad);
        assert_close(value, 500.17328679514, 1e-15);
        // (softmax − onehot)/4; the entries of size e^{−1000} underflow to 0.
        #[rustfmt::skip]
        let expected = [
            0.25, -0.25, 0.0,
            0.0, 0.0, 0.0,
            0.0, 0.0, 0.0,
            -0.125, 0.125, 0.0,
        ];
        assert_eq!(grad.as_slice(), &expected);
        let one_hots = classes.map(one_hot::<3>);
        assert_eq!(SoftmaxCrossEntropy.loss(&z, &one_hots), value);

        let z32 = z.map(|z| z as f32);
        let mut grad32 = SMatrix::ZERO;
        let value32 = SoftmaxCrossEntropy.loss_and_grad(&z32, &classes, &mut grad32);
        assert!((value32 as f64 - value).abs() < 1e-4, "{value32}");
        assert_eq!(grad32, grad.map(|g| g as f32));
    }

    #[test]
    fn huge_logits_keep_the_shifted_difference() {
        // ℓ([1e16, 1e16 + 2], 0) = ln(1 + e²) = 2.1269280110429725 (2 is exact at 1e16).
        let z = SMatrix::<f64, 2, 1>::new(1e16, 1e16 + 2.0);
        assert_close(
            SoftmaxCrossEntropy.loss(&z, &[0]),
            2.1269280110429725,
            1e-15,
        );
    }

    #[test]
    fn class_out_of_range_gives_nan() {
        let (z, _, _) = example();
        let mut grad = SMatrix::ZERO;
        let value = SoftmaxCrossEntropy.loss_and_grad(&z, &[0, 3, 1], &mut grad);
        assert!(value.is_nan());
        assert!(SoftmaxCrossEntropy.loss(&z, &[0, 1, 7]).is_nan());
        assert!(grad.column(1).iter().all(|g| g.is_nan()), "{grad}");
        assert!(grad.column(0).iter().all(|g| g.is_finite()), "{grad}");
        assert!(grad.column(2).iter().all(|g| g.is_finite()), "{grad}");
    }

    #[test]
    fn zero_probabilities_never_multiply_infinity() {
        // ln softmax(z)_1 = −∞ in f64 (z_1 − max = −∞), but t_1 = 0.
        let z = SMatrix::<f64, 2, 1>::new(f64::MAX, -f64::MAX);
        let t = [SMatrix::<f64, 2, 1>::new(1.0, 0.0)];
        assert_eq!(SoftmaxCrossEntropy.loss(&z, &t), 0.0);
        assert_eq!(SoftmaxCrossEntropy.loss(&z, &[0]), 0.0);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (z, classes, probabilities) = example();
        let error = gradient_error(&SoftmaxCrossEntropy, &z, &classes);
        assert!(error < 1e-7, "{error}");
        let error = gradient_error(&SoftmaxCrossEntropy, &z, &probabilities);
        assert!(error < 1e-7, "{error}");
        // Targets that do not sum to 1: the gradient is softmax·Σt − t.
        let unnormalized = probabilities.map(|t| t * 1.7);
        let error = gradient_error(&SoftmaxCrossEntropy, &z, &unnormalized);
        assert!(error < 1e-7, "{error}");
    }

    #[test]
    fn partial_batch_counts_only_targeted_columns() {
        let z = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i as f64 - 0.4) * (j as f64 + 1.3));
        let (_, classes, probabilities) = example();
        check_partial_batch(&SoftmaxCrossEntropy, &z, &classes);
        check_partial_batch(&SoftmaxCrossEntropy, &z, &probabilities);
    }

    #[test]
    fn f32_matches_f64() {
        let (z, classes, probabilities) = example();
        check_f32_matches_f64(&SoftmaxCrossEntropy, &z, &classes, &classes, 1e-6);
        let p32 = probabilities.map(|t| t.map(|x| x as f32));
        check_f32_matches_f64(&SoftmaxCrossEntropy, &z, &probabilities, &p32, 1e-6);
    }
}

//! The loss of a whole network output: one [`Loss`] for a single output, or a weighted sum of
//! one loss per output for a network with several (`forward(..) -> (v: [1], p: [3])`).

use crate::{Loss, Real, SMatrix};

/// A loss over a network's output for a batch (`Y`: an `SMatrix<T, N, B>`, or a tuple of them
/// for several outputs), against one target per sample.
///
/// Every [`Loss`] is one, for a single output. For several outputs, a tuple of [`Weighted`]
/// losses, one per output, with a tuple of targets per sample:
///
/// ```
/// use nn_core::loss::{Mse, SoftmaxCrossEntropy};
/// use nn_core::train::Weighted;
/// // L = 1·MSE(v, t_v) + 0.5·CE(p, c), targets `(t_v, c)`: `(f32, usize)`.
/// let loss = (Weighted::new(Mse, 1.0), Weighted::new(SoftmaxCrossEntropy, 0.5));
/// # let _ = loss;
/// ```
pub trait OutputLoss<T: Real, Y, Target> {
    /// The loss over the first `targets.len()` samples of the batch `y` (named apart from
    /// [`Loss::loss`], which it is for a single output, so that both traits can be in scope).
    fn total(&self, y: &Y, targets: &[Target]) -> T;

    /// The loss, and `∂L/∂y` written into `grad` (zero in the columns past `targets.len()`).
    fn total_and_grad(&self, y: &Y, targets: &[Target], grad: &mut Y) -> T;
}

impl<T, L, Target, const N: usize, const B: usize> OutputLoss<T, SMatrix<T, N, B>, Target> for L
where
    T: Real,
    L: Loss<T, N, Target>,
{
    #[inline]
    fn total(&self, y: &SMatrix<T, N, B>, targets: &[Target]) -> T {
        Loss::loss(self, y, targets)
    }

    #[inline]
    fn total_and_grad(
        &self,
        y: &SMatrix<T, N, B>,
        targets: &[Target],
        grad: &mut SMatrix<T, N, B>,
    ) -> T {
        Loss::loss_and_grad(self, y, targets, grad)
    }
}

/// One output's loss and its weight in the total: `weight · loss`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weighted<L> {
    /// The loss of this output.
    pub loss: L,
    /// Its weight in the sum.
    pub weight: f64,
}

impl<L> Weighted<L> {
    /// `weight · loss`.
    pub fn new(loss: L, weight: f64) -> Self {
        Weighted { loss, weight }
    }
}

impl<L> Weighted<L> {
    /// `weight · L(y, targets)` and its gradient for one output, computed sample by sample:
    /// every loss of [`nn::loss`](crate::loss) is the mean over the samples of a per-sample
    /// loss, so the batch's is `(1/n) Σ_j L(y_j, t_j)`. Each output takes its own part of
    /// the samples' target tuples, which a batched call could not (the parts are not a
    /// slice); the per-column work is output-sized.
    fn sample_by_sample<T, Target, const N: usize, const B: usize>(
        &self,
        y: &SMatrix<T, N, B>,
        n: usize,
        target: impl Fn(usize) -> Target,
        mut grad: Option<&mut SMatrix<T, N, B>>,
    ) -> T
    where
        T: Real,
        L: Loss<T, N, Target>,
    {
        assert!(n <= B, "{n} targets for a batch of {B} samples");
        let share = T::of(self.weight / n as f64);
        let mut sum = T::ZERO;
        for j in 0..n {
            let y_j: SMatrix<T, N, 1> = y.fixed_columns::<1>(j).into_owned();
            let t_j = [target(j)];
            match grad.as_deref_mut() {
                Some(grad) => {
                    let mut g_j = SMatrix::<T, N, 1>::zeros();
                    sum += self.loss.loss_and_grad(&y_j, &t_j, &mut g_j);
                    grad.set_column(j, &(g_j * share));
                }
                None => sum += self.loss.loss(&y_j, &t_j),
            }
        }
        if let Some(grad) = grad {
            grad.columns_mut(n, B - n).fill(T::ZERO);
        }
        sum * share
    }
}

macro_rules! weighted_outputs {
    ($($loss:ident $n:ident $target:ident $idx:tt),+) => {
        impl<T: Real, $($loss, $target: Clone,)+ $(const $n: usize,)+ const B: usize>
            OutputLoss<T, ($(SMatrix<T, $n, B>,)+), ($($target,)+)> for ($(Weighted<$loss>,)+)
        where
            $($loss: Loss<T, $n, $target>,)+
        {
            fn total(&self, y: &($(SMatrix<T, $n, B>,)+), targets: &[($($target,)+)]) -> T {
                T::ZERO $(
                    + self.$idx.sample_by_sample(
                        &y.$idx,
                        targets.len(),
                        |j| targets[j].$idx.clone(),
                        None,
                    )
                )+
            }

            fn total_and_grad(
                &self,
                y: &($(SMatrix<T, $n, B>,)+),
                targets: &[($($target,)+)],
                grad: &mut ($(SMatrix<T, $n, B>,)+),
            ) -> T {
                T::ZERO $(
                    + self.$idx.sample_by_sample(
                        &y.$idx,
                        targets.len(),
                        |j| targets[j].$idx.clone(),
                        Some(&mut grad.$idx),
                    )
                )+
            }
        }
    };
}

weighted_outputs!(L0 N0 T0 0, L1 N1 T1 1);
weighted_outputs!(L0 N0 T0 0, L1 N1 T1 1, L2 N2 T2 2);
weighted_outputs!(L0 N0 T0 0, L1 N1 T1 1, L2 N2 T2 2, L3 N3 T3 3);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::{Mse, SoftmaxCrossEntropy};

    #[test]
    fn weighted_outputs_sum_the_batched_losses() {
        let y = (
            SMatrix::<f64, 1, 3>::new(0.5, -1.0, 2.0),
            SMatrix::<f64, 2, 3>::new(1.0, 0.0, -2.0, 0.5, 0.25, 3.0),
        );
        let targets = [(1.0, 0usize), (0.0, 1), (4.0, 1)];
        let loss = (
            Weighted::new(Mse, 2.0),
            Weighted::new(SoftmaxCrossEntropy, 0.5),
        );
        let mut grad = (SMatrix::<f64, 1, 3>::zeros(), SMatrix::<f64, 2, 3>::zeros());
        // Two samples of three: the third column is padding.
        let total = loss.total_and_grad(&y, &targets[..2], &mut grad);
        let (mut g0, mut g1) = (SMatrix::<f64, 1, 3>::zeros(), SMatrix::<f64, 2, 3>::zeros());
        let t0 = [1.0, 0.0];
        let t1 = [0usize, 1];
        let expected = 2.0 * Mse.loss_and_grad(&y.0, &t0, &mut g0)
            + 0.5 * SoftmaxCrossEntropy.loss_and_grad(&y.1, &t1, &mut g1);
        assert!((total - expected).abs() < 1e-15);
        assert!((grad.0 - g0 * 2.0).amax() < 1e-15);
        assert!((grad.1 - g1 * 0.5).amax() < 1e-15);
        assert!((loss.total(&y, &targets[..2]) - expected).abs() < 1e-15);
    }
}

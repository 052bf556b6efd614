//! Losses: a scalar from a batch of outputs and their targets, and its gradient with respect
//! to the outputs (the `∂L/∂y` that starts the backward pass).
//!
//! Reduction: the mean over the samples given, as PyTorch's default `reduction="mean"`; each
//! loss's docs say exactly what is averaged. A batch may be partly filled (the last
//! mini-batch of an epoch): only the first `targets.len()` columns count, and the gradient of
//! the other columns is zero.
//!
//! | loss | targets | per element / sample | mean over | PyTorch |
//! |---|---|---|---|---|
//! | [`Mse`] | vector (or scalar, `N = 1`) | `½(y − t)²` | `n·N` elements | ½ × `MSELoss` |
//! | [`Mae`] | vector (or scalar) | `\|y − t\|` | `n·N` elements | `L1Loss` |
//! | [`Huber`] | vector (or scalar) | `½d²` or `δ(\|d\| − ½δ)` | `n·N` elements | `HuberLoss` |
//! | [`BceWithLogits`] | vector in `[0, 1]` (or scalar) | `−t ln σ(z) − (1−t) ln(1−σ(z))` | `n·N` elements | `BCEWithLogitsLoss` |
//! | [`Hinge`] | vector of `±1` (or scalar) | `max(0, 1 − t·y)` | `n·N` elements | (none; see its docs) |
//! | [`SoftmaxCrossEntropy`] | class index or probability vector | `−Σ_i t_i ln softmax(z)_i` | `n` samples | `CrossEntropyLoss` |
//! | [`MultiMargin`] | class index | `Σ_{i≠c} max(0, m − z_c + z_i) / N` | `n` samples | `MultiMarginLoss` |
//!
//! (`n = targets.len()` counted samples, `N` features per sample.)
//!
//! Edge cases, shared by all losses:
//!
//! - more targets than columns (`targets.len() > B`) is a bug of the caller and panics;
//! - no targets at all gives a loss of NaN (the mean of nothing, as PyTorch's
//!   `reduction="mean"` on an empty batch) and an all-zero gradient;
//! - a class index `≥ N` gives a NaN loss and a NaN gradient column for that sample, so that
//!   a trainer's non-finite check catches it (PyTorch raises an error instead).

mod bce;
mod cross_entropy;
mod hinge;
mod huber;
mod mae;
mod mse;
mod multi_margin;
#[cfg(test)]
mod testing;

pub use bce::BceWithLogits;
pub use cross_entropy::SoftmaxCrossEntropy;
pub use hinge::Hinge;
pub use huber::Huber;
pub use mae::Mae;
pub use mse::Mse;
pub use multi_margin::MultiMargin;

use crate::Real;
use nalgebra::SMatrix;

/// A loss over a batch of `B` outputs of `N` features (one sample per column), against
/// targets of type `Target` (a vector, or a class index).
pub trait Loss<T: Real, const N: usize, Target> {
    /// The loss over the first `targets.len()` columns of `y` (at most `B`).
    fn loss<const B: usize>(&self, y: &SMatrix<T, N, B>, targets: &[Target]) -> T;

    /// The loss, and `∂L/∂y` written into `grad` (columns past `targets.len()` set to zero).
    fn loss_and_grad<const B: usize>(
        &self,
        y: &SMatrix<T, N, B>,
        targets: &[Target],
        grad: &mut SMatrix<T, N, B>,
    ) -> T;
}

/// A loss that is the mean, over every counted element, of a function `ℓ(y, t)` of one
/// output and its target.
///
/// Every such loss of this module implements it, and [`Loss`] through it twice: for vector
/// targets `SMatrix<T, N, 1>` (one per sample) and, for a single output (`N = 1`), for scalar
/// targets `T`. Over `n` counted samples, `L = 1/(n·N) Σ_{i,j} ℓ(y_ij, t_ij)` and
/// `∂L/∂y_ij = ℓ′(y_ij, t_ij)/(n·N)`.
pub trait ElementwiseLoss<T: Real> {
    /// `ℓ(y, t)`.
    fn value(&self, y: T, t: T) -> T;
    /// `∂ℓ/∂y (y, t)` (a subgradient at kinks; each loss documents its choice).
    fn derivative(&self, y: T, t: T) -> T;
}

/// The number of counted samples: `targets`, checked against the batch size `B`.
#[inline]
fn counted<const B: usize>(targets: usize) -> usize {
    assert!(
        targets <= B,
        "{targets} targets for a batch of {B} samples (at most one target per column)"
    );
    targets
}

/// `1/(n·N) Σ ℓ(y_ij, t_ij)` over the first `n` columns, `t_ij = target(j, i)`.
#[inline]
fn elementwise_loss<T: Real, L: ElementwiseLoss<T>, const N: usize, const B: usize>(
    loss: &L,
    y: &SMatrix<T, N, B>,
    n: usize,
    target: impl Fn(usize, usize) -> T,
) -> T {
    let n = counted::<B>(n);
    let mut sum = T::ZERO;
    for j in 0..n {
        for i in 0..N {
            sum += loss.value(y[(i, j)], target(j, i));
        }
    }
    sum / T::of((n * N) as f64)
}

/// [`elementwise_loss`], and `∂L/∂y_ij = ℓ′(y_ij, t_ij)/(n·N)` into `grad` (zero past `n`).
#[inline]
fn elementwise_loss_and_grad<T: Real, L: ElementwiseLoss<T>, const N: usize, const B: usize>(
    loss: &L,
    y: &SMatrix<T, N, B>,
    n: usize,
    target: impl Fn(usize, usize) -> T,
    grad: &mut SMatrix<T, N, B>,
) -> T {
    let n = counted::<B>(n);
    let count = T::of((n * N) as f64);
    let scale = T::ONE / count;
    let mut sum = T::ZERO;
    for j in 0..n {
        for i in 0..N {
            let (y, t) = (y[(i, j)], target(j, i));
            sum += loss.value(y, t);
            grad[(i, j)] = loss.derivative(y, t) * scale;
        }
    }
    grad.columns_mut(n, B - n).fill(T::ZERO);
    sum / count
}

/// Implements [`Loss`] for vector targets and, when `N = 1`, scalar targets, through
/// [`ElementwiseLoss`].
macro_rules! elementwise_loss {
    ($($ty:ty),+ $(,)?) => {$(
        impl<T: Real, const N: usize> Loss<T, N, SMatrix<T, N, 1>> for $ty {
            #[inline]
            fn loss<const B: usize>(
                &self,
                y: &SMatrix<T, N, B>,
                targets: &[SMatrix<T, N, 1>],
            ) -> T {
                elementwise_loss(self, y, targets.len(), |j, i| targets[j][i])
            }

            #[inline]
            fn loss_and_grad<const B: usize>(
                &self,
                y: &SMatrix<T, N, B>,
                targets: &[SMatrix<T, N, 1>],
                grad: &mut SMatrix<T, N, B>,
            ) -> T {
                elementwise_loss_and_grad(self, y, targets.len(), |j, i| targets[j][i], grad)
            }
        }

        impl<T: Real> Loss<T, 1, T> for $ty {
            #[inline]
            fn loss<const B: usize>(&self, y: &SMatrix<T, 1, B>, targets: &[T]) -> T {
                elementwise_loss(self, y, targets.len(), |j, _| targets[j])
            }

            #[inline]
            fn loss_and_grad<const B: usize>(
                &self,
                y: &SMatrix<T, 1, B>,
                targets: &[T],
                grad: &mut SMatrix<T, 1, B>,
            ) -> T {
                elementwise_loss_and_grad(self, y, targets.len(), |j, _| targets[j], grad)
            }
        }
    )+};
}

elementwise_loss!(Mse, Mae, Huber, BceWithLogits, Hinge);

//! Losses: a scalar from a batch of outputs and their targets, and its gradient with respect
//! to the outputs (the `∂L/∂y` that starts the backward pass).
//!
//! Reduction: the mean over the samples given, as PyTorch's default `reduction="mean"`; each
//! loss's docs say exactly what is averaged. A batch may be partly filled (the last
//! mini-batch of an epoch): only the first `targets.len()` columns count, and the gradient of
//! the other columns is zero.

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

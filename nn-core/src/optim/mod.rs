//! Optimizers: variants of gradient descent, `θ ← θ − α_t·(update from ∇L(θ))`, over a
//! network's parameters as one flat slice (`Params::as_mut_slice`) and its gradients as
//! another, in the same order. State (momentum, moments) has the gradient struct's type, so
//! it is fixed-size and never allocated.

use crate::Real;

/// One update rule, applied to all parameters at once.
pub trait Optimizer<T: Real> {
    /// Applies one step to `params` given `grads` (same length, same order).
    fn step(&mut self, params: &mut [T], grads: &[T]);

    /// The learning rate the next step uses.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (what a [`Schedule`] drives).
    fn set_learning_rate(&mut self, learning_rate: f64);
}

/// A learning rate as a function of the step number (0-based), like PyTorch's
/// `lr_scheduler` classes.
pub trait Schedule {
    /// The learning rate for `step`.
    fn learning_rate(&self, step: usize) -> f64;
}

//! Optimizers: variants of gradient descent, `θ ← θ − α_t·(update from ∇L(θ))`, over a
//! network's parameters as one flat slice (`Params::as_mut_slice`) and its gradients as
//! another, in the same order. State (momentum, moments) has the gradient struct's type, so
//! it is fixed-size and never allocated.
//!
//! Each optimizer follows the "Algorithm" box of its `torch.optim` counterpart, with the same
//! hyper-parameter names and defaults: [`Sgd`], [`RmsProp`], [`Adam`], [`AdamW`]. Learning-rate
//! schedules ([`Constant`], [`StepDecay`], [`Exponential`], [`Cosine`], [`WarmUp`]) follow
//! `torch.optim.lr_scheduler`, and [`clip_grad_norm`] is `torch.nn.utils.clip_grad_norm_`.
//!
//! A training loop, here on `f(θ) = ½‖θ‖²` (gradient `θ`) with an `SMatrix` as the parameter
//! struct (a network and its gradient struct in practice):
//!
//! ```
//! use nn_core::optim::{Adam, Cosine, Optimizer, Schedule, WarmUp, clip_grad_norm};
//! use nn_core::{ConstZero, SMatrix};
//!
//! type Theta = SMatrix<f32, 3, 1>;
//! let mut params = Theta::new(1.0, -2.0, 3.0);
//! let mut grads = Theta::ZERO;
//! let mut optimizer = Adam::<f32, Theta>::new(0.1);
//! let schedule = WarmUp { steps: 10, inner: Cosine::new(0.1, 490) };
//! for step in 0..500 {
//!     grads.copy_from(&params); // the backward pass
//!     clip_grad_norm(grads.as_mut_slice(), 1.0);
//!     optimizer.set_learning_rate(schedule.learning_rate(step));
//!     optimizer.step(params.as_mut_slice(), grads.as_slice());
//! }
//! assert!(params.norm() < 1e-3);
//! ```
//!
//! Each optimizer's state is a few values of the gradient type `S` (one for SGD, up to three
//! for RMSprop), held inline, so as big as the network's parameters, or several times that.
//! Build it in place: `new_boxed(config)` (feature `alloc`) zeroes it on the heap and
//! configures it there, never on the stack; without an allocator, `static` storage holds
//! `Adam::ZERO` (every optimizer is [`ConstZero`](crate::ConstZero) and
//! [`Zeroable`](crate::Zeroable)) and `reset_with(config)` configures it in place.
//! `new`/`with_config` return it by value, on the stack: for small networks only. Arithmetic is done in `T` (`f32` for an `f32` network); hyper-parameters are
//! `f64` and converted with [`Real::of`] at each step.

use crate::Real;

mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;
#[cfg(test)]
mod test_util;

pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, global_norm};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{Constant, Cosine, Exponential, StepDecay, WarmUp};
pub use sgd::{Sgd, SgdConfig};

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

/// Panics unless `params` and `grads` both have `len` scalars (the state's `S::LEN`).
#[inline]
#[track_caller]
fn check_lengths<T>(params: &[T], grads: &[T], len: usize) {
    assert_eq!(
        params.len(),
        len,
        "optimizer step: params length differs from the state's"
    );
    assert_eq!(
        grads.len(),
        len,
        "optimizer step: grads length differs from the state's"
    );
}

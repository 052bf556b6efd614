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
//! A network is stepped by type, `optimizer.update(&mut net, &grads)`: the optimizer's state
//! is shaped like one network's gradient struct ([`Optimizer::Grads`]), so stepping another
//! network does not compile. Parameters that are not a network go through the slices of
//! [`Optimizer::step`], as in this loop on `f(θ) = ½‖θ‖²` (gradient `θ`) with an `SMatrix` as
//! the parameter struct:
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

use crate::{Network, Params, Real};

mod adam;
mod clip;
mod rmsprop;
mod schedule;
mod sgd;
#[cfg(test)]
mod test_util;

pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub(crate) use clip::norm_and_finiteness;
pub use clip::{clip_grad_norm, global_norm};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{Constant, Cosine, Exponential, StepDecay, WarmUp};
pub use sgd::{Sgd, SgdConfig};

/// One update rule, applied to all parameters at once.
///
/// Its state has the shape of one gradient struct, [`Optimizer::Grads`], so it steps one
/// network type: [`Optimizer::update`] takes the network and its gradients by type, and an
/// optimizer built for another network is a compile error there (and in
/// [`train_step`](crate::train::train_step) and the `Trainer`).
pub trait Optimizer<T: Real> {
    /// The gradient struct its state is shaped like (`NetGrads<T>`): the optimizer steps the
    /// networks whose [`Network::Grads`] this is.
    type Grads: Params<T>;

    /// One step on `net`, given its gradients: `θ ← θ − α_t·(update from grads)`. The
    /// network's gradient type must be the optimizer's, which the compiler checks. (Not
    /// callable on a `dyn Optimizer`, which has [`Optimizer::step`].)
    fn update<N: Network<T, Grads = Self::Grads>>(&mut self, net: &mut N, grads: &N::Grads)
    where
        Self: Sized,
    {
        // On a pool's threads, each thread updates its share of every tensor
        // (`parallel::by_tensors`).
        let visit: fn(&mut dyn FnMut(crate::NamedTensor)) = N::visit_tensors;
        crate::parallel::by_tensors(N::PARAM_COUNT, visit, || {
            self.step(net.as_mut_slice(), grads.as_slice())
        });
    }

    /// Applies one step to `params` given `grads`, as flat slices of `Self::Grads::LEN`
    /// scalars in the same order: what [`Optimizer::update`] calls, for parameters that are not
    /// a network (a plain matrix, as in the example above).
    ///
    /// # Panics
    /// If either slice has another length than the state (use [`Optimizer::update`] on a
    /// network: its types rule that out).
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

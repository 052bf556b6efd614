//! Activation functions: element-wise ones and softmax / log-softmax over each sample.
//!
//! Each is a small `Copy` struct implementing [`Activation`]; the `network!` macro names them
//! `relu(x)` in a `forward` block and `Relu` in a sequential network.

mod accurate;
mod elementwise;
mod fast;
mod softmax;

pub use accurate::{sigmoid_f32, tanh_f32};
pub use elementwise::{
    Elementwise, Elu, Gelu, Heaviside, HeavisideSte, Identity, LeakyRelu, Relu, Sigmoid, Sign,
    SignSte, Silu, Softplus, Tanh,
};
pub use fast::{SigmoidFast, TanhFast, exp_fast, sigmoid_fast, tanh_fast};
pub use softmax::{LogSoftmax, Softmax};

use crate::Real;
use nalgebra::SMatrix;

/// A parameter-free map from `N` features to `N` features, applied to each sample (column).
///
/// Contract, as for [`Layer`](crate::Layer): `forward` overwrites `y`; `backward` *adds*
/// `Jᵀ·dy` to `dx`, given the `x` and `y` of the matching `forward`.
pub trait Activation<T: Real> {
    /// Writes `y = f(x)`.
    fn forward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
    );

    /// Adds `∂L/∂x = Jᵀ·∂L/∂y` to `dx`.
    fn backward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        y: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: &mut SMatrix<T, N, B>,
    );
}

#[cfg(test)]
mod tests;

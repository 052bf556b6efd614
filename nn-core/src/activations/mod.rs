//! Activation functions: element-wise ones and softmax / log-softmax over each sample.
//!
//! Each is a small `Copy` struct implementing [`Activation`]; the `network!` macro names them
//! `relu(x)` in a `forward` block and `Relu` in a sequential network.

mod accurate;
mod elementwise;
mod fast;
mod softmax;

pub use accurate::{exp_f32, sigmoid_f32, tanh_f32};
pub(crate) use accurate::{exp_f32_in_place, sigmoid_f32_slice, tanh_f32_slice};
pub use elementwise::{
    Elementwise, Elu, Gelu, Heaviside, HeavisideSte, Identity, LeakyRelu, Relu, Sigmoid, Sign,
    SignSte, Silu, Softplus, Tanh,
};
pub use fast::{SigmoidFast, TanhFast, exp_fast, sigmoid_fast, tanh_fast};
pub use softmax::{LogSoftmax, Softmax};

use crate::Real;
use nalgebra::SMatrix;

/// What an activation's backward pass reads of its forward pass: its input `x`, its output
/// `y`, or nothing.
///
/// The `network!` macro keeps in the training tape only the values some backward pass reads:
/// a ReLU, sigmoid or tanh differentiates from its output (`relu′ = [y > 0]`,
/// `σ′ = y(1 − y)`, `tanh′ = 1 − y²`), so the tape keeps `y` and not the value before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// The input `x`.
    Input,
    /// The output `y = f(x)`.
    Output,
    /// Neither: the derivative is a constant (identity: 1; sign and the step: 0).
    Nothing,
}

/// A parameter-free map from `N` features to `N` features, applied to each sample (column).
///
/// Contract, as for [`Layer`](crate::Layer): `forward` overwrites `y`; `backward` *adds*
/// `Jᵀ·dy` to `dx`, given the value of the matching `forward` that [`READS`](Self::READS)
/// names.
pub trait Activation<T: Real> {
    /// What `backward` reads: `x`, `y`, or nothing.
    const READS: Reads;

    /// Writes `y = f(x)`.
    fn forward<const N: usize, const B: usize>(
        &self,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
    );

    /// Adds `∂L/∂x = Jᵀ·∂L/∂y` to `dx`. `value` is the forward pass's `x` or `y`, as
    /// [`READS`](Self::READS) says; with [`Reads::Nothing`] it is any matrix of the shape
    /// (the generated code passes `dy`) and is not read.
    fn backward<const N: usize, const B: usize>(
        &self,
        value: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: &mut SMatrix<T, N, B>,
    );

    /// Overwrites `dx` with what [`backward`](Self::backward) adds to a zero `dx` (the same
    /// bits: `0 + Jᵀ·dy`, so a `−0` term gives `+0` as the sum would). The generated backward
    /// pass calls it where the activation is the first to contribute to `dx`, instead of
    /// zeroing `dx` and adding. The default does exactly that.
    #[inline]
    fn backward_overwrite<const N: usize, const B: usize>(
        &self,
        value: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: &mut SMatrix<T, N, B>,
    ) {
        dx.as_mut_slice().fill(T::ZERO);
        self.backward(value, dy, dx);
    }
}

#[cfg(test)]
mod tests;

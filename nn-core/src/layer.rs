//! The `Layer` trait: what a parameterised layer provides to generated networks.

use crate::{Params, Real};
use nalgebra::SMatrix;

/// A layer with parameters, mapping `IN` features to `OUT` features, for a batch of `B`
/// samples stored one per column.
///
/// The built-in [`Dense`](crate::layers::Dense) implements it, and so can a layer of your
/// own: declare it in `network!` as `name: MyLayer<T, ..> -> [OUT]` and the generated code
/// calls these two methods. The layer's gradient has the layer's own type (`Self`), so the
/// generated gradient struct holds one `Self` per layer.
///
/// Contract, which the generated backward pass relies on:
/// - `forward` overwrites `y` (it never reads it);
/// - `backward` *adds* `∂L/∂x` to `dx` and the parameter gradients to `grads`, given the
///   `x` and `y` of the matching `forward` and the upstream gradient `dy = ∂L/∂y`. Adding
///   (not overwriting) is what makes fan-out and shared layers correct.
///
/// Check an implementation with
/// [`gradcheck::check_layer`](crate::gradcheck::check_layer).
pub trait Layer<T: Real, const IN: usize, const OUT: usize>: Params<T> {
    /// Writes `y = f(x)`.
    fn forward<const B: usize>(&self, x: &SMatrix<T, IN, B>, y: &mut SMatrix<T, OUT, B>);

    /// Adds `∂L/∂x` to `dx` and `∂L/∂θ` to `grads`.
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        y: &SMatrix<T, OUT, B>,
        dy: &SMatrix<T, OUT, B>,
        dx: &mut SMatrix<T, IN, B>,
        grads: &mut Self,
    );
}

//! Shared test fixtures: a small `Params` type, the hand-computed steps' inputs, and a
//! quadratic to minimise.

use super::{Optimizer, Schedule};
use crate::{ConstZero, Params, Real, Zeroable};
use nalgebra::{Matrix3, SMatrix, Vector3};

/// A parameter struct of two tensors (3 scalars), laid out as generated networks are.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Pair<T: Real> {
    pub a: SMatrix<T, 2, 1>,
    pub b: SMatrix<T, 1, 1>,
}

/// `θ₀` of the hand-computed steps.
pub const THETA0: [f64; 3] = [1.0, 2.0, 3.0];

/// The gradients `g₁, g₂, g₃` of the hand-computed steps (fixed, not functions of `θ`).
pub const GRADS: [[f64; 3]; 3] = [[0.5, -1.0, 2.0], [1.0, 0.5, -1.0], [-0.25, 0.75, 0.5]];

/// Runs `optimizer` from [`THETA0`] over [`GRADS`] and checks `θ_t` against `expected[t − 1]`
/// to `1e-12`.
#[track_caller]
pub fn check_steps(optimizer: &mut impl Optimizer<f64>, expected: &[[f64; 3]]) {
    let mut theta = THETA0;
    for (t, (grads, expected)) in GRADS.iter().zip(expected).enumerate() {
        optimizer.step(&mut theta, grads);
        for i in 0..3 {
            assert!(
                (theta[i] - expected[i]).abs() < 1e-12,
                "step {}: θ = {theta:?}, expected {expected:?}",
                t + 1
            );
        }
    }
}

/// `A` of the quadratic `f(θ) = ½‖Aθ − b‖²`: symmetric, eigenvalues `(3 − √3)/2 ≈ 0.63`,
/// `1.5`, `(3 + √3)/2 ≈ 2.37`, so the Hessian `AᵀA` has eigenvalues `0.40`, `2.25`, `5.60`.
pub fn a() -> Matrix3<f64> {
    Matrix3::new(2.0, 0.5, 0.0, 0.5, 1.5, 0.5, 0.0, 0.5, 1.0)
}

/// The minimiser `θ* = A⁻¹b` of the quadratic.
pub const OPTIMUM: [f64; 3] = [1.0, -2.0, 0.5];

/// `∇f(θ) = Aᵀ(Aθ − b)`, with `b = A·θ*`.
pub fn gradient(theta: &Vector3<f64>) -> Vector3<f64> {
    let a = a();
    let b = a * Vector3::from(OPTIMUM);
    a.transpose() * (a * theta - b)
}

/// Minimises the quadratic from `θ = 0` for `steps` steps, with the learning rate of each
/// step from `schedule`; returns the final `θ`.
pub fn minimise(
    optimizer: &mut impl Optimizer<f64>,
    schedule: &impl Schedule,
    steps: usize,
) -> Vector3<f64> {
    let mut theta = Vector3::<f64>::zeros();
    for step in 0..steps {
        optimizer.set_learning_rate(schedule.learning_rate(step));
        let grads = gradient(&theta);
        optimizer.step(theta.as_mut_slice(), grads.as_slice());
    }
    theta
}

/// `‖θ − θ*‖` for the quadratic's minimiser `θ*`.
pub fn distance_to_optimum(theta: &Vector3<f64>) -> f64 {
    (theta - Vector3::from(OPTIMUM)).norm()
}

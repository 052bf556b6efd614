//! Element-wise graph operations used by generated code: `a + b` and `a ⊙ b`, with their
//! backward steps.
//!
//! - `out = a + b`: `∂L/∂a += ∂L/∂out`, `∂L/∂b += ∂L/∂out`
//! - `out = a ⊙ b`: `∂L/∂a += ∂L/∂out ⊙ b`, `∂L/∂b += ∂L/∂out ⊙ a`

use crate::Real;
use nalgebra::SMatrix;

/// Writes `out = a + b`.
#[inline]
pub fn add<T: Real, const N: usize, const B: usize>(
    a: &SMatrix<T, N, B>,
    b: &SMatrix<T, N, B>,
    out: &mut SMatrix<T, N, B>,
) {
    for ((out, &a), &b) in out.iter_mut().zip(a.iter()).zip(b.iter()) {
        *out = a + b;
    }
}

/// Writes `out = a ⊙ b` (element-wise product).
#[inline]
pub fn mul<T: Real, const N: usize, const B: usize>(
    a: &SMatrix<T, N, B>,
    b: &SMatrix<T, N, B>,
    out: &mut SMatrix<T, N, B>,
) {
    for ((out, &a), &b) in out.iter_mut().zip(a.iter()).zip(b.iter()) {
        *out = a * b;
    }
}

/// Adds `a ⊙ b` to `acc`: the backward step of [`mul`] for one operand
/// (`∂L/∂a += ∂L/∂out ⊙ b`).
#[inline]
pub fn mul_acc<T: Real, const N: usize, const B: usize>(
    a: &SMatrix<T, N, B>,
    b: &SMatrix<T, N, B>,
    acc: &mut SMatrix<T, N, B>,
) {
    for ((acc, &a), &b) in acc.iter_mut().zip(a.iter()).zip(b.iter()) {
        *acc += a * b;
    }
}

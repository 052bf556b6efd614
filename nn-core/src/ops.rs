//! Element-wise graph operations used by generated code: `a + b` and `a ⊙ b`, with their
//! backward steps.
//!
//! - `out = a + b`: `∂L/∂a += ∂L/∂out`, `∂L/∂b += ∂L/∂out` ([`add`], [`acc`])
//! - `out = a ⊙ b`: `∂L/∂a += ∂L/∂out ⊙ b`, `∂L/∂b += ∂L/∂out ⊙ a` ([`mul`], [`mul_acc`])
//! - `out = concat(a, b)`: `∂L/∂a += (∂L/∂out)[rows of a]` ([`copy_rows`], [`acc_rows`])
//! - `out = flatten(x)`: `∂L/∂x += ∂L/∂out` ([`copy`], [`acc`])

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

/// Writes `out = x`: `flatten`, whose value is its input's (stored as a vector).
#[inline]
pub fn copy<T: Real, const N: usize, const B: usize>(
    x: &SMatrix<T, N, B>,
    out: &mut SMatrix<T, N, B>,
) {
    out.copy_from(x);
}

/// Adds `d` to `acc`: the backward step of [`add`] for one operand, and of [`copy`].
#[inline]
pub fn acc<T: Real, const N: usize, const B: usize>(
    d: &SMatrix<T, N, B>,
    acc: &mut SMatrix<T, N, B>,
) {
    *acc += d;
}

/// Writes `x` into rows `start .. start + R` of `out`: one part of `concat`.
#[inline]
pub fn copy_rows<T: Real, const R: usize, const N: usize, const B: usize>(
    x: &SMatrix<T, R, B>,
    out: &mut SMatrix<T, N, B>,
    start: usize,
) {
    out.fixed_rows_mut::<R>(start).copy_from(x);
}

/// Adds rows `start .. start + R` of `d` to `acc`: the backward step of [`copy_rows`].
#[inline]
pub fn acc_rows<T: Real, const R: usize, const N: usize, const B: usize>(
    d: &SMatrix<T, N, B>,
    acc: &mut SMatrix<T, R, B>,
    start: usize,
) {
    *acc += d.fixed_rows::<R>(start);
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

//! Element-wise graph operations used by generated code: `a + b` and `a ⊙ b`, with their
//! backward steps.
//!
//! - `out = a + b`: `∂L/∂a += ∂L/∂out`, `∂L/∂b += ∂L/∂out` ([`add`], [`acc`])
//! - `out = a ⊙ b`: `∂L/∂a += ∂L/∂out ⊙ b`, `∂L/∂b += ∂L/∂out ⊙ a` ([`mul`], [`mul_acc`])
//! - `out = concat(a, b)`: `∂L/∂a += (∂L/∂out)[rows of a]` ([`copy_rows`], [`acc_rows`])
//! - `out = flatten(x)`: `∂L/∂x += ∂L/∂out` ([`copy`], [`acc`])

use crate::Real;
use nalgebra::SMatrix;

/// The sizes of an element-wise operation's operands agree. They always do in a network
/// the macro accepted; where a size is a named constant, the macro's own const assertion
/// (on the user's tokens) reports a mismatch, and taking each operand's size as its own
/// parameter keeps rustc from adding a type error on the whole macro after it. Checked
/// when the function is instantiated.
macro_rules! same_sizes {
    ($($n:ident),+) => {
        const { assert!(same_sizes!(@all $($n),+), "element-wise operands of different sizes") }
    };
    (@all $first:ident $(, $rest:ident)*) => { true $(&& $first == $rest)* };
}

/// Writes `out = a + b`.
#[inline]
pub fn add<T: Real, const N: usize, const M: usize, const P: usize, const B: usize>(
    a: &SMatrix<T, N, B>,
    b: &SMatrix<T, M, B>,
    out: &mut SMatrix<T, P, B>,
) {
    same_sizes!(N, M, P);
    let (a, b) = (a.as_slice(), b.as_slice());
    for ((out, &a), &b) in out.as_mut_slice().iter_mut().zip(a).zip(b) {
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
pub fn acc<T: Real, const N: usize, const M: usize, const B: usize>(
    d: &SMatrix<T, N, B>,
    acc: &mut SMatrix<T, M, B>,
) {
    same_sizes!(N, M);
    for (acc, &d) in acc.as_mut_slice().iter_mut().zip(d.as_slice()) {
        *acc += d;
    }
}

/// Writes `0 + d` to `out`: [`acc`] onto a gradient not zeroed first (the generated backward
/// pass's, when this is the first contribution to it). `0 +` keeps `acc`'s bits (a `−0`
/// becomes `+0`, as when added to a zeroed gradient).
#[inline]
pub fn acc_overwrite<T: Real, const N: usize, const M: usize, const B: usize>(
    d: &SMatrix<T, N, B>,
    out: &mut SMatrix<T, M, B>,
) {
    same_sizes!(N, M);
    for (out, &d) in out.as_mut_slice().iter_mut().zip(d.as_slice()) {
        *out = T::ZERO + d;
    }
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
pub fn mul<T: Real, const N: usize, const M: usize, const P: usize, const B: usize>(
    a: &SMatrix<T, N, B>,
    b: &SMatrix<T, M, B>,
    out: &mut SMatrix<T, P, B>,
) {
    same_sizes!(N, M, P);
    let (a, b) = (a.as_slice(), b.as_slice());
    for ((out, &a), &b) in out.as_mut_slice().iter_mut().zip(a).zip(b) {
        *out = a * b;
    }
}

/// Adds `a ⊙ b` to `acc`: the backward step of [`mul`] for one operand
/// (`∂L/∂a += ∂L/∂out ⊙ b`).
#[inline]
pub fn mul_acc<T: Real, const N: usize, const M: usize, const P: usize, const B: usize>(
    a: &SMatrix<T, N, B>,
    b: &SMatrix<T, M, B>,
    acc: &mut SMatrix<T, P, B>,
) {
    same_sizes!(N, M, P);
    let (a, b) = (a.as_slice(), b.as_slice());
    for ((acc, &a), &b) in acc.as_mut_slice().iter_mut().zip(a).zip(b) {
        *acc += a * b;
    }
}

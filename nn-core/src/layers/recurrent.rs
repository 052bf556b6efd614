//! What the recurrent layers ([`Rnn`](super::Rnn), [`Gru`](super::Gru),
//! [`Lstm`](super::Lstm)) share: their size rules, the time steps of a batch as row ranges
//! of its matrix (step `t` of every sample is rows `t·D .. (t + 1)·D`), the initial state,
//! and the sums and activation their backward and gates use.
//!
//! Their batch-sized temporaries (a step's input `x_t`, the states, the gates and the
//! gradients carried through time) live in the layer's scratch memory
//! ([`Layer::SCRATCH`](crate::Layer::SCRATCH)` · B` scalars, planned by the `network!`
//! macro), carved into matrices by [`carve`](crate::memory::carve): nothing batch-sized is
//! on the stack.

use crate::Real;
use crate::activations::{Elementwise, Sigmoid};
use nalgebra::SMatrix;

/// Compile-time size rules of a recurrent layer with `init` initial-state values.
pub(super) const fn check_sizes(
    d: usize,
    h: usize,
    s: usize,
    input: usize,
    output: usize,
    last: bool,
    init: usize,
) {
    assert!(
        s >= 1,
        "recurrent layer: the sequence needs at least one step (S ≥ 1)"
    );
    assert!(
        d >= 1 && h >= 1,
        "recurrent layer: D and H must be at least 1"
    );
    assert!(
        input == s * d + init,
        "recurrent layer: IN must be S·D, plus H (GRU, RNN) or 2·H (LSTM) with INIT"
    );
    assert!(
        output == if last { h } else { s * h },
        "recurrent layer: OUT must be S·H, or H with LAST"
    );
}

/// The first output row of step `t`'s hidden state: `t·H`, or with `LAST` row 0 for the
/// last step and none for the others.
#[inline]
pub(super) fn output_row<const S: usize, const H: usize, const LAST: bool>(
    t: usize,
) -> Option<usize> {
    if !LAST {
        Some(t * H)
    } else if t == S - 1 {
        Some(0)
    } else {
        None
    }
}

/// Writes the initial state into `h`: rows `start..start + H` of `x`, or zero for `None`.
#[inline]
pub(super) fn initial<T: Real, const IN: usize, const H: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    start: Option<usize>,
    h: &mut SMatrix<T, H, B>,
) {
    match start {
        Some(start) => read_rows(x, start, h),
        None => h.fill(T::ZERO),
    }
}

/// Copies rows `start..start + M` of `x` (one time step of every sample) into `out`.
#[inline]
pub(super) fn read_rows<T: Real, const N: usize, const M: usize, const B: usize>(
    x: &SMatrix<T, N, B>,
    start: usize,
    out: &mut SMatrix<T, M, B>,
) {
    out.copy_from(&x.fixed_rows::<M>(start));
}

/// Overwrites rows `start..start + M` of `y` with `value`.
#[inline]
pub(super) fn write_rows<T: Real, const N: usize, const M: usize, const B: usize>(
    y: &mut SMatrix<T, N, B>,
    start: usize,
    value: &SMatrix<T, M, B>,
) {
    y.fixed_rows_mut::<M>(start).copy_from(value);
}

/// Adds `value` to rows `start..start + M` of `dx`.
#[inline]
pub(super) fn add_rows<T: Real, const N: usize, const M: usize, const B: usize>(
    dx: &mut SMatrix<T, N, B>,
    start: usize,
    value: &SMatrix<T, M, B>,
) {
    let mut rows = dx.fixed_rows_mut::<M>(start);
    rows += value;
}

/// `sum += m·1` (the sum of `m`'s columns): a bias gradient.
#[inline]
pub(super) fn add_column_sums<T: Real, const M: usize, const B: usize>(
    sum: &mut SMatrix<T, M, 1>,
    m: &SMatrix<T, M, B>,
) {
    for column in m.column_iter() {
        *sum += column;
    }
}

/// The logistic sigmoid, stable for large `|x|` (the activation's own).
#[inline]
pub(super) fn sigmoid<T: Real>(x: T) -> T {
    Sigmoid.value(x)
}

//! What the recurrent layers ([`Rnn`](super::Rnn), [`Gru`](super::Gru),
//! [`Lstm`](super::Lstm)) share: their size rules, the time steps of a batch as row ranges
//! of its matrix (step `t` of every sample is rows `t·D .. (t + 1)·D`), the initial state,
//! the products over every time step at once, and the sums and activation their backward
//! and gates use.
//!
//! **Products over all the steps.** The sequences of a batch are, without an initial state
//! in the input (`IN = S·D`), one column-major `D × S·B` matrix `X`: column `j·S + t` is
//! sample `j`'s `x_t`. So the input-to-hidden products of every step of every sample are
//! one product `W_ih·X` (`G × S·B`, `G` the gate rows: `H`, `3H`, `4H`), as cuDNN and oneDNN
//! do; only the hidden-to-hidden product `W_hh·H_{t−1}` is left in the time loop. Backward
//! likewise sums `∂W_ih += ∂P·Xᵀ` and `∂W_hh += ∂P_h·H_{prev}ᵀ` over every step in one
//! product each, and `∂X += W_ihᵀ·∂P` is one product. With an initial state after each
//! sequence, each sample's `D × S` is a product of its own ([`sequence_pieces`]). These
//! `G × S·B` matrices are "sample-major" (column `j·S + t`); the states in the caches and
//! the gradients `∂P_h` the time loop consumes are "step-major" (step `t` of every sample
//! is one contiguous `· × B` matrix, column `t·B + j`).
//!
//! Their batch-sized temporaries (the input projections, the states, the gates and the
//! gradients carried through time) live in the layer's scratch memory
//! ([`Layer::SCRATCH`](crate::Layer::SCRATCH)` · B` scalars, planned by the `network!`
//! macro), carved into matrices by [`carve`](crate::memory::carve) and [`take`]: nothing
//! batch-sized is on the stack.

use crate::Real;
use crate::activations::{Elementwise, Sigmoid};
use crate::kernels::{self, MatView};
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

/// The logistic sigmoid, stable for large `|x|` (the activation's own).
#[inline]
pub(super) fn sigmoid<T: Real>(x: T) -> T {
    Sigmoid.value(x)
}

/// `tanh`, the activation's own ([`Real::tanh_accurate`]: in `f32` within one ulp and
/// vectorisable, no call to libm; in `f64` libm's).
#[inline]
pub(super) fn tanh<T: Real>(x: T) -> T {
    x.tanh_accurate()
}

/// Takes the first `len` scalars of `scratch` and leaves the rest (as
/// [`carve`](crate::memory::carve), for a buffer whose size is not a type's).
///
/// Panics if `scratch` holds fewer than `len` scalars.
#[inline]
pub(super) fn take<'a, T>(scratch: &mut &'a mut [T], len: usize) -> &'a mut [T] {
    assert!(
        scratch.len() >= len,
        "scratch memory: {len} scalars wanted, {} left (is Layer::SCRATCH too small?)",
        scratch.len()
    );
    let (taken, rest) = core::mem::take(scratch).split_at_mut(len);
    *scratch = rest;
    taken
}

/// An array of matrices as one slice of scalars (the matrices one after another, each
/// column-major): the per-step states of a cache as the `R × N·C` matrix of all of them.
#[inline]
pub(super) fn flat<T: Real, const R: usize, const C: usize, const N: usize>(
    matrices: &[SMatrix<T, R, C>; N],
) -> &[T] {
    const {
        assert!(size_of::<[SMatrix<T, R, C>; N]>() == R * C * N * size_of::<T>());
    };
    // SAFETY: a static `R × C` matrix is `R·C` contiguous, initialised `T`s (`repr(C)` over
    // `repr(transparent)` `[[T; R]; C]`, no padding: asserted above), so an array of `N` of
    // them is `R·C·N` of them, aligned for `T`. The slice borrows `matrices`.
    unsafe { core::slice::from_raw_parts(matrices.as_ptr().cast::<T>(), R * C * N) }
}

/// [`flat`], mutable.
#[inline]
pub(super) fn flat_mut<T: Real, const R: usize, const C: usize, const N: usize>(
    matrices: &mut [SMatrix<T, R, C>; N],
) -> &mut [T] {
    const {
        assert!(size_of::<[SMatrix<T, R, C>; N]>() == R * C * N * size_of::<T>());
    };
    // SAFETY: as in `flat`; the exclusive borrow of the matrices makes the slice exclusive,
    // and every bit pattern written through it is a valid `T`.
    unsafe { core::slice::from_raw_parts_mut(matrices.as_mut_ptr().cast::<T>(), R * C * N) }
}

/// How the time steps of a batch's sequences split into products: `(pieces, steps)`, the
/// sequences being `pieces` column-major `D × steps` matrices, piece `p` from scalar `p·IN`
/// of the batch. One piece of `S·B` steps when the input is only the sequence
/// (`IN = S·D`: the batch is one matrix), else one piece of `S` per sample (the initial
/// state sits between two samples' sequences).
#[inline]
pub(super) const fn sequence_pieces<const S: usize, const D: usize, const IN: usize>(
    b: usize,
) -> (usize, usize) {
    if IN == S * D { (1, S * b) } else { (b, S) }
}

/// `P = W·X` for every time step of every sample: `P` (`G × S·B`, sample-major: column
/// `j·S + t`) in `p`, the input's share of the pre-activations.
#[inline]
pub(super) fn input_products<
    T: Real,
    const G: usize,
    const D: usize,
    const S: usize,
    const IN: usize,
    const B: usize,
>(
    w: &SMatrix<T, G, D>,
    x: &SMatrix<T, IN, B>,
    p: &mut [T],
) {
    let (pieces, steps) = sequence_pieces::<S, D, IN>(B);
    let x = x.as_slice();
    for piece in 0..pieces {
        let xs = &x[piece * IN..piece * IN + steps * D];
        let ps = &mut p[piece * steps * G..(piece + 1) * steps * G];
        let (w, xs) = (MatView::new(w.as_slice(), G), MatView::new(xs, D));
        kernels::matmul_view(G, steps, D, ps, G, w, xs, false);
    }
}

/// `∂W += ∂P·Xᵀ` over every time step of every sample (`∂P` sample-major, as
/// [`input_products`]), and, when `dx` is given, `∂X += Wᵀ·∂P` into its sequence rows.
#[inline]
pub(super) fn input_gradients<
    T: Real,
    const G: usize,
    const D: usize,
    const S: usize,
    const IN: usize,
    const B: usize,
>(
    w: &SMatrix<T, G, D>,
    x: &SMatrix<T, IN, B>,
    dp: &[T],
    dw: &mut SMatrix<T, G, D>,
    dx: Option<&mut SMatrix<T, IN, B>>,
) {
    let (pieces, steps) = sequence_pieces::<S, D, IN>(B);
    let x = x.as_slice();
    for piece in 0..pieces {
        let xs = MatView::new(&x[piece * IN..piece * IN + steps * D], D);
        let dps = MatView::new(&dp[piece * steps * G..(piece + 1) * steps * G], G);
        kernels::matmul_view(G, D, steps, dw.as_mut_slice(), G, dps, xs.t(), true);
    }
    if let Some(dx) = dx {
        let dx = dx.as_mut_slice();
        let wt = MatView::new(w.as_slice(), G).t();
        for piece in 0..pieces {
            let dxs = &mut dx[piece * IN..piece * IN + steps * D];
            let dps = MatView::new(&dp[piece * steps * G..(piece + 1) * steps * G], G);
            kernels::matmul_view(D, steps, G, dxs, D, wt, dps, true);
        }
    }
}

/// `∂W_hh += Σ_t ∂P_t·h_{t−1}ᵀ`: `∂P` step-major (`G × B` for step `t` from scalar
/// `t·G·B`), `hs` the states `h_0 … h_{S−1}` after each step, `h0` the initial state (`None`
/// when it is zero). Steps `1 … S−1` are one product (their `h_{t−1}` are `hs[0 .. S−1]`,
/// contiguous), step 0 one more.
#[inline]
pub(super) fn hidden_weight_gradient<
    T: Real,
    const G: usize,
    const H: usize,
    const S: usize,
    const B: usize,
>(
    dp: &[T],
    hs: &[SMatrix<T, H, B>; S],
    h0: Option<&SMatrix<T, H, B>>,
    dw: &mut SMatrix<T, G, H>,
) {
    let n = (S - 1) * B;
    let dps = MatView::new(&dp[G * B..G * B * S], G);
    let hprev = MatView::new(&flat(hs)[..H * n], H);
    kernels::matmul_view(G, H, n, dw.as_mut_slice(), G, dps, hprev.t(), true);
    if let Some(h0) = h0 {
        let dp0 = MatView::new(&dp[..G * B], G);
        let h0 = MatView::new(h0.as_slice(), H);
        kernels::matmul_view(G, H, B, dw.as_mut_slice(), G, dp0, h0.t(), true);
    }
}

/// `sum += Σ` of the `G`-scalar columns of `m` (a bias gradient over every step).
#[inline]
pub(super) fn add_slice_column_sums<T: Real, const G: usize>(sum: &mut SMatrix<T, G, 1>, m: &[T]) {
    let sum: &mut [T; G] = sum.as_mut_slice().try_into().unwrap();
    for column in m.chunks_exact(G) {
        for (s, &v) in sum.iter_mut().zip(column) {
            *s += v;
        }
    }
}

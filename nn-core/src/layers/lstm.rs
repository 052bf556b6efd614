//! Long short-term memory: [`Lstm`] (PyTorch's `nn.LSTM`, one layer), its cache
//! [`LstmCache`] and its streaming state [`LstmState`].

use super::recurrent::{
    add_rows, add_slice_column_sums, check_sizes, flat, flat_mut, hidden_weight_gradient, initial,
    input_gradients, input_products, output_row, sigmoid, take, tanh, write_rows,
};
use crate::memory::carve;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable, kernels};
use nalgebra::SMatrix;

/// Long short-term memory, PyTorch's `nn.LSTM(D, H, batch_first=True)` with one layer, one
/// direction, biases and no projection; for `t = 0 … S−1`, from `h_{−1} = h_0`,
/// `c_{−1} = c_0`:
///
/// ```text
/// i_t = σ(W_ii·x_t + b_ii + W_hi·h_{t−1} + b_hi)      input gate
/// f_t = σ(W_if·x_t + b_if + W_hf·h_{t−1} + b_hf)      forget gate
/// g_t = tanh(W_ig·x_t + b_ig + W_hg·h_{t−1} + b_hg)   cell candidate
/// o_t = σ(W_io·x_t + b_io + W_ho·h_{t−1} + b_ho)      output gate
/// c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
/// h_t = o_t ⊙ tanh(c_t)
/// ```
///
/// - input: the sequence `[S, D]`, then with `INIT` `h_0` `[H]` and `c_0` `[H]` (both zero
///   otherwise): `IN = S·D (+ 2H)`;
/// - output: the hidden states `[S, H]` (`OUT = S·H`), or with `LAST` the last one `[H]`
///   (PyTorch's `h_n[0]`). The cell state is internal (its gradient flows through time).
///
/// Parameters (PyTorch's names, shapes and order; `GH = 4·H`), the four gates stacked in
/// PyTorch's order `(i, f, g, o)`, rows `0..H`, `H..2H`, `2H..3H`, `3H..4H`:
/// `weight_ih_l0` `[4H, D]` = `[W_ii; W_if; W_ig; W_io]`, `weight_hh_l0` `[4H, H]` =
/// `[W_hi; W_hf; W_hg; W_ho]`, `bias_ih_l0` `[4H]`, `bias_hh_l0` `[4H]`. [`Layer::init`]
/// initialises the two stacked weights by the network's scheme (fans from these shapes)
/// and the biases to zero (no forget-gate bias of 1 as Keras' `unit_forget_bias`); PyTorch
/// draws all four from `U(−1/√H, 1/√H)`.
///
/// Backward through time: with `∂h = ∂L/∂h_t` (the output's gradient plus what step `t + 1`
/// sends back) and `∂c` what step `t + 1` sends back for `c_t`:
/// `∂c ← ∂c + ∂h ⊙ o ⊙ (1 − tanh² c_t)`, then the gate pre-activations get
/// `δ = [∂c ⊙ g ⊙ i(1 − i); ∂c ⊙ c_{t−1} ⊙ f(1 − f); ∂c ⊙ i ⊙ (1 − g²);
/// ∂h ⊙ tanh c_t ⊙ o(1 − o)]`, `∂W_ih += δ·x_tᵀ`, `∂W_hh += δ·h_{t−1}ᵀ`,
/// `∂b_ih = ∂b_hh += δ`, `∂x_t += W_ihᵀ·δ`; step `t − 1` receives `∂L/∂h_{t−1} = W_hhᵀ·δ`
/// and `∂L/∂c_{t−1} = ∂c ⊙ f` (into `h_0`'s and `c_0`'s rows with `INIT`).
///
/// The sizes (`GH = 4H`, `IN`, `OUT`, `S ≥ 1`) are checked at compile time where the layer
/// is used.
///
/// Sequence layout, `INIT`, `LAST`, the batched computation and the streaming
/// [`Lstm::step`] are as for [`Rnn`](super::Rnn#sequences-all-recurrent-layers).
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Lstm<
    T: Real,
    const D: usize,
    const H: usize,
    const GH: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
> {
    /// `[W_ii; W_if; W_ig; W_io]`, `[4H, D]`.
    pub weight_ih_l0: SMatrix<T, GH, D>,
    /// `[W_hi; W_hf; W_hg; W_ho]`, `[4H, H]`.
    pub weight_hh_l0: SMatrix<T, GH, H>,
    /// `[b_ii; b_if; b_ig; b_io]`, `[4H]`.
    pub bias_ih_l0: SMatrix<T, GH, 1>,
    /// `[b_hi; b_hf; b_hg; b_ho]`, `[4H]`.
    pub bias_hh_l0: SMatrix<T, GH, 1>,
}

/// What [`Lstm`]'s training forward pass keeps for backward, for `B` samples: per time
/// step, the gates and the new cell and hidden states.
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct LstmCache<T: Real, const H: usize, const GH: usize, const S: usize, const B: usize> {
    /// `[i_t; f_t; g_t; o_t]` (after their activations), `4H × S` per sample (column `t`
    /// is step `t`): where the input products of all the steps are computed, as one product.
    pub gates: [SMatrix<T, GH, S>; B],
    /// `c_t`, `H × B` per step.
    pub c: [SMatrix<T, H, B>; S],
    /// `h_t`, `H × B` per step.
    pub h: [SMatrix<T, H, B>; S],
}

/// The state [`Lstm::step`] carries from one time step to the next: the hidden state `h`
/// and the cell state `c`.
///
/// [`LstmState::new`] (and `Default`) is the zero state the whole-sequence forward pass
/// starts from without `INIT`; set `h` and `c` to start from another `(h_0, c_0)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmState<T: Real, const H: usize> {
    /// `h_t`, the last output.
    pub h: SMatrix<T, H, 1>,
    /// `c_t`, the cell state.
    pub c: SMatrix<T, H, 1>,
}

impl<T: Real, const H: usize> LstmState<T, H> {
    /// The zero state.
    pub const fn new() -> Self {
        Self {
            h: SMatrix::ZERO,
            c: SMatrix::ZERO,
        }
    }

    /// Back to the zero state, for a new sequence.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

impl<T: Real, const H: usize> Default for LstmState<T, H> {
    fn default() -> Self {
        Self::new()
    }
}

/// Compile-time size rules.
const fn check<
    const D: usize,
    const H: usize,
    const GH: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
>() {
    assert!(GH == 4 * H, "Lstm: GH must be 4·H");
    check_sizes(D, H, S, IN, OUT, LAST, if INIT { 2 * H } else { 0 });
}

impl<
    T: Real,
    const D: usize,
    const H: usize,
    const GH: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
> Lstm<T, D, H, GH, S, IN, OUT, LAST, INIT>
{
    /// One time step for `B` columns: the gates of sample `j` are column `j·steps + t` of
    /// `gates` (`4H` scalars each), which holds `W_ih·x_t` on entry and `[i; f; g; o]` on
    /// exit; `gh` is `W_hh·h_prev`; writes the new states `c` and `h`.
    ///
    /// Compiled for AVX-512 where the CPU has it (the same operations in the same order, so
    /// the same bits, eight `f64` lanes of the exact `σ` and `tanh` at a time).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn cell<const B: usize>(
        &self,
        gates: &mut [T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, GH, B>,
        c_prev: &SMatrix<T, H, B>,
        c: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.cell_avx512(gates, steps, t, gh, c_prev, c, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.cell_avx2(gates, steps, t, gh, c_prev, c, h) };
        }
        self.cell_loops(gates, steps, t, gh, c_prev, c, h);
    }

    /// [`cell`](Self::cell)'s loops compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    fn cell_avx512<const B: usize>(
        &self,
        gates: &mut [T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, GH, B>,
        c_prev: &SMatrix<T, H, B>,
        c: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        self.cell_loops(gates, steps, t, gh, c_prev, c, h);
    }

    /// [`cell`](Self::cell)'s loops compiled for AVX2 (with FMA, into which Rust
    /// fuses no multiply-add: the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    fn cell_avx2<const B: usize>(
        &self,
        gates: &mut [T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, GH, B>,
        c_prev: &SMatrix<T, H, B>,
        c: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        self.cell_loops(gates, steps, t, gh, c_prev, c, h);
    }

    /// [`cell`](Self::cell)'s loops.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn cell_loops<const B: usize>(
        &self,
        gates: &mut [T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, GH, B>,
        c_prev: &SMatrix<T, H, B>,
        c: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        const { assert!(GH == 4 * H, "Lstm: GH must be 4·H") };
        let b_ih: &[T; GH] = self.bias_ih_l0.as_slice().try_into().unwrap();
        let b_hh: &[T; GH] = self.bias_hh_l0.as_slice().try_into().unwrap();
        let (gh, c_prev) = (gh.as_slice(), c_prev.as_slice());
        let (c, h) = (c.as_mut_slice(), h.as_mut_slice());
        for j in 0..B {
            let start = (j * steps + t) * GH;
            let a: &mut [T; GH] = (&mut gates[start..start + GH]).try_into().unwrap();
            let gh: &[T; GH] = gh[j * GH..(j + 1) * GH].try_into().unwrap();
            let c_prev: &[T; H] = c_prev[j * H..(j + 1) * H].try_into().unwrap();
            let c: &mut [T; H] = (&mut c[j * H..(j + 1) * H]).try_into().unwrap();
            let h: &mut [T; H] = (&mut h[j * H..(j + 1) * H]).try_into().unwrap();
            for k in 0..H {
                let (ki, kf, kg, ko) = (k, H + k, 2 * H + k, 3 * H + k);
                let i = sigmoid(a[ki] + gh[ki] + b_ih[ki] + b_hh[ki]);
                let f = sigmoid(a[kf] + gh[kf] + b_ih[kf] + b_hh[kf]);
                let g = tanh(a[kg] + gh[kg] + b_ih[kg] + b_hh[kg]);
                let o = sigmoid(a[ko] + gh[ko] + b_ih[ko] + b_hh[ko]);
                a[ki] = i;
                a[kf] = f;
                a[kg] = g;
                a[ko] = o;
                let c_new = f * c_prev[k] + i * g;
                c[k] = c_new;
                h[k] = o * tanh(c_new);
            }
        }
    }

    /// One time step of one sample, for real-time use: returns `h_t` and keeps `h_t`, `c_t`
    /// in `state`. Feeding a sequence's `x_0 … x_{S−1}` one at a time from
    /// [`LstmState::new`] (or from `(h_0, c_0)` with `INIT`) returns exactly the `h_t` of
    /// [`Layer::forward`]; no allocation, and no limit on the number of steps.
    #[inline]
    pub fn step(&self, x_t: &SMatrix<T, D, 1>, state: &mut LstmState<T, H>) -> SMatrix<T, H, 1> {
        let (mut gates, mut gh) = (SMatrix::<T, GH, 1>::ZERO, SMatrix::ZERO);
        let (mut c, mut h) = (SMatrix::ZERO, SMatrix::ZERO);
        // The products as `forward` makes them (its input product of one column).
        input_products::<T, GH, D, 1, D, 1>(&self.weight_ih_l0, x_t, gates.as_mut_slice());
        kernels::matmul(&mut gh, &self.weight_hh_l0, &state.h, false);
        self.cell(gates.as_mut_slice(), 1, 0, &gh, &state.c, &mut c, &mut h);
        *state = LstmState { h, c };
        h
    }
}

impl<
    T: Real,
    const D: usize,
    const H: usize,
    const GH: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
> Layer<T, IN, OUT> for Lstm<T, D, H, GH, S, IN, OUT, LAST, INIT>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight_ih_l0",
            shape: &[GH, D],
            role: Role::Weight,
        },
        TensorInfo {
            name: "weight_hh_l0",
            shape: &[GH, H],
            role: Role::Weight,
        },
        TensorInfo {
            name: "bias_ih_l0",
            shape: &[GH],
            role: Role::Bias,
        },
        TensorInfo {
            name: "bias_hh_l0",
            shape: &[GH],
            role: Role::Bias,
        },
    ];

    /// Per sample, backward's gate gradients of every step, twice (`4H·S` each: in the
    /// input products' order and in the states'), `h_0`, `c_0`, `∂L/∂h_t` and `∂L/∂c_t`
    /// carried from step `t + 1` and `∂L/∂h_t` with the output's gradient (`H` each):
    /// `8H·S + 5H`. Forward's input products (then gates) of every step (`4H·S`),
    /// `W_hh·h_{t−1}` (`4H`), `h_{t−1}`, `h_t`, `c_{t−1}` and `c_t` take `4H·S + 8H`, no more;
    /// the training forward's `W_hh·h_{t−1}`, `h_0` and `c_0`, `6H`.
    const SCRATCH: usize = 8 * H * S + 5 * H;

    type Cache<const B: usize> = LstmCache<T, H, GH, S, B>;
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        mut scratch: &mut [T],
    ) {
        const { check::<D, H, GH, S, IN, OUT, LAST, INIT>() };
        // The input products of every step, then (in place, step by step) the gates.
        let gates = take(&mut scratch, GH * S * B);
        let gh: &mut SMatrix<T, GH, B> = carve(&mut scratch);
        // The states of steps t and t − 1, swapped at each step.
        let mut h: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let mut h_prev: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let mut c: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let mut c_prev: &mut SMatrix<T, H, B> = carve(&mut scratch);
        input_products::<T, GH, D, S, IN, B>(&self.weight_ih_l0, x, gates);
        initial(x, INIT.then_some(S * D), h);
        initial(x, INIT.then_some(S * D + H), c);
        for t in 0..S {
            core::mem::swap(&mut h, &mut h_prev);
            core::mem::swap(&mut c, &mut c_prev);
            kernels::matmul(gh, &self.weight_hh_l0, h_prev, false);
            self.cell(gates, S, t, gh, c_prev, c, h);
            if !LAST {
                write_rows(y, t * H, h);
            }
        }
        if LAST {
            write_rows(y, 0, h);
        }
    }

    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        cache: &mut LstmCache<T, H, GH, S, B>,
        mut scratch: &mut [T],
    ) {
        const { check::<D, H, GH, S, IN, OUT, LAST, INIT>() };
        let gh: &mut SMatrix<T, GH, B> = carve(&mut scratch);
        let h0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let c0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        initial(x, INIT.then_some(S * D), h0);
        initial(x, INIT.then_some(S * D + H), c0);
        let gates = flat_mut(&mut cache.gates);
        input_products::<T, GH, D, S, IN, B>(&self.weight_ih_l0, x, gates);
        for t in 0..S {
            let (h_done, h_rest) = cache.h.split_at_mut(t);
            let (c_done, c_rest) = cache.c.split_at_mut(t);
            let h_prev = h_done.last().unwrap_or(h0);
            let c_prev = c_done.last().unwrap_or(c0);
            let (c, h) = (&mut c_rest[0], &mut h_rest[0]);
            kernels::matmul(gh, &self.weight_hh_l0, h_prev, false);
            self.cell(gates, S, t, gh, c_prev, c, h);
            if !LAST {
                write_rows(y, t * H, h);
            }
        }
        if LAST {
            write_rows(y, 0, &cache.h[S - 1]);
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &LstmCache<T, H, GH, S, B>,
        dy: &SMatrix<T, OUT, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        mut scratch: &mut [T],
    ) {
        const { check::<D, H, GH, S, IN, OUT, LAST, INIT>() };
        // The gradient of the gates' pre-activations at every step, sample-major (as the
        // input products) and step-major (as the states).
        let d_in = take(&mut scratch, GH * S * B);
        let d_hid = take(&mut scratch, GH * S * B);
        let h0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let c0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        initial(x, INIT.then_some(S * D), h0);
        initial(x, INIT.then_some(S * D + H), c0);
        // ∂L/∂h_t and ∂L/∂c_t sent back by step t + 1 (zero after the last step).
        let carry_h: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let carry_c: &mut SMatrix<T, H, B> = carve(&mut scratch);
        carry_h.fill(T::ZERO);
        carry_c.fill(T::ZERO);
        let dh: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let gates = flat(&cache.gates);
        for t in (0..S).rev() {
            dh.copy_from(carry_h);
            if let Some(row) = output_row::<S, H, LAST>(t) {
                *dh += dy.fixed_rows::<H>(row);
            }
            let c_prev = if t == 0 { &*c0 } else { &cache.c[t - 1] };
            let mut rest = &mut d_hid[t * GH * B..(t + 1) * GH * B];
            let delta_t: &mut SMatrix<T, GH, B> = carve(&mut rest);
            gate_gradients::<T, H, GH, S, B>(
                GateGradients {
                    gates,
                    dh,
                    c: &cache.c[t],
                    c_prev,
                    d_in,
                    delta: delta_t,
                    carry_c,
                },
                t,
            );
            // Step t − 1's gradient; at step 0 that of the initial state, an input.
            if t > 0 || (INIT && dx.is_some()) {
                kernels::matmul_atb(carry_h, &self.weight_hh_l0, delta_t, false);
            }
        }
        // The weight gradients summed over every step, one product each.
        let w_ih = &self.weight_ih_l0;
        input_gradients::<T, GH, D, S, IN, B>(
            w_ih,
            x,
            d_in,
            &mut grads.weight_ih_l0,
            dx.as_deref_mut(),
        );
        let h0 = INIT.then_some(&*h0);
        hidden_weight_gradient(d_hid, &cache.h, h0, &mut grads.weight_hh_l0);
        add_slice_column_sums(&mut grads.bias_ih_l0, d_in);
        add_slice_column_sums(&mut grads.bias_hh_l0, d_hid);
        if INIT && let Some(dx) = dx {
            add_rows(dx, S * D, carry_h);
            add_rows(dx, S * D + H, carry_c);
        }
    }
}

/// What [`gate_gradients`] reads and writes at one step of the backward pass.
struct GateGradients<'a, T: Real, const H: usize, const GH: usize, const B: usize> {
    /// Every step's `[i; f; g; o]`, sample-major (`(j·S + t)·GH`).
    gates: &'a [T],
    /// `∂L/∂h_t`.
    dh: &'a SMatrix<T, H, B>,
    /// `c_t` and `c_{t−1}`.
    c: &'a SMatrix<T, H, B>,
    c_prev: &'a SMatrix<T, H, B>,
    /// The gates' pre-activation gradients of every step, sample-major (written at step `t`).
    d_in: &'a mut [T],
    /// The same of this step, step-major.
    delta: &'a mut SMatrix<T, GH, B>,
    /// `∂L/∂c_t` on entry (from step `t + 1`), `∂L/∂c_{t−1}` on exit.
    carry_c: &'a mut SMatrix<T, H, B>,
}

/// The gates' gradients at step `t` of the backward pass, compiled for AVX-512 where the CPU
/// has it (the same operations in the same order: the same bits).
#[inline]
fn gate_gradients<T: Real, const H: usize, const GH: usize, const S: usize, const B: usize>(
    at: GateGradients<'_, T, H, GH, B>,
    t: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { gate_gradients_avx512::<T, H, GH, S, B>(at, t) };
    }
    #[cfg(target_arch = "x86_64")]
    if kernels::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { gate_gradients_avx2::<T, H, GH, S, B>(at, t) };
    }
    gate_gradient_loops::<T, H, GH, S, B>(at, t);
}

/// [`gate_gradients`]' loops compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gate_gradients_avx512<
    T: Real,
    const H: usize,
    const GH: usize,
    const S: usize,
    const B: usize,
>(
    at: GateGradients<'_, T, H, GH, B>,
    t: usize,
) {
    gate_gradient_loops::<T, H, GH, S, B>(at, t);
}

/// [`gate_gradients`]' loops compiled for AVX2 (with FMA, into which Rust
/// fuses no multiply-add: the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gate_gradients_avx2<T: Real, const H: usize, const GH: usize, const S: usize, const B: usize>(
    at: GateGradients<'_, T, H, GH, B>,
    t: usize,
) {
    gate_gradient_loops::<T, H, GH, S, B>(at, t);
}

/// [`gate_gradients`]' loops.
#[inline(always)]
fn gate_gradient_loops<T: Real, const H: usize, const GH: usize, const S: usize, const B: usize>(
    at: GateGradients<'_, T, H, GH, B>,
    t: usize,
) {
    let GateGradients {
        gates,
        dh,
        c,
        c_prev,
        d_in,
        delta,
        carry_c,
    } = at;
    let (dh_s, c_s, c_prev) = (dh.as_slice(), c.as_slice(), c_prev.as_slice());
    let (delta_s, carry_c) = (delta.as_mut_slice(), carry_c.as_mut_slice());
    for j in 0..B {
        let start = (j * S + t) * GH;
        let gates: &[T; GH] = gates[start..start + GH].try_into().unwrap();
        let delta: &mut [T; GH] = (&mut delta_s[j * GH..(j + 1) * GH]).try_into().unwrap();
        let dh: &[T; H] = dh_s[j * H..(j + 1) * H].try_into().unwrap();
        let c: &[T; H] = c_s[j * H..(j + 1) * H].try_into().unwrap();
        let c_prev: &[T; H] = c_prev[j * H..(j + 1) * H].try_into().unwrap();
        let carry_c: &mut [T; H] = (&mut carry_c[j * H..(j + 1) * H]).try_into().unwrap();
        for k in 0..H {
            let (ki, kf, kg, ko) = (k, H + k, 2 * H + k, 3 * H + k);
            let (i, f, g, o) = (gates[ki], gates[kf], gates[kg], gates[ko]);
            let dh = dh[k];
            let tanh_c = tanh(c[k]);
            let dc = carry_c[k] + dh * o * (T::ONE - tanh_c * tanh_c);
            delta[ki] = dc * g * i * (T::ONE - i);
            delta[kf] = dc * c_prev[k] * f * (T::ONE - f);
            delta[kg] = dc * i * (T::ONE - g * g);
            delta[ko] = dh * tanh_c * o * (T::ONE - o);
            carry_c[k] = dc * f;
        }
        d_in[start..start + GH].copy_from_slice(delta);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, check_f32, check_layer, det_batch, det_matrix, random_matrix, randomize,
        scratch_for, train_pass,
    };

    type Small<
        const S: usize,
        const IN: usize,
        const OUT: usize,
        const LAST: bool,
        const INIT: bool,
    > = Lstm<f64, 3, 4, 16, S, IN, OUT, LAST, INIT>;

    fn example<
        const S: usize,
        const IN: usize,
        const OUT: usize,
        const LAST: bool,
        const INIT: bool,
    >(
        seed: u64,
    ) -> Small<S, IN, OUT, LAST, INIT> {
        let mut layer = Small::ZERO;
        randomize(&mut layer, seed, 0.6);
        layer
    }

    /// The same parameters in a layer of other sizes.
    fn same_params<
        const S: usize,
        const IN: usize,
        const OUT: usize,
        const L: bool,
        const I: bool,
        const S2: usize,
        const IN2: usize,
        const OUT2: usize,
        const L2: bool,
        const I2: bool,
    >(
        layer: &Small<S, IN, OUT, L, I>,
    ) -> Small<S2, IN2, OUT2, L2, I2> {
        Lstm {
            weight_ih_l0: layer.weight_ih_l0,
            weight_hh_l0: layer.weight_hh_l0,
            bias_ih_l0: layer.bias_ih_l0,
            bias_hh_l0: layer.bias_hh_l0,
        }
    }

    /// The AVX-512 copies of the cell and of the gate gradients give the baseline loops'
    /// bits (`f32`, where the exact σ and tanh are this crate's; H = 20, no multiple of the
    /// vector widths; B = 3).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx512_loops_equal_the_baseline_loops() {
        const H: usize = 20;
        const GH: usize = 80;
        const S: usize = 4;
        const B: usize = 3;
        if !kernels::has_avx512() {
            return;
        }
        type L = Lstm<f32, 5, 20, 80, 4, 20, 80, false, false>;
        let values = |n: usize, seed: u64| -> std::vec::Vec<f32> {
            let m = random_matrix::<1, 1>(seed, 1.0)[0];
            (0..n)
                .map(|i| ((i as f64 * 0.61 + m).sin() * 3.0) as f32)
                .collect()
        };
        let mut layer = L::ZERO;
        layer.as_mut_slice().copy_from_slice(&values(L::LEN, 41));
        let matrix = |rows: usize, seed: u64| values(rows * B, seed);
        let gh = SMatrix::<f32, GH, B>::from_column_slice(&matrix(GH, 1));
        let c_prev = SMatrix::<f32, H, B>::from_column_slice(&matrix(H, 2));
        for t in [0, 2, 3] {
            let (mut gates, mut gates_avx) = (values(GH * S * B, 3), values(GH * S * B, 3));
            let (mut c, mut h, mut c_avx, mut h_avx) =
                (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
            layer.cell_loops(&mut gates, S, t, &gh, &c_prev, &mut c, &mut h);
            // SAFETY: the CPU has AVX-512F.
            unsafe {
                layer.cell_avx512(&mut gates_avx, S, t, &gh, &c_prev, &mut c_avx, &mut h_avx)
            };
            assert_eq!(gates, gates_avx);
            assert_eq!((c, h), (c_avx, h_avx));
            let (mut gates_2, mut c_2, mut h_2) =
                (values(GH * S * B, 3), SMatrix::ZERO, SMatrix::ZERO);
            // SAFETY: a CPU with AVX-512F has AVX2 and FMA.
            unsafe { layer.cell_avx2(&mut gates_2, S, t, &gh, &c_prev, &mut c_2, &mut h_2) };
            assert_eq!(gates, gates_2);
            assert_eq!((c, h), (c_2, h_2));
            let dh = SMatrix::<f32, H, B>::from_column_slice(&matrix(H, 4));
            let carry = SMatrix::<f32, H, B>::from_column_slice(&matrix(H, 5));
            let mut outputs = [(); 3].map(|_| {
                (
                    std::vec![0.0f32; GH * S * B],
                    SMatrix::<f32, GH, B>::ZERO,
                    carry,
                )
            });
            for (wide, (d_in, delta, carry_c)) in outputs.iter_mut().enumerate() {
                let at = GateGradients {
                    gates: &gates,
                    dh: &dh,
                    c: &c,
                    c_prev: &c_prev,
                    d_in,
                    delta,
                    carry_c,
                };
                if wide == 1 {
                    // SAFETY: the CPU has AVX-512F.
                    unsafe { gate_gradients_avx512::<f32, H, GH, S, B>(at, t) };
                } else if wide == 2 {
                    // SAFETY: a CPU with AVX-512F has AVX2 and FMA.
                    unsafe { gate_gradients_avx2::<f32, H, GH, S, B>(at, t) };
                } else {
                    gate_gradient_loops::<f32, H, GH, S, B>(at, t);
                }
            }
            assert_eq!(outputs[0], outputs[1]);
            assert_eq!(outputs[0], outputs[2]);
            assert!(outputs[0].1.iter().any(|&d| d != 0.0));
        }
    }

    fn gradcheck<
        const S: usize,
        const IN: usize,
        const OUT: usize,
        const LAST: bool,
        const INIT: bool,
    >() {
        let mut layer = example::<S, IN, OUT, LAST, INIT>(S as u64 + 30);
        let x = random_matrix::<IN, 2>(S as u64 + 2, 1.0);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradcheck::<1, 3, 4, false, false>();
        gradcheck::<3, 9, 12, false, false>();
        gradcheck::<5, 15, 20, false, false>();
        gradcheck::<1, 11, 4, true, true>();
        gradcheck::<3, 17, 4, true, true>();
        gradcheck::<5, 23, 4, true, true>();
        gradcheck::<3, 9, 4, true, false>();
        gradcheck::<5, 23, 20, false, true>();
    }

    /// BPTT over `S = 4` steps equals the sum over steps of each step's own contribution:
    /// with untied weights (step `t` using its own copy `θ_t` of the parameters), `∂L/∂θ =
    /// Σ_t ∂L/∂θ_t`, and each `∂L/∂θ_t` is measured here through the streaming
    /// [`Lstm::step`], perturbing the parameters of step `t` only (central differences).
    #[test]
    fn bptt_equals_the_sum_of_per_step_contributions() {
        const S: usize = 4;
        let layer = example::<S, 20, 16, false, true>(3);
        let x = random_matrix::<20, 1>(4, 1.0);
        let dy = random_matrix::<16, 1>(5, 1.0);
        let (_, _, _, grads) = train_pass(&layer, &x, &dy);

        // L = Σ_t dy_t · h_t, with step `perturbed` run by `probe` and the others by `layer`.
        let loss = |probe: &Small<S, 20, 16, false, true>, perturbed: usize| {
            let mut state = LstmState {
                h: x.fixed_rows::<4>(12).into_owned(),
                c: x.fixed_rows::<4>(16).into_owned(),
            };
            let mut loss = 0.0;
            for t in 0..S {
                let x_t = x.fixed_rows::<3>(t * 3).into_owned();
                let cell = if t == perturbed { probe } else { &layer };
                loss += cell.step(&x_t, &mut state).dot(&dy.fixed_rows::<4>(t * 4));
            }
            loss
        };
        let step = 1e-6;
        let mut sum = Small::<S, 20, 16, false, true>::ZERO;
        let mut probe = layer;
        for t in 0..S {
            for p in 0..Small::<S, 20, 16, false, true>::LEN {
                let saved = probe.as_slice()[p];
                probe.as_mut_slice()[p] = saved + step;
                let up = loss(&probe, t);
                probe.as_mut_slice()[p] = saved - step;
                let down = loss(&probe, t);
                probe.as_mut_slice()[p] = saved;
                sum.as_mut_slice()[p] += (up - down) / (2.0 * step);
            }
        }
        assert_close(grads.as_slice(), sum.as_slice(), 1e-8);
    }

    #[test]
    fn streaming_steps_equal_the_sequence_forward() {
        const S: usize = 6;
        let layer = example::<S, 26, 24, false, true>(7);
        let x = random_matrix::<26, 1>(8, 1.0);
        let mut y = SMatrix::<f64, 24, 1>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        let mut state = LstmState {
            h: x.fixed_rows::<4>(S * 3).into_owned(),
            c: x.fixed_rows::<4>(S * 3 + 4).into_owned(),
        };
        for t in 0..S {
            let h = layer.step(&x.fixed_rows::<3>(t * 3).into_owned(), &mut state);
            assert_eq!(h.as_slice(), &y.as_slice()[t * 4..t * 4 + 4]);
        }
        // From the zero state (no INIT), last state only.
        let layer: Small<S, 18, 4, true, false> = same_params(&layer);
        let mut y = SMatrix::<f64, 4, 1>::ZERO;
        let sequence = x.fixed_rows::<18>(0).into_owned();
        layer.forward(&(), &sequence, &mut y, &mut scratch_for(&layer, &sequence));
        let mut state = LstmState::default();
        let mut h = SMatrix::ZERO;
        for t in 0..S {
            h = layer.step(&x.fixed_rows::<3>(t * 3).into_owned(), &mut state);
        }
        assert_eq!(h, y);
        state.reset();
        assert_eq!(state, LstmState::new());
    }

    #[test]
    fn f32_agrees_with_f64() {
        let layer = example::<5, 23, 20, false, true>(16);
        let x = random_matrix::<23, 3>(17, 1.0);
        check_f32::<_, Lstm<f32, 3, 4, 16, 5, 23, 20, false, true>, 23, 20, 3>(&layer, &x, 2e-5);
        let mut single = <Lstm<f32, 3, 4, 16, 5, 23, 20, false, true>>::ZERO;
        for (s, &d) in single.as_mut_slice().iter_mut().zip(layer.as_slice()) {
            *s = d as f32;
        }
        let mut state = LstmState::<f32, 4>::new();
        let h = single.step(&x.fixed_view::<3, 1>(0, 0).into_owned().cast(), &mut state);
        assert_eq!(h, state.h);
    }

    #[test]
    fn training_forward_equals_inference_forward() {
        let layer = example::<5, 23, 20, false, true>(11);
        let x = random_matrix::<23, 3>(12, 1.0);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        let (y_train, ..) = train_pass(&layer, &x, &SMatrix::ZERO);
        assert_eq!(y, y_train);
    }

    #[test]
    fn batch_equals_single_samples() {
        let layer = example::<3, 17, 12, false, true>(13);
        let x = random_matrix::<17, 4>(14, 1.0);
        let dy = random_matrix::<12, 4>(15, 1.0);
        let (y, _, dx, grads) = train_pass(&layer, &x, &dy);
        let mut single_grads = Small::ZERO;
        for j in 0..4 {
            let xj: SMatrix<f64, 17, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 12, 1> = dy.column(j).into();
            let (mut yj, mut cachej, mut dxj) = (SMatrix::ZERO, LstmCache::ZERO, SMatrix::ZERO);
            layer.forward_train(
                &mut (),
                &xj,
                &mut yj,
                &mut cachej,
                &mut scratch_for(&layer, &xj),
            );
            layer.backward(
                &xj,
                &cachej,
                &dyj,
                Some(&mut dxj),
                &mut single_grads,
                &mut scratch_for(&layer, &xj),
            );
            assert_close(yj.as_slice(), y.column(j).as_slice(), 1e-14);
            assert_close(dxj.as_slice(), dx.column(j).as_slice(), 1e-14);
        }
        assert_close(single_grads.as_slice(), grads.as_slice(), 1e-13);
    }

    /// `forward` against `tests/layers_reference.py` (numpy, PyTorch's equations):
    /// D = 3, H = 4, S = 3, batch 2, from `(h_0, c_0)` given in the input.
    #[test]
    fn forward_matches_the_numpy_reference() {
        let layer = Lstm::<f64, 3, 4, 16, 3, 17, 12, false, true> {
            weight_ih_l0: det_matrix(0.1),
            weight_hh_l0: det_matrix(0.2),
            bias_ih_l0: det_matrix(0.3),
            bias_hh_l0: det_matrix(0.4),
        };
        let x = det_batch::<17, 2>(0.5);
        let mut y = SMatrix::<f64, 12, 2>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        assert_close(y.as_slice(), &REFERENCE_LSTM, 1e-13);
    }

    const REFERENCE_LSTM: [f64; 24] = [
        0.08668802232422783,
        -0.05326219328518297,
        -0.009535572320801426,
        0.0644874045564955,
        0.35260715842729184,
        -0.1457825091983441,
        -0.07983472910402084,
        0.09220764691303872,
        0.48138815552984954,
        -0.2757030925635917,
        -0.1545897872515646,
        0.0630031902032193,
        0.5017170217246578,
        -0.20155064777925766,
        -0.19424578952084184,
        0.09370209480942414,
        0.4994537093581405,
        -0.1769314110311428,
        -0.22280475531471577,
        -0.05388235643100979,
        0.4938873216457622,
        -0.07390230832427545,
        -0.17865779882286817,
        -0.08170107227249536,
    ];
}

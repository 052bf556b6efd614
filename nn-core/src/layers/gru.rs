//! Gated recurrent unit: [`Gru`] (PyTorch's `nn.GRU`, one layer), its cache [`GruCache`]
//! and its streaming state [`GruState`].

use super::recurrent::{
    add_rows, add_slice_column_sums, check_sizes, flat, flat_mut, hidden_weight_gradient, initial,
    input_gradients, input_products, output_row, sigmoid, take, tanh, write_rows,
};
use super::rnn::RnnState;
use crate::memory::carve;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable, kernels};
use nalgebra::SMatrix;

/// Gated recurrent unit, PyTorch's `nn.GRU(D, H, batch_first=True)` with one layer, one
/// direction and biases; for `t = 0 … S−1`, from `h_{−1} = h_0`:
///
/// ```text
/// r_t = σ(W_ir·x_t + b_ir + W_hr·h_{t−1} + b_hr)          reset gate
/// z_t = σ(W_iz·x_t + b_iz + W_hz·h_{t−1} + b_hz)          update gate
/// n_t = tanh(W_in·x_t + b_in + r_t ⊙ (W_hn·h_{t−1} + b_hn))  candidate
/// h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
/// ```
///
/// - input: the sequence `[S, D]`, then `h_0` `[H]` when `INIT` (zero otherwise):
///   `IN = S·D (+ H)`;
/// - output: `[S, H]` (`OUT = S·H`, every `h_t`), or with `LAST` the last state `[H]`.
///
/// Parameters (PyTorch's names, shapes and order; `GH = 3·H`), the three gates stacked in
/// PyTorch's order `(r, z, n)`, rows `0..H`, `H..2H`, `2H..3H`:
/// `weight_ih_l0` `[3H, D]` = `[W_ir; W_iz; W_in]`, `weight_hh_l0` `[3H, H]` =
/// `[W_hr; W_hz; W_hn]`, `bias_ih_l0` `[3H]`, `bias_hh_l0` `[3H]`. [`Layer::init`]
/// initialises the two stacked weights by the network's scheme (fans from these shapes)
/// and the biases to zero; PyTorch draws all four from `U(−1/√H, 1/√H)`.
///
/// Backward through time: with `g = ∂L/∂h_t` (output gradient plus what step `t + 1` sends
/// back), `∂n = g ⊙ (1 − z)`, `∂z = g ⊙ (h_{t−1} − n)`, `∂a_n = ∂n ⊙ (1 − n²)`,
/// `∂a_r = ∂a_n ⊙ (W_hn·h_{t−1} + b_hn) ⊙ r(1 − r)`, `∂a_z = ∂z ⊙ z(1 − z)`; the input
/// side gets `δ_i = [∂a_r; ∂a_z; ∂a_n]`, the hidden side `δ_h = [∂a_r; ∂a_z; r ⊙ ∂a_n]`:
/// `∂W_ih += δ_i·x_tᵀ`, `∂b_ih += δ_i`, `∂x_t += W_ihᵀ·δ_i`, `∂W_hh += δ_h·h_{t−1}ᵀ`,
/// `∂b_hh += δ_h`, and `∂L/∂h_{t−1} = g ⊙ z + W_hhᵀ·δ_h` (into `h_0`'s rows with `INIT`).
///
/// The sizes (`GH = 3H`, `IN`, `OUT`, `S ≥ 1`) are checked at compile time where the layer
/// is used.
///
/// Sequence layout, `INIT`, `LAST`, the batched computation and the streaming
/// [`Gru::step`] are as for [`Rnn`](super::Rnn#sequences-all-recurrent-layers).
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Gru<
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
    /// `[W_ir; W_iz; W_in]`, `[3H, D]`.
    pub weight_ih_l0: SMatrix<T, GH, D>,
    /// `[W_hr; W_hz; W_hn]`, `[3H, H]`.
    pub weight_hh_l0: SMatrix<T, GH, H>,
    /// `[b_ir; b_iz; b_in]`, `[3H]`.
    pub bias_ih_l0: SMatrix<T, GH, 1>,
    /// `[b_hr; b_hz; b_hn]`, `[3H]`.
    pub bias_hh_l0: SMatrix<T, GH, 1>,
}

/// What [`Gru`]'s training forward pass keeps for backward, for `B` samples: per time step,
/// the gates, `W_hn·h_{t−1} + b_hn` and the new state.
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct GruCache<T: Real, const H: usize, const GH: usize, const S: usize, const B: usize> {
    /// `[r_t; z_t; n_t]` (after their activations), `3H × S` per sample (column `t` is step
    /// `t`): where the input products of all the steps are computed, as one product.
    pub gates: [SMatrix<T, GH, S>; B],
    /// `W_hn·h_{t−1} + b_hn`, `H × B` per step.
    pub hn: [SMatrix<T, H, B>; S],
    /// `h_t`, `H × B` per step.
    pub h: [SMatrix<T, H, B>; S],
}

/// The state [`Gru::step`] carries from one time step to the next: the hidden state `h`,
/// as for a plain RNN ([`RnnState`]: `new`, `Default` and `reset` give the zero state the
/// whole-sequence forward pass starts from without `INIT`; set `h` to start from another
/// `h_0`).
pub type GruState<T, const H: usize> = RnnState<T, H>;

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
    assert!(GH == 3 * H, "Gru: GH must be 3·H");
    check_sizes(D, H, S, IN, OUT, LAST, if INIT { H } else { 0 });
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
> Gru<T, D, H, GH, S, IN, OUT, LAST, INIT>
{
    /// One time step for `B` columns: the gates of sample `j` are column `j·steps + t` of
    /// `gates` (`3H` scalars each), which holds `W_ih·x_t` on entry and `[r; z; n]` on exit;
    /// `gh` is `W_hh·h_prev`; writes `W_hn·h_prev + b_hn` and the new state `h`.
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
        h_prev: &SMatrix<T, H, B>,
        hn: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.cell_avx512(gates, steps, t, gh, h_prev, hn, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.cell_avx2(gates, steps, t, gh, h_prev, hn, h) };
        }
        self.cell_loops(gates, steps, t, gh, h_prev, hn, h);
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
        h_prev: &SMatrix<T, H, B>,
        hn: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        self.cell_loops(gates, steps, t, gh, h_prev, hn, h);
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
        h_prev: &SMatrix<T, H, B>,
        hn: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        self.cell_loops(gates, steps, t, gh, h_prev, hn, h);
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
        h_prev: &SMatrix<T, H, B>,
        hn: &mut SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        const { assert!(GH == 3 * H, "Gru: GH must be 3·H") };
        let (b_ih, b_hh) = (self.bias_ih_l0.as_slice(), self.bias_hh_l0.as_slice());
        let (gh, h_prev) = (gh.as_slice(), h_prev.as_slice());
        let (hn, h) = (hn.as_mut_slice(), h.as_mut_slice());
        let b_ih: &[T; GH] = b_ih.try_into().unwrap();
        let b_hh: &[T; GH] = b_hh.try_into().unwrap();
        for j in 0..B {
            let start = (j * steps + t) * GH;
            let a: &mut [T; GH] = (&mut gates[start..start + GH]).try_into().unwrap();
            let gh: &[T; GH] = gh[j * GH..(j + 1) * GH].try_into().unwrap();
            let h_prev: &[T; H] = h_prev[j * H..(j + 1) * H].try_into().unwrap();
            let hn: &mut [T; H] = (&mut hn[j * H..(j + 1) * H]).try_into().unwrap();
            let h: &mut [T; H] = (&mut h[j * H..(j + 1) * H]).try_into().unwrap();
            for k in 0..H {
                let (kr, kz, kn) = (k, H + k, 2 * H + k);
                let r = sigmoid(a[kr] + b_ih[kr] + gh[kr] + b_hh[kr]);
                let z = sigmoid(a[kz] + b_ih[kz] + gh[kz] + b_hh[kz]);
                let hn_k = gh[kn] + b_hh[kn];
                let n = tanh(a[kn] + b_ih[kn] + r * hn_k);
                a[kr] = r;
                a[kz] = z;
                a[kn] = n;
                hn[k] = hn_k;
                h[k] = (T::ONE - z) * n + z * h_prev[k];
            }
        }
    }

    /// One time step of one sample, for real-time use: returns `h_t` and keeps it in
    /// `state`. Feeding a sequence's `x_0 … x_{S−1}` one at a time from
    /// [`GruState::new`] (or from `h_0` with `INIT`) returns exactly the `h_t` of
    /// [`Layer::forward`]; no allocation, and no limit on the number of steps.
    #[inline]
    pub fn step(&self, x_t: &SMatrix<T, D, 1>, state: &mut GruState<T, H>) -> SMatrix<T, H, 1> {
        let (mut gates, mut gh) = (SMatrix::<T, GH, 1>::ZERO, SMatrix::ZERO);
        let (mut hn, mut h) = (SMatrix::ZERO, SMatrix::ZERO);
        // The products as `forward` makes them (its input product of one column).
        input_products::<T, GH, D, 1, D, 1>(&self.weight_ih_l0, x_t, gates.as_mut_slice());
        kernels::matmul(&mut gh, &self.weight_hh_l0, &state.h, false);
        self.cell(gates.as_mut_slice(), 1, 0, &gh, &state.h, &mut hn, &mut h);
        state.h = h;
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
> Layer<T, IN, OUT> for Gru<T, D, H, GH, S, IN, OUT, LAST, INIT>
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

    /// Per sample, backward's input-side and hidden-side gate gradients of every step
    /// (`3H·S` each), `h_0`, `∂L/∂h_t` carried from step `t + 1` and its sum with the
    /// output's gradient (`H` each): `6H·S + 3H`. Forward's input products (then gates) of
    /// every step (`3H·S`), `W_hh·h_{t−1}` (`3H`), `W_hn·h_{t−1} + b_hn`, `h_{t−1}` and `h_t`
    /// take `3H·S + 6H`, no more; the training forward's `W_hh·h_{t−1}` and `h_0`, `4H`.
    const SCRATCH: usize = 6 * H * S + 3 * H;

    type Cache<const B: usize> = GruCache<T, H, GH, S, B>;
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
        let hn: &mut SMatrix<T, H, B> = carve(&mut scratch);
        // h_t and h_{t−1}, swapped at each step.
        let mut h: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let mut h_prev: &mut SMatrix<T, H, B> = carve(&mut scratch);
        input_products::<T, GH, D, S, IN, B>(&self.weight_ih_l0, x, gates);
        initial(x, INIT.then_some(S * D), h);
        for t in 0..S {
            core::mem::swap(&mut h, &mut h_prev);
            kernels::matmul(gh, &self.weight_hh_l0, h_prev, false);
            self.cell(gates, S, t, gh, h_prev, hn, h);
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
        cache: &mut GruCache<T, H, GH, S, B>,
        mut scratch: &mut [T],
    ) {
        const { check::<D, H, GH, S, IN, OUT, LAST, INIT>() };
        let gh: &mut SMatrix<T, GH, B> = carve(&mut scratch);
        let h0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        initial(x, INIT.then_some(S * D), h0);
        let gates = flat_mut(&mut cache.gates);
        input_products::<T, GH, D, S, IN, B>(&self.weight_ih_l0, x, gates);
        for t in 0..S {
            let (done, rest) = cache.h.split_at_mut(t);
            let h_prev = done.last().unwrap_or(h0);
            kernels::matmul(gh, &self.weight_hh_l0, h_prev, false);
            self.cell(gates, S, t, gh, h_prev, &mut cache.hn[t], &mut rest[0]);
            if !LAST {
                write_rows(y, t * H, &rest[0]);
            }
        }
        if LAST {
            write_rows(y, 0, &cache.h[S - 1]);
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &GruCache<T, H, GH, S, B>,
        dy: &SMatrix<T, OUT, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        mut scratch: &mut [T],
    ) {
        const { check::<D, H, GH, S, IN, OUT, LAST, INIT>() };
        // Gradients of the input-side pre-activations of every step, sample-major (as the
        // input products), and of the hidden-side ones, step-major (as the states).
        let d_in = take(&mut scratch, GH * S * B);
        let d_hid = take(&mut scratch, GH * S * B);
        let h0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        initial(x, INIT.then_some(S * D), h0);
        // ∂L/∂h_t: what step t + 1 sends back, then plus the output's gradient.
        let carry: &mut SMatrix<T, H, B> = carve(&mut scratch);
        carry.fill(T::ZERO);
        let g: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let gates = flat(&cache.gates);
        for t in (0..S).rev() {
            g.copy_from(carry);
            if let Some(row) = output_row::<S, H, LAST>(t) {
                *g += dy.fixed_rows::<H>(row);
            }
            let h_prev = if t == 0 { &*h0 } else { &cache.h[t - 1] };
            let mut rest = &mut d_hid[t * GH * B..(t + 1) * GH * B];
            let d_hid_t: &mut SMatrix<T, GH, B> = carve(&mut rest);
            gate_gradients::<T, H, GH, S, B>(
                GateGradients {
                    gates,
                    hn: &cache.hn[t],
                    g,
                    h_prev,
                    d_in,
                    d_hid: d_hid_t,
                    carry,
                },
                t,
            );
            // Step t − 1's gradient; at step 0 that of the initial state, an input.
            if t > 0 || (INIT && dx.is_some()) {
                kernels::matmul_atb(carry, &self.weight_hh_l0, d_hid_t, true);
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
            add_rows(dx, S * D, carry);
        }
    }
}

/// What [`gate_gradients`] reads and writes at one step of the backward pass.
struct GateGradients<'a, T: Real, const H: usize, const GH: usize, const B: usize> {
    /// Every step's `[r; z; n]`, sample-major (`(j·S + t)·GH`).
    gates: &'a [T],
    /// `W_hn·h_{t−1} + b_hn` of this step.
    hn: &'a SMatrix<T, H, B>,
    /// `∂L/∂h_t`.
    g: &'a SMatrix<T, H, B>,
    /// `h_{t−1}`.
    h_prev: &'a SMatrix<T, H, B>,
    /// The input-side pre-activations' gradients of every step (written at step `t`).
    d_in: &'a mut [T],
    /// The hidden-side pre-activations' gradients of this step.
    d_hid: &'a mut SMatrix<T, GH, B>,
    /// `∂L/∂h_{t−1}` through the direct path `z ⊙ h_{t−1}` (the product through `W_hh`
    /// is added after).
    carry: &'a mut SMatrix<T, H, B>,
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
        hn,
        g,
        h_prev,
        d_in,
        d_hid,
        carry,
    } = at;
    let (hn, g, h_prev) = (hn.as_slice(), g.as_slice(), h_prev.as_slice());
    let (d_hid, carry) = (d_hid.as_mut_slice(), carry.as_mut_slice());
    for j in 0..B {
        let start = (j * S + t) * GH;
        let gates: &[T; GH] = gates[start..start + GH].try_into().unwrap();
        let d_in: &mut [T; GH] = (&mut d_in[start..start + GH]).try_into().unwrap();
        let d_hid: &mut [T; GH] = (&mut d_hid[j * GH..(j + 1) * GH]).try_into().unwrap();
        let hn: &[T; H] = hn[j * H..(j + 1) * H].try_into().unwrap();
        let g: &[T; H] = g[j * H..(j + 1) * H].try_into().unwrap();
        let h_prev: &[T; H] = h_prev[j * H..(j + 1) * H].try_into().unwrap();
        let carry: &mut [T; H] = (&mut carry[j * H..(j + 1) * H]).try_into().unwrap();
        for k in 0..H {
            let (kr, kz, kn) = (k, H + k, 2 * H + k);
            let (r, z, n) = (gates[kr], gates[kz], gates[kn]);
            let g = g[k];
            let da_n = g * (T::ONE - z) * (T::ONE - n * n);
            let da_z = g * (h_prev[k] - n) * z * (T::ONE - z);
            let da_r = da_n * hn[k] * r * (T::ONE - r);
            d_in[kr] = da_r;
            d_in[kz] = da_z;
            d_in[kn] = da_n;
            d_hid[kr] = da_r;
            d_hid[kz] = da_z;
            d_hid[kn] = da_n * r;
            // The direct path h_t = … + z ⊙ h_{t−1}.
            carry[k] = g * z;
        }
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
    > = Gru<f64, 3, 4, 12, S, IN, OUT, LAST, INIT>;

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
        Gru {
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
        const GH: usize = 60;
        const S: usize = 4;
        const B: usize = 3;
        if !kernels::has_avx512() {
            return;
        }
        type G = Gru<f32, 5, 20, 60, 4, 20, 80, false, false>;
        let values = |n: usize, seed: u64| -> std::vec::Vec<f32> {
            let m = random_matrix::<1, 1>(seed, 1.0)[0];
            (0..n)
                .map(|i| ((i as f64 * 0.61 + m).sin() * 3.0) as f32)
                .collect()
        };
        let mut layer = G::ZERO;
        layer.as_mut_slice().copy_from_slice(&values(G::LEN, 41));
        let matrix = |rows: usize, seed: u64| values(rows * B, seed);
        let gh = SMatrix::<f32, GH, B>::from_column_slice(&matrix(GH, 1));
        let h_prev = SMatrix::<f32, H, B>::from_column_slice(&matrix(H, 2));
        for t in [0, 2, 3] {
            let (mut gates, mut gates_avx) = (values(GH * S * B, 3), values(GH * S * B, 3));
            let (mut hn, mut h, mut hn_avx, mut h_avx) =
                (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
            layer.cell_loops(&mut gates, S, t, &gh, &h_prev, &mut hn, &mut h);
            // SAFETY: the CPU has AVX-512F.
            unsafe {
                layer.cell_avx512(&mut gates_avx, S, t, &gh, &h_prev, &mut hn_avx, &mut h_avx)
            };
            assert_eq!(gates, gates_avx);
            assert_eq!((hn, h), (hn_avx, h_avx));
            let (mut gates_2, mut hn_2, mut h_2) =
                (values(GH * S * B, 3), SMatrix::ZERO, SMatrix::ZERO);
            // SAFETY: a CPU with AVX-512F has AVX2 and FMA.
            unsafe { layer.cell_avx2(&mut gates_2, S, t, &gh, &h_prev, &mut hn_2, &mut h_2) };
            assert_eq!(gates, gates_2);
            assert_eq!((hn, h), (hn_2, h_2));
            let g = SMatrix::<f32, H, B>::from_column_slice(&matrix(H, 4));
            let mut outputs = [(); 3].map(|_| {
                (
                    std::vec![0.0f32; GH * S * B],
                    SMatrix::<f32, GH, B>::ZERO,
                    SMatrix::<f32, H, B>::ZERO,
                )
            });
            for (wide, (d_in, d_hid, carry)) in outputs.iter_mut().enumerate() {
                let at = GateGradients {
                    gates: &gates,
                    hn: &hn,
                    g: &g,
                    h_prev: &h_prev,
                    d_in,
                    d_hid,
                    carry,
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
            assert!(outputs[0].2.iter().any(|&c| c != 0.0));
        }
    }

    fn gradcheck<
        const S: usize,
        const IN: usize,
        const OUT: usize,
        const LAST: bool,
        const INIT: bool,
    >() {
        let mut layer = example::<S, IN, OUT, LAST, INIT>(S as u64 + 20);
        let x = random_matrix::<IN, 2>(S as u64 + 1, 1.0);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradcheck::<1, 3, 4, false, false>();
        gradcheck::<3, 9, 12, false, false>();
        gradcheck::<5, 15, 20, false, false>();
        gradcheck::<1, 7, 4, true, true>();
        gradcheck::<3, 13, 4, true, true>();
        gradcheck::<5, 19, 4, true, true>();
        gradcheck::<3, 9, 4, true, false>();
        gradcheck::<5, 19, 20, false, true>();
    }

    /// BPTT over `S = 4` steps equals the sum of the gradients of the unrolled network: four
    /// one-step layers (`S = 1`, `INIT`, `LAST`, the same parameters) chained by hand, each
    /// step's upstream gradient being its output's plus the next step's `∂L/∂h_0`.
    #[test]
    fn bptt_equals_the_sum_of_unrolled_steps() {
        const S: usize = 4;
        let layer = example::<S, 16, 16, false, true>(3);
        let x = random_matrix::<16, 2>(4, 1.0);
        let dy = random_matrix::<16, 2>(5, 1.0);
        let (y, _, dx, grads) = train_pass(&layer, &x, &dy);

        let cell: Small<1, 7, 4, true, true> = same_params(&layer);
        let mut inputs = [SMatrix::<f64, 7, 2>::ZERO; S];
        let mut outputs = [SMatrix::<f64, 4, 2>::ZERO; S];
        let mut caches = [GruCache::<f64, 4, 12, 1, 2>::ZERO; S];
        let mut h = x.fixed_rows::<4>(S * 3).into_owned();
        for t in 0..S {
            inputs[t]
                .fixed_rows_mut::<3>(0)
                .copy_from(&x.fixed_rows::<3>(t * 3));
            inputs[t].fixed_rows_mut::<4>(3).copy_from(&h);
            cell.forward_train(
                &mut (),
                &inputs[t],
                &mut outputs[t],
                &mut caches[t],
                &mut scratch_for(&cell, &inputs[t]),
            );
            h = outputs[t];
            assert_close(
                h.as_slice(),
                y.fixed_rows::<4>(t * 4).into_owned().as_slice(),
                0.0,
            );
        }
        let mut sum = Gru::ZERO;
        let mut carry = SMatrix::<f64, 4, 2>::ZERO;
        let mut dx_unrolled = SMatrix::<f64, 16, 2>::ZERO;
        for t in (0..S).rev() {
            let upstream = carry + dy.fixed_rows::<4>(t * 4);
            let mut dx_t = SMatrix::<f64, 7, 2>::ZERO;
            cell.backward(
                &inputs[t],
                &caches[t],
                &upstream,
                Some(&mut dx_t),
                &mut sum,
                &mut scratch_for(&cell, &inputs[t]),
            );
            add_rows(
                &mut dx_unrolled,
                t * 3,
                &dx_t.fixed_rows::<3>(0).into_owned(),
            );
            carry = dx_t.fixed_rows::<4>(3).into_owned();
        }
        add_rows(&mut dx_unrolled, S * 3, &carry);
        assert_close(grads.as_slice(), sum.as_slice(), 1e-12);
        assert_close(dx.as_slice(), dx_unrolled.as_slice(), 1e-12);
    }

    #[test]
    fn streaming_steps_equal_the_sequence_forward() {
        const S: usize = 6;
        let layer = example::<S, 22, 24, false, true>(7);
        let x = random_matrix::<22, 1>(8, 1.0);
        let mut y = SMatrix::<f64, 24, 1>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        let mut state = GruState {
            h: x.fixed_rows::<4>(S * 3).into_owned(),
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
        let mut state = GruState::default();
        let mut h = SMatrix::ZERO;
        for t in 0..S {
            h = layer.step(&x.fixed_rows::<3>(t * 3).into_owned(), &mut state);
        }
        assert_eq!(h, y);
        state.reset();
        assert_eq!(state, GruState::new());
    }

    #[test]
    fn f32_agrees_with_f64() {
        let layer = example::<5, 19, 20, false, true>(16);
        let x = random_matrix::<19, 3>(17, 1.0);
        check_f32::<_, Gru<f32, 3, 4, 12, 5, 19, 20, false, true>, 19, 20, 3>(&layer, &x, 2e-5);
        let mut single = <Gru<f32, 3, 4, 12, 5, 19, 20, false, true>>::ZERO;
        for (s, &d) in single.as_mut_slice().iter_mut().zip(layer.as_slice()) {
            *s = d as f32;
        }
        let mut state = GruState::<f32, 4>::new();
        let h = single.step(&x.fixed_view::<3, 1>(0, 0).into_owned().cast(), &mut state);
        assert_eq!(h, state.h);
    }

    #[test]
    fn training_forward_equals_inference_forward() {
        let layer = example::<5, 19, 20, false, true>(11);
        let x = random_matrix::<19, 3>(12, 1.0);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        let (y_train, ..) = train_pass(&layer, &x, &SMatrix::ZERO);
        assert_eq!(y, y_train);
    }

    #[test]
    fn batch_equals_single_samples() {
        let layer = example::<3, 13, 12, false, true>(13);
        let x = random_matrix::<13, 4>(14, 1.0);
        let dy = random_matrix::<12, 4>(15, 1.0);
        let (y, _, dx, grads) = train_pass(&layer, &x, &dy);
        let mut single_grads = Small::ZERO;
        for j in 0..4 {
            let xj: SMatrix<f64, 13, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 12, 1> = dy.column(j).into();
            let (mut yj, mut cachej, mut dxj) = (SMatrix::ZERO, GruCache::ZERO, SMatrix::ZERO);
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
    /// D = 3, H = 4, S = 3, batch 2, from the zero state.
    #[test]
    fn forward_matches_the_numpy_reference() {
        let layer = Gru::<f64, 3, 4, 12, 3, 9, 12, false, false> {
            weight_ih_l0: det_matrix(0.1),
            weight_hh_l0: det_matrix(0.2),
            bias_ih_l0: det_matrix(0.3),
            bias_hh_l0: det_matrix(0.4),
        };
        let x = det_batch::<9, 2>(0.5);
        let mut y = SMatrix::<f64, 12, 2>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        assert_close(y.as_slice(), &REFERENCE_GRU, 1e-13);
    }

    const REFERENCE_GRU: [f64; 24] = [
        0.1340494042238294,
        0.05383192203753587,
        -0.19581543693805478,
        0.16120304398917898,
        0.25518137856643447,
        -0.10187500370852434,
        -0.5194851886923992,
        0.25987542014214077,
        0.3691422023867019,
        -0.290270012929704,
        -0.7624093142201145,
        0.1691333367597615,
        0.25278405264835124,
        0.04452697029137646,
        -0.5441760242543687,
        -0.05425050593606658,
        0.31162256310143593,
        0.10559675440829487,
        -0.5008520704969912,
        -0.10046717632349658,
        0.31356807130280084,
        0.09613519496177084,
        -0.3580418731885619,
        0.10286744863373154,
    ];
}

//! Elman recurrent layer with `tanh`: [`Rnn`] (PyTorch's `nn.RNN`, one layer), and its
//! streaming state [`RnnState`]; also the helpers the gated recurrent layers
//! ([`Gru`](super::Gru), [`Lstm`](super::Lstm)) share with it. The conventions common to the
//! three are documented on [`Rnn`].

use super::recurrent::{
    add_rows, add_slice_column_sums, check_sizes, hidden_weight_gradient, initial, input_gradients,
    input_products, output_row, take, tanh, write_rows,
};
use crate::memory::carve;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable, kernels};
use nalgebra::SMatrix;

/// Elman recurrent layer, PyTorch's `nn.RNN(D, H, nonlinearity="tanh", batch_first=True)`
/// with one layer, one direction and biases:
///
/// `h_t = tanh(W_ih·x_t + b_ih + W_hh·h_{t−1} + b_hh)`, `t = 0 … S−1`,
///
/// from `h_{−1} = h_0` (the input's last `H` values when `INIT`, zero otherwise).
///
/// - input: the sequence `[S, D]`, then `h_0` `[H]` when `INIT`: `IN = S·D (+ H)`;
/// - output: `[S, H]` (`OUT = S·H`, every `h_t`), or with `LAST` the last state `[H]`
///   (`OUT = H`).
///
/// Parameters (PyTorch's names, shapes and order, each stored column-major):
/// `weight_ih_l0` `[H, D]`, `weight_hh_l0` `[H, H]`, `bias_ih_l0` `[H]`, `bias_hh_l0` `[H]`.
/// [`Layer::init`] initialises the weights by the network's scheme (fans from these
/// shapes) and the biases to zero; PyTorch draws all four from `U(−1/√H, 1/√H)`.
///
/// Backward, with `δ_t = (∂L/∂h_t) ⊙ (1 − h_t²)` where `∂L/∂h_t` is the output's gradient
/// plus `W_hhᵀ·δ_{t+1}` from the next step: `∂L/∂W_ih += Σ_t δ_t·x_tᵀ`,
/// `∂L/∂W_hh += Σ_t δ_t·h_{t−1}ᵀ`, `∂L/∂b_ih = ∂L/∂b_hh += Σ_t δ_t`,
/// `∂L/∂x_t += W_ihᵀ·δ_t`, and with `INIT`, `∂L/∂h_0 += W_hhᵀ·δ_0`.
///
/// The sizes (`IN`, `OUT`, `S ≥ 1`) are checked at compile time where the layer is used.
///
/// # Sequences (all recurrent layers)
/// A sample is a sequence of `S` time steps of `D` features, PyTorch's `batch_first` layout
/// `(N, S, D)` per sample: step `t`, feature `d` at index `t·D + d` of the sample's column.
/// With `INIT` the initial state follows the sequence in the same column (`h_0`, then `c_0`
/// for an [`Lstm`](super::Lstm)): PyTorch's `rnn(x, h_0)` (`lstm(x, (h_0, c_0))`); without
/// it the initial state is zero. The output is the sequence of hidden states `[S, H]`
/// (`h_t[k]` at `t·H + k`), PyTorch's `output`, or with `LAST` only the last one `[H]`,
/// PyTorch's `h_n[0]` (= `output[:, -1]`).
///
/// # Computation
/// As cuDNN and oneDNN do, the input-to-hidden products of every time step of every sample
/// are one product, before the time loop: without `INIT` the batch's sequences are one
/// column-major `D × S·B` matrix `X` (column `j·S + t` is sample `j`'s `x_t`), so
/// `W_ih·X` (`GH × S·B`, `GH` = `H`, `3H`, `4H`) is one GEMM ([`kernels::matmul_view`]; with
/// `INIT` one per sample, the initial state sitting between the sequences). `forward_train`
/// then runs the whole batch one time step at a time with only the hidden-to-hidden product
/// `W_hh·H_{t−1}` (`B` columns) per step; the states (and the gates of a GRU or LSTM) of
/// every step are kept in the cache, in the tape. `backward` is backpropagation through
/// time over the fixed `S` steps, from the last one to the first, carrying `∂L/∂h_t` (and
/// `∂L/∂c_t`) backwards with one product `W_hhᵀ·δ_t` per step and keeping every step's
/// gate gradients `δ_t`; after the loop the parameter gradients, sums over the steps, are
/// one product each (`∂W_ih += Δ·Xᵀ`, `∂W_hh += Δ·H_{prev}ᵀ`, `∂X += W_ihᵀ·Δ`).
/// Temporaries (the input products and the gate gradients of every step, a few `H × B` and
/// `GH × B` matrices) are carved from the layer's scratch memory, [`Layer::SCRATCH`]` · B`
/// scalars that the `network!` macro plans with the network's other values: nothing
/// batch-sized is on the stack and nothing is allocated. `SCRATCH` is the most any one pass
/// needs, backward's, per sample: `2H·S + 2H` for an RNN (`δ_t` of every step in two
/// orders, `h_0` and the carried gradient), `6H·S + 3H` for a GRU and `8H·S + 5H` for an
/// LSTM (see theirs).
///
/// # Streaming
/// `step(&x_t, &mut state)` ([`Rnn::step`], [`Gru::step`](super::Gru::step),
/// [`Lstm::step`](super::Lstm::step)) advances one sample by one time step, with the same
/// code as `forward` (which runs that step `S` times on the batch): feeding a sequence to
/// `step` one element at a time, from the zero state (or `h_0`), gives exactly the outputs
/// of `forward` for a batch of one, for as many steps as wanted and without allocation.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Rnn<
    T: Real,
    const D: usize,
    const H: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
> {
    /// `W_ih`, `[H, D]`.
    pub weight_ih_l0: SMatrix<T, H, D>,
    /// `W_hh`, `[H, H]`.
    pub weight_hh_l0: SMatrix<T, H, H>,
    /// `b_ih`, `[H]`.
    pub bias_ih_l0: SMatrix<T, H, 1>,
    /// `b_hh`, `[H]`.
    pub bias_hh_l0: SMatrix<T, H, 1>,
}

/// The state [`Rnn::step`] carries from one time step to the next: the hidden state `h`.
///
/// [`RnnState::new`] (and `Default`) is the zero state the whole-sequence forward pass
/// starts from without `INIT`; set `h` to start from another `h_0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnState<T: Real, const H: usize> {
    /// `h_t`, the last output.
    pub h: SMatrix<T, H, 1>,
}

impl<T: Real, const H: usize> RnnState<T, H> {
    /// The zero state.
    pub const fn new() -> Self {
        Self { h: SMatrix::ZERO }
    }

    /// Back to the zero state, for a new sequence.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

impl<T: Real, const H: usize> Default for RnnState<T, H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<
    T: Real,
    const D: usize,
    const H: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
> Rnn<T, D, H, S, IN, OUT, LAST, INIT>
{
    /// One time step for `B` columns: `h = tanh(W_ih·x_t + W_hh·h_prev + b_ih + b_hh)`, with
    /// `W_ih·x_t` of sample `j` column `j·steps + t` of `xp` (`H` scalars each) and `gh`
    /// `W_hh·h_prev`.
    ///
    /// Compiled for AVX-512 where the CPU has it (the same operations in the same order, so
    /// the same bits, eight `f64` lanes of the exact `tanh` at a time).
    #[inline]
    fn cell<const B: usize>(
        &self,
        xp: &[T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.cell_avx512(xp, steps, t, gh, h) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.cell_avx2(xp, steps, t, gh, h) };
        }
        self.cell_loops(xp, steps, t, gh, h);
    }

    /// [`cell`](Self::cell)'s loops compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn cell_avx512<const B: usize>(
        &self,
        xp: &[T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        self.cell_loops(xp, steps, t, gh, h);
    }

    /// [`cell`](Self::cell)'s loops compiled for AVX2 (with FMA, into which Rust
    /// fuses no multiply-add: the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn cell_avx2<const B: usize>(
        &self,
        xp: &[T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        self.cell_loops(xp, steps, t, gh, h);
    }

    /// [`cell`](Self::cell)'s loops.
    #[inline(always)]
    fn cell_loops<const B: usize>(
        &self,
        xp: &[T],
        steps: usize,
        t: usize,
        gh: &SMatrix<T, H, B>,
        h: &mut SMatrix<T, H, B>,
    ) {
        let b_ih: &[T; H] = self.bias_ih_l0.as_slice().try_into().unwrap();
        let b_hh: &[T; H] = self.bias_hh_l0.as_slice().try_into().unwrap();
        let (gh, h) = (gh.as_slice(), h.as_mut_slice());
        for j in 0..B {
            let start = (j * steps + t) * H;
            let a: &[T; H] = xp[start..start + H].try_into().unwrap();
            let gh: &[T; H] = gh[j * H..(j + 1) * H].try_into().unwrap();
            let h: &mut [T; H] = (&mut h[j * H..(j + 1) * H]).try_into().unwrap();
            for k in 0..H {
                h[k] = tanh(a[k] + gh[k] + b_ih[k] + b_hh[k]);
            }
        }
    }

    /// One time step of one sample, for real-time use: returns `h_t` and keeps it in
    /// `state`. Feeding a sequence's `x_0 … x_{S−1}` one at a time from
    /// [`RnnState::new`] (or from `h_0` with `INIT`) returns exactly the `h_t` of
    /// [`Layer::forward`]; no allocation, and no limit on the number of steps.
    #[inline]
    pub fn step(&self, x_t: &SMatrix<T, D, 1>, state: &mut RnnState<T, H>) -> SMatrix<T, H, 1> {
        let (mut xp, mut gh, mut h) = (SMatrix::<T, H, 1>::ZERO, SMatrix::ZERO, SMatrix::ZERO);
        // The products as `forward` makes them (its input product of one column).
        input_products::<T, H, D, 1, D, 1>(&self.weight_ih_l0, x_t, xp.as_mut_slice());
        kernels::matmul(&mut gh, &self.weight_hh_l0, &state.h, false);
        self.cell(xp.as_slice(), 1, 0, &gh, &mut h);
        state.h = h;
        h
    }
}

impl<
    T: Real,
    const D: usize,
    const H: usize,
    const S: usize,
    const IN: usize,
    const OUT: usize,
    const LAST: bool,
    const INIT: bool,
> Layer<T, IN, OUT> for Rnn<T, D, H, S, IN, OUT, LAST, INIT>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight_ih_l0",
            shape: &[H, D],
            role: Role::Weight,
        },
        TensorInfo {
            name: "weight_hh_l0",
            shape: &[H, H],
            role: Role::Weight,
        },
        TensorInfo {
            name: "bias_ih_l0",
            shape: &[H],
            role: Role::Bias,
        },
        TensorInfo {
            name: "bias_hh_l0",
            shape: &[H],
            role: Role::Bias,
        },
    ];

    /// Per sample, backward's `δ_t` of every step, twice (`H·S` each: in the input
    /// products' order and in the states'), `h_0` and `∂L/∂h_t` from step `t + 1` (`H`
    /// each): `2H·S + 2H`. Forward's input products of every step (`H·S`), `W_hh·h_{t−1}`,
    /// `h_{t−1}` and `h_t` take `H·S + 3H`, no more.
    const SCRATCH: usize = 2 * H * S + 2 * H;

    /// The hidden state after each step `t = 0 … S−1`, `H × B` each.
    type Cache<const B: usize> = [SMatrix<T, H, B>; S];
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        mut scratch: &mut [T],
    ) {
        const { check_sizes(D, H, S, IN, OUT, LAST, if INIT { H } else { 0 }) };
        let xp = take(&mut scratch, H * S * B);
        let gh: &mut SMatrix<T, H, B> = carve(&mut scratch);
        // h_t and h_{t−1}, swapped at each step.
        let mut h: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let mut h_prev: &mut SMatrix<T, H, B> = carve(&mut scratch);
        input_products::<T, H, D, S, IN, B>(&self.weight_ih_l0, x, xp);
        initial(x, INIT.then_some(S * D), h);
        for t in 0..S {
            core::mem::swap(&mut h, &mut h_prev);
            kernels::matmul(gh, &self.weight_hh_l0, h_prev, false);
            self.cell(xp, S, t, gh, h);
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
        hs: &mut [SMatrix<T, H, B>; S],
        mut scratch: &mut [T],
    ) {
        const { check_sizes(D, H, S, IN, OUT, LAST, if INIT { H } else { 0 }) };
        let xp = take(&mut scratch, H * S * B);
        let gh: &mut SMatrix<T, H, B> = carve(&mut scratch);
        let h0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        input_products::<T, H, D, S, IN, B>(&self.weight_ih_l0, x, xp);
        initial(x, INIT.then_some(S * D), h0);
        for t in 0..S {
            let (done, rest) = hs.split_at_mut(t);
            let h_prev = done.last().unwrap_or(h0);
            kernels::matmul(gh, &self.weight_hh_l0, h_prev, false);
            self.cell(xp, S, t, gh, &mut rest[0]);
            if !LAST {
                write_rows(y, t * H, &rest[0]);
            }
        }
        if LAST {
            write_rows(y, 0, &hs[S - 1]);
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        hs: &[SMatrix<T, H, B>; S],
        dy: &SMatrix<T, OUT, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        mut scratch: &mut [T],
    ) {
        const { check_sizes(D, H, S, IN, OUT, LAST, if INIT { H } else { 0 }) };
        // δ_t of every step, sample-major (as the input products) and step-major (as the
        // states).
        let d_in = take(&mut scratch, H * S * B);
        let d_hid = take(&mut scratch, H * S * B);
        let h0: &mut SMatrix<T, H, B> = carve(&mut scratch);
        initial(x, INIT.then_some(S * D), h0);
        // ∂L/∂h_t coming from step t + 1 (zero after the last step).
        let carry: &mut SMatrix<T, H, B> = carve(&mut scratch);
        carry.fill(T::ZERO);
        for t in (0..S).rev() {
            let mut rest = &mut d_hid[t * H * B..(t + 1) * H * B];
            let delta: &mut SMatrix<T, H, B> = carve(&mut rest);
            // δ_t = (∂L/∂h_t) ⊙ (1 − h_t²), ∂L/∂h_t = dy_t + carry.
            delta.copy_from(carry);
            if let Some(row) = output_row::<S, H, LAST>(t) {
                *delta += dy.fixed_rows::<H>(row);
            }
            delta.zip_apply(&hs[t], |d, h| *d *= T::ONE - h * h);
            for j in 0..B {
                let start = (j * S + t) * H;
                d_in[start..start + H].copy_from_slice(&delta.as_slice()[j * H..(j + 1) * H]);
            }
            // Step t − 1's gradient; at step 0 that of the initial state, an input.
            if t > 0 || (INIT && dx.is_some()) {
                kernels::matmul_atb(carry, &self.weight_hh_l0, delta, false);
            }
        }
        // The weight gradients summed over every step, one product each.
        let w_ih = &self.weight_ih_l0;
        input_gradients::<T, H, D, S, IN, B>(
            w_ih,
            x,
            d_in,
            &mut grads.weight_ih_l0,
            dx.as_deref_mut(),
        );
        hidden_weight_gradient(d_hid, hs, INIT.then_some(&*h0), &mut grads.weight_hh_l0);
        add_slice_column_sums(&mut grads.bias_ih_l0, d_in);
        add_slice_column_sums(&mut grads.bias_hh_l0, d_hid);
        if INIT && let Some(dx) = dx {
            add_rows(dx, S * D, carry);
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
    > = Rnn<f64, 3, 4, S, IN, OUT, LAST, INIT>;

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

    /// The AVX-512 copy of the cell gives the baseline loop's bits (`f32`, H = 20, B = 3).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx512_cell_equals_the_baseline_cell() {
        const H: usize = 20;
        const S: usize = 4;
        const B: usize = 3;
        if !kernels::has_avx512() {
            return;
        }
        type R = Rnn<f32, 5, 20, 4, 20, 80, false, false>;
        let values = |n: usize, seed: u64| -> std::vec::Vec<f32> {
            let m = random_matrix::<1, 1>(seed, 1.0)[0];
            (0..n)
                .map(|i| ((i as f64 * 0.61 + m).sin() * 3.0) as f32)
                .collect()
        };
        let mut layer = R::ZERO;
        layer.as_mut_slice().copy_from_slice(&values(R::LEN, 41));
        let gh = SMatrix::<f32, H, B>::from_column_slice(&values(H * B, 1));
        let xp = values(H * S * B, 3);
        for t in [0, 2, 3] {
            let (mut h, mut h_avx) = (SMatrix::ZERO, SMatrix::ZERO);
            layer.cell_loops(&xp, S, t, &gh, &mut h);
            // SAFETY: the CPU has AVX-512F.
            unsafe { layer.cell_avx512(&xp, S, t, &gh, &mut h_avx) };
            assert_eq!(h, h_avx);
            let mut h_2 = SMatrix::ZERO;
            // SAFETY: a CPU with AVX-512F has AVX2 and FMA.
            unsafe { layer.cell_avx2(&xp, S, t, &gh, &mut h_2) };
            assert_eq!(h, h_2);
            assert!(h.iter().any(|&v| v != 0.0));
        }
    }

    fn gradcheck<
        const S: usize,
        const IN: usize,
        const OUT: usize,
        const LAST: bool,
        const INIT: bool,
    >() {
        let mut layer = example::<S, IN, OUT, LAST, INIT>(S as u64 + 10);
        let x = random_matrix::<IN, 2>(S as u64, 1.0);
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
        let layer = example::<S, 16, 4, true, true>(3);
        let x = random_matrix::<16, 2>(4, 1.0);
        let dy = random_matrix::<4, 2>(5, 1.0);
        let mut none = ();
        let (y, _, dx, grads) = train_pass(&layer, &x, &dy);

        let cell: Small<1, 7, 4, true, true> = same_params(&layer);
        // Forward, one step at a time: input [x_t; h_{t−1}].
        let mut inputs = [SMatrix::<f64, 7, 2>::ZERO; S];
        let mut outputs = [SMatrix::<f64, 4, 2>::ZERO; S];
        let mut h = x.fixed_rows::<4>(S * 3).into_owned();
        for t in 0..S {
            inputs[t]
                .fixed_rows_mut::<3>(0)
                .copy_from(&x.fixed_rows::<3>(t * 3));
            inputs[t].fixed_rows_mut::<4>(3).copy_from(&h);
            let mut cache = <[SMatrix<f64, 4, 2>; 1]>::ZERO;
            cell.forward_train(
                &mut none,
                &inputs[t],
                &mut outputs[t],
                &mut cache,
                &mut scratch_for(&cell, &inputs[t]),
            );
            h = outputs[t];
        }
        assert_close(y.as_slice(), h.as_slice(), 0.0);
        // Backward, one step at a time, summing the parameter gradients.
        let mut sum = Rnn::ZERO;
        let mut upstream = dy;
        let mut dx_unrolled = SMatrix::<f64, 16, 2>::ZERO;
        for t in (0..S).rev() {
            let mut dx_t = SMatrix::<f64, 7, 2>::ZERO;
            let cache = [outputs[t]];
            cell.backward(
                &inputs[t],
                &cache,
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
            upstream = dx_t.fixed_rows::<4>(3).into_owned();
        }
        add_rows(&mut dx_unrolled, S * 3, &upstream);
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
        let mut state = RnnState {
            h: x.fixed_rows::<4>(S * 3).into_owned(),
        };
        for t in 0..S {
            let x_t = x.fixed_rows::<3>(t * 3).into_owned();
            let h = layer.step(&x_t, &mut state);
            assert_eq!(h.as_slice(), &y.as_slice()[t * 4..t * 4 + 4]);
        }
        // From the zero state (no INIT).
        let layer: Rnn<f64, 3, 4, S, 18, 4, true, false> = same_params(&layer);
        let mut y = SMatrix::<f64, 4, 1>::ZERO;
        let sequence = x.fixed_rows::<18>(0).into_owned();
        layer.forward(&(), &sequence, &mut y, &mut scratch_for(&layer, &sequence));
        let mut state = RnnState::default();
        let mut h = SMatrix::ZERO;
        for t in 0..S {
            h = layer.step(&x.fixed_rows::<3>(t * 3).into_owned(), &mut state);
        }
        assert_eq!(h, y);
        state.reset();
        assert_eq!(state, RnnState::new());
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
        Rnn {
            weight_ih_l0: layer.weight_ih_l0,
            weight_hh_l0: layer.weight_hh_l0,
            bias_ih_l0: layer.bias_ih_l0,
            bias_hh_l0: layer.bias_hh_l0,
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let layer = example::<5, 19, 20, false, true>(16);
        let x = random_matrix::<19, 3>(17, 1.0);
        check_f32::<_, Rnn<f32, 3, 4, 5, 19, 20, false, true>, 19, 20, 3>(&layer, &x, 2e-5);
        let mut state = RnnState::<f32, 4>::new();
        let h = layer_f32(&layer).step(&x.fixed_view::<3, 1>(0, 0).into_owned().cast(), &mut state);
        assert_eq!(h, state.h);
    }

    fn layer_f32(layer: &Small<5, 19, 20, false, true>) -> Rnn<f32, 3, 4, 5, 19, 20, false, true> {
        Rnn {
            weight_ih_l0: layer.weight_ih_l0.cast(),
            weight_hh_l0: layer.weight_hh_l0.cast(),
            bias_ih_l0: layer.bias_ih_l0.cast(),
            bias_hh_l0: layer.bias_hh_l0.cast(),
        }
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
            let (mut yj, mut hsj, mut dxj) = (
                SMatrix::ZERO,
                <[SMatrix<f64, 4, 1>; 3]>::ZERO,
                SMatrix::ZERO,
            );
            layer.forward_train(
                &mut (),
                &xj,
                &mut yj,
                &mut hsj,
                &mut scratch_for(&layer, &xj),
            );
            layer.backward(
                &xj,
                &hsj,
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
    /// D = 3, H = 4, S = 3, batch 2, with and without h_0.
    #[test]
    fn forward_matches_the_numpy_reference() {
        let layer = Rnn::<f64, 3, 4, 3, 13, 12, false, true> {
            weight_ih_l0: det_matrix(0.1),
            weight_hh_l0: det_matrix(0.2),
            bias_ih_l0: det_matrix(0.3),
            bias_hh_l0: det_matrix(0.4),
        };
        let x = det_batch::<13, 2>(0.5);
        let mut y = SMatrix::<f64, 12, 2>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        assert_close(y.as_slice(), &REFERENCE_RNN, 1e-13);
    }

    const REFERENCE_RNN: [f64; 24] = [
        0.15244696437789818,
        0.3998183827409693,
        -0.790778410241485,
        -0.6641642387249018,
        0.818840413612851,
        0.9548084325578843,
        0.02018927864883203,
        -0.6681878527147915,
        0.7604726468343138,
        0.9629101147023468,
        0.30889733876616104,
        -0.6133163427388265,
        0.490741323902436,
        0.8896851652376555,
        0.006771770525184084,
        -0.5676937546892128,
        0.7003454055025717,
        0.8209263275883857,
        -0.30832922057352247,
        -0.478834091389016,
        0.8317938352215278,
        0.8431215656796238,
        -0.41051680311888045,
        -0.4101118969042524,
    ];
}

//! Multi-head self-attention: [`MultiHeadAttention`] (PyTorch's `nn.MultiheadAttention` used
//! as `attn(x, x, x)`), and its cache [`AttentionCache`].

use super::recurrent::{add_slice_column_sums, flat, flat_mut, input_gradients, take};
use crate::kernels::{self, MatView};
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable};
use nalgebra::SMatrix;

/// Multi-head scaled dot-product self-attention over a sequence `[S, D]` (`IN = S·D`, token
/// `t`'s features at `t·D .. (t + 1)·D`), giving `[S, D]`: PyTorch's
/// `nn.MultiheadAttention(D, HEADS, batch_first=True)` called as `attn(x, x, x)` (with
/// `attn_mask = nn.Transformer.generate_square_subsequent_mask(S)` when `CAUSAL`), no
/// dropout, returning its first output.
///
/// Per sample, with `X` the `D × S` matrix of tokens (one per column), `E = D/HEADS` the
/// head size and head `h` using feature rows `h·E .. (h + 1)·E` of `Q`, `K`, `V`:
///
/// ```text
/// [Q; K; V] = W_in·X + b_in·1ᵀ                       (3D × S)
/// A_h[s, t] = (q_{h,s} · k_{h,t}) / √E                (query s, key t)
/// P_h[s, ·] = softmax_t(A_h[s, ·])                     (with CAUSAL, over t ≤ s only:
///                                                       A_h[s, t] = −∞ for t > s)
/// O_h[:, s] = Σ_t P_h[s, t]·v_{h,t}                    (E × S, heads stacked: O is D × S)
/// Y = W_out·O + b_out·1ᵀ                              (D × S)
/// ```
///
/// Backward (per head and sample, `∂O = W_outᵀ·∂Y`):
/// `∂W_out += ∂Y·Oᵀ`, `∂b_out += ∂Y·1`, `∂v_t += Σ_s P[s, t]·∂o_s`,
/// `∂P[s, t] = ∂o_s · v_t`, `∂A[s, t] = P[s, t]·(∂P[s, t] − Σ_u P[s, u]·∂P[s, u])`,
/// `∂q_s += Σ_t ∂A[s, t]·k_t/√E`, `∂k_t += Σ_s ∂A[s, t]·q_s/√E`, then
/// `∂W_in += ∂[Q; K; V]·Xᵀ`, `∂b_in += ∂[Q; K; V]·1`, `∂X += W_inᵀ·∂[Q; K; V]`.
///
/// Parameters (PyTorch's names, shapes and order): `in_proj_weight` `[3D, D]` =
/// `[W_q; W_k; W_v]`, `in_proj_bias` `[3D]` = `[b_q; b_k; b_v]`, `out_proj.weight` `[D, D]`,
/// `out_proj.bias` `[D]`. [`Layer::init`] initialises the weights by the network's scheme
/// (PyTorch: Xavier-uniform for `in_proj_weight`, the network's default Glorot-uniform with
/// the same fans, and `nn.Linear`'s for `out_proj.weight`) and both biases to zero (as
/// PyTorch).
///
/// `D3 = 3·D`, `D % HEADS == 0`, `IN = S·D` are checked at compile time where the layer is
/// used. Work per sample: `O(S·D²)` for the projections, `O(S²·D)` for the attention; the
/// cache holds `Q, K, V`, `O` and the `HEADS` attention matrices `S × S` of every sample.
///
/// The projections run over the whole batch at once: the batch is the `D × S·B` matrix of
/// every sample's tokens (column-major, sample `j`'s in columns `j·S .. (j + 1)·S`, in place),
/// so `[Q; K; V]` of every token is one product (`3D × D` by `D × S·B`), as are `Y`, and in
/// backward `∂W_in`, `∂X`, `∂W_out` and `∂O` (the products of issue 16, as the recurrent
/// layers' input projections). The attention runs sample by sample, head by head, as products
/// on the same kernels (`Kᵀ·Q` and `V·Pᵀ` forward; `Vᵀ·∂O`, `∂O·P`, `K·∂Aᵀ`, `Q·∂A` backward)
/// with the softmax and its gradient in loops between them, also compiled for AVX-512 and run
/// so where the CPU has it (the same results bit for bit). The batch's `[Q; K; V]` and `O`
/// (in backward their gradients) live in the layer's scratch memory, one sample's after
/// another as columns of one matrix, and one head's `S × S` attention weights (or their
/// gradient) after them ([`Layer::SCRATCH`] `= S·(4D + S)` per sample, as the macro plans
/// only per-sample scratch for a layer that needs any; in training the cache holds
/// `[Q; K; V]`, `O` and the weights, which the forward pass computes in place), so nothing
/// sequence-sized is on the stack.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct MultiHeadAttention<
    T: Real,
    const D: usize,
    const HEADS: usize,
    const S: usize,
    const IN: usize,
    const D3: usize,
    const CAUSAL: bool,
> {
    /// `[W_q; W_k; W_v]`, `[3D, D]`.
    pub in_proj_weight: SMatrix<T, D3, D>,
    /// `[b_q; b_k; b_v]`, `[3D]`.
    pub in_proj_bias: SMatrix<T, D3, 1>,
    /// `W_out`, `[D, D]` (PyTorch's `out_proj.weight`).
    pub out_proj_weight: SMatrix<T, D, D>,
    /// `b_out`, `[D]` (PyTorch's `out_proj.bias`).
    pub out_proj_bias: SMatrix<T, D, 1>,
}

/// What [`MultiHeadAttention`]'s training forward pass keeps for backward, for `B` samples.
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct AttentionCache<
    T: Real,
    const D: usize,
    const HEADS: usize,
    const S: usize,
    const D3: usize,
    const B: usize,
> {
    /// `[Q; K; V]` of each sample, token `t` in column `t`.
    pub qkv: [SMatrix<T, D3, S>; B],
    /// The attention weights of each sample and head, transposed: `weights[j][h][(t, s)]`
    /// is `P_h[s, t]`, the weight of key `t` for query `s` (column `s` sums to 1; zero
    /// above `s` when causal).
    pub weights: [[SMatrix<T, S, S>; HEADS]; B],
    /// The heads' outputs `O` (before the output projection) of each sample.
    pub context: [SMatrix<T, D, S>; B],
}

/// Compile-time size rules.
const fn check(d: usize, heads: usize, s: usize, input: usize, d3: usize) {
    assert!(
        heads >= 1 && s >= 1,
        "MultiHeadAttention: HEADS and S must be at least 1"
    );
    assert!(
        d.is_multiple_of(heads),
        "MultiHeadAttention: D must be a multiple of HEADS"
    );
    assert!(d3 == 3 * d, "MultiHeadAttention: D3 must be 3·D");
    assert!(input == s * d, "MultiHeadAttention: IN must be S·D");
}

/// The largest of `values` (NaNs ignored, as `max` does, unless all are NaN), in 8 partial
/// maxima: independent chains the compiler makes one vector, where one fold would be a chain
/// of dependent comparisons. A maximum does not depend on the order it is taken in (but for
/// the sign of a zero, which the softmax's `a − max` does not see).
#[inline]
fn max_of<T: Real>(values: &[T]) -> T {
    let (chunks, rest) = values.as_chunks::<8>();
    let mut maxima = [values[0]; 8];
    for chunk in chunks {
        for (max, &v) in maxima.iter_mut().zip(chunk) {
            *max = max.max(v);
        }
    }
    for (max, &v) in maxima.iter_mut().zip(rest) {
        *max = max.max(v);
    }
    maxima.iter().fold(maxima[0], |max, &v| max.max(v))
}

impl<
    T: Real,
    const D: usize,
    const HEADS: usize,
    const S: usize,
    const IN: usize,
    const D3: usize,
    const CAUSAL: bool,
> MultiHeadAttention<T, D, HEADS, S, IN, D3, CAUSAL>
{
    /// The number of keys query `s` sees: `s + 1` when causal, all `S` otherwise.
    #[inline]
    fn keys(s: usize) -> usize {
        if CAUSAL { s + 1 } else { S }
    }

    /// `1/√E`, `E = D/HEADS`.
    #[inline]
    fn scale() -> T {
        T::ONE / T::of((D / HEADS) as f64).sqrt()
    }

    /// `[Q; K; V] = W_in·X + b_in·1ᵀ` for every token of every sample: `qkv` (`3D × S·B`,
    /// sample `j`'s tokens in columns `j·S .. (j + 1)·S`) from the batch `x`, which is the
    /// `D × S·B` matrix of all the tokens: one product.
    fn project_in<const B: usize>(&self, x: &SMatrix<T, IN, B>, qkv: &mut [T]) {
        for column in qkv.chunks_exact_mut(D3) {
            column.copy_from_slice(self.in_proj_bias.as_slice());
        }
        let w = MatView::new(self.in_proj_weight.as_slice(), D3);
        let x = MatView::new(x.as_slice(), D);
        kernels::matmul_view(D3, S * B, D, qkv, D3, w, x, true);
    }

    /// `Y = W_out·O + b_out·1ᵀ` for every token of every sample: `context` is `O`
    /// (`D × S·B`, as [`project_in`](Self::project_in)'s `qkv`), `y` the batch: one product.
    fn project_out<const B: usize>(&self, context: &[T], y: &mut SMatrix<T, IN, B>) {
        for column in y.as_mut_slice().chunks_exact_mut(D) {
            column.copy_from_slice(self.out_proj_bias.as_slice());
        }
        let w = MatView::new(self.out_proj_weight.as_slice(), D);
        let context = MatView::new(context, D);
        kernels::matmul_view(D, S * B, D, y.as_mut_slice(), D, w, context, true);
    }

    /// The attention of one sample, head by head: from its `[Q; K; V]` (`qkv`, `3D × S`)
    /// writes `O` (`context`, `D × S`) and, when given, the attention weights (transposed,
    /// see [`AttentionCache::weights`]); without them each head's weights are computed in
    /// `p` (`S × S`). Two products per head (scores `Kᵀ·Q`, then `V·P`ᵀ-stored weights) on
    /// the kernels, the softmax column by column in between.
    #[inline(always)]
    fn attend(
        qkv: &[T],
        context: &mut [T],
        mut weights: Option<&mut [SMatrix<T, S, S>; HEADS]>,
        p: &mut [T],
    ) {
        let e = D / HEADS;
        let scale = Self::scale();
        for h in 0..HEADS {
            let (q0, k0, v0) = (h * e, D + h * e, 2 * D + h * e);
            // The weights, transposed: column s holds query s's weights over the keys.
            let w = match weights.as_deref_mut() {
                Some(weights) => weights[h].as_mut_slice(),
                None => &mut p[..S * S],
            };
            // Scores: (S × S)[t, s] = k_t · q_s = (K_hᵀ·Q_h)[t, s].
            let (k_h, q_h) = (MatView::new(&qkv[k0..], D3), MatView::new(&qkv[q0..], D3));
            kernels::matmul_view(S, S, e, w, S, k_h.t(), q_h, false);
            for (s, column) in w.chunks_exact_mut(S).enumerate() {
                // Softmax over the visible keys of the scaled scores, after subtracting
                // their maximum; zero for the keys a causal mask hides.
                let (visible, hidden) = column.split_at_mut(Self::keys(s));
                for a in visible.iter_mut() {
                    *a *= scale;
                }
                let max = max_of(visible);
                // The exponentials vectorise (`exp_accurate`), then their sum in 8 lanes.
                for a in visible.iter_mut() {
                    *a = (*a - max).exp_accurate();
                }
                let sum = kernels::sum(visible);
                for a in visible {
                    *a /= sum;
                }
                hidden.fill(T::ZERO);
            }
            // O_h (E × S) = V_h (E × S) · Pᵀ, the weights as stored.
            let v_h = MatView::new(&qkv[v0..], D3);
            let o_h = &mut context[h * e..];
            kernels::matmul_view(e, S, S, o_h, D, v_h, MatView::new(w, S), false);
        }
    }

    /// The backward pass of one sample's attention, head by head: from its `[Q; K; V]`
    /// (`qkv`), attention weights and `∂O` (`d_context`), adds `∂[Q; K; V]` to `d_qkv`;
    /// `da` (`S × S`) holds a head's `∂P`, then `∂A`, transposed as the weights. Four
    /// products per head on the kernels, the softmax's gradient column by column.
    #[inline(always)]
    fn attend_backward(
        qkv: &[T],
        weights: &[SMatrix<T, S, S>; HEADS],
        d_context: &[T],
        d_qkv: &mut [T],
        da: &mut [T],
    ) {
        let e = D / HEADS;
        let scale = Self::scale();
        let da = &mut da[..S * S];
        for h in 0..HEADS {
            let (q0, k0, v0) = (h * e, D + h * e, 2 * D + h * e);
            let w = weights[h].as_slice();
            let (q_h, k_h) = (MatView::new(&qkv[q0..], D3), MatView::new(&qkv[k0..], D3));
            let v_h = MatView::new(&qkv[v0..], D3);
            let d_o = MatView::new(&d_context[h * e..], D);
            // ∂P[s, t] = ∂o_s · v_t, transposed: (V_hᵀ·∂O_h)[t, s].
            kernels::matmul_view(S, S, e, da, S, v_h.t(), d_o, false);
            // ∂v_t += Σ_s P[s, t]·∂o_s: ∂V_h += ∂O_h·(Pᵀ)ᵀ.
            let w_view = MatView::new(w, S);
            kernels::matmul_view(e, S, S, &mut d_qkv[v0..], D3, d_o, w_view.t(), true);
            // ∂A[s, t] = P[s, t]·(∂P[s, t] − Σ_u P[s, u]·∂P[s, u]), scaled by 1/√E for the
            // scores' gradient; zero for hidden keys.
            for (s, (da, p)) in da.chunks_exact_mut(S).zip(w.chunks_exact(S)).enumerate() {
                let keys = Self::keys(s);
                let (visible, hidden) = da.split_at_mut(keys);
                let mut weighted = T::ZERO;
                for (&dp, &p) in visible.iter().zip(p) {
                    weighted += p * dp;
                }
                for (dp, &p) in visible.iter_mut().zip(p) {
                    *dp = p * (*dp - weighted) * scale;
                }
                hidden.fill(T::ZERO);
            }
            // ∂q_s += Σ_t ∂A[s, t]·k_t: ∂Q_h += K_h·∂Aᵀ (as stored).
            let da_view = MatView::new(&*da, S);
            kernels::matmul_view(e, S, S, &mut d_qkv[q0..], D3, k_h, da_view, true);
            // ∂k_t += Σ_s ∂A[s, t]·q_s: ∂K_h += Q_h·(∂Aᵀ)ᵀ.
            kernels::matmul_view(e, S, S, &mut d_qkv[k0..], D3, q_h, da_view.t(), true);
        }
    }

    /// Every sample's attention ([`attend`](Self::attend)), sample after sample: `qkv` and
    /// `context` hold the batch's `[Q; K; V]` and `O` side by side, `weights` (when given)
    /// one sample's attention weights after another.
    #[inline(always)]
    fn heads(
        qkv: &[T],
        context: &mut [T],
        mut weights: Option<&mut [[SMatrix<T, S, S>; HEADS]]>,
        p: &mut [T],
    ) {
        let samples = qkv
            .chunks_exact(D3 * S)
            .zip(context.chunks_exact_mut(D * S));
        for (j, (qkv, context)) in samples.enumerate() {
            let weights = weights.as_deref_mut().map(|weights| &mut weights[j]);
            Self::attend(qkv, context, weights, p);
        }
    }

    /// Every sample's attention backward ([`attend_backward`](Self::attend_backward)),
    /// sample after sample (the batch's matrices side by side, as [`heads`](Self::heads)).
    #[inline(always)]
    fn heads_backward(
        qkv: &[T],
        weights: &[[SMatrix<T, S, S>; HEADS]],
        d_context: &[T],
        d_qkv: &mut [T],
        dp: &mut [T],
    ) {
        let samples = d_context
            .chunks_exact(D * S)
            .zip(d_qkv.chunks_exact_mut(D3 * S));
        for (j, (d_context, d_qkv)) in samples.enumerate() {
            let qkv = &qkv[j * D3 * S..][..D3 * S];
            Self::attend_backward(qkv, &weights[j], d_context, d_qkv, dp);
        }
    }

    /// [`heads`](Self::heads) compiled for AVX-512: the same operations in the same order
    /// (Rust fuses no multiply-add), so the same results bit for bit, in wider vectors.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn heads_avx512(
        qkv: &[T],
        context: &mut [T],
        weights: Option<&mut [[SMatrix<T, S, S>; HEADS]]>,
        p: &mut [T],
    ) {
        Self::heads(qkv, context, weights, p);
    }

    /// [`heads_backward`](Self::heads_backward) compiled for AVX-512 (as
    /// [`heads_avx512`](Self::heads_avx512)).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn heads_backward_avx512(
        qkv: &[T],
        weights: &[[SMatrix<T, S, S>; HEADS]],
        d_context: &[T],
        d_qkv: &mut [T],
        dp: &mut [T],
    ) {
        Self::heads_backward(qkv, weights, d_context, d_qkv, dp);
    }

    /// [`heads`](Self::heads) compiled for AVX2 (with FMA, into which Rust fuses no
    /// multiply-add: the same bits).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn heads_avx2(
        qkv: &[T],
        context: &mut [T],
        weights: Option<&mut [[SMatrix<T, S, S>; HEADS]]>,
        p: &mut [T],
    ) {
        Self::heads(qkv, context, weights, p);
    }

    /// [`heads_backward`](Self::heads_backward) compiled for AVX2 (as
    /// [`heads_avx2`](Self::heads_avx2)).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn heads_backward_avx2(
        qkv: &[T],
        weights: &[[SMatrix<T, S, S>; HEADS]],
        d_context: &[T],
        d_qkv: &mut [T],
        dp: &mut [T],
    ) {
        Self::heads_backward(qkv, weights, d_context, d_qkv, dp);
    }

    /// [`heads`](Self::heads), compiled for AVX-512 where the CPU has it (the layer's loops
    /// are otherwise compiled for the baseline: SSE2 on x86-64).
    fn run_heads(
        qkv: &[T],
        context: &mut [T],
        weights: Option<&mut [[SMatrix<T, S, S>; HEADS]]>,
        p: &mut [T],
    ) {
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { Self::heads_avx512(qkv, context, weights, p) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { Self::heads_avx2(qkv, context, weights, p) };
        }
        Self::heads(qkv, context, weights, p);
    }

    /// [`heads_backward`](Self::heads_backward), compiled for AVX-512 where the CPU has it.
    fn run_heads_backward(
        qkv: &[T],
        weights: &[[SMatrix<T, S, S>; HEADS]],
        d_context: &[T],
        d_qkv: &mut [T],
        dp: &mut [T],
    ) {
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { Self::heads_backward_avx512(qkv, weights, d_context, d_qkv, dp) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { Self::heads_backward_avx2(qkv, weights, d_context, d_qkv, dp) };
        }
        Self::heads_backward(qkv, weights, d_context, d_qkv, dp);
    }
}

impl<
    T: Real,
    const D: usize,
    const HEADS: usize,
    const S: usize,
    const IN: usize,
    const D3: usize,
    const CAUSAL: bool,
> Layer<T, IN, IN> for MultiHeadAttention<T, D, HEADS, S, IN, D3, CAUSAL>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "in_proj_weight",
            shape: &[D3, D],
            role: Role::Weight,
        },
        TensorInfo {
            name: "in_proj_bias",
            shape: &[D3],
            role: Role::Bias,
        },
        TensorInfo {
            name: "out_proj.weight",
            shape: &[D, D],
            role: Role::Weight,
        },
        TensorInfo {
            name: "out_proj.bias",
            shape: &[D],
            role: Role::Bias,
        },
    ];

    /// Per sample: its `[Q; K; V]` (`3D·S`) and `O` (`D·S`) in `forward`, its `∂[Q; K; V]`
    /// and `∂O` in `backward` (the batch's side by side, for the projections' products), and
    /// `S·S` more, of which the batch's first `S·S` hold one head's weights `P` or their
    /// gradient.
    const SCRATCH: usize = S * (4 * D + S);

    type Cache<const B: usize> = AttentionCache<T, D, HEADS, S, D3, B>;
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        mut scratch: &mut [T],
    ) {
        const { check(D, HEADS, S, IN, D3) };
        let qkv = take(&mut scratch, D3 * S * B);
        let context = take(&mut scratch, D * S * B);
        let p = take(&mut scratch, S * S);
        self.project_in(x, qkv);
        Self::run_heads(qkv, context, None, p);
        self.project_out(context, y);
    }

    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        cache: &mut AttentionCache<T, D, HEADS, S, D3, B>,
        _scratch: &mut [T],
    ) {
        const { check(D, HEADS, S, IN, D3) };
        // The attention weights are computed in the cache: no scratch.
        self.project_in(x, flat_mut(&mut cache.qkv));
        let (qkv, context) = (flat(&cache.qkv), flat_mut(&mut cache.context));
        Self::run_heads(qkv, context, Some(&mut cache.weights), &mut []);
        self.project_out(flat(&cache.context), y);
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &AttentionCache<T, D, HEADS, S, D3, B>,
        dy: &SMatrix<T, IN, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        mut scratch: &mut [T],
    ) {
        const { check(D, HEADS, S, IN, D3) };
        let d_context = take(&mut scratch, D * S * B);
        let d_qkv = take(&mut scratch, D3 * S * B);
        let da = take(&mut scratch, S * S);
        // Output projection, over every token of every sample: ∂W_out += ∂Y·Oᵀ,
        // ∂b_out += ∂Y·1, ∂O = W_outᵀ·∂Y.
        let dys = MatView::new(dy.as_slice(), D);
        let context = MatView::new(flat(&cache.context), D);
        let dw = grads.out_proj_weight.as_mut_slice();
        kernels::matmul_view(D, D, S * B, dw, D, dys, context.t(), true);
        add_slice_column_sums(&mut grads.out_proj_bias, dy.as_slice());
        let w_out = MatView::new(self.out_proj_weight.as_slice(), D).t();
        kernels::matmul_view(D, S * B, D, d_context, D, w_out, dys, false);
        // Attention, sample by sample.
        d_qkv.fill(T::ZERO);
        Self::run_heads_backward(flat(&cache.qkv), &cache.weights, d_context, d_qkv, da);
        // Input projection, over every token of every sample: ∂W_in += ∂[Q; K; V]·Xᵀ,
        // ∂b_in += ∂[Q; K; V]·1, ∂X += W_inᵀ·∂[Q; K; V].
        input_gradients::<T, D3, D, S, IN, B>(
            &self.in_proj_weight,
            x,
            d_qkv,
            &mut grads.in_proj_weight,
            dx,
        );
        add_slice_column_sums(&mut grads.in_proj_bias, d_qkv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        assert_close, check_f32, check_layer, det_batch, det_matrix, max_diff, random_matrix,
        randomize, scratch_for, train_pass,
    };

    fn example<
        const D: usize,
        const HEADS: usize,
        const S: usize,
        const IN: usize,
        const D3: usize,
        const CAUSAL: bool,
    >(
        seed: u64,
    ) -> MultiHeadAttention<f64, D, HEADS, S, IN, D3, CAUSAL> {
        let mut layer = MultiHeadAttention::ZERO;
        randomize(&mut layer, seed, 0.7);
        layer
    }

    fn gradcheck<
        const D: usize,
        const HEADS: usize,
        const S: usize,
        const IN: usize,
        const D3: usize,
        const CAUSAL: bool,
    >(
        seed: u64,
    ) {
        let mut layer = example::<D, HEADS, S, IN, D3, CAUSAL>(seed);
        let x = random_matrix::<IN, 2>(seed + 100, 1.0);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradcheck::<4, 1, 1, 4, 12, false>(1);
        gradcheck::<4, 2, 3, 12, 12, false>(2);
        gradcheck::<6, 3, 5, 30, 18, false>(3);
        gradcheck::<4, 1, 1, 4, 12, true>(4);
        gradcheck::<4, 2, 3, 12, 12, true>(5);
        gradcheck::<6, 3, 5, 30, 18, true>(6);
        gradcheck::<6, 2, 4, 24, 18, true>(7);
    }

    /// With the causal mask, output `t` depends on inputs `≤ t` only: changing the tokens
    /// after `t` leaves outputs `0..=t` bit for bit, and their gradient reaches no token
    /// after `t`. Without the mask, they do change.
    #[test]
    fn the_causal_mask_hides_the_future() {
        const S: usize = 5;
        let causal = example::<4, 2, S, 20, 12, true>(8);
        let full = MultiHeadAttention::<f64, 4, 2, S, 20, 12, false> {
            in_proj_weight: causal.in_proj_weight,
            in_proj_bias: causal.in_proj_bias,
            out_proj_weight: causal.out_proj_weight,
            out_proj_bias: causal.out_proj_bias,
        };
        let x = random_matrix::<20, 1>(9, 1.0);
        for t in 0..S - 1 {
            let mut changed = x;
            for v in &mut changed.as_mut_slice()[(t + 1) * 4..] {
                *v += 0.75;
            }
            let (mut y, mut y_changed) = (SMatrix::ZERO, SMatrix::ZERO);
            causal.forward(&(), &x, &mut y, &mut scratch_for(&causal, &x));
            causal.forward(
                &(),
                &changed,
                &mut y_changed,
                &mut scratch_for(&causal, &changed),
            );
            let visible = (t + 1) * 4;
            assert_eq!(y.as_slice()[..visible], y_changed.as_slice()[..visible]);
            assert_ne!(y.as_slice()[visible..], y_changed.as_slice()[visible..]);
            full.forward(&(), &x, &mut y, &mut scratch_for(&full, &x));
            full.forward(
                &(),
                &changed,
                &mut y_changed,
                &mut scratch_for(&full, &changed),
            );
            assert!(max_diff(&y.as_slice()[..visible], &y_changed.as_slice()[..visible]) > 1e-3);

            // ∂y_t/∂x_u = 0 for u > t.
            let mut dy = SMatrix::<f64, 20, 1>::ZERO;
            dy.as_mut_slice()[t * 4..(t + 1) * 4].copy_from_slice(&[1.0, -0.5, 0.25, 2.0]);
            let (mut cache, mut dx, mut grads) = (
                AttentionCache::ZERO,
                SMatrix::ZERO,
                MultiHeadAttention::ZERO,
            );
            causal.forward_train(
                &mut (),
                &x,
                &mut y,
                &mut cache,
                &mut scratch_for(&causal, &x),
            );
            causal.backward(
                &x,
                &cache,
                &dy,
                Some(&mut dx),
                &mut grads,
                &mut scratch_for(&causal, &x),
            );
            assert!(dx.as_slice()[visible..].iter().all(|&g| g == 0.0));
            assert!(dx.as_slice()[..visible].iter().any(|&g| g != 0.0));
        }
    }

    #[test]
    fn attention_weights_are_distributions() {
        let layer = example::<6, 3, 4, 24, 18, true>(10);
        let x = random_matrix::<24, 2>(11, 2.0);
        let (mut y, mut cache) = (SMatrix::ZERO, AttentionCache::ZERO);
        layer.forward_train(
            &mut (),
            &x,
            &mut y,
            &mut cache,
            &mut scratch_for(&layer, &x),
        );
        for weights in cache.weights.iter().flatten() {
            for s in 0..4 {
                let column = weights.column(s);
                assert!((column.sum() - 1.0).abs() < 1e-15);
                assert!(column.iter().take(s + 1).all(|&p| p > 0.0));
                assert!(column.iter().skip(s + 1).all(|&p| p == 0.0));
            }
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let layer = example::<6, 2, 4, 24, 18, true>(17);
        let x = random_matrix::<24, 3>(18, 1.0);
        check_f32::<_, MultiHeadAttention<f32, 6, 2, 4, 24, 18, true>, 24, 24, 3>(&layer, &x, 2e-5);
    }

    #[test]
    fn training_forward_equals_inference_forward() {
        let layer = example::<6, 2, 4, 24, 18, false>(12);
        let x = random_matrix::<24, 3>(13, 1.0);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        let (y_train, ..) = train_pass(&layer, &x, &SMatrix::ZERO);
        assert_eq!(y, y_train);
    }

    /// A batch of `B` samples against `B` passes of one sample each: the outputs bit for bit
    /// (each column of the projections' products is the same whatever the other columns),
    /// inference's as training's, and `∂X` and the parameter gradients (sums over the batch's
    /// tokens in another order) to rounding.
    fn batch_equals_single_samples_for<
        const D: usize,
        const HEADS: usize,
        const S: usize,
        const IN: usize,
        const D3: usize,
        const CAUSAL: bool,
        const B: usize,
    >(
        seed: u64,
    ) {
        let layer = example::<D, HEADS, S, IN, D3, CAUSAL>(seed);
        let x = random_matrix::<IN, B>(seed + 1, 1.0);
        let dy = random_matrix::<IN, B>(seed + 2, 1.0);
        let (y, cache, dx, grads) = train_pass(&layer, &x, &dy);
        let mut y_inference = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y_inference, &mut scratch_for(&layer, &x));
        assert_eq!(y, y_inference);
        let mut single_grads = MultiHeadAttention::<f64, D, HEADS, S, IN, D3, CAUSAL>::ZERO;
        for j in 0..B {
            let xj: SMatrix<f64, IN, 1> = x.column(j).into();
            let dyj: SMatrix<f64, IN, 1> = dy.column(j).into();
            let (yj, cachej, dxj, gradsj) = train_pass(&layer, &xj, &dyj);
            assert_eq!(yj.as_slice(), y.column(j).as_slice());
            assert_eq!(cachej.qkv[0], cache.qkv[j]);
            assert_eq!(cachej.context[0], cache.context[j]);
            assert_eq!(cachej.weights[0], cache.weights[j]);
            assert_close(dxj.as_slice(), dx.column(j).as_slice(), 1e-14);
            for (sum, &g) in single_grads
                .as_mut_slice()
                .iter_mut()
                .zip(gradsj.as_slice())
            {
                *sum += g;
            }
        }
        let scale = grads.as_slice().iter().fold(1.0f64, |m, g| m.max(g.abs()));
        assert_close(single_grads.as_slice(), grads.as_slice(), 1e-14 * scale);
    }

    #[test]
    fn batch_equals_single_samples() {
        batch_equals_single_samples_for::<4, 2, 3, 12, 12, true, 4>(14);
        batch_equals_single_samples_for::<4, 2, 3, 12, 12, false, 3>(20);
        // One token per sample: the batch's tokens are its samples.
        batch_equals_single_samples_for::<4, 1, 1, 4, 12, false, 5>(21);
        batch_equals_single_samples_for::<6, 3, 1, 6, 18, true, 2>(22);
        // Large enough for the projections to run the blocked GEMM.
        batch_equals_single_samples_for::<32, 4, 8, 256, 96, true, 6>(23);
        batch_equals_single_samples_for::<32, 2, 16, 512, 96, false, 3>(24);
    }

    /// The heads' loops compiled for AVX-512 give the baseline build's results bit for bit.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_heads_equal_the_baseline_heads() {
        type Mha = MultiHeadAttention<f32, 32, 2, 7, 224, 96, true>;
        if !kernels::has_avx512() {
            return;
        }
        let values = |n: usize, seed: u64| -> std::vec::Vec<f32> {
            let m = random_matrix::<1, 1>(seed, 1.0)[0];
            (0..n)
                .map(|i| ((i as f64 * 0.37 + m).sin() * 2.0) as f32)
                .collect()
        };
        const B: usize = 3;
        let qkv = values(96 * 7 * B, 30);
        let d_context = values(32 * 7 * B, 31);
        let (mut p, mut w, mut w_avx) = (
            [0.0f32; 7 * 7],
            [[SMatrix::ZERO; 2]; B],
            [[SMatrix::ZERO; 2]; B],
        );
        let (mut context, mut context_avx) =
            (std::vec![0.0; 32 * 7 * B], std::vec![0.0; 32 * 7 * B]);
        Mha::heads(&qkv, &mut context, Some(&mut w), &mut p);
        // SAFETY: the CPU has AVX-512F.
        unsafe { Mha::heads_avx512(&qkv, &mut context_avx, Some(&mut w_avx), &mut p) };
        assert_eq!(context, context_avx);
        assert_eq!(w, w_avx);
        let (mut d_qkv, mut d_qkv_avx) = (std::vec![0.0; 96 * 7 * B], std::vec![0.0; 96 * 7 * B]);
        Mha::heads_backward(&qkv, &w, &d_context, &mut d_qkv, &mut p);
        // SAFETY: the CPU has AVX-512F.
        unsafe { Mha::heads_backward_avx512(&qkv, &w, &d_context, &mut d_qkv_avx, &mut p) };
        assert_eq!(d_qkv, d_qkv_avx);
        // The AVX2 copies too (a CPU with AVX-512F has AVX2 and FMA).
        let (mut context_2, mut w_2) = (std::vec![0.0; 32 * 7 * B], [[SMatrix::ZERO; 2]; B]);
        // SAFETY: as above.
        unsafe { Mha::heads_avx2(&qkv, &mut context_2, Some(&mut w_2), &mut p) };
        assert_eq!((&context, &w), (&context_2, &w_2));
        let mut d_qkv_2 = std::vec![0.0; 96 * 7 * B];
        // SAFETY: as above.
        unsafe { Mha::heads_backward_avx2(&qkv, &w, &d_context, &mut d_qkv_2, &mut p) };
        assert_eq!(d_qkv, d_qkv_2);
        assert!(d_qkv.iter().all(|g| g.is_finite()) && d_qkv.iter().any(|&g| g != 0.0));
    }

    /// `forward` against `tests/layers_reference.py` (numpy, PyTorch's equations):
    /// D = 4, 2 heads, S = 3, batch 2, with and without the causal mask.
    #[test]
    fn forward_matches_the_numpy_reference() {
        let full = MultiHeadAttention::<f64, 4, 2, 3, 12, 12, false> {
            in_proj_weight: det_matrix(0.9),
            in_proj_bias: det_matrix(1.0),
            out_proj_weight: det_matrix(1.1),
            out_proj_bias: det_matrix(1.2),
        };
        let x = det_batch::<12, 2>(1.3);
        let mut y = SMatrix::ZERO;
        full.forward(&(), &x, &mut y, &mut scratch_for(&full, &x));
        assert_close(y.as_slice(), &REFERENCE_ATTENTION, 1e-13);
        let causal = MultiHeadAttention::<f64, 4, 2, 3, 12, 12, true> {
            in_proj_weight: full.in_proj_weight,
            in_proj_bias: full.in_proj_bias,
            out_proj_weight: full.out_proj_weight,
            out_proj_bias: full.out_proj_bias,
        };
        causal.forward(&(), &x, &mut y, &mut scratch_for(&causal, &x));
        assert_close(y.as_slice(), &REFERENCE_ATTENTION_CAUSAL, 1e-13);
    }

    #[test]
    fn tensors_have_pytorchs_names_and_shapes() {
        type Mha = MultiHeadAttention<f32, 8, 2, 5, 40, 24, false>;
        let tensors = <Mha as Layer<f32, 40, 40>>::TENSORS;
        let names: [&str; 4] = core::array::from_fn(|i| tensors[i].name);
        assert_eq!(
            names,
            [
                "in_proj_weight",
                "in_proj_bias",
                "out_proj.weight",
                "out_proj.bias"
            ]
        );
        let total: usize = tensors.iter().map(|t| t.len()).sum();
        assert_eq!(total, <Mha as Params<f32>>::LEN);
        assert_eq!(tensors[0].shape, &[24, 8]);
    }

    const REFERENCE_ATTENTION: [f64; 24] = [
        0.6092763978278984,
        0.5320115913086083,
        0.07695396159390816,
        0.5937396504471323,
        0.6116282348337729,
        0.5329401005888229,
        0.07621661186400391,
        0.5915290411575398,
        0.6130193042733006,
        0.5331508001520356,
        0.07519190576742601,
        0.5895365877769052,
        0.909955653206538,
        0.7062863306639617,
        0.07930274826909695,
        0.42354896957333127,
        0.9140295522006344,
        0.7098490369874487,
        0.08142366514798666,
        0.4236741028733388,
        0.9180286140784564,
        0.7135617616571583,
        0.08388027029057538,
        0.42423291089512366,
    ];
    const REFERENCE_ATTENTION_CAUSAL: [f64; 24] = [
        0.5520017426899503,
        0.49019291057628184,
        0.06151450457500601,
        0.6087122808102636,
        0.570962931019409,
        0.5051342594750787,
        0.06853325871565746,
        0.6059751063819964,
        0.6130193042733006,
        0.5331508001520356,
        0.07519190576742601,
        0.5895365877769052,
        0.8145335236890429,
        0.6552394997763176,
        0.08596490445853239,
        0.4861799242038031,
        0.8708863955293311,
        0.6869860390572626,
        0.08481275577453556,
        0.45243003457410474,
        0.9180286140784564,
        0.7135617616571583,
        0.08388027029057538,
        0.42423291089512366,
    ];
}

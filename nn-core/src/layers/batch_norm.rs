//! Batch normalization over the batch and the spatial positions of each channel.

use crate::init::Init;
use crate::kernels::{self, pairwise};
use crate::{ConstZero, Layer, Params, Real, Role, StateOffsets, StateValue, TensorInfo, Zeroable};
use core::mem::offset_of;
use nalgebra::SMatrix;
use rand_core::Rng;

/// `1e-5.to_bits()`: PyTorch's default `eps`, for the `EPS_BITS` parameter of [`BatchNorm`].
pub const DEFAULT_EPS_BITS: u64 = 1e-5f64.to_bits();

/// `0.1.to_bits()`: PyTorch's default `momentum`, for the `MOMENTUM_BITS` parameter of
/// [`BatchNorm`].
pub const DEFAULT_MOMENTUM_BITS: u64 = 0.1f64.to_bits();

/// Batch normalization, PyTorch's `nn.BatchNorm1d(C)` (on samples `[C]`, `S = 1`, or
/// `[C, L]`, `S = L`) and `nn.BatchNorm2d(C)` (on `[C, H, W]`, `S = H·W`), with
/// `eps = f64::from_bits(EPS_BITS)` and `momentum = f64::from_bits(MOMENTUM_BITS)`
/// ([`DEFAULT_EPS_BITS`] and [`DEFAULT_MOMENTUM_BITS`] are PyTorch's `1e-5` and `0.1`).
///
/// A sample holds `IN = C·S` values, channel `c` at `c·S .. (c + 1)·S`. Each channel is
/// normalised over the `m = B·S` values it has in the batch, then scaled and shifted:
///
/// - training (`forward_train`): `μ = (1/m)·Σ x`, `σ² = (1/m)·Σ (x − μ)²` (biased),
///   `x̂ = (x − μ)/√(σ² + eps)`, `y = γ·x̂ + β`; the running statistics move towards the
///   batch's, with the *unbiased* variance, as PyTorch:
///   `running_mean ← (1 − momentum)·running_mean + momentum·μ`,
///   `running_var ← (1 − momentum)·running_var + momentum·σ²·m/(m − 1)`.
///   Needs `m > 1` (PyTorch raises "Expected more than 1 value per channel when training");
///   here `B·S > 1` is checked at compile time where `forward_train` is used.
/// - inference (`forward`): `y = γ·(x − running_mean)/√(running_var + eps) + β`.
/// - backward (through the batch statistics of the training pass): with `g = ∂L/∂y`,
///   `∂L/∂γ += Σ g·x̂`, `∂L/∂β += Σ g`,
///   `∂L/∂x += (γ/√(σ² + eps))·(g − (1/m)·Σ g − x̂·(1/m)·Σ g·x̂)` (sums over the channel's `m`
///   values).
///
/// Tensors `weight` (γ, `[C]`) and `bias` (β, `[C]`), and the state's `running_mean`,
/// `running_var` (`[C]`) and `num_batches_tracked` (an integer scalar), its
/// [`STATE_TENSORS`](Layer::STATE_TENSORS), named as in PyTorch's `state_dict` and saved with
/// the weights (`momentum=None`, PyTorch's cumulative average, is not supported). [`Layer::init`] sets γ = 1 and β = 0 whatever the scheme, and
/// [`Layer::init_state`] running mean 0 and variance 1, as PyTorch.
///
/// The passes vectorise for every `S` (across channels when `S = 1`), and run in AVX-512
/// registers when the CPU has them with the same results bit for bit. Each sum over a
/// channel's values (`Σ x`, `Σ (x − μ)²`, `Σ g`, `Σ g·x̂`) is made in a fixed order that
/// depends on `B`, `C` and `S` only (never on the CPU or the run): for `S ≥ 64`, position `s`
/// into partial sum `s mod 32`, the samples in order, the 32 partial sums added pairwise; for
/// `S < 64`, the `B` values of each position in sample order, then the channel's `S` sums in 8
/// interleaved partial sums (position `s` into `s mod 8`) added pairwise.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct BatchNorm<
    T: Real,
    const C: usize,
    const S: usize,
    const IN: usize,
    const EPS_BITS: u64,
    const MOMENTUM_BITS: u64,
> {
    /// γ, `[C]`.
    pub weight: SMatrix<T, C, 1>,
    /// β, `[C]`.
    pub bias: SMatrix<T, C, 1>,
}

/// The running statistics of a [`BatchNorm`] of `C` channels: PyTorch's buffers
/// `running_mean`, `running_var` and `num_batches_tracked`, saved with the weights.
///
/// **All zero means PyTorch's initial state.** `Net::ZERO` and `Net::new_boxed()` leave every
/// byte zero, and a running variance of 0 would make inference divide by `√eps`. So a state
/// that is entirely zero (mean, variance and count; see [`is_initial`](Self::is_initial))
/// stands for the state of a new PyTorch module, running mean 0 and variance 1, and is used,
/// updated and saved as such. A network that was never initialised, or loaded from a file
/// without running statistics (`strict: false`), so computes what the same PyTorch module
/// computes, never garbage. [`Layer::init_state`] writes mean 0 and variance 1 explicitly.
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct BatchNormState<T: Real, const C: usize> {
    /// Running mean of each channel.
    pub running_mean: SMatrix<T, C, 1>,
    /// Running (unbiased) variance of each channel.
    pub running_var: SMatrix<T, C, 1>,
    /// Training passes that updated the statistics (PyTorch's `num_batches_tracked`; used
    /// by PyTorch only with `momentum=None`, kept here so that files round-trip).
    pub num_batches_tracked: u64,
}

impl<T: Real, const C: usize> BatchNormState<T, C> {
    /// Whether every byte is zero: the state of `ZERO`/`new_boxed()`, which stands for
    /// PyTorch's initial state (mean 0, variance 1, no batch tracked).
    pub fn is_initial(&self) -> bool {
        self.num_batches_tracked == 0
            && self.running_mean.iter().all(|&m| m == T::ZERO)
            && self.running_var.iter().all(|&v| v == T::ZERO)
    }

    /// The running variance of channel `c` as used and saved: 1 for an
    /// [initial](Self::is_initial) state, the stored value otherwise.
    pub fn variance(&self, c: usize) -> T {
        if self.is_initial() {
            T::ONE
        } else {
            self.running_var[c]
        }
    }
}

/// What a [`BatchNorm`]'s training pass keeps for its backward pass: the batch mean μ and
/// `1/√(σ² + eps)` of each channel (whatever the batch size).
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct BatchNormCache<T: Real, const C: usize> {
    /// μ of each channel.
    pub mean: SMatrix<T, C, 1>,
    /// `1/√(σ² + eps)` of each channel.
    pub inv_std: SMatrix<T, C, 1>,
}

impl<
    T: Real,
    const C: usize,
    const S: usize,
    const IN: usize,
    const EPS_BITS: u64,
    const MOMENTUM_BITS: u64,
> BatchNorm<T, C, S, IN, EPS_BITS, MOMENTUM_BITS>
{
    /// `eps`, added to the variance before the square root.
    pub const EPS: f64 = f64::from_bits(EPS_BITS);

    /// `momentum` of the running statistics.
    pub const MOMENTUM: f64 = f64::from_bits(MOMENTUM_BITS);

    /// Compile-time checks of the sizes and constants.
    const fn check() {
        assert!(C > 0 && S > 0, "BatchNorm: C and S must be at least 1");
        assert!(IN == C * S, "BatchNorm: IN must be C·S");
        assert!(Self::EPS >= 0.0, "BatchNorm: eps must be ≥ 0");
        assert!(
            Self::MOMENTUM >= 0.0 && Self::MOMENTUM <= 1.0,
            "BatchNorm: momentum must be in [0, 1]"
        );
    }
}

/// Channels of at least this many positions are swept one at a time, sample by sample along
/// their contiguous values, with [`WIDE`] partial sums in registers. Shorter ones are swept a
/// group of `⌊BLOCK/S⌋` at a time (one block of positions of a sample, see [`Group`]) across
/// the batch, with per-position accumulators and constants in arrays of `BLOCK` values on the
/// stack (at most seven of them with the channel sums: 3.5 KiB in `f64`).
const BLOCK: usize = 64;

/// Partial sums along a long channel (`S ≥ BLOCK`): `f32` fills two AVX-512 registers, so that
/// two independent chains of additions hide their latency.
const WIDE: usize = 32;

/// Adds `f(v)` for each of `values` (in order) to lane `i mod WIDE`, `i` its index.
#[inline(always)]
fn accumulate<T: Real>(lanes: &mut [T; WIDE], values: &[T], f: impl Fn(T) -> T) {
    let mut chunks = values.chunks_exact(WIDE);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f(v);
    }
}

/// [`accumulate`] of two sums of `f(x, y)` over `x` and `y` (as long as `x`) at once.
#[inline(always)]
fn accumulate_pairs<T: Real>(
    lanes: (&mut [T; WIDE], &mut [T; WIDE]),
    x: &[T],
    y: &[T],
    f: impl Fn(T, T) -> (T, T),
) {
    let (mut xs, mut ys) = (x.chunks_exact(WIDE), y.chunks_exact(WIDE));
    for (x, y) in (&mut xs).zip(&mut ys) {
        let lanes = lanes.0.iter_mut().zip(lanes.1.iter_mut());
        for ((a, b), (&x, &y)) in lanes.zip(x.iter().zip(y)) {
            let (u, v) = f(x, y);
            *a += u;
            *b += v;
        }
    }
    let lanes = lanes.0.iter_mut().zip(lanes.1.iter_mut());
    for ((a, b), (&x, &y)) in lanes.zip(xs.remainder().iter().zip(ys.remainder())) {
        let (u, v) = f(x, y);
        *a += u;
        *b += v;
    }
}

/// A group of channels of fewer than [`BLOCK`] positions that the passes sweep together:
/// `⌊BLOCK/S⌋` consecutive channels (fewer at the end), positions
/// `first·S .. (first + count)·S` of each sample, whose channel segments are the
/// `chunks(S)` of the block.
#[derive(Clone, Copy)]
struct Group {
    /// The group's first channel.
    first: usize,
    /// Channels in the group.
    count: usize,
}

impl Group {
    /// The groups of `C` channels of `S < BLOCK` positions.
    #[inline(always)]
    fn all<const C: usize, const S: usize>() -> impl Iterator<Item = Group> {
        let per_group = BLOCK / S;
        (0..C).step_by(per_group).map(move |first| Group {
            first,
            count: per_group.min(C - first),
        })
    }

    /// The group's positions in a sample: `(start, len)`.
    #[inline(always)]
    fn block<const S: usize>(self) -> (usize, usize) {
        (self.first * S, self.count * S)
    }
}

/// Sets each position of a block (`values.len()` of them, whole channels) to
/// `per_channel(k)`, `k` the block's `k`-th channel.
#[inline(always)]
fn spread<T: Real, const S: usize>(values: &mut [T], per_channel: impl Fn(usize) -> T) {
    for (k, segment) in values.chunks_mut(S).enumerate() {
        segment.fill(per_channel(k));
    }
}

/// Sets `sums[k]` to the sum of the block's channel `k` in `acc` (see [`kernels::sum`]).
#[inline(always)]
fn channel_sums<T: Real, const S: usize>(acc: &[T], sums: &mut [T]) {
    for (sum, segment) in sums.iter_mut().zip(acc.chunks(S)) {
        *sum = kernels::sum(segment);
    }
}

/// The rows `start..start + len` of the `B` samples of a batch stored as a flat slice.
#[inline(always)]
fn rows<T, const IN: usize>(values: &[T], start: usize, len: usize) -> impl Iterator<Item = &[T]> {
    values
        .chunks_exact(IN)
        .map(move |sample| &sample[start..start + len])
}

/// Mutable [`rows`].
#[inline(always)]
fn rows_mut<T, const IN: usize>(
    values: &mut [T],
    start: usize,
    len: usize,
) -> impl Iterator<Item = &mut [T]> {
    values
        .chunks_exact_mut(IN)
        .map(move |sample| &mut sample[start..start + len])
}

/// The passes, on the batch as flat slices (sample `j` at `j·IN .. (j + 1)·IN`), so that the
/// inner loops vectorise for every `S`:
/// - a channel of `S ≥ BLOCK` positions is swept sample by sample along its `S` contiguous
///   values (a prefetcher's stream), its sums in [`WIDE`] registers;
/// - shorter channels are swept a [`Group`] at a time: for each sample, along the group's
///   block of positions (across channels when `S = 1`), with per-position accumulators and
///   per-position constants (a channel's mean, scale, …, spread over its positions).
///
/// Each is compiled three times on x86-64, for the baseline, AVX-512 and AVX2 (the `_avx512` and `_avx2` copies,
/// taken when the CPU has AVX-512F): the same operations in the same order (Rust fuses no
/// multiply-add), so the same results bit for bit.
///
/// **Summation order.** A channel's sums (`Σ x`, `Σ (x − μ)²`, `Σ g`, `Σ g·x̂`) depend on `B`,
/// `C` and `S` only:
/// - `S ≥ BLOCK`: the value at position `s` goes to partial sum `s mod 32`, the samples in
///   order (each partial sum from zero), and the 32 partial sums are added [`pairwise`](kernels::pairwise);
/// - `S < BLOCK`: for each position, its `B` values in sample order (from zero); then the
///   channel's `S` per-position sums by [`kernels::sum`] (8 lanes, pairwise).
impl<
    T: Real,
    const C: usize,
    const S: usize,
    const IN: usize,
    const EPS_BITS: u64,
    const MOMENTUM_BITS: u64,
> BatchNorm<T, C, S, IN, EPS_BITS, MOMENTUM_BITS>
{
    /// Whether channels are long enough to be swept one at a time along their values.
    const LONG: bool = S >= BLOCK;

    /// Inference: `y = (x − running_mean)·γ/√(running_var + eps) + β`.
    #[inline(always)]
    fn infer<const B: usize>(&self, state: &BatchNormState<T, C>, x: &[T], y: &mut [T]) {
        let eps = T::of(Self::EPS);
        let initial = state.is_initial();
        let scale = |c: usize| {
            let variance = if initial {
                T::ONE
            } else {
                state.running_var[c]
            };
            self.weight[c] / (variance + eps).sqrt()
        };
        if Self::LONG {
            for c in 0..C {
                let (mean, scale, bias) = (state.running_mean[c], scale(c), self.bias[c]);
                let x_rows = rows::<T, IN>(x, c * S, S);
                for (x, y) in x_rows.zip(rows_mut::<T, IN>(y, c * S, S)) {
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = (x - mean) * scale + bias;
                    }
                }
            }
            return;
        }
        let (mut means, mut scales, mut biases) =
            ([T::ZERO; BLOCK], [T::ZERO; BLOCK], [T::ZERO; BLOCK]);
        for group in Group::all::<C, S>() {
            let (c, (start, len)) = (group.first, group.block::<S>());
            let (means, scales, biases) =
                (&mut means[..len], &mut scales[..len], &mut biases[..len]);
            spread::<T, S>(means, |k| state.running_mean[c + k]);
            spread::<T, S>(scales, |k| scale(c + k));
            spread::<T, S>(biases, |k| self.bias[c + k]);
            let x_rows = rows::<T, IN>(x, start, len);
            for (x, y) in x_rows.zip(rows_mut::<T, IN>(y, start, len)) {
                let constants = means.iter().zip(&*scales).zip(&*biases);
                for ((y, &x), ((&mean, &scale), &bias)) in y.iter_mut().zip(x).zip(constants) {
                    *y = (x - mean) * scale + bias;
                }
            }
        }
    }

    /// Records channel `c`'s batch statistics from its sums `Σ x` and `Σ (x − μ)²`: μ and
    /// `1/√(σ² + eps)` in `cache`, the running statistics moved towards μ and the unbiased
    /// variance. Returns `(μ, 1/√(σ² + eps))`.
    #[inline(always)]
    fn record<const B: usize>(
        state: &mut BatchNormState<T, C>,
        cache: &mut BatchNormCache<T, C>,
        c: usize,
        sum: T,
        sum_squares: T,
    ) -> (T, T) {
        let m = (B * S) as f64;
        let (eps, momentum) = (T::of(Self::EPS), T::of(Self::MOMENTUM));
        let mean = sum / T::of(m);
        let var = sum_squares / T::of(m);
        let inv_std = T::ONE / (var + eps).sqrt();
        (cache.mean[c], cache.inv_std[c]) = (mean, inv_std);
        let keep = T::ONE - momentum;
        let unbiased = var * T::of(m / (m - 1.0));
        state.running_mean[c] = keep * state.running_mean[c] + momentum * mean;
        state.running_var[c] = keep * state.running_var[c] + momentum * unbiased;
        (mean, inv_std)
    }

    /// Training: the batch statistics into `cache`, `y`, and the running statistics.
    #[inline(always)]
    fn train<const B: usize>(
        &self,
        state: &mut BatchNormState<T, C>,
        x: &[T],
        y: &mut [T],
        cache: &mut BatchNormCache<T, C>,
    ) {
        if state.is_initial() {
            // The all-zero state stands for PyTorch's initial one: make it explicit.
            state.running_var.fill(T::ONE);
        }
        state.num_batches_tracked = state.num_batches_tracked.saturating_add(1);
        let m = T::of((B * S) as f64);
        if Self::LONG {
            for c in 0..C {
                // μ from Σ x, then σ² from Σ (x − μ)² (two passes: no cancellation).
                let mut lanes = [T::ZERO; WIDE];
                for x in rows::<T, IN>(x, c * S, S) {
                    accumulate(&mut lanes, x, |x| x);
                }
                let sum = pairwise(lanes);
                let mean = sum / m;
                let mut lanes = [T::ZERO; WIDE];
                for x in rows::<T, IN>(x, c * S, S) {
                    accumulate(&mut lanes, x, |x| (x - mean) * (x - mean));
                }
                let (mean, inv_std) = Self::record::<B>(state, cache, c, sum, pairwise(lanes));
                // y = (x − μ)·γ/√(σ² + eps) + β.
                let (scale, bias) = (self.weight[c] * inv_std, self.bias[c]);
                let x_rows = rows::<T, IN>(x, c * S, S);
                for (x, y) in x_rows.zip(rows_mut::<T, IN>(y, c * S, S)) {
                    for (y, &x) in y.iter_mut().zip(x) {
                        *y = (x - mean) * scale + bias;
                    }
                }
            }
            return;
        }
        let mut acc = [T::ZERO; BLOCK];
        let (mut means, mut scales, mut biases) =
            ([T::ZERO; BLOCK], [T::ZERO; BLOCK], [T::ZERO; BLOCK]);
        let (mut sums, mut sums_squares) = ([T::ZERO; BLOCK], [T::ZERO; BLOCK]);
        for group in Group::all::<C, S>() {
            let (c, (start, len)) = (group.first, group.block::<S>());
            let (sums, sums_squares) = (&mut sums[..group.count], &mut sums_squares[..group.count]);
            let (acc, means) = (&mut acc[..len], &mut means[..len]);
            // μ: Σ x.
            acc.fill(T::ZERO);
            for x in rows::<T, IN>(x, start, len) {
                for (acc, &x) in acc.iter_mut().zip(x) {
                    *acc += x;
                }
            }
            channel_sums::<T, S>(acc, sums);
            spread::<T, S>(means, |k| sums[k] / m);
            // σ²: Σ (x − μ)², from μ (two passes: no cancellation).
            acc.fill(T::ZERO);
            for x in rows::<T, IN>(x, start, len) {
                for ((acc, &x), &mean) in acc.iter_mut().zip(x).zip(&*means) {
                    *acc += (x - mean) * (x - mean);
                }
            }
            channel_sums::<T, S>(acc, sums_squares);
            for k in 0..group.count {
                Self::record::<B>(state, cache, c + k, sums[k], sums_squares[k]);
            }
            // y = (x − μ)·γ/√(σ² + eps) + β.
            let (scales, biases) = (&mut scales[..len], &mut biases[..len]);
            spread::<T, S>(scales, |k| self.weight[c + k] * cache.inv_std[c + k]);
            spread::<T, S>(biases, |k| self.bias[c + k]);
            let x_rows = rows::<T, IN>(x, start, len);
            for (x, y) in x_rows.zip(rows_mut::<T, IN>(y, start, len)) {
                let constants = means.iter().zip(&*scales).zip(&*biases);
                for ((y, &x), ((&mean, &scale), &bias)) in y.iter_mut().zip(x).zip(constants) {
                    *y = (x - mean) * scale + bias;
                }
            }
        }
    }

    /// The gradients: `Σ g` and `Σ g·x̂` of a channel (or group) in one pass over `x` and
    /// `g`, then `∂L/∂x` in a second (x̂ recomputed from `x`, μ and `1/√(σ² + eps)`):
    /// `∂L/∂x += (γ/√(σ² + eps))·(g − (1/m)·Σ g − x̂·(1/m)·Σ g·x̂)`.
    #[inline(always)]
    fn gradients<const B: usize>(
        &self,
        x: &[T],
        cache: &BatchNormCache<T, C>,
        dy: &[T],
        mut dx: Option<&mut [T]>,
        grads: &mut Self,
    ) {
        let inv_m = T::of(1.0 / (B * S) as f64);
        if Self::LONG {
            for c in 0..C {
                let (mean, inv_std) = (cache.mean[c], cache.inv_std[c]);
                let (mut lanes_dy, mut lanes_dy_xhat) = ([T::ZERO; WIDE], [T::ZERO; WIDE]);
                let x_rows = rows::<T, IN>(x, c * S, S);
                for (x, dy) in x_rows.zip(rows::<T, IN>(dy, c * S, S)) {
                    let lanes = (&mut lanes_dy, &mut lanes_dy_xhat);
                    accumulate_pairs(lanes, x, dy, |x, dy| (dy, dy * (x - mean) * inv_std));
                }
                let (sum_dy, sum_dy_xhat) = (pairwise(lanes_dy), pairwise(lanes_dy_xhat));
                grads.weight[c] += sum_dy_xhat;
                grads.bias[c] += sum_dy;
                let Some(dx) = dx.as_deref_mut() else {
                    continue;
                };
                let (mean_dy, mean_dy_xhat) = (sum_dy * inv_m, sum_dy_xhat * inv_m);
                let scale = self.weight[c] * inv_std;
                let x_rows = rows::<T, IN>(x, c * S, S).zip(rows::<T, IN>(dy, c * S, S));
                for ((x, dy), dx) in x_rows.zip(rows_mut::<T, IN>(dx, c * S, S)) {
                    for (dx, (&x, &dy)) in dx.iter_mut().zip(x.iter().zip(dy)) {
                        let x_hat = (x - mean) * inv_std;
                        *dx += scale * (dy - mean_dy - x_hat * mean_dy_xhat);
                    }
                }
            }
            return;
        }
        let (mut acc_dy, mut acc_dy_xhat) = ([T::ZERO; BLOCK], [T::ZERO; BLOCK]);
        let (mut means, mut inv_stds, mut scales) =
            ([T::ZERO; BLOCK], [T::ZERO; BLOCK], [T::ZERO; BLOCK]);
        let (mut sums_dy, mut sums_dy_xhat) = ([T::ZERO; BLOCK], [T::ZERO; BLOCK]);
        for group in Group::all::<C, S>() {
            let (c, (start, len)) = (group.first, group.block::<S>());
            let (sum_dy, sum_dy_xhat) = (
                &mut sums_dy[..group.count],
                &mut sums_dy_xhat[..group.count],
            );
            let (means, inv_stds) = (&mut means[..len], &mut inv_stds[..len]);
            spread::<T, S>(means, |k| cache.mean[c + k]);
            spread::<T, S>(inv_stds, |k| cache.inv_std[c + k]);
            // Σ g and Σ g·x̂ over each channel's B·S values.
            let (acc_dy, acc_dy_xhat) = (&mut acc_dy[..len], &mut acc_dy_xhat[..len]);
            acc_dy.fill(T::ZERO);
            acc_dy_xhat.fill(T::ZERO);
            for (x, dy) in rows::<T, IN>(x, start, len).zip(rows::<T, IN>(dy, start, len)) {
                let accs = acc_dy.iter_mut().zip(acc_dy_xhat.iter_mut());
                let constants = means.iter().zip(&*inv_stds);
                for (((acc_dy, acc_dy_xhat), (&x, &dy)), (&mean, &inv_std)) in
                    accs.zip(x.iter().zip(dy)).zip(constants)
                {
                    *acc_dy += dy;
                    *acc_dy_xhat += dy * (x - mean) * inv_std;
                }
            }
            channel_sums::<T, S>(acc_dy, sum_dy);
            channel_sums::<T, S>(acc_dy_xhat, sum_dy_xhat);
            for k in 0..group.count {
                grads.weight[c + k] += sum_dy_xhat[k];
                grads.bias[c + k] += sum_dy[k];
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            // ∂L/∂x, the block's constants in the accumulators' arrays.
            let scales = &mut scales[..len];
            spread::<T, S>(scales, |k| self.weight[c + k] * cache.inv_std[c + k]);
            let (mean_dy, mean_dy_xhat) = (acc_dy, acc_dy_xhat);
            spread::<T, S>(mean_dy, |k| sum_dy[k] * inv_m);
            spread::<T, S>(mean_dy_xhat, |k| sum_dy_xhat[k] * inv_m);
            let x_rows = rows::<T, IN>(x, start, len).zip(rows::<T, IN>(dy, start, len));
            for ((x, dy), dx) in x_rows.zip(rows_mut::<T, IN>(dx, start, len)) {
                let constants = (means.iter().zip(&*inv_stds))
                    .zip(scales.iter().zip(&*mean_dy).zip(&*mean_dy_xhat));
                for ((dx, (&x, &dy)), ((&mean, &inv_std), ((&scale, &mean_dy), &mean_dy_xhat))) in
                    dx.iter_mut().zip(x.iter().zip(dy)).zip(constants)
                {
                    let x_hat = (x - mean) * inv_std;
                    *dx += scale * (dy - mean_dy - x_hat * mean_dy_xhat);
                }
            }
        }
    }

    /// [`infer`](Self::infer) compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn infer_avx512<const B: usize>(&self, state: &BatchNormState<T, C>, x: &[T], y: &mut [T]) {
        self.infer::<B>(state, x, y);
    }

    /// [`train`](Self::train) compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn train_avx512<const B: usize>(
        &self,
        state: &mut BatchNormState<T, C>,
        x: &[T],
        y: &mut [T],
        cache: &mut BatchNormCache<T, C>,
    ) {
        self.train::<B>(state, x, y, cache);
    }

    /// [`gradients`](Self::gradients) compiled for AVX-512.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn gradients_avx512<const B: usize>(
        &self,
        x: &[T],
        cache: &BatchNormCache<T, C>,
        dy: &[T],
        dx: Option<&mut [T]>,
        grads: &mut Self,
    ) {
        self.gradients::<B>(x, cache, dy, dx, grads);
    }

    /// [`infer`](Self::infer) compiled for AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn infer_avx2<const B: usize>(&self, state: &BatchNormState<T, C>, x: &[T], y: &mut [T]) {
        self.infer::<B>(state, x, y);
    }

    /// [`train`](Self::train) compiled for AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn train_avx2<const B: usize>(
        &self,
        state: &mut BatchNormState<T, C>,
        x: &[T],
        y: &mut [T],
        cache: &mut BatchNormCache<T, C>,
    ) {
        self.train::<B>(state, x, y, cache);
    }

    /// [`gradients`](Self::gradients) compiled for AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn gradients_avx2<const B: usize>(
        &self,
        x: &[T],
        cache: &BatchNormCache<T, C>,
        dy: &[T],
        dx: Option<&mut [T]>,
        grads: &mut Self,
    ) {
        self.gradients::<B>(x, cache, dy, dx, grads);
    }
}

impl<
    T: Real,
    const C: usize,
    const S: usize,
    const IN: usize,
    const EPS_BITS: u64,
    const MOMENTUM_BITS: u64,
> Layer<T, IN, IN> for BatchNorm<T, C, S, IN, EPS_BITS, MOMENTUM_BITS>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight",
            shape: &[C],
            role: Role::Weight,
        },
        TensorInfo {
            name: "bias",
            shape: &[C],
            role: Role::Bias,
        },
    ];

    /// PyTorch's buffers: `running_mean` and `running_var` (`[C]`) and `num_batches_tracked`
    /// (an `int64` scalar), in the order of [`BatchNormState`]'s fields. Not parameters:
    /// optimizers never see them.
    const STATE_TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "running_mean",
            shape: &[C],
            role: Role::State,
        },
        TensorInfo {
            name: "running_var",
            shape: &[C],
            role: Role::State,
        },
        TensorInfo {
            name: "num_batches_tracked",
            shape: &[],
            role: Role::Count,
        },
    ];

    // SAFETY: `BatchNormState` (`repr(C)`) holds two matrices of `T` (`f32` or `f64`) and a
    // `u64`: every bit pattern is a valid value.
    const STATE_OFFSETS: StateOffsets<Self::State> = unsafe {
        StateOffsets::new(&[
            offset_of!(BatchNormState<T, C>, running_mean),
            offset_of!(BatchNormState<T, C>, running_var),
            offset_of!(BatchNormState<T, C>, num_batches_tracked),
        ])
    };

    /// Training normalises with the statistics of the whole batch.
    const BATCH_STATISTICS: bool = true;

    type Cache<const B: usize> = BatchNormCache<T, C>;
    type State = BatchNormState<T, C>;

    /// The effective values: an [initial](BatchNormState::is_initial) state reads as mean 0,
    /// variance 1.
    fn state_value(state: &Self::State, tensor: usize, element: usize) -> StateValue<T> {
        match tensor {
            0 => StateValue::Real(state.running_mean[element]),
            1 => StateValue::Real(state.variance(element)),
            _ => StateValue::Count(state.num_batches_tracked),
        }
    }

    fn set_state_value(
        state: &mut Self::State,
        tensor: usize,
        element: usize,
        value: StateValue<T>,
    ) {
        match (tensor, value) {
            (0, StateValue::Real(v)) => state.running_mean[element] = v,
            (1, StateValue::Real(v)) => state.running_var[element] = v,
            (_, StateValue::Count(n)) => state.num_batches_tracked = n,
            _ => {}
        }
    }

    fn forward<const B: usize>(
        &self,
        state: &Self::State,
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        let (x, y) = (x.as_slice(), y.as_mut_slice());
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.infer_avx512::<B>(state, x, y) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.infer_avx2::<B>(state, x, y) };
        }
        self.infer::<B>(state, x, y);
    }

    fn forward_train<const B: usize>(
        &self,
        state: &mut Self::State,
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        cache: &mut Self::Cache<B>,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        const {
            assert!(
                B * S > 1,
                "BatchNorm: training needs more than one value per channel (B·S > 1), as PyTorch"
            )
        };
        let (x, y) = (x.as_slice(), y.as_mut_slice());
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.train_avx512::<B>(state, x, y, cache) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.train_avx2::<B>(state, x, y, cache) };
        }
        self.train::<B>(state, x, y, cache);
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &Self::Cache<B>,
        dy: &SMatrix<T, IN, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        let (x, dy, dx) = (x.as_slice(), dy.as_slice(), dx.map(|dx| dx.as_mut_slice()));
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx512() {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { self.gradients_avx512::<B>(x, cache, dy, dx, grads) };
        }
        #[cfg(target_arch = "x86_64")]
        if kernels::has_avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { self.gradients_avx2::<B>(x, cache, dy, dx, grads) };
        }
        self.gradients::<B>(x, cache, dy, dx, grads);
    }

    /// Running mean 0, variance 1 and no batch tracked, as PyTorch.
    fn init_state<R: Rng + ?Sized>(state: &mut Self::State, _rng: &mut R) {
        state.running_mean.fill(T::ZERO);
        state.running_var.fill(T::ONE);
        state.num_batches_tracked = 0;
    }

    /// γ = 1 and β = 0, as PyTorch, whatever the scheme.
    fn init<R: Rng + ?Sized>(&mut self, _scheme: Init, _rng: &mut R) {
        self.weight.fill(T::ONE);
        self.bias.fill(T::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{Rng, check_layer, max_diff, random_matrix};

    const HALF: u64 = 0.5f64.to_bits();
    const FOUR: u64 = 4f64.to_bits();
    const QUARTER: u64 = 0.25f64.to_bits();

    /// 3 channels of 4 positions (as `[3, 2, 2]`), PyTorch's eps and momentum.
    type Bn = BatchNorm<f64, 3, 4, 12, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS>;

    fn layer() -> Bn {
        Bn {
            weight: SMatrix::from_column_slice(&[1.5, -0.5, 2.0]),
            bias: SMatrix::from_column_slice(&[0.25, 1.0, -1.0]),
        }
    }

    /// A batch of 5 whose channels have different means and spreads.
    fn batch() -> SMatrix<f64, 12, 5> {
        let noise = random_matrix::<12, 5>(1, 1.0);
        SMatrix::from_fn(|i, j| {
            let c = i / 4;
            [3.0, -1.0, 0.0][c] + [0.5, 2.0, 4.0][c] * noise[(i, j)]
        })
    }

    /// The values of channel `c` over the batch and the positions, in any order.
    fn channel_values<const B: usize>(x: &SMatrix<f64, 12, B>, c: usize) -> [f64; 20] {
        let mut values = [0.0; 20];
        let mut n = 0;
        for j in 0..B {
            for s in 0..4 {
                values[n] = x[(c * 4 + s, j)];
                n += 1;
            }
        }
        assert_eq!(n, 20);
        values
    }

    fn mean_and_biased_var(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        (
            mean,
            values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n,
        )
    }

    #[test]
    fn hand_worked_training_step_and_backward() {
        // One channel, S = 2, B = 2: x = 1, 3 | 5, 7. μ = 4, σ² = (9 + 1 + 1 + 9)/4 = 5; with
        // eps = 4, √(σ² + eps) = 3, x̂ = −1, −⅓, ⅓, 1. Unbiased variance 20/3; momentum ½ from
        // (0, 1): running mean 2, running var ½ + 10/3 = 23/6.
        let layer = BatchNorm::<f64, 1, 2, 2, FOUR, HALF> {
            weight: SMatrix::from_column_slice(&[2.0]),
            bias: SMatrix::from_column_slice(&[0.5]),
        };
        let mut state = BatchNormState::ZERO;
        BatchNorm::<f64, 1, 2, 2, FOUR, HALF>::init_state(&mut state, &mut Rng(0));
        let x = SMatrix::<f64, 2, 2>::from_column_slice(&[1.0, 3.0, 5.0, 7.0]);
        let (mut y, mut cache) = (SMatrix::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        let expected = [-1.5, 0.5 - 2.0 / 3.0, 0.5 + 2.0 / 3.0, 2.5]; // 2·x̂ + ½
        assert!(max_diff(y.as_slice(), &expected) < 1e-15, "{y}");
        assert_eq!((cache.mean[0], cache.inv_std[0]), (4.0, 1.0 / 3.0));
        assert_eq!(state.running_mean[0], 2.0);
        assert!((state.running_var[0] - 23.0 / 6.0).abs() < 1e-15);

        // ∂L/∂y = (1, 0, 0, 0): Σg = 1, Σg·x̂ = −1, so with γ/√(σ² + eps) = ⅔,
        // ∂L/∂x = ⅔·(g − ¼ + x̂/4) = ⅔·(½, −⅓, −⅙, 0) = (⅓, −2/9, −1/9, 0);
        // ∂L/∂γ = Σg·x̂ = −1, ∂L/∂β = Σg = 1.
        let dy = SMatrix::<f64, 2, 2>::from_column_slice(&[1.0, 0.0, 0.0, 0.0]);
        let (mut dx, mut grads) = (SMatrix::ZERO, BatchNorm::ZERO);
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut []);
        let expected = [1.0 / 3.0, -2.0 / 9.0, -1.0 / 9.0, 0.0];
        assert!(max_diff(dx.as_slice(), &expected) < 1e-15, "{dx}");
        assert_eq!((grads.weight[0], grads.bias[0]), (-1.0, 1.0));
    }

    #[test]
    fn hand_worked_inference_uses_the_running_statistics() {
        // eps = ¼: (5 − 1)/√(3.75 + ¼) = 2, (0 + 2)/√(0.75 + ¼) = 2; then γ = (2, −1),
        // β = ½: 4.5, −1.5.
        let layer = BatchNorm::<f64, 2, 1, 2, QUARTER, DEFAULT_MOMENTUM_BITS> {
            weight: SMatrix::from_column_slice(&[2.0, -1.0]),
            bias: SMatrix::from_column_slice(&[0.5, 0.5]),
        };
        let state = BatchNormState {
            running_mean: SMatrix::from_column_slice(&[1.0, -2.0]),
            running_var: SMatrix::from_column_slice(&[3.75, 0.75]),
            num_batches_tracked: 0,
        };
        let x = SMatrix::<f64, 2, 1>::from_column_slice(&[5.0, 0.0]);
        let mut y = SMatrix::ZERO;
        layer.forward(&state, &x, &mut y, &mut []);
        assert_eq!(y.as_slice(), &[4.5, -1.5]);
    }

    #[test]
    fn training_output_is_normalised_per_channel() {
        let layer = layer();
        let x = batch();
        let mut state = BatchNormState::ZERO;
        Bn::init_state(&mut state, &mut Rng(0));
        let (mut y, mut cache) = (SMatrix::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        for c in 0..3 {
            let (_, var) = mean_and_biased_var(&channel_values(&x, c));
            // Before the affine map, x̂ = (y − β)/γ has mean 0 and variance σ²/(σ² + eps).
            let mut x_hat = channel_values(&y, c);
            for v in &mut x_hat {
                *v = (*v - layer.bias[c]) / layer.weight[c];
            }
            let (mean_hat, var_hat) = mean_and_biased_var(&x_hat);
            assert!(mean_hat.abs() < 1e-14, "{mean_hat}");
            assert!((var_hat - var / (var + 1e-5)).abs() < 1e-14, "{var_hat}");
            assert!((var_hat - 1.0).abs() < 1e-3); // eps = 1e-5 is small next to σ²
        }
    }

    #[test]
    fn running_statistics_follow_pytorch() {
        let layer = layer();
        let x = batch();
        let start = BatchNormState {
            running_mean: SMatrix::from_column_slice(&[0.5, -0.5, 1.0]),
            running_var: SMatrix::from_column_slice(&[2.0, 0.5, 1.0]),
            num_batches_tracked: 0,
        };
        let mut state = start;
        let (mut y, mut cache) = (SMatrix::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        for c in 0..3 {
            let values = channel_values(&x, c);
            let (mean, var) = mean_and_biased_var(&values);
            let unbiased = var * 20.0 / 19.0;
            let expected_mean = 0.9 * start.running_mean[c] + 0.1 * mean;
            let expected_var = 0.9 * start.running_var[c] + 0.1 * unbiased;
            assert!((state.running_mean[c] - expected_mean).abs() < 1e-14);
            assert!((state.running_var[c] - expected_var).abs() < 1e-14);
            assert!((cache.mean[c] - mean).abs() < 1e-14);
            assert!((cache.inv_std[c] - 1.0 / (var + 1e-5).sqrt()).abs() < 1e-12);
        }
        // A second step moves them again, from where the first left them.
        let first = state;
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        for c in 0..3 {
            let (mean, _) = mean_and_biased_var(&channel_values(&x, c));
            let expected = 0.9 * first.running_mean[c] + 0.1 * mean;
            assert!((state.running_mean[c] - expected).abs() < 1e-14);
        }
    }

    #[test]
    fn inference_uses_running_statistics_and_is_per_sample() {
        let layer = layer();
        let state = BatchNormState {
            running_mean: SMatrix::from_column_slice(&[0.5, -0.5, 1.0]),
            running_var: SMatrix::from_column_slice(&[2.0, 0.5, 1.0]),
            num_batches_tracked: 0,
        };
        let x = batch();
        let mut y = SMatrix::<f64, 12, 5>::ZERO;
        layer.forward(&state, &x, &mut y, &mut []);
        for j in 0..5 {
            let xj: SMatrix<f64, 12, 1> = x.column(j).into();
            let mut yj = SMatrix::<f64, 12, 1>::ZERO;
            layer.forward(&state, &xj, &mut yj, &mut []);
            assert_eq!(yj, y.column(j));
            for i in 0..12 {
                let c = i / 4;
                let expected = layer.weight[c] * (x[(i, j)] - state.running_mean[c])
                    / (state.running_var[c] + 1e-5).sqrt()
                    + layer.bias[c];
                assert!((y[(i, j)] - expected).abs() < 1e-14);
            }
        }
        // Training on the same batch gives something else (the batch statistics).
        let (mut y_train, mut cache) = (SMatrix::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut state.clone(), &x, &mut y_train, &mut cache, &mut []);
        assert!((y_train - y).amax() > 0.1);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut layer = layer();
        let state = BatchNormState {
            running_mean: SMatrix::from_column_slice(&[0.5, -0.5, 1.0]),
            running_var: SMatrix::from_column_slice(&[2.0, 0.5, 1.0]),
            num_batches_tracked: 0,
        };
        let report = check_layer(&mut layer, &state, &batch());
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        // BatchNorm1d on features (S = 1), a batch of 4.
        let mut layer = BatchNorm::<f64, 5, 1, 5, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS> {
            weight: random_matrix(2, 1.0),
            bias: random_matrix(3, 1.0),
        };
        let report = check_layer(
            &mut layer,
            &BatchNormState::ZERO,
            &random_matrix::<5, 4>(4, 2.0),
        );
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        // One sample with S = 3 positions: the statistics are over the positions alone.
        let mut layer = BatchNorm::<f64, 2, 3, 6, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS> {
            weight: random_matrix(5, 1.0),
            bias: random_matrix(6, 1.0),
        };
        let report = check_layer(
            &mut layer,
            &BatchNormState::ZERO,
            &random_matrix::<6, 1>(7, 1.0),
        );
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn init_and_tensors_follow_pytorch() {
        let mut layer = layer();
        layer.init(Init::HeNormal, &mut Rng(1));
        assert_eq!(layer.weight.as_slice(), &[1.0; 3]);
        assert_eq!(layer.bias.as_slice(), &[0.0; 3]);
        let mut state = BatchNormState {
            running_mean: SMatrix::repeat(3.0),
            running_var: SMatrix::repeat(3.0),
            num_batches_tracked: 0,
        };
        Bn::init_state(&mut state, &mut Rng(1));
        assert_eq!(state.running_mean.as_slice(), &[0.0; 3]);
        assert_eq!(state.running_var.as_slice(), &[1.0; 3]);

        let tensors = <Bn as Layer<f64, 12, 12>>::TENSORS;
        assert_eq!(tensors.len(), 2);
        assert_eq!(
            (tensors[0].name, tensors[0].shape, tensors[0].role),
            ("weight", &[3][..], Role::Weight)
        );
        assert_eq!(
            (tensors[1].name, tensors[1].shape, tensors[1].role),
            ("bias", &[3][..], Role::Bias)
        );
        assert_eq!(<Bn as Params<f64>>::LEN, 6);
        let state_tensors = <Bn as Layer<f64, 12, 12>>::STATE_TENSORS;
        let names: [(&str, &[usize], Role); 3] = core::array::from_fn(|i| {
            (
                state_tensors[i].name,
                state_tensors[i].shape,
                state_tensors[i].role,
            )
        });
        assert_eq!(
            names,
            [
                ("running_mean", &[3][..], Role::State),
                ("running_var", &[3][..], Role::State),
                ("num_batches_tracked", &[][..], Role::Count),
            ]
        );
        assert_eq!((Bn::EPS, Bn::MOMENTUM), (1e-5, 0.1));
        // The parameters are γ then β in the slice.
        assert_eq!(layer.as_slice(), &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_all_zero_state_is_pytorchs_initial_state() {
        let layer = layer();
        let x = batch();
        let zero = BatchNormState::<f64, 3>::ZERO;
        assert!(zero.is_initial());
        let mut initial = BatchNormState::ZERO;
        Bn::init_state(&mut initial, &mut Rng(0));
        assert!(!initial.is_initial());
        // Inference and saving see variance 1.
        let (mut y_zero, mut y_initial) = (SMatrix::<f64, 12, 5>::ZERO, SMatrix::ZERO);
        layer.forward(&zero, &x, &mut y_zero, &mut []);
        layer.forward(&initial, &x, &mut y_initial, &mut []);
        assert_eq!(y_zero, y_initial);
        assert_eq!(Bn::state_value(&zero, 1, 2), StateValue::Real(1.0));
        assert_eq!(Bn::state_value(&zero, 2, 0), StateValue::Count(0));
        // Training updates from (0, 1) and counts the batch, as PyTorch.
        let (mut a, mut b) = (zero, initial);
        let (mut y, mut cache) = (SMatrix::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut a, &x, &mut y, &mut cache, &mut []);
        layer.forward_train(&mut b, &x, &mut y, &mut cache, &mut []);
        assert_eq!(a, b);
        assert_eq!(a.num_batches_tracked, 1);
        // A state with any value set is used as it is.
        let mut set = BatchNormState::<f64, 3>::ZERO;
        set.running_mean[1] = 0.5;
        assert!(!set.is_initial());
        assert_eq!(set.variance(0), 0.0);
    }

    #[test]
    fn state_values_are_read_and_written_by_index() {
        let mut state = BatchNormState::<f64, 3>::ZERO;
        Bn::set_state_value(&mut state, 0, 2, StateValue::Real(-1.5));
        Bn::set_state_value(&mut state, 1, 0, StateValue::Real(4.0));
        Bn::set_state_value(&mut state, 2, 0, StateValue::Count(9));
        assert_eq!(state.running_mean.as_slice(), &[0.0, 0.0, -1.5]);
        assert_eq!(state.running_var.as_slice(), &[4.0, 0.0, 0.0]);
        assert_eq!(state.num_batches_tracked, 9);
        assert_eq!(Bn::state_value(&state, 0, 2), StateValue::Real(-1.5));
        assert_eq!(Bn::state_value(&state, 1, 0), StateValue::Real(4.0));
        assert_eq!(Bn::state_value(&state, 2, 0), StateValue::Count(9));
        const { assert!(<Bn as Layer<f64, 12, 12>>::BATCH_STATISTICS) };
    }

    /// `STATE_OFFSETS` (what the compile-time loader writes through) points at the values
    /// that `set_state_value` (what the run-time loader calls) writes, in `f32` and `f64`.
    #[test]
    fn state_offsets_are_where_set_state_value_writes() {
        fn check<T: Real, const C: usize>() {
            type Of<T, const C: usize> =
                BatchNorm<T, C, 1, C, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS>;
            let offsets = <Of<T, C> as Layer<T, C, C>>::STATE_OFFSETS;
            let tensors = <Of<T, C> as Layer<T, C, C>>::STATE_TENSORS;
            assert_eq!(offsets.offsets().len(), tensors.len());
            assert_eq!(offsets.size(), size_of::<BatchNormState<T, C>>());
            for (t, tensor) in tensors.iter().enumerate() {
                for e in 0..tensor.len() {
                    let mut state = BatchNormState::<T, C>::ZERO;
                    let count = tensor.role == Role::Count;
                    let size = if count { 8 } else { size_of::<T>() };
                    let at = offsets.offsets()[t] + e * size;
                    assert!(at + size <= offsets.size());
                    let n = 0x0102_0304_0506_0708 + e as u64;
                    let v = T::of(1.5 + e as f64);
                    if count {
                        Of::<T, C>::set_state_value(&mut state, t, e, StateValue::Count(n));
                        let base = (&raw const state).cast::<u8>();
                        // SAFETY: within the state (asserted above), a `u64` field's bytes.
                        let read = unsafe { base.add(at).cast::<u64>().read_unaligned() };
                        assert_eq!(read, n, "{}", tensor.name);
                    } else {
                        Of::<T, C>::set_state_value(&mut state, t, e, StateValue::Real(v));
                        let base = (&raw const state).cast::<u8>();
                        // SAFETY: within the state, a value of `T` in a matrix field.
                        let read = unsafe { base.add(at).cast::<T>().read_unaligned() };
                        assert_eq!(read, v, "{}[{e}]", tensor.name);
                    }
                }
            }
        }
        check::<f32, 3>();
        check::<f64, 3>();
        check::<f32, 4>();
    }

    #[test]
    fn f32_agrees_with_f64() {
        let layer = layer();
        let single = BatchNorm::<f32, 3, 4, 12, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS> {
            weight: layer.weight.cast(),
            bias: layer.bias.cast(),
        };
        let x = batch();
        let (mut state, mut state32) = (BatchNormState::ZERO, BatchNormState::ZERO);
        Bn::init_state(&mut state, &mut Rng(0));
        BatchNorm::<f32, 3, 4, 12, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS>::init_state(
            &mut state32,
            &mut Rng(0),
        );
        let (mut y, mut y32) = (SMatrix::ZERO, SMatrix::<f32, 12, 5>::ZERO);
        let (mut cache, mut cache32) = (BatchNormCache::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        single.forward_train(&mut state32, &x.cast(), &mut y32, &mut cache32, &mut []);
        assert!((y32.cast::<f64>() - y).amax() < 1e-5);
        assert!((state32.running_var.cast::<f64>() - state.running_var).amax() < 1e-5);
    }

    /// The training pass, inference with the updated state, and the gradients of one layer
    /// of `C` channels of `S` positions on a batch of `B`, against the definitions in plain
    /// loops (sums in sample and position order, in `f64`).
    fn agrees_with_the_definition<
        const C: usize,
        const S: usize,
        const IN: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        type Of<const C: usize, const S: usize, const IN: usize> =
            BatchNorm<f64, C, S, IN, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS>;
        let layer = Of::<C, S, IN> {
            weight: random_matrix(seed, 2.0),
            bias: random_matrix(seed + 1, 1.0),
        };
        // Channels with means far from zero and different spreads.
        let noise = random_matrix::<IN, B>(seed + 2, 1.0);
        let x = SMatrix::<f64, IN, B>::from_fn(|i, j| {
            let c = (i / S) as f64;
            5.0 - c + (1.0 + 0.5 * c) * noise[(i, j)]
        });
        let dy = random_matrix::<IN, B>(seed + 3, 1.0);
        let mut state = BatchNormState::ZERO;
        let (mut y, mut cache) = (SMatrix::ZERO, BatchNormCache::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        // Backward adds to what `dx` and the gradients hold.
        let (mut dx, mut grads) = (SMatrix::repeat(0.5), Of::<C, S, IN>::ZERO);
        grads.weight.fill(-1.0);
        grads.bias.fill(2.0);
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut []);
        let mut without_dx = Of::<C, S, IN>::ZERO;
        without_dx.weight.fill(-1.0);
        without_dx.bias.fill(2.0);
        layer.backward(&x, &cache, &dy, None, &mut without_dx, &mut []);
        assert_eq!(without_dx, grads);
        let mut inferred = SMatrix::ZERO;
        layer.forward(&state, &x, &mut inferred, &mut []);

        let m = (B * S) as f64;
        for c in 0..C {
            let values = |v: &SMatrix<f64, IN, B>| {
                let mut out = std::vec::Vec::new();
                for j in 0..B {
                    out.extend((0..S).map(|s| v[(c * S + s, j)]));
                }
                out
            };
            let (xs, gs) = (values(&x), values(&dy));
            let mean = xs.iter().sum::<f64>() / m;
            let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m;
            let inv_std = 1.0 / (var + 1e-5).sqrt();
            let (gamma, beta) = (layer.weight[c], layer.bias[c]);
            let x_hat: std::vec::Vec<f64> = xs.iter().map(|v| (v - mean) * inv_std).collect();
            let sum_g = gs.iter().sum::<f64>();
            let sum_g_xhat = gs.iter().zip(&x_hat).map(|(g, h)| g * h).sum::<f64>();
            assert!((cache.mean[c] - mean).abs() < 1e-13, "mean {c}");
            assert!(
                (cache.inv_std[c] - inv_std).abs() < 1e-12 * inv_std,
                "inv_std {c}"
            );
            let running_var = 0.9 + 0.1 * var * m / (m - 1.0);
            assert!((state.running_mean[c] - 0.1 * mean).abs() < 1e-14);
            assert!((state.running_var[c] - running_var).abs() < 1e-13);
            assert!(
                (grads.weight[c] - (sum_g_xhat - 1.0)).abs() < 1e-12,
                "dγ {c}"
            );
            assert!((grads.bias[c] - (sum_g + 2.0)).abs() < 1e-12, "dβ {c}");
            let inference_scale = gamma / (running_var + 1e-5).sqrt();
            for j in 0..B {
                for s in 0..S {
                    let (i, n) = (c * S + s, j * S + s);
                    let expected = gamma * x_hat[n] + beta;
                    assert!((y[(i, j)] - expected).abs() < 1e-12, "y {i} {j}");
                    let expected =
                        0.5 + gamma * inv_std * (gs[n] - sum_g / m - x_hat[n] * sum_g_xhat / m);
                    assert!((dx[(i, j)] - expected).abs() < 1e-12, "dx {i} {j}");
                    let expected = (x[(i, j)] - state.running_mean[c]) * inference_scale + beta;
                    assert!(
                        (inferred[(i, j)] - expected).abs() < 1e-12,
                        "inferred {i} {j}"
                    );
                }
            }
        }
    }

    /// Channel sizes below, at and above a block (several channels per block, one block,
    /// several blocks with a shorter last one), one channel or several per group with a
    /// shorter last group, B = 1 and B > 1.
    #[test]
    fn agrees_with_the_definition_for_many_sizes() {
        agrees_with_the_definition::<4, 1, 4, 3>(10);
        agrees_with_the_definition::<70, 1, 70, 2>(11); // groups of 64 and 6 channels
        agrees_with_the_definition::<3, 3, 9, 1>(12);
        agrees_with_the_definition::<5, 9, 45, 2>(13);
        agrees_with_the_definition::<7, 17, 119, 1>(14); // groups of 3, 3 and 1
        agrees_with_the_definition::<3, 17, 51, 4>(15);
        agrees_with_the_definition::<2, 64, 128, 2>(16);
        agrees_with_the_definition::<2, 65, 130, 1>(17); // blocks of 64 and 1
        agrees_with_the_definition::<3, 130, 390, 3>(18); // blocks of 64, 64 and 2
    }

    #[test]
    fn gradients_match_finite_differences_across_blocks() {
        fn check<const C: usize, const S: usize, const IN: usize, const B: usize>(seed: u64) {
            let mut layer = BatchNorm::<f64, C, S, IN, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS> {
                weight: random_matrix(seed, 1.0),
                bias: random_matrix(seed + 1, 1.0),
            };
            let x = random_matrix::<IN, B>(seed + 2, 2.0);
            let report = check_layer(&mut layer, &BatchNormState::ZERO, &x);
            assert!(report.max_rel_error < 1e-7, "{C} {S} {B}: {report:?}");
        }
        check::<70, 1, 70, 2>(20);
        check::<4, 17, 68, 2>(21);
        check::<2, 9, 18, 1>(22);
        check::<2, 67, 134, 2>(23);
    }

    /// The sum of a block's per-position sums is in 8 lanes combined pairwise: with values
    /// whose sum depends on the order, the result is the documented one.
    #[test]
    fn block_sums_follow_the_documented_order() {
        let big = 2f64.powi(60);
        // Lanes: l₀ = big + 1 + 1 = big (1 is lost next to 2⁶⁰), l₁ = −big, l₂ = 3, others 0.
        let values = [
            big, -big, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        ];
        assert_eq!(kernels::sum(&values), 3.0);
        // In sequence: ((big − big) + 3) + 1 + 1 = 5.
        assert_eq!(values.iter().sum::<f64>(), 5.0);
        assert_eq!(kernels::sum(&[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(kernels::sum::<f64>(&[]), 0.0);
    }

    /// A long channel's sums are in 32 partial sums, position `s` into sum `s mod 32`, added
    /// pairwise: with values whose sum depends on the order, μ is the documented one.
    #[test]
    fn long_channel_sums_follow_the_documented_order() {
        let big = 2f64.powi(60);
        // One channel of 64 positions, B = 2. Partial sum 0 gets big (position 0), then 1
        // (position 32, lost next to 2⁶⁰), then the second sample's 0s; partial sum 1 gets −big:
        // their pairwise sum is 0, the others 0 too: μ = 0. In sequence it would be 1/128.
        let mut x = SMatrix::<f64, 64, 2>::ZERO;
        (x[(0, 0)], x[(1, 0)], x[(32, 0)]) = (big, -big, 1.0);
        let layer = BatchNorm::<f64, 1, 64, 64, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS> {
            weight: SMatrix::repeat(1.0),
            bias: SMatrix::repeat(0.0),
        };
        let (mut y, mut cache, mut state) =
            (SMatrix::ZERO, BatchNormCache::ZERO, BatchNormState::ZERO);
        layer.forward_train(&mut state, &x, &mut y, &mut cache, &mut []);
        assert_eq!(cache.mean[0], 0.0);
        assert_eq!(x.iter().sum::<f64>(), 1.0);
        assert_eq!(pairwise([1.0, 2.0, 4.0, 8.0]), 15.0);
    }

    /// The passes compiled for AVX-512 and for AVX2 give the baseline's results bit for bit
    /// (`f32`, a geometry with several blocks per channel and one with several channels per
    /// block).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx512_and_avx2_passes_equal_the_baseline_passes() {
        type Of<const C: usize, const S: usize, const IN: usize> =
            BatchNorm<f32, C, S, IN, DEFAULT_EPS_BITS, DEFAULT_MOMENTUM_BITS>;
        type Outputs<const C: usize, const S: usize, const IN: usize> = (
            std::vec::Vec<f32>,
            BatchNormCache<f32, C>,
            BatchNormState<f32, C>,
            std::vec::Vec<f32>,
            std::vec::Vec<f32>,
            Of<C, S, IN>,
        );
        /// The training outputs, cache and state, the inference outputs, and `∂x` and the
        /// gradients, by the three passes `train`, `infer` and `gradients` given.
        fn passes<const C: usize, const S: usize, const IN: usize>(
            train: impl Fn(
                &Of<C, S, IN>,
                &mut BatchNormState<f32, C>,
                &[f32],
                &mut [f32],
                &mut BatchNormCache<f32, C>,
            ),
            infer: impl Fn(&Of<C, S, IN>, &BatchNormState<f32, C>, &[f32], &mut [f32]),
            gradients: impl Fn(
                &Of<C, S, IN>,
                &[f32],
                &BatchNormCache<f32, C>,
                &[f32],
                &mut [f32],
                &mut Of<C, S, IN>,
            ),
        ) -> Outputs<C, S, IN> {
            let layer = Of::<C, S, IN> {
                weight: random_matrix::<C, 1>(30, 2.0).cast(),
                bias: random_matrix::<C, 1>(31, 1.0).cast(),
            };
            let x: SMatrix<f32, IN, 5> = random_matrix::<IN, 5>(32, 3.0).cast();
            let dy: SMatrix<f32, IN, 5> = random_matrix::<IN, 5>(33, 1.0).cast();
            let (x, dy) = (x.as_slice(), dy.as_slice());
            let (mut state, mut cache) = (BatchNormState::ZERO, BatchNormCache::ZERO);
            let (mut y, mut y_infer) = (std::vec![0.0f32; IN * 5], std::vec![0.0f32; IN * 5]);
            train(&layer, &mut state, x, &mut y, &mut cache);
            infer(&layer, &state, x, &mut y_infer);
            let (mut dx, mut grads) = (std::vec![0.0f32; IN * 5], Of::<C, S, IN>::ZERO);
            gradients(&layer, x, &cache, dy, &mut dx, &mut grads);
            (y, cache, state, y_infer, dx, grads)
        }
        fn check<const C: usize, const S: usize, const IN: usize>() {
            let baseline = passes::<C, S, IN>(
                |l, s, x, y, c| l.train::<5>(s, x, y, c),
                |l, s, x, y| l.infer::<5>(s, x, y),
                |l, x, c, dy, dx, g| l.gradients::<5>(x, c, dy, Some(dx), g),
            );
            if kernels::has_avx512() {
                // SAFETY (each call): the CPU has AVX-512F.
                let avx512 = passes::<C, S, IN>(
                    |l, s, x, y, c| unsafe { l.train_avx512::<5>(s, x, y, c) },
                    |l, s, x, y| unsafe { l.infer_avx512::<5>(s, x, y) },
                    |l, x, c, dy, dx, g| unsafe { l.gradients_avx512::<5>(x, c, dy, Some(dx), g) },
                );
                assert!(avx512 == baseline, "AVX-512, {C} channels");
            }
            if kernels::has_avx2_fma() {
                // SAFETY (each call): the CPU has AVX2 and FMA.
                let avx2 = passes::<C, S, IN>(
                    |l, s, x, y, c| unsafe { l.train_avx2::<5>(s, x, y, c) },
                    |l, s, x, y| unsafe { l.infer_avx2::<5>(s, x, y) },
                    |l, x, c, dy, dx, g| unsafe { l.gradients_avx2::<5>(x, c, dy, Some(dx), g) },
                );
                assert!(avx2 == baseline, "AVX2, {C} channels");
            }
        }
        check::<3, 150, 450>();
        check::<40, 3, 120>();
    }
}

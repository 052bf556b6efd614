//! Batch normalization over the batch and the spatial positions of each channel.

use crate::init::Init;
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

/// The `S` values of channel `c` in sample `j` of a batch stored as a flat slice.
#[inline(always)]
fn channel<T, const IN: usize, const S: usize>(values: &[T], j: usize, c: usize) -> &[T] {
    &values[j * IN + c * S..][..S]
}

/// Mutable [`channel`].
#[inline(always)]
fn channel_mut<T, const IN: usize, const S: usize>(
    values: &mut [T],
    j: usize,
    c: usize,
) -> &mut [T] {
    &mut values[j * IN + c * S..][..S]
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
        let eps = T::of(Self::EPS);
        for c in 0..C {
            let mean = state.running_mean[c];
            let scale = self.weight[c] / (state.variance(c) + eps).sqrt();
            for j in 0..B {
                let x = channel::<T, IN, S>(x.as_slice(), j, c);
                for (y, &x) in channel_mut::<T, IN, S>(y.as_mut_slice(), j, c)
                    .iter_mut()
                    .zip(x)
                {
                    *y = (x - mean) * scale + self.bias[c];
                }
            }
        }
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
        let m = (B * S) as f64;
        let (eps, momentum) = (T::of(Self::EPS), T::of(Self::MOMENTUM));
        if state.is_initial() {
            // The all-zero state stands for PyTorch's initial one: make it explicit.
            state.running_var.fill(T::ONE);
        }
        state.num_batches_tracked = state.num_batches_tracked.saturating_add(1);
        for c in 0..C {
            let values = || (0..B).flat_map(|j| channel::<T, IN, S>(x.as_slice(), j, c));
            let mean = values().fold(T::ZERO, |sum, &v| sum + v) / T::of(m);
            let var = values().fold(T::ZERO, |sum, &v| sum + (v - mean) * (v - mean)) / T::of(m);
            let inv_std = T::ONE / (var + eps).sqrt();
            cache.mean[c] = mean;
            cache.inv_std[c] = inv_std;
            let scale = self.weight[c] * inv_std;
            for j in 0..B {
                let x = channel::<T, IN, S>(x.as_slice(), j, c);
                for (y, &x) in channel_mut::<T, IN, S>(y.as_mut_slice(), j, c)
                    .iter_mut()
                    .zip(x)
                {
                    *y = (x - mean) * scale + self.bias[c];
                }
            }
            let unbiased = var * T::of(m / (m - 1.0));
            let keep = T::ONE - momentum;
            state.running_mean[c] = keep * state.running_mean[c] + momentum * mean;
            state.running_var[c] = keep * state.running_var[c] + momentum * unbiased;
        }
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &Self::Cache<B>,
        dy: &SMatrix<T, IN, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        let inv_m = T::of(1.0 / (B * S) as f64);
        for c in 0..C {
            let (mean, inv_std) = (cache.mean[c], cache.inv_std[c]);
            // Σ g and Σ g·x̂ over the channel's B·S values.
            let (mut sum_dy, mut sum_dy_xhat) = (T::ZERO, T::ZERO);
            for j in 0..B {
                let x = channel::<T, IN, S>(x.as_slice(), j, c);
                for (&dy, &x) in channel::<T, IN, S>(dy.as_slice(), j, c).iter().zip(x) {
                    sum_dy += dy;
                    sum_dy_xhat += dy * (x - mean) * inv_std;
                }
            }
            grads.weight[c] += sum_dy_xhat;
            grads.bias[c] += sum_dy;
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            let (mean_dy, mean_dy_xhat) = (sum_dy * inv_m, sum_dy_xhat * inv_m);
            let scale = self.weight[c] * inv_std;
            for j in 0..B {
                let x = channel::<T, IN, S>(x.as_slice(), j, c);
                let dy = channel::<T, IN, S>(dy.as_slice(), j, c);
                let dx = channel_mut::<T, IN, S>(dx.as_mut_slice(), j, c);
                for ((dx, &dy), &x) in dx.iter_mut().zip(dy).zip(x) {
                    let x_hat = (x - mean) * inv_std;
                    *dx += scale * (dy - mean_dy - x_hat * mean_dy_xhat);
                }
            }
        }
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
}

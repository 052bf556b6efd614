//! Group normalization: [`GroupNorm`] (PyTorch's `nn.GroupNorm`).

use crate::init::Init;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable, kernels};
use nalgebra::SMatrix;
use rand_core::Rng;

/// Group normalization, PyTorch's `nn.GroupNorm(G, C, eps)` (with its default
/// `affine=True`): the `C` channels of a sample `[C, ...]` (`IN = C·S`, channel `c` at
/// `c·S .. (c + 1)·S`, `S` positions per channel; a vector is `S = 1`) are split into `G`
/// groups of `C/G` consecutive channels; each group is normalised on its own over its
/// `m = (C/G)·S` values, then each channel is scaled and shifted:
///
/// `μ = (1/m)·Σ x`, `σ² = (1/m)·Σ (x − μ)²` (biased, as PyTorch), `x̂ = (x − μ)/√(σ² + ε)`,
/// `y[c, s] = γ_c·x̂[c, s] + β_c`, with `ε = f64::from_bits(EPS_BITS)`
/// ([`DEFAULT_EPS_BITS`](super::DEFAULT_EPS_BITS) is PyTorch's `1e-5`).
///
/// Unlike batch normalization it uses no batch statistics and keeps no running state:
/// training and inference compute the same thing, sample by sample. `G = 1` normalises over
/// the whole sample, `G = C` each channel on its own (instance normalization).
///
/// Backward, per group, with `g = γ_c·∂L/∂y` at each value (`c` its channel):
/// `∂L/∂x = (g − mean(g) − x̂·mean(g ⊙ x̂))/√(σ² + ε)` (means over the group's `m` values),
/// `∂L/∂γ_c += Σ_s ∂L/∂y[c, s]·x̂[c, s]`, `∂L/∂β_c += Σ_s ∂L/∂y[c, s]` (summed over samples).
///
/// Parameters (PyTorch's): `weight` `γ` `[C]`, initialised to 1, and `bias` `β` `[C]`,
/// initialised to 0, whatever the network's scheme (as PyTorch). `G ≥ 1`, `C % G == 0` and
/// `IN = C·S` are checked at compile time where the layer is used.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct GroupNorm<
    T: Real,
    const C: usize,
    const S: usize,
    const G: usize,
    const IN: usize,
    const EPS_BITS: u64,
> {
    /// `γ`, `[C]`.
    pub weight: SMatrix<T, C, 1>,
    /// `β`, `[C]`.
    pub bias: SMatrix<T, C, 1>,
}

/// What [`GroupNorm`]'s training forward pass keeps for backward: each group's mean and
/// `1/√(σ² + ε)`, for `B` samples.
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct GroupNormCache<T: Real, const G: usize, const B: usize> {
    /// `μ` of group `g` of sample `j` at `(g, j)`.
    pub mean: SMatrix<T, G, B>,
    /// `1/√(σ² + ε)` of group `g` of sample `j` at `(g, j)`.
    pub inv_std: SMatrix<T, G, B>,
}

/// Compile-time size rules.
const fn check(c: usize, s: usize, g: usize, input: usize) {
    assert!(
        c >= 1 && s >= 1 && g >= 1,
        "GroupNorm: C, S and G must be at least 1"
    );
    assert!(
        c.is_multiple_of(g),
        "GroupNorm: the groups G must divide the channels C"
    );
    assert!(input == c * s, "GroupNorm: IN must be C·S");
}

impl<T: Real, const C: usize, const S: usize, const G: usize, const IN: usize, const EPS_BITS: u64>
    GroupNorm<T, C, S, G, IN, EPS_BITS>
{
    /// Values of one group: `C/G` channels of `S` positions.
    const GROUP: usize = C / G * S;

    /// `ε` in `T`.
    #[inline]
    fn eps() -> T {
        T::of(f64::from_bits(EPS_BITS))
    }

    /// Normalises every group of every sample: writes `y`; `stats(g, j, μ, 1/σ)` receives
    /// each group's statistics.
    #[inline]
    fn normalise<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        mut stats: impl FnMut(usize, usize, T, T),
    ) {
        let count = T::of(Self::GROUP as f64);
        let groups = x.as_slice().chunks_exact(Self::GROUP);
        let outputs = y.as_mut_slice().chunks_exact_mut(Self::GROUP);
        for (n, (x, y)) in groups.zip(outputs).enumerate() {
            // In 8 partial sums each (`kernels::sum`): not a chain of D dependent additions.
            let mean = kernels::sum(x) / count;
            let var = kernels::sum_by(x, |v| (v - mean) * (v - mean)) / count;
            let inv_std = T::ONE / (var + Self::eps()).sqrt();
            let group = n % G;
            for (i, (y, &x)) in y.iter_mut().zip(x).enumerate() {
                let channel = group * (C / G) + i / S;
                *y = self.weight[channel] * ((x - mean) * inv_std) + self.bias[channel];
            }
            stats(group, n / G, mean, inv_std);
        }
    }
}

impl<T: Real, const C: usize, const S: usize, const G: usize, const IN: usize, const EPS_BITS: u64>
    Layer<T, IN, IN> for GroupNorm<T, C, S, G, IN, EPS_BITS>
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

    type Cache<const B: usize> = GroupNormCache<T, G, B>;
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        _scratch: &mut [T],
    ) {
        const { check(C, S, G, IN) };
        self.normalise(x, y, |_, _, _, _| {});
    }

    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        cache: &mut GroupNormCache<T, G, B>,
        _scratch: &mut [T],
    ) {
        const { check(C, S, G, IN) };
        self.normalise(x, y, |g, j, mean, inv_std| {
            cache.mean[(g, j)] = mean;
            cache.inv_std[(g, j)] = inv_std;
        });
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &GroupNormCache<T, G, B>,
        dy: &SMatrix<T, IN, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check(C, S, G, IN) };
        let count = T::of(Self::GROUP as f64);
        let groups = x
            .as_slice()
            .chunks_exact(Self::GROUP)
            .zip(dy.as_slice().chunks_exact(Self::GROUP));
        for (n, (x, dy)) in groups.enumerate() {
            let (mean, inv_std) = (cache.mean[n], cache.inv_std[n]);
            let channel = |i: usize| n % G * (C / G) + i / S;
            // mean(g) and mean(g ⊙ x̂), g = γ_c·dy.
            let (mut sum_g, mut sum_gx) = (T::ZERO, T::ZERO);
            for (i, (&x, &dy)) in x.iter().zip(dy).enumerate() {
                let (c, x_hat) = (channel(i), (x - mean) * inv_std);
                let g = self.weight[c] * dy;
                sum_g += g;
                sum_gx += g * x_hat;
                grads.weight[c] += dy * x_hat;
                grads.bias[c] += dy;
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            let (mean_g, mean_gx) = (sum_g / count, sum_gx / count);
            let dx = &mut dx.as_mut_slice()[n * Self::GROUP..(n + 1) * Self::GROUP];
            for (i, (dx, (&x, &dy))) in dx.iter_mut().zip(x.iter().zip(dy)).enumerate() {
                let x_hat = (x - mean) * inv_std;
                *dx += (self.weight[channel(i)] * dy - mean_g - x_hat * mean_gx) * inv_std;
            }
        }
    }

    /// `γ = 1`, `β = 0`, as PyTorch (the scheme is not used).
    fn init<R: Rng + ?Sized>(&mut self, _scheme: Init, _rng: &mut R) {
        self.weight.fill(T::ONE);
        self.bias.fill(T::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{Rng, check_layer, max_diff, random_matrix};

    const EPS: u64 = 1e-5f64.to_bits();

    /// Every parameter random in `[-scale, scale)`.
    fn randomize<L: Params<f64>>(layer: &mut L, seed: u64, scale: f64) {
        let values: SMatrix<f64, 64, 1> = random_matrix(seed, scale);
        for (p, v) in layer.as_mut_slice().iter_mut().zip(values.iter().cycle()) {
            *p = *v;
        }
    }

    fn gradcheck<const C: usize, const S: usize, const G: usize, const IN: usize>(seed: u64) {
        let mut layer = GroupNorm::<f64, C, S, G, IN, EPS>::ZERO;
        randomize(&mut layer, seed, 1.0);
        let x = random_matrix::<IN, 3>(seed + 1, 2.0);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradcheck::<4, 3, 2, 12>(1); // two groups of two channels
        gradcheck::<6, 1, 3, 6>(2); // a vector
        gradcheck::<4, 5, 4, 20>(3); // instance normalization
        gradcheck::<3, 2, 1, 6>(4); // one group: the whole sample
    }

    /// `0.5·sin(1.7·k + seed)` at the row-major index `k` of PyTorch's layout, as the
    /// reference script below fills its tensors.
    fn det<const R: usize, const B: usize>(seed: f64) -> SMatrix<f64, R, B> {
        SMatrix::from_fn(|i, j| 0.5 * (1.7 * (j * R + i) as f64 + seed).sin())
    }

    /// Against numpy, with PyTorch's definition (`torch` itself is not needed): `C = 4`,
    /// `S = 3`, `G = 2`, a batch of 2, `eps = 1e-5`; the gradients of `L = Σ dy ⊙ y` by the
    /// complex step, which uses no formula of ours. The script:
    ///
    /// ```text
    /// import numpy as np
    /// def det(shape, seed):
    ///     k = np.arange(int(np.prod(shape)), dtype=np.float64)
    ///     return (0.5 * np.sin(1.7 * k + seed)).reshape(shape)
    /// def group_norm(x, weight, bias, groups, eps):
    ///     n, c = x.shape[:2]
    ///     g = x.reshape(n, groups, -1)
    ///     mean = g.mean(axis=2, keepdims=True)
    ///     var = ((g - mean) ** 2).mean(axis=2, keepdims=True)
    ///     x_hat = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    ///     shape = (1, c) + (1,) * (x.ndim - 2)
    ///     return x_hat * weight.reshape(shape) + bias.reshape(shape)
    /// x, w, b, dy = det((2, 4, 3), 0.8), det((4,), 0.6), det((4,), 0.7), det((2, 4, 3), 0.9)
    /// y = group_norm(x, w, b, 2, 1e-5)                                      # REFERENCE_Y
    /// def complex_step(f, v, h=1e-30):
    ///     grad = np.zeros(v.shape)
    ///     for k in np.ndindex(v.shape):
    ///         z = v.astype(np.complex128); z[k] += 1j * h
    ///         grad[k] = f(z).imag / h
    ///     return grad
    /// loss = lambda x, w, b: np.sum(dy * group_norm(x, w, b, 2, 1e-5))
    /// complex_step(lambda z: loss(z, w, b), x)                               # REFERENCE_DX
    /// complex_step(lambda z: loss(x, z, b), w)                               # REFERENCE_DWEIGHT
    /// complex_step(lambda z: loss(x, w, z), b)                               # REFERENCE_DBIAS
    /// ```
    #[test]
    fn forward_and_backward_match_the_numpy_reference() {
        let layer = GroupNorm::<f64, 4, 3, 2, 12, EPS> {
            weight: det(0.6),
            bias: det(0.7),
        };
        let (x, dy) = (det::<12, 2>(0.8), det::<12, 2>(0.9));
        let (mut y, mut cache) = (SMatrix::ZERO, GroupNormCache::ZERO);
        layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
        assert!(max_diff(y.as_slice(), &REFERENCE_Y) < 1e-14);
        let mut inference = SMatrix::ZERO;
        layer.forward(&(), &x, &mut inference, &mut []);
        assert_eq!(inference, y);

        let (mut dx, mut grads) = (SMatrix::ZERO, GroupNorm::ZERO);
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut []);
        assert!(max_diff(dx.as_slice(), &REFERENCE_DX) < 1e-14);
        assert!(max_diff(grads.weight.as_slice(), &REFERENCE_DWEIGHT) < 1e-14);
        assert!(max_diff(grads.bias.as_slice(), &REFERENCE_DBIAS) < 1e-14);

        // Without `dx`, `backward` adds the same parameter gradients.
        let mut params_only = GroupNorm::ZERO;
        layer.backward(&x, &cache, &dy, None, &mut params_only, &mut []);
        assert_eq!(params_only, grads);
    }

    /// With `γ = 1`, `β = 0` (from `init`), every group has mean 0 and variance
    /// `σ²/(σ² + ε)`; PyTorch's names and shapes.
    #[test]
    fn groups_are_normalised() {
        let mut layer = GroupNorm::<f64, 6, 4, 3, 24, EPS>::ZERO;
        Layer::<f64, 24, 24>::init(&mut layer, Init::GlorotUniform, &mut Rng(1));
        assert_eq!(layer.weight, SMatrix::<f64, 6, 1>::repeat(1.0));
        assert_eq!(layer.bias, SMatrix::<f64, 6, 1>::ZERO);
        let tensors = <GroupNorm<f64, 6, 4, 3, 24, EPS> as Layer<f64, 24, 24>>::TENSORS;
        assert_eq!(tensors.len(), 2);
        assert_eq!((tensors[0].name, tensors[0].shape), ("weight", &[6][..]));
        assert_eq!((tensors[1].name, tensors[1].shape), ("bias", &[6][..]));
        let x = random_matrix::<24, 2>(5, 3.0).add_scalar(1.5);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        for (x, y) in x.as_slice().chunks(8).zip(y.as_slice().chunks(8)) {
            let mean = |v: &[f64]| v.iter().sum::<f64>() / 8.0;
            let var = |v: &[f64]| v.iter().map(|a| (a - mean(v)).powi(2)).sum::<f64>() / 8.0;
            assert!(mean(y).abs() < 1e-15, "{}", mean(y));
            let expected = var(x) / (var(x) + 1e-5);
            assert!((var(y) - expected).abs() < 1e-14, "{} {}", var(y), expected);
        }
    }

    const REFERENCE_Y: [f64; 24] = [
        0.5511249182127673,
        0.4991230390887917,
        -0.14390115485602656,
        0.009799353490150708,
        0.7849320558586812,
        0.297676665840384,
        0.0644989735796832,
        -0.5258504805577784,
        -0.9595007016186571,
        -0.12189206228249636,
        0.06200466805811422,
        -0.4962622334244269,
        0.6190404737298797,
        0.04452315292376574,
        0.15211465029533328,
        0.835356606735616,
        0.5071787849151748,
        -0.13038430167094772,
        -0.2951143633749449,
        -0.8757074029447882,
        -0.16618072987787233,
        0.23391268290260286,
        -0.35695463513441605,
        -0.4941207199767821,
    ];

    const REFERENCE_DX: [f64; 24] = [
        -0.01355816028368964,
        -0.07219979187339809,
        0.025062304578899314,
        0.019448165179857615,
        0.09133179164166894,
        -0.05008430924333815,
        0.06866384868979535,
        -0.0387881167298159,
        -0.014968103948961574,
        0.019317849703177584,
        -0.07895356701115529,
        0.04472808929696007,
        -0.07557184569378421,
        0.031351186273662755,
        0.06840281079375497,
        0.06913998801268292,
        -0.03380250537839701,
        -0.05951963400791967,
        -0.04175726076816467,
        -0.08570329315036478,
        0.09533747137253734,
        -0.046900005234570136,
        0.000845557809077302,
        0.07817752997148474,
    ];

    const REFERENCE_DWEIGHT: [f64; 4] = [
        2.1129238130709624,
        2.017489775914829,
        2.0356988436648598,
        2.092582291959012,
    ];

    const REFERENCE_DBIAS: [f64; 4] = [
        -0.12274818969933282,
        0.4311418029615378,
        0.44867220064454716,
        -0.09196559172615733,
    ];
}

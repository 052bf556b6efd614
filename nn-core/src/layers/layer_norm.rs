//! Layer normalization over the last dimension: [`LayerNorm`] (PyTorch's `nn.LayerNorm(D)`).

use crate::init::Init;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable, kernels};
use nalgebra::SMatrix;
use rand_core::Rng;

/// Layer normalization, PyTorch's `nn.LayerNorm(D, eps)` (elementwise affine, with bias):
/// each of the `R` rows of a sample `[R, D]` (`IN = R·D`, row `r` at `r·D .. (r + 1)·D`; a
/// vector is `R = 1`) is normalised on its own over its `D` features, then scaled and
/// shifted per feature:
///
/// `μ = (1/D)·Σ_d x_d`, `σ² = (1/D)·Σ_d (x_d − μ)²` (biased, as PyTorch),
/// `x̂ = (x − μ)/√(σ² + ε)`, `y = γ ⊙ x̂ + β`, with `ε = f64::from_bits(EPS_BITS)`
/// ([`DEFAULT_EPS_BITS`](super::DEFAULT_EPS_BITS) is PyTorch's `1e-5`).
///
/// Unlike batch normalization it uses no batch statistics and no running state: training
/// and inference compute the same thing, sample by sample.
///
/// Backward, per row, with `g = γ ⊙ ∂L/∂y`: `∂L/∂x = (g − mean(g) − x̂·mean(g ⊙ x̂))/√(σ² + ε)`,
/// `∂L/∂γ += ∂L/∂y ⊙ x̂`, `∂L/∂β += ∂L/∂y` (summed over rows and samples).
///
/// Parameters (PyTorch's): `weight` `γ` `[D]`, initialised to 1, and `bias` `β` `[D]`,
/// initialised to 0, whatever the network's scheme (as PyTorch). `IN = R·D` is checked at
/// compile time where the layer is used.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct LayerNorm<T: Real, const D: usize, const R: usize, const IN: usize, const EPS_BITS: u64>
{
    /// `γ`, `[D]`.
    pub weight: SMatrix<T, D, 1>,
    /// `β`, `[D]`.
    pub bias: SMatrix<T, D, 1>,
}

/// What [`LayerNorm`]'s training forward pass keeps for backward: each row's mean and
/// `1/√(σ² + ε)`, for `B` samples.
#[derive(Clone, Copy, Debug, PartialEq, ConstZero, Zeroable)]
#[repr(C)]
pub struct LayerNormCache<T: Real, const R: usize, const B: usize> {
    /// `μ` of row `r` of sample `j` at `(r, j)`.
    pub mean: SMatrix<T, R, B>,
    /// `1/√(σ² + ε)` of row `r` of sample `j` at `(r, j)`.
    pub inv_std: SMatrix<T, R, B>,
}

/// Compile-time size rules.
const fn check(d: usize, r: usize, input: usize) {
    assert!(d >= 1 && r >= 1, "LayerNorm: D and R must be at least 1");
    assert!(input == r * d, "LayerNorm: IN must be R·D");
}

impl<T: Real, const D: usize, const R: usize, const IN: usize, const EPS_BITS: u64>
    LayerNorm<T, D, R, IN, EPS_BITS>
{
    /// `ε` in `T`.
    #[inline]
    fn eps() -> T {
        T::of(f64::from_bits(EPS_BITS))
    }

    /// Normalises every row of every sample: writes `y` and returns nothing; `stats(r, j,
    /// μ, 1/σ)` receives each row's statistics.
    #[inline]
    fn normalise<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        mut stats: impl FnMut(usize, usize, T, T),
    ) {
        let count = T::of(D as f64);
        let x_rows = x.as_slice().chunks_exact(D);
        for (n, (x, y)) in x_rows.zip(y.as_mut_slice().chunks_exact_mut(D)).enumerate() {
            // In 8 partial sums each (`kernels::sum`): not a chain of D dependent additions.
            let mean = kernels::sum(x) / count;
            let var = kernels::sum_by(x, |v| (v - mean) * (v - mean)) / count;
            let inv_std = T::ONE / (var + Self::eps()).sqrt();
            let affine = self.weight.iter().zip(self.bias.iter());
            for ((y, &x), (&gamma, &beta)) in y.iter_mut().zip(x).zip(affine) {
                *y = gamma * ((x - mean) * inv_std) + beta;
            }
            stats(n % R, n / R, mean, inv_std);
        }
    }
}

impl<T: Real, const D: usize, const R: usize, const IN: usize, const EPS_BITS: u64> Layer<T, IN, IN>
    for LayerNorm<T, D, R, IN, EPS_BITS>
{
    const TENSORS: &'static [TensorInfo] = &[
        TensorInfo {
            name: "weight",
            shape: &[D],
            role: Role::Weight,
        },
        TensorInfo {
            name: "bias",
            shape: &[D],
            role: Role::Bias,
        },
    ];

    type Cache<const B: usize> = LayerNormCache<T, R, B>;
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        _scratch: &mut [T],
    ) {
        const { check(D, R, IN) };
        self.normalise(x, y, |_, _, _, _| {});
    }

    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        cache: &mut LayerNormCache<T, R, B>,
        _scratch: &mut [T],
    ) {
        const { check(D, R, IN) };
        self.normalise(x, y, |r, j, mean, inv_std| {
            cache.mean[(r, j)] = mean;
            cache.inv_std[(r, j)] = inv_std;
        });
    }

    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        cache: &LayerNormCache<T, R, B>,
        dy: &SMatrix<T, IN, B>,
        mut dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check(D, R, IN) };
        let count = T::of(D as f64);
        let rows = x
            .as_slice()
            .chunks_exact(D)
            .zip(dy.as_slice().chunks_exact(D));
        for (n, (x, dy)) in rows.enumerate() {
            let (mean, inv_std) = (cache.mean[n], cache.inv_std[n]);
            // mean(g) and mean(g ⊙ x̂), g = γ ⊙ dy.
            let (mut sum_g, mut sum_gx) = (T::ZERO, T::ZERO);
            for (d, (&x, &dy)) in x.iter().zip(dy).enumerate() {
                let x_hat = (x - mean) * inv_std;
                let g = self.weight[d] * dy;
                sum_g += g;
                sum_gx += g * x_hat;
                grads.weight[d] += dy * x_hat;
                grads.bias[d] += dy;
            }
            let Some(dx) = dx.as_deref_mut() else {
                continue;
            };
            let dx = &mut dx.as_mut_slice()[n * D..(n + 1) * D];
            let (mean_g, mean_gx) = (sum_g / count, sum_gx / count);
            for (d, (dx, (&x, &dy))) in dx.iter_mut().zip(x.iter().zip(dy)).enumerate() {
                let x_hat = (x - mean) * inv_std;
                *dx += (self.weight[d] * dy - mean_g - x_hat * mean_gx) * inv_std;
            }
        }
    }

    /// `γ = 1`, `β = 0`, as PyTorch (the scheme is not used).
    fn init<G: Rng + ?Sized>(&mut self, _scheme: Init, _rng: &mut G) {
        self.weight.fill(T::ONE);
        self.bias.fill(T::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        Rng, assert_close, check_f32, check_layer, det_batch, det_matrix, random_matrix, randomize,
    };

    const EPS: u64 = 1e-5f64.to_bits();

    fn gradcheck<const D: usize, const R: usize, const IN: usize>(seed: u64) {
        let mut layer = LayerNorm::<f64, D, R, IN, EPS>::ZERO;
        randomize(&mut layer, seed, 1.0);
        let x = random_matrix::<IN, 3>(seed + 1, 2.0);
        let report = check_layer(&mut layer, &(), &x);
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradcheck::<5, 1, 5>(1);
        gradcheck::<4, 3, 12>(2);
        gradcheck::<2, 2, 4>(3);
        gradcheck::<7, 5, 35>(4);
    }

    /// Before the affine part (`γ = 1`, `β = 0`, from `init`), every row has mean 0 and
    /// (biased) variance `σ²/(σ² + ε)`, i.e. 1 up to `ε`.
    #[test]
    fn rows_are_normalised() {
        let mut layer = LayerNorm::<f64, 6, 4, 24, EPS>::ZERO;
        Layer::<f64, 24, 24>::init(&mut layer, Init::GlorotUniform, &mut Rng(1));
        assert_eq!(layer.weight, SMatrix::<f64, 6, 1>::repeat(1.0));
        assert_eq!(layer.bias, SMatrix::<f64, 6, 1>::ZERO);
        let x = random_matrix::<24, 3>(5, 3.0).add_scalar(1.5);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        for (x, y) in x.as_slice().chunks(6).zip(y.as_slice().chunks(6)) {
            let mean = |v: &[f64]| v.iter().sum::<f64>() / 6.0;
            let var = |v: &[f64]| v.iter().map(|a| (a - mean(v)).powi(2)).sum::<f64>() / 6.0;
            assert!(mean(y).abs() < 1e-15, "{}", mean(y));
            let expected = var(x) / (var(x) + 1e-5);
            assert!((var(y) - expected).abs() < 1e-14, "{} {}", var(y), expected);
        }
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut layer = LayerNorm::<f64, 5, 3, 15, EPS>::ZERO;
        randomize(&mut layer, 11, 1.0);
        let x = random_matrix::<15, 3>(12, 1.0);
        check_f32::<_, LayerNorm<f32, 5, 3, 15, EPS>, 15, 15, 3>(&layer, &x, 2e-5);
    }

    #[test]
    fn training_forward_equals_inference_forward_and_records_the_statistics() {
        let mut layer = LayerNorm::<f64, 4, 2, 8, EPS>::ZERO;
        randomize(&mut layer, 6, 1.0);
        let x = random_matrix::<8, 2>(7, 1.0);
        let (mut y, mut y_train, mut cache) = (SMatrix::ZERO, SMatrix::ZERO, LayerNormCache::ZERO);
        layer.forward(&(), &x, &mut y, &mut []);
        layer.forward_train(&mut (), &x, &mut y_train, &mut cache, &mut []);
        assert_eq!(y, y_train);
        // Row 1 of sample 1: x[4..8, 1].
        let row = &x.as_slice()[12..16];
        let mean = row.iter().sum::<f64>() / 4.0;
        assert!((cache.mean[(1, 1)] - mean).abs() < 1e-15);
    }

    #[test]
    fn batch_equals_single_samples() {
        let mut layer = LayerNorm::<f64, 5, 3, 15, EPS>::ZERO;
        randomize(&mut layer, 8, 1.0);
        let x = random_matrix::<15, 4>(9, 1.0);
        let dy = random_matrix::<15, 4>(10, 1.0);
        let (mut y, mut cache, mut dx, mut grads) = (
            SMatrix::ZERO,
            LayerNormCache::ZERO,
            SMatrix::ZERO,
            LayerNorm::ZERO,
        );
        layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
        layer.backward(&x, &cache, &dy, Some(&mut dx), &mut grads, &mut []);
        let mut single_grads = LayerNorm::ZERO;
        for j in 0..4 {
            let xj: SMatrix<f64, 15, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 15, 1> = dy.column(j).into();
            let (mut yj, mut cachej, mut dxj) =
                (SMatrix::ZERO, LayerNormCache::ZERO, SMatrix::ZERO);
            layer.forward_train(&mut (), &xj, &mut yj, &mut cachej, &mut []);
            layer.backward(
                &xj,
                &cachej,
                &dyj,
                Some(&mut dxj),
                &mut single_grads,
                &mut [],
            );
            assert_eq!(yj.as_slice(), y.column(j).as_slice());
            assert_eq!(dxj.as_slice(), dx.column(j).as_slice());
        }
        assert_close(single_grads.as_slice(), grads.as_slice(), 1e-14);
    }

    /// `forward` against `tests/layers_reference.py` (numpy, PyTorch's equations):
    /// D = 5, R = 3, batch 2, eps 1e-5.
    #[test]
    fn forward_matches_the_numpy_reference() {
        let layer = LayerNorm::<f64, 5, 3, 15, EPS> {
            weight: det_matrix(0.6),
            bias: det_matrix(0.7),
        };
        let x = det_batch::<15, 2>(0.8);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        assert_close(y.as_slice(), &REFERENCE_LAYER_NORM, 1e-13);
    }

    const REFERENCE_LAYER_NORM: [f64; 30] = [
        0.5258705408469965,
        0.5440667161264274,
        0.1691378248662485,
        -0.005566890787651824,
        0.9527467343619334,
        0.39004271735271034,
        -0.2184170289176665,
        -0.505308574415515,
        -0.6553701151014119,
        0.22648919308258794,
        0.03545183977735061,
        0.7582047063938888,
        -0.8940277731274405,
        0.01585633789315294,
        0.24768860624931527,
        0.5894576469618122,
        0.3558797098703864,
        0.2328089335331921,
        -0.13635103915044072,
        0.9405105637207802,
        0.2688246919958397,
        -0.11982250081901835,
        -0.7469785952190676,
        -0.6136367776747012,
        0.08172394244298548,
        0.09469960043527711,
        0.8728347377212666,
        -0.7006201854097913,
        0.12537818889899888,
        0.42364811479852654,
    ];
}

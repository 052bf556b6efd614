//! Positional encodings added to a sequence `[S, D]`: the fixed [`SinusoidalPositions`] and
//! the trained [`LearnedPositions`].

use super::embedding::fill_normal;
use crate::init::Init;
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable};
use core::marker::PhantomData;
use nalgebra::{ComplexField, SMatrix};
use rand_core::Rng;

/// Compile-time size rules.
const fn check(s: usize, d: usize, input: usize) {
    assert!(s >= 1 && d >= 1, "positions: S and D must be at least 1");
    assert!(input == s * d, "positions: IN must be S·D");
}

/// Adds the fixed sinusoidal encoding of Vaswani et al. (2017) to a sequence `[S, D]`
/// (`IN = OUT = S·D`, token `t`'s features at `t·D .. (t + 1)·D`):
///
/// `y[t, d] = x[t, d] + PE[t, d]`, `PE[t, 2i] = sin(t/10000^{2i/D})`,
/// `PE[t, 2i + 1] = cos(t/10000^{2i/D})`
///
/// (for an odd `D` the last feature gets the sine only), positions counted from 0. The
/// encoding of the PyTorch tutorials' `PositionalEncoding` module (without its dropout); it
/// is computed in `f64` and rounded to `T`, at every call (`S·D` sines and cosines per
/// batch). Backward: `∂L/∂x = ∂L/∂y`. No parameters.
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct SinusoidalPositions<T: Real, const S: usize, const D: usize, const IN: usize> {
    _marker: PhantomData<T>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

impl<T: Real, const S: usize, const D: usize, const IN: usize> SinusoidalPositions<T, S, D, IN> {
    /// `PE[t, d]`, in `f64`.
    pub fn encoding(t: usize, d: usize) -> f64 {
        let exponent = (d - d % 2) as f64 / D as f64;
        let angle = t as f64 / ComplexField::powf(10_000.0f64, exponent);
        if d.is_multiple_of(2) {
            ComplexField::sin(angle)
        } else {
            ComplexField::cos(angle)
        }
    }
}

impl<T: Real, const S: usize, const D: usize, const IN: usize> Layer<T, IN, IN>
    for SinusoidalPositions<T, S, D, IN>
{
    const TENSORS: &'static [TensorInfo] = &[];

    type Cache<const B: usize> = ();
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        _scratch: &mut [T],
    ) {
        const { check(S, D, IN) };
        for t in 0..S {
            for d in 0..D {
                let pe = T::of(Self::encoding(t, d));
                let i = t * D + d;
                for j in 0..B {
                    y[(i, j)] = x[(i, j)] + pe;
                }
            }
        }
    }

    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, IN, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check(S, D, IN) };
        if let Some(dx) = dx {
            *dx += dy;
        }
    }
}

/// Adds a trained position vector to each token of a sequence `[S, D]` (`IN = OUT = S·D`):
///
/// `y[t, d] = x[t, d] + W[t, d]`; backward `∂L/∂x = ∂L/∂y`, `∂L/∂W += Σ_samples ∂L/∂y`.
///
/// PyTorch has no module for it; this is GPT-2's and BERT's learned positions, an
/// `nn.Embedding(S, D)` looked up at `arange(S)` and added (`wpe` in GPT-2), or ViT's
/// `nn.Parameter` of shape `(1, S, D)` (load it with the leading 1 squeezed).
///
/// Parameter: `weight` `[S, D]` (column-major `S × D`), initialised from `N(0, 0.02²)` as
/// GPT-2, BERT and ViT do, whatever the network's scheme (PyTorch's own `nn.Embedding`
/// default would be `N(0, 1)`, too large next to unit-scale features; zero would also
/// work, the gradient does not depend on `W`). It is a [`Role::Weight`], so L1/L2
/// regularization applies to it by default.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct LearnedPositions<T: Real, const S: usize, const D: usize, const IN: usize> {
    /// `W`, `[S, D]`: row `t` is added to token `t`.
    pub weight: SMatrix<T, S, D>,
}

/// The standard deviation of [`LearnedPositions`]' initial weights.
pub const LEARNED_POSITIONS_INIT_STD: f64 = 0.02;

impl<T: Real, const S: usize, const D: usize, const IN: usize> Layer<T, IN, IN>
    for LearnedPositions<T, S, D, IN>
{
    const TENSORS: &'static [TensorInfo] = &[TensorInfo {
        name: "weight",
        shape: &[S, D],
        role: Role::Weight,
    }];

    type Cache<const B: usize> = ();
    type State = ();

    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, IN, B>,
        _scratch: &mut [T],
    ) {
        const { check(S, D, IN) };
        for j in 0..B {
            for t in 0..S {
                for d in 0..D {
                    let i = t * D + d;
                    y[(i, j)] = x[(i, j)] + self.weight[(t, d)];
                }
            }
        }
    }

    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, IN, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check(S, D, IN) };
        if let Some(dx) = dx {
            *dx += dy;
        }
        for j in 0..B {
            for t in 0..S {
                for d in 0..D {
                    grads.weight[(t, d)] += dy[(t * D + d, j)];
                }
            }
        }
    }

    /// `W ~ N(0, 0.02²)` ([`LEARNED_POSITIONS_INIT_STD`]; the scheme is not used).
    fn init<G: Rng + ?Sized>(&mut self, _scheme: Init, rng: &mut G) {
        fill_normal(self.weight.as_mut_slice(), LEARNED_POSITIONS_INIT_STD, rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{
        Rng, assert_close, check_f32, check_layer, det_batch, random_matrix, randomize,
    };

    type Sin = SinusoidalPositions<f64, 4, 5, 20>;

    #[test]
    fn sinusoidal_matches_the_numpy_reference() {
        let x = det_batch::<20, 2>(1.5);
        let mut y = SMatrix::ZERO;
        Sin::ZERO.forward(&(), &x, &mut y, &mut []);
        assert_close(y.as_slice(), &REFERENCE_SINUSOIDAL, 1e-15);
    }

    #[test]
    fn sinusoidal_by_hand() {
        // Position 0: sin 0 = 0 on even features, cos 0 = 1 on odd ones.
        assert_eq!(
            [0, 1, 2, 3, 4].map(|d| Sin::encoding(0, d)),
            [0.0, 1.0, 0.0, 1.0, 0.0]
        );
        // Position 3, pair i = 1 of D = 5: angle 3/10000^(2/5).
        let angle = 3.0 / 10000f64.powf(0.4);
        assert_eq!(Sin::encoding(3, 2), angle.sin());
        assert_eq!(Sin::encoding(3, 3), angle.cos());
        // In f32, the same values rounded.
        let mut y = SMatrix::<f32, 20, 1>::ZERO;
        SinusoidalPositions::<f32, 4, 5, 20>::ZERO.forward(&(), &SMatrix::ZERO, &mut y, &mut []);
        assert_eq!(y[17], angle.sin() as f32);
    }

    #[test]
    fn sinusoidal_gradients_pass_through() {
        let mut layer = Sin::ZERO;
        let report = check_layer(&mut layer, &(), &random_matrix::<20, 3>(1, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        assert_eq!(<Sin as Layer<f64, 20, 20>>::TENSORS.len(), 0);
        assert_eq!(<Sin as Params<f64>>::LEN, 0);
    }

    type Learned = LearnedPositions<f64, 3, 4, 12>;

    #[test]
    fn learned_adds_the_rows() {
        let mut layer = Learned::ZERO;
        randomize(&mut layer, 1, 1.0);
        let x = random_matrix::<12, 2>(2, 1.0);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        for j in 0..2 {
            for t in 0..3 {
                for d in 0..4 {
                    assert_eq!(y[(t * 4 + d, j)], x[(t * 4 + d, j)] + layer.weight[(t, d)]);
                }
            }
        }
    }

    #[test]
    fn learned_gradients_match_finite_differences() {
        for seed in 0..3 {
            let mut layer = Learned::ZERO;
            randomize(&mut layer, seed, 1.0);
            let x = random_matrix::<12, 3>(seed + 10, 1.0);
            let report = check_layer(&mut layer, &(), &x);
            assert!(report.max_rel_error < 1e-7, "{report:?}");
        }
    }

    #[test]
    fn learned_batch_equals_single_samples() {
        let mut layer = Learned::ZERO;
        randomize(&mut layer, 3, 1.0);
        let x = random_matrix::<12, 4>(4, 1.0);
        let dy = random_matrix::<12, 4>(5, 1.0);
        let (mut y, mut dx, mut grads) = (SMatrix::ZERO, SMatrix::ZERO, Learned::ZERO);
        layer.forward(&(), &x, &mut y, &mut []);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        let mut single_grads = Learned::ZERO;
        for j in 0..4 {
            let xj: SMatrix<f64, 12, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 12, 1> = dy.column(j).into();
            let (mut yj, mut dxj) = (SMatrix::ZERO, SMatrix::ZERO);
            layer.forward(&(), &xj, &mut yj, &mut []);
            layer.backward(&xj, &(), &dyj, Some(&mut dxj), &mut single_grads, &mut []);
            assert_eq!(yj.as_slice(), y.column(j).as_slice());
            assert_eq!(dxj.as_slice(), dx.column(j).as_slice());
        }
        assert_close(single_grads.as_slice(), grads.as_slice(), 1e-15);
    }

    #[test]
    fn f32_agrees_with_f64() {
        let mut layer = Learned::ZERO;
        randomize(&mut layer, 6, 1.0);
        let x = random_matrix::<12, 2>(7, 1.0);
        check_f32::<_, LearnedPositions<f32, 3, 4, 12>, 12, 12, 2>(&layer, &x, 1e-6);
        check_f32::<_, SinusoidalPositions<f32, 3, 4, 12>, 12, 12, 2>(
            &SinusoidalPositions::<f64, 3, 4, 12>::ZERO,
            &x,
            1e-6,
        );
    }

    #[test]
    fn learned_init_is_small_normal() {
        let mut layer = LearnedPositions::<f64, 100, 50, 5000>::ZERO;
        Layer::<f64, 5000, 5000>::init(&mut layer, Init::GlorotUniform, &mut Rng(4));
        let n = 5000.0;
        let mean = layer.weight.sum() / n;
        let std = (layer.weight.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.002, "{mean}");
        assert!((std / 0.02 - 1.0).abs() < 0.05, "{std}");
    }

    const REFERENCE_SINUSOIDAL: [f64; 40] = [
        0.4987474933020272,
        0.9708129282862099,
        -0.49122630631216624,
        1.1557706817566888,
        0.45108591687814664,
        0.5694604293632116,
        0.1593105139086231,
        0.3953041678859981,
        1.2852829727452042,
        -0.44315255948813603,
        0.7380571175908754,
        0.07176342233634536,
        0.09572780748738914,
        0.49910035462517927,
        0.08450191612262184,
        0.6193079722621188,
        -1.1964562712207154,
        -0.34969922994077507,
        1.3131396418106767,
        0.345453444005464,
        -0.40450938310595325,
        0.7606770407057895,
        0.4661802744330945,
        1.119193435874446,
        -0.49689511037027284,
        0.8503219473606033,
        1.0349166206501488,
        -0.1111914021617631,
        0.5401951971751338,
        0.25534392585783006,
        1.3031500403177407,
        -0.772351286727067,
        -0.25184604960609835,
        1.4327810193837038,
        0.19147654704746625,
        -0.34193887694432923,
        -1.0557281737872188,
        0.5752835381716922,
        0.9340536703981319,
        -0.4818430435446489,
    ];
}

//! Inverted dropout.

use crate::{ConstZero, Layer, Params, Real, Zeroable};
use core::marker::PhantomData;
use nalgebra::SMatrix;
use rand_core::Rng;

/// Inverted dropout, PyTorch's `nn.Dropout(p)` with `p = f64::from_bits(P_BITS)`, on `N`
/// features:
///
/// - training (`forward_train`): `y = m ⊙ x` with a fresh mask `m` whose elements are
///   independently `0` with probability `p` and `1/(1 − p)` otherwise, so that `E[y] = x`;
/// - inference (`forward`): `y = x`;
/// - backward: `∂L/∂x += m ⊙ ∂L/∂y`, with the mask of the training pass (kept in the cache).
///
/// `p = 0` keeps everything (`m = 1`); `p = 1` zeroes everything (`m = 0`, no division by
/// zero). `0 ≤ p ≤ 1` is checked at compile time where the layer is used.
///
/// The masks come from a SplitMix64 generator in the layer's [`DropoutState`], seeded by
/// [`Layer::init_state`] from the network's random number generator: training is
/// reproducible from the seed, and each training pass draws a new mask (element `i` of
/// sample `j` from the `(j·N + i)`-th draw of the pass). No parameters (`Params::LEN = 0`).
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Dropout<T: Real, const N: usize, const P_BITS: u64> {
    _marker: PhantomData<T>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

/// The random number generator of a [`Dropout`] layer: SplitMix64 (Steele, Lea and Flood,
/// 2014), whose whole state is this one `u64`. Every state, zero included, starts a
/// full-period sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, ConstZero, Zeroable)]
#[repr(C)]
pub struct DropoutState {
    /// The generator's state.
    pub rng: u64,
}

impl DropoutState {
    /// The next 64 random bits (SplitMix64).
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform sample in `[0, 1)`, from the top 53 bits of [`next_u64`](Self::next_u64).
    #[inline]
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

impl<T: Real, const N: usize, const P_BITS: u64> Dropout<T, N, P_BITS> {
    /// The drop probability `p`.
    pub const P: f64 = f64::from_bits(P_BITS);

    /// Compile-time check of `p`.
    const fn check() {
        assert!(
            Self::P >= 0.0 && Self::P <= 1.0,
            "Dropout: p must be in [0, 1]"
        );
    }
}

impl<T: Real, const N: usize, const P_BITS: u64> Layer<T, N, N> for Dropout<T, N, P_BITS> {
    /// The mask `m`: `0` or `1/(1 − p)` per element.
    type Cache<const B: usize> = SMatrix<T, N, B>;
    type State = DropoutState;

    #[inline]
    fn forward<const B: usize>(
        &self,
        _state: &DropoutState,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        y.copy_from(x);
    }

    fn forward_train<const B: usize>(
        &self,
        state: &mut DropoutState,
        x: &SMatrix<T, N, B>,
        y: &mut SMatrix<T, N, B>,
        mask: &mut SMatrix<T, N, B>,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        let p = Self::P;
        let kept = if p < 1.0 {
            T::of(1.0 / (1.0 - p))
        } else {
            T::ZERO
        };
        for ((y, &x), mask) in y.iter_mut().zip(x.iter()).zip(mask.iter_mut()) {
            // Dropped with probability P(u < p) = p.
            *mask = if state.next_unit() < p { T::ZERO } else { kept };
            *y = x * *mask;
        }
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, N, B>,
        mask: &SMatrix<T, N, B>,
        dy: &SMatrix<T, N, B>,
        dx: Option<&mut SMatrix<T, N, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { Self::check() };
        let Some(dx) = dx else {
            return;
        };
        for ((dx, &dy), &mask) in dx.iter_mut().zip(dy.iter()).zip(mask.iter()) {
            *dx += dy * mask;
        }
    }

    /// Seeds the generator with 64 bits from `rng`.
    fn init_state<R: Rng + ?Sized>(state: &mut DropoutState, rng: &mut R) {
        state.rng = rng.next_u64();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{Rng, check_layer, random_matrix};

    const P30: u64 = 0.3f64.to_bits();
    type Drop30<const N: usize> = Dropout<f64, N, P30>;

    fn seeded(seed: u64) -> DropoutState {
        let mut state = DropoutState::ZERO;
        Drop30::<1>::init_state(&mut state, &mut Rng(seed));
        state
    }

    #[test]
    fn splitmix64_reference_values() {
        // The first outputs of SplitMix64 from state 0 (Vigna's reference implementation,
        // splitmix64.c, seeded with 0).
        let mut state = DropoutState { rng: 0 };
        assert_eq!(state.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(state.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(state.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn training_drops_a_fraction_p_and_scales_the_rest() {
        // Ten passes of 100 × 20: 20 000 draws (small matrices: test threads have 2 MiB of
        // stack).
        let layer = Drop30::<100>::ZERO;
        let x = SMatrix::<f64, 100, 20>::from_fn(|i, j| 1.0 + (i + j) as f64 * 0.01);
        let mut state = seeded(1);
        let (mut y, mut mask) = (SMatrix::ZERO, SMatrix::ZERO);
        let (mut zeros, mut sum_y) = (0, 0.0);
        let kept = 1.0 / (1.0 - 0.3);
        for _ in 0..10 {
            layer.forward_train(&mut state, &x, &mut y, &mut mask, &mut []);
            zeros += y.iter().filter(|&&v| v == 0.0).count();
            sum_y += y.sum();
            for ((&y, &x), &m) in y.iter().zip(x.iter()).zip(mask.iter()) {
                assert!(m == 0.0 || m == kept, "{m}");
                assert_eq!(y, x * m);
            }
        }
        // Binomial(20 000, 0.3): the fraction's standard deviation is 0.0032.
        let fraction = zeros as f64 / 20_000.0;
        assert!((fraction - 0.3).abs() < 0.015, "{fraction}");
        // Inverted dropout keeps the mean: E[y] = x.
        let ratio = sum_y / (10.0 * x.sum());
        assert!((ratio - 1.0).abs() < 0.02, "{ratio}");
    }

    #[test]
    fn inference_is_the_identity() {
        let layer = Drop30::<7>::ZERO;
        let x = random_matrix::<7, 3>(2, 1.0);
        let mut y = SMatrix::ZERO;
        layer.forward(&seeded(3), &x, &mut y, &mut []);
        assert_eq!(y, x);
    }

    #[test]
    fn reproducible_from_the_seed_and_new_each_pass() {
        let layer = Drop30::<50>::ZERO;
        let x = random_matrix::<50, 4>(4, 1.0);
        let pass = |state: &mut DropoutState| {
            let (mut y, mut mask) = (SMatrix::<f64, 50, 4>::ZERO, SMatrix::ZERO);
            layer.forward_train(state, &x, &mut y, &mut mask, &mut []);
            (y, mask)
        };
        let (mut a, mut b) = (seeded(5), seeded(5));
        let first = pass(&mut a);
        assert_eq!(first, pass(&mut b));
        assert_eq!(a, b);
        // The state moved: the next pass draws another mask.
        let second = pass(&mut a);
        assert_ne!(first.1, second.1);
        // Another seed, another mask.
        assert_ne!(first.1, pass(&mut seeded(6)).1);
    }

    #[test]
    fn p_zero_is_the_identity_and_p_one_zeroes_everything() {
        let x = random_matrix::<20, 3>(7, 1.0);
        let dy = random_matrix::<20, 3>(8, 1.0);
        let (mut y, mut mask, mut dx) = (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
        let none = Dropout::<f64, 20, 0>::ZERO; // 0.0f64.to_bits() == 0
        none.forward_train(&mut seeded(9), &x, &mut y, &mut mask, &mut []);
        assert_eq!(y, x);
        none.backward(
            &x,
            &mask,
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert_eq!(dx, dy);

        const ONE: u64 = 1f64.to_bits();
        let all = Dropout::<f64, 20, ONE>::ZERO;
        all.forward_train(&mut seeded(9), &x, &mut y, &mut mask, &mut []);
        assert!(y.iter().all(|&v| v == 0.0));
        assert!(mask.iter().all(|&m| m == 0.0));
        let mut dx = SMatrix::ZERO;
        all.backward(
            &x,
            &mask,
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert!(dx.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn backward_multiplies_by_the_mask_and_accumulates() {
        let layer = Drop30::<6>::ZERO;
        let x = random_matrix::<6, 2>(10, 1.0);
        let dy = random_matrix::<6, 2>(11, 1.0);
        let (mut y, mut mask) = (SMatrix::ZERO, SMatrix::ZERO);
        layer.forward_train(&mut seeded(12), &x, &mut y, &mut mask, &mut []);
        let start = random_matrix::<6, 2>(13, 1.0);
        let mut dx = start;
        layer.backward(
            &x,
            &mask,
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert_eq!(dx, start + dy.component_mul(&mask));
    }

    #[test]
    fn gradients_match_finite_differences() {
        // check_layer restarts every training pass from the same state: the same mask.
        let mut layer = Drop30::<10>::ZERO;
        let report = check_layer(&mut layer, &seeded(14), &random_matrix::<10, 3>(15, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn no_parameters() {
        assert_eq!(<Drop30<4> as Params<f64>>::LEN, 0);
        assert_eq!(size_of::<Drop30<4>>(), 0);
        assert!(Drop30::<4>::ZERO.as_slice().is_empty());
        assert_eq!(Drop30::<4>::P, 0.3);
    }

    #[test]
    fn f32_uses_the_same_masks() {
        let x = random_matrix::<16, 2>(16, 1.0);
        let (mut y, mut mask) = (SMatrix::ZERO, SMatrix::ZERO);
        let (mut y32, mut mask32) = (SMatrix::<f32, 16, 2>::ZERO, SMatrix::ZERO);
        Drop30::<16>::ZERO.forward_train(&mut seeded(17), &x, &mut y, &mut mask, &mut []);
        Dropout::<f32, 16, P30>::ZERO.forward_train(
            &mut seeded(17),
            &x.cast(),
            &mut y32,
            &mut mask32,
            &mut [],
        );
        assert_eq!(mask.cast::<f32>(), mask32);
    }
}

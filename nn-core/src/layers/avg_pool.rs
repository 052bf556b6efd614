//! Average pooling: [`AvgPool2d`], [`AvgPool1d`] (computed as a 2-d pooling of height 1) and
//! [`GlobalAvgPool`].

use super::geometry::{LiftPool1d, PoolGeometry1d, PoolGeometry2d, check_pool_sizes};
use crate::{ConstZero, Layer, Params, Real, Zeroable};
use core::marker::PhantomData;
use nalgebra::SMatrix;

/// 2-d average pooling, PyTorch's `nn.AvgPool2d((KH, KW), stride=(SH, SW))` (no padding,
/// floor mode), on samples `[C, H, W]` (`IN = C·H·W`) giving `[C, OH, OW]`
/// (`OUT = C·OH·OW`), each channel on its own:
///
/// `y[c, oh, ow] = (1/(KH·KW))·Σ_{kh < KH, kw < KW} x[c, oh·SH + kh, ow·SW + kw]`,
/// `OH = ⌊(H − KH)/SH⌋ + 1`, `OW = ⌊(W − KW)/SW⌋ + 1`.
///
/// Backward: `∂L/∂x[c, oh·SH + kh, ow·SW + kw] += ∂L/∂y[c, oh, ow]/(KH·KW)` (adding where
/// windows overlap). No parameters; `G` is a [`PoolGeometry2dOf`](super::PoolGeometry2dOf).
/// `IN` and `OUT` are checked against it at compile time where the layer is used.
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct AvgPool2d<T: Real, const IN: usize, const OUT: usize, G> {
    _marker: PhantomData<(T, G)>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

/// 1-d average pooling, PyTorch's `nn.AvgPool1d(K, stride=S)` (no padding, floor mode), on
/// samples `[C, L]` (`IN = C·L`) giving `[C, OL]` (`OUT = C·OL`):
///
/// `y[c, o] = (1/K)·Σ_{t < K} x[c, o·S + t]`, `OL = ⌊(L − K)/S⌋ + 1`.
///
/// No parameters; `G` is a [`PoolGeometry1dOf`](super::PoolGeometry1dOf).
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct AvgPool1d<T: Real, const IN: usize, const OUT: usize, G> {
    _marker: PhantomData<(T, G)>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

/// Global average pooling: the mean of each of `C` channels over its `S` positions, on
/// samples `[C, ...]` of `IN = C·S` values (channel `c` at `c·S .. (c + 1)·S`) giving `[C]`:
///
/// `y[c] = (1/S)·Σ_s x[c·S + s]`; backward `∂L/∂x[c·S + s] += ∂L/∂y[c]/S`.
///
/// PyTorch's `nn.AdaptiveAvgPool2d(1)` followed by `flatten(1)` (or `x.mean(dim=(2, 3))`);
/// for `[C, L]`, `nn.AdaptiveAvgPool1d(1)`. No parameters. `IN = C·S` is checked at compile
/// time where the layer is used.
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct GlobalAvgPool<T: Real, const C: usize, const S: usize, const IN: usize> {
    _marker: PhantomData<T>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

impl<T: Real, const IN: usize, const OUT: usize, G: PoolGeometry2d> Layer<T, IN, OUT>
    for AvgPool2d<T, IN, OUT, G>
{
    type Cache<const B: usize> = ();
    type State = ();

    #[inline]
    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<G, IN, OUT>() };
        forward_batch::<T, G, IN, OUT, B>(x, y);
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<G, IN, OUT>() };
        if let Some(dx) = dx {
            backward_batch::<T, G, IN, OUT, B>(dy, dx);
        }
    }
}

impl<T: Real, const IN: usize, const OUT: usize, G: PoolGeometry1d> Layer<T, IN, OUT>
    for AvgPool1d<T, IN, OUT, G>
{
    type Cache<const B: usize> = ();
    type State = ();

    #[inline]
    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<LiftPool1d<G>, IN, OUT>() };
        forward_batch::<T, LiftPool1d<G>, IN, OUT, B>(x, y);
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<LiftPool1d<G>, IN, OUT>() };
        if let Some(dx) = dx {
            backward_batch::<T, LiftPool1d<G>, IN, OUT, B>(dy, dx);
        }
    }
}

impl<T: Real, const C: usize, const S: usize, const IN: usize> Layer<T, IN, C>
    for GlobalAvgPool<T, C, S, IN>
{
    type Cache<const B: usize> = ();
    type State = ();

    #[inline]
    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, C, B>,
        _scratch: &mut [T],
    ) {
        const {
            assert!(
                C > 0 && S > 0 && IN == C * S,
                "GlobalAvgPool: IN must be C·S"
            )
        };
        let count = T::of(S as f64);
        for (x, y) in x.as_slice().chunks_exact(S).zip(y.as_mut_slice()) {
            *y = x.iter().fold(T::ZERO, |sum, &v| sum + v) / count;
        }
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, C, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const {
            assert!(
                C > 0 && S > 0 && IN == C * S,
                "GlobalAvgPool: IN must be C·S"
            )
        };
        let Some(dx) = dx else {
            return;
        };
        let count = T::of(S as f64);
        for (dx, &dy) in dx.as_mut_slice().chunks_exact_mut(S).zip(dy.as_slice()) {
            let share = dy / count;
            for dx in dx {
                *dx += share;
            }
        }
    }
}

/// Outputs of a row whose gradient shares the backward pass keeps on the stack at a time.
const CHUNK: usize = 64;

/// Whether every window of an output row lies inside its own `SW` input values (`KW ≤ SW`,
/// and the row's `OW` windows within `OW·SW ≤ W` values): then the passes walk the input row
/// in `chunks_exact(SW)`, one chunk per output, which vectorises better than strided reads.
const fn windows_in_chunks<G: PoolGeometry2d>() -> bool {
    G::KW <= G::SW && G::OW * G::SW <= G::W
}

/// `y = avgpool(x)` for a batch, one output row at a time: each input row of the windows is
/// swept across the row's windows (in chunks of `SW` values, or, for overlapping windows,
/// once per window column), and the sums are divided by `KH·KW`. Each output adds its
/// window's values in the order of the definition, so the results are those of the plain loop
/// over each window, bit for bit.
fn forward_batch<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
) {
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let count = T::of((G::KH * G::KW) as f64);
    let x_planes = x.as_slice().chunks_exact(in_plane);
    for (x, y) in x_planes.zip(y.as_mut_slice().chunks_exact_mut(out_plane)) {
        for (oh, out) in y.chunks_exact_mut(G::OW).enumerate() {
            // The KH input rows of this output row.
            let rows = &x[oh * G::SH * G::W..][..G::KH * G::W];
            if windows_in_chunks::<G>() {
                // One sweep per input row: the first starts the sums from zero, the last
                // divides them.
                let sum =
                    |start: T, window: &[T]| window[..G::KW].iter().fold(start, |sum, &v| sum + v);
                for (kh, row) in rows.chunks_exact(G::W).enumerate() {
                    let windows = out.iter_mut().zip(row.chunks_exact(G::SW));
                    match (kh == 0, kh == G::KH - 1) {
                        (true, true) => windows.for_each(|(o, w)| *o = sum(T::ZERO, w) / count),
                        (true, false) => windows.for_each(|(o, w)| *o = sum(T::ZERO, w)),
                        (false, true) => windows.for_each(|(o, w)| *o = sum(*o, w) / count),
                        (false, false) => windows.for_each(|(o, w)| *o = sum(*o, w)),
                    }
                }
                continue;
            }
            out.fill(T::ZERO);
            for row in rows.chunks_exact(G::W) {
                for kw in 0..G::KW {
                    for (o, &v) in out.iter_mut().zip(row[kw..].iter().step_by(G::SW)) {
                        *o += v;
                    }
                }
            }
            for o in out {
                *o /= count;
            }
        }
    }
}

/// Adds `∂L/∂x`: each output's gradient spread evenly over its window, one output row at a
/// time (its shares `∂L/∂y/(KH·KW)` on the stack, [`CHUNK`] at a time), swept across the
/// row's windows for each window element. An input value shared by several windows gets
/// their shares in the order of the outputs (as the plain loop over outputs and windows adds
/// them: the window columns are swept from the last, `kw = KW − 1`, to the first), so the
/// results are that loop's, bit for bit.
fn backward_batch<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    dy: &SMatrix<T, OUT, B>,
    dx: &mut SMatrix<T, IN, B>,
) {
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let count = T::of((G::KH * G::KW) as f64);
    let mut shares = [T::ZERO; CHUNK];
    let dy_planes = dy.as_slice().chunks_exact(out_plane);
    for (dy, dx) in dy_planes.zip(dx.as_mut_slice().chunks_exact_mut(in_plane)) {
        for (oh, dy) in dy.chunks_exact(G::OW).enumerate() {
            let rows = &mut dx[oh * G::SH * G::W..][..G::KH * G::W];
            for (first, dy) in (0..).step_by(CHUNK).zip(dy.chunks(CHUNK)) {
                let shares = &mut shares[..dy.len()];
                for (share, &d) in shares.iter_mut().zip(dy) {
                    *share = d / count;
                }
                for row in rows.chunks_exact_mut(G::W) {
                    let row = &mut row[first * G::SW..];
                    if windows_in_chunks::<G>() {
                        // Windows do not overlap along the row.
                        for (&share, window) in shares.iter().zip(row.chunks_exact_mut(G::SW)) {
                            for v in &mut window[..G::KW] {
                                *v += share;
                            }
                        }
                    } else {
                        for kw in (0..G::KW).rev() {
                            let values = row[kw..].iter_mut().step_by(G::SW);
                            for (&share, v) in shares.iter().zip(values) {
                                *v += share;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::geometry::{PoolGeometry1dOf, PoolGeometry2dOf};
    use crate::test_util::{check_layer, max_diff, random_matrix};
    use crate::{ConstZero, Params};

    /// The naive average pooling of one sample, from the definition.
    fn naive<G: PoolGeometry2d, const OUT: usize>(x: &[f64]) -> [f64; OUT] {
        let mut y = [0.0; OUT];
        for c in 0..G::C {
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let mut sum = 0.0;
                    for kh in 0..G::KH {
                        for kw in 0..G::KW {
                            sum += x[(c * G::H + oh * G::SH + kh) * G::W + ow * G::SW + kw];
                        }
                    }
                    y[(c * G::OH + oh) * G::OW + ow] = sum / (G::KH * G::KW) as f64;
                }
            }
        }
        y
    }

    fn agrees_with_naive<G: PoolGeometry2d, const IN: usize, const OUT: usize>(seed: u64) {
        let x = random_matrix::<IN, 2>(seed, 1.0);
        let mut y = SMatrix::<f64, OUT, 2>::ZERO;
        AvgPool2d::<f64, IN, OUT, G>::ZERO.forward(&(), &x, &mut y, &mut []);
        for j in 0..2 {
            let expected = naive::<G, OUT>(x.column(j).as_slice());
            assert!(max_diff(y.column(j).as_slice(), &expected) < 1e-15);
        }
    }

    #[test]
    fn hand_worked_example() {
        // One 4×4 channel, 2×2 windows, stride 2: the mean of each quarter.
        type G = PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>;
        #[rustfmt::skip]
        let x = SMatrix::<f64, 16, 1>::from_column_slice(&[
            1.0, 5.0, 2.0, 0.0,
            3.0, 4.0, 8.0, 1.0,
            0.0, 2.0, 6.0, 7.0,
            9.0, 1.0, 3.0, 5.0,
        ]);
        let layer = AvgPool2d::<f64, 16, 4, G>::ZERO;
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        // (1+5+3+4)/4, (2+0+8+1)/4, (0+2+9+1)/4, (6+7+3+5)/4
        assert_eq!(y.as_slice(), &[3.25, 2.75, 3.0, 5.25]);
        let dy = SMatrix::<f64, 4, 1>::from_column_slice(&[4.0, 8.0, -4.0, 2.0]);
        let mut dx = SMatrix::<f64, 16, 1>::ZERO;
        layer.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        #[rustfmt::skip]
        let expected = [
            1.0, 1.0, 2.0, 2.0,
            1.0, 1.0, 2.0, 2.0,
            -1.0, -1.0, 0.5, 0.5,
            -1.0, -1.0, 0.5, 0.5,
        ];
        assert_eq!(dx.as_slice(), &expected);
    }

    #[test]
    fn overlapping_windows_add_their_shares() {
        // One 3×3 channel, 2×2 windows, stride 1: the centre is in all four windows.
        type G = PoolGeometry2dOf<1, 3, 3, 2, 2, 1, 1>;
        let layer = AvgPool2d::<f64, 9, 4, G>::ZERO;
        let x = SMatrix::<f64, 9, 1>::from_fn(|i, _| i as f64);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        // (0+1+3+4)/4 = 2, (1+2+4+5)/4 = 3, (3+4+6+7)/4 = 5, (4+5+7+8)/4 = 6
        assert_eq!(y.as_slice(), &[2.0, 3.0, 5.0, 6.0]);
        let mut dx = SMatrix::<f64, 9, 1>::ZERO;
        layer.backward(
            &x,
            &(),
            &SMatrix::repeat(1.0),
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert_eq!(
            dx.as_slice(),
            &[0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]
        );
    }

    #[test]
    fn matches_naive_pooling_for_many_geometries() {
        agrees_with_naive::<PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>, 50, 18>(1);
        agrees_with_naive::<PoolGeometry2dOf<3, 5, 7, 2, 2, 2, 2>, 105, 18>(2);
        agrees_with_naive::<PoolGeometry2dOf<2, 6, 7, 3, 2, 1, 3>, 84, 16>(3);
        agrees_with_naive::<PoolGeometry2dOf<4, 3, 3, 3, 3, 3, 3>, 36, 4>(4);
    }

    #[test]
    fn one_d_hand_worked() {
        // Two channels of 5, window 2, stride 2: OL = 2 (the last element is not reached).
        type G = PoolGeometry1dOf<2, 5, 2, 2>;
        let layer = AvgPool1d::<f64, 10, 4, G>::ZERO;
        let x = SMatrix::<f64, 10, 1>::from_fn(|i, _| (i * i) as f64);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        // (0+1)/2, (4+9)/2; (25+36)/2, (49+64)/2
        assert_eq!(y.as_slice(), &[0.5, 6.5, 30.5, 56.5]);
        let mut dx = SMatrix::<f64, 10, 1>::ZERO;
        let dy = SMatrix::<f64, 4, 1>::from_column_slice(&[2.0, 4.0, 6.0, 8.0]);
        layer.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert_eq!(
            dx.as_slice(),
            &[1.0, 1.0, 2.0, 2.0, 0.0, 3.0, 3.0, 4.0, 4.0, 0.0]
        );
    }

    #[test]
    fn global_average_hand_worked() {
        // Two channels of 2×2 (S = 4), a batch of two.
        let layer = GlobalAvgPool::<f64, 2, 4, 8>::ZERO;
        let x = SMatrix::<f64, 8, 2>::from_fn(|i, j| (i + 10 * j) as f64);
        let mut y = SMatrix::<f64, 2, 2>::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        // (0+1+2+3)/4, (4+5+6+7)/4; then +10 each
        assert_eq!(y.as_slice(), &[1.5, 5.5, 11.5, 15.5]);
        let dy = SMatrix::<f64, 2, 2>::from_column_slice(&[4.0, -8.0, 1.0, 2.0]);
        let mut dx = SMatrix::<f64, 8, 2>::ZERO;
        layer.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert_eq!(
            dx.as_slice(),
            &[
                1.0, 1.0, 1.0, 1.0, -2.0, -2.0, -2.0, -2.0, 0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5,
                0.5
            ]
        );
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut layer = AvgPool2d::<f64, 84, 16, PoolGeometry2dOf<2, 6, 7, 3, 2, 1, 3>>::ZERO;
        let report = check_layer(&mut layer, &(), &random_matrix::<84, 2>(5, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        let mut layer = AvgPool1d::<f64, 14, 6, PoolGeometry1dOf<2, 7, 3, 2>>::ZERO;
        let report = check_layer(&mut layer, &(), &random_matrix::<14, 3>(6, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        let mut layer = GlobalAvgPool::<f64, 3, 5, 15>::ZERO;
        let report = check_layer(&mut layer, &(), &random_matrix::<15, 3>(7, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn batch_equals_single_samples() {
        type L = AvgPool2d<f64, 50, 18, PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>>;
        let x = random_matrix::<50, 3>(8, 1.0);
        let dy = random_matrix::<18, 3>(9, 1.0);
        let (mut y, mut dx) = (SMatrix::ZERO, SMatrix::ZERO);
        L::ZERO.forward(&(), &x, &mut y, &mut []);
        L::ZERO.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        for j in 0..3 {
            let xj: SMatrix<f64, 50, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 18, 1> = dy.column(j).into();
            let (mut yj, mut dxj) = (SMatrix::ZERO, SMatrix::ZERO);
            L::ZERO.forward(&(), &xj, &mut yj, &mut []);
            L::ZERO.backward(
                &xj,
                &(),
                &dyj,
                Some(&mut dxj),
                &mut Default::default(),
                &mut [],
            );
            assert_eq!(yj, y.column(j));
            assert_eq!(dxj, dx.column(j));
        }
    }

    #[test]
    fn no_parameters() {
        type L = AvgPool1d<f64, 10, 4, PoolGeometry1dOf<2, 5, 2, 2>>;
        assert_eq!(<L as Params<f64>>::LEN, 0);
        assert_eq!(size_of::<L>(), 0);
        assert_eq!(align_of::<L>(), align_of::<f64>());
        assert!(L::ZERO.as_slice().is_empty());
        assert_eq!(<GlobalAvgPool<f32, 2, 4, 8> as Params<f32>>::LEN, 0);
        assert!(GlobalAvgPool::<f32, 2, 4, 8>::ZERO.as_slice().is_empty());
    }

    #[test]
    fn f32_agrees_with_f64() {
        type G = PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>;
        let x = random_matrix::<50, 2>(10, 1.0);
        let (mut y, mut y32) = (SMatrix::<f64, 18, 2>::ZERO, SMatrix::<f32, 18, 2>::ZERO);
        AvgPool2d::<f64, 50, 18, G>::ZERO.forward(&(), &x, &mut y, &mut []);
        AvgPool2d::<f32, 50, 18, G>::ZERO.forward(&(), &x.cast(), &mut y32, &mut []);
        assert!((y32.cast::<f64>() - y).amax() < 1e-6);
    }

    /// `∂L/∂x` of one sample from the definition: for each output in order, its share added to
    /// each element of its window in row-major order (onto `dx`'s values).
    fn naive_backward<G: PoolGeometry2d, const IN: usize>(dy: &[f64], dx: &mut [f64]) {
        for c in 0..G::C {
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let share = dy[(c * G::OH + oh) * G::OW + ow] / (G::KH * G::KW) as f64;
                    for kh in 0..G::KH {
                        for kw in 0..G::KW {
                            dx[(c * G::H + oh * G::SH + kh) * G::W + ow * G::SW + kw] += share;
                        }
                    }
                }
            }
        }
    }

    /// Forward and backward equal the plain loops of the definition bit for bit (the same
    /// sums in the same order), for a batch of `B`.
    fn equals_naive_bit_for_bit<
        G: PoolGeometry2d,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        let layer = AvgPool2d::<f64, IN, OUT, G>::ZERO;
        let x = random_matrix::<IN, B>(seed, 1.0);
        let dy = random_matrix::<OUT, B>(seed + 1, 1.0);
        let start = random_matrix::<IN, B>(seed + 2, 1.0);
        let (mut y, mut dx) = (SMatrix::<f64, OUT, B>::ZERO, start);
        layer.forward(&(), &x, &mut y, &mut []);
        let mut grads = AvgPool2d::ZERO;
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        for j in 0..B {
            let expected = naive::<G, OUT>(x.column(j).as_slice());
            assert_eq!(y.column(j).as_slice(), &expected, "y, sample {j}");
            let mut expected = [0.0; IN];
            expected.copy_from_slice(start.column(j).as_slice());
            naive_backward::<G, IN>(dy.column(j).as_slice(), &mut expected);
            assert_eq!(dx.column(j).as_slice(), &expected, "dx, sample {j}");
        }
    }

    /// Geometries of both paths (windows within chunks of `SW` values, strided sweeps), with
    /// overlapping windows along either axis, gaps between windows, unused last columns and
    /// rows, and rows longer than a chunk of shares.
    #[test]
    fn equals_the_definition_bit_for_bit() {
        // KW = SW, W = OW·SW: chunks.
        equals_naive_bit_for_bit::<PoolGeometry2dOf<3, 6, 8, 2, 2, 2, 2>, 144, 36, 1>(40);
        // An unused last column and row (7 × 7 by 2 × 2): chunks.
        equals_naive_bit_for_bit::<PoolGeometry2dOf<2, 7, 7, 2, 2, 2, 2>, 98, 18, 3>(41);
        // Gaps between windows (KW < SW): chunks; KH > SH: rows overlap.
        equals_naive_bit_for_bit::<PoolGeometry2dOf<2, 7, 9, 3, 2, 2, 3>, 126, 18, 2>(42);
        // KW = 1, SW = 2 with OW·SW > W: strided.
        equals_naive_bit_for_bit::<PoolGeometry2dOf<1, 5, 5, 1, 1, 2, 2>, 25, 9, 2>(43);
        // Overlapping windows along both axes: strided.
        equals_naive_bit_for_bit::<PoolGeometry2dOf<2, 5, 6, 3, 3, 1, 1>, 60, 24, 3>(44);
        equals_naive_bit_for_bit::<PoolGeometry2dOf<1, 6, 9, 2, 4, 1, 3>, 54, 10, 1>(45);
        // Rows of 70 and 68 outputs: two chunks of shares.
        equals_naive_bit_for_bit::<PoolGeometry2dOf<1, 4, 140, 2, 2, 2, 2>, 560, 140, 2>(46);
        equals_naive_bit_for_bit::<PoolGeometry2dOf<1, 3, 70, 2, 3, 1, 1>, 210, 136, 2>(47);
        // 1-d pooling is 2-d of height 1.
        equals_naive_bit_for_bit::<LiftPool1d<PoolGeometry1dOf<3, 11, 3, 2>>, 33, 15, 2>(48);
    }
}

//! Max pooling: [`MaxPool2d`] and [`MaxPool1d`] (computed as a 2-d pooling of height 1).

use super::geometry::{LiftPool1d, PoolGeometry1d, PoolGeometry2d, check_pool_sizes};
use crate::{ConstZero, Layer, Params, Real, Zeroable};
use core::marker::PhantomData;
use nalgebra::SMatrix;

/// 2-d max pooling, PyTorch's `nn.MaxPool2d((KH, KW), stride=(SH, SW))` (no padding,
/// dilation 1, floor mode), on samples `[C, H, W]` (`IN = C·H·W`) giving `[C, OH, OW]`
/// (`OUT = C·OH·OW`), each channel on its own:
///
/// `y[c, oh, ow] = max_{kh < KH, kw < KW} x[c, oh·SH + kh, ow·SW + kw]`,
/// `OH = ⌊(H − KH)/SH⌋ + 1`, `OW = ⌊(W − KW)/SW⌋ + 1`.
///
/// Backward routes each `∂L/∂y[c, oh, ow]` to the arg-max of its window (adding where
/// windows overlap); on ties, to the first maximum in row-major window order, as PyTorch. A
/// NaN in a window makes its output NaN, as PyTorch. The arg-max is recomputed from `x` in
/// `backward` (no cache).
///
/// No parameters (`Params::LEN = 0`); `G` is a
/// [`PoolGeometry2dOf`](super::PoolGeometry2dOf). `IN` and `OUT` are checked against it at
/// compile time where the layer is used.
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct MaxPool2d<T: Real, const IN: usize, const OUT: usize, G> {
    _marker: PhantomData<(T, G)>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

/// 1-d max pooling, PyTorch's `nn.MaxPool1d(K, stride=S)` (no padding, floor mode), on
/// samples `[C, L]` (`IN = C·L`) giving `[C, OL]` (`OUT = C·OL`):
///
/// `y[c, o] = max_{t < K} x[c, o·S + t]`, `OL = ⌊(L − K)/S⌋ + 1`.
///
/// Backward routes the gradient to the first maximum of each window, as PyTorch. No
/// parameters; `G` is a [`PoolGeometry1dOf`](super::PoolGeometry1dOf).
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct MaxPool1d<T: Real, const IN: usize, const OUT: usize, G> {
    _marker: PhantomData<(T, G)>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

impl<T: Real, const IN: usize, const OUT: usize, G: PoolGeometry2d> Layer<T, IN, OUT>
    for MaxPool2d<T, IN, OUT, G>
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
        x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<G, IN, OUT>() };
        if let Some(dx) = dx {
            backward_batch::<T, G, IN, OUT, B>(x, dy, dx);
        }
    }
}

impl<T: Real, const IN: usize, const OUT: usize, G: PoolGeometry1d> Layer<T, IN, OUT>
    for MaxPool1d<T, IN, OUT, G>
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
        x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<LiftPool1d<G>, IN, OUT>() };
        if let Some(dx) = dx {
            backward_batch::<T, LiftPool1d<G>, IN, OUT, B>(x, dy, dx);
        }
    }
}

/// Whether `value` replaces `best` as a window's maximum, PyTorch's rule: when it is larger
/// or NaN. Scanning a window in row-major order from its first element, this keeps the first
/// maximum, or the last NaN if there is one (whose value, NaN, is the output). Written to
/// compile to a compare and a select, not a branch (which mispredicts on random data).
#[inline(always)]
fn replaces<T: Real>(value: T, best: T) -> bool {
    #[allow(clippy::eq_op)]
    let nan = value != value;
    (value > best) | nan
}

/// Outputs of a row whose arg-maxes the backward pass keeps on the stack at a time.
const CHUNK: usize = 64;

/// `y = maxpool(x)` for a batch, one output row at a time: the row starts as the first
/// element of each window, then each other window element (row-major order) is swept across
/// the row's windows, so that the inner loop is a branch-free select over the outputs.
///
/// Compiled for AVX-512 where the CPU has it (the same selects: the same results).
fn forward_batch<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { wide::forward_batch::<T, G, IN, OUT, B>(x, y) };
    }
    forward_loops::<T, G, IN, OUT, B>(x, y);
}

/// [`forward_batch`]'s loops.
#[inline(always)]
fn forward_loops<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
) {
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let x_planes = x.as_slice().chunks_exact(in_plane);
    for (x, y) in x_planes.zip(y.as_mut_slice().chunks_exact_mut(out_plane)) {
        for (oh, out) in y.chunks_exact_mut(G::OW).enumerate() {
            // The KH input rows of this output row.
            let rows = &x[oh * G::SH * G::W..(oh * G::SH + G::KH) * G::W];
            for (o, &v) in out.iter_mut().zip(rows.iter().step_by(G::SW)) {
                *o = v;
            }
            for kh in 0..G::KH {
                let row = &rows[kh * G::W..(kh + 1) * G::W];
                for kw in (kh == 0) as usize..G::KW {
                    for (o, &v) in out.iter_mut().zip(row[kw..].iter().step_by(G::SW)) {
                        // Stored unconditionally: a select, not a branch.
                        *o = if replaces(v, *o) { v } else { *o };
                    }
                }
            }
        }
    }
}

/// Adds `∂L/∂x`: each output's gradient to its window's arg-max, recomputed as the forward
/// pass does (the same sweeps, with the window element `kh·KW + kw` of each maximum kept
/// beside it), a row of outputs at a time, or [`CHUNK`] of them in longer rows (on the
/// stack).
///
/// Compiled for AVX-512 where the CPU has it (the same selects: the same results).
fn backward_batch<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    dy: &SMatrix<T, OUT, B>,
    dx: &mut SMatrix<T, IN, B>,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { wide::backward_batch::<T, G, IN, OUT, B>(x, dy, dx) };
    }
    backward_loops::<T, G, IN, OUT, B>(x, dy, dx);
}

/// The pooling passes compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::*;

    #[target_feature(enable = "avx512f")]
    pub(super) fn forward_batch<
        T: Real,
        G: PoolGeometry2d,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
    ) {
        super::forward_loops::<T, G, IN, OUT, B>(x, y);
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn backward_batch<
        T: Real,
        G: PoolGeometry2d,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        x: &SMatrix<T, IN, B>,
        dy: &SMatrix<T, OUT, B>,
        dx: &mut SMatrix<T, IN, B>,
    ) {
        super::backward_loops::<T, G, IN, OUT, B>(x, dy, dx);
    }
}

/// [`backward_batch`]'s loops.
#[inline(always)]
fn backward_loops<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    dy: &SMatrix<T, OUT, B>,
    dx: &mut SMatrix<T, IN, B>,
) {
    const {
        assert!(
            G::KH * G::KW <= 1 << 24,
            "max pooling: a window over 2²⁴ values (their indices are kept as floats)"
        )
    };
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let planes = x.as_slice().chunks_exact(in_plane);
    let dy_planes = dy.as_slice().chunks_exact(out_plane);
    let mut best = [T::ZERO; CHUNK];
    let mut element = [T::ZERO; CHUNK];
    for ((x, dy), dx) in planes
        .zip(dy_planes)
        .zip(dx.as_mut_slice().chunks_exact_mut(in_plane))
    {
        for (oh, dy) in dy.chunks_exact(G::OW).enumerate() {
            let top = oh * G::SH * G::W;
            if G::OW <= CHUNK {
                // The whole row at once: a constant trip count for the compiler.
                backward_outputs::<T, G>(
                    x,
                    dy,
                    dx,
                    top,
                    0,
                    &mut best[..G::OW],
                    &mut element[..G::OW],
                );
            } else {
                for (c, dy) in dy.chunks(CHUNK).enumerate() {
                    let n = dy.len();
                    let (best, element) = (&mut best[..n], &mut element[..n]);
                    backward_outputs::<T, G>(x, dy, dx, top, c * CHUNK, best, element);
                }
            }
        }
    }
}

/// The backward pass of the outputs `first..first + dy.len()` of the output row whose
/// windows start at plane offset `top`, with `best` and `element` (as long as `dy`) to keep
/// each window's maximum and its element `kh·KW + kw` (as a `T`, exact below 2²⁴: selects on
/// one type vectorise).
#[inline(always)]
fn backward_outputs<T: Real, G: PoolGeometry2d>(
    x: &[T],
    dy: &[T],
    dx: &mut [T],
    top: usize,
    first: usize,
    best: &mut [T],
    element: &mut [T],
) {
    // The KH input rows of this output row, from the first window's left column.
    let left = top + first * G::SW;
    for (best, &v) in best.iter_mut().zip(x[left..].iter().step_by(G::SW)) {
        *best = v;
    }
    element.fill(T::ZERO);
    for kh in 0..G::KH {
        for kw in (kh == 0) as usize..G::KW {
            let code = T::of((kh * G::KW + kw) as f64);
            let values = x[left + kh * G::W + kw..].iter().step_by(G::SW);
            for ((best, element), &v) in best.iter_mut().zip(element.iter_mut()).zip(values) {
                // Stored unconditionally: selects on values of one type, which the compiler
                // vectorises (a branch would mispredict on random data).
                let replace = replaces(v, *best);
                *best = if replace { v } else { *best };
                *element = if replace { code } else { *element };
            }
        }
    }
    for (i, (&element, &d)) in element.iter().zip(dy).enumerate() {
        let element = element.to_f64() as usize;
        let (kh, kw) = (element / G::KW, element % G::KW);
        dx[left + kh * G::W + i * G::SW + kw] += d;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::geometry::{PoolGeometry1dOf, PoolGeometry2dOf};
    use crate::test_util::{check_layer, max_diff, random_matrix};
    use crate::{ConstZero, Params};

    /// The naive max pooling of one sample, from the definition, with the arg-max (first
    /// maximum in row-major window order) of each output.
    fn naive<G: PoolGeometry2d, const IN: usize, const OUT: usize>(
        x: &[f64],
    ) -> ([f64; OUT], [usize; OUT]) {
        let (mut y, mut arg) = ([0.0; OUT], [0; OUT]);
        for c in 0..G::C {
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let o = (c * G::OH + oh) * G::OW + ow;
                    let mut best: Option<(usize, f64)> = None;
                    for kh in 0..G::KH {
                        for kw in 0..G::KW {
                            let i = (c * G::H + oh * G::SH + kh) * G::W + ow * G::SW + kw;
                            if best.is_none_or(|(_, b)| x[i] > b) {
                                best = Some((i, x[i]));
                            }
                        }
                    }
                    (arg[o], y[o]) = best.unwrap();
                }
            }
        }
        (y, arg)
    }

    fn agrees_with_naive<G: PoolGeometry2d, const IN: usize, const OUT: usize>(seed: u64) {
        let layer = MaxPool2d::<f64, IN, OUT, G>::ZERO;
        let x = random_matrix::<IN, 3>(seed, 1.0);
        let dy = random_matrix::<OUT, 3>(seed + 1, 1.0);
        let (mut y, mut dx) = (SMatrix::<f64, OUT, 3>::ZERO, SMatrix::<f64, IN, 3>::ZERO);
        layer.forward(&(), &x, &mut y, &mut []);
        let mut grads = MaxPool2d::ZERO;
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        for j in 0..3 {
            let (expected, arg) = naive::<G, IN, OUT>(x.column(j).as_slice());
            assert_eq!(y.column(j).as_slice(), &expected);
            let mut expected_dx = [0.0; IN];
            for (o, &i) in arg.iter().enumerate() {
                expected_dx[i] += dy[(o, j)];
            }
            assert!(max_diff(dx.column(j).as_slice(), &expected_dx) < 1e-15);
        }
    }

    #[test]
    fn hand_worked_example() {
        // One 4×4 channel, 2×2 windows, stride 2.
        type G = PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>;
        #[rustfmt::skip]
        let x = SMatrix::<f64, 16, 1>::from_column_slice(&[
            1.0, 5.0, 2.0, 0.0,
            3.0, 4.0, 8.0, 1.0,
            0.0, 2.0, 6.0, 7.0,
            9.0, 1.0, 3.0, 5.0,
        ]);
        let layer = MaxPool2d::<f64, 16, 4, G>::ZERO;
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        assert_eq!(y.as_slice(), &[5.0, 8.0, 9.0, 7.0]);
        // The gradient goes to the maxima: 5 at (0, 1), 8 at (1, 2), 9 at (3, 0), 7 at (2, 3).
        let dy = SMatrix::<f64, 4, 1>::from_column_slice(&[1.0, 2.0, 3.0, 4.0]);
        let mut dx = SMatrix::<f64, 16, 1>::ZERO;
        layer.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        let mut expected = [0.0; 16];
        (expected[1], expected[6], expected[12], expected[11]) = (1.0, 2.0, 3.0, 4.0);
        assert_eq!(dx.as_slice(), &expected);
    }

    #[test]
    fn ties_go_to_the_first_maximum_and_nan_propagates() {
        // Window 1: all equal, the gradient goes to its first element (row-major). Window 2:
        // maximum 3 at (0, 3) and (1, 2): the first in row-major order is (0, 3).
        type G = PoolGeometry2dOf<1, 2, 4, 2, 2, 2, 2>;
        let layer = MaxPool2d::<f64, 8, 2, G>::ZERO;
        let x = SMatrix::<f64, 8, 1>::from_column_slice(&[2.0, 2.0, 1.0, 3.0, 2.0, 2.0, 3.0, 0.0]);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        assert_eq!(y.as_slice(), &[2.0, 3.0]);
        let mut dx = SMatrix::<f64, 8, 1>::ZERO;
        layer.backward(
            &x,
            &(),
            &SMatrix::repeat(1.0),
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        assert_eq!(dx.as_slice(), &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);

        let mut x = x;
        x[5] = f64::NAN;
        layer.forward(&(), &x, &mut y, &mut []);
        assert!(y[0].is_nan());
        assert_eq!(y[1], 3.0);
    }

    /// On the baseline loops too (they run where the CPU has no AVX-512).
    #[test]
    fn matches_naive_pooling_for_many_geometries() {
        matches_naive_pooling_for_many_geometries_here();
        crate::kernels::on_the_baseline(matches_naive_pooling_for_many_geometries_here);
    }

    fn matches_naive_pooling_for_many_geometries_here() {
        // <C, H, W, KH, KW, SH, SW>, IN, OUT.
        agrees_with_naive::<PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>, 16, 4>(1);
        // overlapping windows: gradients add up on shared maxima
        agrees_with_naive::<PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>, 50, 18>(2);
        // rows and columns the windows never reach (floor mode)
        agrees_with_naive::<PoolGeometry2dOf<3, 5, 7, 2, 2, 2, 2>, 105, 18>(3);
        // rectangular windows and strides
        agrees_with_naive::<PoolGeometry2dOf<2, 6, 7, 3, 2, 1, 3>, 84, 16>(4);
        // a window over the whole plane
        agrees_with_naive::<PoolGeometry2dOf<4, 3, 3, 3, 3, 3, 3>, 36, 4>(5);
        // rows of more outputs than the backward pass keeps at a time (74 = 64 + 10, and
        // 130 = 2·64 + 2, overlapping)
        agrees_with_naive::<PoolGeometry2dOf<2, 3, 150, 2, 3, 1, 2>, 900, 296>(6);
        agrees_with_naive::<PoolGeometry2dOf<1, 4, 132, 3, 3, 1, 1>, 528, 260>(7);
    }

    #[test]
    fn many_ties_match_naive_pooling() {
        // Values on a grid of 5 levels: most windows have several maxima, the first wins.
        type G = PoolGeometry2dOf<2, 6, 140, 3, 2, 1, 1>;
        let layer = MaxPool2d::<f64, 1680, 1112, G>::ZERO;
        let x = random_matrix::<1680, 2>(8, 1.0).map(|v| (v * 2.0).round());
        let dy = random_matrix::<1112, 2>(9, 1.0);
        let (mut y, mut dx) = (SMatrix::<f64, 1112, 2>::ZERO, SMatrix::<f64, 1680, 2>::ZERO);
        layer.forward(&(), &x, &mut y, &mut []);
        let mut grads = MaxPool2d::ZERO;
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut []);
        for j in 0..2 {
            let (expected, arg) = naive::<G, 1680, 1112>(x.column(j).as_slice());
            assert_eq!(y.column(j).as_slice(), &expected);
            let mut expected_dx = [0.0; 1680];
            for (o, &i) in arg.iter().enumerate() {
                expected_dx[i] += dy[(o, j)];
            }
            assert!(max_diff(dx.column(j).as_slice(), &expected_dx) < 1e-15);
        }
    }

    #[test]
    fn one_d_hand_worked_and_equal_to_two_d_of_height_one() {
        // Two channels of 7, window 3, stride 2: OL = (7 − 3)/2 + 1 = 3.
        type G = PoolGeometry1dOf<2, 7, 3, 2>;
        let layer = MaxPool1d::<f64, 14, 6, G>::ZERO;
        #[rustfmt::skip]
        let x = SMatrix::<f64, 14, 1>::from_column_slice(&[
            1.0, 4.0, 2.0, 0.0, 5.0, 5.0, -1.0,
            -3.0, -2.0, -7.0, -1.0, -4.0, -6.0, -5.0,
        ]);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut []);
        // windows [1 4 2] [2 0 5] [5 5 −1]; [−3 −2 −7] [−7 −1 −4] [−4 −6 −5]
        assert_eq!(y.as_slice(), &[4.0, 5.0, 5.0, -2.0, -1.0, -4.0]);
        let mut dx = SMatrix::<f64, 14, 1>::ZERO;
        layer.backward(
            &x,
            &(),
            &SMatrix::repeat(1.0),
            Some(&mut dx),
            &mut Default::default(),
            &mut [],
        );
        // The windows [2 0 5] and [5 5 −1] overlap at index 4, whose 5 is the first maximum
        // of both: it gets two gradients, its tie at index 5 none.
        let mut expected = [0.0; 14];
        for i in [1, 4, 4, 8, 10, 11] {
            expected[i] += 1.0;
        }
        assert_eq!(dx.as_slice(), &expected);

        type G2 = PoolGeometry2dOf<2, 1, 7, 1, 3, 1, 2>;
        let x = random_matrix::<14, 2>(6, 1.0);
        let (mut y1, mut y2) = (SMatrix::<f64, 6, 2>::ZERO, SMatrix::<f64, 6, 2>::ZERO);
        layer.forward(&(), &x, &mut y1, &mut []);
        MaxPool2d::<f64, 14, 6, G2>::ZERO.forward(&(), &x, &mut y2, &mut []);
        assert_eq!(y1, y2);
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Random inputs: ties (closer than the step 1e-5) are practically impossible.
        let mut layer = MaxPool2d::<f64, 50, 18, PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>>::ZERO;
        let report = check_layer(&mut layer, &(), &random_matrix::<50, 3>(7, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        let mut layer = MaxPool1d::<f64, 14, 6, PoolGeometry1dOf<2, 7, 3, 2>>::ZERO;
        let report = check_layer(&mut layer, &(), &random_matrix::<14, 3>(8, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn batch_equals_single_samples() {
        type L = MaxPool2d<f64, 105, 18, PoolGeometry2dOf<3, 5, 7, 2, 2, 2, 2>>;
        let x = random_matrix::<105, 4>(9, 1.0);
        let dy = random_matrix::<18, 4>(10, 1.0);
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
        for j in 0..4 {
            let xj: SMatrix<f64, 105, 1> = x.column(j).into();
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
        type L = MaxPool2d<f32, 16, 4, PoolGeometry2dOf<1, 4, 4, 2, 2, 2, 2>>;
        assert_eq!(<L as Params<f32>>::LEN, 0);
        assert_eq!(size_of::<L>(), 0);
        assert_eq!(align_of::<L>(), align_of::<f32>());
        assert!(L::ZERO.as_slice().is_empty());
        assert!(
            <L as Layer<f32, 16, 4>>::TENSORS
                .iter()
                .all(|t| t.is_empty())
        );
    }

    #[test]
    fn f32_agrees_with_f64() {
        type G = PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>;
        let x = random_matrix::<50, 2>(11, 1.0);
        let (mut y, mut y32) = (SMatrix::<f64, 18, 2>::ZERO, SMatrix::<f32, 18, 2>::ZERO);
        MaxPool2d::<f64, 50, 18, G>::ZERO.forward(&(), &x, &mut y, &mut []);
        MaxPool2d::<f32, 50, 18, G>::ZERO.forward(&(), &x.cast(), &mut y32, &mut []);
        assert_eq!(y.cast::<f32>(), y32);
    }
}

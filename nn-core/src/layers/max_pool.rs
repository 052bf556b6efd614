//! Max pooling: [`MaxPool2d`] and [`MaxPool1d`] (computed as a 2-d pooling of height 1).

use super::geometry::{LiftPool1d, PoolGeometry1d, PoolGeometry2d, check_pool_sizes};
#[cfg(target_arch = "x86_64")]
use crate::parallel::{SharedPtr, for_samples};
use crate::{ConstZero, Layer, Params, Real, Store, Zeroable};
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
/// NaN in a window makes its output NaN, as PyTorch. Training keeps each output's arg-max in
/// the tape ([`MaxPoolCache`]: one `u32` per output and sample, where PyTorch keeps an `i64`),
/// so `backward` is one addition per output.
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
/// Backward routes the gradient to the first maximum of each window, as PyTorch, from the
/// arg-maxes kept by training ([`MaxPoolCache`]). No parameters; `G` is a
/// [`PoolGeometry1dOf`](super::PoolGeometry1dOf).
#[derive(Clone, Copy, Debug, PartialEq, Default, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct MaxPool1d<T: Real, const IN: usize, const OUT: usize, G> {
    _marker: PhantomData<(T, G)>,
    /// Aligns the (empty) parameter slice to `T`.
    _align: [T; 0],
}

/// What max pooling's training pass keeps for the backward pass: each output's arg-max, as
/// the index of that input in its sample (`arg_max[j][o]` for output `o` of sample `j`).
/// All zeros (every gradient to input 0) until a training pass writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxPoolCache<const OUT: usize, const B: usize> {
    arg_max: [[u32; OUT]; B],
}

impl<const OUT: usize, const B: usize> MaxPoolCache<OUT, B> {
    /// The index in its sample of the input that output `o` of sample `j` took its value
    /// from (its window's first maximum, or last NaN).
    pub fn arg_max(&self, j: usize, o: usize) -> usize {
        self.arg_max[j][o] as usize
    }
}

impl<const OUT: usize, const B: usize> ConstZero for MaxPoolCache<OUT, B> {
    const ZERO: Self = Self {
        arg_max: [[0; OUT]; B],
    };
}

// SAFETY: an array of integers, valid when all its bytes are zero.
unsafe impl<const OUT: usize, const B: usize> Zeroable for MaxPoolCache<OUT, B> {}

impl<T: Real, const IN: usize, const OUT: usize, G: PoolGeometry2d> Layer<T, IN, OUT>
    for MaxPool2d<T, IN, OUT, G>
{
    type Cache<const B: usize> = MaxPoolCache<OUT, B>;
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
    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        cache: &mut MaxPoolCache<OUT, B>,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<G, IN, OUT>() };
        forward_train_batch::<T, G, IN, OUT, B>(x, y, &mut cache.arg_max);
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        cache: &MaxPoolCache<OUT, B>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<G, IN, OUT>() };
        route_to_arg_maxes::<T, G, IN, OUT, B>(&cache.arg_max, dy, dx, Store::Add);
    }

    /// Asked to overwrite `dx`, and where the windows do not overlap, writes each input's
    /// gradient in one pass (its window's `∂y` at the arg-max, else zero); else zeroes `dx`
    /// and adds, as the default. No parameters: nothing else to store.
    #[inline]
    fn backward_with<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        cache: &MaxPoolCache<OUT, B>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        dx_store: Store,
        _grads: &mut Self,
        _grads_store: Store,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<G, IN, OUT>() };
        route_to_arg_maxes::<T, G, IN, OUT, B>(&cache.arg_max, dy, dx, dx_store);
    }
}

impl<T: Real, const IN: usize, const OUT: usize, G: PoolGeometry1d> Layer<T, IN, OUT>
    for MaxPool1d<T, IN, OUT, G>
{
    type Cache<const B: usize> = MaxPoolCache<OUT, B>;
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
    fn forward_train<const B: usize>(
        &self,
        _: &mut (),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        cache: &mut MaxPoolCache<OUT, B>,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<LiftPool1d<G>, IN, OUT>() };
        forward_train_batch::<T, LiftPool1d<G>, IN, OUT, B>(x, y, &mut cache.arg_max);
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        cache: &MaxPoolCache<OUT, B>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        _grads: &mut Self,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<LiftPool1d<G>, IN, OUT>() };
        route_to_arg_maxes::<T, LiftPool1d<G>, IN, OUT, B>(&cache.arg_max, dy, dx, Store::Add);
    }

    /// As [`MaxPool2d`]'s: one pass where the windows do not overlap (`S ≥ K`).
    #[inline]
    fn backward_with<const B: usize>(
        &self,
        _x: &SMatrix<T, IN, B>,
        cache: &MaxPoolCache<OUT, B>,
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        dx_store: Store,
        _grads: &mut Self,
        _grads_store: Store,
        _scratch: &mut [T],
    ) {
        const { check_pool_sizes::<LiftPool1d<G>, IN, OUT>() };
        route_to_arg_maxes::<T, LiftPool1d<G>, IN, OUT, B>(&cache.arg_max, dy, dx, dx_store);
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

/// `y = maxpool(x)` for a batch, one output row at a time: the row starts as the first
/// element of each window, then each other window element (row-major order) is swept across
/// the row's windows, so that the inner loop is a branch-free select over the outputs.
///
/// Compiled for AVX-512 or AVX2 where the CPU has it (the same selects: the same results);
/// in `f32` with AVX-512, for windows at most 4 apart across, by [`pool512::forward`]
/// instead (whole input rows in vectors: the same choices, the same bits).
fn forward_batch<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
) {
    #[cfg(target_arch = "x86_64")]
    if size_of::<T>() == 4 && const { pool512::pools::<G>() } && crate::kernels::has_avx512() {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes); the
        // CPU has AVX-512F; `pools` holds; x holds B samples of IN, y B of OUT.
        unsafe {
            pool512_forward::<G, IN, OUT, false>(
                as_f32(x.as_slice()),
                as_f32_mut(y.as_mut_slice()),
                &mut [],
            )
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { wide::forward_batch::<T, G, IN, OUT, B>(x, y) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { wide::forward_batch_avx2::<T, G, IN, OUT, B>(x, y) };
    }
    forward_loops::<T, G, IN, OUT, B>(x, y);
}

/// [`forward_batch`] that also writes each output's arg-max (the index of its input in the
/// sample) to `arg_max`, swept beside the maxima (by [`pool512::forward`] where
/// [`forward_batch`] is).
fn forward_train_batch<
    T: Real,
    G: PoolGeometry2d,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
    arg_max: &mut [[u32; OUT]; B],
) {
    const {
        assert!(
            IN <= u32::MAX as usize,
            "max pooling: samples of over 2³² values (arg-maxes are kept as u32)"
        )
    };
    #[cfg(target_arch = "x86_64")]
    if size_of::<T>() == 4 && const { pool512::pools::<G>() } && crate::kernels::has_avx512() {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes); the
        // CPU has AVX-512F; `pools` holds; x holds B samples of IN, y and arg_max B of OUT.
        unsafe {
            pool512_forward::<G, IN, OUT, true>(
                as_f32(x.as_slice()),
                as_f32_mut(y.as_mut_slice()),
                arg_max.as_flattened_mut(),
            );
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx512() {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { wide::forward_train_batch::<T, G, IN, OUT, B>(x, y, arg_max) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { wide::forward_train_batch_avx2::<T, G, IN, OUT, B>(x, y, arg_max) };
    }
    forward_train_loops::<T, G, IN, OUT, B>(x, y, arg_max);
}

/// The pooling passes compiled for AVX-512, and for AVX2 (the same selects and copies).
#[cfg(target_arch = "x86_64")]
mod wide {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn forward_batch_avx2<
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

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn forward_train_batch_avx2<
        T: Real,
        G: PoolGeometry2d,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        arg_max: &mut [[u32; OUT]; B],
    ) {
        super::forward_train_loops::<T, G, IN, OUT, B>(x, y, arg_max);
    }

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
    pub(super) fn forward_train_batch<
        T: Real,
        G: PoolGeometry2d,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        arg_max: &mut [[u32; OUT]; B],
    ) {
        super::forward_train_loops::<T, G, IN, OUT, B>(x, y, arg_max);
    }
}

/// [`forward_batch`]'s loops: rows of at least [`LANES`] outputs by [`sweep`], shorter ones
/// (whose strided loads the compiler turns into gathers there) by sweeping each window
/// element across the row's outputs in place.
#[inline(always)]
fn forward_loops<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize, const B: usize>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
) {
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let x_planes = x.as_slice().chunks_exact(in_plane);
    for (x, y) in x_planes.zip(y.as_mut_slice().chunks_exact_mut(out_plane)) {
        for (oh, out) in y.chunks_exact_mut(G::OW).enumerate() {
            let top = oh * G::SH * G::W;
            if G::OW >= LANES {
                for (part, out) in out.chunks_mut(LANES).enumerate() {
                    let (best, _) =
                        sweep::<T, G, false>(x, top + part * LANES * G::SW, 0, out.len());
                    out.copy_from_slice(&best[..out.len()]);
                }
                continue;
            }
            // The KH input rows of this output row.
            let rows = &x[top..top + G::KH * G::W];
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

/// [`forward_train_batch`]'s loops: [`forward_loops`]' sweeps, keeping the arg-maxes too.
#[inline(always)]
fn forward_train_loops<
    T: Real,
    G: PoolGeometry2d,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
    arg_max: &mut [[u32; OUT]; B],
) {
    const {
        assert!(
            IN <= u32::MAX as usize,
            "max pooling: samples of over 2³² values (arg-maxes are kept as u32)"
        )
    };
    let (in_plane, out_plane) = (G::H * G::W, G::OH * G::OW);
    let samples = x.as_slice().chunks_exact(IN);
    let y_samples = y.as_mut_slice().chunks_exact_mut(OUT);
    for ((x, y), arg_max) in samples.zip(y_samples).zip(arg_max.iter_mut()) {
        let planes = x.chunks_exact(in_plane).zip(y.chunks_exact_mut(out_plane));
        for (c, ((x, y), arg_max)) in planes.zip(arg_max.chunks_exact_mut(out_plane)).enumerate() {
            let rows = y
                .chunks_exact_mut(G::OW)
                .zip(arg_max.chunks_exact_mut(G::OW));
            for (oh, (out, at)) in rows.enumerate() {
                for (part, (out, at)) in out.chunks_mut(LANES).zip(at.chunks_mut(LANES)).enumerate()
                {
                    let left = oh * G::SH * G::W + part * LANES * G::SW;
                    let (best, arg) = sweep::<T, G, true>(x, left, c * in_plane, out.len());
                    out.copy_from_slice(&best[..out.len()]);
                    at.copy_from_slice(&arg[..out.len()]);
                }
            }
        }
    }
}

/// Outputs pooled at a time: one AVX-512 vector of `f32`.
const LANES: usize = 16;

/// The longest row of [`LANES`] windows ([`sweep`]'s `span`) copied to the stack to pool a
/// row shorter than that at vector speed.
const PADDED: usize = 8 * LANES;

/// The maxima of `n ≤ LANES` neighbouring windows of a plane `x`, the first at offset `left`,
/// and with `ARG_MAX`, their arg-maxes as indices `plane + offset` (`plane`: the plane's
/// offset in its sample). Each window element (row-major order) is swept across the lanes
/// with branch-free selects on fixed-size arrays: one vector each, whatever the row's length
/// (lanes past the `n`-th pool zeros, and are not used).
#[inline(always)]
fn sweep<T: Real, G: PoolGeometry2d, const ARG_MAX: bool>(
    x: &[T],
    left: usize,
    plane: usize,
    n: usize,
) -> ([T; LANES], [u32; LANES]) {
    let mut best = [T::ZERO; LANES];
    let mut arg = [0u32; LANES];
    // The input a whole vector of windows spans in one row, and a copy of a shorter row's.
    let span = (LANES - 1) * G::SW + G::KW;
    let mut padded = [T::ZERO; PADDED];
    for kh in 0..G::KH {
        let row = left + kh * G::W;
        // One row of the windows, `span` long: the input itself, or its `n` windows' values
        // copied into `padded` (the lanes past them read what is left there, and are not
        // used); where that does not fit, the `n` windows' values alone (lanes past them
        // read zeros).
        let used = (n - 1) * G::SW + G::KW;
        let values = if n == LANES {
            &x[row..row + span]
        } else if span <= PADDED {
            padded[..used].copy_from_slice(&x[row..row + used]);
            &padded[..span]
        } else {
            &x[row..row + used]
        };
        for kw in 0..G::KW {
            let mut v = [T::ZERO; LANES];
            if values.len() == span {
                // Indexed in bounds the compiler sees: loaded as vectors.
                let values = &values[kw..kw + (LANES - 1) * G::SW + 1];
                for (l, v) in v.iter_mut().enumerate() {
                    *v = values[l * G::SW];
                }
            } else {
                for (l, v) in v.iter_mut().enumerate() {
                    *v = values.get(kw + l * G::SW).copied().unwrap_or(T::ZERO);
                }
            }
            let is_first = kh == 0 && kw == 0;
            let first = row + kw;
            for l in 0..LANES {
                let replace = is_first | replaces(v[l], best[l]);
                best[l] = if replace { v[l] } else { best[l] };
                if ARG_MAX {
                    let index = (plane + first + l * G::SW) as u32;
                    arg[l] = if replace { index } else { arg[l] };
                }
            }
        }
    }
    (best, arg)
}

/// The input gradient of max pooling, stored in `dx` (when given) as `store` says: added
/// ([`add_to_arg_maxes`]) or written over it ([`write_arg_maxes`]). Both layers' `backward`
/// and `backward_with`.
#[inline]
fn route_to_arg_maxes<
    T: Real,
    G: PoolGeometry2d,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    arg_max: &[[u32; OUT]; B],
    dy: &SMatrix<T, OUT, B>,
    dx: Option<&mut SMatrix<T, IN, B>>,
    store: Store,
) {
    match (dx, store) {
        (Some(dx), Store::Add) => add_to_arg_maxes(arg_max, dy, dx),
        (Some(dx), Store::Overwrite) => write_arg_maxes::<T, G, IN, OUT, B>(arg_max, dy, dx),
        (None, _) => {}
    }
}

/// Adds `∂L/∂x`: each output's gradient to the input the training pass found as its
/// window's arg-max (added up where windows overlap and share one).
fn add_to_arg_maxes<T: Real, const IN: usize, const OUT: usize, const B: usize>(
    arg_max: &[[u32; OUT]; B],
    dy: &SMatrix<T, OUT, B>,
    dx: &mut SMatrix<T, IN, B>,
) {
    let dy_samples = dy.as_slice().chunks_exact(OUT);
    for ((arg_max, dy), dx) in arg_max
        .iter()
        .zip(dy_samples)
        .zip(dx.as_mut_slice().chunks_exact_mut(IN))
    {
        for (&i, &d) in arg_max.iter().zip(dy) {
            dx[i as usize] += d;
        }
    }
}

/// Overwrites `dx` with `∂L/∂x`: what [`add_to_arg_maxes`] adds to a zeroed `dx`, the same
/// bits (each arg-max gets `0 + ∂L/∂y`, every other input `+0`).
///
/// Where the windows overlap (`SH < KH` or `SW < KW`), by zeroing `dx` and adding. Where they
/// do not, each input is in at most one window, so its gradient is its window's `∂L/∂y` if
/// it is that window's arg-max and zero otherwise: in `f32` with AVX-512 (strides of at most
/// 2 across), written in one pass, row by row, comparing each input's index with its
/// window's arg-max ([`pool512::write_arg_maxes`]); else a sample at a time, zeroed and added
/// to while it is in cache. (The arg-maxes must be those of a training pass: one outside its
/// window is not written by the one pass.)
fn write_arg_maxes<
    T: Real,
    G: PoolGeometry2d,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    arg_max: &[[u32; OUT]; B],
    dy: &SMatrix<T, OUT, B>,
    dx: &mut SMatrix<T, IN, B>,
) {
    if !const { G::SH >= G::KH && G::SW >= G::KW } {
        dx.as_mut_slice().fill(T::ZERO);
        return add_to_arg_maxes(arg_max, dy, dx);
    }
    #[cfg(target_arch = "x86_64")]
    if size_of::<T>() == 4 && const { pool512::writes::<G>() } && crate::kernels::has_avx512() {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes); the
        // CPU has AVX-512F; `writes` holds; the slices hold B samples of OUT arg-maxes, of
        // OUT output gradients and of IN = C·H·W input gradients.
        unsafe {
            pool512_write_arg_maxes::<G, IN, OUT>(
                arg_max.as_flattened(),
                as_f32(dy.as_slice()),
                as_f32_mut(dx.as_mut_slice()),
            );
        }
        return;
    }
    let dy_samples = dy.as_slice().chunks_exact(OUT);
    for ((arg_max, dy), dx) in arg_max
        .iter()
        .zip(dy_samples)
        .zip(dx.as_mut_slice().chunks_exact_mut(IN))
    {
        dx.fill(T::ZERO);
        for (&i, &d) in arg_max.iter().zip(dy) {
            dx[i as usize] += d;
        }
    }
}

/// [`pool512::forward`] on runs of samples, one per thread of a pool when the batch is large
/// ([`for_samples`]): each sample is pooled alone, so the same bits.
///
/// # Safety
/// As [`pool512::forward`]'s, for whole samples.
#[cfg(target_arch = "x86_64")]
unsafe fn pool512_forward<
    G: PoolGeometry2d,
    const IN: usize,
    const OUT: usize,
    const ARG_MAX: bool,
>(
    x: &[f32],
    y: &mut [f32],
    arg_max: &mut [u32],
) {
    let (y, arg_max) = (SharedPtr(y.as_mut_ptr()), SharedPtr(arg_max.as_mut_ptr()));
    for_samples(x.len() / IN, IN, &|first, count| {
        // SAFETY: the runs of samples are disjoint and inside `x`, `y` and (with `ARG_MAX`)
        // `arg_max`, which hold as many samples (the caller's contract); else `arg_max` is
        // not used and the run of it is empty.
        unsafe {
            pool512::forward::<G, IN, OUT, ARG_MAX>(
                &x[first * IN..(first + count) * IN],
                core::slice::from_raw_parts_mut(y.get().add(first * OUT), count * OUT),
                if ARG_MAX {
                    core::slice::from_raw_parts_mut(arg_max.get().add(first * OUT), count * OUT)
                } else {
                    &mut []
                },
            );
        }
    });
}

/// [`pool512::write_arg_maxes`] on runs of samples, as [`pool512_forward`].
///
/// # Safety
/// As [`pool512::write_arg_maxes`]'s, for whole samples.
#[cfg(target_arch = "x86_64")]
unsafe fn pool512_write_arg_maxes<G: PoolGeometry2d, const IN: usize, const OUT: usize>(
    arg_max: &[u32],
    dy: &[f32],
    dx: &mut [f32],
) {
    let dx = SharedPtr(dx.as_mut_ptr());
    for_samples(dy.len() / OUT, IN, &|first, count| {
        // SAFETY: the runs of samples are disjoint and inside the slices, which hold as many
        // samples (the caller's contract).
        unsafe {
            pool512::write_arg_maxes::<G, IN, OUT>(
                &arg_max[first * OUT..(first + count) * OUT],
                &dy[first * OUT..(first + count) * OUT],
                core::slice::from_raw_parts_mut(dx.get().add(first * IN), count * IN),
            );
        }
    });
}

/// The scalars of `s` as `f32`.
///
/// # Safety
/// `T` is `f32`.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32<T>(s: &[T]) -> &[f32] {
    // SAFETY: the caller's contract: the same type.
    unsafe { core::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// The scalars of `s` as `f32`.
///
/// # Safety
/// `T` is `f32`.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32_mut<T>(s: &mut [T]) -> &mut [f32] {
    // SAFETY: the caller's contract: the same type.
    unsafe { core::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

#[cfg(target_arch = "x86_64")]
mod pool512;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::geometry::{PoolGeometry1dOf, PoolGeometry2dOf};
    use crate::test_util::{check_layer, max_diff, random_matrix};
    use crate::{ConstZero, Params};

    /// Training's forward pass and the backward pass of `layer` on `x` and `dy`, returning
    /// `y`, `∂L/∂x` and the cache; checks that inference gives the same `y` (bit for bit,
    /// NaNs included).
    fn train<
        L: Layer<f64, IN, OUT, State = ()>,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        layer: &L,
        x: &SMatrix<f64, IN, B>,
        dy: &SMatrix<f64, OUT, B>,
    ) -> (SMatrix<f64, OUT, B>, SMatrix<f64, IN, B>, L::Cache<B>) {
        let (mut y, mut dx, mut cache) = (SMatrix::ZERO, SMatrix::ZERO, L::Cache::<B>::ZERO);
        layer.forward_train(&mut (), x, &mut y, &mut cache, &mut []);
        let mut inferred = SMatrix::<f64, OUT, B>::ZERO;
        layer.forward(&(), x, &mut inferred, &mut []);
        let bits =
            |m: &SMatrix<f64, OUT, B>| m.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
        assert_eq!(bits(&inferred), bits(&y));
        let mut grads = L::ZERO;
        layer.backward(x, &cache, dy, Some(&mut dx), &mut grads, &mut []);
        (y, dx, cache)
    }

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
        let (y, dx, cache) = train(&layer, &x, &dy);
        for j in 0..3 {
            let (expected, arg) = naive::<G, IN, OUT>(x.column(j).as_slice());
            assert_eq!(y.column(j).as_slice(), &expected);
            assert!((0..OUT).all(|o| cache.arg_max(j, o) == arg[o]));
            let mut expected_dx = [0.0; IN];
            for (o, &i) in arg.iter().enumerate() {
                expected_dx[i] += dy[(o, j)];
            }
            assert!(max_diff(dx.column(j).as_slice(), &expected_dx) < 1e-15);
        }
    }

    /// Inputs with many ties (5 levels, `−0` and `+0` among them) and NaNs of several
    /// payloads and both signs (one input in 13), in `T`.
    fn tied_with_nans<T: Real, const N: usize, const B: usize>(seed: u64) -> SMatrix<T, N, B> {
        let mut k = 0u64;
        random_matrix::<N, B>(seed, 1.0).map(|v| {
            k += 1;
            let v = if (k * 7 + seed).is_multiple_of(13) {
                f64::from_bits(0x7ff8_0000_0000_0000 | ((k % 5) << 45) | ((k % 2) << 63))
            } else {
                (v * 2.0).round()
            };
            T::of(v)
        })
    }

    /// The bits of each value (through `f64`, which keeps an `f32`'s sign, payload and all).
    fn bits<T: Real>(values: &[T]) -> std::vec::Vec<u64> {
        values.iter().map(|v| v.to_f64().to_bits()).collect()
    }

    /// `backward_with` overwriting a `dx` of NaNs writes the bits that `backward` adds to a zeroed
    /// one, for `MaxPool2d` of geometry `G` in `T` after a training pass on inputs with many
    /// ties and NaNs, and gradients with `−0`s and NaNs.
    fn overwrite_equals_adding<T: Real, G: PoolGeometry2d, const IN: usize, const OUT: usize>(
        seed: u64,
    ) {
        let layer = MaxPool2d::<T, IN, OUT, G>::ZERO;
        overwrite_equals_adding_for::<T, _, IN, OUT>(&layer, seed);
    }

    fn overwrite_equals_adding_for<
        T: Real,
        L: Layer<T, IN, OUT, State = ()>,
        const IN: usize,
        const OUT: usize,
    >(
        layer: &L,
        seed: u64,
    ) {
        let x = tied_with_nans::<T, IN, 3>(seed);
        let dy = tied_with_nans::<T, OUT, 3>(seed + 1).map(|v| v * T::of(0.5));
        let (mut y, mut cache) = (SMatrix::<T, OUT, 3>::ZERO, L::Cache::<3>::ZERO);
        layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
        let (mut added, mut overwritten) =
            (SMatrix::<T, IN, 3>::ZERO, SMatrix::repeat(T::of(f64::NAN)));
        let (mut grads, mut overwrite_grads) = (L::ZERO, L::ZERO);
        layer.backward(&x, &cache, &dy, Some(&mut added), &mut grads, &mut []);
        layer.backward_with(
            &x,
            &cache,
            &dy,
            Some(&mut overwritten),
            Store::Overwrite,
            &mut overwrite_grads,
            Store::Overwrite,
            &mut [],
        );
        assert_eq!(
            bits(overwritten.as_slice()),
            bits(added.as_slice()),
            "seed {seed}"
        );
        // The test sees both signs of zero where it should.
        assert!(added.iter().any(|v| v.to_f64().to_bits() == 0));
    }

    /// On the AVX2 and baseline loops too.
    #[test]
    fn overwriting_the_input_gradient_equals_adding_to_zeros() {
        overwriting_the_input_gradient_equals_adding_to_zeros_here();
        crate::kernels::on_the_avx2_tier(
            overwriting_the_input_gradient_equals_adding_to_zeros_here,
        );
        crate::kernels::on_the_baseline(overwriting_the_input_gradient_equals_adding_to_zeros_here);
    }

    fn overwriting_the_input_gradient_equals_adding_to_zeros_here() {
        fn both<G: PoolGeometry2d, const IN: usize, const OUT: usize>(seed: u64) {
            overwrite_equals_adding::<f32, G, IN, OUT>(seed);
            overwrite_equals_adding::<f64, G, IN, OUT>(seed);
        }
        // <C, H, W, KH, KW, SH, SW>, IN, OUT. LeNet's two poolings (rows of 14 and 5).
        both::<PoolGeometry2dOf<6, 28, 28, 2, 2, 2, 2>, 4704, 1176>(1);
        both::<PoolGeometry2dOf<16, 10, 10, 2, 2, 2, 2>, 1600, 400>(2);
        // a row and a column in no window (floor mode)
        both::<PoolGeometry2dOf<3, 5, 7, 2, 2, 2, 2>, 105, 18>(3);
        // 16 windows a row and an input after them; 35 a row (16 + 16 + 3) and one after
        both::<PoolGeometry2dOf<2, 4, 33, 2, 2, 2, 2>, 264, 64>(4);
        both::<PoolGeometry2dOf<1, 4, 71, 2, 2, 2, 2>, 284, 70>(5);
        // gaps between the windows: rows (SH > KH) and columns (SW > KW)
        both::<PoolGeometry2dOf<2, 8, 37, 2, 1, 3, 2>, 592, 114>(6);
        // stride 1 across (windows one input wide), rows of 20
        both::<PoolGeometry2dOf<2, 5, 20, 2, 1, 2, 1>, 200, 80>(7);
        // strides of 3 and 4 (not one pass in AVX-512: a sample zeroed and added to)
        both::<PoolGeometry2dOf<2, 7, 20, 3, 3, 3, 3>, 280, 24>(8);
        both::<PoolGeometry2dOf<1, 9, 18, 2, 3, 4, 4>, 162, 8>(9);
        // overlapping windows (zeroed and added to, gradients adding up)
        both::<PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>, 50, 18>(10);
        both::<PoolGeometry2dOf<2, 7, 9, 3, 3, 2, 2>, 126, 24>(11);
        both::<PoolGeometry2dOf<1, 6, 40, 2, 3, 2, 2>, 240, 57>(12);
        // 1-d: windows apart, adjacent, overlapping
        overwrite_equals_adding_for::<f32, _, 40, 14>(
            &MaxPool1d::<f32, 40, 14, PoolGeometry1dOf<2, 20, 2, 3>>::ZERO,
            13,
        );
        overwrite_equals_adding_for::<f32, _, 70, 34>(
            &MaxPool1d::<f32, 70, 34, PoolGeometry1dOf<2, 35, 2, 2>>::ZERO,
            14,
        );
        overwrite_equals_adding_for::<f64, _, 70, 34>(
            &MaxPool1d::<f64, 70, 34, PoolGeometry1dOf<2, 35, 2, 2>>::ZERO,
            15,
        );
        overwrite_equals_adding_for::<f32, _, 14, 6>(
            &MaxPool1d::<f32, 14, 6, PoolGeometry1dOf<2, 7, 3, 2>>::ZERO,
            16,
        );
    }

    /// The `f32` passes of `MaxPool2d` of geometry `G` (the AVX-512 intrinsics where the CPU
    /// has them) give the bits and arg-maxes of the portable loops, on inputs with many ties
    /// (`±0` among them) and NaNs of several payloads; and, on the same inputs without
    /// NaNs, the naive pooling's.
    fn f32_matches_the_loops<G: PoolGeometry2d, const IN: usize, const OUT: usize>(seed: u64) {
        let layer = MaxPool2d::<f32, IN, OUT, G>::ZERO;
        let with_nans = tied_with_nans::<f32, IN, 3>(seed);
        let tied = random_matrix::<IN, 3>(seed, 1.0).map(|v| (v * 2.0).round() as f32);
        for x in [with_nans, tied] {
            let (mut y, mut inferred, mut cache) = (
                SMatrix::<f32, OUT, 3>::ZERO,
                SMatrix::<f32, OUT, 3>::ZERO,
                MaxPoolCache::<OUT, 3>::ZERO,
            );
            layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
            layer.forward(&(), &x, &mut inferred, &mut []);
            let (mut expected, mut expected_arg) =
                (SMatrix::<f32, OUT, 3>::ZERO, MaxPoolCache::<OUT, 3>::ZERO);
            forward_train_loops::<f32, G, IN, OUT, 3>(&x, &mut expected, &mut expected_arg.arg_max);
            assert_eq!(bits(y.as_slice()), bits(expected.as_slice()), "seed {seed}");
            assert_eq!(cache, expected_arg, "seed {seed}");
            let mut looped = SMatrix::<f32, OUT, 3>::ZERO;
            forward_loops::<f32, G, IN, OUT, 3>(&x, &mut looped);
            assert_eq!(
                bits(inferred.as_slice()),
                bits(looped.as_slice()),
                "seed {seed}"
            );
            assert_eq!(bits(inferred.as_slice()), bits(y.as_slice()), "seed {seed}");
        }
        let x = random_matrix::<IN, 3>(seed, 1.0).map(|v| (v * 2.0).round());
        let mut y = SMatrix::<f32, OUT, 3>::ZERO;
        let mut cache = MaxPoolCache::<OUT, 3>::ZERO;
        layer.forward_train(&mut (), &x.cast(), &mut y, &mut cache, &mut []);
        for j in 0..3 {
            let (expected, arg) = naive::<G, IN, OUT>(x.column(j).as_slice());
            assert_eq!(bits(y.column(j).as_slice()), bits(&expected), "seed {seed}");
            assert!(
                (0..OUT).all(|o| cache.arg_max(j, o) == arg[o]),
                "seed {seed}"
            );
        }
    }

    /// On the AVX2 and baseline loops too (there, the loops against themselves); on a thread
    /// of 64 MiB of stack (the matrices of LeNet's first pooling, copied about in debug
    /// builds, overflow a test thread's 2 MiB).
    #[test]
    fn f32_pooling_matches_the_loops_bit_for_bit() {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                f32_pooling_matches_the_loops_bit_for_bit_here();
                crate::kernels::on_the_avx2_tier(f32_pooling_matches_the_loops_bit_for_bit_here);
                crate::kernels::on_the_baseline(f32_pooling_matches_the_loops_bit_for_bit_here);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    fn f32_pooling_matches_the_loops_bit_for_bit_here() {
        // <C, H, W, KH, KW, SH, SW>, IN, OUT. LeNet's two poolings (rows of 14 and 5).
        f32_matches_the_loops::<PoolGeometry2dOf<6, 28, 28, 2, 2, 2, 2>, 4704, 1176>(1);
        f32_matches_the_loops::<PoolGeometry2dOf<16, 10, 10, 2, 2, 2, 2>, 1600, 400>(2);
        // rows of 3, 16 (and an input after them), 35 = 16 + 16 + 3 (floor mode leftovers)
        f32_matches_the_loops::<PoolGeometry2dOf<3, 5, 7, 2, 2, 2, 2>, 105, 18>(3);
        f32_matches_the_loops::<PoolGeometry2dOf<2, 4, 33, 2, 2, 2, 2>, 264, 64>(4);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 4, 71, 2, 2, 2, 2>, 284, 70>(5);
        // gaps between the windows; windows one input wide
        f32_matches_the_loops::<PoolGeometry2dOf<2, 8, 37, 2, 1, 3, 2>, 592, 114>(6);
        // stride 1: overlapping 3×3 windows (rows of 3, 16, 18), 2×1 windows
        f32_matches_the_loops::<PoolGeometry2dOf<2, 5, 5, 3, 3, 1, 1>, 50, 18>(7);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 4, 18, 3, 3, 1, 1>, 72, 32>(8);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 5, 20, 3, 3, 1, 1>, 100, 54>(9);
        f32_matches_the_loops::<PoolGeometry2dOf<2, 5, 20, 2, 1, 2, 1>, 200, 80>(10);
        // stride 3 (10 windows a vector): rows of 6, 10, 23; overlapping 3×3 at stride 2
        f32_matches_the_loops::<PoolGeometry2dOf<2, 7, 20, 3, 3, 3, 3>, 280, 24>(11);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 3, 30, 3, 3, 3, 3>, 90, 10>(12);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 6, 70, 2, 3, 3, 3>, 420, 46>(13);
        f32_matches_the_loops::<PoolGeometry2dOf<2, 7, 9, 3, 3, 2, 2>, 126, 24>(14);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 6, 40, 2, 3, 2, 2>, 240, 57>(15);
        // stride 4 (8 windows a vector), wide windows at stride 1 (8 a vector: 25 wide), and
        // geometries left to the loops (stride 9, a 27-wide window)
        f32_matches_the_loops::<PoolGeometry2dOf<1, 9, 38, 2, 3, 4, 4>, 342, 18>(16);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 2, 40, 1, 25, 1, 1>, 80, 32>(17);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 9, 200, 9, 9, 9, 9>, 1800, 22>(18);
        f32_matches_the_loops::<PoolGeometry2dOf<1, 2, 40, 2, 27, 1, 1>, 80, 14>(19);
        const {
            assert!(pool512::pools::<PoolGeometry2dOf<1, 2, 40, 1, 25, 1, 1>>());
            assert!(pool512::pools::<PoolGeometry2dOf<1, 9, 38, 2, 3, 4, 4>>());
            assert!(!pool512::pools::<PoolGeometry2dOf<1, 9, 200, 9, 9, 9, 9>>());
            assert!(!pool512::pools::<PoolGeometry2dOf<1, 2, 40, 2, 27, 1, 1>>());
        }
    }

    #[test]
    fn f32_one_d_pooling_matches_two_d_of_height_one() {
        type G = PoolGeometry1dOf<2, 35, 3, 2>;
        let layer = MaxPool1d::<f32, 70, 34, G>::ZERO;
        let x = tied_with_nans::<f32, 70, 2>(20);
        let (mut y, mut cache) = (SMatrix::<f32, 34, 2>::ZERO, MaxPoolCache::<34, 2>::ZERO);
        layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
        let (mut expected, mut expected_arg) =
            (SMatrix::<f32, 34, 2>::ZERO, MaxPoolCache::<34, 2>::ZERO);
        forward_train_loops::<f32, LiftPool1d<G>, 70, 34, 2>(
            &x,
            &mut expected,
            &mut expected_arg.arg_max,
        );
        assert_eq!(bits(y.as_slice()), bits(expected.as_slice()));
        assert_eq!(cache, expected_arg);
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
        // The gradient goes to the maxima: 5 at (0, 1), 8 at (1, 2), 9 at (3, 0), 7 at (2, 3).
        let dy = SMatrix::<f64, 4, 1>::from_column_slice(&[1.0, 2.0, 3.0, 4.0]);
        let (y, dx, cache) = train(&layer, &x, &dy);
        assert_eq!(y.as_slice(), &[5.0, 8.0, 9.0, 7.0]);
        assert_eq!(
            (0..4)
                .map(|o| cache.arg_max(0, o))
                .collect::<std::vec::Vec<_>>(),
            [1, 6, 12, 11]
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
        let (y, dx, _) = train(&layer, &x, &SMatrix::repeat(1.0));
        assert_eq!(y.as_slice(), &[2.0, 3.0]);
        assert_eq!(dx.as_slice(), &[1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);

        // A NaN makes the output NaN and takes the gradient; of two NaNs, the last does (as
        // PyTorch's `val > max || isnan(val)`).
        let mut x = x;
        x[5] = f64::NAN;
        let (y, dx, _) = train(&layer, &x, &SMatrix::repeat(1.0));
        assert!(y[0].is_nan());
        assert_eq!(y[1], 3.0);
        assert_eq!(dx.as_slice(), &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        x[0] = f64::NAN;
        let (_, dx, _) = train(&layer, &x, &SMatrix::repeat(1.0));
        assert_eq!(dx.as_slice(), &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    }

    /// On the AVX2 and baseline loops too (they run where the CPU has no AVX-512).
    #[test]
    fn matches_naive_pooling_for_many_geometries() {
        matches_naive_pooling_for_many_geometries_here();
        crate::kernels::on_the_avx2_tier(matches_naive_pooling_for_many_geometries_here);
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
        // rows of more outputs than a sweep's lanes (74 = 4·16 + 10, and 130 = 8·16 + 2,
        // overlapping), and of exactly 16 and 32
        agrees_with_naive::<PoolGeometry2dOf<2, 3, 150, 2, 3, 1, 2>, 900, 296>(6);
        agrees_with_naive::<PoolGeometry2dOf<1, 4, 132, 3, 3, 1, 1>, 528, 260>(7);
        agrees_with_naive::<PoolGeometry2dOf<2, 4, 32, 2, 2, 2, 2>, 256, 64>(8);
        agrees_with_naive::<PoolGeometry2dOf<1, 2, 64, 2, 2, 2, 2>, 128, 32>(9);
        // strides too long for a short row's copy on the stack (a sweep's span of
        // 15·10 + 10 > 128 values), in rows shorter and longer than a sweep's lanes
        agrees_with_naive::<PoolGeometry2dOf<2, 3, 60, 3, 10, 1, 10>, 360, 12>(10);
        agrees_with_naive::<PoolGeometry2dOf<1, 9, 200, 9, 9, 9, 9>, 1800, 22>(11);
    }

    #[test]
    fn many_ties_match_naive_pooling() {
        // Values on a grid of 5 levels: most windows have several maxima, the first wins.
        type G = PoolGeometry2dOf<2, 6, 140, 3, 2, 1, 1>;
        let layer = MaxPool2d::<f64, 1680, 1112, G>::ZERO;
        let x = random_matrix::<1680, 2>(8, 1.0).map(|v| (v * 2.0).round());
        let dy = random_matrix::<1112, 2>(9, 1.0);
        let (y, dx, _) = train(&layer, &x, &dy);
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
        let (y, dx, _) = train(&layer, &x, &SMatrix::repeat(1.0));
        // windows [1 4 2] [2 0 5] [5 5 −1]; [−3 −2 −7] [−7 −1 −4] [−4 −6 −5]
        assert_eq!(y.as_slice(), &[4.0, 5.0, 5.0, -2.0, -1.0, -4.0]);
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
        let (y, dx, _) = train(&L::ZERO, &x, &dy);
        for j in 0..4 {
            let xj: SMatrix<f64, 105, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 18, 1> = dy.column(j).into();
            let (yj, dxj, _) = train(&L::ZERO, &xj, &dyj);
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

    /// LeNet-5's first max pooling on 2 or 3 threads (inside a region or not), 14 samples (a
    /// split pass outside a region too): the same outputs, arg-maxes and input gradient, bit
    /// for bit, as on one; and the split paths ran (where the AVX-512 passes do).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn splits_over_threads_give_the_same_bits() {
        type G = PoolGeometry2dOf<6, 28, 28, 2, 2, 2, 2>;
        const B: usize = 14;
        let layer = MaxPool2d::<f32, 4704, 1176, G>::ZERO;
        // Built a sample at a time: a whole batch of `f64`s would not fit a test's stack.
        let (mut x, mut dy) = (
            SMatrix::<f32, 4704, B>::new_boxed(),
            SMatrix::<f32, 1176, B>::new_boxed(),
        );
        for j in 0..B {
            let seed = 120 + 2 * j as u64;
            x.set_column(j, &tied_with_nans::<f32, 4704, 1>(seed));
            dy.set_column(j, &random_matrix::<1176, 1>(seed + 1, 1.0).cast());
        }
        let passes = || {
            let mut y = SMatrix::<f32, 1176, B>::new_boxed();
            let mut inferred = SMatrix::<f32, 1176, B>::new_boxed();
            let mut cache = MaxPoolCache::<1176, B>::new_boxed();
            let mut dx = SMatrix::<f32, 4704, B>::new_boxed();
            dx.fill(f32::NAN);
            layer.forward_train(&mut (), &x, &mut y, &mut cache, &mut []);
            layer.forward(&(), &x, &mut inferred, &mut []);
            let mut grads = MaxPool2d::<f32, 4704, 1176, G>::ZERO;
            layer.backward_with(
                &x,
                &cache,
                &dy,
                Some(&mut dx),
                Store::Overwrite,
                &mut grads,
                Store::Overwrite,
                &mut [],
            );
            (
                bits(y.as_slice()),
                bits(inferred.as_slice()),
                cache.arg_max.as_flattened().to_vec(),
                bits(dx.as_slice()),
            )
        };
        crate::test_util::same_on_threads(passes, 6);
    }
}

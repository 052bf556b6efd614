//! Convolutions: [`Conv2d`] and [`Conv1d`] (a 1-d convolution is computed as a 2-d one of
//! height 1), with zero padding, stride and dilation.
//!
//! The computation (an im2col lowering per sample, then the matrix kernels) is described on
//! [`Conv2d`].

use super::geometry::{ConvGeometry1d, ConvGeometry2d, Lift1d};
use crate::kernels::{MatView, gemm_unsplit, matmul_view};
use crate::parallel::{SharedPtr, for_parts_indexed, for_samples};
use crate::{ConstZero, Layer, Params, Real, Role, TensorInfo, Zeroable};
use core::marker::PhantomData;
use core::ops::Range;
use nalgebra::SMatrix;

#[cfg(target_arch = "x86_64")]
mod implicit;

/// 2-d convolution, PyTorch's `nn.Conv2d(CI, CO, (KH, KW), stride=(SH, SW),
/// padding=(PH, PW), dilation=(DH, DW), bias=NB > 0)` with zero padding, on samples
/// `[CI, H, W]` (flattened, `IN = CI·H·W`) giving `[CO, OH, OW]` (`OUT = CO·OH·OW`):
///
/// `y[co, oh, ow] = b[co] + Σ_{ci, kh, kw} W[co, ci, kh, kw]·x[ci, oh·SH − PH + kh·DH,
/// ow·SW − PW + kw·DW]`, terms outside the input being zero;
/// `OH = ⌊(H + 2·PH − DH·(KH − 1) − 1)/SH⌋ + 1`, likewise `OW`.
///
/// Backward: `∂L/∂W[co, k] += Σ_{b, p} ∂L/∂y[co, p]·x̃[k, p]`, `∂L/∂b[co] += Σ_{b, p}
/// ∂L/∂y[co, p]`, `∂L/∂x += col2im(Wᵀ·∂L/∂y)` (see *Lowering* below for `x̃`).
///
/// - `weight`: `W`, PyTorch's `[CO, CI, KH, KW]` stored as `CO × K` with `K = CI·KH·KW` and
///   column `k = ci·KH·KW + kh·KW + kw` (tensor `weight`).
/// - `bias`: `b`, `[CO]` when `NB = CO`; with `NB = 0` the layer has no bias (PyTorch's
///   `bias=False`) and no `bias` tensor.
/// - `G`: the geometry, a [`Geometry2d`](super::Geometry2d).
///
/// The relations `K = CI·KH·KW`, `NB ∈ {0, CO}`, `IN = CI·H·W`, `OUT = CO·OH·OW` are checked
/// at compile time where the layer is used.
///
/// # Layout
/// PyTorch's: a sample `[C, H, W]` is stored flat at `c·H·W + h·W + w`. The `CO × K` weight
/// is column-major like [`Dense`](crate::layers::Dense)'s, so the parameter slice holds the
/// transpose of PyTorch's row-major bytes of `weight.view(CO, K)`.
///
/// # Lowering
/// The convolution of one sample is the matrix product `Y = W·X̃ + b·1ᵀ` (`CO × P`,
/// `P = OH·OW`) of the weight with the im2col matrix `X̃` (`K × P`): column `p = oh·OW + ow`
/// of `X̃` holds the `K` inputs the kernel sees at output position `(oh, ow)`,
/// `X̃[(ci, kh, kw), p] = x[ci, oh·SH − PH + kh·DH, ow·SW − PW + kw·DW]`, zero in the padding.
/// A sample's output `[CO, OH, OW]` is `Yᵀ`, a `P × CO` column-major matrix, so each sample
/// is computed as `Yᵀ = X̃ᵀ·Wᵀ (+ b)` by the [matrix kernels](crate::kernels::matmul_view),
/// `X̃ᵀ` (`P × K`, element `(p, k)` at `k·P + p`) built in the layer's scratch memory
/// ([`Layer::SCRATCH_PER_CALL`] `= K·P + CO·K`: one tile, reused sample after sample, and a
/// `K × CO` matrix) a kernel row at a time (contiguous copies when `SW = 1`), `Wᵀ` a
/// transposed view of the weight:
///
/// - forward: `Yᵀ = X̃ᵀ·Wᵀ`, on `Yᵀ`'s columns preset to the bias;
/// - backward, with `∂Yᵀ` the sample's `∂L/∂y` as `P × CO`: `X̃ᵀ` rebuilt from the input,
///   `∂L/∂W += ∂Yᵀᵀ·X̃ᵀ` (dot products of columns), `∂L/∂b +=` the column sums of `∂Yᵀ`, and,
///   when `∂L/∂x` is wanted, `∂X̃ᵀ = ∂Yᵀ·W` into the same tile, added back to the inputs it was
///   gathered from (col2im). Where `K ≥ 64` and `CO ≥ 8` the tile holds `X̃` position by
///   position instead (`K × P`), and the weight gradient is the GEMM `∂Wᵀ += X̃·∂Yᵀ`, summed
///   over the batch in the `K × CO` matrix and added to `∂L/∂W` at the end: its register tiles
///   are full, where the dot products of `P` terms (100 in LeNet-5's second convolution) spend
///   much of their time in partial vectors and reductions.
///
/// In `f32` on a CPU with AVX-512, stride-1 convolutions skip the lowering where its room
/// allows (`implicit`): the sample is copied into a zero-padded plane, where each tap's column
/// of `X̃ᵀ` (over "wide" positions: whole padded rows) is the plane itself from the tap's
/// offset on, and the forward product and the dot products of the weight gradient read it
/// there; the position-major lowering is built by masked vector moves. The forward pass gives
/// the same bits as the lowered one (for `K ≤ 256`). There too, the input gradient of a
/// stride-1 convolution is, where it costs less (`implicit::input_gradient_path`), the
/// forward convolution of `∂L/∂y` padded by the kernel's reach less the padding, with the
/// kernel flipped and its channels swapped (cuDNN's "backward data"): each `∂L/∂x` is one
/// chain of multiply-adds, added once, instead of a product of depth `CO` and col2im's
/// `K·P` additions (the same values to rounding, not the same bits).
///
/// Nothing is allocated and nothing on the stack depends on the sizes. This replaced a
/// lowering one output position at a time (a `K`-vector gathered on the stack, then a
/// matrix-vector product forward and a rank-1 update backward), which ran at a few percent of
/// the core's peak (BENCHMARKS.md, C1–C3).
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Conv2d<
    T: Real,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    G,
> {
    /// `W`, PyTorch's `[CO, CI, KH, KW]` as a `CO × K` matrix.
    pub weight: SMatrix<T, CO, K>,
    /// `b`, `[CO]` (or nothing when `NB = 0`).
    pub bias: SMatrix<T, NB, 1>,
    _geometry: PhantomData<G>,
}

/// 1-d convolution, PyTorch's `nn.Conv1d(CI, CO, KL, stride=S, padding=P, dilation=D,
/// bias=NB > 0)` with zero padding, on samples `[CI, L]` (`IN = CI·L`) giving `[CO, OL]`
/// (`OUT = CO·OL`):
///
/// `y[co, o] = b[co] + Σ_{ci, t} W[co, ci, t]·x[ci, o·S − P + t·D]`, terms outside the input
/// being zero; `OL = ⌊(L + 2·P − D·(KL − 1) − 1)/S⌋ + 1`.
///
/// - `weight`: `W`, PyTorch's `[CO, CI, KL]` stored as `CO × K` with `K = CI·KL` and column
///   `k = ci·KL + t`.
/// - `bias`: `b`, `[CO]` when `NB = CO`, nothing when `NB = 0`.
/// - `G`: the geometry, a [`Geometry1d`](super::Geometry1d).
///
/// Computed as a [`Conv2d`] of height 1; the same compile-time checks apply.
#[derive(Clone, Copy, Debug, PartialEq, Params, ConstZero, Zeroable)]
#[repr(C)]
pub struct Conv1d<
    T: Real,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    G,
> {
    /// `W`, PyTorch's `[CO, CI, KL]` as a `CO × K` matrix.
    pub weight: SMatrix<T, CO, K>,
    /// `b`, `[CO]` (or nothing when `NB = 0`).
    pub bias: SMatrix<T, NB, 1>,
    _geometry: PhantomData<G>,
}

macro_rules! conv_common {
    ($Conv:ident) => {
        impl<
            T: Real,
            const CO: usize,
            const K: usize,
            const NB: usize,
            const IN: usize,
            const OUT: usize,
            G,
        > $Conv<T, CO, K, NB, IN, OUT, G>
        {
            /// A layer with these parameters.
            pub const fn new(weight: SMatrix<T, CO, K>, bias: SMatrix<T, NB, 1>) -> Self {
                Self {
                    weight,
                    bias,
                    _geometry: PhantomData,
                }
            }
        }
    };
}

conv_common!(Conv2d);
conv_common!(Conv1d);

/// Compile-time checks of a convolution's sizes against its geometry.
pub(crate) const fn check_sizes<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
>() {
    assert!(
        CO > 0 && G::CI > 0,
        "convolution: channel counts must be at least 1"
    );
    assert!(
        K == G::CI * G::KH * G::KW,
        "convolution: K must be CI·KH·KW (CI·KL in 1-d)"
    );
    assert!(
        NB == 0 || NB == CO,
        "convolution: NB must be CO (with a bias) or 0 (without)"
    );
    assert!(
        IN == G::CI * G::H * G::W,
        "convolution: IN must be CI·H·W (CI·L in 1-d)"
    );
    assert!(
        OUT == CO * G::OH * G::OW,
        "convolution: OUT must be CO·OH·OW (CO·OL in 1-d)"
    );
}

impl<T, const CO: usize, const K: usize, const NB: usize, const IN: usize, const OUT: usize, G>
    Layer<T, IN, OUT> for Conv2d<T, CO, K, NB, IN, OUT, G>
where
    T: Real,
    G: ConvGeometry2d,
{
    const TENSORS: &'static [TensorInfo] = if NB > 0 {
        &[
            TensorInfo {
                name: "weight",
                shape: &[CO, G::CI, G::KH, G::KW],
                role: Role::Weight,
            },
            TensorInfo {
                name: "bias",
                shape: &[CO],
                role: Role::Bias,
            },
        ]
    } else {
        &[TensorInfo {
            name: "weight",
            shape: &[CO, G::CI, G::KH, G::KW],
            role: Role::Weight,
        }]
    };

    const SCRATCH_PER_CALL: usize = tile::<G, K>() + CO * K;

    type Cache<const B: usize> = ();
    type State = ();

    #[inline]
    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        scratch: &mut [T],
    ) {
        const { check_sizes::<G, CO, K, NB, IN, OUT>() };
        forward_batch::<T, G, CO, K, NB, IN, OUT, B>(
            self.weight.as_slice(),
            &self.bias,
            x,
            y,
            scratch,
        );
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        scratch: &mut [T],
    ) {
        const { check_sizes::<G, CO, K, NB, IN, OUT>() };
        backward_batch::<T, G, CO, K, NB, IN, OUT, B>(
            self.weight.as_slice(),
            x,
            dy,
            dx,
            &mut grads.weight,
            &mut grads.bias,
            scratch,
        );
    }
}

impl<T, const CO: usize, const K: usize, const NB: usize, const IN: usize, const OUT: usize, G>
    Layer<T, IN, OUT> for Conv1d<T, CO, K, NB, IN, OUT, G>
where
    T: Real,
    G: ConvGeometry1d,
{
    const TENSORS: &'static [TensorInfo] = if NB > 0 {
        &[
            TensorInfo {
                name: "weight",
                shape: &[CO, G::CI, G::K],
                role: Role::Weight,
            },
            TensorInfo {
                name: "bias",
                shape: &[CO],
                role: Role::Bias,
            },
        ]
    } else {
        &[TensorInfo {
            name: "weight",
            shape: &[CO, G::CI, G::K],
            role: Role::Weight,
        }]
    };

    const SCRATCH_PER_CALL: usize = tile::<Lift1d<G>, K>() + CO * K;

    type Cache<const B: usize> = ();
    type State = ();

    #[inline]
    fn forward<const B: usize>(
        &self,
        _: &(),
        x: &SMatrix<T, IN, B>,
        y: &mut SMatrix<T, OUT, B>,
        scratch: &mut [T],
    ) {
        const { check_sizes::<Lift1d<G>, CO, K, NB, IN, OUT>() };
        forward_batch::<T, Lift1d<G>, CO, K, NB, IN, OUT, B>(
            self.weight.as_slice(),
            &self.bias,
            x,
            y,
            scratch,
        );
    }

    #[inline]
    fn backward<const B: usize>(
        &self,
        x: &SMatrix<T, IN, B>,
        _cache: &(),
        dy: &SMatrix<T, OUT, B>,
        dx: Option<&mut SMatrix<T, IN, B>>,
        grads: &mut Self,
        scratch: &mut [T],
    ) {
        const { check_sizes::<Lift1d<G>, CO, K, NB, IN, OUT>() };
        backward_batch::<T, Lift1d<G>, CO, K, NB, IN, OUT, B>(
            self.weight.as_slice(),
            x,
            dy,
            dx,
            &mut grads.weight,
            &mut grads.bias,
            scratch,
        );
    }
}

/// Scalars of one sample's im2col tile, `K × OH·OW`: the layer's scratch per call.
pub(crate) const fn tile<G: ConvGeometry2d, const K: usize>() -> usize {
    K * G::OH * G::OW
}

/// The output positions `ow` in `lo..hi` (of `0..OW`) where a kernel column reading input
/// column `ow·S + offset − pad` is inside the input's `width` columns; outside them the tap is
/// in the zero padding.
#[inline(always)]
fn inside(
    offset: usize,
    pad: usize,
    stride: usize,
    width: usize,
    outputs: usize,
) -> (usize, usize) {
    // ow·S + offset ≥ pad  ⇔  ow ≥ ⌈(pad − offset)/S⌉.
    let lo = pad.saturating_sub(offset).div_ceil(stride);
    // ow·S + offset − pad < width  ⇔  ow·S < width + pad − offset
    //                             ⇔  ow < ⌈(width + pad − offset)/S⌉.
    let hi = (width + pad).saturating_sub(offset).div_ceil(stride);
    let hi = hi.min(outputs);
    (lo.min(hi), hi)
}

/// Calls `row(k, oh, lo, hi, start)` for every column `k = (ci·KH + kh)·KW + kw` of the
/// im2col matrix and every output row `oh`: the positions `oh·OW + ow` for `ow` in `lo..hi`
/// read the inputs `start + (ow − lo)·SW` of the sample (channel `ci`, row
/// `ih = oh·SH − PH + kh·DH`); the others (all of them when `start` is `None`: `ih` is in the
/// padding) read zeros.
#[inline(always)]
fn for_each_row<G: ConvGeometry2d>(mut row: impl FnMut(usize, usize, usize, usize, Option<usize>)) {
    let mut k = 0;
    for ci in 0..G::CI {
        for kh in 0..G::KH {
            for kw in 0..G::KW {
                let (lo, hi) = inside(kw * G::DW, G::PW, G::SW, G::W, G::OW);
                for oh in 0..G::OH {
                    // ih = oh·SH + kh·DH − PH, when it is in [0, H).
                    let ih = (oh * G::SH + kh * G::DH)
                        .checked_sub(G::PH)
                        .filter(|&ih| ih < G::H);
                    // The input column of position lo, lo·SW + kw·DW − PW, is in [0, W) when
                    // lo < hi (`inside`).
                    let start = ih
                        .filter(|_| lo < hi)
                        .map(|ih| (ci * G::H + ih) * G::W + lo * G::SW + kw * G::DW - G::PW);
                    row(k, oh, lo, hi, start);
                }
                k += 1;
            }
        }
    }
}

/// Calls `tap(k, index)` for every kernel tap `k = (ci·KH + kh)·KW + kw` of the output
/// position `p = oh·OW + ow`: `index` is the offset in the sample of the input the tap reads
/// (`ci·H·W + ih·W + iw` with `ih = oh·SH − PH + kh·DH`, `iw = ow·SW − PW + kw·DW`), or
/// `None` where the tap falls in the zero padding. One position at a time: the definition the
/// int8 convolution's gather (`quant::conv`, one input row per run of `KW` taps) is tested
/// against.
#[cfg(test)]
pub(crate) fn for_each_tap<G: ConvGeometry2d>(p: usize, mut tap: impl FnMut(usize, Option<usize>)) {
    let (oh, ow) = (p / G::OW, p % G::OW);
    let mut k = 0;
    for ci in 0..G::CI {
        for kh in 0..G::KH {
            // ih = oh·SH + kh·DH − PH, when it is in [0, H).
            let ih = (oh * G::SH + kh * G::DH)
                .checked_sub(G::PH)
                .filter(|&ih| ih < G::H);
            for kw in 0..G::KW {
                let iw = (ow * G::SW + kw * G::DW)
                    .checked_sub(G::PW)
                    .filter(|&iw| iw < G::W);
                let index = match (ih, iw) {
                    (Some(ih), Some(iw)) => Some((ci * G::H + ih) * G::W + iw),
                    _ => None,
                };
                tap(k, index);
                k += 1;
            }
        }
    }
}

/// Writes the im2col matrix of one sample `x` into `cols` as a `P × K` column-major matrix
/// (`P = OH·OW`): element `(p, k)` at `k·P + p` is the input tap `k` reads at output position
/// `p`, zero in the padding.
#[inline]
fn im2col<T: Real, G: ConvGeometry2d>(x: &[T], cols: &mut [T]) {
    let plane = G::OH * G::OW;
    for_each_row::<G>(|k, oh, lo, hi, start| {
        let row = &mut cols[k * plane + oh * G::OW..k * plane + (oh + 1) * G::OW];
        let Some(start) = start else {
            row.fill(T::ZERO);
            return;
        };
        row[..lo].fill(T::ZERO);
        row[hi..].fill(T::ZERO);
        if G::SW == 1 {
            row[lo..hi].copy_from_slice(&x[start..start + (hi - lo)]);
        } else {
            let input = x[start..].iter().step_by(G::SW);
            for (value, &input) in row[lo..hi].iter_mut().zip(input) {
                *value = input;
            }
        }
    });
}

/// Adds the `P × K` matrix `d_cols` (laid out as [`im2col`]'s) back into the inputs each of
/// its elements was gathered from (col2im): the transpose of [`im2col`].
#[inline]
fn col2im_add<T: Real, G: ConvGeometry2d>(d_cols: &[T], dx: &mut [T]) {
    let plane = G::OH * G::OW;
    for_each_row::<G>(|k, oh, lo, hi, start| {
        let Some(start) = start else {
            return;
        };
        let row = &d_cols[k * plane + oh * G::OW + lo..k * plane + oh * G::OW + hi];
        if G::SW == 1 {
            for (dx, &d) in dx[start..start + (hi - lo)].iter_mut().zip(row) {
                *dx += d;
            }
        } else {
            for (dx, &d) in dx[start..].iter_mut().step_by(G::SW).zip(row) {
                *dx += d;
            }
        }
    });
}

/// Writes rows `rows` of the im2col matrix of one sample `x` into `cols` position by
/// position, as a `rows.len() × P` column-major matrix: the rows `rows` of `X̃`, `K × P`
/// (element `(k, p)` at `p·rows.len() + k − rows.start`). The layout in which the weight
/// gradient is a GEMM that reads both operands in place, `∂Wᵀ (K × CO) += X̃·∂Y_s` (see
/// [`weight_gradient_by_gemm`]), for any block of `∂Wᵀ`'s rows. A run of `KW` taps of one
/// input row at a time (one copy when they are all inside the input and `DW = 1`).
///
/// In `f32` on AVX-512, with `DW = 1`, by masked vector moves
/// ([`implicit::im2col_by_positions`]: the same values).
#[inline]
fn im2col_by_positions<T: Real, G: ConvGeometry2d, const K: usize>(
    x: &[T],
    rows: Range<usize>,
    cols: &mut [T],
) {
    assert!(rows.start <= rows.end && rows.end <= K);
    let cols = &mut cols[..rows.len() * G::OH * G::OW];
    #[cfg(target_arch = "x86_64")]
    if size_of::<T>() == 4
        && const { implicit::lowers_by_positions::<G>() }
        && crate::kernels::has_avx512()
    {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes); the
        // CPU has AVX-512F; DW = 1 and KW ≤ 16; `x` is one sample, `rows` inside `0..K`,
        // `cols` holds their `rows.len()·P` scalars.
        unsafe { implicit::im2col_by_positions::<G, K>(as_f32(x), rows, as_f32_mut(cols)) };
        return;
    }
    im2col_by_positions_loops::<T, G, K>(x, rows, cols);
}

/// [`im2col_by_positions`]'s portable loops.
fn im2col_by_positions_loops<T: Real, G: ConvGeometry2d, const K: usize>(
    x: &[T],
    rows: Range<usize>,
    cols: &mut [T],
) {
    // The whole lowering with its bounds as constants (the tests of `rows` fold away).
    if rows.start == 0 && rows.end == K {
        lower_rows_loops::<T, G, K, true>(x, 0..K, cols);
    } else {
        lower_rows_loops::<T, G, K, false>(x, rows, cols);
    }
}

/// [`im2col_by_positions_loops`]'s body: for rows `0..K` when `WHOLE` (as constants,
/// whatever `rows` says), else for `rows`.
fn lower_rows_loops<T: Real, G: ConvGeometry2d, const K: usize, const WHOLE: bool>(
    x: &[T],
    rows: Range<usize>,
    cols: &mut [T],
) {
    let rows = if WHOLE { 0..K } else { rows };
    let ld = rows.len();
    if ld == 0 {
        return;
    }
    for oh in 0..G::OH {
        for ow in 0..G::OW {
            let p = oh * G::OW + ow;
            let column = &mut cols[p * ld..(p + 1) * ld];
            // The input columns of the position's first and last taps, when all are inside.
            let first = (ow * G::SW).checked_sub(G::PW);
            let inside = first.filter(|&iw| iw + (G::KW - 1) * G::DW < G::W);
            for ci in 0..G::CI {
                for kh in 0..G::KH {
                    // The run's taps k..k + KW, and `lo..hi` of them in `rows`.
                    let k = (ci * G::KH + kh) * G::KW;
                    if k + G::KW <= rows.start || k >= rows.end {
                        continue;
                    }
                    let (lo, hi) = (rows.start.max(k) - k, rows.end.min(k + G::KW) - k);
                    let run = &mut column[k + lo - rows.start..k + hi - rows.start];
                    // ih = oh·SH + kh·DH − PH, when it is in [0, H).
                    let Some(ih) = (oh * G::SH + kh * G::DH)
                        .checked_sub(G::PH)
                        .filter(|&ih| ih < G::H)
                    else {
                        run.fill(T::ZERO);
                        continue;
                    };
                    let row = (ci * G::H + ih) * G::W;
                    match inside {
                        Some(iw) if G::DW == 1 => {
                            run.copy_from_slice(&x[row + iw + lo..row + iw + hi]);
                        }
                        Some(iw) => {
                            for (kw, value) in (lo..).zip(run.iter_mut()) {
                                *value = x[row + iw + kw * G::DW];
                            }
                        }
                        None => {
                            for (kw, value) in (lo..).zip(run.iter_mut()) {
                                let iw = (ow * G::SW + kw * G::DW)
                                    .checked_sub(G::PW)
                                    .filter(|&iw| iw < G::W);
                                *value = iw.map_or(T::ZERO, |iw| x[row + iw]);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Whether the backward pass computes the weight gradient as a GEMM on the position-major
/// lowering ([`im2col_by_positions`]), `∂Wᵀ (K × CO) += X̃ (K × P)·∂Y_s (P × CO)`, rather
/// than as dot products of `∂Y_s`'s and `X̃ᵀ`'s columns, `∂W (CO × K) += ∂Y_sᵀ·X̃ᵀ`: when
/// the GEMM's register tiles (32 × 8 for `f32` with AVX-512) are well filled, `K ≥ 64` rows
/// and `CO ≥ 8` columns. Measured on LeNet-5's second convolution (`K = 150`, `CO = 16`,
/// `P = 100`, batch 32): lowering and weight gradient 510 → 398 µs; its first (`K = 25`,
/// `CO = 6`, `P = 784`) is faster with the dot products (411 against 438 µs).
pub(crate) const fn weight_gradient_by_gemm<const CO: usize, const K: usize>() -> bool {
    K >= 64 && CO >= 8
}

/// `Y = W ⋆ X + b` for a batch, one sample at a time: the im2col matrix `X̃ᵀ` (`P × K`) into
/// `scratch`, then `Y_s = X̃ᵀ·Wᵀ (+ b)`, the sample's output as a `P × CO` column-major
/// matrix (channel `co` of position `p` at `co·P + p`, PyTorch's layout). `weight`: the
/// `CO × K` weight's column-major values (a [`Conv2d`]'s, or the fake-quantized ones of
/// [`QatConv2d`](crate::quant::QatConv2d)).
pub(crate) fn forward_batch<
    T: Real,
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    weight: &[T],
    bias: &SMatrix<T, NB, 1>,
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
    scratch: &mut [T],
) {
    if B == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if size_of::<T>() == 4
        && const { implicit::applies::<G, CO, K>() }
        && crate::kernels::has_avx512()
    {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes), so
        // the slices can be read as f32; the CPU has AVX-512F; `applies` holds, so the
        // padded plane and the wide result fit in the K·P scalars of scratch every caller
        // gives (at least one tile); the weight has CO·K scalars, the bias NB.
        unsafe {
            implicit::forward::<G, CO, K, IN, OUT>(
                as_f32(weight),
                as_f32(bias.as_slice()),
                as_f32(x.as_slice()),
                as_f32_mut(y.as_mut_slice()),
                as_f32_mut(scratch),
            );
        }
        return;
    }
    forward_lowered::<T, G, CO, K, NB, IN, OUT, B>(weight, bias, x, y, scratch);
}

/// The scalars of `s` as `f32`.
///
/// # Safety
/// `T` is `f32`.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32<T>(s: &[T]) -> &[f32] {
    // SAFETY: the caller's contract: the same type.
    unsafe { core::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) }
}

/// The scalars of `s` as `f32`, writable.
///
/// # Safety
/// `T` is `f32`.
#[cfg(target_arch = "x86_64")]
unsafe fn as_f32_mut<T>(s: &mut [T]) -> &mut [f32] {
    // SAFETY: the caller's contract: the same type.
    unsafe { core::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) }
}

/// [`forward_batch`] by the im2col lowering, one sample at a time.
fn forward_lowered<
    T: Real,
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    weight: &[T],
    bias: &SMatrix<T, NB, 1>,
    x: &SMatrix<T, IN, B>,
    y: &mut SMatrix<T, OUT, B>,
    scratch: &mut [T],
) {
    let plane = G::OH * G::OW;
    let cols = &mut scratch[..tile::<G, K>()];
    // Wᵀ, K × CO: the transposed view of the CO × K weight.
    let w_t = MatView::new(&weight[..CO * K], CO).t();
    let samples = x.as_slice().chunks_exact(IN);
    for (x, y) in samples.zip(y.as_mut_slice().chunks_exact_mut(OUT)) {
        im2col::<T, G>(x, cols);
        if NB > 0 {
            for (co, y) in y.chunks_exact_mut(plane).enumerate() {
                y.fill(bias[co]);
            }
        }
        // Y_s (P × CO) = X̃ᵀ (P × K) · Wᵀ (K × CO).
        matmul_view(
            plane,
            CO,
            K,
            y,
            plane,
            MatView::new(cols, plane),
            w_t,
            NB > 0,
        );
    }
}

/// Adds `∂L/∂W`, `∂L/∂b` (when `NB > 0`) and, when `dx` is given, `∂L/∂X` for a batch, one
/// sample at a time, with `∂Y_s` the sample's `∂L/∂y` as a `P × CO` matrix and `X̃ᵀ` its
/// im2col matrix rebuilt in `scratch`: `∂L/∂W += ∂Y_sᵀ·X̃ᵀ` (or, when
/// [`weight_gradient_by_gemm`], `∂Wᵀ += X̃·∂Y_s` summed over the batch in `scratch` after the
/// tile, then added to `∂L/∂W`), `∂L/∂b +=` the column sums of `∂Y_s`, and `∂X̃ᵀ = ∂Y_s·W`
/// (into the same scratch, the lowering being used up) added back to the inputs it was
/// gathered from (col2im). `weight`: the `CO × K` weight's column-major values. `scratch`
/// holds at least `K·P + CO·K` scalars.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_batch<
    T: Real,
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const NB: usize,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    weight: &[T],
    x: &SMatrix<T, IN, B>,
    dy: &SMatrix<T, OUT, B>,
    mut dx: Option<&mut SMatrix<T, IN, B>>,
    d_weight: &mut SMatrix<T, CO, K>,
    d_bias: &mut SMatrix<T, NB, 1>,
    scratch: &mut [T],
) {
    if B == 0 {
        return;
    }
    let plane = G::OH * G::OW;
    let by_gemm = const { weight_gradient_by_gemm::<CO, K>() };
    // ∂W without the lowering (an implicit GEMM's dot products), before the samples' loop.
    #[cfg(target_arch = "x86_64")]
    let implicit = !by_gemm
        && size_of::<T>() == 4
        && const { implicit::applies::<G, CO, K>() }
        && crate::kernels::has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    let implicit = false;
    #[cfg(target_arch = "x86_64")]
    if implicit {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes); the
        // CPU has AVX-512F; `applies` holds, so the padded plane and the widened ∂Y fit in
        // the K·P scalars of scratch every caller gives.
        unsafe {
            implicit::weight_gradient::<G, CO, K, IN, OUT>(
                as_f32(x.as_slice()),
                as_f32(dy.as_slice()),
                as_f32_mut(d_weight.as_mut_slice()),
                as_f32_mut(scratch),
            );
        }
    }
    // ∂X as a forward convolution of ∂Y, after the samples' loop (`implicit::input_gradient`).
    #[cfg(target_arch = "x86_64")]
    let dx_implicit = size_of::<T>() == 4
        && const {
            !matches!(
                implicit::input_gradient_path::<G, CO, K>(),
                implicit::InputGradient::Lowered
            )
        }
        && crate::kernels::has_avx512();
    #[cfg(not(target_arch = "x86_64"))]
    let dx_implicit = false;
    let (cols, rest) = scratch.split_at_mut(tile::<G, K>());
    // ∂Wᵀ (K × CO) of the batch, when computed by the GEMM.
    let d_weight_t = &mut rest[..if by_gemm { K * CO } else { 0 }];
    if by_gemm {
        weight_gradient_t_by_gemm::<T, G, CO, K, IN, OUT, B>(x, dy, d_weight_t, cols);
    }
    let w = MatView::new(&weight[..CO * K], CO);
    let samples = x.as_slice().chunks_exact(IN);
    for (j, (x, dy)) in samples.zip(dy.as_slice().chunks_exact(OUT)).enumerate() {
        let dy_s = MatView::new(dy, plane);
        if !by_gemm && !implicit {
            im2col::<T, G>(x, cols);
            // ∂W (CO × K) += ∂Y_sᵀ (CO × P) · X̃ᵀ (P × K).
            matmul_view(
                CO,
                K,
                plane,
                d_weight.as_mut_slice(),
                CO,
                dy_s.t(),
                MatView::new(cols, plane),
                true,
            );
        }
        let Some(dx) = dx.as_deref_mut().filter(|_| !dx_implicit) else {
            continue;
        };
        // ∂X̃ᵀ (P × K) = ∂Y_s (P × CO) · W (CO × K).
        matmul_view(plane, K, CO, cols, plane, dy_s, w, false);
        col2im_add::<T, G>(cols, &mut dx.as_mut_slice()[j * IN..(j + 1) * IN]);
    }
    if NB > 0 {
        bias_gradient::<T, OUT, B>(plane, dy, d_bias.as_mut_slice());
    }
    if by_gemm {
        // ∂W += (∂Wᵀ)ᵀ.
        for (k, column) in d_weight.as_mut_slice().chunks_exact_mut(CO).enumerate() {
            for (co, d) in column.iter_mut().enumerate() {
                *d += d_weight_t[co * K + k];
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if dx_implicit && let Some(dx) = dx {
        // SAFETY: T is f32 (`Real` is sealed to f32 and f64, and this one has 4 bytes); the
        // CPU has AVX-512F; `input_gradient_path` is not `Lowered`; the weight has CO·K scalars,
        // `dy` and `dx` B samples, `scratch` K·P + CO·K scalars (the lowering and ∂Wᵀ are
        // used up).
        unsafe {
            implicit::input_gradient::<G, CO, K, IN, OUT>(
                const { implicit::input_gradient_path::<G, CO, K>() },
                as_f32(weight),
                as_f32(dy.as_slice()),
                as_f32_mut(dx.as_mut_slice()),
                as_f32_mut(&mut scratch[..tile::<G, K>() + CO * K]),
            );
        }
    }
}

/// `∂Wᵀ (K × CO) = Σ_s X̃_s (K × P) · ∂Y_s (P × CO)` over the batch ([`weight_gradient_by_gemm`]),
/// sample after sample, into `d_weight_t`: its rows in blocks starting at multiples of
/// [`ROW_GRANULE`](crate::parallel::ROW_GRANULE), one block per thread of a pool when the
/// product is large ([`for_parts_indexed`]), each block lowering its own rows of `X̃_s` into
/// its own rows' worth of `cols` (a `K·P` tile): each element the same chain of multiply-adds
/// (`kernels::gemm_unsplit`), so the same bits on any number of threads.
fn weight_gradient_t_by_gemm<
    T: Real,
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
    const B: usize,
>(
    x: &SMatrix<T, IN, B>,
    dy: &SMatrix<T, OUT, B>,
    d_weight_t: &mut [T],
    cols: &mut [T],
) {
    let plane = G::OH * G::OW;
    assert!(d_weight_t.len() >= K * CO && cols.len() >= K * plane);
    let (d_weight_t, cols) = (
        SharedPtr(d_weight_t.as_mut_ptr()),
        SharedPtr(cols.as_mut_ptr()),
    );
    let work = K * CO * plane * B;
    let granule = crate::parallel::ROW_GRANULE;
    for_parts_indexed(K, granule, work, usize::MAX, &|_, first, count| {
        // SAFETY: the parts' blocks of rows are disjoint and inside `0..K`, so their pieces of
        // `cols` (`count·P` scalars from `first·P`) are disjoint and inside it, and the rows
        // of `∂Wᵀ` they write too (`d_weight_t` holds `K·CO`); both borrowed for this call.
        let piece = unsafe {
            core::slice::from_raw_parts_mut(cols.get().add(first * plane), count * plane)
        };
        let samples = x
            .as_slice()
            .chunks_exact(IN)
            .zip(dy.as_slice().chunks_exact(OUT));
        for (j, (x, dy)) in samples.enumerate() {
            im2col_by_positions::<T, G, K>(x, first..first + count, piece);
            // Rows `first..first + count` of ∂Wᵀ (K × CO) (+)= X̃ (K × P) · ∂Y_s (P × CO).
            // SAFETY: as above, the block of rows is this part's alone.
            unsafe {
                gemm_unsplit(
                    count,
                    CO,
                    plane,
                    d_weight_t.get().add(first),
                    K,
                    MatView::new(piece, count),
                    MatView::new(dy, plane),
                    j > 0,
                );
            }
        }
    });
}

/// `∂L/∂b +=` the sums of each channel's `plane` values of `∂Y` over the batch, channel by
/// channel, sample after sample: one channel's sums on each thread of a pool when `∂Y` is large
/// ([`for_samples`]), the same bits.
fn bias_gradient<T: Real, const OUT: usize, const B: usize>(
    plane: usize,
    dy: &SMatrix<T, OUT, B>,
    d_bias: &mut [T],
) {
    let channels = d_bias.len();
    let d_bias_ptr = SharedPtr(d_bias.as_mut_ptr());
    for_samples(channels, plane * B, &|first, count| {
        // SAFETY: the runs of channels are disjoint and inside `d_bias`, borrowed mutably for
        // this whole call.
        let d_bias = unsafe { core::slice::from_raw_parts_mut(d_bias_ptr.get().add(first), count) };
        for (c, d) in d_bias.iter_mut().enumerate() {
            let at = (first + c) * plane;
            for dy in dy.as_slice().chunks_exact(OUT) {
                *d += crate::kernels::sum(&dy[at..at + plane]);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Init;
    use crate::layers::geometry::{Geometry1d, Geometry2d};
    use crate::test_util::{check_layer, max_diff, random_matrix, scratch_for};

    /// The naive direct convolution of one sample, from the definition: every output, every
    /// tap, with the padding tested in signed arithmetic.
    fn naive<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const OUT: usize,
    >(
        weight: &SMatrix<f64, CO, K>,
        bias: &SMatrix<f64, NB, 1>,
        x: &[f64],
    ) -> SMatrix<f64, OUT, 1> {
        let mut y = SMatrix::<f64, OUT, 1>::ZERO;
        for co in 0..CO {
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let mut sum = if NB > 0 { bias[co] } else { 0.0 };
                    for ci in 0..G::CI {
                        for kh in 0..G::KH {
                            for kw in 0..G::KW {
                                let ih = (oh * G::SH + kh * G::DH) as isize - G::PH as isize;
                                let iw = (ow * G::SW + kw * G::DW) as isize - G::PW as isize;
                                if ih < 0 || iw < 0 || ih >= G::H as isize || iw >= G::W as isize {
                                    continue;
                                }
                                let (ih, iw) = (ih as usize, iw as usize);
                                let k = (ci * G::KH + kh) * G::KW + kw;
                                sum += weight[(co, k)] * x[(ci * G::H + ih) * G::W + iw];
                            }
                        }
                    }
                    y[(co * G::OH + oh) * G::OW + ow] = sum;
                }
            }
        }
        y
    }

    /// Compares the batched forward pass with [`naive`] on each sample, for random values.
    fn agrees_with_naive<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
    >(
        seed: u64,
    ) {
        let layer = Conv2d::<f64, CO, K, NB, IN, OUT, G>::new(
            random_matrix(seed, 1.0),
            random_matrix(seed + 1, 1.0),
        );
        let x = random_matrix::<IN, 3>(seed + 2, 1.0);
        let mut y = SMatrix::<f64, OUT, 3>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        for j in 0..3 {
            let expected =
                naive::<G, CO, K, NB, OUT>(&layer.weight, &layer.bias, x.column(j).as_slice());
            assert!(
                max_diff(y.column(j).as_slice(), expected.as_slice()) < 1e-12,
                "{}",
                core::any::type_name::<G>()
            );
        }
    }

    /// `(∂L/∂W, ∂L/∂b, ∂L/∂x)` of one sample by the definition, for the upstream gradient
    /// `dy`: every term `W[co, k]·x[i]` of [`naive`] sends `dy[co, p]·x[i]` to `∂W[co, k]`
    /// and `dy[co, p]·W[co, k]` to `∂x[i]`.
    fn naive_backward<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
    >(
        weight: &SMatrix<f64, CO, K>,
        x: &[f64],
        dy: &[f64],
    ) -> (
        SMatrix<f64, CO, K>,
        SMatrix<f64, NB, 1>,
        SMatrix<f64, IN, 1>,
    ) {
        let (mut dw, mut db, mut dx) = (SMatrix::ZERO, SMatrix::ZERO, SMatrix::ZERO);
        for co in 0..CO {
            for oh in 0..G::OH {
                for ow in 0..G::OW {
                    let d = dy[(co * G::OH + oh) * G::OW + ow];
                    if NB > 0 {
                        db[co] += d;
                    }
                    for ci in 0..G::CI {
                        for kh in 0..G::KH {
                            for kw in 0..G::KW {
                                let ih = (oh * G::SH + kh * G::DH) as isize - G::PH as isize;
                                let iw = (ow * G::SW + kw * G::DW) as isize - G::PW as isize;
                                if ih < 0 || iw < 0 || ih >= G::H as isize || iw >= G::W as isize {
                                    continue;
                                }
                                let i = (ci * G::H + ih as usize) * G::W + iw as usize;
                                let k = (ci * G::KH + kh) * G::KW + kw;
                                dw[(co, k)] += d * x[i];
                                dx[i] += d * weight[(co, k)];
                            }
                        }
                    }
                }
            }
        }
        (dw, db, dx)
    }

    /// Compares the batched forward and backward passes (`B` samples, from non-zero
    /// gradients, with scratch full of NaN) with [`naive`] and [`naive_backward`].
    fn agrees_with_naive_both_ways<
        G: ConvGeometry2d + Copy + core::fmt::Debug + PartialEq,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        let name = core::any::type_name::<G>();
        let layer = Conv2d::<f64, CO, K, NB, IN, OUT, G>::new(
            random_matrix(seed, 1.0),
            random_matrix(seed + 1, 1.0),
        );
        let x = random_matrix::<IN, B>(seed + 2, 1.0);
        let dy = random_matrix::<OUT, B>(seed + 3, 1.0);
        let start_dx = random_matrix::<IN, B>(seed + 4, 1.0);
        let start = Conv2d::new(random_matrix(seed + 5, 1.0), random_matrix(seed + 6, 1.0));
        let mut scratch = scratch_for(&layer, &x);
        // One im2col tile and a CO × K matrix, whatever the batch.
        assert_eq!(scratch.len(), K * G::OH * G::OW + CO * K);
        let mut y = SMatrix::<f64, OUT, B>::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch);
        let (mut dx, mut grads) = (start_dx, start);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut scratch);
        // Without ∂L/∂x: the same parameter gradients.
        let mut params_only = start;
        layer.backward(&x, &(), &dy, None, &mut params_only, &mut scratch);
        assert_eq!(params_only, grads, "{name}");
        let (mut dw, mut db) = (start.weight, start.bias);
        for j in 0..B {
            let (xj, dyj) = (x.column(j), dy.column(j));
            let expected = naive::<G, CO, K, NB, OUT>(&layer.weight, &layer.bias, xj.as_slice());
            assert!(
                max_diff(y.column(j).as_slice(), expected.as_slice()) < 1e-12,
                "forward {name}"
            );
            let (w, b, dxj) =
                naive_backward::<G, CO, K, NB, IN>(&layer.weight, xj.as_slice(), dyj.as_slice());
            (dw, db) = (dw + w, db + b);
            let expected_dx = dxj + start_dx.column(j);
            assert!(
                max_diff(dx.column(j).as_slice(), expected_dx.as_slice()) < 1e-12,
                "dx {name}"
            );
        }
        assert!(
            max_diff(grads.weight.as_slice(), dw.as_slice()) < 1e-12,
            "dW {name}"
        );
        assert!(
            max_diff(grads.bias.as_slice(), db.as_slice()) < 1e-12,
            "db {name}"
        );
    }

    #[test]
    fn dilation_stride_padding_channels_batches_match_naive_both_ways() {
        // <CI, H, W, KH, KW, SH, SW, PH, PW, DH, DW>, CO, K = CI·KH·KW, NB, IN, OUT, B.
        // 3 channels of 9×8, kernel 3×3, stride 2, padding 2, dilation 2: OH = OW = 4
        // ((9 + 4 − 4 − 1)/2 + 1 = 5 rows; (8 + 4 − 4 − 1)/2 + 1 = 4 columns).
        type A = Geometry2d<3, 9, 8, 3, 3, 2, 2, 2, 2, 2, 2>;
        assert_eq!((A::OH, A::OW), (5, 4));
        agrees_with_naive_both_ways::<A, 4, 27, 4, 216, 80, 3>(50);
        agrees_with_naive_both_ways::<A, 4, 27, 4, 216, 80, 1>(51);
        agrees_with_naive_both_ways::<A, 4, 27, 0, 216, 80, 2>(52);
        // Stride 1 across (contiguous rows), dilation 3 across, stride 3 down, padding 1 × 4.
        type Bg = Geometry2d<2, 7, 10, 2, 3, 3, 1, 1, 4, 1, 3>;
        agrees_with_naive_both_ways::<Bg, 5, 12, 5, 140, 180, 4>(53);
        // Padding larger than the kernel's reach (whole rows and kernel columns in the
        // padding), and a 1×1 kernel with stride 2.
        type C = Geometry2d<2, 3, 4, 2, 2, 1, 2, 3, 2, 1, 1>;
        agrees_with_naive_both_ways::<C, 3, 8, 3, 24, 96, 2>(54);
        type D = Geometry2d<3, 4, 5, 1, 1, 2, 2, 0, 0, 1, 1>;
        agrees_with_naive_both_ways::<D, 2, 3, 0, 60, 12, 3>(55);
        // Bigger than the direct products (the blocked GEMM's edges): 8 → 16 channels on 12×12.
        type E = Geometry2d<8, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1>;
        agrees_with_naive_both_ways::<E, 16, 72, 16, 1152, 2304, 2>(56);
    }

    /// The forward pass in `f32` (without the lowering where AVX-512 runs the implicit GEMM)
    /// against [`naive`] in `f64` on the same values, and, when `same_bits`, bit for bit
    /// against the lowered pass.
    #[cfg(target_arch = "x86_64")]
    fn f32_forward_matches<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
        same_bits: bool,
    ) {
        let name = core::any::type_name::<G>();
        let (w, b) = (
            random_matrix::<CO, K>(seed, 1.0),
            random_matrix::<NB, 1>(seed + 1, 1.0),
        );
        let x = random_matrix::<IN, B>(seed + 2, 1.0);
        let layer = Conv2d::<f32, CO, K, NB, IN, OUT, G>::new(w.cast(), b.cast());
        let x32: SMatrix<f32, IN, B> = x.cast();
        let mut scratch = std::vec![f32::NAN; <Conv2d<f32, CO, K, NB, IN, OUT, G> as Layer<f32, IN, OUT>>::SCRATCH_PER_CALL];
        let mut y = SMatrix::<f32, OUT, B>::ZERO;
        layer.forward(&(), &x32, &mut y, &mut scratch);
        let mut lowered = SMatrix::<f32, OUT, B>::ZERO;
        scratch.fill(f32::NAN);
        forward_lowered::<f32, G, CO, K, NB, IN, OUT, B>(
            layer.weight.as_slice(),
            &layer.bias,
            &x32,
            &mut lowered,
            &mut scratch,
        );
        if same_bits {
            assert_eq!(y, lowered, "{name}");
        }
        let (w64, b64): (SMatrix<f64, CO, K>, SMatrix<f64, NB, 1>) =
            (layer.weight.cast(), layer.bias.cast());
        for j in 0..B {
            let xj: std::vec::Vec<f64> = x32.column(j).iter().map(|&v| f64::from(v)).collect();
            let expected = naive::<G, CO, K, NB, OUT>(&w64, &b64, &xj);
            for (got, want) in y.column(j).iter().zip(expected.iter()) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-4,
                    "{name}: {got} against {want}"
                );
            }
        }
    }

    /// The backward pass in `f32` (the weight gradient without the lowering where AVX-512
    /// runs the implicit GEMM's dot products) against [`naive_backward`] in `f64` on the same
    /// values; the parameter gradients the same bits with and without `∂L/∂x`.
    #[cfg(target_arch = "x86_64")]
    fn f32_backward_matches<
        G: ConvGeometry2d + Copy,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        type L<
            T,
            const CO: usize,
            const K: usize,
            const NB: usize,
            const IN: usize,
            const OUT: usize,
            G,
        > = Conv2d<T, CO, K, NB, IN, OUT, G>;
        let name = core::any::type_name::<G>();
        let layer = L::<f32, CO, K, NB, IN, OUT, G>::new(
            random_matrix::<CO, K>(seed, 1.0).cast(),
            random_matrix::<NB, 1>(seed + 1, 1.0).cast(),
        );
        let x: SMatrix<f32, IN, B> = random_matrix::<IN, B>(seed + 2, 1.0).cast();
        let dy: SMatrix<f32, OUT, B> = random_matrix::<OUT, B>(seed + 3, 1.0).cast();
        let start = L::<f32, CO, K, NB, IN, OUT, G>::new(
            random_matrix::<CO, K>(seed + 4, 1.0).cast(),
            random_matrix::<NB, 1>(seed + 5, 1.0).cast(),
        );
        let size = <L<f32, CO, K, NB, IN, OUT, G> as Layer<f32, IN, OUT>>::SCRATCH_PER_CALL;
        let mut scratch = std::vec![f32::NAN; size];
        let (mut grads, mut dx) = (start, SMatrix::<f32, IN, B>::ZERO);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut scratch);
        let mut params_only = start;
        scratch.fill(f32::NAN);
        layer.backward(&x, &(), &dy, None, &mut params_only, &mut scratch);
        assert_eq!(params_only.weight, grads.weight, "{name}");
        assert_eq!(params_only.bias, grads.bias, "{name}");
        let w64: SMatrix<f64, CO, K> = layer.weight.cast();
        let mut dw: SMatrix<f64, CO, K> = start.weight.cast();
        for j in 0..B {
            let xj: std::vec::Vec<f64> = x.column(j).iter().map(|&v| f64::from(v)).collect();
            let dyj: std::vec::Vec<f64> = dy.column(j).iter().map(|&v| f64::from(v)).collect();
            let (w, _, dxj) = naive_backward::<G, CO, K, NB, IN>(&w64, &xj, &dyj);
            dw += w;
            for (got, want) in dx.column(j).iter().zip(dxj.iter()) {
                assert!((f64::from(*got) - want).abs() < 1e-4, "{name} ∂x");
            }
        }
        // Sums of P·B products of values below 1.
        let tolerance = 1e-6 * (G::OH * G::OW * B) as f64;
        for (got, want) in grads.weight.iter().zip(dw.iter()) {
            assert!(
                (f64::from(*got) - want).abs() < tolerance,
                "{name} ∂W: {got} against {want}"
            );
        }
    }

    /// The position-major lowering by masked vector moves against the portable loops, bit
    /// for bit (where the CPU has AVX-512), whole and for blocks of rows (starting and ending
    /// inside runs of taps, empty, at the ends): each block the rows of the whole lowering.
    #[cfg(target_arch = "x86_64")]
    fn lowerings_agree<G: ConvGeometry2d, const K: usize, const IN: usize>(seed: u64) {
        assert!(implicit::lowers_by_positions::<G>());
        let x: SMatrix<f32, IN, 1> = random_matrix::<IN, 1>(seed, 1.0).cast();
        let plane = G::OH * G::OW;
        let mut whole = std::vec![f32::NAN; K * plane];
        im2col_by_positions_loops::<f32, G, K>(x.as_slice(), 0..K, &mut whole);
        let blocks = [
            0..K,
            0..0,
            1..K - 1,
            K / 2..K,
            0..K / 3,
            G::KW - 1..G::KW + 1,
            K - 1..K,
        ];
        for rows in blocks {
            let size = rows.len() * plane;
            let (mut fast, mut loops) = (std::vec![f32::NAN; size], std::vec![f32::NAN; size]);
            im2col_by_positions::<f32, G, K>(x.as_slice(), rows.clone(), &mut fast);
            im2col_by_positions_loops::<f32, G, K>(x.as_slice(), rows.clone(), &mut loops);
            let expected =
                (0..plane).flat_map(|p| whole[p * K + rows.start..p * K + rows.end].iter());
            for (at, ((a, b), c)) in fast.iter().zip(&loops).zip(expected).enumerate() {
                assert!(
                    a.to_bits() == c.to_bits() && b.to_bits() == c.to_bits(),
                    "{} rows {rows:?}, element {at}",
                    core::any::type_name::<G>()
                );
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn position_major_lowerings_agree() {
        lowerings_agree::<Geometry2d<6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1>, 150, 1176>(90);
        lowerings_agree::<Geometry2d<1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1>, 25, 784>(91);
        // Stride 2, padding 2 (runs partly and wholly in the padding), dilation 2 down.
        lowerings_agree::<Geometry2d<8, 9, 8, 3, 3, 2, 2, 2, 2, 2, 1>, 72, 576>(92);
        // Padding wider than the kernel's reach, stride 3 across, 1 × 17 → 2 × 16 taps.
        lowerings_agree::<Geometry2d<2, 3, 4, 2, 2, 1, 3, 3, 2, 1, 1>, 8, 24>(93);
        lowerings_agree::<Geometry2d<1, 2, 20, 2, 16, 1, 1, 0, 1, 1, 1>, 32, 40>(94);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn implicit_weight_gradients_match_naive() {
        // LeNet-5's first convolution (padding 2), 6 channels (a tile of 4 and one of 2),
        // 25 taps (six tiles of 4 and one of 1).
        type C1 = Geometry2d<1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1>;
        f32_backward_matches::<C1, 6, 25, 6, 784, 4704, 3>(80);
        // Padding 2 × 1, dilation 2 × 3, 19 channels, 48 taps; B = 1 and 2, without a bias.
        type D = Geometry2d<8, 11, 13, 3, 2, 1, 1, 2, 1, 2, 3>;
        f32_backward_matches::<D, 19, 48, 19, 1144, 2508, 1>(81);
        f32_backward_matches::<D, 19, 48, 0, 1144, 2508, 2>(82);
        // 300 taps, 4 channels.
        type E = Geometry2d<12, 8, 8, 5, 5, 1, 1, 2, 2, 1, 1>;
        f32_backward_matches::<E, 4, 300, 4, 768, 256, 2>(83);
        // LeNet-5's second convolution: the GEMM on the position-major lowering (in f32 by
        // masked vector moves where DW = 1), also with padding, stride 2, dilation 2 down.
        type C2 = Geometry2d<6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1>;
        f32_backward_matches::<C2, 16, 150, 16, 1176, 1600, 2>(84);
        type F = Geometry2d<8, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1>;
        f32_backward_matches::<F, 16, 72, 16, 1152, 2304, 2>(85);
        type H = Geometry2d<8, 9, 8, 3, 3, 2, 2, 2, 2, 2, 1>;
        assert_eq!((H::OH, H::OW), (5, 5));
        f32_backward_matches::<H, 9, 72, 0, 576, 225, 3>(86);
        // Dilation 2 across: the scalar loops.
        type J = Geometry2d<8, 9, 8, 3, 3, 2, 2, 2, 2, 1, 2>;
        f32_backward_matches::<J, 9, 72, 9, 576, 216, 2>(87);
    }

    /// `∂L/∂x` in `f32` by the layer and by [`implicit::input_gradient`] each way that may run
    /// ([`implicit::input_gradient_fits`]), against
    /// [`naive_backward`] in `f64` on the same values (by [`f32_backward_matches`], which also
    /// checks the parameter gradients), and against central differences of the `f32` forward
    /// pass of `L = Σ ∂y·y` (linear in `x`: only rounding separates them).
    #[cfg(target_arch = "x86_64")]
    fn f32_input_gradient_matches<
        G: ConvGeometry2d + Copy,
        const CO: usize,
        const K: usize,
        const NB: usize,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        let name = core::any::type_name::<G>();
        let (rows, wide) = implicit::input_gradient_fits::<G, CO, K>();
        assert!(rows || wide, "{name}");
        f32_backward_matches::<G, CO, K, NB, IN, OUT, B>(seed);
        // Both ways of the convolution (where each may run), onto a non-zero ∂x.
        let weight: SMatrix<f32, CO, K> = random_matrix::<CO, K>(seed + 20, 1.0).cast();
        let dy: SMatrix<f32, OUT, B> = random_matrix::<OUT, B>(seed + 21, 1.0).cast();
        let start: SMatrix<f32, IN, B> = random_matrix::<IN, B>(seed + 22, 1.0).cast();
        let w64: SMatrix<f64, CO, K> = weight.cast();
        let mut paths = std::vec::Vec::new();
        if wide {
            paths.push(implicit::InputGradient::Wide);
        }
        if rows {
            paths.push(implicit::InputGradient::Rows);
        }
        for way in paths {
            let mut scratch = std::vec![f32::NAN; tile::<G, K>() + CO * K];
            let mut dx = start;
            if !crate::kernels::has_avx512() {
                return;
            }
            // SAFETY: the CPU has AVX-512F; `input_gradient_fits` allows the path; the scratch
            // is the layer's.
            unsafe {
                implicit::input_gradient::<G, CO, K, IN, OUT>(
                    way,
                    weight.as_slice(),
                    dy.as_slice(),
                    dx.as_mut_slice(),
                    &mut scratch,
                );
            }
            for j in 0..B {
                let x0 = std::vec![0.0; IN];
                let dyj: std::vec::Vec<f64> = dy.column(j).iter().map(|&v| f64::from(v)).collect();
                let (_, _, dxj) = naive_backward::<G, CO, K, NB, IN>(&w64, &x0, &dyj);
                for ((got, want), s) in dx
                    .column(j)
                    .iter()
                    .zip(dxj.iter())
                    .zip(start.column(j).iter())
                {
                    let want = want + f64::from(*s);
                    assert!(
                        (f64::from(*got) - want).abs() < 1e-4,
                        "{name} {way:?}: {got} against {want}"
                    );
                }
            }
        }
        let layer = Conv2d::<f32, CO, K, NB, IN, OUT, G>::new(
            random_matrix::<CO, K>(seed + 10, 1.0).cast(),
            random_matrix::<NB, 1>(seed + 11, 1.0).cast(),
        );
        let x: SMatrix<f32, IN, B> = random_matrix::<IN, B>(seed + 12, 1.0).cast();
        let dy: SMatrix<f32, OUT, B> = random_matrix::<OUT, B>(seed + 13, 1.0).cast();
        let size = <Conv2d<f32, CO, K, NB, IN, OUT, G> as Layer<f32, IN, OUT>>::SCRATCH_PER_CALL;
        let mut scratch = std::vec![f32::NAN; size];
        let (mut grads, mut dx) = (Conv2d::ZERO, SMatrix::<f32, IN, B>::ZERO);
        layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut scratch);
        let loss = |x: &SMatrix<f32, IN, B>, scratch: &mut [f32]| {
            let mut y = SMatrix::<f32, OUT, B>::ZERO;
            layer.forward(&(), x, &mut y, scratch);
            y.iter()
                .zip(dy.iter())
                .map(|(&y, &d)| f64::from(y) * f64::from(d))
                .sum::<f64>()
        };
        let h = 0.25f32;
        let mut worst = 0.0f64;
        for i in (0..IN * B).step_by(7) {
            let (mut plus, mut minus) = (x, x);
            plus[i] += h;
            minus[i] -= h;
            let numeric =
                (loss(&plus, &mut scratch) - loss(&minus, &mut scratch)) / f64::from(2.0 * h);
            let error = (numeric - f64::from(dx[i])).abs() / numeric.abs().max(1.0);
            worst = worst.max(error);
        }
        // The forward pass's rounding (sums of K products in f32) over the step 2h.
        assert!(
            worst < 1e-4,
            "{name}: finite differences, relative error {worst:e}"
        );
    }

    /// A convolution's forward and backward passes on 2 or 3 threads (inside a region or
    /// not): the same bits as on one, and the split paths ran.
    #[cfg(target_arch = "x86_64")]
    fn same_bits_on_threads<
        G: ConvGeometry2d + Copy + Sync,
        const CO: usize,
        const K: usize,
        const IN: usize,
        const OUT: usize,
        const B: usize,
    >(
        seed: u64,
    ) {
        let layer = Conv2d::<f32, CO, K, CO, IN, OUT, G>::new(
            random_matrix::<CO, K>(seed, 1.0).cast(),
            random_matrix::<CO, 1>(seed + 1, 1.0).cast(),
        );
        let x: SMatrix<f32, IN, B> = random_matrix::<IN, B>(seed + 2, 1.0).cast();
        let dy: SMatrix<f32, OUT, B> = random_matrix::<OUT, B>(seed + 3, 1.0).cast();
        let start: SMatrix<f32, IN, B> = random_matrix::<IN, B>(seed + 4, 1.0).cast();
        let passes = || {
            let size =
                <Conv2d<f32, CO, K, CO, IN, OUT, G> as Layer<f32, IN, OUT>>::SCRATCH_PER_CALL;
            let mut scratch = std::vec![f32::NAN; size];
            let mut y = SMatrix::<f32, OUT, B>::ZERO;
            layer.forward(&(), &x, &mut y, &mut scratch);
            let (mut grads, mut dx) = (layer, start);
            layer.backward(&x, &(), &dy, Some(&mut dx), &mut grads, &mut scratch);
            let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<std::vec::Vec<_>>();
            (
                bits(y.as_slice()),
                bits(dx.as_slice()),
                bits(grads.as_slice()),
            )
        };
        crate::test_util::same_on_threads(passes, 1);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn splits_over_threads_give_the_same_bits() {
        // LeNet-5's convolutions: the forward pass, ∂W by taps (the first), ∂X by rows (the
        // second), each split; 5 samples (parts of 2 and 3).
        type C1 = Geometry2d<1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1>;
        same_bits_on_threads::<C1, 6, 25, 784, 4704, 5>(110);
        type C2 = Geometry2d<6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1>;
        same_bits_on_threads::<C2, 16, 150, 1176, 1600, 5>(111);
        // ∂X by wide rows (16 × 18 inputs: a row does not fit one vector).
        type Wide = Geometry2d<8, 16, 18, 3, 3, 1, 1, 1, 1, 1, 1>;
        assert_eq!(
            implicit::input_gradient_path::<Wide, 8, 72>(),
            implicit::InputGradient::Wide
        );
        same_bits_on_threads::<Wide, 8, 72, 2304, 2304, 5>(112);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn implicit_input_gradients_match_naive() {
        // <CI, H, W, KH, KW, SH, SW, PH, PW, DH, DW>, CO, K = CI·KH·KW, NB, IN, OUT, B.
        // LeNet-5's second convolution (padding 0: ∂Y padded by 4), B = 1 and 3.
        type C2 = Geometry2d<6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1>;
        f32_input_gradient_matches::<C2, 16, 150, 16, 1176, 1600, 3>(100);
        f32_input_gradient_matches::<C2, 16, 150, 0, 1176, 1600, 1>(101);
        // C4's second convolution (3×3, padding 1: ∂Y padded by 1).
        type C4 = Geometry2d<8, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1>;
        f32_input_gradient_matches::<C4, 16, 72, 16, 1568, 3136, 2>(102);
        // Padding 2 = the kernel's reach (∂Y not padded), one input channel, 6 outputs.
        type P2 = Geometry2d<1, 12, 12, 5, 5, 1, 1, 2, 2, 1, 1>;
        f32_input_gradient_matches::<P2, 6, 25, 6, 144, 864, 2>(103);
        // One channel in and out.
        type One = Geometry2d<1, 9, 7, 3, 3, 1, 1, 0, 1, 1, 1>;
        f32_input_gradient_matches::<One, 1, 9, 1, 63, 49, 2>(104);
        // A 3 × 2 kernel, padding 1 × 0, 5 → 7 channels (neither a multiple of 8).
        type R = Geometry2d<5, 10, 9, 3, 2, 1, 1, 1, 0, 1, 1>;
        assert_eq!((R::OH, R::OW), (10, 8));
        f32_input_gradient_matches::<R, 7, 30, 7, 450, 560, 2>(105);
        // 19 input channels (∂X's tiles of 8, 8 and 3), 4 outputs, a 2 × 4 kernel.
        type M = Geometry2d<19, 6, 8, 2, 4, 1, 1, 1, 2, 1, 1>;
        assert_eq!((M::OH, M::OW), (7, 9));
        f32_input_gradient_matches::<M, 4, 152, 4, 912, 252, 2>(106);
        // Dilation 2 × 3, padding 2 × 1 (∂Y padded by 2 × 2), 8 → 19 channels.
        type D = Geometry2d<8, 11, 13, 3, 2, 1, 1, 2, 1, 2, 3>;
        f32_input_gradient_matches::<D, 19, 48, 19, 1144, 2508, 2>(107);
        // Not with a stride, nor with padding beyond the dilated kernel's reach.
        use implicit::InputGradient::*;
        type Strided = Geometry2d<8, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1>;
        assert_eq!(implicit::input_gradient_path::<Strided, 8, 72>(), Lowered);
        type Wider = Geometry2d<2, 3, 4, 2, 2, 1, 1, 3, 0, 1, 1>;
        assert_eq!(implicit::input_gradient_path::<Wider, 3, 8>(), Lowered);
        // The paths of LeNet-5's and C4's second convolutions, LeNet-5's first, and one where
        // the zero border makes both too costly (a 7 × 7 kernel on 8 × 8, padding 0).
        assert_eq!(implicit::input_gradient_path::<C2, 16, 150>(), Rows);
        assert_eq!(implicit::input_gradient_path::<C4, 16, 72>(), Rows);
        // LeNet-5's first (1 input channel: register tiles of one column) and 16 → 32 channels
        // of 3 × 3 on 12 × 12 (1.71 times the products, over 1 + 16/32) by the lowering.
        type C1 = Geometry2d<1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1>;
        assert_eq!(implicit::input_gradient_path::<C1, 6, 25>(), Lowered);
        type Deep = Geometry2d<16, 12, 12, 3, 3, 1, 1, 0, 0, 1, 1>;
        assert_eq!(implicit::input_gradient_path::<Deep, 32, 144>(), Lowered);
        // 28 × 28 with 8 → 16 channels, 3 × 3 padding 1: by wide rows.
        type Wide28 = Geometry2d<8, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1>;
        assert_eq!(implicit::input_gradient_path::<Wide28, 16, 72>(), Wide);
        type Big = Geometry2d<4, 8, 8, 7, 7, 1, 1, 0, 0, 1, 1>;
        assert_eq!(implicit::input_gradient_path::<Big, 8, 196>(), Lowered);
    }

    /// Times `∂L/∂x` of a batch of 32 by the lowering (the GEMM `∂X̃ᵀ = ∂Y_s·W`, then col2im)
    /// and by [`implicit::input_gradient`], in alternating rounds: the medians, in µs.
    /// `cargo test --release -p typed-nn-core --lib time_input_gradients -- --ignored
    /// --nocapture` (on an idle core: `taskset -c 1`).
    #[cfg(target_arch = "x86_64")]
    fn time_input_gradient<
        G: ConvGeometry2d,
        const CO: usize,
        const K: usize,
        const IN: usize,
        const OUT: usize,
    >() {
        const B: usize = 32;
        let w: SMatrix<f32, CO, K> = random_matrix::<CO, K>(1, 0.2).cast();
        let dy = std::vec![0.01f32; OUT * B];
        let dy: std::vec::Vec<f32> = dy
            .iter()
            .enumerate()
            .map(|(i, &v)| v * ((i * 7 % 13) as f32 - 6.0))
            .collect();
        let mut dx = std::vec![0.0f32; IN * B];
        let mut scratch = std::vec![0.0f32; tile::<G, K>() + CO * K];
        let plane = G::OH * G::OW;
        let mut lowered = |dx: &mut [f32], scratch: &mut [f32]| {
            let cols = &mut scratch[..tile::<G, K>()];
            for (dy, dx) in dy.chunks_exact(OUT).zip(dx.chunks_exact_mut(IN)) {
                let wv = MatView::new(w.as_slice(), CO);
                matmul_view(
                    plane,
                    K,
                    CO,
                    cols,
                    plane,
                    MatView::new(dy, plane),
                    wv,
                    false,
                );
                col2im_add::<f32, G>(cols, dx);
            }
        };
        let mut gemm_only = |_: &mut [f32], scratch: &mut [f32]| {
            let cols = &mut scratch[..tile::<G, K>()];
            for dy in dy.chunks_exact(OUT) {
                let wv = MatView::new(w.as_slice(), CO);
                matmul_view(
                    plane,
                    K,
                    CO,
                    cols,
                    plane,
                    MatView::new(dy, plane),
                    wv,
                    false,
                );
            }
        };
        let dy = &dy;
        let w = &w;
        let (rows, wide) = implicit::input_gradient_fits::<G, CO, K>();
        assert!(wide);
        let by = |path| {
            // SAFETY: the CPU has AVX-512F (checked by the caller); the path may run (`Wide`
            // asserted, `Rows` only when allowed); the scratch is the layer's, `dy` and `dx`
            // 32 samples.
            move |dx: &mut [f32], scratch: &mut [f32]| unsafe {
                implicit::input_gradient::<G, CO, K, IN, OUT>(path, w.as_slice(), dy, dx, scratch);
            }
        };
        let time = |f: &mut dyn FnMut(&mut [f32], &mut [f32]), dx: &mut [f32], s: &mut [f32]| {
            let reps = 50;
            let start = std::time::Instant::now();
            for _ in 0..reps {
                f(dx, s);
            }
            start.elapsed().as_secs_f64() * 1e6 / reps as f64
        };
        let (mut a, mut b, mut g, mut r) = (
            std::vec::Vec::new(),
            std::vec::Vec::new(),
            std::vec::Vec::new(),
            std::vec::Vec::new(),
        );
        for _ in 0..15 {
            a.push(time(&mut lowered, &mut dx, &mut scratch));
            g.push(time(&mut gemm_only, &mut dx, &mut scratch));
            b.push(time(
                &mut by(implicit::InputGradient::Wide),
                &mut dx,
                &mut scratch,
            ));
            if rows {
                r.push(time(
                    &mut by(implicit::InputGradient::Rows),
                    &mut dx,
                    &mut scratch,
                ));
            } else {
                r.push(f64::NAN);
            }
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        g.sort_by(f64::total_cmp);
        r.sort_by(f64::total_cmp);
        std::println!(
            "{}: CO {CO}, K {K}: {:?}; lowered {:.1} µs (its GEMM {:.1}), wide {:.1} µs, by rows {:.1} µs (wide rows {} for {} positions)",
            core::any::type_name::<G>(),
            implicit::input_gradient_path::<G, CO, K>(),
            a[7],
            g[7],
            b[7],
            r[7],
            {
                type T<G, const CO: usize> = implicit::Transposed<G, CO>;
                let wp = <T<G, CO>>::W + 2 * <T<G, CO>>::PW;
                (G::H - 1) * wp + G::W
            },
            plane
        );
    }

    #[test]
    #[ignore = "a timing probe that prints, asserts nothing: cargo test --release -- --ignored time_input_gradients --nocapture"]
    #[cfg(target_arch = "x86_64")]
    fn time_input_gradients() {
        if !crate::kernels::has_avx512() {
            return;
        }
        time_input_gradient::<Geometry2d<6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1>, 16, 150, 1176, 1600>();
        time_input_gradient::<Geometry2d<8, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1>, 16, 72, 1568, 3136>();
        time_input_gradient::<Geometry2d<1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1>, 6, 25, 784, 4704>();
        time_input_gradient::<Geometry2d<6, 14, 14, 5, 5, 1, 1, 2, 2, 1, 1>, 16, 150, 1176, 3136>();
        time_input_gradient::<Geometry2d<16, 12, 12, 3, 3, 1, 1, 0, 0, 1, 1>, 32, 144, 2304, 3200>(
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn implicit_forward_matches_the_lowered_one() {
        type C1 = Geometry2d<1, 28, 28, 5, 5, 1, 1, 2, 2, 1, 1>;
        type C2 = Geometry2d<6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1>;
        assert!(implicit::applies::<C1, 6, 25>() && implicit::applies::<C2, 16, 150>());
        f32_forward_matches::<C1, 6, 25, 6, 784, 4704, 3>(70, true);
        f32_forward_matches::<C2, 16, 150, 0, 1176, 1600, 2>(71, true);
        // Padding 2 × 1, dilation 2 × 3, 19 channels (a tile of 3), B = 1.
        type D = Geometry2d<8, 11, 13, 3, 2, 1, 1, 2, 1, 2, 3>;
        assert_eq!((D::OH, D::OW), (11, 12));
        assert!(implicit::applies::<D, 19, 48>());
        f32_forward_matches::<D, 19, 48, 19, 1144, 2508, 1>(72, true);
        // 300 taps: the lowered pass's GEMM sums them in two blocks, the implicit one in one
        // chain (the same values to rounding, not the same bits).
        type E = Geometry2d<12, 8, 8, 5, 5, 1, 1, 2, 2, 1, 1>;
        assert!(implicit::applies::<E, 4, 300>());
        f32_forward_matches::<E, 4, 300, 4, 768, 256, 2>(73, false);
        // Not with a stride, nor where the wide rows would be more than 1.5 times the
        // positions (a 4 × 4 kernel on 5 × 5, padding 0: 2 × 2 positions, 7 wide rows).
        assert!(!implicit::applies::<
            Geometry2d<8, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1>,
            8,
            72,
        >());
        assert!(!implicit::applies::<
            Geometry2d<8, 5, 5, 4, 4, 1, 1, 0, 0, 1, 1>,
            8,
            128,
        >());
    }

    #[test]
    fn weight_gradients_by_gemm_match_naive_both_ways() {
        // K ≥ 64 taps and CO ≥ 8 channels: the weight gradient is the GEMM on the
        // position-major lowering (LeNet-5's second convolution; its first keeps the dot
        // products).
        assert!(weight_gradient_by_gemm::<16, 150>());
        assert!(!weight_gradient_by_gemm::<6, 25>());
        assert!(!weight_gradient_by_gemm::<7, 72>() && !weight_gradient_by_gemm::<8, 63>());
        // Padding 1 (taps inside and outside the input's columns), B = 1, 2, 3, with and
        // without a bias.
        type E = Geometry2d<8, 12, 12, 3, 3, 1, 1, 1, 1, 1, 1>;
        agrees_with_naive_both_ways::<E, 8, 72, 8, 1152, 1152, 1>(60);
        agrees_with_naive_both_ways::<E, 8, 72, 0, 1152, 1152, 3>(61);
        // Stride 2, padding 2, dilation 2 (taps gathered one by one).
        type A = Geometry2d<8, 9, 8, 3, 3, 2, 2, 2, 2, 2, 2>;
        assert_eq!((A::OH, A::OW), (5, 4));
        agrees_with_naive_both_ways::<A, 9, 72, 9, 576, 180, 3>(62);
        // Stride 3 down, dilation 3 across, padding 1 × 4.
        type Bg = Geometry2d<11, 7, 10, 2, 3, 3, 1, 1, 4, 1, 3>;
        assert_eq!((Bg::OH, Bg::OW), (3, 12));
        agrees_with_naive_both_ways::<Bg, 8, 66, 8, 770, 288, 2>(63);
    }

    /// The numbers of the numpy reference: `x[i] = ((7i) mod 11 − 5)/4` over the flat
    /// (PyTorch-order) sample, `w[j] = ((5j) mod 13 − 6)/8` over PyTorch's flat
    /// `[CO, CI, KH, KW]` weight.
    fn reference_x(i: usize) -> f64 {
        ((i * 7) % 11) as f64 / 4.0 - 1.25
    }

    fn reference_w(j: usize) -> f64 {
        ((j * 5) % 13) as f64 / 8.0 - 0.75
    }

    #[test]
    fn hand_worked_example_stride_padding_dilation() {
        // One 4×4 channel x[r][c] = 4r + c + 1, kernel [[1, 2], [3, 4]], bias ½, stride 2,
        // padding 1, dilation 2: OH = OW = (4 + 2 − 2 − 1)/2 + 1 = 2. Output (oh, ow) reads
        // rows 2·oh − 1 + 2·kh and columns 2·ow − 1 + 2·kw:
        //   y00 = 4·x[1][1] = 24,   y01 = 3·x[1][1] + 4·x[1][3] = 18 + 32 = 50,
        //   y10 = 2·x[1][1] + 4·x[3][1] = 12 + 56 = 68,
        //   y11 = 1·6 + 2·8 + 3·14 + 4·16 = 128; plus ½ each.
        type G = Geometry2d<1, 4, 4, 2, 2, 2, 2, 1, 1, 2, 2>;
        let layer = Conv2d::<f64, 1, 4, 1, 16, 4, G>::new(
            SMatrix::from_column_slice(&[1.0, 2.0, 3.0, 4.0]),
            SMatrix::from_column_slice(&[0.5]),
        );
        let x = SMatrix::<f64, 16, 1>::from_fn(|i, _| i as f64 + 1.0);
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        assert_eq!(y.as_slice(), &[24.5, 50.5, 68.5, 128.5]);

        // With ∂L/∂y = 1: ∂L/∂W[kh, kw] is the sum of the inputs tap (kh, kw) reads:
        //   W00: x[1][1] = 6;  W01: x[1][1] + x[1][3] = 14;  W10: x[1][1] + x[3][1] = 20;
        //   W11: 6 + 8 + 14 + 16 = 44;  ∂L/∂b = 4 outputs.
        // ∂L/∂x[r][c] is the sum of the weights that read it: x[1][1] by all four taps (10),
        // x[1][3] by W11 (y01) and W01 (y11): 6, x[3][1] by W11 and W10: 7, x[3][3] by W11: 4.
        let (mut dx, mut grads) = (SMatrix::<f64, 16, 1>::ZERO, Conv2d::ZERO);
        layer.backward(
            &x,
            &(),
            &SMatrix::repeat(1.0),
            Some(&mut dx),
            &mut grads,
            &mut scratch_for(&layer, &x),
        );
        assert_eq!(grads.weight.as_slice(), &[6.0, 14.0, 20.0, 44.0]);
        assert_eq!(grads.bias.as_slice(), &[4.0]);
        let mut expected_dx = [0.0; 16];
        expected_dx[5] = 10.0;
        expected_dx[7] = 6.0;
        expected_dx[13] = 7.0;
        expected_dx[15] = 4.0;
        assert_eq!(dx.as_slice(), &expected_dx);
    }

    #[test]
    fn matches_numpy_reference_2d() {
        // CI = 2, H = 5, W = 4, CO = 3, kernel 3×2, stride (2, 1), padding (1, 1),
        // dilation (1, 2): OH = (5 + 2 − 2 − 1)/2 + 1 = 3, OW = (4 + 2 − 2 − 1)/1 + 1 = 4.
        // Expected: numpy (explicit np.pad, then one tensordot per kernel tap over a strided
        // slice of the padded input), bias b[co] = (co − 1)/2. Every value is a multiple of
        // 1/32, exact in f64.
        type G = Geometry2d<2, 5, 4, 3, 2, 2, 1, 1, 1, 1, 2>;
        let layer = Conv2d::<f64, 3, 12, 3, 40, 36, G>::new(
            SMatrix::from_fn(|co, k| reference_w(co * 12 + k)),
            SMatrix::from_fn(|co, _| (co as f64 - 1.0) / 2.0),
        );
        let x = SMatrix::<f64, 40, 1>::from_fn(|i, _| reference_x(i));
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        #[rustfmt::skip]
        let expected = [
            -1.78125, -0.96875, 0.25, 0.3125, -0.21875, -0.9375, 0.0, -0.34375,
            -1.40625, -1.9375, 0.8125, -1.09375, 1.09375, 1.125, 0.0625, -0.90625,
            -0.21875, 0.09375, -0.28125, -0.53125, 1.03125, -0.09375, -2.28125, 0.40625,
            0.71875, 0.78125, -0.9375, 1.53125, 1.40625, 0.71875, 0.65625, 0.90625,
            -0.59375, 0.9375, -0.09375, 0.28125,
        ];
        assert_eq!(y.as_slice(), &expected);
    }

    #[test]
    fn matches_numpy_reference_1d() {
        // CI = 2, L = 7, CO = 2, KL = 3, stride 2, padding 1, dilation 2:
        // OL = (7 + 2 − 4 − 1)/2 + 1 = 3; bias [¼, −¾]; numpy as above (with H = 1).
        type G = Geometry1d<2, 7, 3, 2, 1, 2>;
        let layer = Conv1d::<f64, 2, 6, 2, 14, 6, G>::new(
            SMatrix::from_fn(|co, k| reference_w(co * 6 + k)),
            SMatrix::from_column_slice(&[0.25, -0.75]),
        );
        let x = SMatrix::<f64, 14, 1>::from_fn(|i, _| reference_x(i));
        let mut y = SMatrix::ZERO;
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        assert_eq!(
            y.as_slice(),
            &[0.5, 0.1875, -0.40625, -1.875, -0.28125, -1.03125]
        );
    }

    #[test]
    fn matches_naive_convolution_for_many_geometries() {
        // <CI, H, W, KH, KW, SH, SW, PH, PW, DH, DW>, CO, K = CI·KH·KW, NB, IN, OUT.
        agrees_with_naive::<Geometry2d<1, 4, 4, 2, 2, 2, 2, 1, 1, 2, 2>, 1, 4, 1, 16, 4>(1);
        agrees_with_naive::<Geometry2d<1, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1>, 2, 9, 2, 25, 18>(2);
        // "same" padding, no bias
        agrees_with_naive::<Geometry2d<2, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1>, 3, 18, 0, 60, 90>(3);
        // stride larger than the kernel: some inputs are never read
        agrees_with_naive::<Geometry2d<2, 7, 7, 2, 2, 3, 3, 0, 0, 1, 1>, 2, 8, 2, 98, 8>(4);
        // padding larger than the kernel's reach: border outputs are the bias alone
        agrees_with_naive::<Geometry2d<1, 3, 4, 2, 2, 1, 2, 3, 2, 1, 1>, 2, 4, 2, 12, 64>(5);
        // rectangular everything, dilation on both axes
        agrees_with_naive::<Geometry2d<3, 8, 6, 3, 2, 2, 1, 2, 1, 2, 3>, 2, 18, 2, 144, 40>(6);
        // the kernel covers the whole input
        agrees_with_naive::<Geometry2d<2, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1>, 4, 18, 4, 18, 4>(7);
        // 1×1 convolution with stride 2
        agrees_with_naive::<Geometry2d<3, 4, 5, 1, 1, 2, 2, 0, 0, 1, 1>, 2, 3, 0, 60, 12>(8);
    }

    #[test]
    fn conv1d_equals_conv2d_of_height_one() {
        type G1 = Geometry1d<3, 11, 3, 2, 2, 2>;
        type G2 = Geometry2d<3, 1, 11, 1, 3, 1, 2, 0, 2, 1, 2>;
        // OL = (11 + 4 − 4 − 1)/2 + 1 = 6.
        assert_eq!(G1::OL, 6);
        let weight = random_matrix::<4, 9>(10, 1.0);
        let bias = random_matrix::<4, 1>(11, 1.0);
        let one = Conv1d::<f64, 4, 9, 4, 33, 24, G1>::new(weight, bias);
        let two = Conv2d::<f64, 4, 9, 4, 33, 24, G2>::new(weight, bias);
        let x = random_matrix::<33, 2>(12, 1.0);
        let dy = random_matrix::<24, 2>(13, 1.0);
        let (mut y1, mut y2) = (SMatrix::ZERO, SMatrix::ZERO);
        one.forward(&(), &x, &mut y1, &mut scratch_for(&one, &x));
        two.forward(&(), &x, &mut y2, &mut scratch_for(&two, &x));
        assert_eq!(y1, y2);
        let (mut dx1, mut dx2) = (SMatrix::ZERO, SMatrix::ZERO);
        let (mut g1, mut g2) = (Conv1d::ZERO, Conv2d::ZERO);
        one.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx1),
            &mut g1,
            &mut scratch_for(&one, &x),
        );
        two.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx2),
            &mut g2,
            &mut scratch_for(&two, &x),
        );
        assert_eq!(dx1, dx2);
        assert_eq!(g1.as_slice(), g2.as_slice());
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Stride, padding and dilation together, with a bias.
        let mut layer =
            Conv2d::<f64, 3, 12, 3, 40, 36, Geometry2d<2, 5, 4, 3, 2, 2, 1, 1, 1, 1, 2>>::new(
                random_matrix(20, 1.0),
                random_matrix(21, 1.0),
            );
        let report = check_layer(&mut layer, &(), &random_matrix::<40, 2>(22, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        // Without a bias, stride 2 on both axes, padding 2.
        let mut layer =
            Conv2d::<f64, 2, 18, 0, 72, 32, Geometry2d<2, 6, 6, 3, 3, 2, 2, 2, 2, 1, 1>>::new(
                random_matrix(23, 1.0),
                SMatrix::ZERO,
            );
        let report = check_layer(&mut layer, &(), &random_matrix::<72, 3>(24, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
        // K = 72 taps and 8 channels: the weight gradient by the GEMM, padding 1.
        let mut layer =
            Conv2d::<f64, 8, 72, 8, 128, 128, Geometry2d<8, 4, 4, 3, 3, 1, 1, 1, 1, 1, 1>>::new(
                random_matrix(28, 1.0),
                random_matrix(29, 1.0),
            );
        let report = check_layer(&mut layer, &(), &random_matrix::<128, 2>(19, 1.0));
        // Sums of 72 products per output: the central differences' rounding reaches 1.1e-7
        // (on an input, whose gradient does not take this path).
        assert!(report.max_rel_error < 1e-6, "{report:?}");
        // 1-d.
        let mut layer = Conv1d::<f64, 2, 6, 2, 14, 6, Geometry1d<2, 7, 3, 2, 1, 2>>::new(
            random_matrix(25, 1.0),
            random_matrix(26, 1.0),
        );
        let report = check_layer(&mut layer, &(), &random_matrix::<14, 2>(27, 1.0));
        assert!(report.max_rel_error < 1e-7, "{report:?}");
    }

    #[test]
    fn batch_equals_single_samples_and_backward_accumulates() {
        type L = Conv2d<f64, 3, 18, 3, 60, 90, Geometry2d<2, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1>>;
        let layer = L::new(random_matrix(30, 1.0), random_matrix(31, 1.0));
        let x = random_matrix::<60, 4>(32, 1.0);
        let dy = random_matrix::<90, 4>(33, 1.0);
        // Start from non-zero dx and gradients: backward must add to them.
        let start_dx = random_matrix::<60, 4>(34, 1.0);
        let start_grads = L::new(random_matrix(35, 1.0), random_matrix(36, 1.0));
        let (mut y, mut dx, mut grads) = (SMatrix::ZERO, start_dx, start_grads);
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        layer.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut grads,
            &mut scratch_for(&layer, &x),
        );
        let mut single_grads = start_grads;
        for j in 0..4 {
            let xj: SMatrix<f64, 60, 1> = x.column(j).into();
            let dyj: SMatrix<f64, 90, 1> = dy.column(j).into();
            let (mut yj, mut dxj) = (SMatrix::ZERO, SMatrix::<f64, 60, 1>::ZERO);
            layer.forward(&(), &xj, &mut yj, &mut scratch_for(&layer, &xj));
            layer.backward(
                &xj,
                &(),
                &dyj,
                Some(&mut dxj),
                &mut single_grads,
                &mut scratch_for(&layer, &xj),
            );
            assert!((yj - y.column(j)).amax() < 1e-12);
            assert!((dxj + start_dx.column(j) - dx.column(j)).amax() < 1e-12);
        }
        assert!(max_diff(single_grads.as_slice(), grads.as_slice()) < 1e-12);
    }

    #[test]
    fn tensors_follow_pytorch() {
        type WithBias =
            Conv2d<f32, 8, 27, 8, 3072, 8192, Geometry2d<3, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1>>;
        type NoBias =
            Conv2d<f32, 8, 27, 0, 3072, 8192, Geometry2d<3, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1>>;
        // OL = (20 + 4 − 3·4 − 1)/1 + 1 = 12.
        type OneD = Conv1d<f32, 4, 10, 4, 40, 48, Geometry1d<2, 20, 5, 1, 2, 3>>;
        assert_eq!(<WithBias as Params<f32>>::LEN, 8 * 27 + 8);
        assert_eq!(<NoBias as Params<f32>>::LEN, 8 * 27);
        let tensors = <WithBias as Layer<f32, 3072, 8192>>::TENSORS;
        assert_eq!(tensors.len(), 2);
        assert_eq!(
            (tensors[0].name, tensors[0].shape),
            ("weight", &[8, 3, 3, 3][..])
        );
        assert_eq!(
            (tensors[1].name, tensors[1].shape, tensors[1].role),
            ("bias", &[8][..], Role::Bias)
        );
        let tensors = <NoBias as Layer<f32, 3072, 8192>>::TENSORS;
        assert_eq!(tensors.len(), 1);
        assert_eq!(
            (tensors[0].name, tensors[0].shape, tensors[0].role),
            ("weight", &[8, 3, 3, 3][..], Role::Weight)
        );
        let tensors = <OneD as Layer<f32, 40, 48>>::TENSORS;
        assert_eq!(tensors[0].shape, &[4, 2, 5]);
        assert_eq!(<OneD as Params<f32>>::LEN, 44);
    }

    #[test]
    fn init_uses_the_fans_of_the_pytorch_shape() {
        type L = Conv2d<f64, 4, 18, 4, 50, 36, Geometry2d<2, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1>>;
        let mut layer = L::new(SMatrix::repeat(9.0), SMatrix::repeat(9.0));
        let mut rng = crate::test_util::Rng(7);
        layer.init(Init::LecunUniform, &mut rng);
        // fan_in = CI·KH·KW = 18: U(−1/√18, 1/√18); the bias is zeroed.
        let bound = 1.0 / 18f64.sqrt();
        assert!(layer.weight.iter().all(|w| w.abs() <= bound && *w != 9.0));
        assert!(layer.weight.amax() > bound * 0.5);
        assert!(layer.bias.iter().all(|b| *b == 0.0));
    }

    #[test]
    fn f32_agrees_with_f64() {
        type G = Geometry2d<2, 5, 4, 3, 2, 2, 1, 1, 1, 1, 2>;
        let layer =
            Conv2d::<f64, 3, 12, 3, 40, 36, G>::new(random_matrix(40, 1.0), random_matrix(41, 1.0));
        let single =
            Conv2d::<f32, 3, 12, 3, 40, 36, G>::new(layer.weight.cast(), layer.bias.cast());
        let x = random_matrix::<40, 2>(42, 1.0);
        let dy = random_matrix::<36, 2>(43, 1.0);
        let (mut y, mut y32) = (SMatrix::ZERO, SMatrix::<f32, 36, 2>::ZERO);
        let mut scratch32 = std::vec![f32::NAN; scratch_for(&layer, &x).len()];
        layer.forward(&(), &x, &mut y, &mut scratch_for(&layer, &x));
        single.forward(&(), &x.cast(), &mut y32, &mut scratch32);
        assert!((y32.cast::<f64>() - y).amax() < 1e-5);
        let (mut dx, mut dx32, mut g, mut g32) = (
            SMatrix::ZERO,
            SMatrix::<f32, 40, 2>::ZERO,
            Conv2d::ZERO,
            Conv2d::ZERO,
        );
        layer.backward(
            &x,
            &(),
            &dy,
            Some(&mut dx),
            &mut g,
            &mut scratch_for(&layer, &x),
        );
        single.backward(
            &x.cast(),
            &(),
            &dy.cast(),
            Some(&mut dx32),
            &mut g32,
            &mut scratch32,
        );
        assert!((dx32.cast::<f64>() - dx).amax() < 1e-5);
        assert!((g32.weight.cast::<f64>() - g.weight).amax() < 1e-5);
    }
}

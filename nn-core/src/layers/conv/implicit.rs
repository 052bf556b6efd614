//! The forward pass of stride-1 convolutions in `f32` on AVX-512 without the im2col lowering
//! (an "implicit GEMM"): the sample is copied into a zero-padded plane `xp` (`CI × Hp × Wp`,
//! `Hp = H + 2·PH`, `Wp = W + 2·PW`), where the input of tap `k = (ci, kh, kw)` at output
//! position `(oh, ow)` is `xp[off(k) + q]` with `off(k) = ci·Hp·Wp + kh·DH·Wp + kw·DW` and
//! `q = oh·Wp + ow`. So column `k` of the lowering, taken over the "wide" positions
//! `q < (OH − 1)·Wp + OW` (the `Wp − OW` positions at the end of each row are not outputs),
//! is `xp` itself from `off(k)` on: the micro-kernel reads its 32-row panels there, a tap at
//! a time, instead of from a lowered copy. The wide result (`rows × CO`) is then copied to
//! `y` without its extra positions, plus the bias.
//!
//! The lowering it replaces wrote `K·P` scalars per sample in short runs (`OW` of them) and
//! cost as much as the product. Each output is the same chain of fused multiply-adds, tap
//! after tap from zero, plus the bias, as the blocked GEMM's for `K ≤ 256` (one depth block):
//! the same bits.
//!
//! The input gradient of a stride-1 convolution is a forward convolution of `∂Y` too
//! ([`Transposed`], [`input_gradient`]): by the same pass, or, where an input row fits one
//! vector, by register tiles of whole rows that skip the kernel rows reading only zero rows of
//! the padded `∂Y` ([`convolve_rows`]).

use super::super::geometry::ConvGeometry2d;
use crate::parallel::{SharedPtr, for_parts_indexed};
use core::arch::x86_64::*;
use core::marker::PhantomData;

/// Rows of the register tile (two 16-lane vectors).
const MR: usize = 32;
/// Most columns of the register tile (output channels).
const NR: usize = 8;

/// The zero-padded plane's `(Hp, Wp)`.
const fn padded<G: ConvGeometry2d>() -> (usize, usize) {
    (G::H + 2 * G::PH, G::W + 2 * G::PW)
}

/// Rows of the wide product, `(OH − 1)·Wp + OW`.
const fn wide_rows<G: ConvGeometry2d>() -> usize {
    let (_, wp) = padded::<G>();
    if G::OH == 0 {
        0
    } else {
        (G::OH - 1) * wp + G::OW
    }
}

/// Scalars of scratch the pass uses with `co` output channels: the padded plane and the wide
/// result.
const fn scratch_for<G: ConvGeometry2d>(co: usize) -> usize {
    let (hp, wp) = padded::<G>();
    G::CI * hp * wp + wide_rows::<G>() * co
}

/// Whether the forward pass of this convolution runs here (when the scalar is `f32` and the
/// CPU has AVX-512F): stride 1, the padded plane and the wide result fit in one im2col tile
/// (`K·P` scalars, the room every caller's scratch has), and the wide rows are at most 1.5
/// times the positions (the extra ones are computed for nothing).
pub(crate) const fn applies<G: ConvGeometry2d, const CO: usize, const K: usize>() -> bool {
    fits::<G>(CO, K * G::OH * G::OW)
}

/// Whether [`convolve`] computes the convolution `G` with `co` output channels in `room`
/// scalars of scratch: stride 1, [`scratch_for`] `≤ room`, and the wide rows at most 1.5
/// times the positions.
const fn fits<G: ConvGeometry2d>(co: usize, room: usize) -> bool {
    let positions = G::OH * G::OW;
    G::SH == 1
        && G::SW == 1
        && positions > 0
        && scratch_for::<G>(co) <= room
        && 2 * wide_rows::<G>() <= 3 * positions
}

/// `y = W ⋆ x + b` for `x.len() / IN` samples (see the module's description).
///
/// # Safety
/// The CPU has AVX-512F; [`applies`] holds; `weight` holds `CO·K` scalars (`CO × K`
/// column-major), `bias` `CO` or none, `x` whole samples of `IN = CI·H·W` and `y` as many of
/// `OUT = CO·OH·OW`; `scratch` at least `K·OH·OW` scalars.
///
/// On a pool of several threads the samples are shared among them, each part with its own
/// piece of `scratch` (as many parts as pieces fit): every sample is computed alone, so the
/// result is the same.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn forward<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
>(
    weight: &[f32],
    bias: &[f32],
    x: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    debug_assert!(K == G::CI * G::KH * G::KW && IN == G::CI * G::H * G::W);
    debug_assert!(OUT == CO * G::OH * G::OW);
    let need = scratch_for::<G>(CO);
    let samples = x.len() / IN;
    let max_parts = scratch.len() / need;
    let (y, pieces) = (SharedPtr(y.as_mut_ptr()), SharedPtr(scratch.as_mut_ptr()));
    let work = samples * CO * K * G::OH * G::OW;
    for_parts_indexed(samples, 1, work, max_parts, &|i, first, count| {
        // SAFETY: the parts' samples are disjoint and inside `x` and `y` (`y` has as many as
        // `x`: the caller's contract), their pieces of scratch disjoint and inside it (at most
        // `scratch.len() / need` of them), so `fits` holds for each; the CPU has AVX-512F.
        unsafe {
            convolve::<G>(
                CO,
                weight,
                bias,
                &x[first * IN..(first + count) * IN],
                core::slice::from_raw_parts_mut(y.get().add(first * OUT), count * OUT),
                core::slice::from_raw_parts_mut(pieces.get().add(i * need), need),
                false,
            );
        }
    });
}

/// `y = W ⋆ x + b` (or, when `accumulate`, `y += W ⋆ x`) for the samples of `x`, with `co`
/// output channels: the sample copied into the padded plane, the wide product by register
/// tiles reading each tap's column there, then copied (or added) to `y` without its extra
/// positions.
///
/// # Safety
/// The CPU has AVX-512F; [`fits`]`::<G>(co, scratch.len())` holds; `weight` holds
/// `co·CI·KH·KW` scalars (`co × K` column-major), `bias` `co` or none (none when
/// `accumulate`), `x` whole samples of `CI·H·W` and `y` as many of `co·OH·OW`.
#[target_feature(enable = "avx512f")]
unsafe fn convolve<G: ConvGeometry2d>(
    co: usize,
    weight: &[f32],
    bias: &[f32],
    x: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
    accumulate: bool,
) {
    let (hp, wp) = padded::<G>();
    let plane_p = hp * wp;
    let rows = wide_rows::<G>();
    let plane = G::OH * G::OW;
    let (k_taps, inputs, outputs) = (G::CI * G::KH * G::KW, G::CI * G::H * G::W, co * plane);
    let (xp, rest) = scratch.split_at_mut(G::CI * plane_p);
    let wide = &mut rest[..rows * co];
    // The padding stays zero; the inside is overwritten sample after sample.
    xp.fill(0.0);
    let weight = &weight[..co * k_taps];
    for (x, y) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
        pad_into::<G>(x, xp);
        let mut i = 0;
        while i < rows {
            let m = MR.min(rows - i);
            let mut j = 0;
            while j < co {
                // SAFETY: rows i..i + m of the wide product read xp at off(k) + q for
                // q < rows, which is inside xp (the last tap of the last wide row reads its
                // last scalar); the tile of `wide` (leading dimension `rows`) is inside it;
                // channels j..j + n of the weight exist. The CPU has AVX-512F.
                unsafe {
                    let (a, w, c) = (
                        xp.as_ptr().add(i),
                        weight.as_ptr().add(j),
                        wide.as_mut_ptr().add(i + j * rows),
                    );
                    match co - j {
                        1 => tile::<G, 1>(a, w, co, c, rows, m),
                        2 => tile::<G, 2>(a, w, co, c, rows, m),
                        3 => tile::<G, 3>(a, w, co, c, rows, m),
                        4 => tile::<G, 4>(a, w, co, c, rows, m),
                        5 => tile::<G, 5>(a, w, co, c, rows, m),
                        6 => tile::<G, 6>(a, w, co, c, rows, m),
                        7 => tile::<G, 7>(a, w, co, c, rows, m),
                        _ => tile::<G, NR>(a, w, co, c, rows, m),
                    }
                }
                j += NR;
            }
            i += MR;
        }
        // Row after row, 16 outputs a vector (left to itself, the compiler vectorises these
        // loops across the channels, with gathers and scatters).
        for c in 0..co {
            let b = bias.get(c).map(|&b| _mm512_set1_ps(b));
            for oh in 0..G::OH {
                let from = &wide[c * rows + oh * wp..c * rows + oh * wp + G::OW];
                let to = &mut y[c * plane + oh * G::OW..c * plane + (oh + 1) * G::OW];
                let mut o = 0;
                while o < G::OW {
                    let lanes = mask16(G::OW - o);
                    // SAFETY: the lanes of o..min(o + 16, OW) of both rows (the others are
                    // masked off: neither read nor written).
                    unsafe {
                        let v = _mm512_maskz_loadu_ps(lanes, from.as_ptr().add(o));
                        let v = match b {
                            Some(b) => _mm512_add_ps(v, b),
                            None => v,
                        };
                        let v = if accumulate {
                            _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, to.as_ptr().add(o)), v)
                        } else {
                            v
                        };
                        _mm512_mask_storeu_ps(to.as_mut_ptr().add(o), lanes, v);
                    }
                    o += 16;
                }
            }
        }
    }
}

/// The geometry of the input gradient of the stride-1 convolution `G` with `CO` output
/// channels, as a forward convolution (the "backward data" of cuDNN and oneDNN): `CO` input
/// channels of `OH × OW` (`∂Y`), the same `KH × KW` kernel flipped and its channels swapped,
/// zero padding `DH·(KH − 1) − PH` (likewise across), the same dilation, stride 1: its output
/// is `CI` channels of `H × W`. `∂x[ci, ih, iw] = Σ_{co, kh, kw} W[co, ci, kh, kw]·
/// ∂y[co, ih + PH − kh·DH, iw + PW − kw·DW]`, with `kh = KH − 1 − kh'` the flipped tap.
/// Meaningful when the padding is at most the dilated kernel's reach (`PH ≤ DH·(KH − 1)`,
/// likewise across: see [`input_gradient_path`]).
pub(crate) struct Transposed<G, const CO: usize>(PhantomData<G>);

impl<G: ConvGeometry2d, const CO: usize> ConvGeometry2d for Transposed<G, CO> {
    const CI: usize = CO;
    const H: usize = G::OH;
    const W: usize = G::OW;
    const KH: usize = G::KH;
    const KW: usize = G::KW;
    const SH: usize = 1;
    const SW: usize = 1;
    const PH: usize = (G::DH * (G::KH - 1)).saturating_sub(G::PH);
    const PW: usize = (G::DW * (G::KW - 1)).saturating_sub(G::PW);
    const DH: usize = G::DH;
    const DW: usize = G::DW;
    const OH: usize = G::H;
    const OW: usize = G::W;
}

/// How the input gradient of a convolution is computed in `f32` with AVX-512F.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum InputGradient {
    /// By the lowering: `∂X̃ᵀ = ∂Y_s·W`, then col2im (`conv::backward_batch`).
    Lowered,
    /// [`input_gradient`] by [`convolve`] (wide rows).
    Wide,
    /// [`input_gradient`] by [`convolve_rows`] (a vector per input row).
    Rows,
}

/// Which way the input gradient of this convolution is computed (in `f32` with AVX-512F). As
/// the convolution [`Transposed`] when the stride is 1 and the padding at most the dilated
/// kernel's reach, the flipped weights (`CO·K` scalars) and the pass's scratch fit in the
/// layer's (`K·P + CO·K`), there are at least [`FEWEST_INPUT_CHANNELS`] input channels (the
/// columns of its register tiles), and its multiply-adds, in 16-lane vectors, are at most
/// `1 + 16/CO` times the lowering's `P·K·CO` (whose products, of depth `CO`, are followed by
/// col2im's `K·P` additions: the more channels, the less col2im weighs): by [`convolve_rows`]
/// when an input row fits one vector (`W ≤ 16`), else by [`convolve`] (`(H − 1)·Wp' + W` wide
/// rows of `CO·KH·KW` taps each, against `P·KH·KW` lowered).
///
/// Measured (batch 32, one core, µs, the lowered path against this one, four runs):
/// LeNet-5's second convolution (`6 → 16`, 5 × 5 on 14 × 14, padding 0: ∂Y padded by 4),
/// 137–189 against 110–128 by rows (1.73 times the products), 169–192 by wide rows (2.48
/// times); C4's second (`8 → 16`, 3 × 3 padding 1 on 14 × 14), 119–176 against 77–88 by rows
/// (1.14 times), 90–103 by wide rows; the same as LeNet-5's with padding 2, 232–367 against
/// 134–158 by rows. Either way by the run, so left to the lowering: `16 → 32`, 3 × 3 on
/// 12 × 12, padding 0, 203–285 against 211–254 by rows (1.71 times, over `1 + 16/32`);
/// `1 → 6`, 5 × 5 padding 2 on 28 × 28, 102–167 against 118–139 by wide rows (1.14 times,
/// but register tiles of one column).
pub(crate) const fn input_gradient_path<G: ConvGeometry2d, const CO: usize, const K: usize>()
-> InputGradient {
    let (rows, wide) = input_gradient_fits::<G, CO, K>();
    if G::CI < FEWEST_INPUT_CHANNELS {
        return InputGradient::Lowered;
    }
    // Products of the lowering, in units of CI·KW·CO multiply-adds, and the most of the pass.
    let lowered = G::OH * G::OW * G::KH;
    let most = lowered * (CO + 16);
    if rows {
        // 16 lanes per row, the kernel rows of each tile of RR rows.
        let mut products = 0;
        let mut oh = 0;
        while oh < G::H {
            let (lo, hi) = kernel_rows::<Transposed<G, CO>>(oh);
            let r = if RR < G::H - oh { RR } else { G::H - oh };
            products += r * 16 * (hi - lo);
            oh += RR;
        }
        if products * CO <= most {
            return InputGradient::Rows;
        }
    }
    // Whole chains over every kernel row.
    if wide && wide_rows::<Transposed<G, CO>>() * G::KH * CO <= most {
        return InputGradient::Wide;
    }
    InputGradient::Lowered
}

/// Whether [`input_gradient`] may compute this convolution's input gradient by
/// [`convolve_rows`] and by [`convolve`]: stride 1, padding at most the dilated kernel's
/// reach, and its scratch (the flipped weights and the padded `∂Y`, and for the second the
/// wide result) in the layer's `K·P + CO·K`; `W ≤ 16` for the first.
pub(crate) const fn input_gradient_fits<G: ConvGeometry2d, const CO: usize, const K: usize>()
-> (bool, bool) {
    let positions = G::OH * G::OW;
    if !(G::SH == 1
        && G::SW == 1
        && G::PH <= G::DH * (G::KH - 1)
        && G::PW <= G::DW * (G::KW - 1)
        && positions > 0)
    {
        return (false, false);
    }
    let (hp, wp) = padded::<Transposed<G, CO>>();
    (
        G::W <= 16 && CO * hp * wp <= K * positions,
        fits::<Transposed<G, CO>>(G::CI, K * positions),
    )
}

/// See [`input_gradient_path`].
const FEWEST_INPUT_CHANNELS: usize = 4;

/// The kernel rows `lo..hi` that a tile of [`convolve_rows`] from output row `oh` reads (the
/// others read only the padded plane's zero rows for every output row of the tile).
const fn kernel_rows<G: ConvGeometry2d>(oh: usize) -> (usize, usize) {
    let r = if RR < G::OH - oh { RR } else { G::OH - oh };
    // Plane rows oh' + kh·DH (oh ≤ oh' < oh + r) meeting the input's rows PH..PH + H.
    let lo = G::PH.saturating_sub(oh + r - 1).div_ceil(G::DH);
    let hi = (G::PH + G::H).saturating_sub(oh).div_ceil(G::DH);
    let hi = if hi < G::KH { hi } else { G::KH };
    if lo < hi { (lo, hi) } else { (hi, hi) }
}

/// `∂L/∂x += ∂L/∂y ⋆ W̃` for the samples of `dy`: the convolution [`Transposed`] with the
/// flipped, channel-swapped weight `W̃` (`CI × CO·KH·KW`, column `(co, kh', kw')` holding
/// `W[co, ·, KH − 1 − kh', KW − 1 − kw']`) written into the first `CO·K` scalars of
/// `scratch`, each `∂x` computed whole (one chain of multiply-adds over its taps, from zero)
/// and added once: no col2im. By `path` ([`input_gradient_path`]'s unless timing).
///
/// # Safety
/// The CPU has AVX-512F; `path` is `Rows` or `Wide` and [`input_gradient_fits`] says it
/// may run; `weight` holds `CO·K` scalars (`CO × K`
/// column-major), `dy` whole samples of `OUT = CO·OH·OW`, `dx` as many of `IN = CI·H·W`,
/// `scratch` `K·OH·OW + CO·K` scalars.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn input_gradient<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
>(
    path: InputGradient,
    weight: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    debug_assert!(K == G::CI * G::KH * G::KW && IN == G::CI * G::H * G::W);
    debug_assert!(OUT == CO * G::OH * G::OW);
    let (flipped, rest) = scratch.split_at_mut(CO * K);
    let taps = G::KH * G::KW;
    for co in 0..CO {
        for ci in 0..G::CI {
            for t in 0..taps {
                // W[co, ci, t] (at co + k·CO, k = ci·KH·KW + t) to W̃[ci, (co, flipped t)].
                flipped[ci + (co * taps + taps - 1 - t) * G::CI] =
                    weight[co + (ci * taps + t) * CO];
            }
        }
    }
    // The samples shared among a pool's threads as in `forward`, a piece of `rest` each.
    let need = match path {
        InputGradient::Rows => {
            let (hp, wp) = padded::<Transposed<G, CO>>();
            CO * hp * wp
        }
        _ => scratch_for::<Transposed<G, CO>>(G::CI),
    };
    let samples = dy.len() / OUT;
    let max_parts = rest.len() / need;
    let (dx, pieces) = (SharedPtr(dx.as_mut_ptr()), SharedPtr(rest.as_mut_ptr()));
    let work = samples * CO * K * G::OH * G::OW;
    let flipped = &*flipped;
    for_parts_indexed(samples, 1, work, max_parts, &|i, first, count| {
        // SAFETY: the caller's contract: one piece of the pass's scratch fits in the rest;
        // the parts' samples are disjoint and inside `dy` and `dx`, their pieces disjoint
        // and inside `rest`.
        unsafe {
            let (dy, dx, piece) = (
                &dy[first * OUT..(first + count) * OUT],
                core::slice::from_raw_parts_mut(dx.get().add(first * IN), count * IN),
                core::slice::from_raw_parts_mut(pieces.get().add(i * need), need),
            );
            match path {
                InputGradient::Rows => {
                    convolve_rows::<Transposed<G, CO>>(G::CI, flipped, dy, dx, piece);
                }
                _ => convolve::<Transposed<G, CO>>(G::CI, flipped, &[], dy, dx, piece, true),
            }
        }
    });
}

/// `y += W ⋆ x` for the samples of `x`, with `co` output channels, for a convolution whose
/// output rows fit one vector (`OW ≤ 16`): the sample copied into the padded plane, then
/// register tiles of [`RR`] output rows (a vector each, `OW` lanes of it) × up to [`NR`]
/// channels, each tile skipping the kernel rows that read only the plane's zero rows for all
/// its output rows (where the input gradient's convolution has its wide zero border), its
/// sums added to `y` in place: no wide result, and no wide positions computed for nothing.
///
/// # Safety
/// The CPU has AVX-512F; stride 1, `OW ≤ 16`; `scratch` holds at least `CI·Hp·Wp` scalars;
/// `weight` holds `co·CI·KH·KW` scalars (`co × K` column-major), `x` whole samples of
/// `CI·H·W` and `y` as many of `co·OH·OW`.
#[target_feature(enable = "avx512f")]
unsafe fn convolve_rows<G: ConvGeometry2d>(
    co: usize,
    weight: &[f32],
    x: &[f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    debug_assert!(G::SH == 1 && G::SW == 1 && G::OW <= 16);
    let (hp, wp) = padded::<G>();
    let plane = G::OH * G::OW;
    let (inputs, outputs) = (G::CI * G::H * G::W, co * plane);
    let xp = &mut scratch[..G::CI * hp * wp];
    xp.fill(0.0);
    let weight = &weight[..co * G::CI * G::KH * G::KW];
    for (x, y) in x.chunks_exact(inputs).zip(y.chunks_exact_mut(outputs)) {
        pad_into::<G>(x, xp);
        let mut oh = 0;
        while oh < G::OH {
            let r = RR.min(G::OH - oh);
            let (kh_lo, kh_hi) = kernel_rows::<G>(oh);
            let mut j = 0;
            while j < co {
                // SAFETY: rows oh..oh + r of the output read plane rows oh' + kh·DH < Hp and
                // columns ow + kw·DW < Wp for ow < OW (the other lanes masked off); channels
                // j..j + n of the weight and of `y` exist. The CPU has AVX-512F.
                unsafe {
                    let (a, w, c) = (
                        xp.as_ptr().add(oh * wp),
                        weight.as_ptr().add(j),
                        y.as_mut_ptr().add(j * plane + oh * G::OW),
                    );
                    macro_rules! dispatch {
                        ($(($n:literal, $r:literal)),*) => {
                            match ((co - j).min(NR), r) {
                                $(($n, $r) => {
                                    row_tile::<G, $n, $r>(a, w, co, c, plane, kh_lo, kh_hi)
                                })*
                                _ => unreachable!(),
                            }
                        };
                    }
                    dispatch!(
                        (1, 1),
                        (2, 1),
                        (3, 1),
                        (4, 1),
                        (5, 1),
                        (6, 1),
                        (7, 1),
                        (8, 1),
                        (1, 2),
                        (2, 2),
                        (3, 2),
                        (4, 2),
                        (5, 2),
                        (6, 2),
                        (7, 2),
                        (8, 2)
                    );
                }
                j += NR;
            }
            oh += RR;
        }
    }
}

/// Output rows of [`convolve_rows`]'s register tile.
const RR: usize = 2;

/// `y[j + jj, oh + rr, ..] += Σ_k A_rr[k]·W[j + jj, k]` for `rr < R`, `jj < N` and the taps
/// `k = (ci, kh, kw)` with `kh_lo ≤ kh < kh_hi`: `A_rr[k]`, the `OW` plane values at
/// `a + ci·Hp·Wp + (rr + kh·DH)·Wp + kw·DW`; `W[j + jj, k]` at `w + jj + k·ldw`; output
/// channel `jj`'s row `rr` at `c + jj·plane + rr·OW`.
///
/// # Safety
/// As [`convolve_rows`]'s call.
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn row_tile<G: ConvGeometry2d, const N: usize, const R: usize>(
    a: *const f32,
    w: *const f32,
    ldw: usize,
    c: *mut f32,
    plane: usize,
    kh_lo: usize,
    kh_hi: usize,
) {
    let (hp, wp) = padded::<G>();
    let lanes = mask16(G::OW);
    // acc[jj][rr]: channel jj, row rr.
    let mut acc = [[_mm512_setzero_ps(); R]; N];
    for ci in 0..G::CI {
        for kh in kh_lo..kh_hi {
            for kw in 0..G::KW {
                // SAFETY: the caller's contract; lanes past OW are masked off.
                unsafe {
                    let ap = a.add(ci * hp * wp + kh * G::DH * wp + kw * G::DW);
                    let av: [__m512; R] =
                        core::array::from_fn(|rr| _mm512_maskz_loadu_ps(lanes, ap.add(rr * wp)));
                    let wk = w.add(((ci * G::KH + kh) * G::KW + kw) * ldw);
                    for (jj, channel) in acc.iter_mut().enumerate() {
                        let b = _mm512_set1_ps(*wk.add(jj));
                        for (sum, &a) in channel.iter_mut().zip(&av) {
                            *sum = _mm512_fmadd_ps(a, b, *sum);
                        }
                    }
                }
            }
        }
    }
    for (jj, channel) in acc.iter().enumerate() {
        for (rr, &sum) in channel.iter().enumerate() {
            // SAFETY: row rr of channel jj of the output; lanes past OW are masked off.
            unsafe {
                let to = c.add(jj * plane + rr * G::OW);
                let v = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, to), sum);
                _mm512_mask_storeu_ps(to, lanes, v);
            }
        }
    }
}

/// Copies one sample `x` (`CI × H × W`) inside the zero-padded plane `xp` (`CI × Hp × Wp`),
/// leaving its padding as it is (zero).
#[inline(always)]
fn pad_into<G: ConvGeometry2d>(x: &[f32], xp: &mut [f32]) {
    let (hp, wp) = padded::<G>();
    for ci in 0..G::CI {
        for h in 0..G::H {
            let to = ci * hp * wp + (h + G::PH) * wp + G::PW;
            let from = (ci * G::H + h) * G::W;
            xp[to..to + G::W].copy_from_slice(&x[from..from + G::W]);
        }
    }
}

/// The mask of the first `n` of 16 lanes.
#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 {
        0xFFFF
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// `C[0..m, 0..N] = Σ_k A[.., k]·W[j.., k]ᵀ` for one tile: `A`'s column `k` at `a + off(k)`,
/// `W[j + jj, k]` at `w + jj + k·ldw`, `C` column-major with leading dimension `ldc`.
///
/// # Safety
/// `a + off(k) + r` is readable for `r < m` (for `r < 32` when `m == 32`), `w` as said,
/// `c` an `m × N` writable block; `1 ≤ m ≤ 32`; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<G: ConvGeometry2d, const N: usize>(
    a: *const f32,
    w: *const f32,
    ldw: usize,
    c: *mut f32,
    ldc: usize,
    m: usize,
) {
    let (hp, wp) = padded::<G>();
    let mut lo = [_mm512_setzero_ps(); N];
    let mut hi = [_mm512_setzero_ps(); N];
    let (k0, k1) = (mask16(m), mask16(m.saturating_sub(16)));
    let whole = m == MR;
    let mut k = 0;
    for ci in 0..G::CI {
        for kh in 0..G::KH {
            for kw in 0..G::KW {
                // SAFETY: the caller's contract.
                unsafe {
                    let ap = a.add(ci * hp * wp + kh * G::DH * wp + kw * G::DW);
                    let (a0, a1) = if whole {
                        (_mm512_loadu_ps(ap), _mm512_loadu_ps(ap.add(16)))
                    } else {
                        // Lanes past m are masked off (not read, cannot fault).
                        (
                            _mm512_maskz_loadu_ps(k0, ap),
                            _mm512_maskz_loadu_ps(k1, ap.wrapping_add(16)),
                        )
                    };
                    let wk = w.add(k * ldw);
                    for jj in 0..N {
                        let b = _mm512_set1_ps(*wk.add(jj));
                        lo[jj] = _mm512_fmadd_ps(a0, b, lo[jj]);
                        hi[jj] = _mm512_fmadd_ps(a1, b, hi[jj]);
                    }
                }
                k += 1;
            }
        }
    }
    for jj in 0..N {
        // SAFETY: column jj < N of the m-row block of C; masked lanes are not written.
        unsafe {
            let col = c.add(jj * ldc);
            _mm512_mask_storeu_ps(col, k0, lo[jj]);
            _mm512_mask_storeu_ps(col.wrapping_add(16), k1, hi[jj]);
        }
    }
}

/// `∂W (CO × K) += Σ_samples ∂Y_s·X̃ᵀ` without the im2col lowering, for the geometries of
/// [`applies`]: by dot products over the wide positions of `∂Y_s`'s rows (copied into a
/// widened `∂Y`, zero at the positions that are not outputs) and of each tap's column of the
/// padded plane (`xp` from `off(k)` on), `R × C` of them at a time in vector accumulators,
/// added to `∂W` at the end of each sample.
///
/// On a pool of several threads the taps are shared among them (each part pads every sample
/// into its own piece of `scratch`): each `∂W` element is the same sum, in the same order.
///
/// # Safety
/// As [`forward`]; `dy` holds as many samples of `OUT` as `x` of `IN`; `d_weight` `CO·K`
/// scalars (`CO × K` column-major).
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn weight_gradient<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
>(
    x: &[f32],
    dy: &[f32],
    d_weight: &mut [f32],
    scratch: &mut [f32],
) {
    let need = scratch_for::<G>(CO);
    let samples = x.len() / IN;
    let max_parts = scratch.len() / need;
    let d_weight = SharedPtr(d_weight[..CO * K].as_mut_ptr());
    let pieces = SharedPtr(scratch.as_mut_ptr());
    let work = samples * CO * K * G::OH * G::OW;
    for_parts_indexed(K, 4, work, max_parts, &|i, first, count| {
        // SAFETY: the caller's contract; the parts' pieces of scratch are disjoint and inside
        // it, and each part writes only the columns `first..first + count` of ∂W.
        unsafe {
            weight_gradient_taps::<G, CO, K, IN, OUT>(
                x,
                dy,
                d_weight.get(),
                first..first + count,
                core::slice::from_raw_parts_mut(pieces.get().add(i * need), need),
            );
        }
    });
}

/// [`weight_gradient`] for the columns `taps` of `∂W`, with `scratch` of [`scratch_for`]`(CO)`
/// scalars.
///
/// # Safety
/// As [`weight_gradient`]'s; `d_weight` points to `CO·K` scalars, of which no other thread
/// touches columns `taps` (`taps.end ≤ K`).
#[target_feature(enable = "avx512f")]
unsafe fn weight_gradient_taps<
    G: ConvGeometry2d,
    const CO: usize,
    const K: usize,
    const IN: usize,
    const OUT: usize,
>(
    x: &[f32],
    dy: &[f32],
    d_weight: *mut f32,
    taps: core::ops::Range<usize>,
    scratch: &mut [f32],
) {
    let (hp, wp) = padded::<G>();
    let plane_p = hp * wp;
    let rows = wide_rows::<G>();
    let plane = G::OH * G::OW;
    let (xp, rest) = scratch.split_at_mut(G::CI * plane_p);
    let dyw = &mut rest[..rows * CO];
    // The padding and the positions that are not outputs stay zero.
    xp.fill(0.0);
    dyw.fill(0.0);
    for (x, dy) in x.chunks_exact(IN).zip(dy.chunks_exact(OUT)) {
        pad_into::<G>(x, xp);
        for co in 0..CO {
            for oh in 0..G::OH {
                let to = co * rows + oh * wp;
                let from = co * plane + oh * G::OW;
                dyw[to..to + G::OW].copy_from_slice(&dy[from..from + G::OW]);
            }
        }
        let mut co = 0;
        while co < CO {
            let mut k = taps.start;
            while k < taps.end {
                // SAFETY: rows co..co + r of dyw and taps k..k + c (each read over the wide
                // rows from off(k), inside xp as in `forward`) exist, and columns k..k + c of
                // ∂W are this call's; the CPU has AVX-512F.
                unsafe {
                    let (a, b, c) = (dyw.as_ptr(), xp.as_ptr(), d_weight);
                    macro_rules! dispatch {
                        ($(($r:literal, $c:literal)),*) => {
                            match ((CO - co).min(4), (taps.end - k).min(4)) {
                                $(($r, $c) => dots::<G, $r, $c, CO>(a, b, c, co, k, rows),)*
                                _ => unreachable!(),
                            }
                        };
                    }
                    dispatch!(
                        (1, 1),
                        (1, 2),
                        (1, 3),
                        (1, 4),
                        (2, 1),
                        (2, 2),
                        (2, 3),
                        (2, 4),
                        (3, 1),
                        (3, 2),
                        (3, 3),
                        (3, 4),
                        (4, 1),
                        (4, 2),
                        (4, 3),
                        (4, 4)
                    );
                }
                k += 4;
            }
            co += 4;
        }
    }
}

/// The offset in the padded plane of tap `k`'s column, `ci·Hp·Wp + kh·DH·Wp + kw·DW`.
#[inline(always)]
fn tap_offset<G: ConvGeometry2d>(k: usize) -> usize {
    let (hp, wp) = padded::<G>();
    let (ci, rest) = (k / (G::KH * G::KW), k % (G::KH * G::KW));
    let (kh, kw) = (rest / G::KW, rest % G::KW);
    ci * hp * wp + kh * G::DH * wp + kw * G::DW
}

/// `∂W[co + i, k + j] += Σ_q dyw[(co + i)·rows + q]·xp[off(k + j) + q]` for `i < R`, `j < C`,
/// `q < rows`: `R·C` vector accumulators, reduced at the end.
///
/// # Safety
/// As [`weight_gradient`]'s call.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn dots<G: ConvGeometry2d, const R: usize, const C: usize, const CO: usize>(
    dyw: *const f32,
    xp: *const f32,
    d_weight: *mut f32,
    co: usize,
    k: usize,
    rows: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    // SAFETY (all the pointers): the caller's contract.
    let a: [*const f32; R] = core::array::from_fn(|i| unsafe { dyw.add((co + i) * rows) });
    let b: [*const f32; C] = core::array::from_fn(|j| unsafe { xp.add(tap_offset::<G>(k + j)) });
    let whole = rows / 16 * 16;
    let mut q = 0;
    while q < whole {
        // SAFETY: q + 16 ≤ rows: inside every row and column.
        unsafe {
            let av: [__m512; R] = core::array::from_fn(|i| _mm512_loadu_ps(a[i].add(q)));
            for j in 0..C {
                let bv = _mm512_loadu_ps(b[j].add(q));
                for i in 0..R {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
        }
        q += 16;
    }
    if whole < rows {
        let tail = mask16(rows - whole);
        // SAFETY: the lanes past `rows` are masked off (not read, cannot fault).
        unsafe {
            let av: [__m512; R] =
                core::array::from_fn(|i| _mm512_maskz_loadu_ps(tail, a[i].wrapping_add(whole)));
            for j in 0..C {
                let bv = _mm512_maskz_loadu_ps(tail, b[j].wrapping_add(whole));
                for i in 0..R {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        for (j, &sum) in row.iter().enumerate() {
            // SAFETY: (co + i, k + j) is inside the CO × K gradient.
            unsafe { *d_weight.add(co + i + (k + j) * CO) += _mm512_reduce_add_ps(sum) };
        }
    }
}

/// Whether [`im2col_by_positions`] lowers this geometry: `DW = 1` (each run of `KW` taps is
/// contiguous in the input) and `KW ≤ 16` (one vector).
pub(crate) const fn lowers_by_positions<G: ConvGeometry2d>() -> bool {
    G::DW == 1 && G::KW >= 1 && G::KW <= 16
}

/// Rows `rows` of the position-major lowering of one sample (`X̃`, `K × P`; the rows as a
/// `rows.len() × P` matrix, element `(k, p)` at `p·rows.len() + k − rows.start`) as
/// `conv::im2col_by_positions` writes them, a run of `KW` taps (or the part of it in `rows`)
/// by one masked load and one masked store (the taps in the padding are masked off the load,
/// so zero).
///
/// # Safety
/// The CPU has AVX-512F; [`lowers_by_positions`] holds; `x` holds one sample, `rows` is
/// inside `0..K` with `K = CI·KH·KW`, `cols` holds `rows.len()·OH·OW` scalars.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn im2col_by_positions<G: ConvGeometry2d, const K: usize>(
    x: &[f32],
    rows: core::ops::Range<usize>,
    cols: &mut [f32],
) {
    // The whole lowering with its bounds as constants: the tests of `rows` fold away (left
    // in, they cost C4's second convolution 2.4 times its lowering's time).
    if rows.start == 0 && rows.end == K {
        // SAFETY: the caller's contract, with `rows = 0..K`.
        unsafe { lower_rows::<G, K, true>(x, 0..K, cols) }
    } else {
        // SAFETY: the caller's contract.
        unsafe { lower_rows::<G, K, false>(x, rows, cols) }
    }
}

/// [`im2col_by_positions`]'s body: for rows `0..K` when `WHOLE` (as constants, whatever
/// `rows` says), else for `rows`.
///
/// # Safety
/// As [`im2col_by_positions`]'s.
#[target_feature(enable = "avx512f")]
unsafe fn lower_rows<G: ConvGeometry2d, const K: usize, const WHOLE: bool>(
    x: &[f32],
    rows: core::ops::Range<usize>,
    cols: &mut [f32],
) {
    let rows = if WHOLE { 0..K } else { rows };
    let ld = rows.len();
    debug_assert!(rows.end <= K && K == G::CI * G::KH * G::KW);
    debug_assert!(x.len() >= G::CI * G::H * G::W && cols.len() >= ld * G::OH * G::OW);
    let run = mask16(G::KW);
    let zero = _mm512_setzero_ps();
    for oh in 0..G::OH {
        for ow in 0..G::OW {
            let column = cols.as_mut_ptr().wrapping_add((oh * G::OW + ow) * ld);
            // The input column of the run's first tap, and the taps inside the input.
            let first = (ow * G::SW) as isize - G::PW as isize;
            let lo = (-first).clamp(0, G::KW as isize) as u32;
            let hi = (G::W as isize - first).clamp(0, G::KW as isize) as u32;
            let inside = if lo < hi {
                run & !mask16(lo as usize) & mask16(hi as usize)
            } else {
                0
            };
            for ci in 0..G::CI {
                for kh in 0..G::KH {
                    // The run's taps k..k + KW, and those of them in `rows`.
                    let k = (ci * G::KH + kh) * G::KW;
                    if k + G::KW <= rows.start || k >= rows.end {
                        continue;
                    }
                    let keep = if rows.start <= k && k + G::KW <= rows.end {
                        run
                    } else {
                        run & !mask16(rows.start.saturating_sub(k)) & mask16(rows.end - k)
                    };
                    // SAFETY: the run's lanes in `keep` are the taps k.. of rows in `rows`,
                    // stored at `column + k − rows.start + lane`, inside `cols` (the other
                    // lanes are masked off the store, not written, and cannot fault); the
                    // lanes read are inputs of row ih of channel ci (the others are masked
                    // off, not read).
                    unsafe {
                        let to = column.wrapping_add(k).wrapping_sub(rows.start);
                        let ih = (oh * G::SH + kh * G::DH).wrapping_sub(G::PH);
                        let v = if ih < G::H {
                            let row = x.as_ptr().add((ci * G::H + ih) * G::W);
                            _mm512_maskz_loadu_ps(inside & keep, row.wrapping_offset(first))
                        } else {
                            zero
                        };
                        _mm512_mask_storeu_ps(to, keep, v);
                    }
                }
            }
        }
    }
}
